"""Simplification: rewrites that keep the value wherever the input has one."""

from __future__ import annotations

import math
from typing import Any, Callable

from astgen.expr.evaluate import evaluate
from astgen.expr.nodes import (
    FALSE,
    TRUE,
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
    UnaryOp,
    _is_number,
    remembered,
)
from astgen.expr.traverse import free_names, rebuild

# simplification: rewrites that keep the value wherever the input has one


def simplify(e: Expr) -> Expr:
    """``e`` rewritten bottom-up into its simplest equal form. A pure function
    of an immutable value: each result is kept (the tracer simplifies the
    same subtrees again and again as it builds bigger ones)."""
    done = _SIMPLIFIED.get(e)
    if done is not None:
        return done
    kids = [simplify(c) for c in e.children()]
    out = simplify_node(rebuild(e, kids) if kids else e)
    if len(_SIMPLIFIED) >= _KEPT:  # bounded: a long process (validate --all) starts afresh
        _SIMPLIFIED.clear()
    _SIMPLIFIED[e] = out
    return out


_SIMPLIFIED: dict[Expr, Expr] = {}
_KEPT = 500_000


def simplify_node(e: Expr) -> Expr:
    """:func:`simplify` of a node whose children are simplified already."""
    rule = _SIMPLIFIERS.get(type(e))
    return rule(e) if rule else e


def _fold(node: Expr) -> Expr | None:
    """Constant-fold a node whose children are all constants."""
    if not node.children() or not all(isinstance(c, Const) for c in node.children()):
        return None
    try:
        value = evaluate(node, {})
    except EvalError:
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**62:
            return None
        return Const(value)
    return None


def _is_int_const(e: Expr, v: int | None = None) -> bool:
    return (
        isinstance(e, Const)
        and type(e.value) is int
        and (v is None or e.value == v)
    )


def _simplify_binop(e: BinOp) -> Expr:
    folded = _fold(e)
    if folded is not None:
        return folded
    a, b = e.left, e.right
    if e.op == "*" and _is_int_const(a, 1) and _is_number_like(b):
        return b
    if e.op in ("*",) and _is_int_const(b, 1) and _is_number_like(a):
        return a
    if e.op == "+" and _is_int_const(a, 0) and _is_number_like(b):
        return b
    if e.op in ("+", "-") and _is_int_const(b, 0) and _is_number_like(a):
        return a
    if e.op == "+" and _is_int_const(a, 0) and _is_numeric_expr(b):
        return b
    if e.op in ("+", "-") and _is_int_const(b, 0) and _is_numeric_expr(a):
        return a
    if e.op == "*" and _is_int_const(a, 1) and _is_numeric_expr(b):
        return b
    if e.op in ("*", "//") and _is_int_const(b, 1) and _is_int_expr(a):
        return a
    if e.op == "*" and _is_int_const(b) and isinstance(a, BinOp) and a.op == "*":
        if _is_int_const(a.right):  # (x * 2) * 3 -> x * 6
            return simplify(BinOp("*", a.left, Const(a.right.value * b.value)))
    if e.op == "//" and _is_int_const(b) and b.value > 0:
        if isinstance(a, BinOp) and a.op == "//" and _is_int_const(a.right):
            if a.right.value > 0:  # (x // 2) // 3 -> x // 6 (floor is exact)
                return BinOp("//", a.left, Const(a.right.value * b.value))
    return e


def _is_numeric_expr(e: Expr) -> bool:
    """True when ``e`` is certainly a number (so ``0 + e == e`` and keeps type)."""
    if isinstance(e, Const):
        return _is_number(e.value)
    if isinstance(e, BinOp):
        return e.op not in ("+", "*") or (
            _is_numeric_expr(e.left) and _is_numeric_expr(e.right)
        )
    if isinstance(e, Call):
        return e.func in ("int", "float", "abs", "len", "ceil")
    if isinstance(e, CountIf):
        return True
    return False


def _is_number_like(e: Expr) -> bool:
    """Numeric, or a config read: config values in shapes are numbers, and
    ``x * 1``, ``x + 0`` are the identity on every number (floats included)."""
    if _is_numeric_expr(e):
        return True
    if isinstance(e, (Attr, GetAttr, Index)):
        return True
    if isinstance(e, BinOp):
        return _is_number_like(e.left) and _is_number_like(e.right)
    if isinstance(e, Call) and e.func in ("max", "min"):
        return all(_is_number_like(a) for a in e.args)
    return False


def _is_int_expr(e: Expr) -> bool:
    if isinstance(e, Const):
        return type(e.value) is int
    if isinstance(e, BinOp) and e.op in ("+", "-", "*", "//", "%"):
        return _is_int_expr(e.left) and _is_int_expr(e.right)
    if isinstance(e, Call):
        return e.func in ("int", "len", "ceil") or (
            e.func in ("max", "min") and all(_is_int_expr(a) for a in e.args)
        )
    return isinstance(e, CountIf)


def _truthiness(e: Expr) -> bool | None:
    return bool(e.value) if isinstance(e, Const) else None


def simplify_condition(e: Expr, simplified: bool = False) -> Expr:
    """``e`` read as a condition (an ``if`` test, a guard): only its truth
    matters, so ``x and False`` is False and ``None or y`` is ``y``, which
    :func:`simplify` (that keeps Python's values) may not assume.
    ``simplified``: ``e`` is a result of :func:`simplify` already. Once per
    expression: the flow and run stages read the same guards again and again."""
    return remembered(_CONDITIONS, _simplify_condition, e if simplified else simplify(e))


_CONDITIONS: dict[Expr, Expr] = {}


def _simplify_condition(e: Expr) -> Expr:
    if isinstance(e, Const):
        return TRUE if e.value else FALSE
    if isinstance(e, UnaryOp) and e.op == "not":
        inner = simplify_condition(e.operand, True)
        if isinstance(inner, UnaryOp) and inner.op == "not":
            return inner.operand
        return simplify(UnaryOp("not", inner)) if not isinstance(inner, Const) else Const(not inner.value)
    if isinstance(e, Compare) and e.op in ("==", "!=") and isinstance(e.right, Const) \
            and isinstance(e.left, IfExp) and isinstance(e.left.body, Const) and isinstance(e.left.orelse, Const) \
            and not _equal(e.left.body, e.left.orelse):
        # (A if c else B) == A  ->  c, for constants A != B (an enum member chosen by a condition)
        then_hit, else_hit = _equal(e.left.body, e.right), _equal(e.left.orelse, e.right)
        if e.op == "!=":
            then_hit, else_hit = not then_hit, not else_hit
        test = simplify_condition(e.left.test, True)
        if then_hit and not else_hit:
            return test
        if else_hit and not then_hit:
            return simplify_condition(UnaryOp("not", test))
        return TRUE if then_hit else FALSE
    if isinstance(e, BoolOp):
        left, right = simplify_condition(e.left, True), simplify_condition(e.right, True)
        absorbing, neutral = (FALSE, TRUE) if e.op == "and" else (TRUE, FALSE)
        if absorbing in (left, right):
            return absorbing
        if left == neutral:
            return right
        if right == neutral:
            return left
        return BoolOp(e.op, left, right)
    if isinstance(e, IfExp):
        test = simplify_condition(e.test, True)
        if isinstance(test, Const):
            return simplify_condition(e.body if test.value else e.orelse, True)
    return e


def _simplify_boolop(e: BoolOp) -> Expr:
    t = _truthiness(e.left)
    if t is None:
        if e.op == "and" and _truthiness(e.right) is True and _is_bool_expr(e.left):
            if e.right == TRUE:
                return e.left
        if e.op == "or" and e.right == FALSE and _is_bool_expr(e.left):
            return e.left
        return e
    if e.op == "and":
        return e.right if t else e.left
    return e.left if t else e.right


def is_bool(e: Expr) -> bool:
    """Whether ``e``'s value is a bool (a comparison, a negation, ``and`` of them)."""
    return _is_bool_expr(e)


def _is_bool_expr(e: Expr) -> bool:
    if isinstance(e, (Compare, HasAttr)):
        return True
    if isinstance(e, UnaryOp):
        return e.op == "not"
    if isinstance(e, BoolOp):
        return _is_bool_expr(e.left) and _is_bool_expr(e.right)
    if isinstance(e, Const):
        return isinstance(e.value, bool)
    return False


def _simplify_unary(e: UnaryOp) -> Expr:
    folded = _fold(e)
    if folded is not None:
        return folded
    if e.op == "not" and isinstance(e.operand, UnaryOp) and e.operand.op == "not":
        inner = e.operand.operand
        if _is_bool_expr(inner):
            return inner
    if e.op == "not" and isinstance(e.operand, Compare):
        flipped = _NEGATED_CMP.get(e.operand.op)
        if flipped and e.operand.op in ("is", "is not", "in", "not in", "==", "!="):
            return Compare(flipped, e.operand.left, e.operand.right)
    return e


_NEGATED_CMP = {
    "==": "!=",
    "!=": "==",
    "is": "is not",
    "is not": "is",
    "in": "not in",
    "not in": "in",
}


def _simplify_compare(e: Compare) -> Expr:
    folded = _fold(e)
    if folded is not None:
        return folded
    # a selector compared with a constant: `('a' if c else 'b') == 'a'` is c
    if e.op in ("==", "!=") and isinstance(e.right, Const) and isinstance(e.left, IfExp):
        sel = e.left
        if isinstance(sel.body, Const) and isinstance(sel.orelse, Const):
            hit_then, hit_else = _equal(sel.body, e.right), _equal(sel.orelse, e.right)
            if e.op == "!=":
                hit_then, hit_else = not hit_then, not hit_else
            if hit_then and hit_else:
                return TRUE
            test = sel.test if _is_bool_expr(sel.test) else Call("bool", (sel.test,))
            if hit_then:
                return test
            if hit_else:
                return simplify(not_(test))
            return FALSE
    return e


def _equal(a: Const, b: Const) -> bool:
    """Python's ``a == b`` of two constants (``0 == False``; Const's own
    equality keeps bools and ints apart, for hashing)."""
    try:
        return bool(a.value == b.value)
    except Exception:  # noqa: BLE001 - a comparison Python refuses is no equality
        return False


def _simplify_ifexp(e: IfExp) -> Expr:
    t = _truthiness(e.test)
    if t is not None:
        return e.body if t else e.orelse
    if e.body == e.orelse:
        return e.body
    return e


def _simplify_call(e: Call) -> Expr:
    folded = _fold(e)
    if folded is not None:
        return folded
    if e.func in ("max", "min") and len(e.args) == 2 and e.args[0] == e.args[1]:
        return e.args[0]
    if e.func == "int" and len(e.args) == 1 and _is_int_expr(e.args[0]):
        return e.args[0]
    return e


def _simplify_countif(e: CountIf) -> Expr:
    if e.var not in free_names(e.pred):
        t = _truthiness(e.pred)
        if t is True and _is_int_expr(e.n):
            return simplify(Call("max", (Const(0), e.n)))
        if t is False:
            return Const(0)
    return e


_SIMPLIFIERS: dict[type, Callable[[Any], Expr]] = {
    BinOp: _simplify_binop,
    BoolOp: _simplify_boolop,
    UnaryOp: _simplify_unary,
    Compare: _simplify_compare,
    IfExp: _simplify_ifexp,
    Call: _simplify_call,
    CountIf: _simplify_countif,
}


# boolean helpers that simplify what they build


def and_(a: Expr, b: Expr) -> Expr:
    return simplify(BoolOp("and", a, b))


def or_(a: Expr, b: Expr) -> Expr:
    return simplify(BoolOp("or", a, b))


def not_(a: Expr) -> Expr:
    return simplify(UnaryOp("not", a))
