"""Real checkpoints of hybrid and sparse-attention architectures, end to end
(tests/data/checkpoints, sources in its README; sglang 0.5.23).

Each checkpoint's own config.json, read through sglang's config class as
astgen traces it: the emitted module runs in the LLMSim stand-in at every
layout of tests/test_execution.py, the weights of every decoder layer equal
transformers', and the layers each kind of block occupies are the ones
sglang's config class computes (worked out by hand below, file:line under
sglang/srt)."""

from __future__ import annotations

import json
import math
import re

import pytest

from astgen.lower.weights import evaluate_weights
from tests.helpers import REPO, RULES, analyzed, model_config, schedule
from tests.llmsim_stub.config import ForwardMode
from tests.llmsim_stub.perf_calculator import forward_time_ms
from tests.test_validate import AGREE, cli, needs_oracle

pytestmark = pytest.mark.corpus

CHECKPOINTS = REPO / "tests" / "data" / "checkpoints"
# config file -> (model file, EntryClass)
MODELS = {
    "Qwen__Qwen3-Next-80B-A3B": ("qwen3_next", "Qwen3NextForCausalLM"),
    "Qwen__Qwen3.5-397B-A17B": ("qwen3_5", "Qwen3_5MoeForConditionalGeneration"),
    "deepseek-ai__DeepSeek-V3.2": ("deepseek_v2", "DeepseekV32ForCausalLM"),
    "zai-org__GLM-5": ("glm4_moe", "GlmMoeDsaForCausalLM"),
    "nvidia__Nemotron-H-56B-Base-8K": ("nemotron_h", "NemotronHForCausalLM"),
    "mistralai__Mamba-Codestral-7B-v0.1": ("mamba2", "Mamba2ForCausalLM"),
    "tiiuae__Falcon-H1-0.5B-Instruct": ("falcon_h1", "FalconH1ForCausalLM"),
    "moonshotai__Kimi-Linear-48B-A3B-Instruct": ("kimi_linear", "KimiLinearForCausalLM"),
    "Qwen__Qwen3.5-27B": ("qwen3_5", "Qwen3_5ForConditionalGeneration"),
    "XiaomiMiMo__MiMo-V2-Flash": ("mimo_v2", "MiMoV2FlashForCausalLM"),
    "google__gemma-4-26B-A4B": ("gemma4_mm", "Gemma4ForConditionalGeneration"),
    # every size in text_config, read through the top level as sglang's loader copies it
    # (utils/hf_transformers/config.py:258-268)
    "Qwen__Qwen3-VL-32B-Instruct": ("qwen3_vl", "Qwen3VLForConditionalGeneration"),
    # a DeepSeek-V3-style text_config with an int4 compressed-tensors quantization_config
    # whose `ignore` keeps attention and the shared experts in bf16
    "moonshotai__Kimi-K2.5": ("kimi_k25", "KimiK25ForConditionalGeneration"),
}
# checked by the sglang runtime instead (tests/test_runtime_oracle.py)
TRANSFORMERS_LACKS = {"moonshotai__Kimi-K2.5": "KimiK25ForConditionalGeneration"}
# Gemma 4 with attention_k_eq_v: sglang allocates V in its fused QKV of each
# full-attention layer and loads K into it (gemma4_causal.py:1337-1345);
# transformers has no v_proj there. Every other layer agrees.
K_EQ_V = "google__gemma-4-26B-A4B"
LAYOUTS = [(1, 16, 16, True, True), (4, 4, 16, True, False), (8, 1, 1, False, False), (2, 1, 1, False, False)]

def config(name: str) -> dict:
    return json.loads((CHECKPOINTS / f"{name}.json").read_text())


def result_of(sglang_tree, name: str):
    stem, entry = MODELS[name]
    result, module = analyzed(sglang_tree("0.5.23"), stem, entry)
    assert result.source, [d.render() for d in result.diagnostics]
    return result, module


def layers_holding(sglang_tree, name: str, module: str) -> list[int]:
    """Decoder layers whose weights include ``module`` (a path suffix)."""
    result, _ = result_of(sglang_tree, name)
    table = evaluate_weights(result.irs[0], RULES, config(name))
    assert not table.problems, [d.render() for d in table.problems]
    found = set()
    for w in table.weights:
        m = re.search(r"\.layers\.(\d+)\.(.+)$", w.path)
        if m and m.group(2) == module:
            found.add(int(m.group(1)))
    return sorted(found)


def per_layer(sglang_tree, name: str, prefix: str) -> dict[int, int]:
    """Weight elements under ``layers.<i>.<prefix>``, per layer."""
    result, _ = result_of(sglang_tree, name)
    out: dict[int, int] = {}
    for w in evaluate_weights(result.irs[0], RULES, config(name)).weights:
        m = re.search(r"\.layers\.(\d+)\." + re.escape(prefix) + r"(\.|$)", w.path)
        if m:
            out[int(m.group(1))] = out.get(int(m.group(1)), 0) + w.numel
    return out


@pytest.mark.parametrize("name", sorted(MODELS))
def test_module_runs_on_the_checkpoint_config_at_every_layout(sglang_tree, name):
    _, module = result_of(sglang_tree, name)
    entry = MODELS[name][1]
    for tp, dp, ep, deepep, fully_dp in LAYOUTS:
        for mode, batch in ((ForwardMode.EXTEND, 1), (ForwardMode.DECODE, 64)):
            sc = schedule(tp=tp, dp=dp, ep=ep, mode=mode, deepep=deepep, fully_dp=fully_dp, batch=batch)
            arch = module.ARCHITECTURES[entry](model_config(config(name)), sc)
            arch.build_operators()
            for op in arch.operators:
                io = op.metadata.io_config
                dims = (io.input_shape.m, io.input_shape.n, io.output_shape.n, op.metadata.batch_size)
                assert all(isinstance(d, int) and d > 0 for d in dims), (op.metadata.name, dims)
            ms = forward_time_ms(arch)
            assert math.isfinite(ms) and ms > 0, (name, tp, dp, mode)


@needs_oracle
def test_every_decoder_layer_equals_transformers(sglang_tree):
    sglang_tree("0.5.23")
    proc = cli("--sglang-version", "0.5.23", "--configs", str(CHECKPOINTS), "--format", "json", "-q")
    results = {r["config"]: r for r in json.loads(proc.stdout)["results"]}
    assert set(results) == {f"{name}.json" for name in MODELS}
    for file, r in results.items():
        if file == f"{K_EQ_V}.json":
            continue
        if file.removesuffix(".json") in TRANSFORMERS_LACKS:
            assert r["status"] == "unusable" and "does not implement " + TRANSFORMERS_LACKS[
                file.removesuffix(".json")] in r["message"], (file, r["message"])
            continue
        assert r["status"] == AGREE, (file, r["message"] or r["mismatches"][:2])
        assert r["layers"] and all(layer["astgen"] == layer["oracle"] > 0 for layer in r["layers"]), file
    text = config(K_EQ_V)["text_config"]
    full = [i for i, t in enumerate(text["layer_types"]) if t == "full_attention"]
    # V of the full-attention layers: num_global_key_value_heads x global_head_dim x hidden
    v_only = text["num_global_key_value_heads"] * text["global_head_dim"] * text["hidden_size"]
    gemma = results[f"{K_EQ_V}.json"]
    assert {layer["index"]: layer["astgen"] - layer["oracle"] for layer in gemma["layers"]} == {
        i: (v_only if i in full else 0) for i in range(text["num_hidden_layers"])}
    assert proc.returncode == 1  # that one disagreement


def test_qwen3_next_full_attention_every_fourth_layer(sglang_tree):
    # configs/qwen3_next.py:260-269 (layers_block_type from full_attention_interval = 4),
    # models/qwen3_next.py:930-931 (the layer class per entry)
    name = "Qwen__Qwen3-Next-80B-A3B"
    full = [i for i in range(48) if (i + 1) % 4 == 0]
    assert layers_holding(sglang_tree, name, "qkv_proj") == full
    assert layers_holding(sglang_tree, name, "linear_attn.in_proj_qkvz") == [i for i in range(48) if i not in full]


def test_nemotron_h_blocks_follow_the_hybrid_override_pattern(sglang_tree):
    # models/nemotron_h.py:836-838: ALL_DECODER_LAYER_TYPES[config.hybrid_override_pattern[idx]]
    name = "nvidia__Nemotron-H-56B-Base-8K"
    pattern = config(name)["hybrid_override_pattern"]
    assert len(pattern) == 118 and pattern.count("M") == 54 and pattern.count("*") == 10
    at = {c: [i for i, x in enumerate(pattern) if x == c] for c in "M*-"}
    assert layers_holding(sglang_tree, name, "mixer.in_proj") == at["M"]  # MambaMixer2 (mamba.py:269-281)
    assert layers_holding(sglang_tree, name, "mixer.qkv_proj") == at["*"]
    assert layers_holding(sglang_tree, name, "mixer.up_proj") == at["-"]
    # n_groups 8 divides no TP of 1: in_proj = 2 * 256*64 + 2 * 8*256 + 256 heads (mamba.py:269-281)
    cfg = config(name)
    inner = cfg["mamba_num_heads"] * cfg["mamba_head_dim"]
    width = 2 * inner + 2 * cfg["n_groups"] * cfg["ssm_state_size"] + cfg["mamba_num_heads"]
    assert per_layer(sglang_tree, name, "mixer.in_proj")[0] == cfg["hidden_size"] * width


def test_kimi_linear_mla_layers_are_the_full_attention_layers(sglang_tree):
    # configs/kimi_linear.py:158-162: is_kda_layer(i) is (i + 1) in linear_attn_config["kda_layers"]
    name = "moonshotai__Kimi-Linear-48B-A3B-Instruct"
    linear = config(name)["linear_attn_config"]
    assert layers_holding(sglang_tree, name, "self_attn.kv_b_proj") == [n - 1 for n in linear["full_attn_layers"]]
    assert layers_holding(sglang_tree, name, "self_attn.fused_qkvbfg_a_proj") == [n - 1 for n in linear["kda_layers"]]
    assert layers_holding(sglang_tree, name, "mlp.gate_up_proj") == [0]  # first_k_dense_replace = 1


@pytest.mark.parametrize("name, per_layer_weights", [
    # wq_b: q_lora_rank -> index_n_heads * index_head_dim; wk: hidden -> index_head_dim;
    # weights_proj: hidden -> index_n_heads (layers/attention/dsa/dsa_indexer.py:344-380; the
    # fused wk_weights_proj holds the same elements). V3.2: 1536*64*128 + 7168*128 + 7168*64
    ("deepseek-ai__DeepSeek-V3.2", 13_959_168),
    # GLM-5: 2048*32*128 + 6144*(128 + 32)
    ("zai-org__GLM-5", 9_371_648),
])
def test_dsa_indexer_is_built_in_every_layer(sglang_tree, name, per_layer_weights):
    # configs/model_config.py:191-211: is_deepseek_dsa is the architecture and index_topk
    cfg = config(name)
    indexer = per_layer(sglang_tree, name, "self_attn.indexer")
    assert indexer == {i: per_layer_weights for i in range(cfg["num_hidden_layers"])}
