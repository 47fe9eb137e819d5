"""Stage 2, the loader: the modules of one sglang tree,
each parsed once (astgen.frontend.parse) and only when a later stage asks for it.
Every stage that needs a module gets it here, so a file that is both an
entry and another file's dependency is read once; the result cache learns
from it which files a result depends on."""

from __future__ import annotations

import ast
from pathlib import Path

from astgen.frontend.parse import ParsedModule, ParseFailure, parse_file, string_literal
from astgen.frontend.source import SourceTree

# what the tracer reads as code: model code, sglang's config classes and helpers,
# and the draft-config parser of DFlash/DSpark drafts (a config reader too);
# mini-sglang's model code (its ModelConfig included)
TRACED_PACKAGES = ("sglang.srt.models.", "sglang.srt.configs.", "sglang.srt.speculative.dflash_utils",
                   "minisgl.models.")


def is_traced_module(dotted: str) -> bool:
    """Code the tracer reads (TRACED_PACKAGES); everything else in sglang is
    known by rules only."""
    return dotted.startswith(TRACED_PACKAGES)


class Loader:
    """Parses the modules of one sglang tree on demand, each file once.

    The only place a module is parsed: the CLI loads its entry files here
    too, so a file that is both an entry and another file's dependency is
    read once.
    """

    def __init__(self, tree: SourceTree, kept: Path | None = None) -> None:
        self.tree = tree
        self.kept = kept  # where what is read besides model code (registries, constants) is kept
        self.version = tree.version
        self.modules: dict[str, ParsedModule | None] = {}  # None: absent or unparsable
        self.failures: dict[str, ParseFailure] = {}
        self._tracked: set[str] = set()
        self._registry: dict[str, list[tuple[str, str]]] | None = None

    def start_tracking(self) -> None:
        """Record the files read from now on (a cached result depends on them)."""
        self._tracked = set()

    def tracked(self) -> list[Path]:
        files = (self.tree.module_file(d) for d in self._tracked)
        return sorted({f for f in files if f is not None})

    def load(self, dotted: str) -> ParsedModule:
        """The parsed module; raises ParseFailure (again on later calls)."""
        self._tracked.add(dotted)
        if dotted in self.failures:
            raise self.failures[dotted]
        pm = self.modules.get(dotted)
        if pm is not None:
            return pm
        path = self.tree.module_file(dotted)
        if path is None:
            raise ParseFailure(dotted, 0, "no such module in the sglang tree")
        try:
            pm = parse_file(path, dotted, display=self.tree.display(path))
        except ParseFailure as exc:
            self.failures[dotted] = exc
            self.modules[dotted] = None
            raise
        self.modules[dotted] = pm
        if self.tree.flavour.registry is not None and dotted.rpartition(".")[0] == self.tree.models_package:
            listed = self.registry().get(dotted.rpartition(".")[2], [])
            pm.entry_classes = [arch for arch, _ in listed]
            pm.entry_aliases = {arch: cls for arch, cls in listed if arch != cls}
        return pm

    def registry(self) -> dict[str, list[tuple[str, str]]]:
        """A registry-dict tree's entries (mini-sglang's ``_MODEL_REGISTRY``:
        architecture -> (".module", "Class")), by model module stem, in the
        dict's order; {} when the registry cannot be read."""
        if self._registry is None:
            self._registry = {}
            module, _, name = (self.tree.flavour.registry or "").partition(":")
            try:
                value = self.load(module).assigns.get(name) if module else None
            except ParseFailure:
                value = None
            for key_node, target in zip(value.keys, value.values) if isinstance(value, ast.Dict) else ():
                key = string_literal(key_node)
                parts = [string_literal(e) for e in target.elts] if isinstance(target, ast.Tuple) else []
                if key and len(parts) == 2 and all(parts):
                    self._registry.setdefault(parts[0].lstrip("."), []).append((key, parts[1]))
        return self._registry

    def track(self, dotted: str) -> None:
        """A module read by other means (astroid) that a result depends on."""
        self._tracked.add(dotted)

    def get(self, dotted: str) -> ParsedModule | None:
        """A model module the tracer may follow into, or None (not model
        code, not in the tree, or unparsable)."""
        if dotted in self.modules:
            if self.modules[dotted] is not None:
                self._tracked.add(dotted)
            return self.modules[dotted]
        if not is_traced_module(dotted) or self.tree.module_file(dotted) is None:
            self.modules[dotted] = None
            return None
        try:
            return self.load(dotted)
        except ParseFailure:
            return None
