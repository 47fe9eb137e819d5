"""astgen diff between two trees: architectures added, removed, changed."""

from __future__ import annotations

import json
import shutil

import pytest

from astgen.cli import main
from tests.helpers import FIXTURES


def test_diff_of_two_fixture_trees(tmp_path, capsys):
    old, new = tmp_path / "old", tmp_path / "new"
    shutil.copytree(FIXTURES, old)
    shutil.copytree(FIXTURES, new)
    (new / "bom.py").unlink()
    hybrid = new / "hybrid.py"
    hybrid.write_text(hybrid.read_text().replace("[width] * 2", "[width] * 3"))
    report = tmp_path / "d.json"
    assert main(["diff", "--from", str(old), "--to", str(new), "-q", "--no-cache", "--report", str(report)]) == 0
    data = json.loads(report.read_text())
    assert data["schema"] == "astgen.diff/1"
    assert data["removed"] == ["BomForSequenceClassification"] and data["added"] == []
    assert data["changed"] == [{"entry": "HybridForCausalLM", "changes": [{
        "what": "changed", "operator": "gate_up_proj", "field": "n",
        "from": "sum((mc.intermediate_sizes[i], mc.intermediate_sizes[i])) // (sc.tp_size * sc.dp_size)",
        "to": "sum((mc.intermediate_sizes[i], mc.intermediate_sizes[i], mc.intermediate_sizes[i])) "
              "// (sc.tp_size * sc.dp_size)",
        "at": "hybrid.py:41"}]}]
    assert data["summary"] == {"added": 0, "removed": 1, "changed": 1, "unchanged": 7, "status_changed": 0,
                               "operators_added": 0, "operators_removed": 0, "fields_changed": 1}
    assert main(["diff", "--from", str(old), "--to", str(new), "-q", "--no-cache"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("# sglang unknown -> unknown\n\n0 architectures added, 1 removed, 1 changed, "
                           "7 unchanged; 0 changed support status.")
    assert "- HybridForCausalLM.gate_up_proj n: sum((mc.intermediate_sizes[i], " in text


@pytest.mark.corpus
@pytest.mark.parametrize("old, new", [("0.4.6", "0.5.8"), ("0.5.8", "0.5.23")])
def test_diff_between_sglang_versions_accounts_for_every_entry(old, new, tmp_path, sglang_tree):
    report = tmp_path / "d.json"
    assert main(["diff", "--from", old, "--to", new, "-q", "-j", "2", "--cache-dir", str(tmp_path / "c"),
                 "--report", str(report)]) == 0
    data = json.loads(report.read_text())
    names = {}
    for version in (old, new):
        scan = tmp_path / f"{version}.json"
        main(["scan", "--sglang-version", version, "-q", "-j", "2", "--cache-dir", str(tmp_path / "c"),
              "--report", str(scan)])
        names[version] = {e["name"] for e in json.loads(scan.read_text())["entries"]}
    assert set(data["added"]) == names[new] - names[old]
    assert set(data["removed"]) == names[old] - names[new]
    s = data["summary"]
    assert s["changed"] + s["unchanged"] == len(names[old] & names[new])
    assert s["changed"] == len(data["changed"]) and all(c["changes"] for c in data["changed"])
