"""The Pod Security Standards checks, one by one, with the messages of k8s.io/pod-security-admission/policy."""

from __future__ import annotations

from typing import Any

import pytest

from dockyard.api import buildpod
from dockyard.api import podsecurity as ps


def _spec(*containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"containers": list(containers), **spec}


def _c(name: str, **sc: Any) -> dict[str, Any]:
    return {"name": name, "image": "x", **({"securityContext": sc} if sc else {})}


CASES = [
    (
        ps.check_host_namespaces,
        {},
        _spec(_c("a"), hostNetwork=True, hostIPC=True),
        ("host namespaces", "hostNetwork=true, hostIPC=true"),
    ),
    (
        ps.check_privileged,
        {},
        _spec(_c("a", privileged=True), _c("b", privileged=True), _c("c", privileged=False)),
        ("privileged", 'containers "a", "b" must not set securityContext.privileged=true'),
    ),
    (
        ps.check_capabilities_baseline,
        {},
        _spec(_c("a", capabilities={"add": ["NET_RAW", "CHOWN", "SYS_ADMIN"]})),
        (
            "non-default capabilities",
            'container "a" must not include "NET_RAW", "SYS_ADMIN" in securityContext.capabilities.add',
        ),
    ),
    (
        ps.check_host_path_volumes,
        {},
        _spec(_c("a"), volumes=[{"name": "a", "hostPath": {"path": "/"}}, {"name": "b", "hostPath": {"path": "/x"}}]),
        ("hostPath volumes", 'volumes "a", "b"'),
    ),
    (
        ps.check_host_ports,
        {},
        _spec({"name": "a", "ports": [{"containerPort": 1, "hostPort": 9100}, {"containerPort": 2, "hostPort": 10}]}),
        ("hostPort", 'container "a" uses hostPorts 10, 9100'),
    ),
    (
        ps.check_host_probes_and_host_lifecycle,
        {},
        _spec({"name": "a", "livenessProbe": {"httpGet": {"host": "10.0.0.1", "port": 80}}}),
        ("probe or lifecycle host", 'container "a" uses probe or lifecycle host "10.0.0.1"'),
    ),
    (
        ps.check_app_armor_profile,
        {},
        _spec(_c("a", appArmorProfile={"type": "Unconfined"})),
        ("forbidden AppArmor profile", 'container "a" must not set AppArmor profile type to "Unconfined"'),
    ),
    (
        ps.check_se_linux_options,
        {},
        _spec(_c("a", seLinuxOptions={"type": "spc_t", "user": "u"})),
        (
            "seLinuxOptions",
            'container "a" set forbidden securityContext.seLinuxOptions: type "spc_t"; user may not be set',
        ),
    ),
    (
        ps.check_proc_mount,
        {},
        _spec(_c("a", procMount="Unmasked")),
        ("procMount", 'container "a" must not set securityContext.procMount to "Unmasked"'),
    ),
    (
        ps.check_seccomp_profile_baseline,
        {},
        _spec(_c("a"), securityContext={"seccompProfile": {"type": "Unconfined"}}),
        ("seccompProfile", 'pod must not set securityContext.seccompProfile.type to "Unconfined"'),
    ),
    (
        ps.check_sysctls,
        {},
        _spec(_c("a"), securityContext={"sysctls": [{"name": "kernel.msgmax"}, {"name": "net.ipv4.tcp_rmem"}]}),
        ("forbidden sysctls", "kernel.msgmax"),
    ),
    (
        ps.check_windows_host_process,
        {},
        _spec(_c("a", windowsOptions={"hostProcess": True})),
        ("hostProcess", 'container "a" must not set securityContext.windowsOptions.hostProcess=true'),
    ),
    (
        ps.check_allow_privilege_escalation,
        {},
        _spec(_c("a"), _c("b", allowPrivilegeEscalation=False)),
        ("allowPrivilegeEscalation != false", 'container "a" must set securityContext.allowPrivilegeEscalation=false'),
    ),
    (
        ps.check_capabilities_restricted,
        {},
        _spec(_c("a", capabilities={"drop": ["ALL"], "add": ["SYS_TIME"]}), _c("b")),
        (
            "unrestricted capabilities",
            'container "b" must set securityContext.capabilities.drop=["ALL"]; '
            'container "a" must not include "SYS_TIME" in securityContext.capabilities.add',
        ),
    ),
    (
        ps.check_restricted_volumes,
        {},
        _spec(
            _c("a"),
            volumes=[{"name": "h", "hostPath": {"path": "/"}}, {"name": "e", "emptyDir": {}}, {"name": "n", "nfs": {}}],
        ),
        ("restricted volume types", 'volumes "h", "n" use restricted volume types "hostPath", "nfs"'),
    ),
    (
        ps.check_run_as_non_root,
        {},
        _spec(_c("a", runAsNonRoot=False), _c("b")),
        ("runAsNonRoot != true", 'container "a" must not set securityContext.runAsNonRoot=false'),
    ),
    (
        ps.check_run_as_user,
        {},
        _spec(_c("a", runAsUser=0), securityContext={"runAsUser": 0}),
        ("runAsUser=0", 'pod and container "a" must not set runAsUser=0'),
    ),
    (
        ps.check_seccomp_profile_restricted,
        {},
        _spec(_c("a")),
        (
            "seccompProfile",
            'pod or container "a" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"',
        ),
    ),
]


@pytest.mark.parametrize(("check", "meta", "spec", "expected"), CASES, ids=[c[0].__name__ for c in CASES])
def test_each_check_refuses_with_kubernetes_words(check, meta, spec, expected) -> None:
    result = check(meta, spec)
    assert result is not None and (result.reason, result.detail) == expected


@pytest.mark.parametrize("check", [c[0] for c in CASES])
def test_each_check_allows_a_plain_restricted_pod(check) -> None:
    spec = _spec(
        _c("a", allowPrivilegeEscalation=False, capabilities={"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}),
        securityContext={"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        volumes=[{"name": "e", "emptyDir": {}}],
    )
    assert check({}, spec) is None


def test_windows_pods_skip_the_linux_only_restricted_checks() -> None:
    spec = _spec(_c("a"), os={"name": "windows"})
    assert [r.reason for r in ps.evaluate(ps.RESTRICTED, {}, spec)] == ["runAsNonRoot != true"]


def test_apparmor_annotation() -> None:
    meta = {"annotations": {"container.apparmor.security.beta.kubernetes.io/a": "unconfined"}}
    result = ps.check_app_armor_profile(meta, _spec(_c("a")))
    assert result == ps.Result(
        "forbidden AppArmor profile",
        "annotation must not set AppArmor profile type to "
        '"container.apparmor.security.beta.kubernetes.io/a="unconfined""',
    )


def test_evaluate_orders_and_overrides_as_the_registry_does() -> None:
    spec = _spec(
        _c("c", privileged=True, capabilities={"add": ["SYS_ADMIN"]}),
        volumes=[{"name": "root", "hostPath": {"path": "/"}}],
        hostPID=True,
    )
    assert [r.reason for r in ps.evaluate(ps.BASELINE, {}, spec)] == [
        "non-default capabilities",
        "host namespaces",
        "hostPath volumes",
        "privileged",
    ]
    # restricted: capabilities_baseline and hostPathVolumes give way to their restricted checks
    assert [r.reason for r in ps.evaluate(ps.RESTRICTED, {}, spec)] == [
        "host namespaces",
        "privileged",
        "allowPrivilegeEscalation != false",
        "unrestricted capabilities",
        "restricted volume types",
        "runAsNonRoot != true",
        "seccompProfile",
    ]
    assert ps.evaluate(ps.PRIVILEGED, {}, spec) == []
    assert ps.forbidden_detail([ps.Result("a", "x"), ps.Result("b")]) == "a (x), b"


def test_labels() -> None:
    policy, causes = ps.policy_from_labels(
        {ps.ENFORCE_LEVEL_LABEL: "restricted", ps.WARN_LEVEL_LABEL: "baseline", ps.ENFORCE_VERSION_LABEL: "v1.30"}
    )
    assert policy == ps.Policy(enforce="restricted", warn="baseline", audit="privileged") and causes == []
    assert ps.policy_from_labels({})[0].enforce == ps.BASELINE
    assert ps.policy_from_labels({}, default_level="privileged")[0].enforce == "privileged"
    policy, causes = ps.policy_from_labels({ps.ENFORCE_LEVEL_LABEL: "none", ps.AUDIT_VERSION_LABEL: "v2.0"})
    assert policy.enforce == ps.RESTRICTED  # fail closed, as Kubernetes
    assert [c.field for c in causes] == [
        "metadata.labels[pod-security.kubernetes.io/enforce]",
        "metadata.labels[pod-security.kubernetes.io/audit-version]",
    ]
    assert causes[1].message == 'Invalid value: "v2.0": must be "latest" or "v1.x"'


def test_runtime_class_is_only_for_the_build_pod_shape() -> None:
    pod = buildpod.build_pod(
        {"apiVersion": "dockyard.dev/v1alpha1", "metadata": {"name": "b-1", "namespace": "n", "uid": "u"}, "spec": {}}
    )
    assert ps.runtime_class_causes(pod["metadata"], pod["spec"]) == []
    assert ps.Exemptions().exempt(user="admin", namespace="n", spec=pod["spec"])
    borrowed = {**pod["spec"], "hostNetwork": True}
    assert ps.runtime_class_causes(pod["metadata"], borrowed)[0].field == "spec.runtimeClassName"
    assert ps.runtime_class_causes({}, pod["spec"])  # without the build-pod label
    assert ps.runtime_class_causes({}, {"runtimeClassName": "gvisor"})[0].type == "FieldValueNotSupported"
    assert ps.runtime_class_causes({}, {"containers": []}) == []
