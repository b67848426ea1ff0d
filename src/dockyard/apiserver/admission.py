"""Pod Security admission at the API server: the checks of :mod:`dockyard.api.podsecurity` applied to writes.

As kube-apiserver's ``PodSecurity`` admission plugin
(``k8s.io/pod-security-admission/admission/admission.go``):

- Pods (create, update, patch of the main resource; ``status`` is never
  checked): evaluated against the namespace's ``enforce`` level (403
  ``violates PodSecurity "LEVEL:latest": ...``), then, if admitted, against its
  ``warn`` level (a ``Warning: would violate PodSecurity ...`` header) and its
  ``audit`` level (logged by the API server, which keeps no audit log).
  An update is evaluated only if it changes the pod's spec (other than the
  binding's ``spec.nodeName``) or annotations: Kubernetes evaluates only
  image and seccomp-annotation changes because the rest of a pod's spec is
  immutable there, but dockyard's pod spec is mutable.
- Deployments and ReplicaSets: their pod template against ``warn`` and
  ``audit`` only, never refused (``ValidatePodController``); the pods they
  create are checked as pods.
- Deployments also get a warning (never a refusal) for each ``hostPort`` of their pod template when their
  strategy cannot roll it on one node (:func:`host_port_rollout_warnings`).
- Namespaces: bad label values are refused by validation (422, see
  :func:`dockyard.api.podsecurity.label_causes`).
- Exemptions: :class:`dockyard.api.podsecurity.Exemptions` (by default only
  the build pods' runtime class ``dockyard-build``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dockyard.api import errors, kinds, podsecurity, services
from dockyard.apiserver import authz
from dockyard.storage import sqlite

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Admit = Callable[[sqlite.Store, Obj, "Obj | None"], list[str]]
"""``admit(store, new, old)`` → warnings; raises ``errors.Forbidden``. Called inside the write's transaction."""

_NAMESPACE = kinds.by_kind("v1", "Namespace")
_TEMPLATE_KINDS = frozenset({("apps", "Deployment"), ("apps", "ReplicaSet")})


def _significant(new: Obj, old: Obj | None) -> bool:
    if old is None:
        return True

    def view(obj: Obj) -> tuple[Any, Any]:
        spec = {k: v for k, v in (obj.get("spec") or {}).items() if k != "nodeName"}
        return spec, (obj.get("metadata") or {}).get("annotations") or {}

    return view(new) != view(old)


@dataclass(frozen=True)
class PodSecurity:
    """The API server's Pod Security configuration (``PodSecurityConfiguration``).

    Attributes:
        default_level: the ``enforce`` level of namespaces without the label
            (``privileged``, ``baseline`` or ``restricted``; ``baseline`` by default).
        exemptions: requests never checked.
    """

    default_level: str = podsecurity.DEFAULT_LEVEL
    exemptions: podsecurity.Exemptions = field(default_factory=podsecurity.Exemptions)

    def __post_init__(self) -> None:
        if self.default_level not in podsecurity.LEVELS:
            raise ValueError(
                f"pod security level must be one of {', '.join(podsecurity.LEVELS)}, not {self.default_level!r}"
            )

    def admitter(self, info: kinds.ResourceInfo, *, user: str, subresource: str | None = None) -> Admit | None:
        """The admission function for a write to ``info`` by ``user``, or ``None`` if nothing is checked."""
        if subresource:
            return None
        if (info.group, info.kind) == ("", "Pod"):
            return lambda store, new, old: self._pod(store, new, old, user=user)
        if (info.group, info.kind) == ("apps", "Deployment"):
            return lambda store, new, old: self._template(store, new, user=user) + host_port_rollout_warnings(new)
        if (info.group, info.kind) in _TEMPLATE_KINDS:
            return lambda store, new, old: self._template(store, new, user=user)
        return None

    def policy(self, store: sqlite.Store, namespace: str) -> podsecurity.Policy:
        """The namespace's policy from its labels (bad values, refused on write, evaluate as Kubernetes does)."""
        assert _NAMESPACE is not None
        try:
            ns = store.get(_NAMESPACE, None, namespace)
        except errors.NotFound:
            ns = {}
        labels = (ns.get("metadata") or {}).get("labels") or {}
        return podsecurity.policy_from_labels(labels, default_level=self.default_level)[0]

    def _pod(self, store: sqlite.Store, new: Obj, old: Obj | None, *, user: str) -> list[str]:
        meta, spec = new.get("metadata") or {}, new.get("spec") or {}
        namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        if not _significant(new, old) or self.exemptions.exempt(user=user, namespace=namespace, spec=spec):
            return []
        policy = self.policy(store, namespace)
        failed = podsecurity.evaluate(policy.enforce, meta, spec)
        if failed:
            raise errors.Forbidden(
                f'pods "{name}" is forbidden: violates PodSecurity "{policy.enforce}:{podsecurity.LATEST}": '
                f"{podsecurity.forbidden_detail(failed)}",
                details={"name": name, "kind": "pods"},
            )
        return self._warn_and_audit(policy, meta, spec, what=f'pod "{namespace}/{name}"')

    def _template(self, store: sqlite.Store, new: Obj, *, user: str) -> list[str]:
        meta = new.get("metadata") or {}
        template = (new.get("spec") or {}).get("template") or {}
        namespace = str(meta.get("namespace") or "")
        spec = template.get("spec") or {}
        if self.exemptions.exempt(user=user, namespace=namespace, spec=spec):
            return []
        policy = self.policy(store, namespace)
        return self._warn_and_audit(
            policy, template.get("metadata") or {}, spec, what=f'{new.get("kind")} "{namespace}/{meta.get("name")}"'
        )

    def _warn_and_audit(self, policy: podsecurity.Policy, meta: Obj, spec: Obj, *, what: str) -> list[str]:
        audit = podsecurity.evaluate(policy.audit, meta, spec)
        if audit:
            log.warning(
                'audit: %s would violate PodSecurity "%s:%s": %s',
                what,
                policy.audit,
                podsecurity.LATEST,
                podsecurity.forbidden_detail(audit),
            )
        warn = podsecurity.evaluate(policy.warn, meta, spec)
        if warn:
            return [
                f'would violate PodSecurity "{policy.warn}:{podsecurity.LATEST}": {podsecurity.forbidden_detail(warn)}'
            ]
        return []


def _surges(max_surge: Any) -> bool:
    """True if a RollingUpdate ``maxSurge`` (``IntOrString``, default ``25%``) resolves to at least one pod for
    one replica or more: the Deployment controller rounds a percentage of surge up (``ResolveFenceposts``)."""
    if isinstance(max_surge, bool):
        return False
    if isinstance(max_surge, int):
        return max_surge > 0
    text = str(max_surge)
    return text.endswith("%") and text[:-1].isdigit() and int(text[:-1]) > 0


def host_port_rollout_warnings(deployment: Obj) -> list[str]:
    """Warnings for a Deployment whose pod template publishes a ``hostPort`` that its strategy cannot roll.

    On one node a host port is held by one pod at a time (kube-scheduler's ``NodePorts`` filter), so a
    ``RollingUpdate`` that surges (``maxSurge`` > 0, the default 25%) creates a new pod that cannot be
    scheduled while the old one holds the port, and waits for it forever. A Service publishes the port
    without tying it to a pod; ``maxSurge: 0`` or ``Recreate`` roll with downtime.

    Returns:
        One warning per ``hostPort``, naming its field path (``spec.template.spec.containers[i].ports[j]
        .hostPort``), as kube-apiserver words field warnings; ``[]`` when the strategy can roll.
    """
    spec = deployment.get("spec") if isinstance(deployment.get("spec"), dict) else {}
    strategy = spec.get("strategy") if isinstance(spec.get("strategy"), dict) else {}
    if (strategy.get("type") or "RollingUpdate") != "RollingUpdate" or spec.get("replicas", 1) == 0:
        return []
    rolling = strategy.get("rollingUpdate") if isinstance(strategy.get("rollingUpdate"), dict) else {}
    surge = rolling.get("maxSurge", "25%")
    if not _surges(surge):
        return []
    template = spec.get("template") if isinstance(spec.get("template"), dict) else {}
    pod_spec = template.get("spec") if isinstance(template.get("spec"), dict) else {}
    warnings = []
    for i, container in enumerate(pod_spec.get("containers") or []):
        for j, port in enumerate((container.get("ports") if isinstance(container, dict) else None) or []):
            if isinstance(port, dict) and port.get("hostPort"):
                warnings.append(
                    f"spec.template.spec.containers[{i}].ports[{j}].hostPort: one pod at a time holds host port "
                    f"{port['hostPort']}, so with RollingUpdate maxSurge {surge} the new pod stays Pending; "
                    "publish it with a Service, or set maxSurge: 0 or type: Recreate"
                )
    return warnings


_SERVICE = kinds.by_kind("v1", "Service")


def allocate_service(store: sqlite.Store, new: Obj, old: Obj | None) -> list[str]:
    """The Service storage's allocators (``pkg/registry/core/service/storage``): fill in ``spec.clusterIP``
    and the ``nodePort``\\ s of ``new`` in place, unique among the stored Services (the write's transaction
    holds the store, so two creates cannot take the same port). See :func:`dockyard.api.services.allocate`.

    Raises:
        errors.Invalid: a requested port or address is taken (422 naming ``spec.ports[i].nodePort``).
    """
    assert _SERVICE is not None
    meta = new.get("metadata") or {}
    me = (meta.get("namespace"), meta.get("name"))
    node_ports: set[int] = set()
    cluster_ips: set[str] = set()
    for other in store.list(_SERVICE).items:
        other_meta = other.get("metadata") or {}
        if (other_meta.get("namespace"), other_meta.get("name")) == me:
            continue
        spec = other.get("spec") or {}
        if spec.get("clusterIP") not in (None, "", services.HEADLESS):
            cluster_ips.add(str(spec["clusterIP"]))
        node_ports.update(int(p["nodePort"]) for p in spec.get("ports") or [] if p.get("nodePort"))
    spec = new.get("spec")
    if isinstance(spec, dict):
        services.allocate(
            spec,
            (old or {}).get("spec"),
            taken_node_ports=node_ports,
            taken_cluster_ips=cluster_ips,
            name=str(meta.get("name") or ""),
        )
    return []


def for_write(
    pod_security: PodSecurity, info: kinds.ResourceInfo, *, user: str, subresource: str | None = None
) -> Admit | None:
    """Every admission step of a write to ``info``: Pod Security, the Service allocators (mutating, as
    kube-apiserver runs mutating admission and the registry's allocation before it stores), and NodeRestriction's
    label rules for a node's writes to its Node (:func:`dockyard.apiserver.authz.admit_node`)."""
    steps = [pod_security.admitter(info, user=user, subresource=subresource)]
    if (info.group, info.kind) == ("", "Service") and not subresource:
        steps.append(allocate_service)
    if (info.group, info.kind) == ("", "Node") and not subresource and authz.node_name(user) is not None:
        steps.append(lambda store, new, old: authz.admit_node(user, new, old))  # NodeRestriction
    chosen = [s for s in steps if s is not None]
    if not chosen:
        return None

    def admit(store: sqlite.Store, new: Obj, old: Obj | None) -> list[str]:
        return [warning for step in chosen for warning in step(store, new, old)]

    return admit
