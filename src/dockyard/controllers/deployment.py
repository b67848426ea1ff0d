"""Deployment and ReplicaSet controllers for the embedded engine.

Deployment → ReplicaSet → Pod as in Kubernetes (``pkg/controller/deployment``,
``pkg/controller/replicaset``), so ``kubectl rollout status|history|undo``
read what they expect: ReplicaSets named ``<deployment>-<pod-template-hash>``,
the ``deployment.kubernetes.io/revision`` annotation, and Deployment status
``observedGeneration``, ``replicas``, ``updatedReplicas``, ``readyReplicas``,
``availableReplicas``, ``unavailableReplicas`` and the ``Available`` /
``Progressing`` conditions. On a real cluster these controllers do not run.
"""

from __future__ import annotations

import copy
import logging
import time
from typing import Any

from lightkube import ApiError
from lightkube.models.apps_v1 import ReplicaSetSpec
from lightkube.models.core_v1 import PodTemplateSpec
from lightkube.models.meta_v1 import ObjectMeta, OwnerReference
from lightkube.resources.apps_v1 import Deployment, ReplicaSet
from lightkube.resources.core_v1 import Pod
from lightkube.types import PatchType

from dockyard.api import labels as well_known
from dockyard.api import labelselector, phases, timefmt, workloads
from dockyard.client import events, resources, runtime
from dockyard.controllers import rollout

log = logging.getLogger(__name__)

HASH_LABEL = well_known.POD_TEMPLATE_HASH
REVISION = well_known.DEPLOYMENT_REVISION


# Annotations the Deployment controller does not copy to its ReplicaSets (``skipCopyAnnotation``).
_NOT_COPIED = frozenset(
    {
        REVISION,
        well_known.LAST_APPLIED_CONFIG,
        well_known.DEPLOYMENT_REVISION_HISTORY,
        well_known.DEPLOYMENT_DESIRED_REPLICAS,
        well_known.DEPLOYMENT_MAX_REPLICAS,
    }
)


def _annotations(obj: Any) -> dict[str, str]:
    """``metadata.annotations`` of a typed object (empty when unset)."""
    return dict(_meta(obj).annotations or {})


def _labels(obj: Any) -> dict[str, str]:
    """``metadata.labels`` of a typed object (empty when unset)."""
    return dict(_meta(obj).labels or {})


def _copied_annotations(deploy: Deployment) -> dict[str, str]:
    """The Deployment's annotations its newest ReplicaSet carries (``kubernetes.io/change-cause``, ...)."""
    return {k: v for k, v in _annotations(deploy).items() if k not in _NOT_COPIED}


def _revision(rs: ReplicaSet) -> int:
    try:
        return int(_annotations(rs).get(REVISION, "0"))
    except ValueError:
        return 0


def _replicas(obj: Deployment | ReplicaSet, default: int = 1) -> int:
    """``spec.replicas`` (``default`` when unset, as the API server's defaulting would)."""
    assert obj.spec is not None
    return default if obj.spec.replicas is None else obj.spec.replicas


def _owner(obj: Any) -> OwnerReference:
    return OwnerReference(**resources.owner_reference(obj))


def _meta(obj: Any) -> ObjectMeta:
    """``metadata`` of a typed object read from the API (always present there)."""
    meta = obj.metadata
    assert isinstance(meta, ObjectMeta), f"{type(obj).__name__} without metadata"
    return meta


def _name(obj: Any) -> str:
    """``metadata.name`` of a typed object read from the API."""
    return str(_meta(obj).name)


# --- conditions and status, as deploymentutil (util/deployment_util.go) and progress.go write them -------------

AVAILABLE, PROGRESSING = "Available", "Progressing"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = rollout.TIMED_OUT
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
"""Reasons of the Deployment conditions (``deploymentutil.*Reason``)."""

DEFAULT_PROGRESS_DEADLINE = workloads.DEFAULT_PROGRESS_DEADLINE


def _conditions(deploy: Deployment) -> list[dict[str, Any]]:
    """``status.conditions`` in wire shape."""
    return [c.to_dict() for c in (deploy.status.conditions or [])] if deploy.status is not None else []


def _condition(conditions: list[dict[str, Any]], type_: str) -> dict[str, Any]:
    """The condition of ``type_`` (empty when absent)."""
    return next((c for c in conditions if c.get("type") == type_), {})


def _new_condition(type_: str, status: str, reason: str, message: str, now: float) -> dict[str, Any]:
    """``NewDeploymentCondition``: both times ``now``."""
    stamp = timefmt.format(now)
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastUpdateTime": stamp,
        "lastTransitionTime": stamp,
    }


def _set(
    conditions: list[dict[str, Any]], type_: str, status: str, reason: str, message: str, now: float
) -> list[dict[str, Any]]:
    """``SetDeploymentCondition``: unchanged when status and reason are; ``lastTransitionTime`` kept while the
    status stays."""
    current = _condition(conditions, type_)
    if current.get("status") == status and current.get("reason") == reason:
        return conditions
    fresh = _new_condition(type_, status, reason, message, now)
    if current.get("status") == status:
        fresh["lastTransitionTime"] = current.get("lastTransitionTime", fresh["lastTransitionTime"])
    return [c for c in conditions if c.get("type") != type_] + [fresh]


def _deadline(deploy: Deployment) -> int | None:
    """``progressDeadlineSeconds`` (``HasProgressDeadline``: None when it is MaxInt32, i.e. no deadline)."""
    assert deploy.spec is not None
    seconds = deploy.spec.progressDeadlineSeconds
    seconds = DEFAULT_PROGRESS_DEADLINE if seconds is None else seconds
    return None if seconds >= 2**31 - 1 else seconds


def _calculate_status(
    deploy: Deployment, new: ReplicaSet | None, sets: list[ReplicaSet], conditions: list[dict[str, Any]], now: float
) -> dict[str, Any]:
    """``calculateStatus`` (sync.go): counts over all ReplicaSets and the Available condition."""
    assert deploy.spec is not None
    desired = _replicas(deploy)
    statuses = [rs.status for rs in sets if rs.status is not None]
    available = sum(s.availableReplicas or 0 for s in statuses)
    if available >= desired - rollout.max_unavailable(deploy.spec.strategy, desired):
        conditions = _set(conditions, AVAILABLE, "True", MIN_AVAILABLE, "Deployment has minimum availability.", now)
    else:
        message = "Deployment does not have minimum availability."
        conditions = _set(conditions, AVAILABLE, "False", MIN_UNAVAILABLE, message, now)
    return {
        "observedGeneration": _meta(deploy).generation,
        "replicas": sum(s.replicas or 0 for s in statuses),
        "updatedReplicas": (new.status.replicas or 0) if new is not None and new.status is not None else 0,
        "readyReplicas": sum(s.readyReplicas or 0 for s in statuses),
        "availableReplicas": available,
        "unavailableReplicas": max(0, sum(_replicas(rs, 0) for rs in sets) - available),
        "conditions": conditions,
    }


def _complete(deploy: Deployment, status: dict[str, Any]) -> bool:
    """``DeploymentComplete``: every replica updated and available, and the status is of this generation."""
    desired = _replicas(deploy)
    return (
        status["updatedReplicas"] == desired
        and status["replicas"] == desired
        and status["availableReplicas"] == desired
        and int(status["observedGeneration"] or 0) >= int(_meta(deploy).generation or 0)
    )


def _progressing(deploy: Deployment, status: dict[str, Any]) -> bool:
    """``DeploymentProgressing``: more updated, ready or available replicas than before, or fewer old ones."""
    before = deploy.status
    if before is None:
        return bool(status["updatedReplicas"] or status["readyReplicas"] or status["availableReplicas"])
    old_before = (before.replicas or 0) - (before.updatedReplicas or 0)
    old_now = status["replicas"] - status["updatedReplicas"]
    return bool(
        status["updatedReplicas"] > (before.updatedReplicas or 0)
        or status["readyReplicas"] > (before.readyReplicas or 0)
        or status["availableReplicas"] > (before.availableReplicas or 0)
        or old_before > old_now
    )


def _timed_out(conditions: list[dict[str, Any]], deadline: int, now: float) -> bool:
    """``DeploymentTimedOut``: the Progressing condition's ``lastUpdateTime`` is older than the deadline."""
    cond = _condition(conditions, PROGRESSING)
    if not cond or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    since = timefmt.parse_or_none(cond.get("lastUpdateTime") or "")
    return since is not None and since + deadline < now


class DeploymentController(runtime.Controller):
    """Reconciles ``Deployment`` objects into ReplicaSets."""

    name = "deployment"

    def watches(self) -> list[runtime.Watch]:
        return [
            runtime.Watch("Deployment"),
            runtime.Watch("ReplicaSet", runtime.owner_keys("Deployment")),
            runtime.Watch("Pod", self._recreate_pod_deleted),
        ]

    def _recreate_pod_deleted(self, event: str, pod: Pod) -> list[str]:
        """``deletePod`` of the upstream controller: a pod of a ``Recreate`` Deployment is gone, which may be
        the last old pod its new ReplicaSet waits for."""
        if event != "DELETED":
            return []
        ns, rs_name = _meta(pod).namespace, resources.controller_of(pod, "ReplicaSet")
        rs = self.lister(ReplicaSet).get(ns, rs_name) if ns and rs_name else None
        owner = resources.controller_of(rs, "Deployment") if rs is not None else None
        deploy = self.lister(Deployment).get(ns, owner) if ns and owner else None
        if deploy is None or deploy.spec is None or not rollout.is_recreate(deploy.spec.strategy):
            return []
        return [f"{ns}/{owner}"]

    def _running(self, rs: ReplicaSet) -> int:
        """Pods of ``rs`` not yet ``Succeeded`` or ``Failed``, those being deleted included (``oldPodsRunning``:
        a pod in its grace period still runs)."""
        return sum(
            1
            for p in self.lister(Pod).owned_by(rs)
            if resources.controller_of(p, "ReplicaSet") == _name(rs)
            and (p.status.phase if p.status else None) not in phases.POD_TERMINAL
        )

    def reconcile(self, key: str) -> float | None:
        """One ``syncDeployment``: find or create the new ReplicaSet, scale (RollingUpdate, Recreate; a paused
        Deployment is only scaled), clean up old ReplicaSets, write status and conditions. Returns the seconds
        after which the progress deadline must be checked again (``requeueStuckDeployment``), or None."""
        ns, name = resources.split_key(key)
        deploy = self.lister(Deployment).get(ns, name)
        if deploy is None or runtime.unseen_write(deploy):
            return None  # gone; or the cache has not seen this controller's last status write yet (its event comes)
        assert deploy.spec is not None
        spec = deploy.spec
        desired = _replicas(deploy)
        paused = bool(spec.paused)
        # from the cache: a ReplicaSet it has not seen yet is created again (409, then read) and a stale one
        # is replaced with its old resourceVersion (409 Conflict, requeued), as upstream relies on
        sets: list[ReplicaSet] = self.lister(ReplicaSet).owned_by(deploy)
        template = copy.deepcopy(spec.template)
        if template.metadata is None:
            template.metadata = ObjectMeta()
        _meta(template).creationTimestamp = None
        hash_ = rollout.template_hash(template.to_dict())
        new = next((rs for rs in sets if _labels(rs).get(HASH_LABEL) == hash_), None)
        old = sorted((rs for rs in sets if rs is not new), key=_revision)
        top = max([_revision(rs) for rs in sets] or [0])
        conditions = _conditions(deploy)
        now = time.time()
        # checkPausedConditions
        progressing = _condition(conditions, PROGRESSING)
        if paused and progressing.get("reason") != PAUSED:
            conditions = _set(conditions, PROGRESSING, "Unknown", PAUSED, "Deployment is paused", now)
        elif not paused and progressing.get("reason") == PAUSED:
            conditions = _set(conditions, PROGRESSING, "Unknown", RESUMED, "Deployment is resumed", now)
        if new is None and not paused:
            new = self._create_rs(deploy, template, hash_, top + 1, 0 if old else desired)
            message = f'Created new replica set "{_name(new)}"'
            conditions = _set(conditions, PROGRESSING, "True", NEW_RS_CREATED, message, now)
        elif new is not None:
            new = self._sync_new(deploy, new, top)
            if not _condition(conditions, PROGRESSING):
                message = f'Found new replica set "{_name(new)}"'
                conditions = _set(conditions, PROGRESSING, "True", FOUND_NEW_RS, message, now)
        if new is not None and _annotations(deploy).get(REVISION) != _annotations(new).get(REVISION):
            deploy = self.api.patch(
                Deployment,
                name,
                {"metadata": {"annotations": {REVISION: _annotations(new)[REVISION]}}},
                namespace=ns,
                patch_type=PatchType.MERGE,
            )

        recreate = rollout.is_recreate(spec.strategy)

        def state(rs: ReplicaSet) -> rollout.ReplicaSetState:
            return rollout.ReplicaSetState(
                _name(rs),
                _replicas(rs, 0),
                (rs.status.availableReplicas or 0) if rs.status else 0,
                running=self._running(rs) if recreate and rs is not new else 0,
            )

        if new is not None and not paused:
            steps = rollout.plan(desired=desired, strategy=spec.strategy, new=state(new), old=[state(rs) for rs in old])
        else:  # paused: scale only (the one active ReplicaSet, or the new one when it alone is active)
            active = [rs for rs in sets if _replicas(rs, 0) > 0] or ([new] if new is not None else [])
            steps = {_name(active[0]): desired} if len(active) == 1 and _replicas(active[0], 0) != desired else {}
        by_name = {_name(rs): rs for rs in sets if rs is not None}
        if new is not None:
            by_name[_name(new)] = new
        for rs_name, replicas in steps.items():
            rs = copy.deepcopy(by_name[rs_name])
            before = _replicas(rs, 0)
            assert rs.spec is not None
            rs.spec.replicas = replicas
            updated = self.api.replace(rs)  # kind: ReplicaSet
            by_name[rs_name] = updated
            if new is not None and rs_name == _name(new):
                new = updated
            log.info("deployment %s: scaled %s to %d", key, rs_name, replicas)
            self.events.record(
                deploy,
                events.NORMAL,
                "ScalingReplicaSet",
                f"Scaled {'up' if replicas > before else 'down'} replica set {rs_name} from {before} to {replicas}",
            )
        status = _calculate_status(deploy, new, list(by_name.values()), conditions, now)
        again = None if paused else self._rollout_status(deploy, new, status, now)
        if paused or _complete(deploy, status):
            self._prune(deploy, [by_name[_name(rs)] for rs in old if _name(rs) in by_name])
        runtime.patch_status(self.api, "Deployment", deploy, status)
        return again

    def _sync_new(self, deploy: Deployment, new: ReplicaSet, top: int) -> ReplicaSet:
        """The existing new ReplicaSet brought in line (``getNewReplicaSet``): an old template taken back
        (``kubectl rollout undo``) becomes the newest revision, the Deployment's annotations (change-cause)
        follow it as ``rollout history`` shows them, and ``minReadySeconds`` is copied."""
        assert deploy.spec is not None and new.spec is not None
        annotations = {**_annotations(new), **_copied_annotations(deploy)}
        if _revision(new) < top:
            annotations[REVISION] = str(top + 1)
        min_ready = deploy.spec.minReadySeconds or 0
        if annotations == _annotations(new) and (new.spec.minReadySeconds or 0) == min_ready:
            return new
        new = copy.deepcopy(new)
        _meta(new).annotations = annotations
        assert new.spec is not None
        new.spec.minReadySeconds = min_ready
        updated: ReplicaSet = self.api.replace(new)  # kind: ReplicaSet
        return updated

    def _rollout_status(
        self, deploy: Deployment, new: ReplicaSet | None, status: dict[str, Any], now: float
    ) -> float | None:
        """``syncRolloutStatus`` (progress.go): the Progressing condition of ``status`` (changed in place) —
        NewReplicaSetAvailable when complete, ReplicaSetUpdated (``lastUpdateTime`` now) on progress,
        ProgressDeadlineExceeded (False) once ``progressDeadlineSeconds`` pass without progress. Returns
        the seconds until the deadline is due to be checked (``requeueStuckDeployment``), or None."""
        assert deploy.spec is not None
        deadline = _deadline(deploy)
        conditions: list[dict[str, Any]] = status["conditions"]
        current = _condition(conditions, PROGRESSING)
        if deadline is None:
            status["conditions"] = [c for c in conditions if c.get("type") != PROGRESSING]
            return None
        kind = f'ReplicaSet "{_name(new)}"' if new is not None else f'Deployment "{_name(deploy)}"'
        if status["replicas"] == status["updatedReplicas"] and current.get("reason") == NEW_RS_AVAILABLE:
            return None
        if _complete(deploy, status):
            conditions = _set(
                conditions, PROGRESSING, "True", NEW_RS_AVAILABLE, f"{kind} has successfully progressed.", now
            )
        elif _progressing(deploy, status):
            fresh = _new_condition(PROGRESSING, "True", RS_UPDATED, f"{kind} is progressing.", now)
            if current.get("status") == "True":
                fresh["lastTransitionTime"] = current.get("lastTransitionTime", fresh["lastTransitionTime"])
            conditions = [c for c in conditions if c.get("type") != PROGRESSING] + [fresh]
        elif _timed_out(conditions, deadline, now):
            if current.get("reason") != TIMED_OUT:
                self.events.record(deploy, events.WARNING, TIMED_OUT, f"{kind} has timed out progressing.")
            conditions = _set(conditions, PROGRESSING, "False", TIMED_OUT, f"{kind} has timed out progressing.", now)
        status["conditions"] = conditions
        cond = _condition(conditions, PROGRESSING)
        if cond.get("status") != "True" or cond.get("reason") == NEW_RS_AVAILABLE or _complete(deploy, status):
            return None
        since = timefmt.parse_or_none(cond.get("lastUpdateTime") or "")
        if since is None:
            return None
        return max(0.1, since + deadline - now + 0.5)

    def _create_rs(
        self, deploy: Deployment, template: PodTemplateSpec, hash_: str, revision: int, replicas: int
    ) -> ReplicaSet:
        assert deploy.spec is not None and template.metadata is not None
        meta = _meta(deploy)
        labels = {**(_meta(template).labels or {}), HASH_LABEL: hash_}
        _meta(template).labels = labels
        selector = copy.deepcopy(deploy.spec.selector)
        selector.matchLabels = {**(selector.matchLabels or {}), HASH_LABEL: hash_}
        rs_name = f"{meta.name}-{hash_}"
        body = ReplicaSet(
            metadata=ObjectMeta(
                name=rs_name,
                namespace=meta.namespace,
                labels=dict(labels),
                annotations={**_copied_annotations(deploy), REVISION: str(revision)},
                ownerReferences=[_owner(deploy)],
            ),
            spec=ReplicaSetSpec(
                replicas=replicas,
                selector=selector,
                template=template,
                minReadySeconds=deploy.spec.minReadySeconds or 0,
            ),
        )
        try:
            created: ReplicaSet = self.api.create(body, namespace=meta.namespace)  # kind: ReplicaSet
        except ApiError as err:
            if err.status.code != 409:
                raise
            created = self.api.get(ReplicaSet, rs_name, namespace=meta.namespace)
        log.info("deployment %s/%s: created replicaset %s (revision %d)", meta.namespace, meta.name, rs_name, revision)
        if replicas:
            self.events.record(
                deploy, events.NORMAL, "ScalingReplicaSet", f"Scaled up replica set {rs_name} from 0 to {replicas}"
            )
        return created

    def _prune(self, deploy: Deployment, old: list[ReplicaSet]) -> None:
        assert deploy.spec is not None
        limit = deploy.spec.revisionHistoryLimit
        limit = workloads.DEFAULT_REVISION_HISTORY_LIMIT if limit is None else limit
        idle = [rs for rs in old if _replicas(rs, 0) == 0 and (rs.status.replicas if rs.status else 0) == 0]
        for rs in idle[: max(0, len(idle) - limit)]:
            try:
                self.api.delete(ReplicaSet, _name(rs), namespace=_meta(rs).namespace)
            except ApiError as err:
                if err.status.code != 404:
                    raise


class ReplicaSetController(runtime.Controller):
    """Reconciles ``ReplicaSet`` objects into Pods (create missing, delete surplus).

    Reads the ReplicaSet and its pods from the informers' caches (``rsLister``, ``podLister``) and, as
    ``pkg/controller/replicaset`` does, manages replicas only when its :class:`~dockyard.client.runtime.Expectations`
    are satisfied: after creating or deleting pods it waits until the Pod informer has seen each of them, so
    a lagging cache never makes it create (or delete) twice.
    """

    name = "replicaset"

    def setup(self) -> None:
        super().setup()
        self.expectations = runtime.Expectations()

    def watches(self) -> list[runtime.Watch]:
        return [runtime.Watch("ReplicaSet"), runtime.Watch("Pod", runtime.owner_keys("ReplicaSet"))]

    def observe(self, kind: str, event: str, obj: Any) -> None:
        """``addPod`` / ``updatePod`` / ``deletePod`` of the upstream controller: a pod of a ReplicaSet seen
        created lowers its creation expectations; seen deleted or terminating, its deletion expectations."""
        if kind != "Pod":
            return
        owner = resources.controller_of(obj, "ReplicaSet")
        if not owner:
            return
        rs_key = f"{_meta(obj).namespace}/{owner}"
        if event == "DELETED" or _meta(obj).deletionTimestamp:
            self.expectations.deletion_observed(rs_key, resources.key(obj))
        elif event == "ADDED":
            self.expectations.creation_observed(rs_key)

    def reconcile(self, key: str) -> float | None:
        ns, name = resources.split_key(key)
        rs = self.lister(ReplicaSet).get(ns, name)
        if rs is None:
            self.expectations.forget(key)
            return None
        assert rs.spec is not None
        if not self.expectations.satisfied(key):
            # the Pod informer has not yet seen what this controller wrote: its events bring the key back
            log.debug("replicaset %s: waiting for the informer to see %s", key, self.expectations.pending(key))
            return None
        pods = self._claim_pods(rs)
        active = [
            p
            for p in pods
            if (p.status.phase if p.status else None) not in phases.POD_TERMINAL and not _meta(p).deletionTimestamp
        ]
        want = _replicas(rs)
        if len(active) < want:
            template = rs.spec.template
            assert template is not None
            tmeta = template.metadata or ObjectMeta()
            missing = want - len(active)
            self.expectations.expect_creations(key, missing)
            for made in range(missing):
                body = Pod(
                    metadata=ObjectMeta(
                        generateName=f"{name}-",
                        namespace=ns,
                        labels=dict(tmeta.labels or {}),
                        annotations=dict(tmeta.annotations or {}),
                        ownerReferences=[_owner(rs)],
                    ),
                    spec=copy.deepcopy(template.spec),
                )
                try:
                    created: Pod = self.api.create(body, namespace=ns)  # kind: Pod
                except Exception as err:
                    for _ in range(missing - made):  # none of the rest will be seen
                        self.expectations.creation_observed(key)
                    message = err.status.message if isinstance(err, ApiError) else str(err)
                    self.events.record(rs, events.WARNING, "FailedCreate", f"Error creating: {message}")
                    raise
                log.info("replicaset %s: created pod %s", key, _name(created))
                self.events.record(rs, events.NORMAL, "SuccessfulCreate", f"Created pod: {_name(created)}")
                active.append(created)
        elif len(active) > want:

            def order(p: Pod) -> tuple[bool, float]:  # not-ready and newest go first
                born = _meta(p).creationTimestamp
                return (_ready(p), -born.timestamp() if born else 0.0)

            surplus = sorted(active, key=order)[: len(active) - want]
            self.expectations.expect_deletions(key, [resources.key(p) for p in surplus])
            for pod in surplus:
                try:
                    self.api.delete(Pod, _name(pod), namespace=ns)
                    log.info("replicaset %s: deleted pod %s", key, _name(pod))
                    self.events.record(rs, events.NORMAL, "SuccessfulDelete", f"Deleted pod: {_name(pod)}")
                except ApiError as err:
                    # the informer will not see this deletion (it failed, or the pod was already gone)
                    self.expectations.deletion_observed(key, resources.key(pod))
                    if err.status.code != 404:
                        raise
                active.remove(pod)
        now = time.time()
        min_ready = rs.spec.minReadySeconds or 0
        ready = [p for p in active if _ready(p)]
        available = [p for p in ready if _available_in(p, min_ready, now) <= 0]
        waits = [_available_in(p, min_ready, now) for p in ready if p not in available]
        runtime.patch_status(
            self.api,
            "ReplicaSet",
            rs,
            {
                "replicas": len(active),
                "fullyLabeledReplicas": len(active),
                "readyReplicas": len(ready),
                "availableReplicas": len(available),
                "observedGeneration": _meta(rs).generation,
            },
        )
        # a Ready pod becomes available minReadySeconds later: look again then (``AddAfter``)
        due = [w for w in waits if w != float("inf")]
        return min(due) + 0.05 if due else None

    def _claim_pods(self, rs: ReplicaSet) -> list[Pod]:
        """The pods of ``rs``: those it controls that its whole selector (``matchLabels`` and
        ``matchExpressions``) matches. One it controls that the selector no longer matches (relabelled) is
        released, its ownerReference removed, as ``ClaimPods`` / ``ReleasePod`` of ``PodControllerRefManager``
        do: it runs on as an orphan and the ReplicaSet replaces it."""
        assert rs.spec is not None
        selector = rs.spec.selector.to_dict()
        owner = _name(rs)
        pods: list[Pod] = []
        for pod in self.lister(Pod).owned_by(rs):
            if labelselector.matches(selector, _labels(pod)):
                pods.append(pod)
            elif resources.controller_of(pod, "ReplicaSet") == owner and not _meta(pod).deletionTimestamp:
                self._release(rs, pod)
        return pods

    def _release(self, rs: ReplicaSet, pod: Pod) -> None:
        """Remove ``rs``'s ownerReference from ``pod`` (a JSON patch that tests the pod's uid and the entry's, so it
        never removes another owner's). Gone (404) or changed meanwhile (422, a failed test): nothing to do, as
        ``ReleasePod`` ignores NotFound and Invalid."""
        uid = _meta(rs).uid
        refs = _meta(pod).ownerReferences or []
        index = next((i for i, ref in enumerate(refs) if ref.uid == uid), None)
        if index is None:
            return
        patch = [
            {"op": "test", "path": "/metadata/uid", "value": _meta(pod).uid},
            {"op": "test", "path": f"/metadata/ownerReferences/{index}/uid", "value": uid},
            {"op": "remove", "path": f"/metadata/ownerReferences/{index}"},
        ]
        try:
            self.api.patch(Pod, _name(pod), patch, namespace=_meta(pod).namespace, patch_type=PatchType.JSON)
        except ApiError as err:
            if err.status.code not in (404, 422):
                raise
            return
        log.info("replicaset %s: released pod %s (its labels no longer match)", resources.key(rs), _name(pod))


def _available_in(pod: Pod, min_ready: int, now: float) -> float:
    """Seconds until the Ready ``pod`` counts as available (``podutil.IsPodAvailable``: Ready for
    ``minReadySeconds``, from the Ready condition's ``lastTransitionTime``); <= 0 when it is, ``inf`` when
    that time is unknown and ``min_ready`` > 0."""
    if min_ready <= 0:
        return 0.0
    conditions = (pod.status.conditions if pod.status else None) or []
    since = next((c.lastTransitionTime for c in conditions if c.type == "Ready"), None)
    if since is None:
        return float("inf")
    return since.timestamp() + min_ready - now


def _ready(pod: Pod) -> bool:
    """The pod's ``Ready`` condition is ``True`` (the kubelet's readiness, ``podutil.IsPodReady``)."""
    conditions = (pod.status.conditions if pod.status else None) or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)
