"""Binary build inputs: pack a directory, a file or an archive, and upload it with progress.

The server (``instantiatebinary``) checks the archive again; this side only
builds it and refuses what is certainly wrong before any bytes are sent.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

MAX_UPLOAD_BYTES = 512 * 1024 * 1024  # keep in step with the server's limit
CHUNK = 256 * 1024


class UploadError(Exception):
    """The input cannot be uploaded; the message says which path and why."""


def archive(*, from_dir: Path | None = None, from_file: Path | None = None,
            from_archive: Path | None = None) -> bytes:
    """The tar archive to upload (an archive given as is is sent unchanged).

    Raises:
        UploadError: the path is missing, of the wrong kind, or over the size limit.
    """
    if from_archive is not None:
        if not from_archive.is_file():
            raise UploadError(f"--from-archive {from_archive}: no such file")
        data = from_archive.read_bytes()
    elif from_dir is not None:
        if not from_dir.is_dir():
            raise UploadError(f"--from-dir {from_dir}: not a directory")
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for entry in sorted(from_dir.iterdir()):
                if entry.name != ".git":
                    tar.add(entry, arcname=entry.name)
        data = buf.getvalue()
    elif from_file is not None:
        if not from_file.is_file():
            raise UploadError(f"--from-file {from_file}: no such file")
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            tar.add(from_file, arcname=from_file.name)
        data = buf.getvalue()
    else:
        raise UploadError("nothing to upload")
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadError(f"the context is {len(data) / 2**20:.0f} MiB; the limit is {MAX_UPLOAD_BYTES // 2**20} MiB")
    return data


def send(http: httpx.Client, path: str, data: bytes, *, label: str) -> httpx.Response:
    """POST ``data`` as ``application/octet-stream`` with a progress bar on stderr."""
    progress = Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                        TransferSpeedColumn(), transient=True)

    def chunks(task: int) -> Iterator[bytes]:
        for i in range(0, len(data), CHUNK):
            yield data[i:i + CHUNK]
            progress.update(task, advance=min(CHUNK, len(data) - i))

    with progress:
        task = progress.add_task(label, total=len(data))
        return http.post(path, content=chunks(task), headers={"Content-Type": "application/octet-stream",
                                                               "Content-Length": str(len(data))})
