"""README promises about the `dockyard` CLI, checked by running the real command as a subprocess.

- "Every other command ... finds the server as kubectl does ... Refused with a message naming the field
  (exit 2): `auth-provider` (use an exec plugin), `tls-server-name`, `proxy-url`, a certificate without its
  key, a token together with username/password." (`auth-provider` is already run through the CLI in
  tests/integration/test_connection_auth.py; the others were only checked on `connection.connect`.)
- "`dockyard dashboard` prints the URL and opens it when `$DISPLAY` or `$WAYLAND_DISPLAY` is set (`--no-open`
  only prints it)."
- "`dockyard manifests kubernetes [--image REF] [--engine docker|podman] [--replicas 2] [-n dockyard-system]`"
  and "What runs where" under "Running on Kubernetes".

Everything talks to 127.0.0.1 only: the API server is the ``apiserver`` fixture (tests/integration/conftest.py).
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from .conftest import ApiServer

DOCKYARD = str(Path(sys.executable).with_name("dockyard"))
TIMEOUT = 60.0


def run(args: list[str], *, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``dockyard ARGS`` as a subprocess (bounded by :data:`TIMEOUT`), with no kubeconfig from the environment."""
    base = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "DISPLAY", "WAYLAND_DISPLAY", "BROWSER")}
    return subprocess.run(
        [DOCKYARD, *args], capture_output=True, text=True, timeout=TIMEOUT, check=False, env={**base, **(env or {})}
    )


def assert_clean_error(proc: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    """Exit ``code``, one ``error: ...`` message naming ``words`` on stderr, no traceback, nothing on stdout."""
    shown = f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    assert proc.returncode == code, shown
    assert "Traceback" not in proc.stderr + proc.stdout, shown
    assert proc.stderr.startswith("error: "), shown
    assert proc.stdout == "", shown
    for word in words:
        assert word in proc.stderr, shown


def write_kubeconfig(path: Path, server: ApiServer, *, cluster: dict[str, Any], user: dict[str, Any]) -> Path:
    """A kubeconfig for ``server`` whose cluster and user carry the extra fields ``cluster`` and ``user``."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "c", "cluster": {"server": server.url, "certificate-authority": str(server.ca), **cluster}}
        ],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u", "namespace": "default"}}],
        "current-context": "c",
    }
    path.write_text(yaml.safe_dump(config))
    return path


# --- 1. kubeconfig refusals ----------------------------------------------------------------------


def _refusals(server: ApiServer) -> dict[str, tuple[dict[str, Any], dict[str, Any], list[str]]]:
    """id → (cluster fields, user, words the message must hold)."""
    cert = server.ca  # a real PEM certificate file; only its key is missing
    token = {"token": server.token}
    return {
        "proxy-url": ({"proxy-url": "http://127.0.0.1:3128"}, token, ["proxy-url"]),
        "tls-server-name": ({"tls-server-name": "127.0.0.1"}, token, ["tls-server-name"]),
        "certificate-without-key": ({}, {"client-certificate": str(cert)}, ["client-certificate", "client-key"]),
        "certificate-data-without-key": (
            {},
            {"client-certificate-data": base64.b64encode(cert.read_bytes()).decode()},
            ["client-certificate", "client-key"],
        ),
        "token-and-basic-auth": (
            {},
            {**token, "username": "admin", "password": "secret-pw"},
            ["username/password", "token"],
        ),
    }


REFUSALS = [
    "proxy-url",
    "tls-server-name",
    "certificate-without-key",
    "certificate-data-without-key",
    "token-and-basic-auth",
]


def test_the_same_kubeconfig_without_the_refused_field_reaches_the_server(apiserver: ApiServer, tmp_path: Path) -> None:
    """The control for the refusals below: with only the token, the same kubeconfig and command reach the API
    server, which answers (a Build that does not exist: exit 2, README's exit code for a 4xx answer), so each
    refusal below comes from the field alone."""
    kubeconfig = write_kubeconfig(tmp_path / "k", apiserver, cluster={}, user={"token": apiserver.token})
    proc = run(["logs", "build/missing-1", "--kubeconfig", str(kubeconfig)])
    assert_clean_error(proc, 2, "missing-1", "not found")
    assert "not supported" not in proc.stderr and "go together" not in proc.stderr


@pytest.mark.parametrize("case", REFUSALS)
def test_kubeconfig_field_is_refused_with_exit_2_naming_it(apiserver: ApiServer, tmp_path: Path, case: str) -> None:
    """README: "Refused with a message naming the field (exit 2): ... `tls-server-name`, `proxy-url`, a
    certificate without its key, a token together with username/password." Run through a read command
    (`dockyard logs`): no traceback, one `error:` line naming the field and the kubeconfig file."""
    cluster, user, words = _refusals(apiserver)[case]
    kubeconfig = write_kubeconfig(tmp_path / "k", apiserver, cluster=cluster, user=user)
    proc = run(["logs", "build/missing-1", "--kubeconfig", str(kubeconfig)])
    assert_clean_error(proc, 2, *words, str(kubeconfig))
    assert "secret-pw" not in proc.stderr


# --- 2. dashboard --no-open ----------------------------------------------------------------------


def fake_browser(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """An environment with a display and fake browsers (`xdg-open` first on PATH, and `$BROWSER`) that record the
    URL they are asked to open in the returned marker file."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    marker = tmp_path / "browser-opened"
    for name in ("xdg-open", "fake-browser", "www-browser", "x-www-browser", "sensible-browser", "firefox"):
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\necho "{name} $*" >> "{marker}"\n')
        script.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "DISPLAY": ":99",
        "WAYLAND_DISPLAY": "wayland-99",
        "BROWSER": str(bin_dir / "fake-browser"),
    }
    return env, marker


def wait_for(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return bool(predicate())


def test_dashboard_without_no_open_opens_the_fake_browser(apiserver: ApiServer, tmp_path: Path) -> None:
    """README: `dockyard dashboard` "prints the URL and opens it when `$DISPLAY` or `$WAYLAND_DISPLAY` is set".
    Also the control for the `--no-open` test: the fake browser does record an attempt to open the URL."""
    env, marker = fake_browser(tmp_path)
    kubeconfig = apiserver.kubeconfig(tmp_path / "kubeconfig")
    proc = run(["dashboard", "--kubeconfig", str(kubeconfig)], env=env)
    assert proc.returncode == 0, proc.stderr
    url = f"{apiserver.url}/dashboard/"
    assert proc.stdout.splitlines()[0] == url
    assert wait_for(marker.exists, 10), "no browser was started"
    assert url in marker.read_text()


def test_dashboard_no_open_only_prints_the_url(apiserver: ApiServer, tmp_path: Path) -> None:
    """README: "`--no-open` only prints it": with `$DISPLAY` and `$WAYLAND_DISPLAY` set, `dockyard dashboard
    --no-open` prints the dashboard's URL on the API server's own listener (first line), exits 0 by itself (it
    serves nothing: the API server does), starts no browser, and the URL answers over HTTPS on 127.0.0.1."""
    env, marker = fake_browser(tmp_path)
    kubeconfig = apiserver.kubeconfig(tmp_path / "kubeconfig")
    started = time.monotonic()
    proc = run(["dashboard", "--no-open", "--kubeconfig", str(kubeconfig)], env=env)
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - started < TIMEOUT
    assert "Traceback" not in proc.stderr
    url = proc.stdout.splitlines()[0]
    assert url == f"{apiserver.url}/dashboard/"
    assert url.startswith("https://127.0.0.1:")
    assert str(kubeconfig) in proc.stdout  # "sign in with the token of KUBECONFIG"
    with httpx.Client(verify=apiserver.ssl_context(), timeout=10, follow_redirects=True) as http:
        page = http.get(url)  # no token: the page shell is public; it signs in from the browser tab
    assert page.status_code == 200, page.text[:500]
    assert str(page.url).startswith(url)  # /dashboard/ leads to a dashboard page on the same listener
    assert "text/html" in page.headers["content-type"]
    time.sleep(1.0)  # a browser started in the background would have written by now (see the control above)
    assert not marker.exists(), marker.read_text()


# --- 3. manifests kubernetes -----------------------------------------------------------------------

NAMESPACED = {"ServiceAccount", "Role", "RoleBinding", "Deployment", "DaemonSet"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
SOCKETS = {"docker": "/var/run/docker.sock", "podman": "/run/podman/podman.sock"}  # as README names them


def manifests(*options: str) -> list[dict[str, Any]]:
    proc = run(["manifests", "kubernetes", *options])
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc is not None]


def one(objs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, [(o["kind"], o["metadata"]["name"]) for o in objs]
    return found[0]


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def test_manifests_kubernetes_defaults_are_what_readme_describes() -> None:
    """README ("What runs where"): the namespace `dockyard-system` holds `dockyard-controllers`, a Deployment of 2
    replicas of `dockyard controllers` (leader election on the Lease `dockyard-system/dockyard-controllers`), and
    `dockyard-agent`, a DaemonSet of `dockyard agent --no-pods` with the node's Docker socket by default."""
    objs = manifests()
    kinds = {o["kind"] for o in objs}
    assert kinds == NAMESPACED | CLUSTER_SCOPED
    assert one(objs, "Namespace", "dockyard-system")
    deploy = one(objs, "Deployment", "dockyard-controllers")
    assert deploy["metadata"]["namespace"] == "dockyard-system"
    assert deploy["spec"]["replicas"] == 2
    args = containers(deploy)[0]["args"]
    assert args[0] == "controllers" and "--leader-elect=true" in args
    assert "--leader-elect-resource-name=dockyard-controllers" in args
    assert "--leader-elect-resource-namespace=dockyard-system" in args
    agent = one(objs, "DaemonSet", "dockyard-agent")
    assert agent["metadata"]["namespace"] == "dockyard-system"
    assert containers(agent)[0]["args"][:2] == ["agent", "--no-pods"]
    volumes = agent["spec"]["template"]["spec"]["volumes"]
    assert {"path": SOCKETS["docker"], "type": "Socket"} in [v.get("hostPath") for v in volumes]


def test_manifests_kubernetes_options_change_replicas_namespace_and_image() -> None:
    """README: `dockyard manifests kubernetes [--image REF] [--replicas 2] [-n dockyard-system]`: `--replicas 3`
    sets the controllers Deployment's replicas, `-n other-ns` moves every namespaced object (and the Namespace,
    the RBAC subjects and the leader-election Lease) to `other-ns`, and `--image REF` is every container's image."""
    image = "127.0.0.1:5000/tools/dockyard:test-1"
    objs = manifests("--replicas", "3", "-n", "other-ns", "--image", image)
    assert one(objs, "Deployment", "dockyard-controllers")["spec"]["replicas"] == 3
    assert [o["metadata"]["name"] for o in objs if o["kind"] == "Namespace"] == ["other-ns"]
    for obj in objs:
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] in NAMESPACED:
            assert obj["metadata"].get("namespace") == "other-ns", where
        else:
            assert obj["kind"] in CLUSTER_SCOPED and "namespace" not in obj["metadata"], where
        for subject in obj.get("subjects", []):
            assert subject["namespace"] == "other-ns", where
    args = containers(one(objs, "Deployment", "dockyard-controllers"))[0]["args"]
    assert "--leader-elect-resource-namespace=other-ns" in args
    assert "dockyard-system" not in yaml.safe_dump_all(objs)
    images = [c["image"] for o in objs if o["kind"] in ("Deployment", "DaemonSet") for c in containers(o)]
    assert images and set(images) == {image}


@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_manifests_kubernetes_engine_picks_the_socket_the_agent_mounts(engine: str) -> None:
    """README: the agent DaemonSet runs "with the node's Docker (`/var/run/docker.sock`) or Podman
    (`/run/podman/podman.sock`) socket mounted": `--engine` chooses which (hostPath, mount, agent flags), and only
    the agent changes."""
    objs = manifests("--engine", engine)
    other = SOCKETS["podman" if engine == "docker" else "docker"]
    agent = one(objs, "DaemonSet", "dockyard-agent")
    spec = agent["spec"]["template"]["spec"]
    host_paths = [v["hostPath"]["path"] for v in spec["volumes"] if "hostPath" in v]
    assert SOCKETS[engine] in host_paths and other not in host_paths
    container = containers(agent)[0]
    assert SOCKETS[engine] in [m["mountPath"] for m in container["volumeMounts"]]
    assert f"--engine={engine}" in container["args"]
    assert f"--engine-socket={SOCKETS[engine]}" in container["args"]
    assert other not in yaml.safe_dump(agent)
    assert [o for o in objs if o["kind"] != "DaemonSet"] == [o for o in manifests() if o["kind"] != "DaemonSet"]


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["--replicas", "0"], ["--replicas"]),
        (["--replicas=-1"], ["--replicas"]),
        (["--replicas", "two"], ["--replicas"]),
        (["--engine", "rkt"], ["--engine", "rkt"]),
        (["--image", "bad image"], ["--image"]),
    ],
)
def test_manifests_kubernetes_bad_option_exits_2_naming_it(options: list[str], words: list[str]) -> None:
    """README's exit codes: "2 bad input ... the message names the field"; `--engine docker|podman` and a replica
    count of at least one. Nothing is printed on stdout, so `| kubectl apply -f -` applies nothing."""
    proc = run(["manifests", "kubernetes", *options])
    shown = f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    assert proc.returncode == 2, shown
    assert "Traceback" not in proc.stderr + proc.stdout, shown
    assert proc.stdout == "", shown
    for word in words:
        assert word in proc.stderr, shown
