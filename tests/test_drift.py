"""Drift one can act on (astgen.compare.drift, check, diff, validate's report): the
smallest subexpression that changed, a change of form told from a change of
value, the values before and after at a known config, one line for one
change seen in several entries, JSON for CI; validate's repeated exclusions
as one line.

The expected numbers are worked out by hand in the comments, not read back
from astgen.
"""

from __future__ import annotations

import json
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from astgen.compare import drift as D
from astgen import expr as E
from astgen.compare.check import Change
from astgen.cli import main
from astgen.validate.compare import AGREE, LayerRow, Validation, group_repeats, render_text
from tests.helpers import FIXTURES

# the fixture's attention reads its KV heads here (dense.py:35); its
# QKVParallelLinear is built at dense.py:40
KV_LINE = ('        self.total_num_kv_heads = getattr(config, "num_key_value_heads", None) '
           'or config.num_attention_heads\n')
KV_DOUBLED = ('        self.total_num_kv_heads = (getattr(config, "num_key_value_heads", None) '
              'or config.num_attention_heads) * 2\n')
# a made-up checkpoint of the fixture's DenseForCausalLM: 32 heads of 128, 8 KV heads
DENSE_7B = {"architectures": ["DenseForCausalLM"], "model_type": "llama", "hidden_size": 4096,
            "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128, "intermediate_size": 11008,
            "num_hidden_layers": 4, "vocab_size": 1000}
# every entry of the sample tree built on dense.py's attention
DENSE_USERS = ["BomForSequenceClassification", "DenseForCausalLM", "HybridForCausalLM", "InheritForCausalLM",
               "KMoeForCausalLM", "PatchVLForConditionalGeneration", "ReexportForCausalLM"]


@pytest.fixture(autouse=True)
def no_hf_cache(tmp_path, monkeypatch):
    """Only the configs a test passes: never the machine's Hugging Face cache."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "no-hf-cache"))


def parse(text: str) -> E.Expr:
    return E.parse(text)


def sub(old: str, new: str) -> tuple[str, str]:
    a, b = D.smallest_change(parse(old), parse(new))
    return E.to_source(a), E.to_source(b)


def field_change(old: str, new: str, field: str = "n", entry: str = "DenseForCausalLM") -> Change:
    return Change("dense_model_arch.py", entry, "changed", "qkv_proj", field, old, new, "dense.py:40")


def known(*configs: dict) -> list[D.KnownConfig]:
    return [D.KnownConfig(f"config-{i}", None, c) for i, c in enumerate(configs)]


# ----------------------------------------------------------------------------
# the smallest change


@pytest.mark.parametrize("old, new, expected", [
    # the head count alone, not the division around it
    ("mc.num_attention_heads // sc.tp_size", "mc.num_attention_heads * 2 // sc.tp_size",
     ("mc.num_attention_heads", "mc.num_attention_heads * 2")),
    # one change made in two places is one change
    ("max(1, mc.kv // sc.tp_size) + (mc.h if mc.kv is None else mc.kv)",
     "max(1, mc.kv * 2 // sc.tp_size) + (mc.h if mc.kv * 2 is None else mc.kv * 2)", ("mc.kv", "mc.kv * 2")),
    # two different changes: the smallest node holding both
    ("mc.a + mc.b", "mc.c + mc.d", ("mc.a + mc.b", "mc.c + mc.d")),
    # a tuple is shown with the call it is an argument of
    ("sum((mc.a, mc.a)) // 2", "sum((mc.a, mc.a, mc.a)) // 2", ("sum((mc.a, mc.a))", "sum((mc.a, mc.a, mc.a))")),
    # a change of form beside it (sc.tp_size is never None) is no part of it
    ("mc.a // (sc.tp_size if sc.tp_size is not None else 1) + mc.b", "mc.a // sc.tp_size + mc.b * 2",
     ("mc.b", "mc.b * 2")),
])
def test_smallest_change(old, new, expected):
    assert sub(old, new) == expected


LEAVES = st.one_of(
    st.sampled_from(["hidden_size", "num_attention_heads", "num_key_value_heads"]).map(
        lambda k: E.attr_path("mc", k)),
    st.sampled_from(["tp_size", "dp_size"]).map(lambda k: E.attr_path("sc", k)),
    st.sampled_from(["head_dim", "rope_dim"]).map(lambda k: E.GetAttr(E.Name("mc"), k, E.NONE)),
    st.integers(2, 64).map(E.Const),
)
EXPRS = st.recursive(LEAVES, lambda kids: st.one_of(
    st.tuples(st.sampled_from(["+", "-", "*", "//"]), kids, kids).map(lambda t: E.BinOp(*t)),
    st.tuples(st.sampled_from(["max", "min"]), kids, kids).map(lambda t: E.Call(t[0], t[1:])),
), max_leaves=12)


def _subtrees(e: E.Expr, path: tuple = ()):
    yield path, e
    for i, c in enumerate(e.children()):
        yield from _subtrees(c, path + (i,))


def _replace(e: E.Expr, path: tuple, by: E.Expr) -> E.Expr:
    if not path:
        return by
    kids = list(e.children())
    kids[path[0]] = _replace(kids[path[0]], path[1:], by)
    return E.rebuild(e, kids)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EXPRS, st.data())
def test_the_smallest_change_is_the_one_subtree_replaced(old, data):
    path, replaced = data.draw(st.sampled_from(list(_subtrees(old))))
    fresh = E.Name("changed")
    new = _replace(old, path, fresh)
    assert D.smallest_change(old, new) == (replaced, fresh)


# ----------------------------------------------------------------------------
# canonical forms, and what is a change of value


@pytest.mark.parametrize("text, expected", [
    ("sum((mc.a, mc.b, mc.c))", "mc.a + mc.b + mc.c"),
    # LLMSim's schedule fields are always set
    ("mc.a // (sc.tp_size if sc.tp_size is not None else sc.tp_size * sc.dp_size)", "mc.a // sc.tp_size"),
    # only the test's truth matters
    ("1 if bool(sc.deepep or None) else sc.tp_size", "1 if sc.deepep else sc.tp_size"),
    # no config known: a getattr stays
    ("getattr(mc, 'head_dim', None) or 64", "getattr(mc, 'head_dim', None) or 64"),
])
def test_canonical_forms(text, expected):
    assert E.to_source(D.canonical(parse(text))) == expected


def test_canonical_getattr_and_hasattr_at_the_known_configs():
    e = parse("(getattr(mc, 'head_dim', None) or 64) if hasattr(mc, 'head_dim') else 32")
    with_key = D.presence(known({"head_dim": 128}, {"head_dim": None}))
    without = D.presence(known({"hidden_size": 1}))
    disagree = D.presence(known({"head_dim": 128}, {}))
    assert E.to_source(D.canonical(e, with_key)) == "mc.head_dim or 64"
    assert E.to_source(D.canonical(e, without)) == "32"
    assert D.canonical(e, disagree) == E.simplify(e)


def test_a_getattr_against_a_plain_read_is_form_only_where_a_config_or_the_old_text_says_the_key_is_there():
    to_plain = field_change("getattr(mc, 'x', 4) * 2", "mc.x * 2")
    # no config: the new text fails where the old one gave 4 * 2, so it cannot be told from a
    # change; at a config that has x they are one value
    assert D.compare_field(to_plain, []).verdict == D.VALUE
    assert D.compare_field(to_plain, known({"x": 3})).verdict == D.FORM
    # the other way, the old text needs x: wherever it had a value, the new one has the same
    assert D.compare_field(field_change("mc.x * 2", "getattr(mc, 'x', 4) * 2"), []).verdict == D.FORM


def test_the_same_value_at_every_sample_point_is_not_a_change_of_value():
    # a schedule-only rewrite: sampled at every schedule, no config needed
    old = "mc.i // ((1 if sc.deepep or None else None) if (1 if sc.deepep or None else None) is not None " \
          "else sc.tp_size * sc.dp_size)"
    new = "mc.i // (1 if bool(sc.deepep or None or False) else sc.tp_size * sc.dp_size)"
    assert D.compare_field(field_change(old, new), []).verdict == D.SAME_VALUES
    # while sc.tp_size * sc.dp_size -> sc.tp_size differs at tp 4 dp 2
    assert D.compare_field(field_change("mc.i // (sc.tp_size * sc.dp_size)", "mc.i // sc.tp_size"),
                           []).verdict == D.VALUE
    # a guard that only matters for a config nobody passed is the same at the known ones: a sample,
    # not a proof (check still calls such a module stale)
    guard = field_change("mc.n_shared_experts is not None",
                         "mc.n_shared_experts is not None and mc.n_shared_experts > 0", field="guard")
    assert D.compare_field(guard, known({"n_shared_experts": 1})).verdict == D.SAME_VALUES
    assert D.compare_field(guard, known({"n_shared_experts": 1}, {"n_shared_experts": 0})).verdict == D.VALUE


def test_values_at_a_known_config_are_shown_where_they_differ():
    # Qwen3-8B's qkv_proj n at tp 8: 32 // 8 * 128 + max(1, 8 // 8) * (128 + 128) = 512 + 256 = 768;
    # with the KV heads doubled: 512 + max(1, 16 // 8) * 256 = 1024
    old = "mc.num_attention_heads // sc.tp_size * mc.head_dim + max(1, mc.num_key_value_heads // sc.tp_size) " \
          "* (mc.head_dim + mc.head_dim)"
    new = old.replace("mc.num_key_value_heads", "mc.num_key_value_heads * 2")
    qwen3_8b = [D.KnownConfig("Qwen3-8B", None, {"num_attention_heads": 32, "num_key_value_heads": 8,
                                                  "head_dim": 128})]
    d = D.compare_field(field_change(old, new, entry="Qwen3ForCausalLM"), qwen3_8b)
    assert (d.verdict, d.old_sub, d.new_sub) == (D.VALUE, "mc.num_key_value_heads", "mc.num_key_value_heads * 2")
    assert [v.render("qkv_proj n") for v in d.values] == ["Qwen3-8B, tp 8: qkv_proj n 768 -> 1024"]
    # the same at tp 8 (extend 4096 // 8 = 512, decode 16 // 8 = 2, times 9 - 8 = 1) but not at
    # tp 1: the first sampled schedule where it differs is named (extend: 4096 -> 4096 * 8)
    d = D.compare_field(field_change("seq_len // sc.tp_size * mc.a", "seq_len // sc.tp_size * mc.a * "
                                     "(9 - sc.tp_size)"), known({"a": 1}))
    assert [v.render("m") for v in d.values] == ["config-0, tp 1: m 4096 -> 32768"]


def test_a_value_that_does_not_evaluate_is_left_out_without_a_crash():
    d = D.compare_field(field_change("mc.a", "mc.a * 2"), known({"b": 1}))
    assert (d.verdict, d.values) == (D.VALUE, ())
    d = D.compare_field(field_change("mc.a // (", "mc.a"), known({"a": 1}))  # not an expression
    assert (d.verdict, d.old_sub, d.values) == (D.VALUE, "mc.a // (", ())


def test_one_change_read_through_another_config_object_is_one_group():
    full = "mc.h // sc.tp_size * 128 + max(1, mc.kv // sc.tp_size) * 256"
    nested = full.replace("mc.", "mc.text_config.")

    def doubled(text: str, entry: str, at: str = "qwen3.py:196") -> D.FieldDrift:
        change = Change("m.py", entry, "changed", "qkv_proj", "n", text, text.replace(".kv", ".kv * 2"), at)
        return D.compare_field(change, [])

    groups = D.group([doubled(full, "Qwen3ForCausalLM"), doubled(nested, "Qwen3VLForConditionalGeneration"),
                      doubled(full, "OtherForCausalLM", at="other.py:9")])
    assert [g.render() for g in groups] == [
        "qwen3.py:196: drift: qkv_proj n in 2 entries (Qwen3ForCausalLM, Qwen3VLForConditionalGeneration): "
        "mc.kv -> mc.kv * 2 (read from mc.text_config in 1 of them)",
        "other.py:9: drift: OtherForCausalLM.qkv_proj n: mc.kv -> mc.kv * 2",
    ]


# ----------------------------------------------------------------------------
# astgen check on a copy of the sample tree


def _tree(tmp_path):
    tree, out, configs = tmp_path / "tree", tmp_path / "out", tmp_path / "configs"
    shutil.copytree(FIXTURES, tree)
    assert main(["gen", str(tree), "-o", str(out), "-q", "--no-cache"]) == 0
    configs.mkdir()
    (configs / "acme__Dense-7B.json").write_text(json.dumps(DENSE_7B))
    return tree, out, configs


def _edit(path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def _check(tree, out, *extra):
    return main(["check", str(tree), "--against", str(out), "--no-cache", "-j", "1", *extra])


def test_config_index_reads_its_directories_when_first_asked(tmp_path):
    """A check with no changed value reads no config: the index reads its
    directories at the first lookup, a name seen twice kept once."""
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (first / "Org__Small.json").write_text(json.dumps({"architectures": ["XForCausalLM"], "n": 1}))
    (second / "Small").mkdir()
    (second / "Small" / "config.json").write_text(json.dumps({"architectures": ["XForCausalLM"], "n": 2}))
    (second / "Other.json").write_text(json.dumps({"architectures": ["XForCausalLM", "YModel"], "n": 3}))
    index = D.ConfigIndex([first, second])
    (second / "Other.json").write_text(json.dumps({"architectures": ["YModel"], "n": 4}))  # before any lookup
    assert [(c.name, c.config["n"]) for c in index.of("XForCausalLM")] == [("Small", 1)]
    assert [(c.name, c.config["n"]) for c in index.of("YModel")] == [("Other", 4)]


def test_doubled_kv_heads_are_one_line_for_every_user_of_the_attention(tmp_path, capsys):
    tree, out, configs = _tree(tmp_path)
    _edit(tree / "dense.py", KV_LINE, KV_DOUBLED)
    capsys.readouterr()
    assert _check(tree, out, "--configs", str(configs)) == 1
    kv = "getattr(mc, 'num_key_value_heads', None) or mc.num_attention_heads"
    # Dense-7B at tp 8 (LLMSim's attention TP is sc.tp_size * sc.dp_size = 8):
    # q 32 // 8 * 128 = 512, k and v max(1, 8 // 8) * (128 + 128) = 256: 768;
    # doubled, max(1, 16 // 8) * 256 = 512: 1024
    assert capsys.readouterr().out.splitlines() == [
        f"dense.py:40: drift: qkv_proj n in 7 entries (BomForSequenceClassification, DenseForCausalLM, "
        f"HybridForCausalLM, InheritForCausalLM, ... (+3 more)): {kv} -> ({kv}) * 2 "
        "(Dense-7B, tp 8: qkv_proj n 768 -> 1024)",
        f"check: 9 modules against {out}: 7 drifted",
    ]


def test_check_json_has_the_schema_the_subexpressions_values_and_groups(tmp_path, capsys):
    tree, out, configs = _tree(tmp_path)
    _edit(tree / "dense.py", KV_LINE, KV_DOUBLED)
    report = tmp_path / "check.json"
    assert _check(tree, out, "--configs", str(configs), "--report", str(report)) == 1
    assert capsys.readouterr().out == ""
    data = json.loads(report.read_text())
    assert data["schema"] == "astgen.check/1"
    assert data["summary"] == {"modules": 9, "clean": 2, "stale": 0, "drifted": 7, "value_changes": 7,
                               "form_only": 0, "operators_added": 0, "operators_removed": 0, "groups": 1}
    kv = "getattr(mc, 'num_key_value_heads', None) or mc.num_attention_heads"
    [group] = data["groups"]
    assert {k: group[k] for k in ("id", "at", "what", "operator", "field", "from_sub", "to_sub", "count",
                                  "entries", "values")} == {
        "id": 0, "at": "dense.py:40", "what": "changed", "operator": "qkv_proj", "field": "n",
        "from_sub": kv, "to_sub": f"({kv}) * 2", "count": 7, "entries": DENSE_USERS,
        "values": [{"config": "Dense-7B", "schedule": "tp 8", "from": 768, "to": 1024}]}
    dense = next(m for m in data["modules"] if m["module"] == "dense_model_arch.py")
    [change] = dense["changes"]
    assert dense["status"] == "drifted" and change["group"] == 0 and change["verdict"] == "value"
    assert change["from"].count(kv) == 2 and change["to"].count(f"({kv}) * 2") == 2  # the full texts
    assert [m["status"] for m in data["modules"]].count("clean") == 2


def test_a_change_of_form_only_is_stale_not_drift(tmp_path, capsys):
    tree, out, _ = _tree(tmp_path)
    # the same value wherever the committed text had one (it needed the key)
    _edit(tree / "dense.py", "        self.total_num_heads = config.num_attention_heads\n",
          '        self.total_num_heads = getattr(config, "num_attention_heads", 32)\n')
    capsys.readouterr()
    assert _check(tree, out) == 1  # stale: --update is due
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == f"check: 9 modules against {out}: 7 stale, 0 drifted"
    assert lines[0] == ("bom_model_arch.py: stale: 6 operator field(s) changed form only, no value "
                        "(6 of the same canonical form; regenerate with --update)")
    assert all(": stale: 6 operator field(s) changed form only" in line for line in lines[:-1])
    assert _check(tree, out, "--update") == 0
    capsys.readouterr()
    assert _check(tree, out) == 0


# ----------------------------------------------------------------------------
# astgen diff: a change of form is not a change


def test_diff_counts_a_change_of_form_apart_at_a_config_that_has_the_key(tmp_path, capsys):
    old, new, configs = tmp_path / "old", tmp_path / "new", tmp_path / "configs"
    for d in (old, new, configs):
        d.mkdir()
    shutil.copy(FIXTURES / "dense.py", new / "dense.py")
    shutil.copy(FIXTURES / "dense.py", old / "dense.py")
    _edit(old / "dense.py", "        self.total_num_heads = config.num_attention_heads\n",
          '        self.total_num_heads = getattr(config, "num_attention_heads", None)\n')
    (configs / "acme__Dense-7B.json").write_text(json.dumps(DENSE_7B))
    report = tmp_path / "d.json"
    args = ["diff", "--from", str(old), "--to", str(new), "-q", "--no-cache", "--report", str(report)]
    # without a config, getattr(mc, 'num_attention_heads', None) -> mc.num_attention_heads cannot be
    # told from a change (the new text fails where the old one gave None) ...
    assert main(args) == 0
    data = json.loads(report.read_text())
    assert data["summary"]["fields_changed"] == 5 and data["form_only"]["fields"] == 1
    assert {(g["from_sub"], g["to_sub"]) for g in data["groups"]} == {
        ("getattr(mc, 'num_attention_heads', None)", "mc.num_attention_heads")}
    # ... at a config that has the key it is one value in two forms
    assert main(args + ["--configs", str(configs)]) == 0
    data = json.loads(report.read_text())
    assert data["summary"]["fields_changed"] == 0 and data["changed"] == [] and data["groups"] == []
    assert data["summary"]["unchanged"] == 1
    assert {k: data["form_only"][k] for k in ("fields", "by_form", "by_values")} == {
        "fields": 6, "by_form": 6, "by_values": 0}
    capsys.readouterr()
    assert main(args[:-2] + ["--configs", str(configs)]) == 0
    text = capsys.readouterr().out
    assert "0 shape or layer-count changes (0 distinct). Not listed: 6 field change(s) of form only " \
           "(6 of the same canonical form, 0 of the same value at every known config and sampled " \
           "schedule)." in text
    assert "## Changed" not in text


# ----------------------------------------------------------------------------
# validate: repeated exclusions as one line


ALT = "astgen: model.layers.{}.self_attn.alt_stream (Stream): the same module as model.alt_stream (tied)"
BIAS = ("astgen: model.layers.{}.mlp.gate.e_score_correction_bias (Parameter): bias (left out on both sides; "
        "stacked expert biases are 2-D)")


def test_group_repeats_abstracts_the_layer_index():
    lines = (["astgen: model.embed_tokens (VocabParallelEmbedding): embedding"]
             + [line.format(i) for i in range(78) for line in ([ALT] if i < 3 else [ALT, BIAS])]
             + ["astgen: model.layers.5.mlp.shared (X): once",
                "oracle: 78 parameter(s), bias: model.layers.0.k.bias, model.layers.1.k.bias and 76 more"])
    assert group_repeats(lines) == [
        "astgen: model.embed_tokens (VocabParallelEmbedding): embedding",
        "(x78) " + ALT.format("{0..77}"),
        "(x75) " + BIAS.format("{3..77}"),
        "astgen: model.layers.5.mlp.shared (X): once",
        "oracle: 78 parameter(s), bias: model.layers.0.k.bias, model.layers.1.k.bias and 76 more",
    ]
    # indices with gaps: the runs
    assert group_repeats([ALT.format(i) for i in (0, 1, 2, 5, 7, 8)]) == ["(x6) " + ALT.format("{0..2,5,7..8}")]


def test_validate_report_groups_exclusions_and_json_keeps_the_full_list():
    excluded = [ALT.format(i) for i in range(4)]
    v = Validation("XForCausalLM", "transformers X", "x.json", status=AGREE, source="x.py", stack="model.layers",
                   oracle_stack="model.layers", layers=[LayerRow(i, 1, 1) for i in range(4)], excluded=excluded)
    text = render_text(v)
    assert "excluded from the comparison:\n  - (x4) " + ALT.format("{0..3}") + "\n\n" in text
    from astgen.validate.compare import render_json
    result = json.loads(render_json([v]))["results"][0]
    assert result["excluded"] == excluded
    assert result["excluded_grouped"] == ["(x4) " + ALT.format("{0..3}")]
