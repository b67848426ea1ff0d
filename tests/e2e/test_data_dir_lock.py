"""One `dockyard up` per data dir: a second one on a data dir in use is refused before it touches anything
(its kubeconfig, its registry, its store), as etcd refuses a data dir another member holds."""

from __future__ import annotations

import subprocess

import httpx
import pytest
from harness import demo_module

pytestmark = pytest.mark.e2e


def test_a_second_up_on_a_data_dir_in_use_is_refused_and_the_first_keeps_running(tmp_path):
    demo_mod = demo_module()
    first = demo_mod.Demo(tmp_path / "first", engine="podman")
    again = demo_mod.Demo(tmp_path / "first", engine="podman")  # the same data dir, later
    try:
        first.start()
        kubeconfig = first.kubeconfig.read_bytes()
        other_api, other_registry = demo_mod.free_port(7600), demo_mod.free_port(5600)
        second = subprocess.run(
            [str(first.dockyard_bin), "up", "--data-dir", str(first.data_dir), "--port", str(other_api)]
            + ["--registry-port", str(other_registry)],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        assert second.returncode == 3, second.stderr
        assert "in use by another `dockyard up`" in second.stderr and "--data-dir" in second.stderr
        assert "Traceback" not in second.stderr
        assert first.kubeconfig.read_bytes() == kubeconfig
        assert first.kubectl("get", "namespace", "default", "-o", "name").stdout.strip() == "namespace/default"
        assert httpx.get(f"http://{first.registry}/v2/", timeout=5).status_code == 200
        first.stop()
        again.start()  # the lock went with the first process
        again.stop()
    finally:
        first.cleanup()
        again.cleanup()
