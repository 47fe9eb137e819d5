"""Python source of expressions and statements, already in black's style.

The emitter lays out its code one statement per line; a line printed here
that fits in :data:`LINE_LENGTH` is what black would print (double quotes,
``x**2`` hugged for simple operands), so black has nothing to change in it.
Only a statement too long for one line goes through black, and a formatted
statement is remembered by its text: modules share most of theirs. Where
the command line keeps a cache, black's output is kept there too, by the
hash of black's version, the width and the text (a `gen` run again, as a
pre-commit hook does, then never imports black).
"""

from __future__ import annotations

import hashlib
import re
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Iterator

from astgen import expr as E
from astgen.atomic import kept_on_disk

LINE_LENGTH = 88
_MODE = {}  # line length -> black.Mode
# where black's output is kept for the emission running now (EmitOptions.format_cache): set
# for one emit_module call by `kept_in`, read by _black; None: nothing kept on disk
_KEPT: ContextVar[Path | None] = ContextVar("format_cache", default=None)
_BLACK_VERSION: list[str] = []


_SHOWN: dict[E.Expr, str] = {}


def show(e: E.Expr) -> str:
    """``e`` as black prints it on one line (each expression printed once:
    modules, and the names chosen for their parts, share most of theirs)."""
    return E.remembered(_SHOWN, lambda x: _BlackPrinter().show(x)[0], e)


def _quoted(value: str) -> str:
    text = repr(value)
    if text.startswith("'") and '"' not in value:
        text = '"' + text[1:-1] + '"'
    return text


class _BlackPrinter(E.Printer):
    def _Const(self, e: E.Const) -> tuple[str, int]:
        if isinstance(e.value, str):
            return _quoted(e.value), E.PREC["atom"]
        return super()._Const(e)

    def _GetAttr(self, e: E.GetAttr) -> tuple[str, int]:
        obj, default = self.show(e.obj)[0], self.show(e.default)[0]
        return f"getattr({obj}, {_quoted(e.name)}, {default})", E.PREC["atom"]

    def _HasAttr(self, e: E.HasAttr) -> tuple[str, int]:
        return f"hasattr({self.show(e.obj)[0]}, {_quoted(e.name)})", E.PREC["atom"]

    def _BinOp(self, e: E.BinOp) -> tuple[str, int]:
        text, prec = super()._BinOp(e)
        if e.op == "**" and _simple_power_operand(e.left) and _simple_power_operand(e.right):
            text = text.replace(" ** ", "**", 1) if text.count(" ** ") == 1 else text
        return text, prec


def _simple_power_operand(e: E.Expr) -> bool:
    """black's rule: a name, a number or an attribute chain, maybe negated."""
    if isinstance(e, E.UnaryOp) and e.op == "-":
        return _simple_power_operand(e.operand)
    if isinstance(e, E.Const):
        return type(e.value) in (int, float) and e.value >= 0
    if isinstance(e, E.Attr):
        return _simple_power_operand(e.obj) and not isinstance(e.obj, E.Const)
    return isinstance(e, E.Name)


_FORMATTED: dict[tuple[str, int], list[str]] = {}


def statement(text: str, indent: int) -> list[str]:
    """The lines of one statement at ``indent`` spaces, as black lays it out:
    as given when it fits, else black's layout (remembered by its text)."""
    if indent + len(text) <= LINE_LENGTH:
        return [" " * indent + text]
    key = (text, indent)
    if key not in _FORMATTED:
        header = text.endswith(":")  # `if ...:` / `for ...:`: formatted with a body, then without
        lines = None if header else _call_layout(text, LINE_LENGTH - indent)
        if lines is None:
            out = _black(text + ("\n    pass" if header else ""), LINE_LENGTH - indent)
            lines = out.rstrip("\n").split("\n")
        if header:
            lines = lines[:-1]
        _FORMATTED[key] = [(" " * indent + line) if line else line for line in lines]
    return list(_FORMATTED[key])


_CALL = re.compile(r"^([A-Za-z_][\w.]*)\((.*)\)$", re.S)
# what black would rewrite inside a call (quotes, the power operator's spacing, slices,
# comments, escapes, lambdas): such a call goes to black
_BLACK_NORMALIZES = ("'", "**", ":", "#", "\\", "lambda")


def _call_layout(text: str, width: int) -> list[str] | None:
    """black's layout of a plain call statement too long for ``width``,
    without running black: its arguments on one indented line when they fit
    there, else one per line with a trailing comma; None for any other
    statement, or an argument too long for a line of its own (black splits
    that further). The same as black's on every such call of the 0.5.23,
    0.5.8 and 0.4.6 scans (tests/test_emit.py checks it against black)."""
    match = _CALL.match(text)
    if match is None or any(c in text for c in _BLACK_NORMALIZES):
        return None
    args = _arguments(match.group(2))
    if args is None:
        return None
    joined = ", ".join(args)
    if 4 + len(joined) <= width:
        return [match.group(1) + "(", "    " + joined, ")"]
    if all(4 + len(a) + 1 <= width for a in args):
        return [match.group(1) + "("] + ["    " + a + "," for a in args] + [")"]
    return None


def _arguments(body: str) -> list[str] | None:
    """The top-level comma-separated parts of a call's arguments; None when
    its brackets or strings do not balance (the call is not the whole statement)."""
    parts, depth, start, quote, i = [], 0, 0, "", 0
    while i < len(body):
        c = body[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth < 0:
                return None
        elif c == "," and depth == 0:
            parts.append(body[start:i].strip())
            start = i + 1
        i += 1
    if depth or quote:
        return None
    parts.append(body[start:].strip())
    return parts if all(parts) else None


def block(text: str) -> str:
    """Top-level code: as given when every line fits (blank lines put as
    black puts them: two before a top-level definition, one before a
    method), else black's layout."""
    if any(len(line) > LINE_LENGTH for line in text.split("\n")):
        return _black(text, LINE_LENGTH)
    out: list[str] = []
    for line in text.strip("\n").split("\n"):
        blanks = 2 if line.startswith(("def ", "class ")) else 1 if line.startswith("    def ") else 0
        if blanks and out:
            while out and out[-1] == "":
                out.pop()
            out += [""] * blanks
        out.append(line)
    return "\n".join(out) + "\n"


@contextmanager
def kept_in(directory: Path | None) -> Iterator[None]:
    """Statements black lays out inside this block are kept under ``directory``."""
    token = _KEPT.set(directory)
    try:
        yield
    finally:
        _KEPT.reset(token)


def _black(text: str, width: int) -> str:
    directory = _KEPT.get()
    if directory is None:
        return _run_black(text, width)
    if not _BLACK_VERSION:
        from importlib.metadata import version

        _BLACK_VERSION.append(version("black"))
    key = hashlib.sha256(f"{_BLACK_VERSION[0]}\0{width}\0{text}".encode()).hexdigest()
    return kept_on_disk(directory / key[:2] / key, lambda: _run_black(text, width),
                        lambda data: data.decode("utf-8"), lambda formatted: formatted)


def _run_black(text: str, width: int) -> str:
    import black  # only for what does not fit a line: most runs never need it

    mode = _MODE.setdefault(width, black.Mode(line_length=width))
    try:
        return black.format_str(text + "\n", mode=mode)
    except black.InvalidInput as exc:  # a bug in astgen, never in the input
        raise ValueError(f"generated code is not valid Python: {exc}") from None
