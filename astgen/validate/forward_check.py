"""Stage 9b, the forward tier of validation: what sglang's forward pass ran
(recorded by ``astgen.sglang_runtime.forward`` on the meta device, one mode,
one rank) against astgen's operators evaluated at the same config and
schedule.

Both sides become :class:`Row`s of four kinds, each counted over the layers:

* ``matmul``: a matmul on a weight, ``m x k @ k x n`` in ``batch`` copies
  (sglang's ``F.linear`` on ``model.layers.3.mlp.down_proj.weight``);
* ``experts``: the routed experts' two matmuls, ``batch`` experts on the
  rank, ``m`` the tokens each receives under uniform routing (rounded up;
  the runtime records tokens x top-k, not which expert gets them);
* ``attention``: ``qk`` (``batch`` query heads, ``m`` query tokens, ``k`` the
  QK head dim, ``n`` the KV length) and ``pv`` (``k`` the KV length, ``n``
  the V head dim);
* ``collective``: a collective sglang's communication functions asked for,
  ``m x n`` the whole tensor (an all-gather's output, a reduce-scatter's
  input); the kind is what sglang asks its group for, not the kernel that
  implements it.

Matmuls pair by module path and shape, then by shape alone (MLA's absorbed
``w_kc`` / ``w_vc`` products are astgen's ``q_absorb`` / ``o_absorb``);
collectives by kind and size. What pairs with a different count, and what one
side has and the other has not, is a difference.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from astgen import expr as E
from astgen.lower.shapes import ArchShapes, Operator

MATMUL, EXPERTS, ATTENTION, COLLECTIVE = "matmul", "experts", "attention", "collective"
EXTEND, DECODE = 0, 1  # LLMSim's ForwardMode


@dataclass(frozen=True)
class Row:
    kind: str
    key: str  # module path without layer numbers; attention: "<path> qk" / "<path> pv"; collective: its kind
    m: int
    k: int
    n: int
    batch: int = 1
    count: int = 1
    where: str = ""  # astgen: sglang file:line of the operator; sglang: the caller

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return self.m, self.k, self.n, self.batch

    def show(self) -> str:
        if self.kind == COLLECTIVE:
            return f"{self.key} [{self.m}, {self.n}] x{self.count}"
        batch = f"{self.batch} x " if self.batch != 1 else ""
        return f"{self.key}: {batch}[{self.m}, {self.k}] @ [{self.k}, {self.n}] x{self.count}"


@dataclass
class ForwardCheck:
    mode: str  # "extend" / "decode"
    pairs: list[tuple[Row, Row]] = field(default_factory=list)  # (astgen, sglang), equal shapes and counts
    differ: list[tuple[Row, Row]] = field(default_factory=list)  # paired, another count or shape
    astgen_only: list[Row] = field(default_factory=list)
    sglang_only: list[Row] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # astgen operators that do not evaluate here

    @property
    def agrees(self) -> bool:
        return not (self.differ or self.astgen_only or self.sglang_only or self.problems)

    def lines(self) -> list[str]:
        out = [f"{a.where}: {self.mode}: astgen {a.show()}; sglang {s.show()}" for a, s in self.differ]
        out += [f"{a.where}: {self.mode}: astgen only: {a.show()}" for a in self.astgen_only]
        out += [f"{s.where}: {self.mode}: sglang only: {s.show()}" for s in self.sglang_only]
        return out + [f"{self.mode}: {p}" for p in self.problems]


# ----------------------------------------------------------------------------
# astgen's side: the operators at one config and schedule


def astgen_rows(shapes: ArchShapes, mc: Mapping[str, Any], sc: Mapping[str, Any]) -> tuple[list[Row], list[str]]:
    """Every operator whose guard holds, evaluated (a per-layer operator
    once per layer); what does not evaluate is a problem, never dropped."""
    decode = sc["mode"] == DECODE
    env = {"mc": mc, "sc": sc, "seq_len": sc["batch_size"] if decode else sc["max_seqlen"], "is_decode": decode}
    rows, problems = [], []
    for op in shapes.operators:
        try:
            for layer_env, count in _layers(op, env):
                if not E.evaluate(op.guard, layer_env):
                    continue
                m, k, n, batch = (E.evaluate(getattr(op, f), layer_env) for f in ("m", "k", "n", "batch"))
                rows.append(_astgen_row(op, int(m), int(k), int(n), int(batch), count))
        except (E.EvalError, TypeError, ValueError) as exc:
            problems.append(f"{op.loc}: {op.name} does not evaluate ({exc})")
    return rows, problems


def _layers(op: Operator, env: dict) -> Iterable[tuple[dict, int]]:
    count = E.evaluate(op.layers, env)
    if op.per_layer is None:
        yield env, int(count)
        return
    var, n = op.per_layer
    for i in range(int(E.evaluate(n, env))):
        yield {**env, var: i}, int(count)


def _astgen_row(op: Operator, m: int, k: int, n: int, batch: int, count: int) -> Row:
    where = str(op.loc)
    if op.kind == "transfer":
        return Row(COLLECTIVE, op.group, m, 0, n, 1, count, where)
    if op.kind == "attention":
        part = "pv" if op.name == "qkv" or op.name.endswith("_qkv") else "qk"
        return Row(ATTENTION, f"{op.path} {part}", m, k, n, batch, count, where)
    return Row(EXPERTS if op.counts_experts else MATMUL, op.path, m, k, n, batch, count, where)


# ----------------------------------------------------------------------------
# sglang's side: the recorded table


_LAYER = re.compile(r"\.(\*|\d+)(?=\.|$)")


def module_key(path: str) -> str:
    """``model.layers.*.mlp.down_proj.weight`` -> ``model.layers.mlp.down_proj``."""
    path = re.sub(r"\s*\(view\)$", "", path)
    path = re.sub(r"\.weight(\[\w+\])?$", "", path)
    return _LAYER.sub("", path)


def sglang_rows(table: list[dict[str, Any]]) -> list[Row]:
    rows: list[Row] = []
    for r in table:
        count, where = int(r.get("count", 1)), r.get("caller", "") or r.get("where", "")
        kind = r.get("kind")
        if kind == "matmul":
            rows.append(Row(MATMUL, module_key(r["param"]), r["M"], r["K"], r["N"], r.get("B", 1), count, where))
        elif kind == "moe":
            local, h = r["local_experts"], r["hidden"]
            # tokens per local expert under uniform routing, rounded up: a share of 0.25 of a
            # token still runs the expert's GEMM on one row (routing itself is data dependent)
            m = math.ceil(r["routed_local_uniform"] / max(1, local))
            path = module_key(r["where"])
            rows.append(Row(EXPERTS, path, m, h, r["w13"][1], local, count, where))
            rows.append(Row(EXPERTS, path, m, r["w2"][2], h, local, count, where))
        elif kind == "attention":
            tokens, kv = r["q"][0], int(str(r["kv_lens"]).split(" x ")[-1])
            path, heads = module_key(r["where"]), r["tp_q_head_num"]
            rows.append(Row(ATTENTION, f"{path} qk", tokens, r["qk_head_dim"], kv, heads, count, where))
            rows.append(Row(ATTENTION, f"{path} pv", tokens, kv, r["v_head_dim"], heads, count, where))
        elif kind == "collective":
            whole = r["out"] if r["op"].startswith("all_gather") else r["shape"]
            rows.append(Row(COLLECTIVE, _collective_kind(r["op"]), whole[0], 0, whole[-1], 1, count, where))
    return rows


def _collective_kind(op: str) -> str:
    """sglang's method names as astgen's kinds (``all_gather_into_tensor`` is an all-gather)."""
    for kind in ("all_reduce", "all_gather", "reduce_scatter", "all_to_all"):
        if kind in op:
            return kind
    return op


# ----------------------------------------------------------------------------
# pairing


def check(mode: str, ours: list[Row], theirs: list[Row], problems: Iterable[str] = ()) -> ForwardCheck:
    result = ForwardCheck(mode, problems=list(problems))
    ours, theirs = _merged(ours), _merged(theirs)
    for same in (_by_key_and_shape, _by_key, _by_shape):
        for a in list(ours):
            b = next((b for b in theirs if same(a, b)), None)
            if b is not None:
                (result.pairs if a.count == b.count and a.shape == b.shape else result.differ).append((a, b))
                ours.remove(a)
                theirs.remove(b)
    result.astgen_only, result.sglang_only = ours, theirs
    return result


def _merged(rows: list[Row]) -> list[Row]:
    """Rows equal but for their count (one per layer, or sglang's deferred
    reductions attributed to different callers) as one."""
    counts: Counter[tuple] = Counter()
    first: dict[tuple, Row] = {}
    for r in rows:
        key = (r.kind, r.key, r.shape)
        counts[key] += r.count
        first.setdefault(key, r)
    return [Row(r.kind, r.key, r.m, r.k, r.n, r.batch, counts[key], r.where) for key, r in first.items()]


def _by_key_and_shape(a: Row, b: Row) -> bool:
    return a.kind == b.kind and a.key == b.key and a.shape == b.shape


def _by_key(a: Row, b: Row) -> bool:
    return a.kind == b.kind and a.key == b.key and a.kind != COLLECTIVE


def _by_shape(a: Row, b: Row) -> bool:
    return a.kind == b.kind and a.shape == b.shape and a.count == b.count
