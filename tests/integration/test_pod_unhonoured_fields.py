"""Pod spec fields the node agent does not honour are 422 naming them, on Pods and workload templates alike.

Found by an audit: each of these was stored (201) and then ignored by the node agent (a
deadline never fired, ``/etc/hosts`` unchanged, a pod for another scheduler or a Windows node ran here, a
GPU limit ran unconstrained, a readiness gate was never waited for, a bad CPU quantity left the container
in CreateContainerConfigError, an SCTP port left the pod in ContainerCreating). Values that change nothing
on this node stay accepted: the defaults, ``nodeSelector`` ``kubernetes.io/os: linux``, preferred
affinities, tolerations, ``dnsPolicy: ClusterFirst``; ``lifecycle`` hooks the agent runs (``exec``, ``httpGet``
against the pod's loopback, ``sleep`` within the grace period), while those it could not (``tcpSocket``, which
Kubernetes never implemented, a non-loopback ``host``, ``stopSignal``) are refused.
"""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

NS = "default"
PODS = f"/api/v1/namespaces/{NS}/pods"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NS}/deployments"

REQUIRED_NODE_AFFINITY = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}]
        }
    }
}
PREFERRED_AFFINITY = {
    "nodeAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 1, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}}
        ]
    },
    "podAntiAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 1, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname", "labelSelector": {}}}
        ]
    },
}

# (what to set, the field the 422 names)
POD_FIELDS: list[tuple[dict[str, Any], str]] = [
    ({"activeDeadlineSeconds": 5}, "spec.activeDeadlineSeconds"),
    ({"hostAliases": [{"ip": "127.0.0.2", "hostnames": ["db"]}]}, "spec.hostAliases"),
    ({"dnsConfig": {"nameservers": ["1.1.1.1"]}}, "spec.dnsConfig"),
    ({"dnsPolicy": "None"}, "spec.dnsPolicy"),
    ({"dnsPolicy": "Bogus"}, "spec.dnsPolicy"),
    ({"nodeSelector": {"disk": "ssd"}}, "spec.nodeSelector"),
    ({"affinity": REQUIRED_NODE_AFFINITY}, "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"),
    ({"schedulerName": "other-scheduler"}, "spec.schedulerName"),
    ({"schedulingGates": [{"name": "example.com/wait"}]}, "spec.schedulingGates"),
    (
        {
            "topologySpreadConstraints": [
                {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule"}
            ]
        },
        "spec.topologySpreadConstraints[0].topologyKey",
    ),
    ({"os": {"name": "windows"}}, "spec.os.name"),
    ({"priorityClassName": "high"}, "spec.priorityClassName"),
    ({"priority": 1000}, "spec.priority"),
    ({"overhead": {"cpu": "100m"}}, "spec.overhead"),
    ({"readinessGates": [{"conditionType": "example.com/ready"}]}, "spec.readinessGates"),
    ({"enableServiceLinks": True}, "spec.enableServiceLinks"),
    ({"setHostnameAsFQDN": True}, "spec.setHostnameAsFQDN"),
    ({"volumes": [{"name": "v", "emptyDir": {}}, {"name": "v", "emptyDir": {}}]}, "spec.volumes[1].name"),
]
CONTAINER_FIELDS: list[tuple[dict[str, Any], str]] = [
    ({"lifecycle": {"postStart": {"tcpSocket": {"port": 80}}}}, "lifecycle.postStart.tcpSocket"),
    ({"lifecycle": {"preStop": {"tcpSocket": {"port": 80}}}}, "lifecycle.preStop.tcpSocket"),
    ({"lifecycle": {"preStop": {}}}, "lifecycle.preStop"),
    (
        {"lifecycle": {"preStop": {"exec": {"command": ["true"]}, "sleep": {"seconds": 1}}}},
        "lifecycle.preStop",
    ),
    ({"lifecycle": {"postStart": {"exec": {}}}}, "lifecycle.postStart.exec.command"),
    ({"lifecycle": {"preStop": {"httpGet": {"port": 80, "host": "10.0.0.1"}}}}, "lifecycle.preStop.httpGet.host"),
    ({"lifecycle": {"preStop": {"httpGet": {"port": "admin"}}}}, "lifecycle.preStop.httpGet.port"),
    ({"lifecycle": {"preStop": {"httpGet": {"port": 70000}}}}, "lifecycle.preStop.httpGet.port"),
    ({"lifecycle": {"preStop": {"sleep": {"seconds": 0}}}}, "lifecycle.preStop.sleep.seconds"),
    ({"lifecycle": {"postStart": {"sleep": {"seconds": 31}}}}, "lifecycle.postStart.sleep.seconds"),
    ({"lifecycle": {"stopSignal": "SIGUSR1"}}, "lifecycle.stopSignal"),
    ({"terminationMessagePath": "tmp/msg"}, "terminationMessagePath"),
    ({"terminationMessagePolicy": "Bogus"}, "terminationMessagePolicy"),
    ({"imagePullPolicy": "Sometimes"}, "imagePullPolicy"),
    ({"restartPolicy": "Always"}, "restartPolicy"),
    ({"resources": {"limits": {"nvidia.com/gpu": "1"}}}, "resources.limits[nvidia.com/gpu]"),
    ({"resources": {"limits": {"ephemeral-storage": "1Gi"}}}, "resources.limits[ephemeral-storage]"),
    ({"resources": {"requests": {"hugepages-2Mi": "2Mi"}}}, "resources.requests[hugepages-2Mi]"),
    ({"resources": {"limits": {"cpu": "abc"}}}, "resources.limits[cpu]"),
    ({"resources": {"requests": {"memory": "-1Mi"}}}, "resources.requests[memory]"),
    ({"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}, "resources.requests"),
    ({"resources": {"claims": [{"name": "gpu"}]}}, "resources.claims"),
    ({"resizePolicy": [{"resourceName": "cpu", "restartPolicy": "NotRequired"}]}, "resizePolicy"),
    ({"volumeDevices": [{"name": "v", "devicePath": "/dev/xvda"}]}, "volumeDevices"),
    ({"ports": [{"containerPort": 80, "protocol": "SCTP"}]}, "ports[0].protocol"),
    ({"ports": [{"containerPort": 80, "protocol": "tcp"}]}, "ports[0].protocol"),
    (
        {"ports": [{"containerPort": 80, "name": "web"}, {"containerPort": 81, "name": "web"}]},
        "ports[1].name",
    ),
    ({"volumeMounts": [{"name": "v", "mountPath": "/v", "subPathExpr": "$(POD)"}]}, "volumeMounts[0].subPathExpr"),
    (
        {"volumeMounts": [{"name": "v", "mountPath": "/v", "mountPropagation": "HostToContainer"}]},
        "volumeMounts[0].mountPropagation",
    ),
    (
        {"volumeMounts": [{"name": "v", "mountPath": "/v", "readOnly": True, "recursiveReadOnly": "Enabled"}]},
        "volumeMounts[0].recursiveReadOnly",
    ),
    (
        {"volumeMounts": [{"name": "v", "mountPath": "/v"}, {"name": "v", "mountPath": "/v", "readOnly": True}]},
        "volumeMounts[1].mountPath",
    ),
]


def _pod(name: str, spec: dict[str, Any] | None = None, container: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "containers": [{"name": "c", "image": "busybox", **(container or {})}],
        "volumes": [{"name": "v", "emptyDir": {}}],
    }
    body.update(spec or {})
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": body}


def _deployment(pod: dict[str, Any]) -> dict[str, Any]:
    template = {"metadata": {"labels": {"app": "d"}}, "spec": copy.deepcopy(pod["spec"])}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "d"}}, "template": template},
    }


def _fields(resp: httpx.Response) -> list[str]:
    assert resp.status_code == 422, resp.text
    return [c["field"] for c in resp.json()["details"]["causes"]]


@pytest.mark.parametrize("spec, field", POD_FIELDS, ids=[f for _, f in POD_FIELDS])
def test_pod_fields_the_agent_does_not_honour_are_refused(api: httpx.Client, spec: dict[str, Any], field: str) -> None:
    pod = _pod("unhonoured", spec=spec)
    assert field in _fields(api.post(PODS, json=pod))
    assert api.get(f"{PODS}/unhonoured").status_code == 404
    assert f"spec.template.{field}" in _fields(api.post(DEPLOYMENTS, json=_deployment(pod)))


@pytest.mark.parametrize(
    "container, field", CONTAINER_FIELDS, ids=[f"{f}-{i}" for i, (_, f) in enumerate(CONTAINER_FIELDS)]
)
def test_container_fields_the_agent_does_not_honour_are_refused(
    api: httpx.Client, container: dict[str, Any], field: str
) -> None:
    pod = _pod("unhonoured", container=container)
    assert f"spec.containers[0].{field}" in _fields(api.post(PODS, json=pod))
    assert f"spec.template.spec.containers[0].{field}" in _fields(api.post(DEPLOYMENTS, json=_deployment(pod)))


def test_values_that_change_nothing_on_this_node_stay_accepted(api: httpx.Client) -> None:
    spec = {
        "dnsPolicy": "ClusterFirst",
        "schedulerName": "default-scheduler",
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "affinity": PREFERRED_AFFINITY,
        "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}],
        "topologySpreadConstraints": [
            {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule"},
            {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway"},
        ],
        "os": {"name": "linux"},
        "enableServiceLinks": False,
        "setHostnameAsFQDN": False,
    }
    container = {
        "imagePullPolicy": "IfNotPresent",
        "terminationMessagePath": "/tmp/why",
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "resources": {"requests": {"cpu": "100m", "memory": "32Mi"}, "limits": {"cpu": "1", "memory": "64Mi"}},
        "ports": [{"containerPort": 80, "protocol": "TCP", "name": "web"}, {"containerPort": 53, "protocol": "UDP"}],
        "volumeMounts": [{"name": "v", "mountPath": "/v", "mountPropagation": "None"}],
        "lifecycle": {
            "postStart": {"httpGet": {"path": "/started", "port": "web", "scheme": "HTTPS"}},
            "preStop": {"sleep": {"seconds": 30}},
        },
    }
    resp = api.post(PODS, json=_pod("accepted", spec=spec, container=container))
    assert resp.status_code == 201, resp.text
    assert api.post(DEPLOYMENTS, json=_deployment(_pod("accepted", spec=spec, container=container))).status_code == 201
