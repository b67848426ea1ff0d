"""Provenance of built images: what the OCI ``org.opencontainers.image.*`` keys say. No I/O.

The keys (``dockyard.api.labels`` ``OCI_*``) come from the OCI image-spec ``annotations.md``,
"Pre-Defined Annotation Keys": ``source`` (URL to the source code), ``revision`` (source control
revision), ``created`` (RFC 3339 date-time), ``base.name`` (reference of the base image),
``base.digest`` (its manifest digest).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

__all__ = ["final_base_image", "public_source_uri"]

_INSTRUCTION = re.compile(r"^\s*(FROM|ARG)\s+(.*?)\s*$", re.IGNORECASE)
_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")
SCRATCH = "scratch"


def public_source_uri(uri: str) -> str:
    """A git URI without credentials: the userinfo (``user:token@``) of a URL is removed.

    ``https://bob:s3cret@git.example/app.git`` → ``https://git.example/app.git``. scp-like
    ``git@host:path`` and local paths have no credentials and are returned unchanged.
    """
    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri
    if not parts.scheme or not parts.netloc or "@" not in parts.netloc:
        return uri
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def _substitute(text: str, values: Mapping[str, str]) -> str:
    """Dockerfile variable substitution of ``$X``, ``${X}``, ``${X:-default}`` (unset → default or empty)."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        if name in values and values[name] != "":
            return values[name]
        return match.group(2) or ""

    return _VAR.sub(one, text)


def final_base_image(dockerfile: str, build_args: Mapping[str, str]) -> str | None:
    """The image the final stage of ``dockerfile`` starts ``FROM``, or None for ``scratch`` or no ``FROM``.

    Follows the Dockerfile reference: an ``ARG`` before the first ``FROM`` is in scope of ``FROM`` lines
    (its default, overridden by ``build_args``); ``FROM --platform=… IMAGE [AS name]``; a ``FROM`` naming an
    earlier stage (``AS name``, case-insensitive) resolves to that stage's base.
    """
    global_args: dict[str, str] = {}
    stages: dict[str, str] = {}
    last: str | None = None
    seen_from = False
    for line in dockerfile.splitlines():
        match = _INSTRUCTION.match(line)
        if not match:
            continue
        keyword, rest = match.group(1).upper(), match.group(2)
        if keyword == "ARG":
            if seen_from:
                continue
            name, _, default = rest.partition("=")
            name = name.strip()
            global_args[name] = build_args.get(name, default.strip().strip('"'))
            continue
        seen_from = True
        words = [w for w in rest.split() if not w.startswith("--")]
        if not words:
            continue
        image = _substitute(words[0], {**global_args, **{k: v for k, v in build_args.items() if k in global_args}})
        image = stages.get(image.lower(), image)
        if len(words) >= 3 and words[1].lower() == "as":
            stages[words[2].lower()] = image
        last = image
    if last is None or last.lower() == SCRATCH:
        return None
    return last
