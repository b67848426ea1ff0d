"""The benchmarks' shared run skeleton (``bench/_harness.py``): steps, the end of a run, one watch request.

Other tools read a benchmark's last stdout line: ``benchmark`` first, then ``ok``, ``error``, the bench's own
figures, then ``problems``, ``notes``, ``stop``; exit status 0 only for an ok run.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import _harness as harness

# --- run_steps -----------------------------------------------------------------------------------


def test_steps_run_in_order_with_after_step_and_cleanup() -> None:
    done: list[str] = []
    error = harness.run_steps(
        [("one", lambda: done.append("one")), ("two: more", lambda: done.append("two"))],
        log=Path("/nonexistent/up.log"),
        cleanup=lambda: done.append("cleanup"),
        after_step=lambda title: done.append(f"after {title}"),
    )
    assert error is None
    assert done == ["one", "after one", "two", "after two: more", "cleanup"]


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (harness.BenchError("no pod"), "BenchError: no pod"),
        (httpx.ConnectError("refused"), "ConnectError: refused"),
        (KeyError("digest"), "KeyError: 'digest'"),
        (ValueError("bad JSON"), "ValueError: bad JSON"),
    ],
)
def test_a_failed_step_is_the_error_and_the_rest_is_skipped(exc: Exception, expected: str) -> None:
    done: list[str] = []

    def fail() -> None:
        raise exc

    error = harness.run_steps(
        [("one", fail), ("two", lambda: done.append("two"))],
        log=Path("/nonexistent/up.log"),
        cleanup=lambda: done.append("cleanup"),
        after_step=lambda title: done.append(f"after {title}"),
    )
    assert error == expected
    assert done == ["cleanup"]


def test_ctrl_c_is_interrupted_and_still_cleans_up() -> None:
    done: list[str] = []

    def interrupt() -> None:
        raise KeyboardInterrupt

    error = harness.run_steps([("one", interrupt)], log=Path("/x"), cleanup=lambda: done.append("cleanup"))
    assert error == "interrupted"
    assert done == ["cleanup"]


def test_a_bug_propagates_after_cleanup() -> None:
    done: list[str] = []

    def bug() -> None:
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError):
        harness.run_steps([("one", bug)], log=Path("/x"), cleanup=lambda: done.append("cleanup"))
    assert done == ["cleanup"]


# --- print_notes / finish ------------------------------------------------------------------------


def test_notes_then_stop_then_problems_empty_ones_left_out() -> None:
    buf = io.StringIO()
    harness.print_notes(Console(file=buf, width=200), ["a", "", "b"], "stopped", ["p1"])
    assert buf.getvalue().splitlines() == ["note: a", "note: b", "note: stopped", "PROBLEM: p1"]
    buf = io.StringIO()
    harness.print_notes(Console(file=buf, width=200), [], "")
    assert buf.getvalue() == ""


def last_record(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    return json.loads(capsys.readouterr().out.splitlines()[-1])


def test_record_key_order_and_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = harness.finish(
        "cd",
        error=None,
        fields={"code": "abc", "engine": "podman", "when": Path("/p")},
        problems=[],
        notes=["n"],
        stop="",
        workdir=tmp_path,
        keep=True,
    )
    record = last_record(capsys)
    assert code == 0
    assert list(record) == ["benchmark", "ok", "error", "code", "engine", "when", "problems", "notes", "stop"]
    assert record["benchmark"] == "cd" and record["ok"] is True and record["when"] == "/p"


def test_problems_make_the_run_fail_unless_ok_is_given(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert harness.finish("x", error=None, fields={}, problems=["lost"], workdir=None, keep=True) == 1
    assert last_record(capsys)["ok"] is False
    assert harness.finish("x", error="E: e", fields={}, workdir=None, keep=True) == 1
    assert harness.finish("x", error=None, fields={}, ok=False, workdir=None, keep=True) == 1
    record = last_record(capsys)
    assert list(record) == ["benchmark", "ok", "error"]


def test_workdir_removed_only_after_an_ok_run_without_keep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kept, removed, failed = tmp_path / "kept", tmp_path / "removed", tmp_path / "failed"
    for d in (kept, removed, failed):
        d.mkdir()
    harness.finish("x", error=None, fields={}, workdir=kept, keep=True)
    harness.finish("x", error=None, fields={}, workdir=removed, keep=False)
    harness.finish("x", error="E: e", fields={}, workdir=failed, keep=False)
    harness.finish("x", error=None, fields={}, workdir=None, keep=False)
    assert kept.exists() and not removed.exists() and failed.exists()
    assert f"state kept in {failed}" in capsys.readouterr().err.replace("\n", "")


# --- watch_events --------------------------------------------------------------------------------


def harness_with(tmp_path: Path, handler: Any) -> harness.Harness:
    h = harness.Harness(tmp_path, raw_client="none", isolated_storage=False)
    h.http = httpx.Client(base_url="https://127.0.0.1:1", transport=httpx.MockTransport(handler))
    return h


def test_watch_events_yields_until_error(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []
    lines = [
        {"type": "ADDED", "object": {"metadata": {"resourceVersion": "5"}}},
        None,
        {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "6"}}},
        {"type": "ERROR", "object": {"code": 410}},
        {"type": "MODIFIED", "object": {}},
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = "".join(("" if x is None else json.dumps(x)) + "\n" for x in lines)
        return httpx.Response(200, text=body)

    h = harness_with(tmp_path, handler)
    events = list(h.watch_events("/apis/x/builds", {"labelSelector": "a=b"}, "4", remaining=30, window=60, slack=5))
    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
    params = dict(seen[0].url.params)
    assert params == {"watch": "true", "labelSelector": "a=b", "resourceVersion": "4", "timeoutSeconds": "31"}


def test_watch_refused_is_a_bench_error_naming_it(tmp_path: Path) -> None:
    h = harness_with(tmp_path, lambda request: httpx.Response(403, text="forbidden"))
    with pytest.raises(harness.BenchError, match="watch on builds answered 403: forbidden"):
        list(h.watch_events("/b", {}, "1", remaining=10, window=60, slack=5, what="watch on builds"))


def test_an_option_out_of_its_range_is_a_usage_error_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="bench")
    ranges = {"phase_timeout": (5, 3600), "connections": (1, 1000)}
    harness.check_ranges(parser, argparse.Namespace(phase_timeout=5, connections=1000), ranges)  # bounds included
    with pytest.raises(SystemExit) as exc:
        harness.check_ranges(parser, argparse.Namespace(phase_timeout=4, connections=10), ranges)
    assert exc.value.code == 2
    assert "--phase-timeout must be in 5..3600" in capsys.readouterr().err
