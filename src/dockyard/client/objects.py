"""Typed objects of every kind a client handles: dockyard's (pydantic, :mod:`dockyard.api.objects`) and
Kubernetes' own (lightkube's models: camelCase attributes, ``from_dict``/``to_dict``).

Controllers, the agent and the CLI turn a dict from the wire into a typed object once, with :func:`parse`,
and back with :func:`to_dict` when writing. No I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from lightkube.core.dictmixin import DictMixin
from lightkube.resources.apps_v1 import Deployment, ReplicaSet
from lightkube.resources.core_v1 import Event, Namespace, Pod, Secret, Service
from lightkube.resources.discovery_v1 import EndpointSlice
from pydantic import BaseModel

from dockyard.api import objects as api_objects

CORE_KINDS: dict[str, type[DictMixin]] = {
    "Pod": Pod,
    "Deployment": Deployment,
    "ReplicaSet": ReplicaSet,
    "Secret": Secret,
    "Event": Event,
    "Namespace": Namespace,
    "Service": Service,
    "EndpointSlice": EndpointSlice,
}
"""Kubernetes kinds dockyard serves, as lightkube's models (``lightkube.resources``)."""

T = TypeVar("T")


def parse(obj: Mapping[str, Any], as_type: type[T] | None = None) -> T:
    """The typed object for ``obj`` (a dict as the API returns it), by ``as_type`` or ``obj["kind"]``.

    Raises:
        KeyError: no ``as_type`` and the kind is neither dockyard's nor in :data:`CORE_KINDS`.
        pydantic.ValidationError: a dockyard object whose spec its model refuses.
    """
    kind = str(obj.get("kind"))
    cls: Any = as_type or api_objects.DOCKYARD_KINDS.get(kind) or CORE_KINDS[kind]
    if isinstance(cls, type) and issubclass(cls, BaseModel):
        return api_objects.parse(obj, cls)  # type: ignore[return-value]
    parsed: Any = cls.from_dict(dict(obj))
    return parsed  # type: ignore[no-any-return]


def to_dict(obj: Any) -> dict[str, Any]:
    """The JSON-shaped dict of a typed object (pydantic: :func:`dockyard.api.objects.to_dict`; lightkube:
    ``to_dict()``), or a shallow copy of a dict."""
    if isinstance(obj, BaseModel):
        return api_objects.to_dict(obj)
    if hasattr(obj, "to_dict"):
        return obj.to_dict()  # type: ignore[no-any-return]
    return dict(obj)
