"""Run a local OCI registry (CNCF distribution, ``docker-registry serve``) on loopback.

The registry is the Debian ``docker-registry`` package (distribution 2.8). Its
configuration reference: https://distribution.github.io/distribution/about/configuration/
(``http.addr``, ``storage.filesystem.rootdirectory``, ``storage.delete``,
``auth.htpasswd`` (bcrypt only), ``notifications.endpoints``).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from dockyard import children
from dockyard.registry import errors

__all__ = ["RegistryServer", "free_port", "write_htpasswd"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_htpasswd(path: Path, users: dict[str, str]) -> Path:
    """Write an htpasswd file with bcrypt hashes (the only kind distribution accepts).

    Args:
        path: file to write (mode 0600).
        users: username → password.

    Returns:
        ``path``.

    Raises:
        RegistryError: no bcrypt implementation (libc ``crypt`` or the
            ``bcrypt`` package) is available.
    """
    lines = [f"{user}:{_bcrypt(password)}" for user, password in users.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def _bcrypt(password: str) -> str:
    try:
        import bcrypt

        return str(bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode())
    except ImportError:
        pass
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import crypt  # deprecated in 3.11, gone in 3.13; libxcrypt on Debian 12 does bcrypt
        except ImportError as e:
            raise errors.RegistryError("no bcrypt available for htpasswd: pip install bcrypt") from e
        if crypt.METHOD_BLOWFISH not in crypt.methods:
            raise errors.RegistryError("libc crypt lacks bcrypt for htpasswd: pip install bcrypt")
        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1024))


class RegistryServer:
    """A ``docker-registry serve`` child process listening on ``127.0.0.1:PORT``.

    Args:
        port: TCP port on 127.0.0.1.
        root_dir: storage root (``storage.filesystem.rootdirectory``); created.
        htpasswd: bcrypt htpasswd file; when set, every request needs Basic auth.
        notify_url: webhook for push/pull/delete events (``notifications.endpoints``), e.g. the API server's
            ``https://127.0.0.1:6443/registry/notifications``.
        notify_token: sent as ``Authorization: Bearer`` with each notification (the endpoint's ``headers``).
            The configuration file is then written mode 0600.
        notify_ca: a PEM CA file the registry trusts for ``https://`` notification URLs. distribution 2.8 has
            no per-endpoint CA setting (its endpoint config is name, url, headers, timeout, threshold, backoff,
            ignoredmediatypes, ignore); its notification client is Go's default transport, whose system roots
            honour ``SSL_CERT_DIR``. The CA is copied into a directory of its own, named in ``SSL_CERT_DIR`` next to
            ``/etc/ssl/certs`` (the system bundle ``SSL_CERT_FILE`` would replace is still read).
        log_path: where the registry's output goes; default
            ``<root_dir parent>/<root_dir name>.log``. Never our stdout.
        start_timeout: seconds :meth:`start` waits for ``GET /v2/`` to answer.
        die_with_parent: the kernel stops the registry when this process dies (``PR_SET_PDEATHSIG``);
            ``dockyard up`` turns it off so that pushes under way survive its crash, and adopts the
            registry again when it restarts.

    The generated configuration is written to ``<root_dir parent>/<root_dir name>-config.yml``.
    Usable as a context manager (start on enter, stop on exit).
    """

    def __init__(
        self,
        port: int,
        root_dir: Path,
        *,
        htpasswd: Path | None = None,
        notify_url: str | None = None,
        notify_token: str | None = None,
        notify_ca: Path | None = None,
        log_path: Path | None = None,
        start_timeout: float = 15.0,
        die_with_parent: bool = True,
    ) -> None:
        self.port = int(port)
        self.root_dir = Path(root_dir).resolve()
        self.htpasswd = Path(htpasswd).resolve() if htpasswd else None
        self.notify_url = notify_url
        self.notify_token = notify_token
        self.notify_ca = Path(notify_ca) if notify_ca else None
        self.log_path = Path(log_path) if log_path else self.root_dir.parent / f"{self.root_dir.name}.log"
        self.config_path = self.root_dir.parent / f"{self.root_dir.name}-config.yml"
        self.start_timeout = start_timeout
        self.die_with_parent = die_with_parent
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The registry process's pid while it runs, else None."""
        return self._process.pid if self._process is not None and self._process.poll() is None else None

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT`` — the registry part of image references."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.address}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def config(self) -> dict[str, Any]:
        """The distribution configuration this server runs with (pure)."""
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": False}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.root_dir)},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {"addr": self.address, "secret": secrets.token_hex(16)},
        }
        if self.htpasswd:
            config["auth"] = {"htpasswd": {"realm": "dockyard", "path": str(self.htpasswd)}}
        if self.notify_url:
            endpoint: dict[str, Any] = {
                "name": "dockyard",
                "url": self.notify_url,
                "timeout": "2s",
                "threshold": 3,
                "backoff": "1s",
                "ignoredmediatypes": ["application/octet-stream"],  # blob pushes: only manifests matter
            }
            if self.notify_token:
                endpoint["headers"] = {"Authorization": [f"Bearer {self.notify_token}"]}
            config["notifications"] = {"events": {"includereferences": True}, "endpoints": [endpoint]}
        return config

    def start(self) -> RegistryServer:
        """Write the config, start the registry, wait until ``GET /v2/`` answers (200 or 401).

        Returns:
            ``self``.

        Raises:
            RegistryServerError: ``docker-registry`` is not installed, the
                port is in use, the process exited (the message quotes its
                log), or it did not answer within ``start_timeout`` seconds.
        """
        if self.running:
            return self
        binary = shutil.which("docker-registry")
        if binary is None:
            raise errors.RegistryServerError(
                "docker-registry not found: apt-get install docker-registry (see scripts/bootstrap.sh)"
            )
        if not _port_free(self.port):
            raise errors.RegistryServerError(f"cannot start registry: 127.0.0.1:{self.port} is already in use")
        self.root_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(yaml.safe_dump(self.config(), sort_keys=False))
        self.config_path.chmod(0o600)  # it may hold the notification token
        env = None
        if self.notify_ca is not None:
            trust = self.root_dir.parent / f"{self.root_dir.name}-trust"
            trust.mkdir(exist_ok=True)
            shutil.copyfile(self.notify_ca, trust / "dockyard-ca.pem")
            env = {**os.environ, "SSL_CERT_DIR": f"{trust}:/etc/ssl/certs"}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                [binary, "serve", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                env=env,
                preexec_fn=children.die_with_parent if self.die_with_parent else None,
                start_new_session=not self.die_with_parent,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self._process.poll() is not None:
                code = self._process.returncode
                self._process = None
                raise errors.RegistryServerError(
                    f"registry on {self.address} exited with code {code}: {_tail(self.log_path)} (log: {self.log_path})"
                )
            if self._answers():
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise errors.RegistryServerError(
                    f"registry on {self.address} did not answer within {self.start_timeout:.0f}s (log: {self.log_path})"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM, wait up to 5 s, then SIGKILL. Safe to call when not running."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            process.kill()
            try:
                process.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                pass

    def _answers(self) -> bool:
        try:
            response = httpx.get(f"{self.url}/v2/", timeout=1.0)
        except httpx.TransportError:
            return False
        return response.status_code in (200, 401)

    def __enter__(self) -> RegistryServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RegistryServer({self.address}, root_dir={str(self.root_dir)!r}, running={self.running})"


def _port_free(port: int) -> bool:
    """True if nothing listens on 127.0.0.1:port (SO_REUSEADDR, as Go's listener: TIME_WAIT is fine)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])
