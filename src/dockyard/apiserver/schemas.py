"""Component schemas of every served kind, for the OpenAPI documents. Pure.

dockyard's own kinds are generated from the pydantic models that validate
them (:data:`dockyard.api.models.SPEC_MODELS`, and the status models that
describe what controllers write): ``model_json_schema`` (JSON Schema 2020-12)
converted to the OpenAPI 3.0 dialect the apiserver serves ("OpenAPI V3" in
the API concepts, structural schemas of "Extend the Kubernetes API with
CustomResourceDefinitions"):

- ``Optional[X]`` (``anyOf`` with ``null``) becomes ``X``; a union of
  scalars becomes ``x-kubernetes-int-or-string``; a free-form ``dict``
  becomes ``x-kubernetes-preserve-unknown-fields``;
- ``$ref`` to ``$defs`` becomes a component reference
  (``dev.dockyard.v1alpha1.BuildOutput``), wrapped in ``allOf`` when it has
  a description, as the apiserver writes it;
- ``exclusiveMinimum: N`` becomes ``minimum: N, exclusiveMinimum: true``;
  ``title`` and ``additionalProperties: false`` are dropped (the server, not
  the client, rejects unknown fields);
- a field marked ``x-dockyard-ref`` (ImageDeploy's ``deployment``) refers to a
  built-in component (``io.k8s.api.apps.v1.DeploymentSpec``).

The built-in kinds come from :mod:`dockyard.apiserver.coreschemas`.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from dockyard.api import kinds, models
from dockyard.apiserver import coreschemas

Schema = dict[str, Any]
PREFIX = "#/components/schemas/"


def component_name(group: str, version: str, kind: str) -> str:
    """Component name as the apiserver's: ``io.k8s.api.core.v1.Pod``, ``io.k8s.api.coordination.v1.Lease``,
    reversed domain otherwise (``dev.dockyard.v1alpha1.Build``)."""
    if group == "":
        return f"io.k8s.api.core.{version}.{kind}"
    if "." not in group:
        return f"io.k8s.api.{group}.{version}.{kind}"
    if group.endswith(".k8s.io") and group.count(".") == 2:  # coordination.k8s.io → io.k8s.api.coordination
        return f"io.k8s.api.{group.split('.')[0]}.{version}.{kind}"
    return ".".join(reversed(group.split("."))) + f".{version}.{kind}"


def _convert(node: Any, names: dict[str, str]) -> Any:
    if isinstance(node, list):
        return [_convert(n, names) for n in node]
    if not isinstance(node, dict):
        return node
    if "x-dockyard-ref" in node:
        return coreschemas.ref(node["x-dockyard-ref"], node.get("description", ""))
    out: Schema = {}
    for key, value in node.items():
        if key in ("title", "$defs") or (key == "additionalProperties" and value is False):
            continue
        if key == "default" and value is None:
            continue
        out[key] = (
            value.replace("``", "") if key == "description" and isinstance(value, str) else _convert(value, names)
        )
    if "$ref" in out:
        target = {"$ref": PREFIX + names[out.pop("$ref").rsplit("/", 1)[-1]]}
        extra = {k: v for k, v in out.items() if k in ("description", "default")}
        return {"allOf": [target], **extra} if extra else target
    if "anyOf" in out:
        options = [o for o in out.pop("anyOf") if o != {"type": "null"}]
        if len(options) == 1:
            merged = dict(options[0])
            merged.update(out)
            if "$ref" in merged and len(merged) > 1:
                merged = {"allOf": [{"$ref": merged.pop("$ref")}], **merged}
            return merged
        out["x-kubernetes-int-or-string"] = True
    if "exclusiveMinimum" in out and not isinstance(out["exclusiveMinimum"], bool):
        out["minimum"], out["exclusiveMinimum"] = out["exclusiveMinimum"], True
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if out.get("additionalProperties") is True or (
        out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out
    ):
        out.pop("additionalProperties", None)
        out["x-kubernetes-preserve-unknown-fields"] = True
    if out.get("type") == "object" and out.get("additionalProperties", {}).get("x-kubernetes-int-or-string"):
        out["additionalProperties"] = coreschemas.ref(coreschemas.QUANTITY)
    return out


def model_components(model: type[Any], prefix: str) -> dict[str, Schema]:
    """Components for a pydantic model and every model it uses, named ``prefix + ClassName``."""
    raw = model.model_json_schema(by_alias=True)
    defs: dict[str, Any] = raw.pop("$defs", {})
    names = {name: prefix + name for name in [*defs, model.__name__]}
    out = {prefix + name: _convert(schema, names) for name, schema in defs.items()}
    out[prefix + model.__name__] = _convert(raw, names)
    return out


KIND_DESCRIPTIONS = {
    "BuildConfig": "BuildConfig describes how an image is built (source, strategy, output) and when (triggers, "
    "runPolicy); each run is a Build (OpenShift BuildConfig).",
    "Build": "Build is one run of a BuildConfig: a build pod builds the image and pushes it; status follows its "
    "phases New, Pending, Running, Complete | Failed | Error | Cancelled (OpenShift Build).",
    "Push": "Push commits a running pod's container to an image and pushes it to a registry (the Kubernetes Push "
    "proposal, served by the node agent of the pod's node).",
    "Image": "Image tracks the newest digest of a repository's tag or tag policy (kpush Image).",
    "ImageDeploy": "ImageDeploy keeps an owned Deployment on an Image's newest digest (kpush ImageDeploy).",
}


def _dockyard() -> dict[str, Schema]:
    out: dict[str, Schema] = {}
    for info in kinds.RESOURCES:
        if info.group != kinds.GROUP:
            continue
        prefix = component_name(info.group, info.version, "")
        spec, status = models.SPEC_MODELS[info.kind], models.STATUS_MODELS[info.kind]
        out.update(model_components(spec, prefix))
        out.update(model_components(status, prefix))
        out[component_name(info.group, info.version, info.kind)] = coreschemas.kind_schema(
            KIND_DESCRIPTIONS.get(info.kind, info.kind),
            info.group,
            info.version,
            info.kind,
            prefix + spec.__name__,
            prefix + status.__name__,
        )
    return out


def list_component(info: kinds.ResourceInfo) -> Schema:
    """The ``<Kind>List`` component of a kind."""
    name = component_name(info.group, info.version, info.kind)
    return coreschemas.obj(
        f"A list of {info.kind} objects.",
        {
            "apiVersion": {"type": "string", "description": "APIVersion of the list."},
            "kind": {"type": "string", "description": f"{info.list_kind}."},
            "metadata": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
                "description": "resourceVersion, continue and remainingItemCount of the list.",
            },
            "items": {"type": "array", "items": coreschemas.ref(name), "description": f"The {info.kind} objects."},
        },
        required=("items",),
        gvk=(info.group, info.version, info.list_kind),
        open_=False,
    )


def custom_components(info: kinds.ResourceInfo, schema: Schema) -> dict[str, Schema]:
    """The components of a kind served from a CRD: its ``openAPIV3Schema`` (``metadata`` as
    ``ObjectMeta``, with ``x-kubernetes-group-version-kind``) and its list, as the apiserver publishes them."""
    name = component_name(info.group, info.version, info.kind)
    root = copy.deepcopy(schema)
    props = root.setdefault("properties", {})
    props["metadata"] = coreschemas.ref(f"{coreschemas.META}.ObjectMeta", "Standard object's metadata.")
    props.setdefault("apiVersion", {"type": "string", "description": "APIVersion of the object."})
    props.setdefault("kind", {"type": "string", "description": "Kind of the object."})
    root["x-kubernetes-group-version-kind"] = [{"group": info.group, "version": info.version, "kind": info.kind}]
    return {name: root, f"{name}List": list_component(info)}


@cache
def all_components() -> dict[str, Schema]:
    """Every component by name: built-in kinds, dockyard kinds, and a ``<Kind>List`` for each of them."""
    out = {**coreschemas.schemas(), **_dockyard()}
    for info in kinds.RESOURCES:
        out[f"{component_name(info.group, info.version, info.kind)}List"] = list_component(info)
    return out


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"][len(PREFIX) :]} if isinstance(node.get("$ref"), str) else set()
        for value in node.values():
            found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node)) if node else set()
    return set()


def closure(roots: list[str], extra: dict[str, Schema] | None = None) -> dict[str, Schema]:
    """The components named in ``roots`` and every component they refer to (transitively), copied;
    ``extra`` (custom resources' components) are searched first."""
    components = {**all_components(), **(extra or {})}
    wanted, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        if name in wanted or name not in components:
            continue
        wanted.add(name)
        todo.extend(_refs(components[name]))
    return {name: copy.deepcopy(components[name]) for name in sorted(wanted)}


def to_v2(node: Any) -> Any:
    """The same schema with Swagger 2.0 references (``#/definitions/NAME``)."""
    if isinstance(node, dict):
        return {
            k: ("#/definitions/" + v[len(PREFIX) :] if k == "$ref" and isinstance(v, str) else to_v2(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [to_v2(v) for v in node]
    return node
