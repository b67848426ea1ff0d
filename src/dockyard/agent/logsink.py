"""Ship build log text to the API server in batches (``POST .../builds/NAME/log``).

Lines are buffered and sent when the buffer passes ``max_bytes``, at the
latest ``interval`` seconds after they were written (a flusher thread sends
them even when the build is silent), and on ``close()``.
A failed send is retried once on the next flush; log shipping never fails
a build.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import httpx

log = logging.getLogger(__name__)


class LogSink:
    """Buffered appender for one Build's log.

    Args:
        http: an authenticated httpx client whose base URL is the API server, or a function returning
            it (called at the first send, which waits for it; an exception it raises is logged, the
            text kept for the next send, as for a failed send).
        namespace, name: the Build.
        interval: seconds between sends while lines keep coming.
        max_bytes: send as soon as this many bytes are buffered.
    """

    def __init__(
        self,
        http: httpx.Client | Callable[[], httpx.Client],
        *,
        namespace: str,
        name: str,
        interval: float = 0.3,
        max_bytes: int = 64 * 1024,
    ) -> None:
        self._http = http if callable(http) else lambda: http
        self._path = f"/apis/dockyard.dev/v1alpha1/namespaces/{namespace}/builds/{name}/log"
        self._buf: list[str] = []
        self._size = 0
        self._last = time.monotonic()
        self._interval, self._max = interval, max_bytes
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()  # keeps chunks in order
        self._closed = threading.Event()
        self._flusher = threading.Thread(target=self._flush_periodically, daemon=True, name=f"log-{name}")
        self._flusher.start()
        self.lines: list[str] = []  # the tail kept for logSnippet

    def _flush_periodically(self) -> None:
        while not self._closed.wait(self._interval):
            self.flush()

    def write(self, text: str) -> None:
        """Append ``text`` (a line or several; a trailing newline is added if missing)."""
        if not text:
            return
        if not text.endswith("\n"):
            text += "\n"
        with self._lock:
            self._buf.append(text)
            self._size += len(text)
            self.lines.extend(text.splitlines())
            del self.lines[:-200]
            due = self._size >= self._max  # else the flusher sends it: the build never waits on the API server
        if due:
            self.flush()

    def snippet(self, lines: int = 5) -> str:
        """The last ``lines`` non-empty lines (OpenShift's ``logSnippet``)."""
        return "\n".join([line for line in self.lines if line.strip()][-lines:])

    def flush(self) -> None:
        with self._send_lock:
            with self._lock:
                if not self._buf:
                    return
                body = "".join(self._buf)
                self._buf, self._size, self._last = [], 0, time.monotonic()
            try:
                http = self._http()
                http.post(self._path, content=body.encode(), headers={"Content-Type": "text/plain"})
            except Exception as err:  # an HTTP error, or the client could not be made: never fails the build
                log.warning("could not ship build log to %s: %s", self._path, err)
                with self._lock:
                    self._buf.insert(0, body)
                    self._size += len(body)

    def close(self) -> None:
        """Send what is left and stop the flusher (idempotent)."""
        self._closed.set()
        self.flush()
