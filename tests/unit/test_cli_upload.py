"""`dockyard start-build --from-*`: the context is packed to a temporary file and streamed, never held in memory."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from dockyard.cli import upload


def test_a_directory_is_packed_to_a_file_that_is_removed_afterwards(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    (ctx / ".git").mkdir(parents=True)
    (ctx / "Dockerfile").write_text("FROM scratch\n")
    with upload.archive(from_dir=ctx) as packed:
        assert packed.is_file()
        with tarfile.open(packed) as tar:
            assert tar.getnames() == ["Dockerfile"]
    assert not packed.exists()


def test_an_archive_is_sent_as_it_is_and_kept(tmp_path: Path) -> None:
    given = tmp_path / "ctx.tar"
    with tarfile.open(given, "w") as tar:
        tar.add(__file__, arcname="x.py")
    with upload.archive(from_archive=given) as packed:
        assert packed == given
    assert given.exists()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"from_dir": Path("/nonexistent-dir")}, "--from-dir /nonexistent-dir: not a directory"),
        ({"from_file": Path("/nonexistent-file")}, "--from-file /nonexistent-file: no such file"),
        ({"from_archive": Path("/nonexistent.tar")}, "--from-archive /nonexistent.tar: no such file"),
    ],
)
def test_a_missing_path_is_named(kwargs: dict, message: str) -> None:
    with pytest.raises(upload.UploadError, match=message):
        with upload.archive(**kwargs):
            pass
