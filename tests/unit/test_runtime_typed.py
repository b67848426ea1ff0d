"""The runtime's typed helpers: conditions on ``models.Condition`` lists, kinds of typed classes."""

from __future__ import annotations

from lightkube.resources.core_v1 import Pod

from dockyard.api import models, objects
from dockyard.client import runtime

OLD = "2020-01-01T00:00:00Z"


def test_with_condition_adds_a_missing_condition() -> None:
    out = runtime.with_condition([], "Succeeded", False, "Pending", "build pod created")
    assert [c.model_dump(exclude_none=True) | {"lastTransitionTime": None} for c in out] == [
        {"type": "Succeeded", "status": "False", "reason": "Pending", "message": "build pod created",
         "lastTransitionTime": None}
    ]  # fmt: skip
    assert out[0].lastTransitionTime


def test_with_condition_moves_the_transition_time_only_when_the_status_flips() -> None:
    before = [
        models.Condition(type="Ready", status="True", lastTransitionTime=OLD),
        models.Condition(type="Succeeded", status="False", reason="Pending", lastTransitionTime=OLD),
    ]
    same = runtime.with_condition(before, "Succeeded", False, "Running")
    assert (same[1].reason, same[1].lastTransitionTime) == ("Running", OLD)
    flipped = runtime.with_condition(before, "Succeeded", True, "Complete", "done")
    assert (flipped[1].status, flipped[1].message) == ("True", "done")
    assert flipped[1].lastTransitionTime != OLD
    assert flipped[0] is before[0]  # other types untouched
    assert (before[1].status, before[1].reason) == ("False", "Pending")  # the argument is not modified


def test_with_condition_dumps_as_set_condition_writes() -> None:
    wire = [{"type": "Succeeded", "status": "False", "reason": "Pending", "message": "", "lastTransitionTime": OLD}]
    typed = [models.Condition.model_validate(c) for c in wire]
    assert [objects.to_dict(c) for c in runtime.with_condition(typed, "Succeeded", False, "Running")] == (
        runtime.set_condition(wire, "Succeeded", False, "Running")
    )


def test_kind_of_typed_classes() -> None:
    assert runtime.kind_of(objects.Build) == "Build"
    assert runtime.kind_of(objects.BuildConfig) == "BuildConfig"
    assert runtime.kind_of(Pod) == "Pod"
