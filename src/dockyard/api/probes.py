"""Rules of a container's probes, shared by the API server's validation and the node agent's prober. No I/O.

Kubernetes ``v1.Probe`` (``livenessProbe``, ``readinessProbe``, ``startupProbe``): one handler (``exec``,
``httpGet``, ``tcpSocket``; ``grpc`` is refused, the prober does not speak it) and the timings, defaulted as
``SetDefaults_Probe`` does (0 or unset means the default). The prober connects to the pod's own loopback
inside the pod's network namespace, so ``host`` may only name loopback. Validation follows
``pkg/apis/core/validation`` ``validateProbe`` / ``validateHandler`` and its messages.
"""

from __future__ import annotations

import re
from typing import Any

from dockyard.api import names
from dockyard.api.errors import Cause

__all__ = [
    "DEFAULT_FAILURE_THRESHOLD",
    "DEFAULT_PERIOD_SECONDS",
    "DEFAULT_SUCCESS_THRESHOLD",
    "DEFAULT_TIMEOUT_SECONDS",
    "HANDLERS",
    "LOOPBACK_HOSTS",
    "PROBE_FIELDS",
    "SCHEMES",
    "action_causes",
    "container_probe_causes",
]

PROBE_FIELDS = ("livenessProbe", "readinessProbe", "startupProbe")
"""The probe fields of a ``v1.Container``."""
HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")
"""``v1.ProbeHandler`` members (one must be set); ``grpc`` is refused by this node agent."""
SUPPORTED_HANDLERS = ("exec", "httpGet", "tcpSocket")
SCHEMES = ("HTTP", "HTTPS")
"""``v1.URIScheme`` values (HTTPS is probed without verifying the certificate, as the kubelet does)."""
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
"""``httpGet.host`` / ``tcpSocket.host`` values the prober honours: both mean the pod's own loopback,
127.0.0.1 inside the pod's network namespace (unset means the same)."""

DEFAULT_PERIOD_SECONDS = 10
DEFAULT_TIMEOUT_SECONDS = 1
DEFAULT_SUCCESS_THRESHOLD = 1
DEFAULT_FAILURE_THRESHOLD = 3

_TIMING_FIELDS = ("initialDelaySeconds", "periodSeconds", "timeoutSeconds", "successThreshold", "failureThreshold")
_KNOWN = frozenset({*HANDLERS, *_TIMING_FIELDS, "terminationGracePeriodSeconds"})
_HANDLER_FIELDS = {
    "exec": frozenset({"command"}),
    "httpGet": frozenset({"path", "port", "host", "scheme", "httpHeaders"}),
    "tcpSocket": frozenset({"port", "host"}),
}
_UNKNOWN_FIELD = "field not declared in schema"  # validation.UNKNOWN_FIELD (validation imports this module)
_HEADER_NAME = re.compile(r"^[-!#$%&'*+.^_`|~0-9A-Za-z]+$")  # RFC 9110 ``token``


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def container_probe_causes(container: dict[str, Any], where: str) -> list[Cause]:
    """Causes against the probes of one container (a wire dict) at ``where`` (``spec.containers[0]``).

    Returns:
        One :class:`Cause` per bad field, e.g. ``spec.containers[0].livenessProbe.successThreshold:
        must be 1`` (Kubernetes ``validateProbe``), ``...httpGet.host: ... loopback``, ``...grpc: not
        supported``. Empty when every probe can be honoured.
    """
    causes: list[Cause] = []
    for key in PROBE_FIELDS:
        probe = container.get(key)
        if probe is None:
            continue
        pwhere = f"{where}.{key}"
        if not isinstance(probe, dict):
            causes.append(Cause(pwhere, "must be an object"))
            continue
        causes.extend(_probe_causes(probe, pwhere, key, container))
    return causes


def _probe_causes(probe: dict[str, Any], where: str, key: str, container: dict[str, Any]) -> list[Cause]:
    causes = [Cause(f"{where}.{k}", _UNKNOWN_FIELD, "FieldValueNotSupported") for k in probe if k not in _KNOWN]
    handlers = [h for h in HANDLERS if probe.get(h) is not None]
    if not handlers:
        causes.append(Cause(where, "Required value: must specify a handler type", "FieldValueRequired"))
    elif len(handlers) > 1:
        causes.append(Cause(where, "Forbidden: may not specify more than 1 handler type", "FieldValueForbidden"))
    for handler in handlers:
        hwhere = f"{where}.{handler}"
        value = probe[handler]
        if handler == "grpc":
            causes.append(
                Cause(hwhere, "Forbidden: gRPC probes are not supported by the node agent", "FieldValueForbidden")
            )
            continue
        causes.extend(action_causes(handler, value, hwhere, container))
    for name in _TIMING_FIELDS:
        value = probe.get(name)
        if value is not None and (not _is_int(value) or value < 0):
            causes.append(Cause(f"{where}.{name}", "must be greater than or equal to 0"))
    success = probe.get("successThreshold")
    if key in ("livenessProbe", "startupProbe") and _is_int(success) and success not in (0, 1):
        causes.append(Cause(f"{where}.successThreshold", f"Invalid value: {success}: must be 1"))
    grace = probe.get("terminationGracePeriodSeconds")
    if grace is not None:
        if key == "readinessProbe":
            causes.append(
                Cause(
                    f"{where}.terminationGracePeriodSeconds",
                    "Invalid value: must not be set for readinessProbes",
                )
            )
        elif not _is_int(grace) or grace <= 0:
            causes.append(Cause(f"{where}.terminationGracePeriodSeconds", "must be greater than 0"))
    return causes


def action_causes(
    handler: str, value: Any, where: str, container: dict[str, Any], *, what: str = "probes"
) -> list[Cause]:
    """Causes against one ``exec``, ``httpGet`` or ``tcpSocket`` action at ``where`` (``...livenessProbe.httpGet``):
    a command for ``exec``; a port number or one of the container's port names, a loopback ``host`` (``what``
    names who connects there, in the message), a scheme, a path and headers for ``httpGet``. Shared by probes and
    ``lifecycle`` hooks (:mod:`dockyard.api.podfields`)."""
    if not isinstance(value, dict):
        return [Cause(where, "must be an object")]
    causes = [
        Cause(f"{where}.{k}", _UNKNOWN_FIELD, "FieldValueNotSupported")
        for k in value
        if k not in _HANDLER_FIELDS[handler]
    ]
    if handler == "exec":
        command = value.get("command")
        if not isinstance(command, list) or not command or not all(isinstance(a, str) for a in command):
            causes.append(Cause(f"{where}.command", "Required value: a command is required", "FieldValueRequired"))
        return causes
    causes.extend(_port_causes(value.get("port"), f"{where}.port", container))
    host = value.get("host")
    if host not in (None, "", *LOOPBACK_HOSTS):
        causes.append(
            Cause(
                f"{where}.host",
                f"Unsupported value: {str(host)[:64]!r}: {what} run against the pod's own loopback; "
                f"leave it unset or use {' or '.join(LOOPBACK_HOSTS)}",
                "FieldValueNotSupported",
            )
        )
    if handler == "httpGet":
        causes.extend(_http_causes(value, where))
    return causes


def _port_causes(port: Any, where: str, container: dict[str, Any]) -> list[Cause]:
    """``port``: a number 1–65535 or the name of one of the container's ports (Kubernetes
    ``validatePortNumOrName``; a name no port of the container has is refused too, since the prober could
    never resolve it)."""
    if _is_int(port):
        return [] if 0 < port < 65536 else [Cause(where, "must be between 1 and 65535, inclusive")]
    if not isinstance(port, str) or not port:
        return [Cause(where, "Required value: a port number or name", "FieldValueRequired")]
    invalid = names.port_name_errors(port)  # a number as a string is no name (Kubernetes' ValidatePortNumOrName)
    if invalid:
        return [Cause(where, f"Invalid value: {port[:64]!r}: {msg} (a port name, IANA_SVC_NAME)") for msg in invalid]
    if port not in {p.get("name") for p in container.get("ports") or [] if isinstance(p, dict)}:
        return [
            Cause(where, f"Invalid value: {port!r}: the container has no port named {port!r}", "FieldValueNotFound")
        ]
    return []


def _http_causes(http: dict[str, Any], where: str) -> list[Cause]:
    causes: list[Cause] = []
    scheme = http.get("scheme")
    if scheme is not None and scheme not in SCHEMES:
        causes.append(
            Cause(
                f"{where}.scheme",
                f'Unsupported value: {str(scheme)[:32]!r}: supported values: "HTTP", "HTTPS"',
                "FieldValueNotSupported",
            )
        )
    path = http.get("path")
    if path is not None and (not isinstance(path, str) or any(c in path for c in "\r\n ")):
        causes.append(Cause(f"{where}.path", "must be a URL path without spaces or line breaks"))
    headers = http.get("httpHeaders")
    if headers is not None and not isinstance(headers, list):
        return causes + [Cause(f"{where}.httpHeaders", "must be a list")]
    for i, header in enumerate(headers or []):
        name = header.get("name") if isinstance(header, dict) else None
        value = header.get("value", "") if isinstance(header, dict) else None
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            causes.append(Cause(f"{where}.httpHeaders[{i}].name", "Invalid value: must be a valid HTTP header name"))
        if not isinstance(value, str) or "\r" in value or "\n" in value:
            causes.append(Cause(f"{where}.httpHeaders[{i}].value", "must be a string without line breaks"))
    return causes
