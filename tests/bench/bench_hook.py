"""Benchmark: pre-commit hook time, beside a bare `python -c "import libcst"`.

Two commits on the sglang tree of --version (0.5.23 by default), each timed
as the fresh process pre-commit would start (`astgen-hook FILES`):
  * one touching no model file (README.md);
  * one touching one model file (--model, qwen3.py by default), with the
    result cache warm (one run before), against modules generated for it.
Prints each figure, the baseline and the ratio, with the targets.

    python tests/bench/bench_hook.py [--version 0.5.23] [--model qwen3] [--repeat 5]
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

from astgen.hook import affected_models  # noqa: E402
from astgen.rules import load_rules  # noqa: E402
from astgen.frontend.source import fetch_version  # noqa: E402


def timed(cmd: list[str], ok: tuple[int, ...] = (0,)) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout}{proc.stderr}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default="0.5.23")
    parser.add_argument("--model", default="qwen3")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    tree = fetch_version(args.version)
    model = tree.models_dir / f"{args.model}.py"
    affected = affected_models(tree.models_dir, [model], load_rules().traced)
    hook = [sys.executable, "-m", "astgen.hook", "--root", str(tree.root)]
    baseline = [sys.executable, "-c", "import libcst"]
    with tempfile.TemporaryDirectory() as tmp:
        against = Path(tmp) / "arch"
        subprocess.run([sys.executable, "-m", "astgen.cli", "gen", "--sglang-root", str(tree.root), "-o",
                        str(against), "-q", *map(str, affected)], capture_output=True)
        one = hook + ["--against", str(against), str(model)]
        timed(one, ok=(0, 1))  # warms the result cache (the default one, as the hook does)
        none, one_model, base = [], [], []
        for _ in range(args.repeat):
            none.append(timed(hook + ["--against", str(against), "README.md"]))
            one_model.append(timed(one, ok=(0, 1)))
            base.append(timed(baseline))
    b = statistics.median(base)
    print(f"sglang {args.version}; {args.model}.py affects {len(affected)} model files; "
          f"median of {args.repeat} runs; seconds")
    print(f"{'figure':38} {'seconds':>8} {'baseline':>9} {'ratio':>6}  target")
    label = 'baseline: python -c "import libcst"'
    print(f"{label:38} {b:8.3f} {b:9.3f} {1.0:6.2f}")
    for name, values, target in (("commit touching no model file", none, "< 0.5 s"),
                                 (f"commit touching {args.model}.py (warm)", one_model, "< 1.5 s")):
        v = statistics.median(values)
        print(f"{name:38} {v:8.3f} {b:9.3f} {v / b:6.2f}  {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
