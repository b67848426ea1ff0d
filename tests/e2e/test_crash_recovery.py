"""Crash safety of the embedded control plane: SIGKILL `dockyard up`, start it again.

Killed mid-build, the restarted process finishes the build from stored state:
the Build ends Complete with the digest the registry serves, exactly one build
pod ever existed for it, and the acknowledged objects are all still there.
"""

from __future__ import annotations

import json
import signal
import time

import pytest
from harness import demo_module

pytestmark = pytest.mark.e2e


def _kill(demo) -> None:
    demo.up_proc.send_signal(signal.SIGKILL)
    demo.up_proc.wait(timeout=10)


def _restart(demo) -> None:
    """Start `dockyard up` again on the same data dir; it adopts the registry and Podman service
    that the killed one left running (work under way survives)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if demo_module().free_port(demo.api_port) == demo.api_port:
            break
        time.sleep(0.2)
    demo.start()


def test_sigkill_during_build_then_restart_finishes_it(tmp_path):
    demo = demo_module().Demo(tmp_path, engine="podman")
    try:
        demo.start()
        demo.base_image()
        demo.make_repo()
        demo.apply()
        created = json.loads(demo.kubectl("get", "buildconfig,image,imagedeploy", "-o", "json").stdout)["items"]
        out = demo.dockyard("start-build", "hello")
        build = out.stdout.strip().removeprefix("build/")

        demo.wait_for(
            "the build to be under way",
            lambda: (demo.get("build", build).get("status") or {}).get("phase") in ("Pending", "Running"),
            60,
        )
        _kill(demo)
        _restart(demo)

        demo.wait_for(
            "the build to finish after the restart",
            lambda: (demo.get("build", build).get("status") or {}).get("phase") in ("Complete", "Failed", "Error"),
            180,
        )
        status = demo.get("build", build)["status"]
        assert status["phase"] == "Complete", status
        demo.check_registry_digest(f"{demo.registry}/hello:latest", status["output"]["to"]["imageDigest"])
        pods = json.loads(demo.kubectl("get", "pods", "-l", "dockyard.dev/build-pod=true", "-o", "json").stdout)
        assert [p["metadata"]["name"] for p in pods["items"]] == [f"{build}-build"]
        after = json.loads(demo.kubectl("get", "buildconfig,image,imagedeploy", "-o", "json").stdout)["items"]
        assert {o["metadata"]["uid"] for o in after} == {o["metadata"]["uid"] for o in created}

        # and the app comes up from the same stored state, then survives another SIGKILL
        demo.digests["v1"] = status["output"]["to"]["imageDigest"]
        demo.serves("v1")
        _kill(demo)
        _restart(demo)
        demo.serves("v1")
        demo.stop()
    finally:
        demo.cleanup()
