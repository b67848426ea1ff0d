"""OpenAPI documents, enough for ``kubectl apply`` and ``kubectl explain``-free use. Pure.

- ``GET /openapi/v3``: the index ``{"paths": {"api/v1": {"serverRelativeURL": ...}}}``
  (Kubernetes API concepts, "OpenAPI V3").
- ``GET /openapi/v3/apis/G/V``: one OpenAPI 3.0 document per group-version.
  Every PATCH operation carries ``x-kubernetes-group-version-kind`` and a
  ``fieldValidation`` query parameter, which tells kubectl the server
  validates fields ("Field validation" in the API concepts), so kubectl skips
  client-side schema validation. PATCH request bodies list JSON patch and
  merge patch but not strategic merge patch, so kubectl computes a
  strategic merge patch for built-in kinds from its own compiled-in types.
- ``GET /openapi/v2``: a Swagger 2.0 document in JSON.

Schemas are permissive (``x-kubernetes-preserve-unknown-fields``); the real
validation is :func:`dockyard.api.validation.validate` on the server.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from dockyard.api import kinds
from dockyard.apiserver import discovery

_META = "io.k8s.apimachinery.pkg.apis.meta.v1"
_QUERY = ("dryRun", "fieldManager", "fieldValidation", "force", "pretty")


def gv_path(group: str, version: str) -> str:
    """The index key of a group-version: ``api/v1`` or ``apis/G/V``."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def schema_name(info: kinds.ResourceInfo) -> str:
    """Component name of a kind, reversed-domain style (``io.k8s.api.core.v1.Pod``, ``dev.dockyard.v1alpha1.Build``)."""
    if info.group == "":
        return f"io.k8s.api.core.{info.version}.{info.kind}"
    if "." not in info.group:
        return f"io.k8s.api.{info.group}.{info.version}.{info.kind}"
    return ".".join(reversed(info.group.split("."))) + f".{info.version}.{info.kind}"


def _gvk(info: kinds.ResourceInfo) -> dict[str, str]:
    return {"group": info.group, "version": info.version, "kind": info.kind}


def _ref(name: str, v3: bool) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}" if v3 else f"#/definitions/{name}"}


def _kind_schema(info: kinds.ResourceInfo, v3: bool) -> dict[str, Any]:
    free = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return {"type": "object", "description": f"{info.kind} ({info.api_version}).",
            "x-kubernetes-group-version-kind": [_gvk(info)],
            "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                           "metadata": _ref(f"{_META}.ObjectMeta", v3),
                           "spec": dict(free), "status": dict(free)},
            "x-kubernetes-preserve-unknown-fields": True}


def _list_schema(info: kinds.ResourceInfo, v3: bool) -> dict[str, Any]:
    return {"type": "object", "x-kubernetes-group-version-kind": [dict(_gvk(info), kind=info.list_kind)],
            "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                           "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                           "items": {"type": "array", "items": _ref(schema_name(info), v3)}},
            "required": ["items"]}


def _param(name: str, where: str, v3: bool) -> dict[str, Any]:
    p: dict[str, Any] = {"name": name, "in": where, "uniqueItems": True}
    if where == "path":
        p["required"] = True
    if v3:
        p["schema"] = {"type": "string"}
    else:
        p["type"] = "string"
    return p


def _op(info: kinds.ResourceInfo, action: str, v3: bool, *, body: list[str] | None = None,
        returns: str | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": f"{action}{info.kind}", "x-kubernetes-action": action,
                          "x-kubernetes-group-version-kind": _gvk(info),
                          "parameters": [_param(q, "query", v3) for q in _QUERY],
                          "tags": [gv_path(info.group, info.version).replace("/", "_")]}
    target = returns or schema_name(info)
    if v3:
        op["responses"] = {"200": {"description": "OK", "content": {
            "application/json": {"schema": _ref(target, v3)}}}}
        if body is not None:
            schema = _ref(f"{_META}.Patch", v3) if action == "patch" else _ref(schema_name(info), v3)
            op["requestBody"] = {"content": {t: {"schema": schema} for t in body}, "required": True}
    else:
        op["responses"] = {"200": {"description": "OK", "schema": _ref(target, v3)}}
        op["consumes"] = body or ["*/*"]
        op["produces"] = ["application/json"]
        if body is not None:
            op["parameters"].append({"name": "body", "in": "body", "required": True,
                                     "schema": _ref(schema_name(info), v3)})
    return op


_PATCH_TYPES = ["application/json-patch+json", "application/merge-patch+json"]


def _paths(info: kinds.ResourceInfo, v3: bool) -> dict[str, Any]:
    base = f"/apis/{info.group}/{info.version}" if info.group else f"/api/{info.version}"
    coll = f"{base}/namespaces/{{namespace}}/{info.plural}" if info.namespaced else f"{base}/{info.plural}"
    item = f"{coll}/{{name}}"
    path_params = [_param("name", "path", v3)] + ([_param("namespace", "path", v3)] if info.namespaced else [])
    coll_params = [_param("namespace", "path", v3)] if info.namespaced else []
    paths: dict[str, Any] = {
        coll: {"get": _op(info, "list", v3, returns=f"{schema_name(info)}List"),
               "post": _op(info, "post", v3, body=["application/json"]),
               "parameters": coll_params},
        item: {"get": _op(info, "get", v3), "put": _op(info, "put", v3, body=["application/json"]),
               "patch": _op(info, "patch", v3, body=_PATCH_TYPES), "delete": _op(info, "delete", v3),
               "parameters": path_params},
    }
    if info.namespaced:
        paths[f"{base}/{info.plural}"] = {"get": _op(info, "list", v3, returns=f"{schema_name(info)}List")}
    if "status" in info.subresources:
        paths[f"{item}/status"] = {"get": _op(info, "get", v3), "put": _op(info, "put", v3, body=["application/json"]),
                                   "patch": _op(info, "patch", v3, body=_PATCH_TYPES), "parameters": path_params}
    return paths


def _meta_schemas() -> dict[str, Any]:
    free = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return {f"{_META}.ObjectMeta": {"type": "object", "properties": {
                "name": {"type": "string"}, "namespace": {"type": "string"}, "generateName": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                "resourceVersion": {"type": "string"}, "uid": {"type": "string"},
                "generation": {"type": "integer", "format": "int64"},
                "creationTimestamp": {"type": "string", "format": "date-time"},
                "deletionTimestamp": {"type": "string", "format": "date-time"},
                "finalizers": {"type": "array", "items": {"type": "string"}},
                "ownerReferences": {"type": "array", "items": dict(free)}},
                "x-kubernetes-preserve-unknown-fields": True},
            f"{_META}.Patch": {"type": "object", "description": "A patch document."},
            f"{_META}.Status": dict(free),
            f"{_META}.DeleteOptions": dict(free)}


def _schemas(infos: list[kinds.ResourceInfo], v3: bool) -> dict[str, Any]:
    out = _meta_schemas()
    for info in infos:
        out[schema_name(info)] = _kind_schema(info, v3)
        out[f"{schema_name(info)}List"] = _list_schema(info, v3)
    return out


def _infos(group: str, version: str) -> list[kinds.ResourceInfo]:
    return [i for i in kinds.RESOURCES if (i.group, i.version) == (group, version)]


def _info_block() -> dict[str, str]:
    return {"title": "dockyard", "version": discovery.version()["gitVersion"]}


def v3_document(group: str, version: str) -> dict[str, Any] | None:
    """The OpenAPI 3.0 document of one group-version, or ``None`` if not served."""
    infos = _infos(group, version)
    if not infos:
        return None
    paths: dict[str, Any] = {}
    for info in infos:
        paths.update(_paths(info, True))
    return {"openapi": "3.0.0", "info": _info_block(), "paths": paths,
            "components": {"schemas": _schemas(infos, True)}}


def _hash(doc: Any) -> str:
    return hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32].upper()


def v3_index() -> dict[str, Any]:
    """The ``/openapi/v3`` index, each entry with a content hash in ``serverRelativeURL``."""
    paths = {}
    for group, version in kinds.group_versions():
        key = gv_path(group, version)
        paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={_hash(v3_document(group, version))}"}
    return {"paths": paths}


def v2_document() -> dict[str, Any]:
    """One Swagger 2.0 document for every served kind."""
    paths: dict[str, Any] = {}
    for info in kinds.RESOURCES:
        paths.update(_paths(info, False))
    return {"swagger": "2.0", "info": _info_block(), "paths": paths,
            "definitions": _schemas(list(kinds.RESOURCES), False)}
