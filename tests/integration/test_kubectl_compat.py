"""kubectl compatibility suite: a scripted table of kubectl 1.32 commands against the real server over TLS.

One test per command of the issue's list: apply (create and re-apply),
create, patch of each type, get -o json|yaml|wide|jsonpath|custom-columns,
describe, label, annotate, delete --wait, wait, get -w, explain,
api-resources, api-versions, rollout status|history|undo. Each case runs in
its own namespace against one module-wide server, with the embedded
Deployment and ReplicaSet controllers running in-process and a stand-in
kubelet that marks pods Ready (no engine needed).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from dockyard.apiserver import app as app_module
from dockyard.apiserver import serve, tls
from dockyard.client import connection, events
from dockyard.controllers.deployment import DeploymentController, ReplicaSetController
from dockyard.storage import sqlite

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
pytestmark = pytest.mark.skipif(not os.path.exists(KUBECTL), reason="kubectl not installed")
TOKEN = "compat-admin-token-0123456789"

MANIFESTS = {
    "pod": """
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  containers:
  - name: c
    image: busybox
    env: [{name: A, value: "1"}]
    ports: [{containerPort: 8080}]
""",
    "deploy": """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, annotations: {kubernetes.io/change-cause: first}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: c, image: "busybox:1", env: [{name: A, value: "1"}]}]
""",
    "bc": """
apiVersion: dockyard.dev/v1alpha1
kind: BuildConfig
metadata: {name: hello}
spec:
  source: {type: Dockerfile, dockerfile: "FROM scratch"}
  strategy: {type: Docker}
  output: {to: {kind: DockerImage, name: "127.0.0.1:5000/hello:latest"}}
""",
    "image": """
apiVersion: dockyard.dev/v1alpha1
kind: Image
metadata: {name: app}
spec: {repository: "127.0.0.1:5000/app", tag: v1, interval: 5m}
""",
    "imagedeploy": """
apiVersion: dockyard.dev/v1alpha1
kind: ImageDeploy
metadata: {name: app}
spec:
  imageRef: {name: app}
  deployment:
    selector: {matchLabels: {app: app}}
    template:
      metadata: {labels: {app: app}}
      spec: {containers: [{name: app, image: placeholder}]}
""",
    "push": """
apiVersion: dockyard.dev/v1alpha1
kind: Push
metadata: {name: snap}
spec: {podName: web, image: "127.0.0.1:5000/snap:v1"}
""",
    "secret": """
apiVersion: v1
kind: Secret
metadata: {name: creds}
type: Opaque
stringData: {password: hunter2}
""",
}


@dataclass
class Cluster:
    url: str
    ca: Path
    store: sqlite.Store
    root: Path
    stop: threading.Event = field(default_factory=threading.Event)

    def http(self) -> httpx.Client:
        import ssl

        return httpx.Client(
            base_url=self.url,
            verify=ssl.create_default_context(cafile=str(self.ca)),
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )


def _kubelet(cluster: Cluster) -> None:
    """Stand-in kubelet: marks every pod Running and Ready (bounded by the stop event)."""
    ready = {
        "phase": "Running",
        "podIP": "127.0.0.1",
        "conditions": [{"type": "Ready", "status": "True"}, {"type": "ContainersReady", "status": "True"}],
    }
    with cluster.http() as api:
        while not cluster.stop.wait(0.2):
            try:
                for pod in api.get("/api/v1/pods").json().get("items", []):
                    if (pod.get("status") or {}).get("phase") == "Running" or pod["metadata"].get("deletionTimestamp"):
                        continue
                    statuses = [
                        {
                            "name": c["name"],
                            "ready": True,
                            "restartCount": 0,
                            "image": c.get("image", ""),
                            "imageID": "",  # always written by the kubelet (required in lightkube's model)
                            "state": {"running": {}},
                        }
                        for c in pod["spec"]["containers"]
                    ]
                    api.patch(
                        f"/api/v1/namespaces/{pod['metadata']['namespace']}/pods/{pod['metadata']['name']}/status",
                        json={"status": {**ready, "containerStatuses": statuses}},
                        headers={"Content-Type": "application/merge-patch+json"},
                    )
            except (httpx.HTTPError, ValueError, KeyError):
                continue


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("compat")
    cert, key = root / "cert.pem", root / "key.pem"
    tls.write_self_signed(cert, key)
    store = sqlite.Store(root / "dockyard.db")
    app = app_module.create_app(store=store, tokens={TOKEN: "admin"})
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = serve.Server(serve.config(app, cert=cert, key=key))
    thread = serve.start_thread(server, sockets=[sock])
    cluster = Cluster(url=f"https://127.0.0.1:{sock.getsockname()[1]}", ca=cert, store=store, root=root)
    admin = connection.connect(str(write_kubeconfig(cluster, root / "admin-kubeconfig", "default")))
    controllers = [DeploymentController(admin), ReplicaSetController(admin)]
    for c in controllers:
        c.start(cluster.stop)
    threading.Thread(target=_kubelet, args=(cluster,), daemon=True).start()
    deadline = time.monotonic() + 10
    while not all(c.synced() for c in controllers) and time.monotonic() < deadline:
        time.sleep(0.05)
    yield cluster
    cluster.stop.set()
    serve.stop_thread(server, thread)
    store.close()


def write_kubeconfig(cluster: Cluster, path: Path, namespace: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "c",
                "clusters": [
                    {"name": "c", "cluster": {"server": cluster.url, "certificate-authority": str(cluster.ca)}}
                ],
                "users": [{"name": "admin", "user": {"token": TOKEN}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "admin", "namespace": namespace}}],
            }
        )
    )
    return path


class Kubectl:
    """kubectl with its own kubeconfig (namespace ``ns``) and discovery cache."""

    def __init__(self, cluster: Cluster, ns: str, tmp: Path) -> None:
        self.cluster, self.ns, self.tmp = cluster, ns, tmp
        self.env = dict(os.environ, KUBECONFIG=str(write_kubeconfig(cluster, tmp / "kubeconfig", ns)), HOME=str(tmp))

    def run(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [KUBECTL, f"--cache-dir={self.tmp / 'cache'}", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check:
            assert proc.returncode == 0, f"kubectl {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
        return proc

    def apply(self, name: str, text: str | None = None) -> str:
        path = self.tmp / f"{name}.yaml"
        path.write_text(text if text is not None else MANIFESTS[name])
        return self.run("apply", "-f", str(path)).stdout.strip()

    def json(self, *args: str) -> Any:
        return json.loads(self.run("get", *args, "-o", "json").stdout)

    def until(self, predicate: Callable[[], bool], what: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}")

    def rolled_out(self, revision: int) -> None:
        def done() -> bool:
            d = self.json("deployment", "web")
            s = d.get("status") or {}
            return d["metadata"].get("annotations", {}).get("deployment.kubernetes.io/revision") == str(
                revision
            ) and s.get("updatedReplicas") == d["spec"]["replicas"] == s.get("availableReplicas")

        self.until(done, f"deployment revision {revision} rolled out")


# ------------------------------------------------------------------ the cases


def apply_creates_every_kind(k: Kubectl) -> None:
    for name, kind in [
        ("pod", "pod/web"),
        ("deploy", "deployment.apps/web"),
        ("bc", "buildconfig.dockyard.dev/hello"),
        ("image", "image.dockyard.dev/app"),
        ("imagedeploy", "imagedeploy.dockyard.dev/app"),
        ("push", "push.dockyard.dev/snap"),
        ("secret", "secret/creds"),
    ]:
        assert k.apply(name) == f"{kind} created"
    assert k.json("secret", "creds")["data"] == {"password": "aHVudGVyMg=="}


def apply_reapply_unchanged(k: Kubectl) -> None:
    for name, kind in [("pod", "pod/web"), ("deploy", "deployment.apps/web"), ("bc", "buildconfig.dockyard.dev/hello")]:
        k.apply(name)
        assert k.apply(name) == f"{kind} unchanged"


def apply_reapply_pod_strategic(k: Kubectl) -> None:
    k.apply("pod")
    changed = (
        MANIFESTS["pod"]
        .replace('value: "1"', 'value: "2"}, {name: B, value: "3"')
        .replace("ports: [{containerPort: 8080}]", "ports: [{containerPort: 8080}, {containerPort: 9090}]")
    )
    assert k.apply("pod", changed) == "pod/web configured"
    c = k.json("pod", "web")["spec"]["containers"][0]
    assert c["env"] == [{"name": "A", "value": "2"}, {"name": "B", "value": "3"}]
    assert [p["containerPort"] for p in c["ports"]] == [8080, 9090]
    dropped = MANIFESTS["pod"].replace("    ports: [{containerPort: 8080}]\n", "")
    assert k.apply("pod", dropped) == "pod/web configured"
    assert "ports" not in k.json("pod", "web")["spec"]["containers"][0]


def apply_reapply_deployment_strategic(k: Kubectl) -> None:
    k.apply("deploy")
    changed = (
        MANIFESTS["deploy"]
        .replace("replicas: 2", "replicas: 3")
        .replace("containers: [{name: c,", "containers: [{name: side, image: pause}, {name: c,")
    )
    assert k.apply("deploy", changed) == "deployment.apps/web configured"
    spec = k.json("deployment", "web")["spec"]
    assert spec["replicas"] == 3
    assert [c["name"] for c in spec["template"]["spec"]["containers"]] == ["side", "c"]


def apply_reapply_custom_kind_merge(k: Kubectl) -> None:
    k.apply("bc")
    assert (
        k.apply("bc", MANIFESTS["bc"].replace("hello:latest", "hello:v2"))
        == "buildconfig.dockyard.dev/hello configured"
    )
    assert k.json("bc", "hello")["spec"]["output"]["to"]["name"] == "127.0.0.1:5000/hello:v2"


def create_from_file_and_typed(k: Kubectl) -> None:
    path = k.tmp / "bc.yaml"
    path.write_text(MANIFESTS["bc"])
    assert k.run("create", "-f", str(path)).stdout.strip() == "buildconfig.dockyard.dev/hello created"
    again = k.run("create", "-f", str(path), check=False)
    assert again.returncode != 0 and "AlreadyExists" in again.stderr
    assert k.run("create", "secret", "generic", "s", "--from-literal=a=b").stdout.strip() == "secret/s created"


def create_service_typed(k: Kubectl) -> None:
    # kubectl's typed ``create service`` sends protobuf only (no JSON fallback).
    for cmd, type_ in [("clusterip", "ClusterIP"), ("nodeport", "NodePort"), ("loadbalancer", "LoadBalancer")]:
        out = k.run("create", "service", cmd, f"s-{cmd}", "--tcp=80:8080", "--tcp=443:https").stdout
        assert out.strip() == f"service/s-{cmd} created"
        spec = k.json("service", f"s-{cmd}")["spec"]
        assert spec["type"] == type_ and spec["selector"] == {"app": f"s-{cmd}"}
        ports = [{key: p[key] for key in ("name", "port", "protocol", "targetPort")} for p in spec["ports"]]
        assert ports == [
            {"name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080},
            {"name": "443-https", "port": 443, "protocol": "TCP", "targetPort": "https"},
        ]
    dry = k.run(
        "create", "service", "nodeport", "dry", "--tcp=80", "--node-port=30080", "--dry-run=server", "-o", "yaml"
    ).stdout
    svc = yaml.safe_load(dry)
    assert svc["kind"] == "Service" and svc["spec"]["type"] == "NodePort"
    assert svc["spec"]["ports"][0]["nodePort"] == 30080 and svc["spec"]["ports"][0]["targetPort"] == 80
    assert k.run("get", "service", "dry", check=False).returncode != 0


def create_deployment_typed(k: Kubectl) -> None:
    # protobuf too; --replicas=0 must stay 0 (a *int32), not default to 1.
    out = k.run("create", "deployment", "web", "--image=busybox:1", "--replicas=2", "--port=8080", "--", "sleep", "1d")
    assert out.stdout.strip() == "deployment.apps/web created"
    container = k.json("deployment", "web")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "busybox:1" and container["command"] == ["sleep", "1d"]
    assert [p["containerPort"] for p in container["ports"]] == [8080]
    k.rolled_out(1)
    k.run("create", "deployment", "idle", "--image=busybox", "--replicas=0")
    assert k.json("deployment", "idle")["spec"]["replicas"] == 0
    for args in (["job", "j", "--image=busybox"], ["cronjob", "cj", "--image=busybox", "--schedule=* * * * *"]):
        refused = k.run("create", *args, check=False)  # batch/v1 is not served
        assert refused.returncode != 0 and "the server could not find the requested resource" in refused.stderr


def patch_merge(k: Kubectl) -> None:
    k.apply("bc")
    out = k.run("patch", "bc", "hello", "--type=merge", "-p", '{"spec":{"runPolicy":"Parallel"}}').stdout
    assert out.strip() == "buildconfig.dockyard.dev/hello patched"
    assert k.json("bc", "hello")["spec"]["runPolicy"] == "Parallel"
    assert (
        k.run("patch", "bc", "hello", "--type=merge", "-p", '{"spec":{"runPolicy":"Parallel"}}').stdout.strip()
        == "buildconfig.dockyard.dev/hello patched (no change)"
    )


def patch_json(k: Kubectl) -> None:
    k.apply("pod")
    k.run(
        "patch",
        "pod",
        "web",
        "--type=json",
        "-p",
        '[{"op":"add","path":"/metadata/labels/tier","value":"front"},'
        '{"op":"replace","path":"/spec/containers/0/image","value":"busybox:2"}]',
    )
    pod = k.json("pod", "web")
    assert pod["metadata"]["labels"]["tier"] == "front" and pod["spec"]["containers"][0]["image"] == "busybox:2"
    failed = k.run(
        "patch", "pod", "web", "--type=json", "-p", '[{"op":"test","path":"/spec/nodeName","value":"x"}]', check=False
    )
    assert failed.returncode != 0


def patch_strategic(k: Kubectl) -> None:
    k.apply("deploy")
    k.run(
        "patch",
        "deployment",
        "web",
        "-p",
        '{"spec":{"template":{"spec":{"containers":[{"name":"c","env":[{"name":"B","value":"2"}]}]}}}}',
    )
    env = k.json("deployment", "web")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    k.apply("bc")
    refused = k.run("patch", "bc", "hello", "-p", '{"spec":{"runPolicy":"Parallel"}}', check=False)
    assert refused.returncode != 0 and "application/merge-patch+json" in refused.stderr


def get_json(k: Kubectl) -> None:
    k.apply("bc")
    doc = k.json("buildconfigs")
    assert doc["kind"] == "List" and doc["items"][0]["metadata"]["name"] == "hello"
    assert doc["items"][0]["spec"]["strategy"]["dockerStrategy"] == {"buildArgs": [], "noCache": False}


def get_yaml(k: Kubectl) -> None:
    k.apply("pod")
    pod = yaml.safe_load(k.run("get", "pod", "web", "-o", "yaml").stdout)
    assert pod["kind"] == "Pod" and pod["metadata"]["namespace"] == k.ns and pod["metadata"]["uid"]


def get_wide(k: Kubectl) -> None:
    k.apply("pod")
    k.until(lambda: k.json("pod", "web").get("status", {}).get("phase") == "Running", "the pod Running")
    lines = k.run("get", "pods", "-o", "wide").stdout.splitlines()
    assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    assert lines[1].split()[:3] == ["web", "1/1", "Running"] and "127.0.0.1" in lines[1]
    default = k.run("get", "pods").stdout.splitlines()[0].split()
    assert default == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]


def get_jsonpath(k: Kubectl) -> None:
    k.apply("bc")
    out = k.run("get", "bc", "hello", "-o", "jsonpath={.spec.output.to.name} {.spec.runPolicy}").stdout
    assert out == "127.0.0.1:5000/hello:latest Serial"


def get_custom_columns(k: Kubectl) -> None:
    k.apply("image")
    out = k.run("get", "images", "-o", "custom-columns=NAME:.metadata.name,REPO:.spec.repository").stdout
    assert out.split() == ["NAME", "REPO", "app", "127.0.0.1:5000/app"]


def get_dockyard_columns(k: Kubectl) -> None:
    k.apply("bc")
    with k.cluster.http() as api:
        api.post(f"/apis/dockyard.dev/v1alpha1/namespaces/{k.ns}/buildconfigs/hello/instantiate")
        api.patch(
            f"/apis/dockyard.dev/v1alpha1/namespaces/{k.ns}/builds/hello-1/status",
            json={
                "status": {
                    "phase": "Complete",
                    "startTimestamp": "2024-01-01T00:00:00Z",
                    "duration": 42_000_000_000,
                    "output": {"to": {"imageDigest": "sha256:" + "ab" * 32}},
                }
            },
            headers={"Content-Type": "application/merge-patch+json"},
        )
    lines = k.run("get", "builds").stdout.splitlines()
    assert lines[0].split() == ["NAME", "TYPE", "FROM", "STATUS", "STARTED", "DURATION", "DIGEST", "AGE"]
    assert lines[1].split()[:4] == ["hello-1", "Docker", "Dockerfile", "Complete"]
    assert "42s" in lines[1] and "sha256:abababababab" in lines[1]
    assert k.run("get", "bc").stdout.splitlines()[0].split() == ["NAME", "TYPE", "FROM", "LATEST"]


def describe_with_events(k: Kubectl) -> None:
    k.apply("bc")
    with k.cluster.http() as api:
        build = api.post(f"/apis/dockyard.dev/v1alpha1/namespaces/{k.ns}/buildconfigs/hello/instantiate").json()
    admin = connection.connect(k.env["KUBECONFIG"])
    recorder = events.EventRecorder(admin.lightkube(timeout=5), component="build-controller")
    recorder.record(build, events.NORMAL, "BuildStarted", f"Build {k.ns}/hello-1 is now running")
    out = k.run("describe", "build", "hello-1").stdout
    assert "Name:" in out and "hello-1" in out and "Events:" in out
    assert "BuildStarted" in out.split("Events:")[1] and "build-controller" in out.split("Events:")[1]
    k.apply("deploy")
    k.until(lambda: "ScalingReplicaSet" in k.run("describe", "deployment", "web").stdout, "a ScalingReplicaSet event")
    pod_out = k.run("describe", "pods").stdout
    assert "Containers:" in pod_out and "Controlled By:" in pod_out


def label(k: Kubectl) -> None:
    k.apply("pod")
    assert k.run("label", "pod", "web", "tier=front").stdout.strip() == "pod/web labeled"
    refused = k.run("label", "pod", "web", "tier=back", check=False)
    assert refused.returncode != 0 and "--overwrite" in refused.stderr
    k.run("label", "pod", "web", "tier=back", "--overwrite")
    assert k.json("pod", "web")["metadata"]["labels"]["tier"] == "back"
    k.run("label", "pod", "web", "tier-")
    assert "tier" not in k.json("pod", "web")["metadata"]["labels"]
    assert k.run("get", "pods", "-l", "app=web", "-o", "name").stdout.strip() == "pod/web"


def annotate(k: Kubectl) -> None:
    k.apply("bc")
    assert k.run("annotate", "bc", "hello", "team=ci").stdout.strip() == "buildconfig.dockyard.dev/hello annotated"
    assert k.json("bc", "hello")["metadata"]["annotations"]["team"] == "ci"
    k.run("annotate", "bc", "hello", "team-")
    assert "team" not in k.json("bc", "hello")["metadata"].get("annotations", {})


def delete_wait(k: Kubectl) -> None:
    k.apply("deploy")
    k.until(lambda: len(k.json("pods")["items"]) == 2, "two pods")
    out = k.run("delete", "deployment", "web", "--wait=true", "--timeout=30s").stdout
    assert out.strip() == 'deployment.apps "web" deleted'
    assert k.json("replicasets")["items"] == [] and k.json("pods")["items"] == []
    k.apply("pod")
    k.run("delete", "pod", "web", "--cascade=foreground", "--wait=true", "--timeout=30s")
    assert k.run("get", "pod", "web", check=False).returncode != 0


def wait_conditions(k: Kubectl) -> None:
    k.apply("deploy")
    out = k.run("wait", "--for=condition=Available", "deployment/web", "--timeout=30s").stdout
    assert "condition met" in out
    k.apply("bc")
    with k.cluster.http() as api:
        api.post(f"/apis/dockyard.dev/v1alpha1/namespaces/{k.ns}/buildconfigs/hello/instantiate")

        def complete() -> None:
            time.sleep(1)
            api.patch(
                f"/apis/dockyard.dev/v1alpha1/namespaces/{k.ns}/builds/hello-1/status",
                json={"status": {"phase": "Complete"}},
                headers={"Content-Type": "application/merge-patch+json"},
            )

        t = threading.Thread(target=complete)
        t.start()
        out = k.run("wait", "--for=jsonpath={.status.phase}=Complete", "build/hello-1", "--timeout=20s").stdout
        t.join()
    assert "condition met" in out
    k.apply("pod")
    threading.Timer(1.0, lambda: k.run("delete", "pod", "web", "--wait=false")).start()
    assert "condition met" in k.run("wait", "--for=delete", "pod/web", "--timeout=20s").stdout


def get_watch(k: Kubectl) -> None:
    k.apply("pod")
    proc = subprocess.Popen(
        [KUBECTL, f"--cache-dir={k.tmp / 'cache'}", "get", "pods", "-w", "--request-timeout=8s"],
        env=k.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.5)
        k.run("label", "pod", "web", "changed=yes")
        time.sleep(1.0)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines[0].split()[0] == "NAME", out + err
    assert sum(1 for line in lines if line.startswith("web")) >= 2, out + err


def explain(k: Kubectl) -> None:
    out = k.run("explain", "buildconfig.spec.output").stdout
    assert "KIND:       BuildConfig" in out and "FIELD: output <BuildOutput>" in out
    assert "pushSecret\t<LocalObjectReference>" in out and "to\t<ObjectReference> -required-" in out
    pod = k.run("explain", "pod.spec.containers.ports").stdout
    assert "containerPort\t<integer> -required-" in pod
    assert "phase" in k.run("explain", "build.status").stdout
    assert "NamespaceContentRemaining" in k.run("explain", "namespace.status.conditions").stdout


def api_resources(k: Kubectl) -> None:
    out = k.run("api-resources").stdout
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert rows["buildconfigs"][1:] == ["bc", "dockyard.dev/v1alpha1", "true", "BuildConfig"]
    assert rows["deployments"][1:] == ["deploy", "apps/v1", "true", "Deployment"]
    assert "namespaces" in rows and "events" in rows
    names = k.run("api-resources", "--api-group=dockyard.dev", "-o", "name").stdout.split()
    assert sorted(names) == sorted(
        [
            "buildconfigs.dockyard.dev",
            "builds.dockyard.dev",
            "pushes.dockyard.dev",
            "images.dockyard.dev",
            "imagedeploys.dockyard.dev",
        ]
    )


def api_versions(k: Kubectl) -> None:
    assert k.run("api-versions").stdout.split() == [
        "apiextensions.k8s.io/v1",
        "apps/v1",
        "coordination.k8s.io/v1",
        "discovery.k8s.io/v1",
        "dockyard.dev/v1alpha1",
        "v1",
    ]


def rollout_status(k: Kubectl) -> None:
    k.apply("deploy")
    out = k.run("rollout", "status", "deployment/web", "--timeout=30s").stdout
    assert 'deployment "web" successfully rolled out' in out


def rollout_history(k: Kubectl) -> None:
    k.apply("deploy")
    k.rolled_out(1)
    k.apply("deploy", MANIFESTS["deploy"].replace("busybox:1", "busybox:2").replace("first", "second"))
    k.rolled_out(2)
    out = k.run("rollout", "history", "deployment/web").stdout
    rows = [line.split() for line in out.splitlines() if line[:1].isdigit()]
    assert rows == [["1", "first"], ["2", "second"]], out
    detail = k.run("rollout", "history", "deployment/web", "--revision=1").stdout
    assert "busybox:1" in detail


def rollout_undo(k: Kubectl) -> None:
    k.apply("deploy")
    k.rolled_out(1)
    k.apply("deploy", MANIFESTS["deploy"].replace("busybox:1", "busybox:2"))
    k.rolled_out(2)
    assert k.run("rollout", "undo", "deployment/web").stdout.strip() == "deployment.apps/web rolled back"
    k.rolled_out(3)
    image = k.json("deployment", "web")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "busybox:1"
    assert "successfully rolled out" in k.run("rollout", "status", "deployment/web", "--timeout=30s").stdout
    sets = k.json("replicasets")["items"]
    assert len(sets) == 2 and sum(rs["spec"]["replicas"] for rs in sets) == 2


CASES: dict[str, Callable[[Kubectl], None]] = {
    "apply-create": apply_creates_every_kind,
    "apply-unchanged": apply_reapply_unchanged,
    "apply-reapply-pod": apply_reapply_pod_strategic,
    "apply-reapply-deployment": apply_reapply_deployment_strategic,
    "apply-reapply-buildconfig": apply_reapply_custom_kind_merge,
    "create": create_from_file_and_typed,
    "create-service": create_service_typed,
    "create-deployment": create_deployment_typed,
    "patch-merge": patch_merge,
    "patch-json": patch_json,
    "patch-strategic": patch_strategic,
    "get-o-json": get_json,
    "get-o-yaml": get_yaml,
    "get-o-wide": get_wide,
    "get-o-jsonpath": get_jsonpath,
    "get-o-custom-columns": get_custom_columns,
    "get-columns": get_dockyard_columns,
    "describe": describe_with_events,
    "label": label,
    "annotate": annotate,
    "delete-wait": delete_wait,
    "wait": wait_conditions,
    "get-w": get_watch,
    "explain": explain,
    "api-resources": api_resources,
    "api-versions": api_versions,
    "rollout-status": rollout_status,
    "rollout-history": rollout_history,
    "rollout-undo": rollout_undo,
}


@pytest.mark.parametrize("case", list(CASES))
def test_kubectl(case: str, cluster: Cluster, tmp_path: Path) -> None:
    ns = f"t-{case}"[:63]
    with cluster.http() as api:
        assert api.post("/api/v1/namespaces", json={"metadata": {"name": ns}}).status_code == 201
    CASES[case](Kubectl(cluster, ns, tmp_path))
