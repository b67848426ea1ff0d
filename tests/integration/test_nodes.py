"""``v1`` Node over HTTPS: served as kube-apiserver serves it, written by the node identity only for itself
(the Node authorizer and ``NodeRestriction``), printed by ``kubectl get nodes`` as kube-apiserver prints it, and
registered and heart-beaten by the node agent (:mod:`dockyard.agent.nodestatus`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from dockyard.client import connection
from integration.test_pod_runtime import BUSYBOX, _pod_engine  # noqa: F401 — the session's Podman service
from integration.test_pod_scheduling import agent  # noqa: F401 — the node agent of node-1

NODES = "/api/v1/nodes"
MERGE = {"Content-Type": "application/merge-patch+json"}
TABLE = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
NOW = "2025-01-01T00:00:00Z"


def node(name: str, *, ready: str = "True", unschedulable: bool = False, **labels: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {"unschedulable": True} if unschedulable else {},
        "status": {
            "conditions": [
                {
                    "type": "Ready",
                    "status": ready,
                    "reason": "KubeletReady",
                    "message": "ready",
                    "lastHeartbeatTime": NOW,
                    "lastTransitionTime": NOW,
                }
            ],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": name}],
            "nodeInfo": {
                "kubeletVersion": "dockyard-0.1",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "kernelVersion": "6.1.0",
                "containerRuntimeVersion": "podman://4.3.1",
                "operatingSystem": "linux",
                "architecture": "amd64",
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
                "kubeProxyVersion": "",
            },
        },
    }
    return body


def create_with_status(api: Any, body: dict[str, Any]) -> dict[str, Any]:
    """Create (status dropped, as for any kind with a status subresource), then write the status."""
    resp = api.post(NODES, json=body)
    assert resp.status_code == 201, resp.text
    name = body["metadata"]["name"]
    resp = api.patch(f"{NODES}/{name}/status", json={"status": body["status"]}, headers=MERGE)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


# ------------------------------------------------------------------ served as kube-apiserver serves it


def test_discovery_lists_nodes_cluster_scoped_with_status(api: Any) -> None:
    resources = {r["name"]: r for r in api.get("/api/v1").json()["resources"]}
    assert resources["nodes"]["kind"] == "Node"
    assert resources["nodes"]["namespaced"] is False
    assert resources["nodes"]["shortNames"] == ["no"]
    assert set(resources["nodes"]["verbs"]) >= {"create", "get", "list", "watch", "update", "patch", "delete"}
    assert "nodes/status" in resources


def test_create_get_list_and_status_subresource(api: Any) -> None:
    created = api.post(NODES, json=node("n1"))
    assert created.status_code == 201, created.text
    assert "namespace" not in created.json()["metadata"]
    assert created.json().get("status") in (None, {})  # status is written through /status only
    resp = api.patch(f"{NODES}/n1/status", json={"status": node("n1")["status"]}, headers=MERGE)
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"]["nodeInfo"]["architecture"] == "amd64"
    # a write of the main resource leaves status alone
    resp = api.patch(f"{NODES}/n1", json={"spec": {"unschedulable": True}, "status": {"phase": "x"}}, headers=MERGE)
    assert resp.status_code == 200, resp.text
    assert resp.json()["spec"]["unschedulable"] is True
    assert resp.json()["status"]["conditions"][0]["type"] == "Ready"
    assert [i["metadata"]["name"] for i in api.get(NODES).json()["items"]] == ["n1"]
    assert api.get(f"{NODES}/n1").json()["kind"] == "Node"
    assert api.get("/api/v1/namespaces/default/nodes").status_code == 404


@pytest.mark.parametrize("name", ["Bad_Name", "-x", "a" * 254])
def test_a_node_name_is_a_dns_subdomain(api: Any, name: str) -> None:
    resp = api.post(NODES, json=node(name))
    assert resp.status_code == 422, resp.text
    assert resp.json()["details"]["causes"][0]["field"] == "metadata.name"


def test_unknown_fields_follow_field_validation(api: Any) -> None:
    body = node("n1")
    body["spec"]["bogus"] = 1
    resp = api.post(NODES, json=body, params={"fieldValidation": "Strict"})
    assert resp.status_code == 400, resp.text
    assert "spec.bogus" in resp.json()["message"]
    body = node("n1")
    body["spec"].update({"podCIDR": "10.0.0.0/24", "providerID": "dockyard://n1"})
    resp = api.post(NODES, json=body, params={"fieldValidation": "Strict"})
    assert resp.status_code == 201, resp.text


def test_taints_are_refused_since_nothing_honours_them(api: Any) -> None:
    body = node("n1")
    body["spec"]["taints"] = [{"key": "k", "effect": "NoSchedule"}]
    resp = api.post(NODES, json=body)
    assert resp.status_code == 422, resp.text
    assert resp.json()["details"]["causes"][0]["field"] == "spec.taints"
    assert api.post(NODES, json=node("n1")).status_code == 201
    resp = api.patch(f"{NODES}/n1", json={"spec": {"taints": [{"key": "k", "effect": "NoExecute"}]}}, headers=MERGE)
    assert resp.status_code == 422, resp.text
    resp = api.patch(f"{NODES}/n1", json={"spec": {"unschedulable": "yes"}}, headers=MERGE)
    assert resp.status_code == 400, resp.text  # a decoding error, as Go's json.Unmarshal reports it


def test_field_selectors_of_nodes(api: Any) -> None:
    assert api.post(NODES, json=node("plain")).status_code == 201
    assert api.post(NODES, json=node("cordoned", unschedulable=True)).status_code == 201

    def names(selector: str) -> list[str]:
        resp = api.get(NODES, params={"fieldSelector": selector})
        assert resp.status_code == 200, resp.text
        return sorted(i["metadata"]["name"] for i in resp.json()["items"])

    assert names("spec.unschedulable=false") == ["plain"]  # unset reads false, as Go's zero value
    assert names("spec.unschedulable=true") == ["cordoned"]
    assert names("metadata.name=plain") == ["plain"]
    assert api.get(NODES, params={"fieldSelector": "status.phase=Running"}).status_code == 400


def test_table_columns_as_kube_apiserver_prints_them(api: Any) -> None:
    create_with_status(api, node("ready"))
    create_with_status(api, node("down", ready="Unknown"))
    create_with_status(api, node("cordoned", unschedulable=True, **{"node-role.kubernetes.io/control-plane": ""}))
    table = api.get(NODES, headers=TABLE).json()
    columns = [c["name"] for c in table["columnDefinitions"]]
    assert columns[:5] == ["Name", "Status", "Roles", "Age", "Version"]
    assert columns[5:] == [
        "Internal-IP",
        "External-IP",
        "OS-Image",
        "Kernel-Version",
        "Container-Runtime",
    ]
    assert all(c["priority"] == 1 for c in table["columnDefinitions"][5:])
    rows = {r["cells"][0]: r["cells"] for r in table["rows"]}
    assert rows["ready"][1:3] == ["Ready", "<none>"]
    assert rows["ready"][4] == "dockyard-0.1"
    assert rows["ready"][5:] == ["127.0.0.1", "<none>", "Debian GNU/Linux 12 (bookworm)", "6.1.0", "podman://4.3.1"]
    assert rows["down"][1] == "NotReady"
    assert rows["cordoned"][1:3] == ["Ready,SchedulingDisabled", "control-plane"]


def test_openapi_describes_node_for_kubectl_explain(api: Any) -> None:
    doc = api.get("/openapi/v3/api/v1").json()
    schemas = doc["components"]["schemas"]
    node_schema = schemas["io.k8s.api.core.v1.Node"]
    assert node_schema["x-kubernetes-group-version-kind"] == [{"group": "", "version": "v1", "kind": "Node"}]
    assert "nodeInfo" in schemas["io.k8s.api.core.v1.NodeStatus"]["properties"]
    assert "unschedulable" in schemas["io.k8s.api.core.v1.NodeSpec"]["properties"]
    assert "/api/v1/nodes/{name}/status" in doc["paths"]


# ------------------------------------------------------------------ who may write a Node (attacks first)


def test_node_creates_only_its_own_node(apiserver: Any) -> None:
    with apiserver.client(token=apiserver.node_token) as me:
        resp = me.post(NODES, json=node("other-node"))
        assert resp.status_code == 403, resp.text
        assert 'node "node-1" is not allowed to modify node "other-node"' in resp.json()["message"]
        resp = me.post(NODES, json={"apiVersion": "v1", "kind": "Node", "metadata": {"generateName": "node-"}})
        assert resp.status_code == 403, resp.text
        assert me.post(NODES, json=node(apiserver.node_name)).status_code == 201


def test_node_may_not_touch_other_nodes(apiserver: Any, api: Any) -> None:
    create_with_status(api, node("other-node"))
    create_with_status(api, node(apiserver.node_name))
    with apiserver.client(token=apiserver.node_token) as me:
        other = f"{NODES}/other-node"
        ready_false = {"status": {"conditions": [{"type": "Ready", "status": "False"}]}}
        assert me.patch(f"{other}/status", json=ready_false, headers=MERGE).status_code == 403
        assert me.patch(other, json={"spec": {"unschedulable": True}}, headers=MERGE).status_code == 403
        stored = api.get(other).json()
        assert me.put(other, json=stored).status_code == 403
        assert me.put(f"{other}/status", json=stored).status_code == 403
        assert me.delete(other).status_code == 403
        assert me.delete(NODES).status_code == 403  # deletecollection
        assert me.delete(f"{NODES}/{apiserver.node_name}").status_code == 403  # not even itself
        # reading is allowed (the kubelet lists and watches Nodes)
        assert me.get(other).status_code == 200
        assert me.get(NODES).status_code == 200
        assert me.get(NODES, params={"watch": "1", "timeoutSeconds": "1"}).status_code == 200
    assert api.get(other).json()["status"]["conditions"][0]["status"] == "True"
    assert api.get(other).json()["spec"].get("unschedulable") is not True


def test_node_writes_its_own_node_and_status(apiserver: Any, api: Any) -> None:
    create_with_status(api, node(apiserver.node_name))
    mine = f"{NODES}/{apiserver.node_name}"
    with apiserver.client(token=apiserver.node_token) as me:
        beat = {"status": {"conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": NOW}]}}
        assert me.patch(f"{mine}/status", json=beat, headers=MERGE).status_code == 200
        stored = me.get(mine).json()
        assert me.put(f"{mine}/status", json=stored).status_code == 200
        labels = {"metadata": {"labels": {"kubernetes.io/arch": "arm64", "example.com/x": "y"}}}
        assert me.patch(mine, json=labels, headers=MERGE).status_code == 200


def test_node_restriction_on_its_own_node(apiserver: Any, api: Any) -> None:
    """A node sets no node-role or node-restriction labels, nor changes those an admin set (NodeRestriction
    ``admitNode``); an admin may."""
    mine = f"{NODES}/{apiserver.node_name}"
    with apiserver.client(token=apiserver.node_token) as me:
        body = node(apiserver.node_name, **{"node-role.kubernetes.io/control-plane": ""})
        resp = me.post(NODES, json=body)
        assert resp.status_code == 403, resp.text
        assert "node-role.kubernetes.io/control-plane" in resp.json()["message"]
        assert me.post(NODES, json=node(apiserver.node_name)).status_code == 201
        for labels in ({"node-restriction.kubernetes.io/trusted": "yes"}, {"node-role.kubernetes.io/worker": ""}):
            resp = me.patch(mine, json={"metadata": {"labels": labels}}, headers=MERGE)
            assert resp.status_code == 403, resp.text
    role = {"metadata": {"labels": {"node-role.kubernetes.io/worker": ""}}}
    assert api.patch(mine, json=role, headers=MERGE).status_code == 200
    with apiserver.client(token=apiserver.node_token) as me:
        # the node's own writes keep the role an admin set: other labels may change, that one may not go
        beat = {"metadata": {"labels": {"kubernetes.io/hostname": apiserver.node_name}}}
        assert me.patch(mine, json=beat, headers=MERGE).status_code == 200
        gone = {"metadata": {"labels": {"node-role.kubernetes.io/worker": None}}}
        resp = me.patch(mine, json=gone, headers=MERGE)
        assert resp.status_code == 403, resp.text
    assert "node-role.kubernetes.io/worker" in api.get(mine).json()["metadata"]["labels"]


def test_view_reads_nodes_and_writes_nothing(apiserver: Any, api: Any) -> None:
    create_with_status(api, node("n1"))
    with apiserver.client(token=apiserver.view_token) as viewer:
        assert viewer.get(f"{NODES}/n1").status_code == 200
        assert viewer.get(f"{NODES}/n1/status").status_code == 200
        assert viewer.get(NODES).status_code == 200
        assert viewer.post(NODES, json=node("n2")).status_code == 403
        assert viewer.patch(f"{NODES}/n1", json={"spec": {"unschedulable": True}}, headers=MERGE).status_code == 403
        assert viewer.patch(f"{NODES}/n1/status", json={"status": {}}, headers=MERGE).status_code == 403
        assert viewer.delete(f"{NODES}/n1").status_code == 403
    assert api.delete(f"{NODES}/n1").status_code == 200


def test_node_events_about_itself_only(apiserver: Any) -> None:
    event = {
        "metadata": {"name": "n.1"},
        "involvedObject": {"kind": "Node", "name": "other-node", "uid": "other-node"},
        "reason": "NodeReady",
        "message": "m",
        "type": "Normal",
    }
    with apiserver.client(token=apiserver.node_token) as me:
        assert me.post("/api/v1/namespaces/default/events", json=event).status_code == 403
        event["involvedObject"] = {"kind": "Node", "name": apiserver.node_name, "uid": apiserver.node_name}
        assert me.post("/api/v1/namespaces/default/events", json=event).status_code == 201


# ------------------------------------------------------------------ kubectl


class Kubectl:
    def __init__(self, server: Any, tmp: Path) -> None:
        self.env = dict(os.environ, KUBECONFIG=str(server.kubeconfig(tmp / "kubeconfig")), HOME=str(tmp))
        self.cache = tmp / "kube-cache"

    def __call__(self, *args: str) -> str:
        proc = subprocess.run(
            [KUBECTL, f"--cache-dir={self.cache}", *args], env=self.env, capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stdout}\n{proc.stderr}"
        return proc.stdout


@pytest.mark.skipif(not os.path.exists(KUBECTL), reason="kubectl not installed")
def test_kubectl_get_describe_cordon_explain(apiserver: Any, api: Any, tmp_path: Path) -> None:
    create_with_status(api, node("node-1"))
    kubectl = Kubectl(apiserver, tmp_path)
    lines = kubectl("get", "nodes").splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert lines[1].split()[:3] == ["node-1", "Ready", "<none>"] and lines[1].split()[-1] == "dockyard-0.1"
    wide = kubectl("get", "no", "-o", "wide").splitlines()
    assert wide[0].split() == [
        "NAME",
        "STATUS",
        "ROLES",
        "AGE",
        "VERSION",
        "INTERNAL-IP",
        "EXTERNAL-IP",
        "OS-IMAGE",
        "KERNEL-VERSION",
        "CONTAINER-RUNTIME",
    ]
    assert "127.0.0.1" in wide[1] and "podman://4.3.1" in wide[1] and "Debian GNU/Linux 12 (bookworm)" in wide[1]
    described = kubectl("describe", "node", "node-1")
    assert "Name:               node-1" in described
    assert "KubeletReady" in described and "InternalIP:  127.0.0.1" in described
    assert "Non-terminated Pods:" in described
    assert kubectl("cordon", "node-1").strip() == "node/node-1 cordoned"
    assert "Ready,SchedulingDisabled" in kubectl("get", "nodes")
    assert kubectl("uncordon", "node-1").strip() == "node/node-1 uncordoned"
    explained = kubectl("explain", "node.status.nodeInfo")
    assert "kubeletVersion" in explained


# ------------------------------------------------------------------ the agent registers and heart-beats its Node


class FakeEngine:
    """An engine that answers: its version, and its ping at every heartbeat (without one, each heartbeat since
    622bfef turned Ready False, and the heartbeat test failed whenever that crossed a second)."""

    def version(self) -> dict[str, Any]:
        return {"Version": "4.3.1", "Components": [{"Name": "Podman Engine", "Version": "4.3.1"}]}

    def ping(self) -> bool:
        return True


@pytest.fixture
def node_conn(apiserver: Any, tmp_path: Path) -> connection.Connection:
    path = apiserver.kubeconfig(tmp_path / "node-kubeconfig", token=apiserver.node_token)
    return connection.connect(str(path))


def _condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == type_)


def test_agent_registers_its_node_and_heartbeats(apiserver: Any, api: Any, node_conn: connection.Connection) -> None:
    from dockyard.agent import nodestatus

    reporter = nodestatus.NodeStatusReporter(
        node_conn, node_name=apiserver.node_name, engine_client=FakeEngine(), period=0.3
    )
    stop = threading.Event()
    threads = reporter.start(stop)
    try:
        deadline = time.monotonic() + 10
        got: dict[str, Any] = {}
        while not (got.get("status") or {}).get("conditions") and time.monotonic() < deadline:
            time.sleep(0.05)  # registered: created, then its status written (two requests)
            resp = api.get(f"{NODES}/{apiserver.node_name}")
            got = resp.json() if resp.status_code == 200 else {}
        labels = got["metadata"]["labels"]
        assert labels["kubernetes.io/hostname"] == apiserver.node_name
        assert labels["kubernetes.io/os"] == "linux"
        assert labels["kubernetes.io/arch"] in ("amd64", "arm64")
        assert labels["dockyard.dev/nodename"] == apiserver.node_name
        status = got["status"]
        assert {"type": "InternalIP", "address": "127.0.0.1"} in status["addresses"]
        assert {"type": "Hostname", "address": apiserver.node_name} in status["addresses"]
        info = status["nodeInfo"]
        assert info["containerRuntimeVersion"] == "podman://4.3.1"
        assert info["operatingSystem"] == "linux" and info["architecture"] == labels["kubernetes.io/arch"]
        assert info["kubeletVersion"].startswith("dockyard-") and info["kernelVersion"] == os.uname().release
        assert status["capacity"]["pods"] == "110" and status["capacity"]["cpu"] == str(os.cpu_count())
        assert status["capacity"]["memory"].endswith("Ki") and status["allocatable"] == status["capacity"]
        assert status["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 0}}
        ready = _condition(got, "Ready")
        assert (ready["status"], ready["reason"]) == ("True", "KubeletReady")
        for pressure in ("MemoryPressure", "DiskPressure", "PIDPressure"):
            assert _condition(got, pressure)["status"] == "False"
        first_beat, transition = ready["lastHeartbeatTime"], ready["lastTransitionTime"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            now = _condition(api.get(f"{NODES}/{apiserver.node_name}").json(), "Ready")
            if now["lastHeartbeatTime"] != first_beat:
                break
            time.sleep(0.1)
        assert now["lastHeartbeatTime"] > first_beat
        assert now["status"] == "True", now
        assert now["lastTransitionTime"] == transition  # the status did not change
    finally:
        stop.set()
        for t in threads:
            t.join(5)
    reporter.stopped()
    down = _condition(api.get(f"{NODES}/{apiserver.node_name}").json(), "Ready")
    assert (down["status"], down["reason"]) == ("Unknown", "NodeStatusUnknown")
    assert down["message"] == "Kubelet stopped posting node status."


def test_agent_reregisters_an_existing_node_keeping_what_others_set(
    apiserver: Any, api: Any, node_conn: connection.Connection
) -> None:
    from dockyard.agent import nodestatus

    stale = node(apiserver.node_name, ready="Unknown", **{"example.com/team": "a"})
    stale["spec"] = {"unschedulable": True}
    create_with_status(api, stale)
    reporter = nodestatus.NodeStatusReporter(node_conn, node_name=apiserver.node_name, engine_client=FakeEngine())
    reporter.register()
    got = api.get(f"{NODES}/{apiserver.node_name}").json()
    assert got["metadata"]["labels"]["example.com/team"] == "a"  # the agent adds its labels, removes none
    assert got["metadata"]["labels"]["kubernetes.io/os"] == "linux"
    assert got["spec"]["unschedulable"] is True  # a cordon outlives a restart of the agent
    assert _condition(got, "Ready")["status"] == "True"


# ------------------------------------------------------------------ a cordoned node takes no new pod


def test_a_cordoned_node_binds_no_new_pod(apiserver: Any, api: Any, request: pytest.FixtureRequest) -> None:
    """``kubectl cordon`` is honoured (kube-scheduler's NodeUnschedulable filter): the agent reads
    ``spec.unschedulable`` with its heartbeat and leaves new pods Pending, in the scheduler's words."""
    agent = request.getfixturevalue("agent")  # the node agent on the session's Podman service
    deadline = time.monotonic() + 10
    while api.get(f"{NODES}/{apiserver.node_name}").status_code != 200:
        assert time.monotonic() < deadline, "the agent did not register its Node"
        time.sleep(0.1)
    assert api.patch(f"{NODES}/{apiserver.node_name}", json={"spec": {"unschedulable": True}}, headers=MERGE)
    agent.node_status.heartbeat()  # what the next heartbeat reads back
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "later"},
        "spec": {"containers": [{"name": "c", "image": BUSYBOX, "command": ["sleep", "60"]}]},
    }
    assert api.post("/api/v1/namespaces/default/pods", json=pod).status_code == 201

    def scheduled() -> dict[str, Any] | None:
        got = api.get("/api/v1/namespaces/default/pods/later").json()
        conditions = (got.get("status") or {}).get("conditions") or []
        return next((c for c in conditions if c["type"] == "PodScheduled"), None)

    deadline = time.monotonic() + 10
    while (cond := scheduled()) is None:
        assert time.monotonic() < deadline, "no PodScheduled condition"
        time.sleep(0.1)
    assert (cond["status"], cond["reason"]) == ("False", "Unschedulable")
    assert cond["message"] == "0/1 nodes are available: 1 node(s) were unschedulable."
    assert not api.get("/api/v1/namespaces/default/pods/later").json()["spec"].get("nodeName")
    assert api.patch(f"{NODES}/{apiserver.node_name}", json={"spec": {"unschedulable": False}}, headers=MERGE)
    agent.node_status.heartbeat()
    deadline = time.monotonic() + 15
    while api.get("/api/v1/namespaces/default/pods/later").json()["spec"].get("nodeName") != apiserver.node_name:
        assert time.monotonic() < deadline, "the pod was not bound after uncordon"
        time.sleep(0.1)
