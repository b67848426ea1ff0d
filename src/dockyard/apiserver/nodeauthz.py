"""The Node authorizer's object checks and ``NodeRestriction``, against the store.

Kubernetes' Node authorizer (``plugin/pkg/auth/authorizer/node``) lets a node
identity ``system:node:<name>`` read a Secret only if a pod bound to that node
references it, and its ``NodeRestriction`` admission plugin limits what the
node may write to objects of its own. dockyard applies the same rule to what
its node agent does beyond the kubelet's work (build pods and Pushes):

- **Secrets**: ``get`` only, of a Secret referenced by a pod bound to the node
  (volumes, projected volumes, ``env[].valueFrom.secretKeyRef``,
  ``envFrom[].secretRef``, ``imagePullSecrets``; for a build pod also its
  Build's ``source.sourceSecret`` and ``output.pushSecret``) or by a Push the node serves
  (``imagePushSecrets``). ``list`` and ``watch`` of Secrets are refused by
  :func:`dockyard.apiserver.authz.allowed`.
- **ConfigMaps**: the same, of a ConfigMap referenced by a pod bound to the node (volumes, projected
  volumes, ``env[].valueFrom.configMapKeyRef``, ``envFrom[].configMapRef``).
- **Build logs, sources and details** (``builds/log`` create, ``builds/source`` get, ``builds/details``
  update and patch):
  only of Builds whose build pod is bound to the node.
- **Events**: created, updated or patched only about objects on the node
  (a pod bound to it, a Build whose build pod is bound to it, a Push it
  serves, or its own Node object); an Event's ``involvedObject`` cannot be
  changed by a patch.
- **Pod and Push status**: see :func:`dockyard.apiserver.authz.admit`.
- **Nodes**: a node reads every Node, and creates, updates and patches (main resource and ``status``) only the
  one named as itself, with none of the labels NodeRestriction keeps from nodes
  (:func:`dockyard.apiserver.authz.admit_node`); it never deletes a Node.
- **Mirror pods** (the API's image of a static pod the node runs from a file or URL): a node creates only
  mirror pods bound to itself that reference no Secret, ConfigMap, PersistentVolumeClaim or service account
  (NodeRestriction ``admitPodCreate``, :func:`check_mirror_pod_create`), and deletes only its mirror pods
  and, to end a graceful deletion, its pods that have a ``deletionTimestamp``.
  Pod Security admission then applies to the mirror pod as to any pod.

Every refusal is a 403 worded as the apiserver words it
(:func:`dockyard.apiserver.authz.forbidden`), with the node authorizer's
reason ``no relationship found between node "n" and this object``.

The checks read the store on each request (no graph is cached): the number
of pods in one namespace bounds their cost.
"""

from __future__ import annotations

from typing import Any

from dockyard.api import buildpod, errors, kinds
from dockyard.api import labels as well_known
from dockyard.apiserver import authz
from dockyard.storage import sqlite

Obj = dict[str, Any]


def _info(api_version: str, kind: str) -> kinds.ResourceInfo:
    info = kinds.by_kind(api_version, kind)
    assert info is not None, kind
    return info


POD = _info("v1", "Pod")
BUILD = _info(kinds.API_VERSION, "Build")
PUSH = _info(kinds.API_VERSION, "Push")
EVENT = _info("v1", "Event")
NO_RELATIONSHIP = 'no relationship found between node "{node}" and this object'


def _dict(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _name(ref: Any) -> str | None:
    name = _dict(ref).get("name")
    return name if isinstance(name, str) and name else None


# ------------------------------------------------------------------ references (pure)


def pod_secret_names(pod: Obj) -> set[str]:
    """Names of the Secrets a pod references (the Node authorizer graph's pod → secret edges).

    Covers ``spec.volumes[].secret.secretName``, projected volumes' secret
    sources, ``imagePullSecrets``, every (init) container's
    ``env[].valueFrom.secretKeyRef.name`` and ``envFrom[].secretRef.name``,
    and for a build pod (:mod:`dockyard.api.buildpod`) its Build's secrets
    (:func:`build_secret_names`).
    """
    spec = _dict(pod.get("spec"))
    names: set[str] = set()
    for volume in _list(spec.get("volumes")):
        volume = _dict(volume)
        secret = _dict(volume.get("secret")).get("secretName")
        if isinstance(secret, str) and secret:
            names.add(secret)
        for source in _list(_dict(volume.get("projected")).get("sources")):
            if (found := _name(_dict(source).get("secret"))) is not None:
                names.add(found)
    for ref in _list(spec.get("imagePullSecrets")):
        if (found := _name(ref)) is not None:
            names.add(found)
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in _list(spec.get(key)):
            container = _dict(container)
            for env in _list(container.get("env")):
                if (found := _name(_dict(_dict(env).get("valueFrom")).get("secretKeyRef"))) is not None:
                    names.add(found)
            for source in _list(container.get("envFrom")):
                if (found := _name(_dict(source).get("secretRef"))) is not None:
                    names.add(found)
    if buildpod.is_build_pod(pod):
        try:
            names |= build_secret_names(_dict(buildpod.build_from_pod(pod).get("spec")))
        except ValueError:
            pass
    return names


def pod_config_map_names(pod: Obj) -> set[str]:
    """Names of the ConfigMaps a pod references: ``spec.volumes[].configMap.name``, projected volumes' configMap
    sources, and every (init, ephemeral) container's ``env[].valueFrom.configMapKeyRef.name`` and
    ``envFrom[].configMapRef.name`` (``podutil.VisitPodConfigmapNames``)."""
    spec = _dict(pod.get("spec"))
    names: set[str] = set()
    for volume in _list(spec.get("volumes")):
        volume = _dict(volume)
        if (found := _name(volume.get("configMap"))) is not None:
            names.add(found)
        for source in _list(_dict(volume.get("projected")).get("sources")):
            if (found := _name(_dict(source).get("configMap"))) is not None:
                names.add(found)
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in _list(spec.get(key)):
            container = _dict(container)
            for env in _list(container.get("env")):
                if (found := _name(_dict(_dict(env).get("valueFrom")).get("configMapKeyRef"))) is not None:
                    names.add(found)
            for source in _list(container.get("envFrom")):
                if (found := _name(_dict(source).get("configMapRef"))) is not None:
                    names.add(found)
    return names


def check_mirror_pod_create(attrs: authz.Attributes, pod: Any) -> None:
    """A node's pod ``create``: Kubernetes' NodeRestriction ``admitPodCreate``
    (``plugin/pkg/admission/noderestriction/admission.go``), messages as it words them.

    The pod must be a mirror pod (annotation ``kubernetes.io/config.mirror``), bound to the node
    (``spec.nodeName``), and reference no service account, Secret, ConfigMap or PersistentVolumeClaim. An
    ``ownerReference``, when given, must be the one controller reference to the node's ``v1`` Node (dockyard's
    node agent sets none: the embedded engine keeps no Node objects to own them).

    Raises:
        errors.Forbidden: any rule broken.
    """
    node = authz.node_name(attrs.user)
    if node is None:
        return
    body = _dict(pod)
    meta, spec = _dict(body.get("metadata")), _dict(body.get("spec"))

    def refuse(why: str) -> errors.Forbidden:
        return authz.forbidden(attrs, why)

    if well_known.CONFIG_MIRROR not in _dict(meta.get("annotations")):
        raise refuse(
            f'pod does not have "{well_known.CONFIG_MIRROR}" annotation, node "{node}" can only create mirror pods'
        )
    if spec.get("nodeName") != node:
        raise refuse(f'node "{node}" can only create pods with spec.nodeName set to itself')
    owners = _list(meta.get("ownerReferences"))
    if len(owners) > 1:
        raise refuse(f'node "{node}" can only create pods with a single owner reference set to itself')
    if owners:
        owner = _dict(owners[0])
        if (owner.get("apiVersion"), owner.get("kind"), owner.get("name")) != ("v1", "Node", node):
            raise refuse(f'node "{node}" can only create pods with an owner reference set to itself')
        if owner.get("controller") is not True:
            raise refuse(f'node "{node}" can only create pods with a controller owner reference set to itself')
    if spec.get("serviceAccountName") or spec.get("serviceAccount"):
        raise refuse(f'node "{node}" can not create pods that reference a service account')
    if pod_secret_names(body):
        raise refuse(f'node "{node}" can not create pods that reference secrets')
    if pod_config_map_names(body):
        raise refuse(f'node "{node}" can not create pods that reference configmaps')
    if any(_dict(v).get("persistentVolumeClaim") for v in _list(spec.get("volumes"))):
        raise refuse(f'node "{node}" can not create pods that reference persistentvolumeclaims')


def build_secret_names(spec: Obj) -> set[str]:
    """Secrets a Build (or BuildConfig) spec gives its build pod: its source and push secrets (a Build has no
    pull secret: ``dockerStrategy`` has no ``pullSecret``, refused as an unknown field)."""
    names = {
        _name(_dict(spec.get("source")).get("sourceSecret")),
        _name(_dict(spec.get("output")).get("pushSecret")),
    }
    return {n for n in names if n}


def push_secret_names(push: Obj) -> set[str]:
    """Secrets a Push references: ``spec.imagePushSecrets[].name``."""
    return {n for ref in _list(_dict(push.get("spec")).get("imagePushSecrets")) if (n := _name(ref))}


# ------------------------------------------------------------------ relationships (store reads)


def _bound(pod: Obj, node: str) -> bool:
    return _dict(pod.get("spec")).get("nodeName") == node


def _get(store: sqlite.Store, info: kinds.ResourceInfo, namespace: str, name: str) -> Obj | None:
    try:
        return store.get(info, namespace, name)
    except errors.NotFound:
        return None


def build_on_node(store: sqlite.Store, node: str, namespace: str, build: str) -> bool:
    """True if Build ``build``'s build pod (``<build>-build``, owned by the Build) is bound to ``node``.

    The pod must name the Build in an ownerReference, which a node cannot give a pod it creates (its mirror pods
    may be owned only by its Node, :func:`check_mirror_pod_create`): a mirror pod named and labelled as a Build's pod
    does not make the node the one that runs that Build."""
    pod = _get(store, POD, namespace, buildpod.pod_name(build))
    if pod is None or not _bound(pod, node):
        return False
    meta = _dict(pod.get("metadata"))
    if well_known.CONFIG_MIRROR in _dict(meta.get("annotations")):
        return False
    owned = any(
        _dict(ref).get("kind") == "Build" and _dict(ref).get("name") == build
        for ref in _list(meta.get("ownerReferences"))
    )
    return owned and buildpod.build_name(pod) == build


def push_for_node(store: sqlite.Store, node: str, push: Obj) -> bool:
    """True if ``node`` serves the Push: labelled for it, or unlabelled with its pod bound to it."""
    label = _dict(_dict(push.get("metadata")).get("labels")).get(authz.NODENAME_LABEL)
    if label:
        return label == node
    pod_name = _dict(push.get("spec")).get("podName")
    namespace = str(_dict(push.get("metadata")).get("namespace") or "")
    pod = _get(store, POD, namespace, pod_name) if isinstance(pod_name, str) and pod_name else None
    return pod is not None and _bound(pod, node)


def secret_for_node(store: sqlite.Store, node: str, namespace: str, name: str) -> bool:
    """True if a pod bound to ``node`` or a Push it serves in ``namespace`` references Secret ``name``."""
    pods = store.list(POD, namespace, predicate=lambda p: _bound(p, node)).items
    if any(name in pod_secret_names(p) for p in pods):
        return True
    pushes = store.list(PUSH, namespace, predicate=lambda p: name in push_secret_names(p)).items
    return any(push_for_node(store, node, p) for p in pushes)


def config_map_for_node(store: sqlite.Store, node: str, namespace: str, name: str) -> bool:
    """True if a pod bound to ``node`` in ``namespace`` references ConfigMap ``name``."""
    pods = store.list(POD, namespace, predicate=lambda p: _bound(p, node)).items
    return any(name in pod_config_map_names(p) for p in pods)


def object_on_node(store: sqlite.Store, node: str, ref: Obj) -> bool:
    """True if the object an ``ObjectReference`` names is on ``node`` (see the module docstring)."""
    kind, name = ref.get("kind"), ref.get("name")
    namespace = str(ref.get("namespace") or "")
    if not isinstance(name, str) or not name:
        return False
    if kind == "Node":
        return name == node
    if kind == "Pod":
        pod = _get(store, POD, namespace, name)
        return pod is not None and _bound(pod, node)
    if kind == "Build":
        return build_on_node(store, node, namespace, name)
    if kind == "Push":
        push = _get(store, PUSH, namespace, name)
        return push is not None and push_for_node(store, node, push)
    return False


# ------------------------------------------------------------------ the checks


def check(store: sqlite.Store, attrs: authz.Attributes, *, body: Any = None, content_type: str = "") -> None:
    """Refuse a node's request unless the object it touches is related to the node.

    A no-op for every identity but ``system:node:<name>``, and for requests
    the authorizer's verb/resource rules already settle.

    Args:
        attrs: the request (after :func:`dockyard.apiserver.authz.authorize`).
        body: the decoded request body of a write (Events).
        content_type: the patch media type of a ``PATCH``.
    Raises:
        errors.Forbidden: no relationship between the node and the object.
    """
    node = authz.node_name(attrs.user)
    if node is None:
        return
    refuse = authz.forbidden(attrs, NO_RELATIONSHIP.format(node=node))
    target = (attrs.group, attrs.resource, attrs.subresource)
    if target == ("", "secrets", ""):
        if attrs.verb != "get" or not secret_for_node(store, node, attrs.namespace, attrs.name):
            raise refuse
    elif target == ("", "configmaps", ""):
        if attrs.verb != "get" or not config_map_for_node(store, node, attrs.namespace, attrs.name):
            raise refuse
    elif target in (
        (kinds.GROUP, "builds", "source"),
        (kinds.GROUP, "builds", "log"),
        (kinds.GROUP, "builds", "details"),
    ) and (attrs.subresource in ("source", "details") or attrs.verb == "create"):
        if not build_on_node(store, node, attrs.namespace, attrs.name):
            raise refuse
    elif target == ("", "events", "") and attrs.verb in ("create", "update", "patch"):
        _check_event(store, node, attrs, body, content_type, refuse)
    elif target == ("", "pods", "") and attrs.verb == "create":
        check_mirror_pod_create(attrs, body)
    elif attrs.group == "" and attrs.resource == "nodes" and attrs.verb not in authz.READ_VERBS:
        _check_own_node(node, attrs, body)
    elif authz.needs_admission(attrs):
        stored = store.get(POD if attrs.resource == "pods" else PUSH, attrs.namespace, attrs.name)
        authz.admit(attrs, stored, content_type=content_type, document=body)


def _check_own_node(node: str, attrs: authz.Attributes, body: Any) -> None:
    """NodeRestriction ``admitNode``: a node creates, updates and patches (and writes the status of) only the
    Node named as itself; its labels are checked on the result (:func:`dockyard.apiserver.authz.admit_node`)."""
    name = attrs.name
    if attrs.verb == "create":
        name = str(_dict(_dict(body).get("metadata")).get("name") or "")
    if name != node:
        raise authz.forbidden(attrs, f'node "{node}" is not allowed to modify node "{name}"')


def _check_event(
    store: sqlite.Store, node: str, attrs: authz.Attributes, body: Any, content_type: str, refuse: errors.Forbidden
) -> None:
    if attrs.verb in ("update", "patch"):
        stored = store.get(EVENT, attrs.namespace, attrs.name)
        involved = _dict(stored.get("involvedObject"))
        ref = dict(involved, namespace=involved.get("namespace") or attrs.namespace)
        if not object_on_node(store, node, ref) and not _scheduling_event(store, ref, stored.get("reason")):
            raise refuse
        if attrs.verb == "patch":
            if (
                content_type != authz.MERGE_PATCH
                or not isinstance(body, dict)
                or {"involvedObject", "metadata"} & set(body)
            ):
                raise authz.forbidden(
                    attrs, "a node may only patch an Event's count, timestamps and message (a JSON merge patch)"
                )
            return
    involved = _dict(_dict(body).get("involvedObject"))
    ref = dict(involved, namespace=involved.get("namespace") or attrs.namespace)
    if involved.get("namespace") not in (None, "", attrs.namespace) or not (
        object_on_node(store, node, ref) or _scheduling_event(store, ref, _dict(body).get("reason"))
    ):
        raise refuse


def _scheduling_event(store: sqlite.Store, ref: Obj, reason: Any) -> bool:
    """A ``FailedScheduling`` Event of an unscheduled pod: the embedded node agent schedules its one node and
    reports a pod that does not fit, as kube-scheduler does (see :mod:`dockyard.agent.scheduling`)."""
    if reason != "FailedScheduling" or ref.get("kind") != "Pod" or not isinstance(ref.get("name"), str):
        return False
    pod = _get(store, POD, str(ref.get("namespace") or ""), ref["name"])
    return pod is not None and not _dict(pod.get("spec")).get("nodeName")
