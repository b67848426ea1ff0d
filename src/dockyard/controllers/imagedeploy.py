"""ImageDeploy controller: keeps one owned Deployment on the tracked Image's digest.

As kpush does: the ImageDeploy owns a Deployment of the same name
(``ownerReferences``, controller), created from ``spec.deployment`` with the
container named ``spec.containerName`` (default: the first) set to the
Image's ``status.latestImage`` (``repo@sha256:…``). Afterwards the controller
writes only that image field, and the template again when the ImageDeploy's
``generation`` changes, so ``kubectl scale`` and the Deployment's own
rolling-update strategy are respected. Status mirrors the Deployment's
``Available`` and ``Progressing`` conditions.

Automatic rollback (``spec.rollback``, on by default): a rollout to a new digest that fails (the
Deployment's ``ProgressDeadlineExceeded``, a container in ``CrashLoopBackOff`` or restarted
``maxRestarts`` times, or not Ready within ``timeout``) puts the Deployment back on
``status.availableImage`` and quarantines the digest in ``status.failedImages`` until the Image
has a newer one; ``status.history`` lists what was deployed, newest first.

Any image kind (``spec.imageRef.apiVersion``/``kind``, default ``dockyard.dev/v1alpha1`` Image), as kpush
follows kpack's ``kpack.io/v1alpha2`` Images: the followed kind is found through the server's discovery and
watched by a dynamic informer started on first use; its objects' ``status.latestImage`` is deployed. A kind
the server does not serve sets ``Ready`` False with reason ``ImageKindNotServed`` (naming it), looked at
again every :attr:`ImageDeployController.NOT_SERVED_RECHECK` seconds.

Reads come from the informers' listers (the ImageDeploy, the followed object, the Deployment, its pods), as
controller-runtime's cached client reads. The new status is computed from the previous one (history,
quarantined digests), so a cached ImageDeploy that has not yet seen this controller's own last status write
(:func:`dockyard.client.runtime.unseen_write`) is not acted on: that write's watch event brings the key back.
A write made from a stale cached Deployment fails with 409 Conflict (it carries the cached
``resourceVersion``) and is retried. The Deployment is written only when its template changes. After that
write the reconcile ends: the status (``latestImage``, a ``history`` entry for the image the Deployment now
carries) is written by the reconcile its watch event brings, queued behind the other ImageDeploys, so one
new digest reaches every Deployment before their statuses are written. Events are sent by the recorder's own
thread (:mod:`dockyard.client.events`), off the reconcile path.
"""

from __future__ import annotations

import copy
import logging
import time
from typing import Any, cast

from lightkube import ApiError
from lightkube.models.apps_v1 import DeploymentSpec
from lightkube.models.meta_v1 import ObjectMeta, OwnerReference
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Pod
from pydantic import BaseModel, ConfigDict, Field

from dockyard.api import labels as well_known
from dockyard.api import labelselector, models, objects, phases, timefmt
from dockyard.client import events, resources, runtime
from dockyard.controllers import rollout

log = logging.getLogger(__name__)

GENERATION_ANNOTATION = well_known.IMAGEDEPLOY_GENERATION
HISTORY_LIMIT = 10
"""Entries kept in ``status.history`` and ``status.failedImages``."""
READY, ROLLED_BACK = "Ready", "RolledBack"
CRASH_LOOP = phases.FailedImageReason.CRASH_LOOP
RESTART_LIMIT = phases.FailedImageReason.RESTART_LIMIT
READINESS_TIMEOUT = phases.FailedImageReason.READINESS_TIMEOUT
"""Reasons of a failed rollout (``status.failedImages[].reason``), beside ``ProgressDeadlineExceeded``."""
DEPLOYMENT_INVALID = "DeploymentInvalid"
"""Ready=False reason: the API server refused the Deployment written from ``spec.deployment`` (422, e.g. a
changed ``selector``, immutable in apps/v1); the server's message follows. A new generation is tried again."""
IMAGE_NOT_RESOLVED = "ImageNotResolved"
KIND_NOT_SERVED = "ImageKindNotServed"
KIND_NOT_WATCHED = "ImageKindNotWatched"
"""Ready=False reasons: the followed object is missing or has no ``status.latestImage``; its kind is not served
(discovery does not list it); it is served but could not be listed and watched (e.g. RBAC)."""
DEFAULT_IMAGE_KIND = runtime.GroupVersionKind.of(models.IMAGE_REF_API_VERSION, models.IMAGE_REF_KIND)


class FollowedStatus(BaseModel):
    """The part of a followed object's status an ImageDeploy reads (kpack's Image status has the same field)."""

    model_config = ConfigDict(extra="allow")

    latestImage: str | None = None


class Followed(BaseModel):
    """An object of any kind an ImageDeploy follows (``spec.imageRef``): metadata and ``status.latestImage``."""

    model_config = ConfigDict(extra="allow")

    apiVersion: str = ""
    kind: str = ""
    metadata: objects.ObjectMeta = Field(default_factory=objects.ObjectMeta)
    status: FollowedStatus = Field(default_factory=FollowedStatus)


def followed_kind(ref: models.ImageRef) -> runtime.GroupVersionKind:
    """The group/version/kind ``ref`` follows (defaults: :data:`DEFAULT_IMAGE_KIND`)."""
    return runtime.GroupVersionKind.of(ref.target_api_version, ref.target_kind)


def _set_image(spec: DeploymentSpec, container: str | None, image: str) -> bool:
    """Set the image of ``container`` (first if None) in the pod template; False if there is no such container."""
    pod = spec.template.spec
    for c in pod.containers if pod is not None else []:
        if container is None or c.name == container:
            c.image = image
            return True
    return False


def _deployment_spec(idp: objects.ImageDeploy) -> DeploymentSpec:
    """``spec.deployment`` (an apps/v1 DeploymentSpec, validated on write) as lightkube's model (a copy)."""
    return cast(DeploymentSpec, DeploymentSpec.from_dict(copy.deepcopy(idp.spec.deployment)))


def _image_of(deploy: Deployment, container: str | None) -> str | None:
    """The image of ``container`` (first if None) in the Deployment's pod template."""
    assert deploy.spec is not None
    pod = deploy.spec.template.spec
    for c in pod.containers if pod is not None else []:
        if container is None or c.name == container:
            return c.image
    return None


def _digest(image: str) -> str | None:
    """``sha256:...`` of ``repo@sha256:...`` (None without a digest)."""
    return image.partition("@")[2] or None


def _history(idp: objects.ImageDeploy) -> list[dict[str, Any]]:
    return [h.model_dump(mode="json", exclude_none=True) for h in idp.status.history]


def _deployed(history: list[dict[str, Any]], image: str, *, rollback: bool = False) -> list[dict[str, Any]]:
    """``history`` with ``image`` deployed now in front (newest first, at most :data:`HISTORY_LIMIT`)."""
    entry: dict[str, Any] = {"image": image, "digest": _digest(image), "deployedAt": timefmt.now()}
    if rollback:
        entry["rollback"] = True
    return [entry, *history][:HISTORY_LIMIT]


def _condition(conditions: list[dict[str, Any]], type_: str) -> dict[str, Any]:
    return next((c for c in conditions if c.get("type") == type_), {})


def _conditions(idp: objects.ImageDeploy) -> list[dict[str, Any]]:
    """The ImageDeploy's ``status.conditions`` in wire shape (for :func:`runtime.set_condition`)."""
    return [c.model_dump(mode="json", exclude_none=True) for c in idp.status.conditions]


class ImageDeployController(runtime.Controller):
    """Reconciles ``ImageDeploy`` objects (key ``namespace/name``)."""

    name = "imagedeploy"
    NOT_SERVED_RECHECK = 30.0
    """Seconds after which an ImageDeploy whose followed kind is not served asks discovery again."""
    DISCOVERY_TTL = 10.0
    """Seconds a discovery answer "not served" is reused for other ImageDeploys following the same kind."""
    WATCH_GRACE = 10.0
    """Seconds a new dynamic informer may take to list before the ImageDeploy reports ImageKindNotWatched."""

    def __init__(self, conn: Any, *, workers: int = 16) -> None:
        """``workers`` reconcile different ImageDeploys at once (a new digest of one Image fans out to every
        ImageDeploy following it; a key is never given to two workers)."""
        super().__init__(conn, workers=workers)

    def setup(self) -> None:
        super().setup()
        self._not_served: dict[runtime.GroupVersionKind, float] = {}
        self._watch_started: dict[runtime.GroupVersionKind, float] = {}

    def _followers(self, gvk: runtime.GroupVersionKind, obj: Any) -> list[str]:
        """Keys of the ImageDeploys following ``obj`` (of kind ``gvk``)."""
        ns, name = obj.metadata.namespace, obj.metadata.name
        return [
            resources.key(d)
            for d in self.lister(objects.ImageDeploy).list(ns)
            if d.spec.imageRef.name == name and followed_kind(d.spec.imageRef) == gvk
        ]

    def watches(self) -> list[runtime.Watch]:
        def by_image(_event: str, image: objects.Image) -> list[str]:
            return self._followers(DEFAULT_IMAGE_KIND, image)

        def by_pod(_event: str, pod: Any) -> list[str]:
            # pod → ReplicaSet <deployment>-<hash> → Deployment named as its ImageDeploy
            rs = resources.controller_of(pod, "ReplicaSet")
            if not rs:
                return []
            ns, name = pod.metadata.namespace, rs.rpartition("-")[0]
            return [f"{ns}/{name}"] if self.lister(objects.ImageDeploy).get(ns, name) is not None else []

        return [
            runtime.Watch("ImageDeploy"),
            runtime.Watch("Image", by_image),
            runtime.Watch("Deployment", runtime.owner_keys("ImageDeploy")),
            runtime.Watch("Pod", by_pod),
        ]

    def reconcile(self, key: str) -> float | None:
        ns, name = resources.split_key(key)
        idp = self.lister(objects.ImageDeploy).get(ns, name)
        if idp is None or runtime.unseen_write(idp):
            # gone; or the cache has not seen this controller's last status write yet: its new status is computed
            # from the previous one (history, quarantined digests), so wait for the watch event, which brings the
            # key back
            return None
        spec = idp.spec
        latest, again = self._latest(idp)
        if not latest:
            return again
        quarantined = {f.image for f in idp.status.failedImages}
        # a failed digest is not tried again: stay on the last Available one until a newer digest appears
        target = latest if latest not in quarantined else (idp.status.availableImage or latest)
        history = _history(idp)
        deploy: Deployment | None = self.lister(Deployment).get(ns, name)
        if deploy is not None and runtime.unseen_write(deploy):
            return None  # the cache has not seen this process's last write of the Deployment: its event comes
        generation = str(idp.metadata.generation or 1)
        if deploy is None:
            dspec = _deployment_spec(idp)
            if not _set_image(dspec, spec.containerName, target):
                self._no_container(idp)
                return None
            body = Deployment(
                metadata=ObjectMeta(
                    name=name,
                    namespace=ns,
                    labels=dict(idp.metadata.labels),
                    annotations={GENERATION_ANNOTATION: generation},
                    ownerReferences=[OwnerReference(**resources.owner_reference(idp))],
                ),
                spec=dspec,
            )
            try:
                deploy = self.api.create(body, namespace=ns)  # kind: Deployment
            except ApiError as err:
                self._refused(idp, err)
                return None
            log.info("imagedeploy %s: created deployment on %s", key, target)
            self.events.record(idp, events.NORMAL, "DeploymentCreated", f"Created deployment {name} on {target}")
            history = _deployed(history, target)
        else:
            if resources.controller_of(deploy, "ImageDeploy") != name:
                self._set_ready(
                    idp, False, "DeploymentNotOwned", f"Deployment {name!r} exists and is not owned by this ImageDeploy"
                )
                return None
            desired = copy.deepcopy(deploy)
            assert desired.metadata is not None and desired.spec is not None
            annotations = dict(desired.metadata.annotations or {})
            if annotations.get(GENERATION_ANNOTATION) != generation:
                replicas = desired.spec.replicas
                desired.spec = _deployment_spec(idp)
                if "replicas" not in spec.deployment and replicas is not None:
                    desired.spec.replicas = replicas
                annotations[GENERATION_ANNOTATION] = generation
                desired.metadata.annotations = annotations
            if not _set_image(desired.spec, spec.containerName, target):
                self._no_container(idp)
                return None
            if desired != deploy:
                try:
                    written = self.api.replace(desired)  # kind: Deployment
                except ApiError as err:
                    self._refused(idp, err)
                    return None
                log.info("imagedeploy %s: deployment now on %s", key, target)
                self.events.record(idp, events.NORMAL, "DeploymentUpdated", f"Updated deployment {name} to {target}")
                if runtime.wrote(deploy, written):
                    # the status follows once the informer has seen this write (its event brings the key back,
                    # behind the keys already queued): a new digest reaches every Deployment first
                    return None
                deploy = written
        assert deploy is not None
        if _image_of(deploy, spec.containerName) == target and (not history or history[0].get("image") != target):
            history = _deployed(history, target)
        return self._report(idp, deploy, target, history)

    def _latest(self, idp: objects.ImageDeploy) -> tuple[str | None, float | None]:
        """``status.latestImage`` of the object ``spec.imageRef`` names, from an informer's cache: dockyard's
        Image informer for the default kind, else a dynamic informer of the kind, started on first use after
        discovery found it. Without one, sets Ready False (:data:`IMAGE_NOT_RESOLVED`,
        :data:`KIND_NOT_SERVED`, :data:`KIND_NOT_WATCHED`) and returns ``(None, seconds to look again or None)``.

        Raises:
            httpx.HTTPError: discovery failed (retried with back-off by the worker).
        """
        ref = idp.spec.imageRef
        ns = idp.metadata.namespace
        gvk = followed_kind(ref)
        lister: runtime.Lister[Any]
        if gvk == DEFAULT_IMAGE_KIND:
            lister = self.lister(objects.Image)
        else:
            informer = self.dynamic_informers.get(gvk)
            if informer is None:
                now = time.monotonic()
                asked = self._not_served.get(gvk)
                info = None
                if asked is None or now - asked >= self.DISCOVERY_TTL:
                    info = runtime.discover(self.conn, gvk)
                    if info is None:
                        self._not_served[gvk] = now
                if info is None:
                    self._set_ready(idp, False, KIND_NOT_SERVED, f"{gvk} is not served by this API server")
                    return None, self.NOT_SERVED_RECHECK
                self._not_served.pop(gvk, None)
                informer = self.dynamic_informer(
                    info, lambda _event, obj: self._followers(gvk, obj), parse=Followed.model_validate
                )
                self._watch_started.setdefault(gvk, now)
            if not informer.synced.is_set():
                waited = time.monotonic() - self._watch_started.get(gvk, time.monotonic())
                if waited >= self.WATCH_GRACE:
                    message = f"{gvk} is served but could not be listed and watched for {waited:.0f}s (RBAC?)"
                    self._set_ready(idp, False, KIND_NOT_WATCHED, message)
                    return None, self.NOT_SERVED_RECHECK
                return None, 0.1
            lister = informer.lister
        followed = lister.get(ns, ref.name)
        latest = followed.status.latestImage if followed is not None else None
        if not latest:
            why = "not found" if followed is None else "has no status.latestImage yet"
            self._set_ready(idp, False, IMAGE_NOT_RESOLVED, f"{gvk.kind} {ref.name!r} {why}")
            return None, None
        return str(latest), None

    def _no_container(self, idp: objects.ImageDeploy) -> None:
        want = idp.spec.containerName
        self._set_ready(
            idp, False, "ContainerNotFound", f"spec.containerName: no container named {want!r} in spec.deployment"
        )

    def _refused(self, idp: objects.ImageDeploy, err: ApiError) -> None:
        """A 422 for the Deployment: Ready False :data:`DEPLOYMENT_INVALID` with the server's message and a
        Warning Event, not retried (the ImageDeploy's next generation brings its key back). Other errors are
        raised again (retried with back-off by the worker)."""
        if err.status.code != 422:
            raise err
        message = str(err.status.message or "the Deployment is invalid")
        self.events.record(idp, events.WARNING, DEPLOYMENT_INVALID, message)
        self._set_ready(idp, False, DEPLOYMENT_INVALID, message)

    def _set_ready(self, idp: objects.ImageDeploy, ok: bool, reason: str, message: str) -> None:
        runtime.patch_status(
            self.api,
            "ImageDeploy",
            idp,
            {"conditions": runtime.set_condition(_conditions(idp), "Ready", ok, reason, message)},
        )

    def _report(
        self, idp: objects.ImageDeploy, deploy: Deployment, target: str, history: list[dict[str, Any]]
    ) -> float | None:
        """Status from the Deployment's rollout on ``target``: Ready/Available/Progressing, ``availableImage``
        and ``history`` once it completed; a failed rollout to a new digest (:meth:`_failure`) is rolled back
        (``spec.rollback.enabled``) or reported. Returns seconds until ``spec.rollback.timeout`` is due."""
        assert deploy.metadata is not None and deploy.spec is not None
        now = time.time()
        dstatus = deploy.status
        conditions = _conditions(idp)
        for cond in (dstatus.conditions if dstatus is not None else None) or []:
            if cond.type in ("Available", "Progressing"):
                conditions = runtime.set_condition(
                    conditions, cond.type, cond.status == "True", cond.reason or "", cond.message or ""
                )
        want = 1 if deploy.spec.replicas is None else deploy.spec.replicas
        rolled = (
            dstatus is not None
            and dstatus.observedGeneration == deploy.metadata.generation
            and (dstatus.updatedReplicas or 0) == want
            and (dstatus.availableReplicas or 0) >= want
            and (dstatus.replicas or 0) == want
            and _image_of(deploy, idp.spec.containerName) == target
        )
        status: dict[str, Any] = {
            "latestImage": target,
            "deploymentName": deploy.metadata.name,
            "observedGeneration": idp.metadata.generation,
        }
        failed = [f.model_dump(mode="json", exclude_none=True) for f in idp.status.failedImages]
        available = idp.status.availableImage
        again: float | None = None
        if rolled:
            available = target
            status["availableImage"] = target
            history = [
                {**h, "availableAt": timefmt.format(now)}
                if i == 0 and h.get("image") == target and not h.get("availableAt")
                else h
                for i, h in enumerate(history)
            ]
            conditions = runtime.set_condition(conditions, READY, True, "RolledOut", target)
            newest_is_rollback = bool(history and history[0].get("rollback"))
            if _condition(conditions, ROLLED_BACK).get("status") == "True" and not newest_is_rollback:
                message = f"{target} rolled out"
                conditions = runtime.set_condition(conditions, ROLLED_BACK, False, "NewImageRolledOut", message)
        elif target != available:
            failure, again = self._failure(idp, deploy, target, history, now)
            if failure is None:
                conditions = runtime.set_condition(conditions, READY, False, "RollingOut", target)
            elif idp.spec.rollback.enabled and available:
                reason, message = failure
                failed = [
                    {
                        "image": target,
                        "digest": _digest(target),
                        "reason": reason,
                        "message": message,
                        "time": timefmt.format(now),
                    },
                    *failed,
                ][:HISTORY_LIMIT]
                self._put_back(idp, deploy, available)
                history = _deployed(history, available, rollback=True)
                text = f"rollout of {target} failed ({reason}: {message}); rolled back to {available}"
                conditions = runtime.set_condition(conditions, ROLLED_BACK, True, reason, text)
                conditions = runtime.set_condition(conditions, READY, False, "RolledBack", text)
                self.events.record(idp, events.WARNING, "RolledBack", text)
                log.warning("imagedeploy %s: %s", resources.key(idp), text)
                status["latestImage"] = available
                again = None
            else:
                reason, message = failure
                text = f"rollout of {target} failed ({reason}: {message})"
                if _condition(conditions, READY).get("reason") != reason:
                    self.events.record(idp, events.WARNING, "RolloutFailed", text)
                conditions = runtime.set_condition(conditions, READY, False, reason, text)
                conditions = runtime.set_condition(conditions, "Progressing", False, reason, text)
                again = None
        else:
            conditions = runtime.set_condition(conditions, READY, False, "RollingOut", target)
        status.update(failedImages=failed, history=history[:HISTORY_LIMIT], conditions=conditions)
        runtime.patch_status(self.api, "ImageDeploy", idp, status)
        return again

    def _failure(
        self, idp: objects.ImageDeploy, deploy: Deployment, target: str, history: list[dict[str, Any]], now: float
    ) -> tuple[tuple[str, str] | None, float | None]:
        """Why the rollout to ``target`` failed, ``(reason, message)``, or None; and the seconds until
        ``spec.rollback.timeout`` runs out. Failed: the Deployment's Progressing is False with
        ProgressDeadlineExceeded, a container of a pod on ``target`` waits in CrashLoopBackOff or restarted
        ``maxRestarts`` times, or ``timeout`` passed since the Deployment was put on ``target``."""
        assert deploy.spec is not None and deploy.metadata is not None
        policy = idp.spec.rollback
        for cond in (deploy.status.conditions if deploy.status is not None else None) or []:
            if cond.type == "Progressing" and cond.status == "False" and cond.reason == rollout.TIMED_OUT:
                return (rollout.TIMED_OUT, cond.message or ""), None
        selector = deploy.spec.selector.to_dict()
        listed = self.lister(Pod).list(deploy.metadata.namespace, deploy.spec.selector.matchLabels or {})
        for pod in listed:
            labels = (pod.metadata.labels if pod.metadata else None) or {}
            if not labelselector.matches(selector, labels):  # matchExpressions too: not another workload's pod
                continue
            if pod.spec is None or not any(c.image == target for c in pod.spec.containers):
                continue
            for cs in (pod.status.containerStatuses if pod.status is not None else None) or []:
                where = f"pod {pod.metadata.name if pod.metadata else ''} container {cs.name}"
                waiting = cs.state.waiting if cs.state is not None else None
                if waiting is not None and waiting.reason == CRASH_LOOP:
                    return (CRASH_LOOP, f"{where}: {waiting.message or 'back-off restarting failed container'}"), None
                if cs.restartCount >= policy.maxRestarts:
                    return (RESTART_LIMIT, f"{where} restarted {cs.restartCount} times"), None
        since = next((h.get("deployedAt") for h in history if h.get("image") == target), None)
        started = timefmt.parse_or_none(since) if since else None
        if started is None:
            return None, None
        left = started + models.parse_duration(policy.timeout) - now
        if left <= 0:
            return (READINESS_TIMEOUT, f"not all pods Ready and available within {policy.timeout}"), None
        return None, left + 0.1

    def _put_back(self, idp: objects.ImageDeploy, deploy: Deployment, image: str) -> None:
        """Put the Deployment's container back on ``image`` (the last Available one)."""
        desired = copy.deepcopy(deploy)
        assert desired.spec is not None
        _set_image(desired.spec, idp.spec.containerName, image)
        self.api.replace(desired)  # kind: Deployment
