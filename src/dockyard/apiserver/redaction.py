"""What identities below admin may not read inside objects they may read: inline webhook secrets.

OpenShift's Generic webhook trigger may carry its secret inline
(``spec.triggers[].generic.secret``); whoever knows it can start builds. The
``view`` and node identities may read BuildConfigs but must not gain that
write, so they get the value replaced by :data:`REDACTED` (the admin sees it;
``generic.secretReference`` keeps the secret in a Secret, which ``view`` cannot
read at all). Applied to gets, lists and watch events alike.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from dockyard.api import kinds
from dockyard.apiserver import authz

Obj = dict[str, Any]
REDACTED = "<redacted>"


def _buildconfig(obj: Obj) -> Obj:
    triggers = (obj.get("spec") or {}).get("triggers") if isinstance(obj.get("spec"), dict) else None
    if not isinstance(triggers, list) or not any(
        isinstance(t, dict) and isinstance(t.get("generic"), dict) and t["generic"].get("secret") for t in triggers
    ):
        return obj
    out = dict(obj, spec=dict(obj["spec"], triggers=copy.deepcopy(triggers)))
    for trigger in out["spec"]["triggers"]:
        if isinstance(trigger, dict) and isinstance(trigger.get("generic"), dict) and trigger["generic"].get("secret"):
            trigger["generic"]["secret"] = REDACTED
    return out


def for_reader(user: str, info: kinds.ResourceInfo) -> Callable[[Obj], Obj] | None:
    """The function that hides what ``user`` may not read in objects of ``info``, or ``None`` (nothing to hide)."""
    if user == authz.ADMIN or (info.group, info.kind) != (kinds.GROUP, "BuildConfig"):
        return None
    return _buildconfig


def list_items(hide: Callable[[Obj], Obj], listed: Obj) -> Obj:
    """A list object with :func:`for_reader`'s function applied to each item."""
    return dict(listed, items=[hide(i) if isinstance(i, dict) else i for i in listed.get("items") or []])
