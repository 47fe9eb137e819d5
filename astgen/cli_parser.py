"""The command line of ``astgen``: its commands, options and help (argparse).
:mod:`astgen.cli` runs the command the parsed arguments name."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from astgen import __version__
from astgen.emit import llmsim
from astgen.emit.modules import KV_CACHE_DTYPES

if TYPE_CHECKING:
    pass

# check, diff and validate are imported by their commands: `gen` and `scan`,
# the commands a pre-commit hook runs, do not pay for them at start-up.

SAMPLE_TREE = Path(__file__).resolve().parent.parent / "fixtures" / "sglang_models"



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
        server_args_option(p)

    def server_args_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("--server-args", metavar="FLAGS", default=None,
                       help="the sglang deployment, as sglang's launch flags in one string, e.g. "
                            "--server-args=\"--enable-dp-lm-head --disaggregation-mode decode\": every "
                            "server argument the model code tests is a switch at sglang's default unless "
                            "set here; the module reads each as getattr(sc, NAME, VALUE), so an LLMSim "
                            "schedule field of that name wins")

    def speed(p: argparse.ArgumentParser) -> None:
        p.add_argument("-j", "--jobs", type=int, metavar="N", default=None,
                       help="worker processes (default: the CPU count, at most 8, for more than 4 files)")
        p.add_argument("--cache-dir", metavar="DIR",
                       help="result cache (default: $ASTGEN_CACHE/results, ~/.cache/astgen/results)")
        p.add_argument("--no-cache", action="store_true", help="neither read nor write the result cache")

    def import_root(p: argparse.ArgumentParser) -> None:
        p.add_argument("--kv-cache-dtype", default="auto", choices=KV_CACHE_DTYPES,
                       help="sglang's --kv-cache-dtype for the emitted attention and get_kv_cache* "
                            "(default: auto, the model dtype)")
        p.add_argument("--import-root", default="src.arch", metavar="PKG",
                       help="LLMSim import root of the modules (default: src.arch)")

    def llmsim_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--llmsim", metavar="DIR",
                       help="write the modules into this LLMSim checkout (src/arch/models_arch/astgen_archs/) and "
                            "register them in its model_arch.py, so that LLMSim's own src/main.py uses them for "
                            "the model types astgen emitted; re-running updates in place")
        p.add_argument("--prefer", choices=llmsim.PREFERENCES, default="handwritten",
                       help="with --llmsim: whose arch LLMSim takes for a model type both have (default: "
                            "LLMSim's hand-written one)")

    def report_options(p: argparse.ArgumentParser, text: str = "Markdown", schema: str = "") -> None:
        json_help = f"JSON ({schema})" if schema else "JSON"
        p.add_argument("--format", choices=("md", "json"), default=None,
                       help=f"md: {text}; json: {json_help} (default: json for a --report ending in .json, "
                            "else md)")
        p.add_argument("--report", metavar="FILE", help="write it here (default: stdout)")

    def configs_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("--configs", metavar="DIR", action="append",
                       help="a directory of HF config.json files (*.json, */config.json, a hub cache): "
                            "a changed field is compared, and its values shown, at the configs whose "
                            "`architectures` name the entry (repeatable; the HF cache is searched too)")

    gen = sub.add_parser("gen", help="emit LLMSim model_arch modules",
                         description="Analyze model files and write one model_arch module per file.")
    common(gen)
    gen.add_argument("-o", "--output", default="out", metavar="DIR", help="output directory (default: out)")
    import_root(gen)
    llmsim_options(gen)
    gen.add_argument("--uninstall", action="store_true",
                     help="with --llmsim: remove astgen's package and registration from the checkout")
    gen.add_argument("-q", "--quiet", action="store_true", help="print diagnostics only")
    speed(gen)

    scan = sub.add_parser(
        "scan", help="analyze a whole sglang tree and report on every architecture",
        description="Analyze every model file and EntryClass of a tree: classify each one "
                    "(dense, MoE, MLA, hybrid, multimodal, non-generative), give its support "
                    "status with the reasons, write the modules of the supported ones, and "
                    "write a Markdown or JSON report. Exit 0 when every entry is FULLY "
                    "supported, 1 otherwise, 2 on unusable input.")
    common(scan)
    scan.add_argument("-o", "--output", metavar="DIR", default=None,
                      help="write the arch modules of FULLY supported entries here")
    import_root(scan)
    llmsim_options(scan)
    report_options(scan)
    scan.add_argument("--configs", metavar="DIR", action="append",
                      help="a directory of HF config.json files; an entry with a config is checked for "
                           "every mc.* key its module reads (repeatable; the HF cache is searched too)")
    scan.add_argument("-q", "--quiet", action="store_true", help="no progress, no summary line")
    speed(scan)

    check = sub.add_parser(
        "check", help="compare committed modules with sglang's source (drift detection)",
        description="Regenerate the modules in memory and compare them with the committed ones, "
                    "operator by operator: added, removed, or a field whose value changed, with the "
                    "sglang line behind each, the smallest subexpression that changed, and the value "
                    "before and after at each known config of the entry's architecture (at tp 8, or "
                    "the first sampled schedule where it differs). One change seen in several entries "
                    "(the same line, operator, field and change) is one line naming them. A field that "
                    "changed form only (same canonical form, or the same value at every known config "
                    "and sampled schedule) is not drift: its module is reported stale. "
                    "Exit 0 when every module is clean; 1 when any drifted (a value changed, an operator "
                    "or module added or removed) or is stale (its text differs with no value changed: "
                    "form only, operators on other lines, text outside the operator table, or made by "
                    "another astgen/rules version), both fixed by --update; 2 on unusable input.")
    common(check)
    check.add_argument("--against", metavar="DIR", default="out",
                       help="directory of committed modules (default: out)")
    check.add_argument("--only", nargs="+", metavar="FILE",
                       help="check only these model files' modules (what the pre-commit hook uses)")
    check.add_argument("--update", action="store_true",
                       help="rewrite (atomically) the modules that drifted or are stale, and only those")
    configs_option(check)
    report_options(check, text="one line per change and a summary line",
                   schema="astgen.check/1: per module its status and changes, the groups")
    import_root(check)
    speed(check)

    diff = sub.add_parser(
        "diff", help="compare two sglang versions (or trees), architecture by architecture",
        description="Analyze two sglang trees and list the architectures added and removed, the "
                    "ones whose support status changed, and the operator-level changes of value of "
                    "each kept one (shapes and layer counts): one line per change, naming the "
                    "smallest subexpression that changed, the entries it changed in, and the values "
                    "before and after at each known config. A field whose two texts have the same "
                    "canonical form, or the same value at every known config and sampled schedule, is "
                    "counted as a change of form only and not listed. Exit 0.")
    diff.add_argument("--from", dest="old", required=True, metavar="V|DIR", help="sglang version or tree")
    diff.add_argument("--to", dest="new", required=True, metavar="V|DIR", help="sglang version or tree")
    configs_option(diff)
    report_options(diff, schema="astgen.diff/1")
    diff.add_argument("--rules", metavar="DIR", default=None, help="rules directory (default: bundled rules/)")
    server_args_option(diff)
    diff.add_argument("-q", "--quiet", action="store_true", help="no progress")
    speed(diff)

    explain = sub.add_parser("explain", help="print the traced IR and operators of a model file",
                             description="Print the module tree astgen traced, with the shapes "
                                         "and the source line each came from.")
    common(explain)

    validate = sub.add_parser(
        "validate", help="compare astgen's weight sizes with an oracle (transformers, or a recorded runtime)",
        description="Evaluate an architecture's IR at a concrete config and compare its weights, per "
                    "decoder layer and in total, with an oracle: the Hugging Face transformers model "
                    "built on torch's meta device (needs the `oracle` extra), or a JSON recording of "
                    "the sglang runtime (tests/oracle/record_sglang.py). Embeddings, the LM head and "
                    "1-D parameters are left out, and listed. Exit 0 when all agree, 1 when any "
                    "disagrees, 2 on unusable input (an architecture one side does not know, a "
                    "config that lacks a key sglang reads).")
    common(validate)
    validate.add_argument("--config", metavar="FILE", help="HF config.json (default: transformers' default "
                                                          "config of the architecture)")
    validate.add_argument("--tp", type=int, default=1, metavar="N",
                          help="also show astgen's per-rank sizes at TP N (transformers holds the whole model, "
                               "so it is compared at tp 1); a recording is compared at its own TP")
    validate.add_argument("--oracle-arch", metavar="NAME",
                          help="the transformers class to build (default: the sglang architecture's name)")
    validate.add_argument("--recorded", metavar="JSON",
                          help="compare with this recording of the sglang runtime instead of transformers")
    validate.add_argument("--oracle", choices=("transformers", "sglang"), default="transformers",
                          help="transformers (default): the Hugging Face model on the meta device, whole; "
                               "sglang: sglang's own model class, imported from the tree in a process of its "
                               "own and built on the meta device at one rank of each --layout (needs the "
                               "`runtime` extra)")
    validate.add_argument("--layout", metavar="LAYOUT", action="append",
                          help="with --oracle sglang: a layout in LLMSim's terms, e.g. tp8, "
                               "tp1,dp8,ep8 or tp4,dp2,ep8,deepep,rank3 (repeatable; default tp1, "
                               "or with --all: tp1, tp8 and tp1,dp8,ep8)")
    validate.add_argument("--forward", action="store_true",
                          help="with --oracle sglang: run sglang's forward pass on the meta device (EXTEND: one "
                               "request of 4,096 tokens; DECODE: 8 requests at 4,096 tokens of context) and "
                               "compare every weight matmul, attention core and collective with astgen's "
                               "operators at the same config and schedule")
    validate.add_argument("--mode", choices=("extend", "decode"), action="append",
                          help="with --forward: the mode(s) to run (default both)")
    validate.add_argument("--all", action="store_true",
                          help="every *ForCausalLM entry of the tree that transformers implements, at "
                               "transformers' default config, or at the checkpoint config --configs "
                               "holds for it")
    validate.add_argument("--configs", metavar="DIR", action="append",
                          help="every config.json in DIR, architecture from its `architectures` "
                               "(repeatable); with --all, the configs to prefer")
    report_options(validate)
    validate.add_argument("-q", "--quiet", action="store_true", help="no progress")
    speed(validate)
    return parser
