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
from typing import Any

from dockyard.api import labels as well_known
from dockyard.api import objects
from dockyard.client import events, resources, runtime

log = logging.getLogger(__name__)

GENERATION_ANNOTATION = well_known.IMAGEDEPLOY_GENERATION


def _set_image(template_spec: dict[str, Any], container: str | None, image: str) -> bool:
    """Set the image of ``container`` (first if None); False if there is no such container."""
    for c in template_spec.get("containers") or []:
        if container is None or c.get("name") == container:
            c["image"] = image
            return True
    return False


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
        idp = runtime.get_or_none(self.api, "ImageDeploy", name, ns)
        if idp is None:
            return None
        spec, status = idp["spec"], idp.get("status") or {}
        conditions = status.get("conditions")
        image = runtime.get_or_none(self.api, "Image", spec["imageRef"]["name"], ns)
        latest = ((image or {}).get("status") or {}).get("latestImage")
        if not latest:
            why = "not found" if image is None else "has no status.latestImage yet"
            runtime.patch_status(
                self.api,
                "ImageDeploy",
                idp,
                {
                    "conditions": runtime.set_condition(
                        conditions, "Ready", False, "ImageNotResolved", f"Image {spec['imageRef']['name']!r} {why}"
                    )
                },
            )
            return None
        deploy = runtime.get_or_none(self.api, "Deployment", name, ns)
        generation = str(idp["metadata"].get("generation", 1))
        Deployment = resources.resource("Deployment")
        if deploy is None:
            dspec = copy.deepcopy(spec["deployment"])
            if not _set_image(dspec["template"]["spec"], spec.get("containerName"), latest):
                self._no_container(idp, conditions)
                return None
            body = {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {
                    "name": name,
                    "namespace": ns,
                    "labels": dict(idp["metadata"].get("labels") or {}),
                    "annotations": {GENERATION_ANNOTATION: generation},
                    "ownerReferences": [resources.owner_reference(idp)],
                },
                "spec": dspec,
            }
            deploy = resources.as_dict(self.api.create(Deployment(body), namespace=ns))
            log.info("imagedeploy %s: created deployment on %s", key, latest)
            self.events.record(idp, events.NORMAL, "DeploymentCreated", f"Created deployment {name} on {latest}")
        else:
            if resources.controller_of(deploy, "ImageDeploy") != name:
                self._set_ready(
                    idp,
                    conditions,
                    False,
                    "DeploymentNotOwned",
                    f"Deployment {name!r} exists and is not owned by this ImageDeploy",
                )
                return None
            desired = copy.deepcopy(deploy)
            annotations = desired["metadata"].setdefault("annotations", {})
            if annotations.get(GENERATION_ANNOTATION) != generation:
                replicas = desired["spec"].get("replicas")
                desired["spec"] = copy.deepcopy(spec["deployment"])
                if "replicas" not in spec["deployment"] and replicas is not None:
                    desired["spec"]["replicas"] = replicas
                annotations[GENERATION_ANNOTATION] = generation
            if not _set_image(desired["spec"]["template"]["spec"], spec.get("containerName"), latest):
                self._no_container(idp, conditions)
                return None
            if desired != deploy:
                deploy = resources.as_dict(self.api.replace(Deployment(desired)))
                log.info("imagedeploy %s: deployment now on %s", key, latest)
                self.events.record(idp, events.NORMAL, "DeploymentUpdated", f"Updated deployment {name} to {latest}")
        self._report(idp, deploy, latest)
        return None

    def _no_container(self, idp: dict[str, Any], conditions: Any) -> None:
        want = idp["spec"].get("containerName")
        self._set_ready(
            idp,
            conditions,
            False,
            "ContainerNotFound",
            f"spec.containerName: no container named {want!r} in spec.deployment",
        )
        return None

    def _set_ready(self, idp: dict[str, Any], conditions: Any, ok: bool, reason: str, message: str) -> None:
        runtime.patch_status(
            self.api,
            "ImageDeploy",
            idp,
            {"conditions": runtime.set_condition(conditions, "Ready", ok, reason, message)},
        )
        return None

    def _report(self, idp: dict[str, Any], deploy: dict[str, Any], latest: str) -> None:
        dstatus = deploy.get("status") or {}
        conditions = (idp.get("status") or {}).get("conditions")
        for cond in dstatus.get("conditions") or []:
            if cond.get("type") in ("Available", "Progressing"):
                conditions = runtime.set_condition(
                    conditions,
                    cond["type"],
                    cond.get("status") == "True",
                    cond.get("reason") or "",
                    cond.get("message") or "",
                )
        rolled = (
            dstatus.get("observedGeneration") == deploy["metadata"].get("generation")
            and dstatus.get("updatedReplicas", 0) == deploy["spec"].get("replicas", 1)
            and dstatus.get("availableReplicas", 0) >= deploy["spec"].get("replicas", 1)
        )
        conditions = runtime.set_condition(conditions, "Ready", rolled, "RolledOut" if rolled else "RollingOut", latest)
        runtime.patch_status(
            self.api,
            "ImageDeploy",
            idp,
            {
                "latestImage": latest,
                "deploymentName": deploy["metadata"]["name"],
                "observedGeneration": idp["metadata"].get("generation"),
                "conditions": conditions,
            },
        )
        return None
