"""Image controller: keeps ``Image.status.latestImage`` on a repository's newest digest.

What is "newest" (Flux image-reflector-controller's ``ImageRepository`` + ``ImagePolicy``):

- ``spec.tag`` (default ``latest``): the digest the registry serves for that tag
  (OCI distribution spec, "Pulling manifests": ``HEAD /v2/<name>/manifests/<reference>``).
- ``spec.policy`` (``semver``/``alphabetical``/``numerical``, with ``spec.filterTags``): the repository's
  tags are listed (``GET /v2/<name>/tags/list``, following ``Link`` pages), the policy picks one
  (:mod:`dockyard.api.imagepolicy`), and its digest is resolved as above. ``status.tagCount`` is the number
  of tags listed.

Registry credentials come from ``spec.secretRef``, a ``kubernetes.io/dockerconfigjson`` Secret in the Image's
namespace, used for Basic auth or for the token service of a Bearer challenge (:mod:`dockyard.registry.client`).
Every registry request takes a token of its registry's bucket (:mod:`dockyard.registry.ratelimit`, default 20
requests a second per registry), and each Image's next poll comes after ``spec.interval`` ± 10 %.

Polling is only the backstop. Reconciles happen at once when:

- the registry notifies a push (the API server's ``/registry/notifications`` endpoint sets the
  ``dockyard.dev/reconcile-requested-at`` annotation on the Images tracking the repository; the Image watch
  sees the change; ``status.lastHandledReconcileAt`` reports the value answered);
- a Build completes or a Push succeeds with output in the tracked repository.

A notification only makes the controller look: the digest always comes from the registry itself. The
distribution registry sends a manifest's push notification before it moves the tag to it (``PutManifest``
stores the manifest, which notifies, then tags it), so the look a notification asks for may still find the
previous digest: then the controller looks again after each of :data:`NOTIFIED_RECHECKS` (seconds) until the
digest changes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dockyard.api import buildpod, credentials, imagepolicy, models, objects, phases
from dockyard.api import labels as well_known
from dockyard.client import events, metrics, resources, runtime
from dockyard.client import objects as client_objects
from dockyard.client.connection import Connection
from dockyard.registry import client as registry
from dockyard.registry import errors as registry_errors
from dockyard.registry import ratelimit, reference

log = logging.getLogger(__name__)

READY = "Ready"
"""The Image's one condition type."""
NOTIFIED_RECHECKS = (0.1, 0.25, 0.5, 1.0, 2.0)
"""Seconds after which a scan asked by a reconcile request (a registry notification) that found the digest
unchanged is repeated, one after the other (the tag may not have moved yet when the notification came)."""


class ScanFailed(Exception):
    """A scan that cannot produce a digest, with the condition ``reason`` to report (CamelCase)."""

    def __init__(self, reason: str, message: str, *, tag_count: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.tag_count = tag_count


@dataclass(frozen=True)
class Scan:
    """What one scan found: the ``tag`` picked, its ``digest``, and how many tags were listed (policies)."""

    tag: str
    digest: str
    tag_count: int | None = None


def policy_of(spec: models.ImageSpec) -> imagepolicy.Policy | None:
    """The :class:`~dockyard.api.imagepolicy.Policy` of ``spec``, or None for a fixed tag."""
    if spec.policy is None:
        return None
    choice = spec.policy
    return imagepolicy.Policy(
        semver=choice.semver.range if choice.semver else None,
        alphabetical=choice.alphabetical.order if choice.alphabetical else None,
        numerical=choice.numerical.order if choice.numerical else None,
        pattern=spec.filterTags.pattern if spec.filterTags else None,
        extract=spec.filterTags.extract if spec.filterTags else "",
    )


def tracks(image: objects.Image, ref: str) -> bool:
    """True if pushing ``ref`` (``host/repo[:tag]``) can change what ``image`` resolves to
    (:func:`dockyard.api.imagepolicy.tracks`)."""
    try:
        pushed = reference.parse(ref)
    except registry_errors.RegistryError:
        return False
    spec = image.spec
    return imagepolicy.tracks(
        repository=spec.repository, tag=spec.tag, has_policy=spec.policy is not None, pushed=pushed
    )


def _needs_scan(image: objects.Image) -> bool:
    """Whether a change of ``image`` asks for a scan: its spec changed since the last one
    (``metadata.generation`` ≠ ``status.observedGeneration``) or a reconcile request
    (``dockyard.dev/reconcile-requested-at``) is not yet answered (``status.lastHandledReconcileAt``)."""
    status = image.status
    if status.lastScanTime is None or image.metadata.generation != status.observedGeneration:
        return True
    requested = image.metadata.annotations.get(well_known.RECONCILE_REQUESTED_AT)
    return requested is not None and requested != status.lastHandledReconcileAt


def _conditions(image: objects.Image) -> list[dict[str, Any]]:
    return [c.model_dump(mode="json", exclude_none=True) for c in image.status.conditions]


class ImageController(runtime.Controller):
    """Reconciles ``Image`` objects (key ``namespace/name``).

    Args:
        conn: the API connection.
        workers: reconciles at once (each one waits on the registry).
        registry_qps: requests a second to one registry, on average (:data:`~dockyard.registry.ratelimit.DEFAULT_QPS`).
        registry_burst: requests to one registry at once after a quiet spell.
        jitter: poll intervals vary by up to this fraction either way (default 0.1).
        tags_page_size: ``n`` of each tags page asked for (OCI distribution spec, "Listing Tags"); the
            ``Link`` header leads to the next.
    """

    name = "image"

    def __init__(
        self,
        conn: Connection,
        *,
        workers: int = 4,
        registry_qps: float = ratelimit.DEFAULT_QPS,
        registry_burst: int = ratelimit.DEFAULT_BURST,
        jitter: float = ratelimit.DEFAULT_JITTER,
        tags_page_size: int = 1000,
    ) -> None:
        super().__init__(conn, workers=workers)
        self._rechecks: dict[str, tuple[str, int]] = {}
        """Image key → (reconcile request answered, rechecks made) while a notified scan found no new digest."""
        self.limiter = ratelimit.PerHostLimiter(registry_qps, registry_burst)
        self.transport = ratelimit.RateLimitedTransport(self.limiter)
        self.jitter = jitter
        self.tags_page_size = tags_page_size

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
                    if i.metadata.namespace == ns and tracks(i, ref)
                ]

            return mapper

        def build_output(build: objects.Build) -> str | None:
            return build.status.outputDockerImageReference if build.status.phase == phases.BuildPhase.COMPLETE else None

        def push_output(push: objects.Push) -> str | None:
            return push.spec.image if push.status.phase == phases.PushPhase.SUCCEEDED else None

        def changed(event: str, image: objects.Image) -> list[str]:
            # not the events of this controller's own status writes: a scan is due on a spec change, a
            # reconcile request, its own poll timer (add_after) or a new output in the repository
            if event == "MODIFIED" and not _needs_scan(image):
                return []
            return [image.key]

        return [
            runtime.Watch("Image", changed),
            runtime.Watch("Build", by_output(build_output)),
            runtime.Watch("Push", by_output(push_output)),
        ]

    def reconcile(self, key: str) -> float | None:
        ns, name = resources.split_key(key)
        image = self.lister(objects.Image).get(ns, name)
        if image is None:
            return None
        spec, status = image.spec, image.status
        again = ratelimit.jittered(models.parse_duration(spec.interval), self.jitter)
        common: dict[str, Any] = {
            "lastScanTime": runtime.now_rfc3339(),
            "observedGeneration": image.metadata.generation,
        }
        requested = image.metadata.annotations.get(well_known.RECONCILE_REQUESTED_AT)
        if requested is not None:
            common["lastHandledReconcileAt"] = requested
        try:
            found = self.scan(image)
        except ScanFailed as err:
            self.events.record(image, events.WARNING, phases.ImageEventReason.SCAN_FAILED, f"{spec.repository}: {err}")
            if err.tag_count is not None:
                common["tagCount"] = err.tag_count
            runtime.patch_status(
                self.api,
                "Image",
                image,
                {**common, "conditions": runtime.set_condition(_conditions(image), READY, False, err.reason, str(err))},
            )
            recheck = self._recheck(key, requested, status, changed=False)  # e.g. the tag is not there yet
            return again if recheck is None else min(again, recheck)
        latest = f"{spec.repository}@{found.digest}"
        update: dict[str, Any] = {
            **common,
            "latestImage": latest,
            "latestDigest": found.digest,
            "latestTag": found.tag,
            "conditions": runtime.set_condition(
                _conditions(image), READY, True, "Resolved", f"{spec.repository}:{found.tag} is {found.digest}"
            ),
        }
        if found.tag_count is not None:
            update["tagCount"] = found.tag_count
        recheck = self._recheck(key, requested, status, changed=latest != status.latestImage)
        if recheck is not None:
            again = min(again, recheck)
        if latest != status.latestImage:
            log.info("image %s: %s (tag %s)", key, latest, found.tag)
            self.events.record(
                image, events.NORMAL, phases.ImageEventReason.RESOLVED, f"{spec.repository}:{found.tag} is {latest}"
            )
            if status.latestImage:
                update["observedPreviousImage"] = status.latestImage
        runtime.patch_status(self.api, "Image", image, update)
        return again

    def _recheck(self, key: str, requested: str | None, status: models.ImageStatus, *, changed: bool) -> float | None:
        """Seconds until the next look after a scan that answered reconcile request ``requested`` (None: no
        request) without finding a new digest; None when no extra look is due (see
        :data:`NOTIFIED_RECHECKS`)."""
        if changed or requested is None:
            self._rechecks.pop(key, None)
            return None
        stamp, made = self._rechecks.get(key, ("", 0))
        if stamp != requested:
            if requested == status.lastHandledReconcileAt:
                return None  # an old request, answered before: this is a poll or a spec change
            made = 0
        if made >= len(NOTIFIED_RECHECKS):
            self._rechecks.pop(key, None)
            return None
        self._rechecks[key] = (requested, made + 1)
        return NOTIFIED_RECHECKS[made]

    def scan(self, image: objects.Image) -> Scan:
        """Ask the registry what ``image`` resolves to.

        Raises:
            ScanFailed: with reason ``SecretNotFound``/``InvalidSecret`` (``spec.secretRef``), ``NoMatchingTag``,
                ``PolicyFailed`` (e.g. a numerical policy met a non-number), or the registry error's class name
                (``ManifestUnknown``, ``NameUnknown``, ``Unauthorized``, ``RegistryUnavailable``, ...).
        """
        spec = image.spec
        try:
            repo = reference.parse(spec.repository)
            auth = self.credentials(image, repo.registry)
            policy = policy_of(spec)
            tag_count = None
            if policy is None:
                tag = spec.tag or reference.DEFAULT_TAG
            else:
                listed = registry.list_tags(repo, auth=auth, transport=self.transport, page_size=self.tags_page_size)
                # a Build's own tag lives only until it moves the output tag: never a release to pick
                tags = [t for t in listed if not t.startswith(buildpod.OWN_TAG_PREFIX)]
                tag_count = len(tags)
                try:
                    picked = imagepolicy.select(policy, tags)
                except ValueError as err:  # PolicyError, or a pattern/range admission would have refused
                    raise ScanFailed("PolicyFailed", str(err), tag_count=tag_count) from None
                if picked is None:
                    raise ScanFailed(
                        "NoMatchingTag", f"none of the {len(tags)} tags satisfies the policy", tag_count=tag_count
                    )
                tag = picked
            try:
                target = repo.with_tag(tag)
            except ValueError:  # a registry that lists a tag the reference grammar refuses
                raise ScanFailed(
                    "InvalidTag", f"the registry lists tag {tag[:64]!r}, which is not a valid tag"
                ) from None
            asked = time.monotonic()
            digest = registry.manifest_digest(target, auth=auth, transport=self.transport)
            metrics.IMAGE_RESOLVE_LATENCY.observe(time.monotonic() - asked)
        except registry_errors.RegistryError as err:
            raise ScanFailed(type(err).__name__, str(err)) from None
        return Scan(tag=tag, digest=digest, tag_count=tag_count)

    def credentials(self, image: objects.Image, registry_host: str) -> tuple[str, str] | None:
        """``(username, password)`` for ``registry_host`` from ``spec.secretRef``, or None (anonymous).

        Raises:
            ScanFailed: ``SecretNotFound`` (no such Secret in the namespace), ``InvalidSecret`` (no usable
                ``.dockerconfigjson``, or none for this registry). Messages name the Secret, never its values.
        """
        ref = image.spec.secretRef
        if ref is None:
            return None
        secret = runtime.get(self.api, "Secret", ref.name, image.metadata.namespace)
        if secret is None:
            raise ScanFailed("SecretNotFound", f"secret {ref.name!r} (spec.secretRef) not found")
        try:
            found = credentials.registry_auth(client_objects.to_dict(secret), registry_host)
        except credentials.CredentialError as err:
            raise ScanFailed("InvalidSecret", str(err)) from None
        if found is None:
            raise ScanFailed(
                "InvalidSecret", f"secret {ref.name!r} (spec.secretRef) has no auths entry for {registry_host}"
            )
        return found
