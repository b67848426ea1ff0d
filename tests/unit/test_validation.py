"""Validation names the field path of every bad field (pure; no server)."""

import pytest

from dockyard.api import errors, kinds, validation

BC = kinds.by_kind("dockyard.dev/v1alpha1", "BuildConfig")
POD = kinds.by_kind("v1", "Pod")
PUSH = kinds.by_kind("dockyard.dev/v1alpha1", "Push")


def bc(spec):
    return {"apiVersion": "dockyard.dev/v1alpha1", "kind": "BuildConfig", "metadata": {"name": "hello"}, "spec": spec}


def causes(info, obj):
    with pytest.raises(errors.Invalid) as exc:
        validation.validate(info, obj)
    return exc.value


def test_missing_output_name_is_named_by_path():
    err = causes(BC, bc({"source": {"git": {"uri": "/src"}}, "output": {"to": {}}}))
    assert "spec.output.to.name: field required" in err.message
    assert err.code == 422
    assert err.to_status()["details"]["causes"][0]["field"] == "spec.output.to.name"


def test_unknown_spec_field_rejected():
    err = causes(BC, bc({"source": {"git": {"uri": "/src"}}, "output": {"to": {"name": "r/x:1"}}, "bogus": 1}))
    assert "spec.bogus" in err.message


def test_defaults_applied():
    out = validation.validate(BC, bc({"source": {"git": {"uri": "/src"}}, "output": {"to": {"name": "r/x:1"}}}))
    assert out["spec"]["runPolicy"] == "Serial"
    assert out["spec"]["output"]["to"]["kind"] == "DockerImage"
    assert out["spec"]["successfulBuildsHistoryLimit"] == 5


def test_bad_name():
    obj = bc({"source": {"git": {"uri": "/src"}}, "output": {"to": {"name": "r/x:1"}}})
    obj["metadata"]["name"] = "Bad_Name"
    assert "metadata.name" in causes(BC, obj).message


def test_context_dir_cannot_escape():
    err = causes(BC, bc({"source": {"git": {"uri": "/s"}, "contextDir": "../x"}, "output": {"to": {"name": "r/x"}}}))
    assert "spec.source.contextDir" in err.message


def test_push_image_reference():
    err = causes(PUSH, {"metadata": {"name": "p"}, "spec": {"podName": "p", "image": "http://bad ref"}})
    assert "spec.image" in err.message


def test_pod_checks():
    err = causes(POD, {"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "a", "image": "x", "ports": [{"containerPort": 80, "hostPort": 8080}]},
        {"name": "a", "ports": [{"containerPort": 81, "hostPort": 8080, "hostIP": "0.0.0.0"}]}]}})
    text = err.message
    assert "spec.containers[1].name" in text
    assert "spec.containers[1].image: field required" in text
    assert "spec.containers[1].ports[0].hostPort" in text
    assert "spec.containers[1].ports[0].hostIP" in text


def test_pod_without_containers():
    assert "spec.containers" in causes(POD, {"metadata": {"name": "p"}, "spec": {}}).message


@pytest.mark.parametrize(("sub_path", "why"), [("/etc", "must be a relative path"), ("a/../../x", "must not contain '..'"),
                                               ("..", "must not contain '..'")])
def test_pod_sub_path_must_descend(sub_path, why):
    err = causes(POD, {"metadata": {"name": "p"}, "spec": {
        "volumes": [{"name": "v", "emptyDir": {}}],
        "containers": [{"name": "a", "image": "x", "volumeMounts": [{"name": "v", "mountPath": "/m", "subPath": sub_path}]}]}})
    assert err.code == 422
    field = "spec.containers[0].volumeMounts[0].subPath"
    assert err.to_status()["details"]["causes"][0]["field"] == field
    assert why in err.message


def test_pod_sub_path_relative_is_accepted():
    validation.validate(POD, {"metadata": {"name": "p"}, "spec": {
        "volumes": [{"name": "v", "emptyDir": {}}],
        "containers": [{"name": "a", "image": "x", "volumeMounts": [{"name": "v", "mountPath": "/m", "subPath": "a/..b/c"}]}]}})
