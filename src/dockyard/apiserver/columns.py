"""What ``kubectl get`` prints for each kind: Table column definitions and cells. Pure.

The columns are the ones users know from elsewhere:

- core and apps kinds: the apiserver's own printers
  (``pkg/printers/internalversion/printers.go``): Pod ``NAME READY STATUS
  RESTARTS AGE`` (wide: ``IP NODE``), Deployment ``NAME READY UP-TO-DATE
  AVAILABLE AGE``, ReplicaSet ``NAME DESIRED CURRENT READY AGE``, Event
  ``LAST SEEN TYPE REASON OBJECT MESSAGE``, Node ``NAME STATUS ROLES AGE VERSION`` (wide: ``INTERNAL-IP
  EXTERNAL-IP OS-IMAGE KERNEL-VERSION CONTAINER-RUNTIME``), Namespace, Secret;
- Build and BuildConfig: OpenShift's ``oc get builds`` / ``oc get bc``
  (``NAME TYPE FROM STATUS STARTED DURATION``, ``NAME TYPE FROM LATEST``),
  plus the short digest of a Build's output;
- Push, Image, ImageDeploy: name, what it acts on, its state, the digest.

A column with ``priority`` 1 is shown only by ``kubectl get -o wide``
(API concepts, "Receiving resources as Tables").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dockyard.api import labels as well_known
from dockyard.api import phases, timefmt

Obj = dict[str, Any]


@dataclass(frozen=True)
class Column:
    """One ``TableColumnDefinition`` plus how to compute its cell from an object."""

    name: str
    cell: Callable[[Obj], Any]
    type: str = "string"
    description: str = ""
    priority: int = 0
    format: str = ""

    def definition(self) -> Obj:
        """The ``TableColumnDefinition`` (``name``, ``type``, ``format``, ``description``, ``priority``)."""
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description or self.name,
            "priority": self.priority,
        }


def get(obj: Any, *path: str) -> Any:
    """``obj[path[0]][path[1]]...`` or ``None`` when any step is missing."""
    node = obj
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def parse_time(value: Any) -> dt.datetime | None:
    """An RFC 3339 timestamp as an aware datetime, or ``None``."""
    if not isinstance(value, str):
        return None
    try:
        return timefmt.parse_datetime(value)
    except ValueError:
        return None


def human_duration(seconds: float) -> str:
    """kubectl's short duration (``45s``, ``5m10s``, ``3h``, ``2d4h``, ``30d``)."""
    s = max(0, int(seconds))
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    d = h // 24
    if d < 8:
        return f"{d}d{h % 24}h" if h % 24 else f"{d}d"
    return f"{d}d"


def since(value: Any, *, now: dt.datetime | None = None) -> str:
    """Time since an RFC 3339 timestamp (``<unknown>`` if there is none)."""
    when = parse_time(value)
    if when is None:
        return "<unknown>"
    return human_duration(((now or dt.datetime.now(dt.UTC)) - when).total_seconds())


def short_digest(value: Any) -> str:
    """``sha256:`` and the first 12 hex digits of a digest (also inside ``repo@sha256:...``)."""
    if not isinstance(value, str) or not value:
        return ""
    repo, at, digest = value.rpartition("@")
    algo, _, hexpart = digest.partition(":")
    short = f"{algo}:{hexpart[:12]}" if hexpart else digest
    return f"{repo}@{short}" if at else short


def _text(*path: str) -> Callable[[Obj], str]:
    return lambda o: "" if get(o, *path) is None else str(get(o, *path))


def _int(*path: str) -> Callable[[Obj], int]:
    def cell(o: Obj) -> int:
        value = get(o, *path)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    return cell


def _condition(obj: Obj, type_: str) -> str:
    for cond in get(obj, "status", "conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == type_:
            return str(cond.get("status") or "Unknown")
    return "Unknown"


def _age(obj: Obj) -> str:
    return since(get(obj, "metadata", "creationTimestamp"))


# ------------------------------------------------------------------ core / apps


def pod_ready(obj: Obj) -> str:
    statuses = [s for s in get(obj, "status", "containerStatuses") or [] if isinstance(s, dict)]
    total = len(get(obj, "spec", "containers") or []) or len(statuses)
    return f"{sum(1 for s in statuses if s.get('ready'))}/{total}"


def pod_status(obj: Obj) -> str:
    """The STATUS column: Terminating, a container's waiting/terminated reason, else the phase."""
    if get(obj, "metadata", "deletionTimestamp"):
        return "Terminating"
    reason = get(obj, "status", "reason")
    if reason:
        return str(reason)
    shown = str(get(obj, "status", "phase") or "Pending")
    for cs in get(obj, "status", "containerStatuses") or []:
        if not isinstance(cs, dict):
            continue
        waiting = get(cs, "state", "waiting", "reason")
        terminated = get(cs, "state", "terminated")
        if waiting:
            return str(waiting)
        if isinstance(terminated, dict):
            shown = str(terminated.get("reason") or f"ExitCode:{terminated.get('exitCode', 0)}")
    return shown


def pod_restarts(obj: Obj) -> str:
    """``N`` or ``N (5m ago)`` (the last restart's time), as kubectl 1.32 prints it."""
    count, last = 0, None
    for cs in get(obj, "status", "containerStatuses") or []:
        if not isinstance(cs, dict):
            continue
        count += int(cs.get("restartCount") or 0)
        finished = parse_time(get(cs, "lastState", "terminated", "finishedAt"))
        if finished is not None and (last is None or finished > last):
            last = finished
    if count and last is not None:
        return f"{count} ({human_duration((dt.datetime.now(dt.UTC) - last).total_seconds())} ago)"
    return str(count)


def _containers(obj: Obj) -> list[Obj]:
    return [c for c in get(obj, "spec", "template", "spec", "containers") or [] if isinstance(c, dict)]


def _selector(obj: Obj) -> str:
    labels = get(obj, "spec", "selector", "matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in labels.items()) if isinstance(labels, dict) else ""


def event_last_seen(obj: Obj) -> str:
    """``5m`` or ``5m (x3 over 10m)``, as kubectl prints an Event's LAST SEEN."""
    last = get(obj, "lastTimestamp") or get(obj, "eventTime") or get(obj, "metadata", "creationTimestamp")
    first = get(obj, "firstTimestamp") or last
    count = get(obj, "count")
    if isinstance(count, int) and count > 1:
        return f"{since(last)} (x{count} over {since(first)})"
    return since(last)


def event_object(obj: Obj) -> str:
    """``kind/name`` of the involved object (kind lower-cased: ``build/hello-1``)."""
    kind = str(get(obj, "involvedObject", "kind") or "").lower()
    name = str(get(obj, "involvedObject", "name") or "")
    return f"{kind}/{name}" if kind else name


def _source(obj: Obj) -> str:
    component, host = get(obj, "source", "component") or "", get(obj, "source", "host") or ""
    return f"{component}, {host}" if host else str(component)


def _list_with_more(items: list[str], limit: int = 3) -> str:
    """kubectl's ``listWithMoreString``: the first three, ``+ N more...``, or ``<unset>``."""
    shown = ",".join(items[:limit])
    if len(items) > limit:
        return f"{shown} + {len(items) - limit} more..."
    return shown or "<unset>"


def service_cluster_ip(obj: Obj) -> str:
    ips = get(obj, "spec", "clusterIPs") or []
    return str(ips[0]) if isinstance(ips, list) and ips else str(get(obj, "spec", "clusterIP") or "<none>")


def service_external_ip(obj: Obj) -> str:
    """kubectl's ``getServiceExternalIP``: a LoadBalancer's ingress addresses or ``<pending>``; ``<none>``
    for the other types (dockyard refuses ``externalIPs``)."""
    if get(obj, "spec", "type") != "LoadBalancer":
        return "<none>"
    ingress = get(obj, "status", "loadBalancer", "ingress") or []
    ips = [str(i.get("ip") or i.get("hostname") or "") for i in ingress if isinstance(i, dict)]
    return ",".join(ip for ip in ips if ip) or "<pending>"


def service_ports(obj: Obj) -> str:
    """kubectl's ``makePortString``: ``80/TCP`` or ``80:30080/TCP`` with a node port."""
    out = []
    for port in get(obj, "spec", "ports") or []:
        if not isinstance(port, dict):
            continue
        protocol = port.get("protocol") or "TCP"
        node = port.get("nodePort")
        out.append(f"{port.get('port')}:{node}/{protocol}" if node else f"{port.get('port')}/{protocol}")
    return ",".join(out) or "<none>"


def _service_selector(obj: Obj) -> str:
    selector = get(obj, "spec", "selector") or {}
    return (
        ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        if isinstance(selector, dict) and selector
        else "<none>"
    )


def slice_ports(obj: Obj) -> str:
    """kubectl's ``formatDiscoveryPorts``."""
    ports = [p for p in obj.get("ports") or [] if isinstance(p, dict)]
    return _list_with_more([str(p.get("port") or p.get("name") or "*") for p in ports])


def slice_endpoints(obj: Obj) -> str:
    """kubectl's ``formatDiscoveryEndpoints``: every address of every endpoint."""
    addresses = [str(a) for e in obj.get("endpoints") or [] if isinstance(e, dict) for a in e.get("addresses") or []]
    return _list_with_more(addresses)


NODE_ROLE_PREFIX = well_known.NODE_ROLE_PREFIX
NODE_ROLE_LABEL = well_known.NODE_ROLE


def node_status(obj: Obj) -> str:
    """kube-apiserver's ``printNode`` STATUS: ``Ready`` if the Ready condition is ``True``, ``NotReady`` if it is
    anything else, ``Unknown`` if there is none; then ``SchedulingDisabled`` when ``spec.unschedulable``."""
    conditions = {
        str(c.get("type")): str(c.get("status")) for c in get(obj, "status", "conditions") or [] if isinstance(c, dict)
    }
    ready = conditions.get("Ready")
    shown = ["Unknown"] if ready is None else ["Ready" if ready == "True" else "NotReady"]
    if get(obj, "spec", "unschedulable") is True:
        shown.append("SchedulingDisabled")
    return ",".join(shown)


def node_roles(obj: Obj) -> str:
    """``findNodeRoles``: the suffix of each ``node-role.kubernetes.io/<role>`` label and the value of
    ``kubernetes.io/role``, sorted, or ``<none>``."""
    roles: set[str] = set()
    for key, value in (get(obj, "metadata", "labels") or {}).items():
        if key.startswith(NODE_ROLE_PREFIX) and key[len(NODE_ROLE_PREFIX) :]:
            roles.add(key[len(NODE_ROLE_PREFIX) :])
        elif key == NODE_ROLE_LABEL and value:
            roles.add(str(value))
    return ",".join(sorted(roles)) or "<none>"


def _node_address(type_: str) -> Callable[[Obj], str]:
    def cell(obj: Obj) -> str:
        for address in get(obj, "status", "addresses") or []:
            if isinstance(address, dict) and address.get("type") == type_:
                return str(address.get("address") or "")
        return "<none>"

    return cell


def _node_info(field: str) -> Callable[[Obj], str]:
    return lambda o: str(get(o, "status", "nodeInfo", field) or "<unknown>")


# ------------------------------------------------------------------ dockyard kinds


def build_from(obj: Obj) -> str:
    """OpenShift's FROM: the source type, ``Git@<commit>`` once the revision is known."""
    kind = str(get(obj, "spec", "source", "type") or "Git")
    commit = get(obj, "spec", "revision", "git", "commit")
    if kind == "Git" and isinstance(commit, str) and commit:
        return f"Git@{commit[:7]}"
    ref = get(obj, "spec", "source", "git", "ref")
    return f"{kind}@{ref}" if kind == "Git" and isinstance(ref, str) and ref else kind


def build_status(obj: Obj) -> str:
    """The phase, with the reason for a failure (``Failed (FetchSourceFailed)``), as ``oc`` prints it."""
    phase = str(get(obj, "status", "phase") or "New")
    reason = get(obj, "status", "reason")
    if phase in phases.BUILD_FAILED and reason:
        return f"{phase} ({reason})"
    return phase


def build_started(obj: Obj) -> str:
    start = get(obj, "status", "startTimestamp")
    return f"{since(start)} ago" if start else ""


def build_duration(obj: Obj) -> str:
    """``status.duration`` (nanoseconds) if set, else from start to completion or now."""
    duration = get(obj, "status", "duration")
    if isinstance(duration, (int, float)) and not isinstance(duration, bool) and duration > 0:
        return human_duration(duration / 1e9)
    start = parse_time(get(obj, "status", "startTimestamp"))
    if start is None:
        return ""
    end = parse_time(get(obj, "status", "completionTimestamp")) or dt.datetime.now(dt.UTC)
    return human_duration((end - start).total_seconds())


def image_tag(obj: Obj) -> str:
    tag = get(obj, "spec", "tag") or get(obj, "status", "latestTag")
    if tag:
        return str(tag)
    policy = get(obj, "spec", "policy")
    return f"<{next(iter(policy))}>" if isinstance(policy, dict) and policy else "latest"


NAME = Column(
    "Name",
    lambda o: str(get(o, "metadata", "name") or ""),
    format="name",
    description="Name must be unique within a namespace.",
)
AGE = Column("Age", _age, description="Time since the object was created (metadata.creationTimestamp).")

COLUMNS: dict[str, list[Column]] = {
    "Pod": [
        NAME,
        Column("Ready", pod_ready, description="Ready containers / all containers."),
        Column("Status", pod_status, description="The pod's phase or the reason it is not running."),
        Column("Restarts", pod_restarts, description="Container restarts, and when the last one was."),
        AGE,
        Column("IP", _text("status", "podIP"), priority=1, description="The pod's IP address."),
        Column("Node", _text("spec", "nodeName"), priority=1, description="The node the pod is bound to."),
    ],
    "Deployment": [
        NAME,
        Column(
            "Ready",
            lambda o: f"{get(o, 'status', 'readyReplicas') or 0}/{get(o, 'spec', 'replicas') or 0}",
            description="Ready replicas / desired replicas.",
        ),
        Column(
            "Up-to-date",
            _int("status", "updatedReplicas"),
            type="integer",
            description="Replicas of the current pod template.",
        ),
        Column(
            "Available", _int("status", "availableReplicas"), type="integer", description="Replicas available to users."
        ),
        AGE,
        Column("Containers", lambda o: ",".join(str(c.get("name", "")) for c in _containers(o)), priority=1),
        Column("Images", lambda o: ",".join(str(c.get("image", "")) for c in _containers(o)), priority=1),
        Column("Selector", _selector, priority=1),
    ],
    "ReplicaSet": [
        NAME,
        Column("Desired", _int("spec", "replicas"), type="integer"),
        Column("Current", _int("status", "replicas"), type="integer"),
        Column("Ready", _int("status", "readyReplicas"), type="integer"),
        AGE,
        Column("Containers", lambda o: ",".join(str(c.get("name", "")) for c in _containers(o)), priority=1),
        Column("Images", lambda o: ",".join(str(c.get("image", "")) for c in _containers(o)), priority=1),
        Column("Selector", _selector, priority=1),
    ],
    "Namespace": [NAME, Column("Status", _text("status", "phase")), AGE],
    "Node": [
        NAME,
        Column(
            "Status", node_status, description="The status of the node (Ready, and SchedulingDisabled if cordoned)."
        ),
        Column("Roles", node_roles, description="The roles of the node (node-role.kubernetes.io/ labels)."),
        AGE,
        Column(
            "Version",
            lambda o: str(get(o, "status", "nodeInfo", "kubeletVersion") or ""),
            description="Kubelet Version reported by the node.",
        ),
        Column("Internal-IP", _node_address("InternalIP"), priority=1, description="List of internal IPs."),
        Column("External-IP", _node_address("ExternalIP"), priority=1, description="List of external IPs."),
        Column("OS-Image", _node_info("osImage"), priority=1, description="OS image reported by the node."),
        Column(
            "Kernel-Version",
            _node_info("kernelVersion"),
            priority=1,
            description="Kernel version reported by the node.",
        ),
        Column(
            "Container-Runtime",
            _node_info("containerRuntimeVersion"),
            priority=1,
            description="Container runtime and version reported by the node.",
        ),
    ],
    "Secret": [
        NAME,
        Column("Type", _text("type")),
        Column(
            "Data",
            lambda o: len(o.get("data") or {}) if isinstance(o.get("data"), dict) else 0,
            type="integer",
            description="Number of keys (never their values).",
        ),
        AGE,
    ],
    "ConfigMap": [
        NAME,
        Column(
            "Data",
            lambda o: sum(len(o.get(f) or {}) for f in ("data", "binaryData") if isinstance(o.get(f) or {}, dict)),
            type="integer",
            description="Number of keys in data and binaryData.",
        ),
        AGE,
    ],
    "Event": [
        Column("Last Seen", event_last_seen, description="Time since the last occurrence (and how often)."),
        Column("Type", _text("type")),
        Column("Reason", _text("reason")),
        Column("Object", event_object, description="The object the event is about."),
        Column("Message", _text("message")),
        Column("Subobject", _text("involvedObject", "fieldPath"), priority=1),
        Column("Source", _source, priority=1),
        Column("First Seen", lambda o: since(get(o, "firstTimestamp") or get(o, "lastTimestamp")), priority=1),
        Column("Count", _int("count"), type="integer", priority=1),
        Column("Name", lambda o: str(get(o, "metadata", "name") or ""), priority=1),
    ],
    "Service": [
        NAME,
        Column("Type", _text("spec", "type"), description="ClusterIP, NodePort or LoadBalancer."),
        Column("Cluster-IP", service_cluster_ip, description="The cluster IP (on loopback, 127.1.0.0/16)."),
        Column("External-IP", service_external_ip, description="A LoadBalancer's ingress addresses."),
        Column("Port(s)", service_ports, description="port[:nodePort]/protocol of each port."),
        AGE,
        Column("Selector", _service_selector, priority=1, description="The pods the Service selects."),
    ],
    "EndpointSlice": [
        NAME,
        Column("AddressType", _text("addressType"), description="The type of the endpoints' addresses."),
        Column("Ports", slice_ports, description="The ports of the endpoints."),
        Column("Endpoints", slice_endpoints, description="The endpoints' addresses."),
        AGE,
    ],
    "Lease": [
        NAME,
        Column("Holder", _text("spec", "holderIdentity"), description="Identity of the current holder."),
        AGE,
    ],
    "Build": [
        NAME,
        Column("Type", lambda o: str(get(o, "spec", "strategy", "type") or "Docker"), description="Build strategy."),
        Column("From", build_from, description="Source type and, once known, the commit built."),
        Column("Status", build_status, description="Phase, with the reason of a failure."),
        Column("Started", build_started, description="When the build started running."),
        Column("Duration", build_duration, description="How long the build ran."),
        Column(
            "Digest",
            lambda o: short_digest(get(o, "status", "output", "to", "imageDigest")),
            description="Digest of the pushed image (short form).",
        ),
        AGE,
    ],
    "BuildConfig": [
        NAME,
        Column("Type", lambda o: str(get(o, "spec", "strategy", "type") or "Docker")),
        Column("From", build_from),
        Column(
            "Latest", lambda o: str(get(o, "status", "lastVersion") or 0), description="Number of the newest Build."
        ),
    ],
    "Push": [
        NAME,
        Column("Pod", _text("spec", "podName")),
        Column("Image", _text("spec", "image")),
        Column("Phase", lambda o: str(get(o, "status", "phase") or "Pending")),
        Column("Reason", _text("status", "reason"), description="Why the last attempt failed."),
        Column("Digest", lambda o: short_digest(get(o, "status", "imageDigest"))),
        AGE,
        Column("Trigger", lambda o: str(get(o, "spec", "trigger") or "Immediate"), priority=1),
        Column("Attempts", lambda o: str(get(o, "status", "attempts") or 0), priority=1),
        Column("Node", _text("status", "nodeName"), priority=1),
        Column("Message", _text("status", "message"), priority=1),
    ],
    "Image": [
        NAME,
        Column("Repository", _text("spec", "repository")),
        Column("Tag", image_tag),
        Column("Latest Digest", lambda o: short_digest(get(o, "status", "latestDigest"))),
        AGE,
        Column(
            "Last Scan",
            lambda o: since(get(o, "status", "lastScanTime")) if get(o, "status", "lastScanTime") else "",
            priority=1,
        ),
    ],
    "ImageDeploy": [
        NAME,
        Column(
            "Image",
            lambda o: short_digest(get(o, "status", "latestImage")) or str(get(o, "spec", "imageRef", "name") or ""),
        ),
        Column("Ready", lambda o: _condition(o, "Ready")),
        AGE,
        Column("Deployment", _text("status", "deploymentName"), priority=1),
    ],
}


def columns(kind: str) -> list[Column]:
    """The columns for ``kind`` (``Name`` and ``Age`` for a kind without its own)."""
    return COLUMNS.get(kind, [NAME, AGE])
