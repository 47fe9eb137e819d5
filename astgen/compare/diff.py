"""Stage 8b, diff: what changed between two sglang trees, architecture by
architecture and operator by operator (Markdown for people, JSON for
programs; schema ``astgen.diff/1``).

Only what changes a value is a change: a field whose two texts are one
value in two forms (:mod:`astgen.compare.drift`: the same canonical form, or the
same value at every known config and sampled schedule) is counted apart, as
form only, and its entry stays unchanged. The value changes are grouped (one
change in several entries is one line) under the sglang file behind them.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from astgen.compare.check import Change, operator_changes
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
from astgen.emit.modules import operator_records
from astgen.lower.classify import FULLY
from astgen.scan import FileResult

SCHEMA = "astgen.diff/1"


@dataclass
class TreeDiff:
    old: str  # sglang version (or root) compared from
    new: str
    added: list[str] = field(default_factory=list)  # entry classes only in new
    removed: list[str] = field(default_factory=list)
    changed: dict[str, list[Change]] = field(default_factory=dict)  # entry -> operator changes of value
    unchanged: list[str] = field(default_factory=list)
    status: dict[str, tuple[str, str]] = field(default_factory=dict)  # entry -> (old, new) when it moved
    form_only: dict[str, list[FieldDrift]] = field(default_factory=dict)  # entry -> fields changed in form only
    groups: list[Group] = field(default_factory=list)  # the changes of value, grouped

    def summary(self) -> dict[str, int]:
        kinds = Counter(c.what for changes in self.changed.values() for c in changes)
        return {"added": len(self.added), "removed": len(self.removed), "changed": len(self.changed),
                "unchanged": len(self.unchanged), "status_changed": len(self.status),
                "operators_added": kinds["added"], "operators_removed": kinds["removed"],
                "fields_changed": kinds["changed"]}

    def form_counts(self) -> dict[str, int]:
        """Field changes of form only: all, by canonical form, by values."""
        return form_counts([d for ds in self.form_only.values() for d in ds])


def diff_trees(old: list[FileResult], new: list[FileResult], old_name: str, new_name: str,
               configs: ConfigIndex | None = None) -> TreeDiff:
    """The entries of both trees compared; a changed field is compared at
    the configs ``configs`` knows for its entry."""
    configs = configs if configs is not None else ConfigIndex()
    a, b = _entries(old), _entries(new)
    out = TreeDiff(old_name, new_name, added=sorted(set(b) - set(a)), removed=sorted(set(a) - set(b)))
    value_items: list[Change | FieldDrift] = []
    for entry in sorted(set(a) & set(b)):
        (status_a, ops_a), (status_b, ops_b) = a[entry], b[entry]
        if status_a != status_b:
            out.status[entry] = (status_a, status_b)
        items = explained(operator_changes("", ops_a, ops_b), configs.of)
        values = [i for i in items if changes_value(i)]
        forms = [i for i in items if not changes_value(i)]
        if forms:
            out.form_only[entry] = forms
        if values:
            out.changed[entry] = [change_of(i) for i in values]
            value_items += values
        else:
            out.unchanged.append(entry)
    out.groups = sorted(group(value_items), key=_place)
    return out


def _place(g: Group) -> tuple:
    """Groups by sglang file and line."""
    path, _, line = g.where.rpartition(":")
    return (path, int(line)) if line.isdigit() else (g.where, 0)


def _entries(results: list[FileResult]) -> dict[str, tuple[str, list[dict]]]:
    """entry -> (status, operator records); the first file wins for a name
    two files declare."""
    out: dict[str, tuple[str, list[dict]]] = {}
    for r in sorted(results, key=lambda r: r.display):
        for shapes, c in zip(r.shapes, r.classes):
            out.setdefault(c.entry, (c.status, operator_records(shapes) if c.status == FULLY else []))
    return out


def to_json(d: TreeDiff) -> dict[str, Any]:
    """``changed`` holds the changes of value per entry (fields as in their
    modules' text); ``groups`` the same changes grouped, with the smallest
    subexpression and values at known configs; ``form_only`` the field
    changes that are not changes of value."""
    return {
        "schema": SCHEMA, "from": d.old, "to": d.new, "summary": d.summary(),
        "added": d.added, "removed": d.removed,
        "status_changed": [{"entry": e, "from": s[0], "to": s[1]} for e, s in sorted(d.status.items())],
        "changed": [{"entry": e, "changes": [
            {"what": c.what, "operator": c.operator, "field": c.field, "from": c.old, "to": c.new, "at": c.at}
            for c in changes]} for e, changes in sorted(d.changed.items())],
        "groups": [g.to_json(n) for n, g in enumerate(d.groups)],
        "form_only": {**d.form_counts(), "changed": [{"entry": e, "changes": [
            {"operator": f.change.operator, "field": f.change.field, "from": f.change.old, "to": f.change.new,
             "at": f.change.at, "verdict": f.verdict} for f in drifts]} for e, drifts in sorted(d.form_only.items())]},
    }


def render_json(d: TreeDiff) -> str:
    return json.dumps(to_json(d), indent=2, ensure_ascii=False) + "\n"


def render_markdown(d: TreeDiff) -> str:
    s, f = d.summary(), d.form_counts()
    lines = [f"# sglang {d.old} -> {d.new}", "",
             f"{s['added']} architectures added, {s['removed']} removed, {s['changed']} changed, "
             f"{s['unchanged']} unchanged; {s['status_changed']} changed support status. Operators: "
             f"{s['operators_added']} added, {s['operators_removed']} removed, {s['fields_changed']} "
             f"shape or layer-count changes ({len(d.groups)} distinct). Not listed: {f['fields']} field "
             f"change(s) of form only ({f['by_form']} of the same canonical form, {f['by_values']} of the same "
             "value at every known config and sampled schedule).", ""]
    if d.added:
        lines += ["## Added", "", *(f"- {e}" for e in d.added), ""]
    if d.removed:
        lines += ["## Removed", "", *(f"- {e}" for e in d.removed), ""]
    if d.status:
        lines += ["## Support status changed", "", "| entry | from | to |", "| --- | --- | --- |",
                  *(f"| {e} | {a} | {b} |" for e, (a, b) in sorted(d.status.items())), ""]
    if d.groups:
        lines += ["## Changed", ""]
        heading = None
        for g in d.groups:
            path = _place(g)[0]
            if path != heading:
                heading = path
                lines += ([""] if lines[-1] else []) + [f"### {path}", ""]
            values = g.values_text()
            lines.append(f"- {g.describe()} ({g.where})" + (f"; {values}" if values else ""))
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"
