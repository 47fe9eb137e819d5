"""Record the sglang runtime's modules and weight shapes to JSON (the GPU tier
of ``astgen validate --recorded``).

Run on a machine with sglang and a GPU, never in the test suite:

    python tests/oracle/record_sglang.py --arch Qwen3ForCausalLM \\
        --config Qwen3-8B/config.json --out qwen3-8b.tp1.json

It starts a world-size-1 process group, builds the real sglang model class for
the config with sglang's own model-parallel state (tp 1), and writes every
module's path, class and parameter shapes (schema ``astgen.runtime/1``).
Weights are not loaded: the shapes are those sglang allocates. The pure part,
:func:`record`, walks any ``torch.nn.Module`` and is tested on CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

SCHEMA = "astgen.runtime/1"
EMBEDDING_CLASSES = ("VocabParallelEmbedding", "ParallelLMHead", "Embedding")


def record(model, arch: str, sglang_version: str, config: dict, tp_size: int = 1, device: str = "") -> dict:
    """Every module with parameters of its own: path, class, shapes."""
    modules = []
    for path, module in model.named_modules():
        params = {name: [int(d) for d in p.shape] for name, p in module.named_parameters(recurse=False)}
        if not params:
            continue
        bases = [c.__name__ for c in type(module).__mro__]
        modules.append({"path": path, "class": type(module).__name__, "params": params,
                        "embedding": any(b in EMBEDDING_CLASSES for b in bases)})
    return {"schema": SCHEMA, "arch": arch, "sglang_version": sglang_version, "tp_size": tp_size,
            "device": device, "config": config, "modules": modules}


def _build(arch: str, config_path: Path):
    """The sglang model for this config, weights allocated but not loaded."""
    import torch
    import sglang
    from sglang.srt.configs.model_config import ModelConfig
    from sglang.srt.distributed import init_distributed_environment, initialize_model_parallel
    from sglang.srt.models.registry import ModelRegistry
    from sglang.srt.server_args import ServerArgs, set_global_server_args_for_scheduler

    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29533")
    server_args = ServerArgs(model_path=str(config_path.parent), load_format="dummy", tp_size=1)
    set_global_server_args_for_scheduler(server_args)
    init_distributed_environment(world_size=1, rank=0, local_rank=0, backend="nccl",
                                 distributed_init_method="tcp://127.0.0.1:29533")
    initialize_model_parallel(tensor_model_parallel_size=1)
    model_config = ModelConfig.from_server_args(server_args)
    cls = dict(ModelRegistry.get_supported_archs_dict() if hasattr(ModelRegistry, "get_supported_archs_dict")
               else ModelRegistry.models)[arch]
    with torch.device("cuda"):
        model = cls(model_config.hf_config, quant_config=None)
    return model, sglang.__version__, torch.cuda.get_device_name(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", required=True, help="sglang EntryClass, e.g. Qwen3ForCausalLM")
    parser.add_argument("--config", required=True, type=Path, help="config.json (its folder is the model path)")
    parser.add_argument("--out", required=True, type=Path, help="JSON file to write")
    args = parser.parse_args(argv)
    config = json.loads(args.config.read_text("utf-8"))
    model, version, device = _build(args.arch, args.config)
    doc = record(model, args.arch, version, config, 1, device)
    tmp = args.out.with_suffix(args.out.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", "utf-8")
    tmp.replace(args.out)
    print(f"recorded {len(doc['modules'])} modules of {args.arch} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
