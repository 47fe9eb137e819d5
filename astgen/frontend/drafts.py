"""Which architectures sglang builds as the draft of which targets, read
from its own source (never imported).

For speculative decoding sglang loads a draft model from the target's
checkpoint and renames the architecture when it builds the draft's config
(``configs/model_config.py``, ``_config_draft_model`` in 0.5.23)::

    if is_draft_model and self.hf_config.architectures[0] in ["DeepseekV3ForCausalLM", ...]:
        self.hf_config.architectures[0] = "DeepseekV3ForCausalLMNextN"

:func:`read_drafts` collects every such rename: draft architecture -> the
target architectures whose checkpoints it is built from. The runtime oracle
then checks a draft at its target's checkpoint config, as sglang builds it.
"""

from __future__ import annotations

import ast
from pathlib import Path

from astgen.frontend.parse import string_literal

MODEL_CONFIG = ("sglang", "srt", "configs", "model_config.py")


def read_drafts(package_root: Path) -> dict[str, tuple[str, ...]]:
    """draft architecture -> its target architectures, in source order."""
    path = Path(package_root).joinpath(*MODEL_CONFIG)
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return {}
    out: dict[str, list[str]] = {}
    for node in _ifs(tree):
        if not _mentions(node.test, "is_draft_model"):
            continue
        targets = _compared_architectures(node.test)
        for draft in _renamed_to(node.body):
            for target in targets:
                if target != draft and target not in out.setdefault(draft, []):
                    out[draft].append(target)
    return {k: tuple(v) for k, v in out.items() if v}


def _preorder(node: ast.AST):
    """``node`` and every node under it, in source order (``ast.walk`` is breadth first)."""
    yield node
    for child in ast.iter_child_nodes(node):
        yield from _preorder(child)


def _ifs(tree: ast.Module) -> list[ast.If]:
    return [n for n in _preorder(tree) if isinstance(n, ast.If)]


def _mentions(node: ast.AST, name: str) -> bool:
    return any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(node))


def _is_architecture(node: ast.expr) -> bool:
    """``self.hf_config.architectures[0]``"""
    return isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) \
        and node.value.attr == "architectures"


def _compared_architectures(test: ast.expr) -> list[str]:
    """The names ``architectures[0]`` is compared with (``==``, ``in [...]``)."""
    names: list[str] = []
    for node in _preorder(test):
        if not (isinstance(node, ast.Compare) and _is_architecture(node.left)):
            continue
        for right in node.comparators:
            items = right.elts if isinstance(right, (ast.List, ast.Tuple, ast.Set)) else [right]
            names.extend(s for s in map(string_literal, items) if s is not None)
    return names


def _renamed_to(body: list[ast.stmt]) -> list[str]:
    """``architectures[0] = "X"`` or ``architectures = ["X"]`` in the body."""
    names: list[str] = []
    for node in (n for stmt in body for n in _preorder(stmt)):
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            value = node.value
            if _is_architecture(target) and string_literal(value) is not None:
                names.append(string_literal(value))
            elif isinstance(target, ast.Attribute) and target.attr == "architectures" \
                    and isinstance(value, ast.List) and len(value.elts) == 1 and string_literal(value.elts[0]) is not None:
                names.append(string_literal(value.elts[0]))
    return names
