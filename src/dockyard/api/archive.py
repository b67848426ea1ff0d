"""Checks of an uploaded build context archive, before anything is stored or built.

A binary build input (``instantiatebinary``) must be a tar archive (plain or
gzip) whose members all stay inside the context: no absolute paths, no
``..`` components, no symbolic or hard links pointing outside, no device
files. The same rules as tarfile's ``data`` extraction filter (PEP 706),
applied up front so a bad archive is refused with the member's name and
nothing is built. Works on bytes in memory; no I/O.
"""

from __future__ import annotations

import io
import posixpath
import tarfile


class BadArchive(ValueError):
    """The archive is refused; the message names the member and the rule."""


def _inside(path: str) -> bool:
    norm = posixpath.normpath(path)
    return not (norm.startswith("/") or norm == ".." or norm.startswith("../"))


def check(data: bytes, *, max_members: int = 100_000) -> int:
    """Validate a context archive; return its number of members.

    Raises:
        BadArchive: not a tar/tar.gz archive, or a member breaks a rule above.
    """
    try:
        tar = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")
    except tarfile.TarError as err:
        raise BadArchive(f"not a tar or tar.gz archive: {err}") from err
    count = 0
    with tar:
        try:
            for member in tar:
                count += 1
                if count > max_members:
                    raise BadArchive(f"more than {max_members} entries")
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
        except tarfile.TarError as err:
            raise BadArchive(f"the archive is damaged: {err}") from err
    return count
