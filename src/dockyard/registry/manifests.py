"""Pure manifest work: a pushed image manifest as an OCI image manifest carrying annotations.

No I/O. An engine pushes a Docker Image Manifest V2 Schema 2 (or an OCI manifest) without
annotations; :func:`annotated_oci_manifest` rewrites it as an OCI image manifest
(``application/vnd.oci.image.manifest.v1+json``, OCI image-spec ``manifest.md``) that names the same
config and layer blobs and carries ``annotations`` — the conversion containers/image makes for
``skopeo copy --format oci``: the config blob is unchanged (a Docker image config is an OCI image
config), only the descriptors' media types are mapped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from dockyard.registry import errors

__all__ = ["DOCKER_MANIFEST", "OCI_MANIFEST", "annotated_oci_manifest", "annotations_of"]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"

#: Docker schema 2 layer media types and their OCI equivalents (image-spec ``media-types.md`` "Compatibility").
_LAYER_TYPES = {
    "application/vnd.docker.image.rootfs.diff.tar.gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": (
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
    ),
}


def _descriptor(doc: Any, media_type: str) -> dict[str, Any]:
    if not isinstance(doc, dict) or not isinstance(doc.get("digest"), str) or not isinstance(doc.get("size"), int):
        raise errors.RegistryError("manifest has a descriptor without digest and size")
    out = {k: v for k, v in doc.items() if k in ("digest", "size", "urls", "annotations", "platform")}
    return {"mediaType": media_type, **out}


def annotated_oci_manifest(content: bytes, media_type: str, annotations: Mapping[str, str]) -> bytes:
    """``content`` (a Docker schema 2 or OCI image manifest) as OCI image manifest bytes with ``annotations``
    merged over any it had.

    Args:
        content: the manifest as the registry serves it.
        media_type: its ``Content-Type`` (the ``mediaType`` field wins when present).
        annotations: string keys and values, e.g. the OCI ``org.opencontainers.image.*`` keys.

    Returns:
        Compact JSON bytes (keys in a fixed order: the same input gives the same digest).

    Raises:
        RegistryError: not a single-image manifest (an index or manifest list, schema 1) or malformed.
    """
    try:
        doc = json.loads(content)
    except ValueError as e:
        raise errors.RegistryError(f"manifest is not JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("schemaVersion") != 2:
        raise errors.RegistryError("not a schema 2 image manifest")
    kind = doc.get("mediaType") or media_type
    if kind not in (DOCKER_MANIFEST, OCI_MANIFEST):
        raise errors.RegistryError(f"cannot annotate a manifest of type {kind!r} (an image manifest is needed)")
    config = doc.get("config") or {}
    config_type = config.get("mediaType") if isinstance(config, dict) else None
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise errors.RegistryError("manifest has no layers list")
    merged = dict(doc.get("annotations") or {})
    merged.update(annotations)
    out: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": _descriptor(config, OCI_CONFIG if config_type in (None, DOCKER_CONFIG) else str(config_type)),
        "layers": [
            _descriptor(layer, _LAYER_TYPES.get(str(layer.get("mediaType")), str(layer.get("mediaType"))))
            if isinstance(layer, dict)
            else _descriptor(layer, "")
            for layer in layers
        ],
    }
    if merged:
        out["annotations"] = {str(k): str(v) for k, v in sorted(merged.items())}
    return json.dumps(out, separators=(",", ":")).encode()


def annotations_of(content: bytes) -> dict[str, str]:
    """The ``annotations`` of a manifest (``{}`` when it has none or is not JSON)."""
    try:
        doc = json.loads(content)
    except ValueError:
        return {}
    found = doc.get("annotations") if isinstance(doc, dict) else None
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}
