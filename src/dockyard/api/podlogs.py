"""``PodLogOptions``: the query of ``GET /api/v1/namespaces/NS/pods/NAME/log``, parsed and checked.

Kubernetes' ``core/v1`` ``PodLogOptions`` and its checks (``ValidatePodLogOptions`` in
``pkg/apis/core/validation/validation.go``; a bad value is a 422 ``Invalid`` naming the parameter, kind
``PodLogOptions``), and the container the kube-apiserver picks (``pkg/registry/core/pod/strategy.go``
``LogLocation``: the only container, else ``container`` must name one). The API server parses the
request with :func:`parse`; the node agent reads the same parameters back (:func:`to_query`).

Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dockyard.api import errors, timefmt

__all__ = ["PARAMETERS", "LogOptions", "container_for", "parse", "to_query"]

PARAMETERS = (
    "container",
    "follow",
    "previous",
    "sinceSeconds",
    "sinceTime",
    "timestamps",
    "tailLines",
    "limitBytes",
    "insecureSkipTLSVerifyBackend",
)
"""Every ``PodLogOptions`` query parameter Kubernetes defines. ``insecureSkipTLSVerifyBackend`` is about the
apiserver's TLS to the kubelet: the node agent is reached over a Unix socket, with nothing to verify."""


@dataclass(frozen=True)
class LogOptions:
    """What to read of a container's output.

    Attributes:
        container: the container's name ('' until :func:`container_for` picks it).
        follow: stream until the container stops.
        previous: the container's previous, terminated attempt instead of the current one.
        since: only output written at or after this time (seconds since the epoch; from ``sinceSeconds``
            against ``now``, or ``sinceTime``), or ``None``.
        timestamps: prefix each line with its RFC 3339 time.
        tail_lines: only the last this many lines, or ``None`` (all).
        limit_bytes: stop after this many bytes, or ``None``.
    """

    container: str = ""
    follow: bool = False
    previous: bool = False
    since: float | None = None
    timestamps: bool = False
    tail_lines: int | None = None
    limit_bytes: int | None = None


def _last(query: Mapping[str, Sequence[str]], key: str) -> str | None:
    values = query.get(key)
    return values[-1] if values else None


def _bool(query: Mapping[str, Sequence[str]], key: str, causes: list[errors.Cause]) -> bool:
    value = _last(query, key)
    if value is None or value == "":
        return False
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    causes.append(errors.Cause(key, f"Invalid value: {value[:32]!r}: must be true or false"))
    return False


def _int(query: Mapping[str, Sequence[str]], key: str, low: int, causes: list[errors.Cause]) -> int | None:
    value = _last(query, key)
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError:
        causes.append(errors.Cause(key, f"Invalid value: {value[:32]!r}: must be an integer"))
        return None
    if number < low:
        what = "non-negative" if low == 0 else f"greater than {low - 1}"
        causes.append(errors.Cause(key, f"Invalid value: {number}: must be {what}"))
        return None
    return number


def parse(query: Mapping[str, Sequence[str]], *, pod: str, now: float) -> LogOptions:
    """The options of a request's query (``parse_qs`` shape: each parameter's values, the last one counts).

    Args:
        query: the request's query parameters.
        pod: the pod's name (for the error message).
        now: the time ``sinceSeconds`` counts back from (seconds since the epoch).

    Raises:
        errors.Invalid: 422 ``PodLogOptions "POD" is invalid``, a cause per bad parameter: a boolean that is
            not true/false, ``tailLines`` < 0, ``limitBytes`` < 1, ``sinceSeconds`` < 1, ``sinceTime`` not
            RFC 3339, or both ``sinceSeconds`` and ``sinceTime``.
    """
    causes: list[errors.Cause] = []
    follow = _bool(query, "follow", causes)
    previous = _bool(query, "previous", causes)
    timestamps = _bool(query, "timestamps", causes)
    _bool(query, "insecureSkipTLSVerifyBackend", causes)
    tail_lines = _int(query, "tailLines", 0, causes)
    limit_bytes = _int(query, "limitBytes", 1, causes)
    since_seconds = _int(query, "sinceSeconds", 1, causes)
    since_time = _last(query, "sinceTime") or None
    since: float | None = None
    if since_seconds is not None:
        since = now - since_seconds
    if since_time is not None:
        if since_seconds is not None:
            causes.append(
                errors.Cause("sinceTime", "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified")
            )
        try:
            since = timefmt.parse(since_time)
        except ValueError:
            causes.append(errors.Cause("sinceTime", f"Invalid value: {since_time[:40]!r}: must be an RFC 3339 time"))
        else:
            if not math.isfinite(since):
                causes.append(
                    errors.Cause("sinceTime", f"Invalid value: {since_time[:40]!r}: must be an RFC 3339 time")
                )
    if causes:
        raise errors.Invalid(kind="PodLogOptions", group="", name=pod, causes=causes)
    return LogOptions(
        container=_last(query, "container") or "",
        follow=follow,
        previous=previous,
        since=since,
        timestamps=timestamps,
        tail_lines=tail_lines,
        limit_bytes=limit_bytes,
    )


def container_for(options: LogOptions, pod: Mapping[str, Any]) -> str:
    """The container whose output is read: ``options.container``, or the pod's only container.

    ``pod`` is a wire Pod. Init containers and ephemeral containers may be named too, as in Kubernetes.

    Raises:
        errors.BadRequest: no container named and the pod has several (the kube-apiserver's wording:
            ``a container name must be specified for pod NAME, choose one of: [a b]``), or the named
            container is not in the pod (``container X is not valid for pod NAME``).
    """
    spec = pod.get("spec") if isinstance(pod.get("spec"), Mapping) else {}
    name = str((pod.get("metadata") or {}).get("name") or "")

    def names(key: str) -> list[str]:
        items = spec.get(key) if isinstance(spec, Mapping) else None
        return [str(c.get("name")) for c in items or [] if isinstance(c, Mapping) and c.get("name")]

    containers, others = names("containers"), names("initContainers") + names("ephemeralContainers")
    if not options.container:
        if len(containers) == 1:
            return containers[0]
        choices = " ".join(containers)
        extra = (
            f" or one of the init containers: [{' '.join(names('initContainers'))}]" if names("initContainers") else ""
        )
        raise errors.BadRequest(f"a container name must be specified for pod {name}, choose one of: [{choices}]{extra}")
    if options.container not in containers + others:
        raise errors.BadRequest(f"container {options.container} is not valid for pod {name}")
    return options.container


def to_query(options: LogOptions, *, pod_uid: str) -> dict[str, str]:
    """The node agent's query for ``options`` (``since`` as seconds since the epoch, ``podUID`` naming the
    pod's incarnation: a pod deleted and created again under its name is another pod)."""
    query = {"podUID": pod_uid}
    if options.follow:
        query["follow"] = "true"
    if options.previous:
        query["previous"] = "true"
    if options.timestamps:
        query["timestamps"] = "true"
    if options.since is not None:
        query["since"] = repr(options.since)
    if options.tail_lines is not None:
        query["tailLines"] = str(options.tail_lines)
    if options.limit_bytes is not None:
        query["limitBytes"] = str(options.limit_bytes)
    return query
