"""How a controller's worker (:meth:`dockyard.client.runtime.Controller._work`) reports a reconcile that failed:
a server or engine that does not answer is one warning line (a dead Podman service made 116 tracebacks in 15 s),
a bug keeps its traceback; both are retried."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from dockyard.client import runtime


class _Failing(runtime.Controller):
    name = "failing"

    def __init__(self, error: Exception) -> None:
        super().__init__(conn=None)  # type: ignore[arg-type]  # no API: the worker alone is under test
        self.error, self.stop = error, threading.Event()

    def wait_for_cache_sync(self, stop: threading.Event, warn_after: float = 0.0) -> bool:
        return True

    def reconcile(self, key: str) -> float | None:
        self.stop.set()
        raise self.error


def _run(error: Exception, caplog: pytest.LogCaptureFixture) -> tuple[list[logging.LogRecord], Any]:
    ctrl = _Failing(error)
    ctrl.queue.add("ns/obj")
    with caplog.at_level(logging.INFO, logger="dockyard.client.runtime"):
        ctrl._work(ctrl.stop)
    return [r for r in caplog.records if "reconcile ns/obj" in r.getMessage()], ctrl


def test_an_engine_that_refuses_connections_is_one_line_and_retried(caplog: pytest.LogCaptureFixture) -> None:
    records, ctrl = _run(ConnectionRefusedError(111, "Connection refused"), caplog)
    assert len(records) == 1 and records[0].levelno == logging.WARNING and not records[0].exc_info
    assert "Connection refused" in records[0].getMessage()
    assert ctrl.queue._failures == {"ns/obj": 1}  # requeued with back-off


def test_a_bug_keeps_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    records, _ = _run(KeyError("spec"), caplog)
    assert len(records) == 1 and records[0].levelno == logging.ERROR and records[0].exc_info is not None
