"""Decoding kubectl's protobuf ``v1.Service`` bodies (``kubectl create service ...``).

The hex bodies are what kubectl 1.32 sent (``--v=9``), field numbers of k8s.io/api/core/v1/generated.proto.
"""

from __future__ import annotations

import pytest

from dockyard.apiserver import protobuf

# kubectl create service loadbalancer s --tcp=80:8080 --tcp=443:https
LOADBALANCER = bytes.fromhex(
    "6b3873000a0d0a027631120753657276696365128a010a1b0a017312001a0022002a003200380042005a080a036170701201731267"
    "0a1b0a0738302d38303830120354435018502207080010903f1a0028000a220a093434332d6874747073120354435018bb03220b08"
    "0110001a056874747073280012080a036170701201731a00220c4c6f616442616c616e6365723a00420052005a00600068001a020a"
    "001a002200"
)
# kubectl create service nodeport s --tcp=80:8080 --node-port=30080
NODEPORT = bytes.fromhex(
    "6b3873000a0d0a02763112075365727669636512640a1b0a017312001a0022002a003200380042005a080a0361707012017312410a"
    "1d0a0738302d38303830120354435018502207080010903f1a002880eb0112080a036170701201731a0022084e6f6465506f72743a"
    "00420052005a00600068001a020a001a002200"
)


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, value: bytes | int | str) -> bytes:
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    data = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(data)) + data


def envelope(raw: bytes) -> bytes:
    return protobuf.MAGIC + field(1, field(1, "v1") + field(2, "Service")) + field(2, raw)


def test_decode_kubectl_loadbalancer_service() -> None:
    assert protobuf.decode(LOADBALANCER) == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s", "labels": {"app": "s"}},  # the empty creationTimestamp is Go's zero time: omitted
        "spec": {
            "ports": [
                {"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080},
                {"name": "443-https", "protocol": "TCP", "port": 443, "targetPort": "https"},
            ],
            "selector": {"app": "s"},
            "type": "LoadBalancer",
        },
        "status": {"loadBalancer": {}},
    }


def test_decode_kubectl_nodeport_service() -> None:
    obj = protobuf.decode(NODEPORT)
    assert obj["spec"]["type"] == "NodePort"
    assert obj["spec"]["ports"] == [
        {"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080, "nodePort": 30080}
    ]


def test_decode_service_every_spec_field() -> None:
    port = field(1, "http") + field(2, "TCP") + field(6, "") + field(3, 80) + field(4, field(1, 0)) + field(5, 0)
    ingress = field(1, "10.0.0.1") + field(2, "lb") + field(3, "VIP") + field(4, field(1, 80) + field(2, "TCP"))
    condition = field(1, "Ready") + field(2, "True") + field(3, 2) + field(4, field(1, 1_700_000_000)) + field(5, "R")
    spec = (
        field(1, port)
        + field(3, "10.0.0.2")
        + field(18, "10.0.0.2")
        + field(4, "LoadBalancer")
        + field(5, "192.0.2.1")
        + field(7, "ClientIP")
        + field(8, "")
        + field(9, "10.0.0.0/8")
        + field(10, "")
        + field(11, "Local")
        + field(12, 31000)
        + field(13, 1)
        + field(14, field(1, field(1, 0)))
        + field(19, "IPv4")
        + field(17, "SingleStack")
        + field(20, 0)
        + field(21, "")
        + field(22, "Cluster")
        + field(23, "PreferClose")
    )
    status = field(1, field(1, ingress)) + field(2, condition)
    obj = protobuf.decode(envelope(field(2, spec) + field(3, status)))
    assert obj["spec"] == {
        # appProtocol is a pointer: present though empty; targetPort 0 is IntOrString's zero value (unset)
        "ports": [{"name": "http", "protocol": "TCP", "appProtocol": "", "port": 80}],
        "clusterIP": "10.0.0.2",
        "clusterIPs": ["10.0.0.2"],
        "type": "LoadBalancer",
        "externalIPs": ["192.0.2.1"],
        "sessionAffinity": "ClientIP",
        "loadBalancerSourceRanges": ["10.0.0.0/8"],
        "externalTrafficPolicy": "Local",
        "healthCheckNodePort": 31000,
        "publishNotReadyAddresses": True,
        "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 0}},
        "ipFamilies": ["IPv4"],
        "ipFamilyPolicy": "SingleStack",
        "allocateLoadBalancerNodePorts": False,  # *bool: an explicit false is kept
        "loadBalancerClass": "",
        "internalTrafficPolicy": "Cluster",
        "trafficDistribution": "PreferClose",
    }
    assert obj["status"] == {
        "loadBalancer": {
            "ingress": [
                {"ip": "10.0.0.1", "hostname": "lb", "ipMode": "VIP", "ports": [{"port": 80, "protocol": "TCP"}]}
            ]
        },
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "observedGeneration": 2,
                "lastTransitionTime": "2023-11-14T22:13:20Z",
                "reason": "R",
            }
        ],
    }


@pytest.mark.parametrize(
    "raw",
    [
        field(2, field(99, "x")),  # unknown ServiceSpec field
        field(2, field(1, field(7, "x"))),  # unknown ServicePort field
        field(2, field(1, field(4, field(4, 1)))),  # unknown IntOrString field
        field(2, field(1, field(4, field(1, 2)))),  # unknown IntOrString type
        field(3, field(1, field(1, field(9, "x")))),  # unknown LoadBalancerIngress field
        field(2, field(15, "x")),  # field 15 (topologyKeys) was removed from ServiceSpec
    ],
)
def test_unknown_service_fields_are_refused(raw: bytes) -> None:
    with pytest.raises(protobuf.Unsupported):
        protobuf.decode(envelope(raw))


# kubectl create deployment web --image=busybox:1 --replicas=0 --port=8080 -- sleep 3600
DEPLOYMENT = bytes.fromhex(
    "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412cd010a1f0a0377656212001a0022002a003200380042005a0a"
    "0a036170701203776562129b010800120c0a0a0a0361707012037765621a80010a1c0a0012001a0022002a003200380042005a0a0a"
    "036170701203776562126012420a0762757379626f78120962757379626f783a311a05736c6565701a04333630302a00320b0a0010"
    "0018903f22002a0042006a007200800100880100900100a201001a00320042004a0052005800600068008201008a01009a0100c201"
    "0022020a00280038001a0c0800100018002000280038001a002200"
)


def test_decode_kubectl_deployment() -> None:
    assert protobuf.decode(DEPLOYMENT) == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": 0,  # *int32: an explicit 0 is kept (omitting it would default to 1)
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "busybox",
                            "image": "busybox:1",
                            "command": ["sleep", "3600"],
                            "ports": [{"containerPort": 8080}],
                            "resources": {},
                        }
                    ]
                },
            },
            "strategy": {},
        },
        "status": {},
    }


def test_decode_deployment_strategy_resources_and_pointers() -> None:
    def quantity(name: str, value: str) -> bytes:
        return field(1, name) + field(2, field(1, value))

    resources = field(1, quantity("cpu", "500m")) + field(2, quantity("memory", "64Mi")) + field(3, field(1, "gpu"))
    container = (
        field(1, "c")
        + field(2, "img")
        + field(4, "-v")
        + field(6, field(1, "http") + field(2, 0) + field(3, 80) + field(4, "TCP") + field(5, ""))
        + field(8, resources)
        + field(24, "Always")
        + field(13, "/dev/termination-log")
        + field(20, "File")
        + field(14, "IfNotPresent")
        + field(18, 1)
    )
    pod = (
        field(20, container)
        + field(2, container)
        + field(3, "Always")
        + field(4, 0)
        + field(6, "ClusterFirst")
        + field(7, field(1, "disk") + field(2, "ssd"))
        + field(21, 0)
        + field(15, field(1, "regcred"))
        + field(19, "default-scheduler")
        + field(25, 0)
        + field(29, "")
        + field(30, 0)
        + field(40, resources)
    )
    rolling = field(1, field(1, 0) + field(2, 0)) + field(2, field(1, 1) + field(3, "25%"))
    selector = field(2, field(1, "tier") + field(2, "In") + field(3, "web"))
    spec = (
        field(2, selector)
        + field(3, field(2, pod))
        + field(4, field(1, "RollingUpdate") + field(2, rolling))
        + field(5, 3)
        + field(6, 0)
        + field(7, 1)
        + field(9, 600)
    )
    cond = field(1, "Available") + field(2, "True") + field(6, b"") + field(7, field(1, 1_700_000_000))
    status = field(1, 2) + field(2, 1) + field(7, 1) + field(6, cond) + field(8, 0)
    raw = field(2, spec) + field(3, status)
    obj = protobuf.decode(protobuf.MAGIC + field(1, field(1, "apps/v1") + field(2, "Deployment")) + field(2, raw))
    want_resources = {"limits": {"cpu": "500m"}, "requests": {"memory": "64Mi"}, "claims": [{"name": "gpu"}]}
    want_container = {
        "name": "c",
        "image": "img",
        "args": ["-v"],
        "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
        "resources": want_resources,
        "restartPolicy": "Always",
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
        "tty": True,
    }
    assert obj["spec"] == {
        "selector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]},
        "template": {
            "spec": {
                "initContainers": [want_container],
                "containers": [want_container],
                "restartPolicy": "Always",
                "terminationGracePeriodSeconds": 0,
                "dnsPolicy": "ClusterFirst",
                "nodeSelector": {"disk": "ssd"},
                "automountServiceAccountToken": False,
                "imagePullSecrets": [{"name": "regcred"}],
                "schedulerName": "default-scheduler",
                "priority": 0,
                "runtimeClassName": "",
                "enableServiceLinks": False,
                "resources": want_resources,
            }
        },
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}},
        "minReadySeconds": 3,
        "revisionHistoryLimit": 0,
        "paused": True,
        "progressDeadlineSeconds": 600,
    }
    assert obj["status"] == {
        "observedGeneration": 2,
        "replicas": 1,
        "readyReplicas": 1,
        "conditions": [{"type": "Available", "status": "True", "lastTransitionTime": "2023-11-14T22:13:20Z"}],
        "collisionCount": 0,
    }


@pytest.mark.parametrize(
    "raw",
    [
        field(2, field(3, field(2, field(1, b"")))),  # PodSpec.volumes: not decoded, refused
        field(2, field(3, field(2, field(2, field(7, field(1, "A")))))),  # Container.env: not decoded, refused
        field(2, field(3, field(2, field(2, field(10, b""))))),  # Container.livenessProbe: refused
        field(2, field(3, field(2, field(14, b"")))),  # PodSpec.securityContext: refused
        field(2, field(8, 1)),  # DeploymentSpec has no field 8
    ],
)
def test_unknown_deployment_fields_are_refused(raw: bytes) -> None:
    body = protobuf.MAGIC + field(1, field(1, "apps/v1") + field(2, "Deployment")) + field(2, raw)
    with pytest.raises(protobuf.Unsupported):
        protobuf.decode(body)
