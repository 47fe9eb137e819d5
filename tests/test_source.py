"""Stage 1, source: the sglang version of a tree, read the way sglang's own
``sglang/version.py`` resolves it (never its ``0.0.0.dev0`` fallback)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from astgen.frontend.source import UNKNOWN_VERSION, read_version, tree_at, tree_of_file
from tests.helpers import FIXTURES, generate

# sglang 0.5.x's version.py (0.5.23, python/sglang/version.py): a try chain
# whose last resort is "0.0.0.dev0"
TRY_CHAIN = '''\
try:
    from sglang._version import __version__, __version_tuple__
except ImportError:
    try:
        import importlib.metadata

        __version__ = importlib.metadata.version("sglang")
    except Exception:
        __version__ = "0.0.0.dev0"
        __version_tuple__ = (0, 0, 0, "dev0")
'''
# written by the build (vcs-versioning) into wheels and built checkouts
GENERATED = "__version__ = version = '{v}'\n__version_tuple__ = version_tuple = (0, 5, 23)\n"


def _tree(root: Path, version_py: str = TRY_CHAIN, generated: str | None = None) -> Path:
    models = root / "sglang" / "srt" / "models"
    models.mkdir(parents=True)
    for name in ("mla.py", "moe_every_k.py"):  # mla.py imports its MLP from moe_every_k.py
        shutil.copy(FIXTURES / name, models / name)
    (root / "sglang" / "version.py").write_text(version_py)
    if generated is not None:
        (root / "sglang" / "_version.py").write_text(generated)
    return root


def test_wheel_reads_the_generated_version_file_not_the_fallback(tmp_path):
    root = _tree(tmp_path / "wheel", generated=GENERATED.format(v="0.5.23"))
    assert read_version(root) == "0.5.23"
    assert tree_at(root).version == "0.5.23"


def test_site_packages_without_version_file_reads_the_dist_info(tmp_path):
    root = _tree(tmp_path / "site-packages")
    # another distribution's metadata beside it is not sglang's
    (root / "sglang_router-0.3.1.dist-info").mkdir()
    (root / "sglang_router-0.3.1.dist-info" / "METADATA").write_text("Name: sglang-router\nVersion: 0.3.1\n")
    (root / "sglang-0.5.8.dist-info").mkdir()
    (root / "sglang-0.5.8.dist-info" / "METADATA").write_text("Metadata-Version: 2.4\nName: sglang\nVersion: 0.5.8\n")
    assert read_version(root) == "0.5.8"


def test_editable_checkout_reads_egg_info(tmp_path):
    root = _tree(tmp_path / "sglang-src" / "python")
    (root / "sglang.egg-info").mkdir()
    (root / "sglang.egg-info" / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: sglang\nVersion: 0.5.9rc1\n")
    assert tree_at(root.parent).version == "0.5.9rc1"  # the checkout's top, found through python/


def test_old_releases_keep_a_literal_version(tmp_path):
    # sglang 0.4.6: python/sglang/version.py is `__version__ = "0.4.6"`
    root = _tree(tmp_path / "old", version_py='__version__ = "0.4.6"\n')
    assert read_version(root) == "0.4.6"


def test_nothing_to_read_is_unknown_never_the_fallback(tmp_path):
    root = _tree(tmp_path / "bare")
    assert read_version(root) == UNKNOWN_VERSION


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_checkout_reads_tags_as_setuptools_scm_does(tmp_path):
    checkout = tmp_path / "sglang"
    root = _tree(checkout / "python")

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(checkout), *args], check=True, capture_output=True,
                              text=True, env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                                              "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
                                              "HOME": str(tmp_path)}).stdout.strip()

    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "one")
    assert read_version(root) == UNKNOWN_VERSION  # no tag yet
    git("tag", "v0.5.23")
    assert read_version(root) == "0.5.23"
    (root / "sglang" / "srt" / "models" / "mla.py").write_text("# edited\n")
    git("commit", "-qam", "two")
    git("commit", "-q", "--allow-empty", "-m", "three")
    sha = git("rev-parse", "--short", "HEAD")
    # guess-next-dev: two commits past v0.5.23
    assert read_version(root) == f"0.5.24.dev2+g{sha}"


def test_the_version_decides_version_dependent_rules(tmp_path):
    """0.5.23 runs MLA prefill on the absorbed path inside the prefill CUDA
    graph (rules/execution.toml absorbed_extend, since 0.5.23): a tree read
    as 0.0.0.dev0 had silently lost it."""
    heads = {}
    for version in ("0.5.23", "0.5.8"):
        root = _tree(tmp_path / version, generated=GENERATED.format(v=version))
        path = root / "sglang" / "srt" / "models" / "mla.py"
        tree = tree_of_file(path)
        assert tree.version == version
        result = generate(tree, path)
        source = result.source
        assert f" (sglang {version})\n# sha256: " in source
        heads[version] = source
    # the absorbed path at EXTEND (chunks inside the prefill graph's
    # min(8192, chunk) tokens, the package's Arch.mla_absorbed) exists only
    # where the version allows it; before, DECODE alone
    assert "if self.mla_absorbed(seq_len):" in heads["0.5.23"] and "if is_decode:" not in heads["0.5.23"]
    assert "mla_absorbed" not in heads["0.5.8"] and "if is_decode:" in heads["0.5.8"]


def test_development_builds_are_ordered_after_their_release():
    from astgen.forward.run import _at_least

    assert _at_least("0.5.24.dev2+gabc1234", "0.5.23")
    assert _at_least("0.5.23", "0.5.23")
    assert not _at_least("0.5.23rc1", "0.5.23")
    assert not _at_least(UNKNOWN_VERSION, "0.5.23")


@pytest.mark.corpus
@pytest.mark.parametrize("version", ["0.4.6", "0.5.8", "0.5.23"])
def test_real_wheels_read_as_their_own_version(sglang_tree, version):
    # 0.5.8 and 0.5.23 ship the try chain in version.py and the real number in
    # _version.py; 0.4.6 a literal in version.py
    assert read_version(sglang_tree(version).root) == version
    assert tree_at(sglang_tree(version).root).version == version
