"""The main job end to end, against Podman's API service, the real registry, git and kubectl.

Drives the same steps as ``examples/hello/demo.py`` (``dockyard up`` as a
subprocess, kubectl as the client) and adds the checks a user would make:
digests equal what skopeo reads from the registry, kubectl shows field-path
errors, failures end in ``Failed`` with a reason and a log, logs outlive pods,
and a commit of a missing container fails cleanly.
"""

from __future__ import annotations

import json
import re
import ssl
import subprocess
import time

import httpx
import pytest
from harness import demo_module

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    module = demo_module()
    d = module.Demo(tmp_path_factory.mktemp("hello"), engine="podman")
    try:
        d.start()
        d.base_image()
        d.make_repo()
        d.apply()
        yield d
    finally:
        d.cleanup()


def test_build_deploy_rebuild_roll_commit(demo):
    demo.build("v1")
    demo.serves("v1")
    first = demo.digests["v1"]
    demo.change_source()
    demo.start_requests()  # through the Service, all along the v1→v2 rollout (default RollingUpdate)
    demo.build("v2")
    demo.serves("v2")
    demo.requests_survived()  # raises unless every request was answered
    assert demo.loop is not None and demo.loop.answers
    assert demo.digests["v2"] != first
    image = demo.get("image", "hello")
    assert image["status"]["latestImage"] == f"{demo.registry}/hello@{demo.digests['v2']}"
    history = demo.kubectl("rollout", "history", "deployment/hello").stdout
    assert "1" in history and "2" in history
    demo.commit_container()


def test_describe_shows_the_events_of_controllers_and_agent(demo):
    pod = json.loads(demo.kubectl("get", "pods", "-l", "app=hello", "-o", "json").stdout)["items"][0]
    described = demo.kubectl("describe", "pod", pod["metadata"]["name"]).stdout
    assert "Scheduled" in described and "Started" in described, described
    build = demo.kubectl("describe", "build", "hello-1").stdout
    assert "BuildCompleted" in build or "BuildStarted" in build, build


def test_controllers_and_agent_metrics_record_builds_pushes_and_image_resolves(demo):
    """The histograms README and ``dockyard.client.metrics`` promise hold what the flow above did: the builds
    (by phase and stage), the commit's Push and the Image's digest lookups, on the addresses `up` printed."""
    from prometheus_client.parser import text_string_to_metric_families

    announced = (demo.workdir / "up.log").read_text()
    line = next(line for line in announced.splitlines() if "metrics:" in line and "controllers http" in line)
    urls = dict(re.findall(r"(controllers|agent) (http://127\.0\.0\.1:\d+/metrics)", line))

    def counts(component: str, metric: str) -> dict[tuple[tuple[str, str], ...], float]:
        text = httpx.get(urls[component], timeout=10).raise_for_status().text
        return {
            tuple(sorted(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == f"{metric}_count"
        }

    builds = counts("controllers", "dockyard_build_duration_seconds")
    for stage in ("total", "FetchInputs", "Build", "PushImage"):
        assert builds.get((("phase", "Complete"), ("stage", stage)), 0) >= 2, (stage, builds)
    assert counts("agent", "dockyard_push_duration_seconds").get((("phase", "Succeeded"),), 0) >= 1
    assert counts("controllers", "dockyard_image_resolve_latency_seconds").get((), 0) >= 1


def test_credentials_and_state_are_private_to_their_owner(demo):
    """The data dir and what in it grants access or holds objects: tokens, the three kubeconfigs, the database
    and the uploaded build contexts (README, Security model)."""
    import stat

    data = demo.data_dir
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for name in ("tokens.json", "kubeconfig", "kubeconfig-view", "kubeconfig-node", "dockyard.db"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name
    contexts = data / "dockyard.db-contexts"
    assert stat.S_IMODE(contexts.stat().st_mode) == 0o700
    for path in contexts.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_kubectl_wait_and_get(demo):
    builds = demo.kubectl("get", "builds", "-o", "name").stdout.split()
    assert builds and all(b.startswith("build.dockyard.dev/hello-") for b in builds)
    demo.kubectl("wait", "--for=jsonpath={.status.phase}=Complete", builds[0], "--timeout=30s")


def test_invalid_object_is_rejected_with_the_field_path(demo):
    bad = """apiVersion: dockyard.dev/v1alpha1
kind: BuildConfig
metadata: {name: broken}
spec:
  source: {type: Git, git: {uri: /nowhere}}
  output: {to: {kind: DockerImage}}
"""
    out = demo.kubectl("apply", "-f", "-", input_=bad, check=False)
    assert out.returncode != 0
    assert "spec.output.to.name: field required" in out.stderr
    assert demo.kubectl("get", "buildconfig", "broken", check=False).returncode != 0


def _apply_bc(demo, name, *, uri, dockerfile_dir="app"):
    manifest = {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "BuildConfig",
        "metadata": {"name": name},
        "spec": {
            "source": {"type": "Git", "git": {"uri": uri}, "contextDir": dockerfile_dir},
            "output": {"to": {"kind": "DockerImage", "name": f"{demo.registry}/{name}:latest"}},
        },
    }
    demo.kubectl("apply", "-f", "-", input_=json.dumps(manifest))


def _repo(repo, demo, step):
    """A git repository at ``repo`` whose ``app/Dockerfile`` runs ``step`` on the registry's busybox."""
    (repo / "app").mkdir(parents=True)
    (repo / "app" / "Dockerfile").write_text(f"FROM {demo.registry}/dockyard/busybox:latest\n{step}\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-qm", step], check=True)
    return repo


def _build_and_wait(demo, name):
    out = demo.dockyard("start-build", name, "--follow", check=False, timeout=300)
    assert out.returncode == 1, out.stdout + out.stderr
    build = out.stdout.splitlines()[0].strip().removeprefix("build/")
    return demo.get("build", build), out


def test_unreachable_git_uri_fails_with_reason_and_log(demo):
    _apply_bc(demo, "nogit", uri="http://127.0.0.1:9/nothing.git")
    build, _ = _build_and_wait(demo, "nogit")
    assert build["status"]["phase"] == "Failed"
    assert build["status"]["reason"] == "FetchSourceFailed"
    assert build["status"]["logSnippet"]
    log = demo.dockyard("logs", f"build/{build['metadata']['name']}").stdout
    assert "FetchInputs" in log


def test_broken_dockerfile_fails_and_log_outlives_the_pod(demo, tmp_path):
    _apply_bc(demo, "broken", uri=str(_repo(tmp_path / "broken", demo, "RUN exit 3")))
    build, _ = _build_and_wait(demo, "broken")
    name = build["metadata"]["name"]
    assert build["status"]["phase"] == "Failed"
    assert build["status"]["reason"] == "DockerBuildFailed"
    demo.kubectl("delete", "pod", f"{name}-build")
    log = demo.dockyard("logs", f"build/{name}").stdout
    assert "exit 3" in log or "RUN" in log
    tail = demo.dockyard("logs", f"build/{name}", "--tail", "1").stdout
    assert len(tail.strip().splitlines()) == 1


def test_deleting_a_running_build_pod_stops_its_builder_then_the_pod_goes(demo, tmp_path):
    """A build pod is deleted gracefully as any pod: Terminating while its node cancels the builder, then gone, and
    the Build ends Error ``BuildPodDeleted``; `kubectl delete` returns once the pod is gone."""
    _apply_bc(demo, "slow", uri=str(_repo(tmp_path / "slow", demo, "RUN sleep 120")))
    name = demo.dockyard("start-build", "slow").stdout.strip().removeprefix("build/")
    deadline = time.monotonic() + 120
    while demo.get("build", name).get("status", {}).get("phase") != "Running":
        assert time.monotonic() < deadline, demo.get("build", name).get("status")
        time.sleep(0.5)
    started = time.monotonic()
    demo.kubectl("delete", "pod", f"{name}-build", "--timeout=60s")
    assert time.monotonic() - started < 30
    assert demo.kubectl("get", "pod", f"{name}-build", check=False).returncode != 0
    deadline = time.monotonic() + 30
    while (build := demo.get("build", name))["status"].get("phase") not in ("Error", "Failed", "Cancelled"):
        assert time.monotonic() < deadline, build["status"]
        time.sleep(0.5)
    assert build["status"]["phase"] == "Error" and build["status"]["reason"] == "BuildPodDeleted", build["status"]


def test_commit_of_missing_container_fails_with_its_name(demo):
    # the CLI looks for the pod first: a typo is exit 2 naming it, and no Push is left to retry
    out = demo.dockyard("commit", "no-such-pod/web", f"{demo.registry}/x:1", "--wait", check=False, timeout=150)
    assert out.returncode == 2 and "no-such-pod" in out.stderr and out.stdout == ""
    # a Push made through the API is retried (10 s, 20 s, 40 s: the pod may be on its way) before it fails
    push = {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "Push",
        "metadata": {"generateName": "no-such-pod-"},
        "spec": {"podName": "no-such-pod", "containerName": "web", "image": f"{demo.registry}/x:1"},
    }
    name = demo.kubectl("create", "-f", "-", "-o", "name", input_=json.dumps(push)).stdout.strip().split("/")[-1]
    deadline = time.monotonic() + 150
    while (got := demo.get("push", name))["status"].get("phase") != "Failed":
        assert time.monotonic() < deadline, got["status"]
        time.sleep(1)
    assert got["status"]["reason"] == "SourcePodNotFound"
    assert "no-such-pod" in got["status"]["message"]


def test_commit_endpoint_answers_202_with_location(demo):
    pods = json.loads(demo.kubectl("get", "pods", "-l", "app=hello", "-o", "json").stdout)["items"]
    container_id = pods[0]["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1]
    token = demo.kubeconfig.read_text().split("token:", 1)[1].split()[0]
    base = f"https://127.0.0.1:{demo.api_port}"
    headers = {"Authorization": f"Bearer {token}"}
    ca = ssl.create_default_context(cafile=str(demo.data_dir / "pki" / "ca.crt"))
    resp = httpx.post(
        f"{base}/containers/{container_id}/commit",
        headers=headers,
        verify=ca,
        json={"image": f"{demo.registry}/hello-snapshot:zun"},
    )
    assert resp.status_code == 202, resp.text
    location = resp.headers["Location"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        push = httpx.get(base + location, headers=headers, verify=ca).json()
        if (push.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            break
        time.sleep(0.3)
    assert push["status"]["phase"] == "Succeeded", push.get("status")
    demo.check_registry_digest(f"{demo.registry}/hello-snapshot:zun", push["status"]["imageDigest"])
    assert (
        httpx.post(
            f"{base}/containers/0123456789abcdef/commit",
            headers=headers,
            verify=ca,
            json={"image": f"{demo.registry}/x:1"},
        ).status_code
        == 404
    )
    assert httpx.post(f"{base}/containers/{container_id}/commit", json={"image": "x"}, verify=ca).status_code == 401


def test_a_crashing_image_is_rolled_back_and_quarantined(demo):
    """A new digest whose container exits at once: its pod crash-loops and never turns Ready, so the Service keeps
    answering from the old pods; the ImageDeploy puts the Deployment back on the last Available digest and
    records the bad one in status.failedImages (issue 8, automatic rollback) — on the real engine."""
    good = demo.digests["v2"]
    dockerfile = demo.repo / "app" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace('CMD ["httpd"', 'CMD ["sh", "-c", "exit 3"] #'))
    demo.sh("git", "-C", str(demo.repo), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-am", "crash")
    demo.start_requests()
    demo.build("crash")
    bad = demo.digests["crash"]

    def rolled_back() -> dict | None:
        status = demo.get("imagedeploy", "hello").get("status") or {}
        failed = [
            f for f in status.get("failedImages") or [] if bad in (f.get("digest"), f.get("image", "").split("@")[-1])
        ]
        return status if failed else None

    status = demo.wait_for("the ImageDeploy to roll back and quarantine the crashing digest", rolled_back, 240)
    assert status["availableImage"].endswith(good), status
    rolled = next(c for c in status["conditions"] if c["type"] == "RolledBack")
    assert rolled["status"] == "True", status
    deploy = demo.get("deployment", "hello")
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"].endswith(good)
    demo.kubectl("rollout", "status", "deployment/hello", "--timeout=120s", timeout=150)
    demo.requests_survived()  # the crashing pods never got a request: every one was answered by v2
    assert set(demo.loop.answers) == {"Hello from dockyard v2"}, demo.loop.answers


def test_shutdown_is_clean(demo):
    demo.stop()
