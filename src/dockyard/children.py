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

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """``preexec_fn`` for :class:`subprocess.Popen`: SIGTERM the child when the parent dies.

    A no-op where prctl is unavailable (non-Linux).
    """
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
