"""The dashboard's routes: page shells, fragments and buttons, all answered through the real API.

URL layout under :data:`PREFIX`:

- ``GET /dashboard/`` and ``GET /dashboard/{builds,images,deploys,pushes,events}``,
  ``GET /dashboard/builds/{namespace}/{name}``: page shells (navigation, sign-in form, an empty region that
  htmx fills). They carry no data and are open (:func:`is_public`), since a browser's navigation cannot carry
  a bearer token.
- ``GET /dashboard/static/{file}``: htmx, the page script and the style sheet, from the package. Open.
- ``GET /dashboard/f/...``: fragments (HTML) and ``POST /dashboard/f/...``: the buttons. These need the
  bearer token like every API request (401 without it); each reads or writes through an in-process request to
  the API with the caller's ``Authorization`` header, so the API's authorization decides (403 with the API's
  ``Status`` message otherwise).

Every dashboard response carries a Content-Security-Policy (``script-src 'self'``, no inline script or
style, ``frame-ancestors 'none'``; W3C CSP Level 3) and ``X-Content-Type-Options: nosniff``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

import httpx
import jinja2
from lightkube.models.core_v1 import Event, Pod
from lightkube.resources.apps_v1 import Deployment
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from dockyard.api import kinds, objects, phases, timefmt
from dockyard.client import objects as core_objects
from dockyard.dashboard import views

PREFIX = "/dashboard"
PAGES = ("builds", "images", "deploys", "pushes", "events")
"""The pages, in the navigation's order."""
STATIC_FILES = {
    "htmx.min.js": "text/javascript",
    "dashboard.js": "text/javascript",
    "dashboard.css": "text/css",
    "htmx.LICENSE": "text/plain",
}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
MANUAL_ROLLBACK = phases.FailedImageReason.ROLLED_BACK_BY_USER
"""``status.failedImages[].reason`` of a digest quarantined by the dashboard's rollback button."""
EVENTS_SHOWN = 200
"""Most Events one Events page lists (newest first)."""

Can = Callable[[str, str, str, str, str, str], bool]
"""``can(user, verb, group, resource, subresource, namespace)``: whether the API would allow the request."""

_G = f"/apis/{kinds.GROUP}/{kinds.VERSION}"
_PUBLIC = re.compile(
    r"^/dashboard(/|/(builds|images|deploys|pushes|events)|/builds/[a-z0-9.-]+/[a-z0-9.-]+"
    r"|/static/(" + "|".join(re.escape(f) for f in STATIC_FILES) + r"))?$"
)
_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")  # DNS subdomain (RFC 1123), as namespaces and names are


def is_public(method: str, path: str) -> bool:
    """True for the requests that need no bearer token: ``GET``/``HEAD`` of a page shell or a static file."""
    return method in ("GET", "HEAD") and bool(_PUBLIC.match(path))


_env = jinja2.Environment(
    loader=jinja2.PackageLoader("dockyard.dashboard", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.globals.update(
    status=views.status,
    short_digest=views.short_digest,
    seconds_text=views.seconds_text,
    prefix=PREFIX,
    pages=PAGES,
)


def _headers(*, cache: bool = False) -> dict[str, str]:
    return {
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "max-age=300" if cache else "no-store",
    }


def _render(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(_env.get_template(template).render(**context), status_code=status_code, headers=_headers())


class ApiError(Exception):
    """A non-2xx answer of the API: ``code`` and the ``Status`` message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Api:
    """The API server itself, called in-process (ASGI) with the caller's ``Authorization`` header."""

    def __init__(self, request: Request) -> None:
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=request.app, raise_app_exceptions=False),
            base_url="https://127.0.0.1",
            headers={"authorization": request.headers.get("authorization", "")},
            timeout=60,
        )

    async def __aenter__(self) -> Api:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

    async def call(self, method: str, path: str, **kw: Any) -> Any:
        """The decoded JSON of ``method path``. Raises :class:`ApiError` on a non-2xx answer."""
        resp = await self._client.request(method, path, **kw)
        if resp.is_error:
            try:
                message = str(resp.json().get("message") or resp.reason_phrase)
            except ValueError:
                message = resp.reason_phrase
            raise ApiError(resp.status_code, message)
        return resp.json()

    async def items(self, path: str) -> list[dict[str, Any]]:
        """The ``items`` of the list at ``path``."""
        body = await self.call("GET", path)
        return list(body.get("items") or [])


def _dockyard(items: list[dict[str, Any]], cls: type[Any]) -> list[Any]:
    return [objects.parse(i, cls) for i in items]


def _core(items: list[dict[str, Any]], cls: type[Any]) -> list[Any]:
    return [core_objects.parse(i, cls) for i in items]


def _ns_name(request: Request) -> tuple[str, str]:
    """``(namespace, name)`` from the path. Raises :class:`ApiError` 400 unless both are DNS subdomains."""
    ns, name = request.path_params["namespace"], request.path_params["name"]
    for field, value in (("namespace", ns), ("name", name)):
        if len(value) > 253 or not _NAME.fullmatch(value):
            raise ApiError(400, f"{field}: {value!r} is not a valid name (RFC 1123 subdomain)")
    return ns, name


def _ns_path(namespace: str | None) -> str:
    return f"/namespaces/{namespace}" if namespace else ""


def _filters(request: Request) -> dict[str, str]:
    """The Events filter (``namespace``, ``kind``, ``name``) from the query, each checked against its shape."""
    out = {}
    for key in ("namespace", "kind", "name"):
        value = request.query_params.get(key, "")
        if value and re.fullmatch(r"[A-Za-z0-9][-A-Za-z0-9.]{0,252}", value):
            out[key] = value
    return out


# --- pages (open: no data) ----------------------------------------------------------------------------------


def _shell(page: str, fragment: str, watch: list[str], **extra: Any) -> HTMLResponse:
    return _render("page.html", page=page, fragment=fragment, watch=" ".join(watch), **extra)


_WATCHES: dict[str, list[str]] = {
    "builds": [f"{_G}/buildconfigs", f"{_G}/builds"],
    "images": [f"{_G}/images", "/api/v1/events"],
    "deploys": [f"{_G}/imagedeploys", "/apis/apps/v1/deployments", "/api/v1/pods"],
    "pushes": [f"{_G}/pushes"],
    "events": ["/api/v1/events"],
}


async def _index(request: Request) -> Response:
    return RedirectResponse(f"{PREFIX}/builds", status_code=303, headers=_headers())


async def _page(request: Request) -> Response:
    page = request.path_params["page"]
    if page not in PAGES:
        return Response("not found", status_code=404, headers=_headers())
    query = f"?{request.url.query}" if page == "events" and request.url.query else ""
    return _shell(page, f"{PREFIX}/f/{page}{query}", _WATCHES[page])


async def _build_page(request: Request) -> Response:
    ns, name = request.path_params["namespace"], request.path_params["name"]
    if not (_NAME.fullmatch(ns) and _NAME.fullmatch(name)):
        return Response("not found", status_code=404, headers=_headers())
    return _shell(
        "builds",
        f"{PREFIX}/f/builds/{ns}/{name}",
        [f"{_G}/namespaces/{ns}/builds"],
        log=f"{_G}/namespaces/{ns}/builds/{name}/log",
        title=f"Build {ns}/{name}",
    )


async def _static(request: Request) -> Response:
    name = request.path_params["file"]
    if name not in STATIC_FILES:
        return Response("not found", status_code=404, headers=_headers())
    body = resources.files("dockyard.dashboard").joinpath("static", name).read_bytes()
    return Response(body, media_type=STATIC_FILES[name], headers=_headers(cache=True))


# --- fragments (bearer token: every read goes through the API) ----------------------------------------------


def _fragment(
    read: Callable[[Request, Api, Can], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        async with Api(request) as api:
            try:
                return await read(request, api, request.app.state.dashboard_can)
            except ApiError as err:
                return _render("error.html", status_code=err.code, code=err.code, message=err.message)

    return endpoint


def _user(request: Request) -> str:
    return str(request.scope.get("state", {}).get("user") or "")


async def _whoami(request: Request, api: Api, can: Can) -> Response:
    await api.call("GET", f"{_G}/builds?limit=1")  # the token works for reading
    return _render("whoami.html", user=_user(request))


async def _builds(request: Request, api: Api, can: Can) -> Response:
    configs = _dockyard(await api.items(f"{_G}/buildconfigs"), objects.BuildConfig)
    builds = _dockyard(await api.items(f"{_G}/builds"), objects.Build)
    user = _user(request)
    return _render(
        "builds.html",
        groups=views.builds_by_config(configs, builds),
        views=views,
        now=time.time(),
        can_start=lambda ns: can(user, "create", kinds.GROUP, "buildconfigs", "instantiate", ns),
        can_cancel=lambda ns: can(user, "patch", kinds.GROUP, "builds", "status", ns),
    )


async def _build(request: Request, api: Api, can: Can) -> Response:
    ns, name = _ns_name(request)
    build = objects.parse(await api.call("GET", f"{_G}/namespaces/{ns}/builds/{name}"), objects.Build)
    user = _user(request)
    return _render(
        "build.html",
        build=build,
        views=views,
        now=time.time(),
        can_cancel=can(user, "patch", kinds.GROUP, "builds", "status", ns),
    )


async def _images(request: Request, api: Api, can: Can) -> Response:
    images = _dockyard(await api.items(f"{_G}/images"), objects.Image)
    events = _core(await api.items("/api/v1/events"), Event)
    rows = [(img, views.image_history(img, events)) for img in images]
    return _render("images.html", rows=rows, views=views)


async def _deploys(request: Request, api: Api, can: Can) -> Response:
    deploys = _dockyard(await api.items(f"{_G}/imagedeploys"), objects.ImageDeploy)
    deployments = {
        (d.metadata.namespace, d.metadata.name): d
        for d in _core(await api.items("/apis/apps/v1/deployments"), Deployment)
    }
    pods: list[Pod] = _core(await api.items("/api/v1/pods"), Pod)
    user = _user(request)
    rows = []
    for idp in deploys:
        ns = idp.metadata.namespace
        deploy = deployments.get((ns, idp.status.deploymentName or idp.metadata.name))
        selector = (deploy.spec.selector.matchLabels or {}) if deploy is not None and deploy.spec else None
        mine = [
            p
            for p in pods
            if selector
            and p.metadata is not None
            and p.metadata.namespace == ns
            and all((p.metadata.labels or {}).get(k) == v for k, v in selector.items())
        ]
        mine.sort(key=lambda p: (p.metadata.name or "") if p.metadata else "")
        rows.append((idp, deploy, mine))
    return _render(
        "deploys.html",
        rows=rows,
        views=views,
        can_rollback=lambda ns: can(user, "patch", kinds.GROUP, "imagedeploys", "status", ns),
    )


async def _pushes(request: Request, api: Api, can: Can) -> Response:
    pushes = _dockyard(await api.items(f"{_G}/pushes"), objects.Push)
    pushes.sort(key=lambda p: p.metadata.creationTimestamp or "", reverse=True)
    return _render("pushes.html", pushes=pushes, views=views)


async def _events(request: Request, api: Api, can: Can) -> Response:
    want = _filters(request)
    events: list[Event] = _core(await api.items(f"/api/v1{_ns_path(want.get('namespace'))}/events"), Event)
    shown = [e for e in events if views.involves(e, kind=want.get("kind"), name=want.get("name"), namespace=None)]
    shown.sort(key=views.event_time, reverse=True)
    return _render("events.html", events=shown[:EVENTS_SHOWN], filters=want, views=views)


# --- buttons (bearer token: every write goes through the API) -----------------------------------------------


async def _instantiate(request: Request, api: Api, can: Can) -> Response:
    ns, name = _ns_name(request)
    body = {
        "kind": "BuildRequest",
        "apiVersion": kinds.API_VERSION,
        "metadata": {"name": name},
        "triggeredBy": [{"message": f"Started from the dashboard by {_user(request)}"}],
    }
    build = await api.call("POST", f"{_G}/namespaces/{ns}/buildconfigs/{name}/instantiate", json=body)
    return _render("flash.html", message=f"Started build {ns}/{build['metadata']['name']}")


async def _cancel(request: Request, api: Api, can: Can) -> Response:
    ns, name = _ns_name(request)
    await api.call(
        "PATCH",
        f"{_G}/namespaces/{ns}/builds/{name}/status",
        json={"status": {"cancelled": True}},
        headers={"content-type": "application/merge-patch+json"},
    )
    return _render("flash.html", message=f"Cancelling build {ns}/{name}")


async def _rollback(request: Request, api: Api, can: Can) -> Response:
    """Quarantine the ImageDeploy's current digest (``status.failedImages``, reason :data:`MANUAL_ROLLBACK`) and
    name the previous one ``status.availableImage``: the ImageDeploy controller then puts the Deployment back on
    it and keeps it there until the Image has a newer digest (the same path as its automatic rollback)."""
    ns, name = _ns_name(request)
    path = f"{_G}/namespaces/{ns}/imagedeploys/{name}"
    merge = {"content-type": "application/merge-patch+json"}
    # the API decides first (a dry-run write: 403 in its words for a user who may not patch the status)
    await api.call("PATCH", f"{path}/status", params={"dryRun": "All"}, json={}, headers=merge)
    idp = objects.parse(await api.call("GET", path), objects.ImageDeploy)
    target, current = views.rollback_target(idp), idp.status.latestImage
    if target is None or current is None:
        return _render("flash.html", status_code=409, message=f"{ns}/{name} has no earlier image to roll back to")
    failed = {
        "image": current,
        "digest": current.partition("@")[2] or None,
        "reason": MANUAL_ROLLBACK,
        "message": f"rolled back to {target} from the dashboard by {_user(request)}",
        "time": timefmt.now(),
    }
    patch = {
        "metadata": {"resourceVersion": idp.metadata.resourceVersion},
        "status": {
            "availableImage": target,
            "failedImages": [failed, *(f.model_dump(mode="json", exclude_none=True) for f in idp.status.failedImages)],
        },
    }
    await api.call("PATCH", f"{path}/status", json=patch, headers=merge)
    return _render("flash.html", message=f"Rolling {ns}/{name} back to {views.short_digest(target)}")


def mount(app: Any, *, can: Can) -> None:
    """Add the dashboard's routes to the API server's Starlette ``app``.

    Args:
        app: the API server's application; its middleware (bearer authentication) runs before these routes,
            and :func:`is_public` tells it which need no token.
        can: whether the API would allow a request (``can(user, verb, group, resource, subresource,
            namespace)``); only used to leave out buttons the user may not press, never to allow anything.
    """
    app.state.dashboard_can = can
    ns_name = "{namespace}/{name}"
    routes = [
        Route(PREFIX, _index, methods=["GET"]),
        Route(f"{PREFIX}/", _index, methods=["GET"]),
        Route(f"{PREFIX}/static/{{file}}", _static, methods=["GET"]),
        Route(f"{PREFIX}/builds/{ns_name}", _build_page, methods=["GET"]),
        Route(f"{PREFIX}/{{page:str}}", _page, methods=["GET"]),
        Route(f"{PREFIX}/f/whoami", _fragment(_whoami), methods=["GET"]),
        Route(f"{PREFIX}/f/builds", _fragment(_builds), methods=["GET"]),
        Route(f"{PREFIX}/f/builds/{ns_name}", _fragment(_build), methods=["GET"]),
        Route(f"{PREFIX}/f/images", _fragment(_images), methods=["GET"]),
        Route(f"{PREFIX}/f/deploys", _fragment(_deploys), methods=["GET"]),
        Route(f"{PREFIX}/f/pushes", _fragment(_pushes), methods=["GET"]),
        Route(f"{PREFIX}/f/events", _fragment(_events), methods=["GET"]),
        Route(f"{PREFIX}/f/buildconfigs/{ns_name}/instantiate", _fragment(_instantiate), methods=["POST"]),
        Route(f"{PREFIX}/f/builds/{ns_name}/cancel", _fragment(_cancel), methods=["POST"]),
        Route(f"{PREFIX}/f/imagedeploys/{ns_name}/rollback", _fragment(_rollback), methods=["POST"]),
    ]
    app.router.routes.extend(routes)
