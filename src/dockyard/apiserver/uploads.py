"""Receive a build context: stream the request body to a file while checking it.

The body is never held whole in memory. Each chunk is written to a new blob
file of the store (:meth:`dockyard.storage.sqlite.Store.new_blob_file`) and
handed, through a small bounded queue, to a checker thread that runs
:func:`dockyard.api.archive.scan` over the same bytes: incremental
decompression, one member header at a time, the limits enforced as the
bytes arrive. The first refusal stops the reading at once (nothing beyond
the limit is read or written) and deletes the file.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from dockyard.api import archive, errors, kinds
from dockyard.storage import sqlite

_QUEUED_CHUNKS = 16  # request chunks (≈64 KiB each) waiting for the checker: ≈1 MiB


class _Cancelled(Exception):
    """The upload was abandoned; the checker thread leaves."""


class _Checker:
    """The checker thread and the chunk queue that feeds it."""

    def __init__(self, limits: archive.Limits) -> None:
        self._queue: queue.Queue[bytes] = queue.Queue(maxsize=_QUEUED_CHUNKS)
        self._cancelled = threading.Event()
        self.done = threading.Event()
        self.error: archive.BadArchive | None = None
        self._limits = limits
        self._ended = False
        self._thread = threading.Thread(target=self._run, name="context-check", daemon=True)
        self._thread.start()

    def _read(self, _size: int) -> bytes:
        while not self._ended:
            if self._cancelled.is_set():
                raise _Cancelled()
            try:
                chunk = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            self._ended = not chunk
            return chunk
        return b""

    def _run(self) -> None:
        try:
            archive.scan(self._read, self._limits)
        except archive.BadArchive as err:
            self.error = err
        except _Cancelled:
            pass
        finally:
            self.done.set()

    def feed(self, chunk: bytes) -> None:
        """Queue ``chunk`` (``b""``: the end) unless the check is over; blocks while the queue is full."""
        while not self.done.is_set():
            try:
                self._queue.put(chunk, timeout=0.5)
                return
            except queue.Full:
                continue

    def finish(self) -> None:
        """Wait for the verdict after the end of the body was fed."""
        self.done.wait()

    def cancel(self) -> None:
        self._cancelled.set()


def _refusal(err: archive.BadArchive, name: str) -> errors.StatusError:
    if isinstance(err, archive.TooLarge):
        return errors.RequestEntityTooLarge(str(err))
    return errors.Invalid(
        kind="BuildRequest",
        group=kinds.GROUP,
        name=name,
        causes=[errors.Cause("body", f"build context archive refused: {err}")],
    )


async def receive_context(store: sqlite.Store, request: Request, limits: archive.Limits, *, name: str) -> Path:
    """Stream the request body into a new blob file of ``store``, checking it on the way.

    Args:
        store: where the file goes (:meth:`~dockyard.storage.sqlite.Store.new_blob_file`).
        request: its body is the archive (tar, tar.gz, tar.bz2, tar.xz).
        limits: ``max_bytes`` bounds both the uploaded (compressed) bytes and the
            uncompressed tar stream; ``max_members`` the member count.
        name: the BuildConfig, for the 422 Status.
    Returns:
        The file (the caller attaches it with ``put_blob_file`` or deletes it).
    Raises:
        errors.RequestEntityTooLarge: 413 naming the limit crossed (``Content-Length``,
            uploaded or uncompressed bytes, members, one member's headers).
        errors.Invalid: 422 naming the member, or saying why the archive is not one.
        errors.BadRequest: an empty body.
    On any error (also a dropped connection or the request timeout) the file is
    deleted and the rest of the body is not read.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limits.max_bytes:
        raise errors.RequestEntityTooLarge(str(archive.too_many_bytes(limits.max_bytes)))
    path, file = await run_in_threadpool(store.new_blob_file)
    checker = _Checker(limits)
    kept = False

    def write(chunk: bytes) -> None:
        file.write(chunk)
        checker.feed(chunk)

    try:
        size = 0
        async for chunk in request.stream():
            if not chunk:
                continue
            size += len(chunk)
            if size > limits.max_bytes:
                raise errors.RequestEntityTooLarge(str(archive.too_many_bytes(limits.max_bytes)))
            await run_in_threadpool(write, chunk)
            if checker.error is not None:
                raise _refusal(checker.error, name)
        if size == 0:
            raise errors.BadRequest("the request body must be the build context: a tar or tar.gz archive")
        await run_in_threadpool(checker.feed, b"")
        await run_in_threadpool(checker.finish)
        if checker.error is not None:
            raise _refusal(checker.error, name)
        await run_in_threadpool(file.close)
        kept = True
        return path
    finally:
        checker.cancel()
        if not kept:
            with contextlib.suppress(OSError):
                file.close()
            path.unlink(missing_ok=True)
