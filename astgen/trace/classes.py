"""The class model: MROs, method and class-attribute lookups, construction of a traced class."""

from __future__ import annotations

import ast
from typing import Any

from astgen import expr as E
from astgen.frontend.parse import (
    ClassInfo,
    Location,
    class_info,
)
from astgen.trace.common import _has_decorator, _is_classmethod, _is_enum, signature
from astgen.trace.config import _is_config_module
from astgen.trace.objects import _BecomeLayer, _Opaque
from astgen.values import (
    MISSING,
    Builtin,
    ClassRef,
    FuncRef,
    Instance,
    SuperRef,
)


class ClassModel:
    """The class model: MROs, method and class-attribute lookups, construction of a
    traced class; a mixin of :class:`~astgen.trace.tracer.Tracer`."""

    # -- construction -------------------------------------------------
    def _construct_traced(self, inst: Instance, info: ClassInfo, args: list, kwargs: dict,
                          loc: Location) -> None:
        owner, init = self._find_method(info, "__init__")
        if init is None:
            self._bind_fields(inst, info, args, kwargs)
            return
        fn = FuncRef(init, owner.module, bound=inst, owner=owner)
        self._building.append(inst.node)
        try:
            self._call_function(fn, args, kwargs, new_guard=True)
        finally:
            self._building.pop()

    def _bind_fields(self, inst: Instance, info: ClassInfo, args: list, kwargs: dict) -> None:
        """A dataclass/NamedTuple-like class: annotated fields in order."""
        fields = []
        for stmt in info.node.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                fields.append(stmt.target.id)
        for name, value in zip(fields, args):
            inst.attrs[name] = value
        inst.attrs.update(kwargs)

    def _mro(self, info: ClassInfo) -> list[ClassInfo]:
        """The class and its traced bases, depth first (asked at every method
        lookup: answered once per class)."""
        if info in self._mros:
            return self._mros[info]
        out: list[ClassInfo] = []
        self._visit_mro(info, 0, out)
        self._mros[info] = out
        return out

    def _visit_mro(self, c: ClassInfo, depth: int, out: list[ClassInfo]) -> None:
        if c in out or depth > 20:
            return
        out.append(c)
        for base in c.bases:
            ref = self._base(c, base)
            if isinstance(ref, ClassRef) and ref.info is not None:
                self._visit_mro(ref.info, depth + 1, out)

    def _base(self, c: ClassInfo, base: ast.expr) -> Any:
        """A base of class ``c``, as bound when the class statement runs:
        ``class LlamaDecoderLayer(LlamaDecoderLayer)`` (llama_eagle.py)
        derives from the imported class its own name then shadows."""
        ref = self._eval_in_module(base, c.module)
        if isinstance(ref, ClassRef) and ref.info is c and isinstance(base, ast.Name) \
                and base.id in c.module.imports:
            return self._import_value(c.module.imports[base.id])
        return ref

    def _plain_object(self, info: ClassInfo) -> bool:
        """A class whose hierarchy never leaves sglang's traced code: not an
        nn.Module (nor any library base), so torch registers nothing it holds.
        Asked at every attribute assignment: answered once per class."""
        key = id(info.node)
        if key not in self._plain:
            self._plain[key] = all(
                isinstance(ref, ClassRef) and ref.info is not None
                for c in self._mro(info) for ref in (self._base(c, b) for b in c.bases))
        return self._plain[key]

    def _find_method(self, info: ClassInfo, name: str, after: ClassInfo | None = None):
        mro = self._mro(info)
        if after is not None and after in mro:
            mro = mro[mro.index(after) + 1:]
        for c in mro:
            if name in c.methods:
                return c, c.methods[name]
        return None, None

    def _class_attr(self, info: ClassInfo, name: str) -> Any:
        for c in self._mro(info):
            for stmt in c.node.body:
                if isinstance(stmt, ast.ClassDef) and stmt.name == name:  # a nested class
                    return ClassRef(name, class_info(stmt, c.module))
                if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
                    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                    if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                        if _is_enum(c):  # an enum member is its own name: `Mode.SCATTERED`
                            member = f"{c.name}.{name}"
                            if member not in self._enum_values:
                                self._enum_values[member] = self._eval_in_module(stmt.value, c.module)
                            return E.Const(member)
                        return self._eval_in_module(stmt.value, c.module)
        return MISSING

    # -- sglang's config classes (sglang/srt/configs) -----------------
    # sglang loads many checkpoints through its own config classes, and model
    # code reads their computed attributes (Qwen3NextConfig.layers_block_type,
    # from full_attention_interval). The class's __init__ is traced once with
    # every parameter bound to the raw config.json key (mc.x); model code's
    # reads of mc then see, in order: what __init__ computed, the class's
    # properties and methods (run on that object), its attribute_map aliases,
    # its class-level defaults, and otherwise the raw key.

    def _annotated_config_class(self, info: ClassInfo) -> ClassInfo | None:
        """The config class the entry's ``__init__`` annotates ``config`` with,
        when it is one of sglang's own (``config: Qwen3NextConfig``)."""
        owner, init = self._find_method(info, "__init__")
        if init is None:
            return None
        params = signature(init)
        for p in [*params.positional[len(init.args.posonlyargs):], *params.keyword_only]:
            if p.name == "config" and p.annotation is not None:
                ref = self._eval_in_module(p.annotation, owner.module)
                if isinstance(ref, ClassRef) and ref.info is not None and _is_config_module(ref.info.module.name):
                    return ref.info
        return None

    def _layer_base(self, sup: SuperRef) -> Any:
        """``super().__init__`` reaching a layer class the rules know: the
        instance is that layer (a model-local subclass of, say, a linear)."""
        for c in self._mro(sup.inst.cls):
            for base in c.bases:
                ref = self._base(c, base)
                # a class outside sglang's code: by its name (`nn.Embedding` reads as an opaque torch name)
                name = ref.name if isinstance(ref, ClassRef) and ref.info is None else \
                    ref.name if isinstance(ref, _Opaque) else None
                if name is not None and self.rules.layer(name):
                    return _BecomeLayer(sup.inst, name)
        return Builtin("noop")

    def _method_or_class_attr(self, inst: Instance, info: ClassInfo, attr: str) -> Any:
        owner, fn = self._find_method(info, attr)
        if fn is not None:
            if _has_decorator(fn, "property") or _has_decorator(fn, "cached_property"):
                return self._call_function(FuncRef(fn, owner.module, bound=inst, owner=owner), [], {})
            static = _has_decorator(fn, "staticmethod")
            bound = ClassRef(info.name, info) if _is_classmethod(fn) else inst
            return FuncRef(fn, owner.module, bound=bound, owner=owner, is_static=static)
        value = self._class_attr(info, attr)
        return value if value is not MISSING else E.Unknown(f"attribute {attr} of {info.name}")
