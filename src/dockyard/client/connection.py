"""Connections to the API server from a kubeconfig or a service account, as kubectl and client-go make them.

Where the configuration comes from (kubectl's order, with dockyard's data dir
in place of ``~/.kube/config``):

1. an explicit ``--kubeconfig`` path;
2. ``$KUBECONFIG``: every existing file of the list, merged as clientcmd does
   (the first file to set a cluster, user or context name wins; the first
   ``current-context`` wins; relative paths resolve against their own file);
3. the kubeconfig ``dockyard up`` writes under the default data dir;
4. in-cluster: ``KUBERNETES_SERVICE_HOST``/``KUBERNETES_SERVICE_PORT`` and the
   service-account token, CA and namespace files (client-go ``rest.InClusterConfig``).

What is honoured (clientcmd/api/v1 ``Config``): ``cluster.server``,
``certificate-authority(-data)``, ``insecure-skip-tls-verify``;
``user.token``, ``tokenFile``, ``client-certificate(-data)``/``client-key(-data)``,
``username``/``password``, ``exec`` (see :mod:`dockyard.client.credentials`);
``context.namespace``. Refused with a message naming them: ``auth-provider``
(client-go removed its providers in favour of exec plugins), ``tls-server-name``
and ``proxy-url``.

Every HTTP client made from a :class:`Connection`, lightkube's and the raw
httpx ones, verifies the server and authenticates the same way.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import lightkube
import lightkube.core.client as _lightkube_core
import msgspec
import yaml
from lightkube.config import client_adapter
from lightkube.config.kubeconfig import SingleConfig
from lightkube.config.models import Cluster, Context, User
from lightkube.core.exceptions import ConfigError

from dockyard.client import credentials

# lightkube >= 1.0 speaks through httpx2 (httpx's successor); older releases through httpx.
lightkube_http = getattr(_lightkube_core, "httpx2", httpx)

HTTP_ERRORS: tuple[type[Exception], ...] = tuple({httpx.HTTPError, lightkube_http.HTTPError})
"""What a request raises when the server cannot be reached or answers with a transport error, through httpx (our
own requests) or lightkube (its ``httpx2`` client): catch both wherever a lightkube client is called."""

UNANSWERED: tuple[type[Exception], ...] = (*HTTP_ERRORS, OSError)
"""A request the API server (or, for docker-py, whose errors are OSErrors, the engine) did not answer: what callers
log on one line and retry rather than treat as a crash."""

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
"""Where the kubelet mounts a pod's service-account ``token``, ``ca.crt`` and ``namespace``."""

DEFAULT_NAMESPACE = "default"

CredentialError = credentials.CredentialError


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/dockyard`` (``~/.local/share/dockyard`` when unset), per the XDG base-dir spec."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "dockyard"


class KubeconfigError(Exception):
    """The connection cannot be configured; the message names the file and the entry to fix."""


class NoKubeconfig(KubeconfigError):
    """No kubeconfig could be found and this is not a pod; the message says where it looked."""


class BadKubeconfig(KubeconfigError):
    """A kubeconfig (or service account) was found but cannot be used; the message names the field."""


def kubeconfig_paths(explicit: str | None = None) -> list[Path]:
    """The kubeconfig files to merge, in kubectl's order; ``[]`` when none exists.

    Raises:
        BadKubeconfig: an explicit path that does not exist (kubectl fails too, rather than fall back): the
            command's input to fix, unlike no kubeconfig found at all (:class:`NoKubeconfig`).
    """
    if explicit:
        path = Path(explicit).expanduser()
        if not path.exists():
            raise BadKubeconfig(f"--kubeconfig {explicit}: no such file")
        return [path]
    env = os.environ.get("KUBECONFIG")
    if env:
        found = [Path(p).expanduser() for p in env.split(os.pathsep) if p and Path(p).expanduser().exists()]
        if found:
            return list(dict.fromkeys(found))
    default = default_data_dir() / "kubeconfig"
    return [default] if default.exists() else []


def find_kubeconfig(explicit: str | None = None) -> Path:
    """The first kubeconfig file :func:`kubeconfig_paths` finds.

    Raises:
        NoKubeconfig: none exists.
    """
    paths = kubeconfig_paths(explicit)
    if not paths:
        raise NoKubeconfig(_nothing_found())
    return paths[0]


def _nothing_found() -> str:
    return (
        "no kubeconfig: pass --kubeconfig, set KUBECONFIG, start `dockyard up` (which writes "
        f"{default_data_dir() / 'kubeconfig'}), or run in a pod (KUBERNETES_SERVICE_HOST and a "
        f"service-account token in {SERVICE_ACCOUNT_DIR})"
    )


# --- loading -----------------------------------------------------------------------------------

_CLUSTER_PATHS = ("certificate-authority",)
_USER_PATHS = ("client-certificate", "client-key", "tokenFile")
_UNSUPPORTED_CLUSTER_FIELDS = ("tls-server-name", "proxy-url")


def _resolve(base: Path, value: Any) -> Any:
    if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
        return str(base.parent / value)
    return value


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""PyYAML's safe loader, on libyaml when PyYAML was built with it: a kubeconfig loads in about 0.3 ms
instead of 5 ms, which every CLI command and every build pays."""


def _read_one(path: Path) -> dict[str, Any]:
    try:
        doc = yaml.load(path.read_text(), Loader=_YAML_LOADER)  # a safe loader (see _YAML_LOADER)
    except OSError as err:
        raise BadKubeconfig(f"{path}: cannot read: {err.strerror or err}") from err
    except yaml.YAMLError as err:
        raise BadKubeconfig(f"{path}: not valid YAML: {err}") from err
    except UnicodeDecodeError as err:
        raise BadKubeconfig(f"{path}: not UTF-8 text (byte {err.start}): a kubeconfig is YAML") from err
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise BadKubeconfig(f"{path}: not a kubeconfig (want a mapping with clusters, users, contexts)")
    out: dict[str, Any] = {"current-context": doc.get("current-context") or None}
    for section, key, paths in (
        ("clusters", "cluster", _CLUSTER_PATHS),
        ("users", "user", _USER_PATHS),
        ("contexts", "context", ()),
    ):
        entries: dict[str, tuple[Path, dict[str, Any]]] = {}
        for i, item in enumerate(doc.get(section) or []):
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise BadKubeconfig(f"{path}: {section}[{i}]: want a mapping with a name")
            body = item.get(key) or {}
            if not isinstance(body, dict):
                raise BadKubeconfig(f"{path}: {section}[{i}] ({item['name']}).{key}: want a mapping")
            body = {k: (_resolve(path, v) if k in paths else v) for k, v in body.items()}
            command = (body.get("exec") or {}).get("command") if isinstance(body.get("exec"), dict) else None
            if isinstance(command, str) and os.sep in command:  # clientcmd resolves a command given as a path
                body["exec"] = {**body["exec"], "command": _resolve(path, command)}
            entries.setdefault(item["name"], (path, body))
        out[section] = entries
    return out


def load_merged(paths: list[Path]) -> dict[str, Any]:
    """Merge kubeconfig files as clientcmd does: first name wins, first ``current-context`` wins.

    Returns ``{"current-context": str | None, "clusters" | "users" | "contexts": {name: (file, body)}}``.

    Raises:
        BadKubeconfig: a file that is not a kubeconfig.
    """
    merged: dict[str, Any] = {"current-context": None, "clusters": {}, "users": {}, "contexts": {}}
    for path in paths:
        one = _read_one(path)
        merged["current-context"] = merged["current-context"] or one.get("current-context")
        for section in ("clusters", "users", "contexts"):
            for name, entry in (one.get(section) or {}).items():
                merged[section].setdefault(name, entry)
    return merged


def _convert(body: dict[str, Any], model: type, where: str) -> Any:
    try:
        return msgspec.convert(body, model)
    except msgspec.ValidationError as err:
        raise BadKubeconfig(f"{where}: {err}") from err


@dataclass(frozen=True)
class Settings:
    """One resolved context: the cluster, the user's credentials, the namespace, and ``where`` they came from."""

    where: str
    server: str
    cluster: Cluster
    user: User
    raw_user: dict[str, Any]
    namespace: str
    paths: tuple[Path, ...]
    cluster_where: str = ""
    """Where the cluster entry came from (``FILE: clusters[NAME].cluster``), for messages about its fields."""


def from_kubeconfig(paths: list[Path], *, context: str | None = None) -> Settings:
    """The settings of ``context`` (default: ``current-context``) of the merged ``paths``.

    Raises:
        BadKubeconfig: no current context, a missing cluster/user/context, or a malformed entry.
    """
    merged = load_merged(paths)
    shown = os.pathsep.join(str(p) for p in paths)
    name = context or merged["current-context"]
    if not name:
        raise BadKubeconfig(f"{shown}: no current-context; set one (`kubectl config use-context NAME`)")
    if name not in merged["contexts"]:
        raise BadKubeconfig(
            f"{shown}: context {name!r} not found (contexts: {', '.join(merged['contexts']) or 'none'})"
        )
    ctx_file, ctx_body = merged["contexts"][name]
    ctx: Context = _convert(ctx_body, Context, f"{ctx_file}: contexts[{name}].context")
    if ctx.cluster not in merged["clusters"]:
        raise BadKubeconfig(f"{ctx_file}: context {name!r} names cluster {ctx.cluster!r}, which is not defined")
    cl_file, cl_body = merged["clusters"][ctx.cluster]
    where_cluster = f"{cl_file}: clusters[{ctx.cluster}].cluster"
    if not cl_body.get("server"):
        raise BadKubeconfig(f"{where_cluster}.server: required (the API server's URL)")
    for unsupported in _UNSUPPORTED_CLUSTER_FIELDS:
        if cl_body.get(unsupported):
            raise BadKubeconfig(f"{where_cluster}.{unsupported}: not supported by dockyard; remove it")
    cluster: Cluster = _convert(cl_body, Cluster, where_cluster)
    raw_user: dict[str, Any] = {}
    where = f"{ctx_file}: context {name!r}"
    if ctx.user:
        if ctx.user not in merged["users"]:
            raise BadKubeconfig(f"{ctx_file}: context {name!r} names user {ctx.user!r}, which is not defined")
        us_file, raw_user = merged["users"][ctx.user]
        where = f"{us_file}: users[{ctx.user}].user"
    user: User = _convert(raw_user, User, where)
    return Settings(
        where=where,
        server=cluster.server,
        cluster=cluster,
        user=user,
        raw_user=raw_user,
        namespace=ctx.namespace or DEFAULT_NAMESPACE,
        paths=tuple(paths),
        cluster_where=where_cluster,
    )


def in_cluster_possible() -> bool:
    """True when the pod's service environment variables are set (client-go ``inClusterClientConfig.Possible``)."""
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST") and os.environ.get("KUBERNETES_SERVICE_PORT"))


def from_service_account(service_account_dir: Path = SERVICE_ACCOUNT_DIR) -> Settings:
    """In-cluster settings, as client-go ``rest.InClusterConfig``: ``https://HOST:PORT`` from
    ``KUBERNETES_SERVICE_HOST``/``_PORT``, the token file (re-read as it rotates), ``ca.crt`` if present,
    and the namespace from the ``namespace`` file (kubectl's in-cluster default).

    Raises:
        BadKubeconfig: the variables are unset or the token file is missing.
    """
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise BadKubeconfig(
            "unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and "
            "KUBERNETES_SERVICE_PORT must be defined"
        )
    token_file = service_account_dir / "token"
    if not token_file.is_file():
        raise BadKubeconfig(
            f"in-cluster: no service-account token at {token_file} (is automountServiceAccountToken off?)"
        )
    if ":" in host:
        host = f"[{host}]"
    ca = service_account_dir / "ca.crt"
    ns_file = service_account_dir / "namespace"
    namespace = ns_file.read_text().strip() if ns_file.is_file() else ""
    cluster = Cluster(server=f"https://{host}:{port}", certificate_auth=str(ca) if ca.is_file() else None)
    return Settings(
        where=f"in-cluster service account {service_account_dir}",
        server=cluster.server,
        cluster=cluster,
        user=User(token_file=str(token_file)),
        raw_user={"tokenFile": str(token_file)},
        namespace=namespace or DEFAULT_NAMESPACE,
        paths=(),
    )


# --- credentials and TLS -----------------------------------------------------------------------


class _CertFiles:
    """A private temp dir holding a PEM client certificate and key (for one an exec plugin returns)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="dockyard-cert-"))
        self.cert, self.key = self.dir / "client.crt", self.dir / "client.key"
        weakref.finalize(self, _remove_dir, self.dir)

    def write(self, cert: str, key: str) -> None:
        for path, data in ((self.cert, cert), (self.key, key)):
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(data)
            os.replace(tmp, path)


def _remove_dir(path: Path) -> None:
    for child in path.iterdir():
        child.unlink(missing_ok=True)
    path.rmdir()


def _exec_source(settings: Settings, cert_files: _CertFiles) -> credentials.Exec:
    spec = settings.raw_user.get("exec")
    where = f"{settings.where}.exec"
    if not isinstance(spec, dict):
        raise BadKubeconfig(f"{where}: want a mapping")
    api_version = spec.get("apiVersion")
    if api_version not in credentials.EXEC_API_VERSIONS:
        raise BadKubeconfig(
            f"{where}.apiVersion: {api_version!r} is not supported; use one of "
            f"{', '.join(credentials.EXEC_API_VERSIONS)}"
        )
    command = spec.get("command")
    if not isinstance(command, str) or not command:
        raise BadKubeconfig(f"{where}.command: required")
    args = spec.get("args") or []
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise BadKubeconfig(f"{where}.args: want a list of strings")
    env: dict[str, str] = {}
    for i, item in enumerate(spec.get("env") or []):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("name"), str)
            or not isinstance(item.get("value"), str)
        ):
            raise BadKubeconfig(f"{where}.env[{i}]: want {{name: STRING, value: STRING}}")
        env[item["name"]] = item["value"]
    mode = spec.get("interactiveMode") or "IfAvailable"
    if mode not in ("Never", "IfAvailable", "Always"):
        raise BadKubeconfig(f"{where}.interactiveMode: {mode!r}; use Never, IfAvailable or Always")
    if mode == "Always":
        raise BadKubeconfig(
            f"{where}.interactiveMode: Always needs a terminal, and dockyard runs plugins "
            "without one; use IfAvailable or Never"
        )
    cluster_info = None
    if spec.get("provideClusterInfo"):
        cluster_info = {"server": settings.server, "insecure-skip-tls-verify": settings.cluster.insecure}
        ca_data = settings.cluster.certificate_auth_data
        if not ca_data and settings.cluster.certificate_auth:
            try:
                ca_data = base64.b64encode(Path(settings.cluster.certificate_auth).read_bytes()).decode()
            except OSError:
                ca_data = None
        if ca_data:
            cluster_info["certificate-authority-data"] = ca_data
    return credentials.Exec(
        api_version=api_version,
        command=command,
        args=args,
        env=env,
        where=where,
        install_hint=spec.get("installHint"),
        cluster_info=cluster_info,
        on_cert=cert_files.write,
    )


def _source(settings: Settings, cert_files: _CertFiles) -> credentials.Source | None:
    """The credential source of ``settings.user``, in client-go's precedence: token(File), exec, basic."""
    user, where = settings.user, settings.where
    if user.auth_provider:
        name = user.auth_provider.get("name", "?") if isinstance(user.auth_provider, dict) else "?"
        raise BadKubeconfig(
            f"{where}.auth-provider ({name}) is not supported: client-go removed its auth "
            "providers; use an exec plugin (user.exec), e.g. kubelogin or gke-gcloud-auth-plugin"
        )
    has_basic = bool(user.username or user.password)
    if (user.token or user.token_file) and has_basic:
        raise BadKubeconfig(f"{where}: username/password or bearer token may be set, but not both")
    if has_basic and not (user.username and user.password):
        raise BadKubeconfig(f"{where}: username and password go together; set both")
    if user.token_file:
        if not Path(user.token_file).is_file() and not user.token:
            raise BadKubeconfig(f"{where}.tokenFile: {user.token_file}: no such file")
        return credentials.TokenFile(path=Path(user.token_file), where=where, initial=user.token)
    if user.token:
        return credentials.StaticToken(user.token)
    if settings.raw_user.get("exec") is not None:
        return _exec_source(settings, cert_files)
    if has_basic:
        return credentials.Basic(str(user.username), str(user.password))
    return None


def _check_tls(settings: Settings) -> None:
    """The file and flag rules kubectl applies before it dials."""
    cluster, user, where = settings.cluster, settings.user, settings.where
    cluster_where = settings.cluster_where or f"cluster of {where}"
    if cluster.insecure and (cluster.certificate_auth or cluster.certificate_auth_data):
        raise BadKubeconfig(
            f"{cluster_where}: certificate-authority and insecure-skip-tls-verify cannot both "
            "be set (specifying a root certificates file with the insecure flag is not allowed)"
        )
    if cluster.certificate_auth and not Path(cluster.certificate_auth).is_file():
        raise BadKubeconfig(f"{cluster_where}: certificate-authority {cluster.certificate_auth}: no such file")
    for label, path in (("client-certificate", user.client_cert), ("client-key", user.client_key)):
        if path and not Path(path).is_file():
            raise BadKubeconfig(f"{where}.{label}: {path}: no such file")
    has_cert = bool(user.client_cert or user.client_cert_data)
    has_key = bool(user.client_key or user.client_key_data)
    if has_cert != has_key:
        raise BadKubeconfig(
            f"{where}: client-certificate and client-key go together; set both "
            "(or client-certificate-data and client-key-data)"
        )
    for label, data in (
        ("certificate-authority-data", cluster.certificate_auth_data),
        ("client-certificate-data", user.client_cert_data),
        ("client-key-data", user.client_key_data),
    ):
        if data:
            try:
                base64.b64decode(data, validate=True)
            except ValueError as err:
                raise BadKubeconfig(f"{where}: {label} is not base64 (PEM, base64-encoded): {err}") from err


@dataclass(frozen=True)
class Connection:
    """Where the API server is and who we are; makes HTTP clients that all verify and authenticate alike.

    ``paths`` are the kubeconfig files merged (empty in-cluster); ``server`` the
    API URL; ``namespace`` the context's (in-cluster: the service account's).
    """

    paths: tuple[Path, ...]
    server: str
    namespace: str
    settings: Settings = field(repr=False)
    auth: credentials.Auth | None = field(repr=False)
    _cert_files: _CertFiles = field(repr=False)

    @property
    def path(self) -> Path | None:
        """The first kubeconfig file (``None`` in-cluster)."""
        return self.paths[0] if self.paths else None

    def _tls_user(self) -> User:
        """The user's certificate fields only (the exec plugin's certificate once it gave one)."""
        user = self.settings.user
        if self._cert_files.cert.exists():
            return User(client_cert=str(self._cert_files.cert), client_key=str(self._cert_files.key))
        return User(
            client_cert=user.client_cert,
            client_cert_data=user.client_cert_data,
            client_key=user.client_key,
            client_key_data=user.client_key_data,
        )

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context every client uses: the cluster's CA (or the system's, or none when insecure)
        and the client certificate, built by lightkube's ``verify_cluster``.

        Raises:
            BadKubeconfig: a CA or certificate/key that does not load.
        """
        try:
            ctx = client_adapter.verify_cluster(self.settings.cluster, self._tls_user(), lambda p: p)
        except (ssl.SSLError, OSError, ValueError) as err:
            raise BadKubeconfig(f"{self.settings.where}: cannot load the CA or client certificate/key: {err}") from err
        return ctx

    def _lightkube_config(self) -> SingleConfig:
        cluster = self.settings.cluster
        return SingleConfig(
            context_name="dockyard",
            context=Context(cluster="dockyard", user="dockyard", namespace=self.namespace),
            cluster=cluster,
            user=self._tls_user(),
            fname=self.path,
        )

    def lightkube(self, *, timeout: float = 30.0) -> lightkube.Client:
        """A lightkube client (its own HTTP connection pool; one per thread that watches).

        Raises:
            BadKubeconfig: TLS material that does not load.
        """
        try:
            client = lightkube.Client(
                self._lightkube_config(), timeout=lightkube_http.Timeout(timeout), field_manager="dockyard"
            )
        except ConfigError as err:
            raise BadKubeconfig(f"{self.settings.where}: {err}") from err
        except (ssl.SSLError, OSError) as err:
            raise BadKubeconfig(f"{self.settings.where}: cannot load the CA or client certificate/key: {err}") from err
        inner = getattr(getattr(client, "_client", None), "_client", None)
        if not isinstance(inner, lightkube_http.Client):  # pragma: no cover - lightkube internals moved
            raise RuntimeError("this lightkube version keeps its HTTP client elsewhere; update dockyard")
        inner.auth = self.auth
        return client

    def http(self, *, timeout: float | None = 30.0) -> httpx.Client:
        """An httpx client for the documented subresources lightkube has no verb for
        (``instantiate``, ``log``, ``/containers/{id}/commit``): same TLS and credentials as :meth:`lightkube`."""
        return httpx.Client(
            base_url=self.server, verify=self.ssl_context(), auth=self.auth, timeout=httpx.Timeout(timeout)
        )

    def authorization(self) -> str | None:
        """The current ``Authorization`` header value (``None`` when the user has no token-like credential).

        Raises:
            CredentialError: an exec plugin or token file failed.
        """
        return self.auth.source.header() if self.auth else None


def connect(
    kubeconfig: str | None = None,
    *,
    paths: Sequence[str | Path] | None = None,
    context: str | None = None,
    service_account_dir: Path | None = None,
) -> Connection:
    """The connection of the kubeconfig found in kubectl's order (module docstring), or in-cluster.

    ``paths`` (a :attr:`Connection.paths` handed to another process) skips the search and merges those files;
    ``service_account_dir`` defaults to :data:`SERVICE_ACCOUNT_DIR`.

    An exec plugin runs once here, so a broken one is reported before any request.

    Raises:
        NoKubeconfig: nothing found (and not in a pod).
        BadKubeconfig: found but unusable; the message names the file and field.
        CredentialError: the exec plugin or token file failed.
    """
    paths = [Path(p) for p in paths] if paths else kubeconfig_paths(kubeconfig)
    if paths:
        settings = from_kubeconfig(paths, context=context)
    elif in_cluster_possible():
        settings = from_service_account(service_account_dir or SERVICE_ACCOUNT_DIR)
    else:
        raise NoKubeconfig(_nothing_found())
    _check_tls(settings)
    cert_files = _CertFiles()
    source = _source(settings, cert_files)
    conn = Connection(
        paths=settings.paths,
        server=settings.server.rstrip("/"),
        namespace=settings.namespace,
        settings=settings,
        auth=credentials.Auth(source) if source else None,
        _cert_files=cert_files,
    )
    if isinstance(source, credentials.Exec):
        source.current()
    conn.ssl_context()  # a CA or certificate that does not load fails here, not in the first request
    return conn


def write_kubeconfig(path: Path, *, server: str, token: str, user: str, ca_file: Path | None = None) -> None:
    """Write a kubeconfig with one cluster/user/context named ``dockyard`` (mode 0600).

    The format is kubectl's ``Config`` (clientcmd/api/v1): clusters, users, contexts, current-context.
    """
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
