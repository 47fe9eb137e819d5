"""Calls: functions, methods, rules (layers, functions, values), constructors, opaque callees."""

from __future__ import annotations

import ast
from typing import Any

from astgen import expr as E
from astgen import messages as M
from astgen import ir
from astgen.frontend.parse import ParsedModule
from astgen.rules import FunctionRule, RuleMethod
from astgen.trace.builtins import _BUILTIN_FUNCS
from astgen.trace.common import (
    MAX_DEPTH,
    Param,
    _arguments,
    _callee_name,
    _reads_config,
    _splat,
    _without_quant_config,
    signature,
)
from astgen.trace.config import _is_config_module
from astgen.trace.frame import Frame
from astgen.trace.objects import _BecomeLayer, _DictMethod, _Opaque, _Partial
from astgen.values import (
    BASE,
    Builtin,
    ClassRef,
    DictVal,
    FuncRef,
    Instance,
    ListVal,
    Phi,
    RuleFunc,
    RuleObject,
    TupleVal,
    fill_missing,
    has_missing,
    phi,
)


class Calls:
    """The tracer's calls: functions, methods, rules (layers, functions, values),
    constructors, opaque callees. A mixin of :class:`~astgen.trace.tracer.Tracer`."""

    def _instantiate(self, ref: ClassRef, args: list, kwargs: dict) -> Any:
        loc = self._here()
        if ref.info is not None and _is_config_module(ref.info.module.name) and not args \
                and self.rules.is_kind(ref.name, "namespaces"):
            # a sub-config (Qwen3_5Config's text_config) or a config model code builds:
            # read through to the raw config its keywords were splatted from
            given = dict(kwargs)
            root = given.pop(BASE, None)
            return self._new_config(ref.info, root if isinstance(root, E.Expr) else None, given)
        if ref.info is not None:
            node = ir.Node(ir.MODULE, ref.name, loc)
            inst = Instance(node, ref.info)
            if self.depth > MAX_DEPTH:
                self._diag(M.DEEP_CONSTRUCTION, loc, cls=ref.name)
                return inst
            self._construct_traced(inst, ref.info, args, kwargs, loc)
            node.fields = self._scalar_fields(inst)
            node.origin = tuple((c.module.name, c.name) for c in self._mro(ref.info))
            return inst
        if not args and self.rules.is_kind(ref.name, "containers"):  # nn.Module(): filled by attribute
            return Instance(ir.Node(ir.MODULE, ref.name, loc), None)
        if not args and self.rules.is_kind(ref.name, "namespaces"):  # LlamaConfig(**cfg.__dict__)
            return self._b_namespace([], kwargs)
        rule = self.rules.layer(ref.name)
        if rule is not None and rule.category != "param":
            node = ir.Node(ir.LAYER, ref.name, loc, args=self._bind_layer_args(rule, args, kwargs))
            node.unquantized = _without_quant_config(node.args)
            return Instance(node, None)
        if self.rules.is_ignored(ref.name):
            return Instance(ir.Node(ir.IGNORED, ref.name, loc), None)
        return Instance(ir.Node(ir.UNKNOWN, ref.name, loc), None)

    def _bind_layer_args(self, rule, args: list, kwargs: dict) -> dict[str, E.Expr]:
        params = rule.params_for(self.loader.version)
        bound: dict[str, E.Expr] = {}
        for name, value in zip(params, args):
            bound[name] = self._as_expr(value)
        if len(args) > len(params):
            bound["*extra"] = E.Unknown(f"{len(args) - len(params)} positional arguments beyond the rule's params")
        for name, value in kwargs.items():
            if has_missing(value):  # passed on some paths only: the rule's default on the others
                value = fill_missing(value, rule.defaults.get(name, E.NONE))
            bound[name] = self._as_expr(value)
        return bound

    # -- calling ------------------------------------------------------
    def _call(self, callee: Any, args: list, kwargs: dict, site: str) -> Any:
        if isinstance(callee, _Opaque):
            return self._call_opaque(callee, args, kwargs)
        if isinstance(callee, _Partial):
            return self._call(callee.fn, callee.args + args, {**callee.kwargs, **kwargs}, site)
        if isinstance(callee, _DictMethod):
            return callee.call(args)
        if isinstance(callee, RuleMethod):  # get_moe_a2a_backend().is_deepep()
            return callee.value
        if isinstance(callee, ClassRef):
            return self._instantiate(callee, args, kwargs)
        if isinstance(callee, FuncRef):
            return self._call_function(callee, args, kwargs)
        if isinstance(callee, RuleFunc):
            return self._call_rule(callee.rule, args, kwargs)
        if isinstance(callee, Builtin):
            return self._call_builtin(callee.name, args, kwargs, site)
        if isinstance(callee, Phi):  # each side gets its own copy (a call consumes its keywords)
            a = self._call(callee.then, list(args), dict(kwargs), site)
            b = self._call(callee.orelse, list(args), dict(kwargs), site)
            return phi(callee.test, a, b)
        if isinstance(callee, Instance) and callee.cls is not None:
            _, call = self._find_method(callee.cls, "__call__")
            if call is not None:
                return self._call_function(FuncRef(call, callee.cls.module, bound=callee), args, kwargs)
        if isinstance(callee, E.Expr) and _reads_config(callee) and not site[:1].isupper():
            # a method of a value made of the config (`split[rank].tolist()`); a class
            # (`ATTENTION_CLASSES[config.impl](...)`) is built below, as an unknown layer
            return E.Unknown(f"call of {site}", given_config=True, call=site)
        return self._call_unresolved(site, args, kwargs)

    def _call_unresolved(self, name: str, args: list, kwargs: dict) -> Any:
        """A callee nothing describes. A CamelCase name is a class: it becomes
        a node, reported as an unknown layer if it is kept as a submodule."""
        if name[:1].isupper() and name.isidentifier():
            return self._instantiate(ClassRef(name), args, kwargs)
        if any(_reads_config(v) for v in [*args, *kwargs.values()]):
            # a helper astgen cannot read, asked about the checkpoint: not a server switch
            return E.Unknown(f"call of {name}", given_config=True, call=name)
        return E.Unknown(f"call of {name}", call=name)

    def _call_function(self, fn: FuncRef, args: list, kwargs: dict, new_guard: bool = False) -> Any:
        if self.depth > MAX_DEPTH:
            self._diag(M.DEEP_CALLS, self._here())
            return E.Unknown("call nesting too deep")
        params = signature(fn.node)
        scope: dict[str, Any] = dict(fn.closure or {})
        args = list(args)
        if fn.bound is not None and not fn.is_static:
            args = [fn.bound] + args
        defaults_module = fn.module
        for p in params.positional:
            pname = p.name
            if args:
                scope[pname] = args.pop(0)
            elif pname in kwargs:
                scope[pname] = self._or_default(kwargs.pop(pname), p, defaults_module, scope)
            elif p.default is not None:
                scope[pname] = self._eval_in_module(p.default, defaults_module, scope)
            else:
                scope[pname] = self._missing_arg(pname)
        if params.star is not None:
            scope[params.star.name] = TupleVal(tuple(args))
        for p in params.keyword_only:
            pname = p.name
            if pname in kwargs:
                scope[pname] = self._or_default(kwargs.pop(pname), p, defaults_module, scope)
            elif p.default is not None:
                scope[pname] = self._eval_in_module(p.default, defaults_module, scope)
            else:
                scope[pname] = self._missing_arg(pname)
        if params.star_keywords is not None:
            scope[params.star_keywords.name] = DictVal(dict(kwargs))
        inst = fn.bound if isinstance(fn.bound, Instance) else None
        guard = E.TRUE if new_guard or self.frame is None else self.frame.guard
        frame = Frame(fn.module, scope, inst, fn.owner, guard)
        if not isinstance(fn.node, ast.Lambda):
            frame.line = fn.node.lineno
        elif self.frame is not None:
            frame.line = self.frame.line
        return self._run(frame, fn.node)

    def _or_default(self, value: Any, param: Param, module: ParsedModule, scope: dict) -> Any:
        """A keyword argument that only some paths pass (``**(dict(x=1) if c
        else {})``): the parameter's default on the others."""
        if not has_missing(value):
            return value
        default = (self._eval_in_module(param.default, module, scope) if param.default is not None
                   else self._missing_arg(param.name))
        return fill_missing(value, default)

    def _missing_arg(self, pname: str) -> Any:
        if pname in self.rules.entry:
            return self.rules.entry[pname]
        return E.Unknown(f"argument {pname} not given")

    def _run(self, frame: Frame, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> Any:
        saved, self.frame = self.frame, frame
        self.depth += 1
        try:
            if isinstance(node, ast.Lambda):
                return self._eval(node.body)
            result = self._exec_block(node.body)
            return E.NONE if result is None else result.value
        finally:
            self.depth -= 1
            self.frame = saved

    def _call_rule(self, rule: FunctionRule, args: list, kwargs: dict) -> Any:
        if rule.kind == "object":
            return RuleObject(rule.target)
        if rule.kind == "class":
            return ClassRef(rule.target)
        if rule.kind == "builtin":
            return self._call_builtin(rule.target, args, kwargs, rule.name)
        mapping = {}
        for pname, value in zip(rule.params, args):
            mapping[pname] = value
        mapping.update({k: v for k, v in kwargs.items() if k in rule.params})
        env = {k: self._as_expr(v) for k, v in mapping.items()}
        value = E.simplify(E.substitute(rule.value, env))
        return self._from_expr(value)

    def _from_expr(self, value: E.Expr) -> Any:
        if isinstance(value, E.Tuple):
            return TupleVal(tuple(self._from_expr(v) for v in value.items))
        return value

    def _e_Call(self, node: ast.Call) -> Any:
        callee = self._eval(node.func)
        args: list = []
        kwargs: dict = {}
        for how, arg in _arguments(node):
            value = self._eval(arg)
            if how == "*":
                args.extend(value.items if isinstance(value, (ListVal, TupleVal)) else [])
            elif how == "**":
                splat = _splat(value)
                if not splat and not isinstance(value, DictVal):
                    splatted = _callee_name(arg)
                    self._diag(M.ASSUMED_KWARGS, self._here(), callee=splatted or "a value",
                               construct=splatted or "a ** argument")
                kwargs.update(splat)
            elif how:
                kwargs[how] = value
            else:
                args.append(value)
        site = _callee_name(node.func)
        if isinstance(callee, _BecomeLayer):
            rule = self.rules.layer(callee.name)
            node = callee.inst.node
            node.kind, node.args = ir.LAYER, self._bind_layer_args(rule, args, kwargs)
            node.cls = callee.name
            return E.NONE
        return self._call(callee, args, kwargs, site)

    def _call_opaque(self, callee: "_Opaque", args: list, kwargs: dict) -> Any:
        name = callee.name
        if name in _BUILTIN_FUNCS:
            return self._call_builtin(_BUILTIN_FUNCS[name], args, kwargs, name)
        if name in self.rules.functions:
            return self._call_rule(self.rules.functions[name], args, kwargs)
        return self._call_unresolved(name, args, kwargs)  # torch.cuda.Stream() ...

    def _e_Lambda(self, node: ast.Lambda) -> Any:
        return FuncRef(node, self.frame.module, closure=dict(self.frame.locals),
                       bound=None)
