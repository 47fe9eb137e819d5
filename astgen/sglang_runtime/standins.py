"""Stand-ins for GPU-only packages, so that sglang's imports and ``__init__``
bodies run on a CPU build of torch.

A stand-in is put in place only for a package that is listed here *and*
cannot be found: one that sglang imports inside ``try/except ImportError``
must stay absent (a stand-in there would tell sglang that flashinfer or
sgl-kernel is available). With no accelerator sglang takes its "other
platform" branch, whose constructors fetch vllm's kernels
(layers/rotary_embedding/base.py:138, layers/layernorm.py:130,
layers/moe/moe_runner/triton_utils/fused_moe.py:93): vllm is stood in for
sglang 0.5.23. So is deep_ep, DeepEP's kernels: sglang imports it in a
try/except and uses it only for --moe-a2a-backend deepep, whose dispatcher
refuses to be built without it (token_dispatcher/deepep.py:48-66, 382); its
buffers hold no parameter. A stand-in's attributes are inert classes (they
can be subclassed, called, used as decorators, iterated as empty, and are
falsy); they never make a tensor, so no shape comes from them. Every module
stood in is recorded in :data:`STOOD_IN` and reported.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types

STOOD_IN: list[str] = []  # module names made, in order
PACKAGES = ("vllm", "deep_ep")


class _Inert(type):
    """The class of every attribute of a stand-in module."""

    def __getattr__(cls, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return _inert(f"{cls.__qualname__}.{name}")

    def __call__(cls, *args, **kwargs):
        if "_standin" not in cls.__dict__:  # a real class derived from a stand-in
            return type.__call__(cls, *args, **kwargs)
        if len(args) == 1 and not kwargs and callable(args[0]):  # used as a decorator
            return args[0]
        return _inert(f"{cls.__qualname__}()")

    def __getitem__(cls, item):
        return cls

    def __iter__(cls):
        return iter(())

    def __bool__(cls):
        return False

    def __or__(cls, other):
        return cls

    __ror__ = __or__

    def __repr__(cls):
        return f"<stand-in {cls.__qualname__}>"


def _inert(qualname: str) -> type:
    return _Inert(qualname.rsplit(".", 1)[-1], (), {"__qualname__": qualname, "__module__": "standin",
                                                     "_standin": True})


class _Module(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        value = _inert(f"{self.__name__}.{name}")
        setattr(self, name, value)
        return value


class _Loader(importlib.abc.Loader):
    def create_module(self, spec):
        module = _Module(spec.name)
        module.__path__ = []  # a package: its submodules are stood in too
        module.__file__ = f"<stand-in {spec.name}>"
        return module

    def exec_module(self, module):
        STOOD_IN.append(module.__name__)


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self, names: set[str]) -> None:
        self.names = names

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in self.names:
            return importlib.machinery.ModuleSpec(fullname, _Loader(), is_package=True)
        return None


def install(packages=PACKAGES) -> list[str]:
    """Stand in for the listed packages that cannot be found; returns them."""
    missing = [p for p in packages if importlib.util.find_spec(p) is None]
    if missing:
        sys.meta_path.insert(0, _Finder(set(missing)))
    return missing


def answer_device() -> list[str]:
    """With no accelerator sglang picks its base ``SRTPlatform``
    (platforms/__init__.py ``_resolve_platform``), whose ``get_device``
    raises (platforms/device_mixin.py:187); DeepSeek's YaRN rotary embedding
    asks it where to put its cos/sin buffers (rope_variant.py:373). The
    answer is the CPU: buffers only, never a parameter. Returns what was
    answered, for the report."""
    import sglang.srt.platforms as platforms
    import torch
    from sglang.srt.platforms.interface import SRTPlatform

    answered = []
    if type(platforms.current_platform) is SRTPlatform:
        SRTPlatform.get_device = lambda self, device_id=None: "cpu"
        answered.append("SRTPlatform.get_device (-> cpu, for rotary buffers)")
    if not torch.cuda.is_available():
        # DSA models' server-argument defaults ask the GPU's generation
        # (arg_groups/model_hook.py:341): a Hopper's, the GPUs LLMSim's scripts model
        torch.cuda.get_device_capability = lambda device=None: HOPPER
        answered.append(f"torch.cuda.get_device_capability (-> {HOPPER}, a Hopper GPU)")
    return answered


HOPPER = (9, 0)
