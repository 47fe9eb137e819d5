"""Symbolic expressions over the model config (``mc``) and schedule (``sc``).

The bottom of the pipeline: every shape, guard and layer count that astgen
derives is an :class:`Expr`. Expressions are immutable and hashable, and this
module can

* build them (:func:`const`, :func:`name`, the operator helpers),
* simplify them (:func:`simplify`) without changing their value,
* evaluate them against concrete values (:func:`evaluate`) with a small
  interpreter of its own, never ``eval``,
* print them as Python source (:func:`to_source`) and read that source back
  (:func:`parse`) with the ``ast`` module (parsing only, nothing is run).

``Unknown`` marks a value the tracer could not resolve; it survives every
operation so that the place it came from can be reported.

The package keeps its parts apart: ``nodes`` (the expression classes),
``traverse``, ``evaluate``, ``simplify``, ``printer`` and ``parser``; this
module is their facade (``from astgen import expr as E``; ``E.simplify``).
"""

from __future__ import annotations

from astgen.expr.evaluate import (  # noqa: F401 (the facade)
    evaluate,
)
from astgen.expr.nodes import (  # noqa: F401 (the facade)
    BIN_OPS,
    CMP_OPS,
    FALSE,
    FUNCS,
    LIST_FUNCS,
    NONE,
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
    MissingKey,
    Name,
    Scalar,
    SumOver,
    Tuple,
    UnaryOp,
    Unknown,
    attr_path,
    conjuncts,
    const,
    name,
    neg,
    remembered,
)
from astgen.expr.parser import (  # noqa: F401 (the facade)
    ParseError,
    parse,
)
from astgen.expr.printer import (  # noqa: F401 (the facade)
    PREC,  # noqa: F401 (operator precedences, for printers of their own)
    Printer,
    to_source,
)
from astgen.expr.simplify import (  # noqa: F401 (the facade)
    and_,
    is_bool,
    not_,
    or_,
    simplify,
    simplify_condition,
    simplify_node,
)
from astgen.expr.traverse import (  # noqa: F401 (the facade)
    config_keys,
    facts,
    free_attrs,
    free_names,
    given,
    names_read,
    rebuild,
    replace_all,
    size,
    substitute,
    sum_as_add,
    unknowns,
    walk,
)
