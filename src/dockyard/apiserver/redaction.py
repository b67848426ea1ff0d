"""What identities below admin may not read inside objects they may read: inline webhook secrets.

OpenShift's Generic webhook trigger may carry its secret inline
(``spec.triggers[].generic.secret``); whoever knows it can start builds. The
``view`` and node identities may read BuildConfigs but must not gain that
write, so they get the value replaced by :data:`REDACTED` (the admin sees it;
``generic.secretReference`` keeps the secret in a Secret, which ``view`` cannot
read at all). ``kubectl apply`` also keeps the secret in the ``last-applied-configuration``
annotation: it is redacted there too (the annotation stays the applied manifest, as JSON), and in any
other annotation that holds it. Applied to gets, lists, tables and watch events alike.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from dockyard.api import kinds
from dockyard.api import labels as well_known
from dockyard.apiserver import authz

Obj = dict[str, Any]
REDACTED = "<redacted>"


LAST_APPLIED = well_known.LAST_APPLIED_CONFIG
"""Where ``kubectl apply`` keeps the manifest it applied, inline secret included."""


def _inline_secrets(spec: Any) -> set[str]:
    triggers = spec.get("triggers") if isinstance(spec, dict) else None
    return (
        {
            t["generic"]["secret"]
            for t in triggers or []
            if isinstance(t, dict)
            and isinstance(t.get("generic"), dict)
            and isinstance(t["generic"].get("secret"), str)
            and t["generic"]["secret"]
        }
        if isinstance(triggers, list)
        else set()
    )


def _redact_spec(obj: Obj) -> Obj:
    """``obj`` with its triggers' inline secrets replaced (a copy where anything changes)."""
    spec = obj.get("spec")
    if not _inline_secrets(spec):
        return obj
    out = dict(obj, spec=dict(spec, triggers=copy.deepcopy(spec["triggers"])))
    for trigger in out["spec"]["triggers"]:
        if isinstance(trigger, dict) and isinstance(trigger.get("generic"), dict) and trigger["generic"].get("secret"):
            trigger["generic"]["secret"] = REDACTED
    return out


def _last_applied(text: str) -> tuple[str, set[str]]:
    """The last-applied manifest with its inline secrets redacted, and those secrets."""
    try:
        applied = json.loads(text)
    except ValueError:
        return text, set()
    if not isinstance(applied, dict):
        return text, set()
    found = _inline_secrets(applied.get("spec"))
    return (json.dumps(_redact_spec(applied), separators=(",", ":")) if found else text), found


def _buildconfig(obj: Obj) -> Obj:
    """``obj`` as a reader below admin sees it: every inline Generic secret (its current triggers', and any the
    last applied manifest names) is :data:`REDACTED` in the spec, in the last-applied annotation, and wherever
    else an annotation holds it."""
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    annotations = metadata.get("annotations") if isinstance(metadata.get("annotations"), dict) else {}
    secrets = _inline_secrets(obj.get("spec"))
    shown = dict(annotations)
    if isinstance(shown.get(LAST_APPLIED), str):
        shown[LAST_APPLIED], applied = _last_applied(shown[LAST_APPLIED])
        secrets |= applied
    if not secrets:
        return obj
    for key, value in shown.items():
        if isinstance(value, str):
            for secret in secrets:
                value = value.replace(secret, REDACTED)
            shown[key] = value
    out = _redact_spec(obj)
    if annotations:
        out = dict(out, metadata=dict(metadata, annotations=shown))
    return out


def for_reader(user: str, info: kinds.ResourceInfo) -> Callable[[Obj], Obj] | None:
    """The function that hides what ``user`` may not read in objects of ``info``, or ``None`` (nothing to hide)."""
    if user == authz.ADMIN or (info.group, info.kind) != (kinds.GROUP, "BuildConfig"):
        return None
    return _buildconfig


def list_items(hide: Callable[[Obj], Obj], listed: Obj) -> Obj:
    """A list object with :func:`for_reader`'s function applied to each item."""
    return dict(listed, items=[hide(i) if isinstance(i, dict) else i for i in listed.get("items") or []])
