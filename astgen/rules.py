"""Load the declarative rules in ``rules/`` (TOML data, no code).

``layers.toml`` says what each sglang layer class becomes; ``parallel.toml``
says where parallel sizes and runtime switches come from. Expression text in
them is read with :func:`astgen.expr.parse` once, here, and checked: a rule
that does not parse is a :class:`RulesError` naming the file and key.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
import tomllib
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from astgen import expr as E
from astgen.frontend.server_args import NOT_LITERAL, ServerArgSpec


def _default_rules_dir() -> Path:
    """rules/ beside the package in a checkout (editable install); in an
    installed wheel, the same files shipped as package ``astgen.rules_data``."""
    beside = Path(__file__).resolve().parent.parent / "rules"
    if (beside / "layers.toml").is_file():
        return beside
    from importlib.resources import files

    return Path(str(files("astgen.rules_data")))


DEFAULT_RULES_DIR = _default_rules_dir()


class RulesError(Exception):
    pass


@dataclass(frozen=True)
class OpRule:
    suffix: str
    k: E.Expr
    n: E.Expr
    m: E.Expr | None
    batch: E.Expr
    counts_experts: bool


@dataclass(frozen=True)
class LayerRule:
    name: str
    category: str
    params: tuple[str, ...]
    params_by_version: dict[str, tuple[str, ...]]
    defaults: dict[str, E.Expr]
    lets: tuple[tuple[str, E.Expr], ...]
    ops: tuple[OpRule, ...]
    transfers: tuple[dict[str, Any], ...]  # the layer's own collectives, in order
    attention: dict[str, E.Expr] | None
    tied_as: str | None
    attrs: dict[str, E.Expr] = field(default_factory=dict)  # what model code may read off an instance
    quantized: bool = False  # sglang's quant_config applies (a checkpoint's FP8 weights)
    # the package's method that adds one instance's operators (`helper`), with
    # what it takes: the names its expressions read that are not lets (its
    # arguments) and the server arguments they read (``switch.X``)
    helper: str = ""
    inputs: tuple[str, ...] = ()
    switches: tuple[str, ...] = ()

    def env(self, args: dict[str, E.Expr]) -> dict[str, E.Expr]:
        """Names a rule expression may use: defaults, the call's arguments,
        None for parameters left out, then the lets in order."""
        env: dict[str, E.Expr] = dict(self.defaults)
        env.update(args)
        for name in self.params:
            env.setdefault(name, E.NONE)
        for name, value in self.lets:
            env[name] = E.simplify(E.substitute(value, env))
        return env

    def params_for(self, version: str) -> tuple[str, ...]:
        for prefix, params in sorted(self.params_by_version.items(), key=lambda kv: -len(kv[0])):
            if version.startswith(prefix):
                return params
        return self.params


@dataclass(frozen=True)
class FunctionRule:
    name: str
    kind: str  # "expr" | "object" | "class" | "builtin"
    target: str  # object/class/builtin name
    value: E.Expr | None
    params: tuple[str, ...]


@dataclass(frozen=True)
class RuleMethod:
    """A method of a rules object (``call:EXPR`` in parallel.toml): calling it
    gives ``value`` (``get_moe_a2a_backend().is_deepep()`` is ``sc.deepep``)."""

    value: E.Expr


def _object_attr(obj: str, key: str, value: Any) -> "str | E.Expr | RuleMethod":
    if isinstance(value, str) and value.startswith("object:"):
        return value
    if isinstance(value, str) and value.startswith("call:"):
        return RuleMethod(_expr(value[len("call:"):], f"objects.{obj}.{key}"))
    return _expr(value, f"objects.{obj}.{key}")


@dataclass(frozen=True)
class ModeOp:
    """An operation a module's forward runs in one mode that its constructor
    does not show (MLA's absorbed ``torch.bmm`` with ``w_kc``); K, N and batch
    are expressions over the module's own fields."""

    name: str
    k: E.Expr
    n: E.Expr
    batch: E.Expr


@dataclass(frozen=True)
class CommStep:
    """A communication step of forward code: ``collective`` ("" for a local
    copy) of ``rows`` x hidden elements, when ``when`` holds; the module then
    holds ``then`` rows. Expressions over seq_len, rows, local, sc."""

    name: str
    collective: str
    when: E.Expr
    rows: E.Expr
    then: E.Expr | None


@dataclass(frozen=True)
class Finding:
    """Where sglang's own code looks wrong ([[findings]]): the module follows
    the code and says so."""

    classes: tuple[str, ...]
    when: E.Expr
    message: str
    cite: str


@dataclass(frozen=True)
class BoundaryReduction:
    """[boundary_reduction]: how sglang's layer boundaries return an FFN's
    output (per model when --boundary-reduction is auto), from ``since`` on."""

    since: str
    rsv: frozenset[str]  # architectures whose default is "rsv"
    ar: frozenset[str]  # ... "ar"
    ar_model_types: frozenset[str]  # text model types whose default is "ar"
    rsv_when: E.Expr  # the layout a reduce-scatterv return needs
    maxlen_when: E.Expr  # when DP attention pads to the longest replica

    def default(self, entry: str, model_types: tuple[str, ...]) -> str:
        """The entry's boundary reduction at --boundary-reduction auto."""
        if entry in self.rsv:
            return "rsv"
        return "ar" if entry in self.ar or self.ar_model_types & set(model_types) else "rs+rsv"


def _boundary_reduction(doc: dict[str, Any], where: str) -> "BoundaryReduction | None":
    if not doc:
        return None
    return BoundaryReduction(str(doc.get("since", "")), frozenset(doc.get("rsv", ())), frozenset(doc.get("ar", ())),
                             frozenset(doc.get("ar_model_types", ())),
                             *(_expr(doc.get(k, "False"), f"{where}.{k}") for k in ("rsv_when", "maxlen_when")))


@dataclass(frozen=True)
class AbsorbedExtend:
    since: str
    max_tokens: E.Expr
    graph: E.Expr


@dataclass(frozen=True)
class Execution:
    """rules/execution.toml: per-mode behaviour, precision, bandwidths."""

    bandwidth: dict[str, tuple[float, float]] = field(default_factory=dict)
    one_byte: tuple[str, ...] = ()
    sub_byte: tuple[str, ...] = ()
    kv_cache: dict[str, str] = field(default_factory=dict)
    mla_extend_only: tuple[str, ...] = ()
    mla_decode_only: tuple[str, ...] = ()
    mla_decode_ops: tuple[ModeOp, ...] = ()
    mla_cite: str = ""
    # EXTEND chunks up to max_tokens tokens run MLA's absorbed path, from version `since`
    # on, where sglang keeps its prefill CUDA graph (`graph`)
    mla_absorbed_extend: AbsorbedExtend | None = None
    collectives: dict[str, CommStep] = field(default_factory=dict)  # function name -> step
    boundary: dict[str, str] = field(default_factory=dict)  # "holder.method" -> role
    local: dict[str, E.Expr] = field(default_factory=dict)  # "moe" / "dense" -> FFN on own rows
    roles: dict[str, tuple[CommStep, ...]] = field(default_factory=dict)
    # a role -> the role whose rows it starts from unless given ([forward.rows_from])
    rows_from: dict[str, str] = field(default_factory=dict)
    mtp: dict[str, tuple[str, str]] = field(default_factory=dict)  # target -> (models file, draft entry)
    fused: dict[str, tuple[str, ...]] = field(default_factory=dict)  # fused layer -> the checkpoint's shards
    prefill_chunk: E.Expr = E.Const(0)  # tokens per prefill chunk ([prefill]; 0: one piece)
    findings: tuple[Finding, ...] = ()
    boundary_reduction: BoundaryReduction | None = None
    # a logits processor class -> the position of the argument its forward takes the
    # head's weights from ([forward.logits]: `self.logits_processor(ids, h, self.lm_head, fb)`)
    logits: dict[str, int] = field(default_factory=dict)


def _draft(target: str, value: Any) -> tuple[str, str]:
    if not isinstance(value, str) or value.count(":") != 1:
        raise RulesError(f"execution.mtp.{target}: expected \"models file:EntryClass\", got {value!r}")
    module, entry = value.split(":")
    return module, entry


def _load_execution(doc: dict[str, Any]) -> Execution:
    where = "execution"

    def _chunked(text: Any, at: str) -> E.Expr:  # `chunk` is [prefill] chunk
        chunk = _expr(doc.get("prefill", {}).get("chunk", "0"), f"{where}.prefill.chunk")
        return E.substitute(_expr(text, at), {"chunk": chunk})

    bandwidth = {}
    for name, pair in doc.get("bandwidth", {}).items():
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(v, (int, float)) for v in pair)):
            raise RulesError(f"{where}.bandwidth.{name}: expected [extend, decode] GB/s")
        bandwidth[name] = (float(pair[0]), float(pair[1]))
    precision = doc.get("precision", {})
    mla = doc.get("mla", {})
    ops = tuple(ModeOp(op["name"], _expr(op["k"], f"{where}.mla.decode_ops.k"),
                       _expr(op["n"], f"{where}.mla.decode_ops.n"),
                       _expr(op.get("batch", "1"), f"{where}.mla.decode_ops.batch"))
                for op in mla.get("decode_ops", []))
    absorbed = mla.get("absorbed_extend")
    forward = doc.get("forward", {})

    def step(name: str, spec: dict[str, Any], where: str) -> CommStep:
        collective = spec.get("collective", "")
        if collective and collective not in bandwidth:
            raise RulesError(f"{where}: collective {collective!r} has no [bandwidth] entry")
        then = spec.get("then")
        return CommStep(spec.get("name", name), collective, _expr(spec.get("when", "True"), f"{where}.when"),
                        _expr(spec.get("rows", "rows"), f"{where}.rows"),
                        _expr(then, f"{where}.then") if then is not None else None)

    collectives = {n: step(n, spec, f"{where}.forward.collectives.{n}")
                   for n, spec in forward.get("collectives", {}).items()}
    roles = {role: tuple(step(role, spec, f"{where}.forward.roles.{role}") for spec in specs)
             for role, specs in forward.get("roles", {}).items()}
    boundary = dict(forward.get("boundary", {}))
    for key, role in boundary.items():
        if role not in roles and role != "attn_entry":
            raise RulesError(f"{where}.forward.boundary.{key}: unknown role {role!r}")
    rows_from = dict(forward.get("rows_from", {}))
    for role, source in rows_from.items():
        if role not in roles or source not in roles:
            raise RulesError(f"{where}.forward.rows_from.{role}: unknown role {role if role not in roles else source!r}")
        if all(step.then is None or step.then == E.Name("seq_len") for step in roles[source]):
            raise RulesError(f"{where}.forward.rows_from.{role}: {source} always leaves seq_len rows")
    return Execution(bandwidth, tuple(precision.get("one_byte", ())), tuple(precision.get("sub_byte", ())),
                     dict(precision.get("kv_cache", {})), tuple(mla.get("extend_only", ())),
                     tuple(mla.get("decode_only", ())), ops, mla.get("cite", ""),
                     AbsorbedExtend(str(absorbed["since"]), _chunked(absorbed["max_tokens"], f"{where}.mla.absorbed_extend"),
                                    _chunked(absorbed.get("graph", "True"), f"{where}.mla.absorbed_extend"))
                     if absorbed else None,
                     collectives, boundary,
                     {k: _expr(v, f"{where}.forward.local.{k}") for k, v in forward.get("local", {}).items()},
                     roles, rows_from, {k: _draft(k, v) for k, v in doc.get("mtp", {}).items()},
                     {k: tuple(v) for k, v in precision.get("fused", {}).items()},
                     _expr(doc.get("prefill", {}).get("chunk", "0"), f"{where}.prefill.chunk"),
                     tuple(Finding(tuple(f["classes"]), _expr(f.get("when", "True"), f"{where}.findings.when"),
                                   str(f["message"]), str(f["cite"])) for f in doc.get("findings", [])),
                     _boundary_reduction(doc.get("boundary_reduction", {}), f"{where}.boundary_reduction"),
                     {k: int(v) for k, v in forward.get("logits", {}).items()})


@dataclass
class Rules:
    layers: dict[str, LayerRule]
    ignored: dict[str, str]  # class name -> group ("norms", "rotary" ...)
    functions: dict[str, FunctionRule]
    objects: dict[str, dict[str, "str | E.Expr | RuleMethod"]]
    entry: dict[str, E.Expr]
    digest: str
    version: str = field(default="1")
    mla_markers: tuple[str, ...] = ()
    mla_kv_attention: str = ""
    prefixes: dict[str, str] = field(default_factory=dict)
    values: dict[str, FunctionRule] = field(default_factory=dict)
    ignored_patterns: tuple[str, ...] = ()
    text_markers: frozenset[str] = frozenset()
    tower_markers: frozenset[str] = frozenset()
    features: dict[str, frozenset[str]] = field(default_factory=dict)
    traced: frozenset[str] = frozenset()  # layer classes and helpers traced like model code ([trace])
    trace_kinds: dict[str, tuple[str, ...]] = field(default_factory=dict)  # [trace] containers, namespaces
    execution: Execution = field(default_factory=Execution)
    config_attrs: dict[str, E.Expr] = field(default_factory=dict)  # set on every config by sglang ([config_attrs])
    # model_type -> (sub-config, attribute -> expression over `cfg`) ([config_rewrites])
    config_rewrites: dict[str, tuple[str, dict[str, E.Expr]]] = field(default_factory=dict)
    # what transformers' config answers for a key the checkpoint lacks ([config_properties])
    config_properties: dict[str, E.Expr] = field(default_factory=dict)
    # sglang's server arguments as switches (see bind_switches): the tree's
    # declarations, the values the user gave, the defaults sglang derives
    # ([switches]) and the namespace each rules object reads ([switch_objects])
    # model_type -> {attribute: the config.json key transformers reads it from} (config_aliases.toml)
    config_aliases: dict[str, dict[str, str]] = field(default_factory=dict)
    server_args: ServerArgSpec = field(default_factory=ServerArgSpec)
    given: dict[str, Any] = field(default_factory=dict)
    derived: dict[str, E.Expr] = field(default_factory=dict)
    switch_objects: dict[str, str] = field(default_factory=dict)
    _switch_cache: dict[str, E.Expr] = field(default_factory=dict, repr=False, compare=False)
    unbound: "Rules | None" = field(default=None, repr=False, compare=False)  # as read, `switch.X` kept
    # another family of model source (rules/<flavour>.toml, as read): see for_flavour
    flavours: dict[str, dict] = field(default_factory=dict, repr=False, compare=False)
    flavour: str = "sglang"
    base: "Rules | None" = field(default=None, repr=False, compare=False)  # another family's: sglang's, as read
    display: str = "sglang"  # the source family's name in emitted text
    mapping: str = ""  # how an emitted header states another family's parallelism (rules/<flavour>.toml)
    # "module:Class.method" building the entry's `config` from mc (mini-sglang's ModelConfig.from_hf)
    entry_factory: str = ""
    # "module.Name" -> the tracer builtin it is read as ([builtins])
    builtins: dict[str, str] = field(default_factory=dict)

    def for_flavour(self, name: str) -> "Rules":
        """The rules for a tree of another family of model source: its
        tables (rules/<name>.toml) replace sglang's entries of the same
        names, its entry replaces sglang's. The digest covers every file."""
        if name == self.flavour:
            return self
        key = (self.digest, name)
        if key not in _FLAVOURED:
            doc = self.flavours.get(name)
            if doc is None:
                raise RulesError(f"no rules for {name} model source (rules/{name}.toml)")
            entry = dict(doc.get("entry", {}))
            factory = entry.pop("config_factory", "")
            functions, objects = _load_functions(doc), _load_objects(doc)
            ignored, _ = _load_ignored(doc)
            unbound = self.unbound or self
            chunk = doc.get("prefill", {}).get("chunk")
            execution = unbound.execution if chunk is None else \
                replace(unbound.execution, prefill_chunk=_expr(chunk, f"{name}.prefill.chunk"))
            flavoured = replace(
                unbound, flavour=name, base=unbound, display=doc.get("display", name), mapping=doc.get("mapping", ""),
                entry_factory=factory, builtins=dict(doc.get("builtins", {})),
                layers={**unbound.layers, **_load_layers(doc.get("layers", {}))},
                ignored={**unbound.ignored, **ignored}, functions={**unbound.functions, **functions},
                objects={**unbound.objects, **objects}, execution=execution,
                entry={k: _expr(v, f"{name}.entry.{k}") for k, v in entry.items()},
                derived={k: _expr(v, f"{name}.switches.{k}") for k, v in doc.get("switches", {}).items()},
                server_args=ServerArgSpec(), given={}, _switch_cache={})
            _FLAVOURED[key] = _bind_all(flavoured)
        return _FLAVOURED[key]

    def switch(self, name: str) -> E.Expr:
        """How the analysis reads server argument ``name``: ``getattr(sc,
        name, V)``, an LLMSim schedule field of that name winning over V, the
        value the user gave, else the default sglang derives ([switches]),
        else the declared one; None for a field this sglang does not have."""
        if name not in self._switch_cache:
            self._switch_cache[name] = E.GetAttr(E.Name("sc"), name, E.NONE)  # a cycle reads None
            if name in self.given:
                value: E.Expr = _const(self.given[name])
            elif name in self.derived:
                value = self.bind(self.derived[name])
            else:
                arg = self.server_args.args.get(name)
                value = _const(arg.default) if arg is not None else E.NONE
            self._switch_cache[name] = E.GetAttr(E.Name("sc"), name, value)
        return self._switch_cache[name]

    def switch_of(self, obj: str, attr: str) -> E.Expr | None:
        """Attribute ``attr`` of rules object ``obj`` (``get_parallel()``,
        ``get_global_server_args()``) when it is a server argument of the
        namespace the object reads, with a scalar default: a switch."""
        namespace = self.switch_objects.get(obj)
        arg = self.server_args.args.get(attr)
        if namespace is None or arg is None or arg.kind not in ("bool", "int", "float", "str"):
            return None
        if namespace != "*" and arg.namespace not in ("", namespace):
            return None
        if attr not in self.given and attr not in self.derived and arg.default is NOT_LITERAL:
            return None
        return self.switch(attr)

    def bind(self, e: E.Expr) -> E.Expr:
        """``e`` with each ``switch.NAME`` of rules text read as :meth:`switch` does."""
        found = {x: self.switch(x.name) for x in E.walk(e)
                 if isinstance(x, E.Attr) and x.obj == E.Name(SWITCH)}
        return E.replace_all(e, found) if found else e

    def is_kind(self, cls: str, kind: str) -> bool:
        """``cls`` matches a name or glob of ``[trace] kind`` and has no layer rule."""
        return cls not in self.layers and any(fnmatch.fnmatchcase(cls, p) for p in self.trace_kinds.get(kind, ()))

    def layer(self, cls: str) -> LayerRule | None:
        return self.layers.get(cls)

    def is_ignored(self, cls: str) -> bool:
        """Listed under [ignored], by name or by a glob pattern (``*RMSNorm``)."""
        return cls in self.ignored or any(fnmatch.fnmatchcase(cls, p) for p in self.ignored_patterns)

    def is_encoder_marker(self, cls: str) -> bool:
        """A class only a vision/audio encoder holds ([towers] encoder, globs allowed)."""
        return any(fnmatch.fnmatchcase(cls, p) for p in self.tower_markers)

    def is_text_marker(self, cls: str) -> bool:
        """A class only a language model holds: its LM head, its logits, a
        pooler ([towers] text, and every lm_head rule). Embeddings are not:
        vision towers use them for positions."""
        rule = self.layers.get(cls)
        return cls in self.text_markers or (rule is not None and rule.category == "lm_head")


SWITCH = "switch"  # rules text names server argument X as `switch.X`


def _const(value: Any) -> E.Expr:
    return E.Const(value) if value is None or isinstance(value, (bool, int, float, str)) else E.NONE


def _bound(obj: Any, rules: "Rules") -> Any:
    """``obj`` (a rule, a table of them) with its expressions' switches bound."""
    if isinstance(obj, E.Expr):
        return rules.bind(obj)
    if isinstance(obj, dict):
        return {k: _bound(v, rules) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        return type(obj)(_bound(v, rules) for v in obj)
    if hasattr(obj, "__dataclass_fields__") and not isinstance(obj, type):
        changes = {f: _bound(getattr(obj, f), rules) for f in obj.__dataclass_fields__}
        return replace(obj, **changes)
    return obj


_FLAVOURED: dict[tuple[str, str], "Rules"] = {}
FLAVOUR_FILES = ("minisgl",)  # rules/<name>.toml: other families of model source


def bind_switches(rules: "Rules", server_args: ServerArgSpec, given: dict[str, Any] | None = None) -> "Rules":
    """The rules with sglang's server arguments bound: ``server_args`` read
    from the tree (``astgen.frontend.server_args.read_server_args``), ``given`` the
    values of the user's launch flags. Every ``switch.X`` of rules text, and
    every server argument model code reads through a rules object, becomes
    ``getattr(sc, "X", value)``. The digest covers the values."""
    given = dict(given or {})
    rules = rules.unbound or rules
    digest = hashlib.sha256(rules.digest.encode())
    digest.update(repr(sorted(given.items())).encode())
    digest.update(repr(sorted((a.name, a.namespace, repr(a.default)) for a in server_args.args.values())).encode())
    fresh = replace(rules, server_args=server_args, given=given, digest=digest.hexdigest()[:12], _switch_cache={})
    return _bind_all(fresh, rules)


def _bind_all(rules: "Rules", unbound: "Rules | None" = None) -> "Rules":
    """``rules`` with every expression's switches bound; ``unbound``: the
    rules as read, which a later binding starts from (its digest too)."""
    keep = ("server_args", "given", "derived", "switch_objects", "_switch_cache", "digest", "version", "unbound",
            "flavours", "flavour", "base", "entry_factory", "builtins", "display", "mapping")
    changes = {f: _bound(getattr(rules, f), rules) for f in rules.__dataclass_fields__ if f not in keep}
    return replace(rules, unbound=unbound or rules, **changes)


def _expr(text: Any, where: str) -> E.Expr:
    if isinstance(text, bool) or isinstance(text, int):
        return E.Const(text)
    if not isinstance(text, str):
        raise RulesError(f"{where}: expected expression text, got {text!r}")
    try:
        return E.parse(text)
    except E.ParseError as exc:
        raise RulesError(f"{where}: {exc}") from None


def load_rules(directory: Path | None = None) -> Rules:
    directory = Path(directory or DEFAULT_RULES_DIR)
    digest = hashlib.sha256()
    data = {}
    for name in ("layers.toml", "parallel.toml", "execution.toml"):
        path = directory / name
        try:
            raw = path.read_bytes()
            data[name] = tomllib.loads(raw.decode("utf-8"))
        except OSError as exc:
            raise RulesError(f"{path}: cannot read rules ({exc.strerror})") from None
        except tomllib.TOMLDecodeError as exc:
            raise RulesError(f"{path}: {exc}") from None
        digest.update(raw)
    flavours = {}
    for name in FLAVOUR_FILES:
        path = directory / f"{name}.toml"
        if path.is_file():
            raw = path.read_bytes()
            try:
                flavours[name] = tomllib.loads(raw.decode("utf-8"))
            except tomllib.TOMLDecodeError as exc:
                raise RulesError(f"{path}: {exc}") from None
            digest.update(raw)
    layers_doc, par_doc = data["layers.toml"], data["parallel.toml"]
    aliases = _load_aliases(directory, digest)
    layers = _load_layers(layers_doc.get("layers", {}))
    ignored, patterns = _load_ignored(layers_doc)
    towers = layers_doc.get("towers", {})
    functions, objects = _load_functions(par_doc), _load_objects(par_doc)
    entry = {k: _expr(v, f"entry.{k}") for k, v in par_doc.get("entry", {}).items()}
    config_attrs = {k: _expr(v, f"config_attrs.{k}") for k, v in par_doc.get("config_attrs", {}).items()}
    rewrites = _load_rewrites(par_doc.get("config_rewrites", {}))
    exec_doc = data["execution.toml"]
    version = f"{layers_doc.get('version', 1)}.{par_doc.get('version', 1)}.{exec_doc.get('version', 1)}"
    values = {n: _load_function(n, {"value": v}) for n, v in par_doc.get("values", {}).items()}
    mla = layers_doc.get("mla", {})
    rules = Rules(layers, ignored, functions, objects, entry, digest.hexdigest()[:12], version,
                 tuple(mla.get("markers", ())), mla.get("kv_attention", ""),
                 dict(layers_doc.get("naming", {}).get("prefixes", {})), values, patterns,
                 frozenset(towers.get("text", ())), frozenset(towers.get("encoder", ())),
                 {k: frozenset(v) for k, v in layers_doc.get("features", {}).items()},
                 frozenset(layers_doc.get("trace", {}).get("classes", ()))
                 | frozenset(layers_doc.get("trace", {}).get("functions", ())),
                 {k: tuple(v) for k, v in layers_doc.get("trace", {}).items() if k not in ("classes", "functions")},
                 _load_execution(exec_doc), config_attrs, rewrites,
                 config_aliases=aliases,
                 config_properties={k: _expr(v, f"config_properties.{k}")
                                    for k, v in par_doc.get("config_properties", {}).items()},
                 derived={k: _expr(v, f"switches.{k}") for k, v in par_doc.get("switches", {}).items()},
                 switch_objects=dict(par_doc.get("switch_objects", {})), flavours=flavours)
    return _bind_all(rules)


@dataclass(frozen=True)
class NameMap:
    """rules/oracle.toml: how oracle module names pair with sglang's (for
    the module table of ``astgen validate``; counts never depend on it)."""

    fused: dict[str, str]  # HF projection -> the sglang module it is fused into
    stacked: tuple[str, ...]  # attribute names of expert lists


def load_name_map(directory: Path | None = None) -> NameMap:
    path = Path(directory or DEFAULT_RULES_DIR) / "oracle.toml"
    try:
        doc = tomllib.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise RulesError(f"{path}: cannot read rules ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{path}: {exc}") from None
    return NameMap(dict(doc.get("fused", {})), tuple(doc.get("stacked", {}).get("lists", ())))


def _load_layers(doc: dict[str, Any]) -> dict[str, LayerRule]:
    out: dict[str, LayerRule] = {}
    for name, spec in doc.items():
        if "same_as" not in spec:
            out[name] = _load_layer(name, spec)
    for name, spec in doc.items():
        if "same_as" in spec:
            base = out.get(spec["same_as"])
            if base is None:
                raise RulesError(f"layers.{name}: same_as names unknown rule {spec['same_as']!r}")
            out[name] = replace(base, name=name)
    return out


CATEGORIES = ("linear", "moe", "attention", "embedding", "lm_head", "param", "ssm")
_KNOWN_KEYS = {"category", "params", "params_by_version", "defaults", "let", "ops", "transfer",
               "attention", "tied_as", "attrs", "quantized", "helper"}


def _load_layer(name: str, spec: dict[str, Any]) -> LayerRule:
    where = f"layers.{name}"
    extra = set(spec) - _KNOWN_KEYS
    if extra:
        raise RulesError(f"{where}: unknown keys {sorted(extra)}")
    if spec.get("category") not in CATEGORIES:
        raise RulesError(f"{where}: bad category {spec.get('category')!r}")
    ops = tuple(
        OpRule(
            suffix=op.get("suffix", ""),
            k=_expr(op["k"], f"{where}.ops.k"),
            n=_expr(op["n"], f"{where}.ops.n"),
            m=_expr(op["m"], f"{where}.ops.m") if "m" in op else None,
            batch=_expr(op.get("batch", "1"), f"{where}.ops.batch"),
            counts_experts=bool(op.get("counts_experts", False)),
        )
        for op in spec.get("ops", [])
    )
    transfer = spec.get("transfer", [])
    transfers = tuple({k: (_expr(v, f"{where}.transfer.{k}") if k not in ("kind", "name") else v)
                       for k, v in t.items()} for t in (transfer if isinstance(transfer, list) else [transfer]))
    attention = spec.get("attention")
    if attention is not None:
        attention = {k: _expr(v, f"{where}.attention.{k}") for k, v in attention.items()}
    rule = LayerRule(
        name=name,
        category=spec["category"],
        params=tuple(spec.get("params", ())),
        params_by_version={k: tuple(v) for k, v in spec.get("params_by_version", {}).items()},
        defaults={k: _expr(v, f"{where}.defaults.{k}") for k, v in spec.get("defaults", {}).items()},
        lets=tuple((k, _expr(v, f"{where}.let.{k}")) for k, v in spec.get("let", {}).items()),
        ops=ops,
        transfers=transfers,
        attention=attention,
        tied_as=spec.get("tied_as"),
        attrs={k: _expr(v, f"{where}.attrs.{k}") for k, v in spec.get("attrs", {}).items()},
        quantized=bool(spec.get("quantized", spec["category"] in ("linear", "moe"))),
    )
    return _with_helper(rule, spec.get("helper", ""), where)


def _with_helper(rule: LayerRule, helper: str, where: str) -> LayerRule:
    """A rule whose instances the package adds with one method call: its
    operators must be what the method can compute from its arguments alone
    (no tokens of the forward, no attention core, no quantized weights)."""
    if not helper:
        return rule
    if not helper.isidentifier():
        raise RulesError(f"{where}.helper: {helper!r} is not a method name")
    exprs = [e for _, e in rule.lets] + [e for op in rule.ops for e in (op.m, op.k, op.n, op.batch)]
    exprs += [v for t in rule.transfers for k, v in t.items() if k not in ("kind", "name")]
    why = ("it has an attention core" if rule.attention is not None else
           "its weights are quantized" if rule.quantized else
           "an operator has no m" if any(op.m is None for op in rule.ops) else
           "a transfer has no rows or is a MoE's" if any("rows" not in t or t["kind"] == "moe"
                                                        for t in rule.transfers) else "")
    names = set().union(*(E.free_names(e) for e in exprs if e is not None)) if exprs else set()
    lets = [name for name, _ in rule.lets]
    if not why and "seq_len" in names:
        why = "it reads seq_len"
    if not why and set(lets) & (set(rule.params) | set(rule.defaults)):
        why = "a let shadows a parameter"
    if why:
        raise RulesError(f"{where}.helper: a helper reproduces a rule whole, and {why}")
    switches = sorted({x.name for e in exprs if e is not None for x in E.walk(e)
                       if isinstance(x, E.Attr) and x.obj == E.Name(SWITCH)})
    free = names - set(lets) - {"sc", SWITCH}
    inputs = [p for p in (*rule.params, *rule.defaults) if p in free]  # as the constructor lists them
    inputs = list(dict.fromkeys(inputs)) + sorted(free - set(inputs))
    return replace(rule, helper=helper, inputs=tuple(inputs), switches=tuple(switches))


def _load_aliases(directory: Path, digest: Any) -> dict[str, dict[str, str]]:
    """config_aliases.toml (optional in a rules directory of one's own)."""
    path = directory / "config_aliases.toml"
    if not path.is_file():
        return {}
    raw = path.read_bytes()
    digest.update(raw)
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{path}: {exc}") from None
    return {k: dict(v) for k, v in doc.get("aliases", {}).items() if isinstance(v, dict)}


def _load_functions(doc: dict[str, Any]) -> dict[str, FunctionRule]:
    """A rules file's [functions]: called by name in model code."""
    return {fn: _load_function(fn, spec) for fn, spec in doc.get("functions", {}).items()}


def _load_objects(doc: dict[str, Any]) -> dict[str, dict[str, "str | E.Expr | RuleMethod"]]:
    """A rules file's [objects.*]: what their attributes and methods read as."""
    return {obj: {k: _object_attr(obj, k, v) for k, v in attrs.items()}
            for obj, attrs in doc.get("objects", {}).items()}


def _load_ignored(doc: dict[str, Any]) -> tuple[dict[str, str], tuple[str, ...]]:
    """A rules file's [ignored]: class name -> group, and the name patterns."""
    groups = doc.get("ignored", {})
    names = {cls: group for group, listed in groups.items() for cls in listed if "*" not in cls}
    return names, tuple(cls for listed in groups.values() for cls in listed if "*" in cls)


def _load_function(name: str, spec: dict[str, Any]) -> FunctionRule:
    value = spec.get("value")
    params = tuple(spec.get("params", ()))
    if isinstance(value, str) and ":" in value and value.split(":", 1)[0] in ("object", "class", "builtin"):
        kind, target = value.split(":", 1)
        return FunctionRule(name, kind, target, None, params)
    return FunctionRule(name, "expr", "", _expr(value, f"functions.{name}"), params)


def _load_rewrites(doc: dict) -> dict[str, tuple[str, dict[str, E.Expr]]]:
    out: dict[str, tuple[str, dict[str, E.Expr]]] = {}
    for model_type, spec in doc.items():
        base = doc.get(spec.get("same_as", model_type), spec)
        attrs = {k: _expr(v, f"config_rewrites.{model_type}.{k}") for k, v in base.items() if k not in ("sub",)}
        out[model_type] = (base.get("sub", ""), attrs)
    return out


@lru_cache(maxsize=1)
def _model_types_text() -> str:
    try:
        return (DEFAULT_RULES_DIR / "model_types.toml").read_text("utf-8")
    except OSError:
        return ""


@lru_cache(maxsize=4096)
def model_types_of(arch: str) -> tuple[str, ...]:
    """Hugging Face model_type names of one architecture (rules/model_types.toml,
    from transformers' auto tables). The table has 2,000+ rows and one line
    per architecture: a line lookup is 30x cheaper than a full TOML parse,
    and reads the line with tomllib all the same."""
    m = re.search(rf"^{re.escape(arch)} = \[.*\]$", _model_types_text(), re.M)
    return tuple(tomllib.loads(m.group(0))[arch]) if m else ()
