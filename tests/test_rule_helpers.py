"""A layer rule with a ``helper`` (rules/layers.toml) is emitted as one call of
a method the package's ``_astgen.py`` holds, generated from the rule: the call
must add exactly the operators shapes.py derives from the rule for that
instance, at every layout and switch value."""

from __future__ import annotations

import sys
import types

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astgen import expr as E
from astgen import ir
from astgen.frontend.parse import Location
from astgen.lower.shapes import node_operators
from astgen.rules import RulesError, _load_layer
from tests.helpers import RULES, emitted_package, schedule
from tests.llmsim_stub.config import ForwardMode


class _Recorder:
    """Stands in for the arch an ``Operators`` adds to."""

    def __init__(self, sc) -> None:
        self.schedule_config, self.model_config = sc, types.SimpleNamespace(torch_dtype="bfloat16")
        self.kv_cache_dtype = None
        self.added: list[tuple] = []

    def switch(self, name, sc=None):
        """A server argument as the analysis reads it (rules.switch)."""
        return E.evaluate(RULES.switch(name), {"sc": sc or self.schedule_config})

    def _add_operator(self, op) -> None:
        self._record(op)

    def _add_transfer_operator(self, op) -> None:
        self._record(op)

    def _record(self, op) -> None:
        md = op.metadata
        io = md.io_config
        self.added.append((md.name, io.input_shape.m, io.input_shape.n, io.weight_shape.n, md.num_layers))


def _flat(node: ir.Node, sc) -> list[tuple]:
    """The instance's operators as shapes.py derives them, evaluated."""
    out = []
    env = {"sc": sc}
    for op in node_operators(node, RULES):
        if not E.evaluate(op.guard, env):
            continue
        m, n = E.evaluate(op.m, env), E.evaluate(op.n, env)
        out.append((op.name, m, E.evaluate(op.k, env) if op.kind == "matmul" else n,
                    n if op.kind == "matmul" else 0, E.evaluate(op.layers, env)))
    return out


@settings(max_examples=150, deadline=None)
@given(tp=st.sampled_from([1, 2, 4, 8]), dp=st.sampled_from([1, 2, 4, 8]), decode=st.booleans(),
       dp_head=st.booleans(), disaggregated=st.booleans(), attn_group=st.sampled_from([None, True, False]),
       vocab=st.integers(1, 300_000), hidden=st.sampled_from([1024, 4096, 7168]))
def test_the_lm_head_helper_adds_what_the_rule_derives(tp, dp, decode, dp_head, disaggregated, attn_group,
                                                       vocab, hidden):
    args = {"num_embeddings": E.Const(vocab), "embedding_dim": E.Const(hidden)}
    if attn_group is not None:
        args["use_attn_tp_group"] = E.Const(attn_group)
    node = ir.Node(ir.LAYER, "ParallelLMHead", Location("m.py", 1), attr="lm_head", args=args)
    fields = {"enable_dp_lm_head": dp_head, "disaggregation_mode": "decode" if disaggregated else "null"}
    sc = schedule(tp=tp, dp=dp, mode=ForwardMode.DECODE if decode else ForwardMode.EXTEND, **fields)
    helpers = sys.modules[emitted_package() + "._astgen"]
    arch = _Recorder(sc)
    ops = helpers.Operators(arch)
    assert RULES.layer("ParallelLMHead").switches == ("enable_dp_lm_head", "enable_tp_lm_head_all_to_all")
    ops.lm_head("lm_head", num_embeddings=vocab, embedding_dim=hidden,
                **({} if attn_group is None else {"use_attn_tp_group": attn_group}))  # the switches: arch.switch
    assert sorted(arch.added) == sorted(_flat(node, sc))
    assert arch.added[0][0] == "lm_head"


def test_a_helper_must_be_able_to_reproduce_its_rule():
    spec = {"category": "attention", "params": ["num_heads", "head_dim"], "helper": "attn",
            "attention": {"heads": "num_heads", "qk_dim": "head_dim", "v_dim": "head_dim", "kv_heads": "1"}}
    with pytest.raises(RulesError, match=r"layers.Attn.helper: .* it has an attention core"):
        _load_layer("Attn", spec)
    spec = {"category": "linear", "params": ["k", "n"], "helper": "row", "quantized": False,
            "ops": [{"k": "k", "n": "n"}]}
    with pytest.raises(RulesError, match="an operator has no m"):
        _load_layer("Row", spec)
    spec = {**spec, "ops": [{"k": "k", "n": "n", "m": "seq_len"}]}
    with pytest.raises(RulesError, match="it reads seq_len"):
        _load_layer("Row", spec)
    assert _load_layer("Row", {**spec, "ops": [{"k": "k", "n": "n", "m": "sc.batch_size"}]}).inputs == ("k", "n")


@settings(max_examples=150, deadline=None)
@given(role=st.sampled_from(sorted(RULES.execution.roles)), tp=st.sampled_from([1, 2, 4]),
       dp=st.sampled_from([1, 2, 8]), ep=st.sampled_from([1, 2, 8]), local=st.booleans(), rsv=st.booleans(),
       maxlen=st.booleans(), seq_len=st.integers(1, 5000), gathered=st.booleans())
def test_a_boundary_role_helper_runs_the_roles_steps_in_order(role, tp, dp, ep, local, rsv, maxlen, seq_len,
                                                             gathered):
    """rules/execution.toml [forward.roles]: each step a collective when its
    condition holds, the rows it leaves (``then``) what the next step sees,
    as the run stage applies them (astgen/forward/run.py _Rows._apply)."""
    sc = schedule(tp=tp, dp=dp, ep=ep)
    rows = seq_len * dp if gathered else seq_len
    expected, current = [], rows
    for step in RULES.execution.roles[role]:
        env = {"sc": sc, "seq_len": seq_len, "rows": current, "local": local, "rsv": rsv, "maxlen": maxlen}
        if not E.evaluate(step.when, env):
            continue
        if step.collective:
            expected.append((step.name, E.evaluate(step.rows, env), 7168, 0, 3))  # a transfer has no weight
        if step.then is not None:
            current = E.evaluate(step.then, env)
    helpers = sys.modules[emitted_package() + "._astgen"]
    arch = _Recorder(sc)
    getattr(helpers.Operators(arch), role)(seq_len, 7168, rows=rows, local=local, rsv=rsv, maxlen=maxlen,
                                          layers=3)
    assert arch.added == expected
    # <role>_rows: the rows the steps leave (what the emitted modules bind as mlp_rows), adding
    # nothing; a role without one (ffn_exit) always leaves seq_len
    quiet = _Recorder(sc)
    rows_only = getattr(helpers.Operators(quiet), role + "_rows", None)
    if rows_only is None:  # each of its steps leaves seq_len rows; none running leaves them as they were
        assert role == "ffn_exit" and current in (rows, seq_len)
    else:
        after = rows_only(seq_len, rows=rows, local=local, rsv=rsv, maxlen=maxlen)
        assert after == current and quiet.added == []


@settings(max_examples=150, deadline=None)
@given(entry=st.sampled_from(["LongcatFlashForCausalLM", "Qwen3ForCausalLM", "LlamaForCausalLM"]),
       chosen=st.sampled_from(["auto", "rsv", "rs+rsv", "ar"]), tp=st.sampled_from([1, 2]),
       dp=st.sampled_from([1, 8]), ep=st.sampled_from([1, 8]), deepep=st.booleans(),
       mode=st.sampled_from([ForwardMode.EXTEND, ForwardMode.DECODE]), ffn=st.sampled_from(["dense", "moe"]))
def test_a_role_call_without_rsv_maxlen_or_local_derives_them_as_the_run_stage_does(entry, chosen, tp, dp, ep,
                                                                                   deepep, mode, ffn):
    """A module at sglang 0.5.23 passes neither rsv nor maxlen (the arch's
    ``boundary_reduction`` at auto: LongcatFlash's is rsv, Qwen3's ar,
    Llama's rs+rsv, rules/execution.toml [boundary_reduction]) nor the
    FFN's locality, only its kind ([forward.local]): the helper's steps are
    those the run stage's expressions give (astgen/forward/run.py
    _boundary_return)."""
    from astgen.forward.run import _boundary_return
    from astgen.rules import bind_switches

    rules = bind_switches(RULES, RULES.server_args, {"boundary_reduction": "auto"})  # as a 0.5.23 tree declares it
    rsv_expr, maxlen_expr, default = _boundary_return(entry, rules, "0.5.23")
    assert default == {"LongcatFlashForCausalLM": "rsv", "Qwen3ForCausalLM": "ar"}.get(entry, "rs+rsv")
    sc = schedule(tp=tp, dp=dp, ep=ep, deepep=deepep, mode=mode, boundary_reduction=chosen)
    env = {"sc": sc, "is_decode": mode == ForwardMode.DECODE}
    rsv, maxlen = bool(E.evaluate(rsv_expr, env)), bool(E.evaluate(maxlen_expr, env))
    local = bool(E.evaluate(rules.execution.local[ffn], env))
    helpers = sys.modules[emitted_package() + "._astgen"]

    def steps(**given):
        arch = _Recorder(sc)
        arch.boundary_reduction, arch.boundary_return = default, types.MethodType(helpers.Arch.boundary_return, arch)
        for role in ("ffn_entry", "ffn_exit"):
            getattr(helpers.Operators(arch), role)(64, 7168, prefix="moe_", layers=3, **given)
        return arch.added

    derived = steps(ffn=ffn)
    assert derived == steps(local=local, rsv=rsv, maxlen=maxlen)
    assert all(name.startswith("moe_") for name, *_ in derived)
    # the reduce-scatterv return is there exactly where the run stage's rsv holds
    assert ("moe_ffn_reduce_scatter" in [name for name, *_ in derived]) == (rsv and not local)


@settings(max_examples=100, deadline=None)
@given(tp=st.sampled_from([1, 2, 4]), dp=st.sampled_from([1, 2, 8]), deepep=st.booleans(),
       dense_dp=st.booleans(), ffn=st.sampled_from(["dense", "moe"]), seq_len=st.integers(1, 5000))
def test_ffn_exit_starts_from_the_rows_ffn_entry_leaves_the_ffn_unless_given(tp, dp, deepep, dense_dp, ffn,
                                                                             seq_len):
    """rules/execution.toml [forward.rows_from] ffn_exit = "ffn_entry": a call
    without rows (what the modules print where the run stage's rows are
    those) adds what a call given ffn_entry's rows adds; with DP attention
    and an FFN over the whole TP group, the FFN's sum reduces every
    replica's rows (seq_len * dp), not seq_len."""
    sc = schedule(tp=tp, dp=dp, ep=dp * tp if deepep else 1, deepep=deepep, fully_dp=dense_dp)
    helpers = sys.modules[emitted_package() + "._astgen"]

    def added(**given):
        arch = _Recorder(sc)
        arch.boundary_reduction, arch.boundary_return = None, lambda: (False, False)
        helpers.Operators(arch).ffn_exit(seq_len, 7168, ffn=ffn, layers=3, **given)
        return arch.added

    probe = _Recorder(sc)
    probe.boundary_reduction, probe.boundary_return = None, lambda: (False, False)
    entry_rows = helpers.Operators(probe).ffn_entry_rows(seq_len, ffn)
    assert added() == added(rows=entry_rows)
    local = ffn == "moe" and deepep or ffn == "dense" and dense_dp
    if dp > 1 and not local:
        assert added() == [("ffn_all_reduce", seq_len * dp, 7168, 0, 3)]


def test_rows_from_must_name_roles_and_one_that_leaves_other_rows():
    from astgen.rules import _load_execution
    import tomllib
    from pathlib import Path

    doc = tomllib.loads((Path(__file__).parents[1] / "rules" / "execution.toml").read_text())
    doc["forward"]["rows_from"] = {"ffn_exit": "ffn_entery"}
    with pytest.raises(RulesError, match=r"forward.rows_from.ffn_exit: unknown role 'ffn_entery'"):
        _load_execution(doc)
    doc["forward"]["rows_from"] = {"ffn_entry": "ffn_exit"}
    with pytest.raises(RulesError, match=r"forward.rows_from.ffn_entry: ffn_exit always leaves seq_len rows"):
        _load_execution(doc)


@settings(max_examples=150, deadline=None)
@given(decode=st.booleans(), seq_len=st.integers(1, 20000), dp=st.sampled_from([1, 2, 8]), off=st.booleans(),
       tbo=st.booleans(), backend=st.sampled_from(["none", "deepep", "mooncake"]), pp=st.sampled_from([1, 2]),
       disaggregation=st.sampled_from(["null", "prefill", "decode"]), dcp=st.sampled_from([1, 2]),
       max_bs=st.none() | st.integers(1, 20000), chunked=st.sampled_from([-1, 0, 4096, 8192, 16384]))
def test_the_packages_mla_absorbed_is_the_run_stages_test(decode, seq_len, dp, off, tbo, backend, pp, disaggregation,
                                                          dcp, max_bs, chunked):
    """A 0.5.23 module's MLA blocks test ``self.mla_absorbed(seq_len)``: the
    package's method must be the test the run stage derives from
    rules/execution.toml [mla] absorbed_extend (astgen/forward/run.py
    _absorbed), at every server argument it reads."""
    from astgen.forward.run import _absorbed
    from astgen.rules import bind_switches

    rules = bind_switches(RULES, RULES.server_args, {})
    sc = schedule(tp=1, dp=dp, mode=ForwardMode.DECODE if decode else ForwardMode.EXTEND,
                  disable_prefill_cuda_graph=off, enable_two_batch_overlap=tbo, moe_a2a_backend=backend,
                  disaggregation_mode=disaggregation, pp_size=pp, dcp_size=dcp, cuda_graph_max_bs_prefill=max_bs,
                  chunked_prefill_size=chunked)
    expected = E.evaluate(_absorbed(rules, "0.5.23"), {"sc": sc, "is_decode": decode, "seq_len": seq_len})
    helpers = sys.modules[emitted_package() + "._astgen"]
    arch = _Recorder(sc)
    arch.source = "sglang"
    arch.prefill_chunk = types.MethodType(helpers.Arch.prefill_chunk, arch)
    assert helpers.Arch.mla_absorbed(arch, seq_len) == bool(expected)
    assert _absorbed(rules, "0.5.8") == E.Name("is_decode")  # before 0.5.23: no method call, DECODE alone


@settings(max_examples=100, deadline=None)
@given(flags=st.lists(st.integers(-2, 3), max_size=12))
def test_the_package_helpers_modules_call_are_the_expression_engines_functions(flags):
    """as_ints, nonzero_indices, zero_indices and coalesce are written twice: in the
    package's _astgen.py, which the modules call, and in astgen.expr's FUNCS,
    which the analysis evaluates. They must agree."""
    helpers = sys.modules[emitted_package() + "._astgen"]
    text = ",".join(str(f) for f in flags)
    for name, value in (("as_ints", text.split(",") if flags else []), ("nonzero_indices", flags),
                        ("zero_indices", flags)):
        assert getattr(helpers, name)(value) == E.FUNCS[name](value)
    assert E.LIST_FUNCS >= {"as_ints", "nonzero_indices", "zero_indices"}
    for value in (None, 0, flags):
        assert helpers.coalesce(value, 7) == E.FUNCS["coalesce"](value, 7) == (7 if value is None else value)
