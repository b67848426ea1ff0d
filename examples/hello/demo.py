"""The main job, end to end, on the bundled hello example.

up → base image → a git repository of examples/hello/app → BuildConfig, Image,
ImageDeploy and a LoadBalancer Service applied with kubectl → build → the app
answers through the Service on 127.0.0.1 → the source changes and is rebuilt →
the Deployment rolls to v2 with its default strategy while a request loop runs
against the Service (it must lose no request) → the running container is
committed and pushed → summary → clean shutdown.

Every step is verified with a tool other than dockyard where one exists
(kubectl, skopeo, HTTP). Exit status 0 only if every step was verified.

Usage: python examples/hello/demo.py [--workdir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
console = Console(stderr=True)


def free_port(preferred: int | None = None) -> int:
    """``preferred`` if it is free on 127.0.0.1, else any free port."""
    for candidate in ([preferred] if preferred else []) + [0]:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError("no free port")


class StepFailed(Exception):
    pass


class RequestLoop:
    """GETs ``url`` on a new connection each time, from a thread, until stopped: what a user of the app sees
    during a rollout. Bounded: at most ``max_requests`` requests and ``max_seconds`` seconds."""

    def __init__(
        self, url: str, *, interval: float = 0.02, max_requests: int = 50_000, max_seconds: float = 600
    ) -> None:
        self.url, self.interval, self.max_requests, self.max_seconds = url, interval, max_requests, max_seconds
        self.sent = 0
        self.failed: list[str] = []
        self.answers: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="request-loop")

    def start(self) -> RequestLoop:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and self.sent < self.max_requests and time.monotonic() < deadline:
            self.sent += 1
            try:
                resp = httpx.get(self.url, timeout=5, headers={"Connection": "close"})
                if resp.status_code != 200:
                    self.failed.append(f"HTTP {resp.status_code}")
                else:
                    body = resp.text.strip()
                    self.answers[body] = self.answers.get(body, 0) + 1
            except httpx.HTTPError as err:
                self.failed.append(f"{type(err).__name__}: {err}")
            self._stop.wait(self.interval)

    def summary(self) -> str:
        seen = ", ".join(f"{n} × {body!r}" for body, n in sorted(self.answers.items()))
        return f"{self.sent} requests sent, {len(self.failed)} failed ({seen})"


class Demo:
    """The hello flow as steps; ``run()`` does them all. Tests drive the same steps."""

    def __init__(
        self,
        workdir: Path,
        *,
        registry_port: int | None = None,
        api_port: int | None = None,
        host_port: int | None = None,
        engine: str = "auto",
    ) -> None:
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.repo = workdir / "hello-src"
        self.api_port = api_port or free_port(6443)
        self.registry_port = registry_port or free_port(5000)
        self.host_port = host_port or free_port(18080)
        self.registry = f"127.0.0.1:{self.registry_port}"
        self.engine = engine
        self.kubeconfig = self.data_dir / "kubeconfig"
        self.env = dict(os.environ, KUBECONFIG=str(self.kubeconfig))
        self.up_proc: subprocess.Popen[bytes] | None = None
        self.timings: list[tuple[str, float, str]] = []
        self.digests: dict[str, str] = {}
        self.replicas = 2
        self.loop: RequestLoop | None = None

    # --- helpers --------------------------------------------------------------------------------

    def sh(
        self, *argv: str, check: bool = True, timeout: float = 300, input_: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            list(argv),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input_,
            stdin=None if input_ is not None else subprocess.DEVNULL,
        )
        if check and out.returncode != 0:
            raise StepFailed(f"`{' '.join(argv)}` exited {out.returncode}:\n{out.stdout}\n{out.stderr}")
        return out

    @property
    def dockyard_bin(self) -> Path:
        return BIN / "dockyard"

    def dockyard(self, *args: str, **kw) -> subprocess.CompletedProcess[str]:
        return self.sh(str(self.dockyard_bin), *args, **kw)

    def kubectl(self, *args: str, **kw) -> subprocess.CompletedProcess[str]:
        return self.sh("kubectl", f"--cache-dir={self.workdir / 'kube-cache'}", *args, **kw)

    def step(self, title: str, fn: Callable[[], str]) -> None:
        console.print(f"[bold]→ {title}[/bold]")
        started = time.monotonic()
        detail = fn()
        elapsed = time.monotonic() - started
        self.timings.append((title, elapsed, detail))
        console.print(f"  [green]✓[/green] {detail} ({elapsed:.1f}s)")

    def wait_for(self, what: str, predicate: Callable[[], object], timeout: float) -> object:
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            try:
                last = predicate()
            except (httpx.HTTPError, StepFailed, subprocess.SubprocessError):
                last = None
            if last:
                return last
            time.sleep(0.25)
        raise StepFailed(f"timed out after {timeout:.0f}s waiting for {what}")

    def get(self, kind: str, name: str) -> dict:
        return json.loads(self.kubectl("get", kind, name, "-o", "json").stdout)

    # --- steps ----------------------------------------------------------------------------------

    def start(self) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / "up.log", "wb")  # noqa: SIM115 — held by the child process
        self.up_proc = subprocess.Popen(
            [
                str(BIN / "dockyard"),
                "up",
                "--data-dir",
                str(self.data_dir),
                "--port",
                str(self.api_port),
                "--registry-port",
                str(self.registry_port),
                "--engine",
                self.engine,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
        )

        def ready() -> bool:
            if self.up_proc.poll() is not None:
                raise SystemExit(
                    f"dockyard up exited {self.up_proc.returncode}; see {self.workdir / 'up.log'}:\n"
                    + (self.workdir / "up.log").read_text()[-3000:]
                )
            return httpx.get(f"https://127.0.0.1:{self.api_port}/readyz", timeout=2, verify=False).status_code == 200

        self.wait_for("dockyard up to be ready", ready, 90)
        nodes = self.kubectl("get", "namespaces", "-o", "name").stdout.split()
        if "namespace/default" not in nodes:
            raise StepFailed(f"kubectl sees no default namespace: {nodes}")
        return f"API on 127.0.0.1:{self.api_port}, registry {self.registry}, kubectl connected"

    def base_image(self) -> str:
        ref = f"{self.registry}/dockyard/busybox:latest"
        out = self.dockyard("base-image", "busybox", "--to", ref, "--data-dir", str(self.data_dir))
        digest = out.stdout.strip().rsplit("@", 1)[-1]
        self.check_registry_digest(ref, digest)
        return f"{ref}@{digest[:19]}…"

    def make_repo(self) -> str:
        if self.repo.exists():
            shutil.rmtree(self.repo)
        shutil.copytree(HERE / "app", self.repo / "app")
        git = ["git", "-C", str(self.repo), "-c", "user.name=dockyard demo", "-c", "user.email=demo@dockyard.dev"]
        self.sh("git", "init", "-q", "-b", "main", str(self.repo))
        self.sh(*git, "add", "-A")
        self.sh(*git, "commit", "-q", "-m", "hello v1")
        return f"git repository at {self.repo}"

    def apply(self) -> str:
        text = (HERE / "manifests.yaml").read_text()
        for key, value in (
            ("GIT_URI", str(self.repo)),
            ("REGISTRY", self.registry),
            ("HOST_PORT", str(self.host_port)),
        ):
            text = text.replace("${" + key + "}", value)
        out = self.kubectl("apply", "-f", "-", input_=text)
        return " ".join(out.stdout.split())

    def build(self, expect_text: str) -> str:
        out = self.dockyard("start-build", "hello", "--follow", check=False, timeout=600)
        name = out.stdout.splitlines()[0].strip().removeprefix("build/") if out.stdout else "?"
        build = self.get("build", name)
        status = build.get("status") or {}
        if out.returncode != 0 or status.get("phase") != "Complete":
            raise StepFailed(
                f"build {name} ended {status.get('phase')} ({status.get('reason')}): "
                f"{status.get('message')}\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}"
            )
        digest = status["output"]["to"]["imageDigest"]
        self.check_registry_digest(f"{self.registry}/hello:latest", digest)
        self.digests[expect_text] = digest
        return f"build/{name} Complete in {status.get('duration', 0) / 1e9:.1f}s, {digest[:19]}…"

    def serves(self, expect_text: str) -> str:
        digest = self.digests[expect_text]

        def answered() -> bool:
            body = httpx.get(f"http://127.0.0.1:{self.host_port}/", timeout=2).text
            return expect_text in body

        self.wait_for(f"the app to answer {expect_text!r} on 127.0.0.1:{self.host_port}", answered, 120)
        deploy = self.get("deployment", "hello")
        image = deploy["spec"]["template"]["spec"]["containers"][0]["image"]
        if not image.endswith(digest):
            raise StepFailed(f"deployment image is {image}, expected …@{digest}")
        self.kubectl("rollout", "status", "deployment/hello", "--timeout=120s", timeout=150)

        def only_new_pods() -> bool:
            pods = json.loads(self.kubectl("get", "pods", "-l", "app=hello", "-o", "json").stdout)["items"]
            return len(pods) == self.replicas and all(
                p["spec"]["containers"][0]["image"].endswith(digest) for p in pods
            )

        self.wait_for("the old pods to go away", only_new_pods, 60)
        return (
            f"GET http://127.0.0.1:{self.host_port}/ (Service hello) → {expect_text!r}, "
            f"{self.replicas} pods on {digest[:19]}…"
        )

    def start_requests(self) -> str:
        self.loop = RequestLoop(f"http://127.0.0.1:{self.host_port}/").start()
        return f"GET http://127.0.0.1:{self.host_port}/ every 20 ms, a new connection each"

    def requests_survived(self) -> str:
        assert self.loop is not None
        self.loop.stop()
        if self.loop.failed:
            raise StepFailed(f"{self.loop.summary()}: {self.loop.failed[:5]}")
        if not self.loop.answers:
            raise StepFailed("the request loop got no answer")
        return self.loop.summary()

    def change_source(self) -> str:
        (self.repo / "app" / "index.html").write_text("Hello from dockyard v2\n")
        self.sh(
            "git",
            "-C",
            str(self.repo),
            "-c",
            "user.name=dockyard demo",
            "-c",
            "user.email=demo@dockyard.dev",
            "commit",
            "-q",
            "-am",
            "hello v2",
        )
        return "index.html now says v2 (committed)"

    def commit_container(self) -> str:
        pods = json.loads(self.kubectl("get", "pods", "-l", "app=hello", "-o", "json").stdout)["items"]
        pod = pods[0]["metadata"]["name"]
        ref = f"{self.registry}/hello-snapshot:v1"
        out = self.dockyard("commit", f"{pod}/web", ref, "--wait", check=False, timeout=300)
        if out.returncode != 0:
            raise StepFailed(f"dockyard commit exited {out.returncode}: {out.stdout} {out.stderr}")
        push_name = out.stdout.strip().removeprefix("push/")
        push = self.get("push", push_name)
        digest = push["status"]["imageDigest"]
        self.check_registry_digest(ref, digest)
        return f"push/{push_name} Succeeded: {ref}@{digest[:19]}…"

    def check_registry_digest(self, ref: str, digest: str) -> None:
        """The registry serves ``digest`` for ``ref`` — checked with skopeo (a third-party client) if present."""
        if shutil.which("skopeo"):
            out = self.sh("skopeo", "inspect", "--tls-verify=false", f"docker://{ref}")
            served = json.loads(out.stdout)["Digest"]
        else:
            served = httpx.head(
                f"http://{ref.split('/', 1)[0]}/v2/{ref.split('/', 1)[1].rsplit(':', 1)[0]}"
                f"/manifests/{ref.rsplit(':', 1)[1]}",
                headers={
                    "Accept": "application/vnd.oci.image.manifest.v1+json, "
                    "application/vnd.docker.distribution.manifest.v2+json"
                },
            ).headers.get("Docker-Content-Digest")
        if served != digest:
            raise StepFailed(f"registry serves {served} for {ref}, dockyard reported {digest}")

    def stop(self) -> str:
        if self.up_proc is None or self.up_proc.poll() is not None:
            raise StepFailed("dockyard up is not running")
        started = time.monotonic()
        self.up_proc.send_signal(signal.SIGTERM)
        try:
            code = self.up_proc.wait(timeout=10)
        except subprocess.TimeoutExpired as err:
            self.up_proc.kill()
            raise StepFailed("dockyard up did not stop within 10 s of SIGTERM") from err
        if code != 0:
            raise StepFailed(f"dockyard up exited {code} after SIGTERM")
        elapsed = time.monotonic() - started
        try:
            httpx.get(f"http://127.0.0.1:{self.host_port}/", timeout=2)
        except httpx.HTTPError:
            pass
        else:
            raise StepFailed(f"the app still answers on 127.0.0.1:{self.host_port} after dockyard up stopped")
        for port in (self.api_port, self.registry_port):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    raise StepFailed(f"127.0.0.1:{port} still accepts connections after dockyard up stopped")
        return f"dockyard up, its registry and its pods stopped in {elapsed:.1f}s"

    def cleanup(self) -> None:
        """Stop `dockyard up` if it still runs (SIGTERM, then SIGKILL), and what a killed one left running."""
        if self.up_proc is not None and self.up_proc.poll() is None:
            self.up_proc.send_signal(signal.SIGTERM)
            try:
                self.up_proc.wait(timeout=12)
            except subprocess.TimeoutExpired:
                self.up_proc.kill()
                self.up_proc.wait(timeout=10)
        # after a SIGKILL, `up` leaves its registry and Podman service for the next start to adopt
        for name in ("registry.pid", "podman.pid"):
            try:
                pid = int((self.data_dir / "run" / name).read_text())
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except (OSError, ValueError):
                continue
            if str(self.data_dir).encode() in cmdline:
                os.kill(pid, signal.SIGTERM)

    def run(self) -> None:
        self.step("dockyard up", self.start)
        self.step("base image: dockyard base-image busybox", self.base_image)
        self.step("git repository of examples/hello", self.make_repo)
        self.step("kubectl apply BuildConfig, Image, ImageDeploy", self.apply)
        self.step("build v1: dockyard start-build hello --follow", lambda: self.build("v1"))
        self.step("v1 deployed and answering", lambda: self.serves("v1"))
        self.step("change the source", self.change_source)
        self.step("request loop through the Service", self.start_requests)
        self.step("build v2", lambda: self.build("v2"))
        self.step("rolled to v2 (default RollingUpdate); old pods gone", lambda: self.serves("v2"))
        self.step("requests during the v1→v2 rollout", self.requests_survived)
        self.step("commit + push the running container: dockyard commit", self.commit_container)
        self.step("clean shutdown", self.stop)

    def summary(self) -> Table:
        table = Table(title="dockyard: the hello example, end to end")
        table.add_column("step")
        table.add_column("seconds", justify="right")
        table.add_column("verified")
        for title, seconds, detail in self.timings:
            table.add_row(title, f"{seconds:.1f}", detail)
        table.add_row("[bold]total[/bold]", f"{sum(t for _, t, _ in self.timings):.1f}", "")
        return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, help="where state goes (default: a new temporary directory)")
    parser.add_argument("--engine", default="auto", help="auto | podman | docker")
    parser.add_argument("--keep", action="store_true", help="keep the work directory afterwards")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="dockyard-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    demo = Demo(workdir, engine=args.engine)
    try:
        demo.run()
    except (StepFailed, SystemExit) as err:
        console.print(demo.summary())
        console.print(f"[red]✗ {err}[/red]")
        console.print(f"logs: {workdir / 'up.log'}")
        return 1
    finally:
        demo.cleanup()
    console.print(demo.summary())
    console.print(f"[green]every step verified[/green] (state in {workdir})")
    if not args.keep and not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
