"""Create, read, update, patch and delete against the store, with Kubernetes semantics.

Synchronous; no HTTP here. The HTTP layer runs creates, updates and patches on its event loop with
group commit (:mod:`dockyard.apiserver.writes`), the rest in a thread pool.
Rules, all from the Kubernetes API conventions and API concepts:

- "Concurrency Control and Consistency": a write carrying
  ``metadata.resourceVersion`` must match the stored one (409 Conflict).
- "Spec and Status": see :mod:`dockyard.apiserver.objects`.
- An update that changes nothing is not written (no new resourceVersion, no
  watch event), as the apiserver's ``GuaranteedUpdate`` does.
- "Finalizers" / "Garbage Collection": see :mod:`dockyard.apiserver.deletion`
  (finalizers, ``deletionTimestamp``, propagation policies, dependents).
- Every stored object goes through :func:`dockyard.apiserver.typecheck.check`
  (JSON types of built-in kinds, 400), :func:`_known_fields` (fields their Kubernetes types
  lack: ``fieldValidation``) and
  :func:`dockyard.api.validation.validate_fields` (422).
"""

from __future__ import annotations

import base64
import copy
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dockyard.api import errors, kinds, objectmeta, validation
from dockyard.apiserver import coreschemas, customresources, deletion, objects, patch, structural, typecheck, wire
from dockyard.apiserver.selectors import Selector
from dockyard.storage import sqlite

Obj = dict[str, Any]


NAMESPACE = deletion.NAMESPACE
PROTECTED_NAMESPACES = frozenset({"default", "kube-system"})
"""Namespaces that cannot be deleted (403), as in Kubernetes."""

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
PATCH_TYPES = (MERGE_PATCH, JSON_PATCH, STRATEGIC_PATCH)


MAX_OBJECT_BYTES = wire.MAX_BODY
"""Largest object (compact JSON bytes) a PATCH may store: the request-body limit, so patch after
patch cannot grow an object past what a client could create (413)."""

PATCH_ATTEMPTS = 8
"""Times a PATCH is applied outside the store lock before it is applied under it (the stored
object changed meanwhile each time); as the apiserver's ``GuaranteedUpdate``, which re-applies
the patch to the current object on a conflict."""


class PatchFailed(errors.StatusError):
    """422: the patch could not be applied to the stored object."""

    code, reason = 422, "Invalid"


@dataclass
class FieldValidation:
    """The ``fieldValidation`` query parameter of a write and the warnings it produced.

    See :func:`dockyard.api.validation.validate_fields`; ``warnings`` go back as
    ``Warning`` headers (API concepts, "Field validation").
    """

    mode: str | None = None
    warnings: list[str] = field(default_factory=list)


def _known_fields(info: kinds.ResourceInfo, obj: Obj, mode: str | None, old: Obj | None) -> tuple[Obj, list[str]]:
    """A built-in object without the fields its Kubernetes type lacks, and the warnings for them.

    As kube-apiserver's decoding into Go structs: such fields are never stored. ``fieldValidation``
    ``Strict`` refuses them (400, every one listed), ``Warn`` drops each with a warning, ``Ignore`` drops
    them silently; without the parameter they are a 422 naming each (dockyard's default, as for its own
    kinds). A field an update or patch only carries over unchanged from the stored object (written before
    these checks) is dropped silently.

    Raises:
        errors.BadRequest: unknown fields under ``Strict``.
        errors.Invalid: unknown fields without ``fieldValidation``.
    """
    root = coreschemas.field_root(info.group, info.version, info.kind)
    if root is None:
        return obj, []
    found = structural.unknown_fields(obj, coreschemas.field_table(), root)
    if not found:
        return obj, []
    reported = [
        loc for loc in found if old is None or not structural.has_value(old, loc, structural.value_at(obj, loc))
    ]
    paths = [structural.field_path(loc) for loc in reported]
    if paths and mode == "Strict":
        raise errors.BadRequest(
            f'{info.kind} in version "{info.version}" cannot be handled as a {info.kind}: strict decoding error: '
            + ", ".join(f'unknown field "{p}"' for p in paths)
        )
    if paths and mode is None:
        meta = obj.get("metadata") or {}
        raise errors.Invalid(
            kind=info.kind,
            group=info.group,
            name=str(meta.get("name") or meta.get("generateName") or ""),
            causes=[
                errors.Cause(p, validation.UNKNOWN_FIELD, "FieldValueNotSupported", loc)
                for p, loc in zip(paths, reported, strict=True)
            ],
        )
    pruned = copy.deepcopy(obj)
    structural.drop(pruned, found)
    return pruned, [f'unknown field "{p}"' for p in paths] if mode == "Warn" else []


def _validated(
    info: kinds.ResourceInfo, obj: Obj, fields: FieldValidation | None = None, *, old: Obj | None = None
) -> Obj:
    """``obj`` checked and defaulted: JSON types of built-in kinds, the fields of their Kubernetes types
    (:func:`_known_fields`), :mod:`dockyard.api.validation` (dockyard's rules, also for dockyard's kinds
    served from CRDs), then a custom resource's CRD schema (:func:`.customresources.admit`), or a CRD's
    own rules. ``old``: the stored object an update or patch replaces."""
    typecheck.check(info, obj)
    mode = fields.mode if fields else None
    obj, unknown = _known_fields(info, obj, mode, old)
    result, warnings = validation.validate_fields(info, obj, mode)
    warnings = [*unknown, *warnings]
    result = result if isinstance(result, dict) else obj
    served = customresources.lookup(info)
    if served is not None:
        result, more = customresources.admit(served, result, mode)
        warnings = [*warnings, *more]
    elif info is customresources.CRD:
        result = customresources.validate_crd(result)
    if fields is not None:
        fields.warnings.extend(w for w in warnings if w not in fields.warnings)
    return result


def defaulted_crd(crd: Obj) -> Obj:
    """A CRD as it is stored (``singular``, ``listKind`` defaulted), to compare with a stored one."""
    return customresources.validate_crd(crd)


def _strategy(store: sqlite.Store, info: kinds.ResourceInfo, new: Obj, old: Obj | None) -> Obj:
    """What the server checks and sets on a write inside the transaction: on update, the fields that may not
    change (:func:`dockyard.api.validation.update_causes`, 422); a CRD's status (names, Established)."""
    if old is not None and (causes := validation.update_causes(info, new, old)):
        raise errors.Invalid(kind=info.kind, group=info.group, name=new["metadata"]["name"], causes=causes)
    if info is not customresources.CRD:
        return new
    if old is not None:
        causes = customresources.check_update(old, new)
        if causes:
            raise errors.Invalid(kind=info.kind, group=info.group, name=new["metadata"]["name"], causes=causes)
    return customresources.with_status(store, new)


def _same(a: Obj, b: Obj) -> bool:
    def strip(o: Obj) -> Obj:
        out = dict(o)
        out["metadata"] = {k: v for k, v in (o.get("metadata") or {}).items() if k != "resourceVersion"}
        return out

    return strip(a) == strip(b)


def _admit(
    store: sqlite.Store,
    admit: Callable[[sqlite.Store, Obj, Obj | None], list[str]] | None,
    new: Obj,
    old: Obj | None,
    fields: FieldValidation | None,
) -> None:
    """Run an admission check (:mod:`dockyard.apiserver.admission`) and keep its warnings for ``Warning`` headers."""
    if admit is None:
        return
    for text in admit(store, new, old):
        if fields is not None and text not in fields.warnings:
            fields.warnings.append(text)


def ensure_namespace(store: sqlite.Store, info: kinds.ResourceInfo, namespace: str, name: str) -> None:
    """Check that ``name`` of ``info`` may be created in ``namespace``.

    Raises:
        errors.NotFound: 404 ``namespaces "x" not found``.
        errors.Forbidden: 403, the namespace is Terminating (:func:`.deletion.check_namespace_open`).
    """
    try:
        found = store.get(NAMESPACE, None, namespace)
    except errors.NotFound:
        raise errors.not_found("", "namespaces", namespace) from None
    deletion.check_namespace_open(found, info, name)


# ------------------------------------------------------------------ create


def create(
    store: sqlite.Store,
    info: kinds.ResourceInfo,
    namespace: str | None,
    body: Any,
    *,
    dry_run: bool = False,
    keep_status: bool = False,
    fields: FieldValidation | None = None,
    admit: Callable[[sqlite.Store, Obj, Obj | None], list[str]] | None = None,
) -> Obj:
    """Create an object from a client body (``POST`` to a collection).

    Args:
        namespace: the URL's namespace (``None`` for cluster-scoped kinds).
        keep_status: keep the body's ``status`` (server-made objects such as
            instantiated Builds); clients' status is dropped.
        admit: an admission check, ``admit(store, new, None)`` (Pod Security); its
            warnings join ``fields.warnings``; it may raise ``errors.Forbidden``.
    Returns:
        The stored object.
    Raises:
        errors.BadRequest: body does not match the URL.
        errors.Invalid: bad name or rejected by validation (422).
        errors.NotFound: the namespace does not exist.
        errors.Forbidden: the namespace is Terminating (403), or refused by ``admit``.
        errors.AlreadyExists: the name is taken (409).
    """
    obj = objects.check_body(info, body, namespace=namespace)
    meta = obj["metadata"]
    prefix = meta.get("generateName")
    if not meta.get("name") and not (isinstance(prefix, str) and prefix):
        objects.check_name(info, None)
    status = copy.deepcopy(obj.get("status"))
    for attempt in range(8):
        candidate = copy.deepcopy(obj)
        if not meta.get("name"):
            candidate["metadata"]["name"] = objects.generate_name(str(prefix))
        objects.check_name(info, candidate["metadata"]["name"])
        candidate = objects.prepare_create(info, candidate, uid=str(uuid.uuid4()), now=objects.now_rfc3339())
        if keep_status and status is not None:
            candidate["status"] = status
        candidate = _validated(info, candidate, fields)
        name = candidate["metadata"]["name"]
        with store.atomic():
            if info.namespaced:
                ensure_namespace(store, info, str(namespace), name)
            candidate = _strategy(store, info, candidate, None)
            _admit(store, admit, candidate, None, fields)
            taken = store.exists(info, namespace, name)
            if not taken:
                if dry_run:
                    return candidate
                created = store.create(info, candidate)
                deletion.collect_if_orphaned(store, info, created)
                return created
            if meta.get("name") or attempt == 7:
                raise errors.AlreadyExists(
                    f'{sqlite.resource_key(info)} "{name}" already exists',
                    details={"name": name, "group": info.group, "kind": info.plural},
                )
    raise AssertionError("unreachable")


# ------------------------------------------------------------------ update and patch


def _write(
    store: sqlite.Store, info: kinds.ResourceInfo, old: Obj, new: Obj, *, expect_rv: str | None, dry_run: bool
) -> Obj:
    """Store ``new`` over ``old`` (inside a transaction) with the finalizer rule."""
    if expect_rv not in (None, "") and str(expect_rv) != old["metadata"].get("resourceVersion"):
        raise sqlite.conflict(info, old["metadata"]["name"])
    if _same(old, new):
        return old
    if dry_run:
        return new
    if deletion.finished(old, new):
        return deletion.finish(store, info, new)
    return store.update(info, new)


def _prepare(info: kinds.ResourceInfo, old: Obj, new: Obj, subresource: str | None) -> Obj:
    """The object to store for a write of ``new`` over ``old`` through the main resource or a subresource.

    Raises:
        errors.Invalid: ``new`` names another ``metadata.uid`` (:func:`dockyard.api.objectmeta.uid_causes`).
    """
    if causes := objectmeta.uid_causes(new["metadata"], old["metadata"]):
        raise errors.Invalid(kind=info.kind, group=info.group, name=old["metadata"]["name"], causes=causes)
    if subresource == "status":
        return objects.prepare_status_update(old, new)
    if subresource == "details":
        return objects.prepare_details_update(info, old, new)
    if subresource == "finalize":
        return objects.prepare_finalize_update(info, old, new)
    return objects.prepare_update(info, old, new)


def update(
    store: sqlite.Store,
    info: kinds.ResourceInfo,
    namespace: str | None,
    name: str,
    body: Any,
    *,
    subresource: str | None = None,
    dry_run: bool = False,
    fields: FieldValidation | None = None,
    admit: Callable[[sqlite.Store, Obj, Obj | None], list[str]] | None = None,
) -> Obj:
    """Replace an object (``PUT``), its status (``PUT .../status``) or a Build's revision (``PUT .../details``).

    ``admit`` is as for :func:`create`, called as ``admit(store, new, old)``.

    Raises:
        errors.BadRequest: body does not match the URL.
        errors.NotFound: no such object.
        errors.Conflict: stale ``metadata.resourceVersion`` (409).
        errors.Invalid: rejected by validation (422).
        errors.Forbidden: refused by ``admit`` (403).
    """
    new = objects.check_body(info, body, namespace=namespace, name=name)
    expect_rv = new["metadata"].get("resourceVersion")
    with store.atomic():
        old = store.get(info, namespace, name)
        merged = _prepare(info, old, new, subresource)
        merged = _strategy(store, info, _validated(info, merged, fields, old=old), old)
        _admit(store, admit, merged, old, fields)
        return _write(store, info, old, merged, expect_rv=expect_rv, dry_run=dry_run)


def apply_patch(content_type: str, target: Obj, document: Any) -> Any:
    """Apply a patch document of the given media type to ``target``.

    The work is bounded (see :mod:`dockyard.apiserver.patch`): at most
    ``patch.MAX_OPERATIONS`` JSON patch operations, whose copies add at most
    ``patch.MAX_COPY_BYTES``; merges are linear in target and patch.

    Raises:
        errors.UnsupportedMediaType: not one of :data:`PATCH_TYPES` (415).
        errors.BadRequest: the patch document is malformed (400).
        errors.RequestEntityTooLarge: a JSON patch of more than 10000 operations
            (413, kube-apiserver's ``The allowed maximum operations in a JSON patch is 10000, got N``).
        PatchFailed: the patch does not apply, or its copies add more than
            ``patch.MAX_COPY_BYTES`` (422, json-patch's ``AccumulatedCopySizeError`` wording).
    """
    try:
        if content_type == MERGE_PATCH:
            if not isinstance(document, dict):
                raise patch.PatchFormatError("a merge patch for an object must be a JSON object")
            return patch.merge_patch(target, document)
        if content_type == JSON_PATCH:
            return patch.json_patch(target, document)
        if content_type == STRATEGIC_PATCH:
            return patch.strategic_merge_patch(target, document)
    except patch.PatchFormatError as e:
        raise errors.BadRequest(f"invalid patch: {e}") from None
    except patch.TooManyOperations as e:
        raise errors.RequestEntityTooLarge(str(e)) from None
    except patch.PatchError as e:
        raise PatchFailed(f"the patch cannot be applied: {e}") from None
    raise errors.UnsupportedMediaType(
        f"the body of the request was in an unknown format - accepted media types include: {', '.join(PATCH_TYPES)}"
    )


def check_patch_type(info: kinds.ResourceInfo, content_type: str) -> None:
    """415 unless ``content_type`` is a patch type served for ``info``.

    Strategic merge patch needs the merge keys of built-in types, so, as for
    custom resources in Kubernetes, dockyard's own kinds take only JSON patch
    and JSON merge patch.

    Raises:
        errors.UnsupportedMediaType: not supported (415).
    """
    accepted = PATCH_TYPES if info.group in ("", "apps", kinds.APIEXTENSIONS_GROUP) else (JSON_PATCH, MERGE_PATCH)
    if content_type not in accepted:
        raise errors.UnsupportedMediaType(
            "the body of the request was in an unknown format - accepted media types include: " + ", ".join(accepted)
        )


def check_object_size(obj: Obj, limit: int = MAX_OBJECT_BYTES) -> None:
    """413 unless ``obj`` is at most ``limit`` bytes of compact JSON.

    Raises:
        errors.RequestEntityTooLarge: larger (kube-apiserver's storage refuses such
            objects too: etcd's "request is too large").
    """
    size = patch.json_size(obj)
    if size > limit:
        raise errors.RequestEntityTooLarge(
            f"the patched object is {size} bytes, larger than the limit of {limit} bytes"
        )


def _patched(
    info: kinds.ResourceInfo,
    old: Obj,
    namespace: str | None,
    name: str,
    content_type: str,
    document: Any,
    subresource: str | None,
    fields: FieldValidation | None,
) -> tuple[Obj, Any]:
    """``(object to store, resourceVersion precondition)``: ``document`` applied to ``old``, checked: its size
    first (413), as kube-apiserver's patch handler checks the patched JSON before the object is validated."""
    patched = apply_patch(content_type, old, document)
    check_object_size(patched)
    new = objects.check_body(info, patched, namespace=namespace, name=name)
    expect_rv = new["metadata"].get("resourceVersion")
    merged = _prepare(info, old, new, subresource)
    merged = _validated(info, merged, fields, old=old)
    return merged, expect_rv


def patch_object(
    store: sqlite.Store,
    info: kinds.ResourceInfo,
    namespace: str | None,
    name: str,
    content_type: str,
    document: Any,
    *,
    subresource: str | None = None,
    dry_run: bool = False,
    fields: FieldValidation | None = None,
    admit: Callable[[sqlite.Store, Obj, Obj | None], list[str]] | None = None,
) -> Obj:
    """Patch an object (``PATCH``), its status (``PATCH .../status``) or a Build's revision
    (``PATCH .../details``, :func:`dockyard.apiserver.objects.prepare_details_update`).

    A ``metadata.resourceVersion`` in the patched result that differs from
    the stored one is a precondition failure (409), as in Kubernetes.

    The patch is applied, checked and bounded outside the store lock; the
    result is stored only if the object has not changed meanwhile (else the
    patch is applied again to the new object, as the apiserver's
    ``GuaranteedUpdate`` does). After :data:`PATCH_ATTEMPTS` such races the
    patch is applied under the lock; its work is bounded, so that cannot stall
    the store for long.

    Raises: as :func:`update` and :func:`apply_patch`, and
        errors.RequestEntityTooLarge: the patched object would be larger than
            :data:`MAX_OBJECT_BYTES` (413); nothing is stored.
    """
    check_patch_type(info, content_type)
    for _ in range(PATCH_ATTEMPTS):
        old = store.get(info, namespace, name)
        merged, expect_rv = _patched(info, old, namespace, name, content_type, document, subresource, fields)
        with store.atomic():
            current = store.get(info, namespace, name)
            if current["metadata"].get("resourceVersion") == old["metadata"].get("resourceVersion"):
                merged = _strategy(store, info, merged, current)
                _admit(store, admit, merged, current, fields)
                return _write(store, info, current, merged, expect_rv=expect_rv, dry_run=dry_run)
    with store.atomic():
        old = store.get(info, namespace, name)
        merged, expect_rv = _patched(info, old, namespace, name, content_type, document, subresource, fields)
        merged = _strategy(store, info, merged, old)
        _admit(store, admit, merged, old, fields)
        return _write(store, info, old, merged, expect_rv=expect_rv, dry_run=dry_run)


# ------------------------------------------------------------------ delete


def delete(
    store: sqlite.Store,
    info: kinds.ResourceInfo,
    namespace: str | None,
    name: str,
    *,
    propagation: str | None = None,
    precondition_uid: str | None = None,
    precondition_rv: str | None = None,
    grace_period: int | None = None,
    dry_run: bool = False,
) -> Obj:
    """Delete an object (``DELETE``) with the semantics of :mod:`dockyard.apiserver.deletion`.

    Returns the object as it stays (marked with ``deletionTimestamp``) or its last state.

    Raises:
        errors.NotFound: no such object.
        errors.Conflict: a precondition failed.
        errors.BadRequest: unknown ``propagationPolicy``.
        errors.Forbidden: the ``default`` or ``kube-system`` namespace.
    """
    if propagation not in (None, "", *deletion.POLICIES):
        raise errors.BadRequest(
            f'propagationPolicy: Unsupported value: "{propagation}": supported values: '
            '"Background", "Foreground", "Orphan"'
        )
    if info is NAMESPACE and name in PROTECTED_NAMESPACES:
        raise errors.Forbidden(
            f'namespaces "{name}" is forbidden: this namespace may not be deleted',
            details={"name": name, "kind": "namespaces"},
        )
    with store.atomic():
        old = store.get(info, namespace, name)
        meta = old["metadata"]
        if precondition_rv not in (None, "") and precondition_rv != meta.get("resourceVersion"):
            raise sqlite.conflict(info, name)
        if precondition_uid not in (None, "") and precondition_uid != meta.get("uid"):
            raise errors.Conflict(
                f'Operation cannot be fulfilled on {sqlite.resource_key(info)} "{name}": Precondition failed: '
                f"UID in precondition: {precondition_uid}, UID in object meta: {meta.get('uid')}",
                details={"name": name, "group": info.group, "kind": info.plural},
            )
        if dry_run:
            return old
        return deletion.delete(store, info, old, policy=propagation or None, grace=grace_period)


# ------------------------------------------------------------------ list


def encode_continue(key: tuple[str, str], revision: int) -> str:
    """An opaque ``continue`` token: the last key of a page and the first page's revision."""
    raw = json.dumps({"ns": key[0], "name": key[1], "rv": revision}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continue(token: str) -> tuple[tuple[str, str], int]:
    """``((namespace, name), revision)`` from a ``continue`` token.

    Raises:
        errors.BadRequest: the token is malformed.
    """
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        return (str(data["ns"]), str(data["name"])), int(data.get("rv") or 0)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise errors.BadRequest("continue key is not valid") from None


def list_objects(
    store: sqlite.Store,
    info: kinds.ResourceInfo,
    namespace: str | None,
    *,
    selector: Selector,
    limit: int | None = None,
    continue_token: str | None = None,
    revision: int | None = None,
    exact: bool = False,
) -> Obj:
    """A ``<Kind>List`` object (``kind``, ``apiVersion``, ``metadata.resourceVersion``,
    optional ``metadata.continue`` and ``remainingItemCount``, ``items``) — "Lists and Simple
    kinds" in the API conventions; options as in :mod:`dockyard.apiserver.listopts`.

    Raises:
        errors.BadRequest: a malformed ``continue`` token.
        errors.Gone: ``exact`` asks for a past revision, or the ``continue``
            token's revision was compacted (410 ``Expired``).
        errors.Timeout: ``revision`` is newer than the store (504, ``ResourceVersionTooLarge``).
    """
    after, first = decode_continue(continue_token) if continue_token else (None, None)
    if first is not None and first < store.compacted_revision():
        raise errors.Gone(
            "The provided continue parameter is too old to display a consistent list result. "
            "You can start a new list without the continue parameter."
        )
    if revision is not None:
        current = store.revision()
        if revision > current:
            raise errors.too_large_resource_version(revision, current)
        if exact and revision != current:
            raise errors.Gone(f"too old resource version: {revision} ({current})")
    predicate: Callable[[Obj], bool] | None = None if selector.empty else selector.matches
    page = store.list(info, namespace, predicate=predicate, limit=limit, after=after)
    shown = first if first is not None else page.revision
    meta: Obj = {"resourceVersion": str(shown)}
    if page.next_key is not None:
        meta["continue"] = encode_continue(page.next_key, shown)
        if selector.empty:
            meta["remainingItemCount"] = store.count(info, namespace, after=page.next_key)
    return {"kind": info.list_kind, "apiVersion": info.api_version, "metadata": meta, "items": page.items}


def delete_collection(
    store: sqlite.Store,
    info: kinds.ResourceInfo,
    namespace: str | None,
    *,
    selector: Selector,
    propagation: str | None = None,
    precondition_uid: str | None = None,
    precondition_rv: str | None = None,
    grace_period: int | None = None,
    dry_run: bool = False,
) -> Obj:
    """Delete every matching object (``DELETE`` on a collection) with the same options as :func:`delete`, applied
    to each item as the apiserver's ``DeleteCollection`` does; returns the list of deleted objects.

    Raises:
        errors.Conflict: a precondition failed for an item (the items before it stay deleted, as in Kubernetes).
        errors.BadRequest: unknown ``propagationPolicy``.
    """
    listed = list_objects(store, info, namespace, selector=selector)
    deleted = []
    for item in listed["items"]:
        meta = item["metadata"]
        try:
            deleted.append(
                delete(
                    store,
                    info,
                    meta.get("namespace"),
                    meta["name"],
                    propagation=propagation,
                    precondition_uid=precondition_uid,
                    precondition_rv=precondition_rv,
                    grace_period=grace_period,
                    dry_run=dry_run,
                )
            )
        except errors.NotFound:
            continue
    return {
        "kind": info.list_kind,
        "apiVersion": info.api_version,
        "metadata": {"resourceVersion": str(store.revision())},
        "items": deleted,
    }
