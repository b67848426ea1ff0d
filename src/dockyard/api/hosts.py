"""Which hosts are loopback: the one place that decides where plain HTTP and credentials may go. No I/O."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (``127.0.0.0/8``, ``::1``; brackets and case ignored).

    Names are not resolved: ``localhost`` is the only name taken (RFC 6761 section 6.3).
    """
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
