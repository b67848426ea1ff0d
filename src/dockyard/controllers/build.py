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
"""

from __future__ import annotations

import logging
import time
from typing import Any

from lightkube import ApiError
from lightkube.resources.core_v1 import Pod

from dockyard.api import buildpod, objects, phases, timefmt
from dockyard.api import labels as well_known
from dockyard.client import events, resources, runtime

log = logging.getLogger(__name__)

TERMINAL = phases.BUILD_TERMINAL
FAILED = phases.BUILD_FAILED


def _build_key(_event: str, pod: Pod) -> list[str]:
    name = well_known.get(pod, buildpod.BUILD_NAME_LABEL)
    return [f"{pod.metadata.namespace}/{name}"] if name and pod.metadata else []


def _number(build: dict[str, Any]) -> int:
    try:
        return int(well_known.get_annotation(build, well_known.BUILD_NUMBER) or "0")
    except ValueError:
        return 0


def _seconds(ts: str | None) -> float | None:
    return timefmt.parse(ts) if ts else None


class BuildController(runtime.Controller):
    """Reconciles ``Build`` objects (key ``namespace/name``)."""

    name = "build"

    def watches(self) -> list[runtime.Watch]:
        def siblings(_event: str, build: objects.Build) -> list[str]:
            # a Build that is queued or ends may unblock or supersede queued ones of the same config
            config = well_known.get(build, buildpod.BUILDCONFIG_LABEL)
            if not config:
                return [build.key]
            ns = build.metadata.namespace
            return [build.key] + [
                b.key
                for b in self.informers["Build"].items()
                if b.metadata.namespace == ns
                and b.metadata.name != build.metadata.name
                and well_known.get(b, buildpod.BUILDCONFIG_LABEL) == config
                and b.status.phase == phases.BuildPhase.NEW
            ]

        return [
            runtime.Watch("Build", siblings),
            runtime.Watch("Pod", _build_key, label_selector=f"{well_known.BUILD_POD}={well_known.BUILD_POD_TRUE}"),
        ]

    def reconcile(self, key: str) -> float | None:
        ns, name = resources.split_key(key)
        build = runtime.get_or_none(self.api, "Build", name, ns)
        if build is None:
            return None
        status = build.get("status") or {}
        phase = status.get("phase") or "New"
        if phase in TERMINAL:
            self._prune(build)
            return None
        if status.get("cancelled"):
            self._cancel(build, "The build was cancelled by the user.")
            return None
        if phase == "New":
            return self._start(build)
        return self._follow(build)

    def _config(self, build: dict[str, Any]) -> dict[str, Any] | None:
        config = well_known.get(build, buildpod.BUILDCONFIG_LABEL)
        return runtime.get_or_none(self.api, "BuildConfig", config, build["metadata"]["namespace"]) if config else None

    def _siblings(self, build: dict[str, Any]) -> list[dict[str, Any]]:
        config = well_known.get(build, buildpod.BUILDCONFIG_LABEL)
        if not config:
            return []
        # a live list, not the informer's cache: runPolicy must see a sibling that just started
        return [
            resources.as_dict(b)
            for b in self.api.list(
                resources.resource("Build"),
                namespace=build["metadata"]["namespace"],
                labels={buildpod.BUILDCONFIG_LABEL: config},
            )
        ]

    def _start(self, build: dict[str, Any]) -> float | None:
        config = self._config(build)
        policy = ((config or {}).get("spec") or {}).get("runPolicy") or "Serial"
        if policy != "Parallel":
            mine = _number(build)
            siblings = self._siblings(build)
            if policy == "SerialLatestOnly" and any(
                _number(b) > mine and (b.get("status") or {}).get("phase", "New") == "New" for b in siblings
            ):
                self._cancel(
                    build, "Cancelled by a newer build of the same configuration (runPolicy SerialLatestOnly)."
                )
                return None
            if any(_number(b) < mine and (b.get("status") or {}).get("phase", "New") not in TERMINAL for b in siblings):
                return None  # a sibling's completion re-enqueues this key
        pod = buildpod.build_pod(build)
        try:
            self.api.create(resources.resource("Pod")(pod), namespace=build["metadata"]["namespace"])
            log.info("build %s: created build pod %s", resources.key(build), pod["metadata"]["name"])
        except ApiError as err:
            if err.status.code != 409:  # AlreadyExists: the pod is ours from before a restart
                self._end(build, {"phase": "Error", "reason": "CannotCreateBuildPod", "message": err.status.message})
                return None
        runtime.patch_status(
            self.api,
            "Build",
            build,
            {
                "phase": "Pending",
                "podName": pod["metadata"]["name"],
                "conditions": runtime.set_condition(None, "Succeeded", False, "Pending", "build pod created"),
            },
        )
        return None

    def _delete_pod(self, build: dict[str, Any]) -> None:
        try:
            self.api.delete(
                resources.resource("Pod"),
                buildpod.pod_name(build["metadata"]["name"]),
                namespace=build["metadata"]["namespace"],
            )
        except ApiError as err:
            if err.status.code != 404:
                raise

    def _cancel(self, build: dict[str, Any], message: str) -> None:
        self._delete_pod(build)
        self._end(build, {"phase": "Cancelled", "reason": "CancelledBuild", "message": message, "cancelled": True})
        log.info("build %s: cancelled", resources.key(build))
        return None

    def _prune(self, build: dict[str, Any]) -> None:
        """Delete the config's oldest terminal Builds beyond its history limits (newest kept)."""
        config = self._config(build)
        if config is None:
            return
        spec = config.get("spec") or {}
        limits = {
            "ok": int(spec.get("successfulBuildsHistoryLimit", 5)),
            "failed": int(spec.get("failedBuildsHistoryLimit", 5)),
        }
        groups: dict[str, list[dict[str, Any]]] = {"ok": [], "failed": []}
        for b in self._siblings(build):
            phase = (b.get("status") or {}).get("phase")
            if phase == "Complete":
                groups["ok"].append(b)
            elif phase in FAILED:
                groups["failed"].append(b)
        for group, items in groups.items():
            items.sort(key=_number, reverse=True)
            for old in items[limits[group] :]:
                try:
                    self.api.delete(
                        resources.resource("Build"), old["metadata"]["name"], namespace=old["metadata"]["namespace"]
                    )
                    log.info("build %s: pruned (history limit %d)", resources.key(old), limits[group])
                except ApiError as err:
                    if err.status.code != 404:
                        raise

    def _follow(self, build: dict[str, Any]) -> float | None:
        ns = build["metadata"]["namespace"]
        status = build.get("status") or {}
        pod = runtime.get_or_none(self.api, "Pod", buildpod.pod_name(build["metadata"]["name"]), ns)
        if pod is None:
            self._end(
                build,
                {
                    "phase": "Error",
                    "reason": "BuildPodDeleted",
                    "message": "The pod for this build was deleted before the build completed.",
                },
            )
            return None
        pod_phase = (pod.get("status") or {}).get("phase") or "Pending"
        result = buildpod.result_from_pod(pod)
        deadline = build["spec"].get("completionDeadlineSeconds")
        if result is None and deadline:
            created = _seconds(pod["metadata"].get("creationTimestamp"))
            left = (created + int(deadline) - time.time()) if created is not None else None
            if left is not None and left <= 0:
                self._delete_pod(build)
                self._end(
                    build,
                    {
                        "phase": "Failed",
                        "reason": "BuildDeadlineExceeded",
                        "message": f"Build was running longer than its completionDeadlineSeconds ({deadline}s).",
                    },
                )
                log.info("build %s: deadline exceeded", resources.key(build))
                return None
        else:
            left = None
        if result is None:
            if pod_phase == "Running" and status.get("phase") != "Running":
                started = (pod.get("status") or {}).get("startTime") or runtime.now_rfc3339()
                running = runtime.patch_status(
                    self.api,
                    "Build",
                    build,
                    {
                        "phase": "Running",
                        "startTimestamp": started,
                        "conditions": runtime.set_condition(
                            status.get("conditions"), "Succeeded", False, "Running", ""
                        ),
                    },
                )
                if running is not None:
                    self.events.record(
                        build, events.NORMAL, "BuildStarted", f"Build {resources.key(build)} is now running"
                    )
            return max(0.5, left) if left is not None else None
        to = build["spec"]["output"]["to"]["name"]
        if result.succeeded:
            update = {
                "phase": "Complete",
                "reason": None,
                "message": None,
                "outputDockerImageReference": to,
                "output": {"to": {"imageDigest": result.image_digest}},
            }
        else:
            update = {
                "phase": "Failed",
                "reason": result.reason,
                "message": result.message,
                "logSnippet": result.log_snippet,
            }
        if result.stages:
            update["stages"] = list(result.stages)
        if result.revision and build["spec"].get("revision") != result.revision:
            # as OpenShift's builder does through builds/details: the resolved source revision
            from lightkube.types import PatchType

            self.api.patch(
                resources.resource("Build"),
                build["metadata"]["name"],
                {"spec": {"revision": result.revision}},
                namespace=ns,
                patch_type=PatchType.MERGE,
            )
        self._end(build, update)
        log.info("build %s: %s %s", resources.key(build), update["phase"], result.image_digest or result.reason)
        return None

    def _end(self, build: dict[str, Any], update: dict[str, Any]) -> None:
        """Write a terminal phase (plus :meth:`_finish`'s fields) and record OpenShift's Event for it:
        ``BuildCompleted``, ``BuildCancelled`` or (Warning) ``BuildFailed`` naming the reason."""
        if runtime.patch_status(self.api, "Build", build, self._finish(build, update)) is None:
            return
        key, phase = resources.key(build), update["phase"]
        if phase == "Complete":
            self.events.record(build, events.NORMAL, "BuildCompleted", f"Build {key} completed successfully")
        elif phase == "Cancelled":
            self.events.record(build, events.NORMAL, "BuildCancelled", f"Build {key} has been cancelled")
        else:
            self.events.record(
                build, events.WARNING, "BuildFailed", f"Build {key} failed: {update.get('reason') or phase}"
            )

    def _finish(self, build: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
        status = build.get("status") or {}
        done = runtime.now_rfc3339()
        start = status.get("startTimestamp") or build["metadata"].get("creationTimestamp")
        update.setdefault("startTimestamp", start)
        update["completionTimestamp"] = done
        began, ended = _seconds(start), _seconds(done)
        stages = update.get("stages") or []
        if stages and all("durationMilliseconds" in st for st in stages):
            # timestamps have whole seconds only; the builder's stage timings are to the millisecond
            update["duration"] = int(sum(st["durationMilliseconds"] for st in stages) * 1e6)
        elif began is not None and ended is not None:
            update["duration"] = int((ended - began) * 1e9)  # nanoseconds, as OpenShift's time.Duration
        ok = update["phase"] == "Complete"
        update["conditions"] = runtime.set_condition(
            status.get("conditions"),
            "Succeeded",
            ok,
            update["phase"] if ok else update.get("reason") or "Failed",
            update.get("message") or "",
        )
        return update
