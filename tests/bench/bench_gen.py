"""Benchmark: `astgen gen` wall time per architecture beside a baseline.

Baseline, measured in the same run: a bare interpreter that imports libcst
and black and parses, with libcst, exactly the files astgen read for that
architecture. Both are fresh processes, so interpreter start-up and imports
count on both sides. Prints each figure, its baseline and the ratio.

    python tests/bench/bench_gen.py [--version 0.5.23] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from astgen.scan import analyze_file  # noqa: E402
from astgen.rules import load_rules  # noqa: E402
from astgen.frontend.source import fetch_version  # noqa: E402

ARCHS = [
    ("llama", "LlamaForCausalLM"),
    ("qwen2", "Qwen2ForCausalLM"),
    ("qwen3", "Qwen3ForCausalLM"),
    ("qwen3_moe", "Qwen3MoeForCausalLM"),
    ("mixtral", "MixtralForCausalLM"),
    ("deepseek_v2", "DeepseekV2ForCausalLM"),
    ("deepseek_v2", "DeepseekV3ForCausalLM"),
]

BASELINE = """
import sys, libcst, black
for path in sys.argv[1:]:
    with open(path, encoding="utf-8-sig") as fh:
        libcst.parse_module(fh.read())
"""


def run_once(cmd: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr}")
    return elapsed


def paired(cmd: list[str], baseline: list[str], repeat: int) -> tuple[float, float]:
    """Medians of both commands, run alternately so that drift in the
    machine's load falls on both sides alike."""
    a, b = [], []
    for _ in range(repeat):
        a.append(run_once(cmd))
        b.append(run_once(baseline))
    return statistics.median(a), statistics.median(b)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default="0.5.23")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    tree = fetch_version(args.version)
    rules = load_rules()
    print(f"sglang {args.version}; median of {args.repeat} alternating runs; seconds")
    print(f"{'architecture':26} {'files':>5} {'astgen gen':>11} {'baseline':>9} {'ratio':>6}")
    ratios = []
    with tempfile.TemporaryDirectory() as out:
        for stem, arch in ARCHS:
            path = tree.models_dir / f"{stem}.py"
            files = [str(p) for p in analyze_file(tree, path, rules, arch).files_read]
            gen, base = paired(
                [sys.executable, "-m", "astgen.cli", "gen", str(path), "--arch", arch, "-o", out, "-q"],
                [sys.executable, "-c", BASELINE, *files],
                args.repeat,
            )
            ratios.append(gen / base)
            print(f"{arch:26} {len(files):5d} {gen:11.3f} {base:9.3f} {gen / base:6.2f}")
    print(f"{'max ratio':26} {'':5} {'':11} {'':9} {max(ratios):6.2f}  (target < 1.5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
