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
  config; answers 202 naming the Build (``apiVersion``, ``kind``,
  ``metadata.name``/``namespace`` only: the caller holds a secret, not a
  token, and learns nothing else). An optional JSON payload
  ``{"git": {"uri", "ref", "commit", "author": {"name", "email"}, "message"}}``
  sets the revision to build; a ``ref`` or ``commit`` that is not a git ref
  name or hex commit id gets 400 naming it (:func:`payload_revision`). A
  wrong secret, an unknown config and a config without a Generic trigger all
  get the same 403, so the answer reveals nothing about which part was wrong.
  The secret is never logged: paths are redacted
  (:func:`dockyard.apiserver.auth.redact_path`).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hmac
import os
from collections.abc import AsyncIterator
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from dockyard.api import errors, gitref, kinds
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
    except (TimeoutError, OSError, RuntimeError):
        pass


async def handle_instantiatebinary(state: ServerState, request: Request, namespace: str, name: str) -> Response:
    config = await run_in_threadpool(state.store.get, subresources.BUILD_CONFIG, namespace, name)
    source_type = ((config.get("spec") or {}).get("source") or {}).get("type")
    if source_type != "Binary":
        raise errors.BadRequest(
            f'BuildConfig "{name}" has source.type {source_type!r}; uploading a context needs source.type: Binary'
        )
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
        build = await run_in_threadpool(
            subresources.instantiate, state.store, namespace, name, request_body, binary=path
        )
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

    return StreamingResponse(chunks(), media_type="application/octet-stream", headers={"Content-Length": str(size)})


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


def _bad_payload(field: str, message: str) -> errors.BadRequest:
    return errors.BadRequest(
        f"invalid webhook payload: {field}: {message}",
        details={"causes": [{"reason": "FieldValueInvalid", "message": message, "field": field}]},
    )


def _text(git: dict[str, Any], key: str, field: str) -> str | None:
    value = git.get(key)
    if value is not None and not isinstance(value, str):
        raise _bad_payload(field, f"must be a string, not {type(value).__name__}")
    return value


def _user(git: dict[str, Any], key: str) -> dict[str, str] | None:
    value = git.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _bad_payload(f"git.{key}", "must be an object {name, email}")
    user = {k: _text(value, k, f"git.{key}.{k}") for k in ("name", "email")}
    return {k: v for k, v in user.items() if v is not None}


def payload_revision(payload: Any) -> dict[str, Any] | None:
    """The ``SourceRevision`` a generic webhook payload asks for, or ``None`` (build the config's ref).

    ``payload`` is the decoded body, OpenShift's ``GenericWebHookEvent``:
    ``{"git": {"uri", "ref", "commit", "author": {"name", "email"},
    "committer": {...}, "message"}}`` (``uri`` is ignored). ``commit``, or
    ``ref`` when there is no commit, becomes the revision's commit; both must
    be a git ref name or hex commit id (:func:`dockyard.api.gitref.check_ref`).

    Returns:
        ``{"type": "Git", "git": {"commit", "author", "committer", "message"}}`` (unset keys left out).
    Raises:
        errors.BadRequest: naming the bad field (``git.commit``, ``git.ref``, ``git.author.name``, ...)
            in the message and in ``details.causes``.
    """
    if payload is None:
        return None
    if not isinstance(payload, dict):
        raise _bad_payload("body", "must be a JSON object {git: {...}}")
    git = payload.get("git")
    if git is None:
        return None
    if not isinstance(git, dict):
        raise _bad_payload("git", "must be an object {uri, ref, commit, author, committer, message}")
    _text(git, "uri", "git.uri")
    found: dict[str, Any] = {}
    for key in ("ref", "commit"):
        value = _text(git, key, f"git.{key}")
        if value is not None:
            problem = gitref.ref_problem(value)
            if problem is not None:
                raise _bad_payload(f"git.{key}", f"{value!r} is not a git ref or commit: {problem}")
            found[key] = value
    revision: dict[str, Any] = {}
    if found:
        revision["commit"] = found.get("commit") or found["ref"]
    for key in ("author", "committer"):
        user = _user(git, key)
        if user is not None:
            revision[key] = user
    message = _text(git, "message", "git.message")
    if message is not None:
        revision["message"] = message
    return {"type": "Git", "git": revision}


def _webhook(store: Any, namespace: str, name: str, secret: str, payload: Any) -> dict[str, Any]:
    try:
        config = store.get(subresources.BUILD_CONFIG, namespace, name)
    except errors.NotFound:
        raise _forbidden() from None
    candidates = _trigger_secrets(store, namespace, config)
    if not any(hmac.compare_digest(c.encode(), secret.encode()) for c in candidates):
        raise _forbidden()
    revision = payload_revision(payload)  # after the secret: a stranger learns nothing but 403
    request: dict[str, Any] = {
        "triggeredBy": [{"message": "Generic WebHook", "genericWebHook": {"secret": "<secret>"}}]
    }
    if revision is not None:
        request["revision"] = revision
        request["triggeredBy"][0]["genericWebHook"]["revision"] = copy.deepcopy(revision)
    return subresources.instantiate(store, namespace, name, request)


async def handle_webhook(
    state: ServerState, request: Request, namespace: str, name: str, extra: tuple[str, ...]
) -> Response:
    if len(extra) != 2 or extra[1] != "generic":
        raise errors.NotFound("webhook type not supported: use .../webhooks/SECRET/generic")
    body = await wire.read_body(request, limit=1024 * 1024)
    payload = None
    if body.strip():
        payload = wire.decode_json(body)
    build = await run_in_threadpool(_webhook, state.store, namespace, name, extra[0], payload)
    meta = build["metadata"]
    named = {
        "apiVersion": build["apiVersion"],
        "kind": build["kind"],
        "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
    }
    return wire.json_response(named, 202)
