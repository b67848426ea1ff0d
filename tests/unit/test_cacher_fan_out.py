"""The watch cache's fan-out over a real SQLite store: watchers with one view share each commit's
chunk, a watcher registered mid-commit gets only what comes after its start, and a sink that falls
behind or loses its client cuts its watcher off. The sink is a recording stand-in for the
connection (:class:`dockyard.apiserver.httpproto.ChunkWriter`); everything else is real."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from dockyard.api import kinds
from dockyard.apiserver import cacher
from dockyard.apiserver.selectors import Selector
from dockyard.storage import sqlite

SECRET = kinds.by_kind("v1", "Secret")
assert SECRET is not None


def secret(name: str, namespace: str = "default", **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace, "labels": labels}}


class RecordingSink:
    """Keeps every chunk written; ``unsent`` is what it reports as not yet sent; ``gone`` raises."""

    def __init__(self, unsent: int = 0, gone: bool = False) -> None:
        self.chunks: list[bytes] = []
        self.unsent, self.gone = unsent, gone

    def ready(self) -> bool:
        return True

    def write(self, data: bytes, events: int) -> int:
        if self.gone:
            raise ConnectionError("gone")
        assert data.count(b"\n") == events
        self.chunks.append(data)
        return self.unsent

    def names(self) -> list[str]:
        return [json.loads(line)["object"]["metadata"]["name"] for c in self.chunks for line in c.splitlines()]


def names_of(buffer: list[bytes]) -> list[str]:
    return [json.loads(line)["object"]["metadata"]["name"] for line in buffer]


def test_watchers_of_one_view_share_the_commit_and_a_late_one_gets_only_what_follows(tmp_path: Path) -> None:
    store = sqlite.Store(tmp_path / "db.sqlite")
    cache = cacher.Cacher(store)
    cache.start()

    async def run() -> None:
        def register(namespace: str | None = "default", selector: Selector = Selector()) -> cacher.Watcher:
            registered = cache.watch(
                info=SECRET, namespace=namespace, selector=selector, start=None, initial=False, render=None
            )
            assert registered is not None
            return registered[0]

        first, second = register(), register()
        labelled = register(selector=Selector.parse("app=a", None))
        other_ns = register(namespace="other")
        first.sink, second.sink = RecordingSink(), RecordingSink()
        with store.atomic():
            store.create(SECRET, secret("one", app="a"))
            store.create(SECRET, secret("two"))
        late = register()  # after the commit, before its fan-out ran
        await asyncio.sleep(0)  # the fan-out
        assert isinstance(first.sink, RecordingSink) and isinstance(second.sink, RecordingSink)
        assert first.sink.names() == second.sink.names() == ["one", "two"]
        assert first.sink.chunks[0] is second.sink.chunks[0]  # joined once for the view
        assert names_of(labelled.buffer) == ["one"]
        assert other_ns.buffer == [] and late.buffer == []
        store.create(SECRET, secret("three"))
        await asyncio.sleep(0)
        assert names_of(late.buffer) == ["three"]
        assert first.sink.names() == ["one", "two", "three"]
        assert cache.watcher_count() == 5

    asyncio.run(run())
    cache.close()
    store.close()


def test_a_sink_too_far_behind_or_gone_cuts_its_watcher_off(tmp_path: Path) -> None:
    store = sqlite.Store(tmp_path / "db.sqlite")
    cache = cacher.Cacher(store, watcher_bytes=1000)
    cache.start()

    async def run() -> None:
        watchers = []
        for _ in range(3):
            registered = cache.watch(
                info=SECRET, namespace="default", selector=Selector(), start=None, initial=False, render=None
            )
            assert registered is not None
            watchers.append(registered[0])
        fine, behind, gone = watchers
        fine.sink, behind.sink, gone.sink = RecordingSink(), RecordingSink(unsent=1001), RecordingSink(gone=True)
        store.create(SECRET, secret("one"))
        await asyncio.sleep(0)
        assert not fine.cut and behind.cut and gone.cut
        assert behind.wake.is_set() and gone.wake.is_set()  # their streams end
        assert cache.cut_off == 2 and cache.watcher_count() == 1
        store.create(SECRET, secret("two"))
        await asyncio.sleep(0)
        assert isinstance(fine.sink, RecordingSink) and fine.sink.names() == ["one", "two"]

    asyncio.run(run())
    cache.close()
    store.close()
