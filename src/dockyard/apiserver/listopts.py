"""``ListOptions``: the query parameters of list and watch requests, parsed and checked. Pure.

Semantics from the Kubernetes API concepts ("Resource versions",
"Retrieving large results sets in chunks", "Efficient detection of changes",
"Streaming lists") and ``ValidateListOptions``:

- ``resourceVersion`` unset: the most recent state; ``"0"``: any state (the
  most recent here); ``N`` with ``resourceVersionMatch`` unset or
  ``NotOlderThan``: a state at least as new as ``N``; ``Exact``: exactly
  revision ``N`` (this store keeps no old states: only the current revision
  can be served, older ones are 410 ``Expired``).
- ``resourceVersionMatch`` needs ``resourceVersion``, is not allowed with
  ``continue``, and ``Exact`` not with ``"0"`` (422 ``Invalid``, kind
  ``ListOptions``).
- ``limit``/``continue``: pages; the ``continue`` token carries the first
  page's revision, which every page reports as its ``resourceVersion``.
- ``watch=true`` with ``allowWatchBookmarks``, ``timeoutSeconds`` and
  ``sendInitialEvents``: with ``sendInitialEvents=true`` (which needs
  ``resourceVersionMatch=NotOlderThan`` and ``allowWatchBookmarks=true``) the
  stream starts with the current objects as ``ADDED`` and a ``BOOKMARK``
  annotated ``k8s.io/initial-events-end: "true"``; with ``false`` it starts
  after the given (or current) revision without them.
"""

from __future__ import annotations

from dataclasses import dataclass

from dockyard.api import errors

NOT_OLDER_THAN = "NotOlderThan"
EXACT = "Exact"
MAX_LIMIT = 100_000
"""Larger ``limit`` values are clamped to this."""


def _invalid(field: str, message: str, type_: str = "FieldValueForbidden") -> errors.Invalid:
    return errors.Invalid(
        kind="ListOptions", group="meta.k8s.io", name="", causes=[errors.Cause(field, message, type_)]
    )


def _bool(raw: str | None) -> bool | None:
    if raw in (None, ""):
        return None
    value = raw.lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise errors.BadRequest(f"invalid boolean value {raw!r}")


def _int(name: str, raw: str | None) -> int | None:
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError:
        raise errors.BadRequest(f"invalid value for {name}: {raw!r} is not an integer") from None


def parse_revision(raw: str | None) -> int | None:
    """A ``resourceVersion`` as an int; ``None`` for unset or ``"0"``.

    Raises:
        errors.BadRequest: not a decimal integer in ``[0, 2**63)``.
    """
    if raw in (None, "", "0"):
        return None
    try:
        value = int(str(raw))
    except ValueError:
        raise errors.BadRequest(f"invalid resource version: {raw!r}") from None
    if value < 0 or value >= 2**63:
        raise errors.BadRequest(f"invalid resource version: {raw!r}")
    return value


@dataclass(frozen=True)
class ListOptions:
    """Parsed list/watch options.

    Attributes:
        revision: ``resourceVersion`` as an int (``None``: unset or ``"0"``).
        match: ``resourceVersionMatch`` (``None``, ``NotOlderThan``, ``Exact``).
        limit: page size (``None``: everything).
        continue_token: the ``continue`` token.
        watch: ``watch=true``.
        bookmarks: ``allowWatchBookmarks=true``.
        timeout: ``timeoutSeconds`` (``None``: the server's default).
        send_initial_events: ``sendInitialEvents`` (``None``: unset).
    """

    revision: int | None = None
    match: str | None = None
    limit: int | None = None
    continue_token: str | None = None
    watch: bool = False
    bookmarks: bool = False
    timeout: int | None = None
    send_initial_events: bool | None = None

    @property
    def initial_events(self) -> bool:
        """True if a watch starts with the current objects as ``ADDED`` events."""
        if self.send_initial_events is not None:
            return self.send_initial_events
        return self.revision is None


def parse(query: dict[str, str]) -> ListOptions:
    """Parse and check the query parameters of a list or watch.

    Raises:
        errors.BadRequest: a value of the wrong type (400).
        errors.Invalid: a combination Kubernetes forbids (422, kind ``ListOptions``).
    """
    raw_rv = query.get("resourceVersion")
    match = query.get("resourceVersionMatch") or None
    token = query.get("continue") or None
    watch = bool(_bool(query.get("watch")))
    send = _bool(query.get("sendInitialEvents"))
    bookmarks = bool(_bool(query.get("allowWatchBookmarks")))
    limit = _int("limit", query.get("limit"))
    timeout = _int("timeoutSeconds", query.get("timeoutSeconds"))
    revision = parse_revision(raw_rv)
    if match is not None:
        if match not in (NOT_OLDER_THAN, EXACT):
            raise _invalid(
                "resourceVersionMatch",
                f'Unsupported value: "{match}": supported values: "{EXACT}", "{NOT_OLDER_THAN}", ""',
                "FieldValueNotSupported",
            )
        if raw_rv in (None, "") and not (watch and send):
            raise _invalid(
                "resourceVersionMatch", "resourceVersionMatch is forbidden unless resourceVersion is provided"
            )
        if token:
            raise _invalid("resourceVersionMatch", "resourceVersionMatch is forbidden when continue is provided")
        if match == EXACT and raw_rv == "0":
            raise _invalid(
                "resourceVersionMatch", f'resourceVersionMatch "{EXACT}" is forbidden for resourceVersion "0"'
            )
    if send is not None:
        if not watch:
            raise _invalid("sendInitialEvents", "sendInitialEvents is forbidden for list")
        if send and match != NOT_OLDER_THAN:
            raise _invalid(
                "resourceVersionMatch",
                f"sendInitialEvents requires setting resourceVersionMatch to {NOT_OLDER_THAN}",
                "FieldValueRequired",
            )
        if send and not bookmarks:
            raise _invalid(
                "allowWatchBookmarks",
                "allowWatchBookmarks must be set to true when sendInitialEvents is true",
                "FieldValueRequired",
            )
    elif watch and match is not None:
        raise _invalid(
            "resourceVersionMatch", "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"
        )
    if limit is not None and limit <= 0:
        limit = None
    if limit is not None:
        limit = min(limit, MAX_LIMIT)
    return ListOptions(
        revision=revision,
        match=match,
        limit=limit,
        continue_token=token,
        watch=watch,
        bookmarks=bookmarks,
        timeout=timeout,
        send_initial_events=send,
    )
