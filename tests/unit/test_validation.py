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


# --- probes (issue 8 item 2): each field honoured by the node agent's prober, or a 422 naming it -----------


def _probe_pod(probe_kind: str, probe: dict, ports: list | None = None) -> dict:
    container = {"name": "web", "image": "x", probe_kind: probe}
    if ports is not None:
        container["ports"] = ports
    return {"metadata": {"name": "p"}, "spec": {"containers": [container]}}


@pytest.mark.parametrize(
    ("kind", "probe", "field", "words"),
    [
        ("readinessProbe", {}, "spec.containers[0].readinessProbe", "must specify a handler type"),
        (
            "livenessProbe",
            {"exec": {"command": ["true"]}, "tcpSocket": {"port": 80}},
            "spec.containers[0].livenessProbe",
            "may not specify more than 1 handler type",
        ),
        ("livenessProbe", {"grpc": {"port": 80}}, "spec.containers[0].livenessProbe.grpc", "not supported"),
        (
            "readinessProbe",
            {"httpGet": {"port": 80, "host": "10.88.0.5"}},
            "spec.containers[0].readinessProbe.httpGet.host",
            "loopback",
        ),
        (
            "readinessProbe",
            {"tcpSocket": {"port": 80, "host": "example.com"}},
            "spec.containers[0].readinessProbe.tcpSocket.host",
            "loopback",
        ),
        (
            "readinessProbe",
            {"httpGet": {"port": 80, "scheme": "FTP"}},
            "spec.containers[0].readinessProbe.httpGet.scheme",
            "HTTP",
        ),
        ("readinessProbe", {"httpGet": {"port": 0}}, "spec.containers[0].readinessProbe.httpGet.port", "65535"),
        (
            "readinessProbe",
            {"httpGet": {"port": "metrics"}},
            "spec.containers[0].readinessProbe.httpGet.port",
            "metrics",
        ),
        ("readinessProbe", {"exec": {"command": []}}, "spec.containers[0].readinessProbe.exec.command", "required"),
        (
            "livenessProbe",
            {"exec": {"command": ["true"]}, "successThreshold": 2},
            "spec.containers[0].livenessProbe.successThreshold",
            "must be 1",
        ),
        (
            "startupProbe",
            {"exec": {"command": ["true"]}, "successThreshold": 3},
            "spec.containers[0].startupProbe.successThreshold",
            "must be 1",
        ),
        (
            "readinessProbe",
            {"exec": {"command": ["true"]}, "periodSeconds": -1},
            "spec.containers[0].readinessProbe.periodSeconds",
            "greater than or equal to 0",
        ),
        (
            "readinessProbe",
            {"exec": {"command": ["true"]}, "terminationGracePeriodSeconds": 5},
            "spec.containers[0].readinessProbe.terminationGracePeriodSeconds",
            "readiness",
        ),
        (
            "livenessProbe",
            {"exec": {"command": ["true"]}, "terminationGracePeriodSeconds": 0},
            "spec.containers[0].livenessProbe.terminationGracePeriodSeconds",
            "greater than 0",
        ),
        (
            "readinessProbe",
            {"httpGet": {"port": 80, "httpHeaders": [{"name": "bad header", "value": "x"}]}},
            "spec.containers[0].readinessProbe.httpGet.httpHeaders[0].name",
            "header",
        ),
        (
            "readinessProbe",
            {"exec": {"command": ["true"]}, "bogus": 1},
            "spec.containers[0].readinessProbe.bogus",
            "field not declared",
        ),
    ],
)
def test_probe_fields_the_prober_cannot_honour_are_refused_by_path(kind, probe, field, words):
    err = causes(POD, _probe_pod(kind, probe))
    fields = [c["field"] for c in err.to_status()["details"]["causes"]]
    assert field in fields, err.message
    assert words in err.message


def test_probes_the_prober_honours_are_accepted():
    pod = _probe_pod(
        "readinessProbe",
        {
            "httpGet": {
                "path": "/healthz",
                "port": "http",
                "host": "127.0.0.1",
                "scheme": "HTTPS",
                "httpHeaders": [{"name": "X-Probe", "value": "1"}],
            },
            "initialDelaySeconds": 2,
            "periodSeconds": 3,
            "timeoutSeconds": 2,
            "successThreshold": 2,
            "failureThreshold": 5,
        },
        ports=[{"containerPort": 8080, "name": "http"}],
    )
    c = pod["spec"]["containers"][0]
    c["livenessProbe"] = {"tcpSocket": {"port": 8080, "host": "localhost"}, "terminationGracePeriodSeconds": 3}
    c["startupProbe"] = {"exec": {"command": ["test", "-f", "/tmp/ready"]}, "failureThreshold": 30}
    validation.validate(POD, pod)


def test_probes_in_a_deployment_template_are_checked_too():
    dep = kinds.by_kind("apps/v1", "Deployment")
    obj = {
        "metadata": {"name": "d"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "w", "image": "x", "livenessProbe": {"grpc": {"port": 1}}}]},
            },
        },
    }
    assert "spec.template.spec.containers[0].livenessProbe.grpc" in causes(dep, obj).message


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("Web_1", "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"),
        ("8080", "must contain at least one letter (a-z)"),
        ("web--admin", "must not contain consecutive hyphens (-)"),
        ("-web", "must not begin or end with a hyphen (-)"),
        ("a-very-long-port-name", "must be no more than 15 characters"),
    ],
)
def test_names_of_ports_are_iana_service_names(name, words):
    """A container port's name, a probe's port and a Service's targetPort by name: ``IsValidPortName``."""
    container_port = causes(
        POD, _probe_pod("readinessProbe", {"tcpSocket": {"port": 80}}, [{"containerPort": 80, "name": name}])
    )
    assert "spec.containers[0].ports[0].name" in container_port.message and words in container_port.message
    probe = causes(POD, _probe_pod("readinessProbe", {"tcpSocket": {"port": name}}, [{"containerPort": 80}]))
    assert "spec.containers[0].readinessProbe.tcpSocket.port" in probe.message and words in probe.message
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"ports": [{"port": 80, "targetPort": name}]},
    }
    target = causes(kinds.by_kind("v1", "Service"), service)
    assert "spec.ports[0].targetPort" in target.message and words in target.message


def test_a_good_port_name_is_accepted_everywhere():
    pod = _probe_pod("readinessProbe", {"tcpSocket": {"port": "web-1"}}, [{"containerPort": 80, "name": "web-1"}])
    assert validation.validate(POD, pod)["spec"]["containers"][0]["ports"][0]["name"] == "web-1"
