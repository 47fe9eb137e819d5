"""The CLI: exit codes, diagnostics with file:line, atomic and deterministic output."""

from __future__ import annotations

import shutil
import subprocess
import sys

from astgen.cli import main
from tests.helpers import FIXTURES, REPO

BAD = REPO / "tests" / "data" / "bad"


def run(args, cwd=None):
    return subprocess.run([sys.executable, "-m", "astgen.cli", *args], capture_output=True,
                          text=True, cwd=cwd or REPO)


def test_syntax_error_exits_2_with_file_and_line(tmp_path):
    proc = run(["gen", str(BAD / "broken_syntax.py"), "-o", str(tmp_path)])
    assert proc.returncode == 2
    assert "broken_syntax.py:7: error[syntax]: syntax error" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_unknown_layer_exits_1_and_names_the_rule_to_add(tmp_path):
    proc = run(["gen", str(BAD / "unknown_layer.py"), "-o", str(tmp_path)])
    assert proc.returncode == 1
    assert ("unknown_layer.py:11: incomplete[unknown-layer]: unknown layer class FancyMixer "
            "(attribute mixer) (add a rule for FancyMixer to rules/layers.toml, or list it "
            "under [ignored])") in proc.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written for an incomplete file


def test_missing_input_exits_2(tmp_path):
    proc = run(["gen", str(tmp_path / "nope.py")])
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"astgen: error: {tmp_path / 'nope.py'}: no such file or directory"


def test_hostile_defaults_and_decorators_are_never_executed(tmp_path):
    shutil.copy(BAD / "hostile.py", tmp_path / "hostile.py")
    proc = run(["gen", str(tmp_path / "hostile.py"), "-o", str(tmp_path / "out")], cwd=tmp_path)
    assert not (tmp_path / "ASTGEN_MARKER_FILE").exists()
    assert not (REPO / "ASTGEN_MARKER_FILE").exists()
    # the eval() in the source is an unresolved value, reported, never run
    assert proc.returncode == 1
    assert "hostile.py:15: incomplete[unresolved]: operator proj: n depends on an unresolved value" in proc.stderr


def test_one_bad_file_does_not_stop_the_rest(tmp_path):
    tree = tmp_path / "tree"
    shutil.copytree(FIXTURES, tree)
    shutil.copy(BAD / "broken_syntax.py", tree / "broken_syntax.py")
    out = tmp_path / "out"
    code = main(["gen", str(tree), "-o", str(out), "-q"])
    assert code == 2
    assert sorted(p.name for p in out.glob("*.py")) == [
        "__init__.py", "_astgen.py", "bom_model_arch.py", "dense_model_arch.py", "hybrid_model_arch.py", "inherit_model_arch.py",
        "layer_types_model_arch.py", "mla_model_arch.py", "moe_every_k_model_arch.py",
        "multimodal_model_arch.py", "reexport_model_arch.py"]
    assert sorted(p.name for p in out.glob("*.ops.jsonl")) == [  # each module's operator table beside it
        p.name.replace(".py", ".ops.jsonl") for p in sorted(out.glob("*_model_arch.py"))]


def test_output_is_byte_identical_across_runs(tmp_path):
    assert main(["gen", "-o", str(tmp_path / "a"), "-q"]) == 0
    assert main(["gen", "-o", str(tmp_path / "b"), "-q"]) == 0
    a = {p.name: p.read_bytes() for p in (tmp_path / "a").iterdir()}
    b = {p.name: p.read_bytes() for p in (tmp_path / "b").iterdir()}
    assert a == b and len(a) == 2 * 9 + 2  # the modules, their tables, the package's __init__ and helpers


def test_header_names_source_hash_and_versions(tmp_path):
    import hashlib

    assert main(["gen", str(FIXTURES / "dense.py"), "-o", str(tmp_path), "-q"]) == 0
    text = (tmp_path / "dense_model_arch.py").read_text()
    digest = hashlib.sha256((FIXTURES / "dense.py").read_bytes()).hexdigest()
    head = text.splitlines()[:7]
    assert head[1] == "# source: dense.py"
    assert head[2] == f"# sha256: {digest}"
    assert head[3] == "# sglang: unknown"
    assert head[4] == "# astgen: 0.1.0"
    assert head[5].startswith("# rules: 1.1.1 (")  # layers.parallel.execution
    assert head[6] == "# helpers: _astgen.py in this package; operators as traced: dense_model_arch.ops.jsonl"
    assert "from ._astgen import Arch, Operators" in text
    helpers = (tmp_path / "_astgen.py").read_text().splitlines()
    assert helpers[1:3] == head[4:6]  # the same astgen and rules
    assert "from src.arch.op.operator_base import DataType, OperatorIO, OperatorMetadata, Tensor" in helpers


def test_import_root_option(tmp_path):
    assert main(["gen", str(FIXTURES / "dense.py"), "-o", str(tmp_path), "-q",
                 "--import-root", "llmsim.arch"]) == 0
    text = (tmp_path / "dense_model_arch.py").read_text() + (tmp_path / "_astgen.py").read_text()
    assert "from llmsim.arch.models_arch.base_model_arch import BaseModelArch" in text
    assert "from llmsim.arch.config import ForwardMode" in text
    assert "src.arch" not in text


def test_explain_prints_tree_and_operator_lines(capsys):
    assert main(["explain", str(FIXTURES / "dense.py")]) == 0
    out = capsys.readouterr().out
    assert "qkv_proj: QKVParallelLinear [layer]  @40" in out
    assert "matmul    down_proj" in out and "[dense.py:27]" in out


def test_help_lists_commands():
    proc = run(["--help"])
    assert proc.returncode == 0
    assert "gen" in proc.stdout and "explain" in proc.stdout and "Exit codes" in proc.stdout
