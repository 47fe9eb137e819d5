"""The tracer on its own: small sglang-style files written here, the IR
checked node by node."""

from __future__ import annotations

import shutil

from astgen import ir
from astgen.source import tree_of_file
from tests.helpers import FIXTURES, generate

# sglang 0.5.23 llama_eagle.py:43-60: `class LlamaDecoderLayer(LlamaDecoderLayer)`, a
# subclass that takes the name of the class it imports and extends
SHADOWING = '''\
from torch import nn

from sglang.srt.models.dense import DenseDecoderLayer, DenseForCausalLM
from sglang.srt.layers.linear import ReplicatedLinear


class DenseDecoderLayer(DenseDecoderLayer):
    def __init__(self, config, layer_id=0, quant_config=None, prefix=""):
        super().__init__(config, layer_id, quant_config=quant_config, prefix=prefix)
        if layer_id == 0:
            del self.input_layernorm


class DraftModel(nn.Module):
    def __init__(self, config, quant_config=None, prefix=""):
        super().__init__()
        self.layers = nn.ModuleList([DenseDecoderLayer(config, i) for i in range(config.num_hidden_layers)])
        self.fc = ReplicatedLinear(config.hidden_size * 2, config.hidden_size, bias=False)


class DraftForCausalLM(nn.Module):
    def __init__(self, config, quant_config=None, prefix=""):
        super().__init__()
        self.model = DraftModel(config, quant_config)


EntryClass = DraftForCausalLM
'''


def _classes(node: ir.Node, depth: int = 0) -> list[tuple[int, str, str]]:
    out = [(depth, node.attr, node.cls)]
    for child in node.children:
        out += _classes(child, depth + 1)
    return out


def test_a_class_named_after_its_imported_base_derives_from_the_import(tmp_path):
    """The base of ``class X(X)`` is the X bound when the class statement
    runs (the import), not the class itself: its layers are the base's. The
    runtime oracle found astgen's Eagle draft layers empty (0 weights in
    each of 32 layers) because the base resolved to the class itself."""
    for name in ("dense.py",):
        shutil.copy(FIXTURES / name, tmp_path / name)
    path = tmp_path / "draft.py"
    path.write_text(SHADOWING)
    result = generate(tree_of_file(path), path)
    layer = next(n for n in result.irs[0].root.walk() if n.cls == "DenseDecoderLayer")
    assert [(c.attr, c.cls) for c in layer.children] == [
        ("self_attn", "DenseAttention"), ("mlp", "DenseMLP"), ("input_layernorm", "RMSNorm")]
    attention = next(c for c in layer.children if c.attr == "self_attn")
    assert [(c.attr, c.cls) for c in attention.children] == [
        ("qkv_proj", "QKVParallelLinear"), ("o_proj", "RowParallelLinear"), ("attn", "RadixAttention")]
