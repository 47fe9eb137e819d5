"""Walking expressions: subexpressions, free names, config keys, substitution, facts a guard gives."""

from __future__ import annotations

from typing import Iterator, Mapping

from astgen.expr.nodes import (
    FALSE,
    TRUE,
    Attr,
    BinOp,
    BoolOp,
    Call,
    Compare,
    CountIf,
    Expr,
    GetAttr,
    HasAttr,
    IfExp,
    Index,
    Name,
    SumOver,
    Tuple,
    UnaryOp,
    Unknown,
    remembered,
)

# traversal


def walk(e: Expr) -> Iterator[Expr]:
    yield e
    for c in e.children():
        yield from walk(c)


def unknowns(e: Expr) -> list[Unknown]:
    """The Unknown nodes of ``e``, in walk order; kept on each node (the
    tracer asks of the same subtrees again and again)."""
    found = e.__dict__.get("_unknowns")
    if found is None:
        found = (e,) if isinstance(e, Unknown) else tuple(u for c in e.children() for u in unknowns(c))
        object.__setattr__(e, "_unknowns", found)
    return list(found)


def free_names(e: Expr) -> set[str]:
    """The names ``e`` reads that no ``for`` of a count or a sum binds."""
    return set(_free(e))


def names_read(e: Expr) -> frozenset[str]:
    """:func:`free_names`, as the frozen set the node keeps (not to be copied)."""
    return _free(e)


def size(e: Expr) -> int:
    """The nodes of ``e``, itself included; kept on the node."""
    found = e.__dict__.get("_size")
    if found is None:
        found = 1 + sum(size(c) for c in e.children())
        object.__setattr__(e, "_size", found)
    return found


def _free(e: Expr) -> frozenset[str]:
    found = e.__dict__.get("_free")  # kept on the node, as its hash is
    if found is None:
        if isinstance(e, Name):
            found = frozenset((e.id,))
        elif isinstance(e, (CountIf, SumOver)):
            inner = _free(e.pred if isinstance(e, CountIf) else e.body)
            found = _free(e.n) | (inner - {e.var})
        else:
            found = frozenset().union(*(_free(c) for c in e.children()))
        object.__setattr__(e, "_free", found)
    return found


def config_keys(e: Expr, root: str = "mc") -> tuple[frozenset[str], frozenset[str]]:
    """The config keys ``e`` reads, as dotted paths below ``root``: those it
    needs (``mc.x``) and those it reads with a fallback (``getattr(mc, "x",
    d)``, ``hasattr``, or ``mc.x`` under a ``hasattr(mc, "x")`` test). Once
    per expression: classify asks for every size of every operator, and
    operators share their guards and layer counts."""
    return remembered(_CONFIG_KEYS.setdefault(root, {}), lambda x: _config_keys(x, root), e)


_CONFIG_KEYS: dict[str, dict] = {}


def _config_keys(e: Expr, root: str) -> tuple[frozenset[str], frozenset[str]]:
    required: set[str] = set()
    optional: set[str] = set()
    _read_keys(e, frozenset(), root + ".", required, optional)
    return frozenset(required), frozenset(optional)


# Recursive helpers are module functions, not closures: a closure that calls
# itself is a reference cycle, and scan's workers run without the collector.
def _read_keys(x: Expr, guarded: frozenset[str], prefix: str, required: set[str], optional: set[str]) -> None:
    k = _key(x, prefix) if isinstance(x, (Attr, GetAttr, HasAttr)) else None
    if k is not None:
        (required if isinstance(x, Attr) and k not in guarded else optional).add(k)
    if isinstance(x, IfExp):
        tested = frozenset(_key(h, prefix) for h in walk(x.test) if isinstance(h, HasAttr)) - {None}
        _read_keys(x.test, guarded, prefix, required, optional)
        _read_keys(x.body, guarded | tested, prefix, required, optional)
        _read_keys(x.orelse, guarded, prefix, required, optional)
        return
    for c in x.children():
        if not (k is not None and c is getattr(x, "obj", None)):
            _read_keys(c, guarded, prefix, required, optional)


def _key(x: Expr, prefix: str) -> str | None:
    path = _dotted(x)
    return path[len(prefix):] if path and path.startswith(prefix) else None


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
    _learn(fact, True, known)
    return known


def _learn(f: Expr, value: bool, known: dict[Expr, Expr]) -> None:
    known[f] = TRUE if value else FALSE
    if isinstance(f, UnaryOp) and f.op == "not":
        _learn(f.operand, not value, known)
    elif isinstance(f, BoolOp) and f.op == ("and" if value else "or"):
        _learn(f.left, value, known)
        _learn(f.right, value, known)


def given(e: Expr, fact: Expr) -> Expr:
    """``e`` where ``fact`` holds: the occurrences of what :func:`facts`
    decides are True or False (no simplification)."""
    return _given(e, facts(fact))


def _given(x: Expr, known: dict[Expr, Expr]) -> Expr:
    if x in known:
        return known[x]
    kids = [_given(c, known) for c in x.children()]
    return rebuild(x, kids) if kids else x


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
    if all(k is c for k, c in zip(kids, e.children())):
        return e  # nothing changed: the node itself (and the hash it keeps)
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


def replace_all(e: Expr, mapping: Mapping[Expr, Expr]) -> Expr:
    """``e`` with every occurrence of a key replaced, outermost first."""
    if not mapping:
        return e
    return _replaced(e, mapping, min(size(k) for k in mapping))


def _replaced(e: Expr, mapping: Mapping[Expr, Expr], smallest: int) -> Expr:
    if size(e) < smallest:  # no key fits inside
        return e
    if e in mapping:
        return mapping[e]
    kids = [_replaced(c, mapping, smallest) for c in e.children()]
    return rebuild(e, kids) if kids else e
