"""Pod Security Admission against the real API server over HTTPS: kube-apiserver's checks and words."""

from __future__ import annotations

from typing import Any

import httpx

from dockyard.api import buildpod, podsecurity

PODS = "/api/v1/namespaces/{ns}/pods"


def _namespace(api: httpx.Client, name: str, **labels: str) -> None:
    r = api.post(
        "/api/v1/namespaces",
        json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}},
    )
    assert r.status_code == 201, r.text


def _pod(name: str, **spec: Any) -> dict[str, Any]:
    container = {"name": "c", "image": "busybox", **spec.pop("container", {})}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": [container], **spec}}


def test_host_root_pod_is_refused_in_kube_apiservers_words(api: httpx.Client) -> None:
    pod = _pod(
        "x",
        volumes=[{"name": "root", "hostPath": {"path": "/"}}],
        container={"securityContext": {"privileged": True}, "volumeMounts": [{"name": "root", "mountPath": "/host"}]},
    )
    r = api.post(PODS.format(ns="default"), json=pod)
    assert r.status_code == 403, r.text
    status = r.json()
    assert status["reason"] == "Forbidden"
    assert status["message"] == (
        'pods "x" is forbidden: violates PodSecurity "baseline:latest": '
        'hostPath volumes (volume "root"), '
        'privileged (container "c" must not set securityContext.privileged=true)'
    )
    assert api.get(PODS.format(ns="default") + "/x").status_code == 404


def test_sys_admin_is_refused(api: httpx.Client) -> None:
    pod = _pod("caps", container={"securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}})
    r = api.post(PODS.format(ns="default"), json=pod)
    assert r.status_code == 403, r.text
    assert r.json()["message"].endswith(
        'violates PodSecurity "baseline:latest": non-default capabilities '
        '(container "c" must not include "SYS_ADMIN" in securityContext.capabilities.add)'
    )


def test_patch_and_update_into_a_violation_are_refused(api: httpx.Client) -> None:
    assert api.post(PODS.format(ns="default"), json=_pod("later")).status_code == 201
    r = api.patch(
        PODS.format(ns="default") + "/later",
        json={
            "spec": {
                "containers": [
                    {"name": "c", "image": "busybox", "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}}
                ]
            }
        },
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert r.status_code == 403, r.text
    assert 'must not include "NET_ADMIN" in securityContext.capabilities.add' in r.json()["message"]
    stored = api.get(PODS.format(ns="default") + "/later").json()
    stored["spec"]["volumes"] = [{"name": "h", "hostPath": {"path": "/etc"}}]
    assert api.put(PODS.format(ns="default") + "/later", json=stored).status_code == 403
    # labels-only writes (the node agent's binding) are not evaluated
    r = api.patch(
        PODS.format(ns="default") + "/later",
        json={"metadata": {"labels": {"a": "b"}}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert r.status_code == 200, r.text


def test_privileged_namespace_admits_what_baseline_refuses(api: httpx.Client) -> None:
    _namespace(api, "priv", **{podsecurity.ENFORCE_LEVEL_LABEL: "privileged"})
    pod = _pod(
        "x",
        volumes=[{"name": "root", "hostPath": {"path": "/"}}],
        container={"ports": [{"containerPort": 80, "hostPort": 18080}]},
    )
    assert api.post(PODS.format(ns="priv"), json=pod).status_code == 201


def test_restricted_namespace_lists_every_restricted_violation(api: httpx.Client) -> None:
    _namespace(
        api, "strict", **{podsecurity.ENFORCE_LEVEL_LABEL: "restricted", podsecurity.ENFORCE_VERSION_LABEL: "v1.32"}
    )
    r = api.post(PODS.format(ns="strict"), json=_pod("plain"))
    assert r.status_code == 403, r.text
    assert r.json()["message"] == (
        'pods "plain" is forbidden: violates PodSecurity "restricted:latest": '
        'allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), '
        'unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), '
        'runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), '
        'seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to '
        '"RuntimeDefault" or "Localhost")'
    )
    good = _pod(
        "good",
        securityContext={"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        container={"securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}},
    )
    assert api.post(PODS.format(ns="strict"), json=good).status_code == 201


def test_bad_label_values_are_invalid(api: httpx.Client) -> None:
    r = api.post(
        "/api/v1/namespaces",
        json={
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "bad", "labels": {podsecurity.ENFORCE_LEVEL_LABEL: "lenient"}},
        },
    )
    assert r.status_code == 422, r.text
    cause = r.json()["details"]["causes"][0]
    assert cause["field"] == "metadata.labels[pod-security.kubernetes.io/enforce]"
    assert cause["message"] == 'Invalid value: "lenient": must be one of privileged, baseline, restricted'
    r = api.patch(
        "/api/v1/namespaces/default",
        json={"metadata": {"labels": {podsecurity.WARN_VERSION_LABEL: "1.30"}}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert r.status_code == 422, r.text
    assert "metadata.labels[pod-security.kubernetes.io/warn-version]" in r.text


def test_warn_label_sends_a_warning_header(api: httpx.Client) -> None:
    _namespace(api, "warned", **{podsecurity.WARN_LEVEL_LABEL: "restricted"})
    r = api.post(PODS.format(ns="warned"), json=_pod("p"))
    assert r.status_code == 201, r.text
    warnings = r.headers.get_list("warning")
    assert len(warnings) == 1 and warnings[0].startswith(
        '299 - "would violate PodSecurity \\"restricted:latest\\": allowPrivilegeEscalation != false'
    )
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": _pod("t")["spec"]},
        },
    }
    r = api.post("/apis/apps/v1/namespaces/warned/deployments", json=deployment)
    assert r.status_code == 201, r.text
    assert "would violate PodSecurity" in r.headers.get("warning", "")


def test_deployment_with_a_refused_template_is_stored_without_enforcement(api: httpx.Client) -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": _pod("t", volumes=[{"name": "root", "hostPath": {"path": "/"}}])["spec"],
            },
        },
    }
    assert api.post("/apis/apps/v1/namespaces/default/deployments", json=deployment).status_code == 201


def _build_pod(namespace: str) -> dict[str, Any]:
    return buildpod.build_pod(
        {
            "apiVersion": "dockyard.dev/v1alpha1",
            "kind": "Build",
            "metadata": {
                "name": "hello-1",
                "namespace": namespace,
                "uid": "u-1",
                "labels": {buildpod.BUILDCONFIG_LABEL: "hello"},
            },
            "spec": {"source": {"type": "Git"}},
        }
    )


def test_build_pods_pass_in_baseline_and_restricted_namespaces(api: httpx.Client) -> None:
    _namespace(api, "strict", **{podsecurity.ENFORCE_LEVEL_LABEL: "restricted"})
    for ns in ("default", "strict"):
        r = api.post(PODS.format(ns=ns), json=_build_pod(ns))
        assert r.status_code == 201, r.text
        assert r.json()["spec"]["runtimeClassName"] == podsecurity.BUILD_RUNTIME_CLASS


def test_the_build_runtime_class_cannot_be_borrowed(api: httpx.Client) -> None:
    pod = _pod(
        "sneaky",
        runtimeClassName=podsecurity.BUILD_RUNTIME_CLASS,
        volumes=[{"name": "root", "hostPath": {"path": "/"}}],
    )
    pod["metadata"]["labels"] = {buildpod.BUILD_POD_LABEL: "true"}
    r = api.post(PODS.format(ns="default"), json=pod)
    assert r.status_code == 422, r.text
    assert r.json()["details"]["causes"][0]["field"] == "spec.runtimeClassName"
    real = _build_pod("default")
    real["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    assert api.post(PODS.format(ns="default"), json=real).status_code == 422
    other = _pod("other", runtimeClassName="kata")
    r = api.post(PODS.format(ns="default"), json=other)
    assert r.status_code == 422 and 'Unsupported value: "kata"' in r.json()["message"]
    stored = _build_pod("default")
    del stored["metadata"]["ownerReferences"]  # no Build "u-1": the collector would delete the pod at once
    assert api.post(PODS.format(ns="default"), json=stored).status_code == 201
    r = api.patch(
        PODS.format(ns="default") + "/hello-1-build",
        json={"metadata": {"labels": {buildpod.BUILD_POD_LABEL: None}}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert r.status_code == 422, r.text


def test_server_default_level_is_configurable(apiserver_factory: Any) -> None:
    server = apiserver_factory(pod_security="restricted")
    with server.client() as api:
        r = api.post(PODS.format(ns="default"), json=_pod("p"))
        assert r.status_code == 403 and '"restricted:latest"' in r.json()["message"]
