"""The forward, lower and emit stages on their own: a small sglang-style
file written here, traced, its forward code read (astgen.forward.flow), its
forward pass planned (astgen.forward.run) and its operators built
(astgen.lower.shapes), each stage's output checked by itself; and the
emitter given operators made by hand (astgen.emit.modules)."""

from __future__ import annotations

import json
import types

from astgen import expr as E
from astgen.forward.flow import read_flow
from astgen.forward.run import plan_forward
from astgen.frontend.loader import Loader
from astgen.frontend.source import tree_of_file
from astgen.lower.shapes import build_shapes
from astgen.rules import load_rules
from astgen.trace import Tracer
from tests.helpers import generated

SOURCE = '''\
from torch import nn

from sglang.srt.distributed import tensor_model_parallel_all_reduce
from sglang.srt.layers.linear import ColumnParallelLinear, RowParallelLinear


class Block(nn.Module):
    def __init__(self, config, quant_config=None, prefix=""):
        super().__init__()
        self.up = ColumnParallelLinear(config.hidden_size, config.intermediate_size, bias=False)
        self.down = RowParallelLinear(config.intermediate_size, config.hidden_size, bias=False,
                                      reduce_results=False)
        self.gate = ColumnParallelLinear(config.hidden_size, config.hidden_size, bias=False)

    def forward(self, x, forward_batch):
        x = self.gate(x)
        if forward_batch.forward_mode.is_decode():
            x = self.up(x)
        x = self.down(x)
        x = tensor_model_parallel_all_reduce(x)
        return x


class TinyForCausalLM(nn.Module):
    def __init__(self, config, quant_config=None, prefix=""):
        super().__init__()
        self.block = Block(config)


EntryClass = TinyForCausalLM
'''


def _staged(tmp_path):
    path = tmp_path / "tiny.py"
    path.write_text(SOURCE)
    loader = Loader(tree_of_file(path))
    rules = load_rules()
    tracer = Tracer(loader, rules)
    arch = tracer.trace_entry(loader.load(loader.tree.module_name(path)), "TinyForCausalLM")
    return arch, rules, read_flow(arch, loader.get, tracer.condition_reader(), rules)


def test_flow_lists_a_modules_forward_in_order_with_each_steps_guard(tmp_path):
    arch, _, flow = _staged(tmp_path)
    block = next(n for n in arch.root.walk() if n.cls == "Block")
    assert [(e.kind, e.target, E.to_source(e.guard), e.loc.line) for e in flow.of(block)] == [
        ("run", "gate", "True", 16),
        ("run", "up", "is_decode", 18),  # forward_batch.forward_mode.is_decode()
        ("run", "down", "True", 19),
        ("collective", "tensor_model_parallel_all_reduce", "True", 20),
    ]


def test_shapes_turn_the_forward_collective_into_a_transfer_and_drop_a_deferred_sum(tmp_path):
    """The explicit all-reduce of forward code is a transfer of the block's
    rows over the hidden size (rules/execution.toml [forward.collectives]);
    the row-parallel layer built with reduce_results=False adds none of its
    own (its guard is False)."""
    arch, rules, flow = _staged(tmp_path)
    shapes = build_shapes(arch, rules, plan_forward(arch, rules, flow, "unknown"))
    ops = {op.name: op for op in shapes.operators}
    assert sorted(ops) == ["block_all_reduce", "down", "down_all_reduce", "gate", "up"]
    reduce = ops["block_all_reduce"]
    assert (reduce.kind, reduce.group, E.to_source(reduce.m), E.to_source(reduce.n)) == \
        ("transfer", "all_reduce", "seq_len", "mc.hidden_size")
    assert E.simplify_condition(ops["down_all_reduce"].guard) == E.FALSE
    assert E.to_source(ops["down"].k) == "mc.intermediate_size // (sc.tp_size * sc.dp_size)"


def test_emit_prints_operators_it_is_given_with_their_guards_and_sources():
    """The emit stage alone, on operators made here (no tracer): a guard of
    the config becomes one `if`, a schedule test another; a value used twice
    is named once; each call says the sglang line behind it; the operator
    table beside the code keeps the expressions as given."""
    from astgen.emit.modules import EmitOptions, emit_module
    from astgen.emit.package import split_module
    from astgen.frontend.parse import Location
    from astgen.lower.shapes import ArchShapes, Operator

    mc, sc = E.Name("mc"), E.Name("sc")
    hidden, tp = E.Attr(mc, "hidden_size"), E.BinOp("*", E.Attr(sc, "tp_size"), E.Attr(sc, "dp_size"))
    seq, layers = E.Name("seq_len"), E.Attr(mc, "num_hidden_layers")
    width = E.BinOp("//", E.Attr(mc, "intermediate_size"), tp)
    at = Location("sglang/srt/models/toy.py", 12)
    ops = [
        Operator("up", "matmul", seq, hidden, width, E.Const(1), layers, E.TRUE, at, "model.up", "ColumnParallelLinear"),
        Operator("down", "matmul", seq, width, hidden, E.Const(1), layers, E.Attr(mc, "use_down"),
                 Location(at.file, 13), "model.down", "RowParallelLinear"),
        Operator("down_all_reduce", "transfer", seq, hidden, hidden, E.Const(1), layers,
                 E.and_(E.Attr(mc, "use_down"), E.Compare(">", tp, E.Const(1))), Location(at.file, 13),
                 "model.down", "RowParallelLinear", group="all_reduce"),
    ]
    shapes = ArchShapes("ToyForCausalLM", "sglang.srt.models.toy", "sglang/srt/models/toy.py", "0" * 64,
                        operators=ops)
    code, records = split_module(emit_module([shapes], load_rules(), EmitOptions()))
    # the package's Arch.build_operators runs add_operators on one chunk's tokens; no attention core here
    head, body = code.split("\n    def add_operators(self, ops, mc, sc, seq_len) -> None:\n")
    assert head.endswith("\n    attention_keys = ()\n")
    body = [line.strip() for line in body.split("\n\n")[0].splitlines()]
    # config keys read three times or more bound once (num_hidden_layers as num_layers), the
    # world size named, a long argument hoisted into a local named after it (n, k)
    assert body == [
        "hidden_size = mc.hidden_size",
        "num_layers = mc.num_hidden_layers",
        "tp_size = sc.tp_size * sc.dp_size",
        "n = mc.intermediate_size // tp_size",
        'ops.matmul("up", seq_len, hidden_size, n, num_layers)  # toy.py:12',
        "if mc.use_down:",
        "k = mc.intermediate_size // tp_size",
        'ops.matmul("down", seq_len, k, hidden_size, num_layers)  # toy.py:13',
        "if tp_size > 1:",
        "# toy.py:13",
        'ops.all_reduce("down_all_reduce", seq_len, hidden_size, num_layers)',
    ]
    assert [E.parse(json.loads(r)["guard"]) for r in records] == [op.guard for op in ops]


def test_emit_writes_else_for_the_negated_test_and_each_source_line_once_per_run():
    """An operator under ``not t`` right after one under ``t`` is the `else`
    of its `if`; operators of one sglang line in one block are commented
    once, and a local an operator binds is not bound again to the same
    value by the next."""
    from astgen.emit.modules import EmitOptions, emit_module
    from astgen.emit.package import split_module
    from astgen.frontend.parse import Location
    from astgen.lower.shapes import ArchShapes, Operator

    mc, seq = E.Name("mc"), E.Name("seq_len")
    hidden, layers, vocab = E.Attr(mc, "hidden_size"), E.Attr(mc, "num_hidden_layers"), E.Attr(mc, "vocab_size")
    tied = E.Attr(mc, "tie_word_embeddings")
    at = Location("sglang/srt/models/toy.py", 40)
    long = E.BinOp("*", E.Attr(mc, "num_attention_heads"), E.Attr(mc, "head_dim"))

    def op(name, n, guard, line, k=hidden, count=layers):
        return Operator(name, "matmul", seq, k, n, E.Const(1), count, guard, Location(at.file, line), f"model.{name}",
                        "ReplicatedLinear")

    ops = [op("q_proj", long, E.TRUE, 40), op("k_proj", long, E.TRUE, 40), op("v_proj", long, E.TRUE, 40),
           op("embed_head", vocab, tied, 50, count=E.Const(1)),
           op("lm_head", vocab, E.UnaryOp("not", tied), 52, k=E.Attr(mc, "head_hidden"), count=E.Const(1))]
    shapes = ArchShapes("ToyForCausalLM", "sglang.srt.models.toy", "sglang/srt/models/toy.py", "0" * 64,
                        operators=ops)
    code, _ = split_module(emit_module([shapes], load_rules(), EmitOptions()))
    body = code.split("def add_operators(self, ops, mc, sc, seq_len) -> None:")[1].split("\n\n")[0].splitlines()
    start = next(i for i, line in enumerate(body) if "q_proj" in line) - 1
    assert [line.strip() for line in body[start:]] == [
        "n = num_attention_heads * head_dim",  # bound once: the next operators need the same
        'ops.matmul("q_proj", seq_len, hidden_size, n, num_layers)  # toy.py:40',
        'ops.matmul("k_proj", seq_len, hidden_size, n, num_layers)',
        'ops.matmul("v_proj", seq_len, hidden_size, n, num_layers)',
        "if mc.tie_word_embeddings:",
        "# toy.py:50",
        'ops.matmul("embed_head", seq_len, hidden_size, mc.vocab_size, 1)',
        "else:",
        "# toy.py:52",
        'ops.matmul("lm_head", seq_len, mc.head_hidden, mc.vocab_size, 1)',
    ]
    assert body[start + 7] == "        else:" and body[start + 9].startswith("            ops.matmul(")


def test_emit_names_a_nested_config_read_through_more_than_once():
    """``sub_config(mc, "text_config")`` (3 nodes, below the size a shared
    value is named at) is what every key of a multimodal model's text
    model is read through: named ``text_config`` where it repeats."""
    from astgen.emit.modules import EmitOptions, emit_module
    from astgen.emit.package import split_module
    from astgen.frontend.parse import Location
    from astgen.lower.shapes import ArchShapes, Operator

    text = E.Call("sub_config", (E.Name("mc"), E.Const("text_config")))
    hidden, inter, layers = (E.Attr(text, k) for k in ("hidden_size", "intermediate_size", "num_hidden_layers"))
    at = Location("sglang/srt/models/toy_vl.py", 7)
    ops = [Operator("up", "matmul", E.Name("seq_len"), hidden, inter, E.Const(1), layers, E.TRUE, at, "model.up",
                    "ReplicatedLinear"),
           Operator("down", "matmul", E.Name("seq_len"), inter, hidden, E.Const(1), layers, E.TRUE, at,
                    "model.down", "ReplicatedLinear")]
    shapes = ArchShapes("ToyVLForConditionalGeneration", "sglang.srt.models.toy_vl", "sglang/srt/models/toy_vl.py",
                        "0" * 64, operators=ops)
    code, _ = split_module(emit_module([shapes], load_rules(), EmitOptions()))
    lines = [line.strip() for line in code.splitlines()]
    start = lines.index('text_config = sub_config(mc, "text_config")')
    assert lines[start:start + 7] == [
        'text_config = sub_config(mc, "text_config")',
        "hidden_size = text_config.hidden_size",
        "intermediate_size = text_config.intermediate_size",
        "num_hidden_layers = text_config.num_hidden_layers",
        "# toy_vl.py:7",
        'ops.matmul("up", seq_len, hidden_size, intermediate_size, num_hidden_layers)',
        'ops.matmul("down", seq_len, intermediate_size, hidden_size, num_hidden_layers)',
    ]


def test_entries_sharing_most_operators_share_one_add_operators_and_each_runs_its_own():
    """Two entries of one file whose forward passes share most operators
    (DeepseekV2 and V3: V3 adds the DSA indexer) print one add_operators:
    what only one runs sits under a test of ``self.variant``, and each class
    adds exactly its own operators, in its own order."""
    from astgen.emit.modules import EmitOptions, emit_module
    from astgen.emit.package import split_module
    from astgen.frontend.parse import Location
    from astgen.lower.shapes import ArchShapes, Operator
    from tests.helpers import load_module, model_config, schedule

    mc = E.Name("mc")
    hidden, inter, layers = (E.Attr(mc, k) for k in ("hidden_size", "intermediate_size", "num_hidden_layers"))

    def op(name, k, n, line, guard=E.TRUE):
        return Operator(name, "matmul", E.Name("seq_len"), k, n, E.Const(1), layers, guard,
                        Location("sglang/srt/models/toy.py", line), f"model.{name}", "ReplicatedLinear")

    common = [op("up", hidden, inter, 10), op("down", inter, hidden, 11)]
    a_ops = common[:1] + [op("a_extra", hidden, hidden, 20)] + common[1:]
    b_ops = common + [op("indexer", hidden, E.Const(128), 30, E.Attr(mc, "use_indexer"))]
    archs = [ArchShapes(entry, "sglang.srt.models.toy", "sglang/srt/models/toy.py", "0" * 64, operators=ops)
             for entry, ops in (("ToyV2ForCausalLM", a_ops), ("ToyV3ForCausalLM", b_ops))]
    code, records = split_module(emit_module(archs, load_rules(), EmitOptions()))
    assert code.count("def add_operators") == 1
    assert "class ToyV3ForCausalLMArch(ToyV2ForCausalLMArch):" in code
    lines = [line.strip() for line in code.splitlines()]
    assert 'if self.variant == "ToyV2ForCausalLM":' in lines
    assert 'if self.variant == "ToyV3ForCausalLM" and mc.use_indexer:' in lines
    module = load_module(code, "toy_arch")
    config = model_config({"hidden_size": 64, "intermediate_size": 256, "num_hidden_layers": 2, "use_indexer": True,
                           "vocab_size": 100, "num_attention_heads": 1, "num_key_value_heads": 1})
    for entry, expected in (("ToyV2ForCausalLM", ["up", "a_extra", "down"]),
                            ("ToyV3ForCausalLM", ["up", "down", "indexer"])):
        arch = module.ARCHITECTURES[entry](config, schedule())
        arch.build_operators()
        assert [o.metadata.name for o in arch.operators] == expected
    assert len(records) == len(a_ops) + len(b_ops)  # the table keeps each entry's operators


def test_the_flow_stage_finds_a_statements_calls_in_the_order_python_runs_them():
    """The flow stage's walk over Python's tree of forward code
    (astgen/forward/flow.py _collect_calls) finds the calls libcst's visitor
    finds in source order, arguments before the call taking them (keyword
    and starred arguments as written), nothing inside a lambda, in every
    construct."""
    import ast

    import libcst as cst

    from astgen.forward.flow import _collect_calls

    class Calls(cst.CSTVisitor):
        def __init__(self) -> None:
            self.found: list = []

        def visit_Lambda(self, node: cst.Lambda) -> bool:
            return False

        def leave_Call(self, node: cst.Call) -> None:
            self.found.append(cst.Module([]).code_for_node(node))

    source = """
x = a(b(c), d=e(f)) if g(h) else i[j(k)].m(n) + o(-p(q), *r(s))
y: t(u) = v(w)(z(1))[2:aa(3)] or (bb(cc) for cc in dd(ee)) and ff(lambda gg: hh(gg))
return ii(jj) < kk(ll) <= mm(nn), [oo(pp), *qq(rr)], {ss(tt): uu(vv), **ab(ac)}, f"{ww(xx)}", await yy(zz)
ad(ae=af(ag), *ah(ai), **aj(ak))
"""
    for statement, node in zip(cst.parse_module(source).body, ast.parse(source).body):
        visitor = Calls()
        statement.visit(visitor)
        found: list = []
        _collect_calls(node, found)
        assert [ast.unparse(c) for c in found] == [ast.unparse(ast.parse(c)) for c in visitor.found]
        assert len(found) > 2


def test_a_key_with_a_constant_where_it_is_none_is_named_after_the_key_unless_sglang_names_it():
    """``1 if getattr(c, "cli_factor", 1) is None else getattr(c, ...)``
    (the DSA indexer's per-layer test, deepseek_v2.py) repeated is named
    ``cli_factor``, and a key read more than once (``getattr(mc,
    "indexer_types", None)``) is a local of its own; a value sglang names
    keeps sglang's name (kv_heads)."""
    from astgen.emit._cse import Namer

    key = E.GetAttr(E.Name("mc"), "cli_factor", E.Const(1))
    value = E.IfExp(E.Compare("is", key, E.NONE), E.Const(1), key)
    uses = [E.BinOp("%", E.Name("seq_len"), value), E.BinOp("//", E.Name("seq_len"), value)]
    definitions, _ = Namer({}, {}, set()).name_common(uses, {"mc", "seq_len"})
    # the key read twice (in the test and as the value) is a local too
    raw = E.Name("cli_factor_2")
    assert definitions == [("cli_factor_2", key), ("cli_factor", E.IfExp(E.Compare("is", raw, E.NONE), E.Const(1), raw))]
    heads = E.Attr(E.Name("mc"), "num_key_value_heads")
    kv = E.IfExp(E.Compare("is", heads, E.NONE), E.Const(0), heads)
    definitions, _ = Namer({kv: "kv_heads"}, {}, set()).name_common([kv, E.BinOp("+", kv, E.Const(1))], {"mc"})
    assert [name for name, _ in definitions] == ["kv_heads"]


def test_a_call_no_line_holds_takes_its_shorter_arguments_as_locals_where_that_is_fewer_lines():
    """A fused MoE's expert matmuls (seven arguments): black would lay each
    out one argument a line (9 lines); its short arguments as locals make
    it one line, and the next call reuses what the locals hold."""
    from astgen.emit.modules import EmitOptions, emit_module
    from astgen.emit.package import split_module
    from astgen.frontend.parse import Location
    from astgen.lower.shapes import ArchShapes, Operator

    rows = E.parse("max(1, seq_len * sc.dp_size * mc.num_experts_per_tok // mc.num_experts)")
    inter = E.parse("mc.moe_intermediate_size // max(1, sc.tp_size * sc.dp_size // sc.ep_size)")
    batch = E.parse("max(1, mc.num_experts // sc.ep_size)")
    layers = E.parse("mc.num_hidden_layers - mc.first_k_dense_replace")
    hidden = E.parse("mc.hidden_size")
    at = Location("sglang/srt/models/toy_moe.py", 145)
    ops = [Operator(name, "matmul", rows, k, n, batch, layers, E.TRUE, at, "model.layers.mlp.experts", "FusedMoE",
                    quantized=True)
           for name, k, n in (("moe_experts_gate_up", hidden, E.BinOp("*", E.Const(2), inter)),
                              ("moe_experts_down", inter, hidden))]
    shapes = ArchShapes("ToyMoeForCausalLM", "sglang.srt.models.toy_moe", "sglang/srt/models/toy_moe.py", "0" * 64,
                        operators=ops)
    code, _ = split_module(emit_module([shapes], load_rules(), EmitOptions()))
    body = [line.strip() for line in code.split("\n\n    def _kv_cache_elements")[0].splitlines()]
    start = body.index("layers = mc.num_hidden_layers - mc.first_k_dense_replace")
    assert body[start:] == [
        "layers = mc.num_hidden_layers - mc.first_k_dense_replace",
        "n = 2 * (mc.moe_intermediate_size // moe_tp_size)",
        "batch = max(1, num_experts // sc.ep_size)",
        'weight = "model.layers.mlp.experts"',
        "k = mc.hidden_size",
        "m = experts_rows",
        "# toy_moe.py:145",
        'ops.matmul("moe_experts_gate_up", m, k, n, layers, batch, weight=weight)',
        "k = mc.moe_intermediate_size // moe_tp_size",
        "n = mc.hidden_size",
        'ops.matmul("moe_experts_down", experts_rows, k, n, layers, batch, weight=weight)',
    ]


def test_a_role_call_leaves_out_the_rows_its_method_derives_and_takes_a_long_layer_count_as_a_local():
    """rules/execution.toml [forward.rows_from]: ffn_exit starts from the rows
    ffn_entry leaves the FFN unless given. A call whose rows are those
    (spelled ``ops.ffn_entry_rows(seq_len, "moe")``) leaves them out; one
    whose rows are others keeps them. A layer count too long for the line
    is the local ``layers``, as an operator's, where that takes fewer lines
    (one binding and two calls of one line, instead of two calls of five)."""
    from astgen.emit.modules import EmitOptions, emit_module
    from astgen.emit.package import split_module
    from astgen.frontend.parse import Location
    from astgen.lower.shapes import ArchShapes, Operator, Site

    rules = load_rules()
    assert rules.execution.rows_from == {"ffn_exit": "ffn_entry"}
    seq, hidden = E.Name("seq_len"), E.Attr(E.Name("mc"), "hidden_size")
    gathered = E.parse("seq_len * sc.dp_size")  # what ffn_entry leaves a MoE under DP attention
    count = E.parse("sum(1 for layer_id in range(mc.num_hidden_layers) if layer_id % mc.moe_layer_freq == 0)")
    at = Location("sglang/srt/models/toy_moe.py", 60)

    def role(role: str, rows: E.Expr | None) -> Operator:
        args = (("seq_len", seq), ("hidden", hidden), *((("rows", rows),) if rows is not None else ()),
                ("ffn", E.Const("moe")))
        site = Site(role, "moe_", args, E.TRUE, count, 2, name_as="prefix")
        return Operator(f"moe_{role}", "transfer", seq, hidden, hidden, E.Const(1), count, E.TRUE, at, "model.layers",
                        "ToyLayer", group="all_reduce", site=site)

    shapes = ArchShapes("ToyMoeForCausalLM", "sglang.srt.models.toy_moe", "sglang/srt/models/toy_moe.py", "0" * 64,
                        operators=[role("ffn_entry", None), role("ffn_exit", gathered)],
                        role_rows={gathered: ("ffn_entry", "moe")})
    code, _ = split_module(emit_module([shapes], rules, EmitOptions()))
    body = [line.strip() for line in code.split("\n\n    def _kv_cache_elements")[0]
            .split("def add_operators(self, ops, mc, sc, seq_len) -> None:\n")[1].splitlines()]
    assert body == [
        "moe_layers = sum(",  # named after the call's prefix, like an operator's count
        "1",
        "for layer_id in range(mc.num_hidden_layers)",
        "if layer_id % mc.moe_layer_freq == 0",
        ")",
        "layers = moe_layers",
        "# toy_moe.py:60",
        'ops.ffn_entry(seq_len, mc.hidden_size, prefix="moe_", ffn="moe", layers=layers)',
        'ops.ffn_exit(seq_len, mc.hidden_size, prefix="moe_", ffn="moe", layers=layers)',
    ]
    shapes.operators = [role("ffn_exit", E.parse("seq_len * 2"))]  # rows of its own: kept
    code, _ = split_module(emit_module([shapes], rules, EmitOptions()))
    lines = [line.strip() for line in code.split("def add_operators(self, ops, mc, sc, seq_len) -> None:\n")[1]
             .split("\n\n")[0].splitlines()]
    assert lines[:7] == ["# toy_moe.py:60", "ops.ffn_exit(", "seq_len,", "mc.hidden_size,", 'prefix="moe_",',
                         "rows=seq_len * 2,", 'ffn="moe",']


def test_a_test_repeated_in_a_guard_is_written_once():
    """kimi_linear.py's MoE roles ran under `is_moe and is_moe` (the layer's
    test and its boundary's, both `num_experts is not None`): emitted as
    `if is_moe:` nested in `if is_moe:`. A repeated test is one test; its
    truth is the same (a hypothesis test checks tidy_condition's)."""
    from astgen.emit.modules import EmitOptions, emit_module
    from astgen.emit.package import split_module
    from astgen.emit.tidy import tidy_condition
    from astgen.frontend.parse import Location
    from astgen.lower.shapes import ArchShapes, Operator

    moe = E.parse("getattr(mc, 'num_experts', None) is not None")
    assert tidy_condition(E.and_(moe, E.and_(moe, E.parse("mc.x > 1")))) == E.and_(moe, E.parse("mc.x > 1"))
    hidden, layers = E.parse("mc.hidden_size"), E.parse("mc.num_hidden_layers")
    ops = [Operator(name, "matmul", E.Name("seq_len"), hidden, hidden, E.Const(1), layers, E.BoolOp("and", moe, moe),
                    Location("sglang/srt/models/toy.py", line), f"model.{name}", "ReplicatedLinear")
           for name, line in (("gate", 10), ("up", 11))]
    shapes = ArchShapes("ToyForCausalLM", "sglang.srt.models.toy", "sglang/srt/models/toy.py", "0" * 64,
                        operators=ops)
    code, _ = split_module(emit_module([shapes], load_rules(), EmitOptions()))
    tests = [line.strip() for line in code.splitlines() if line.strip().startswith("if ")]
    assert tests == ["if num_experts is not None:"]  # the key read with a default, named


CONTAINERS = '''\
from torch import nn

from sglang.srt.layers.linear import ColumnParallelLinear


class TinyForRewardModel(nn.Module):
    def __init__(self, config, quant_config=None, prefix=""):
        super().__init__()
        self.projections = nn.ModuleList(
            [ColumnParallelLinear(config.hidden_size, config.hidden_size) for _ in range(config.num_inputs)]
        )
        self.pair = nn.ModuleList([nn.Linear(config.hidden_size, 8) for _ in range(2)])
        self.score = nn.Sequential(
            nn.Linear(config.hidden_size, config.hidden_size),
            nn.ReLU(),
            nn.Linear(config.hidden_size, 1),
        )


EntryClass = TinyForRewardModel
'''


def test_a_layer_inside_a_container_is_named_after_the_container(tmp_path):
    """nn.Sequential's children are "0", "2", a list's are its indices and
    an element of a list as long as the config says has no attribute: their
    operators are named after the container (qwen2_rm.py:47 score.0 ->
    score_0; gemma3n_causal.py:696 altup_projections), never "0", "2" or ""
    in LLMSim's table."""
    result = generated(tmp_path, "tiny_rm.py", CONTAINERS)
    ops = {op.name: (op.path, op.n, op.layers) for op in result.shapes[0].operators if op.kind == "matmul"}
    assert ops == {"projections": ("projections", E.parse("mc.hidden_size // (sc.tp_size * sc.dp_size)"),
                                   E.parse("mc.num_inputs")),
                   "pair_0": ("pair.0", E.Const(8), E.Const(1)), "pair_1": ("pair.1", E.Const(8), E.Const(1)),
                   "score_0": ("score.0", E.parse("mc.hidden_size"), E.Const(1)),
                   "score_2": ("score.2", E.Const(1), E.Const(1))}


def test_a_multimodal_models_padding_pattern_is_no_layer(tmp_path):
    """mllama4.py:486 (0.5.8) keeps ``self.padding_pattern =
    MultiModalityDataPaddingPatternMultimodalTokens()``, a plain object that
    pads input ids (managers/mm_utils.py:310): rules/layers.toml [ignored]
    padding. It was an unknown layer, and Llama4ForConditionalGeneration
    PARTIALLY for it."""
    source = CONTAINERS.replace(
        "class TinyForRewardModel", "from sglang.srt.managers.mm_utils import "
        "MultiModalityDataPaddingPatternMultimodalTokens\n\n\nclass TinyForRewardModel").replace(
        "        self.score = nn.Sequential(",
        "        self.padding_pattern = MultiModalityDataPaddingPatternMultimodalTokens()\n"
        "        self.score = nn.Sequential(")
    result = generated(tmp_path, "tiny_mm.py", source)
    [entry] = result.classes
    assert entry.status == "FULLY" and not entry.reasons
    assert [n.cls for n in result.irs[0].root.walk() if n.attr == "padding_pattern"] == [
        "MultiModalityDataPaddingPatternMultimodalTokens"]
    assert not [d for d in result.diagnostics if "padding" in d.render()]


SPARSE = '''\
from torch import nn

from sglang.srt.layers.linear import ReplicatedLinear


class Layer(nn.Module):
    def __init__(self, config, layer_id):
        super().__init__()
        sparse = getattr(config, "sparse_attention_config", None)
        self.use_index = (
            layer_id in [i for i, f in enumerate(sparse["sparse_attention_freq"]) if f != 0]
            if sparse is not None
            else False
        )
        self.proj = ReplicatedLinear(config.hidden_size, config.hidden_size)
        if self.use_index:
            self.index_o_proj = ReplicatedLinear(
                config.sparse_attention_config["sparse_index_dim"], config.hidden_size
            )


class TinySparseForCausalLM(nn.Module):
    def __init__(self, config, quant_config=None, prefix=""):
        super().__init__()
        self.layers = nn.ModuleList([Layer(config, i) for i in range(config.num_hidden_layers)])


EntryClass = TinySparseForCausalLM
'''


def test_an_operator_counted_over_layers_reads_a_key_the_count_falls_back_on_only_where_it_runs(tmp_path):
    """minimax_m3.py:846: index_o_proj exists on the layers sparse attention
    lists, its size read from sparse_attention_config outright; the count
    reads the key with a fallback (None: no layer). Its sizes are read only
    where the count is not 0: a checkpoint without the key builds no such
    operator instead of failing on its size (the MiniMax-M3-Sparse modules
    read mc.sparse_attention_config[...] at the top)."""
    result = generated(tmp_path, "tiny_sparse.py", SPARSE)
    ops = {op.name: op for op in result.shapes[0].operators}
    index, proj = ops["index_o_proj"], ops["proj"]
    assert proj.guard == E.TRUE and proj.layers == E.parse("mc.num_hidden_layers")
    assert index.guard == E.Compare(">", index.layers, E.Const(0))
    assert E.to_source(index.k) == "mc.sparse_attention_config['sparse_index_dim']"
    env = {"sc": None, "mc": types.SimpleNamespace(num_hidden_layers=4, hidden_size=64)}
    assert E.evaluate(index.guard, env) is False  # the key is absent: no layer has the operator
    env["mc"].sparse_attention_config = {"sparse_attention_freq": [0, 1, 1, 0], "sparse_index_dim": 32}
    assert E.evaluate(index.layers, env) == 2 and E.evaluate(index.k, env) == 32
