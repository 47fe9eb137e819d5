"""Shared test helpers: run the pipeline, load emitted modules into the
LLMSim stand-in, build mc/sc objects from Hugging Face configs."""

from __future__ import annotations

import hashlib
import json
import sys
import types
from pathlib import Path

from astgen.cli import analyze_file
from astgen.emit.modules import EmitOptions
from astgen.emit.package import helpers_source
from astgen.rules import bind_switches, load_rules
from astgen.frontend.server_args import parse_flags, read_server_args
from astgen.frontend.source import SourceTree, tree_of_file
from tests.llmsim_stub.config import ForwardMode, model_config_from_dict
from tests.llmsim_stub.model_type import AttentionType

REPO = Path(__file__).resolve().parent.parent
# Hugging Face configs of 16 models (model ids in README.md there)
HF_CONFIGS = REPO / "tests" / "data" / "hf_configs"
# configs only the execution tests read (R1 with its FP8 quantization_config)
CONFIGS = REPO / "tests" / "data" / "configs"
FIXTURES = REPO / "fixtures" / "sglang_models"
STUB_ROOT = "tests.llmsim_stub"
RULES = load_rules()


def generate(tree: SourceTree, path: Path, arch: str | None = None, server_args: str = ""):
    """Run the pipeline on one file; returns the FileResult. ``server_args``:
    sglang launch flags, as `astgen gen --server-args` takes them."""
    rules = RULES
    if server_args:
        spec = read_server_args(tree.root)
        rules = bind_switches(RULES, spec, parse_flags(spec, server_args))
    return analyze_file(tree, path, rules, arch, emit=EmitOptions(import_root=STUB_ROOT,
                                                                  sglang_version=tree.version))


def generated(directory: Path, name: str, source: str):
    """The pipeline's result on ``source`` written as model file ``name`` in
    ``directory`` (a test's tmp_path)."""
    path = directory / name
    path.write_text(source)
    return generate(tree_of_file(path), path)


_ANALYZED: dict = {}


def analyzed(tree: SourceTree, stem: str, entry: str | None = None):
    """(FileResult, the emitted module loaded or None) of model file
    ``stem`` of ``tree`` (only ``entry`` when given): once per test session,
    shared by every test file."""
    key = (str(tree.root), tree.version, stem, entry)
    if key not in _ANALYZED:
        result = generate(tree, tree.models_dir / f"{stem}.py", entry)
        name = f"{stem}_{tree.version}_{entry or 'all'}".replace(".", "_")
        _ANALYZED[key] = result, load_module(result.source, name) if result.source else None
    return _ANALYZED[key]


def fixture_result(name: str):
    path = FIXTURES / f"{name}.py"
    return generate(tree_of_file(path), path)


def load_module(source: str, name: str, import_root: str = STUB_ROOT) -> types.ModuleType:
    """Load an emitted module (astgen's own output) as a module of a package
    holding the helpers astgen writes beside it (``from ._astgen import ...``;
    the same for every source family)."""
    package = emitted_package(import_root)
    module = types.ModuleType(f"{package}.{name}")
    module.__package__ = package
    code = compile(source, f"<{name}>", "exec")
    exec(code, module.__dict__)  # noqa: S102 - our generated code, in tests only
    return module


def emitted_package(import_root: str = STUB_ROOT) -> str:
    """The name of an in-memory package (in sys.modules) holding the emitted
    helpers' module for ``import_root`` and the rules, made once."""
    helpers = helpers_source(import_root, RULES)
    package = "astgen_emitted_" + hashlib.sha256(helpers.encode()).hexdigest()[:12]
    if package not in sys.modules:
        pkg = types.ModuleType(package)
        pkg.__path__ = []
        sys.modules[package] = pkg
        module = types.ModuleType(f"{package}._astgen")
        module.__package__ = package
        exec(compile(helpers, "<_astgen>", "exec"), module.__dict__)  # noqa: S102 - our generated code
        sys.modules[module.__name__] = module
    return package


def model_config(config: dict) -> types.SimpleNamespace:
    mc = model_config_from_dict(config)
    mc.attention_type = AttentionType.MLA if "kv_lora_rank" in config else AttentionType.MHA
    return mc


def schedule(tp=1, dp=1, ep=1, mode=ForwardMode.EXTEND, deepep=False, max_seqlen=4096, batch=8,
             fully_dp=False, **switches):
    """LLMSim's ScheduleConfig: tp is the attention TP inside one of dp
    replicas; ``switches``: fields named after sglang server arguments, which
    override an emitted module's constants."""
    return types.SimpleNamespace(
        batch_size=batch, max_seqlen=max_seqlen, mode=mode, num_nodes=1, world_size=tp * dp,
        tp_size=tp, dp_size=dp, ep_size=ep, is_mtp=False, deepep=deepep,
        enable_moe_dense_fully_dp=fully_dp, **switches)


def load_config(name: str) -> dict:
    return json.loads((HF_CONFIGS / f"{name}.json").read_text())


def build(module, entry: str, config: dict, **sched):
    arch = module.ARCHITECTURES[entry](model_config(config), schedule(**sched))
    arch.build_operators()
    return arch


def matmul_params(arch) -> int:
    """Sum of weight elements x layers x batch over matmul operators."""
    total = 0
    for op in arch.operators:
        md = op.metadata
        total += md.io_config.weight_shape.size() * md.num_layers * md.batch_size
    return total


def ops_by_name(arch) -> dict:
    return {op.metadata.name: op.metadata for op in arch.operators}
