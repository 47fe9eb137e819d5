"""Names and imports: locals, module globals, imports across files, what the rules know by name."""

from __future__ import annotations

import ast
from typing import Any

from astgen import expr as E
from astgen.frontend.parse import (
    ImportRef,
    ParsedModule,
    ParseFailure,
)
from astgen.frontend.registry import NOT_CONSTANT, module_constant
from astgen.trace.builtins import _BUILTIN_FUNCS, _CONSTANTS
from astgen.trace.frame import Frame
from astgen.trace.objects import _Opaque
from astgen.values import (
    Builtin,
    ClassRef,
    FuncRef,
    ModuleRef,
    RuleFunc,
)


class Names:
    """Names and imports: locals, module globals, imports across files, what the rules
    know by name; a mixin of :class:`~astgen.trace.tracer.Tracer`."""

    def _eval_in_module(self, node: ast.expr, module: ParsedModule, scope: dict | None = None) -> Any:
        saved = self.frame
        self.frame = Frame(module, dict(scope or {}), None, None, E.TRUE, saved.line if saved else 0)
        try:
            return self._eval(node)
        finally:
            self.frame = saved

    def _e_Name(self, node: ast.Name) -> Any:
        return self._lookup(node.id)

    def _lookup(self, name: str) -> Any:
        f = self.frame
        if f is not None and name in f.locals:
            return f.locals[name]
        if name in _CONSTANTS:
            return _CONSTANTS[name]
        module = f.module if f else None
        if module is not None:
            return self._module_global(module, name)
        return E.Unknown(f"name {name}")

    def _module_global(self, module: ParsedModule, name: str) -> Any:
        key = (module.name, name)
        if key in self._module_values:
            return self._module_values[key]
        self._module_values[key] = E.Unknown(f"name {name} (recursive definition)")
        value = self._resolve_global(module, name)
        self._module_values[key] = value
        return value

    def _resolve_global(self, module: ParsedModule, name: str) -> Any:
        if name in module.classes:
            return ClassRef(name, module.classes[name])
        if name in module.functions:
            if name in self.rules.functions:
                return RuleFunc(self.rules.functions[name])
            return FuncRef(module.functions[name], module)
        if name in module.assigns:
            return self._eval_in_module(module.assigns[name], module)
        if name in module.imports:
            return self._import_value(module.imports[name])
        if name in _BUILTIN_FUNCS:
            return Builtin(_BUILTIN_FUNCS[name])
        if name in self.rules.functions:
            return RuleFunc(self.rules.functions[name])
        return E.Unknown(f"name {name}")

    def _import_value(self, ref: ImportRef) -> Any:
        return self._resolve_import(ref.module, ref.name) if ref.name else ModuleRef(ref.module)

    def _traced_layer(self, module: str, name: str) -> "ClassRef | FuncRef | None":
        """A layer class or helper function that rules/ asks to trace like
        model code ([trace] classes, functions)."""
        try:
            pm = self.loader.load(module)
        except ParseFailure:
            return None
        ref = self._module_global(pm, name)
        return ref if isinstance(ref, ClassRef) and ref.info is not None or isinstance(ref, FuncRef) else None

    def _resolve_import(self, module: str, name: str) -> Any:
        if name in self.rules.values:
            return self._call_rule(self.rules.values[name], [], {})
        if name in self.rules.functions:
            return RuleFunc(self.rules.functions[name])
        if not module.startswith(self.loader.tree.models_package + ".") and name not in self.rules.traced \
                and (self.rules.layer(name) is not None or self.rules.is_ignored(name)):
            return self._external(module, name)  # a layer the rules know, even from a module traced for a helper
        target = self.loader.get(module)
        if target is not None:
            return self._module_global(target, name)
        submodule = self.loader.get(f"{module}.{name}")
        if submodule is not None:
            return ModuleRef(f"{module}.{name}")
        return self._external(module, name)

    def _external(self, module: str, name: str) -> Any:
        """A name from outside the traced model files: a rule, a builtin, a
        module constant (astroid), or opaque."""
        if name in self.rules.traced and module.startswith("sglang."):
            traced = self._traced_layer(module, name)
            if traced is not None:
                return traced
        if name.isupper() and module.startswith("sglang."):  # DEFAULT_VOCAB_PADDING_SIZE
            value = module_constant(self.loader.tree, module, name, self.loader.kept)
            if value is not NOT_CONSTANT:
                self.loader.track(module)
                return E.Const(value)
        if name in _BUILTIN_FUNCS and (module.startswith("torch") or module in ("functools", "builtins", "types")):
            return Builtin(_BUILTIN_FUNCS[name])
        if f"{module}.{name}" in self.rules.builtins:  # rules/minisgl.toml [builtins]
            return Builtin(self.rules.builtins[f"{module}.{name}"])
        if self.rules.layer(name) is not None or self.rules.is_ignored(name):
            return ClassRef(name)
        if name[:1].isupper():
            return ClassRef(name)
        return _Opaque(f"{module}.{name}", name)
