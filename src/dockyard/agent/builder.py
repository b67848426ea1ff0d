"""The builder process: runs one Build, detached from the node agent.

``python -m dockyard.agent.builder STATE_DIR`` — what a build pod's container
is on the embedded engine. The node agent starts it in its own session, so it
outlives the agent (as a container outlives the kubelet); the agent, when it
comes back, re-attaches by reading ``STATE_DIR``:

- ``request.json`` (written by the agent): ``{"build": {metadata, spec},
  "kubeconfig": PATH, "engine": ENGINE_URL}``;
- ``pid``: written by the agent after the start;
- ``result.json``: written here, atomically, when the build ends — the
  :class:`dockyard.api.buildpod.BuildResult` fields, or ``{"cancelled": true}``.

The builder fetches its own inputs through the Kubernetes API with the node
identity (Secrets for ``sourceSecret``/``pushSecret``, the uploaded archive of
a Binary build) and ships its log to ``builds/NAME/log``. SIGTERM (cancel or
deadline: the agent was told the build pod was deleted) stops it at the next
line of output.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import docker

from dockyard.agent import builds
from dockyard.agent.logsink import LogSink
from dockyard.api import buildpod, credentials
from dockyard.client import connection, runtime

log = logging.getLogger("dockyard.builder")


def write_json_atomic(path: Path, doc: dict[str, Any]) -> None:
    """Write ``doc`` to ``path`` so a reader sees all of it or nothing (rename(2) is atomic)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, path)


def fetch_inputs(api: Any, http: Any, build: dict[str, Any], cancelled: Any) -> builds.BuildInputs:
    """Secrets and the uploaded archive this build needs, read with the node identity.

    Raises:
        builds.StageFailed: a Secret is missing or unusable (the message names it, never its data).
    """
    spec, ns = build["spec"], build["metadata"]["namespace"]
    inputs = builds.BuildInputs(cancelled=cancelled)

    def secret_auth(name: str, reason: str, parse: Any) -> Any:
        secret = runtime.get_or_none(api, "Secret", name, ns)
        if secret is None:
            raise builds.StageFailed(reason, f"secret {name!r} not found in namespace {ns!r}")
        try:
            return parse(secret)
        except credentials.CredentialError as err:
            raise builds.StageFailed(reason, str(err)) from err

    source_secret = (spec["source"].get("sourceSecret") or {}).get("name")
    if source_secret:
        inputs.source_auth = secret_auth(source_secret, "FetchSourceFailed", credentials.basic_auth)
    push_secret = (spec["output"].get("pushSecret") or {}).get("name")
    if push_secret:
        target = builds.registry_of(spec["output"]["to"]["name"])
        inputs.push_auth = secret_auth(push_secret, "PushImageToRegistryFailed",
                                       lambda s: credentials.registry_auth(s, target))
    if spec["source"].get("type") == "Binary":
        resp = http.get(f"/apis/dockyard.dev/v1alpha1/namespaces/{ns}/builds/{build['metadata']['name']}/source")
        if resp.status_code == 200:
            inputs.binary = resp.content
    return inputs


def run(state_dir: Path) -> dict[str, Any]:
    """Run the build described in ``state_dir/request.json``; returns what goes to ``result.json``."""
    request = json.loads((state_dir / "request.json").read_text())
    build = request["build"]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    conn = connection.connect(request["kubeconfig"])
    api = conn.lightkube()
    http = conn.http(timeout=120)
    engine = docker.DockerClient(base_url=request["engine"], timeout=300)
    sink = LogSink(http, namespace=build["metadata"]["namespace"], name=build["metadata"]["name"])
    try:
        inputs = fetch_inputs(api, http, build, stop.is_set)
        result = builds.run_build(engine, build, sink, inputs)
    except builds.BuildCancelled:
        sink.write("Build cancelled: the build pod was deleted")
        sink.close()
        return {"cancelled": True}
    except builds.StageFailed as err:
        sink.write(f"error: {err.message}")
        sink.close()
        result = buildpod.BuildResult(succeeded=False, reason=err.reason, message=err.message,
                                      log_snippet=sink.snippet())
    except Exception as err:  # noqa: BLE001 — a builder bug must still end the build with a result
        log.exception("builder crashed")
        sink.close()
        result = buildpod.BuildResult(succeeded=False, reason="GenericBuildFailed", message=str(err),
                                      log_snippet=sink.snippet())
    finally:
        http.close()
        engine.close()
    doc = dataclasses.asdict(result)
    doc["stages"] = list(result.stages)
    return doc


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m dockyard.agent.builder STATE_DIR", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpcore", "httpx2", "httpcore2", "urllib3", "docker"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    state_dir = Path(args[0])
    write_json_atomic(state_dir / "result.json", run(state_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
