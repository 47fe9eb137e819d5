"""Naming shared subexpressions of emitted code (a printing concern only).

A subexpression that a method repeats becomes a local, when it has a name
that says what it is: sglang's own (``self.head_dim`` -> ``head_dim``, a
layer's ``head_size`` argument), a config key it reads with a fallback
(``getattr(mc, "head_dim", None) or ...`` -> ``head_dim``), a nested config
(``sub_config(mc, "text_config")`` -> ``text_config``), or a schedule size
(``sc.tp_size * sc.dp_size`` -> ``tp_size``). What has no such name stays
written out where it is used. Values are unchanged: each local is bound to
exactly the expression it replaces.
"""

from __future__ import annotations

import builtins
import keyword
from collections import Counter
from typing import Iterable, Mapping

from astgen import expr as E
from astgen.emit.pysource import show

_KNOWN = {
    "sc.tp_size * sc.dp_size": "tp_size",  # sglang's --tp: the world
    "max(1, sc.tp_size * sc.dp_size // sc.ep_size)": "moe_tp_size",
}
MIN_SIZE = 4  # nodes: smaller subexpressions read as well written out
MIN_PREFERRED = 6  # nodes: a value sglang names is named even when used once
_TAKEN = frozenset(dir(builtins)) | frozenset(keyword.kwlist)


def _size(e: E.Expr) -> int:
    return E.size(e)


def _discount(counts: Counter, whole: Iterable[E.Expr]) -> None:
    """``whole`` counted for its parts only: one occurrence of each less."""
    for e in whole:
        counts[e] -= 1
        if counts[e] <= 0:
            del counts[e]


def _occurrences(exprs: Iterable[E.Expr], allowed: set[str]) -> Counter:
    """How often each subexpression big enough to name occurs in ``exprs``
    (sizes and free names are kept on the nodes; a node too small to name
    has no part big enough either)."""
    counts: Counter = Counter()
    for e in exprs:
        _count(e, allowed, counts)
    return counts


def _count(e: E.Expr, allowed: set[str], counts: Counter) -> None:
    """:func:`_occurrences` of one expression, into ``counts`` (a module
    function, not a closure: a closure that calls itself is a reference
    cycle, and scan's workers run without the collector)."""
    if E.size(e) < MIN_SIZE:
        if _small_but_named(e) and E.names_read(e) <= allowed:
            counts[e] += 1
        return
    if E.names_read(e) <= allowed:
        counts[e] += 1
    for child in e.children():
        _count(child, allowed, counts)


def _small_but_named(e: E.Expr) -> bool:
    """Small, but named where it repeats: ``sub_config(mc, "text_config")``,
    what every key of a multimodal model's text model is read through; a key
    read with a default (``getattr(mc, "indexer_types", None)``); a value the
    package's operators compute (``ops.ffn_entry_rows(seq_len, "dense")``)."""
    if isinstance(e, E.GetAttr) and isinstance(e.obj, E.Name):  # getattr(mc, "indexer_types", None)
        return True
    return isinstance(e, E.Call) and (e.func == "sub_config" or e.func.startswith("ops.")) and len(e.args) == 2 \
        and isinstance(e.args[1], E.Const)


def _defaulted_key(e: E.Expr) -> str | None:
    """The config key of ``1 if k is None else k`` (a key, and a constant
    where it is None): a name after sglang's own, when it gives none."""
    if not (isinstance(e, E.IfExp) and isinstance(e.test, E.Compare) and e.test.op in ("is", "is not")
            and e.test.right == E.NONE and isinstance(e.test.left, (E.Attr, E.GetAttr))):
        return None
    key, other = e.test.left, ({e.body, e.orelse} - {e.test.left})
    return key.name if key in (e.body, e.orelse) and len(other) == 1 and isinstance(other.pop(), E.Const) else None


def config_key(e: E.Expr) -> str | None:
    """The config key a fallback read stands for: ``getattr(mc, "k", d)``,
    ``getattr(mc, "k", None) or d``, ``mc.k if hasattr(mc, "k") else d``,
    ``sub_config(mc, "k")``, ``sub_config(mc, "text_config").k``."""
    if isinstance(e, E.GetAttr):
        return e.name
    if isinstance(e, E.BoolOp) and e.op == "or" and isinstance(e.left, E.GetAttr):
        return e.left.name
    if isinstance(e, E.IfExp) and isinstance(e.test, E.HasAttr) and isinstance(e.body, E.Attr):
        if e.body.name == e.test.name:
            return e.body.name
    if isinstance(e, E.IfExp) and isinstance(e.test, E.HasAttr) and isinstance(e.orelse, (E.Attr, E.GetAttr)) \
            and e.orelse.obj == e.test.obj:
        return e.orelse.name  # the key, or what a config class computes instead where it has another
    if isinstance(e, E.Call) and e.func == "sub_config" and len(e.args) == 2 and isinstance(e.args[1], E.Const):
        return str(e.args[1].value)
    if isinstance(e, E.Attr) and isinstance(e.obj, E.Call) and e.obj.func == "sub_config":
        return e.name  # a key of a nested config: text_config.num_hidden_layers
    return None


class Namer:
    """Names for one method: ``preferred`` maps values to sglang's names for
    them, ``hints`` gives names to others (a layer count after its users);
    ``reserved`` are names already bound."""

    def __init__(self, preferred: Mapping[E.Expr, str], hints: Mapping[E.Expr, str],
                 reserved: set[str]) -> None:
        self.preferred, self.hints = preferred, hints
        self.taken = set(reserved) | _TAKEN
        self.defined: dict[str, E.Expr] = {}  # every local bound so far, by name
        self.by_value: dict[E.Expr, str] = {}  # and by value, written out

    def define(self, name: str, value: E.Expr) -> None:
        self.defined[name] = value

    def expand(self, e: E.Expr) -> E.Expr:
        """``e`` with the locals it reads written out again."""
        names = E.free_names(e) & self.defined.keys()
        if not names:
            return e
        return E.substitute(e, {n: self.expand(self.defined[n]) for n in names})

    def base_name(self, e: E.Expr) -> str | None:
        full = self.expand(e)
        name = (_KNOWN.get(show(full)) or config_key(full) or self.preferred.get(full)
                or self.hints.get(full) or _defaulted_key(full))
        return name if name and name.isidentifier() else None

    def fresh(self, base: str) -> str:
        name, i = base, 2
        while name in self.taken:
            name, i = f"{base}_{i}", i + 1
        self.taken.add(name)
        return name

    def name_common(self, exprs: list[E.Expr], bound: set[str], counted: int | None = None,
                    computable: list[E.Expr] = ()) -> tuple[list[tuple[str, E.Expr]], list[E.Expr]]:
        """(definitions in order, rewritten expressions). Only the first
        ``counted`` expressions (default: all) propose names: the others are
        evaluated under guards, where a name bound before them might not be
        computable (``mc.q_lora_rank + ...`` when q_lora_rank is None); they
        use the names all the same. ``bound``: the names a definition may
        read (those the method binds before it). ``computable``: more
        expressions known computable where the definitions go (not printed)."""
        definitions: list[tuple[str, E.Expr]] = []
        allowed = set(bound)
        counted = len(exprs) if counted is None else counted
        skip: set[E.Expr] = set()
        while True:
            values = [d for _, d in definitions]  # the parts of a definition, not itself
            # counted once, shared: what runs on every forward, and all uses
            first = _occurrences(exprs[:counted] + values, allowed)
            always = first + _occurrences(computable, allowed)
            counts = first + _occurrences(exprs[counted:], allowed)
            _discount(always, values)
            _discount(counts, values)
            # named where it repeats, or where sglang names it; computed on
            # every forward (one use outside guards at least)
            repeated = [e for e in always if e not in skip
                        and (counts[e] >= 2 or (_size(e) >= MIN_PREFERRED and self.expand(e) in self.preferred))]
            if not repeated:
                break
            # outermost first, so names stand for whole quantities (head_dim, not
            # a piece of it); a part of a quantity named in this round waits for
            # the next, when its count no longer includes the uses inside it
            repeated.sort(key=lambda e: (_size(e), show(e)), reverse=True)
            mapping: dict[E.Expr, E.Expr] = {}
            inside: set[E.Expr] = set()
            for target in repeated:
                if target in inside:
                    continue
                base = self.base_name(target)
                full = self.expand(target)
                if base is None or (base in self.taken and counts[target] < 2 and full not in self.by_value):
                    skip.add(target)  # no name, or only name_2 for one use
                    continue
                name = self.by_value.get(full) or self.fresh(base)  # the same value: the same name, bound again
                self.by_value[full] = name
                self.define(name, target)
                allowed.add(name)
                mapping[target] = E.Name(name)
                inside.update(E.walk(target))
                definitions.append((name, target))
            if not mapping:
                continue
            exprs = [E.replace_all(e, mapping) for e in exprs]
            computable = [E.replace_all(e, mapping) for e in computable]
            definitions = [(n, d if mapping.get(d) == E.Name(n) else E.replace_all(d, mapping))
                           for n, d in definitions]
        return _in_order(list(reversed(definitions))), exprs


def _in_order(definitions: list[tuple[str, E.Expr]]) -> list[tuple[str, E.Expr]]:
    """The definitions with each one after those it reads (stable)."""
    names = {n for n, _ in definitions}
    done: set[str] = set()
    out: list[tuple[str, E.Expr]] = []
    pending = list(definitions)
    while pending:
        for i, (n, d) in enumerate(pending):
            if (E.free_names(d) & names) <= done:
                out.append(pending.pop(i))
                done.add(n)
                break
        else:  # a cycle cannot happen: each definition is a part of the ones before it
            out += pending
            break
    return out
