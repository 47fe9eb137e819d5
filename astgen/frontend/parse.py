"""Stage 2, parse: read each file once with Python's own parser and index
what the tracer needs.

The index of a module records its classes (bases, methods), top-level
functions, top-level assignments, imports with their aliases (``from
sglang.srt.models.qwen2 import Qwen2MLP as Qwen3MLP``) and its
``EntryClass``. Everything downstream reads Python's ``ast`` tree: it gives
every statement its line, and it is built about five times faster than a
libcst tree (the reason astgen once parsed only the functions it traced).
Nothing read is ever compiled or run.
"""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


@dataclass(frozen=True)
class Location:
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class ParseFailure(Exception):
    """A file could not be read or parsed; carries file:line."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path, self.line, self.message = path, line, message


@dataclass(frozen=True)
class ImportRef:
    """What a local name refers to: ``module`` itself or ``module.name``."""

    module: str
    name: str | None


@dataclass(eq=False)  # a class is itself: identity, not a field-by-field walk of its tree
class ClassInfo:
    name: str
    module: "ParsedModule"
    node: ast.ClassDef
    bases: list[ast.expr]
    methods: Mapping[str, "ast.FunctionDef | ast.AsyncFunctionDef"]

    @property
    def qualname(self) -> str:
        return f"{self.module.name}.{self.name}"


@dataclass(eq=False)
class ParsedModule:
    name: str
    path: Path
    display: str
    sha256: str
    classes: dict[str, ClassInfo] = field(default_factory=dict)
    functions: "Functions" = field(init=False, repr=False)
    assigns: dict[str, ast.expr] = field(default_factory=dict)
    imports: dict[str, ImportRef] = field(default_factory=dict)
    entry_classes: list[str] = field(default_factory=list)
    # an entry that names another class of the file (mini-sglang's registry:
    # "Mistral3ForConditionalGeneration" -> "MistralForCausalLM")
    entry_aliases: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.functions = Functions()

    # -- locations -----------------------------------------------------
    def loc(self, node: ast.AST) -> Location:
        return Location(self.display, getattr(node, "lineno", 0))

    def class_line(self, info: ClassInfo) -> int:
        return info.node.lineno


def parse_file(path: Path, name: str, display: str | None = None) -> ParsedModule:
    return parse_source(read_source(path, display), name, path, display)


def read_source(path: Path, display: str | None = None) -> str:
    display = display or str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ParseFailure(display, 0, f"cannot read file: {exc.strerror}") from None
    try:
        return data.decode("utf-8-sig")  # a byte-order mark is dropped here
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ParseFailure(display, line, f"not UTF-8: {exc.reason}") from None


def parse_source(text: str, name: str, path: Path, display: str | None = None) -> ParsedModule:
    display = display or str(path)
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        column = f" (column {exc.offset})" if exc.offset else ""
        raise ParseFailure(display, exc.lineno or 0, f"syntax error: {exc.msg}{column}") from None
    except (ValueError, RecursionError, MemoryError) as exc:  # a NUL byte; nesting too deep
        why = "nesting too deep" if isinstance(exc, (RecursionError, MemoryError)) else str(exc)
        raise ParseFailure(display, 0, f"syntax error: {why}") from None
    pm = ParsedModule(name=name, path=path, display=display,
                      sha256=hashlib.sha256(text.encode("utf-8")).hexdigest())
    pm.imports = python_imports(tree.body, name)
    _index(pm, tree.body)
    return pm


def _index(pm: ParsedModule, body: list[ast.stmt]) -> None:
    """A module's classes, functions and assignments, from its top-level
    statements and both arms of a top-level ``if``/``try`` (``if _is_cuda:
    from x import y``), in order: a later binding of a name wins."""
    for stmt in body:
        if isinstance(stmt, ast.ClassDef):
            pm.classes[stmt.name] = class_info(stmt, pm)
        elif isinstance(stmt, _FUNCTIONS):
            pm.functions.add(stmt)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
            for target in stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]:
                if isinstance(target, ast.Name):
                    _assign(pm, target.id, stmt.value)
        elif isinstance(stmt, ast.If):
            _index(pm, stmt.body)
            _index(pm, stmt.orelse)
        elif isinstance(stmt, ast.Try):
            _index(pm, stmt.body)
            for handler in stmt.handlers:
                _index(pm, handler.body)
            _index(pm, stmt.orelse)
            _index(pm, stmt.finalbody)


def _assign(pm: ParsedModule, target: str, value: ast.expr) -> None:
    pm.assigns[target] = value
    if target == "EntryClass":
        elements = value.elts if isinstance(value, (ast.List, ast.Tuple)) else [value]
        pm.entry_classes = [v.id for v in elements if isinstance(v, ast.Name)]


def import_bindings(node: ast.Import | ast.ImportFrom, module: str) -> dict[str, ImportRef]:
    """Local names an import statement binds in ``module``, relative imports
    resolved: ``from .qwen2 import Qwen2MLP as M`` -> {"M": (pkg.qwen2, Qwen2MLP)}."""
    return python_imports([node], module)


def python_imports(body: list[ast.stmt], module: str) -> dict[str, ImportRef]:
    """The module-level imports of Python's tree of a module: top-level
    ones and those of both arms of a top-level ``if``/``try``, in order."""
    out: dict[str, ImportRef] = {}
    for node in body:
        if isinstance(node, ast.Import):
            out.update(_bindings(module, None, 0, [(a.name, a.asname) for a in node.names]))
        elif isinstance(node, ast.ImportFrom):
            names = [(a.name, a.asname) for a in node.names if a.name != "*"]
            out.update(_bindings(module, node.module or "", node.level, names))
        elif isinstance(node, ast.If):
            out.update(python_imports(node.body + node.orelse, module))
        elif isinstance(node, ast.Try):
            inner = node.body + [s for h in node.handlers for s in h.body] + node.orelse + node.finalbody
            out.update(python_imports(inner, module))
    return out


def _bindings(module: str, source: str | None, level: int,
              names: list[tuple[str, str | None]]) -> dict[str, ImportRef]:
    """What ``import a.b [as c]`` (``source`` None) or ``from source import
    name [as alias]`` (``level`` dots) binds in ``module``."""
    out: dict[str, ImportRef] = {}
    if source is None:
        for dotted, alias in names:
            if alias:
                out[alias] = ImportRef(dotted, None)
            else:
                top = dotted.split(".")[0]
                out[top] = ImportRef(top, None)
        return out
    if level:
        source = ".".join(module.split(".")[:-level] + ([source] if source else []))
    for name, alias in names:
        out[alias or name] = ImportRef(source, name)
    return out


def string_literal(node: ast.expr | None) -> str | None:
    """The value of a string literal (implicitly joined ones too), else None."""
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def dotted_name(node: ast.expr | None) -> str:
    """``a.b.c`` of a Name/Attribute chain; "" for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{dotted_name(node.value)}.{node.attr}"
    return ""


_ACCESSORS = ("setter", "deleter")


def _is_accessor(fn: "ast.FunctionDef | ast.AsyncFunctionDef") -> bool:
    """``@x.setter`` / ``@x.deleter``: the second def of a property."""
    return any(isinstance(d, ast.Attribute) and d.attr in _ACCESSORS for d in fn.decorator_list)


def class_info(node: ast.ClassDef, pm: ParsedModule) -> ClassInfo:
    """A class's bases and methods (a module's, or one nested in a class body)."""
    methods = Functions()
    for stmt in node.body:
        if isinstance(stmt, _FUNCTIONS):
            methods.add(stmt)
    return ClassInfo(node.name, pm, node, list(node.bases), methods)


class Functions(Mapping):
    """Functions by name, as Python binds them: a later def of a name
    replaces an earlier one, but a property's setter does not replace its
    getter."""

    def __init__(self) -> None:
        self._defs: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}

    def add(self, fn: "ast.FunctionDef | ast.AsyncFunctionDef") -> None:
        if not (_is_accessor(fn) and fn.name in self._defs):
            self._defs[fn.name] = fn

    def __getitem__(self, name: str) -> "ast.FunctionDef | ast.AsyncFunctionDef":
        return self._defs[name]

    def __contains__(self, name: object) -> bool:
        return name in self._defs

    def __iter__(self) -> Iterator[str]:
        return iter(self._defs)

    def __len__(self) -> int:
        return len(self._defs)
