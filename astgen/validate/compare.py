"""Stage 9a, validate: compare astgen's weights at a concrete config with an
oracle's (transformers on the meta device, or a recorded sglang runtime).

The comparison is per decoder layer and in total, of the element counts of
every weight with two or more dims: a fused QKV in sglang and separate
q/k/v in transformers hold the same elements. What is left out is listed,
never dropped silently: embeddings and the LM head (sglang pads the
vocabulary and may tie them), 1-D parameters (norm scales, biases), and
buffers (rotary tables are not parameters at all).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from astgen.frontend.loader import Loader
from astgen.frontend.source import SourceTree, runtime_root
from astgen.ir import ArchIR
from astgen.lower.classify import FULLY, Classification
from astgen.lower.layout import Layout
from astgen.lower.shapes import ArchShapes
from astgen.lower.weights import TOWER, Weight, WeightTable, evaluate_weights, one_byte
from astgen.rules import NameMap, Rules
from astgen.scan import analyze_file
from astgen.validate.forward_check import (
    DECODE,
    EXTEND,
    ForwardCheck,
    Row,
    astgen_rows,
    check,
    sglang_rows,
)
from astgen.validate.oracles import (
    OracleModel,
    OracleParam,
    OracleUnavailable,
    default_config,
    has_architecture,
    runtime_recording,
    sglang_runtime,
    transformers_model,
)

AGREE, DISAGREE, INCOMPLETE, UNUSABLE = "agree", "disagree", "incomplete", "unusable"
SCHEMA = "astgen.validate/1"


@dataclass(frozen=True)
class LayerRow:
    index: int
    astgen: int
    oracle: int

    @property
    def ok(self) -> bool:
        return self.astgen == self.oracle


@dataclass(frozen=True)
class ModuleRow:
    module: str  # path inside the layer, sglang's naming
    astgen: int
    oracle: int
    cls: str = ""  # astgen's class
    where: str = ""  # astgen's source line
    oracle_names: tuple[str, ...] = ()  # the oracle modules paired with it

    @property
    def ok(self) -> bool:
        return self.astgen == self.oracle


@dataclass
class Validation:
    arch: str
    oracle: str
    config: str
    tp: int = 1
    status: str = UNUSABLE
    message: str = ""  # why it is unusable
    source: str = ""  # the sglang file
    stack: str = ""
    oracle_stack: str = ""
    layers: list[LayerRow] = field(default_factory=list)
    outside: tuple[int, int] = (0, 0)  # weights outside the decoder stack: astgen, oracle
    modules: dict[int, list[ModuleRow]] = field(default_factory=dict)  # layer 0 and layers that differ
    excluded: list[str] = field(default_factory=list)
    per_rank: dict[int, int] = field(default_factory=dict)  # astgen per layer and rank at per_rank_tp
    per_rank_tp: int = 0
    problems: list[str] = field(default_factory=list)  # what astgen could not evaluate at this config
    layout: str = ""  # the per-rank layout both sides were evaluated at (the sglang runtime)
    dtypes: list[str] = field(default_factory=list)  # weight widths and experts per rank that differ (runtime)
    standins: list[str] = field(default_factory=list)  # modules the runtime stood in for GPU-only ones

    @property
    def totals(self) -> tuple[int, int]:
        return (sum(r.astgen for r in self.layers) + self.outside[0],
                sum(r.oracle for r in self.layers) + self.outside[1])

    def mismatches(self) -> list[str]:
        """One line per differing module, at the sglang line that builds it."""
        lines = []
        for index, rows in sorted(self.modules.items()):
            if all(r.ok for r in self.layers if r.index == index):
                continue
            for r in rows:
                if not r.ok:
                    other = f" ({', '.join(r.oracle_names)})" if r.oracle_names else ""
                    lines.append(f"{r.where or self.source}: mismatch: layer {index} {r.module}"
                                 f"{' (' + r.cls + ')' if r.cls else ''}: astgen {r.astgen:,}, "
                                 f"oracle {r.oracle:,}{other}")
        if self.outside[0] != self.outside[1]:
            lines.append(f"{self.source}: mismatch: outside the decoder stack: astgen {self.outside[0]:,}, "
                         f"oracle {self.outside[1]:,}")
        return lines + self.dtypes


def describe(v: "Validation") -> tuple[str, str]:
    """For progress lines: the architecture and its outcome."""
    return v.arch, v.status


def unusable(arch: str, oracle: str, config: str, message: str) -> Validation:
    return Validation(arch, oracle, config, status=UNUSABLE, message=message)


# ----------------------------------------------------------------------------
# comparing


def compare(table: WeightTable, oracle: OracleModel, names: NameMap | None, config: str,
            source: str = "") -> Validation:
    """astgen's weights against the oracle's parameters. ``names`` pairs
    differently named modules (transformers); None compares paths as they are
    (a recorded sglang runtime names modules as astgen does)."""
    v = Validation(table.entry, oracle.name, config, oracle.tp, source=source)
    if table.problems:
        first = table.problems[0].render()
        more = len(table.problems) - 1
        v.message = first + (f" (and {more} more such problem{'s' if more > 1 else ''})" if more else "")
        v.problems = [d.render() for d in table.problems]
        return v
    oracle = _without_towers(oracle, table.towers)
    stack = table.stack()
    compared = [p for p in oracle.params if not p.excluded]
    ostack = _oracle_stack(compared)
    v.stack = f"{stack[0]} x {stack[1]}" if stack else "(none)"
    v.oracle_stack = f"{ostack[0]} x {ostack[1]}" if ostack else "(none)"
    ours = _by_layer_astgen(table, stack[0] if stack else None)
    theirs = _by_layer_oracle(compared, ostack[0] if ostack else None)
    count = max(stack[1] if stack else 0, ostack[1] if ostack else 0)
    v.layers = [LayerRow(i, _sum_numel(ours.get(i, [])), _sum_numel(theirs.get(i, []))) for i in range(count)]
    v.outside = (_sum_numel(ours.get(None, [])), _sum_numel(theirs.get(None, [])))
    for i in _layers_to_show(v.layers):
        v.modules[i] = _module_rows(ours.get(i, []), theirs.get(i, []), _prefix(stack, i), _prefix(ostack, i),
                                    names)
    v.excluded = _excluded(table, oracle)
    # with no decoder stack on either side (an MTP layer alone), the weights outside it decide
    v.status = AGREE if all(r.ok for r in v.layers) and v.outside[0] == v.outside[1] and \
        (stack or ostack or v.outside[0] > 0) else DISAGREE
    return v


def _without_towers(oracle: OracleModel, towers: list[str]) -> OracleModel:
    """The oracle with the parameters of astgen's multimodal towers left out:
    a tower ``visual`` is the oracle's module of that name at any depth
    (``model.visual`` in transformers)."""
    names = {t.rsplit(".", 1)[-1] for t in towers}
    if not names:
        return oracle

    def in_tower(name: str) -> bool:
        return any(part in names for part in name.split(".")[:-1])

    params = [replace(p, excluded=TOWER) if not p.excluded and in_tower(p.name) else p for p in oracle.params]
    return replace(oracle, params=params)


def _sum_numel(items) -> int:
    return sum(x.numel for x in items)


def _prefix(stack: tuple[str, int] | None, i: int) -> str:
    return f"{stack[0]}.{i}." if stack else ""


_INDEX = re.compile(r"\.(\d+)\.")


def _oracle_stack(params: list[OracleParam]) -> tuple[str, int] | None:
    """The oracle's decoder stack: the list prefix (before the first index)
    holding the most weight."""
    totals: Counter[str] = Counter()
    sizes: dict[str, int] = {}
    for p in params:
        m = _INDEX.search(p.name)
        if m:
            prefix = p.name[:m.start()]
            totals[prefix] += p.numel
            sizes[prefix] = max(sizes.get(prefix, 0), int(m.group(1)) + 1)
    if not totals:
        return None
    best = max(sorted(totals), key=lambda k: totals[k])
    return best, sizes[best]


def _by_layer_astgen(table: WeightTable, stack: str | None) -> dict[int | None, list[Weight]]:
    out: dict[int | None, list[Weight]] = {}
    for w in table.weights:
        out.setdefault(table.layer_of(w, stack) if stack else None, []).append(w)
    return out


def _by_layer_oracle(params: list[OracleParam], stack: str | None) -> dict[int | None, list[OracleParam]]:
    out: dict[int | None, list[OracleParam]] = {}
    for p in params:
        m = _INDEX.search(p.name)
        layer = int(m.group(1)) if m and stack is not None and p.name[:m.start()] == stack else None
        out.setdefault(layer, []).append(p)
    return out


def _layers_to_show(layers: list[LayerRow]) -> list[int]:
    """Layer 0, and the first layer of each distinct disagreement."""
    shown, seen = [], set()
    for r in layers:
        key = (r.astgen, r.oracle)
        if r.index == 0 or (not r.ok and key not in seen):
            shown.append(r.index)
        seen.add(key)
    return shown


def _module_rows(ours: list[Weight], theirs: list[OracleParam], prefix: str, oprefix: str,
                 names: NameMap | None) -> list[ModuleRow]:
    a: dict[str, list[Weight]] = {}
    for w in ours:
        a.setdefault(_normalize(w.path.removeprefix(prefix), names, fuse=False), []).append(w)
    b: dict[str, list[str]] = {}
    sizes: Counter[str] = Counter()
    for p in theirs:
        module = p.module.removeprefix(oprefix)
        key = _normalize(module, names, fuse=True)
        sizes[key] += p.numel
        if module not in b.setdefault(key, []):
            b[key].append(module)
    rows = []
    for key in sorted(set(a) | set(b)):
        ws = a.get(key, [])
        paired = tuple(b.get(key, [])) if b.get(key) != [key] else ()
        rows.append(ModuleRow(key, _sum_numel(ws), sizes.get(key, 0), "/".join(sorted({w.cls for w in ws})),
                              str(ws[0].loc) if ws else "", paired))
    return rows


def _normalize(module: str, names: NameMap | None, fuse: bool) -> str:
    if names is None:
        return module
    parts = module.split(".")
    for i, part in enumerate(parts):
        if part in names.stacked:
            return ".".join(parts[:i + 1])
    if fuse and parts and parts[-1] in names.fused:
        parts[-1] = names.fused[parts[-1]]
    return ".".join(parts)


def _excluded(table: WeightTable, oracle: OracleModel) -> list[str]:
    out = [f"astgen: {e.path} ({e.cls}): {e.why}" for e in table.excluded]
    by_why: dict[str, list[str]] = {}
    for p in oracle.params:
        if p.excluded:
            by_why.setdefault(p.excluded, []).append(p.name)
    for why, params in sorted(by_why.items()):
        shown = ", ".join(params[:3]) + (f" and {len(params) - 3} more" if len(params) > 3 else "")
        out.append(f"oracle: {len(params)} parameter(s), {why}: {shown}")
    return out


# ----------------------------------------------------------------------------
# reports


def render_text(v: Validation) -> str:
    at = f"layout {v.layout}" if v.layout else f"tp {v.tp}"
    head = f"validate {v.arch} at {v.config}, {at}\n  oracle: {v.oracle}\n"
    if v.status in (UNUSABLE, INCOMPLETE):
        rest = "".join(f"  {p}\n" for p in v.problems[1:])
        return head + f"  {v.status}: {v.message}\n" + rest
    lines = [head.rstrip("\n"), f"  sglang: {v.source}",
             f"  decoder stack: astgen {v.stack}; oracle {v.oracle_stack}", ""]
    per_rank = bool(v.per_rank)
    header = "| layers | astgen | oracle | |" + (f" astgen per rank at tp {v.per_rank_tp} |" if per_rank else "")
    lines += [header, "| --- | ---: | ---: | --- |" + (" ---: |" if per_rank else "")]
    for first, last, row in _ranges(v.layers):
        label = str(first) if first == last else f"{first}-{last}"
        extra = f" {v.per_rank.get(first, 0):,} |" if per_rank else ""
        lines.append(f"| {label} | {row.astgen:,} | {row.oracle:,} | {'=' if row.ok else 'DIFFERS'} |{extra}")
    a, o = v.outside
    lines.append(f"| outside the stack | {a:,} | {o:,} | {'=' if a == o else 'DIFFERS'} |" + (" |" if per_rank else ""))
    ta, to = v.totals
    lines.append(f"| total | {ta:,} | {to:,} | {'=' if ta == to else 'DIFFERS'} |" + (" |" if per_rank else ""))
    for index, rows in sorted(v.modules.items()):
        lines += ["", f"modules of layer {index}:", "| module | class | astgen | oracle | oracle modules | source |",
                  "| --- | --- | ---: | ---: | --- | --- |"]
        for r in rows:
            mark = "" if r.ok else " **differs**"
            lines.append(f"| {r.module} | {r.cls} | {r.astgen:,} | {r.oracle:,}{mark} | "
                         f"{', '.join(r.oracle_names)} | {r.where} |")
    lines += ["", "excluded from the comparison:"] + [f"  - {e}" for e in group_repeats(v.excluded)]
    if v.standins:
        lines += ["", "stood in for GPU-only modules (imports and __init__ only; no shape comes from them):",
                  "  " + ", ".join(v.standins)]
    mism = v.mismatches()
    if mism:
        lines += [""] + mism
    lines += ["", f"result: {v.status} ({len(v.layers)} layers, {ta:,} weight elements by astgen, "
                  f"{to:,} by the oracle)"]
    return "\n".join(lines) + "\n"


_INDEX = re.compile(r"\.(\d+)(?=\.|\s|$)")


def group_repeats(lines: list[str]) -> list[str]:
    """Lines that differ only in one index of a dotted path (a layer number)
    as one line: ``(x78) astgen: model.layers.{0..77}.self_attn.alt_stream
    (Stream): ...``. The first index of each line is the one abstracted;
    groups keep the order of their first line."""
    groups: dict[str, list[int]] = {}
    for line in lines:
        m = _INDEX.search(line)
        key = line if m is None else line[:m.start()] + ".{}" + line[m.end():]
        groups.setdefault(key, []).append(-1 if m is None else int(m.group(1)))
    out = []
    for key, indices in groups.items():
        if len(indices) == 1 or -1 in indices:
            out += [key if i == -1 else key.replace(".{}", f".{i}", 1) for i in indices]
        else:
            out.append(f"(x{len(indices)}) " + key.replace(".{}", ".{" + _spans(sorted(set(indices))) + "}", 1))
    return out


def _spans(indices: list[int]) -> str:
    """``0..2,5,7..9``"""
    runs: list[list[int]] = []
    for i in indices:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ",".join(str(a) if a == b else f"{a}..{b}" for a, b in runs)


def _ranges(layers: list[LayerRow]):
    """Runs of consecutive layers with the same counts: (first, last, row)."""
    out = []
    for r in layers:
        if out and (out[-1][2].astgen, out[-1][2].oracle) == (r.astgen, r.oracle) and out[-1][1] == r.index - 1:
            out[-1] = (out[-1][0], r.index, out[-1][2])
        else:
            out.append((r.index, r.index, r))
    return out


def render_sweep(results: list[Validation], title: str) -> str:
    counts = Counter(v.status for v in results)
    compared = counts[AGREE] + counts[DISAGREE]
    pct = f"{100 * counts[AGREE] / compared:.1f}%" if compared else "n/a"
    lines = [f"# {title}", "",
             f"{compared} compared: {counts[AGREE]} agree, {counts[DISAGREE]} disagree ({pct} agree); "
             f"not compared: {counts[INCOMPLETE]} incomplete in astgen, {counts[UNUSABLE]} unusable", "",
             "| architecture | config | layers | astgen | oracle | result | first difference |",
             "| --- | --- | ---: | ---: | ---: | --- | --- |"]
    for v in results:
        ta, to = v.totals
        first = (v.mismatches() or [""])[0] if v.status == DISAGREE else v.message
        where = f"{v.config} at {v.layout}" if v.layout else v.config
        lines.append(f"| {v.arch} | {where} | {len(v.layers)} | {ta:,} | {to:,} | {v.status} | "
                     f"{first.replace('|', '/')} |")
    standins = sorted({m for v in results for m in v.standins})
    if standins:
        lines += ["", "The sglang runtime stood in for these GPU-only modules (imports and `__init__` only; "
                      "no shape comes from them): " + ", ".join(standins)]
    return "\n".join(lines) + "\n"


def render_json(results: list[Validation]) -> str:
    def one(v: Validation) -> dict:
        ta, to = v.totals
        return {
            "arch": v.arch, "oracle": v.oracle, "config": v.config, "tp": v.tp, "status": v.status,
            "message": v.message, "source": v.source, "stack": v.stack, "oracle_stack": v.oracle_stack,
            "layers": [{"index": r.index, "astgen": r.astgen, "oracle": r.oracle} for r in v.layers],
            "outside": {"astgen": v.outside[0], "oracle": v.outside[1]},
            "total": {"astgen": ta, "oracle": to},
            "modules": {str(i): [{"module": r.module, "class": r.cls, "astgen": r.astgen, "oracle": r.oracle,
                                  "oracle_modules": list(r.oracle_names), "source": r.where} for r in rows]
                        for i, rows in sorted(v.modules.items())},
            "mismatches": v.mismatches(), "excluded": v.excluded,
            "excluded_grouped": group_repeats(v.excluded), "problems": v.problems,
            "per_rank": {"tp": v.per_rank_tp, "layers": {str(i): n for i, n in sorted(v.per_rank.items())}},
            "layout": v.layout, "standins": v.standins,
        }
    counts = Counter(v.status for v in results)
    doc = {"schema": SCHEMA, "summary": {k: counts[k] for k in (AGREE, DISAGREE, INCOMPLETE, UNUSABLE)},
           "results": [one(v) for v in results]}
    return json.dumps(doc, indent=1, sort_keys=True) + "\n"


# ----------------------------------------------------------------------------
# running one validation: the sglang side, then the oracle side


@dataclass(frozen=True)
class OracleSpec:
    """Which oracle: transformers (``arch`` defaults to the entry's name), a
    recorded runtime JSON, or the sglang runtime itself (``sglang``) built at
    each of ``layouts``."""

    arch: str | None = None
    recorded: Path | None = None
    sglang: bool = False
    layouts: tuple[Layout, ...] = (Layout(),)


def validate_entry(tree: SourceTree, rules: Rules, loader: Loader, entry: str, config: dict | None,
                   config_label: str, oracle: OracleSpec, names: NameMap, tp: int = 1) -> Validation:
    """Trace ``entry`` in ``tree``, build the oracle for ``config`` (None:
    transformers' default config), evaluate both, and compare."""
    label = str(oracle.recorded) if oracle.recorded else f"transformers {oracle.arch or entry}"
    found = _trace(tree, rules, loader, entry)
    refused = _not_comparable(found, entry, label, config_label)
    if refused is not None:
        return refused
    ir, source, classification = found
    try:
        model, mc = _oracle(oracle, entry, config)
    except OracleUnavailable as exc:
        return unusable(entry, label, config_label, str(exc))
    if oracle.recorded and tp not in (1, model.tp):
        return unusable(entry, model.name, config_label,
                        f"the recording was made at tp {model.tp}, not at the --tp {tp} asked for")
    table = evaluate_weights(ir, rules, mc, model.tp)
    result = compare(table, model, None if oracle.recorded else names, config_label, source)
    if tp > 1 and not oracle.recorded and result.status != UNUSABLE:
        _add_per_rank(result, evaluate_weights(ir, rules, mc, tp), tp)
    return result


def _not_comparable(found, entry: str, label: str, config_label: str, tp: int = 1) -> Validation | None:
    """Unusable (the sglang side fails) or incomplete (astgen itself says
    its IR lacks something): nothing trustworthy to compare."""
    if isinstance(found, str):
        return Validation(entry, label, config_label, tp, status=UNUSABLE, message=found)
    _, source, classification = found
    if classification.status == FULLY:
        return None
    first = classification.reasons[0] if classification.reasons else None
    why = f"{first.location}: {first.message}" if first else classification.status
    return Validation(entry, label, config_label, tp, status=INCOMPLETE, source=source,
                      message=f"astgen's analysis is {classification.status}: {why}")


def _analyzed(tree: SourceTree, rules: Rules, loader: Loader, entry: str):
    """The file result that traced ``entry``, or why there is none."""
    for path in tree.files_naming(entry):
        result = analyze_file(tree, path, rules, entry, loader)
        if result.irs:
            return result
        errors = [d.render() for d in result.diagnostics if d.severity == "error" and d.code != "no-entry"]
        if errors:
            return f"sglang side: {errors[0]}"
    return f"sglang {tree.version} has no EntryClass {entry} (unknown to the sglang side)"


def _trace(tree: SourceTree, rules: Rules, loader: Loader, entry: str) -> tuple[ArchIR, str, Classification] | str:
    result = _analyzed(tree, rules, loader, entry)
    return result if isinstance(result, str) else (result.irs[0], result.display, result.classes[0])


def _oracle(spec: OracleSpec, entry: str, config: dict | None) -> tuple[OracleModel, dict]:
    """The oracle model and the config astgen evaluates at: the one the
    oracle used (transformers fills its defaults), with the JSON's own keys
    on top."""
    if spec.recorded:
        model = runtime_recording(spec.recorded)
        return model, {**model.config, **(config or {})}
    arch = spec.arch or entry
    values = config if config is not None else default_config(arch)
    model = transformers_model(arch, values)
    return model, {**model.config, **values}


def _add_per_rank(result: Validation, table: WeightTable, tp: int) -> None:
    stack = table.stack()
    if table.problems or stack is None:
        return
    result.per_rank_tp = tp
    for w in table.weights:
        layer = table.layer_of(w, stack[0])
        if layer is not None:
            result.per_rank[layer] = result.per_rank.get(layer, 0) + w.numel


def sweep_defaults(tree: SourceTree, rules: Rules, entries: list[str], names: NameMap,
                   tick=lambda v: None, checkpoints: dict[str, tuple[str, dict]] | None = None) -> list[Validation]:
    """Every ``*ForCausalLM`` entry that transformers also implements, at a
    checkpoint's config when ``checkpoints`` has one for it (architecture ->
    (label, config)), else at transformers' default config of that
    architecture."""
    loader = Loader(tree)
    checkpoints = checkpoints or {}
    out = []
    for entry in sorted(e for e in set(entries) if e.endswith("ForCausalLM") and has_architecture(e)):
        label, config = checkpoints.get(entry, ("transformers default", None))
        out.append(validate_entry(tree, rules, loader, entry, config, label, OracleSpec(), names))
        tick(out[-1])
    return out


# ----------------------------------------------------------------------------
# the sglang runtime as the oracle: per rank, at each layout


@dataclass(frozen=True)
class RuntimeCase:
    """One entry to check against sglang's runtime: ``config`` None builds
    it at the default config of its ``model_type`` (sglang's config class,
    else transformers')."""

    entry: str
    config: dict | None
    label: str
    model_type: str = ""
    draft_of: str = ""  # a speculative draft, built from this target's checkpoint (astgen.frontend.drafts)


def validate_runtime(tree: SourceTree, rules: Rules, loader: Loader, cases: list[RuntimeCase],
                     layouts: tuple[Layout, ...], tick=lambda v: None) -> list[Validation]:
    """Every case at every layout: astgen's per-rank weights against the
    parameters sglang itself allocates at that rank. The astgen side is
    traced first (entries it cannot analyze are not built); the models are
    built in one child process."""
    out: list[Validation | None] = []
    traced: list[tuple[int, RuntimeCase, Layout, tuple[ArchIR, str]]] = []
    requests: list[dict] = []
    for case in cases:
        found = _trace(tree, rules, loader, case.entry)
        for layout in layouts:
            refused = _not_comparable(found, case.entry, f"sglang runtime {layout.label}", case.label, layout.tp)
            out.append(refused)
            if refused is not None:
                tick(refused)
                continue
            traced.append((len(out) - 1, case, layout, (found[0], found[1])))
            requests.append({"arch": case.entry, "config": case.config, "model_type": case.model_type,
                             "layout": layout_request(layout), "module": found[0].module,
                             "draft_of": case.draft_of})

    answers = sglang_runtime(runtime_root(tree), requests) if requests else iter(())
    for (slot, case, layout, (arch_ir, source)), answer in zip(traced, answers):
        out[slot] = _runtime_result(rules, case, layout, arch_ir, source, answer)
        tick(out[slot])
    return [v for v in out if v is not None]


def layout_request(layout: Layout) -> dict:
    """A layout as the sglang runtime process reads it: LLMSim's fields, the
    server arguments that deploy it, and the group sizes and ranks astgen
    expects sglang to derive (the process checks them)."""
    return {"fields": {"tp": layout.tp, "dp": layout.dp, "ep": layout.ep, "deepep": layout.deepep,
                       "fully_dp": layout.fully_dp, "rank": layout.rank},
            "server_args": layout.server_args(), "ranks": layout.ranks()}


def _built_elsewhere(answer: OracleModel, entry: str) -> str:
    """Why the runtime's model is not the entry astgen read: sglang's loader
    resolved the architecture to another class (its transformers fallback,
    models/transformers.py, when the config asks for it)."""
    if not answer.built or answer.built.rsplit(".", 1)[-1] == entry:
        return ""
    return (f"sglang's loader built {answer.built} for {entry}, not the EntryClass astgen read "
            "(model_loader/utils.py resolves the architecture; nothing to compare)")


def _runtime_result(rules: Rules, case: RuntimeCase, layout: Layout, arch_ir: ArchIR, source: str,
                    answer: OracleModel | OracleUnavailable) -> Validation:
    label = f"sglang runtime {layout.label}"
    if isinstance(answer, OracleUnavailable):
        return unusable(case.entry, label, case.label, str(answer))
    other = _built_elsewhere(answer, case.entry)
    if other:
        return unusable(case.entry, answer.name, case.label, other)
    # the checkpoint's keys as given, but what sglang's config loading rewrote as it rewrote it
    mc = {**answer.config, **(case.config or {}), **answer.rewritten}
    table = evaluate_weights(arch_ir, rules, mc, layout=layout)
    v = compare(table, answer, None, case.label, source)
    v.tp = layout.tp
    v.layout = layout.label
    v.standins = list(answer.standins)
    if v.status in (AGREE, DISAGREE):
        v.dtypes = runtime_mismatches(table, answer, mc, rules)
        if v.dtypes:
            v.status = DISAGREE
    return v


ONE_BYTE_DTYPES = {"float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "int8", "uint8",
                   "int32", "float4_e2m1fn_x2"}  # int32 and uint8: sub-byte weights packed


def runtime_mismatches(table: WeightTable, oracle: OracleModel, mc: dict, rules: Rules) -> list[str]:
    """What a per-rank oracle shows beyond element counts, one line per
    module (the first layer it differs in): the weight width (quantized, one
    byte or less, on one side; the model dtype on the other), and the
    experts a rank holds (the leading dim of sglang's stacked 3-D weights
    against the batch of astgen's matmuls; a 3-D convolution weight is no
    stack of experts)."""
    dtypes: dict[str, set[str]] = {}
    leading: dict[str, set[int]] = {}
    for p in oracle.params:
        if p.excluded:
            continue
        if p.dtype:
            dtypes.setdefault(p.module, set()).add(p.dtype)
        if len(p.shape) == 3:
            leading.setdefault(p.module, set()).add(p.shape[0])
    out, seen = [], set()
    for w in table.weights:
        bare = re.sub(r"\.\d+(?=\.|$)", "", w.path)
        theirs_d = dtypes.get(w.path)
        if theirs_d:
            theirs, ours = all(d in ONE_BYTE_DTYPES for d in theirs_d), w.quantized and one_byte(mc, w.path, rules)
            if ours != theirs and (bare, "dtype") not in seen:
                seen.add((bare, "dtype"))
                out.append(f"{w.loc}: mismatch: {w.path} ({w.cls}) weights: astgen "
                           f"{'quantized, 1 byte' if ours else 'the model dtype'}, sglang {'/'.join(sorted(theirs_d))}")
        theirs_l = leading.get(w.path) if max(w.batches, default=1) > 1 or w.path.endswith("experts") else None
        if theirs_l and set(w.batches) != theirs_l and (bare, "batch") not in seen:  # stacked experts only
            seen.add((bare, "batch"))
            out.append(f"{w.loc}: mismatch: {w.path} ({w.cls}) experts on this rank: astgen "
                       f"{'/'.join(map(str, sorted(set(w.batches))))}, sglang {'/'.join(map(str, sorted(theirs_l)))}")
    return out

# ----------------------------------------------------------------------------
# the forward tier: sglang's recorded forward pass against the operators


FORWARD_MODES = {"extend": (EXTEND, {"tokens": 4096, "batch": 1}),
                 "decode": (DECODE, {"tokens": 8, "batch": 8, "context": 4096})}


@dataclass
class ForwardValidation:
    arch: str
    config: str
    layout: str
    mode: str
    status: str = UNUSABLE
    message: str = ""
    source: str = ""
    check: ForwardCheck | None = None
    standins: list[str] = field(default_factory=list)


def validate_forward(tree: SourceTree, rules: Rules, loader: Loader, cases: list[RuntimeCase],
                     layouts: tuple[Layout, ...], modes: tuple[str, ...] = ("extend", "decode"),
                     tick=lambda v: None) -> list[ForwardValidation]:
    """Each case at each layout and mode: what sglang's ``forward`` runs on
    the meta device (EXTEND: one request of 4,096 tokens; DECODE: 8 requests
    at 4,096 tokens of context) against astgen's operators evaluated at the
    same config and schedule (``sc.max_seqlen`` 4,096; ``sc.batch_size`` 1
    and 8)."""
    out: list[ForwardValidation | None] = []
    asked: list[tuple[int, RuntimeCase, Layout, str, ArchShapes, str]] = []
    requests: list[dict] = []
    for case in cases:
        found = _shapes_of(tree, rules, loader, case.entry)
        for layout in layouts:
            for mode in modes:
                if isinstance(found, str):
                    out.append(ForwardValidation(case.entry, case.label, layout.label, mode, UNUSABLE, found))
                    tick(out[-1])
                    continue
                asked.append((len(out), case, layout, mode, found[0], found[1]))
                requests.append({"arch": case.entry, "config": case.config, "model_type": case.model_type,
                                 "layout": layout_request(layout), "module": shapes_module(found[1]),
                                 "forward": {"mode": mode, **FORWARD_MODES[mode][1]}})
                out.append(None)
    answers = sglang_runtime(runtime_root(tree), requests) if requests else iter(())
    for (slot, case, layout, mode, shapes, source), answer in zip(asked, answers):
        out[slot] = _forward_result(case, layout, mode, shapes, source, answer)
        tick(out[slot])
    return [v for v in out if v is not None]


def shapes_module(display: str) -> str:
    """``sglang/srt/models/qwen3.py`` -> ``sglang.srt.models.qwen3``."""
    return display.removesuffix(".py").replace("/", ".")


def _shapes_of(tree: SourceTree, rules: Rules, loader: Loader, entry: str) -> tuple[ArchShapes, str] | str:
    result = _analyzed(tree, rules, loader, entry)
    if isinstance(result, str):
        return result
    if result.classes[0].status != FULLY or not result.shapes:
        return f"astgen's analysis of {entry} is {result.classes[0].status}: nothing to compare"
    return result.shapes[0], result.display


def _forward_result(case: RuntimeCase, layout: Layout, mode: str, shapes: ArchShapes, source: str,
                    answer: OracleModel | OracleUnavailable) -> ForwardValidation:
    v = ForwardValidation(case.entry, case.label, layout.label, mode, source=source)
    if isinstance(answer, OracleUnavailable) or not answer.forward or _built_elsewhere(answer, case.entry):
        v.message = str(answer) if isinstance(answer, OracleUnavailable) else \
            _built_elsewhere(answer, case.entry) or "the runtime recorded no forward pass"
        return v
    code, run = FORWARD_MODES[mode]
    sc = layout.schedule(mode=code, max_seqlen=4096, batch_size=run["batch"])
    mc = {**answer.config, **(case.config or {})}
    ours, problems = astgen_rows(shapes, mc, sc)
    v.check = check(mode, ours, sglang_rows(answer.forward.get("table", [])), problems)
    v.status = AGREE if v.check.agrees else DISAGREE
    v.standins = list(answer.standins)
    return v


def render_forward(results: list[ForwardValidation], title: str) -> str:
    counts = Counter(v.status for v in results)
    lines = [f"# {title}", "", f"{len(results)} runs: " + ", ".join(f"{counts[s]} {s}" for s in
                                                                      (AGREE, DISAGREE, UNUSABLE)), ""]
    for v in results:
        head = f"{v.arch} at {v.config}, {v.layout}, {v.mode}: {v.status}"
        if v.check is None:
            lines.append(f"{head}: {v.message}")
            continue
        lines.append(f"{head} ({len(v.check.pairs)} operators equal)")
        lines += [f"  {line}" for line in v.check.lines()]
    standins = sorted({m for v in results for m in v.standins})
    if standins:
        lines += ["", "Stood in (imports, __init__ and answers only; no shape comes from them): " + ", ".join(standins)]
    return "\n".join(lines) + "\n"


def render_forward_json(results: list[ForwardValidation]) -> str:
    def row(r: Row) -> dict:
        return {"kind": r.kind, "key": r.key, "m": r.m, "k": r.k, "n": r.n, "batch": r.batch, "count": r.count,
                "where": r.where}

    def one(v: ForwardValidation) -> dict:
        c = v.check
        return {"arch": v.arch, "config": v.config, "layout": v.layout, "mode": v.mode, "status": v.status,
                "message": v.message, "source": v.source, "standins": v.standins,
                "equal": [row(a) for a, _ in c.pairs] if c else [],
                "differ": [{"astgen": row(a), "sglang": row(b)} for a, b in c.differ] if c else [],
                "astgen_only": [row(a) for a in c.astgen_only] if c else [],
                "sglang_only": [row(b) for b in c.sglang_only] if c else [],
                "problems": c.problems if c else [], "lines": c.lines() if c else []}
    counts = Counter(v.status for v in results)
    return json.dumps({"schema": "astgen.validate-forward/1",
                       "summary": {k: counts[k] for k in (AGREE, DISAGREE, UNUSABLE)},
                       "results": [one(v) for v in results]}, indent=1, sort_keys=True) + "\n"
