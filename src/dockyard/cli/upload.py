"""Binary build inputs: pack a directory, a file or an archive, and upload it with progress.

The archive is written to a temporary file and streamed from it, never held
whole in memory. The server (``instantiatebinary``) checks it as it arrives
and decides the limits (``dockyard up --max-context-bytes``,
``--max-context-members``; 413 naming the limit past them); this side only
refuses what is certainly wrong before any bytes are sent.
"""

from __future__ import annotations

import contextlib
import os
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TransferSpeedColumn

CHUNK = 256 * 1024


class UploadError(Exception):
    """The input cannot be uploaded; the message says which path and why."""


@contextlib.contextmanager
def archive(
    *, from_dir: Path | None = None, from_file: Path | None = None, from_archive: Path | None = None
) -> Iterator[Path]:
    """The tar archive to upload, as a file path for the ``with`` block (an archive given as is is used unchanged;
    a directory or file is packed into a temporary ``.tar.gz`` that is removed afterwards).

    Raises:
        UploadError: the path is missing or of the wrong kind.
    """
    if from_archive is not None:
        if not from_archive.is_file():
            raise UploadError(f"--from-archive {from_archive}: no such file")
        yield from_archive
        return
    if from_dir is not None:
        if not from_dir.is_dir():
            raise UploadError(f"--from-dir {from_dir}: not a directory")
        entries = [(e, e.name) for e in sorted(from_dir.iterdir()) if e.name != ".git"]
    elif from_file is not None:
        if not from_file.is_file():
            raise UploadError(f"--from-file {from_file}: no such file")
        entries = [(from_file, from_file.name)]
    else:
        raise UploadError("nothing to upload")
    fd, name = tempfile.mkstemp(prefix="dockyard-context-", suffix=".tar.gz")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as fh, tarfile.open(fileobj=fh, mode="w:gz") as tar:
            for entry, arcname in entries:
                tar.add(entry, arcname=arcname)
        yield path
    finally:
        path.unlink(missing_ok=True)


def send(http: httpx.Client, path: str, source: Path, *, label: str) -> httpx.Response:
    """POST the file ``source`` as ``application/octet-stream``, streamed, with a progress bar on stderr."""
    size = source.stat().st_size
    progress = Progress(
        "[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(), transient=True
    )

    def chunks(task: TaskID) -> Iterator[bytes]:
        with source.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                yield chunk
                progress.update(task, advance=len(chunk))

    with progress:
        task = progress.add_task(label, total=size)
        return http.post(
            path,
            content=chunks(task),
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
        )
