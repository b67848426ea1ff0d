"""The builder process: runs one Build, detached from the node agent.

What a build pod's container is on the embedded engine. The node agent forks
it from a preloaded ``multiprocessing`` forkserver (:func:`detached_main`; no
interpreter start-up per build) or runs ``python -m dockyard.agent.builder
STATE_DIR``; either way it runs in its own session, so it outlives the agent
(as a container outlives the kubelet). The agent, when it comes back,
re-attaches by reading ``STATE_DIR``:

- ``request.json`` (written by the agent): ``{"build": {metadata, spec},
  "kubeconfig": [PATH, ...] (merged; empty in-cluster), "engine": ENGINE_URL,
  "engine_api_version": "1.41" or null}`` (the version the agent's client of the engine
  negotiated; asking the engine again costs Podman about 0.7 s);
- ``pid``: ``"PID STARTTIME"`` written here first thing (STARTTIME is field 22
  of ``/proc/PID/stat``, so a reused pid is never mistaken for the builder);
- ``result.json``: written here, atomically, when the build ends — the
  :class:`dockyard.api.buildpod.BuildResult` fields, or ``{"cancelled": true}``.

The builder fetches its own inputs through the Kubernetes API with the node
identity (Secrets for ``sourceSecret``/``pushSecret``, the uploaded archive of
a Binary build) and ships its log to ``builds/NAME/log``. SIGTERM (cancel or
deadline: the agent was told the build pod was deleted; or the agent's clean
shutdown) records ``{"cancelled": true}`` and ends it at once.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpcore  # noqa: F401
import httpx

from dockyard.agent import builds
from dockyard.agent.engine import connect
from dockyard.agent.logsink import LogSink
from dockyard.api import archive, buildpod, credentials
from dockyard.api import objects as api_objects
from dockyard.client import connection, objects, runtime

log = logging.getLogger("dockyard.builder")

# Made once in the forkserver that preloads this module, so every builder inherits it: the registry TLS
# context (the CA bundle). httpcore is imported above for the same reason: httpx imports it (and h2) only
# when its first transport is made, about 30 ms of every build.
builds.registry_tls()


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so a reader sees all of it or nothing (rename(2) is atomic)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json_atomic(path: Path, doc: dict[str, Any]) -> None:
    """:func:`write_text_atomic` of ``doc`` as JSON."""
    write_text_atomic(path, json.dumps(doc))


@dataclasses.dataclass
class ApiClients:
    """The builder's clients of the API server, with the node identity.

    ``api``: a lightkube client, made only when the build names a ``sourceSecret`` or ``pushSecret``
    (its own TLS set-up costs about 0.1 s); ``http``: an httpx client (the log, a Binary build's archive).
    """

    api: Any
    http: httpx.Client

    @classmethod
    def open(cls, kubeconfig: str | list[str], spec: Any) -> ApiClients:
        """Read the kubeconfig (a path or the merged list of paths) and make the clients for ``spec``.

        Raises:
            connection.BadKubeconfig: the kubeconfig or its TLS material does not load.
        """
        conn = connection.connect(paths=[kubeconfig] if isinstance(kubeconfig, str) else kubeconfig)
        needs_api = spec.source.sourceSecret is not None or spec.output.pushSecret is not None
        return cls(api=conn.lightkube() if needs_api else None, http=conn.http(timeout=120))


def report_revision(clients: ApiClients, build: api_objects.Build, revision: dict[str, Any]) -> bool:
    """Write the resolved source revision onto the Build while it runs: ``PATCH builds/NAME/details``
    (a JSON merge patch of ``spec.revision``), as OpenShift's builder calls ``UpdateDetails``.

    Returns True if the server took it. A refusal or an error is logged and nothing more: the build
    controller writes the revision from the build pod's result when the Build still lacks it (a server
    without ``builds/details``, such as a cluster serving Builds from CRDs, answers 404).
    """
    details_path = (
        f"/apis/dockyard.dev/v1alpha1/namespaces/{build.metadata.namespace}/builds/{build.metadata.name}/details"
    )
    try:
        resp = clients.http.patch(
            details_path, content=json.dumps({"spec": {"revision": revision}}), headers={"Content-Type": MERGE_PATCH}
        )
    except httpx.HTTPError as err:
        log.warning("could not report the revision through %s: %s", details_path, err)
        return False
    if not resp.is_success:
        log.info(
            "revision not reported through %s (%s): the controller writes it at the end", details_path, resp.status_code
        )
    return resp.is_success


MERGE_PATCH = "application/merge-patch+json"


def fetch_inputs(
    clients: Callable[[], ApiClients], build: api_objects.Build, cancelled: Any, source_file: Path | None = None
) -> builds.BuildInputs:
    """Secrets and the uploaded archive this build needs, read with the node identity.

    The archive of a Binary build is streamed to ``source_file`` (never held in memory),
    at most :data:`dockyard.api.archive.DEFAULT_MAX_BYTES` of it. ``clients`` is called (and may wait for
    the clients being made) only when the build names a Secret or has a Binary source: a Git build
    without secrets starts fetching its source before they are ready.
    Raises:
        builds.StageFailed: a Secret is missing or unusable (the message names it, never its data); a push
            Secret for an output no one resolved (:func:`dockyard.agent.builds.push_target`).
    """
    spec, ns = build.spec, build.metadata.namespace
    inputs = builds.BuildInputs(cancelled=cancelled)

    def secret_auth(name: str, reason: str, parse: Any) -> Any:
        secret = runtime.get_or_none(clients().api, "Secret", name, ns)
        if secret is None:
            raise builds.StageFailed(reason, f"secret {name!r} not found in namespace {ns!r}")
        try:
            return parse(secret)
        except credentials.CredentialError as err:
            raise builds.StageFailed(reason, str(err)) from err

    if spec.source.sourceSecret is not None:
        inputs.source_auth = secret_auth(spec.source.sourceSecret.name, "FetchSourceFailed", credentials.basic_auth)
    if spec.output.pushSecret is not None:
        target = builds.registry_of(builds.push_target(build))
        inputs.push_auth = secret_auth(
            spec.output.pushSecret.name, "PushImageToRegistryFailed", lambda s: credentials.registry_auth(s, target)
        )
    if spec.source.type == "Binary" and source_file is not None:
        url = f"/apis/dockyard.dev/v1alpha1/namespaces/{ns}/builds/{build.metadata.name}/source"
        with clients().http.stream("GET", url) as resp:
            if resp.status_code == 200:
                size = 0
                with open(source_file, "wb") as out:
                    for chunk in resp.iter_bytes():
                        size += len(chunk)
                        if size > archive.DEFAULT_MAX_BYTES:
                            raise builds.StageFailed(
                                "FetchSourceFailed", str(archive.too_many_bytes(archive.DEFAULT_MAX_BYTES))
                            )
                        out.write(chunk)
                inputs.binary = source_file
    return inputs


def run(state_dir: Path) -> dict[str, Any]:
    """Run the build described in ``state_dir/request.json``; returns what goes to ``result.json``."""
    request = json.loads((state_dir / "request.json").read_text())
    build: api_objects.Build = objects.parse(request["build"], api_objects.Build)
    stop = threading.Event()

    def on_sigterm(_signum: int, _frame: object) -> None:
        # cancel, deadline or agent shutdown (the agent writes CANCEL_FILE first): record it and leave now, even
        # in a silent RUN step; any other SIGTERM is ignored (the builder outlives its agent and `dockyard up`)
        if not (state_dir / CANCEL_FILE).exists():
            print("builder: SIGTERM without a cancel request: ignored", file=sys.stderr, flush=True)
            return
        stop.set()
        write_json_atomic(state_dir / "result.json", {"cancelled": True})
        os._exit(0)

    signal.signal(signal.SIGTERM, on_sigterm)
    # A Git source that needs no Secret is cloned first, on its own thread: the clone is what the build waits
    # for first, and it runs while the clients and the engine connection are made. However the build ends,
    # the clone is waited for and removed.
    with builds.fetching_ahead(build.spec.source, stop.is_set, scratch=state_dir) as ahead:
        return _run(state_dir, request, build, stop, ahead)


def _run(
    state_dir: Path,
    request: dict[str, Any],
    build: api_objects.Build,
    stop: threading.Event,
    ahead: concurrent.futures.Future[builds.FetchedSource] | None,
) -> dict[str, Any]:
    # The API clients (reading the kubeconfig, two TLS contexts: 10-15 ms of a busy machine) are made on a
    # thread while the source is fetched; what needs them first waits for them.
    setup = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="builder-clients")
    made = setup.submit(ApiClients.open, request["kubeconfig"], build.spec)

    def on_revision(revision: dict[str, Any]) -> None:  # on the same thread, once the clients are made
        setup.submit(lambda: report_revision(made.result(), build, revision))

    engine = connect.open_client(request["engine"], timeout=300, api_version=request.get("engine_api_version"))
    sink = LogSink(lambda: made.result().http, namespace=str(build.metadata.namespace), name=build.metadata.name)
    try:
        inputs = fetch_inputs(made.result, build, stop.is_set, state_dir / "source.archive")
        inputs.on_revision, inputs.fetched, inputs.scratch = on_revision, ahead, state_dir
        result = builds.run_build(engine, build, sink, inputs)
    except builds.BuildCancelled:
        sink.write("Build cancelled: the build pod was deleted")
        sink.close()
        return {"cancelled": True}
    except builds.StageFailed as err:
        sink.write(f"error: {err.message}")
        sink.close()
        result = buildpod.BuildResult(
            succeeded=False, reason=err.reason, message=err.message, log_snippet=sink.snippet()
        )
    except Exception as err:
        log.exception("builder crashed")
        sink.close()
        result = buildpod.BuildResult(
            succeeded=False, reason="GenericBuildFailed", message=str(err), log_snippet=sink.snippet()
        )
    finally:
        setup.shutdown(wait=True)  # the revision is on the Build (or refused) before the build pod ends
        if made.done() and made.exception() is None:
            made.result().http.close()
        engine.close()
        (state_dir / "source.archive").unlink(missing_ok=True)
    doc = dataclasses.asdict(result)
    doc["stages"] = list(result.stages)
    return doc


CANCEL_FILE = "cancel"
"""File in a builder's state directory that the agent writes before it SIGTERMs the builder to stop it."""


def process_identity(pid: int) -> str | None:
    """``"PID STARTTIME"`` of a live, non-zombie process, or None (proc(5), ``/proc/PID/stat``)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    if not fields or fields[0] == "Z":
        return None
    return f"{pid} {fields[19]}"


def detached_main(state_dir: str) -> None:
    """Entry point in a forked child: new session, output to ``builder.log``, pid file, then :func:`run`."""
    os.setsid()
    d = Path(state_dir)
    out = os.open(d / "builder.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(out)
    try:
        main([state_dir])
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m dockyard.agent.builder STATE_DIR", file=sys.stderr)
        return 2
    state_dir = Path(args[0])
    identity = process_identity(os.getpid())
    write_text_atomic(state_dir / "pid", identity or str(os.getpid()))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    for noisy in ("httpx", "httpcore", "httpx2", "httpcore2", "urllib3", "docker"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    write_json_atomic(state_dir / "result.json", run(state_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
