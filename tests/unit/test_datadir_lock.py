"""``dockyard.storage.datadir.lock``: one holder per data dir, named in the refusal; gone with its process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from dockyard.storage import datadir


def test_a_held_data_dir_is_refused_naming_the_holders_pid(tmp_path: Path) -> None:
    held = datadir.lock(tmp_path)
    with pytest.raises(datadir.InUse) as err:
        datadir.lock(tmp_path)
    assert err.value.pid == os.getpid() and str(tmp_path) in str(err.value)
    held.release()
    datadir.lock(tmp_path).release()  # free again
    assert (tmp_path / datadir.LOCK_FILE).stat().st_mode & 0o777 == 0o600


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from dockyard.storage import datadir; datadir.lock(__import__('pathlib').Path({str(tmp_path)!r})); print('held', flush=True); input()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(datadir.InUse) as err:
            datadir.lock(tmp_path)
        assert err.value.pid == holder.pid
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        datadir.lock(tmp_path).release()
    finally:
        holder.kill()
        holder.wait(timeout=10)
