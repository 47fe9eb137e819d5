"""Statements: blocks, if/match with guards (fork and merge of locals), loops,
assignments, attaching modules to the IR."""

from __future__ import annotations

from typing import Any, Callable, Iterable

import libcst as cst

from astgen import expr as E
from astgen import messages as M
from astgen import ir
from astgen.frontend.parse import import_bindings
from astgen.trace.common import (
    MC,
    _assigned_modules,
    _modules_built_in,
    _body,
    _callee_name,
    _config_unknowns,
    _hangs_on_the_config,
    _is_config,
    _Return,
    _root_of,
    _unpack,
)
from astgen.trace.expressions import _AUG_OPS
from astgen.trace.objects import _Layers
from astgen.values import (
    MAX_UNROLL,
    ConfigObject,
    DictVal,
    FuncRef,
    Instance,
    ListVal,
    NamespaceVal,
    Phi,
    RangeVal,
    Repeated,
    TupleVal,
    phi,
)


class Statements:
    """The tracer's statements: blocks, if/match with guards (fork and merge of
    locals), loops, assignments, attaching modules to the IR. A mixin of
    :class:`~astgen.trace.tracer.Tracer`."""

    # -- statements ---------------------------------------------------
    def _exec_block(self, stmts: Iterable[cst.CSTNode]) -> _Return | None:
        stmts = list(stmts)
        for i, stmt in enumerate(stmts):
            self.frame.line = self.frame.module.loc(stmt).line or self.frame.line
            try:
                if isinstance(stmt, cst.If):
                    result = self._exec_if(stmt, stmts[i + 1:])
                elif isinstance(stmt, cst.Match):
                    result = self._exec_cases(self._eval(stmt.subject), list(stmt.cases), stmts[i + 1:])
                else:
                    result = self._exec_stmt(stmt)
            except _Return as ret:  # a value from here on: its traceback would hold every frame up to
                return ret.with_traceback(None)  # the caller's, in a cycle (workers run without the collector)
            except (RecursionError, TypeError, ValueError, AttributeError,
                    KeyError, IndexError, ZeroDivisionError, OverflowError) as exc:
                self._diag(M.TRACER_ERROR, self._here(), error=type(exc).__name__, detail=str(exc),
                           statement=type(stmt).__name__)
                continue
            if result is not None:
                return result
        return None

    def _exec_stmt(self, stmt: cst.CSTNode) -> _Return | None:
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                self._exec_small(small)
            return None
        if isinstance(stmt, cst.For):
            return self._exec_for(stmt)
        if isinstance(stmt, cst.With):
            return self._exec_block(_body(stmt.body))
        if isinstance(stmt, cst.Try):
            return self._exec_block(_body(stmt.body))
        if isinstance(stmt, (cst.FunctionDef,)):
            self.frame.locals[stmt.name.value] = FuncRef(stmt, self.frame.module, closure=dict(self.frame.locals))
            return None
        return None  # while loops, classes in functions: nothing to build

    def _exec_small(self, small: cst.BaseSmallStatement) -> None:
        if isinstance(small, cst.Return):
            raise _Return(self._eval(small.value) if small.value is not None else E.NONE)
        if isinstance(small, cst.Assign):
            value = self._eval(small.value)
            for target in small.targets:
                self._assign(target.target, value)
        elif isinstance(small, cst.AnnAssign) and small.value is not None:
            self._assign(small.target, self._eval(small.value))
        elif isinstance(small, cst.AugAssign):
            op = _AUG_OPS.get(type(small.operator))
            current = self._eval(small.target)
            value = self._binop(op, current, self._eval(small.value)) if op else E.Unknown("augmented assignment")
            self._assign(small.target, value)
        elif isinstance(small, cst.Expr):
            self._eval(small.value)
        elif isinstance(small, (cst.Import, cst.ImportFrom)):
            self._local_import(small)

    def _local_import(self, small: cst.Import | cst.ImportFrom) -> None:
        for local, ref in import_bindings(small, self.frame.module.name).items():
            self.frame.locals[local] = self._import_value(ref)

    def _exec_if(self, stmt: cst.If, rest: list) -> _Return | None:
        value = self._eval(stmt.test)
        test = self._truth(value)
        orelse = stmt.orelse
        if orelse is None:
            else_body: list = []
        elif isinstance(orelse, cst.If):
            else_body = [orelse]  # elif
        else:
            else_body = _body(orelse.body)
        if isinstance(test, E.Const):
            skipped = else_body if test.value else _body(stmt.body)
            self._report_structural_assumption(value, skipped)
            return self._exec_block(_body(stmt.body) if test.value else else_body)
        # a test a config helper decides, taken both ways: whichever branch builds modules may not be
        self._report_structural_assumption(value, [*_body(stmt.body), *else_body])
        return self._fork(test, lambda: self._exec_block(_body(stmt.body)),
                          lambda: self._exec_block(else_body), rest)

    def _report_structural_assumption(self, value: Any, skipped: list) -> None:
        """Code a test left out, or took both ways, where a helper astgen
        cannot read decides the test (given the config) and the code builds
        submodules: whether those weights exist is not known, so the entry is
        incomplete. Server switches (backends, platforms, environment) take
        their default path with a note, as before."""
        if not _hangs_on_the_config(value):
            return  # the skipped code is scanned (a CST walk) only where it matters
        calls = _config_unknowns(value)
        built = list(dict.fromkeys(a for stmt in skipped for a in _assigned_modules(stmt)))
        if built:
            self._assume_built(built, calls)

    def _exec_cases(self, subject: Any, cases: list[cst.MatchCase], rest: list) -> _Return | None:
        """``match``: the cases as an if/elif chain on ``subject == value``."""
        if not cases:
            return None
        case, others = cases[0], cases[1:]
        test = self._truth(self._pattern_test(subject, case.pattern))
        if case.guard is not None:
            test = E.and_(test, self._truth(self._eval(case.guard)))
        if isinstance(test, E.Const):
            return self._exec_block(_body(case.body)) if test.value else self._exec_cases(subject, others, rest)
        return self._fork(test, lambda: self._exec_block(_body(case.body)),
                          lambda: self._exec_cases(subject, others, []), rest)

    def _pattern_test(self, subject: Any, pattern: cst.MatchPattern) -> Any:
        if isinstance(pattern, cst.MatchValue):
            return self._compare("==", subject, self._eval(pattern.value))
        if isinstance(pattern, cst.MatchSingleton):
            return self._compare("is", subject, self._eval(pattern.value))
        if isinstance(pattern, cst.MatchOr):
            out: E.Expr = E.FALSE
            for element in pattern.patterns:
                out = E.or_(out, self._as_expr(self._pattern_test(subject, element.pattern)))
            return out
        if isinstance(pattern, cst.MatchAs) and pattern.pattern is None:
            if pattern.name is not None:
                self._assign(pattern.name, subject)
            return E.TRUE  # `case _:` / `case x:`
        return E.Unknown(f"match pattern {type(pattern).__name__}")

    def _fork(self, test: E.Expr, then: Callable, orelse: Callable, rest: list) -> _Return | None:
        """An ``if``: each branch from the state before it, under the guard
        and its test (or its negation); where both fall through, their end
        states merged under the test (astgen.trace.frame). A branch that
        returns leaves the statements after the ``if`` to the other."""
        frame = self.frame
        before = frame.state()
        r1 = self._under(test, then)
        after_then = frame.state()
        before.restore(frame)
        r2 = self._under(E.not_(test), orelse)
        if r1 is None and r2 is None:
            after_then.merge(test, frame.state()).restore(frame)
            return None
        if r1 is not None and r2 is not None:
            return _Return(phi(test, r1.value, r2.value))
        if r1 is not None:
            r_rest = self._under(E.not_(test), lambda: self._exec_block(rest))
            return _Return(phi(test, r1.value, r_rest.value if r_rest else E.NONE))
        after_then.restore(frame)
        r_rest = self._under(test, lambda: self._exec_block(rest))
        return _Return(phi(test, r_rest.value if r_rest else E.NONE, r2.value))

    def _under(self, test: E.Expr, run: Callable) -> Any:
        """``run()`` with the frame's guard and'ed with ``test``; the guard is
        the one before afterwards."""
        frame = self.frame
        base = frame.guard
        frame.guard = E.and_(base, test)
        try:
            return run()
        finally:
            frame.guard = base

    def _exec_for(self, stmt: cst.For) -> _Return | None:
        it = self._eval(stmt.iter)
        items = self._iter_items(it)
        if items is None and self._list_per_index(stmt, it):
            return None
        if items is None and self._overrides_from_items(stmt):
            return None
        if items is None:
            built = _modules_built_in(stmt.body)
            if built:  # a per-step module (nanbeige.py:165-179): how many is not known
                owner = self.frame.self_inst.node if self.frame.self_inst is not None else None
                self._skipped_loops.append((owner, tuple(built), self._here()))
            else:
                self._diag(M.SYMBOLIC_LOOP, self._here())
            return None
        for item in items[:MAX_UNROLL]:
            self._assign(stmt.target, item)
            result = self._exec_block(_body(stmt.body))
            if result is not None:
                return result
        return None

    def _list_per_index(self, stmt: cst.For, it: Any) -> bool:
        """``for i in range(n):`` whose body only appends to one empty local
        list, under ifs: the list becomes its element as an expression of i
        (Qwen3NextConfig.layers_block_type). Read per index, it is a
        layer-index predicate."""
        if not (isinstance(it, RangeVal) and len(it.args) == 1 and isinstance(stmt.target, cst.Name)):
            return False
        var = stmt.target.value
        saved = dict(self.frame.locals)
        self.frame.locals[var] = E.Name(var)
        try:
            found = self._appended(_body(stmt.body))
        finally:
            self.frame.locals.clear()
            self.frame.locals.update(saved)
        if found is None:
            return False
        target, element = found
        current = self.frame.locals.get(target)
        if not (isinstance(current, ListVal) and not current.items) or not _per_index(element):
            return False
        element = E.simplify(element) if isinstance(element, E.Expr) else element
        self.frame.locals[target] = Repeated(element, it.args[0], var)
        return True

    def _overrides_from_items(self, stmt: cst.For) -> bool:
        """``for key, value in d.items(): setattr(obj, key, value)`` with ``d`` a
        JSON object of the config and ``obj`` a config object: every key of d
        replaces obj's attribute of that name (configs/nemotron_h.py:538-542)."""
        it, body = stmt.iter, _body(stmt.body)
        if not (isinstance(it, cst.Call) and isinstance(it.func, cst.Attribute) and it.func.attr.value == "items"
                and isinstance(stmt.target, cst.Tuple) and len(stmt.target.elements) == 2 and len(body) == 1
                and isinstance(body[0], cst.SimpleStatementLine) and len(body[0].body) == 1
                and isinstance(body[0].body[0], cst.Expr) and isinstance(body[0].body[0].value, cst.Call)):
            return False
        call = body[0].body[0].value
        key, value = (e.value for e in stmt.target.elements)
        if not (_callee_name(call.func) == "setattr" and len(call.args) == 3
                and isinstance(call.args[1].value, cst.Name) and isinstance(call.args[2].value, cst.Name)
                and isinstance(key, cst.Name) and isinstance(value, cst.Name)
                and call.args[1].value.value == key.value and call.args[2].value.value == value.value):
            return False
        source, target = self._eval(it.func.value), self._eval(call.args[0].value)
        if not (isinstance(target, ConfigObject) and isinstance(source, E.Expr) and _is_config(source)
                and not E.unknowns(source)):
            return False
        target.overrides = source
        return True

    def _appended(self, stmts: list) -> tuple[str, Any] | None:
        """(list name, element) of a block that is one ``xs.append(e)`` or an
        if/else of such blocks on the same list: a value, or a module (one of
        two by a test of the index: mllama.py:681-703)."""
        if len(stmts) != 1:
            return None
        stmt = stmts[0]
        if isinstance(stmt, cst.If):
            then = self._appended(_body(stmt.body))
            orelse = stmt.orelse
            other = (self._appended([orelse]) if isinstance(orelse, cst.If)
                     else self._appended(_body(orelse.body)) if orelse is not None else None)
            if then is None or other is None or then[0] != other[0]:
                return None
            test = self._truth(self._eval(stmt.test))
            return then[0], phi(test, then[1], other[1])
        if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1 and isinstance(stmt.body[0], cst.Expr):
            call = stmt.body[0].value
            if (isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute)
                    and call.func.attr.value == "append" and isinstance(call.func.value, cst.Name)
                    and len(call.args) == 1 and call.args[0].keyword is None and not call.args[0].star):
                value = self._eval(call.args[0].value)
                return call.func.value.value, value if _is_module(value) else self._as_expr(value)
        return None

    def _iter_items(self, it: Any) -> list | None:
        """The items a loop visits, when they are known; None otherwise."""
        if isinstance(it, RangeVal):
            return it.concrete()
        if isinstance(it, (ListVal, TupleVal)):
            return list(it.items)
        return None

    # -- assignment and module attachment -----------------------------
    def _assign(self, target: cst.BaseExpression, value: Any) -> None:
        if isinstance(target, cst.Name):
            self.frame.locals[target.value] = value
        elif isinstance(target, (cst.Tuple, cst.List)):
            values = _unpack(value, len(target.elements))
            for el, v in zip(target.elements, values):
                self._assign(el.value, v)
        elif isinstance(target, cst.Attribute):
            obj = self._eval(target.value)
            if isinstance(obj, Instance):
                self._set_attr(obj, target.attr.value, value)
            elif isinstance(obj, NamespaceVal):
                obj.fields[target.attr.value] = value
            elif isinstance(obj, E.Expr) and obj == MC:
                # ``mtp_config = copy.deepcopy(config); mtp_config.num_hidden_layers = 1``
                # (qwen3_next_mtp.py:66-68): what the code set is what it reads from then on
                attr = target.attr.value
                before = self._getattr(MC, attr) if self.frame.guard != E.TRUE else None
                self._mc_set[attr] = value if before is None else phi(self.frame.guard, value, before)
        elif isinstance(target, cst.Subscript):
            obj = self._eval(target.value)
            key = self._eval(target.slice[0].slice.value) if target.slice and isinstance(target.slice[0].slice, cst.Index) else None
            if isinstance(obj, DictVal) and isinstance(key, E.Const) and isinstance(key.value, str):
                obj.items[key.value] = value
                if obj.holder is not None:  # an nn.ModuleDict already attached to self
                    self._attach(obj.holder, key.value, value, self.frame.guard)

    def _set_attr(self, inst: Instance, attr: str, value: Any) -> None:
        if isinstance(value, _Layers):
            value = value.modules
        if attr in inst.attrs and _same_modules(inst.attrs[attr], value):
            return  # `self.lm_head = self.lm_head.float()`: the same module(s) again, nothing changes
        inst.attrs[attr] = value
        if inst.node.kind != ir.MODULE or (inst.cls is not None and self._plain_object(inst.cls)):
            return  # a helper object's attributes are no submodules (HcRead(layer) in deepseek_v4_boundary.py)
        if self.frame.guard == E.TRUE:  # an unconditional re-assignment replaces the module
            # (a subclass's __init__ swapping the self_attn its base built)
            inst.node.children = [c for c in inst.node.children if c.attr != attr]
        self._attach(inst.node, attr, value, self.frame.guard)

    def _attach(self, parent: ir.Node, attr: str, value: Any, guard: E.Expr) -> None:
        if isinstance(value, Phi):
            self._attach(parent, attr, value.then, E.and_(guard, value.test))
            self._attach(parent, attr, value.orelse, E.and_(guard, E.not_(value.test)))
            return
        if isinstance(value, ConfigObject):
            return  # `self.config = config`: a config is not a module
        if isinstance(value, Instance):
            node = value.node
            if node.parent is None and node is not parent and node is not _root_of(parent):
                parent.add(node, attr, guard)
            elif node.parent is not None and node is not parent and self._discarded(node):
                # ``self.text_model = CLIPTextModel(...).text_model`` (clip.py:549-555): the
                # local wrapper is garbage once __init__ returns, so its child moves here
                node.parent.children.remove(node)
                parent.add(node, attr, guard)
            elif node.parent is not None and node is not parent:
                alias = ir.Node(ir.ALIAS, node.cls, self._here(), target=node)
                parent.add(alias, attr, guard)
            return
        if isinstance(value, Repeated):
            if isinstance(value.item, E.Unknown):  # the items are modules we could not resolve
                self._diag(M.UNRESOLVED_ITEMS, self._here(), attr=attr or "a module list", why=value.item.why)
            holder = ir.Node(ir.LIST, "ModuleList", self._here(), repeat=value.count, repeat_var=value.var)
            parent.add(holder, attr, guard)
            self._attach(holder, "", value.item, E.TRUE)
            return
        if isinstance(value, DictVal) and (not value.items or any(
                isinstance(v, (Instance, Phi, Repeated)) for v in value.items.values())):
            holder = ir.Node(ir.LIST, "ModuleDict", self._here())
            parent.add(holder, attr, guard)
            value.holder = holder
            for key, item in value.items.items():
                self._attach(holder, key, item, E.TRUE)
            return
        if isinstance(value, ListVal) and any(isinstance(v, (Instance, Phi, Repeated)) for v in value.items):
            holder = ir.Node(ir.LIST, "ModuleList", self._here())
            parent.add(holder, attr, guard)
            for i, item in enumerate(value.items):
                self._attach(holder, str(i), item, E.TRUE)
            return

    def _discarded(self, node: ir.Node) -> bool:
        """``node`` hangs in a tree no module under construction holds: a
        wrapper a constructor built in a local and never attached."""
        root = _root_of(node)
        return root.kind == ir.MODULE and all(root is not b for b in self._building)


def _same_modules(old: Any, new: Any) -> bool:
    """Both the same module instances, under the same conditions."""
    if isinstance(old, Instance) or isinstance(new, Instance):
        return old is new
    if isinstance(old, Phi) and isinstance(new, Phi):
        return old.test == new.test and _same_modules(old.then, new.then) and _same_modules(old.orelse, new.orelse)
    return False


def _is_module(value: Any) -> bool:
    """A module, or one of modules by a test."""
    if isinstance(value, Phi):
        return _is_module(value.then) and _is_module(value.orelse)
    return isinstance(value, Instance)


def _per_index(element: Any) -> bool:
    """An element a list can hold per index: a resolved value, or modules."""
    return _is_module(element) if not isinstance(element, E.Expr) else not E.unknowns(element)
