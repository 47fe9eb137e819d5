"""Stage 7, scan: run the pipeline over model files, one file at a time or a
whole tree in parallel processes, with results cached on disk.

One bad file never stops the others: a syntax error or a crash inside the
tracer becomes a diagnostic of that file, with its file:line.
"""

from __future__ import annotations

import gc
import os
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

from astgen import expr as E
from astgen import messages as M
from astgen.cache import ResultCache
from astgen.emit.modules import EmitError, EmitOptions, emit_module
from astgen.forward.flow import read_flow
from astgen.forward.run import plan_forward
from astgen.frontend.loader import Loader
from astgen.frontend.parse import Location, ParseFailure
from astgen.frontend.server_args import read_server_args
from astgen.frontend.source import (
    MODELS_PACKAGE,
    SourceError,
    SourceTree,
    imported_modules,
)
from astgen.ir import ArchIR, Diagnostic
from astgen.lower.classify import FULLY, NOT_SUPPORTED, Classification, Reason, classify
from astgen.lower.shapes import ArchShapes, build_shapes
from astgen.rules import Rules, bind_switches
from astgen.trace import Tracer, config_class

EXIT_OK, EXIT_INCOMPLETE, EXIT_UNUSABLE = 0, 1, 2


@dataclass
class FileResult:
    """What the pipeline made of one model file."""

    path: Path
    display: str
    irs: list[ArchIR] = field(default_factory=list)  # not kept in the cache
    shapes: list[ArchShapes] = field(default_factory=list)
    classes: list[Classification] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    source: str | None = None  # the emitted module of the FULLY supported entries
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


def analyze_file(tree: SourceTree, path: Path, rules: Rules, arch: str | None = None,
                 loader: Loader | None = None, emit: EmitOptions | None = None) -> FileResult:
    """source -> parse -> trace -> shapes -> classify -> emit for one file.
    Rules not yet bound to a tree's server arguments are bound to ``tree``'s,
    at sglang's defaults."""
    loader = loader or Loader(tree)
    rules = tree_switches(rules, tree)
    result = FileResult(path, tree.display(path))
    loader.start_tracking()
    try:
        _analyze(tree, path, rules, arch, loader, emit, result)
    finally:
        result.files_read = loader.tracked()
    return result


_BOUND: dict[tuple[str, str], Rules] = {}


def tree_switches(rules: Rules, tree: SourceTree) -> Rules:
    """``rules`` with ``tree``'s server arguments as switches at their
    defaults, unless already bound (``astgen.rules.bind_switches``)."""
    if tree.flavour.name != rules.flavour:
        return rules.for_flavour(tree.flavour.name)  # no sglang server arguments in another source family
    if rules.server_args.source or tree.flat:
        return rules
    key = (rules.digest, str(tree.root))
    if key not in _BOUND:
        _BOUND[key] = bind_switches(rules, read_server_args(tree.root))
    return _BOUND[key]


def _analyze(tree: SourceTree, path: Path, rules: Rules, arch: str | None, loader: Loader,
             emit: EmitOptions | None, result: FileResult) -> None:
    try:
        pm = loader.load(tree.module_name(path))
    except ParseFailure as exc:
        result.diagnostics.append(Diagnostic.of(M.SYNTAX, Location(exc.path, exc.line), error=exc.message))
        return
    entries = pm.entry_classes if arch is None else [c for c in pm.entry_classes if c == arch]
    if not entries:
        where = Location(result.display, 0)
        result.diagnostics.append(Diagnostic.of(M.NO_ENTRY_NAMED, where, arch=arch) if arch
                                  else Diagnostic.of(M.NO_ENTRY, where))
        return
    for entry in entries:
        ir, shapes = _trace(pm, entry, loader, rules, tree.version)
        if entry in rules.execution.mtp:
            shapes = _with_draft(shapes, rules.execution.mtp[entry], loader, rules, tree.version)
        shapes.diagnostics += _findings(ir, rules)
        result.irs.append(ir)
        result.shapes.append(shapes)
        result.classes.append(classify(ir, shapes, rules))
        result.diagnostics += [d for d in shapes.diagnostics if d not in result.diagnostics]
        if not shapes.operators and not any(d.severity != "note" for d in shapes.diagnostics):
            result.diagnostics.append(Diagnostic.of(M.NO_OPERATORS, ir.root.loc, entry=entry))
    if emit is not None:
        _emit(result, rules, emit)


def _findings(ir: ArchIR, rules: Rules) -> list[Diagnostic]:
    """rules/execution.toml [[findings]] for the classes the model holds."""
    out = []
    for finding in rules.execution.findings:
        node = next((n for n in ir.root.walk(skip_towers=True) if n.cls in finding.classes), None)
        if node is not None:
            out.append(Diagnostic.of(M.FINDING, node.loc, cls=node.cls, message=finding.message,
                                     when=E.to_source(finding.when), cite=finding.cite))
    return out


def _trace(pm, entry: str, loader: Loader, rules: Rules, version: str,
           config_entry: str | None = None) -> tuple[ArchIR, ArchShapes]:
    """trace (__init__) -> flow (forward code) -> run (per mode) -> shapes, for
    one entry, with sglang's config class for ``config_entry``'s checkpoints
    (the entry's own by default; an MTP draft runs on its target's config)."""
    tracer = Tracer(loader, rules)
    ir = tracer.trace_entry(pm, entry, config_class(loader, config_entry or entry))
    flow = read_flow(ir, loader.get, tracer.condition_reader(), rules)
    return ir, build_shapes(ir, rules, plan_forward(ir, rules, flow, version))


def _with_draft(shapes: ArchShapes, draft: tuple[str, str], loader: Loader, rules: Rules,
                version: str) -> ArchShapes:
    """The target's operators and, under ``sc.is_mtp``, its MTP draft
    model's (rules/execution.toml [mtp]); a draft astgen cannot analyze
    fully is left out with a note."""
    module, entry = draft
    where = Location(shapes.file, 0)
    try:
        pm = loader.load(f"{loader.tree.models_package}.{module}")
    except (ParseFailure, SourceError, OSError) as exc:
        pm, why = None, str(exc)
    else:
        why = f"{module}.py has no {entry}"
    if pm is None or entry not in pm.entry_classes:
        note = Diagnostic.of(M.MTP_NOT_ADDED, where, entry=entry, why=why)
        return replace(shapes, diagnostics=shapes.diagnostics + [note])
    _, draft_shapes = _trace(pm, entry, loader, rules, version, config_entry=shapes.entry)
    problems = [d for d in draft_shapes.diagnostics if d.severity != "note"]
    if problems or not draft_shapes.operators:
        note = Diagnostic.of(M.MTP_NOT_ADDED, where, entry=entry,
                             why=problems[0].render() if problems else "it builds no operator")
        return replace(shapes, diagnostics=shapes.diagnostics + [note])
    is_mtp = E.attr_path("sc", "is_mtp")
    added = [op.within("mtp_", is_mtp) for op in draft_shapes.operators]
    return replace(shapes, operators=shapes.operators + added)


def _emit(result: FileResult, rules: Rules, options: EmitOptions) -> None:
    supported = [s for s, c in zip(result.shapes, result.classes) if c.status == FULLY]
    if not supported:
        return
    try:
        result.source = emit_module(supported, rules, options)
    except EmitError as exc:  # a bug in astgen: the entries lose their FULLY status
        diag = Diagnostic.of(M.EMIT_FAILED, Location(result.display, 0), error=str(exc))
        result.diagnostics.append(diag)
        reason = Reason("emit", "emit", f"{result.display}:0", str(exc).splitlines()[0])
        result.classes = [replace(c, status=NOT_SUPPORTED, reasons=c.reasons + (reason,)) if c.status == FULLY
                          else c for c in result.classes]


def crashed(tree: SourceTree, path: Path, exc: BaseException) -> FileResult:
    """A bug in astgen on this file: reported as an error of the file, with
    the innermost astgen frame, so that the scan goes on."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "astgen" in f.filename]
    where = f" (in {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    result = FileResult(path, tree.display(path))
    result.diagnostics.append(Diagnostic.of(M.CRASH, Location(result.display, 0), error=type(exc).__name__,
                                            detail=str(exc), where=where))
    return result


# ----------------------------------------------------------------------------
# many files: cache, then worker processes


@dataclass
class ScanOptions:
    jobs: int = 1
    emit: EmitOptions | None = None
    cache: ResultCache | None = None  # must be None when `arch` is set
    arch: str | None = None  # only this EntryClass
    kept: Path | None = None  # where sglang's config registry and black's output are kept once made



def scan_files(tree: SourceTree, files: list[Path], rules: Rules, options: ScanOptions,
               progress: Callable[[FileResult], None] = lambda r: None) -> list[FileResult]:
    """Analyze ``files``; results come back in the order of ``files``."""
    results: dict[Path, FileResult] = {}
    todo: list[Path] = []
    for path in files:
        hit = options.cache.get(path) if options.cache else None
        if hit is not None:
            results[path] = hit
            progress(hit)
        else:
            todo.append(path)
    for result in _run(tree, todo, rules, options):
        results[result.path] = result
        if options.cache is not None:
            options.cache.put(result.path, result)
        progress(result)
    return [results[p] for p in files]


def _run(tree: SourceTree, files: list[Path], rules: Rules, options: ScanOptions) -> Iterator[FileResult]:
    jobs = max(1, min(options.jobs, len(files)))
    if jobs == 1:
        _init_worker(tree, rules, options.emit, options.arch, options.kept)
        with _collector_off():
            yield from map(_work, sorted(files, key=lambda p: (-_size(p), str(p))))
        return
    # one single-process pool per share, so that each worker parses the
    # model files its share imports once, and results still come per file
    init = (tree, rules, options.emit, options.arch, options.kept)
    pools = [ProcessPoolExecutor(1, initializer=_worker_process, initargs=init) for _ in range(jobs)]
    shares = partition(files, jobs)
    running: dict[Future, int] = {}

    def feed(w: int) -> None:
        path = next_file(shares, w)
        if path is not None:
            running[pools[w].submit(_work, path)] = w

    try:
        for w in range(jobs):
            for _ in range(AHEAD):
                feed(w)
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                feed(running.pop(future))
                yield future.result()
    finally:
        for pool in pools:
            pool.shutdown(cancel_futures=True)


def next_file(shares: list[list[Path]], w: int) -> Path | None:
    """Worker ``w``'s next file, taken out of ``shares``: its own share's
    next, or, once that is done, the last file not yet started of the share
    with most left (the smallest: what its worker would have run last)."""
    if shares[w]:
        return shares[w].pop(0)
    most = max(shares, key=len)
    return most.pop() if most else None


# files queued per worker beyond the one it runs: it never waits for the next
AHEAD = 2
# the collector is off while files are analyzed (parsed trees are millions of
# objects that live as long as the worker, and a full collection walks them
# all: about 12% of a cold scan of sglang 0.5.23); once this many objects more
# than were freed have been made (0.5.23: about 3 million per worker at the
# end, 390 MiB), the file that passed it ends with a collection
COLLECT_AFTER = 8_000_000


@contextmanager
def _collector_off() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def partition(files: list[Path], jobs: int) -> list[list[Path]]:
    """Shares of ``files`` for ``jobs`` workers, largest files first. A file
    goes to the worker whose load grows least when it takes the file and
    whatever model files it imports that the worker has not parsed yet: a
    family (llama, qwen2 and their importers) tends to stay together, and no
    worker is left with much more than the others."""
    by_stem = {p.stem: p for p in files}
    graph = {p: _imports_of(p, by_stem) for p in files}
    loads = [0] * jobs
    held: list[set[Path]] = [set() for _ in range(jobs)]
    shares: list[list[Path]] = [[] for _ in range(jobs)]
    for path in sorted(files, key=lambda p: (-_size(p), str(p))):
        need = _closure(path, graph)

        def cost(w: int) -> int:
            return loads[w] + sum(_size(d) for d in need - held[w])

        w = min(range(jobs), key=lambda w: (cost(w), w))
        loads[w] = cost(w)
        held[w] |= need
        shares[w].append(path)
    return shares


def _imports_of(path: Path, by_stem: dict[str, Path]) -> set[Path]:
    """The files of ``by_stem`` (model files) that ``path`` imports."""
    prefix = MODELS_PACKAGE + "."
    stems = {m[len(prefix):] for m in imported_modules(path) if m.startswith(prefix)}
    return {by_stem[s] for s in stems if s in by_stem and by_stem[s] != path}


def _closure(path: Path, graph: dict[Path, set[Path]]) -> set[Path]:
    seen, todo = {path}, [path]
    while todo:
        for dep in graph.get(todo.pop(), ()):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


_WORKER: dict = {}


def _init_worker(tree: SourceTree, rules: Rules, emit: EmitOptions | None, arch: str | None,
                 kept: Path | None = None) -> None:
    loader = Loader(tree, kept / "registry" if kept is not None else None)
    _WORKER.update(tree=tree, rules=rules, emit=emit, arch=arch, loader=loader)


def _worker_process(*init) -> None:
    gc.disable()  # for the worker's life (COLLECT_AFTER)
    _init_worker(*init)


def _work(path: Path) -> FileResult:
    tree = _WORKER["tree"]
    try:
        result = analyze_file(tree, path, _WORKER["rules"], _WORKER["arch"], _WORKER["loader"], _WORKER["emit"])
    except Exception as exc:  # noqa: BLE001 - one file's crash must not stop the scan
        return crashed(tree, path, exc)
    if gc.get_count()[0] > COLLECT_AFTER:  # the collector is off (_worker_process, _collector_off)
        gc.collect()
    result.irs = []  # the IR is for `explain`; reports, emit and check need the rest
    for shapes in result.shapes:
        shapes.names = {}  # sglang's names of values, for emit only (done by now)
    return result


def default_jobs() -> int:
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))
