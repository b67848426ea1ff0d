"""dockyard's subresources over real HTTP: instantiate, build logs, container commit."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

GV = "/apis/dockyard.dev/v1alpha1/namespaces/default"
BCS = f"{GV}/buildconfigs"
BUILDS = f"{GV}/builds"
PODS = "/api/v1/namespaces/default/pods"
MERGE = {"Content-Type": "application/merge-patch+json"}
BC: dict[str, Any] = {
    "apiVersion": "dockyard.dev/v1alpha1",
    "kind": "BuildConfig",
    "metadata": {"name": "hello"},
    "spec": {
        "source": {"type": "Dockerfile", "dockerfile": "FROM scratch"},
        "strategy": {"type": "Docker"},
        "output": {"to": {"kind": "DockerImage", "name": "127.0.0.1:5000/hello:latest"}},
        "triggers": [{"type": "ConfigChange"}],
        "runPolicy": "Parallel",
        "successfulBuildsHistoryLimit": 2,
        "failedBuildsHistoryLimit": 2,
    },
}


def test_instantiate_creates_numbered_builds(api: httpx.Client) -> None:
    config = api.post(BCS, json=BC).json()
    resp = api.post(
        f"{BCS}/hello/instantiate",
        json={
            "kind": "BuildRequest",
            "apiVersion": "dockyard.dev/v1alpha1",
            "metadata": {"name": "hello"},
            "triggeredBy": [{"message": "Image change"}],
        },
    )
    assert resp.status_code == 201, resp.text
    build = resp.json()
    meta = build["metadata"]
    assert build["kind"] == "Build" and meta["name"] == "hello-1"
    assert meta["labels"]["dockyard.dev/buildconfig"] == "hello"
    assert meta["annotations"]["dockyard.dev/build.number"] == "1"
    owner = meta["ownerReferences"][0]
    assert owner["uid"] == config["metadata"]["uid"] and owner["controller"] is True and owner["kind"] == "BuildConfig"
    assert build["status"] == {"phase": "New"}
    spec = build["spec"]
    for field in ("triggers", "runPolicy", "successfulBuildsHistoryLimit", "failedBuildsHistoryLimit"):
        assert field not in spec
    assert spec["output"] == BC["spec"]["output"] and spec["triggeredBy"] == [{"message": "Image change"}]
    second = api.post(f"{BCS}/hello/instantiate").json()
    assert second["metadata"]["name"] == "hello-2"
    assert second["spec"]["triggeredBy"] == [{"message": "Manually triggered"}]
    assert api.get(f"{BCS}/hello").json()["status"]["lastVersion"] == 2
    assert api.post(f"{BCS}/missing/instantiate").status_code == 404
    assert api.post(f"{BCS}/hello/instantiate", json={"kind": "Pod"}).status_code == 400


def test_instantiate_is_safe_under_concurrency(apiserver: Any, api: httpx.Client) -> None:
    api.post(BCS, json=BC)

    def call(_: int) -> str:
        with apiserver.client() as c:
            resp = c.post(f"{BCS}/hello/instantiate")
            assert resp.status_code == 201, resp.text
            return str(resp.json()["metadata"]["name"])

    with ThreadPoolExecutor(max_workers=10) as pool:
        names = list(pool.map(call, range(10)))
    assert sorted(names) == sorted(f"hello-{n}" for n in range(1, 11))
    assert api.get(f"{BCS}/hello").json()["status"]["lastVersion"] == 10
    listed = api.get(BUILDS, params={"labelSelector": "dockyard.dev/buildconfig=hello"}).json()["items"]
    assert len(listed) == 10
    api.delete(f"{BCS}/hello")
    assert api.get(BUILDS).json()["items"] == []


def test_build_logs_append_tail_follow_and_cleanup(apiserver: Any, api: httpx.Client) -> None:
    api.post(BCS, json=BC)
    api.post(f"{BCS}/hello/instantiate")
    log_url = f"{BUILDS}/hello-1/log"
    assert api.get(log_url).text == ""
    for chunk in ("step 1\n", "step 2\n", "step 3\n"):
        resp = api.post(log_url, content=chunk.encode(), headers={"Content-Type": "text/plain"})
        assert resp.status_code == 201, resp.text
    resp = api.get(log_url)
    assert resp.headers["content-type"].startswith("text/plain")
    assert resp.text == "step 1\nstep 2\nstep 3\n"
    assert api.get(log_url, params={"tailLines": 2}).text == "step 2\nstep 3\n"
    assert api.get(f"{BUILDS}/nope/log").status_code == 404
    assert api.post(f"{BUILDS}/nope/log", content=b"x").status_code == 404
    too_big = b"x" * (4 * 1024 * 1024 + 1)
    assert api.post(log_url, content=too_big).status_code == 413

    received: list[str] = []
    done = threading.Event()

    def follow() -> None:
        with apiserver.client(timeout=30) as c:
            with c.stream("GET", log_url, params={"follow": "true", "tailLines": 1}) as r:
                for text in r.iter_text():
                    received.append(text)
        done.set()

    t = threading.Thread(target=follow, daemon=True)
    t.start()
    deadline = time.monotonic() + 5
    while not received and time.monotonic() < deadline:
        time.sleep(0.02)
    api.post(log_url, content=b"step 4\n")
    deadline = time.monotonic() + 5
    while "step 4" not in "".join(received) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not done.is_set()
    api.patch(f"{BUILDS}/hello-1/status", json={"status": {"phase": "Complete"}}, headers=MERGE)
    assert done.wait(5), "follow did not end when the build completed"
    assert "".join(received) == "step 3\nstep 4\n"

    api.delete(f"{BUILDS}/hello-1")
    api.post(f"{BCS}/hello/instantiate")  # hello-2
    assert apiserver.store.read_log(_build_info(), "default", "hello-1") == ([], 0)


def _build_info() -> Any:
    from dockyard.api import kinds

    return kinds.by_kind("dockyard.dev/v1alpha1", "Build")


def _running_pod(api: httpx.Client, name: str, container_id: str, node: str = "node-1") -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"nodeName": node, "containers": [{"name": "app", "image": "busybox"}]},
    }
    assert api.post(PODS, json=body).status_code == 201
    status = {
        "status": {
            "phase": "Running",
            "containerStatuses": [
                {"name": "app", "containerID": container_id, "ready": True, "restartCount": 0, "image": "busybox"}
            ],
        }
    }
    assert api.patch(f"{PODS}/{name}/status", json=status, headers=MERGE).status_code == 200


def test_commit_creates_a_push(api: httpx.Client) -> None:
    cid = "a" * 64
    _running_pod(api, "web", f"docker://{cid}")
    _running_pod(api, "db", "podman://" + "b" * 64, node="node-2")
    resp = api.post(
        f"/containers/{cid[:12]}/commit",
        json={"image": "127.0.0.1:5000/web:snap", "message": "snapshot", "changes": ["ENV A=1"]},
    )
    assert resp.status_code == 202, resp.text
    push = resp.json()
    meta = push["metadata"]
    assert push["kind"] == "Push" and meta["namespace"] == "default" and meta["name"].startswith("web-app-")
    assert meta["labels"]["dockyard.dev/nodename"] == "node-1"
    assert resp.headers["location"] == f"{GV}/pushes/{meta['name']}"
    assert push["spec"]["podName"] == "web" and push["spec"]["containerName"] == "app"
    assert push["spec"]["pause"] is True and push["spec"]["changes"] == ["ENV A=1"]
    assert push["spec"]["message"] == "snapshot" and "author" not in push["spec"]
    assert api.get(resp.headers["location"]).json()["metadata"]["uid"] == meta["uid"]

    full = api.post(
        "/containers/podman://" + "b" * 64 + "/commit", json={"image": "127.0.0.1:5000/db:1", "pause": False}
    )
    assert full.status_code in (202, 404)
    by_bare = api.post("/containers/" + "b" * 64 + "/commit", json={"image": "127.0.0.1:5000/db:1", "pause": False})
    assert by_bare.status_code == 202 and by_bare.json()["spec"]["pause"] is False
    assert by_bare.json()["metadata"]["labels"]["dockyard.dev/nodename"] == "node-2"

    unknown = api.post("/containers/ffffffffffff/commit", json={"image": "127.0.0.1:5000/x:1"})
    assert unknown.status_code == 404 and unknown.json()["kind"] == "Status"
    missing_image = api.post(f"/containers/{cid}/commit", json={})
    assert missing_image.status_code == 422 and "image" in missing_image.json()["message"]
    assert api.post(f"/containers/{cid}/commit", content=b"nope").status_code == 400


def test_commit_ambiguous_prefix_is_rejected(api: httpx.Client) -> None:
    _running_pod(api, "one", "docker://abc111" + "0" * 58)
    _running_pod(api, "two", "docker://abc222" + "0" * 58)
    assert api.post("/containers/abc/commit", json={"image": "127.0.0.1:5000/x:1"}).status_code == 404
    assert api.post("/containers/abc1/commit", json={"image": "127.0.0.1:5000/x:1"}).status_code == 202


def test_pod_logs_check_their_options_and_need_a_node_whose_agent_answers(api: httpx.Client) -> None:
    """``pods/NAME/log`` is the node agent's (tests/e2e/test_pod_logs.py reads real output): before asking it,
    the API server checks ``PodLogOptions`` (422 naming the parameter), picks the container (400) and needs
    the pod's node and that node's agent (400, 503). Before, a GET answered 200 with an empty body."""
    pod = {
        "metadata": {"name": "two"},
        "spec": {"containers": [{"name": "a", "image": "busybox"}, {"name": "b", "image": "busybox"}]},
    }
    assert api.post(PODS, json=pod).status_code == 201
    for params, field in (
        ({"tailLines": "-1"}, "tailLines"),
        ({"limitBytes": "0"}, "limitBytes"),
        ({"sinceSeconds": "0"}, "sinceSeconds"),
        ({"sinceSeconds": "5", "sinceTime": "2026-01-01T00:00:00Z"}, "sinceTime"),
        ({"sinceTime": "yesterday"}, "sinceTime"),
        ({"follow": "maybe"}, "follow"),
    ):
        resp = api.get(f"{PODS}/two/log", params={"container": "a", **params})
        assert resp.status_code == 422, (params, resp.text)
        assert [c["field"] for c in resp.json()["details"]["causes"]] == [field]
        assert resp.json()["details"]["kind"] == "PodLogOptions"
    resp = api.get(f"{PODS}/two/log")
    assert resp.status_code == 400
    assert resp.json()["message"] == "a container name must be specified for pod two, choose one of: [a b]"
    resp = api.get(f"{PODS}/two/log", params={"container": "c"})
    assert resp.status_code == 400 and resp.json()["message"] == "container c is not valid for pod two"
    resp = api.get(f"{PODS}/two/log", params={"container": "a"})
    assert resp.status_code == 400 and resp.json()["message"] == "pod two does not have a host assigned"
    _running_pod(api, "bound", "d" * 64, node="node-1")
    resp = api.get(f"{PODS}/bound/log")
    assert resp.status_code == 503 and "node-1" in resp.json()["message"], resp.text  # no agent known for it
    assert api.post(f"{PODS}/bound/log", content=b"x").status_code == 405
    assert api.get(f"{PODS}/nope/log").status_code == 404
    resources = api.get("/api/v1").json()["resources"]
    assert "pods/log" in {r["name"] for r in resources}


def test_a_buildconfig_named_past_a_label_value_builds(api: httpx.Client) -> None:
    """A BuildConfig's name may be 253 characters and a label value only 63: its Builds and build pods carry the
    name cut to 63 (OpenShift's ``LabelValue``), and stay writable now that labels are checked; who reads them
    takes the exact name from the ownerReference (Build) and the annotation (build pod)."""
    from dockyard.api import buildpod

    name = "a" * 62 + "-b" + "c" * 10  # 74 characters; cut at 63 it would end in "-": the cut drops it
    bc = {**BC, "metadata": {"name": name}}
    assert api.post(BCS, json=bc).status_code == 201
    created = api.post(f"{BCS}/{name}/instantiate")
    assert created.status_code == 201, created.text
    build = created.json()
    assert build["metadata"]["labels"]["dockyard.dev/buildconfig"] == "a" * 62
    assert buildpod.config_name(build) == name
    status = api.patch(f"{BUILDS}/{name}-1/status", json={"status": {"phase": "Pending"}}, headers=MERGE)
    assert status.status_code == 200, status.text
    pod = buildpod.build_pod(status.json(), output="127.0.0.1:5000/hello:latest")
    made = api.post(PODS, json=pod)
    assert made.status_code == 201, made.text
    assert made.json()["metadata"]["labels"]["dockyard.dev/build.name"] == "a" * 62
    assert buildpod.build_name(made.json()) == f"{name}-1"
