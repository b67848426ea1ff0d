"""The endpoints controller: keeps each Service's EndpointSlices from the pods it selects.

As kube-controller-manager's EndpointSlice controller (``pkg/controller/endpointslice``,
``staging/src/k8s.io/endpointslice/reconciler.go``): for every Service with a ``selector``, the pods it
selects that have a ``status.podIP`` and are not ``Succeeded``/``Failed`` become endpoints with

- ``conditions.ready``: the pod's ``Ready`` condition is True and it is not terminating;
- ``conditions.serving``: the pod's ``Ready`` condition is True (terminating or not);
- ``conditions.terminating``: the pod has a ``deletionTimestamp``;
- ``targetRef`` the pod, ``nodeName`` its node.

Ports are the Service's ports with ``targetPort`` resolved per pod (a name through the pod's
``containers[].ports[].name``, as ``podutil.FindPort``); pods whose ports resolve alike share a slice, named
``<service>-<hash of the ports>``, labelled ``kubernetes.io/service-name`` and
``endpointslice.kubernetes.io/managed-by``, owned by the Service. Slices of other managers are left alone;
a Service without a selector gets none (its slices are the user's).

For ``type: LoadBalancer`` the controller also writes ``status.loadBalancer.ingress: [{ip: 127.0.0.1}]``, as
k3s's ServiceLB controller writes the node's address: on one machine the node agent's proxy is the load balancer
(see :mod:`dockyard.agent.services`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from typing import Any

from lightkube import ApiError
from lightkube.models.core_v1 import ObjectReference
from lightkube.models.discovery_v1 import Endpoint, EndpointConditions, EndpointPort
from lightkube.models.meta_v1 import ObjectMeta, OwnerReference
from lightkube.resources.core_v1 import Pod, Service
from lightkube.resources.discovery_v1 import EndpointSlice

from dockyard.api import labels as well_known
from dockyard.api import phases, podports, services
from dockyard.client import objects, resources, runtime

log = logging.getLogger(__name__)

ADDRESS_TYPE = "IPv4"
LOAD_BALANCER_IP = podports.LOOPBACK
"""The ingress address of every LoadBalancer: the proxy listens on 127.0.0.1 (k3s ServiceLB: the node's IP)."""


def _selects(selector: dict[str, str], pod: Pod) -> bool:
    labels = (pod.metadata.labels if pod.metadata else None) or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _ready(pod: Pod) -> bool:
    conditions = (pod.status.conditions if pod.status else None) or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def _find_port(pod: Pod, target: int | str | None, protocol: str) -> int | None:
    """``podutil.FindPort``: a number is itself; a name is the first container port of that name and protocol."""
    if isinstance(target, int):
        return target
    for container in (pod.spec.containers if pod.spec else None) or []:
        for port in container.ports or []:
            if port.name == target and (port.protocol or podports.DEFAULT_PROTOCOL) == protocol:
                return int(port.containerPort)
    return None


def _slice_name(service: str, ports: tuple[tuple[str, int, str], ...]) -> str:
    digest = hashlib.sha256(json.dumps(ports).encode()).hexdigest()[:5]
    return f"{service[:57]}-{digest}"


def desired_slices(service: Service, pods: Iterable[Pod]) -> list[EndpointSlice]:
    """The EndpointSlices ``service`` should have, given the pods of its namespace (typed, lightkube).

    Returns:
        One slice per distinct set of resolved ports (one slice, possibly without endpoints, when no pod is
        selected). Endpoints are sorted by address, so equal inputs give equal slices.
    """
    meta = service.metadata
    assert meta is not None and meta.name
    spec = service.spec
    selector = dict((spec.selector if spec else None) or {})
    svc_ports = (spec.ports if spec else None) or []
    groups: dict[tuple[tuple[str, int, str], ...], list[Endpoint]] = {}
    for pod in pods:
        status = pod.status
        if not _selects(selector, pod) or status is None or not status.podIP:
            continue
        if (status.phase or "") in phases.POD_TERMINAL:
            continue
        terminating = bool(pod.metadata and pod.metadata.deletionTimestamp)
        serving = _ready(pod)
        resolved = []
        for port in svc_ports:
            protocol = port.protocol or services.TCP
            number = _find_port(pod, port.targetPort if port.targetPort is not None else port.port, protocol)
            if number is not None:
                resolved.append((port.name or "", number, protocol))
        assert pod.metadata is not None
        endpoint = Endpoint(
            addresses=[status.podIP],
            conditions=EndpointConditions(ready=serving and not terminating, serving=serving, terminating=terminating),
            nodeName=pod.spec.nodeName if pod.spec else None,
            targetRef=ObjectReference(
                kind="Pod", namespace=pod.metadata.namespace, name=pod.metadata.name, uid=pod.metadata.uid
            ),
        )
        groups.setdefault(tuple(resolved), []).append(endpoint)
    if not groups:
        groups[()] = []
    owner = resources.owner_reference(service)
    out = []
    for ports, endpoints in sorted(groups.items()):
        out.append(
            EndpointSlice(
                metadata=ObjectMeta(
                    name=_slice_name(meta.name, ports),
                    namespace=meta.namespace,
                    labels={
                        well_known.SERVICE_NAME: meta.name,
                        well_known.ENDPOINTSLICE_MANAGED_BY: well_known.ENDPOINTSLICE_CONTROLLER,
                    },
                    ownerReferences=[OwnerReference(**owner)],
                ),
                addressType=ADDRESS_TYPE,
                endpoints=sorted(endpoints, key=lambda e: e.addresses[0]),
                ports=[EndpointPort(name=n, port=p, protocol=proto) for n, p, proto in ports],
            )
        )
    return out


def _comparable(es: dict[str, Any]) -> dict[str, Any]:
    meta = es.get("metadata") or {}
    return {
        "labels": meta.get("labels") or {},
        "owners": [r.get("uid") for r in meta.get("ownerReferences") or []],
        "addressType": es.get("addressType"),
        "endpoints": es.get("endpoints") or [],
        "ports": es.get("ports") or [],
    }


class EndpointsController(runtime.Controller):
    """Reconciles Services (key ``namespace/name``) into their EndpointSlices."""

    name = "endpoints"
    component = "endpointslice-controller"

    def watches(self) -> list[runtime.Watch]:
        def pod_keys(_event: str, pod: Pod) -> list[str]:
            # every Service of the namespace: a pod whose labels changed may have left one
            ns = pod.metadata.namespace if pod.metadata else None
            informer = self.informers.get("Service")
            return [resources.key(s) for s in (informer.items() if informer else []) if s.metadata.namespace == ns]

        def slice_keys(_event: str, es: EndpointSlice) -> list[str]:
            labels = (es.metadata.labels if es.metadata else None) or {}
            name = labels.get(well_known.SERVICE_NAME)
            return [f"{es.metadata.namespace}/{name}"] if name and es.metadata else []

        return [
            runtime.Watch("Service"),
            runtime.Watch("Pod", pod_keys),
            runtime.Watch("EndpointSlice", slice_keys, label_selector=well_known.SERVICE_NAME),
        ]

    def reconcile(self, key: str) -> float | None:
        ns, name = resources.split_key(key)
        service = runtime.get(self.api, "Service", name, ns)
        slices = [
            objects.to_dict(es)
            for es in self.informers["EndpointSlice"].items()
            if es.metadata.namespace == ns
            and (es.metadata.labels or {}).get(well_known.SERVICE_NAME) == name
            and (es.metadata.labels or {}).get(well_known.ENDPOINTSLICE_MANAGED_BY)
            == well_known.ENDPOINTSLICE_CONTROLLER
        ]
        if service is None or not (service.spec and service.spec.selector):
            for es in slices:
                self._delete(es)
            return None
        pods = [p for p in self.informers["Pod"].items() if p.metadata.namespace == ns]
        wanted = {str(body["metadata"]["name"]): body for body in map(objects.to_dict, desired_slices(service, pods))}
        have: dict[str, dict[str, Any]] = {str(es["metadata"]["name"]): es for es in slices}
        ES = resources.resource("EndpointSlice")
        for slice_name, body in wanted.items():
            current = have.get(slice_name)
            if current is None:
                try:
                    self.api.create(ES(body), namespace=ns)
                except ApiError as err:
                    if err.status.code != 409:
                        raise
                    current = runtime.get_or_none(self.api, "EndpointSlice", slice_name, ns)
                    if current is None:
                        raise
                else:
                    log.info("service %s: created endpointslice %s", key, slice_name)
                    continue
            if _comparable(current) != _comparable(body):
                body["metadata"]["resourceVersion"] = current["metadata"].get("resourceVersion")
                self.api.replace(ES(body))
        for slice_name, es in have.items():
            if slice_name not in wanted:
                self._delete(es)
        self._load_balancer_status(service)
        return None

    def _load_balancer_status(self, service: Service) -> None:
        whole = objects.to_dict(service)
        ingress = ((whole.get("status") or {}).get("loadBalancer") or {}).get("ingress")
        if service.spec and service.spec.type == services.LOAD_BALANCER:
            want = [{"ip": LOAD_BALANCER_IP, "ipMode": "Proxy"}]
            if ingress != want:
                runtime.patch_status(self.api, "Service", whole, {"loadBalancer": {"ingress": want}})
        elif ingress:
            runtime.patch_status(self.api, "Service", whole, {"loadBalancer": {"ingress": None}})

    def _delete(self, es: dict[str, Any]) -> None:
        try:
            self.api.delete(
                resources.resource("EndpointSlice"), es["metadata"]["name"], namespace=es["metadata"]["namespace"]
            )
        except ApiError as err:
            if err.status.code != 404:
                raise
