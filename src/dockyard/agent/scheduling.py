"""Honest scheduling on the one node of the embedded engine: kube-scheduler's ``NodePorts`` filter.

The node agent binds unscheduled pods to its own node (there is no other). Before it does, it checks what
kube-scheduler's ``NodePorts`` plugin checks (``pkg/scheduler/framework/plugins/nodeports/node_ports.go``):
a ``hostPort`` of the pod (``hostIP``, ``protocol``, ``hostPort``) must not be used by a pod already on the
node. Because the node is this machine, it also checks that nothing else listens there (it tries to bind
the port on loopback). A pod that does not fit stays ``Pending`` with the scheduler's ``PodScheduled=False``
condition, reason ``Unschedulable``, and a ``FailedScheduling`` Event in the scheduler's words
(``schedule_one.go`` ``FitError.Error``); it is bound when the port is free. A cordoned node
(``spec.unschedulable``, kube-scheduler's ``NodeUnschedulable`` filter) takes no new pod at all.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterable
from typing import NamedTuple

from lightkube.models.core_v1 import PodSpec

from dockyard.api import podports

__all__ = [
    "COMPONENT",
    "FAILED_SCHEDULING",
    "UNSCHEDULABLE",
    "HostPort",
    "conflicts",
    "host_ports",
    "in_use",
    "no_free_ports_message",
    "unschedulable_node_message",
]

COMPONENT = "default-scheduler"
"""The ``source.component`` of kube-scheduler's Events."""
UNSCHEDULABLE = "Unschedulable"
"""``PodScheduled`` reason of a pod no node fits (``v1.PodReasonUnschedulable``)."""
FAILED_SCHEDULING = "FailedScheduling"
"""The Event reason of a failed scheduling attempt."""
_NO_FREE_PORTS = "node(s) didn't have free ports for the requested pod ports"
"""``nodeports.ErrReason``."""
_NODE_UNSCHEDULABLE = "node(s) were unschedulable"
"""``nodeunschedulable.ErrReasonUnschedulable``: the node's ``spec.unschedulable`` (``kubectl cordon``)."""


class HostPort(NamedTuple):
    """One host port a pod asks for: ``ip`` (``hostIP``, the loopback address when unset), ``port``,
    ``protocol`` (upper case)."""

    ip: str
    port: int
    protocol: str


def host_ports(spec: PodSpec, *, host_ip: str = podports.LOOPBACK) -> set[HostPort]:
    """The host ports of the pod's containers (kube-scheduler ``getContainerPorts``); an unset or empty
    ``hostIP`` means ``host_ip``."""
    return {
        HostPort(port.hostIP or host_ip, int(port.hostPort), podports.protocol({"protocol": port.protocol}))
        for container in spec.containers
        for port in container.ports or []
        if port.hostPort
    }


def conflicts(wanted: Iterable[HostPort], used: Iterable[HostPort]) -> bool:
    """True if a wanted port is used (kube-scheduler ``HostPortInfo.CheckConflict``: same protocol and port,
    and the same address or either one ``0.0.0.0``)."""
    taken = list(used)
    return any(
        w.port == u.port and w.protocol == u.protocol and (w.ip == u.ip or "0.0.0.0" in (w.ip, u.ip))
        for w in wanted
        for u in taken
    )


def in_use(port: HostPort) -> bool:
    """True if something on this machine holds ``port``: binding it fails with ``EADDRINUSE``.

    The probe binds as the engines' port forwarders bind (``SO_REUSEADDR`` for TCP, as Go's ``net.Listen``
    does, so a port in ``TIME_WAIT`` counts as free) and is closed at once. SCTP is not probed (it is known
    only from the node's pods).
    """
    kind = {"TCP": socket.SOCK_STREAM, "UDP": socket.SOCK_DGRAM}.get(port.protocol)
    if kind is None:
        return False
    with socket.socket(socket.AF_INET, kind) as probe:
        if kind == socket.SOCK_STREAM:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((port.ip, port.port))
        except OSError as e:
            return e.errno == errno.EADDRINUSE
    return False


def no_free_ports_message(nodes: int = 1) -> str:
    """kube-scheduler's ``FitError`` message when no node has the pod's ports free:
    ``0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports.``"""
    return f"0/{nodes} nodes are available: {nodes} {_NO_FREE_PORTS}."


def unschedulable_node_message(nodes: int = 1) -> str:
    """kube-scheduler's ``FitError`` message when the node is cordoned:
    ``0/1 nodes are available: 1 node(s) were unschedulable.``"""
    return f"0/{nodes} nodes are available: {nodes} {_NODE_UNSCHEDULABLE}."
