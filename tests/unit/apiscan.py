"""A static scan of the Kubernetes API requests a component's source makes: ``{(group, resource, verb)}``.

Used by ``test_cluster_manifests.py`` to hold the RBAC rules of ``dockyard manifests kubernetes`` to what the code
really does. It reads the source with :mod:`ast` (nothing of it is run) and understands the few ways
dockyard's controllers and agent reach the API:

- ``runtime.Watch("Kind", ...)`` in ``watches()``: the informer lists and watches the kind in all namespaces
  (``list``, ``watch``; :class:`dockyard.client.runtime.Informer`);
- lightkube client calls on anything named ``*api`` (``self.api``, ``api``, ``self._api``): ``get``, ``list``,
  ``watch``, ``create``, ``replace`` (``update``), ``patch``, ``apply`` (``patch``), ``delete``,
  ``deletecollection``; the resource is the first argument: ``resources.resource("Kind")`` (``.Status`` is the
  ``status`` subresource), a name bound to one (``RS = resources.resource("ReplicaSet")``), a lightkube class
  imported from ``lightkube.resources.*``, or any of those called on a body (``Pod(body)``); a typed object
  (``self.api.replace(rs)``) names its kind in a comment on the call's line: ``# kind: ReplicaSet``;
- the helpers of :mod:`dockyard.client.runtime` (:data:`RUNTIME_HELPERS`): ``get_or_none``/``get`` (``get``) and
  ``patch_status`` (``patch`` of ``KIND/status``) with the kind as a string literal; ``get_as`` (``get``) and
  ``list_as`` (``list``) with a typed object class (``objects.Build`` of :mod:`dockyard.api.objects` -> Build, a
  lightkube class such as ``Pod``; its kind is :func:`dockyard.client.runtime.kind_of` the class, the only thing
  the scan imports); ``update_status(api, obj, status)`` (``patch`` of ``KIND/status``) with ``obj`` a local name
  whose kind the enclosing function states: a parameter or variable annotation (``build: objects.Build``), an
  assignment from a read (``build = runtime.get_as(api, objects.Build, ...)``), ``for b in runtime.list_as(...)``,
  or a ``# kind: Kind`` comment on the call's line; a name of several kinds in one function is refused;
- ``self.events.record(...)`` / ``EventRecorder``: whatever :mod:`dockyard.client.events` itself calls (scanned
  the same way: ``create``, ``get``, ``patch`` of core ``events``);
- raw HTTP on anything named ``*http*`` (``http.post(path)``, ``http.stream("GET", path)``, ``self._http.post``):
  the path (an f-string, or a name/attribute assigned one in the same module) names group, resource and
  subresource (``/apis/G/V/namespaces/{ns}/PLURAL/{name}/SUB``); the method gives the verb (POST ``create``,
  GET ``get``, PUT ``update``, PATCH ``patch``, DELETE ``delete``).

Robust by refusing to guess: an API call or HTTP call whose resource or path cannot be resolved is reported in
``unresolved`` (file:line), and the test fails on it; so is any other call given the API client (``*api``) whose
body the scan does not read (an unknown ``runtime.*`` helper, a function of another package). A new way of
calling the API has to be taught here rather than silently missed. Modules are followed through their ``dockyard.controllers``/``dockyard.agent``
imports, so a new helper module is scanned too.
"""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.api import kinds
from dockyard.client import runtime

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
CLASS_MODULES = ("dockyard.api.objects", "lightkube.resources.")
"""Where a typed object's class comes from: its kind is :func:`dockyard.client.runtime.kind_of` the class."""
RUNTIME_HELPERS = {
    # name: (how the kind is given, subresource, verb)
    "get": ("literal", "", "get"),
    "get_or_none": ("literal", "", "get"),
    "patch_status": ("literal", "status", "patch"),
    "get_as": ("class", "", "get"),
    "list_as": ("class", "", "list"),
    "update_status": ("object", "status", "patch"),
}
"""The :mod:`dockyard.client.runtime` functions that request the API (their second argument names the kind: a
string literal, a typed object class, or a typed object whose kind is known in the calling function)."""

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
        self.aliases: dict[str, str] = {}  # local name -> qualified name it was imported as
        self.defined = {
            n.name for n in self.tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        }
        self.methods = {
            m.name
            for n in self.tree.body
            if isinstance(n, ast.ClassDef)
            for m in n.body
            if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef)
        }
        self.scopes: list[dict[str, set[str]]] = []  # enclosing functions: local name -> kinds of its typed object
        self.uses_events = False
        for node in ast.walk(self.tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    self.aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    self.aliases[alias.asname or alias.name.split(".")[0]] = (
                        alias.name if alias.asname else alias.name.split(".")[0]
                    )
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

    def class_kind(self, expr: ast.expr) -> str | None:
        """The kind of a typed object class: ``objects.Build`` (:mod:`dockyard.api.objects`) -> Build, a lightkube
        resource class (``Pod``, ``core_v1.Pod``) -> Pod, a name bound to ``resources.resource("Kind")`` -> Kind;
        None for anything else. Only these classes are looked up (imported), to read their kind."""
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):  # a string annotation
            try:
                expr = ast.parse(expr.value, mode="eval").body
            except SyntaxError:
                return None
        if isinstance(expr, ast.Name) and expr.id in self.kinds:
            return self.kinds[expr.id]
        dotted = _dotted(expr) if isinstance(expr, ast.Name | ast.Attribute) else None
        if dotted is None:
            return None
        head, _, rest = dotted.partition(".")
        qualified = self.aliases.get(head, head) + (f".{rest}" if rest else "")
        module, _, name = qualified.rpartition(".")
        if not (module == CLASS_MODULES[0] or module.startswith(CLASS_MODULES[1])):
            return None
        cls = getattr(importlib.import_module(module), name, None)
        if not isinstance(cls, type):
            return None
        kind = runtime.kind_of(cls)
        return kind if any(i.kind == kind for i in kinds.RESOURCES) else None

    def annotation_kinds(self, expr: ast.expr | None) -> set[str]:
        """Kinds an annotation names: ``objects.Build``, ``Pod | None``, ``Optional[Pod]``, ``"objects.Build"``."""
        if expr is None:
            return set()
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            try:
                expr = ast.parse(expr.value, mode="eval").body
            except SyntaxError:
                return set()
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.BitOr):
            return self.annotation_kinds(expr.left) | self.annotation_kinds(expr.right)
        if isinstance(expr, ast.Subscript) and (_dotted(expr.value) or "").endswith("Optional"):
            return self.annotation_kinds(expr.slice)
        kind = self.class_kind(expr)
        return {kind} if kind else set()

    def value_kinds(self, expr: ast.expr) -> set[str]:
        """Kinds of the typed object an expression evaluates to, when it is read through the API here:
        ``runtime.get_as(api, objects.Build, ...)``, ``runtime.get(api, "Build", ...)``, ``api.get(Build, ...)``,
        ``runtime.update_status(...)`` of those, or ``a or b`` of them."""
        if isinstance(expr, ast.BoolOp):
            return set().union(*(self.value_kinds(v) for v in expr.values))
        if not isinstance(expr, ast.Call) or not expr.args:
            return set()
        name = _dotted(expr.func) or ""
        last, recv = name.rsplit(".", 1)[-1], name.rsplit(".", 1)[0] if "." in name else ""
        if recv.rsplit(".", 1)[-1] == "runtime" and last in ("get_as", "get") and len(expr.args) > 1:
            arg = expr.args[1]
            if last == "get" and isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                return {arg.value}
            kind = self.class_kind(arg) if last == "get_as" else None
            return {kind} if kind else set()
        if recv.lower().endswith("api") and last == "get":
            got = self.resource_of(expr.args[0])
            return {got[0]} if got and not got[1] else set()
        return set()

    def _scope_of(self, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[str, set[str]]:
        """Local name -> kinds of its typed object in ``fn`` (not in functions nested in it): parameter and
        variable annotations, assignments from reads (:meth:`value_kinds`), ``for x in runtime.list_as(...)``."""
        found: dict[str, set[str]] = {}

        def add(name: str, kinds_: set[str]) -> None:
            if kinds_:
                found.setdefault(name, set()).update(kinds_)

        args = fn.args
        for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs]:
            add(arg.arg, self.annotation_kinds(arg.annotation))
        for node in _walk_function(fn):
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                add(node.target.id, self.annotation_kinds(node.annotation))
                if node.value is not None:
                    add(node.target.id, self.value_kinds(node.value))
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        add(target.id, self.value_kinds(node.value))
            elif isinstance(node, ast.For | ast.comprehension) and isinstance(node.target, ast.Name):
                it = node.iter
                if (
                    isinstance(it, ast.Call)
                    and (_dotted(it.func) or "").endswith("runtime.list_as")
                    and len(it.args) > 1
                ):
                    kind = self.class_kind(it.args[1])
                    add(node.target.id, {kind} if kind else set())
        return found

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.scopes.append(self._scope_of(node))
        self.generic_visit(node)
        self.scopes.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def object_kinds(self, expr: ast.expr) -> set[str]:
        """Kinds of a typed object passed to a helper: a local name, looked up from the innermost function out."""
        if isinstance(expr, ast.Name):
            for scope in reversed(self.scopes):
                if expr.id in scope:
                    return scope[expr.id]
        return set()

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
        elif recv_last == "runtime" and last in RUNTIME_HELPERS:
            self._helper(node, *RUNTIME_HELPERS[last])
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
        elif any(_is_api(a) for a in [*node.args, *(k.value for k in node.keywords)]) and not self._scanned(name):
            self.scan.unresolved.append(
                f"{self.where(node)}: {name}(...) is given the API client; teach the scan what it requests"
            )
        self.generic_visit(node)

    def _scanned(self, callee: str) -> bool:
        """Whether the body of ``callee`` is scanned too: a function or class of this module, a method of a class
        of this module (``self.x``), or a function of a followed module (``pushes.run``)."""
        head, _, rest = callee.partition(".")
        if not rest:
            return head in self.defined
        if head in ("self", "cls") and "." not in rest:
            return rest in self.methods
        return self.aliases.get(head, "").startswith(FOLLOWED_PACKAGES)

    def _helper(self, node: ast.Call, given: str, sub: str, verb: str) -> None:
        if self.module == "dockyard.client.runtime":
            return  # the helpers themselves: their callers name the kinds
        arg = node.args[1] if len(node.args) > 1 else None
        if given == "literal":
            kinds_ = {arg.value} if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else set()
        elif given == "class":
            kind = self.class_kind(arg) if arg is not None else None
            kinds_ = {kind} if kind else set()
        else:
            kinds_ = self.object_kinds(arg) if arg is not None else set()
            marker = re.search(r"#\s*kind:\s*(\w+)", self.lines[node.lineno - 1])
            kinds_ = kinds_ | {marker.group(1)} if marker else kinds_
        if len(kinds_) != 1:
            what = {"literal": "not a string literal", "class": "not a typed object class the scan knows"}.get(
                given, f"of {'several kinds ' + str(sorted(kinds_)) if kinds_ else 'no kind the scan knows'}"
            )
            self.scan.unresolved.append(
                f"{self.where(node)}: {ast.unparse(node.func)}(..., {ast.unparse(arg) if arg else '?'}, ...): "
                f"the kind is {what}"
            )
            return
        self.add_kind(kinds_.pop(), sub, verb, node)


def _is_api(expr: ast.expr) -> bool:
    """An API client by its name: ``api``, ``self.api``, ``self._api``."""
    name = _dotted(expr) if isinstance(expr, ast.Name | ast.Attribute) else None
    return name is not None and name.rsplit(".", 1)[-1].lower().endswith("api")


def _walk_function(fn: ast.AST) -> Iterator[ast.AST]:
    """The nodes of a function's body, not descending into functions, lambdas or classes nested in it."""
    todo = list(ast.iter_child_nodes(fn))
    while todo:
        node = todo.pop()
        yield node
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            todo.extend(ast.iter_child_nodes(node))


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
