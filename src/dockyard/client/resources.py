"""lightkube resource handles for every kind in :mod:`dockyard.api.kinds`.

All kinds are lightkube *generic* resources, so objects are plain dicts
(``obj["spec"]["containers"]``) on both sides of the wire.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from lightkube import generic_resource

from dockyard.api import kinds


@cache
def resource(kind: str) -> Any:
    """The lightkube resource class for ``kind`` (e.g. ``"Build"``, ``"Pod"``).

    Raises:
        KeyError: if dockyard serves no such kind.
    """
    for info in kinds.RESOURCES:
        if info.kind == kind:
            factory = (
                generic_resource.create_namespaced_resource
                if info.namespaced
                else generic_resource.create_global_resource
            )
            return factory(info.group, info.version, info.kind, info.plural)
    raise KeyError(kind)


def info(kind: str) -> kinds.ResourceInfo:
    """The :class:`~dockyard.api.kinds.ResourceInfo` of ``kind``. Raises KeyError if unknown."""
    for item in kinds.RESOURCES:
        if item.kind == kind:
            return item
    raise KeyError(kind)


def as_dict(obj: Any) -> dict[str, Any]:
    """A lightkube generic object as a plain JSON-shaped dict."""
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def key(obj: dict[str, Any]) -> str:
    """The workqueue key ``namespace/name`` (or ``name`` for cluster-scoped objects)."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{ns}/{meta['name']}" if ns else meta["name"]


def split_key(k: str) -> tuple[str | None, str]:
    """Inverse of :func:`key`: ``"ns/name"`` → ``("ns", "name")``."""
    ns, _, name = k.rpartition("/")
    return (ns or None), name


def owner_reference(obj: dict[str, Any], *, controller: bool = True) -> dict[str, Any]:
    """An ``ownerReferences`` entry naming ``obj`` (Kubernetes garbage collection)."""
    meta = obj["metadata"]
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def controller_of(obj: dict[str, Any], kind: str) -> str | None:
    """Name of the owner of ``kind`` that controls ``obj``, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == kind and ref.get("controller"):
            name = ref.get("name")
            return str(name) if name is not None else None
    return None
