"""Helpers shared by the end-to-end tests (imported as ``harness``; pytest puts this folder on sys.path)."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def demo_module():
    """``examples/hello/demo.py`` as a module (its ``Demo`` drives `dockyard up` and kubectl)."""
    if "hello_demo" in sys.modules:
        return sys.modules["hello_demo"]
    spec = importlib.util.spec_from_file_location("hello_demo", ROOT / "examples" / "hello" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["hello_demo"] = module
    spec.loader.exec_module(module)
    return module


def git_repo(path: Path, files: dict[str, str], message: str = "init") -> Path:
    """A git repository at ``path`` on branch main with ``files`` committed."""
    path.mkdir(parents=True, exist_ok=True)
    if not (path / ".git").exists():
        subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    git = ["git", "-C", str(path), "-c", "user.name=Test Author", "-c", "user.email=author@example.com"]
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-qm", message], check=True)
    return path


def apply(cluster, obj: dict) -> None:
    cluster.kubectl("apply", "-f", "-", input_=json.dumps(obj))


def buildconfig(name: str, *, source: dict, to: str, **spec) -> dict:
    return {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "BuildConfig",
        "metadata": {"name": name},
        "spec": {"source": source, "output": {"to": {"kind": "DockerImage", "name": to}}, **spec},
    }


def phase(cluster, build: str) -> str | None:
    return (cluster.get("build", build).get("status") or {}).get("phase")


def wait_phase(cluster, build: str, phases: tuple[str, ...], timeout: float = 120) -> dict:
    cluster.wait_for(f"build {build} to reach {phases}", lambda: phase(cluster, build) in phases, timeout)
    return cluster.get("build", build)


def kill_component(cluster, component: str) -> int:
    """SIGKILL `dockyard up`'s ``component`` (``agent``, ``controllers``); returns its pid."""
    pid = int((cluster.data_dir / "run" / f"{component}.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    return pid


def restarted(cluster, component: str, old_pid: int) -> bool:
    """Whether `dockyard up` has restarted ``component`` (a new pid, marked ready) since ``old_pid`` was killed."""
    run = cluster.data_dir / "run"
    try:
        return int((run / f"{component}.ready").read_text()) == int((run / f"{component}.pid").read_text()) != old_pid
    except (OSError, ValueError):
        return False
