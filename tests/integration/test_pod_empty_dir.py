"""``emptyDir`` ``medium: Memory`` and ``sizeLimit`` are honoured as the kubelet honours them: a Memory volume is
a tmpfs of ``sizeLimit`` bytes (a write past it fails with ENOSPC); a disk volume that grows past its
``sizeLimit`` gets its pod evicted (``Failed``, reason ``Evicted``, the kubelet's message).

Real parts: the API server, the node agent (node identity) and Podman, as in ``test_pod_secrets.py``.
"""

from __future__ import annotations

import pytest

from integration.test_pod_secrets import PODS, cluster, ended, run_pod, wait  # noqa: F401 (the fixture)

pytestmark = pytest.mark.e2e


def test_a_memory_empty_dir_is_a_tmpfs_of_its_size_limit(cluster: tuple) -> None:  # type: ignore[type-arg]
    http, image, _ = cluster
    checks = " && ".join(
        [
            "grep -q ' /cache tmpfs ' /proc/mounts",
            "dd if=/dev/zero of=/cache/a bs=1024 count=512 2>/dev/null",
            "! dd if=/dev/zero of=/cache/b bs=1024 count=1024 2>/dev/null",
            "touch /cache/c",  # world-writable, as an emptyDir
        ]
    )
    run_pod(
        http,
        "mem-pod",
        image,
        f"cat /proc/mounts | grep cache; {checks}",
        container={"volumeMounts": [{"name": "cache", "mountPath": "/cache"}]},
        volumes=[{"name": "cache", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}],
    )
    assert ended(http, "mem-pod") == "Succeeded"


def test_a_disk_empty_dir_past_its_size_limit_gets_the_pod_evicted(cluster: tuple) -> None:  # type: ignore[type-arg]
    http, image, _ = cluster
    run_pod(
        http,
        "big-pod",
        image,
        "dd if=/dev/zero of=/scratch/fill bs=1024 count=3072 && sleep 3600",
        container={"volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]},
        volumes=[{"name": "scratch", "emptyDir": {"sizeLimit": "1Mi"}}],
    )
    status = wait(
        lambda: (s := http.get(f"{PODS}/big-pod").json().get("status") or {}).get("phase") == "Failed" and s,
        "the eviction",
        timeout=60,
    )
    assert status["reason"] == "Evicted", status
    assert status["message"] == 'Usage of EmptyDir volume "scratch" exceeds the limit "1Mi". ', status
    assert wait(
        lambda: all(
            "terminated" in (c.get("state") or {})
            for c in (http.get(f"{PODS}/big-pod").json().get("status") or {}).get("containerStatuses") or [{}]
        ),
        "the container to stop",
        timeout=30,
    )


def test_a_volume_without_a_source_is_an_empty_dir(cluster: tuple) -> None:  # type: ignore[type-arg]
    """Kubernetes defaults a volume that names no source to ``emptyDir`` (``SetDefaults_Volume``); the API
    accepts it, so the agent runs it as one (a world-writable directory of the pod)."""
    http, image, _ = cluster
    run_pod(
        http,
        "bare-vol",
        image,
        'echo hi > /data/x && test "$(cat /data/x)" = hi && test "$(stat -c %a /data)" = 777',
        container={"volumeMounts": [{"name": "data", "mountPath": "/data"}]},
        volumes=[{"name": "data"}],
    )
    assert ended(http, "bare-vol") == "Succeeded"
