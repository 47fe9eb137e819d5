"""Oracles for ``astgen validate``: independent sources of weight shapes.

* ``transformers``: the Hugging Face model for the same config, built on
  torch's ``meta`` device (no weights, no network). torch and transformers
  are imported here lazily, inside the functions, and only by ``validate``:
  the analyzer itself never imports them (the ``oracle`` extra installs
  them).
* ``runtime``: a JSON recording of the real sglang model's modules, made on
  a GPU machine by ``tests/oracle/record_sglang.py`` (schema
  ``astgen.runtime/1``).
* ``sglang``: the real sglang package of the tree, imported on CPU in a
  process of its own (``python -m astgen.sglang_runtime``), each model class
  built on torch's meta device at one rank of a layout (schema
  ``astgen.runtime/2``: parameters with their dtypes, the layout, the
  stand-ins that let GPU-only imports run).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from astgen.lower.weights import BIAS, is_bias, join_path, quantization_config

RUNTIME_SCHEMA = "astgen.runtime/1"
RUNTIME_SCHEMA_2 = "astgen.runtime/2"


class OracleUnavailable(Exception):
    """The oracle cannot build this architecture: the message says which
    side does not know it."""


@dataclass(frozen=True)
class OracleParam:
    name: str  # model.layers.0.self_attn.q_proj.weight
    shape: tuple[int, ...]
    module_cls: str
    excluded: str = ""  # why it is left out of the comparison ("" when compared)
    dtype: str = ""  # torch's name ("bfloat16", "float8_e4m3fn"); "" when the oracle does not say
    pack: int = 1  # weights per stored element (8 int4 in an int32 of a packed format)

    @property
    def numel(self) -> int:
        """The weights it holds (a packed tensor's elements times its pack)."""
        return math.prod(self.shape) * self.pack

    @property
    def module(self) -> str:
        return self.name.rpartition(".")[0]


@dataclass
class OracleModel:
    name: str  # "transformers 5.23.0 Qwen3ForCausalLM", "sglang 0.5.23 runtime ..."
    arch: str
    params: list[OracleParam] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)  # the config the oracle was built with
    tp: int = 1
    layout: Any = None  # astgen.lower.layout.Layout of a per-rank oracle (the sglang runtime)
    standins: list[str] = field(default_factory=list)  # modules stood in for GPU-only ones
    forward: dict[str, Any] | None = None  # the sglang runtime's recorded forward pass, when asked for
    built: str = ""  # the class the sglang runtime built, "module.Class"
    rewritten: dict[str, Any] = field(default_factory=dict)  # keys of the given config sglang's loading changed


def _param(name: str, shape, module_cls: str, in_embedding: bool, dtype: str = "") -> OracleParam:
    dims = tuple(int(d) for d in shape)
    return OracleParam(name, dims, module_cls, _why_excluded(name, dims, in_embedding), dtype)


SCALE = "quantization scale (per block, channel or tensor: not a weight)"
QUANT_METADATA = "quantization metadata (act-order indices, zero points, packed shapes: not a weight)"


def is_scale(name: str) -> bool:
    """``weight_scale_inv``, ``w13_weight_scale_inv``, ``input_scale``, ``k_scale``."""
    last = name.rpartition(".")[2]
    return last.endswith(("_scale", "_scale_inv")) or last in ("scale", "weight_scale_2")


def is_quant_metadata(name: str) -> bool:
    """``w13_weight_g_idx``, ``w13_g_idx_sort_indices``, ``w2_weight_shape``,
    ``qzeros``, ``weight_zero_point``."""
    last = name.rpartition(".")[2]
    return last.endswith(("g_idx", "g_idx_sort_indices", "_weight_shape", "zero_point", "qzeros")) \
        or last == "weight_shape"


def packed_bits(config: dict[str, Any]) -> int | None:
    """Bits per weight of a sub-byte checkpoint whose kernels pack weights
    into int32 (GPTQ/AWQ ``bits``, compressed-tensors' ``num_bits``), from
    its quantization_config (a multimodal checkpoint's text_config's)."""
    qc = quantization_config(config)
    bits = qc.get("bits", qc.get("w_bit", qc.get("weight_bits")))
    for group in (qc.get("config_groups") or {}).values():
        weights = group.get("weights") if isinstance(group, dict) else None
        if isinstance(weights, dict) and isinstance(weights.get("num_bits"), int):
            bits = weights["num_bits"]
    return bits if isinstance(bits, int) and 0 < bits < 8 else None


def is_packed(name: str, dtype: str) -> bool:
    """A packed sub-byte weight: compressed-tensors' ``weight_packed``,
    GPTQ/AWQ's ``qweight``, stored as int32."""
    last = name.rpartition(".")[2]
    return dtype == "int32" and (last.endswith("_packed") or last == "qweight")


def _why_excluded(name: str, shape: tuple[int, ...], in_embedding: bool) -> str:
    if in_embedding:
        return "embedding or LM head"
    if is_bias(name):
        return BIAS
    if not shape:  # CLIP's logit_scale, a learned temperature
        return "0-D (a scalar parameter)"
    if is_scale(name):
        return SCALE
    if is_quant_metadata(name):
        return QUANT_METADATA
    if len(shape) < 2:
        return "1-D (norm scale, bias, gate vector)"
    return ""


# ----------------------------------------------------------------------------
# transformers on the meta device


def _transformers():
    try:
        import torch  # noqa: F401 - the oracle needs it; imported only here
        import transformers
    except ImportError as exc:
        raise OracleUnavailable(
            f"the transformers oracle needs torch and transformers ({exc.name} is not installed): "
            "pip install 'astgen[oracle]'") from None
    transformers.logging.set_verbosity_error()  # its notes on configs are not ours to print
    return transformers


def transformers_version() -> str:
    return _transformers().__version__


def has_architecture(arch: str) -> bool:
    """transformers implements a model class of this name."""
    transformers = _transformers()
    cls = getattr(transformers, arch, None)
    return isinstance(cls, type) and hasattr(cls, "config_class") and hasattr(cls, "_from_config")


def default_config(arch: str) -> dict[str, Any]:
    """transformers' default config of an architecture, as a plain dict."""
    cls = _model_class(arch)
    try:
        config = cls.config_class()
    except Exception as exc:  # noqa: BLE001 - transformers' own default may fail its own checks
        raise OracleUnavailable(f"transformers' default {cls.config_class.__name__} fails its own "
                                f"validation: {type(exc).__name__}: {_first_line(exc)}") from None
    config.architectures = [arch]
    return config.to_dict()


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else ""


def transformers_model(arch: str, config: dict[str, Any]) -> OracleModel:
    """Build ``arch`` for ``config`` on the meta device and list its parameters."""
    transformers = _transformers()
    import torch

    cls = _model_class(arch)
    hf_config = _hf_config(transformers, cls, config)
    with torch.device("meta"):
        try:
            model = cls._from_config(hf_config)
        except Exception as exc:  # noqa: BLE001 - any failure of the third-party model is "unusable"
            raise OracleUnavailable(f"transformers could not build {arch} for this config: "
                                    f"{type(exc).__name__}: {_first_line(exc)}") from None
    embeddings = {id(m) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    out = model.get_output_embeddings()
    if out is not None:
        embeddings.add(id(out))
    params = []
    for module_name, module in model.named_modules():
        for pname, p in module.named_parameters(recurse=False):
            params.append(_param(join_path(module_name, pname), p.shape, type(module).__name__,
                                 id(module) in embeddings))
    used = _as_read(hf_config)
    return OracleModel(f"transformers {transformers.__version__} {arch}", arch, params, used)


def _as_read(hf_config) -> dict[str, Any]:
    """The config as model code reads it: its keys, plus the aliases of its
    ``attribute_map`` (``num_experts`` for ``num_local_experts``) and its
    properties, which sglang reads off the same object."""
    values = hf_config.to_dict()
    names = set(getattr(hf_config, "attribute_map", {}) or {})
    # properties, but not those with a setter: they stand for a stored key under another
    # meaning (LongcatFlashConfig.num_hidden_layers is 2 * num_layers, sub-layers; sglang's
    # own LongcatFlashConfig counts decoder layers: configs/longcat_flash.py:81-82)
    names |= {n for n in dir(type(hf_config))
              if isinstance(getattr(type(hf_config), n, None), property) and getattr(type(hf_config), n).fset is None}
    for name in sorted(names - set(values)):
        if name.startswith("_"):
            continue
        try:
            value = getattr(hf_config, name)
        except Exception:  # noqa: BLE001 - a property that fails is a key the config does not have
            continue
        if isinstance(value, (int, float, str, bool, list, tuple, dict)) or value is None:
            values[name] = value
    return values


def _model_class(arch: str):
    transformers = _transformers()
    if not has_architecture(arch):
        raise OracleUnavailable(f"transformers {transformers.__version__} does not implement {arch} "
                                "(unknown to the transformers side)")
    return getattr(transformers, arch)


def _hf_config(transformers, cls, config: dict[str, Any]):
    """The config object for ``cls``: the JSON read through the model's own
    config class (its defaults fill what the JSON leaves out)."""
    values = {k: v for k, v in config.items() if k not in ("model_type", "transformers_version")}
    try:
        return cls.config_class(**values)
    except Exception as exc:  # noqa: BLE001
        raise OracleUnavailable(f"transformers' {cls.config_class.__name__} rejects this config: "
                                f"{type(exc).__name__}: {_first_line(exc)}") from None


# ----------------------------------------------------------------------------
# recorded sglang runtime


def runtime_recording(path: Path) -> OracleModel:
    """Read a recording made by tests/oracle/record_sglang.py."""
    try:
        doc = json.loads(Path(path).read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OracleUnavailable(f"{path}: not a readable recording ({exc})") from None
    if not isinstance(doc, dict) or doc.get("schema") != RUNTIME_SCHEMA:
        raise OracleUnavailable(f"{path}: not an {RUNTIME_SCHEMA} recording")
    try:
        params = [_param(join_path(m["path"], pname), shape, m["class"], m.get("embedding", False))
                  for m in doc["modules"] for pname, shape in sorted(m["params"].items())]
        name = f"sglang {doc['sglang_version']} runtime {doc['arch']} ({doc.get('device', 'GPU')})"
        return OracleModel(name, doc["arch"], params, doc.get("config", {}), int(doc["tp_size"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise OracleUnavailable(f"{path}: malformed recording ({type(exc).__name__}: {exc})") from None


# ----------------------------------------------------------------------------
# the sglang runtime on CPU, in a process of its own


def sglang_runtime(tree_root: Path, requests: list[dict[str, Any]], timeout: float = 3600.0):
    """Build each requested model (``{"arch", "config", "model_type",
    "layout"}``) with the real sglang package under ``tree_root``, in a child
    process (``python -m astgen.sglang_runtime``). Yields one
    :class:`OracleModel` or :class:`OracleUnavailable` per request, in order,
    as each is built. A child that dies loses only the request it was on;
    the rest are asked of a new one."""
    done = 0
    while done < len(requests):
        failure = None
        for answer in _run_child(tree_root, requests[done:], timeout):
            if isinstance(answer, str):
                failure = answer
                break
            done += 1
            yield answer
        if failure is not None:
            done += 1
            yield OracleUnavailable(failure)


def _run_child(tree_root: Path, requests: list[dict[str, Any]], timeout: float):
    """Answers of one child, then a string saying why it stopped early (if it
    did). What the child prints besides its answers goes to a temporary file
    (a pipe nobody reads would fill and stop it); its last line explains a
    death."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tree_root), *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("CUDA_VISIBLE_DEVICES", "")
    cmd = [sys.executable, "-m", "astgen.sglang_runtime"]
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as log:
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
                                    env=env)
        except OSError as exc:
            yield f"cannot start {' '.join(cmd)}: {exc}"
            return
        assert proc.stdin is not None and proc.stdout is not None
        answered = 0
        try:
            proc.stdin.write(json.dumps({"requests": requests}) + "\n")
            proc.stdin.close()
            for line in proc.stdout:
                try:
                    doc = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(doc, dict) and doc.get("schema") == RUNTIME_SCHEMA_2:
                    answered += 1
                    yield _runtime_answer(doc)
            proc.wait(timeout=timeout)
        finally:
            if proc.poll() is None:  # the caller stopped early, or the child hangs
                proc.kill()
                proc.wait()
            proc.stdout.close()
        if answered < len(requests):
            log.seek(0)
            lines = [line.strip() for line in log.read().splitlines() if line.strip()]
            tail = lines[-1] if lines else f"exit status {proc.returncode}"
            yield f"the sglang runtime process stopped while building {requests[answered]['arch']}: {tail}"


def _runtime_answer(doc: dict[str, Any]) -> OracleModel | OracleUnavailable:
    from astgen.lower.layout import Layout

    if doc.get("error"):
        return OracleUnavailable(f"sglang {doc.get('sglang_version', '?')} could not build {doc.get('arch')}: "
                                 f"{doc['error']}")
    try:
        bits = packed_bits(doc.get("config", {}))
        params = [_param(join_path(m["path"], pname), p["shape"], m["class"], m.get("embedding", False),
                         p.get("dtype", ""))
                  for m in doc["modules"] for pname, p in sorted(m["params"].items())]
        if bits:
            params = [replace(p, pack=32 // bits) if is_packed(p.name, p.dtype) else p for p in params]
        layout = Layout(**doc["layout"])
        name = f"sglang {doc['sglang_version']} runtime {doc['arch']} (CPU, meta device, {layout.label})"
        built = f"{doc.get('model_module', '')}.{doc.get('model_class', '')}".strip(".")
        return OracleModel(name, doc["arch"], params, doc.get("config", {}), layout.tp, layout,
                           list(doc.get("standins", [])), doc.get("forward"), built, doc.get("rewritten") or {})
    except (KeyError, TypeError, ValueError) as exc:
        return OracleUnavailable(f"malformed answer of the sglang runtime ({type(exc).__name__}: {exc})")
