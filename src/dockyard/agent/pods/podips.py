"""Pod addresses on loopback: each pod of this node gets its own ``127.x.y.z`` (the node's pod CIDR).

Linux routes all of ``127.0.0.0/8`` to ``lo``, so an address of :data:`dockyard.api.services.POD_CIDR`
needs no configuration: the engine publishes the pod's ``containerPorts`` on it (both Podman and Docker Engine
accept such a ``HostIp``), the pod reports it as ``status.podIP``, and the Service proxy forwards to it. This
plays the part of the CNI plugin's IPAM (``host-local``) on a Kubernetes node.

The address survives an agent restart without state of its own: the pod's ``status.podIP`` is kept when it is
in the range and free, and a new pod's first choice is derived from its uid (FNV-1a), probing onward on a
collision, so a restarted agent that syncs pods in any order gives each the address it had.
"""

from __future__ import annotations

import ipaddress
import threading

from dockyard.api import services

__all__ = ["PodIPs"]

_FIRST = int(services.POD_CIDR.network_address) + 1
_SIZE = services.POD_CIDR.num_addresses - 2  # neither the network nor the broadcast address


def _fnv1a32(data: bytes) -> int:
    h = 0x811C9DC5
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


class PodIPs:
    """Thread-safe allocator of pod addresses (uid → address)."""

    def __init__(self) -> None:
        self._by_uid: dict[str, str] = {}
        self._owner: dict[str, str] = {}
        self._lock = threading.Lock()

    def assign(self, uid: str, preferred: str | None = None) -> str:
        """The address of pod ``uid``: its current one, else ``preferred`` (its ``status.podIP``) if that is
        in the pod range and free, else the first free address from one derived from ``uid``.

        Raises:
            RuntimeError: every address of the range is taken (65534 pods).
        """
        with self._lock:
            held = self._by_uid.get(uid)
            if held is not None:
                return held
            if preferred and self._usable(preferred):
                return self._take(uid, preferred)
            start = _fnv1a32(uid.encode()) % _SIZE
            for step in range(_SIZE):
                candidate = str(ipaddress.IPv4Address(_FIRST + (start + step) % _SIZE))
                if candidate not in self._owner:
                    return self._take(uid, candidate)
        raise RuntimeError(f"no free pod address in {services.POD_CIDR}")

    def get(self, uid: str) -> str | None:
        """The address pod ``uid`` holds, if any."""
        with self._lock:
            return self._by_uid.get(uid)

    def release(self, uid: str) -> None:
        """Forget pod ``uid``'s address (its containers are gone)."""
        with self._lock:
            ip = self._by_uid.pop(uid, None)
            if ip is not None:
                self._owner.pop(ip, None)

    def _usable(self, ip: str) -> bool:
        try:
            address = ipaddress.IPv4Address(ip)
        except ValueError:
            return False
        offset = int(address) - _FIRST
        return 0 <= offset < _SIZE and ip not in self._owner

    def _take(self, uid: str, ip: str) -> str:
        self._by_uid[uid] = ip
        self._owner[ip] = uid
        return ip
