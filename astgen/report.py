"""Stage 7b, report: the account of a scan, as JSON (for programs, schema
``astgen.scan/1``, documented in the README) and Markdown (for people).

Everything is sorted and nothing depends on time or machine, so the same
inputs give byte-identical reports (CI compares them).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from astgen.lower.classify import (
    CATEGORIES,
    FULLY,
    NOT_SUPPORTED,
    PARTIALLY,
    STATUSES,
    Classification,
)
from astgen.scan import FileResult

SCHEMA = "astgen.scan/1"
TOP_REASONS = 15


@dataclass(frozen=True)
class ConfigCheck:
    """A config found for an entry, and the keys it lacks."""

    source: str
    missing: tuple[str, ...]


@dataclass
class ScanReport:
    sglang: str
    root: str
    astgen: str
    rules: str
    files: list[FileResult]
    configs: dict[str, ConfigCheck] = field(default_factory=dict)  # entry name -> check
    modules: dict[str, str] = field(default_factory=dict)  # model file display -> module written

    # -- the data -------------------------------------------------------
    def entries(self) -> list[tuple[FileResult, Classification]]:
        pairs = [(f, c) for f in self.files for c in f.classes]
        return sorted(pairs, key=lambda fc: (fc[1].entry, fc[0].display))

    def status_of(self, c: Classification) -> str:
        """The entry's status, lowered to PARTIALLY when its config lacks a key."""
        check = self.configs.get(c.entry)
        if c.status == FULLY and check is not None and check.missing:
            return PARTIALLY
        return c.status

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "sglang": self.sglang,
            "root": self.root,
            "astgen": self.astgen,
            "rules": self.rules,
            "summary": self.summary(),
            "files": [self._file_json(f) for f in sorted(self.files, key=lambda f: f.display)],
            "entries": [self._entry_json(f, c) for f, c in self.entries()],
            "top_reasons": self.top_reasons(),
        }

    def summary(self) -> dict[str, Any]:
        entries = self.entries()
        statuses = Counter(self.status_of(c) for _, c in entries)
        categories = Counter(c.category for _, c in entries)
        causal = [c for _, c in entries if c.entry.endswith("ForCausalLM")]
        causal_full = sum(1 for c in causal if self.status_of(c) == FULLY)
        failed = [f for f in self.files if any(d.severity == "error" and d.code in ("syntax", "crash")
                                               for d in f.diagnostics)]
        return {
            "files": len(self.files),
            "files_with_entries": sum(1 for f in self.files if f.classes),
            "files_failed": len(failed),
            "entries": len(entries),
            "modules_written": len(self.modules),
            "by_status": {s: statuses.get(s, 0) for s in STATUSES},
            "by_category": {k: categories.get(k, 0) for k in CATEGORIES},
            "causal_lm": {"entries": len(causal), "fully": causal_full,
                          "percent": _percent(causal_full, len(causal))},
        }

    def top_reasons(self, limit: int = TOP_REASONS) -> list[dict[str, Any]]:
        """The constructs that keep the most entries from FULLY: rules/ to-do."""
        entries_by: dict[tuple[str, str], set[str]] = {}
        where: dict[tuple[str, str], str] = {}
        for _, c in self.entries():
            for r in c.reasons:
                key = (r.code, r.subject)
                entries_by.setdefault(key, set()).add(c.entry)
                where.setdefault(key, r.location)
        ranked = sorted(entries_by.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        return [{"code": code, "subject": subject, "entries": len(names),
                 "example": sorted(names)[0], "location": where[(code, subject)]}
                for (code, subject), names in ranked[:limit]]

    def _file_json(self, f: FileResult) -> dict[str, Any]:
        errors = [d for d in f.diagnostics if d.severity == "error" and d.code != "no-entry"]
        return {
            "file": f.display,
            "state": "error" if errors else ("analyzed" if f.classes else "no-entry"),
            "errors": [{"code": d.code, "location": str(d.loc), "message": d.message} for d in errors],
            "entries": [c.entry for c in f.classes],
            "module": self.modules.get(f.display),
        }

    def _entry_json(self, f: FileResult, c: Classification) -> dict[str, Any]:
        check = self.configs.get(c.entry)
        return {
            "name": c.entry,
            "file": f.display,
            "category": c.category,
            "backbone": c.backbone,
            "head": c.head,
            "features": list(c.features),
            "towers": [{"path": t.path, "class": t.cls, "location": t.location} for t in c.towers],
            "status": self.status_of(c),
            "operators": c.operators,
            "reasons": [{"code": r.code, "subject": r.subject, "location": r.location, "message": r.message}
                        for r in c.reasons],
            "findings": [{"location": str(d.loc), "message": d.message}
                         for s in f.shapes if s.entry == c.entry for d in s.diagnostics if d.code == "finding"],
            "config_keys": list(c.config_keys),
            "config": None if check is None else {"source": check.source, "missing": list(check.missing)},
        }


def _percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


# ----------------------------------------------------------------------------
# renderers


def render_json(report: ScanReport) -> str:
    return json.dumps(report.to_json(), indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def render_markdown(report: ScanReport) -> str:
    data = report.to_json()
    s = data["summary"]
    lines = [
        f"# astgen scan of sglang {report.sglang}",
        "",
        f"astgen {report.astgen}, rules {report.rules}. {s['files']} model files, "
        f"{s['files_with_entries']} with an EntryClass, {s['files_failed']} failed; "
        f"{s['entries']} entry classes; {s['modules_written']} modules written.",
        "",
        "## Summary",
        "",
        "| status | entries |",
        "| --- | ---: |",
        *(f"| {k} | {v} |" for k, v in s["by_status"].items()),
        "",
        f"`*ForCausalLM` entries fully supported: {s['causal_lm']['fully']} of "
        f"{s['causal_lm']['entries']} ({s['causal_lm']['percent']}%).",
        "",
        "| category | entries | FULLY | PARTIALLY | NOT_SUPPORTED |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for cat in CATEGORIES:
        rows = [e for e in data["entries"] if e["category"] == cat]
        counts = Counter(e["status"] for e in rows)
        lines.append(f"| {cat} | {len(rows)} | {counts[FULLY]} | {counts[PARTIALLY]} | {counts[NOT_SUPPORTED]} |")
    lines += ["", "## Top reasons (what to add to rules/ or the tracer)", "",
              "| entries | code | construct | first seen |", "| ---: | --- | --- | --- |"]
    lines += [f"| {r['entries']} | {r['code']} | `{_cell(r['subject'])}` | {r['location']} |"
              for r in data["top_reasons"]]
    findings = [(e["name"], x) for e in data["entries"] for x in e["findings"]]
    if findings:
        lines += ["", "## Where sglang's code looks wrong (the modules follow it)", ""]
        lines += [f"- {name}, {x['location']}: {_cell(x['message'])}" for name, x in findings]
    failed = [f for f in data["files"] if f["state"] == "error"]
    if failed:
        lines += ["", "## Files that failed", ""]
        lines += [f"- {f['file']}: {_cell(e['location'])}: {_cell(e['message'])}" for f in failed for e in f["errors"]]
    for cat in CATEGORIES:
        rows = [e for e in data["entries"] if e["category"] == cat]
        if rows:
            lines += ["", f"## {cat}", "", "| entry | file | status | ops | features | reason |",
                      "| --- | --- | --- | ---: | --- | --- |"]
            lines += [_entry_row(e) for e in rows]
    return "\n".join(lines) + "\n"


def _entry_row(e: dict[str, Any]) -> str:
    features = ", ".join(e["features"])
    if e["towers"]:
        features = (features + ", " if features else "") + "towers: " + ", ".join(t["path"] for t in e["towers"])
    if e["head"] != "generative":
        features = (features + ", " if features else "") + f"head: {e['head']}"
    reason = ""
    if e["reasons"]:
        r = e["reasons"][0]
        more = f" (+{len(e['reasons']) - 1} more)" if len(e["reasons"]) > 1 else ""
        reason = f"{r['code']}: `{_cell(r['subject'])}` at {r['location']}{more}"
    elif e["config"] and e["config"]["missing"]:
        reason = f"config lacks {', '.join(e['config']['missing'])}"
    return f"| {e['name']} | {e['file']} | {e['status']} | {e['operators']} | {features} | {reason} |"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
