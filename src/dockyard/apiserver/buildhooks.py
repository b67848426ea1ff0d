"""Build entry points beyond ``instantiate``: binary uploads, their download, and webhooks.

- ``POST .../buildconfigs/NAME/instantiatebinary`` (OpenShift's
  ``BuildConfig/instantiatebinary``): the body is the context archive
  (``application/octet-stream``, tar or tar.gz, at most :data:`MAX_BINARY`
  bytes). It is checked (:mod:`dockyard.api.archive`) before anything is
  stored; a bad archive gets 422 naming the member and no Build is created.
  Answers 201 with the Build, whose archive is kept with it.
- ``GET .../builds/NAME/source``: that archive, for the node agent.
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

import base64
import copy
import hmac
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from dockyard.api import archive, errors, gitref, kinds
from dockyard.apiserver import subresources, wire
from dockyard.apiserver.state import ServerState

MAX_BINARY = 512 * 1024 * 1024  # bytes; `dockyard start-build --from-*` refuses more before sending
SECRET = kinds.by_kind("v1", "Secret")
WEBHOOK_SECRET_KEY = "WebHookSecretKey"  # OpenShift's key in a secretReference'd Secret


async def handle_instantiatebinary(state: ServerState, request: Request, namespace: str, name: str) -> Response:
    body = await wire.read_body(request, limit=MAX_BINARY)
    if not body:
        raise errors.BadRequest("the request body must be the build context: a tar or tar.gz archive")
    config = await run_in_threadpool(state.store.get, subresources.BUILD_CONFIG, namespace, name)
    source_type = ((config.get("spec") or {}).get("source") or {}).get("type")
    if source_type != "Binary":
        raise errors.BadRequest(f'BuildConfig "{name}" has source.type {source_type!r}; uploading a context '
                                "needs source.type: Binary")
    try:
        await run_in_threadpool(archive.check, body)
    except archive.BadArchive as err:
        raise errors.Invalid(kind="BuildRequest", group=kinds.GROUP, name=name,
                             causes=[errors.Cause("body", f"build context archive refused: {err}")]) from err
    request_body = {"triggeredBy": [{"message": "Binary upload"}]}
    build = await run_in_threadpool(subresources.instantiate, state.store, namespace, name, request_body,
                                    binary=body)
    return wire.json_response(build, 201)


async def handle_get_source(state: ServerState, namespace: str, name: str) -> Response:
    await run_in_threadpool(state.store.get, subresources.BUILD, namespace, name)  # 404 if no such Build
    data = await run_in_threadpool(state.store.get_blob, subresources.BUILD, namespace, name)
    if data is None:
        raise errors.NotFound(f'build "{name}" has no uploaded source')
    return Response(data, media_type="application/octet-stream")


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
    return errors.BadRequest(f"invalid webhook payload: {field}: {message}",
                             details={"causes": [{"reason": "FieldValueInvalid", "message": message,
                                                  "field": field}]})


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
    request: dict[str, Any] = {"triggeredBy": [{"message": "Generic WebHook",
                                                "genericWebHook": {"secret": "<secret>"}}]}
    if revision is not None:
        request["revision"] = revision
        request["triggeredBy"][0]["genericWebHook"]["revision"] = copy.deepcopy(revision)
    return subresources.instantiate(store, namespace, name, request)


async def handle_webhook(state: ServerState, request: Request, namespace: str, name: str,
                         extra: tuple[str, ...]) -> Response:
    if len(extra) != 2 or extra[1] != "generic":
        raise errors.NotFound("webhook type not supported: use .../webhooks/SECRET/generic")
    body = await wire.read_body(request, limit=1024 * 1024)
    payload = None
    if body.strip():
        payload = wire.decode_json(body)
    build = await run_in_threadpool(_webhook, state.store, namespace, name, extra[0], payload)
    meta = build["metadata"]
    named = {"apiVersion": build["apiVersion"], "kind": build["kind"],
             "metadata": {"name": meta["name"], "namespace": meta["namespace"]}}
    return wire.json_response(named, 202)
