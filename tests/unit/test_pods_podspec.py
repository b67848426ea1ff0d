"""Pure pod logic (dockyard.agent.podspec): quantities, hashes, back-off, phase."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from lightkube.models.core_v1 import Container, ContainerStatus, PodSecurityContext, PodSpec, Volume
from lightkube.resources.core_v1 import Pod

from dockyard.agent import podspec
from dockyard.api import buildpod


def _c(container: dict[str, Any]) -> Container:
    """A typed container from its wire form (named ``c`` unless it says otherwise)."""
    return Container.from_dict({"name": "c", **container})


def _hash(
    container: dict[str, Any],
    volumes: Iterable[dict[str, Any]] = (),
    pod_sc: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
) -> str:
    return podspec.container_hash(
        _c(container),
        [Volume.from_dict(v) for v in volumes],
        PodSecurityContext.from_dict(pod_sc) if pod_sc is not None else None,
        annotations,
    )


def _pod(pod: dict[str, Any]) -> Pod:
    return Pod.from_dict({"apiVersion": "v1", "kind": "Pod", **pod})


# --- quantities ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100m", Decimal("0.1")),
        ("0.5", Decimal("0.5")),
        ("2", Decimal(2)),
        (1, Decimal(1)),
        (0.25, Decimal("0.25")),
        ("128Mi", Decimal(128 * 2**20)),
        ("1Gi", Decimal(2**30)),
        ("1G", Decimal(10**9)),
        ("1k", Decimal(1000)),
        ("1Ki", Decimal(1024)),
        ("1e3", Decimal(1000)),
        ("1.5E2", Decimal(150)),
        ("500u", Decimal("0.0005")),
        (".5", Decimal("0.5")),
    ],
)
def test_parse_quantity(text: Any, expected: Decimal) -> None:
    assert podspec.parse_quantity(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "1KB", "1.2.3", "Mi", "--1", True])
def test_parse_quantity_rejects(text: Any) -> None:
    with pytest.raises(ValueError):
        podspec.parse_quantity(text)


def test_cpu_and_memory_conversions() -> None:
    assert podspec.cpu_to_nano("100m") == 100_000_000
    assert podspec.cpu_to_nano("0.5") == 500_000_000
    assert podspec.cpu_to_nano(2) == 2_000_000_000
    assert podspec.memory_to_bytes("128Mi") == 134_217_728
    assert podspec.memory_to_bytes("1G") == 1_000_000_000
    assert podspec.memory_to_bytes("1.5") == 2  # rounded up like Quantity.Value
    assert podspec.milli_cpu_to_shares("100m") == 102
    assert podspec.milli_cpu_to_shares("1m") == 2


# --- hashing ------------------------------------------------------------------


def _container(**extra: Any) -> dict[str, Any]:
    return {
        "name": "web",
        "image": "r/web:1",
        "command": ["sh", "-c", "x"],
        "env": [{"name": "A", "value": "1"}],
        **extra,
    }


def test_hash_is_stable_across_key_order_and_empty_fields() -> None:
    base = _hash(_container())
    reordered = dict(reversed(list(_container().items())))
    assert _hash(reordered) == base
    assert _hash(_container(args=[], workingDir="", resources={}, tty=None)) == base
    assert base == _hash(_container())  # deterministic
    # FNV-1a 32 (draft-eastlake-fnv: offset basis 2166136261, prime 16777619) over the canonical JSON
    # of the set fields only, as 8 lower-case hex digits
    canonical = b'{"command":["sh","-c","x"],"env":[{"name":"A","value":"1"}],"image":"r/web:1","name":"web"}'
    fnv = 2166136261
    for byte in canonical:
        fnv = ((fnv ^ byte) * 16777619) & 0xFFFFFFFF
    assert base == f"{fnv:08x}" == "d01799c8"


def test_hash_changes_with_engine_relevant_fields_only() -> None:
    base = _hash(_container())
    assert _hash(_container(image="r/web:2")) != base
    assert _hash(_container(args=["-v"])) != base
    assert _hash(_container(env=[{"name": "A", "value": "2"}])) != base
    assert _hash(_container(resources={"limits": {"cpu": "1"}})) != base
    # Probes, pull policy and ports do not restart the container.
    assert _hash(_container(readinessProbe={"exec": {"command": ["true"]}})) == base
    assert _hash(_container(imagePullPolicy="Always")) == base
    assert _hash(_container(ports=[{"containerPort": 80}])) == base


def test_hash_includes_mounted_volumes_only() -> None:
    c = _container(volumeMounts=[{"name": "data", "mountPath": "/d"}])
    vols = [{"name": "data", "hostPath": {"path": "/a"}}, {"name": "other", "emptyDir": {}}]
    base = _hash(c, vols)
    assert _hash(c, [vols[0], {"name": "other", "hostPath": {"path": "/z"}}]) == base
    assert _hash(c, [{"name": "data", "hostPath": {"path": "/b"}}]) != base


def test_sandbox_hash_follows_ports() -> None:
    spec = {"containers": [{"name": "a", "ports": [{"containerPort": 80, "hostPort": 8080}]}]}
    other = {"containers": [{"name": "a", "ports": [{"containerPort": 80, "hostPort": 8081}]}]}
    assert podspec.sandbox_hash(spec) == podspec.sandbox_hash(spec)
    assert podspec.sandbox_hash(spec) != podspec.sandbox_hash(other)


# --- ports --------------------------------------------------------------------


def test_port_bindings_publish_on_loopback_only() -> None:
    spec = {
        "containers": [
            {"name": "a", "ports": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 81}]},
            {"name": "b", "ports": [{"containerPort": 53, "hostPort": 5353, "protocol": "UDP", "hostIP": "127.0.0.1"}]},
        ]
    }
    bindings, errors = podspec.port_bindings(spec)
    assert errors == []
    assert bindings == {"80/tcp": [("127.0.0.1", 8080)], "53/udp": [("127.0.0.1", 5353)]}


def test_port_bindings_refuse_other_addresses_and_duplicates() -> None:
    spec = {
        "containers": [
            {"name": "a", "ports": [{"containerPort": 80, "hostPort": 8080, "hostIP": "0.0.0.0"}]},
            {"name": "b", "ports": [{"containerPort": 81, "hostPort": 9090}, {"containerPort": 82, "hostPort": 9090}]},
        ]
    }
    bindings, errors = podspec.port_bindings(spec)
    assert [e.field for e in errors] == ["spec.containers[0].ports[0].hostIP", "spec.containers[1].ports[1].hostPort"]
    assert bindings == {"81/tcp": [("127.0.0.1", 9090)]}


# --- back-off -----------------------------------------------------------------

POLICY = podspec.BackOffPolicy(initial=10, maximum=300)


def test_first_crash_restarts_at_once_then_backs_off_doubling() -> None:
    # No entry yet (first container): restart now, record 10 s.
    assert podspec.restart_backoff(backoff=0, started_at=0, finished_at=5, now=5, policy=POLICY) == (0.0, 10)
    # Second crash: wait 10 s from FinishedAt.
    wait, current = podspec.restart_backoff(backoff=10, started_at=100, finished_at=101, now=104, policy=POLICY)
    assert (wait, current) == (7, 10)
    # After the wait: restart, record 20 s.
    assert podspec.restart_backoff(backoff=10, started_at=100, finished_at=101, now=111, policy=POLICY) == (0.0, 20)
    # Capped at 300 s.
    assert podspec.restart_backoff(backoff=300, started_at=0, finished_at=1, now=400, policy=POLICY) == (0.0, 300)
    assert podspec.restart_backoff(backoff=160, started_at=0, finished_at=1, now=200, policy=POLICY) == (0.0, 300)


def test_backoff_resets_after_ten_minutes_of_running() -> None:
    wait, nxt = podspec.restart_backoff(backoff=300, started_at=0, finished_at=601, now=602, policy=POLICY)
    assert (wait, nxt) == (0.0, 10)
    wait, _ = podspec.restart_backoff(backoff=300, started_at=0, finished_at=599, now=600, policy=POLICY)
    assert wait == 299


@pytest.mark.parametrize(
    ("policy", "code", "expected"),
    [("Always", 0, True), (None, 0, True), ("OnFailure", 0, False), ("OnFailure", 1, True), ("Never", 1, False)],
)
def test_should_restart(policy: str | None, code: int, expected: bool) -> None:
    assert podspec.should_restart(policy, code) is expected


# --- phase --------------------------------------------------------------------

RUNNING = {"state": {"running": {"startedAt": "2024-05-06T07:08:09Z"}}}
OK = {"state": {"terminated": {"exitCode": 0}}}
BAD = {"state": {"terminated": {"exitCode": 2}}}
CREATING = {"state": {"waiting": {"reason": "ContainerCreating"}}}
CRASHLOOP = {"state": {"waiting": {"reason": "CrashLoopBackOff"}}, "lastState": {"terminated": {"exitCode": 1}}}


@pytest.mark.parametrize(
    ("policy", "statuses", "total", "expected"),
    [
        ("Always", [CREATING], 1, "Pending"),
        ("Always", [RUNNING, CREATING], 2, "Pending"),
        ("Always", [RUNNING], 2, "Pending"),  # one container unknown
        ("Always", [RUNNING, OK], 2, "Running"),
        ("Always", [RUNNING, CRASHLOOP], 2, "Running"),
        ("Always", [CRASHLOOP], 1, "Running"),
        ("Always", [OK], 1, "Running"),  # will be restarted
        ("OnFailure", [OK, OK], 2, "Succeeded"),
        ("OnFailure", [OK, BAD], 2, "Running"),  # failed one restarts
        ("Never", [OK, OK], 2, "Succeeded"),
        ("Never", [OK, BAD], 2, "Failed"),
        ("Never", [RUNNING, BAD], 2, "Running"),
        ("Never", [], 0, "Pending"),
    ],
)
def test_pod_phase(policy: str, statuses: list[dict[str, Any]], total: int, expected: str) -> None:
    assert podspec.pod_phase(policy, _statuses(statuses), total=total) == expected


def _statuses(statuses: list[dict[str, Any]]) -> list[ContainerStatus]:
    base = {"name": "c", "image": "i", "imageID": "", "ready": False, "restartCount": 0}
    return [ContainerStatus.from_dict({**base, **s}) for s in statuses]


def test_pod_phase_terminal_ignores_restart_policy() -> None:
    assert podspec.pod_phase("Always", _statuses([OK, OK]), total=2, terminal=True) == "Succeeded"
    assert podspec.pod_phase("Always", _statuses([OK, BAD]), total=2, terminal=True) == "Failed"


def test_conditions_keep_transition_time_until_status_flips() -> None:
    t1, t2, t3 = (datetime(2024, 5, 6, 7, 8, s, tzinfo=UTC) for s in (1, 2, 3))
    first = podspec.pod_conditions(sandbox_ready=True, containers_ready=False, now=t1)
    ready = {c.type: c for c in first}["Ready"]
    assert ready.status == "False" and ready.lastTransitionTime == t1 and ready.reason == "ContainersNotReady"
    second = podspec.pod_conditions(sandbox_ready=True, containers_ready=False, now=t2, previous=first)
    assert {c.type: c for c in second}["Ready"].lastTransitionTime == t1
    third = {
        c.type: c for c in podspec.pod_conditions(sandbox_ready=True, containers_ready=True, now=t3, previous=second)
    }
    assert third["Ready"].to_dict() == {"type": "Ready", "status": "True", "lastTransitionTime": "2024-05-06T07:08:03Z"}
    assert third["PodScheduled"].lastTransitionTime == t1
    assert {c.type for c in first} == {
        "PodScheduled",
        "PodReadyToStartContainers",
        "Initialized",
        "ContainersReady",
        "Ready",
    }


# --- names, images, env, config ---------------------------------------------


def test_container_name_and_labels() -> None:
    pod = {
        "metadata": {"name": "web", "namespace": "ns", "uid": "0123456789abcdef"},
        "spec": {"containers": [], "terminationGracePeriodSeconds": 5},
    }
    assert podspec.container_name(container="app", pod="web", namespace="ns", uid="0123456789abcdef", attempt=3) == (
        "k8s_app_web_ns_01234567_3"
    )
    labels = podspec.container_labels(_pod(pod), container="app", spec_hash="abcd", restarts=3, backoff=20)
    assert labels[podspec.LABEL_CONTAINER_RESTARTS] == "3"
    assert float(labels[podspec.LABEL_CONTAINER_BACKOFF]) == 20
    assert labels[podspec.LABEL_POD_GRACE] == "5"
    assert all(isinstance(v, str) for v in labels.values())


@pytest.mark.parametrize(
    ("container", "expected"),
    [
        ({"image": "r/a:1"}, "IfNotPresent"),
        ({"image": "r/a"}, "Always"),
        ({"image": "r/a:latest"}, "Always"),
        ({"image": "127.0.0.1:5000/a"}, "Always"),
        ({"image": "127.0.0.1:5000/a:2"}, "IfNotPresent"),
        ({"image": "r/a@sha256:" + "0" * 64}, "IfNotPresent"),
        ({"image": "r/a:latest", "imagePullPolicy": "Never"}, "Never"),
    ],
)
def test_effective_pull_policy(container: dict[str, Any], expected: str) -> None:
    assert podspec.effective_pull_policy(_c(container)) == expected


def test_expand_vars() -> None:
    env = {"A": "x", "B": "y"}
    assert podspec.expand_vars("$(A)-$(B)", env) == "x-y"
    assert podspec.expand_vars("$(MISSING)", env) == "$(MISSING)"
    assert podspec.expand_vars("$$(A)", env) == "$(A)"
    assert podspec.expand_vars("cost $5 $(A", env) == "cost $5 $(A"


def test_create_args_follow_kubernetes_command_semantics() -> None:
    config, host = podspec.create_args(
        _c(
            {
                "image": "i",
                "command": ["sh", "-c", "echo $(A)"],
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "$(A)2"}],
                "workingDir": "/w",
                "resources": {"limits": {"cpu": "250m", "memory": "1Gi"}},
                "securityContext": {"runAsUser": 1000, "runAsGroup": 10},
            }
        ),
        binds=["/h:/c:ro"],
    )
    assert config["entrypoint"] == ["sh", "-c", "echo 1"]
    assert config["command"] == []  # command without args drops the image CMD
    assert config["environment"] == {"A": "1", "B": "12"}
    assert config["working_dir"] == "/w" and config["user"] == "1000:10"
    assert host == {"binds": ["/h:/c:ro"], "nano_cpus": 250_000_000, "mem_limit": 2**30, "cpu_shares": 256}
    config, _ = podspec.create_args(_c({"image": "i", "args": ["a"]}), binds=[])
    assert "entrypoint" not in config and config["command"] == ["a"]


@pytest.mark.parametrize(
    "container",
    [
        {"image": "i", "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]},
        {"image": "i", "envFrom": [{"configMapRef": {"name": "c"}}]},
        {"image": "i", "resources": {"limits": {"memory": "lots"}}},
        {"image": "i", "securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "x"}}},
        {"image": "i", "securityContext": {"seLinuxOptions": {"type": "container_t"}}},
        {"image": "i", "securityContext": {"procMount": "Unmasked"}},
    ],
)
def test_create_args_refuse_unsupported(container: dict[str, Any]) -> None:
    with pytest.raises(podspec.ConfigError):
        podspec.create_args(_c(container), binds=[])


def test_times() -> None:
    assert podspec.parse_engine_time("0001-01-01T00:00:00Z") is None
    assert podspec.parse_engine_time("") is None
    ts = podspec.parse_engine_time("2024-05-06T07:08:09.123456789Z")
    assert ts is not None and abs(ts - 1714979289.123456789) < 1e-5
    assert podspec.format_time(1714979289.9) == "2024-05-06T07:08:09Z"
    assert podspec.parse_engine_time("2024-05-06T09:08:09+02:00") == 1714979289


def test_build_pods_and_grace() -> None:
    assert podspec.is_build_pod(_pod({"metadata": {"labels": {buildpod.BUILD_POD_LABEL: "true"}}}))
    # only "true" makes a build pod: any other value is an ordinary pod the agent runs (not one nobody runs)
    assert not podspec.is_build_pod(_pod({"metadata": {"labels": {buildpod.BUILD_POD_LABEL: "x"}}}))
    assert not podspec.is_build_pod(_pod({"metadata": {"labels": {buildpod.BUILD_POD_LABEL: "false"}}}))
    assert not podspec.is_build_pod(_pod({"metadata": {}}))
    assert podspec.grace_period(_pod({"metadata": {}, "spec": {"containers": []}})) == 30
    deleting = {
        "metadata": {"deletionGracePeriodSeconds": 0},
        "spec": {"containers": [], "terminationGracePeriodSeconds": 9},
    }
    assert podspec.grace_period(_pod(deleting)) == 0


# --- security context (kubelet kuberuntime security_context.go, dockershim security_context.go) ---------------

POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "u-1"}, "spec": {}}


def _args(
    container_sc: dict[str, Any] | None = None, pod_sc: dict[str, Any] | None = None, image_user: str = ""
) -> tuple[dict[str, Any], dict[str, Any]]:
    container: dict[str, Any] = {"name": "c", "image": "i"}
    if container_sc is not None:
        container["securityContext"] = container_sc
    spec = {"containers": [container], "securityContext": pod_sc} if pod_sc is not None else {"containers": [container]}
    return podspec.create_args(_c(container), binds=[], pod_spec=PodSpec.from_dict(spec), image_user=image_user)


def test_restricted_container_maps_to_engine_options() -> None:
    config, host = _args(
        {
            "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
        },
        {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
    )
    assert config["user"] == "1000"
    assert host == {
        "binds": [],
        "cap_drop": ["ALL"],
        "cap_add": ["NET_BIND_SERVICE"],
        "security_opt": ["no-new-privileges"],
        "read_only": True,
    }


def test_pod_security_context_defaults_and_container_wins() -> None:
    config, host = _args(
        {"runAsUser": 7, "seccompProfile": {"type": "Unconfined"}},
        {
            "runAsUser": 1000,
            "runAsGroup": 3000,
            "seccompProfile": {"type": "RuntimeDefault"},
            "appArmorProfile": {"type": "Unconfined"},
            "supplementalGroups": [4000, 3000],
            "fsGroup": 2000,
        },
    )
    assert config["user"] == "7:3000"
    assert host["security_opt"] == ["seccomp=unconfined", "apparmor=unconfined"]
    assert host["group_add"] == ["2000", "4000", "3000"]  # fsGroup first, as the kubelet synthesizes them
    _, host = _args({"seccompProfile": {"type": "RuntimeDefault"}}, {"seccompProfile": {"type": "Unconfined"}})
    assert "security_opt" not in host  # RuntimeDefault is the engine's default profile


def test_run_as_group_alone_keeps_the_image_user() -> None:
    assert _args({"runAsGroup": 5}, image_user="app:app")[0]["user"] == "app:5"
    assert _args({"runAsGroup": 5})[0]["user"] == "0:5"
    assert "user" not in _args({})[0]


def test_privileged_is_honoured() -> None:
    _, host = _args({"privileged": True})
    assert host["privileged"] is True


def test_sandbox_sysctls_and_hash() -> None:
    spec = {
        "containers": [],
        "securityContext": {"sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]},
    }
    assert podspec.sandbox_sysctls(PodSpec.from_dict(spec)) == {"net.ipv4.ip_unprivileged_port_start": "0"}
    assert podspec.sandbox_sysctls(PodSpec(containers=[])) == {}
    assert podspec.sandbox_hash(spec) != podspec.sandbox_hash({"containers": []})
    assert podspec.sandbox_hash({"containers": [], "securityContext": {}}) == podspec.sandbox_hash({"containers": []})


def test_container_hash_follows_the_pod_security_context() -> None:
    c = {"name": "c", "image": "i"}
    assert _hash(c, [], None) == _hash(c, [], {}) == _hash(c)
    assert _hash(c, [], {"runAsUser": 1}) != _hash(c, [], {"runAsUser": 2})


@pytest.mark.parametrize(
    ("pod_sc", "container_sc", "image_user", "message"),
    [
        (
            {"runAsNonRoot": True},
            {"runAsUser": 0},
            "",
            'container\'s runAsUser breaks non-root policy (pod: "p_ns(u-1)", container: c)',
        ),
        (
            {"runAsNonRoot": True},
            None,
            "",
            'container has runAsNonRoot and image will run as root (pod: "p_ns(u-1)", container: c)',
        ),
        (
            None,
            {"runAsNonRoot": True},
            "0:0",
            'container has runAsNonRoot and image will run as root (pod: "p_ns(u-1)", container: c)',
        ),
        (
            None,
            {"runAsNonRoot": True},
            "app",
            "container has runAsNonRoot and image has non-numeric user (app), cannot verify user is non-root "
            '(pod: "p_ns(u-1)", container: c)',
        ),
        (
            None,
            {"runAsNonRoot": True},
            "root:root",
            "container has runAsNonRoot and image has non-numeric user (root), cannot verify user is non-root "
            '(pod: "p_ns(u-1)", container: c)',
        ),
        (
            None,
            {"runAsNonRoot": True},
            "4294967296",
            "container has runAsNonRoot and image has an invalid user id (4294967296). (Must be 1-(2147483647)): "
            'must be between 0 and 2147483647, inclusive (pod: "p_ns(u-1)", container: c)',
        ),
    ],
)
def test_verify_run_as_non_root_refuses_in_the_kubelets_words(
    pod_sc: dict[str, Any] | None, container_sc: dict[str, Any] | None, image_user: str, message: str
) -> None:
    container: dict[str, Any] = {"name": "c", "image": "i", "securityContext": container_sc}
    pod = _pod({**POD, "spec": {"containers": [container], "securityContext": pod_sc}})
    with pytest.raises(podspec.ConfigError) as err:
        podspec.verify_run_as_non_root(pod, _c(container), image_user=image_user)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("pod_sc", "container_sc", "image_user"),
    [
        ({"runAsNonRoot": True}, {"runAsUser": 1000}, ""),
        ({"runAsNonRoot": True}, None, "1000"),
        ({"runAsNonRoot": True}, {"runAsNonRoot": False}, ""),
        (None, None, "root"),
        ({"runAsNonRoot": True, "runAsUser": 1000}, None, "root"),
    ],
)
def test_verify_run_as_non_root_allows(pod_sc: Any, container_sc: Any, image_user: str) -> None:
    container: dict[str, Any] = {"name": "c", "image": "i", "securityContext": container_sc}
    pod = _pod({**POD, "spec": {"containers": [container], "securityContext": pod_sc}})
    podspec.verify_run_as_non_root(pod, _c(container), image_user=image_user)


def test_app_armor_annotation_applies_when_the_field_is_unset() -> None:
    container: dict[str, Any] = {"name": "c", "image": "i"}
    annotations = {"container.apparmor.security.beta.kubernetes.io/c": "unconfined"}
    _, host = podspec.security_args(PodSpec(containers=[_c(container)]), _c(container), annotations=annotations)
    assert host["security_opt"] == ["apparmor=unconfined"]
    container["securityContext"] = {"appArmorProfile": {"type": "RuntimeDefault"}}
    typed = _c(container)
    assert "security_opt" not in podspec.security_args(PodSpec(containers=[typed]), typed, annotations=annotations)[1]
    assert _hash(container, [], None, annotations) != _hash(container)
