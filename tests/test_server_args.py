"""sglang's server arguments read from the source tree, and launch flags read
against them (astgen/server_args.py), then as switches of the emitted module."""

from __future__ import annotations

import types

import pytest

from astgen.cli import main
from astgen.frontend.server_args import NOT_LITERAL, ServerArgsError, parse_flags, read_server_args
from tests.helpers import generate, load_module

# sglang 0.5.23 style: arg_groups/fields/<namespace>.py, fields annotated
# A[type, help] or A[type, Arg(...)] (arg_utils.py:298-400 derives the flags)
PARALLEL = '''\
import msgspec
from typing import Literal, Optional
from sglang.srt.arg_groups.arg_utils import A, Arg, Derived


class Parallel(msgspec.Struct):
    """Namespace ``parallel``."""

    _NS_PATH = "parallel"

    tp_size: A[int, Arg(help="The tensor parallelism size.", aliases=["--tensor-parallel-size"])] = 1
    enable_dp_lm_head: A[bool, "Vocabulary parallel across the attention TP group."] = False
    enable_tp_lm_head_all_to_all: A[Optional[bool], "All-to-all LM head."] = None
    chunked_prefill_size: A[Optional[int], "Chunk size."] = None
    load_balance_method: A[Literal["round_robin", "shortest_queue"], "How to balance."] = "round_robin"
    hidden: A[int, Arg(help="not a flag", no_cli=True)] = 3
    attn_tp_rank: Derived = Derived()
    ratio: A[float, "A ratio."] = -0.5
    computed: A[int, "Computed default."] = DEFAULT_SIZE
'''

# sglang 0.4.6 / 0.5.8 style: one dataclass in server_args.py
FLAT = '''\
import dataclasses
from typing import Optional


@dataclasses.dataclass
class ServerArgs:
    model_path: str
    tp_size: int = 1
    enable_dp_attention: bool = False
    chunked_prefill_size: Optional[int] = None
    _private: int = 0
'''


def _fields_tree(root):
    fields = root / "sglang" / "srt" / "arg_groups" / "fields"
    fields.mkdir(parents=True)
    (fields / "parallel.py").write_text(PARALLEL)
    return root


def test_namespace_fields_are_read_with_flags_types_and_literal_defaults(tmp_path):
    spec = read_server_args(_fields_tree(tmp_path))
    assert spec.source == "sglang/srt/arg_groups/fields"
    assert sorted(spec.args) == ["chunked_prefill_size", "computed", "enable_dp_lm_head",
                                 "enable_tp_lm_head_all_to_all", "load_balance_method", "ratio", "tp_size"]
    tp = spec.args["tp_size"]
    assert (tp.namespace, tp.kind, tp.default, tp.flags) == ("parallel", "int", 1, ("--tp-size", "--tensor-parallel-size"))
    assert tp.where == "sglang/srt/arg_groups/fields/parallel.py:11"
    cps = spec.args["chunked_prefill_size"]
    assert (cps.kind, cps.optional, cps.default) == ("int", True, None)
    lb = spec.args["load_balance_method"]
    assert (lb.kind, lb.choices, lb.default) == ("str", ("round_robin", "shortest_queue"), "round_robin")
    assert spec.args["ratio"].default == -0.5
    assert spec.args["computed"].default is NOT_LITERAL  # a name: nothing is evaluated


def test_the_flat_dataclass_of_older_versions_is_read(tmp_path):
    srt = tmp_path / "sglang" / "srt"
    srt.mkdir(parents=True)
    (srt / "server_args.py").write_text(FLAT)
    spec = read_server_args(tmp_path)
    assert spec.source == "sglang/srt/server_args.py"
    assert {n: (a.kind, a.default, a.flags) for n, a in spec.args.items()} == {
        "model_path": ("str", None, ("--model-path",)),
        "tp_size": ("int", 1, ("--tp-size",)),
        "enable_dp_attention": ("bool", False, ("--enable-dp-attention",)),
        "chunked_prefill_size": ("int", None, ("--chunked-prefill-size",)),
    }


def test_launch_flags_are_read_as_sglang_reads_them(tmp_path):
    spec = read_server_args(_fields_tree(tmp_path))
    given = parse_flags(spec, "--enable-dp-lm-head --tensor-parallel-size 8 --chunked-prefill-size=4096 "
                              "--load-balance-method shortest_queue --ratio -1.5")
    assert given == {"enable_dp_lm_head": True, "tp_size": 8, "chunked_prefill_size": 4096,
                     "load_balance_method": "shortest_queue", "ratio": -1.5}
    assert parse_flags(spec, "--chunked-prefill-size None") == {"chunked_prefill_size": None}


@pytest.mark.parametrize("flags, message", [
    ("--enable-dp-lmhead", "has no flag --enable-dp-lmhead; did you mean --enable-dp-lm-head?"),
    ("--chunked-prefill-size x", "--chunked-prefill-size takes an int, got 'x'"),
    ("--load-balance-method random", "--load-balance-method 'random' is not one of round_robin, shortest_queue"),
    ("--tp-size", "--tp-size needs a value"),
    ("--enable-dp-lm-head=1", "--enable-dp-lm-head is a switch and takes no value"),
    ("8", "expected a flag, got '8'"),
    ("--hidden 3", "has no flag --hidden"),
])
def test_bad_flags_are_named(tmp_path, flags, message):
    spec = read_server_args(_fields_tree(tmp_path))
    with pytest.raises(ServerArgsError) as info:
        parse_flags(spec, flags)
    assert message in str(info.value)


@pytest.mark.corpus
def test_the_real_trees_declare_their_arguments(sglang_tree):
    """0.5.23 declares 522 arguments in 16 namespace structs; 0.5.8 and 0.4.6
    one ServerArgs dataclass (325 and 122 fields)."""
    counts = {}
    for version in ("0.4.6", "0.5.8", "0.5.23"):
        spec = read_server_args(sglang_tree(version).root)
        counts[version] = len(spec.args)
    assert counts == {"0.4.6": 122, "0.5.8": 325, "0.5.23": 522}
    spec = read_server_args(sglang_tree("0.5.23").root)
    dp_head = spec.args["enable_dp_lm_head"]
    assert (dp_head.namespace, dp_head.default, dp_head.where) == (
        "parallel", False, "sglang/srt/arg_groups/fields/parallel.py:199")
    assert spec.args["moe_a2a_backend"].choices[:2] == ("none", "deepep")


@pytest.mark.corpus
def test_unknown_flags_exit_2_with_the_closest_sglang_flag(sglang_tree, capsys, tmp_path):
    tree = sglang_tree("0.5.23")
    code = main(["gen", str(tree.models_dir / "qwen3.py"), "-o", str(tmp_path), "-q",
                 "--server-args=--enable-dp-lm-heads"])
    assert code == 2
    assert "has no flag --enable-dp-lm-heads; did you mean --enable-dp-lm-head?" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.corpus
def test_switches_are_one_table_a_schedule_field_overrides(sglang_tree):
    """Each server argument the traced code (or a helper it calls) tests is
    one entry of the module's SERVER_ARGS (what --server-args gave, else
    sglang's default), read as self.switch(NAME): an LLMSim schedule field of
    that name first; one sglang derives is computed from the others."""
    tree = sglang_tree("0.5.23")
    source = generate(tree, tree.models_dir / "qwen3.py", server_args="--enable-dp-lm-head").source
    assert '    "enable_dp_lm_head": True,  # --enable-dp-lm-head\n' in source
    assert '    "disaggregation_mode": "null",  # --disaggregation-mode (sglang\'s default)\n' in source
    assert '    "chunked_prefill_size": 8192,  # --chunked-prefill-size (sglang\'s derived default)\n' in source
    assert '        enable_dp_lm_head = self.switch("enable_dp_lm_head")\n' in source
    assert "server arguments --enable-dp-lm-head True; others at" in source  # the docstring
    module = load_module(source, "qwen3_switched")
    assert module.SERVER_ARGS["enable_dp_lm_head"] is True and module.SERVER_ARGS["chunked_prefill_size"] == 8192
    arch = module.Qwen3ForCausalLMArch.__new__(module.Qwen3ForCausalLMArch)
    arch.schedule_config = types.SimpleNamespace(tp_size=1, dp_size=8, disaggregation_mode="decode")
    assert arch.switch("enable_dp_lm_head") is True and arch.switch("disaggregation_mode") == "decode"
    # the TP LM-head all-to-all: decode node, pure DP, no DP LM head (arg_groups/overrides.py:1399-1418)
    assert arch.switch("enable_tp_lm_head_all_to_all") is False
    arch.schedule_config.enable_dp_lm_head = False
    assert arch.switch("enable_tp_lm_head_all_to_all") is True


def test_binding_twice_is_binding_once(tmp_path):
    """The CLI binds a tree's server arguments, and the scan binds again
    rules that came unbound: the second binding starts from the rules as
    read, so the digest (in every module header, read back by `check` and
    the pre-commit hook) is the same. It was not: the hook called every
    module stale."""
    from astgen.rules import bind_switches, load_rules

    spec = read_server_args(_fields_tree(tmp_path))
    once = bind_switches(load_rules(), spec, {"enable_dp_lm_head": True})
    again = bind_switches(once, spec, {"enable_dp_lm_head": True})
    assert again.digest == once.digest and again.unbound is once.unbound
    assert again.switch("enable_dp_lm_head") == once.switch("enable_dp_lm_head")
    assert bind_switches(once, spec, {}).digest != once.digest  # the values are in the digest


def test_the_spec_is_kept_by_the_content_of_its_files(tmp_path, monkeypatch):
    """With a cache directory the arguments are read once per content of the
    files declaring them (a warm scan parses none of them); an edit reads again."""
    from astgen.frontend import server_args

    root = _fields_tree(tmp_path / "tree")
    kept = tmp_path / "kept"
    first = read_server_args(root, kept)
    assert len(list((kept / "server_args").iterdir())) == 1
    monkeypatch.setattr(server_args, "_read", lambda _root: pytest.fail("read again"))
    assert read_server_args(root, kept) == first
    monkeypatch.undo()
    fields = root / "sglang" / "srt" / "arg_groups" / "fields" / "parallel.py"
    fields.write_text(PARALLEL.replace("= False\n", "= True\n", 1))
    edited = read_server_args(root, kept)
    assert edited.args["enable_dp_lm_head"].default is True and first.args["enable_dp_lm_head"].default is False
    assert len(list((kept / "server_args").iterdir())) == 2


# sglang's draft renames (configs/model_config.py, _config_draft_model in 0.5.23)
MODEL_CONFIG = '''\
class ModelConfig:
    def _config_draft_model(self):
        is_draft_model = self.is_draft_model
        if is_draft_model and self.hf_config.architectures[0] in [
            "DeepseekV3ForCausalLM",
            "DeepseekV32ForCausalLM",
        ]:
            self.hf_config.architectures[0] = "DeepseekV3ForCausalLMNextN"
        elif is_draft_model and self.hf_config.architectures[0] == "Qwen3NextForCausalLM":
            self.hf_config.architectures = ["Qwen3NextForCausalLMMTP"]
        if self.hf_config.architectures[0] == "LlamaForCausalLM":  # not a draft's test
            self.hf_config.architectures[0] = "RenamedForCausalLM"
'''


def test_draft_architectures_are_read_with_the_targets_they_are_built_from(tmp_path):
    """astgen/frontend/drafts.py: a rename under a test of is_draft_model
    makes a draft of every architecture the test compares with (`in [...]`
    and `==`, an elif too); a rename under any other test is no draft's."""
    from astgen.frontend.drafts import read_drafts

    path = tmp_path / "sglang" / "srt" / "configs" / "model_config.py"
    path.parent.mkdir(parents=True)
    path.write_text(MODEL_CONFIG)
    assert read_drafts(tmp_path) == {
        "DeepseekV3ForCausalLMNextN": ("DeepseekV3ForCausalLM", "DeepseekV32ForCausalLM"),
        "Qwen3NextForCausalLMMTP": ("Qwen3NextForCausalLM",)}
    path.write_text("def broken(:\n")
    assert read_drafts(tmp_path) == {}
