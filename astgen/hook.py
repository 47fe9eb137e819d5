"""``astgen-hook``: the pre-commit hook for sglang checkouts.

pre-commit passes the staged files that match the hook's pattern. The hook
checks the arch modules of the model files among them, of the model files
that import them (a change to ``qwen2.py`` affects ``qwen3.py``), and of the
model files that read a layer module astgen traces (``[trace]`` in
rules/layers.toml). A commit that touches none of these returns at once,
before black, astroid or the rules are even imported.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from astgen.frontend.source import (  # stdlib only below it
    MODELS_PACKAGE,
    imported_modules,
)

MODELS = "sglang/srt/models/"
LAYERS = "sglang/srt/layers/"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="astgen-hook", description="pre-commit hook: stop a commit whose model changes make the "
                                        "committed LLMSim arch modules drift")
    parser.add_argument("files", nargs="*", help="staged files (pre-commit passes them)")
    parser.add_argument("--against", default="out", metavar="DIR", help="committed modules (default: out)")
    parser.add_argument("--root", default=".", metavar="DIR", help="the sglang checkout (default: .)")
    parser.add_argument("--import-root", default="src.arch", metavar="PKG",
                        help="LLMSim import root the committed modules use (default: src.arch)")
    args = parser.parse_args(argv)
    relevant = [f for f in args.files if f.endswith(".py") and (MODELS in _posix(f) or LAYERS in _posix(f))]
    if not relevant:
        return 0
    return _check(args, relevant)


def _posix(path: str) -> str:
    return Path(path).as_posix()


def _check(args: argparse.Namespace, changed: list[str]) -> int:
    # imported here: a commit without model changes never pays for them
    from astgen.cli import main as cli_main
    from astgen.frontend.source import tree_at
    from astgen.rules import load_rules

    tree = tree_at(Path(args.root))
    models = affected_models(tree.models_dir, [Path(args.root) / f for f in changed], load_rules().traced)
    if not models:
        return 0
    argv = ["check", "--sglang-root", str(tree.root), "--against", args.against, "--import-root",
            args.import_root, "--only", *[str(m) for m in models]]
    return cli_main(argv)


def affected_models(models_dir: Path, changed: list[Path], traced: frozenset[str]) -> list[Path]:
    """Model files whose modules a change to ``changed`` may alter: the changed
    model files, every model file that imports one of them (transitively),
    and the importers of a changed layer module that defines a traced class."""
    files = sorted(p for p in models_dir.glob("*.py") if p.name != "__init__.py")
    importers: dict[str, set[Path]] = {}
    for path in files:
        for module in imported_modules(path):
            importers.setdefault(module, set()).add(path)
    todo = []
    for path in changed:
        path = path.resolve()
        if path.parent == models_dir.resolve() and path.exists():
            todo.append(path)
        elif _defines_traced(path, traced):
            todo += importers.get(_dotted(path, models_dir), ())
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        todo += importers.get(f"{MODELS_PACKAGE}.{path.stem}", ())
    return sorted(seen)


def _defines_traced(path: Path, traced: frozenset[str]) -> bool:
    try:
        text = path.read_text("utf-8-sig", errors="replace")
    except OSError:
        return False
    return any(re.search(rf"^class {re.escape(name)}\b", text, re.M) for name in traced)


def _dotted(path: Path, models_dir: Path) -> str:
    """``.../sglang/srt/layers/x/y.py`` -> ``sglang.srt.layers.x.y``."""
    root = models_dir.resolve().parents[2]  # the directory holding sglang/
    return ".".join(path.resolve().relative_to(root).with_suffix("").parts)


if __name__ == "__main__":
    sys.exit(main())
