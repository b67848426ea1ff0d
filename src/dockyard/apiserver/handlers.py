"""HTTP handlers for resource paths: verbs mapped onto :mod:`dockyard.apiserver.crud`.

Verb mapping from the Kubernetes API concepts ("API verbs"): GET collection
= list (or watch with ``watch=true``), POST collection = create, DELETE
collection = deletecollection, GET/PUT/PATCH/DELETE object = get/update/
patch/delete; ``/status`` takes GET/PUT/PATCH.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from dockyard.api import errors, kinds, validation
from dockyard.apiserver import (
    admission,
    auth,
    authz,
    buildhooks,
    crud,
    customresources,
    discovery,
    httpproto,
    inflight,
    listopts,
    nodeauthz,
    paths,
    protobuf,
    redaction,
    subresources,
    table,
    watch,
    wire,
)
from dockyard.apiserver.selectors import Selector
from dockyard.apiserver.state import ServerState

Obj = dict[str, Any]

PROTOBUF = "application/vnd.kubernetes.protobuf"


def _not_allowed(method: str) -> errors.MethodNotAllowed:
    return errors.MethodNotAllowed(f"the server does not allow this method on the requested resource ({method})")


def _dry_run(request: Request) -> bool:
    values = request.query_params.getlist("dryRun")
    for v in values:
        if v != "All":
            raise errors.BadRequest(f'Invalid value "{v}": valid values are "All"')
    return bool(values)


def _fields(request: Request) -> crud.FieldValidation:
    mode = request.query_params.get("fieldValidation") or None
    if mode is not None and mode not in validation.FIELD_VALIDATION:
        raise errors.BadRequest(
            f'fieldValidation: Unsupported value: "{mode}": supported values: "Ignore", "Strict", "Warn"'
        )
    return crud.FieldValidation(mode=mode)


MAX_WARNINGS = 10
"""Warning headers sent at most per response; each is cut to 256 characters, ASCII only."""


def warning_header(text: str) -> str:
    """``299 - "text"`` (RFC 7234 section 5.5) with quotes escaped, control and non-ASCII characters escaped."""
    text = re.sub(r"[\x00-\x1f\x7f]", "?", text[:256]).encode("ascii", "backslashreplace").decode()
    return '299 - "' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _written(obj: Obj, fields: crud.FieldValidation, code: int = 200) -> Response:
    """The written object, with a ``Warning`` header per field-validation warning (RFC 7234)."""
    response = wire.json_response(obj, code)
    for text in fields.warnings[:MAX_WARNINGS]:
        response.headers.append("Warning", warning_header(text))
    return response


def _selector(request: Request, info: kinds.ResourceInfo) -> Selector:
    return Selector.parse(request.query_params.get("labelSelector"), request.query_params.get("fieldSelector"), info)


async def _json_body(request: Request) -> Any:
    body = await wire.read_body(request)
    if request.headers.get("content-type", "").split(";")[0].strip() == PROTOBUF:
        try:
            return protobuf.decode(body)
        except protobuf.Unsupported as e:
            raise errors.UnsupportedMediaType(f"the protobuf request body cannot be decoded: {e}") from None
    return wire.decode_json(body)


def _grace(raw: Any) -> int | None:
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise errors.BadRequest(f"invalid value for gracePeriodSeconds: {str(raw)[:64]!r}") from None


async def _delete_options(request: Request) -> dict[str, Any]:
    body = await wire.read_body(request)
    if not body.strip():
        return {}
    options = wire.decode_json(body)
    if not isinstance(options, dict):
        raise errors.BadRequest("DeleteOptions must be a JSON object")
    return options


user = wire.request_user


def _attributes(request: Request, target: paths.Target) -> authz.Attributes:
    assert target.info is not None
    watching = target.name is None and wire.query_bool(request, "watch")
    return authz.Attributes(
        user=user(request),
        verb=authz.verb_for(request.method, named=target.name is not None, watch=watching),
        group=target.info.group,
        resource=target.info.plural,
        subresource=target.subresource or "",
        namespace=target.namespace or "",
        name=target.name or "",
        path=auth.redact_path(request.url.path),
    )


async def dispatch(state: ServerState, request: Request) -> Response:
    """Serve one request under ``/api`` or ``/apis``, after authorization (:mod:`.authz`).

    Raises:
        errors.StatusError: any API error (the app turns it into a Status response).
    """
    target = paths.parse(request.url.path)
    if target.info is None:
        if request.method != "GET":
            raise _not_allowed(request.method)
        doc = discovery.api_resource_list(target.group, target.version)
        if doc is None:
            raise errors.NotFound("the server could not find the requested resource")
        return wire.json_response(doc)
    info, ns, name, sub = target.info, target.namespace, target.name, target.subresource
    method = request.method
    if sub == "webhooks" and method == "POST":  # authenticated by the secret in its URL
        return await buildhooks.handle_webhook(state, request, ns or "", name or "", target.extra)
    attrs = _attributes(request, target)
    authz.authorize(attrs)
    if attrs.verb in authz.READ_VERBS or sub in ("log", "source"):  # writes with a body: in _admit
        await _admit(state, attrs)
    if info is customresources.CRD and attrs.verb not in authz.READ_VERBS:
        return await _crd_write(state, request, attrs, name, sub, method)
    if name is None:
        return await _collection(state, request, attrs, info, ns, method)
    if sub is None:
        return await _object(state, request, attrs, info, ns, name, method)
    if sub == "status" and method in ("GET", "PUT", "PATCH"):
        return await _object(state, request, attrs, info, ns, name, method, subresource="status")
    if sub == "details" and method in ("PUT", "PATCH"):
        return await _object(state, request, attrs, info, ns, name, method, subresource="details")
    if sub == "finalize" and method == "PUT":
        return await _object(state, request, attrs, info, ns, name, method, subresource="finalize")
    if sub == "log" and method == "GET":
        return await subresources.handle_get_log(state, request, info, ns or "", name)
    if sub == "log" and method == "POST":
        return await subresources.handle_append_log(state, request, info, ns or "", name)
    if sub == "instantiate" and method == "POST":
        return await subresources.handle_instantiate(state, request, ns or "", name)
    if sub == "instantiatebinary" and method == "POST":
        return await buildhooks.handle_instantiatebinary(state, request, ns or "", name)
    if sub == "source" and method == "GET":
        return await buildhooks.handle_get_source(state, ns or "", name)
    raise _not_allowed(method)


async def _crd_write(
    state: ServerState, request: Request, attrs: authz.Attributes, name: str | None, sub: str | None, method: str
) -> Response:
    """A write to CustomResourceDefinitions, then the served kinds made to match (:func:`.customresources.sync`).

    Deleting a CRD first deletes every object of its kind (the apiserver's
    ``customresourcecleanup.apiextensions.k8s.io`` finalizer does so before the CRD goes).
    """
    info = customresources.CRD
    try:
        if method == "DELETE" and not _dry_run(request):
            names = (
                [name]
                if name is not None
                else [
                    o["metadata"]["name"]
                    for o in (
                        await run_in_threadpool(
                            crud.list_objects, state.store, info, None, selector=_selector(request, info)
                        )
                    )["items"]
                ]
            )
            for crd_name in names:
                await run_in_threadpool(_delete_custom_objects, state, crd_name)
        if name is None:
            return await _collection(state, request, attrs, info, None, method)
        return await _object(state, request, attrs, info, None, name, method, subresource=sub)
    finally:
        await run_in_threadpool(customresources.sync, state.store)


def _delete_custom_objects(state: ServerState, crd_name: str) -> None:
    """Delete every object of the kind ``crd_name`` serves (objects with finalizers stay until they clear)."""
    served = next((s for s in customresources.all_served() if s.crd == crd_name), None)
    if served is None:
        return
    everything = Selector.parse(None, None, served.info)
    crud.delete_collection(state.store, served.info, None, selector=everything)


async def _collection(
    state: ServerState, request: Request, attrs: authz.Attributes, info: kinds.ResourceInfo, ns: str | None, method: str
) -> Response:
    store = state.store
    if method == "GET":
        selector = _selector(request, info)
        opts = listopts.parse(dict(request.query_params))
        if opts.watch:
            return _watch(state, request, info, ns, selector, opts)
        if opts.revision is not None:
            await _catch_up(state, opts.revision)
        cached = _cached_list(state, request, info, ns, selector, opts)
        if cached is not None:
            return cached
        listed = await run_in_threadpool(
            crud.list_objects,
            store,
            info,
            ns,
            selector=selector,
            limit=opts.limit,
            continue_token=opts.continue_token,
            revision=opts.revision,
            exact=opts.match == listopts.EXACT,
        )
        hide = redaction.for_reader(user(request), info)
        if hide is not None:
            listed = redaction.list_items(hide, listed)
        if table.wants_table(request):
            return wire.json_response(table.list_table(info, listed, request))
        return wire.json_response(listed)
    if method == "POST":
        if info.namespaced and ns is None:
            raise _not_allowed(method)
        body = await _json_body(request)
        await _admit(state, attrs, body=body)
        fields = _fields(request)
        created = await _write(
            state,
            crud.create,
            store,
            info,
            ns,
            body,
            dry_run=_dry_run(request),
            fields=fields,
            admit=admission.for_write(state.pod_security, info, user=user(request)),
        )
        return _written(created, fields, 201)
    if method == "DELETE":
        options = await _delete_options(request)
        preconditions: Obj = options["preconditions"] if isinstance(options.get("preconditions"), dict) else {}
        propagation = request.query_params.get("propagationPolicy") or options.get("propagationPolicy")
        if options.get("orphanDependents") is True and not propagation:
            propagation = "Orphan"
        grace = request.query_params.get("gracePeriodSeconds") or options.get("gracePeriodSeconds")
        deleted = await run_in_threadpool(
            crud.delete_collection,
            store,
            info,
            ns,
            selector=_selector(request, info),
            propagation=propagation,
            precondition_uid=preconditions.get("uid"),
            precondition_rv=preconditions.get("resourceVersion"),
            grace_period=_grace(grace),
            dry_run=_dry_run(request) or options.get("dryRun") == ["All"],
        )
        return wire.json_response(deleted)
    raise _not_allowed(method)


def _from_cache(state: ServerState, raw_revision: str | None, revision: int | None) -> bool:
    """Whether a read may be served from the watch cache ("Resource versions" in the API concepts).

    ``resourceVersion="0"``: any state, so yes. ``N`` (``NotOlderThan``): once the cache is at
    least that fresh. Unset (a consistent read): only if the cache has applied the store's
    latest commit (kube-apiserver's ``ConsistentListFromCache``).
    """
    cache = state.cacher
    if cache is None:
        return False
    if raw_revision == "0":
        return True
    if revision is not None:
        return cache.revision >= revision
    return cache.is_current()


def _cached_list(
    state: ServerState,
    request: Request,
    info: kinds.ResourceInfo,
    ns: str | None,
    selector: Selector,
    opts: listopts.ListOptions,
) -> Response | None:
    """The list served from the watch cache, or ``None`` when the store must answer: pages
    (``limit``/``continue``), ``Exact`` matches, or a cache not fresh enough (:func:`_from_cache`)."""
    if opts.limit is not None or opts.continue_token or opts.match == listopts.EXACT:
        return None
    if not _from_cache(state, request.query_params.get("resourceVersion"), opts.revision):
        return None
    assert state.cacher is not None
    entries, revision = state.cacher.list(info, ns, selector)
    hide = redaction.for_reader(user(request), info)
    if hide is None and not table.wants_table(request):
        return Response(state.cacher.list_body(info, entries, revision), media_type="application/json")
    listed: Obj = {
        "kind": info.list_kind,
        "apiVersion": info.api_version,
        "metadata": {"resourceVersion": str(revision)},
        "items": [e.obj for e in entries],
    }
    if hide is not None:
        listed = redaction.list_items(hide, listed)
    if table.wants_table(request):
        return wire.json_response(table.list_table(info, listed, request))
    return wire.json_response(listed)


CATCH_UP_SECONDS = 3.0
"""How long a list at a future ``resourceVersion`` waits for the store (the watch cache's 3 s)."""


async def _catch_up(state: ServerState, revision: int) -> None:
    """Wait up to :data:`CATCH_UP_SECONDS` for the store to reach ``revision`` (then the list answers 504)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CATCH_UP_SECONDS
    while state.store.revision() < revision and loop.time() < deadline and not state.stopping.is_set():
        seen = state.objects.seq
        if state.store.revision() >= revision:
            return
        await state.objects.wait(seen, min(0.5, deadline - loop.time()))


def _watch(
    state: ServerState,
    request: Request,
    info: kinds.ResourceInfo,
    ns: str | None,
    selector: Selector,
    opts: listopts.ListOptions,
) -> Response:
    timeout = opts.timeout
    render = table.watch_renderer(info, request) if table.wants_table(request) else watch.encode_event
    hide = redaction.for_reader(user(request), info)
    if hide is not None:
        render = _hiding(render, hide)
    counter = state.metrics.watch_events.labels(info.group, info.version, info.plural)
    writer = request.scope.get("extensions", {}).get(httpproto.CHUNK_WRITER)
    events = watch.stream(
        store=state.store,
        notifier=state.objects,
        info=info,
        namespace=ns,
        selector=selector,
        start=opts.revision,
        initial=opts.initial_events,
        initial_end_bookmark=bool(opts.send_initial_events),
        timeout=float(timeout) if timeout and timeout > 0 else watch.DEFAULT_TIMEOUT,
        bookmarks=opts.bookmarks,
        render=render,
        stopping=state.stopping.is_set,
        cacher=state.cacher,
        sink=_CountingSink(writer, counter) if writer is not None else None,
    )
    release = state.long_running.acquire(user(request))
    return inflight.HeldStream(
        _counted(events, counter),
        media_type="application/json",
        release=release,
        headers={"Cache-Control": "no-cache, private", "X-Content-Type-Options": "nosniff"},
    )


class _CountingSink:
    """The response's :class:`.httpproto.ChunkWriter` as the watch cache's :class:`.cacher.Sink`,
    counting what it writes in ``apiserver_watch_events_total`` (as :func:`_counted` counts what is yielded)."""

    __slots__ = ("_counter", "_writer")

    def __init__(self, writer: httpproto.ChunkWriter, counter: Any) -> None:
        self._writer, self._counter = writer, counter

    def ready(self) -> bool:
        return self._writer.ready()

    def write(self, data: bytes, events: int) -> int:
        unsent = self._writer.write(data)
        self._counter.inc(events)
        return unsent


async def _counted(chunks: AsyncIterator[bytes], counter: Any) -> AsyncIterator[bytes]:
    """Pass a watch's chunks through, counting its events (one JSON line each) in ``apiserver_watch_events_total``."""
    async for chunk in chunks:
        counter.inc(chunk.count(b"\n"))
        yield chunk


def _hiding(render: Callable[[str, Obj], bytes], hide: Callable[[Obj], Obj]) -> Callable[[str, Obj], bytes]:
    """A watch event renderer that applies ``hide`` (:mod:`.redaction`) to each object first."""

    def rendered(type_: str, obj: Obj) -> bytes:
        return render(type_, hide(obj) if type_ in ("ADDED", "MODIFIED", "DELETED") else obj)

    return rendered


async def _write(state: ServerState, write: Callable[..., Obj], /, *args: Any, **kwargs: Any) -> Obj:
    """A create, update or patch: on the event loop with group commit (:mod:`.writes`), else on a worker thread."""
    if state.writes is not None:
        return await state.writes.run(write, *args, **kwargs)
    return await run_in_threadpool(write, *args, **kwargs)


async def _admit(state: ServerState, attrs: authz.Attributes, *, body: Any = None, content_type: str = "") -> None:
    """A node identity's request checked against the objects it touches (:func:`.nodeauthz.check`)."""
    if authz.node_name(attrs.user) is not None:
        await run_in_threadpool(nodeauthz.check, state.store, attrs, body=body, content_type=content_type)


async def _object(
    state: ServerState,
    request: Request,
    attrs: authz.Attributes,
    info: kinds.ResourceInfo,
    ns: str | None,
    name: str,
    method: str,
    subresource: str | None = None,
) -> Response:
    store = state.store
    if method == "GET":
        hide = redaction.for_reader(attrs.user, info)
        raw_rv = request.query_params.get("resourceVersion")
        try:
            cached = state.cacher is not None and _from_cache(state, raw_rv, listopts.parse_revision(raw_rv))
        except errors.BadRequest:  # a get reads the current object whatever it asks (as before)
            cached = False
        if cached:
            assert state.cacher is not None
            entry = state.cacher.get(info, ns, name)
            if hide is None and not (subresource is None and table.wants_table(request)):
                return Response(entry.raw, media_type="application/json")
            obj = entry.obj
        else:
            obj = await run_in_threadpool(store.get, info, ns, name)
        if hide is not None:
            obj = hide(obj)
        if subresource is None and table.wants_table(request):
            return wire.json_response(table.object_table(info, obj, request))
        return wire.json_response(obj)
    if method == "PUT":
        body = await _json_body(request)
        await _admit(state, attrs, body=body)
        fields = _fields(request)
        updated = await _write(
            state,
            crud.update,
            store,
            info,
            ns,
            name,
            body,
            subresource=subresource,
            dry_run=_dry_run(request),
            fields=fields,
            admit=admission.for_write(state.pod_security, info, user=attrs.user, subresource=subresource),
        )
        return _written(updated, fields)
    if method == "PATCH":
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        crud.check_patch_type(info, content_type)
        body = await _json_body(request)
        await _admit(state, attrs, body=body, content_type=content_type)
        fields = _fields(request)
        patched = await _write(
            state,
            crud.patch_object,
            store,
            info,
            ns,
            name,
            content_type,
            body,
            subresource=subresource,
            dry_run=_dry_run(request),
            fields=fields,
            admit=admission.for_write(state.pod_security, info, user=attrs.user, subresource=subresource),
        )
        return _written(patched, fields)
    if method == "DELETE" and subresource is None:
        await _admit(state, attrs)
        options = await _delete_options(request)
        preconditions: Obj = options["preconditions"] if isinstance(options.get("preconditions"), dict) else {}
        propagation = request.query_params.get("propagationPolicy") or options.get("propagationPolicy")
        if options.get("orphanDependents") is True and not propagation:
            propagation = "Orphan"
        grace = request.query_params.get("gracePeriodSeconds") or options.get("gracePeriodSeconds")
        deleted = await run_in_threadpool(
            crud.delete,
            store,
            info,
            ns,
            name,
            propagation=propagation,
            precondition_uid=preconditions.get("uid"),
            precondition_rv=preconditions.get("resourceVersion"),
            grace_period=_grace(grace),
            dry_run=_dry_run(request) or options.get("dryRun") == ["All"],
        )
        return wire.json_response(deleted)
    raise _not_allowed(method)
