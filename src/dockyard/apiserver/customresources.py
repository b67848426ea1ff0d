"""CustomResourceDefinitions: their validation and status, and the kinds served from them.

Follows apiextensions-apiserver (``apiextensions.k8s.io/v1``):

- A CRD is cluster-scoped and named ``<spec.names.plural>.<spec.group>``. It is refused (422)
  unless its group is a DNS subdomain with a dot, its names are DNS labels (``kind``/``listKind``
  start with a letter), its scope is ``Namespaced`` or ``Cluster``, it has versions with unique
  names of which exactly one is ``storage``, and every version has a *structural*
  ``openAPIV3Schema`` (:func:`dockyard.apiserver.structural.structural_causes`).
- On every write the server sets ``status.acceptedNames`` and the conditions ``NamesAccepted``
  (``NoConflicts``, or ``False`` when another served resource of the group uses one of the
  names) and ``Established`` (``InitialNamesAccepted``), as the CRD naming and establishing
  controllers do, synchronously.
- An Established CRD's *storage* version is served (:func:`sync`): discovery, OpenAPI, the
  same CRUD/watch/patch handlers as the built-in kinds, validation against its schema with
  pruning and defaulting (:func:`admit`), ``x-kubernetes-validations`` (:mod:`.celrules`),
  ``additionalPrinterColumns`` as Tables and the
  ``status`` subresource. Other versions are accepted in the CRD but not served (no conversion).
- dockyard's own kinds (group ``dockyard.dev``) are served from their CRDs the same way and keep
  their server-side rules (:mod:`dockyard.api.validation`, the subresources ``instantiate``,
  ``log`` ...) as admission for the kind names dockyard owns.
- Deleting a CRD deletes its objects first (the apiserver's ``customresourcecleanup`` finalizer),
  then stops serving it.

The served set is process-wide (:func:`dockyard.api.kinds.set_custom`): one API server per process.
"""

from __future__ import annotations

import copy
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from dockyard.api import errors, kinds
from dockyard.api.errors import Cause
from dockyard.api.names import DNS1123_LABEL, DNS1123_SUBDOMAIN
from dockyard.apiserver import celrules, objects, structural
from dockyard.storage import sqlite

Obj = dict[str, Any]

CRD = kinds.by_kind(f"{kinds.APIEXTENSIONS_GROUP}/v1", "CustomResourceDefinition")
assert CRD is not None
SCOPES = ("Namespaced", "Cluster")
ESTABLISHED = "Established"
NAMES_ACCEPTED = "NamesAccepted"

_KIND = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
_VERSION = DNS1123_LABEL


@dataclass(frozen=True)
class Served:
    """One kind served from a CRD.

    Attributes:
        crd: the CRD's name (``plural.group``).
        info: the resource (for dockyard's kinds, their entry of :data:`dockyard.api.kinds.RESOURCES`).
        schema: the ``openAPIV3Schema`` of the served (storage) version.
        columns: its ``additionalPrinterColumns``.
        owned: one of dockyard's kinds (keeps :mod:`dockyard.api.validation` as admission).
    """

    crd: str
    info: kinds.ResourceInfo
    schema: Obj
    columns: list[Obj] = field(default_factory=list)
    owned: bool = False


_lock = threading.Lock()
_served: dict[str, Served] = {}
_generation = [0]


def generation() -> int:
    """Bumped whenever the served set changes (OpenAPI documents are cached per generation)."""
    return _generation[0]


def lookup(info: kinds.ResourceInfo) -> Served | None:
    """The CRD serving data of ``info``, or ``None`` for a built-in kind."""
    return _served.get(sqlite.resource_key(info))


def all_served() -> list[Served]:
    """Every kind served from a CRD, in CRD name order."""
    return sorted(_served.values(), key=lambda s: s.crd)


# ------------------------------------------------------------------ CRD validation


def _names_causes(names: Any) -> list[Cause]:
    if not isinstance(names, dict):
        return [Cause("spec.names", "Required value", "FieldValueRequired")]
    causes: list[Cause] = []
    for key in ("plural", "singular"):
        value = names.get(key)
        if key == "plural" and not value:
            causes.append(Cause("spec.names.plural", "Required value", "FieldValueRequired"))
        elif value is not None and (not isinstance(value, str) or not DNS1123_LABEL.match(value)):
            causes.append(
                Cause(
                    f"spec.names.{key}",
                    f'Invalid value: "{value}": a lowercase RFC 1123 label must consist of lower case alphanumeric '
                    "characters or '-', and must start and end with an alphanumeric character",
                    "FieldValueInvalid",
                )
            )
    for key in ("kind", "listKind"):
        value = names.get(key)
        if key == "kind" and not value:
            causes.append(Cause("spec.names.kind", "Required value", "FieldValueRequired"))
        elif value is not None and (not isinstance(value, str) or not _KIND.match(value)):
            causes.append(
                Cause(
                    f"spec.names.{key}",
                    f'Invalid value: "{value}": must start with a letter, letters and digits only',
                    "FieldValueInvalid",
                )
            )
    if names.get("kind") and names.get("kind") == names.get("listKind"):
        causes.append(
            Cause(
                "spec.names.listKind",
                f'Invalid value: "{names["listKind"]}": kind and listKind may not be the same',
                "FieldValueInvalid",
            )
        )
    for key in ("shortNames", "categories"):
        values = names.get(key)
        if values is None:
            continue
        if not isinstance(values, list):
            causes.append(Cause(f"spec.names.{key}", "Invalid value: must be a list", "FieldValueInvalid"))
            continue
        for i, value in enumerate(values):
            if not isinstance(value, str) or not DNS1123_LABEL.match(value):
                causes.append(
                    Cause(
                        f"spec.names.{key}[{i}]",
                        f'Invalid value: "{value}": a lowercase RFC 1123 label',
                        "FieldValueInvalid",
                    )
                )
    return causes


def _versions_causes(versions: Any) -> list[Cause]:
    if not isinstance(versions, list) or not versions:
        return [
            Cause(
                "spec.versions",
                "Invalid value: must have exactly one version marked as storage version",
                "FieldValueInvalid",
            )
        ]
    causes: list[Cause] = []
    seen: set[str] = set()
    storage = 0
    for i, version in enumerate(versions):
        where = f"spec.versions[{i}]"
        if not isinstance(version, dict):
            causes.append(Cause(where, "Invalid value: must be an object", "FieldValueInvalid"))
            continue
        name = version.get("name")
        if not isinstance(name, str) or not _VERSION.match(name):
            causes.append(
                Cause(f"{where}.name", f'Invalid value: "{name}": must be a DNS-1035 label', "FieldValueInvalid")
            )
        elif name in seen:
            causes.append(Cause(f"{where}.name", f'Duplicate value: "{name}"', "FieldValueDuplicate"))
        seen.add(str(name))
        for flag in ("served", "storage"):
            if not isinstance(version.get(flag), bool):
                causes.append(Cause(f"{where}.{flag}", "Required value", "FieldValueRequired"))
        storage += version.get("storage") is True
        schema = (
            (version.get("schema") or {}).get("openAPIV3Schema") if isinstance(version.get("schema"), dict) else None
        )
        if schema is None:
            causes.append(
                Cause(f"{where}.schema.openAPIV3Schema", "Required value: schemas are required", "FieldValueRequired")
            )
        else:
            causes.extend(structural.structural_causes(schema, f"{where}.schema.openAPIV3Schema"))
        subresources = version.get("subresources") or {}
        if not isinstance(subresources, dict) or set(subresources) - {"status"}:
            causes.append(
                Cause(
                    f"{where}.subresources",
                    "Unsupported value: only the status subresource is served (no scale)",
                    "FieldValueNotSupported",
                )
            )
        for j, column in enumerate(version.get("additionalPrinterColumns") or []):
            if not isinstance(column, dict) or not column.get("name") or not column.get("jsonPath"):
                causes.append(
                    Cause(
                        f"{where}.additionalPrinterColumns[{j}]",
                        "Required value: name and jsonPath",
                        "FieldValueRequired",
                    )
                )
    if storage != 1:
        causes.append(
            Cause(
                "spec.versions",
                "Invalid value: must have exactly one version marked as storage version",
                "FieldValueInvalid",
            )
        )
    return causes


def crd_causes(obj: Obj) -> list[Cause]:
    """Why a CRD is invalid (field-path causes as the apiserver words them); ``[]`` if it is valid."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [Cause("spec", "Required value", "FieldValueRequired")]
    causes: list[Cause] = []
    group = spec.get("group")
    if not isinstance(group, str) or not group:
        causes.append(Cause("spec.group", "Required value", "FieldValueRequired"))
    elif not DNS1123_SUBDOMAIN.match(group) or "." not in group:
        causes.append(
            Cause(
                "spec.group", f'Invalid value: "{group}": should be a domain with at least one dot', "FieldValueInvalid"
            )
        )
    elif group in {i.group for i in kinds.RESOURCES if i.group != kinds.GROUP}:
        causes.append(
            Cause(
                "spec.group",
                f'Invalid value: "{group}": is a group served by the API server itself',
                "FieldValueInvalid",
            )
        )
    scope = spec.get("scope")
    if scope not in SCOPES:
        causes.append(
            Cause(
                "spec.scope",
                f'Unsupported value: "{scope}": supported values: "Cluster", "Namespaced"',
                "FieldValueNotSupported",
            )
        )
    names = spec.get("names")
    causes.extend(_names_causes(names))
    causes.extend(_versions_causes(spec.get("versions")))
    plural = names.get("plural") if isinstance(names, dict) else None
    name = (obj.get("metadata") or {}).get("name")
    if plural and isinstance(group, str) and name != f"{plural}.{group}":
        causes.append(
            Cause(
                "metadata.name",
                f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group',
                "FieldValueInvalid",
            )
        )
    conversion = spec.get("conversion")
    if isinstance(conversion, dict) and conversion.get("strategy") not in (None, "None"):
        causes.append(
            Cause(
                "spec.conversion.strategy",
                'Unsupported value: only "None" is served (no conversion webhooks)',
                "FieldValueNotSupported",
            )
        )
    return causes


def check_update(old: Obj, new: Obj) -> list[Cause]:
    """Immutable fields of a CRD (``spec.scope`` once established; the name fixes group and plural)."""
    if (old.get("spec") or {}).get("scope") != (new.get("spec") or {}).get("scope"):
        return [Cause("spec.scope", "Invalid value: field is immutable", "FieldValueInvalid")]
    return []


def validate_crd(obj: Obj, old: Obj | None = None) -> Obj:
    """Default and check a CRD; returns it with ``listKind``/``singular`` defaulted.

    Raises:
        errors.Invalid: with one cause per bad field (422).
    """
    out = copy.deepcopy(obj)
    causes = crd_causes(out)
    if not causes and old is not None:
        causes = check_update(old, out)
    if causes:
        name = str((out.get("metadata") or {}).get("name") or "")
        raise errors.Invalid(kind=CRD.kind, group=CRD.group, name=name, causes=causes)
    names = out["spec"]["names"]
    names.setdefault("singular", str(names["kind"]).lower())
    names.setdefault("listKind", f"{names['kind']}List")
    return out


# ------------------------------------------------------------------ status (naming and establishing controllers)


def _names_in_use(info: kinds.ResourceInfo) -> set[str]:
    return {info.plural, info.singular, *info.short_names, info.kind.lower(), info.list_kind.lower()}


def _condition(type_: str, ok: bool, reason: str, message: str, now: str, old: list[Obj]) -> Obj:
    status = "True" if ok else "False"
    before = next((c for c in old if c.get("type") == type_), None)
    since = before.get("lastTransitionTime") if before and before.get("status") == status else now
    return {"type": type_, "status": status, "lastTransitionTime": since, "reason": reason, "message": message}


def with_status(store: sqlite.Store, obj: Obj) -> Obj:
    """``obj`` (a valid CRD) with ``status.acceptedNames`` and its conditions set from the served names.

    A name is in conflict when a served resource of the same group, not this CRD's, uses it
    as plural, singular, short name or kind (the apiserver's ``NamingConditionController``).
    """
    spec = obj["spec"]
    names, group = spec["names"], spec["group"]
    own = obj["metadata"]["name"]
    taken: set[str] = set()
    for info in kinds.served():
        if info.group == group and f"{info.plural}.{info.group}" != own:
            taken |= _names_in_use(info)
    for other in store.list(CRD, None).items:
        other_spec = other.get("spec") or {}
        if other["metadata"]["name"] == own or other_spec.get("group") != group:
            continue
        other_names = (other.get("status") or {}).get("acceptedNames") or {}
        taken |= {str(v).lower() for k, v in other_names.items() if k in ("plural", "singular", "kind", "listKind")}
        taken |= {str(v) for v in other_names.get("shortNames") or []}
    wanted = {names["plural"], names["singular"], str(names["kind"]).lower(), str(names["listKind"]).lower()}
    wanted |= set(names.get("shortNames") or [])
    clash = sorted(wanted & taken)
    now = objects.now_rfc3339()
    old = list((obj.get("status") or {}).get("conditions") or [])
    out = copy.deepcopy(obj)
    if clash:
        conditions = [
            _condition(NAMES_ACCEPTED, False, "NameConflict", f'"{clash[0]}" is already in use', now, old),
            _condition(ESTABLISHED, False, "NotAccepted", "not all names are accepted", now, old),
        ]
        accepted = (obj.get("status") or {}).get("acceptedNames") or {"plural": "", "kind": ""}
    else:
        conditions = [
            _condition(NAMES_ACCEPTED, True, "NoConflicts", "no conflicts found", now, old),
            _condition(ESTABLISHED, True, "InitialNamesAccepted", "the initial names have been accepted", now, old),
        ]
        accepted = copy.deepcopy(names)
    storage = [v["name"] for v in spec["versions"] if v.get("storage")]
    out["status"] = {"conditions": conditions, "acceptedNames": accepted, "storedVersions": storage}
    return out


def established(obj: Obj) -> bool:
    """True if the CRD's ``Established`` condition is ``True``."""
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == ESTABLISHED and c.get("status") == "True" for c in conditions)


# ------------------------------------------------------------------ serving


def _served_version(spec: Obj) -> Obj | None:
    for version in spec.get("versions") or []:
        if version.get("storage") and version.get("served"):
            return version  # type: ignore[no-any-return]
    return None


def served_from(crd: Obj) -> Served | None:
    """What an Established CRD serves, or ``None`` (not established, or its storage version is not served)."""
    if not established(crd):
        return None
    spec = crd["spec"]
    version = _served_version(spec)
    if version is None:
        return None
    names = spec["names"]
    status = "status" in (version.get("subresources") or {})
    owned = next(
        (
            i
            for i in kinds.RESOURCES
            if i.group == kinds.GROUP == spec["group"] and i.plural == names["plural"] and i.version == version["name"]
        ),
        None,
    )
    if owned is not None and owned.kind == names["kind"] and status:
        info = owned
    else:
        categories = tuple(names.get("categories") or ())
        info = kinds.ResourceInfo(
            group=spec["group"],
            version=version["name"],
            kind=names["kind"],
            plural=names["plural"],
            namespaced=spec["scope"] == "Namespaced",
            subresources=("status",) if status else (),
            short_names=tuple(names.get("shortNames") or ()),
            has_status=status,
            categories=categories,
        )
    return Served(
        crd=crd["metadata"]["name"],
        info=info,
        schema=version["schema"]["openAPIV3Schema"],
        columns=list(version.get("additionalPrinterColumns") or []),
        owned=info is owned,
    )


def sync(store: sqlite.Store) -> None:
    """Serve exactly the kinds of the store's Established CRDs (call after every CRD write)."""
    _serve([c for c in store.list(CRD, None).items if not (c.get("metadata") or {}).get("deletionTimestamp")])


def serve_definitions(definitions: list[Obj]) -> None:
    """Serve the kinds of ``definitions`` (valid CRDs, taken as Established) without a store:
    for pure uses of the served set, such as the OpenAPI documents of dockyard's kinds in tests."""
    established_ = []
    for crd in definitions:
        out = validate_crd(crd)
        out["status"] = {"conditions": [{"type": ESTABLISHED, "status": "True"}]}
        established_.append(out)
    _serve(established_)


def _serve(definitions: list[Obj]) -> None:
    served: dict[str, Served] = {}
    for crd in definitions:
        entry = served_from(crd)
        if entry is not None:
            served[sqlite.resource_key(entry.info)] = entry
    with _lock:
        if {k: (v.crd, v.info, v.schema, v.columns) for k, v in served.items()} == {
            k: (v.crd, v.info, v.schema, v.columns) for k, v in _served.items()
        }:
            return
        _served.clear()
        _served.update(served)
        kinds.set_custom([s.info for s in served.values()])
        _generation[0] += 1


def reset() -> None:
    """Serve no CRD kinds (a new API server in this process starts from its own store)."""
    with _lock:
        _served.clear()
        kinds.set_custom([])
        _generation[0] += 1


def admit(served: Served, obj: Obj, field_validation: str | None) -> tuple[Obj, list[str]]:
    """Prune, default and validate a custom resource against its CRD's schema.

    Unknown fields follow ``fieldValidation`` as for every kind here
    (:func:`dockyard.api.validation.validate_fields`): not given → 422 naming them;
    ``Strict`` → 400; ``Warn`` → pruned with a warning; ``Ignore`` → pruned silently.

    Returns:
        ``(object, warnings)``.
    Raises:
        errors.Invalid: a field breaks the schema (422 ``spec.x: Invalid value: ...``).
        errors.BadRequest: unknown fields under ``Strict``.
    """
    info = served.info
    out = copy.deepcopy(obj)
    unknown = structural.prune(out, served.schema)
    name = str((obj.get("metadata") or {}).get("name") or (obj.get("metadata") or {}).get("generateName") or "")
    paths = [".".join(str(p) for p in loc) for loc in unknown]
    warnings: list[str] = []
    if paths:
        if field_validation == "Strict":
            raise errors.BadRequest(
                f'{info.kind} in version "{info.version}" cannot be handled as a {info.kind}: strict decoding error: '
                + ", ".join(f'unknown field "{p}"' for p in paths)
            )
        if field_validation is None:
            causes = [
                Cause(p, "field not declared in schema", "FieldValueInvalid", loc)
                for p, loc in zip(paths, unknown, strict=True)
            ]
            raise errors.Invalid(kind=info.kind, group=info.group, name=name, causes=causes)
        if field_validation == "Warn":
            warnings = [f'unknown field "{p}"' for p in paths]
    structural.apply_defaults(out, served.schema)
    causes = structural.validate(out, served.schema)
    if not causes and not served.owned:  # dockyard's kinds: their models' validators state the same rules
        causes = celrules.causes(out, served.schema)
    if causes:
        raise errors.Invalid(kind=info.kind, group=info.group, name=name, causes=causes)
    return out, warnings
