"""The forward tier's pairing (no torch): a recorded sglang table, written
out here as the runtime writes it, against astgen's operators."""

from __future__ import annotations

from astgen.validate.forward_check import (ATTENTION, COLLECTIVE, EXPERTS, MATMUL, Row, check, module_key,
                                  sglang_rows)

# Qwen3-30B-A3B at tp8 ep8, DECODE batch 8: rows as astgen.sglang_runtime.forward.summarize writes them
TABLE = [
    {"kind": "collective", "op": "all_reduce", "group": "tp", "shape": [8, 2048], "out": [8, 2048], "count": 1,
     "caller": "srt/layers/vocab_parallel_embedding.py:533 forward", "where": "model.embed_tokens"},
    {"kind": "matmul", "param": "model.layers.*.self_attn.qkv_proj.weight", "op": "linear", "B": 1, "M": 8,
     "K": 2048, "N": 768, "count": 48},
    {"kind": "attention", "where": "model.layers.*.self_attn.attn", "q": [8, 512], "tp_q_head_num": 4,
     "qk_head_dim": 128, "v_head_dim": 128, "kv_lens": "8 x 4096", "count": 48},
    {"kind": "moe", "where": "model.layers.*.mlp.experts", "local_experts": 16, "hidden": 2048,
     "w13": [16, 1536, 2048], "w2": [16, 2048, 768], "routed_local_uniform": 8.0, "count": 48},
    {"kind": "collective", "op": "all_reduce", "group": "tp", "shape": [8, 2048], "out": [8, 2048], "count": 48,
     "caller": "srt/layers/layer_boundary/ops.py:218 attn_tp_all_reduce"},
    {"kind": "collective", "op": "all_reduce", "group": "tp", "shape": [8, 2048], "out": [8, 2048], "count": 47,
     "caller": "srt/layers/layer_boundary/output.py:96 complete"},
    {"kind": "collective", "op": "all_reduce", "group": "tp", "shape": [8, 2048], "out": [8, 2048], "count": 1,
     "caller": "srt/layers/moe/utils.py:894 _post_experts_sum"},
    {"kind": "matmul", "param": "lm_head.weight (view)", "op": "matmul", "M": 8, "K": 2048, "N": 18992, "count": 1},
    {"kind": "collective", "op": "all_gather", "group": "tp", "shape": [8, 18992], "out": [8, 151936], "count": 1},
    {"kind": "attn_method", "where": "model.layers.*.self_attn", "method": "MLA", "count": 48},
]


def test_module_keys_drop_layer_numbers_and_weight_names():
    assert module_key("model.layers.*.mlp.down_proj.weight") == "model.layers.mlp.down_proj"
    assert module_key("model.layers.3.self_attn.kv_b_proj.weight[w_kc]") == "model.layers.self_attn.kv_b_proj"
    assert module_key("lm_head.weight (view)") == "lm_head"


def test_recorded_rows_in_astgen_terms():
    rows = sglang_rows(TABLE)
    assert rows[0] == Row(COLLECTIVE, "all_reduce", 8, 0, 2048, 1, 1, rows[0].where)
    assert rows[1] == Row(MATMUL, "model.layers.self_attn.qkv_proj", 8, 2048, 768, 1, 48, "")
    # attention as LLMSim's two products: QK (heads x [tokens, head_dim] @ [head_dim, kv]) and PV
    assert (rows[2].kind, rows[2].key, rows[2].shape) == (ATTENTION, "model.layers.self_attn.attn qk", (8, 128, 4096, 4))
    assert (rows[3].key, rows[3].shape) == ("model.layers.self_attn.attn pv", (8, 4096, 128, 4))
    # experts: 16 on the rank, 8 tokens x top-8 spread over 128 experts: 8 rows reach the rank's 16,
    # half a token per expert, rounded up to one row; gate_up [2048 -> 1536], down [768 -> 2048]
    assert [(r.kind, r.shape) for r in rows[4:6]] == [(EXPERTS, (1, 2048, 1536, 16)), (EXPERTS, (1, 768, 2048, 16))]
    # an all-gather is counted at its output: what every rank ends up holding
    assert (rows[-1].key, rows[-1].m, rows[-1].n) == ("all_gather", 8, 151936)
    assert all(r.kind != "attn_method" for r in rows)


def astgen_side(all_reduces: int = 96) -> list[Row]:
    return [Row(MATMUL, "model.layers.self_attn.qkv_proj", 8, 2048, 768, 1, 48, "qwen3.py:196"),
            Row(ATTENTION, "model.layers.self_attn.attn qk", 8, 128, 4096, 4, 48, "qwen3.py:223"),
            Row(ATTENTION, "model.layers.self_attn.attn pv", 8, 4096, 128, 4, 48, "qwen3.py:223"),
            Row(EXPERTS, "model.layers.mlp.experts", 1, 2048, 1536, 16, 48, "qwen3_moe.py:120"),
            Row(EXPERTS, "model.layers.mlp.experts", 1, 768, 2048, 16, 48, "qwen3_moe.py:120"),
            Row(COLLECTIVE, "all_reduce", 8, 0, 2048, 1, all_reduces // 2, "qwen3_moe.py:400"),
            Row(COLLECTIVE, "all_reduce", 8, 0, 2048, 1, all_reduces // 2, "qwen3_moe.py:410"),
            Row(MATMUL, "lm_head", 8, 2048, 18992, 1, 1, "qwen3_moe.py:900"),
            Row(COLLECTIVE, "all_gather", 8, 0, 151936, 1, 1, "qwen3_moe.py:900")]


def test_equal_sides_agree():
    # the embedding's all-reduce and the 48 + 48 of the layers: 97 of [8, 2048]
    result = check("decode", astgen_side(all_reduces=96) + [
        Row(COLLECTIVE, "all_reduce", 8, 0, 2048, 1, 1, "embed")], sglang_rows(TABLE))
    assert result.agrees and len(result.pairs) == 8 and result.lines() == []


def test_a_missing_collective_is_a_count_difference_at_astgens_line():
    result = check("decode", astgen_side(), sglang_rows(TABLE))
    assert not result.agrees
    assert result.lines() == ["qwen3_moe.py:400: decode: astgen all_reduce [8, 2048] x96; "
                              "sglang all_reduce [8, 2048] x97"]


def test_shapes_that_differ_pair_by_module_and_extra_operators_are_listed():
    ours = astgen_side(96) + [Row(COLLECTIVE, "all_reduce", 8, 0, 2048, 1, 1, "embed")]
    ours[0] = Row(MATMUL, "model.layers.self_attn.qkv_proj", 8, 2048, 640, 1, 48, "qwen3.py:196")  # KV heads not replicated
    ours.append(Row(MATMUL, "model.layers.mlp.shared_expert.gate_up_proj", 8, 2048, 512, 1, 48, "x.py:1"))
    router = {"kind": "matmul", "param": "model.layers.*.mlp.gate.weight", "op": "linear", "M": 8, "K": 2048,
              "N": 128, "count": 48, "caller": "qwen3_moe.py:210"}
    result = check("decode", ours, sglang_rows(TABLE + [router]))
    assert result.lines() == [
        "qwen3.py:196: decode: astgen model.layers.self_attn.qkv_proj: [8, 2048] @ [2048, 640] x48; "
        "sglang model.layers.self_attn.qkv_proj: [8, 2048] @ [2048, 768] x48",
        "x.py:1: decode: astgen only: model.layers.mlp.shared_expert.gate_up_proj: [8, 2048] @ [2048, 512] x48",
        "qwen3_moe.py:210: decode: sglang only: model.layers.mlp.gate: [8, 2048] @ [2048, 128] x48"]


def test_absorbed_products_pair_by_shape_when_names_differ():
    # sglang's bmm with kv_b_proj's w_kc is astgen's q_absorb on the attention module
    ours = [Row(MATMUL, "model.layers.self_attn", 8, 128, 512, 16, 61, "deepseek_v2.py:2100")]
    theirs = sglang_rows([{"kind": "matmul", "param": "model.layers.*.self_attn.kv_b_proj.weight[w_kc]",
                           "op": "bmm", "B": 16, "M": 8, "K": 128, "N": 512, "count": 61}])
    result = check("decode", ours, theirs)
    assert result.agrees and result.pairs[0][1].key == "model.layers.self_attn.kv_b_proj"
