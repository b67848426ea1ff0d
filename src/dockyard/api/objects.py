"""Typed objects: what controllers, the agent and the CLI hold instead of nested dicts.

dockyard's own kinds are pydantic models made of the same ``spec`` and ``status`` models the API server
validates with and documents (:mod:`dockyard.api.models`), under a Kubernetes ``ObjectMeta``
(``k8s.io/apimachinery/pkg/apis/meta/v1`` ``ObjectMeta``, the fields dockyard reads). Core kinds (Pod,
Deployment, ReplicaSet, Secret, Event) are lightkube's models, mapped in :mod:`dockyard.client.objects`
(``api/`` does not import lightkube).

The wire stays JSON: :func:`parse` makes a typed object from a dict as the API returns it, :func:`to_dict`
gives the dict back with only the fields that were in it or were set since (``exclude_unset``), so a
round trip never adds defaults the server did not store. No I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dockyard.api import kinds, models


class OwnerReference(BaseModel):
    """An ``ownerReferences`` entry (meta/v1 ``OwnerReference``)."""

    model_config = ConfigDict(extra="allow")

    apiVersion: str
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    blockOwnerDeletion: bool | None = None


class ObjectMeta(BaseModel):
    """meta/v1 ``ObjectMeta``: the fields dockyard reads; any other field is kept as it came (``extra="allow"``)."""

    model_config = ConfigDict(extra="allow")

    name: str = ""
    namespace: str | None = None
    uid: str | None = None
    resourceVersion: str | None = None
    generation: int | None = None
    creationTimestamp: str | None = None
    deletionTimestamp: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    ownerReferences: list[OwnerReference] = Field(default_factory=list)
    finalizers: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _maps_always_dumped(self) -> ObjectMeta:
        # ``meta.labels[k] = v`` on a defaulted map must reach to_dict()
        self.model_fields_set.update({"labels", "annotations"})
        return self


class _Object(BaseModel):
    """Base of dockyard's kinds: ``apiVersion``, ``kind``, ``metadata``; ``spec``/``status`` in subclasses."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    apiVersion: str = kinds.API_VERSION
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)

    @model_validator(mode="after")
    def _nested_always_dumped(self) -> _Object:
        # ``obj.status.phase = ...`` on a defaulted status must reach to_dict(): nested models count as set
        self.model_fields_set.update({"metadata", "status"} & set(type(self).model_fields))
        return self

    @property
    def key(self) -> str:
        """The workqueue key ``namespace/name``."""
        return f"{self.metadata.namespace}/{self.metadata.name}" if self.metadata.namespace else self.metadata.name


class BuildConfig(_Object):
    """``dockyard.dev/v1alpha1`` BuildConfig (OpenShift ``build.openshift.io/v1`` BuildConfig)."""

    kind: Literal["BuildConfig"] = "BuildConfig"
    spec: models.BuildConfigSpec
    status: models.BuildConfigStatus = Field(default_factory=models.BuildConfigStatus)


class Build(_Object):
    """``dockyard.dev/v1alpha1`` Build (OpenShift ``build.openshift.io/v1`` Build)."""

    kind: Literal["Build"] = "Build"
    spec: models.BuildSpec
    status: models.BuildStatus = Field(default_factory=models.BuildStatus)


class Push(_Object):
    """``dockyard.dev/v1alpha1`` Push (the Kubernetes Push proposal)."""

    kind: Literal["Push"] = "Push"
    spec: models.PushSpec
    status: models.PushStatus = Field(default_factory=models.PushStatus)


class Image(_Object):
    """``dockyard.dev/v1alpha1`` Image (kpush Image, Flux ImageRepository + ImagePolicy)."""

    kind: Literal["Image"] = "Image"
    spec: models.ImageSpec
    status: models.ImageStatus = Field(default_factory=models.ImageStatus)


class ImageDeploy(_Object):
    """``dockyard.dev/v1alpha1`` ImageDeploy (kpush ImageDeploy)."""

    kind: Literal["ImageDeploy"] = "ImageDeploy"
    spec: models.ImageDeploySpec
    status: models.ImageDeployStatus = Field(default_factory=models.ImageDeployStatus)


DOCKYARD_KINDS: dict[str, type[_Object]] = {
    "BuildConfig": BuildConfig,
    "Build": Build,
    "Push": Push,
    "Image": Image,
    "ImageDeploy": ImageDeploy,
}
"""dockyard's kinds by name."""

T = TypeVar("T")


def parse(obj: Mapping[str, Any], as_type: type[T] | None = None) -> T:
    """The typed object for ``obj`` (a dict as the API returns it), by ``as_type`` or ``obj["kind"]``.

    Raises:
        KeyError: no ``as_type`` and the kind is not one of :data:`DOCKYARD_KINDS`.
        pydantic.ValidationError: an object whose spec its model refuses (e.g. from a server of another version).
    """
    cls: Any = as_type or DOCKYARD_KINDS[str(obj.get("kind"))]
    parsed: Any = cls.model_validate(dict(obj))
    return parsed  # type: ignore[no-any-return]


def to_dict(obj: BaseModel) -> dict[str, Any]:
    """The JSON-shaped dict of a typed object: by alias, ``exclude_unset`` (fields neither read nor set are left
    out, so nothing the server did not store is added)."""
    return obj.model_dump(mode="json", by_alias=True, exclude_unset=True)
