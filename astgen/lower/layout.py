"""A parallel layout of one deployment, in LLMSim's terms and in sglang's.

LLMSim's schedule (``sc``) says ``tp_size`` for the attention TP inside one
DP replica and ``dp_size`` for the replicas: the world is ``tp * dp``. sglang
says ``--tp-size`` for the world, ``--dp-size`` with
``--enable-dp-attention`` for the replicas (attention TP is then
``tp_size // dp_size``, layers/dp_attention.py ``compute_dp_attention_world_info``),
``--ep-size`` for the expert parallel size, ``--moe-a2a-backend deepep`` for
DeepEP and ``--moe-dense-tp-size 1`` for the dense FFN on one rank. A
:class:`Layout` holds both readings, so that astgen's per-rank weights and
sglang's runtime are evaluated at the same one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


class LayoutError(ValueError):
    """A layout that cannot be deployed (the message says why)."""


@dataclass(frozen=True)
class Layout:
    tp: int = 1  # attention TP inside one DP replica (sc.tp_size)
    dp: int = 1  # DP-attention replicas (sc.dp_size)
    ep: int = 1  # expert parallel size (sc.ep_size)
    deepep: bool = False  # --moe-a2a-backend deepep (sc.deepep)
    fully_dp: bool = False  # --moe-dense-tp-size 1 (sc.enable_moe_dense_fully_dp)
    rank: int = 0  # the global rank recorded

    def __post_init__(self) -> None:
        for name in ("tp", "dp", "ep"):
            if getattr(self, name) < 1:
                raise LayoutError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.world % self.ep:
            raise LayoutError(f"ep {self.ep} does not divide the world of {self.world} ranks (tp {self.tp} x dp {self.dp})")
        if not 0 <= self.rank < self.world:
            raise LayoutError(f"rank {self.rank} is outside the world of {self.world} ranks")
        if self.deepep and self.ep == 1:
            raise LayoutError("deepep needs an expert parallel size above 1")

    @property
    def world(self) -> int:
        return self.tp * self.dp

    @property
    def label(self) -> str:
        """``tp8``, ``tp1 dp8 ep8 deepep``; the rank only when not 0."""
        parts = [f"tp{self.tp}"] + [f"{k}{v}" for k, v in (("dp", self.dp), ("ep", self.ep)) if v > 1]
        parts += [flag for flag, on in (("deepep", self.deepep), ("fully-dp", self.fully_dp)) if on]
        if self.rank:
            parts.append(f"rank{self.rank}")
        return " ".join(parts)

    def schedule(self, **fields: Any) -> dict[str, Any]:
        """LLMSim's schedule fields for this layout (``fields`` on top)."""
        return {"tp_size": self.tp, "dp_size": self.dp, "ep_size": self.ep, "world_size": self.world,
                "num_nodes": 1, "deepep": self.deepep, "enable_moe_dense_fully_dp": self.fully_dp,
                "is_mtp": False, "max_seqlen": 4096, "batch_size": 1, "mode": 0, **fields}

    def server_args(self) -> dict[str, Any]:
        """sglang's ``ServerArgs`` fields that deploy this layout."""
        args: dict[str, Any] = {"tp_size": self.world, "dp_size": self.dp, "ep_size": self.ep,
                                "enable_dp_attention": self.dp > 1}
        if self.deepep:
            args.update(moe_a2a_backend="deepep", deepep_mode="normal")
        if self.fully_dp:
            args["moe_dense_tp_size"] = 1
        return args

    def ranks(self) -> dict[str, tuple[int, int]]:
        """(size, rank in group) of each of sglang's groups at this rank: the
        world TP group, attention TP and DP, MoE EP and MoE TP. Attention TP
        is innermost (dp_attention.compute_dp_attention_world_info), and so
        is MoE TP: an EP group's ranks stride by the MoE TP size
        (parallel_state.initialize_model_parallel, ``range(st, en, moe_tp_size)``)."""
        moe_tp = self.world // self.ep
        return {"tp": (self.world, self.rank), "attn_tp": (self.tp, self.rank % self.tp),
                "attn_dp": (self.dp, self.rank // self.tp), "moe_ep": (self.ep, self.rank // moe_tp),
                "moe_tp": (moe_tp, self.rank % moe_tp)}


_PART = re.compile(r"(tp|dp|ep|rank)=?(\d+)|(deepep|fully-dp|fully_dp)")


def parse_layout(text: str) -> Layout:
    """``tp8``, ``tp=1,dp=8,ep=8,deepep``, ``tp 4 dp 2 ep 8 rank 3``."""
    values: dict[str, Any] = {}
    rest = re.sub(r"[\s,]+", " ", text.strip().lower())
    for token in re.sub(r"(tp|dp|ep|rank) (\d)", r"\1\2", rest).split():
        m = _PART.fullmatch(token)
        if m is None:
            raise LayoutError(f"not a layout: {text!r} (not understood: {token!r}; "
                              "write e.g. tp8, or tp1,dp8,ep8,deepep)")
        if m.group(3):
            values["fully_dp" if m.group(3).startswith("fully") else "deepep"] = True
        else:
            values[m.group(1)] = int(m.group(2))
    return Layout(**values)


# the layouts `validate --oracle sglang --all` checks every entry at
SWEEP_LAYOUTS = (Layout(), Layout(tp=8), Layout(tp=1, dp=8, ep=8))
