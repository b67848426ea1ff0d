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
    err = causes(
        POD,
        {
            "metadata": {"name": "p"},
            "spec": {
                "containers": [
                    {"name": "a", "image": "x", "ports": [{"containerPort": 80, "hostPort": 8080}]},
                    {"name": "a", "ports": [{"containerPort": 81, "hostPort": 8080, "hostIP": "0.0.0.0"}]},
                ]
            },
        },
    )
    text = err.message
    assert "spec.containers[1].name" in text
    assert "spec.containers[1].image: field required" in text
    assert "spec.containers[1].ports[0].hostPort" in text
    assert "spec.containers[1].ports[0].hostIP" in text


def test_pod_without_containers():
    assert "spec.containers" in causes(POD, {"metadata": {"name": "p"}, "spec": {}}).message


@pytest.mark.parametrize(
    ("sub_path", "why"),
    [("/etc", "must be a relative path"), ("a/../../x", "must not contain '..'"), ("..", "must not contain '..'")],
)
def test_pod_sub_path_must_descend(sub_path, why):
    err = causes(
        POD,
        {
            "metadata": {"name": "p"},
            "spec": {
                "volumes": [{"name": "v", "emptyDir": {}}],
                "containers": [
                    {"name": "a", "image": "x", "volumeMounts": [{"name": "v", "mountPath": "/m", "subPath": sub_path}]}
                ],
            },
        },
    )
    assert err.code == 422
    field = "spec.containers[0].volumeMounts[0].subPath"
    assert err.to_status()["details"]["causes"][0]["field"] == field
    assert why in err.message


def test_pod_sub_path_relative_is_accepted():
    validation.validate(
        POD,
        {
            "metadata": {"name": "p"},
            "spec": {
                "volumes": [{"name": "v", "emptyDir": {}}],
                "containers": [
                    {
                        "name": "a",
                        "image": "x",
                        "volumeMounts": [{"name": "v", "mountPath": "/m", "subPath": "a/..b/c"}],
                    }
                ],
            },
        },
    )


def _pod_with(pod_spec=None, sc=None):
    container = {"name": "a", "image": "x"}
    if sc is not None:
        container["securityContext"] = sc
    return {"metadata": {"name": "p"}, "spec": {"containers": [container], **(pod_spec or {})}}


@pytest.mark.parametrize(
    ("pod_spec", "sc", "field"),
    [
        (
            {},
            {"seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}},
            "spec.containers[0].securityContext.seccompProfile.type",
        ),
        (
            {"securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}}},
            None,
            "spec.securityContext.seccompProfile.type",
        ),
        (
            {},
            {"seccompProfile": {"type": "RuntimeDefault", "localhostProfile": "p.json"}},
            "spec.containers[0].securityContext.seccompProfile.localhostProfile",
        ),
        (
            {},
            {"appArmorProfile": {"type": "Localhost", "localhostProfile": "k"}},
            "spec.containers[0].securityContext.appArmorProfile.type",
        ),
        ({}, {"seLinuxOptions": {"type": "container_t"}}, "spec.containers[0].securityContext.seLinuxOptions"),
        ({"securityContext": {"seLinuxOptions": {"level": "s0:c1,c2"}}}, None, "spec.securityContext.seLinuxOptions"),
        ({"securityContext": {"seLinuxChangePolicy": "Recursive"}}, None, "spec.securityContext.seLinuxChangePolicy"),
        ({}, {"windowsOptions": {"runAsUserName": "x"}}, "spec.containers[0].securityContext.windowsOptions"),
        ({"securityContext": {"windowsOptions": {"hostProcess": False}}}, None, "spec.securityContext.windowsOptions"),
        ({}, {"procMount": "Unmasked"}, "spec.containers[0].securityContext.procMount"),
        ({"hostNetwork": True}, None, "spec.hostNetwork"),
        ({"hostPID": True}, None, "spec.hostPID"),
        ({"hostIPC": True}, None, "spec.hostIPC"),
        ({"hostUsers": False}, None, "spec.hostUsers"),
        (
            {"securityContext": {"supplementalGroupsPolicy": "Strict"}},
            None,
            "spec.securityContext.supplementalGroupsPolicy",
        ),
        ({"securityContext": {"fsGroupChangePolicy": "Never"}}, None, "spec.securityContext.fsGroupChangePolicy"),
        (
            {"securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "1"}]}},
            None,
            "spec.securityContext.sysctls[0].name",
        ),
        ({"securityContext": {"runAsUser": -1}}, None, "spec.securityContext.runAsUser"),
        ({"securityContext": {"supplementalGroups": [5, "x"]}}, None, "spec.securityContext.supplementalGroups[1]"),
        ({"securityContext": {"fsGroup": True}}, None, "spec.securityContext.fsGroup"),
        ({"securityContext": {"bogus": 1}}, None, "spec.securityContext.bogus"),
        ({}, {"bogus": 1}, "spec.containers[0].securityContext.bogus"),
        ({}, {"runAsGroup": 2**31}, "spec.containers[0].securityContext.runAsGroup"),
        ({}, {"privileged": "yes"}, "spec.containers[0].securityContext.privileged"),
        ({}, {"capabilities": {"add": ["NOT_A_CAP"]}}, "spec.containers[0].securityContext.capabilities.add[0]"),
        ({}, {"capabilities": {"drop": "ALL"}}, "spec.containers[0].securityContext.capabilities.drop"),
        ({}, {"allowPrivilegeEscalation": False, "privileged": True}, "spec.containers[0].securityContext"),
        (
            {},
            {"allowPrivilegeEscalation": False, "capabilities": {"add": ["SYS_ADMIN"]}},
            "spec.containers[0].securityContext",
        ),
    ],
)
def test_security_fields_the_agent_cannot_honour_are_refused_by_path(pod_spec, sc, field):
    err = causes(POD, _pod_with(pod_spec, sc))
    assert err.code == 422
    assert [c["field"] for c in err.to_status()["details"]["causes"]] == [field], err.message


def test_security_fields_the_agent_honours_are_accepted():
    validation.validate(
        POD,
        _pod_with(
            {
                "shareProcessNamespace": True,
                "hostNetwork": False,
                "hostPID": False,
                "hostIPC": False,
                "hostUsers": True,
                "securityContext": {
                    "runAsUser": 1000,
                    "runAsGroup": 1000,
                    "runAsNonRoot": True,
                    "fsGroup": 2000,
                    "fsGroupChangePolicy": "OnRootMismatch",
                    "supplementalGroups": [3000, 3001],
                    "supplementalGroupsPolicy": "Merge",
                    "seccompProfile": {"type": "RuntimeDefault"},
                    "appArmorProfile": {"type": "RuntimeDefault"},
                    "sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}],
                },
            },
            {
                "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE", "CAP_CHOWN"]},
                "privileged": False,
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "procMount": "Default",
                "runAsUser": 1001,
                "runAsGroup": 1001,
                "runAsNonRoot": True,
                "seccompProfile": {"type": "Unconfined"},
                "appArmorProfile": {"type": "Unconfined"},
            },
        ),
    )
    validation.validate(POD, _pod_with(sc={"privileged": True, "capabilities": {"add": ["ALL"]}}))


def test_deployment_template_security_fields_are_checked():
    deployment = kinds.by_kind("apps/v1", "Deployment")
    err = causes(
        deployment,
        {
            "metadata": {"name": "d"},
            "spec": {
                "selector": {"matchLabels": {"a": "b"}},
                "template": {"metadata": {"labels": {"a": "b"}}, "spec": _pod_with({"hostPID": True})["spec"]},
            },
        },
    )
    assert err.to_status()["details"]["causes"][0]["field"] == "spec.template.spec.hostPID"


@pytest.mark.parametrize(
    ("value", "container", "message"),
    [
        ("localhost/k8s-profile", "a", 'Unsupported value: "localhost/k8s-profile"'),
        ("unconfined", "ghost", "container not found"),
    ],
)
def test_app_armor_annotation_is_checked(value, container, message):
    pod = _pod_with()
    key = f"container.apparmor.security.beta.kubernetes.io/{container}"
    pod["metadata"]["annotations"] = {key: value}
    err = causes(POD, pod)
    assert err.to_status()["details"]["causes"][0]["field"] == f"metadata.annotations[{key}]"
    assert message in err.message
    pod["metadata"]["annotations"] = {"container.apparmor.security.beta.kubernetes.io/a": "runtime/default"}
    validation.validate(POD, pod)


def test_init_and_ephemeral_containers_are_refused_not_ignored() -> None:
    pod_info = kinds.by_kind("v1", "Pod")
    for key in ("initContainers", "ephemeralContainers"):
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], key: [{"name": "i", "image": "busybox"}]},
        }
        with pytest.raises(errors.Invalid) as caught:
            validation.validate(pod_info, pod)
        assert [c.field for c in caught.value.causes] == [f"spec.{key}"]
