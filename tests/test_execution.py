"""Execution fidelity: the emitted modules run what sglang runs, per forward
mode and per rank, under LLMSim's conventions.

Golden operator tables, derived by hand from sglang's forward code (paths
relative to sglang/srt, 0.5.23 unless said otherwise), at LLMSim's script
layouts (`sc.tp_size` is the attention TP inside one of `sc.dp_size`
replicas; sglang's --tp is their product):

  L1  tp 1, dp 16, ep 16, DeepEP, --moe-dense-tp-size 1  (ds_decode.sh)
  L2  tp 4, dp 4, ep 16, DeepEP                          (ds_prefill.sh)
  L3  tp 8, dp 1, ep 1                                   (qwen3_32b_prefill.sh)

Each table row is (kind, m, k, n, batch, layers, weight bytes, GB/s):
every field of every operator the module registers, nothing more.

A prefill runs in chunks: sglang's chunked prefill size for an 80 GB GPU is
8192 tokens (arg_groups/memory_hook.py:132-139; 0.4.6 server_args.py:241-245),
divided by the DP size under DP attention (arg_groups/parallel_hook.py:327-336;
0.4.6 server_args.py:296). The 4,096-token prompt is one chunk at L3, two of
2,048 at L2 and eight of 512 at L1: each operator is one chunk's, its layers
counted once per chunk. Collectives are priced once (rules/execution.toml
[bandwidth]): a reduce-scatter, all-gather or all-to-all at twice the
all-reduce bandwidth.
"""

from __future__ import annotations

import json

import pytest

from astgen import expr as E
from astgen.emit.package import split_module

from tests.helpers import CONFIGS, HF_CONFIGS, analyzed, generate, load_module, model_config, schedule
from tests.llmsim_stub.config import ForwardMode
from tests.llmsim_stub.perf_calculator import forward_time_ms

pytestmark = pytest.mark.corpus

LAYOUTS = {  # name: (tp, dp, ep, deepep, fully_dp)
    "L1": (1, 16, 16, True, True),
    "L2": (4, 4, 16, True, False),
    "L3": (8, 1, 1, False, False),
}
EXTEND_TOKENS, DECODE_BATCH = 4096, 64
CHUNKED_PREFILL_SIZE = 8192
BF16, FP8 = 2, 1
# LLMSim's transfer bandwidths (its hand-written modules' all-reduce, dispatch
# and combine): (EXTEND, DECODE); the half-traffic collectives at twice the all-reduce's
BW = {"all_reduce": (85.0, 22.64), "reduce_scatter": (170.0, 45.28), "all_gather": (170.0, 45.28),
      "all_to_all": (170.0, 45.28), "dispatch": (85.0, 18.58), "combine": (85.0, 22.64)}


def chunking(layout: str, decode: bool, tokens: int = EXTEND_TOKENS) -> tuple[int, int]:
    """(tokens per forward, forwards): a DECODE step is one; a prefill runs
    in chunks of the DP-divided chunked prefill size."""
    if decode:
        return DECODE_BATCH, 1
    chunk = CHUNKED_PREFILL_SIZE // LAYOUTS[layout][1]
    chunks = -(-tokens // chunk)
    return -(-tokens // chunks), chunks


def per_chunk(t: dict, chunks: int) -> dict:
    """Every operator runs once per chunk."""
    return {k: v[:5] + (v[5] * chunks,) + v[6:] for k, v in t.items()}


def padded_dp_gather(prefix: str, S: int, H: int, dp: int, layers: int) -> dict:
    """A DECODE step with an a2a backend pads DP attention to the longest
    replica (dp_attention.py:207-232): the DP gather reduce-scatters over
    attention TP and all-gathers over the TP group (:716-760); the FFN's sum
    returns with a reduce-scatter over the TP group and the attention-TP
    all-gather (layer_boundary/exit.py:76-95). The runtime forward tier
    records exactly these at tp4 dp4 ep16 with DeepEP."""
    return {prefix + "dp_gather_reduce_scatter": transfer(S, H, "reduce_scatter", layers, True),
            prefix + "dp_gather_all_gather": transfer(S * dp, H, "all_gather", layers, True),
            prefix + "ffn_dp_reduce_scatter": transfer(S * dp, H, "reduce_scatter", layers, True),
            prefix + "ffn_attn_all_gather": transfer(S, H, "all_gather", layers, True)}


def embedding_and_head(t: dict, layout: str, decode: bool, hidden: int, vocab: int) -> None:
    """The embedding's shard sum over attention TP under DP attention, else
    the TP group (vocab_parallel_embedding.py:166-185, 514-533: TP size tp
    either way at these layouts). The LM head: without --enable-dp-lm-head,
    every replica's rows gathered first (an all-reduce of the zero-filled
    buffer, logits_processor.py:1219-1239, dp_attention.py:661-713), the vocab
    over the whole TP group, the logits all-gathered (logits_processor.py:1024-1046)."""
    tp, dp = LAYOUTS[layout][:2]
    S, _ = chunking(layout, decode)
    B = DECODE_BATCH if decode else 1
    if tp > 1:
        t["embed_tokens_all_reduce"] = transfer(S, hidden, "all_reduce", 1, decode)
    t["lm_head"] = ("matmul", B * dp, hidden, vocab // (tp * dp), 1, 1, BF16, None)
    if dp > 1:
        t["lm_head_dp_gather"] = transfer(B * dp, hidden, "all_reduce", 1, decode)
    if tp * dp > 1:
        t["lm_head_all_gather"] = transfer(B * dp, vocab, "all_gather", 1, decode)

def module_of(sglang_tree, version: str, stem: str):
    result, module = analyzed(sglang_tree(version), stem)
    assert result.source, [d.render() for d in result.diagnostics]
    return module


def config_of(name: str) -> dict:
    """A config the tests keep: R1 with its FP8 quantization_config from
    tests/data/configs, the others from tests/data/hf_configs."""
    path = CONFIGS / f"{name}.json"
    return json.loads((path if path.is_file() else HF_CONFIGS / f"{name}.json").read_text())


def built(module, entry: str, config: str, layout: str, decode: bool, max_seqlen: int = 4096, **fields):
    """The arch at a layout; ``fields``: schedule fields named after sglang's
    server arguments, which override the module's switches."""
    tp, dp, ep, deepep, fully_dp = LAYOUTS[layout]
    mode = ForwardMode.DECODE if decode else ForwardMode.EXTEND
    cfg = config_of(config)
    sc = schedule(tp=tp, dp=dp, ep=ep, mode=mode, deepep=deepep, fully_dp=fully_dp,
                  max_seqlen=max_seqlen, batch=DECODE_BATCH if decode else 1)
    vars(sc).update(fields)
    arch = module.ARCHITECTURES[entry](model_config(cfg), sc)
    arch.build_operators()
    return arch


def table(arch) -> dict:
    """name -> (kind, m, k, n, batch, layers, weight bytes, GB/s); an
    operator emitted once per layer (per-layer config lists) adds its layers."""
    out: dict = {}
    ops = list(arch.operators) + [o for ops in arch.attention_operators.values() for o in ops]
    for op in ops + list(arch.transfer_operators):
        md = op.metadata
        io = md.io_config
        row = [md.op_type, io.input_shape.m, io.input_shape.n, io.output_shape.n, md.batch_size,
               md.num_layers, io.weight_dtype.value if md.op_type != "transfer" else io.input_dtype.value,
               getattr(op, "_bandwidth_gb_s", None)]
        if md.name in out:
            assert out[md.name][:5] + out[md.name][6:] == tuple(row[:5] + row[6:]), md.name
            row[5] += out[md.name][5]
        out[md.name] = tuple(row)
    return {k: v for k, v in out.items() if v[5]}  # an operator guarded off at this layout has 0 layers


def transfer(rows: int, cols: int, collective: str, layers: int, decode: bool, batch: int = 1, width: int = BF16):
    return ("transfer", rows, cols, cols, batch, layers, width, BW[collective][1 if decode else 0])


# ---------------------------------------------------------------------------
# DeepSeek-V3 (the DeepSeek-R1 config: 61 layers, the first 3 dense; FP8
# block-quantized checkpoint), models/deepseek_v2.py


def deepseek_v3(layout: str, decode: bool, version: str = "0.5.23") -> dict:
    tp, dp, ep, deepep, fully_dp = LAYOUTS[layout]
    world = tp * dp
    S, chunks = chunking(layout, decode)
    H, heads = 7168, 128 // tp  # num_local_heads = num_heads // attn_tp_size (:2058)
    t = {
        # fused q_a + kv_a, replicated (:2070-2076); every LinearBase is FP8 (quantization/fp8.py:396-407)
        "fused_qkv_a_proj_with_mqa": ("matmul", S, H, 1536 + 512 + 64, 1, 61, FP8, None),
        "q_b_proj": ("matmul", S, 1536, 128 * 192 // tp, 1, 61, FP8, None),  # attn TP (:2078-2085)
        "o_proj": ("matmul", S, 128 * 128 // tp, H, 1, 61, FP8, None),  # attn TP (:2154-2162)
    }
    # 0.5.23: DECODE, and EXTEND inside the prefill CUDA graph (chunks of at
    # most min(8192, chunk) tokens, memory_hook.py:233-238, parallel_hook.py:338-360),
    # run the absorbed path (attention_backend_handler.py:108-113); 0.4.6 has
    # no prefill graph: EXTEND is MHA (0.4.6 deepseek_v2.py:570-612)
    absorbed = decode or (version == "0.5.23" and S <= min(8192, CHUNKED_PREFILL_SIZE // dp))
    if absorbed:  # bf16 torch.bmm with w_kc / w_vc (forward_mla.py:586, :916-931; deepseek_weight_loader.py:688-708)
        t["q_absorb"] = ("matmul", S, 128, 512, heads, 61, BF16, None)
        t["o_absorb"] = ("matmul", S, 512, 128, heads, 61, BF16, None)
        t["attn_mqa_qk"] = ("attention", S, 576, 4096, heads, 61, BF16, None)  # attn_mqa (:2183-2191)
        t["qkv"] = ("attention", S, 4096, 512, heads, 61, BF16, None)
    else:
        t["kv_b_proj"] = ("matmul", S, 512, 128 * 256 // tp, 1, 61, FP8, None)  # (:2145-2152)
        t["attn_mha_qk"] = ("attention", S, 192, 4096, heads, 61, BF16, None)  # attn_mha (:2206-2214)
        t["qkv"] = ("attention", S, 4096, 128, heads, 61, BF16, None)
    # the FFN's rows (layer_boundary/factories.py:124-262): on the rank's own
    # rows with an all-to-all backend (MoE) or --moe-dense-tp-size 1 (dense),
    # split over attention TP; else gathered over the DP replicas
    moe_rows = S // tp if deepep else S * dp
    dense_rows = S // tp if fully_dp else S * dp
    ep_experts, moe_tp = 256 // ep, world // ep
    routed = S * dp * 8 // 256  # every replica's tokens, top-8 each, over 256 experts
    t.update({
        "moe_gate": ("matmul", moe_rows, H, 256, 1, 58, BF16, None),  # MoEGate: a bf16 nn.Parameter (:497-595)
        "moe_experts_gate_up": ("matmul", routed, H, 2 * 2048 // moe_tp, ep_experts, 58, FP8, None),
        "moe_experts_down": ("matmul", routed, 2048 // moe_tp, H, ep_experts, 58, FP8, None),
        # shared expert replicated under DeepEP (:874-897), else over TP.
        # (sglang fuses it into the routed experts at L3, :3325-3394: the same
        # weights and FLOPs per token; astgen keeps the MLP __init__ builds)
        "moe_shared_gate_up_proj": ("matmul", moe_rows, H, 2 * 2048 // (1 if deepep else world), 1, 58, FP8, None),
        "moe_shared_down_proj": ("matmul", moe_rows, 2048 // (1 if deepep else world), H, 1, 58, FP8, None),
        # dense MLP: "replicated" under --moe-dense-tp-size 1, else "tp" (:2665)
        "dense_gate_up_proj": ("matmul", dense_rows, H, 2 * 18432 // (1 if fully_dp else world), 1, 3, FP8, None),
        "dense_down_proj": ("matmul", dense_rows, 18432 // (1 if fully_dp else world), H, 1, 3, FP8, None),
    })
    # logits of each sequence's last token (EXTEND) or every token (DECODE) (logits_processor.py:678-697)
    embedding_and_head(t, layout, decode, H, 129280)
    if deepep:  # DeepEP: FP8 dispatch (layers/moe/utils.py:344-406), bf16 combine (token_dispatcher/deepep.py:950)
        t["dispatch"] = transfer(moe_rows, H, "dispatch", 58, decode, batch=8, width=FP8)
        t["combine"] = transfer(moe_rows, H, "combine", 58, decode, batch=8)
    if version == "0.5.23":  # layer_boundary: one reduction per sub-layer (boundary.py:428-785)
        if deepep and tp > 1:  # attn-TP reduce-scatter into the MoE, all-gather after (boundary.py:503-524, 582-615)
            t["moe_attn_reduce_scatter"] = transfer(S, H, "reduce_scatter", 58, decode)
            t["moe_ffn_all_gather"] = transfer(S, H, "all_gather", 58, decode)
        if not deepep:  # no DP attention at L3: the attention's TP sum, then the FFN's (deferred, exit.py:98-147)
            t["moe_attn_all_reduce"] = transfer(S, H, "all_reduce", 58, decode)
            t["moe_ffn_all_reduce"] = transfer(S, H, "all_reduce", 58, decode)
            t["dense_attn_all_reduce"] = transfer(S, H, "all_reduce", 3, decode)
            t["dense_ffn_all_reduce"] = transfer(S, H, "all_reduce", 3, decode)
        elif not fully_dp and not decode:  # L2 dense layers: DP gather (an all-reduce, dp_attention.py:661-713), TP sum
            t["dense_dp_gather_all_reduce"] = transfer(S * dp, H, "all_reduce", 3, decode)
            t["dense_ffn_all_reduce"] = transfer(S * dp, H, "all_reduce", 3, decode)
        elif not fully_dp:  # L2 DECODE with DeepEP: padded to the longest replica (MAX_LEN,
            # dp_attention.py:207-232): reduce-scatter + all-gather in, reduce-scatter + all-gather out
            t.update(padded_dp_gather("dense_", S, H, dp, 3))
    return per_chunk(t, chunks)


def test_deepseek_v3_long_prefill_runs_mha_past_the_prefill_graph(sglang_tree):
    """A 16,384-token prompt runs as two 8,192-token chunks, each inside the
    prefill CUDA graph: absorbed. With --chunked-prefill-size 16384 (here an
    LLMSim schedule field of that name, which wins over the module's
    constant) it is one chunk past min(8192, chunked_prefill_size), run
    eagerly: MHA with kv_b_proj (arg_groups/memory_hook.py:233-238)."""
    module = module_of(sglang_tree, "0.5.23", "deepseek_v2")
    chunked = table(built(module, "DeepseekV3ForCausalLM", "deepseek-ai__DeepSeek-R1", "L3", False,
                          max_seqlen=16384))
    assert chunked["q_absorb"] == ("matmul", 8192, 128, 512, 16, 61 * 2, BF16, None)
    assert "kv_b_proj" not in chunked
    whole = table(built(module, "DeepseekV3ForCausalLM", "deepseek-ai__DeepSeek-R1", "L3", False,
                        max_seqlen=16384, chunked_prefill_size=16384))
    assert whole["kv_b_proj"] == ("matmul", 16384, 512, 4096, 1, 61, FP8, None)
    assert whole["attn_mha_qk"] == ("attention", 16384, 192, 16384, 16, 61, BF16, None)
    assert not {"q_absorb", "o_absorb", "attn_mqa_qk"} & set(whole)


# ---------------------------------------------------------------------------
# Qwen3-32B, models/qwen3.py (its MLP is qwen2.py's Qwen2MLP)


def qwen3_32b(layout: str, decode: bool) -> dict:
    tp, dp, ep, deepep, fully_dp = LAYOUTS[layout]
    world = tp * dp
    S, chunks = chunking(layout, decode)
    H, heads, kv = 5120, 64 // tp, max(1, 8 // tp)  # attention over attn TP (qwen3.py:164-180)
    # Qwen2MLP takes no parallel_group: the whole TP group, even with
    # --moe-dense-tp-size 1 (qwen2.py:85-99), where the boundary treats its
    # output as complete and reduces nothing (layer_boundary/factories.py:129-130, 194)
    rows = S // tp if fully_dp else S * dp
    t = {
        "qkv_proj": ("matmul", S, H, (heads + 2 * kv) * 128, 1, 64, BF16, None),  # (qwen3.py:196-205)
        "o_proj": ("matmul", S, heads * 128, H, 1, 64, BF16, None),  # reduce_results=False (qwen3.py:206-214)
        "attn_qk": ("attention", S, 128, 4096, heads, 64, BF16, None),
        "qkv": ("attention", S, 4096, 128, heads, 64, BF16, None),
        "gate_up_proj": ("matmul", rows, H, 2 * 25600 // world, 1, 64, BF16, None),
        "down_proj": ("matmul", rows, 25600 // world, H, 1, 64, BF16, None),
    }
    embedding_and_head(t, layout, decode, H, 151936)  # (qwen2.py:370-376, qwen3.py:582-588)
    if not fully_dp and dp > 1 and decode and deepep:  # L2 DECODE: padded to the longest replica
        t.update(padded_dp_gather("", S, H, dp, 64))
    elif not fully_dp and dp > 1:  # L2: DP gather then the TP sum over 16 ranks (boundary.py:675-697, exit.py:355-401)
        t["dp_gather_all_reduce"] = transfer(S * dp, H, "all_reduce", 64, decode)
        t["ffn_all_reduce"] = transfer(S * dp, H, "all_reduce", 64, decode)
    elif not fully_dp:  # L3: two TP all-reduces per layer (boundary.py:630-674, exit.py:115-147)
        t["attn_all_reduce"] = transfer(S, H, "all_reduce", 64, decode)
        t["ffn_all_reduce"] = transfer(S, H, "all_reduce", 64, decode)
    return per_chunk(t, chunks)


# ---------------------------------------------------------------------------
# Qwen3-235B-A22B, models/qwen3_moe.py


def qwen3_235b(layout: str, decode: bool, version: str = "0.5.23") -> dict:
    tp, dp, ep, deepep, fully_dp = LAYOUTS[layout]
    world = tp * dp
    S, chunks = chunking(layout, decode)
    H, heads, kv = 4096, 64 // tp, max(1, 4 // tp)  # (qwen3_moe.py:502-520)
    rows = S // tp if deepep else S * dp  # MoE on its own rows with DeepEP (layers/moe/utils.py:721-727)
    routed = S * dp * 8 // 128
    t = {
        "qkv_proj": ("matmul", S, H, (heads + 2 * kv) * 128, 1, 94, BF16, None),  # (qwen3_moe.py:525-534)
        "o_proj": ("matmul", S, heads * 128, H, 1, 94, BF16, None),
        "attn_qk": ("attention", S, 128, 4096, heads, 94, BF16, None),
        "qkv": ("attention", S, 4096, 128, heads, 94, BF16, None),
        "gate": ("matmul", rows, H, 128, 1, 94, BF16, None),  # ReplicatedLinear, quant_config=None (qwen3_moe.py:285-296)
        # 128 / ep experts per rank, intermediate over moe_tp = tp // ep (fused_moe_triton/layer.py:414-428)
        "experts_gate_up": ("matmul", routed, H, 2 * 1536 // (world // ep), 128 // ep, 94, BF16, None),
        "experts_down": ("matmul", routed, 1536 // (world // ep), H, 128 // ep, 94, BF16, None),
    }
    embedding_and_head(t, layout, decode, H, 151936)  # (qwen2_moe.py:1115-1121)
    if deepep:  # bf16 dispatch and combine for an unquantized model (quantization/unquant.py:884-892)
        t["dispatch"] = transfer(rows, H, "dispatch", 94, decode, batch=8)
        t["combine"] = transfer(rows, H, "combine", 94, decode, batch=8)
    if version == "0.4.6":  # o_proj reduces itself; the MoE block all-reduces (0.4.6 qwen3_moe.py:104-105)
        t["o_proj_all_reduce"] = transfer(S, H, "all_reduce", 94, decode)
        t["mlp_all_reduce"] = transfer(S, H, "all_reduce", 94, decode)
        # 0.4.6's layer chooses a sparse block or a dense MLP per layer: the
        # MoE's operators are named apart from the (here unused) dense ones
        t = {("moe_" + k if k in ("gate", "experts_gate_up", "experts_down", "mlp_all_reduce") else k): v
             for k, v in t.items()}
    elif deepep and tp > 1:  # L2: attn-TP reduce-scatter in, all-gather out (boundary.py:503-524, 582-615)
        t["attn_reduce_scatter"] = transfer(S, H, "reduce_scatter", 94, decode)
        t["ffn_all_gather"] = transfer(S, H, "all_gather", 94, decode)
    elif not deepep:  # L3: two TP all-reduces per layer
        t["attn_all_reduce"] = transfer(S, H, "all_reduce", 94, decode)
        t["ffn_all_reduce"] = transfer(S, H, "all_reduce", 94, decode)
    return per_chunk(t, chunks)


# (sglang model file, EntryClass, config, golden table) of the three families
GOLDEN = {
    "deepseek_v3": ("deepseek_v2", "DeepseekV3ForCausalLM", "deepseek-ai__DeepSeek-R1", deepseek_v3),
    "qwen3_32b": ("qwen3", "Qwen3ForCausalLM", "Qwen__Qwen3-32B", qwen3_32b),
    "qwen3_235b": ("qwen3_moe", "Qwen3MoeForCausalLM", "Qwen__Qwen3-235B-A22B", qwen3_235b),
}


@pytest.mark.parametrize("family", sorted(GOLDEN))
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("decode", [False, True], ids=["extend", "decode"])
def test_golden_table(sglang_tree, family, layout, decode):
    stem, entry, config, golden = GOLDEN[family]
    arch = built(module_of(sglang_tree, "0.5.23", stem), entry, config, layout, decode)
    assert table(arch) == golden(layout, decode)
    assert list(arch.attention_operators) == ["attention"]  # one key: LLMSim sums them all


# ---------------------------------------------------------------------------
# sglang 0.4.6: no layer boundaries; reductions are explicit in the layers


@pytest.mark.parametrize("decode", [False, True], ids=["extend", "decode"])
def test_qwen3_235b_0_4_6_reduces_inside_the_layers(sglang_tree, decode):
    """0.4.6 has no DP attention for Qwen3 (only L3 is a working layout):
    o_proj keeps reduce_results=True (0.4.6 qwen3_moe.py:160-166) and the MoE
    block all-reduces its output itself (0.4.6 qwen3_moe.py:104-105)."""
    module = module_of(sglang_tree, "0.4.6", "qwen3_moe")
    arch = built(module, "Qwen3MoeForCausalLM", "Qwen__Qwen3-235B-A22B", "L3", decode)
    assert table(arch) == qwen3_235b("L3", decode, version="0.4.6")


@pytest.mark.parametrize("decode", [False, True], ids=["extend", "decode"])
def test_deepseek_v3_0_4_6_l3(sglang_tree, decode):
    """0.4.6 DeepseekV2DecoderLayer (FULL input mode at L3): the attention's
    all-reduce in the layer (0.4.6 deepseek_v2.py:1256), the MoE's own
    all-reduce of routed + shared (:308-320), the dense MLP's down_proj
    (reduce_results=True, :133); EXTEND runs MHA (no prefill CUDA graph)."""
    module = module_of(sglang_tree, "0.4.6", "deepseek_v2")
    got = table(built(module, "DeepseekV3ForCausalLM", "deepseek-ai__DeepSeek-R1", "L3", decode))
    want = deepseek_v3("L3", decode, version="0.4.6")
    S = DECODE_BATCH if decode else EXTEND_TOKENS
    want.update({  # the layer's own all-reduce, in its MoE layers and its dense ones
        "moe_layer_tensor_model_parallel_all_reduce": transfer(S, 7168, "all_reduce", 58, decode),
        "dense_layer_tensor_model_parallel_all_reduce": transfer(S, 7168, "all_reduce", 3, decode),
        "moe_mlp_all_reduce": transfer(S, 7168, "all_reduce", 58, decode),
        "dense_down_proj_all_reduce": transfer(S, 7168, "all_reduce", 3, decode),
    })
    assert got == want


@pytest.mark.parametrize("layout", ["L1", "L2"])
def test_deepseek_v3_0_4_6_scattered_layers(sglang_tree, layout):
    """0.4.6 SCATTERED mode (DeepEP MoE, fully-DP dense): attention-TP
    reduce-scatter / all-gather around the MoE (:1300-1357), DP gather of the
    dense layers over the whole TP group at L2 (:1244-1277), and of the last
    hidden states before the LM head (logits_processor.py:425-431)."""
    module = module_of(sglang_tree, "0.4.6", "deepseek_v2")
    got = table(built(module, "DeepseekV3ForCausalLM", "deepseek-ai__DeepSeek-R1", layout, False))
    (S, chunks), H = chunking(layout, False), 7168
    transfers = {k: v for k, v in got.items() if v[0] == "transfer"}
    want = {"dispatch", "combine", "lm_head_dp_gather", "lm_head_all_gather"}
    if layout == "L2":
        want |= {"moe_layer_tp_reduce_scatter", "moe_layer_tp_all_gather", "dense_layer_dp_gather_partial",
                 "dense_down_proj_all_reduce"}
    assert {k for k in transfers if not k.startswith("model_")} == want
    if layout == "L2":  # every MoE layer scatters once and gathers once (the last layer's gather included)
        layers = {k: sum(v[5] for n, v in transfers.items() if n.endswith(k))
                  for k in ("tp_reduce_scatter", "tp_all_gather")}
        assert layers == {"tp_reduce_scatter": 58 * chunks, "tp_all_gather": 58 * chunks}
        assert transfers["dense_layer_dp_gather_partial"] == transfer(S * 4, H, "all_reduce", 3 * chunks, False)
        assert got["dense_gate_up_proj"][1] == S * 4  # the dense MLP runs on every replica's rows


# ---------------------------------------------------------------------------
# LLMSim's conventions, through the stand-in's calculator


def test_precision_follows_the_checkpoint(sglang_tree):
    """The same module on the same config without quantization_config: every
    weight 2 bytes; with it, the linears 1 byte and the expert matmuls take
    about half the time at L1 decode."""
    module = module_of(sglang_tree, "0.5.23", "deepseek_v2")
    cfg = config_of("deepseek-ai__DeepSeek-R1")
    bf16 = {k: v for k, v in cfg.items() if k != "quantization_config"}
    tp, dp, ep, deepep, fully_dp = LAYOUTS["L1"]
    sc = schedule(tp=tp, dp=dp, ep=ep, mode=ForwardMode.DECODE, deepep=deepep, fully_dp=fully_dp, batch=64)
    fp8_arch = module.ARCHITECTURES["DeepseekV3ForCausalLM"](model_config(cfg), sc)
    bf16_arch = module.ARCHITECTURES["DeepseekV3ForCausalLM"](model_config(bf16), sc)
    fp8_arch.build_operators()
    bf16_arch.build_operators()
    assert {op.metadata.io_config.weight_dtype.value for op in bf16_arch.operators} == {BF16}
    widths = {op.metadata.name: op.metadata.io_config.weight_dtype.value for op in fp8_arch.operators}
    assert widths["moe_experts_gate_up"] == widths["o_proj"] == FP8
    assert widths["moe_gate"] == widths["lm_head"] == widths["q_absorb"] == BF16
    assert forward_time_ms(fp8_arch) < 0.75 * forward_time_ms(bf16_arch)


def test_modules_skipped_by_quantization_config_keep_the_model_dtype(sglang_tree):
    module = module_of(sglang_tree, "0.5.23", "qwen3_moe")
    cfg = config_of("Qwen__Qwen3-235B-A22B")
    cfg["quantization_config"] = {"quant_method": "fp8", "modules_to_not_convert": ["model.layers.0.self_attn"]}
    arch = module.ARCHITECTURES["Qwen3MoeForCausalLM"](model_config(cfg), schedule(tp=8))
    arch.build_operators()
    widths = {op.metadata.name: op.metadata.io_config.weight_dtype.value for op in arch.operators}
    assert widths["qkv_proj"] == widths["o_proj"] == BF16  # under the skipped prefix
    assert widths["experts_gate_up"] == FP8 and widths["gate"] == BF16


@pytest.mark.parametrize("batch, rows", [(1, 1), (3, 2), (8, 4)])
def test_a_fully_dp_dense_mlp_holds_its_share_of_a_padded_batch(sglang_tree, batch, rows):
    """--moe-dense-tp-size 1 at attention TP 2: the attention's partial sum is
    reduce-scattered to each rank's rows, a batch padded first to a multiple
    of attention TP (forward_batch_info.py:1767-1772), so every rank's dense
    MLP runs ceil(batch / 2) rows, never none. A property test found 0 rows at
    a decode batch of 1 (`seq_len // tp` before)."""
    module = module_of(sglang_tree, "0.5.23", "qwen3")
    sc = schedule(tp=2, dp=1, ep=1, mode=ForwardMode.DECODE, fully_dp=True, batch=batch)
    arch = module.ARCHITECTURES["Qwen3ForCausalLM"](model_config(config_of("Qwen__Qwen3-32B")), sc)
    arch.build_operators()
    ops = {op.metadata.name: op.metadata.io_config for op in arch.operators + arch.transfer_operators}
    assert ops["gate_up_proj"].input_shape.m == ops["down_proj"].input_shape.m == rows
    assert ops["qkv_proj"].input_shape.m == batch  # attention on the whole batch
    assert ops["attn_reduce_scatter"].input_shape.m == batch


def test_the_rows_a_layer_boundary_leaves_the_mlp_are_the_packages_helpers(corpus_result):
    """Qwen3's dense MLP runs on the rows its layer boundary's ffn_entry role
    leaves it (rules/execution.toml [forward.roles.ffn_entry]): the code
    binds them from the package's ``ffn_entry_rows``, which follows the same
    steps; the operator table keeps the expression the run stage derived."""
    result, _ = corpus_result("qwen3")
    code, records = split_module(result.source)
    assert '        mlp_rows = ops.ffn_entry_rows(seq_len, "dense")' in code.splitlines()
    gate_up = next(json.loads(r) for r in records if json.loads(r)["name"] == "gate_up_proj")
    assert "ffn_entry_rows" not in gate_up["m"] and "sc.enable_moe_dense_fully_dp" in gate_up["m"]


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_transfers_carry_llmsim_bandwidths(sglang_tree, layout):
    module = module_of(sglang_tree, "0.5.23", "deepseek_v2")
    for decode in (False, True):
        arch = built(module, "DeepseekV3ForCausalLM", "deepseek-ai__DeepSeek-R1", layout, decode)
        # each transfer at its kind's price, and every layout has transfers (the LM head's gather at least)
        kinds = {op.metadata.name: getattr(op, "_bandwidth_gb_s", None) for op in arch.transfer_operators}
        assert kinds and "lm_head_all_gather" in kinds
        assert kinds["lm_head_all_gather"] == BW["all_gather"][1 if decode else 0]
        for name, bandwidth in kinds.items():
            # the LM head's DP gather is an all-reduce of a zero-filled buffer (dp_attention.py:661-713)
            kind = "all_reduce" if name.endswith("dp_gather") else next(k for k in BW if name.endswith(k))
            assert bandwidth == BW[kind][1 if decode else 0], name


@pytest.mark.parametrize("decode", [False, True], ids=["extend", "decode"])
def test_mtp_adds_the_nextn_draft_under_sc_is_mtp(sglang_tree, decode):
    """With sc.is_mtp the forward also runs DeepSeek's NextN draft
    (models/deepseek_nextn.py, rules/execution.toml [mtp]): eh_proj, a bf16
    nn.Linear of the concatenated embedding and hidden state
    (deepseek_nextn.py:58-138), one MoE decoder layer (is_nextn forces MoE,
    deepseek_v2.py:2785-2792) and the LM head; without it, none of that."""
    module = module_of(sglang_tree, "0.5.23", "deepseek_v2")
    cfg = config_of("deepseek-ai__DeepSeek-R1")
    tp, dp, ep, deepep, fully_dp = LAYOUTS["L3"]
    S = DECODE_BATCH if decode else EXTEND_TOKENS
    tables = {}
    for mtp in (False, True):
        sc = schedule(tp=tp, dp=dp, ep=ep, mode=ForwardMode.DECODE if decode else ForwardMode.EXTEND,
                      batch=DECODE_BATCH if decode else 1)
        sc.is_mtp = mtp
        arch = module.ARCHITECTURES["DeepseekV3ForCausalLM"](model_config(cfg), sc)
        arch.build_operators()
        tables[mtp] = table(arch)
    assert tables[False] == deepseek_v3("L3", decode)
    added = {k: v for k, v in tables[True].items() if k not in tables[False]}
    assert set(tables[False]) <= set(tables[True]) and all(k.startswith("mtp_") for k in added)
    assert added["mtp_eh_proj"] == ("matmul", S, 2 * 7168, 7168, 1, 1, BF16, None)
    one_layer = {k[len("mtp_"):]: v for k, v in added.items() if v[5] == 1 and k != "mtp_eh_proj"}
    main = deepseek_v3("L3", decode)
    # the draft's MoE layer is one of the target's MoE layers
    assert one_layer["experts_gate_up"] == main["moe_experts_gate_up"][:5] + (1,) + main["moe_experts_gate_up"][6:]
    assert one_layer["attn_all_reduce"] == main["moe_attn_all_reduce"][:5] + (1,) + main["moe_attn_all_reduce"][6:]


@pytest.mark.parametrize("decode", [False, True], ids=["extend", "decode"])
def test_qwen3_32b_0_4_6_reduces_in_o_proj_and_down_proj(sglang_tree, decode):
    """0.4.6 Qwen3: attention and MLP over the whole TP group, o_proj and
    Qwen2MLP.down_proj keep reduce_results=True and all-reduce themselves
    (0.4.6 qwen3.py:84-90, qwen2.py:70-76); no layer boundary."""
    module = module_of(sglang_tree, "0.4.6", "qwen3")
    got = table(built(module, "Qwen3ForCausalLM", "Qwen__Qwen3-32B", "L3", decode))
    want = qwen3_32b("L3", decode)
    S = DECODE_BATCH if decode else EXTEND_TOKENS
    del want["attn_all_reduce"], want["ffn_all_reduce"]
    want["o_proj_all_reduce"] = transfer(S, 5120, "all_reduce", 64, decode)
    want["down_proj_all_reduce"] = transfer(S, 5120, "all_reduce", 64, decode)
    assert got == want


# LLMSim's optimizer (src/optimization/search_space.py): tp * dp = world,
# ep <= dp, tp/dp from 1, 2, 4, 8, ep from 1 .. 16, batch 1 .. 256
@pytest.mark.parametrize("stem, entry, config", [
    ("deepseek_v2", "DeepseekV3ForCausalLM", "deepseek-ai__DeepSeek-R1"),
    ("qwen3", "Qwen3ForCausalLM", "Qwen__Qwen3-32B"),
    ("qwen3_moe", "Qwen3MoeForCausalLM", "Qwen__Qwen3-235B-A22B"),
])
def test_every_layout_llmsim_optimizer_accepts_runs(sglang_tree, stem, entry, config):
    from hypothesis import given, settings
    from hypothesis import strategies as st

    module = module_of(sglang_tree, "0.5.23", stem)
    cfg = config_of(config)
    sizes = st.sampled_from([1, 2, 4, 8])

    @settings(max_examples=60, deadline=None, derandomize=True)
    @given(tp=sizes, dp=sizes, ep=st.sampled_from([1, 2, 4, 8, 16]), deepep=st.booleans(),
           fully_dp=st.booleans(), mtp=st.booleans(), decode=st.booleans(),
           batch=st.sampled_from([1, 4, 8, 16, 32, 64, 128, 256]))
    def runs(tp, dp, ep, deepep, fully_dp, mtp, decode, batch):
        ep = min(ep, dp)  # the optimizer's ep <= dp
        sc = schedule(tp=tp, dp=dp, ep=ep, mode=ForwardMode.DECODE if decode else ForwardMode.EXTEND,
                      deepep=deepep, fully_dp=fully_dp, batch=batch)
        sc.is_mtp = mtp
        arch = module.ARCHITECTURES[entry](model_config(cfg), sc)
        arch.build_operators()
        assert forward_time_ms(arch) > 0
        for op in arch.operators + arch.transfer_operators:
            io = op.metadata.io_config
            assert io.input_shape.m > 0 and io.input_shape.n > 0 and op.metadata.batch_size > 0, op.metadata.name
        assert arch.get_kv_cache_per_gpu() > 0

    runs()


# ---------------------------------------------------------------------------
# the deployment as sglang's launch flags (astgen gen --server-args)

_deployed: dict = {}


def deployed(sglang_tree, flags: str):
    """R1's module generated for a deployment given as sglang launch flags."""
    if flags not in _deployed:
        tree = sglang_tree("0.5.23")
        result = generate(tree, tree.models_dir / "deepseek_v2.py", server_args=flags)
        assert result.source, [d.render() for d in result.diagnostics]
        _deployed[flags] = (result.source, load_module(result.source, f"deepseek_v2_{len(_deployed)}"))
    return _deployed[flags]


def r1(module, layout: str, decode: bool, **fields) -> dict:
    return table(built(module, "DeepseekV3ForCausalLM", "deepseek-ai__DeepSeek-R1", layout, decode, **fields))


def test_dp_lm_head_shards_the_vocab_over_attention_tp_and_gathers_nothing(sglang_tree):
    """ds_decode.sh (L1: attention TP 1 in each of 16 DP replicas). By
    default the LM head gathers all 16 replicas' rows, holds 1/16 of the
    padded vocab and all-gathers [1024, 129,280] logits. With
    --enable-dp-lm-head the head is sharded over attention TP only
    (deepseek_v2.py:3291, vocab_parallel_embedding.py:250-263) and the
    logits processor skips both gathers (logits_processor.py:469-482)."""
    source, module = deployed(sglang_tree, "--enable-dp-lm-head")
    assert '    "enable_dp_lm_head": True,  # --enable-dp-lm-head\n' in source
    on = r1(module, "L1", True)
    assert on["lm_head"] == ("matmul", 64, 7168, 129280, 1, 1, BF16, None)
    assert not {"lm_head_dp_gather", "lm_head_all_gather", "lm_head_all_to_all"} & set(on)
    # an LLMSim schedule field of the same name wins over the module's value
    off = r1(module, "L1", True, enable_dp_lm_head=False)
    assert off["lm_head"] == ("matmul", 64 * 16, 7168, 129280 // 16, 1, 1, BF16, None)
    assert off["lm_head_dp_gather"] == transfer(64 * 16, 7168, "all_reduce", 1, True)
    assert off["lm_head_all_gather"] == transfer(64 * 16, 129280, "all_gather", 1, True)


def test_a_decode_node_of_pure_dp_exchanges_logits_all_to_all(sglang_tree):
    """--disaggregation-mode decode with tp == attention DP (attention TP 1):
    sglang turns on the TP LM-head all-to-all (arg_groups/overrides.py:1399-1418);
    each rank sends every other rank that rank's rows of its vocab shard
    (logits_processor.py:1030-1035, 1311-1318): [rows, vocab / world]. At
    attention TP 4 (L2) the default all-gather stays."""
    _, module = deployed(sglang_tree, "--disaggregation-mode decode")
    ops = r1(module, "L1", True)
    assert ops["lm_head_all_to_all"] == transfer(64 * 16, 129280 // 16, "all_to_all", 1, True)
    assert "lm_head_all_gather" not in ops and ops["lm_head_dp_gather"][5] == 1
    assert "lm_head_all_to_all" not in r1(module, "L2", True)


def test_prefill_chunks_and_collective_pricing_at_ds_prefill(sglang_tree):
    """ds_prefill.sh (L2: tp 4, dp 4, ep 16, DeepEP): the 4,096-token prompt
    runs as two 2,048-token chunks (8192 // 4), each inside the prefill graph
    (absorbed MLA). Each MoE layer's reduce-scatter + all-gather pair costs
    what one all-reduce of [tokens, hidden] costs at LLMSim's all-reduce price."""
    _, module = deployed(sglang_tree, "--enable-dp-lm-head")
    ops = r1(module, "L2", False)
    assert ops["q_absorb"] == ("matmul", 2048, 128, 512, 32, 61 * 2, BF16, None)
    assert "kv_b_proj" not in ops
    rs, ag = ops["moe_attn_reduce_scatter"], ops["moe_ffn_all_gather"]
    pair_us = sum(o[1] * o[2] * o[6] / o[7] for o in (rs, ag))
    all_reduce_us = 2048 * 7168 * BF16 / BW["all_reduce"][0]
    assert pair_us == all_reduce_us and rs[5] == ag[5] == 58 * 2
    # two-batch overlap turns the prefill graph off: MHA (cuda_graph_hook.py:170-245)
    eager = r1(module, "L2", False, enable_two_batch_overlap=True)
    assert eager["kv_b_proj"][1] == 2048 and "q_absorb" not in eager


def test_sglangs_own_unreduced_mlp_is_reported_and_followed(sglang_tree):
    """Qwen2MLP under --moe-dense-tp-size 1 (qwen2.py:85-99,
    layer_boundary/factories.py:124-131): the module follows the code (the
    MLP split over all 16 ranks, no reduction after it) and its docstring
    says so; the scan report lists it for the entry."""
    from astgen.report import ScanReport

    tree = sglang_tree("0.5.23")
    result = generate(tree, tree.models_dir / "qwen3.py")
    assert "sglang's code looks wrong here, and this module follows it: Qwen2MLP: under\n" \
           "--moe-dense-tp-size 1" in result.source
    ops = table(built(module_of(sglang_tree, "0.5.23", "qwen3"), "Qwen3ForCausalLM", "Qwen__Qwen3-32B", "L1", True))
    assert ops["down_proj"][2] == 25600 // 16 and "ffn_all_reduce" not in ops
    entry = next(e for e in ScanReport("0.5.23", "", "", "", [result]).to_json()["entries"]
                 if e["name"] == "Qwen3ForCausalLM")
    assert [x["location"] for x in entry["findings"]] == ["sglang/srt/models/qwen3.py:403"]
    assert "(when sc.enable_moe_dense_fully_dp; sglang/srt/models/qwen2.py:85-99" in entry["findings"][0]["message"]


def test_dp_attention_returns_the_ffn_output_with_a_reduce_scatter(sglang_tree):
    """tp1 dp8 ep8 without DeepEP (sglang --tp 8 --dp 8 --ep 8): R1's
    boundaries return each FFN's output to its replica's rows with one
    reduce-scatterv over the TP group (layer_boundary/exit.py:76-95,
    moe/utils.py:742-749; DeepSeek's boundary reduction is rs+rsv), where the
    runtime forward tier saw astgen charge an all-reduce; Qwen3's boundaries
    are "ar" (arg_groups/boundary_reduction.py:12-24): it keeps the all-reduce."""
    saved = dict(LAYOUTS)
    LAYOUTS["L4"] = (1, 8, 8, False, False)
    try:
        r1 = table(built(module_of(sglang_tree, "0.5.23", "deepseek_v2"), "DeepseekV3ForCausalLM",
                         "deepseek-ai__DeepSeek-R1", "L4", True))
        qwen = table(built(module_of(sglang_tree, "0.5.23", "qwen3"), "Qwen3ForCausalLM", "Qwen__Qwen3-32B",
                           "L4", True))
    finally:
        LAYOUTS.clear()
        LAYOUTS.update(saved)
    rows = DECODE_BATCH * 8
    assert r1["moe_ffn_reduce_scatter"] == transfer(rows, 7168, "reduce_scatter", 58, True)
    assert r1["dense_ffn_reduce_scatter"] == transfer(rows, 7168, "reduce_scatter", 3, True)
    assert r1["moe_dp_gather_all_reduce"] == transfer(rows, 7168, "all_reduce", 58, True)
    assert not {"moe_ffn_all_reduce", "dense_ffn_all_reduce"} & set(r1)
    assert qwen["ffn_all_reduce"] == transfer(rows, 5120, "all_reduce", 64, True)
    assert "ffn_reduce_scatter" not in qwen


# ---------------------------------------------------------------------------
# LM heads no attribute names


@pytest.mark.corpus
def test_a_logits_processor_handed_the_embedding_runs_the_tied_head(sglang_tree, corpus_result):
    """gemma2.py:402-404 computes the logits with
    `self.logits_processor(input_ids, hidden_states, self.model.embed_tokens, ...)`:
    no attribute is an LM head, the embedding (VocabParallelEmbedding, its
    vocab split over TP, gemma2.py:281-284) is (rules/execution.toml
    [forward.logits]). Gemma-2-2B at tp 8, decode: [8, 2304] x [2304,
    256000 / 8], then the logits all-gathered (64 sequences)."""
    got = table(built(module_of(sglang_tree, "0.5.23", "gemma2"), "Gemma2ForCausalLM", "google__gemma-2-2b",
                      "L3", True))
    fp32 = 4  # the checkpoint's torch_dtype
    assert got["lm_head"] == ("matmul", DECODE_BATCH, 2304, 256000 // 8, 1, 1, fp32, None)
    assert got["lm_head_all_gather"] == transfer(DECODE_BATCH, 256000, "all_gather", 1, True)
    # Gemma (gemma.py:320-322) the same: one head
    gemma = table(built(module_of(sglang_tree, "0.5.23", "gemma"), "GemmaForCausalLM", "google__gemma-2b", "L3", True))
    assert gemma["lm_head"] == ("matmul", DECODE_BATCH, 2048, 256000 // 8, 1, 1, BF16, None)  # no torch_dtype
    # a model with an LM head attribute gets no second head: gemma3_causal.py:750-758 aliases the
    # embedding as lm_head and still hands the embedding to the logits processor (:790)
    result, _ = corpus_result("gemma3_causal")
    shapes = next(s for s in result.shapes if s.entry == "Gemma3ForCausalLM")
    assert sorted(E.to_source(op.guard) for op in shapes.operators if op.name == "lm_head") == [
        "mc.tie_word_embeddings", "not mc.tie_word_embeddings"]


@pytest.mark.corpus
def test_a_head_cast_to_float_is_still_the_head(corpus_result):
    """falcon_h1.py:462-472: `self.lm_head = self.lm_head.float()` after
    choosing the tied embedding or a ParallelLMHead: `.float()` returns the
    module ([trace] returns_self in rules/layers.toml), so the head stays."""
    result, _ = corpus_result("falcon_h1")
    shapes = next(s for s in result.shapes if s.entry == "FalconH1ForCausalLM")
    heads = [(op.name, E.to_source(op.guard)) for op in shapes.operators if op.name == "lm_head"]
    assert heads == [("lm_head", "mc.tie_word_embeddings"), ("lm_head", "not mc.tie_word_embeddings")]


@pytest.mark.corpus
def test_a_key_read_to_fall_back_on_is_missing_in_the_checkpoint(sglang_tree):
    """bailing_moe.py:536 `self.head_dim = config.head_dim or (hidden // heads)`:
    Ling-plus's config.json has no head_dim (its remote config class answers
    None), and LLMSim's config holds only the JSON's keys. The module read
    `mc.head_dim` and raised AttributeError; it reads the key as missing."""
    import json as _json

    from tests.helpers import REPO, build
    config = _json.loads((REPO / "tests/data/runtime_configs/inclusionAI__Ling-plus.json").read_text())
    assert "head_dim" not in config
    arch = build(module_of(sglang_tree, "0.5.23", "bailing_moe"), "BailingMoeForCausalLM", config, tp=8)
    cores = [op for ops in arch.attention_operators.values() for op in ops]
    assert {op.metadata.io_config.input_shape.n for op in cores if op.metadata.name.endswith("_qk")} == \
        {5376 // 42}  # head_dim = hidden_size // num_attention_heads


@pytest.mark.corpus
def test_an_entry_of_a_json_object_of_the_config_is_read_by_attribute(sglang_tree):
    """jet_nemotron.py reads `config.efficient_attention_config[layer_type].num_heads`:
    a JSON object, which LLMSim's config keeps a dict. The module reads it
    through the package's as_config; it raised AttributeError on a dict."""
    import json as _json

    from tests.helpers import REPO, build
    config = _json.loads((REPO / "tests/data/runtime_configs/jet-ai__Jet-Nemotron-2B.json").read_text())
    assert isinstance(config["efficient_attention_config"], dict)
    arch = build(module_of(sglang_tree, "0.5.23", "jet_nemotron"), "JetNemotronForCausalLM", config, tp=1)
    jet = config["efficient_attention_config"]["jet"]
    outs = [op.metadata.io_config for op in arch.operators if op.metadata.name == "self_attn_o_proj"]
    # one JetBlock output projection per "jet" layer, from num_heads x head_dim x expand_v
    assert len(outs) == config["layer_types"].count("jet") == 24
    assert {io.input_shape.n for io in outs} == {round(jet["num_heads"] * jet["head_dim"] * jet["expand_v"])} == {3072}


def test_a_sub_config_the_config_class_builds_from_the_checkpoints_is_read_through_its_class(corpus_result):
    """KimiK3Config builds its text config as KimiLinearConfig(**text_config)
    where the checkpoint has one, KimiLinearConfig() where it has none
    (configs/kimi_k3.py:92-97): the module reads the one built from the
    checkpoint, through its class (its is_moe and is_kda_layer properties,
    configs/kimi_linear.py:143-170). On Kimi K3's runtime config (93 layers:
    69 KDA, 24 MLA) at tp 8 DECODE the module ran into a raw `is_moe` key
    and crashed; the KDA layers' projections were missing."""
    result, module = corpus_result("kimi_k3")
    assert "Read as built from the checkpoint's:\nKimiK3Config.text_config (KimiLinearConfig)," in result.source
    config = json.loads((CONFIGS.parent / "runtime_configs" / "moonshotai__Kimi-K3.json").read_text())
    kda = len(config["text_config"]["linear_attn_config"]["kda_layers"])
    full = len(config["text_config"]["linear_attn_config"]["full_attn_layers"])
    assert (kda, full) == (69, 24)
    sc = schedule(tp=8, mode=ForwardMode.DECODE, batch=DECODE_BATCH)
    arch = module.ARCHITECTURES["KimiK3ForConditionalGeneration"](model_config(config), sc)
    arch.build_operators()
    layers = {op.metadata.name: op.metadata.num_layers for op in arch.operators}
    assert layers["b_proj"] == layers["f_a_proj"] == kda  # kimi_k3.py: the KDA projections, one set per KDA layer
    attention = {op.metadata.name: op.metadata.num_layers for ops in arch.attention_operators.values() for op in ops}
    assert attention["attn_mqa_qk"] == full


def test_a_language_model_config_sglang_relabels_is_read_as_relabelled(corpus_result):
    """kimi_vl.py:117-120 hands DeepseekV2 a copy of the text config whose
    architectures sglang sets to DeepseekV2ForCausalLM, which
    is_deepseek_dsa does not list (configs/model_config.py:191-212): no DSA
    indexer (wq_b, wk, weights_proj), whatever the checkpoint's text config
    says. The copy was an expression before, and the assignment was lost."""
    result, _ = corpus_result("kimi_vl")
    _, records = split_module(result.source)
    names = {json.loads(r)["name"] for r in records}
    assert not names & {"wq_b", "wk", "weights_proj", "wk_weights_proj"}
    assert {"q_a_proj", "kv_a_proj_with_mqa"} & names or "fused_qkv_a_proj_with_mqa" in names  # MLA itself stays


def test_a_collective_of_a_module_without_a_hidden_size_carries_its_enclosing_models(corpus_result):
    """DeepseekOCR's dense MLP all-reduce (deepseek_v2.py) sums rows of the
    text model's hidden size: the enclosing model's field, not a top-level
    mc.hidden_size the OCR config may not have."""
    result, _ = corpus_result("deepseek_ocr")
    _, records = split_module(result.source)
    reduce = next(json.loads(r) for r in records if json.loads(r)["name"] == "dense_mlp_all_reduce")
    assert reduce["n"] == "mc.text_config.hidden_size"


def test_the_tied_and_the_untied_lm_head_are_one_operator_under_two_guards(corpus_result):
    """qwen3_vl.py builds the LM head tied to the embedding or as its own
    ParallelLMHead; the untied one's guard arrives as `not (tied and True)`:
    read in its simplest form it excludes the tied one, so both are
    `lm_head` (they were lm_head and lm_head_1, and Qwen3-Omni's
    thinker_lm_head), as every other model names it."""
    from astgen.lower.shapes import _exclusive

    tied = E.GetAttr(E.Attr(E.Name("mc"), "text_config"), "tie_word_embeddings", E.TRUE)
    assert _exclusive(tied, E.UnaryOp("not", E.BoolOp("and", tied, E.TRUE)))
    for stem in ("qwen3_vl", "qwen3_omni_moe"):
        result, _ = corpus_result(stem)
        _, records = split_module(result.source)
        heads = [r for r in map(json.loads, records) if r["kind"] == "matmul" and "lm_head" in r["name"]]
        assert sorted({h["name"] for h in heads}) == ["lm_head"], stem
        assert len(heads) == 2  # tied and untied, each under its guard
