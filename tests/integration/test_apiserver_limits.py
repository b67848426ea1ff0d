"""Bounds a hostile client meets: concurrent watches and followed logs (429), log size, tailLines."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import httpx

from dockyard.apiserver import inflight

PODS = "/api/v1/namespaces/default/pods"
GROUP = "/apis/dockyard.dev/v1alpha1/namespaces/default"
WATCH = {"watch": "true", "timeoutSeconds": "30"}


@contextlib.contextmanager
def held(client: httpx.Client, path: str, params: dict[str, str]) -> Iterator[httpx.Response]:
    """A streaming request kept open (its headers read) until the block ends."""
    with client.stream("GET", path, params=params) as resp:
        yield resp


def test_watches_per_identity_and_in_total_are_bounded(apiserver_factory: Any) -> None:
    server = apiserver_factory(long_running=inflight.Limits(total=5, per_user=3))
    with contextlib.ExitStack() as stack:
        view = stack.enter_context(server.client(token=server.view_token))
        admin = stack.enter_context(server.client())
        for _ in range(3):
            assert stack.enter_context(held(view, PODS, WATCH)).status_code == 200
        refused = view.get(PODS, params=WATCH)
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "1"
        status = refused.json()
        assert status["reason"] == "TooManyRequests" and "--max-long-running-per-user" in status["message"]
        assert 'user "view"' in status["message"]
        for _ in range(2):  # another identity still has room, up to the total
            assert stack.enter_context(held(admin, PODS, WATCH)).status_code == 200
        total = admin.get(PODS, params=WATCH)
        assert total.status_code == 429 and "--max-long-running)" in total.json()["message"]
    # every slot comes back when its stream ends (the client closed it)
    with server.client(token=server.view_token) as view:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with view.stream("GET", PODS, params={"watch": "true", "timeoutSeconds": "1"}) as resp:
                if resp.status_code == 200:
                    break
            time.sleep(0.1)
        else:
            raise AssertionError("slots were not given back after the watches ended")


def _build(api: httpx.Client) -> str:
    config = {
        "metadata": {"name": "b"},
        "spec": {
            "source": {"type": "Dockerfile", "dockerfile": "FROM scratch"},
            "strategy": {"type": "Docker"},
            "output": {"to": {"kind": "DockerImage", "name": "127.0.0.1:5000/x:1"}},
        },
    }
    assert api.post(f"{GROUP}/buildconfigs", json=config).status_code == 201
    created = api.post(f"{GROUP}/buildconfigs/b/instantiate", json={})
    assert created.status_code == 201
    return str(created.json()["metadata"]["name"])


def test_followed_logs_hold_slots_too(apiserver_factory: Any) -> None:
    server = apiserver_factory(long_running=inflight.Limits(total=10, per_user=2))
    with server.client() as api, contextlib.ExitStack() as stack:
        build = _build(api)
        log = f"{GROUP}/builds/{build}/log"
        for _ in range(2):
            assert stack.enter_context(held(api, log, {"follow": "true"})).status_code == 200
        assert api.get(log, params={"follow": "true"}).status_code == 429
        assert api.get(log).status_code == 200  # a plain read is not long-running


def test_a_build_log_is_capped_and_keeps_its_newest_whole_lines(apiserver_factory: Any) -> None:
    server = apiserver_factory(max_log_bytes=4096)
    with server.client() as api:
        build = _build(api)
        log = f"{GROUP}/builds/{build}/log"
        for i in range(300):  # ~15 KiB in chunks that split lines
            line = f"line {i:04d} {'x' * 40}\n".encode()
            for part in (line[:7], line[7:]):
                assert api.post(log, content=part).status_code == 201
        text = api.get(log).content
        assert len(text) <= 4096 + 200
        first, *rest = text.decode().splitlines()
        assert first.startswith("[dockyard] ") and "bytes of earlier log dropped" in first and "4096" in first
        assert rest and all(r.startswith("line ") and r.endswith("x" * 40) for r in rest)
        numbers = [int(r.split()[1]) for r in rest]
        assert numbers == list(range(numbers[0], 300))
        tail = api.get(log, params={"tailLines": "3"}).content.decode()
        assert [int(r.split()[1]) for r in tail.splitlines()] == [297, 298, 299]
