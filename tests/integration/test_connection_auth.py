"""Connections as kubectl and client-go make them, against real servers.

- An exec-plugin kubeconfig (client.authentication.k8s.io/v1 and v1beta1) against the real API server:
  lightkube, the raw httpx client, ``dockyard start-build``, and ``dockyard controllers`` as a process.
- In-cluster: ``KUBERNETES_SERVICE_HOST``/``_PORT`` and a service-account directory; the token file is
  re-read as it rotates; ``dockyard agent`` starts and syncs with it.
- Client certificates (files, ``-data``, and from an exec plugin) against a stdlib TLS server that requires
  one (the API server authenticates bearer tokens only; uvicorn does not hand the peer certificate to the app).
- A kubeconfig that cannot be used: the CLI names what to fix and exits 2 (3 for a failing plugin).
"""

from __future__ import annotations

import base64
import datetime as dt
import http.server
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from lightkube import ApiError
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace
from typer.testing import CliRunner

from dockyard.cli.main import app
from dockyard.client import connection

BuildConfig = create_namespaced_resource("dockyard.dev", "v1alpha1", "BuildConfig", "buildconfigs")
BC: dict[str, Any] = {
    "apiVersion": "dockyard.dev/v1alpha1",
    "kind": "BuildConfig",
    "metadata": {"name": "hello"},
    "spec": {
        "source": {"type": "Dockerfile", "dockerfile": "FROM scratch"},
        "strategy": {"type": "Docker"},
        "output": {"to": {"kind": "DockerImage", "name": "127.0.0.1:5000/hello:latest"}},
    },
}


def _bc(name: str) -> Any:
    return BuildConfig(metadata=ObjectMeta(name=name), spec=BC["spec"])


V1 = "client.authentication.k8s.io/v1"
V1BETA1 = "client.authentication.k8s.io/v1beta1"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


def _kubeconfig(path: Path, server: str, user: dict[str, Any], *, ca: Path | None = None) -> Path:
    cluster: dict[str, Any] = {"server": server}
    if ca is not None:
        cluster["certificate-authority"] = str(ca)
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "c",
                "clusters": [{"name": "c", "cluster": cluster}],
                "users": [{"name": "u", "user": user}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u", "namespace": "default"}}],
            }
        )
    )
    return path


def _exec_plugin(
    tmp_path: Path, tokens: list[str], *, api_version: str = V1, status: dict[str, Any] | None = None
) -> tuple[dict[str, Any], Path]:
    """An exec user whose plugin prints ``tokens[i]`` on its i-th run (the last one after that);
    returns ``(user, calls_file)``; each run appends one line to ``calls_file``."""
    calls = tmp_path / f"calls-{len(list(tmp_path.glob('plugin*.py')))}"
    script = tmp_path / f"plugin{len(list(tmp_path.glob('plugin*.py')))}.py"
    script.write_text(f"""
import json, os, pathlib
calls = pathlib.Path({str(calls)!r})
n = len(calls.read_text().splitlines()) if calls.exists() else 0
with calls.open("a") as fh:
    fh.write("run\\n")
tokens = {tokens!r}
status = {status!r} or {{"token": tokens[min(n, len(tokens) - 1)]}}
assert json.loads(os.environ["KUBERNETES_EXEC_INFO"])["apiVersion"] == {api_version!r}
print(json.dumps({{"apiVersion": {api_version!r}, "kind": "ExecCredential", "status": status}}))
""")
    return {"exec": {"apiVersion": api_version, "command": sys.executable, "args": [str(script)]}}, calls


@pytest.mark.parametrize("api_version", [V1, V1BETA1])
def test_exec_plugin_lightkube_raw_http_and_cli(apiserver: Any, tmp_path: Path, api_version: str) -> None:
    user, calls = _exec_plugin(tmp_path, [apiserver.token], api_version=api_version)
    kubeconfig = _kubeconfig(tmp_path / "kubeconfig", apiserver.url, user, ca=apiserver.ca)
    conn = connection.connect(str(kubeconfig))
    api = conn.lightkube(timeout=10)
    api.create(_bc("hello"))
    assert [bc.metadata.name for bc in api.list(BuildConfig)] == ["hello"]
    with conn.http() as http:
        resp = http.get("/apis/dockyard.dev/v1alpha1/namespaces/default/buildconfigs/hello")
    assert resp.status_code == 200, resp.text
    assert calls.read_text().count("run") == 1  # one credential for every client of the connection

    result = CliRunner().invoke(app, ["start-build", "hello", "--kubeconfig", str(kubeconfig)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "build/hello-1"


def test_exec_plugin_token_refreshed_after_401(apiserver: Any, tmp_path: Path) -> None:
    user, calls = _exec_plugin(tmp_path, ["revoked-token", apiserver.token])
    conn = connection.connect(str(_kubeconfig(tmp_path / "k", apiserver.url, user, ca=apiserver.ca)))
    assert conn.authorization() == "Bearer revoked-token"
    assert [ns.metadata.name for ns in conn.lightkube(timeout=10).list(Namespace)]
    with conn.http() as http:
        assert http.get("/api/v1/namespaces").status_code == 200
    assert calls.read_text().count("run") == 2


def test_dockyard_controllers_run_with_an_exec_kubeconfig(apiserver: Any, tmp_path: Path) -> None:
    user, calls = _exec_plugin(tmp_path, [apiserver.token])
    kubeconfig = _kubeconfig(tmp_path / "k", apiserver.url, user, ca=apiserver.ca)
    with apiserver.client() as api:
        assert (
            api.post(
                "/apis/dockyard.dev/v1alpha1/namespaces/default/buildconfigs",
                json={**BC, "spec": {**BC["spec"], "triggers": [{"type": "ConfigChange"}]}},
            ).status_code
            == 201
        )
    ready = tmp_path / "ready"
    with _process(
        ["controllers", "--kubeconfig", str(kubeconfig), "--controllers", "buildconfig", "--ready-file", str(ready)],
        tmp_path,
    ) as proc:
        _wait(lambda: ready.exists() or proc.poll() is not None, 30)
        assert ready.read_text().strip() == str(proc.pid)
        # the buildconfig controller acted through the exec credential: ConfigChange started hello-1
        with apiserver.client() as api:
            _wait(
                lambda: api.get("/apis/dockyard.dev/v1alpha1/namespaces/default/builds/hello-1").status_code == 200, 30
            )
    assert calls.read_text().count("run") >= 1


def _service_account(tmp_path: Path, apiserver: Any, token: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    sa = tmp_path / "serviceaccount"
    sa.mkdir()
    (sa / "token").write_text(token)
    (sa / "ca.crt").write_bytes(Path(apiserver.ca).read_bytes())
    (sa / "namespace").write_text("default")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", apiserver.url.rsplit(":", 1)[1])
    return sa


def test_in_cluster_service_account_and_token_rotation(
    apiserver: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sa = _service_account(tmp_path, apiserver, apiserver.token, monkeypatch)
    conn = connection.connect(service_account_dir=sa)
    assert conn.namespace == "default" and conn.paths == ()
    api = conn.lightkube(timeout=10)
    assert [ns.metadata.name for ns in api.list(Namespace)]
    # the kubelet rotates the projected token: once the cached one is older than the period, the file is read again
    (sa / "token").write_text(apiserver.view_token)
    api.create(_bc("before"))
    conn.auth.source.period = 0.0
    with pytest.raises(ApiError) as err:
        api.create(_bc("after"))
    assert err.value.status.code == 403  # the view identity of the new token
    with conn.http() as http:
        assert http.get("/api/v1/namespaces").status_code == 200


def test_dockyard_agent_runs_in_cluster(
    apiserver: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, podman_engine: Any
) -> None:
    sa = _service_account(tmp_path, apiserver, apiserver.node_token, monkeypatch)
    ready = tmp_path / "ready"
    # the agent reads the fixed pod path; the test points the module's constant at the temp dir
    code = (
        "import sys; from pathlib import Path; from dockyard.client import connection as c; "
        "c.SERVICE_ACCOUNT_DIR = Path(sys.argv.pop(1)); from dockyard.cli.main import app; "
        "app(prog_name='dockyard')"
    )
    argv = [
        "agent",
        "--engine",
        "podman",
        "--engine-socket",
        podman_engine.socket,
        "--node-name",
        apiserver.node_name,
        "--instance",
        f"conn-test-{os.getpid()}",
        "--state-dir",
        str(tmp_path / "state"),
        "--ready-file",
        str(ready),
    ]
    with _process(argv, tmp_path, code=code, pre_args=[str(sa)]) as proc:
        _wait(lambda: ready.exists() or proc.poll() is not None, 60)
        # ready = every informer listed through the service-account token
        assert ready.exists() and ready.read_text().strip() == str(proc.pid), _output(tmp_path)
    assert f"API {apiserver.url}" in _output(tmp_path)


# --- client certificates -----------------------------------------------------------------------


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _pem_key(key: Any) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _issue(subject: x509.Name, issuer: x509.Name, public: Any, signer: Any, *, ca: bool) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(signer, hashes.SHA256())
    )


@pytest.fixture
def client_ca(tmp_path: Path) -> dict[str, Any]:
    """A client CA and a client certificate for CN=alice, O=builders (Kubernetes' x509 user/group mapping)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-client-ca")])
    ca = _issue(ca_name, ca_name, ca_key.public_key(), ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "alice"), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "builders")]
    )
    cert = _issue(name, ca_name, key.public_key(), ca_key, ca=False)
    paths = {"ca": tmp_path / "client-ca.crt", "cert": tmp_path / "alice.crt", "key": tmp_path / "alice.key"}
    paths["ca"].write_bytes(_pem_cert(ca))
    paths["cert"].write_bytes(_pem_cert(cert))
    paths["key"].write_bytes(_pem_key(key))
    return paths


@pytest.fixture
def mtls_server(client_ca: dict[str, Any], serving_cert: tuple[Path, Path]) -> Iterator[str]:
    """``https://127.0.0.1:PORT`` of a server that requires a client certificate from ``client_ca``
    and answers every GET with a NamespaceList holding one namespace named after the certificate's CN."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            subject = dict(item[0] for item in self.connection.getpeercert()["subject"])  # type: ignore[attr-defined]
            body = json.dumps(
                {
                    "kind": "NamespaceList",
                    "apiVersion": "v1",
                    "metadata": {"resourceVersion": "1"},
                    "items": [{"metadata": {"name": subject["commonName"]}, "spec": {}, "status": {"phase": "Active"}}],
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*serving_cert)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cafile=str(client_ca["ca"]))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


@pytest.mark.parametrize("form", ["files", "data", "exec"])
def test_client_certificate_is_presented_by_every_client(
    mtls_server: str, client_ca: dict[str, Any], serving_cert: tuple[Path, Path], tmp_path: Path, form: str
) -> None:
    if form == "files":
        user: dict[str, Any] = {"client-certificate": str(client_ca["cert"]), "client-key": str(client_ca["key"])}
    elif form == "data":
        user = {"client-certificate-data": _b64(client_ca["cert"]), "client-key-data": _b64(client_ca["key"])}
    else:
        user, _ = _exec_plugin(
            tmp_path,
            [],
            status={
                "clientCertificateData": client_ca["cert"].read_text(),
                "clientKeyData": client_ca["key"].read_text(),
            },
        )
    conn = connection.connect(str(_kubeconfig(tmp_path / "k", mtls_server, user, ca=serving_cert[0])))
    assert [ns.metadata.name for ns in conn.lightkube(timeout=10).list(Namespace)] == ["alice"]
    with conn.http() as http:
        assert http.get("/api/v1/namespaces").json()["items"][0]["metadata"]["name"] == "alice"


def test_without_a_client_certificate_the_handshake_fails(
    mtls_server: str, serving_cert: tuple[Path, Path], tmp_path: Path
) -> None:
    import httpx

    conn = connection.connect(str(_kubeconfig(tmp_path / "k", mtls_server, {"token": "x"}, ca=serving_cert[0])))
    with conn.http() as http, pytest.raises(httpx.HTTPError):
        http.get("/api/v1/namespaces")


# --- CLI messages ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "code", "words"),
    [
        ({"auth-provider": {"name": "oidc"}}, 2, ["auth-provider (oidc)", "exec"]),
        ({"client-certificate": "/nonexistent/c.crt", "client-key": "/nonexistent/c.key"}, 2, ["client-certificate"]),
        (
            {"exec": {"apiVersion": V1, "command": sys.executable, "args": ["-c", "import sys; sys.exit(5)"]}},
            3,
            ["exec plugin", "exited 5"],
        ),
    ],
)
def test_cli_names_what_to_fix(
    apiserver: Any, tmp_path: Path, user: dict[str, Any], code: int, words: list[str]
) -> None:
    kubeconfig = _kubeconfig(tmp_path / "k", apiserver.url, user, ca=apiserver.ca)
    proc = subprocess.run(
        [sys.executable, "-m", "dockyard", "start-build", "hello", "--kubeconfig", str(kubeconfig)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("error: ")
    for word in words:
        assert word in proc.stderr


# --- helpers -----------------------------------------------------------------------------------


def _wait(predicate: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.1)


def _output(tmp_path: Path) -> str:
    return (tmp_path / "component.log").read_text()[-3000:]


class _process:
    """Run ``python -m dockyard ARGV`` (or ``-c code``) with output to ``tmp_path/component.log``; SIGTERM at exit."""

    def __init__(
        self,
        argv: list[str],
        tmp_path: Path,
        *,
        code: str | None = None,
        pre_args: list[str] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        cmd = [sys.executable, "-c", code, *pre_args] if code else [sys.executable, "-m", "dockyard"]
        self.log = (tmp_path / "component.log").open("w")
        self.proc = subprocess.Popen(
            [*cmd, *argv], stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )

    def __enter__(self) -> subprocess.Popen[bytes]:
        return self.proc

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
