"""``--pod-manifest-path`` / ``--manifest-url`` on ``dockyard up`` and ``dockyard agent``: bad sources are refused
with a message naming the flag, before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from dockyard.cli.main import app


@pytest.mark.parametrize("command", ["up", "agent"])
def test_a_manifest_url_off_loopback_is_refused_naming_the_flag(command: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, [command, "--manifest-url", "http://10.88.0.1/pods.yaml"])
    assert result.exit_code == 2
    assert "--manifest-url" in result.output and "127.0.0.1" in result.output


def test_a_manifest_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "pod.yaml"
    file.write_text("kind: Pod\n")
    result = CliRunner().invoke(app, ["agent", "--pod-manifest-path", str(file)])
    assert result.exit_code == 2 and "--pod-manifest-path" in result.output
