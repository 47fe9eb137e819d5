"""The sglang runtime as the oracle: sglang 0.5.23's own model classes built
on the meta device at one rank of a layout, compared with astgen's per-rank
weights (``astgen validate --oracle sglang``).

The per-rank sizes below are worked out by hand from the configs and
sglang's sharding (linear.py: column-parallel output / tp, row-parallel
input / tp, QKV heads / attention tp with KV heads replicated past their
count; fused_moe_triton/layer.py: experts / ep, intermediate / moe tp), not
read back from either side.
"""

from __future__ import annotations

import importlib.util
import json

import pytest

from astgen.lower.layout import Layout
from astgen.validate.oracles import OracleUnavailable, sglang_runtime
from astgen.frontend.source import runtime_root
from astgen.frontend.loader import Loader
from astgen.validate.compare import AGREE, DISAGREE, RuntimeCase, compare, layout_request, validate_runtime
from astgen.lower.weights import evaluate_weights
from tests.helpers import CONFIGS, HF_CONFIGS, RULES
from tests.test_validate import cli

# what `pip install -e ".[test]"` installs for the runtime (the `runtime` extra)
NEEDED = ("torch", "transformers", "torchvision", "tvm_ffi", "zmq", "msgspec", "pybase64", "compressed_tensors")
missing = [m for m in NEEDED if importlib.util.find_spec(m) is None]
pytestmark = [pytest.mark.corpus, pytest.mark.skipif(
    bool(missing), reason=f"the sglang runtime oracle needs the `runtime` extra ({', '.join(missing)} missing): "
                          "pip install -e '.[runtime]'")]

VERSION = "0.5.23"


def _config(path):
    return json.loads(path.read_text())


QWEN3 = _config(HF_CONFIGS / "Qwen__Qwen3-8B.json")
LLAMA3 = _config(HF_CONFIGS / "meta-llama__Meta-Llama-3-8B.json")
QWEN3_MOE = _config(HF_CONFIGS / "Qwen__Qwen3-30B-A3B.json")
R1 = _config(CONFIGS / "deepseek-ai__DeepSeek-R1.json")  # with its block-FP8 quantization_config
TP1, TP8, EP8, DP8 = Layout(), Layout(tp=8), Layout(tp=8, ep=8), Layout(tp=1, dp=8, ep=8)
DS_DECODE = Layout(tp=1, dp=16, ep=16, deepep=True, fully_dp=True)  # LLMSim's ds_decode.sh
CASES = [(RuntimeCase("Qwen3ForCausalLM", QWEN3, "Qwen3-8B"), (TP1, TP8)),
         (RuntimeCase("LlamaForCausalLM", LLAMA3, "Llama-3-8B"), (TP1, TP8)),
         (RuntimeCase("Qwen3MoeForCausalLM", QWEN3_MOE, "Qwen3-30B-A3B"), (TP8, EP8)),
         (RuntimeCase("DeepseekV3ForCausalLM", R1, "DeepSeek-R1"), (TP8, DP8, DS_DECODE)),
         # R1's MTP draft at R1's checkpoint, as sglang builds it (configs/model_config.py:1032-1036)
         (RuntimeCase("DeepseekV3ForCausalLMNextN", R1, "DeepSeek-R1 draft", draft_of="DeepseekV3ForCausalLM"),
          (TP8,))]


@pytest.fixture(scope="module")
def tree(sglang_tree):
    return sglang_tree(VERSION)


@pytest.fixture(scope="module")
def results(tree):
    """Every case at its layouts, built by one sglang process per layout set."""
    out = {}
    loader = Loader(tree)
    for case, layouts in CASES:
        for v in validate_runtime(tree, RULES, loader, [case], layouts):
            out[(case.label, v.layout)] = v
    return out


def layer0(v) -> dict[str, tuple[int, int]]:
    return {r.module: (r.astgen, r.oracle) for r in v.modules[0]}


def test_core_families_agree_per_rank(results):
    assert {key: v.status for key, v in results.items()} == {
        ("Qwen3-8B", "tp1"): AGREE, ("Qwen3-8B", "tp8"): AGREE,
        ("Llama-3-8B", "tp1"): AGREE, ("Llama-3-8B", "tp8"): AGREE,
        ("Qwen3-30B-A3B", "tp8"): AGREE, ("Qwen3-30B-A3B", "tp8 ep8"): AGREE,
        ("DeepSeek-R1", "tp8"): AGREE, ("DeepSeek-R1", "tp1 dp8 ep8"): AGREE,
        ("DeepSeek-R1", "tp1 dp16 ep16 deepep fully-dp"): AGREE, ("DeepSeek-R1 draft", "tp8"): AGREE}
    for v in results.values():
        assert v.oracle.startswith(f"sglang {VERSION} runtime ") and v.mismatches() == []


def test_dense_sizes_per_rank(results):
    h = 4096
    # Qwen3-8B: 32 heads and 8 KV heads of 128, MLP 12,288 (qwen3.py:196-212, qwen2.py:85-98)
    q, kv, mlp = 32 * 128, 8 * 128, 12288
    for tp in (1, 8):
        rows = layer0(results[("Qwen3-8B", f"tp{tp}")])
        assert rows == {"self_attn.qkv_proj": ((q + 2 * kv) * h // tp,) * 2,
                        "self_attn.o_proj": (q * h // tp,) * 2,
                        "mlp.gate_up_proj": (2 * mlp * h // tp,) * 2,
                        "mlp.down_proj": (mlp * h // tp,) * 2}
    # Llama-3-8B: MLP 14,336
    rows = layer0(results[("Llama-3-8B", "tp8")])
    assert rows["mlp.gate_up_proj"] == (2 * 14336 * h // 8,) * 2 == (14_680_064,) * 2
    assert results[("Llama-3-8B", "tp8")].stack == "model.layers x 32"


def test_moe_experts_per_rank_under_tp_and_ep(results, tree):
    h, experts, inter = 2048, 128, 768
    per_expert = 3 * inter * h  # w13 (2 * inter) and w2 (inter)
    # 4 KV heads at attention tp 8: each rank holds one, replicated (linear.py QKVParallelLinear)
    for layout in ("tp8", "tp8 ep8"):
        rows = layer0(results[("Qwen3-30B-A3B", layout)])
        assert rows["self_attn.qkv_proj"] == ((4 + 1 + 1) * 128 * h,) * 2
        assert rows["mlp.experts"] == (experts * per_expert // 8,) * 2  # the same elements ...
        assert rows["mlp.gate"] == (experts * h,) * 2  # the router is replicated
    # ... held as 128 experts of a TP slice, or 16 whole experts: the oracle's
    # stacked w13_weight / w2_weight lead with the experts on the rank
    model = next(iter(sglang_runtime(runtime_root(tree), [_request("Qwen3MoeForCausalLM", QWEN3_MOE, EP8)])))
    shapes = {p.name: p.shape for p in model.params if ".layers.0.mlp.experts." in p.name}
    assert shapes == {"model.layers.0.mlp.experts.w13_weight": (16, 2 * inter, h),
                      "model.layers.0.mlp.experts.w2_weight": (16, h, inter)}


def _request(arch, config, layout):
    return {"arch": arch, "config": config, "model_type": "", "layout": layout_request(layout)}


def test_mla_fp8_per_rank_with_dp_attention(results):
    h, heads, q_lora, kv_lora, nope, rope, v_dim = 7168, 128, 1536, 512, 128, 64, 128
    tp8 = results[("DeepSeek-R1", "tp8")]
    dp8 = results[("DeepSeek-R1", "tp1 dp8 ep8")]
    assert tp8.stack == dp8.stack == "model.layers x 61"
    # attention heads split over attention TP: 8 at tp8, whole at dp8 (attention tp 1)
    for v, attn_tp in ((tp8, 8), (dp8, 1)):
        rows = layer0(v)
        assert rows["self_attn.q_b_proj"] == (q_lora * heads * (nope + rope) // attn_tp,) * 2
        assert rows["self_attn.kv_b_proj"] == (kv_lora * heads * (nope + v_dim) // attn_tp,) * 2
        assert rows["self_attn.o_proj"] == (heads * v_dim * h // attn_tp,) * 2
        assert rows["self_attn.fused_qkv_a_proj_with_mqa"] == (h * (q_lora + kv_lora + rope),) * 2
    # layers 0-2 dense (MLP 18,432, TP-sharded); from layer 3 on: 256 routed experts of 2,048
    # (a TP slice of each at tp8, 32 whole ones at ep8), the replicated router, one shared expert
    dense, routed, shared, router = 3 * 18432 * h // 8, 256 * 3 * 2048 * h // 8, 3 * 2048 * h // 8, 256 * h
    assert tp8.layers[3].oracle - tp8.layers[0].oracle == routed + shared + router - dense
    assert tp8.layers[3].astgen == tp8.layers[3].oracle
    experts = {r.module: r.oracle for r in dp8.modules[0]}
    assert "mlp.experts" not in experts  # layer 0 is dense
    # FP8 weights on both sides, scales left out and listed
    assert any("quantization scale" in e for e in tp8.excluded)


def test_deepep_layout_and_draft(results):
    """ds_decode.sh: 16 whole experts a rank, attention and the dense MLPs
    whole (attention TP 1, --moe-dense-tp-size 1); sglang's DeepEP dispatcher
    is built over the deep_ep stand-in, which holds no parameter. The NextN
    draft: one decoder layer (a MoE one) and its eh_proj, at R1's config."""
    h = 7168
    v = results[("DeepSeek-R1", "tp1 dp16 ep16 deepep fully-dp")]
    assert "deep_ep" in v.standins
    assert layer0(v)["mlp.gate_up_proj"] == (2 * 18432 * h,) * 2
    attention = h * (1536 + 512 + 64) + 1536 * 128 * 192 + 512 * 128 * 256 + 128 * 128 * h
    # 16 routed experts, the shared expert whole (replicated under DeepEP), the router
    assert v.layers[3].oracle == v.layers[3].astgen == attention + 16 * 3 * 2048 * h + 3 * 2048 * h + 256 * h
    draft = results[("DeepSeek-R1 draft", "tp8")]
    assert draft.totals == (1_556_021_248, 1_556_021_248)


def test_standins_are_listed(results):
    v = results[("Qwen3-8B", "tp8")]
    # deep_ep: sglang's MoE package imports the DeepEP dispatcher module for every model
    assert v.standins == ["deep_ep", "vllm", "vllm._custom_ops", "SRTPlatform.get_device (-> cpu, for rotary buffers)",
                          "torch.cuda.get_device_capability (-> (9, 0), a Hopper GPU)"]


def test_a_wrong_layout_on_astgen_side_is_caught_module_by_module(results, tree):
    """astgen's weights at tp 4 against the runtime at tp 8: every sharded
    module differs, at the sglang line that builds it."""
    answer = next(iter(sglang_runtime(runtime_root(tree), [_request("Qwen3ForCausalLM", QWEN3, TP8)])))
    from astgen.validate.compare import _trace
    arch_ir, source, _ = _trace(tree, RULES, Loader(tree), "Qwen3ForCausalLM")
    v = compare(evaluate_weights(arch_ir, RULES, {**answer.config, **QWEN3}, layout=Layout(tp=4)), answer,
                None, "Qwen3-8B", source)
    assert v.status == DISAGREE
    lines = v.mismatches()
    assert lines[:2] == ["sglang/srt/models/qwen2.py:92: mismatch: layer 0 mlp.down_proj (RowParallelLinear): "
                         "astgen 12,582,912, oracle 6,291,456",
                         "sglang/srt/models/qwen2.py:85: mismatch: layer 0 mlp.gate_up_proj "
                         "(MergedColumnParallelLinear): astgen 25,165,824, oracle 12,582,912"]


def test_quantized_width_disagreement_is_reported(tree):
    """astgen told the checkpoint is not quantized (no quantization_config)
    while sglang builds FP8: the weight widths differ, module by module."""
    answer = next(iter(sglang_runtime(runtime_root(tree), [_request("DeepseekV3ForCausalLM", R1, TP8)])))
    from astgen.validate.compare import _trace, runtime_mismatches
    arch_ir, _, _ = _trace(tree, RULES, Loader(tree), "DeepseekV3ForCausalLM")
    plain = {k: v for k, v in {**answer.config, **R1}.items() if k != "quantization_config"}
    lines = runtime_mismatches(evaluate_weights(arch_ir, RULES, plain, layout=TP8), answer, plain, RULES)
    assert "sglang/srt/models/deepseek_v2.py" in lines[0]
    assert any("self_attn.q_b_proj (ColumnParallelLinear) weights: astgen the model dtype, sglang float8_e4m3fn"
               in line for line in lines)
    assert any("mlp.experts" in line and "float8_e4m3fn" in line for line in lines)


def test_an_entry_sglang_cannot_build_is_unusable_and_the_rest_go_on(tree):
    answers = list(sglang_runtime(runtime_root(tree), [
        _request("NoSuchForCausalLM", QWEN3, TP1), _request("Qwen3ForCausalLM", QWEN3, TP1)]))
    assert isinstance(answers[0], OracleUnavailable)
    assert "could not build NoSuchForCausalLM" in str(answers[0])
    assert not isinstance(answers[1], OracleUnavailable) and answers[1].arch == "Qwen3ForCausalLM"


def test_cli_one_entry_at_two_layouts_in_json(tmp_path):
    out = tmp_path / "v.json"
    proc = cli("--sglang-version", VERSION, "--oracle", "sglang", "--config", str(HF_CONFIGS / "Qwen__Qwen3-8B.json"),
               "--layout", "tp8", "--layout", "tp2,dp4", "--report", str(out), "-q")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert doc["summary"] == {"agree": 2, "disagree": 0, "incomplete": 0, "unusable": 0}
    assert [r["layout"] for r in doc["results"]] == ["tp8", "tp2 dp4"]
    assert doc["results"][1]["modules"]["0"][3] == {
        "module": "self_attn.qkv_proj", "class": "QKVParallelLinear", "astgen": 4096 * 6144 // 2,
        "oracle": 4096 * 6144 // 2, "oracle_modules": [], "source": "sglang/srt/models/qwen3.py:196"}


def test_cli_rejects_a_layout_it_cannot_deploy():
    proc = cli("--sglang-version", VERSION, "--oracle", "sglang", "--arch", "Qwen3ForCausalLM",
               "--layout", "tp4,ep3")
    assert proc.returncode == 2
    assert "--layout: ep 3 does not divide the world of 4 ranks" in proc.stderr


CHECKPOINTS = HF_CONFIGS.parent / "checkpoints"


def test_checkpoints_transformers_cannot_check(tree):
    """Kimi-K2.5 (no transformers class) and Qwen3-VL-32B (whose sizes live in
    text_config, copied to the top level by sglang's loader:
    utils/hf_transformers/config.py:258-268) at tp8."""
    kimi = _config(CHECKPOINTS / "moonshotai__Kimi-K2.5.json")
    vl = _config(CHECKPOINTS / "Qwen__Qwen3-VL-32B-Instruct.json")
    results = validate_runtime(tree, RULES, Loader(tree), [
        RuntimeCase("KimiK25ForConditionalGeneration", kimi, "Kimi-K2.5"),
        RuntimeCase("Qwen3VLForConditionalGeneration", vl, "Qwen3-VL-32B")], (TP8,))
    assert [(v.arch, v.status) for v in results] == [("KimiK25ForConditionalGeneration", AGREE),
                                                     ("Qwen3VLForConditionalGeneration", AGREE)]
    k, q = results
    assert k.stack == "language_model.model.layers x 61" and q.stack == "model.layers x 64"
    # int4 experts, packed 8 to an int32 by sglang's compressed-tensors MoE method: 384
    # experts of 2,048, a TP-8 slice of each (w13_weight_packed [384, 7168/8, 512]); layer 0 is
    # dense (first_k_dense_replace 1), layer 1 adds the experts, the router and a shared expert
    text = kimi["text_config"]
    h, moe, dense = text["hidden_size"], text["moe_intermediate_size"], text["intermediate_size"]
    routed = text["n_routed_experts"] * 3 * moe * h // 8
    assert (text["n_routed_experts"], h, moe, dense) == (384, 7168, 2048, 18432)
    assert k.layers[1].oracle - k.layers[0].oracle == routed + 384 * h + 3 * moe * h // 8 - 3 * dense * h // 8
    # the `ignore` list keeps attention in bf16 on both sides (no width mismatch reported)
    assert k.dtypes == [] and any("quantization metadata" in e for e in k.excluded)
    # Qwen3-VL-32B: 64 heads of 128 (not hidden / heads = 80), 8 KV heads, at tp8
    assert layer0(q)["self_attn.qkv_proj"] == (5120 * (64 + 2 * 8) * 128 // 8,) * 2


def test_forward_tier_qwen3_tp8_both_modes(tree):
    """sglang's own forward pass at tp8 (EXTEND one request of 4,096 tokens,
    DECODE 8 requests): every weight matmul, the attention core, the LM head
    and every collective agree with astgen's operators, the embedding's
    all-reduce (vocab_parallel_embedding.py:514-533) included: the forward
    tier found it missing, and issue 21's fix added it."""
    from astgen.validate.compare import validate_forward

    results = validate_forward(tree, RULES, Loader(tree), [RuntimeCase("Qwen3ForCausalLM", QWEN3, "Qwen3-8B")],
                               (TP8,))
    assert [(v.mode, v.status) for v in results] == [("extend", AGREE), ("decode", AGREE)]
    for v, rows in zip(results, (4096, 8)):
        equal = {a.key: (a.m, a.k, a.n, a.batch, a.count) for a, _ in v.check.pairs}
        h, layers = 4096, 36
        assert equal["model.layers.self_attn.qkv_proj"] == (rows, h, (32 + 2 * 8) * 128 // 8, 1, layers)
        assert equal["model.layers.self_attn.o_proj"] == (rows, 32 * 128 // 8, h, 1, layers)
        assert equal["model.layers.mlp.gate_up_proj"] == (rows, h, 2 * 12288 // 8, 1, layers)
        assert equal["model.layers.mlp.down_proj"] == (rows, 12288 // 8, h, 1, layers)
        # 4 query heads of 128 on the rank; the KV length is the whole 4,096-token context
        assert equal["model.layers.self_attn.attn qk"] == (rows, 128, 4096, 4, layers)
        assert equal["model.layers.self_attn.attn pv"] == (rows, 4096, 128, 4, layers)
        # logits of the last token of each request: 1 at EXTEND, 8 at DECODE; vocab / 8
        last = 1 if v.mode == "extend" else 8
        assert equal["lm_head"] == (last, h, 151936 // 8, 1, 1)
        assert equal["all_gather"] == (last, 0, 151936, 1, 1)
        # the embedding's shard sum, then two per layer: the attention's and the MLP's
        assert equal["all_reduce"] == (rows, 0, h, 1, 2 * layers + 1)
        assert v.check.astgen_only == [] and v.check.sglang_only == [] and v.check.differ == []


def test_forward_tier_r1_at_ds_decode(tree):
    """R1 at LLMSim's ds_decode.sh layout (tp1 dp16 ep16, DeepEP, fully-DP
    dense), one DECODE step of 8 requests a replica: sglang's own forward,
    DeepEP's dispatch and combine recorded shape-only, agrees with every
    operator astgen emits: 16 local experts on 8 x 16 x 8 / 256 = 4 rows each,
    dispatch and combine of the replica's 8 rows in each of the 58 MoE
    layers, the LM head over every replica's rows after the DP gather."""
    from astgen.validate.compare import validate_forward

    [v] = validate_forward(tree, RULES, Loader(tree), [RuntimeCase("DeepseekV3ForCausalLM", R1, "DeepSeek-R1")],
                           (DS_DECODE,), modes=("decode",))
    assert v.status == AGREE, v.check.lines()
    experts = {(a.m, a.k, a.n, a.batch) for a, _ in v.check.pairs if a.key == "model.layers.mlp.experts"}
    assert experts == {(4, 7168, 2 * 2048, 16), (4, 2048, 7168, 16)}
    equal = {a.key: (a.m, a.k, a.n, a.batch, a.count) for a, _ in v.check.pairs}
    assert equal["dispatch"] == (8, 0, 7168, 1, 58) and equal["combine"] == (8, 0, 7168, 1, 58)
    assert equal["lm_head"] == (8 * 16, 7168, 129280 // 16, 1, 1)
