"""``metadata`` of every object: what kube-apiserver checks in it, on create and on update. Pure: no I/O.

Source: ``k8s.io/apimachinery/pkg/api/validation/objectmeta.go`` (``ValidateObjectMetaAccessor`` and
``ValidateObjectMetaAccessorUpdate``) and ``apis/meta/v1/validation`` (``ValidateLabels``), with their messages
word for word. The name and namespace are checked elsewhere (:mod:`dockyard.api.validation`,
:mod:`dockyard.apiserver.objects`); the JSON shapes (a map of strings, a list of strings, a list of objects with
``apiVersion``, ``kind``, ``name`` and ``uid``) are checked before this runs.

- ``labels``: each key an ``IsQualifiedName``, each value an ``IsValidLabelValue`` (so a label selector can name
  it);
- ``annotations``: each key an ``IsQualifiedName`` (compared in lower case), keys and values together at most
  :data:`ANNOTATIONS_SIZE_MAX` bytes;
- ``ownerReferences``: a version in ``apiVersion``, no core ``Event`` as an owner, at most one ``controller: true``;
- ``finalizers``: each an ``IsQualifiedName``, not both ``orphan`` and ``foregroundDeletion``;
- on update of an object that is being deleted (``deletionTimestamp`` set): no new finalizers;
- a pod template's labels and annotations as an object's (``ValidatePodTemplateSpec``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dockyard.api import labelselector
from dockyard.api.errors import Cause

__all__ = [
    "ANNOTATIONS_SIZE_MAX",
    "FOREGROUND",
    "NAMESPACE_FINALIZER",
    "ORPHAN",
    "causes",
    "namespace_finalizer_causes",
    "template_causes",
    "uid_causes",
    "update_causes",
]

ANNOTATIONS_SIZE_MAX = 256 * (1 << 10)
"""Bytes of all annotation keys and values of one object at most (``TotalAnnotationSizeLimitB``)."""
ORPHAN = "orphan"
"""``metav1.FinalizerOrphanDependents``."""
FOREGROUND = "foregroundDeletion"
"""``metav1.FinalizerDeleteDependents``."""
NAMESPACE_FINALIZER = "kubernetes"
"""``v1.FinalizerKubernetes``: the ``spec.finalizers`` entry every Namespace gets at create; it stands for deleting
the Namespace's content."""
_STANDARD_FINALIZERS = (NAMESPACE_FINALIZER, ORPHAN, FOREGROUND)
"""``helper.IsStandardFinalizerName``: the finalizer names that need no domain prefix in ``spec.finalizers``."""
_BANNED_OWNERS = {("", "v1", "Event")}
"""``BannedOwners``: (group, version, kind) that may not own an object."""


def _invalid(value: Any, detail: str) -> str:
    return labelselector.invalid(value, detail)


def causes(meta: Mapping[str, Any]) -> list[Cause]:
    """What is wrong with ``meta`` (an object's ``metadata``, shapes already checked), one
    :class:`~dockyard.api.errors.Cause` per problem; empty if nothing is."""
    found = _labels_annotations_causes(meta, "metadata")
    found += _owner_causes(meta.get("ownerReferences") or [])
    found += _finalizer_causes(meta.get("finalizers") or [])
    return found


def template_causes(meta: Any, where: str) -> list[Cause]:
    """A pod template's ``metadata`` (at field path ``where``, e.g. ``spec.template.metadata``): its labels and
    annotations as an object's (``ValidatePodTemplateSpec``), so that a Deployment is not accepted whose pods
    would be refused. Values that are not maps of strings are left to the schema check."""
    return _labels_annotations_causes(meta, where) if isinstance(meta, Mapping) else []


def _strings(value: Any) -> dict[str, str]:
    """The string entries of a map (``{}`` for anything else)."""
    if not isinstance(value, Mapping):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


def _labels_annotations_causes(meta: Mapping[str, Any], where: str) -> list[Cause]:
    found: list[Cause] = []
    labels, annotations = f"{where}.labels", f"{where}.annotations"
    for key, value in _strings(meta.get("labels")).items():
        found += [Cause(labels, _invalid(key, m)) for m in labelselector.qualified_name_errors(key)]
        found += [Cause(labels, _invalid(value, m)) for m in labelselector.label_value_errors(value)]
    notes = _strings(meta.get("annotations"))
    for key in notes:
        found += [Cause(annotations, _invalid(key, m)) for m in labelselector.qualified_name_errors(key.lower())]
    if sum(len(k.encode()) + len(v.encode()) for k, v in notes.items()) > ANNOTATIONS_SIZE_MAX:
        found.append(
            Cause(annotations, f"Too long: must have at most {ANNOTATIONS_SIZE_MAX} bytes", "FieldValueTooLong")
        )
    return found


def _owner_causes(refs: list[dict[str, Any]]) -> list[Cause]:
    """``ValidateOwnerReferences``: each reference's version and kind, and one controller at most."""
    found: list[Cause] = []
    controller = ""
    for ref in refs:
        api_version = str(ref.get("apiVersion") or "")
        group, _, version = api_version.rpartition("/") if "/" in api_version else ("", "", api_version)
        if not version or api_version.count("/") > 1:
            found.append(
                Cause("metadata.ownerReferences.apiVersion", _invalid(api_version, "version must not be empty"))
            )
        elif (group, version, ref.get("kind")) in _BANNED_OWNERS:
            found.append(
                Cause(
                    "metadata.ownerReferences",
                    _invalid(ref, f"{group}/{version}, Kind={ref.get('kind')} is disallowed from being an owner"),
                )
            )
        if ref.get("controller") is True:
            current = f"{ref.get('kind')}/{ref.get('name')}"
            if controller:
                found.append(
                    Cause(
                        "metadata.ownerReferences",
                        _invalid(
                            refs,
                            'Only one reference can have Controller set to true. Found "true" in references for '
                            f"{controller} and {current}",
                        ),
                    )
                )
            else:
                controller = current
    return found


def _finalizer_causes(finalizers: list[str]) -> list[Cause]:
    """``ValidateFinalizers``: each name qualified; ``orphan`` and ``foregroundDeletion`` not together."""
    found = [
        Cause("metadata.finalizers", _invalid(name, m))
        for name in finalizers
        for m in labelselector.qualified_name_errors(name)
    ]
    if ORPHAN in finalizers and FOREGROUND in finalizers:
        found.append(
            Cause(
                "metadata.finalizers", _invalid(finalizers, f"finalizer {ORPHAN} and {FOREGROUND} cannot be both set")
            )
        )
    return found


def namespace_finalizer_causes(finalizers: list[str]) -> list[Cause]:
    """A Namespace's ``spec.finalizers`` (core ``validateFinalizerName``): each a qualified name and, without a
    ``/``, one of the standard names (``kubernetes``, ``orphan``, ``foregroundDeletion``)."""
    found: list[Cause] = []
    for name in finalizers:
        errs = labelselector.qualified_name_errors(name)
        if not errs and "/" not in name and name not in _STANDARD_FINALIZERS:
            errs = ["name is neither a standard finalizer name nor is it fully qualified"]
        found += [Cause("spec.finalizers", _invalid(name, m)) for m in errs]
    return found


def uid_causes(new: Mapping[str, Any], old: Mapping[str, Any]) -> list[Cause]:
    """An update (``new``, ``old``: the two ``metadata``, before the server restores what it owns) that names a
    ``uid`` other than the stored object's: it was written for another object of that name, one deleted since
    (``metadata.uid`` is immutable, ``ValidateObjectMetaAccessorUpdate``; a ``uid`` left out is the stored one)."""
    uid = new.get("uid")
    if not uid or uid == old.get("uid"):
        return []
    return [Cause("metadata.uid", _invalid(uid, "field is immutable"))]


def update_causes(new: Mapping[str, Any], old: Mapping[str, Any]) -> list[Cause]:
    """What an update may not do to ``metadata`` beyond :func:`causes` of the new one
    (``ValidateObjectMetaAccessorUpdate``): add finalizers to an object that is being deleted (Forbidden, so that
    nothing can hold back a deletion once it started). ``new``, ``old``: the two ``metadata``."""
    if not old.get("deletionTimestamp"):
        return []
    added = sorted(set(new.get("finalizers") or []) - set(old.get("finalizers") or []))
    if not added:
        return []
    shown = ", ".join(f'"{name}"' for name in added)
    return [
        Cause(
            "metadata.finalizers",
            "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers "
            f"[]string{{{shown}}}",
            "FieldValueForbidden",
        )
    ]
