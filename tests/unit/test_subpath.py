"""subPath resolution beneath a volume (kubelet ``subpath_linux.go`` rules, CVE-2017-1002101)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.agent import subpath


@pytest.fixture
def vol(tmp_path: Path) -> Path:
    """A volume with ``a/b/c``, a file, and a sentinel outside it."""
    root = tmp_path / "vol"
    (root / "a" / "b" / "c").mkdir(parents=True)
    (root / "file.txt").write_text("in-volume")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "sentinel").write_text("host-secret")
    return root


def _same(fd: int, path: Path) -> bool:
    st, want = os.fstat(fd), os.lstat(path)
    return (st.st_dev, st.st_ino) == (want.st_dev, want.st_ino)


@pytest.fixture
def opened() -> Iterator[list[int]]:
    fds: list[int] = []
    yield fds
    for fd in fds:
        os.close(fd)


def test_normal_nested_path_and_file(vol: Path, opened: list[int]) -> None:
    fd = subpath.open_beneath(vol, "a/b/c", create=False)
    opened.append(fd)
    assert _same(fd, vol / "a" / "b" / "c")
    fd = subpath.open_beneath(vol, "./a//b/", create=False)  # filepath.Clean
    opened.append(fd)
    assert _same(fd, vol / "a" / "b")
    fd = subpath.open_beneath(vol, "file.txt", create=False)
    opened.append(fd)
    assert _same(fd, vol / "file.txt") and stat.S_ISREG(os.fstat(fd).st_mode)


def test_missing_directories_are_created_with_the_volume_mode(vol: Path, opened: list[int]) -> None:
    vol.chmod(0o777)
    old = os.umask(0o022)
    try:
        fd = subpath.open_beneath(vol, "a/new/deeper", create=True)
    finally:
        os.umask(old)
    opened.append(fd)
    assert _same(fd, vol / "a" / "new" / "deeper")
    assert stat.S_IMODE((vol / "a" / "new").stat().st_mode) == 0o777
    assert stat.S_IMODE((vol / "a" / "new" / "deeper").stat().st_mode) == 0o777
    with pytest.raises(subpath.SubPathError, match="does not exist"):
        subpath.open_beneath(vol, "nope", create=False)


@pytest.mark.parametrize("sub", ["/etc", "/", "..", "a/../../outside", "a/..", "../vol/a"])
def test_absolute_and_dotdot_are_refused(vol: Path, sub: str) -> None:
    with pytest.raises(subpath.SubPathError, match=r"relative|'\.\.'"):
        subpath.open_beneath(vol, sub)
    assert not (vol.parent / "outside" / "a").exists()


@pytest.mark.parametrize("target", ["/", "../../outside", "ABS_OUTSIDE"])
def test_symlink_leaving_the_volume_is_refused_at_the_end_and_in_the_middle(vol: Path, target: str) -> None:
    dest = str(vol.parent / "outside") if target == "ABS_OUTSIDE" else target
    (vol / "a" / "esc").symlink_to(dest)
    for sub in ("a/esc", "a/esc/sentinel", "a/esc/new-dir"):
        with pytest.raises(subpath.SubPathError, match="leaves the volume"):
            subpath.open_beneath(vol, sub, create=True)
    assert sorted(p.name for p in (vol.parent / "outside").iterdir()) == ["sentinel"]  # nothing made outside


def test_symlink_within_the_volume_resolves_as_the_kubelet_does(vol: Path, opened: list[int]) -> None:
    """kubelet ``doBindSubPath``: ``EvalSymlinks`` then ``PathWithinBase`` — an inner symlink is allowed."""
    (vol / "link").symlink_to("a/b")
    fd = subpath.open_beneath(vol, "link/c", create=False)
    opened.append(fd)
    assert _same(fd, vol / "a" / "b" / "c")


def test_symlink_met_during_the_walk_is_refused(vol: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A symlink swapped in after the symlinks were evaluated: the no-follow walk refuses it,
    in the middle (O_DIRECTORY|O_NOFOLLOW) and at the end (fstat: S_IFLNK)."""
    (vol / "a" / "b" / "c").rmdir()
    (vol / "a" / "b" / "c").symlink_to("/")
    (vol / "mid").symlink_to("a")
    monkeypatch.setattr(subpath.os.path, "realpath", os.path.abspath)  # the race: evaluation saw no symlink
    with pytest.raises(subpath.SubPathError, match="symlink"):
        subpath.open_beneath(vol, "a/b/c")
    with pytest.raises(subpath.SubPathError, match="symlink"):
        subpath.open_beneath(vol, "mid/b")
    with pytest.raises(subpath.SubPathError, match="symlink"):
        subpath.open_beneath(vol, "a/b/c/etc")


def test_file_in_the_middle_is_refused(vol: Path) -> None:
    with pytest.raises(subpath.SubPathError, match="not a directory"):
        subpath.open_beneath(vol, "file.txt/x")


def test_staging_path_names_are_single_components(tmp_path: Path) -> None:
    assert subpath.staging_path(tmp_path, volume="data", container="c", index=2) == (
        tmp_path / subpath.SUBPATHS_DIR / "data" / "c" / "2"
    )
    for bad in ("..", "a/b", ""):
        with pytest.raises(subpath.SubPathError):
            subpath.staging_path(tmp_path, volume=bad, container="c", index=0)


@pytest.mark.skipif(os.geteuid() != 0, reason="bind mounts need root")
def test_staged_mount_pins_the_checked_inode(vol: Path, tmp_path: Path) -> None:
    """Swapping the path for a symlink after staging does not redirect the staged mount;
    restaging refuses it and leaves nothing mounted; unmount_all clears the pod dir."""
    pod_dir = tmp_path / "pod"
    target = subpath.staging_path(pod_dir, volume="v", container="c", index=0)
    (vol / "a" / "b" / "c" / "m").write_text("checked")
    try:
        assert subpath.stage(vol, "a/b/c", target) == target
        (vol / "a" / "b" / "c").rename(vol / "moved")
        (vol / "a" / "b" / "c").symlink_to(vol.parent / "outside")
        assert (target / "m").read_text() == "checked"
        assert not (target / "sentinel").exists()
        with pytest.raises(subpath.SubPathError, match="leaves the volume"):
            subpath.stage(vol, "a/b/c", target)
        assert subpath._mount_points(str(pod_dir.resolve())) == []
        file_target = subpath.staging_path(pod_dir, volume="v", container="c", index=1)
        subpath.stage(vol, "file.txt", file_target)
        assert file_target.read_text() == "in-volume"
    finally:
        assert subpath.unmount_all(pod_dir)
    assert subpath._mount_points(str(pod_dir.resolve())) == []


def test_mountinfo_unescape() -> None:
    assert subpath._unescape(r"/a\040b\134c") == "/a b\\c"
