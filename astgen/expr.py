"""Symbolic expressions over the model config (``mc``) and schedule (``sc``).

The bottom of the pipeline: every shape, guard and layer count that astgen
derives is an :class:`Expr`. Expressions are immutable and hashable, and this
module can

* build them (:func:`const`, :func:`name`, the operator helpers),
* simplify them (:func:`simplify`) without changing their value,
* evaluate them against concrete values (:func:`evaluate`) with a small
  interpreter of its own, never ``eval``,
* print them as Python source (:func:`to_source`) and read that source back
  (:func:`parse`) with the ``ast`` module (parsing only, nothing is run).

``Unknown`` marks a value the tracer could not resolve; it survives every
operation so that the place it came from can be reported.
"""

from __future__ import annotations

import ast
import math
import operator
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Union

Scalar = Union[int, float, bool, str, None]


class EvalError(Exception):
    """An expression could not be evaluated (missing key, bad operand ...)."""


class MissingKey(EvalError):
    """The config lacks a key the expression reads without a fallback."""

    def __init__(self, path: str) -> None:
        super().__init__(f"config has no key {path!r}")
        self.path = path


class Expr:
    """Base class of all expression nodes."""

    __slots__ = ()

    def children(self) -> tuple["Expr", ...]:
        return ()


@dataclass(frozen=True)
class Const(Expr):
    value: Scalar

    # True == 1 and hash(True) == hash(1): keep bools distinct from ints.
    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Const)
            and type(other.value) is type(self.value)
            and other.value == self.value
        )

    def __hash__(self) -> int:
        return hash((type(self.value).__name__, self.value))


@dataclass(frozen=True)
class Name(Expr):
    """A free variable: ``mc``, ``sc``, ``layer_id`` ..."""

    id: str


@dataclass(frozen=True)
class Attr(Expr):
    """``obj.name``: reading a key (fails if the key is absent)."""

    obj: Expr
    name: str

    def children(self) -> tuple[Expr, ...]:
        return (self.obj,)


@dataclass(frozen=True)
class GetAttr(Expr):
    """``getattr(obj, "name", default)``: reading a key with a fallback."""

    obj: Expr
    name: str
    default: Expr

    def children(self) -> tuple[Expr, ...]:
        return (self.obj, self.default)


@dataclass(frozen=True)
class HasAttr(Expr):
    obj: Expr
    name: str

    def children(self) -> tuple[Expr, ...]:
        return (self.obj,)


@dataclass(frozen=True)
class BinOp(Expr):
    op: str  # one of BIN_OPS
    left: Expr
    right: Expr

    def children(self) -> tuple[Expr, ...]:
        return (self.left, self.right)


@dataclass(frozen=True)
class UnaryOp(Expr):
    op: str  # "-" or "not"
    operand: Expr

    def children(self) -> tuple[Expr, ...]:
        return (self.operand,)


@dataclass(frozen=True)
class Compare(Expr):
    op: str  # one of CMP_OPS
    left: Expr
    right: Expr

    def children(self) -> tuple[Expr, ...]:
        return (self.left, self.right)


@dataclass(frozen=True)
class BoolOp(Expr):
    """``left and right`` / ``left or right`` with Python's value semantics."""

    op: str  # "and" | "or"
    left: Expr
    right: Expr

    def children(self) -> tuple[Expr, ...]:
        return (self.left, self.right)


@dataclass(frozen=True)
class IfExp(Expr):
    test: Expr
    body: Expr
    orelse: Expr

    def children(self) -> tuple[Expr, ...]:
        return (self.test, self.body, self.orelse)


@dataclass(frozen=True)
class Call(Expr):
    """A call of a whitelisted pure function (see FUNCS)."""

    func: str
    args: tuple[Expr, ...]

    def children(self) -> tuple[Expr, ...]:
        return self.args


@dataclass(frozen=True)
class Tuple(Expr):
    items: tuple[Expr, ...]

    def children(self) -> tuple[Expr, ...]:
        return self.items


@dataclass(frozen=True)
class CountIf(Expr):
    """``sum(1 for var in range(n) if pred)``: how many layers satisfy pred."""

    var: str
    n: Expr
    pred: Expr

    def children(self) -> tuple[Expr, ...]:
        return (self.n, self.pred)


@dataclass(frozen=True)
class SumOver(Expr):
    """``sum(body for var in range(n))``: a per-layer quantity added over
    the layers (KV-cache bytes when head sizes differ by layer)."""

    var: str
    n: Expr
    body: Expr

    def children(self) -> tuple[Expr, ...]:
        return (self.n, self.body)


@dataclass(frozen=True)
class Index(Expr):
    """``obj[index]``: an element of a per-layer config list
    (``mc.intermediate_size[layer_id]``)."""

    obj: Expr
    index: Expr

    def children(self) -> tuple[Expr, ...]:
        return (self.obj, self.index)


@dataclass(frozen=True)
class Unknown(Expr):
    """A value the tracer could not resolve; ``why`` says what and where."""

    why: str


BIN_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
    "**": operator.pow,
}
CMP_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "is": lambda a, b: _same(a, b),
    "is not": lambda a, b: not _same(a, b),
    "in": lambda a, b: a in b,
    "not in": lambda a, b: a not in b,
}


def _same(a: Any, b: Any) -> bool:
    """``a is b`` as analyzed code means it (``x is None``, ``flag is True``):
    identity for None and the bools; for numbers and strings, whose identity
    Python leaves to the implementation (``-6 is -6`` is True when folded
    from one constant and False when computed twice), equal value and type."""
    if a is None or b is None or isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float, str)) and isinstance(b, (int, float, str)):
        return type(a) is type(b) and a == b
    return a is b


def _cache_hash(cls: type) -> None:
    """Remember a node's hash: trees are hashed again and again as dict keys
    (naming, memoized simplification), and a frozen dataclass recomputes its
    hash from every field, recursively, each time."""
    compute = cls.__hash__

    def __hash__(self: Expr) -> int:
        h = self.__dict__.get("_hash")
        if h is None:
            h = compute(self)
            object.__setattr__(self, "_hash", h)
        return h

    def __getstate__(self: Expr) -> dict:  # a hash is per process: never pickled
        return {k: v for k, v in self.__dict__.items() if k != "_hash"}

    cls.__hash__ = __hash__
    cls.__getstate__ = __getstate__


for _cls in (Const, Name, Attr, GetAttr, HasAttr, BinOp, UnaryOp, Compare, BoolOp, IfExp, Call, Tuple,
             CountIf, SumOver, Index, Unknown):
    _cache_hash(_cls)


def _int(x: Any) -> int:
    return int(x)


FUNCS: dict[str, Callable[..., Any]] = {
    "max": max,
    "min": min,
    "int": _int,
    "float": float,
    "abs": abs,
    "len": len,
    "bool": bool,
    "ceil": math.ceil,
    "sum": lambda xs: sum(xs),
}

# ----------------------------------------------------------------------------
# construction helpers (canonicalising)


def const(value: Scalar) -> Const:
    return Const(value)


def name(ident: str) -> Name:
    return Name(ident)


def attr_path(root: str, dotted: str) -> Expr:
    """``attr_path("mc", "text_config.hidden_size")``."""
    node: Expr = Name(root)
    for part in dotted.split("."):
        node = Attr(node, part)
    return node


def neg(e: Expr) -> Expr:
    if isinstance(e, Const) and _is_number(e.value):
        return Const(-e.value)
    return UnaryOp("-", e)


TRUE = Const(True)
FALSE = Const(False)
NONE = Const(None)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def and_(a: Expr, b: Expr) -> Expr:
    return simplify(BoolOp("and", a, b))


def conjuncts(e: Expr) -> list[Expr]:
    """The terms of ``a and b and ...`` (``[]`` for True)."""
    if isinstance(e, BoolOp) and e.op == "and":
        return conjuncts(e.left) + conjuncts(e.right)
    return [] if e == TRUE else [e]


def or_(a: Expr, b: Expr) -> Expr:
    return simplify(BoolOp("or", a, b))


def not_(a: Expr) -> Expr:
    return simplify(UnaryOp("not", a))


# ----------------------------------------------------------------------------
# traversal


def walk(e: Expr) -> Iterator[Expr]:
    yield e
    for c in e.children():
        yield from walk(c)


def unknowns(e: Expr) -> list[Unknown]:
    return [n for n in walk(e) if isinstance(n, Unknown)]


def free_names(e: Expr) -> set[str]:
    bound: set[str] = set()
    out: set[str] = set()

    def go(x: Expr) -> None:
        if isinstance(x, Name) and x.id not in bound:
            out.add(x.id)
        elif isinstance(x, (CountIf, SumOver)):
            go(x.n)
            bound.add(x.var)
            go(x.pred if isinstance(x, CountIf) else x.body)
            bound.discard(x.var)
            return
        for c in x.children():
            go(c)

    go(e)
    return out


def config_keys(e: Expr, root: str = "mc") -> tuple[set[str], set[str]]:
    """The config keys ``e`` reads, as dotted paths below ``root``: those it
    needs (``mc.x``) and those it reads with a fallback (``getattr(mc, "x",
    d)``, ``hasattr``, or ``mc.x`` under a ``hasattr(mc, "x")`` test)."""
    required: set[str] = set()
    optional: set[str] = set()

    def key(x: Expr) -> str | None:
        path = _dotted(x)
        prefix = root + "."
        return path[len(prefix):] if path and path.startswith(prefix) else None

    def go(x: Expr, guarded: frozenset[str]) -> None:
        k = key(x) if isinstance(x, (Attr, GetAttr, HasAttr)) else None
        if k is not None:
            (required if isinstance(x, Attr) and k not in guarded else optional).add(k)
        if isinstance(x, IfExp):
            tested = frozenset(key(h) for h in walk(x.test) if isinstance(h, HasAttr)) - {None}
            go(x.test, guarded)
            go(x.body, guarded | tested)
            go(x.orelse, guarded)
            return
        for c in x.children():
            if not (k is not None and c is getattr(x, "obj", None)):
                go(c, guarded)

    go(e, frozenset())
    return required, optional


def free_attrs(e: Expr) -> set[str]:
    """Every attribute name ``e`` reads (``mc.a.b`` gives a and b)."""
    return {x.name for x in walk(e) if isinstance(x, (Attr, GetAttr, HasAttr))}


def _dotted(e: Expr) -> str | None:
    if isinstance(e, Name):
        return e.id
    if isinstance(e, (Attr, GetAttr, HasAttr)):
        base = _dotted(e.obj)
        return None if base is None else f"{base}.{e.name}"
    return None


def facts(fact: Expr) -> dict[Expr, Expr]:
    """The conditions ``fact`` decides: itself True, and through ``not``,
    ``and`` (when true) and ``or`` (when false) its parts True or False."""
    known: dict[Expr, Expr] = {}

    def learn(f: Expr, value: bool) -> None:
        known[f] = TRUE if value else FALSE
        if isinstance(f, UnaryOp) and f.op == "not":
            learn(f.operand, not value)
        elif isinstance(f, BoolOp) and f.op == ("and" if value else "or"):
            learn(f.left, value)
            learn(f.right, value)

    learn(fact, True)
    return known


def given(e: Expr, fact: Expr) -> Expr:
    """``e`` where ``fact`` holds: the occurrences of what :func:`facts`
    decides are True or False (no simplification)."""
    known = facts(fact)

    def go(x: Expr) -> Expr:
        if x in known:
            return known[x]
        kids = [go(c) for c in x.children()]
        return rebuild(x, kids) if kids else x

    return go(e)


def sum_as_add(e: Expr) -> Expr | None:
    """``sum((a, b, c))`` as ``a + b + c``; None for anything else."""
    if not (isinstance(e, Call) and e.func == "sum" and len(e.args) == 1 and isinstance(e.args[0], Tuple)
            and e.args[0].items):
        return None
    items = e.args[0].items
    out = items[0]
    for item in items[1:]:
        out = BinOp("+", out, item)
    return out


def substitute(e: Expr, mapping: Mapping[str, Expr]) -> Expr:
    """Replace free names by expressions."""
    if isinstance(e, Name):
        return mapping.get(e.id, e)
    if isinstance(e, CountIf):
        inner = {k: v for k, v in mapping.items() if k != e.var}
        return CountIf(e.var, substitute(e.n, mapping), substitute(e.pred, inner))
    if isinstance(e, SumOver):
        inner = {k: v for k, v in mapping.items() if k != e.var}
        return SumOver(e.var, substitute(e.n, mapping), substitute(e.body, inner))
    return rebuild(e, [substitute(c, mapping) for c in e.children()])


def rebuild(e: Expr, kids: list[Expr]) -> Expr:
    """``e`` of the same kind with ``kids`` as its children (in the order
    ``e.children()`` gives them): what a bottom-up rewrite builds."""
    if not kids:
        return e
    if isinstance(e, Attr):
        return Attr(kids[0], e.name)
    if isinstance(e, GetAttr):
        return GetAttr(kids[0], e.name, kids[1])
    if isinstance(e, HasAttr):
        return HasAttr(kids[0], e.name)
    if isinstance(e, BinOp):
        return BinOp(e.op, kids[0], kids[1])
    if isinstance(e, UnaryOp):
        return UnaryOp(e.op, kids[0])
    if isinstance(e, Compare):
        return Compare(e.op, kids[0], kids[1])
    if isinstance(e, BoolOp):
        return BoolOp(e.op, kids[0], kids[1])
    if isinstance(e, IfExp):
        return IfExp(kids[0], kids[1], kids[2])
    if isinstance(e, Call):
        return Call(e.func, tuple(kids))
    if isinstance(e, Tuple):
        return Tuple(tuple(kids))
    if isinstance(e, CountIf):
        return CountIf(e.var, kids[0], kids[1])
    if isinstance(e, SumOver):
        return SumOver(e.var, kids[0], kids[1])
    if isinstance(e, Index):
        return Index(kids[0], kids[1])
    raise TypeError(f"cannot rebuild {type(e).__name__}")


# ----------------------------------------------------------------------------
# evaluation (our own interpreter; never eval)

_MISSING = object()


def _lookup(obj: Any, key: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key, _MISSING)
    return getattr(obj, key, _MISSING)


def evaluate(e: Expr, env: Mapping[str, Any]) -> Any:
    """Evaluate ``e`` with free names bound by ``env``.

    Config objects may be mappings (a parsed ``config.json``) or objects
    with attributes. Raises :class:`EvalError` on anything undefined.
    """
    return _Evaluator(env).run(e)


class _Evaluator:
    def __init__(self, env: Mapping[str, Any]) -> None:
        self.env = dict(env)

    def run(self, e: Expr) -> Any:
        method = getattr(self, "_" + type(e).__name__)
        return method(e)

    def _Const(self, e: Const) -> Any:
        return e.value

    def _Name(self, e: Name) -> Any:
        if e.id not in self.env:
            raise EvalError(f"unbound name {e.id!r}")
        return self.env[e.id]

    def _Attr(self, e: Attr) -> Any:
        v = _lookup(self.run(e.obj), e.name)
        if v is _MISSING:
            raise MissingKey(_dotted(e) or e.name)
        return v

    def _GetAttr(self, e: GetAttr) -> Any:
        v = _lookup(self.run(e.obj), e.name)
        return self.run(e.default) if v is _MISSING else v

    def _HasAttr(self, e: HasAttr) -> Any:
        return _lookup(self.run(e.obj), e.name) is not _MISSING

    def _BinOp(self, e: BinOp) -> Any:
        a, b = self.run(e.left), self.run(e.right)
        if e.op == "**" and _is_number(b) and abs(b) > 64:
            raise EvalError("exponent too large")
        try:
            return BIN_OPS[e.op](a, b)
        except (TypeError, ZeroDivisionError, OverflowError, ValueError) as exc:
            raise EvalError(f"{a!r} {e.op} {b!r}: {exc}") from None

    def _UnaryOp(self, e: UnaryOp) -> Any:
        v = self.run(e.operand)
        if e.op == "not":
            return not v
        try:
            return -v
        except TypeError as exc:
            raise EvalError(str(exc)) from None

    def _Compare(self, e: Compare) -> Any:
        a, b = self.run(e.left), self.run(e.right)
        try:
            return CMP_OPS[e.op](a, b)
        except TypeError as exc:
            raise EvalError(f"{a!r} {e.op} {b!r}: {exc}") from None

    def _BoolOp(self, e: BoolOp) -> Any:
        a = self.run(e.left)
        if e.op == "and":
            return self.run(e.right) if a else a
        return a if a else self.run(e.right)

    def _IfExp(self, e: IfExp) -> Any:
        return self.run(e.body) if self.run(e.test) else self.run(e.orelse)

    def _Call(self, e: Call) -> Any:
        if e.func not in FUNCS:
            raise EvalError(f"function {e.func!r} is not allowed")
        args = [self.run(a) for a in e.args]
        try:
            return FUNCS[e.func](*args)
        except (TypeError, ValueError, OverflowError) as exc:
            raise EvalError(f"{e.func}{tuple(args)!r}: {exc}") from None

    def _Tuple(self, e: Tuple) -> Any:
        return tuple(self.run(x) for x in e.items)

    def _Index(self, e: Index) -> Any:
        container, i = self.run(e.obj), self.run(e.index)
        if isinstance(container, Mapping):
            if i not in container:
                raise MissingKey(f"{_dotted(e.obj) or 'value'}[{i!r}]")
            return container[i]
        if isinstance(container, (list, tuple, str)) and type(i) is int:
            if not -len(container) <= i < len(container):
                raise EvalError(f"index {i} out of range for a list of {len(container)}")
            return container[i]
        raise EvalError(f"cannot index {type(container).__name__} with {i!r}")

    def _SumOver(self, e: SumOver) -> Any:
        return sum(self._over_range(e.var, e.n, e.body))

    def _CountIf(self, e: CountIf) -> Any:
        return sum(1 for hit in self._over_range(e.var, e.n, e.pred) if hit)

    def _over_range(self, var: str, n_expr: Expr, body: Expr) -> list:
        """``body`` for ``var`` in ``range(n)``, ``var`` restored after."""
        n = self.run(n_expr)
        if not isinstance(n, int) or n > 1_000_000:
            raise EvalError(f"range bound {n!r} is not a small int")
        saved = self.env.get(var, _MISSING)
        try:
            values = []
            for i in range(n):
                self.env[var] = i
                values.append(self.run(body))
            return values
        finally:
            if saved is _MISSING:
                self.env.pop(var, None)
            else:
                self.env[var] = saved

    def _Unknown(self, e: Unknown) -> Any:
        raise EvalError(f"unresolved value: {e.why}")


# ----------------------------------------------------------------------------
# simplification: rewrites that keep the value wherever the input has one


def simplify(e: Expr) -> Expr:
    kids = [simplify(c) for c in e.children()]
    return simplify_node(rebuild(e, kids) if kids else e)


def simplify_node(e: Expr) -> Expr:
    """:func:`simplify` of a node whose children are simplified already."""
    rule = _SIMPLIFIERS.get(type(e))
    return rule(e) if rule else e


def _fold(node: Expr) -> Expr | None:
    """Constant-fold a node whose children are all constants."""
    if not node.children() or not all(isinstance(c, Const) for c in node.children()):
        return None
    try:
        value = evaluate(node, {})
    except EvalError:
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**62:
            return None
        return Const(value)
    return None


def _is_int_const(e: Expr, v: int | None = None) -> bool:
    return (
        isinstance(e, Const)
        and type(e.value) is int
        and (v is None or e.value == v)
    )


def _simplify_binop(e: BinOp) -> Expr:
    folded = _fold(e)
    if folded is not None:
        return folded
    a, b = e.left, e.right
    if e.op == "*" and _is_int_const(a, 1) and _is_number_like(b):
        return b
    if e.op in ("*",) and _is_int_const(b, 1) and _is_number_like(a):
        return a
    if e.op == "+" and _is_int_const(a, 0) and _is_number_like(b):
        return b
    if e.op in ("+", "-") and _is_int_const(b, 0) and _is_number_like(a):
        return a
    if e.op == "+" and _is_int_const(a, 0) and _is_numeric_expr(b):
        return b
    if e.op in ("+", "-") and _is_int_const(b, 0) and _is_numeric_expr(a):
        return a
    if e.op == "*" and _is_int_const(a, 1) and _is_numeric_expr(b):
        return b
    if e.op in ("*", "//") and _is_int_const(b, 1) and _is_int_expr(a):
        return a
    if e.op == "*" and _is_int_const(b) and isinstance(a, BinOp) and a.op == "*":
        if _is_int_const(a.right):  # (x * 2) * 3 -> x * 6
            return simplify(BinOp("*", a.left, Const(a.right.value * b.value)))
    if e.op == "//" and _is_int_const(b) and b.value > 0:
        if isinstance(a, BinOp) and a.op == "//" and _is_int_const(a.right):
            if a.right.value > 0:  # (x // 2) // 3 -> x // 6 (floor is exact)
                return BinOp("//", a.left, Const(a.right.value * b.value))
    return e


def _is_numeric_expr(e: Expr) -> bool:
    """True when ``e`` is certainly a number (so ``0 + e == e`` and keeps type)."""
    if isinstance(e, Const):
        return _is_number(e.value)
    if isinstance(e, BinOp):
        return e.op not in ("+", "*") or (
            _is_numeric_expr(e.left) and _is_numeric_expr(e.right)
        )
    if isinstance(e, Call):
        return e.func in ("int", "float", "abs", "len", "ceil")
    if isinstance(e, CountIf):
        return True
    return False


def _is_number_like(e: Expr) -> bool:
    """Numeric, or a config read: config values in shapes are numbers, and
    ``x * 1``, ``x + 0`` are the identity on every number (floats included)."""
    if _is_numeric_expr(e):
        return True
    if isinstance(e, (Attr, GetAttr, Index)):
        return True
    if isinstance(e, BinOp):
        return _is_number_like(e.left) and _is_number_like(e.right)
    if isinstance(e, Call) and e.func in ("max", "min"):
        return all(_is_number_like(a) for a in e.args)
    return False


def _is_int_expr(e: Expr) -> bool:
    if isinstance(e, Const):
        return type(e.value) is int
    if isinstance(e, BinOp) and e.op in ("+", "-", "*", "//", "%"):
        return _is_int_expr(e.left) and _is_int_expr(e.right)
    if isinstance(e, Call):
        return e.func in ("int", "len", "ceil") or (
            e.func in ("max", "min") and all(_is_int_expr(a) for a in e.args)
        )
    return isinstance(e, CountIf)


def _truthiness(e: Expr) -> bool | None:
    return bool(e.value) if isinstance(e, Const) else None


def simplify_condition(e: Expr, simplified: bool = False) -> Expr:
    """``e`` read as a condition (an ``if`` test, a guard): only its truth
    matters, so ``x and False`` is False and ``None or y`` is ``y``, which
    :func:`simplify` (that keeps Python's values) may not assume.
    ``simplified``: ``e`` is a result of :func:`simplify` already."""
    e = e if simplified else simplify(e)
    if isinstance(e, Const):
        return TRUE if e.value else FALSE
    if isinstance(e, UnaryOp) and e.op == "not":
        inner = simplify_condition(e.operand, True)
        if isinstance(inner, UnaryOp) and inner.op == "not":
            return inner.operand
        return simplify(UnaryOp("not", inner)) if not isinstance(inner, Const) else Const(not inner.value)
    if isinstance(e, Compare) and e.op in ("==", "!=") and isinstance(e.right, Const) \
            and isinstance(e.left, IfExp) and isinstance(e.left.body, Const) and isinstance(e.left.orelse, Const) \
            and e.left.body != e.left.orelse:
        # (A if c else B) == A  ->  c, for constants A != B (an enum member chosen by a condition)
        then_hit, else_hit = e.left.body == e.right, e.left.orelse == e.right
        if e.op == "!=":
            then_hit, else_hit = not then_hit, not else_hit
        test = simplify_condition(e.left.test, True)
        if then_hit and not else_hit:
            return test
        if else_hit and not then_hit:
            return simplify_condition(UnaryOp("not", test))
        return TRUE if then_hit else FALSE
    if isinstance(e, BoolOp):
        left, right = simplify_condition(e.left, True), simplify_condition(e.right, True)
        absorbing, neutral = (FALSE, TRUE) if e.op == "and" else (TRUE, FALSE)
        if absorbing in (left, right):
            return absorbing
        if left == neutral:
            return right
        if right == neutral:
            return left
        return BoolOp(e.op, left, right)
    if isinstance(e, IfExp):
        test = simplify_condition(e.test, True)
        if isinstance(test, Const):
            return simplify_condition(e.body if test.value else e.orelse, True)
    return e


def _simplify_boolop(e: BoolOp) -> Expr:
    t = _truthiness(e.left)
    if t is None:
        if e.op == "and" and _truthiness(e.right) is True and _is_bool_expr(e.left):
            if e.right == TRUE:
                return e.left
        if e.op == "or" and e.right == FALSE and _is_bool_expr(e.left):
            return e.left
        return e
    if e.op == "and":
        return e.right if t else e.left
    return e.left if t else e.right


def _is_bool_expr(e: Expr) -> bool:
    if isinstance(e, (Compare, HasAttr)):
        return True
    if isinstance(e, UnaryOp):
        return e.op == "not"
    if isinstance(e, BoolOp):
        return _is_bool_expr(e.left) and _is_bool_expr(e.right)
    if isinstance(e, Const):
        return isinstance(e.value, bool)
    return False


def _simplify_unary(e: UnaryOp) -> Expr:
    folded = _fold(e)
    if folded is not None:
        return folded
    if e.op == "not" and isinstance(e.operand, UnaryOp) and e.operand.op == "not":
        inner = e.operand.operand
        if _is_bool_expr(inner):
            return inner
    if e.op == "not" and isinstance(e.operand, Compare):
        flipped = _NEGATED_CMP.get(e.operand.op)
        if flipped and e.operand.op in ("is", "is not", "in", "not in", "==", "!="):
            return Compare(flipped, e.operand.left, e.operand.right)
    return e


_NEGATED_CMP = {
    "==": "!=",
    "!=": "==",
    "is": "is not",
    "is not": "is",
    "in": "not in",
    "not in": "in",
}


def _simplify_compare(e: Compare) -> Expr:
    folded = _fold(e)
    if folded is not None:
        return folded
    # a selector compared with a constant: `('a' if c else 'b') == 'a'` is c
    if e.op in ("==", "!=") and isinstance(e.right, Const) and isinstance(e.left, IfExp):
        sel = e.left
        if isinstance(sel.body, Const) and isinstance(sel.orelse, Const):
            hit_then, hit_else = sel.body == e.right, sel.orelse == e.right
            if e.op == "!=":
                hit_then, hit_else = not hit_then, not hit_else
            if hit_then and hit_else:
                return TRUE
            test = sel.test if _is_bool_expr(sel.test) else Call("bool", (sel.test,))
            if hit_then:
                return test
            if hit_else:
                return simplify(not_(test))
            return FALSE
    return e


def _simplify_ifexp(e: IfExp) -> Expr:
    t = _truthiness(e.test)
    if t is not None:
        return e.body if t else e.orelse
    if e.body == e.orelse:
        return e.body
    return e


def _simplify_call(e: Call) -> Expr:
    folded = _fold(e)
    if folded is not None:
        return folded
    if e.func in ("max", "min") and len(e.args) == 2 and e.args[0] == e.args[1]:
        return e.args[0]
    if e.func == "int" and len(e.args) == 1 and _is_int_expr(e.args[0]):
        return e.args[0]
    return e


def _simplify_countif(e: CountIf) -> Expr:
    if e.var not in free_names(e.pred):
        t = _truthiness(e.pred)
        if t is True and _is_int_expr(e.n):
            return simplify(Call("max", (Const(0), e.n)))
        if t is False:
            return Const(0)
    return e


_SIMPLIFIERS: dict[type, Callable[[Any], Expr]] = {
    BinOp: _simplify_binop,
    BoolOp: _simplify_boolop,
    UnaryOp: _simplify_unary,
    Compare: _simplify_compare,
    IfExp: _simplify_ifexp,
    Call: _simplify_call,
    CountIf: _simplify_countif,
}

# ----------------------------------------------------------------------------
# printing as Python source

_PREC = {
    "ifexp": 1,
    "or": 2,
    "and": 3,
    "not": 4,
    "cmp": 5,
    "+": 10,
    "-": 10,
    "*": 11,
    "/": 11,
    "//": 11,
    "%": 11,
    "neg": 12,
    "**": 13,
    "atom": 20,
}


def to_source(e: Expr) -> str:
    """Python source of ``e``; ``parse(to_source(e)) == e``."""
    return Printer().show(e)[0]


class Printer:
    def show(self, e: Expr) -> tuple[str, int]:
        return getattr(self, "_" + type(e).__name__)(e)

    def wrap(self, e: Expr, min_prec: int) -> str:
        text, prec = self.show(e)
        return f"({text})" if prec < min_prec else text

    def _Const(self, e: Const) -> tuple[str, int]:
        text = repr(e.value)
        if _is_number(e.value) and e.value < 0:
            return text, _PREC["neg"]
        return text, _PREC["atom"]

    def _Name(self, e: Name) -> tuple[str, int]:
        return e.id, _PREC["atom"]

    def _Attr(self, e: Attr) -> tuple[str, int]:
        return f"{self.wrap(e.obj, _PREC['atom'])}.{e.name}", _PREC["atom"]

    def _GetAttr(self, e: GetAttr) -> tuple[str, int]:
        obj, dflt = self.show(e.obj)[0], self.show(e.default)[0]
        return f"getattr({obj}, {e.name!r}, {dflt})", _PREC["atom"]

    def _HasAttr(self, e: HasAttr) -> tuple[str, int]:
        return f"hasattr({self.show(e.obj)[0]}, {e.name!r})", _PREC["atom"]

    def _BinOp(self, e: BinOp) -> tuple[str, int]:
        p = _PREC[e.op]
        if e.op == "**":  # right-associative; unary minus binds looser on the left
            left = self.wrap(e.left, p + 1)
            right = self.wrap(e.right, _PREC["neg"])
        else:
            left = self.wrap(e.left, p)
            right = self.wrap(e.right, p + 1)
        return f"{left} {e.op} {right}", p

    def _UnaryOp(self, e: UnaryOp) -> tuple[str, int]:
        if e.op == "not":
            return f"not {self.wrap(e.operand, _PREC['not'])}", _PREC["not"]
        inner = self.wrap(e.operand, _PREC["neg"])
        if isinstance(e.operand, Const) or inner.startswith("-"):
            inner = f"({self.show(e.operand)[0]})"
        return f"-{inner}", _PREC["neg"]

    def _Compare(self, e: Compare) -> tuple[str, int]:
        p = _PREC["cmp"]
        return f"{self.wrap(e.left, p + 1)} {e.op} {self.wrap(e.right, p + 1)}", p

    def _BoolOp(self, e: BoolOp) -> tuple[str, int]:
        p = _PREC[e.op]
        return f"{self.wrap(e.left, p)} {e.op} {self.wrap(e.right, p + 1)}", p

    def _IfExp(self, e: IfExp) -> tuple[str, int]:
        p = _PREC["ifexp"]
        body = self.wrap(e.body, p + 1)
        test = self.wrap(e.test, p + 1)
        orelse = self.wrap(e.orelse, p)
        return f"{body} if {test} else {orelse}", p

    def _Call(self, e: Call) -> tuple[str, int]:
        args = ", ".join(self.show(a)[0] for a in e.args)
        return f"{e.func}({args})", _PREC["atom"]

    def _Tuple(self, e: Tuple) -> tuple[str, int]:
        items = [self.show(a)[0] for a in e.items]
        inner = items[0] + "," if len(items) == 1 else ", ".join(items)
        return f"({inner})", _PREC["atom"]

    def _CountIf(self, e: CountIf) -> tuple[str, int]:
        n, pred = self.show(e.n)[0], self.wrap(e.pred, _PREC["or"])
        return f"sum(1 for {e.var} in range({n}) if {pred})", _PREC["atom"]

    def _SumOver(self, e: SumOver) -> tuple[str, int]:
        n, body = self.show(e.n)[0], self.wrap(e.body, _PREC["or"])
        return f"sum({body} for {e.var} in range({n}))", _PREC["atom"]

    def _Index(self, e: Index) -> tuple[str, int]:
        return f"{self.wrap(e.obj, _PREC['atom'])}[{self.show(e.index)[0]}]", _PREC["atom"]

    def _Unknown(self, e: Unknown) -> tuple[str, int]:
        return f"__unknown__({e.why!r})", _PREC["atom"]


# ----------------------------------------------------------------------------
# reading printed source back (ast.parse only; nothing is executed)


class ParseError(ValueError):
    pass


def parse(text: str) -> Expr:
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ParseError(f"not an expression: {text!r}") from exc
    return _from_ast(tree.body)


_AST_BIN = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
}
_AST_CMP = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
}


def _from_ast(node: ast.AST) -> Expr:
    if isinstance(node, ast.Constant):
        return Const(node.value)
    if isinstance(node, ast.Name):
        return Name(node.id)
    if isinstance(node, ast.Attribute):
        return Attr(_from_ast(node.value), node.attr)
    if isinstance(node, ast.Subscript) and not isinstance(node.slice, ast.Slice):
        return Index(_from_ast(node.value), _from_ast(node.slice))
    if isinstance(node, ast.BinOp):
        return BinOp(_AST_BIN[type(node.op)], _from_ast(node.left), _from_ast(node.right))
    if isinstance(node, ast.UnaryOp):
        if isinstance(node.op, ast.Not):
            return UnaryOp("not", _from_ast(node.operand))
        if isinstance(node.op, ast.USub):
            inner = node.operand
            if isinstance(inner, ast.Constant) and _is_number(inner.value):
                return Const(-inner.value)
            return UnaryOp("-", _from_ast(inner))
    if isinstance(node, ast.BoolOp):
        op = "and" if isinstance(node.op, ast.And) else "or"
        out = _from_ast(node.values[0])
        for v in node.values[1:]:
            out = BoolOp(op, out, _from_ast(v))
        return out
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        return Compare(
            _AST_CMP[type(node.ops[0])],
            _from_ast(node.left),
            _from_ast(node.comparators[0]),
        )
    if isinstance(node, ast.IfExp):
        return IfExp(_from_ast(node.test), _from_ast(node.body), _from_ast(node.orelse))
    if isinstance(node, ast.Tuple):
        return Tuple(tuple(_from_ast(x) for x in node.elts))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return _call_from_ast(node)
    raise ParseError(f"unsupported construct: {ast.dump(node)[:80]}")


def _call_from_ast(node: ast.Call) -> Expr:
    fn = node.func.id  # type: ignore[attr-defined]
    args = node.args
    if fn == "getattr" and len(args) == 3 and isinstance(args[1], ast.Constant):
        return GetAttr(_from_ast(args[0]), args[1].value, _from_ast(args[2]))
    if fn == "hasattr" and len(args) == 2 and isinstance(args[1], ast.Constant):
        return HasAttr(_from_ast(args[0]), args[1].value)
    if fn == "__unknown__" and len(args) == 1 and isinstance(args[0], ast.Constant):
        return Unknown(args[0].value)
    if fn == "sum" and len(args) == 1 and isinstance(args[0], ast.GeneratorExp):
        return _countif_from_ast(args[0])
    if fn in FUNCS and not node.keywords:
        return Call(fn, tuple(_from_ast(a) for a in args))
    raise ParseError(f"unsupported call {fn!r}")


def _countif_from_ast(gen: ast.GeneratorExp) -> Expr:
    comp = gen.generators[0]
    rng = comp.iter
    ok = (
        len(gen.generators) == 1
        and isinstance(gen.elt, ast.Constant)
        and gen.elt.value == 1
        and isinstance(comp.target, ast.Name)
        and isinstance(rng, ast.Call)
        and isinstance(rng.func, ast.Name)
        and rng.func.id == "range"
        and len(rng.args) == 1
        and len(comp.ifs) == 1
    )
    summed = (len(gen.generators) == 1 and isinstance(comp.target, ast.Name) and not comp.ifs
              and isinstance(rng, ast.Call) and isinstance(rng.func, ast.Name) and rng.func.id == "range"
              and len(rng.args) == 1)
    if summed:  # sum(body for var in range(n))
        return SumOver(comp.target.id, _from_ast(rng.args[0]), _from_ast(gen.elt))  # type: ignore[union-attr]
    if not ok:
        raise ParseError("unsupported generator expression")
    return CountIf(comp.target.id, _from_ast(rng.args[0]), _from_ast(comp.ifs[0]))  # type: ignore[union-attr]
