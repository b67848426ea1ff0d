"""BuildConfig controller: the ``ConfigChange`` and ``ImageChange`` build triggers.

OpenShift's ``buildconfig`` and ``image-trigger`` controllers, level-based:

- ``ConfigChange``: build when the config's ``metadata.generation`` differs from
  ``status.lastConfigChangeGeneration`` — once on creation, again on each spec change.
- ``ImageChange{from: {kind: Image, name}}``: build when that Image's
  ``status.latestImage`` differs from the trigger's ``lastTriggeredImageID``
  (kept in ``status.imageChangeTriggers[]``, as OpenShift 4 does). The Build
  uses that image as its base (``dockerStrategy.from``) and its
  ``triggeredBy`` records the digest. Without ``from`` the trigger follows the
  Image ``dockerStrategy.from`` names (``kind: Image``), OpenShift's default.
- A ``ConfigChange`` build of a config whose ``dockerStrategy.from`` is an
  Image waits until that Image has a ``status.latestImage`` (as OpenShift's
  waits for its ImageStreamTag): started before, the build controller could
  only fail it; the Image's change brings the config back.

Every Build is started through the ``instantiate`` subresource, with an
annotation naming the cause (``dockyard.dev/trigger``), and the controller
looks for that annotation before starting another, so a crash between the
instantiate and the status write never starts the same build twice. The
config, its Images and its Builds are read from the informers' caches; after
an instantiate the controller triggers nothing more for that config until its
Build informer has seen the new Build (:class:`~dockyard.client.runtime.Expectations`),
so a cache that lags its own writes never starts a build twice either.
"""

from __future__ import annotations

import logging
from typing import Any

from dockyard.api import buildpod, kinds, models, objects
from dockyard.api import labels as well_known
from dockyard.client import resources, runtime

log = logging.getLogger(__name__)

TRIGGER_ANNOTATION = well_known.BUILD_TRIGGER
IMAGE_KIND = models.IMAGE_KIND
"""``from.kind`` of an ImageChange trigger: an Image object, the only kind the API accepts there."""


def _image_triggers(config: objects.BuildConfig) -> list[str]:
    """Names of the Images this config's ImageChange triggers follow, each once: a trigger's ``imageChange.from``,
    or without one the Image ``dockerStrategy.from`` names (the API refuses a trigger without ``from`` when
    that is not ``kind: Image``, and a ``from`` of another kind)."""
    names: list[str] = []
    for t in config.spec.triggers:
        if t.type != "ImageChange" or t.imageChange is None:
            continue
        name = t.imageChange.from_.name if t.imageChange.from_ is not None else config.spec.strategy_image()
        if name and name not in names:
            names.append(name)
    return names


def _followed_images(config: objects.BuildConfig) -> set[str]:
    """Names of the Images whose changes matter to this config: its triggers' and its ``dockerStrategy.from``'s."""
    base = config.spec.strategy_image()
    return set(_image_triggers(config)) | ({base} if base else set())


class BuildConfigController(runtime.Controller):
    """Reconciles ``BuildConfig`` objects (key ``namespace/name``)."""

    name = "buildconfig"

    def setup(self) -> None:
        super().setup()
        self.expectations = runtime.Expectations()

    def watches(self) -> list[runtime.Watch]:
        def by_image(_event: str, image: objects.Image) -> list[str]:
            ns, name = image.metadata.namespace, image.metadata.name
            configs = self.lister(objects.BuildConfig).list(ns)
            return [c.key for c in configs if name in _followed_images(c)]

        def new_build(event: str, build: objects.Build) -> list[str]:
            config = buildpod.config_name(build)
            return [f"{build.metadata.namespace}/{config}"] if config and event == "ADDED" else []

        return [
            runtime.Watch("BuildConfig"),
            runtime.Watch("Image", by_image),
            runtime.Watch("Build", new_build, indexers=runtime.label_indexers(buildpod.BUILDCONFIG_LABEL)),
        ]

    def observe(self, kind: str, event: str, obj: Any) -> None:
        """A Build seen created lowers its config's creation expectations."""
        if kind == "Build" and event == "ADDED":
            config = buildpod.config_name(obj)
            if config:
                self.expectations.creation_observed(f"{obj.metadata.namespace}/{config}")

    def reconcile(self, key: str) -> float | None:
        ns, name = resources.split_key(key)
        config: objects.BuildConfig | None = self.lister(objects.BuildConfig).get(ns, name)
        if config is None:
            self.expectations.forget(key)
            return None
        if not self.expectations.satisfied(key):
            return None  # the Build it started is not in the cache yet: its ADDED event brings the key back
        types = {t.type for t in config.spec.triggers}
        generation = 1 if config.metadata.generation is None else config.metadata.generation
        if (
            "ConfigChange" in types
            and config.status.lastConfigChangeGeneration != generation
            and self._base_resolved(config)
        ):
            cause = f"config-change/{generation}"
            if not self._already(config, cause):
                self._instantiate(config, cause, [{"message": "Build configuration change"}])
            config = (
                runtime.update_status(self.api, config, models.BuildConfigStatus(lastConfigChangeGeneration=generation))
                or config
            )
        for image_name in _image_triggers(config):
            self._image_change(config, image_name, initial_handled="ConfigChange" in types)
        return None

    def _base_resolved(self, config: objects.BuildConfig) -> bool:
        """False while ``dockerStrategy.from`` names an Image (``kind: Image``) that has no ``status.latestImage``."""
        base = config.spec.strategy_image()
        if base is None:
            return True
        image = self.lister(objects.Image).get(config.metadata.namespace, base)
        return image is not None and bool(image.status.latestImage)

    def _image_change(self, config: objects.BuildConfig, image_name: str, *, initial_handled: bool) -> None:
        image = self.lister(objects.Image).get(config.metadata.namespace, image_name)
        latest = image.status.latestImage if image is not None else None
        if not latest:
            return
        entries = [e.model_copy() for e in config.status.imageChangeTriggers]
        entry = next((e for e in entries if e.from_ is not None and e.from_.name == image_name), None)
        if entry is not None and entry.lastTriggeredImageID == latest:
            return
        first = entry is None
        if entry is None:
            entry = models.ImageChangeTriggerStatus.model_validate({"from": {"kind": IMAGE_KIND, "name": image_name}})
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
                            "imageChangeBuild": {
                                "imageID": latest,
                                "fromRef": {"kind": IMAGE_KIND, "name": image_name},
                            },
                        }
                    ],
                    from_image=latest,
                )
        entry.lastTriggeredImageID = latest
        entry.lastTriggerTime = runtime.now_rfc3339()
        runtime.update_status(self.api, config, models.BuildConfigStatus(imageChangeTriggers=entries))

    def _already(self, config: objects.BuildConfig, cause: str) -> bool:
        """Whether a Build of ``config`` already carries the trigger ``cause``, from the cache: complete for
        this config's own instantiates once :attr:`expectations` are satisfied, and after a restart from the
        informers' first lists, made after anything the last run wrote."""
        return any(well_known.get_annotation(b, TRIGGER_ANNOTATION) == cause for b in _builds_of(self, config))

    def _instantiate(
        self,
        config: objects.BuildConfig,
        cause: str,
        triggered_by: list[dict[str, Any]],
        *,
        from_image: str | None = None,
    ) -> None:
        """POST a ``BuildRequest`` (OpenShift ``build/v1``; ``triggeredBy`` entries as ``BuildSpec.triggeredBy``)
        to ``buildconfigs/{name}/instantiate``, annotated with ``cause``; a 404 (the config is gone) is no error.

        Raises:
            RuntimeError: any other error answer.
        """
        ns, name = config.metadata.namespace, config.metadata.name
        request: dict[str, Any] = {
            "kind": "BuildRequest",
            "apiVersion": kinds.API_VERSION,
            "metadata": {"name": name, "annotations": {TRIGGER_ANNOTATION: cause}},
            "triggeredBy": triggered_by,
        }
        if from_image:
            request["from"] = {"kind": models.DOCKER_IMAGE_KIND, "name": from_image}
        self.expectations.raise_creations(config.key, 1)
        try:
            with self.conn.http() as http:
                resp = http.post(
                    f"/apis/{kinds.API_VERSION}/namespaces/{ns}/buildconfigs/{name}/instantiate", json=request
                )
        except Exception:
            self.expectations.creation_observed(config.key)  # whether it was created is for the cache to tell
            raise
        if not resp.is_success:
            self.expectations.creation_observed(config.key)
        if resp.status_code == 404:
            return
        if not resp.is_success:
            raise RuntimeError(f"instantiate {ns}/{name}: {resp.status_code} {resp.text[:300]}")
        build = objects.parse(resp.json(), objects.Build)
        log.info("buildconfig %s/%s: started %s (%s)", ns, name, build.metadata.name, cause)


def _builds_of(controller: runtime.Controller, config: objects.BuildConfig) -> list[objects.Build]:
    """``config``'s Builds from the cache: those its label value (the name cut to 63 characters) indexes, whose
    exact BuildConfig (:func:`dockyard.api.buildpod.config_name`) is ``config``."""
    ns, name = config.metadata.namespace, config.metadata.name
    index = runtime.label_index_name(buildpod.BUILDCONFIG_LABEL)
    builds = controller.lister(objects.Build).by_index(index, f"{ns}/{well_known.label_value(name)}")
    return [b for b in builds if buildpod.config_name(b) == name]
