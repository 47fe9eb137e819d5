"""Statements: blocks, if/match with guards (fork and merge of locals), loops,
assignments, attaching modules to the IR."""

from __future__ import annotations

import ast
from typing import Any, Callable

from astgen import expr as E
from astgen import messages as M
from astgen import ir
from astgen.frontend.parse import import_bindings
from astgen.trace.common import (
    MC,
    _assigned_modules,
    _modules_built_in,
    _arguments,
    _callee_name,
    _config_unknowns,
    _hangs_on_the_config,
    _kind,
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
    def _exec_block(self, stmts: list[ast.stmt]) -> _Return | None:
        for i, stmt in enumerate(stmts):
            self.frame.line = stmt.lineno
            try:
                if isinstance(stmt, ast.If):
                    result = self._exec_if(stmt, stmts[i + 1:])
                elif isinstance(stmt, ast.Match):
                    result = self._exec_cases(self._eval(stmt.subject), stmt.cases, stmts[i + 1:])
                else:
                    result = self._exec_stmt(stmt)
            except _Return as ret:  # a value from here on: its traceback would hold every frame up to
                return ret.with_traceback(None)  # the caller's, in a cycle (workers run without the collector)
            except (RecursionError, TypeError, ValueError, AttributeError,
                    KeyError, IndexError, ZeroDivisionError, OverflowError) as exc:
                self._diag(M.TRACER_ERROR, self._here(), error=type(exc).__name__, detail=str(exc),
                           statement=_kind(stmt))
                continue
            if result is not None:
                return result
        return None

    def _exec_stmt(self, stmt: ast.stmt) -> _Return | None:
        if isinstance(stmt, ast.Return):
            raise _Return(self._eval(stmt.value) if stmt.value is not None else E.NONE)
        if isinstance(stmt, ast.Assign):
            value = self._eval(stmt.value)
            for target in stmt.targets:
                self._assign(target, value)
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            self._assign(stmt.target, self._eval(stmt.value))
        elif isinstance(stmt, ast.AugAssign):
            op = _AUG_OPS.get(type(stmt.op))
            current = self._eval(stmt.target)
            value = self._binop(op, current, self._eval(stmt.value)) if op else E.Unknown("augmented assignment")
            self._assign(stmt.target, value)
        elif isinstance(stmt, ast.Expr):
            self._eval(stmt.value)
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            self._local_import(stmt)
        elif isinstance(stmt, (ast.For, ast.AsyncFor)):
            return self._exec_for(stmt)
        elif isinstance(stmt, (ast.With, ast.AsyncWith, ast.Try)):
            return self._exec_block(stmt.body)
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            self.frame.locals[stmt.name] = FuncRef(stmt, self.frame.module, closure=dict(self.frame.locals))
        return None  # while loops, classes in functions: nothing to build

    def _local_import(self, stmt: ast.Import | ast.ImportFrom) -> None:
        for local, ref in import_bindings(stmt, self.frame.module.name).items():
            self.frame.locals[local] = self._import_value(ref)

    def _exec_if(self, stmt: ast.If, rest: list) -> _Return | None:
        value = self._eval(stmt.test)
        test = self._truth(value)
        else_body = stmt.orelse  # an elif is an if alone in it
        if isinstance(test, E.Const):
            skipped = else_body if test.value else stmt.body
            self._report_structural_assumption(value, skipped)
            return self._exec_block(stmt.body if test.value else else_body)
        # a test a config helper decides, taken both ways: whichever branch builds modules may not be
        self._report_structural_assumption(value, [*stmt.body, *else_body])
        return self._fork(test, lambda: self._exec_block(stmt.body),
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

    def _exec_cases(self, subject: Any, cases: list[ast.match_case], rest: list) -> _Return | None:
        """``match``: the cases as an if/elif chain on ``subject == value``."""
        if not cases:
            return None
        case, others = cases[0], cases[1:]
        test = self._truth(self._pattern_test(subject, case.pattern))
        if case.guard is not None:
            test = E.and_(test, self._truth(self._eval(case.guard)))
        if isinstance(test, E.Const):
            return self._exec_block(case.body) if test.value else self._exec_cases(subject, others, rest)
        return self._fork(test, lambda: self._exec_block(case.body),
                          lambda: self._exec_cases(subject, others, []), rest)

    def _pattern_test(self, subject: Any, pattern: ast.pattern) -> Any:
        if isinstance(pattern, ast.MatchValue):
            return self._compare("==", subject, self._eval(pattern.value))
        if isinstance(pattern, ast.MatchSingleton):
            return self._compare("is", subject, self._lookup(str(pattern.value)))
        if isinstance(pattern, ast.MatchOr):
            out: E.Expr = E.FALSE
            for element in pattern.patterns:
                out = E.or_(out, self._as_expr(self._pattern_test(subject, element)))
            return out
        if isinstance(pattern, ast.MatchAs) and pattern.pattern is None:
            if pattern.name is not None:
                self.frame.locals[pattern.name] = subject
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

    def _exec_for(self, stmt: ast.For | ast.AsyncFor) -> _Return | None:
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
            result = self._exec_block(stmt.body)
            if result is not None:
                return result
        return None

    def _list_per_index(self, stmt: ast.For | ast.AsyncFor, it: Any) -> bool:
        """``for i in range(n):`` whose body only appends to one empty local
        list, under ifs: the list becomes its element as an expression of i
        (Qwen3NextConfig.layers_block_type). Read per index, it is a
        layer-index predicate."""
        if not (isinstance(it, RangeVal) and len(it.args) == 1 and isinstance(stmt.target, ast.Name)):
            return False
        var = stmt.target.id
        saved = dict(self.frame.locals)
        self.frame.locals[var] = E.Name(var)
        try:
            found = self._appended(stmt.body)
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

    def _overrides_from_items(self, stmt: ast.For | ast.AsyncFor) -> bool:
        """``for key, value in d.items(): setattr(obj, key, value)`` with ``d`` a
        JSON object of the config and ``obj`` a config object: every key of d
        replaces obj's attribute of that name (configs/nemotron_h.py:538-542)."""
        it, body = stmt.iter, stmt.body
        if not (isinstance(it, ast.Call) and isinstance(it.func, ast.Attribute) and it.func.attr == "items"
                and isinstance(stmt.target, ast.Tuple) and len(stmt.target.elts) == 2 and len(body) == 1
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Call)):
            return False
        call = body[0].value
        key, value = stmt.target.elts
        args = [arg for _, arg in _arguments(call)]
        if not (_callee_name(call.func) == "setattr" and len(args) == 3
                and isinstance(args[1], ast.Name) and isinstance(args[2], ast.Name)
                and isinstance(key, ast.Name) and isinstance(value, ast.Name)
                and args[1].id == key.id and args[2].id == value.id):
            return False
        source, target = self._eval(it.func.value), self._eval(args[0])
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
        if isinstance(stmt, ast.If):
            then = self._appended(stmt.body)
            other = self._appended(stmt.orelse) if stmt.orelse else None
            if then is None or other is None or then[0] != other[0]:
                return None
            test = self._truth(self._eval(stmt.test))
            return then[0], phi(test, then[1], other[1])
        if isinstance(stmt, ast.Expr):
            call = stmt.value
            if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                    and call.func.attr == "append" and isinstance(call.func.value, ast.Name)
                    and len(call.args) == 1 and not call.keywords and not isinstance(call.args[0], ast.Starred)):
                value = self._eval(call.args[0])
                return call.func.value.id, value if _is_module(value) else self._as_expr(value)
        return None

    def _iter_items(self, it: Any) -> list | None:
        """The items a loop visits, when they are known; None otherwise."""
        if isinstance(it, RangeVal):
            return it.concrete()
        if isinstance(it, (ListVal, TupleVal)):
            return list(it.items)
        return None

    # -- assignment and module attachment -----------------------------
    def _assign(self, target: ast.expr, value: Any) -> None:
        if isinstance(target, ast.Name):
            self.frame.locals[target.id] = value
        elif isinstance(target, (ast.Tuple, ast.List)):
            values = _unpack(value, len(target.elts))
            for el, v in zip(target.elts, values):
                self._assign(el.value if isinstance(el, ast.Starred) else el, v)
        elif isinstance(target, ast.Attribute):
            obj = self._eval(target.value)
            if isinstance(obj, Instance):
                self._set_attr(obj, target.attr, value)
            elif isinstance(obj, NamespaceVal):
                obj.fields[target.attr] = value
            elif isinstance(obj, E.Expr) and obj == MC:
                # ``mtp_config = copy.deepcopy(config); mtp_config.num_hidden_layers = 1``
                # (qwen3_next_mtp.py:66-68): what the code set is what it reads from then on
                attr = target.attr
                before = self._getattr(MC, attr) if self.frame.guard != E.TRUE else None
                self._mc_set[attr] = value if before is None else phi(self.frame.guard, value, before)
        elif isinstance(target, ast.Subscript):
            obj = self._eval(target.value)
            key = None if isinstance(target.slice, (ast.Slice, ast.Tuple)) else self._eval(target.slice)
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
