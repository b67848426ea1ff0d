"""The container and sandbox spec hashes are pinned: an unchanged pod must hash as the agent's previous
release hashed it, else every running container is restarted after an upgrade (the kubelet keeps
``HashContainer`` stable for the same reason). The values were computed by the dict-based code at bc19a9c."""

from __future__ import annotations

from lightkube.resources.core_v1 import Pod

from dockyard.agent import podspec
from dockyard.client import objects

_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "web",
        "namespace": "default",
        "uid": "0f0e0d0c-0000-4000-8000-000000000001",
        "annotations": {"container.apparmor.security.beta.kubernetes.io/app": "runtime/default"},
    },
    "spec": {
        "hostname": "web-host",
        "shareProcessNamespace": True,
        "securityContext": {
            "runAsUser": 1000,
            "runAsGroup": 3000,
            "fsGroup": 2000,
            "supplementalGroups": [4000],
            "sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}],
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumes": [
            {"name": "data", "hostPath": {"path": "/srv/data", "type": "DirectoryOrCreate"}},
            {"name": "cache", "emptyDir": {"sizeLimit": "64Mi"}},
            {"name": "unused", "emptyDir": {}},
        ],
        "containers": [
            {
                "name": "app",
                "image": "127.0.0.1:5000/team/app:1.2.3",
                "imagePullPolicy": "IfNotPresent",
                "command": ["/bin/sh", "-c"],
                "args": ["exec httpd -f -p $(PORT)"],
                "workingDir": "/srv",
                "env": [{"name": "PORT", "value": "8080"}, {"name": "EMPTY", "value": ""}],
                "ports": [{"name": "http", "containerPort": 8080, "hostPort": 18080, "protocol": "TCP"}],
                "volumeMounts": [
                    {"name": "data", "mountPath": "/srv/data", "readOnly": True},
                    {"name": "cache", "mountPath": "/cache", "subPath": "app"},
                ],
                "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "100m"}},
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
                    "runAsNonRoot": True,
                },
                "readinessProbe": {"httpGet": {"path": "/", "port": 8080}},
                "stdin": True,
                "tty": True,
            },
            {
                "name": "side",
                "image": "busybox",
                "args": ["sleep", "3600"],
                "ports": [{"containerPort": 53, "hostPort": 10053, "protocol": "UDP"}],
                "volumeMounts": [{"name": "cache", "mountPath": "/cache"}],
            },
        ],
    },
}


def _pod() -> Pod:
    pod: Pod = objects.parse(_POD)
    return pod


def test_container_hashes_of_a_fixed_pod_are_pinned() -> None:
    pod = _pod()
    assert pod.spec is not None
    app, side = pod.spec.containers
    assert podspec.container_hash(app, pod.spec.volumes or [], pod.spec.securityContext, pod.metadata.annotations) == (
        "b0eb09c0"
    )
    assert podspec.container_hash(side, pod.spec.volumes or [], pod.spec.securityContext, pod.metadata.annotations) == (
        "4e578bb7"
    )


def test_sandbox_hash_of_a_fixed_pod_is_pinned() -> None:
    pod = _pod()
    assert pod.spec is not None
    assert podspec.sandbox_hash(pod.spec) == "bb4ad3ae"


def test_hash_of_a_minimal_pod_is_pinned() -> None:
    pod: Pod = objects.parse(
        {
            "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default", "uid": "u"},
            "spec": {"containers": [{"name": "web", "image": "busybox", "command": ["sleep", "1000"]}]},
        }
    )
    assert pod.spec is not None
    assert podspec.container_hash(pod.spec.containers[0], [], None, {}) == "76e9d412"
    minimal: Pod = objects.parse(
        {"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "web", "image": "busybox"}]}}
    )
    assert minimal.spec is not None
    assert podspec.sandbox_hash(minimal.spec) == "d5fb61d9"
