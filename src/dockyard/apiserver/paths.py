"""Resource paths: ``/api/v1/...`` and ``/apis/GROUP/VERSION/...`` parsed into a target. Pure.

The URL layout is the one in the Kubernetes API concepts ("Resource URIs"):

- ``/apis/G/V/PLURAL`` (cluster-scoped kinds, and all-namespace lists)
- ``/apis/G/V/PLURAL/NAME[/SUBRESOURCE]`` (cluster-scoped objects)
- ``/apis/G/V/namespaces/NS/PLURAL[/NAME[/SUBRESOURCE]]`` (namespaced)

The core group lives under ``/api/v1`` instead of ``/apis/G/V``.
"""

from __future__ import annotations

from dataclasses import dataclass

from dockyard.api import errors, kinds


@dataclass(frozen=True)
class Target:
    """What a resource path names.

    Attributes:
        group, version: the group-version in the path (group ``""`` for ``/api``).
        info: the resource, or ``None`` for the group-version root (discovery).
        namespace: the namespace in the path, or ``None``.
        name: the object name, or ``None`` for a collection.
        subresource: e.g. ``status``, ``log``, ``instantiate``, or ``None``.
        extra: path segments after the subresource: ``(secret, type)`` for a
            BuildConfig's ``webhooks/SECRET/TYPE`` (OpenShift's webhook URL shape).
    """

    group: str
    version: str
    info: kinds.ResourceInfo | None = None
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None
    extra: tuple[str, ...] = ()


def _not_found() -> errors.NotFound:
    return errors.NotFound("the server could not find the requested resource")


_PARSED_MAX = 4096
_parsed: dict[str, Target] = {}
_parsed_for: tuple[kinds.ResourceInfo, ...] = ()


def parse(path: str) -> Target:
    """Parse a path under ``/api`` or ``/apis``.

    A request's path is parsed by the metrics middleware and by the handler: the last
    :data:`_PARSED_MAX` targets are kept, for as long as the served kinds stay the same.

    Returns:
        The :class:`Target`; the group-version must be served.
    Raises:
        errors.NotFound: unknown group, version, resource or subresource, or a
            path of the wrong shape (404, "the server could not find the
            requested resource", as the apiserver answers).
    """
    global _parsed_for
    served = kinds.served()
    if served is not _parsed_for:
        _parsed.clear()
        _parsed_for = served
    found = _parsed.get(path)
    if found is None:
        found = _parse(path)
        if len(_parsed) >= _PARSED_MAX:
            _parsed.clear()
        _parsed[path] = found
    return found


def _parse(path: str) -> Target:
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 2:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise _not_found()
    if not kinds.serves(group, version):
        raise _not_found()
    if not rest:
        return Target(group, version)

    def lookup(plural: str) -> kinds.ResourceInfo:
        info = kinds.by_plural(group, version, plural)
        if info is None:
            raise _not_found()
        return info

    namespaced_form = (
        rest[0] == "namespaces"
        and len(rest) >= 3
        and (info3 := kinds.by_plural(group, version, rest[2])) is not None
        and info3.namespaced
    )
    if namespaced_form:
        namespace, info, tail = rest[1], lookup(rest[2]), rest[3:]
    else:
        namespace, info, tail = None, lookup(rest[0]), rest[1:]
    extra: tuple[str, ...] = ()
    if len(tail) == 4 and tail[1] == "webhooks" and info.kind == "BuildConfig":
        tail, extra = tail[:2], tuple(tail[2:])
    elif len(tail) > 2 or (len(tail) == 2 and tail[1] == "webhooks"):
        raise _not_found()
    name = tail[0] if tail else None
    sub = tail[1] if len(tail) > 1 else None
    if sub is not None and sub not in info.subresources:
        raise _not_found()
    if info.namespaced and name is not None and namespace is None:
        raise _not_found()
    if not info.namespaced and namespace is not None:
        raise _not_found()
    return Target(group, version, info, namespace, name, sub, extra)


def object_path(info: kinds.ResourceInfo, namespace: str | None, name: str | None = None) -> str:
    """The URL path of a collection or object (``selfLink`` shape)."""
    base = f"/apis/{info.group}/{info.version}" if info.group else f"/api/{info.version}"
    if info.namespaced and namespace:
        base += f"/namespaces/{namespace}"
    base += f"/{info.plural}"
    return f"{base}/{name}" if name else base
