"""Stage 2, parse: read each file once with libcst and index what the tracer needs.

The index of a module records its classes (bases, methods, ``__init__``),
top-level functions, top-level assignments, imports with their aliases
(``from sglang.srt.models.qwen2 import Qwen2MLP as Qwen3MLP``) and its
``EntryClass``. The bodies of functions are parsed when the tracer first
looks one up (Python's own parser finds where each is; most are never
called while a model is built). Line numbers are found lazily: only the
statements the tracer visits are located, from Python's tree of a function
parsed alone or by matching their first line against the source text, which
is far cheaper than libcst's position metadata for a whole file.
"""

from __future__ import annotations

import ast
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import libcst as cst


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
    node: cst.ClassDef
    bases: list[cst.BaseExpression]
    methods: Mapping[str, cst.FunctionDef]  # bodies parsed when first looked up

    @property
    def qualname(self) -> str:
        return f"{self.module.name}.{self.name}"


@dataclass(eq=False)
class ParsedModule:
    name: str
    path: Path
    display: str
    sha256: str
    tree: cst.Module
    text_lines: list[str]
    classes: dict[str, ClassInfo] = field(default_factory=dict)
    functions: "Functions" = field(init=False, repr=False)
    assigns: dict[str, cst.BaseExpression] = field(default_factory=dict)
    imports: dict[str, ImportRef] = field(default_factory=dict)
    entry_classes: list[str] = field(default_factory=list)
    # an entry that names another class of the file (mini-sglang's registry:
    # "Mistral3ForConditionalGeneration" -> "MistralForCausalLM")
    entry_aliases: dict[str, str] = field(default_factory=dict)
    _lines: dict[int, int] = field(default_factory=dict, repr=False)
    _located: set[int] = field(default_factory=set, repr=False)
    text: str = field(default="", repr=False)
    _spans: "dict[tuple[str, str], tuple[int, int]] | None" = field(default=None, repr=False)  # method lines
    _deferred: "dict[str, list[tuple[int, int] | None]]" = field(default_factory=dict, repr=False)  # skip_bodies
    _snippets: "dict[tuple[int, int], cst.FunctionDef | None]" = field(default_factory=dict, repr=False)
    _source_lines: "list[str] | None" = field(default=None, repr=False)
    _python_defs: "dict[tuple[int, int], ast.FunctionDef | ast.AsyncFunctionDef | None]" = field(
        default_factory=dict, repr=False)
    _expressions: "dict[ast.expr, cst.BaseExpression | None]" = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.functions = Functions(self)

    # -- forward code, parsed on demand ----------------------------------
    def python_method(self, cls: str, name: str) -> "ast.FunctionDef | ast.AsyncFunctionDef | None":
        """Method ``name`` of class ``cls`` as Python's tree, parsed alone
        (once), its lines the file's: the flow stage reads forward code
        without libcst, which it only needs for the tests of ``if``
        statements (:meth:`expressions`)."""
        if self._spans is None:  # a module not made by parse_source
            self._spans = {}
            skip_bodies(self.text, self._spans)
        span = self._spans.get((cls, name))
        if span is None:
            return None
        if span not in self._python_defs:
            self._python_defs[span] = self._python_function(*span)
        return self._python_defs[span]

    def expressions(self, nodes: "list[ast.expr]") -> "list[cst.BaseExpression | None]":
        """libcst's trees of expressions of this module's Python trees
        (:meth:`python_method`), each parsed once: those not parsed yet in
        one libcst parse, as the elements of a list. None for one that
        libcst cannot read alone."""
        new = [node for node in dict.fromkeys(nodes) if node not in self._expressions]
        if new:
            texts = [self._segment(node) for node in new]
            try:
                listed = parse_trusted("[\n" + ",\n".join(texts) + ",\n]\n").body[0].body[0].value
                values = [element.value for element in listed.elements]
            except (cst.ParserSyntaxError, RecursionError):  # `yield x`, not a list's element
                values = []
            if len(values) != len(new):
                values = [_expression(text) for text in texts]
            self._expressions.update(zip(new, values))
        return [self._expressions[node] for node in nodes]

    def _segment(self, node: ast.expr) -> str:
        """The source text of an expression (columns are UTF-8 offsets)."""
        lines = self._lines_of_source()
        first, last = node.lineno - 1, node.end_lineno - 1
        if first == last:
            return lines[first].encode()[node.col_offset:node.end_col_offset].decode()
        return (lines[first].encode()[node.col_offset:].decode() + "".join(lines[first + 1:last])
                + lines[last].encode()[:node.end_col_offset].decode())

    def _lines_of_source(self) -> list[str]:
        if self._source_lines is None:
            self._source_lines = self.text.splitlines(keepends=True)
        return self._source_lines

    def _snippet(self, first: int, last: int) -> "cst.FunctionDef | None":
        """The function on lines ``first``..``last``, parsed alone (once),
        with the line of every statement in it."""
        if (first, last) not in self._snippets:
            self._snippets[(first, last)] = self._parse_snippet(first, last)
        return self._snippets[(first, last)]

    def _parse_snippet(self, first: int, last: int) -> "cst.FunctionDef | None":
        text, indented = self._function_text(first, last)
        try:
            module = parse_trusted(text)
        except (cst.ParserSyntaxError, ValueError, RecursionError):
            return None
        body = module.body[0].body.body if indented and module.body else module.body
        body = body[0] if body else None
        fn = self._python_function(first, last) if isinstance(body, cst.FunctionDef) else None
        if fn is None:
            return None
        self._lines[id(body)] = fn.lineno
        self._pair_lines(_suite(body.body), fn.body, 0)
        return body

    def _function_text(self, first: int, last: int, padded: bool = False) -> tuple[str, bool]:
        """The function on lines ``first``..``last`` as text that parses
        alone, and whether it is a method: a method is parsed inside a class
        of its own (dedenting could not cope with a string whose lines start
        left of the def). ``padded``: blank lines before it, so that Python's
        line numbers are the file's."""
        lines = self._lines_of_source()[first - 1:last]
        indented = bool(lines) and lines[0][:1] in (" ", "\t")
        pad = "\n" * (first - 1 - indented) if padded else ""
        return pad + ("class _:\n" if indented else "") + "".join(lines), indented

    def _python_function(self, first: int, last: int) -> "ast.FunctionDef | ast.AsyncFunctionDef | None":
        """Python's tree of the function on lines ``first``..``last``, its
        line numbers the file's (not kept: see :meth:`python_method`)."""
        text, indented = self._function_text(first, last, padded=True)
        tree = _python_tree(text)
        body = (tree.body[0].body if indented else tree.body) if tree is not None and tree.body else []
        fn = body[0] if body else None
        return fn if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) else None

    def deferred_spans(self, owner: str, count: int) -> "list[tuple[int, int] | None]":
        """Where the ``count`` functions defined directly in ``owner`` (a
        top-level class, or "" for the module) are, when parsing deferred
        their bodies (:func:`skip_bodies`); None for each otherwise."""
        spans = self._deferred.get(owner)
        return spans if spans is not None and len(spans) == count else [None] * count

    def _pair_lines(self, stmts: list, nodes: list, offset: int) -> None:
        """Lines of libcst statements from Python's tree of the same code
        (same statements in the same order): cheaper than libcst's
        position metadata."""
        for stmt, node, line in statement_pairs(stmts, nodes):
            self._lines[id(stmt)] = node.lineno + offset
            if line is not stmt:  # `a; b` is one line, several ast nodes: the line is its first's
                if stmt is line.body[0]:
                    self._lines[id(line)] = node.lineno + offset
                continue
            for cst_block, ast_block in _blocks(stmt, node):
                self._pair_lines(cst_block, ast_block, offset)

    # -- locations -----------------------------------------------------
    def loc(self, node: cst.CSTNode) -> Location:
        return Location(self.display, self._lines.get(id(node), 0))

    def locate_def(self, node: cst.ClassDef | cst.FunctionDef, after: int = 0) -> int:
        """Line of a class or function definition, and of every statement in it."""
        if id(node) in self._located:
            return self._lines[id(node)]
        self._located.add(id(node))
        line = self._lines.get(id(node)) or self._find(_first_line(self.tree, node), after)
        self._lines[id(node)] = line
        cursor = line
        for stmt in _statements(node.body):
            known = self._lines.get(id(stmt))  # a function parsed alone knows its lines
            cursor = known or self._find(_first_line(self.tree, stmt), cursor)
            self._lines[id(stmt)] = cursor
        return line

    def _find(self, prefixes: tuple[str, ...], start: int) -> int:
        for i in range(max(start, 1), len(self.text_lines) + 1):
            if self.text_lines[i - 1].startswith(prefixes):
                return i
        return start

    def class_line(self, info: ClassInfo) -> int:
        return self.locate_def(info.node)

    def method_line(self, info: ClassInfo, fn: cst.FunctionDef) -> int:
        return self.locate_def(fn, self.class_line(info))


def _expression(text: str) -> "cst.BaseExpression | None":
    try:
        return cst.parse_expression(f"({text})")
    except (cst.ParserSyntaxError, RecursionError):
        return None


def statement_pairs(statements: Sequence[cst.CSTNode],
                    nodes: list[ast.stmt]) -> Iterator[tuple[cst.CSTNode, ast.stmt, cst.CSTNode]]:
    """One statement list's statements, libcst's beside Python's of the same
    code, in order: (statement, its ast node, the line holding it). A line of
    simple statements (``a = 1; b = 2``) is one ast node per statement; the
    pairs end where Python's do."""
    python = iter(nodes)
    for line in statements:
        for stmt in line.body if isinstance(line, cst.SimpleStatementLine) else (line,):
            node = next(python, None)
            if node is None:
                return
            yield stmt, node, line


def _suite(block: cst.BaseSuite) -> list:
    return list(block.body) if isinstance(block, cst.IndentedBlock) else [cst.SimpleStatementLine(list(block.body))]


def _blocks(stmt: cst.CSTNode, node: ast.AST) -> list[tuple[list, list]]:
    """The nested statement lists of a compound statement, libcst's beside
    Python's: if/elif/else, loops, with, try."""
    out = []
    if isinstance(stmt, (cst.If, cst.For, cst.While, cst.With)) and hasattr(node, "body"):
        out.append((_suite(stmt.body), node.body))
        orelse = getattr(stmt, "orelse", None)
        if isinstance(orelse, cst.If):
            out.append(([orelse], node.orelse))
        elif orelse is not None:
            out.append((_suite(orelse.body), node.orelse))
    elif isinstance(stmt, cst.Try) and isinstance(node, ast.Try):
        out.append((_suite(stmt.body), node.body))
        out += [(_suite(h.body), a.body) for h, a in zip(stmt.handlers, node.handlers)]
        if stmt.orelse is not None:
            out.append((_suite(stmt.orelse.body), node.orelse))
        if stmt.finalbody is not None:
            out.append((_suite(stmt.finalbody.body), node.finalbody))
    return out


def _first_line(module: cst.Module, node: cst.CSTNode) -> tuple[str, ...]:
    """How a statement's first line starts (one or more candidates)."""
    if isinstance(node, (cst.ClassDef, cst.FunctionDef)):
        kw = "class" if isinstance(node, cst.ClassDef) else "def"
        if isinstance(node, cst.FunctionDef) and node.asynchronous:
            kw = "async def"
        return (f"{kw} {node.name.value}",)
    if isinstance(node, cst.SimpleStatementLine):
        code = module.code_for_node(node.with_changes(leading_lines=()))
        return (code.strip().split("\n", 1)[0].strip(),)
    if isinstance(node, (cst.If, cst.While)):
        test = module.code_for_node(node.test).split("\n", 1)[0].strip()
        kws = ("if", "elif") if isinstance(node, cst.If) else ("while",)
        return tuple(f"{kw} {test}" for kw in kws) + tuple(f"{kw}({test}" for kw in kws)
    keyword = {cst.For: "for", cst.With: "with", cst.Try: "try", cst.ExceptHandler: "except",
               cst.Else: "else", cst.Finally: "finally"}
    return (keyword.get(type(node), ""),)


def _statements(body: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """Statements nested in a block, in source order (preorder)."""
    block = getattr(body, "body", ())
    if isinstance(block, cst.BaseSuite):
        block = block.body
    for stmt in block if isinstance(block, (list, tuple)) else ():
        yield stmt
        if isinstance(stmt, (cst.ClassDef, cst.FunctionDef)):
            continue
        if isinstance(stmt, cst.Match):
            for case in stmt.cases:
                yield from _statements(case.body)
        elif isinstance(stmt, cst.BaseCompoundStatement):
            yield from _statements(stmt.body)
            for extra in _clauses(stmt):
                yield extra
                yield from _statements(extra.body)


def _clauses(stmt: cst.CSTNode) -> Iterator[cst.CSTNode]:
    if isinstance(stmt, cst.Try):
        yield from stmt.handlers
    orelse = getattr(stmt, "orelse", None)
    while orelse is not None:
        yield orelse
        orelse = getattr(orelse, "orelse", None) if isinstance(orelse, cst.If) else None
    final = getattr(stmt, "finalbody", None)
    if final is not None:
        yield final


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


def _unchecked(self: cst.CSTNode) -> None:
    pass


def parse_trusted(text: str) -> cst.Module:
    """``libcst.parse_module(text)`` without libcst's check of each node it
    builds. libcst validates every node in ``CSTNode.__post_init__`` (a third
    of parsing sglang's models: 2.6 million nodes); the nodes its parser
    builds from text it accepted are valid by construction, and libcst's own
    comment there says the check could be skipped when parsing a file
    (libcst/_nodes/base.py, 1.9). Only while libcst parses: every node built
    otherwise is checked. Syntax errors are the parser's, reported alike."""
    checked = cst.CSTNode.__post_init__
    cst.CSTNode.__post_init__ = _unchecked
    try:
        return cst.parse_module(text)
    finally:
        cst.CSTNode.__post_init__ = checked


def parse_source(text: str, name: str, path: Path, display: str | None = None) -> ParsedModule:
    display = display or str(path)
    methods: dict[tuple[str, str], tuple[int, int]] = {}
    deferred: dict[str, list[tuple[int, int] | None]] = {}
    python = _python_tree(text)  # None: libcst reports the error
    try:
        tree = parse_trusted(text if python is None else skeleton(text, python, methods, deferred))
    except cst.ParserSyntaxError:
        try:  # where the error is in the file itself (the skipped text has fewer lines)
            cst.parse_module(text)
        except cst.ParserSyntaxError as exc:
            line, message = _syntax_position(exc)
            raise ParseFailure(display, line, f"syntax error: {message}") from None
        raise ParseFailure(display, 0, "syntax error once function bodies are skipped") from None
    except RecursionError:
        raise ParseFailure(display, 0, "syntax error: nesting too deep") from None
    pm = ParsedModule(
        name=name,
        path=path,
        display=display,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        tree=tree,
        text_lines=[ln.strip() for ln in text.splitlines()],
        text=text,
    )
    pm._spans = methods
    pm._deferred = deferred
    if python is not None:
        pm.imports = python_imports(python.body, name)
    _Indexer(pm, imports=python is None).index(tree.body, top=True)
    return pm


# Methods that building a model never runs: the tracer interprets
# constructors, so their bodies need not become libcst trees. They are about
# a quarter of sglang's model source.
_NEVER_TRACED = re.compile(r"^_?(forward\w*|load_weights\w*|post_load_weights|\w+_forward\w*)$")


def skip_bodies(text: str, methods: dict | None = None, deferred: dict | None = None,
                keep_lines: bool = True) -> str:
    """``text`` with the bodies of ``forward``/``load_weights``-like functions
    replaced by ``pass`` and blank lines (line numbers are kept). Found with
    Python's own parser (``ast``, fast, never executes anything); text it
    cannot parse is returned unchanged, so libcst reports the error.
    ``methods`` receives where each method of each top-level class is
    ((class, method) -> first and last line), for reading them later.

    With ``deferred``, the bodies of every top-level function and of every
    method of a top-level class are blanked too, to be parsed when the
    tracer first calls them (most never are): ``deferred`` receives, per
    class name ("" for the module), the lines of each function defined
    directly in it, in order (None where the body is kept: a one-line def).
    A class name defined twice at top level keeps its bodies.

    ``keep_lines=False`` drops a skipped body's other lines instead of
    blanking them: libcst makes a node of every blank line, and the tree is
    located by text, not by its own positions."""
    tree = _python_tree(text)
    return text if tree is None else "".join(_blanked(text, tree, methods, deferred, keep_lines))


def _python_tree(text: str) -> ast.Module | None:
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _blanked(text: str, tree: ast.Module, methods: dict | None, deferred: dict | None,
             keep_lines: bool) -> list[str]:
    """:func:`skip_bodies`'s lines, one per line of ``text``."""
    later: list[tuple[int, int, int]] = []
    if deferred is not None:
        later = _defer(tree, deferred)
    if methods is not None:
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                for fn in node.body:
                    if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        methods[(node.name, fn.name)] = _span(fn)
    spans = sorted({(node.body[0].lineno, node.end_lineno, node.body[0].col_offset)
                    for node in _functions(tree.body)
                    if _NEVER_TRACED.match(node.name) and node.body[0].lineno > node.lineno} | set(later))
    lines = text.splitlines(keepends=True)
    covered = 0
    for first, last, indent in spans:
        if first <= covered:  # nested in a body already skipped
            continue
        lines[first - 1] = " " * indent + "pass\n"
        for i in range(first, last):
            lines[i] = "\n" if keep_lines else ""
        covered = last
    return lines


def _span(node: ast.stmt) -> tuple[int, int]:
    """First line (a decorator's, if any) and last line of a statement."""
    return (min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", ())]),
            node.end_lineno or node.lineno)


def skeleton(text: str, tree: ast.Module, methods: dict, deferred: dict) -> str:
    """What libcst parses of a module for its index (:class:`_Indexer`):
    :func:`skip_bodies` without ``keep_lines``, and only the statements the
    index reads. A function whose body is deferred is a one-line stub
    (``def name(): pass``, ``@_.setter`` kept for a property's accessor):
    its signature is parsed with its body, if ever. Imports are read from
    Python's tree (:func:`python_imports`); docstrings, comments and other
    top-level statements (calls, loops) are left out. About four fifths of
    a model file's skeleton were signatures, imports and docstrings."""
    lines = _blanked(text, tree, methods, deferred, keep_lines=False)
    original = text.splitlines(keepends=True)
    keep = bytearray(len(lines))
    stubs: dict[int, str] = {}

    def kept(node: ast.stmt) -> None:
        first, last = _span(node)
        keep[first - 1:last] = b"\1" * (last - first + 1)

    def indent(line: int) -> str:
        text = original[line - 1]
        return text[:len(text) - len(text.lstrip())]

    def function(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if fn.body[0].lineno == fn.lineno:  # a one-line def: its body is not deferred
            kept(fn)
            return
        pad = indent(fn.lineno)
        accessor = next((d.attr for d in fn.decorator_list
                         if isinstance(d, ast.Attribute) and d.attr in _ACCESSORS), None)
        stub = f"{pad}@_.{accessor}\n" if accessor else ""
        asynchronous = "async " if isinstance(fn, ast.AsyncFunctionDef) else ""
        stubs[fn.lineno - 1] = f"{stub}{pad}{asynchronous}def {fn.name}(): pass\n"

    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            function(node)
        elif isinstance(node, ast.ClassDef) and node.name in deferred:
            first = _span(node.body[0])[0]
            if first == node.lineno:  # `class A(B): pass`
                kept(node)
                continue
            start = _span(node)[0]
            keep[start - 1:first - 1] = b"\1" * (first - start)  # decorators and header
            body = [stmt for stmt in node.body if not isinstance(stmt, ast.Expr)]  # docstrings
            for stmt in body:
                function(stmt) if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) else kept(stmt)
            if not body:
                stubs[first - 1] = f"{indent(first)}pass\n"
        elif isinstance(node, (ast.ClassDef, ast.Assign, ast.AnnAssign, ast.If, ast.Try)):
            kept(node)
    return "".join(stubs.get(i, line if keep[i] else "") for i, line in enumerate(lines))


_ACCESSORS = ("setter", "deleter")


def _defer(tree: ast.Module, deferred: dict) -> list[tuple[int, int, int]]:
    """The bodies :func:`skip_bodies` defers, recording their functions'
    lines in ``deferred``."""
    names = [n.name for n in _definitions(tree.body) if isinstance(n, ast.ClassDef)]
    owners = [("", tree.body)] + [(n.name, n.body) for n in tree.body
                                  if isinstance(n, ast.ClassDef) and names.count(n.name) == 1]
    bodies = []
    for owner, body in owners:
        spans: list[tuple[int, int] | None] = []
        for fn in body:
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if fn.body[0].lineno > fn.lineno:
                first = min([fn.lineno] + [d.lineno for d in fn.decorator_list])
                spans.append((first, fn.end_lineno or fn.lineno))
                bodies.append((fn.body[0].lineno, fn.end_lineno, fn.body[0].col_offset))
            else:
                spans.append(None)
        deferred[owner] = spans
    return bodies


def _functions(body: list) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    """Every function defined in a statement list, at any depth."""
    return (n for n in _definitions(body) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))


def _definitions(body: list) -> Iterator[ast.stmt]:
    """Every statement in a statement list, at any depth. Only statements
    are visited (a def is a statement), not every expression node as
    ``ast.walk`` would: that costs a fifth of parsing the file."""
    for node in body:
        yield node
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            inner = getattr(node, name, None)
            if isinstance(inner, list) and inner and not isinstance(inner[0], ast.expr):
                yield from _definitions(inner)


def _syntax_position(exc: cst.ParserSyntaxError) -> tuple[int, str]:
    """libcst reports some errors at the next token; its message names the
    position of the offending token itself ("error at 7:42: ...")."""
    m = re.match(r"parser error: error at (\d+):(\d+): (.*)", exc.message, re.S)
    if m:
        return int(m.group(1)), f"{m.group(3)} (column {int(m.group(2)) + 1})"
    return exc.raw_line, exc.message


def parse_file(path: Path, name: str, display: str | None = None) -> ParsedModule:
    return parse_source(read_source(path, display), name, path, display)


class _Indexer:
    """A module's classes, functions and assignments (and its imports, with
    ``imports``: where Python's tree is not at hand) from libcst's tree."""

    def __init__(self, pm: ParsedModule, imports: bool = True) -> None:
        self.pm = pm
        self.imports = imports

    def index(self, body: "list[cst.CSTNode] | tuple", top: bool = False) -> None:
        spans = iter(self.pm.deferred_spans("", sum(isinstance(stmt, cst.FunctionDef) for stmt in body))
                     if top else ())
        for stmt in body:
            if isinstance(stmt, cst.ClassDef):
                self._class(stmt, top)
            elif isinstance(stmt, cst.FunctionDef):
                self.pm.functions.add(stmt, next(spans, None))
            elif isinstance(stmt, cst.SimpleStatementLine):
                for small in stmt.body:
                    self._small(small)
            elif isinstance(stmt, (cst.If, cst.Try)):
                # `if _is_cuda: from x import y` / `try: import z`: index both arms
                self.index(stmt.body.body)
                for clause in _clauses(stmt):
                    self.index(clause.body.body if isinstance(clause.body, cst.BaseSuite) else ())

    def _class(self, node: cst.ClassDef, top: bool) -> None:
        self.pm.classes[node.name.value] = class_info(node, self.pm, top)

    def _small(self, small: cst.BaseSmallStatement) -> None:
        if isinstance(small, (cst.Import, cst.ImportFrom)):
            if self.imports:
                self.pm.imports.update(import_bindings(small, self.pm.name))
        elif isinstance(small, (cst.Assign, cst.AnnAssign)):
            targets = small.targets if isinstance(small, cst.Assign) else [small]
            if small.value is None:
                return
            for t in targets:
                if isinstance(t.target, cst.Name):
                    self._assign(t.target.value, small.value)

    def _assign(self, target: str, value: cst.BaseExpression) -> None:
        self.pm.assigns[target] = value
        if target == "EntryClass":
            if isinstance(value, (cst.List, cst.Tuple)):
                elems = [el.value for el in value.elements]
            else:
                elems = [value]
            names = []
            for v in elems:
                if isinstance(v, cst.Name):
                    names.append(v.value)
            self.pm.entry_classes = names



def import_bindings(node: cst.Import | cst.ImportFrom, module: str) -> dict[str, ImportRef]:
    """Local names an import statement binds in ``module``, relative imports
    resolved: ``from .qwen2 import Qwen2MLP as M`` -> {"M": (pkg.qwen2, Qwen2MLP)}."""
    names = [(dotted_name(a.name), dotted_name(a.asname.name) if a.asname else None)
             for a in (node.names if isinstance(node.names, Sequence) else ())]
    if isinstance(node, cst.Import):
        return _bindings(module, None, 0, names)
    return _bindings(module, dotted_name(node.module) if node.module is not None else "", len(node.relative),
                     [] if isinstance(node.names, cst.ImportStar) else names)


def python_imports(body: list[ast.stmt], module: str) -> dict[str, ImportRef]:
    """The module-level imports of Python's tree of a module, as
    :class:`_Indexer` reads them from libcst's (both arms of a top-level
    ``if``/``try``, in order): the skeleton libcst parses has none."""
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


def dotted_name(node: cst.BaseExpression | None) -> str:
    """``a.b.c`` of a Name/Attribute chain; "" for anything else."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return f"{dotted_name(node.value)}.{node.attr.value}"
    return ""


def _is_accessor(fn: cst.FunctionDef) -> bool:
    """``@x.setter`` / ``@x.deleter``: the second def of a property."""
    return any(isinstance(d.decorator, cst.Attribute) and d.decorator.attr.value in _ACCESSORS
               for d in fn.decorators)


def class_info(node: cst.ClassDef, pm: "ParsedModule", top: bool = False) -> ClassInfo:
    """A class's bases and methods (a module's, or one nested in a class
    body). ``top``: a class of the module's own body, whose method bodies
    parsing may have deferred."""
    stubs = [stmt for stmt in node.body.body if isinstance(stmt, cst.FunctionDef)]
    spans = pm.deferred_spans(node.name.value, len(stubs)) if top else [None] * len(stubs)
    methods = Functions(pm)
    for stub, span in zip(stubs, spans):
        methods.add(stub, span)
    bases = [a.value for a in node.bases if a.keyword is None]
    return ClassInfo(node.name.value, pm, node, bases, methods)


class Functions(Mapping):
    """Functions by name, as Python binds them: a later def of a name
    replaces an earlier one, but a property's setter does not replace its
    getter. A function whose body parsing deferred is parsed when first
    looked up (most never are: sglang's classes hold many methods building
    a model never calls)."""

    def __init__(self, pm: "ParsedModule") -> None:
        self._pm = pm
        self._defs: dict[str, tuple[cst.FunctionDef, tuple[int, int] | None]] = {}

    def add(self, stub: cst.FunctionDef, span: "tuple[int, int] | None") -> None:
        name = stub.name.value
        if not (_is_accessor(stub) and name in self._defs):
            self._defs[name] = (stub, span)

    def __getitem__(self, name: str) -> cst.FunctionDef:
        stub, span = self._defs[name]
        if span is None:
            return stub
        full = self._pm._snippet(*span)
        if full is None:
            raise ParseFailure(self._pm.display, span[0], f"cannot parse function {name!r} alone")
        return full

    def __contains__(self, name: object) -> bool:
        return name in self._defs

    def __iter__(self) -> Iterator[str]:
        return iter(self._defs)

    def __len__(self) -> int:
        return len(self._defs)
