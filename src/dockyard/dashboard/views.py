"""What the dashboard's templates show, computed from typed objects. Pure functions, no I/O.

Status is always text plus an icon (WCAG 2.2 success criterion 1.4.1 "Use of Color": colour is never the
only carrier); :func:`status` maps a phase, reason or condition to both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lightkube.models.core_v1 import Event, Pod
from lightkube.resources.apps_v1 import Deployment

from dockyard.api import buildpod, objects, phases, timefmt
from dockyard.api import labels as well_known


@dataclass(frozen=True)
class Status:
    """A status as the page shows it: ``icon`` (a character), ``tone`` (CSS class suffix) and ``text``."""

    icon: str
    tone: str
    text: str


_OK = frozenset({phases.BuildPhase.COMPLETE, phases.PushPhase.SUCCEEDED, "True", "Ready", "Available"})
_BAD = frozenset(
    {phases.BuildPhase.FAILED, phases.BuildPhase.ERROR, phases.PodPhase.FAILED, "False", "Warning", "Quarantined"}
)
_BUSY = frozenset({phases.BuildPhase.RUNNING, phases.BuildPhase.PENDING, phases.BuildPhase.NEW, "Progressing"})
_OFF = frozenset({phases.BuildPhase.CANCELLED, "Unknown", ""})


def status(text: str | None) -> Status:
    """Icon and tone for a phase (``Complete``, ``Running``, ...), a condition status (``True``/``False``) or an
    Event type (``Normal``/``Warning``); the text is kept as given (``"Unknown"`` for ``None``)."""
    value = text or ""
    if value in _OK:
        return Status("✔", "ok", value)
    if value in _BAD:
        return Status("✖", "bad", value)
    if value in _BUSY:
        return Status("⟳" if value == phases.BuildPhase.RUNNING else "◷", "busy", value)
    if value in _OFF:
        return Status("⊘", "off", value or "Unknown")
    return Status("●", "info", value)


def seconds_text(seconds: float | None) -> str:
    """``1h 2m``, ``3m 4s``, ``5.2s`` or ``""`` for ``None``."""
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{seconds:.1f}s"
    s = round(seconds)
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h}h {m}m"
    return f"{m}m {s}s" if m else f"{s}s"


def short_digest(digest_or_image: str | None) -> str:
    """``sha256:0123456789ab`` (12 hex digits) of a digest or a ``repo@sha256:...`` reference; ``""`` if none."""
    if not digest_or_image:
        return ""
    digest = digest_or_image.rpartition("@")[2]
    algo, _, hexpart = digest.partition(":")
    return f"{algo}:{hexpart[:12]}" if hexpart else digest


def build_number(build: objects.Build) -> int:
    """The build's number (label ``dockyard.dev/build.number``, else the ``-N`` suffix of its name; 0 if neither)."""
    text = build.metadata.labels.get(well_known.BUILD_NUMBER) or build.metadata.name.rpartition("-")[2]
    return int(text) if text.isdigit() else 0


def build_seconds(build: objects.Build, now: float) -> float | None:
    """How long the build ran: ``status.duration`` (nanoseconds), else since ``startTimestamp`` until ``now``."""
    st = build.status
    if st.duration is not None:
        return st.duration / 1e9
    start = timefmt.parse_or_none(st.startTimestamp)
    if start is None:
        return None
    end = timefmt.parse_or_none(st.completionTimestamp) or now
    return max(0.0, end - start)


def build_digest(build: objects.Build) -> str | None:
    """The digest the build pushed (``status.output.to.imageDigest``), or None."""
    out = build.status.output
    return out.to.imageDigest if out is not None and out.to is not None else None


def trigger_cause(build: objects.Build) -> str:
    """What started the build, from ``spec.triggeredBy[].message`` (OpenShift's ``BuildTriggerCause``)."""
    return "; ".join(str(t.get("message") or "") for t in build.spec.triggeredBy if t.get("message")) or "Manual"


@dataclass
class BuildConfigView:
    """One BuildConfig with its builds, newest first."""

    config: objects.BuildConfig
    builds: list[objects.Build] = field(default_factory=list)


def builds_by_config(configs: list[objects.BuildConfig], builds: list[objects.Build]) -> list[BuildConfigView]:
    """Builds grouped under their BuildConfig (label ``dockyard.dev/buildconfig``), newest first; configs by
    namespace and name."""
    views = {(c.metadata.namespace, c.metadata.name): BuildConfigView(c) for c in configs}
    for b in builds:
        view = views.get((b.metadata.namespace, buildpod.config_name(b) or ""))
        if view is not None:
            view.builds.append(b)
    for view in views.values():
        view.builds.sort(key=build_number, reverse=True)
    return [views[k] for k in sorted(views, key=lambda k: (k[0] or "", k[1]))]


def build_active(build: objects.Build) -> bool:
    """True while the build may still be cancelled (not in a terminal phase, not already cancelled)."""
    return build.status.phase not in phases.BUILD_TERMINAL and not build.status.cancelled


def build_done(build: objects.Build) -> bool:
    """True once the build is in a terminal phase (its log is complete)."""
    return build.status.phase in phases.BUILD_TERMINAL


def involves(event: Event, *, kind: str | None, name: str | None, namespace: str | None) -> bool:
    """True if ``event.involvedObject`` matches every given one of ``kind``, ``name`` and ``namespace``."""
    obj = event.involvedObject
    return (
        (not kind or obj.kind == kind)
        and (not name or obj.name == name)
        and (not namespace or (obj.namespace or (event.metadata.namespace if event.metadata else None)) == namespace)
    )


def event_time(event: Event) -> str:
    """The event's latest time (``lastTimestamp``, ``eventTime``, ``firstTimestamp`` or creation), RFC 3339."""
    for value in (event.lastTimestamp, event.eventTime, event.firstTimestamp):
        if value is not None:
            return value if isinstance(value, str) else timefmt.format(value)
    created = event.metadata.creationTimestamp if event.metadata else None
    if created is None:
        return ""
    return created if isinstance(created, str) else timefmt.format(created)


def image_history(image: objects.Image, events: list[Event]) -> list[tuple[str, str]]:
    """``(time, message)`` of each digest the Image resolved to, newest first: its ``ImageResolved`` Events
    (written by the Image controller on every change of ``status.latestImage``), else its current status."""
    rows = [
        (event_time(e), e.message or "")
        for e in events
        if e.reason == phases.ImageEventReason.RESOLVED
        and involves(e, kind="Image", name=image.metadata.name, namespace=image.metadata.namespace)
    ]
    rows.sort(reverse=True)
    if not rows and image.status.latestImage:
        rows = [(image.status.lastScanTime or "", image.status.latestImage)]
    return rows


def image_policy(image: objects.Image) -> str:
    """``tag latest``, ``semver >=1.0``, ``alphabetical desc`` ... from ``spec.tag`` / ``spec.policy``."""
    spec = image.spec
    if spec.policy is None:
        return f"tag {spec.tag or 'latest'}"
    dumped: dict[str, Any] = spec.policy.model_dump(exclude_none=True)
    for kind, rule in dumped.items():
        detail = " ".join(str(v) for v in rule.values()) if isinstance(rule, dict) else str(rule)
        return f"{kind} {detail}".strip()
    return "policy"


def condition(conditions: list[Any], type_: str) -> Any | None:
    """The condition of ``type_`` in a list of condition models, or None."""
    return next((c for c in conditions if c.type == type_), None)


def pod_digest(pod: Pod, container: str | None) -> str:
    """The manifest digest the pod's ``container`` (first if None) runs: the ``repo@sha256:...`` of its spec (what
    the ImageDeploy set; the registry's digest), else its status ``imageID`` (the engine's image ID)."""
    containers = pod.spec.containers if pod.spec is not None else []
    want = container or (containers[0].name if containers else None)
    for c in containers:
        if c.name == want and c.image and "@" in c.image:
            return c.image
    for cs in (pod.status.containerStatuses if pod.status is not None else None) or []:
        if cs.name == want and cs.imageID:
            return str(cs.imageID)
    return next((c.image or "" for c in containers if c.name == want), "")


def pod_ready(pod: Pod) -> Status:
    """``Ready`` / ``NotReady`` from the pod's ``Ready`` condition, with the pod's phase when not ready."""
    conds = (pod.status.conditions if pod.status is not None else None) or []
    ready = any(c.type == "Ready" and c.status == "True" for c in conds)
    phase = (pod.status.phase if pod.status is not None else None) or phases.PodPhase.PENDING
    return status("Ready") if ready else Status("◷", "busy", f"Not ready ({phase})")


def rollout_text(deploy: Deployment) -> str:
    """``2/3 updated · 2 ready · 2 available`` from the Deployment's status against ``spec.replicas``."""
    want = 1 if deploy.spec is None or deploy.spec.replicas is None else deploy.spec.replicas
    st = deploy.status
    updated = (st.updatedReplicas if st else 0) or 0
    ready = (st.readyReplicas if st else 0) or 0
    available = (st.availableReplicas if st else 0) or 0
    return f"{updated}/{want} updated · {ready} ready · {available} available"


def rollback_target(deploy: objects.ImageDeploy) -> str | None:
    """The image a manual rollback returns to: the newest ``status.history`` entry that differs from
    ``status.latestImage`` and is not quarantined; None when there is none."""
    st = deploy.status
    failed = {f.image for f in st.failedImages}
    for entry in st.history:
        if entry.image != st.latestImage and entry.image not in failed:
            return entry.image
    return None
