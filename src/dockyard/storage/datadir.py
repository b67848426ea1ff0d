"""The API server's files in a data dir, with their modes: ``dockyard.db`` and the encryption key.

Layout (``dockyard up`` and ``python -m dockyard.apiserver`` share it):

- ``DATA_DIR`` mode 0700;
- ``DATA_DIR/lock`` mode 0600: held (``flock(2)``, exclusive) by the one process that serves the data dir, with
  its pid inside; the kernel drops the lock when that process ends, however it ends (:func:`lock`);
- ``DATA_DIR/dockyard.db`` (+ ``-wal``, ``-shm``) mode 0600: the store;
- ``DATA_DIR/pki/encryption-config.json`` mode 0600: the ``EncryptionConfiguration``
  (:mod:`dockyard.storage.encryption`) made on first start with a new AES-256-GCM
  key for Secrets, as k3s's ``--secrets-encryption`` does.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from dockyard.storage import encryption, sqlite

DB_FILE = "dockyard.db"
ENCRYPTION_CONFIG = Path("pki") / "encryption-config.json"
LOCK_FILE = "lock"


class InUse(Exception):
    """Another process holds the data dir's lock. ``pid``: its pid as it wrote it (``None`` if unreadable)."""

    def __init__(self, data_dir: Path, pid: int | None) -> None:
        self.data_dir, self.pid = data_dir, pid
        holder = f" (pid {pid})" if pid is not None else ""
        super().__init__(f"data dir {data_dir} is in use by another process{holder}")


class Lock:
    """The exclusive hold on a data dir (:func:`lock`); :meth:`release` or the process's end frees it."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def release(self) -> None:
        """Free the data dir (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor of the open file drops the flock
            self._fd = None


def lock(data_dir: Path) -> Lock:
    """Hold ``data_dir`` for this process alone, as etcd locks its data dir's files: two servers on one store
    would each keep their own revision counter and watch cache over the same SQLite file.

    ``flock(2)`` on ``DATA_DIR/lock`` (not inherited by child processes: Python opens files close-on-exec), so
    a killed holder never leaves a stale lock behind; the holder's pid is written into the file for the message.

    Raises:
        InUse: another process holds it.
        OSError: the lock file cannot be opened.
    """
    prepare(data_dir)
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        finally:
            os.close(fd)
        raise InUse(data_dir, int(text) if text.isdigit() else None) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return Lock(fd)


def prepare(data_dir: Path) -> Path:
    """Create ``data_dir`` if missing and make it mode 0700; returns it."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(data_dir, 0o700)
    return data_dir


def open_store(data_dir: Path, **kwargs: object) -> sqlite.Store:
    """The store of ``data_dir`` with Secrets encrypted at rest (see the module docstring).

    Keyword arguments go to :class:`dockyard.storage.sqlite.Store`.

    Raises:
        encryption.ConfigError: ``pki/encryption-config.json`` exists but cannot be used.
    """
    prepare(data_dir)
    transformer = encryption.ensure(data_dir / ENCRYPTION_CONFIG)
    return sqlite.Store(data_dir / DB_FILE, encryption=transformer, **kwargs)  # type: ignore[arg-type]
