"""The expression engine: exact unit cases and hypothesis properties."""

from __future__ import annotations

import types

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from astgen import expr as E
from astgen.emit.tidy import given as tidy_given
from astgen.emit.tidy import coalesced, tidy, tidy_condition

KEYS = ["hidden_size", "num_attention_heads", "num_key_value_heads", "head_dim", "vocab_size"]


def mc(key):
    return E.attr_path("mc", key)


def test_evaluate_reads_config_and_fallbacks():
    e = E.parse("getattr(mc, 'head_dim', None) or mc.hidden_size // mc.num_attention_heads")
    assert E.evaluate(e, {"mc": {"hidden_size": 4096, "num_attention_heads": 32}}) == 128
    assert E.evaluate(e, {"mc": {"hidden_size": 4096, "num_attention_heads": 32, "head_dim": 256}}) == 256


def test_missing_key_is_reported_by_name():
    with pytest.raises(E.MissingKey) as info:
        E.evaluate(E.parse("mc.text_config.hidden_size"), {"mc": {"text_config": {}}})
    assert info.value.path == "mc.text_config.hidden_size"


def test_countif_counts_layers():
    e = E.parse("sum(1 for layer_id in range(mc.n) if layer_id >= mc.k and layer_id % mc.f == 0)")
    assert E.evaluate(e, {"mc": {"n": 61, "k": 3, "f": 1}}) == 58
    assert E.evaluate(e, {"mc": {"n": 10, "k": 1, "f": 2}}) == 4


def test_simplify_folds_and_removes_identities():
    assert E.simplify(E.parse("1 * mc.x + 0")) == mc("x")
    assert E.simplify(E.parse("(mc.x // 2) // 4")) == E.parse("mc.x // 8")
    assert E.simplify(E.parse("mc.a if True else mc.b")) == mc("a")
    assert E.simplify(E.parse("None or mc.b")) == mc("b")
    assert E.simplify(E.parse("max(1, 8 // 16)")) == E.Const(1)
    assert E.simplify(E.parse("not mc.a is None")) == E.parse("mc.a is not None")


def test_a_config_string_compared_as_sglang_compares_it():
    """dspark.py:392: `str(getattr(config, "markov_head_type", "vanilla")).lower()`,
    printed as valid Python, read back and evaluated as Python does."""
    text = "str.lower(str(getattr(mc, 'head_type', 'Vanilla'))) == 'vanilla'"
    e = E.parse(text)
    assert e.left == E.Call("str.lower", (E.Call("str", (E.GetAttr(E.Name("mc"), "head_type", E.Const("Vanilla")),)),))
    assert E.to_source(e) == text
    assert E.evaluate(e, {"mc": types.SimpleNamespace()}) is True
    assert E.evaluate(e, {"mc": types.SimpleNamespace(head_type="GATED")}) is False
    assert E.simplify(E.parse("str.lower(str('RNN'))")) == E.Const("rnn")


def test_no_eval_on_hostile_text():
    with pytest.raises(E.ParseError):
        E.parse("__import__('os').system('true')")
    with pytest.raises(E.EvalError):
        E.evaluate(E.Call("open", (E.Const("/etc/passwd"),)), {})


def test_unknown_survives_and_is_listed():
    e = E.simplify(E.BinOp("*", E.Unknown("call of f"), mc("x")))
    assert [u.why for u in E.unknowns(e)] == ["call of f"]


def test_printing_respects_precedence():
    assert E.to_source(E.BinOp("-", mc("a"), E.BinOp("-", mc("b"), mc("c")))) == "mc.a - (mc.b - mc.c)"
    assert E.to_source(E.BinOp("**", E.neg(mc("a")), E.Const(2))) == "(-mc.a) ** 2"
    assert E.to_source(E.BoolOp("or", mc("a"), E.BoolOp("or", mc("b"), mc("c")))) == "mc.a or (mc.b or mc.c)"


# -- properties ---------------------------------------------------------------

leaves = st.one_of(
    st.integers(min_value=-20, max_value=20).map(E.Const),
    st.sampled_from(KEYS).map(mc),
    st.sampled_from(KEYS).map(lambda k: E.GetAttr(E.Name("mc"), k, E.Const(7))),
    st.sampled_from(["tp_size", "dp_size", "ep_size"]).map(lambda k: E.attr_path("sc", k)),
    st.just(E.NONE),
    st.booleans().map(E.Const),
)


def _extend(children):
    arith = st.builds(E.BinOp, st.sampled_from(["+", "-", "*", "//", "%"]), children, children)
    return st.one_of(
        arith,
        st.builds(E.Compare, st.sampled_from(["==", "!=", "<", "<=", ">", ">=", "is", "is not"]), children, children),
        st.builds(E.BoolOp, st.sampled_from(["and", "or"]), children, children),
        st.builds(E.IfExp, children, children, children),
        st.builds(lambda a, b: E.Call("max", (a, b)), children, children),
        st.builds(lambda a, b: E.Call("min", (a, b)), children, children),
        st.builds(E.UnaryOp, st.just("not"), children),
        children.map(E.neg),
        st.builds(lambda n, p: E.CountIf("i", n, p), children,
                  children.map(lambda c: E.Compare(">=", E.Name("i"), c))),
    )


exprs = st.recursive(leaves, _extend, max_leaves=12)
configs = st.fixed_dictionaries({k: st.integers(min_value=1, max_value=4096) for k in KEYS})
schedules = st.fixed_dictionaries({k: st.integers(min_value=1, max_value=16)
                                   for k in ("tp_size", "dp_size", "ep_size")})


def _value(e, env):
    try:
        v = E.evaluate(e, env)
    except (E.EvalError, RecursionError):
        return "error"
    return v


@settings(max_examples=400, deadline=None)
@given(exprs, configs, schedules)
def test_simplify_never_changes_a_value(e, config, sched):
    env = {"mc": config, "sc": sched}
    before = _value(e, env)
    assume(before != "error")
    assume(not isinstance(before, int) or abs(before) < 2**60)
    after = _value(E.simplify(e), env)
    assert after == before
    assert type(after) is type(before) or {type(after), type(before)} <= {int, bool}


@settings(max_examples=400, deadline=None)
@given(exprs)
def test_print_then_parse_is_identity(e):
    assert E.parse(E.to_source(e)) == e


@settings(max_examples=200, deadline=None)
@given(exprs)
def test_simplified_expressions_also_round_trip(e):
    s = E.simplify(e)
    assert E.parse(E.to_source(s)) == s


# -- readable forms (astgen.emit.tidy: printing only) ------------------------------

@settings(max_examples=400, deadline=None)
@given(exprs, configs, schedules)
def test_tidy_never_changes_a_value_on_integer_configs(e, config, sched):
    """tidy's rewrites (x // 1, sum((a, b)), `is None` of a number, ...) keep
    every value a config of integer sizes gives; as a condition, the truth."""
    env = {"mc": config, "sc": sched}
    before = _value(e, env)
    assume(before != "error")
    assume(not isinstance(before, int) or abs(before) < 2**60)
    assert _value(tidy(e), env) == before
    assert bool(_value(tidy_condition(e), env)) == bool(before)


@settings(max_examples=200, deadline=None)
@given(exprs, exprs, configs, schedules)
def test_given_decides_only_what_the_fact_settles(e, fact, config, sched):
    """Where the fact holds, ``given(e, fact)`` has e's value."""
    env = {"mc": config, "sc": sched}
    assume(_value(fact, env) not in ("error", None) and bool(_value(fact, env)))
    before = _value(e, env)
    assume(before != "error")
    assume(not isinstance(before, int) or abs(before) < 2**60)
    assert _value(tidy_given(e, fact), env) == before


def test_tidy_removes_identities_and_decides_none_tests():
    assert E.to_source(tidy(E.parse("(mc.a + 64 - 1) // 1 * 1 + 0"))) == "mc.a + 64 - 1"
    assert E.to_source(tidy(E.parse("sum((mc.a, mc.b, mc.c))"))) == "mc.a + mc.b + mc.c"
    assert E.to_source(tidy(E.parse("max(1, 4)"))) == "4"
    # a number is never None; `Y if (X or Y) is None else (X or Y)` is `X or Y`
    assert E.to_source(tidy(E.parse("mc.a if mc.b // 2 is None else 3"))) == "3"
    text = "mc.h if (getattr(mc, 'k', None) or mc.h) is None else getattr(mc, 'k', None) or mc.h"
    assert E.to_source(tidy(E.parse(text))) == "getattr(mc, 'k', None) or mc.h"
    # a float divided is not floored away
    assert E.to_source(tidy(E.parse("mc.a / 2 // 1"))) == "mc.a / 2 // 1"
    assert E.to_source(tidy_condition(E.parse("(1 if bool(sc.deepep or None) else 2) > 1 and False"))) == "False"
    # a key read where present, else a constant, is what getattr does; a default read from the config is not
    # (getattr would read it even where the key is present, and it may be absent)
    assert E.to_source(tidy(E.parse("mc.q if hasattr(mc, 'q') else None"))) == "getattr(mc, 'q', None)"
    assert E.to_source(tidy(E.parse("mc.q if hasattr(mc, 'q') else mc.r"))) == "mc.q if hasattr(mc, 'q') else mc.r"
    # `True if test else False` is the test where it is a bool (step3_vl.py:333); not where it is a value
    assert E.to_source(tidy(E.parse("True if i in mc.moe_layers else False"))) == "i in mc.moe_layers"
    assert E.to_source(tidy(E.parse("False if i < mc.n else True"))) == "not i < mc.n"
    assert E.to_source(tidy(E.parse("True if mc.k else False"))) == "True if mc.k else False"


@settings(max_examples=300, deadline=None)
@given(exprs, st.none() | st.integers(-3, 9), st.sampled_from(["is", "is not"]), configs, schedules)
def test_a_fallback_where_a_value_is_none_prints_as_coalesce_with_its_value(v, d, op, config, sched):
    """``d if v is None else v`` (``v if v is not None else d``) is the
    package's ``coalesce(v, d)`` when ``d`` cannot raise; the same value."""
    env = {"mc": config, "sc": sched}
    test = E.Compare(op, v, E.NONE)
    e = E.IfExp(test, E.Const(d), v) if op == "is" else E.IfExp(test, v, E.Const(d))
    before = _value(e, env)
    assume(before != "error")
    printed = coalesced(E.BinOp("+", E.Const(1), e))  # inside another expression too
    assert printed == E.BinOp("+", E.Const(1), E.Call("coalesce", (v, E.Const(d))))
    assert _value(printed.right, env) == before


def test_coalesce_takes_only_a_fallback_that_cannot_raise():
    """A local, a constant, or + - * of them (a config class's `if
    num_key_value_heads is None: num_key_value_heads = num_attention_heads`,
    configs/olmo3.py:82); a fallback that reads the config or divides stays
    behind its test, computed only when needed."""
    def printed(text):
        return E.to_source(coalesced(E.parse(text)))
    assert printed("heads if kv is None else kv") == "coalesce(kv, heads)"
    assert printed("mc.kv if mc.kv is not None else 2 * heads - 1") == "coalesce(mc.kv, 2 * heads - 1)"
    assert printed("(a if b is None else b) if kv is None else kv") == "coalesce(kv, coalesce(b, a))"
    for kept in ("mc.heads if kv is None else kv", "hidden // heads if head_dim is None else head_dim",
                 "heads if kv is None else other", "heads if kv == 0 else kv"):
        assert printed(kept) == E.to_source(E.parse(kept))


@settings(max_examples=200, deadline=None)
@given(exprs, exprs, exprs, configs, schedules)
def test_either_case_of_a_test_is_the_shared_part(a, b, c, config, sched):
    """``A and B and c or A and B and not c`` reads ``A and B`` as a
    condition (the rows DP attention gathers, whether or not it pads)."""
    shared = E.BoolOp("and", a, b)
    e = E.BoolOp("or", E.BoolOp("and", shared, c), E.BoolOp("and", shared, E.UnaryOp("not", c)))
    env = {"mc": config, "sc": sched}
    before = _value(e, env)
    assume(before != "error")
    assert bool(_value(tidy_condition(e), env)) == bool(before)


def test_either_case_drops_the_test_that_does_not_decide():
    text = "not sc.f and sc.dp_size > 1 and (is_decode and sc.deepep) or not sc.f and sc.dp_size > 1 " \
           "and not (is_decode and sc.deepep)"
    assert E.to_source(tidy_condition(E.parse(text))) == "not sc.f and sc.dp_size > 1"
    assert E.to_source(tidy_condition(E.parse("sc.a and sc.b or sc.c and not sc.b"))) == \
        "sc.a and sc.b or sc.c and not sc.b"


def test_a_selector_compared_with_a_bool_compares_as_python_does():
    """``(0 if c else 1) == (not 1)`` is ``c``: 0 == False in Python. The
    simplifier compared the constants as Const does (a bool is no int, for
    hashing) and folded it to False (found by hypothesis)."""
    c = E.attr_path("mc", "hidden_size")
    e = E.Compare("==", E.IfExp(c, E.Const(0), E.Const(1)), E.UnaryOp("not", E.Const(1)))
    for value in (0, 1, 7):
        env = {"mc": {"hidden_size": value}}
        assert E.evaluate(E.simplify(e), env) == E.evaluate(e, env)
        assert bool(E.evaluate(E.simplify_condition(e), env)) == bool(E.evaluate(e, env))


@settings(max_examples=300, deadline=None)
@given(exprs, st.lists(st.sampled_from([0, 1, 2, 7, "a", "DeepseekV3ForCausalLM", True, None]), min_size=2,
                       max_size=5), st.booleans(), exprs, configs, schedules)
def test_tests_of_one_value_against_constants_read_as_one_membership_test(x, consts, negated, rest, config, sched):
    """``x == a or x == b or rest`` is ``x in (a, b) or rest`` and ``x != a
    and x != b`` is ``x not in (a, b)`` (the tracer spells out sglang's
    ``_hf_arch(config) in (...)``, model_config.py:191-212): the same value,
    and ``x`` written once."""
    op, joiner, member = ("!=", "and", "not in") if negated else ("==", "or", "in")
    e = E.Compare(op, x, E.Const(consts[0]))
    for c in consts[1:]:
        e = E.BoolOp(joiner, e, E.Compare(op, x, E.Const(c)))
    e = E.BoolOp(joiner, e, rest)
    env = {"mc": config, "sc": sched}
    before = _value(e, env)
    assume(before != "error")
    after = tidy(e)
    assert _value(after, env) == before
    tests = [n for n in E.walk(after) if isinstance(n, E.Compare) and n.op == member and isinstance(n.right, E.Tuple)
             and all(isinstance(i, E.Const) for i in n.right.items)]
    assert tests or isinstance(tidy(x), E.Const) or E.simplify(e) != e  # folded, unless simplify decided it


def test_a_membership_test_keeps_its_constants_in_order_and_leaves_other_tests_alone():
    text = "mc.a == 'X' or mc.a == 'Y' or mc.a == 'X' or mc.b == 1 or mc.a == 'Z'"
    assert E.to_source(tidy(E.parse(text))) == "mc.a in ('X', 'Y') or mc.b == 1 or mc.a == 'Z'"
    assert E.to_source(tidy(E.parse("mc.a != 1 and mc.a != 2"))) == "mc.a not in (1, 2)"
    assert E.to_source(tidy(E.parse("mc.a == 1 or mc.a == mc.b"))) == "mc.a == 1 or mc.a == mc.b"


_SMALL = st.sampled_from([0, 1, 2, True, False, "a", "b", None])


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["==", "!=", "not in"]), st.lists(_SMALL, min_size=1, max_size=3)),
                min_size=1, max_size=4), _SMALL, st.booleans())
def test_a_test_an_equality_settles_is_dropped_only_where_the_truth_is_kept(tests, value, flag):
    """``t != "a" and t == "b"`` (an elif's guard) reads ``t == "b"``; Python
    compares 1 and True equal, so ``t != 1 and t == True`` keeps both."""
    t = E.attr_path("mc", "t")
    conds = [E.Compare(op, t, E.Tuple(tuple(E.Const(c) for c in cs)) if op == "not in" else E.Const(cs[0]))
             for op, cs in tests]
    e = E.attr_path("sc", "flag")
    for c in conds:
        e = E.BoolOp("and", e, c)
    env = {"mc": {"t": value}, "sc": {"flag": flag}}
    assert bool(_value(tidy_condition(e), env)) == bool(_value(e, env))


def test_an_elif_guard_reads_as_its_own_test():
    assert E.to_source(tidy_condition(E.parse("mc.t != 'head_wise' and mc.t == 'element_wise'"))) == \
        "mc.t == 'element_wise'"
    assert E.to_source(tidy_condition(E.parse("mc.t != 1 and mc.t == True"))) == "mc.t != 1 and mc.t == True"
