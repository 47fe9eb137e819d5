"""The pre-commit hook, end to end: a temporary git repository laid out like
an sglang checkout (built from the fixtures), pre-commit from PyPI using
this project's .pre-commit-hooks.yaml at its current commit. A commit that
changes a head count is stopped with the operator-level message; an
unrelated commit passes. Also the hook's selection of affected files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from astgen.cli import main
from astgen.hook import affected_models
from astgen.hook import main as hook_main
from tests.helpers import FIXTURES, REPO


def git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=check)


def make_checkout(tmp_path: Path) -> Path:
    repo = tmp_path / "sglang"
    models = repo / "python" / "sglang" / "srt" / "models"
    shutil.copytree(FIXTURES, models)
    (repo / "python" / "sglang" / "version.py").write_text('__version__ = "0.0.test"\n')
    (repo / "README.md").write_text("a checkout\n")
    assert main(["gen", "--sglang-root", str(repo / "python"), "-o", str(repo / "arch"), "-q", "--no-cache"]) == 0
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    return repo


def test_affected_models_follow_imports(tmp_path):
    repo = make_checkout(tmp_path)
    models = repo / "python" / "sglang" / "srt" / "models"
    names = lambda paths: [p.name for p in paths]  # noqa: E731
    assert names(affected_models(models, [models / "moe_every_k.py"], frozenset())) == [
        "mla.py", "moe_every_k.py"]
    assert names(affected_models(models, [models / "inherit.py"], frozenset())) == ["inherit.py", "reexport.py"]
    assert names(affected_models(models, [models / "dense.py"], frozenset())) == [
        "bom.py", "dense.py", "hybrid.py", "inherit.py", "mla.py", "moe_every_k.py", "multimodal.py",
        "reexport.py"]


def test_hook_ignores_commits_without_model_files(tmp_path):
    assert hook_main(["README.md", "python/sglang/srt/managers/scheduler.py"]) == 0


@pytest.mark.skipif(shutil.which("pre-commit") is None and not (Path(sys.executable).parent / "pre-commit").exists(),
                    reason="pre-commit not installed (the test extra installs it)")
def test_pre_commit_stops_a_drifting_commit_and_passes_an_unrelated_one(tmp_path):
    dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "astgen", "rules"], cwd=REPO).returncode
    if dirty:  # pre-commit installs astgen at HEAD; modules made by the working tree would be stale
        pytest.skip("uncommitted changes to astgen/ or rules/: the hook runs the committed astgen")
    repo = make_checkout(tmp_path)
    rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout.strip()
    (repo / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {REPO}\n    rev: {rev}\n    hooks:\n"
        "      - id: astgen-check\n        args: [--against, arch]\n")
    pre_commit = shutil.which("pre-commit") or str(Path(sys.executable).parent / "pre-commit")
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}
    subprocess.run([pre_commit, "install"], cwd=repo, env=env, check=True, capture_output=True)
    git(repo, "add", ".pre-commit-config.yaml")
    hooked = {**env, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
              "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}

    def commit(message: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "commit", "-q", "-m", message], cwd=repo, env=hooked,
                              capture_output=True, text=True)

    # an unrelated commit passes (the hook has no file to look at)
    (repo / "README.md").write_text("a checkout, edited\n")
    git(repo, "add", "README.md")
    done = commit("docs")
    assert done.returncode == 0, done.stdout + done.stderr

    # a head-count change in mla.py is stopped, naming operator, old/new and line
    mla = repo / "python" / "sglang" / "srt" / "models" / "mla.py"
    mla.write_text(mla.read_text().replace("self.num_local_heads = config.num_attention_heads // attn_tp_size",
                                           "self.num_local_heads = config.num_attention_heads * 2 // attn_tp_size"))
    git(repo, "add", str(mla))
    stopped = commit("more heads")
    output = stopped.stdout + stopped.stderr
    assert stopped.returncode != 0, output
    assert ("sglang/srt/models/mla.py:50: drift: LatentForCausalLM.attn_mqa_qk batch: "
            "mc.num_attention_heads -> mc.num_attention_heads * 2") in output
    assert "check: 1 modules against arch: 1 drifted" in output
