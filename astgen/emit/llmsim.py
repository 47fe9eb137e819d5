"""Install emitted modules into an LLMSim checkout, so that LLMSim's own
entry point (``python src/main.py --model_path CONFIG ...``) uses them.

LLMSim picks an arch by the config's ``model_type`` in ``_MODEL_ARCH_MAP``
(``src/arch/models_arch/model_arch.py``) and falls back to
``SimpleTransformerArch`` for every other type. ``install`` writes the
modules as one package (:mod:`astgen.emit.package`), ``src/arch/models_arch/astgen_archs/``,
whose ``__init__`` maps each model_type to astgen's arch class, and appends one
marked block to ``model_arch.py`` that registers them: for the model types
LLMSim has no hand-written arch for (or maps to the fallback), or for every
one with ``prefer="astgen"``. Running it again replaces the block and the
modules of the same names; ``uninstall`` removes both. Nothing of LLMSim is
imported or run here.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from astgen.atomic import write_atomic
from astgen.emit.package import write_package
from astgen.rules import Rules

PACKAGE = "astgen_archs"
REGISTRY = Path("src") / "arch" / "models_arch" / "model_arch.py"
IMPORT_ROOT = "src.arch"  # the checkout's import root: src/arch, run from the checkout (PYTHONPATH=.)
BEGIN = "# >>> astgen"
END = "# <<< astgen"
PREFERENCES = ("handwritten", "astgen")


class LLMSimError(Exception):
    """Not an LLMSim checkout, or its registry is not the one astgen knows."""


@dataclass(frozen=True)
class Checkout:
    root: Path

    @property
    def registry(self) -> Path:
        return self.root / REGISTRY

    @property
    def package(self) -> Path:
        return self.registry.parent / PACKAGE


def checkout(directory: Path) -> Checkout:
    """``directory`` as an LLMSim checkout, or LLMSimError saying what is
    missing (nothing is written before this succeeds)."""
    root = Path(directory)
    registry = root / REGISTRY
    if not root.is_dir():
        raise LLMSimError(f"{root}: no such directory")
    if not registry.is_file():
        raise LLMSimError(f"{root} is not an LLMSim checkout: {REGISTRY} not found")
    text = registry.read_text(encoding="utf-8")
    for needed in ("_MODEL_ARCH_MAP", "def create_model_arch", "SimpleTransformerArch"):
        if needed not in text:
            raise LLMSimError(f"{registry}: not LLMSim's registry as astgen knows it (no {needed})")
    return Checkout(root)


def install(target: Checkout, modules: dict[str, str], prefer: str, rules: Rules) -> list[Path]:
    """Write ``modules`` (file name -> source, emitted with import root
    ``src.arch``) into the package, with its helpers and ``__init__``, and
    (re)write the registry block. Returns the files written."""
    if prefer not in PREFERENCES:
        raise LLMSimError(f"--prefer: one of {', '.join(PREFERENCES)}, not {prefer!r}")
    written = write_package(target.package, modules, IMPORT_ROOT, rules)
    registry = target.registry.read_text(encoding="utf-8")
    write_atomic(target.registry, _without_block(registry).rstrip("\n") + "\n\n\n" + registry_block(prefer))
    return [*written, target.registry]


def uninstall(target: Checkout) -> list[Path]:
    """Remove the package and the registry block; returns what was removed."""
    removed = []
    registry = target.registry.read_text(encoding="utf-8")
    stripped = _without_block(registry)
    if stripped != registry:
        write_atomic(target.registry, stripped.rstrip("\n") + "\n")
        removed.append(target.registry)
    if target.package.is_dir():
        shutil.rmtree(target.package)
        removed.append(target.package)
    return removed


def registry_block(prefer: str) -> str:
    keep = ("    if _MODEL_ARCH_MAP.get(_model_type, SimpleTransformerArch) is SimpleTransformerArch:\n"
            "        _MODEL_ARCH_MAP[_model_type] = _arch\n") if prefer == "handwritten" else \
        "    _MODEL_ARCH_MAP[_model_type] = _arch\n"
    what = "hand-written archs keep precedence" if prefer == "handwritten" else "astgen's archs take precedence"
    return (f"{BEGIN} (written by `astgen gen --llmsim`; remove with `astgen gen --llmsim DIR --uninstall`)\n"
            f"# astgen's archs for the model types it emitted; {what}\n"
            f"from src.arch.models_arch.{PACKAGE} import MODEL_TYPES as _ASTGEN_MODEL_TYPES  # noqa: E402\n"
            "\n"
            "for _model_type, _arch in _ASTGEN_MODEL_TYPES.items():\n"
            f"{keep}"
            f"{END}\n")


def _without_block(text: str) -> str:
    return re.sub(rf"\n*{re.escape(BEGIN)}.*?{re.escape(END)}\n?", "\n", text, flags=re.S)
