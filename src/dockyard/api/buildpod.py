"""The contract between the build controller and the node agent: the build pod.

As in OpenShift (``pkg/build/controller/strategy/docker.go``), the controller
creates one pod per Build, named ``<build>-build``, and passes the Build to
the builder as JSON in the ``BUILD`` environment variable: its ``metadata``,
``spec`` and ``status.outputDockerImageReference``, the registry reference the
controller resolved ``output.to`` to, where the builder pushes (as OpenShift's
builder pushes to the Build's ``status.outputDockerImageReference``). The builder reports
its outcome in the container's termination message
(``state.terminated.message``, the kubelet's ``terminationMessagePath``
contract) as JSON: ``{"imageDigest", "reason", "message", "logSnippet"}``.
No I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from dockyard.api import labels as well_known
from dockyard.api import models, phases

# aliases of the keys' one home, dockyard.api.labels
BUILD_POD_LABEL = well_known.BUILD_POD
BUILD_NAME_LABEL = well_known.BUILD_NAME
BUILDCONFIG_LABEL = well_known.BUILD_CONFIG
BUILDER_CONTAINER = "docker-build"
BUILDER_IMAGE = "dockyard.dev/builder:engine"  # resolved by the node agent: it builds with the engine API
BUILD_RUNTIME_CLASS = "dockyard-build"
"""``spec.runtimeClassName`` of build pods, the Pod Security exemption of :mod:`dockyard.api.podsecurity`."""


OWN_TAG_PREFIX = "dockyard-build-"
"""Prefix of the tag each Build pushes its image under before it moves the output tag (deleted after): the node
agent writes it, and the Image controller's tag policies skip it (it names no release)."""


def is_build_pod(pod: Any) -> bool:
    """True if ``pod`` (a Pod as a dict or typed) is a build pod: label ``dockyard.dev/build-pod: "true"``.

    The one test used by the node agent (which runs a build pod's Build instead of its containers), the
    build controller (which watches build pods), the node authorizer (which lets a node read the Build's
    secrets) and admission (which allows :data:`BUILD_RUNTIME_CLASS` only on build pods). Any other value of
    the label (``"false"``, ``""``) makes an ordinary pod.
    """
    return well_known.get(pod, well_known.BUILD_POD) == well_known.BUILD_POD_TRUE


def config_name(build: Any) -> str | None:
    """The BuildConfig a Build (a dict or typed) belongs to: the name in its ownerReference of kind BuildConfig
    (whole), else its :data:`BUILDCONFIG_LABEL` (cut to a label value's 63 characters, :func:`labels.label_value`;
    OpenShift's ``ConfigNameForBuild`` likewise reads its annotation before the label); None if neither."""
    refs = well_known.meta_field(build, "ownerReferences") or []
    for ref in refs:
        kind = ref.get("kind") if isinstance(ref, dict) else getattr(ref, "kind", None)
        if kind == "BuildConfig":
            owner = ref.get("name") if isinstance(ref, dict) else getattr(ref, "name", None)
            if owner:
                return str(owner)
    return well_known.get(build, BUILDCONFIG_LABEL)


def build_name(pod: Any) -> str | None:
    """The Build a build pod (a dict or typed) runs: its :data:`BUILD_NAME_ANNOTATION` (whole), else its
    :data:`BUILD_NAME_LABEL` (cut to 63 characters), else None."""
    return well_known.get_annotation(pod, well_known.BUILD_NAME_ANNOTATION) or well_known.get(pod, BUILD_NAME_LABEL)


def pod_name(build_name: str) -> str:
    """``<build>-build``, OpenShift's build pod naming."""
    return f"{build_name}-build"


def build_pod(build: dict[str, Any], *, output: str | None = None) -> dict[str, Any]:
    """The Pod manifest that runs ``build`` (a Build object as a dict with uid), pushing to ``output`` (the
    resolved ``output.to``, carried as ``status.outputDockerImageReference``; see :func:`carried_output`)."""
    meta = build["metadata"]
    # creationTimestamp and labels (the build number) order Builds of one output: see labels.BUILD_ORDER
    keep = ("name", "namespace", "uid", "creationTimestamp", "labels")
    payload: dict[str, Any] = {"metadata": {k: meta[k] for k in keep if meta.get(k) is not None}, "spec": build["spec"]}
    if output:
        payload["status"] = {"outputDockerImageReference": output}
    labels = {BUILD_POD_LABEL: well_known.BUILD_POD_TRUE, BUILD_NAME_LABEL: well_known.label_value(meta["name"])}
    if (meta.get("labels") or {}).get(BUILDCONFIG_LABEL):
        labels[BUILDCONFIG_LABEL] = meta["labels"][BUILDCONFIG_LABEL]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name(meta["name"]),
            "namespace": meta["namespace"],
            "labels": labels,
            "annotations": {well_known.BUILD_NAME_ANNOTATION: meta["name"]},
            "ownerReferences": [
                {
                    "apiVersion": build["apiVersion"],
                    "kind": "Build",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "restartPolicy": "Never",
            # exempt from Pod Security: the agent runs the Build, never this container (see api/podsecurity.py)
            "runtimeClassName": BUILD_RUNTIME_CLASS,
            "containers": [
                {
                    "name": BUILDER_CONTAINER,
                    "image": BUILDER_IMAGE,
                    "env": [{"name": "BUILD", "value": json.dumps(payload, sort_keys=True)}],
                }
            ],
        },
    }


def build_from_pod(pod: dict[str, Any]) -> dict[str, Any]:
    """The Build payload (``metadata`` + ``spec``) carried in a build pod's ``BUILD`` env var.

    Raises:
        ValueError: the pod carries no valid payload.
    """
    for container in pod.get("spec", {}).get("containers") or []:
        for env in container.get("env") or []:
            if env.get("name") == "BUILD":
                payload = json.loads(env.get("value") or "")
                if not isinstance(payload, dict):
                    raise ValueError("the BUILD environment variable is not a JSON object")
                return payload
    raise ValueError("pod has no BUILD environment variable")


def carried_output(payload: dict[str, Any]) -> str | None:
    """The registry reference a build pod's Build payload (:func:`build_from_pod`) pushes to: its
    ``status.outputDockerImageReference``, or (a payload without one) ``spec.output.to.name`` when that is a
    registry reference (``kind: DockerImage``); None when there is none: an Image's name is never pushed to."""
    status = payload.get("status")
    if isinstance(status, dict) and isinstance(status.get("outputDockerImageReference"), str):
        return str(status["outputDockerImageReference"]) or None
    to = ((payload.get("spec") or {}).get("output") or {}).get("to") or {}
    if to.get("kind", models.DOCKER_IMAGE_KIND) == models.DOCKER_IMAGE_KIND and isinstance(to.get("name"), str):
        return str(to["name"]) or None
    return None


@dataclass(frozen=True)
class BuildResult:
    """What a finished build pod reports. ``reason`` uses OpenShift's ``StatusReason`` vocabulary.

    ``stages`` follows OpenShift's ``StageInfo`` (``name``, ``startTime``,
    ``durationMilliseconds``); ``revision`` its ``SourceRevision``
    (``{"type": "Git", "git": {"commit", "author": {"name", "email"}, "message"}}``).
    """

    succeeded: bool
    image_digest: str | None = None
    reason: str | None = None
    message: str | None = None
    log_snippet: str | None = None
    stages: tuple[dict[str, Any], ...] = ()
    revision: dict[str, Any] | None = None

    def termination_message(self) -> str:
        return json.dumps(
            {
                "imageDigest": self.image_digest,
                "reason": self.reason,
                "message": self.message,
                "logSnippet": self.log_snippet,
                "stages": list(self.stages),
                "revision": self.revision,
            }
        )


def result_from_pod(pod: dict[str, Any]) -> BuildResult | None:
    """The outcome of a terminated build pod, or None while it has not terminated."""
    phase = (pod.get("status") or {}).get("phase")
    if phase not in phases.POD_TERMINAL:
        return None
    data: dict[str, Any] = {}
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        terminated = (status.get("state") or {}).get("terminated") or {}
        try:
            data = json.loads(terminated.get("message") or "{}")
        except ValueError:
            data = {"message": terminated.get("message")}
    return BuildResult(
        succeeded=phase == phases.POD_SUCCEEDED,
        image_digest=data.get("imageDigest"),
        reason=data.get("reason") or (None if phase == phases.POD_SUCCEEDED else "GenericBuildFailed"),
        message=data.get("message"),
        log_snippet=data.get("logSnippet"),
        stages=tuple(data.get("stages") or ()),
        revision=data.get("revision"),
    )
