"""The node's ``v1`` Node: registered when the agent starts and heart-beaten while it runs, as the kubelet's
``kubelet_node_status.go`` does (``registerWithAPIServer``, ``updateNodeStatus``).

What the agent writes:

- ``metadata.labels``: ``kubernetes.io/hostname``, ``kubernetes.io/os`` (``linux``), ``kubernetes.io/arch`` (Go's
  name of this machine: ``amd64``, ``arm64``) and ``dockyard.dev/nodename``, all added to the labels the Node
  already has (none removed; an administrator's labels and ``spec.unschedulable`` survive a restart).
- ``status``: ``addresses`` (InternalIP ``127.0.0.1``, Hostname), ``nodeInfo`` (kubelet version
  ``dockyard-<version>``, container runtime ``podman://X`` or ``docker://X`` from the engine's ``/version``,
  ``/etc/os-release`` ``PRETTY_NAME``, ``uname -r``, machine, system and boot IDs where readable),
  ``capacity`` = ``allocatable`` (``cpu``: ``os.cpu_count()``, ``memory``: ``MemTotal`` of ``/proc/meminfo`` in Ki,
  ``pods``: 110, the kubelet's ``maxPods``), ``daemonEndpoints.kubeletEndpoint.Port`` 0 (the agent serves no TCP
  endpoint: the API server reaches container logs over a Unix socket), and the conditions ``MemoryPressure``,
  ``DiskPressure``, ``PIDPressure`` (``False``; the agent evicts nothing) and ``Ready`` (``True``,
  ``KubeletReady``; ``False``, ``KubeletNotReady``, "container runtime is down: ..." while the engine does not
  answer its ping at a heartbeat).
- every :data:`HEARTBEAT_PERIOD` seconds (the kubelet's ``nodeStatusUpdateFrequency``), from its own thread, a
  JSON merge patch of ``status.conditions`` through ``nodes/status``: each condition's ``lastHeartbeatTime``
  advances, ``lastTransitionTime`` changes only with its status.
- on a clean stop, ``Ready`` ``Unknown`` (reason ``NodeStatusUnknown``, "Kubelet stopped posting node status."):
  what Kubernetes' node lifecycle controller writes 40 s after the heartbeats stop. dockyard runs no such
  controller, so after a crash of the agent the Node keeps its last heartbeat, which ``kubectl describe node``
  shows; nothing derives Ready from its age.

The agent reads back ``spec.unschedulable`` (``kubectl cordon``) with each heartbeat; the pod worker then binds
no new pod (:attr:`NodeStatusReporter.unschedulable`).

Only through the client layer (the node identity may create, update and patch its own Node and nothing else).
"""

from __future__ import annotations

import logging
import os
import platform
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightkube import ApiError
from lightkube.types import PatchType

import dockyard
from dockyard.api import labels as well_known
from dockyard.api import timefmt
from dockyard.client import resources
from dockyard.client.connection import Connection

log = logging.getLogger(__name__)

HEARTBEAT_PERIOD = 10.0
"""Seconds between status updates (kubelet ``nodeStatusUpdateFrequency``)."""
TIMEOUT = 5.0
"""Seconds one request to the API server may take (a heartbeat never blocks longer)."""
MAX_PODS = "110"
"""``capacity.pods``: the kubelet's default ``maxPods`` (the agent enforces no limit of its own)."""
INTERNAL_IP = "127.0.0.1"
"""The node's InternalIP: pods publish on loopback."""

READY = "Ready"
PRESSURES = ("MemoryPressure", "DiskPressure", "PIDPressure")
REASONS = {
    READY: ("KubeletReady", "kubelet is posting ready status"),
    "MemoryPressure": ("KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    "DiskPressure": ("KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    "PIDPressure": ("KubeletHasSufficientPID", "kubelet has sufficient PID available"),
}
"""Each condition's reason and message while the agent runs (the kubelet's ``setNode*Condition``)."""
STOPPED_REASON = "NodeStatusUnknown"
STOPPED_MESSAGE = "Kubelet stopped posting node status."

_GOARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "i686": "386", "i386": "386"}


# ------------------------------------------------------------------ facts (pure parsing; gather() reads them)


@dataclass(frozen=True, kw_only=True)
class NodeFacts:
    """What the node reports about itself (read once at start)."""

    node_name: str
    architecture: str
    os_image: str
    kernel_version: str
    runtime_version: str
    kubelet_version: str
    cpu: int
    memory_ki: int
    machine_id: str = ""
    system_uuid: str = ""
    boot_id: str = ""


def goarch(machine: str) -> str:
    """Go's ``GOARCH`` name of ``uname -m`` (``x86_64`` → ``amd64``, ``aarch64`` → ``arm64``, ``armv7l`` → ``arm``)."""
    m = machine.lower()
    return _GOARCH.get(m) or ("arm" if m.startswith("arm") else m)


def runtime_version(version: Mapping[str, Any]) -> str:
    """``containerRuntimeVersion`` from the engine's ``GET /version``: ``podman://4.3.1`` if a Podman component is
    listed, else ``docker://<Version>``."""
    for component in version.get("Components") or []:
        if isinstance(component, Mapping) and "podman" in str(component.get("Name", "")).lower():
            return f"podman://{component.get('Version') or version.get('Version') or 'unknown'}"
    return f"docker://{version.get('Version') or 'unknown'}"


def pretty_name(os_release: str) -> str:
    """``PRETTY_NAME`` of an ``/etc/os-release`` text, unquoted (``Linux`` if absent)."""
    for line in os_release.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "PRETTY_NAME" and value.strip():
            return value.strip().strip("\"'")
    return "Linux"


def meminfo_ki(meminfo: str) -> int:
    """``MemTotal`` of a ``/proc/meminfo`` text in KiB (0 if absent)."""
    for line in meminfo.splitlines():
        key, _, value = line.partition(":")
        if key == "MemTotal":
            number = value.split()[0] if value.split() else ""
            return int(number) if number.isdigit() else 0
    return 0


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace").strip()
    except OSError:
        return ""


def gather(node_name: str, engine_client: Any) -> NodeFacts:
    """Read this machine's facts: ``uname``, ``/etc/os-release``, ``/proc/meminfo``, the engine's version."""
    try:
        engine_version = engine_client.version()
    except Exception as err:  # the engine answered at start; a version is not worth failing for
        log.warning("node status: engine version unknown: %s", err)
        engine_version = {}
    uname = os.uname()
    return NodeFacts(
        node_name=node_name,
        architecture=goarch(platform.machine() or uname.machine),
        os_image=pretty_name(_read("/etc/os-release") or _read("/usr/lib/os-release")),
        kernel_version=uname.release,
        runtime_version=runtime_version(engine_version if isinstance(engine_version, Mapping) else {}),
        kubelet_version=f"dockyard-{dockyard.__version__}",
        cpu=os.cpu_count() or 1,
        memory_ki=meminfo_ki(_read("/proc/meminfo")),
        machine_id=_read("/etc/machine-id"),
        system_uuid=_read("/sys/class/dmi/id/product_uuid").lower(),
        boot_id=_read("/proc/sys/kernel/random/boot_id"),
    )


# ------------------------------------------------------------------ the object (pure)


def node_labels(facts: NodeFacts) -> dict[str, str]:
    """The labels the agent sets on its Node (the kubelet's ``initialNode`` labels, and dockyard's own)."""
    return {
        well_known.HOSTNAME: facts.node_name,
        well_known.OS: "linux",
        well_known.ARCH: facts.architecture,
        well_known.NODE_NAME: facts.node_name,
    }


def _condition(type_: str, status: str, reason: str, message: str, *, now: str, previous: list[Any]) -> dict[str, Any]:
    before = next((c for c in previous if isinstance(c, dict) and c.get("type") == type_), None)
    transition = before.get("lastTransitionTime") if before and before.get("status") == status else None
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastHeartbeatTime": now,
        "lastTransitionTime": transition or now,
    }


NOT_READY_REASON = "KubeletNotReady"
"""Ready's reason while the container runtime does not answer (kubelet ``setNodeReadyCondition``)."""


def conditions(*, now: str, previous: list[Any], runtime_error: str | None = None) -> list[dict[str, Any]]:
    """The conditions of a running agent at ``now``; ``lastTransitionTime`` kept from ``previous`` where the status
    is the same. With ``runtime_error`` (the engine did not answer its ping): Ready ``False``, reason
    :data:`NOT_READY_REASON`, "container runtime is down: ERROR", as the kubelet reports a runtime that is down."""
    out = [_condition(t, "False", *REASONS[t], now=now, previous=previous) for t in PRESSURES]
    if runtime_error is None:
        out.append(_condition(READY, "True", *REASONS[READY], now=now, previous=previous))
    else:
        message = f"container runtime is down: {runtime_error}"
        out.append(_condition(READY, "False", NOT_READY_REASON, message, now=now, previous=previous))
    return out


def stopped_conditions(*, now: str, previous: list[Any]) -> list[dict[str, Any]]:
    """``previous`` with ``Ready`` ``Unknown`` (``NodeStatusUnknown``) as of ``now``; the last heartbeat stands."""
    out = []
    for cond in previous:
        if isinstance(cond, dict) and cond.get("type") == READY:
            transition = cond.get("lastTransitionTime") if cond.get("status") == "Unknown" else now
            cond = dict(
                cond, status="Unknown", reason=STOPPED_REASON, message=STOPPED_MESSAGE, lastTransitionTime=transition
            )
        out.append(cond)
    return out


def node_status(facts: NodeFacts, *, now: str, previous: list[Any]) -> dict[str, Any]:
    """The whole ``status`` the agent writes."""
    capacity = {"cpu": str(facts.cpu), "memory": f"{facts.memory_ki}Ki", "pods": MAX_PODS}
    return {
        "capacity": capacity,
        "allocatable": dict(capacity),
        "conditions": conditions(now=now, previous=previous),
        "addresses": [{"type": "InternalIP", "address": INTERNAL_IP}, {"type": "Hostname", "address": facts.node_name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
        "nodeInfo": {
            "machineID": facts.machine_id,
            "systemUUID": facts.system_uuid,
            "bootID": facts.boot_id,
            "kernelVersion": facts.kernel_version,
            "osImage": facts.os_image,
            "containerRuntimeVersion": facts.runtime_version,
            "kubeletVersion": facts.kubelet_version,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": facts.architecture,
        },
    }


def node_object(facts: NodeFacts, *, now: str) -> dict[str, Any]:
    """The Node the agent registers."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": facts.node_name, "labels": node_labels(facts)},
        "spec": {},
        "status": node_status(facts, now=now, previous=[]),
    }


def _now() -> str:
    return timefmt.now()


# ------------------------------------------------------------------ the reporter (I/O)


class NodeStatusReporter:
    """Registers this node's Node, then heart-beats its status on its own thread.

    Args:
        conn: the node identity's connection.
        node_name: the Node's name.
        engine_client: the engine's ``docker.DockerClient`` (its ``version()`` names the runtime).
        period: seconds between heartbeats.
    """

    def __init__(
        self, conn: Connection, *, node_name: str, engine_client: Any, period: float = HEARTBEAT_PERIOD
    ) -> None:
        self.node = node_name
        self.period = period
        self._conn = conn
        self._engine = engine_client
        self._api: Any = None
        self._facts: NodeFacts | None = None
        self._conditions: list[dict[str, Any]] = []
        self._lock = threading.Lock()  # one write at a time; none after stopped()
        self._stopped = False
        self._registered = False
        self.unschedulable = False
        """``spec.unschedulable`` as last read (``kubectl cordon``): the pod worker binds no new pod while set."""

    def _client(self) -> Any:
        if self._api is None:
            self._api = self._conn.lightkube(timeout=TIMEOUT)
        return self._api

    def _seen(self, obj: Any) -> None:
        node = resources.as_dict(obj)
        self.unschedulable = (node.get("spec") or {}).get("unschedulable") is True
        written = (node.get("status") or {}).get("conditions")
        if isinstance(written, list):
            self._conditions = [c for c in written if isinstance(c, dict)]

    def register(self) -> None:
        """Create the Node if missing, else add the agent's labels to it; then write the whole status.

        Raises:
            lightkube.ApiError: the API refused (the caller retries).
        """
        with self._lock:
            if self._stopped:
                return
            if self._facts is None:
                self._facts = gather(self.node, self._engine)
            api, node_kind = self._client(), resources.resource("Node")
            wanted = node_object(self._facts, now=_now())
            try:
                current = resources.as_dict(api.get(node_kind, self.node))
            except ApiError as err:
                if err.status.code != 404:
                    raise
                try:
                    current = resources.as_dict(api.create(node_kind.from_dict(wanted)))
                    log.info("node status: registered node %s", self.node)
                except ApiError as err:
                    if err.status.code != 409:
                        raise
                    current = resources.as_dict(api.get(node_kind, self.node))
            labels = (current.get("metadata") or {}).get("labels") or {}
            missing = {k: v for k, v in wanted["metadata"]["labels"].items() if labels.get(k) != v}
            if missing:
                current = resources.as_dict(
                    api.patch(node_kind, self.node, {"metadata": {"labels": missing}}, patch_type=PatchType.MERGE)
                )
            self._seen(current)
            status = node_status(self._facts, now=_now(), previous=self._conditions)
            self._seen(api.patch(node_kind.Status, self.node, {"status": status}, patch_type=PatchType.MERGE))
            self._registered = True

    def heartbeat(self) -> None:
        """Advance the conditions' ``lastHeartbeatTime`` (a merge patch of ``status.conditions``); register
        again if the Node is gone.

        Raises:
            lightkube.ApiError: the API refused (the next heartbeat tries again).
        """
        if not self._registered:
            self.register()
            return
        with self._lock:
            if self._stopped:
                return
            down = self._runtime_error()
            if down is not None:
                log.warning("node status: the container runtime does not answer: %s", down)
            patch = {"status": {"conditions": conditions(now=_now(), previous=self._conditions, runtime_error=down)}}
            try:
                self._seen(
                    self._client().patch(
                        resources.resource("Node").Status, self.node, patch, patch_type=PatchType.MERGE
                    )
                )
            except ApiError as err:
                if err.status.code != 404:
                    raise
                self._registered = False  # deleted: register again next time
                log.warning("node status: node %s was deleted; registering it again", self.node)

    def _runtime_error(self) -> str | None:
        """Why the engine does not answer ``GET /_ping`` (kubelet: the runtime's status), or None if it does."""
        try:
            self._engine.ping()
        except Exception as err:  # any failure to answer is a runtime that is down
            return str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        return None

    def start(self, stop: threading.Event) -> list[threading.Thread]:
        """Register and heart-beat on a daemon thread until ``stop`` is set."""
        thread = threading.Thread(target=self._run, args=(stop,), daemon=True, name="node-status")
        thread.start()
        return [thread]

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.heartbeat()
            except Exception as err:  # the API server restarting, a timeout: the next period tries again
                log.warning("node status: update of node %s failed: %s", self.node, err)
            stop.wait(self.period)

    def stopped(self) -> None:
        """Mark the Node ``Ready`` ``Unknown`` on a clean stop, and write nothing afterwards (bounded by
        :data:`TIMEOUT`; a failure is logged)."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            if not self._registered or not self._conditions:
                return
            patch = {"status": {"conditions": stopped_conditions(now=_now(), previous=self._conditions)}}
            try:
                self._client().patch(resources.resource("Node").Status, self.node, patch, patch_type=PatchType.MERGE)
            except Exception as err:
                log.warning("node status: could not mark node %s stopped: %s", self.node, err)
