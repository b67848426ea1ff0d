"""The CRD refuses what the BuildConfig model refuses (Kubernetes mode): image reference kinds (DockerImage, a
registry reference; Image, the name of an Image) and namespaces, what each source and trigger type needs.

Each case is checked twice: by the model (the embedded server's validation) and by the CustomResourceDefinition
schema as kube-apiserver applies it (structural defaults, then the schema's enums/lengths/patterns, then its
``x-kubernetes-validations`` CEL rules, evaluated with cel-python). Both must agree.
"""

from __future__ import annotations

import copy
from typing import Any

import pydantic
import pytest

from dockyard.api import models
from dockyard.apiserver import celrules, crds, structural

TO = {"kind": "DockerImage", "name": "127.0.0.1:5000/app:latest"}
GIT = {"uri": "https://example.com/r.git"}
FROM_IMAGE = {"dockerStrategy": {"from": {"kind": "Image", "name": "base"}}}
BASE: dict[str, Any] = {"source": {"type": "Dockerfile", "dockerfile": "FROM scratch\n"}, "output": {"to": TO}}


def spec(**fields: Any) -> dict[str, Any]:
    out = copy.deepcopy(BASE)
    out.update(copy.deepcopy(fields))
    return out


CASES: list[tuple[dict[str, Any], bool]] = [
    (spec(), True),
    (spec(output={"to": {"name": TO["name"]}}), True),
    (spec(output={"to": {**TO, "kind": "Image"}}), False),  # an Image's name, not a registry reference
    (spec(output={"to": {"kind": "Image", "name": "app"}}), True),
    (spec(output={"to": {"kind": "Image", "name": "app", "namespace": "other"}}), False),
    (spec(output={"to": {**TO, "kind": "ImageStreamTag"}}), False),
    (spec(output={"to": {**TO, "namespace": "other"}}), False),
    (spec(output={"to": {**TO, "namespace": ""}}), True),
    (spec(strategy={"dockerStrategy": {"from": {"kind": "Image", "name": "base"}}}), True),
    (spec(strategy={"dockerStrategy": {"from": {"kind": "Image", "name": "r/base:1"}}}), False),
    (spec(strategy={"dockerStrategy": {"from": {"kind": "ImageStreamTag", "name": "base"}}}), False),
    (spec(strategy={"dockerStrategy": {"from": {"kind": "DockerImage", "name": "r/base:1"}}}), True),
    (spec(source={"type": "Git", "git": GIT}), True),
    (spec(source={"git": GIT, "dockerfile": "FROM scratch\n"}), True),
    (spec(source={"type": "Git"}), False),
    (spec(source={}), False),
    (spec(source={"type": "Binary"}), True),
    (spec(source={"type": "Binary", "git": GIT}), False),
    (spec(source={"type": "Dockerfile"}), False),
    (spec(source={"type": "Dockerfile", "dockerfile": ""}), False),
    (spec(source={"type": "Dockerfile", "dockerfile": "FROM scratch\n", "git": GIT}), False),
    (spec(source={"type": "Git", "git": GIT, "sourceSecret": {"name": "creds"}}), True),
    (spec(source={"type": "Binary", "sourceSecret": {"name": "creds"}}), False),  # nothing is cloned
    (spec(source={"type": "Dockerfile", "dockerfile": "FROM scratch\n", "sourceSecret": {"name": "creds"}}), False),
    (spec(triggers=[{"type": "ConfigChange"}]), True),
    (spec(triggers=[{"type": "ImageChange", "imageChange": {"from": {"name": "base"}}}]), True),
    (spec(triggers=[{"type": "ImageChange", "imageChange": {"from": {"kind": "Image", "name": "base"}}}]), True),
    (spec(triggers=[{"type": "ImageChange", "imageChange": {"from": {"kind": "DockerImage", "name": "base"}}}]), False),
    (spec(triggers=[{"type": "ImageChange", "imageChange": {"from": {"name": "base", "namespace": "o"}}}]), False),
    (spec(triggers=[{"type": "ImageChange", "imageChange": {"from": {"name": "Base_1"}}}]), False),
    (spec(triggers=[{"type": "ImageChange", "imageChange": {}}]), False),
    # without from, an ImageChange trigger follows dockerStrategy.from when that is an Image (OpenShift's default)
    (spec(triggers=[{"type": "ImageChange", "imageChange": {}}], strategy=FROM_IMAGE), True),
    (
        spec(
            triggers=[{"type": "ConfigChange"}, {"type": "ImageChange", "imageChange": {}}],
            strategy={"dockerStrategy": {"from": {"kind": "DockerImage", "name": "r/base:1"}}},
        ),
        False,
    ),
    (spec(triggers=[{"type": "ImageChange"}]), False),
    (spec(triggers=[{"type": "Generic", "generic": {"secret": "s"}}]), True),
    (spec(triggers=[{"type": "Generic", "generic": {"secretReference": {"name": "hook"}}}]), True),
    (spec(triggers=[{"type": "Generic", "generic": {"secret": "", "secretReference": {"name": "hook"}}}]), True),
    (spec(triggers=[{"type": "Generic", "generic": {}}]), False),
    (spec(triggers=[{"type": "Generic", "generic": {"secret": ""}}]), False),
    (spec(triggers=[{"type": "Generic"}]), False),
    (spec(triggers=[{"type": "ConfigChange", "generic": {"secret": "s"}}]), False),
    (spec(triggers=[{"type": "Generic", "generic": {"secret": "s"}, "imageChange": {"from": {"name": "b"}}}]), False),
]


def model_accepts(kind: str, body: dict[str, Any]) -> bool:
    try:
        models.SPEC_MODELS[kind].model_validate(body)
    except pydantic.ValidationError:
        return False
    return True


def crd_accepts(kind: str, body: dict[str, Any]) -> bool:
    schema = crds.crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    obj = {"apiVersion": "dockyard.dev/v1alpha1", "kind": kind, "metadata": {"name": "x"}, "spec": copy.deepcopy(body)}
    structural.apply_defaults(obj, schema)
    return not structural.validate(obj, schema) and not celrules.causes(obj, schema)


@pytest.mark.parametrize("kind", ["BuildConfig", "Build"])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_the_crd_and_the_model_agree(kind: str, case: int) -> None:
    body, ok = CASES[case]
    if kind == "Build" and "triggers" in body:
        pytest.skip("a Build has no triggers")
    assert model_accepts(kind, body) == ok, body
    assert crd_accepts(kind, body) == ok, body


def test_a_stored_image_change_status_still_reads() -> None:
    """``status.imageChangeTriggers[].from`` names the Image followed (kind Image), as the controller writes it."""
    status = models.BuildConfigStatus.model_validate(
        {"imageChangeTriggers": [{"from": {"kind": "Image", "name": "base"}, "lastTriggeredImageID": "r@sha256:1"}]}
    )
    assert status.imageChangeTriggers[0].from_ is not None and status.imageChangeTriggers[0].from_.name == "base"


def test_an_image_change_trigger_without_from_names_its_from() -> None:
    """The cause is ``spec.triggers[i].imageChange.from``, as for any required field, on the embedded server."""
    body = spec(triggers=[{"type": "ConfigChange"}, {"type": "ImageChange", "imageChange": {}}])
    with pytest.raises(pydantic.ValidationError) as caught:
        models.SPEC_MODELS["BuildConfig"].model_validate(body)
    errors = caught.value.errors()
    assert [e["loc"] for e in errors] == [("triggers", 1, "imageChange", "from")], errors
    assert "dockerStrategy.from" in errors[0]["msg"], errors
