"""Bounds on concurrent long-running requests (watches and followed logs), per identity and in total.

kube-apiserver bounds concurrent requests with ``--max-requests-inflight`` and
answers ``429 TooManyRequests`` with ``Retry-After`` past the bound
(``k8s.io/apiserver/pkg/server/filters/maxinflight.go``); it exempts
long-running requests from that filter and relies on other limits for them.
dockyard, with one process holding every stream, bounds exactly those: a
watch or a ``follow=true`` log holds one slot of its identity and one of the
total from the moment it is accepted until its stream ends (finished,
timed out or the client went away). A request past either bound gets 429
``TooManyRequests`` with ``Retry-After: 1`` and a message naming the bound
and the flag that raises it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from dockyard.api import errors

DEFAULT_TOTAL = 1000
"""Long-running requests at once, all identities together (``dockyard up --max-long-running``)."""
DEFAULT_PER_USER = 250
"""Long-running requests at once per identity (``dockyard up --max-long-running-per-user``)."""
RETRY_AFTER_SECONDS = 1


@dataclass
class Limits:
    """Counts the long-running requests under way. Thread-safe.

    Args:
        total: at most this many at once (``<= 0``: unbounded).
        per_user: at most this many at once per user name (``<= 0``: unbounded).
    """

    total: int = DEFAULT_TOTAL
    per_user: int = DEFAULT_PER_USER
    _by_user: dict[str, int] = field(default_factory=dict)
    _count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def acquire(self, user: str) -> Callable[[], None]:
        """Take a slot for ``user``; returns the function that gives it back (idempotent).

        Raises:
            errors.TooManyRequests: a bound is reached (429, ``Retry-After``).
        """
        with self._lock:
            if 0 < self.total <= self._count:
                raise errors.TooManyRequests(
                    f"too many long-running requests (watches, followed logs): {self.total} at once is the "
                    "server's limit (--max-long-running); retry later",
                    retry_after=RETRY_AFTER_SECONDS,
                )
            held = self._by_user.get(user, 0)
            if 0 < self.per_user <= held:
                raise errors.TooManyRequests(
                    f'too many long-running requests (watches, followed logs) for user "{user}": '
                    f"{self.per_user} at once is the limit per identity (--max-long-running-per-user); "
                    "close some or retry later",
                    retry_after=RETRY_AFTER_SECONDS,
                )
            self._by_user[user] = held + 1
            self._count += 1
        released = threading.Event()

        def release() -> None:
            with self._lock:
                if released.is_set():
                    return
                released.set()
                self._count -= 1
                left = self._by_user.get(user, 1) - 1
                if left > 0:
                    self._by_user[user] = left
                else:
                    self._by_user.pop(user, None)

        return release

    def in_use(self, user: str | None = None) -> int:
        """Slots held now, by ``user`` or by everyone."""
        with self._lock:
            return self._count if user is None else self._by_user.get(user, 0)


class HeldStream(StreamingResponse):
    """A :class:`StreamingResponse` that gives its slot back when the response ends, however it ends."""

    def __init__(self, *args: object, release: Callable[[], None], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()
