"""The agent's git fetch against real git and local repositories.

Even when admission is bypassed (an object written straight to the store, an
older server), a ref or URI from a Build never reaches git as an option, and
only the file, git, http(s) and ssh transports are allowed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from dockyard.agent import builds
from dockyard.api import models

ENV = {
    "GIT_AUTHOR_NAME": "A",
    "GIT_AUTHOR_EMAIL": "a@example",
    "GIT_COMMITTER_NAME": "A",
    "GIT_COMMITTER_EMAIL": "a@example",
}


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, env=dict(os.environ, **ENV)
    )
    return out.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """main: 'one'; branch feature and tag v1: 'two'."""
    src = tmp_path / "origin"
    subprocess.run(["git", "init", "-q", "-b", "main", str(src)], check=True)
    (src / "Dockerfile").write_text("FROM scratch\n")
    git(src, "add", "Dockerfile")
    git(src, "commit", "-q", "-m", "one")
    git(src, "checkout", "-q", "-b", "feature")
    (src / "two").write_text("2\n")
    git(src, "add", "two")
    git(src, "commit", "-q", "-m", "two")
    git(src, "tag", "v1")
    git(src, "checkout", "-q", "main")
    return src


def _git_source(git: dict[str, str]) -> models.BuildSource:
    """A typed Git source built without the model's checks, as a hostile stored object would reach the agent:
    the agent's git invocation must be safe on its own."""
    return models.BuildSource.model_construct(type="Git", git=models.GitBuildSource.model_construct(**git))


def fetch(uri: str, ref: str | None, workdir: Path) -> tuple[list[str], dict | None]:
    lines: list[str] = []
    workdir.mkdir()
    git_source = {"uri": uri, **({"ref": ref} if ref is not None else {})}
    _, revision = builds.fetch_source(_git_source(git_source), workdir, lines.append, builds.BuildInputs())
    return lines, revision


@pytest.mark.parametrize(
    "ref,message",
    [
        (None, "one"),
        ("main", "one"),
        ("feature", "two"),
        ("v1", "two"),
        ("refs/tags/v1", "two"),
        ("origin/feature", "two"),
    ],
)
def test_refs_check_out_the_named_commit(repo: Path, tmp_path: Path, ref: str | None, message: str) -> None:
    _, revision = fetch(str(repo), ref, tmp_path / "w")
    assert revision is not None and revision["git"]["message"] == message


def test_commits_full_and_short_check_out(repo: Path, tmp_path: Path) -> None:
    sha = git(repo, "rev-parse", "feature")
    assert fetch(str(repo), sha, tmp_path / "a")[1]["git"]["commit"] == sha  # type: ignore[index]
    assert fetch(str(repo), sha[:8], tmp_path / "b")[1]["git"]["commit"] == sha  # type: ignore[index]


def test_an_unknown_ref_fails_naming_it(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(builds.StageFailed) as err:
        fetch(str(repo), "nosuch", tmp_path / "w")
    assert err.value.reason == "FetchSourceFailed" and "nosuch" in err.value.message


@pytest.mark.parametrize("option", ["--pathspec-from-file={file}", "-x", "--orphan=x", "-b{file}"])
def test_a_ref_that_looks_like_an_option_is_never_one(repo: Path, tmp_path: Path, option: str) -> None:
    secret_file = tmp_path / "host-secret"
    secret_file.write_text("HOST-SECRET-CONTENTS\n")
    lines: list[str] = []
    (tmp_path / "w").mkdir()
    with pytest.raises(builds.StageFailed) as err:
        builds.fetch_source(
            _git_source({"uri": str(repo), "ref": option.format(file=secret_file)}),
            tmp_path / "w",
            lines.append,
            builds.BuildInputs(),
        )
    assert "HOST-SECRET-CONTENTS" not in "\n".join(lines) + err.value.message
    assert not (repo / "x").exists() and "x" not in git(repo, "branch", "--list")


def test_a_uri_that_looks_like_an_option_is_never_one(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    (tmp_path / "w").mkdir()
    with pytest.raises(builds.StageFailed):
        builds.fetch_source(
            _git_source({"uri": f"--upload-pack=touch {marker}"}),
            tmp_path / "w",
            lambda line: None,
            builds.BuildInputs(),
        )
    assert not marker.exists()


@pytest.mark.parametrize("uri", ["ext::sh -c touch% {marker}", "ext::sh -c touch% {marker}%"])
def test_the_ext_transport_is_not_allowed_even_where_git_config_allows_it(
    tmp_path: Path, uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")  # a host whose git config allows every transport
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "protocol.allow")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "always")
    marker = tmp_path / "pwned"
    (tmp_path / "w").mkdir()
    with pytest.raises(builds.StageFailed):
        builds.fetch_source(
            _git_source({"uri": uri.format(marker=marker)}),
            tmp_path / "w",
            lambda line: None,
            builds.BuildInputs(),
        )
    assert not marker.exists()


def _refs(clone: Path) -> set[str]:
    return set(git(clone, "for-each-ref", "--format=%(refname)").split())


@pytest.mark.parametrize("scheme", ["", "file://"])
@pytest.mark.parametrize("ref,message", [("feature", "two"), ("v1", "two"), (None, "one")])
def test_a_branch_or_tag_is_fetched_alone(
    repo: Path, tmp_path: Path, scheme: str, ref: str | None, message: str
) -> None:
    """One ``clone --single-branch --no-tags --branch=REF`` (``--depth 1`` over a transport): only the named
    branch comes, no tags, and the revision still names the commit."""
    lines, revision = fetch(f"{scheme}{repo}", ref, tmp_path / "w")
    clone = tmp_path / "w" / "src"
    assert revision is not None and revision["git"]["message"] == message
    assert revision["git"]["commit"] == git(repo, "rev-parse", f"{ref or 'main'}^{{commit}}")
    assert git(clone, "rev-parse", "HEAD") == revision["git"]["commit"]
    assert not any(r.startswith("refs/tags/") for r in _refs(clone) - {f"refs/tags/{ref}"})  # v1 names feature
    assert not any(r.endswith("/main") for r in _refs(clone)) if ref else True
    assert git(clone, "rev-parse", "--is-shallow-repository") == ("true" if scheme else "false")
    assert not any("detached HEAD" in line for line in lines)


def test_a_name_clone_cannot_fetch_alone_falls_back_to_the_full_clone(repo: Path, tmp_path: Path) -> None:
    lines, revision = fetch(f"file://{repo}", "origin/feature", tmp_path / "w")
    assert revision is not None and revision["git"]["message"] == "two"
    assert any("cloning all of" in line for line in lines)


def test_the_clone_of_a_local_path_stands_alone(repo: Path, tmp_path: Path) -> None:
    """A local clone may hard-link the origin's object files (git's default), but keeps no link to the origin:
    no alternates, and the clone is whole once the origin is gone (a context that keeps ``.git`` needs it)."""
    _, revision = fetch(str(repo), "feature", tmp_path / "w")
    clone = tmp_path / "w" / "src"
    assert revision is not None
    assert not (clone / ".git" / "objects" / "info" / "alternates").exists()
    shutil.rmtree(repo)
    subprocess.run(["git", "-C", str(clone), "fsck", "--full", "--no-dangling"], check=True, capture_output=True)
    assert git(clone, "log", "-1", "--format=%s") == "two"


def test_a_fetch_ahead_keeps_the_lines_the_tree_and_the_revision(repo: Path, tmp_path: Path) -> None:
    (tmp_path / "w").mkdir()
    source = _git_source({"uri": f"file://{repo}", "ref": "origin/feature"})
    before = time.monotonic()
    ahead = builds.fetch_ahead(source, tmp_path / "w", lambda: False)
    assert ahead.error is None
    assert ahead.revision is not None and ahead.revision["git"]["message"] == "two"
    assert ahead.tree == tmp_path / "w" / "src" and (ahead.context / "two").is_file()
    assert any("cloning all of" in line for line in ahead.lines)
    assert any(line.startswith("Commit: ") for line in ahead.lines)
    assert before <= ahead.started <= time.monotonic()


def test_a_failed_fetch_ahead_keeps_gits_lines_and_the_failure(repo: Path, tmp_path: Path) -> None:
    (tmp_path / "w").mkdir()
    ahead = builds.fetch_ahead(_git_source({"uri": str(repo), "ref": "nosuch"}), tmp_path / "w", lambda: False)
    assert ahead.error is not None and ahead.error.reason == "FetchSourceFailed"
    assert "'nosuch' names no branch, tag or commit" in ahead.error.message
    assert any("nosuch" in line for line in ahead.lines)  # git's own words, for the build log
    assert ahead.revision is None


def test_a_cancelled_fetch_ahead_stops(repo: Path, tmp_path: Path) -> None:
    (tmp_path / "w").mkdir()
    with pytest.raises(builds.BuildCancelled):
        builds.fetch_ahead(_git_source({"uri": str(repo), "ref": "main"}), tmp_path / "w", lambda: True)


def test_only_a_git_source_without_a_secret_is_fetched_ahead() -> None:
    git_source = {"type": "Git", "git": {"uri": "https://example.com/r.git"}}
    assert builds.can_fetch_ahead(models.BuildSource.model_validate(git_source))
    assert not builds.can_fetch_ahead(models.BuildSource.model_validate({**git_source, "sourceSecret": {"name": "s"}}))
    assert not builds.can_fetch_ahead(models.BuildSource.model_validate({"type": "Dockerfile", "dockerfile": "FROM x"}))


def test_fetching_ahead_waits_for_the_clone_and_removes_it_however_the_build_ends(repo: Path, tmp_path: Path) -> None:
    """The builder's failure before the build (an engine client that cannot be made) leaves no clone behind; the
    clone goes in ``scratch`` (the builder's state directory), not in /tmp."""
    source = _git_source({"uri": str(repo), "ref": "main"})
    scratch = tmp_path / "state"
    scratch.mkdir()
    with pytest.raises(RuntimeError), builds.fetching_ahead(source, lambda: False, scratch=scratch) as ahead:
        assert ahead is not None
        assert ahead.result().tree.parent.parent == scratch
        raise RuntimeError("the engine client could not be made")
    fetched = ahead.result()
    assert fetched.error is None and fetched.revision is not None
    assert list(scratch.iterdir()) == []  # the whole temporary directory is gone
    dockerfile = models.BuildSource.model_validate({"type": "Dockerfile", "dockerfile": "FROM x"})
    with builds.fetching_ahead(dockerfile, lambda: False) as none:
        assert none is None
