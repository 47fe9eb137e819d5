"""Printing expressions as Python source."""

from __future__ import annotations

from astgen.expr.nodes import (
    Attr,
    BinOp,
    BoolOp,
    Call,
    Compare,
    Const,
    CountIf,
    Expr,
    GetAttr,
    HasAttr,
    IfExp,
    Index,
    Name,
    SumOver,
    Tuple,
    UnaryOp,
    Unknown,
    _is_number,
    remembered,
)

# printing as Python source

PREC = {
    "ifexp": 1,
    "or": 2,
    "and": 3,
    "not": 4,
    "cmp": 5,
    "+": 10,
    "-": 10,
    "*": 11,
    "/": 11,
    "//": 11,
    "%": 11,
    "neg": 12,
    "**": 13,
    "atom": 20,
}


_PRINTED: dict[Expr, str] = {}


def to_source(e: Expr) -> str:
    """Python source of ``e``; ``parse(to_source(e)) == e``. Each expression
    is printed once (tables and reports print the same ones many times)."""
    return remembered(_PRINTED, lambda x: Printer().show(x)[0], e)


class Printer:
    def show(self, e: Expr) -> tuple[str, int]:
        return getattr(self, "_" + type(e).__name__)(e)

    def wrap(self, e: Expr, min_prec: int) -> str:
        text, prec = self.show(e)
        return f"({text})" if prec < min_prec else text

    def _Const(self, e: Const) -> tuple[str, int]:
        text = repr(e.value)
        if _is_number(e.value) and e.value < 0:
            return text, PREC["neg"]
        return text, PREC["atom"]

    def _Name(self, e: Name) -> tuple[str, int]:
        return e.id, PREC["atom"]

    def _Attr(self, e: Attr) -> tuple[str, int]:
        return f"{self.wrap(e.obj, PREC['atom'])}.{e.name}", PREC["atom"]

    def _GetAttr(self, e: GetAttr) -> tuple[str, int]:
        obj, dflt = self.show(e.obj)[0], self.show(e.default)[0]
        return f"getattr({obj}, {e.name!r}, {dflt})", PREC["atom"]

    def _HasAttr(self, e: HasAttr) -> tuple[str, int]:
        return f"hasattr({self.show(e.obj)[0]}, {e.name!r})", PREC["atom"]

    def _BinOp(self, e: BinOp) -> tuple[str, int]:
        p = PREC[e.op]
        if e.op == "**":  # right-associative; unary minus binds looser on the left
            left = self.wrap(e.left, p + 1)
            right = self.wrap(e.right, PREC["neg"])
        else:
            left = self.wrap(e.left, p)
            right = self.wrap(e.right, p + 1)
        return f"{left} {e.op} {right}", p

    def _UnaryOp(self, e: UnaryOp) -> tuple[str, int]:
        if e.op == "not":
            return f"not {self.wrap(e.operand, PREC['not'])}", PREC["not"]
        inner = self.wrap(e.operand, PREC["neg"])
        if isinstance(e.operand, Const) or inner.startswith("-"):
            inner = f"({self.show(e.operand)[0]})"
        return f"-{inner}", PREC["neg"]

    def _Compare(self, e: Compare) -> tuple[str, int]:
        p = PREC["cmp"]
        return f"{self.wrap(e.left, p + 1)} {e.op} {self.wrap(e.right, p + 1)}", p

    def _BoolOp(self, e: BoolOp) -> tuple[str, int]:
        p = PREC[e.op]
        return f"{self.wrap(e.left, p)} {e.op} {self.wrap(e.right, p + 1)}", p

    def _IfExp(self, e: IfExp) -> tuple[str, int]:
        p = PREC["ifexp"]
        body = self.wrap(e.body, p + 1)
        test = self.wrap(e.test, p + 1)
        orelse = self.wrap(e.orelse, p)
        return f"{body} if {test} else {orelse}", p

    def _Call(self, e: Call) -> tuple[str, int]:
        args = ", ".join(self.show(a)[0] for a in e.args)
        return f"{e.func}({args})", PREC["atom"]

    def _Tuple(self, e: Tuple) -> tuple[str, int]:
        items = [self.show(a)[0] for a in e.items]
        inner = items[0] + "," if len(items) == 1 else ", ".join(items)
        return f"({inner})", PREC["atom"]

    def _CountIf(self, e: CountIf) -> tuple[str, int]:
        n, pred = self.show(e.n)[0], self.wrap(e.pred, PREC["or"])
        return f"sum(1 for {e.var} in range({n}) if {pred})", PREC["atom"]

    def _SumOver(self, e: SumOver) -> tuple[str, int]:
        n, body = self.show(e.n)[0], self.wrap(e.body, PREC["or"])
        return f"sum({body} for {e.var} in range({n}))", PREC["atom"]

    def _Index(self, e: Index) -> tuple[str, int]:
        return f"{self.wrap(e.obj, PREC['atom'])}[{self.show(e.index)[0]}]", PREC["atom"]

    def _Unknown(self, e: Unknown) -> tuple[str, int]:
        rest = f", {e.given_config!r}, {e.call!r}" if e.call else ", True" if e.given_config else ""
        return f"__unknown__({e.what!r}{rest})", PREC["atom"]
