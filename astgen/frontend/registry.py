"""sglang's config registry, read with astroid: which of sglang's own config
classes (``sglang/srt/configs``) loads a checkpoint of a given ``model_type``.

sglang builds the registry in its config-loading code
(``sglang/srt/utils/hf_transformers/common.py`` in 0.5.x,
``sglang/srt/hf_transformers_utils.py`` before) as
``{cls.model_type: cls for cls in [AfmoeConfig, ...]}`` plus single
``_CONFIG_REGISTRY["x"] = Cls`` entries. Resolving those names means
following imports across packages (``from sglang.srt.configs import ...``
re-exporting ``configs/qwen3_next.py``'s class), walking class hierarchies
(``model_type`` may be inherited) and inferring class constants: astroid's
inference does exactly that, from source, without importing. The trace stage
then reads the class's ``__init__`` and properties.

astroid finds modules on ``sys.path``: while it resolves, the tree's root is
put first there, so the analyzed tree wins over any installed sglang, and
astroid's cache of ``sglang.*`` modules is emptied before and after (two trees
in one process never mix). Nothing is imported or executed.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from astgen.atomic import kept_on_disk, write_atomic
from astgen.frontend.source import SourceTree

# where sglang keeps _CONFIG_REGISTRY, newest first
REGISTRY_MODULES = (
    "sglang.srt.utils.hf_transformers.common",
    "sglang.srt.utils.hf_transformers_utils",
    "sglang.srt.hf_transformers_utils",
)
CONFIGS_PACKAGE = "sglang.srt.configs."
REGISTRY_NAME = "_CONFIG_REGISTRY"


@dataclass(frozen=True)
class ConfigClass:
    module: str  # sglang.srt.configs.qwen3_next
    name: str  # Qwen3NextConfig


@dataclass(frozen=True)
class Registry:
    classes: dict[str, ConfigClass]  # model_type -> sglang's config class
    source: str  # the file it was read from ("" when the tree has none)
    module: str = ""  # its dotted name
    skipped: tuple[str, ...] = ()  # registry entries astroid could not resolve, with why


def read_registry(tree: SourceTree) -> Registry:
    """The model_type -> config class table of one sglang tree (empty when
    the tree has no registry, as in a fixture tree)."""
    for dotted in REGISTRY_MODULES:
        path = tree.module_file(dotted)
        if path is not None:
            break
    else:
        return Registry({}, "")
    import astroid  # the registry is read only when a tree has one
    from astroid import nodes

    classes: dict[str, ConfigClass] = {}
    skipped: list[str] = []
    _forget_sglang()  # read once per tree and process: from the files as they are now
    with _resolving(str(tree.root)):
        try:
            module = astroid.MANAGER.ast_from_file(str(path), dotted, source=True)
        except astroid.AstroidError as exc:
            return Registry({}, tree.display(path), dotted, (f"{tree.display(path)}: {exc}",))
        for assign in module.nodes_of_class((nodes.Assign, nodes.AnnAssign)):
            targets = assign.targets if isinstance(assign, nodes.Assign) else [assign.target]
            for target in targets:
                if isinstance(target, (nodes.AssignName, nodes.Name)) and target.name == REGISTRY_NAME:
                    for cls in _listed_classes(assign.value):
                        _add(classes, skipped, cls, None, tree)
                elif (isinstance(target, nodes.Subscript) and isinstance(target.value, nodes.Name)
                      and target.value.name == REGISTRY_NAME):
                    key = _const(target.slice)
                    if isinstance(key, str):
                        _add(classes, skipped, assign.value, key, tree)
        for call in module.nodes_of_class(nodes.Call):  # _CONFIG_REGISTRY.update({...})
            f = call.func
            if (isinstance(f, nodes.Attribute) and f.attrname == "update" and isinstance(f.expr, nodes.Name)
                    and f.expr.name == REGISTRY_NAME and call.args):
                for cls in _listed_classes(call.args[0]):
                    _add(classes, skipped, cls, None, tree)
    return Registry(dict(sorted(classes.items())), tree.display(path), dotted, tuple(skipped))


def _listed_classes(value) -> list:
    """The class expressions of ``{cls.model_type: cls for cls in [A, B]}``
    or ``{"a": A, ...}`` (keys are read from the classes either way)."""
    from astroid import nodes

    if isinstance(value, nodes.DictComp) and value.generators:
        it = value.generators[0].iter
        return list(it.elts) if isinstance(it, (nodes.List, nodes.Tuple)) else []
    if isinstance(value, nodes.Dict):
        return [v for _, v in value.items]
    if isinstance(value, (nodes.List, nodes.Tuple)):  # 0.5.8: a list first, then the dict built from it
        return list(value.elts)
    return []


def _add(classes: dict[str, ConfigClass], skipped: list[str], expr, key: str | None, tree: SourceTree) -> None:
    """One registry entry: infer the class and, unless given, its model_type."""
    from astroid import nodes

    if isinstance(expr, nodes.Name) and not _defined_in_sglang(expr):
        return  # transformers' own class, registered under another model_type: not sglang's code
    where = f"{tree.display(expr.root().file)}:{expr.lineno}"
    try:
        inferred = [c for c in expr.infer() if isinstance(c, nodes.ClassDef)]
    except Exception:  # noqa: BLE001 - astroid's own failures mean "not inferred", reported below
        inferred = []
    if len(inferred) != 1:
        skipped.append(f"{where}: {expr.as_string()} is not one class to astroid")
        return
    cls = inferred[0]
    module = cls.root().name
    if not module.startswith(CONFIGS_PACKAGE):
        return  # transformers' own class (or an alias of it beside the registry): not sglang's code
    if key is None:
        key = _model_type(cls)
        if not isinstance(key, str):
            skipped.append(f"{where}: {cls.name} has no constant model_type")
            return
    classes.setdefault(key, ConfigClass(module, cls.name))


def _model_type(cls):
    """The ``model_type`` constant a class defines or inherits from one of
    sglang's classes (its MRO, cut where it leaves sglang/srt/configs: a
    transformers base would cost a parse of transformers for nothing)."""
    from astroid import nodes

    seen: set[str] = set()
    todo = [cls]
    while todo:  # breadth first over the bases that are sglang's: the MRO's order for single inheritance
        klass = todo.pop(0)
        if klass.qname() in seen or not klass.root().name.startswith(CONFIGS_PACKAGE):
            continue
        seen.add(klass.qname())
        for node in klass.locals.get("model_type", ()):
            parent = node.parent
            if isinstance(parent, (nodes.Assign, nodes.AnnAssign)) and isinstance(parent.value, nodes.Const):
                return parent.value.value
        for base in klass.bases:
            if _defined_in_sglang(base):
                try:
                    todo += [b for b in base.infer() if isinstance(b, nodes.ClassDef)]
                except Exception:  # noqa: BLE001 - an uninferable base: the model_type is looked up no further
                    pass
    return None


def _defined_in_sglang(expr) -> bool:
    """A base class name bound in this module or imported from sglang (not
    transformers' PretrainedConfig, which is outside what astroid may load)."""
    from astroid import nodes

    if not isinstance(expr, nodes.Name):
        return False
    _, assigned = expr.lookup(expr.name)
    for node in assigned:
        stmt = node.statement() if not isinstance(node, nodes.ClassDef) else node
        if isinstance(stmt, nodes.ImportFrom) and not (stmt.modname.startswith("sglang.") or stmt.level):
            return False
        if isinstance(stmt, nodes.Import):
            return False
    return bool(assigned)


def _const(node):
    from astroid import nodes

    return node.value if isinstance(node, nodes.Const) else None


@contextmanager
def _resolving(root: str) -> Iterator[None]:
    """astroid resolving modules of the tree at ``root``: the tree first on
    ``sys.path``, everything outside sglang denied. What astroid cached for
    another tree (its module cache and its lru-cached module searches) is
    dropped first, so two trees in one process never mix."""
    import astroid

    global _last_root
    if _last_root is not None and _last_root != root:  # (a first use has nothing to drop:
        astroid.MANAGER.clear_cache()  # clearing rebuilds astroid's builtins, 0.45 s)
    _last_root = root
    brain = astroid.manager.AstroidManager.brain  # shared by every AstroidManager() (a borg)
    denylist = brain["module_denylist"]
    brain["module_denylist"] = astroid.MANAGER.module_denylist = _OutsideSglang(denylist)
    sys.path.insert(0, root)
    try:
        yield
    finally:
        sys.path.remove(root)
        brain["module_denylist"] = astroid.MANAGER.module_denylist = denylist


_last_root: str | None = None


def _forget_sglang() -> None:
    """Drop the sglang modules astroid has built (cheap, unlike clear_cache)."""
    import astroid

    cache = astroid.MANAGER.astroid_cache
    for name in [n for n in cache if n == "sglang" or n.startswith("sglang.")]:
        del cache[name]


class _OutsideSglang(set):
    """astroid's module denylist while the registry is read: every module
    outside sglang. The registry's classes and constants are sglang's; a
    name imported from transformers stays uninferred (the alternative is a
    parse of 2,300 transformers modules: 70 s)."""

    def __contains__(self, name: object) -> bool:
        return not (isinstance(name, str) and (name == "sglang" or name.startswith("sglang."))) \
            or super().__contains__(name)


def module_constant(tree: SourceTree, dotted: str, name: str,
                    kept: Path | None = None) -> int | float | str | bool | None | object:
    """The value of ``name`` in a module astgen does not trace
    (``DEFAULT_VOCAB_PADDING_SIZE = 64`` in layers/vocab_parallel_embedding.py),
    inferred by astroid (through its own imports too); NOT_CONSTANT when it
    is not one constant. Kept on disk, with the files astroid read and their
    hashes, under ``kept`` when given: astroid's first use in a process
    costs 0.45 s (it builds its model of the builtins)."""
    key = (str(tree.root), dotted, name)
    if key not in _CONSTANTS:
        path = tree.module_file(dotted)
        _CONSTANTS[key] = NOT_CONSTANT if path is None else _constant_from_disk(tree, path, dotted, name, kept)
    return _CONSTANTS[key]


def _constant_from_disk(tree: SourceTree, path: Path, dotted: str, name: str, directory: Path | None) -> object:
    if directory is None:
        return _infer_constant(tree, path, dotted, name)[0]
    digest = hashlib.sha256(f"{_CODE}\0{dotted}\0{name}\0{_sha(path)}".encode())
    target = directory / f"constant-{digest.hexdigest()[:32]}.json"
    try:
        data = json.loads(target.read_text("utf-8"))
        if all(_sha(tree.root / rel) == sha for rel, sha in data["read"].items()):
            return NOT_CONSTANT if data.get("not_constant") else data["value"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    value, read = _infer_constant(tree, path, dotted, name)
    data = {"read": {str(p.relative_to(tree.root)): _sha(p) for p in sorted(read)}}
    data.update({"not_constant": True} if value is NOT_CONSTANT else {"value": value})
    try:
        write_atomic(target, json.dumps(data, sort_keys=True))
    except OSError:
        pass
    return value


def _sha(path: Path) -> str:
    """sha256 of a file, once per (path, size, mtime) in a process: a kept
    constant checks the same configs package files as the registry."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _SHAS:
        _SHAS[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return _SHAS[key]


_SHAS: dict[tuple[str, int, int], str] = {}
_CODE = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()  # what reads the registry and constants


def _infer_constant(tree: SourceTree, path: Path, dotted: str, name: str) -> tuple[object, set[Path]]:
    """(the value or NOT_CONSTANT, the tree's files astroid had built)."""
    literal = literal_binding(path, name)
    if literal is not UNDECIDED:  # what astroid would infer, read from the file alone
        return literal, {path.resolve()}
    return astroid_constant(tree, path, dotted, name)


def astroid_constant(tree: SourceTree, path: Path, dotted: str, name: str) -> tuple[object, set[Path]]:
    """:func:`_infer_constant` by astroid."""
    import astroid
    from astroid import nodes

    value: object = NOT_CONSTANT
    with _resolving(str(tree.root)):
        try:
            module = astroid.MANAGER.ast_from_file(str(path), dotted, source=True)
            found = [v for v in module.igetattr(name) if v is not astroid.Uninferable]
        except Exception:  # noqa: BLE001 - astroid's own failures (its brain plugins assert) mean "unknown"
            found = []
        if len(found) == 1 and isinstance(found[0], nodes.Const) \
                and isinstance(found[0].value, (int, float, str, bool, type(None))):
            value = found[0].value
        root = tree.root.resolve()
        read = {Path(m.file).resolve() for n, m in astroid.MANAGER.astroid_cache.items()
                if (n == "sglang" or n.startswith("sglang.")) and getattr(m, "file", None)}
    return value, {p for p in read if p.is_relative_to(root) and p.is_file()} | {path.resolve()}


def literal_binding(path: Path, name: str) -> object:
    """``name``'s value where the module binds it once, at module scope, to
    a literal (``SWA_WINDOW = 128``), or NOT_CONSTANT where that one binding
    is a class, a function or a literal of another type (a tuple, a dict):
    what astroid infers, without building its model of the module, of the
    builtins and of every module the module imports (0.17 s for SWA_WINDOW
    in layers/attention/deepseek_v4_backend.py). UNDECIDED otherwise (an
    import, an expression, a name bound twice or from a function's
    ``global``, a star import): astroid's to infer."""
    try:
        text = path.read_text("utf-8-sig")
        module = ast.parse(text)
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError, RecursionError, MemoryError):
        return UNDECIDED
    if re.search(rf"\b(global|del)\b[^\n]*\b{re.escape(name)}\b", text):
        return UNDECIDED
    bindings = list(_module_bindings(module.body, name))
    if len(bindings) != 1:
        return UNDECIDED
    node = bindings[0]
    if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
        return NOT_CONSTANT
    if isinstance(node, ast.Assign):
        target = node.targets[0] if len(node.targets) == 1 else None  # not `A = B = 1`
    else:
        target = node.target if isinstance(node, ast.AnnAssign) else None
    value = getattr(node, "value", None)
    if not isinstance(target, ast.Name) or value is None:
        return UNDECIDED
    if isinstance(value, _DISPLAYS):  # a dict, list, tuple or set (astroid's Dict, ..., never a Const)
        return NOT_CONSTANT
    try:
        literal = ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return UNDECIDED
    return literal if isinstance(literal, (int, float, str, bool, type(None))) else NOT_CONSTANT


_DISPLAYS = (ast.Dict, ast.List, ast.Tuple, ast.Set, ast.DictComp, ast.ListComp, ast.SetComp, ast.Lambda)


def _module_bindings(body: list[ast.stmt], name: str) -> Iterator[ast.stmt]:
    """The statements of a module's scope that bind ``name`` (an
    assignment, a def, an import, a loop or ``with`` target, an ``except
    ... as``); a star import counts as binding every name."""
    for node in body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.name == name:
                yield node
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if any(a.name == "*" or (a.asname or a.name.split(".")[0]) == name for a in node.names):
                yield node
            continue
        targets = {ast.Assign: lambda n: n.targets, ast.AugAssign: lambda n: [n.target],
                   ast.AnnAssign: lambda n: [n.target], ast.For: lambda n: [n.target],
                   ast.AsyncFor: lambda n: [n.target],
                   ast.With: lambda n: [i.optional_vars for i in n.items if i.optional_vars is not None],
                   ast.AsyncWith: lambda n: [i.optional_vars for i in n.items if i.optional_vars is not None],
                   }.get(type(node), lambda n: [])(node)
        if any(isinstance(t, ast.Name) and t.id == name for target in targets for t in ast.walk(target)) \
                or any(isinstance(x, ast.NamedExpr) and x.target.id == name for x in ast.walk(node)):
            yield node
            continue
        for handler in getattr(node, "handlers", ()):
            if handler.name == name:
                yield node
            yield from _module_bindings(handler.body, name)
        for inner in ("body", "orelse", "finalbody"):
            block = getattr(node, inner, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                yield from _module_bindings(block, name)
        for case in getattr(node, "cases", ()):
            yield node  # a match statement: its patterns may bind anything
            break


NOT_CONSTANT = object()
UNDECIDED = object()
_CONSTANTS: dict[tuple[str, str, str], object] = {}
_REGISTRIES: dict[tuple[str, str], Registry] = {}


def registry_of(tree: SourceTree, kept: Path | None = None) -> Registry:
    """:func:`read_registry`, once per tree and process, and kept on disk
    under ``kept`` (the loader's, from --cache-dir) by the content of the
    files it reads."""
    key = (str(tree.root), tree.version)
    if key not in _REGISTRIES:
        _REGISTRIES[key] = _from_disk(tree, kept)
    return _REGISTRIES[key]


def _from_disk(tree: SourceTree, directory: Path | None) -> Registry:
    """The registry of ``tree`` as kept under ``directory`` (by the sha256 of
    this module's code, the registry's file and every file of sglang's
    configs package: what astroid reads), else read and kept there."""
    if directory is None:
        return read_registry(tree)
    digest = hashlib.sha256(_CODE.encode())
    sources = [tree.module_file(d) for d in REGISTRY_MODULES]
    configs = tree.module_file(CONFIGS_PACKAGE.rstrip(".") + ".__init__")
    sources += sorted(configs.parent.rglob("*.py")) if configs is not None else []
    for path in sources:
        if path is not None:
            digest.update(f"{path.relative_to(tree.root)}\0{_sha(path)}\0".encode())
    return kept_on_disk(directory / f"{digest.hexdigest()[:32]}.json", lambda: read_registry(tree),
                        _registry_from_json, _registry_json)


def _registry_from_json(text: bytes) -> Registry:
    data = json.loads(text)
    return Registry({k: ConfigClass(*v) for k, v in data["classes"].items()}, data["source"],
                    data["module"], tuple(data["skipped"]))


def _registry_json(registry: Registry) -> str:
    return json.dumps({"classes": {k: [c.module, c.name] for k, c in registry.classes.items()},
                       "source": registry.source, "module": registry.module, "skipped": list(registry.skipped)},
                      sort_keys=True)
