"""A static scan of the Kubernetes API requests a component's source makes: ``{(group, resource, verb)}``.

Used by ``test_cluster_manifests.py`` to hold the RBAC rules of ``dockyard manifests kubernetes`` to what the code
really does. It reads the source with :mod:`ast` (nothing is imported or run) and understands the few ways
dockyard's controllers and agent reach the API:

- ``runtime.Watch("Kind", ...)`` in ``watches()``: the informer lists and watches the kind in all namespaces
  (``list``, ``watch``; :class:`dockyard.client.runtime.Informer`);
- lightkube client calls on anything named ``*api`` (``self.api``, ``api``, ``self._api``): ``get``, ``list``,
  ``watch``, ``create``, ``replace`` (``update``), ``patch``, ``apply`` (``patch``), ``delete``,
  ``deletecollection``; the resource is the first argument: ``resources.resource("Kind")`` (``.Status`` is the
  ``status`` subresource), a name bound to one (``RS = resources.resource("ReplicaSet")``), a lightkube class
  imported from ``lightkube.resources.*``, or any of those called on a body (``Pod(body)``); a typed object
  (``self.api.replace(rs)``) names its kind in a comment on the call's line: ``# kind: ReplicaSet``;
- the helpers of :mod:`dockyard.client.runtime`: ``get_or_none``/``get`` (``get``) and ``patch_status``
  (``patch`` of ``KIND/status``), with the kind as a string literal;
- ``self.events.record(...)`` / ``EventRecorder``: whatever :mod:`dockyard.client.events` itself calls (scanned
  the same way: ``create``, ``get``, ``patch`` of core ``events``);
- raw HTTP on anything named ``*http*`` (``http.post(path)``, ``http.stream("GET", path)``, ``self._http.post``):
  the path (an f-string, or a name/attribute assigned one in the same module) names group, resource and
  subresource (``/apis/G/V/namespaces/{ns}/PLURAL/{name}/SUB``); the method gives the verb (POST ``create``,
  GET ``get``, PUT ``update``, PATCH ``patch``, DELETE ``delete``).

Robust by refusing to guess: an API call or HTTP call whose resource or path cannot be resolved is reported in
``unresolved`` (file:line), and the test fails on it, so a new way of calling the API has to be taught here
rather than silently missed. Modules are followed through their ``dockyard.controllers``/``dockyard.agent``
imports, so a new helper module is scanned too.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.api import kinds

SRC = Path(__file__).resolve().parents[2] / "src"

LIGHTKUBE_VERBS = {
    "get": "get",
    "list": "list",
    "watch": "watch",
    "create": "create",
    "replace": "update",
    "patch": "patch",
    "apply": "patch",
    "delete": "delete",
    "deletecollection": "deletecollection",
}
HTTP_VERBS = {"POST": "create", "GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
FOLLOWED_PACKAGES = ("dockyard.controllers", "dockyard.agent")

Rule = tuple[str, str, str]  # (apiGroup, resource[/subresource], verb)


@dataclass
class Scan:
    needs: set[Rule] = field(default_factory=set)
    unresolved: list[str] = field(default_factory=list)
    modules: list[str] = field(default_factory=list)


def _info(kind: str) -> kinds.ResourceInfo:
    for item in kinds.RESOURCES:
        if item.kind == kind:
            return item
    raise KeyError(kind)


def _by_plural(group: str, plural: str) -> kinds.ResourceInfo | None:
    return next((i for i in kinds.RESOURCES if i.group == group and i.plural == plural), None)


def module_path(module: str) -> Path:
    base = SRC / Path(*module.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


class _ModuleScan(ast.NodeVisitor):
    def __init__(self, module: str, scan: Scan, path: Path | None = None) -> None:
        self.module = module
        self.path = path or module_path(module)
        self.scan = scan
        text = self.path.read_text()
        self.lines = text.splitlines()
        self.tree = ast.parse(text, filename=str(self.path))
        self.kinds: dict[str, str] = {}  # local name -> Kind
        self.strings: dict[str, ast.expr] = {}  # name or attribute -> assigned path expression
        self.imports: set[str] = set()
        self.uses_events = False
        for node in ast.walk(self.tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module.startswith("lightkube.resources."):
                    for alias in node.names:
                        self.kinds[alias.asname or alias.name] = alias.name
                for prefix in FOLLOWED_PACKAGES:
                    if node.module == prefix or node.module.startswith(prefix + "."):
                        for alias in node.names:
                            sub = f"{node.module}.{alias.name}"
                            self.imports.add(sub if module_path(sub).exists() else node.module)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith(FOLLOWED_PACKAGES):
                        self.imports.add(alias.name)
            elif isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                key = _dotted(target)
                kind = self._kind_of_factory(node.value)
                if key and kind:
                    self.kinds[key.rsplit(".", 1)[-1]] = kind
                elif key and isinstance(node.value, ast.JoinedStr | ast.Constant):
                    self.strings[key.rsplit(".", 1)[-1]] = node.value
        for node in ast.walk(self.tree):  # ``obj = api.get(Kind, ...)``: ``api.replace(obj)`` writes a Kind
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.value, ast.Call):
                func, key = _dotted(node.value.func) or "", _dotted(node.targets[0])
                if key and func.endswith("api.get") and node.value.args:
                    got = self.resource_of(node.value.args[0])
                    if got:
                        self.kinds[key.rsplit(".", 1)[-1]] = got[0]

    def where(self, node: ast.AST) -> str:
        where = self.path.relative_to(SRC) if self.path.is_relative_to(SRC) else self.path
        return f"{where}:{getattr(node, 'lineno', '?')}"

    def _kind_of_factory(self, expr: ast.expr) -> str | None:
        """``resources.resource("Kind")`` -> Kind."""
        if (
            isinstance(expr, ast.Call)
            and _dotted(expr.func) in ("resources.resource", "resource")
            and expr.args
            and isinstance(expr.args[0], ast.Constant)
            and isinstance(expr.args[0].value, str)
        ):
            return expr.args[0].value
        return None

    def resource_of(self, expr: ast.expr) -> tuple[str, str] | None:
        """(Kind, subresource) of a lightkube call's first argument, or None."""
        if isinstance(expr, ast.Attribute) and expr.attr == "Status":
            inner = self.resource_of(expr.value)
            return (inner[0], "status") if inner else None
        if isinstance(expr, ast.Call):
            kind = self._kind_of_factory(expr)
            if kind:
                return (kind, "")
            return self.resource_of(expr.func)  # Kind(body)
        if isinstance(expr, ast.Name) and expr.id in self.kinds:
            return (self.kinds[expr.id], "")
        return None

    def add_kind(self, kind: str, sub: str, verb: str, node: ast.AST) -> None:
        try:
            info = _info(kind)
        except KeyError:
            self.scan.unresolved.append(f"{self.where(node)}: unknown kind {kind!r}")
            return
        self.scan.needs.add((info.group, info.plural + (f"/{sub}" if sub else ""), verb))

    def add_path(self, path: ast.expr, method: str, node: ast.AST) -> None:
        if isinstance(path, ast.Name | ast.Attribute):
            key = _dotted(path)
            resolved = self.strings.get(key.rsplit(".", 1)[-1]) if key else None
            if resolved is None:
                self.scan.unresolved.append(f"{self.where(node)}: HTTP path {ast.unparse(path)} not resolved")
                return
            path = resolved
        text = _template(path)
        verb = HTTP_VERBS.get(method.upper())
        parts = [p for p in (text or "").split("/") if p]
        if text is None or verb is None or len(parts) < 3:
            self.scan.unresolved.append(f"{self.where(node)}: HTTP {method} {ast.unparse(path)} not understood")
            return
        if parts[0] == "api":
            group, rest = "", parts[2:]
        elif parts[0] == "apis":
            group, rest = parts[1], parts[3:]
        else:
            self.scan.unresolved.append(f"{self.where(node)}: HTTP path {text} is not an API path")
            return
        if rest[:1] == ["namespaces"] and len(rest) > 2:
            rest = rest[2:]
        info = _by_plural(group, rest[0]) if rest else None
        if info is None:
            self.scan.unresolved.append(f"{self.where(node)}: HTTP path {text} names no served resource")
            return
        sub = rest[2] if len(rest) > 2 else ""
        self.scan.needs.add((group, rest[0] + (f"/{sub}" if sub else ""), verb))

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = _dotted(func) or ""
        last = name.rsplit(".", 1)[-1]
        receiver = name.rsplit(".", 1)[0] if "." in name else ""
        recv_last = receiver.rsplit(".", 1)[-1]
        if last == "Watch" and node.args and isinstance(node.args[0], ast.Constant):
            self.add_kind(node.args[0].value, "", "list", node)
            self.add_kind(node.args[0].value, "", "watch", node)
        elif last in ("get_or_none", "get") and recv_last == "runtime":
            self._helper(node, "", "get")
        elif last == "patch_status" and recv_last == "runtime":
            self._helper(node, "status", "patch")
        elif (last == "record" and recv_last == "events") or last == "EventRecorder":
            self.uses_events = True
        elif recv_last.lower().endswith("api") and last in LIGHTKUBE_VERBS:
            res = self.resource_of(node.args[0]) if node.args else None
            if res is None:
                marker = re.search(r"#\s*kind:\s*(\w+)", self.lines[node.lineno - 1])
                res = (marker.group(1), "") if marker else None
            if res is None:
                self.scan.unresolved.append(
                    f"{self.where(node)}: {name}(...) on a resource the scan cannot name: "
                    f"{ast.unparse(node.args[0]) if node.args else '(none)'}"
                )
            else:
                self.add_kind(res[0], res[1], LIGHTKUBE_VERBS[last], node)
        elif "http" in recv_last.lower() and last in ("get", "post", "put", "patch", "delete", "stream", "request"):
            if last in ("stream", "request"):
                method = node.args[0].value if node.args and isinstance(node.args[0], ast.Constant) else "?"
                path = node.args[1] if len(node.args) > 1 else None
            else:
                method, path = last, node.args[0] if node.args else None
            if path is None:
                self.scan.unresolved.append(f"{self.where(node)}: {name}(...) without a path")
            else:
                self.add_path(path, str(method), node)
        self.generic_visit(node)

    def _helper(self, node: ast.Call, sub: str, verb: str) -> None:
        arg = node.args[1] if len(node.args) > 1 else None
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            self.add_kind(arg.value, sub, verb, node)
        elif self.module != "dockyard.client.runtime":
            self.scan.unresolved.append(
                f"{self.where(node)}: {ast.unparse(node.func)} with a kind that is not a literal"
            )


def _dotted(expr: ast.expr) -> str | None:
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Attribute):
        inner = _dotted(expr.value)
        return f"{inner}.{expr.attr}" if inner else expr.attr
    if isinstance(expr, ast.Call):
        return _dotted(expr.func)
    return None


def _template(expr: ast.expr) -> str | None:
    """An f-string as text with ``{}`` for each placeholder; a string constant as itself."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return expr.value
    if isinstance(expr, ast.JoinedStr):
        return "".join(_placeholder(v) for v in expr.values)
    return None


_KNOWN_CONSTANTS = {"kinds.API_VERSION": kinds.API_VERSION}
"""Placeholders whose value the scan knows (dockyard's group/version in a path)."""


def _placeholder(value: ast.expr) -> str:
    if isinstance(value, ast.Constant):
        return str(value.value)
    if isinstance(value, ast.FormattedValue):
        return _KNOWN_CONSTANTS.get(_dotted(value.value) or "", "{}")
    return "{}"


def scan(roots: list[str], *, extra: tuple[str, ...] = ()) -> Scan:
    """Scan ``roots`` (module names) and every ``dockyard.controllers``/``dockyard.agent`` module they import,
    plus ``extra`` modules; Events recording adds what :mod:`dockyard.client.events` does."""
    result = Scan()
    todo, seen = list(roots) + list(extra), set()
    uses_events = False
    while todo:
        module = todo.pop()
        if module in seen or not module_path(module).exists():
            continue
        seen.add(module)
        ms = _ModuleScan(module, result)
        ms.visit(ms.tree)
        uses_events |= ms.uses_events
        todo.extend(m for m in ms.imports if m.startswith(FOLLOWED_PACKAGES))
    if uses_events and "dockyard.client.events" not in seen:
        ms = _ModuleScan("dockyard.client.events", result)
        ms.visit(ms.tree)
        seen.add("dockyard.client.events")
    result.modules = sorted(seen)
    return result


def scan_file(path: Path) -> Scan:
    """Scan one file outside the package (the scanner's own tests)."""
    result = Scan()
    ms = _ModuleScan("scanned", result, path)
    ms.visit(ms.tree)
    return result
