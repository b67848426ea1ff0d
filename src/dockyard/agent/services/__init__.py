"""Services on this node: the proxy that serves them on loopback (see :mod:`.proxy`)."""

from dockyard.agent.services.proxy import ServiceProxy

__all__ = ["ServiceProxy"]
