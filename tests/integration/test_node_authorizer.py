"""The node identity as an attacker would use it (Node authorizer + NodeRestriction), over HTTPS.

A node reads only the Secrets that its pods, its build pods' Builds and its Pushes
reference, never lists or watches them, writes logs only of the builds it runs,
and Events only about its objects.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from dockyard.api import buildpod

NS = "/api/v1/namespaces/default"
SECRETS = f"{NS}/secrets"
PODS = f"{NS}/pods"
EVENTS = f"{NS}/events"
GROUP = "/apis/dockyard.dev/v1alpha1/namespaces/default"
MERGE = {"Content-Type": "application/merge-patch+json"}
SECRET_DATA = "c2VjcmV0LXZhbHVl"


def secret(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "data": {"password": SECRET_DATA}}


def pod(name: str, node: str, **spec: Any) -> dict[str, Any]:
    body = {"containers": [{"name": "c", "image": "busybox"}], "nodeName": node}
    body.update(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": body}


@pytest.fixture
def secrets(api: Any) -> list[str]:
    names = [
        "pod-env",
        "pod-volume",
        "pod-projected",
        "pod-env-from",
        "pull",
        "other-node",
        "unreferenced",
        "build-push",
        "push-secret",
    ]
    for name in names:
        assert api.post(SECRETS, json=secret(name)).status_code == 201
    return names


def test_node_reads_only_secrets_its_objects_reference(apiserver: Any, api: Any, secrets: list[str]) -> None:
    node_name = apiserver.node_name
    env = [{"name": "P", "valueFrom": {"secretKeyRef": {"name": "pod-env", "key": "password"}}}]
    mine = pod(
        "mine",
        node_name,
        imagePullSecrets=[{"name": "pull"}],
        volumes=[
            {"name": "v", "secret": {"secretName": "pod-volume"}},
            {"name": "p", "projected": {"sources": [{"secret": {"name": "pod-projected"}}]}},
        ],
    )
    mine["spec"]["containers"][0]["env"] = env
    mine["spec"]["containers"][0]["envFrom"] = [{"secretRef": {"name": "pod-env-from"}}]
    assert api.post(PODS, json=mine).status_code == 201
    theirs = pod("theirs", "other-node", volumes=[{"name": "v", "secret": {"secretName": "other-node"}}])
    assert api.post(PODS, json=theirs).status_code == 201
    build_spec = {
        "source": {"type": "Dockerfile", "dockerfile": "FROM scratch"},
        "strategy": {"type": "Docker"},
        "output": {"to": {"kind": "DockerImage", "name": "127.0.0.1:5000/x:1"}, "pushSecret": {"name": "build-push"}},
    }
    build_pod = pod("b-1-build", node_name)
    build_pod["metadata"]["labels"] = {"dockyard.dev/build-pod": "true", "dockyard.dev/build.name": "b-1"}
    build_pod["spec"]["containers"][0]["env"] = [
        {
            "name": "BUILD",
            "value": json.dumps({"metadata": {"name": "b-1", "namespace": "default"}, "spec": build_spec}),
        }
    ]
    assert api.post(PODS, json=build_pod).status_code == 201
    push = {
        "metadata": {"name": "p", "labels": {"dockyard.dev/nodename": node_name}},
        "spec": {"podName": "mine", "image": "127.0.0.1:5000/x:1", "imagePushSecrets": [{"name": "push-secret"}]},
    }
    assert api.post(f"{GROUP}/pushes", json=push).status_code == 201

    with apiserver.client(token=apiserver.node_token) as node:
        for name in ("pod-env", "pod-volume", "pod-projected", "pod-env-from", "pull", "build-push", "push-secret"):
            got = node.get(f"{SECRETS}/{name}")
            assert got.status_code == 200, (name, got.text)
        for name in ("other-node", "unreferenced"):
            denied = node.get(f"{SECRETS}/{name}")
            assert denied.status_code == 403, (name, denied.text)
            assert SECRET_DATA not in denied.text
            assert denied.json()["message"] == (
                f'secrets "{name}" is forbidden: User "system:node:{node_name}" cannot get resource "secrets" '
                f'in API group "" in the namespace "default": no relationship found between node "{node_name}" '
                "and this object"
            )
        # a referenced but missing Secret is a 404, as the Node authorizer allows the get
        assert api.patch(
            f"{PODS}/mine", json={"spec": {"imagePullSecrets": [{"name": "pull"}, {"name": "gone"}]}}, headers=MERGE
        ).status_code in (200, 422)
        for resp in (
            node.get(SECRETS),
            node.get("/api/v1/secrets"),
            node.get(SECRETS, params={"watch": "true", "timeoutSeconds": "1"}),
            node.get("/api/v1/secrets", params={"watch": "true", "timeoutSeconds": "1"}),
        ):
            assert resp.status_code == 403, resp.text
            assert SECRET_DATA not in resp.text


def _config(name: str) -> dict[str, Any]:
    """A BuildConfig ``name`` of a Dockerfile build pushing to 127.0.0.1:5000/x:1."""
    return {
        "metadata": {"name": name},
        "spec": {
            "source": {"type": "Dockerfile", "dockerfile": "FROM scratch"},
            "strategy": {"type": "Docker"},
            "output": {"to": {"kind": "DockerImage", "name": "127.0.0.1:5000/x:1"}},
        },
    }


def _two_builds(apiserver: Any, api: Any) -> None:
    """Builds b-1 (its build pod bound to the test's node) and b-2 (bound to another node)."""
    assert api.post(f"{GROUP}/buildconfigs", json=_config("b")).status_code == 201
    builds = []
    for _ in range(2):
        created = api.post(f"{GROUP}/buildconfigs/b/instantiate", json={})
        assert created.status_code == 201
        builds.append(created.json())
    for build, node in zip(builds, (apiserver.node_name, "other-node"), strict=True):
        assert api.post(PODS, json=buildpod.build_pod(build) | {"spec": pod("x", node)["spec"]}).status_code == 201


def test_a_node_cannot_forge_the_build_pod_of_a_build_it_does_not_run(apiserver: Any, api: Any) -> None:
    """A mirror pod is the node's own: named and labelled as a Build's pod (before the build controller made it),
    it does not make the node the one that runs the Build. Only the pod the Build owns does."""
    assert api.post(f"{GROUP}/buildconfigs", json=_config("c")).status_code == 201
    assert api.post(f"{GROUP}/buildconfigs/c/instantiate", json={}).status_code == 201
    forged = pod("c-1-build", apiserver.node_name)
    forged["metadata"]["labels"] = {"dockyard.dev/build-pod": "true", "dockyard.dev/build.name": "c-1"}
    forged["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "x", "dockyard.dev/build.name": "c-1"}
    with apiserver.client(token=apiserver.node_token) as node:
        assert node.post(PODS, json=forged).status_code == 201, "a mirror pod of its own is the node's to make"
        log = node.post(f"{GROUP}/builds/c-1/log", content=b"forged line\n")
        assert log.status_code == 403, log.text
        details = node.patch(f"{GROUP}/builds/c-1/details", json={"spec": {"revision": REVISION}}, headers=MERGE)
        assert details.status_code == 403, details.text
        assert node.get(f"{GROUP}/builds/c-1/source").status_code == 403
    assert b"forged" not in api.get(f"{GROUP}/builds/c-1/log").content


REVISION = {"type": "Git", "git": {"commit": "a" * 40, "message": "fix", "author": {"name": "A", "email": "a@x"}}}


def test_node_writes_logs_only_of_builds_it_runs(apiserver: Any, api: Any) -> None:
    _two_builds(apiserver, api)
    with apiserver.client(token=apiserver.node_token) as node:
        assert node.post(f"{GROUP}/builds/b-1/log", content=b"step 1\n").status_code == 201
        forged = node.post(f"{GROUP}/builds/b-2/log", content=b"forged line\n")
        assert forged.status_code == 403, forged.text
        assert node.get(f"{GROUP}/builds/b-2/source").status_code == 403
    assert b"forged" not in api.get(f"{GROUP}/builds/b-2/log").content
    assert api.get(f"{GROUP}/builds/b-1/log").content == b"step 1\n"


def test_node_writes_only_the_revision_of_builds_it_runs_through_details(apiserver: Any, api: Any) -> None:
    """``builds/details`` (OpenShift's): the builder reports the resolved revision; nothing else, nowhere else."""
    _two_builds(apiserver, api)
    generation = api.get(f"{GROUP}/builds/b-1").json()["metadata"]["generation"]
    revision = {"spec": {"revision": REVISION}}
    with apiserver.client(token=apiserver.node_token) as node:
        forged = node.patch(f"{GROUP}/builds/b-2/details", json=revision, headers=MERGE)
        assert forged.status_code == 403, forged.text
        main = node.patch(f"{GROUP}/builds/b-1", json=revision, headers=MERGE)
        assert main.status_code == 403, main.text  # the main resource stays the controller's
        sneaky = node.patch(
            f"{GROUP}/builds/b-1/details",
            json={"spec": {"revision": REVISION, "output": {"to": {"kind": "DockerImage", "name": "evil/x:1"}}}},
            headers=MERGE,
        )
        assert sneaky.status_code == 422, sneaky.text
        assert [c["field"] for c in sneaky.json()["details"]["causes"]] == ["spec.output"]
        status = node.patch(f"{GROUP}/builds/b-1/details", json={"status": {"phase": "Complete"}}, headers=MERGE)
        assert status.status_code == 422 and "status" in status.json()["message"], status.text
        held = node.patch(f"{GROUP}/builds/b-1/details", json={"metadata": {"finalizers": ["x/y"]}}, headers=MERGE)
        assert held.status_code == 422, held.text
        assert held.json()["details"]["causes"][0]["field"] == "metadata.finalizers"
        ok = node.patch(f"{GROUP}/builds/b-1/details", json=revision, headers=MERGE)
        assert ok.status_code == 200, ok.text
        again = node.patch(f"{GROUP}/builds/b-1/details", json=revision, headers=MERGE)
        assert again.status_code == 200, again.text  # the same revision again: nothing changes
        other = {"spec": {"revision": {"type": "Git", "git": {"commit": "b" * 40}}}}
        changed = node.patch(f"{GROUP}/builds/b-1/details", json=other, headers=MERGE)
        assert changed.status_code == 422, changed.text
        assert changed.json()["details"]["causes"][0]["field"] == "spec.revision"
        stale = api.get(f"{GROUP}/builds/b-2").json()
        assert api.patch(
            f"{GROUP}/builds/b-2/status", json={"status": {"message": "moved on"}}, headers=MERGE
        ).is_success
        stale["spec"]["revision"] = REVISION
        conflict = api.put(f"{GROUP}/builds/b-2/details", json=stale)  # a PUT read before the last write
        assert conflict.status_code == 409, conflict.text
    with apiserver.client(token=apiserver.view_token) as view:
        assert view.patch(f"{GROUP}/builds/b-1/details", json=revision, headers=MERGE).status_code == 403
    stored = api.get(f"{GROUP}/builds/b-1").json()
    assert stored["spec"]["revision"] == REVISION
    assert stored["spec"]["output"]["to"]["name"] == "127.0.0.1:5000/x:1"
    assert stored["status"]["phase"] == "New"
    assert stored["metadata"]["generation"] == generation
    assert "revision" not in api.get(f"{GROUP}/builds/b-2").json()["spec"]


def test_node_records_events_only_about_its_objects(apiserver: Any, api: Any) -> None:
    assert api.post(PODS, json=pod("mine", apiserver.node_name)).status_code == 201
    assert api.post(PODS, json=pod("theirs", "other-node")).status_code == 201

    def event(name: str, involved: dict[str, Any]) -> dict[str, Any]:
        return {
            "metadata": {"name": name},
            "involvedObject": involved,
            "reason": "Started",
            "message": "started",
            "type": "Normal",
            "count": 1,
        }

    with apiserver.client(token=apiserver.node_token) as node:
        assert node.post(EVENTS, json=event("mine.1", {"kind": "Pod", "name": "mine"})).status_code == 201
        assert node.post(EVENTS, json=event("node.1", {"kind": "Node", "name": apiserver.node_name})).status_code == 201
        for name, involved in (
            ("theirs.1", {"kind": "Pod", "name": "theirs"}),
            ("ghost.1", {"kind": "Pod", "name": "ghost"}),
            ("node.2", {"kind": "Node", "name": "other-node"}),
            ("bc.1", {"kind": "BuildConfig", "name": "x"}),
            ("ns.1", {"kind": "Pod", "name": "mine", "namespace": "kube-system"}),
        ):
            resp = node.post(EVENTS, json=event(name, involved))
            assert resp.status_code == 403, (name, resp.text)
        assert node.patch(f"{EVENTS}/mine.1", json={"count": 2}, headers=MERGE).status_code == 200
        moved = node.patch(f"{EVENTS}/mine.1", json={"involvedObject": {"name": "theirs"}}, headers=MERGE)
        assert moved.status_code == 403
    assert api.post(EVENTS, json=event("theirs.2", {"kind": "Pod", "name": "theirs"})).status_code == 201
    with apiserver.client(token=apiserver.node_token) as node:
        assert node.patch(f"{EVENTS}/theirs.2", json={"count": 5}, headers=MERGE).status_code == 403
    assert api.get(f"{EVENTS}/theirs.2").json()["count"] == 1


def mirror(name: str, node: str, **spec: Any) -> dict[str, Any]:
    """A mirror pod as the node agent creates it for a static pod (``kubernetes.io/config.mirror``)."""
    body = pod(name, node, **spec)
    body["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "abc", "kubernetes.io/config.source": "file"}
    return body


def test_node_creates_and_deletes_only_mirror_pods_bound_to_itself(apiserver: Any, api: Any) -> None:
    """NodeRestriction (plugin/pkg/admission/noderestriction ``admitPodCreate``): a node creates only mirror pods,
    bound to itself, referencing no Secret, ConfigMap, PersistentVolumeClaim or service account; it deletes only
    mirror pods bound to itself. Pod Security admission applies to its mirror pods as to any pod."""
    node_name = apiserver.node_name
    assert api.post(SECRETS, json=secret("s")).status_code == 201
    refused = {
        "plain": (pod("plain", node_name), "can only create mirror pods"),
        "other": (mirror("other", "other-node"), "can only create pods with spec.nodeName set to itself"),
        "unbound": (mirror("unbound", ""), "can only create pods with spec.nodeName set to itself"),
        "withsecret": (
            mirror("withsecret", node_name, volumes=[{"name": "v", "secret": {"secretName": "s"}}]),
            "can not create pods that reference secrets",
        ),
        "withpull": (
            mirror("withpull", node_name, imagePullSecrets=[{"name": "s"}]),
            "can not create pods that reference secrets",
        ),
        "withcm": (
            mirror("withcm", node_name, volumes=[{"name": "v", "configMap": {"name": "c"}}]),
            "can not create pods that reference configmaps",
        ),
        "withsa": (mirror("withsa", node_name, serviceAccountName="robot"), "can not create pods that reference"),
    }
    with apiserver.client(token=apiserver.node_token) as node:
        for name, (body, why) in refused.items():
            resp = node.post(PODS, json=body)
            assert resp.status_code == 403, (name, resp.text)
            assert why in resp.json()["message"], (name, resp.text)
            assert api.get(f"{PODS}/{name}").status_code == 404
        made = node.post(PODS, json=mirror("static-web", node_name))
        assert made.status_code == 201, made.text
        privileged = mirror("static-priv", node_name)
        privileged["spec"]["containers"][0]["securityContext"] = {"privileged": True}
        denied = node.post(PODS, json=privileged)
        assert denied.status_code == 403 and "violates PodSecurity" in denied.text, denied.text
        assert api.post(PODS, json=pod("workload", node_name)).status_code == 201
        assert api.post(PODS, json=mirror("theirs-mirror", "other-node")).status_code == 201
        for name in ("workload", "theirs-mirror"):
            resp = node.delete(f"{PODS}/{name}")
            assert resp.status_code == 403, (name, resp.text)
        # as the kubelet deletes a mirror pod: grace period 0 (without it, deletion is graceful as for any pod)
        assert node.delete(f"{PODS}/static-web", params={"gracePeriodSeconds": "0"}).status_code == 200
    assert api.get(f"{PODS}/static-web").status_code == 404
    assert api.get(f"{PODS}/workload").status_code == 200


def test_node_binds_a_pod_to_itself_but_never_rewrites_its_labels(apiserver: Any, api: Any) -> None:
    """NodeRestriction does not let a kubelet change a pod's labels: a node that could would move pods into or
    out of Service and ReplicaSet selectors (found by an audit: any label of a pod bound to the node was
    replaced). The bind patch may set only ``spec.nodeName`` and the ``dockyard.dev/nodename`` label, both to
    the node itself."""
    node_name = apiserver.node_name
    body = pod("labelled", node_name)
    body["metadata"]["labels"] = {"app": "web", "pod-template-hash": "abc"}
    assert api.post(PODS, json=body).status_code == 201
    assert api.post(PODS, json=pod("unbound-one", "")).status_code == 201
    with apiserver.client(token=apiserver.node_token) as node:
        for name, patch in (
            ("labelled", {"metadata": {"labels": {"app": "hijacked", "pod-template-hash": "x"}}}),
            ("labelled", {"metadata": {"labels": {"app": None}}}),
            ("labelled", {"metadata": {"labels": {"dockyard.dev/nodename": "other-node"}}}),
            ("unbound-one", {"metadata": {"labels": {"extra": "1", "dockyard.dev/nodename": node_name}}}),
        ):
            resp = node.patch(f"{PODS}/{name}", json=patch, headers=MERGE)
            assert resp.status_code == 403, (patch, resp.text)
            assert "may only bind a pod to itself" in resp.json()["message"]
        bind = {"metadata": {"labels": {"dockyard.dev/nodename": node_name}}, "spec": {"nodeName": node_name}}
        assert node.patch(f"{PODS}/unbound-one", json=bind, headers=MERGE).status_code == 200
    assert api.get(f"{PODS}/labelled").json()["metadata"]["labels"] == {"app": "web", "pod-template-hash": "abc"}
    bound = api.get(f"{PODS}/unbound-one").json()
    assert bound["spec"]["nodeName"] == node_name and bound["metadata"]["labels"] == {
        "dockyard.dev/nodename": node_name
    }
