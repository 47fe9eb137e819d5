"""Builtins: the Python and torch callables the tracer evaluates (getattr,
range, ModuleList, ...)."""

from __future__ import annotations

from typing import Any

from astgen import expr as E
from astgen import ir
from astgen.trace.common import LAYER_VAR, _is_config, _reads_config
from astgen.trace.config import NOT_CONFIG
from astgen.trace.objects import _Layers, _Partial
from astgen.values import (
    BASE,
    MISSING,
    Builtin,
    ConfigObject,
    DictVal,
    IndexText,
    Instance,
    LayerPrefix,
    ListVal,
    NamespaceVal,
    Phi,
    RangeVal,
    Repeated,
    SuperRef,
    TupleVal,
)

_NUMERIC = frozenset({"max", "min", "int", "float", "abs", "bool"})


_CONSTANTS = {"True": E.TRUE, "False": E.FALSE, "None": E.NONE}


_BUILTIN_FUNCS = {
    "getattr": "getattr", "hasattr": "hasattr", "isinstance": "isinstance", "max": "max",
    "min": "min", "int": "int", "float": "float", "abs": "abs", "bool": "bool", "sum": "sum",
    "len": "len", "range": "range", "dict": "dict", "list": "list", "tuple": "tuple", "str": "str",
    "frozenset": "tuple", "set": "tuple",  # membership tests only: a set of constants as a tuple
    "super": "super", "partial": "partial", "ModuleList": "ModuleList", "ModuleDict": "ModuleDict",
    "SimpleNamespace": "namespace", "vars": "vars",
    "Sequential": "Sequential", "Parameter": "Parameter", "empty": "tensor_new",
    "zeros": "tensor_new", "ones": "tensor_new", "randn": "tensor_new", "tensor": "tensor_new",
}


def builtin_names() -> frozenset[str]:
    """Every builtin the tracer implements: what rules/ may name
    (``builtin:X`` of [functions], the values of [builtins])."""
    return _NUMERIC | frozenset(name[3:] for name in dir(Builtins) if name.startswith("_b_"))


class Builtins:
    """The tracer's builtins: the Python and torch callables the tracer evaluates
    (getattr, range, ModuleList, ...). A mixin of
    :class:`~astgen.trace.tracer.Tracer`."""

    # -- builtins -----------------------------------------------------
    def _call_builtin(self, name: str, args: list, kwargs: dict, site: str) -> Any:
        if name in _NUMERIC:
            return self._numeric(name, args)
        handler = getattr(self, f"_b_{name}", None)
        if handler is None:
            return E.Unknown(f"call of {site}", call=site)
        return handler(args, kwargs)

    def _b_str(self, args: list, kwargs: dict) -> Any:
        """``str(x)`` of a value of the config, and ``.lower()`` of it
        (``str(getattr(config, "markov_head_type", "vanilla")).lower()``,
        dspark.py:392): expressions the emitted code evaluates as sglang does."""
        if len(args) == 1 and not kwargs and isinstance(args[0], E.Expr) and not E.unknowns(args[0]):
            return E.simplify(E.Call("str", (args[0],)))
        return E.Unknown("call of str", given_config=any(_reads_config(a) for a in args), call="str")

    def _b_str_lower(self, args: list, kwargs: dict) -> Any:
        return E.simplify(E.Call("str.lower", (args[0],)))

    def _b_str_strip(self, args: list, kwargs: dict) -> Any:
        return E.simplify(E.Call("str.strip", (args[0],))) if len(args) == 1 and not kwargs \
            else E.Unknown("call of strip", given_config=True, call="strip")

    def _b_str_split(self, args: list, kwargs: dict) -> Any:
        """``text.split(",")`` of a config string: the list of its parts."""
        if len(args) == 2 and not kwargs and isinstance(args[1], E.Const) and isinstance(args[1].value, str):
            return E.simplify(E.Call("str.split", (args[0], args[1])))
        return E.Unknown("call of split", given_config=True, call="split")

    def _b_namespace(self, args: list, kwargs: dict) -> Any:
        fields = {k: v for k, v in kwargs.items() if k != BASE}
        return NamespaceVal(fields, kwargs.get(BASE))

    def _b_vars(self, args: list, kwargs: dict) -> Any:
        return args[0] if args else E.Unknown("vars()")

    def _b_identity(self, args: list, kwargs: dict) -> Any:
        if args and isinstance(args[0], ConfigObject):  # copy.copy(config): a new object to modify
            c = args[0]
            return ConfigObject(c.node, c.cls, dict(c.attrs), root=c.root, overrides=c.overrides)
        return args[0] if args else E.Unknown("copy of nothing")

    def _b_cast(self, args: list, kwargs: dict) -> Any:
        return args[1] if len(args) > 1 else E.Unknown("cast of nothing")

    def _b_getattr(self, args: list, kwargs: dict) -> Any:
        if len(args) < 2 or not isinstance(args[1], E.Const) or not isinstance(args[1].value, str):
            return E.Unknown("getattr with a computed name")
        obj, attr = args[0], args[1].value
        default = args[2] if len(args) > 2 else MISSING
        value = self.member(obj, attr, default)  # the config model (astgen.trace.config)
        if value is not NOT_CONFIG:
            return value
        value = self._getattr(obj, attr)
        if isinstance(value, E.Unknown) and default is not MISSING:
            return default
        return value

    def _b_hasattr(self, args: list, kwargs: dict) -> Any:
        if len(args) == 2 and isinstance(args[1], E.Const) and isinstance(args[1].value, str):
            present = self.has_member(args[0], args[1].value)  # the config model (astgen.trace.config)
            if present is not NOT_CONFIG:
                return present
        if len(args) == 2 and isinstance(args[0], Instance) and isinstance(args[1], E.Const):
            if args[0].cls is not None:
                return E.Const(args[1].value in args[0].attrs)
        return E.Unknown("hasattr on an object")

    def _b_isinstance(self, args: list, kwargs: dict) -> Any:
        if len(args) == 2 and isinstance(args[0], E.Expr) and _is_config(args[0]) \
                and isinstance(args[1], Builtin) and args[1].name == "dict":
            # The config itself is an object (configs/model_config.py's _hf_attr); a
            # JSON object in it that no config class converts (dflash_config, or
            # text_config as a config class's __init__ receives it) is a dict.
            key = args[0].name if isinstance(args[0], (E.Attr, E.GetAttr)) else ""
            return E.Const(key.endswith("_config"))
        return E.Unknown("isinstance")

    def _numeric(self, fname: str, args: list) -> E.Expr:
        """max/min/int/float/abs/bool: a pure Call expression (max(xs) too)."""
        if fname == "int" and len(args) == 1 and isinstance(args[0], IndexText):
            return args[0].index
        if len(args) == 1 and isinstance(args[0], (ListVal, TupleVal)):
            args = list(args[0].items)
        return E.simplify(E.Call(fname, tuple(self._as_expr(a) for a in args)))

    def _b_sum(self, args: list, kwargs: dict) -> Any:
        if len(args) == 1 and isinstance(args[0], (ListVal, TupleVal)):
            total: E.Expr = E.Const(0)
            for item in args[0].items:
                total = E.simplify(E.BinOp("+", total, self._as_expr(item)))
            return total
        return E.Unknown("sum of a non-literal list")

    def _b_len(self, args: list, kwargs: dict) -> Any:
        if len(args) == 1 and isinstance(args[0], (ListVal, TupleVal)):
            return E.Const(len(args[0].items))
        if len(args) == 1 and isinstance(args[0], Repeated):
            return args[0].count
        if len(args) == 1 and isinstance(args[0], Phi):
            then, orelse = self._b_len([args[0].then], {}), self._b_len([args[0].orelse], {})
            return E.simplify(E.IfExp(args[0].test, self._as_expr(then), self._as_expr(orelse)))
        return E.simplify(E.Call("len", (self._as_expr(args[0]),))) if args else E.Unknown("len()")

    def _b_range(self, args: list, kwargs: dict) -> Any:
        return RangeVal(tuple(self._as_expr(a) for a in args))

    def _b_dict(self, args: list, kwargs: dict) -> Any:
        base = dict(args[0].items) if args and isinstance(args[0], DictVal) else {}
        base.update(kwargs)
        return DictVal(base)

    def _b_list(self, args: list, kwargs: dict) -> Any:
        if args and isinstance(args[0], (ListVal, TupleVal)):
            return ListVal(list(args[0].items))
        return ListVal([]) if not args else E.Unknown("list() of a non-literal")

    def _b_tuple(self, args: list, kwargs: dict) -> Any:
        if args and isinstance(args[0], (ListVal, TupleVal)):
            return TupleVal(tuple(args[0].items))
        if args and isinstance(args[0], E.Expr) and _is_list(args[0]):  # set(nonzero_indices(flags))
            return args[0]
        if args and isinstance(args[0], Phi):  # a list of the config, or [] where it has none
            sides = [self._b_tuple([side], {}) for side in (args[0].then, args[0].orelse)]
            if all(isinstance(v, TupleVal) or isinstance(v, E.Expr) and _is_list(v) for v in sides):
                return E.simplify(E.IfExp(args[0].test, *(self._as_expr(v) for v in sides)))
        return TupleVal(()) if not args else E.Unknown("tuple() of a non-literal")

    def _b_super(self, args: list, kwargs: dict) -> Any:
        f = self.frame
        if f is None or f.self_inst is None or f.owner is None:
            return E.Unknown("super() outside a method")
        return SuperRef(f.self_inst, f.owner)

    def _b_partial(self, args: list, kwargs: dict) -> Any:
        if not args:
            return E.Unknown("partial()")
        fn, bound_args = args[0], list(args[1:])
        return _Partial(fn, bound_args, dict(kwargs))

    def _b_add_prefix(self, args: list, kwargs: dict) -> Any:
        parts = [self._as_expr(a) for a in args[:2]]
        if len(parts) == 2 and all(isinstance(p, E.Const) for p in parts):
            name, prefix = (str(p.value) for p in parts)
            return E.Const(f"{prefix}.{name}" if prefix else name)
        return E.Const("")

    def _b_ModuleList(self, args: list, kwargs: dict) -> Any:
        if not args:
            return ListVal([])
        return args[0]

    def _b_ModuleDict(self, args: list, kwargs: dict) -> Any:
        if args and isinstance(args[0], DictVal):
            return DictVal(dict(args[0].items))
        return DictVal({})

    def _b_Sequential(self, args: list, kwargs: dict) -> Any:
        return ListVal(list(args))

    def _b_make_layers(self, args: list, kwargs: dict) -> Any:
        n = args[0] if args else kwargs.get("num_hidden_layers")
        fn = args[1] if len(args) > 1 else kwargs.get("layer_fn")
        if n is None or fn is None:
            return E.Unknown("make_layers without a count or layer function")
        index = E.Name(LAYER_VAR)
        item = self._call(fn, [], {"idx": index, "prefix": LayerPrefix(index)}, "layer_fn")
        return _Layers(Repeated(item, self._as_expr(n), LAYER_VAR), self._as_expr(n))

    def _b_config_get(self, args: list, kwargs: dict) -> Any:
        """``config.eagle_config.get("key", default)`` on a JSON object of the config."""
        if len(args) < 2 or not isinstance(args[1], E.Const):
            return E.Unknown("get with a computed key")
        obj, key = args[0], args[1]
        default = self._as_expr(args[2]) if len(args) > 2 else E.NONE
        return E.IfExp(E.Compare("in", key, obj), E.Index(obj, key), default)

    def _b_split_prefix(self, args: list, kwargs: dict) -> Any:
        """``prefix.rsplit(".", 1)`` of a layer prefix: [the list's name, the index as text]."""
        return ListVal([E.Const(""), IndexText(args[0].index)])

    def _b_record(self, args: list, kwargs: dict) -> Any:
        """A plain record of the call's keyword arguments (rules: builtin:record)."""
        return DictVal(dict(kwargs))

    def _b_Parameter(self, args: list, kwargs: dict) -> Any:
        data = args[0] if args else kwargs.get("data")
        shape = data.items if isinstance(data, TupleVal) else ()
        node = ir.Node(ir.PARAM, "Parameter", self._here(),
                       args={f"dim{i}": self._as_expr(d) for i, d in enumerate(shape)})
        return Instance(node, None)

    def _b_tensor_new(self, args: list, kwargs: dict) -> Any:
        if len(args) == 1 and isinstance(args[0], (TupleVal, ListVal)):
            return TupleVal(tuple(args[0].items))
        return TupleVal(tuple(args))


def _is_list(e: E.Expr) -> bool:
    """An expression whose value is a list (a call of one of E.LIST_FUNCS)."""
    if isinstance(e, E.IfExp):
        return _is_list(e.body) and _is_list(e.orelse)
    return isinstance(e, E.Tuple) or isinstance(e, E.Call) and e.func in E.LIST_FUNCS
