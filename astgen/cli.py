"""Command line: ``astgen gen``, ``scan``, ``check``, ``diff``, ``explain`` and
``validate``. Wires the stages.

Exit codes (for CI): 0 success; 1 incomplete analysis (an unknown layer
class, an unresolved expression: reported with file:line, nothing written
for that file); 2 unusable input (no such file, syntax error, no sglang
tree, broken rules).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from astgen import __version__
from astgen import expr as E
from astgen.atomic import write_atomic
from astgen.cache import ResultCache, code_digest
from astgen.cli_parser import build_parser
from astgen.emit import llmsim
from astgen.emit.modules import EmitOptions, module_name_for
from astgen.emit.package import PACKAGE_FILES, package_files, remove_module, write_module, write_package
from astgen.frontend.configs import ConfigFinder, ConfigNotFound, missing_keys
from astgen.frontend.drafts import read_drafts
from astgen.frontend.loader import Loader
from astgen.frontend.server_args import (
    ServerArgsError,
    ServerArgSpec,
    parse_flags,
    read_server_args,
)
from astgen.frontend.source import (
    SourceError,
    SourceTree,
    cache_dir,
    fetch_version,
    tree_at,
    tree_of_dir,
    tree_of_file,
)
from astgen.ir import render_tree
from astgen.lower.shapes import ArchShapes
from astgen.progress import progress_reporter
from astgen.report import ConfigCheck, ScanReport, render_json, render_markdown
from astgen.rules import (
    NameMap,
    Rules,
    RulesError,
    bind_switches,
    load_name_map,
    load_rules,
)
from astgen.scan import (
    EXIT_INCOMPLETE,
    EXIT_OK,
    EXIT_UNUSABLE,
    FileResult,
    ScanOptions,
    analyze_file,
    default_jobs,
    scan_files,
)
from astgen.trace import check_rules

if TYPE_CHECKING:
    from astgen.compare.drift import ConfigIndex
    from astgen.validate.compare import Validation

# check, diff and validate are imported by their commands: `gen` and `scan`,
# the commands a pre-commit hook runs, do not pay for them at start-up.

SAMPLE_TREE = Path(__file__).resolve().parent.parent / "fixtures" / "sglang_models"


class UsageError(Exception):
    """Unusable input: exit 2 with this message."""


# ----------------------------------------------------------------------------
# resolving what the user pointed at


def resolve_tree(args: argparse.Namespace) -> SourceTree:
    """The sglang tree: --sglang-version, --sglang-root, the tree of the
    target file or directory, else the sample tree."""
    if getattr(args, "sglang_version", None):
        return fetch_version(args.sglang_version)
    if getattr(args, "sglang_root", None):
        return tree_at(Path(args.sglang_root))
    target = getattr(args, "target", None)
    if target:
        path = Path(target)
        if path.is_file():
            return tree_of_file(path)
        if path.is_dir():
            return tree_of_dir(path)
        raise UsageError(f"{target}: no such file or directory")
    if not SAMPLE_TREE.is_dir():
        raise UsageError("no target given, and the sample tree (fixtures/sglang_models) is only in a "
                         "source checkout: pass a model file, a directory or --sglang-version")
    return tree_of_dir(SAMPLE_TREE)


def resolve_inputs(args: argparse.Namespace) -> tuple[SourceTree, list[Path]]:
    """The tree and the model files to analyze."""
    tree = resolve_tree(args)
    target = getattr(args, "target", None)
    if target and not Path(target).exists():
        raise UsageError(f"{target}: no such file or directory")
    if target and Path(target).is_file():
        if not tree.flat and not Path(target).resolve().is_relative_to(tree.root.resolve()):
            raise UsageError(f"{target}: not in the sglang tree {tree.root} it is to be read with; copy it into "
                             f"{tree.models_dir}, or give the file alone to read it in its own tree")
        return tree, [Path(target)]
    return tree, _select(tree, getattr(args, "arch", None))


def _select(tree: SourceTree, arch: str | None) -> list[Path]:
    if arch is None:
        return tree.model_files()
    hits = tree.files_naming(arch)
    if not hits:
        raise UsageError(f"no model file in {tree.models_dir} defines EntryClass {arch}")
    return hits


def tree_rules(args: argparse.Namespace, tree: SourceTree) -> Rules:
    """The rules with the tree's server arguments bound as switches, set
    by --server-args (sglang's launch flags) where the user gave them; a
    mini-sglang tree's rules (rules/minisgl.toml) for one."""
    rules = load_rules(args.rules)
    check_rules(rules)  # what the rules ask of the tracer, before anything is read
    if tree.flavour.name != "sglang":
        if getattr(args, "server_args", None):
            raise UsageError(f"--server-args: sglang's launch flags; {tree.root} is a {tree.flavour.name} tree")
        return rules.for_flavour(tree.flavour.name)
    spec = read_server_args(tree.root, _kept(args)) if not tree.flat else ServerArgSpec()
    text = getattr(args, "server_args", None)
    try:
        given = parse_flags(spec, text) if text else {}
    except ServerArgsError as exc:
        raise UsageError(str(exc)) from None
    return bind_switches(rules, spec, given)


# ----------------------------------------------------------------------------
# output


def _report(result: FileResult, out) -> None:
    for d in result.diagnostics:
        if d.severity != "note":
            print(d.render(), file=out)


# ----------------------------------------------------------------------------
# commands


def _cache(args: argparse.Namespace, tree: SourceTree, rules: Rules, emit: EmitOptions | None) -> ResultCache | None:
    if getattr(args, "no_cache", False):
        return None
    directory = Path(args.cache_dir) if getattr(args, "cache_dir", None) else cache_dir() / "results"
    salt = "\0".join([__version__, code_digest(), rules.version, rules.digest, str(tree.root), tree.version,
                      repr(emit)])
    return ResultCache(directory, salt)


def _options(args: argparse.Namespace, tree: SourceTree, rules: Rules, n_files: int, emit: bool) -> ScanOptions:
    """How to run the pipeline over a tree: workers, what to emit, the cache
    (none for a single --arch, since results are cached per whole file)."""
    kept = _kept(args)
    options = EmitOptions(import_root=args.import_root, sglang_version=tree.version,
                          kv_cache_dtype=args.kv_cache_dtype,
                          format_cache=kept / "format" if kept is not None else None) if emit else None
    arch = getattr(args, "arch", None)
    return ScanOptions(jobs=_jobs(args, n_files), emit=options, arch=arch,
                       cache=None if arch else _cache(args, tree, rules, options),
                       kept=kept)


def _kept(args: argparse.Namespace) -> Path | None:
    """Where sglang's config registry (once read) and black's output (once
    made) are kept: beside the results (``--cache-dir``), nowhere with
    ``--no-cache``."""
    if getattr(args, "no_cache", False):
        return None
    return Path(args.cache_dir) if getattr(args, "cache_dir", None) else cache_dir()


def cmd_gen(args: argparse.Namespace) -> int:
    target_checkout = _llmsim_checkout(args)
    if target_checkout is not None and args.uninstall:
        removed = llmsim.uninstall(target_checkout)
        if not args.quiet:
            print(f"removed {', '.join(str(p) for p in removed) or 'nothing (astgen was not installed)'}",
                  file=sys.stderr)
        return EXIT_OK
    tree, files = resolve_inputs(args)
    rules = tree_rules(args, tree)
    out_dir = target_checkout.package if target_checkout is not None else Path(args.output)
    options = _options(args, tree, rules, len(files), emit=True)
    worst = EXIT_OK
    written = helpers = 0
    modules: dict[str, str] = {}
    for result in scan_files(tree, files, rules, options):
        if len(files) > 1 and result.has_no_entry:
            helpers += 1
            continue
        _report(result, sys.stderr)
        worst = max(worst, result.status)
        if result.status == EXIT_OK and result.source is not None:
            name = module_name_for(result.path.name) + ".py"
            if target_checkout is None:
                write_module(out_dir, name, result.source)
            modules[name] = result.source
            written += 1
            if not args.quiet:
                entries = ", ".join(s.entry for s in result.shapes)
                ops = sum(len(s.operators) for s in result.shapes)
                print(f"wrote {out_dir / name} ({entries}: {ops} operators)")
    if target_checkout is None and modules:
        write_package(out_dir, {}, args.import_root, rules)  # its helpers and __init__
    if target_checkout is not None and modules:
        llmsim.install(target_checkout, modules, args.prefer, rules)
        if not args.quiet:
            print(f"registered in {target_checkout.registry} ({args.prefer} archs first)", file=sys.stderr)
    if not args.quiet:
        failed = len(files) - written - helpers
        print(f"{written} module(s) written to {out_dir}, {failed} not", file=sys.stderr)
    return worst


def _llmsim_checkout(args: argparse.Namespace) -> "llmsim.Checkout | None":
    """--llmsim DIR, checked before anything is analyzed or written; the
    modules then import from the checkout's root (src.arch)."""
    if getattr(args, "uninstall", False) and not getattr(args, "llmsim", None):
        raise UsageError("--uninstall needs --llmsim DIR")
    if not getattr(args, "llmsim", None):
        return None
    try:
        found = llmsim.checkout(Path(args.llmsim))
    except llmsim.LLMSimError as exc:
        raise UsageError(str(exc)) from None
    args.import_root = llmsim.IMPORT_ROOT
    return found


def cmd_scan(args: argparse.Namespace) -> int:
    target_checkout = _llmsim_checkout(args)
    tree, files = resolve_inputs(args)
    rules = tree_rules(args, tree)
    options = _options(args, tree, rules, len(files), emit=bool(args.output) or target_checkout is not None)
    out_dir = Path(args.output) if args.output else None
    package: list[Path] = []
    with progress_reporter(len(files), enabled=not args.quiet) as tick:

        def arrived(result: FileResult) -> None:
            if out_dir is not None and result.source is not None:  # written as it comes, while the others run
                write_module(out_dir, module_name_for(result.path.name) + ".py", result.source)
                if not package:  # the package's own files with its first module, not after the last
                    package.extend(write_package(out_dir, {}, args.import_root, rules))
            tick(result)

        results = scan_files(tree, files, rules, options, arrived)
    report = ScanReport(tree.version, tree.display_root(), __version__, f"{rules.version} ({rules.digest})", results)
    if out_dir is not None:
        report.modules = _modules_written(results)
    if target_checkout is not None:
        modules = {module_name_for(r.path.name) + ".py": r.source for r in results if r.source is not None}
        if modules:
            llmsim.install(target_checkout, modules, args.prefer, rules)
        report.modules = report.modules or {r.display: module_name_for(r.path.name) + ".py"
                                            for r in results if r.source is not None}
    report.configs = _check_configs(args, results)
    _output(args, render_json(report) if _format(args) == "json" else render_markdown(report))
    if not args.quiet:
        print(_scan_summary(report), file=sys.stderr)
    summary = report.summary()
    return EXIT_OK if summary["by_status"]["FULLY"] == summary["entries"] and not summary["files_failed"] \
        else EXIT_INCOMPLETE


def cmd_check(args: argparse.Namespace) -> int:
    from astgen.compare.check import check_modules, check_package
    from astgen.compare.check import explain as explain_checks
    from astgen.compare.check import render_json as check_json
    from astgen.compare.check import render_text as check_text
    tree, files = resolve_inputs(args)
    rules = tree_rules(args, tree)
    only = None
    if args.only:
        files = [Path(f).resolve() for f in args.only]
        only = {module_name_for(f.name) + ".py" for f in files}
    results = scan_files(tree, files, rules, _options(args, tree, rules, len(files), emit=True))
    against = Path(args.against)
    generator = f"astgen {__version__}, rules {rules.version} ({rules.digest})"
    checks = check_modules(results, against, generator, only)
    if any(c.source is not None for c in checks):  # a package with modules has its own files
        checks += check_package(against, package_files(args.import_root, rules))
    report = explain_checks(checks, _config_index(args), str(against), generator)
    if args.update:
        for c in checks:
            if not c.drifted:
                continue
            if c.source is None:
                remove_module(against, c.name)
            elif c.name in PACKAGE_FILES:
                write_atomic(against / c.name, c.source)
            else:
                write_module(against, c.name, c.source)
    _output(args, check_json(report) if _format(args) == "json" else check_text(report, updated=args.update))
    return EXIT_INCOMPLETE if any(c.drifted for c in checks) and not args.update else EXIT_OK


def _config_index(args: argparse.Namespace) -> ConfigIndex:
    """The configs --configs names, then the Hugging Face cache's."""
    from astgen.compare.drift import ConfigIndex
    return ConfigIndex([Path(d) for d in args.configs or []], hf_cache=True)


def cmd_diff(args: argparse.Namespace) -> int:
    from astgen.compare.diff import diff_trees
    from astgen.compare.diff import render_json as diff_json
    from astgen.compare.diff import render_markdown as diff_markdown
    sides = []
    for spec in (args.old, args.new):
        tree = _tree_of_spec(spec)
        rules = tree_rules(args, tree)
        files = tree.model_files()
        options = _options(args, tree, rules, len(files), emit=False)
        with progress_reporter(len(files), enabled=not args.quiet) as tick:
            sides.append((tree, scan_files(tree, files, rules, options, tick)))
    (old_tree, old), (new_tree, new) = sides
    result = diff_trees(old, new, old_tree.version, new_tree.version, _config_index(args))
    _output(args, diff_json(result) if _format(args) == "json" else diff_markdown(result))
    return EXIT_OK


def _format(args: argparse.Namespace) -> str:
    return args.format or ("json" if args.report and args.report.endswith(".json") else "md")


def _output(args: argparse.Namespace, text: str) -> None:
    """The report into --report (atomically), or onto stdout."""
    if args.report:
        write_atomic(Path(args.report), text)
    else:
        sys.stdout.write(text)


def _tree_of_spec(spec: str) -> SourceTree:
    """A directory (a checkout, a package root), else an sglang version."""
    path = Path(spec)
    return tree_of_dir(path) if path.is_dir() else fetch_version(spec)


def _modules_written(results: list[FileResult]) -> dict[str, str]:
    """Model file -> the module file written for it."""
    return {result.display: module_name_for(result.path.name) + ".py"
            for result in results if result.source is not None}


def _check_configs(args: argparse.Namespace, results: list[FileResult]) -> dict[str, ConfigCheck]:
    finder = ConfigFinder(local_dirs=[Path(d) for d in args.configs or []], offline=True)
    checks = {}
    for result in results:
        for c in result.classes:
            try:
                found = finder.find(c.entry)
            except ConfigNotFound:
                continue
            checks[c.entry] = ConfigCheck(f"{found.source}:{found.path.name}",
                                          missing_keys(found.config, c.config_keys))
    return checks


def _scan_summary(report: ScanReport) -> str:
    s = report.summary()
    by = ", ".join(f"{k} {v}" for k, v in s["by_status"].items())
    c = s["causal_lm"]
    return (f"scanned {s['files']} files, {s['entries']} entry classes: {by}; "
            f"*ForCausalLM fully supported {c['fully']}/{c['entries']} ({c['percent']}%); "
            f"{s['modules_written']} modules written")


def _jobs(args: argparse.Namespace, n_files: int) -> int:
    if getattr(args, "jobs", None):
        return args.jobs
    return default_jobs() if n_files > 4 else 1


def cmd_explain(args: argparse.Namespace) -> int:
    tree, files = resolve_inputs(args)
    rules = tree_rules(args, tree)
    worst = EXIT_OK
    loader = Loader(tree)
    for path in files:
        result = analyze_file(tree, path, rules, args.arch, loader)
        worst = max(worst, result.status)
        for ir, shapes, c in zip(result.irs, result.shapes, result.classes):
            print(render_tree(ir))
            print()
            print(_operator_table(shapes))
            features = ", ".join(c.features) or "none"
            print(f"  category: {c.category} (backbone {c.backbone}, head {c.head}); features: {features}; "
                  f"status: {c.status}")
            print()
        for d in result.diagnostics:
            print(d.render())
    return worst


def cmd_validate(args: argparse.Namespace) -> int:
    from astgen.validate.compare import render_json as validate_json
    from astgen.validate.compare import render_sweep, render_text
    tree = resolve_tree(args)
    rules = tree_rules(args, tree)
    names = load_name_map(args.rules)
    if args.forward:
        return _validate_forward(args, tree, rules)
    if args.oracle == "sglang":
        results, title = _validate_runtime(args, tree, rules)
    elif args.all:
        results = _validate_sweep(args, tree, rules, names)
        where = " or the configs of " + ", ".join(args.configs) if args.configs else ""
        title = f"astgen validate --all: sglang {tree.version}, transformers' default configs{where}"
    elif args.configs:
        results = _validate_configs(args, tree, rules, names)
        title = f"astgen validate --configs: sglang {tree.version}, {len(results)} configs"
    else:
        results = [_validate_one(args, tree, rules, names)]
        title = ""
    if _format(args) == "json":
        text = validate_json(results)
    else:
        text = render_sweep(results, title) if title else render_text(results[0])
    _output(args, text)
    return _validate_status(results, sweep=bool(title))


def _validate_one(args: argparse.Namespace, tree: SourceTree, rules: Rules, names: NameMap) -> Validation:
    from astgen.validate.compare import OracleSpec, validate_entry
    config = _read_config(Path(args.config)) if args.config else None
    arch = args.arch or ((config or {}).get("architectures") or [None])[0]
    if not arch:
        raise UsageError("name the architecture: --arch NAME, or a --config whose `architectures` lists it")
    label = Path(args.config).name if args.config else "transformers default"
    oracle = OracleSpec(args.oracle_arch, Path(args.recorded) if args.recorded else None)
    return validate_entry(tree, rules, Loader(tree), arch, config, label, oracle, names, args.tp)


def _layouts(args: argparse.Namespace) -> tuple:
    from astgen.lower.layout import SWEEP_LAYOUTS, Layout, LayoutError, parse_layout
    if not args.layout:
        return SWEEP_LAYOUTS if args.all else (Layout(tp=args.tp),)
    try:
        return tuple(parse_layout(text) for text in args.layout)
    except LayoutError as exc:
        raise UsageError(f"--layout: {exc}") from None


def _runtime_cases(args: argparse.Namespace, tree: SourceTree, rules: Rules) -> tuple[list, str]:
    """The entries ``--oracle sglang`` checks (one, every config of
    --configs, or --all), each at its checkpoint config or a default one."""
    from astgen.rules import model_types_of
    from astgen.validate.compare import RuntimeCase
    if args.recorded:
        raise UsageError("--recorded compares with a recording; --oracle sglang builds the runtime itself")
    checkpoints = _checkpoints(args)
    if args.all:
        files = tree.model_files()
        options = _options(args, tree, rules, len(files), emit=False)
        with progress_reporter(len(files), enabled=not args.quiet) as tick:
            entries = sorted({c.entry for r in scan_files(tree, files, rules, options, tick)
                              for c in r.classes if c.status == "FULLY"})
        title = f"astgen validate --oracle sglang --all: sglang {tree.version}"
    elif args.configs and not args.arch:
        entries = sorted(checkpoints)
        title = f"astgen validate --oracle sglang --configs: sglang {tree.version}"
    else:
        config = _read_config(Path(args.config)) if args.config else None
        arch = args.arch or ((config or {}).get("architectures") or [None])[0]
        if not arch:
            raise UsageError("name the architecture: --arch NAME, or a --config whose `architectures` lists it")
        if config is not None:
            checkpoints[arch] = (Path(args.config).name, config)
        entries, title = [arch], ""
    drafts = read_drafts(tree.root) if not tree.flat else {}
    loader = Loader(tree)
    cases = []
    for entry in entries:
        label, config = checkpoints.get(entry, ("default config", None))
        target = next((t for t in drafts.get(entry, ()) if t in checkpoints), "") if config is None else ""
        if target:  # a speculative draft, at its target's checkpoint as sglang builds it
            label, config = checkpoints[target]
            label = f"{label} (draft of {target})"
        model_type = (model_types_of(target or entry) or ("",))[0] or _registered_type(loader, target or entry)
        cases.append(RuntimeCase(entry, config, label, model_type, target))
    return cases, title


def _registered_type(loader: Loader, arch: str) -> str:
    """The model_type sglang registers its own config class for ``arch``
    under (an architecture transformers does not know: GigaChat35Config for
    GigaChat35ForCausalLM), so that its defaults give a config; "" if none."""
    from astgen.frontend.registry import registry_of
    from astgen.trace import config_class

    found = config_class(loader, arch)
    if found is None:
        return ""
    classes = registry_of(loader.tree, loader.kept).classes
    return next((t for t, c in sorted(classes.items()) if c.name == found.name and c.module == found.module.name), "")


def _validate_runtime(args: argparse.Namespace, tree: SourceTree, rules: Rules) -> tuple[list[Validation], str]:
    """``--oracle sglang``: the entries at each layout, against sglang's own model classes."""
    from astgen.validate.compare import describe, validate_runtime
    cases, title = _runtime_cases(args, tree, rules)
    layouts = _layouts(args)
    if len(cases) * len(layouts) > 1 and not title:
        title = f"astgen validate --oracle sglang: sglang {tree.version}"
    with progress_reporter(len(cases) * len(layouts), not args.quiet, verb="validate", describe=describe) as tick:
        return validate_runtime(tree, rules, Loader(tree), cases, layouts, tick), title


def _validate_forward(args: argparse.Namespace, tree: SourceTree, rules: Rules) -> int:
    """``--oracle sglang --forward``: sglang's forward pass, per layout and
    mode, against the operators. Exit 0 when every run agrees, 1 when any
    differs, 2 when none could be compared."""
    from astgen.validate.compare import (
        AGREE,
        DISAGREE,
        render_forward,
        render_forward_json,
        validate_forward,
    )
    if args.oracle != "sglang":
        raise UsageError("--forward records sglang's own forward pass: use it with --oracle sglang")
    cases, _ = _runtime_cases(args, tree, rules)
    layouts = _layouts(args)
    modes = tuple(args.mode) if args.mode else ("extend", "decode")
    with progress_reporter(len(cases) * len(layouts) * len(modes), not args.quiet, verb="validate",
                           describe=lambda v: (f"{v.arch} {v.layout} {v.mode}", v.status)) as tick:
        results = validate_forward(tree, rules, Loader(tree), cases, layouts, modes, tick)
    title = f"astgen validate --oracle sglang --forward: sglang {tree.version}"
    _output(args, render_forward_json(results) if _format(args) == "json" else render_forward(results, title))
    statuses = {v.status for v in results}
    return EXIT_INCOMPLETE if DISAGREE in statuses else EXIT_OK if AGREE in statuses else EXIT_UNUSABLE


def _config_paths(dirs: list[str]) -> list[Path]:
    paths = sorted(p for d in dirs for p in Path(d).glob("*.json"))
    if not paths:
        raise UsageError(f"no *.json config in {', '.join(dirs)}")
    return paths


def _validate_configs(args: argparse.Namespace, tree: SourceTree, rules: Rules, names: NameMap) -> list[Validation]:
    from astgen.validate.compare import OracleSpec, describe, unusable, validate_entry
    loader, out = Loader(tree), []
    paths = _config_paths(args.configs)
    with progress_reporter(len(paths), not args.quiet, verb="validate", describe=describe) as tick:
        for path in paths:
            config = _read_config(path)
            arch = (config.get("architectures") or [None])[0]
            if arch is None:
                out.append(unusable("?", "transformers", path.name, "the config lists no `architectures`"))
            else:
                out.append(validate_entry(tree, rules, loader, arch, config, path.name,
                                          OracleSpec(args.oracle_arch), names, args.tp))
            tick(out[-1])
    return out


def _validate_sweep(args: argparse.Namespace, tree: SourceTree, rules: Rules, names: NameMap) -> list[Validation]:
    from astgen.validate.compare import describe, sweep_defaults
    files = tree.model_files()
    options = _options(args, tree, rules, len(files), emit=False)
    with progress_reporter(len(files), enabled=not args.quiet) as tick:
        entries = [c.entry for r in scan_files(tree, files, rules, options, tick) for c in r.classes]
    checkpoints = _checkpoints(args)
    with progress_reporter(len(entries), not args.quiet, verb="validate", describe=describe) as tick:
        return sweep_defaults(tree, rules, entries, names, tick, checkpoints)


def _checkpoints(args: argparse.Namespace) -> dict[str, tuple[str, dict]]:
    """architecture -> (file name, config) of every config in --configs (the first naming it)."""
    out: dict[str, tuple[str, dict]] = {}
    for path in _config_paths(args.configs) if args.configs else ():
        config = _read_config(path)
        for arch in config.get("architectures") or ():
            out.setdefault(arch, (path.name, config))
    return out


def _read_config(path: Path) -> dict:
    try:
        config = json.loads(path.read_text("utf-8-sig"))
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the config ({exc.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path}: not a JSON config ({exc})") from None
    if not isinstance(config, dict):
        raise UsageError(f"{path}: a config is a JSON object, not {type(config).__name__}")
    return config


def _validate_status(results: list[Validation], sweep: bool) -> int:
    """1 when any disagrees (or, alone, is incomplete in astgen); 2 when
    nothing could be compared, or a single validation was unusable."""
    from astgen.validate.compare import AGREE, DISAGREE, INCOMPLETE, UNUSABLE
    statuses = {v.status for v in results}
    if DISAGREE in statuses or (not sweep and INCOMPLETE in statuses):
        return EXIT_INCOMPLETE
    if AGREE not in statuses or (UNUSABLE in statuses and not sweep):
        return EXIT_UNUSABLE
    return EXIT_OK


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


COMMANDS = {"gen": cmd_gen, "scan": cmd_scan, "check": cmd_check, "diff": cmd_diff, "explain": cmd_explain,
            "validate": cmd_validate}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (UsageError, SourceError, RulesError) as exc:
        print(f"astgen: error: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
