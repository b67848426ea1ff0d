"""Per-registry request rate limits for the registry client, and jittered poll intervals.

A token bucket per registry (``host[:port]``): ``rate`` requests a second on average, up to ``burst`` at once
(client-go ``flowcontrol.NewTokenBucketRateLimiter(qps, burst)``, which kube-controller-manager's
``--kube-api-qps``/``--kube-api-burst`` configure). Every HTTP request the registry client sends (a
challenge answer, a token request, each tags page) takes one token, through :class:`RateLimitedTransport`,
so a thousand Images polling one registry never send it more than ``rate`` requests a second.

:func:`jittered` spreads poll intervals (±10 % by default, as controller-runtime's ``wait.Jitter`` and
Flux's ``--interval-jitter-percentage``) so Images created together do not poll in lockstep.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

import httpx

__all__ = [
    "DEFAULT_BURST",
    "DEFAULT_JITTER",
    "DEFAULT_QPS",
    "PerHostLimiter",
    "RateLimitedTransport",
    "TokenBucket",
    "jittered",
]

DEFAULT_QPS = 20.0
"""Requests a second to one registry, on average (``dockyard controllers --registry-qps``)."""
DEFAULT_BURST = 40
"""Requests to one registry that may go at once after a quiet spell (``--registry-burst``)."""
DEFAULT_JITTER = 0.1
"""Poll intervals vary by up to this fraction either way."""


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` kept; :meth:`acquire` waits for one. Thread-safe.

    Raises:
        ValueError: ``rate`` ≤ 0 or ``burst`` < 1.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"a token bucket needs rate > 0 and burst ≥ 1 (got {rate}, {burst})")
        self.rate, self.burst = float(rate), int(burst)
        self._clock, self._sleep = clock, sleep
        self._tokens = float(burst)
        self._stamp = clock()
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take one token now (possibly borrowed from the future); return the seconds to wait before using it."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def acquire(self) -> float:
        """Block until a token is available; returns the seconds waited."""
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
        return wait


class PerHostLimiter:
    """One :class:`TokenBucket` per registry ``host[:port]``, made on first use."""

    def __init__(self, rate: float = DEFAULT_QPS, burst: int = DEFAULT_BURST) -> None:
        TokenBucket(rate, burst)  # check the numbers now
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def bucket(self, host: str) -> TokenBucket:
        with self._lock:
            found = self._buckets.get(host)
            if found is None:
                found = self._buckets[host] = TokenBucket(self.rate, self.burst)
            return found

    def acquire(self, host: str) -> float:
        """Wait for a token of ``host``'s bucket; returns the seconds waited."""
        return self.bucket(host).acquire()


class RateLimitedTransport(httpx.BaseTransport):
    """An httpx transport that takes a token of the request's host (``host:port``) before each request.

    Shared by every registry call of a controller (it pools connections too): closing a client that uses
    it does not close it; :meth:`shutdown` does.
    """

    def __init__(self, limiter: PerHostLimiter, inner: httpx.BaseTransport | None = None) -> None:
        self.limiter = limiter
        self.inner = inner or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        self.limiter.acquire(f"{url.host}:{url.port or {'http': 80, 'https': 443}.get(url.scheme, 0)}")
        return self.inner.handle_request(request)

    def close(self) -> None:
        """Nothing: the transport outlives each client (see :meth:`shutdown`)."""

    def shutdown(self) -> None:
        """Close the pooled connections."""
        self.inner.close()


def jittered(seconds: float, fraction: float = DEFAULT_JITTER, *, rand: Callable[[], float] = random.random) -> float:
    """``seconds`` varied uniformly within ±``fraction`` (e.g. 60 → 54..66)."""
    return seconds * (1.0 + fraction * (2.0 * rand() - 1.0))
