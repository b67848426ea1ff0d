"""Authorization: what each identity may do. Pure functions, no I/O.

Follows the Kubernetes "Authorization" concepts: every request is reduced to
attributes (user, verb, API group, resource, subresource, namespace, name;
"Determine the Request Verb": ``GET`` is ``get``/``list``/``watch``, ``POST``
``create``, ``PUT`` ``update``, ``PATCH`` ``patch``, ``DELETE``
``delete``/``deletecollection``) and allowed or refused with 403
``Forbidden`` in the apiserver's words::

    pods "x" is forbidden: User "system:node:vm" cannot delete resource "pods" in API group "" in the namespace "default"

The identities ``dockyard up`` hands out (one kubeconfig each):

- ``admin``: everything (RBAC's ``cluster-admin``).
- ``view``: ``get``, ``list`` and ``watch`` of every kind and of the ``status``
  and ``log`` subresources, except Secrets, which it may not read at all
  (RBAC's default ``view`` ClusterRole).
- ``system:node:<name>`` (the node agent, after the Node authorizer and the
  ``NodeRestriction`` admission plugin): reads every kind but Secrets, and of
  Secrets only ``get`` of those its pods, builds and pushes reference (never
  ``list`` or ``watch``); writes only what a node agent writes: binds
  unscheduled pods to itself (a JSON merge patch of ``spec.nodeName`` and
  ``metadata.labels``), the status of its own pods and of Pushes meant for it,
  logs and ``details`` (the resolved source revision) of the builds it runs, Events about its objects, and its
  own Node: ``create`` with its own name, ``update``/``patch`` of it and of its ``status`` (never another
  Node's, never ``delete``), setting none of the labels :func:`admit_node` keeps from nodes.
  :func:`authorize` checks the verb and resource;
  :func:`dockyard.apiserver.nodeauthz.check` then checks the objects
  (:func:`admit` is its part for pods and pushes).
- any other user: nothing.

Discovery, OpenAPI and ``/version`` are open to every authenticated user
(RBAC's ``system:discovery``); ``/metrics`` to ``admin`` and ``view`` (RBAC's
``system:monitoring``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dockyard.api import errors
from dockyard.api import labels as well_known

ADMIN = "admin"
VIEW = "view"
NODE_PREFIX = "system:node:"
READ_VERBS = frozenset({"get", "list", "watch"})
MERGE_PATCH = "application/merge-patch+json"
METRICS_PATH = "/metrics"
NODENAME_LABEL = well_known.NODE_NAME

# (group, resource, subresource) -> verbs a node may use beyond reading.
_NODE_WRITES: dict[tuple[str, str, str], frozenset[str]] = {
    ("", "pods", ""): frozenset({"patch", "create", "delete"}),  # binding; mirror pods (nodeauthz.check)
    ("", "pods", "status"): frozenset({"patch", "update"}),
    ("dockyard.dev", "pushes", "status"): frozenset({"patch", "update"}),
    ("dockyard.dev", "builds", "log"): frozenset({"create"}),
    ("dockyard.dev", "builds", "details"): frozenset({"patch", "update"}),  # the builder's resolved revision
    ("", "events", ""): frozenset({"create", "patch", "update"}),
    ("", "nodes", ""): frozenset({"create", "patch", "update"}),  # its own only: nodeauthz.check, admit_node
    ("", "nodes", "status"): frozenset({"patch", "update"}),  # its own only: nodeauthz.check
}
_VIEW_HIDDEN = frozenset({("", "secrets"), ("dockyard.dev", "builds/source")})
_NODE_REFERENCED = frozenset({("", "secrets"), ("", "configmaps")})
"""What a node may only get, one object at a time, and only if its pods reference it (the Node authorizer)."""


@dataclass(frozen=True, kw_only=True)
class Attributes:
    """One request as the authorizer sees it (``authorizer.Attributes``).

    Attributes:
        user: the authenticated user name.
        verb: ``get``, ``list``, ``watch``, ``create``, ``update``, ``patch``,
            ``delete`` or ``deletecollection``.
        group: API group (``""`` for core).
        resource: the plural (``pods``); ``""`` for a non-resource path.
        subresource: e.g. ``status``, ``log``; ``""`` for the main resource.
        namespace: ``""`` for cluster scope.
        name: ``""`` for a collection.
        path: the URL path (used in messages about non-resource paths).
    """

    user: str
    verb: str
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""


def verb_for(method: str, *, named: bool, watch: bool = False) -> str:
    """The request verb for an HTTP method ("Determine the Request Verb")."""
    method = method.upper()
    if method in ("GET", "HEAD"):
        return "watch" if watch else ("get" if named else "list")
    if method == "DELETE":
        return "delete" if named else "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())


def node_name(user: str) -> str | None:
    """The node of a ``system:node:<name>`` user, else ``None``."""
    return user[len(NODE_PREFIX) :] if user.startswith(NODE_PREFIX) and len(user) > len(NODE_PREFIX) else None


def forbidden(attrs: Attributes, why: str = "") -> errors.Forbidden:
    """403 worded as the apiserver words it, with ``details`` naming the object."""
    suffix = f": {why}" if why else ""
    if not attrs.resource:
        return errors.Forbidden(f'forbidden: User "{attrs.user}" cannot {attrs.verb} path "{attrs.path}"{suffix}')
    qualified = f"{attrs.resource}.{attrs.group}" if attrs.group else attrs.resource
    target = f'{qualified} "{attrs.name}"' if attrs.name else qualified
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    scope = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    details: dict[str, Any] = {"group": attrs.group, "kind": attrs.resource}
    if attrs.name:
        details["name"] = attrs.name
    return errors.Forbidden(
        f'{target} is forbidden: User "{attrs.user}" cannot {attrs.verb} resource '
        f'"{resource}" in API group "{attrs.group}" {scope}{suffix}',
        details=details,
    )


def allowed(attrs: Attributes) -> bool:
    """True if the identity's role allows the verb on the resource (no object checks)."""
    if attrs.user == ADMIN:
        return True
    if not attrs.resource and attrs.path == METRICS_PATH:  # system:monitoring
        return attrs.user == VIEW and attrs.verb == "get"
    if not attrs.resource:  # discovery, OpenAPI, version: every authenticated user
        return attrs.verb == "get"
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    if attrs.user == VIEW:
        return (
            attrs.verb in READ_VERBS
            and (attrs.group, attrs.resource) not in _VIEW_HIDDEN
            and (attrs.group, resource) not in _VIEW_HIDDEN
        )
    if node_name(attrs.user) is not None:
        if (attrs.group, attrs.resource) in _NODE_REFERENCED:
            return attrs.verb == "get" and not attrs.subresource  # which ones: nodeauthz.check
        if attrs.verb in READ_VERBS:
            return True
        return attrs.verb in _NODE_WRITES.get((attrs.group, attrs.resource, attrs.subresource), frozenset())
    return False


def authorize(attrs: Attributes) -> None:
    """Raise 403 unless :func:`allowed`.

    Raises:
        errors.Forbidden: the identity may not do this.
    """
    if not allowed(attrs):
        raise forbidden(attrs)


def needs_admission(attrs: Attributes) -> bool:
    """True if :func:`admit` must look at the stored object (a node's writes to pods and pushes)."""
    return node_name(attrs.user) is not None and (
        (
            attrs.verb in ("patch", "update")
            and (attrs.group, attrs.resource) in (("", "pods"), ("dockyard.dev", "pushes"))
        )
        or (attrs.verb == "delete" and (attrs.group, attrs.resource, attrs.subresource) == ("", "pods", ""))
    )


def admit(attrs: Attributes, stored: dict[str, Any], *, content_type: str = "", document: Any = None) -> None:
    """A node's write to a pod or a push, checked against the stored object (``NodeRestriction``).

    - ``pods`` (main resource): only a JSON merge patch that sets
      ``spec.nodeName`` and/or the ``dockyard.dev/nodename`` label to this node (no other label), on a pod
      that is unscheduled or already this node's; ``delete`` only of a pod bound to this node that is a mirror
      pod (annotation ``kubernetes.io/config.mirror``) or already has a ``deletionTimestamp`` (the node ends the
      graceful deletion someone else asked for, once its containers have stopped). (Kubernetes' NodeRestriction
      lets a node delete any pod bound to it; dockyard's node deletes no other pod.) A node's pod
      ``create`` is checked by :func:`dockyard.apiserver.nodeauthz.check_mirror_pod_create`.
    - ``pods/status``: only pods bound to this node; on an unscheduled pod, only a JSON merge patch of the
      scheduler's ``PodScheduled`` condition (and phase ``Pending``): the embedded node agent schedules its
      one node and reports a pod that does not fit, as kube-scheduler does.
    - ``pushes/status``: only Pushes labelled for this node
      (``dockyard.dev/nodename``) or not labelled yet.

    Raises:
        errors.Forbidden: anything else.
    """
    node = node_name(attrs.user)
    if node is None:
        return
    spec = stored.get("spec") if isinstance(stored.get("spec"), dict) else {}
    bound = str(spec.get("nodeName") or "")
    if attrs.resource == "pods" and attrs.verb == "delete":
        annotations = (stored.get("metadata") or {}).get("annotations") or {}
        if bound != node:
            raise forbidden(attrs, f'node "{node}" can only delete pods with spec.nodeName set to itself')
        if well_known.CONFIG_MIRROR not in annotations and not (stored.get("metadata") or {}).get("deletionTimestamp"):
            raise forbidden(attrs, f'node "{node}" can only delete mirror pods and pods being deleted')
    elif attrs.resource == "pods" and not attrs.subresource:
        if content_type != MERGE_PATCH or not _only_binding(document, node):
            raise forbidden(
                attrs,
                "a node may only bind a pod to itself (a JSON merge patch of spec.nodeName and the "
                f"{well_known.NODE_NAME} label, both set to {node})",
            )
        if bound not in ("", node):
            raise forbidden(attrs, f'the pod is bound to node "{bound}"')
    elif attrs.resource == "pods":
        if bound == "" and content_type == MERGE_PATCH and _only_scheduling_status(document):
            return
        if bound != node:
            raise forbidden(attrs, f'node "{node}" can only update the status of pods bound to it')
    elif attrs.resource == "pushes":
        labels = (stored.get("metadata") or {}).get("labels") or {}
        if str(labels.get(NODENAME_LABEL) or "") not in ("", node):
            raise forbidden(attrs, f'node "{node}" can only update the status of pushes for its pods')


def _only_scheduling_status(document: Any) -> bool:
    """``{"status": {"phase": "Pending", "conditions": [PodScheduled conditions only]}}`` (phase optional)."""
    if not isinstance(document, dict) or set(document) != {"status"} or not isinstance(document["status"], dict):
        return False
    status = document["status"]
    conditions = status.get("conditions")
    return (
        set(status) <= {"phase", "conditions"}
        and status.get("phase", "Pending") == "Pending"
        and isinstance(conditions, list)
        and bool(conditions)
        and all(isinstance(c, dict) and c.get("type") == "PodScheduled" for c in conditions)
    )


def _only_binding(document: Any, node: str) -> bool:
    """The agent's bind patch: ``spec.nodeName`` and the ``dockyard.dev/nodename`` label, each set to ``node``
    (no other label: NodeRestriction lets no kubelet change a pod's labels, which Services and ReplicaSets
    select on)."""
    if not isinstance(document, dict) or not set(document) <= {"metadata", "spec"}:
        return False
    meta, spec = document.get("metadata", {}), document.get("spec", {})
    if not isinstance(meta, dict) or not set(meta) <= {"labels"}:
        return False
    if "labels" in meta and meta["labels"] not in ({}, {well_known.NODE_NAME: node}):
        return False
    if not isinstance(spec, dict) or not set(spec) <= {"nodeName"}:
        return False
    return "nodeName" not in spec or spec["nodeName"] == node


KUBELET_LABELS = frozenset(
    {
        well_known.HOSTNAME,
        well_known.OS,
        well_known.ARCH,
        "beta.kubernetes.io/os",
        "beta.kubernetes.io/arch",
        "beta.kubernetes.io/instance-type",
        "failure-domain.beta.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/region",
        "topology.kubernetes.io/zone",
        "topology.kubernetes.io/region",
    }
)
"""Labels of the ``kubernetes.io`` and ``k8s.io`` domains a node may set on itself (``kubeletapis.IsKubeletLabel``),
beside those under ``kubelet.kubernetes.io/`` and ``node.kubernetes.io/``."""
_KUBELET_LABEL_DOMAINS = ("kubelet.kubernetes.io", "node.kubernetes.io")


def _forbidden_node_label(key: str) -> bool:
    """NodeRestriction's ``getForbiddenLabels``: ``node-restriction.kubernetes.io/`` labels, and labels of the
    ``kubernetes.io`` and ``k8s.io`` domains that are not the kubelet's (``node-role.kubernetes.io/...``)."""
    domain = key.partition("/")[0] if "/" in key else ""
    if key.startswith(well_known.NODE_RESTRICTION_PREFIX):
        return True
    if key in KUBELET_LABELS or any(domain == d or domain.endswith(f".{d}") for d in _KUBELET_LABEL_DOMAINS):
        return False
    return any(domain == d or domain.endswith(f".{d}") for d in ("kubernetes.io", "k8s.io"))


def admit_node(user: str, new: dict[str, Any], old: dict[str, Any] | None) -> list[str]:
    """A node's create, update or patch of its own Node, checked on the result (NodeRestriction ``admitNode``):
    it may not set, change or remove a label :func:`_forbidden_node_label` keeps from nodes (an administrator's
    ``node-role.kubernetes.io/...``). Whose Node it is, :func:`dockyard.apiserver.nodeauthz.check` checked.

    Returns:
        No warnings (an admission step of :func:`dockyard.apiserver.admission.for_write`).
    Raises:
        errors.Forbidden: a label a node may not touch.
    """
    node = node_name(user)
    if node is None:
        return []
    new_labels = (new.get("metadata") or {}).get("labels") or {}
    old_labels = ((old or {}).get("metadata") or {}).get("labels") or {}
    changed = sorted(
        key
        for key in set(new_labels) | set(old_labels)
        if new_labels.get(key) != old_labels.get(key) or (key in new_labels) != (key in old_labels)
    )
    bad = [key for key in changed if _forbidden_node_label(key)]
    if bad:
        name = str((new.get("metadata") or {}).get("name") or "")
        what = "set the following labels" if old is None else "modify labels"
        raise errors.Forbidden(
            f'nodes "{name}" is forbidden: node "{node}" is not allowed to {what}: {", ".join(bad)}',
            details={"group": "", "kind": "nodes", "name": name},
        )
    return []
