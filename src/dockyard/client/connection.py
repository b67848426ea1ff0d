"""Connections to the API server from a kubeconfig, the way kubectl finds one.

Order (kubectl's): an explicit ``--kubeconfig`` path, else ``$KUBECONFIG``
(first existing path of the list), else the kubeconfig that ``dockyard up``
writes under the default data dir.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path

import httpx
import lightkube
import lightkube.core.client as _lightkube_core
from lightkube.config.kubeconfig import KubeConfig

# lightkube >= 1.0 speaks through httpx2 (httpx's successor); older releases through httpx.
lightkube_http = getattr(_lightkube_core, "httpx2", httpx)


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/dockyard`` (``~/.local/share/dockyard`` when unset), per the XDG base-dir spec."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "dockyard"


class NoKubeconfig(Exception):
    """No kubeconfig could be found; the message says where it looked."""


def find_kubeconfig(explicit: str | None = None) -> Path:
    """Resolve the kubeconfig path as kubectl does.

    Raises:
        NoKubeconfig: when none of the candidates exists.
    """
    if explicit:
        path = Path(explicit)
        if not path.exists():
            raise NoKubeconfig(f"--kubeconfig {explicit}: no such file")
        return path
    env = os.environ.get("KUBECONFIG")
    if env:
        for part in env.split(os.pathsep):
            if part and Path(part).exists():
                return Path(part)
    default = default_data_dir() / "kubeconfig"
    if default.exists():
        return default
    raise NoKubeconfig(
        f"no kubeconfig: pass --kubeconfig, set KUBECONFIG, or start `dockyard up` (which writes {default})"
    )


@dataclass(frozen=True)
class Connection:
    """Where the API server is and who we are: ``server`` URL, bearer ``token``, CA file (or None)."""

    path: Path
    server: str
    token: str | None
    ca_file: str | None
    namespace: str

    def lightkube(self, *, timeout: float = 30.0) -> lightkube.Client:
        """A lightkube client (its own HTTP connection pool; one per thread that watches)."""
        return lightkube.Client(KubeConfig.from_file(self.path), timeout=lightkube_http.Timeout(timeout),
                                field_manager="dockyard")

    def http(self, *, timeout: float | None = 30.0) -> httpx.Client:
        """An httpx client for the documented subresources lightkube has no verb for
        (``instantiate``, ``log``, ``/containers/{id}/commit``)."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        verify = ssl.create_default_context(cafile=self.ca_file) if self.ca_file else True
        return httpx.Client(base_url=self.server, headers=headers, verify=verify, timeout=httpx.Timeout(timeout))


def connect(kubeconfig: str | None = None) -> Connection:
    """Read the current context of the kubeconfig found by :func:`find_kubeconfig`.

    Raises:
        NoKubeconfig: no kubeconfig, or it has no usable current context.
    """
    path = find_kubeconfig(kubeconfig)
    config = KubeConfig.from_file(path).get()
    if config is None:
        raise NoKubeconfig(f"{path}: no current-context")
    user = config.user
    ca = config.cluster.certificate_auth
    return Connection(
        path=path,
        server=config.cluster.server,
        token=getattr(user, "token", None) if user else None,
        ca_file=str(config.abs_file(ca)) if ca else None,
        namespace=config.namespace or "default",
    )


def write_kubeconfig(path: Path, *, server: str, token: str, user: str, ca_file: Path | None = None) -> None:
    """Write a kubeconfig with one cluster/user/context named ``dockyard`` (mode 0600).

    The format is kubectl's ``Config`` (clientcmd/api/v1): clusters, users, contexts, current-context.
    """
    import yaml

    cluster: dict[str, object] = {"server": server}
    if ca_file is not None:
        cluster["certificate-authority"] = str(ca_file)
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "dockyard", "cluster": cluster}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "dockyard", "context": {"cluster": "dockyard", "user": user, "namespace": "default"}}],
        "current-context": "dockyard",
    }
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump(doc, fh, sort_keys=False)
    os.replace(tmp, path)
