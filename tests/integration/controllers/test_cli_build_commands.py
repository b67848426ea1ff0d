"""The CLI's build and push commands (``start-build --follow``, ``cancel-build``, ``commit --wait``) against the
in-process API server, with the build controller running and the test playing the node agent.

What the commands read back from the server (phase, reason, digest) and the exit codes scripts trust
(:mod:`dockyard.cli.main`: 0 Complete/Succeeded, 1 the work failed).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from dockyard.api import buildpod
from dockyard.cli.main import app
from dockyard.client import runtime
from dockyard.controllers.build import BuildController

from ..conftest import ApiServer
from .conftest import Env, status
from .test_build_controller import DIGEST, FAILED, OK, OUTPUT, config, pod_finished, pod_running


@pytest.fixture
def builds(run_controller: Callable[..., runtime.Controller]) -> BuildController:
    return run_controller(BuildController)  # type: ignore[return-value]


@pytest.fixture
def cli(shared_apiserver: ApiServer, env: Env, tmp_path: Path) -> Callable[..., Result]:
    """``cli("start-build", "app", ...)``: run the CLI in the test's namespace with the admin's kubeconfig."""
    kubeconfig = shared_apiserver.kubeconfig(tmp_path / "kubeconfig", namespace=env.ns)

    def run(*args: str) -> Result:
        return CliRunner().invoke(app, [*args, "--kubeconfig", str(kubeconfig)])

    return run


@pytest.fixture
def agent(env: Env) -> Iterator[Callable[[str, object], None]]:
    """``agent(build, result)``: in the background, once the build's pod exists, run it and end it with ``result``."""
    threads: list[threading.Thread] = []

    def play(build: str, result: object) -> None:
        def work() -> None:
            env.wait(lambda: env.get("Pod", buildpod.pod_name(build)) is not None, "the build pod")
            pod_running(env, build)
            env.wait_phase("Build", build, "Running")
            pod_finished(env, build, result)  # type: ignore[arg-type]

        thread = threading.Thread(target=work, daemon=True)
        threads.append(thread)
        thread.start()

    yield play
    for thread in threads:
        thread.join(timeout=30)


def test_start_build_follow_exits_0_and_names_the_digest(
    env: Env, builds: BuildController, cli: Callable[..., Result], agent: Callable[[str, object], None]
) -> None:
    env.create("BuildConfig", config())
    agent("app-1", OK)
    result = cli("start-build", "app", "--follow")
    assert result.exit_code == 0, result.output
    assert "build/app-1" in result.output
    assert f"build/app-1 Complete: {OUTPUT}@{DIGEST}" in result.output


def test_start_build_follow_exits_1_with_the_builders_reason(
    env: Env, builds: BuildController, cli: Callable[..., Result], agent: Callable[[str, object], None]
) -> None:
    env.create("BuildConfig", config())
    agent("app-1", FAILED)
    result = cli("start-build", "app", "--follow")
    assert result.exit_code == 1, result.output
    assert "build/app-1 Failed: DockerBuildFailed RUN false: exit 1" in result.output


def test_cancel_build_cancels_once_then_reports_the_end(
    env: Env, builds: BuildController, cli: Callable[..., Result]
) -> None:
    env.create("BuildConfig", config())
    name = env.instantiate("app")["metadata"]["name"]
    env.wait_phase("Build", name, "Pending")
    first = cli("cancel-build", f"build/{name}")
    assert first.exit_code == 0, first.output
    assert f"build/{name} cancelled" in first.output
    assert status(env.wait_phase("Build", name, "Cancelled"))["reason"] == "CancelledBuild"
    again = cli("cancel-build", name)
    assert again.exit_code == 0, again.output
    assert f"build/{name} already Cancelled" in again.output


def test_cancel_build_of_a_missing_build_exits_2(env: Env, cli: Callable[..., Result]) -> None:
    result = cli("cancel-build", "nope-1")
    assert result.exit_code == 2, result.output


WEB_POD = {"metadata": {"name": "web"}, "spec": {"containers": [{"name": "app", "image": "127.0.0.1:5000/x:1"}]}}
"""The pod `dockyard commit` checks for before it makes the Push (no agent runs it here)."""


def test_commit_wait_reports_the_pushed_digest(env: Env, cli: Callable[..., Result]) -> None:
    env.create("Pod", WEB_POD)

    def serve() -> None:  # the node agent's part: the Push succeeds
        push = env.wait(lambda: next(iter(env.list("Push")), None), "the Push")
        env.patch_status("Push", push["metadata"]["name"], {"phase": "Succeeded", "imageDigest": DIGEST})

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    result = cli("commit", "web/app", "127.0.0.1:5000/snap/app:v1", "--wait", "--timeout", "20")
    thread.join(timeout=30)
    assert result.exit_code == 0, result.output
    assert f"Succeeded: 127.0.0.1:5000/snap/app:v1@{DIGEST}" in result.output


def test_commit_wait_without_an_answer_times_out_with_1(env: Env, cli: Callable[..., Result]) -> None:
    env.create("Pod", WEB_POD)
    result = cli("commit", "web", "127.0.0.1:5000/snap/app:v1", "--wait", "--timeout", "0.5")
    assert result.exit_code == 1, result.output
    assert "timed out" in result.output


def test_a_refused_request_exits_2_not_3(shared_apiserver: ApiServer, env: Env, tmp_path: Path) -> None:
    """Exit 3 means the server (or engine) cannot be reached: scripts retry it. A 403 (the view identity may not
    start builds) or 401 (a token the server does not know) is an answer that retrying will not change: exit 2,
    with the server's message."""
    env.create("BuildConfig", config())
    for token, words in ((shared_apiserver.view_token, "forbidden"), ("not-a-token", "Unauthorized")):
        kubeconfig = shared_apiserver.kubeconfig(tmp_path / f"kubeconfig-{words}", namespace=env.ns, token=token)
        result = CliRunner().invoke(app, ["start-build", "app", "--kubeconfig", str(kubeconfig)])
        assert result.exit_code == 2, result.output
        assert words.lower() in result.output.lower(), result.output
