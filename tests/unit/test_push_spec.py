"""Push: what the API accepts (trigger, backoffLimit, image), and the agent's pure rules (back-off, reasons,
provenance labels). No server, no engine."""

from __future__ import annotations

import pytest

from dockyard.agent import pushes
from dockyard.agent.engine import errors as engine_errors
from dockyard.api import credentials, errors, kinds, phases, validation
from dockyard.api import labels as well_known
from dockyard.registry import errors as registry_errors

PUSH = kinds.by_kind("dockyard.dev/v1alpha1", "Push")


def push(**spec: object) -> dict[str, object]:
    return {"metadata": {"name": "p"}, "spec": {"podName": "web", "image": "127.0.0.1:5000/snap:1", **spec}}


def refused(obj: dict[str, object]) -> str:
    with pytest.raises(errors.Invalid) as exc:
        validation.validate(PUSH, obj)
    return exc.value.message


def test_on_exit_trigger_is_accepted_and_defaults_apply() -> None:
    out = validation.validate(PUSH, push(trigger="OnExit"))
    assert out["spec"]["trigger"] == phases.PushTrigger.ON_EXIT
    assert out["spec"]["backoffLimit"] == 3
    assert validation.validate(PUSH, push())["spec"]["trigger"] == phases.PushTrigger.IMMEDIATE


def test_unknown_trigger_and_negative_backoff_limit_are_named() -> None:
    assert "spec.trigger" in refused(push(trigger="Sometime"))
    assert "spec.backoffLimit" in refused(push(backoffLimit=-1))
    assert validation.validate(PUSH, push(backoffLimit=0))["spec"]["backoffLimit"] == 0


@pytest.mark.parametrize("image", ["127.0.0.1:5000/Upper/case:1", "127.0.0.1:5000/x@sha256:" + "a" * 64, "x:bad tag"])
def test_image_must_be_a_pushable_tag_reference(image: str) -> None:
    assert "spec.image" in refused(push(image=image))


def test_backoff_doubles_from_the_base_up_to_the_cap() -> None:
    assert [pushes.backoff_delay(n, base=10.0, cap=300.0) for n in (1, 2, 3, 4, 6)] == [10, 20, 40, 80, 300]
    assert pushes.backoff_delay(1, base=0.25, cap=1.0) == 0.25
    assert pushes.backoff_delay(40, base=10.0, cap=300.0) == 300


@pytest.mark.parametrize(
    ("err", "reason"),
    [
        (engine_errors.CommitFailed("commit of container x failed"), phases.PushReason.COMMIT_FAILED),
        (
            engine_errors.PushFailed("push of r/x:1 failed: unauthorized: authentication required"),
            phases.PushReason.AUTHENTICATION_FAILED,
        ),
        (engine_errors.PushFailed("push of r/x:1 failed: connection refused"), phases.PushReason.PUSH_FAILED),
        (
            engine_errors.PushFailed("push of 127.0.0.1:54013/x:1 failed: dial tcp 127.0.0.1:54013: connect: refused"),
            phases.PushReason.PUSH_FAILED,
        ),
        (
            engine_errors.PushFailed("push of r/x:1 failed: denied: requested access"),
            phases.PushReason.AUTHENTICATION_FAILED,
        ),
        (engine_errors.EngineError("engine connection failed during push"), phases.PushReason.PUSH_FAILED),
        (registry_errors.Unauthorized("401"), phases.PushReason.AUTHENTICATION_FAILED),
        (registry_errors.RegistryUnavailable("down"), phases.PushReason.PUSH_FAILED),
        (registry_errors.ManifestUnknown("404"), phases.PushReason.PUSH_FAILED),
        (registry_errors.InvalidReference("bad"), phases.PushReason.INVALID_IMAGE_REFERENCE),
        (credentials.CredentialError("secret 'x' not found"), phases.PushReason.AUTHENTICATION_FAILED),
    ],
)
def test_failures_map_to_typed_reasons(err: Exception, reason: str) -> None:
    assert pushes.failure_reason(err) == reason


def test_provenance_labels() -> None:
    labels = pushes.provenance_labels(
        namespace="ns",
        pod="web",
        container="app",
        base_name="127.0.0.1:5000/base:1",
        base_digest="sha256:" + "b" * 64,
        created="2026-01-02T03:04:05Z",
    )
    assert labels == {
        well_known.OCI_CREATED: "2026-01-02T03:04:05Z",
        well_known.OCI_BASE_NAME: "127.0.0.1:5000/base:1",
        well_known.OCI_BASE_DIGEST: "sha256:" + "b" * 64,
        well_known.SOURCE_POD: "ns/web",
        well_known.SOURCE_CONTAINER: "app",
    }
    unknown_base = pushes.provenance_labels(
        namespace="ns", pod="web", container="app", base_name="local", base_digest=None, created="t"
    )
    assert well_known.OCI_BASE_DIGEST not in unknown_base


def test_base_digest_prefers_the_repository_of_the_base_name() -> None:
    repo_digests = ["other/x@sha256:" + "1" * 64, "127.0.0.1:5000/base@sha256:" + "2" * 64]
    assert pushes.base_digest("127.0.0.1:5000/base:1", repo_digests) == "sha256:" + "2" * 64
    assert pushes.base_digest("elsewhere/y:1", repo_digests) == "sha256:" + "1" * 64
    assert pushes.base_digest("elsewhere/y:1", []) is None


def test_the_runtime_of_a_pods_container_comes_from_its_status() -> None:
    from lightkube.resources.core_v1 import Pod

    from dockyard.agent import pushes

    def pod(container_id: str | None, running: bool = True) -> Pod:
        status = {"name": "web", "ready": True, "restartCount": 0, "image": "i", "imageID": ""}
        if container_id is not None:
            status["containerID"] = container_id
        status["state"] = {"running": {"startedAt": "2026-11-30T00:00:00Z"}} if running else {"waiting": {}}
        return Pod.from_dict(
            {
                "metadata": {"name": "p"},
                "spec": {"containers": [{"name": "web"}]},
                "status": {"containerStatuses": [status]},
            }
        )

    assert pushes._reported_container(pod("containerd://abc"), "web") == ("containerd", "abc", True)
    assert pushes._reported_container(pod("docker://0123", running=False), "web") == ("docker", "0123", False)
    assert pushes._reported_container(pod(None), "web") == (None, None, False)
    assert pushes._reported_container(pod("docker://x"), "other") == (None, None, False)
    assert "containerd" not in pushes.COMMITTABLE_RUNTIMES and "podman" in pushes.COMMITTABLE_RUNTIMES
