"""Stage 8c, drift: what a changed operator field means, in terms one can
act on. ``check`` and ``diff`` find the fields that differ between two
operator tables (:class:`astgen.compare.change.Change`); this module says, for each,

* the smallest subexpression that changed (:func:`smallest_change`):
  ``mc.num_key_value_heads -> mc.num_key_value_heads * 2``, not two
  600-character expressions;
* whether a value changed at all (:func:`compare_field`): two texts that
  are only two forms of one value are a *form* change, not drift;
* the value before and after at each known config of the entry's
  architecture (``Qwen3-8B, tp 8: qkv_proj n 768 -> 1024``);
* which changes are one change seen in several entries (:func:`group`).

Two field texts have the same value when

1. their canonical forms are equal (verdict ``form``). :func:`canonical`
   rewrites, bottom-up and then with :func:`astgen.expr.simplify`:

   * ``getattr(mc.p, 'k', d)`` to ``mc.p.k`` when every known config of the
     architecture has the key ``p.k``, and to ``d`` when none has it;
     ``hasattr(mc.p, 'k')`` to True or False likewise. Where the configs do
     not tell (none known, or they disagree), a key the *old* text reads
     without a fallback (``mc.p.k`` outside a ``hasattr`` test:
     :func:`astgen.expr.config_keys`) is taken as present: wherever the old
     text has a value, the config has that key. So ``mc.x -> getattr(mc,
     'x', None)`` is a form change, and ``getattr(mc, 'x', None) -> mc.x``
     is not (the new text fails where the old one had a value);
   * ``sum((a, b, c))`` to ``a + b + c``;
   * ``sc.f is None`` to False and ``sc.f is not None`` to True: LLMSim's
     schedule fields are always set;
   * where only truth matters (an if-expression's test, ``not``'s operand, a
     guard, the operands of ``and``/``or`` there), ``bool(x)`` to ``x`` and
     :func:`astgen.expr.simplify_condition` (``x or None`` is ``x``);

2. or else, when the smallest change (``a -> b`` within the field), or the
   whole field, evaluates to equal values on both sides at every sample
   point (verdict ``same-values``): each known config of the architecture
   (no config at all when neither side reads ``mc``: a change of schedule
   terms only is sampled even for an architecture nobody has a config of)
   at each of :data:`SCHEDULES`, in extend and in decode mode, at every
   layer of a per-layer operator. Both failing at a point counts as
   agreeing there; at least one point must evaluate on both sides. This is
   a sample, not a proof: a change that matters only at a config or
   schedule not sampled is not seen, which is why ``check`` still calls
   such a module stale.

Anything else is a value change (verdict ``value``), including a text that
does not parse (it is compared as text). Nothing here runs analyzed code:
texts are read with :func:`astgen.expr.parse` and evaluated with
:func:`astgen.expr.evaluate`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from astgen import expr as E
from astgen.compare.change import Change
from astgen.frontend.configs import hf_cache_dir, local_configs, missing_keys

VALUE, FORM, SAME_VALUES = "value", "form", "same-values"
EXTEND, DECODE = 0, 1  # LLMSim's ForwardMode
# the schedule every sample point starts from: batch 16 so that a factor of
# sc.batch_size is seen (it would vanish at batch 1)
BASE_SCHEDULE: dict[str, Any] = {
    "tp_size": 1, "dp_size": 1, "ep_size": 1, "num_nodes": 1, "batch_size": 16,
    "max_seqlen": 4096, "deepep": False, "enable_moe_dense_fully_dp": False, "is_mtp": False}
MAX_LAYERS = 1024  # a per-layer operator is evaluated at this many layers at most
SHORT = 160  # characters of a subexpression a drift line shows


@dataclass(frozen=True)
class Schedule:
    """One LLMSim schedule (``tp`` is the attention TP inside one of ``dp``
    replicas, as in LLMSim's scripts)."""

    label: str
    fields: tuple[tuple[str, Any], ...]

    def env(self, mode: int) -> dict[str, Any]:
        """``sc``, ``seq_len`` and ``is_decode`` as an emitted module binds them."""
        sc = {**BASE_SCHEDULE, **dict(self.fields), "mode": mode}
        sc["world_size"] = sc["tp_size"] * sc["dp_size"]
        seq_len = sc["max_seqlen"] if mode == EXTEND else sc["batch_size"]
        return {"sc": sc, "seq_len": seq_len, "is_decode": mode == DECODE}


def _schedule(label: str, **fields: Any) -> Schedule:
    return Schedule(label, tuple(sorted(fields.items())))


# the first is the one drift lines show; the others vary every switch an
# operator table reads (data parallelism, expert parallelism, DeepEP, dense
# fully-DP, MTP)
SCHEDULES: tuple[Schedule, ...] = (
    _schedule("tp 8", tp_size=8),
    _schedule("tp 1"),
    _schedule("tp 4 dp 2 ep 8", tp_size=4, dp_size=2, ep_size=8),
    _schedule("tp 4 dp 2 ep 8 deepep", tp_size=4, dp_size=2, ep_size=8, deepep=True),
    _schedule("tp 1 dp 8 ep 8 dense fully dp", dp_size=8, ep_size=8, enable_moe_dense_fully_dp=True),
    _schedule("tp 8 mtp", tp_size=8, is_mtp=True),
)
MODES = (("", EXTEND), ("decode", DECODE))


# ----------------------------------------------------------------------------
# known configs


@dataclass(frozen=True)
class KnownConfig:
    name: str  # how lines name it: Qwen3-8B
    path: Path
    config: dict[str, Any]


def config_name(path: Path) -> str:
    """``Qwen__Qwen3-8B.json`` -> Qwen3-8B; ``.../models--Qwen--Qwen3-8B/
    snapshots/x/config.json`` -> Qwen3-8B; ``Qwen3-8B/config.json`` -> Qwen3-8B."""
    if path.name == "config.json":
        parts = path.parts
        hub = [p for p in parts if p.startswith("models--")]
        return hub[-1].split("--")[-1] if hub else path.parent.name
    return path.stem.split("__")[-1]


class ConfigIndex:
    """The configs known for each architecture (a config's
    ``architectures``), in the order their directories were given: every
    ``*.json``, ``*/config.json`` and Hugging Face cache snapshot config in
    ``dirs``, then (``hf_cache``) in the Hugging Face cache, as ``scan
    --configs`` finds them; a config name seen twice is kept once. Read
    when first asked for: a check that finds no changed value reads none."""

    def __init__(self, dirs: Iterable[Path] = (), hf_cache: bool = False) -> None:
        self._roots = [Path(d) for d in dirs] + ([hf_cache_dir()] if hf_cache else [])
        self._by_arch: dict[str, list[KnownConfig]] | None = None

    def of(self, arch: str) -> list[KnownConfig]:
        if self._by_arch is None:
            self._by_arch = self._read()
        return self._by_arch.get(arch, [])

    def _read(self) -> dict[str, list[KnownConfig]]:
        by_arch: dict[str, list[KnownConfig]] = {}
        seen: set[str] = set()
        for root in self._roots:
            if not root.is_dir():
                continue
            for path, config in local_configs(root):
                name = config_name(path)
                archs = config.get("architectures")
                if not isinstance(archs, list) or name in seen:
                    continue
                seen.add(name)
                for arch in archs:
                    if isinstance(arch, str):
                        by_arch.setdefault(arch, []).append(KnownConfig(name, path, config))
        return by_arch


def presence(configs: list[KnownConfig]) -> Callable[[str], bool | None]:
    """key -> True when every config has it, False when none does, None when
    they disagree or no config is known."""
    def has(key: str) -> bool | None:
        found = {not missing_keys(c.config, [key]) for c in configs}
        return found.pop() if len(found) == 1 else None
    return has


def _no_configs(key: str) -> bool | None:
    return None


def assuming(has: Callable[[str], bool | None], required: set[str]) -> Callable[[str], bool | None]:
    """``has``, and where it cannot tell, True for the keys in ``required``."""
    def has_or_required(key: str) -> bool | None:
        found = has(key)
        return True if found is None and key in required else found
    return has_or_required


# ----------------------------------------------------------------------------
# canonical form


def _config_key(e: E.Expr) -> str | None:
    """``mc.a.b`` -> ``a.b`` (the object of a getattr/hasattr below mc)."""
    parts = []
    while isinstance(e, E.Attr):
        parts.append(e.name)
        e = e.obj
    if isinstance(e, E.Name) and e.id == "mc":
        return ".".join(reversed(parts))
    return None


def _key_of(e: E.GetAttr | E.HasAttr) -> str | None:
    base = _config_key(e.obj)
    return None if base is None else (f"{base}.{e.name}" if base else e.name)


def _local(e: E.Expr, has: Callable[[str], bool | None], truth: bool) -> E.Expr:
    """One node's canonical rewrite (its children are canonical already)."""
    if isinstance(e, (E.GetAttr, E.HasAttr)):
        key = _key_of(e)
        found = has(key) if key is not None else None
        if isinstance(e, E.HasAttr) and found is not None:
            return E.Const(found)
        if isinstance(e, E.GetAttr) and found is not None:
            return E.Attr(e.obj, e.name) if found else e.default
    added = E.sum_as_add(e)
    if added is not None:
        return added
    if isinstance(e, E.Compare) and e.op in ("is", "is not") and e.right == E.NONE \
            and isinstance(e.left, E.Attr) and e.left.obj == E.Name("sc"):
        return E.Const(e.op == "is not")
    if truth:
        if isinstance(e, E.Call) and e.func == "bool" and len(e.args) == 1:
            return e.args[0]
        return E.simplify_condition(e)
    return e


def _rewrite(e: E.Expr, has: Callable[[str], bool | None], truth: bool) -> E.Expr:
    if isinstance(e, E.IfExp):
        kids = [_rewrite(e.test, has, True), _rewrite(e.body, has, truth), _rewrite(e.orelse, has, truth)]
    elif isinstance(e, E.UnaryOp) and e.op == "not":
        kids = [_rewrite(e.operand, has, True)]
    elif isinstance(e, E.BoolOp):
        kids = [_rewrite(c, has, truth) for c in e.children()]
    elif isinstance(e, E.CountIf):
        kids = [_rewrite(e.n, has, False), _rewrite(e.pred, has, True)]
    else:
        kids = [_rewrite(c, has, False) for c in e.children()]
    return _local(E.rebuild(e, kids) if kids else e, has, truth)


def canonical(e: E.Expr, has: Callable[[str], bool | None] = _no_configs, truth: bool = False) -> E.Expr:
    """The canonical form of ``e`` (see the module docstring). ``has`` says
    whether the known configs have a key; ``truth``: only ``e``'s truth is
    used (a guard)."""
    for _ in range(4):  # a rewrite can enable a simplification and back
        out = E.simplify(_rewrite(e, has, truth))
        if out == e:
            break
        e = out
    return e


class Canon:
    """Canonical forms under one set of known configs, remembered."""

    def __init__(self, has: Callable[[str], bool | None] = _no_configs) -> None:
        self.has, self._seen = has, {}

    def __call__(self, e: E.Expr, truth: bool = False) -> E.Expr:
        key = (e, truth)
        if key not in self._seen:
            self._seen[key] = canonical(e, self.has, truth)
        return self._seen[key]

    def same(self, a: E.Expr, b: E.Expr, truth: bool = False) -> bool:
        return a == b or self(a, truth) == self(b, truth)


# ----------------------------------------------------------------------------
# the smallest change


def _own(e: E.Expr) -> tuple:
    names = getattr(type(e), "__dataclass_fields__", {})
    return type(e).__name__, tuple((n, getattr(e, n)) for n in names
                                   if not isinstance(getattr(e, n), (E.Expr, tuple))), len(e.children())


def smallest_change(old: E.Expr, new: E.Expr, canon: Canon | None = None) -> tuple[E.Expr, E.Expr]:
    """The smallest pair of subtrees whose replacement turns ``old`` into
    ``new``: descend while both nodes have the same type and attributes and
    their differing children (differing canonically: a form change beside
    the change is ignored) all change the same way. A tuple is never the
    answer alone: its call is (``sum((a, b)) -> sum((a, b, c))``)."""
    canon = canon or Canon()
    if _own(old) != _own(new):
        return old, new
    pairs = [(a, b) for a, b in zip(old.children(), new.children()) if not canon.same(a, b)]
    if not pairs:
        return old, new
    subs = {}
    for a, b in pairs:
        sub = smallest_change(a, b, canon)
        subs[canon(sub[0]), canon(sub[1])] = sub
    if len(subs) != 1:
        return old, new
    a, b = next(iter(subs.values()))
    if isinstance(a, E.Tuple) or isinstance(b, E.Tuple):
        return old, new
    return a, b


def short(text: str, limit: int = SHORT) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


# ----------------------------------------------------------------------------
# one field


@dataclass(frozen=True)
class Value:
    """A field's value before and after at one sample point."""

    config: str
    schedule: str  # "tp 8", "tp 8, decode", "tp 8, layer 3"
    old: Any
    new: Any

    def render(self, what: str) -> str:
        return f"{self.config}, {self.schedule}: {what} {_show(self.old)} -> {_show(self.new)}"

    def to_json(self) -> dict[str, Any]:
        return {"config": self.config, "schedule": self.schedule, "from": self.old, "to": self.new}


def _show(v: Any) -> str:
    return repr(v) if isinstance(v, str) else str(v)


@dataclass(frozen=True)
class FieldDrift:
    """A changed field, explained."""

    change: "Change"
    verdict: str  # VALUE | FORM | SAME_VALUES
    old_sub: str  # the smallest subexpression that changed, as printed
    new_sub: str
    key: tuple  # what makes two drifts the same change: the subexpressions' canonical forms (see group)
    values: tuple[Value, ...] = ()  # at known configs, where the value differs
    paths: tuple[str, ...] = ()  # the config objects the subexpressions read keys of: mc.text_config

    @property
    def is_value(self) -> bool:
        return self.verdict == VALUE


_PER_LAYER = re.compile(r"^(\w+) in range\((.*)\)$", re.S)


def _parse(text: str, what: str) -> E.Expr | None:
    """A field's text as an expression (per_layer: its layer count; kind:
    none, it is compared as text)."""
    if what == "kind":
        return None
    if what == "per_layer":
        layers = _layers(text)
        return layers[1] if layers else None
    try:
        return E.parse(text)
    except (E.ParseError, KeyError, RecursionError):
        return None


def _layers(per_layer: str) -> tuple[str, E.Expr] | None:
    """``i in range(n)`` as (``i``, n)."""
    m = _PER_LAYER.match(per_layer or "")
    if not m:
        return None
    try:
        return m.group(1), E.parse(m.group(2))
    except (E.ParseError, KeyError, RecursionError):
        return None


Outcome = tuple[bool, Any]  # (evaluated, value)


def _at(e: E.Expr, env: dict[str, Any], per_layer: tuple[str, E.Expr] | None) -> Outcome:
    """``e``'s value at one point: a tuple over the layers of a per-layer
    operator; (False, None) when it does not evaluate."""
    try:
        if per_layer is None:
            return True, E.evaluate(e, env)
        var, n_expr = per_layer
        n = E.evaluate(n_expr, env)
        if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= MAX_LAYERS:
            return False, None
        return True, tuple(E.evaluate(e, {**env, var: i}) for i in range(n))
    except (E.EvalError, RecursionError):
        return False, None


@dataclass(frozen=True)
class Point:
    config: str
    schedule: str
    env: dict


def points(configs: list[KnownConfig], reads_mc: bool) -> Iterator[Point]:
    """The sample points: each config (none when mc is not read) at each
    schedule, extend then decode."""
    mcs = [(c.name, c.config) for c in configs] if reads_mc else [("any config", {})]
    for name, mc in mcs:
        for s in SCHEDULES:
            for label, mode in MODES:
                yield Point(name, f"{s.label}, {label}" if label else s.label, {"mc": mc, **s.env(mode)})


def _differ(a: Outcome, b: Outcome) -> bool:
    return a != b and not (a[0] and b[0] and _equal(a[1], b[1]))


def _equal(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b or (_number(a) and _number(b) and a == b)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@dataclass(frozen=True)
class Sides:
    """A field's two texts, parsed, with what evaluating them needs."""

    old: E.Expr
    new: E.Expr
    old_layers: tuple[str, E.Expr] | None
    new_layers: tuple[str, E.Expr] | None

    def reads_mc(self) -> bool:
        names = E.free_names(self.old) | E.free_names(self.new)
        for layers in (self.old_layers, self.new_layers):
            names |= E.free_names(layers[1]) if layers else set()
        return "mc" in names

    def outcomes(self, p: Point) -> tuple[Outcome, Outcome]:
        return _at(self.old, p.env, self.old_layers), _at(self.new, p.env, self.new_layers)


def same_values(sides: Sides, configs: list[KnownConfig]) -> bool:
    """Equal (or both failing) at every sample point, and evaluated on both
    sides at one at least."""
    evaluated = False
    for p in points(configs, sides.reads_mc()):
        a, b = sides.outcomes(p)
        if _differ(a, b):
            return False
        evaluated = evaluated or (a[0] and b[0])
    return evaluated


def values(sides: Sides, configs: list[KnownConfig]) -> tuple[Value, ...]:
    """Per config, the first sample point (tp 8 extend first) where both
    sides evaluate and differ; nothing for a config where none does."""
    if not sides.reads_mc():
        return ()
    out = []
    for config in configs:
        for p in points([config], True):
            (ok_a, a), (ok_b, b) = sides.outcomes(p)
            if ok_a and ok_b and not _equal(a, b):
                out.append(_value(p, a, b))
                break
    return tuple(out)


def _value(p: Point, a: Any, b: Any) -> Value:
    if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b):
        i = next(i for i, (x, y) in enumerate(zip(a, b)) if not _equal(x, y))
        return Value(p.config, f"{p.schedule}, layer {i}", a[i], b[i])
    return Value(p.config, p.schedule, _plain(a), _plain(b))


def _plain(v: Any) -> Any:
    """A JSON-able value: per-layer tuples as lists."""
    return list(v) if isinstance(v, tuple) else v


def compare_field(change: "Change", configs: list[KnownConfig]) -> FieldDrift:
    """Explain one changed field (``change.what == "changed"``) of an entry
    whose architecture has ``configs``."""
    old, new = _parse(change.old, change.field), _parse(change.new, change.field)
    if old is None or new is None:
        return FieldDrift(change, VALUE, short(change.old or "(none)"), short(change.new or "(none)"),
                          (change.old, change.new))
    # wherever the old text has a value, the config has the keys it reads without a fallback
    canon = Canon(assuming(presence(configs), E.config_keys(old)[0]))
    layers = (_layers(change.old_layers), _layers(change.new_layers))
    if canon.same(old, new, truth=change.field == "guard"):
        return FieldDrift(change, FORM, short(change.old), short(change.new), (change.old, change.new))
    a, b = smallest_change(old, new, canon)
    whole = Sides(old, new, *layers)
    # the change alone, or the whole field, has the same value everywhere
    verdict = SAME_VALUES if same_values(Sides(a, b, *layers), configs) or same_values(whole, configs) \
        else VALUE
    shown = values(whole, configs) if verdict == VALUE else ()
    return FieldDrift(change, verdict, short(E.to_source(a)), short(E.to_source(b)), same_change_key(a, b), shown,
                      tuple(sorted(config_objects(a) | config_objects(b))))


def _reads(e: E.Expr) -> Iterator[E.Expr]:
    """The outermost config reads of ``e`` (``mc.a.b``, ``getattr(mc.a, 'b', d)``)."""
    if isinstance(e, (E.Attr, E.GetAttr, E.HasAttr)) and _config_key(e.obj) is not None:
        yield e
        if isinstance(e, E.GetAttr):
            yield from _reads(e.default)
        return
    for c in e.children():
        yield from _reads(c)


def config_objects(e: E.Expr) -> set[str]:
    """The config objects ``e`` reads keys of: ``mc``, ``mc.text_config``."""
    return {E.to_source(r.obj) for r in _reads(e)}


def _unnested(e: E.Expr) -> E.Expr:
    """Every config read taken from ``mc`` itself: ``mc.text_config.k`` -> ``mc.k``."""
    if isinstance(e, (E.Attr, E.GetAttr, E.HasAttr)) and _config_key(e.obj) is not None:
        mc = E.Name("mc")
        if isinstance(e, E.GetAttr):
            return E.GetAttr(mc, e.name, _unnested(e.default))
        return E.Attr(mc, e.name) if isinstance(e, E.Attr) else E.HasAttr(mc, e.name)
    kids = [_unnested(c) for c in e.children()]
    return E.rebuild(e, kids) if kids else e


def same_change_key(a: E.Expr, b: E.Expr) -> tuple[E.Expr, E.Expr]:
    """Two drifts at one sglang line are one change when their subexpressions
    have the same canonical forms (no config assumed, so entries with and
    without a known config group alike) once every config read is taken from
    ``mc`` itself: the line reads ``config.num_key_value_heads`` whether an
    entry passes it ``mc`` or ``mc.text_config``."""
    plain = Canon()
    return plain(_unnested(a)), plain(_unnested(b))


# ----------------------------------------------------------------------------
# groups


@dataclass
class Group:
    """Changes that are one change: same sglang line, operator, field and
    :func:`same_change_key` (or the same operator added or removed there),
    in one or more entries."""

    members: list[FieldDrift | "Change"]

    @property
    def first(self) -> "Change":
        return change_of(self.members[0])

    @property
    def entries(self) -> list[str]:
        return sorted({change_of(m).entry for m in self.members})

    @property
    def modules(self) -> list[str]:
        return sorted({change_of(m).module for m in self.members if change_of(m).module})

    @property
    def drift(self) -> FieldDrift | None:
        m = self.members[0]
        return m if isinstance(m, FieldDrift) else None

    def values(self) -> list[Value]:
        """The values at known configs, one per config name."""
        seen: dict[str, Value] = {}
        for m in self.members:
            for v in m.values if isinstance(m, FieldDrift) else ():
                seen.setdefault(v.config, v)
        return [seen[k] for k in sorted(seen)]

    @property
    def where(self) -> str:
        c = self.first
        return c.at or c.module

    def describe(self, max_entries: int = 4) -> str:
        """``Entry.op field: old -> new``, or for several entries ``op field in
        N entries (A, B, ...): old -> new``; an operator added or removed
        likewise."""
        c, d, entries = self.first, self.drift, self.entries
        label = "layer count" if c.field == "layers" else c.field
        if len(entries) == 1:
            times = f" (x{len(self.members)})" if len(self.members) > 1 else ""
            return f"{entries[0]}.{c.operator}{times} " + (f"{label}: {d.old_sub} -> {d.new_sub}" if d else c.what)
        shown = ", ".join(entries[:max_entries])
        more = f", ... (+{len(entries) - max_entries} more)" if len(entries) > max_entries else ""
        who = f"in {len(entries)} entries ({shown}{more})"
        return f"{c.operator} " + (f"{label} {who}: {d.old_sub} -> {d.new_sub}{self._elsewhere()}" if d
                                   else f"{c.what} {who}")

    def _elsewhere(self) -> str:
        """`` (read from mc.text_config in 3 of them)`` when some members
        read the keys of the change from other config objects."""
        d = self.drift
        other = [m for m in self.members if isinstance(m, FieldDrift) and m.paths != d.paths]
        if not other:
            return ""
        paths = sorted({p for m in other for p in m.paths} - set(d.paths))
        entries = {m.change.entry for m in other}
        return f" (read from {', '.join(paths)} in {len(entries)} of them)"

    def values_text(self, max_values: int = 2) -> str:
        """``Qwen3-8B, tp 8: qkv_proj n 768 -> 1024; ...`` ("" when no
        known config tells)."""
        c, vals = self.first, self.values()
        label = "layer count" if c.field == "layers" else c.field
        text = "; ".join(v.render(f"{c.operator} {label}") for v in vals[:max_values])
        return text + (f"; +{len(vals) - max_values} more configs" if len(vals) > max_values else "")

    def render(self) -> str:
        """One line: ``at: drift: <describe> (<values>)``."""
        where = f"{self.where}: " if self.where else ""
        values = self.values_text()
        return f"{where}drift: {self.describe()}" + (f" ({values})" if values else "")

    def to_json(self, n: int) -> dict[str, Any]:
        c, d = self.first, self.drift
        return {"id": n, "line": self.render(), "at": c.at, "what": c.what, "operator": c.operator,
                "field": c.field, "from_sub": d.old_sub if d else "", "to_sub": d.new_sub if d else "",
                "count": len(self.members), "entries": self.entries, "modules": self.modules,
                "config_objects": sorted({p for m in self.members if isinstance(m, FieldDrift) for p in m.paths}),
                "values": [v.to_json() for v in self.values()]}


def change_of(m: FieldDrift | "Change") -> "Change":
    """The operator change behind an item of a report."""
    return m.change if isinstance(m, FieldDrift) else m


def explained(changes: Iterable["Change"], configs_of: Callable[[str], list[KnownConfig]]) -> list:
    """Each changed field compared at the configs known for its entry
    (:func:`compare_field`); the other changes as they are."""
    return [compare_field(c, configs_of(c.entry)) if c.what == "changed" else c for c in changes]


def changes_value(m: FieldDrift | "Change") -> bool:
    """A value drift, or an operator or module added or removed (not text
    that changed with no value: form only, moved lines, another generator)."""
    return m.is_value if isinstance(m, FieldDrift) else not m.stale_only


def form_counts(drifts: list[FieldDrift]) -> dict[str, int]:
    """Field changes of form only: all, by canonical form, by values."""
    by_form = sum(1 for d in drifts if d.verdict == FORM)
    return {"fields": len(drifts), "by_form": by_form, "by_values": len(drifts) - by_form}


def group(items: Iterable[FieldDrift | "Change"]) -> list[Group]:
    """Group value drifts and added/removed operators; the order is that of
    each group's first member."""
    groups: dict[tuple, Group] = {}
    for m in items:
        c = change_of(m)
        key = (c.at or c.module, c.what, c.operator, c.field, m.key if isinstance(m, FieldDrift) else ())
        if key in groups:
            groups[key].members.append(m)
        else:
            groups[key] = Group([m])
    return list(groups.values())
