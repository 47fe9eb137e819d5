"""Stage 5c, classify: what kind of model an entry class is, read from its IR
and operators (never from its name), and how well astgen supports it.

Categories: ``dense``, ``moe``, ``mla``, ``mla+moe``, ``hybrid`` (linear
attention / state-space mixers beside attention), ``multimodal`` (a text
backbone plus towers; the backbone's category is kept as ``backbone``) and
``non-generative`` (embedding, reward and classification heads).

Status: ``FULLY`` (every layer known, every shape resolved), ``PARTIALLY``
(some operators resolved, the rest listed as reasons), ``NOT_SUPPORTED``
(unusable input, or no operator resolved).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from astgen import expr as E
from astgen import ir
from astgen.lower.shapes import ArchShapes, is_resolved
from astgen.rules import Rules

FULLY, PARTIALLY, NOT_SUPPORTED = "FULLY", "PARTIALLY", "NOT_SUPPORTED"
STATUSES = (FULLY, PARTIALLY, NOT_SUPPORTED)
CATEGORIES = ("dense", "moe", "mla", "mla+moe", "hybrid", "multimodal", "non-generative")


@dataclass(frozen=True)
class Reason:
    """Why an entry is not fully supported: the construct and where it is."""

    code: str
    subject: str
    location: str
    message: str


@dataclass(frozen=True)
class Tower:
    path: str
    cls: str
    location: str


@dataclass
class Classification:
    entry: str
    category: str
    backbone: str  # the text model's category (equal to category unless multimodal)
    head: str  # generative | embedding | reward | classification
    features: tuple[str, ...]
    towers: tuple[Tower, ...]
    status: str
    operators: int  # operators with every shape resolved
    reasons: tuple[Reason, ...] = field(default_factory=tuple)
    config_keys: tuple[str, ...] = ()  # mc.* keys read without a fallback
    optional_keys: tuple[str, ...] = ()  # mc.* keys read with a fallback


def classify(arch: ir.ArchIR, shapes: ArchShapes, rules: Rules) -> Classification:
    nodes = list(arch.root.walk(skip_towers=True))
    backbone = _backbone(nodes, shapes, rules)
    head = _head(nodes, shapes, rules)
    if head != "generative":
        category = "non-generative"
    elif arch.towers:
        category = "multimodal"
    else:
        category = backbone
    required, optional = _config_keys(shapes)
    return Classification(
        entry=arch.entry,
        category=category,
        backbone=backbone,
        head=head,
        features=_features(nodes, shapes, rules, backbone),
        towers=tuple(Tower(t.path(), t.cls, str(t.loc)) for t in arch.towers),
        status=_status(shapes),
        operators=sum(1 for op in shapes.operators if is_resolved(op)),
        reasons=_reasons(shapes, str(arch.root.loc)),
        config_keys=required,
        optional_keys=optional,
    )


def _has_class(nodes: list[ir.Node], names: frozenset[str]) -> bool:
    return any(n.cls in names for n in nodes)


def _backbone(nodes: list[ir.Node], shapes: ArchShapes, rules: Rules) -> str:
    if _has_class(nodes, rules.features.get("hybrid", frozenset())):
        return "hybrid"
    moe = any(rules.layer(n.cls) is not None and rules.layer(n.cls).category == "moe"
              for n in nodes if n.kind == ir.LAYER)
    if shapes.attention_type == "MLA":
        return "mla+moe" if moe else "mla"
    return "moe" if moe else "dense"


def _head(nodes: list[ir.Node], shapes: ArchShapes, rules: Rules) -> str:
    """generative when the model has logits over the vocabulary; otherwise the
    kind of head: a pooler alone (embedding), or a linear on top (reward when
    it has one output, classification otherwise)."""
    logits = rules.features.get("logits", frozenset())
    if any(n.cls in logits or (rules.layer(n.cls) is not None and rules.layer(n.cls).category == "lm_head")
           for n in nodes):
        return "generative"
    heads = [op for op in shapes.operators
             if op.kind == "matmul" and "." not in op.path and not op.name.endswith("all_reduce")]
    if not heads:
        return "embedding"
    return "reward" if all(op.n == E.Const(1) for op in heads) else "classification"


def _features(nodes: list[ir.Node], shapes: ArchShapes, rules: Rules, backbone: str) -> tuple[str, ...]:
    found: set[str] = set()
    attention = [n for n in nodes if n.kind == ir.LAYER and rules.layer(n.cls).attention is not None]
    for n in attention if shapes.attention_type != "MLA" else ():  # MLA's absorbed core is MQA by design
        heads, kv = n.args.get("num_heads"), n.args.get("num_kv_heads")
        if kv is not None and kv == E.Const(1):
            found.add("mqa")
        elif kv is not None and heads is not None and kv != heads:
            found.add("gqa")
        window = n.args.get("sliding_window_size")
        if window is not None and window not in (E.Const(-1), E.NONE):
            found.add("sliding-window")
    attrs = {n.attr for n in nodes}
    if attrs & rules.features.get("qk_norm", frozenset()):
        found.add("qk-norm")
    if attrs & rules.features.get("mtp", frozenset()):
        found.add("mtp")
    if any(n.kind == ir.ALIAS and n.target is not None and rules.layer(n.target.cls) is not None
           and rules.layer(n.target.cls).category == "embedding" for n in nodes):
        found.add("tied-embeddings")
    if any("tie_word_embeddings" in E.free_attrs(op.guard) for op in shapes.operators):
        found.add("tied-embeddings")
    prefixes = {part for op in shapes.operators for part in op.name.split("_")[:2]}
    if "shared" in prefixes:
        found.add("shared-experts")
    if {"dense", "moe"} <= {op.name.split("_")[0] for op in shapes.operators}:
        found.add("dense-then-moe")
    if shapes.attention_type == "MLA":
        found.add("mla")
    if backbone == "hybrid":
        found.add("linear-attention")
    return tuple(sorted(found))


def _status(shapes: ArchShapes) -> str:
    severities = {d.severity for d in shapes.diagnostics}
    if "error" in severities:
        return NOT_SUPPORTED
    if "incomplete" not in severities:
        return FULLY if shapes.operators else NOT_SUPPORTED
    if any(is_resolved(op) and op.kind == "matmul" for op in shapes.operators):
        return PARTIALLY
    return NOT_SUPPORTED


def _reasons(shapes: ArchShapes, entry_loc: str) -> tuple[Reason, ...]:
    seen: dict[tuple[str, str, str], Reason] = {}
    for d in shapes.diagnostics:
        if d.severity == "note":
            continue
        key = (d.code, d.subject or d.code, str(d.loc))
        if key not in seen:
            seen[key] = Reason(d.code, d.subject or d.code, str(d.loc), d.message)
    if not shapes.operators and not seen:
        seen[("no-operators", "", "")] = Reason(
            "no-operators", "no operators", entry_loc,
            "the constructor builds no layer that rules/ knows (its modules may be created outside __init__)")
    return tuple(seen.values())


def _config_keys(shapes: ArchShapes) -> tuple[tuple[str, ...], tuple[str, ...]]:
    required: set[str] = set()
    optional: set[str] = set()
    exprs = [shapes.kv_cache] + [getattr(op, f) for op in shapes.operators
                                 for f in ("m", "k", "n", "batch", "layers", "guard")]
    for e in exprs:
        r, o = E.config_keys(e)
        required |= r
        optional |= o
    return tuple(sorted(required)), tuple(sorted(optional - required))
