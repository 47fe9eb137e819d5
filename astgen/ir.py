"""Stage 3's product, the IR: the module-instance tree the tracer builds for one entry class.

Every node is one module instance as sglang's ``__init__`` would create it:
its class, its constructor arguments as symbolic expressions, the guard under
which it exists (relative to its parent), a repeat count when it stands for
the elements of a ``ModuleList``/``make_layers`` (with the index variable the
guards below it may mention), and the line that created it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from astgen.expr import TRUE, Expr, to_source
from astgen.frontend.parse import Location
from astgen.messages import Message

# node kinds
MODULE = "module"  # a model class whose __init__ was traced
LAYER = "layer"  # a layer class that rules/ knows (a leaf)
IGNORED = "ignored"  # known to produce no operator (norms, rotary, activations)
UNKNOWN = "unknown"  # a class nobody knows: reported, never guessed
LIST = "list"  # ModuleList / make_layers: `repeat` copies of its children
ALIAS = "alias"  # an attribute that re-uses another node (tied lm_head)
PARAM = "param"  # an nn.Parameter created directly


@dataclass
class Node:
    kind: str
    cls: str
    loc: Location
    attr: str = ""
    args: dict[str, Expr] = field(default_factory=dict)
    guard: Expr = TRUE
    repeat: Expr | None = None
    repeat_var: str | None = None
    children: list["Node"] = field(default_factory=list)
    target: "Node | None" = None  # for ALIAS
    parent: "Node | None" = field(default=None, repr=False, compare=False)
    tower: bool = False  # root of a multimodal tower (vision/audio encoder, projector)
    # scalar attributes the constructor stored on self (``self.kv_lora_rank``),
    # which forward semantics read (rules/execution.toml)
    fields: dict[str, Expr] = field(default_factory=dict)
    unquantized: bool = False  # built with a literal ``quant_config=None``
    # the traced class and its bases, as (dotted module, class name), most
    # derived first: where :mod:`astgen.forward.flow` finds the forward code
    origin: tuple[tuple[str, str], ...] = ()

    def add(self, child: "Node", attr: str, guard: Expr) -> None:
        child.attr, child.guard, child.parent = attr, guard, self
        self.children.append(child)

    def path(self) -> str:
        parts = []
        node: Node | None = self
        while node is not None and node.parent is not None:
            if node.attr:
                parts.append(node.attr)
            node = node.parent
        return ".".join(reversed(parts))

    def walk(self, skip_towers: bool = False) -> Iterator["Node"]:
        """This node and its descendants; with ``skip_towers``, a tower root
        is yielded but not entered."""
        yield self
        if skip_towers and self.tower:
            return
        for c in self.children:
            yield from c.walk(skip_towers)


@dataclass(frozen=True)
class Diagnostic:
    """Something the analysis could not do: which kind (:mod:`astgen.messages`),
    where, and its arguments by name; the text is rendered from them."""

    kind: Message
    loc: Location
    args: tuple[tuple[str, Any], ...] = ()  # sorted by name; values are text, numbers or tuples of them

    @classmethod
    def of(klass, kind: Message, loc: Location, /, **args: Any) -> "Diagnostic":
        return klass(kind, loc, tuple(sorted(args.items())))

    def arg(self, name: str, default: Any = None) -> Any:
        return dict(self.args).get(name, default)

    @property
    def code(self) -> str:  # e.g. "unknown-layer", "unresolved", "syntax", "assumed"
        return self.kind.code

    @property
    def severity(self) -> str:  # "error" (unusable input), "incomplete" (missing rule/trace), "note"
        return self.kind.severity

    @property
    def message(self) -> str:
        return self.kind.render(self.kind.text, dict(self.args))

    @property
    def hint(self) -> str:
        return self.kind.render(self.kind.hint, dict(self.args))

    @property
    def subject(self) -> str:
        """The construct not understood: a class name, "call of f", "subscript"."""
        return self.kind.render(self.kind.subject, dict(self.args)) if self.kind.subject else self.kind.code

    def render(self) -> str:
        text = f"{self.loc}: {self.severity}[{self.code}]: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text


@dataclass
class ArchIR:
    """The traced tree of one entry class."""

    entry: str
    module: str
    file: str
    sha256: str
    root: Node
    diagnostics: list[Diagnostic] = field(default_factory=list)
    towers: list[Node] = field(default_factory=list)


def find_towers(root: Node, is_text: Callable[[str], bool], is_encoder: Callable[[str], bool]) -> list[Node]:
    """Mark and return the multimodal towers under ``root``.

    The text path is every node whose subtree holds a text marker (the LM
    head, the logits processor, a pooler). The other children of the nodes
    on that path are candidates (model classes, unknown classes, lists that
    are not repeated). A candidate holding an encoder marker (vision
    attention, a patch convolution, a vision model class) is a tower; once
    there is one, every candidate without a repeated layer stack (a
    projector, a resampler) belongs to the towers too, while a stack (the
    text decoder itself) does not.
    """
    def holds(node: Node, test: Callable[[str], bool]) -> bool:
        return any(test(n.cls) for n in node.walk())

    def has_stack(node: Node) -> bool:
        return any(n.kind == LIST and n.repeat is not None for n in node.walk())

    candidates: list[Node] = []
    stack = [root]
    while stack:
        node = stack.pop(0)
        for child in node.children:
            if holds(child, is_text):
                stack.append(child)
            elif child.kind in (MODULE, UNKNOWN) or (child.kind == LIST and child.repeat is None):
                candidates.append(child)
    towers = [c for c in candidates if holds(c, is_encoder)]
    if towers:
        towers += [c for c in candidates if c not in towers and not has_stack(c)]
        towers.sort(key=candidates.index)
    for t in towers:
        t.tower = True
    return towers


def render_tree(ir: ArchIR) -> str:
    """A readable outline of the IR (used by ``astgen explain``)."""
    lines = [f"{ir.entry}  ({ir.file})"]

    def go(node: Node, depth: int) -> None:
        for child in node.children:
            lines.append("  " * depth + _describe(child))
            if not child.tower:
                go(child, depth + 1)

    go(ir.root, 1)
    return "\n".join(lines)


def _describe(node: Node) -> str:
    head = f"{node.attr or '<item>'}: {node.cls} [{'tower' if node.tower else node.kind}]"
    if node.repeat is not None:
        head += f" x {to_source(node.repeat)} (for {node.repeat_var})"
    if node.guard != TRUE:
        head += f" if {to_source(node.guard)}"
    if node.target is not None:
        head += f" -> {node.target.path()}"
    head += f"  @{node.loc.line}"
    if node.args and node.kind == LAYER:
        args = ", ".join(f"{k}={to_source(v)}" for k, v in node.args.items())
        head += f"\n{'':6}({args})"
    return head
