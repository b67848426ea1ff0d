"""Stopping the child processes tests start (a server, an engine service): SIGTERM, then SIGKILL."""

from __future__ import annotations

import subprocess
from typing import Any


def stop(proc: subprocess.Popen[Any], *, grace: float = 10.0) -> None:
    """Terminate ``proc`` (if it still runs) and reap it: SIGKILL if it is not gone within ``grace`` seconds.

    Raises:
        subprocess.TimeoutExpired: not even SIGKILL ended it within 10 s (a process stuck in the kernel).
    """
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
