"""The CLI's answers to bad input and odd servers, found by an audit run as a new user (each failed before its fix):
one ``error:`` line naming what to fix, the exit code README gives (2: fix the input, 3: the server), no traceback,
and no object left behind by a command that refused its own arguments. Real subprocesses against the real API
server (the ``apiserver`` fixture) or a plain HTTP server on 127.0.0.1 that is not a Kubernetes API server."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dockyard.apiserver import tls

from .conftest import ApiServer
from .test_readme_cli_promises import assert_clean_error, run

PUSHES = "/apis/dockyard.dev/v1alpha1/namespaces/default/pushes"


@pytest.fixture
def kubeconfig(apiserver: ApiServer, tmp_path: Path) -> Path:
    return apiserver.kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def not_kubernetes(tmp_path: Path) -> Iterator[str]:
    """A plain HTTP file server on 127.0.0.1 (what a kubeconfig pointed at the wrong port may reach)."""
    (tmp_path / "index.html").write_text("<html><body>" + "hello<br>\n" * 12 + "</body></html>")
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _count(api: httpx.Client, path: str) -> int:
    return len(api.get(path).json()["items"])


def test_a_bad_output_format_is_refused_before_anything_is_created(apiserver: ApiServer, kubeconfig: Path) -> None:
    with apiserver.client() as api:
        before = _count(api, PUSHES)
        proc = run(["commit", "web", "127.0.0.1:5000/x:1", "-o", "xml", "--kubeconfig", str(kubeconfig)])
        assert proc.returncode == 2 and "xml" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        proc = run(["start-build", "nothere", "-o", "xml", "--kubeconfig", str(kubeconfig)])
        assert proc.returncode == 2 and "xml" in proc.stderr, proc.stderr
        assert _count(api, PUSHES) == before


def test_commit_of_a_pod_or_container_that_is_not_there_is_refused_before_a_push(
    apiserver: ApiServer, kubeconfig: Path
) -> None:
    with apiserver.client() as api:
        before = _count(api, PUSHES)
        assert_clean_error(
            run(["commit", "nopod", "127.0.0.1:5000/x:1", "--kubeconfig", str(kubeconfig)]), 2, "nopod", "not found"
        )
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "has-web"},
            "spec": {"containers": [{"name": "web", "image": "127.0.0.1:5000/x:1"}]},
        }
        assert api.post("/api/v1/namespaces/default/pods", json=pod).status_code == 201
        assert_clean_error(
            run(["commit", "has-web/nosuch", "127.0.0.1:5000/x:1", "--kubeconfig", str(kubeconfig)]), 2, "nosuch", "web"
        )
        assert_clean_error(run(["commit", "a/b/c", "127.0.0.1:5000/x:1", "--kubeconfig", str(kubeconfig)]), 2, "POD")
        assert _count(api, PUSHES) == before


def test_commit_timeout_must_be_positive(kubeconfig: Path) -> None:
    proc = run(["commit", "p", "127.0.0.1:5000/x:1", "--wait", "--timeout", "0", "--kubeconfig", str(kubeconfig)])
    assert proc.returncode == 2 and "--timeout" in proc.stderr, proc.stderr


def test_a_server_that_is_not_kubernetes_is_named_not_a_traceback(not_kubernetes: str, tmp_path: Path) -> None:
    kc = tmp_path / "wrong.kc"
    kc.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters:\n- name: c\n  cluster:\n    server: {not_kubernetes}\n"
        "users:\n- name: u\n  user: {}\n"
        "contexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n"
    )
    for args in (["cancel-build", "hello-1"], ["logs", "build/hello-1"], ["start-build", "hello"]):
        proc = run([*args, "--kubeconfig", str(kc)])
        assert proc.returncode in (2, 3), (args, proc.stderr)
        assert "Traceback" not in proc.stderr and "<html>" not in proc.stderr, (args, proc.stderr)
        assert "API server" in proc.stderr and len(proc.stderr.splitlines()) == 1, (args, proc.stderr)


def test_local_paths_that_cannot_be_used_are_named(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert_clean_error(run(["manifests", "kustomize", str(afile)]), 2, str(afile))
    assert_clean_error(run(["manifests", "kustomize", str(afile / "sub")]), 2, str(afile))
    binary = tmp_path / "binary.kc"
    binary.write_bytes(b"\xff\xfe\x00kubeconfig")
    assert_clean_error(run(["cancel-build", "x", "--kubeconfig", str(binary)]), 2, "UTF-8")


@pytest.mark.parametrize(
    "args",
    [
        ["up", "--port", "99999"],
        ["up", "--port", "-5"],
        ["up", "--registry-port", "70000"],
        ["up", "--max-builds", "0"],
        ["up", "--max-log-bytes", "-5"],
        ["up", "--max-long-running", "0"],
        ["agent", "--max-builds", "-3"],
    ],
)
def test_out_of_range_numbers_are_refused_naming_the_flag(args: list[str]) -> None:
    proc = run(args)
    assert proc.returncode == 2 and args[1] in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_a_binary_build_without_its_context_is_refused_before_a_build(apiserver: ApiServer, kubeconfig: Path) -> None:
    config = {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "BuildConfig",
        "metadata": {"name": "bin"},
        "spec": {
            "source": {"type": "Binary"},
            "strategy": {"type": "Docker"},
            "output": {"to": {"kind": "DockerImage", "name": "127.0.0.1:5000/bin:latest"}},
        },
    }
    builds = "/apis/dockyard.dev/v1alpha1/namespaces/default/builds"
    with apiserver.client() as api:
        assert api.post("/apis/dockyard.dev/v1alpha1/namespaces/default/buildconfigs", json=config).status_code == 201
        before = _count(api, builds)
        assert_clean_error(run(["start-build", "bin", "--kubeconfig", str(kubeconfig)]), 2, "--from-dir")
        assert _count(api, builds) == before


def test_kubeconfig_mistakes_are_exit_2_naming_the_entry(apiserver: ApiServer, tmp_path: Path) -> None:
    assert_clean_error(run(["cancel-build", "x", "--kubeconfig", str(tmp_path / "nonexistent")]), 2, "nonexistent")
    kc = apiserver.kubeconfig(tmp_path / "badca.kc")
    kc.write_text(kc.read_text().replace(str(apiserver.ca), "/nonexistent/ca.crt"))
    assert_clean_error(run(["cancel-build", "x", "--kubeconfig", str(kc)]), 2, "clusters[", "/nonexistent/ca.crt")


def test_manifests_namespace_must_be_a_namespace_name() -> None:
    assert_clean_error(run(["manifests", "kubernetes", "-n", "Bad_NS"]), 2, "--namespace", "Bad_NS", "DNS-1123")
    assert_clean_error(run(["manifests", "kustomize", "/nonexistent-dir", "-n", "x" * 64]), 2, "--namespace")


def test_a_ca_that_did_not_sign_the_server_is_named_not_taken_for_a_server_down(
    apiserver: ApiServer, tmp_path: Path
) -> None:
    other = tls.ensure_pki(tmp_path / "other-pki").ca_cert  # a CA of its own, which signed nothing of the server
    kc = apiserver.kubeconfig(tmp_path / "wrongca.kc")
    kc.write_text(kc.read_text().replace(str(apiserver.ca), str(other)))
    proc = run(["cancel-build", "x", "--kubeconfig", str(kc)])
    assert_clean_error(proc, 2, "certificate is not trusted", "certificate-authority")
    assert "running?" not in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["start-build", ""], ["BuildConfig name may not be empty"]),
        (["start-build", "a/../b"], ["'a/../b'", "BuildConfig name"]),
        (["cancel-build", "build/"], ["Build name may not be empty"]),
        (["logs", "build/x/../../y"], ["Build name"]),
        (["commit", "Web_1", "127.0.0.1:5000/x:1"], ["'Web_1'", "Pod name"]),
    ],
)
def test_names_that_cannot_name_an_object_are_refused_before_a_request(
    kubeconfig: Path, args: list[str], words: list[str]
) -> None:
    assert_clean_error(run([*args, "--kubeconfig", str(kubeconfig)]), 2, *words)


def test_a_namespace_flag_must_be_a_namespace_name(kubeconfig: Path) -> None:
    proc = run(["cancel-build", "x", "-n", "Bad_NS", "--kubeconfig", str(kubeconfig)])
    assert proc.returncode == 2 and "Bad_NS" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("command", ["up", "agent"])
def test_an_unknown_engine_is_exit_2_before_anything_starts(command: str) -> None:
    assert_clean_error(run([command, "--engine", "bogus"]), 2, "--engine 'bogus'", "podman")


def test_dashboard_checks_the_server_before_printing_its_url(not_kubernetes: str, tmp_path: Path) -> None:
    """A URL printed for a server that is down or serves no dashboard is a URL that does not work: exit 3."""
    for server, words in ((not_kubernetes, ["HTTP 404", "no dockyard dashboard"]), ("https://127.0.0.1:9", [])):
        kc = tmp_path / "dash.kc"
        kc.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
            f"clusters:\n- name: c\n  cluster:\n    server: {server}\n"
            "users:\n- name: u\n  user: {}\n"
            "contexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n"
        )
        assert_clean_error(run(["dashboard", "--no-open", "--kubeconfig", str(kc)]), 3, *words)
