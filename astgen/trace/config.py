"""The config model: how a read of the model config resolves (sglang's config
class, aliases, rewrites, defaults)."""

from __future__ import annotations

import re
from typing import Any

from astgen import expr as E
from astgen import messages as M
from astgen import ir
from astgen.frontend.loader import Loader
from astgen.frontend.parse import (
    ClassInfo,
    Location,
)
from astgen.frontend.registry import registry_of
from astgen.rules import model_types_of
from astgen.trace.common import (
    CONFIG_NODE,
    MAX_DEPTH,
    MC,
    _has_decorator,
    _is_config,
    _plain_config_value,
    signature,
)
from astgen.values import (
    MISSING,
    ConfigObject,
    DictVal,
    FuncRef,
    ListVal,
    Phi,
)

# ----------------------------------------------------------------------------
# loading modules on demand


def config_class(loader: Loader, arch: str) -> ClassInfo | None:
    """sglang's own config class for checkpoints of ``arch``: its model_type
    (rules/model_types.toml) in sglang's config registry (:mod:`astgen.frontend.registry`);
    for an architecture transformers does not know, the registered class named
    after it; None when sglang loads it with transformers' class."""
    registry = registry_of(loader.tree, loader.kept)
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


NOT_CONFIG = object()  # what member() answers for an object that is no config


def _is_config_module(dotted: str) -> bool:
    return dotted.startswith("sglang.srt.configs.")


class ConfigModel:
    """The config model: how a read of the model config resolves (sglang's config
    class, aliases, rewrites, defaults); a mixin of
    :class:`~astgen.trace.tracer.Tracer`."""

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
            params = signature(fn)
            for p in [*params.positional[len(fn.args.posonlyargs):], *params.keyword_only][1:]:
                name = p.name
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

    # -- the one way a config attribute is read --------------------------
    def member(self, obj: Any, attr: str, default: Any = MISSING) -> Any:
        """``obj.attr`` (``getattr(obj, attr, default)`` with a default) of
        the model config or a config inside it; NOT_CONFIG for anything else.
        sglang's precedence, first answer wins:

        1. what sglang's config loading sets (:meth:`_loaded`): the
           architecture, [config_attrs] (ModelConfig's writes from server
           arguments), transformers' aliases of a checkpoint with no sglang
           config class ([config_aliases], [config_properties]), sub-config
           attributes rewritten per model_type ([config_rewrites]);
        2. the entry's config class, traced over mc (:meth:`_config_member`):
           its ``__init__``'s attributes, properties, ``attribute_map``, class
           defaults, a layer's own override block;
        3. the checkpoint's raw key (``default`` where the JSON may leave it out).
        """
        if isinstance(obj, E.Expr):
            loaded = self._loaded(obj, attr)
            if loaded is not MISSING:
                return loaded
        config = obj if isinstance(obj, ConfigObject) else \
            self._config() if isinstance(obj, E.Expr) and obj == MC else None
        if config is not None:
            return self._config_member(config, attr, default)
        if isinstance(obj, E.Expr) and _is_config(obj):
            return E.Attr(obj, attr) if default is MISSING else E.GetAttr(obj, attr, self._as_expr(default))
        return NOT_CONFIG

    def has_member(self, obj: Any, attr: str) -> Any:
        """``hasattr(obj, attr)`` of a config, NOT_CONFIG for anything else:
        true for what the config class computes, sets or aliases (it is
        always there), else whether the checkpoint has the key (or its
        alias, for a config with no sglang class)."""
        config = obj if isinstance(obj, ConfigObject) else \
            self._config() if isinstance(obj, E.Expr) and obj == MC else None
        if config is not None and config.root is not None:
            found = self._config_member(config, attr)
            if not (isinstance(found, E.Attr) and found == E.Attr(config.root, attr)):
                return E.TRUE  # computed, a property, an alias or a class default: always there
            return E.HasAttr(config.root, attr)
        if isinstance(obj, E.Expr) and _is_config(obj):
            key = self._key(attr) if obj == MC else attr
            return E.HasAttr(obj, attr) if key == attr else E.BoolOp("or", E.HasAttr(obj, attr), E.HasAttr(obj, key))
        return NOT_CONFIG

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
        rooted = _rooted_choice(value)
        if rooted is not None:
            self._diag(M.ASSUMED_SUB_CONFIG, obj.node.loc, cls=obj.cls.name, attr=attr, built=rooted.cls.name,
                       key=E.to_source(rooted.root))
            return rooted
        whys = sorted({u.what for u in E.unknowns(value)}) if isinstance(value, E.Expr) else \
            [f"a {type(value).__name__} value"]
        raw = E.Attr(obj.root, attr) if obj.root is not None else E.Unknown(f"{obj.cls.name}.{attr}")
        self._config_fallbacks.append(raw)
        self._diag(M.CONFIG_ATTR, obj.node.loc, cls=obj.cls.name, attr=attr, whys=tuple(whys), raw=E.to_source(raw))
        return raw


def _rooted_choice(value: Any) -> Any:
    """``X() if raw is None else X(**raw)`` (configs/kimi_k3.py:92-97: a
    sub-config built from the checkpoint's, or from nothing where the
    checkpoint has none): the one built from the checkpoint's, which the
    emitted module reads (``sub_config(mc, name)``); None for anything else."""
    if not isinstance(value, Phi):
        return None
    test, then, orelse = value.test, value.then, value.orelse
    if not (isinstance(test, E.Compare) and test.op == "is" and test.right == E.NONE):
        return None
    if isinstance(then, ConfigObject) and then.root is None and isinstance(orelse, ConfigObject) \
            and orelse.root == test.left:
        return orelse
    return None
