"""Build controller: one build pod per Build, its termination mapped to the Build's phase.

Follows OpenShift's build controller (``pkg/build/controller/build``) and the
Kubernetes build proposal: phase ``New`` → ``Pending`` (pod created) →
``Running`` (pod running) → ``Complete`` | ``Failed`` | ``Error``. Creating the
pod is idempotent: the pod's name is derived from the Build's, so an existing
pod (409 AlreadyExists) means the work is already under way and no second
pod is ever made, even after a crash between the create and the status write.

Run policies (OpenShift ``pkg/build/controller/policy``), read from the
BuildConfig: ``Serial`` (default) starts a Build only when every Build of the
config with a lower number is terminal; ``SerialLatestOnly`` also cancels
queued (``New``) Builds that a newer one supersedes; ``Parallel`` starts at once.

Cancellation (``status.cancelled: true``, set by ``dockyard cancel-build``)
deletes the build pod (the node agent aborts the work) and ends the Build
``Cancelled`` with reason ``CancelledBuild``; the Build and its log remain.
``completionDeadlineSeconds`` counts from the build pod's creation, Pending
time included; when it passes the pod is deleted and the Build ends
``Failed`` with reason ``BuildDeadlineExceeded``. When a Build ends, the
config's oldest Builds beyond ``successfulBuildsHistoryLimit`` /
``failedBuildsHistoryLimit`` are deleted, and their logs with them.

Image references are resolved when a Build starts (before its pod is made), as OpenShift's build controller
resolves ImageStreamTags (``resolveImageReferences``), from the Image of the Build's namespace:

- ``output.to: {kind: Image, name}`` → the Image's ``spec.repository:spec.tag`` (tag default ``latest``), written
  to ``status.outputDockerImageReference`` with ``Pending`` and given to the builder in the build pod (it pushes
  there; for ``kind: DockerImage`` the reference is ``output.to.name``). A missing Image, or one that chooses its
  tag by ``spec.policy`` (no single tag to push), fails the Build with reason ``InvalidOutputReference``.
- ``dockerStrategy.from: {kind: Image, name}`` → the Image's ``status.latestImage`` (``repository@digest``),
  written on the Build's spec as ``{kind: DockerImage, name: repository@digest}`` (the shape an ImageChange
  build gets from ``instantiate``) before the pod is made from it. A missing Image, or one without a digest yet,
  fails the Build with reason ``InvalidImageReference``.

An Image is read from the informer's cache, and from the server when the cache lacks it or its digest (a cache
that lags never fails a Build).
"""

from __future__ import annotations

import logging
import time

from lightkube import ApiError
from lightkube.resources.core_v1 import Pod
from lightkube.types import PatchType

from dockyard.api import buildpod, models, objects, phases, timefmt
from dockyard.api import labels as well_known
from dockyard.client import events, metrics, resources, runtime
from dockyard.client import objects as client_objects

log = logging.getLogger(__name__)

TERMINAL = phases.BUILD_TERMINAL
FAILED = phases.BUILD_FAILED
BuildPhase = phases.BuildPhase

SUCCEEDED = "Succeeded"
"""The Build's condition type (OpenShift's ``BuildConditionType``s end in the phase; dockyard keeps one)."""

# Reasons the controller itself writes (OpenShift build/v1 ``StatusReason``); the builder's come from the build pod.
REASON_CANNOT_CREATE_POD = "CannotCreateBuildPod"
REASON_POD_DELETED = "BuildPodDeleted"
REASON_DEADLINE = "BuildDeadlineExceeded"
REASON_CANCELLED = "CancelledBuild"
REASON_FAILED = "Failed"
"""The Succeeded condition's reason for a failed Build that names no reason of its own."""
REASON_INVALID_OUTPUT = "InvalidOutputReference"
"""OpenShift's reason for an output image reference that cannot be resolved (here: an Image's)."""
REASON_INVALID_IMAGE = "InvalidImageReference"
"""OpenShift's reason for an input image reference that cannot be resolved (here: ``dockerStrategy.from``)."""


class Unresolved(Exception):
    """An image reference of a Build cannot be resolved; ``reason`` is OpenShift's ``StatusReason``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


def output_reference(ref: models.ObjectReference, image: objects.Image | None) -> str:
    """The registry reference ``ref`` (``output.to``) pushes to; ``image`` is the Image it names (kind Image).

    Raises:
        Unresolved: an Image that is missing or chooses its tag by ``spec.policy`` (``InvalidOutputReference``).
    """
    if ref.kind != models.IMAGE_KIND:
        return ref.name
    if image is None:
        raise Unresolved(
            REASON_INVALID_OUTPUT, f'output.to: Image "{ref.name}" not found in the namespace of the build.'
        )
    if image.spec.policy is not None:
        raise Unresolved(
            REASON_INVALID_OUTPUT,
            f'output.to: Image "{ref.name}" chooses its tag by spec.policy, so there is no single tag to push to; '
            "use output.to kind: DockerImage with a repository and tag, or an Image with spec.tag.",
        )
    return f"{image.spec.repository}:{image.spec.tag or models.DEFAULT_IMAGE_TAG}"


def from_reference(ref: models.ObjectReference, image: objects.Image | None) -> str:
    """The registry reference ``ref`` (``dockerStrategy.from``) builds from; ``image`` is the Image it names.

    Raises:
        Unresolved: an Image that is missing or has no ``status.latestImage`` yet (``InvalidImageReference``).
    """
    if ref.kind != models.IMAGE_KIND:
        return ref.name
    if image is None:
        raise Unresolved(
            REASON_INVALID_IMAGE,
            f'strategy.dockerStrategy.from: Image "{ref.name}" not found in the namespace of the build.',
        )
    if not image.status.latestImage:
        raise Unresolved(
            REASON_INVALID_IMAGE,
            f'strategy.dockerStrategy.from: Image "{ref.name}" has no resolved digest yet (status.latestImage).',
        )
    return image.status.latestImage


def _build_key(_event: str, pod: Pod) -> list[str]:
    name = buildpod.build_name(pod)
    return [f"{pod.metadata.namespace}/{name}"] if name and pod.metadata else []


def _number(build: objects.Build) -> int:
    """The Build's number within its BuildConfig (annotation ``dockyard.dev/build.number``), 0 if none."""
    try:
        return int(well_known.get_annotation(build, well_known.BUILD_NUMBER) or "0")
    except ValueError:
        return 0


def _observe(status: models.BuildStatus) -> None:
    """``dockyard_build_duration_seconds{phase, stage}``: each stage's time and the whole (``stage="total"``)."""
    phase = str(status.phase)
    for stage in status.stages:
        if stage.durationMilliseconds is not None:
            metrics.BUILD_DURATION.labels(phase, stage.name).observe(stage.durationMilliseconds / 1000)
    if status.duration is not None:
        metrics.BUILD_DURATION.labels(phase, "total").observe(status.duration / 1e9)


def _pushed_to(build: objects.Build) -> str | None:
    """``output.to.name`` when it is a registry reference, else None: the output of a Build whose status has no
    ``outputDockerImageReference`` (one started before the Pending write recorded it)."""
    to = build.spec.output.to
    return to.name if to.kind == models.DOCKER_IMAGE_KIND else None


def _seconds(ts: str | None) -> float | None:
    return timefmt.parse(ts) if ts else None


class BuildController(runtime.Controller):
    """Reconciles ``Build`` objects (key ``namespace/name``)."""

    name = "build"

    def watches(self) -> list[runtime.Watch]:
        def siblings(_event: str, build: objects.Build) -> list[str]:
            # a Build that is queued or ends may unblock or supersede queued ones of the same config
            return [build.key] + [
                b.key
                for b in self._siblings(build)
                if b.metadata.name != build.metadata.name and b.status.phase == BuildPhase.NEW
            ]

        return [
            runtime.Watch("Build", siblings, indexers=runtime.label_indexers(buildpod.BUILDCONFIG_LABEL)),
            runtime.Watch("Pod", _build_key, label_selector=f"{well_known.BUILD_POD}={well_known.BUILD_POD_TRUE}"),
            runtime.Watch("BuildConfig", runtime.no_keys),  # read for runPolicy and history limits
            runtime.Watch("Image", runtime.no_keys),  # read to resolve kind Image references when a build starts
        ]

    def reconcile(self, key: str) -> float | None:
        ns, name = resources.split_key(key)
        build = self.lister(objects.Build).get(ns, name)
        if build is None or runtime.unseen_write(build):
            return None  # gone; or the cache has not seen this controller's last write yet (its event comes)
        phase = build.status.phase
        if phase in TERMINAL:
            self._prune(build)
            return None
        if build.status.cancelled:
            self._cancel(build, "The build was cancelled by the user.")
            return None
        if phase == BuildPhase.NEW:
            return self._start(build)
        return self._follow(build)

    def _config(self, build: objects.Build) -> objects.BuildConfig | None:
        config = buildpod.config_name(build)
        return self.lister(objects.BuildConfig).get(build.metadata.namespace, config) if config else None

    def _siblings(self, build: objects.Build) -> list[objects.Build]:
        """The Builds of ``build``'s BuildConfig (``build`` included) from the cache.

        The cache is enough for runPolicy: ``build`` itself was read from the same informer, and the watch
        stream is ordered, so every Build created before it (a lower number) is in the cache too; and what
        blocks a start, a lower-numbered Build not yet terminal, can only turn terminal, so a stale view waits
        (the sibling's completion event re-enqueues this key) and never starts two."""
        config = buildpod.config_name(build)
        if not config:
            return []
        index = runtime.label_index_name(buildpod.BUILDCONFIG_LABEL)
        cut = well_known.label_value(config)
        builds = self.lister(objects.Build).by_index(index, f"{build.metadata.namespace}/{cut}")
        return [b for b in builds if buildpod.config_name(b) == config]

    def _start(self, build: objects.Build) -> float | None:
        config = self._config(build)
        policy = config.spec.runPolicy if config is not None else "Serial"
        if policy != "Parallel":
            mine = _number(build)
            siblings = self._siblings(build)
            if policy == "SerialLatestOnly" and any(
                _number(b) > mine and b.status.phase == BuildPhase.NEW for b in siblings
            ):
                self._cancel(
                    build, "Cancelled by a newer build of the same configuration (runPolicy SerialLatestOnly)."
                )
                return None
            if any(_number(b) < mine and b.status.phase not in TERMINAL for b in siblings):
                return None  # a sibling's completion re-enqueues this key
        pod_name = buildpod.pod_name(build.metadata.name)
        try:
            resolved, output = self._resolve(build)
        except Unresolved as err:
            carried = self._carried_output(build)
            if carried is None:
                self._end(build, models.BuildStatus(phase=BuildPhase.FAILED, reason=err.reason, message=err.message))
                log.info("build %s: %s: %s", build.key, err.reason, err.message)
                return None
            # a pod from before a restart was made from an earlier resolution: it runs, and the Build follows it
            resolved, output = build, carried
        if resolved is None:
            return None  # deleted meanwhile
        build = resolved
        pod = buildpod.build_pod(objects.to_dict(build), output=output)
        try:
            self.api.create(resources.resource("Pod")(pod), namespace=build.metadata.namespace)
            log.info("build %s: created build pod %s", build.key, pod_name)
        except ApiError as err:
            if err.status.code == 409:  # AlreadyExists: the pod is ours from before a restart, with its output
                output = self._carried_output(build) or output
            else:
                self._end(
                    build,
                    models.BuildStatus(
                        phase=BuildPhase.ERROR, reason=REASON_CANNOT_CREATE_POD, message=err.status.message
                    ),
                )
                return None
        runtime.update_status(
            self.api,
            build,
            models.BuildStatus(
                phase=BuildPhase.PENDING,
                podName=pod_name,
                outputDockerImageReference=output,
                conditions=runtime.with_condition([], SUCCEEDED, False, BuildPhase.PENDING, "build pod created"),
            ),
        )
        return None

    def _carried_output(self, build: objects.Build) -> str | None:
        """The output reference the existing build pod of ``build`` carries (what its builder pushes to, resolved
        when the pod was made), or None."""
        ns, pod_name = build.metadata.namespace, buildpod.pod_name(build.metadata.name)
        pod = self.lister(Pod).get(ns, pod_name) or runtime.get_as(self.api, Pod, pod_name, ns)
        if pod is None:
            return None
        try:
            carried = buildpod.build_from_pod(client_objects.to_dict(pod))
        except ValueError:
            return None
        return buildpod.carried_output(carried)

    def _image(self, namespace: str, name: str, *, resolved: bool) -> objects.Image | None:
        """The Image ``name`` from the cache; from the server when the cache lacks it (or, with ``resolved``, its
        ``status.latestImage``): a list by ``metadata.name``, which the controllers' role allows."""
        image = self.lister(objects.Image).get(namespace, name)
        if image is not None and (image.status.latestImage or not resolved):
            return image
        listed = self.api.list(resources.resource("Image"), namespace=namespace, fields={"metadata.name": name})
        found = [i for i in map(resources.as_dict, listed) if (i.get("metadata") or {}).get("name") == name]
        return objects.parse(found[0], objects.Image) if found else image

    def _resolve(self, build: objects.Build) -> tuple[objects.Build | None, str]:
        """Resolve ``build``'s ``kind: Image`` references (module docstring): returns the Build to make the pod
        from (``dockerStrategy.from`` written on it as the resolved ``DockerImage``; None when it is gone) and
        the output reference.

        Raises:
            Unresolved: an Image reference that cannot be resolved.
        """
        spec, ns = build.spec, str(build.metadata.namespace)
        to = spec.output.to
        image = self._image(ns, to.name, resolved=False) if to.kind == models.IMAGE_KIND else None
        output = output_reference(to, image)
        base = spec.strategy.dockerStrategy.from_
        if base is None or base.kind != models.IMAGE_KIND:
            return build, output
        used = from_reference(base, self._image(ns, base.name, resolved=True))
        patch = {"spec": {"strategy": {"dockerStrategy": {"from": {"kind": models.DOCKER_IMAGE_KIND, "name": used}}}}}
        try:
            written = self.api.patch(
                resources.resource("Build"), build.metadata.name, patch, namespace=ns, patch_type=PatchType.MERGE
            )
        except ApiError as err:
            if err.status.code == 404:
                return None, output
            raise
        runtime.wrote(build, resources.as_dict(written))
        log.info("build %s: dockerStrategy.from Image %s is %s", build.key, base.name, used)
        return objects.parse(resources.as_dict(written), objects.Build), output

    def _delete_pod(self, build: objects.Build) -> None:
        try:
            self.api.delete(
                resources.resource("Pod"),
                buildpod.pod_name(build.metadata.name),
                namespace=build.metadata.namespace,
            )
        except ApiError as err:
            if err.status.code != 404:
                raise

    def _cancel(self, build: objects.Build, message: str) -> None:
        self._delete_pod(build)
        self._end(
            build,
            models.BuildStatus(phase=BuildPhase.CANCELLED, reason=REASON_CANCELLED, message=message, cancelled=True),
        )
        log.info("build %s: cancelled", build.key)

    def _prune(self, build: objects.Build) -> None:
        """Delete the config's oldest terminal Builds beyond its history limits (newest kept)."""
        config = self._config(build)
        if config is None:
            return
        limits = {
            "ok": config.spec.successfulBuildsHistoryLimit,
            "failed": config.spec.failedBuildsHistoryLimit,
        }
        groups: dict[str, list[objects.Build]] = {"ok": [], "failed": []}
        for b in self._siblings(build):
            if b.status.phase == BuildPhase.COMPLETE:
                groups["ok"].append(b)
            elif b.status.phase in FAILED:
                groups["failed"].append(b)
        for group, items in groups.items():
            items.sort(key=_number, reverse=True)
            for old in items[limits[group] :]:
                try:
                    self.api.delete(resources.resource("Build"), old.metadata.name, namespace=old.metadata.namespace)
                    log.info("build %s: pruned (history limit %d)", old.key, limits[group])
                except ApiError as err:
                    if err.status.code != 404:
                        raise

    def _follow(self, build: objects.Build) -> float | None:
        ns = build.metadata.namespace
        pod_name = buildpod.pod_name(build.metadata.name)
        pod = self.lister(Pod).get(ns, pod_name)
        if pod is None:
            # not in the cache: just created and not seen yet, or deleted; only the server can tell
            pod = runtime.get_as(self.api, Pod, pod_name, ns)
        if pod is None:
            self._end(
                build,
                models.BuildStatus(
                    phase=BuildPhase.ERROR,
                    reason=REASON_POD_DELETED,
                    message="The pod for this build was deleted before the build completed.",
                ),
            )
            return None
        pod_status = pod.status
        pod_phase = (pod_status.phase if pod_status else None) or phases.PodPhase.PENDING
        result = buildpod.result_from_pod(client_objects.to_dict(pod))
        deadline = build.spec.completionDeadlineSeconds
        left: float | None = None
        if result is None and deadline:
            created = pod.metadata.creationTimestamp if pod.metadata else None
            left = (created.timestamp() + deadline - time.time()) if created is not None else None
            if left is not None and left <= 0:
                self._delete_pod(build)
                self._end(
                    build,
                    models.BuildStatus(
                        phase=BuildPhase.FAILED,
                        reason=REASON_DEADLINE,
                        message=f"Build was running longer than its completionDeadlineSeconds ({deadline}s).",
                    ),
                )
                log.info("build %s: deadline exceeded", build.key)
                return None
        if result is None:
            if pod_phase == phases.PodPhase.RUNNING and build.status.phase != BuildPhase.RUNNING:
                started = pod_status.startTime if pod_status else None
                running = runtime.update_status(
                    self.api,
                    build,
                    models.BuildStatus(
                        phase=BuildPhase.RUNNING,
                        startTimestamp=timefmt.format(started) if started else runtime.now_rfc3339(),
                        conditions=runtime.with_condition(
                            build.status.conditions, SUCCEEDED, False, BuildPhase.RUNNING, ""
                        ),
                    ),
                )
                if running is not None:
                    self.events.record(build, events.NORMAL, "BuildStarted", f"Build {build.key} is now running")
            return max(0.5, left) if left is not None else None
        if result.succeeded:
            update = models.BuildStatus(
                phase=BuildPhase.COMPLETE,
                reason=None,
                message=None,
                outputDockerImageReference=build.status.outputDockerImageReference or _pushed_to(build),
                output=models.BuildStatusOutput(to=models.ImageDigest(imageDigest=result.image_digest)),
            )
        else:
            update = models.BuildStatus(
                phase=BuildPhase.FAILED,
                reason=result.reason,
                message=result.message,
                logSnippet=result.log_snippet,
            )
        if result.stages:
            update.stages = [models.StageInfo.model_validate(st) for st in result.stages]
        revision = build.spec.revision
        if result.revision and (objects.to_dict(revision) if revision else None) != result.revision:
            # as OpenShift's builder does through builds/details: the resolved source revision
            self.api.patch(
                resources.resource("Build"),
                build.metadata.name,
                {"spec": {"revision": result.revision}},
                namespace=ns,
                patch_type=PatchType.MERGE,
            )
        self._end(build, update)
        log.info("build %s: %s %s", build.key, update.phase, result.image_digest or result.reason)
        return None

    def _end(self, build: objects.Build, update: models.BuildStatus) -> None:
        """Write a terminal phase (plus :meth:`_finish`'s fields) and record OpenShift's Event for it:
        ``BuildCompleted``, ``BuildCancelled`` or (Warning) ``BuildFailed`` naming the reason."""
        if runtime.update_status(self.api, build, self._finish(build, update)) is None:
            return
        key, phase = build.key, update.phase
        _observe(update)
        if phase == BuildPhase.COMPLETE:
            self.events.record(build, events.NORMAL, "BuildCompleted", f"Build {key} completed successfully")
        elif phase == BuildPhase.CANCELLED:
            self.events.record(build, events.NORMAL, "BuildCancelled", f"Build {key} has been cancelled")
        else:
            self.events.record(build, events.WARNING, "BuildFailed", f"Build {key} failed: {update.reason or phase}")

    def _finish(self, build: objects.Build, update: models.BuildStatus) -> models.BuildStatus:
        """``update`` (modified) with ``startTimestamp`` (kept if already written, else the Build's creation),
        ``completionTimestamp`` (now), ``duration`` (nanoseconds, as OpenShift's ``time.Duration``: the sum of
        the stages' milliseconds when every stage has one, else completion minus start) and the Succeeded
        condition."""
        done = runtime.now_rfc3339()
        start = build.status.startTimestamp or build.metadata.creationTimestamp
        if "startTimestamp" not in update.model_fields_set:
            update.startTimestamp = start
        update.completionTimestamp = done
        began, ended = _seconds(start), _seconds(done)
        stages = update.stages
        if stages and all(st.durationMilliseconds is not None for st in stages):
            # timestamps have whole seconds only; the builder's stage timings are to the millisecond
            update.duration = int(sum(st.durationMilliseconds or 0 for st in stages) * 1e6)
        elif began is not None and ended is not None:
            update.duration = int((ended - began) * 1e9)
        ok = update.phase == BuildPhase.COMPLETE
        update.conditions = runtime.with_condition(
            build.status.conditions,
            SUCCEEDED,
            ok,
            update.phase if ok else update.reason or REASON_FAILED,
            update.message or "",
        )
        return update
