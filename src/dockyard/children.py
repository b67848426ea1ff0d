"""Child processes that do not outlive dockyard.

``dockyard up`` starts a registry and possibly a Podman service. If ``up`` is
killed with SIGKILL it cannot stop them, and an orphaned registry would keep
its port so that the next ``up`` could not start. Linux's
``prctl(PR_SET_PDEATHSIG)`` (prctl(2)) has the kernel send the child SIGTERM
when its parent thread dies; containers are unaffected (conmon holds them).
"""

from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM, parent: int | None = None) -> None:
    """``preexec_fn`` for :class:`subprocess.Popen`: send the child ``sig`` (SIGTERM) when the parent dies.

    The child's disposition of ``sig`` is reset to the default (termination) first: a parent started ignoring it
    (``nohup`` ignores SIGHUP) would otherwise hand that on, and a parent's death before the child installs its
    own handler would go unnoticed. With ``parent`` (its pid, taken before the fork), a parent that died before
    the prctl (whose signal is then never sent) ends the child at once. A no-op where prctl is unavailable
    (non-Linux). Runs between fork and exec, so it calls libc directly (Python's ``signal.signal`` refuses to
    run outside the main thread, and a restarted child is forked from a supervisor thread).
    """
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return
    libc.signal.restype = ctypes.c_void_p
    libc.signal(int(sig), ctypes.c_void_p(0))  # SIG_DFL
    libc.prctl(PR_SET_PDEATHSIG, int(sig))
    if parent is not None and os.getppid() != parent:
        os._exit(1)


def death_signal(sig: int) -> Callable[[], None]:
    """A ``preexec_fn`` like :func:`die_with_parent` with another signal, so that the child can tell its
    parent's death (``sig``) from being asked to stop (SIGTERM); call it in the parent (it takes the parent's pid
    then)."""
    parent = os.getpid()
    return lambda: die_with_parent(sig, parent)
