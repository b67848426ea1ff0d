"""Tag policies of an Image: which of a repository's tags is the latest. Pure (no I/O).

Names and meaning are Flux's image-reflector-controller ``ImagePolicy``
(https://fluxcd.io/flux/components/image/imagepolicies/, ``internal/policy``):

- ``filterTags: {pattern, extract}``: only tags the ``pattern`` matches (RE2 syntax, as Go's ``regexp``;
  unanchored, like Go's ``FindStringSubmatchIndex``) take part; ``extract`` is a Go ``regexp.Expand``
  template (``$ts``, ``${ts}``, ``$1``, ``$$`` for a literal ``$``) whose expansion is what the policy
  compares; the tag that produced the winning value is the result. An empty ``extract`` compares the
  whole tag.
- ``semver: {range}``: the highest version satisfying ``range``. Ranges are Masterminds/semver constraints
  as Flux takes them: ``>=1.0.0 <2.0.0`` (space or ``,`` between ANDed comparisons), ``||`` between
  alternatives, ``^1.2``, ``~1.4``, ``1.x``, ``1.2 - 1.4``; a pre-release is picked only by a range that
  names a pre-release (npm/Masterminds rule). Tags are read as Masterminds' ``NewVersion`` reads them: an
  optional ``v``, and ``1``/``1.2`` completed to ``1.0.0``/``1.2.0``; other tags are skipped. Evaluation
  is ``semantic_version``'s ``NpmSpec`` (npm's range grammar, which Masterminds' follows).
- ``alphabetical: {order}``: ``asc`` (default) picks the last tag in ascending (code point) order, ``desc``
  the first (Flux ``AlphabeticalPolicer``).
- ``numerical: {order}``: values read as floats (Go ``strconv.ParseFloat``); ``asc`` (default) picks the
  largest, ``desc`` the smallest. As in Flux, a value that is not a number fails the scan
  (:class:`PolicyError`): use ``filterTags`` to keep only numeric tags.

Regular expressions are compiled with RE2 (``google-re2``): the same syntax as Flux's Go ``regexp`` and
linear time, so a hostile pattern cannot stall the controller (Python's backtracking ``re`` could).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import re2
import semantic_version

from dockyard.api import hosts, reference

__all__ = [
    "ORDERS",
    "Policy",
    "PolicyError",
    "compile_pattern",
    "expand",
    "parse_range",
    "parse_version",
    "same_registry",
    "select",
    "tracks",
]

ORDERS = ("asc", "desc")
"""Values of ``alphabetical.order`` and ``numerical.order`` (Flux's)."""

MAX_PATTERN_LENGTH = 1024
"""Longest ``filterTags.pattern`` accepted (characters)."""

Order = Literal["asc", "desc"]


class PolicyError(ValueError):
    """A policy cannot pick a tag: e.g. a numerical policy met a value that is not a number."""


def _re2_options() -> Any:
    options = re2.Options()
    options.log_errors = False  # errors are raised (and reported as a 422), not logged to stderr
    return options


_OPTIONS = _re2_options()


def compile_pattern(pattern: str) -> Any:
    """Compile a ``filterTags.pattern`` with RE2.

    Returns:
        A compiled RE2 pattern (``search``/``groupindex`` as :mod:`re`'s).
    Raises:
        ValueError: not a valid RE2 expression (back-references and look-around are not RE2), or longer
            than :data:`MAX_PATTERN_LENGTH`.
    """
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ValueError(f"longer than {MAX_PATTERN_LENGTH} characters")
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as err:
        detail = err.args[0] if err.args else err
        if isinstance(detail, bytes):
            detail = detail.decode(errors="replace")
        raise ValueError(f"not a valid RE2 regular expression: {detail}") from None


_TEMPLATE = re.compile(r"\$(?:\$|\{(\w+)\}|(\w+))")


def check_template(template: str, compiled: Any) -> None:
    """Check that every group an ``extract`` template names exists in ``compiled``.

    Go's ``Expand`` silently expands an unknown group to ``""``; refusing it at admission is kinder
    (a typo would otherwise make every tag compare equal).

    Raises:
        ValueError: naming the unknown group.
    """
    names = set(compiled.groupindex)
    for match in _TEMPLATE.finditer(template):
        name = match.group(1) or match.group(2)
        if name is None:
            continue
        if name.isdigit():
            if int(name) > compiled.groups:
                raise ValueError(f"${name}: the pattern has only {compiled.groups} group(s)")
        elif name not in names:
            known = ", ".join(sorted(names)) or "none"
            raise ValueError(f"${name}: the pattern has no group named {name!r} (named groups: {known})")


def expand(template: str, match: Any) -> str:
    """Go ``regexp.Expand``: ``$name``/``${name}``/``$1`` → that group's text (``""`` if it did not take part),
    ``$$`` → ``$``; any other text as it is."""

    def one(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name is None:
            return "$"
        group = int(name) if name.isdigit() else name
        try:
            text = match.group(group)
        except (IndexError, KeyError):
            return ""
        return text or ""

    return _TEMPLATE.sub(one, template)


_VERSION = re.compile(
    r"^v?(?P<major>0|[1-9]\d*)(?:\.(?P<minor>0|[1-9]\d*))?(?:\.(?P<patch>0|[1-9]\d*))?"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+(?P<build>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)


def parse_version(tag: str) -> semantic_version.Version | None:
    """A tag as Masterminds' ``NewVersion`` reads it (``v1.2.3``, ``1.2``, ``1``, ``1.2.3-rc.1+b``), or None."""
    m = _VERSION.match(tag)
    if m is None:
        return None
    pre = m.group("pre")
    build = m.group("build")
    try:
        return semantic_version.Version(
            major=int(m.group("major")),
            minor=int(m.group("minor") or 0),
            patch=int(m.group("patch") or 0),
            prerelease=tuple(pre.split(".")) if pre else (),
            build=tuple(build.split(".")) if build else (),
        )
    except ValueError:
        return None


def parse_range(text: str) -> semantic_version.NpmSpec:
    """A Masterminds-style constraint as an npm range: ``,`` between comparisons means AND (a space in npm).

    Raises:
        ValueError: not a range (the message quotes the bad part).
    """
    cleaned = re.sub(r"\s*,\s*", " ", text.strip())
    if not cleaned:
        raise ValueError("must not be empty")
    if len(cleaned) > 256:
        raise ValueError("longer than 256 characters")
    try:
        return semantic_version.NpmSpec(cleaned)
    except ValueError as err:
        raise ValueError(
            f"{text!r} is not a semver range such as '>=1.0.0 <2.0.0', '^1.2', '~1.4' or '1.x': {err}"
        ) from None


@dataclass(frozen=True)
class Policy:
    """A tag policy, typed: exactly one of ``semver`` (a range), ``alphabetical`` or ``numerical`` (an order),
    and an optional filter (``pattern``, ``extract``)."""

    semver: str | None = None
    alphabetical: Order | None = None
    numerical: Order | None = None
    pattern: str | None = None
    extract: str = ""


def _filtered(policy: Policy, tags: Iterable[str]) -> dict[str, str]:
    """Compared value → original tag (a later tag with the same value wins, as Flux's map)."""
    if not policy.pattern:
        return {t: t for t in tags}
    compiled = compile_pattern(policy.pattern)
    out: dict[str, str] = {}
    for tag in tags:
        match = compiled.search(tag)
        if match is None:
            continue
        out[expand(policy.extract, match) if policy.extract else tag] = tag
    return out


def select(policy: Policy, tags: Iterable[str]) -> str | None:
    """The tag ``policy`` picks among ``tags``, or None when no tag qualifies.

    Raises:
        PolicyError: a numerical policy met a value that is not a number (naming it).
        ValueError: the policy's pattern or range does not compile (admission refuses those first).
    """
    values = _filtered(policy, tags)
    if not values:
        return None
    if policy.semver is not None:
        spec = parse_range(policy.semver)
        best: tuple[semantic_version.Version, str] | None = None
        for value in values:
            version = parse_version(value)
            if version is None or version not in spec:
                continue
            if best is None or version > best[0] or (version == best[0] and value > best[1]):
                best = (version, value)
        return values[best[1]] if best else None
    if policy.numerical is not None:
        numbers: list[tuple[float, str]] = []
        for value in values:
            try:
                number = float(value.replace("_", "x"))  # Go's ParseFloat takes no '_' here
            except ValueError:
                raise PolicyError(f"tag value {value[:64]!r} is not a number (numerical policy)") from None
            if math.isnan(number):
                raise PolicyError(f"tag value {value[:64]!r} is not a number (numerical policy)")
            numbers.append((number, value))
        pick = max(numbers) if policy.numerical == "asc" else min(numbers)
        return values[pick[1]]
    order = policy.alphabetical or "asc"
    ordered = sorted(values)
    return values[ordered[-1] if order == "asc" else ordered[0]]


def same_registry(a: str, b: str) -> bool:
    """True if registry addresses ``a`` and ``b`` (``host[:port]``) name the same registry: equal ignoring case,
    or both loopback (``127.0.0.1``, ``localhost``, ``[::1]``) on the same port. No names are resolved."""
    if a.lower() == b.lower():
        return True

    def split(address: str) -> tuple[str, str]:
        if address.startswith("["):
            host, _, rest = address[1:].partition("]")
            return host, rest.lstrip(":")
        host, _, port = address.partition(":")
        return host, port

    (ha, pa), (hb, pb) = split(a), split(b)
    return pa == pb and hosts.is_loopback(ha) and hosts.is_loopback(hb)


def tracks(*, repository: str, tag: str | None, has_policy: bool, pushed: reference.Reference) -> bool:
    """True if a push of ``pushed`` can change what an Image resolves to: the Image's ``repository``
    (``spec.repository``) is the pushed one (:func:`same_registry`), and the pushed tag is the one it follows
    (``spec.tag``, default ``latest``), or any tag when it has a policy. A repository that does not parse
    tracks nothing."""
    try:
        mine = reference.parse(repository)
    except reference.InvalidReference:
        return False
    if mine.repository != pushed.repository or not same_registry(mine.registry, pushed.registry):
        return False
    return has_policy or (tag or reference.DEFAULT_TAG) == (pushed.tag or reference.DEFAULT_TAG)
