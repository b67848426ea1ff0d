"""``fieldValidation`` for the built-in kinds (core v1, apps/v1, discovery, coordination), over HTTPS and kubectl.

Kubernetes decodes a built-in object into its Go types, so a field those types lack is never stored: under
``Strict`` it is a 400 (``strict decoding error: unknown field "spec.bogusField"``, every such field listed),
under ``Warn`` it is dropped with a ``Warning: 299 - "unknown field \\"spec.bogusField\\""`` header per field,
under ``Ignore`` it is dropped silently. dockyard's own default (no parameter) is a 422 naming each field, as
for its own kinds. kubectl 1.27+ sends ``Strict`` for create, apply and replace.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from .conftest import ApiServer

PODS = "/api/v1/namespaces/default/pods"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
SERVICES = "/api/v1/namespaces/default/services"
MERGE = {"Content-Type": "application/merge-patch+json"}
STRATEGIC = {"Content-Type": "application/strategic-merge-patch+json"}
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


def _pod(name: str = "p", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec},
    }


def _deployment(name: str = "d", **template_spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}], **template_spec},
            },
        },
    }


def _bogus_pod() -> dict[str, Any]:
    pod = _pod(bogusField=1)
    pod["spec"]["containers"][0]["alsoBogus"] = "x"
    pod["metadata"]["nope"] = True
    return pod


BOGUS_POD_FIELDS = ["metadata.nope", "spec.bogusField", "spec.containers[0].alsoBogus"]


def test_strict_refuses_every_unknown_field_of_a_pod(api: httpx.Client) -> None:
    resp = api.post(PODS, json=_bogus_pod(), params={"fieldValidation": "Strict"})
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["reason"] == "BadRequest"
    assert body["message"].startswith('Pod in version "v1" cannot be handled as a Pod: strict decoding error: ')
    listed = body["message"].split("strict decoding error: ", 1)[1].split(", ")
    assert sorted(listed) == sorted(f'unknown field "{f}"' for f in BOGUS_POD_FIELDS), body["message"]
    assert api.get(f"{PODS}/p").status_code == 404


def test_strict_message_is_the_apiservers_for_one_field(api: httpx.Client) -> None:
    resp = api.post(PODS, json=_pod(bogusField=1), params={"fieldValidation": "Strict"})
    assert resp.status_code == 400, resp.text
    assert resp.json()["message"] == (
        'Pod in version "v1" cannot be handled as a Pod: strict decoding error: unknown field "spec.bogusField"'
    )


def test_warn_drops_unknown_fields_with_one_warning_each(api: httpx.Client) -> None:
    resp = api.post(PODS, json=_bogus_pod(), params={"fieldValidation": "Warn"})
    assert resp.status_code == 201, resp.text
    assert sorted(resp.headers.get_list("warning")) == sorted(
        '299 - "unknown field \\"' + f + '\\""' for f in BOGUS_POD_FIELDS
    )
    stored = api.get(f"{PODS}/p").json()
    assert "bogusField" not in stored["spec"] and "alsoBogus" not in stored["spec"]["containers"][0]
    assert "nope" not in stored["metadata"]
    assert stored["spec"]["containers"][0] == {"name": "c", "image": "busybox"}


def test_ignore_drops_unknown_fields_silently(api: httpx.Client) -> None:
    resp = api.post(PODS, json=_bogus_pod(), params={"fieldValidation": "Ignore"})
    assert resp.status_code == 201, resp.text
    assert "warning" not in resp.headers
    stored = api.get(f"{PODS}/p").json()
    assert "bogusField" not in stored["spec"] and "alsoBogus" not in stored["spec"]["containers"][0]


def test_without_the_parameter_unknown_fields_are_422_naming_them(api: httpx.Client) -> None:
    resp = api.post(PODS, json=_bogus_pod())
    assert resp.status_code == 422, resp.text
    fields = sorted(c["field"] for c in resp.json()["details"]["causes"])
    assert fields == sorted(BOGUS_POD_FIELDS)
    assert api.get(f"{PODS}/p").status_code == 404


def test_deployment_template_unknown_fields(api: httpx.Client) -> None:
    deploy = _deployment(bogusField=1)
    deploy["spec"]["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "bogus": 2}}
    fields = ["spec.strategy.rollingUpdate.bogus", "spec.template.spec.bogusField"]
    strict = api.post(DEPLOYMENTS, json=deploy, params={"fieldValidation": "Strict"})
    assert strict.status_code == 400, strict.text
    assert strict.json()["message"].startswith(
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
    )
    assert all(f'unknown field "{f}"' in strict.json()["message"] for f in fields), strict.text
    warned = api.post(DEPLOYMENTS, json=deploy, params={"fieldValidation": "Warn"})
    assert warned.status_code == 201, warned.text
    assert len(warned.headers.get_list("warning")) == 2
    spec = api.get(f"{DEPLOYMENTS}/d").json()["spec"]
    assert "bogusField" not in spec["template"]["spec"]
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 1}


def test_update_and_patches_follow_field_validation(api: httpx.Client) -> None:
    assert api.post(PODS, json=_pod()).status_code == 201
    current = api.get(f"{PODS}/p").json()
    put = copy.deepcopy(current)
    put["spec"]["bogusField"] = 1
    strict = api.put(f"{PODS}/p", json=put, params={"fieldValidation": "Strict"})
    assert strict.status_code == 400 and 'unknown field "spec.bogusField"' in strict.json()["message"], strict.text
    for headers in (MERGE, STRATEGIC):
        patch = {"spec": {"bogusField": 1}}
        strict = api.patch(f"{PODS}/p", json=patch, headers=headers, params={"fieldValidation": "Strict"})
        assert strict.status_code == 400, strict.text
        assert 'unknown field "spec.bogusField"' in strict.json()["message"]
        warned = api.patch(f"{PODS}/p", json=patch, headers=headers, params={"fieldValidation": "Warn"})
        assert warned.status_code == 200, warned.text
        assert warned.headers.get_list("warning") == ['299 - "unknown field \\"spec.bogusField\\""']
        assert "bogusField" not in api.get(f"{PODS}/p").json()["spec"]


def test_status_writes_drop_unknown_status_fields(api: httpx.Client) -> None:
    assert api.post(PODS, json=_pod()).status_code == 201
    resp = api.patch(
        f"{PODS}/p/status",
        json={"status": {"phase": "Running", "bogusStatus": 1}},
        headers=MERGE,
        params={"fieldValidation": "Warn"},
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers.get_list("warning") == ['299 - "unknown field \\"status.bogusStatus\\""']
    assert api.get(f"{PODS}/p").json()["status"] == {"phase": "Running"}


def test_other_built_in_kinds(api: httpx.Client) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"a": "1"}, "bogus": 1}
    strict = api.post(CONFIGMAPS, json=cm, params={"fieldValidation": "Strict"})
    assert strict.status_code == 400 and 'unknown field "bogus"' in strict.json()["message"], strict.text
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s"},
        "spec": {"selector": {"app": "a"}, "ports": [{"port": 80, "bogusPort": 1}]},
    }
    strict = api.post(SERVICES, json=svc, params={"fieldValidation": "Strict"})
    assert strict.status_code == 400 and 'unknown field "spec.ports[0].bogusPort"' in strict.json()["message"]


def test_real_kubernetes_fields_are_not_unknown(api: httpx.Client) -> None:
    """Fields of the Kubernetes v1.32 types that dockyard's documented schema subset does not list are kept."""
    pod = _pod(
        terminationGracePeriodSeconds=5,
        dnsPolicy="ClusterFirst",
        tolerations=[{"key": "k", "operator": "Exists", "effect": "NoSchedule"}],
        securityContext={"runAsNonRoot": False},
    )
    container = pod["spec"]["containers"][0]
    container.update(
        imagePullPolicy="IfNotPresent",
        terminationMessagePath="/dev/termination-log",
        terminationMessagePolicy="File",
        stdin=False,
        tty=False,
    )
    pod["metadata"]["annotations"] = {"a": "b"}
    resp = api.post(PODS, json=pod, params={"fieldValidation": "Strict"})
    assert resp.status_code == 201, resp.text
    stored = api.get(f"{PODS}/p").json()
    assert stored["spec"]["tolerations"] == pod["spec"]["tolerations"]
    assert stored["spec"]["containers"][0]["terminationMessagePolicy"] == "File"
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm"},
        "data": {"a": "1"},
        "binaryData": {"b": "AA=="},
        "immutable": True,
    }
    assert api.post(CONFIGMAPS, json=cm, params={"fieldValidation": "Strict"}).status_code == 201


# ------------------------------------------------------------------ kubectl (Strict by default)


def _kubectl(server: ApiServer, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, KUBECONFIG=str(server.kubeconfig(tmp / "kubeconfig")), HOME=str(tmp))
    return subprocess.run(
        [KUBECTL, f"--cache-dir={tmp / 'cache'}", *args], env=env, capture_output=True, text=True, timeout=60
    )


needs_kubectl = pytest.mark.skipif(not os.path.exists(KUBECTL), reason="kubectl not installed")


@needs_kubectl
def test_kubectl_create_and_apply_refuse_unknown_fields(apiserver: ApiServer, tmp_path: Path) -> None:
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(yaml.safe_dump(_pod(bogusField=1)))
    for verb in ("create", "apply"):
        out = _kubectl(apiserver, tmp_path, verb, "-f", str(manifest))
        assert out.returncode != 0, out
        assert 'strict decoding error: unknown field "spec.bogusField"' in out.stderr, out.stderr
    with apiserver.client() as api:
        assert api.get(f"{PODS}/p").status_code == 404
    out = _kubectl(apiserver, tmp_path, "create", "--validate=warn", "-f", str(manifest))
    assert out.returncode == 0, out
    assert 'unknown field "spec.bogusField"' in out.stderr, out.stderr
    with apiserver.client() as api:
        assert "bogusField" not in api.get(f"{PODS}/p").json()["spec"]


@needs_kubectl
def test_kubectl_applies_the_example_and_test_manifests(apiserver: ApiServer, tmp_path: Path) -> None:
    """``examples/hello/manifests.yaml`` and the kubectl suites' manifests apply under kubectl's Strict default."""
    from . import test_apiserver_kubectl, test_kubectl_compat

    root = Path(__file__).resolve().parents[2]
    example = (root / "examples" / "hello" / "manifests.yaml").read_text()
    for key, value in {
        "${GIT_URI}": "https://example.com/hello.git",
        "${REGISTRY}": "127.0.0.1:5000",
        "${HOST_PORT}": "18080",
    }.items():
        example = example.replace(key, value)
    texts = {
        "example": example,
        **{f"compat-{k}": v for k, v in test_kubectl_compat.MANIFESTS.items() if k != "push"},
        "pod": test_apiserver_kubectl.POD,
        "deployment": test_apiserver_kubectl.DEPLOYMENT,
    }
    for name, text in texts.items():
        ns = f"m-{name}"[:63].lower()
        assert _kubectl(apiserver, tmp_path, "create", "namespace", ns).returncode == 0
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        for _ in range(2):  # create, then re-apply (a strategic merge patch)
            out = _kubectl(apiserver, tmp_path, "apply", "-n", ns, "-f", str(path))
            assert out.returncode == 0, f"{name}: {out.stdout}\n{out.stderr}"
            assert "unknown field" not in out.stderr, out.stderr
