"""Kubeconfig loading and credential sources (client/connection.py, client/credentials.py), without a server."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from dockyard.apiserver import tls
from dockyard.client import connection, credentials


def _write(
    path: Path,
    *,
    server: str = "https://127.0.0.1:1",
    user: dict[str, Any] | None = None,
    cluster: dict[str, Any] | None = None,
    namespace: str | None = "team",
    name: str = "c",
    current: str | None = "c",
) -> Path:
    ctx: dict[str, Any] = {"cluster": name, "user": name}
    if namespace:
        ctx["namespace"] = namespace
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server, **(cluster or {})}}],
        "users": [{"name": name, "user": user if user is not None else {"token": "t0"}}],
        "contexts": [{"name": name, "context": ctx}],
    }
    if current:
        doc["current-context"] = current
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


def _plugin(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "plugin.py"
    script.write_text(body)
    return script


def _exec_user(script: Path, api_version: str = "client.authentication.k8s.io/v1", **extra: Any) -> dict[str, Any]:
    return {"exec": {"apiVersion": api_version, "command": sys.executable, "args": [str(script)], **extra}}


def test_token_context_namespace_and_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    cert, key = tmp_path / "sub" / "ca.crt", tmp_path / "sub" / "ca.key"
    tls.write_self_signed(cert, key)
    path = _write(tmp_path / "sub" / "config", cluster={"certificate-authority": "ca.crt"})
    conn = connection.connect(str(path))
    assert conn.server == "https://127.0.0.1:1" and conn.namespace == "team" and conn.path == path
    assert conn.authorization() == "Bearer t0"
    assert conn.settings.cluster.certificate_auth == str(cert)
    assert conn.ssl_context().verify_mode.name == "CERT_REQUIRED"


def test_namespace_defaults_to_default(tmp_path: Path) -> None:
    assert connection.connect(str(_write(tmp_path / "k", namespace=None))).namespace == "default"


def test_kubeconfig_list_merges_first_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _write(tmp_path / "a", user={"token": "from-a"}, current=None)
    second = _write(tmp_path / "b", user={"token": "from-b"}, current="c", server="https://127.0.0.1:2")
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'missing'}:{first}:{second}")
    conn = connection.connect()
    # current-context only in b; cluster and user named "c" in both: a's win (clientcmd's merge)
    assert conn.paths == (first, second)
    assert conn.server == "https://127.0.0.1:1" and conn.authorization() == "Bearer from-a"
    assert connection.connect(paths=[str(p) for p in conn.paths]).authorization() == "Bearer from-a"


@pytest.mark.parametrize(
    ("user", "cluster", "current", "names"),
    [
        ({"token": "t"}, {}, None, ["no current-context"]),
        ({"token": "t"}, {}, "other", ["context 'other' not found"]),
        ({"auth-provider": {"name": "gcp"}}, {}, "c", ["auth-provider (gcp)", "exec"]),
        ({"token": "t", "username": "u", "password": "p"}, {}, "c", ["not both"]),
        (
            {"client-certificate": "/nonexistent/x.crt", "client-key": "/nonexistent/x.key"},
            {},
            "c",
            ["client-certificate", "/nonexistent/x.crt"],
        ),
        ({"client-certificate-data": "QUJD"}, {}, "c", ["client-key"]),
        (
            {"token": "t"},
            {"certificate-authority-data": "QUJD", "insecure-skip-tls-verify": True},
            "c",
            ["insecure-skip-tls-verify"],
        ),
        ({"token": "t"}, {"certificate-authority": "/nonexistent/ca.crt"}, "c", ["certificate-authority"]),
        ({"token": "t"}, {"tls-server-name": "x"}, "c", ["tls-server-name"]),
        (
            {"exec": {"apiVersion": "client.authentication.k8s.io/v1alpha1", "command": "x"}},
            {},
            "c",
            ["exec.apiVersion", "v1alpha1"],
        ),
        (
            {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "x", "interactiveMode": "Always"}},
            {},
            "c",
            ["interactiveMode"],
        ),
        ({"tokenFile": "/nonexistent/token"}, {}, "c", ["tokenFile"]),
    ],
)
def test_unusable_kubeconfig_names_the_field(
    tmp_path: Path, user: dict[str, Any], cluster: dict[str, Any], current: str | None, names: list[str]
) -> None:
    path = _write(tmp_path / "k", user=user, cluster=cluster, current=current)
    with pytest.raises(connection.BadKubeconfig) as err:
        connection.connect(str(path))
    for name in names:
        assert name in str(err.value)
    assert str(path) in str(err.value)


def test_not_yaml_and_not_found(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_text("clusters: [")
    with pytest.raises(connection.BadKubeconfig, match="not valid YAML"):
        connection.connect(str(bad))
    with pytest.raises(connection.NoKubeconfig, match="KUBERNETES_SERVICE_HOST"):
        connection.connect()


def test_basic_auth(tmp_path: Path) -> None:
    conn = connection.connect(str(_write(tmp_path / "k", user={"username": "u", "password": "p"})))
    assert conn.authorization() == "Basic " + base64.b64encode(b"u:p").decode()


def test_token_file_is_reread_after_its_period(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("one\n")
    source = credentials.TokenFile(path=token, where="w", period=0.0)
    assert source.header() == "Bearer one"
    token.write_text("two")
    assert source.header() == "Bearer two"
    cached = credentials.TokenFile(path=token, where="w")
    assert cached.header() == "Bearer two"
    token.write_text("three")
    assert cached.header() == "Bearer two"  # within the minute
    assert cached.refresh("Bearer two") is True and cached.header() == "Bearer three"  # after a 401


def test_in_cluster_from_service_account_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "token").write_text("sa-token")
    (sa / "namespace").write_text("builds\n")
    tls.write_self_signed(sa / "ca.crt", tmp_path / "ca.key")
    with pytest.raises(connection.NoKubeconfig):
        connection.connect(service_account_dir=sa)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "6443")
    conn = connection.connect(service_account_dir=sa)
    assert conn.server == "https://127.0.0.1:6443" and conn.namespace == "builds" and conn.paths == ()
    assert conn.authorization() == "Bearer sa-token"
    assert conn.settings.cluster.certificate_auth == str(sa / "ca.crt")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "::1")
    assert connection.connect(service_account_dir=sa).server == "https://[::1]:6443"
    (sa / "token").unlink()
    with pytest.raises(connection.BadKubeconfig, match="service-account token"):
        connection.connect(service_account_dir=sa)


def test_explicit_kubeconfig_wins_over_in_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "6443")
    assert connection.connect(str(_write(tmp_path / "k"))).server == "https://127.0.0.1:1"


def test_exec_plugin_v1_gets_exec_info_and_caches_until_expiry(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    script = _plugin(
        tmp_path,
        f"""
import json, os, sys, pathlib
calls = pathlib.Path({str(calls)!r})
n = len(calls.read_text()) if calls.exists() else 0
calls.write_text("x" * (n + 1))
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
assert info["spec"]["interactive"] is False, info
assert info["spec"]["cluster"]["server"] == "https://127.0.0.1:1", info
assert os.environ["PLUGIN_VAR"] == "v"
expires = "2000-01-01T00:00:00Z" if n == 0 else "2999-01-01T00:00:00Z"
print(json.dumps({{"apiVersion": info["apiVersion"], "kind": "ExecCredential",
                  "status": {{"token": f"tok-{{n}}", "expirationTimestamp": expires}}}}))
""",
    )
    user = _exec_user(script, env=[{"name": "PLUGIN_VAR", "value": "v"}], provideClusterInfo=True)
    conn = connection.connect(str(_write(tmp_path / "k", user=user)))
    # the first credential had already expired: the next use runs the plugin again; the second lasts
    assert conn.authorization() == "Bearer tok-1"
    assert conn.authorization() == "Bearer tok-1"
    assert calls.read_text() == "xx"


def test_exec_plugin_v1beta1(tmp_path: Path) -> None:
    script = _plugin(
        tmp_path,
        'import json; print(json.dumps({"apiVersion": '
        '"client.authentication.k8s.io/v1beta1", "kind": "ExecCredential", "status": {"token": "b"}}))',
    )
    conn = connection.connect(
        str(_write(tmp_path / "k", user=_exec_user(script, "client.authentication.k8s.io/v1beta1")))
    )
    assert conn.authorization() == "Bearer b"


def test_exec_plugin_failures_name_the_plugin(tmp_path: Path) -> None:
    failing = _plugin(tmp_path, 'import sys; sys.stderr.write("please log in"); sys.exit(4)')
    with pytest.raises(credentials.CredentialError, match="exited 4: please log in"):
        connection.connect(str(_write(tmp_path / "k", user=_exec_user(failing))))
    user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": "/nonexistent/plugin",
            "installHint": "install it from example",
        }
    }
    with pytest.raises(credentials.CredentialError, match=r"not found .install it from example"):
        connection.connect(str(_write(tmp_path / "k", user=user)))


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("not json", "no ExecCredential JSON"),
        (
            {"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential", "status": {"token": "t"}},
            "plugin returned version",
        ),
        ({"apiVersion": "client.authentication.k8s.io/v1", "kind": "Other", "status": {"token": "t"}}, "kind"),
        ({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential"}, "status"),
        ({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "status": {}}, "status.token"),
        (
            {
                "apiVersion": "client.authentication.k8s.io/v1",
                "kind": "ExecCredential",
                "status": {"clientCertificateData": "x"},
            },
            "clientKeyData",
        ),
        (
            {
                "apiVersion": "client.authentication.k8s.io/v1",
                "kind": "ExecCredential",
                "status": {"token": "t", "expirationTimestamp": "tomorrow"},
            },
            "expirationTimestamp",
        ),
    ],
)
def test_exec_output_rules(doc: Any, message: str) -> None:
    raw = doc.encode() if isinstance(doc, str) else json.dumps(doc).encode()
    with pytest.raises(credentials.CredentialError, match=message):
        credentials.parse_exec_output(raw, api_version="client.authentication.k8s.io/v1", where="w")
