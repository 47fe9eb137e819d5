"""Stage 4b, run: what one forward pass executes, per forward mode.

The IR (:mod:`astgen.ir`) is what sglang's ``__init__`` builds. A forward
pass in one mode runs part of it, and runs operations the constructor does
not show: multi-head latent attention expands the latent with ``kv_b_proj``
into the MHA core in EXTEND, but in DECODE multiplies by the absorbed
``w_kc`` / ``w_vc`` per head around the core over the latent
(``rules/execution.toml`` [mla], with the sglang source it summarizes).

The result is a :class:`ForwardPlan`: for each IR node the mode guard under
which it runs (``is_decode`` / ``not is_decode``), and the extra operations
each module runs. Mode guards are kept apart from structural guards: a
module that only runs in DECODE still holds its weights and its KV cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from packaging.version import InvalidVersion, Version

from astgen import expr as E
from astgen import ir
from astgen import messages as M
from astgen.forward.flow import Event, Flow
from astgen.frontend.parse import Location
from astgen.rules import AbsorbedExtend, ModeOp, Rules, model_types_of

# The forward mode as the emitted code names it: `is_decode = sc.mode == ForwardMode.DECODE`.
IS_DECODE = E.Name("is_decode")
IS_EXTEND = E.not_(IS_DECODE)
SEQ_LEN = E.Name("seq_len")  # the tokens of one DP replica (LLMSim's get_seq_length())
HIDDEN = E.attr_path("mc", "hidden_size")


@dataclass(frozen=True)
class Step:
    """An operation a module's forward runs that is no IR node of its own."""

    op: ModeOp
    when: E.Expr  # mode guard
    k: E.Expr
    n: E.Expr
    batch: E.Expr


@dataclass(frozen=True)
class RoleCall:
    """One layer-boundary role where forward code plays it: every step of
    ``role`` (rules/execution.toml [forward.roles]) from ``args``, which the
    package's method of the role's name runs whole (astgen.emit.package)."""

    role: str
    prefix: str  # the steps' names start with it (DeepSeek's dense_ / moe_ FFNs)
    guard: E.Expr  # where the boundary runs
    args: tuple[tuple[str, E.Expr], ...]  # seq_len, hidden, then rows, ffn or local, rsv, maxlen unless default
    switches: tuple[E.Expr, ...] = ()  # the server arguments the package's method reads itself


@dataclass(frozen=True)
class Transfer:
    """A collective a module's forward runs: rows x hidden elements per rank."""

    name: str
    collective: str
    rows: E.Expr
    cols: E.Expr
    guard: E.Expr
    loc: Location
    call: RoleCall | None = None  # the role it is a step of


@dataclass(frozen=True)
class Head:
    """An LM head no attribute names: the logits processor runs on the
    weights of ``target`` (the input embedding) where ``guard`` holds."""

    target: ir.Node
    guard: E.Expr
    loc: Location


@dataclass
class ForwardPlan:
    when: dict[int, E.Expr] = field(default_factory=dict)  # id(node) -> mode guard
    steps: dict[int, list[Step]] = field(default_factory=dict)  # id(module node) -> its extra ops
    rows: dict[int, E.Expr] = field(default_factory=dict)  # id(node) -> rows it runs on (default seq_len)
    transfers: dict[int, list[Transfer]] = field(default_factory=dict)  # id(module node) -> collectives
    heads: dict[int, list[Head]] = field(default_factory=dict)  # id(module node) -> its tied LM heads
    # the entry's --boundary-reduction at "auto" where the package's role
    # methods derive rsv and maxlen from it themselves (Arch.boundary_return)
    boundary_reduction: str | None = None
    # rows a role leaves an FFN of a kind when it starts from seq_len
    # unguarded: (role, kind), which the package's `<role>_rows` computes
    role_rows: dict[E.Expr, tuple[str, str]] = field(default_factory=dict)
    # the test for MLA's absorbed path where it is more than DECODE (rules/execution.toml
    # [mla] absorbed_extend), which the package's Arch.mla_absorbed computes
    mla_absorbed: E.Expr | None = None
    diagnostics: list[ir.Diagnostic] = field(default_factory=list)

    def mode_guard(self, node: ir.Node) -> E.Expr:
        return self.when.get(id(node), E.TRUE)

    def has_operations(self, node: ir.Node) -> bool:
        return id(node) in self.steps or id(node) in self.transfers


def plan_forward(arch: ir.ArchIR, rules: Rules, flow: Flow, version: str) -> ForwardPlan:
    """What runs per mode (MLA, per sglang ``version``), and where forward
    code communicates and how many rows each module then holds (``flow``:
    :func:`astgen.forward.flow.read_flow`)."""
    plan = ForwardPlan()
    for node in arch.root.walk(skip_towers=True):
        if node.kind == ir.MODULE and _is_mla(node, rules):
            _plan_mla(node, rules, plan, version)
    rsv, maxlen, plan.boundary_reduction = _boundary_return(arch.entry, rules, version)
    _Rows(rules, flow, plan, rsv, maxlen).visit(arch.root, SEQ_LEN)
    _plan_heads(arch.root, rules, flow, plan)
    return plan


def _plan_heads(root: ir.Node, rules: Rules, flow: Flow, plan: ForwardPlan) -> None:
    """A logits processor handed the input embedding (gemma2.py:402-404):
    an LM head on its tied weights, where the model has no LM head of its
    own (an ``lm_head`` layer, or an attribute aliasing an embedding)."""
    nodes = list(root.walk(skip_towers=True))
    if any(_is_head(n, rules) for n in nodes):
        return
    for node in nodes:
        for event in flow.of(node):
            target = _at_path(node, event.head) if event.head else None
            rule = rules.layer(target.cls) if target is not None and target.kind == ir.LAYER else None
            if rule is not None and rule.tied_as:
                plan.heads.setdefault(id(node), []).append(Head(target, event.guard, event.loc))


def _is_head(node: ir.Node, rules: Rules) -> bool:
    """An LM head layer, or an attribute aliasing a module that can be one (a tied embedding)."""
    rule = rules.layer(node.cls) if node.kind == ir.LAYER else None
    target = rules.layer(node.target.cls) if node.kind == ir.ALIAS and node.target is not None else None
    return (rule is not None and rule.category == "lm_head") or (target is not None and target.tied_as is not None)


def _at_path(node: ir.Node, path: tuple[str, ...]) -> ir.Node | None:
    """The node at attribute ``path`` below ``node`` (an alias read through)."""
    for attr in path:
        node = next((c for c in node.children if c.attr == attr), None)
        if node is None:
            return None
        if node.kind == ir.ALIAS and node.target is not None:
            node = node.target
    return node


def _boundary_return(entry: str, rules: Rules, version: str) -> tuple[E.Expr, E.Expr, str | None]:
    """(rsv, maxlen, default): when the entry's layer boundaries return an
    FFN's output over attention DP with a reduce-scatterv (its boundary
    reduction, sglang's per-model default or --boundary-reduction, allows
    it, and the layout does), when DP attention pads to the longest replica
    (rules/execution.toml [boundary_reduction]), and the per-model default
    where the tree declares --boundary-reduction: the package's role methods
    then compute both from it as these expressions do (Arch.boundary_return)."""
    table = rules.execution.boundary_reduction
    if table is None or not _at_least(version, table.since):
        return E.FALSE, E.FALSE, None
    default = table.default(entry, model_types_of(entry))
    declared = "boundary_reduction" in rules.server_args.args or "boundary_reduction" in rules.given
    chosen = rules.switch("boundary_reduction")
    strategy = E.IfExp(E.Compare("==", chosen, E.Const("auto")), E.Const(default), chosen) if declared \
        else E.Const(default)
    allows = E.Compare("in", strategy, E.Tuple((E.Const("rsv"), E.Const("rs+rsv"))))
    return E.simplify_condition(E.and_(allows, table.rsv_when)), table.maxlen_when, default if declared else None


# ----------------------------------------------------------------------------
# multi-head latent attention


def _is_mla(node: ir.Node, rules: Rules) -> bool:
    attrs = {c.attr for c in node.children}
    ex = rules.execution
    return bool(attrs & set(rules.mla_markers)) and set(ex.mla_decode_only) <= attrs \
        and bool(set(ex.mla_extend_only) & attrs)


def _absorbed(rules: Rules, version: str) -> E.Expr:
    """When MLA runs its absorbed path: DECODE, and in versions whose prefill
    CUDA graph pins it, EXTEND batches the graph captures."""
    absorbed = rules.execution.mla_absorbed_extend
    if absorbed is None or not _at_least(version, absorbed.since):
        return IS_DECODE
    return absorbed_test(absorbed)


def absorbed_test(absorbed: AbsorbedExtend) -> E.Expr:
    """MLA's absorbed path where the prefill CUDA graph pins it (rules/
    execution.toml [mla] absorbed_extend): DECODE, or an EXTEND chunk of at
    most the graph's tokens while sglang keeps the graph on; the package's
    Arch.mla_absorbed is this test."""
    return E.or_(IS_DECODE, E.simplify(E.and_(absorbed.graph, E.Compare("<=", SEQ_LEN, absorbed.max_tokens))))


def _at_least(version: str, since: str) -> bool:
    """PEP 440 order (``packaging``, which black already needs): a
    development build after a release (``0.5.24.dev12+gabc``) is at least
    that release; an unknown version is at least nothing."""
    try:
        return Version(version) >= Version(since)
    except InvalidVersion:
        return False


def _plan_mla(node: ir.Node, rules: Rules, plan: ForwardPlan, version: str) -> None:
    ex = rules.execution
    absorbed = _absorbed(rules, version)
    if absorbed != IS_DECODE:
        plan.mla_absorbed = absorbed
    for child in node.children:
        if child.attr in ex.mla_extend_only:
            plan.when[id(child)] = E.simplify(E.not_(absorbed))
        elif child.attr in ex.mla_decode_only:
            plan.when[id(child)] = absorbed
    steps = []
    for op in ex.mla_decode_ops:
        values = [E.simplify(E.substitute(e, node.fields)) for e in (op.k, op.n, op.batch)]
        missing = sorted(set().union(*(E.free_names(v) for v in values)) - {"mc", "sc"})
        if missing:
            plan.diagnostics.append(ir.Diagnostic.of(M.MLA_FIELDS, node.loc, cls=node.cls, op=op.name,
                                                     missing=tuple(missing), first=missing[0]))
            continue
        steps.append(Step(op, absorbed, *values))
    if steps:
        plan.steps[id(node)] = steps


# ----------------------------------------------------------------------------
# rows and communication


class _Rows:
    """Walks the IR with the rows each module holds, applying the
    communication its forward code does, in order."""

    def __init__(self, rules: Rules, flow: Flow, plan: ForwardPlan, rsv: E.Expr = E.FALSE,
                 maxlen: E.Expr = E.FALSE) -> None:
        self.rules, self.flow, self.plan, self.rsv, self.maxlen = rules, flow, plan, rsv, maxlen

    def visit(self, node: ir.Node, rows: E.Expr) -> None:
        if rows != SEQ_LEN:
            self.plan.rows[id(node)] = rows
        events = self.flow.of(node)
        child_rows: dict[int, E.Expr] = {}
        variants = self._variants(node, events)
        kinds = {has_moe(v, self.rules) for v in variants if v is not None}
        for variant in variants:
            # DeepSeek's dense-then-MoE FFNs name their collectives apart
            prefix = "" if len(kinds) < 2 else ("moe_" if has_moe(variant, self.rules) else "dense_")
            self._follow(node, events, rows, variant, child_rows, prefix)
        for child in node.children:
            if not child.tower:
                self.visit(child, child_rows.get(id(child), rows))

    def _variants(self, node: ir.Node, events: list[Event]) -> list[ir.Node | None]:
        """The FFN a layer boundary serves: one pass per guarded choice of
        module (DeepSeek's dense MLP in the first layers, MoE after), so that
        each choice's rows and collectives carry its own guard."""
        ffn = next((self._next_run(events, i) for i, e in enumerate(events)
                    if e.kind == "boundary" and e.target == "ffn_entry"), None)
        targets = [ffn] if ffn is not None else [e.target for e in events if e.kind == "run"]
        for target in targets:
            choices = [c for c in node.children if c.attr == target]
            if len(choices) > 1:
                return choices
        return [None]

    def _follow(self, node: ir.Node, events: list[Event], rows: E.Expr, variant: ir.Node | None,
                child_rows: dict[int, E.Expr], prefix: str) -> None:
        ex = self.rules.execution
        hidden = _hidden_size(node)
        current = rows
        # this pass follows one of the guarded FFN modules: its collectives
        # carry that module's guard; its rows are that module's own
        also = variant.guard if variant is not None else E.TRUE
        ffn_attr: str | None = None
        for i, event in enumerate(events):
            if variant is not None:  # decided where the guard repeats the module's own condition
                event = replace(event, guard=_assume(event.guard, variant.guard))
            if event.guard == E.FALSE:
                continue
            # the rows as they are where this event runs (the branches of an
            # `if` are read one after the other: the other branch's steps drop out)
            here = _assume(current, event.guard, condition=False)
            if event.kind == "run":
                for child in node.children:
                    if child.attr != event.target or (variant is not None and child.attr == variant.attr
                                                      and child is not variant):
                        continue
                    child_rows[id(child)] = _choose(event.guard, here, child_rows.get(id(child)))
                continue
            if event.kind == "collective":
                step = ex.collectives[event.target]
                owner = node.attr if node.attr and not node.attr.isdigit() else "layer"
                name = f"{owner}_{event.target}" if owner == "layer" else f"{owner}_{step.collective}"
                current = self._apply(node, step, prefix + name, event, E.FALSE, here, current, hidden, also)
                continue
            if event.target == "ffn_entry" or ffn_attr is None:
                ffn_attr = self._next_run(events, i)  # the FFN this boundary serves, till the next entry
            kind, local = self._local(node, variant if variant is not None else ffn_attr)
            call = self._role_call(event.target, prefix, E.simplify_condition(E.and_(event.guard, also)),
                                   here, kind, local, hidden)
            start = here
            for step in ex.roles.get(event.target, ()):
                current = self._apply(node, step, prefix + step.name, event, local, here, current, hidden, also,
                                      call)
                here = _assume(current, event.guard, condition=False)
            if start == SEQ_LEN and here != SEQ_LEN and event.guard == E.TRUE and ("ffn", E.Const(kind)) in call.args \
                    and not {"rsv", "maxlen"} & {k for k, _ in call.args}:  # `also` guards transfers, not rows
                self.plan.role_rows.setdefault(here, (event.target, kind))

    def _role_call(self, role: str, prefix: str, guard: E.Expr, rows: E.Expr, kind: str | None, local: E.Expr,
                   hidden: E.Expr) -> RoleCall:
        """The role's call: its rows unless seq_len, the FFN's kind where the
        rules' [forward.local] gives its locality (the method reads it), else
        the locality itself unless False."""
        args = [("seq_len", SEQ_LEN), ("hidden", hidden)]
        args += [("rows", rows)] if rows != SEQ_LEN else []
        if kind is not None and local == self.rules.execution.local.get(kind):
            args.append(("ffn", E.Const(kind)))
        elif local != E.FALSE:
            args.append(("local", local))
        if self.plan.boundary_reduction is not None:  # the arch derives them (Arch.boundary_return)
            return RoleCall(role, prefix, guard, tuple(args), (self.rules.switch("boundary_reduction"),))
        args += [(k, v) for k, v in (("rsv", self.rsv), ("maxlen", self.maxlen)) if v != E.FALSE]
        return RoleCall(role, prefix, guard, tuple(args))

    def _apply(self, node: ir.Node, step, name: str, event: Event, local: E.Expr, here: E.Expr,
               rows: E.Expr, hidden: E.Expr, also: E.Expr, call: RoleCall | None = None) -> E.Expr:
        """One communication step at ``node``: a transfer when its condition
        can hold, and the rows the module holds after it (``here``: the rows
        where the step runs; ``rows``: on every path)."""
        env = {"rows": here, "local": local, "seq_len": SEQ_LEN, "hidden": hidden, "rsv": self.rsv,
               "maxlen": self.maxlen}
        when = E.simplify_condition(E.and_(event.guard, E.substitute(step.when, env)))
        if when == E.FALSE:
            return rows
        if step.collective:
            self.plan.transfers.setdefault(id(node), []).append(Transfer(
                name, step.collective, E.simplify(E.substitute(step.rows, env)), hidden,
                E.simplify_condition(E.and_(when, also)), event.loc, call))
        if step.then is None:
            return rows
        return _choose(when, E.simplify(E.substitute(step.then, env)), rows)

    @staticmethod
    def _next_run(events: list[Event], i: int) -> str | None:
        return next((e.target for e in events[i + 1:] if e.kind == "run"), None)

    def _local(self, node: ir.Node, ffn: "ir.Node | str | None") -> tuple[str | None, E.Expr]:
        """The FFN's kind (a node, or the attribute called after a boundary:
        "moe" or "dense"), and whether it runs on the rank's own rows."""
        local = self.rules.execution.local
        choices = [ffn] if isinstance(ffn, ir.Node) else [c for c in node.children if c.attr == ffn]
        if not choices:
            return None, E.FALSE
        kind = "moe" if has_moe(choices[0], self.rules) else "dense"
        return kind, local.get(kind, E.FALSE)


def _choose(test: E.Expr, then: E.Expr, orelse: E.Expr | None) -> E.Expr:
    """``then`` where ``test`` holds, else ``orelse`` (None: no earlier value)."""
    if orelse is None or then == orelse or test == E.TRUE:
        return then
    if test == E.FALSE:
        return orelse
    if isinstance(orelse, E.IfExp) and orelse.body == then:  # two branches to the same rows
        return _choose(_either(test, orelse.test), then, orelse.orelse)
    return E.simplify(E.IfExp(test, then, orelse))


def _either(a: E.Expr, b: E.Expr) -> E.Expr:
    """``a or b``, with ``(c and p) or (c and not p)`` read as ``c``."""
    ca, cb = E.conjuncts(a), E.conjuncts(b)
    common = [x for x in ca if x in cb]
    ra, rb = [x for x in ca if x not in common], [x for x in cb if x not in common]
    if len(ra) == len(rb) == 1 and (E.simplify_condition(E.not_(ra[0])) == E.simplify_condition(rb[0])):
        out: E.Expr = E.TRUE
        for x in common:
            out = E.and_(out, x)
        return E.simplify_condition(out)
    return E.simplify_condition(E.or_(a, b))


def _assume(e: E.Expr, fact: E.Expr, condition: bool = True) -> E.Expr:
    """``e`` where ``fact`` holds: its occurrences (and, for a conjunction,
    its conjuncts) are True, those of its negation False. ``e`` is a
    condition, or (``condition=False``) a value whose choices are decided.
    Once per question: every entry of a family asks the same ones."""
    return E.remembered(_ASSUMED, _assumed, (e, fact, condition))


def _assumed(question: tuple[E.Expr, E.Expr, bool]) -> E.Expr:
    e, fact, condition = question
    if condition:
        return E.simplify_condition(E.given(e, fact))
    return _decide(e, lambda x: E.given(x, fact))


_ASSUMED: dict[tuple[E.Expr, E.Expr, bool], E.Expr] = {}


def _decide(e: E.Expr, go) -> E.Expr:
    """A value whose ``a if test else b`` choices are decided where ``go``
    (the assumptions) settles their tests."""
    if isinstance(e, E.IfExp):
        test = E.simplify_condition(go(e.test))
        if isinstance(test, E.Const):
            return _decide(e.body if test.value else e.orelse, go)
        return E.simplify(E.IfExp(test, _decide(e.body, go), _decide(e.orelse, go)))
    return e


def has_moe(node: ir.Node, rules: Rules) -> bool:
    """The module holds a MoE layer (a rule of category moe) somewhere below it."""
    for n in node.walk():
        rule = rules.layer(n.cls) if n.kind == ir.LAYER else None
        if rule is not None and rule.category == "moe":
            return True
    return False


def _hidden_size(node: ir.Node) -> E.Expr:
    """The hidden size a module's collectives carry: its own field, else the
    nearest submodule's (a multimodal wrapper's language model keeps it in
    its text config), else the nearest enclosing module's (KimiK3's MoE
    block, inside a model whose config computes hidden_size from its text
    config: configs/kimi_k3.py:118-120), else mc.hidden_size."""
    todo = [node]
    while todo:
        n = todo.pop(0)
        if "hidden_size" in n.fields:
            return n.fields["hidden_size"]
        todo += n.children
    outer = node.parent
    while outer is not None:
        if "hidden_size" in outer.fields:
            return outer.fields["hidden_size"]
        outer = outer.parent
    return HIDDEN
