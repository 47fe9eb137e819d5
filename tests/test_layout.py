"""A layout in LLMSim's terms and in sglang's: the server arguments that
deploy it and the group sizes and ranks sglang derives at each rank."""

from __future__ import annotations

import pytest

from astgen.lower.layout import SWEEP_LAYOUTS, Layout, LayoutError, parse_layout


@pytest.mark.parametrize("text, layout", [
    ("tp8", Layout(tp=8)),
    ("tp=1,dp=8,ep=8,deepep", Layout(tp=1, dp=8, ep=8, deepep=True)),
    ("tp 4 dp 2 ep 8 rank 3", Layout(tp=4, dp=2, ep=8, rank=3)),
    ("TP8, fully-dp", Layout(tp=8, fully_dp=True)),
])
def test_parse(text, layout):
    assert parse_layout(text) == layout


@pytest.mark.parametrize("text, message", [
    ("tp8 pp2", "not understood: 'pp2'"),
    ("tp4 ep3", "ep 3 does not divide the world of 4 ranks"),
    ("tp2 rank 2", "rank 2 is outside the world of 2 ranks"),
    ("tp8 deepep", "deepep needs an expert parallel size above 1"),
    ("tp0", "tp must be at least 1"),
])
def test_layouts_that_cannot_be_deployed_say_why(text, message):
    with pytest.raises(LayoutError, match=message):
        parse_layout(text)


def test_llmsim_schedule_and_sglang_server_args_of_one_layout():
    # LLMSim: tp is the attention TP inside one of dp replicas; sglang: --tp-size is the world
    layout = Layout(tp=4, dp=2, ep=8, deepep=True)
    assert layout.label == "tp4 dp2 ep8 deepep"
    sc = layout.schedule()
    assert (sc["tp_size"], sc["dp_size"], sc["ep_size"], sc["world_size"], sc["deepep"]) == (4, 2, 8, 8, True)
    assert layout.server_args() == {"tp_size": 8, "dp_size": 2, "ep_size": 8, "enable_dp_attention": True,
                                    "moe_a2a_backend": "deepep", "deepep_mode": "normal"}
    assert Layout(tp=8, fully_dp=True).server_args() == {"tp_size": 8, "dp_size": 1, "ep_size": 1,
                                                         "enable_dp_attention": False, "moe_dense_tp_size": 1}


def test_group_ranks_follow_sglangs_arithmetic():
    # attention TP innermost (dp_attention.compute_dp_attention_world_info: attn_tp_rank =
    # tp_rank % attn_tp_size, attn_dp_rank = tp_rank // attn_tp_size); an EP group strides by
    # the MoE TP size (parallel_state.initialize_model_parallel), so moe_ep_rank = tp_rank // moe_tp
    layout = Layout(tp=4, dp=2, ep=2, rank=5)
    assert layout.ranks() == {"tp": (8, 5), "attn_tp": (4, 1), "attn_dp": (2, 1), "moe_ep": (2, 1),
                              "moe_tp": (4, 1)}
    assert Layout(tp=1, dp=8, ep=8, rank=3).ranks()["moe_ep"] == (8, 3)


def test_the_sweep_checks_one_tp_one_wide_tp_and_one_dp_attention_ep_layout():
    assert [layout.label for layout in SWEEP_LAYOUTS] == ["tp1", "tp8", "tp1 dp8 ep8"]
