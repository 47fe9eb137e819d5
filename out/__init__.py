"""LLMSim model_arch modules emitted by astgen (`astgen gen`); do not edit.

MODEL_TYPES maps a Hugging Face model_type to an arch class and ARCHITECTURES
an `architectures` name, over every *_model_arch module of this package (the
first module by name wins a key two of them serve). _astgen.py holds the
helpers the modules share."""

import importlib
import pkgutil

MODEL_TYPES = {}
ARCHITECTURES = {}
for _name in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _name.endswith("_model_arch"):
        _module = importlib.import_module(f"{__name__}.{_name}")
        for _key, _arch in _module.MODEL_TYPES.items():
            MODEL_TYPES.setdefault(_key, _arch)
        for _key, _arch in _module.ARCHITECTURES.items():
            ARCHITECTURES.setdefault(_key, _arch)
