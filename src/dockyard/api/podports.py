"""Rules of a pod's ports, shared by the API server's validation and the node agent. No I/O.

A ``containers[].ports[]`` entry (Kubernetes ``v1.ContainerPort``) with a ``hostPort`` is published by the
node agent on the loopback address only. ``protocol`` is ``TCP`` (default), ``UDP`` or ``SCTP``
(``v1.Protocol``), compared without regard to case (the engines' port keys are lower case), so ``tcp`` and
``TCP`` on one host port are the same binding (Kubernetes ``validateContainerPorts`` /
``AccumulateUniqueHostPorts`` key host ports by protocol and port).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "DEFAULT_PROTOCOL",
    "LOOPBACK",
    "PROTOCOLS",
    "host_ip_allowed",
    "host_port_key",
    "protocol",
    "protocol_supported",
]

PROTOCOLS = ("TCP", "UDP", "SCTP")
"""``v1.Protocol`` values."""
DEFAULT_PROTOCOL = "TCP"
LOOPBACK = "127.0.0.1"
"""The only address pods publish host ports on."""


def protocol(port: Mapping[str, Any]) -> str:
    """The port's protocol, upper case; ``TCP`` when unset."""
    return str(port.get("protocol") or DEFAULT_PROTOCOL).upper()


def protocol_supported(port: Mapping[str, Any]) -> bool:
    """True if the port's protocol (any case) is one of :data:`PROTOCOLS`."""
    return protocol(port) in PROTOCOLS


def host_port_key(port: Mapping[str, Any], host_port: int) -> tuple[int, str]:
    """What must be unique among a pod's published ports: ``(hostPort, PROTOCOL)``."""
    return host_port, protocol(port)


def host_ip_allowed(host_ip: Any, *, loopback: str = LOOPBACK) -> bool:
    """True if a port's ``hostIP`` publishes on ``loopback``: unset, empty, or that address itself."""
    return host_ip in (None, "", loopback)
