"""Leader election with a ``coordination.k8s.io/v1`` Lease, as client-go's ``tools/leaderelection`` does it.

Several replicas of ``dockyard controllers`` (the Deployment of ``dockyard manifests kubernetes`` runs two)
compete for one Lease; only its holder runs controllers. The algorithm is client-go's
(``leaderelection.go``, ``resourcelock/leaselock.go``), with the same defaults as kube-controller-manager
(``--leader-elect-lease-duration=15s``, ``--leader-elect-renew-deadline=10s``,
``--leader-elect-retry-period=2s``):

- **acquire**: every ``retry_period`` (jittered by up to x1.2), read the Lease. Nobody holds it, or the
  record has not changed for ``lease_duration`` *as observed by this process's own monotonic clock* (not
  the holder's ``renewTime``, so clock skew between nodes cannot make two leaders): write it with our
  identity, ``acquireTime``/``renewTime`` now and ``leaseTransitions`` + 1.
- **renew**: every ``retry_period`` the leader writes ``renewTime``. If no renewal succeeds for
  ``renew_deadline`` the leader has lost the lease and must stop acting at once (kube-controller-manager
  exits: ``leaderelection lost``); ``renew_deadline < lease_duration`` leaves the others' wait as margin.
- Every write is an update with the ``resourceVersion`` that was read (optimistic concurrency, API
  conventions "Concurrency Control and Consistency"): a 409 Conflict means someone else wrote first, and
  this attempt failed. A Lease that does not exist yet is created; a 409 AlreadyExists also means we lost.
- **release** (client-go's ``ReleaseOnCancel``): on a graceful stop the leader clears ``holderIdentity``
  and sets ``leaseDurationSeconds`` to 1, so another replica takes over at once instead of after
  ``lease_duration``.

A takeover after the leader dies therefore takes between ``lease_duration`` and
``lease_duration + retry_period * 1.2`` plus a request's time.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from lightkube import ApiError
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease

from dockyard.client.connection import UNANSWERED, Connection

_RELEASE_ERRORS: tuple[type[Exception], ...] = (ApiError, *UNANSWERED)

log = logging.getLogger(__name__)

JITTER_FACTOR = 1.2
"""client-go's ``JitterFactor``: each wait between attempts is ``retry_period * (1 + random() * 0.2)``."""

DEFAULT_LEASE_DURATION = 15.0
DEFAULT_RENEW_DEADLINE = 10.0
DEFAULT_RETRY_PERIOD = 2.0
DEFAULT_RESOURCE_NAME = "dockyard-controllers"
"""The Lease of ``dockyard controllers`` (kube-controller-manager's is ``kube-controller-manager``)."""
DEFAULT_RESOURCE_NAMESPACE = "kube-system"
"""kube-controller-manager's default ``--leader-elect-resource-namespace``."""


class InvalidConfig(ValueError):
    """Durations that cannot work (the checks of client-go's ``NewLeaderElector``)."""


@dataclass(frozen=True, kw_only=True)
class Config:
    """What to elect on and how fast.

    Attributes:
        name: the Lease's ``metadata.name``.
        namespace: the Lease's namespace.
        identity: this candidate's ``holderIdentity`` (unique per process: :func:`default_identity`).
        lease_duration: seconds a non-leader waits after last seeing the record change before it takes over.
        renew_deadline: seconds the leader keeps retrying a renewal before it gives up leadership.
        retry_period: seconds between attempts to acquire or renew.
    """

    name: str = DEFAULT_RESOURCE_NAME
    namespace: str = DEFAULT_RESOURCE_NAMESPACE
    identity: str
    lease_duration: float = DEFAULT_LEASE_DURATION
    renew_deadline: float = DEFAULT_RENEW_DEADLINE
    retry_period: float = DEFAULT_RETRY_PERIOD

    def check(self) -> None:
        """Raise :class:`InvalidConfig` naming the flag's rule (client-go ``NewLeaderElector``):
        ``lease_duration > renew_deadline > retry_period * 1.2``, all positive, identity and name set."""
        if self.lease_duration <= self.renew_deadline:
            raise InvalidConfig("leaseDuration must be greater than renewDeadline")
        if self.renew_deadline <= JITTER_FACTOR * self.retry_period:
            raise InvalidConfig("renewDeadline must be greater than retryPeriod*JitterFactor (1.2)")
        if self.lease_duration < 1:
            raise InvalidConfig("leaseDuration must be at least 1s (Lease.spec.leaseDurationSeconds is whole seconds)")
        if self.retry_period <= 0:
            raise InvalidConfig("retryPeriod must be greater than zero")
        if not self.identity:
            raise InvalidConfig("Lock identity is empty")
        if not self.name or not self.namespace:
            raise InvalidConfig("the Lease needs a name and a namespace")


def default_identity() -> str:
    """``<hostname>_<uuid4>``, the identity kube-controller-manager uses (unique even for two processes on
    one host)."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class LeaderElector:
    """One candidate. :meth:`acquire` blocks until it leads (or ``stop``); :meth:`hold` renews until the
    lease is lost (or ``stop``); :meth:`release` hands it over. Single-threaded: call from one thread.

    Raises:
        InvalidConfig: from the constructor, for durations that cannot work.
    """

    def __init__(self, conn: Connection, config: Config, *, clock: Callable[[], float] = time.monotonic) -> None:
        config.check()
        self.config = config
        self._clock = clock
        # every request must end well within the renew deadline
        self._api = conn.lightkube(timeout=max(1.0, min(config.retry_period * 2, config.renew_deadline / 2)))
        self._observed: tuple[str | None, dt.datetime | None, int | None] | None = None
        self._observed_at = 0.0
        self._last_renew = 0.0
        self.is_leader = False

    # --- one attempt ---------------------------------------------------------------------------------

    def try_acquire_or_renew(self) -> bool:
        """One attempt (client-go ``tryAcquireOrRenew``): True if we hold the Lease now.

        Network errors and 409 Conflicts count as a failed attempt; other API errors too (logged).
        """
        try:
            return self._attempt()
        except ApiError as err:
            code = err.status.code
            if code == 409:
                log.debug(
                    "leader election: %s/%s was written by another candidate", self.config.namespace, self.config.name
                )
            else:
                log.warning(
                    "leader election: %s/%s: %s %s", self.config.namespace, self.config.name, code, err.status.message
                )
            return False
        except UNANSWERED as err:
            log.warning("leader election: cannot reach the API: %s", err)
            return False

    def _attempt(self) -> bool:
        cfg = self.config
        now, mono = _now(), self._clock()
        try:
            lease = self._api.get(Lease, cfg.name, namespace=cfg.namespace)
        except ApiError as err:
            if err.status.code != 404:
                raise
            self._api.create(
                Lease(
                    metadata=ObjectMeta(name=cfg.name, namespace=cfg.namespace),
                    spec=LeaseSpec(
                        holderIdentity=cfg.identity,
                        leaseDurationSeconds=round(cfg.lease_duration),
                        acquireTime=now,
                        renewTime=now,
                        leaseTransitions=0,
                    ),
                )
            )
            self._observe((cfg.identity, now, 0), mono)
            return True
        spec = lease.spec or LeaseSpec()
        record = (spec.holderIdentity, spec.renewTime, spec.leaseTransitions)
        if record != self._observed:
            self._observe(record, mono)
        holder = spec.holderIdentity
        duration = float(spec.leaseDurationSeconds or cfg.lease_duration)
        if holder and holder != cfg.identity and self._observed_at + duration > mono:
            return False  # held, and not yet expired as we observe it
        transitions = spec.leaseTransitions or 0
        if holder != cfg.identity:
            spec.acquireTime = now
            spec.leaseTransitions = transitions + 1
        spec.holderIdentity = cfg.identity
        spec.leaseDurationSeconds = round(cfg.lease_duration)
        spec.renewTime = now
        spec.preferredHolder = None
        lease.spec = spec
        # PUT with metadata.resourceVersion as read: 409 if anyone wrote since
        self._api.replace(lease)
        self._observe((cfg.identity, now, spec.leaseTransitions), mono)
        return True

    def _observe(self, record: tuple[str | None, dt.datetime | None, int | None], mono: float) -> None:
        self._observed, self._observed_at = record, mono

    # --- loops ---------------------------------------------------------------------------------------

    def _wait(self, stop: threading.Event) -> bool:
        """Wait one jittered retry period; True if ``stop`` was set."""
        return stop.wait(self.config.retry_period * (1 + random.random() * (JITTER_FACTOR - 1)))

    def acquire(self, stop: threading.Event) -> bool:
        """Block until this candidate holds the Lease (True) or ``stop`` is set (False)."""
        log.info(
            "leader election: %s trying to acquire lease %s/%s",
            self.config.identity,
            self.config.namespace,
            self.config.name,
        )
        while not stop.is_set():
            if self.try_acquire_or_renew():
                self.is_leader = True
                self._last_renew = self._clock()
                log.info(
                    "leader election: %s acquired lease %s/%s",
                    self.config.identity,
                    self.config.namespace,
                    self.config.name,
                )
                return True
            if self._observed and self._observed[0]:
                log.debug("leader election: lease held by %s", self._observed[0])
            if self._wait(stop):
                break
        return False

    def hold(self, stop: threading.Event) -> bool:
        """Renew every retry period until ``stop`` (returns False) or until no renewal has succeeded for
        ``renew_deadline`` seconds (returns True: leadership is lost and the caller must stop acting)."""
        while not self._wait(stop):
            if self.try_acquire_or_renew():
                self._last_renew = self._clock()
            elif self._clock() - self._last_renew >= self.config.renew_deadline:
                self.is_leader = False
                log.error(
                    "leader election lost: no renewal of %s/%s for %.1fs",
                    self.config.namespace,
                    self.config.name,
                    self._clock() - self._last_renew,
                )
                return True
        return False

    def release(self) -> bool:
        """Give the Lease up if we hold it (client-go ``release``): empty ``holderIdentity``,
        ``leaseDurationSeconds`` 1, so another candidate takes it at its next attempt. True if released."""
        if not self.is_leader:
            return False
        self.is_leader = False
        try:
            lease = self._api.get(Lease, self.config.name, namespace=self.config.namespace)
            if lease.spec is None or lease.spec.holderIdentity != self.config.identity:
                return False
            lease.spec.holderIdentity = None
            lease.spec.leaseDurationSeconds = 1
            lease.spec.renewTime = _now()
            lease.spec.acquireTime = None
            self._api.replace(lease)
        except _RELEASE_ERRORS as err:
            log.warning("leader election: release of %s/%s failed: %s", self.config.namespace, self.config.name, err)
            return False
        log.info(
            "leader election: %s released lease %s/%s", self.config.identity, self.config.namespace, self.config.name
        )
        return True
