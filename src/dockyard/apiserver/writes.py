"""Single-object writes on the event loop, committed in groups by one thread.

A create, update or patch runs on the event loop from start to end (:meth:`GroupCommit.run`): its
validation, admission and the SQL of its transaction (:func:`dockyard.apiserver.crud.create` and the
others, inside :meth:`dockyard.storage.sqlite.Store.deferred`). Its response waits, on the loop, for
the commit of the batch that holds it. One commit thread commits the open batch (one ``COMMIT``:
one fsync of the WAL, ``synchronous=FULL``) once the loop has run every write that was ready: all
writes that arrive while a commit is under way wait for it to end and go into the next batch, so a
busy server commits many writes per fsync (group commit), an idle one each write at once.

Why not a worker thread per write, as before: the work of a write is Python and holds the GIL
wherever it runs, and handing the GIL between the loop and 40 threads cost more than the work (with
50 writers, the GIL was held 63 % of the time and free while the next holder woke; its hand-overs
also slowed the watch fan-out, whose TLS writes and ``send(2)`` each release it). On the loop, the
only hand-over is to the commit thread, once per batch.

The loop never waits for the store's lock: when another thread holds it (a write still made on a
worker thread, such as a delete, its commit, or a paged list read from the store), the write runs
on a worker thread instead, which waits for the lock, and its response still waits for its batch's
commit on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool

from dockyard.storage import sqlite

__all__ = ["GroupCommit"]

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


class GroupCommit:
    """Runs writes on the event loop and commits them in groups on one thread (see the module docstring).

    Args:
        store: the store written to.
    """

    def __init__(self, store: sqlite.Store) -> None:
        self._store = store
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dockyard-commit")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle = asyncio.Event()  # set while no commit is under way
        self._committing = False
        self._scheduled = False
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def _bind(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new loop (a test's server started again): nothing carries over
            self._loop = loop
            self._idle = asyncio.Event()
            self._idle.set()
            self._committing = self._scheduled = False
            self._waiters = []
        return loop

    async def run(self, write: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``write(*args, **kwargs)`` on the loop; its result once what it wrote is on disk.

        ``write`` is a synchronous store write (its :meth:`~dockyard.storage.sqlite.Store.atomic`
        blocks are deferred). A write that raises returns at once (what it wrote was rolled back).

        Raises:
            whatever ``write`` raises; errors.InsufficientStorage (507) or the store's error when the
            batch's commit failed (nothing of the write is stored then).
        """
        loop = self._bind()
        while not self._idle.is_set():  # the connection belongs to the commit thread until it ends
            await self._idle.wait()
        with self._store.held_if_free() as free:
            if free:
                result, error, pending = self._deferred(write, *args, **kwargs)
        if not free:  # another thread holds the store (a paged read, its own commit): wait for it off the loop
            result, error, pending = await run_in_threadpool(self._deferred, write, *args, **kwargs)
        if pending.batch:
            if self._store.done_batch < pending.batch:
                waiter: asyncio.Future[None] = loop.create_future()
                self._waiters.append((pending.batch, waiter))
                self._schedule(loop)
                await asyncio.shield(waiter)  # a cancelled request still has its write committed
            if error is None:
                self._store.deferred_outcome(pending.batch)
            else:
                with contextlib.suppress(Exception):
                    self._store.deferred_outcome(pending.batch)
        if error is not None:
            raise error
        return result  # type: ignore[return-value]  # None only with an error

    def _deferred(
        self, write: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> tuple[T | None, Exception | None, sqlite.Deferred]:
        """``(result, None, pending)`` or ``(None, error, pending)`` of ``write`` inside ``Store.deferred``."""
        with self._store.deferred() as pending:
            try:
                return write(*args, **kwargs), None, pending
            except Exception as err:  # answered once what it wrote before (if anything) is on disk, as in a thread
                return None, err, pending

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._scheduled and not self._committing:
            self._scheduled = True
            loop.call_soon(self._start, loop)  # after the writes that are ready now: they join the batch

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._scheduled = False
        if not self._waiters or self._loop is not loop:
            return
        self._committing = True
        self._idle.clear()
        done = loop.run_in_executor(self._executor, self._store.commit_open)
        done.add_done_callback(lambda future: self._committed(loop, future))

    def _committed(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[int]) -> None:
        if self._loop is not loop:  # the server moved to another loop meanwhile: its writers are gone
            return
        self._committing = False
        self._idle.set()
        if future.cancelled() or future.exception() is not None:  # not a failed COMMIT: that is kept for its writers
            error = RuntimeError("the commit thread failed") if future.cancelled() else future.exception()
            log.error("group commit failed: %r", error)
            for _, waiter in self._waiters:
                if not waiter.done():
                    waiter.set_exception(error)  # type: ignore[arg-type]
            self._waiters = []
            return
        done = self._store.done_batch
        waiting = []
        for batch, waiter in self._waiters:
            if batch > done:
                waiting.append((batch, waiter))
            elif not waiter.done():
                waiter.set_result(None)
        self._waiters = waiting
        if waiting:
            self._schedule(loop)
