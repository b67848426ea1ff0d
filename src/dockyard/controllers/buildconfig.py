"""BuildConfig controller: the ``ConfigChange`` and ``ImageChange`` build triggers.

OpenShift's ``buildconfig`` and ``image-trigger`` controllers, level-based:

- ``ConfigChange``: build when the config's ``metadata.generation`` differs from
  ``status.lastConfigChangeGeneration`` — once on creation, again on each spec change.
- ``ImageChange{from: {kind: Image, name}}``: build when that Image's
  ``status.latestImage`` differs from the trigger's ``lastTriggeredImageID``
  (kept in ``status.imageChangeTriggers[]``, as OpenShift 4 does). The Build
  uses that image as its base (``dockerStrategy.from``) and its
  ``triggeredBy`` records the digest.

Every Build is started through the ``instantiate`` subresource, with an
annotation naming the cause (``dockyard.dev/trigger``), and the controller
looks for that annotation before starting another, so a crash between the
instantiate and the status write never starts the same build twice.
"""

from __future__ import annotations

import logging
from typing import Any

from dockyard.api import buildpod, objects
from dockyard.api import labels as well_known
from dockyard.client import resources, runtime

log = logging.getLogger(__name__)

TRIGGER_ANNOTATION = well_known.BUILD_TRIGGER


def _image_triggers(config: dict[str, Any]) -> list[str]:
    """Names of the Images this config's ImageChange triggers follow."""
    names = []
    for trigger in (config.get("spec") or {}).get("triggers") or []:
        if trigger.get("type") == "ImageChange":
            ref = (
                (trigger.get("imageChange") or {}).get("from")
                or ((config["spec"].get("strategy") or {}).get("dockerStrategy") or {}).get("from")
                or {}
            )
            if ref.get("kind", "Image") == "Image" and ref.get("name"):
                names.append(ref["name"])
    return names


class BuildConfigController(runtime.Controller):
    """Reconciles ``BuildConfig`` objects (key ``namespace/name``)."""

    name = "buildconfig"

    def watches(self) -> list[runtime.Watch]:
        def by_image(_event: str, image: objects.Image) -> list[str]:
            ns, name = image.metadata.namespace, image.metadata.name
            return [
                resources.key(c)
                for c in self.informers["BuildConfig"].items()
                if c.metadata.namespace == ns and name in _image_triggers(objects.to_dict(c))
            ]

        return [runtime.Watch("BuildConfig"), runtime.Watch("Image", by_image)]

    def reconcile(self, key: str) -> float | None:
        ns, name = resources.split_key(key)
        config = runtime.get_or_none(self.api, "BuildConfig", name, ns)
        if config is None:
            return None
        triggers = config["spec"].get("triggers") or []
        types = {t.get("type") for t in triggers}
        status = config.get("status") or {}
        generation = config["metadata"].get("generation", 1)
        if "ConfigChange" in types and status.get("lastConfigChangeGeneration") != generation:
            cause = f"config-change/{generation}"
            if not self._already(config, cause):
                self._instantiate(config, cause, [{"message": "Build configuration change"}])
            config = (
                runtime.patch_status(self.api, "BuildConfig", config, {"lastConfigChangeGeneration": generation})
                or config
            )
        for image_name in _image_triggers(config):
            self._image_change(config, image_name, initial_handled="ConfigChange" in types)
        return None

    def _image_change(self, config: dict[str, Any], image_name: str, *, initial_handled: bool) -> None:
        ns = config["metadata"]["namespace"]
        image = runtime.get_or_none(self.api, "Image", image_name, ns)
        latest = ((image or {}).get("status") or {}).get("latestImage")
        if not latest:
            return
        status = config.get("status") or {}
        entries = [dict(e) for e in status.get("imageChangeTriggers") or []]
        entry = next((e for e in entries if (e.get("from") or {}).get("name") == image_name), None)
        if entry is not None and entry.get("lastTriggeredImageID") == latest:
            return
        first = entry is None
        if entry is None:
            entry = {"from": {"kind": "Image", "name": image_name}}
            entries.append(entry)
        # The first resolution of the image only records it when a ConfigChange build starts anyway.
        if not (first and initial_handled):
            cause = f"image-change/{latest.rsplit('@', 1)[-1]}"
            if not self._already(config, cause):
                self._instantiate(
                    config,
                    cause,
                    [
                        {
                            "message": f"Image change: {image_name}",
                            "imageChangeBuild": {"imageID": latest, "fromRef": {"kind": "Image", "name": image_name}},
                        }
                    ],
                    from_image=latest,
                )
        entry["lastTriggeredImageID"] = latest
        entry["lastTriggerTime"] = runtime.now_rfc3339()
        runtime.patch_status(self.api, "BuildConfig", config, {"imageChangeTriggers": entries})

    def _already(self, config: dict[str, Any], cause: str) -> bool:
        builds = self.api.list(
            resources.resource("Build"),
            namespace=config["metadata"]["namespace"],
            labels={buildpod.BUILDCONFIG_LABEL: config["metadata"]["name"]},
        )
        return any(
            (resources.as_dict(b)["metadata"].get("annotations") or {}).get(TRIGGER_ANNOTATION) == cause for b in builds
        )

    def _instantiate(
        self, config: dict[str, Any], cause: str, triggered_by: list[dict[str, Any]], *, from_image: str | None = None
    ) -> None:
        meta = config["metadata"]
        request: dict[str, Any] = {
            "kind": "BuildRequest",
            "apiVersion": "dockyard.dev/v1alpha1",
            "metadata": {"name": meta["name"], "annotations": {TRIGGER_ANNOTATION: cause}},
            "triggeredBy": triggered_by,
        }
        if from_image:
            request["from"] = {"kind": "DockerImage", "name": from_image}
        with self.conn.http() as http:
            resp = http.post(
                f"/apis/dockyard.dev/v1alpha1/namespaces/{meta['namespace']}/buildconfigs/{meta['name']}/instantiate",
                json=request,
            )
        if resp.status_code == 404:
            return
        if not resp.is_success:
            raise RuntimeError(f"instantiate {meta['namespace']}/{meta['name']}: {resp.status_code} {resp.text[:300]}")
        build = resp.json()["metadata"]["name"]
        log.info("buildconfig %s/%s: started %s (%s)", meta["namespace"], meta["name"], build, cause)
