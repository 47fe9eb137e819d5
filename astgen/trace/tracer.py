"""The tracer: one entry class traced into an ArchIR, from the mixins of this package."""

from __future__ import annotations

import ast
import copy
from typing import Any

from astgen import expr as E
from astgen import messages as M
from astgen import ir
from astgen.frontend.loader import Loader
from astgen.frontend.parse import (
    ClassInfo,
    Location,
    ParsedModule,
)
from astgen.rules import Rules
from astgen.trace.builtins import Builtins
from astgen.trace.calls import Calls
from astgen.trace.classes import ClassModel
from astgen.trace.config import ConfigModel
from astgen.trace.expressions import Expressions
from astgen.trace.frame import Frame
from astgen.trace.names import Names
from astgen.trace.statements import Statements
from astgen.values import (
    ClassRef,
    Instance,
    Phi,
    RuleObject,
)


class Tracer(Statements, Expressions, Calls, Names, Builtins, ConfigModel, ClassModel):
    """A symbolic interpreter of one entry's __init__ (and the helpers it calls).

    Its parts are mixins, each in a module of this package; they share the
    state __init__ sets and call one another through self."""

    def __init__(self, loader: Loader, rules: Rules) -> None:
        self.loader = loader
        self.rules = rules
        self.diagnostics: list[ir.Diagnostic] = []
        self._seen_diag: set[tuple] = set()  # (kind, arguments, line) reported
        self.depth = 0
        self.frame: Frame | None = None
        self._module_values: dict[tuple[str, str], Any] = {}
        self._entry = ""  # the architecture being traced (config.architectures[0])
        self._config_cls: ClassInfo | None = None  # sglang's config class for it, when it has one
        self._config_obj: Instance | None = None  # that class's __init__, traced over mc
        self._enum_values: dict[str, Any] = {}  # "Cls.MEMBER" -> the member's value
        self._plain: dict[int, bool] = {}  # class node -> _plain_object's answer
        self._mros: dict[ClassInfo, list[ClassInfo]] = {}  # class -> its MRO (classes hash by identity)
        self._config_fallbacks: list[E.Expr] = []  # config attributes read as raw keys (_config_value)
        self._building: list[ir.Node] = []  # modules whose __init__ is running, outermost first
        # loops over a symbolic range skipped whose body builds modules: (the module whose
        # __init__ ran it, the attributes, where), reported once the towers are known
        self._skipped_loops: list[tuple[ir.Node | None, tuple[str, ...], Location]] = []
        # modules whose building hangs on a config helper astgen cannot read: (the module
        # whose __init__ builds them, their names, the helpers, where), reported as loops are
        self._assumed_built: list[tuple[ir.Node | None, tuple[str, ...], tuple[str, ...], Location]] = []
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
            self._diag(M.NO_CLASS, Location(pm.display, 0), cls=class_name)
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
            self._report_skipped_loops()
            self._report_assumed_built()
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
            self._diag(M.ENTRY_CONFIG, loc, factory=self.rules.entry_factory)
            return config
        return self._call(self._getattr(ref, method), [config], {}, str(loc))

    # -- diagnostics --------------------------------------------------
    def _diag(self, kind: M.Message, loc: Location, /, **args: Any) -> None:
        """Report ``kind`` (astgen.messages) at ``loc``, once per line and arguments."""
        diagnostic = ir.Diagnostic.of(kind, loc, **args)
        key = (kind, diagnostic.args, loc.line)
        if key not in self._seen_diag:
            self._seen_diag.add(key)
            self.diagnostics.append(diagnostic)

    def _here(self) -> Location:
        f = self.frame
        return Location(f.module.display, f.line) if f else Location("?", 0)

    # -- conditions of forward code (astgen.forward.flow) ---------------------
    def condition_reader(self) -> "ConditionReader":
        """A reader of the forward code's conditions with the value model of
        the entry this tracer traced (its config, the fields its modules
        kept): a copy of the tracer's state, so reading never changes the
        tracer or the IR, and its notes stay its own (those of __init__ are
        already reported)."""
        twin = copy.copy(self)
        twin.diagnostics, twin._seen_diag, twin.frame, twin.depth = [], set(), None, 0
        twin._mc_set, twin._building = dict(self._mc_set), []
        return ConditionReader(twin)

    def _shadow_attrs(self, node: ir.Node) -> dict[str, Any]:
        attrs: dict[str, Any] = dict(node.fields)
        for child in node.children:
            if child.attr and child.attr not in attrs:
                attrs[child.attr] = Instance(ir.Node(child.kind, child.cls, child.loc, args=child.args),
                                             None, attrs=dict(child.fields))
        return attrs

    def _scalar_fields(self, inst: Instance) -> dict[str, E.Expr]:
        """The resolved scalar attributes of a constructed instance."""
        out = {}
        for name, value in inst.attrs.items():
            if isinstance(value, (E.Expr, Phi)):
                e = self._as_expr(value)
                if not E.unknowns(e):
                    out[name] = e
        return out

    def _report_skipped_loops(self) -> None:
        """Modules built in a loop over a symbolic range: how many is not
        known, so the text model is incomplete; in a tower (not analyzed) a note."""
        for node, built, loc in self._skipped_loops:
            if node is not None and self._in_encoder(node):
                self._diag(M.SYMBOLIC_LOOP, loc)
            else:
                self._diag(M.SYMBOLIC_LOOP_MODULES, loc, built=built)

    def _report_assumed_built(self) -> None:
        """Modules that may or may not be built, as a config helper astgen
        cannot read decides: the entry is incomplete, unless they are in a
        multimodal encoder (not analyzed: DropPath in InternVL's vision layers)."""
        for node, built, calls, loc in self._assumed_built:
            if node is None or not self._in_encoder(node):
                self._diag(M.ASSUMED_BUILT, loc, built=built, calls=calls, first=calls[0])

    def _in_encoder(self, node: ir.Node) -> bool:
        """``node`` is part of a multimodal encoder: inside a tower, with an
        encoder's class on its way up to the tower or below it. A tower that
        wraps the text model too (muse_spark_omni.py: `model` holds the
        language model beside the encoders) does not make its text part one."""
        path = []
        for n in _ancestors(node):
            path.append(n)
            if n.tower:
                return any(self.rules.is_encoder_marker(p.cls) for p in path) or \
                    any(self.rules.is_encoder_marker(d.cls) for d in node.walk())
        return False

    def _report_unknown(self, root: ir.Node) -> None:
        """Unknown classes of the text model are incomplete; a multimodal
        tower is not analyzed, so its unknown classes are only noted."""
        for n in root.walk(skip_towers=True):
            if n.tower:
                unknown = sorted({u.cls for u in n.walk() if u.kind == ir.UNKNOWN})
                if unknown:
                    self._diag(M.TOWER_WITH_UNKNOWN, n.loc, path=n.path(), cls=n.cls, unknown=tuple(unknown))
                else:
                    self._diag(M.TOWER, n.loc, path=n.path(), cls=n.cls)
            elif n.kind == ir.UNKNOWN:
                self._diag(M.UNKNOWN_LAYER, n.loc, cls=n.cls, attr=n.attr or "?")


class ConditionReader:
    """An ``if`` test of a module's forward code (:mod:`astgen.forward.flow`), read
    with the value model of ``__init__``: ``self`` holds the fields and
    submodules the constructor left; methods it calls run on a shadow of the
    module. Runtime state no rule describes takes sglang's default (off)."""

    def __init__(self, tracer: Tracer) -> None:
        self._tracer = tracer

    def __call__(self, test: ast.expr, module: ParsedModule, node: ir.Node,
                 info: ClassInfo | None, objects: dict[str, str] | None = None) -> E.Expr:
        t = self._tracer
        inst = Instance(ir.Node(ir.MODULE, node.cls, node.loc), info, attrs=t._shadow_attrs(node))
        scope: dict[str, Any] = {name: RuleObject(obj) for name, obj in (objects or {}).items()}
        scope["self"] = inst
        t.diagnostics = []
        return t._truth(t._eval_in_module(test, module, scope))


def _ancestors(node: ir.Node):
    """The node and the nodes holding it, up to the root."""
    while node is not None:
        yield node
        node = node.parent
