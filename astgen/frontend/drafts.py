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

from pathlib import Path

import libcst as cst

MODEL_CONFIG = ("sglang", "srt", "configs", "model_config.py")


def read_drafts(package_root: Path) -> dict[str, tuple[str, ...]]:
    """draft architecture -> its target architectures, in source order."""
    path = Path(package_root).joinpath(*MODEL_CONFIG)
    try:
        module = cst.parse_module(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, cst.ParserSyntaxError):
        return {}
    out: dict[str, list[str]] = {}
    for node in _ifs(module):
        if not _mentions(node.test, "is_draft_model"):
            continue
        targets = _compared_architectures(node.test)
        for draft in _renamed_to(node.body):
            for target in targets:
                if target != draft and target not in out.setdefault(draft, []):
                    out[draft].append(target)
    return {k: tuple(v) for k, v in out.items() if v}


def _ifs(module: cst.Module) -> list[cst.If]:
    found: list[cst.If] = []

    class Visitor(cst.CSTVisitor):
        def visit_If(self, node: cst.If) -> None:
            found.append(node)

    module.visit(Visitor())
    return found


def _mentions(node: cst.CSTNode, name: str) -> bool:
    hits: list[bool] = []

    class Visitor(cst.CSTVisitor):
        def visit_Name(self, n: cst.Name) -> None:
            if n.value == name:
                hits.append(True)

    node.visit(Visitor())
    return bool(hits)


def _is_architecture(node: cst.BaseExpression) -> bool:
    """``self.hf_config.architectures[0]``"""
    return isinstance(node, cst.Subscript) and isinstance(node.value, cst.Attribute) \
        and node.value.attr.value == "architectures"


def _compared_architectures(test: cst.BaseExpression) -> list[str]:
    """The names ``architectures[0]`` is compared with (``==``, ``in [...]``)."""
    names: list[str] = []

    class Visitor(cst.CSTVisitor):
        def visit_Comparison(self, node: cst.Comparison) -> None:
            if not _is_architecture(node.left):
                return
            for target in node.comparisons:
                right = target.comparator
                items = [e.value for e in right.elements] if isinstance(right, (cst.List, cst.Tuple, cst.Set)) \
                    else [right]
                names.extend(i.evaluated_value for i in items if isinstance(i, cst.SimpleString))

    test.visit(Visitor())
    return names


def _renamed_to(body: cst.BaseSuite) -> list[str]:
    """``architectures[0] = "X"`` or ``architectures = ["X"]`` in the body."""
    names: list[str] = []

    class Visitor(cst.CSTVisitor):
        def visit_Assign(self, node: cst.Assign) -> None:
            for t in node.targets:
                target, value = t.target, node.value
                if _is_architecture(target) and isinstance(value, cst.SimpleString):
                    names.append(value.evaluated_value)
                elif isinstance(target, cst.Attribute) and target.attr.value == "architectures" \
                        and isinstance(value, cst.List) and len(value.elements) == 1 \
                        and isinstance(value.elements[0].value, cst.SimpleString):
                    names.append(value.elements[0].value.evaluated_value)

    body.visit(Visitor())
    return names
