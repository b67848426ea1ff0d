"""The ASGI application: routes, authentication, and errors translated to ``Status``.

``create_app(store=..., tokens=..., ready=...)`` is the one entry point.
Every error leaves as a ``v1 Status`` body with its HTTP code (Kubernetes API
conventions, "Response Status Kind"); unexpected exceptions become a 500
``InternalError`` without a traceback in the response.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from dockyard.api import archive, errors, kinds, podsecurity
from dockyard.apiserver import (
    admission,
    auth,
    authz,
    cacher,
    crds,
    crud,
    customresources,
    discovery,
    handlers,
    inflight,
    metrics,
    openapi,
    registryhooks,
    subresources,
    wire,
    writes,
)
from dockyard.apiserver.state import ServerState
from dockyard.dashboard import routes as dashboard
from dockyard.storage import sqlite

log = logging.getLogger(__name__)

SYSTEM_NAMESPACES = ("default", "kube-system")


def ensure_namespaces(store: sqlite.Store, names: tuple[str, ...] = SYSTEM_NAMESPACES) -> None:
    """Create the given namespaces if they are missing (idempotent)."""
    for name in names:
        if not store.exists(crud.NAMESPACE, None, name):
            try:
                crud.create(
                    store, crud.NAMESPACE, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
                )
            except errors.AlreadyExists:
                pass


def install_crds(store: sqlite.Store, definitions: list[dict[str, object]] | None = None) -> list[str]:
    """Create dockyard's CRDs (:func:`.crds.all_crds`) in ``store``, or update those whose spec
    differs from the generated one (an upgrade); idempotent. Returns the names created or updated."""
    changed = []
    for crd in definitions if definitions is not None else crds.all_crds():
        name = str(crd["metadata"]["name"])  # type: ignore[index]
        info = customresources.CRD
        if not store.exists(info, None, name):
            crud.create(store, info, None, crd)
            changed.append(name)
            continue
        current = store.get(info, None, name)
        if current.get("spec") != crud.defaulted_crd(crd).get("spec"):
            body = dict(crd, metadata=dict(current["metadata"]))
            crud.update(store, info, None, name, body)
            changed.append(name)
    customresources.sync(store)
    return changed


def _state(request: Request) -> ServerState:
    state: ServerState = request.app.state.dockyard
    return state


async def _version(request: Request) -> Response:
    return wire.json_response(discovery.version())


async def _health(request: Request) -> Response:
    return PlainTextResponse("ok")


async def _ready(request: Request) -> Response:
    try:
        ok = bool(_state(request).ready())
    except Exception:  # a failing probe means not ready
        ok = False
    return PlainTextResponse("ok" if ok else "not ready", status_code=200 if ok else 500)


async def _metrics(request: Request) -> Response:
    authz.authorize(authz.Attributes(user=handlers.user(request), verb="get", path=authz.METRICS_PATH))
    body, content_type = _state(request).metrics.exposition()
    return Response(body, media_type=content_type)


async def _api(request: Request) -> Response:
    return wire.json_response(discovery.api_versions(request.url.netloc))


async def _apis(request: Request) -> Response:
    return wire.json_response(discovery.api_group_list())


async def _openapi_v3_index(request: Request) -> Response:
    return wire.json_response(openapi.v3_index())


async def _openapi_v3(request: Request) -> Response:
    parts = [p for p in request.path_params["rest"].split("/") if p]
    doc = None
    if parts[:1] == ["api"] and len(parts) == 2:
        doc = openapi.v3_document("", parts[1])
    elif parts[:1] == ["apis"] and len(parts) == 3:
        doc = openapi.v3_document(parts[1], parts[2])
    if doc is None:
        raise errors.NotFound("the server could not find the requested resource")
    return wire.json_response(doc)


async def _openapi_v2(request: Request) -> Response:
    accept = request.headers.get("accept", "")
    if "protobuf" in accept and "json" not in accept and "*/*" not in accept:
        return wire.status_response(_NotAcceptable("only application/json is served for /openapi/v2"))
    return wire.json_response(openapi.v2_document())


class _NotAcceptable(errors.StatusError):
    code, reason = 406, "NotAcceptable"


async def _bounded(request: Request, work: Awaitable[Response]) -> Response:
    """``work`` within :func:`dockyard.apiserver.wire.request_timeout` (504 after it).

    Watches and followed logs return their streaming response at once, so
    only their setup is bounded; their streams have their own limits.
    """
    try:
        async with asyncio.timeout(wire.request_timeout(request)):  # a timer, not a task per request
            return await work
    except TimeoutError:
        raise wire.timed_out() from None


async def _resources(request: Request) -> Response:
    return await _bounded(request, handlers.dispatch(_state(request), request))


async def _group(request: Request) -> Response:
    doc = discovery.api_group(request.path_params["group"])
    if doc is None:
        raise errors.NotFound("the server could not find the requested resource")
    return wire.json_response(doc)


async def _commit(request: Request) -> Response:
    authz.authorize(
        authz.Attributes(
            user=handlers.user(request), verb="create", group=kinds.GROUP, resource="pushes", path=request.url.path
        )
    )
    return await _bounded(
        request, subresources.handle_commit(_state(request), request, request.path_params["container_id"])
    )


def _can(user: str, verb: str, group: str, resource: str, subresource: str, namespace: str) -> bool:
    """Whether :func:`authz.allowed` allows the request (the dashboard leaves out buttons it would refuse)."""
    attrs = authz.Attributes(
        user=user, verb=verb, group=group, resource=resource, subresource=subresource, namespace=namespace
    )
    return authz.allowed(attrs)


async def _status_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.StatusError)
    return wire.status_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return wire.status_response(errors.NotFound("the server could not find the requested resource"))
    if exc.status_code == 405:
        return wire.status_response(
            errors.MethodNotAllowed("the server does not allow this method on the requested resource")
        )
    return wire.status_response(errors.BadRequest(str(exc.detail)))


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.exception("internal error serving %s %s", request.method, auth.redact_path(request.url.path))
    err = errors.StatusError("an internal error occurred while serving the request")
    return wire.status_response(err)


_ALL = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def create_app(
    *,
    store: sqlite.Store,
    tokens: Mapping[str, str],
    ready: Callable[[], bool] = lambda: True,
    long_running: inflight.Limits | None = None,
    pod_security: str = podsecurity.DEFAULT_LEVEL,
    max_context_bytes: int = archive.DEFAULT_MAX_BYTES,
    max_context_members: int = archive.DEFAULT_MAX_MEMBERS,
    registry_notifier_token: str | None = None,
    serve_dockyard_crds: bool = True,
    node_logs: Mapping[str, Path] | None = None,
) -> Starlette:
    """Build the API server's ASGI app.

    Args:
        store: the object store (the app subscribes to its commits).
        tokens: bearer token -> user name; every request but ``/healthz``,
            ``/livez``, ``/readyz``, ``/version`` and build webhooks needs one
            (401 otherwise). What each user may do is :mod:`.authz`'s
            (``admin``, ``view``, ``system:node:<name>``; 403 otherwise).
        ready: ``/readyz`` answers 200 ``ok`` while this returns true, else 500.
        long_running: bounds on concurrent watches and followed logs, per
            identity and in total (default :class:`.inflight.Limits`: 250 and 1000).
        pod_security: the Pod Security level namespaces without a
            ``pod-security.kubernetes.io/enforce`` label enforce
            (``privileged``, ``baseline`` or ``restricted``; see :mod:`.admission`).
        max_context_bytes: largest binary build context (``instantiatebinary``), uploaded
            and uncompressed, in bytes (``--max-context-bytes``).
        max_context_members: most members of a binary build context (``--max-context-members``).
        registry_notifier_token: the bearer token of the ``system:registry-notifier`` identity, which may
            only post registry notifications (:mod:`.registryhooks`); ``None``: only the admin may.
        serve_dockyard_crds: install (or upgrade) dockyard's CustomResourceDefinitions in ``store``
            at start (:func:`install_crds`), as a cluster would have them installed; ``False``: serve
            only what the store's CRDs define (a bare API server).
        node_logs: node name -> the Unix socket its agent serves container logs on (``dockyard agent
            --logs-socket``), for ``pods/NAME/log`` (:mod:`.podlogs`); a pod on another node gets 503.
    Returns:
        A Starlette application (no FastAPI: its routes take a ``Request``, and FastAPI's own middleware
        layers cost about a tenth of a cached get). Creates the ``default`` and
        ``kube-system`` namespaces in ``store`` if missing, and removes the
        store's orphaned context files (uploads a crash interrupted).
    Raises:
        ValueError: ``pod_security`` is not a level.
    """
    ensure_namespaces(store)
    store.remove_orphan_blob_files()
    customresources.reset()
    if serve_dockyard_crds:
        install_crds(store)
    else:
        customresources.sync(store)
    watch_cache = cacher.Cacher(store)
    watch_cache.start()
    state = ServerState(
        store=store,
        ready=ready,
        long_running=long_running or inflight.Limits(),
        pod_security=admission.PodSecurity(default_level=pod_security),
        context_limits=archive.Limits(max_bytes=max_context_bytes, max_members=max_context_members),
        cacher=watch_cache,
        writes=writes.GroupCommit(store),
        node_logs=dict(node_logs or {}),
    )
    app = Starlette()
    app.state.dockyard = state
    store.subscribe(state.on_commit)
    routes: list[tuple[str, Callable[..., object], list[str]]] = [
        # the resource paths first: routes are tried in order, and nearly every request is one of them
        ("/api/{rest:path}", _resources, _ALL),
        ("/apis/{group}", _group, ["GET"]),
        ("/apis/{rest:path}", _resources, _ALL),
        ("/version", _version, ["GET"]),
        ("/healthz", _health, ["GET"]),
        ("/livez", _health, ["GET"]),
        ("/readyz", _ready, ["GET"]),
        ("/metrics", _metrics, ["GET"]),
        ("/api", _api, ["GET"]),
        ("/apis", _apis, ["GET"]),
        ("/openapi/v2", _openapi_v2, ["GET"]),
        ("/openapi/v3", _openapi_v3_index, ["GET"]),
        ("/openapi/v3/{rest:path}", _openapi_v3, ["GET"]),
        ("/containers/{container_id}/commit", _commit, ["POST"]),
        (registryhooks.PATH, registryhooks.handle_notifications, ["POST"]),
        (registryhooks.GENERIC_PATH, registryhooks.handle_generic, ["POST"]),
    ]
    for path, endpoint, methods in routes:
        app.add_route(path, endpoint, methods=methods)  # type: ignore[arg-type]
    dashboard.mount(app, can=_can)
    app.add_exception_handler(errors.StatusError, _status_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _internal_error)
    users = dict(tokens)
    if registry_notifier_token:
        users[registry_notifier_token] = registryhooks.NOTIFIER
    app.add_middleware(auth.BearerAuth, tokens=users, public=dashboard.is_public)
    app.add_middleware(metrics.MetricsMiddleware, metrics=state.metrics)  # outermost: counts 401s too
    return app
