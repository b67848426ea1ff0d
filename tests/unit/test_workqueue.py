"""The workqueue's client-go semantics: dedupe, one worker per key, backoff."""

import threading
import time

from dockyard.client.runtime import WorkQueue


def test_dedupes_queued_keys():
    q = WorkQueue()
    q.add("a")
    q.add("a")
    q.add("b")
    assert len(q) == 2


def test_key_in_flight_is_not_handed_out_twice_but_requeued_after_done():
    q = WorkQueue()
    q.add("a")
    assert q.get(timeout=0.1) == "a"
    q.add("a")  # while processing
    assert q.get(timeout=0.05) is None
    q.done("a")
    assert q.get(timeout=0.1) == "a"


def test_backoff_grows_and_forget_resets():
    q = WorkQueue(base_delay=0.01, max_delay=1)
    delays = [q.add_rate_limited("k") for _ in range(4)]
    assert delays == [0.01, 0.02, 0.04, 0.08]
    q.forget("k")
    assert q.add_rate_limited("k") == 0.01


def test_add_after_delays():
    q = WorkQueue()
    started = time.monotonic()
    q.add_after("x", 0.1)
    assert q.get(timeout=1) == "x"
    assert time.monotonic() - started >= 0.09


def test_concurrent_workers_never_share_a_key():
    q = WorkQueue()
    active: set[str] = set()
    clash = []
    lock = threading.Lock()

    def worker():
        for _ in range(200):
            k = q.get(timeout=0.05)
            if k is None:
                return
            with lock:
                if k in active:
                    clash.append(k)
                active.add(k)
            time.sleep(0.0005)
            with lock:
                active.discard(k)
            q.done(k)

    for i in range(300):
        q.add(f"k{i % 5}")
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(300):
        q.add(f"k{i % 5}")
    for t in threads:
        t.join(5)
    assert not clash
