"""Checks of an uploaded build context archive, while it streams in and before anything is built.

A binary build input (``instantiatebinary``) must be a tar archive, plain or
compressed with gzip, bzip2 or xz (what ``docker build`` accepts as a
context), whose members all stay inside the context: no absolute paths, no
``..`` components, no symbolic or hard links pointing outside, no device
files. The same rules as tarfile's ``data`` extraction filter (PEP 706),
applied up front so a bad archive is refused with the member's name and
nothing is built.

Links are resolved through each other, as the kernel resolves them when the
archive is extracted (:class:`Links`): a link's target, a member written
through a link, a file written over a link and a hard link's source must stay
inside once every link on the way is followed, not only when read as text
(``l -> m/..`` leaves once ``m -> .``). Text checks alone, and tarfile's
``data`` filter before Python 3.11.13 / 3.12.11, are bypassed by chains of
links through long directory names (CVE-2025-4517, CVE-2025-4138).

The check is a single forward pass over the bytes as they arrive
(:func:`scan`): the archive is decompressed incrementally, at most one
member header is held in memory, member data is counted and discarded, and
the limits (:class:`Limits`: uncompressed bytes, member count) are enforced
as the bytes flow, so a decompression bomb is refused after the first
header that exceeds them rather than after expanding it. No I/O here: the
caller supplies the function that reads the compressed bytes.
"""

from __future__ import annotations

import bz2
import io
import lzma
import posixpath
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

DEFAULT_MAX_BYTES = 2 * 1024**3
"""Largest uncompressed build context in bytes (2 GiB); ``dockyard up --max-context-bytes``."""

DEFAULT_MAX_MEMBERS = 100_000
"""Most members (files, directories, links) in a build context; ``dockyard up --max-context-members``."""

MAX_HEADER_BYTES = 1024 * 1024
"""Largest metadata of one member in bytes (its tar header plus any pax / GNU long-name and
sparse-map blocks, all of which tarfile holds in memory): 1 MiB, far above ``PATH_MAX``."""

_CHUNK = 64 * 1024


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Bounds of one build context.

    Attributes:
        max_bytes: uncompressed bytes of the tar stream (headers and data), and the
            sum of the members' sizes (what extraction writes).
        max_members: number of members.
    """

    max_bytes: int = DEFAULT_MAX_BYTES
    max_members: int = DEFAULT_MAX_MEMBERS


@dataclass(frozen=True, kw_only=True)
class Summary:
    """What :func:`scan` saw: ``members`` (count) and ``uncompressed_bytes`` (of the tar stream)."""

    members: int
    uncompressed_bytes: int


class BadArchive(ValueError):
    """The archive is refused; the message names the member and the rule (422)."""


class TooLarge(BadArchive):
    """The archive exceeds a :class:`Limits` bound; the message names the limit (413)."""


def too_many_bytes(limit: int) -> TooLarge:
    """The refusal of a context over ``limit`` uncompressed (or uploaded) bytes."""
    return TooLarge(f"build context exceeds {limit} uncompressed bytes (--max-context-bytes)")


def _too_many_members(limit: int) -> TooLarge:
    return TooLarge(f"build context has more than {limit} members (--max-context-members)")


def _inside(path: str) -> bool:
    norm = posixpath.normpath(path)
    return not (norm.startswith("/") or norm == ".." or norm.startswith("../"))


def check_member(member: tarfile.TarInfo) -> None:
    """Apply the member rules above to one tar header.

    Raises:
        BadArchive: naming the member and the rule it breaks.
    """
    name = member.name
    if name.startswith("/") or not _inside(name):
        raise BadArchive(f"{name!r}: absolute paths and '..' components are not allowed")
    if ".." in name.split("/"):
        raise BadArchive(f"{name!r}: '..' components are not allowed")
    if member.issym():
        target = member.linkname
        resolved = target if target.startswith("/") else posixpath.join(posixpath.dirname(name), target)
        if target.startswith("/") or not _inside(resolved):
            raise BadArchive(f"{name!r}: symbolic link to {target!r} points outside the context")
    elif member.islnk():
        if member.linkname.startswith("/") or not _inside(member.linkname):
            raise BadArchive(f"{name!r}: hard link to {member.linkname!r} points outside the context")
    elif not (member.isfile() or member.isdir()):
        raise BadArchive(f"{name!r}: device files, FIFOs and other special files are not allowed")


MAX_LINK_DEPTH = 40
"""Links followed in one resolution before it is refused as a loop (Linux's ``MAXSYMLINKS``)."""

MAX_LINK_BYTES = 16 * 1024 * 1024
"""Bytes of link names and targets kept to resolve links through each other (16 MiB: about 100,000 links of
80-character paths); an archive with more is refused."""


class Links:
    """The symbolic links of an archive so far, to resolve paths through them as extraction will.

    Paths are the archive's relative member names; a component that is not a known link is taken for a
    directory (a file or a missing entry fails at extraction, never outside the context).
    """

    def __init__(self, max_bytes: int = MAX_LINK_BYTES) -> None:
        self._targets: dict[str, str] = {}
        self._bytes = 0
        self._max_bytes = max_bytes

    def add(self, name: str, target: str) -> None:
        """Record the link ``name -> target`` (replacing one of the same name), where it lands: its parent
        directory resolved through the links so far (a name written through a link is a link there).

        Raises:
            TooLarge: past :data:`MAX_LINK_BYTES` of names and targets.
            BadArchive: its parent leaves the context.
        """
        parts = _parts(name)
        parent = self.resolve("/".join(parts[:-1]), follow_last=True) if parts else []
        if parent is None:
            raise BadArchive(f"{name!r}: written through symbolic links that lead outside the context")
        key = "/".join(parent + parts[-1:])
        self._bytes += len(key) + len(target)
        if self._bytes > self._max_bytes:
            raise TooLarge(f"build context has more than {self._max_bytes} bytes of symbolic links")
        self._targets[key] = target

    def names(self) -> list[str]:
        """Every link recorded, in archive order."""
        return list(self._targets)

    def resolve(self, path: str, *, follow_last: bool) -> list[str] | None:
        """``path``'s components once every link on the way is followed (the last one only with
        ``follow_last``), or ``None`` if it leaves the context or loops (more than :data:`MAX_LINK_DEPTH`
        links)."""
        budget = [MAX_LINK_DEPTH]
        return self._walk([], _parts(path), follow_last, budget)

    def _walk(self, base: list[str], parts: list[str], follow_last: bool, budget: list[int]) -> list[str] | None:
        out = list(base)
        for i, part in enumerate(parts):
            if part == "..":
                if not out:
                    return None  # above the context's root
                out.pop()
                continue
            out.append(part)
            target = self._targets.get("/".join(out))
            if target is None or (i == len(parts) - 1 and not follow_last):
                continue
            budget[0] -= 1
            if budget[0] < 0 or target.startswith("/"):
                return None
            resolved = self._walk(out[:-1], _parts(target), True, budget)
            if resolved is None:
                return None
            out = resolved
        return out


def _parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


def check_links(member: tarfile.TarInfo, links: Links) -> None:
    """The rules on links resolved through each other (see the module docstring) for one member, in
    archive order: what it writes (a file or directory: its whole path, a link followed; a link: its
    parent) and, for a hard link, its source stay inside. Records a symbolic link in ``links``.

    Raises:
        BadArchive: naming the member.
        TooLarge: past :data:`MAX_LINK_BYTES`.
    """
    name = member.name
    if links.resolve(name, follow_last=not (member.issym() or member.islnk())) is None:
        raise BadArchive(f"{name!r}: written through symbolic links that lead outside the context")
    if member.islnk() and links.resolve(member.linkname, follow_last=True) is None:
        raise BadArchive(f"{name!r}: hard link to {member.linkname!r} leads outside the context through symbolic links")
    if member.issym():
        links.add(name, member.linkname)
        if links.resolve(name, follow_last=True) is None:
            raise BadArchive(
                f"{name!r}: symbolic link to {member.linkname!r} leads outside the context through symbolic links"
            )


def check_all_links(links: Links) -> None:
    """Every link of a whole archive, resolved through the links that come after it too.

    Raises:
        BadArchive: naming the first link that leaves the context or loops.
    """
    for name in links.names():
        if links.resolve(name, follow_last=True) is None:
            raise BadArchive(f"{name!r}: symbolic link leads outside the context through later symbolic links")


def _decompressor(magic: bytes) -> Any:
    """A fresh decompressor for the stream starting with ``magic``, or None for a plain tar."""
    if magic.startswith(b"\x1f\x8b"):
        return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip (RFC 1952)
    if magic.startswith(b"BZh"):
        return bz2.BZ2Decompressor()
    if magic.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
    return None


class _Uncompressed:
    """A forward-only, read/seek/tell file over the uncompressed bytes of a context.

    ``read_compressed(n)`` gives the next compressed bytes (any length, ``b""`` at
    the end). Output is produced on demand and never more than asked for, so
    memory stays at one compressed chunk plus the largest single ``read``.
    Concatenated gzip / bzip2 / xz streams are read as one (as gzip(1) does).
    """

    def __init__(self, read_compressed: Callable[[int], bytes], limits: Limits) -> None:
        self._src = read_compressed
        self._limits = limits
        self._pos = 0
        self._header_left = MAX_HEADER_BYTES
        self._in = b""
        while len(self._in) < 6:
            more = self._src(_CHUNK)
            if not more:
                break
            self._in += more
        self._magic = self._in[:6]
        self._dec = _decompressor(self._magic)
        self._done = False  # the current compressed member has ended

    def new_member(self) -> None:
        """Start the metadata budget (:data:`MAX_HEADER_BYTES`) of the next tar member."""
        self._header_left = MAX_HEADER_BYTES

    def tell(self) -> int:
        return self._pos

    def _pull(self) -> bytes:
        if not self._in:
            self._in = self._src(_CHUNK)
        return self._in

    def _produce(self, n: int) -> bytes:
        """Up to ``n`` (> 0) uncompressed bytes; ``b""`` at the end of the stream."""
        while True:
            dec = self._dec
            if dec is None:
                data = self._pull()
                out, self._in = data[:n], data[n:]
                return out
            if self._done:
                rest = self._pull()
                if not rest or _decompressor(rest) is None or type(_decompressor(rest)) is not type(dec):
                    return b""  # trailing bytes after the last compressed member are not part of the tar
                self._dec, self._done = _decompressor(rest), False
                continue
            try:
                if hasattr(dec, "unconsumed_tail"):  # zlib
                    out = dec.decompress(self._in, n)
                    self._in = dec.unconsumed_tail
                    if dec.eof:
                        self._in = dec.unused_data
                    hungry = not out and not self._in and not dec.eof
                else:  # bz2 / lzma: they keep their own input buffer
                    feed = self._in if dec.needs_input else b""
                    if feed:
                        self._in = b""
                    out = dec.decompress(feed, n)
                    if dec.eof:
                        self._in = dec.unused_data + self._in
                    hungry = not out and dec.needs_input and not dec.eof
            except (zlib.error, lzma.LZMAError, OSError, EOFError) as err:
                raise BadArchive(f"the compressed stream is damaged: {err}") from err
            if dec.eof:
                self._done = True
            if out:
                return bytes(out)
            if hungry:
                more = self._src(_CHUNK)
                if not more:
                    raise BadArchive("the compressed stream ends before its end marker (truncated upload?)")
                self._in += more

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            raise io.UnsupportedOperation("read() needs a size")
        self._header_left -= n
        if self._header_left < 0:
            raise TooLarge(f"a member's tar headers exceed {MAX_HEADER_BYTES} bytes")
        parts, want = [], min(n, self._limits.max_bytes - self._pos + 1)
        while want > 0:
            out = self._produce(want)
            if not out:
                break
            parts.append(out)
            want -= len(out)
            self._advance(len(out))
        return b"".join(parts)

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            pos += self._pos
        elif whence != io.SEEK_SET or pos < self._pos:
            raise io.UnsupportedOperation("the context is read forward only")
        if pos > self._limits.max_bytes:
            raise too_many_bytes(self._limits.max_bytes)
        while self._pos < pos:
            out = self._produce(min(_CHUNK, pos - self._pos))
            if not out:
                break  # tarfile reports the truncation
            self._advance(len(out))
        return self._pos

    def _advance(self, count: int) -> None:
        self._pos += count
        if self._pos > self._limits.max_bytes:
            raise too_many_bytes(self._limits.max_bytes)


def scan(read_compressed: Callable[[int], bytes], limits: Limits = Limits()) -> Summary:
    """Check a context archive in one forward pass over its bytes.

    Args:
        read_compressed: ``read(n)`` of the archive as uploaded (plain tar, gzip,
            bzip2 or xz); any chunk length, ``b""`` at the end. Called from this
            thread only; the pass stops at the tar end-of-archive marker.
        limits: the bounds to enforce while reading.
    Returns:
        The member count and the uncompressed bytes read.
    Raises:
        TooLarge: past ``limits.max_bytes`` uncompressed bytes, ``limits.max_members``
            members, or :data:`MAX_HEADER_BYTES` of one member's headers; raised as
            soon as the limit is crossed (a member header announcing more data than
            the limit is refused before its data is read).
        BadArchive: not a tar archive, damaged, or a member breaks a rule
            (:func:`check_member`, :func:`check_links`, :func:`check_all_links`).
    """
    stream = _Uncompressed(read_compressed, limits)
    try:
        tar = tarfile.TarFile(fileobj=stream, mode="r")  # type: ignore[arg-type]  # read-only stream
    except tarfile.TarError as err:
        raise BadArchive(f"not a tar archive (plain, gzip, bzip2 or xz): {err}") from err
    count = 0
    expanded = 0
    links = Links()
    with tar:
        try:
            while True:
                member = tar.next()
                if member is None:
                    break
                tar.members.clear()  # type: ignore[attr-defined]  # keep no header but the current one
                count += 1
                if count > limits.max_members:
                    raise _too_many_members(limits.max_members)
                check_member(member)
                check_links(member, links)
                if member.isfile():
                    expanded += member.size  # sparse files expand beyond their stored data
                    if expanded > limits.max_bytes:
                        raise too_many_bytes(limits.max_bytes)
                stream.new_member()
        except tarfile.TarError as err:
            raise BadArchive(f"the archive is damaged: {err}") from err
    check_all_links(links)
    return Summary(members=count, uncompressed_bytes=stream.tell())


def check(data: bytes, *, limits: Limits = Limits()) -> int:
    """:func:`scan` of an archive held in memory; returns its number of members.

    Raises:
        TooLarge, BadArchive: as :func:`scan`.
    """
    return scan(io.BytesIO(data).read, limits).members
