"""Stage 6a, emit (a method's body): the operators as the code prints them
(``PrintedOp``: readable values, the sglang lines they stand for), and
``add_operators``' body as nested blocks (``build_body``): a run of
operators sharing a guard's first test shares one ``if``, shared values are
named once, each call carries its source line, and arguments too long for
the line go to locals (``n``, ``weight``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from astgen import expr as E
from astgen.emit._cse import Namer
from astgen.emit.pysource import LINE_LENGTH, show, statement
from astgen.emit.tidy import coalesced, given, tidy, tidy_condition
from astgen.frontend.parse import Location
from astgen.lower.shapes import BOUND_NAMES, Operator


# add_operators' arguments: the package's Arch.build_operators passes them.
# In EXTEND the prompt runs in chunks (rules/execution.toml [prefill]): the
# operators are one chunk's, on seq_len tokens, and ops runs each per chunk.
ARGUMENTS = ("ops", "mc", "sc", "seq_len")
# what add_operators binds before its operators, and when each is needed
# (the server arguments come first: see preamble)
_PREAMBLE = (
    ("is_decode", "is_decode = sc.mode == ForwardMode.DECODE"),
    ("chunk", "chunk = self.prefill_chunk()"),  # the package's Arch: tokens per chunk
)
_ARGUMENTS = ("m", "k", "n", "batch", "layers", "weight")  # an operator's own locals
PREAMBLE_NAMES = tuple(name for name, _ in _PREAMBLE) + ("self",) + ARGUMENTS + _ARGUMENTS


def preamble(body: list[str], switches: list[tuple[str, str]] = ()) -> list[str]:
    """The bindings the body (or a later binding) reads, in order: the
    server arguments (``switches``) first."""
    words = set(re.findall(r"\w+", "\n".join(body)))  # the names it reads, as whole words
    needed = []
    for name, line in reversed(tuple(switches) + _PREAMBLE):
        if name in words:
            needed.append(statement(line, 8))
            words.update(re.findall(r"\w+", line.split(" = ", 1)[1]))
    return [line for lines in reversed(needed) for line in lines]


# ----------------------------------------------------------------------------
# operators as the code prints them


def code(e: E.Expr) -> str:
    """``e`` as the emitted code computes it, its parts named: a fallback
    where a value is None reads as the package's ``coalesce``."""
    return show(coalesced(e))


@dataclass(frozen=True)
class PrintedOp(Operator):
    """An operator as printed: its values in readable forms, and every sglang
    line it stands for (two when complementary guards are merged)."""

    at: tuple[str, ...] = ()  # file:line, the file without its directory
    # a call of a rule's helper (kind "call", group the method): its arguments, the first
    # `positional` of them passed by position
    args: tuple[tuple[str, E.Expr], ...] = ()
    positional: int = 0
    name_as: str = ""  # the name as this keyword, left out when empty ("": the first argument)


_NOWHERE = Location("", 0)


_VALUES = ("m", "k", "n", "batch", "layers")


def emitted(operators: list[Operator], spelled: dict[E.Expr, E.Expr],
            rows_from: dict[str, str] | None = None, tests: dict[E.Expr, E.Expr] | None = None) -> list[PrintedOp]:
    """The operators in readable forms, without those no configuration runs,
    with operators that differ only in one complementary condition of their
    guards (``if tied: add(lm_head)`` / ``if not tied: add(lm_head)``) merged.
    ``spelled``: values the package computes, as the call that does (the
    rows a layer boundary leaves an FFN: ``ops.ffn_entry_rows(seq_len, "dense")``).
    ``rows_from``: a role whose rows are another's unless given (rules/execution.toml
    [forward.rows_from]): its call leaves them out where they are those.
    ``tests``: conditions the package computes, as the call that does, in
    the guards (MLA's absorbed path: ``self.mla_absorbed(seq_len)``)."""
    tests = tests or {}

    def readable(e: E.Expr, guard: E.Expr) -> E.Expr:
        e = tidy(nested(e))
        return given(E.replace_all(e, spelled) if spelled else e, guard)  # computed where guard holds

    ops, called = [], set()
    for op in operators:
        if op.site is not None:  # the rule instance's operators: one call of its helper
            if op.site in called:
                continue
            called.add(op.site)
            op = _call_of(op)
        guard = tidy_condition(nested(op.guard))
        if guard == E.FALSE:
            continue
        guard = _schedule_last(E.replace_all(guard, tests))
        per_layer = (op.per_layer[0], tidy(nested(op.per_layer[1]))) if op.per_layer is not None else None
        values = {f: readable(getattr(op, f), guard) for f in _VALUES}
        args = tuple((k, readable(v, guard)) for k, v in getattr(op, "args", ()))
        if op.kind == "call" and op.group in (rows_from or {}):
            args = _rows_left_out(args, rows_from[op.group])
        printed = PrintedOp(**{f.name: getattr(op, f.name) for f in fields(Operator)},
                      at=(f"{Path(op.loc.file).name}:{op.loc.line}",),
                      args=args,
                      positional=getattr(op, "positional", 0), name_as=getattr(op, "name_as", ""))
        ops.append(replace(printed, guard=guard, per_layer=per_layer, **values))
    return _merge_complements(ops)


def _rows_left_out(args: tuple[tuple[str, E.Expr], ...], source: str) -> tuple[tuple[str, E.Expr], ...]:
    """A role call's arguments without ``rows`` where they are the rows
    ``source`` leaves the FFN the call names (``ops.ffn_entry_rows(seq_len,
    "moe")``), which the role's method then computes: the call gives only
    the FFN's kind, and what the role derives from it."""
    given = dict(args)
    kind = given.get("ffn")
    if kind is None or {"local", "rsv", "maxlen"} & set(given) \
            or given.get("rows") != E.Call(f"ops.{source}_rows", (E.Name("seq_len"), kind)):
        return args
    return tuple((k, v) for k, v in args if k != "rows")


def _call_of(op: Operator) -> PrintedOp:
    """The call of ``op.site``'s helper that adds ``op`` and the rest of its instance's operators."""
    site = op.site
    zero = E.Const(0)
    return PrintedOp(site.name, "call", zero, zero, zero, zero, site.layers, site.guard, op.loc, op.path, op.cls,
               group=site.helper, args=site.args, positional=site.positional, name_as=site.name_as)


def _merge_complements(ops: list[PrintedOp]) -> list[PrintedOp]:
    merged = True
    while merged:
        merged = False
        keys = [replace(op, guard=E.TRUE, at=(), loc=_NOWHERE) for op in ops]
        for i, a in enumerate(ops):
            for j in range(i + 1, len(ops)):
                if keys[i] != keys[j]:
                    continue
                guard = _complement(a, ops[j])
                if guard is not None:
                    at = a.at + tuple(x for x in ops[j].at if x not in a.at)
                    ops = ops[:i] + [replace(a, guard=guard, at=at)] + ops[i + 1:j] + ops[j + 1:]
                    merged = True
                    break
            if merged:
                break
    return ops


def _complement(a: PrintedOp, b: PrintedOp) -> E.Expr | None:
    """The guard under which exactly one of a, b (the same operator) runs,
    when their guards are ``c and rest`` and ``not c and rest``."""
    ca, cb = E.conjuncts(a.guard), E.conjuncts(b.guard)
    if len(ca) != len(cb):
        return None
    only_a = [c for c in ca if c not in cb]
    only_b = [c for c in cb if c not in ca]
    if len(only_a) != 1 or len(only_b) != 1:
        return None
    if tidy_condition(E.UnaryOp("not", only_a[0])) != only_b[0]:
        return None
    rest = [c for c in ca if c != only_a[0]]
    out = E.TRUE
    for c in rest:
        out = c if out == E.TRUE else E.BoolOp("and", out, c)
    return out


def tidied_names(names: dict[E.Expr, str]) -> dict[E.Expr, str]:
    out: dict[E.Expr, str] = {}
    for value, name in names.items():
        out.setdefault(tidy(nested(value)), name)
    return out


def count_hints(ops: list[PrintedOp]) -> dict[E.Expr, str]:
    """Names for values no code names: a layer count after the first matmul
    it counts (else the first operator): ``gate_up_proj_layers``; the rows
    several operators see after the module holding them: ``mlp_rows``."""
    users: dict[E.Expr, list[PrintedOp]] = {}
    for op in ops:
        for e in E.walk(op.layers):
            if isinstance(e, E.CountIf):
                users.setdefault(e, []).append(op)
    hints = {}
    for count, using in users.items():
        first = next((op for op in using if op.kind == "matmul"), using[0])
        hints[count] = f"{_identifier(first.name or first.group).rstrip('_')}_layers"  # a call's name: a prefix (moe_)
    rows: dict[E.Expr, list[str]] = {}
    for op in ops:
        if op.kind == "call":
            continue
        if not isinstance(op.m, (E.Name, E.Attr, E.Const)):
            rows.setdefault(op.m, []).append(op.path)
    for m, paths in rows.items():
        parts = [p.split(".") for p in paths]
        common = [a for a, *rest in zip(*parts) if all(r == a for r in rest)] if len(parts) > 1 else parts[0][:-1]
        owner = next((c for c in reversed(common) if c.isidentifier() and c not in ("model", "layers")), "")
        hints.setdefault(m, f"{owner}_rows" if owner else "rows")
    for op in ops:  # else a call's argument is named after its parameter (rsv, maxlen)
        for key, value in op.args:
            if E.size(value) > 2 and key.isidentifier():
                hints.setdefault(value, key)
    return hints


def _identifier(name: str) -> str:
    return name if name.isidentifier() else f"op_{name}"  # ModuleList items are named 0, 1 ...


def build_body(ops: list[PrintedOp], namer: Namer, switches: set[str]) -> list[str]:
    """The operators as nested blocks: a run of operators whose guards start
    with the same condition shares one ``if``, recursively; a run that loops
    over the layers shares one ``for``. Each block first names the values
    its operators share (the method's block also binds config keys read
    often)."""
    items = [_Item(E.conjuncts(op.guard) if op.guard != E.TRUE else [], op) for op in ops]
    return _sources_once(_scope(items, 8, namer, set(BOUND_NAMES) | switches, top=True))  # the preamble binds the switches


# an operator's sglang lines, as _op_lines writes them: on a line of their
# own, or after the call
_SOURCE = r"# [\w.-]+\.py:\d+(?:, (?:[\w.-]+\.py:)?\d+)*"
_SOURCE_LINE = re.compile(_SOURCE)
_SOURCE_AFTER = re.compile(rf"(.*\S)  ({_SOURCE})")
_BLOCKS = ("if ", "elif ", "else:", "for ")


def _sources_once(lines: list[str]) -> list[str]:
    """Each sglang line commented once per run of operators in one block:
    a source comment equal to the block's latest is left out (it still
    applies), until the block ends or a nested block starts."""
    out: list[str] = []
    last: tuple[int, str] | None = None  # the latest comment: its indent and text
    for line in lines:
        text = line.lstrip()
        indent = len(line) - len(text)
        if last is not None and (indent < last[0] or (indent == last[0] and text.startswith(_BLOCKS))):
            last = None
        after = _SOURCE_AFTER.fullmatch(line)
        if _SOURCE_LINE.fullmatch(text) or after:
            comment = after[2] if after else text
            if last == (indent, comment):
                if after:
                    out.append(after[1])
                continue
            last = (indent, comment)
        out.append(line)
    return out


@dataclass
class _Item:
    conds: list[E.Expr]  # the guard's conjuncts not yet tested by an enclosing block
    op: PrintedOp


def _scope(items: list[_Item], indent: int, namer: Namer, bound: set[str], top: bool = False,
           in_loop: bool = False, held: dict[str, str] | None = None) -> list[str]:
    """One block: its shared values named, then its operators and nested
    blocks. ``held``: what an operator's locals (``n``, ``weight``) hold
    where the block starts, which an operator needing the same reuses."""
    held = dict(held or {})
    # what this block evaluates on entry: the values of its own operators, the
    # first test of each nested block, the bounds of loops; deeper parts may
    # only be computable under their guards (they use the names all the same)
    places: list[tuple[int, str, int]] = []  # (item, field or "cond", conjunct index)
    later: list[tuple[int, str, int]] = []
    for i, item in enumerate(items):
        values = [(i, f, j) for f, j in _values_of(item.op)]
        if item.op.per_layer is not None and not in_loop:
            places.append((i, "loop", 0))
            later += [(i, "cond", j) for j in range(len(item.conds))] + values
        elif item.conds:
            places.append((i, "cond", 0))
            later += [(i, "cond", j) for j in range(1, len(item.conds))] + values
        else:
            places += values

    def get(i: int, what: str, j: int) -> E.Expr:
        item = items[i]
        if what == "cond":
            return item.conds[j]
        if what == "loop":
            return item.op.per_layer[1]
        if what == "arg":
            return item.op.args[j][1]
        return getattr(item.op, what)

    exprs = [get(*p) for p in places + later]
    # the parts of a value that read no schedule field, under tests of the
    # schedule alone, are computable here whenever they are there
    computable = [part for i, what, j in later if what not in ("cond", "loop") and all(
        E.free_names(c) <= _SCHEDULE for c in items[i].conds) for part in _config_parts(get(i, what, j))]
    definitions, exprs = namer.name_common(exprs, bound, counted=len(places), computable=computable)
    if top:
        values = [d for _, d in definitions]
        reads, rewritten = _config_reads(exprs[:len(places)] + values + exprs[len(places):],
                                         len(places) + len(values), namer)
        definitions = reads + [(n, d) for (n, _), d in zip(definitions, rewritten[len(places):len(places) + len(values)])]
        exprs = rewritten[:len(places)] + rewritten[len(places) + len(values):]
    items = [_Item(list(item.conds), item.op) for item in items]
    changes: dict[int, dict[str, Any]] = {}  # each operator rebuilt once, with all its rewritten fields
    for (i, what, j), e in zip(places + later, exprs):
        if what == "cond":
            items[i].conds[j] = e
            continue
        change = changes.setdefault(i, {})
        if what == "loop":
            change["per_layer"] = (items[i].op.per_layer[0], e)
        elif what == "arg":
            args = change.setdefault("args", list(items[i].op.args))
            args[j] = (args[j][0], e)
        else:
            change[what] = e
    for i, change in changes.items():
        if "args" in change:
            change["args"] = tuple(change["args"])
        items[i].op = replace(items[i].op, **change)
    lines = []
    for name, value in definitions:
        lines += statement(f"{name} = {code(value)}", indent)
    inner = bound | {name for name, _ in definitions}
    i = 0
    tested: E.Expr | None = None  # the test of the `if` just written, which an `else` may follow
    while i < len(items):
        item = items[i]
        test = None
        if item.op.per_layer is not None and not in_loop:
            run = _run(items, i, lambda x: x.op.per_layer == item.op.per_layer)
            var, n = item.op.per_layer
            lines += statement(f"for {var} in range({code(n)}):", indent)
            lines += _scope(run, indent + 4, namer, inner | {var}, in_loop=True, held=held)
            held.clear()  # what the block bound is not known after it
        elif item.conds:
            first = item.conds[0]
            run = _run(items, i, lambda x: x.conds[:1] == [first] and (in_loop or x.op.per_layer is None))
            if len(run) == 1:  # one operator: its whole guard on one `if`
                test, body = _and_all(list(dict.fromkeys(item.conds))), [_Item([], item.op)]
            else:  # a test named like the block's (two reads of one key) is the block's
                test, body = first, [_Item([c for c in x.conds[1:] if c != first], x.op) for x in run]
            if tested is not None and tidy_condition(E.UnaryOp("not", tested)) == test:
                lines += statement("else:", indent)
                test = None  # no `else` after an `else`
            else:
                lines += statement(f"if {code(test)}:", indent)
            lines += _scope(body, indent + 4, namer, set(inner), in_loop=in_loop, held=held)
            held.clear()
        else:
            run = [item]
            lines += _op_lines(item.op, indent, held)
        tested = test
        i += len(run)
    return lines


def _values_of(op: PrintedOp) -> list[tuple[str, int]]:
    """The values an operator's line computes: its shape, or a call's layer
    count and arguments."""
    if op.kind == "call":
        return [("layers", 0)] + [("arg", j) for j in range(len(op.args))]
    return [(f, 0) for f in _VALUES]


def _config_parts(e: E.Expr) -> list[E.Expr]:
    """The largest subexpressions of ``e`` that read no schedule field."""
    if not (E.free_names(e) & _SCHEDULE):
        return [e]
    return [part for c in e.children() for part in _config_parts(c)]


def _and_all(conds: list[E.Expr]) -> E.Expr:
    out = conds[0]
    for c in conds[1:]:
        out = E.BoolOp("and", out, c)
    return out


def _schedule_last(guard: E.Expr) -> E.Expr:
    """The guard with its tests of the schedule alone (``sc.tp_size > 1``,
    ``is_decode``) after those of the config, so that operators of one kind
    of layer (``n_routed_experts is not None``) share a block; a schedule
    test never guards a config read (it cannot make one computable)."""
    conds = E.conjuncts(guard)
    ordered = sorted(conds, key=lambda c: {n for n in E.free_names(c) if not n.isupper()} <= _SCHEDULE)
    return guard if ordered == conds else _and_all(ordered)


_SCHEDULE = frozenset({"sc", "seq_len", "is_decode"})


def _run(items: list[_Item], start: int, same) -> list[_Item]:
    """The items from ``start`` on for which ``same`` holds, consecutive."""
    end = start
    while end < len(items) and same(items[end]):
        end += 1
    return items[start:end]


# config keys read often enough to bind to a local, and the local's name
MIN_READS = 3
_READ_NAMES = {"num_hidden_layers": "num_layers"}


def _config_reads(exprs: list[E.Expr], counted: int, namer: Namer) -> tuple[list[tuple[str, E.Expr]], list[E.Expr]]:
    """``hidden_size = mc.hidden_size`` for a key the method reads at least
    :data:`MIN_READS` times, one of them on every forward (``counted``
    first expressions): the local is then always computable."""
    reads: dict[E.Expr, int] = {}
    for e in exprs:
        for x in E.walk(e):
            if isinstance(x, E.Attr) and x.obj == E.Name("mc"):
                reads[x] = reads.get(x, 0) + 1
    always = {x for e in exprs[:counted] for x in E.walk(e)}
    chosen = sorted((x for x, c in reads.items() if c >= MIN_READS and x in always), key=lambda x: x.name)
    definitions = [(namer.fresh(_READ_NAMES.get(x.name, x.name)), x) for x in chosen]
    for name, x in definitions:
        namer.define(name, x)
    mapping = {x: E.Name(name) for name, x in definitions}
    return definitions, [E.replace_all(e, mapping) for e in exprs]


def _op_lines(op: PrintedOp, indent: int, held: dict[str, str]) -> list[str]:
    """One call per operator with its source as a comment; arguments too long
    for the line are first bound to locals named after the argument (``n``,
    ``weight``), bound again by the next operator that needs one unless it
    holds the same already (``held``, which the bindings update)."""
    comment = f"  # {_sources(op.at)}"
    if op.kind == "call":  # keyword arguments: black lays out a call too long for the line
        args = [code(v) if i < op.positional else f"{k}={code(v)}" for i, (k, v) in enumerate(op.args)]
        if not op.name_as:
            args.insert(0, show(E.Const(op.name)))
        elif op.name:
            args.insert(op.positional, f"{op.name_as}={show(E.Const(op.name))}")
        layers = code(op.layers)

        def laid_out(layers_as: str) -> list[str]:
            call = f"ops.{op.group}({', '.join(args + ([f'layers={layers_as}'] if op.layers != E.Const(1) else []))})"
            return _commented(call, indent, comment)

        lines = laid_out(layers)
        if op.layers == E.Const(1) or layers == "layers" or len(lines) == 1:
            return lines
        # the layer count as the local `layers`, as an operator's, where that takes fewer lines
        bound = [] if held.get("layers") == layers else statement(f"layers = {layers}", indent)
        shorter = bound + laid_out("layers")
        if len(shorter) >= len(lines):
            return lines
        held["layers"] = layers
        return shorter
    used = [f for f in _VALUES if not (op.kind == "transfer" and f == "k")]
    texts = {f: code(getattr(op, f)) for f in used}
    if op.quantized:
        texts["weight"] = show(E.Const(op.path))
    # the longest arguments go to locals, as few as make the call fit (all of
    # them when none do: black then lays the call out)
    order = sorted((f for f, t in texts.items() if len(t) > MIN_HOISTED),
                   key=lambda f: (texts[f].isidentifier(), -len(texts[f]), f))  # a local's name last
    count = next((c for c in range(len(order) + 1)
                  if indent + len(_call(op, {**texts, **{f: f for f in order[:c]}})) <= LINE_LENGTH), None)
    if count is None:  # black lays the call out: a local then only for what is not a name
        count = sum(1 for f in order if not texts[f].isidentifier())
        # ... unless shorter arguments (experts_rows, a name) as locals make it fit in fewer lines
        # (what a local already holds costs nothing)
        wide = sorted((f for f, t in texts.items() if len(t) > len(f)),
                      key=lambda f: (held.get(f) != texts[f], -len(texts[f]), f))
        fits = next((c for c in range(len(wide) + 1)
                     if indent + len(_call(op, {**texts, **{f: f for f in wide[:c]}})) <= LINE_LENGTH), None)
        if fits is not None:
            laid_out = len(statement(_call(op, {**texts, **{f: f for f in order[:count]}}), indent))
            if sum(held.get(f) != texts[f] for f in wide[:fits]) + 1 \
                    < sum(held.get(f) != texts[f] for f in order[:count]) + laid_out:
                order, count = wide, fits
    lines: list[str] = []
    for f in order[:count]:
        if held.get(f) != texts[f]:
            lines += statement(f"{f} = {texts[f]}", indent)
            held[f] = texts[f]
        texts[f] = f
    return lines + _commented(_call(op, texts), indent, comment)


def _commented(call: str, indent: int, comment: str) -> list[str]:
    """``call`` with its source comment: after it where the line holds both, else on a line before it."""
    if indent + len(call) + len(comment) <= LINE_LENGTH:
        return [" " * indent + call + comment]
    return [" " * indent + comment.strip()] + statement(call, indent)


def _sources(at: tuple[str, ...]) -> str:
    """``dense.py:78, 80``: the lines of one file written once."""
    parts, last_file = [], None
    for place in at:
        file, line = place.rsplit(":", 1)
        parts.append(line if file == last_file else place)
        last_file = file
    return ", ".join(parts)


MIN_HOISTED = 12  # shorter arguments stay in the call


def _call(op: PrintedOp, texts: dict[str, str]) -> str:
    name = show(E.Const(op.name))
    weight = f", weight={texts['weight']}" if "weight" in texts else ""
    if op.kind == "transfer":
        batch = "" if texts["batch"] == "1" else f", batch_size={texts['batch']}"
        return f"ops.{op.group}({name}, {texts['m']}, {texts['n']}, {texts['layers']}{batch}{weight})"
    args = f"{name}, {texts['m']}, {texts['k']}, {texts['n']}, {texts['layers']}"
    if op.kind == "attention":
        key = "" if op.group == "attention" else f", key={show(E.Const(op.group))}"
        return f"ops.attention({args}, {texts['batch']}{key})"
    batch = "" if texts["batch"] == "1" else f", {texts['batch']}"
    return f"ops.matmul({args}{batch}{weight})"


_NESTED: dict[E.Expr, E.Expr] = {}


def nested(e: E.Expr) -> E.Expr:
    """``mc.text_config.x`` as ``sub_config(mc, 'text_config').x``: LLMSim's config
    keeps a nested config a dict (or flattens it), never an object. Modules
    share most of their expressions: each is rewritten once."""
    return E.remembered(_NESTED, _nested, e)


def _nested(e: E.Expr) -> E.Expr:
    kids = [nested(c) for c in e.children()]
    e = E.rebuild(e, kids) if kids else e
    if isinstance(e, (E.Attr, E.GetAttr, E.HasAttr)) and _is_mc_key(e.obj):
        return replace(e, obj=E.Call("sub_config", (e.obj.obj, E.Const(e.obj.name))))
    if isinstance(e, (E.Attr, E.GetAttr, E.HasAttr)) and isinstance(e.obj, E.Index) and "mc" in E.free_names(e.obj):
        # an entry of a JSON object of the config (jet_nemotron.py: efficient_attention_config[layer_type])
        return replace(e, obj=E.Call("as_config", (e.obj,)))
    return e


def _is_mc_key(e: E.Expr) -> bool:
    """``mc.x``, or ``getattr(mc, 'x', mc)`` (sglang's "the text config, or
    the config itself"), read as an object."""
    if not isinstance(e, (E.Attr, E.GetAttr)) or e.obj != E.Name("mc"):
        return False
    return isinstance(e, E.Attr) or e.default == E.Name("mc")
