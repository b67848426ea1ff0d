"""The endpoints controller against the API server, the test playing the kubelet (pod IPs and readiness).

Semantics: kube-controller-manager's EndpointSlice controller (``pkg/controller/endpointslice``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dockyard.api import labels as well_known
from dockyard.controllers.endpoints import EndpointsController

from .conftest import Env, Tracking


def make_pod(env: Env, name: str, ip: str, *, ready: bool) -> None:
    env.create(
        "Pod",
        {
            "metadata": {"name": name, "labels": {"app": "web"}},
            "spec": {
                "containers": [{"name": "c", "image": "busybox", "ports": [{"name": "http", "containerPort": 8000}]}]
            },
        },
    )
    set_ready(env, name, ip, ready)


def set_ready(env: Env, name: str, ip: str, ready: bool) -> None:
    env.patch_status(
        "Pod",
        name,
        {
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    )


def endpoints(env: Env) -> dict[str, dict[str, Any]]:
    out = {}
    for es in env.list("EndpointSlice", labels=f"{well_known.SERVICE_NAME}=web"):
        for e in es.get("endpoints") or []:
            out[e["addresses"][0]] = e["conditions"]
    return out


def test_slices_follow_pod_readiness(env: Env, run_controller: Callable[..., Tracking]) -> None:
    run_controller(EndpointsController)
    make_pod(env, "a", "127.2.0.10", ready=True)
    make_pod(env, "b", "127.2.0.11", ready=False)
    svc = env.create(
        "Service",
        {
            "metadata": {"name": "web"},
            "spec": {"type": "LoadBalancer", "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]},
        },
    )
    env.wait(lambda: set(endpoints(env)) == {"127.2.0.10", "127.2.0.11"}, "both pods listed")
    assert endpoints(env)["127.2.0.10"]["ready"] is True
    assert endpoints(env)["127.2.0.11"]["ready"] is False
    (es,) = env.list("EndpointSlice", labels=f"{well_known.SERVICE_NAME}=web")
    assert es["ports"] == [{"name": "", "port": 8000, "protocol": "TCP"}]
    assert es["metadata"]["ownerReferences"][0]["uid"] == svc["metadata"]["uid"]
    env.wait_for(
        "Service",
        "web",
        lambda s: (
            ((s.get("status") or {}).get("loadBalancer") or {}).get("ingress")
            == [{"ip": "127.0.0.1", "ipMode": "Proxy"}]
        ),
        "the load balancer's ingress",
    )
    set_ready(env, "b", "127.2.0.11", True)
    env.wait(lambda: endpoints(env).get("127.2.0.11", {}).get("ready") is True, "b turns ready")
    set_ready(env, "a", "127.2.0.10", False)
    env.wait(lambda: endpoints(env).get("127.2.0.10", {}).get("ready") is False, "a turns unready")
    env.delete("Pod", "a")
    env.wait(lambda: set(endpoints(env)) == {"127.2.0.11"}, "a leaves the slice")
    env.delete("Service", "web")
    env.wait(lambda: not env.list("EndpointSlice", labels=f"{well_known.SERVICE_NAME}=web"), "slices removed")
