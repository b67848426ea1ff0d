"""``GET /api/v1/namespaces/NS/pods/NAME/log``: a container's output, from the node agent of the pod's node.

As kube-apiserver (``pkg/registry/core/pod/rest/log.go``): the request's ``PodLogOptions`` are checked
(:mod:`dockyard.api.podlogs`: 422 naming a bad parameter), the container is picked (the only one, else
``container`` must name one: 400), the pod must be bound to a node (400), and the answer is the node's
``/containerLogs/{namespace}/{pod}/{container}`` streamed back as it comes (:mod:`dockyard.agent.podlogs`).
The agent is reached over the Unix socket :attr:`.state.ServerState.node_logs` names for the node
(``dockyard up`` gives its one agent's); a node without one is 503. Its refusals (a container waiting to
start, no previous attempt) are relayed as they are. A ``follow=true`` stream holds one of the server's
long-running slots (:mod:`.inflight`; 429 past them) and ends when the container stops, the client goes
away or the server stops.

Build pods are run by builder processes, not engine containers of the pod runtime: their output is the
Build's log (``dockyard logs build/NAME``), which a 400 says.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from dockyard.api import buildpod, errors, kinds, podlogs
from dockyard.apiserver import inflight, wire
from dockyard.apiserver.state import ServerState

__all__ = ["CONNECT_TIMEOUT", "READ_TIMEOUT", "handle_get"]

CONNECT_TIMEOUT = 5.0
"""Seconds to reach the node agent's socket."""
READ_TIMEOUT = 60.0
"""Seconds the agent may stay silent before a non-follow answer is cut (a follow waits for output)."""


def _pod_info() -> kinds.ResourceInfo:
    info = kinds.by_kind("v1", "Pod")
    assert info is not None
    return info


async def handle_get(state: ServerState, request: Request, namespace: str, name: str) -> Response:
    """Answer ``GET .../pods/NAME/log`` (see the module docstring).

    Raises:
        errors.Invalid: a bad ``PodLogOptions`` parameter (422).
        errors.NotFound: no such pod.
        errors.BadRequest: no or an unknown container, a build pod, a pod not bound to a node.
        errors.StatusError: 503 when the node's agent cannot be reached; the agent's own refusal otherwise.
    """
    options = podlogs.parse(urllib.parse.parse_qs(request.url.query), pod=name, now=time.time())
    pod: dict[str, Any] = await run_in_threadpool(state.store.get, _pod_info(), namespace, name)
    container = podlogs.container_for(options, pod)
    if buildpod.is_build_pod(pod):
        build = buildpod.build_name(pod) or name.removesuffix("-build")
        raise errors.BadRequest(
            f"the output of build pod {name} is its Build's log: `dockyard logs build/{build}` "
            f"(GET .../builds/{build}/log)"
        )
    node = str((pod.get("spec") or {}).get("nodeName") or "")
    if not node:
        raise errors.BadRequest(f"pod {name} does not have a host assigned")
    socket_path = state.node_logs.get(node)
    if socket_path is None:
        raise _unavailable(f"no log endpoint is known for node {node}: the API server asks only the agent it runs with")
    uid = str((pod.get("metadata") or {}).get("uid") or "")
    release = state.long_running.acquire(wire.request_user(request)) if options.follow else None
    client = httpx.AsyncClient(
        transport=httpx.AsyncHTTPTransport(uds=str(socket_path)),
        timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT, read=None if options.follow else READ_TIMEOUT),
    )
    try:
        path = "/containerLogs/" + "/".join(urllib.parse.quote(p, safe="") for p in (namespace, name, container))
        answer = await client.send(
            client.build_request("GET", f"http://agent{path}", params=podlogs.to_query(options, pod_uid=uid)),
            stream=True,
        )
    except httpx.HTTPError as err:
        await client.aclose()
        if release is not None:
            release()
        raise _unavailable(f"the node agent of node {node} does not answer: {err}") from None
    if answer.status_code != 200:
        body = await answer.aread()
        await client.aclose()
        if release is not None:
            release()
        raise _relayed(answer.status_code, body)

    async def relay() -> AsyncIterator[bytes]:
        try:
            async for block in answer.aiter_raw():
                yield block
                if state.stopping.is_set():
                    return
        except httpx.HTTPError:  # the agent stopped mid-stream: what was sent stands, as with a kubelet
            return
        finally:
            await answer.aclose()
            await client.aclose()

    if release is None:
        return StreamingResponse(relay(), media_type="text/plain")
    return inflight.HeldStream(relay(), media_type="text/plain", release=release)


def _unavailable(message: str) -> errors.StatusError:
    return _status_error(503, "ServiceUnavailable", message)


def _status_error(code: int, reason: str, message: str) -> errors.StatusError:
    error = errors.StatusError(message)
    error.code, error.reason = code, reason
    return error


def _relayed(code: int, body: bytes) -> errors.StatusError:
    """The agent's refusal (a ``Status``) as this server's answer, with its code, reason and message."""
    try:
        status = orjson.loads(body)
    except orjson.JSONDecodeError:
        status = None
    if not isinstance(status, dict):
        return _status_error(
            502, "InternalError", f"the node agent answered {code}: {body[:200].decode(errors='replace')}"
        )
    return _status_error(code, str(status.get("reason") or "BadRequest"), str(status.get("message") or ""))
