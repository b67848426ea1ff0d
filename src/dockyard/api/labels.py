"""Well-known labels and annotations: the one home of every key dockyard reads or writes.

In the manner of Kubernetes ``staging/src/k8s.io/api/core/v1/well_known_labels.go`` /
``annotation_key_constants.go`` and openshift/api ``build/v1/consts.go``: each key is a named constant with
its source; every other module imports it and never spells the key again (``tests/unit/test_one_home.py``
checks the source tree). No I/O.

Key values are stored in objects (labels, annotations, engine container labels), so changing one is a
behaviour change for objects created before: a renamed key needs its readers to accept the old one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dockyard.api.labelselector import MAX_LABEL_VALUE

# --- dockyard.dev: builds ------------------------------------------------------------------------

BUILD_POD = "dockyard.dev/build-pod"
"""Label of a build pod (value :data:`BUILD_POD_TRUE`); see :func:`dockyard.api.buildpod.is_build_pod`.
OpenShift marks build pods with the ``openshift.io/build.name`` annotation instead."""

BUILD_POD_TRUE = "true"
"""The one value of :data:`BUILD_POD` that makes a pod a build pod (any other value: an ordinary pod)."""

BUILD_NAME = "dockyard.dev/build.name"
"""Label of a build pod naming its Build (OpenShift ``BuildLabel``, ``openshift.io/build.name``).
Selected on by the build controller and the node authorizer. Before 0.2: ``dockyard.dev/build``."""

BUILD_NAME_ANNOTATION = "dockyard.dev/build.name"
"""Annotation of a build pod naming its Build (OpenShift ``BuildAnnotation``, ``openshift.io/build.name``)."""

BUILD_CONFIG = "dockyard.dev/buildconfig"
"""Label of a Build (and its build pod) naming its BuildConfig (OpenShift ``BuildConfigLabel``,
``openshift.io/build-config.name``); BuildConfig instantiation sets it, ``runPolicy`` selects on it
(DESIGN.md names it)."""

BUILD_NUMBER = "dockyard.dev/build.number"
"""Annotation of a Build: its sequence number within its BuildConfig (OpenShift ``BuildNumberAnnotation``,
``openshift.io/build.number``), written by ``buildconfigs/instantiate``. Before 0.2: ``dockyard.dev/build-number``."""

BUILD_TRIGGER = "dockyard.dev/trigger"
"""Annotation of a Build started by a BuildConfig trigger: the cause (``ConfigChange``, ``ImageChange:...``);
OpenShift records it in ``Build.spec.triggeredBy``."""

# --- dockyard.dev: nodes, images ----------------------------------------------------------------

NODE_NAME = "dockyard.dev/nodename"
"""Label naming the node that serves an object: set on a pod when the agent binds it, on a Push by
``pods/push``; the node authorizer checks it (Kubernetes' own ``kubernetes.io/hostname`` names a Node's
host, not a pod's node)."""

HOSTNAME = "kubernetes.io/hostname"
"""Label of a Node: its host name (``v1.LabelHostname``); the node agent sets it to the node's name. Pods name it
as a topology key."""

OS = "kubernetes.io/os"
"""Label of a Node: its operating system, ``linux`` here (``v1.LabelOSStable``); pods select on it."""

ARCH = "kubernetes.io/arch"
"""Label of a Node: its architecture as Go names it, ``amd64`` or ``arm64`` (``v1.LabelArchStable``)."""

NODE_ROLE_PREFIX = "node-role.kubernetes.io/"
"""Prefix of a Node's role labels (``node-role.kubernetes.io/control-plane``): ROLES in ``kubectl get nodes``. A
node may not set them on itself (NodeRestriction)."""

NODE_ROLE = "kubernetes.io/role"
"""The older Node role label, whose value names the role (kubectl's ``findNodeRoles`` reads it too)."""

NODE_RESTRICTION_PREFIX = "node-restriction.kubernetes.io/"
"""Prefix of Node labels only an administrator sets (NodeRestriction refuses them from the node itself)."""

RECONCILE_REQUESTED_AT = "dockyard.dev/reconcile-requested-at"
"""Annotation asking a controller to reconcile an object now (Flux ``reconcile.fluxcd.io/requestedAt``): any new
value does; the API server's registry notification endpoint sets it on the Images a push concerns, and the Image
controller reports the value it answered in ``status.lastHandledReconcileAt``."""

IMAGEDEPLOY_GENERATION = "dockyard.dev/imagedeploy-generation"
"""Annotation of a Deployment an ImageDeploy wrote: the ImageDeploy ``metadata.generation`` it reflects."""

# --- provenance of the images dockyard makes (OCI image-spec annotations.md "Pre-Defined Annotation Keys") ------
# Written as image config labels (what ``skopeo inspect`` shows under Labels, ``docker inspect`` under
# Config.Labels); the OCI keys mean the same as annotations and labels.

OCI_CREATED = "org.opencontainers.image.created"
"""When the image was made, RFC 3339 date-time (OCI ``org.opencontainers.image.created``)."""

OCI_BASE_NAME = "org.opencontainers.image.base.name"
"""Reference of the image this one is based on (OCI ``org.opencontainers.image.base.name``)."""

OCI_BASE_DIGEST = "org.opencontainers.image.base.digest"
"""Manifest digest of the image this one is based on (OCI ``org.opencontainers.image.base.digest``)."""

OCI_SOURCE = "org.opencontainers.image.source"
"""URL of the source the image was built from, credentials removed (OCI ``org.opencontainers.image.source``)."""

OCI_REVISION = "org.opencontainers.image.revision"
"""Source control revision (the git commit) the image was built from (OCI ``org.opencontainers.image.revision``)."""

BUILD_ORDER = "dockyard.dev/build.order"
"""Annotation of a Build's pushed manifest: ``<creationTimestamp>/<build number, 12 digits>/<namespace>/<name>``,
which sorts in Build creation order. A Build moves its output tag only if the manifest the tag names carries no
later value (last writer by creation order)."""

SOURCE_POD = "dockyard.dev/source-pod"
"""Label of a committed image (a Push): ``namespace/name`` of the pod whose container was committed."""

SOURCE_CONTAINER = "dockyard.dev/source-container"
"""Label of a committed image (a Push): the name of the pod's container that was committed."""

# --- Kubernetes ------------------------------------------------------------------------------------

APP_ARMOR_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
"""Prefix of the legacy per-container AppArmor annotation (``v1.DeprecatedAppArmorBetaContainerAnnotationKeyPrefix``,
``annotation_key_constants.go``); the key is the prefix plus the container name."""

POD_SECURITY_PREFIX = "pod-security.kubernetes.io/"
"""Prefix of the Pod Security Admission Namespace labels (``k8s.io/pod-security-admission/api``)."""

DEPLOYMENT_REVISION = "deployment.kubernetes.io/revision"
"""Annotation of a Deployment and its ReplicaSets (``deploymentutil.RevisionAnnotation``)."""

DEPLOYMENT_REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
"""ReplicaSet annotation (``deploymentutil.RevisionHistoryAnnotation``)."""

DEPLOYMENT_DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
"""ReplicaSet annotation (``deploymentutil.DesiredReplicasAnnotation``)."""

DEPLOYMENT_MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
"""ReplicaSet annotation (``deploymentutil.MaxReplicasAnnotation``)."""

LAST_APPLIED_CONFIG = "kubectl.kubernetes.io/last-applied-configuration"
"""Annotation ``kubectl apply`` keeps (``v1.LastAppliedConfigAnnotation``)."""

CONFIG_MIRROR = "kubernetes.io/config.mirror"
"""Annotation of a mirror pod: the API's image of a static pod the node runs from a file or URL, valued with the
static pod's :data:`CONFIG_HASH` (``kubetypes.ConfigMirrorAnnotationKey``, ``pkg/kubelet/types/pod_update.go``)."""

CONFIG_SOURCE = "kubernetes.io/config.source"
"""Annotation naming where the node took a pod from: ``file``, ``http`` or ``api``
(``kubetypes.ConfigSourceAnnotationKey``)."""

CONFIG_HASH = "kubernetes.io/config.hash"
"""Annotation of a static pod: the hash of its manifest as read (``kubetypes.ConfigHashAnnotationKey``)."""

CONFIG_SEEN = "kubernetes.io/config.seen"
"""Annotation of a static pod: when the node first saw this version of it (``kubetypes.ConfigFirstSeenAnnotationKey``)."""

POD_TEMPLATE_HASH = "pod-template-hash"
"""Label of a ReplicaSet and its pods (``apps/v1.DefaultDeploymentUniqueLabelKey``)."""

SERVICE_NAME = "kubernetes.io/service-name"
"""Label of an EndpointSlice naming its Service (``discovery/v1.LabelServiceName``); ``kubectl describe svc`` and
the node agent's proxy select slices by it."""

ENDPOINTSLICE_MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
"""Label of an EndpointSlice naming the controller that keeps it (``discovery/v1.LabelManagedBy``)."""

ENDPOINTSLICE_CONTROLLER = "endpointslice-controller.k8s.io"
"""The value of :data:`ENDPOINTSLICE_MANAGED_BY` on slices the endpoints controller keeps (kube-controller-manager's
``ControllerName``): slices with another value are left alone."""

# --- engine container labels (the node agent's, named as the kubelet's) -------------------------------
# The kubelet labels its containers ``io.kubernetes.pod.name``, ``io.kubernetes.pod.uid``, ...
# (``pkg/kubelet/kuberuntime/labels.go``, ``pkg/kubelet/types/labels.go``); dockyard's agent uses the same keys.
# They are stored on containers that outlive an agent restart (it adopts them by label); containers made
# before 0.2 carry the keys in :data:`LEGACY_KEYS` and are read through :func:`lookup`.

CONTAINER_POD_UID = "io.kubernetes.pod.uid"
"""Pod ``metadata.uid`` (kubelet ``KubernetesPodUIDLabel``)."""
CONTAINER_POD_NAME = "io.kubernetes.pod.name"
"""Pod ``metadata.name`` (kubelet ``KubernetesPodNameLabel``)."""
CONTAINER_POD_NAMESPACE = "io.kubernetes.pod.namespace"
"""Pod ``metadata.namespace`` (kubelet ``KubernetesPodNamespaceLabel``)."""
CONTAINER_POD_GRACE = "io.kubernetes.pod.terminationGracePeriod"
"""Grace period in seconds (kubelet ``podTerminationGracePeriodLabel``)."""
CONTAINER_NAME = "io.kubernetes.container.name"
"""Container name, ``POD`` for the infra container (kubelet ``KubernetesContainerNameLabel``)."""
CONTAINER_HASH = "io.kubernetes.container.hash"
"""Hash of the container spec (kubelet ``containerHashLabel``)."""
PRE_STOP_HANDLER = "io.kubernetes.container.preStopHandler"
"""Engine container label holding its preStop handler (JSON), as the kubelet's container annotation of that name:
the hook runs also when the agent stops a container whose pod spec it no longer has."""
CONTAINER_RESTARTS = "io.kubernetes.container.restartCount"
"""Restart count (kubelet ``containerRestartCountLabel``)."""
CONTAINER_BACKOFF = "dockyard.dev/container.backoff"
"""Crash-loop back-off in seconds before the next start (no kubelet label: it keeps it in memory)."""
CONTAINER_INSTANCE = "dockyard.instance"
"""Which agent owns the container: several ``dockyard up`` may share one engine's store. Kept unchanged since 0.1:
the agent finds its containers by it, so old and new containers alike are found."""

LEGACY_KEYS: dict[str, str] = {
    BUILD_NAME: "dockyard.dev/build",
    BUILD_NUMBER: "dockyard.dev/build-number",
    CONTAINER_POD_UID: "dockyard.pod.uid",
    CONTAINER_POD_NAME: "dockyard.pod.name",
    CONTAINER_POD_NAMESPACE: "dockyard.pod.namespace",
    CONTAINER_POD_GRACE: "dockyard.pod.termination-grace-period",
    CONTAINER_NAME: "dockyard.container.name",
    CONTAINER_HASH: "dockyard.container.hash",
    CONTAINER_RESTARTS: "dockyard.container.restarts",
    CONTAINER_BACKOFF: "dockyard.container.backoff",
}
"""Each renamed key mapped to the key dockyard 0.1 wrote; readers accept both (:func:`lookup`), writers use the new."""


def lookup(mapping: Mapping[str, Any] | None, key: str) -> str | None:
    """``mapping[key]``, else ``mapping[LEGACY_KEYS[key]]`` (objects and containers from dockyard 0.1), else None.

    ``mapping`` is a labels or annotations map (None tolerated)."""
    if not isinstance(mapping, Mapping):
        return None
    value = mapping.get(key)
    if value is None and key in LEGACY_KEYS:
        value = mapping.get(LEGACY_KEYS[key])
    return None if value is None else str(value)


def _meta_map(obj: Any, field: str) -> Any:
    """``obj.metadata.<field>`` of a dict-shaped or typed (pydantic, lightkube: attribute) object, or None."""
    if isinstance(obj, Mapping):
        meta = obj.get("metadata")
        return meta.get(field) if isinstance(meta, Mapping) else None
    return getattr(getattr(obj, "metadata", None), field, None)


def label_value(name: str) -> str:
    """``name`` (an object's name, up to 253 characters) as a label value: cut to
    :data:`dockyard.api.labelselector.MAX_LABEL_VALUE` characters, as OpenShift's ``LabelValue`` does for its
    build labels, then without the ``-`` or ``.`` the cut may leave at its end (a label value ends with an
    alphanumeric character). Several names can share one cut value: a reader that needs the exact name takes it
    from where it is whole (an ownerReference, an annotation)."""
    return name if len(name) <= MAX_LABEL_VALUE else name[:MAX_LABEL_VALUE].rstrip("-.")


def meta_field(obj: Any, field: str) -> Any:
    """``obj.metadata.<field>`` of a dict-shaped or typed object, or None (see :func:`get`)."""
    return _meta_map(obj, field)


def get(obj: Any, key: str) -> str | None:
    """``metadata.labels[key]`` of ``obj`` (a Kubernetes object: a dict, or typed with ``.metadata.labels``;
    legacy key accepted, :func:`lookup`), or None."""
    return lookup(_meta_map(obj, "labels"), key)


def get_annotation(obj: Any, key: str) -> str | None:
    """``metadata.annotations[key]`` of ``obj``, or None; tolerant of missing maps."""
    return lookup(_meta_map(obj, "annotations"), key)
