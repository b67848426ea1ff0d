"""OpenAPI schemas: generated from the models that validate, complete, and typed like Go decoding."""

from __future__ import annotations

import json

import pytest

from dockyard.api import errors, kinds, models
from dockyard.apiserver import openapi, schemas, typecheck


def _refs(node: object) -> set[str]:
    text = json.dumps(node)
    return {part.split('"')[0] for part in text.split('"$ref": "')[1:]}


def test_every_served_kind_has_a_schema_and_every_reference_resolves() -> None:
    for group, version in kinds.group_versions():
        doc = openapi.v3_document(group, version)
        assert doc is not None
        components = doc["components"]["schemas"]
        for ref in _refs(doc):
            assert ref.startswith("#/components/schemas/") and ref.split("/")[-1] in components, ref
        for info in kinds.RESOURCES:
            if (info.group, info.version) == (group, version):
                gvk = components[schemas.component_name(group, version, info.kind)]["x-kubernetes-group-version-kind"]
                assert gvk == [{"group": group, "version": version, "kind": info.kind}]
    v2 = openapi.v2_document()
    assert all(ref.startswith("#/definitions/") and ref.split("/")[-1] in v2["definitions"] for ref in _refs(v2))


def test_dockyard_schemas_come_from_the_pydantic_models() -> None:
    components = schemas.all_components()
    for kind, model in models.SPEC_MODELS.items():
        schema = components[f"dev.dockyard.v1alpha1.{model.__name__}"]
        fields = {f.alias or name for name, f in model.model_fields.items()}
        assert set(schema["properties"]) == fields, kind
    output = components["dev.dockyard.v1alpha1.BuildOutput"]
    assert output["required"] == ["to"] and output["description"].startswith("Where the built image is pushed")
    assert output["properties"]["to"]["allOf"] == [
        {"$ref": "#/components/schemas/dev.dockyard.v1alpha1.ObjectReference"}
    ]
    policy = components["dev.dockyard.v1alpha1.BuildConfigSpec"]["properties"]["runPolicy"]
    assert policy["enum"] == ["Serial", "Parallel", "SerialLatestOnly"] and policy["default"] == "Serial"
    deadline = components["dev.dockyard.v1alpha1.BuildConfigSpec"]["properties"]["completionDeadlineSeconds"]
    assert deadline == {
        "type": "integer",
        "minimum": 0,
        "exclusiveMinimum": True,
        "description": deadline["description"],
    }
    deployment = components["dev.dockyard.v1alpha1.ImageDeploySpec"]["properties"]["deployment"]
    assert deployment["allOf"] == [{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"}]


def test_core_kinds_are_typed_like_go_decoding() -> None:
    pod = kinds.by_kind("v1", "Pod")
    assert pod is not None
    good = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "a", "labels": {"x": "y"}},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "i",
                    "ports": [{"containerPort": 80}],
                    "resources": {"limits": {"cpu": 0.5, "memory": "1Gi"}},
                }
            ],
            "unknownField": {"kept": True},
        },
    }
    typecheck.check(pod, good)
    bad = json.loads(json.dumps(good))
    bad["spec"]["containers"][0]["image"] = 5
    with pytest.raises(errors.BadRequest) as err:
        typecheck.check(pod, bad)
    assert err.value.message == (
        'Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal number '
        "into Go struct field Pod.spec.containers[0].image of type string"
    )
    bad["spec"]["containers"] = {"name": "c"}
    with pytest.raises(errors.BadRequest):
        typecheck.check(pod, bad)
