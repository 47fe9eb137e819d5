"""Stage 9b, diff: what changed between two sglang trees, architecture by
architecture and operator by operator (Markdown for people, JSON for
programs; schema ``astgen.diff/1``)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from astgen.check import Change, operator_changes
from astgen.classify import FULLY
from astgen.emit import operator_records
from astgen.scan import FileResult

SCHEMA = "astgen.diff/1"


@dataclass
class TreeDiff:
    old: str  # sglang version (or root) compared from
    new: str
    added: list[str] = field(default_factory=list)  # entry classes only in new
    removed: list[str] = field(default_factory=list)
    changed: dict[str, list[Change]] = field(default_factory=dict)  # entry -> operator changes
    unchanged: list[str] = field(default_factory=list)
    status: dict[str, tuple[str, str]] = field(default_factory=dict)  # entry -> (old, new) when it moved

    def summary(self) -> dict[str, int]:
        kinds = Counter(c.what for changes in self.changed.values() for c in changes)
        return {"added": len(self.added), "removed": len(self.removed), "changed": len(self.changed),
                "unchanged": len(self.unchanged), "status_changed": len(self.status),
                "operators_added": kinds["added"], "operators_removed": kinds["removed"],
                "fields_changed": kinds["changed"]}


def diff_trees(old: list[FileResult], new: list[FileResult], old_name: str, new_name: str) -> TreeDiff:
    a, b = _entries(old), _entries(new)
    out = TreeDiff(old_name, new_name, added=sorted(set(b) - set(a)), removed=sorted(set(a) - set(b)))
    for entry in sorted(set(a) & set(b)):
        (status_a, ops_a), (status_b, ops_b) = a[entry], b[entry]
        if status_a != status_b:
            out.status[entry] = (status_a, status_b)
        changes = operator_changes("", ops_a, ops_b)
        if changes:
            out.changed[entry] = changes
        else:
            out.unchanged.append(entry)
    return out


def _entries(results: list[FileResult]) -> dict[str, tuple[str, list[dict]]]:
    """entry -> (status, operator records); the first file wins for a name
    two files declare."""
    out: dict[str, tuple[str, list[dict]]] = {}
    for r in sorted(results, key=lambda r: r.display):
        for shapes, c in zip(r.shapes, r.classes):
            out.setdefault(c.entry, (c.status, operator_records(shapes) if c.status == FULLY else []))
    return out


def to_json(d: TreeDiff) -> dict[str, Any]:
    return {
        "schema": SCHEMA, "from": d.old, "to": d.new, "summary": d.summary(),
        "added": d.added, "removed": d.removed,
        "status_changed": [{"entry": e, "from": s[0], "to": s[1]} for e, s in sorted(d.status.items())],
        "changed": [{"entry": e, "changes": [
            {"what": c.what, "operator": c.operator, "field": c.field, "from": c.old, "to": c.new, "at": c.at}
            for c in changes]} for e, changes in sorted(d.changed.items())],
    }


def render_json(d: TreeDiff) -> str:
    return json.dumps(to_json(d), indent=2, ensure_ascii=False) + "\n"


def render_markdown(d: TreeDiff) -> str:
    s = d.summary()
    lines = [f"# sglang {d.old} -> {d.new}", "",
             f"{s['added']} architectures added, {s['removed']} removed, {s['changed']} changed, "
             f"{s['unchanged']} unchanged; {s['status_changed']} changed support status. Operators: "
             f"{s['operators_added']} added, {s['operators_removed']} removed, {s['fields_changed']} "
             "shape or layer-count changes.", ""]
    if d.added:
        lines += ["## Added", "", *(f"- {e}" for e in d.added), ""]
    if d.removed:
        lines += ["## Removed", "", *(f"- {e}" for e in d.removed), ""]
    if d.status:
        lines += ["## Support status changed", "", "| entry | from | to |", "| --- | --- | --- |",
                  *(f"| {e} | {a} | {b} |" for e, (a, b) in sorted(d.status.items())), ""]
    if d.changed:
        lines += ["## Changed", ""]
        for entry, changes in sorted(d.changed.items()):
            lines += [f"### {entry}", ""]
            lines += [f"- {c.render().split(': drift: ', 1)[-1]} ({c.at})" for c in changes]
            lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"
