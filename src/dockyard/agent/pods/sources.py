"""What a pod's containers read from outside their spec: Secrets, ConfigMaps and the downward API.

kubelet ``pkg/kubelet/kubelet_pods.go`` ``makeEnvironmentVariables`` for ``env[].valueFrom`` and ``envFrom``,
and the ``secret``, ``configMap`` and ``projected`` volume plugins (``pkg/volume/secret``, ``pkg/volume/configmap``,
``pkg/volume/projected``) for files:

- ``envFrom[]`` first, in order (``secretRef`` or ``configMapRef``), each key as ``prefix + key`` (a name the
  relaxed rule of KEP-4369 refuses, :func:`dockyard.api.models.is_env_name`, is skipped, as the kubelet
  skips it; a key that starts with a digit is set); then ``env[]`` in order, overriding: ``value``
  with ``$(VAR)`` expanded against what is defined so far, ``valueFrom.secretKeyRef``, ``configMapKeyRef`` and
  ``fieldRef`` as they are (never expanded).
- A missing Secret, ConfigMap or key fails the container with ``CreateContainerConfigError`` and the kubelet's
  message (``secret "db" not found``, ``couldn't find key password in Secret default/db``, ``configmap "web" not
  found``, ``couldn't find key mode in ConfigMap default/web``) unless the reference is ``optional``; then the
  variable (or file) is left out.
- A ``secret`` or ``configMap`` volume holds one file per key (a ConfigMap's ``data`` and ``binaryData``; or per
  ``items[]`` entry, at its ``path``), mode ``items[].mode`` else ``defaultMode`` (0644); a ``projected`` volume
  the same for each of its ``secret`` and ``configMap`` sources. They are mounted read-only, as the kubelet
  mounts them since 1.10, and written again whenever a
  container of the pod starts and, while the pod runs, every
  :data:`~dockyard.agent.pods.worker.SECRET_REFRESH_PERIOD` seconds (the kubelet's periodic remount): a running
  container sees a changed Secret's or ConfigMap's files within that period (each file replaced whole by a
  rename; a ``subPath`` mount keeps the bytes it started with, as in Kubernetes).

The Secrets and ConfigMaps come from injected :data:`ObjectLookup` functions (the node identity reads only
those its pods reference: the Node authorizer). The API server refuses every other source with a 422 (:mod:`dockyard.api.validation`);
a pod stored before gets ``CreateContainerConfigError`` naming the field here.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lightkube.models.core_v1 import Container
from lightkube.resources.core_v1 import Pod

from dockyard.agent import podspec
from dockyard.api import models, podsources

__all__ = [
    "FIELD_PATHS",
    "MissingSecret",
    "ObjectLookup",
    "SecretLookup",
    "SecretUnavailable",
    "container_env",
    "field_value",
    "volume_files",
    "write_volume",
]

ObjectLookup = Callable[[str, str], Mapping[str, bytes] | None]
"""``(namespace, name) -> {key: bytes}`` of a Secret (its ``data``) or a ConfigMap (its ``data`` and
``binaryData``), ``None`` if it does not exist.

Raises :class:`SecretUnavailable` when it cannot be read (forbidden, the API server away)."""
SecretLookup = ObjectLookup
"""An :data:`ObjectLookup` of Secrets."""

DEFAULT_MODE = 0o644
"""File mode of a Secret's files without ``defaultMode`` or ``items[].mode`` (``SecretVolumeSourceDefaultMode``)."""

FIELD_PATHS = podsources.ENV_FIELD_PATHS
"""``fieldRef.fieldPath`` values served, besides ``metadata.labels['KEY']`` and ``metadata.annotations['KEY']``
(the API server refuses the others: the one list, in :mod:`dockyard.api.podsources`)."""

_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


class SecretUnavailable(Exception):
    """A Secret or ConfigMap could not be read (not that it does not exist): forbidden, or the API server is
    away."""


class MissingSecret(podspec.ConfigError):
    """A Secret, ConfigMap or key a container needs is missing or unreadable (a volume waits for it; an env
    var fails)."""


SECRET, CONFIG_MAP = "Secret", "ConfigMap"


class _Lookups:
    """The lookup of each kind a pod reads (``None``: this agent reads none of that kind)."""

    def __init__(self, secrets: ObjectLookup | None, config_maps: ObjectLookup | None) -> None:
        self._by_kind = {SECRET: secrets, CONFIG_MAP: config_maps}

    def read(self, kind: str, namespace: str, name: str, *, optional: bool) -> Mapping[str, bytes] | None:
        """The object's keys; ``None`` if it is missing and ``optional``.

        Raises:
            MissingSecret: missing and not optional (kubelet: ``secret "NAME" not found``, ``configmap "NAME" not
                found``), or unreadable.
            podspec.ConfigError: this agent reads no objects of ``kind``.
        """
        lookup = self._by_kind[kind]
        if lookup is None:
            raise podspec.ConfigError(f"this agent reads no {kind}s")
        try:
            data = lookup(namespace, name)
        except SecretUnavailable as err:
            raise MissingSecret(f'{kind.lower()} "{name}": {err}') from err
        if data is None and not optional:
            raise MissingSecret(f'{kind.lower()} "{name}" not found')
        return data


def field_value(pod: Pod, field_path: str, *, pod_ip: str | None = None, host_ip: str = "127.0.0.1") -> str:
    """The downward API's value of ``field_path`` (one of :data:`FIELD_PATHS` or a label/annotation subscript).

    ``pod_ip`` is the address the agent gave the pod (its status may not carry it yet at the first start).

    Raises:
        podspec.ConfigError: a field path it does not serve (the API server refuses them: a pod stored before).
    """
    meta, spec = pod.metadata, pod.spec
    match = _SUBSCRIPT.match(field_path)
    if match:
        table = (meta.labels if match.group(1) == "labels" else meta.annotations) if meta else None
        return str((table or {}).get(match.group(2), ""))
    values: dict[str, Any] = {
        "metadata.name": meta.name if meta else "",
        "metadata.namespace": (meta.namespace if meta else "") or "default",
        "metadata.uid": meta.uid if meta else "",
        "spec.nodeName": spec.nodeName if spec else "",
        "spec.serviceAccountName": (spec.serviceAccountName if spec else "") or "default",
        "status.hostIP": host_ip,
        "status.podIP": pod_ip or (pod.status.podIP if pod.status else "") or "",
    }
    if field_path not in values:
        raise podspec.ConfigError(f"fieldRef.fieldPath {field_path!r}: not supported")
    return str(values[field_path] or "")


def container_env(
    pod: Pod,
    container: Container,
    lookup: SecretLookup | None,
    *,
    config_maps: ObjectLookup | None = None,
    pod_ip: str | None = None,
    host_ip: str = "127.0.0.1",
) -> dict[str, str]:
    """The container's environment with every source resolved (module docstring for the order and rules).

    Args:
        lookup: reads Secrets; ``config_maps`` reads ConfigMaps (``None``: a reference to one is an error).
    Raises:
        podspec.ConfigError: a missing Secret, ConfigMap or key that is not optional, an unreadable one, a source
            the node agent does not serve (the message names the field, as ``CreateContainerConfigError`` shows
            it).
    """
    namespace = str(pod.metadata.namespace if pod.metadata else "") or "default"
    objects = _Lookups(lookup, config_maps)
    env: dict[str, str] = {}
    for i, source in enumerate(container.envFrom or []):
        if source.secretRef is not None and source.secretRef.name:
            kind, ref = SECRET, source.secretRef
        elif source.configMapRef is not None and source.configMapRef.name:
            kind, ref = CONFIG_MAP, source.configMapRef
        else:
            raise podspec.ConfigError(f"envFrom[{i}]: one of secretRef or configMapRef is required")
        data = objects.read(kind, namespace, str(ref.name), optional=bool(ref.optional))
        for key, value in sorted((data or {}).items()):
            name = (source.prefix or "") + key
            if models.is_env_name(name):
                env[name] = value.decode("utf-8", errors="replace")
    for i, item in enumerate(container.env or []):
        name = item.name or ""
        if not name:
            raise podspec.ConfigError(f"env[{i}].name: required")
        source = item.valueFrom
        if source is None:
            env[name] = podspec.expand_vars(str(item.value or ""), env)
        elif source.secretKeyRef is not None or source.configMapKeyRef is not None:
            kind, key_ref = (
                (SECRET, source.secretKeyRef)
                if source.secretKeyRef is not None
                else (CONFIG_MAP, source.configMapKeyRef)
            )
            optional = bool(key_ref.optional)
            data = objects.read(kind, namespace, key_ref.name or "", optional=optional)
            if data is None:
                continue
            if key_ref.key not in data:
                if optional:
                    continue
                raise MissingSecret(f"couldn't find key {key_ref.key} in {kind} {namespace}/{key_ref.name}")
            env[name] = data[key_ref.key].decode("utf-8", errors="replace")
        elif source.fieldRef is not None:
            env[name] = field_value(pod, source.fieldRef.fieldPath, pod_ip=pod_ip, host_ip=host_ip)
        else:
            raise podspec.ConfigError(
                f"env[{i}].valueFrom ({name}): only secretKeyRef, configMapKeyRef and fieldRef are supported"
            )
    return env


def _files(
    objects: _Lookups, kind: str, namespace: str, source: Any, name: str, default_mode: int
) -> dict[str, tuple[bytes, int]]:
    """``{relative path: (bytes, mode)}`` of one Secret or ConfigMap source (a volume or a projected source)."""
    optional = bool(source.optional)
    data = objects.read(kind, namespace, name, optional=optional)
    if data is None:
        return {}
    if not source.items:
        return {key: (value, default_mode) for key, value in data.items()}
    out = {}
    for item in source.items:
        path = str(item.path or "")
        if not path or path.startswith("/") or ".." in path.split("/"):
            raise podspec.ConfigError(f"items path {path!r}: must be a relative path without '..'")
        if item.key not in data:
            if optional:
                continue
            raise MissingSecret(f"couldn't find key {item.key} in {kind} {namespace}/{name}")
        out[path] = (data[item.key], int(item.mode) if item.mode is not None else default_mode)
    return out


def volume_files(
    pod: Pod, volume: Any, lookup: SecretLookup | None, *, config_maps: ObjectLookup | None = None
) -> dict[str, tuple[bytes, int]]:
    """``{relative path: (bytes, mode)}`` of a ``secret``, ``configMap`` or ``projected`` volume.

    Args:
        lookup: reads Secrets; ``config_maps`` reads ConfigMaps (``None``: a reference to one is an error).
    Raises:
        podspec.ConfigError: a missing Secret, ConfigMap or key that is not optional, or a projected source
            other than ``secret`` and ``configMap``.
    """
    namespace = str(pod.metadata.namespace if pod.metadata else "") or "default"
    objects = _Lookups(lookup, config_maps)
    if volume.secret is not None or volume.configMap is not None:
        kind, source = (SECRET, volume.secret) if volume.secret is not None else (CONFIG_MAP, volume.configMap)
        mode = int(source.defaultMode) if source.defaultMode is not None else DEFAULT_MODE
        name = source.secretName if kind == SECRET else source.name
        return _files(objects, kind, namespace, source, name or "", mode)
    projected = volume.projected
    mode = int(projected.defaultMode) if projected.defaultMode is not None else DEFAULT_MODE
    files: dict[str, tuple[bytes, int]] = {}
    for j, source in enumerate(projected.sources or []):
        if source.secret is not None:
            files.update(_files(objects, SECRET, namespace, source.secret, source.secret.name or "", mode))
        elif source.configMap is not None:
            files.update(_files(objects, CONFIG_MAP, namespace, source.configMap, source.configMap.name or "", mode))
        else:
            raise podspec.ConfigError(
                f"volume {volume.name!r}: projected.sources[{j}]: only secret and configMap are supported"
            )
    return files


def write_volume(root: Path, files: Mapping[str, tuple[bytes, int]], *, fs_group: int | None = None) -> bool:
    """Make ``root`` hold exactly ``files``: each written to a temporary file and renamed over its path (a
    reader sees the old bytes or the new ones), every other file removed; a file that already holds its bytes
    with its mode is left alone. ``root`` itself stays (it is bind mounted into the pod's running containers,
    read-only). With ``fs_group`` (the pod's ``fsGroup``) the files belong to that group and are
    group-readable, as the kubelet's ``SetVolumeOwnership`` leaves them.

    Returns:
        True if a file was written or removed.
    Raises:
        OSError: a file could not be written (e.g. paths that clash as a file and a directory).
    """
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    wanted = set()
    changed = False
    for rel, (data, mode) in files.items():
        path = root / rel
        wanted.add(path)
        if fs_group is not None:
            mode |= 0o040
        if _holds(path, data, mode & 0o777, fs_group):
            continue
        changed = True
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            if fs_group is not None:
                os.chown(tmp, -1, fs_group)
            os.chmod(tmp, mode & 0o777)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    for path in sorted(root.rglob("*"), reverse=True):
        if path.is_symlink() or path.is_file():
            if path not in wanted:
                path.unlink()
                changed = True
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
            changed = True
    return changed


def _holds(path: Path, data: bytes, mode: int, group: int | None) -> bool:
    """True if ``path`` is a regular file (not a link) holding ``data`` with permission bits ``mode`` (and
    group ``group`` when given)."""
    try:
        st = path.lstat()
        if not stat.S_ISREG(st.st_mode) or stat.S_IMODE(st.st_mode) != mode or st.st_size != len(data):
            return False
        if group is not None and st.st_gid != group:
            return False
        return path.read_bytes() == data
    except OSError:
        return False
