"""Evaluation against concrete values with an interpreter of its own (never ``eval``)."""

from __future__ import annotations

from typing import Any, Mapping

from astgen.expr.nodes import (
    BIN_OPS,
    CMP_OPS,
    FUNCS,
    Attr,
    BinOp,
    BoolOp,
    Call,
    Compare,
    Const,
    CountIf,
    EvalError,
    Expr,
    GetAttr,
    HasAttr,
    IfExp,
    Index,
    MissingKey,
    Name,
    SumOver,
    Tuple,
    UnaryOp,
    Unknown,
    _is_number,
)
from astgen.expr.traverse import _dotted

# evaluation (our own interpreter; never eval)

_MISSING = object()


def _lookup(obj: Any, key: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key, _MISSING)
    return getattr(obj, key, _MISSING)


def evaluate(e: Expr, env: Mapping[str, Any]) -> Any:
    """Evaluate ``e`` with free names bound by ``env``.

    Config objects may be mappings (a parsed ``config.json``) or objects
    with attributes. Raises :class:`EvalError` on anything undefined.
    """
    return _Evaluator(env).run(e)


class _Evaluator:
    def __init__(self, env: Mapping[str, Any]) -> None:
        self.env = dict(env)

    def run(self, e: Expr) -> Any:
        method = getattr(self, "_" + type(e).__name__)
        return method(e)

    def _Const(self, e: Const) -> Any:
        return e.value

    def _Name(self, e: Name) -> Any:
        if e.id not in self.env:
            raise EvalError(f"unbound name {e.id!r}")
        return self.env[e.id]

    def _Attr(self, e: Attr) -> Any:
        v = _lookup(self.run(e.obj), e.name)
        if v is _MISSING:
            raise MissingKey(_dotted(e) or e.name)
        return v

    def _GetAttr(self, e: GetAttr) -> Any:
        v = _lookup(self.run(e.obj), e.name)
        return self.run(e.default) if v is _MISSING else v

    def _HasAttr(self, e: HasAttr) -> Any:
        return _lookup(self.run(e.obj), e.name) is not _MISSING

    def _BinOp(self, e: BinOp) -> Any:
        a, b = self.run(e.left), self.run(e.right)
        if e.op == "**" and _is_number(b) and abs(b) > 64:
            raise EvalError("exponent too large")
        try:
            return BIN_OPS[e.op](a, b)
        except (TypeError, ZeroDivisionError, OverflowError, ValueError) as exc:
            raise EvalError(f"{a!r} {e.op} {b!r}: {exc}") from None

    def _UnaryOp(self, e: UnaryOp) -> Any:
        v = self.run(e.operand)
        if e.op == "not":
            return not v
        try:
            return -v
        except TypeError as exc:
            raise EvalError(str(exc)) from None

    def _Compare(self, e: Compare) -> Any:
        a, b = self.run(e.left), self.run(e.right)
        try:
            return CMP_OPS[e.op](a, b)
        except TypeError as exc:
            raise EvalError(f"{a!r} {e.op} {b!r}: {exc}") from None

    def _BoolOp(self, e: BoolOp) -> Any:
        a = self.run(e.left)
        if e.op == "and":
            return self.run(e.right) if a else a
        return a if a else self.run(e.right)

    def _IfExp(self, e: IfExp) -> Any:
        return self.run(e.body) if self.run(e.test) else self.run(e.orelse)

    def _Call(self, e: Call) -> Any:
        if e.func not in FUNCS:
            raise EvalError(f"function {e.func!r} is not allowed")
        args = [self.run(a) for a in e.args]
        try:
            return FUNCS[e.func](*args)
        except (TypeError, ValueError, OverflowError) as exc:
            raise EvalError(f"{e.func}{tuple(args)!r}: {exc}") from None

    def _Tuple(self, e: Tuple) -> Any:
        return tuple(self.run(x) for x in e.items)

    def _Index(self, e: Index) -> Any:
        container, i = self.run(e.obj), self.run(e.index)
        if isinstance(container, Mapping):
            if i not in container:
                raise MissingKey(f"{_dotted(e.obj) or 'value'}[{i!r}]")
            return container[i]
        if isinstance(container, (list, tuple, str)) and type(i) is int:
            if not -len(container) <= i < len(container):
                raise EvalError(f"index {i} out of range for a list of {len(container)}")
            return container[i]
        raise EvalError(f"cannot index {type(container).__name__} with {i!r}")

    def _SumOver(self, e: SumOver) -> Any:
        return sum(self._over_range(e.var, e.n, e.body))

    def _CountIf(self, e: CountIf) -> Any:
        return sum(1 for hit in self._over_range(e.var, e.n, e.pred) if hit)

    def _over_range(self, var: str, n_expr: Expr, body: Expr) -> list:
        """``body`` for ``var`` in ``range(n)``, ``var`` restored after."""
        n = self.run(n_expr)
        if not isinstance(n, int) or n > 1_000_000:
            raise EvalError(f"range bound {n!r} is not a small int")
        saved = self.env.get(var, _MISSING)
        try:
            values = []
            for i in range(n):
                self.env[var] = i
                values.append(self.run(body))
            return values
        finally:
            if saved is _MISSING:
                self.env.pop(var, None)
            else:
                self.env[var] = saved

    def _Unknown(self, e: Unknown) -> Any:
        raise EvalError(f"unresolved value: {e.why}")
