"""One home per fact: keys, phase sets, time formats and the image-reference grammar live in ``dockyard.api``.

Greps the source tree, so a second spelling of a key (the way ``dockyard.dev/nodename`` once sat in five
files, and the build-pod test read ``"true"`` in one place and "present" in two) fails here, not in a cluster.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dockyard.api import buildpod, phases
from dockyard.api import labels as well_known

SRC = Path(well_known.__file__).resolve().parents[1]
HOME = {"labels": SRC / "api" / "labels.py", "phases": SRC / "api" / "phases.py", "timefmt": SRC / "api" / "timefmt.py"}


def _sources() -> list[tuple[Path, str]]:
    return [(p, p.read_text()) for p in sorted(SRC.rglob("*.py"))]


def _keys() -> list[str]:
    return sorted(
        {v for k, v in vars(well_known).items() if k.isupper() and isinstance(v, str) and k != "BUILD_POD_TRUE"}
    )


@pytest.mark.parametrize("key", _keys())
def test_each_key_is_spelled_only_in_api_labels(key: str) -> None:
    """A label or annotation key appears as a string literal only in ``api/labels.py``."""
    literal = re.compile(r"""(?<![\w.])["']""" + re.escape(key) + r"""["']""")
    found = [str(p.relative_to(SRC)) for p, text in _sources() if p != HOME["labels"] and literal.search(text)]
    assert found == [], f"{key!r} re-spelled in {found}: import it from dockyard.api.labels"


_PHASE = "|".join(
    sorted(
        {
            v
            for cls in (phases.PodPhase, phases.BuildPhase, phases.PushPhase)
            for k, v in vars(cls).items()
            if k.isupper()
        }
    )
)
_PHASE_SET = re.compile(rf"""[({{\[]\s*"(?:{_PHASE})"\s*,\s*"(?:{_PHASE})"\s*[,)}}\]]""")


def test_phase_sets_are_spelled_only_in_api_phases() -> None:
    """No tuple, set or list of phase names outside ``api/phases.py`` (terminal sets were spelled five times);
    ``typing.Literal`` annotations of the status models (``api/models.py``) must spell the values."""
    found = [
        str(p.relative_to(SRC))
        for p, text in _sources()
        if p != HOME["phases"] and any(_PHASE_SET.search(line) and "Literal[" not in line for line in text.splitlines())
    ]
    assert found == [], f"phase sets spelled in {found}: use dockyard.api.phases"


def test_rfc3339_format_is_spelled_only_in_api_timefmt() -> None:
    """``metav1.Time``'s wire format lives in ``api/timefmt.py`` (it was spelled in seven modules)."""
    found = [str(p.relative_to(SRC)) for p, text in _sources() if p != HOME["timefmt"] and "%Y-%m-%dT%H:%M:%S" in text]
    assert found == [], f"RFC 3339 format spelled in {found}: use dockyard.api.timefmt"


def test_the_build_pod_test_is_one_function() -> None:
    """Only ``api/buildpod.is_build_pod`` reads the build-pod label; the label "false" is an ordinary pod."""
    reads = re.compile(r"\.get\((?:buildpod\.BUILD_POD_LABEL|well_known\.BUILD_POD)\)|BUILD_POD_LABEL in ")
    found = [str(p.relative_to(SRC)) for p, text in _sources() if reads.search(text)]
    assert found == []
    pod = buildpod.build_pod(
        {"apiVersion": "dockyard.dev/v1alpha1", "metadata": {"name": "b-1", "namespace": "ns", "uid": "u"}, "spec": {}}
    )
    assert buildpod.is_build_pod(pod)
    assert pod["spec"]["runtimeClassName"] == buildpod.BUILD_RUNTIME_CLASS
    for value in ("false", "", "True", "yes"):
        pod["metadata"]["labels"][buildpod.BUILD_POD_LABEL] = value
        assert not buildpod.is_build_pod(pod), value
    assert not buildpod.is_build_pod({"metadata": {"labels": None}})
    assert not buildpod.is_build_pod({})


def test_api_and_agent_share_the_port_rules() -> None:
    """``tcp`` and ``TCP`` on one host port are one binding for the API (422) as for the agent (refused); the API
    also refuses the lower-case spelling itself, as Kubernetes' case-sensitive enum does."""
    from dockyard.agent import podspec
    from dockyard.api import validation

    spec = {
        "containers": [
            {
                "name": "a",
                "image": "busybox",
                "ports": [
                    {"containerPort": 80, "hostPort": 18080, "protocol": "TCP"},
                    {"containerPort": 81, "hostPort": 18080, "protocol": "tcp"},
                ],
            }
        ]
    }
    _, agent_errors = podspec.port_bindings(spec)
    assert [e.field for e in agent_errors] == ["spec.containers[0].ports[1].hostPort"]
    causes = validation._containers_causes(spec, "spec")
    assert [(c.field, c.type) for c in causes] == [
        ("spec.containers[0].ports[1].hostPort", "FieldValueDuplicate"),
        ("spec.containers[0].ports[1].protocol", "FieldValueNotSupported"),
    ]
    spec["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": 18080, "protocol": "ICMP"}]
    assert [e.field for e in podspec.port_bindings(spec)[1]] == ["spec.containers[0].ports[0].protocol"]
    assert [c.field for c in validation._containers_causes(spec, "spec")] == ["spec.containers[0].ports[0].protocol"]


def test_renamed_keys_are_read_under_their_legacy_names_too() -> None:
    from dockyard.api import labels as well_known

    old = {"metadata": {"labels": {"dockyard.dev/build": "b-1"}, "annotations": {"dockyard.dev/build-number": "7"}}}
    new = {"metadata": {"labels": {well_known.BUILD_NAME: "b-2", "dockyard.dev/build": "stale"}}}
    assert well_known.get(old, well_known.BUILD_NAME) == "b-1"
    assert well_known.get_annotation(old, well_known.BUILD_NUMBER) == "7"
    assert well_known.get(new, well_known.BUILD_NAME) == "b-2"  # the new key wins
    assert well_known.lookup({"dockyard.pod.uid": "u"}, well_known.CONTAINER_POD_UID) == "u"
    assert well_known.lookup(None, well_known.CONTAINER_POD_UID) is None
    assert well_known.CONTAINER_POD_NAME == "io.kubernetes.pod.name"  # the kubelet's key
