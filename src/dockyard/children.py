"""Child processes that do not outlive dockyard.

``dockyard up`` starts a registry and possibly a Podman service. If ``up`` is
killed with SIGKILL it cannot stop them, and an orphaned registry would keep
its port so that the next ``up`` could not start. Linux's
``prctl(PR_SET_PDEATHSIG)`` (prctl(2)) has the kernel send the child SIGTERM
when its parent thread dies; containers are unaffected (conmon holds them).
"""

from __future__ import annotations

import ctypes
import signal
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """``preexec_fn`` for :class:`subprocess.Popen`: send the child ``sig`` (SIGTERM) when the parent dies.

    A no-op where prctl is unavailable (non-Linux).
    """
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return
    libc.prctl(PR_SET_PDEATHSIG, int(sig))


def death_signal(sig: int) -> Callable[[], None]:
    """A ``preexec_fn`` like :func:`die_with_parent` with another signal, so that the child can tell its
    parent's death (``sig``) from being asked to stop (SIGTERM)."""
    return lambda: die_with_parent(sig)
