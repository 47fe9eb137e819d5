"""Stage 1, source: find an sglang package root and map dotted names to files.

Nothing here imports sglang. A root is the directory that holds the
``sglang/`` package: a checkout's ``python/``, an unpacked wheel, a
``site-packages``; or a wheel fetched with ``pip download --no-deps`` into the
user cache (:func:`fetch_version`), whose ``.py`` members are unpacked there.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

MODELS_PACKAGE = "sglang.srt.models"


@dataclass(frozen=True)
class Flavour:
    """A family of model source astgen reads: sglang, or mini-sglang (whose
    models sit in ``minisgl/models/``, listed in a registry dict instead of
    each file's ``EntryClass``, built from its own layers and config)."""

    name: str  # also the rules' namespace for its layers (rules/minisgl.toml)
    package: str  # the top package under the root
    models_package: str
    registry: str | None = None  # "module:NAME" of an architecture -> (".module", "Class") dict

    @property
    def models_parts(self) -> tuple[str, ...]:
        return tuple(self.models_package.split("."))


SGLANG = Flavour("sglang", "sglang", MODELS_PACKAGE)
MINISGL = Flavour("minisgl", "minisgl", "minisgl.models", "minisgl.models.register:_MODEL_REGISTRY")
FLAVOURS = (SGLANG, MINISGL)


class SourceError(Exception):
    """The input cannot be used: no sglang tree, no such file or version."""


def cache_dir() -> Path:
    """``$ASTGEN_CACHE``, else ``$XDG_CACHE_HOME/astgen``, else ``~/.cache/astgen``."""
    env = os.environ.get("ASTGEN_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg) / "astgen" if xdg else Path.home() / ".cache" / "astgen"


@dataclass(frozen=True)
class SourceTree:
    """An sglang package root: ``root / "sglang" / ...``."""

    root: Path
    version: str
    flat: bool = False  # a bare directory of model files (the fixtures)
    flavour: Flavour = SGLANG

    @property
    def models_dir(self) -> Path:
        return self.root if self.flat else self.root.joinpath(*self.flavour.models_parts)

    @property
    def models_package(self) -> str:
        return self.flavour.models_package

    def module_file(self, dotted: str) -> Path | None:
        """File of a dotted module name, or None when it is not in the tree."""
        if self.flat:
            prefix = self.models_package + "."
            if not dotted.startswith(prefix) or "." in dotted[len(prefix):]:
                return None
            candidate = self.root / (dotted[len(prefix):] + ".py")
            return candidate if candidate.is_file() else None
        parts = dotted.split(".")
        base = self.root.joinpath(*parts)
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
        return None

    def module_name(self, path: Path) -> str:
        if self.flat:
            return f"{self.models_package}.{path.stem}"
        rel = path.resolve().relative_to(self.root.resolve()).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        return ".".join(parts)

    def display_root(self) -> str:
        """The root for reports: the home directory written as ``~``."""
        home = str(Path.home())
        text = str(self.root)
        return "~" + text[len(home):] if text.startswith(home + "/") else text

    def display(self, path: Path) -> str:
        """How diagnostics and headers name a file: relative to the root."""
        try:
            return str(Path(path).resolve().relative_to(self.root.resolve()))
        except ValueError:
            return str(path)

    def model_files(self) -> list[Path]:
        return sorted(p for p in self.models_dir.glob("*.py") if p.name != "__init__.py")

    def files_naming(self, entry: str) -> list[Path]:
        """Model files that may declare EntryClass ``entry``: a text filter
        before any parsing (the file names both; for mini-sglang, the
        registry file names the entry)."""
        marker = "EntryClass" if self.flavour.registry is None else None
        return [p for p in self.model_files() if _mentions(p, entry, marker)]


def _mentions(path: Path, entry: str, marker: str | None = "EntryClass") -> bool:
    try:
        text = path.read_text("utf-8-sig", errors="replace")
    except OSError:
        return False
    return (marker is None or marker in text) and entry in text


UNKNOWN_VERSION = "unknown"


def read_version(root: Path) -> str:
    """The version of the sglang tree at ``root``, resolved as sglang's own
    ``sglang/version.py`` resolves it, without importing anything:

    1. a literal ``__version__`` at the top of ``sglang/version.py`` (0.4.x);
    2. ``sglang/_version.py``, written by the build (wheels, site-packages, a
       built checkout): its literal ``__version__``;
    3. the package metadata beside the package (``sglang-V.dist-info/METADATA``
       of a wheel or site-packages, ``sglang.egg-info/PKG-INFO`` of an
       editable checkout): what ``importlib.metadata.version`` reads;
    4. a git checkout's tags, as setuptools_scm's default scheme reads them
       (``v0.5.23`` at HEAD is ``0.5.23``; 12 commits later ``0.5.24.dev12+gSHA``).

    sglang's last fallback, ``0.0.0.dev0``, says nothing about the tree: it is
    reported as ``unknown``.
    """
    root = Path(root)
    if (root / "minisgl").is_dir() and not (root / "sglang").is_dir():
        return _minisgl_version(root)
    for source in (root / "sglang" / "version.py", root / "sglang" / "_version.py"):
        found = _literal_version(source)
        if found:
            return found
    for meta in [*sorted(root.glob("sglang-*.dist-info/METADATA")), root / "sglang.egg-info" / "PKG-INFO"]:
        found = _metadata_version(meta)
        if found:
            return found
    return _git_version(root) or UNKNOWN_VERSION


_FALLBACK_VERSION = "0.0.0.dev0"


def _minisgl_version(root: Path) -> str:
    """mini-sglang's version: ``version`` in the checkout's pyproject.toml
    (beside ``python/``, or beside the package), or its wheel's metadata,
    else a git checkout's description."""
    for pyproject in (root / "pyproject.toml", root.parent / "pyproject.toml"):
        text = pyproject.read_text("utf-8", errors="replace") if pyproject.is_file() else ""
        m = re.search(r'^name\s*=\s*"minisgl"\s*\nversion\s*=\s*"([^"]+)"', text, re.M)
        if m:
            return m.group(1)
    for meta in sorted(root.glob("minisgl-*.dist-info/METADATA")):
        found = _metadata_version(meta, "minisgl")
        if found:
            return found
    return _git_version(root) or UNKNOWN_VERSION


def _literal_version(path: Path) -> str | None:
    """A string assigned to ``__version__`` by a top-level statement (not
    one inside ``try``: that is a fallback, taken only when imports fail)."""
    try:
        tree = ast.parse(path.read_text("utf-8-sig"))
    except (OSError, SyntaxError, ValueError):
        return None
    for stmt in tree.body:
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and isinstance(stmt.value, ast.Constant) \
                and isinstance(stmt.value.value, str):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if any(isinstance(t, ast.Name) and t.id == "__version__" for t in targets) \
                    and stmt.value.value != _FALLBACK_VERSION:
                return stmt.value.value
    return None


def _metadata_version(path: Path, package: str = "sglang") -> str | None:
    try:
        text = path.read_text("utf-8", errors="replace")
    except OSError:
        return None
    name = re.search(r"^Name:\s*(\S+)", text, re.M)
    version = re.search(r"^Version:\s*(\S+)", text, re.M)
    if version and (name is None or re.sub(r"[-_.]+", "-", name.group(1)).lower() == package):
        return version.group(1)
    return None


_DESCRIBE = re.compile(r"^v?(\d+(?:\.\d+)*)-(\d+)-g([0-9a-f]+)$")


def _git_version(root: Path) -> str | None:
    """setuptools_scm's ``guess-next-dev`` reading of ``git describe``; None
    outside a git checkout, or where git is missing or finds no tag."""
    checkout = next((p for p in (root, *root.parents) if (p / ".git").exists()), None)
    if checkout is None:
        return None
    try:
        proc = subprocess.run(["git", "-C", str(checkout), "describe", "--tags", "--long", "--match", "v*"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    m = _DESCRIBE.match(proc.stdout.strip()) if proc.returncode == 0 else None
    if m is None:
        return None
    tag, distance, sha = m.group(1), int(m.group(2)), m.group(3)
    if distance == 0:
        return tag
    parts = tag.split(".")
    parts[-1] = str(int(parts[-1]) + 1)
    return f"{'.'.join(parts)}.dev{distance}+g{sha}"


def tree_at(root: Path) -> SourceTree:
    """The tree whose package root is ``root`` (or ``root/python`` for a
    checkout): sglang's, else mini-sglang's."""
    root = Path(root)
    for flavour in FLAVOURS:
        for cand in (root, root / "python"):
            if cand.joinpath(*flavour.models_parts).is_dir():
                return SourceTree(cand.resolve(), read_version(cand), flavour=flavour)
    raise SourceError(
        f"{root}: not an sglang package root (no sglang/srt/models/ under it or under python/; "
        "nor mini-sglang's minisgl/models/)"
    )


def tree_of_file(path: Path) -> SourceTree:
    """The sglang tree that holds ``path``, found by walking up.

    A file outside any sglang tree is read as a model file whose siblings are
    the other model files (``sglang.srt.models.<stem>``): the fixtures' layout.
    """
    path = Path(path).resolve()
    return _enclosing_tree(path.parents) or SourceTree(path.parent, UNKNOWN_VERSION, flat=True)


def _enclosing_tree(directories) -> SourceTree | None:
    """The tree whose package (``sglang/``, mini-sglang's ``minisgl/``) is
    the first of ``directories`` that is one."""
    for parent in directories:
        if parent.name == "sglang" and (parent / "srt").is_dir():
            return SourceTree(parent.parent, read_version(parent.parent))
        if parent.name == "minisgl" and (parent / "models").is_dir():
            return SourceTree(parent.parent, read_version(parent.parent), flavour=MINISGL)
    return None


def tree_of_dir(path: Path) -> SourceTree:
    """A tree root, a checkout, a tree's models directory, or a bare
    directory of model files."""
    try:
        return tree_at(path)
    except SourceError:
        path = Path(path).resolve()
        if path.is_dir() and any(path.glob("*.py")):
            inside = _enclosing_tree(path.parents)
            if inside is not None and inside.models_dir.resolve() == path:
                return inside
            return SourceTree(path, UNKNOWN_VERSION, flat=True)
        raise


def fetch_version(version: str, cache: Path | None = None) -> SourceTree:
    """``pip download --no-deps sglang==version`` into the cache and unpack its sources.

    Reused on later calls. Only ``sglang/**/*.py`` (and version metadata) is
    unpacked; nothing is installed or imported.
    """
    if not re.fullmatch(r"[0-9A-Za-z.+!-]+", version):
        raise SourceError(f"not a version: {version!r}")
    cache = cache or cache_dir()
    dest = cache / "src" / version
    if (dest / "sglang" / "srt" / "models").is_dir():
        return SourceTree(dest.resolve(), version)
    wheel = _download_wheel(version, cache / "wheels")
    _unpack_sources(wheel, dest)
    return SourceTree(dest.resolve(), version)


def runtime_root(tree: SourceTree, cache: Path | None = None) -> Path:
    """Where the sglang of ``tree`` can be imported from: the tree itself,
    except a wheel :func:`fetch_version` fetched, whose sources alone were
    unpacked; that wheel is unpacked whole (its kernel sources and
    extensions, as pip would install them) beside them, once."""
    cache = cache or cache_dir()
    src = cache / "src"
    if tree.root.parent != src.resolve() if src.exists() else True:
        return tree.root
    dest = cache / "runtime" / tree.root.name
    if not dest.exists():
        wheel = _download_wheel(tree.root.name, cache / "wheels")
        tmp = dest.with_name(dest.name + ".partial")
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(tmp)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp.rename(dest)
    return dest.resolve()


def _download_wheel(version: str, wheels: Path) -> Path:
    found = sorted(wheels.glob(f"sglang-{version}-*.whl"))
    if found:
        return found[0]
    wheels.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
           "-d", str(wheels), f"sglang=={version}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(wheels.glob(f"sglang-{version}-*.whl"))
    if proc.returncode != 0 or not found:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no wheel"]
        raise SourceError(f"could not fetch sglang=={version}: {tail[0]}")
    return found[0]


def _unpack_sources(wheel: Path, dest: Path) -> None:
    tmp = dest.with_name(dest.name + ".partial")
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            n = info.filename
            keep = (n.startswith("sglang/") and n.endswith(".py")) or n.endswith(".dist-info/METADATA")
            if keep and ".." not in Path(n).parts:
                zf.extract(info, tmp)
    if not dest.exists():
        tmp.rename(dest)


_IMPORT_LINE = re.compile(r"^\s*(?:from\s+([\w.]+)\s+import|import\s+([\w.]+))", re.M)


def imported_modules(path: Path) -> set[str]:
    """Dotted names a model file imports, read from its text without parsing
    (``from .qwen2 import X`` is ``sglang.srt.models.qwen2``). Cheap enough
    to run on every model file before any parse: worker shares and the
    pre-commit hook's set of affected files come from it."""
    try:
        text = path.read_text("utf-8-sig", errors="replace")
    except OSError:
        return set()
    out = set()
    for absolute, plain in _IMPORT_LINE.findall(text):
        name = absolute or plain
        if name.startswith("."):  # relative to sglang.srt.models
            name = MODELS_PACKAGE + ("." + name.lstrip(".") if name.strip(".") else "")
        out.add(name)
    return out
