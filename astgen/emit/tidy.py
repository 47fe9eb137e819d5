"""Readable forms of expressions, for printing the emitted code only.

The operator table (``# astgen-op``) keeps the expressions as the pipeline
derived them; the code above it prints the same values in the forms an
engineer would write: ``x // 1`` and ``x * 1`` are ``x``, ``sum((a, b))`` is
``a + b``, ``max(1, 4)`` is ``4``, a test whether a value that cannot be
None is None is decided, ``c if t else c`` is ``c``, and a condition keeps
only what decides its truth (``x and False`` is ``False``).

Every rewrite keeps the value for configs whose sizes are integers (what a
Hugging Face config holds): ``x // 1 == x`` needs an int, nothing else does.
"""

from __future__ import annotations

from astgen import expr as E

# calls whose result is never None (they return a number or raise)
_NUMERIC_CALLS = frozenset({"max", "min", "int", "float", "abs", "len", "bool", "ceil", "sum"})


_TIDY: dict[E.Expr, E.Expr] = {}
_TIDY_CONDITION: dict[E.Expr, E.Expr] = {}


def tidy(e: E.Expr) -> E.Expr:
    """``e`` in its simplest equal form (its value where it is a value)."""
    return E.remembered(_TIDY, _tidy, e)


def _tidy(e: E.Expr) -> E.Expr:
    kids = [_tidy_child(e, i, c) for i, c in enumerate(e.children())]
    node = E.rebuild(e, kids) if kids else e
    node = E.simplify_node(node)
    rule = _RULES.get(type(node))
    return rule(node) if rule else node


def tidy_condition(e: E.Expr) -> E.Expr:
    """``e`` read as a condition: only its truth matters."""
    return E.remembered(_TIDY_CONDITION, _tidy_condition, e)


def _tidy_condition(e: E.Expr) -> E.Expr:
    e = E.simplify_condition(tidy(e), simplified=True)
    if isinstance(e, E.Call) and e.func == "bool" and len(e.args) == 1:
        return tidy_condition(e.args[0])
    if isinstance(e, E.BoolOp):
        left, right = tidy_condition(e.left), tidy_condition(e.right)
        if e.op == "or":
            both = _either_case(left, right)
            if both is not None:
                return both
        if e.op == "and":
            settled = _settled(E.conjuncts(left) + E.conjuncts(right))
            if settled is not None:
                return tidy_condition(_all(settled))
        return E.simplify_condition(E.simplify_node(E.BoolOp(e.op, left, right)), simplified=True)
    if isinstance(e, E.UnaryOp) and e.op == "not":
        return E.simplify_condition(E.simplify_node(E.UnaryOp("not", tidy_condition(e.operand))), simplified=True)
    return e


def _either_case(left: E.Expr, right: E.Expr) -> E.Expr | None:
    """``A and c or A and not c`` is ``A``: the tests both sides share,
    when what is left of one side is the negation of what is left of the other."""
    a, b = E.conjuncts(left), E.conjuncts(right)
    common = [c for c in a if c in b]
    rest_a, rest_b = [c for c in a if c not in common], [c for c in b if c not in common]
    if not common or not rest_a or not rest_b:
        return None
    for one, other in ((rest_a, rest_b), (rest_b, rest_a)):
        if len(other) == 1 and tidy_condition(E.UnaryOp("not", _all(one))) == other[0]:
            return tidy_condition(_all(common))
    return None


def _settled(conds: list[E.Expr]) -> list[E.Expr] | None:
    """The conjuncts without the tests another one settles: ``x == "b"``
    makes ``x != "a"`` and ``x not in ("a", "c")`` true (an ``elif``'s
    guard: ``t != "a" and t == "b"``, bailing_moe_v3.py:169-178), and a test
    repeated (two reads of one key named alike: ``n is not None and n is not
    None and ...``); None when none is."""
    equal = {c.left: c.right for c in conds if isinstance(c, E.Compare) and c.op == "==" and isinstance(c.right, E.Const)}

    def settled(c: E.Expr) -> bool:
        if not isinstance(c, E.Compare) or c.left not in equal:
            return False
        value = equal[c.left]
        if c.op == "!=" and isinstance(c.right, E.Const):
            return c.right.value != value.value  # as Python compares them: 1 == True
        if c.op == "not in" and isinstance(c.right, E.Tuple) and all(isinstance(i, E.Const) for i in c.right.items):
            return value.value not in [i.value for i in c.right.items]
        return False

    kept = [c for i, c in enumerate(conds) if not settled(c) and c not in conds[:i]]
    return kept if len(kept) < len(conds) else None


def _all(conds: list[E.Expr]) -> E.Expr:
    out = conds[0]
    for c in conds[1:]:
        out = E.BoolOp("and", out, c)
    return out


def _tidy_child(parent: E.Expr, index: int, child: E.Expr) -> E.Expr:
    """Children read as conditions (an if-expression's test, a count's
    predicate) are tidied as conditions."""
    if isinstance(parent, E.IfExp) and index == 0:
        return tidy_condition(child)
    if isinstance(parent, E.CountIf) and index == 1:  # children: (n, pred)
        return tidy_condition(child)
    return tidy(child)


def never_none(e: E.Expr) -> bool:
    """``e`` evaluates to a value other than None, or raises."""
    if isinstance(e, E.Const):
        return e.value is not None
    if isinstance(e, (E.BinOp, E.UnaryOp, E.Compare, E.HasAttr, E.CountIf, E.SumOver)):
        return True
    if isinstance(e, E.Call):
        return e.func in _NUMERIC_CALLS
    if isinstance(e, E.BoolOp):  # `a or b` is a (truthy) or b; `a and b` is a (falsy) or b
        return never_none(e.right) and (e.op == "or" or never_none(e.left))
    if isinstance(e, E.IfExp):
        return never_none(e.body) and never_none(e.orelse)
    return False


def _is_one(e: E.Expr) -> bool:
    return isinstance(e, E.Const) and type(e.value) is int and e.value == 1


def _is_zero(e: E.Expr) -> bool:
    return isinstance(e, E.Const) and type(e.value) is int and e.value == 0


def _binop(e: E.BinOp) -> E.Expr:
    if e.op == "*" and _is_one(e.right):
        return e.left
    if e.op == "//" and _is_one(e.right) and not _maybe_float(e.left):
        return e.left
    if e.op == "*" and _is_one(e.left):
        return e.right
    if e.op in ("+", "-") and _is_zero(e.right):
        return e.left
    if e.op == "+" and _is_zero(e.left):
        return e.right
    return e


def _maybe_float(e: E.Expr) -> bool:
    """``e`` may be a float: a true division, a power, a float literal or call."""
    return any((isinstance(n, E.BinOp) and n.op in ("/", "**"))
               or (isinstance(n, E.Const) and type(n.value) is float)
               or (isinstance(n, E.Call) and n.func == "float") for n in E.walk(e))


def _call(e: E.Call) -> E.Expr:
    added = E.sum_as_add(e)
    if added is not None:
        return tidy(added)
    if e.func == "max" and len(e.args) == 2:  # max(1, c) with a constant c >= 1
        for a, b in (e.args, e.args[::-1]):
            if isinstance(a, E.Const) and isinstance(b, E.Const) and _number(a) and _number(b):
                return a if a.value >= b.value else b
    return e


def _number(c: E.Const) -> bool:
    return type(c.value) in (int, float)


def _compare(e: E.Compare) -> E.Expr:
    if e.op in ("is", "is not") and e.right == E.NONE and never_none(e.left):
        return E.Const(e.op == "is not")
    return e


def _ifexp(e: E.IfExp) -> E.Expr:
    test = e.test
    if isinstance(test, E.Const):
        return e.body if test.value else e.orelse
    if e.body == e.orelse:
        return e.body
    if (e.body, e.orelse) in ((E.TRUE, E.FALSE), (E.FALSE, E.TRUE)) and E.is_bool(test):
        # `True if layer_id in moe_layers_idx else False` (step3_vl.py:333): the test is a bool
        return test if e.body == E.TRUE else tidy(E.UnaryOp("not", test))
    if isinstance(test, E.HasAttr) and e.body == E.Attr(test.obj, test.name) and isinstance(e.orelse, E.Const):
        return E.GetAttr(test.obj, test.name, e.orelse)  # `x.k if hasattr(x, "k") else 0`: what getattr does
    if isinstance(test, E.Compare) and test.op == "is" and test.right == E.NONE:
        value = test.left
        # `Y if (X or Y) is None else (X or Y)`: None only when Y is None
        if e.orelse == value and isinstance(value, E.BoolOp) and value.op == "or" and value.right == e.body:
            return value
        if e.body == E.NONE and e.orelse == value:  # `None if v is None else v`
            return value
    return e


def _boolop(e: E.BoolOp) -> E.Expr:
    """``mc.head_dim or hidden // heads``: a config key read only to fall
    back when it is falsy reads as falsy where the checkpoint leaves it out
    (``getattr(mc, "head_dim", None) or ...``), as a config class that
    declares the key with a None default answers (bailing_moe.py:536 on
    Ling-plus, whose config.json has no head_dim; LLMSim's config has only
    the JSON's keys). And ``x == "a" or x == "b"`` is ``x in ("a", "b")``."""
    left = e.left
    if e.op == "or" and isinstance(left, E.Attr) and _is_config_read(left.obj):
        return E.BoolOp("or", E.GetAttr(left.obj, left.name, E.NONE), e.right)
    return _membership(e)


# `x == a or x == b` / `x != a and x != b`, and the membership test they make
_MEMBERSHIP = {"or": ("==", "in"), "and": ("!=", "not in")}


def _membership(e: E.BoolOp) -> E.Expr:
    """Tests of one value against constants joined by ``or`` (``==``) or
    ``and`` (``!=``) as one ``in`` (``not in``) test of a tuple, as sglang
    writes them (``_hf_arch(config) in ("DeepseekV3ForCausalLM", ...)``,
    configs/model_config.py:191-212; the tracer spells a tuple's items
    out). Each side is a bool, so the value is the same; the value tested
    is computed once instead of once per constant."""
    one, many = _MEMBERSHIP[e.op]

    def against(x: E.Expr) -> tuple[E.Expr, tuple[E.Expr, ...]] | None:
        if isinstance(x, E.Compare) and x.op == one and isinstance(x.right, E.Const):
            return x.left, (x.right,)
        if isinstance(x, E.Compare) and x.op == many and isinstance(x.right, E.Tuple) \
                and all(isinstance(i, E.Const) for i in x.right.items):
            return x.left, x.right.items
        return None

    left, right = against(_last_operand(e.left, e.op)), against(e.right)
    if left is None or right is None or left[0] != right[0]:
        return e
    joined = E.Compare(many, left[0], E.Tuple(left[1] + tuple(i for i in right[1] if i not in left[1])))
    return _with_last_operand(e.left, e.op, joined)


def _last_operand(e: E.Expr, op: str) -> E.Expr:
    """The rightmost operand of a left-nested chain of ``op``."""
    return e.right if isinstance(e, E.BoolOp) and e.op == op else e


def _with_last_operand(e: E.Expr, op: str, last: E.Expr) -> E.Expr:
    return E.BoolOp(op, e.left, last) if isinstance(e, E.BoolOp) and e.op == op else last


def _is_config_read(e: E.Expr) -> bool:
    return e == E.Name("mc") or (isinstance(e, E.Call) and e.func == "sub_config")


_RULES = {E.BinOp: _binop, E.Call: _call, E.Compare: _compare, E.IfExp: _ifexp, E.BoolOp: _boolop}


def given(e: E.Expr, fact: E.Expr) -> E.Expr:
    """The value ``e`` where the condition ``fact`` holds: the choices
    (``a if test else b``) and layer predicates it settles are decided. Only
    whole conditions are rewritten: a value is never replaced by its truth
    (``mc.n`` true does not make ``i < mc.n`` into ``i < True``)."""
    if fact == E.TRUE or not any(isinstance(x, (E.IfExp, E.CountIf)) for x in E.walk(e)):
        return e
    return tidy(_given(e, E.facts(fact)))


def _decided(cond: E.Expr, known: dict[E.Expr, E.Expr]) -> E.Expr:
    """A condition with its known parts (through and, or, not) decided."""
    if cond in known:
        return known[cond]
    if isinstance(cond, E.BoolOp):
        return E.BoolOp(cond.op, _decided(cond.left, known), _decided(cond.right, known))
    if isinstance(cond, E.UnaryOp) and cond.op == "not":
        return E.UnaryOp("not", _decided(cond.operand, known))
    return cond


def _given(e: E.Expr, known: dict[E.Expr, E.Expr]) -> E.Expr:
    if isinstance(e, E.IfExp):
        test = tidy_condition(_decided(e.test, known))
        if isinstance(test, E.Const):
            return _given(e.body if test.value else e.orelse, known)
        return E.IfExp(test, _given(e.body, known), _given(e.orelse, known))
    if isinstance(e, E.CountIf):
        return E.CountIf(e.var, _given(e.n, known), tidy_condition(_decided(e.pred, known)))
    kids = [_given(c, known) for c in e.children()]
    return E.rebuild(e, kids) if kids else e


def coalesced(e: E.Expr) -> E.Expr:
    """``e`` as the code that computes it is printed, after its parts are
    named: ``d if v is None else v`` (and ``v if v is not None else d``) is
    the package's ``coalesce(v, d)`` where ``d`` cannot raise (a local, a
    constant, or ``+ - *`` and choices of them): computing ``d`` when ``v``
    is not None then changes nothing. A fallback that reads the config or
    divides stays behind its test, where it is computed only when needed
    (``hidden // heads if head_dim is None else head_dim``)."""
    return E.remembered(_COALESCED, _coalesced, e)


_COALESCED: dict[E.Expr, E.Expr] = {}


def _coalesced(e: E.Expr) -> E.Expr:
    if not any(isinstance(x, E.IfExp) for x in E.walk(e)):
        return e
    e = E.rebuild(e, [coalesced(c) for c in e.children()])
    if isinstance(e, E.IfExp) and isinstance(e.test, E.Compare) and e.test.right == E.NONE:
        value = e.test.left
        if e.test.op == "is" and e.orelse == value and _cannot_raise(e.body):
            return E.Call("coalesce", (value, e.body))
        if e.test.op == "is not" and e.body == value and _cannot_raise(e.orelse):
            return E.Call("coalesce", (value, e.orelse))
    return e


def _cannot_raise(e: E.Expr) -> bool:
    if isinstance(e, (E.Name, E.Const)):
        return True
    if isinstance(e, E.BinOp) and e.op in ("+", "-", "*"):
        return _cannot_raise(e.left) and _cannot_raise(e.right)
    if isinstance(e, E.IfExp):
        return _cannot_raise(e.test) and _cannot_raise(e.body) and _cannot_raise(e.orelse)
    if isinstance(e, E.Compare) and e.op in ("is", "is not", "==", "!="):
        return _cannot_raise(e.left) and _cannot_raise(e.right)
    if isinstance(e, E.Call) and e.func == "coalesce":
        return all(_cannot_raise(c) for c in e.args)
    return False
