"""The API server's files in a data dir, with their modes: ``dockyard.db`` and the encryption key.

Layout (``dockyard up`` and ``python -m dockyard.apiserver`` share it):

- ``DATA_DIR`` mode 0700;
- ``DATA_DIR/dockyard.db`` (+ ``-wal``, ``-shm``) mode 0600: the store;
- ``DATA_DIR/pki/encryption-config.json`` mode 0600: the ``EncryptionConfiguration``
  (:mod:`dockyard.storage.encryption`) made on first start with a new AES-256-GCM
  key for Secrets, as k3s's ``--secrets-encryption`` does.
"""

from __future__ import annotations

import os
from pathlib import Path

from dockyard.storage import encryption, sqlite

DB_FILE = "dockyard.db"
ENCRYPTION_CONFIG = Path("pki") / "encryption-config.json"


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
