"""ImageDeploy controller: keeps one owned Deployment on the tracked Image's digest.

As kpush does: the ImageDeploy owns a Deployment of the same name
(``ownerReferences``, controller), created from ``spec.deployment`` with the
container named ``spec.containerName`` (default: the first) set to the
Image's ``status.latestImage`` (``repo@sha256:…``). Afterwards the controller
writes only that image field, and the template again when the ImageDeploy's
``generation`` changes, so ``kubectl scale`` and the Deployment's own
rolling-update strategy are respected. Status mirrors the Deployment's
``Available`` and ``Progressing`` conditions.
"""

from __future__ import annotations

import copy
import logging
from typing import Any, cast

from lightkube.models.apps_v1 import DeploymentSpec
from lightkube.models.meta_v1 import ObjectMeta, OwnerReference
from lightkube.resources.apps_v1 import Deployment

from dockyard.api import labels as well_known
from dockyard.api import objects
from dockyard.client import events, resources, runtime

log = logging.getLogger(__name__)

GENERATION_ANNOTATION = well_known.IMAGEDEPLOY_GENERATION


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


def _conditions(idp: objects.ImageDeploy) -> list[dict[str, Any]]:
    """The ImageDeploy's ``status.conditions`` in wire shape (for :func:`runtime.set_condition`)."""
    return [c.model_dump(mode="json", exclude_none=True) for c in idp.status.conditions]


class ImageDeployController(runtime.Controller):
    """Reconciles ``ImageDeploy`` objects (key ``namespace/name``)."""

    name = "imagedeploy"

    def watches(self) -> list[runtime.Watch]:
        def by_image(_event: str, image: objects.Image) -> list[str]:
            ns, name = image.metadata.namespace, image.metadata.name
            return [
                resources.key(d)
                for d in self.informers["ImageDeploy"].items()
                if d.metadata.namespace == ns and d.spec.imageRef.name == name
            ]

        return [
            runtime.Watch("ImageDeploy"),
            runtime.Watch("Image", by_image),
            runtime.Watch("Deployment", runtime.owner_keys("ImageDeploy")),
        ]

    def reconcile(self, key: str) -> float | None:
        ns, name = resources.split_key(key)
        idp: objects.ImageDeploy | None = runtime.get(self.api, "ImageDeploy", name, ns)
        if idp is None:
            return None
        spec = idp.spec
        image: objects.Image | None = runtime.get(self.api, "Image", spec.imageRef.name, ns)
        latest = image.status.latestImage if image is not None else None
        if not latest:
            why = "not found" if image is None else "has no status.latestImage yet"
            self._set_ready(idp, False, "ImageNotResolved", f"Image {spec.imageRef.name!r} {why}")
            return None
        deploy: Deployment | None = runtime.get(self.api, "Deployment", name, ns)
        generation = str(idp.metadata.generation or 1)
        if deploy is None:
            dspec = _deployment_spec(idp)
            if not _set_image(dspec, spec.containerName, latest):
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
            deploy = self.api.create(body, namespace=ns)
            log.info("imagedeploy %s: created deployment on %s", key, latest)
            self.events.record(idp, events.NORMAL, "DeploymentCreated", f"Created deployment {name} on {latest}")
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
            if not _set_image(desired.spec, spec.containerName, latest):
                self._no_container(idp)
                return None
            if desired != deploy:
                deploy = self.api.replace(desired)
                log.info("imagedeploy %s: deployment now on %s", key, latest)
                self.events.record(idp, events.NORMAL, "DeploymentUpdated", f"Updated deployment {name} to {latest}")
        assert deploy is not None
        self._report(idp, deploy, latest)
        return None

    def _no_container(self, idp: objects.ImageDeploy) -> None:
        want = idp.spec.containerName
        self._set_ready(
            idp, False, "ContainerNotFound", f"spec.containerName: no container named {want!r} in spec.deployment"
        )

    def _set_ready(self, idp: objects.ImageDeploy, ok: bool, reason: str, message: str) -> None:
        runtime.patch_status(
            self.api,
            "ImageDeploy",
            idp,
            {"conditions": runtime.set_condition(_conditions(idp), "Ready", ok, reason, message)},
        )

    def _report(self, idp: objects.ImageDeploy, deploy: Deployment, latest: str) -> None:
        assert deploy.metadata is not None and deploy.spec is not None
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
        )
        conditions = runtime.set_condition(conditions, "Ready", rolled, "RolledOut" if rolled else "RollingOut", latest)
        runtime.patch_status(
            self.api,
            "ImageDeploy",
            idp,
            {
                "latestImage": latest,
                "deploymentName": deploy.metadata.name,
                "observedGeneration": idp.metadata.generation,
                "conditions": conditions,
            },
        )
