"""lightkube resource handles for every kind in :mod:`dockyard.api.kinds`, and object identity helpers.

All kinds are lightkube *generic* resources on the wire (plain dicts); callers turn them into typed objects
with :mod:`dockyard.client.objects`. The helpers below take either shape: a dict, or a typed object
(pydantic or lightkube) with ``.metadata``.
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


def _meta(obj: Any) -> dict[str, Any]:
    """``metadata`` of a dict or typed object as a dict (only name, namespace, uid, ownerReferences read)."""
    if isinstance(obj, dict):
        return obj.get("metadata") or {}
    meta = obj.metadata
    refs = getattr(meta, "ownerReferences", None) or []
    return {
        "name": meta.name,
        "namespace": meta.namespace,
        "uid": meta.uid,
        "ownerReferences": [r if isinstance(r, dict) else {k: getattr(r, k, None) for k in _REF_FIELDS} for r in refs],
    }


_REF_FIELDS = ("apiVersion", "kind", "name", "uid", "controller", "blockOwnerDeletion")


def key(obj: Any) -> str:
    """The workqueue key ``namespace/name`` (or ``name`` for cluster-scoped objects) of a dict or typed object."""
    meta = _meta(obj)
    ns = meta.get("namespace")
    return f"{ns}/{meta['name']}" if ns else str(meta["name"])


def split_key(k: str) -> tuple[str | None, str]:
    """Inverse of :func:`key`: ``"ns/name"`` → ``("ns", "name")``."""
    ns, _, name = k.rpartition("/")
    return (ns or None), name


def owner_reference(obj: Any, *, controller: bool = True) -> dict[str, Any]:
    """An ``ownerReferences`` entry naming ``obj`` (a dict or typed object; Kubernetes garbage collection)."""
    meta = _meta(obj)
    return {
        "apiVersion": obj["apiVersion"] if isinstance(obj, dict) else obj.apiVersion,
        "kind": obj["kind"] if isinstance(obj, dict) else obj.kind,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def controller_of(obj: Any, kind: str) -> str | None:
    """Name of the owner of ``kind`` that controls ``obj`` (a dict or typed object), if any."""
    for ref in _meta(obj).get("ownerReferences") or []:
        if ref.get("kind") == kind and ref.get("controller"):
            name = ref.get("name")
            return str(name) if name is not None else None
    return None
