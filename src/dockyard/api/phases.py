"""Phases of the kinds dockyard runs, and which of them are terminal. No I/O.

Plain ``str`` constants (not :class:`enum.Enum` members), so a phase written into an object serializes as
the string itself in JSON and YAML alike. Sources: Kubernetes ``core/v1`` ``PodPhase`` and
``NamespacePhase`` (``types.go``), OpenShift ``build/v1`` ``BuildPhase`` (``types.go``), and the Push proposal's
``PushPhase`` (DESIGN.md "Resources").
"""

from __future__ import annotations

from typing import Final


class PodPhase:
    """``Pod.status.phase`` (k8s.io/api/core/v1 ``PodPhase``)."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    UNKNOWN = "Unknown"


class NamespacePhase:
    """``Namespace.status.phase`` (k8s.io/api/core/v1 ``NamespacePhase``)."""

    ACTIVE = "Active"
    TERMINATING = "Terminating"


class BuildPhase:
    """``Build.status.phase`` (openshift/api build/v1 ``BuildPhase``); a Build without a phase is ``New``."""

    # Final: mypy reads each as its Literal, so it fits ``models.BuildStatus.phase``
    NEW: Final = "New"
    PENDING: Final = "Pending"
    RUNNING: Final = "Running"
    COMPLETE: Final = "Complete"
    FAILED: Final = "Failed"
    ERROR: Final = "Error"
    CANCELLED: Final = "Cancelled"


class PushPhase:
    """``Push.status.phase``: the pod phases a one-shot job goes through."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class PushReason:
    """``Push.status.reason`` (and the ``Succeeded`` condition's reason) after a failed attempt: CamelCase, in the
    manner of OpenShift's ``StatusReason`` of a Build (``PushImageToRegistryFailed`` is OpenShift's own)."""

    SOURCE_POD_NOT_FOUND = "SourcePodNotFound"
    SOURCE_CONTAINER_NOT_FOUND = "SourceContainerNotFound"
    COMMIT_FAILED = "CommitFailed"
    AUTHENTICATION_FAILED = "AuthenticationFailed"
    PUSH_FAILED = "PushImageToRegistryFailed"
    INVALID_IMAGE_REFERENCE = "InvalidImageReference"
    UNSUPPORTED_RUNTIME = "UnsupportedRuntime"
    """The pod's container runtime is neither Docker Engine nor Podman (e.g. containerd, CRI-O): nothing to
    commit through; not retried."""
    # reasons of the Succeeded condition while not failed
    WAITING_FOR_EXIT = "WaitingForContainerExit"
    BACKOFF = "BackOff"
    RUNNING = "Running"
    PUSHED = "Pushed"


class FailedImageReason:
    """``ImageDeploy.status.failedImages[].reason``: why a digest was quarantined. The first three are the
    ImageDeploy controller's automatic rollback; the last is a rollback asked for by a user (the dashboard's
    button), which quarantines the digest the same way."""

    PROGRESS_DEADLINE = "ProgressDeadlineExceeded"
    """The Deployment's ``Progressing=False`` reason (kube-controller-manager's ``TimedOutReason``)."""
    CRASH_LOOP = "CrashLoopBackOff"
    """The kubelet's waiting reason of a container in restart back-off (``kubecontainer.ErrCrashLoopBackOff``)."""
    RESTART_LIMIT = "RestartLimitExceeded"
    READINESS_TIMEOUT = "ReadinessTimeout"
    ROLLED_BACK_BY_USER = "RolledBackByUser"


class ImageEventReason:
    """Reasons of the Events the Image controller records (read by the dashboard's digest history)."""

    RESOLVED = "ImageResolved"
    """A scan found the policy's latest image (Normal; the message names the tag and ``repo@digest``)."""
    SCAN_FAILED = "ScanFailed"


class PushTrigger:
    """``Push.spec.trigger``: when the container is committed (the Kubernetes Push proposal's values)."""

    IMMEDIATE = "Immediate"
    ON_EXIT = "OnExit"


SUCCEEDED_CONDITION = "Succeeded"
"""Condition type of a run-to-completion object (a Build, a Push): Unknown while it runs, then True or False
(OpenShift ``BuildConditionType``, Tekton ``ConditionSucceeded``)."""

POD_SUCCEEDED = PodPhase.SUCCEEDED
POD_FAILED = PodPhase.FAILED

POD_TERMINAL = frozenset({PodPhase.SUCCEEDED, PodPhase.FAILED})
"""Pod phases after which no container runs again (kubelet ``podWorkers`` "terminated")."""

BUILD_FAILED = frozenset({BuildPhase.FAILED, BuildPhase.ERROR, BuildPhase.CANCELLED})
"""Build phases that end without an image (OpenShift ``IsBuildComplete`` minus ``Complete``)."""

BUILD_TERMINAL = frozenset({BuildPhase.COMPLETE}) | BUILD_FAILED
"""Build phases after which the Build never changes phase again (OpenShift ``IsTerminalPhase``)."""

PUSH_TERMINAL = frozenset({PushPhase.SUCCEEDED, PushPhase.FAILED})
"""Push phases after which the agent does not touch the Push again."""

TERMINAL = BUILD_TERMINAL | POD_TERMINAL | PUSH_TERMINAL
"""Every terminal phase of a Build, Pod or Push (what ``?watch`` waiting on "done" accepts)."""
