"""The emitted modules read like hand-written ones: names sglang gives its
values, one line per operator with its source, no dead or duplicated
operators, identities removed, and black has nothing to change."""

from __future__ import annotations

import re

import black
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astgen.emit.package import OP_MARK
from tests.helpers import FIXTURES, build, fixture_result, load_config, load_module

NAMES = sorted(p.stem for p in FIXTURES.glob("*.py"))


def code_of(source: str) -> str:
    """The module without its operator table (comments after the code)."""
    return "\n".join(line for line in source.splitlines() if not line.startswith(OP_MARK))


@pytest.mark.parametrize("name", NAMES)
def test_fixture_modules_are_black_stable_and_free_of_generated_names(name):
    source = fixture_result(name).source
    assert source is not None
    assert black.format_str(source, mode=black.Mode()) == source
    code = code_of(source)
    assert re.findall(r"\b\w*_expr(?:_\d+)?\b", code) == []  # never value_expr, vocab_size_expr
    assert re.findall(r"// 1\b|\* 1\b(?!\d)|\bsum\(\(|\bNone or\b", code) == []


def test_dense_module_names_sglangs_values_and_merges_the_tied_head():
    """dense.py builds QKVParallelLinear(hidden, head_dim, heads, kv_heads)
    (dense.py:40) and a ParallelLMHead under `if tie_word_embeddings` and
    its `else` (dense.py:78, 80): one operator in the code, two rows in the
    operator table. The head's operators are the rule's (rules/layers.toml
    [layers.ParallelLMHead]): one call of the package's ``ops.lm_head``."""
    source = fixture_result("dense").source
    code = code_of(source)
    lines = [line.strip() for line in code.splitlines()]
    assert 'head_dim = getattr(mc, "head_dim", None) or hidden_size // num_attention_heads' in lines
    assert "num_heads = num_attention_heads // tp_size" in lines
    assert "num_kv_heads = max(1, num_key_value_heads // tp_size)" in lines
    assert "n = num_heads * head_dim + num_kv_heads * (head_dim + head_dim)" in lines
    assert 'ops.matmul("qkv_proj", seq_len, hidden_size, n, num_layers)  # dense.py:40' in lines
    assert 'ops.lm_head("lm_head", mc.vocab_size, hidden_size)  # dense.py:78, 80' in lines
    assert code.count('"lm_head"') == 1
    assert source.count('"name":"lm_head"') == 2  # the table keeps both, with their guards
    assert "tie_word_embeddings" not in code
    # the same values as the table says, at a real config
    module = load_module(source, "dense_arch")
    arch = build(module, "DenseForCausalLM", load_config("Qwen__Qwen3-8B"), tp=8)
    head = [op for op in arch.operators if op.metadata.name == "lm_head"]
    assert [(op.metadata.io_config.weight_shape.m, op.metadata.io_config.weight_shape.n) for op in head] == [
        (4096, (151936 + 63) // 64 * 64 // 8)]
    gathers = [op for op in arch.transfer_operators if op.metadata.name.startswith("lm_head")]
    assert [(op.metadata.name, op.metadata.io_config.input_shape.n) for op in gathers] == [
        ("lm_head_all_gather", (151936 + 63) // 64 * 64)]  # tp 8, no DP: the vocab shards gathered


def test_a_block_shares_its_guard_and_the_layer_count_it_repeats():
    """moe_every_k.py: the MoE operators of the layers where
    `layer_id % moe_every_k == 0` share one count, named once."""
    code = code_of(fixture_result("moe_every_k").source)
    counts = re.findall(r"^\s*(\w+) = sum\(", code, re.M)
    assert len(counts) == len(set(counts))  # each layer count bound once per block
    assert all(not name.endswith("_expr") for name in counts)


def test_black_output_is_kept_by_text_and_read_back_without_black(tmp_path, monkeypatch):
    """A statement too long for a line is formatted by black once: with a
    cache directory the layout is kept there (keyed by black's version,
    the width and the text) and a later process reads it back."""
    from astgen.emit import pysource
    monkeypatch.setattr(pysource, "_FORMATTED", {})
    text = "x = " + " + ".join(f"mc.key_{i}" for i in range(12))
    expected = black.format_str(text + "\n", mode=black.Mode(line_length=80)).rstrip("\n").split("\n")
    with pysource.kept_in(tmp_path / "format"):  # what emit_module does with EmitOptions.format_cache
        assert pysource.statement(text, 8) == ["        " + line for line in expected]
    kept = list((tmp_path / "format").rglob("*"))
    assert len([p for p in kept if p.is_file()]) == 1

    def no_black(text, width):
        raise AssertionError("black ran again")

    monkeypatch.setattr(pysource, "_FORMATTED", {})  # a new process: nothing in memory
    monkeypatch.setattr(pysource, "_run_black", no_black)
    with pysource.kept_in(tmp_path / "format"):
        assert pysource.statement(text, 8) == ["        " + line for line in expected]
        with pytest.raises(AssertionError, match="black ran again"):
            pysource.statement(text, 4)  # another width is another key
    monkeypatch.setattr(pysource, "_FORMATTED", {})
    with pytest.raises(AssertionError, match="black ran again"):
        pysource.statement(text, 8)  # outside the block nothing is kept or read


def test_the_kv_cache_dtype_is_the_models_unless_given():
    """--kv-cache-dtype auto: the model's dtype, the package Arch's default,
    and the module says nothing more; fp8_e4m3 (rules/execution.toml
    [precision] kv_cache): one constant, the cache and the attention cores
    at one byte."""
    from astgen.emit.modules import EmitOptions
    from astgen.frontend.source import tree_of_file
    from astgen.scan import analyze_file
    from tests.helpers import RULES, STUB_ROOT

    path = FIXTURES / "dense.py"
    auto = fixture_result("dense").source
    fp8 = analyze_file(tree_of_file(path), path, RULES, emit=EmitOptions(
        import_root=STUB_ROOT, kv_cache_dtype="fp8_e4m3")).source
    assert "KV_CACHE_DTYPE" not in auto and "kv_cache_dtype" not in auto
    assert "KV_CACHE_DTYPE = DataType.FP8\n" in fp8 and "    kv_cache_dtype = KV_CACHE_DTYPE\n" in fp8
    config = load_config("Qwen__Qwen3-8B")
    plain = build(load_module(auto, "dense_kv_auto"), "DenseForCausalLM", config, tp=8)
    one_byte = build(load_module(fp8, "dense_kv_fp8"), "DenseForCausalLM", config, tp=8)
    # Qwen3-8B at tp 8: 36 layers x 1 KV head x (128 + 128) elements, at 2 bytes
    assert plain.get_kv_cache_per_gpu() == 2 * one_byte.get_kv_cache_per_gpu() == 36 * 1 * (128 + 128) * 2
    cores = [op for ops in one_byte.attention_operators.values() for op in ops]
    assert cores and {op.metadata.io_config.weight_dtype.value for op in cores} == {1}


_NAMES = st.sampled_from(["seq_len", "hidden_size", "num_layers", "mc.vocab_size", "sc.tp_size * sc.dp_size",
                          "weight_dtype(\"model.layers.mlp.down_proj\")", "f(a, b)", "\"a, b\"", "xs[0]",
                          "mc.intermediate_size // tp_size", "enable_dp_lm_head", "(1 if a else 2)",
                          "[a, b]", "1e5", "-(-seq_len // sc.tp_size)", "not (a and b)"])


@settings(max_examples=300, deadline=None)
@given(args=st.lists(st.tuples(st.sampled_from(["", "rows=", "layers=", "dtype="]), _NAMES), min_size=1,
                     max_size=8), name=st.sampled_from(["ops.matmul", "ops.lm_head", "ops.ffn_exit"]),
       shorter=st.integers(1, 60))
def test_a_call_laid_out_without_black_is_laid_out_as_black_does(args, name, shorter):
    """pysource lays out a plain call too long for its line itself (black's
    right-hand split: the arguments on one line, else one per line with a
    trailing comma); where it does, black agrees. What black would rewrite
    inside (quotes, `**`, slices) is left to black."""
    from astgen.emit.pysource import _call_layout

    text = f"{name}({', '.join(key + value for key, value in args)})"
    width = max(20, len(text) - shorter)
    if len(text) <= width:
        return  # fits its line: never laid out
    mine = _call_layout(text, width)
    if mine is not None:
        assert "\n".join(mine) + "\n" == black.format_str(text + "\n", mode=black.Mode(line_length=width))
    for rewritten in ("x ** 2", "xs[1:2]", "'a'"):
        assert _call_layout(f"{name}({rewritten}, {text})", 20) is None
