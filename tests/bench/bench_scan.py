"""Benchmark: `astgen scan` of a whole sglang tree beside a baseline.

Figures, all from fresh processes in one run (seconds, wall clock):
  * cold scan with --jobs 2 and an empty result cache (report only);
  * cold scan with --jobs 2 that also writes the modules (-o, black included);
  * warm scan: the same report again, served from the result cache;
  * peak resident memory of the largest process of a cold scan (the parent
    or one worker; workers are separate processes);
and the baseline, measured alternately with the cold scans: one interpreter
that imports libcst and parses every model file of the tree, in one process.

    python tests/bench/bench_scan.py [--version 0.5.23] [--repeat 3] [--jobs 2]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from astgen.frontend.source import fetch_version  # noqa: E402

BASELINE = """
import sys, libcst
for path in sys.argv[1:]:
    with open(path, encoding="utf-8-sig") as fh:
        libcst.parse_module(fh.read())
"""


def timed(cmd: list[str]) -> tuple[float, int]:
    """Wall time, and the peak RSS (KiB) of the largest process it ran."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):  # scan exits 1 when some entry is not FULLY
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr}")
    return elapsed, max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default="0.5.23")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    tree = fetch_version(args.version)
    files = [str(p) for p in tree.model_files()]
    baseline_cmd = [sys.executable, "-c", BASELINE, *files]
    cold, cold_emit, warm, base, peak = [], [], [], [], 0
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            scan = [sys.executable, "-m", "astgen.cli", "scan", "--sglang-version", args.version, "-q",
                    "-j", str(args.jobs), "--report", os.path.join(tmp, "report.json")]
            cache = ["--cache-dir", os.path.join(tmp, f"cache{i}")]
            seconds, rss = timed(scan + cache)
            cold.append(seconds)
            peak = max(peak, rss)
            base.append(timed(baseline_cmd)[0])
            warm.append(timed(scan + cache)[0])
            emit_cache = ["--cache-dir", os.path.join(tmp, f"emit{i}"), "-o", os.path.join(tmp, f"out{i}")]
            cold_emit.append(timed(scan + emit_cache)[0])
    b, best_b = statistics.median(base), min(base)
    rows = [
        (f"cold scan, --jobs {args.jobs}", cold, ""),
        (f"cold scan + modules, --jobs {args.jobs}", cold_emit, "<= 1.0 (best)"),
        ("warm scan (result cache)", warm, "< 1 s"),
    ]
    print(f"sglang {args.version}: {len(files)} model files; median and best of {args.repeat} runs, "
          f"the baseline's alternating with the scans'; {os.cpu_count()} CPUs")
    print(f"{'figure':34} {'median s':>8} {'baseline':>9} {'ratio':>6} {'best s':>7} {'ratio':>6}  target")
    print(f"{'baseline: libcst parse, 1 process':34} {b:8.2f} {b:9.2f} {1.0:6.2f} {best_b:7.2f} {1.0:6.2f}")
    for name, values, target in rows:
        value, best = statistics.median(values), min(values)
        print(f"{name:34} {value:8.2f} {b:9.2f} {value / b:6.2f} {best:7.2f} {best / best_b:6.2f}  {target}")
    print(f"{'peak RSS, largest process (MiB)':34} {peak / 1024:8.0f} {'':9} {'':6}  < 1024")
    return 0


if __name__ == "__main__":
    sys.exit(main())
