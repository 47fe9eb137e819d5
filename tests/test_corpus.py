"""Corpus tests on real sglang wheels: the seven target architectures.

For each, astgen emits a module with no unknown layer and no unresolved
expression; the module is executed in the LLMSim stand-in with the real
configs in tests/data/hf_configs at several parallel layouts. At tp=1 the
matmul weights add up to the hand-derived linear-parameter counts in
expected_params.py (arithmetic written out there).
"""

from __future__ import annotations

import pytest

from tests.expected_params import EXPECTED
from tests.helpers import analyzed, build, load_config, matmul_params, ops_by_name
from tests.llmsim_stub.config import ForwardMode

VERSIONS = ["0.5.23", "0.4.6"]
# config file -> (sglang model file, EntryClass)
CASES = {
    "meta-llama__Llama-2-7b-chat-hf": ("llama", "LlamaForCausalLM"),
    "meta-llama__Meta-Llama-3-8B": ("llama", "LlamaForCausalLM"),
    "Qwen__Qwen2-7B": ("qwen2", "Qwen2ForCausalLM"),
    "Qwen__Qwen2.5-7B": ("qwen2", "Qwen2ForCausalLM"),
    "Qwen__Qwen3-8B": ("qwen3", "Qwen3ForCausalLM"),
    "Qwen__Qwen3-32B": ("qwen3", "Qwen3ForCausalLM"),
    "Qwen__Qwen3-30B-A3B": ("qwen3_moe", "Qwen3MoeForCausalLM"),
    "Qwen__Qwen3-235B-A22B": ("qwen3_moe", "Qwen3MoeForCausalLM"),
    "mistralai__Mixtral-8x7B-v0.1": ("mixtral", "MixtralForCausalLM"),
    "deepseek-ai__DeepSeek-V2-Lite": ("deepseek_v2", "DeepseekV2ForCausalLM"),
    "deepseek-ai__DeepSeek-R1": ("deepseek_v2", "DeepseekV3ForCausalLM"),
}

def emitted(sglang_tree, version: str, stem: str):
    result, module = analyzed(sglang_tree(version), stem)
    return result, [d.render() for d in result.diagnostics if d.severity != "note"], module


def arch_for(sglang_tree, version: str, config_name: str, **sched):
    """The emitted arch of a config's architecture, built at a layout."""
    stem, entry = CASES[config_name]
    _, _, module = emitted(sglang_tree, version, stem)
    return build(module, entry, load_config(config_name), **sched)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("stem", sorted({s for s, _ in CASES.values()}))
def test_emits_without_unknowns(sglang_tree, version, stem):
    result, problems, module = emitted(sglang_tree, version, stem)
    assert problems == []
    assert module is not None
    entries = {e for s, e in CASES.values() if s == stem}
    assert entries <= set(module.ARCHITECTURES)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("config_name", sorted(CASES))
def test_tp1_linear_params_match_hand_count(sglang_tree, version, config_name):
    arch = arch_for(sglang_tree, version, config_name, tp=1)
    assert matmul_params(arch) == EXPECTED[config_name]["total_linear_params"]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("config_name", sorted(CASES))
def test_kv_cache_bytes_per_token(sglang_tree, version, config_name):
    arch = arch_for(sglang_tree, version, config_name, tp=1)
    assert arch.get_kv_cache() == EXPECTED[config_name]["kv_cache_bytes_per_token_bf16"]


def _per_rank_expected(name: str, size1: int, tp: int, config: dict, kind_of) -> int:
    kind = kind_of(name)
    if kind == "replicated":
        return size1
    if kind == "qkv":
        heads = config["num_attention_heads"]
        kv = config.get("num_key_value_heads") or heads
        head_dim = config.get("head_dim") or config["hidden_size"] // heads
        return config["hidden_size"] * (heads // tp + 2 * max(1, kv // tp)) * head_dim
    return size1 // tp


def _kind(name: str) -> str:
    if name in ("qkv_proj",):
        return "qkv"
    # absorbed MLA matmuls: one matrix per head (the heads are their batch)
    if name in ("gate", "moe_gate", "fused_qkv_a_proj_with_mqa", "kv_a_proj_with_mqa", "q_absorb", "o_absorb"):
        return "replicated"
    return "sharded"


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("config_name", sorted(CASES))
@pytest.mark.parametrize("tp", [2, 4, 8])
def test_tp_shards_as_sglang_does(sglang_tree, version, config_name, tp):
    """Per-rank matmul weights are the tp=1 weights divided as sglang shards
    them: column/row-parallel by tp, KV heads replicated when fewer than tp,
    replicated linears whole; experts (ep=1) split their intermediate dim."""
    config = load_config(config_name)
    one = ops_by_name(arch_for(sglang_tree, version, config_name, tp=1))
    many = ops_by_name(arch_for(sglang_tree, version, config_name, tp=tp))
    assert set(one) == set(many)
    for name, md in one.items():
        size1 = md.io_config.weight_shape.size()
        got = many[name].io_config.weight_shape.size()
        assert got == _per_rank_expected(name, size1, tp, config, _kind), name
        assert many[name].num_layers == md.num_layers
        if name in ("q_absorb", "o_absorb"):
            assert many[name].batch_size == config["num_attention_heads"] // tp


@pytest.mark.parametrize("config_name", ["Qwen__Qwen3-30B-A3B", "deepseek-ai__DeepSeek-V2-Lite"])
@pytest.mark.parametrize("mode", [ForwardMode.EXTEND, ForwardMode.DECODE])
def test_expert_parallel_and_modes(sglang_tree, config_name, mode):
    config = load_config(config_name)
    experts = config.get("num_experts") or config.get("n_routed_experts")
    arch = arch_for(sglang_tree, "0.5.23", config_name, tp=8, ep=8, mode=mode, deepep=True)
    ops = ops_by_name(arch)
    up = next(md for name, md in ops.items() if name.endswith("experts_gate_up"))
    assert up.batch_size == experts // 8
    assert up.io_config.weight_shape.n == 2 * config["moe_intermediate_size"]  # moe_tp = 1
    seq = 4096 if mode == ForwardMode.EXTEND else 8
    assert up.io_config.input_shape.m == max(1, seq // 8 * config["num_experts_per_tok"] // (experts // 8))
    transfers = {op.metadata.name: op for op in arch.transfer_operators}
    # DeepEP all-to-alls named as LLMSim names them, each token to its top-k experts
    assert transfers["dispatch"].metadata.batch_size == config["num_experts_per_tok"]
    assert transfers["combine"].metadata.batch_size == config["num_experts_per_tok"]
    assert transfers["dispatch"]._bandwidth_gb_s == (85.0 if mode == ForwardMode.EXTEND else 18.58)
    assert not any(k.endswith("experts_all_reduce") for k in transfers)


def test_deepseek_dense_and_moe_layers_counted_separately(sglang_tree):
    config = load_config("deepseek-ai__DeepSeek-R1")
    _, _, module = emitted(sglang_tree, "0.5.23", "deepseek_v2")
    ops = ops_by_name(build(module, "DeepseekV3ForCausalLM", config, tp=1))
    assert ops["dense_gate_up_proj"].num_layers == 3
    assert ops["moe_experts_gate_up"].num_layers == 58
    assert ops["moe_experts_gate_up"].batch_size == 256
    assert ops["moe_gate"].io_config.weight_shape.size() == 7168 * 256
    # MLA projections with their real shapes (q_a fused with kv_a, as sglang does)
    h, q_lora, kv_lora, rope, nope, v, heads = 7168, 1536, 512, 64, 128, 128, 128
    assert ops["fused_qkv_a_proj_with_mqa"].io_config.weight_shape.size() == h * (q_lora + kv_lora + rope)
    assert ops["q_b_proj"].io_config.weight_shape.size() == q_lora * heads * (nope + rope)
    assert ops["o_proj"].io_config.weight_shape.size() == heads * v * h
    # 0.5.23 runs a 4,096-token prefill under its prefill CUDA graph: the
    # absorbed path (no kv_b_proj); a chunk past 8,192 tokens (one chunk of
    # 16,384 here), eagerly, the MHA path
    assert "kv_b_proj" not in ops and ops["q_absorb"].batch_size == heads
    long = ops_by_name(build(module, "DeepseekV3ForCausalLM", config, tp=1, max_seqlen=16384,
                             chunked_prefill_size=16384))
    assert long["kv_b_proj"].io_config.weight_shape.size() == kv_lora * heads * (nope + v)
    assert "q_absorb" not in long


def test_operator_names_come_from_sglang_attributes(sglang_tree):
    _, _, module = emitted(sglang_tree, "0.5.23", "qwen3")
    arch = build(module, "Qwen3ForCausalLM", load_config("Qwen__Qwen3-8B"), tp=2)
    names = [op.metadata.name for op in arch.operators]
    assert names == ["qkv_proj", "o_proj", "gate_up_proj", "down_proj", "lm_head"]
    # the vocab-parallel embedding sums its shards' lookups (qwen2.py:370,
    # vocab_parallel_embedding.py:514-533); o_proj and down_proj are built with
    # reduce_results=False: the layer boundaries reduce once after attention
    # and once after the MLP
    assert [op.metadata.name for op in arch.transfer_operators] == [
        "embed_tokens_all_reduce", "attn_all_reduce", "ffn_all_reduce", "lm_head_all_gather"]
    assert [op.metadata.name for op in arch.attention_operators["attention"]] == ["attn_qk", "qkv"]  # LLMSim's name for P.V
