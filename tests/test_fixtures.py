"""One fixture per tracer feature; each test asserts the exact IR it yields."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from astgen import expr as E
from astgen import ir
from tests.helpers import FIXTURES, build, fixture_result, generated, load_module, matmul_params

FIXTURE_FILES = {p.name: p.read_text("utf-8-sig") for p in sorted(FIXTURES.glob("*.py"))}


def tree_of(name: str, entry_index: int = 0) -> ir.ArchIR:
    result = fixture_result(name)
    assert [d.render() for d in result.diagnostics if d.severity != "note"] == []
    return result.irs[entry_index]


def outline(arch: ir.ArchIR) -> list[tuple]:
    """(path, class, kind, guard, repeat) of every node, in tree order."""
    rows = []
    for node in arch.root.walk():
        if node is arch.root:
            continue
        guard = None if node.guard == E.TRUE else E.to_source(node.guard)
        repeat = None if node.repeat is None else (E.to_source(node.repeat), node.repeat_var)
        rows.append((node.path(), node.cls, node.kind, guard, repeat))
    return rows


def args_of(arch: ir.ArchIR, path: str) -> dict[str, str]:
    node = next(n for n in arch.root.walk() if n.path() == path and n.kind == ir.LAYER)
    return {k: E.to_source(v) for k, v in node.args.items() if k not in ("prefix", "quant_config")}


def test_dense_config_reads_fallbacks_make_layers_and_tied_guard():
    arch = tree_of("dense")
    assert outline(arch) == [
        ("model", "DenseModel", "module", None, None),
        ("model.embed_tokens", "VocabParallelEmbedding", "layer", None, None),
        ("model.layers", "ModuleList", "list", None, ("mc.num_hidden_layers", "layer_id")),
        ("model.layers", "DenseDecoderLayer", "module", None, None),
        ("model.layers.self_attn", "DenseAttention", "module", None, None),
        ("model.layers.self_attn.qkv_proj", "QKVParallelLinear", "layer", None, None),
        ("model.layers.self_attn.o_proj", "RowParallelLinear", "layer", None, None),
        ("model.layers.self_attn.attn", "RadixAttention", "layer", None, None),
        ("model.layers.mlp", "DenseMLP", "module", None, None),
        ("model.layers.mlp.gate_up_proj", "MergedColumnParallelLinear", "layer", None, None),
        ("model.layers.mlp.down_proj", "RowParallelLinear", "layer", None, None),
        ("model.layers.input_layernorm", "RMSNorm", "ignored", None, None),
        ("model.norm", "RMSNorm", "ignored", None, None),
        ("lm_head", "VocabParallelEmbedding", "alias", "mc.tie_word_embeddings", None),
        ("lm_head", "ParallelLMHead", "layer", "not mc.tie_word_embeddings", None),
    ]
    head_dim = "getattr(mc, 'head_dim', None) or mc.hidden_size // mc.num_attention_heads"
    kv = "getattr(mc, 'num_key_value_heads', None) or mc.num_attention_heads"
    assert args_of(arch, "model.layers.self_attn.qkv_proj") == {
        "hidden_size": "mc.hidden_size",
        "head_size": head_dim,
        "total_num_heads": "mc.num_attention_heads",
        "total_num_kv_heads": kv,
        "bias": "mc.attention_bias if hasattr(mc, 'attention_bias') else False",
    }
    assert args_of(arch, "model.layers.self_attn.attn") == {
        # no attention group: heads shard over sglang's whole TP group (the world)
        "num_heads": "mc.num_attention_heads // (sc.tp_size * sc.dp_size)",
        "head_dim": head_dim,
        "scaling": f"({head_dim}) ** -0.5",
        "num_kv_heads": f"max(1, ({kv}) // (sc.tp_size * sc.dp_size))",
        "layer_id": "layer_id",
    }


def test_inheritance_across_files_alias_and_super():
    arch = tree_of("inherit")
    rows = outline(arch)
    assert ("model", "InheritModel", "module", None, None) in rows
    assert ("model.layers", "InheritDecoderLayer", "module", None, None) in rows
    assert ("model.layers.self_attn", "InheritAttention", "module", None, None) in rows
    # the parent's __init__ (dense.py) ran, then the subclass added q_norm
    attn = [r[0].rsplit(".", 1)[1] for r in rows if r[0].startswith("model.layers.self_attn.")]
    assert attn == ["qkv_proj", "o_proj", "attn", "q_norm"]
    # DenseMLP imported under another name is the same class
    assert ("model.layers.mlp", "DenseMLP", "module", None, None) in rows
    qkv = next(n for n in arch.root.walk() if n.path() == "model.layers.self_attn.qkv_proj")
    assert qkv.loc.file.endswith("dense.py") and qkv.loc.line == 40


def test_moe_every_k_layer_predicate_class_call_and_gate_parameter():
    arch = tree_of("moe_every_k")
    sparse = "layer_id >= mc.first_k_dense_replace and layer_id % mc.moe_layer_freq == 0"
    rows = outline(arch)
    assert ("model.layers.mlp", "KMoE", "module", sparse, None) in rows
    assert ("model.layers.mlp", "KMLP", "module", f"not ({sparse})", None) in rows
    assert ("model.layers.mlp.experts", "FusedMoE", "layer", None, None) in rows
    assert ("model.layers.mlp.gate.weight", "Parameter", "param", None, None) in rows
    assert ("model.layers.mlp.shared_experts", "KMLP", "module", "mc.n_shared_experts is not None", None) in rows
    assert args_of(arch, "model.layers.mlp.experts") == {
        "num_experts": "mc.n_routed_experts",
        "top_k": "mc.num_experts_per_tok",
        "hidden_size": "mc.hidden_size",
        "intermediate_size": "mc.moe_intermediate_size",
        "layer_id": "layer_id",
    }


def test_moe_every_k_layer_counts_evaluate_exactly():
    result = fixture_result("moe_every_k")
    module = load_module(result.source, "moe_every_k")
    config = dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, intermediate_size=128,
                  num_hidden_layers=10, first_k_dense_replace=2, moe_layer_freq=3, n_routed_experts=8,
                  num_experts_per_tok=2, moe_intermediate_size=32, n_shared_experts=1, vocab_size=1000)
    arch = build(module, "KMoeForCausalLM", config, tp=1)
    layers = {op.metadata.name: op.metadata.num_layers for op in arch.operators}
    # sparse layers: 3, 6, 9 -> 3; dense: the other 7
    assert layers["moe_experts_gate_up"] == 3 and layers["dense_gate_up_proj"] == 7
    attn = 10 * 64 * (4 * 16 + 2 * 2 * 16) + 10 * 4 * 16 * 64
    dense = 7 * 3 * 64 * 128
    moe = 3 * (64 * 8 + 8 * 3 * 64 * 32 + 3 * 64 * 32)
    head = 64 * 1024  # vocab padded to a multiple of 64
    assert matmul_params(arch) == attn + dense + moe + head


def test_mla_branches_modulelist_and_attention_tp():
    arch = tree_of("mla")
    rows = outline(arch)
    assert ("model.layers", "ModuleList", "list", None, ("mc.num_hidden_layers", "layer_id")) in rows
    assert ("model.layers.self_attn.q_a_proj", "ReplicatedLinear", "layer", "mc.q_lora_rank is not None", None) in rows
    assert ("model.layers.self_attn.q_proj", "ColumnParallelLinear", "layer", "mc.q_lora_rank is None", None) in rows
    # get_attention_tp_size() is LLMSim's sc.tp_size (attention TP inside a DP replica)
    assert args_of(arch, "model.layers.self_attn.kv_b_proj")["tp_size"] == "sc.tp_size"
    result = fixture_result("mla")
    assert result.shapes[0].attention_type == "MLA"
    # the package's Arch says MHA; a module states its attention only where it is another
    assert '    attention_type_name = "MLA"\n' in result.source
    assert "attention_type_name" not in fixture_result("dense").source
    assert E.to_source(result.shapes[0].kv_cache) == \
        "mc.num_hidden_layers * (mc.kv_lora_rank + mc.qk_rope_head_dim)"


def test_byte_order_mark_file_is_read():
    arch = tree_of("bom")
    assert arch.entry == "BomForSequenceClassification"
    assert ("score", "ReplicatedLinear", "layer", None, None) in outline(arch)


# ----------------------------------------------------------------------------
# parse: the index of a module, read from Python's tree

INDEX_SOURCE = '''"""Module docstring."""
# Licensed under ...
import torch.nn as nn
from .llama import LlamaMLP as MLP, LlamaAttention

try:
    from .fast import kernel
except ImportError:
    kernel = None

logger = logging.getLogger(__name__)
register(MLP)


@torch.compile(dynamic=True)
def helper(config: Config, *, scale: float = 1.0) -> int:
    return config.a * 2


class Empty:
    """Only a docstring."""


class M(nn.Module):
    """A model."""

    size_hint: int = 4

    def __init__(self, config):
        super().__init__()

    @property
    def size(self):
        return 1

    @size.setter
    def size(self, value):
        raise ValueError(value)

    async def stream(self):
        await x

    def one_line(self): return 2


EntryClass = M
'''


def test_the_index_reads_classes_functions_assignments_imports_and_entry(tmp_path):
    """astgen/frontend/parse.py: classes, functions, assignments and imports
    of the top level and of both arms of a top-level try; a property's
    setter does not replace its getter; every statement has its own line."""
    import ast

    from astgen.frontend.parse import ImportRef, parse_file

    path = tmp_path / "index.py"
    path.write_text(INDEX_SOURCE)
    pm = parse_file(path, "pkg.models.index")
    assert pm.imports == {"nn": ImportRef("torch.nn", None), "MLP": ImportRef("pkg.models.llama", "LlamaMLP"),
                          "LlamaAttention": ImportRef("pkg.models.llama", "LlamaAttention"),
                          "kernel": ImportRef("pkg.models.fast", "kernel")}
    assert list(pm.classes) == ["Empty", "M"] and pm.entry_classes == ["M"]
    assert list(pm.assigns) == ["kernel", "logger", "EntryClass"] and list(pm.functions) == ["helper"]
    methods = pm.classes["M"].methods
    assert list(methods) == ["__init__", "size", "stream", "one_line"]
    assert [ast.unparse(s) for s in methods["size"].body] == ["return 1"]  # the getter
    assert isinstance(methods["stream"], ast.AsyncFunctionDef)
    assert [pm.loc(s).line for s in pm.functions["helper"].body] == [17]
    assert [pm.loc(s).line for s in methods["__init__"].body] == [30]
    assert pm.class_line(pm.classes["M"]) == 24 and pm.class_line(pm.classes["Empty"]) == 20
    assert [ast.unparse(b) for b in pm.classes["M"].bases] == ["nn.Module"]


def test_a_class_defined_twice_binds_the_later_one(tmp_path):
    from astgen.frontend.parse import parse_file

    path = tmp_path / "twice.py"
    path.write_text("class A:\n    def f(self):\n        return 1\n\n\n"
                    "class A:\n    def f(self):\n        return 2\n")
    pm = parse_file(path, "pkg.twice")
    [stmt] = pm.classes["A"].methods["f"].body
    assert stmt.value.value == 2 and pm.class_line(pm.classes["A"]) == 6


PREFIXED_NAMES = '''from typing import TypedDict


class MiniCPMVImageInputs(TypedDict):
    pixel_values: list


class MiniCPMV:
    def __init__(self, config, quant_config=None):
        self.config = config


EntryClass = MiniCPMV
'''


def test_a_class_is_located_at_its_own_line_not_at_a_longer_name_it_starts(tmp_path):
    """A class whose name starts an earlier class's name is reported at its
    own line (sglang 0.5.23 minicpmv.py: MiniCPMV at :1706, not
    MiniCPMVImagePixelInputs at :163, as the text search of earlier
    versions had it)."""
    result = generated(tmp_path, "prefixed.py", PREFIXED_NAMES)
    assert [(d.code, d.loc.line) for d in result.diagnostics if d.code == "no-operators"] == [("no-operators", 8)]


def test_source_python_cannot_read_is_a_parse_failure_at_its_line():
    """A NUL byte, nesting past the parser's limits: a ParseFailure (exit 2
    for `gen`, one file's error in a scan), never a crash."""
    from astgen.frontend.parse import ParseFailure, parse_source

    cases = {"x = 1\x00\n": 0, "x = 1\ny = " + "(" * 300 + "1" + ")" * 300 + "\n": 2,
             "x = " + "-" * 100_000 + "1\n": 0}
    for text, line in cases.items():
        try:
            parse_source(text, "pkg.models.bad", Path("bad.py"))
        except ParseFailure as exc:
            assert (exc.path, exc.line) == ("bad.py", line) and exc.message.startswith("syntax error: ")
        else:
            raise AssertionError(f"parsed: {text[:20]!r}")


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(FIXTURE_FILES)), st.data())
def test_mangled_source_is_indexed_at_its_lines_or_reported_at_one(name, data):
    """A fixture with lines dropped: either a syntax error at a line of the
    text, or an index whose every class and method sits at the line that
    defines it."""
    from astgen.frontend.parse import ParseFailure, parse_source

    lines = FIXTURE_FILES[name].splitlines(keepends=True)
    dropped = data.draw(st.sets(st.integers(0, len(lines) - 1), max_size=4))
    text = "".join(line for i, line in enumerate(lines) if i not in dropped)
    kept = text.splitlines()
    try:
        pm = parse_source(text, "pkg.models.mangled", Path("mangled.py"))
    except ParseFailure as exc:
        assert exc.path == "mangled.py" and 1 <= exc.line <= len(kept) + 1
        assert exc.message.startswith("syntax error: ")
        return
    for cls in pm.classes.values():
        assert kept[pm.class_line(cls) - 1].lstrip().startswith(f"class {cls.name}")
        for method, fn in cls.methods.items():
            assert kept[pm.loc(fn).line - 1].lstrip().startswith((f"def {method}(", f"async def {method}("))


def test_layer_class_picked_by_a_config_list_and_reassigned_module():
    arch = tree_of("layer_types")
    rows = outline(arch)
    assert ("model.layers", "ModuleList", "list", None, ("mc.num_hidden_layers", "layer_id")) in rows
    assert ("model.layers", "WideMixerLayer", "module", "mc.layer_types[layer_id] == 'mixer'", None) in rows
    assert ("model.layers", "MlpOnlyLayer", "module", "mc.layer_types[layer_id] != 'mixer'", None) in rows
    # WideMixerLayer re-assigns the mixer its base built: one mixer, the subclass's
    mixers = [r for r in rows if r[0] == "model.layers.mixer"]
    assert mixers == [("model.layers.mixer", "ReplicatedLinear", "layer", None, None)]
    assert args_of(arch, "model.layers.mixer") == {
        "input_size": "mc.hidden_size",
        "output_size": "(2 if mc.model_type == 'typed_wide' else 1) * mc.hidden_size"}


def test_layer_types_counts_evaluate_exactly():
    module = load_module(fixture_result("layer_types").source, "layer_types")
    config = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=5, vocab_size=64,
                  model_type="typed_wide", layer_types=["mixer", "mlp", "mlp", "mixer", "mlp"])
    arch = build(module, "TypedForCausalLM", config, tp=1)
    layers = {op.metadata.name: op.metadata.num_layers for op in arch.operators}
    assert layers["mixer"] == 2 and layers["gate_up_proj"] == 2 and layers["mlp_gate_up_proj"] == 3
    mlp = 32 * 2 * 64 + 64 * 32
    assert matmul_params(arch) == 2 * (32 * 64 + mlp) + 3 * mlp + 32 * 64
