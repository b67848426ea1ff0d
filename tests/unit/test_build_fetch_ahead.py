"""The FetchInputs stage of a build whose source was fetched ahead (:func:`dockyard.agent.builds.fetch_ahead`):
the stage starts when the fetch did, its lines reach the build log in order, and a failed fetch fails the
build with ``FetchSourceFailed`` before the engine is used."""

from __future__ import annotations

import concurrent.futures
import time
from pathlib import Path
from typing import Any

import pytest

from dockyard.agent import builds
from dockyard.api import objects as api_objects


class _Sink:
    """Records what a build writes to its log (the :class:`dockyard.agent.logsink.LogSink` calls run_build makes)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.closed = False

    def write(self, text: str) -> None:
        self.lines.append(text)

    def close(self) -> None:
        self.closed = True

    def snippet(self) -> str:
        return "\n".join(self.lines[-5:])


def _build() -> api_objects.Build:
    return api_objects.Build.model_validate(
        {
            "metadata": {"name": "app-1", "namespace": "ns", "uid": "0123456789"},
            "spec": {
                "source": {"type": "Git", "git": {"uri": "https://example.com/app.git", "ref": "main"}},
                "strategy": {"type": "Docker", "dockerStrategy": {}},
                "output": {"to": {"kind": "DockerImage", "name": "127.0.0.1:5000/app:1"}},
            },
        }
    )


def _ahead(tmp_path: Path, **fields: Any) -> concurrent.futures.Future[builds.FetchedSource]:
    future: concurrent.futures.Future[builds.FetchedSource] = concurrent.futures.Future()
    tree = tmp_path / "src"
    base = {"context": tree, "tree": tree, "revision": None, "lines": [], "error": None}
    future.set_result(builds.FetchedSource(**{**base, **fields}))
    return future


def test_a_failed_fetch_ahead_fails_the_build_with_gits_lines_and_never_uses_the_engine(tmp_path: Path) -> None:
    failure = builds.StageFailed("FetchSourceFailed", "Failed to fetch the input source: 'x' names no branch")
    fetched = _ahead(
        tmp_path,
        lines=["fatal: Remote branch x not found in upstream origin"],
        error=failure,
        started=time.monotonic() - 1.5,
        started_at="2026-11-30T10:00:00Z",
    )
    sink = _Sink()
    engine: Any = None  # any use of the engine would raise
    result = builds.run_build(engine, _build(), sink, builds.BuildInputs(fetched=fetched))  # type: ignore[arg-type]
    assert not result.succeeded and result.reason == "FetchSourceFailed" and result.message == failure.message
    assert sink.lines[:2] == [
        "--> FetchInputs: git https://example.com/app.git main",
        "fatal: Remote branch x not found in upstream origin",
    ]
    assert sink.lines[-1] == f"error: {failure.message}" and sink.closed
    (stage,) = result.stages
    assert stage["name"] == "FetchInputs" and stage["startTime"] == "2026-11-30T10:00:00Z"
    assert stage["durationMilliseconds"] >= 1500  # from the fetch's own start, not the stage's


def test_a_cancelled_fetch_ahead_cancels_the_build(tmp_path: Path) -> None:
    fetched: concurrent.futures.Future[builds.FetchedSource] = concurrent.futures.Future()
    fetched.set_exception(builds.BuildCancelled())
    with pytest.raises(builds.BuildCancelled):
        builds.run_build(None, _build(), _Sink(), builds.BuildInputs(fetched=fetched))  # type: ignore[arg-type]
