"""Stage 8a, check: compare freshly generated modules with committed ones and
say, operator by operator, what drifted and which sglang line caused it.

A committed module is read as text only: its header (astgen and rules
versions) and its ``# astgen-op:`` trailer (JSON). Nothing in it is run.

A module is *drifted* when a value changed: an operator added or removed,
a field whose value differs (:mod:`astgen.compare.drift` tells a value change from
a form change), a module added or removed. It is *stale* when its text
differs and no value changed: another astgen/rules made it, a field changed
form only, operators moved to other lines, or text outside the operator
table differs. Both need ``--update``; :func:`render_text` and
:func:`to_json` (schema ``astgen.check/1``) say which is which.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from astgen.compare.change import Change
from astgen.compare.drift import (
    ConfigIndex,
    FieldDrift,
    Group,
    change_of,
    changes_value,
    explained,
    form_counts,
    group,
)
from astgen.emit.modules import module_name_for, operator_records
from astgen.emit.package import OP_MARK, read_module, table_name
from astgen.scan import FileResult

SCHEMA = "astgen.check/1"

FIELDS = ("kind", "m", "k", "n", "batch", "layers", "guard", "per_layer")


@dataclass
class ModuleCheck:
    name: str  # module file name
    source: str | None  # freshly generated text (None: no longer generated)
    changes: list[Change] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        return bool(self.changes)


def check_modules(results: list[FileResult], against: Path, generator: str,
                  only: set[str] | None = None) -> list[ModuleCheck]:
    """Every module the results generate, and every committed module they no
    longer generate, with its changes (none when the text is identical).
    With ``only`` (module file names), committed modules outside it are not
    looked at (the hook checks the modules of a few files)."""
    fresh = {module_name_for(r.path.name) + ".py": r for r in results if r.source is not None}
    committed = {p.name for p in against.glob("*_model_arch.py")} if against.is_dir() else set()
    if only is not None:
        committed &= only
    checks = []
    for name in sorted(set(fresh) | committed):
        result = fresh.get(name)
        old_text = read_module(against, name) if name in committed else None
        checks.append(ModuleCheck(name, result.source if result else None,
                                  _changes(name, result, old_text, generator)))
    return checks


def check_package(against: Path, files: dict[str, str]) -> list[ModuleCheck]:
    """The package's own files (:mod:`astgen.emit.package`, ``files``: name ->
    expected source) that are missing from ``against`` or differ: stale, not
    drift (a clean one is not reported; the summary counts model modules)."""
    checks = []
    for name, source in sorted(files.items()):
        old = _read(against / name)
        if old != source:
            how = "is missing" if old is None else "differs"
            checks.append(ModuleCheck(name, source, [Change(name, "", "package", old=how)]))
    return checks


def _changes(name: str, result: FileResult | None, old_text: str | None, generator: str) -> list[Change]:
    if result is not None and old_text == result.source:
        return []
    if old_text is None:
        entries = ", ".join(s.entry for s in result.shapes if s.operators)
        return [Change(name, entries, "module-added")]
    if result is None:
        return [Change(name, ", ".join(sorted({r["entry"] for r in _records(old_text)})), "module-removed")]
    old_generator = header_generator(old_text)
    if old_generator != generator:
        return [Change(name, "", "generator", old=old_generator or "an unknown generator", new=generator)]
    new = [r for s in result.shapes for r in operator_records(s)]
    old = _records(old_text)
    if new and not old:  # read_module found no table beside the module
        return [Change(name, "", "table", old=table_name(name))]
    return _diff(name, old, new)


def _diff(module: str, old: list[dict], new: list[dict]) -> list[Change]:
    """The operator changes; else (the text differs) the first operator built
    on another line; else a change of text outside the operator table."""
    changes = operator_changes(module, old, new)
    if changes:
        return changes
    moved = [(a, b) for a, b in zip(old, new) if a["at"] != b["at"]]
    if moved:
        a, b = moved[0]
        return [Change(module, b["entry"], "moved", b["name"], "at", a["at"], b["at"], b["at"])]
    return [Change(module, "", "text")]


def operator_changes(module: str, old: list[dict], new: list[dict]) -> list[Change]:
    """Operators added, removed, and each field that changed (a moved source
    line alone is no change)."""
    a, b = keyed(old), keyed(new)
    changes = []
    for key in sorted(set(a) | set(b)):
        entry, name = key[0], key[1]
        x, y = a.get(key), b.get(key)
        if x is None:
            changes.append(Change(module, entry, "added", name, at=y["at"]))
        elif y is None:
            changes.append(Change(module, entry, "removed", name, at=x["at"]))
        else:
            changes += [Change(module, entry, "changed", name, f, x.get(f, ""), y.get(f, ""), y["at"],
                               x.get("per_layer", ""), y.get("per_layer", ""))
                        for f in FIELDS if x.get(f, "") != y.get(f, "")]
    return changes


def keyed(records: list[dict]) -> dict[tuple[str, str, int], dict]:
    """Operators by (entry, name, n-th of that name): lm_head may appear twice."""
    seen: dict[tuple[str, str], int] = {}
    out = {}
    for r in records:
        n = seen.get((r["entry"], r["name"]), 0)
        seen[(r["entry"], r["name"])] = n + 1
        out[(r["entry"], r["name"], n)] = r
    return out


def _records(text: str) -> list[dict]:
    records = []
    for line in text.splitlines():
        if line.startswith(OP_MARK):
            try:
                record = json.loads(line[len(OP_MARK):])
            except ValueError:
                continue
            if isinstance(record, dict) and "entry" in record and "name" in record:
                records.append({k: str(v) for k, v in record.items()})
    return records


_GENERATOR = re.compile(r"^# Generated by astgen (\S+) \(rules (\S+), (\w+)\)", re.M)
_GENERATOR_BEFORE = re.compile(r"^# (astgen|rules): (.+)$", re.M)  # modules of astgen before 2026-12


def header_generator(text: str) -> str:
    """``astgen 0.1.0, rules 1.1 (digest)`` from a module's header."""
    match = _GENERATOR.search(text[:2000])
    if match:
        return f"astgen {match[1]}, rules {match[2]} ({match[3]})"
    found = dict(_GENERATOR_BEFORE.findall(text[:2000]))
    if "astgen" not in found or "rules" not in found:
        return ""
    return f"astgen {found['astgen']}, rules {found['rules']}"


def _read(path: Path) -> str | None:
    try:
        return path.read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return None


# ----------------------------------------------------------------------------
# the report: each change explained (astgen.compare.drift), one line per group


@dataclass
class ModuleReport:
    name: str
    items: list[Change | FieldDrift]  # field changes explained, the others as they are

    @property
    def value_items(self) -> list[Change | FieldDrift]:
        """What changes a value: value drifts, operators and modules added or removed."""
        return [i for i in self.items if changes_value(i)]

    @property
    def form_only(self) -> list[FieldDrift]:
        return [i for i in self.items if isinstance(i, FieldDrift) and not i.is_value]

    @property
    def status(self) -> str:
        return "clean" if not self.items else ("drifted" if self.value_items else "stale")


@dataclass
class CheckReport:
    against: str
    generator: str
    modules: list[ModuleReport]
    groups: list[Group] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for m in self.modules if m.status == status)


def explain(checks: list[ModuleCheck], index: ConfigIndex, against: str, generator: str) -> CheckReport:
    """Each changed field compared at the configs known for its entry's
    architecture; value changes and operators added or removed grouped."""
    modules = [ModuleReport(c.name, explained(c.changes, index.of)) for c in checks]
    groups = group(i for m in modules for i in m.value_items
                   if isinstance(i, FieldDrift) or i.what in ("added", "removed"))
    return CheckReport(against, generator, modules, groups)


def _group_of(report: CheckReport) -> dict[int, Group]:
    return {id(i): g for g in report.groups for i in g.members}


def render_text(report: CheckReport, updated: bool = False) -> str:
    """One line per group of identical drifts (printed where its first member
    is), per other change, and per module whose fields changed only form;
    then a summary line."""
    lines, of, shown = [], _group_of(report), set()
    for m in report.modules:
        for item in m.value_items:
            g = of.get(id(item))
            if g is None:
                lines.append(item.render())
            elif id(g) not in shown:
                shown.add(id(g))
                lines.append(g.render())
        lines += [i.render() for i in m.items if isinstance(i, Change) and i.stale_only]
        if m.form_only:
            lines.append(_form_line(m))
    stale, drifted = report.count("stale"), report.count("drifted")
    if updated:
        tail = f"{stale + drifted} updated"
    else:
        tail = (f"{stale} stale, " if stale else "") + f"{drifted} drifted"
    lines.append(f"check: {len(report.modules)} modules against {report.against}: {tail}")
    return "\n".join(lines) + "\n"


def _form_line(m: ModuleReport) -> str:
    counts = form_counts(m.form_only)
    by_form, by_values = counts["by_form"], counts["by_values"]
    how = [f"{by_form} of the same canonical form"] if by_form else []
    how += [f"{by_values} of the same value at every known config and sampled schedule"] if by_values else []
    return (f"{m.name}: stale: {len(m.form_only)} operator field(s) changed form only, no value "
            f"({', '.join(how)}; regenerate with --update)")


def _change_json(item: Change | FieldDrift, groups: dict[int, int]) -> dict:
    c = change_of(item)
    out = {"what": c.what, "entry": c.entry, "operator": c.operator, "field": c.field, "from": c.old,
           "to": c.new, "at": c.at}
    if isinstance(item, FieldDrift):
        out.update({"verdict": item.verdict, "from_sub": item.old_sub, "to_sub": item.new_sub,
                    "values": [v.to_json() for v in item.values]})
    else:
        out["line"] = item.render()
    out["group"] = groups.get(id(item))
    return out


def to_json(report: CheckReport) -> dict:
    """Schema ``astgen.check/1``: per module its status and every change
    (field changes with verdict, smallest subexpression, values at known
    configs and the index of their group); the groups with their line."""
    index = {id(i): n for n, g in enumerate(report.groups) for i in g.members}
    items = [i for m in report.modules for i in m.items]
    fields = [i for i in items if isinstance(i, FieldDrift)]
    summary = {"modules": len(report.modules), "clean": report.count("clean"), "stale": report.count("stale"),
               "drifted": report.count("drifted"),
               "value_changes": sum(1 for d in fields if d.is_value),
               "form_only": sum(1 for d in fields if not d.is_value),
               "operators_added": sum(1 for i in items if isinstance(i, Change) and i.what == "added"),
               "operators_removed": sum(1 for i in items if isinstance(i, Change) and i.what == "removed"),
               "groups": len(report.groups)}
    return {"schema": SCHEMA, "against": report.against, "generator": report.generator, "summary": summary,
            "modules": [{"module": m.name, "status": m.status,
                         "changes": [_change_json(i, index) for i in m.items]} for m in report.modules],
            "groups": [g.to_json(n) for n, g in enumerate(report.groups)]}


def render_json(report: CheckReport) -> str:
    return json.dumps(to_json(report), indent=2, ensure_ascii=False) + "\n"
