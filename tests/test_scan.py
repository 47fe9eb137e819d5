"""astgen scan on the sample tree: classification, status and reasons,
reports, the result cache, worker processes, progress lines, crash isolation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from astgen import expr as E
from astgen import scan as scan_module
from astgen.cache import ResultCache
from astgen.cli import main
from astgen.scan import ScanOptions, scan_files
from astgen.frontend.source import tree_of_dir
from tests.helpers import FIXTURES, RULES, build, fixture_result, load_module

BAD = Path(__file__).parent / "data" / "bad"


def classes_of(name: str):
    return fixture_result(name).classes


@pytest.mark.parametrize("name, category, backbone, head, features", [
    ("dense", "dense", "dense", "generative", ("gqa", "tied-embeddings")),
    ("inherit", "dense", "dense", "generative", ("gqa", "qk-norm")),
    ("reexport", "dense", "dense", "generative", ("gqa", "qk-norm")),
    ("moe_every_k", "moe", "moe", "generative", ("dense-then-moe", "gqa", "shared-experts")),
    ("mla", "mla", "mla", "generative", ("mla",)),
    ("bom", "non-generative", "dense", "classification", ("gqa",)),
    ("hybrid", "hybrid", "hybrid", "generative", ("gqa", "linear-attention")),
    ("multimodal", "multimodal", "dense", "generative", ("gqa", "tied-embeddings")),
])
def test_classification_comes_from_the_ir(name, category, backbone, head, features):
    [c] = classes_of(name)
    assert (c.category, c.backbone, c.head, c.features, c.status) == (category, backbone, head, features, "FULLY")


def test_multimodal_towers_are_listed_not_analyzed():
    result = fixture_result("multimodal")
    [c] = result.classes
    assert [(t.path, t.cls, t.location) for t in c.towers] == [
        ("visual", "PatchVisionModel", "multimodal.py:47"),
        ("projector", "PatchProjector", "multimodal.py:48"),
    ]
    notes = [d.render() for d in result.diagnostics if d.code == "tower"]
    assert notes == [
        "multimodal.py:47: note[tower]: multimodal tower visual (PatchVisionModel) is not analyzed; "
        "it holds unknown classes Conv2dLayer, VisionAttention",
        "multimodal.py:48: note[tower]: multimodal tower projector (PatchProjector) is not analyzed",
    ]
    # only the text backbone's operators: the dense fixture's, under language_model
    names = [op.name for op in result.shapes[0].operators]
    # (the embedding's shard sum; the LM head's DP gather, and its logits
    # all-gathered, or exchanged all-to-all on a pure-DP decode node)
    head = ["lm_head", "lm_head_dp_gather", "lm_head_all_gather", "lm_head_all_to_all"]
    assert names == ["embed_tokens_all_reduce", "qkv_proj", "o_proj", "o_proj_all_reduce", "attn_qk", "qkv",
                     "gate_up_proj", "down_proj", "down_proj_all_reduce", *head, *head]  # untied or tied
    assert all(op.path.startswith("language_model.") for op in result.shapes[0].operators)


HYBRID_CONFIG = {
    "hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2, "num_hidden_layers": 4,
    "vocab_size": 128, "linear_num_heads": 2, "linear_head_dim": 8,
    "layer_types": ["linear_attention", "attention", "linear_attention", "full_attention"],
    "intermediate_sizes": [96, 128, 160, 192],
}


def test_hybrid_layer_kinds_and_per_layer_widths_evaluate_exactly():
    result = fixture_result("hybrid")
    module = load_module(result.source, "hybrid_arch")
    arch = build(module, "HybridForCausalLM", HYBRID_CONFIG, tp=2)
    shapes = [(op.metadata.name, op.metadata.io_config.weight_shape.m, op.metadata.io_config.weight_shape.n,
               op.metadata.num_layers) for op in arch.operators]
    # two linear-attention layers (in: 3 x 16 / tp, out), two attention layers
    assert ("in", 64, 24, 2) in shapes and ("out", 8, 64, 2) in shapes
    assert ("qkv_proj", 64, 2 * 16 + 1 * 32, 2) in shapes
    # one gate_up/down pair per layer, each with that layer's width over tp=2
    assert [s for s in shapes if s[0] == "gate_up_proj"] == [
        ("gate_up_proj", 64, w, 1) for w in (96, 128, 160, 192)]
    assert [s for s in shapes if s[0] == "down_proj"] == [
        ("down_proj", w // 2, 64, 1) for w in (96, 128, 160, 192)]
    # the KV cache counts the two attention layers only: 2 x (2 kv heads x 16 x 2) x bf16
    assert arch.get_kv_cache() == 2 * 2 * 16 * 2 * 2


def test_unknown_layer_makes_an_entry_partial_with_a_reason(tmp_path):
    shutil.copy(BAD / "unknown_layer.py", tmp_path / "unknown_layer.py")
    report = tmp_path / "r.json"
    assert main(["scan", str(tmp_path), "--report", str(report), "-q", "--no-cache"]) == 1
    data = json.loads(report.read_text())
    [entry] = data["entries"]
    assert entry["status"] == "PARTIALLY"
    assert entry["reasons"][0]["code"] == "unknown-layer"
    assert entry["reasons"][0]["subject"] == "FancyMixer"
    assert entry["reasons"][0]["location"].startswith("unknown_layer.py:")
    assert data["top_reasons"][0]["subject"] == "FancyMixer"


# ----------------------------------------------------------------------------
# the command on the sample tree


def test_scan_sample_tree_report_and_modules(tmp_path):
    report = tmp_path / "report.json"
    code = main(["scan", "-o", str(tmp_path / "out"), "--report", str(report), "-q",
                 "--cache-dir", str(tmp_path / "cache"), "-j", "1"])
    assert code == 0
    data = json.loads(report.read_text())
    assert data["schema"] == "astgen.scan/1"
    assert data["summary"]["by_status"] == {"FULLY": 9, "PARTIALLY": 0, "NOT_SUPPORTED": 0}
    assert data["summary"]["by_category"] == {
        "dense": 4, "moe": 1, "mla": 1, "mla+moe": 0, "hybrid": 1, "multimodal": 1, "non-generative": 1}
    assert data["summary"]["causal_lm"] == {"entries": 7, "fully": 7, "percent": 100.0}
    assert [f["module"] for f in data["files"]] == [
        "bom_model_arch.py", "dense_model_arch.py", "hybrid_model_arch.py", "inherit_model_arch.py",
        "layer_types_model_arch.py", "mla_model_arch.py", "moe_every_k_model_arch.py", "multimodal_model_arch.py",
        "reexport_model_arch.py"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        ["__init__.py", "_astgen.py", *(f["module"] for f in data["files"]),
         *(f["module"].replace(".py", ".ops.jsonl") for f in data["files"])])


def test_scan_markdown_is_identical_across_runs_and_from_the_cache(tmp_path):
    args = ["scan", "-q", "--cache-dir", str(tmp_path / "cache"), "-j", "1", "--format", "md"]
    assert main(args + ["--report", str(tmp_path / "a.md")]) == 0
    assert main(args + ["--report", str(tmp_path / "b.md")]) == 0  # served from the cache
    assert main(["scan", "-q", "--no-cache", "--report", str(tmp_path / "c.md")]) == 0
    a = (tmp_path / "a.md").read_bytes()
    assert a == (tmp_path / "b.md").read_bytes() == (tmp_path / "c.md").read_bytes()
    text = a.decode()
    assert "| HybridForCausalLM | hybrid.py | FULLY | 16 | gqa, linear-attention |  |" in text
    assert "| PatchVLForConditionalGeneration | multimodal.py | FULLY | 17 | gqa, tied-embeddings, " \
           "towers: visual, projector |  |" in text


def test_plain_progress_lines_when_not_a_terminal(tmp_path, capsys):
    assert main(["scan", "--no-cache", "-j", "1", "--report", str(tmp_path / "r.md")]) == 0
    err = capsys.readouterr().err.splitlines()
    lines = [line for line in err if line.startswith("scan: [")]
    assert [line.split("] ")[0] for line in lines] == [f"scan: [{i}/9" for i in range(1, 10)]
    assert sorted(line.split("] ")[1] for line in lines) == [
        f"{name}.py: FULLY 1" for name in ("bom", "dense", "hybrid", "inherit", "layer_types", "mla", "moe_every_k",
                                           "multimodal", "reexport")]
    assert err[-1] == ("scanned 9 files, 9 entry classes: FULLY 9, PARTIALLY 0, NOT_SUPPORTED 0; "
                       "*ForCausalLM fully supported 7/7 (100.0%); 0 modules written")


def test_two_worker_processes_give_the_same_report(tmp_path):
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    assert main(["scan", "-q", "--no-cache", "-j", "1", "--report", str(one)]) == 0
    assert main(["scan", "-q", "--no-cache", "-j", "2", "--report", str(two)]) == 0
    assert one.read_bytes() == two.read_bytes()


def test_a_crash_in_one_file_is_reported_and_the_scan_goes_on(tmp_path, monkeypatch):
    original = scan_module.analyze_file

    def flaky(tree, path, *args, **kwargs):
        if path.name == "mla.py":
            raise KeyError("boom")
        return original(tree, path, *args, **kwargs)

    monkeypatch.setattr(scan_module, "analyze_file", flaky)
    report = tmp_path / "r.json"
    assert main(["scan", "-q", "--no-cache", "-j", "1", "--report", str(report)]) == 1
    data = json.loads(report.read_text())
    failed = [f for f in data["files"] if f["state"] == "error"]
    assert [f["file"] for f in failed] == ["mla.py"]
    assert failed[0]["errors"][0]["message"].startswith("astgen crashed on this file: KeyError: 'boom'")
    assert data["summary"]["entries"] == 8 and data["summary"]["files_failed"] == 1


def test_a_syntax_error_is_reported_with_its_line(tmp_path):
    tree = tmp_path / "tree"
    shutil.copytree(FIXTURES, tree)
    shutil.copy(BAD / "broken_syntax.py", tree / "broken_syntax.py")
    report = tmp_path / "r.json"
    assert main(["scan", str(tree), "-q", "--no-cache", "--report", str(report)]) == 1
    data = json.loads(report.read_text())
    [broken] = [f for f in data["files"] if f["file"] == "broken_syntax.py"]
    assert broken["state"] == "error" and broken["errors"][0]["code"] == "syntax"
    assert broken["errors"][0]["location"] == "broken_syntax.py:7"
    assert data["summary"]["by_status"]["FULLY"] == 9


# ----------------------------------------------------------------------------
# the result cache


def _copy_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    shutil.copytree(FIXTURES, tree)
    return tree


def test_cache_hits_and_invalidation_by_a_dependency(tmp_path):
    root = _copy_tree(tmp_path)
    tree = tree_of_dir(root)
    files = tree.model_files()
    cache = ResultCache(tmp_path / "cache", "salt")
    first = scan_files(tree, files, RULES, ScanOptions(cache=cache))
    assert (cache.hits, cache.misses) == (0, 9)
    cache = ResultCache(tmp_path / "cache", "salt")
    again = scan_files(tree, files, RULES, ScanOptions(cache=cache))
    assert (cache.hits, cache.misses) == (9, 0)
    assert [r.classes for r in again] == [r.classes for r in first]
    # every file but mla.py and layer_types.py reads dense.py (reexport.py
    # through inherit.py); mla.py reads only KMLP from moe_every_k.py, which
    # does not need dense.py
    dense = root / "dense.py"
    dense.write_text(dense.read_text().replace("self.total_num_heads = config.num_attention_heads",
                                               "self.total_num_heads = config.num_attention_heads * 2"))
    cache = ResultCache(tmp_path / "cache", "salt")
    scan_files(tree, files, RULES, ScanOptions(cache=cache))
    assert (cache.hits, cache.misses) == (2, 7)


def test_a_corrupt_cache_entry_is_a_miss(tmp_path):
    tree = tree_of_dir(FIXTURES)
    path = FIXTURES / "dense.py"
    cache = ResultCache(tmp_path / "cache", "salt")
    scan_files(tree, [path], RULES, ScanOptions(cache=cache))
    [entry] = list((tmp_path / "cache").rglob("*.pickle"))
    entry.write_bytes(b"not a pickle")
    cache = ResultCache(tmp_path / "cache", "salt")
    [result] = scan_files(tree, [path], RULES, ScanOptions(cache=cache))
    assert (cache.hits, cache.misses) == (0, 1)
    assert [c.entry for c in result.classes] == ["DenseForCausalLM"]


def test_config_keys_required_and_optional():
    [c] = classes_of("dense")
    assert "hidden_size" in c.config_keys and "num_hidden_layers" in c.config_keys
    assert "head_dim" in c.optional_keys and "head_dim" not in c.config_keys
    required, optional = E.config_keys(E.parse("mc.a.b + (mc.c if hasattr(mc, 'c') else getattr(mc, 'd', 1))"))
    assert (required, optional) == ({"a.b"}, {"c", "d"})


def test_partition_keeps_a_family_on_one_worker_and_balances_load(tmp_path):
    from astgen.scan import partition
    big = "x = 1\n" * 2000
    (tmp_path / "base.py").write_text(big)
    (tmp_path / "child_a.py").write_text("from sglang.srt.models.base import X\n" + "y = 2\n" * 10)
    (tmp_path / "child_b.py").write_text("from .base import X\n" + "y = 2\n" * 10)
    (tmp_path / "other.py").write_text("z = 3\n" * 1500)
    files = sorted(tmp_path.glob("*.py"))
    shares = partition(files, 2)
    assert [[p.name for p in share] for share in shares] == [
        ["base.py", "child_a.py", "child_b.py"], ["other.py"]]


def test_a_worker_done_with_its_share_takes_the_others_last_files():
    """The shares run in order; a worker whose share is done takes, one at a
    time, the last file not yet started of the share with most left."""
    from astgen.scan import next_file
    a, b = [Path(f"a{i}.py") for i in range(2)], [Path(f"b{i}.py") for i in range(4)]
    shares = [list(a), list(b)]
    order = [(w, next_file(shares, w)) for w in (0, 1, 0, 0, 0, 1, 0)]
    assert [(w, p and p.name) for w, p in order] == [
        (0, "a0.py"), (1, "b0.py"), (0, "a1.py"), (0, "b3.py"), (0, "b2.py"), (1, "b1.py"), (0, None)]
    assert shares == [[], []]


def test_an_in_process_scan_leaves_the_collector_as_it_found_it(tmp_path):
    """One job runs in this process with the garbage collector off (parsed
    trees live as long as the scan); it is on again after."""
    import gc
    tree = tree_of_dir(_copy_tree(tmp_path))
    files = tree.model_files()[:2]
    seen = []
    assert gc.isenabled()
    results = scan_files(tree, files, RULES, ScanOptions(jobs=1), lambda r: seen.append(gc.isenabled()))
    assert seen == [False, False] and gc.isenabled()
    assert [r.path for r in results] == files


def test_a_scan_with_the_collector_off_collects_once_past_its_bound(tmp_path, monkeypatch):
    """COLLECT_AFTER bounds the memory a scan holds with the collector off:
    past it, the next file starts with a collection."""
    import gc
    collected = []
    monkeypatch.setattr(scan_module.gc, "collect", lambda *a: collected.append(gc.get_count()[0]))
    tree = tree_of_dir(_copy_tree(tmp_path))
    files = tree.model_files()[:3]
    monkeypatch.setattr(scan_module, "COLLECT_AFTER", 10**12)
    scan_files(tree, files, RULES, ScanOptions(jobs=1))
    assert collected == []
    monkeypatch.setattr(scan_module, "COLLECT_AFTER", 0)
    scan_files(tree, files, RULES, ScanOptions(jobs=1))
    assert len(collected) == 3


def test_a_scan_leaves_no_cycles_of_its_own_for_a_collector_that_is_off(tmp_path):
    """Workers run without the collector, so what the pipeline makes of a
    file must be freed by reference counts: no traceback of a `return` the
    tracer caught (whose frames held the callers' state), no closure that
    calls itself, no frame. (black's own trees are its concern.)"""
    import gc
    import types

    tree = tree_of_dir(_copy_tree(tmp_path))
    files = tree.model_files()
    scan_files(tree, files[:1], RULES, ScanOptions(jobs=1, emit=scan_module.EmitOptions()))  # imports, memos
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        results = scan_files(tree, files, RULES, ScanOptions(jobs=1, emit=scan_module.EmitOptions()))
        del results
        gc.collect()
        ours = [o for o in gc.garbage if isinstance(o, (types.FrameType, types.TracebackType, BaseException))
                or (isinstance(o, types.FunctionType) and o.__module__.startswith("astgen"))]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert len(files) == 9 and ours == []


def test_rich_progress_bar_on_a_terminal():
    import io

    from astgen.progress import progress_reporter

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    results = [fixture_result(name) for name in ("dense", "mla")]
    with progress_reporter(2, stream=stream) as tick:
        for r in results:
            tick(r)
    text = stream.getvalue()
    assert "scan" in text and "2/2" in text and "scan: [" not in text  # a bar, not plain lines


def test_scan_one_architecture(tmp_path, capsys):
    assert main(["scan", "--arch", "KMoeForCausalLM", "-q", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(e["name"], e["category"], e["status"]) for e in data["entries"]] == [
        ("KMoeForCausalLM", "moe", "FULLY")]


def test_the_code_digest_covers_the_subpackages(tmp_path):
    """A cached result is stale when any of astgen's code changed, the
    interpreter's package (astgen/trace/) and the expressions' included."""
    from astgen.cache import code_digest

    package = tmp_path / "astgen"
    (package / "trace").mkdir(parents=True)
    (package / "cli.py").write_text("x = 1\n")
    (package / "trace" / "statements.py").write_text("y = 1\n")
    before = code_digest(package)
    (package / "trace" / "statements.py").write_text("y = 2\n")
    assert code_digest(package) != before
    (package / "trace" / "statements.py").write_text("y = 1\n")
    assert code_digest(package) == before
