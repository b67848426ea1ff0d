"""A full disk under the real API server (``python -m dockyard.apiserver``) on a small tmpfs.

Writes that do not fit answer 507 ``InsufficientStorage`` with a ``Status`` body;
the server keeps serving reads, and after the disk grows and the server
restarts every acknowledged write is there and no refused one is.
"""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .test_apiserver_crash import Server

SECRETS = "/api/v1/namespaces/default/secrets"
CONFIGMAP_BYTES = 600 * 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_is_507_and_the_store_stays_consistent(small_disk: Path) -> None:
    server = Server(small_disk / "data")
    server.start()
    acked: list[str] = []
    refused: list[str] = []
    try:
        with server.client(timeout=30) as api:
            for i in range(40):  # ~24 MiB offered to a 6 MiB disk: it fills well before the end
                name = f"s-{i}"
                value = base64.b64encode(os.urandom(CONFIGMAP_BYTES)).decode()
                resp = api.post(SECRETS, json={"metadata": {"name": name}, "data": {"blob": value}})
                if resp.status_code == 201:
                    acked.append(name)
                    continue
                assert resp.status_code == 507, resp.text
                status = resp.json()
                assert status["kind"] == "Status" and status["reason"] == "InsufficientStorage"
                assert "full" in status["message"]
                refused.append(name)
                if len(refused) >= 3:
                    break
            assert acked and refused, (acked, refused)
            assert api.get("/readyz").status_code == 200
            listed = api.get(SECRETS)
            assert listed.status_code == 200
            assert sorted(s["metadata"]["name"] for s in listed.json()["items"]) == sorted(acked)
        server.stop()
        subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
        server.start()
        with server.client(timeout=30) as api:
            names = sorted(s["metadata"]["name"] for s in api.get(SECRETS).json()["items"])
            assert names == sorted(acked)
            assert api.post(SECRETS, json={"metadata": {"name": "after"}, "data": {"k": "dg=="}}).status_code == 201
    finally:
        server.stop()
