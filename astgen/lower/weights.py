"""Stage 5b, weights: the IR evaluated at one concrete config.

Walks the module tree as sglang's ``__init__`` would build it for that
config: guards decided, every repeated list unrolled (``model.layers.0``,
``model.layers.1`` ...), and each leaf's weight element count computed from
its operators (``batch * K * N`` of each matmul, the sizes ``shapes`` emits).
The paths are sglang's own attribute paths, so they line up with the
runtime's ``named_modules()``; ``astgen validate`` compares them with an
oracle.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from astgen import expr as E
from astgen import messages as M
from astgen import ir
from astgen.frontend.parse import Location
from astgen.lower.layout import Layout
from astgen.lower.shapes import node_operators
from astgen.rules import Rules

# rule categories whose weights are left out of a comparison, and why
EXCLUDED_CATEGORIES = {
    "embedding": "embedding (a lookup table, not a matmul)",
    "lm_head": "LM head (sglang pads the vocabulary; often tied to the embedding)",
}

BIAS = "bias (left out on both sides; stacked expert biases are 2-D)"
TOWER = "multimodal tower (left out on both sides: astgen lists it, does not analyze it)"


def is_bias(name: str) -> bool:
    """A bias parameter (``bias``, ``e_score_correction_bias``, ``gate_up_proj_bias``),
    by its last dotted component: the rule both sides of a validation use."""
    last = name.rpartition(".")[2]
    return last == "bias" or last.endswith("_bias")


def join_path(path: str, attr: str) -> str:
    """A dotted module path: ``model`` + ``layers`` (either may be empty)."""
    return f"{path}.{attr}" if path and attr else (path or attr)


@dataclass(frozen=True)
class Weight:
    """The weights of one module instance at a concrete config."""

    path: str  # model.layers.3.mlp.experts
    cls: str
    numel: int
    loc: Location
    repeats: tuple[tuple[str, int], ...] = ()  # (list path, index), outermost first
    quantized: bool = False  # built with sglang's quant_config: the checkpoint's quantized dtype
    batches: tuple[int, ...] = ()  # each matmul's batch (experts on this rank; 1 for a linear)


@dataclass(frozen=True)
class Excluded:
    path: str
    cls: str
    why: str
    loc: Location


@dataclass
class WeightTable:
    entry: str
    weights: list[Weight] = field(default_factory=list)
    excluded: list[Excluded] = field(default_factory=list)
    towers: list[str] = field(default_factory=list)  # paths of multimodal towers (listed, not analyzed)
    problems: list[ir.Diagnostic] = field(default_factory=list)  # what could not be evaluated

    def stack(self) -> tuple[str, int] | None:
        """The decoder stack: the outermost repeated list holding the most
        weight, as (path, number of layers)."""
        totals: dict[str, int] = {}
        sizes: dict[str, int] = {}
        for w in self.weights:
            if w.repeats:
                path, i = w.repeats[0]
                totals[path] = totals.get(path, 0) + w.numel
                sizes[path] = max(sizes.get(path, 0), i + 1)
        if not totals:
            return None
        best = max(sorted(totals), key=lambda p: totals[p])
        return best, sizes[best]

    def layer_of(self, w: Weight, stack: str) -> int | None:
        return w.repeats[0][1] if w.repeats and w.repeats[0][0] == stack else None


def evaluate_weights(arch: ir.ArchIR, rules: Rules, mc: Mapping[str, Any], tp: int = 1,
                     layout: Layout | None = None) -> WeightTable:
    """The weights one rank holds: at ``layout`` when given, else at TP ``tp``."""
    table = WeightTable(arch.entry)
    sc = (layout or Layout(tp=tp)).schedule()
    _Walker(rules, table).node(arch.root, "", {"mc": mc, "sc": sc, "seq_len": 1}, ())
    return table


class _Walker:
    def __init__(self, rules: Rules, table: WeightTable) -> None:
        self.rules, self.table = rules, table

    def node(self, node: ir.Node, path: str, env: dict, repeats: tuple) -> None:
        if node.kind in (ir.LAYER, ir.PARAM, ir.ALIAS):
            self.leaf(node, path, env, repeats)
        elif node.kind == ir.LIST and node.repeat is not None:
            self.unroll(node, path, env, repeats)
        elif node.kind in (ir.MODULE, ir.LIST):
            self.children(node, path, env, repeats)

    def children(self, node: ir.Node, path: str, env: dict, repeats: tuple) -> None:
        for child in node.children:
            if child.tower and self.holds(child, env):
                where = join_path(path, child.attr)
                self.table.towers.append(where)
                self.table.excluded.append(Excluded(where, child.cls, TOWER, child.loc))
            if child.tower or not self.holds(child, env):
                continue
            self.node(child, join_path(path, child.attr), env, repeats)

    def unroll(self, node: ir.Node, path: str, env: dict, repeats: tuple) -> None:
        n = self.value(node.repeat, env, node, path)
        if not isinstance(n, int):
            return
        for i in range(n):
            inner = {**env, node.repeat_var: i} if node.repeat_var else env
            for item in node.children:
                if self.holds(item, inner):
                    self.node(item, join_path(f"{path}.{i}", item.attr), inner, repeats + ((path, i),))

    def holds(self, node: ir.Node, env: dict) -> bool:
        return node.guard == E.TRUE or bool(self.value(node.guard, env, node, node.path()))

    def leaf(self, node: ir.Node, path: str, env: dict, repeats: tuple) -> None:
        if node.kind == ir.ALIAS:
            target = node.target.path() if node.target is not None else "?"
            self.table.excluded.append(Excluded(path, node.cls, f"the same module as {target} (tied)", node.loc))
            return
        rule = self.rules.layer(node.cls)
        if rule is not None and rule.category in EXCLUDED_CATEGORIES:
            self.table.excluded.append(Excluded(path, node.cls, EXCLUDED_CATEGORIES[rule.category], node.loc))
            return
        if node.kind == ir.PARAM and is_bias(node.attr):
            self.table.excluded.append(Excluded(path, node.cls, BIAS, node.loc))
            return
        if node.kind == ir.PARAM:
            numel, quantized, batches = self.param_numel(node, env, path), False, ()
        else:
            matmuls = [op for op in node_operators(node, self.rules) if op.kind == "matmul"]
            sizes = [[self.value(getattr(op, f), env, node, path) for f in ("batch", "k", "n")] for op in matmuls]
            if not all(isinstance(d, int) for dims in sizes for d in dims):
                return
            numel, quantized = sum(math.prod(dims) for dims in sizes), any(op.quantized for op in matmuls)
            batches = tuple(dims[0] for dims in sizes)
        if numel:
            # a parameter is named by the module that holds it, as in named_modules()
            where = path.rpartition(".")[0] if node.kind == ir.PARAM else path
            self.table.weights.append(Weight(where, node.cls, numel, node.loc, repeats, quantized, batches))

    def param_numel(self, node: ir.Node, env: dict, path: str) -> int | None:
        """An nn.Parameter of two or more dims (1-D ones are biases and norm
        scales, left out on both sides)."""
        if len(node.args) < 2:
            return None
        dims = [self.value(node.args[k], env, node, path) for k in sorted(node.args)]
        return math.prod(dims) if all(isinstance(d, int) for d in dims) else None

    def value(self, e: E.Expr, env: dict, node: ir.Node, path: str) -> Any:
        try:
            return E.evaluate(e, env)
        except E.MissingKey as exc:
            self.problem(node, M.MISSING_KEY, key=exc.path, what=node.path() or node.cls)
        except E.EvalError as exc:
            self.problem(node, M.UNEVALUATED, expr=E.to_source(e), what=node.path() or node.cls, error=str(exc))
        return None

    def problem(self, node: ir.Node, kind: M.Message, **args: Any) -> None:
        """Once per construct: the same node fails in every layer alike."""
        diag = ir.Diagnostic.of(kind, node.loc, **args)
        if diag not in self.table.problems:
            self.table.problems.append(diag)


def quantization_config(mc: Mapping[str, Any]) -> dict[str, Any]:
    """A checkpoint's quantization_config ({} when none): a multimodal
    checkpoint's is in its text_config, which sglang copies up."""
    qc = mc.get("quantization_config") if isinstance(mc, Mapping) else None
    text = mc.get("text_config") if isinstance(mc, Mapping) else None
    if qc is None and isinstance(text, Mapping):
        qc = text.get("quantization_config")
    return qc if isinstance(qc, dict) else {}


def one_byte(mc: Mapping[str, Any], path: str, rules: Rules) -> bool:
    """A quantized module at ``path`` stores weights of one byte or less
    under this config: what an emitted module's ``_weight_dtype`` decides
    (its quantization_config's method is 8-bit or narrower, and
    ``modules_to_not_convert`` / ``ignored_layers`` / ``ignore`` do not name
    the module)."""
    qc = quantization_config(mc)
    methods = set(rules.execution.one_byte) | set(rules.execution.sub_byte)
    if str(qc.get("quant_method", "")).lower() not in methods:
        return False
    # modules_to_not_convert (transformers), ignored_layers (fp8), ignore (compressed-tensors)
    left_out = [*(qc.get("modules_to_not_convert") or []), *(qc.get("ignored_layers") or []),
                *(qc.get("ignore") or [])]
    if any(_names(name, path) for name in left_out):
        return False
    head, _, proj = path.rpartition(".")
    shards = rules.execution.fused.get(proj)
    # a fused layer (qkv_proj) as its first shard (q_proj) is: compressed_tensors/utils.py:40-70
    return not (shards and any(_names(name, f"{head}.{shards[0]}" if head else shards[0]) for name in left_out))


def _names(name: str, path: str) -> bool:
    """``name`` of a quantization_config (with or without layer numbers, or a
    ``re:`` pattern) is the module at ``path``."""
    bare = re.sub(r"\.\d+(?=\.|$)", "", path)
    if name.startswith("re:"):
        return bool(re.search(name[3:], path) or re.search(name[3:], bare))
    name = re.sub(r"\.\d+(?=\.|$)", "", name)
    return bare == name or bare.endswith("." + name) or bare.startswith(name + ".")
