"""sglang's config classes, traced statically.

sglang loads many checkpoints through its own config classes
(sglang/srt/configs) and model code reads what they compute. These tests
build a small sglang-style tree (written here, in sglang's style: a config
class with a per-layer property, an __init__ that derives a size, an
attribute_map alias, a config helper in configs/model_config.py, the
registry in utils/hf_transformers/common.py) and check what the emitted
module computes on raw config.json dicts against the Python semantics of
that same code, worked out by hand in each test.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astgen.frontend import registry
from astgen.frontend.registry import ConfigClass, read_registry
from astgen.frontend.source import SourceTree
from tests.helpers import build, generate, load_module

CONFIG_CLASS = '''\
from transformers import PretrainedConfig


class HybridConfig(PretrainedConfig):
    model_type = "qwen3_next"
    attribute_map = {"num_experts": "n_routed_experts"}

    def __init__(
        self,
        vocab_size=1024,
        hidden_size=256,
        num_hidden_layers=8,
        num_attention_heads=8,
        head_dim=None,
        full_attention_interval=4,
        n_routed_experts=4,
        linear_groups=2,
        **kwargs,
    ):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.head_dim = head_dim if head_dim is not None else hidden_size // num_attention_heads
        self.full_attention_interval = full_attention_interval
        self.n_routed_experts = n_routed_experts
        self.linear_groups = linear_groups
        self.opaque_width = compute_width_somehow(hidden_size)
        super().__init__(**kwargs)

    @property
    def layers_block_type(self):
        layer_type_list = []
        for l in range(self.num_hidden_layers):
            if (l + 1) % self.full_attention_interval == 0:
                layer_type_list.append("attention")
            else:
                layer_type_list.append("linear_attention")
        return layer_type_list
'''

MODEL_CONFIG = '''\
def _hf_arch(config):
    archs = (
        config.get("architectures")
        if isinstance(config, dict)
        else getattr(config, "architectures", None)
    )
    return archs[0] if archs else None


def is_gated_hybrid(config) -> bool:
    return (
        _hf_arch(config) in ("Qwen3NextForCausalLM", "SomeOtherForCausalLM")
        and getattr(config, "gate_dim", None) is not None
    )
'''

REGISTRY = '''\
from typing import Dict, Type

from sglang.srt.configs import HybridConfig
from transformers import PretrainedConfig

_CONFIG_REGISTRY: Dict[str, Type[PretrainedConfig]] = {
    cls.model_type: cls
    for cls in [
        HybridConfig,
    ]
}
'''

MODEL = '''\
from torch import nn

from sglang.srt.configs.model_config import is_gated_hybrid
from sglang.srt.layers.linear import ColumnParallelLinear, QKVParallelLinear, ReplicatedLinear
from sglang.srt.layers.vocab_parallel_embedding import ParallelLMHead
from sglang.srt.utils import add_prefix, make_layers


class HybridDecoderLayer(nn.Module):
    def __init__(self, config, layer_id: int, prefix: str = "") -> None:
        super().__init__()
        if config.layers_block_type[layer_id] == "attention":
            self.qkv_proj = QKVParallelLinear(
                config.hidden_size,
                config.head_dim,
                config.num_attention_heads,
                config.num_attention_heads,
                bias=False,
            )
        else:
            self.in_proj = ColumnParallelLinear(
                config.hidden_size, 2 * config.hidden_size * config.linear_groups, bias=False
            )
        self.router = ReplicatedLinear(config.hidden_size, config.num_experts, bias=False)


class Qwen3NextModel(nn.Module):
    def __init__(self, config, prefix: str = "") -> None:
        super().__init__()
        self.layers = make_layers(
            config.num_hidden_layers,
            lambda idx, prefix: HybridDecoderLayer(config, idx, prefix=prefix),
            prefix="layers",
        )
        if is_gated_hybrid(config):
            self.gate = ReplicatedLinear(config.hidden_size, config.gate_dim, bias=False)


class Qwen3NextForCausalLM(nn.Module):
    def __init__(self, config, quant_config=None, prefix: str = "") -> None:
        super().__init__()
        self.model = Qwen3NextModel(config, prefix=add_prefix("model", prefix))
        self.lm_head = ParallelLMHead(config.vocab_size, config.hidden_size)


EntryClass = Qwen3NextForCausalLM
'''

ENTRY = "Qwen3NextForCausalLM"
OPAQUE = "    def __init__(self, config, quant_config=None, prefix: str = \"\") -> None:\n"


def _tree(root: Path, model: str = MODEL) -> SourceTree:
    files = {
        "sglang/__init__.py": "",
        "sglang/srt/__init__.py": "",
        "sglang/srt/configs/__init__.py": "from sglang.srt.configs.hybrid import HybridConfig\n",
        "sglang/srt/configs/hybrid.py": CONFIG_CLASS,
        "sglang/srt/configs/model_config.py": MODEL_CONFIG,
        "sglang/srt/utils/__init__.py": "",
        "sglang/srt/utils/hf_transformers/__init__.py": "",
        "sglang/srt/utils/hf_transformers/common.py": REGISTRY,
        "sglang/srt/models/__init__.py": "",
        "sglang/srt/models/qwen3_next.py": model,
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return SourceTree(root, "0.5.23")


@pytest.fixture(scope="module")
def hybrid(tmp_path_factory):
    tree = _tree(tmp_path_factory.mktemp("sglang"))
    result = generate(tree, tree.models_dir / "qwen3_next.py")
    assert result.source, [d.render() for d in result.diagnostics]
    return result, load_module(result.source, "hybrid_model_arch")


def _ops(module, config: dict, tp: int = 1) -> dict:
    arch = build(module, ENTRY, {"architectures": [ENTRY], **config}, tp=tp)
    return {op.metadata.name: op.metadata for op in arch.operators}


def test_registry_is_read_with_astroid(tmp_path):
    registry = read_registry(_tree(tmp_path))
    assert registry.classes == {"qwen3_next": ConfigClass("sglang.srt.configs.hybrid", "HybridConfig")}
    assert registry.source == "sglang/srt/utils/hf_transformers/common.py"
    assert registry.skipped == ()


def test_the_registry_is_kept_on_disk_by_the_content_it_was_read_from(tmp_path):
    """A second process reads the kept registry; an edit of a config class
    (what astroid read) is a new key, read again."""
    tree = _tree(tmp_path / "tree")
    kept = tmp_path / "registry"
    first = registry._from_disk(tree, kept)
    assert [p.suffix for p in kept.iterdir()] == [".json"]
    assert registry._from_disk(tree, kept) == first
    hybrid_py = tree.root / "sglang/srt/configs/hybrid.py"
    hybrid_py.write_text(hybrid_py.read_text().replace('model_type = "qwen3_next"', 'model_type = "qwen3_next_v2"'))
    again = registry._from_disk(tree, kept)
    assert len(list(kept.iterdir())) == 2
    assert again.classes == {"qwen3_next_v2": ConfigClass("sglang.srt.configs.hybrid", "HybridConfig")}


def test_module_constants_are_kept_with_the_files_they_were_inferred_from(tmp_path):
    """DEFAULT_VOCAB_PADDING_SIZE-like constants of untraced modules: inferred
    once, then read back; an edit of the module, or of a module its value is
    imported from, is seen."""
    tree = _tree(tmp_path / "tree")
    layers = tree.root / "sglang/srt/layers"
    layers.mkdir(parents=True)
    (layers / "__init__.py").write_text("")
    (layers / "sizes.py").write_text("BASE = 64\n")
    (layers / "vocab.py").write_text("from sglang.srt.layers.sizes import BASE\nPADDING = BASE\n")
    def fresh(name):
        registry._CONSTANTS.clear()
        return registry.module_constant(tree, "sglang.srt.layers.vocab", name, tmp_path / "kept")

    assert fresh("PADDING") == 64
    assert len(list((tmp_path / "kept").glob("constant-*.json"))) == 1
    assert fresh("PADDING") == 64
    (layers / "sizes.py").write_text("BASE = 128\n")  # the imported value changes
    registry._forget_sglang()
    assert fresh("PADDING") == 128
    assert fresh("MISSING") is registry.NOT_CONSTANT


CONSTANTS_SOURCE = """
import torch
from sglang.srt.layers.sizes import BASE

WINDOW = 128
RATIO: float = -0.5
NAME = "swa"
MEAN = (0.485, 0.456, 0.406)
IMPL = {"sdpa": torch.nn.Module}
TWICE = 1
IMPORTED = BASE
SHIFTED = 1 << 20
if torch.cuda.is_available():
    TWICE = 2


class KERNEL:
    pass


def bump():
    global COUNTER
    COUNTER = 1


COUNTER = 0
"""


def test_a_constant_bound_once_to_a_literal_is_read_without_astroid(tmp_path):
    """registry.literal_binding: a name the module binds once, at module
    scope, to a literal is its value; to a class, a tuple or a dict it is no
    constant; anything else (an import, an expression, two bindings, a
    function's `global`, a name only a star import could bind) is left to
    astroid, which agrees wherever the fast reading decides."""
    path = tmp_path / "consts.py"
    path.write_text(CONSTANTS_SOURCE)
    read = {name: registry.literal_binding(path, name) for name in
            ("WINDOW", "RATIO", "NAME", "MEAN", "IMPL", "KERNEL", "TWICE", "IMPORTED", "SHIFTED", "COUNTER",
             "MISSING")}
    assert {k: v for k, v in read.items() if v is not registry.UNDECIDED and v is not registry.NOT_CONSTANT} \
        == {"WINDOW": 128, "RATIO": -0.5, "NAME": "swa"}
    assert [k for k, v in read.items() if v is registry.NOT_CONSTANT] == ["MEAN", "IMPL", "KERNEL"]
    assert [k for k, v in read.items() if v is registry.UNDECIDED] == ["TWICE", "IMPORTED", "SHIFTED", "COUNTER",
                                                                      "MISSING"]
    starred = tmp_path / "starred.py"
    starred.write_text("from sglang.srt.layers.other import *  # noqa\n" + CONSTANTS_SOURCE)
    assert registry.literal_binding(starred, "WINDOW") is registry.UNDECIDED  # the star might bind it too
    tree = _tree(tmp_path / "tree")
    layers = tree.root / "sglang/srt/layers"
    layers.mkdir(parents=True)
    (layers / "__init__.py").write_text("")
    (layers / "consts.py").write_text(CONSTANTS_SOURCE)
    for name in ("WINDOW", "RATIO", "NAME", "MEAN", "IMPL", "KERNEL"):
        by_astroid, _ = registry.astroid_constant(tree, layers / "consts.py", "sglang.srt.layers.consts", name)
        assert type(by_astroid) is type(read[name]) and (by_astroid == read[name] or by_astroid is read[name])


def test_a_tree_without_a_registry_has_no_config_classes(tmp_path):
    (tmp_path / "sglang" / "srt" / "models").mkdir(parents=True)
    assert read_registry(SourceTree(tmp_path, "0.5.23")).classes == {}


def test_the_per_layer_property_becomes_a_layer_index_predicate(hybrid):
    result, _ = hybrid
    # a key config.json may leave out reads as the __init__ default, as sglang does
    assert "(layer_id + 1) % getattr(mc, 'full_attention_interval', 4) == 0" in result.source
    assert "layers_block_type" not in result.source  # the raw config.json has no such key


@settings(max_examples=40, deadline=None)
@given(layers=st.integers(1, 24), interval=st.integers(1, 6), heads=st.sampled_from([4, 8, 16]),
       head_dim=st.one_of(st.none(), st.sampled_from([32, 128])), gate=st.one_of(st.none(), st.integers(1, 64)),
       groups=st.one_of(st.none(), st.integers(1, 4)))
def test_emitted_module_computes_what_the_config_class_computes(hybrid, layers, interval, heads, head_dim,
                                                                 gate, groups):
    _, module = hybrid
    config = {"vocab_size": 1024, "hidden_size": 512, "num_hidden_layers": layers, "num_attention_heads": heads,
              "full_attention_interval": interval, "n_routed_experts": 6}
    if head_dim is not None:
        config["head_dim"] = head_dim
    if gate is not None:
        config["gate_dim"] = gate
    if groups is not None:
        config["linear_groups"] = groups
    ops = _ops(module, config)
    # HybridConfig.layers_block_type: "attention" where (l + 1) % interval == 0
    attention = sum(1 for l in range(layers) if (l + 1) % interval == 0)
    width = head_dim if head_dim is not None else 512 // heads  # HybridConfig.__init__'s head_dim
    if attention:
        assert ops["qkv_proj"].num_layers == attention
        assert ops["qkv_proj"].io_config.output_shape.n == 3 * heads * width
    else:
        assert "qkv_proj" not in ops or ops["qkv_proj"].num_layers == 0
    if layers - attention:
        assert ops["in_proj"].num_layers == layers - attention
        # linear_groups: the __init__ default (2) when config.json leaves it out
        assert ops["in_proj"].io_config.output_shape.n == 2 * 512 * (groups if groups is not None else 2)
    assert ops["router"].io_config.output_shape.n == 6  # num_experts: attribute_map -> n_routed_experts
    # is_gated_hybrid (configs/model_config.py): this architecture is listed, so gate_dim decides
    assert ("gate" in ops and ops["gate"].num_layers == 1) == (gate is not None)


def test_an_architecture_the_helper_does_not_list_never_builds_the_gate(tmp_path):
    tree = _tree(tmp_path, MODEL.replace("Qwen3NextForCausalLM", "Qwen3NextLiteForCausalLM"))
    result = generate(tree, tree.models_dir / "qwen3_next.py")
    assert result.source
    assert "gate_dim" not in result.source  # _hf_arch(config) is not in is_gated_hybrid's list


def test_what_the_config_class_computes_opaquely_is_reported_where_it_is_computed(tmp_path):
    model = MODEL.replace("config.num_experts, bias=False)", "config.opaque_width, bias=False)")
    tree = _tree(tmp_path, model)
    result = generate(tree, tree.models_dir / "qwen3_next.py")
    notes = [d for d in result.diagnostics if d.code == "config-attr"]
    assert [d.render() for d in notes] == [
        "sglang/srt/configs/hybrid.py:4: note[config-attr]: HybridConfig.opaque_width is computed from "
        "call of compute_width_somehow: read as the raw config key mc.opaque_width"]
    assert "mc.opaque_width" in result.source


def _gated_by(test: str, import_line: str, gate: str = "        if is_gated_hybrid(config):\n") -> str:
    """MODEL with ``gate`` (its gate's test, or the gate itself) replaced by
    ``test``, which ``import_line`` imports instead of is_gated_hybrid."""
    return MODEL.replace(gate, test).replace("from sglang.srt.configs.model_config import is_gated_hybrid\n",
                                             import_line)


def test_a_module_built_on_an_unreadable_helper_of_the_config_makes_the_entry_partial(tmp_path):
    # a helper from outside the traced code, asked about the checkpoint, decides whether a
    # weight-bearing module exists: reported at the `if`, never silently taken as off
    model = _gated_by("        if uses_side_gate(config):\n",
                      "from sglang.srt.layers.unknown_helpers import uses_side_gate\n")
    tree = _tree(tmp_path, model)
    result = generate(tree, tree.models_dir / "qwen3_next.py")
    found = [d.render() for d in result.diagnostics if d.code == "assumed" and d.severity == "incomplete"]
    assert found == ["sglang/srt/models/qwen3_next.py:35: incomplete[assumed]: whether gate is built depends on "
                     "call of uses_side_gate (given the config), which astgen cannot evaluate (add the helper to "
                     "rules/parallel.toml, or teach the tracer the construct)"]
    assert result.classes[0].status == "PARTIALLY"


def test_a_server_switch_still_takes_its_default_with_a_note(tmp_path):
    model = _gated_by("        if envs.SGLANG_SIDE_GATE.get():\n", "from sglang.srt.environ import envs\n")
    tree = _tree(tmp_path, model)
    result = generate(tree, tree.models_dir / "qwen3_next.py")
    assert not [d for d in result.diagnostics if d.severity == "incomplete"]
    assert [d.code for d in result.diagnostics if d.code == "assumed"] == ["assumed"]
    assert result.classes[0].status == "FULLY"


def test_a_condition_taken_at_its_default_is_named_as_the_code_spells_it(tmp_path):
    """The module header names what it took at its default as code (a call
    is ``f()``), from the note's arguments, never by re-reading its text:
    a helper given the config read "uses_fast_path with the config()"."""
    model = _gated_by("        self.scale = 1\n        if uses_fast_path(config):\n            self.scale = 2\n",
                      "from sglang.srt.layers.unknown_helpers import uses_fast_path\n",
                      gate="        if is_gated_hybrid(config):\n            self.gate = ReplicatedLinear("
                           "config.hidden_size, config.gate_dim, bias=False)\n")
    tree = _tree(tmp_path, model)
    result = generate(tree, tree.models_dir / "qwen3_next.py")
    notes = [d for d in result.diagnostics if d.code == "assumed"]
    assert [(d.severity, d.message, d.arg("constructs")) for d in notes] == [
        ("note", "condition on call of uses_fast_path with the config taken as its default (off)",
         ("uses_fast_path()",))]
    assert "Taken at sglang's default (off) where the code tests them: uses_fast_path()." in \
        " ".join(result.source.split('"""')[1].split())
