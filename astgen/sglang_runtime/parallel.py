"""sglang's parallel state at one rank of a layout, with no process group.

sglang 0.5.23 reads every parallel size and rank from one context object
(``runtime_context.get_parallel()``, runtime_context.py:353), which its
scheduler fills in this order (managers/scheduler.py, distributed/bootstrap.py
``_init_parallel_groups``): ``publish`` of the server arguments and the
spawn ranks (sglang derives and checks every rank itself), the world group,
``parallel_state.initialize_model_parallel`` (the group arithmetic), then
``dp_attention.initialize_dp_attention`` and ``initialize_moe_config``.
The same code runs here unchanged. Only the group objects are not real:
``init_model_parallel_group`` returns a :class:`GroupCoordinator` subclass
that knows its ranks and makes no communicator, and torch.distributed is
told it is initialized at that world size and rank.
"""

from __future__ import annotations

import contextlib
from typing import Any


def _fake_group_class(ps):
    class FakeGroupCoordinator(ps.GroupCoordinator):
        """A group that knows its ranks and owns no communicator; every
        property of the real class (first_rank, is_first_rank ...) is
        inherited."""

        def __init__(self, group_ranks, global_rank: int, group_name: str | None) -> None:
            import torch

            self.unique_name = ps._get_unique_name(group_name or "anonymous")
            self.rank = global_rank
            self.local_rank = 0
            mine = [list(r) for r in group_ranks if global_rank in r]
            if len(mine) != 1:
                raise RuntimeError(f"rank {global_rank} is in {len(mine)} groups of {group_name}")
            self.ranks = mine[0]
            self.world_size = len(self.ranks)
            self.rank_in_group = self.ranks.index(global_rank)
            self.all_group_ranks = [list(r) for r in group_ranks]
            self.device_group = self.cpu_group = None
            self.device = torch.device("cpu")
            self.device_module = torch.get_device_module("cpu")
            self.local_size = 0

        def __getattr__(self, name: str) -> Any:
            # the flags and communicators the real __init__ sets: off, none
            if name.startswith("use_"):
                return False
            if name.endswith(("_comm", "_communicator", "_broadcaster")):
                return None
            raise AttributeError(name)

        def all_reduce(self, input_):  # shapes only
            return input_

    return FakeGroupCoordinator


@contextlib.contextmanager
def _patched(obj, **attrs):
    old = {k: getattr(obj, k) for k in attrs}
    for k, v in attrs.items():
        setattr(obj, k, v)
    try:
        yield
    finally:
        for k, v in old.items():
            setattr(obj, k, v)


# the fields of sglang's parallel context a report shows
CONTEXT_FIELDS = ("tp_size", "tp_rank", "attn_tp_size", "attn_tp_rank", "attn_dp_size", "attn_dp_rank",
                  "moe_ep_size", "moe_ep_rank", "moe_tp_size", "moe_tp_rank", "pp_size", "pp_rank")


def set_rank(server_args, tp_rank: int) -> dict[str, int]:
    """Fill sglang's parallel context for ``tp_rank`` of ``server_args``'s
    layout; returns the sizes and ranks sglang derived."""
    import torch
    from sglang.srt.distributed import parallel_state as ps
    from sglang.srt.layers import dp_attention
    from sglang.srt.runtime_context import (
        SpawnRanks,
        get_parallel,
        publish,
        spawn_world_rank,
    )

    world_rank = spawn_world_rank(server_args, tp_rank=tp_rank, pp_rank=0)
    publish(server_args, role="scheduler", ranks=SpawnRanks(world_rank=world_rank, dp_rank=None, gpu_id=0))
    context = get_parallel()
    world_size = context.tp_size * context.pp_size
    fake = _fake_group_class(ps)
    ps._WORLD = fake([list(range(world_size))], world_rank, "world")
    context.override_permanently(world_group=ps._WORLD)

    def init_model_parallel_group(group_ranks, local_rank, backend, *args, group_name=None, **kwargs):
        return fake(group_ranks, world_rank, group_name)

    with _patched(ps, init_model_parallel_group=init_model_parallel_group), \
            _patched(torch.distributed, is_initialized=lambda: True,
                     get_world_size=lambda group=None: world_size, get_rank=lambda group=None: world_rank):
        ps.initialize_model_parallel(backend="gloo")
    dp_attention.initialize_dp_attention(server_args)
    from sglang.srt.layers.moe import initialize_moe_config

    initialize_moe_config()
    context = get_parallel()
    return {name: int(getattr(context, name)) for name in CONTEXT_FIELDS}
