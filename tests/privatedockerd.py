"""A private Docker Engine for tests: its own data root, exec root, pid file and socket under a test's
directory, as ENVIRONMENT.md describes, so it touches nothing another engine on the host uses.

Used by the Docker Engine e2e test and the build digest test; one home for how it starts and how it is
cleaned up (dockerd may leave its data root's overlay mounts behind).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker

import processes

START_TIMEOUT = 30.0
"""Seconds dockerd gets to answer ``/_ping``."""


@contextlib.contextmanager
def private_dockerd(root: Path, *, bridge: bool = True) -> Iterator[str]:
    """Run ``dockerd`` under ``root`` and yield its socket URL (``unix://ROOT/docker.sock``).

    Args:
        root: an empty directory of the test's own (removed afterwards).
        bridge: keep Docker's default bridge network (pods publish ports on 127.0.0.1 through it); ``False``
            starts it with ``--bridge=none --iptables=false --ip-masq=false`` (builds that only COPY need
            no network, and no iptables rule is written).

    Raises:
        AssertionError: dockerd is not installed, exits, or does not answer within :data:`START_TIMEOUT`
            (with the end of its log).
    """
    binary = shutil.which("dockerd")
    assert binary, "dockerd is missing: scripts/bootstrap.sh installs docker.io"
    sock = root / "docker.sock"
    argv = [binary, "--data-root", str(root / "data"), "--exec-root", str(root / "exec")]
    argv += ["--pidfile", str(root / "pid"), "-H", f"unix://{sock}"]
    if not bridge:
        argv += ["--bridge=none", "--iptables=false", "--ip-masq=false"]
    log = open(root / "dockerd.log", "wb")  # noqa: SIM115 — held by the child process
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with contextlib.closing(docker.DockerClient(base_url=f"unix://{sock}", timeout=10)) as client:
                    client.ping()
                break
            except Exception:
                assert proc.poll() is None, (root / "dockerd.log").read_text()[-2000:]
                assert time.monotonic() < deadline, f"dockerd did not answer within {START_TIMEOUT:.0f} s"
                time.sleep(0.2)
        yield f"unix://{sock}"
    finally:
        processes.stop(proc, grace=15)
        log.close()
        with open("/proc/self/mounts") as fh:  # dockerd may leave its data root's mounts behind
            mounts = [line.split()[1] for line in fh if line.split()[1].startswith(f"{root}/")]
        for mnt in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", mnt], capture_output=True, timeout=30)
        shutil.rmtree(root, ignore_errors=True)
