"""sglang's server arguments, read from the source tree (never imported).

sglang 0.5.23 declares each argument once, as an annotated field of a
namespace struct in ``sglang/srt/arg_groups/fields/*.py``::

    enable_dp_lm_head: A[bool, Arg(help="...", aliases=[...])] = False

and derives the command-line flag from the field (``--enable-dp-lm-head``,
``arg_utils.py:298-400``: a bool is ``store_true``, a ``Literal`` gives the
choices). Earlier versions (0.4, 0.5.8) keep one ``@dataclass ServerArgs`` in
``sglang/srt/server_args.py`` whose fields name the flags the same way.

:func:`read_server_args` gives every field with its namespace, type, literal
default and flags; :func:`parse_flags` reads a launch command line in
sglang's own syntax against them. The values become switches of the analysis
(``astgen.rules.bind_server_args``).
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import pickle
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from astgen.atomic import kept_on_disk
from astgen.frontend.parse import string_literal

NOT_LITERAL = "<computed>"  # a default sglang computes (a call, a name): no value to read


class ServerArgsError(Exception):
    """A launch flag astgen cannot read: unknown, missing its value, or of the wrong type."""


@dataclass(frozen=True)
class ServerArg:
    name: str  # the field, which is also argparse's dest
    namespace: str  # "parallel", "exec.moe" ... ("" in the flat ServerArgs of 0.4 / 0.5.8)
    kind: str  # "bool" | "int" | "float" | "str" | "list" | "other"
    default: Any  # a Python literal, or NOT_LITERAL
    flags: tuple[str, ...]  # "--enable-dp-lm-head" and its aliases
    choices: tuple[Any, ...] = ()
    where: str = ""  # file:line of the declaration
    optional: bool = False


@dataclass(frozen=True)
class ServerArgSpec:
    """Every server argument of one sglang tree, by field name."""

    args: dict[str, ServerArg] = field(default_factory=dict)
    source: str = ""  # where they were read ("sglang/srt/arg_groups/fields")

    def by_flag(self) -> dict[str, ServerArg]:
        return {flag: arg for arg in self.args.values() for flag in arg.flags}


def read_server_args(package_root: Path, kept: Path | None = None) -> ServerArgSpec:
    """The server arguments of the sglang package under ``package_root``
    (the directory holding ``sglang/``); empty when it declares none. With
    ``kept`` (the --cache-dir), read once per content of the files declaring
    them and of this module, and kept there."""
    if kept is None:
        return _read(package_root)
    digest = hashlib.sha256(_CODE)
    for path in _sources(package_root):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return kept_on_disk(Path(kept) / "server_args" / f"{digest.hexdigest()[:32]}.pickle",
                        lambda: _read(package_root), _unpickled,
                        lambda spec: pickle.dumps(spec, protocol=pickle.HIGHEST_PROTOCOL))


def _unpickled(data: bytes) -> ServerArgSpec:
    spec = pickle.loads(data)  # astgen's own cache entry (kept_on_disk wrote it)
    if not isinstance(spec, ServerArgSpec):
        raise TypeError("not a ServerArgSpec")
    return spec


_CODE = Path(__file__).read_bytes()  # what reads them: a change of it reads them again


def _sources(package_root: Path) -> list[Path]:
    """The files :func:`_read` reads, in order."""
    srt = Path(package_root) / "sglang" / "srt"
    fields_dir = srt / "arg_groups" / "fields"
    if fields_dir.is_dir():
        return sorted(fields_dir.glob("*.py"))
    return [srt / "server_args.py"] if (srt / "server_args.py").is_file() else []


def _read(package_root: Path) -> ServerArgSpec:
    srt = Path(package_root) / "sglang" / "srt"
    fields_dir = srt / "arg_groups" / "fields"
    args: dict[str, ServerArg] = {}
    if fields_dir.is_dir():
        for path in sorted(fields_dir.glob("*.py")):
            for arg in _namespace_fields(path, f"sglang/srt/arg_groups/fields/{path.name}"):
                args.setdefault(arg.name, arg)
        return ServerArgSpec(args, "sglang/srt/arg_groups/fields")
    flat = srt / "server_args.py"
    if flat.is_file():
        for arg in _dataclass_fields(flat, "sglang/srt/server_args.py"):
            args.setdefault(arg.name, arg)
        return ServerArgSpec(args, "sglang/srt/server_args.py")
    return ServerArgSpec({}, "")


def _classes(path: Path) -> Iterator[ast.ClassDef]:
    """Each top-level class of the file (nothing for a file that does not parse)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            yield node


def _namespace_fields(path: Path, display: str) -> list[ServerArg]:
    out = []
    for cls in _classes(path):
        namespace = next((_literal(s.value) for s in cls.body if isinstance(s, ast.Assign)
                          and _target_name(s) == "_NS_PATH"), None)
        if not isinstance(namespace, str):
            continue
        for stmt in cls.body:
            if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
                continue
            annotated = _annotated(stmt.annotation)
            if annotated is None:
                continue  # a field without CLI metadata (Derived, runtime state)
            type_node, meta = annotated
            if meta.get("no_cli") is True:
                continue
            out.append(_arg(stmt.target.id, namespace, type_node, stmt.value, meta, f"{display}:{stmt.lineno}"))
    return out


def _dataclass_fields(path: Path, display: str) -> list[ServerArg]:
    return [_arg(stmt.target.id, "", stmt.annotation, stmt.value, {}, f"{display}:{stmt.lineno}")
            for cls in _classes(path) if cls.name == "ServerArgs"
            for stmt in cls.body
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
            and not stmt.target.id.startswith("_")]


def _arg(name: str, namespace: str, type_node: ast.expr, value: ast.expr | None,
         meta: dict[str, Any], where: str) -> ServerArg:
    kind, optional, choices = _kind(type_node)
    if isinstance(meta.get("choices"), list):
        choices = tuple(meta["choices"])
    default = _literal(value) if value is not None else None
    flag = meta.get("cli_name") if isinstance(meta.get("cli_name"), str) else "--" + name.replace("_", "-")
    aliases = tuple(a for a in meta.get("aliases") or () if isinstance(a, str))
    return ServerArg(name, namespace, kind, default, (flag, *aliases), choices, where, optional)


def _subscripts(node: ast.Subscript) -> list[ast.expr]:
    """The elements of ``X[a, b]`` (``[a]`` for ``X[a]``); none for a slice."""
    index = node.slice
    if isinstance(index, ast.Tuple):
        return [e for e in index.elts if not isinstance(e, ast.Slice)]
    return [] if isinstance(index, ast.Slice) else [index]


def _annotated(node: ast.expr) -> tuple[ast.expr, dict[str, Any]] | None:
    """``A[T, "help"]`` / ``A[T, Arg(...)]`` -> (T, Arg's literal keywords)."""
    if not (isinstance(node, ast.Subscript) and _dotted(node.value) in ("A", "Annotated", "typing.Annotated")):
        return None
    elements = _subscripts(node)
    if len(elements) < 2:
        return None
    meta_node = elements[1]
    if isinstance(meta_node, ast.JoinedStr) or string_literal(meta_node) is not None:
        return elements[0], {}
    if isinstance(meta_node, ast.Call) and _dotted(meta_node.func) == "Arg":
        return elements[0], {k.arg: _literal(k.value) for k in meta_node.keywords if k.arg is not None}
    return None


def _kind(node: ast.expr) -> tuple[str, bool, tuple[Any, ...]]:
    """(kind, optional, Literal choices) of a type annotation."""
    if string_literal(node) is not None:  # a string annotation: "Optional[int]"
        try:
            node = ast.parse(node.value.strip(), mode="eval").body
        except SyntaxError:
            return "other", False, ()
    name = _dotted(node.value) if isinstance(node, ast.Subscript) else _dotted(node)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):  # int | None
        left = _kind(node.left)
        return left[0], True, left[2]
    if isinstance(node, ast.Subscript):
        inner = _subscripts(node)
        tail = name.rsplit(".", 1)[-1]
        if tail == "Optional" and inner:
            kind, _, choices = _kind(inner[0])
            return kind, True, choices
        if tail == "Union":
            kinds = [_kind(i) for i in inner if _dotted(i) != "None" and not _is_none(i)]
            if len(kinds) == 1:
                return kinds[0][0], True, kinds[0][2]
            return "other", True, ()
        if tail == "Literal":
            values = tuple(_literal(i) for i in inner)
            kind = {bool: "bool", int: "int", float: "float", str: "str"}.get(type(values[0]), "other") \
                if values else "other"
            return kind, False, values
        if tail in ("List", "list", "Tuple", "tuple"):
            return "list", False, ()
        return "other", False, ()
    return {"bool": "bool", "int": "int", "float": "float", "str": "str"}.get(name.rsplit(".", 1)[-1], "other"), False, ()


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


def _target_name(stmt: ast.Assign) -> str:
    target = stmt.targets[0] if stmt.targets else None
    return target.id if isinstance(target, ast.Name) else ""


def _literal(node: ast.expr | None) -> Any:
    """A literal's value, read from the syntax tree (nothing is evaluated);
    anything else is NOT_LITERAL."""
    if isinstance(node, ast.Constant):
        value = node.value
        return value if value is None or isinstance(value, (bool, int, float, str)) else NOT_LITERAL
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _literal(node.operand)
        return -inner if isinstance(inner, (int, float)) and not isinstance(inner, bool) else NOT_LITERAL
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_literal(e) for e in node.elts]
        return NOT_LITERAL if NOT_LITERAL in items else (list(items) if isinstance(node, ast.List) else tuple(items))
    return NOT_LITERAL


# ----------------------------------------------------------------------------
# a launch command line


def parse_flags(spec: ServerArgSpec, text: str) -> dict[str, Any]:
    """``--enable-dp-lm-head --chunked-prefill-size 8192 ...`` -> {field: value},
    as sglang's argparse reads them (``--flag=value`` too). Raises
    :class:`ServerArgsError` naming the closest flag for an unknown one."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise ServerArgsError(f"--server-args: {exc}") from None
    flags = spec.by_flag()
    values: dict[str, Any] = {}
    i = 0
    while i < len(words):
        word = words[i]
        flag, eq, inline = word.partition("=")
        if not flag.startswith("--"):
            raise ServerArgsError(f"--server-args: expected a flag, got {word!r}")
        arg = flags.get(flag)
        if arg is None:
            close = difflib.get_close_matches(flag, sorted(flags), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ServerArgsError(f"--server-args: sglang ({spec.source or 'this tree'}) has no flag {flag}{hint}")
        i += 1
        if arg.kind == "bool" and not arg.choices:
            if eq:
                raise ServerArgsError(f"--server-args: {flag} is a switch and takes no value")
            values[arg.name] = True
            continue
        if eq:
            given = [inline]
        elif arg.kind == "list":
            given = []
            while i < len(words) and not words[i].startswith("--"):
                given.append(words[i])
                i += 1
        elif i < len(words):
            given = [words[i]]
            i += 1
        else:
            given = []
        if not given:
            raise ServerArgsError(f"--server-args: {flag} needs a value")
        values[arg.name] = given if arg.kind == "list" else _value(arg, flag, given[0])
    return values


def _value(arg: ServerArg, flag: str, text: str) -> Any:
    if arg.optional and text == "None":
        return None
    try:
        value: Any = {"int": int, "float": float}.get(arg.kind, str)(text)
    except ValueError:
        raise ServerArgsError(f"--server-args: {flag} takes {'an' if arg.kind == 'int' else 'a'} {arg.kind}, "
                              f"got {text!r}") from None
    if arg.kind == "bool":
        value = text.lower() in ("1", "true", "yes")
    if arg.choices and value not in arg.choices:
        raise ServerArgsError(f"--server-args: {flag} {text!r} is not one of "
                              f"{', '.join(str(c) for c in arg.choices)}")
    return value
