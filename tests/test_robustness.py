"""Robustness against mangled source (hypothesis): random deletions,
duplications and renames of lines in the fixture model files never crash
`gen`, `scan` or `check`; every outcome is output or a diagnostic with
file:line. And hostile source is analyzed without anything being run."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from astgen.cli import main
from tests.helpers import FIXTURES

NAMES = sorted(p.name for p in FIXTURES.glob("*.py"))
SOURCES = {name: (FIXTURES / name).read_text("utf-8-sig").splitlines(keepends=True) for name in NAMES}
LOCATED = re.compile(r"^\S+\.py:\d+: (error|incomplete|note)\[[\w-]+\]: ", re.M)


@st.composite
def mangled(draw):
    """A fixture file with a few lines deleted, duplicated or renamed."""
    name = draw(st.sampled_from(NAMES))
    lines = list(SOURCES[name])
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "rename"]))
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        else:
            words = re.findall(r"[A-Za-z_]\w*", lines[i])
            if words:
                word = draw(st.sampled_from(words))
                lines[i] = lines[i].replace(word, draw(st.sampled_from(["x", "config", "Foo", word + "_2"])), 1)
        if not lines:
            lines = ["\n"]
    return name, "".join(lines)


SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def tree_with(tmp_path: Path, name: str, text: str) -> Path:
    tree = tmp_path / "tree"
    if tree.exists():
        shutil.rmtree(tree)
    shutil.copytree(FIXTURES, tree)
    (tree / name).write_text(text)
    return tree


@SETTINGS
@given(mangled())
def test_gen_gives_output_or_a_located_diagnostic(tmp_path, capsys, case):
    name, text = case
    tree = tree_with(tmp_path, name, text)
    out = tmp_path / "out"
    shutil.rmtree(out, ignore_errors=True)
    code = main(["gen", str(tree / name), "-o", str(out), "-q", "--no-cache"])
    err = capsys.readouterr().err
    assert code in (0, 1, 2)
    written = list(out.glob("*_model_arch.py")) if out.exists() else []
    if code == 0:
        assert len(written) == 1 or "no EntryClass" in err
    else:
        assert written == [] and LOCATED.search(err), err


@SETTINGS
@given(mangled())
def test_scan_reports_every_file_with_a_state(tmp_path, capsys, case):
    name, text = case
    tree = tree_with(tmp_path, name, text)
    report = tmp_path / "r.json"
    code = main(["scan", str(tree), "-q", "--no-cache", "-j", "1", "--report", str(report)])
    assert code in (0, 1)
    data = json.loads(report.read_text())
    files = {f["file"]: f for f in data["files"]}
    assert set(files) == set(NAMES)
    mangled_file = files[name]
    assert not [e for e in mangled_file["errors"] if e["code"] == "crash"], mangled_file
    for e in mangled_file["errors"]:
        assert re.fullmatch(r".+\.py:\d+", e["location"]), e
    for entry in data["entries"]:
        for r in entry["reasons"]:
            assert re.fullmatch(r".+\.py:\d+", r["location"]), r


@SETTINGS
@given(mangled())
def test_check_reports_drift_or_clean_never_crashes(tmp_path, capsys, case):
    name, text = case
    committed = tmp_path / "committed"
    if not committed.exists():
        assert main(["gen", str(FIXTURES), "-o", str(committed), "-q", "--no-cache"]) == 0
    tree = tree_with(tmp_path, name, text)
    capsys.readouterr()
    code = main(["check", str(tree), "--against", str(committed), "--no-cache", "-j", "1"])
    out = capsys.readouterr().out.splitlines()
    assert code in (0, 1)
    assert out[-1].startswith("check: ") and out[-1].endswith("drifted")
    for line in out[:-1]:
        assert re.match(r"^\S+?(\.py:\d+|_model_arch\.py): (drift|stale): ", line), line


def test_hostile_source_runs_nothing_in_gen_scan_or_check(tmp_path, monkeypatch):
    hostile = Path(__file__).parent / "data" / "bad" / "hostile.py"
    tree = tmp_path / "tree"
    tree.mkdir()
    shutil.copy(hostile, tree / "hostile.py")
    monkeypatch.chdir(tmp_path)
    assert main(["gen", str(tree), "-o", str(tmp_path / "out"), "-q", "--no-cache"]) == 1
    assert main(["scan", str(tree), "-q", "--no-cache", "--report", str(tmp_path / "r.json")]) == 1
    assert main(["check", str(tree), "--against", str(tmp_path / "out"), "--no-cache"]) == 0
    assert not list(tmp_path.rglob("ASTGEN_MARKER_FILE"))
    assert not (Path.cwd() / "ASTGEN_MARKER_FILE").exists()
