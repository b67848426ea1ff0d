"""Build controller: one build pod per Build, its termination mapped to the Build's phase.

Follows OpenShift's build controller (``pkg/build/controller/build``) and the
Kubernetes build proposal: phase ``New`` → ``Pending`` (pod created) →
``Running`` (pod running) → ``Complete`` | ``Failed`` | ``Error``. Creating the
pod is idempotent: the pod's name is derived from the Build's, so an existing
pod (409 AlreadyExists) means the work is already under way and no second
pod is ever made, even after a crash between the create and the status write.

``runPolicy: Serial`` (the default): a Build of a BuildConfig starts only when
every Build of that config with a lower number has reached a terminal phase.
"""

from __future__ import annotations

import calendar
import logging
import time
from typing import Any

from lightkube import ApiError

from dockyard.api import buildpod
from dockyard.client import resources
from dockyard.client import runtime

log = logging.getLogger(__name__)

TERMINAL = ("Complete", "Failed", "Error", "Cancelled")


def _build_key(_event: str, pod: dict[str, Any]) -> list[str]:
    name = (pod["metadata"].get("labels") or {}).get(buildpod.BUILD_NAME_LABEL)
    return [f"{pod['metadata']['namespace']}/{name}"] if name else []


def _number(build: dict[str, Any]) -> int:
    try:
        return int((build["metadata"].get("annotations") or {}).get("dockyard.dev/build-number", "0"))
    except ValueError:
        return 0


def _seconds(ts: str | None) -> float | None:
    if not ts:
        return None
    return float(calendar.timegm(time.strptime(ts, "%Y-%m-%dT%H:%M:%SZ")))


class BuildController(runtime.Controller):
    """Reconciles ``Build`` objects (key ``namespace/name``)."""

    name = "build"

    def watches(self) -> list[runtime.Watch]:
        def siblings(_event: str, build: dict[str, Any]) -> list[str]:
            # a Build that finishes may unblock the next one of the same config (Serial)
            config = (build["metadata"].get("labels") or {}).get(buildpod.BUILDCONFIG_LABEL)
            if not config or (build.get("status") or {}).get("phase") not in TERMINAL:
                return [resources.key(build)]
            ns = build["metadata"]["namespace"]
            return [resources.key(build)] + [
                resources.key(b) for b in self.informers["Build"].items()
                if b["metadata"]["namespace"] == ns
                and (b["metadata"].get("labels") or {}).get(buildpod.BUILDCONFIG_LABEL) == config
                and (b.get("status") or {}).get("phase", "New") == "New"
            ]

        return [runtime.Watch("Build", siblings),
                runtime.Watch("Pod", _build_key, label_selector=buildpod.BUILD_POD_LABEL)]

    def reconcile(self, key: str) -> float | None:
        ns, name = resources.split_key(key)
        build = runtime.get_or_none(self.api, "Build", name, ns)
        if build is None:
            return None
        status = build.get("status") or {}
        phase = status.get("phase") or "New"
        if phase in TERMINAL:
            return None
        if phase == "New":
            return self._start(build)
        return self._follow(build)

    def _blocked(self, build: dict[str, Any]) -> bool:
        config = (build["metadata"].get("labels") or {}).get(buildpod.BUILDCONFIG_LABEL)
        if not config or build["spec"].get("runPolicy") == "Parallel":
            return False
        mine = _number(build)
        res = resources.resource("Build")
        for other in self.api.list(res, namespace=build["metadata"]["namespace"],
                                   labels={buildpod.BUILDCONFIG_LABEL: config}):
            other = resources.as_dict(other)
            if _number(other) < mine and (other.get("status") or {}).get("phase", "New") not in TERMINAL:
                return True
        return False

    def _start(self, build: dict[str, Any]) -> float | None:
        if self._blocked(build):
            return None  # a sibling's completion re-enqueues this key
        pod = buildpod.build_pod(build)
        try:
            self.api.create(resources.resource("Pod")(pod), namespace=build["metadata"]["namespace"])
            log.info("build %s: created build pod %s", resources.key(build), pod["metadata"]["name"])
        except ApiError as err:
            if err.status.code != 409:  # AlreadyExists: the pod is ours from before a restart
                runtime.patch_status(self.api, "Build", build, {
                    "phase": "Error", "reason": "CannotCreateBuildPod", "message": err.status.message,
                    "completionTimestamp": runtime.now_rfc3339()})
                return None
        runtime.patch_status(self.api, "Build", build, {
            "phase": "Pending", "podName": pod["metadata"]["name"],
            "conditions": runtime.set_condition(None, "Succeeded", False, "Pending", "build pod created")})
        return None

    def _follow(self, build: dict[str, Any]) -> float | None:
        ns = build["metadata"]["namespace"]
        status = build.get("status") or {}
        pod = runtime.get_or_none(self.api, "Pod", buildpod.pod_name(build["metadata"]["name"]), ns)
        if pod is None:
            runtime.patch_status(self.api, "Build", build, self._finish(build, {
                "phase": "Error", "reason": "BuildPodDeleted",
                "message": "The pod for this build was deleted before the build completed."}))
            return None
        pod_phase = (pod.get("status") or {}).get("phase") or "Pending"
        result = buildpod.result_from_pod(pod)
        if result is None:
            if pod_phase == "Running" and status.get("phase") != "Running":
                runtime.patch_status(self.api, "Build", build, {
                    "phase": "Running", "startTimestamp": (pod.get("status") or {}).get("startTime")
                    or runtime.now_rfc3339(),
                    "conditions": runtime.set_condition(status.get("conditions"), "Succeeded", False,
                                                        "Running", "")})
            return None
        to = build["spec"]["output"]["to"]["name"]
        if result.succeeded:
            update = {
                "phase": "Complete", "reason": None, "message": None,
                "outputDockerImageReference": to,
                "output": {"to": {"imageDigest": result.image_digest}},
            }
        else:
            update = {"phase": "Failed", "reason": result.reason, "message": result.message,
                      "logSnippet": result.log_snippet}
        runtime.patch_status(self.api, "Build", build, self._finish(build, update))
        log.info("build %s: %s %s", resources.key(build), update["phase"], result.image_digest or result.reason)
        return None

    def _finish(self, build: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
        status = build.get("status") or {}
        done = runtime.now_rfc3339()
        start = status.get("startTimestamp") or build["metadata"].get("creationTimestamp")
        update.setdefault("startTimestamp", start)
        update["completionTimestamp"] = done
        began, ended = _seconds(start), _seconds(done)
        if began is not None and ended is not None:
            update["duration"] = int((ended - began) * 1e9)  # nanoseconds, as OpenShift's time.Duration
        ok = update["phase"] == "Complete"
        update["conditions"] = runtime.set_condition(status.get("conditions"), "Succeeded", ok,
                                                     update["phase"] if ok else update.get("reason") or "Failed",
                                                     update.get("message") or "")
        return update
