"""Build entry points beyond ``instantiate``: binary uploads, their download, and webhooks.

- ``POST .../buildconfigs/NAME/instantiatebinary`` (OpenShift's
  ``BuildConfig/instantiatebinary``): the body is the context archive
  (``application/octet-stream``, tar, tar.gz, tar.bz2 or tar.xz). It is
  streamed to a file and checked on the way (:mod:`.uploads`,
  :mod:`dockyard.api.archive`), never held whole in memory: past the limits
  (``--max-context-bytes``, uploaded and uncompressed, default 2 GiB;
  ``--max-context-members``, default 100,000) it gets 413 naming the limit, a
  bad archive gets 422 naming the member; either way the reading stops, the
  file is deleted and no Build is created. Answers 201 with the Build, whose
  archive is kept with it (a store blob file, deleted with the Build).
- ``GET .../builds/NAME/source``: that archive, streamed from its file, for the node agent.
- ``POST .../buildconfigs/NAME/webhooks/SECRET/generic`` (OpenShift's generic
  webhook): starts a build when SECRET matches a ``Generic`` trigger of the
  config; answers 202 with the Build. An optional JSON payload
  ``{"git": {"uri", "ref", "commit", "author": {"name", "email"}, "message"}}``
  sets the revision to build. A wrong secret, an unknown config and a config
  without a Generic trigger all get the same 403, so the answer reveals
  nothing about which part was wrong.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import os
from collections.abc import AsyncIterator
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from dockyard.api import errors, kinds
from dockyard.apiserver import subresources, uploads, wire
from dockyard.apiserver.state import ServerState

SECRET = kinds.by_kind("v1", "Secret")
WEBHOOK_SECRET_KEY = "WebHookSecretKey"  # OpenShift's key in a secretReference'd Secret
_SOURCE_CHUNK = 256 * 1024
LINGER_BYTES, LINGER_SECONDS = 16 * 1024 * 1024, 2.0
"""At most this much of a refused upload's remaining body is read (and discarded) before the answer."""


async def _linger(request: Request) -> None:
    async def drain() -> None:
        left = LINGER_BYTES
        while left > 0:
            message = await request.receive()
            if message["type"] != "http.request" or not message.get("more_body"):
                return
            left -= len(message.get("body", b""))
    try:
        await asyncio.wait_for(drain(), LINGER_SECONDS)
    except (asyncio.TimeoutError, OSError, RuntimeError):
        pass


async def handle_instantiatebinary(state: ServerState, request: Request, namespace: str, name: str) -> Response:
    config = await run_in_threadpool(state.store.get, subresources.BUILD_CONFIG, namespace, name)
    source_type = ((config.get("spec") or {}).get("source") or {}).get("type")
    if source_type != "Binary":
        raise errors.BadRequest(f'BuildConfig "{name}" has source.type {source_type!r}; uploading a context '
                                "needs source.type: Binary")
    try:
        path = await uploads.receive_context(state.store, request, state.context_limits, name=name)
    except errors.StatusError as err:
        # The rest of the body is not stored. Discard a little of it (a client that reads the answer
        # only once it has sent everything gets it if the body ends soon), then close the connection
        # rather than let the server drain it for keep-alive (RFC 9110 §15.5.14: for 413 the server MAY
        # close the connection; RFC 9112 §9.6 on closing while the client still sends).
        await _linger(request)
        response = wire.status_response(err)
        response.headers["Connection"] = "close"
        return response
    try:
        request_body = {"triggeredBy": [{"message": "Binary upload"}]}
        build = await run_in_threadpool(subresources.instantiate, state.store, namespace, name, request_body,
                                        binary=path)
    finally:
        path.unlink(missing_ok=True)  # still there only if the Build was not created
    return wire.json_response(build, 201)


async def handle_get_source(state: ServerState, namespace: str, name: str) -> Response:
    await run_in_threadpool(state.store.get, subresources.BUILD, namespace, name)  # 404 if no such Build
    path = await run_in_threadpool(state.store.blob_path, subresources.BUILD, namespace, name)
    try:
        file = await run_in_threadpool(open, path, "rb") if path is not None else None
    except FileNotFoundError:
        file = None
    if file is None:
        raise errors.NotFound(f'build "{name}" has no uploaded source')
    size = os.fstat(file.fileno()).st_size  # the open file outlives a concurrent deletion of the Build

    async def chunks() -> AsyncIterator[bytes]:
        try:
            while chunk := await run_in_threadpool(file.read, _SOURCE_CHUNK):
                yield chunk
        finally:
            file.close()

    return StreamingResponse(chunks(), media_type="application/octet-stream",
                             headers={"Content-Length": str(size)})


def _forbidden() -> errors.Forbidden:
    return errors.Forbidden("the webhook secret is not valid for this BuildConfig")


def _trigger_secrets(store: Any, namespace: str, config: dict[str, Any]) -> list[str]:
    found = []
    for trigger in (config.get("spec") or {}).get("triggers") or []:
        if trigger.get("type") != "Generic":
            continue
        generic = trigger.get("generic") or {}
        if generic.get("secret"):
            found.append(str(generic["secret"]))
        ref = (generic.get("secretReference") or {}).get("name")
        if ref:
            try:
                secret = store.get(SECRET, namespace, ref)
            except errors.NotFound:
                continue
            raw = (secret.get("data") or {}).get(WEBHOOK_SECRET_KEY)
            if raw:
                try:
                    found.append(base64.b64decode(raw).decode())
                except ValueError:
                    continue
    return found


def _webhook(store: Any, namespace: str, name: str, secret: str, payload: Any) -> dict[str, Any]:
    try:
        config = store.get(subresources.BUILD_CONFIG, namespace, name)
    except errors.NotFound:
        raise _forbidden() from None
    candidates = _trigger_secrets(store, namespace, config)
    if not any(hmac.compare_digest(c.encode(), secret.encode()) for c in candidates):
        raise _forbidden()
    request: dict[str, Any] = {"triggeredBy": [{"message": "Generic WebHook",
                                                "genericWebHook": {"secret": "<secret>"}}]}
    git = payload.get("git") if isinstance(payload, dict) else None
    if isinstance(git, dict):
        revision = {"type": "Git", "git": {k: git[k] for k in ("commit", "author", "committer", "message")
                                           if k in git}}
        request["revision"] = revision
        request["triggeredBy"][0]["genericWebHook"]["revision"] = revision
    if isinstance(git, dict) and git.get("ref") and not git.get("commit"):
        request["revision"]["git"]["commit"] = str(git["ref"])
    build = subresources.instantiate(store, namespace, name, request)
    return build


async def handle_webhook(state: ServerState, request: Request, namespace: str, name: str,
                         extra: tuple[str, ...]) -> Response:
    if len(extra) != 2 or extra[1] != "generic":
        raise errors.NotFound("webhook type not supported: use .../webhooks/SECRET/generic")
    body = await wire.read_body(request, limit=1024 * 1024)
    payload = None
    if body.strip():
        payload = wire.decode_json(body)
    build = await run_in_threadpool(_webhook, state.store, namespace, name, extra[0], payload)
    return wire.json_response(build, 202)
