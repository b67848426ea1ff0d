"""The columns kubectl prints for each kind (server-side Table cells)."""

from __future__ import annotations

import datetime as dt

from dockyard.apiserver import columns


def ago(seconds: int) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def cells(kind: str, obj: dict, *, wide: bool = False) -> dict[str, object]:
    return {c.name: c.cell(obj) for c in columns.columns(kind) if wide or c.priority == 0}


def test_build_columns_follow_oc_get_builds() -> None:
    build = {
        "metadata": {"name": "hello-2", "creationTimestamp": ago(600)},
        "spec": {
            "source": {"type": "Git", "git": {"uri": "x"}},
            "strategy": {"type": "Docker"},
            "revision": {"git": {"commit": "0123456789abcdef"}},
        },
        "status": {
            "phase": "Complete",
            "startTimestamp": ago(300),
            "completionTimestamp": ago(240),
            "duration": 61_500_000_000,
            "output": {"to": {"imageDigest": "sha256:" + "ab" * 32}},
        },
    }
    got = cells("Build", build)
    assert list(got) == ["Name", "Type", "From", "Status", "Started", "Duration", "Digest", "Age"]
    assert got["Type"] == "Docker" and got["From"] == "Git@0123456" and got["Status"] == "Complete"
    assert got["Started"] == "5m ago" and got["Duration"] == "61s" and got["Digest"] == "sha256:abababababab"
    failed = {
        "metadata": {"name": "b"},
        "spec": {"source": {"type": "Binary"}},
        "status": {"phase": "Failed", "reason": "FetchSourceFailed"},
    }
    assert cells("Build", failed)["Status"] == "Failed (FetchSourceFailed)"
    assert cells("Build", failed)["From"] == "Binary" and cells("Build", failed)["Duration"] == ""


def test_pod_columns_and_wide() -> None:
    pod = {
        "metadata": {"name": "web", "creationTimestamp": ago(30)},
        "spec": {"nodeName": "vm", "containers": [{"name": "a"}, {"name": "b"}]},
        "status": {
            "phase": "Running",
            "podIP": "127.0.0.1",
            "containerStatuses": [
                {
                    "name": "a",
                    "ready": True,
                    "restartCount": 2,
                    "lastState": {"terminated": {"finishedAt": ago(120)}},
                    "state": {"running": {}},
                },
                {"name": "b", "ready": False, "restartCount": 0, "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
            ],
        },
    }
    assert cells("Pod", pod) == {
        "Name": "web",
        "Ready": "1/2",
        "Status": "CrashLoopBackOff",
        "Restarts": "2 (2m ago)",
        "Age": "30s",
    }
    wide = cells("Pod", pod, wide=True)
    assert wide["IP"] == "127.0.0.1" and wide["Node"] == "vm"
    assert cells("Pod", {"metadata": {"deletionTimestamp": ago(1)}})["Status"] == "Terminating"


def test_event_columns() -> None:
    ev = {
        "metadata": {"name": "hello-1.abc"},
        "type": "Warning",
        "reason": "BuildFailed",
        "message": "boom",
        "involvedObject": {"kind": "Build", "name": "hello-1"},
        "count": 3,
        "firstTimestamp": ago(600),
        "lastTimestamp": ago(60),
        "source": {"component": "build-controller"},
    }
    got = cells("Event", ev)
    assert got == {
        "Last Seen": "60s (x3 over 10m)",
        "Type": "Warning",
        "Reason": "BuildFailed",
        "Object": "build/hello-1",
        "Message": "boom",
    }


def test_dockyard_kinds_columns() -> None:
    image = {
        "metadata": {"name": "app"},
        "spec": {"repository": "127.0.0.1:5000/app", "tag": "v1"},
        "status": {"latestDigest": "sha256:" + "1" * 64},
    }
    assert cells("Image", image)["Latest Digest"] == "sha256:111111111111" and cells("Image", image)["Tag"] == "v1"
    idp = {
        "metadata": {"name": "app"},
        "spec": {"imageRef": {"name": "app"}},
        "status": {
            "latestImage": "127.0.0.1:5000/app@sha256:" + "2" * 64,
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }
    assert cells("ImageDeploy", idp)["Image"] == "127.0.0.1:5000/app@sha256:222222222222"
    assert cells("ImageDeploy", idp)["Ready"] == "True"
    push = {"metadata": {"name": "p"}, "spec": {"podName": "web", "image": "r/x:1"}, "status": {}}
    assert cells("Push", push)["Phase"] == "Pending" and cells("Push", push)["Pod"] == "web"
    failed = {
        "metadata": {"name": "p"},
        "spec": {"podName": "web", "image": "r/x:1", "trigger": "OnExit"},
        "status": {"phase": "Failed", "reason": "PushImageToRegistryFailed", "attempts": 4},
    }
    row = cells("Push", failed, wide=True)
    assert (row["Reason"], row["Attempts"], row["Trigger"]) == ("PushImageToRegistryFailed", "4", "OnExit")
    bc = {
        "metadata": {"name": "hello"},
        "spec": {"source": {"type": "Git", "git": {"ref": "main"}}},
        "status": {"lastVersion": 4},
    }
    assert cells("BuildConfig", bc) == {"Name": "hello", "Type": "Docker", "From": "Git@main", "Latest": "4"}
    assert cells("Secret", {"metadata": {"name": "s"}, "type": "Opaque", "data": {"a": "b"}})["Data"] == 1
