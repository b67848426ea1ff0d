"""The Service proxy: k3s's ServiceLB and kube-proxy on one machine, every address on loopback.

For each Service (core/v1) it listens on

- ``clusterIP:port`` (every type with a cluster IP; :data:`dockyard.api.services.SERVICE_CIDR`),
- ``127.0.0.1:nodePort`` (``NodePort`` and ``LoadBalancer``; kube-proxy's node ports),
- ``127.0.0.1:port`` (``LoadBalancer``; k3s ServiceLB listens on the node's address),

and forwards each accepted TCP connection to one **ready** endpoint of the Service's EndpointSlices
(``conditions.ready``; kube-proxy treats an unset ``ready`` as ready), chosen round robin, as kube-proxy's
userspace mode did. The choice is made when the connection is accepted, from the slices as last seen, so an
endpoint that turns unready or goes away gets no new connection as soon as its slice changes; connections in
flight are left to finish. When a Service is deleted or its port changes, its listener closes (accepted
connections still finish). If a ready endpoint refuses, the next one is tried.

One asyncio event loop on one thread of the agent process does all of it; the informers (threads) only wake
it. Each direction of a connection moves at most :data:`CHUNK` bytes at a time and waits for the other side to
take them (``drain``), so a slow peer holds at most a few chunks in memory. Only addresses in ``127.0.0.0/8``
are ever connected to (endpoints elsewhere are skipped and logged): all traffic stays on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lightkube.resources.core_v1 import Service
from lightkube.resources.discovery_v1 import EndpointSlice

from dockyard.api import labels as well_known
from dockyard.api import podports, services
from dockyard.client import runtime
from dockyard.client.connection import Connection

__all__ = ["CHUNK", "Backend", "Route", "ServiceProxy", "backends", "routes"]

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
"""Bytes read from one side of a connection before they are written to the other (and drained)."""
CONNECT_TIMEOUT = 2.0
"""Seconds to connect to one endpoint before the next is tried."""
RETRY_PERIOD = 2.0
"""Seconds between retries of listeners that could not bind (a port held by someone else)."""
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


@dataclass(frozen=True, order=True)
class Route:
    """What a listener serves: the port named ``port_name`` of Service ``namespace/name``."""

    namespace: str
    name: str
    port_name: str


@dataclass(frozen=True, order=True)
class Backend:
    """One ready endpoint: ``address:port`` (on loopback)."""

    address: str
    port: int


def routes(svcs: Iterable[Service], *, node_ip: str = podports.LOOPBACK) -> dict[tuple[str, int], Route]:
    """The listeners the Services ask for: ``(ip, port) -> Route`` (see the module's docstring).

    Two Services asking for one address (only possible for ``LoadBalancer`` ports, which the API does not
    allocate) are served first come by ``namespace/name`` order; the other is logged and not served, as k3s's
    ServiceLB leaves a second LoadBalancer on a taken port pending.
    """
    out: dict[tuple[str, int], Route] = {}
    for svc in sorted(svcs, key=lambda s: (s.metadata.namespace or "", s.metadata.name or "")):
        spec = svc.spec
        if spec is None:
            continue
        for port in spec.ports or []:
            if (port.protocol or services.TCP) != services.TCP:
                continue
            route = Route(str(svc.metadata.namespace), str(svc.metadata.name), port.name or "")
            wanted: list[tuple[str, int]] = []
            if spec.clusterIP and spec.clusterIP != services.HEADLESS:
                wanted.append((spec.clusterIP, port.port))
            if spec.type in (services.NODE_PORT, services.LOAD_BALANCER) and port.nodePort:
                wanted.append((node_ip, port.nodePort))
            if spec.type == services.LOAD_BALANCER:
                wanted.append((node_ip, port.port))
            for address in wanted:
                if address in out and out[address] != route:
                    log.warning("%s:%d is taken by service %s; not serving %s", *address, out[address], route)
                    continue
                out[address] = route
    return out


def backends(slices: Iterable[EndpointSlice], route: Route) -> list[Backend]:
    """The ready endpoints of ``route``, from the Service's EndpointSlices (label ``kubernetes.io/service-name``),
    sorted; only loopback addresses (anything else is skipped: traffic never leaves 127.0.0.0/8)."""
    out: set[Backend] = set()
    for es in slices:
        meta = es.metadata
        if meta is None or meta.namespace != route.namespace:
            continue
        if (meta.labels or {}).get(well_known.SERVICE_NAME) != route.name:
            continue
        number = next(
            (p.port for p in es.ports or [] if (p.name or "") == route.port_name and p.port is not None), None
        )
        if number is None:
            continue
        for endpoint in es.endpoints or []:
            conditions = endpoint.conditions
            if conditions is not None and conditions.ready is False:
                continue
            for address in endpoint.addresses[:1]:
                try:
                    on_loopback = ipaddress.ip_address(address) in LOOPBACK
                except ValueError:
                    on_loopback = False
                if not on_loopback:
                    log.warning("service %s: endpoint %s is not on loopback; skipped", route, address)
                    continue
                out.add(Backend(address, int(number)))
    return sorted(out)


@dataclass
class _Listener:
    route: Route
    server: asyncio.Server | None = None


@dataclass
class _Table:
    """The proxy's state, touched only on the event loop's thread."""

    listeners: dict[tuple[str, int], _Listener] = field(default_factory=dict)
    backends: dict[Route, list[Backend]] = field(default_factory=dict)
    turns: dict[Route, itertools.count[int]] = field(default_factory=dict)


class ServiceProxy:
    """Serves this node's Services on loopback (see the module's docstring).

    Args:
        conn: the API connection (the node identity may list and watch Services and EndpointSlices).
        node_ip: the node's address: LoadBalancer ports and node ports listen there (127.0.0.1).
    Attributes:
        connections: accepted connections so far (for tests and benchmarks).
    """

    def __init__(self, conn: Connection, *, node_ip: str = podports.LOOPBACK) -> None:
        self._conn = conn
        self._node_ip = node_ip
        self._informers = {
            "Service": runtime.Informer(conn, "Service", self._changed),
            "EndpointSlice": runtime.Informer(
                conn, "EndpointSlice", self._changed, label_selector=well_known.SERVICE_NAME
            ),
        }
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._table = _Table()
        self._ready = threading.Event()
        self.connections = 0

    # --- lifecycle (any thread) ----------------------------------------------------------------

    def start(self, stop: threading.Event) -> list[threading.Thread]:
        """Start the informers and the event loop as daemon threads; they end when ``stop`` is set (listeners
        are closed then)."""
        threads = [
            threading.Thread(target=i.run, args=(stop,), daemon=True, name=f"services-watch-{kind}")
            for kind, i in self._informers.items()
        ]
        threads.append(threading.Thread(target=self._run, args=(stop,), daemon=True, name="services-proxy"))
        for t in threads:
            t.start()
        self._ready.wait(5)
        return threads

    def synced(self) -> bool:
        """True once both informers have listed."""
        return all(i.synced.is_set() for i in self._informers.values())

    def listening(self) -> dict[tuple[str, int], Route]:
        """The addresses served now (a snapshot; for tests)."""
        return {a: lis.route for a, lis in list(self._table.listeners.items()) if lis.server is not None}

    def _changed(self, _event: str, _obj: Any) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed
                loop.call_soon_threadsafe(wake.set)

    def _run(self, stop: threading.Event) -> None:
        asyncio.run(self._main(stop))

    async def _main(self, stop: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._ready.set()
        stopper = asyncio.ensure_future(asyncio.to_thread(stop.wait))
        try:
            while not stop.is_set():
                self._wake.clear()
                await self._resync()
                waker = asyncio.ensure_future(self._wake.wait())
                await asyncio.wait({waker, stopper}, timeout=RETRY_PERIOD, return_when=asyncio.FIRST_COMPLETED)
                waker.cancel()
        finally:
            for lis in self._table.listeners.values():
                if lis.server is not None:
                    lis.server.close()
            self._table.listeners.clear()

    # --- the event loop's thread ---------------------------------------------------------------

    async def _resync(self) -> None:
        table = self._table
        wanted = routes(self._informers["Service"].items(), node_ip=self._node_ip)
        slices = self._informers["EndpointSlice"].items()
        table.backends = {route: backends(slices, route) for route in set(wanted.values())}
        for address in [a for a, lis in table.listeners.items() if wanted.get(a) != lis.route]:
            lis = table.listeners.pop(address)
            if lis.server is not None:
                lis.server.close()  # accepted connections are left to finish
                log.info("stopped listening on %s:%d (%s/%s)", *address, lis.route.namespace, lis.route.name)
        for address, route in wanted.items():
            lis = table.listeners.setdefault(address, _Listener(route))
            if lis.server is not None:
                continue
            try:
                lis.server = await asyncio.start_server(
                    lambda r, w, route=route: self._serve(route, r, w), address[0], address[1], reuse_address=True
                )
                log.info("listening on %s:%d for service %s/%s", *address, route.namespace, route.name)
            except OSError as err:
                log.warning("service %s/%s: cannot listen on %s:%d: %s", route.namespace, route.name, *address, err)

    def _pick(self, route: Route) -> list[Backend]:
        """The ready endpoints in round-robin order, starting with this connection's turn."""
        pool = self._table.backends.get(route) or []
        if not pool:
            return []
        turn = next(self._table.turns.setdefault(route, itertools.count())) % len(pool)
        return pool[turn:] + pool[:turn]

    async def _serve(self, route: Route, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        for backend in self._pick(route):
            try:
                upstream = await asyncio.wait_for(
                    asyncio.open_connection(backend.address, backend.port, limit=CHUNK), CONNECT_TIMEOUT
                )
                break
            except (OSError, TimeoutError) as err:
                log.info("service %s/%s: endpoint %s:%d: %s", route.namespace, route.name, *_addr(backend), err)
        if upstream is None:
            log.info("service %s/%s: no ready endpoint; connection closed", route.namespace, route.name)
            client_w.close()
            return
        up_r, up_w = upstream
        try:
            await asyncio.gather(_pipe(client_r, up_w), _pipe(up_r, client_w))
        finally:
            for w in (up_w, client_w):
                w.close()


def _addr(backend: Backend) -> tuple[str, int]:
    return backend.address, backend.port


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy ``reader`` to ``writer`` in chunks of at most :data:`CHUNK`, waiting for each to drain; at EOF,
    half-close ``writer`` so the peer sees the end while the other direction carries on."""
    try:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()
