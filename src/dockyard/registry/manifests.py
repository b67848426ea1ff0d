"""Pure manifest work: a pushed image manifest as an OCI image manifest carrying annotations, and its
config blob carrying labels.

No I/O. An engine pushes a Docker Image Manifest V2 Schema 2 (or an OCI manifest) without
annotations; :func:`annotated_oci_manifest` rewrites it as an OCI image manifest
(``application/vnd.oci.image.manifest.v1+json``, OCI image-spec ``manifest.md``) that names the same
layer blobs and carries ``annotations`` — the conversion containers/image makes for
``skopeo copy --format oci``: a Docker image config is an OCI image config, only the descriptors' media
types are mapped. The config descriptor is the pushed one, or a replacement: :func:`labelled_config`
adds labels to a config blob (``config.Labels``, OCI image-spec ``config.md``) without touching its
other fields, so labels need no ``LABEL`` step (no extra image commit) in the build.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from dockyard.registry import digest as digests
from dockyard.registry import errors

__all__ = [
    "DOCKER_MANIFEST",
    "OCI_MANIFEST",
    "annotated_oci_manifest",
    "annotations_of",
    "config_descriptor",
    "labelled_config",
]

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


def annotated_oci_manifest(
    content: bytes,
    media_type: str,
    annotations: Mapping[str, str],
    *,
    config: tuple[str, int] | None = None,
) -> bytes:
    """``content`` (a Docker schema 2 or OCI image manifest) as OCI image manifest bytes with ``annotations``
    merged over any it had.

    Args:
        content: the manifest as the registry serves it.
        media_type: its ``Content-Type`` (the ``mediaType`` field wins when present).
        annotations: string keys and values, e.g. the OCI ``org.opencontainers.image.*`` keys.
        config: ``(digest, size in bytes)`` of a replacement config blob (e.g. :func:`labelled_config` of
            the pushed one, already in the repository); the config descriptor keeps its media type.
            ``None``: the pushed config.

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
    pushed_config = doc.get("config") or {}
    config_type = pushed_config.get("mediaType") if isinstance(pushed_config, dict) else None
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise errors.RegistryError("manifest has no layers list")
    if config is not None and isinstance(pushed_config, dict):
        digest, size = config
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise errors.RegistryError(f"replacement config size {size!r} is not a byte count")
        pushed_config = {**pushed_config, "digest": digests.validate(digest, source="replacement config"), "size": size}
    merged = dict(doc.get("annotations") or {})
    merged.update(annotations)
    out: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": _descriptor(pushed_config, OCI_CONFIG if config_type in (None, DOCKER_CONFIG) else str(config_type)),
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


def config_descriptor(content: bytes) -> tuple[str, int]:
    """``(digest, size in bytes)`` of the config blob an image manifest names (OCI image-spec ``manifest.md``,
    ``config``; the same field in Docker schema 2).

    Raises:
        RegistryError: not JSON, or no config descriptor with a size and a well-formed digest
            (``InvalidDigest``).
    """
    try:
        doc = json.loads(content)
    except ValueError as e:
        raise errors.RegistryError(f"manifest is not JSON: {e}") from None
    config = doc.get("config") if isinstance(doc, dict) else None
    found = _descriptor(config, "")
    size = found["size"]
    if isinstance(size, bool) or size < 0:
        raise errors.RegistryError(f"manifest's config descriptor has a bad size {size!r}")
    return digests.validate(found["digest"], source="manifest's config descriptor"), size


def labelled_config(content: bytes, labels: Mapping[str, str]) -> bytes:
    """An image config blob with ``labels`` merged over its ``config.Labels`` (OCI image-spec ``config.md``,
    ``config.Labels``; the same field of a Docker image config, what a Dockerfile ``LABEL`` sets).

    Every other field keeps its value and its key order; a missing or null ``config`` or ``Labels`` is
    created. The new blob's digest is that of the returned bytes.

    Args:
        content: the config blob as the registry serves it (JSON object).
        labels: string keys and values, e.g. the OCI ``org.opencontainers.image.*`` keys.

    Returns:
        Compact JSON bytes (the same input gives the same bytes).

    Raises:
        RegistryError: not a JSON object, or ``config`` / ``config.Labels`` is not an object.
    """
    try:
        doc = json.loads(content)
    except ValueError as e:
        raise errors.RegistryError(f"image config is not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise errors.RegistryError("image config is not a JSON object")
    run_config = doc.get("config")
    if run_config is None:
        run_config = doc["config"] = {}
    if not isinstance(run_config, dict):
        raise errors.RegistryError("image config's config field is not an object")
    existing = run_config.get("Labels")
    if existing is not None and not isinstance(existing, dict):
        raise errors.RegistryError("image config's config.Labels is not an object")
    run_config["Labels"] = {**(existing or {}), **{str(k): str(v) for k, v in labels.items()}}
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
