"""Stage 4a, flow: read each traced module's ``forward`` code, in order.

A small interpreter of ``forward`` statements (read with Python's ``ast``,
never executed; the tests of ``if`` statements go to the trace stage's value
model). For one module class it lists,
in source order, what a forward pass does that a simulator needs and the
constructor does not show:

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

import ast
from dataclasses import dataclass, field
from typing import Callable

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
Condition = Callable[[ast.expr, ParsedModule, ir.Node, "ClassInfo | None", dict], E.Expr]
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

    def method(self, name: str) -> tuple[ClassInfo, ast.FunctionDef | ast.AsyncFunctionDef] | None:
        """The method as the first class of the MRO defines it (as the
        tracer looks it up: a property's setter does not replace its getter)."""
        for c in self.classes:
            if name in c.methods:
                return c, c.methods[name]
        return None

    def read(self) -> list[Event]:
        found = self.method("forward")
        if found is not None:
            self._function(*found, E.TRUE)
        return self.events

    def _function(self, info: ClassInfo, fn: ast.FunctionDef | ast.AsyncFunctionDef, guard: E.Expr) -> None:
        if self.depth > MAX_CALL_DEPTH:
            return
        self.depth += 1
        try:
            self._block(info, fn.body, guard)
        finally:
            self.depth -= 1

    def _block(self, info: ClassInfo, stmts: list[ast.stmt], guard: E.Expr) -> None:
        module = info.module
        for stmt in stmts:
            line = stmt.lineno
            if guard == E.FALSE:
                return
            if isinstance(stmt, ast.If):
                test = self._test(module, info, stmt.test)
                self._expressions(module, stmt.test, guard, line)
                self._block(info, stmt.body, E.simplify_condition(E.and_(guard, test)))
                if stmt.orelse:
                    self._block(info, stmt.orelse, E.simplify_condition(E.and_(guard, E.not_(test))))
                elif _returns(stmt.body):  # `if x: return ...` guards the rest
                    guard = E.simplify_condition(E.and_(guard, E.not_(test)))
            elif isinstance(stmt, (ast.With, ast.AsyncWith)):
                # the managers' calls after the body: their exit is what
                # follows it (`with self.ffn_boundary.exit(...) as ffn_exit:`)
                self._block(info, stmt.body, guard)
                for item in stmt.items:
                    self._expressions(module, item.context_expr, guard, line)
            elif isinstance(stmt, (ast.For, ast.AsyncFor, ast.While, ast.Try)):
                self._block(info, stmt.body, guard)
            elif not isinstance(stmt, _COMPOUND):
                self._expressions(module, stmt, guard, line)
                if isinstance(stmt, (ast.Return, ast.Raise)):
                    return
            # nested defs and classes are not run where they stand

    def _expressions(self, module: ParsedModule, node: ast.AST, guard: E.Expr, line: int) -> None:
        """Every call in ``node``, innermost (argument) first, as Python runs them."""
        if guard == E.FALSE:
            return
        for call in _calls_in(node):
            self._call(module, call, guard, line)

    def _call(self, module: ParsedModule, call: ast.Call, guard: E.Expr, line: int) -> None:
        loc = Location(module.display, line)
        func = call.func
        ex = self.rules.execution
        if isinstance(func, ast.Name) and func.id in ex.collectives:
            self.events.append(Event("collective", func.id, guard, loc))
        elif isinstance(func, ast.Attribute) and _is_self(func.value):
            name = func.attr
            if name in self.children:
                self.events.append(Event("run", name, guard, loc, self._head(call, self.children[name])))
            else:
                found = self.method(name)
                if found is not None:
                    self._function(*found, guard)
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Attribute) \
                and _is_self(func.value.value):
            holder, method = func.value.attr, func.attr
            role = ex.boundary.get(f"{holder}.{method}")
            if role is not None:
                self.events.append(Event("boundary", role, guard, loc))
            elif holder in self.children and method == "forward":
                self.events.append(Event("run", holder, guard, loc))

    def _head(self, call: ast.Call, child: ir.Node) -> tuple[str, ...]:
        """The attribute path on self of the module a logits processor's
        call hands it as the head ([forward.logits]); () for any other call."""
        at = self.rules.execution.logits.get(child.cls)
        args = [a for a in call.args if not isinstance(a, ast.Starred)]
        if at is None or at >= len(args):
            return ()
        path, value = [], args[at]
        while isinstance(value, ast.Attribute):
            path.append(value.attr)
            value = value.value
        return tuple(reversed(path)) if _is_self(value) else ()

    # -- tests of if statements -------------------------------------
    def _test(self, module: ParsedModule, info: ClassInfo, node: ast.expr) -> E.Expr:
        return E.simplify_condition(self.condition(node, module, self.node, info, FORWARD_OBJECTS))


# statements whose parts the flow stage does not read where they stand
_COMPOUND = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Match, ast.TryStar)


def _calls_in(node: ast.AST) -> list[ast.Call]:
    """The calls in a statement, once per statement (the same forward code is
    read for every entry that uses its class); callers only read the list."""
    return E.remembered(_CALLS, _find_calls, node)


_CALLS: dict = {}


def _find_calls(node: ast.AST) -> list[ast.Call]:
    found: list[ast.Call] = []
    _collect_calls(node, found)
    return found


def _collect_calls(node: ast.AST, found: list[ast.Call]) -> None:
    """The calls in ``node`` in the order Python runs them (source order,
    arguments before the call that takes them), lambdas not entered."""
    if isinstance(node, ast.Lambda):
        return
    if isinstance(node, ast.Call):
        children: list = [node.func, *node.args, *node.keywords]
        if node.args and node.keywords:  # `f(a=1, *b)`: in the order they are written
            children[1:] = sorted(children[1:], key=_position)
    elif isinstance(node, ast.IfExp):
        children = [node.body, node.test, node.orelse]
    elif isinstance(node, ast.Dict):
        children = [x for pair in zip(node.keys, node.values) for x in pair]
    else:
        children = [getattr(node, name, None) for name in node._fields]
    for child in children:
        if isinstance(child, list):
            for item in child:
                if isinstance(item, ast.AST):
                    _collect_calls(item, found)
        elif isinstance(child, ast.AST):
            _collect_calls(child, found)
    if isinstance(node, ast.Call):
        found.append(node)


def _position(node: ast.expr | ast.keyword) -> tuple[int, int]:
    return node.lineno, node.col_offset


def _returns(stmts: list[ast.stmt]) -> bool:
    return bool(stmts) and isinstance(stmts[-1], (ast.Return, ast.Raise))


def _is_self(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id == "self"
