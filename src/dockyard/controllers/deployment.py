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
from typing import Any

from lightkube import ApiError

from dockyard.api import labels as well_known
from dockyard.api import phases
from dockyard.client import events, resources, runtime
from dockyard.controllers import rollout

log = logging.getLogger(__name__)

HASH_LABEL = well_known.POD_TEMPLATE_HASH
REVISION = well_known.DEPLOYMENT_REVISION


def _owned(objs: list[Any], owner: dict[str, Any]) -> list[dict[str, Any]]:
    uid = owner["metadata"]["uid"]
    out = []
    for obj in objs:
        obj = resources.as_dict(obj)
        if any(r.get("uid") == uid for r in obj["metadata"].get("ownerReferences") or []):
            out.append(obj)
    return out


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


def _copied_annotations(deploy: dict[str, Any]) -> dict[str, str]:
    """The Deployment's annotations its newest ReplicaSet carries (``kubernetes.io/change-cause``, ...)."""
    return {k: v for k, v in (deploy["metadata"].get("annotations") or {}).items() if k not in _NOT_COPIED}


def _revision(rs: dict[str, Any]) -> int:
    try:
        return int((rs["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


class DeploymentController(runtime.Controller):
    """Reconciles ``Deployment`` objects into ReplicaSets."""

    name = "deployment"

    def watches(self) -> list[runtime.Watch]:
        return [runtime.Watch("Deployment"), runtime.Watch("ReplicaSet", runtime.owner_keys("Deployment"))]

    def reconcile(self, key: str) -> float | None:
        ns, name = resources.split_key(key)
        deploy = runtime.get_or_none(self.api, "Deployment", name, ns)
        if deploy is None:
            return None
        spec = deploy["spec"]
        desired = int(spec.get("replicas", 1))
        RS = resources.resource("ReplicaSet")
        sets = _owned(list(self.api.list(RS, namespace=ns)), deploy)
        template = copy.deepcopy(spec["template"])
        template.setdefault("metadata", {}).pop("creationTimestamp", None)
        hash_ = rollout.template_hash(template)
        new = next((rs for rs in sets if (rs["metadata"].get("labels") or {}).get(HASH_LABEL) == hash_), None)
        old = sorted((rs for rs in sets if rs is not new), key=_revision)
        top = max([_revision(rs) for rs in sets] or [0])
        if new is None:
            new = self._create_rs(deploy, template, hash_, top + 1, 0 if old else desired)
        elif _revision(new) < top or any(
            (new["metadata"].get("annotations") or {}).get(k) != v for k, v in _copied_annotations(deploy).items()
        ):
            # rollback / undo: the old template becomes the newest revision; and the
            # Deployment's annotations (change-cause) follow it, as `rollout history` shows them
            annotations = new["metadata"].setdefault("annotations", {})
            annotations.update(_copied_annotations(deploy))
            if _revision(new) < top:
                annotations[REVISION] = str(top + 1)
            new = resources.as_dict(self.api.replace(RS(new)))
        if (deploy["metadata"].get("annotations") or {}).get(REVISION) != (
            new["metadata"].get("annotations") or {}
        ).get(REVISION):
            from lightkube.types import PatchType

            deploy = resources.as_dict(
                self.api.patch(
                    resources.resource("Deployment"),
                    name,
                    {"metadata": {"annotations": {REVISION: new["metadata"]["annotations"][REVISION]}}},
                    namespace=ns,
                    patch_type=PatchType.MERGE,
                )
            )

        def state(rs: dict[str, Any]) -> rollout.ReplicaSetState:
            return rollout.ReplicaSetState(
                rs["metadata"]["name"],
                int(rs["spec"].get("replicas", 0)),
                int((rs.get("status") or {}).get("availableReplicas", 0)),
            )

        steps = rollout.plan(
            desired=desired, strategy=spec.get("strategy"), new=state(new), old=[state(rs) for rs in old]
        )
        by_name = {rs["metadata"]["name"]: rs for rs in sets + [new]}
        for rs_name, replicas in steps.items():
            rs = copy.deepcopy(by_name[rs_name])
            before = int(rs["spec"].get("replicas", 0))
            rs["spec"]["replicas"] = replicas
            updated = resources.as_dict(self.api.replace(RS(rs)))
            by_name[rs_name] = updated
            if rs_name == new["metadata"]["name"]:
                new = updated
            log.info("deployment %s: scaled %s to %d", key, rs_name, replicas)
            self.events.record(
                deploy,
                events.NORMAL,
                "ScalingReplicaSet",
                f"Scaled {'up' if replicas > before else 'down'} replica set {rs_name} from {before} to {replicas}",
            )
        self._prune(deploy, [by_name[rs["metadata"]["name"]] for rs in old])
        self._status(deploy, new, list(by_name.values()))
        return None

    def _create_rs(
        self, deploy: dict[str, Any], template: dict[str, Any], hash_: str, revision: int, replicas: int
    ) -> dict[str, Any]:
        meta = deploy["metadata"]
        template["metadata"].setdefault("labels", {})[HASH_LABEL] = hash_
        selector = copy.deepcopy(deploy["spec"]["selector"])
        selector.setdefault("matchLabels", {})[HASH_LABEL] = hash_
        body: dict[str, Any] = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{meta['name']}-{hash_}",
                "namespace": meta["namespace"],
                "labels": dict(template["metadata"]["labels"]),
                "annotations": {**_copied_annotations(deploy), REVISION: str(revision)},
                "ownerReferences": [resources.owner_reference(deploy)],
            },
            "spec": {
                "replicas": replicas,
                "selector": selector,
                "template": template,
                "minReadySeconds": deploy["spec"].get("minReadySeconds", 0),
            },
        }
        RS = resources.resource("ReplicaSet")
        try:
            created = resources.as_dict(self.api.create(RS(body), namespace=meta["namespace"]))
        except ApiError as err:
            if err.status.code != 409:
                raise
            created = resources.as_dict(self.api.get(RS, body["metadata"]["name"], namespace=meta["namespace"]))
        log.info(
            "deployment %s/%s: created replicaset %s (revision %d)",
            meta["namespace"],
            meta["name"],
            body["metadata"]["name"],
            revision,
        )
        if replicas:
            self.events.record(
                deploy,
                events.NORMAL,
                "ScalingReplicaSet",
                f"Scaled up replica set {body['metadata']['name']} from 0 to {replicas}",
            )
        return created

    def _prune(self, deploy: dict[str, Any], old: list[dict[str, Any]]) -> None:
        limit = int(deploy["spec"].get("revisionHistoryLimit", 10))
        idle = [
            rs for rs in old if rs["spec"].get("replicas", 0) == 0 and (rs.get("status") or {}).get("replicas", 0) == 0
        ]
        for rs in idle[: max(0, len(idle) - limit)]:
            try:
                self.api.delete(
                    resources.resource("ReplicaSet"), rs["metadata"]["name"], namespace=rs["metadata"]["namespace"]
                )
            except ApiError as err:
                if err.status.code != 404:
                    raise

    def _status(self, deploy: dict[str, Any], new: dict[str, Any], sets: list[dict[str, Any]]) -> None:
        desired = int(deploy["spec"].get("replicas", 1))
        total = sum(int((rs.get("status") or {}).get("replicas", 0)) for rs in sets)
        ready = sum(int((rs.get("status") or {}).get("readyReplicas", 0)) for rs in sets)
        available = sum(int((rs.get("status") or {}).get("availableReplicas", 0)) for rs in sets)
        nstatus = new.get("status") or {}
        updated = int(nstatus.get("replicas", 0))
        _, max_unavailable = rollout.fenceposts(deploy["spec"].get("strategy"), desired)
        conditions = (deploy.get("status") or {}).get("conditions")
        conditions = runtime.set_condition(
            conditions,
            "Available",
            available >= desired - max_unavailable,
            "MinimumReplicasAvailable" if available >= desired - max_unavailable else "MinimumReplicasUnavailable",
            f"{available} of {desired} replicas available",
        )
        complete = updated == desired and total == desired and int(nstatus.get("availableReplicas", 0)) == desired
        rs_name = new["metadata"]["name"]
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
                "observedGeneration": deploy["metadata"].get("generation"),
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
        rs = runtime.get_or_none(self.api, "ReplicaSet", name, ns)
        if rs is None:
            return None
        Pod = resources.resource("Pod")
        labels = rs["spec"]["selector"].get("matchLabels") or {}
        pods = _owned(list(self.api.list(Pod, namespace=ns, labels=labels)), rs)
        active = [
            p
            for p in pods
            if (p.get("status") or {}).get("phase") not in phases.POD_TERMINAL
            and not p["metadata"].get("deletionTimestamp")
        ]
        want = int(rs["spec"].get("replicas", 1))
        if len(active) < want:
            template = rs["spec"]["template"]
            for _ in range(want - len(active)):
                body = {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        "generateName": f"{name}-",
                        "namespace": ns,
                        "labels": dict((template.get("metadata") or {}).get("labels") or {}),
                        "annotations": dict((template.get("metadata") or {}).get("annotations") or {}),
                        "ownerReferences": [resources.owner_reference(rs)],
                    },
                    "spec": copy.deepcopy(template["spec"]),
                }
                try:
                    created = resources.as_dict(self.api.create(Pod(body), namespace=ns))
                except ApiError as err:
                    self.events.record(rs, events.WARNING, "FailedCreate", f"Error creating: {err.status.message}")
                    raise
                log.info("replicaset %s: created pod %s", key, created["metadata"]["name"])
                self.events.record(rs, events.NORMAL, "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")
                active.append(created)
        elif len(active) > want:

            def order(p: dict[str, Any]) -> tuple[bool, str]:  # not-ready and newest go first
                return (_ready(p), "".join(chr(255 - ord(c)) for c in p["metadata"].get("creationTimestamp", "")))

            for pod in sorted(active, key=order)[: len(active) - want]:
                try:
                    self.api.delete(Pod, pod["metadata"]["name"], namespace=ns)
                    log.info("replicaset %s: deleted pod %s", key, pod["metadata"]["name"])
                    self.events.record(rs, events.NORMAL, "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}")
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
                "observedGeneration": rs["metadata"].get("generation"),
            },
        )
        return None


def _ready(pod: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )
