"""Keep `dockyard up`'s component processes running, like a minimal init.

A :class:`Child` is started with ``PR_SET_PDEATHSIG`` (it dies with `up`), its
pid written to ``run/NAME.pid``; when it exits without being asked to, it is
started again after a back-off (1 s doubling to 30 s, reset after 60 s of
running), so killing a component at any moment is survivable by design. A :class:`Revived` process (the
registry, the Podman service) is not `up`'s to kill with it, but is started again the same way when it dies.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from dockyard import children

log = logging.getLogger(__name__)


class Child:
    """One supervised process.

    Args:
        name: used for ``run/NAME.pid``, ``run/NAME.ready`` and ``NAME.log``.
        argv: the command.
        run_dir: where the pid and ready files go.
        log_path: the process's stdout and stderr (appended).
    """

    def __init__(
        self, name: str, argv: list[str], *, run_dir: Path, log_path: Path, death_signal: int = signal.SIGTERM
    ) -> None:
        self.name = name
        self.death_signal = death_signal
        self.argv = argv
        self.pid_file = run_dir / f"{name}.pid"
        self.ready_file = run_dir / f"{name}.ready"
        self.log_path = log_path
        self.restarts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the process and a thread that restarts it when it dies."""
        self._spawn()
        threading.Thread(target=self._watch, daemon=True, name=f"supervise-{self.name}").start()

    def _spawn(self) -> None:
        self.ready_file.unlink(missing_ok=True)
        with self._lock, open(self.log_path, "ab") as out:
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=children.death_signal(self.death_signal),
            )
            self.pid_file.write_text(str(self._proc.pid))

    def _watch(self) -> None:
        backoff = 1.0
        while not self._stopping.is_set():
            proc = self._proc
            assert proc is not None
            started = time.monotonic()
            code = proc.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - started > 60:
                backoff = 1.0
            log.warning("%s exited with %s; restarting in %.0fs (see %s)", self.name, code, backoff, self.log_path)
            if self._stopping.wait(backoff):
                return
            backoff = min(backoff * 2, 30.0)
            self.restarts += 1
            self._spawn()

    def ready(self) -> bool:
        """True once the running process has written its ready file."""
        proc = self._proc
        try:
            return proc is not None and proc.poll() is None and int(self.ready_file.read_text()) == proc.pid
        except (OSError, ValueError):
            return False

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def stop(self, *, grace: float) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; no restart afterwards."""
        self._stopping.set()
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        self.ready_file.unlink(missing_ok=True)


def running(pid: int | None) -> bool:
    """Whether ``pid`` is a live process (not a zombie), as ``/proc/PID/stat`` says; False for None."""
    if pid is None:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


class Revived:
    """A process `up` depends on but does not start as a :class:`Child`: the registry and the Podman service,
    which outlive a crash of `up` on purpose (builds and pushes under way go on) and are adopted by the next `up`.
    Checked every second; when gone it is started again by ``restart`` after a back-off (1 s doubling to 30 s,
    reset after 60 s of running), its new pid written to ``pid_file``.

    Args:
        name: for the log.
        current: the running process: ``(pid, stop)``, ``stop`` ending it (SIGTERM, then SIGKILL).
        restart: starts it again and returns the new ``(pid, stop)``; raises to be tried again after the back-off.
        pid_file: where its pid is kept (``run/NAME.pid``).
    """

    def __init__(
        self,
        name: str,
        current: tuple[int, Callable[[], None]],
        restart: Callable[[], tuple[int, Callable[[], None]]],
        *,
        pid_file: Path,
    ) -> None:
        self.name, self.pid_file = name, pid_file
        self._current, self._restart = current, restart
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self.restarts = 0

    def start(self) -> Revived:
        threading.Thread(target=self._watch, daemon=True, name=f"revive-{self.name}").start()
        return self

    def alive(self) -> bool:
        return running(self._current[0])

    def _watch(self) -> None:
        backoff, since = 1.0, time.monotonic()
        while not self._stopping.wait(1.0):
            if self.alive():
                if time.monotonic() - since > 60:
                    backoff = 1.0
                continue
            log.warning("%s (pid %d) is gone; starting it again", self.name, self._current[0])
            with self._lock:
                if self._stopping.is_set():
                    return
                try:
                    self._current = self._restart()
                except Exception as err:  # retried after the back-off: the log says why
                    log.error("%s did not start again: %s; retrying in %.0fs", self.name, err, backoff)
                    if self._stopping.wait(backoff):
                        return
                    backoff = min(backoff * 2, 30.0)
                    continue
                self.restarts += 1
                since = time.monotonic()
                self.pid_file.write_text(str(self._current[0]))
                log.info("%s started again (pid %d)", self.name, self._current[0])

    def stop(self) -> None:
        """No more restarts; end the running process."""
        self._stopping.set()
        with self._lock:
            self._current[1]()
