"""The CLI reads what the API server returns as typed objects; one it cannot read is a message, not a traceback."""

from __future__ import annotations

import pytest
import typer

from dockyard.api import objects
from dockyard.cli import main


def test_an_unreadable_object_exits_3_naming_it_and_its_fields(capsys: pytest.CaptureFixture[str]) -> None:
    body = {"kind": "Build", "metadata": {"name": "app-1"}, "spec": {"source": {}, "output": {}, "bogus": 1}}
    with pytest.raises(typer.Exit) as exit_:
        main._typed(body, objects.Build)
    assert exit_.value.exit_code == 3
    err = capsys.readouterr().err
    assert "Build 'app-1'" in err
    assert "spec.bogus" in err


def test_a_readable_object_is_typed() -> None:
    body = {
        "kind": "Push",
        "metadata": {"name": "snap"},
        "spec": {"podName": "web", "image": "127.0.0.1:5000/snap:v1"},
        "status": {"phase": "Succeeded", "imageDigest": "sha256:" + "0" * 64},
    }
    push = main._typed(body, objects.Push)
    assert (push.metadata.name, push.status.phase, push.status.imageDigest) == (
        "snap",
        "Succeeded",
        "sha256:" + "0" * 64,
    )
