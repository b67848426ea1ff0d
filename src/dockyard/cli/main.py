"""The ``dockyard`` command line.

Every command except ``up`` and ``base-image`` talks to the API server only,
found through ``--kubeconfig``, else ``$KUBECONFIG``, else the kubeconfig
``dockyard up`` writes in its default data dir (kubectl's order).

Exit codes scripts can trust:
  0  success (a Build Complete, a Push Succeeded)
  1  the work ran and failed (Build Failed/Error/Cancelled, Push Failed)
  2  bad usage or input (Typer/Click's usage errors; an object rejected as invalid)
  3  the API server or engine could not be reached, or answered an unexpected error
"""

from __future__ import annotations

import json
import logging
import math
import ssl
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, ParamSpec, TypeVar

import httpx
import pydantic
import typer
import yaml

from dockyard.api import archive as context_archive
from dockyard.api import kinds, models, objects, phases, podsecurity
from dockyard.client import connection


class _Dockyard(typer.Typer):
    """The command group, run so that a local path that cannot be used (a file where a directory is needed, no
    permission, …) is one ``error:`` line naming it (exit 2), not a traceback."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except OSError as err:
            if err.filename is None:
                raise
            typer.echo(f"error: {err.strerror or err}: {err.filename}", err=True)
            sys.exit(2)


app = _Dockyard(
    name="dockyard",
    help="A declarative control plane for the container image lifecycle, spoken through the Kubernetes API.\n\n"
    "Start everything on this machine with `dockyard up`, then use kubectl (KUBECONFIG=<data-dir>/kubeconfig) "
    "or the commands below.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

GROUP_PATH = f"/apis/{kinds.API_VERSION}"
BUILD_TERMINAL = tuple(sorted(phases.BUILD_TERMINAL))
PUSH_TERMINAL = tuple(sorted(phases.PUSH_TERMINAL))

KubeconfigOpt = typer.Option(
    None,
    "--kubeconfig",
    help="kubeconfig file (default: $KUBECONFIG, then the one `dockyard up` writes in its data dir)",
)


def _namespace(value: str | None) -> str | None:
    """``-n``: a namespace name (DNS-1123 label, at most 63 characters), checked before any request."""
    if value is not None and (len(value) > 63 or not models.DNS1123_LABEL.match(value)):
        raise typer.BadParameter(f"{value!r}: a namespace name is lower case letters, digits and '-' (DNS-1123 label)")
    return value


NamespaceOpt = typer.Option(
    None, "--namespace", "-n", callback=_namespace, help="namespace (default: the kubeconfig's)"
)
OUTPUTS = ("json", "yaml", "name")
ENGINES = ("auto", "podman", "docker")
"""What ``--engine`` of ``up`` and ``agent`` takes."""


def _output_format(value: str | None) -> str | None:
    """``-o``: checked before any request, so a typo never leaves an object behind (Click's exit 2)."""
    if value is not None and value not in OUTPUTS:
        raise typer.BadParameter(f"{value!r}: use json, yaml or name")
    return value


def _object_name(value: str, what: str) -> str:
    """``value`` if it can name a ``what`` (a DNS-1123 subdomain of at most 253 characters, Kubernetes API
    conventions "Names"), else exit 2 naming it: checked before any request, so no name reaches a URL path as
    something else (``a/../b``)."""
    if not value:
        _die(f"{what} name may not be empty", 2)
    if len(value) > 253 or not models.DNS1123_SUBDOMAIN.match(value):
        _die(f"{value!r} is not a valid {what} name: lower case letters, digits, '-' and '.' (DNS-1123 subdomain)", 2)
    return value


def _positive(value: float) -> float:
    """A number of seconds that must be above 0 (checked before any request: Click's exit 2)."""
    if not value > 0:
        raise typer.BadParameter(f"{value:g}: must be more than 0 seconds")
    return value


OutputOpt = typer.Option(
    None, "--output", "-o", callback=_output_format, help="print the created object as json, yaml or name"
)


def _die(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _kubeconfig_die(err: connection.KubeconfigError | connection.CredentialError) -> NoReturn:
    """Exit for a connection that cannot be made: 2 for a kubeconfig to fix, 3 for none found or a
    credential (exec plugin, token file) that could not be had."""
    _die(str(err), 2 if isinstance(err, connection.BadKubeconfig) else 3)


def _connect(kubeconfig: str | None) -> connection.Connection:
    try:
        return connection.connect(kubeconfig)
    except (connection.KubeconfigError, connection.CredentialError) as err:
        _kubeconfig_die(err)


RETRYABLE = frozenset({408, 429})
"""Client-error codes that say the server is busy or slow, not that the request is wrong (RFC 9110 §15.5.9,
RFC 6585 §4): exit 3 as for a 5xx."""


def exit_code_for(status_code: int) -> int:
    """The exit code of a failed answer: 2 (refused: bad input, not found, conflict, unauthorized, forbidden,
    too large — retrying the same command cannot help; the Status message says what to fix) for a 4xx other than
    :data:`RETRYABLE`; 3 (the server cannot do it now) for those and for a 5xx."""
    return 2 if 400 <= status_code < 500 and status_code not in RETRYABLE else 3


def _check(resp: httpx.Response) -> dict[str, Any]:
    """Return the JSON body of a 2xx answer, else exit with the Status message (code: :func:`exit_code_for`)."""
    if resp.is_success:
        try:
            body = resp.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            _die(
                f"{resp.request.url.host}:{resp.request.url.port} did not answer as a Kubernetes API server "
                f"({resp.headers.get('content-type') or 'no content type'}): check the kubeconfig's server",
                3,
            )
        return body
    try:
        status = resp.json()
    except ValueError:
        status = None
    if isinstance(status, dict) and (status.get("kind") == "Status" or "message" in status):
        _die(str(status.get("message") or resp.reason_phrase), exit_code_for(resp.status_code))
    _die(
        f"HTTP {resp.status_code} from {resp.request.url.host}:{resp.request.url.port}, not a Kubernetes Status "
        f"({resp.headers.get('content-type') or 'no content type'}): is the kubeconfig's server a dockyard or "
        "Kubernetes API server?",
        exit_code_for(resp.status_code),
    )


M = TypeVar("M", bound=pydantic.BaseModel)


def _typed(body: dict[str, Any], cls: type[M]) -> M:
    """``body`` (an object as the API server returned it) as a typed :mod:`dockyard.api.objects` object; exit 3
    naming the object and the fields that could not be read (e.g. a server of another version)."""
    try:
        return objects.parse(body, cls)
    except pydantic.ValidationError as err:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in err.errors()[:5])
        meta = body.get("metadata") if isinstance(body, dict) else None
        name = meta.get("name") if isinstance(meta, dict) else None
        _die(f"cannot read the {cls.__name__} {name!r} the API server returned (fields: {fields})", 3)


def _print_obj(obj: dict[str, Any], output: str | None, default: str) -> None:
    if output == "json":
        typer.echo(json.dumps(obj, indent=2))
    elif output == "yaml":
        typer.echo(yaml.safe_dump(obj, sort_keys=False).rstrip())
    elif output in (None, "name"):
        typer.echo(default)
    else:
        _die(f"--output {output!r}: use json, yaml or name", 2)


P = ParamSpec("P")
R = TypeVar("R")


def _certificate_error(err: BaseException) -> ssl.SSLCertVerificationError | None:
    """The TLS certificate verification failure under ``err`` (its ``__cause__``/``__context__`` chain), if any:
    the server answered, with a certificate the kubeconfig's CA did not sign or for another name."""
    seen: set[int] = set()
    cur: BaseException | None = err
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, ssl.SSLCertVerificationError):
            return cur
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return None


def _http_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Exit 3 (API server unreachable) or 2/3 (kubeconfig, credentials) instead of a traceback."""

    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except httpx.HTTPError as err:
            untrusted = _certificate_error(err)
            if untrusted is not None:
                _die(
                    f"the API server's certificate is not trusted: {untrusted.verify_message or untrusted}. Check "
                    "the certificate-authority (or certificate-authority-data) of the kubeconfig's cluster; a "
                    "`dockyard up` data dir made anew has a new CA, so use the kubeconfig it wrote",
                    2,
                )
            _die(f"cannot reach the API server: {err}. Is `dockyard up` running?", 3)
        except (connection.KubeconfigError, connection.CredentialError) as err:
            _kubeconfig_die(err)

    wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
    wrapper.__wrapped__ = fn  # type: ignore[attr-defined]
    return wrapper


# --- up ----------------------------------------------------------------------------------------


def _check_static_sources(pod_manifest_path: Path | None, manifest_url: str | None) -> None:
    """Exit 2 with a message naming the flag when a static pod source cannot be used."""
    from dockyard.agent import staticpods

    if pod_manifest_path is not None and pod_manifest_path.exists() and not pod_manifest_path.is_dir():
        _die(f"--pod-manifest-path {pod_manifest_path}: not a directory", 2)
    if manifest_url:
        try:
            staticpods.check_manifest_url(manifest_url)
        except ValueError as err:
            _die(str(err), 2)


@app.command()
def up(
    data_dir: Path = typer.Option(
        None, "--data-dir", help="state directory (default: $XDG_DATA_HOME/dockyard, i.e. ~/.local/share/dockyard)"
    ),
    port: int = typer.Option(6443, "--port", min=1, max=65535, help="API server port on 127.0.0.1"),
    registry_port: int = typer.Option(
        5000, "--registry-port", min=1, max=65535, help="start a CNCF distribution registry on 127.0.0.1:PORT"
    ),
    registry: str = typer.Option(None, "--registry", help="use the registry at HOST:PORT and start none"),
    engine: str = typer.Option("auto", "--engine", help="auto | podman | docker"),
    engine_socket: str = typer.Option(
        None, "--engine-socket", help="engine API socket path (default: found, or a Podman service started for you)"
    ),
    max_builds: int = typer.Option(2, "--max-builds", min=1, help="builds this node runs at once"),
    pod_manifest_path: Path = typer.Option(
        None,
        "--pod-manifest-path",
        help="run every *.yaml/*.yml/*.json Pod in this folder as a static pod, mirrored into the API "
        "(the kubelet's staticPodPath; read every 2 s)",
    ),
    manifest_url: str = typer.Option(
        None,
        "--manifest-url",
        help="run the Pods (one, or a List) at this http(s) URL on 127.0.0.1 as static pods (read every 20 s)",
    ),
    pod_security: str = typer.Option(
        podsecurity.DEFAULT_LEVEL,
        "--pod-security",
        help="Pod Security level of namespaces "
        "without a pod-security.kubernetes.io/enforce label: privileged | baseline | "
        "restricted",
    ),
    max_context_bytes: int = typer.Option(
        context_archive.DEFAULT_MAX_BYTES,
        "--max-context-bytes",
        min=1,
        help="largest binary build context (start-build --from-*), uploaded "
        "and uncompressed, in bytes (default 2 GiB); more gets 413",
    ),
    max_context_members: int = typer.Option(
        context_archive.DEFAULT_MAX_MEMBERS,
        "--max-context-members",
        min=1,
        help="most files, directories and links in a binary build context",
    ),
    insecure_http: bool = typer.Option(
        False,
        "--insecure-http",
        help="serve the API over plain HTTP on 127.0.0.1 instead of TLS (kubectl sends no token over HTTP)",
    ),
    max_long_running: int = typer.Option(
        1000,
        "--max-long-running",
        min=1,
        help="watches and followed logs served at once, all identities together (429 with Retry-After past it)",
    ),
    max_long_running_per_user: int = typer.Option(
        250, "--max-long-running-per-user", min=1, help="watches and followed logs served at once per identity"
    ),
    max_log_bytes: int = typer.Option(
        10 * 1024 * 1024,
        "--max-log-bytes",
        min=1,
        help="each build log keeps its last this many bytes (older lines are dropped with a marker line)",
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="debug logging"),
) -> None:
    """Run the API server, controllers, node agent and a registry on this machine (foreground).

    Writes DATA_DIR/kubeconfig, so `KUBECONFIG=DATA_DIR/kubeconfig kubectl get builds` works.
    Stop with Ctrl-C or SIGTERM.
    """
    from dockyard.agent.engine.errors import EngineError
    from dockyard.cli import up as up_mod
    from dockyard.registry.errors import RegistryError

    if engine not in ENGINES:
        _die(f"--engine {engine!r}: use {', '.join(ENGINES)}", 2)
    if pod_security not in podsecurity.LEVELS:
        _die(f"--pod-security {pod_security!r}: use {', '.join(podsecurity.LEVELS)}", 2)
    _check_static_sources(pod_manifest_path, manifest_url)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("httpx", "httpcore", "httpx2", "httpcore2", "urllib3", "docker"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    opts = up_mod.UpOptions(
        data_dir=data_dir or connection.default_data_dir(),
        port=port,
        registry_port=registry_port,
        registry=registry,
        engine=engine,
        engine_socket=engine_socket,
        max_builds=max_builds,
        pod_manifest_path=pod_manifest_path.resolve() if pod_manifest_path else None,
        manifest_url=manifest_url,
        insecure_http=insecure_http,
        max_long_running=max_long_running,
        max_long_running_per_user=max_long_running_per_user,
        max_log_bytes=max_log_bytes,
        pod_security=pod_security,
        max_context_bytes=max_context_bytes,
        max_context_members=max_context_members,
    )
    try:
        code = up_mod.run(opts, announce=lambda line: typer.echo(line, err=True))
    except (up_mod.UpError, EngineError, RegistryError) as err:
        _die(str(err), 3)
    raise typer.Exit(code)


def _exit_now(code: int) -> NoReturn:
    """End a component process once its own shutdown is done, without waiting for library threads
    (a stray non-daemon thread must not keep a stopped component alive after `dockyard up` is gone)."""
    import os

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _component_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("httpx", "httpcore", "httpx2", "httpcore2", "urllib3", "docker"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


_GO_BOOLS = {"1": True, "t": True, "true": True, "0": False, "f": False, "false": False}


def parse_go_bool(flag: str, value: str) -> bool:
    """A boolean flag value as Go's ``strconv.ParseBool`` reads it (``true``, ``false``, ``1``, ``0``, ``t``,
    ``f`` in any case), as kube-controller-manager's flags take it. Exits 2 naming the flag otherwise."""
    parsed = _GO_BOOLS.get(value.lower())
    if parsed is None:
        _die(f"{flag}: {value!r} is not a boolean (true or false)", 2)
    return parsed


def parse_go_duration(flag: str, value: str) -> float:
    """Seconds of a Go duration (``15s``, ``1m30s``, ``500ms``: :func:`dockyard.api.models.parse_duration`)
    or of a plain number of seconds. Exits 2 naming the flag otherwise."""
    from dockyard.api import models

    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = models.parse_duration(value.strip())
        except ValueError:
            _die(f"{flag}: {value!r} is not a duration (e.g. 15s, 1m, 500ms)", 2)
    if not math.isfinite(seconds) or seconds <= 0:
        _die(f"{flag}: {value!r} must be a positive duration", 2)
    return seconds


def _serve_metrics(value: str) -> None:
    """Start the ``/metrics`` listener of ``--metrics-bind-address`` (exit 2 on a bad value, 3 if it cannot bind)."""
    from dockyard.client import metrics

    try:
        address = metrics.parse_bind_address(value)
    except ValueError as err:
        _die(f"--metrics-bind-address: {err}", 2)
    if address is None:
        return
    try:
        port = metrics.serve(address)
    except OSError as err:
        _die(f"--metrics-bind-address: cannot listen on {value}: {err}", 3)
    logging.getLogger("dockyard").info("metrics at http://%s:%d/metrics", address[0], port)


@app.command()
def controllers(
    kubeconfig: str = KubeconfigOpt,
    names: str = typer.Option(
        ",".join(("buildconfig", "build", "image", "imagedeploy")),
        "--controllers",
        help="comma-separated controllers to run; known: buildconfig, build, image, "
        "imagedeploy, deployment, replicaset, endpoints (the last three only on the embedded engine)",
    ),
    ready_file: Path = typer.Option(None, "--ready-file", help="write this process's pid here once synced"),
    leader_elect: str = typer.Option(
        "true",
        "--leader-elect",
        help="true|false: run controllers only while holding a coordination.k8s.io/v1 Lease (leader election "
        "as kube-controller-manager's; several replicas may run, one acts)",
    ),
    lease_duration: str = typer.Option(
        "15s",
        "--leader-elect-lease-duration",
        help="how long non-leaders wait after last seeing the lease renewed before taking it over",
    ),
    renew_deadline: str = typer.Option(
        "10s",
        "--leader-elect-renew-deadline",
        help="how long the leader retries renewing before it gives up (and exits); less than the lease duration",
    ),
    retry_period: str = typer.Option(
        "2s", "--leader-elect-retry-period", help="time between attempts to acquire or renew the lease"
    ),
    resource_name: str = typer.Option(
        "dockyard-controllers", "--leader-elect-resource-name", help="name of the Lease to elect on"
    ),
    resource_namespace: str = typer.Option(
        None,
        "--leader-elect-resource-namespace",
        help="namespace of the Lease (default: the kubeconfig's namespace, or the pod's service account's)",
    ),
    metrics_bind_address: str = typer.Option(
        "0",
        "--metrics-bind-address",
        help="serve Prometheus metrics at http://HOST:PORT/metrics (loopback only; 0 turns them off)",
    ),
    registry_qps: float = typer.Option(
        20.0, "--registry-qps", help="image controller: requests a second to one registry, on average (token bucket)"
    ),
    registry_burst: int = typer.Option(
        40, "--registry-burst", help="image controller: requests to one registry at once after a quiet spell"
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="debug logging"),
) -> None:
    """Run dockyard's controllers against any Kubernetes API (foreground; `dockyard up` starts this for you).

    Exits 1 when leadership is lost (as kube-controller-manager does); whoever runs it starts it again.
    """
    from dockyard.cli import components
    from dockyard.client import leaderelection

    _component_logging(verbose)
    _serve_metrics(metrics_bind_address)
    election = None
    if parse_go_bool("--leader-elect", leader_elect):
        election = leaderelection.Config(
            name=resource_name,
            namespace=resource_namespace or "",
            identity=leaderelection.default_identity(),
            lease_duration=parse_go_duration("--leader-elect-lease-duration", lease_duration),
            renew_deadline=parse_go_duration("--leader-elect-renew-deadline", renew_deadline),
            retry_period=parse_go_duration("--leader-elect-retry-period", retry_period),
        )
    try:
        code = components.run_controllers(
            kubeconfig=kubeconfig,
            names=tuple(n for n in names.split(",") if n),
            ready_file=ready_file,
            election=election,
            registry_qps=registry_qps,
            registry_burst=registry_burst,
        )
    except leaderelection.InvalidConfig as err:
        _die(f"leader election: {err}", 2)
    except ValueError as err:
        _die(str(err), 2)
    except (connection.KubeconfigError, connection.CredentialError) as err:
        _kubeconfig_die(err)
    _exit_now(code)


@app.command()
def agent(
    kubeconfig: str = KubeconfigOpt,
    engine: str = typer.Option("auto", "--engine", help="auto | podman | docker"),
    engine_socket: str = typer.Option(None, "--engine-socket", help="engine API socket path or URL"),
    node_name: str = typer.Option(None, "--node-name", help="this node's name (default: the host name)"),
    state_dir: Path = typer.Option(None, "--state-dir", help="volumes and builder state (default: DATA_DIR/agent)"),
    max_builds: int = typer.Option(2, "--max-builds", min=1, help="builds this node runs at once"),
    instance: str = typer.Option(
        None, "--instance", help="label value marking this agent's containers (default: the node name)"
    ),
    ready_file: Path = typer.Option(None, "--ready-file", help="write this process's pid here once synced"),
    metrics_bind_address: str = typer.Option(
        "0",
        "--metrics-bind-address",
        help="serve Prometheus metrics at http://HOST:PORT/metrics (loopback only; 0 turns them off)",
    ),
    run_pods: bool = typer.Option(
        True, "--pods/--no-pods", help="run this node's pods and build pods (--no-pods on Kubernetes: pushes only)"
    ),
    serve_services: bool = typer.Option(
        True,
        "--serve-services/--no-serve-services",
        help="serve Services on loopback (LoadBalancer port, nodePort on 127.0.0.1, clusterIP:port)",
    ),
    pod_manifest_path: Path = typer.Option(
        None,
        "--pod-manifest-path",
        help="run every *.yaml/*.yml/*.json Pod in this folder as a static pod, mirrored into the API "
        "(the kubelet's staticPodPath; read every 2 s)",
    ),
    manifest_url: str = typer.Option(
        None,
        "--manifest-url",
        help="run the Pods (one, or a List) at this http(s) URL on 127.0.0.1 as static pods (read every 20 s)",
    ),
    logs_socket: Path = typer.Option(
        None,
        "--logs-socket",
        help="serve the pods' container logs on this Unix socket (mode 0600) for the API server's pods/log "
        "(the kubelet's /containerLogs; `dockyard up` sets it)",
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="debug logging"),
) -> None:
    """Run the node agent: this node's pods, build pods and pushes (foreground; `dockyard up` starts it)."""
    import socket as socket_mod

    from dockyard.agent.engine.errors import EngineError
    from dockyard.cli import components

    if engine not in ENGINES:
        _die(f"--engine {engine!r}: use {', '.join(ENGINES)}", 2)
    _component_logging(verbose)
    _check_static_sources(pod_manifest_path, manifest_url)
    _serve_metrics(metrics_bind_address)
    try:
        code = components.run_agent(
            kubeconfig=kubeconfig,
            engine=engine,
            engine_socket=engine_socket,
            node_name=node_name or socket_mod.gethostname(),
            state_dir=state_dir or connection.default_data_dir() / "agent",
            max_builds=max_builds,
            instance=instance,
            ready_file=ready_file,
            run_pods=run_pods,
            serve_services=serve_services,
            pod_manifest_path=pod_manifest_path,
            manifest_url=manifest_url,
            logs_socket=logs_socket,
        )
    except EngineError as err:
        _die(str(err), 3)
    except (connection.KubeconfigError, connection.CredentialError) as err:
        _kubeconfig_die(err)
    _exit_now(code)


# --- builds ------------------------------------------------------------------------------------


@app.command("start-build")
@_http_errors
def start_build(
    name: str = typer.Argument(..., help="BuildConfig name"),
    follow: bool = typer.Option(
        False, "--follow", "-F", help="stream the build log and wait for the end; exit 0 only if the build is Complete"
    ),
    from_dir: Path = typer.Option(None, "--from-dir", help="Binary source: upload this directory as the context"),
    from_file: Path = typer.Option(
        None, "--from-file", help="Binary source: upload this one file (e.g. a Dockerfile) as the context"
    ),
    from_archive: Path = typer.Option(
        None, "--from-archive", help="Binary source: upload this tar or tar.gz archive as the context"
    ),
    namespace: str = NamespaceOpt,
    kubeconfig: str = KubeconfigOpt,
    output: str = OutputOpt,
) -> None:
    """Start a new build of a BuildConfig (creates Build NAME-N) and print `build/NAME-N`.

    For a BuildConfig with `source.type: Binary`, give the context with exactly one of
    --from-dir, --from-file or --from-archive; it is uploaded with a progress bar.

    Examples: dockyard start-build hello --follow · dockyard start-build app --from-dir . -o json
    """
    from dockyard.cli import upload

    sources = [p for p in (from_dir, from_file, from_archive) if p is not None]
    if len(sources) > 1:
        _die("give only one of --from-dir, --from-file, --from-archive", 2)
    _object_name(name, "BuildConfig")
    conn = _connect(kubeconfig)
    ns = namespace or conn.namespace
    with conn.http(timeout=300) as http:
        if not sources:  # a Binary build without its context could only fail: say so before making it
            config = http.get(f"{GROUP_PATH}/namespaces/{ns}/buildconfigs/{name}")
            if config.is_success and ((_check(config).get("spec") or {}).get("source") or {}).get("type") == "Binary":
                _die(f"buildconfig {name!r} has a Binary source: give --from-dir, --from-file or --from-archive", 2)
        if sources:
            try:
                with upload.archive(from_dir=from_dir, from_file=from_file, from_archive=from_archive) as packed:
                    build = _check(
                        upload.send(
                            http,
                            f"{GROUP_PATH}/namespaces/{ns}/buildconfigs/{name}/instantiatebinary",
                            packed,
                            label=f"uploading {sources[0]}",
                        )
                    )
            except upload.UploadError as err:
                _die(str(err), 2)
        else:
            body = {"kind": "BuildRequest", "apiVersion": kinds.API_VERSION, "metadata": {"name": name}}
            build = _check(http.post(f"{GROUP_PATH}/namespaces/{ns}/buildconfigs/{name}/instantiate", json=body))
    build_name = _typed(build, objects.Build).metadata.name
    _print_obj(build, output, f"build/{build_name}")
    if follow:  # with -o json|yaml the object alone is on stdout, for a parser; the log goes to stderr
        raise typer.Exit(_follow_build(conn, ns, build_name, tail=None, log=sys.stderr if output else sys.stdout))


@app.command("cancel-build")
@_http_errors
def cancel_build(
    names: list[str] = typer.Argument(..., help="Build names (NAME or build/NAME)"),
    namespace: str = NamespaceOpt,
    kubeconfig: str = KubeconfigOpt,
) -> None:
    """Cancel builds: sets status.cancelled; the build pod stops, the phase becomes Cancelled.

    The Build and its log remain. A build that already ended is left as it is.

    Example: dockyard cancel-build hello-3 build/hello-4
    """
    conn = _connect(kubeconfig)
    ns = namespace or conn.namespace
    code = 0
    with conn.http() as http:
        for raw in names:
            name = _object_name(raw.removeprefix("build/").removeprefix("builds/"), "Build")
            path = f"{GROUP_PATH}/namespaces/{ns}/builds/{name}"
            phase = _typed(_check(http.get(path)), objects.Build).status.phase
            if phase in BUILD_TERMINAL:
                typer.echo(f"build/{name} already {phase}", err=True)
                continue
            resp = http.patch(
                f"{path}/status",
                json={"status": {"cancelled": True}},
                headers={"Content-Type": "application/merge-patch+json"},
            )
            if resp.is_success:
                typer.echo(f"build/{name} cancelled")
            else:
                _check(resp)
                code = 3
    raise typer.Exit(code)


def _follow_build(conn: connection.Connection, ns: str, name: str, *, tail: int | None, log: Any = sys.stdout) -> int:
    """Stream the log (to ``log``) until the build ends; return the exit code for its phase."""
    params: dict[str, Any] = {"follow": "true"}
    if tail is not None:
        params["tailLines"] = tail
    with conn.http(timeout=None) as http:
        build = _typed(_check(http.get(f"{GROUP_PATH}/namespaces/{ns}/builds/{name}")), objects.Build)
        if build.status.phase in (phases.BuildPhase.NEW, phases.BuildPhase.PENDING):  # queued: say so, the log waits
            why = f": {build.status.message}" if build.status.message else ""
            typer.echo(f"build/{name} {build.status.phase}{why}; the log follows once it runs", err=True)
        with http.stream("GET", f"{GROUP_PATH}/namespaces/{ns}/builds/{name}/log", params=params) as resp:
            if not resp.is_success:
                resp.read()
                _check(resp)
            for chunk in resp.iter_text():
                log.write(chunk)
                log.flush()
        phase, build = _wait_phase(
            http, f"{GROUP_PATH}/namespaces/{ns}/builds/{name}", objects.Build, BUILD_TERMINAL, 30
        )
    status = build.status
    if phase == phases.BuildPhase.COMPLETE:
        digest = status.output.to.imageDigest if status.output and status.output.to else None
        typer.echo(f"build/{name} {phase}: {status.outputDockerImageReference}@{digest}", err=True)
        return 0
    typer.echo(f"build/{name} {phase}: {status.reason or ''} {status.message or ''}".rstrip(), err=True)
    return 1


W = TypeVar("W", objects.Build, objects.Push)


def _wait_phase(
    http: httpx.Client,
    path: str,
    cls: type[W],
    terminal: tuple[str, ...],
    timeout: float,
    progress: Callable[[str], None] | None = None,
) -> tuple[str | None, W]:
    """GET ``path`` every 0.2 s until its ``status.phase`` is in ``terminal`` or ``timeout`` seconds pass, telling
    ``progress`` each new ``phase: message`` on the way.

    Returns:
        The phase last read (None while the object has none written) and the object, typed.
    """
    deadline = time.monotonic() + timeout
    told = None
    while True:
        obj = _typed(_check(http.get(path)), cls)
        phase = obj.status.phase if "phase" in obj.status.model_fields_set else None
        if phase in terminal or time.monotonic() > deadline:
            return phase, obj
        news = f"{phase or 'New'}: {getattr(obj.status, 'message', None) or ''}".rstrip(": ")
        if progress is not None and news != told:
            progress(news)
            told = news
        time.sleep(0.2)


@app.command()
@_http_errors
def logs(
    target: str = typer.Argument(..., help="build/NAME"),
    follow: bool = typer.Option(False, "--follow", "-f", help="stream until the build ends"),
    tail: int = typer.Option(None, "--tail", help="only the last N lines (-1: all, as kubectl logs)"),
    namespace: str = NamespaceOpt,
    kubeconfig: str = KubeconfigOpt,
) -> None:
    """Print a build's log. Logs are kept with the Build, also after its pod is gone.

    Example: dockyard logs build/hello-1 --tail 20 -f
    """
    kind, _, name = target.partition("/")
    if kind not in ("build", "builds") or not name:
        _die(f"{target!r}: expected build/NAME", 2)
    _object_name(name, "Build")
    lines = tail if tail is not None and tail >= 0 else None
    conn = _connect(kubeconfig)
    ns = namespace or conn.namespace
    if follow:
        code = _follow_build(conn, ns, name, tail=lines)
        raise typer.Exit(0 if code in (0, 1) else code)
    params = {"tailLines": lines} if lines is not None else {}
    with conn.http() as http:
        resp = http.get(f"{GROUP_PATH}/namespaces/{ns}/builds/{name}/log", params=params)
        if not resp.is_success:
            _check(resp)
        sys.stdout.write(resp.text)


@app.command()
@_http_errors
def dashboard(
    open_browser: bool = typer.Option(
        True, "--open/--no-open", help="open it in a browser when one is available ($DISPLAY or $WAYLAND_DISPLAY set)"
    ),
    kubeconfig: str = KubeconfigOpt,
) -> None:
    """Print the web dashboard's URL (https://HOST:PORT/dashboard/, on the API server's listener) and open it.

    Sign in there with the bearer token of a kubeconfig `dockyard up` wrote: DATA_DIR/kubeconfig (admin) or
    DATA_DIR/kubeconfig-view (read-only); the tab keeps it for its session only. Exit 3 (and no URL) when the
    kubeconfig's server does not answer or serves no dashboard.
    """
    import os
    import webbrowser

    from dockyard.dashboard import routes

    conn = _connect(kubeconfig)
    url = f"{conn.server.rstrip('/')}{routes.PREFIX}/"
    with conn.http() as http:  # served before sign-in: a URL that works, or exit 3 saying why not
        page = http.get(f"{routes.PREFIX}/", follow_redirects=True)
    if page.status_code != 200 or "html" not in page.headers.get("content-type", ""):
        _die(f"{url} answered HTTP {page.status_code}: the kubeconfig's server serves no dockyard dashboard", 3)
    typer.echo(url)
    where = conn.path or "the kubeconfig"
    flag = f" --kubeconfig {conn.path}" if conn.path else ""
    typer.echo(
        f"sign in with the token of {where}: kubectl config view{flag} --raw --minify "
        "-o jsonpath='{.users[0].user.token}'"
    )
    if open_browser and (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        webbrowser.open(url)


# --- commit ------------------------------------------------------------------------------------


@app.command()
@_http_errors
def commit(
    target: str = typer.Argument(..., help="POD or POD/CONTAINER (default: the pod's first container)"),
    image: str = typer.Argument(..., help="target reference, e.g. 127.0.0.1:5000/snap/app:v1"),
    wait: bool = typer.Option(
        False,
        "--wait",
        help="wait for the push, printing its progress; exit 0 on Succeeded, 1 on Failed or once --timeout passes",
    ),
    pause: bool = typer.Option(True, "--pause/--no-pause", help="pause the container while committing"),
    message: str = typer.Option(None, "--message", "-m", help="commit message"),
    author: str = typer.Option(None, "--author", "-a", help="commit author"),
    change: list[str] = typer.Option(None, "--change", "-c", help="Dockerfile instruction to apply (repeatable)"),
    timeout: float = typer.Option(300, "--timeout", callback=_positive, help="seconds --wait waits (> 0)"),
    namespace: str = NamespaceOpt,
    kubeconfig: str = KubeconfigOpt,
    output: str = OutputOpt,
) -> None:
    """Commit a running container to an image and push it (creates a Push; prints push/NAME).

    The pod (and the container, when named) must exist: checked before the Push is made (exit 2 otherwise).

    Example: dockyard commit web-5d9c/app 127.0.0.1:5000/snap/app:v1 --wait
    """
    pod, _, container = target.partition("/")
    if not pod or "/" in container:
        _die(f"{target!r}: expected POD or POD/CONTAINER", 2)
    _object_name(pod, "Pod")
    conn = _connect(kubeconfig)
    ns = namespace or conn.namespace
    with conn.http() as http:
        found = http.get(f"/api/v1/namespaces/{ns}/pods/{pod}")
        if found.status_code == 404:
            _die(f"pod {pod!r} not found in namespace {ns!r}", 2)
        if found.is_success and container:  # (a reader not allowed to get pods gets its answer from the Push)
            names = [c.get("name") for c in (_check(found).get("spec") or {}).get("containers") or []]
            if container not in names:
                _die(f"pod {pod!r} has no container {container!r} (it has {', '.join(map(str, names))})", 2)
    spec: dict[str, Any] = {"podName": pod, "image": image, "pause": pause}
    for key, value in (("containerName", container), ("message", message), ("author", author), ("changes", change)):
        if value:
            spec[key] = value
    body = {
        "apiVersion": kinds.API_VERSION,
        "kind": "Push",
        "metadata": {"generateName": f"{pod}-{container + '-' if container else ''}", "namespace": ns},
        "spec": spec,
    }
    with conn.http() as http:
        created = _check(http.post(f"{GROUP_PATH}/namespaces/{ns}/pushes", json=body))
        name = _typed(created, objects.Push).metadata.name
        _print_obj(created, output, f"push/{name}")
        if not wait:
            return
        phase, push = _wait_phase(
            http,
            f"{GROUP_PATH}/namespaces/{ns}/pushes/{name}",
            objects.Push,
            PUSH_TERMINAL,
            timeout,
            progress=lambda news: typer.echo(f"push/{name} {news}", err=True),
        )
    if phase == phases.PushPhase.SUCCEEDED:
        typer.echo(f"push/{name} {phase}: {image}@{push.status.imageDigest}", err=True)
        raise typer.Exit(0)
    if phase in PUSH_TERMINAL:
        typer.echo(f"push/{name} {phase}: {push.status.message or ''}".rstrip(": "), err=True)
    else:
        typer.echo(
            f"push/{name}: timed out after {timeout:g}s, still {phase or 'New'} (it goes on: kubectl get push {name})",
            err=True,
        )
    raise typer.Exit(1)


# --- base-image --------------------------------------------------------------------------------


@app.command("base-image")
def base_image(
    name: str = typer.Argument(..., help="which base image: busybox"),
    to: str = typer.Option(..., "--to", help="reference to push, e.g. 127.0.0.1:5000/base/busybox:latest"),
    engine: str = typer.Option("auto", "--engine", help="auto | podman | docker"),
    engine_socket: str = typer.Option(None, "--engine-socket", help="engine API socket path"),
    data_dir: Path = typer.Option(
        None,
        "--data-dir",
        help="where a Podman service started for this command keeps its socket (default: dockyard's data dir)",
    ),
) -> None:
    """Make a base image locally (nothing can be pulled): FROM scratch + the host's static busybox, pushed to --to.

    Prints the reference with the digest the registry serves.
    """
    from dockyard.agent.engine import connect as engine_connect
    from dockyard.agent.engine.errors import EngineError
    from dockyard.cli.base_image import SUPPORTED, build_base_image
    from dockyard.registry.errors import RegistryError

    if name not in SUPPORTED:
        _die(f"base image {name!r} is not known: choose one of {', '.join(SUPPORTED)}", 2)
    run_dir = (data_dir or connection.default_data_dir()) / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    socket_path = engine_socket
    if socket_path is None and engine in ("auto", "podman") and (run_dir / "podman.sock").exists():
        socket_path = str(run_dir / "podman.sock")  # the service `dockyard up` started
    try:
        eng = engine_connect.connect(engine, socket_path, run_dir=run_dir)
    except EngineError as err:
        _die(str(err), 3)
    try:
        digest = build_base_image(eng, name=name, to=to, on_log=lambda line: typer.echo(line.rstrip(), err=True))
    except (EngineError, RegistryError) as err:
        _die(str(err), 1)
    finally:
        eng.close()
    typer.echo(f"{to.rsplit(':', 1)[0] if ':' in to.rsplit('/', 1)[-1] else to}@{digest}")


def _add_manifests() -> None:
    from dockyard.cli import manifests

    app.add_typer(manifests.app, name="manifests")


_add_manifests()


def main() -> None:  # pragma: no cover - console entry
    app()
