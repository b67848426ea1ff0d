"""Benchmark: dockyard's Build and Push against the raw engine doing the same work.

One run starts ``dockyard up`` (temporary data dir, free ports on 127.0.0.1,
engine ``auto``), makes the busybox base image, then measures, round by round:

build
    dockyard: ``POST .../buildconfigs/bench-hello/instantiate`` → the Build's
    ``status.phase`` is ``Complete`` (seen through a watch). Each round commits
    a new ``index.html`` to the git source first, so the ``COPY`` layer is new.
    raw: ``podman --url unix://SOCK build`` of the same context with the same
    kind of change + ``podman push --tls-verify=false`` to the same registry.
push
    dockyard: ``POST .../pushes`` (the object ``dockyard commit POD/web REF``
    creates) → ``status.phase`` is ``Succeeded``.
    raw: ``podman commit --pause=true`` + ``podman push`` of the same engine
    container (found by its ``dockyard.pod.*`` labels) to another tag.

Both sides talk to the same engine socket and the same registry; rounds
alternate which side goes first. Prints a table (medians, ratio dockyard/raw)
and, as its last stdout line, one JSON summary. ``dockyard up`` is stopped
with SIGTERM at the end, also on failure.

Usage: .venv/bin/python bench/build_push.py [--rounds N] [--warmup N] [--workdir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "examples" / "hello" / "app"
BIN = Path(sys.executable).parent
GROUP = "/apis/dockyard.dev/v1alpha1"
NS = "default"
BUILDCONFIG = "bench-hello"
POD = "bench-web"
CONTAINER = "web"
BUILD_TERMINAL = ("Complete", "Failed", "Error", "Cancelled")
PUSH_TERMINAL = ("Succeeded", "Failed")
ACCEPT_MANIFESTS = ", ".join((
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
))

# Every wait is bounded (seconds).
UP_READY_TIMEOUT = 120
BUILD_TIMEOUT = 300
PUSH_TIMEOUT = 180
POD_TIMEOUT = 180
RAW_STEP_TIMEOUT = 300
CLI_TIMEOUT = 300
STOP_TIMEOUT = 15

console = Console(stderr=True, highlight=False)


class BenchError(Exception):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def fmt(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _processes_naming(text: str) -> list[int]:
    """PIDs whose command line contains ``text`` (read from /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


# --- the raw engine ------------------------------------------------------------------------------


class RawPodman:
    """The engine driven by hand with the podman CLI in remote mode, against dockyard's engine socket."""

    name = "podman CLI"

    def __init__(self, endpoint: str) -> None:
        self.base = ["podman", "--url", endpoint]

    def _run(self, *args: str) -> str:
        out = subprocess.run([*self.base, *args], capture_output=True, text=True, timeout=RAW_STEP_TIMEOUT,
                             stdin=subprocess.DEVNULL)
        if out.returncode != 0:
            raise BenchError(f"`podman {' '.join(args)}` exited {out.returncode}:\n{out.stdout[-1500:]}\n"
                             f"{out.stderr[-1500:]}")
        return out.stdout

    def build(self, context: Path, ref: str, buildargs: dict[str, str]) -> None:
        args = ["build", "--quiet", "-t", ref, "-f", str(context / "Dockerfile")]
        for k, v in buildargs.items():
            args += ["--build-arg", f"{k}={v}"]
        self._run(*args, str(context))

    def push(self, ref: str) -> None:
        self._run("push", "--quiet", "--tls-verify=false", ref)

    def commit(self, container: str, ref: str) -> None:
        self._run("commit", "--quiet", "--pause=true", container, ref)

    def find_container(self, pod_uid: str, container: str) -> str | None:
        out = self._run("ps", "-q", "--no-trunc", "--filter", f"label=dockyard.pod.uid={pod_uid}",
                        "--filter", f"label=dockyard.container.name={container}", "--filter", "status=running")
        ids = out.split()
        return ids[0] if ids else None

    def pod_containers(self, pod_uid: str) -> list[str]:
        return self._run("ps", "-a", "-q", "--filter", f"label=dockyard.pod.uid={pod_uid}").split()

    def put_file(self, container: str, path: str, content: str) -> None:
        # `podman cp` goes through the archive API: no exec session (whose conmon lingers for 5 minutes)
        with tempfile.NamedTemporaryFile("w", suffix=".txt") as fh:
            fh.write(content)
            fh.flush()
            self._run("cp", fh.name, f"{container}:{path}")

    def image_id(self, ref: str) -> str | None:
        try:
            return self._run("image", "inspect", "--format", "{{.Id}}", ref).strip() or None
        except BenchError:
            return None

    def rmi(self, images: list[str]) -> None:
        if images:
            subprocess.run([*self.base, "rmi", "--ignore", *images], capture_output=True, timeout=120,
                           stdin=subprocess.DEVNULL)


class RawDockerPy:
    """The same calls through docker-py (used when the engine is Docker Engine, where the podman CLI cannot go)."""

    name = "docker-py"

    def __init__(self, endpoint: str) -> None:
        import docker

        self.client = docker.DockerClient(base_url=endpoint, timeout=RAW_STEP_TIMEOUT)

    @staticmethod
    def _check_stream(what: str, stream) -> None:
        for chunk in stream:
            if isinstance(chunk, dict) and (chunk.get("error") or chunk.get("errorDetail")):
                raise BenchError(f"{what}: {chunk.get('error') or chunk.get('errorDetail')}")

    def build(self, context: Path, ref: str, buildargs: dict[str, str]) -> None:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(str(context), arcname=".")
        buf.seek(0)
        self._check_stream(f"build {ref}", self.client.api.build(
            fileobj=buf, custom_context=True, tag=ref, buildargs=buildargs, rm=True, decode=True))

    def push(self, ref: str) -> None:
        repo, tag = ref.rsplit(":", 1)
        self._check_stream(f"push {ref}", self.client.api.push(repo, tag, stream=True, decode=True))

    def commit(self, container: str, ref: str) -> None:
        repo, tag = ref.rsplit(":", 1)
        self.client.api.commit(container, repository=repo, tag=tag, pause=True)

    def find_container(self, pod_uid: str, container: str) -> str | None:
        found = self.client.api.containers(filters={"label": [f"dockyard.pod.uid={pod_uid}",
                                                               f"dockyard.container.name={container}"],
                                                    "status": "running"})
        return found[0]["Id"] if found else None

    def pod_containers(self, pod_uid: str) -> list[str]:
        return [c["Id"] for c in self.client.api.containers(all=True, filters={"label": f"dockyard.pod.uid={pod_uid}"})]

    def put_file(self, container: str, path: str, content: str) -> None:
        buf = io.BytesIO()
        data = content.encode()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo(path.lstrip("/").rsplit("/", 1)[-1])
            info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
            tar.addfile(info, io.BytesIO(data))
        if not self.client.api.put_archive(container, path.rsplit("/", 1)[0] or "/", buf.getvalue()):
            raise BenchError(f"could not write {path} into {container}")

    def image_id(self, ref: str) -> str | None:
        try:
            return self.client.api.inspect_image(ref)["Id"]
        except Exception:  # noqa: BLE001
            return None

    def rmi(self, images: list[str]) -> None:
        for image in images:
            try:
                self.client.api.remove_image(image)
            except Exception:  # noqa: BLE001 — cleanup is best effort
                pass


# --- the benchmark -------------------------------------------------------------------------------


class Bench:
    def __init__(self, workdir: Path, *, rounds: int, warmup: int, engine: str, raw_client: str,
                 isolated_storage: bool = True) -> None:
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.repo = workdir / "hello-src"
        self.raw_ctx = workdir / "raw-ctx"
        self.rounds, self.warmup = rounds, warmup
        self.engine_opt, self.raw_client_opt = engine, raw_client
        self.api_port, self.registry_port = free_port(), free_port()
        self.registry = f"127.0.0.1:{self.registry_port}"
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.kubeconfig = self.data_dir / "kubeconfig"
        self.env = dict(os.environ, KUBECONFIG=str(self.kubeconfig))
        self.storage_dir: Path | None = None
        if isolated_storage:
            # A Podman service started by `dockyard up` uses the host's one image/container store by default,
            # shared with every other dockyard instance on the host. Give ours its own store (same driver),
            # so other instances' agents cannot touch the bench's pod and the bench's up cannot touch theirs.
            self.storage_dir = workdir / "storage"
            conf = workdir / "containers-storage.conf"
            conf.write_text(f'[storage]\ndriver = "overlay"\ngraphroot = "{self.storage_dir / "graph"}"\n'
                            f'runroot = "{self.storage_dir / "run"}"\n')
            self.env["CONTAINERS_STORAGE_CONF"] = str(conf)
        self.up_proc: subprocess.Popen[bytes] | None = None
        self.http: httpx.Client | None = None
        self.raw: RawPodman | RawDockerPy | None = None
        self.engine_kind = "?"
        self.engine_endpoint = ""
        self.watch_ok = True
        self.base_ref = f"{self.registry}/dockyard/busybox:latest"
        self.build_ref = f"{self.registry}/bench-hello:latest"
        self.raw_build_ref = f"{self.registry}/bench-hello:raw"
        self.snap_repo = f"{self.registry}/bench-snapshot"
        self.created_images: list[str] = []  # engine image IDs this run made (removed at the end)
        self.created_refs: list[str] = []  # and the names it gave them (all under this run's registry port)
        self.pod_digests: list[str] = []
        self.pod_uid: str | None = None
        self.container_id: str | None = None
        # results
        self.results: dict[str, dict[str, Any]] = {
            "build": {"dockyard": [], "raw": [], "status_duration": [], "phases": []},
            "push": {"dockyard": [], "raw": [], "phases": []},
        }
        self.notes: list[str] = []
        self.stop_info = ""

    # --- processes ------------------------------------------------------------------------------

    def sh(self, *argv: str, check: bool = True, timeout: float = CLI_TIMEOUT, input_: str | None = None
           ) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(list(argv), env=self.env, capture_output=True, text=True, timeout=timeout,
                             input=input_, stdin=None if input_ is not None else subprocess.DEVNULL)
        if check and out.returncode != 0:
            raise BenchError(f"`{' '.join(argv)}` exited {out.returncode}:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
        return out

    def kubectl(self, *args: str, **kw) -> subprocess.CompletedProcess[str]:
        return self.sh("kubectl", f"--cache-dir={self.workdir / 'kube-cache'}", *args, **kw)

    def git(self, *args: str) -> None:
        self.sh("git", "-C", str(self.repo), "-c", "user.name=dockyard bench", "-c", "user.email=bench@dockyard.dev",
                *args)

    def up_log(self, chars: int = 3000) -> str:
        try:
            return (self.workdir / "up.log").read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def wait_for(self, what: str, predicate: Callable[[], Any], timeout: float, interval: float = 0.25) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.up_proc is not None and self.up_proc.poll() is not None:
                raise BenchError(f"dockyard up exited {self.up_proc.returncode} while waiting for {what}; "
                                 f"up.log:\n{self.up_log()}")
            try:
                value = predicate()
            except (httpx.HTTPError, BenchError, subprocess.SubprocessError, ValueError, KeyError, OSError,
                    yaml.YAMLError):
                value = None
            if value:
                return value
            time.sleep(interval)
        raise BenchError(f"timed out after {timeout:.0f}s waiting for {what}")

    # --- set-up ---------------------------------------------------------------------------------

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / "up.log", "wb")  # noqa: SIM115 — lives as long as the child
        self.up_proc = subprocess.Popen(
            [str(BIN / "dockyard"), "up", "--data-dir", str(self.data_dir), "--port", str(self.api_port),
             "--registry-port", str(self.registry_port), "--engine", self.engine_opt],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env)
        t0 = time.monotonic()

        def ready() -> bool:
            if not self.kubeconfig.exists():
                return False
            server, verify, _token = self.kube_connection()
            return httpx.get(f"{server}/readyz", timeout=2, verify=verify).status_code == 200

        self.wait_for("dockyard up /readyz", ready, UP_READY_TIMEOUT)
        self.notes.append(f"dockyard up ready in {time.monotonic() - t0:.1f}s")
        server, verify, token = self.kube_connection()
        self.api_url = server
        self.http = httpx.Client(base_url=server, headers={"Authorization": f"Bearer {token}"}, timeout=30,
                                 verify=verify)
        match = re.search(r"engine (\w+) \(([^)]+)\)", self.up_log(20000))
        if match:
            self.engine_kind, self.engine_endpoint = match.group(1), match.group(2)
        else:
            self.engine_kind, self.engine_endpoint = "podman", f"unix://{self.data_dir / 'run' / 'podman.sock'}"
            self.notes.append("engine not announced in up.log; assuming DATA/run/podman.sock")
        if self.storage_dir is not None and str(self.data_dir.resolve()) not in self.engine_endpoint:
            self.notes.append(f"dockyard up attached to an engine it did not start ({self.engine_endpoint}): "
                              "the bench's own image store does not apply")
        client = self.raw_client_opt
        if client == "auto":
            client = "podman" if self.engine_kind == "podman" and shutil.which("podman") else "docker-py"
        self.raw = RawPodman(self.engine_endpoint) if client == "podman" else RawDockerPy(self.engine_endpoint)
        console.print(f"  dockyard up: API {self.api_url}, registry {self.registry}, engine {self.engine_kind} "
                      f"({self.engine_endpoint}); raw side: {self.raw.name}")

    def kube_connection(self) -> tuple[str, Any, str]:
        """(server URL, httpx ``verify``, bearer token) of the kubeconfig's current context."""
        cfg = yaml.safe_load(self.kubeconfig.read_text())
        ctx_name = cfg.get("current-context")
        ctx = next((c["context"] for c in cfg.get("contexts") or [] if c["name"] == ctx_name),
                   (cfg.get("contexts") or [{}])[0].get("context", {}))
        cluster = next((c["cluster"] for c in cfg["clusters"] if c["name"] == ctx.get("cluster")),
                       cfg["clusters"][0]["cluster"])
        user = next((u["user"] for u in cfg["users"] if u["name"] == ctx.get("user")), cfg["users"][0]["user"])
        verify: Any = True
        if cluster.get("insecure-skip-tls-verify"):
            verify = False
        elif cluster.get("certificate-authority"):
            verify = str(cluster["certificate-authority"])
        elif cluster.get("certificate-authority-data"):
            ca = self.workdir / "api-ca.crt"
            ca.write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
            verify = str(ca)
        return cluster["server"].rstrip("/"), verify, user.get("token", "")

    def base_image(self) -> None:
        out = self.sh(str(BIN / "dockyard"), "base-image", "busybox", "--to", self.base_ref,
                      "--data-dir", str(self.data_dir))
        console.print(f"  base image {out.stdout.strip()}")
        self.remember_image(self.base_ref)

    def make_repo(self) -> None:
        shutil.copytree(APP, self.repo / "app")
        shutil.copytree(APP, self.raw_ctx)
        self.sh("git", "init", "-q", "-b", "main", str(self.repo))
        self.git("add", "-A")
        self.git("commit", "-q", "-m", "bench v0")

    def apply_buildconfig(self) -> None:
        bc = {
            "apiVersion": "dockyard.dev/v1alpha1", "kind": "BuildConfig",
            "metadata": {"name": BUILDCONFIG, "namespace": NS},
            "spec": {
                "source": {"type": "Git", "git": {"uri": str(self.repo), "ref": "main"}, "contextDir": "app"},
                "strategy": {"type": "Docker", "dockerStrategy": {
                    "dockerfilePath": "Dockerfile", "buildArgs": [{"name": "BASE", "value": self.base_ref}]}},
                "output": {"to": {"kind": "DockerImage", "name": self.build_ref}},
            },
        }
        self.kubectl("apply", "-f", "-", input_=yaml.safe_dump(bc))

        def idle() -> bool:  # no build of this config under way (none is expected: the config has no triggers)
            items = self.api("GET", f"{GROUP}/namespaces/{NS}/builds",
                             params={"labelSelector": f"dockyard.dev/buildconfig={BUILDCONFIG}"})["items"]
            return all((b.get("status") or {}).get("phase") in BUILD_TERMINAL for b in items)

        time.sleep(0.5)
        self.wait_for(f"builds of {BUILDCONFIG} to be idle", idle, BUILD_TIMEOUT)

    # --- API helpers ----------------------------------------------------------------------------

    def api(self, method: str, path: str, **kw) -> dict[str, Any]:
        assert self.http is not None
        resp = self.http.request(method, path, **kw)
        if not resp.is_success:
            raise BenchError(f"{method} {path} → {resp.status_code}: {resp.text[:1000]}")
        return resp.json()

    def wait_phase(self, plural: str, obj: dict[str, Any], terminal: tuple[str, ...], timeout: float,
                   t0: float) -> tuple[dict[str, Any], dict[str, float]]:
        """Watch ``obj`` until its status.phase is terminal. Returns it and {phase: seconds since t0 first seen}."""
        name = obj["metadata"]["name"]
        path = f"{GROUP}/namespaces/{NS}/{plural}"
        seen: dict[str, float] = {}

        def note(o: dict[str, Any]) -> str | None:
            phase = (o.get("status") or {}).get("phase")
            if phase and phase not in seen:
                seen[phase] = time.monotonic() - t0
            return phase

        if note(obj) in terminal:
            return obj, seen
        rv = obj["metadata"]["resourceVersion"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            remaining = deadline - time.monotonic()
            if self.watch_ok:
                try:
                    assert self.http is not None
                    with self.http.stream("GET", path, params={
                            "watch": "true", "fieldSelector": f"metadata.name={name}", "resourceVersion": rv,
                            "timeoutSeconds": str(int(min(remaining, 60)) + 1)},
                            timeout=httpx.Timeout(min(remaining, 60) + 5, connect=5)) as resp:
                        if resp.status_code != 200:
                            resp.read()
                            raise BenchError(f"watch answered {resp.status_code}: {resp.text[:300]}")
                        for line in resp.iter_lines():
                            if not line.strip():
                                continue
                            event = json.loads(line)
                            if event.get("type") == "ERROR":
                                break
                            o = event.get("object") or {}
                            rv = (o.get("metadata") or {}).get("resourceVersion", rv)
                            if event.get("type") == "BOOKMARK":
                                continue
                            if note(o) in terminal:
                                return o, seen
                            if time.monotonic() > deadline:
                                break
                except BenchError as err:
                    self.watch_ok = False
                    self.notes.append(f"watch on {plural} unusable ({err}); polled every 0.1s instead")
                except (httpx.HTTPError, ValueError):
                    pass  # stream ended or broke: re-read and watch again
            current = self.api("GET", f"{path}/{name}")
            rv = current["metadata"]["resourceVersion"]
            if note(current) in terminal:
                return current, seen
            if not self.watch_ok:
                time.sleep(0.1)
        raise BenchError(f"{plural}/{name} not {'/'.join(terminal)} after {timeout:.0f}s; phases seen: {seen}")

    def registry_digest(self, ref: str) -> str | None:
        host, rest = ref.split("/", 1)
        repo, tag = rest.rsplit(":", 1)
        resp = httpx.head(f"http://{host}/v2/{repo}/manifests/{tag}", headers={"Accept": ACCEPT_MANIFESTS},
                          timeout=10)
        return resp.headers.get("Docker-Content-Digest") if resp.status_code == 200 else None

    # --- build ----------------------------------------------------------------------------------

    def dockyard_build(self, label: str) -> tuple[float, dict[str, Any], dict[str, float]]:
        (self.repo / "app" / "index.html").write_text(f"Hello from dockyard bench {label} dockyard {uuid.uuid4()}\n")
        self.git("commit", "-q", "-am", f"bench {label}")
        t0 = time.monotonic()
        build = self.api("POST", f"{GROUP}/namespaces/{NS}/buildconfigs/{BUILDCONFIG}/instantiate",
                         json={"kind": "BuildRequest", "apiVersion": "dockyard.dev/v1alpha1",
                               "metadata": {"name": BUILDCONFIG}})
        build, phases = self.wait_phase("builds", build, BUILD_TERMINAL, BUILD_TIMEOUT, t0)
        elapsed = time.monotonic() - t0
        status = build.get("status") or {}
        name = build["metadata"]["name"]
        if status.get("phase") != "Complete":
            raise BenchError(f"build/{name} ended {status.get('phase')} ({status.get('reason')}): "
                             f"{status.get('message')}\n{status.get('logSnippet') or ''}")
        digest = ((status.get("output") or {}).get("to") or {}).get("imageDigest")
        served = self.registry_digest(self.build_ref)
        if not digest or served != digest:
            raise BenchError(f"build/{name}: registry serves {served} for {self.build_ref}, Build says {digest}")
        self.remember_image(self.build_ref)
        return elapsed, build, phases

    def raw_build(self, label: str) -> float:
        assert self.raw is not None
        (self.raw_ctx / "index.html").write_text(f"Hello from dockyard bench {label} raw {uuid.uuid4()}\n")
        t0 = time.monotonic()
        self.raw.build(self.raw_ctx, self.raw_build_ref, {"BASE": self.base_ref})
        self.raw.push(self.raw_build_ref)
        elapsed = time.monotonic() - t0
        if not self.registry_digest(self.raw_build_ref):
            raise BenchError(f"raw push of {self.raw_build_ref} is not in the registry")
        self.remember_image(self.raw_build_ref)
        return elapsed

    def bench_build(self) -> str:
        res = self.results["build"]
        digest = ""
        for i in range(self.warmup + self.rounds):
            warm = i < self.warmup
            label = f"warmup{i + 1}" if warm else f"round{i - self.warmup + 1}"
            sides = ["dockyard", "raw"] if i % 2 == 0 else ["raw", "dockyard"]
            line = []
            for side in sides:
                if side == "dockyard":
                    elapsed, build, phases = self.dockyard_build(label)
                    digest = build["status"]["output"]["to"]["imageDigest"]
                    dur = build["status"].get("duration")
                    if not warm:
                        res["dockyard"].append(elapsed)
                        res["phases"].append(phases)
                        if isinstance(dur, (int, float)):
                            res["status_duration"].append(dur / 1e9)
                    line.append(f"dockyard {elapsed:.2f}s (build/{build['metadata']['name']}, "
                                f"status.duration {fmt(dur / 1e9 if isinstance(dur, (int, float)) else None, 0)}s, "
                                + ", ".join(f"{p}@{t:.2f}" for p, t in phases.items()) + ")")
                else:
                    elapsed = self.raw_build(label)
                    if not warm:
                        res["raw"].append(elapsed)
                    line.append(f"raw {elapsed:.2f}s")
            console.print(f"  build {label}: " + " · ".join(line))
        return digest

    # --- push -----------------------------------------------------------------------------------

    def run_pod(self, digest: str) -> None:
        image = f"{self.registry}/bench-hello@{digest}"
        self.pod_digests.append(digest)
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": POD, "namespace": NS,
                                                                "labels": {"app": "bench-web"}},
               # busybox httpd as PID 1 ignores SIGTERM: a short grace period lets the clean-up finish quickly
               "spec": {"terminationGracePeriodSeconds": 1, "containers": [{"name": CONTAINER, "image": image}]}}
        self.kubectl("apply", "-f", "-", input_=yaml.safe_dump(pod))

        def running() -> dict[str, Any] | None:
            p = self.api("GET", f"/api/v1/namespaces/{NS}/pods/{POD}")
            statuses = (p.get("status") or {}).get("containerStatuses") or []
            up = any(s.get("name") == CONTAINER and "running" in (s.get("state") or {}) for s in statuses)
            return p if (p.get("status") or {}).get("phase") == "Running" and up else None

        t0 = time.monotonic()
        pod_obj = self.wait_for(f"pod/{POD} Running", running, POD_TIMEOUT)
        self.pod_uid = pod_obj["metadata"]["uid"]
        assert self.raw is not None
        self.container_id = self.wait_for(
            f"the engine container of {POD}/{CONTAINER} (label dockyard.pod.uid={self.pod_uid})",
            lambda: self.raw.find_container(self.pod_uid, CONTAINER), 60)
        console.print(f"  pod/{POD} Running in {time.monotonic() - t0:.1f}s; engine container "
                      f"{self.container_id[:12]}")

    def touch_container(self, label: str) -> None:
        """Write a unique file into the container so the next commit carries a new layer (not timed).

        If the pod's engine container was replaced (or stopped by someone else), wait for the running one
        and say so in the notes.
        """
        assert self.raw is not None and self.container_id is not None and self.pod_uid is not None
        try:
            self.raw.put_file(self.container_id, f"/bench-{label}.txt", f"{label} {uuid.uuid4()}\n")
            return
        except BenchError as err:
            first = str(err).strip().splitlines()[-1]
        raw, uid = self.raw, self.pod_uid
        self.container_id = self.wait_for(f"a running engine container for {POD}/{CONTAINER}",
                                          lambda: raw.find_container(uid, CONTAINER), POD_TIMEOUT)
        self.notes.append(f"push {label}: the pod's container was not running ({first}); "
                          f"continued with {self.container_id[:12]}")
        self.raw.put_file(self.container_id, f"/bench-{label}.txt", f"{label} {uuid.uuid4()}\n")

    def dockyard_push(self, label: str) -> tuple[float, dict[str, Any], dict[str, float]]:
        ref = f"{self.snap_repo}:dockyard-{label}"
        self.touch_container(f"dockyard-{label}")
        body = {"apiVersion": "dockyard.dev/v1alpha1", "kind": "Push",
                "metadata": {"generateName": f"{POD}-{CONTAINER}-", "namespace": NS},
                "spec": {"podName": POD, "containerName": CONTAINER, "image": ref, "pause": True}}
        t0 = time.monotonic()
        push = self.api("POST", f"{GROUP}/namespaces/{NS}/pushes", json=body)
        push, phases = self.wait_phase("pushes", push, PUSH_TERMINAL, PUSH_TIMEOUT, t0)
        elapsed = time.monotonic() - t0
        status = push.get("status") or {}
        name = push["metadata"]["name"]
        if status.get("phase") != "Succeeded":
            raise BenchError(f"push/{name} ended {status.get('phase')}: {status.get('message')}")
        served = self.registry_digest(ref)
        if served != status.get("imageDigest"):
            raise BenchError(f"push/{name}: registry serves {served} for {ref}, Push says {status.get('imageDigest')}")
        self.remember_image(ref)
        return elapsed, push, phases

    def raw_push(self, label: str) -> float:
        assert self.raw is not None and self.container_id is not None
        ref = f"{self.snap_repo}:raw-{label}"
        self.touch_container(f"raw-{label}")
        t0 = time.monotonic()
        self.raw.commit(self.container_id, ref)
        self.raw.push(ref)
        elapsed = time.monotonic() - t0
        if not self.registry_digest(ref):
            raise BenchError(f"raw push of {ref} is not in the registry")
        self.remember_image(ref)
        return elapsed

    def bench_push(self) -> None:
        res = self.results["push"]
        for i in range(self.warmup + self.rounds):
            warm = i < self.warmup
            label = f"warmup{i + 1}" if warm else f"round{i - self.warmup + 1}"
            sides = ["dockyard", "raw"] if i % 2 == 0 else ["raw", "dockyard"]
            line = []
            for side in sides:
                if side == "dockyard":
                    elapsed, push, phases = self.dockyard_push(label)
                    if not warm:
                        res["dockyard"].append(elapsed)
                        res["phases"].append(phases)
                    line.append(f"dockyard {elapsed:.2f}s (push/{push['metadata']['name']}, "
                                + ", ".join(f"{p}@{t:.2f}" for p, t in phases.items()) + ")")
                else:
                    elapsed = self.raw_push(label)
                    if not warm:
                        res["raw"].append(elapsed)
                    line.append(f"raw {elapsed:.2f}s")
            console.print(f"  push {label}: " + " · ".join(line))

    # --- tear-down ------------------------------------------------------------------------------

    def delete_pod(self) -> None:
        """Delete the bench pod through the API so the agent removes its engine containers (bounded)."""
        if self.http is None or self.pod_uid is None or self.up_proc is None or self.up_proc.poll() is not None:
            return
        try:
            self.http.delete(f"/api/v1/namespaces/{NS}/pods/{POD}", params={"gracePeriodSeconds": "0"})
            raw = self.raw
            uid = self.pod_uid
            self.wait_for("the bench pod's containers to be removed",
                          lambda: raw is None or not raw.pod_containers(uid), 30)
        except Exception as err:  # noqa: BLE001 — tear-down is best effort
            self.notes.append(f"pod clean-up incomplete: {err}")

    def drop_storage(self) -> None:
        """Remove the bench's own container store (after `up` and its Podman service have stopped).

        conmon runs ``podman --root STORE container cleanup`` when a container it watched has exited, which
        (re)initialises the store; so wait (bounded) until no process names the store, then unmount and delete.
        """
        if self.storage_dir is None:
            return
        root = str(self.storage_dir.resolve())
        for _attempt in range(2):
            deadline = time.monotonic() + 20
            while _processes_naming(root) and time.monotonic() < deadline:
                time.sleep(0.2)
            try:
                with open("/proc/self/mounts") as fh:
                    mounts = [line.split()[1] for line in fh]
            except OSError:
                mounts = []
            for mnt in sorted((m for m in mounts if m == root or m.startswith(root + "/")), key=len, reverse=True):
                subprocess.run(["umount", "-l", mnt], capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
            shutil.rmtree(self.storage_dir, ignore_errors=True)
            time.sleep(1)
            if not self.storage_dir.exists() and not _processes_naming(root):
                return
        self.notes.append(f"could not remove all of {self.storage_dir}")

    def stop(self) -> None:
        if self.up_proc is None:
            return
        if self.up_proc.poll() is not None:
            self.stop_info = f"dockyard up had already exited ({self.up_proc.returncode})"
            return
        t0 = time.monotonic()
        self.up_proc.send_signal(signal.SIGTERM)
        try:
            code = self.up_proc.wait(timeout=STOP_TIMEOUT)
            self.stop_info = f"dockyard up stopped on SIGTERM in {time.monotonic() - t0:.1f}s (exit {code})"
        except subprocess.TimeoutExpired:
            self.up_proc.kill()
            self.up_proc.wait(timeout=10)
            self.stop_info = f"dockyard up did not stop within {STOP_TIMEOUT}s of SIGTERM: killed"

    def remember_image(self, ref: str) -> None:
        if ref not in self.created_refs:
            self.created_refs.append(ref)
        if self.raw is not None:
            image = self.raw.image_id(ref)
            if image and image not in self.created_images:
                self.created_images.append(image)

    def cleanup_images(self) -> None:
        if self.storage_dir is not None:
            return  # the whole store goes with drop_storage()
        self._rmi_recorded()

    def _rmi_recorded(self) -> None:
        """Remove the images this run made from the engine's store (best effort; only IDs it recorded).

        Runs after the pod is deleted and before ``dockyard up`` stops (its Podman service goes with it).
        """
        if self.raw is None or not self.created_images or self.up_proc is None or self.up_proc.poll() is not None:
            return
        try:
            # names first (a name only untags an image that has others), then the IDs, newest first
            self.raw.rmi(self.created_refs + [f"{self.registry}/bench-hello@{d}" for d in self.pod_digests])
            self.raw.rmi(list(reversed(self.created_images)))
        except Exception as err:  # noqa: BLE001 — clean-up is best effort
            self.notes.append(f"image clean-up incomplete: {err}")

    # --- report ---------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for op in ("build", "push"):
            r = self.results[op]
            dy, raw = median(r["dockyard"]), median(r["raw"])
            entry = {
                "dockyard_median_s": dy, "raw_median_s": raw,
                "ratio": (dy / raw) if dy is not None and raw else None,
                "rounds": min(len(r["dockyard"]), len(r["raw"])),
                "dockyard_s": [round(x, 3) for x in r["dockyard"]], "raw_s": [round(x, 3) for x in r["raw"]],
            }
            phases = sorted({p for ph in r["phases"] for p in ph})
            entry["dockyard_phase_first_seen_median_s"] = {
                p: median([ph[p] for ph in r["phases"] if p in ph]) for p in phases}
            if op == "build":
                entry["status_duration_median_s"] = median(r["status_duration"])
            out[op] = entry
        return out

    def table(self, summary: dict[str, Any]) -> Table:
        t = Table(title=f"dockyard vs raw engine ({self.engine_kind}, raw side: "
                        f"{self.raw.name if self.raw else '?'}), medians")
        t.add_column("operation")
        t.add_column("dockyard median s", justify="right")
        t.add_column("raw median s", justify="right")
        t.add_column("ratio dockyard/raw", justify="right")
        t.add_column("rounds", justify="right")
        rows = (("build: source change → image in registry", "build"),
                ("push: commit running container → registry", "push"))
        for title, op in rows:
            s = summary[op]
            t.add_row(title, fmt(s["dockyard_median_s"]), fmt(s["raw_median_s"]), fmt(s["ratio"]), str(s["rounds"]))
        s = summary["build"]
        if s.get("status_duration_median_s") is not None:
            reported = f"{s['status_duration_median_s']:.0f} (1 s steps)"
            t.add_row("  build, as Build status.duration reports it", reported, fmt(s["raw_median_s"]), "—",
                      str(s["rounds"]))
        return t


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds per operation (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured rounds first (default 1)")
    parser.add_argument("--engine", default="auto", help="dockyard up --engine: auto | podman | docker")
    parser.add_argument("--raw-client", default="auto", choices=("auto", "podman", "docker-py"),
                        help="how the raw side drives the engine (auto: podman CLI for Podman, else docker-py)")
    parser.add_argument("--workdir", type=Path, help="state directory (default: a new one under /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory and the images")
    parser.add_argument("--shared-storage", action="store_true",
                        help="let dockyard's Podman service use the host's image store (default: its own, "
                             "under the work directory)")
    args = parser.parse_args()
    if args.rounds < 1 or args.rounds > 100 or args.warmup < 0 or args.warmup > 10:
        parser.error("--rounds must be 1..100 and --warmup 0..10")
    # short path: the Podman socket lives under it and unix socket paths are limited to 107 bytes
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="dy-bench-", dir="/tmp"))
    workdir.mkdir(parents=True, exist_ok=True)
    bench = Bench(workdir, rounds=args.rounds, warmup=args.warmup, engine=args.engine, raw_client=args.raw_client,
                  isolated_storage=not args.shared_storage)
    error: str | None = None
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("dockyard up", bench.start),
        ("base image: dockyard base-image busybox", bench.base_image),
        ("git repository + BuildConfig (kubectl apply)", lambda: (bench.make_repo(), bench.apply_buildconfig())),
    ]
    digest_box: dict[str, str] = {}
    steps += [
        (f"build: {args.warmup} warm-up + {args.rounds} rounds each side",
         lambda: digest_box.update(digest=bench.bench_build())),
        ("pod with the built image", lambda: bench.run_pod(digest_box["digest"])),
        (f"push: {args.warmup} warm-up + {args.rounds} rounds each side", bench.bench_push),
    ]
    try:
        for title, fn in steps:
            console.print(f"[bold]→ {title}[/bold]")
            fn()
    except (BenchError, subprocess.SubprocessError, httpx.HTTPError, OSError) as err:
        error = f"{type(err).__name__}: {err}"
        console.print(f"[red]✗ {error}[/red]")
        console.print(f"  logs: {workdir / 'up.log'}")
    except KeyboardInterrupt:
        error = "interrupted"
    finally:
        bench.delete_pod()
        if not args.keep:
            bench.cleanup_images()
        bench.stop()
        if bench.http is not None:
            bench.http.close()
        if not args.keep:
            bench.drop_storage()
    summary = bench.summary()
    out = Console(highlight=False, width=120)
    out.print(bench.table(summary))
    for p_op in ("build", "push"):
        ph = summary[p_op]["dockyard_phase_first_seen_median_s"]
        if ph:
            out.print(f"dockyard {p_op} phases, median seconds from create to first seen: "
                      + ", ".join(f"{k} {fmt(v)}" for k, v in sorted(ph.items(), key=lambda kv: kv[1] or 0)))
    for note in bench.notes + [bench.stop_info]:
        if note:
            out.print(f"note: {note}")
    ok = error is None
    record = {"benchmark": "build_push", "ok": ok, "error": error, "engine": bench.engine_kind,
              "raw_client": bench.raw.name if bench.raw else None, "warmup": args.warmup,
              "rounds_requested": args.rounds, **summary, "stop": bench.stop_info}
    print(json.dumps(record, separators=(",", ":")), flush=True)
    if ok and not args.keep and not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    elif not ok:
        console.print(f"state kept in {workdir}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
