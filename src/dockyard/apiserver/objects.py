"""Server-owned object metadata and the spec/status split. Pure functions, no I/O.

Rules from the Kubernetes API conventions:

- "Metadata": the server sets ``uid``, ``creationTimestamp`` (RFC 3339, UTC,
  ``Z``), ``resourceVersion`` (by the store) and ``generation`` (1 on create,
  +1 whenever the desired state — everything outside ``metadata`` and
  ``status`` — changes); other client metadata (labels, annotations,
  ownerReferences, finalizers, unknown fields) is kept. ``generateName``
  is a prefix plus 5 random characters ("Idempotency").
- "Spec and Status": for kinds with a ``/status`` subresource, writes to the
  main resource keep the stored status, writes to ``/status`` change only the
  status; create drops the client's status (as for CRDs with the status
  subresource enabled).
- Names are DNS-1123 subdomains (namespaces: DNS-1123 labels), "Names" in the
  object-names concepts page; a bad name is 422 Invalid naming ``metadata.name``.
"""

from __future__ import annotations

import copy
import secrets
from typing import Any

from dockyard.api import errors, kinds, names, objectmeta, phases, timefmt

Obj = dict[str, Any]

# Alphabet and length of k8s.io/apiserver's SimpleNameGenerator (no vowels, no confusables).
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_MAX_GENERATED_PREFIX = 63 - 5

# Metadata the server owns: a client cannot set or change these.
_SERVER_OWNED = ("uid", "creationTimestamp", "generation", "deletionTimestamp", "deletionGracePeriodSeconds")


def now_rfc3339() -> str:
    """The current UTC time as RFC 3339 with second precision and ``Z`` (``2024-05-01T12:00:00Z``)."""
    return timefmt.now()


def generate_name(prefix: str) -> str:
    """``prefix`` (cut to 58 characters) plus 5 random lower-case alphanumerics."""
    return prefix[:_MAX_GENERATED_PREFIX] + "".join(secrets.choice(_NAME_ALPHABET) for _ in range(5))


def _invalid(info: kinds.ResourceInfo, name: str, field: str, message: str) -> errors.Invalid:
    return errors.Invalid(
        kind=info.kind, group=info.group, name=name, causes=[errors.Cause(field=field, message=message)]
    )


def check_name(info: kinds.ResourceInfo, name: Any) -> None:
    """Raise 422 :class:`errors.Invalid` if ``name`` is not a valid object name for ``info``."""
    if not isinstance(name, str) or not name:
        raise _invalid(info, str(name or ""), "metadata.name", "Required value: name or generateName is required")
    if info.kind == "Namespace":
        ok, what, limit = names.DNS1123_LABEL.match(name), "RFC 1123 label", names.DNS1123_LABEL_MAX
    else:
        ok, what, limit = names.DNS1123_SUBDOMAIN.match(name), "RFC 1123 subdomain", names.DNS1123_SUBDOMAIN_MAX
    if not ok or len(name) > limit:
        raise _invalid(
            info,
            name,
            "metadata.name",
            f'Invalid value: "{name}": a lowercase {what} must consist of lower case alphanumeric '
            f"characters, '-' or '.', and must start and end with an alphanumeric character "
            f"(at most {limit} characters)",
        )


MAX_DEPTH = 100
"""Deepest nesting of objects and arrays accepted in a request body or a stored object."""


def too_deep(doc: Any, limit: int = MAX_DEPTH) -> bool:
    """True if ``doc`` nests objects/arrays more than ``limit`` levels (checked without recursion)."""
    stack: list[tuple[Any, int]] = [(doc, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            if depth >= limit:
                return True
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def check_body(info: kinds.ResourceInfo, body: Any, *, namespace: str | None, name: str | None = None) -> Obj:
    """Check a request body against its URL and return a normalized copy.

    Fills in missing ``apiVersion``/``kind``/``metadata``; sets
    ``metadata.namespace`` from the URL for namespaced kinds (drops it for
    cluster-scoped ones).

    Raises:
        errors.Invalid: nested deeper than :data:`MAX_DEPTH` (a patch result can be).
        errors.BadRequest: not a JSON object; ``apiVersion``/``kind`` differ
            from the URL's resource; ``metadata.namespace`` or ``metadata.name``
            differ from the URL.
    """
    if not isinstance(body, dict):
        raise errors.BadRequest("the request body must be a JSON object")
    if too_deep(body):
        raise _invalid(info, str(name or ""), "<root>", f"Invalid value: nested deeper than {MAX_DEPTH} levels")
    obj = copy.deepcopy(body)
    api_version = obj.setdefault("apiVersion", info.api_version)
    kind = obj.setdefault("kind", info.kind)
    if api_version != info.api_version or kind != info.kind:
        raise errors.BadRequest(
            f"the API version in the data ({api_version}) and kind ({kind}) do not match the expected "
            f"API version ({info.api_version}) and kind ({info.kind})"
        )
    meta = obj.setdefault("metadata", {})
    if meta is None:
        meta = obj["metadata"] = {}
    if not isinstance(meta, dict):
        raise errors.BadRequest("metadata must be a JSON object")
    if info.namespaced:
        if meta.get("namespace") not in (None, "", namespace):
            raise errors.BadRequest(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
    if name is not None and meta.get("name") not in (None, "", name):
        raise errors.BadRequest(
            f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
        )
    if name is not None:
        meta["name"] = name
    shown = str(meta.get("name") or "")
    for field in ("labels", "annotations"):
        value = meta.get(field)
        if value is not None and (not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values())):
            raise _invalid(
                info, shown, f"metadata.{field}", "Invalid value: must be a map of string keys to string values"
            )
    finalizers = meta.get("finalizers")
    if finalizers is not None and (not isinstance(finalizers, list) or not all(isinstance(f, str) for f in finalizers)):
        raise _invalid(info, shown, "metadata.finalizers", "Invalid value: must be a list of strings")
    refs = meta.get("ownerReferences")
    if refs is not None and (not isinstance(refs, list) or not all(isinstance(r, dict) for r in refs)):
        raise _invalid(info, shown, "metadata.ownerReferences", "Invalid value: must be a list of objects")
    for i, ref in enumerate(refs or []):
        for key in ("apiVersion", "kind", "name", "uid"):
            if not isinstance(ref.get(key), str) or not ref.get(key):
                raise _invalid(info, shown, f"metadata.ownerReferences[{i}].{key}", "Required value")
    for key in ("name", "generateName", "resourceVersion"):
        if meta.get(key) is not None and not isinstance(meta.get(key), str):
            raise _invalid(info, shown, f"metadata.{key}", "Invalid value: must be a string")
    return obj


def desired_state(obj: Obj) -> Obj:
    """Everything outside ``metadata`` and ``status`` (what ``generation`` tracks)."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def prepare_create(info: kinds.ResourceInfo, obj: Obj, *, uid: str, now: str) -> Obj:
    """Set the server-owned metadata of a new object (``obj`` from :func:`check_body`, name set).

    Returns a new dict: ``uid``, ``creationTimestamp``, ``generation: 1``; no
    ``resourceVersion`` (the store sets it); no ``status`` for ``has_status``
    kinds. A Namespace starts ``Active`` with ``kubernetes`` in its ``spec.finalizers`` (kube-apiserver's
    namespace strategy, ``PrepareForCreate``).
    """
    out = copy.deepcopy(obj)
    meta = out["metadata"]
    for field in _SERVER_OWNED + ("resourceVersion", "selfLink"):
        meta.pop(field, None)
    meta.update(uid=uid, creationTimestamp=now, generation=1)
    if info.has_status:
        out.pop("status", None)
    if _is_namespace(info):
        out["status"] = {"phase": phases.NamespacePhase.ACTIVE}
        spec = out["spec"] = dict(out.get("spec") or {})
        finalizers = list(spec.get("finalizers") or [])
        if objectmeta.NAMESPACE_FINALIZER not in finalizers:
            spec["finalizers"] = [*finalizers, objectmeta.NAMESPACE_FINALIZER]
    return out


def _is_namespace(info: kinds.ResourceInfo) -> bool:
    return info.kind == "Namespace" and info.group == ""


def _namespace_finalizers(obj: Obj) -> Any:
    spec = obj.get("spec")
    return spec.get("finalizers") if isinstance(spec, dict) else None


def _with_namespace_finalizers(obj: Obj, finalizers: Any) -> None:
    """Set ``obj``'s ``spec.finalizers`` (``None``: none)."""
    spec = obj["spec"] = dict(obj["spec"]) if isinstance(obj.get("spec"), dict) else {}
    if finalizers is None:
        spec.pop("finalizers", None)
    else:
        spec["finalizers"] = copy.deepcopy(finalizers)


def prepare_update(info: kinds.ResourceInfo, old: Obj, new: Obj) -> Obj:
    """Merge a client's full replacement of the main resource with the stored object.

    Keeps the stored server-owned metadata and (for ``has_status`` kinds) the
    stored status; bumps ``generation`` when the desired state changed.
    The ``resourceVersion`` precondition is the caller's (the store checks it).
    A Namespace keeps its stored ``spec.finalizers``: only ``PUT .../finalize`` changes them
    (:func:`prepare_finalize_update`; kube-apiserver's namespace strategy, ``PrepareForUpdate``).
    """
    out = copy.deepcopy(new)
    meta = out["metadata"]
    old_meta = old.get("metadata") or {}
    for field in _SERVER_OWNED:
        if field in old_meta:
            meta[field] = old_meta[field]
        else:
            meta.pop(field, None)
    meta.pop("selfLink", None)
    if info.has_status:
        if "status" in old:
            out["status"] = copy.deepcopy(old["status"])
        else:
            out.pop("status", None)
    if _is_namespace(info):
        _with_namespace_finalizers(out, _namespace_finalizers(old))
    generation = int(old_meta.get("generation") or 1)
    meta["generation"] = generation + 1 if desired_state(old) != desired_state(out) else generation
    return out


def prepare_finalize_update(info: kinds.ResourceInfo, old: Obj, new: Obj) -> Obj:
    """A write to ``PUT /api/v1/namespaces/NAME/finalize``: as :func:`prepare_update`, but ``spec.finalizers``
    taken from ``new`` (kube-apiserver's ``namespaceFinalizeStrategy``: the status stays the stored one)."""
    out = prepare_update(info, old, new)
    _with_namespace_finalizers(out, _namespace_finalizers(new))
    return out


def prepare_details_update(info: kinds.ResourceInfo, old: Obj, new: Obj) -> Obj:
    """A write to a Build's ``/details``: the stored Build with ``spec.revision`` taken from ``new``.

    OpenShift's ``builds/details`` (``detailsStrategy``), which its builder calls once it has resolved the
    source, so that ``spec.revision`` (the commit, author, committer and message) is on the Build while it
    runs. As there, a revision once set may not change or be removed; unlike there, a write that changes
    anything else (``spec``, ``status``, labels, annotations, finalizers, owner references) is refused rather
    than silently dropped.
    Server-owned metadata is the stored object's, as for any update; ``generation`` does not move (the
    revision reports what is built, it does not ask for anything).

    Raises:
        errors.Invalid: (422) ``spec.revision`` removed or changed, or another field changed; the causes
            name the fields (``spec.<field>`` for each other spec field written). A body whose ``metadata.resourceVersion`` is not the stored one is left to the
            store's precondition check (409 ``Conflict``, as any stale update).
    """
    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    causes: list[errors.Cause] = []
    before, after = old_spec.get("revision"), new_spec.get("revision")
    if before is not None and after != before:
        message = "cannot be removed" if after is None else "cannot be changed once set"
        causes.append(errors.Cause("spec.revision", message, "FieldValueForbidden"))
    for key in sorted((new_spec.keys() | old_spec.keys()) - {"revision"}):
        if new_spec.get(key) != old_spec.get(key):
            causes.append(
                errors.Cause(
                    f"spec.{key}", "only spec.revision may be written through builds/details", "FieldValueForbidden"
                )
            )
    if new.get("status", old.get("status")) != old.get("status"):
        causes.append(errors.Cause("status", "may not be written through builds/details", "FieldValueForbidden"))
    new_meta, old_meta = new.get("metadata") or {}, old.get("metadata") or {}
    for field in ("labels", "annotations", "finalizers", "ownerReferences"):
        if (new_meta.get(field) or None) != (old_meta.get(field) or None):
            causes.append(
                errors.Cause(f"metadata.{field}", "may not be written through builds/details", "FieldValueForbidden")
            )
    stale = new_meta.get("resourceVersion") not in (None, "", old_meta.get("resourceVersion"))
    if causes and not stale:  # a body read before the last write differs by that write: 409 Conflict, not 422
        raise errors.Invalid(kind=info.kind, group=info.group, name=str(old_meta.get("name")), causes=causes)
    out = copy.deepcopy(old)
    if after is not None:
        out.setdefault("spec", {})["revision"] = copy.deepcopy(after)
    return out


def prepare_status_update(old: Obj, new: Obj) -> Obj:
    """A write to ``/status``: the stored object with only ``status`` taken from ``new``."""
    out = copy.deepcopy(old)
    if "status" in new and new["status"] is not None:
        out["status"] = copy.deepcopy(new["status"])
    else:
        out.pop("status", None)
    return out
