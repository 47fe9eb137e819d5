"""Common-subexpression naming for emitted code (a printing concern only).

Repeated subexpressions of a class's operators become named locals
(``head_dim = getattr(mc, 'head_dim', None) or ...``), so the module reads
like a hand-written one and black has less to format. Values are unchanged:
each local is bound to exactly the expression it replaces.
"""

from __future__ import annotations

from collections import Counter

from astgen import expr as E

_KNOWN = {
    "sc.tp_size * sc.dp_size": "tp_size",  # sglang's --tp: the world
    "max(1, sc.tp_size * sc.dp_size // sc.ep_size)": "moe_tp_size",
}
MIN_SIZE = 4


def _size(e: E.Expr) -> int:
    return sum(1 for _ in E.walk(e))


def _candidates(exprs: list[E.Expr], allowed: set[str]) -> Counter:
    """How often each subexpression big enough to name occurs; one pass that
    computes sizes and free names bottom-up."""
    counts: Counter = Counter()

    def visit(e: E.Expr) -> tuple[int, frozenset[str]]:
        size, names = 1, frozenset()
        for child in e.children():
            child_size, child_names = visit(child)
            size += child_size
            names |= child_names
        if isinstance(e, E.Name):
            names = frozenset((e.id,))
        elif isinstance(e, (E.CountIf, E.SumOver)):
            names = frozenset(E.free_names(e))
        if size >= MIN_SIZE and names <= allowed:
            counts[e] += 1
        return size, names

    for e in exprs:
        visit(e)
    return counts


def _replace(e: E.Expr, target: E.Expr, name: str) -> E.Expr:
    if e == target:
        return E.Name(name)
    kids = [_replace(c, target, name) for c in e.children()]
    return E._rebuild(e, kids) if kids else e


def _name_for(e: E.Expr, taken: set[str]) -> str:
    text = E.to_source(e)
    base = _KNOWN.get(text)
    if base is None and isinstance(e, E.CountIf):
        base = "layers_where_not" if isinstance(e.pred, E.UnaryOp) else "layers_where"
    if base is None:
        keys = [n.name for n in E.walk(e) if isinstance(n, (E.Attr, E.GetAttr))
                and isinstance(n.obj, E.Name) and n.obj.id == "mc"]
        base = keys[0] if keys else "value"
        if not isinstance(e, E.GetAttr) and not (isinstance(e, E.BoolOp) and isinstance(e.left, E.GetAttr)):
            base += "_expr"
    name, i = base, 2
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    taken.add(name)
    return name


def name_common(exprs: list[E.Expr], reserved: set[str], bound: frozenset[str],
                counted: int | None = None) -> tuple[list[tuple[str, E.Expr]], list[E.Expr]]:
    """Returns (definitions in order, rewritten expressions). Only the first
    ``counted`` expressions (default: all) propose names: the others are
    evaluated under guards, where a name bound before them might not be
    computable (``mc.q_lora_rank + ...`` when q_lora_rank is None); they
    use the names all the same. ``bound``: the names a definition may read
    (those the emitted method binds first)."""
    definitions: list[tuple[str, E.Expr]] = []
    taken = set(reserved)
    allowed = set(bound)
    counted = len(exprs) if counted is None else counted
    while True:
        counts = _candidates(exprs[:counted] + [d for _, d in definitions], allowed)
        repeated = [(e, c) for e, c in counts.items() if c >= 2]
        if not repeated:
            break
        # outermost first, so names stand for whole quantities (head_dim, not
        # a piece of it); a later, smaller pick cannot contain an earlier one
        target = max(repeated, key=lambda ec: (_size(ec[0]), E.to_source(ec[0])))[0]
        name = _name_for(target, taken)
        allowed.add(name)
        exprs = [_replace(e, target, name) for e in exprs]
        definitions = [(n, _replace(d, target, name)) for n, d in definitions]
        definitions.append((name, target))
    return list(reversed(definitions)), exprs
