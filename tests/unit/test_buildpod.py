"""The build pod contract between the build controller and the node agent."""

from dockyard.api import buildpod

BUILD = {
    "apiVersion": "dockyard.dev/v1alpha1",
    "kind": "Build",
    "metadata": {
        "name": "hello-1",
        "namespace": "default",
        "uid": "u1",
        "labels": {"dockyard.dev/buildconfig": "hello"},
    },
    "spec": {"source": {"type": "Git", "git": {"uri": "/x"}}, "output": {"to": {"name": "r/x:1"}}},
}


def test_pod_is_named_and_owned_by_the_build():
    pod = buildpod.build_pod(BUILD)
    assert pod["metadata"]["name"] == "hello-1-build"
    assert pod["metadata"]["ownerReferences"][0]["uid"] == "u1"
    assert pod["metadata"]["labels"][buildpod.BUILD_POD_LABEL] == "true"
    assert buildpod.build_from_pod(pod)["spec"] == BUILD["spec"]


def test_result_round_trip():
    result = buildpod.BuildResult(succeeded=False, reason="DockerBuildFailed", message="m", log_snippet="s")
    pod = {
        "status": {
            "phase": "Failed",
            "containerStatuses": [{"state": {"terminated": {"exitCode": 1, "message": result.termination_message()}}}],
        }
    }
    assert buildpod.result_from_pod(pod) == result
    assert buildpod.result_from_pod({"status": {"phase": "Running"}}) is None
