"""Git refs, commits and repository URIs a build may name. Pure functions, no I/O.

A value from a BuildConfig, a BuildRequest or a webhook payload ends up on a
``git`` command line in the node agent. Whatever the agent does to keep it
from being read as an option (``--``, ``--end-of-options``), these checks
refuse it first, at admission:

- refs follow ``git check-ref-format --allow-onelevel`` (git-check-ref-format(1),
  "rules") and may not start with ``-``; a hex commit id (4 to 64 hex digits,
  SHA-1 or SHA-256, possibly abbreviated) passes the same rules;
- URIs are ``https``, ``http``, ``ssh``, ``git`` or ``file`` URLs, scp-like
  ``[user@]host:path`` or local paths (git-clone(1), "GIT URLS"); the
  ``<transport>::<address>`` remote-helper form (``ext::``, ``fd::``), other
  URL schemes (each of which runs a ``git-remote-<scheme>`` helper), a
  leading ``-``, a host or user starting with ``-`` and control characters
  are refused.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

HEX_COMMIT = re.compile(r"^[0-9a-fA-F]{4,64}$")
"""A full or abbreviated SHA-1 / SHA-256 object name (git's minimum abbreviation is 4)."""

URI_SCHEMES = frozenset({"https", "http", "ssh", "git", "file"})
"""URL schemes a git source may use; every other scheme runs a remote helper."""

GIT_ALLOW_PROTOCOL = "file:git:http:https:ssh"
"""The same list as git's ``GIT_ALLOW_PROTOCOL`` (git(1), "ENVIRONMENT VARIABLES"), for the agent."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_HELPER = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*::")
_SCP_LIKE = re.compile(r"^(?:([^@/]*)@)?([^:/]+):")


def ref_problem(ref: str) -> str | None:
    """Why ``ref`` is not an acceptable branch, tag or ref name, or ``None`` if it is.

    The rules of git-check-ref-format(1) with ``--allow-onelevel`` (so ``main``
    passes), plus git's own rule for branch names that it may not begin with
    ``-`` (so it can never be read as an option).
    """
    if not ref:
        return "must not be empty"
    if ref.startswith("-"):
        return "must not start with '-'"
    if bad := _REF_FORBIDDEN.search(ref):
        char = bad.group()
        shown = repr(char) if char.isprintable() and char != " " else f"\\x{ord(char):02x}"
        return f"must not contain {shown} (git refname rules: no control characters, space, ~ ^ : ? * [ or \\)"
    if ".." in ref:
        return "must not contain '..'"
    if "@{" in ref:
        return "must not contain '@{'"
    if ref == "@":
        return "must not be '@'"
    if ref.startswith("/") or ref.endswith("/") or "//" in ref:
        return "must not start or end with '/' or contain '//'"
    if ref.endswith("."):
        return "must not end with '.'"
    for component in ref.split("/"):
        if component.startswith("."):
            return "no '/'-separated component may start with '.'"
        if component.endswith(".lock"):
            return "no '/'-separated component may end with '.lock'"
    return None


def check_ref(ref: str) -> str:
    """``ref`` unchanged if it is a valid branch, tag, ref name or hex commit id.

    Raises:
        ValueError: naming the broken rule (see :func:`ref_problem`).
    """
    problem = ref_problem(ref)
    if problem is not None:
        raise ValueError(f"{ref!r} is not a git ref or commit: {problem}")
    return ref


def is_commit(value: str) -> bool:
    """Whether ``value`` is a hex object name of 4 to 64 digits (an abbreviated or full commit id)."""
    return bool(HEX_COMMIT.match(value))


def is_local_path(uri: str) -> bool:
    """Whether git reads ``uri`` as a local path (git-clone(1), "GIT URLS": no ``scheme://``, and not the
    scp-like ``[user@]host:path``, which needs a ``:`` before any ``/``). git copies such a repository
    directly and ignores ``--depth`` for it; a ``file://`` URL goes through the pack protocol."""
    if _SCHEME.match(uri):
        return False
    return uri.startswith(("/", "./", "../")) or not _SCP_LIKE.match(uri)


def branch_or_tag_name(ref: str | None) -> bool:
    """Whether ``git clone --branch=REF`` may find ``ref``: ``None`` (the remote's ``HEAD``) or a valid ref
    name (:func:`ref_problem`) that is not a possible commit id and not a full ``refs/...`` name (``--branch``
    takes only a branch or tag name of the remote; git-clone(1))."""
    if ref is None:
        return True
    return ref_problem(ref) is None and not is_commit(ref) and not ref.startswith("refs/") and ref != "HEAD"


def uri_problem(uri: str) -> str | None:
    """Why ``uri`` is not an acceptable repository location, or ``None`` if it is.

    See the module docstring for the accepted forms.
    """
    if not uri:
        return "must not be empty"
    if _CONTROL.search(uri):
        return "must not contain control characters"
    if uri.startswith("-"):
        return "must not start with '-'"
    if _HELPER.match(uri):
        return "the <transport>::<address> form (ext::, fd::, remote helpers) is not allowed"
    scheme = _SCHEME.match(uri)
    if scheme:
        if scheme.group(1).lower() not in URI_SCHEMES:
            return f"scheme {scheme.group(1)!r} is not allowed (use {', '.join(sorted(URI_SCHEMES))})"
        try:
            parts = urlsplit(uri)
        except ValueError as err:
            return f"is not a valid URL: {err}"
        if (parts.hostname or "").startswith("-") or (parts.username or "").startswith("-"):
            return "the host and user must not start with '-'"
        return None
    scp = _SCP_LIKE.match(uri)
    if scp and not uri.startswith(("/", "./", "../")):
        user, host = scp.group(1) or "", scp.group(2)
        if host.startswith("-") or user.startswith("-"):
            return "the host and user must not start with '-'"
    return None


def check_uri(uri: str) -> str:
    """``uri`` unchanged if git may clone it: an allowed URL, scp-like address or local path.

    Raises:
        ValueError: naming the broken rule (see :func:`uri_problem`).
    """
    problem = uri_problem(uri)
    if problem is not None:
        raise ValueError(f"{uri!r} is not an allowed git repository URI: {problem}")
    return uri
