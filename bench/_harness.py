"""What the benchmarks share: a ``dockyard up`` of their own, and the raw engine driven by hand.

:class:`Harness` starts ``dockyard up`` with a temporary ``--data-dir`` on free
ports of 127.0.0.1 (engine ``auto``; by default the Podman service it starts
gets its own container store under the work directory), reads the admin
kubeconfig (bearer token, the API server's self-signed CA at
``DATA/pki/ca.crt``), makes the busybox base image, and stops
everything it started, also after a failure. :class:`RawPodman` and
:class:`RawDockerPy` do the same engine work by hand, against the same engine
socket, for the reference side of a benchmark. :func:`run_steps`, :meth:`Harness.teardown`,
:func:`print_notes` and :func:`finish` are every benchmark's ``main()`` skeleton: the steps announced and
their failure turned into the record's ``error``, the clean-up, the notes, and the record as the last stdout
line (``benchmark`` first) with the work directory's removal and the exit status.

Not a benchmark itself (the leading underscore); imported by the ones in this folder.
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
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml
from rich.console import Console

from dockyard.api import labels as well_known

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "examples" / "hello" / "app"
BIN = Path(sys.executable).parent
GROUP = "/apis/dockyard.dev/v1alpha1"
NS = "default"
BUILD_TERMINAL = ("Complete", "Failed", "Error", "Cancelled")
PUSH_TERMINAL = ("Succeeded", "Failed")
ACCEPT_MANIFESTS = ", ".join(
    (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    )
)

# Every wait is bounded (seconds).
UP_READY_TIMEOUT = 120
RAW_STEP_TIMEOUT = 300
CLI_TIMEOUT = 300
STOP_TIMEOUT = 15

console = Console(stderr=True, highlight=False)


class BenchError(Exception):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def median(xs: Sequence[float]) -> float | None:
    return statistics.median(xs) if xs else None


def percentile(xs: Sequence[float], p: float) -> float | None:
    """The ``p``-th percentile (0..100) by the nearest-rank method; None for no data."""
    if not xs:
        return None
    s = sorted(xs)
    k = max(0, min(len(s) - 1, round(p / 100.0 * len(s) + 0.5) - 1))
    return s[k]


STAGE_ORDER = ("to Running", "FetchInputs", "Build", "PushImage", "other")


def build_stages(build: dict[str, Any], elapsed: float, phases: dict[str, float]) -> dict[str, float]:
    """Where one Build's time went, in seconds: ``to Running`` (created → phase Running first seen: controller,
    build pod, agent admission), each ``status.stages[]`` entry's ``durationMilliseconds`` (OpenShift
    ``StageInfo``, measured in the builder), and ``other`` (the rest of ``elapsed``: builder start-up and
    connections, the result's way back through pod status to Build ``Complete``)."""
    out: dict[str, float] = {"to Running": phases.get("Running", 0.0)}
    for stage in (build.get("status") or {}).get("stages") or []:
        out[str(stage.get("name"))] = (
            out.get(str(stage.get("name")), 0.0) + (stage.get("durationMilliseconds") or 0) / 1000
        )
    out["other"] = max(0.0, elapsed - sum(out.values()))
    return out


def stage_medians(rows: Sequence[dict[str, float]]) -> dict[str, float | None]:
    """Median seconds per stage over rounds (:func:`build_stages`), in :data:`STAGE_ORDER`."""
    names = [n for n in STAGE_ORDER if any(n in r for r in rows)] + sorted(
        {n for r in rows for n in r} - set(STAGE_ORDER)
    )
    return {n: median([r[n] for r in rows if n in r]) for n in names}


def fmt(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def processes_naming(text: str) -> list[int]:
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


def code_version() -> str:
    """The dockyard code under test: ``git describe`` of the checkout, and whether ``src/`` has local changes."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return "?"
    import dockyard  # the package this interpreter imports (PYTHONPATH may point elsewhere)

    where = str(Path(dockyard.__file__).resolve().parent.parent)
    if where != str(ROOT / "src"):
        return f"imported from {where} (not this checkout, which is at {head or '?'})"
    return f"{head or '?'}" + (f" + {len(dirty)} changed files in src/" if dirty else "")


def check_ranges(parser: argparse.ArgumentParser, args: argparse.Namespace, ranges: dict[str, tuple[int, int]]) -> None:
    """Exit through ``parser.error`` (status 2, the usage and ``--name must be in LO..HI``) unless each
    ``args.<name>`` of ``ranges`` lies within its inclusive ``(LO, HI)``: every load a benchmark makes stays bounded."""
    for key, (lo, hi) in ranges.items():
        if not lo <= getattr(args, key) <= hi:
            parser.error(f"--{key.replace('_', '-')} must be in {lo}..{hi}")


def make_workdir(given: Path | None, prefix: str) -> Path:
    """The benchmark's state directory: ``given``, or a new one under /tmp.

    A short path: the Podman socket lives under it and unix socket paths are limited to 107 bytes.
    """
    workdir = given or Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir


def load_average() -> str:
    """The host's 1, 5 and 15 minute load averages (``/proc/loadavg``), space-separated; ``?`` if unreadable."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def start_notes(*, cpus: bool = False) -> list[str]:
    """The notes a run starts with: the code under test (:func:`code_version`) and the host's load average
    (and its CPU count if ``cpus``)."""
    load = load_average() + (f" ({os.cpu_count()} CPUs)" if cpus else "")
    return [f"dockyard code: {code_version()}", f"host load average at start: {load}"]


# --- a run's steps and its end -------------------------------------------------------------------

STEP_ERRORS: tuple[type[Exception], ...] = (
    BenchError,
    subprocess.SubprocessError,
    httpx.HTTPError,
    OSError,
    ValueError,
    KeyError,
)
"""What a failed step may raise: recorded as the run's ``error`` (anything else is a bug: a traceback)."""

Step = tuple[str, Callable[[], Any]]
"""One step of a run: its title (printed as ``→ title``) and what it does."""


def run_steps(
    steps: Iterable[Step],
    *,
    log: Path,
    cleanup: Callable[[], None],
    after_step: Callable[[str], None] | None = None,
) -> str | None:
    """Run ``steps`` in order, each announced on stderr as ``→ title``; stop at the first that fails.

    Args:
        steps: ``(title, fn)`` pairs.
        log: the log of the process under test, named on stderr after a failure.
        cleanup: called at the end in every case (a failure, Ctrl-C, success), e.g. :meth:`Harness.teardown`.
        after_step: called with the title after each step that succeeded (e.g. to note the load average).

    Returns:
        None if every step ran; else the run's ``error``: ``"TYPE: message"`` for one of :data:`STEP_ERRORS`
        (printed with the log's path), ``"interrupted"`` for Ctrl-C. Other exceptions propagate (after
        ``cleanup``).
    """
    error: str | None = None
    try:
        for title, fn in steps:
            console.print(f"[bold]→ {title}[/bold]")
            fn()
            if after_step is not None:
                after_step(title)
    except STEP_ERRORS as err:
        error = f"{type(err).__name__}: {err}"
        console.print(f"[red]✗ {error}[/red]")
        console.print(f"  logs: {log}")
    except KeyboardInterrupt:
        error = "interrupted"
    finally:
        cleanup()
    return error


def print_notes(out: Console, notes: Iterable[str], stop_info: str, problems: Iterable[str] = ()) -> None:
    """Print the run's notes (``note: …``, then how the process under test stopped) and its ``PROBLEM: …`` lines;
    empty ones are left out."""
    for note in [*notes, stop_info]:
        if note:
            out.print(f"note: {note}")
    for problem in problems:
        out.print(f"PROBLEM: {problem}")


def finish(
    name: str,
    *,
    error: str | None,
    fields: dict[str, Any],
    problems: list[str] | None = None,
    notes: list[str] | None = None,
    stop: str | None = None,
    ok: bool | None = None,
    workdir: Path | None,
    keep: bool,
) -> int:
    """End a run: its record as the last stdout line, then the work directory's fate; the exit status.

    The record is one line of compact JSON (values JSON cannot hold written as their ``str()``), its keys in
    this order (other tools read ``benchmark`` first): ``benchmark`` (``name``), ``ok``, ``error``, then
    ``fields``, then ``problems``, ``notes`` and ``stop`` (how the process under test stopped), each only if given.

    Args:
        ok: the run's verdict; by default ``error is None`` and no ``problems``.
        workdir: removed after an ok run unless ``keep``; after a failed run kept and named on stderr.
            None: left as it is, and not named.
        keep: ``--keep``, or a ``--workdir`` the caller gave.

    Returns:
        0 if ok, else 1.
    """
    if ok is None:
        ok = error is None and not problems
    record = {"benchmark": name, "ok": ok, "error": error, **fields}
    for key, value in (("problems", problems), ("notes", notes), ("stop", stop)):
        if value is not None:
            record[key] = value
    print(json.dumps(record, separators=(",", ":"), default=str), flush=True)
    if workdir is not None:
        if ok and not keep:
            shutil.rmtree(workdir, ignore_errors=True)
        elif not ok:
            console.print(f"state kept in {workdir}")
    return 0 if ok else 1


# --- the raw engine ------------------------------------------------------------------------------


class RawPodman:
    """The engine driven by hand with the podman CLI in remote mode, against dockyard's engine socket."""

    name = "podman CLI"

    def __init__(self, endpoint: str) -> None:
        self.base = ["podman", "--url", endpoint]

    def _run(self, *args: str) -> str:
        out = subprocess.run(
            [*self.base, *args], capture_output=True, text=True, timeout=RAW_STEP_TIMEOUT, stdin=subprocess.DEVNULL
        )
        if out.returncode != 0:
            raise BenchError(
                f"`podman {' '.join(args)}` exited {out.returncode}:\n{out.stdout[-1500:]}\n{out.stderr[-1500:]}"
            )
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
        out = self._run(
            "ps",
            "-q",
            "--no-trunc",
            "--filter",
            f"label={well_known.CONTAINER_POD_UID}={pod_uid}",
            "--filter",
            f"label={well_known.CONTAINER_NAME}={container}",
            "--filter",
            "status=running",
        )
        ids = out.split()
        return ids[0] if ids else None

    def pod_containers(self, pod_uid: str) -> list[str]:
        return self._run("ps", "-a", "-q", "--filter", f"label={well_known.CONTAINER_POD_UID}={pod_uid}").split()

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
            subprocess.run(
                [*self.base, "rmi", "--ignore", *images], capture_output=True, timeout=120, stdin=subprocess.DEVNULL
            )


class RawDockerPy:
    """The same calls through docker-py (used when the engine is Docker Engine, where the podman CLI cannot go)."""

    name = "docker-py"

    def __init__(self, endpoint: str) -> None:
        import docker

        self.client = docker.DockerClient(base_url=endpoint, timeout=RAW_STEP_TIMEOUT)

    @staticmethod
    def _check_stream(what: str, stream: Iterable[Any]) -> None:
        for chunk in stream:
            if isinstance(chunk, dict) and (chunk.get("error") or chunk.get("errorDetail")):
                raise BenchError(f"{what}: {chunk.get('error') or chunk.get('errorDetail')}")

    def build(self, context: Path, ref: str, buildargs: dict[str, str]) -> None:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(str(context), arcname=".")
        buf.seek(0)
        self._check_stream(
            f"build {ref}",
            self.client.api.build(fileobj=buf, custom_context=True, tag=ref, buildargs=buildargs, rm=True, decode=True),
        )

    def push(self, ref: str) -> None:
        repo, tag = ref.rsplit(":", 1)
        self._check_stream(f"push {ref}", self.client.api.push(repo, tag, stream=True, decode=True))

    def commit(self, container: str, ref: str) -> None:
        repo, tag = ref.rsplit(":", 1)
        self.client.api.commit(container, repository=repo, tag=tag, pause=True)

    def find_container(self, pod_uid: str, container: str) -> str | None:
        found = self.client.api.containers(
            filters={
                "label": [f"{well_known.CONTAINER_POD_UID}={pod_uid}", f"{well_known.CONTAINER_NAME}={container}"],
                "status": "running",
            }
        )
        return found[0]["Id"] if found else None

    def pod_containers(self, pod_uid: str) -> list[str]:
        return [
            c["Id"]
            for c in self.client.api.containers(
                all=True, filters={"label": f"{well_known.CONTAINER_POD_UID}={pod_uid}"}
            )
        ]

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
            image_id: str = self.client.api.inspect_image(ref)["Id"]
            return image_id
        except Exception:
            return None

    def rmi(self, images: list[str]) -> None:
        for image in images:
            try:
                self.client.api.remove_image(image)
            except Exception:
                pass


# --- dockyard up ---------------------------------------------------------------------------------


class Harness:
    """One ``dockyard up`` of the benchmark's own, and the helpers to talk to it.

    Args:
        workdir: state directory (``data/``, ``up.log``, the container store).
        engine: ``dockyard up --engine``.
        raw_client: how the raw side drives the engine: ``auto`` (podman CLI for Podman, else docker-py),
            ``podman``, ``docker-py``, or ``none`` (no raw side).
        isolated_storage: give the Podman service that ``up`` starts its own container store.
        up_args: further ``dockyard up`` arguments (e.g. ``--max-builds 10``).
    """

    def __init__(
        self,
        workdir: Path,
        *,
        engine: str = "auto",
        raw_client: str = "auto",
        isolated_storage: bool = True,
        up_args: Sequence[str] = (),
    ) -> None:
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.engine_opt, self.raw_client_opt = engine, raw_client
        self.up_args = list(up_args)
        self.api_port, self.registry_port = free_port(), free_port()
        self.registry = f"127.0.0.1:{self.registry_port}"
        self.api_url = f"https://127.0.0.1:{self.api_port}"
        self.kubeconfig = self.data_dir / "kubeconfig"
        self.env = dict(os.environ, KUBECONFIG=str(self.kubeconfig))
        self.storage_dir: Path | None = None
        if isolated_storage:
            # A Podman service started by `dockyard up` uses the host's one image/container store by default,
            # shared with every other dockyard instance on the host. Give ours its own store (same driver),
            # so other instances' agents cannot touch the bench's pods and the bench's up cannot touch theirs.
            self.storage_dir = workdir / "storage"
            conf = workdir / "containers-storage.conf"
            conf.write_text(
                f'[storage]\ndriver = "overlay"\ngraphroot = "{self.storage_dir / "graph"}"\n'
                f'runroot = "{self.storage_dir / "run"}"\n'
            )
            self.env["CONTAINERS_STORAGE_CONF"] = str(conf)
        self.up_proc: subprocess.Popen[bytes] | None = None
        self.http: httpx.Client | None = None
        self.verify: Any = True
        self.token = ""
        self.raw: RawPodman | RawDockerPy | None = None
        self.engine_kind = "?"
        self.engine_endpoint = ""
        self.watch_ok = True
        self.base_ref = f"{self.registry}/dockyard/busybox:latest"
        self.created_images: list[str] = []  # engine image IDs this run made (removed at the end)
        self.created_refs: list[str] = []  # and the names it gave them (all under this run's registry port)
        self.notes: list[str] = []
        self.stop_info = ""
        self.starts = 0
        self.proc_label = "dockyard up"

    # --- processes ------------------------------------------------------------------------------

    def sh(
        self, *argv: str, check: bool = True, timeout: float = CLI_TIMEOUT, input_: str | None = None
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
            raise BenchError(f"`{' '.join(argv)}` exited {out.returncode}:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
        return out

    def kubectl(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.sh("kubectl", f"--cache-dir={self.workdir / 'kube-cache'}", *args, **kw)

    def up_log(self, chars: int = 3000) -> str:
        try:
            return (self.workdir / "up.log").read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def wait_for(self, what: str, predicate: Callable[[], Any], timeout: float, interval: float = 0.25) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.up_proc is not None and self.up_proc.poll() is not None:
                raise BenchError(
                    f"{self.proc_label} exited {self.up_proc.returncode} while waiting for {what}; "
                    f"up.log:\n{self.up_log()}"
                )
            try:
                value = predicate()
            except (
                httpx.HTTPError,
                BenchError,
                subprocess.SubprocessError,
                ValueError,
                KeyError,
                OSError,
                yaml.YAMLError,
            ):
                value = None
            if value:
                return value
            time.sleep(interval)
        raise BenchError(f"timed out after {timeout:.0f}s waiting for {what}")

    # --- start / stop ---------------------------------------------------------------------------

    def _launch(self, argv: list[str], label: str) -> int:
        """Start the process under test (output appended to ``up.log``) and wait until /readyz answers 200.

        Returns the offset in ``up.log`` where this start's output begins.
        """
        if self.up_proc is not None and self.up_proc.poll() is None:
            raise BenchError("the process under test is already running")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / "up.log", "ab")  # noqa: SIM115 — closed once the child has it
        log.write(f"\n===== bench: {label} =====\n".encode())
        log.flush()
        log_offset = log.tell()
        self.up_proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env
        )
        log.close()  # the child has its own descriptor
        self.starts += 1
        self.proc_label = label
        t0 = time.monotonic()

        def ready() -> bool:
            if not self.kubeconfig.exists():
                return False
            server, verify, _token = self.kube_connection()
            return httpx.get(f"{server}/readyz", timeout=2, verify=verify).status_code == 200

        self.wait_for(f"{label} /readyz", ready, UP_READY_TIMEOUT)
        self.notes.append(f"{label} ready in {time.monotonic() - t0:.1f}s")
        server, self.verify, self.token = self.kube_connection()
        self.api_url = server
        if self.http is not None:
            self.http.close()
        self.http = httpx.Client(
            base_url=server, headers={"Authorization": f"Bearer {self.token}"}, timeout=30, verify=self.verify
        )
        return log_offset

    def start(self, up_args: Sequence[str] | None = None) -> None:
        """Start ``dockyard up`` (again, after :meth:`stop`, on the same data dir and ports) and wait for /readyz."""
        if up_args is not None:
            self.up_args = list(up_args)
        label = " ".join(["dockyard up", *self.up_args])
        log_offset = self._launch(
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
                self.engine_opt,
                *self.up_args,
            ],
            label,
        )
        match = None
        deadline = time.monotonic() + 10  # /readyz can answer a moment before `up` prints its announcement
        while match is None and time.monotonic() < deadline:
            try:
                this_start = (self.workdir / "up.log").read_bytes()[log_offset:].decode(errors="replace")
            except OSError:
                this_start = ""
            match = re.search(r"engine (\w+) \(([^)]+)\)", this_start)
            if match is None:
                time.sleep(0.1)
        if match:
            self.engine_kind, self.engine_endpoint = match.group(1), match.group(2)
        else:
            self.engine_kind, self.engine_endpoint = "podman", f"unix://{self.data_dir / 'run' / 'podman.sock'}"
            self.notes.append("engine not announced in up.log; assuming DATA/run/podman.sock")
        if (
            self.storage_dir is not None
            and str(self.data_dir.resolve()) not in self.engine_endpoint
            and self.starts == 1
        ):
            self.notes.append(
                f"dockyard up attached to an engine it did not start ({self.engine_endpoint}): "
                "the bench's own image store does not apply"
            )
        client = self.raw_client_opt
        if client == "auto":
            client = "podman" if self.engine_kind == "podman" and shutil.which("podman") else "docker-py"
        if client == "none":
            self.raw = None
        else:
            self.raw = RawPodman(self.engine_endpoint) if client == "podman" else RawDockerPy(self.engine_endpoint)
        console.print(
            f"  {label}: API {self.api_url}, registry {self.registry}, "
            f"engine {self.engine_kind} ({self.engine_endpoint})" + (f"; raw side: {self.raw.name}" if self.raw else "")
        )

    def up_proc_pid(self) -> int | None:
        """The pid of the server process (``dockyard up`` or the API server), if started."""
        return self.up_proc.pid if self.up_proc is not None else None

    @staticmethod
    def apiserver_module_exists() -> bool:
        """True if this dockyard has ``python -m dockyard.apiserver`` (only the API server)."""
        import importlib.util

        try:
            return importlib.util.find_spec("dockyard.apiserver.__main__") is not None
        except (ImportError, ValueError):
            return False

    def start_apiserver(self) -> None:
        """Start only the API server, ``python -m dockyard.apiserver`` (no controllers, agent, registry, engine)."""
        self._launch(
            [
                sys.executable,
                "-m",
                "dockyard.apiserver",
                "--data-dir",
                str(self.data_dir),
                "--port",
                str(self.api_port),
            ],
            "python -m dockyard.apiserver",
        )
        self.engine_kind, self.raw = "none", None
        console.print(f"  python -m dockyard.apiserver: API {self.api_url}")

    def kube_connection(self) -> tuple[str, Any, str]:
        """(server URL, httpx ``verify``, bearer token) of the kubeconfig's current context."""
        cfg = yaml.safe_load(self.kubeconfig.read_text())
        ctx_name = cfg.get("current-context")
        ctx = next(
            (c["context"] for c in cfg.get("contexts") or [] if c["name"] == ctx_name),
            (cfg.get("contexts") or [{}])[0].get("context", {}),
        )
        cluster = next(
            (c["cluster"] for c in cfg["clusters"] if c["name"] == ctx.get("cluster")), cfg["clusters"][0]["cluster"]
        )
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

    def stop(self) -> None:
        """SIGTERM the process under test (SIGKILL if it has not exited ``STOP_TIMEOUT`` s later)."""
        if self.up_proc is None:
            return
        label = self.proc_label
        if self.up_proc.poll() is not None:
            self.stop_info = f"{label} had already exited ({self.up_proc.returncode})"
            return
        t0 = time.monotonic()
        self.up_proc.send_signal(signal.SIGTERM)
        try:
            code = self.up_proc.wait(timeout=STOP_TIMEOUT)
            self.stop_info = f"{label} stopped on SIGTERM in {time.monotonic() - t0:.1f}s (exit {code})"
        except subprocess.TimeoutExpired:
            self.up_proc.kill()
            self.up_proc.wait(timeout=10)
            self.stop_info = f"{label} did not stop within {STOP_TIMEOUT}s of SIGTERM: killed"

    def close(self) -> None:
        if self.http is not None:
            self.http.close()
            self.http = None

    def teardown(self, *, keep: bool) -> None:
        """Undo the run, also after a failure: the images it made (unless ``keep``), the process under test
        (:meth:`stop`), the HTTP client, the run's own container store (unless ``keep``)."""
        if not keep:
            self.cleanup_images()
        self.stop()
        self.close()
        if not keep:
            self.drop_storage()

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
            while processes_naming(root) and time.monotonic() < deadline:
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
            if not self.storage_dir.exists() and not processes_naming(root):
                return
        self.notes.append(f"could not remove all of {self.storage_dir}")

    # --- images ---------------------------------------------------------------------------------

    def base_image(self) -> None:
        out = self.sh(
            str(BIN / "dockyard"), "base-image", "busybox", "--to", self.base_ref, "--data-dir", str(self.data_dir)
        )
        console.print(f"  base image {out.stdout.strip()}")
        self.remember_image(self.base_ref)

    def remember_image(self, ref: str) -> None:
        if ref not in self.created_refs:
            self.created_refs.append(ref)
        if self.raw is not None:
            image = self.raw.image_id(ref)
            if image and image not in self.created_images:
                self.created_images.append(image)

    def extra_refs_to_remove(self) -> list[str]:
        """More names to untag before the recorded image IDs are removed (override)."""
        return []

    def cleanup_images(self) -> None:
        if self.storage_dir is not None:
            return  # the whole store goes with drop_storage()
        self._rmi_recorded()

    def _rmi_recorded(self) -> None:
        """Remove the images this run made from the engine's store (best effort; only IDs it recorded).

        Runs before ``dockyard up`` stops (its Podman service goes with it).
        """
        if self.raw is None or not self.created_images or self.up_proc is None or self.up_proc.poll() is not None:
            return
        try:
            # names first (a name only untags an image that has others), then the IDs, newest first
            self.raw.rmi(self.created_refs + self.extra_refs_to_remove())
            self.raw.rmi(list(reversed(self.created_images)))
        except Exception as err:
            self.notes.append(f"image clean-up incomplete: {err}")

    # --- API helpers ----------------------------------------------------------------------------

    def api(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        assert self.http is not None
        resp = self.http.request(method, path, **kw)
        if not resp.is_success:
            raise BenchError(f"{method} {path} → {resp.status_code}: {resp.text[:1000]}")
        doc: dict[str, Any] = resp.json()
        return doc

    def wait_phase(
        self,
        plural: str,
        obj: dict[str, Any],
        terminal: tuple[str, ...],
        timeout: float,
        t0: float,
        namespace: str = NS,
    ) -> tuple[dict[str, Any], dict[str, float]]:
        """Watch ``obj`` until its status.phase is terminal. Returns it and {phase: seconds since t0 first seen}."""
        name = obj["metadata"]["name"]
        path = f"{GROUP}/namespaces/{namespace}/{plural}"
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
                    selector = {"fieldSelector": f"metadata.name={name}"}
                    for event in self.watch_events(path, selector, rv, remaining=remaining, window=60, slack=5):
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

    def watch_events(
        self,
        path: str,
        selector: dict[str, str],
        rv: str,
        *,
        remaining: float,
        window: float,
        slack: float,
        what: str = "watch",
    ) -> Iterator[dict[str, Any]]:
        """One watch request (``GET path?watch=true``) from resourceVersion ``rv``: its events, in order.

        Kubernetes watch semantics (API concepts, "Efficient detection of changes"): each event is
        ``{"type": ADDED|MODIFIED|DELETED|BOOKMARK, "object": {...}}``; an ``ERROR`` event (e.g. 410 Gone: ``rv``
        too old) ends the iteration, as does the server closing the stream. The server is asked to close it
        after ``min(remaining, window) + 1`` seconds; the client waits ``slack`` seconds longer, and as long
        for the connection. ``selector``: further query parameters (``fieldSelector``, ``labelSelector``).

        Raises:
            BenchError: the watch is not answered with 200 (``"{what} answered CODE: body"``).
            httpx.HTTPError, ValueError: the stream broke, or a line is not JSON.
        """
        assert self.http is not None
        with self.http.stream(
            "GET",
            path,
            params={
                "watch": "true",
                **selector,
                "resourceVersion": rv,
                "timeoutSeconds": str(int(min(remaining, window)) + 1),
            },
            timeout=httpx.Timeout(min(remaining, window) + slack, connect=slack),
        ) as resp:
            if resp.status_code != 200:
                resp.read()
                raise BenchError(f"{what} answered {resp.status_code}: {resp.text[:300]}")
            for line in resp.iter_lines():
                if not line.strip():
                    continue
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    return
                yield event

    def registry_layers(self, ref: str) -> list[str] | None:
        """The layer digests of the image manifest the registry serves for ``host/repo@digest`` or
        ``host/repo:tag`` (OCI image manifest ``layers[].digest``; None if absent or an index)."""
        host, rest = ref.split("/", 1)
        repo, tag = rest.split("@", 1) if "@" in rest else rest.rsplit(":", 1)
        resp = httpx.get(f"http://{host}/v2/{repo}/manifests/{tag}", headers={"Accept": ACCEPT_MANIFESTS}, timeout=10)
        if resp.status_code != 200:
            return None
        layers = resp.json().get("layers")
        return [str(layer.get("digest")) for layer in layers] if isinstance(layers, list) else None

    def registry_digest(self, ref: str) -> str | None:
        """The digest the registry serves for ``host/repo:tag`` or ``host/repo@digest`` (None if absent)."""
        host, rest = ref.split("/", 1)
        if "@" in rest:
            repo, tag = rest.split("@", 1)
        else:
            repo, tag = rest.rsplit(":", 1)
        resp = httpx.head(f"http://{host}/v2/{repo}/manifests/{tag}", headers={"Accept": ACCEPT_MANIFESTS}, timeout=10)
        return resp.headers.get("Docker-Content-Digest") if resp.status_code == 200 else None
