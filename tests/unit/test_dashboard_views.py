"""The dashboard's pure view helpers: status by text and icon, times, digests, rollback target, pod digest."""

from __future__ import annotations

from lightkube.models.core_v1 import Pod

from dockyard.api import objects
from dockyard.dashboard import views

REPO = "127.0.0.1:5000/hello"
D1, D2, D3 = ("sha256:" + c * 64 for c in "123")


def test_status_is_text_and_icon_never_colour_alone():
    for value, tone in (("Complete", "ok"), ("Failed", "bad"), ("Running", "busy"), ("Cancelled", "off")):
        s = views.status(value)
        assert (s.tone, s.text) == (tone, value) and s.icon
    assert views.status(None).text == "Unknown"
    assert views.status("SomethingNew").text == "SomethingNew"


def test_times_and_digests():
    assert views.seconds_text(None) == ""
    assert views.seconds_text(1.234) == "1.2s"
    assert views.seconds_text(75) == "1m 15s"
    assert views.seconds_text(3700) == "1h 1m"
    assert views.short_digest(f"{REPO}@{D1}") == "sha256:111111111111"
    assert views.short_digest(None) == ""


def _idp(**status) -> objects.ImageDeploy:
    return objects.parse(
        {
            "kind": "ImageDeploy",
            "metadata": {"name": "hello", "namespace": "default"},
            "spec": {
                "imageRef": {"name": "hello"},
                "deployment": {
                    "selector": {"matchLabels": {"app": "hello"}},
                    "template": {
                        "metadata": {"labels": {"app": "hello"}},
                        "spec": {"containers": [{"name": "web", "image": REPO}]},
                    },
                },
            },
            "status": status,
        },
        objects.ImageDeploy,
    )


def test_rollback_target_skips_the_current_and_quarantined_images():
    history = [{"image": f"{REPO}@{d}"} for d in (D3, D2, D1)]
    assert views.rollback_target(_idp(latestImage=f"{REPO}@{D3}", history=history)) == f"{REPO}@{D2}"
    failed = [{"image": f"{REPO}@{D2}", "reason": "CrashLoopBackOff"}]
    idp = _idp(latestImage=f"{REPO}@{D3}", history=history, failedImages=failed)
    assert views.rollback_target(idp) == f"{REPO}@{D1}"
    assert views.rollback_target(_idp(latestImage=f"{REPO}@{D3}", history=history[:1])) is None


def test_pod_digest_is_the_manifest_digest_of_the_spec_not_the_engine_image_id():
    pod = Pod.from_dict(
        {
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "side", "image": "x"}, {"name": "web", "image": f"{REPO}@{D1}"}]},
            "status": {
                "containerStatuses": [{"name": "web", "imageID": D2, "image": "", "ready": True, "restartCount": 0}]
            },
        }
    )
    assert views.pod_digest(pod, "web") == f"{REPO}@{D1}"
    assert views.pod_digest(pod, None) == "x"
