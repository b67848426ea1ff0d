"""Deletion and garbage collection: finalizers, propagation policies, ownerReferences.

Synchronous, inside the caller's store transaction; no HTTP. Follows the
Kubernetes concepts "Finalizers", "Owners and Dependents" and "Garbage
Collection" (cascading deletion):

- An object with ``metadata.finalizers`` is not removed by a delete: it gets
  ``metadata.deletionTimestamp`` (and ``deletionGracePeriodSeconds``) and is
  removed when an update empties its finalizers (:func:`finish`).
- ``propagationPolicy=Background`` (the default): the object is removed at
  once, then its dependents (objects whose ``ownerReferences`` carry its
  uid), recursively.
- ``Foreground``: the object gets ``deletionTimestamp`` and the
  ``foregroundDeletion`` finalizer; its dependents are deleted; it is removed
  once no dependent with ``blockOwnerDeletion: true`` is left (a dependent
  held by its own finalizers keeps the owner, visibly, until it goes).
- ``Orphan``: the object is removed and its dependents stay, with the
  ``ownerReferences`` entries naming it removed (what the garbage collector
  does for the ``orphan`` finalizer).
- **Pods are deleted gracefully** (kube-apiserver's pod strategy, ``CheckGracefulDelete`` in
  ``pkg/registry/core/pod/strategy.go``, and ``rest.BeforeDelete``): a pod bound to a node and not yet
  ``Succeeded``/``Failed`` is not removed by a delete but gets ``deletionTimestamp`` (now plus the grace
  period) and ``deletionGracePeriodSeconds`` (:func:`pod_grace`): it shows as Terminating, leaves its
  Service's endpoints, and its node stops its containers within that time (``preStop`` hooks, SIGTERM,
  SIGKILL) and then deletes it with grace period 0 (:mod:`dockyard.agent.node`). A later delete may only
  shorten the grace period; grace period 0 removes the pod at once (``kubectl delete --force
  --grace-period=0``). An unscheduled or finished pod, or one bound to a Node that does not exist, has
  nothing to stop it and goes at once. The propagation policy concerns the pod's dependents, not its grace
  period: ``Orphan`` releases them at once; only a ``Foreground`` delete of a pod that has dependents waits
  for them as for any owner, without a grace period. Pods the garbage collector deletes (an owner's
  ``Background`` or ``Foreground`` cascade) are deleted gracefully too, with their own grace period, and
  block a ``Foreground`` owner until their node removes them; so are a deleted Namespace's pods.
- **Deleting a Namespace** follows Kubernetes' namespace lifecycle (the namespace controller's
  ``deleteAllContent``): the Namespace gets ``deletionTimestamp`` and ``status.phase: Terminating``,
  everything in it is deleted as a client's delete would (running pods gracefully, objects with finalizers
  marked), and the Namespace is removed with its last object (:func:`finish_namespace`), at once if nothing
  has to wait. Meanwhile nothing may be created in it (:func:`check_namespace_open`, the
  ``NamespaceLifecycle`` admission plugin). A Namespace's own ``metadata.finalizers``, and
  ``spec.finalizers`` other than ``kubernetes``, hold it as finalizers hold any object.
- An object created with ``ownerReferences`` none of whose owners exists is
  collected at once (:func:`collect_if_orphaned`).

Unlike the apiserver, where the garbage collector works asynchronously,
everything a request causes is done before it is answered; what watchers see
is the same sequence of events.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from dockyard.api import errors, kinds, objectmeta, phases, timefmt
from dockyard.apiserver import objects
from dockyard.storage import sqlite

Obj = dict[str, Any]

FOREGROUND = objectmeta.FOREGROUND
_NODE = kinds.by_kind("v1", "Node")
assert _NODE is not None
NODE: kinds.ResourceInfo = _NODE
_NAMESPACE = kinds.by_kind("v1", "Namespace")
assert _NAMESPACE is not None
NAMESPACE: kinds.ResourceInfo = _NAMESPACE
NAMESPACE_FINALIZER = objectmeta.NAMESPACE_FINALIZER
"""The ``spec.finalizers`` entry every Namespace gets at create: its content is deleted (done here)."""
DEFAULT_POD_GRACE = 30
"""Seconds of a pod's graceful deletion when neither the request nor ``spec.terminationGracePeriodSeconds`` says."""
POLICIES = ("Background", "Foreground", "Orphan")
MAX_CASCADE = 100_000
"""Upper bound on objects one deletion touches (cascade and namespace contents)."""


def _is_namespace(info: kinds.ResourceInfo) -> bool:
    return info.kind == "Namespace" and info.group == ""


def _mark(store: sqlite.Store, info: kinds.ResourceInfo, obj: Obj, *, add_finalizer: str | None = None) -> Obj:
    """Set ``deletionTimestamp`` (once) and optionally add a finalizer; returns the stored object."""
    marked = copy.deepcopy(obj)
    meta = marked["metadata"]
    if not meta.get("deletionTimestamp"):
        meta["deletionTimestamp"] = objects.now_rfc3339()
        meta["deletionGracePeriodSeconds"] = 0  # nothing to wait for but the finalizers
    if add_finalizer and add_finalizer not in (meta.get("finalizers") or []):
        meta["finalizers"] = list(meta.get("finalizers") or []) + [add_finalizer]
    return obj if marked == obj else store.update(info, marked)


def _is_pod(info: kinds.ResourceInfo) -> bool:
    return info.kind == "Pod" and info.group == ""


def pod_grace(pod: Obj, requested: int | None) -> int:
    """Seconds a delete of ``pod`` gives it to stop (kube-apiserver ``CheckGracefulDelete`` for pods).

    ``requested`` (the ``gracePeriodSeconds`` of the request), else ``spec.terminationGracePeriodSeconds``,
    else :data:`DEFAULT_POD_GRACE`; a negative request counts as 1 (as since Kubernetes 1.27). 0 for a pod that
    no node runs: unscheduled (no ``spec.nodeName``), or ``Succeeded`` or ``Failed``.
    """
    spec = pod.get("spec") if isinstance(pod.get("spec"), dict) else {}
    status = pod.get("status") if isinstance(pod.get("status"), dict) else {}
    if not spec.get("nodeName") or status.get("phase") in phases.POD_TERMINAL:
        return 0
    if requested is not None:
        return 1 if requested < 0 else int(requested)
    configured = spec.get("terminationGracePeriodSeconds")
    return max(0, int(configured)) if isinstance(configured, int) else DEFAULT_POD_GRACE


def _node_exists(store: sqlite.Store, pod: Obj) -> bool:
    """Whether the Node ``pod`` is bound to exists: no node will ever stop a pod bound to none, so it goes at once
    (what kube-controller-manager's PodGC does to such pods, ``gcOrphaned``, without its wait)."""
    node_name = (pod.get("spec") or {}).get("nodeName")
    if not node_name:
        return False
    try:
        store.get(NODE, None, str(node_name))
    except errors.NotFound:
        return False
    return True


def _graceful(store: sqlite.Store, info: kinds.ResourceInfo, pod: Obj, grace: int) -> Obj:
    """Mark ``pod`` deleted in ``grace`` seconds (``deletionTimestamp`` = now + grace), or move an earlier
    mark closer; a mark is never moved later (``rest.BeforeDelete``). Returns the stored pod."""
    meta = pod["metadata"]
    current = meta.get("deletionGracePeriodSeconds")
    if meta.get("deletionTimestamp") and isinstance(current, int) and current <= grace:
        return pod
    marked = copy.deepcopy(pod)
    marked["metadata"]["deletionTimestamp"] = timefmt.format(time.time() + grace)
    marked["metadata"]["deletionGracePeriodSeconds"] = grace
    return store.update(info, marked)


def _stopped_gracefully(store: sqlite.Store, info: kinds.ResourceInfo, obj: Obj) -> bool:
    """A dependent the garbage collector deletes: if it is a pod a node runs, mark it for graceful deletion with its
    own grace period (the collector's delete carries no ``gracePeriodSeconds``) and return True: it stays until its
    node has stopped it. False for anything to remove now."""
    if not _is_pod(info):
        return False
    period = pod_grace(obj, None) if _node_exists(store, obj) else 0
    if period <= 0:
        return False
    _graceful(store, info, obj, period)
    return True


def _dependents(
    store: sqlite.Store, obj: Obj, info: kinds.ResourceInfo
) -> list[tuple[kinds.ResourceInfo, str | None, str]]:
    scope = obj["metadata"].get("namespace") if info.namespaced else None
    return [(i, ns or None, n) for i, ns, n in store.dependents(obj["metadata"].get("uid", ""), scope)]


def _blocking(store: sqlite.Store, obj: Obj, info: kinds.ResourceInfo) -> bool:
    """True if a dependent that blocks its owner's deletion still exists."""
    uid = obj["metadata"].get("uid")
    for dep_info, dep_ns, dep_name in _dependents(store, obj, info):
        try:
            dep = store.get(dep_info, dep_ns, dep_name)
        except errors.NotFound:
            continue
        if any(
            r.get("uid") == uid and r.get("blockOwnerDeletion") for r in dep["metadata"].get("ownerReferences") or []
        ):
            return True
    return False


def _orphan(store: sqlite.Store, obj: Obj, info: kinds.ResourceInfo) -> None:
    uid = obj["metadata"].get("uid")
    for dep_info, dep_ns, dep_name in _dependents(store, obj, info)[:MAX_CASCADE]:
        try:
            dep = copy.deepcopy(store.get(dep_info, dep_ns, dep_name))
        except errors.NotFound:
            continue
        refs = [r for r in dep["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
        if refs:
            dep["metadata"]["ownerReferences"] = refs
        else:
            dep["metadata"].pop("ownerReferences", None)
        store.update(dep_info, dep)


def _owners(gone: Obj) -> list[tuple[kinds.ResourceInfo, str | None, str, str]]:
    out = []
    for ref in gone["metadata"].get("ownerReferences") or []:
        owner_info = kinds.by_kind(str(ref.get("apiVersion", "")), str(ref.get("kind", "")))
        if owner_info is not None:
            ns = gone["metadata"].get("namespace") if owner_info.namespaced else None
            out.append((owner_info, ns, str(ref.get("name", "")), str(ref.get("uid", ""))))
    return out


def remove(
    store: sqlite.Store, info: kinds.ResourceInfo, namespace: str | None, name: str, *, orphan: bool = False
) -> Obj:
    """Remove an object now, then (unless ``orphan``) its dependents and a Namespace's contents.

    Dependents with finalizers are only marked; owners waiting in foreground
    deletion are removed when their last blocking dependent goes.
    Returns the removed object's last state.
    """
    root = store.get(info, namespace, name)
    if orphan:
        _orphan(store, root, info)
    gone = store.delete(info, namespace, name)
    pending: list[tuple[kinds.ResourceInfo, str | None, str]] = []
    if _is_namespace(info):
        pending += [(i, name, n) for i, n in store.namespace_contents(name)]
    if not orphan:
        pending += _dependents(store, gone, info)
    removed = [gone]
    touched = 0
    while pending and touched < MAX_CASCADE:
        dep_info, dep_ns, dep_name = pending.pop()
        touched += 1
        try:
            dep = store.get(dep_info, dep_ns, dep_name)
        except errors.NotFound:
            continue
        if dep["metadata"].get("finalizers") and not _is_namespace(info):
            _mark(store, dep_info, dep)
            continue
        if not _is_namespace(info) and _stopped_gracefully(store, dep_info, dep):
            continue
        dep_gone = store.delete(dep_info, dep_ns, dep_name)
        removed.append(dep_gone)
        pending += _dependents(store, dep_gone, dep_info)
    for obj in removed[1:] + removed[:1]:
        _release_owners(store, obj)
    for emptied in {str(obj["metadata"].get("namespace") or "") for obj in removed} - {""}:
        finish_namespace(store, emptied)
    return gone


def _release(store: sqlite.Store, info: kinds.ResourceInfo, owner: Obj) -> None:
    """Finish the foreground deletion of ``owner`` if no blocking dependent is left."""
    meta = owner["metadata"]
    if FOREGROUND not in (meta.get("finalizers") or []) or _blocking(store, owner, info):
        return
    released = copy.deepcopy(owner)
    rest = [f for f in meta["finalizers"] if f != FOREGROUND]
    if rest:
        released["metadata"]["finalizers"] = rest
        store.update(info, released)
        return
    released["metadata"].pop("finalizers")
    store.update(info, released)
    remove(store, info, meta.get("namespace") if info.namespaced else None, meta["name"])


def _release_owners(store: sqlite.Store, gone: Obj) -> None:
    """Owners of a removed object that wait in foreground deletion."""
    for owner_info, ns, owner_name, uid in _owners(gone):
        try:
            owner = store.get(owner_info, ns, owner_name)
        except errors.NotFound:
            continue
        if owner["metadata"].get("uid") == uid:
            _release(store, owner_info, owner)


def delete(
    store: sqlite.Store, info: kinds.ResourceInfo, old: Obj, *, policy: str | None, grace: int | None = None
) -> Obj:
    """Delete the stored object ``old`` with a propagation policy; returns what the client sees.

    Args:
        grace: the request's ``gracePeriodSeconds`` (seconds; None if not given): for a pod, the grace period
            of its graceful deletion (:func:`pod_grace`); other kinds have none.

    Returns the marked object when it stays (a pod's graceful deletion, finalizers, or foreground
    deletion with blocking dependents), else its last state.

    Raises:
        errors.BadRequest: unknown ``policy``.
    """
    if policy not in (None, "", *POLICIES):
        raise errors.BadRequest(
            f'propagationPolicy: Unsupported value: "{policy}": supported values: "Background", "Foreground", "Orphan"'
        )
    meta = old["metadata"]
    namespace, name = meta.get("namespace"), meta["name"]
    if _is_namespace(info):
        return _delete_namespace(store, info, old)
    if _is_pod(info) and not (policy == "Foreground" and _dependents(store, old, info)):
        if policy == "Orphan":
            _orphan(store, old, info)  # now: the node's final delete carries no policy
        period = pod_grace(old, grace) if _node_exists(store, old) else 0
        if meta.get("deletionTimestamp"):
            current = meta.get("deletionGracePeriodSeconds")
            if isinstance(current, int) and period >= current:
                return old  # a deletion under way is never made longer
            if period > 0 or meta.get("finalizers"):
                return _graceful(store, info, old, period)  # sooner; at 0 only its finalizers hold it
        elif period > 0:
            return _graceful(store, info, old, period)
    if policy == "Foreground" and not _is_namespace(info) and _dependents(store, old, info):
        marked = _mark(store, info, old, add_finalizer=FOREGROUND)
        for dep_info, dep_ns, dep_name in _dependents(store, marked, info)[:MAX_CASCADE]:
            try:
                dep = store.get(dep_info, dep_ns, dep_name)
            except errors.NotFound:
                continue
            if dep["metadata"].get("finalizers"):
                _mark(store, dep_info, dep)
            elif not _stopped_gracefully(store, dep_info, dep):
                remove(store, dep_info, dep_ns, dep_name)
        try:
            _release(store, info, store.get(info, namespace, name))
            return store.get(info, namespace, name)
        except errors.NotFound:  # released by the last dependent's removal
            return marked
    if meta.get("finalizers"):
        if policy == "Orphan":
            _orphan(store, old, info)
        return _mark(store, info, old)
    return remove(store, info, namespace, name, orphan=policy == "Orphan")


def collect_if_orphaned(store: sqlite.Store, info: kinds.ResourceInfo, obj: Obj) -> bool:
    """Remove a just-written object whose every owner is gone; returns True if it was removed.

    The garbage collector deletes an object once none of the owners its
    ``ownerReferences`` name exists (matched by uid) — e.g. a ReplicaSet a
    controller created for a Deployment deleted a moment before. References to
    kinds this server does not serve are assumed to exist.
    """
    owners = _owners(obj)
    refs = obj["metadata"].get("ownerReferences") or []
    if not refs or len(owners) < len(refs):
        return False
    for owner_info, ns, owner_name, uid in owners:
        try:
            if store.get(owner_info, ns, owner_name)["metadata"].get("uid") == uid:
                return False
        except errors.NotFound:
            continue
    remove(store, info, obj["metadata"].get("namespace") if info.namespaced else None, obj["metadata"]["name"])
    return True


def finished(old: Obj, new: Obj) -> bool:
    """Whether an update of ``old`` to ``new`` removes the object: it is deleted (``deletionTimestamp``), no
    finalizer is left, and no grace period is pending (``deletionGracePeriodSeconds`` 0: a pod whose node has
    not yet stopped it stays, whatever its status updates; kube-apiserver ``Store.shouldDeleteDuringUpdate``)."""
    meta = new["metadata"]
    return (
        bool(meta.get("deletionTimestamp"))
        and not meta.get("finalizers")
        and not old["metadata"].get("deletionGracePeriodSeconds")
    )


def finish(store: sqlite.Store, info: kinds.ResourceInfo, obj: Obj) -> Obj:
    """An update left a deleted object (``deletionTimestamp``) without finalizers: remove it now (a Namespace
    once nothing is left in it, :func:`finish_namespace`). Returns what the client sees."""
    stored = store.update(info, obj)
    if _is_namespace(info):
        return finish_namespace(store, obj["metadata"]["name"]) or stored
    return remove(store, info, obj["metadata"].get("namespace"), obj["metadata"]["name"])


def _delete_namespace(store: sqlite.Store, info: kinds.ResourceInfo, ns: Obj) -> Obj:
    """Mark Namespace ``ns`` Terminating, delete everything in it as a client's ``DELETE`` would (pods a node runs
    stay Terminating until it removes them, objects with finalizers until those are cleared), and remove it
    if nothing is left. Returns the Terminating Namespace (what kube-apiserver answers, whether or not it is
    gone by then).

    Raises:
        errors.Conflict: it is Terminating already and its content, or a ``spec.finalizers`` entry, is not gone
            (409, in kube-apiserver's words; a Namespace only its ``metadata.finalizers`` hold is answered as is).
    """
    name = ns["metadata"]["name"]
    if ns["metadata"].get("deletionTimestamp"):
        if not _spec_finalizers(ns) and not store.namespace_contents(name, limit=1):
            return ns
        raise errors.Conflict(
            f'Operation cannot be fulfilled on namespaces "{name}": The system is ensuring all content is removed '
            "from this namespace.  Upon completion, this namespace will automatically be purged by the system.",
            details={"name": name, "kind": "namespaces"},
        )
    for dep_info, dep_name in store.namespace_contents(name)[:MAX_CASCADE]:
        try:
            dep = store.get(dep_info, name, dep_name)
        except errors.NotFound:
            continue  # went with an owner deleted before it
        delete(store, dep_info, dep, policy=None)  # before the mark: no status of what remains per removal
    marked = copy.deepcopy(store.get(info, None, name))
    marked["metadata"].update(deletionTimestamp=objects.now_rfc3339(), deletionGracePeriodSeconds=0)
    status = marked.get("status") if isinstance(marked.get("status"), dict) else {}
    marked["status"] = {**status, "phase": phases.NamespacePhase.TERMINATING}
    marked = store.update(info, marked)
    return finish_namespace(store, name) or store.get(info, None, name)


def _spec_finalizers(ns: Obj) -> list[str]:
    """Namespace ``ns``'s ``spec.finalizers`` but :data:`NAMESPACE_FINALIZER` (whose work, deleting the content, is
    this module's)."""
    spec = ns.get("spec") if isinstance(ns.get("spec"), dict) else {}
    return [str(f) for f in spec.get("finalizers") or [] if f != NAMESPACE_FINALIZER]


def _held(ns: Obj) -> bool:
    """Whether finalizers hold Namespace ``ns``: ``metadata.finalizers`` or :func:`_spec_finalizers`."""
    return bool(ns["metadata"].get("finalizers") or _spec_finalizers(ns))


def finish_namespace(store: sqlite.Store, namespace: str) -> Obj | None:
    """Remove Namespace ``namespace`` if it is Terminating (``deletionTimestamp``), no finalizer holds it and
    nothing is left in it; returns its last state if it was removed, else None. A Terminating Namespace that
    stays gets its ``status.conditions`` brought up to date (:func:`namespace_conditions`)."""
    try:
        ns = store.get(NAMESPACE, None, namespace)
    except errors.NotFound:
        return None
    if not ns["metadata"].get("deletionTimestamp"):
        return None
    if not _held(ns) and not store.namespace_contents(namespace, limit=1):
        return store.delete(NAMESPACE, None, namespace)
    status = ns.get("status") if isinstance(ns.get("status"), dict) else {}
    conditions = namespace_conditions(store, namespace, status.get("conditions"))
    if conditions != status.get("conditions"):
        updated = copy.deepcopy(ns)
        updated["status"] = {**status, "conditions": conditions}
        store.update(NAMESPACE, updated)
    return None


_NAMESPACE_OK = {
    "NamespaceDeletionDiscoveryFailure": ("ResourcesDiscovered", "All resources successfully discovered"),
    "NamespaceDeletionGroupVersionParsingFailure": ("ParsedGroupVersions", "All legacy kube types successfully parsed"),
    "NamespaceDeletionContentFailure": (
        "ContentDeleted",
        "All content successfully deleted, may be waiting on finalization",
    ),
    "NamespaceContentRemaining": ("ContentRemoved", "All content successfully removed"),
    "NamespaceFinalizersRemaining": ("ContentHasNoFinalizers", "All content-preserving finalizers finished"),
}
"""The namespace controller's condition types with their reason and message when nothing is wrong."""


def namespace_conditions(store: sqlite.Store, namespace: str, old: Any) -> list[Obj]:
    """The ``status.conditions`` of Terminating Namespace ``namespace``, as kube-controller-manager's namespace
    controller writes them (``namespaceConditionUpdater``, pkg/controller/namespace/deletion): its five types,
    ``NamespaceContentRemaining`` True (``SomeResourcesRemain``: ``Some resources are remaining: pods. has 2
    resource instances``) while objects are left and ``NamespaceFinalizersRemaining`` True
    (``SomeFinalizersRemain``) while some carry finalizers, each False with its reason otherwise. A condition
    whose status, reason and message are unchanged keeps its entry (``lastTransitionTime``) from ``old``."""
    per_resource, per_finalizer = store.namespace_remaining(namespace)
    remaining = sorted(
        f"{info.plural}.{info.group} has {count} resource instances"
        for key, count in per_resource.items()
        if (info := kinds.by_key(key)) is not None
    )
    finalizers = sorted(f"{finalizer} in {count} resource instances" for finalizer, count in per_finalizer.items())
    problems = {}
    if remaining:
        problems["NamespaceContentRemaining"] = (
            "SomeResourcesRemain",
            "Some resources are remaining: " + ", ".join(remaining),
        )
    if finalizers:
        problems["NamespaceFinalizersRemaining"] = (
            "SomeFinalizersRemain",
            "Some content in the namespace has finalizers remaining: " + ", ".join(finalizers),
        )
    before = {c.get("type"): c for c in old if isinstance(c, dict)} if isinstance(old, list) else {}
    now = objects.now_rfc3339()
    out = []
    for type_, ok in _NAMESPACE_OK.items():
        status = "True" if type_ in problems else "False"
        reason, message = problems.get(type_, ok)
        kept = before.get(type_)
        if kept and (kept.get("status"), kept.get("reason"), kept.get("message")) == (status, reason, message):
            out.append(kept)
        else:
            out.append(
                {"type": type_, "status": status, "lastTransitionTime": now, "reason": reason, "message": message}
            )
    return out


def check_namespace_open(ns: Obj, info: kinds.ResourceInfo, name: str) -> None:
    """Refuse a create of ``name`` of ``info`` in Namespace ``ns`` (the stored object) while it is Terminating, as
    the ``NamespaceLifecycle`` admission plugin does.

    Raises:
        errors.Forbidden: 403 ``<resource> "<name>" is forbidden: unable to create new content in namespace
            <namespace> because it is being terminated``, with the cause ``NamespaceTerminating``.
    """
    if not ns["metadata"].get("deletionTimestamp"):
        return
    namespace = ns["metadata"]["name"]
    raise errors.Forbidden(
        f'{sqlite.resource_key(info)} "{name}" is forbidden: unable to create new content in namespace {namespace} because it is '
        "being terminated",
        details={
            "name": name,
            "group": info.group,
            "kind": info.plural,
            "causes": [
                {
                    "reason": "NamespaceTerminating",
                    "message": f"namespace {namespace} is being terminated",
                    "field": "metadata.namespace",
                }
            ],
        },
    )
