"""``dockyard.children``: a child started with a death signal dies with its parent, also when the parent was started
ignoring that signal (``nohup`` ignores SIGHUP, the node agent's death signal), in the window before the child
installs a handler of its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

PARENT = textwrap.dedent(
    """
    import signal, subprocess, sys, time
    from dockyard import children
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup: inherited by the children
    sig = getattr(signal, sys.argv[1])
    child = subprocess.Popen(["sleep", "60"], preexec_fn=children.death_signal(sig))
    print(child.pid, flush=True)
    time.sleep(60)
    """
)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("sig", ["SIGHUP", "SIGTERM"])
def test_a_child_dies_with_its_parent_even_if_the_parent_ignored_the_death_signal(sig: str) -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT, sig], stdout=subprocess.PIPE, text=True)
    child = 0
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert _alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 5
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child), f"the child outlived its parent ({sig} was ignored)"
    finally:
        parent.kill()
        if child and _alive(child):
            os.kill(child, signal.SIGKILL)
