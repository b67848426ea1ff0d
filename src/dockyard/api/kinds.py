"""The table of kinds the API server serves.

Each entry names a kind the way Kubernetes discovery does
(``APIResource`` in ``meta/v1``: group, version, kind, plural ``name``,
``namespaced``, ``verbs``, ``subresources``). The API server builds its
discovery documents, routes and OpenAPI from this table; clients build their
resource handles from it. No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

GROUP = "dockyard.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

KUBERNETES_VERSION = (1, 32)
"""The Kubernetes minor version whose API dockyard follows (``GET /version``; the prober's ``kube-probe/1.32``)."""

APIEXTENSIONS_GROUP = "apiextensions.k8s.io"
"""The group of ``CustomResourceDefinition``."""

COORDINATION_GROUP = "coordination.k8s.io"
DISCOVERY_GROUP = "discovery.k8s.io"
"""The group of ``EndpointSlice`` (kept by the endpoints controller, read by ``kubectl describe svc`` and the proxy)."""
"""The group of ``Lease`` (leader election and node heartbeats in Kubernetes)."""

VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True, kw_only=True)
class ResourceInfo:
    """One served resource.

    Attributes:
        group: API group, ``""`` for the core (legacy) group served under ``/api``.
        version: API version within the group, e.g. ``v1``.
        kind: CamelCase kind, e.g. ``BuildConfig``.
        plural: lower-case plural used in URLs, e.g. ``buildconfigs``.
        namespaced: True if objects live in a namespace.
        subresources: extra path segments served under an object,
            e.g. ``("status", "instantiate")``.
        short_names: kubectl short names (``bc`` for BuildConfig).
        has_status: True if spec and status are split (``/status`` subresource;
            writes to the main resource ignore ``status``, and bump
            ``metadata.generation`` when ``spec`` changes).
    """

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    subresources: tuple[str, ...] = ("status",)
    short_names: tuple[str, ...] = ()
    has_status: bool = True
    categories: tuple[str, ...] = field(default=())

    @property
    def api_version(self) -> str:
        """``group/version``, or just ``version`` for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"


RESOURCES: tuple[ResourceInfo, ...] = (
    # dockyard.dev/v1alpha1
    ResourceInfo(
        group=GROUP,
        version=VERSION,
        kind="BuildConfig",
        plural="buildconfigs",
        subresources=("status", "instantiate", "instantiatebinary", "webhooks"),
        short_names=("bc",),
        categories=("all", "dockyard"),
    ),
    ResourceInfo(
        group=GROUP,
        version=VERSION,
        kind="Build",
        plural="builds",
        subresources=("status", "log", "source", "details"),
        categories=("all", "dockyard"),
    ),
    ResourceInfo(group=GROUP, version=VERSION, kind="Push", plural="pushes", categories=("all", "dockyard")),
    ResourceInfo(group=GROUP, version=VERSION, kind="Image", plural="images", categories=("all", "dockyard")),
    ResourceInfo(
        group=GROUP,
        version=VERSION,
        kind="ImageDeploy",
        plural="imagedeploys",
        short_names=("idp",),
        categories=("all", "dockyard"),
    ),
    # core v1
    ResourceInfo(
        group="",
        version="v1",
        kind="Namespace",
        plural="namespaces",
        namespaced=False,
        subresources=("status", "finalize"),  # finalize: PUT only, the one way to change spec.finalizers
        short_names=("ns",),
    ),
    # registered and heart-beaten by the node agent (dockyard.agent.nodestatus), as the kubelet registers its Node
    ResourceInfo(group="", version="v1", kind="Node", plural="nodes", namespaced=False, short_names=("no",)),
    ResourceInfo(
        group="",
        version="v1",
        kind="Pod",
        plural="pods",
        short_names=("po",),
        subresources=("status", "log"),  # log: from the pod's node agent (dockyard.apiserver.podlogs)
        categories=("all",),
    ),
    ResourceInfo(group="", version="v1", kind="Secret", plural="secrets", subresources=(), has_status=False),
    ResourceInfo(
        group="",
        version="v1",
        kind="ConfigMap",
        plural="configmaps",
        subresources=(),
        has_status=False,
        short_names=("cm",),
    ),
    ResourceInfo(
        group="", version="v1", kind="Event", plural="events", subresources=(), has_status=False, short_names=("ev",)
    ),
    ResourceInfo(group="", version="v1", kind="Service", plural="services", short_names=("svc",), categories=("all",)),
    # apps/v1
    ResourceInfo(
        group="apps",
        version="v1",
        kind="Deployment",
        plural="deployments",
        short_names=("deploy",),
        categories=("all",),
    ),
    ResourceInfo(
        group="apps", version="v1", kind="ReplicaSet", plural="replicasets", short_names=("rs",), categories=("all",)
    ),
    # discovery.k8s.io/v1: the endpoints of Services (kube-controller-manager's EndpointSlice controller)
    ResourceInfo(
        group=DISCOVERY_GROUP,
        version="v1",
        kind="EndpointSlice",
        plural="endpointslices",
        subresources=(),
        has_status=False,
    ),
    # coordination.k8s.io/v1: leader election (client-go tools/leaderelection, kube-controller-manager)
    ResourceInfo(
        group=COORDINATION_GROUP, version="v1", kind="Lease", plural="leases", subresources=(), has_status=False
    ),
    # apiextensions.k8s.io/v1: the kinds served from CustomResourceDefinitions (dockyard.apiserver.customresources)
    ResourceInfo(
        group=APIEXTENSIONS_GROUP,
        version="v1",
        kind="CustomResourceDefinition",
        plural="customresourcedefinitions",
        namespaced=False,
        short_names=("crd", "crds"),
        categories=("api-extensions",),
    ),
)
"""Every kind dockyard knows (clients build their handles from it). The API server serves the
kinds outside :data:`GROUP` from the start and dockyard's own once their CRDs are established."""


def _key(info: ResourceInfo) -> str:
    return f"{info.plural}.{info.group}" if info.group else info.plural


_custom: dict[tuple[str, str], ResourceInfo] = {}
_served: tuple[ResourceInfo, ...] = ()
_by_key: dict[str, ResourceInfo] = {}
_by_path: dict[tuple[str, str, str], ResourceInfo] = {}  # (group, version, plural) -> served kind
_by_kind: dict[tuple[str, str], ResourceInfo] = {}  # (apiVersion, kind) -> served kind, else known
_group_versions: list[tuple[str, str]] = []
_served_group_versions: frozenset[tuple[str, str]] = frozenset()


def _index() -> None:
    """Rebuild the lookups from :data:`_served` (every request looks a kind up: dicts, not scans)."""
    global _by_key, _by_path, _by_kind, _group_versions, _served_group_versions
    _by_key = {_key(i): i for i in (*RESOURCES, *_served)}
    _by_path = {}
    for info in _served:
        _by_path.setdefault((info.group, info.version, info.plural), info)
    _by_kind = {}
    for info in (*_served, *RESOURCES):
        _by_kind.setdefault((info.api_version, info.kind), info)
    pairs = list(dict.fromkeys((info.group, info.version) for info in _served))
    _group_versions = sorted(pairs, key=lambda p: (p[0] != "", p[0]))
    _served_group_versions = frozenset(pairs)


def served() -> tuple[ResourceInfo, ...]:
    """The kinds the API server serves now: the built-in ones, then those of established CRDs."""
    return _served


def set_custom(infos: list[ResourceInfo]) -> None:
    """Replace the kinds served from CustomResourceDefinitions (the API server's CRD registry calls this)."""
    global _served
    _custom.clear()
    _custom.update({(i.group, i.plural): i for i in infos})
    _served = tuple(i for i in RESOURCES if i.group != GROUP) + tuple(_custom.values())
    _index()


def by_key(key: str) -> ResourceInfo | None:
    """The kind stored under ``plural.group`` (``plural`` for the core group): served, else known."""
    return _by_key.get(key)


# Field selectors each kind supports beyond metadata.name and metadata.namespace: the apiserver's
# (``GetAttrs``/``AddFieldLabelConversionFunc`` of pods, events, secrets, namespaces, nodes, replicasets),
# and for dockyard's kinds the fields a CRD would declare in ``selectableFields``.
FIELD_LABELS: dict[str, tuple[str, ...]] = {
    "Pod": (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    "Event": (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
    "Secret": ("type",),
    "Namespace": ("status.phase",),
    "Node": ("spec.unschedulable",),  # NodeToSelectableFields (metadata.name is every kind's)
    "ReplicaSet": ("status.replicas",),
    "Build": ("status.phase",),
    "Push": ("spec.podName", "status.phase", "status.nodeName"),
    "Image": ("spec.repository",),
    "ImageDeploy": ("spec.imageRef.name",),
}
FIELD_LABEL_ALIASES = {"source": "source.component"}
"""Field labels that name another path of the object (an Event's ``source`` is ``source.component``)."""


def field_labels(info: ResourceInfo) -> tuple[str, ...]:
    """The field selectors ``info`` supports (API concepts, "Field Selectors": others are 400)."""
    return ("metadata.name", "metadata.namespace") + FIELD_LABELS.get(info.kind, ())


def field_path(label: str) -> str:
    """The dotted path of the object a field label reads."""
    return FIELD_LABEL_ALIASES.get(label, label)


def by_plural(group: str, version: str, plural: str) -> ResourceInfo | None:
    """Find the resource served at ``/apis/{group}/{version}/.../{plural}`` (group ``""`` for ``/api``)."""
    return _by_path.get((group, version, plural))


def by_kind(api_version: str, kind: str) -> ResourceInfo | None:
    """Find the resource for an object's ``apiVersion`` and ``kind``: served, else known to dockyard."""
    return _by_kind.get((api_version, kind))


def group_versions() -> list[tuple[str, str]]:
    """Distinct served (group, version) pairs in serving order, core group first (a new list)."""
    return list(_group_versions)


def serves(group: str, version: str) -> bool:
    """Whether any kind is served under ``group``/``version`` (``""`` for the core group)."""
    return (group, version) in _served_group_versions


set_custom([])  # the built-in kinds, indexed
