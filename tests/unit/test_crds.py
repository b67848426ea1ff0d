"""``dockyard manifests crds``: structural schemas from the models, Tables as printer columns.

Structural rules: "Specifying a structural schema" of the CustomResourceDefinition task
(kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from dockyard.api import kinds, models
from dockyard.apiserver import columns, crds
from dockyard.cli.main import app

KINDS = [i.kind for i in kinds.RESOURCES if i.group == kinds.GROUP]
_IN_JUNCTORS = {"description", "type", "default", "additionalProperties", "nullable"}


def structural_problems(node: Any, path: str = "") -> list[str]:
    """Every violation of the structural-schema rules under ``node`` (empty if structural)."""
    problems: list[str] = []
    if not isinstance(node, dict):
        return [f"{path}: not a schema"]
    if "$ref" in node:
        problems.append(f"{path}: $ref")
    int_or_string = node.get("x-kubernetes-int-or-string") is True
    if "type" not in node and not int_or_string and node.get("x-kubernetes-preserve-unknown-fields") is not True:
        problems.append(f"{path}: no type")
    if "properties" in node and "additionalProperties" in node:
        problems.append(f"{path}: properties and additionalProperties")
    for junctor in ("allOf", "anyOf", "oneOf", "not"):
        if junctor not in node:
            continue
        options = node[junctor] if isinstance(node[junctor], list) else [node[junctor]]
        allowed = int_or_string and junctor == "anyOf" and options == [{"type": "integer"}, {"type": "string"}]
        if not allowed:
            for option in options:
                if _IN_JUNCTORS & set(option) or "properties" in option or "items" in option:
                    problems.append(f"{path}: {junctor} sets {sorted(_IN_JUNCTORS & set(option))}")
    if node.get("type") == "array" and "items" not in node:
        problems.append(f"{path}: array without items")
    for name, sub in (node.get("properties") or {}).items():
        problems += structural_problems(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        problems += structural_problems(node["items"], f"{path}[*]")
    if isinstance(node.get("additionalProperties"), dict):
        problems += structural_problems(node["additionalProperties"], f"{path}{{*}}")
    return problems


def _walk(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        return [node] + [n for v in node.values() for n in _walk(v)]
    if isinstance(node, list):
        return [n for v in node for n in _walk(v)]
    return []


@pytest.mark.parametrize("kind", KINDS)
def test_schema_is_structural(kind: str) -> None:
    schema = crds.crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert structural_problems(schema) == []
    assert schema["properties"]["metadata"] == {"type": "object"}  # metadata: nothing but type


def test_the_checker_catches_what_is_not_structural() -> None:
    assert structural_problems({"type": "object", "properties": {"a": {"description": "x"}}}) == [".a: no type"]
    assert structural_problems({"$ref": "#/x"})
    assert structural_problems({"anyOf": [{"type": "string"}, {"type": "object"}]})
    assert structural_problems({"type": "object", "properties": {}, "additionalProperties": {"type": "string"}})


def test_only_open_fields_preserve_unknown_fields() -> None:
    """preserve-unknown only where the model is open: dict[str, Any] fields (a trigger's imageChange and generic
    are typed: unknown fields in them are refused), ImageDeploy's DeploymentSpec
    (and its parts), the status objects (documentation models that keep unknown fields)."""
    opened = {}
    for kind in KINDS:
        spec = crds.crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        for name, prop in _named(spec, "spec"):
            if prop.get("x-kubernetes-preserve-unknown-fields"):
                opened.setdefault(kind, []).append(name)
    assert opened == {
        "Build": ["spec.triggeredBy[*]"],
        "ImageDeploy": [
            "spec.deployment",
            "spec.deployment.selector",
            "spec.deployment.template",
            "spec.deployment.template.spec",
            "spec.deployment.template.spec.containers[*]",
        ],
    }


def _named(node: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any]]]:
    out = [(path, node)]
    for name, sub in (node.get("properties") or {}).items():
        out += _named(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        out += _named(node["items"], f"{path}[*]")
    return out


def test_enums_defaults_and_descriptions_come_from_the_models() -> None:
    spec = crds.crd("BuildConfig")["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    run_policy = spec["properties"]["runPolicy"]
    assert run_policy["enum"] == ["Serial", "Parallel", "SerialLatestOnly"]
    assert run_policy["default"] == models.BuildConfigSpec.model_fields["runPolicy"].default
    assert run_policy["description"] == models.BuildConfigSpec.model_fields["runPolicy"].description.replace("``", "")
    assert spec["properties"]["successfulBuildsHistoryLimit"]["minimum"] == 0
    assert set(spec["required"]) == {"source", "output"}
    assert spec["properties"]["source"]["properties"]["type"]["enum"] == ["Git", "Binary", "Dockerfile"]
    assert spec["properties"]["source"]["properties"]["git"]["properties"]["ref"]["x-kubernetes-validations"]


def test_names_categories_subresources_and_columns() -> None:
    for kind in KINDS:
        info = next(i for i in kinds.RESOURCES if i.kind == kind)
        doc = crds.crd(kind)
        names = doc["spec"]["names"]
        assert doc["metadata"]["name"] == f"{info.plural}.{kinds.GROUP}"
        assert crds.CATEGORY in names["categories"]
        assert names.get("shortNames", []) == list(info.short_names)
        version = doc["spec"]["versions"][0]
        assert version["subresources"] == {"status": {}}
        table = [c for c in columns.columns(kind) if c.name != "Name"]
        printed = version["additionalPrinterColumns"]
        assert [(c["name"], c.get("priority", 0)) for c in printed] == [(c.name, c.priority) for c in table]
        for column in printed:
            assert re.match(r"^\.(metadata|spec|status)\.", column["jsonPath"]), column


def test_cli_prints_yaml_and_json() -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["manifests", "crds"])
    assert out.exit_code == 0, out.output
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert [d["spec"]["names"]["kind"] for d in docs] == KINDS
    out = runner.invoke(app, ["manifests", "crds", "-o", "json"])
    assert out.exit_code == 0, out.output
    listed = json.loads(out.stdout)
    assert listed["kind"] == "List" and [d["spec"]["names"]["kind"] for d in listed["items"]] == KINDS
    out = runner.invoke(app, ["manifests", "crds", "-o", "toml"])
    assert out.exit_code == 2 and "yaml or json" in out.output


# --- the CEL rules refuse what the models' validators refuse (evaluated with cel-python) -------------

CASES: dict[tuple[str, str], list[str]] = {
    ("GitBuildSource", "ref"): [
        "main",
        "v1.2.3",
        "feature/x",
        "abc123",
        "-x",
        "a..b",
        "a b",
        "a~1",
        "a^",
        "a:b",
        "a?",
        "a*",
        "a[",
        "a\\b",
        "@",
        "a@{1}",
        "/a",
        "a/",
        "a//b",
        "a.",
        ".a",
        "a/.b",
        "a.lock",
        "a.lock/b",
        "x\x01",
    ],
    ("GitBuildSource", "uri"): [
        "https://example.com/r.git",
        "ssh://git@h/r",
        "file:///srv/r",
        "git://h/r",
        "/srv/repo",
        "./r",
        "user@host:path",
        "ext::sh -c x",
        "fd::1",
        "-u",
        "foo://x",
        "HTTPS://h/r",
        "https://-h/r",
        "ssh://-u@h/r",
        "a\nb",
    ],
    ("BuildSource", "contextDir"): ["app", "a/b", "/abs", "..", "../x", "a/..", "a/../b", "a..b"],
    ("ObjectReference", "name"): ["127.0.0.1:5000/app:v1", "r/a@sha256:" + "0" * 64, "http://x/y", " x", "-x"],
    ("ImageSpec", "repository"): ["127.0.0.1:5000/app", "r/a@sha256:00", "x y"],
    ("ImageSpec", "interval"): ["30s", "1m30s", "500ms", "1.5h", "0s", "5", "m", "1d", ""],
}


def _model_accepts(model: str, field: str, value: str) -> bool:
    cls = getattr(models, model)
    info = cls.model_fields[field]
    validators = [d for d in cls.__pydantic_decorators__.field_validators.values() if field in d.info.fields]
    if info.metadata and any(getattr(m, "min_length", 0) and not value for m in info.metadata):
        return False
    try:
        for v in validators:
            v.func.__func__(cls, value)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("where", list(CASES))
def test_cel_rules_agree_with_the_model(where: tuple[str, str]) -> None:
    import celpy

    env = celpy.Environment()
    programs = [env.program(env.compile(rule["rule"])) for rule in crds.CEL_RULES[where]]
    for value in CASES[where]:

        def cel(v: str = value) -> bool:
            try:
                return all(bool(p.evaluate({"self": celpy.celtypes.StringType(v)})) for p in programs)
            except celpy.CELEvalError:
                return False  # an error is a refusal on the apiserver too

        expected = _model_accepts(*where, value)
        assert cel() == expected, (where, value)


@pytest.mark.parametrize("kind", KINDS)
def test_crd_validates_offline_against_the_kubernetes_schema(kind: str) -> None:
    import kubernetes_validate

    kubernetes_validate.validate(crds.crd(kind), "1.32.0", strict=True)
