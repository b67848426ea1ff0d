"""OpenAPI documents for ``kubectl apply``, ``kubectl explain`` and field validation. Pure.

- ``GET /openapi/v3``: the index ``{"paths": {"api/v1": {"serverRelativeURL": ...}}}``
  (Kubernetes API concepts, "OpenAPI V3").
- ``GET /openapi/v3/apis/G/V``: one OpenAPI 3.0 document per group-version,
  with the component schemas of its kinds and everything they refer to
  (:mod:`dockyard.apiserver.schemas`: generated from the pydantic models for
  dockyard's kinds, a documented subset for the built-in ones). kubectl finds
  a kind's schema by ``x-kubernetes-group-version-kind`` (``kubectl explain
  buildconfig.spec.output``).
- Every PATCH operation carries ``x-kubernetes-group-version-kind`` and a
  ``fieldValidation`` query parameter, which tells kubectl the server
  validates fields ("Field validation" in the API concepts), so kubectl
  sends ``fieldValidation=Strict`` and leaves validation to the server.
  PATCH request bodies list JSON patch and merge patch but not strategic
  merge patch, so kubectl computes a strategic merge patch for built-in
  kinds from its own compiled-in types (and a merge patch for dockyard's).
- ``GET /openapi/v2``: one Swagger 2.0 document in JSON with the same schemas.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from typing import Any

from dockyard.api import kinds
from dockyard.apiserver import coreschemas, customresources, discovery, schemas

_META = "io.k8s.apimachinery.pkg.apis.meta.v1"
_QUERY = ("dryRun", "fieldManager", "fieldValidation", "force", "pretty")


def gv_path(group: str, version: str) -> str:
    """The index key of a group-version: ``api/v1`` or ``apis/G/V``."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def schema_name(info: kinds.ResourceInfo) -> str:
    """Component name of a kind (``io.k8s.api.core.v1.Pod``, ``dev.dockyard.v1alpha1.Build``)."""
    return schemas.component_name(info.group, info.version, info.kind)


def _gvk(info: kinds.ResourceInfo) -> dict[str, str]:
    return {"group": info.group, "version": info.version, "kind": info.kind}


def _ref(name: str, v3: bool) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}" if v3 else f"#/definitions/{name}"}


def _param(name: str, where: str, v3: bool) -> dict[str, Any]:
    p: dict[str, Any] = {"name": name, "in": where, "uniqueItems": True}
    if where == "path":
        p["required"] = True
    if v3:
        p["schema"] = {"type": "string"}
    else:
        p["type"] = "string"
    return p


def _op(
    info: kinds.ResourceInfo, action: str, v3: bool, *, body: list[str] | None = None, returns: str | None = None
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": f"{action}{info.kind}",
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": _gvk(info),
        "parameters": [_param(q, "query", v3) for q in _QUERY],
        "tags": [gv_path(info.group, info.version).replace("/", "_")],
    }
    target = returns or schema_name(info)
    if v3:
        op["responses"] = {"200": {"description": "OK", "content": {"application/json": {"schema": _ref(target, v3)}}}}
        if body is not None:
            schema = _ref(f"{_META}.Patch", v3) if action == "patch" else _ref(schema_name(info), v3)
            op["requestBody"] = {"content": {t: {"schema": schema} for t in body}, "required": True}
    else:
        op["responses"] = {"200": {"description": "OK", "schema": _ref(target, v3)}}
        op["consumes"] = body or ["*/*"]
        op["produces"] = ["application/json"]
        if body is not None:
            op["parameters"].append(
                {"name": "body", "in": "body", "required": True, "schema": _ref(schema_name(info), v3)}
            )
    return op


_PATCH_TYPES = ["application/json-patch+json", "application/merge-patch+json"]


def _paths(info: kinds.ResourceInfo, v3: bool) -> dict[str, Any]:
    base = f"/apis/{info.group}/{info.version}" if info.group else f"/api/{info.version}"
    coll = f"{base}/namespaces/{{namespace}}/{info.plural}" if info.namespaced else f"{base}/{info.plural}"
    item = f"{coll}/{{name}}"
    path_params = [_param("name", "path", v3)] + ([_param("namespace", "path", v3)] if info.namespaced else [])
    coll_params = [_param("namespace", "path", v3)] if info.namespaced else []
    paths: dict[str, Any] = {
        coll: {
            "get": _op(info, "list", v3, returns=f"{schema_name(info)}List"),
            "post": _op(info, "post", v3, body=["application/json"]),
            "parameters": coll_params,
        },
        item: {
            "get": _op(info, "get", v3),
            "put": _op(info, "put", v3, body=["application/json"]),
            "patch": _op(info, "patch", v3, body=_PATCH_TYPES),
            "delete": _op(info, "delete", v3),
            "parameters": path_params,
        },
    }
    if info.namespaced:
        paths[f"{base}/{info.plural}"] = {"get": _op(info, "list", v3, returns=f"{schema_name(info)}List")}
    if "status" in info.subresources:
        paths[f"{item}/status"] = {
            "get": _op(info, "get", v3),
            "put": _op(info, "put", v3, body=["application/json"]),
            "patch": _op(info, "patch", v3, body=_PATCH_TYPES),
            "parameters": path_params,
        }
    return paths


def _roots(infos: list[kinds.ResourceInfo]) -> list[str]:
    names = [f"{_META}.{n}" for n in ("Status", "Patch", "DeleteOptions")]
    for info in infos:
        names += [schema_name(info), f"{schema_name(info)}List"]
    return names


def _infos(group: str, version: str) -> list[kinds.ResourceInfo]:
    return [i for i in kinds.served() if (i.group, i.version) == (group, version)]


def _crd_component() -> dict[str, Any]:
    crd = customresources.CRD
    name = schemas.component_name(crd.group, crd.version, crd.kind)
    open_object = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    root = coreschemas.kind_schema(
        "CustomResourceDefinition represents a resource that should be exposed on the API server. "
        "Its name MUST be in the format <.spec.name>.<.spec.group>.",
        crd.group,
        crd.version,
        crd.kind,
        None,
        None,
    )
    root["properties"]["spec"] = dict(
        open_object, description="spec describes how the user wants the resources to appear"
    )
    root["properties"]["status"] = dict(
        open_object, description="status indicates the actual state of the CustomResourceDefinition"
    )
    return {
        name: root,
        f"{name}List": schemas.list_component(crd),
    }


def _extra() -> dict[str, Any]:
    """Components of CustomResourceDefinition and of the kinds served from CRDs (dockyard's own
    kinds keep the components generated from their models, the source of their CRDs)."""
    out = _crd_component()
    for served in customresources.all_served():
        if not served.owned:
            out.update(schemas.custom_components(served.info, served.schema))
    return out


def _info_block() -> dict[str, str]:
    return {"title": "dockyard", "version": discovery.version()["gitVersion"]}


def v3_document(group: str, version: str) -> dict[str, Any] | None:
    """The OpenAPI 3.0 document of one group-version, or ``None`` if not served (cached: do not modify)."""
    return _v3_document(group, version, customresources.generation())


@lru_cache(maxsize=64)
def _v3_document(group: str, version: str, generation: int) -> dict[str, Any] | None:
    infos = _infos(group, version)
    if not infos:
        return None
    paths: dict[str, Any] = {}
    for info in infos:
        paths.update(_paths(info, True))
    return {
        "openapi": "3.0.0",
        "info": _info_block(),
        "paths": paths,
        "components": {"schemas": schemas.closure(_roots(infos), _extra())},
    }


def _hash(doc: Any) -> str:
    return hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32].upper()


def v3_index() -> dict[str, Any]:
    """The ``/openapi/v3`` index, each entry with a content hash in ``serverRelativeURL``."""
    return _v3_index(customresources.generation())


@lru_cache(maxsize=4)
def _v3_index(generation: int) -> dict[str, Any]:
    paths = {}
    for group, version in kinds.group_versions():
        key = gv_path(group, version)
        paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={_hash(v3_document(group, version))}"}
    return {"paths": paths}


def v2_document() -> dict[str, Any]:
    """One Swagger 2.0 document for every served kind (cached: do not modify)."""
    return _v2_document(customresources.generation())


@lru_cache(maxsize=4)
def _v2_document(generation: int) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    served = list(kinds.served())
    for info in served:
        paths.update(_paths(info, False))
    return {
        "swagger": "2.0",
        "info": _info_block(),
        "paths": paths,
        "definitions": schemas.to_v2(schemas.closure(_roots(served), _extra())),
    }
