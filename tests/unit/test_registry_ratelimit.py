"""The per-registry token bucket and jittered poll intervals (dockyard.registry.ratelimit)."""

from __future__ import annotations

import threading

import httpx
import pytest

from dockyard.registry import ratelimit


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_bucket_allows_a_burst_then_the_rate() -> None:
    clock = Clock()
    bucket = ratelimit.TokenBucket(20, 5, clock=clock, sleep=clock.sleep)
    waits = [bucket.acquire() for _ in range(25)]
    assert waits[:5] == [0.0] * 5  # the burst
    assert clock.now == pytest.approx(20 / 20)  # then 20 more at 20/s: one second
    assert all(w == pytest.approx(0.05) for w in waits[5:])


def test_bucket_refills_up_to_the_burst_only() -> None:
    clock = Clock()
    bucket = ratelimit.TokenBucket(10, 3, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        bucket.acquire()
    clock.now += 100.0  # a long quiet spell banks no more than the burst
    assert [bucket.reserve() for _ in range(4)] == [0.0, 0.0, 0.0, pytest.approx(0.1)]


def test_bad_numbers_are_refused() -> None:
    with pytest.raises(ValueError):
        ratelimit.TokenBucket(0, 1)
    with pytest.raises(ValueError):
        ratelimit.PerHostLimiter(10, 0)


def test_transport_limits_each_registry_on_its_own() -> None:
    seen: list[str] = []
    inner = httpx.MockTransport(lambda request: (seen.append(request.url.host), httpx.Response(200))[1])
    limiter = ratelimit.PerHostLimiter(1000, 2)
    transport = ratelimit.RateLimitedTransport(limiter, inner)
    with httpx.Client(transport=transport) as http:
        for _ in range(3):
            http.get("http://127.0.0.1:5000/v2/")
        http.get("http://127.0.0.2:5000/v2/")
    assert seen == ["127.0.0.1"] * 3 + ["127.0.0.2"]
    # the first registry used its burst and one more; the second only one token
    assert limiter.bucket("127.0.0.1:5000")._tokens < limiter.bucket("127.0.0.2:5000")._tokens
    transport.close()  # closing a client leaves the shared transport usable
    with httpx.Client(transport=transport) as http:
        assert http.get("http://127.0.0.1:5000/v2/").status_code == 200


def test_many_threads_never_exceed_the_rate() -> None:
    clock_lock = threading.Lock()
    bucket = ratelimit.TokenBucket(50, 1)
    count = 0

    def worker() -> None:
        nonlocal count
        for _ in range(5):
            bucket.acquire()
            with clock_lock:
                count += 1

    import time

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    elapsed = time.monotonic() - started
    assert count == 40
    assert elapsed >= (40 - 1) / 50 * 0.95  # 39 tokens beyond the burst at 50/s: at least ~0.78 s


def test_jitter_stays_within_ten_percent_and_spreads() -> None:
    values = [ratelimit.jittered(60.0) for _ in range(2000)]
    assert all(54.0 <= v <= 66.0 for v in values)
    assert max(values) - min(values) > 10.0  # spread, not lockstep
    assert ratelimit.jittered(60.0, rand=lambda: 0.0) == 54.0
    assert ratelimit.jittered(60.0, rand=lambda: 1.0) == pytest.approx(66.0)
