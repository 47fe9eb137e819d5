"""Stage 4a, flow: read each traced module's ``forward`` code, in order.

A small interpreter of ``forward`` statements (read with libcst, never
executed). For one module class it lists, in source order, what a forward
pass does that a simulator needs and the constructor does not show:

* ``run``: a submodule called on ``self`` (``self.mlp(hidden_states)``);
* ``collective``: a communication function (``tensor_model_parallel_all_reduce``,
  listed in ``rules/execution.toml`` [collectives]);
* ``boundary``: a layer-boundary method (``self.ffn_boundary.prepare``,
  ``self.layer_communicator.prepare_mlp``: [forward.boundary] there), by
  its role (``ffn_entry``).

Each event carries the guard of the ``if`` statements around it. A test of
the forward mode (``forward_batch.forward_mode.is_decode()``) becomes
``is_decode``; a test of the module's own fields (``self.tp_size > 1``) an
expression over ``mc`` and ``sc``; any other test is sglang's runtime state
and takes its default path (off), as in ``__init__``. Methods of the same
class called on ``self`` are followed, a few calls deep.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import libcst as cst

from astgen import expr as E
from astgen import ir
from astgen.frontend.parse import ClassInfo, Location, ParsedModule
from astgen.rules import Rules

MAX_CALL_DEPTH = 4
# forward parameters that stand for rules objects (rules/parallel.toml):
# `forward_batch.forward_mode.is_decode()` is the emitted `is_decode`
FORWARD_OBJECTS = {"forward_batch": "forward_batch", "forward_mode": "forward_mode"}


@dataclass(frozen=True)
class Event:
    kind: str  # "run" | "collective" | "boundary"
    target: str  # child attribute, collective function, or "attr.method"
    guard: E.Expr
    loc: Location
    # a logits processor run: the attribute path on self of the module whose weights
    # it takes as the LM head ([forward.logits]), e.g. ("model", "embed_tokens")
    head: tuple[str, ...] = ()


@dataclass
class Flow:
    """The forward events of every traced module of one entry, by node id."""

    events: dict[int, list[Event]] = field(default_factory=dict)

    def of(self, node: ir.Node) -> list[Event]:
        return self.events.get(id(node), [])


# (test, module, node, class, forward objects) -> guard: the trace stage's
# value model (:class:`astgen.trace.tracer.ConditionReader`, built from the traced entry)
Condition = Callable[[cst.BaseExpression, ParsedModule, ir.Node, "ClassInfo | None", dict], E.Expr]
# (dotted module) -> parsed module, or None: the trace stage's loader
GetModule = Callable[[str], "ParsedModule | None"]


def read_flow(arch: ir.ArchIR, get_module: GetModule, condition: Condition, rules: Rules) -> Flow:
    flow = Flow()
    for node in arch.root.walk(skip_towers=True):
        if node.kind != ir.MODULE or not node.origin:
            continue
        events = _Reader(node, get_module, condition, rules).read()
        if events:
            flow.events[id(node)] = events
    return flow


class _Reader:
    def __init__(self, node: ir.Node, get_module: GetModule, condition: Condition, rules: Rules) -> None:
        self.node = node
        self.rules = rules
        self.condition = condition
        self.classes = []
        for dotted, name in node.origin:
            pm = get_module(dotted)
            if pm is not None and name in pm.classes:
                self.classes.append(pm.classes[name])
        self.children = {c.attr: c for c in node.children if c.attr}
        self.events: list[Event] = []
        self.depth = 0

    def method(self, name: str) -> tuple[ClassInfo, cst.FunctionDef] | None:
        """The method as the first class of the MRO defines it, with its
        whole body (parsing skipped forward bodies: :meth:`ParsedModule.full_method`)."""
        for c in self.classes:
            if name in c.methods:
                fn = c.module.full_method(c.name, name)
                return (c, fn) if fn is not None else None
        return None

    def read(self) -> list[Event]:
        found = self.method("forward")
        if found is not None:
            self._function(*found, E.TRUE)
        return self.events

    def _function(self, info: ClassInfo, fn: cst.FunctionDef, guard: E.Expr) -> None:
        if self.depth > MAX_CALL_DEPTH:
            return
        self.depth += 1
        line = info.module.loc(fn).line
        try:
            self._block(info, _body(fn.body), guard, line)
        finally:
            self.depth -= 1

    def _block(self, info: ClassInfo, stmts: list, guard: E.Expr, line: int) -> None:
        module = info.module
        for stmt in stmts:
            line = module.loc(stmt).line or line
            if guard == E.FALSE:
                return
            if isinstance(stmt, cst.If):
                test = self._test(module, info, stmt.test)
                self._expressions(module, stmt.test, guard, line)
                self._block(info, _body(stmt.body), E.simplify_condition(E.and_(guard, test)), line)
                if stmt.orelse is not None:
                    other = [stmt.orelse] if isinstance(stmt.orelse, cst.If) else _body(stmt.orelse.body)
                    self._block(info, other, E.simplify_condition(E.and_(guard, E.not_(test))), line)
                if _returns(stmt.body) and stmt.orelse is None:  # `if x: return ...` guards the rest
                    guard = E.simplify_condition(E.and_(guard, E.not_(test)))
            elif isinstance(stmt, cst.With):
                # the managers' calls after the body: their exit is what
                # follows it (`with self.ffn_boundary.exit(...) as ffn_exit:`)
                self._block(info, _body(stmt.body), guard, line)
                for item in stmt.items:
                    self._expressions(module, item.item, guard, line)
            elif isinstance(stmt, (cst.For, cst.While, cst.Try)):
                self._block(info, _body(stmt.body), guard, line)
            elif isinstance(stmt, cst.SimpleStatementLine):
                for small in stmt.body:
                    self._expressions(module, small, guard, line)
                if any(isinstance(small, (cst.Return, cst.Raise)) for small in stmt.body):
                    return
            # nested defs and classes are not run where they stand

    def _expressions(self, module: ParsedModule, node: cst.CSTNode, guard: E.Expr, line: int) -> None:
        """Every call in ``node``, innermost (argument) first, as Python runs them."""
        if guard == E.FALSE:
            return
        for call in _calls_in(node):
            self._call(module, call, guard, line)

    def _call(self, module: ParsedModule, call: cst.Call, guard: E.Expr, line: int) -> None:
        loc = Location(module.display, line)
        func = call.func
        ex = self.rules.execution
        if isinstance(func, cst.Name) and func.value in ex.collectives:
            self.events.append(Event("collective", func.value, guard, loc))
        elif isinstance(func, cst.Attribute) and _is_self(func.value):
            name = func.attr.value
            if name in self.children:
                self.events.append(Event("run", name, guard, loc, self._head(call, self.children[name])))
            else:
                found = self.method(name)
                if found is not None:
                    self._function(*found, guard)
        elif isinstance(func, cst.Attribute) and isinstance(func.value, cst.Attribute) \
                and _is_self(func.value.value):
            holder, method = func.value.attr.value, func.attr.value
            role = ex.boundary.get(f"{holder}.{method}")
            if role is not None:
                self.events.append(Event("boundary", role, guard, loc))
            elif holder in self.children and method == "forward":
                self.events.append(Event("run", holder, guard, loc))

    def _head(self, call: cst.Call, child: ir.Node) -> tuple[str, ...]:
        """The attribute path on self of the module a logits processor's
        call hands it as the head ([forward.logits]); () for any other call."""
        at = self.rules.execution.logits.get(child.cls)
        args = [a for a in call.args if a.keyword is None and not a.star]
        if at is None or at >= len(args):
            return ()
        path, value = [], args[at].value
        while isinstance(value, cst.Attribute):
            path.append(value.attr.value)
            value = value.value
        return tuple(reversed(path)) if _is_self(value) else ()

    # -- tests of if statements -------------------------------------
    def _test(self, module: ParsedModule, info: ClassInfo, node: cst.BaseExpression) -> E.Expr:
        return E.simplify_condition(self.condition(node, module, self.node, info, FORWARD_OBJECTS))


# The calls in a statement, by the statement's identity: the same forward
# code is read for every entry that uses its class (and libcst's visitor is
# slow). Bounded: a long process (validate --all) starts afresh.
_CALLS: dict[cst.CSTNode, list[cst.Call]] = {}  # libcst nodes hash and compare by identity
_CALLS_KEPT = 50_000


def _calls_in(node: cst.CSTNode) -> list[cst.Call]:
    if node not in _CALLS:
        if len(_CALLS) >= _CALLS_KEPT:
            _CALLS.clear()
        found: list[cst.Call] = []
        _collect_calls(node, found)
        _CALLS[node] = found
    return _CALLS[node]


# The children of the nodes forward code is mostly made of, in the order
# libcst's visitor takes them (source order): walked directly, an order of
# magnitude faster than the visitor, which takes every other node (_Calls).
_CHILDREN: dict[type, tuple[str, ...]] = {
    cst.Call: ("func", "args"), cst.Arg: ("value",), cst.Attribute: ("value",), cst.Name: (), cst.Integer: (),
    cst.Float: (), cst.SimpleString: (), cst.BinaryOperation: ("left", "right"), cst.UnaryOperation: ("expression",),
    cst.BooleanOperation: ("left", "right"), cst.Comparison: ("left", "comparisons"),
    cst.ComparisonTarget: ("comparator",), cst.Subscript: ("value", "slice"), cst.SubscriptElement: ("slice",),
    cst.Index: ("value",), cst.Slice: ("lower", "upper", "step"), cst.Tuple: ("elements",), cst.List: ("elements",),
    cst.Element: ("value",), cst.StarredElement: ("value",), cst.IfExp: ("body", "test", "orelse"),
    cst.Expr: ("value",), cst.Assign: ("targets", "value"), cst.AssignTarget: ("target",),
    cst.AugAssign: ("target", "value"), cst.AnnAssign: ("target", "annotation", "value"),
    cst.Annotation: ("annotation",), cst.Return: ("value",), cst.Await: ("expression",), cst.Pass: (),
    cst.Ellipsis: (),
}


def _collect_calls(node: cst.CSTNode, found: list[cst.Call]) -> None:
    """The calls in ``node`` as _Calls finds them: arguments before the
    call that takes them, lambdas not entered."""
    fields = _CHILDREN.get(type(node))
    if fields is None:
        if not isinstance(node, cst.Lambda):
            calls = _Calls()
            node.visit(calls)
            found += calls.found
        return
    for name in fields:
        value = getattr(node, name)
        if isinstance(value, (list, tuple)):
            for item in value:
                _collect_calls(item, found)
        elif value is not None:
            _collect_calls(value, found)
    if type(node) is cst.Call:
        found.append(node)


class _Calls(cst.CSTVisitor):
    """Calls in evaluation order: arguments before the call that takes them;
    lambdas and nested functions are not entered."""

    def __init__(self) -> None:
        self.found: list[cst.Call] = []

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    def leave_Call(self, node: cst.Call) -> None:
        self.found.append(node)


def _returns(block: cst.BaseSuite) -> bool:
    stmts = _body(block)
    last = stmts[-1] if stmts else None
    return isinstance(last, cst.SimpleStatementLine) and any(
        isinstance(small, (cst.Return, cst.Raise)) for small in last.body)


def _is_self(node: cst.BaseExpression) -> bool:
    return isinstance(node, cst.Name) and node.value == "self"


def _body(block: cst.BaseSuite) -> list:
    return list(block.body) if isinstance(block, cst.IndentedBlock) else [cst.SimpleStatementLine(list(block.body))]
