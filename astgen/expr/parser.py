"""Reading printed source back (``ast.parse`` only; nothing is executed)."""

from __future__ import annotations

import ast

from astgen.expr.nodes import (
    FUNCS,
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
)

# reading printed source back (ast.parse only; nothing is executed)


class ParseError(ValueError):
    pass


def parse(text: str) -> Expr:
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ParseError(f"not an expression: {text!r}") from exc
    return _from_ast(tree.body)


_AST_BIN = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
}
_AST_CMP = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
}


def _from_ast(node: ast.AST) -> Expr:
    if isinstance(node, ast.Constant):
        return Const(node.value)
    if isinstance(node, ast.Name):
        return Name(node.id)
    if isinstance(node, ast.Attribute):
        return Attr(_from_ast(node.value), node.attr)
    if isinstance(node, ast.Subscript) and not isinstance(node.slice, ast.Slice):
        return Index(_from_ast(node.value), _from_ast(node.slice))
    if isinstance(node, ast.BinOp):
        return BinOp(_AST_BIN[type(node.op)], _from_ast(node.left), _from_ast(node.right))
    if isinstance(node, ast.UnaryOp):
        if isinstance(node.op, ast.Not):
            return UnaryOp("not", _from_ast(node.operand))
        if isinstance(node.op, ast.USub):
            inner = node.operand
            if isinstance(inner, ast.Constant) and _is_number(inner.value):
                return Const(-inner.value)
            return UnaryOp("-", _from_ast(inner))
    if isinstance(node, ast.BoolOp):
        op = "and" if isinstance(node.op, ast.And) else "or"
        out = _from_ast(node.values[0])
        for v in node.values[1:]:
            out = BoolOp(op, out, _from_ast(v))
        return out
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        return Compare(
            _AST_CMP[type(node.ops[0])],
            _from_ast(node.left),
            _from_ast(node.comparators[0]),
        )
    if isinstance(node, ast.IfExp):
        return IfExp(_from_ast(node.test), _from_ast(node.body), _from_ast(node.orelse))
    if isinstance(node, ast.Tuple):
        return Tuple(tuple(_from_ast(x) for x in node.elts))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return _call_from_ast(node)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name) \
            and f"{node.func.value.id}.{node.func.attr}" in FUNCS and not node.keywords:  # str.lower(x)
        return Call(f"{node.func.value.id}.{node.func.attr}", tuple(_from_ast(a) for a in node.args))
    raise ParseError(f"unsupported construct: {ast.dump(node)[:80]}")


def _call_from_ast(node: ast.Call) -> Expr:
    fn = node.func.id  # type: ignore[attr-defined]
    args = node.args
    if fn == "getattr" and len(args) == 3 and isinstance(args[1], ast.Constant):
        return GetAttr(_from_ast(args[0]), args[1].value, _from_ast(args[2]))
    if fn == "hasattr" and len(args) == 2 and isinstance(args[1], ast.Constant):
        return HasAttr(_from_ast(args[0]), args[1].value)
    if fn == "__unknown__" and len(args) in (1, 2, 3) and all(isinstance(a, ast.Constant) for a in args):
        return Unknown(*(a.value for a in args))
    if fn == "sum" and len(args) == 1 and isinstance(args[0], ast.GeneratorExp):
        return _countif_from_ast(args[0])
    if fn in FUNCS and not node.keywords:
        return Call(fn, tuple(_from_ast(a) for a in args))
    raise ParseError(f"unsupported call {fn!r}")


def _countif_from_ast(gen: ast.GeneratorExp) -> Expr:
    comp = gen.generators[0]
    rng = comp.iter
    ok = (
        len(gen.generators) == 1
        and isinstance(gen.elt, ast.Constant)
        and gen.elt.value == 1
        and isinstance(comp.target, ast.Name)
        and isinstance(rng, ast.Call)
        and isinstance(rng.func, ast.Name)
        and rng.func.id == "range"
        and len(rng.args) == 1
        and len(comp.ifs) == 1
    )
    summed = (len(gen.generators) == 1 and isinstance(comp.target, ast.Name) and not comp.ifs
              and isinstance(rng, ast.Call) and isinstance(rng.func, ast.Name) and rng.func.id == "range"
              and len(rng.args) == 1)
    if summed:  # sum(body for var in range(n))
        return SumOver(comp.target.id, _from_ast(rng.args[0]), _from_ast(gen.elt))  # type: ignore[union-attr]
    if not ok:
        raise ParseError("unsupported generator expression")
    return CountIf(comp.target.id, _from_ast(rng.args[0]), _from_ast(comp.ifs[0]))  # type: ignore[union-attr]
