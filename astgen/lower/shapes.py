"""Stage 5a, shapes: apply ``rules/`` to the IR and get LLMSim operators.

Each leaf of the IR whose class has a rule becomes one or more operators
with per-rank shapes as expressions over ``mc``, ``sc`` and ``seq_len``.
Guards that mention a layer index become layer counts
(``sum(1 for layer_id in range(n) if ...)``); the others stay conditions
under which the operator exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from astgen import expr as E
from astgen import ir
from astgen import messages as M
from astgen.forward.run import SEQ_LEN, ForwardPlan, has_moe
from astgen.frontend.parse import Location
from astgen.rules import LayerRule, Rules

MAX_SEQLEN = E.attr_path("sc", "max_seqlen")


@dataclass(frozen=True)
class Operator:
    name: str
    kind: str  # "matmul" | "attention" | "transfer"
    m: E.Expr
    k: E.Expr
    n: E.Expr
    batch: E.Expr
    layers: E.Expr
    guard: E.Expr
    loc: Location
    path: str
    cls: str
    counts_experts: bool = False
    group: str = ""  # attention key, or transfer kind
    # (var, n): one operator per layer `var` in range(n), when the shape
    # itself depends on the layer (per-layer config lists); layers is then
    # the count of the other repeats and the guard may mention `var`
    per_layer: tuple[str, E.Expr] | None = None
    quantized: bool = False  # weights take the checkpoint's quantized dtype (FP8: 1 byte)
    site: "Site | None" = None  # the rule instance that added it, when one helper call adds them all

    def within(self, prefix: str, cond: E.Expr) -> "Operator":
        """This operator as part of another forward pass (an MTP draft's):
        named with ``prefix``, run where ``cond`` holds; its site too."""
        site = self.site and replace(self.site, name=prefix + self.site.name,
                                     guard=E.simplify(E.and_(self.site.guard, cond)))
        return replace(self, name=prefix + self.name, guard=E.simplify(E.and_(self.guard, cond)), site=site)


@dataclass(frozen=True)
class Site:
    """One instance of a layer rule with a ``helper`` (rules/layers.toml): the
    package's method of that name adds its operators from ``args`` alone, so
    the emitted code calls it once instead of listing them. ``guard`` and
    ``layers`` are the instance's own, before the rule's ``when`` tests."""

    helper: str
    name: str  # the instance's base operator name (``lm_head``)
    args: tuple[tuple[str, E.Expr], ...]  # the rule's inputs, each unless at its default
    guard: E.Expr
    layers: E.Expr
    positional: int = 0  # the first args are passed by position
    switches: tuple[E.Expr, ...] = ()  # the server arguments the helper reads itself (as rules.switch gives them)
    name_as: str = ""  # the name passed as this keyword, left out when empty ("": first, by position)


@dataclass
class ArchShapes:
    entry: str
    module: str
    file: str
    sha256: str
    operators: list[Operator] = field(default_factory=list)
    kv_cache: E.Expr = E.Const(0)  # elements per token, whole model
    kv_cache_per_gpu: E.Expr = E.Const(0)
    attention_type: str = "MHA"
    boundary_reduction: str | None = None  # the forward plan's: what the package's role methods read
    role_rows: dict[E.Expr, tuple[str, str]] = field(default_factory=dict)  # the forward plan's
    mla_absorbed: E.Expr | None = None  # the forward plan's: what the package's Arch.mla_absorbed computes
    diagnostics: list[ir.Diagnostic] = field(default_factory=list)
    # what sglang's code calls the values it computes (``self.head_dim``, a
    # layer's ``head_size`` argument): names the emitted code may give them
    names: dict[E.Expr, str] = field(default_factory=dict)


@dataclass
class _Leaf:
    node: ir.Node
    repeats: list[tuple[str, E.Expr]]
    terms: list[E.Expr]
    prefix: str
    mode: E.Expr = E.TRUE  # when the forward runs it (kept apart: weights and KV cache ignore it)
    unquantized: bool = False  # under a module built with quant_config=None
    rows: E.Expr = SEQ_LEN  # the rows (tokens) its forward sees on this rank


def build_shapes(arch: ir.ArchIR, rules: Rules, plan: ForwardPlan) -> ArchShapes:
    """Operators of one forward pass, per rank; ``plan`` (the run stage's)
    says what runs in which mode, on how many rows, and what it sends."""
    out = ArchShapes(arch.entry, arch.module, arch.file, arch.sha256,
                     diagnostics=list(arch.diagnostics) + list(plan.diagnostics),
                     boundary_reduction=plan.boundary_reduction, role_rows=dict(plan.role_rows),
                     mla_absorbed=plan.mla_absorbed)
    leaves = list(_collect(arch.root, [], [], "", rules, plan))
    out.attention_type = "MLA" if any(l.node.attr in rules.mla_markers for l in leaves) else "MHA"
    names: dict[tuple[str, str], list[E.Expr]] = {}
    kv_terms: list[tuple[E.Expr, E.Expr]] = []
    renamed = set()  # sites an operator of which was renamed apart: the helper would add the rule's name
    for leaf in leaves:
        for op in _operators(leaf, rules, plan):
            unique = _unique(_only_where_counted(op), names)
            if unique.name != op.name and op.site is not None:
                renamed.add(op.site)
            out.operators.append(unique)
        kv = _kv_elements(leaf, rules, out.attention_type)
        if kv is not None:
            kv_terms.append(kv)
    if renamed:
        out.operators = [replace(op, site=None) if op.site in renamed else op for op in out.operators]
    out.names = sglang_names(arch.root, rules)
    per_gpu = _sum(E.simplify(E.BinOp("*", c, e)) for c, e in kv_terms)
    out.kv_cache_per_gpu = E.simplify(per_gpu)
    out.kv_cache = E.simplify(_at_tp1(per_gpu))
    _check_resolved(out)
    return out


def _only_where_counted(op: Operator) -> Operator:
    """An operator counted over the layers whose test reads a config key
    with a fallback (``getattr(mc, "sparse_attention_config", None)``) while
    its own sizes read that key outright: it exists only where some layer
    has it, so its sizes are read only there (``layers > 0``). Else a
    checkpoint without the key would crash the module on sizes of an
    operator that runs on no layer (minimax_m3.py:846, index_o_proj's k)."""
    if not any(isinstance(x, E.CountIf) for x in E.walk(op.layers)):
        return op
    _, fallback = E.config_keys(op.layers)
    outright = set().union(*(E.config_keys(getattr(op, f))[0] for f in ("m", "k", "n", "batch")))
    if not fallback & outright:
        return op
    exists = E.Compare(">", op.layers, E.Const(0))
    site = op.site and replace(op.site, guard=E.simplify(E.and_(op.site.guard, exists)))
    return replace(op, guard=E.simplify(E.and_(op.guard, exists)), site=site)


def sglang_names(root: ir.Node, rules: Rules) -> dict[E.Expr, str]:
    """Each computed value of the text model, by the name sglang's code gives
    it: a module's scalar attribute (``self.num_heads``), a layer's
    constructor argument (``head_size``), or a rule's ``let`` (``vocab``,
    the padded vocabulary). Plain config reads (``mc.x``) and constants need
    no name; the most frequent name of a value wins."""
    votes: dict[E.Expr, dict[str, int]] = {}
    for node in root.walk(skip_towers=True):
        if node.tower:
            continue
        named = list(node.fields.items() if node.kind == ir.MODULE else node.args.items())
        rule = rules.layer(node.cls) if node.kind == ir.LAYER else None
        if rule is not None:
            env = _env(node, rule)
            named += [(name, E.simplify(env[name])) for name, _ in rule.lets if name in env]
        for name, value in named:
            if name.isidentifier() and not name.startswith("_") and _worth_a_name(value):
                counts = votes.setdefault(value, {})
                counts[name] = counts.get(name, 0) + 1
    return {value: min(counts, key=lambda n: (-counts[n], n)) for value, counts in votes.items()}


def _worth_a_name(e: E.Expr) -> bool:
    if isinstance(e, (E.Const, E.Name, E.Unknown)) or E.unknowns(e):
        return False
    if isinstance(e, E.Attr) and isinstance(e.obj, E.Name):  # mc.hidden_size reads well as it is
        return False
    return E.free_names(e) <= {"mc", "sc"}


# ----------------------------------------------------------------------------
# walking the IR


def _collect(node: ir.Node, repeats: list, terms: list, prefix: str, rules: Rules,
             plan: ForwardPlan, mode: E.Expr = E.TRUE, unquantized: bool = False):
    if node.parent is None and plan.has_operations(node):  # the entry's own forward
        yield _Leaf(node, repeats, terms, prefix, mode, unquantized, plan.rows.get(id(node), SEQ_LEN))
    for head in plan.heads.get(id(node), ()):  # an LM head on the embedding's tied weights
        alias = ir.Node(ir.ALIAS, head.target.cls, head.loc, attr="lm_head", target=head.target)
        alias.parent = node
        yield _Leaf(alias, repeats, terms + E.conjuncts(head.guard), prefix, mode, unquantized)
    for child in node.children:
        if child.tower:  # multimodal towers are listed, not analyzed
            continue
        child_terms = terms + E.conjuncts(child.guard)
        child_prefix = prefix + _prefix_for(child, node, rules)
        child_mode = E.simplify(E.and_(mode, plan.mode_guard(child)))
        child_unq = unquantized or child.unquantized
        rows = plan.rows.get(id(child), SEQ_LEN)
        if child.kind == ir.LIST:
            reps = repeats + ([(child.repeat_var, child.repeat)] if child.repeat is not None else [])
            yield from _collect(child, reps, child_terms, child_prefix, rules, plan, child_mode, child_unq)
        elif child.kind in (ir.LAYER, ir.PARAM, ir.ALIAS):
            yield _Leaf(child, repeats, child_terms, child_prefix, child_mode, child_unq, rows)
        elif child.kind == ir.MODULE:
            if plan.has_operations(child):  # the module's own forward operations
                yield _Leaf(child, repeats, child_terms, child_prefix, child_mode, child_unq, rows)
            yield from _collect(child, repeats, child_terms, child_prefix, rules, plan, child_mode, child_unq)
        # IGNORED produce nothing; UNKNOWN were reported by the tracer


def _prefix_for(child: ir.Node, parent: ir.Node, rules: Rules) -> str:
    if child.attr in rules.prefixes:
        return rules.prefixes[child.attr]
    same = [c for c in parent.children if c.attr == child.attr and c.attr and c.kind == ir.MODULE]
    # one attribute, two guarded classes: name them apart only when one of
    # them is MoE (DeepSeek's dense-then-MoE MLPs); a hybrid's attention and
    # linear-attention mixers keep their own names
    if child.kind == ir.MODULE and len({has_moe(c, rules) for c in same}) > 1:
        return "moe_" if has_moe(child, rules) else "dense_"
    return ""


def _and_all(terms: list[E.Expr]) -> E.Expr:
    out: E.Expr = E.TRUE
    for t in terms:
        out = t if out == E.TRUE else E.BoolOp("and", out, t)
    return E.simplify(out)


def _count_and_guard(leaf: _Leaf) -> tuple[E.Expr, E.Expr]:
    remaining = list(leaf.terms)
    count: E.Expr = E.Const(1)
    for var, n in leaf.repeats:
        mine = [t for t in remaining if var in E.free_names(t)]
        remaining = [t for t in remaining if var not in E.free_names(t)]
        c = E.CountIf(var, n, _and_all(mine)) if mine else n
        count = E.simplify(E.BinOp("*", count, c))
    return count, _and_all(remaining)


# ----------------------------------------------------------------------------
# rules -> operators


def _env(node: ir.Node, rule: LayerRule) -> dict[str, E.Expr]:
    return rule.env(node.args)


def _subst(e: E.Expr, env: dict[str, E.Expr]) -> E.Expr:
    return E.simplify(E.substitute(e, env))


def node_operators(node: ir.Node, rules: Rules) -> list[Operator]:
    """The operators of one IR leaf on its own: no repeat count, no guard
    (``astgen validate`` evaluates them once per concrete module instance)."""
    return list(_leaf_operators(_Leaf(node, [], [], ""), rules))


def _operators(leaf: _Leaf, rules: Rules, plan: ForwardPlan) -> list[Operator]:
    if leaf.node.kind == ir.MODULE:
        ops = _step_operators(leaf, plan)
    else:
        ops = _leaf_operators(leaf, rules)
    out, whole = [], True
    for op in ops:
        before = op
        if leaf.rows != SEQ_LEN and op.m == SEQ_LEN:  # a gathered or scattered input
            op = replace(op, m=leaf.rows)
        op = _per_layer(op, leaf)
        if leaf.mode != E.TRUE:
            op = op.within("", leaf.mode)
        if leaf.unquantized and op.quantized:
            op = replace(op, quantized=False)
        whole = whole and (op.m == before.m and op.per_layer is None)  # as the helper computes it
        out.append(op)
    return out if whole else [replace(op, site=None) for op in out]



def _step_operators(leaf: _Leaf, plan: ForwardPlan):
    """A module's own forward operations: MLA's absorbed batched matmuls
    (weights derived after loading, kept in the model dtype) and the
    collectives its forward code runs."""
    node = leaf.node
    for step in plan.steps.get(id(node), ()):
        count, guard = _count_and_guard(leaf)
        yield Operator(leaf.prefix + step.op.name, "matmul", SEQ_LEN, step.k, step.n, step.batch,
                       count, E.simplify(E.and_(guard, step.when)), node.loc, node.path(), node.cls)
    transfers = plan.transfers.get(id(node), ())
    counted = [_count_and_guard(_Leaf(node, leaf.repeats, leaf.terms + E.conjuncts(t.guard), leaf.prefix))
               for t in transfers]  # a guard may read the layer index
    sites = _role_sites(leaf, transfers, [count for count, _ in counted])
    for t, (count, guard) in zip(transfers, counted):
        yield Operator(leaf.prefix + t.name, "transfer", t.rows, t.cols, t.cols, E.Const(1), count, guard,
                       t.loc, node.path(), node.cls, group=t.collective, site=sites.get(t.call))


def _role_sites(leaf: _Leaf, transfers, counts: list[E.Expr]) -> dict:
    """The call of each role whose steps all run as often as the role's
    boundary does (the helper takes one layer count)."""
    sites, broken = {}, set()
    for t, count in zip(transfers, counts):
        if t.call is None or t.call in broken:
            continue
        if t.call not in sites:
            terms = leaf.terms + E.conjuncts(t.call.guard)
            layers, guard = _count_and_guard(_Leaf(leaf.node, leaf.repeats, terms, leaf.prefix))
            sites[t.call] = Site(t.call.role, leaf.prefix + t.call.prefix, t.call.args, guard, layers, 2,
                                 t.call.switches, name_as="prefix")
        if sites[t.call].layers != count:
            broken.add(t.call)
    return {call: site for call, site in sites.items() if call not in broken}


def _per_layer(op: Operator, leaf: _Leaf) -> Operator:
    """An operator whose shape reads the layer index becomes one per layer."""
    shape_names = set().union(*(E.free_names(getattr(op, f)) for f in ("m", "k", "n", "batch")))
    hits = [(var, n) for var, n in leaf.repeats if var in shape_names]
    if len(hits) != 1:
        return op  # no layer dependence, or two nested ones: left to _check_resolved
    var, n = hits[0]
    others = _Leaf(leaf.node, [r for r in leaf.repeats if r[0] != var],
                   [t for t in leaf.terms if var not in E.free_names(t)], leaf.prefix)
    count, _ = _count_and_guard(others)
    mine = [t for t in leaf.terms if var in E.free_names(t)]
    guard = E.simplify(E.and_(op.guard, _and_all(mine)))
    return replace(op, layers=count, guard=guard, per_layer=(var, n))


def _leaf_operators(leaf: _Leaf, rules: Rules):
    node = leaf.node
    if node.kind == ir.ALIAS:
        yield from _alias_ops(leaf, rules)
        return
    if node.kind == ir.PARAM:
        yield from _param_ops(leaf)
        return
    rule = rules.layer(node.cls)
    if rule is None:
        return
    count, guard = _count_and_guard(leaf)
    env = _env(node, rule)
    base = leaf.prefix + own_name(node)
    common = dict(layers=count, guard=guard, loc=node.loc, path=node.path(), cls=node.cls,
                  site=_site(rule, base, env, guard, count, rules))
    for op in rule.ops:
        m = _subst(op.m, env) if op.m is not None else SEQ_LEN
        yield Operator(base + op.suffix, "matmul", m, _subst(op.k, env), _subst(op.n, env),
                       _subst(op.batch, env), counts_experts=op.counts_experts,
                       quantized=rule.quantized and not node.unquantized, **common)
    if rule.attention is not None:
        yield from _attention_ops(base, rule, env, common)
    for spec in rule.transfers:
        yield from _transfer_ops(base, spec, env, common, rule.quantized and not node.unquantized)


def _alias_ops(leaf: _Leaf, rules: Rules):
    target = leaf.node.target
    rule = rules.layer(target.cls) if target is not None else None
    if rule is None or rule.tied_as is None:
        return
    tied = rules.layer(rule.tied_as)
    shadow = ir.Node(ir.LAYER, rule.tied_as, leaf.node.loc, attr=leaf.node.attr, args=target.args)
    shadow.parent = leaf.node.parent
    count, guard = _count_and_guard(leaf)
    env = _env(shadow, tied)
    base = leaf.prefix + own_name(leaf.node)
    site = _site(tied, base, env, guard, count, rules)
    for op in tied.ops:
        m = _subst(op.m, env) if op.m is not None else SEQ_LEN
        yield Operator(base + op.suffix, "matmul", m,
                       _subst(op.k, env), _subst(op.n, env), _subst(op.batch, env),
                       count, guard, leaf.node.loc, leaf.node.path(), rule.tied_as, site=site)
    common = dict(layers=count, guard=guard, loc=leaf.node.loc, path=leaf.node.path(), cls=rule.tied_as,
                  site=site)
    for spec in tied.transfers:  # the tied head gathers its logits as an untied one does
        yield from _transfer_ops(base, spec, env, common, False)


def own_name(node: ir.Node) -> str:
    """A module's name in its operators' names: its attribute; an element of
    a container is named after the container, nn.Sequential's by its index
    too (``self.score = nn.Sequential(Linear, ReLU, Linear)``, qwen2_rm.py:47:
    ``score_0``, ``score_2``; a list's element, which has no attribute of its
    own: ``altup_projections``, gemma3n_causal.py:696)."""
    if node.attr and not node.attr.isdigit():
        return node.attr
    owner = node.parent
    while owner is not None and owner.parent is not None and (not owner.attr or owner.attr.isdigit()):
        owner = owner.parent
    within = owner.attr if owner is not None and owner.parent is not None else ""
    return "_".join(part for part in (within, node.attr) if part)


def _site(rule: LayerRule, base: str, env: dict[str, E.Expr], guard: E.Expr, count: E.Expr,
          rules: Rules) -> Site | None:
    """Where ``rule`` has a helper: the call that adds this instance's operators."""
    if not rule.helper:
        return None
    args = [(name, env[name]) for name in rule.inputs if rule.defaults.get(name) != env[name]]
    required = next((i for i, (name, _) in enumerate(args) if name in rule.defaults), len(args))
    return Site(rule.helper, base, tuple(args), guard, count, positional=required,
                switches=tuple(rules.switch(n) for n in rule.switches))


def _param_ops(leaf: _Leaf):
    node = leaf.node
    dims = [node.args[k] for k in sorted(node.args)]
    if len(dims) != 2 or node.attr != "weight" or node.parent is None:
        return
    count, guard = _count_and_guard(leaf)
    owner = node.parent
    # torch stores a linear weight as (out_features, in_features)
    yield Operator(leaf.prefix + own_name(owner), "matmul", SEQ_LEN,
                   dims[1], dims[0], E.Const(1), count, guard, node.loc, node.path(), owner.cls)


def _attention_ops(base: str, rule: LayerRule, env: dict, common: dict):
    spec = {k: _subst(v, env) for k, v in rule.attention.items()}
    heads, qk, v = spec["heads"], spec["qk_dim"], spec["v_dim"]
    group = "attention"  # one key: LLMSim sums every key; only the cores of one mode run
    yield Operator(f"{base}_qk", "attention", SEQ_LEN, qk, MAX_SEQLEN, heads, group=group, **common)
    # LLMSim's calculator times an attention operator named exactly "qkv" as
    # the P.V product of fused attention (it reads V and writes the output;
    # the probabilities never reach memory: attn_op.py get_hbm_time)
    yield Operator("qkv", "attention", SEQ_LEN, MAX_SEQLEN, v, heads, group=group, **common)


def _transfer_ops(base: str, spec: dict, env: dict, common: dict, quantized: bool):
    cols = _subst(spec["cols"], env)
    guard = common["guard"]
    rest = {k: v for k, v in common.items() if k != "guard"}
    if spec["kind"] != "moe":  # a layer's own collective: a row-parallel linear's all-reduce ...
        when = _subst(spec.get("when", E.TRUE), env)
        rows = _subst(spec["rows"], env) if "rows" in spec else SEQ_LEN
        yield Operator(f"{base}_{spec.get('name', spec['kind'])}", "transfer", rows, cols, cols, E.Const(1),
                       guard=E.and_(guard, when), group=spec["kind"], **rest)
        return
    # MoE: DeepEP sends each token to its top-k experts' ranks and back
    # (dispatch FP8 in a quantized checkpoint, combine in the model dtype);
    # without it, a MoE built with reduce_results=True all-reduces its output
    deepep = E.attr_path("sc", "deepep")
    top_k = env.get("top_k", E.Const(1))
    for phase in ("dispatch", "combine"):
        yield Operator(phase, "transfer", SEQ_LEN, cols, cols, top_k, guard=E.and_(guard, deepep),
                       group=phase, quantized=quantized and phase == "dispatch", **rest)
    when = E.and_(E.not_(deepep), _subst(spec.get("when", E.TRUE), env))
    yield Operator(f"{base}_all_reduce", "transfer", SEQ_LEN, cols, cols, E.Const(1),
                   guard=E.simplify(E.and_(guard, when)), group="all_reduce", **rest)


# ----------------------------------------------------------------------------
# KV cache


def _kv_elements(leaf: _Leaf, rules: Rules, attention_type: str) -> tuple[E.Expr, E.Expr] | None:
    node = leaf.node
    rule = rules.layer(node.cls) if node.kind == ir.LAYER else None
    if rule is None or rule.attention is None:
        return None
    env = _env(node, rule)
    spec = {k: _subst(v, env) for k, v in rule.attention.items()}
    count, guard = _count_and_guard(leaf)
    if guard != E.TRUE:
        count = E.simplify(E.IfExp(guard, count, E.Const(0)))
    if attention_type == "MLA":
        if node.attr != rules.mla_kv_attention:
            return None
        per_token = E.simplify(E.BinOp("*", spec["kv_heads"], spec["qk_dim"]))
    else:
        per_token = E.simplify(E.BinOp("*", spec["kv_heads"], E.BinOp("+", spec["qk_dim"], spec["v_dim"])))
    return _per_layer_kv(leaf, count, per_token)


def _per_layer_kv(leaf: _Leaf, count: E.Expr, per_token: E.Expr) -> tuple[E.Expr, E.Expr]:
    """Elements per token that differ by layer (head sizes read from a
    per-layer config list) are added over the layers, each layer under its
    own guard: ``sum((... if pred else 0) for layer_id in range(n))``."""
    hits = [(var, n) for var, n in leaf.repeats if var in E.free_names(per_token)]
    if len(hits) != 1:
        return count, per_token
    var, n = hits[0]
    others = _Leaf(leaf.node, [r for r in leaf.repeats if r[0] != var],
                   [t for t in leaf.terms if var not in E.free_names(t)], leaf.prefix)
    count_others, guard = _count_and_guard(others)
    mine = _and_all([t for t in leaf.terms if var in E.free_names(t)])
    body = per_token if mine == E.TRUE else E.IfExp(mine, per_token, E.Const(0))
    total = E.SumOver(var, n, E.simplify(body))
    if guard != E.TRUE:
        count_others = E.IfExp(guard, count_others, E.Const(0))
    return E.simplify(count_others), total


def _sum(terms) -> E.Expr:
    out: E.Expr = E.Const(0)
    for t in terms:
        out = E.simplify(E.BinOp("+", out, t))
    return out


_TP1 = {("sc", "tp_size"): E.Const(1), ("sc", "dp_size"): E.Const(1), ("sc", "ep_size"): E.Const(1)}


def _at_tp1(e: E.Expr) -> E.Expr:
    """The expression with every parallel size set to 1 (the whole model)."""
    if isinstance(e, E.Attr) and isinstance(e.obj, E.Name) and (e.obj.id, e.name) in _TP1:
        return _TP1[(e.obj.id, e.name)]
    kids = [_at_tp1(c) for c in e.children()]
    return E.rebuild(e, kids) if kids else e


# ----------------------------------------------------------------------------
# finishing


def _unique(op: Operator, names: dict[tuple[str, str], list[E.Expr]]) -> Operator:
    """Keep names unique, except between operators that exclude each other
    (``lm_head`` tied or untied): those are one operator under two guards."""
    key = (op.name, op.kind)
    guards = names.setdefault(key, [])
    exclusive = all(_exclusive(g, op.guard) for g in guards)
    guards.append(op.guard)
    if not guards[:-1] or exclusive:
        return op
    parts = op.path.split(".")
    owner = parts[-2] + "_" if len(parts) >= 2 else ""
    if owner and not op.name.startswith(owner):
        return _unique(replace(op, name=owner + op.name), names)
    return replace(op, name=f"{op.name}_{len(guards) - 1}")


def _exclusive(a: E.Expr, b: E.Expr) -> bool:
    """Guards that cannot both hold: one has a conjunct the other negates,
    as written or in their simplest forms (``not (tied and True)`` negates
    ``tied``)."""
    return _negates(a, b) or _negates(E.simplify_condition(a), E.simplify_condition(b))


def _negates(a: E.Expr, b: E.Expr) -> bool:
    left, right = E.conjuncts(a), E.conjuncts(b)
    return any(E.not_(x) in right or any(x == E.not_(y) for y in right) for x in left)


def _check_resolved(out: ArchShapes) -> None:
    """One diagnostic per operator and unresolved construct, naming the fields."""
    for op in out.operators:
        fields: dict[str, list[str]] = {}
        bound = BOUND_NAMES | ({op.per_layer[0]} if op.per_layer else set())
        for field_name in _FIELDS:
            value = getattr(op, field_name)
            whys = [u.why for u in E.unknowns(value)]
            whys += [f"layer index {name} of a nested repeat" for name in sorted(E.free_names(value) - bound)]
            for why in whys:
                names = fields.setdefault(why, [])
                if field_name not in names:
                    names.append(field_name)
        for why, names in fields.items():
            out.diagnostics.append(ir.Diagnostic.of(M.UNRESOLVED_OPERATOR, op.loc, op=op.name, fields=tuple(names),
                                                    why=why))


_FIELDS = ("m", "k", "n", "batch", "layers", "guard")
# names an emitted build_operators defines: the configs, tokens, the mode
BOUND_NAMES = frozenset({"mc", "sc", "seq_len", "is_decode"})


def is_resolved(op: Operator) -> bool:
    bound = BOUND_NAMES | ({op.per_layer[0]} if op.per_layer else set())
    return not any(E.unknowns(getattr(op, f)) or E.free_names(getattr(op, f)) - bound for f in _FIELDS)
