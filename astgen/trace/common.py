"""Shared pieces of the tracer: its limits, the frame of one call, and small
helpers over Python's tree (``ast``) and traced values."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

from astgen import expr as E
from astgen import ir
from astgen.frontend.parse import ClassInfo
from astgen.trace.objects import _Layers
from astgen.values import (
    BASE,
    MISSING,
    ConfigObject,
    DictVal,
    Instance,
    ListVal,
    NamespaceVal,
    Phi,
    RangeVal,
    Repeated,
    TupleVal,
    phi,
)

MAX_DEPTH = 40


LAYER_VAR = "layer_id"


MC = E.Name("mc")  # the model config, as emitted code names it


CONFIG_NODE = "config"  # the node kind of a config object (never attached to the IR)


class _Return(Exception):
    def __init__(self, value: Any) -> None:
        self.value = value



_ENUMBASES = frozenset({"Enum", "IntEnum", "StrEnum", "Flag", "IntFlag"})


def _is_enum(info: ClassInfo) -> bool:
    return any(_callee_name(b).rsplit(".", 1)[-1] in _ENUMBASES for b in info.bases)


def _without_quant_config(args: dict[str, E.Expr]) -> bool:
    """A layer sglang builds with no quant_config: left out (the layer's own
    default, None) or a None the source wrote (``quant_config=None``, a
    parameter defaulting to None that no caller set). Such a layer is never
    quantized, whatever the checkpoint (MoE routers). The entry's own
    quant_config is a None of the rules, a different object."""
    return "quant_config" not in args or args["quant_config"] is E.NONE


# The names diagnostics give the kinds of expression, operator and statement
# astgen does not read (``call of Call``, ``operator MatrixMultiply``): the
# names they had when the tracer read libcst's tree, where they differ from ast's
_KIND_NAMES = {
    ast.BinOp: "BinaryOperation", ast.UnaryOp: "UnaryOperation", ast.BoolOp: "BooleanOperation",
    ast.Compare: "Comparison", ast.JoinedStr: "FormattedString", ast.Starred: "StarredElement",
    ast.LShift: "LeftShift", ast.RShift: "RightShift", ast.MatMult: "MatrixMultiply",
    ast.AsyncFor: "For", ast.AsyncWith: "With", ast.AsyncFunctionDef: "FunctionDef",
}
_CONSTANT_KINDS = {str: "SimpleString", bytes: "SimpleString", int: "Integer", float: "Float", complex: "Imaginary"}
_COMPOUND = (ast.If, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try, ast.TryStar, ast.Match,
             ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _kind(node: ast.AST) -> str:
    """What kind of expression, operator or statement ``node`` is, as
    diagnostics name it (a simple statement is a ``SimpleStatementLine``)."""
    if isinstance(node, ast.Constant):
        if node.value is Ellipsis:
            return "Ellipsis"
        return _CONSTANT_KINDS.get(type(node.value), "Name")  # True, False, None are names
    if isinstance(node, ast.stmt) and not isinstance(node, _COMPOUND):
        return "SimpleStatementLine"
    return _KIND_NAMES.get(type(node), type(node).__name__)


def _callee_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Constant) and (node.value is None or isinstance(node.value, bool)):
        return str(node.value)
    return _kind(node)


@dataclass(frozen=True)
class Param:
    name: str
    default: ast.expr | None
    annotation: ast.expr | None


@dataclass(frozen=True)
class Signature:
    """A function's parameters: positional (positional-only first), ``*args``,
    keyword-only, ``**kwargs``."""

    positional: tuple[Param, ...]
    star: Param | None
    keyword_only: tuple[Param, ...]
    star_keywords: Param | None


# What the tracer reads off a node of Python's tree (a signature, a call's
# arguments, the modules a statement builds) is read once per node
# (E.remembered; ast nodes hash by identity): the same code is traced for
# every entry that uses its class.
_SIGNATURES: dict = {}
_WRITES: dict = {}
_ARGUMENTS: dict = {}


def signature(fn: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> Signature:
    """The parameters of ``fn``."""
    return E.remembered(_SIGNATURES, _signature, fn)


def _signature(fn: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> Signature:
    args = fn.args
    positional = [*args.posonlyargs, *args.args]
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    return Signature(
        tuple(Param(a.arg, d, a.annotation) for a, d in zip(positional, defaults)),
        Param(args.vararg.arg, None, None) if args.vararg else None,
        tuple(Param(a.arg, d, a.annotation) for a, d in zip(args.kwonlyargs, args.kw_defaults)),
        Param(args.kwarg.arg, None, None) if args.kwarg else None)


def _reads_config(value: Any) -> bool:
    """Whether ``value`` is the checkpoint's config or computed from it: a
    config read, what a helper astgen cannot read made of one (an unknown
    given the config), a range or a sequence of them (``np.array_split(
    range(config.num_local_experts), tp)``, mixtral_quant.py:118-120)."""
    if isinstance(value, E.Unknown):
        return value.given_config
    if isinstance(value, RangeVal):
        return any(_reads_config(a) for a in value.args)
    if isinstance(value, (ListVal, TupleVal)):
        return any(_reads_config(v) for v in value.items)
    return isinstance(value, ConfigObject) or (isinstance(value, E.Expr) and _is_config(value))


def _assigned_modules(stmt: ast.stmt) -> list[str]:
    """``self.x`` targets assigned a call anywhere in ``stmt`` (the modules a
    branch builds), by attribute name."""
    return list(_writes(stmt, False).assigned)


def _modules_built_in(body: list[ast.stmt]) -> list[str]:
    """``self.x`` attributes a loop body builds modules into: assigned a call,
    or a call appended to or stored in them (``self.attn.append(RadixAttention(...))``),
    or anything appended to them in a body that constructs a class
    (``layer = DecoderLayer(...); self.layers.append(layer)``, muse_spark.py:1092-1104)."""
    found = _ModuleWrites()
    for stmt in body:
        found.add(_writes(stmt, True))
    built = found.assigned + [attr for attr, direct in found.appended if direct or found.constructs]
    return list(dict.fromkeys(built))


# Python builtins that make a number, a string or a container, never a module:
# `self.num_stages = len(dspark_config.target_layer_ids)` (deepseek_v4_dspark.py:739) builds nothing
_SCALAR_CALLS = frozenset({"abs", "bool", "dict", "float", "getattr", "int", "len", "list", "max", "min", "round",
                           "set", "str", "sum", "tuple"})


class _ModuleWrites(ast.NodeVisitor):
    """What a piece of code writes to ``self``'s attributes (read, never run),
    in the order it is written (a preorder walk)."""

    def __init__(self, subscripts: bool = False) -> None:
        self.subscripts = subscripts  # `self.x[k] = Call(...)` counts as writing x
        self.assigned: list[str] = []  # assigned a call
        self.appended: list[tuple[str, bool]] = []  # appended to: (attribute, a call appended directly)
        self.constructs = False  # a class (CamelCase) is called somewhere

    def add(self, other: "_ModuleWrites") -> None:
        self.assigned += other.assigned
        self.appended += other.appended
        self.constructs = self.constructs or other.constructs

    def visit_Assign(self, node: ast.Assign) -> None:
        if isinstance(node.value, ast.Call) and not (
                isinstance(node.value.func, ast.Name) and node.value.func.id in _SCALAR_CALLS):
            for t in node.targets:
                target = t.value if self.subscripts and isinstance(t, ast.Subscript) else t
                if _self_attr(target):
                    self.assigned.append(_self_attr(target))
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        self.constructs = self.constructs or _callee_name(func).rsplit(".", 1)[-1][:1].isupper()
        first = _arguments(node)[:1]
        if isinstance(func, ast.Attribute) and func.attr in ("append", "extend") and first \
                and _self_attr(func.value):
            self.appended.append((_self_attr(func.value), isinstance(first[0][1], ast.Call)))
        self.generic_visit(node)


def _writes(node: ast.AST, subscripts: bool) -> _ModuleWrites:
    """What ``node`` writes (callers only read the result)."""
    return E.remembered(_WRITES, _read_writes, (node, subscripts))


def _read_writes(key: tuple[ast.AST, bool]) -> _ModuleWrites:
    node, subscripts = key
    found = _ModuleWrites(subscripts)
    found.visit(node)
    return found


def _arguments(call: ast.Call) -> tuple[tuple[str, ast.expr], ...]:
    """A call's arguments in the order they are written, as (how, value):
    how is "" for a positional argument, "*" or "**" for an unpacked one,
    else the keyword."""
    return E.remembered(_ARGUMENTS, _read_arguments, call)


def _read_arguments(call: ast.Call) -> tuple[tuple[str, ast.expr], ...]:
    found = [("*", a.value) if isinstance(a, ast.Starred) else ("", a) for a in call.args]
    found += [(k.arg or "**", k.value) for k in call.keywords]
    if call.args and call.keywords and _before(call.keywords[0].value, found[len(call.args) - 1][1]):
        found.sort(key=lambda arg: (arg[1].lineno, arg[1].col_offset))  # `f(k=1, *rest)`
    return tuple(found)


def _before(a: ast.expr, b: ast.expr) -> bool:
    return (a.lineno, a.col_offset) < (b.lineno, b.col_offset)


def _self_attr(node: ast.expr) -> str | None:
    """``x`` of ``self.x``."""
    return node.attr if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
        and node.value.id == "self" else None


def _plain_config_value(value: Any) -> bool:
    """A computed config attribute model code can use: an expression over the
    raw config, a per-index list, a sub-config, literals of those."""
    if isinstance(value, E.Expr):
        return not E.unknowns(value)
    if isinstance(value, ConfigObject):
        return value.root is not None
    if isinstance(value, Instance):  # a record sglang's config code builds (Mamba2CacheParams)
        return value.cls is not None
    if isinstance(value, Repeated):
        return isinstance(value.item, E.Expr) and not E.unknowns(value.item)
    if isinstance(value, (ListVal, TupleVal)):
        return all(_plain_config_value(v) for v in value.items)
    if isinstance(value, Phi):
        return _plain_config_value(value.then) and _plain_config_value(value.orelse)
    return False


def _is_config(e: E.Expr) -> bool:
    """An expression rooted at the model config (mc.x.y ...)."""
    while isinstance(e, (E.Attr, E.GetAttr, E.Index)):
        e = e.obj
    return isinstance(e, E.Name) and e.id == "mc"


def _has_decorator(fn: ast.FunctionDef | ast.AsyncFunctionDef, name: str) -> bool:
    for dec in fn.decorator_list:
        if isinstance(dec, ast.Name) and dec.id == name:
            return True
        if isinstance(dec, ast.Attribute) and dec.attr == name:
            return True
    return False


def _is_classmethod(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return _has_decorator(fn, "classmethod")


def _splat(value: Any) -> dict:
    if isinstance(value, DictVal):
        return dict(value.items)
    if isinstance(value, NamespaceVal):
        return {**({BASE: value.base} if value.base is not None else {}), **value.fields}
    if isinstance(value, E.Expr) and _is_config(value):
        return {BASE: value}  # **vars(config), **config.__dict__: read through to the config
    if isinstance(value, Phi):
        a, b = _splat(value.then), _splat(value.orelse)
        return {k: phi(value.test, a.get(k, MISSING), b.get(k, MISSING)) for k in set(a) | set(b)}
    return {}


def _select_by_key(key: E.Expr, items: dict[str, Any]) -> Any:
    """``d[key]`` for a symbolic key: each value under the guard ``key ==``
    its own key (any other key is a KeyError in sglang, so the last value
    takes the remaining case)."""
    keys = list(items)
    out = items[keys[-1]]
    for k in reversed(keys[:-1]):
        out = phi(E.Compare("==", key, E.Const(k)), items[k], out)
    return out


def _unpack(value: Any, n: int) -> list:
    if isinstance(value, _Layers):
        return [value.modules, E.Const(0), value.n][:n] if n == 3 else [value.modules] + [E.NONE] * (n - 1)
    if isinstance(value, (TupleVal, ListVal)) and len(value.items) == n:
        return list(value.items)
    if isinstance(value, E.Tuple) and len(value.items) == n:
        return list(value.items)
    if isinstance(value, Phi):
        a, b = _unpack(value.then, n), _unpack(value.orelse, n)
        return [phi(value.test, x, y) for x, y in zip(a, b)]
    return [E.Unknown("unpacking a non-tuple")] * n


def _replace_unknowns(e: E.Expr) -> E.Expr:
    if isinstance(e, E.Unknown):
        return E.NONE
    kids = [_replace_unknowns(c) for c in e.children()]
    return E.rebuild(e, kids) if kids else e


def _root_of(node: ir.Node) -> ir.Node:
    while node.parent is not None:
        node = node.parent
    return node


_ASSUMED = E.Name("__assumed__")  # what a config helper astgen cannot read gives, left open
# a number compared with itself (config values are numbers, names and None, never NaN)
_SELF_COMPARE = {"==": E.TRUE, "<=": E.TRUE, ">=": E.TRUE, "is": E.TRUE, "!=": E.FALSE, "<": E.FALSE, ">": E.FALSE,
                 "is not": E.FALSE}


def _in_data(e: E.Expr) -> bool:
    """A membership test in what is not (wholly) known: what it is tested
    in is data, never a server switch (whose None would be a TypeError)."""
    return isinstance(e, E.Compare) and e.op in ("in", "not in") and bool(E.unknowns(e.right))


def _config_unknowns(value: Any) -> list[str]:
    """What the unknowns of ``value`` that the checkpoint decides are: those
    given the config, and what a membership is tested in, by name."""
    if not isinstance(value, E.Expr):
        return []
    found = {u.what for u in E.unknowns(value) if u.given_config}
    found |= {u.what for x in E.walk(value) if _in_data(x) for u in E.unknowns(x.right)}
    return sorted(found)


def _hangs_on_the_config(value: Any) -> bool:
    """Whether a test's truth depends on what a config helper astgen cannot
    read gives (``layer_id in sparse_layer_ids``, minimax_m3.py:1702-1705), the
    other unknowns (server switches, platforms) at their default: not where
    a default decides it anyway (``shape_ok(cfg) and runtime_ok()``,
    dsa_indexer.py:471-476: off on the default platform)."""
    if not isinstance(value, E.Expr) or not E.unknowns(value):
        return False
    kept = _keep_config_unknowns(value)
    opened = _self_compares_decided(E.replace_all(kept, {u: _ASSUMED for u in E.unknowns(kept)}))
    return _ASSUMED.id in E.free_names(E.simplify_condition(E.simplify(opened)))


def _self_compares_decided(e: E.Expr) -> E.Expr:
    """``e`` with a config value compared with itself decided (an MTP layer's
    ``layer_id >= num_hidden_layers`` at num_hidden_layers, configs/gigachat35.py:204-207)."""
    kids = [_self_compares_decided(c) for c in e.children()]
    e = E.rebuild(e, kids) if kids else e
    if isinstance(e, E.Compare) and e.left == e.right and e.op in _SELF_COMPARE \
            and _ASSUMED.id not in E.free_names(e.left):
        return _SELF_COMPARE[e.op]
    return e


_MEMBERSHIP = "membership in "


def _keep_config_unknowns(e: E.Expr) -> E.Expr:
    """``e`` with the unknowns the checkpoint decides kept (what a config
    helper gives, what a membership is tested in) and the others read as
    None, their default."""
    if isinstance(e, E.Unknown):
        return e if e.given_config else E.NONE
    if _in_data(e):
        whats = sorted({u.what.removeprefix(_MEMBERSHIP) for u in E.unknowns(e.right)})
        return E.Compare(e.op, _keep_config_unknowns(e.left), E.Unknown(_MEMBERSHIP + ", ".join(whats),
                                                                          given_config=True))
    kids = [_keep_config_unknowns(c) for c in e.children()]
    return E.rebuild(e, kids) if kids else e
