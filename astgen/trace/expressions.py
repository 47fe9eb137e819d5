"""Expressions: literals, attributes, operators, comparisons, containers,
subscripts, comprehensions; a value as an expression or a guard."""

from __future__ import annotations

import ast
from typing import Any

from astgen import expr as E
from astgen import messages as M
from astgen import ir
from astgen.trace.common import (
    MC,
    _callee_name,
    _kind,
    _config_unknowns,
    _hangs_on_the_config,
    _in_data,
    _is_classmethod,
    _keep_config_unknowns,
    _is_config,
    _reads_config,
    _replace_unknowns,
    _select_by_key,
    _splat,
)
from astgen.trace.config import NOT_CONFIG
from astgen.trace.objects import _DictMethod, _Opaque, _Partial
from astgen.values import (
    MAX_UNROLL,
    MISSING,
    Builtin,
    ClassRef,
    DictVal,
    FuncRef,
    Instance,
    LayerPrefix,
    ListVal,
    ModuleRef,
    NamespaceVal,
    Phi,
    RangeVal,
    Repeated,
    RuleObject,
    SuperRef,
    TupleVal,
    phi,
)

_BIN_OPS = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**",
}


_AUG_OPS = {op: text for op, text in _BIN_OPS.items() if op is not ast.Pow}  # `x **= y` is not read


_CMP_OPS = {
    ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Is: "is",
    ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in",
}


_CONSTANT_NAMES = {True: "True", False: "False", None: "None"}


class Expressions:
    """The tracer's expressions: literals, attributes, operators, comparisons,
    containers, subscripts, comprehensions; a value as an expression or a guard. A
    mixin of :class:`~astgen.trace.tracer.Tracer`."""

    # -- expressions --------------------------------------------------
    def _eval(self, node: ast.expr) -> Any:
        method = getattr(self, "_e_" + type(node).__name__, None)
        if method is None:
            return E.Unknown(f"{_kind(node)} expression")
        return method(node)

    def _e_Constant(self, node: ast.Constant) -> Any:
        value = node.value
        if value is None or value is True or value is False:
            return self._lookup(_CONSTANT_NAMES[value])
        if isinstance(value, (str, int, float)):
            return E.Const(value)
        if isinstance(value, complex):
            return E.Unknown("complex literal")
        if isinstance(value, bytes):
            return E.Unknown("bytes literal")
        return E.Unknown(f"{_kind(node)} expression")  # `...`

    def _e_JoinedStr(self, node: ast.JoinedStr) -> Any:
        return E.Unknown("f-string")

    def _e_Attribute(self, node: ast.Attribute) -> Any:
        obj = self._eval(node.value)
        return self._getattr(obj, node.attr)

    def _getattr(self, obj: Any, attr: str) -> Any:
        if isinstance(obj, E.Unknown):
            return obj
        if isinstance(obj, E.Expr):
            if attr == "__dict__" and _is_config(obj):
                return obj
            if attr == "value" and isinstance(obj, E.Const) and obj.value in self._enum_values:
                return self._enum_values[obj.value]  # HybridLayerType.full_attention.value
            if attr == "get" and _is_config(obj) and obj != MC:  # a JSON object in the config: a dict
                return _Partial(Builtin("config_get"), [obj], {})
            if attr == "lower" and (isinstance(obj, E.Call) and obj.func == "str"
                                    or isinstance(obj, E.Const) and isinstance(obj.value, str)):
                return _Partial(Builtin("str_lower"), [obj], {})  # str(config value).lower()
            if attr in ("strip", "split") and (_is_config(obj) and obj != MC or isinstance(obj, E.Call)
                                               and obj.func in ("str", "str.strip")):
                return _Partial(Builtin(f"str_{attr}"), [obj], {})  # config.moe_layers_enum.split(",")
            if isinstance(obj, E.IfExp) and _is_config(obj.body) and _is_config(obj.orelse):
                # one of two configs (`config = config.text_config` on a branch): the attribute of each
                return phi(obj.test, self._getattr(obj.body, attr), self._getattr(obj.orelse, attr))
        value = self.member(obj, attr)  # the config model (astgen.trace.config)
        if value is not NOT_CONFIG:
            return value
        if isinstance(obj, E.Expr):
            return E.Unknown(f"attribute {attr} of a value")
        if isinstance(obj, Instance):
            if attr in obj.attrs:
                return obj.attrs[attr]
            if attr in self.rules.trace_kinds.get("returns_self", ()) and (obj.cls is None or self._find_method(
                    obj.cls, attr)[1] is None):  # `.float()`, `.to(device)`: the module itself
                return _Partial(Builtin("identity"), [obj], {})
            if obj.cls is not None:
                return self._method_or_class_attr(obj, obj.cls, attr)
            rule = self.rules.layer(obj.node.cls) if obj.node.kind == ir.LAYER else None
            if rule is not None and attr in rule.attrs:  # e.g. qkv_proj.num_heads, from rules/
                return E.simplify(E.substitute(rule.attrs[attr], rule.env(obj.node.args)))
            return E.Unknown(f"attribute {attr} of {obj.node.cls}")
        if isinstance(obj, ClassRef) and obj.info is not None:
            _, fn = self._find_method(obj.info, attr)
            if fn is not None:
                return FuncRef(fn, obj.info.module, bound=obj if _is_classmethod(fn) else None,
                               owner=obj.info, is_static=not _is_classmethod(fn))
            value = self._class_attr(obj.info, attr)
            return value if value is not MISSING else E.Unknown(f"attribute {attr} of {obj.name}")
        if isinstance(obj, SuperRef):
            owner, fn = self._find_method(obj.inst.cls, attr, after=obj.after)
            if fn is None and attr == "__init__":
                return self._layer_base(obj)
            if fn is None:
                return Builtin("noop")
            return FuncRef(fn, owner.module, bound=obj.inst, owner=owner)
        if isinstance(obj, NamespaceVal):
            if attr in obj.fields:
                return obj.fields[attr]
            return E.Attr(obj.base, attr) if obj.base is not None else E.Unknown(f"attribute {attr} of a namespace")
        if isinstance(obj, RuleObject):
            spec = self.rules.objects.get(obj.name, {}).get(attr)
            if isinstance(spec, str) and spec.startswith("object:"):
                return RuleObject(spec.split(":", 1)[1])
            if spec is None:  # a server argument this object carries: a switch
                spec = self.rules.switch_of(obj.name, attr)
            return spec if spec is not None else E.Unknown(f"{obj.name}.{attr}")
        if isinstance(obj, ModuleRef):
            return self._resolve_import(obj.dotted, attr)
        if isinstance(obj, _Opaque):
            return _Opaque(f"{obj.qualname}.{attr}", attr)
        if isinstance(obj, Phi):
            return phi(obj.test, self._getattr(obj.then, attr), self._getattr(obj.orelse, attr))
        if isinstance(obj, LayerPrefix) and attr in ("rsplit", "split"):
            return _Partial(Builtin("split_prefix"), [obj], {})
        if isinstance(obj, DictVal) and attr in ("get", "items", "update", "pop", "setdefault"):
            return _DictMethod(obj, attr)
        if isinstance(obj, DictVal) and attr in obj.items:  # a record (declare_ffn ...)
            return obj.items[attr]
        return E.Unknown(f"attribute {attr}")

    def _e_BinOp(self, node: ast.BinOp) -> Any:
        op = _BIN_OPS.get(type(node.op))
        left, right = self._eval(node.left), self._eval(node.right)
        if op is None:
            return E.Unknown(f"operator {_kind(node.op)}")
        return self._binop(op, left, right)

    def _binop(self, op: str, left: Any, right: Any) -> Any:
        if op == "*" and isinstance(left, ListVal) and isinstance(right, E.Const) and type(right.value) is int:
            return ListVal(left.items * max(0, min(right.value, MAX_UNROLL)))
        if op == "+" and isinstance(left, ListVal) and isinstance(right, ListVal):
            return ListVal(left.items + right.items)
        if op == "+" and isinstance(left, TupleVal) and isinstance(right, TupleVal):
            return TupleVal(left.items + right.items)
        return E.simplify(E.BinOp(op, self._as_expr(left), self._as_expr(right)))

    def _e_UnaryOp(self, node: ast.UnaryOp) -> Any:
        value = self._eval(node.operand)
        if isinstance(node.op, ast.Not):
            return E.not_(self._truth(value))
        if isinstance(node.op, ast.USub):
            return E.simplify(E.neg(self._as_expr(value)))
        if isinstance(node.op, ast.UAdd):
            return value
        return E.Unknown("unary operator")

    def _e_Compare(self, node: ast.Compare) -> Any:
        left = self._eval(node.left)
        result: E.Expr | None = None
        for operator, comparator in zip(node.ops, node.comparators):
            op = _CMP_OPS.get(type(operator))
            right = self._eval(comparator)
            if op is None:
                return E.Unknown("comparison")
            cmp = self._compare(op, left, right)
            result = cmp if result is None else E.and_(result, cmp)
            left = right
        return result

    def _compare(self, op: str, left: Any, right: Any) -> E.Expr:
        if isinstance(left, Phi):
            a, b = self._compare(op, left.then, right), self._compare(op, left.orelse, right)
            return E.simplify(E.IfExp(left.test, a, b))
        if op in ("is", "is not") and not isinstance(left, E.Expr) and isinstance(right, E.Const) and right.value is None:
            return E.Const(op == "is not")  # an object is never None
        if op in ("in", "not in") and isinstance(right, (ListVal, TupleVal, DictVal)):
            left_e = self._as_expr(left)
            keys = [E.Const(k) for k in right.items] if isinstance(right, DictVal) else right.items  # a dict's keys
            items = [self._as_expr(i) for i in keys]
            out: E.Expr = E.FALSE
            for item in items:
                out = E.or_(out, E.simplify(E.Compare("==", left_e, item)))
            return out if op == "in" else E.not_(out)
        if op in ("is", "is not") and isinstance(left, ClassRef) and isinstance(right, ClassRef):
            return E.Const((left.name == right.name) == (op == "is"))
        return E.simplify(E.Compare(op, self._as_expr(left), self._as_expr(right)))

    def _e_BoolOp(self, node: ast.BoolOp) -> Any:
        return self._bool_op(isinstance(node.op, ast.And), node.values)

    def _bool_op(self, is_and: bool, values: list[ast.expr]) -> Any:
        """``a and b and c`` as ``(a and b) and c``, operand by operand."""
        if len(values) == 1:
            return self._eval(values[0])
        left, last = self._bool_op(is_and, values[:-1]), values[-1]
        if not isinstance(left, E.Expr):
            # objects are truthy: `a or b` is a, `a and b` is b
            return self._eval(last) if is_and else left
        lt = self._truth(left)
        if isinstance(lt, E.Const):
            if bool(lt.value) != is_and:
                return left
            return self._eval(last)
        right = self._eval(last)
        if not isinstance(right, E.Expr):
            return phi(left, right, left) if is_and else phi(left, left, right)
        return E.simplify(E.BoolOp("and" if is_and else "or", left, right))

    def _assume_built(self, built: list[str], calls: list[str]) -> None:
        """Modules that may or may not be built, as ``calls`` (config helpers
        astgen cannot read) decide: reported once the towers are known."""
        owner = self.frame.self_inst.node if self.frame.self_inst is not None else None
        self._assumed_built.append((owner, tuple(built), tuple(calls), self._here()))

    def _e_IfExp(self, node: ast.IfExp) -> Any:
        value = self._eval(node.test)
        test = self._truth(value)
        if _hangs_on_the_config(value):  # `MixtralMLP(...) if idx in self.expert_indicies else None`
            built = sorted({name for branch in (node.body, node.orelse)
                            if isinstance(branch, ast.Call) and isinstance(branch.func, (ast.Name, ast.Attribute))
                            for name in [_callee_name(branch.func)]
                            if name[:1].isupper() and not self.rules.is_ignored(name)})
            if built:  # (mixtral_quant.py:124-138): whether it is built is the config's
                self._assume_built(built, _config_unknowns(value))
        if isinstance(test, E.Const):
            return self._eval(node.body if test.value else node.orelse)
        body, orelse = self._eval(node.body), self._eval(node.orelse)
        if isinstance(body, E.Expr) and isinstance(orelse, E.Expr):
            return E.simplify(E.IfExp(test, body, orelse))
        return phi(test, body, orelse)

    def _e_Tuple(self, node: ast.Tuple) -> Any:
        return TupleVal(tuple(self._elements(node.elts)))

    def _e_List(self, node: ast.List) -> Any:
        return ListVal(self._elements(node.elts))

    def _e_Set(self, node: ast.Set) -> Any:
        return ListVal(self._elements(node.elts))

    def _elements(self, elements: list[ast.expr]) -> list:
        out: list = []
        for el in elements:
            if isinstance(el, ast.Starred):
                value = self._eval(el.value)
                out.extend(value.items if isinstance(value, (ListVal, TupleVal)) else [])
            else:
                out.append(self._eval(el))
        return out

    def _e_Dict(self, node: ast.Dict) -> Any:
        out: dict = {}
        for key_node, value_node in zip(node.keys, node.values):
            if key_node is None:  # `**other`
                out.update(_splat(self._eval(value_node)))
                continue
            key = self._eval(key_node)
            if isinstance(key, E.Const) and isinstance(key.value, str):
                out[key.value] = self._eval(value_node)
        return DictVal(out)

    def _e_Subscript(self, node: ast.Subscript) -> Any:
        obj = self._eval(node.value)
        if isinstance(node.slice, (ast.Slice, ast.Tuple)):  # `x[1:]`, `x[a, b]`
            return E.Unknown("slice")
        return self._subscript(obj, self._eval(node.slice))

    def _subscript(self, obj: Any, key: Any) -> Any:
        if isinstance(obj, Phi):  # the raw key if set, else the list the config computes (HYV4Config)
            return phi(obj.test, self._subscript(obj.then, key), self._subscript(obj.orelse, key))
        if isinstance(obj, E.IfExp) and not E.unknowns(obj.test):
            return phi(obj.test, self._subscript(obj.body, key), self._subscript(obj.orelse, key))
        if isinstance(obj, (ListVal, TupleVal)) and isinstance(key, E.Const) and type(key.value) is int:
            try:
                return obj.items[key.value]
            except IndexError:
                return E.Unknown("index out of range")
        if isinstance(obj, DictVal) and isinstance(key, E.Const) and key.value in obj.items:
            return obj.items[key.value]
        if isinstance(obj, DictVal) and obj.items and isinstance(key, E.Expr) and not E.unknowns(key):
            return _select_by_key(key, obj.items)  # LAYER_TYPES[config.layer_types[idx]]
        if isinstance(obj, Repeated):
            if isinstance(obj.item, E.Expr) and isinstance(key, E.Expr):  # a per-index value: its element at key
                return E.simplify(E.substitute(obj.item, {obj.var: key}))
            return obj.item
        if isinstance(obj, RuleObject) and isinstance(key, E.Const) and isinstance(key.value, str):
            return self._getattr(obj, key.value)
        if isinstance(obj, E.Expr) and _is_config(obj) and isinstance(key, E.Expr) and not E.unknowns(key):
            return E.Index(obj, key)  # a per-layer config list: mc.intermediate_size[layer_id]
        return E.Unknown("subscript", given_config=_reads_config(obj) or _reads_config(key))

    def _e_ListComp(self, node: ast.ListComp) -> Any:
        return self._comprehension(node)

    def _e_GeneratorExp(self, node: ast.GeneratorExp) -> Any:
        return self._comprehension(node)

    def _e_SetComp(self, node: ast.SetComp) -> Any:  # membership tests only: a list will do
        return self._comprehension(node)

    def _comprehension(self, node: ast.ListComp | ast.GeneratorExp | ast.SetComp) -> Any:
        comp = node.generators[0]
        it = self._eval(comp.iter)
        # over a sequence of the checkpoint's config (enumerate(cfg["sparse_attention_freq"]),
        # model_config.py:460-464): what it gives is the config's, never a server switch's
        given_config = _reads_config(it) or isinstance(it, E.Expr) and any(u.given_config for u in E.unknowns(it))
        flagged = self._flagged_indices(node)
        if flagged is not None:
            return flagged
        if len(node.generators) > 1 or not isinstance(comp.target, ast.Name):
            return E.Unknown("nested comprehension", given_config=given_config)
        var = comp.target.id
        items = self._iter_items(it)
        saved = dict(self.frame.locals)
        try:
            if items is not None:
                out = []
                for item in items:
                    self.frame.locals[var] = item
                    if all(self._truth(self._eval(c)) != E.FALSE for c in comp.ifs):
                        out.append(self._eval(node.elt))
                return ListVal(out)
            if isinstance(it, RangeVal) and len(it.args) == 1:
                self.frame.locals[var] = E.Name(var)
                return Repeated(self._eval(node.elt), it.args[0], var)
            if isinstance(it, RangeVal) and len(it.args) == 2 and not comp.ifs and isinstance(node.elt, ast.Name) \
                    and node.elt.id == var:  # [i for i in range(1, n)]: the range, as a list
                return E.Call("range", it.args)
            if isinstance(it, E.Call) and it.func == "str.split" and not comp.ifs \
                    and _is_int_of(node.elt, var):  # [int(x) for x in text.split(",")]
                return E.Call("as_ints", (it,))
            return E.Unknown("comprehension over a symbolic sequence", given_config=given_config)
        finally:
            self.frame.locals.clear()
            self.frame.locals.update(saved)

    def _flagged_indices(self, node: ast.ListComp | ast.GeneratorExp | ast.SetComp) -> E.Expr | None:
        """``[i for i, f in enumerate(flags) if f != 0]`` (``== 0``) over a list of
        the config (configs/model_config.py:460-471, MiniMax-M3's sparse layers):
        ``nonzero_indices(flags)`` (``zero_indices``); None for another form."""
        comp = node.generators[0]
        target, it = comp.target, comp.iter
        if len(node.generators) > 1 or len(comp.ifs) != 1 or not isinstance(target, ast.Tuple) \
                or len(target.elts) != 2 or not all(isinstance(e, ast.Name) for e in target.elts) \
                or not (isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "enumerate"
                        and len(it.args) + len(it.keywords) == 1 and it.args
                        and not isinstance(it.args[0], ast.Starred)) \
                or not (isinstance(node.elt, ast.Name) and node.elt.id == target.elts[0].id):
            return None
        flags = self._eval(it.args[0])
        if not isinstance(flags, E.Expr) or E.unknowns(flags) or MC.id not in E.free_names(flags):
            return None  # (a list of the config, or of its `.get()`)
        index, flag = (e.id for e in target.elts)
        saved = dict(self.frame.locals)
        try:
            self.frame.locals.update({index: E.Name(index), flag: E.Name(flag)})
            test = self._eval(comp.ifs[0])
        finally:
            self.frame.locals.clear()
            self.frame.locals.update(saved)
        if isinstance(test, E.Compare) and test.left == E.Name(flag) and test.right == E.Const(0) \
                and test.op in ("!=", "=="):
            return E.Call("nonzero_indices" if test.op == "!=" else "zero_indices", (flags,))
        return None

    def _e_Await(self, node: ast.Await) -> Any:
        return E.Unknown("await")

    def _e_NamedExpr(self, node: ast.NamedExpr) -> Any:
        value = self._eval(node.value)
        self._assign(node.target, value)
        return value

    # -- helpers ------------------------------------------------------
    def _as_expr(self, value: Any) -> E.Expr:
        if isinstance(value, E.Expr):
            return value
        if isinstance(value, (ListVal, TupleVal)):
            return E.Tuple(tuple(self._as_expr(v) for v in value.items))
        if isinstance(value, Phi):
            return E.simplify(E.IfExp(value.test, self._as_expr(value.then), self._as_expr(value.orelse)))
        if isinstance(value, ClassRef):
            return E.Const(value.name)
        if value is None:
            return E.NONE
        if isinstance(value, LayerPrefix):
            return E.Const("")  # module names are not analyzed
        return E.Unknown(f"{type(value).__name__.lower()} used as a value")

    def _truth(self, value: Any) -> E.Expr:
        """A guard from a value: symbolic over mc/sc, or a constant.

        Opaque parts (server args, env switches) are read as None, sglang's
        default path, and the assumption is noted.
        """
        if not isinstance(value, E.Expr):
            return E.TRUE if value is not None else E.FALSE
        if not E.unknowns(value):
            return value
        if any(_in_data(x) for x in E.walk(value)):
            # a membership in what the checkpoint decides (`layer_id in moe_layers_idx`,
            # step3_vl.py:318-333): not known, never `in None`; what it guards is incomplete
            return E.simplify(_keep_config_unknowns(value))
        defaulted = E.simplify(_replace_unknowns(value))
        if not E.free_names(defaulted):
            try:
                defaulted = E.Const(bool(E.evaluate(defaulted, {})))
            except E.EvalError:
                defaulted = E.FALSE
        unknowns = E.unknowns(value)
        self._diag(M.ASSUMED_CONDITION, self._here(), whys=tuple(sorted({u.why for u in unknowns})),
                   constructs=tuple(sorted({f"{u.call}()" if u.call else u.why for u in unknowns})))
        if isinstance(defaulted, E.Const):
            return E.Const(bool(defaulted.value))
        return defaulted


def _is_int_of(elt: ast.expr, var: str) -> bool:
    """``int(var)``."""
    return isinstance(elt, ast.Call) and isinstance(elt.func, ast.Name) and elt.func.id == "int" \
        and len(elt.args) == 1 and not elt.keywords and isinstance(elt.args[0], ast.Name) and elt.args[0].id == var
