"""PodRuntime against a real Podman service (``podman system service``).

The engine is our own service on a socket in a tmp dir (``_pod_engine``);
images are built locally from the static busybox, nothing is pulled. All
traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import io
import ipaddress
import json
import shutil
import socket
import subprocess
import tarfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
from lightkube.resources.core_v1 import Pod

import processes
from dockyard.agent import podspec
from dockyard.agent.pods import PodRuntime
from dockyard.api import services

BUSYBOX = "localhost/test-busybox:1"
FAST = podspec.BackOffPolicy(initial=1.0, maximum=4.0)

pytestmark = pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed")


def _ensure_host_config() -> None:
    """What scripts/bootstrap.sh sets up; written here only when missing."""
    conf = Path("/etc/containers/containers.conf")
    if not conf.exists():
        nofile = subprocess.run(["sh", "-c", "ulimit -Hn"], capture_output=True, text=True).stdout.strip()
        nproc = subprocess.run(["sh", "-c", "ulimit -Hu"], capture_output=True, text=True).stdout.strip()
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(
            "[containers]\n"
            f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
            '[engine]\nruntime = "runc"\n'
        )
    drop_in = Path("/etc/containers/registries.conf.d")
    drop_in.mkdir(parents=True, exist_ok=True)
    if not any("127.0.0.1" in p.read_text() for p in drop_in.glob("*.conf")):
        (drop_in / "50-dockyard-loopback.conf").write_text('[[registry]]\nlocation = "127.0.0.1"\ninsecure = true\n')


@pytest.fixture(scope="session")
def _pod_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[docker.DockerClient]:
    """Our own Podman service, stopped at the end of the session."""
    _ensure_host_config()
    run_dir = tmp_path_factory.mktemp("pod-engine")
    sock = run_dir / "podman.sock"
    log = open(run_dir / "service.log", "wb")  # noqa: SIM115 — held by the child process
    proc = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{sock}"], stdout=log, stderr=subprocess.STDOUT
    )
    client = None
    try:
        client = docker.DockerClient(base_url=f"unix://{sock}", version="1.41", timeout=60)
        deadline = time.monotonic() + 30
        while True:
            try:
                if sock.exists() and client.ping():
                    break
            except Exception:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"podman service did not answer: {(run_dir / 'service.log').read_text()}")
            time.sleep(0.1)
        _build_busybox(client)
        yield client
    finally:
        if client is not None:
            client.close()
        processes.stop(proc)
        log.close()


def _build_busybox(client: docker.DockerClient) -> None:
    try:
        client.api.inspect_image(BUSYBOX)
        return
    except docker.errors.ImageNotFound:
        pass
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data, mode in (
            (
                "Dockerfile",
                b'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox","--install","-s","/bin"]\n',
                0o644,
            ),
            ("busybox", Path("/bin/busybox").read_bytes(), 0o755),
        ):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    for line in client.api.build(fileobj=buf, custom_context=True, tag=BUSYBOX, rm=True, decode=True):
        assert "error" not in line, line


@pytest.fixture
def runtime(_pod_engine: docker.DockerClient, tmp_path: Path) -> Iterator[Callable[[], PodRuntime]]:
    """A factory of PodRuntimes sharing one state dir; pods left over are killed."""
    made: list[PodRuntime] = []

    def make() -> PodRuntime:
        rt = PodRuntime(_pod_engine, node_name="test", state_dir=tmp_path / "state", backoff=FAST)
        made.append(rt)
        return rt

    yield make
    if made:
        for uid in made[0].pod_uids() & _uids:
            made[0].kill_pod(uid, grace_period_seconds=0)


_uids: set[str] = set()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _sync(rt: PodRuntime, pod: dict[str, Any]) -> dict[str, Any]:
    """One sync of the pod (given and returned in its wire form): the typed Pod in, its status out as JSON."""
    status: dict[str, Any] = rt.sync_pod(Pod.from_dict(pod)).to_dict()
    return status


def _pod(containers: list[dict[str, Any]], *, restart_policy: str = "Always", **spec: Any) -> dict[str, Any]:
    uid = str(uuid.uuid4())
    _uids.add(uid)
    for c in containers:
        c.setdefault("image", BUSYBOX)
        c.setdefault("imagePullPolicy", "Never")
    return {
        "metadata": {"name": f"p-{uid[:6]}", "namespace": "default", "uid": uid},
        "spec": {"containers": containers, "restartPolicy": restart_policy, "terminationGracePeriodSeconds": 1, **spec},
        "status": {},
    }


def _sync_until(
    rt: PodRuntime, pod: dict[str, Any], ok: Callable[[dict[str, Any]], bool], timeout: float = 15.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        pod["status"] = _sync(rt, pod)
        status: dict[str, Any] = pod["status"]
        if ok(status):
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; last status: {pod['status']}")
        time.sleep(0.2)


def _cs(status: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in status["containerStatuses"] if c["name"] == name)


def _running(*names: str) -> Callable[[dict[str, Any]], bool]:
    return lambda s: all("running" in _cs(s, n)["state"] for n in names)


def _engine_containers(client: docker.DockerClient, uid: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = client.api.containers(all=True, filters={"label": f"{podspec.LABEL_POD_UID}={uid}"})
    return found


def _web_pod(host_port: int) -> dict[str, Any]:
    return _pod(
        [
            {
                "name": "web",
                "command": [
                    "sh",
                    "-c",
                    "mkdir -p /www && echo hello-$(GREETING) > /www/index.html && exec httpd -f -p 8080 -h /www",
                ],
                "env": [{"name": "GREETING", "value": "pod"}],
                "ports": [{"containerPort": 8080, "hostPort": host_port}],
            },
            {
                "name": "client",
                "command": [
                    "sh",
                    "-c",
                    "mkdir -p /tmp; while true; do wget -qO- http://127.0.0.1:8080/ > /tmp/got 2>&1; sleep 0.2; done",
                ],
            },
        ]
    )


def test_two_container_pod_shares_netns_and_publishes_on_loopback(
    runtime: Callable[[], PodRuntime], _pod_engine: docker.DockerClient
) -> None:
    rt = runtime()
    port = _free_port()
    pod = _web_pod(port)
    status = _sync_until(rt, pod, _running("web", "client"))
    assert status["phase"] == "Running"
    assert status["hostIP"] == "127.0.0.1"
    pod_ip = status["podIP"]  # the pod's own loopback address
    assert ipaddress.ip_address(pod_ip) in services.POD_CIDR and status["podIPs"] == [{"ip": pod_ip}]
    assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "True"
    web = _cs(status, "web")
    assert web["containerID"].startswith("podman://") and web["ready"] and web["restartCount"] == 0
    assert web["imageID"]

    deadline = time.monotonic() + 10
    while True:  # the host reaches the published port on 127.0.0.1
        try:
            assert httpx.get(f"http://127.0.0.1:{port}/", timeout=2).text == "hello-pod\n"
            assert httpx.get(f"http://{pod_ip}:8080/", timeout=2).text == "hello-pod\n"  # containerPort
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    client_id = rt.container_id(pod, "client")
    assert client_id is not None
    deadline = time.monotonic() + 10
    while True:  # the other container reaches it on its own loopback: one network namespace
        out = _pod_engine.api.exec_start(_pod_engine.api.exec_create(client_id, ["cat", "/tmp/got"])["Id"])
        if out == b"hello-pod\n":
            break
        assert time.monotonic() < deadline, out
        time.sleep(0.2)

    # Infra publishes only on loopback.
    infra = [
        c
        for c in _engine_containers(_pod_engine, pod["metadata"]["uid"])
        if c["Labels"][podspec.LABEL_CONTAINER_NAME] == "POD"
    ]
    assert len(infra) == 1
    bindings = _pod_engine.api.inspect_container(infra[0]["Id"])["HostConfig"]["PortBindings"]
    assert list(bindings) == ["8080/tcp"]
    assert sorted(bindings["8080/tcp"], key=lambda b: b["HostIp"]) == sorted(
        [{"HostIp": "127.0.0.1", "HostPort": str(port)}, {"HostIp": pod_ip, "HostPort": "8080"}],
        key=lambda b: b["HostIp"],
    )

    # Steady state: syncing again changes nothing.
    before = {c["Id"] for c in _engine_containers(_pod_engine, pod["metadata"]["uid"])}
    for _ in range(3):
        pod["status"] = _sync(rt, pod)
    assert {c["Id"] for c in _engine_containers(_pod_engine, pod["metadata"]["uid"])} == before

    # A new runtime (the agent restarted) adopts the containers instead of duplicating them.
    fresh = runtime()
    pod["status"] = _sync(fresh, pod)
    assert {c["Id"] for c in _engine_containers(_pod_engine, pod["metadata"]["uid"])} == before
    assert _cs(pod["status"], "web")["containerID"] == web["containerID"]
    assert pod["metadata"]["uid"] in fresh.pod_uids()

    fresh.kill_pod(pod["metadata"]["uid"], grace_period_seconds=1)
    assert _engine_containers(_pod_engine, pod["metadata"]["uid"]) == []
    assert pod["metadata"]["uid"] not in fresh.pod_uids()
    fresh.kill_pod(pod["metadata"]["uid"])  # idempotent


def test_spec_change_restarts_only_that_container(
    runtime: Callable[[], PodRuntime], _pod_engine: docker.DockerClient
) -> None:
    rt = runtime()
    pod = _pod([{"name": "a", "command": ["sleep", "3600"]}, {"name": "b", "command": ["sleep", "3600"]}])
    status = _sync_until(rt, pod, _running("a", "b"))
    a_id, b_id = _cs(status, "a")["containerID"], _cs(status, "b")["containerID"]

    pod["spec"]["containers"][1]["command"] = ["sleep", "3601"]
    status = _sync_until(rt, pod, lambda s: _cs(s, "b")["containerID"] != b_id and "running" in _cs(s, "b")["state"])
    assert _cs(status, "a")["containerID"] == a_id and _cs(status, "a")["restartCount"] == 0
    assert _cs(status, "b")["restartCount"] == 1
    assert "terminated" in _cs(status, "b")["lastState"]


def test_restart_always_restarts_with_backoff_and_on_failure_keeps_success(
    runtime: Callable[[], PodRuntime],
) -> None:
    rt = runtime()
    crash = _pod([{"name": "crash", "command": ["sh", "-c", "sleep 0.3; exit 3"]}])
    # First restart is immediate, the second waits the (1 s) back-off: kubelet doBackOff.
    status = _sync_until(rt, crash, lambda s: _cs(s, "crash")["restartCount"] >= 2, timeout=20)
    assert status["phase"] == "Running"
    seen_backoff = False
    deadline = time.monotonic() + 10
    while not seen_backoff and time.monotonic() < deadline:
        crash["status"] = _sync(rt, crash)
        waiting = _cs(crash["status"], "crash")["state"].get("waiting") or {}
        if waiting.get("reason") == "CrashLoopBackOff":
            seen_backoff = True
            assert _cs(crash["status"], "crash")["lastState"]["terminated"]["exitCode"] == 3
            # The back-off is derived from the engine: a restarted agent sees it too.
            adopted = _sync(runtime(), crash)
            assert _cs(adopted, "crash")["state"]["waiting"]["reason"] == "CrashLoopBackOff"
            assert _cs(adopted, "crash")["restartCount"] == _cs(crash["status"], "crash")["restartCount"]
        time.sleep(0.1)
    assert seen_backoff

    done = _pod(
        [{"name": "job", "command": ["true"]}, {"name": "side", "command": ["sleep", "3600"]}],
        restart_policy="OnFailure",
    )
    status = _sync_until(rt, done, lambda s: "terminated" in _cs(s, "job")["state"])
    for _ in range(5):
        done["status"] = status = _sync(rt, done)
        time.sleep(0.1)
    job = _cs(status, "job")
    assert job["restartCount"] == 0 and job["state"]["terminated"]["reason"] == "Completed"
    assert status["phase"] == "Running"  # the side container still runs


def test_never_policy_reaches_terminal_phase(runtime: Callable[[], PodRuntime]) -> None:
    rt = runtime()
    ok = _pod([{"name": "a", "command": ["true"]}], restart_policy="Never")
    assert _sync_until(rt, ok, lambda s: s["phase"] == "Succeeded")["phase"] == "Succeeded"
    bad = _pod(
        [{"name": "a", "command": ["sh", "-c", "exit 7"]}, {"name": "b", "command": ["true"]}], restart_policy="Never"
    )
    status = _sync_until(rt, bad, lambda s: s["phase"] == "Failed")
    assert _cs(status, "a")["state"]["terminated"]["exitCode"] == 7
    # Terminal stays terminal.
    assert _sync(rt, bad)["phase"] == "Failed"


def test_volumes_resources_and_deletion(
    runtime: Callable[[], PodRuntime], _pod_engine: docker.DockerClient, tmp_path: Path
) -> None:
    rt = runtime()
    host_dir = tmp_path / "host"
    host_dir.mkdir()
    (host_dir / "in.txt").write_text("from-host")
    pod = _pod(
        [
            {
                "name": "w",
                "command": [
                    "sh",
                    "-c",
                    "cat /host/in.txt > /scratch/copy; touch /host/x 2>/dev/null || echo ro > /scratch/ro; exec sleep 3600",
                ],
                "volumeMounts": [
                    {"name": "h", "mountPath": "/host", "readOnly": True},
                    {"name": "s", "mountPath": "/scratch"},
                ],
                "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}},
            }
        ],
        volumes=[{"name": "h", "hostPath": {"path": str(host_dir)}}, {"name": "s", "emptyDir": {}}],
    )
    _sync_until(rt, pod, _running("w"))
    uid = pod["metadata"]["uid"]
    scratch = tmp_path / "state" / "pods" / uid / "volumes" / "kubernetes.io~empty-dir" / "s"
    deadline = time.monotonic() + 10
    while not (scratch / "ro").exists():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert (scratch / "copy").read_text() == "from-host"
    w_id = rt.container_id(pod, "w")
    assert w_id is not None
    host_config = _pod_engine.api.inspect_container(w_id)["HostConfig"]
    assert host_config["NanoCpus"] == 500_000_000 and host_config["Memory"] == 64 * 2**20

    pod["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    pod["metadata"]["deletionGracePeriodSeconds"] = 1
    status = _sync_until(rt, pod, lambda s: uid not in rt.pod_uids(), timeout=10)
    assert status["phase"] == "Failed"  # killed by the deletion
    assert not scratch.exists()


def test_refuses_non_loopback_host_ip_and_reports_missing_image(runtime: Callable[[], PodRuntime]) -> None:
    rt = runtime()
    pod = _pod(
        [
            {
                "name": "a",
                "command": ["sleep", "5"],
                "ports": [{"containerPort": 80, "hostPort": _free_port(), "hostIP": "0.0.0.0"}],
            }
        ]
    )
    status = _sync(rt, pod)
    assert status["phase"] == "Failed" and "spec.containers[0].ports[0].hostIP" in status["message"]
    assert pod["metadata"]["uid"] not in rt.pod_uids()

    missing = _pod([{"name": "a", "image": "localhost/does-not-exist:1", "imagePullPolicy": "Never"}])
    status = _sync(rt, missing)
    assert _cs(status, "a")["state"]["waiting"]["reason"] == "ErrImageNeverPull"
    assert status["phase"] == "Pending"

    unpullable = _pod([{"name": "a", "image": f"127.0.0.1:{_free_port()}/nope:1", "imagePullPolicy": "IfNotPresent"}])
    started = time.monotonic()
    status = _sync(rt, unpullable)
    assert time.monotonic() - started < 10
    assert _cs(status, "a")["state"]["waiting"]["reason"] == "ErrImagePull", status
    print(_cs(status, "a")["state"]["waiting"]["message"])
    status = _sync(rt, unpullable)
    assert _cs(status, "a")["state"]["waiting"]["reason"] == "ImagePullBackOff"


def test_start_failure_and_busy_host_port(runtime: Callable[[], PodRuntime]) -> None:
    rt = runtime()
    pod = _pod([{"name": "a", "command": ["/no/such/binary"]}], restart_policy="Never")
    status = _sync_until(rt, pod, lambda s: s["phase"] == "Failed")
    terminated = _cs(status, "a")["state"]["terminated"]
    assert terminated["reason"] == "StartError" and terminated["exitCode"] == 128

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        blocked = _pod([{"name": "a", "command": ["sleep", "60"], "ports": [{"containerPort": 80, "hostPort": port}]}])
        status = _sync(rt, blocked)
        assert status["phase"] == "Pending"
        assert "pod sandbox" in status["message"]
        assert _cs(status, "a")["state"]["waiting"]["reason"] == "ContainerCreating"


def test_port_change_recreates_the_sandbox(runtime: Callable[[], PodRuntime], _pod_engine: docker.DockerClient) -> None:
    rt = runtime()
    pod = _web_pod(_free_port())
    _sync_until(rt, pod, _running("web", "client"))
    new_port = _free_port()
    pod["spec"]["containers"][0]["ports"][0]["hostPort"] = new_port
    status = _sync_until(rt, pod, lambda s: _running("web", "client")(s) and _cs(s, "web")["restartCount"] == 1)
    assert _cs(status, "client")["restartCount"] == 1
    deadline = time.monotonic() + 10
    while True:
        try:
            assert httpx.get(f"http://127.0.0.1:{new_port}/", timeout=2).text == "hello-pod\n"
            break
        except httpx.HTTPError:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    running_infra = [
        c
        for c in _engine_containers(_pod_engine, pod["metadata"]["uid"])
        if c["Labels"][podspec.LABEL_CONTAINER_NAME] == "POD" and c["State"] == "running"
    ]
    assert len(running_infra) == 1


def test_adopts_a_container_created_but_not_started(
    runtime: Callable[[], PodRuntime], _pod_engine: docker.DockerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent died between create and start: the next agent starts that container."""
    crashed = runtime()
    monkeypatch.setattr(crashed.containers, "start_existing", lambda container_id: None)
    pod = _pod([{"name": "a", "command": ["sleep", "3600"]}])
    _sync(crashed, pod)
    created = [
        c
        for c in _engine_containers(_pod_engine, pod["metadata"]["uid"])
        if c["Labels"][podspec.LABEL_CONTAINER_NAME] == "a"
    ]
    assert [c["State"] for c in created] == ["created"]

    status = _sync_until(runtime(), pod, _running("a"))
    assert _cs(status, "a")["containerID"].endswith(created[0]["Id"])
    assert _cs(status, "a")["restartCount"] == 0
    assert len(_engine_containers(_pod_engine, pod["metadata"]["uid"])) == 2  # infra + a, no duplicates


# --- subPath (CVE-2017-1002101: a symlink swapped in by the container must not redirect the mount) ---------


def _mount_points_under(path: Path) -> list[str]:
    """Mount points at or below ``path`` in this mount namespace (``/proc/self/mountinfo`` field 5)."""
    root = str(path.resolve())
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")
        if point == root or point.startswith(root + "/"):
            points.append(point)
    return points


def _waiting(status: dict[str, Any], name: str) -> dict[str, Any]:
    return _cs(status, name)["state"].get("waiting") or {}


def test_subpath_symlink_swapped_in_by_the_container_is_refused_on_restart(
    runtime: Callable[[], PodRuntime], tmp_path: Path
) -> None:
    """The attack: the container replaces its subPath directory by a symlink to ``/`` and exits; on restart
    the kubelet before 1.10 mounted the host's ``/`` there. Now the restart is refused with
    ``CreateContainerConfigError``, nothing is mounted, and the pod's other container keeps running."""
    rt = runtime()
    secret = tmp_path / "outside" / "sentinel"
    secret.parent.mkdir()
    secret.write_text("host-secret-7c1f")
    script = (
        f"if [ -L /data/cfg ]; then cat /cfg{secret} > /data/leak 2>&1; exec sleep 3600; fi; "
        "echo ok > /cfg/m && cat /data/cfg/m > /data/first && rm -rf /data/cfg && ln -s / /data/cfg"
    )
    pod = _pod(
        [
            {
                "name": "evil",
                "command": ["sh", "-c", script],
                "volumeMounts": [
                    {"name": "data", "mountPath": "/data"},
                    {"name": "data", "mountPath": "/cfg", "subPath": "cfg"},
                ],
            },
            {"name": "side", "command": ["sleep", "3600"]},
        ],
        volumes=[{"name": "data", "emptyDir": {}}],
    )
    uid = pod["metadata"]["uid"]
    data = tmp_path / "state" / "pods" / uid / "volumes" / "kubernetes.io~empty-dir" / "data"
    status = _sync_until(
        rt,
        pod,
        lambda s: (data / "leak").exists() or _waiting(s, "evil").get("reason") == "CreateContainerConfigError",
        timeout=30,
    )
    assert not (data / "leak").exists() or "host-secret" not in (data / "leak").read_text(), "host file leaked"
    assert (data / "first").read_text().strip() == "ok"  # the first run had its subPath (created by the agent)
    assert (data / "cfg").is_symlink()
    waiting = _waiting(status, "evil")
    assert waiting["reason"] == "CreateContainerConfigError"
    assert '"cfg"' in waiting["message"] and "evil" in waiting["message"]
    assert _cs(status, "evil")["lastState"]["terminated"]["exitCode"] == 0
    # The refusal holds on later syncs; the other container is untouched; nothing stays mounted for it.
    for _ in range(5):
        pod["status"] = status = _sync(rt, pod)
        assert "running" not in _cs(status, "evil")["state"]
        time.sleep(0.2)
    assert not (data / "leak").exists()
    assert "running" in _cs(status, "side")["state"] and _cs(status, "side")["restartCount"] == 0
    assert _mount_points_under(tmp_path / "state" / "pods" / uid) == []


def test_subpath_on_host_path_creates_dirs_refuses_escapes_and_cleans_up(
    runtime: Callable[[], PodRuntime], tmp_path: Path
) -> None:
    """Missing subPath directories are made beneath the volume; a symlink leaving the volume (made on the
    host) is refused for that container only; pod deletion unmounts the staged subPaths and leaves the
    hostPath's files alone."""
    rt = runtime()
    host = tmp_path / "host"
    host.mkdir()
    (host / "conf.txt").write_text("from-file")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "sentinel").write_text("host-secret-9d2e")
    (host / "escape").symlink_to(outside)
    pod = _pod(
        [
            {
                "name": "w",
                "command": ["sh", "-c", "echo w > /deep/f && cat /conf > /deep/conf-copy && exec sleep 3600"],
                "volumeMounts": [
                    {"name": "h", "mountPath": "/deep", "subPath": "a/b/c"},
                    {"name": "h", "mountPath": "/conf", "subPath": "conf.txt", "readOnly": True},
                ],
            },
            {
                "name": "esc",
                "command": ["sh", "-c", "cat /x/sentinel > /dev/null && exec sleep 3600"],
                "volumeMounts": [{"name": "h", "mountPath": "/x", "subPath": "escape"}],
            },
        ],
        volumes=[{"name": "h", "hostPath": {"path": str(host)}}],
    )
    uid = pod["metadata"]["uid"]
    status = _sync_until(
        rt, pod, lambda s: _running("w")(s) and _waiting(s, "esc").get("reason") == "CreateContainerConfigError"
    )
    assert '"escape"' in _waiting(status, "esc")["message"]
    deadline = time.monotonic() + 10
    while not (host / "a" / "b" / "c" / "conf-copy").exists():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert (host / "a" / "b" / "c" / "f").read_text() == "w\n"
    assert (host / "a" / "b" / "c" / "conf-copy").read_text() == "from-file"
    assert len(_mount_points_under(tmp_path / "state" / "pods" / uid)) == 2  # w's two staged subPaths

    pod["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    pod["metadata"]["deletionGracePeriodSeconds"] = 1
    _sync_until(rt, pod, lambda s: uid not in rt.pod_uids(), timeout=10)
    assert _mount_points_under(tmp_path / "state" / "pods" / uid) == []
    assert not (tmp_path / "state" / "pods" / uid).exists()
    assert (host / "a" / "b" / "c" / "f").read_text() == "w\n"  # unmounted first, never deleted through a mount
    assert (host / "conf.txt").read_text() == "from-file"
    assert (outside / "sentinel").exists()


def test_the_termination_message_is_read_from_the_containers_message_file(runtime: Callable[[], PodRuntime]) -> None:
    """The kubelet's ``terminationMessagePath`` contract: a file the container may write (``/dev/termination-log``
    by default, any absolute path otherwise), read when it ends into ``state.terminated.message`` (at most 4096
    bytes); ``FallbackToLogsOnError``: the end of its output when the file is empty and it failed. A restart
    keeps the previous attempt's message in ``lastState``."""
    rt = runtime()
    pod = _pod(
        [
            {"name": "default", "command": ["sh", "-c", "printf 'all done' > /dev/termination-log"]},
            {
                "name": "custom",
                "command": ["sh", "-c", "echo -n $(seq 1 2000 | tr -d '\\n') > /tmp/why; exit 3"],
                "terminationMessagePath": "/tmp/why",
            },
            {
                "name": "fallback",
                "command": ["sh", "-c", "echo first; echo last words; exit 2"],
                "terminationMessagePolicy": "FallbackToLogsOnError",
            },
            {"name": "silent", "command": ["sh", "-c", "echo not a message; exit 1"]},
        ],
        restart_policy="Never",
    )
    status = _sync_until(rt, pod, lambda s: s["phase"] == "Failed")
    assert _cs(status, "default")["state"]["terminated"]["message"] == "all done"
    custom = _cs(status, "custom")["state"]["terminated"]["message"]
    assert len(custom) == 4096 and custom.startswith("123456789101112")  # the file's first 4096 bytes
    assert _cs(status, "fallback")["state"]["terminated"]["message"] == "first\nlast words\n"
    assert "message" not in _cs(status, "silent")["state"]["terminated"]
    again = _pod(
        [{"name": "a", "command": ["sh", "-c", "printf run-$RANDOM > /dev/termination-log; exit 1"]}],
        restart_policy="Always",
    )
    status = _sync_until(rt, again, lambda s: (_cs(s, "a").get("lastState") or {}).get("terminated") is not None, 30)
    assert _cs(status, "a")["lastState"]["terminated"]["message"].startswith("run-")


def test_every_container_sees_the_pods_hostname(runtime: Callable[[], PodRuntime]) -> None:
    """As the kubelet sets it: the pod's name, or ``spec.hostname`` when given, in every container of the pod
    (one UTS namespace, the sandbox's), not the engine's name for each container."""
    rt = runtime()
    says_hostname = ["sh", "-c", "hostname > /dev/termination-log"]
    pod = _pod(
        [{"name": "a", "command": says_hostname}, {"name": "b", "command": says_hostname}], restart_policy="Never"
    )
    named = _pod([{"name": "a", "command": says_hostname}], restart_policy="Never", hostname="custom-host")
    for p in (pod, named):
        _sync_until(rt, p, lambda s: s["phase"] == "Succeeded")
    messages = [_cs(pod["status"], n)["state"]["terminated"]["message"] for n in ("a", "b")]
    assert messages == [pod["metadata"]["name"] + "\n"] * 2
    assert _cs(named["status"], "a")["state"]["terminated"]["message"] == "custom-host\n"


def test_a_never_pod_whose_sandbox_died_is_killed_and_fails(
    runtime: Callable[[], PodRuntime], _pod_engine: docker.DockerClient
) -> None:
    """kubelet ``computePodActions``: a sandbox that must be re-created for a Never pod whose containers already
    ran is not (``CreateSandbox=false``), and the pod is killed (``KillPod``): its containers stop, it ends Failed."""
    rt = runtime()
    pod = _pod([{"name": "a", "command": ["sleep", "3600"]}], restart_policy="Never")
    _sync_until(rt, pod, _running("a"))
    (infra,) = [
        c
        for c in _engine_containers(_pod_engine, pod["metadata"]["uid"])
        if c["Labels"][podspec.LABEL_CONTAINER_NAME] == "POD"
    ]
    _pod_engine.api.kill(infra["Id"], signal="SIGKILL")
    status = _sync_until(rt, pod, lambda s: s["phase"] == "Failed", timeout=30)
    assert "terminated" in _cs(status, "a")["state"]
    running = [c for c in _engine_containers(_pod_engine, pod["metadata"]["uid"]) if c["State"] == "running"]
    assert running == []


def test_a_container_whose_engine_containers_are_gone_counts_a_restart(
    runtime: Callable[[], PodRuntime], _pod_engine: docker.DockerClient
) -> None:
    """A clean stop of the node removes every container; the next start runs the pod's containers again as a
    restart (``restartCount`` goes on from the status the API holds), not as a first run."""
    rt = runtime()
    pod = _pod([{"name": "a", "command": ["sleep", "3600"]}])
    status = _sync_until(rt, pod, _running("a"))
    assert _cs(status, "a")["restartCount"] == 0
    rt.kill_pod(pod["metadata"]["uid"], grace_period_seconds=1)  # what stop_pods does to each pod
    fresh = runtime()
    status = _sync_until(fresh, pod, _running("a"))
    assert _cs(status, "a")["restartCount"] == 1


def test_a_closed_runtime_starts_no_container(runtime: Callable[[], PodRuntime]) -> None:
    """Once the agent stops (``PodRuntime.close``), a sync still under way or coming later creates and starts
    nothing: a sync that outlasted ``stop_pods``' wait (a pull, say) used to start its containers after the
    others were stopped, and they ran on with no agent (found after a test run: four such containers)."""
    rt = runtime()
    running = _pod([{"name": "a", "command": ["sleep", "3600"]}])
    _sync_until(rt, running, lambda s: "running" in (s.get("containerStatuses") or [{}])[0].get("state", {}))
    rt.close()
    fresh = _pod([{"name": "b", "command": ["sleep", "3600"]}])
    status = _sync(rt, fresh)
    assert fresh["metadata"]["uid"] not in rt.pod_uids(), "a container was made after close()"
    assert "stopping" in json.dumps(status), status
    assert running["metadata"]["uid"] in rt.pod_uids()  # what runs is the stop's to end, not close()'s
