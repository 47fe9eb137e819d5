"""The tracer on its own: small sglang-style files written here, the IR
checked node by node."""

from __future__ import annotations

import shutil

from astgen import expr as E
from astgen import ir
from astgen.frontend.source import tree_of_file
from tests.helpers import FIXTURES, RULES, generate, generated

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
    result = generated(tmp_path, "draft.py", SHADOWING)
    layer = next(n for n in result.irs[0].root.walk() if n.cls == "DenseDecoderLayer")
    assert [(c.attr, c.cls) for c in layer.children] == [
        ("self_attn", "DenseAttention"), ("mlp", "DenseMLP"), ("input_layernorm", "RMSNorm")]
    attention = next(c for c in layer.children if c.attr == "self_attn")
    assert [(c.attr, c.cls) for c in attention.children] == [
        ("qkv_proj", "QKVParallelLinear"), ("o_proj", "RowParallelLinear"), ("attn", "RadixAttention")]


# sglang 0.5.23 clip.py:549-556: CLIPModel builds CLIPTextModel in a local and keeps only
# its inner transformer (`self.text_model = text_model.text_model`); a module that stays
# held elsewhere (the tied head below) is an alias, not a second copy
UNWRAPPED = '''\
from torch import nn

from sglang.srt.layers.linear import ColumnParallelLinear, RowParallelLinear


class Encoder(nn.Module):
    def __init__(self, config, prefix=""):
        super().__init__()
        self.layers = nn.ModuleList([RowParallelLinear(config.hidden_size, config.hidden_size)
                                     for _ in range(config.num_hidden_layers)])


class EncoderWrapper(nn.Module):
    def __init__(self, config, prefix=""):
        super().__init__()
        self.encoder = Encoder(config)


class Head(nn.Module):
    def __init__(self, config, shared):
        super().__init__()
        self.shared = shared


class TwoTowerModel(nn.Module):
    def __init__(self, config, quant_config=None, prefix=""):
        super().__init__()
        wrapper = EncoderWrapper(config, prefix="text_model")
        self.text_model = wrapper.encoder
        self.proj = ColumnParallelLinear(config.hidden_size, 8)
        self.head = Head(config, self.proj)


EntryClass = TwoTowerModel
'''


def test_a_module_kept_from_a_local_wrapper_moves_into_the_model(tmp_path):
    """The runtime oracle found CLIPModel's text encoder missing (655,360
    weights against sglang's 38.4M at the default config): astgen aliased
    ``text_model`` to a node under the discarded wrapper, so no layer was
    counted. A module still held by the model (``Head.shared``) stays an
    alias."""
    path = tmp_path / "two_tower.py"
    path.write_text(UNWRAPPED)
    root = generate(tree_of_file(path), path).irs[0].root
    assert _classes(root) == [
        (0, "", "TwoTowerModel"),
        (1, "text_model", "Encoder"), (2, "layers", "ModuleList"), (3, "", "RowParallelLinear"),
        (1, "proj", "ColumnParallelLinear"),
        (1, "head", "Head"), (2, "shared", "ColumnParallelLinear")]
    shared = next(n for n in root.walk() if n.attr == "shared")
    assert shared.kind == ir.ALIAS and shared.target.attr == "proj"


# sglang 0.5.23 gpt2.py:196 reads config.num_hidden_layers; transformers'
# GPT2Config answers it from the checkpoint's n_layer (attribute_map)
ALIASED = '''\
from torch import nn

from sglang.srt.layers.linear import RowParallelLinear


class GPT2LMHeadModel(nn.Module):
    def __init__(self, config, quant_config=None, prefix=""):
        super().__init__()
        width = getattr(config, "hidden_size", 768)
        self.h = nn.ModuleList([RowParallelLinear(config.hidden_size, width)
                                for _ in range(config.num_hidden_layers)])
        self.rotary = hasattr(config, "rotary_dim")
        self.scaled = hasattr(config, "num_attention_heads")


EntryClass = GPT2LMHeadModel
'''


def test_config_attributes_read_through_transformers_aliases(tmp_path):
    """The runtime oracle could not check GPT-2, GPT-J and GPTBigCode: astgen
    required mc.num_hidden_layers, which their config.json never holds
    (rules/config_aliases.toml, from transformers' attribute_map)."""
    from astgen import expr as E

    path = tmp_path / "gpt2.py"
    path.write_text(ALIASED)
    root = generate(tree_of_file(path), path).irs[0].root
    layers = next(n for n in root.walk() if n.attr == "h")
    # a checkpoint may hold either name (Qwen3-MoE's hold num_experts, an alias of num_local_experts)
    assert E.to_source(layers.repeat) == "mc.num_hidden_layers if hasattr(mc, 'num_hidden_layers') else mc.n_layer"
    [linear] = layers.children
    assert E.to_source(linear.args["input_size"]) == "mc.hidden_size if hasattr(mc, 'hidden_size') else mc.n_embd"
    assert {k: E.to_source(v) for k, v in root.fields.items() if k in ("rotary", "scaled")} == {
        "rotary": "hasattr(mc, 'rotary_dim')", "scaled": "hasattr(mc, 'num_attention_heads') or hasattr(mc, 'n_head')"}


# sglang 0.5.23 qwen2_classification.py:46 builds its score head with
# config.num_labels, which no checkpoint's config.json holds: transformers
# answers it as len(id2label)
CLASSIFIER = '''\
from torch import nn

from sglang.srt.layers.linear import ReplicatedLinear


class Qwen2ForSequenceClassification(nn.Module):
    def __init__(self, config, quant_config=None, prefix=""):
        super().__init__()
        self.score = ReplicatedLinear(config.hidden_size, config.num_labels)


EntryClass = Qwen2ForSequenceClassification
'''


def test_num_labels_is_read_as_transformers_answers_it(tmp_path):
    """The runtime oracle could not compare 29 classification heads: astgen
    required mc.num_labels (rules/parallel.toml [config_properties])."""
    from astgen import expr as E

    path = tmp_path / "qwen2_classification.py"
    path.write_text(CLASSIFIER)
    [score] = [n for n in generate(tree_of_file(path), path).irs[0].root.walk() if n.attr == "score"]
    out = score.args["output_size"]
    assert E.to_source(out) == \
        "mc.num_labels if hasattr(mc, 'num_labels') else len(mc.id2label) if hasattr(mc, 'id2label') else 2"
    assert E.evaluate(out, {"mc": {"id2label": {"0": "LABEL_0"}}}) == 1
    assert E.evaluate(out, {"mc": {}}) == 2 and E.evaluate(out, {"mc": {"num_labels": 5}}) == 5


# a forward test on a field __init__ left, and one on runtime state no rule describes
FORWARD_TESTS = '''\
from torch import nn

from sglang.srt.layers.linear import RowParallelLinear
from sglang.srt.utils import get_bool_env_var


class GatedModel(nn.Module):
    def __init__(self, config, quant_config=None, prefix=""):
        super().__init__()
        self.use_gate = config.num_hidden_layers > 2
        self.proj = RowParallelLinear(config.hidden_size, config.hidden_size)

    def forward(self, x):
        if self.use_gate:
            x = self.proj(x)
        if get_bool_env_var("SGLANG_FAST_PATH"):
            x = self.proj(x)
        return x


EntryClass = GatedModel
'''


def test_forward_conditions_are_read_by_a_reader_built_from_the_traced_entry(tmp_path):
    """The flow stage reads `if` tests of forward code with the value model
    of the traced entry (trace/tracer.py ConditionReader): `self` holds the
    fields __init__ left; runtime state (an environment switch) takes
    sglang's default, off; reading adds nothing to the tracer's diagnostics
    or to the IR."""
    import ast

    from astgen import expr as E
    from astgen.frontend.loader import Loader
    from astgen.rules import load_rules
    from astgen.trace import Tracer

    path = tmp_path / "gated.py"
    path.write_text(FORWARD_TESTS)
    loader = Loader(tree_of_file(path))
    pm = loader.load(loader.tree.module_name(path))
    tracer = Tracer(loader, load_rules())
    arch = tracer.trace_entry(pm, "GatedModel")
    before = (list(tracer.diagnostics), [(n.attr, n.cls) for n in arch.root.walk()])
    reader = tracer.condition_reader()
    forward = pm.classes["GatedModel"].methods["forward"]
    tests = [stmt.test for stmt in forward.body if isinstance(stmt, ast.If)]
    assert [ast.unparse(t) for t in tests] == ["self.use_gate", "get_bool_env_var('SGLANG_FAST_PATH')"]
    info = pm.classes["GatedModel"]
    assert reader(tests[0], pm, arch.root, info) == E.parse("mc.num_hidden_layers > 2")
    assert reader(tests[1], pm, arch.root, info) == E.FALSE  # sglang's default path
    assert (list(tracer.diagnostics), [(n.attr, n.cls) for n in arch.root.walk()]) == before


def test_every_message_renders_from_named_arguments():
    """astgen/messages.py: a diagnostic's text, hint and subject are templates
    over its arguments; a tuple prints joined, `verb` agrees with its count."""
    from astgen import messages as M
    from astgen.frontend.parse import Location
    from astgen.ir import Diagnostic

    kinds = [v for v in vars(M).values() if isinstance(v, M.Message)]
    assert len(kinds) >= 20 and {k.severity for k in kinds} == {"error", "incomplete", "note"}
    d = Diagnostic.of(M.ASSUMED_BUILT, Location("m.py", 3), built=("gate", "up"), calls=("call of f",),
                      first="call of f")
    assert d.render() == ("m.py:3: incomplete[assumed]: whether gate, up are built depends on call of f (given "
                          "the config), which astgen cannot evaluate (add the helper to rules/parallel.toml, or "
                          "teach the tracer the construct)")
    assert d.subject == "call of f" and d.arg("built") == ("gate", "up")
    one = Diagnostic.of(M.UNRESOLVED_OPERATOR, Location("m.py", 4), op="o_proj", fields=("k",), why="x")
    assert one.message == "operator o_proj: k depends on an unresolved value (x)"
    assert Diagnostic.of(M.SYMBOLIC_LOOP, Location("m.py", 5)).subject == "loop"  # the code when none is named


def test_a_builtin_the_rules_name_must_exist(tmp_path, capsys):
    """rules/ name tracer builtins (``builtin:make_layers``, a source family's
    [builtins]); one the tracer does not implement is refused before anything
    is read, with the rules table and the closest name (exit 2)."""
    import shutil

    from astgen.cli import main
    from astgen.trace import check_rules
    from astgen.trace.builtins import _BUILTIN_FUNCS, builtin_names
    from tests.helpers import REPO

    assert set(_BUILTIN_FUNCS.values()) <= builtin_names()  # every Python name the tracer maps
    check_rules(RULES)  # the bundled rules name only what exists
    rules = tmp_path / "rules"
    shutil.copytree(REPO / "rules", rules)
    text = (rules / "parallel.toml").read_text()
    (rules / "parallel.toml").write_text(text.replace('"builtin:make_layers"', '"builtin:make_layer"', 1))
    capsys.readouterr()
    assert main(["scan", "--rules", str(rules), "-q", "--no-cache"]) == 2
    err = capsys.readouterr().err
    assert "rules/parallel.toml [functions] make_layers: no tracer builtin 'make_layer' (did you mean " \
           "'make_layers'?)" in err


def test_an_if_merges_its_branches_end_states_under_its_test():
    """astgen/trace/frame.py: each branch from the state before the ``if``;
    their ends merged under the test, one phi per name that differs; a name
    one branch alone sets keeps that branch's value."""
    from astgen.frontend.parse import Location
    from astgen.ir import MODULE, Node
    from astgen.trace.frame import Frame, FrameState
    from astgen.values import Instance

    me = Instance(Node(MODULE, "M", Location("m.py", 1)), None)
    frame = Frame(None, {"a": E.Const(1), "b": E.Const(2)}, me, None)
    me.attrs["x"] = E.Const(0)
    test = E.attr_path("mc", "t")
    before = frame.state()
    frame.locals["a"], me.attrs["x"] = E.Const(10), E.Const(5)
    then_end = frame.state()
    before.restore(frame)
    assert frame.locals == {"a": E.Const(1), "b": E.Const(2)} and me.attrs == {"x": E.Const(0)}
    frame.locals["c"] = E.Const(3)
    then_end.merge(test, frame.state()).restore(frame)
    a, x = frame.locals["a"], me.attrs["x"]
    assert [E.evaluate(a, {"mc": {"t": t}}) for t in (True, False)] == [10, 1]
    assert [E.evaluate(x, {"mc": {"t": t}}) for t in (True, False)] == [5, 0]
    assert frame.locals["b"] == E.Const(2) and frame.locals["c"] == E.Const(3)
    assert isinstance(before, FrameState)


# nanbeige.py:165-179: one RadixAttention per loop of a looped layer stack,
# appended in a loop over a count the config holds
LOOPED = '''\
from torch import nn

from sglang.srt.layers.linear import ColumnParallelLinear, RowParallelLinear
from sglang.srt.layers.radix_attention import RadixAttention
from sglang.srt.layers.vocab_parallel_embedding import ParallelLMHead


class LoopedAttention(nn.Module):
    def __init__(self, config, prefix=""):
        super().__init__()
        self.o_proj = RowParallelLinear(config.hidden_size, config.hidden_size)
        self.attn = nn.ModuleList()
        for loop_idx in range(config.num_loops):
            self.attn.append(RadixAttention(config.num_attention_heads, 128, 1.0, num_kv_heads=8, layer_id=loop_idx))


class VisionProjector(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.patch = nn.Conv2d(3, config.hidden_size, 14)
        self.layers = nn.ModuleList()
        for _ in range(config.projector_depth):
            self.layers.append(ColumnParallelLinear(config.hidden_size, config.hidden_size))


class LoopedForCausalLM(nn.Module):
    def __init__(self, config, quant_config=None, prefix=""):
        super().__init__()
        self.vision = VisionProjector(config)
        self.layers = nn.ModuleList([LoopedAttention(config) for _ in range(config.num_hidden_layers)])
        self.lm_head = ParallelLMHead(config.vocab_size, config.hidden_size)


EntryClass = LoopedForCausalLM
'''


def test_modules_built_in_a_loop_of_unknown_length_leave_the_text_model_incomplete(tmp_path):
    """How many RadixAttention a looped layer holds depends on the config
    (the loop is not unrolled): reported incomplete, never silently FULLY as
    it was (nanbeige, iquest_loopcoder, hrm_text, nemotron_h_mtp in 0.5.23).
    The same loop in a multimodal tower, which is not analyzed, is a note."""
    result = generated(tmp_path, "looped.py", LOOPED)
    loops = sorted((d.severity, d.loc.line, d.message) for d in result.diagnostics if d.code == "loop")
    assert loops == [
        ("incomplete", 13, "modules of self.attn built in a loop over a symbolic range: how many is not known"),
        ("note", 22, "loop over a symbolic range skipped")]
    assert result.classes[0].status == "PARTIALLY"


# mllama.py:681-703: the decoder layers built into a local list, one of two
# classes by a test of the layer index, then held as one ModuleList
CHOSEN_PER_INDEX = '''\
from torch import nn

from sglang.srt.layers.linear import ColumnParallelLinear, RowParallelLinear
from sglang.srt.layers.vocab_parallel_embedding import ParallelLMHead


class CrossLayer(nn.Module):
    def __init__(self, config, layer_id):
        super().__init__()
        self.cross_proj = ColumnParallelLinear(config.hidden_size, config.hidden_size)


class SelfLayer(nn.Module):
    def __init__(self, config, layer_id):
        super().__init__()
        self.self_proj = RowParallelLinear(config.hidden_size, config.hidden_size)


class ChosenForCausalLM(nn.Module):
    def __init__(self, config, quant_config=None, prefix=""):
        super().__init__()
        layers = []
        for layer_id in range(config.num_hidden_layers):
            if layer_id in config.cross_attention_layers:
                layers.append(CrossLayer(config, layer_id))
            else:
                layers.append(SelfLayer(config, layer_id))
        self.layers = nn.ModuleList(layers)
        self.lm_head = ParallelLMHead(config.vocab_size, config.hidden_size)


EntryClass = ChosenForCausalLM
'''


def test_modules_chosen_per_layer_index_into_a_list_are_the_stack(tmp_path):
    """Each index gets one of two classes by a test of the index: the stack
    holds both, each counted on the layers its test picks. The runtime
    oracle's view of mllama: the list stayed empty, the text model had no
    layer, was taken for a tower, and the entry was FULLY on 5 operators."""
    result = generated(tmp_path, "chosen.py", CHOSEN_PER_INDEX)
    assert result.classes[0].status == "FULLY"
    layers = {op.name: op.layers for op in result.shapes[0].operators if op.kind == "matmul"}
    env = {"mc": {"num_hidden_layers": 40, "cross_attention_layers": [3, 8, 13, 18, 23, 28, 33, 38]}}
    assert {name: E.evaluate(count, env) for name, count in layers.items()} == {
        "cross_proj": 8, "self_proj": 32, "lm_head": 1}


# minimax_m3.py:1702-1705 and configs/model_config.py:460-464: which layers hold
# the sparse-attention indexer is a comprehension over a list of the config; a
# fused norm behind a shape check of the config and a platform check
# (dsa_indexer.py:471-494)
SPARSE_LAYERS = '''\
from torch import nn

from sglang.srt.layers.linear import ReplicatedLinear


def sparse_layer_ids(sparse_cfg):
    sparse_freq = sparse_cfg["sparse_attention_freq"]
    dense = [i for i, f in enumerate(sparse_freq) if f == 0]
    sparse = [i for i, f in enumerate(sparse_freq) if f != 0]
    return dense, sparse


class SparseLayer(nn.Module):
    def __init__(self, config, layer_id):
        super().__init__()
        sparse_attention_config = getattr(config, "sparse_attention_config", None)
        if sparse_attention_config is not None:
            _, sparse_ids = sparse_layer_ids(sparse_attention_config)
            is_sparse = layer_id in sparse_ids
        else:
            is_sparse = False
        if is_sparse:
            self.index_proj = ReplicatedLinear(config.hidden_size, 128)
            self.num_index_heads = int(config.num_attention_heads)  # a number, no module
        if not config.index_fusion and shape_supported(hidden=config.hidden_size) and fused_runtime_ok():
            self.fused_norm = ReplicatedLinear(config.hidden_size, config.hidden_size)
        self.proj = ReplicatedLinear(config.hidden_size, config.hidden_size)


class SparseForCausalLM(nn.Module):
    def __init__(self, config, quant_config=None, prefix=""):
        super().__init__()
        self.layers = nn.ModuleList([SparseLayer(config, i) for i in range(config.num_hidden_layers)])


EntryClass = SparseForCausalLM
'''


def test_a_layer_built_by_what_a_comprehension_over_the_config_gives_is_not_silently_fully(tmp_path):
    """The 0.5.23 scan called MiniMax-M3-Sparse FULLY and its module tested
    ``layer_id in None`` (a TypeError wherever the checkpoint has a
    sparse_attention_config): the layers holding the indexer come from a
    comprehension over a config list. That form is read
    (``nonzero_indices(flags)``) and the indexer counted from the config;
    a form astgen cannot read leaves whether index_proj is built reported
    incomplete (not the number the branch also sets: a builtin's value,
    deepseek_v4_dspark.py:739), the membership of what is not known never ``in None``. A
    test a platform default decides (the fused norm: the platform check
    off) stays a note."""
    import types

    from astgen import messages as M
    from astgen.emit.pysource import show

    result = generated(tmp_path, "sparse.py", SPARSE_LAYERS)
    assert result.classes[0].status == "FULLY"
    layers = {op.name: op.layers for op in result.shapes[0].operators}
    assert "nonzero_indices(" in show(layers["index_proj"])

    def count(**config):
        return E.evaluate(layers["index_proj"], {"mc": types.SimpleNamespace(num_hidden_layers=4, **config)})

    assert count(sparse_attention_config={"sparse_attention_freq": [0, 1, 1, 0]}) == 2
    assert count() == 0
    assert "from ._astgen import Arch, nonzero_indices\n" in result.source

    result = generated(tmp_path, "sparse.py", SPARSE_LAYERS.replace("if f != 0]", "if f > 1]"))  # not read
    built = [(d.loc.line, d.message) for d in result.diagnostics if d.kind == M.ASSUMED_BUILT]
    assert built == [(22, "whether index_proj is built depends on nested comprehension (given the config), "
                          "which astgen cannot evaluate")]
    assert result.classes[0].status == "PARTIALLY"
    ops = [op for shapes in result.shapes for op in shapes.operators]
    assert ops and not any("in None" in show(e) for op in ops for e in (op.guard, op.layers, op.m, op.k, op.n))


# mixtral_quant.py:117-138: each rank builds the experts np.array_split gives it
SPLIT_EXPERTS = '''\
import numpy as np
from torch import nn

from sglang.srt.distributed import get_tensor_model_parallel_rank, get_tensor_model_parallel_world_size
from sglang.srt.layers.linear import ReplicatedLinear


class ExpertMLP(nn.Module):
    def __init__(self, hidden, inter):
        super().__init__()
        self.w1 = ReplicatedLinear(hidden, inter)


class SplitMoE(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.rank = get_tensor_model_parallel_rank()
        self.tp_size = get_tensor_model_parallel_world_size()
        self.num_total_experts = config.num_local_experts
        self.expert_indicies = np.array_split(range(self.num_total_experts), self.tp_size)[self.rank].tolist()
        self.experts = nn.ModuleList(
            [
                ExpertMLP(config.hidden_size, config.intermediate_size) if idx in self.expert_indicies else None
                for idx in range(self.num_total_experts)
            ]
        )


class SplitForCausalLM(nn.Module):
    def __init__(self, config, quant_config=None, prefix=""):
        super().__init__()
        self.moe = SplitMoE(config)


EntryClass = SplitForCausalLM
'''


def test_experts_a_rank_builds_by_what_a_library_call_makes_of_the_config_are_not_silently_fully(tmp_path):
    """0.5.8's QuantMixtral was FULLY with ``idx in None`` in its expert count
    (a TypeError in LLMSim): which experts a rank builds is
    ``np.array_split(range(config.num_local_experts), tp)[rank].tolist()``,
    made of the config by calls astgen cannot read. Whether ExpertMLP is
    built is reported incomplete; a method or an item of such a value is
    the config's too."""
    from astgen import messages as M

    result = generated(tmp_path, "split.py", SPLIT_EXPERTS)
    built = [(d.loc.line, d.message) for d in result.diagnostics if d.kind == M.ASSUMED_BUILT]
    assert built == [(21, "whether ExpertMLP is built depends on call of tolist (given the config), which astgen "
                          "cannot evaluate")]
    assert result.classes[0].status != "FULLY"


# dspark.py:385-405: the Markov head a function builds by a config string,
# compared lower-cased
HEAD_BY_TYPE = '''\
from torch import nn

from sglang.srt.layers.linear import ReplicatedLinear


def build_head(config):
    head_type = str(getattr(config, "head_type", "vanilla")).lower()
    if head_type == "vanilla":
        return ReplicatedLinear(config.hidden_size, config.vocab_size)
    if head_type == "gated":
        return ReplicatedLinear(2 * config.hidden_size, config.vocab_size)
    raise ValueError(f"unsupported head_type={head_type!r}")


class HeadForCausalLM(nn.Module):
    def __init__(self, config, quant_config=None, prefix=""):
        super().__init__()
        self.proj = ReplicatedLinear(config.hidden_size, config.hidden_size)
        self.head = build_head(config)


EntryClass = HeadForCausalLM
'''


def test_a_module_chosen_by_a_config_string_lower_cased_is_built_under_that_test(tmp_path):
    """The 0.5.23 DSpark drafts had no Markov head: `str(...).lower()` was an
    unknown read as None, so no `==` held and the factory raised. The test
    is now an expression of the config: each head under its own."""
    from astgen.emit.pysource import show

    result = generated(tmp_path, "head.py", HEAD_BY_TYPE)
    assert result.classes[0].status == "FULLY"
    kind = 'str.lower(str(getattr(mc, "head_type", "vanilla")))'
    heads = [(op.k, E.simplify_condition(op.guard)) for op in result.shapes[0].operators if op.name == "head"]
    assert [(show(k), show(guard)) for k, guard in heads] == [
        ("mc.hidden_size", f'{kind} == "vanilla"'),
        ("2 * mc.hidden_size", f'{kind} != "vanilla" and {kind} == "gated"')]


# step3p5.py:543-545 and step3_vl.py:318-333: which layers are MoE, from a
# config string of indices, or by default every layer but the first
MOE_BY_TEXT = '''\
from torch import nn

from sglang.srt.layers.linear import ReplicatedLinear


class TextLayer(nn.Module):
    def __init__(self, config, layer_id):
        super().__init__()
        moe_layers_enum = getattr(config, "moe_layers_enum", None)
        if moe_layers_enum is not None:
            moe_layers_idx = [int(i) for i in moe_layers_enum.strip().split(",")]
        else:
            moe_layers_idx = [i for i in range(1, config.num_hidden_layers)]
        self.is_sparse = True if layer_id in moe_layers_idx else False
        if self.is_sparse:
            self.moe = ReplicatedLinear(config.hidden_size, config.moe_intermediate_size)
        else:
            self.mlp = ReplicatedLinear(config.hidden_size, config.intermediate_size)


class TextForCausalLM(nn.Module):
    def __init__(self, config, quant_config=None, prefix=""):
        super().__init__()
        self.layers = nn.ModuleList([TextLayer(config, i) for i in range(config.num_hidden_layers)])


EntryClass = TextForCausalLM
'''


def test_moe_layers_a_config_string_lists_are_counted_from_it(tmp_path):
    """Step3p5, Step3p7 and Step3-VL named their MoE layers in a string
    (``"1,2,3"``): the module tested ``layer_id in None`` before, a
    TypeError. The layers are counted from the string itself, or from the
    default (every layer but the first), as sglang reads them."""
    import types

    result = generated(tmp_path, "text.py", MOE_BY_TEXT)
    assert result.classes[0].status == "FULLY"
    layers = {op.name: op.layers for op in result.shapes[0].operators}
    assert "as_ints(str.split(str.strip(getattr(mc, 'moe_layers_enum', None)), ','))" in E.to_source(layers["moe"])

    def counts(**config):
        mc = types.SimpleNamespace(num_hidden_layers=6, **config)
        return {name: E.evaluate(count, {"mc": mc}) for name, count in layers.items()}

    assert counts(moe_layers_enum=" 2,3,5 ") == {"moe": 3, "mlp": 3}
    assert counts() == {"moe": 5, "mlp": 1}
    assert "from ._astgen import Arch, as_ints\n" in result.source


FORMS = '''\
from torch import nn

from sglang.srt.layers.linear import RowParallelLinear


class FormsModel(nn.Module):
    def __init__(self, config, quant_config=None, prefix=""):
        super().__init__()
        self.width = config.a or config.b or 7
        self.both = config.a and config.b and config.c
        dims = (config.hidden_size,)
        self.proj = RowParallelLinear(bias=False, *dims, output_size=config.intermediate_size)
        size = config.hidden_size
        size *= 2
        size **= 2
        self.double = size
        match config.hidden_act:
            case "silu" | "gelu":
                self.act_kind = 1
            case None:
                self.act_kind = 2
            case other:
                self.act_kind = 3
        first, (second, third) = config.x, (config.y, 4)
        self.unpacked = first + second + third


EntryClass = FormsModel
'''


def test_the_tracer_reads_pythons_tree_forms_by_their_meaning(tmp_path):
    """The tracer reads Python's `ast` (trace/expressions.py, statements.py,
    calls.py): `a or b or c` is (a or b) or c, as Python groups it; a `*`
    argument written after a keyword still binds positionally; `**=` is not
    read (the value stays unknown, so it is no field); `match` is an if/elif
    chain with `|`, `None` and a capture pattern; nested tuple targets unpack."""
    result = generated(tmp_path, "forms.py", FORMS)
    root = result.irs[0].root
    assert {k: E.to_source(v) for k, v in root.fields.items()} == {
        "width": "mc.a or mc.b or 7", "both": "mc.a and mc.b and mc.c",
        "act_kind": "1 if mc.hidden_act == 'silu' or mc.hidden_act == 'gelu' else 2 if mc.hidden_act is None else 3",
        "unpacked": "mc.x + mc.y + 4"}
    width = root.fields["width"]
    assert isinstance(width, E.BoolOp) and isinstance(width.left, E.BoolOp) and width.right == E.Const(7)
    [proj] = root.children
    assert (proj.attr, proj.cls) == ("proj", "RowParallelLinear")
    assert {k: E.to_source(v) for k, v in proj.args.items()} == {
        "input_size": "mc.hidden_size", "bias": "False", "output_size": "mc.intermediate_size"}
    assert result.diagnostics == []


def test_diagnostics_name_python_tree_kinds_as_they_always_have():
    """Reports name an expression, operator or statement kind astgen does not
    read with the names they carried when the tracer read libcst's tree, so a
    report's wording does not depend on the parser (trace/common.py _kind,
    the one table of those names)."""
    import ast

    from astgen.trace.common import _callee_name, _kind

    def kind(text: str) -> str:
        return _kind(ast.parse(text, mode="eval").body)

    assert [kind(t) for t in ("a + b", "-a", "a and b", "a < b", "f'{a}'", "'s'", "b's'", "1", "1.5", "1j",
                              "...", "None", "True", "x[0]", "f(x)", "lambda: 0", "[i for i in x]")] == [
        "BinaryOperation", "UnaryOperation", "BooleanOperation", "Comparison", "FormattedString", "SimpleString",
        "SimpleString", "Integer", "Float", "Imaginary", "Ellipsis", "Name", "Name", "Subscript", "Call", "Lambda",
        "ListComp"]
    assert [_callee_name(ast.parse(t, mode="eval").body) for t in ("f", "a.b.f", "None", "g()", "d[k]")] == [
        "f", "f", "None", "Call", "Subscript"]
    assert _kind(ast.parse("a @ b", mode="eval").body.op) == "MatrixMultiply"
    statements = ast.parse("x = 1\nfor i in y: pass\nasync def f(): pass\nassert x\n").body
    assert [_kind(s) for s in statements] == [
        "SimpleStatementLine", "For", "FunctionDef", "SimpleStatementLine"]


UNREAD_LITERALS = '''\
from torch import nn


class LiteralsModel(nn.Module):
    def __init__(self, config, quant_config=None, prefix=""):
        super().__init__()
        self.shift = 1 << 3
        self.bytes_name = b"x"
        self.imaginary = 2j
        self.ellipsis = ...
        self.label = "a" "b"
        self.scale = -1.5
        self.size = config.hidden_size


EntryClass = LiteralsModel
'''


def test_literals_the_tracer_does_not_read_are_no_fields(tmp_path):
    """Bytes, complex numbers, `...` and operators outside + - * / // % ** stay
    unknown (trace/expressions.py _e_Constant, _e_BinOp), so the module keeps
    no field of them; strings (implicitly joined too) and numbers are read."""
    result = generated(tmp_path, "literals.py", UNREAD_LITERALS)
    assert {k: E.to_source(v) for k, v in result.irs[0].root.fields.items()} == {
        "label": "'ab'", "scale": "-1.5", "size": "mc.hidden_size"}
