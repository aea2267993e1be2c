"""Follow ``config`` from ``merkit.api.evaluate`` through the code and count how often it climbs back up a layer.

This reads the source (``ast``), runs nothing, and prints the trip as a list of *stays*: each time a value that
comes from ``config`` is handed to a function of another module, the trip moves to that module. A *climb* is a
stay in a module higher in the import contract's layers (``pyproject.toml``, ``[tool.importlinter]``) than the
stay before it. Both a call upwards and a return to a higher caller that then hands the value on again count:
either way the value went back up to a layer it had already left.

How the trip is followed:

* A function is read statement by statement in written order; in one statement the calls come in the order
  their text starts (an outer call before the calls in its arguments).
* The names that carry the value start as the parameter followed; an assignment, ``for`` or ``with`` target
  whose right-hand side mentions a carrying name carries it too.
* A call carries the value when its receiver or one of its arguments mentions a carrying name. Its callee is
  found from the module's imports and definitions: a name defined or imported in the module, ``self.method``,
  ``Class.method``, ``module.function``, or ``value.method`` where exactly one class of merkit defines ``method``
  (several: the trip stops there, since the callee is chosen at run time). The callee's parameters that receive
  the value carry it on. Constructing a class (``Fold(...)``) stores the value: the trip does not enter.
* A function is read once; a second call into it is a stay, without reading it again.
* Functions defined inside a function are read as part of it.

Usage::

    python docs/scripts/config_climbs.py                  # this checkout
    python docs/scripts/config_climbs.py --root DIR -v    # another checkout (e.g. a git worktree), with the trip

The layers always come from this checkout's contract, so that two checkouts are counted against the same order.
"""

from __future__ import annotations

import argparse
import ast
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parents[2]
COMPLAINTS = "merkit.errors"  # an error or a counted warning about the value is not a hand-on


def contract_layers(pyproject: Path) -> dict[str, int]:
    """Top-level module name (``merkit.training``) -> layer number, 0 at the top."""
    config = tomllib.loads(pyproject.read_text())["tool"]["importlinter"]
    contract = next(c for c in config["contracts"] if c["type"] == "layers")
    return {name.strip(): i for i, line in enumerate(contract["layers"]) for name in line.split("|")}


@dataclass
class Module:
    name: str
    tree: ast.Module
    imports: dict[str, str] = field(default_factory=dict)  # local name -> "module:object" or "module"
    functions: dict[str, ast.FunctionDef] = field(default_factory=dict)  # qualname -> def
    classes: dict[str, ast.ClassDef] = field(default_factory=dict)


def _absolute(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    base = parts[: len(parts) - node.level + (1 if is_package else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def read_modules(src: Path) -> dict[str, Module]:
    modules = {}
    for path in sorted(src.rglob("*.py")):
        rel = path.relative_to(src).with_suffix("")
        is_package = rel.name == "__init__"
        name = ".".join(rel.parts[:-1] if is_package else rel.parts)
        tree = ast.parse(path.read_text(), str(path))
        m = Module(name, tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                origin = _absolute(name, node, is_package)
                for alias in node.names:
                    m.imports[alias.asname or alias.name] = f"{origin}:{alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    m.imports[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else \
                        alias.name.split(".")[0]
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                m.functions[node.name] = node
            elif isinstance(node, ast.ClassDef):
                m.classes[node.name] = node
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        m.functions[f"{node.name}.{item.name}"] = item
        modules[name] = m
    return modules


def _mentions(node: ast.AST | None, names: set[str]) -> bool:
    """Whether ``node`` mentions a carrying name outside an f-string (what a call hands on): a message about a
    value is text, not the value."""
    if node is None or isinstance(node, ast.JoinedStr):
        return False
    if isinstance(node, ast.Name):
        return node.id in names
    return any(_mentions(child, names) for child in ast.iter_child_nodes(node))


def _outside_messages(node: ast.AST):
    """The nodes of ``node``, leaving out f-strings (messages) and what they hold."""
    if isinstance(node, ast.JoinedStr):
        return
    yield node
    for child in ast.iter_child_nodes(node):
        yield from _outside_messages(child)


def _target_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


class Walk:
    """One trip of a parameter; ``stays`` is the list of (module, function) entered, in order."""

    def __init__(self, modules: dict[str, Module]):
        self.modules = modules
        self.read: set[tuple[str, str]] = set()
        self.stays: list[tuple[str, str]] = []
        self.entered: set[int] = set()  # the calls followed, whose results carry the value

    # --- finding the callee ---
    def lookup(self, module: str, name: str, depth: int = 0) -> tuple[str, str] | None:
        """(module, qualname or class name) that ``name`` means in ``module``, following re-exports."""
        m = self.modules.get(module)
        if m is None or depth > 10:
            return None
        if name in m.functions or name in m.classes:
            return module, name
        target = m.imports.get(name)
        if target is None or ":" not in target:
            return None
        origin, obj = target.split(":")
        if f"{origin}.{obj}" in self.modules:
            return f"{origin}.{obj}", ""  # a module
        return self.lookup(origin, obj, depth + 1)

    def callee(self, module: str, func: ast.expr, types: dict) -> tuple[str, str] | None:
        if isinstance(func, ast.Name):
            found = self.lookup(module, func.id)
            if found is None or not found[1]:
                return None
            where, name = found
            return None if name in self.modules[where].classes else found
        if not isinstance(func, ast.Attribute):
            return None
        attr, base = func.attr, func.value
        if isinstance(base, ast.Name):
            kind = types.get(base.id)
            if isinstance(kind, tuple):
                return self.method(*kind, attr)
            if kind == "other":
                return None
            found = self.lookup(module, base.id)
            if found is not None and not found[1]:  # module.function
                return (found[0], attr) if attr in self.modules[found[0]].functions else None
            if found is not None and found[1] in self.modules[found[0]].classes:  # Class.method
                return self.method(found[0], found[1], attr)
            mod = self.modules[module].imports.get(base.id)
            if mod in self.modules and attr in self.modules[mod].functions:  # import merkit.x as x
                return mod, attr
        return None

    def method(self, module: str, cls: str, attr: str) -> tuple[str, str] | None:
        m = self.modules[module]
        if f"{cls}.{attr}" in m.functions:
            return module, f"{cls}.{attr}"
        for base in m.classes[cls].bases:
            if isinstance(base, ast.Name):
                found = self.lookup(module, base.id)
                if found and found[1] in self.modules[found[0]].classes:
                    hit = self.method(found[0], found[1], attr)
                    if hit:
                        return hit
        return None

    # --- types, from annotations and constructors ---
    def type_of(self, module: str, annotation: ast.expr | None) -> tuple[str, str] | str | None:
        """The merkit class an annotation names, ``"other"`` for a type from elsewhere, None if none."""
        if annotation is None:
            return None
        if isinstance(annotation, ast.BinOp):  # X | None
            for side in (annotation.left, annotation.right):
                found = self.type_of(module, side)
                if isinstance(found, tuple):
                    return found
            return "other"
        if isinstance(annotation, ast.Constant) and annotation.value is None:
            return None
        if isinstance(annotation, ast.Name):
            found = self.lookup(module, annotation.id)
            if found is not None and found[1] in self.modules[found[0]].classes:
                return found
        return "other"

    # --- walking ---
    def enter(self, module: str, qual: str, carrying: set[str]) -> None:
        self.stays.append((module, qual))
        if (module, qual) in self.read:
            return
        self.read.add((module, qual))
        fn = self.modules[module].functions[qual]
        types: dict[str, object] = {}
        for a in fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs:
            types[a.arg] = self.type_of(module, a.annotation)
        self.body(module, fn.body, set(carrying), types)

    def body(self, module: str, statements: list[ast.stmt], carrying: set[str], types: dict) -> None:
        for stmt in statements:
            self.statement(module, stmt, carrying, types)

    def statement(self, module: str, stmt: ast.stmt, carrying: set[str], types: dict) -> None:
        if isinstance(stmt, ast.Raise):
            return  # an error message about the value is a complaint, not a hand-on
        nested = [getattr(stmt, k) for k in ("body", "orelse", "finalbody") if isinstance(getattr(stmt, k, None), list)]
        handlers = getattr(stmt, "handlers", [])
        header = [v for k, v in ast.iter_fields(stmt) if k not in ("body", "orelse", "finalbody", "handlers")]
        for part in header:
            for node in part if isinstance(part, list) else [part]:
                if isinstance(node, ast.AST):
                    self.calls(module, node, carrying, types)
        self.assign(module, stmt, carrying, types)
        for block in nested:
            self.body(module, block, carrying, types)
        for handler in handlers:
            self.body(module, handler.body, carrying, types)

    def carries(self, node: ast.expr | None, carrying: set[str]) -> bool:
        """Whether the value of ``node`` is taken from a carrying name: the name, a part of it, a container or
        choice holding it, or what a merkit function that received it returns (a library's result is not)."""
        if node is None:
            return False
        if isinstance(node, ast.Name):
            return node.id in carrying
        if isinstance(node, (ast.Attribute, ast.Subscript, ast.Starred, ast.Await, ast.NamedExpr)):
            return self.carries(node.value, carrying)
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return any(self.carries(e, carrying) for e in node.elts)
        if isinstance(node, ast.Dict):
            return any(self.carries(v, carrying) for v in node.values)
        if isinstance(node, ast.IfExp):
            return self.carries(node.body, carrying) or self.carries(node.orelse, carrying)
        if isinstance(node, ast.BoolOp):
            return any(self.carries(v, carrying) for v in node.values)
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            return any(self.carries(g.iter, carrying) for g in node.generators)
        if isinstance(node, ast.Call):
            return id(node) in self.entered
        return False

    def assign(self, module: str, stmt: ast.stmt, carrying: set[str], types: dict) -> None:
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if self.carries(stmt.value, carrying):
                for target in targets:
                    carrying |= _target_names(target)
            kind = self.type_of(module, stmt.annotation) if isinstance(stmt, ast.AnnAssign) else \
                self.returns(module, stmt.value, types)
            if kind is not None:
                for target in targets:
                    if isinstance(target, ast.Name):
                        types[target.id] = kind
        elif isinstance(stmt, ast.AugAssign) and self.carries(stmt.value, carrying):
            carrying |= _target_names(stmt.target)
        elif isinstance(stmt, (ast.For, ast.AsyncFor)) and self.carries(stmt.iter, carrying):
            carrying |= _target_names(stmt.target)
        elif isinstance(stmt, (ast.With, ast.AsyncWith)):
            for item in stmt.items:
                if item.optional_vars is not None and self.carries(item.context_expr, carrying):
                    carrying |= _target_names(item.optional_vars)

    def returns(self, module: str, value: ast.expr, types: dict):
        """The class a value is an instance of, where it is constructed here (``Class(...)``)."""
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name):
            found = self.lookup(module, value.func.id)
            if found is not None and found[1] in self.modules[found[0]].classes:
                return found
        return None

    def calls(self, module: str, node: ast.AST, carrying: set[str], types: dict) -> None:
        found = [n for n in _outside_messages(node) if isinstance(n, ast.Call)]
        for call in sorted(found, key=lambda c: (c.lineno, c.col_offset)):
            receiver = call.func.value if isinstance(call.func, ast.Attribute) else None
            args = list(call.args) + [k.value for k in call.keywords]
            if not (self.carries(receiver, carrying) or any(_mentions(a, carrying) for a in args)):
                continue
            target = self.callee(module, call.func, types)
            if target is not None and not target[0].startswith(COMPLAINTS):
                self.entered.add(id(call))
                self.enter(*target, self.parameters(target, call, carrying))

    def parameters(self, target: tuple[str, str], call: ast.Call, carrying: set[str]) -> set[str]:
        fn = self.modules[target[0]].functions[target[1]]
        params = [a.arg for a in fn.args.posonlyargs + fn.args.args]
        bound = "." in target[1] and params and params[0] in ("self", "cls") \
            and not any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in fn.decorator_list)
        out = set()
        if bound:
            if isinstance(call.func, ast.Attribute) and self.carries(call.func.value, carrying):
                out.add(params[0])
            params = params[1:]
        for i, arg in enumerate(call.args):
            if _mentions(arg, carrying):
                out.add(params[i] if i < len(params) else (fn.args.vararg.arg if fn.args.vararg else "*"))
        names = params + [a.arg for a in fn.args.kwonlyargs]
        for kw in call.keywords:
            if _mentions(kw.value, carrying):
                out.add(kw.arg if kw.arg in names else (fn.args.kwarg.arg if fn.args.kwarg else "**"))
        return out


def trip(root: Path, start: str = "merkit.api:evaluate:config") -> list[tuple[str, str]]:
    """The stays of one trip: (module, function) in the order entered, runs of one module merged."""
    module, function, parameter = start.split(":")
    walk = Walk(read_modules(root / "src"))
    walk.enter(module, function, {parameter})
    stays: list[tuple[str, str]] = []
    for stay in walk.stays:
        if not stays or stays[-1][0] != stay[0]:
            stays.append(stay)
    return stays


def layer_of(module: str, layers: dict[str, int]) -> int:
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in layers:
            return layers[".".join(parts[:n])]
    raise SystemExit(f"{module} is in no layer of the contract: add it to pyproject.toml")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=HERE, help="the checkout to read (default: this one)")
    parser.add_argument("--start", default="merkit.api:evaluate:config", help="module:function:parameter")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the trip, one stay a line")
    args = parser.parse_args()
    layers = contract_layers(HERE / "pyproject.toml")
    stays = trip(args.root, args.start)
    climbs, previous = 0, None
    for i, (module, function) in enumerate(stays, 1):
        layer = layer_of(module, layers)
        up = previous is not None and layer < previous
        climbs += up
        if args.verbose:
            print(f"{i:3d}. layer {layer:2d}  {module:32s} {function:28s} {'UP' if up else ''}")
        previous = layer
    print(f"{len(stays)} stays, {climbs} climbs back up")


if __name__ == "__main__":
    sys.exit(main())
