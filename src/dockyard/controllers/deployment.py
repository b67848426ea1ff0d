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
from typing import Any, cast

import msgspec
from lightkube import ApiError
from lightkube.models.apps_v1 import ReplicaSetSpec
from lightkube.models.core_v1 import PodTemplateSpec
from lightkube.models.meta_v1 import ObjectMeta, OwnerReference
from lightkube.resources.apps_v1 import Deployment, ReplicaSet
from lightkube.resources.core_v1 import Pod
from lightkube.types import PatchType

from dockyard.api import labels as well_known
from dockyard.api import phases
from dockyard.client import events, objects, resources, runtime
from dockyard.controllers import rollout

log = logging.getLogger(__name__)

HASH_LABEL = well_known.POD_TEMPLATE_HASH
REVISION = well_known.DEPLOYMENT_REVISION


def _owned(objs: list[Any], owner: Any) -> list[Any]:
    """The typed objects among ``objs`` that ``owner`` (typed) is an owner of (by uid)."""
    uid = _meta(owner).uid
    return [o for o in objs if any(r.uid == uid for r in _meta(o).ownerReferences or [])]


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


class DeploymentController(runtime.Controller):
    """Reconciles ``Deployment`` objects into ReplicaSets."""

    name = "deployment"

    def watches(self) -> list[runtime.Watch]:
        return [runtime.Watch("Deployment"), runtime.Watch("ReplicaSet", runtime.owner_keys("Deployment"))]

    def reconcile(self, key: str) -> float | None:
        ns, name = resources.split_key(key)
        deploy: Deployment | None = runtime.get(self.api, "Deployment", name, ns)
        if deploy is None:
            return None
        assert deploy.spec is not None
        spec = deploy.spec
        desired = _replicas(deploy)
        sets: list[ReplicaSet] = _owned(list(self.api.list(ReplicaSet, namespace=ns)), deploy)
        template = copy.deepcopy(spec.template)
        if template.metadata is None:
            template.metadata = ObjectMeta()
        _meta(template).creationTimestamp = None
        hash_ = rollout.template_hash(template.to_dict())
        new = next((rs for rs in sets if _labels(rs).get(HASH_LABEL) == hash_), None)
        old = sorted((rs for rs in sets if rs is not new), key=_revision)
        top = max([_revision(rs) for rs in sets] or [0])
        if new is None:
            new = self._create_rs(deploy, template, hash_, top + 1, 0 if old else desired)
        elif _revision(new) < top or any(_annotations(new).get(k) != v for k, v in _copied_annotations(deploy).items()):
            # rollback / undo: the old template becomes the newest revision; and the
            # Deployment's annotations (change-cause) follow it, as `rollout history` shows them
            annotations = {**_annotations(new), **_copied_annotations(deploy)}
            if _revision(new) < top:
                annotations[REVISION] = str(top + 1)
            _meta(new).annotations = annotations
            new = self.api.replace(new)
        if _annotations(deploy).get(REVISION) != _annotations(new).get(REVISION):
            deploy = self.api.patch(
                Deployment,
                name,
                {"metadata": {"annotations": {REVISION: _annotations(new)[REVISION]}}},
                namespace=ns,
                patch_type=PatchType.MERGE,
            )

        def state(rs: ReplicaSet) -> rollout.ReplicaSetState:
            return rollout.ReplicaSetState(
                _name(rs), _replicas(rs, 0), (rs.status.availableReplicas or 0) if rs.status else 0
            )

        steps = rollout.plan(desired=desired, strategy=spec.strategy, new=state(new), old=[state(rs) for rs in old])
        by_name = {_name(rs): rs for rs in [*sets, new]}
        for rs_name, replicas in steps.items():
            rs = copy.deepcopy(by_name[rs_name])
            before = _replicas(rs, 0)
            assert rs.spec is not None
            rs.spec.replicas = replicas
            updated = self.api.replace(rs)
            by_name[rs_name] = updated
            if rs_name == _name(new):
                new = updated
            log.info("deployment %s: scaled %s to %d", key, rs_name, replicas)
            self.events.record(
                deploy,
                events.NORMAL,
                "ScalingReplicaSet",
                f"Scaled {'up' if replicas > before else 'down'} replica set {rs_name} from {before} to {replicas}",
            )
        self._prune(deploy, [by_name[_name(rs)] for rs in old])
        self._status(deploy, new, list(by_name.values()))
        return None

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
            created: ReplicaSet = self.api.create(body, namespace=meta.namespace)
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
        limit = 10 if deploy.spec.revisionHistoryLimit is None else deploy.spec.revisionHistoryLimit
        idle = [rs for rs in old if _replicas(rs, 0) == 0 and (rs.status.replicas if rs.status else 0) == 0]
        for rs in idle[: max(0, len(idle) - limit)]:
            try:
                self.api.delete(ReplicaSet, _name(rs), namespace=_meta(rs).namespace)
            except ApiError as err:
                if err.status.code != 404:
                    raise

    def _status(self, deploy: Deployment, new: ReplicaSet, sets: list[ReplicaSet]) -> None:
        assert deploy.spec is not None
        desired = _replicas(deploy)
        statuses = [rs.status for rs in sets if rs.status is not None]
        total = sum(s.replicas or 0 for s in statuses)
        ready = sum(s.readyReplicas or 0 for s in statuses)
        available = sum(s.availableReplicas or 0 for s in statuses)
        updated = new.status.replicas if new.status else 0
        new_available = (new.status.availableReplicas or 0) if new.status else 0
        _, max_unavailable = rollout.fenceposts(deploy.spec.strategy, desired)
        conditions = [c.to_dict() for c in (deploy.status.conditions or [])] if deploy.status else []
        conditions = runtime.set_condition(
            conditions,
            "Available",
            available >= desired - max_unavailable,
            "MinimumReplicasAvailable" if available >= desired - max_unavailable else "MinimumReplicasUnavailable",
            f"{available} of {desired} replicas available",
        )
        complete = updated == desired and total == desired and new_available == desired
        rs_name = _name(new)
        conditions = runtime.set_condition(
            conditions,
            "Progressing",
            True,
            "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
            f'ReplicaSet "{rs_name}" has successfully progressed.'
            if complete
            else f'ReplicaSet "{rs_name}" is progressing.',
        )
        runtime.patch_status(
            self.api,
            "Deployment",
            deploy,
            {
                "observedGeneration": _meta(deploy).generation,
                "replicas": total,
                "updatedReplicas": updated,
                "readyReplicas": ready,
                "availableReplicas": available,
                "unavailableReplicas": max(0, desired - available),
                "conditions": conditions,
            },
        )


class ReplicaSetController(runtime.Controller):
    """Reconciles ``ReplicaSet`` objects into Pods (create missing, delete surplus)."""

    name = "replicaset"

    def watches(self) -> list[runtime.Watch]:
        return [runtime.Watch("ReplicaSet"), runtime.Watch("Pod", runtime.owner_keys("ReplicaSet"))]

    def reconcile(self, key: str) -> float | None:
        ns, name = resources.split_key(key)
        rs: ReplicaSet | None = runtime.get(self.api, "ReplicaSet", name, ns)
        if rs is None:
            return None
        assert rs.spec is not None
        labels = rs.spec.selector.matchLabels or {}
        listed = self.api.list(resources.resource("Pod"), namespace=ns, labels=labels)
        pods: list[Pod] = _owned([_pod(p) for p in listed], rs)
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
            for _ in range(want - len(active)):
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
                    created: Pod = self.api.create(body, namespace=ns)
                except ApiError as err:
                    self.events.record(rs, events.WARNING, "FailedCreate", f"Error creating: {err.status.message}")
                    raise
                log.info("replicaset %s: created pod %s", key, _name(created))
                self.events.record(rs, events.NORMAL, "SuccessfulCreate", f"Created pod: {_name(created)}")
                active.append(created)
        elif len(active) > want:

            def order(p: Pod) -> tuple[bool, float]:  # not-ready and newest go first
                born = _meta(p).creationTimestamp
                return (_ready(p), -born.timestamp() if born else 0.0)

            for pod in sorted(active, key=order)[: len(active) - want]:
                try:
                    self.api.delete(Pod, _name(pod), namespace=ns)
                    log.info("replicaset %s: deleted pod %s", key, _name(pod))
                    self.events.record(rs, events.NORMAL, "SuccessfulDelete", f"Deleted pod: {_name(pod)}")
                except ApiError as err:
                    if err.status.code != 404:
                        raise
                active.remove(pod)
        ready = sum(1 for p in active if _ready(p))
        runtime.patch_status(
            self.api,
            "ReplicaSet",
            rs,
            {
                "replicas": len(active),
                "fullyLabeledReplicas": len(active),
                "readyReplicas": ready,
                "availableReplicas": ready,
                "observedGeneration": _meta(rs).generation,
            },
        )
        return None


def _pod(raw: Any) -> Pod:
    """A listed pod as lightkube's model. A status written by a client that left out fields lightkube's model
    requires (``containerStatuses[].imageID``, which Go decodes to ``""``) is read for what this controller
    needs of it: ``phase`` and ``conditions``."""
    data = resources.as_dict(raw)
    data.setdefault("kind", "Pod")
    try:
        return cast(Pod, objects.parse(data))
    except msgspec.ValidationError:
        status = data.get("status")
        if isinstance(status, dict):
            data["status"] = {k: v for k, v in status.items() if k in ("phase", "conditions")}
        return cast(Pod, objects.parse(data))


def _ready(pod: Pod) -> bool:
    """The pod's ``Ready`` condition is ``True`` (the kubelet's readiness, ``podutil.IsPodReady``)."""
    conditions = (pod.status.conditions if pod.status else None) or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)
