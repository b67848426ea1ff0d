"""The volume manager: ``emptyDir``, ``hostPath``, ``secret``, ``configMap`` and ``projected`` volumes,
``subPath`` staging, the pod dir.

kubelet ``pkg/kubelet/volumemanager/`` and ``kubelet_pods.go`` ``makeMounts``. The pod dir follows the
kubelet's layout under ``state_dir``: ``pods/<uid>/volumes/kubernetes.io~empty-dir/<name>`` for
``emptyDir`` volumes (a tmpfs for ``medium: Memory``), ``kubernetes.io~secret/<name>``,
``kubernetes.io~configmap/<name>`` and ``kubernetes.io~projected/<name>`` for the files of Secrets and ConfigMaps
(:mod:`.sources`; each a tmpfs, mounted read-only) and ``pods/<uid>/volume-subpaths/<volume>/<container>/<index>``
for staged ``subPath`` mounts (see :mod:`dockyard.agent.subpath`).
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import subprocess
import uuid
from pathlib import Path

from lightkube.models.core_v1 import Container, EmptyDirVolumeSource, Volume
from lightkube.resources.core_v1 import Pod

from dockyard.agent import podspec, subpath
from dockyard.agent.pods import sources
from dockyard.api.podfields import TERMINATION_MESSAGE_PATH

__all__ = ["MountError", "VolumeManager"]

log = logging.getLogger(__name__)


class MountError(Exception):
    """A volume could not be set up for now (a ``hostPath`` type check failed); the container stays
    ``ContainerCreating`` with this message."""


class VolumeManager:
    """Sets up the volumes of this node's pods under ``state_dir`` (see the module docstring)."""

    def __init__(
        self,
        state_dir: Path,
        *,
        secrets: sources.SecretLookup | None = None,
        config_maps: sources.ObjectLookup | None = None,
    ) -> None:
        self._state_dir = Path(state_dir)
        self._secrets = secrets
        self._config_maps = config_maps

    def pod_dir(self, uid: str) -> Path:
        """``<state_dir>/pods/<uid>``."""
        return self._state_dir / "pods" / uid

    def termination_message_bind(self, pod: Pod, container: Container) -> str:
        """A fresh, empty, world-writable file for this attempt of ``container`` to write its termination message
        in, bound at its ``terminationMessagePath`` (default :data:`TERMINATION_MESSAGE_PATH`), as the kubelet
        binds ``pods/<uid>/containers/<name>/<id>``: ``SOURCE:TARGET:rw``.

        Raises:
            podspec.ConfigError: a relative ``terminationMessagePath``.
        """
        target = container.terminationMessagePath or TERMINATION_MESSAGE_PATH
        if not target.startswith("/"):
            raise podspec.ConfigError("terminationMessagePath: must be absolute")
        folder = self.pod_dir(_uid(pod)) / "containers" / container.name
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / uuid.uuid4().hex[:16]
        path.touch(mode=0o666)
        os.chmod(path, 0o666)  # whatever user the container runs as may write it (the kubelet's mode)
        return f"{path}:{target}:rw"

    def binds(self, pod: Pod, container: Container) -> list[str]:
        """The container's volume mounts as engine binds (``SOURCE:TARGET:rw|ro``; ``secret``, ``configMap`` and
        ``projected`` volumes always ``ro``); a mount with ``subPath`` binds its staged path (:meth:`stage_subpath`).

        Raises:
            podspec.ConfigError: unknown volume, relative ``mountPath``, unsupported volume type, or a
                refused ``subPath`` (kubelet ``CreateContainerConfigError``).
            MountError: a ``hostPath`` type check failed (the container stays ``ContainerCreating``).
        """
        volumes = {v.name: v for v in (pod.spec.volumes if pod.spec else None) or []}
        binds = []
        for i, mount in enumerate(container.volumeMounts or []):
            vol = volumes.get(mount.name)
            if vol is None:
                raise podspec.ConfigError(f"volumeMounts[{i}].name: no volume {mount.name!r}")
            source = self._volume_source(pod, vol)
            target = mount.mountPath or ""
            if not target.startswith("/"):
                raise podspec.ConfigError(f"volumeMounts[{i}].mountPath: must be absolute")
            sub = mount.subPath or ""
            if sub:
                source = self.stage_subpath(pod, container, i, source, sub)
            read_only = mount.readOnly or _object_kind(vol) is not None
            binds.append(f"{source}:{target}:{'ro' if read_only else 'rw'}")
        return binds

    def stage_subpath(self, pod: Pod, container: Container, index: int, root: Path, sub: str) -> Path:
        """kubelet ``makeMounts`` + ``PrepareSafeSubpath``: resolve ``sub`` beneath the volume ``root``
        without following symlinks out of it, make missing directories, and bind-mount the checked inode
        on a staging path of the pod dir; the engine mounts that path (see :mod:`dockyard.agent.subpath`).

        Raises:
            podspec.ConfigError: the subPath is refused (the container gets ``CreateContainerConfigError``
                with a message naming the subPath, the volumeMount and the container; no host path).
        """
        mount = (container.volumeMounts or [])[index]
        volume, name = mount.name, container.name
        try:
            staging = subpath.staging_path(self.pod_dir(_uid(pod)), volume=volume, container=name, index=index)
            return subpath.stage(root, sub, staging)
        except subpath.SubPathError as e:
            raise podspec.ConfigError(
                f'failed to prepare subPath "{sub}" for volumeMount "{volume}" of container "{name}": {e}'
            ) from e

    def empty_dir_over_limit(self, pod: Pod) -> tuple[str, str] | None:
        """``(volume, sizeLimit)`` of the pod's first disk ``emptyDir`` using more than its ``sizeLimit``, or
        ``None`` (the kubelet's eviction manager: the pod is then evicted; a ``Memory`` one is a tmpfs of that
        size, which the kernel bounds)."""
        for vol in (pod.spec.volumes if pod.spec else None) or []:
            empty = vol.emptyDir
            if empty is None or empty.sizeLimit is None or empty.medium == "Memory":
                continue
            path = self.pod_dir(_uid(pod)) / "volumes" / "kubernetes.io~empty-dir" / vol.name
            if path.is_dir() and du_bytes(path) > podspec.memory_to_bytes(str(empty.sizeLimit)):
                return vol.name, str(empty.sizeLimit)
        return None

    def refresh_secret_volumes(self, pod: Pod) -> list[str]:
        """Write the pod's ``secret``, ``configMap`` and ``projected`` volumes again from their Secrets and
        ConfigMaps as they are now (the
        kubelet's periodic remount of a running pod's volumes): a changed key reaches the files the running
        containers see, each file replaced whole by a rename; files already up to date are left alone. Only
        volumes already set up (a container of the pod started with them) are written. A Secret or key that is
        missing or unreadable now leaves that volume's files as they are (the kubelet keeps the last content
        when a remount fails).

        Returns:
            the names of the volumes whose files changed.
        """
        if (self._secrets is None and self._config_maps is None) or pod.spec is None:
            return []
        security = pod.spec.securityContext
        fs_group = int(security.fsGroup) if security is not None and security.fsGroup is not None else None
        changed = []
        for vol in pod.spec.volumes or []:
            kind = _object_kind(vol)
            if kind is None:
                continue
            path = self.pod_dir(_uid(pod)) / "volumes" / kind / vol.name
            if not os.path.ismount(path):
                continue
            try:
                files = sources.volume_files(pod, vol, self._secrets, config_maps=self._config_maps)
                if sources.write_volume(path, files, fs_group=fs_group):
                    changed.append(vol.name)
            except (podspec.ConfigError, OSError) as err:
                log.info("pod %s: volume %r keeps its files: %s", _uid(pod), vol.name, err)
        return changed

    def remove_pod_dir(self, uid: str) -> None:
        """Remove the pod dir (emptyDir volumes, staged subPaths); staged subPath and tmpfs mounts are unmounted
        first and, if one cannot be, the dir stays (a recursive delete would reach into the volume)."""
        pod_dir = self.pod_dir(uid)
        if not pod_dir.exists():
            return
        if not subpath.unmount_all(pod_dir):
            log.warning("pod %s: a subPath mount under %s could not be unmounted; the directory is kept", uid, pod_dir)
            return
        shutil.rmtree(pod_dir, ignore_errors=True)

    def _volume_source(self, pod: Pod, vol: Volume) -> Path:
        name = vol.name
        empty = vol.emptyDir
        if empty is None and vol.hostPath is None and _object_kind(vol) is None:
            empty = EmptyDirVolumeSource()  # a volume without a source is an emptyDir (SetDefaults_Volume)
        if empty is not None:
            path = self.pod_dir(_uid(pod)) / "volumes" / "kubernetes.io~empty-dir" / name
            if not path.is_dir():
                path.mkdir(parents=True, exist_ok=True)
                path.chmod(0o777)  # kubelet makes emptyDir world-writable
            if empty.medium == "Memory" and not os.path.ismount(path):
                _mount_tmpfs(path, empty.sizeLimit, name)
            security = pod.spec.securityContext if pod.spec else None
            if security is not None and security.fsGroup is not None:
                set_volume_ownership(path, int(security.fsGroup))
            return path
        if vol.hostPath is not None:
            path = Path(vol.hostPath.path or "")
            kind = vol.hostPath.type or ""
            if not path.is_absolute():
                raise podspec.ConfigError(f"volume {name!r}: hostPath.path must be absolute")
            if kind == "DirectoryOrCreate":
                path.mkdir(parents=True, exist_ok=True)
            elif kind == "FileOrCreate":
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch(exist_ok=True)
            elif kind == "Directory" and not path.is_dir():
                raise MountError(
                    f'MountVolume.SetUp failed for volume "{name}": hostPath type check failed: {path} is not a directory'
                )
            elif kind == "File" and not path.is_file():
                raise MountError(
                    f'MountVolume.SetUp failed for volume "{name}": hostPath type check failed: {path} is not a file'
                )
            elif kind in ("Socket", "CharDevice", "BlockDevice") and not path.exists():
                raise MountError(f'MountVolume.SetUp failed for volume "{name}": {path} does not exist')
            return path
        kind = _object_kind(vol)
        if kind is not None:
            try:
                files = sources.volume_files(pod, vol, self._secrets, config_maps=self._config_maps)
            except sources.MissingSecret as err:  # the kubelet retries the mount: the Secret may come
                raise MountError(f'MountVolume.SetUp failed for volume "{name}" : {err}') from err
            path = self.pod_dir(_uid(pod)) / "volumes" / kind / name
            path.mkdir(parents=True, exist_ok=True)
            if not os.path.ismount(path):  # as the kubelet's for a Secret: the bytes stay in memory, never on disk
                _mount_tmpfs(path, None, name, mode="0755")
            security = pod.spec.securityContext if pod.spec else None
            fs_group = int(security.fsGroup) if security is not None and security.fsGroup is not None else None
            try:
                sources.write_volume(path, files, fs_group=fs_group)
            except OSError as err:  # e.g. items whose paths clash as a file and a directory ("a", "a/b")
                raise podspec.ConfigError(f"volume {name!r}: cannot write its files: {err.strerror}") from err
            return path
        raise podspec.ConfigError(
            f"volume {name!r}: only hostPath, emptyDir, secret, configMap and projected volumes are supported"
        )


def _object_kind(vol: Volume) -> str | None:
    """The plugin dir of a volume made of Secrets' or ConfigMaps' keys, ``None`` for other volumes."""
    if vol.secret is not None:
        return "kubernetes.io~secret"
    if vol.configMap is not None:
        return "kubernetes.io~configmap"
    if vol.projected is not None:
        return "kubernetes.io~projected"
    return None


def _mount_tmpfs(path: Path, size_limit: object, volume: str, *, mode: str = "0777") -> None:
    """A tmpfs on a volume's dir, as the kubelet backs ``emptyDir`` ``medium: Memory`` (world-writable) and
    ``secret``/``projected`` volumes (``mode`` 0755): ``size=`` the ``sizeLimit`` (the kernel's default, half
    the memory, without one). ``remove_pod_dir`` unmounts it.

    Raises:
        MountError: ``mount(8)`` failed (the agent must run as root); the container stays ``ContainerCreating``.
    """
    options = f"mode={mode}"
    if size_limit is not None:
        options += f",size={podspec.memory_to_bytes(str(size_limit))}"
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True, timeout=30
    )
    if done.returncode != 0:
        raise MountError(f'MountVolume.SetUp failed for volume "{volume}" : mount tmpfs: {done.stderr.strip()}')


def du_bytes(path: Path) -> int:
    """Bytes the files below ``path`` occupy on disk (``st_blocks`` × 512, as ``du``; links not followed,
    other file systems not entered), as the kubelet measures an ``emptyDir`` against its ``sizeLimit``."""
    total = 0
    device = path.stat().st_dev
    for dirpath, dirnames, filenames in os.walk(path):
        for name in filenames + dirnames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            total += st.st_blocks * 512
        dirnames[:] = [d for d in dirnames if os.lstat(os.path.join(dirpath, d)).st_dev == device]
    return total


def _uid(pod: Pod) -> str:
    return str(pod.metadata.uid if pod.metadata else "")


def set_volume_ownership(path: Path, fs_group: int) -> None:
    """kubelet ``volume.SetVolumeOwnership`` for an ``emptyDir``'s root: group ``fs_group``, group
    read/write/search and set-group-ID (``mode | 0660 | 0110 | S_ISGID``), so files made in it belong to
    the group. Only the root, which the agent made and no container can replace: walking the contents
    while the pod's containers run would race with symlinks they plant (the contents of a new emptyDir
    are empty; ``fsGroupChangePolicy`` ``Always`` and ``OnRootMismatch`` act alike on it)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        os.fchown(fd, -1, fs_group)
        os.fchmod(fd, stat.S_IMODE(os.fstat(fd).st_mode) | 0o660 | 0o110 | stat.S_ISGID)
    finally:
        os.close(fd)
