"""The expression nodes: immutable, hashable, canonical at construction; errors; the boolean helpers."""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Any, Callable, Union

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
    """A value the tracer could not resolve: ``what`` it is ("call of f",
    "attribute x of C"), and whether it was computed from the model config
    (a call given the config: what decides whether a module is built)."""

    what: str
    given_config: bool = False
    call: str = ""  # the function whose result it is, when it is a call's

    @property
    def why(self) -> str:
        """``what``, as the reports say it."""
        return self.what + (" with the config" if self.given_config else "")


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

    def __getstate__(self: Expr) -> dict:  # a hash is per process, the rest derived: never pickled
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    cls.__hash__ = __hash__
    cls.__getstate__ = __getstate__


for _cls in (Const, Name, Attr, GetAttr, HasAttr, BinOp, UnaryOp, Compare, BoolOp, IfExp, Call, Tuple,
             CountIf, SumOver, Index, Unknown):
    _cache_hash(_cls)


MEMO_LIMIT = 200_000  # entries of one memo: modules share most of their expressions


def remembered(memo: dict, compute: Callable[[Any], Any], key: "Expr | tuple") -> Any:
    """``compute(key)``, once per key for ``memo``: an expression, a tuple of
    them, or a node of Python's tree, which hashes by identity (the pipeline
    derives, prints and rewrites the same expressions again and again, and
    traces the same code for every entry that uses it; nodes keep their
    hash); a memo past MEMO_LIMIT entries starts again."""
    out = memo.get(key)
    if out is None:
        if len(memo) > MEMO_LIMIT:
            memo.clear()
        out = memo[key] = compute(key)
    return out


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
    # a config string as sglang compares it (`str(getattr(config, "markov_head_type",
    # "vanilla")).lower() == "vanilla"`, dspark.py:392-395): printed as valid Python
    "str": str,
    "str.lower": str.lower,
    # a list of layer indices the config gives as text (`{int(x) for x in
    # config.moe_layers_enum.split(",")}`, step3p5.py:544): `as_ints` is the package's
    "str.strip": str.strip,
    "str.split": str.split,
    "as_ints": lambda items: [int(x) for x in items],
    # `d if v is None else v` as an emitted module prints it (emit/tidy.py coalesced)
    "coalesce": lambda value, default: default if value is None else value,
    "range": range,  # `[i for i in range(1, config.num_hidden_layers)]` (step3_vl.py:323), for membership
    # `[i for i, f in enumerate(flags) if f != 0]` (configs/model_config.py:460-471): the package's
    "nonzero_indices": lambda flags: [i for i, f in enumerate(flags) if f != 0],
    "zero_indices": lambda flags: [i for i, f in enumerate(flags) if f == 0],
}
# the functions above whose value is a list (what `in` and set() take)
LIST_FUNCS = frozenset({"as_ints", "range", "str.split", "nonzero_indices", "zero_indices"})

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


def conjuncts(e: Expr) -> list[Expr]:
    """The terms of ``a and b and ...`` (``[]`` for True)."""
    if isinstance(e, BoolOp) and e.op == "and":
        return conjuncts(e.left) + conjuncts(e.right)
    return [] if e == TRUE else [e]


