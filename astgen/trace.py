"""Stage 3, trace: a small symbolic interpreter of sglang ``__init__`` bodies.

It walks the constructor of an entry class with ``config`` bound to the
symbol ``mc``, follows ``super().__init__``, inheritance and imports across
files, methods on ``self``, lambdas given to ``make_layers`` and
``ModuleList`` comprehensions, and records each module it sees constructed
as an IR node (:mod:`astgen.ir`). Nothing is imported or executed: values
are :mod:`astgen.expr` expressions or the small value classes below.

Conditions on config values or parallel sizes become guards; conditions on
anything the rules do not describe (environment switches, server args) take
sglang's default path (treated as off) and leave a note.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import libcst as cst

from astgen import expr as E
from astgen import ir
from astgen.parse import (
    ClassInfo,
    ImportRef,
    Location,
    ParsedModule,
    ParseFailure,
    class_info,
    import_bindings,
)
from astgen.loader import Loader  # noqa: F401 (the loader stage; re-exported for older callers)
from astgen.registry import NOT_CONSTANT, module_constant, registry_of
from astgen.rules import FunctionRule, RuleMethod, Rules, model_types_of
from astgen.values import (
    BASE,
    MAX_UNROLL,
    MISSING,
    Builtin,
    ClassRef,
    ConfigObject,
    DictVal,
    FuncRef,
    IndexText,
    Instance,
    LayerPrefix,
    ListVal,
    ModuleRef,
    NamespaceVal,
    Phi,
    RangeVal,
    Repeated,
    RuleFunc,
    RuleObject,
    SuperRef,
    TupleVal,
    fill_missing,
    has_missing,
    merge_dicts,
    phi,
)

MAX_DEPTH = 40
LAYER_VAR = "layer_id"
MC = E.Name("mc")  # the model config, as emitted code names it
CONFIG_NODE = "config"  # the node kind of a config object (never attached to the IR)

class _Return(Exception):
    def __init__(self, value: Any) -> None:
        self.value = value


@dataclass
class _Frame:
    module: ParsedModule
    locals: dict[str, Any]
    self_inst: Instance | None
    owner: ClassInfo | None
    guard: E.Expr = E.TRUE
    line: int = 0


# ----------------------------------------------------------------------------
# loading modules on demand


def config_class(loader: Loader, arch: str) -> ClassInfo | None:
    """sglang's own config class for checkpoints of ``arch``: its model_type
    (rules/model_types.toml) in sglang's config registry (:mod:`astgen.registry`);
    for an architecture transformers does not know, the registered class named
    after it; None when sglang loads it with transformers' class."""
    registry = registry_of(loader.tree)
    if registry.module:
        loader.track(registry.module)
    model_types = list(model_types_of(arch))
    if arch.endswith("ForCausalLM"):  # a text model of a multimodal family loads the text config
        model_types.sort(key=lambda t: not t.endswith("_text"))  # (qwen3_5_text before qwen3_5)
    candidates = [registry.classes[t] for t in model_types if t in registry.classes]
    if not candidates:  # an architecture transformers does not know: sglang's naming,
        stem = re.sub(r"For[A-Z]\w*$", "", arch)  # NemotronHPuzzleForCausalLM -> NemotronHPuzzleConfig
        candidates = [c for c in registry.classes.values() if c.name == f"{stem}Config"]
    for found in candidates:
        pm = loader.get(found.module)
        return pm.classes.get(found.name) if pm is not None else None
    return None


def _is_config_module(dotted: str) -> bool:
    return dotted.startswith("sglang.srt.configs.")


# ----------------------------------------------------------------------------
# the interpreter


class Tracer:
    def __init__(self, loader: Loader, rules: Rules) -> None:
        self.loader = loader
        self.rules = rules
        self.diagnostics: list[ir.Diagnostic] = []
        self._seen_diag: set[tuple[str, str, int]] = set()
        self.depth = 0
        self.frame: _Frame | None = None
        self._module_values: dict[tuple[str, str], Any] = {}
        self._entry = ""  # the architecture being traced (config.architectures[0])
        self._config_cls: ClassInfo | None = None  # sglang's config class for it, when it has one
        self._config_obj: Instance | None = None  # that class's __init__, traced over mc
        self._enum_values: dict[str, Any] = {}  # "Cls.MEMBER" -> the member's value
        self._plain: dict[int, bool] = {}  # class node -> _plain_object's answer
        self._mros: dict[ClassInfo, list[ClassInfo]] = {}  # class -> its MRO (classes hash by identity)
        self._config_fallbacks: list[E.Expr] = []  # config attributes read as raw keys (_config_value)
        self._building: list[ir.Node] = []  # modules whose __init__ is running, outermost first
        # attributes model code assigned on the raw config (copy.deepcopy is the identity here,
        # so an assignment to a copy is seen by every later read of the config)
        self._mc_set: dict[str, Any] = {}

    # -- public -------------------------------------------------------
    def trace_entry(self, pm: ParsedModule, class_name: str, config_class: ClassInfo | None = None) -> ir.ArchIR:
        """Trace one EntryClass. ``config_class``: sglang's config class for
        the checkpoint (sglang/srt/configs); by default the one the entry's
        ``__init__`` annotates its ``config`` with, if any."""
        defined = pm.entry_aliases.get(class_name, class_name)  # a registry entry naming another class
        info = pm.classes.get(defined)
        if info is None:  # `from .family.modeling import XForCausalLM` then EntryClass = [...]
            ref = self._module_global(pm, defined)
            info = ref.info if isinstance(ref, ClassRef) else None
        self._entry = class_name
        self._config_cls = config_class or (self._annotated_config_class(info) if info else None)
        self._config_obj = None
        # sglang loads a config no registry class claims with AutoConfig, then copies
        # every key of its text sub-config the top level lacks onto the top level
        # (utils/hf_transformers/config.py:258-268, get_hf_text_config: common.py:547-613)
        self._text_sub = None if config_class is not None or self._config_cls is None else \
            self._text_sub_config(self._config_cls)
        line = info.module.class_line(info) if info else 0
        root = ir.Node(ir.MODULE, class_name, Location(info.module.display if info else pm.display, line))
        result = ir.ArchIR(class_name, pm.name, pm.display, pm.sha256, root)
        if info is None:
            self._diag("error", "no-class", Location(pm.display, 0),
                       f"EntryClass names {class_name}, which is neither defined in this file nor imported "
                       "from a model file")
        else:
            inst = Instance(root, info)
            kwargs = {k: v for k, v in self.rules.entry.items()}
            if self.rules.entry_factory:
                kwargs["config"] = self._entry_config(kwargs["config"], Location(info.module.display, line))
            self._construct_traced(inst, info, [], kwargs, Location(info.module.display, line))
            root.fields = self._scalar_fields(inst)
            root.origin = tuple((c.module.name, c.name) for c in self._mro(info))
            result.towers = ir.find_towers(root, self.rules.is_text_marker, self.rules.is_encoder_marker)
            self._report_unknown(root)
        result.diagnostics = list(self.diagnostics)
        return result

    def _entry_config(self, config: Any, loc: Location) -> Any:
        """The entry's ``config`` built by the rules' factory over mc
        (mini-sglang's ``ModelConfig.from_hf(hf_config)``), traced like model code."""
        module, _, path = self.rules.entry_factory.partition(":")
        cls_name, _, method = path.partition(".")
        pm = self.loader.get(module)
        ref = self._module_global(pm, cls_name) if pm is not None else None
        if not isinstance(ref, ClassRef) or ref.info is None:
            self._diag("incomplete", "entry-config", loc, f"the entry's config factory {self.rules.entry_factory} "
                       "is not in this tree", subject="entry config")
            return config
        return self._call(self._getattr(ref, method), [config], {}, str(loc))

    # -- diagnostics --------------------------------------------------
    def _diag(self, severity: str, code: str, loc: Location, message: str, hint: str = "",
              subject: str = "", args: tuple[str, ...] = ()) -> None:
        key = (code, message, loc.line)
        if key not in self._seen_diag:
            self._seen_diag.add(key)
            self.diagnostics.append(ir.Diagnostic(severity, code, loc, message, hint, subject or code, args))

    def _here(self) -> Location:
        f = self.frame
        return Location(f.module.display, f.line) if f else Location("?", 0)

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
        for stmt in info.node.body.body:
            if isinstance(stmt, cst.SimpleStatementLine):
                for small in stmt.body:
                    if isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name):
                        fields.append(small.target.value)
        for name, value in zip(fields, args):
            inst.attrs[name] = value
        inst.attrs.update(kwargs)

    def _mro(self, info: ClassInfo) -> list[ClassInfo]:
        """The class and its traced bases, depth first (asked at every method
        lookup: answered once per class)."""
        if info in self._mros:
            return self._mros[info]
        out: list[ClassInfo] = []

        def visit(c: ClassInfo, depth: int) -> None:
            if c in out or depth > 20:
                return
            out.append(c)
            for base in c.bases:
                ref = self._base(c, base)
                if isinstance(ref, ClassRef) and ref.info is not None:
                    visit(ref.info, depth + 1)

        visit(info, 0)
        self._mros[info] = out
        return out

    def _base(self, c: ClassInfo, base: cst.BaseExpression) -> Any:
        """A base of class ``c``, as bound when the class statement runs:
        ``class LlamaDecoderLayer(LlamaDecoderLayer)`` (llama_eagle.py)
        derives from the imported class its own name then shadows."""
        ref = self._eval_in_module(base, c.module)
        if isinstance(ref, ClassRef) and ref.info is c and isinstance(base, cst.Name) \
                and base.value in c.module.imports:
            return self._import_value(c.module.imports[base.value])
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
            for stmt in c.node.body.body:
                if isinstance(stmt, cst.ClassDef) and stmt.name.value == name:  # a nested class
                    return ClassRef(name, class_info(stmt, c.module))
                if isinstance(stmt, cst.SimpleStatementLine):
                    for small in stmt.body:
                        if isinstance(small, (cst.Assign, cst.AnnAssign)) and small.value is not None:
                            targets = small.targets if isinstance(small, cst.Assign) else [small]
                            for t in targets:
                                if isinstance(t.target, cst.Name) and t.target.value == name:
                                    if _is_enum(c):  # an enum member is its own name: `Mode.SCATTERED`
                                        member = f"{c.name}.{name}"
                                        if member not in self._enum_values:
                                            self._enum_values[member] = self._eval_in_module(small.value, c.module)
                                        return E.Const(member)
                                    return self._eval_in_module(small.value, c.module)
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
        for p in [*init.params.params, *init.params.kwonly_params]:
            if p.name.value == "config" and p.annotation is not None:
                ref = self._eval_in_module(p.annotation.annotation, owner.module)
                if isinstance(ref, ClassRef) and ref.info is not None and _is_config_module(ref.info.module.name):
                    return ref.info
        return None

    def _config(self) -> ConfigObject | None:
        """The entry's config object: its class's ``__init__`` traced over mc."""
        if self._config_cls is None:
            return None
        if self._config_obj is None:
            self._config_obj = self._new_config(self._config_cls, MC, {})
        return self._config_obj

    def _new_config(self, info: ClassInfo, root: E.Expr | None, kwargs: dict) -> ConfigObject:
        """A config object built from ``root`` (every ``__init__`` parameter
        the call leaves out is the raw key of that name) and ``kwargs``."""
        node = ir.Node(CONFIG_NODE, info.name, Location(info.module.display, info.module.class_line(info)))
        obj = ConfigObject(node, info, root=root)
        owner, init = self._find_method(info, "__init__")
        if init is None or self.depth > MAX_DEPTH:
            return obj
        raw: dict[str, E.Expr] = {}
        # every parameter of the __init__ chain (a subclass's **kwargs reaches its base's):
        # config.json's key of that name, or the parameter's default when the file leaves it out
        for c in self._mro(info) if root is not None else ():
            fn = c.methods.get("__init__")
            if fn is None or not _is_config_module(c.module.name):
                continue
            for p in [*fn.params.params, *fn.params.kwonly_params][1:]:
                name = p.name.value
                if name not in raw:
                    default = self._eval_in_module(p.default, c.module) if p.default is not None else None
                    sub = name.endswith("_config")  # a sub-config: its keys are read through it
                    raw[name] = E.GetAttr(root, name, default) if isinstance(default, E.Const) and not sub \
                        else E.Attr(root, name)
        obj.defaults = {name: value for name, value in raw.items() if isinstance(value, E.GetAttr)}
        saved = list(self.diagnostics), set(self._seen_diag)
        try:
            self._call_function(FuncRef(init, owner.module, bound=obj, owner=owner), [], {**raw, **kwargs},
                                new_guard=True)
        finally:  # what the config's own code leaves unresolved is reported where model code reads it
            self.diagnostics, self._seen_diag = saved
        return obj

    def _loaded(self, obj: E.Expr, attr: str) -> Any:
        """What sglang's config loading sets on a checkpoint's config, or
        MISSING: the architecture (the module is for checkpoints of this
        entry), attributes ModelConfig writes from server arguments
        ([config_attrs]), sub-config attributes rewritten per model_type
        ([config_rewrites])."""
        if obj == MC and attr in self._mc_set:
            return self._mc_set[attr]
        if obj == MC and attr == "architectures":
            return ListVal([E.Const(self._entry)])
        if obj == MC and attr in self.rules.config_attrs:
            return self.rules.config_attrs[attr]
        key = self._key(attr) if obj == MC else attr
        if key != attr:
            return self._aliased(attr, E.Attr(MC, key))
        if obj == MC and attr in self.rules.config_properties and self._config_cls is None:
            return self._aliased(attr, self.rules.config_properties[attr])  # the checkpoint's own key first
        rewritten = self._rewritten(obj, attr)
        return rewritten if rewritten is not None else MISSING

    @staticmethod
    def _aliased(attr: str, canonical: E.Expr) -> E.Expr:
        """``config.<attr>`` of an aliased attribute: the checkpoint's key of
        that name when it has one (Qwen3-MoE's num_experts, an alias of
        num_local_experts), else the canonical one (GPT-2's n_layer)."""
        return E.IfExp(E.HasAttr(MC, attr), E.Attr(MC, attr), canonical)

    def _key(self, attr: str) -> str:
        """The attribute transformers answers ``config.<attr>`` from, for a
        checkpoint of the entry's model_type with no sglang config class
        (``GPT2Config.attribute_map``: num_hidden_layers -> n_layer;
        rules/config_aliases.toml). A checkpoint may hold either name."""
        if self._config_cls is not None:
            return attr
        for model_type in model_types_of(self._entry):
            key = self.rules.config_aliases.get(model_type, {}).get(attr)
            if key is not None:
                return key
        return attr

    def _rewritten(self, obj: E.Expr, attr: str) -> E.Expr | None:
        if not (isinstance(obj, E.Attr) and obj.obj == MC and self.rules.config_rewrites):
            return None
        for model_type in model_types_of(self._entry):
            sub, attrs = self.rules.config_rewrites.get(model_type, ("", {}))
            if sub and obj == E.Attr(MC, sub) and attr in attrs:
                return E.simplify(E.substitute(attrs[attr], {"cfg": obj}))
        return None

    def _config_member(self, obj: ConfigObject, attr: str, default: Any = MISSING) -> Any:
        """``attr`` of a config object (the entry's, a sub-config, or self
        inside its class)."""
        if obj.root is not None:
            loaded = self._loaded(obj.root, attr)
            if loaded is not MISSING:
                return loaded
        value = self._config_own(obj, attr, default)
        if obj.overrides is not None and isinstance(value, E.Expr):  # this layer's own value if its block sets one
            key = E.Const(attr)
            return E.IfExp(E.Compare("in", key, obj.overrides), E.Index(obj.overrides, key), value)
        return value

    def _config_own(self, obj: ConfigObject, attr: str, default: Any) -> Any:
        if attr in obj.attrs:
            return self._config_value(obj, attr, obj.attrs[attr])
        owner, fn = self._find_method(obj.cls, attr)
        if fn is not None and not (_has_decorator(fn, "property") or _has_decorator(fn, "cached_property")):
            return self._method_or_class_attr(obj, obj.cls, attr)  # a method: called by model code
        if fn is not None:  # a property: computed from what it reads, unless that is not understood
            before = len(self._config_fallbacks)
            value = self._method_or_class_attr(obj, obj.cls, attr)
            guessed = set(self._config_fallbacks[before:])
            if guessed and isinstance(value, E.Expr) and any(e in guessed for e in E.walk(value)):
                # built on a computed attribute read as its raw key: this one's raw key is the better guess
                value = E.Unknown(", ".join(sorted(E.to_source(e) for e in guessed)) + " (read as raw keys)")
            return self._config_value(obj, attr, value)
        aliases = self._class_attr(obj.cls, "attribute_map")
        if isinstance(aliases, DictVal) and isinstance(aliases.items.get(attr), E.Const):
            return self._config_member(obj, aliases.items[attr].value, default)
        if obj.root is None:
            return E.Unknown(f"attribute {attr} of a {obj.cls.name} built from nothing")
        value = self._class_attr(obj.cls, attr)
        if isinstance(value, E.Const) and attr in ("model_type", "base_config_key"):
            return value  # the class's own, whatever the JSON says (PretrainedConfig)
        if isinstance(value, E.Const):
            return self._read_through(obj, attr, value)  # a class-level default the JSON may override
        if value is not MISSING and not isinstance(value, E.Expr):
            return value  # sub_configs = {"text_config": Qwen3_5MoeTextConfig, ...}
        if default is not MISSING:
            return self._read_through(obj, attr, self._as_expr(default))
        if self._text_sub is not None and obj.defaults and attr in obj.defaults:
            # Qwen3VLConfig(tie_word_embeddings=False) hands it to PretrainedConfig: the top
            # level always has it, and sglang copies nothing over it
            return obj.defaults[attr]
        return self._read_through(obj, attr)

    def _text_sub_config(self, info: ClassInfo) -> str | None:
        """The sub-config sglang's ``get_hf_text_config`` picks from a config
        class's ``sub_configs`` (llm_config, language_config, then text_config)."""
        subs = self._class_attr(info, "sub_configs")
        if not isinstance(subs, DictVal) or "thinker_config" in subs.items:
            return None  # Qwen-Omni's thinker_config.text_config: not followed (read as before)
        return next((name for name in ("llm_config", "language_config", "text_config") if name in subs.items), None)

    def _read_through(self, obj: ConfigObject, attr: str, default: E.Expr | None = None) -> E.Expr:
        """A raw key of the entry's config (``default`` when the JSON may
        leave it out): where sglang copies the text sub-config's keys up
        (:meth:`trace_entry`), the top level's key if the checkpoint has one,
        else the sub-config's."""
        def read(config: E.Expr) -> E.Expr:
            return E.Attr(config, attr) if default is None else E.GetAttr(config, attr, default)
        if self._text_sub is None or obj.root != MC or obj.cls is not self._config_cls or attr.endswith("_config"):
            return read(obj.root)
        return E.IfExp(E.HasAttr(MC, attr), E.Attr(MC, attr), read(E.Attr(MC, self._text_sub)))

    def _config_value(self, obj: ConfigObject, attr: str, value: Any) -> Any:
        """A computed config attribute, or the raw key where the config
        class's own code is not understood (reported at the class)."""
        if _plain_config_value(value):
            return value
        why = sorted({u.why.removesuffix(ON_CONFIG) for u in E.unknowns(value)}) if isinstance(value, E.Expr) else \
            [f"a {type(value).__name__} value"]
        raw = E.Attr(obj.root, attr) if obj.root is not None else E.Unknown(f"{obj.cls.name}.{attr}")
        self._config_fallbacks.append(raw)
        self._diag("note", "config-attr", obj.node.loc,
                   f"{obj.cls.name}.{attr} is computed from {', '.join(why)}: read as the raw config key "
                   f"{E.to_source(raw)}", subject=f"{obj.cls.name}.{attr}")
        return raw

    # -- conditions of forward code (astgen.flow) ---------------------
    def evaluate_condition(self, test: cst.BaseExpression, module: ParsedModule, node: ir.Node,
                           info: ClassInfo | None, objects: dict[str, str] | None = None) -> E.Expr:
        """A condition in the forward code of the module built as ``node``,
        read with the value model of ``__init__``: ``self`` holds the fields
        and submodules the constructor left. Methods it calls run on a
        shadow of the module, so the IR is never changed. Runtime state no
        rule describes takes sglang's default (off)."""
        inst = Instance(ir.Node(ir.MODULE, node.cls, node.loc), info, attrs=self._shadow_attrs(node))
        scope: dict[str, Any] = {name: RuleObject(obj) for name, obj in (objects or {}).items()}
        scope["self"] = inst
        saved = self.diagnostics
        self.diagnostics = []  # the notes of __init__ are already reported
        try:
            return self._truth(self._eval_in_module(test, module, scope))
        finally:
            self.diagnostics = saved

    def _shadow_attrs(self, node: ir.Node) -> dict[str, Any]:
        attrs: dict[str, Any] = dict(node.fields)
        for child in node.children:
            if child.attr and child.attr not in attrs:
                attrs[child.attr] = Instance(ir.Node(child.kind, child.cls, child.loc, args=child.args),
                                             None, attrs=dict(child.fields))
        return attrs

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
                self._diag("incomplete", "too-deep", loc, f"construction of {ref.name} nested too deeply")
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

    def _scalar_fields(self, inst: Instance) -> dict[str, E.Expr]:
        """The resolved scalar attributes of a constructed instance."""
        out = {}
        for name, value in inst.attrs.items():
            if isinstance(value, (E.Expr, Phi)):
                e = self._as_expr(value)
                if not E.unknowns(e):
                    out[name] = e
        return out

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
        return self._call_unresolved(site, args, kwargs)

    def _call_unresolved(self, name: str, args: list, kwargs: dict) -> Any:
        """A callee nothing describes. A CamelCase name is a class: it becomes
        a node, reported as an unknown layer if it is kept as a submodule."""
        if name[:1].isupper() and name.isidentifier():
            return self._instantiate(ClassRef(name), args, kwargs)
        if any(_reads_config(v) for v in [*args, *kwargs.values()]):
            # a helper astgen cannot read, asked about the checkpoint: not a server switch
            return E.Unknown(f"call of {name}{ON_CONFIG}")
        return E.Unknown(f"call of {name}")

    def _call_function(self, fn: FuncRef, args: list, kwargs: dict, new_guard: bool = False) -> Any:
        if self.depth > MAX_DEPTH:
            self._diag("incomplete", "too-deep", self._here(), "call nesting too deep")
            return E.Unknown("call nesting too deep")
        params = fn.node.params
        scope: dict[str, Any] = dict(fn.closure or {})
        positional = list(params.posonly_params) + list(params.params)
        args = list(args)
        if fn.bound is not None and not fn.is_static:
            args = [fn.bound] + args
        defaults_module = fn.module
        for p in positional:
            pname = p.name.value
            if args:
                scope[pname] = args.pop(0)
            elif pname in kwargs:
                scope[pname] = self._or_default(kwargs.pop(pname), p, defaults_module, scope)
            elif p.default is not None:
                scope[pname] = self._eval_in_module(p.default, defaults_module, scope)
            else:
                scope[pname] = self._missing_arg(pname)
        if isinstance(params.star_arg, cst.Param):
            scope[params.star_arg.name.value] = TupleVal(tuple(args))
        for p in params.kwonly_params:
            pname = p.name.value
            if pname in kwargs:
                scope[pname] = self._or_default(kwargs.pop(pname), p, defaults_module, scope)
            elif p.default is not None:
                scope[pname] = self._eval_in_module(p.default, defaults_module, scope)
            else:
                scope[pname] = self._missing_arg(pname)
        if params.star_kwarg is not None:
            scope[params.star_kwarg.name.value] = DictVal(dict(kwargs))
        inst = fn.bound if isinstance(fn.bound, Instance) else None
        guard = E.TRUE if new_guard or self.frame is None else self.frame.guard
        frame = _Frame(fn.module, scope, inst, fn.owner, guard)
        if isinstance(fn.node, cst.FunctionDef) and fn.owner is not None:
            frame.line = fn.module.method_line(fn.owner, fn.node)
        elif isinstance(fn.node, cst.FunctionDef):
            frame.line = fn.module.locate_def(fn.node)
        elif self.frame is not None:
            frame.line = self.frame.line
        return self._run(frame, fn.node)

    def _or_default(self, value: Any, param: cst.Param, module: ParsedModule, scope: dict) -> Any:
        """A keyword argument that only some paths pass (``**(dict(x=1) if c
        else {})``): the parameter's default on the others."""
        if not has_missing(value):
            return value
        default = (self._eval_in_module(param.default, module, scope) if param.default is not None
                   else self._missing_arg(param.name.value))
        return fill_missing(value, default)

    def _missing_arg(self, pname: str) -> Any:
        if pname in self.rules.entry:
            return self.rules.entry[pname]
        return E.Unknown(f"argument {pname} not given")

    def _run(self, frame: _Frame, node: cst.FunctionDef | cst.Lambda) -> Any:
        saved, self.frame = self.frame, frame
        self.depth += 1
        try:
            if isinstance(node, cst.Lambda):
                return self._eval(node.body)
            result = self._exec_block(_body(node.body))
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

    # -- builtins -----------------------------------------------------
    def _call_builtin(self, name: str, args: list, kwargs: dict, site: str) -> Any:
        if name in _NUMERIC:
            return self._numeric(name, args)
        handler = getattr(self, f"_b_{name}", None)
        if handler is None:
            return E.Unknown(f"call of {site}")
        return handler(args, kwargs)

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
        default = args[2] if len(args) > 2 else None
        if isinstance(obj, E.Expr):
            loaded = self._loaded(obj, attr)
            if loaded is not MISSING:
                return loaded
        config = self._config() if isinstance(obj, E.Expr) and obj == MC else None
        if isinstance(obj, ConfigObject):
            config = obj
        if config is not None:
            return self._config_member(config, attr, MISSING if len(args) < 3 else default)
        if isinstance(obj, E.Expr) and _is_config(obj):
            key = self._key(attr) if obj == MC else attr
            read = E.Attr(obj, key) if default is None else E.GetAttr(obj, key, self._as_expr(default))
            return read if key == attr else self._aliased(attr, read)
        value = self._getattr(obj, attr)
        if isinstance(value, E.Unknown) and default is not None:
            return default
        return value

    def _b_hasattr(self, args: list, kwargs: dict) -> Any:
        if len(args) == 2 and isinstance(args[1], E.Const) and isinstance(args[1].value, str):
            config = args[0] if isinstance(args[0], ConfigObject) else (
                self._config() if isinstance(args[0], E.Expr) and args[0] == MC else None)
            if config is not None and config.root is not None:
                member = self._config_member(config, args[1].value)
                if not (isinstance(member, E.Attr) and member == E.Attr(config.root, args[1].value)):
                    return E.TRUE  # computed, a property, an alias or a class default: always there
                return E.HasAttr(config.root, args[1].value)
        if len(args) == 2 and isinstance(args[1], E.Const) and isinstance(args[0], E.Expr) and _is_config(args[0]):
            name = args[1].value
            key = self._key(name) if args[0] == MC else name
            return E.HasAttr(args[0], name) if key == name else \
                E.BoolOp("or", E.HasAttr(args[0], name), E.HasAttr(args[0], key))
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
            except _Return as ret:
                return ret
            except (RecursionError, TypeError, ValueError, AttributeError,
                    KeyError, IndexError, ZeroDivisionError, OverflowError) as exc:
                self._diag("incomplete", "tracer-error", self._here(),
                           f"could not interpret statement ({type(exc).__name__}: {exc})",
                           "statement skipped", f"statement {type(stmt).__name__} ({type(exc).__name__})")
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
        # assert, raise, pass, del, global: nothing to build

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
        return self._fork(test, lambda: self._exec_block(_body(stmt.body)),
                          lambda: self._exec_block(else_body), rest)

    def _report_structural_assumption(self, value: Any, skipped: list) -> None:
        """A branch left out on an assumption about the checkpoint (a helper
        astgen cannot read, given the config), whose code builds submodules:
        whether those weights exist is not known, so the entry is incomplete.
        Server switches (backends, platforms, environment) take their default
        path with a note, as before."""
        if not isinstance(value, E.Expr):
            return
        whys = sorted({u.why for u in E.unknowns(value) if u.why.endswith(ON_CONFIG)})
        built = [a for stmt in skipped for a in _assigned_modules(stmt)]
        if whys and built:
            self._diag("incomplete", "assumed", self._here(),
                       f"whether {', '.join(built)} {'is' if len(built) == 1 else 'are'} built depends on "
                       f"{', '.join(w.removesuffix(ON_CONFIG) for w in whys)} (given the config), which astgen "
                       "cannot evaluate", "add the helper to rules/parallel.toml, or teach the tracer the construct",
                       subject=whys[0].removesuffix(ON_CONFIG))

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
        frame = self.frame
        base_guard = frame.guard
        before = self._snapshot()
        frame.guard = E.and_(base_guard, test)
        r1 = then()
        after_then = self._snapshot()
        self._restore(before)
        frame.guard = E.and_(base_guard, E.not_(test))
        r2 = orelse()
        frame.guard = base_guard
        if r1 is None and r2 is None:
            self._merge(test, after_then, self._snapshot())
            return None
        if r1 is not None and r2 is not None:
            return _Return(phi(test, r1.value, r2.value))
        # one branch returned: the statements after the `if` run on the other
        if r1 is not None:
            frame.guard = E.and_(base_guard, E.not_(test))
            r_rest = self._exec_block(rest)
            frame.guard = base_guard
            return _Return(phi(test, r1.value, r_rest.value if r_rest else E.NONE))
        self._restore(after_then)
        frame.guard = E.and_(base_guard, test)
        r_rest = self._exec_block(rest)
        frame.guard = base_guard
        return _Return(phi(test, r_rest.value if r_rest else E.NONE, r2.value))

    def _snapshot(self) -> tuple[dict, dict | None]:
        f = self.frame
        attrs = dict(f.self_inst.attrs) if f.self_inst is not None else None
        return dict(f.locals), attrs

    def _restore(self, snap: tuple[dict, dict | None]) -> None:
        f = self.frame
        f.locals.clear()
        f.locals.update(snap[0])
        if f.self_inst is not None and snap[1] is not None:
            f.self_inst.attrs.clear()
            f.self_inst.attrs.update(snap[1])

    def _merge(self, test: E.Expr, a: tuple[dict, dict | None], b: tuple[dict, dict | None]) -> None:
        f = self.frame
        f.locals.clear()
        f.locals.update(merge_dicts(test, a[0], b[0]))
        if f.self_inst is not None and a[1] is not None and b[1] is not None:
            f.self_inst.attrs.clear()
            f.self_inst.attrs.update(merge_dicts(test, a[1], b[1]))

    def _exec_for(self, stmt: cst.For) -> _Return | None:
        it = self._eval(stmt.iter)
        items = self._iter_items(it)
        if items is None and self._list_per_index(stmt, it):
            return None
        if items is None and self._overrides_from_items(stmt):
            return None
        if items is None:
            self._diag("note", "loop", self._here(), "loop over a symbolic range skipped")
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
        if not (isinstance(current, ListVal) and not current.items) or E.unknowns(element):
            return False
        self.frame.locals[target] = Repeated(E.simplify(element), it.args[0], var)
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

    def _appended(self, stmts: list) -> tuple[str, E.Expr] | None:
        """(list name, element) of a block that is one ``xs.append(e)`` or an
        if/else of such blocks on the same list."""
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
            return then[0], E.IfExp(test, then[1], other[1])
        if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1 and isinstance(stmt.body[0], cst.Expr):
            call = stmt.body[0].value
            if (isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute)
                    and call.func.attr.value == "append" and isinstance(call.func.value, cst.Name)
                    and len(call.args) == 1 and call.args[0].keyword is None and not call.args[0].star):
                return call.func.value.value, self._as_expr(self._eval(call.args[0].value))
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
                self._diag("incomplete", "unresolved", self._here(),
                           f"the items of {attr or 'a module list'} are not resolved ({value.item.why})",
                           "teach the tracer the construct", value.item.why)
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

    def _report_unknown(self, root: ir.Node) -> None:
        """Unknown classes of the text model are incomplete; a multimodal
        tower is not analyzed, so its unknown classes are only noted."""
        for n in root.walk(skip_towers=True):
            if n.tower:
                unknown = sorted({u.cls for u in n.walk() if u.kind == ir.UNKNOWN})
                self._diag("note", "tower", n.loc, f"multimodal tower {n.path()} ({n.cls}) is not analyzed"
                           + (f"; it holds unknown classes {', '.join(unknown)}" if unknown else ""))
            elif n.kind == ir.UNKNOWN:
                self._diag("incomplete", "unknown-layer", n.loc,
                           f"unknown layer class {n.cls} (attribute {n.attr or '?'})",
                           f"add a rule for {n.cls} to rules/layers.toml, or list it under [ignored]",
                           n.cls)

    # -- expressions --------------------------------------------------
    def _eval(self, node: cst.BaseExpression) -> Any:
        method = getattr(self, "_e_" + type(node).__name__, None)
        if method is None:
            return E.Unknown(f"{type(node).__name__} expression")
        return method(node)

    def _eval_in_module(self, node: cst.BaseExpression, module: ParsedModule, scope: dict | None = None) -> Any:
        saved = self.frame
        self.frame = _Frame(module, dict(scope or {}), None, None, E.TRUE, saved.line if saved else 0)
        try:
            return self._eval(node)
        finally:
            self.frame = saved

    def _e_Integer(self, node: cst.Integer) -> Any:
        return E.Const(int(node.value.replace("_", ""), 0))

    def _e_Float(self, node: cst.Float) -> Any:
        try:
            return E.Const(float(node.value.replace("_", "")))
        except ValueError:
            return E.Unknown("float literal")

    def _e_Imaginary(self, node: cst.Imaginary) -> Any:
        return E.Unknown("complex literal")

    def _e_SimpleString(self, node: cst.SimpleString) -> Any:
        value = node.evaluated_value
        return E.Const(value) if isinstance(value, str) else E.Unknown("bytes literal")

    def _e_ConcatenatedString(self, node: cst.ConcatenatedString) -> Any:
        value = node.evaluated_value
        return E.Const(value) if isinstance(value, str) else E.Unknown("string")

    def _e_FormattedString(self, node: cst.FormattedString) -> Any:
        return E.Unknown("f-string")

    def _e_Name(self, node: cst.Name) -> Any:
        return self._lookup(node.value)

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
            value = module_constant(self.loader.tree, module, name)
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

    def _e_Attribute(self, node: cst.Attribute) -> Any:
        obj = self._eval(node.value)
        return self._getattr(obj, node.attr.value)

    def _getattr(self, obj: Any, attr: str) -> Any:
        if isinstance(obj, E.Unknown):
            return obj
        if isinstance(obj, E.Expr):
            if attr == "__dict__" and _is_config(obj):
                return obj
            loaded = self._loaded(obj, attr)
            if loaded is not MISSING:
                return loaded
            if obj == MC and self._config() is not None:
                return self._config_member(self._config(), attr)
            if attr == "value" and isinstance(obj, E.Const) and obj.value in self._enum_values:
                return self._enum_values[obj.value]  # HybridLayerType.full_attention.value
            if attr == "get" and _is_config(obj) and obj != MC:  # a JSON object in the config: a dict
                return _Partial(Builtin("config_get"), [obj], {})
            if isinstance(obj, E.IfExp) and _is_config(obj.body) and _is_config(obj.orelse):
                # one of two configs (`config = config.text_config` on a branch): the attribute of each
                return phi(obj.test, self._getattr(obj.body, attr), self._getattr(obj.orelse, attr))
            return E.Attr(obj, attr) if _is_config(obj) else E.Unknown(f"attribute {attr} of a value")
        if isinstance(obj, ConfigObject):
            return self._config_member(obj, attr)
        if isinstance(obj, Instance):
            if attr in obj.attrs:
                return obj.attrs[attr]
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

    def _layer_base(self, sup: SuperRef) -> Any:
        """``super().__init__`` reaching a layer class the rules know: the
        instance is that layer (a model-local subclass of, say, a linear)."""
        for c in self._mro(sup.inst.cls):
            for base in c.bases:
                ref = self._base(c, base)
                if isinstance(ref, ClassRef) and ref.info is None and self.rules.layer(ref.name):
                    return _BecomeLayer(sup.inst, ref.name)
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

    def _e_Call(self, node: cst.Call) -> Any:
        callee = self._eval(node.func)
        args: list = []
        kwargs: dict = {}
        for arg in node.args:
            value = self._eval(arg.value)
            if arg.star == "*":
                args.extend(value.items if isinstance(value, (ListVal, TupleVal)) else [])
            elif arg.star == "**":
                splat = _splat(value)
                if not splat and not isinstance(value, DictVal):
                    self._diag("note", "assumed", self._here(),
                               f"keyword arguments **{_callee_name(arg.value) or 'a value'} not resolved: "
                               "the callee's defaults are taken",
                               "trace the function ([trace] functions in rules/layers.toml)",
                               _callee_name(arg.value) or "a ** argument")
                kwargs.update(splat)
            elif arg.keyword is not None:
                kwargs[arg.keyword.value] = value
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

    def _e_Lambda(self, node: cst.Lambda) -> Any:
        return FuncRef(node, self.frame.module, closure=dict(self.frame.locals),
                       bound=None)

    def _e_BinaryOperation(self, node: cst.BinaryOperation) -> Any:
        op = _BIN_OPS.get(type(node.operator))
        left, right = self._eval(node.left), self._eval(node.right)
        if op is None:
            return E.Unknown(f"operator {type(node.operator).__name__}")
        return self._binop(op, left, right)

    def _binop(self, op: str, left: Any, right: Any) -> Any:
        if op == "*" and isinstance(left, ListVal) and isinstance(right, E.Const) and type(right.value) is int:
            return ListVal(left.items * max(0, min(right.value, MAX_UNROLL)))
        if op == "+" and isinstance(left, ListVal) and isinstance(right, ListVal):
            return ListVal(left.items + right.items)
        if op == "+" and isinstance(left, TupleVal) and isinstance(right, TupleVal):
            return TupleVal(left.items + right.items)
        return E.simplify(E.BinOp(op, self._as_expr(left), self._as_expr(right)))

    def _e_UnaryOperation(self, node: cst.UnaryOperation) -> Any:
        value = self._eval(node.expression)
        if isinstance(node.operator, cst.Not):
            return E.not_(self._truth(value))
        if isinstance(node.operator, cst.Minus):
            return E.simplify(E.neg(self._as_expr(value)))
        if isinstance(node.operator, cst.Plus):
            return value
        return E.Unknown("unary operator")

    def _e_Comparison(self, node: cst.Comparison) -> Any:
        left = self._eval(node.left)
        result: E.Expr | None = None
        for target in node.comparisons:
            op = _CMP_OPS.get(type(target.operator))
            right = self._eval(target.comparator)
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

    def _e_BooleanOperation(self, node: cst.BooleanOperation) -> Any:
        left = self._eval(node.left)
        is_and = isinstance(node.operator, cst.And)
        if not isinstance(left, E.Expr):
            # objects are truthy: `a or b` is a, `a and b` is b
            return self._eval(node.right) if is_and else left
        lt = self._truth(left)
        if isinstance(lt, E.Const):
            if bool(lt.value) != is_and:
                return left
            return self._eval(node.right)
        right = self._eval(node.right)
        if not isinstance(right, E.Expr):
            return phi(left, right, left) if is_and else phi(left, left, right)
        return E.simplify(E.BoolOp("and" if is_and else "or", left, right))

    def _e_IfExp(self, node: cst.IfExp) -> Any:
        test = self._truth(self._eval(node.test))
        if isinstance(test, E.Const):
            return self._eval(node.body if test.value else node.orelse)
        body, orelse = self._eval(node.body), self._eval(node.orelse)
        if isinstance(body, E.Expr) and isinstance(orelse, E.Expr):
            return E.simplify(E.IfExp(test, body, orelse))
        return phi(test, body, orelse)

    def _e_Tuple(self, node: cst.Tuple) -> Any:
        return TupleVal(tuple(self._elements(node.elements)))

    def _e_List(self, node: cst.List) -> Any:
        return ListVal(self._elements(node.elements))

    def _e_Set(self, node: cst.Set) -> Any:
        return ListVal(self._elements(node.elements))

    def _elements(self, elements: Iterable[cst.BaseElement]) -> list:
        out: list = []
        for el in elements:
            value = self._eval(el.value)
            if isinstance(el, cst.StarredElement):
                out.extend(value.items if isinstance(value, (ListVal, TupleVal)) else [])
            else:
                out.append(value)
        return out

    def _e_Dict(self, node: cst.Dict) -> Any:
        out: dict = {}
        for el in node.elements:
            if isinstance(el, cst.StarredDictElement):
                out.update(_splat(self._eval(el.value)))
                continue
            key = self._eval(el.key)
            if isinstance(key, E.Const) and isinstance(key.value, str):
                out[key.value] = self._eval(el.value)
        return DictVal(out)

    def _e_Subscript(self, node: cst.Subscript) -> Any:
        obj = self._eval(node.value)
        if len(node.slice) != 1 or not isinstance(node.slice[0].slice, cst.Index):
            return E.Unknown("slice")
        return self._subscript(obj, self._eval(node.slice[0].slice.value))

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
        return E.Unknown("subscript")

    def _e_ListComp(self, node: cst.ListComp) -> Any:
        return self._comprehension(node)

    def _e_GeneratorExp(self, node: cst.GeneratorExp) -> Any:
        return self._comprehension(node)

    def _comprehension(self, node: cst.ListComp | cst.GeneratorExp) -> Any:
        comp = node.for_in
        if comp.inner_for_in is not None or not isinstance(comp.target, cst.Name):
            return E.Unknown("nested comprehension")
        it = self._eval(comp.iter)
        var = comp.target.value
        items = self._iter_items(it)
        saved = dict(self.frame.locals)
        try:
            if items is not None:
                out = []
                for item in items:
                    self.frame.locals[var] = item
                    if all(self._truth(self._eval(c.test)) != E.FALSE for c in comp.ifs):
                        out.append(self._eval(node.elt))
                return ListVal(out)
            if isinstance(it, RangeVal) and len(it.args) == 1:
                self.frame.locals[var] = E.Name(var)
                return Repeated(self._eval(node.elt), it.args[0], var)
            return E.Unknown("comprehension over a symbolic sequence")
        finally:
            self.frame.locals.clear()
            self.frame.locals.update(saved)

    def _e_Await(self, node: cst.Await) -> Any:
        return E.Unknown("await")

    def _e_NamedExpr(self, node: cst.NamedExpr) -> Any:
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
        defaulted = E.simplify(_replace_unknowns(value))
        if not E.free_names(defaulted):
            try:
                defaulted = E.Const(bool(E.evaluate(defaulted, {})))
            except E.EvalError:
                defaulted = E.FALSE
        whys = sorted({u.why for u in E.unknowns(value)})
        self._diag("note", "assumed", self._here(),
                   f"condition on {', '.join(whys)} taken as its default (off)", args=tuple(whys))
        if isinstance(defaulted, E.Const):
            return E.Const(bool(defaulted.value))
        return defaulted


@dataclass(eq=False)
class _Opaque:
    """A name imported from outside the traced files that no rule describes."""

    qualname: str
    name: str


@dataclass(eq=False)
class _BecomeLayer:
    inst: Instance
    name: str


@dataclass(eq=False)
class _Partial:
    fn: Any
    args: list
    kwargs: dict


@dataclass(eq=False)
class _Layers:
    """make_layers' result: the layer list, or (list, start, end) when unpacked."""

    modules: Repeated
    n: E.Expr


@dataclass(eq=False)
class _DictMethod:
    d: DictVal
    method: str

    def call(self, args: list) -> Any:
        if self.method == "get" and args and isinstance(args[0], E.Const):
            return self.d.items.get(args[0].value, args[1] if len(args) > 1 else E.NONE)
        if self.method == "update" and args and isinstance(args[0], DictVal):
            self.d.items.update(args[0].items)
        return E.NONE


_NUMERIC = frozenset({"max", "min", "int", "float", "abs", "bool"})
_CONSTANTS = {"True": E.TRUE, "False": E.FALSE, "None": E.NONE}
_BUILTIN_FUNCS = {
    "getattr": "getattr", "hasattr": "hasattr", "isinstance": "isinstance", "max": "max",
    "min": "min", "int": "int", "float": "float", "abs": "abs", "bool": "bool", "sum": "sum",
    "len": "len", "range": "range", "dict": "dict", "list": "list", "tuple": "tuple",
    "frozenset": "tuple", "set": "tuple",  # membership tests only: a set of constants as a tuple
    "super": "super", "partial": "partial", "ModuleList": "ModuleList", "ModuleDict": "ModuleDict",
    "SimpleNamespace": "namespace", "vars": "vars",
    "Sequential": "Sequential", "Parameter": "Parameter", "empty": "tensor_new",
    "zeros": "tensor_new", "ones": "tensor_new", "randn": "tensor_new", "tensor": "tensor_new",
}
_BIN_OPS = {
    cst.Add: "+", cst.Subtract: "-", cst.Multiply: "*", cst.Divide: "/",
    cst.FloorDivide: "//", cst.Modulo: "%", cst.Power: "**",
}
_AUG_OPS = {
    cst.AddAssign: "+", cst.SubtractAssign: "-", cst.MultiplyAssign: "*",
    cst.DivideAssign: "/", cst.FloorDivideAssign: "//", cst.ModuloAssign: "%",
}
_CMP_OPS = {
    cst.Equal: "==", cst.NotEqual: "!=", cst.LessThan: "<", cst.LessThanEqual: "<=",
    cst.GreaterThan: ">", cst.GreaterThanEqual: ">=", cst.Is: "is", cst.IsNot: "is not",
    cst.In: "in", cst.NotIn: "not in",
}


_ENUMBASES = frozenset({"Enum", "IntEnum", "StrEnum", "Flag", "IntFlag"})


def _is_enum(info: ClassInfo) -> bool:
    return any(_callee_name(b).rsplit(".", 1)[-1] in _ENUMBASES for b in info.bases)


def _without_quant_config(args: dict[str, E.Expr]) -> bool:
    """A layer sglang builds with no quant_config: left out (the layer's own
    default, None) or a None the source wrote (``quant_config=None``, a
    parameter defaulting to None that no caller set). Such a layer is never
    quantized, whatever the checkpoint (MoE routers). The entry's own
    quant_config is a None of the rules, a different object."""
    return "quant_config" not in args or args["quant_config"] is E.NONE


def _body(block: cst.BaseSuite) -> list:
    return list(block.body) if isinstance(block, cst.IndentedBlock) else [cst.SimpleStatementLine(list(block.body))]


def _callee_name(node: cst.BaseExpression) -> str:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return node.attr.value
    return type(node).__name__


ON_CONFIG = " with the config"  # the suffix of an unknown call that was given the model config


def _reads_config(value: Any) -> bool:
    return isinstance(value, ConfigObject) or (isinstance(value, E.Expr) and _is_config(value))


def _assigned_modules(stmt: cst.CSTNode) -> list[str]:
    """``self.x`` targets assigned a call anywhere in ``stmt`` (the modules a
    branch builds), by attribute name."""
    out: list[str] = []

    class Visitor(cst.CSTVisitor):
        def visit_Assign(self, node: cst.Assign) -> None:
            if isinstance(node.value, cst.Call):
                for t in node.targets:
                    if isinstance(t.target, cst.Attribute) and isinstance(t.target.value, cst.Name) \
                            and t.target.value.value == "self":
                        out.append(t.target.attr.value)

    stmt.visit(Visitor())
    return out


def _plain_config_value(value: Any) -> bool:
    """A computed config attribute model code can use: an expression over the
    raw config, a per-index list, a sub-config, literals of those."""
    if isinstance(value, E.Expr):
        return not E.unknowns(value)
    if isinstance(value, ConfigObject):
        return value.root is not None
    if isinstance(value, Instance):  # a record sglang's config code builds (Mamba2CacheParams)
        return value.cls is not None
    if isinstance(value, Repeated):
        return isinstance(value.item, E.Expr) and not E.unknowns(value.item)
    if isinstance(value, (ListVal, TupleVal)):
        return all(_plain_config_value(v) for v in value.items)
    if isinstance(value, Phi):
        return _plain_config_value(value.then) and _plain_config_value(value.orelse)
    return False


def _is_config(e: E.Expr) -> bool:
    """An expression rooted at the model config (mc.x.y ...)."""
    while isinstance(e, (E.Attr, E.GetAttr, E.Index)):
        e = e.obj
    return isinstance(e, E.Name) and e.id == "mc"


def _has_decorator(fn: cst.FunctionDef, name: str) -> bool:
    for d in fn.decorators:
        dec = d.decorator
        if isinstance(dec, cst.Name) and dec.value == name:
            return True
        if isinstance(dec, cst.Attribute) and dec.attr.value == name:
            return True
    return False


def _is_classmethod(fn: cst.FunctionDef) -> bool:
    return _has_decorator(fn, "classmethod")


def _splat(value: Any) -> dict:
    if isinstance(value, DictVal):
        return dict(value.items)
    if isinstance(value, NamespaceVal):
        return {**({BASE: value.base} if value.base is not None else {}), **value.fields}
    if isinstance(value, E.Expr) and _is_config(value):
        return {BASE: value}  # **vars(config), **config.__dict__: read through to the config
    if isinstance(value, Phi):
        a, b = _splat(value.then), _splat(value.orelse)
        return {k: phi(value.test, a.get(k, MISSING), b.get(k, MISSING)) for k in set(a) | set(b)}
    return {}


def _select_by_key(key: E.Expr, items: dict[str, Any]) -> Any:
    """``d[key]`` for a symbolic key: each value under the guard ``key ==``
    its own key (any other key is a KeyError in sglang, so the last value
    takes the remaining case)."""
    keys = list(items)
    out = items[keys[-1]]
    for k in reversed(keys[:-1]):
        out = phi(E.Compare("==", key, E.Const(k)), items[k], out)
    return out




def _unpack(value: Any, n: int) -> list:
    if isinstance(value, _Layers):
        return [value.modules, E.Const(0), value.n][:n] if n == 3 else [value.modules] + [E.NONE] * (n - 1)
    if isinstance(value, (TupleVal, ListVal)) and len(value.items) == n:
        return list(value.items)
    if isinstance(value, E.Tuple) and len(value.items) == n:
        return list(value.items)
    if isinstance(value, Phi):
        a, b = _unpack(value.then, n), _unpack(value.orelse, n)
        return [phi(value.test, x, y) for x, y in zip(a, b)]
    return [E.Unknown("unpacking a non-tuple")] * n


def _replace_unknowns(e: E.Expr) -> E.Expr:
    if isinstance(e, E.Unknown):
        return E.NONE
    kids = [_replace_unknowns(c) for c in e.children()]
    return E.rebuild(e, kids) if kids else e


def _root_of(node: ir.Node) -> ir.Node:
    while node.parent is not None:
        node = node.parent
    return node
