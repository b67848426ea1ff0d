"""Services and EndpointSlices on one machine: the rules, the address ranges and the allocators. No I/O.

dockyard serves core/v1 ``Service`` the way k3s's ServiceLB and kube-proxy serve it on a node, with every
address on loopback (Linux routes all of ``127.0.0.0/8`` to ``lo``):

- **Pod addresses**: each pod gets its own ``127.x.y.z`` from :data:`POD_CIDR` (allocated by the node agent,
  reported as ``status.podIP``); its ``containerPorts`` are published on that address.
- **Cluster IPs**: allocated from :data:`SERVICE_CIDR`, as the apiserver's ``--service-cluster-ip-range``
  allocator does; the node agent's proxy listens on ``clusterIP:port``. They are reachable from the host only
  (a pod's own loopback is its network namespace's).
- **Node ports**: allocated from :data:`NODE_PORT_RANGE` (the apiserver's ``--service-node-port-range``
  default) when unset; the proxy listens on ``127.0.0.1:nodePort`` for ``NodePort`` and ``LoadBalancer``, and
  on ``127.0.0.1:port`` for ``LoadBalancer`` (k3s ServiceLB: the node's address is the load balancer's).

What the proxy cannot honour is refused with a 422 naming the field: ``ExternalName``, protocols other than
TCP, ``sessionAffinity: ClientIP``, external IPs, source ranges, IPv6.

Sources: ``pkg/apis/core/validation/validation.go`` (``ValidateService``), ``pkg/apis/core/v1/defaults.go``
(``SetDefaults_Service``), ``pkg/registry/core/service/storage`` (``patchAllocatedValues``, the allocators),
``pkg/apis/discovery/validation`` (``ValidateEndpointSlice``).
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Mapping
from typing import Any, cast

from dockyard.api import names
from dockyard.api.errors import Cause, Invalid

__all__ = [
    "CLUSTER_IP",
    "HEADLESS",
    "LOAD_BALANCER",
    "NODE_PORT",
    "NODE_PORT_RANGE",
    "POD_CIDR",
    "SERVICE_CIDR",
    "SERVICE_TYPES",
    "allocate",
    "endpointslice_causes",
    "service_causes",
]

CLUSTER_IP, NODE_PORT, LOAD_BALANCER, EXTERNAL_NAME = "ClusterIP", "NodePort", "LoadBalancer", "ExternalName"
SERVICE_TYPES = (CLUSTER_IP, NODE_PORT, LOAD_BALANCER)
"""``spec.type`` values served (``ExternalName`` is refused: there is no cluster DNS to answer it)."""
HEADLESS = "None"
"""``spec.clusterIP`` of a headless Service: no cluster IP, no proxy listener."""
SESSION_AFFINITY_NONE = "None"
TCP = "TCP"
IPV4 = "IPv4"
SINGLE_STACK = "SingleStack"
TRAFFIC_POLICIES = ("Cluster", "Local")
"""``externalTrafficPolicy`` / ``internalTrafficPolicy``: on one node both mean the same endpoints."""

NODE_PORT_RANGE = range(30000, 32768)
"""``--service-node-port-range`` default, 30000-32767 inclusive."""
SERVICE_CIDR = ipaddress.ip_network("127.1.0.0/16")
"""Where cluster IPs come from (``--service-cluster-ip-range``, on loopback)."""
POD_CIDR = ipaddress.ip_network("127.2.0.0/16")
"""Where the node agent takes pod addresses from (the node's ``podCIDR``, on loopback)."""


_REFUSED_SPEC_FIELDS = {
    "externalIPs": "external IPs are not supported: services listen on loopback only",
    "loadBalancerSourceRanges": "source ranges are not supported: the proxy listens on loopback only",
    "loadBalancerIP": "not supported: a LoadBalancer listens on 127.0.0.1",
    "loadBalancerClass": "not supported: the node agent is the only load balancer",
    "externalName": "not supported: ExternalName services are not served",
    "sessionAffinityConfig": "not supported: sessionAffinity is None only",
    "healthCheckNodePort": "not supported",
    "trafficDistribution": "not supported",
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _port_number(value: Any) -> bool:
    return _is_int(value) and 0 < value < 65536


def _unsupported(field: str, value: Any, supported: tuple[str, ...], why: str = "") -> Cause:
    allowed = ", ".join(f'"{v}"' for v in supported)
    return Cause(
        field,
        f'Unsupported value: "{str(value)[:32]}": supported values: {allowed}' + (f" ({why})" if why else ""),
        "FieldValueNotSupported",
    )


def service_causes(obj: dict[str, Any]) -> list[Cause]:
    """Validate and default a Service's ``spec`` in place (``SetDefaults_Service``, ``ValidateService``).

    Defaults: ``type: ClusterIP``, ``sessionAffinity: None``, ``ports[].protocol: TCP``,
    ``ports[].targetPort: <port>``, ``ipFamilies: [IPv4]``, ``ipFamilyPolicy: SingleStack``,
    ``externalTrafficPolicy: Cluster`` (NodePort, LoadBalancer), ``internalTrafficPolicy: Cluster``.

    Returns:
        One cause per bad field path (``spec.ports[1].nodePort``, ...); allocation comes later
        (:func:`allocate`, it needs the other Services).
    """
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [Cause("spec", "field required", "FieldValueRequired")]
    causes: list[Cause] = []
    type_ = spec.setdefault("type", CLUSTER_IP)
    if type_ not in SERVICE_TYPES:
        why = "ExternalName services are not served (no cluster DNS)" if type_ == EXTERNAL_NAME else ""
        causes.append(_unsupported("spec.type", type_, SERVICE_TYPES, why))
    affinity = spec.setdefault("sessionAffinity", SESSION_AFFINITY_NONE)
    if affinity != SESSION_AFFINITY_NONE:
        causes.append(
            _unsupported("spec.sessionAffinity", affinity, (SESSION_AFFINITY_NONE,), "the proxy balances round robin")
        )
    for key, message in _REFUSED_SPEC_FIELDS.items():
        if spec.get(key) not in (None, "", [], {}):
            causes.append(Cause(f"spec.{key}", f"Forbidden: {message}", "FieldValueForbidden"))
    if spec.get("publishNotReadyAddresses"):
        causes.append(Cause("spec.publishNotReadyAddresses", "Forbidden: not supported: only ready pods get traffic"))
    selector = spec.get("selector")
    if selector is not None and (
        not isinstance(selector, dict)
        or not all(isinstance(v, str) and isinstance(k, str) for k, v in selector.items())
    ):
        causes.append(Cause("spec.selector", "must be a map of label keys to string values"))
    families = spec.setdefault("ipFamilies", [IPV4])
    if families != [IPV4]:
        causes.append(_unsupported("spec.ipFamilies", families, (IPV4,), "loopback addresses are IPv4"))
    policy = spec.setdefault("ipFamilyPolicy", SINGLE_STACK)
    if policy != SINGLE_STACK:
        causes.append(_unsupported("spec.ipFamilyPolicy", policy, (SINGLE_STACK,)))
    if type_ in (NODE_PORT, LOAD_BALANCER):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    for key in ("externalTrafficPolicy", "internalTrafficPolicy"):
        if key in spec and spec[key] not in TRAFFIC_POLICIES:
            causes.append(_unsupported(f"spec.{key}", spec[key], TRAFFIC_POLICIES))
    spec.setdefault("internalTrafficPolicy", "Cluster")
    causes.extend(_cluster_ip_causes(spec, type_))
    causes.extend(_ports_causes(spec, type_))
    return causes


def _cluster_ip_causes(spec: dict[str, Any], type_: Any) -> list[Cause]:
    ip = spec.get("clusterIP")
    ips = spec.get("clusterIPs")
    if ip in (None, "") and isinstance(ips, list) and ips:
        ip = spec["clusterIP"] = ips[0]
    if ip in (None, ""):
        return []
    if ip == HEADLESS:
        if type_ != CLUSTER_IP:
            return [Cause("spec.clusterIP", f"Invalid value: \"None\": may not be set to 'None' for {type_} services")]
        spec["clusterIPs"] = [HEADLESS]
        return []
    try:
        address = ipaddress.ip_address(str(ip))
    except ValueError:
        return [Cause("spec.clusterIP", f'Invalid value: "{str(ip)[:40]}": must be a valid IP address or "None"')]
    if address not in SERVICE_CIDR:
        return [
            Cause(
                "spec.clusterIP",
                f'Invalid value: "{ip}": provided IP is not in the valid range. '
                f"The range of valid IPs is {SERVICE_CIDR}",
            )
        ]
    if ips not in (None, [], [ip]):
        return [Cause("spec.clusterIPs[0]", f"Invalid value: must match spec.clusterIP {ip!r}")]
    spec["clusterIPs"] = [str(ip)]
    return []


def _ports_causes(spec: dict[str, Any], type_: Any) -> list[Cause]:
    ports = spec.get("ports")
    causes: list[Cause] = []
    if ports is None or ports == []:
        if spec.get("clusterIP") == HEADLESS:
            return []
        return [Cause("spec.ports", "Required value", "FieldValueRequired")]
    if not isinstance(ports, list):
        return [Cause("spec.ports", "must be a list")]
    port_names: set[str] = set()
    seen: set[tuple[int, str]] = set()
    for i, port in enumerate(ports):
        where = f"spec.ports[{i}]"
        if not isinstance(port, dict):
            causes.append(Cause(where, "must be an object"))
            continue
        name = port.get("name")
        if name in (None, ""):
            if len(ports) > 1:
                causes.append(
                    Cause(f"{where}.name", "Required value: when there is more than one port", "FieldValueRequired")
                )
        elif not isinstance(name, str) or len(name) > names.DNS1123_LABEL_MAX or not names.DNS1123_LABEL.match(name):
            causes.append(Cause(f"{where}.name", f"Invalid value: {str(name)[:64]!r}: must be a DNS-1123 label"))
        elif name in port_names:
            causes.append(Cause(f"{where}.name", f'Duplicate value: "{name}"', "FieldValueDuplicate"))
        else:
            port_names.add(name)
        number = port.get("port")
        if not _port_number(number):
            causes.append(Cause(f"{where}.port", "Invalid value: must be between 1 and 65535, inclusive"))
        protocol = port.setdefault("protocol", TCP)
        if protocol != TCP:
            causes.append(_unsupported(f"{where}.protocol", protocol, (TCP,), "the proxy forwards TCP only"))
        elif _port_number(number):
            if (number, protocol) in seen:
                causes.append(
                    Cause(where, f"Duplicate value: {{port: {number}, protocol: {protocol}}}", "FieldValueDuplicate")
                )
            seen.add((cast(int, number), str(protocol)))
        target = port.get("targetPort")
        if target in (None, 0, "") and _port_number(number):
            port["targetPort"] = number
        elif _is_int(target):
            if not _port_number(target):
                causes.append(Cause(f"{where}.targetPort", "Invalid value: must be between 1 and 65535, inclusive"))
        elif not isinstance(target, str):
            causes.append(Cause(f"{where}.targetPort", "Invalid value: must be a port number or a port name"))
        else:
            causes.extend(
                Cause(f"{where}.targetPort", f"Invalid value: {target[:32]!r}: {msg} (a port name, IANA_SVC_NAME)")
                for msg in names.port_name_errors(target)
            )
        node_port = port.get("nodePort")
        if node_port in (None, 0):
            port.pop("nodePort", None)
        elif type_ == CLUSTER_IP:
            causes.append(
                Cause(
                    f"{where}.nodePort", "Forbidden: may not be used when `type` is 'ClusterIP'", "FieldValueForbidden"
                )
            )
        elif not _is_int(node_port) or node_port not in NODE_PORT_RANGE:
            causes.append(
                Cause(
                    f"{where}.nodePort",
                    f"Invalid value: {str(node_port)[:16]}: provided port is not in the valid range. "
                    f"The range of valid ports is {NODE_PORT_RANGE.start}-{NODE_PORT_RANGE.stop - 1}",
                )
            )
    return causes


def allocate(
    spec: dict[str, Any],
    old_spec: Mapping[str, Any] | None,
    *,
    taken_node_ports: set[int],
    taken_cluster_ips: set[str],
    rand: random.Random | None = None,
    name: str = "",
) -> None:
    """Fill in ``spec.clusterIP``/``clusterIPs`` and each NodePort/LoadBalancer port's ``nodePort``, in place.

    As the apiserver's Service storage: on update, values already allocated are kept when the new spec omits
    them (``patchAllocatedValues``: a port keeps its ``nodePort`` if one with the same ``port`` and
    ``protocol`` had one), and ``clusterIP`` is immutable. New values are drawn at random from
    :data:`SERVICE_CIDR` and :data:`NODE_PORT_RANGE`, avoiding the other Services' ones.

    Args:
        spec: a spec that passed :func:`service_causes`.
        old_spec: the stored spec on update, else ``None``.
        taken_node_ports, taken_cluster_ips: what the *other* Services hold.

    Raises:
        dockyard.api.errors.Invalid: a requested ``nodePort`` or ``clusterIP`` is taken (``provided port is
            already allocated``), a range is exhausted, or ``clusterIP`` changed.
    """
    rand = rand or random.Random()
    causes: list[Cause] = []
    old_ip = (old_spec or {}).get("clusterIP")
    ip = spec.get("clusterIP")
    if old_ip not in (None, ""):
        if ip in (None, ""):
            spec["clusterIP"], spec["clusterIPs"] = old_ip, [old_ip]
        elif ip != old_ip:
            causes.append(Cause("spec.clusterIP", f'Invalid value: "{ip}": field is immutable'))
    elif ip in (None, ""):
        picked = _free_ip(taken_cluster_ips, rand)
        if picked is None:
            causes.append(Cause("spec.clusterIP", f"Internal error: no free address in {SERVICE_CIDR}"))
        else:
            spec["clusterIP"], spec["clusterIPs"] = picked, [picked]
    elif ip != HEADLESS and ip in taken_cluster_ips:
        causes.append(Cause("spec.clusterIP", f'Invalid value: "{ip}": provided IP is already allocated'))
    if spec.get("type") in (NODE_PORT, LOAD_BALANCER):
        old_ports = {
            (p.get("port"), p.get("protocol", TCP)): p.get("nodePort")
            for p in (old_spec or {}).get("ports") or []
            if isinstance(p, dict) and p.get("nodePort")
        }
        mine: set[int] = set()
        for i, port in enumerate(spec.get("ports") or []):
            wanted = port.get("nodePort") or old_ports.get((port.get("port"), port.get("protocol", TCP)))
            if wanted:
                if wanted in taken_node_ports or wanted in mine:
                    causes.append(
                        Cause(
                            f"spec.ports[{i}].nodePort", f"Invalid value: {wanted}: provided port is already allocated"
                        )
                    )
                    continue
            else:
                wanted = _free_port(taken_node_ports | mine, rand)
                if wanted is None:
                    causes.append(
                        Cause(
                            f"spec.ports[{i}].nodePort",
                            f"Internal error: no free node port in the range {NODE_PORT_RANGE.start}-"
                            f"{NODE_PORT_RANGE.stop - 1}",
                        )
                    )
                    continue
            port["nodePort"] = wanted
            mine.add(wanted)
    if causes:
        raise Invalid(kind="Service", group="", name=name, causes=causes)


def _free_port(taken: set[int], rand: random.Random) -> int | None:
    size = len(NODE_PORT_RANGE)
    start = rand.randrange(size)
    for step in range(size):
        candidate = NODE_PORT_RANGE[(start + step) % size]
        if candidate not in taken:
            return candidate
    return None


def _free_ip(taken: set[str], rand: random.Random) -> str | None:
    first = int(SERVICE_CIDR.network_address) + 1
    size = SERVICE_CIDR.num_addresses - 2  # neither the network nor the broadcast address
    start = rand.randrange(size)
    for step in range(size):
        candidate = str(ipaddress.ip_address(first + (start + step) % size))
        if candidate not in taken:
            return candidate
    return None


# --- EndpointSlice ---------------------------------------------------------------------------------------------

ADDRESS_TYPES = (IPV4,)
MAX_ENDPOINTS = 1000
"""Endpoints per slice (``discovery/v1`` validation's ``maxEndpoints``)."""


def endpointslice_causes(obj: dict[str, Any]) -> list[Cause]:
    """``ValidateEndpointSlice`` for what the proxy reads: ``addressType`` IPv4 (the only type served),
    ``endpoints[].addresses`` (exactly one IPv4 address each), ``endpoints[].conditions`` booleans,
    ``ports[]`` (``port`` 1-65535, ``protocol`` TCP by default, names unique)."""
    causes: list[Cause] = []
    address_type = obj.get("addressType")
    if address_type not in ADDRESS_TYPES:
        causes.append(_unsupported("addressType", address_type, ADDRESS_TYPES, "pods have loopback IPv4 addresses"))
    endpoints = obj.get("endpoints")
    if endpoints is None:
        endpoints = obj["endpoints"] = []
    if not isinstance(endpoints, list):
        causes.append(Cause("endpoints", "must be a list"))
        endpoints = []
    if len(endpoints) > MAX_ENDPOINTS:
        causes.append(Cause("endpoints", f"Too many: {len(endpoints)}: must have at most {MAX_ENDPOINTS} items"))
    for i, endpoint in enumerate(endpoints):
        where = f"endpoints[{i}]"
        if not isinstance(endpoint, dict):
            causes.append(Cause(where, "must be an object"))
            continue
        addresses = endpoint.get("addresses")
        if not isinstance(addresses, list) or len(addresses) != 1:
            causes.append(Cause(f"{where}.addresses", "must contain exactly 1 address"))
        else:
            try:
                ipaddress.IPv4Address(str(addresses[0]))
            except ValueError:
                causes.append(
                    Cause(
                        f"{where}.addresses[0]", f'Invalid value: "{str(addresses[0])[:40]}": must be an IPv4 address'
                    )
                )
        conditions = endpoint.get("conditions")
        if conditions is not None:
            if not isinstance(conditions, dict):
                causes.append(Cause(f"{where}.conditions", "must be an object"))
            else:
                for key in ("ready", "serving", "terminating"):
                    if conditions.get(key) is not None and not isinstance(conditions[key], bool):
                        causes.append(Cause(f"{where}.conditions.{key}", "must be a boolean"))
    ports = obj.get("ports")
    port_names: set[str] = set()
    for i, port in enumerate(ports if isinstance(ports, list) else []):
        where = f"ports[{i}]"
        if not isinstance(port, dict):
            causes.append(Cause(where, "must be an object"))
            continue
        if port.get("port") is not None and not _port_number(port.get("port")):
            causes.append(Cause(f"{where}.port", "Invalid value: must be between 1 and 65535, inclusive"))
        protocol = port.setdefault("protocol", TCP)
        if protocol != TCP:
            causes.append(_unsupported(f"{where}.protocol", protocol, (TCP,)))
        name = port.get("name") or ""
        if name in port_names:
            causes.append(Cause(f"{where}.name", f'Duplicate value: "{name}"', "FieldValueDuplicate"))
        port_names.add(name)
    if ports is not None and not isinstance(ports, list):
        causes.append(Cause("ports", "must be a list"))
    return causes
