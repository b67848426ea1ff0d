"""Crash safety of builds: SIGKILL the controllers or the node agent while builds are New, Pending
and Running; the supervisor in `dockyard up` restarts them.

Afterwards every build ends in a correct terminal phase, none ran twice (one
``FetchInputs`` in each log, one builder), no second build pod was created,
and no Build stays Running.
"""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from harness import apply, buildconfig, kill_component, phase, restarted

pytestmark = pytest.mark.e2e

TERMINAL = ("Complete", "Failed", "Error", "Cancelled")


@pytest.mark.parametrize("victims", [("agent",), ("controllers",), ("agent", "controllers")])
def test_sigkill_components_mid_build(cluster, victims):
    name = "crash-" + "-".join(victims)
    text = f"FROM {cluster.registry}/dockyard/busybox:latest\nRUN echo start && sleep 8 && echo end\n"
    apply(
        cluster,
        buildconfig(
            name,
            source={"type": "Dockerfile", "dockerfile": text},
            to=f"{cluster.registry}/crash:{name}",
            runPolicy="Parallel",
            successfulBuildsHistoryLimit=10,
            strategy={"type": "Docker", "dockerStrategy": {"noCache": True}},
        ),
    )
    # six builds, two slots (`dockyard up --max-builds 2`): some run, the rest wait in Pending
    builds = [cluster.dockyard("start-build", name).stdout.strip().removeprefix("build/") for _ in range(6)]

    def snapshot() -> dict[str, str]:
        # one list, so the phases are of one moment (a kubectl call per build took seconds on a busy machine)
        listed = json.loads(
            cluster.kubectl("get", "builds", "-l", f"dockyard.dev/buildconfig={name}", "-o", "json").stdout
        )
        return {i["metadata"]["name"]: (i.get("status") or {}).get("phase") or "New" for i in listed["items"]}

    phases: dict[str, str] = {}

    def mid_build() -> bool:
        phases.update(snapshot())
        return "Running" in phases.values() and bool({"Pending", "New"} & set(phases.values()))

    cluster.wait_for("a build to run while others wait", mid_build, 60)
    for victim in victims:
        old = kill_component(cluster, victim)
        cluster.wait_for(
            f"{victim} to be restarted by dockyard up",
            lambda victim=victim, old=old: restarted(cluster, victim, old),
            60,
        )

    cluster.wait_for("every build to end", lambda: all(phase(cluster, b) in TERMINAL for b in builds), 180)
    for b in builds:
        status = cluster.get("build", b)["status"]
        assert status["phase"] == "Complete", (b, status)
        log = cluster.dockyard("logs", f"build/{b}").stdout
        assert log.count("--> FetchInputs") == 1, (b, log)
    pods = json.loads(cluster.kubectl("get", "pods", "-l", f"dockyard.dev/buildconfig={name}", "-o", "json").stdout)
    assert sorted(p["metadata"]["name"] for p in pods["items"]) == sorted(f"{b}-build" for b in builds)
    builders = list((cluster.data_dir / "agent" / "builds").iterdir())
    assert len(
        [
            d
            for d in builders
            if (d / "request.json").exists()
            and json.loads((d / "request.json").read_text())["build"]["metadata"]["name"] in builds
        ]
    ) == len(builds)


def test_lost_builder_fails_the_build_instead_of_running_it_twice(cluster):
    text = f"FROM {cluster.registry}/dockyard/busybox:latest\nRUN sleep 30\n"
    apply(
        cluster,
        buildconfig(
            "lost",
            source={"type": "Dockerfile", "dockerfile": text},
            to=f"{cluster.registry}/crash:lost",
            strategy={"type": "Docker", "dockerStrategy": {"noCache": True}},
        ),
    )
    build = cluster.dockyard("start-build", "lost").stdout.strip().removeprefix("build/")
    cluster.wait_for("the build to run", lambda: phase(cluster, build) == "Running", 60)
    pod_uid = cluster.get("pod", f"{build}-build")["metadata"]["uid"]
    builder_pid = int((cluster.data_dir / "agent" / "builds" / pod_uid / "pid").read_text().split()[0])
    old = kill_component(cluster, "agent")
    os.killpg(builder_pid, signal.SIGKILL)  # as if the machine had restarted under it
    cluster.wait_for("the agent to come back", lambda: restarted(cluster, "agent", old), 60)
    status = (
        cluster.wait_for("the build to end", lambda: phase(cluster, build) in TERMINAL, 60)
        and cluster.get("build", build)["status"]
    )
    assert status["phase"] == "Failed" and status["reason"] == "BuildPodLost", status
    time.sleep(2)
    assert cluster.get("build", build)["status"]["phase"] == "Failed"
