"""Git refs, commits and repository URIs a build may name (``dockyard.api.gitref``)."""

from __future__ import annotations

import subprocess

import pytest

from dockyard.api import gitref

GOOD_REFS = [
    "main",
    "v1.2.3",
    "refs/heads/feature/x",
    "release-1.0",
    "a" * 40,
    "0123abcd",
    "feature@2",
    "user/topic_1",
    "HEAD",
]
BAD_REFS = [
    "",
    "-x",
    "--upload-pack=touch /tmp/x",
    "--pathspec-from-file=/etc/hostname",
    "a..b",
    "a b",
    "a~1",
    "a^",
    "a:b",
    "a?",
    "a*",
    "a[b",
    "a\\b",
    "a@{1}",
    "@",
    "/a",
    "a/",
    "a//b",
    "a.",
    ".a",
    "a/.b",
    "a.lock",
    "a/b.lock/c",
    "a\x00b",
    "a\x7fb",
    "a\nb",
    "a\tb",
]


@pytest.mark.parametrize("ref", GOOD_REFS)
def test_refs_users_pass_are_accepted(ref: str) -> None:
    assert gitref.check_ref(ref) == ref


@pytest.mark.parametrize("ref", BAD_REFS)
def test_bad_refs_are_refused(ref: str) -> None:
    with pytest.raises(ValueError):
        gitref.check_ref(ref)


@pytest.mark.parametrize("ref", [r for r in GOOD_REFS + BAD_REFS if r and "\x00" not in r])
def test_refname_rules_agree_with_git(ref: str) -> None:
    """Where git's own ``check-ref-format --allow-onelevel`` refuses a name, so does dockyard."""
    ours = gitref.ref_problem(ref) is None
    theirs = subprocess.run(["git", "check-ref-format", "--allow-onelevel", ref], capture_output=True).returncode == 0
    if not theirs:
        assert not ours, ref
    if ours:
        assert theirs, ref


@pytest.mark.parametrize("commit", ["abcd", "0123456789abcdef0123456789abcdef01234567", "A" * 64])
def test_hex_commits(commit: str) -> None:
    assert gitref.is_commit(commit)


@pytest.mark.parametrize("commit", ["abc", "g123", "a" * 65, "-abcd"])
def test_not_hex_commits(commit: str) -> None:
    assert not gitref.is_commit(commit)


GOOD_URIS = [
    "https://github.com/o/r.git",
    "http://127.0.0.1:8080/app.git",
    "ssh://git@host:22/o/r.git",
    "git://host/r.git",
    "git@github.com:o/r.git",
    "host:r.git",
    "file:///srv/r.git",
    "/srv/repo",
    "./repo",
    "repo",
    "../up/repo",
    "/tmp/with space/repo",
]
BAD_URIS = [
    "",
    "-x",
    "--upload-pack=touch /tmp/x",
    "ext::sh -c touch% /tmp/pwned",
    "fd::3",
    "foo::bar",
    "git-remote-x::y",
    "ftp://host/r",
    "foo://x",
    "ssh://-oProxyCommand=x/r",
    "ssh://-u@host/r",
    "-oProxyCommand=x:r",
    "https://host/r\n",
    "/srv/r\x00",
    "/srv\x1br",
]


@pytest.mark.parametrize("uri", GOOD_URIS)
def test_uris_users_pass_are_accepted(uri: str) -> None:
    assert gitref.check_uri(uri) == uri


@pytest.mark.parametrize("uri", BAD_URIS)
def test_bad_uris_are_refused(uri: str) -> None:
    with pytest.raises(ValueError):
        gitref.check_uri(uri)
