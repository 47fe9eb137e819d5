"""The value model of the trace stage's interpreter: what a Python value
of sglang's code is while astgen reads it (besides :mod:`astgen.expr`
expressions): an instance under construction, a class or function
reference, containers, a value chosen by a symbolic branch (``Phi``).
The interpreter (:mod:`astgen.trace`) computes with them; the forward
reader (:mod:`astgen.forward.flow`) reads conditions through it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from astgen import expr as E
from astgen import ir
from astgen.frontend.parse import ClassInfo, ParsedModule
from astgen.rules import FunctionRule

MAX_UNROLL = 64
# a key a dict or a call leaves out on one path (see fill_missing)
MISSING = object()


@dataclass(eq=False)
class Instance:
    """``self`` of a traced class, or of a layer the rules know (``node.kind``)."""

    node: ir.Node
    cls: ClassInfo | None
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(eq=False)
class ConfigObject(Instance):
    """An instance of one of sglang's config classes (sglang/srt/configs):
    ``root`` is the raw config it was built from (mc, or mc.text_config for
    a sub-config); a key its class does not compute is read from there."""

    root: E.Expr | None = None
    # a JSON object whose keys replace the object's attributes (NemotronHPuzzleConfig's
    # per-layer block_configs[i], applied by setattr in a loop over its items)
    overrides: E.Expr | None = None
    # the __init__ chain's parameters with a default, as the JSON gives them
    # (``getattr(mc, "tie_word_embeddings", False)``): what transformers'
    # PretrainedConfig.__init__ stores when the class passes them on
    defaults: dict[str, E.Expr] | None = None


@dataclass(eq=False)
class ClassRef:
    name: str  # bare class name
    info: ClassInfo | None = None  # set when the class is traced


@dataclass(eq=False)
class FuncRef:
    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
    module: ParsedModule
    bound: Any = None  # self or cls for methods
    closure: dict[str, Any] | None = None
    owner: ClassInfo | None = None  # class that defines the method
    is_static: bool = False


@dataclass(eq=False)
class RuleFunc:
    rule: FunctionRule


@dataclass(eq=False)
class Builtin:
    name: str


@dataclass(eq=False)
class ModuleRef:
    dotted: str


@dataclass(eq=False)
class RuleObject:
    name: str


@dataclass(eq=False)
class ListVal:
    items: list[Any]


@dataclass(eq=False)
class TupleVal:
    items: tuple[Any, ...]


@dataclass(eq=False)
class RangeVal:
    """``range(...)``: iterated by loops and comprehensions, never stored."""

    args: tuple[E.Expr, ...]

    def concrete(self) -> list[E.Const] | None:
        if self.args and all(isinstance(a, E.Const) and type(a.value) is int for a in self.args):
            return [E.Const(i) for i in range(*(a.value for a in self.args))][:MAX_UNROLL]
        return None


@dataclass(eq=False)
class DictVal:
    items: dict[str, Any]
    holder: "ir.Node | None" = None  # its node, once attached to a module


@dataclass(eq=False)
class NamespaceVal:
    """A record built from a config: ``SimpleNamespace(**vars(config), dim=...)``
    or ``LlamaConfig(**text_config.__dict__)``. Its own fields first, then the
    config it was splatted from."""

    fields: dict[str, Any]
    base: E.Expr | None = None


BASE = "**base"  # the key under which a splatted config travels in kwargs


@dataclass(eq=False)
class Repeated:
    """What ``[f(i) for i in range(n)]`` or ``make_layers(n, f)`` builds."""

    item: Any
    count: E.Expr
    var: str


@dataclass(eq=False)
class Phi:
    """One of two values, chosen by ``test`` (a branch on a symbolic guard)."""

    test: E.Expr
    then: Any
    orelse: Any


@dataclass(eq=False)
class SuperRef:
    inst: Instance
    after: ClassInfo



def has_missing(value: Any) -> bool:
    if value is MISSING:
        return True
    return isinstance(value, Phi) and (has_missing(value.then) or has_missing(value.orelse))


def fill_missing(value: Any, default: Any) -> Any:
    if value is MISSING:
        return default
    if isinstance(value, Phi):
        return phi(value.test, fill_missing(value.then, default), fill_missing(value.orelse, default))
    return value


def phi(test: E.Expr, a: Any, b: Any) -> Any:
    if a is b:
        return a
    if isinstance(a, E.Expr) and isinstance(b, E.Expr):
        merged = E.simplify(E.IfExp(test, a, b))
        return _sub_config_or_self(merged) if isinstance(merged, E.IfExp) else merged
    if isinstance(test, E.Const):
        return a if test.value else b
    return Phi(test, a, b)



_MC = E.Name("mc")


def _sub_config_or_self(e: E.IfExp) -> E.Expr:
    """``mc.k if getattr(mc, "k", None) is not None else mc`` (or ``if
    hasattr(mc, "k")``, or ``and mc.k is not None``; ``config =
    config.text_config`` on a branch) as ``getattr(mc, "k", mc)``: the
    sub-config if there is one, the config itself else. Other values as given."""
    if e.orelse != _MC or not isinstance(e.body, (E.Attr, E.GetAttr)) or e.body.obj != _MC:
        return e
    key = e.body.name
    present = {E.HasAttr(_MC, key), E.Compare("is not", E.GetAttr(_MC, key, E.NONE), E.NONE),
               E.BoolOp("and", E.HasAttr(_MC, key), E.Compare("is not", E.Attr(_MC, key), E.NONE))}
    return E.GetAttr(_MC, key, _MC) if e.test in present else e


def merge_dicts(test: E.Expr, a: dict, b: dict) -> dict:
    out = {}
    for key in list(a) + [k for k in b if k not in a]:
        va, vb = a.get(key, MISSING), b.get(key, MISSING)
        if va is MISSING or vb is MISSING:
            out[key] = va if vb is MISSING else vb
        else:
            out[key] = phi(test, va, vb)
    return out


@dataclass(eq=False)
class LayerPrefix:
    """The ``prefix`` make_layers passes its layer function:
    ``f"{prefix}.{idx}"``. Elsewhere it reads as "" (names are not
    analyzed); split on dots, its last part is the layer index as text, so
    ``int(prefix.rsplit(".", 1)[1])`` is the index (granitemoehybrid.py:402)."""

    index: E.Expr


@dataclass(eq=False)
class IndexText:
    """The layer index as text (``prefix.rsplit(".", 1)[1]``)."""

    index: E.Expr
