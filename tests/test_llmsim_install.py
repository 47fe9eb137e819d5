"""`astgen gen --llmsim DIR`: the modules as a package inside an LLMSim
checkout, registered in its model_arch.py, used by its own entry point.

The checkout here is a stand-in built from tests/llmsim_stub, laid out as
LLMSim's (src/arch/..., a model_arch.py with LLMSim's _MODEL_ARCH_MAP,
create_model_arch and SimpleTransformerArch fallback, a src/main.py that
picks the arch for --model_path and prints it); LLMSim itself is never
needed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from astgen.cli import main
from tests.helpers import FIXTURES, HF_CONFIGS, REPO

# LLMSim's registry as elrond-g/llmsim@0cf207f writes it (src/arch/models_arch/model_arch.py),
# with one hand-written arch and its fallback
MODEL_ARCH = '''\
from src.arch.models_arch.base_model_arch import BaseModelArch
from src.arch.models_arch.handwritten_model_arch import HandwrittenDenseArch
from src.arch.models_arch.simple_model_arch import SimpleTransformerArch


_MODEL_ARCH_MAP: dict[str, type[BaseModelArch]] = {
    "dense": HandwrittenDenseArch,
    "qwen3": SimpleTransformerArch,
}


def create_model_arch(model_config, schedule_config) -> BaseModelArch:
    model_type = model_config.model_type.lower()
    arch_cls = _MODEL_ARCH_MAP.get(model_type, SimpleTransformerArch)
    return arch_cls(model_config, schedule_config)
'''

SIMPLE = '''\
from src.arch.models_arch.base_model_arch import BaseModelArch


class SimpleTransformerArch(BaseModelArch):
    def build_operators(self):
        pass
'''

HANDWRITTEN = SIMPLE.replace("SimpleTransformerArch", "HandwrittenDenseArch")

# src/main.py: what LLMSim's does with --model_path (load the config, create
# the arch, build its operators), printing the arch and what it built
MAIN = '''\
import argparse
import json
import sys

sys.path.insert(0, ".")

from src.arch.config import ForwardMode, model_config_from_dict
from src.arch.model_type import AttentionType
from src.arch.models_arch.model_arch import create_model_arch
from src.arch.perf_calculator import forward_time_ms
from tests_schedule import schedule

parser = argparse.ArgumentParser()
parser.add_argument("--model_path", required=True)
parser.add_argument("--mode", default="decode")
parser.add_argument("--tp_size", type=int, default=1)
args = parser.parse_args()
mc = model_config_from_dict(json.load(open(args.model_path)))
mc.attention_type = AttentionType.MLA if hasattr(mc, "kv_lora_rank") else AttentionType.MHA
mode = ForwardMode.DECODE if args.mode == "decode" else ForwardMode.EXTEND
arch = create_model_arch(mc, schedule(tp=args.tp_size, mode=mode))
arch.build_operators()
print(type(arch).__name__, len(arch.operators), round(forward_time_ms(arch), 6))
'''

SCHEDULE = '''\
import types


def schedule(tp=1, mode=None):
    return types.SimpleNamespace(batch_size=8, max_seqlen=4096, mode=mode, num_nodes=1, world_size=tp,
                                 tp_size=tp, dp_size=1, ep_size=1, is_mtp=False, deepep=False,
                                 enable_moe_dense_fully_dp=False)
'''


@pytest.fixture
def checkout(tmp_path):
    root = tmp_path / "llmsim"
    arch = root / "src" / "arch"
    shutil.copytree(REPO / "tests" / "llmsim_stub", arch, ignore=shutil.ignore_patterns("__pycache__"))
    for path in arch.rglob("*.py"):  # the stand-in's own imports, rooted where LLMSim's are
        path.write_text(path.read_text().replace("tests.llmsim_stub", "src.arch"))
    (root / "src" / "__init__.py").write_text("")
    models = arch / "models_arch"
    (models / "model_arch.py").write_text(MODEL_ARCH)
    (models / "simple_model_arch.py").write_text(SIMPLE)
    (models / "handwritten_model_arch.py").write_text(HANDWRITTEN)
    (root / "src" / "main.py").write_text(MAIN)
    (root / "tests_schedule.py").write_text(SCHEDULE)
    return root


def _llmsim(root, config: dict, tmp_path) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    done = subprocess.run([sys.executable, "src/main.py", "--model_path", str(path), "--tp_size", "2"],
                          cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _snapshot(root) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
            and "__pycache__" not in p.parts}


DENSE = {**json.loads((HF_CONFIGS / "Qwen__Qwen3-8B.json").read_text()), "model_type": "dense"}


def test_llmsim_runs_astgen_arch_for_the_model_types_it_emitted(checkout, tmp_path):
    before = _snapshot(checkout)
    args = ["gen", str(FIXTURES), "--llmsim", str(checkout), "-q", "--no-cache"]
    assert main(args) == 0
    package = checkout / "src" / "arch" / "models_arch" / "astgen_archs"
    # one package: the helpers once, importing from the checkout's root; each module imports them
    assert sorted(p.name for p in package.glob("*.py") if not p.name.endswith("_model_arch.py")) == \
        ["__init__.py", "_astgen.py"]
    assert (package / "_astgen.py").read_text().count("from src.arch.models_arch.base_model_arch") == 1
    dense = (package / "dense_model_arch.py").read_text()
    assert "from ._astgen import Arch\n" in dense and "class _Operators" not in dense
    assert "from src.arch.models_arch.base_model_arch" not in dense
    # a model type no module serves keeps LLMSim's fallback
    assert _llmsim(checkout, {**DENSE, "model_type": "qwen3"}, tmp_path).split()[0] == "SimpleTransformerArch"
    # one LLMSim maps to nothing (or to the fallback) runs astgen's arch
    name, ops, _ = _llmsim(checkout, {**DENSE, "model_type": "inherit"}, tmp_path).split()
    assert name == "InheritForCausalLMArch" and int(ops) > 0
    # the hand-written arch keeps precedence for its model type ...
    assert _llmsim(checkout, DENSE, tmp_path).split()[0] == "HandwrittenDenseArch"
    # ... and running it again changes nothing
    installed = _snapshot(checkout)
    assert main(args) == 0
    assert _snapshot(checkout) == installed
    # --prefer astgen switches that model type to astgen's arch, which runs
    assert main(args + ["--prefer", "astgen"]) == 0
    name, ops, ms = _llmsim(checkout, DENSE, tmp_path).split()
    # qkv_proj, o_proj, gate_up_proj, down_proj, lm_head (dense.py)
    assert name == "DenseForCausalLMArch" and int(ops) == 5 and float(ms) > 0
    # --uninstall restores the checkout byte for byte
    assert main(["gen", "--llmsim", str(checkout), "--uninstall", "-q"]) == 0
    assert _snapshot(checkout) == before


def test_a_directory_that_is_not_an_llmsim_checkout_is_refused_with_nothing_written(tmp_path, capsys):
    (tmp_path / "src").mkdir()
    assert main(["gen", str(FIXTURES), "--llmsim", str(tmp_path), "-q", "--no-cache"]) == 2
    assert "is not an LLMSim checkout: src/arch/models_arch/model_arch.py not found" in capsys.readouterr().err
    assert [p.name for p in tmp_path.rglob("*")] == ["src"]
    assert main(["gen", "--uninstall", "-q"]) == 2


def test_scan_installs_every_fully_supported_module(checkout, tmp_path):
    """`astgen scan --llmsim DIR` writes the modules of every FULLY entry
    into the checkout's package, as gen does, and reports them."""
    report = tmp_path / "scan.json"
    assert main(["scan", str(FIXTURES), "--llmsim", str(checkout), "-q", "--no-cache", "--report", str(report)]) == 0
    package = checkout / "src" / "arch" / "models_arch" / "astgen_archs"
    written = sorted(p.name for p in package.glob("*_model_arch.py"))
    assert written == sorted(json.loads(report.read_text())["files"][i]["module"] for i in range(len(written)))
    assert len(written) == 9
    # the arch LLMSim picks for a model type only a scanned module serves
    name, ops, _ = _llmsim(checkout, {**DENSE, "model_type": "reexport"}, tmp_path).split()
    assert name == "ReexportForCausalLMArch" and int(ops) > 0
