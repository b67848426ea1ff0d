"""What every request handler shares: the store and the commit notifiers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from dockyard.apiserver.watch import Notifier
from dockyard.storage import sqlite


@dataclass(kw_only=True)
class ServerState:
    """Shared state of one API server.

    Attributes:
        store: the object store.
        ready: readiness probe for ``/readyz``.
        objects: notified after every commit that wrote objects (watches).
        activity: notified after every commit, objects or logs (log follow).
    """

    store: sqlite.Store
    ready: Callable[[], bool]
    objects: Notifier = field(default_factory=Notifier)
    activity: Notifier = field(default_factory=Notifier)

    def on_commit(self, topics: set[str]) -> None:
        """Store subscriber: wake the right notifiers (called on the writing thread)."""
        if "objects" in topics:
            self.objects.notify()
        self.activity.notify()
