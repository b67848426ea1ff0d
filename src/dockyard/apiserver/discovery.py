"""Discovery documents of the served kinds (:func:`dockyard.api.kinds.served`: built-in and CRDs'). Pure.

Shapes from the Kubernetes API concepts ("Discovery API", unaggregated form):
``/version`` (``version.Info``), ``/api`` (``APIVersions``), ``/apis``
(``APIGroupList``), ``/apis/G`` (``APIGroup``), ``/api/v1`` and
``/apis/G/V`` (``APIResourceList`` with one entry per resource and one per
subresource, named ``plural/sub``). Clients asking for the aggregated form
(``as=APIGroupDiscoveryList``) accept this plain form instead.
"""

from __future__ import annotations

import hashlib
from typing import Any

import dockyard
from dockyard.api import kinds

KUBERNETES_VERSION = kinds.KUBERNETES_VERSION
"""The Kubernetes minor version whose API this server follows (kubectl skew checks read it)."""

_SUBRESOURCE_VERBS = {
    "status": ["get", "patch", "update"],
    "log": ["create", "get"],
    "instantiate": ["create"],
    "details": ["patch", "update"],
    "finalize": ["update"],
}
_SUBRESOURCE_KIND = {"instantiate": "BuildRequest"}


def version() -> dict[str, Any]:
    """``version.Info`` for ``GET /version``."""
    major, minor = KUBERNETES_VERSION
    return {
        "major": str(major),
        "minor": str(minor),
        "gitVersion": f"v{major}.{minor}.0+dockyard.{dockyard.__version__}",
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "python3",
        "compiler": "cpython",
        "platform": "linux/amd64",
    }


def api_versions(server_address: str) -> dict[str, Any]:
    """``APIVersions`` for ``GET /api``."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group(group: str) -> dict[str, Any]:
    versions = [{"groupVersion": f"{g}/{v}", "version": v} for g, v in kinds.group_versions() if g == group]
    return {"name": group, "versions": versions, "preferredVersion": versions[0]}


def groups() -> list[str]:
    """Named groups served under ``/apis``, in serving order."""
    out: list[str] = []
    for g, _ in kinds.group_versions():
        if g and g not in out:
            out.append(g)
    return out


def api_group_list() -> dict[str, Any]:
    """``APIGroupList`` for ``GET /apis``."""
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group(g) for g in groups()]}


def api_group(group: str) -> dict[str, Any] | None:
    """``APIGroup`` for ``GET /apis/{group}``, or ``None`` if not served."""
    if group not in groups():
        return None
    return dict(_group(group), kind="APIGroup", apiVersion="v1")


def _verbs(info: kinds.ResourceInfo) -> list[str]:
    verbs = list(kinds.VERBS)
    if info.kind == "Namespace":
        verbs.remove("deletecollection")
    return verbs


def _storage_hash(info: kinds.ResourceInfo) -> str:
    return hashlib.sha256(f"{info.api_version}/{info.kind}".encode()).hexdigest()[:12]


def api_resource_list(group: str, version: str) -> dict[str, Any] | None:
    """``APIResourceList`` for ``GET /api/v1`` or ``/apis/G/V``, or ``None`` if not served."""
    if not kinds.serves(group, version):
        return None
    resources: list[dict[str, Any]] = []
    for info in kinds.served():
        if (info.group, info.version) != (group, version):
            continue
        entry: dict[str, Any] = {
            "name": info.plural,
            "singularName": info.singular,
            "namespaced": info.namespaced,
            "kind": info.kind,
            "verbs": _verbs(info),
            "storageVersionHash": _storage_hash(info),
        }
        if info.short_names:
            entry["shortNames"] = list(info.short_names)
        if info.categories:
            entry["categories"] = list(info.categories)
        resources.append(entry)
        for sub in info.subresources:
            resources.append(
                {
                    "name": f"{info.plural}/{sub}",
                    "singularName": "",
                    "namespaced": info.namespaced,
                    "kind": _SUBRESOURCE_KIND.get(sub, info.kind),
                    "verbs": _SUBRESOURCE_VERBS.get(sub, ["get"]),
                }
            )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }
