"""Build one sglang model on the meta device at one rank and list its
parameters (schema ``astgen.runtime/2``).

The model is made as sglang's loader makes it (model_loader/loader.py):
``ModelConfig.from_server_args`` over a directory holding only the
config.json (sglang's own config classes and rewrites apply),
``_get_quantization_config`` (``Fp8Config.from_config`` for a block-FP8
checkpoint), ``torch.set_default_dtype(model_config.dtype)``, then
``_initialize_model`` under ``torch.device("meta")``: every parameter has the
shape and dtype sglang allocates at that rank, and no memory.
"""

from __future__ import annotations

import importlib
import json
import os
import tempfile
import traceback
from typing import Any

from astgen.sglang_runtime import parallel, standins

SCHEMA = "astgen.runtime/2"
# a lookup table, left out as transformers' torch.nn.Embedding is (Gemma3's scaled embedding, OPT's
# and Whisper's learned positions subclass it)
EMBEDDING_CLASSES = ("VocabParallelEmbedding", "ParallelLMHead", "Embedding")


def prepare() -> list[str]:
    """Once per process, before any sglang import: the stand-ins."""
    import logging
    import warnings

    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    return standins.install()


def default_config(arch: str, model_type: str) -> dict[str, Any]:
    """A default config for an entry no checkpoint config was given for:
    of its model_type, sglang's own config class where its registry has one,
    else transformers'; else the class the entry's ``__init__`` annotates
    its ``config`` with; else transformers' config class of the same
    architecture name."""
    import inspect

    import transformers
    from sglang.srt.models.registry import ModelRegistry
    from sglang.srt.utils.hf_transformers import common

    if model_type:
        registry = getattr(common, "_CONFIG_REGISTRY", {})
        cls = registry.get(model_type)
        return (cls() if cls is not None else transformers.AutoConfig.for_model(model_type)).to_dict()
    model_cls = ModelRegistry._try_load_model_cls(arch)
    if model_cls is not None:
        param = inspect.signature(model_cls.__init__).parameters.get("config")
        annotation = getattr(param, "annotation", None)
        # transformers' PretrainedConfig itself says nothing of the model (its model_type is "")
        if isinstance(annotation, type) and hasattr(annotation, "to_dict") and getattr(annotation, "model_type", ""):
            return annotation().to_dict()
    hf_cls = getattr(transformers, arch, None)
    if hf_cls is not None and hasattr(hf_cls, "config_class"):
        return hf_cls.config_class().to_dict()
    raise LookupError(f"no config given, and none of a model_type, a `config` annotation of {arch}.__init__ "
                      "or a transformers class of that name gives a default")


def build_model(request: dict[str, Any]):
    """The model at the request's rank: (model, its ModelConfig, the quant
    config, sglang's parallel context, what the machine answered)."""
    import torch
    from sglang.srt.configs.load_config import LoadConfig
    from sglang.srt.configs.model_config import ModelConfig
    from sglang.srt.model_loader.loader import (
        _get_quantization_config,
        _initialize_model,
    )
    from sglang.srt.server_args import ServerArgs

    answered = standins.answer_device()
    if request.get("module"):
        # sglang's registry skips a model file that fails to import, and the loader then builds
        # its transformers fallback: say why instead (the package it misses)
        importlib.import_module(request["module"])
    config = request.get("config")
    if config is None:
        config = default_config(request["arch"], request.get("model_type", ""))
    config = {k: v for k, v in config.items() if k != "auto_map"}  # remote code: never run
    # a draft is built from its target's checkpoint, renamed by sglang itself (model_config.py)
    config["architectures"] = [request.get("draft_of") or request["arch"]]
    layout = request["layout"]
    with tempfile.TemporaryDirectory(prefix="astgen-sglang-") as model_dir:
        with open(os.path.join(model_dir, "config.json"), "w", encoding="utf-8") as f:
            json.dump(config, f)
        settings = dict(layout["server_args"])
        server_args = ServerArgs(model_path=model_dir, device="cuda", skip_tokenizer_init=True,
                                 load_format="dummy", **settings)
        try:
            context = parallel.set_rank(server_args, layout["fields"]["rank"])
        except AssertionError as exc:
            if "Mamba cache" not in str(exc) or not _declares(ServerArgs, "mamba_radix_cache_strategy"):
                raise
            # the CPU platform keeps no Mamba cache snapshots, which sglang's default for hybrid
            # models asks of it (arg_groups/mamba_hook.py:101-121); a cache policy, no weight's
            settings.update(mamba_radix_cache_strategy="no_buffer", disable_overlap_schedule=True)
            answered.append("--mamba-radix-cache-strategy no_buffer --disable-overlap-schedule (no Mamba "
                            "cache snapshots on CPU; cache and scheduler policies, no weight's)")
            server_args = ServerArgs(model_path=model_dir, device="cuda", skip_tokenizer_init=True,
                                     load_format="dummy", **settings)
            context = parallel.set_rank(server_args, layout["fields"]["rank"])
        model_config = ModelConfig.from_server_args(server_args, is_draft_model=bool(request.get("draft_of")))
        load_config = LoadConfig(load_format="dummy")
        quant_config = _get_quantization_config(model_config, load_config)
        torch.set_default_dtype(model_config.dtype)
        with torch.device("meta"):
            model = _initialize_model(model_config, load_config, quant_config)
    differ = [f"{group} {context[group + '_size']}/{context[group + '_rank']} (astgen: {size}/{rank})"
              for group, (size, rank) in layout["ranks"].items()
              if (context[group + "_size"], context[group + "_rank"]) != (size, rank)]
    if differ:
        raise ValueError("sglang reads this layout differently: " + ", ".join(differ))
    return model, model_config, quant_config, context, answered


def _declares(server_args_class, name: str) -> bool:
    """The sglang version's ServerArgs takes ``name`` (0.5.23 assembles its
    fields from the namespace structs; older ones are dataclasses)."""
    import inspect

    try:
        return name in inspect.signature(server_args_class).parameters
    except (TypeError, ValueError):
        return False


def build(request: dict[str, Any]) -> dict[str, Any]:
    model, model_config, quant_config, context, answered = build_model(request)
    read = _as_read(model_config.hf_config)
    given = request.get("config") or {}
    doc = {"modules": _modules(model), "context": context, "answered": answered,
           "config": read, "model_class": type(model).__name__,
           # what sglang's config loading changed in the given config (a draft's layer count ...)
           "rewritten": {k: v for k, v in read.items() if k in given and given[k] != v and k != "architectures"
                         and not isinstance(v, (dict, list))},
           "model_module": type(model).__module__,
           "quant_config": type(quant_config).__name__ if quant_config is not None else None,
           "dtype": str(model_config.dtype).removeprefix("torch.")}
    run = request.get("forward")
    if run:  # {"mode": "extend" | "decode", "tokens": N, "batch": B, "context": L}
        from astgen.sglang_runtime import forward

        recorded = forward.record_forward(model, run["mode"], run["tokens"], batch=run.get("batch", 1),
                                          context_len=run.get("context", 4096))
        doc["forward"] = forward.summarize(recorded)
    return doc


def _modules(model) -> list[dict[str, Any]]:
    out = []
    for path, module in model.named_modules():
        params = {name: {"shape": [int(d) for d in p.shape], "dtype": str(p.dtype).removeprefix("torch.")}
                  for name, p in module.named_parameters(recurse=False)}
        if params:
            bases = {c.__name__ for c in type(module).__mro__}
            out.append({"path": path, "class": type(module).__name__, "params": params,
                        "embedding": bool(bases & set(EMBEDDING_CLASSES))})
    return out


def _as_read(hf_config) -> dict[str, Any]:
    """The config as the model read it (JSON values only)."""
    values = hf_config.to_dict()
    return json.loads(json.dumps(values, default=lambda o: None))


def answer(request: dict[str, Any], stood_in: list[str]) -> dict[str, Any]:
    """One request's answer; a failure is an ``error`` with its last frame in sglang."""
    import sglang

    head = {"schema": SCHEMA, "arch": request["arch"], "layout": request["layout"]["fields"],
            "sglang_version": getattr(sglang, "__version__", "unknown")}
    try:
        doc = build(request)
    except Exception as exc:  # noqa: BLE001 - sglang's own failure is the answer
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/sglang/" in f.filename]
        where = f" ({_short(frames[-1].filename)}:{frames[-1].lineno})" if frames else ""
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return {**head, "error": f"{type(exc).__name__}: {message}{where}"}
    stood = sorted(set(stood_in) | set(standins.STOOD_IN)) + doc.pop("answered")
    return {**head, **doc, "standins": stood}


def _short(filename: str) -> str:
    return "sglang/" + filename.split("/sglang/", 1)[1] if "/sglang/" in filename else filename
