"""mini-sglang as a source: its registry gives the entries, its layers map to
operators through rules/minisgl.toml, its ModelConfig.from_hf renaming of
Hugging Face keys is traced, its TP size is LLMSim's sc.tp_size.

The tree is fixtures/minisgl (written for these tests in mini-sglang's
style; upstream sgl-project/mini-sglang 20fcd7f). Golden figures are derived
by hand from the fixture, which keeps upstream's shapes and collectives
(fixture file:line, then upstream python/minisgl/ file:line)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from astgen.cli import main
from astgen.frontend.loader import Loader
from astgen.rules import load_rules
from astgen.frontend.source import MINISGL, SGLANG, read_version, tree_at, tree_of_dir, tree_of_file
from astgen.lower.weights import evaluate_weights
from astgen.emit.package import helpers_source
from tests.helpers import HF_CONFIGS, REPO, RULES, STUB_ROOT, build, generate, load_config, load_module, ops_by_name
from tests.llmsim_stub.config import ForwardMode

ROOT = REPO / "fixtures" / "minisgl" / "python"
MODELS = ROOT / "minisgl" / "models"
LLAMA3 = "meta-llama__Meta-Llama-3-8B"  # H 4096, I 14336, 32 heads, 8 KV heads, head_dim 128, L 32, V 128256
QWEN3_MOE = "Qwen__Qwen3-30B-A3B"  # H 2048, Im 768, 32 heads, 4 KV heads, head_dim 128, L 48, E 128, top 8


def _module(stem: str):
    path = MODELS / f"{stem}.py"
    result = generate(tree_of_file(path), path)
    assert result.status == 0, [d.render() for d in result.diagnostics]
    return result, load_module(result.source, f"minisgl_{stem}")


def test_a_minisgl_tree_is_found_from_its_root_a_model_file_or_its_models_directory():
    for tree in (tree_at(ROOT), tree_at(ROOT.parent), tree_of_file(MODELS / "dense.py"), tree_of_dir(MODELS)):
        assert tree.flavour is MINISGL and not tree.flat
        assert tree.models_dir == MODELS.resolve() and tree.models_package == "minisgl.models"
    assert tree_of_file(REPO / "fixtures" / "sglang_models" / "dense.py").flavour is SGLANG


def test_the_version_is_the_checkouts_pyproject(tmp_path):
    (tmp_path / "python" / "minisgl" / "models").mkdir(parents=True)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "minisgl"\nversion = "0.1.0"\n')
    assert read_version(tmp_path / "python") == "0.1.0"
    assert tree_at(tmp_path).version == "0.1.0"
    assert read_version(ROOT) == "unknown"  # the fixture has none


def test_the_registry_dict_gives_each_model_file_its_entries_and_aliases():
    loader = Loader(tree_at(ROOT))
    # models/register.py:6-11: two classes, and a second architecture name for the first
    dense = loader.load("minisgl.models.dense")
    assert dense.entry_classes == ["LlamaForCausalLM", "Mistral3ForConditionalGeneration"]
    assert dense.entry_aliases == {"Mistral3ForConditionalGeneration": "LlamaForCausalLM"}
    assert loader.load("minisgl.models.moe").entry_classes == ["Qwen3MoeForCausalLM"]
    assert loader.load("minisgl.models.utils").entry_classes == []  # a helper file


def test_scan_of_the_tree_reads_every_registry_entry_fully(tmp_path):
    report = tmp_path / "scan.json"
    assert main(["scan", "--sglang-root", str(ROOT), "-o", str(tmp_path / "out"), "-q", "--no-cache",
                 "--report", str(report)]) == 0
    doc = json.loads(report.read_text())
    entries = {e["name"]: e["status"] for e in doc["entries"]}
    assert entries == {"LlamaForCausalLM": "FULLY", "Mistral3ForConditionalGeneration": "FULLY",
                       "Qwen3MoeForCausalLM": "FULLY"}
    assert sorted(p.name for p in (tmp_path / "out").glob("*.py")) == \
        ["__init__.py", "_astgen.py", "dense_model_arch.py", "moe_model_arch.py"]


def test_the_module_names_mini_sglang_its_parallelism_and_its_prefill_chunk():
    result, module = _module("dense")
    head = result.source.split('"""')[1]
    assert "LLMSim model_arch for mini-sglang's dense.py" in head
    assert "Parallel sizes and weight precision as _astgen.py states them" in " ".join(head.split())
    helpers = helpers_source(STUB_ROOT, RULES.for_flavour("minisgl"))  # the package's, for this family
    assert "mini-sglang -> LLMSim: --tp-size -> sc.tp_size" in " ".join(helpers.split('"""')[1].split())
    assert " (mini-sglang version unknown)\n# sha256: " in result.source
    # scheduler/config.py:16 max_extend_tokens = 8192: the prefill chunk
    assert '    "max_extend_tokens": 8192,  # --max-extend-tokens (mini-sglang\'s default)' in result.source
    assert '    source = "minisgl"\n' in result.source  # the package's PREFILL_CHUNK and DERIVED by family
    assert 'def _prefill_chunk_minisgl(arch, sc):\n    return arch.switch("max_extend_tokens", sc)\n' in helpers
    assert helpers == helpers_source(STUB_ROOT, RULES)  # one package serves modules of both families
    assert "sglang's default" not in result.source.replace("mini-sglang's default", "")
    # the alias entry is the first entry's class, under both architecture names
    assert module.ARCHITECTURES["Mistral3ForConditionalGeneration"].__mro__[1] is \
        module.ARCHITECTURES["LlamaForCausalLM"]
    assert module.MODEL_TYPES["llama"] is module.ARCHITECTURES["LlamaForCausalLM"]


def test_dense_operators_per_rank_at_tp8_decode():
    """Llama-3-8B on the dense fixture, TP 8, a decode batch of 8 tokens."""
    _, module = _module("dense")
    ops = ops_by_name(build(module, "LlamaForCausalLM", load_config(LLAMA3), tp=8, mode=ForwardMode.DECODE))
    shape = {name: (md.io_config.input_shape.m, md.io_config.weight_shape.m, md.io_config.weight_shape.n,
                    md.num_layers) for name, md in ops.items()}
    assert shape == {
        # q heads 32/8, kv heads 8/8 each for K and V, head_dim 128 (layers/linear.py:40-49 | linear.py:71-88)
        "qkv_proj": (8, 4096, (4 + 2 * 1) * 128, 32),
        # row parallel: 32 * 128 / 8 in, summed over TP (linear.py:52-64 | linear.py:91-106)
        "o_proj": (8, 512, 4096, 32),
        "gate_up_proj": (8, 4096, 2 * 14336 // 8, 32),  # linear.py:33-37 | linear.py:56-68
        "down_proj": (8, 14336 // 8, 4096, 32),  # linear.py:67-79 | linear.py:109-127
        # every decode token's logits over ceil(128256 / 8) vocab rows (embedding.py:56-69 | embedding.py:87-110)
        "lm_head": (8, 4096, 16032, 1),
    }
    transfers = {op.metadata.name: (op.metadata.io_config.input_shape.m, op.metadata.io_config.input_shape.n,
                                    op.metadata.num_layers) for op in module_transfers(module, LLAMA3)}
    assert transfers == {
        "embed_tokens_all_reduce": (8, 4096, 1),  # embedding.py:26-34 | embedding.py:32-42
        "o_proj_all_reduce": (8, 4096, 32),
        "down_proj_all_reduce": (8, 4096, 32),
        "lm_head_all_gather": (8, 16032 * 8, 1),  # the shards gathered, then cut to the vocab
    }


def module_transfers(module, config_name, **sched):
    arch = build(module, "LlamaForCausalLM", load_config(config_name), tp=8, mode=ForwardMode.DECODE, **sched)
    return arch.transfer_operators


def test_at_tp1_there_is_no_collective_and_prefill_runs_in_max_extend_token_chunks():
    _, module = _module("dense")
    arch = build(module, "LlamaForCausalLM", load_config(LLAMA3), tp=1, mode=ForwardMode.EXTEND, max_seqlen=20000)
    assert arch.transfer_operators == []
    ops = ops_by_name(arch)
    # 20,000 tokens in ceil(20000 / 8192) = 3 chunks of ceil(20000 / 3) = 6,667 (scheduler/prefill.py:73-79)
    assert ops["qkv_proj"].io_config.input_shape.m == 6667 and ops["qkv_proj"].num_layers == 32 * 3
    assert ops["qkv_proj"].io_config.weight_shape.n == (32 + 2 * 8) * 128
    # a schedule field of the argument's name wins over the module's constant
    arch = build(module, "LlamaForCausalLM", load_config(LLAMA3), tp=1, mode=ForwardMode.EXTEND, max_seqlen=20000,
                 max_extend_tokens=20000)
    assert ops_by_name(arch)["qkv_proj"].num_layers == 32


def test_moe_weights_per_rank_are_the_hand_derived_figures():
    """Qwen3-30B-A3B on the moe fixture at TP 8: every rank holds all 128
    experts with their intermediate dim cut 8 ways (layers/moe.py:32-34 |
    layers/moe.py:33-43); the router is replicated (models/utils.py:38 |
    models/utils.py:62-66); 4 KV heads over 8 ranks keep one each."""
    result, _ = _module("moe")
    rules = load_rules().for_flavour("minisgl")
    (ir,) = result.irs
    per_layer = {}
    for w in evaluate_weights(ir, rules, load_config(QWEN3_MOE), tp=8).weights:
        if w.repeats and w.repeats[0][1] == 0:
            per_layer[w.path.split(".", 3)[3]] = w.numel
    assert per_layer == {
        "self_attn.qkv_proj": (32 // 8 + 2 * 1) * 128 * 2048,
        "self_attn.o_proj": 2048 * (32 * 128 // 8),
        "mlp.experts": 128 * (2 * 768 // 8) * 2048 + 128 * 2048 * (768 // 8),
        "mlp.gate": 128 * 2048,
    }
    assert sum(per_layer.values()) == 78_381_056


def test_a_sglang_tree_keeps_sglangs_layer_rules():
    rules = load_rules()
    assert rules.layer("ParallelLMHead").params[:2] == ("num_embeddings", "embedding_dim")
    assert "tie_word_embeddings" not in rules.layer("ParallelLMHead").params
    mini = rules.for_flavour("minisgl")
    assert mini.layer("ParallelLMHead").params == \
        ("num_embeddings", "embedding_dim", "bias", "tie_word_embeddings", "tied_embedding")
    assert mini.digest == rules.digest  # rules/minisgl.toml is part of the one digest
    assert "LinearQKVMerged" not in rules.layers


def _validate(model: str, config: str, tp: int) -> dict:
    proc = subprocess.run([sys.executable, "-m", "astgen.cli", "validate", str(MODELS / model), "--config",
                           str(HF_CONFIGS / f"{config}.json"), "--tp", str(tp), "--format", "json"],
                          cwd=REPO, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


needs_oracle = pytest.mark.skipif(
    any(__import__("importlib").util.find_spec(m) is None for m in ("torch", "transformers")),
    reason="the transformers oracle needs the `oracle` extra (torch, transformers)")


@needs_oracle
@pytest.mark.parametrize("model, config, arch, layer, per_rank", [
    # 4096 * (4096 + 2 * 1024) + 4096 * 4096 + 3 * 4096 * 14336; every weight split 8 ways at TP 8
    ("dense.py", LLAMA3, "LlamaForCausalLM", 218_103_808, 218_103_808 // 8),
    # 2048 * (4096 + 2 * 512) + 4096 * 2048 + 128 * 2048 + 128 * 3 * 2048 * 768; at TP 8 the router
    # is whole and the 4 KV heads are one per rank (test_moe_weights_per_rank_are_the_hand_derived_figures)
    ("moe.py", QWEN3_MOE, "Qwen3MoeForCausalLM", 623_116_288, 78_381_056),
])
def test_weights_agree_with_transformers_at_a_real_config(model, config, arch, layer, per_rank):
    doc = _validate(model, config, 8)
    assert doc["summary"] == {"agree": 1, "disagree": 0, "incomplete": 0, "unusable": 0}
    (v,) = doc["results"]
    assert v["arch"] == arch
    assert {(r["astgen"], r["oracle"]) for r in v["layers"]} == {(layer, layer)}
    assert set(v["per_rank"]["layers"].values()) == {per_rank}
