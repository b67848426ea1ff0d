"""What a Kubernetes cluster needs to run dockyard, besides the CRDs: pure functions returning manifests as dicts.

``dockyard manifests kubernetes`` prints :func:`objects`; ``dockyard manifests kustomize DIR`` writes them (and the
CRDs) as a kustomize base (:func:`kustomize_files`), which ``deploy/kubernetes/`` is a copy of. No I/O here.

What runs where (DESIGN.md, "Many machines"):

- ``dockyard-controllers``: a Deployment of 2 replicas of ``dockyard controllers`` (buildconfig, build, image,
  imagedeploy; Kubernetes' own kube-controller-manager runs Deployments and ReplicaSets), in-cluster service
  account credentials, leader election on a ``coordination.k8s.io/v1`` Lease in :data:`NAMESPACE` so one replica
  acts (kube-controller-manager's ``--leader-elect`` flags).
- ``dockyard-agent``: a DaemonSet of ``dockyard agent --no-pods`` (Pushes only) on every node, with the node's container engine socket
  (Docker Engine's ``/var/run/docker.sock`` or Podman's ``/run/podman/podman.sock``, as a ``hostPath``) to commit
  a pod's container for a Push; ``--node-name`` from the downward API (``spec.nodeName``).
- RBAC: one ServiceAccount, ClusterRole and ClusterRoleBinding each, with exactly the (group, resource, verb)
  the code uses (``tests/unit/test_cluster_manifests.py`` derives them from the source); the Lease is granted by
  a Role in :data:`NAMESPACE` only (kube-controller-manager's ``system::leader-locking-kube-controller-manager``).

The objects follow the Kubernetes API reference (v1.32) and validate offline against its schemas
(``kubernetes-validate``); the Pod Security Standards' ``restricted`` profile is met by the controllers, while
the agent needs ``privileged`` (a hostPath socket, root to use it), so the namespace is labelled so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from dockyard import __version__
from dockyard.agent.engine import connect as engine_connect
from dockyard.api import models
from dockyard.client import leaderelection

NAMESPACE = "dockyard-system"
CONTROLLERS = "dockyard-controllers"
AGENT = "dockyard-agent"
LEASE_ROLE = "dockyard-controllers-leader-election"
DEFAULT_IMAGE = f"ghcr.io/dockyard-dev/dockyard:{__version__}"
"""The dockyard image (``deploy/Containerfile``), tagged with the package version."""
ENGINE_SOCKETS = {"docker": engine_connect.DOCKER_SOCKET, "podman": engine_connect.PODMAN_SOCKETS[0]}
"""Node engine → its Docker Engine API socket on the host (mounted at the same path in the agent)."""
AGENT_STATE_DIR = "/var/lib/dockyard/agent"
"""Host directory of the agent's state (builder processes, volumes), kept across agent restarts."""
PART_OF = {"app.kubernetes.io/part-of": "dockyard"}
#: Kubernetes' recommended labels (https://kubernetes.io/docs/concepts/overview/working-with-objects/common-labels/).
NAME_LABEL = "app.kubernetes.io/name"
COMPONENT_LABEL = "app.kubernetes.io/component"

Rule = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]  # (apiGroups, resources, verbs)

CONTROLLER_RULES: tuple[Rule, ...] = (
    (("dockyard.dev",), ("buildconfigs", "images", "imagedeploys"), ("list", "watch")),
    (("dockyard.dev",), ("builds",), ("list", "watch", "patch", "delete")),
    (("dockyard.dev",), ("pushes",), ("list", "watch")),
    (
        ("dockyard.dev",),
        ("buildconfigs/status", "builds/status", "images/status", "imagedeploys/status"),
        ("patch",),
    ),
    (("dockyard.dev",), ("buildconfigs/instantiate",), ("create",)),
    (("",), ("pods",), ("get", "list", "watch", "create", "delete")),
    (("",), ("secrets",), ("get",)),
    (("apps",), ("deployments",), ("list", "watch", "create", "update")),
    (("",), ("events",), ("get", "create", "patch")),
)
"""What ``dockyard controllers`` (buildconfig, build, image, imagedeploy) does, cluster-wide: the informers list and
watch their kinds; Builds are created through ``buildconfigs/instantiate`` (OpenShift's subresource), build pods
are created and deleted, an ImageDeploy's Deployment created and replaced and its pods listed, status written
through ``/status``; the image controller reads the Secret an Image's ``spec.secretRef`` names to scan a private
registry. RBAC cannot narrow ``secrets`` get to the Secrets Images name (``resourceNames`` are fixed when the role
is written): the controllers can read every Secret in the cluster."""

AGENT_RULES: tuple[Rule, ...] = (
    (("dockyard.dev",), ("pushes",), ("get", "list", "watch")),
    (("dockyard.dev",), ("pushes/status",), ("patch",)),
    (("",), ("pods",), ("get",)),
    (("",), ("secrets",), ("get",)),
    (("",), ("events",), ("get", "create", "patch")),
)
"""What ``dockyard agent --no-pods`` does (the kubelet runs pods on a cluster): serve Pushes, reading the pod and the
``imagePushSecrets`` and writing ``/status``; it runs no builds, so it ships no build logs. RBAC cannot narrow
``secrets`` get to the Secrets a node's Pushes name, as the embedded server's node authorizer
(``apiserver/nodeauthz.py``) does."""

LEASE_RULES: tuple[Rule, ...] = (
    (("coordination.k8s.io",), ("leases",), ("create",)),
    (("coordination.k8s.io",), ("leases",), ("get", "update")),
)
"""client-go's LeaseLock: get, create when absent, update to acquire and renew (``client/leaderelection.py``).
``get``/``update`` are limited to the one Lease by name (``create`` cannot be, RBAC has no name before creation)."""


@dataclass(frozen=True, kw_only=True)
class Options:
    """Parameters of the manifests.

    Attributes:
        image: the dockyard image of both workloads (``deploy/Containerfile``).
        engine: the nodes' container engine, ``docker`` or ``podman``: which socket the agent mounts.
        replicas: controller replicas (leader election lets one act).
        namespace: where the workloads, service accounts and the Lease live.
    """

    image: str = DEFAULT_IMAGE
    engine: str = "docker"
    replicas: int = 2
    namespace: str = NAMESPACE

    def check(self) -> None:
        """Raises ValueError naming the flag whose value cannot work."""
        if self.engine not in ENGINE_SOCKETS:
            raise ValueError(f"--engine {self.engine!r}: choose {' or '.join(ENGINE_SOCKETS)}")
        if self.replicas < 1:
            raise ValueError(f"--replicas {self.replicas}: at least 1")
        if len(self.namespace) > 63 or not models.DNS1123_LABEL.match(self.namespace):
            raise ValueError(
                f"--namespace {self.namespace!r}: a namespace name is a DNS-1123 label (lower case letters, digits "
                "and '-', starting and ending with a letter or digit, at most 63 characters)"
            )
        if not self.image or any(c.isspace() for c in self.image):
            raise ValueError(f"--image {self.image!r}: an image reference without spaces")


def _meta(name: str, component: str | None = None, namespace: str | None = None) -> dict[str, Any]:
    labels = {NAME_LABEL: name}
    if component is not None:
        labels[COMPONENT_LABEL] = component
    labels.update(PART_OF)
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    meta["labels"] = labels
    return meta


def _rules(rules: tuple[Rule, ...], *, names: dict[tuple[str, ...], list[str]] | None = None) -> list[dict[str, Any]]:
    out = []
    for groups, res, verbs in rules:
        rule: dict[str, Any] = {"apiGroups": list(groups), "resources": list(res), "verbs": list(verbs)}
        if names and verbs in names:
            rule["resourceNames"] = names[verbs]
        out.append(rule)
    return out


def namespace(opts: Options) -> dict[str, Any]:
    """The namespace, labelled ``privileged`` for Pod Security admission: the agent mounts a hostPath socket."""
    meta = _meta(opts.namespace)
    meta["labels"].update(
        {
            "pod-security.kubernetes.io/enforce": "privileged",
            "pod-security.kubernetes.io/warn": "baseline",
            "pod-security.kubernetes.io/audit": "baseline",
        }
    )
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def rbac(opts: Options) -> list[dict[str, Any]]:
    """ServiceAccounts, ClusterRoles, ClusterRoleBindings of both components, and the Lease Role/RoleBinding."""
    out: list[dict[str, Any]] = []
    for name, component, rules in ((CONTROLLERS, "controllers", CONTROLLER_RULES), (AGENT, "agent", AGENT_RULES)):
        subject = [{"kind": "ServiceAccount", "name": name, "namespace": opts.namespace}]
        out.append({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(name, component, opts.namespace)})
        out.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": _meta(name, component),
                "rules": _rules(rules),
            }
        )
        out.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": _meta(name, component),
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
                "subjects": subject,
            }
        )
    out.append(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _meta(LEASE_ROLE, "controllers", opts.namespace),
            "rules": _rules(LEASE_RULES, names={("get", "update"): [leaderelection.DEFAULT_RESOURCE_NAME]}),
        }
    )
    out.append(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": _meta(LEASE_ROLE, "controllers", opts.namespace),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": LEASE_ROLE},
            "subjects": [{"kind": "ServiceAccount", "name": CONTROLLERS, "namespace": opts.namespace}],
        }
    )
    return out


_RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


def controllers_deployment(opts: Options) -> dict[str, Any]:
    """``dockyard controllers`` as a Deployment: leader election on, in-cluster config, Pod Security ``restricted``.

    A rolling update is safe: a new replica waits for the Lease, which the old leader releases when it stops,
    so two versions never act at once.
    """
    selector = {NAME_LABEL: CONTROLLERS}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(CONTROLLERS, "controllers", opts.namespace),
        "spec": {
            "replicas": opts.replicas,
            "selector": {"matchLabels": selector},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": {**selector, COMPONENT_LABEL: "controllers", **PART_OF}},
                "spec": {
                    "serviceAccountName": CONTROLLERS,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 65532,
                        "runAsGroup": 65532,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "controllers",
                            "image": opts.image,
                            "args": [
                                "controllers",
                                "--leader-elect=true",
                                f"--leader-elect-resource-name={leaderelection.DEFAULT_RESOURCE_NAME}",
                                f"--leader-elect-resource-namespace={opts.namespace}",
                            ],
                            "env": [{"name": "HOME", "value": "/tmp"}],
                            "resources": {
                                "requests": {"cpu": "50m", "memory": "128Mi"},
                                "limits": {"memory": "512Mi"},
                            },
                            "securityContext": dict(_RESTRICTED_CONTAINER),
                            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                        }
                    ],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }


def agent_daemonset(opts: Options) -> dict[str, Any]:
    """``dockyard agent`` on every node, with the node's engine socket (hostPath) and its name (downward API).

    It runs as root (the engine socket is ``root:docker 0660``) without privilege escalation or capabilities;
    its state (builders that outlive a restart) is in the host's :data:`AGENT_STATE_DIR`.
    """
    socket = ENGINE_SOCKETS[opts.engine]
    selector = {NAME_LABEL: AGENT}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": _meta(AGENT, "agent", opts.namespace),
        "spec": {
            "selector": {"matchLabels": selector},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": {**selector, COMPONENT_LABEL: "agent", **PART_OF}},
                "spec": {
                    "serviceAccountName": AGENT,
                    "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                    "tolerations": [{"operator": "Exists"}],
                    "containers": [
                        {
                            "name": "agent",
                            "image": opts.image,
                            "args": [
                                "agent",
                                "--no-pods",
                                "--node-name=$(NODE_NAME)",
                                f"--engine={opts.engine}",
                                f"--engine-socket={socket}",
                                f"--state-dir={AGENT_STATE_DIR}",
                            ],
                            "env": [
                                {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                                {"name": "HOME", "value": "/tmp"},
                            ],
                            "resources": {
                                "requests": {"cpu": "50m", "memory": "128Mi"},
                                "limits": {"memory": "1Gi"},
                            },
                            "securityContext": {**_RESTRICTED_CONTAINER, "runAsUser": 0, "runAsNonRoot": False},
                            "volumeMounts": [
                                {"name": "engine-socket", "mountPath": socket},
                                {"name": "state", "mountPath": AGENT_STATE_DIR},
                                {"name": "tmp", "mountPath": "/tmp"},
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "engine-socket", "hostPath": {"path": socket, "type": "Socket"}},
                        {"name": "state", "hostPath": {"path": AGENT_STATE_DIR, "type": "DirectoryOrCreate"}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }


def objects(opts: Options | None = None) -> list[dict[str, Any]]:
    """Everything but the CRDs, in the order ``kubectl apply`` needs: Namespace, RBAC, workloads.

    Raises:
        ValueError: an option that cannot work (:meth:`Options.check`).
    """
    opts = opts or Options()
    opts.check()
    return [namespace(opts), *rbac(opts), controllers_deployment(opts), agent_daemonset(opts)]


#: kustomize base file → which objects it holds (by kind); the CRDs come first.
KUSTOMIZE_FILES = {
    "namespace.yaml": ("Namespace",),
    "rbac.yaml": ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"),
    "controllers.yaml": ("Deployment",),
    "agent.yaml": ("DaemonSet",),
}
HEADER = "# Generated by `dockyard manifests kustomize deploy/kubernetes`; do not edit (tests check it is current).\n"


def _yaml_stream(objs: list[dict[str, Any]]) -> str:
    return HEADER + "".join("---\n" + yaml.safe_dump(o, sort_keys=False, width=120) for o in objs)


def kustomize_files(crds: list[dict[str, Any]], opts: Options | None = None) -> dict[str, str]:
    """A kustomize base: file name → text. ``crds.yaml`` holds ``crds``; the rest are :func:`objects`.

    ``kustomization.yaml`` lists the files and names the image in ``images:``, so ``kustomize edit set image``
    (or an overlay) can pin another one (https://kubectl.docs.kubernetes.io/references/kustomize/kustomization/images/).
    """
    opts = opts or Options()
    objs = objects(opts)
    files = {"crds.yaml": _yaml_stream(crds)}
    for name, kinds in KUSTOMIZE_FILES.items():
        files[name] = _yaml_stream([o for o in objs if o["kind"] in kinds])
    image, _, tag = opts.image.rpartition(":") if ":" in opts.image.rsplit("/", 1)[-1] else (opts.image, "", "")
    kustomization: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["crds.yaml", *KUSTOMIZE_FILES],
        "images": [{"name": image, **({"newTag": tag} if tag else {})}],
    }
    files["kustomization.yaml"] = HEADER + yaml.safe_dump(kustomization, sort_keys=False, width=120)
    return files
