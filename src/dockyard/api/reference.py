"""Image references: parse and print ``[registry/]repository[:tag][@digest]``.

Pure (no I/O). Follows the grammar of the distribution ``reference`` package
(github.com/distribution/reference, ``reference.go`` / ``regexp.go``) and its
Docker normalization (``normalize.go``: ``ParseNormalizedNamed``)::

    reference       := name [ ":" tag ] [ "@" digest ]
    name            := [domain '/'] path-component ['/' path-component]*
    domain          := host [':' port-number]
    host            := domain-name | '[' IPv6address ']'
    path-component  := alpha-numeric [separator alpha-numeric]*
    alpha-numeric   := /[a-z0-9]+/
    separator       := /[_.]|__|[-]+/
    tag             := /[\\w][\\w.-]{0,127}/
    digest          := algorithm ":" hex        (hex: 32+ chars; sha256: 64 lowercase)

Normalization: the first component is a registry only if it contains ``.`` or
``:``, is ``localhost``, or has upper-case letters; otherwise the registry is
``docker.io``. ``index.docker.io`` becomes ``docker.io``; a single-component
name on ``docker.io`` gets ``library/``; a reference with neither tag nor
digest gets tag ``latest``.

The one parser of image references: the API's validation, the node agent (pull policy, push tags) and the
registry client (through :mod:`dockyard.registry.reference`, which raises the registry's error type) all
use it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "DEFAULT_REGISTRY",
    "DEFAULT_TAG",
    "InvalidReference",
    "Reference",
    "is_digest",
    "is_repository_path",
    "is_tag",
    "parse",
    "split_tag",
]


class InvalidReference(ValueError):
    """An image reference does not follow the distribution reference grammar."""


DEFAULT_REGISTRY = "docker.io"
LEGACY_DEFAULT_REGISTRY = "index.docker.io"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

_ALPHA_NUMERIC = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALPHA_NUMERIC}(?:{_SEPARATOR}{_ALPHA_NUMERIC})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"

_DOMAIN_RE = re.compile(rf"^{_DOMAIN}$")
_PATH_RE = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$", re.ASCII)
_DIGEST_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$")
_SHA256_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_HEX64_RE = re.compile(r"^[a-f0-9]{64}$")


@dataclass(frozen=True)
class Reference:
    """A normalized image reference.

    Attributes:
        registry: ``host[:port]``, e.g. ``docker.io``, ``127.0.0.1:5000``.
        repository: path inside the registry, e.g. ``library/busybox``.
        tag: tag, or ``None`` when only a digest was given.
        digest: ``algorithm:hex``, or ``None``.
    """

    registry: str
    repository: str
    tag: str | None = DEFAULT_TAG
    digest: str | None = None

    def __str__(self) -> str:
        text = self.repository_url
        if self.tag:
            text += ":" + self.tag
        if self.digest:
            text += "@" + self.digest
        return text

    @property
    def repository_url(self) -> str:
        """``registry/repository``, e.g. ``127.0.0.1:5000/team/app``."""
        return f"{self.registry}/{self.repository}"

    @property
    def manifest_reference(self) -> str:
        """What goes after ``/manifests/``: the digest if set, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def with_digest(self, digest: str) -> Reference:
        """The same repository pinned to ``digest`` (tag dropped): ``registry/repository@digest``.

        Raises:
            InvalidReference: ``digest`` is not ``algorithm:hex``.
        """
        _check_digest(digest)
        return Reference(self.registry, self.repository, None, digest)

    def with_tag(self, tag: str) -> Reference:
        """The same repository at ``tag`` (digest dropped).

        Raises:
            InvalidReference: ``tag`` is not a valid tag.
        """
        if not _TAG_RE.match(tag):
            raise InvalidReference(f"invalid tag {tag!r}")
        return Reference(self.registry, self.repository, tag, None)

    def familiar(self) -> str:
        """The short form people type: ``busybox:latest`` for ``docker.io/library/busybox:latest``."""
        text = str(self)
        if self.registry == DEFAULT_REGISTRY:
            text = text[len(DEFAULT_REGISTRY) + 1 :]
            if text.startswith("library/") and "/" not in self.repository[len("library/") :]:
                text = text[len("library/") :]
        return text


def parse(ref: str) -> Reference:
    """Parse and normalize an image reference.

    Args:
        ref: e.g. ``busybox``, ``127.0.0.1:5000/team/app:v1``,
            ``quay.io/x/y@sha256:…``, ``localhost/app:dev``.

    Returns:
        The normalized :class:`Reference`.

    Raises:
        InvalidReference: the text does not follow the grammar (the message
            says which part is wrong).
    """
    if not isinstance(ref, str) or not ref:
        raise InvalidReference("empty image reference")
    if ref != ref.strip():
        raise InvalidReference(f"invalid reference {ref!r}: surrounding whitespace")
    if _HEX64_RE.match(ref):
        raise InvalidReference(f"invalid reference {ref!r}: cannot be a 64-character hex string (an image ID)")

    name, tag, digest = _split(ref)
    if digest is not None:
        _check_digest(digest, ref=ref)
    if tag is not None and not _TAG_RE.match(tag):
        raise InvalidReference(f"invalid reference {ref!r}: bad tag {tag!r}")

    first, sep, rest = name.partition("/")
    if sep and (any(c in first for c in ".:") or first == "localhost" or first.lower() != first):
        registry, path = first, rest
        if not _DOMAIN_RE.match(registry):
            raise InvalidReference(f"invalid reference {ref!r}: bad registry {registry!r}")
    else:
        registry, path = DEFAULT_REGISTRY, name
    if registry == LEGACY_DEFAULT_REGISTRY:
        registry = DEFAULT_REGISTRY
    if not path:
        raise InvalidReference(f"invalid reference {ref!r}: missing repository name")
    if path.lower() != path:
        raise InvalidReference(f"invalid reference {ref!r}: repository name must be lowercase")
    if not _PATH_RE.match(path):
        raise InvalidReference(f"invalid reference {ref!r}: bad repository name {path!r}")
    if registry == DEFAULT_REGISTRY and "/" not in path:
        path = "library/" + path
    if len(registry) + 1 + len(path) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReference(f"invalid reference {ref!r}: name longer than {NAME_TOTAL_LENGTH_MAX} characters")

    return Reference(
        registry=registry,
        repository=path,
        tag=tag or (None if digest else DEFAULT_TAG),
        digest=digest or None,
    )


def _split(ref: str) -> tuple[str, str | None, str | None]:
    """``name [":" tag] ["@" digest]`` → ``(name, tag, digest)`` (None when absent), unchecked.

    A ``:`` before the last ``/`` of the name belongs to the registry's port, not a tag.
    """
    name, at, digest = ref.partition("@")
    colon, slash = name.rfind(":"), name.rfind("/")
    if colon > slash:
        return name[:colon], name[colon + 1 :], digest if at else None
    return name, None, digest if at else None


def split_tag(ref: str) -> tuple[str, str]:
    """``host:5000/a/b:v1`` → ``("host:5000/a/b", "v1")``; no tag → :data:`DEFAULT_TAG`. Unnormalized (the name
    as written) and unchecked: the engine's ``push``/``tag`` take the repository and the tag apart.
    """
    name, tag, _ = _split(ref)
    return name, tag or DEFAULT_TAG


def _check_digest(digest: str, *, ref: str | None = None) -> None:
    where = f"invalid reference {ref!r}: " if ref else ""
    if not _DIGEST_RE.match(digest):
        raise InvalidReference(f"{where}bad digest {digest!r} (want algorithm:hex, e.g. sha256:<64 hex>)")
    if digest.startswith("sha256:") and not _SHA256_RE.match(digest):
        raise InvalidReference(f"{where}bad sha256 digest {digest!r} (want 64 lowercase hex characters)")


def is_repository_path(path: str) -> bool:
    """True if ``path`` is a repository path without registry (``team/app``; the grammar's ``path-component``\\ s)."""
    return bool(_PATH_RE.match(path))


def is_tag(tag: str) -> bool:
    """True if ``tag`` follows the grammar's ``tag`` (``[\\w][\\w.-]{0,127}``)."""
    return bool(_TAG_RE.match(tag))


def is_digest(digest: str) -> bool:
    """True if ``digest`` follows the grammar's ``digest`` (``algorithm:hex``, sha256 as 64 lower-case hex)."""
    try:
        _check_digest(digest)
    except InvalidReference:
        return False
    return True
