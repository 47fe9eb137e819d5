"""Command line: ``astgen gen`` and ``astgen explain``. Wires the stages.

Exit codes (for CI): 0 success; 1 incomplete analysis (an unknown layer
class, an unresolved expression: reported with file:line, nothing written
for that file); 2 unusable input (no such file, syntax error, no sglang
tree, broken rules).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from astgen import __version__
from astgen import expr as E
from astgen.emit import EmitError, EmitOptions, emit_module, module_name_for
from astgen.ir import ArchIR, Diagnostic, render_tree
from astgen.parse import Location, ParseFailure
from astgen.rules import Rules, RulesError, load_rules
from astgen.shapes import ArchShapes, build_shapes
from astgen.source import SourceError, SourceTree, fetch_version, tree_at, tree_of_dir, tree_of_file
from astgen.trace import Loader, Tracer

EXIT_OK, EXIT_INCOMPLETE, EXIT_UNUSABLE = 0, 1, 2
SAMPLE_TREE = Path(__file__).resolve().parent.parent / "fixtures" / "sglang_models"


class UsageError(Exception):
    """Unusable input: exit 2 with this message."""


@dataclass
class FileResult:
    """What the pipeline made of one model file."""

    path: Path
    display: str
    irs: list[ArchIR] = field(default_factory=list)
    shapes: list[ArchShapes] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    source: str | None = None  # the emitted module, when complete
    files_read: list[Path] = field(default_factory=list)

    @property
    def has_no_entry(self) -> bool:
        """A helper file (no EntryClass): not an error when scanning a directory."""
        return [d.code for d in self.diagnostics] == ["no-entry"]

    @property
    def status(self) -> int:
        if any(d.severity == "error" for d in self.diagnostics):
            return EXIT_UNUSABLE
        if any(d.severity == "incomplete" for d in self.diagnostics):
            return EXIT_INCOMPLETE
        return EXIT_OK


# ----------------------------------------------------------------------------
# the pipeline for one file


def analyze_file(tree: SourceTree, path: Path, rules: Rules, arch: str | None = None,
                 loader: Loader | None = None, emit: EmitOptions | None = None) -> FileResult:
    loader = loader or Loader(tree)
    display = tree.display(path)
    result = FileResult(path, display)
    try:
        pm = loader.load(tree.module_name(path))
    except ParseFailure as exc:
        result.diagnostics.append(Diagnostic("error", "syntax", Location(exc.path, exc.line), exc.message))
        return result
    entries = pm.entry_classes if arch is None else [c for c in pm.entry_classes if c == arch]
    if not entries:
        what = f"no EntryClass named {arch}" if arch else "no EntryClass"
        result.diagnostics.append(Diagnostic("error", "no-entry", Location(display, 0), f"{what} in this file"))
        return result
    for entry in entries:
        ir = Tracer(loader, rules).trace_entry(pm, entry)
        result.irs.append(ir)
        shapes = build_shapes(ir, rules)
        result.shapes.append(shapes)
        result.diagnostics += [d for d in shapes.diagnostics if d not in result.diagnostics]
    result.files_read = loader.paths()
    if result.status == EXIT_OK and emit is not None:
        try:
            result.source = emit_module(result.shapes, rules, emit)
        except EmitError as exc:
            result.diagnostics.append(Diagnostic("incomplete", "emit", Location(display, 0), str(exc)))
    return result


# ----------------------------------------------------------------------------
# resolving what the user pointed at


def resolve_inputs(args: argparse.Namespace) -> tuple[SourceTree, list[Path]]:
    """The tree and the model files to analyze."""
    if getattr(args, "sglang_version", None):
        tree = fetch_version(args.sglang_version)
    elif getattr(args, "sglang_root", None):
        tree = tree_at(Path(args.sglang_root))
    else:
        tree = None
    target = getattr(args, "target", None)
    if target:
        path = Path(target)
        if path.is_file():
            return (tree or tree_of_file(path)), [path]
        if path.is_dir():
            tree = tree or tree_of_dir(path)
            return tree, _select(tree, getattr(args, "arch", None))
        raise UsageError(f"{target}: no such file or directory")
    if tree is None:
        tree = tree_of_dir(SAMPLE_TREE)
    return tree, _select(tree, getattr(args, "arch", None))


def _select(tree: SourceTree, arch: str | None) -> list[Path]:
    files = tree.model_files()
    if arch is None:
        return files
    # a cheap text filter before any parsing: the file must name the class
    hits = [p for p in files if _mentions(p, arch)]
    if not hits:
        raise UsageError(f"no model file in {tree.models_dir} defines EntryClass {arch}")
    return hits


def _mentions(path: Path, arch: str) -> bool:
    try:
        text = path.read_text("utf-8-sig", errors="replace")
    except OSError:
        return False
    return "EntryClass" in text and arch in text


# ----------------------------------------------------------------------------
# output


def write_atomic(path: Path, text: str) -> None:
    """Write all of ``text`` or nothing: a temp file in the same directory,
    then an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _report(result: FileResult, out) -> None:
    for d in result.diagnostics:
        if d.severity != "note":
            print(d.render(), file=out)


# ----------------------------------------------------------------------------
# commands


def cmd_gen(args: argparse.Namespace) -> int:
    rules = load_rules(args.rules)
    tree, files = resolve_inputs(args)
    options = EmitOptions(import_root=args.import_root, sglang_version=tree.version)
    out_dir = Path(args.output)
    loader = Loader(tree)
    worst = EXIT_OK
    written = helpers = 0
    for path in files:
        result = analyze_file(tree, path, rules, args.arch, loader, options)
        if len(files) > 1 and result.has_no_entry:
            helpers += 1
            continue
        _report(result, sys.stderr)
        worst = max(worst, result.status)
        if result.source is not None:
            target = out_dir / (module_name_for(path.name) + ".py")
            write_atomic(target, result.source)
            written += 1
            if not args.quiet:
                entries = ", ".join(s.entry for s in result.shapes)
                ops = sum(len(s.operators) for s in result.shapes)
                print(f"wrote {target} ({entries}: {ops} operators)")
    if not args.quiet:
        failed = len(files) - written - helpers
        print(f"{written} module(s) written to {out_dir}, {failed} not", file=sys.stderr)
    return worst


def cmd_explain(args: argparse.Namespace) -> int:
    rules = load_rules(args.rules)
    tree, files = resolve_inputs(args)
    worst = EXIT_OK
    loader = Loader(tree)
    for path in files:
        result = analyze_file(tree, path, rules, args.arch, loader)
        worst = max(worst, result.status)
        for ir, shapes in zip(result.irs, result.shapes):
            print(render_tree(ir))
            print()
            print(_operator_table(shapes))
            print()
        for d in result.diagnostics:
            print(d.render())
    return worst


def _operator_table(shapes: ArchShapes) -> str:
    lines = [f"operators of {shapes.entry} ({shapes.attention_type}):"]
    for op in shapes.operators:
        guard = "" if op.guard == E.TRUE else f"  if {E.to_source(op.guard)}"
        lines.append(
            f"  {op.kind:9} {op.name:28} K={E.to_source(op.k)}  N={E.to_source(op.n)}"
            f"  batch={E.to_source(op.batch)}  layers={E.to_source(op.layers)}{guard}"
            f"  [{op.loc}]")
    lines.append(f"  kv cache elements/token: {E.to_source(shapes.kv_cache)}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="astgen",
        description="Static analyzer of sglang model source: emits LLMSim model_arch "
                    "modules without importing sglang or torch.",
        epilog="Exit codes: 0 ok, 1 incomplete analysis (unknown layer, unresolved "
               "shape), 2 unusable input.")
    parser.add_argument("--version", action="version", version=f"astgen {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("target", nargs="?",
                       help="a model file or a directory (default: the sample tree "
                            "fixtures/sglang_models)")
        p.add_argument("--arch", help="only this EntryClass (e.g. Qwen3ForCausalLM)")
        src = p.add_mutually_exclusive_group()
        src.add_argument("--sglang-root", metavar="DIR",
                         help="sglang package root (a checkout, its python/, an unpacked wheel)")
        src.add_argument("--sglang-version", metavar="V",
                         help="fetch sglang==V with pip download into the cache and read it")
        p.add_argument("--rules", metavar="DIR", default=None, help="rules directory (default: bundled rules/)")

    gen = sub.add_parser("gen", help="emit LLMSim model_arch modules",
                         description="Analyze model files and write one model_arch module per file.")
    common(gen)
    gen.add_argument("-o", "--output", default="out", metavar="DIR", help="output directory (default: out)")
    gen.add_argument("--import-root", default="src.arch", metavar="PKG",
                     help="LLMSim import root in emitted code (default: src.arch)")
    gen.add_argument("-q", "--quiet", action="store_true", help="print diagnostics only")
    gen.set_defaults(func=cmd_gen)

    explain = sub.add_parser("explain", help="print the traced IR and operators of a model file",
                             description="Print the module tree astgen traced, with the shapes "
                                         "and the source line each came from.")
    common(explain)
    explain.set_defaults(func=cmd_explain)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, SourceError, RulesError) as exc:
        print(f"astgen: error: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
