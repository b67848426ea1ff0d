"""``apiextensions.k8s.io/v1`` CustomResourceDefinitions of dockyard's kinds, generated from the models. Pure.

The schemas come from the same pydantic models that validate on the embedded server
(:data:`dockyard.api.models.SPEC_MODELS`, :data:`~dockyard.api.models.STATUS_MODELS`), made *structural*
as "Specifying a structural schema" requires
(https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema):
every node has a ``type`` (or ``x-kubernetes-int-or-string`` / ``x-kubernetes-preserve-unknown-fields``),
no ``$ref``, no ``anyOf``/``allOf``/``oneOf`` carrying types, ``additionalProperties`` never next to
``properties``. Descriptions, enums, defaults, ``minLength``/``minimum`` and ``required`` come over as
they are; ``Optional`` fields become plain fields (a ``null`` is pruned by the apiserver).

``x-kubernetes-preserve-unknown-fields`` is set only where the model itself is open: a
``dict[str, Any]`` (a trigger's ``imageChange``/``generic``, a Build's
``triggeredBy``) and ImageDeploy's ``deployment``, an ``apps/v1`` DeploymentSpec that the apiserver
validates when the Deployment is written (its ``selector``, ``template.spec.containers`` are declared so
that what the model requires is required here too).

Rules a JSON schema cannot say are ``x-kubernetes-validations`` CEL rules (:data:`CEL_RULES`), written to
refuse what the model's validators refuse; :data:`EMBEDDED_ONLY` lists what only the embedded server checks.

Printer columns are the Tables of :mod:`dockyard.apiserver.columns` as JSONPath
(:data:`PRINTER_COLUMNS`; a column computed from several fields prints its main field).
"""

from __future__ import annotations

import copy
from typing import Any

from dockyard.api import kinds, models
from dockyard.apiserver import schemas

Schema = dict[str, Any]

CATEGORY = "dockyard"
"""The category of every dockyard kind: ``kubectl get dockyard`` lists them all."""

_IMAGE_REFERENCE = [
    {
        "rule": "self.matches('^[A-Za-z0-9][A-Za-z0-9._\\\\-/:@]*$') && !self.contains('://')",
        "message": "is not an image reference (expected HOST[:PORT]/REPOSITORY[:TAG])",
    }
]
_GIT_REF = [
    {"rule": "!self.startsWith('-')", "message": "must not start with '-'"},
    {
        "rule": "!self.matches('[\\\\x00-\\\\x20\\\\x7f~^:?*\\\\[\\\\\\\\]')",
        "message": "must not contain control characters, space, ~ ^ : ? * [ or \\ (git refname rules)",
    },
    {
        "rule": "!self.contains('..') && !self.contains('@{') && self != '@'",
        "message": "must not contain '..' or '@{' nor be '@'",
    },
    {
        "rule": "!self.startsWith('/') && !self.endsWith('/') && !self.contains('//') && !self.endsWith('.')",
        "message": "must not start or end with '/', contain '//' or end with '.'",
    },
    {
        "rule": "!self.matches('(^|/)\\\\.') && !self.matches('\\\\.lock(/|$)')",
        "message": "no '/'-separated component may start with '.' or end with '.lock'",
    },
]
_GIT_URI = [
    {"rule": "!self.matches('[\\\\x00-\\\\x1f\\\\x7f]')", "message": "must not contain control characters"},
    {"rule": "!self.startsWith('-')", "message": "must not start with '-'"},
    {
        "rule": "!self.matches('^[A-Za-z][A-Za-z0-9+.-]*::')",
        "message": "the <transport>::<address> form (ext::, fd::, remote helpers) is not allowed",
    },
    {
        "rule": "!self.matches('^[A-Za-z][A-Za-z0-9+.-]*://') || self.matches('^(?i)(https|http|ssh|git|file)://')",
        "message": "scheme is not allowed (use file, git, http, https, ssh)",
    },
    {
        "rule": "!self.matches('^[A-Za-z][A-Za-z0-9+.-]*://([^/@]*@)?-')",
        "message": "the host and user must not start with '-'",
    },
]

_RELATIVE_PATH = [
    {
        "rule": "!self.startsWith('/') && self != '..' && !self.startsWith('../') && !self.endsWith('/..') "
        "&& !self.contains('/../')",
        "message": "must be a relative path inside the source, without '..'",
    }
]

CEL_RULES: dict[tuple[str, str], list[dict[str, str]]] = {
    ("GitBuildSource", "uri"): _GIT_URI,
    ("GitBuildSource", "ref"): _GIT_REF,
    ("BuildSource", "contextDir"): _RELATIVE_PATH,
    ("DockerBuildStrategy", "dockerfilePath"): _RELATIVE_PATH,
    ("ObjectReference", "name"): _IMAGE_REFERENCE,
    ("PushSpec", "image"): _IMAGE_REFERENCE,
    ("ImageSpec", "repository"): [
        *_IMAGE_REFERENCE,
        {"rule": "!self.contains('@')", "message": "must name a repository, without a tag or digest"},
    ],
    ("ImageSpec", "interval"): [
        {
            "rule": "self.matches('^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))+$') && duration(self) > duration('0s')",
            "message": "is not a duration such as 30s, 5m or 1h",
        }
    ],
}
"""``(model class, field)`` → the CEL rules of the field's validator (``self`` is the field's value)."""

EMBEDDED_ONLY = (
    "BuildConfig/Build spec.source.git.uri: URL syntax (Python's urlsplit) and an scp-like address's user "
    "and host not starting with '-' (the CEL rules check the scheme, helpers, control characters and URL "
    "hosts)",
    "Build/BuildConfig: which fields each source type and trigger type needs (dockyard.api.validation)",
    "ImageDeploy spec.deployment: the full apps/v1 DeploymentSpec is checked when the Deployment is written, "
    "not when the ImageDeploy is",
    "Image spec.policy and spec.filterTags: the semver range syntax, the RE2 pattern and the groups extract "
    "names, exactly one policy kind, tag and policy mutually exclusive, filterTags only with a policy",
    "the node authorizer and Pod Security admission (a cluster has its own)",
)
"""What only the embedded server enforces: rules neither the schema nor CEL states (``README``)."""

PRINTER_COLUMNS: dict[str, list[tuple[str, str, str]]] = {
    "Build": [
        ("Type", ".spec.strategy.type", "string"),
        ("From", ".spec.source.type", "string"),
        ("Status", ".status.phase", "string"),
        ("Started", ".status.startTimestamp", "date"),
        ("Duration", ".status.duration", "integer"),
        ("Digest", ".status.output.to.imageDigest", "string"),
        ("Age", ".metadata.creationTimestamp", "date"),
    ],
    "BuildConfig": [
        ("Type", ".spec.strategy.type", "string"),
        ("From", ".spec.source.type", "string"),
        ("Latest", ".status.lastVersion", "integer"),
    ],
    "Push": [
        ("Pod", ".spec.podName", "string"),
        ("Image", ".spec.image", "string"),
        ("Phase", ".status.phase", "string"),
        ("Reason", ".status.reason", "string"),
        ("Digest", ".status.imageDigest", "string"),
        ("Age", ".metadata.creationTimestamp", "date"),
        ("Trigger", ".spec.trigger", "string"),
        ("Attempts", ".status.attempts", "integer"),
        ("Node", ".status.nodeName", "string"),
        ("Message", ".status.message", "string"),
    ],
    "Image": [
        ("Repository", ".spec.repository", "string"),
        ("Tag", ".spec.tag", "string"),
        ("Latest Digest", ".status.latestDigest", "string"),
        ("Age", ".metadata.creationTimestamp", "date"),
        ("Last Scan", ".status.lastScanTime", "date"),
    ],
    "ImageDeploy": [
        ("Image", ".status.latestImage", "string"),
        ("Ready", '.status.conditions[?(@.type=="Ready")].status', "string"),
        ("Age", ".metadata.creationTimestamp", "date"),
        ("Deployment", ".status.deploymentName", "string"),
    ],
}
"""``kind`` → ``(column name, JSONPath, type)`` in the order of the Table (``NAME`` is kubectl's own)."""

_DEPLOYMENT_SPEC: Schema = {
    "type": "object",
    "description": "An apps/v1 DeploymentSpec for the owned Deployment (validated by the API server as a "
    "Deployment when it is written).",
    "x-kubernetes-preserve-unknown-fields": True,
    "required": ["template"],
    "properties": {
        "selector": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "template": {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
            "required": ["spec"],
            "properties": {
                "spec": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "required": ["containers"],
                    "properties": {
                        "containers": {
                            "type": "array",
                            "minItems": 1,
                            "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                        }
                    },
                }
            },
        },
    },
}
_DROP = ("title", "$defs", "discriminator")


class NotStructural(ValueError):
    """A model produced a schema the structural rules refuse (a bug in the model or here)."""


def _structural(node: Any, defs: dict[str, Any], owner: str, stack: tuple[str, ...]) -> Any:
    """``node`` with references inlined and pydantic's JSON Schema turned into a structural schema."""
    if not isinstance(node, dict):
        return node
    if "x-dockyard-ref" in node:
        return copy.deepcopy(_DEPLOYMENT_SPEC)
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name in stack:
            raise NotStructural(f"{name} refers to itself: a structural schema cannot be recursive")
        target = _structural(defs[name], defs, name, (*stack, name))
        extra = {k: v for k, v in node.items() if k in ("description", "default")}
        return {**target, **{k: _structural(v, defs, owner, stack) for k, v in extra.items()}}
    if "anyOf" in node or "allOf" in node:
        options = [o for o in node.get("anyOf", node.get("allOf", [])) if o != {"type": "null"}]
        rest = {k: v for k, v in node.items() if k not in ("anyOf", "allOf")}
        if len(options) == 1:
            merged = _structural(options[0], defs, owner, stack)
            merged.update(_structural(rest, defs, owner, stack))
            return merged
        if all(o.get("type") in ("string", "integer", "number") for o in options):
            return {**_structural(rest, defs, owner, stack), "x-kubernetes-int-or-string": True}
        raise NotStructural(f"{owner}: a union of {options} has no structural form")
    out: Schema = {}
    for key, value in node.items():
        if key in _DROP or (key == "additionalProperties" and value is False):
            continue
        if key == "default" and value is None:
            continue
        if key == "description" and isinstance(value, str):
            out[key] = value.replace("``", "")
        elif key == "properties":
            props: Schema = {}
            for name, prop in value.items():
                converted = _structural(prop, defs, owner, stack)
                rules = CEL_RULES.get((owner, name))
                if rules:
                    converted["x-kubernetes-validations"] = copy.deepcopy(rules)
                props[name] = converted
            out[key] = props
        elif key in ("items", "additionalProperties"):
            out[key] = _structural(value, defs, owner, stack)
        else:
            out[key] = copy.deepcopy(value)
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if "exclusiveMinimum" in out and not isinstance(out["exclusiveMinimum"], bool):
        out["minimum"], out["exclusiveMinimum"] = out["exclusiveMinimum"], True
    if out.get("additionalProperties") is True or (
        out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out
    ):
        out.pop("additionalProperties", None)
        out["x-kubernetes-preserve-unknown-fields"] = True
    add = out.get("additionalProperties")
    if isinstance(add, dict) and add.get("x-kubernetes-int-or-string"):
        out["additionalProperties"] = {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": "^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?"
            "(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$",
            "x-kubernetes-int-or-string": True,
        }
    return out


def model_schema(model: type[Any]) -> Schema:
    """The structural schema of a pydantic model, every reference inlined.

    Raises:
        NotStructural: a recursive model or a union of objects.
    """
    raw = model.model_json_schema(by_alias=True)
    defs = raw.pop("$defs", {})
    return _structural(raw, defs, model.__name__, (model.__name__,))  # type: ignore[no-any-return]


def _printer_columns(kind: str) -> list[Schema]:
    from dockyard.apiserver import columns

    descriptions = {c.name: c for c in columns.columns(kind)}
    out = []
    for name, path, type_ in PRINTER_COLUMNS[kind]:
        col: Schema = {"name": name, "type": type_, "jsonPath": path}
        source = descriptions[name]
        if source.description and source.description != name:
            col["description"] = source.description
        if source.priority:
            col["priority"] = source.priority
        out.append(col)
    return out


def _resource_info(kind: str) -> kinds.ResourceInfo:
    for info in kinds.RESOURCES:
        if info.group == kinds.GROUP and info.kind == kind:
            return info
    raise KeyError(kind)


def open_api_schema(kind: str) -> Schema:
    """The ``openAPIV3Schema`` of one of dockyard's kinds."""
    spec = model_schema(models.SPEC_MODELS[kind])
    status = model_schema(models.STATUS_MODELS[kind])
    spec["description"] = f"Specification of the desired behavior of the {kind}."
    status["description"] = f"Most recently observed status of the {kind}. Read-only."
    return {
        "type": "object",
        "description": schemas.KIND_DESCRIPTIONS[kind],
        "required": ["spec"],
        "properties": {
            "apiVersion": {
                "type": "string",
                "description": "APIVersion defines the versioned schema of this representation of an object.",
            },
            "kind": {
                "type": "string",
                "description": "Kind is a string value representing the REST resource this object represents.",
            },
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }


def crd(kind: str) -> Schema:
    """The CustomResourceDefinition of one of dockyard's kinds (``BuildConfig``, ``Build``, ``Push``,
    ``Image``, ``ImageDeploy``).

    Raises:
        KeyError: not one of dockyard's kinds.
    """
    info = _resource_info(kind)
    names: Schema = {
        "plural": info.plural,
        "singular": info.singular,
        "kind": info.kind,
        "listKind": info.list_kind,
        "categories": [c for c in info.categories if c != "all"] + (["all"] if "all" in info.categories else []),
    }
    if CATEGORY not in names["categories"]:
        names["categories"].insert(0, CATEGORY)
    if info.short_names:
        names["shortNames"] = list(info.short_names)
    version: Schema = {
        "name": info.version,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": open_api_schema(kind)},
        "subresources": {"status": {}},
        "additionalPrinterColumns": _printer_columns(kind),
    }
    selectable = [f for f in kinds.FIELD_LABELS.get(kind, ())]
    if selectable:
        version["selectableFields"] = [{"jsonPath": f".{f}"} for f in selectable]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{info.plural}.{info.group}"},
        "spec": {"group": info.group, "names": names, "scope": "Namespaced", "versions": [version]},
    }


def all_crds() -> list[Schema]:
    """The CRDs of every dockyard kind, in :data:`dockyard.api.kinds.RESOURCES` order."""
    return [crd(info.kind) for info in kinds.RESOURCES if info.group == kinds.GROUP]
