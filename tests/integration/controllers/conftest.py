"""Controllers reconciled against the in-process API server, in the manner of controller-runtime's envtest.

No engine and no node agent run: a test starts ONE controller (``run_controller(BuildController)``)
in background threads against the real API server over HTTPS (tests/integration/conftest.py),
then plays the other components' part itself through the REST API, e.g. it writes a build
pod's status as the node agent would. Waits are bounded polls (:meth:`Env.wait`) that return
as soon as the condition holds; nothing sleeps a fixed time.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from dockyard.api import kinds
from dockyard.client import connection, runtime
from integration.conftest import ApiServer, Running, start_server, stop_servers

T = TypeVar("T")
NS = "default"
_counter = itertools.count()
WAIT = 10.0
"""Seconds any one condition may take to hold before the test fails."""


def _info(kind: str) -> kinds.ResourceInfo:
    return next(i for i in kinds.RESOURCES if i.kind == kind)


def path(kind: str, name: str | None = None, *, namespace: str = NS, sub: str | None = None) -> str:
    """The REST path of ``kind`` (collection, or object ``name``, or its subresource ``sub``)."""
    info = _info(kind)
    base = f"/apis/{info.group}/{info.version}" if info.group else f"/api/{info.version}"
    if info.namespaced:
        base += f"/namespaces/{namespace}"
    out = f"{base}/{info.plural}"
    if name is not None:
        out += f"/{name}"
    if sub is not None:
        out += f"/{sub}"
    return out


class Env:
    """The test's side of the API: plain REST calls as the admin, and bounded waits."""

    def __init__(self, http: httpx.Client, namespace: str) -> None:
        self.http = http
        self.ns = namespace
        self.controllers: list[Tracking] = []

    def _ok(self, resp: httpx.Response) -> dict[str, Any]:
        assert resp.is_success, f"{resp.request.method} {resp.request.url.path}: {resp.status_code} {resp.text[:500]}"
        return resp.json()

    def create(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        info = _info(kind)
        body = {"apiVersion": info.api_version, "kind": kind, **body}
        return self._ok(self.http.post(path(kind, namespace=self.ns), json=body))

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist (404)."""
        resp = self.http.get(path(kind, name, namespace=self.ns))
        return None if resp.status_code == 404 else self._ok(resp)

    def list(self, kind: str, *, labels: str | None = None) -> list[dict[str, Any]]:
        params = {"labelSelector": labels} if labels else {}
        return self._ok(self.http.get(path(kind, namespace=self.ns), params=params))["items"]

    def delete(self, kind: str, name: str) -> None:
        resp = self.http.delete(path(kind, name, namespace=self.ns))
        assert resp.status_code in (200, 202, 404), resp.text

    def patch(self, kind: str, name: str, body: dict[str, Any], *, sub: str | None = None) -> dict[str, Any]:
        """JSON merge patch (RFC 7386) of the object or its subresource."""
        return self._ok(
            self.http.patch(
                path(kind, name, namespace=self.ns, sub=sub),
                json=body,
                headers={"Content-Type": "application/merge-patch+json"},
            )
        )

    def patch_status(self, kind: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        return self.patch(kind, name, {"status": status}, sub="status")

    def instantiate(self, config: str) -> dict[str, Any]:
        """``POST buildconfigs/NAME/instantiate``: the new Build (as ``oc start-build`` does)."""
        return self._ok(
            self.http.post(
                path("BuildConfig", config, namespace=self.ns, sub="instantiate"),
                json={"kind": "BuildRequest", "apiVersion": kinds.API_VERSION, "metadata": {"name": config}},
            )
        )

    def wait(self, condition: Callable[[], T], what: str, *, timeout: float = WAIT) -> T:
        """Poll ``condition`` until it returns something truthy and return that; fail after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        delay = 0.02
        while True:
            got = condition()
            if got:
                return got
            if time.monotonic() >= deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.1)

    def wait_for(
        self, kind: str, name: str, check: Callable[[dict[str, Any]], bool], what: str, *, timeout: float = WAIT
    ) -> dict[str, Any]:
        """Poll GET until the object exists and ``check(obj)`` holds; return the object."""

        def probe() -> dict[str, Any] | None:
            obj = self.get(kind, name)
            return obj if obj is not None and check(obj) else None

        return self.wait(probe, f"{kind} {name}: {what}", timeout=timeout)

    def wait_phase(self, kind: str, name: str, phase: str, *, timeout: float = WAIT) -> dict[str, Any]:
        return self.wait_for(kind, name, lambda o: status(o).get("phase") == phase, f"phase {phase}", timeout=timeout)

    def wait_gone(self, kind: str, name: str, *, timeout: float = WAIT) -> None:
        self.wait(lambda: self.get(kind, name) is None, f"{kind} {name} to be deleted", timeout=timeout)

    def settled(self, probe: Callable[[], T]) -> T:
        """``probe()`` once every running controller is quiet (:meth:`Tracking.quiet`).

        For asserting that something does NOT happen: whatever the controllers were
        going to do about what they have seen, they have done.
        """
        self.quiet()
        return probe()

    def quiet(self, *, timeout: float = WAIT) -> None:
        """Return once every running controller is quiet at the same time (one's work can wake another)."""
        deadline = time.monotonic() + timeout
        while True:
            before = [c.reconciles for c in self.controllers]
            for controller in self.controllers:
                controller.quiet(timeout=max(0.0, deadline - time.monotonic()))
            if [c.reconciles for c in self.controllers] == before:
                return


class Tracking(runtime.Controller):
    """Mixed into the controller under test: counts reconciles and tells when it is quiet."""

    QUIET = 0.2
    """Seconds without a reconcile (and an empty queue) that count as quiet: several watch round trips."""

    def setup(self) -> None:
        super().setup()
        self._lock = threading.Lock()
        self.reconciles = 0
        self._in_flight = 0
        self._last = time.monotonic()

    def reconcile(self, key: str) -> float | None:
        with self._lock:
            self.reconciles += 1
            self._in_flight += 1
            self._last = time.monotonic()
        try:
            return super().reconcile(key)
        finally:
            with self._lock:
                self._in_flight -= 1
                self._last = time.monotonic()

    def quiet(self, *, timeout: float = WAIT) -> None:
        """Return once no reconcile runs, none is queued, and none ran for :attr:`QUIET` seconds
        (keys re-added for later, ``add_after``, do not count); fail after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                idle = self._in_flight == 0 and len(self.queue) == 0
                since = time.monotonic() - self._last
            if idle and since >= self.QUIET:
                return
            assert time.monotonic() < deadline, f"{self.name} controller never went quiet"
            time.sleep(max(0.02, self.QUIET - since) if idle else 0.02)


def status(obj: dict[str, Any] | None) -> dict[str, Any]:
    return (obj or {}).get("status") or {}


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any]:
    return next((c for c in status(obj).get("conditions") or [] if c.get("type") == type_), {})


@pytest.fixture(scope="module")
def shared_apiserver(tmp_path_factory: pytest.TempPathFactory, serving_cert: tuple[Path, Path]) -> Iterator[ApiServer]:
    """One API server for a test module; each test works in a namespace of its own (:func:`env`)."""
    running: Running = []
    yield start_server(tmp_path_factory.mktemp("envtest") / "dockyard.db", serving_cert, running)
    stop_servers(running)


@pytest.fixture
def env(shared_apiserver: ApiServer) -> Iterator[Env]:
    """The test's own namespace on the module's server, deleted (with all it holds) at teardown."""
    namespace = f"t{next(_counter)}"
    with shared_apiserver.client() as http:
        env = Env(http, namespace)
        env._ok(
            http.post(
                "/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
            )
        )
        yield env
        http.delete(f"/api/v1/namespaces/{namespace}")


@pytest.fixture
def conn(shared_apiserver: ApiServer, tmp_path: Path) -> connection.Connection:
    """A :class:`~dockyard.client.connection.Connection` to the test server as the admin."""
    return connection.connect(str(shared_apiserver.kubeconfig(tmp_path / "kubeconfig")))


@pytest.fixture
def run_controller(conn: connection.Connection, env: Env) -> Iterator[Callable[..., Tracking]]:
    """``run_controller(ControllerClass)``: start it as `dockyard controllers` does (informers and
    workers on daemon threads, ``reconcile`` counted by :class:`Tracking`), wait until its
    informers have listed, stop it at teardown."""
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def start(cls: type[runtime.Controller], **options: Any) -> Tracking:
        controller: Tracking = type(cls.__name__, (Tracking, cls), {})(conn, **options)
        env.controllers.append(controller)
        threads.extend(controller.start(stop))
        deadline = time.monotonic() + WAIT
        while not controller.synced():
            assert time.monotonic() < deadline, f"{cls.__name__}: informers did not sync"
            time.sleep(0.02)
        return controller

    yield start
    stop.set()
    workers = [t for t in threads if "-worker-" in t.name]
    for t in workers:  # the queue's shutdown wakes them at once
        t.join(timeout=5)
    assert not any(t.is_alive() for t in workers), "a controller worker did not stop"
