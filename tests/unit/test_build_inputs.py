"""Pure pieces of the build inputs: archive checks, credentials from Secrets, the FROM override."""

from __future__ import annotations

import base64
import bz2
import gzip
import io
import json
import lzma
import tarfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockyard.agent.builds import StageFailed, extract_archive, replace_last_from
from dockyard.api import archive, credentials


def tar_of(*members: tuple[str, str, str]) -> bytes:
    """(name, type, payload-or-linkname) members → tar bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, kind, value in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(value)
                tar.addfile(info, io.BytesIO(value.encode()))
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, value
                tar.addfile(info)
            elif kind == "hard":
                info.type, info.linkname = tarfile.LNKTYPE, value
                tar.addfile(info)
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
                tar.addfile(info)
    return buf.getvalue()


def test_a_plain_context_passes():
    assert (
        archive.check(
            tar_of(("Dockerfile", "file", "FROM x"), ("app/a.txt", "file", "a"), ("app/link", "sym", "a.txt"))
        )
        == 3
    )


@pytest.mark.parametrize(
    "member",
    [
        ("/etc/passwd", "file", "x"),
        ("../up", "file", "x"),
        ("a/../../up", "file", "x"),
        ("out", "sym", "../../etc/passwd"),
        ("abs", "sym", "/etc/passwd"),
        ("hard", "hard", "../x"),
        ("pipe", "fifo", ""),
    ],
)
def test_escaping_members_are_refused_by_name(member):
    with pytest.raises(archive.BadArchive) as err:
        archive.check(tar_of(("Dockerfile", "file", "FROM x"), member))
    assert repr(member[0]) in str(err.value)


def _cve_2025_4517_chain(target: str) -> list[tuple[str, str, str]]:
    """The public CVE-2025-4517 shape: nested long directories reached through one-letter links, a link that
    climbs as many levels, and a link whose target walks down and climbs out through them. Each link's
    target stays inside when read as text; resolved through the other links, the last one leaves the context
    (and tarfile's ``data`` filter on Python < 3.11.13 / 3.12.11 lets a file be written through it)."""
    comp, steps, path, members = "d" * 247, "abcdefghijklmnop", "", []
    for s in steps:
        members.append((f"{path}{comp}/keep", "file", "x"))
        members.append((f"{path}{s}", "sym", comp))
        path = f"{path}{comp}/"
    link = "/".join(steps) + "/" + "l" * 254
    members.append((link, "sym", "../" * len(steps)))
    members.append(("escape", "sym", link + "/.." * 17 + target))
    members.append(("escape/pwned", "file", "written outside the context"))
    return members


@pytest.mark.parametrize(
    "members, refused",
    [
        # a link climbing through another link: "up/.." is ".." of up's target, not ".."
        ([("d/keep", "file", "x"), ("up", "sym", "d/.."), ("x", "sym", "up/..")], "x"),
        ([("in", "sym", "."), ("x", "sym", "in/../..")], "x"),
        ([("a/b/keep", "file", "x"), ("l", "sym", "a/b"), ("m", "sym", "l/../../..")], "m"),
        # a link made to leave by a later one ("m/.." is ".." once m is ".")
        ([("l", "sym", "m/.."), ("m", "sym", ".")], "l"),
        # writing through such a link: into what it names, wherever that is
        ([("l", "sym", "m/.."), ("m", "sym", "."), ("l/f", "file", "x")], "l/f"),
        # a file over such a link: the write follows it
        ([("l", "sym", "m/.."), ("m", "sym", "."), ("l", "file", "y")], "l"),
        # a hard link whose source is reached through such a link
        ([("l", "sym", "m/.."), ("m", "sym", "."), ("h", "hard", "l/etc/passwd")], "h"),
        # a link through a link that leaves
        ([("up", "sym", "d/../.."), ("h", "hard", "up/etc/passwd")], "up"),
        # links that refer to each other without end
        ([("a", "sym", "b/x"), ("b", "sym", "a/y")], "b"),
        (_cve_2025_4517_chain("/tmp/outside"), "escape"),
    ],
)
def test_links_resolved_through_other_links_must_stay_inside(members, refused):
    with pytest.raises(archive.BadArchive) as err:
        archive.check(tar_of(("Dockerfile", "file", "FROM x"), *members))
    assert repr(refused) in str(err.value)


def test_links_through_links_that_stay_inside_pass():
    """pnpm's layout: node_modules/.bin/x -> ../pkg/bin/x where node_modules/pkg is itself a link."""
    members = [
        ("Dockerfile", "file", "FROM x"),
        ("node_modules/.pnpm/pkg@1/node_modules/pkg/bin/x", "file", "#!/bin/sh"),
        ("node_modules/pkg", "sym", ".pnpm/pkg@1/node_modules/pkg"),
        ("node_modules/.bin/x", "sym", "../pkg/bin/x"),
        ("node_modules/.pnpm/pkg@1/node_modules/dep", "sym", "../../dep@2/node_modules/dep"),
        ("node_modules/.pnpm/dep@2/node_modules/dep/index.js", "file", "1"),
        ("dangling", "sym", "not/there/yet"),
    ]
    assert archive.check(tar_of(*members)) == len(members)


def test_the_agent_refuses_the_cve_2025_4517_archive_before_writing_anything(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    depth = len(dest.parts) - 1  # ".." steps from dest to /
    evil = tmp_path / "evil.tar"
    evil.write_bytes(tar_of(("Dockerfile", "file", "FROM x"), *_cve_2025_4517_chain("/.." * depth + str(outside))))
    with pytest.raises(StageFailed) as err:
        extract_archive(evil, dest)
    assert err.value.reason == "FetchSourceFailed" and "'escape'" in err.value.message
    assert list(outside.iterdir()) == [] and list(dest.iterdir()) == []


def test_not_an_archive():
    with pytest.raises(archive.BadArchive):
        archive.check(b"this is not a tar file at all" * 20)


@given(st.lists(st.text(alphabet="ab./", min_size=1, max_size=12), min_size=1, max_size=5))
def test_check_never_crashes_and_accepted_names_stay_inside(names):
    data = tar_of(*((n, "file", "x") for n in names))
    try:
        archive.check(data)
    except archive.BadArchive:
        return
    for name in names:
        assert not name.startswith("/") and ".." not in name.split("/")


def secret(**data: str) -> dict:
    return {"metadata": {"name": "s"}, "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def test_registry_auth_from_dockerconfigjson():
    cfg = {
        "auths": {
            "127.0.0.1:5000": {"auth": base64.b64encode(b"u:p:w").decode()},
            "https://other:443": {"username": "o", "password": "q"},
        }
    }
    s = secret(**{".dockerconfigjson": json.dumps(cfg)})
    assert credentials.registry_auth(s, "127.0.0.1:5000") == ("u", "p:w")
    assert credentials.registry_auth(s, "other:443") == ("o", "q")
    assert credentials.registry_auth(s, "elsewhere:1") is None


def test_credential_errors_never_show_values():
    s = secret(password="hunter2")
    s["data"][".dockerconfigjson"] = "!!notbase64!!"
    with pytest.raises(credentials.CredentialError) as err:
        credentials.registry_auth(s, "x")
    assert "hunter2" not in str(err.value) and "notbase64" not in str(err.value)
    assert credentials.basic_auth(secret(username="git", password="hunter2")) == ("git", "hunter2")
    with pytest.raises(credentials.CredentialError):
        credentials.basic_auth(secret(username="git"))


def test_replace_last_from_keeps_stage_names_and_platform():
    text = "FROM golang AS build\nRUN make\nFROM --platform=linux/amd64 alpine:3 AS final\nCOPY x y\n"
    out = replace_last_from(text, "r/base@sha256:abc")
    assert out.splitlines()[0] == "FROM golang AS build"
    assert out.splitlines()[2] == "FROM --platform=linux/amd64 r/base@sha256:abc AS final"
    assert replace_last_from("FROM a\n", "b") == "FROM b\n"
    assert replace_last_from("RUN x\n", "b") == "RUN x\n"


# ------------------------------------------------------------------ limits while streaming


def _big_member(size: int) -> bytes:
    info = tarfile.TarInfo("zeros")
    info.size = size
    return info.tobuf(format=tarfile.GNU_FORMAT) + bytes(size + (-size % 512) + 1024)


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress, lambda b: b])
def test_compressed_contexts_are_read_and_bombs_refused_naming_the_limit(compress):
    small = archive.Limits(max_bytes=10 * 2**20)
    assert archive.check(compress(tar_of(("Dockerfile", "file", "FROM x"))), limits=small) == 1
    with pytest.raises(archive.TooLarge, match=r"exceeds 10485760 uncompressed bytes \(--max-context-bytes\)"):
        archive.check(compress(_big_member(20 * 2**20)), limits=small)


def test_too_many_members_and_oversized_headers_are_refused():
    with pytest.raises(archive.TooLarge, match="more than 2 members"):
        archive.check(tar_of(*((f"f{i}", "file", "x") for i in range(3))), limits=archive.Limits(max_members=2))
    info = tarfile.TarInfo("p")
    info.pax_headers = {"comment": "x" * (2 * archive.MAX_HEADER_BYTES)}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info)
    with pytest.raises(archive.TooLarge, match="headers exceed"):
        archive.check(buf.getvalue())


def test_the_agent_extracts_within_the_limits_only(tmp_path):
    bomb = tmp_path / "bomb.tar.gz"
    bomb.write_bytes(gzip.compress(_big_member(20 * 2**20)))
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(StageFailed) as err:
        extract_archive(bomb, dest, archive.Limits(max_bytes=10 * 2**20))
    assert err.value.reason == "FetchSourceFailed" and "10485760" in err.value.message
    assert list(dest.iterdir()) == []
    good = tmp_path / "good.tar.gz"
    good.write_bytes(gzip.compress(tar_of(("Dockerfile", "file", "FROM x"))))
    extract_archive(good, dest)
    assert (dest / "Dockerfile").read_text() == "FROM x"
