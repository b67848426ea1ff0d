"""The three PATCH flavours Kubernetes accepts. Pure functions, no I/O.

- JSON merge patch, RFC 7386 (``application/merge-patch+json``).
- JSON patch, RFC 6902 with JSON pointers per RFC 6901 (``application/json-patch+json``).
- Strategic merge patch (``application/strategic-merge-patch+json``), a subset
  of Kubernetes' "Strategic Merge Patch" (docs: "Update API Objects in Place
  Using kubectl patch"; ``k8s.io/apimachinery/pkg/util/strategicpatch``):
  merge-patch semantics, except that the lists Kubernetes declares with a
  merge key (:data:`MERGE_KEYS`: containers, env and volumes by ``name``,
  ports by ``containerPort``, volumeMounts by ``mountPath``, ...) are merged
  item by item, ``finalizers`` merge as a set, and the directives ``$patch`` (``delete``,
  ``replace``, ``merge``), ``$setElementOrder/<field>``, ``$retainKeys`` and
  ``$deleteFromPrimitiveList/<field>`` are honoured.

Every function returns a new document and leaves its arguments untouched.
Error messages name paths and indices, never values (the document may be a
Secret).
A patch that cannot be applied raises :class:`PatchError` (the API server
answers 422); a patch document of the wrong shape raises
:class:`PatchFormatError` (400); a JSON patch of more than
:data:`MAX_OPERATIONS` operations raises :class:`TooManyOperations` (413).

Bounded work. A patch is at most one request body (3 MiB), but a JSON patch
``copy`` can copy a value into itself, doubling the document with each
operation (an 871-byte patch made a 1 MiB object). As kube-apiserver does
with json-patch's ``AccumulatedCopySizeLimit``, the bytes that ``copy``
operations add are summed over the patch and the patch fails (422) as soon
as the sum passes :data:`MAX_COPY_BYTES`; each copy is measured before it is
made. ``add``, ``replace`` and ``test`` values are parts of the patch body,
so their sum is bounded by the body limit; ``move`` and ``remove`` add
nothing. Merge patches cannot copy: they copy the target once, and the
merges of strategic merge patch find list items by hashed merge key, so every
patch costs time linear in the target and the patch. The size of the object a
patch produces is bounded by the caller (:mod:`dockyard.apiserver.crud`).

Why not the ``jsonpatch`` package (python-json-patch): it has no bound on
accumulated copies (its ``CopyOperation`` deep-copies unmeasured, with no
hook short of replacing its private operation dispatch), and its errors
quote document values (a failed ``test`` prints both values), which must not
reach a Status message for a Secret. RFC 6902 is small; it stays here.
"""

from __future__ import annotations

import copy
import json
from typing import Any

JSON = Any

MAX_OPERATIONS = 10_000
"""Most operations in one JSON patch: kube-apiserver's ``maxJSONPatchOperations``
(``staging/src/k8s.io/apiserver/pkg/endpoints/handlers/patch.go``)."""

MAX_COPY_BYTES = 3 * 1024 * 1024
"""Most bytes (compact JSON) that the ``copy`` operations of one JSON patch may add in total:
kube-apiserver's ``JSONPatchMaxCopyBytes`` default (3 MiB), which it sets as json-patch's
``AccumulatedCopySizeLimit``."""


class PatchError(ValueError):
    """The patch is well-formed but cannot be applied to this document."""


class PatchFormatError(ValueError):
    """The patch document itself is malformed."""


class TooManyOperations(ValueError):
    """A JSON patch has more than :data:`MAX_OPERATIONS` operations (kube-apiserver answers 413)."""

    def __init__(self, count: int, limit: int = MAX_OPERATIONS) -> None:
        super().__init__(f"The allowed maximum operations in a JSON patch is {limit}, got {count}")


class CopySizeExceeded(PatchError):
    """The ``copy`` operations of a JSON patch add more than the limit; json-patch's
    ``AccumulatedCopySizeError`` and its wording."""

    def __init__(self, accumulated: int, limit: int) -> None:
        super().__init__(
            f"Unable to complete the copy, the accumulated size increase of copy is {accumulated}, "
            f"exceeding the limit {limit}"
        )


def json_size(value: JSON) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON (what json-patch measures a copy by)."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


# ------------------------------------------------------------------ RFC 7386


def merge_patch(target: JSON, patch: JSON) -> JSON:
    """Apply a JSON merge patch (RFC 7386 section 2, ``MergePatch``).

    A non-object patch replaces the target; ``null`` values remove keys.
    The target is copied once; time is linear in the target and the patch.
    """
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    return _merge_into(copy.deepcopy(target), patch)


def _merge_into(owned: JSON, patch: JSON) -> JSON:
    """:func:`merge_patch` onto ``owned``, a private copy it may change."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = owned if isinstance(owned, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_into(result.get(key), value)
    return result


# ------------------------------------------------------------------ RFC 6902


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str):
        raise PatchFormatError(f"a JSON pointer must be a string, not {type(path).__name__}")
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchFormatError(f"JSON pointer {path!r} must start with '/' (RFC 6901)")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(token: str, size: int, *, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return size
    if not token.isdigit() or (len(token) > 1 and token[0] == "0"):
        raise PatchError(f"invalid array index {token!r}")
    index = int(token)
    if index > size or (index == size and not allow_end):
        raise PatchError(f"array index {index} out of range")
    return index


def _parent(doc: JSON, tokens: list[str]) -> JSON:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict):
            if token not in node:
                raise PatchError(f"path component {token!r} not found")
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(token, len(node), allow_end=False)]
        else:
            raise PatchError(f"cannot traverse into a scalar at {token!r}")
    return node


def _get(doc: JSON, tokens: list[str]) -> JSON:
    if not tokens:
        return doc
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"path {'/' + '/'.join(tokens)!r} not found")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(last, len(parent), allow_end=False)]
    raise PatchError("cannot index a scalar")


def _add(doc: JSON, tokens: list[str], value: JSON) -> JSON:
    if not tokens:
        return value
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(last, len(parent), allow_end=True), value)
    else:
        raise PatchError("cannot add to a scalar")
    return doc


def _remove(doc: JSON, tokens: list[str]) -> tuple[JSON, JSON]:
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"path {'/' + '/'.join(tokens)!r} not found")
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_index(last, len(parent), allow_end=False))
    raise PatchError("cannot remove from a scalar")


def json_patch(
    doc: JSON, operations: JSON, *, max_operations: int = MAX_OPERATIONS, max_copy_bytes: int = MAX_COPY_BYTES
) -> JSON:
    """Apply a JSON patch (RFC 6902 section 4: add, remove, replace, move, copy, test).

    Args:
        max_operations: most operations accepted (kube-apiserver's 10000).
        max_copy_bytes: most bytes (compact JSON) that all ``copy`` operations
            together may add; each copy is measured before it is made.
    Raises:
        PatchFormatError: ``operations`` is not a list of operation objects.
        TooManyOperations: more than ``max_operations`` operations (checked first).
        CopySizeExceeded: the copies add more than ``max_copy_bytes`` (a :class:`PatchError`).
        PatchError: an operation fails (missing path, failed ``test``).
    """
    if not isinstance(operations, list):
        raise PatchFormatError("a JSON patch must be an array of operations (RFC 6902 section 3)")
    if len(operations) > max_operations:
        raise TooManyOperations(len(operations), max_operations)
    copied = 0
    result = copy.deepcopy(doc)
    for index, op in enumerate(operations):
        if not isinstance(op, dict) or not isinstance(op.get("op"), str):
            raise PatchFormatError(f"operation {index}: an object with a string 'op' is required")
        kind = op["op"]
        tokens = _pointer(op.get("path"))
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchFormatError(f"operation {index}: {kind!r} needs a 'value'")
        if kind == "add":
            result = _add(result, tokens, copy.deepcopy(op["value"]))
        elif kind == "remove":
            result, _ = _remove(result, tokens)
        elif kind == "replace":
            _get(result, tokens)
            if tokens:
                result, _ = _remove(result, tokens)
            result = _add(result, tokens, copy.deepcopy(op["value"]))
        elif kind in ("move", "copy"):
            source = _pointer(op.get("from"))
            if kind == "move":
                if tokens[: len(source)] == source and len(tokens) > len(source):
                    raise PatchError("cannot move a value into one of its children")
                result, value = _remove(result, source)
            else:
                original = _get(result, source)
                copied += json_size(original)
                if copied > max_copy_bytes:
                    raise CopySizeExceeded(copied, max_copy_bytes)
                value = copy.deepcopy(original)
            result = _add(result, tokens, value)
        elif kind == "test":
            if _get(result, tokens) != op["value"]:
                raise PatchError(f"test operation failed at {op.get('path')!r}")
        else:
            raise PatchFormatError(f"operation {index}: unknown op {kind[:32]!r}")
    return result


# ------------------------------------------------------------------ strategic merge

# Merge keys Kubernetes declares with ``patchStrategy:"merge"`` and ``patchMergeKey`` on the
# core/v1, apps/v1 and meta/v1 types dockyard serves, by field name. Every other list is
# replaced as a whole (``args``, ``command``, ``tolerations``, ``envFrom``, ``containerStatuses``, ...).
MERGE_KEYS: dict[str, tuple[str, ...]] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "env": ("name",),
    "volumes": ("name",),
    "imagePullSecrets": ("name",),
    "resourceClaims": ("name",),
    "schedulingGates": ("name",),
    "ports": ("containerPort", "port"),
    "volumeMounts": ("mountPath",),
    "volumeDevices": ("devicePath",),
    "conditions": ("type",),
    "ownerReferences": ("uid",),
    "hostAliases": ("ip",),
    "topologySpreadConstraints": ("topologyKey",),
}
# Lists of scalars with ``patchStrategy:"merge"``: a patch adds to them (a set union).
MERGED_SCALAR_LISTS = frozenset({"finalizers"})
ATOMIC_LISTS = frozenset({"args", "command", "tolerations", "envFrom"})

_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"


def _merge_key(field: str, items: list[Any]) -> str | None:
    if field in ATOMIC_LISTS or not items or not all(isinstance(i, dict) for i in items):
        return None
    for key in MERGE_KEYS.get(field, ()):
        if all(key in i for i in items if i.get("$patch") != "replace"):
            return key
    return None


def _strip_directives(value: JSON) -> JSON:
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith("$") and v is not None}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value if not (isinstance(v, dict) and "$patch" in v and len(v) == 1)]
    return value


def _hashable(value: JSON) -> Any:
    """A hashable stand-in for a JSON value; equal values (by ``==``) get equal stand-ins."""
    try:
        hash(value)
        return (0, value)
    except TypeError:
        return (1, json.dumps(value, sort_keys=True, separators=(",", ":")))


def _merge_list(field: str, target: list[Any], patch: list[Any], order: list[Any] | None) -> list[Any]:
    """Merge list ``patch`` into ``target`` (a private copy this may change).

    Items are found by merge key through a hash index, so the time is linear in both lists.
    """
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
        return [_strip_directives(i) for i in patch if not (isinstance(i, dict) and i.get("$patch") == "replace")]
    key = (
        _merge_key(field, [i for i in target if isinstance(i, dict)] + [i for i in patch if isinstance(i, dict)])
        if all(isinstance(i, dict) for i in target + patch)
        else None
    )
    if key is None:
        stripped: list[Any] = _strip_directives(patch)
        if field in MERGED_SCALAR_LISTS and all(not isinstance(i, (dict, list)) for i in target + stripped):
            present = {_hashable(i) for i in target}
            return list(target) + [i for i in stripped if _hashable(i) not in present]
        return stripped
    result: list[Any] = list(target)
    alive = [True] * len(result)
    # merge-key value -> positions in ``result`` (ascending; the first live one is the match)
    index: dict[Any, list[int]] = {}
    for n, t in enumerate(result):
        index.setdefault(_hashable(t.get(key)), []).append(n)
    for n, item in enumerate(patch):
        if key not in item:
            raise PatchError(f"{field}[{n}]: the list item lacks the merge key {key!r}")
        positions = index.get(_hashable(item[key]), [])
        found = positions[0] if positions else None
        if item.get("$patch") == "delete":
            if found is not None:
                alive[found] = False
                positions.pop(0)
            continue
        body = {k: v for k, v in item.items() if k != "$patch"}
        if found is None:
            index.setdefault(_hashable(item[key]), []).append(len(result))
            result.append(_strip_directives(body))
            alive.append(True)
        else:
            result[found] = _strategic_into(result[found], body)
    return _apply_order(key, [i for i, keep in zip(result, alive, strict=True) if keep], order)


def _apply_order(key: str | None, items: list[Any], order: list[Any] | None) -> list[Any]:
    # ``$setElementOrder/<field>``: listed items first, in that order; the rest keep theirs.
    if not order or key is None:
        return items
    wanted = [o.get(key) if isinstance(o, dict) else o for o in order]
    rank: dict[Any, int] = {v: n for n, v in enumerate(wanted) if isinstance(v, (str, int, float))}

    def place(item: Any) -> int:
        value = item.get(key) if isinstance(item, dict) else None
        return rank.get(value, len(rank)) if isinstance(value, (str, int, float)) else len(rank)

    return sorted(items, key=place)


def strategic_merge_patch(target: JSON, patch: JSON) -> JSON:
    """Apply a strategic merge patch (the subset described in the module docstring).

    The target is copied once; time is linear in the target and the patch.

    Raises:
        PatchFormatError: the patch is not an object.
        PatchError: an unknown ``$patch`` directive, or a list item lacks its merge key.
    """
    if not isinstance(patch, dict):
        raise PatchFormatError("a strategic merge patch must be a JSON object")
    return _strategic_into(copy.deepcopy(target), patch)


def _strategic_into(owned: JSON, patch: JSON) -> JSON:
    """:func:`strategic_merge_patch` onto ``owned``, a private copy it may change."""
    if not isinstance(patch, dict):
        raise PatchFormatError("a strategic merge patch must be a JSON object")
    directive = patch.get("$patch")
    if directive == "replace":
        return _strip_directives({k: v for k, v in patch.items() if k != "$patch"})
    if directive == "delete":
        return {}
    if directive not in (None, "merge"):
        raise PatchError(f"unknown patch directive {str(directive)[:32]!r}")
    result = owned if isinstance(owned, dict) else {}
    orders = {k[len(_ORDER) :]: v for k, v in patch.items() if k.startswith(_ORDER) and isinstance(v, list)}
    for key, value in patch.items():
        if key.startswith(_DELETE_PRIMITIVE):
            field = key[len(_DELETE_PRIMITIVE) :]
            if isinstance(result.get(field), list) and isinstance(value, list):
                deleted = {_hashable(v) for v in value}
                result[field] = [v for v in result[field] if _hashable(v) not in deleted]
            continue
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            result[key] = _strategic_into(result.get(key), value)
        elif isinstance(value, list) and isinstance(result.get(key), list):
            result[key] = _merge_list(key, result[key], value, orders.get(key))
        elif isinstance(value, list):
            result[key] = _merge_list(key, [], value, orders.get(key))
        else:
            result[key] = copy.deepcopy(value)
    for field, order in orders.items():
        items = result.get(field)
        if field not in patch and isinstance(items, list) and all(isinstance(i, dict) for i in items):
            result[field] = _apply_order(_merge_key(field, items), items, order)
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        # ``$retainKeys`` clears the fields of a (union-type) map that are not listed.
        keep = {k for k in retain if isinstance(k, str)}
        result = {k: v for k, v in result.items() if k in keep}
    return result
