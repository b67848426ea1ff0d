"""kubectl 1.32 against the API server: apply (create and re-apply), get, wait, watch, delete."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
pytestmark = pytest.mark.skipif(not os.path.exists(KUBECTL), reason="kubectl not installed")

POD = """
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  containers:
  - name: c
    image: busybox
    env: [{name: A, value: "1"}]
"""
DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: c, image: busybox}]
"""
BUILDCONFIG = """
apiVersion: dockyard.dev/v1alpha1
kind: BuildConfig
metadata: {name: hello}
spec:
  source: {type: Dockerfile, dockerfile: "FROM scratch"}
  strategy: {type: Docker}
  output: {to: {kind: DockerImage, name: "127.0.0.1:5000/hello:latest"}}
"""


class Kubectl:
    def __init__(self, server: Any, tmp: Path) -> None:
        self.env = dict(os.environ, KUBECONFIG=str(server.kubeconfig(tmp / "kubeconfig")), HOME=str(tmp))
        self.cache = tmp / "kube-cache"
        self.tmp = tmp

    def run(self, *args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [KUBECTL, f"--cache-dir={self.cache}", *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check:
            assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stdout}\n{proc.stderr}"
        return proc

    def apply(self, manifest: str, name: str) -> str:
        path = self.tmp / f"{name}.yaml"
        path.write_text(manifest)
        return self.run("apply", "-f", str(path)).stdout.strip()


@pytest.fixture
def kubectl(apiserver: Any, tmp_path: Path) -> Kubectl:
    return Kubectl(apiserver, tmp_path)


def test_apply_get_and_delete(kubectl: Kubectl) -> None:
    assert kubectl.apply(POD, "pod") == "pod/web created"
    assert kubectl.apply(DEPLOYMENT, "deploy") == "deployment.apps/web created"
    assert kubectl.apply(BUILDCONFIG, "bc") == "buildconfig.dockyard.dev/hello created"
    assert kubectl.apply(BUILDCONFIG, "bc") == "buildconfig.dockyard.dev/hello unchanged"

    assert kubectl.apply(POD.replace('value: "1"', 'value: "2"'), "pod") == "pod/web configured"
    assert kubectl.apply(DEPLOYMENT.replace("replicas: 1", "replicas: 3"), "deploy") == "deployment.apps/web configured"
    assert (
        kubectl.apply(BUILDCONFIG.replace("hello:latest", "hello:v2"), "bc")
        == "buildconfig.dockyard.dev/hello configured"
    )

    pod = yaml.safe_load(kubectl.run("get", "pod", "web", "-o", "yaml").stdout)
    assert pod["spec"]["containers"][0]["env"] == [{"name": "A", "value": "2"}]
    assert pod["metadata"]["generation"] == 2
    deploy = yaml.safe_load(kubectl.run("get", "deployment", "web", "-o", "yaml").stdout)
    assert deploy["spec"]["replicas"] == 3
    bc = yaml.safe_load(kubectl.run("get", "bc", "hello", "-o", "yaml").stdout)
    assert bc["spec"]["output"]["to"]["name"] == "127.0.0.1:5000/hello:v2"

    table = kubectl.run("get", "buildconfigs").stdout
    assert table.split()[0] == "NAME" and "hello" in table
    assert "web" in kubectl.run("get", "pods").stdout
    assert "buildconfig.dockyard.dev/hello" in kubectl.run("get", "all").stdout
    assert "hello" in kubectl.run("get", "buildconfigs", "-A", "-o", "name").stdout

    assert "deleted" in kubectl.run("delete", "pod", "web", "--wait=false").stdout
    assert "deleted" in kubectl.run("delete", "-f", str(kubectl.tmp / "bc.yaml")).stdout
    missing = kubectl.run("get", "pod", "web", check=False)
    assert missing.returncode != 0 and "NotFound" in missing.stderr


def test_get_build_yaml_and_wait_for_phase(apiserver: Any, kubectl: Kubectl) -> None:
    kubectl.apply(BUILDCONFIG, "bc")
    with apiserver.client() as api:
        assert (
            api.post("/apis/dockyard.dev/v1alpha1/namespaces/default/buildconfigs/hello/instantiate").status_code == 201
        )
    build = yaml.safe_load(kubectl.run("get", "build", "hello-1", "-o", "yaml").stdout)
    assert build["status"]["phase"] == "New" and build["kind"] == "Build"

    def complete_later() -> None:
        time.sleep(1.0)
        with apiserver.client() as api:
            api.patch(
                "/apis/dockyard.dev/v1alpha1/namespaces/default/builds/hello-1/status",
                json={"status": {"phase": "Complete"}},
                headers={"Content-Type": "application/merge-patch+json"},
            )

    t = threading.Thread(target=complete_later)
    t.start()
    started = time.monotonic()
    out = kubectl.run("wait", "--for=jsonpath={.status.phase}=Complete", "build/hello-1", "--timeout=20s").stdout
    t.join()
    assert "condition met" in out
    assert time.monotonic() - started < 10
    builds = kubectl.run("get", "builds").stdout
    assert "Complete" in builds


def test_get_watch_sees_a_change(apiserver: Any, kubectl: Kubectl) -> None:
    kubectl.apply(POD, "pod")
    proc = subprocess.Popen(
        [KUBECTL, f"--cache-dir={kubectl.cache}", "get", "pods", "-w", "--request-timeout=8s"],
        env=kubectl.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.5)
        kubectl.run("label", "pod", "web", "changed=yes")
        time.sleep(1.0)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines[0].split()[0] == "NAME"
    assert sum(1 for line in lines if line.startswith("web")) >= 2, out + err


def test_typed_create_commands_send_protobuf(kubectl: Kubectl) -> None:
    assert kubectl.run("create", "namespace", "team").stdout.strip() == "namespace/team created"
    out = kubectl.run(
        "create",
        "secret",
        "docker-registry",
        "regcred",
        "-n",
        "team",
        "--docker-server=127.0.0.1:5000",
        "--docker-username=u",
        "--docker-password=p",
    ).stdout
    assert out.strip() == "secret/regcred created"
    secret = yaml.safe_load(kubectl.run("get", "secret", "regcred", "-n", "team", "-o", "yaml").stdout)
    assert secret["type"] == "kubernetes.io/dockerconfigjson" and ".dockerconfigjson" in secret["data"]
    assert "generateName" not in secret["metadata"]
    assert "deleted" in kubectl.run("delete", "namespace", "team").stdout
    assert kubectl.run("get", "secret", "regcred", "-n", "team", check=False).returncode != 0
