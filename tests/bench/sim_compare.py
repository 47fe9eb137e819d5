"""LLMSim's simulated TTFT / TPOT with its hand-written model_arch modules and
with astgen's, side by side, through LLMSim's own PerformanceCalculator.

    python tests/bench/sim_compare.py --llmsim ~/src/llmsim [--sglang-version 0.5.23] [--hardware h800]

Needs a checkout of LLMSim's public repository (elrond-g/llmsim); CI never
runs it. For every family LLMSim hand-writes that has a config in LLMSim's
own hf_config/ or in tests/data/configs, at LLMSim's script layouts and both
modes: hand-written ms, astgen ms, and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

# (label, sglang model file, EntryClass, config file in LLMSim's hf_config/ or tests/data/configs)
FAMILIES = [
    ("DeepSeek-R1 (FP8)", "deepseek_v2", "DeepseekV3ForCausalLM", "tests/data/configs/deepseek-ai__DeepSeek-R1.json"),
    ("Qwen3-32B", "qwen3", "Qwen3ForCausalLM", "hf_config/qwen3-32B_config.json"),
    ("Qwen3-8B", "qwen3", "Qwen3ForCausalLM", "hf_config/qwen3-8B_config.json"),
    ("Qwen3-235B-A22B", "qwen3_moe", "Qwen3MoeForCausalLM", "hf_config/qwen3-235B-A22B_config.json"),
    ("Qwen3-30B-A3B", "qwen3_moe", "Qwen3MoeForCausalLM", "hf_config/qwen3-30B-A3B_config.json"),
    ("MiniMax-M2.5 (FP8)", "minimax_m2", "MiniMaxM2ForCausalLM",
     "hf_config/huggingface.co/MiniMaxAI/MiniMax-M2.5/config.json"),
    ("GLM-5 (DSA)", "glm4_moe", "GlmMoeDsaForCausalLM", "hf_config/huggingface.co/zai-org/GLM-5/config.json"),
    ("Qwen3.5-397B-A17B", "qwen3_5", "Qwen3_5MoeForConditionalGeneration",
     "hf_config/huggingface.co/Qwen/Qwen3.5-397B-A17B/config.json"),
]
# (LLMSim has no DeepSeek-V3.2 module: its deepseek_v32 config falls back to
# its simple dense arch, so there is nothing to compare it with.)
# LLMSim's scripts: (tp, dp, ep, deepep, moe_dense_fully_dp, batch, mode)
LAYOUTS = [
    ("ds_decode.sh", 1, 16, 16, True, True, 64, "decode"),
    ("ds_prefill.sh", 4, 4, 16, True, True, 1, "extend"),
    ("ds_prefill.sh (no fully-dp)", 4, 4, 16, True, False, 1, "extend"),
    ("tp8 prefill", 8, 1, 1, False, False, 1, "extend"),
    ("tp8 decode", 8, 1, 1, False, False, 64, "decode"),
]
# LLMSim's calculator reports total_time in its own unit (microseconds summed
# per operator, then /1000 per operator): the ratio is what compares


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--llmsim", type=Path, help="LLMSim checkout (its src/ is imported)")
    p.add_argument("--sglang-version", default="0.5.23")
    p.add_argument("--hardware", default="h800")
    p.add_argument("--max-seqlen", type=int, default=4096)
    args = p.parse_args(argv)
    if args.llmsim is None:
        print("sim_compare: skipped (give --llmsim DIR, a checkout of LLMSim)")
        return 0
    sys.path.insert(0, str(args.llmsim.resolve()))
    os.chdir(args.llmsim)
    from src.arch.config import ForwardMode, ModelConfig, ScheduleConfig  # noqa: E402 (LLMSim's own)
    from src.arch.models_arch.model_arch import create_model_arch
    from src.arch.perf_calculator import PerformanceCalculator
    from src.hardware.hardware_config import get_hardware_config

    from astgen.emit.modules import EmitOptions
    from astgen.rules import load_rules
    from astgen.scan import analyze_file
    from astgen.frontend.source import fetch_version

    tree = fetch_version(args.sglang_version)
    rules = load_rules()
    calc = PerformanceCalculator(get_hardware_config(args.hardware))
    modules: dict[str, types.ModuleType] = {}
    print(f"LLMSim {args.llmsim.name} ({args.hardware}), sglang {args.sglang_version}, max_seqlen {args.max_seqlen}")
    print("| model | layout | mode | hand-written | astgen | astgen / hand | astgen without logits | ratio |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for label, stem, entry, config in FAMILIES:
        path = REPO / config if config.startswith("tests/") else args.llmsim / config
        if not path.is_file():
            continue
        if stem not in modules:
            result = analyze_file(tree, tree.models_dir / f"{stem}.py", rules,
                                  emit=EmitOptions(import_root="src.arch", sglang_version=tree.version))
            if not result.source:
                print(f"| {label} | astgen emitted nothing: {[d.render() for d in result.diagnostics][:2]} |")
                continue
            with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as fh:
                fh.write(result.source)
            module = types.ModuleType(f"astgen_{stem}")
            exec(compile(result.source, fh.name, "exec"), module.__dict__)  # noqa: S102 - astgen's own output
            modules[stem] = module
        module = modules[stem]
        if entry not in module.ARCHITECTURES:
            continue
        for name, tp, dp, ep, deepep, fully_dp, batch, mode in LAYOUTS:
            times = []
            for which in ("hand", "astgen", "body"):
                mc = ModelConfig.from_json(str(path))
                sc = ScheduleConfig(batch_size=batch, max_seqlen=args.max_seqlen,
                                    mode=ForwardMode.EXTEND if mode == "extend" else ForwardMode.DECODE,
                                    tp_size=tp, dp_size=dp, ep_size=ep, is_mtp=False, deepep=deepep,
                                    enable_moe_dense_fully_dp=fully_dp)
                try:
                    arch = create_model_arch(mc, sc) if which == "hand" else module.ARCHITECTURES[entry](mc, sc)
                    if which == "body":  # the hand-written modules have no LM head: compare like with like
                        arch.build_operators()
                        arch.build_operators = lambda: None
                        arch.operators = [o for o in arch.operators if not o.metadata.name.startswith("lm_head")]
                        arch.transfer_operators = [o for o in arch.transfer_operators
                                                   if not o.metadata.name.startswith("lm_head")]
                    times.append(calc.calculate_model_performance(arch).total_time)
                except Exception as exc:  # noqa: BLE001 - reported in the table
                    times.append(f"{type(exc).__name__}: {exc}"[:60])
            hand, ours, body = times

            def ratio(v):
                return f"{v / hand:.2f}" if isinstance(hand, float) and isinstance(v, float) and hand else "-"

            fmt = lambda v: f"{v:.1f}" if isinstance(v, float) else v  # noqa: E731
            print(f"| {label} | {name} | {mode} | {fmt(hand)} | {fmt(ours)} | {ratio(ours)} | {fmt(body)} "
                  f"| {ratio(body)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
