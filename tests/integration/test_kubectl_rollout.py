"""``kubectl rollout status|history|undo|pause|resume|restart`` (kubectl 1.32) against the in-process API server
with the Deployment and ReplicaSet controllers running and a stand-in kubelet that marks pods Ready
(the module-wide cluster of tests/integration/test_kubectl_compat.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from integration.test_kubectl_compat import KUBECTL, MANIFESTS, Cluster, Kubectl, cluster  # noqa: F401

pytestmark = pytest.mark.skipif(not Path(KUBECTL).exists(), reason="kubectl not installed")


@pytest.fixture
def k(cluster: Cluster, tmp_path: Path, request: pytest.FixtureRequest) -> Kubectl:
    ns = f"r-{request.node.name.replace('_', '-')}"[:63].rstrip("-").lower()
    with cluster.http() as api:
        assert api.post("/api/v1/namespaces", json={"metadata": {"name": ns}}).status_code == 201
    kubectl = Kubectl(cluster, ns, tmp_path)
    kubectl.apply("deploy")
    kubectl.rolled_out(1)
    return kubectl


def images(k: Kubectl) -> str:
    return str(k.json("deployment", "web")["spec"]["template"]["spec"]["containers"][0]["image"])


def test_pause_holds_a_template_change_until_resume(k: Kubectl) -> None:
    assert k.run("rollout", "pause", "deployment/web").stdout.strip() == "deployment.apps/web paused"
    k.run("set", "image", "deployment/web", "c=busybox:2")
    k.until(
        lambda: any(c.get("reason") == "DeploymentPaused" for c in k.json("deployment", "web")["status"]["conditions"]),
        "Progressing DeploymentPaused",
    )
    assert len(k.json("replicasets")["items"]) == 1
    assert k.json("deployment", "web")["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert k.run("rollout", "resume", "deployment/web").stdout.strip() == "deployment.apps/web resumed"
    k.rolled_out(2)
    assert "successfully rolled out" in k.run("rollout", "status", "deployment/web", "--timeout=30s").stdout


def test_restart_rolls_out_a_new_replicaset(k: Kubectl) -> None:
    assert k.run("rollout", "restart", "deployment/web").stdout.strip() == "deployment.apps/web restarted"
    k.rolled_out(2)
    template = k.json("deployment", "web")["spec"]["template"]
    assert "kubectl.kubernetes.io/restartedAt" in template["metadata"]["annotations"]
    k.until(  # the old ReplicaSet is scaled down right after the new one is available
        lambda: sorted(rs["spec"]["replicas"] for rs in k.json("replicasets")["items"]) == [0, 2],
        "the old ReplicaSet scaled to 0",
    )
    assert "successfully rolled out" in k.run("rollout", "status", "deployment/web", "--timeout=30s").stdout


def test_undo_to_a_revision_and_history(k: Kubectl) -> None:
    for n, tag in ((2, "2"), (3, "3")):
        k.apply("deploy", MANIFESTS["deploy"].replace("busybox:1", f"busybox:{tag}").replace("first", f"v{tag}"))
        k.rolled_out(n)
    out = k.run("rollout", "undo", "deployment/web", "--to-revision=1").stdout.strip()
    assert out == "deployment.apps/web rolled back"
    k.rolled_out(4)
    assert images(k) == "busybox:1"
    rows = [
        line.split()[0]
        for line in k.run("rollout", "history", "deployment/web").stdout.splitlines()
        if line[:1].isdigit()
    ]
    assert rows == ["2", "3", "4"]  # revision 1 became 4
    assert "busybox:1" in k.run("rollout", "history", "deployment/web", "--revision=4").stdout


SET_BASED = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: sel}
spec:
  replicas: 2
  selector:
    matchExpressions:
    - {key: app, operator: In, values: [sel]}
    - {key: tier, operator: NotIn, values: [canary]}
  template:
    metadata: {labels: {app: sel, tier: TIER}}
    spec:
      containers: [{name: c, image: "busybox:1"}]
"""


def test_a_set_based_selector_rolls_out_and_one_that_refuses_the_template_is_422(
    cluster: Cluster, tmp_path: Path
) -> None:
    """``kubectl apply`` of a Deployment selecting by ``matchExpressions`` only rolls out; one whose expressions
    do not match its template's labels is refused naming the field, as kube-apiserver refuses it."""
    with cluster.http() as api:
        assert api.post("/api/v1/namespaces", json={"metadata": {"name": "r-set-based"}}).status_code == 201
    k = Kubectl(cluster, "r-set-based", tmp_path)
    assert k.apply("sel", SET_BASED.replace("TIER", "web")) == "deployment.apps/sel created"
    assert "successfully rolled out" in k.run("rollout", "status", "deployment/sel", "--timeout=30s").stdout
    assert len(k.json("pods", "-l", "app=sel,tier notin (canary)")["items"]) == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text(SET_BASED.replace("name: sel", "name: canary").replace("TIER", "canary"))
    proc = k.run("apply", "-f", str(bad), check=False)
    assert proc.returncode != 0
    assert "spec.template.metadata.labels" in proc.stderr and "`selector` does not match template `labels`" in (
        proc.stderr
    )
