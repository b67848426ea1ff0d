"""Image controller: keeps ``Image.status.latestImage`` on a repository's newest digest.

The registry is asked for the manifest digest of ``spec.repository:spec.tag``
(OCI distribution spec, "Pulling manifests": ``HEAD /v2/<name>/manifests/<reference>``).
Polling every ``spec.interval`` is only the backstop: a Build that completes
or a Push that succeeds with output in that repository enqueues the Image at
once (as Flux's image-reflector reacts to notifications).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from dockyard.api import models, objects, phases
from dockyard.client import events, resources, runtime
from dockyard.registry import client as registry
from dockyard.registry import errors as registry_errors
from dockyard.registry import reference

log = logging.getLogger(__name__)


def _tracked(image: dict[str, Any]) -> str:
    spec = image["spec"]
    return f"{spec['repository']}:{spec.get('tag') or 'latest'}"


def _same_ref(a: str, b: str) -> bool:
    try:
        ra, rb = reference.parse(a), reference.parse(b)
    except ValueError:
        return False
    return (ra.registry, ra.repository, ra.tag or "latest") == (rb.registry, rb.repository, rb.tag or "latest")


class ImageController(runtime.Controller):
    """Reconciles ``Image`` objects (key ``namespace/name``)."""

    name = "image"

    def watches(self) -> list[runtime.Watch]:
        def by_output(ref_of: Callable[[Any], str | None]) -> Callable[[str, Any], list[str]]:
            def mapper(_event: str, obj: Any) -> list[str]:
                ref = ref_of(obj)
                if not ref:
                    return []
                ns = obj.metadata.namespace
                return [
                    resources.key(i)
                    for i in self.informers["Image"].items()
                    if i.metadata.namespace == ns and _same_ref(f"{i.spec.repository}:{i.spec.tag or 'latest'}", ref)
                ]

            return mapper

        def build_output(build: objects.Build) -> str | None:
            return build.status.outputDockerImageReference if build.status.phase == phases.BuildPhase.COMPLETE else None

        def push_output(push: objects.Push) -> str | None:
            return push.spec.image if push.status.phase == phases.PushPhase.SUCCEEDED else None

        return [
            runtime.Watch("Image"),
            runtime.Watch("Build", by_output(build_output)),
            runtime.Watch("Push", by_output(push_output)),
        ]

    def reconcile(self, key: str) -> float | None:
        ns, name = resources.split_key(key)
        image = runtime.get_or_none(self.api, "Image", name, ns)
        if image is None:
            return None
        spec = image["spec"]
        interval = models.parse_duration(spec.get("interval") or "1m")
        status = image.get("status") or {}
        ref = reference.parse(_tracked(image))
        try:
            digest = registry.manifest_digest(ref)
        except registry_errors.RegistryError as err:
            self.events.record(image, events.WARNING, "ScanFailed", f"cannot resolve {_tracked(image)}: {err}")
            runtime.patch_status(
                self.api,
                "Image",
                image,
                {
                    "lastScanTime": runtime.now_rfc3339(),
                    "observedGeneration": image["metadata"].get("generation"),
                    "conditions": runtime.set_condition(
                        status.get("conditions"), "Ready", False, type(err).__name__, str(err)
                    ),
                },
            )
            return interval
        latest = f"{spec['repository']}@{digest}"
        if latest != status.get("latestImage"):
            log.info("image %s: %s", key, latest)
            self.events.record(image, events.NORMAL, "ImageResolved", f"{_tracked(image)} is {latest}")
        runtime.patch_status(
            self.api,
            "Image",
            image,
            {
                "latestImage": latest,
                "latestDigest": digest,
                "latestTag": ref.tag or "latest",
                "lastScanTime": runtime.now_rfc3339(),
                "observedGeneration": image["metadata"].get("generation"),
                "conditions": runtime.set_condition(
                    status.get("conditions"), "Ready", True, "Resolved", f"{_tracked(image)} is {digest}"
                ),
            },
        )
        return interval
