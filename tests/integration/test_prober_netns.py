"""The prober's httpGet and tcpSocket handlers against real servers, through :mod:`dockyard.agent.netns`.

The namespace entered is this process's own (``/proc/<own pid>/ns/net``), so the servers run here on
127.0.0.1; the pod-namespace path is covered by test_pod_probes. Needs root (``setns`` wants
``CAP_SYS_ADMIN``). Also measures what one probe costs.
"""

from __future__ import annotations

import http.server
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lightkube.models.core_v1 import Container, ContainerPort, Probe

from dockyard.agent import netns
from dockyard.agent.pods import probes
from dockyard.agent.pods.prober import USER_AGENT, Prober
from dockyard.agent.pods.probes import ProbeType, Result
from dockyard.apiserver import tls

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="setns needs root")

SEEN: list[dict[str, str]] = []


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        SEEN.append(dict(self.headers))
        if self.path == "/slow":
            time.sleep(2)
        code = {"/ok": 200, "/moved": 302, "/bad": 503}.get(self.path, 404)
        try:
            self.send_response(code)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
        except BrokenPipeError:  # the prober gave up (/slow)
            pass

    def log_message(self, *args: object) -> None:
        pass


def _serve(context: ssl.SSLContext | None = None) -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def http_port() -> Iterator[int]:
    yield from _serve()


@pytest.fixture
def https_port(tmp_path: Path) -> Iterator[int]:
    tls.write_self_signed(tmp_path / "c.pem", tmp_path / "k.pem")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    yield from _serve(context)


@pytest.fixture
def ns() -> Iterator[netns.NetNS]:
    handle = netns.NetNS(os.getpid())
    yield handle
    handle.close()


def _run(ns: netns.NetNS, probe: dict, *, ports: list[ContainerPort] | None = None) -> tuple[Result, str]:
    spec = probes.ProbeSpec.of(ProbeType.READINESS, Probe.from_dict(probe))
    return Prober(engine=None).run(spec, Container(name="web", ports=ports), "", lambda: ns)  # type: ignore[arg-type]


def test_http_status_headers_and_timeouts(ns: netns.NetNS, http_port: int) -> None:
    SEEN.clear()
    assert _run(ns, {"httpGet": {"path": "/ok", "port": http_port}}) == (Result.SUCCESS, "")
    assert SEEN[-1]["User-Agent"] == USER_AGENT and SEEN[-1]["Accept"] == "*/*"
    assert SEEN[-1]["Host"] == f"127.0.0.1:{http_port}"
    assert _run(ns, {"httpGet": {"path": "/moved", "port": http_port}})[0] is Result.SUCCESS
    assert _run(
        ns, {"httpGet": {"path": "/bad", "port": "http"}}, ports=[ContainerPort(containerPort=http_port, name="http")]
    ) == (
        Result.FAILURE,
        "HTTP probe failed with statuscode: 503",
    )
    headers = [{"name": "User-Agent", "value": "mine"}, {"name": "X-Probe", "value": "1"}]
    _run(ns, {"httpGet": {"path": "/ok", "port": http_port, "httpHeaders": headers}})
    assert SEEN[-1]["User-Agent"] == "mine" and SEEN[-1]["X-Probe"] == "1"
    started = time.monotonic()
    result, output = _run(ns, {"httpGet": {"path": "/slow", "port": http_port}, "timeoutSeconds": 1})
    assert result is Result.FAILURE and "Client.Timeout exceeded" in output
    assert time.monotonic() - started < 1.9


def test_https_is_probed_without_verifying_the_certificate(ns: netns.NetNS, https_port: int) -> None:
    assert _run(ns, {"httpGet": {"path": "/ok", "port": https_port, "scheme": "HTTPS"}}) == (Result.SUCCESS, "")
    assert _run(ns, {"httpGet": {"path": "/bad", "port": https_port, "scheme": "HTTPS"}})[0] is Result.FAILURE


def test_tcp_and_connection_refused(ns: netns.NetNS, http_port: int) -> None:
    assert _run(ns, {"tcpSocket": {"port": http_port}}) == (Result.SUCCESS, "")
    with socket_closed_port() as port:
        assert _run(ns, {"tcpSocket": {"port": port}}) == (
            Result.FAILURE,
            f"dial tcp 127.0.0.1:{port}: connect: connection refused",
        )
        result, output = _run(ns, {"httpGet": {"port": port, "path": "/x"}})
        assert result is Result.FAILURE
        assert output == f'Get "http://127.0.0.1:{port}/x": dial tcp 127.0.0.1:{port}: connect: connection refused'


def test_cost_of_one_probe_in_a_namespace(ns: netns.NetNS, http_port: int) -> None:
    """Bounded loop: 100 HTTP probes; printed per-probe cost (generous bound, shared 2-core machine)."""
    n = 100
    started = time.perf_counter()
    for _ in range(n):
        assert _run(ns, {"httpGet": {"path": "/ok", "port": http_port}})[0] is Result.SUCCESS
    http_each = (time.perf_counter() - started) / n
    started = time.perf_counter()
    for _ in range(n):
        ns.socket().close()
    socket_each = (time.perf_counter() - started) / n
    print(f"httpGet probe: {http_each * 1000:.2f} ms; socket in the namespace: {socket_each * 1000:.3f} ms")
    assert http_each < 0.1 and socket_each < 0.02


class socket_closed_port:
    """A loopback port nothing listens on (bound, not listening, while in use)."""

    def __enter__(self) -> int:
        self._s = socket.socket()
        self._s.bind(("127.0.0.1", 0))
        return int(self._s.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self._s.close()
