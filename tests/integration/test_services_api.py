"""kubectl 1.32 against the API server: Services and EndpointSlices (apply, get, describe; allocation; 422s)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from integration.test_apiserver_kubectl import KUBECTL, Kubectl

pytestmark = pytest.mark.skipif(not os.path.exists(KUBECTL), reason="kubectl not installed")

SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{name: http, port: 8080, targetPort: http}]
"""
SLICE = """
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abcde
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
endpoints:
- addresses: [127.2.0.5]
  conditions: {ready: true, serving: true, terminating: false}
ports: [{name: http, port: 8000, protocol: TCP}]
"""


@pytest.fixture
def kubectl(apiserver: Any, tmp_path: Path) -> Kubectl:
    return Kubectl(apiserver, tmp_path)


def test_get_and_describe_services_and_slices(kubectl: Kubectl) -> None:
    assert kubectl.apply(SERVICE, "svc") == "service/web created"
    assert kubectl.apply(SLICE, "slice") == "endpointslice.discovery.k8s.io/web-abcde created"
    out = kubectl.run("get", "svc,endpointslices").stdout
    lines = out.splitlines()
    assert re.match(r"NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE", lines[0]), out
    row = next(line for line in lines if line.startswith("service/web"))
    match = re.match(r"service/web\s+LoadBalancer\s+(127\.1\.\d+\.\d+)\s+\S+\s+8080:(3\d{4})/TCP\s+", row)
    assert match, out
    node_port = match.group(2)
    assert any(re.match(r"NAME\s+ADDRESSTYPE\s+PORTS\s+ENDPOINTS\s+AGE", line) for line in lines), out
    assert re.search(r"endpointslice.discovery.k8s.io/web-abcde\s+IPv4\s+8000\s+127.2.0.5\s+", out), out
    described = kubectl.run("describe", "svc", "web").stdout
    assert re.search(r"Endpoints:\s+127.2.0.5:8000", described), described
    assert re.search(rf"NodePort:\s+http\s+{node_port}/TCP", described), described
    # a re-apply that does not name the nodePort keeps it (the apiserver's patchAllocatedValues)
    kubectl.apply(SERVICE.replace("app: web}", "app: web, tier: x}"), "svc2")
    again = kubectl.run("get", "svc", "web", "-o", "jsonpath={.spec.ports[0].nodePort}").stdout
    assert again == node_port


def test_allocation_and_refusals_name_the_field(kubectl: Kubectl) -> None:
    kubectl.apply(
        SERVICE.replace("name: web}", "name: a}").replace("targetPort: http}", "targetPort: 80, nodePort: 30999}"), "a"
    )
    taken = kubectl.tmp / "b.yaml"
    taken.write_text(
        SERVICE.replace("name: web}", "name: b}").replace("targetPort: http}", "targetPort: 80, nodePort: 30999}")
    )
    proc = kubectl.run("apply", "-f", str(taken), check=False)
    assert proc.returncode != 0
    assert "spec.ports[0].nodePort" in proc.stderr and "provided port is already allocated" in proc.stderr
    affinity = kubectl.tmp / "c.yaml"
    affinity.write_text(SERVICE.replace("name: web}", "name: c}") + "  sessionAffinity: ClientIP\n")
    proc = kubectl.run("apply", "-f", str(affinity), check=False)
    assert proc.returncode != 0 and "spec.sessionAffinity" in proc.stderr, proc.stderr


def test_explain_reads_the_served_schemas(kubectl: Kubectl) -> None:
    assert "None only" in kubectl.run("explain", "svc.spec.sessionAffinity").stdout
    assert "conditions" in kubectl.run("explain", "endpointslices.endpoints").stdout
