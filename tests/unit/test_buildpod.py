"""The build pod contract between the build controller and the node agent."""

from dockyard.api import buildpod
from dockyard.api import labels as well_known

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


def test_names_past_a_label_value_are_cut_and_read_back_whole() -> None:
    """OpenShift's ``LabelValue``: a name longer than 63 characters is cut (and loses the ``-`` the cut leaves at
    its end); the exact names come from the ownerReference (Build) and the annotation (build pod)."""
    long_a, long_b = "x" * 62 + "-a", "x" * 62 + "-b"
    assert well_known.label_value("short") == "short"
    assert well_known.label_value(long_a) == well_known.label_value(long_b) == "x" * 62
    build = {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "Build",
        "metadata": {
            "name": f"{long_b}-1",
            "namespace": "default",
            "uid": "u1",
            "labels": {buildpod.BUILDCONFIG_LABEL: well_known.label_value(long_b)},
            "ownerReferences": [
                {"apiVersion": "dockyard.dev/v1alpha1", "kind": "BuildConfig", "name": long_b, "uid": "c"}
            ],
        },
        "spec": {},
    }
    assert buildpod.config_name(build) == long_b
    unowned = {"metadata": {"labels": {buildpod.BUILDCONFIG_LABEL: "hello"}}}
    assert buildpod.config_name(unowned) == "hello"
    assert buildpod.config_name({"metadata": {}}) is None
    pod = buildpod.build_pod(build)
    assert pod["metadata"]["labels"][buildpod.BUILD_NAME_LABEL] == "x" * 62
    assert buildpod.build_name(pod) == f"{long_b}-1"
