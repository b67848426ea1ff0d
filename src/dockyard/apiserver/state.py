"""What every request handler shares: the store, the commit notifiers and the stop signal."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.api import archive
from dockyard.apiserver.admission import PodSecurity
from dockyard.apiserver.cacher import Cacher
from dockyard.apiserver.inflight import Limits
from dockyard.apiserver.metrics import Metrics
from dockyard.apiserver.watch import Notifier
from dockyard.apiserver.writes import GroupCommit
from dockyard.storage import sqlite


@dataclass(kw_only=True)
class ServerState:
    """Shared state of one API server.

    Attributes:
        store: the object store.
        context_limits: bounds of an uploaded build context (``instantiatebinary``).
        ready: readiness probe for ``/readyz``.
        objects: notified after every commit that wrote objects (watches).
        activity: notified after every commit, objects or logs (log follow).
        pod_security: Pod Security admission (:mod:`dockyard.apiserver.admission`).
        stopping: set when the server begins to shut down; long-running
            responses (watches, ``follow=true`` logs) end at once when it is set,
            so the server's graceful shutdown never waits on them.
        long_running: bounds on concurrent watches and followed logs.
        metrics: the Prometheus metrics served at ``/metrics``.
        cacher: the watch cache (:mod:`.cacher`) serving watches, gets and lists; ``None``: all from the store.
        node_logs: node name -> the Unix socket its agent serves container logs on (:mod:`.podlogs`).
        writes: creates, updates and patches on the event loop with group commit (:mod:`.writes`); ``None``:
            each on a worker thread.
    """

    store: sqlite.Store
    ready: Callable[[], bool]
    context_limits: archive.Limits = field(default_factory=archive.Limits)
    objects: Notifier = field(default_factory=Notifier)
    activity: Notifier = field(default_factory=Notifier)
    pod_security: PodSecurity = field(default_factory=PodSecurity)
    stopping: threading.Event = field(default_factory=threading.Event)
    long_running: Limits = field(default_factory=Limits)
    metrics: Metrics = field(default_factory=Metrics)
    cacher: Cacher | None = None
    writes: GroupCommit | None = None
    node_logs: Mapping[str, Path] = field(default_factory=dict)

    def on_commit(self, topics: set[str]) -> None:
        """Store subscriber: wake the right notifiers (called on the writing thread)."""
        if "objects" in topics:
            self.objects.notify()
        self.activity.notify()

    def stop(self) -> None:
        """Begin shutdown: set :attr:`stopping` and wake every waiting stream (any thread)."""
        self.stopping.set()
        if self.cacher is not None:
            self.cacher.stop()
        self.objects.notify()
        self.activity.notify()
