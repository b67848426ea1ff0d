"""Pods as the kubelet takes them, from every source it takes them (issue 8 item 6), against the real API server
(in-process, HTTPS), a real Podman service and the htpasswd-protected CNCF registry.

- ``imagePullSecrets``: a pull from a registry that needs credentials uses the pod's dockerconfigjson Secrets.
- Static pods: manifests in a folder (kubelet ``staticPodPath``) and at a URL (``--manifest-url``) run on the node and
  appear in the API as mirror pods, created, updated (only changed containers restart) and removed as the manifests
  change; a bad manifest is an Event naming the file and the field; a deleted mirror pod comes back.
"""

from __future__ import annotations

import base64
import http.server
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
import yaml

from dockyard.agent import node, staticpods
from dockyard.client import connection
from dockyard.registry import server
from integration.conftest import ApiServer
from integration.test_pod_runtime import BUSYBOX, _pod_engine  # noqa: F401 — the session's Podman service

PODS = "/api/v1/namespaces/default/pods"
SECRETS = "/api/v1/namespaces/default/secrets"
EVENTS = "/api/v1/namespaces/default/events"


def wait(condition: Callable[[], Any], what: str, *, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = condition()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.2)


@pytest.fixture
def make_agent(
    apiserver: ApiServer, _pod_engine: docker.DockerClient, tmp_path: Path
) -> Iterator[Callable[..., node.NodeAgent]]:
    """Start the node agent of ``node-1`` (the node identity) on the session's Podman service, with the given
    static pod sources; its pods are removed at the end."""
    started: list[tuple[node.NodeAgent, threading.Event, list[threading.Thread]]] = []

    def make(**sources: Any) -> node.NodeAgent:
        kubeconfig = apiserver.kubeconfig(tmp_path / "node.kubeconfig", token=apiserver.node_token)
        agent = node.NodeAgent(
            connection.connect(paths=[kubeconfig]),
            engine_client=_pod_engine,
            engine_url=str(_pod_engine.api.base_url),
            node_name=apiserver.node_name,
            state_dir=tmp_path / "agent",
            instance=f"sources-{uuid.uuid4().hex[:8]}",
            **sources,
        )
        stop = threading.Event()
        threads = agent.start(stop)
        started.append((agent, stop, threads))
        wait(agent.synced, "the agent's informers", timeout=20)
        return agent

    yield make
    for agent, stop, threads in started:
        stop.set()
        agent.stop_pods(grace_seconds=0)
        for t in threads:
            t.join(5)


@pytest.fixture
def api(apiserver: ApiServer) -> Iterator[httpx.Client]:
    with apiserver.client(timeout=30) as client:
        yield client


def get_pod(api: httpx.Client, name: str) -> dict[str, Any] | None:
    resp = api.get(f"{PODS}/{name}")
    return dict(resp.json()) if resp.status_code == 200 else None


def statuses(pod: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in ((pod or {}).get("status") or {}).get("containerStatuses") or []}


def running(api: httpx.Client, name: str, *containers: str, timeout: float = 60.0) -> dict[str, Any]:
    def ok() -> dict[str, Any] | None:
        pod = get_pod(api, name)
        cs = statuses(pod)
        if (
            pod
            and pod.get("status", {}).get("phase") == "Running"
            and all("running" in (cs.get(c, {}).get("state") or {}) for c in containers)
        ):
            return pod
        return None

    return dict(wait(ok, f"pod {name} running {containers}", timeout=timeout))


def waiting_reasons(api: httpx.Client, name: str) -> list[tuple[str, str]]:
    waiting = (statuses(get_pod(api, name)).get("app", {}).get("state") or {}).get("waiting") or {}
    return [(waiting.get("reason", ""), waiting.get("message", ""))] if waiting else []


# --- imagePullSecrets --------------------------------------------------------------------------------------------

USER, PASSWORD = "puller", "pw-9f8e7d-secret"


@pytest.fixture
def private_image(_pod_engine: docker.DockerClient, tmp_path: Path) -> Iterator[str]:
    """The busybox test image pushed to an htpasswd-protected CNCF registry on a free port; the local copy under
    that name removed, so a pod must pull it."""
    htpasswd = server.write_htpasswd(tmp_path / "htpasswd", {USER: PASSWORD})
    with server.RegistryServer(server.free_port(), tmp_path / "reg", htpasswd=htpasswd) as registry:
        repo = f"{registry.address}/private/busybox"
        _pod_engine.api.tag(BUSYBOX, repo, "1")
        for line in _pod_engine.api.push(
            repo, "1", stream=True, decode=True, auth_config={"username": USER, "password": PASSWORD}
        ):
            assert "error" not in line, line
        _pod_engine.api.remove_image(f"{repo}:1")
        yield f"{repo}:1"


def pull_pod(name: str, image: str, secrets: list[str]) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "terminationGracePeriodSeconds": 0,
        "containers": [{"name": "app", "image": image, "command": ["sleep", "3600"]}],
    }
    if secrets:
        spec["imagePullSecrets"] = [{"name": s} for s in secrets]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def test_a_pull_without_the_secret_fails_with_the_registrys_reason(
    api: httpx.Client, make_agent: Callable[..., node.NodeAgent], private_image: str
) -> None:
    make_agent()
    assert api.post(PODS, json=pull_pod("anon", private_image, [])).status_code == 201
    backoff = wait(lambda: [r for r in waiting_reasons(api, "anon") if r[0] == "ImagePullBackOff"], "ImagePullBackOff")[
        0
    ]
    assert "unauthorized: authentication required" in backoff[1], backoff

    def failed() -> list[dict[str, Any]]:
        items = api.get(EVENTS).json()["items"]
        return [e for e in items if e["involvedObject"].get("name") == "anon" and "ErrImagePull" in e["message"]]

    event = wait(failed, "the ErrImagePull Event")[0]
    assert event["type"] == "Warning" and "unauthorized: authentication required" in event["message"], event


def test_a_pull_with_the_pods_image_pull_secret_runs_and_never_shows_the_password(
    api: httpx.Client, make_agent: Callable[..., node.NodeAgent], private_image: str
) -> None:
    registry = private_image.split("/", 1)[0]
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    config = {"auths": {f"http://{registry}/v2/": {"auth": auth}}}  # scheme and path, as docker login may write
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "pull-creds"},
        "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": json.dumps(config)},
    }
    assert api.post(SECRETS, json=secret).status_code == 201
    other = dict(secret, metadata={"name": "other-registry"})
    other["stringData"] = {".dockerconfigjson": json.dumps({"auths": {"127.0.0.1:1": {"auth": "eDp5"}}})}
    assert api.post(SECRETS, json=other).status_code == 201
    make_agent()
    body = pull_pod("authed", private_image, ["missing", "other-registry", "pull-creds"])
    assert api.post(PODS, json=body).status_code == 201
    pod = running(api, "authed", "app")
    events = api.get(EVENTS).text
    for shown in (json.dumps(pod), events):
        assert PASSWORD not in shown and auth not in shown
    assert "missing" in events  # kubelet: FailedToRetrieveImagePullSecret names the Secret it could not read


# --- static pods --------------------------------------------------------------------------------------------------


def static_pod(name: str, *, b_command: str = "sleep 3600", namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {"tier": "static"}}
    if namespace:
        meta["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {"name": "a", "image": BUSYBOX, "imagePullPolicy": "Never", "command": ["sleep", "3600"]},
                {"name": "b", "image": BUSYBOX, "imagePullPolicy": "Never", "command": ["sh", "-c", b_command]},
            ],
        },
    }


def write(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_name("." + path.name + ".tmp")  # hidden: the kubelet ignores dot files
    tmp.write_text(yaml.safe_dump(doc) if path.suffix in (".yaml", ".yml") else json.dumps(doc))
    tmp.replace(path)


def container_ids(pod: dict[str, Any]) -> dict[str, str]:
    return {name: c.get("containerID", "") for name, c in statuses(pod).items()}


def test_static_pods_from_a_folder_are_created_updated_and_removed_as_the_files_change(
    api: httpx.Client,
    apiserver: ApiServer,
    make_agent: Callable[..., node.NodeAgent],
    tmp_path: Path,
    _pod_engine: docker.DockerClient,
) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    write(manifests / "web.yaml", static_pod("web"))
    make_agent(pod_manifest_path=manifests, static_period=1.0)
    mirror_name = f"web-{apiserver.node_name}"
    pod = running(api, mirror_name, "a", "b")
    annotations = pod["metadata"]["annotations"]
    assert annotations["kubernetes.io/config.source"] == "file"
    assert annotations["kubernetes.io/config.mirror"] == annotations["kubernetes.io/config.hash"]
    assert pod["spec"]["nodeName"] == apiserver.node_name
    assert pod["metadata"]["labels"] == {"tier": "static"}
    before = container_ids(pod)
    assert all(before.values())

    write(manifests / "web.yaml", static_pod("web", b_command="sleep 3601"))

    def updated() -> dict[str, Any] | None:
        now = get_pod(api, mirror_name)
        if (
            not now
            or now["metadata"]["annotations"]["kubernetes.io/config.hash"] == annotations["kubernetes.io/config.hash"]
        ):
            return None
        ids = container_ids(now)
        cs = statuses(now)
        state = (cs.get("b") or {}).get("state") or {}  # a just-recreated mirror pod has no status for a while
        return now if ids.get("b") not in (None, "", before["b"]) and "running" in state else None

    after = wait(updated, "container b restarted with its new command")
    assert container_ids(after)["a"] == before["a"], "an unchanged container was restarted"
    assert after["spec"]["containers"][1]["command"] == ["sh", "-c", "sleep 3601"]

    (manifests / "web.yaml").unlink()
    wait(lambda: get_pod(api, mirror_name) is None, "the mirror pod to go")
    ids = {v.split("://")[-1] for v in before.values()}

    def containers_gone() -> bool:
        for cid in ids:
            try:
                _pod_engine.api.inspect_container(cid)
                return False
            except docker.errors.NotFound:
                continue
        return True

    wait(containers_gone, "the static pod's containers to go", timeout=30)


def test_a_bad_manifest_is_an_event_naming_the_file_and_field_and_the_rest_run(
    api: httpx.Client, apiserver: ApiServer, make_agent: Callable[..., node.NodeAgent], tmp_path: Path
) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    bad = static_pod("bad")
    del bad["spec"]["containers"][1]["image"]
    write(manifests / "bad.json", bad)
    (manifests / "garbage.yml").write_text("kind: Pod\nspec: [unclosed\n")
    (manifests / "notes.txt").write_text("not a manifest")
    write(manifests / "good.yml", static_pod("good"))
    make_agent(pod_manifest_path=manifests, static_period=1.0)
    running(api, f"good-{apiserver.node_name}", "a", "b")

    def event(file: str) -> dict[str, Any] | None:
        items = api.get(EVENTS).json()["items"]
        return next((e for e in items if file in e.get("message", "")), None)

    found = wait(lambda: event("bad.json"), "an Event about bad.json")
    assert found["type"] == "Warning" and found["reason"] == "FailedValidation"
    assert found["involvedObject"]["kind"] == "Node" and found["involvedObject"]["name"] == apiserver.node_name
    assert "spec.containers[1].image" in found["message"], found["message"]
    assert wait(lambda: event("garbage.yml"), "an Event about garbage.yml")["reason"] == "FailedValidation"
    assert get_pod(api, f"bad-{apiserver.node_name}") is None
    assert event("notes.txt") is None


@pytest.mark.parametrize("grace", [0, None], ids=["grace-0", "default-grace"])
def test_a_deleted_mirror_pod_is_recreated_and_its_containers_keep_running(
    api: httpx.Client,
    apiserver: ApiServer,
    make_agent: Callable[..., node.NodeAgent],
    tmp_path: Path,
    grace: int | None,
) -> None:
    """With a grace period the deleted mirror pod is Terminating first: the node removes it (grace period 0, as the
    kubelet's ``syncPod`` does with a mirror pod being deleted) and makes it again."""
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    doc = static_pod("keep")
    if grace is None:
        del doc["spec"]["terminationGracePeriodSeconds"]
    write(manifests / "keep.yaml", doc)
    make_agent(pod_manifest_path=manifests, static_period=1.0)
    name = f"keep-{apiserver.node_name}"
    pod = running(api, name, "a", "b")
    assert api.delete(f"{PODS}/{name}").status_code == 200
    again = wait(
        lambda: (p := get_pod(api, name)) and p["metadata"]["uid"] != pod["metadata"]["uid"] and p,
        "the mirror pod to come back",
    )
    back = running(api, name, "a", "b")
    assert container_ids(back) == container_ids(pod), "the static pod's containers were restarted"
    assert again["metadata"]["annotations"]["kubernetes.io/config.mirror"]


def test_an_orphaned_mirror_pod_being_deleted_is_removed(
    api: httpx.Client, apiserver: ApiServer, make_agent: Callable[..., node.NodeAgent], tmp_path: Path
) -> None:
    """kubelet ``deleteOrphanedMirrorPods`` also removes a mirror pod whose graceful deletion was asked for: no
    static pod is left to stop, so nothing else would ever end its Terminating."""
    node_body = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": apiserver.node_name}}
    assert api.post("/api/v1/nodes", json=node_body).status_code in (201, 409)
    body = static_pod("gone")
    body["metadata"]["name"] = f"gone-{apiserver.node_name}"
    body["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "abc", "kubernetes.io/config.source": "file"}
    del body["spec"]["terminationGracePeriodSeconds"]
    body["spec"]["nodeName"] = apiserver.node_name
    with apiserver.client(token=apiserver.node_token) as as_node:
        assert as_node.post(PODS, json=body).status_code == 201
    assert api.delete(f"{PODS}/gone-{apiserver.node_name}").json()["metadata"]["deletionGracePeriodSeconds"] == 30
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    make_agent(pod_manifest_path=manifests, static_period=1.0)
    wait(lambda: get_pod(api, f"gone-{apiserver.node_name}") is None, "the orphaned mirror pod to go", timeout=30)


class _Manifest(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/yaml")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


def test_a_static_pod_from_a_manifest_url(
    api: httpx.Client, apiserver: ApiServer, make_agent: Callable[..., node.NodeAgent]
) -> None:
    _Manifest.body = yaml.safe_dump(static_pod("fromurl")).encode()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Manifest)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/pod.yaml"
        make_agent(manifest_url=url, static_period=1.0, url_period=1.0)
        name = f"fromurl-{apiserver.node_name}"
        pod = running(api, name, "a", "b")
        assert pod["metadata"]["annotations"]["kubernetes.io/config.source"] == "http"
        _Manifest.body = b""  # kubelet: an empty answer means no pods
        wait(lambda: get_pod(api, name) is None, "the mirror pod to go")
    finally:
        httpd.shutdown()


@pytest.mark.parametrize(
    "url", ["http://10.88.0.1/pod.yaml", "https://example.com/pod.yaml", "file:///etc/passwd", "http://[::2]/x"]
)
def test_a_manifest_url_off_loopback_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        staticpods.check_manifest_url(url)
    staticpods.check_manifest_url("http://127.0.0.1:8080/pods.yaml")
    staticpods.check_manifest_url("https://localhost/pods.json")
