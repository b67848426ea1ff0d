"""Safe ``volumeMounts[].subPath``: resolve beneath the volume, never through a symlink, and pin the inode.

The rule is the kubelet's since 1.10 (CVE-2017-1002101; ``pkg/volume/util/subpath/subpath_linux.go``):

1. ``subPath`` must be relative and have no ``..`` component (``validateLocalDescendingPath``).
2. Symlinks are evaluated once (``filepath.EvalSymlinks``); the result must stay beneath the volume's
   real path (``PathWithinBase``), so a symlink that leaves the volume is refused.
3. That result is opened component by component from the volume root with
   ``openat(O_PATH|O_NOFOLLOW)`` (``doSafeOpen``): a symlink met there (swapped in after step 2) is
   refused. Missing directories are made on the way with ``mkdirat`` + a no-follow open + ``fchmod``
   to the volume root's mode (``doSafeMakeDir``).
4. The opened inode is bind-mounted through ``/proc/self/fd/N`` onto a staging path of the agent's own
   (``<pod dir>/volume-subpaths/<volume>/<container>/<mount index>``, ``getSubpathBindTarget``), and that
   staging path is what the engine mounts into the container, so renaming or replacing the path later
   cannot redirect the mount.

Staged mounts are removed with the pod (:func:`unmount_all` before the pod dir is deleted, the kubelet's
``CleanSubPaths``). Mounting needs ``CAP_SYS_ADMIN`` in the engine's mount namespace (the agent runs as
root next to the engine); without it a subPath mount fails closed.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from pathlib import Path

__all__ = [
    "SUBPATHS_DIR",
    "SubPathError",
    "components",
    "open_beneath",
    "stage",
    "staging_path",
    "unmount",
    "unmount_all",
]

#: Directory under the pod dir holding the staged bind mounts (the kubelet's ``containerSubPathDirectoryName``).
SUBPATHS_DIR = "volume-subpaths"

_MS_BIND = 4096  # <sys/mount.h>
_MNT_DETACH = 2
_UNMOUNT_LAYERS = 16  # bound on mounts stacked on one staging path


class SubPathError(Exception):
    """The subPath cannot be mounted safely: it leaves the volume, meets a symlink or a non-directory,
    or the staging mount failed. The message names no host path beyond the volume."""


def components(sub_path: str) -> list[str]:
    """Split a ``subPath`` into its components, dropping empty and ``.`` ones (``filepath.Clean``).

    Raises:
        SubPathError: absolute, or a ``..`` component (Kubernetes ``validateLocalDescendingPath``).
    """
    if sub_path.startswith("/"):
        raise SubPathError("must be a relative path")
    parts = [p for p in sub_path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise SubPathError("must not contain '..'")
    if any("\0" in p for p in parts):
        raise SubPathError("must not contain NUL")
    return parts


def open_beneath(root: Path | str, sub_path: str, *, create: bool = True) -> int:
    """Open ``sub_path`` beneath the volume directory ``root`` without following a symlink.

    Args:
        root: the volume's host directory (the agent's own path; symlinks in it are resolved once).
        sub_path: the ``subPath`` (see :func:`components`).
        create: make missing directories (mode of ``root``), as the kubelet's ``SafeMakeDir``.

    Returns:
        An ``O_PATH`` file descriptor (close-on-exec) of the directory or file; the caller closes it.

    Raises:
        SubPathError: the path leaves the volume, a component is a symlink met during the walk or not a
            directory, the path is missing (``create=False``), or an open failed.
    """
    parts = components(sub_path)
    real_root = os.path.realpath(root)
    # kubelet doBindSubPath: EvalSymlinks once, then the result must stay within the volume.
    resolved = os.path.realpath(os.path.join(real_root, *parts)) if parts else real_root
    if resolved != real_root and not resolved.startswith(real_root.rstrip("/") + "/"):
        raise SubPathError("it leaves the volume (through a symlink)")
    rel = [p for p in os.path.relpath(resolved, real_root).split("/") if p not in ("", ".")]
    try:
        fd = os.open(real_root, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        raise SubPathError(f"cannot open the volume: {e.strerror}") from e
    mode = stat.S_IMODE(os.fstat(fd).st_mode)
    try:
        for i, name in enumerate(rel):
            last = i == len(rel) - 1
            child = _open_child(fd, name, directory=not last, create=create, mode=mode)
            os.close(fd)
            fd = child
        if stat.S_ISLNK(os.fstat(fd).st_mode):
            raise SubPathError("it is a symlink")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_child(parent: int, name: str, *, directory: bool, create: bool, mode: int) -> int:
    """``openat(parent, name, O_PATH|O_NOFOLLOW[|O_DIRECTORY])``, making the directory if missing."""
    flags = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_DIRECTORY if directory else 0)
    try:
        return os.open(name, flags, dir_fd=parent)
    except FileNotFoundError:
        if not create:
            raise SubPathError("it does not exist") from None
    except NotADirectoryError:
        raise SubPathError("a component is a symlink or not a directory") from None
    except OSError as e:
        raise SubPathError(f"cannot open a component: {e.strerror}") from e
    try:
        os.mkdir(name, mode, dir_fd=parent)
    except FileExistsError:
        pass  # made concurrently: the no-follow open below decides
    except OSError as e:
        raise SubPathError(f"cannot create a directory: {e.strerror}") from e
    try:
        made = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    except OSError as e:
        raise SubPathError(f"cannot open a created directory: {e.strerror}") from e
    try:
        os.fchmod(made, mode)  # mkdirat is subject to the umask (kubelet doSafeMakeDir)
    except OSError as e:
        os.close(made)
        raise SubPathError(f"cannot chmod a created directory: {e.strerror}") from e
    return made


def staging_path(pod_dir: Path, *, volume: str, container: str, index: int) -> Path:
    """``<pod_dir>/volume-subpaths/<volume>/<container>/<index>`` (kubelet ``getSubpathBindTarget``).

    Raises:
        SubPathError: a name that is not a single path component.
    """
    for name in (volume, container):
        if not name or "/" in name or name in (".", "..") or "\0" in name:
            raise SubPathError(f"name {name[:64]!r} is not usable as a directory name")
    return Path(pod_dir) / SUBPATHS_DIR / volume / container / str(int(index))


def stage(root: Path | str, sub_path: str, target: Path) -> Path:
    """Resolve ``sub_path`` beneath ``root`` (:func:`open_beneath`) and bind-mount the opened inode onto
    ``target``; return ``target`` (the path to hand to the engine).

    Whatever was mounted on ``target`` before is unmounted first, so a refused subPath leaves nothing
    mounted there.

    Raises:
        SubPathError: resolution failed (see :func:`open_beneath`) or ``mount(2)`` failed.
    """
    unmount(target)
    fd = open_beneath(root, sub_path, create=True)
    try:
        is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
        _make_target(target, is_dir=is_dir)
        _mount_bind(f"/proc/self/fd/{fd}", str(target))
    finally:
        os.close(fd)
    return target


def _make_target(target: Path, *, is_dir: bool) -> None:
    """A directory for a directory, an empty file for anything else (kubelet ``prepareSubpathTarget``)."""
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
    if target.is_symlink() or (target.exists() and target.is_dir() != is_dir):
        if target.is_dir() and not target.is_symlink():
            target.rmdir()
        else:
            target.unlink()
    if is_dir:
        target.mkdir(mode=0o750, exist_ok=True)
    elif not target.exists():
        target.touch(mode=0o640)


def unmount(target: Path) -> None:
    """Detach every mount stacked on ``target``; nothing when it is not a mount point.

    Raises:
        SubPathError: ``umount2`` failed for another reason than "not mounted" / "missing".
    """
    for _ in range(_UNMOUNT_LAYERS):
        if _libc().umount2(os.fsencode(str(target)), _MNT_DETACH) == 0:
            continue
        err = ctypes.get_errno()
        if err in (errno.EINVAL, errno.ENOENT):
            return
        raise SubPathError(f"cannot unmount the staged subPath: {os.strerror(err)}")
    raise SubPathError("cannot unmount the staged subPath: too many stacked mounts")


def unmount_all(pod_dir: Path) -> bool:
    """Unmount every mount point at or below ``pod_dir`` (deepest first), as the kubelet's
    ``CleanSubPaths`` does before a pod's directory is removed.

    Returns:
        True when nothing is mounted below ``pod_dir`` any more (only then may it be deleted: a recursive
        delete would otherwise descend into a hostPath volume).
    """
    base = os.path.realpath(pod_dir)
    for point in sorted(_mount_points(base), key=len, reverse=True):
        try:
            unmount(Path(point))
        except SubPathError:
            pass
    return not _mount_points(base)


def _mount_points(base: str) -> list[str]:
    """Mount points at or below ``base`` from ``/proc/self/mountinfo`` (field 5, octal escapes)."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        fields = line.split(" ")
        if len(fields) < 5:
            continue
        point = _unescape(fields[4])
        if point == base or point.startswith(base + "/"):
            out.append(point)
    return out


def _unescape(field: str) -> str:
    r"""Undo the kernel's ``\NNN`` octal escaping of space, tab, newline and backslash in mountinfo."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 3 < len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def _mount_bind(source: str, target: str) -> None:
    """``mount(source, target, NULL, MS_BIND, NULL)``: ``source`` ``/proc/self/fd/N`` binds that inode."""
    if _libc().mount(os.fsencode(source), os.fsencode(target), None, _MS_BIND, None) != 0:
        err = ctypes.get_errno()
        raise SubPathError(f"cannot bind-mount the subPath: {os.strerror(err)}")


_LIBC: ctypes.CDLL | None = None


def _libc() -> ctypes.CDLL:
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(None, use_errno=True)
    return _LIBC
