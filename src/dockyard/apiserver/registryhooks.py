"""Registry push notifications: a push makes the Images tracking the repository reconcile at once.

Two endpoints, both non-resource paths (like ``/version``), both answering ``202`` with a ``Status``:

- ``POST /registry/notifications`` takes the CNCF distribution notification envelope
  (https://distribution.github.io/distribution/about/notifications/, media type
  ``application/vnd.docker.distribution.events.v1+json``: ``{"events": [{"action": "push", "target":
  {"repository", "tag", "digest", ...}, "request": {"host", ...}}, ...]}``), as ``dockyard up`` configures its
  own registry to send (``notifications.endpoints``). Authenticated by a bearer token of the
  ``system:registry-notifier`` identity (``DATA_DIR/tokens.json`` key ``registry``; the ``BearerAuth``
  middleware compares it in constant time; a missing or unknown token gets 401 before anything is read).
  That identity may do nothing else; the admin may also post here. Only ``push`` events with a tag count;
  the Image's registry must be the one the push went to (``request.host``; loopback names of one port are
  the same registry, :func:`dockyard.api.imagepolicy.same_registry`).
- ``POST /registry/notifications/namespaces/NAMESPACE/images/NAME`` is the generic form for other
  registries and CI: body ``{"repository", "tag", "digest"}`` (``repository`` as ``host/path`` or just
  ``path``; ``tag`` and ``digest`` optional), ``Authorization: Bearer TOKEN`` where TOKEN is the ``token`` key
  of the Secret the Image names in ``spec.notificationSecretRef`` (Flux's Receiver ``secretRef`` idea). No
  API token is needed. A missing header gets 401; an unknown Image, an Image without
  ``notificationSecretRef``, a missing Secret and a wrong token all get the same 403, so the answer
  reveals nothing about which Images exist (as the build webhooks do).

What a notification does: it sets the ``dockyard.dev/reconcile-requested-at`` annotation (RFC 3339 with
microseconds, Flux's ``reconcile.fluxcd.io/requestedAt``) on each matching Image, through the store, so the
Image controller's watch reconciles it; the controller then asks the registry itself. A notification never
writes a digest: a forged one can only cause a scan. A notification for a repository no Image tracks is
accepted (202) and does nothing. Bodies over :data:`MAX_BODY` get 413, malformed ones 400 naming the field.
Notifications that are lost (the API server down, the registry giving up after its retries) are made up by
each Image's ``spec.interval`` poll.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass
from typing import Any

import pydantic
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from dockyard.api import errors, imagepolicy, kinds, models, reference, timefmt
from dockyard.api import labels as well_known
from dockyard.apiserver import authz, crud, wire
from dockyard.apiserver.state import ServerState

PATH = "/registry/notifications"
"""The distribution envelope endpoint."""
GENERIC_PATH = "/registry/notifications/namespaces/{namespace}/images/{name}"
"""The generic, per-Image endpoint."""
ENVELOPE_MEDIA_TYPE = "application/vnd.docker.distribution.events.v1+json"
"""The media type of distribution's notification envelope."""
NOTIFIER = "system:registry-notifier"
"""The identity of the registry's notification token; it may only post to :data:`PATH`."""
TOKEN_KEY = "token"
"""The key of the token in the Secret named by an Image's ``spec.notificationSecretRef``."""
MAX_BODY = 4 * 1024 * 1024
"""Largest notification body read (bytes); more gets 413."""
MAX_EVENTS = 10_000
"""Most events in one envelope; more gets 400."""

IMAGE = kinds.by_kind(kinds.API_VERSION, "Image")
SECRET = kinds.by_kind("v1", "Secret")
MERGE_PATCH = "application/merge-patch+json"


@dataclass(frozen=True)
class Pushed:
    """One pushed tag: ``registry`` (``host[:port]``, may be empty when unknown), ``repository`` (the path),
    ``tag``, ``digest`` (may be None)."""

    registry: str
    repository: str
    tag: str | None
    digest: str | None


def _bad(field: str, message: str) -> errors.BadRequest:
    return errors.BadRequest(
        f"invalid notification: {field}: {message}",
        details={"causes": [{"reason": "FieldValueInvalid", "message": message, "field": field}]},
    )


def _text(obj: dict[str, Any], key: str, field: str, *, required: bool = False) -> str | None:
    value = obj.get(key)
    if value is None or value == "":
        if required:
            raise _bad(field, "required")
        return None
    if not isinstance(value, str):
        raise _bad(field, f"must be a string, not {type(value).__name__}")
    return value


def _checked(field: str, repository: str | None, tag: str | None, digest: str | None) -> None:
    if repository is not None and (len(repository) > 255 or not reference.is_repository_path(repository)):
        raise _bad(f"{field}.repository", f"{repository[:64]!r} is not a repository path")
    if tag is not None and not reference.is_tag(tag):
        raise _bad(f"{field}.tag", f"{tag[:64]!r} is not a tag")
    if digest is not None and not reference.is_digest(digest):
        raise _bad(f"{field}.digest", f"{digest[:80]!r} is not a digest (algorithm:hex)")


def envelope_pushes(envelope: Any) -> list[Pushed]:
    """The tagged pushes in a distribution notification envelope (pure).

    Events of other actions (``pull``, ``delete``, ``mount``) and pushes without a tag (blobs, manifests
    pushed by digest) are skipped.

    Raises:
        errors.BadRequest: not ``{"events": [...]}``, more than :data:`MAX_EVENTS` events, or a push event
            whose ``target.repository``/``tag``/``digest`` or ``request.host`` is of the wrong type or form;
            the message and ``details.causes`` name the field (``events[2].target.tag``).
    """
    if not isinstance(envelope, dict) or not isinstance(envelope.get("events"), list):
        raise _bad("events", "the body must be a distribution envelope {events: [...]}")
    events = envelope["events"]
    if len(events) > MAX_EVENTS:
        raise _bad("events", f"more than {MAX_EVENTS} events")
    found = []
    for i, event in enumerate(events):
        field = f"events[{i}]"
        if not isinstance(event, dict):
            raise _bad(field, "must be an object")
        if _text(event, "action", f"{field}.action") != "push":
            continue
        target, request = event.get("target"), event.get("request") or {}
        if not isinstance(target, dict):
            raise _bad(f"{field}.target", "must be an object")
        if not isinstance(request, dict):
            raise _bad(f"{field}.request", "must be an object")
        repository = _text(target, "repository", f"{field}.target.repository", required=True)
        tag = _text(target, "tag", f"{field}.target.tag")
        digest = _text(target, "digest", f"{field}.target.digest")
        host = _text(request, "host", f"{field}.request.host") or ""
        _checked(f"{field}.target", repository, tag, digest)
        if tag is not None and repository is not None:
            found.append(Pushed(host, repository, tag, digest))
    return found


def generic_push(payload: Any) -> Pushed:
    """The push a generic notification names: ``{"repository", "tag", "digest"}`` (pure).

    ``repository`` may carry its registry (``host[:port]/path``) or not (``path``).

    Raises:
        errors.BadRequest: naming the bad field (``repository``, ``tag``, ``digest``).
    """
    if not isinstance(payload, dict):
        raise _bad("body", 'must be a JSON object {"repository", "tag", "digest"}')
    repository = _text(payload, "repository", "repository", required=True)
    tag = _text(payload, "tag", "tag")
    digest = _text(payload, "digest", "digest")
    assert repository is not None
    registry, path = "", repository
    first, _, rest = repository.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, rest
    if tag is not None and not reference.is_tag(tag):
        raise _bad("tag", f"{tag[:64]!r} is not a tag")
    if digest is not None and not reference.is_digest(digest):
        raise _bad("digest", f"{digest[:80]!r} is not a digest (algorithm:hex)")
    if len(path) > 255 or not reference.is_repository_path(path):
        raise _bad("repository", f"{repository[:64]!r} is not a repository")
    return Pushed(registry, path, tag, digest)


def _spec(image: dict[str, Any]) -> models.ImageSpec | None:
    try:
        return models.ImageSpec.model_validate(image.get("spec") or {})
    except pydantic.ValidationError:
        return None  # stored by an older version: its own poll still runs


def matches(spec: models.ImageSpec, pushed: Pushed) -> bool:
    """True if ``pushed`` concerns an Image of ``spec`` (:func:`dockyard.api.imagepolicy.tracks`); a push whose
    registry is unknown (generic form without host) matches on the repository path alone."""
    try:
        mine = reference.parse(spec.repository)
    except reference.InvalidReference:
        return False
    target = reference.Reference(pushed.registry or mine.registry, pushed.repository, pushed.tag or None)
    return imagepolicy.tracks(
        repository=spec.repository, tag=spec.tag, has_policy=spec.policy is not None, pushed=target
    )


def _now() -> str:
    return timefmt.now_micro()


def _request_reconcile(store: Any, namespace: str, name: str, stamp: str) -> bool:
    try:
        crud.patch_object(
            store,
            IMAGE,
            namespace,
            name,
            MERGE_PATCH,
            {"metadata": {"annotations": {well_known.RECONCILE_REQUESTED_AT: stamp}}},
        )
    except errors.NotFound:
        return False
    return True


def request_reconciles(store: Any, pushes: list[Pushed]) -> int:
    """Annotate every Image that one of ``pushes`` concerns (each once); returns how many."""
    if not pushes:
        return 0
    stamp = _now()
    done = 0
    for image in store.list(IMAGE).items:
        spec = _spec(image)
        if spec is None or not any(matches(spec, p) for p in pushes):
            continue
        meta = image["metadata"]
        done += _request_reconcile(store, meta["namespace"], meta["name"], stamp)
    return done


def _accepted(message: str) -> Response:
    return wire.json_response(
        {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "message": message, "code": 202},
        202,
    )


async def handle_notifications(request: Request) -> Response:
    """``POST /registry/notifications`` (see the module doc)."""
    user = wire.request_user(request)
    if user not in (NOTIFIER, authz.ADMIN):
        raise errors.Forbidden(f'forbidden: User "{user}" cannot create path "{PATH}"')
    body = await wire.read_body(request, limit=MAX_BODY)
    pushes = envelope_pushes(wire.decode_json(body))
    state: ServerState = request.app.state.dockyard
    await run_in_threadpool(request_reconciles, state.store, pushes)
    return _accepted(f"{len(pushes)} push event(s) accepted")


def _forbidden() -> errors.Forbidden:
    return errors.Forbidden("the token is not valid for this Image")


def _authorized_image(store: Any, namespace: str, name: str, token: str) -> dict[str, Any]:
    """The Image if ``token`` is its notification token; the same 403 for every other case."""
    try:
        image = store.get(IMAGE, namespace, name)
    except errors.NotFound:
        raise _forbidden() from None
    spec = _spec(image)
    if spec is None or spec.notificationSecretRef is None:
        raise _forbidden()
    try:
        secret = store.get(SECRET, namespace, spec.notificationSecretRef.name)
    except errors.NotFound:
        raise _forbidden() from None
    raw = (secret.get("data") or {}).get(TOKEN_KEY)
    try:
        expected = base64.b64decode(raw, validate=True) if isinstance(raw, str) else b""
    except (binascii.Error, ValueError):
        expected = b""
    if not expected or not hmac.compare_digest(expected, token.encode()):
        raise _forbidden()
    return image


async def handle_generic(request: Request) -> Response:
    """``POST /registry/notifications/namespaces/NAMESPACE/images/NAME`` (see the module doc)."""
    scheme, _, token = (request.headers.get("authorization") or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise errors.Unauthorized("Unauthorized")
    namespace, name = request.path_params["namespace"], request.path_params["name"]
    state: ServerState = request.app.state.dockyard
    image = await run_in_threadpool(_authorized_image, state.store, namespace, name, token.strip())
    body = await wire.read_body(request, limit=MAX_BODY)
    pushed = generic_push(wire.decode_json(body))  # after the token: a stranger learns nothing but 401/403
    spec = _spec(image)
    if spec is None or not matches(spec, pushed):
        return _accepted("the push does not concern this Image")
    await run_in_threadpool(_request_reconcile, state.store, namespace, name, _now())
    return _accepted("reconcile requested")
