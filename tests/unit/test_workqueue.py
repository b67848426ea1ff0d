"""The workqueue's client-go semantics (``util/workqueue``): every add is processed, exactly once
while it waits (adds of a queued key merge), never by two workers at once, again after ``done``
when re-added while processing; failures come back with exponential backoff, success forgets.

Every loop is bounded in count and time.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import Counter, defaultdict

import pytest

from dockyard.client.runtime import Controller, WorkQueue


def drain(q: WorkQueue, *, timeout: float = 0.05) -> list[str]:
    """Every key ``get`` hands out until it has nothing more (each marked ``done`` at once)."""
    out = []
    for _ in range(10_000):
        key = q.get(timeout=timeout)
        if key is None:
            return out
        out.append(key)
        q.done(key)
    raise AssertionError("the queue never ran dry")


def test_each_add_is_processed_once_and_queued_duplicates_merge() -> None:
    q = WorkQueue()
    for key in ("a", "b", "a", "c", "a", "b"):
        q.add(key)
    assert len(q) == 3
    assert drain(q) == ["a", "b", "c"]  # FIFO by first add, each once
    q.add("a")
    assert drain(q) == ["a"]  # a new add after processing: processed again, once


def test_a_key_re_added_while_processing_is_held_then_processed_once_after_done() -> None:
    q = WorkQueue()
    q.add("a")
    assert q.get(timeout=0.1) == "a"
    for _ in range(3):
        q.add("a")
    q.add_after("a", 0.01)
    time.sleep(0.02)  # let the delayed add come due while "a" is still processing
    assert q.get(timeout=0.05) is None  # never handed to a second worker while in flight
    q.add("b")
    assert q.get(timeout=0.1) == "b"  # other keys are not blocked
    q.done("b")
    q.done("a")
    assert drain(q) == ["a"]  # all the adds made while processing: one more run


def test_concurrent_workers_process_every_key_exactly_once_per_add_and_never_overlap() -> None:
    """Rounds of one add per key, 4 workers: each round processes each key exactly once."""
    q = WorkQueue()
    keys = [f"k{i}" for i in range(20)]
    lock = threading.Lock()
    in_flight: set[str] = set()
    overlaps: list[str] = []
    processed: Counter[str] = Counter()
    stop = threading.Event()

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            key = q.get(timeout=0.05)
            if key is None:
                continue
            with lock:
                if key in in_flight:
                    overlaps.append(key)
                in_flight.add(key)
            time.sleep(rng.random() * 0.001)
            with lock:
                in_flight.discard(key)
                processed[key] += 1
            q.done(key)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(4)]
    for t in threads:
        t.start()
    rounds = 25
    try:
        for r in range(1, rounds + 1):
            for key in keys:
                q.add(key)
            deadline = time.monotonic() + 5
            while True:
                with lock:
                    if all(processed[k] >= r for k in keys) and not in_flight:
                        break
                assert time.monotonic() < deadline, f"round {r}: not every key was processed"
                time.sleep(0.001)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=5)
    assert not overlaps
    assert processed == {k: rounds for k in keys}
    assert drain(q) == []  # nothing left over, nothing processed twice


def test_adds_racing_with_workers_are_never_lost_never_multiplied_never_overlap() -> None:
    """Producers add at random while workers process. For every key: each add is followed by
    a processing that starts after it, there are no more processings than adds, and no two
    processings of one key overlap."""
    q = WorkQueue()
    keys = [f"k{i}" for i in range(5)]
    lock = threading.Lock()
    clock = itertools.count()
    adds: dict[str, list[int]] = defaultdict(list)
    starts: dict[str, list[int]] = defaultdict(list)
    in_flight: set[str] = set()
    overlaps: list[str] = []
    stop = threading.Event()

    def producer(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(300):
            key = rng.choice(keys)
            with lock:
                adds[key].append(next(clock))  # stamped before the add: a run after it is a later stamp
            q.add(key)
            if rng.random() < 0.2:
                time.sleep(0.0005)

    def worker() -> None:
        while not stop.is_set():
            key = q.get(timeout=0.05)
            if key is None:
                continue
            with lock:
                starts[key].append(next(clock))
                if key in in_flight:
                    overlaps.append(key)
                in_flight.add(key)
            time.sleep(0.0002)
            with lock:
                in_flight.discard(key)
            q.done(key)

    workers = [threading.Thread(target=worker, daemon=True) for _ in range(4)]
    producers = [threading.Thread(target=producer, args=(i,), daemon=True) for i in range(3)]
    for t in workers + producers:
        t.start()
    for t in producers:
        t.join(timeout=10)
    deadline = time.monotonic() + 5
    while True:  # until every key's last add has a run that started after it
        with lock:
            caught_up = all(starts[k] and starts[k][-1] > adds[k][-1] for k in keys if adds[k]) and not in_flight
        if caught_up and len(q) == 0:
            break
        assert time.monotonic() < deadline, "some adds were never processed"
        time.sleep(0.005)
    stop.set()
    for t in workers:
        t.join(timeout=5)
    assert not overlaps
    for key in keys:
        for stamp in adds[key]:
            assert any(s > stamp for s in starts[key]), f"{key}: the add at {stamp} was lost"
        assert len(starts[key]) <= len(adds[key])
    assert sum(len(v) for v in starts.values()) < sum(len(v) for v in adds.values())  # adds did merge


def test_re_adds_made_while_processing_give_exactly_one_more_run_each_time() -> None:
    """As a controller whose own writes echo back: every run re-adds its key twice while in
    flight (until a budget is spent). Each run's re-adds merge into exactly one later run."""
    q = WorkQueue()
    keys = [f"k{i}" for i in range(5)]
    budget = dict.fromkeys(keys, 30)
    lock = threading.Lock()
    runs: Counter[str] = Counter()
    in_flight: set[str] = set()
    overlaps: list[str] = []
    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            key = q.get(timeout=0.05)
            if key is None:
                continue
            with lock:
                if key in in_flight:
                    overlaps.append(key)
                in_flight.add(key)
                runs[key] += 1
                again = budget[key] > 0
                budget[key] -= again
            if again:
                q.add(key)
                q.add(key)
            time.sleep(0.0002)
            with lock:
                in_flight.discard(key)
            q.done(key)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(4)]
    for key in keys:
        q.add(key)
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    while True:
        with lock:
            if all(budget[k] == 0 for k in keys) and not in_flight and len(q) == 0:
                break
        assert time.monotonic() < deadline, f"re-adds were lost: {dict(runs)}"
        time.sleep(0.005)
    stop.set()
    for t in threads:
        t.join(timeout=5)
    assert not overlaps
    assert runs == dict.fromkeys(keys, 31)
    assert drain(q) == []


def test_backoff_doubles_per_failure_up_to_the_cap_and_forget_resets() -> None:
    q = WorkQueue(base_delay=0.01, max_delay=0.05)
    assert [q.add_rate_limited("k") for _ in range(5)] == [0.01, 0.02, 0.04, 0.05, 0.05]
    assert q.add_rate_limited("other") == 0.01  # per key
    q.forget("k")
    assert q.add_rate_limited("k") == 0.01


def test_a_rate_limited_key_comes_back_after_its_delay_once() -> None:
    q = WorkQueue(base_delay=0.1)
    started = time.monotonic()
    q.add_rate_limited("k")
    q.add_rate_limited("k")  # a second failure before the first retry: still one retry
    assert q.get(timeout=0.05) is None
    assert q.get(timeout=2) == "k"
    assert time.monotonic() - started >= 0.09
    q.done("k")
    assert drain(q, timeout=0.3) == ["k"]  # the second, longer backoff: one more run, then nothing


def test_add_after_delivers_no_sooner_and_merges_with_a_queued_key() -> None:
    q = WorkQueue()
    started = time.monotonic()
    q.add_after("x", 0.1)
    q.add("y")
    assert q.get(timeout=1) == "y"
    q.done("y")
    assert q.get(timeout=1) == "x"
    assert time.monotonic() - started >= 0.09
    q.done("x")
    q.add("z")
    q.add_after("z", 0.01)  # due while "z" is still queued: merged
    time.sleep(0.02)
    assert drain(q) == ["z"]


def test_shutdown_releases_waiting_workers() -> None:
    q = WorkQueue()
    got: list[str | None] = []
    t = threading.Thread(target=lambda: got.append(q.get(timeout=10)))
    t.start()
    time.sleep(0.05)
    started = time.monotonic()
    q.shutdown()
    t.join(timeout=2)
    assert got == [None] and time.monotonic() - started < 1


class Flaky(Controller):
    """Fails ``failures`` times, then succeeds; records when each reconcile ran."""

    name = "flaky"

    def __init__(self, failures: int) -> None:
        super().__init__(conn=None, workers=1)  # type: ignore[arg-type] — no API calls here
        self.queue = WorkQueue(base_delay=0.05)
        self.failures = failures
        self.runs: list[float] = []

    def reconcile(self, key: str) -> float | None:
        self.runs.append(time.monotonic())
        if len(self.runs) <= self.failures:
            raise RuntimeError("transient")
        return None


@pytest.mark.filterwarnings("ignore")
def test_controller_retries_failures_with_backoff_and_forgets_on_success(caplog: pytest.LogCaptureFixture) -> None:
    ctl = Flaky(failures=3)
    stop = threading.Event()
    worker = threading.Thread(target=ctl._work, args=(stop,), daemon=True)
    worker.start()
    try:
        ctl.queue.add("ns/a")
        deadline = time.monotonic() + 5
        while len(ctl.runs) < 4:
            assert time.monotonic() < deadline, f"only {len(ctl.runs)} runs"
            time.sleep(0.01)
        time.sleep(0.3)  # would a success requeue? (it must not)
    finally:
        stop.set()
        ctl.queue.shutdown()
        worker.join(timeout=5)
    assert len(ctl.runs) == 4
    gaps = [b - a for a, b in itertools.pairwise(ctl.runs)]
    for gap, delay in zip(gaps, (0.05, 0.1, 0.2), strict=True):
        assert gap >= delay * 0.9, gaps
    assert ctl.queue.add_rate_limited("ns/a") == 0.05  # the success forgot the failures
    assert "reconcile ns/a failed" in caplog.text
