"""A running builder's exit wakes its build pod at once, also when it outlived the agent that started it.

Before, the agent looked at such a pod every 2 s (and at waiting build pods every 1 s), each look a GET of
the pod; a builder it did not start itself (re-attached after a restart) was noticed only by those looks.
"""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

from lightkube.models.core_v1 import PodStatus
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Pod

from dockyard.agent import builder, buildpods


def _pod(uid: str) -> Pod:
    return Pod(metadata=ObjectMeta(name="b-build", namespace="ns", uid=uid), status=PodStatus(phase="Running"))


def test_the_exit_of_a_reattached_builder_wakes_its_pod(tmp_path: Path) -> None:
    woken = threading.Event()
    pods = buildpods.BuildPods(
        None,
        state_dir=tmp_path,
        kubeconfig=[],
        engine_url="unix:///nowhere",
        max_builds=1,
        waiting=list,
        on_exit=lambda pod: woken.set(),
    )
    proc = subprocess.Popen(["sleep", "0.5"])  # a builder this BuildPods did not start
    try:
        ident = builder.process_identity(proc.pid)
        assert ident is not None
        d = tmp_path / "builds" / "u1"
        d.mkdir()
        (d / "pid").write_text(ident)
        assert pods.sync(_pod("u1")) == buildpods.WATCHED_RESYNC  # not polled: its exit is waited for
        assert pods.sync(_pod("u1")) == buildpods.WATCHED_RESYNC  # one waiter, however often it is synced
        assert not woken.is_set()
        proc.wait(5)
        assert woken.wait(5)
    finally:
        proc.kill()
        proc.wait()


def test_an_exit_that_cannot_be_waited_for_is_polled(tmp_path: Path) -> None:
    pods = buildpods.BuildPods(
        None, state_dir=tmp_path, kubeconfig=[], engine_url="unix:///nowhere", max_builds=1, waiting=list
    )
    # a pid file naming a process whose start time is not the one recorded: the pid was reused
    assert not pods._wait_for_exit(_pod("u2"), f"{os.getpid()} 1")
