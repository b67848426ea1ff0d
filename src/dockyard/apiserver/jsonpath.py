"""The JSONPath subset of ``additionalPrinterColumns`` (kubectl's JSONPath without ranges). Pure.

``.a.b``, ``.a[0]``, ``.a[*].b``, ``.a['key.with.dots']`` and filters ``[?(@.type=="Ready")]``
(``==``/``!=`` against a quoted string or a number), as in the Kubernetes JSONPath reference
(https://kubernetes.io/docs/reference/kubectl/jsonpath/).
"""

from __future__ import annotations

import json
import re
from typing import Any

_TOKEN = re.compile(
    r"""\.(?P<field>[A-Za-z0-9_$-]+)"""
    r"""|\[(?P<index>-?\d+|\*)\]"""
    r"""|\[['"](?P<key>[^'"]+)['"]\]"""
    r"""|\[\?\(@\.(?P<fpath>[A-Za-z0-9_.-]+)\s*(?P<op>==|!=)\s*(?P<fval>"[^"]*"|'[^']*'|-?[\d.]+)\)\]"""
)


class BadPath(ValueError):
    """Not a JSONPath of the supported subset."""


def parse(path: str) -> list[re.Match[str]]:
    """The steps of ``path`` (a leading ``{``/``}`` pair and ``$`` are allowed).

    Raises:
        BadPath: a part of the path is not in the subset.
    """
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    text = text.removeprefix("$")
    steps, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise BadPath(f"unsupported JSONPath at {text[pos:]!r}")
        steps.append(match)
        pos = match.end()
    return steps


def _literal(raw: str) -> Any:
    if raw[:1] in ("'", '"'):
        return raw[1:-1]
    return json.loads(raw)


def _dig(value: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def find(obj: Any, path: str) -> list[Any]:
    """Every value ``path`` selects in ``obj`` (``[]`` when none, or the path is not in the subset)."""
    try:
        steps = parse(path)
    except BadPath:
        return []
    current = [obj]
    for step in steps:
        nxt: list[Any] = []
        for value in current:
            if step["field"] is not None or step["key"] is not None:
                key = step["field"] or step["key"]
                if isinstance(value, dict) and key in value:
                    nxt.append(value[key])
            elif step["index"] is not None and isinstance(value, list):
                if step["index"] == "*":
                    nxt.extend(value)
                else:
                    i = int(step["index"])
                    if -len(value) <= i < len(value):
                        nxt.append(value[i])
            elif step["fpath"] is not None and isinstance(value, list):
                want = _literal(step["fval"])
                for item in value:
                    if (_dig(item, step["fpath"]) == want) == (step["op"] == "=="):
                        nxt.append(item)
        current = nxt
    return current


def text(value: Any) -> str:
    """A value as kubectl prints it in a column (JSON for objects and lists)."""
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
