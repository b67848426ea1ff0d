"""``dockyard manifests kubernetes`` and the kustomize base ``deploy/kubernetes/``.

The RBAC test holds the ClusterRoles to the code: :mod:`tests.unit.apiscan` reads the source of what each
component runs (the controllers ``dockyard controllers`` starts by default, the agent ``dockyard agent`` starts,
followed through their imports) with :mod:`ast` and derives every (group, resource, verb) it requests: the kinds of
``watches()`` (list, watch), lightkube calls (get/list/watch/create/replace→update/patch/delete), the
``runtime`` helpers (``get``/``get_or_none``/``get_as``: get; ``list_as``: list; ``patch_status``/``update_status``:
patch of ``/status``; the kind from a literal, a typed object class or the typed object's declared type), Events (what
``client/events.py`` does) and raw HTTP to subresources (``buildconfigs/instantiate``, ``builds/log``,
``builds/source``). Modules are the unit: a module the component imports counts whole (so a default controller
must not import ``controllers/deployment.py``: shared pure helpers live in ``controllers/rollout.py``). The granted set must
equal it: a verb the code starts using fails the test until it is
granted, a grant the code no longer uses fails it until it is removed, and a call the scan cannot resolve fails it
until the scan is taught (it never guesses).
"""

from __future__ import annotations

import ast
import difflib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from dockyard.apiserver import crds
from dockyard.cli import cluster, components
from dockyard.cli.main import app
from unit import apiscan

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "kubernetes"
K8S_VERSION = "1.32.0"


def _expand(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {(g, r, v) for rule in rules for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}


def _by_kind_name(objs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name)


def _module_of(package: str, name: str) -> str:
    """``from package import name``: the module ``package.name`` if there is one, else ``package``."""
    return f"{package}.{name}" if apiscan.module_path(f"{package}.{name}").exists() else package


def _component_roots(function: str, names: tuple[str, ...] | None = None) -> list[str]:
    """The dockyard modules ``components.<function>`` imports (for controllers: only those of ``names``)."""
    tree = ast.parse(Path(components.__file__).read_text())
    fn = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == function)
    class_module = {
        alias.asname or alias.name: _module_of(node.module, alias.name)
        for node in ast.walk(fn)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dockyard.")
        for alias in node.names
    }
    if names is None:
        return sorted({m for m in class_module.values() if m.startswith(("dockyard.agent", "dockyard.controllers"))})
    table = next(n.value for n in ast.walk(fn) if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "table")
    assert isinstance(table, ast.Dict)
    chosen = {ast.literal_eval(k): ast.unparse(v) for k, v in zip(table.keys, table.values, strict=True) if k}
    return sorted({class_module[chosen[n]] for n in names})


def _assert_exact(granted: set[tuple[str, str, str]], scan: apiscan.Scan) -> None:
    assert not scan.unresolved, "teach tests/unit/apiscan.py these calls:\n" + "\n".join(scan.unresolved)
    missing, unused = scan.needs - granted, granted - scan.needs
    assert not missing and not unused, f"not granted but used: {sorted(missing)}\ngranted but unused: {sorted(unused)}"


def test_controller_cluster_role_grants_exactly_what_the_controllers_do() -> None:
    roots = _component_roots("run_controllers", components.DEFAULT_CONTROLLERS)
    assert "dockyard.controllers.build" in roots and "dockyard.controllers.deployment" not in roots
    scan = apiscan.scan(roots)
    # kube-controller-manager runs Deployments on a cluster: their controller's calls are not granted
    assert "dockyard.controllers.deployment" not in scan.modules, "a default controller imports deployment.py"
    role = _by_kind_name(cluster.objects(), "ClusterRole", cluster.CONTROLLERS)
    _assert_exact(_expand(role["rules"]), scan)


def test_agent_cluster_role_grants_exactly_what_the_agent_does() -> None:
    roots = _component_roots("_run_pushes_only")  # what `dockyard agent --no-pods` runs
    assert "dockyard.agent.pushes" in roots
    scan = apiscan.scan(roots)
    role = _by_kind_name(cluster.objects(), "ClusterRole", cluster.AGENT)
    _assert_exact(_expand(role["rules"]), scan)


def test_lease_role_grants_exactly_what_leader_election_does_in_its_namespace_only() -> None:
    scan = apiscan.scan(["dockyard.client.leaderelection"])
    objs = cluster.objects()
    role = _by_kind_name(objs, "Role", cluster.LEASE_ROLE)
    assert role["metadata"]["namespace"] == cluster.NAMESPACE
    _assert_exact(_expand(role["rules"]), scan)
    named = [r for r in role["rules"] if "resourceNames" in r]
    assert named and all(r["resourceNames"] == ["dockyard-controllers"] for r in named)
    assert not any("leases" in r["resources"] for o in objs if o["kind"] == "ClusterRole" for r in o["rules"])
    binding = _by_kind_name(objs, "RoleBinding", cluster.LEASE_ROLE)
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": cluster.CONTROLLERS, "namespace": cluster.NAMESPACE}
    ]


def test_no_wildcards_and_bindings_name_their_own_service_accounts() -> None:
    objs = cluster.objects()
    for role in (o for o in objs if o["kind"] in ("ClusterRole", "Role")):
        for rule in role["rules"]:
            assert "*" not in rule["apiGroups"] + rule["resources"] + rule["verbs"], role["metadata"]["name"]
    for binding in (o for o in objs if o["kind"] == "ClusterRoleBinding"):
        name = binding["metadata"]["name"]
        assert binding["roleRef"]["name"] == name
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": name, "namespace": cluster.NAMESPACE}]


NEW_CALLS = """
from dockyard.api import objects
from dockyard.client import objects as client_objects
from dockyard.client import resources, runtime
from lightkube.resources.core_v1 import Pod, Secret

class X(runtime.Controller):
    def watches(self):
        return [runtime.Watch("Image")]

    def reconcile(self, key):
        self.api.delete(resources.resource("Push"), "a", namespace="b")
        self.api.replace(Secret(body))
        runtime.patch_status(self.api, "Build", b, {})
        with self.conn.http() as http:
            http.post(f"/apis/dockyard.dev/v1alpha1/namespaces/{ns}/buildconfigs/{n}/webhooks")
        self.api.create(something_else)
        self.events.record(b, "Normal", "R", "m")
        idp = runtime.get_as(self.api, objects.ImageDeploy, "a", "b")
        runtime.update_status(self.api, idp, {})
        for pod in runtime.list_as(self.api, Pod, namespace="b"):
            pass

    def _end(self, config: objects.BuildConfig | None, push: "objects.Push") -> None:
        runtime.update_status(self.api, config, {})
        runtime.update_status(self.api, push, {})
        runtime.update_status(self.api, mystery, {})
        runtime.get_as(self.api, client_objects.Thing, "a", "b")
        runtime.delete_all(self.api, "Build")
        wipe_everything(self.api)
"""

NEW_UNRESOLVED = ("something_else", "mystery", "client_objects.Thing", "runtime.delete_all", "wipe_everything")


def test_the_scan_catches_a_new_verb_and_refuses_to_guess(tmp_path: Path) -> None:
    path = tmp_path / "new_controller.py"
    path.write_text(NEW_CALLS)
    scan = apiscan.scan_file(path)
    assert {
        ("dockyard.dev", "images", "list"),
        ("dockyard.dev", "images", "watch"),
        ("dockyard.dev", "pushes", "delete"),
        ("", "secrets", "update"),
        ("dockyard.dev", "builds/status", "patch"),
        ("dockyard.dev", "buildconfigs/webhooks", "create"),
        ("dockyard.dev", "imagedeploys", "get"),
        ("dockyard.dev", "imagedeploys/status", "patch"),
        ("", "pods", "list"),
        ("dockyard.dev", "buildconfigs/status", "patch"),
        ("dockyard.dev", "pushes/status", "patch"),
    } <= scan.needs
    assert len(scan.unresolved) == len(NEW_UNRESOLVED), scan.unresolved
    for what, line in zip(NEW_UNRESOLVED, scan.unresolved, strict=True):
        assert what in line, (what, line)


def test_the_scan_refuses_a_name_of_two_kinds_in_one_function(tmp_path: Path) -> None:
    path = tmp_path / "ambiguous.py"
    path.write_text(
        "from dockyard.api import objects\n"
        "from dockyard.client import runtime\n"
        "def f(api, key):\n"
        "    obj = runtime.get_as(api, objects.Build, key, None)\n"
        "    obj = runtime.get_as(api, objects.Image, key, None) or obj\n"
        "    runtime.update_status(api, obj, {})\n"
        "def g(api, obj: objects.Push):\n"
        "    runtime.update_status(api, obj, {})  # kind: Push\n"
    )
    scan = apiscan.scan_file(path)
    assert len(scan.unresolved) == 1 and "obj" in scan.unresolved[0] and ":6" in scan.unresolved[0]
    assert ("dockyard.dev", "pushes/status", "patch") in scan.needs
    assert not {r for r in scan.needs if r[1] in ("builds/status", "images/status")}


@pytest.mark.parametrize("index", range(len(cluster.objects())), ids=lambda i: cluster.objects()[i]["kind"])
def test_every_manifest_validates_offline_against_the_kubernetes_schema(index: int) -> None:
    import kubernetes_validate

    kubernetes_validate.validate(cluster.objects()[index], K8S_VERSION, strict=True)


def test_the_offline_validation_catches_a_misspelt_field() -> None:
    import kubernetes_validate

    deploy = _by_kind_name(cluster.objects(), "Deployment", cluster.CONTROLLERS)
    deploy["spec"]["template"]["spec"]["serviceAcountName"] = "typo"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deploy, K8S_VERSION, strict=True)


def _parse_cli(args: list[str]) -> dict[str, Any]:
    """Parse ``args`` as the real ``dockyard`` command line would (click), without running it."""
    import typer.main

    group = typer.main.get_command(app)
    assert args[0] in group.commands, f"dockyard has no command {args[0]!r}"  # type: ignore[attr-defined]
    command = group.commands[args[0]]  # type: ignore[attr-defined]
    ctx = command.make_context(args[0], list(args[1:]))
    return dict(ctx.params)


def test_controllers_deployment_runs_two_leader_elected_replicas_with_real_flags() -> None:
    deploy = _by_kind_name(cluster.objects(), "Deployment", cluster.CONTROLLERS)
    assert deploy["spec"]["replicas"] == 2
    pod = deploy["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == cluster.CONTROLLERS
    (container,) = pod["containers"]
    assert container["image"] == cluster.DEFAULT_IMAGE
    params = _parse_cli(container["args"])
    assert params["leader_elect"] == "true"
    assert params["resource_namespace"] == cluster.NAMESPACE
    assert params["kubeconfig"] is None  # in-cluster service account (client/connection.py)
    assert deploy["spec"]["selector"]["matchLabels"].items() <= deploy["spec"]["template"]["metadata"]["labels"].items()


@pytest.mark.parametrize("engine", sorted(cluster.ENGINE_SOCKETS))
def test_agent_daemonset_mounts_the_engine_socket_and_names_its_node(engine: str) -> None:
    ds = _by_kind_name(cluster.objects(cluster.Options(engine=engine)), "DaemonSet", cluster.AGENT)
    pod = ds["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    socket = cluster.ENGINE_SOCKETS[engine]
    assert {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}} in container["env"]
    # the kubelet expands $(NODE_NAME) in args; the agent's real flags must accept them
    params = _parse_cli([a.replace("$(NODE_NAME)", "node-1") for a in container["args"]])
    assert params["node_name"] == "node-1" and params["engine"] == engine and params["engine_socket"] == socket
    assert params["run_pods"] is False  # the kubelet runs pods on a cluster
    volumes = {v["name"]: v for v in pod["volumes"]}
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == socket)
    assert volumes[mount["name"]]["hostPath"] == {"path": socket, "type": "Socket"}
    assert pod["serviceAccountName"] == cluster.AGENT


def test_cli_prints_yaml_and_json_and_refuses_bad_flags() -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["manifests", "kubernetes", "--image", "registry.example/dockyard:1"])
    assert out.exit_code == 0, out.output
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert [d["kind"] for d in docs] == [o["kind"] for o in cluster.objects()]
    assert all(
        c["image"] == "registry.example/dockyard:1"
        for d in docs
        if d["kind"] in ("Deployment", "DaemonSet")
        for c in d["spec"]["template"]["spec"]["containers"]
    )
    out = runner.invoke(app, ["manifests", "kubernetes", "-o", "json"])
    assert out.exit_code == 0 and json.loads(out.stdout)["items"] == cluster.objects()
    out = runner.invoke(app, ["manifests", "kubernetes", "--engine", "containerd"])
    assert out.exit_code == 2 and "--engine 'containerd'" in out.output
    out = runner.invoke(app, ["manifests", "kubernetes", "-o", "toml"])
    assert out.exit_code == 2 and "--output" in out.output


def test_deploy_kubernetes_is_current(tmp_path: Path) -> None:
    out = CliRunner().invoke(app, ["manifests", "kustomize", str(tmp_path)])
    assert out.exit_code == 0, out.output
    fresh = {p.name: p.read_text() for p in tmp_path.iterdir()}
    stored = {p.name: p.read_text() for p in DEPLOY.iterdir()}
    assert sorted(stored) == sorted(fresh), "regenerate: dockyard manifests kustomize deploy/kubernetes"
    for name, text in fresh.items():
        diff = "".join(difflib.unified_diff(stored[name].splitlines(True), text.splitlines(True), name, "fresh"))
        assert not diff, f"deploy/kubernetes/{name} is stale (dockyard manifests kustomize deploy/kubernetes):\n{diff}"


def _key(o: dict[str, Any]) -> tuple[str, str, str]:
    return (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"])


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_kustomize_renders_the_same_objects() -> None:
    done = subprocess.run(
        ["kubectl", "kustomize", str(DEPLOY)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    rendered = sorted((d for d in yaml.safe_load_all(done.stdout) if d), key=_key)
    expected = sorted(crds.all_crds() + cluster.objects(), key=_key)
    assert [_key(o) for o in rendered] == [_key(o) for o in expected]
    for got, want in zip(rendered, expected, strict=True):
        assert got == json.loads(json.dumps(want)), _key(want)


@pytest.mark.parametrize("path", ["deploy/Containerfile", "deploy/builder/Containerfile"])
def test_containerfiles_copy_what_the_repository_has_and_run_dockyard(path: str) -> None:
    """Static checks only: no base image can be pulled here, so the images are not built in tests."""
    lines = (ROOT / path).read_text().splitlines()
    copies = [ln.split()[1:-1] for ln in lines if ln.startswith("COPY ") and "--from=" not in ln]
    assert copies and all((ROOT / src).exists() for srcs in copies for src in srcs), copies
    assert 'ENTRYPOINT ["dockyard"]' in lines
    if "builder" in path:
        assert any("buildah" in ln for ln in lines) and "    STORAGE_DRIVER=vfs" in lines
