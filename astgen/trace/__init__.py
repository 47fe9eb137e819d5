"""Stage 3, trace: a small symbolic interpreter of sglang ``__init__`` bodies.

It walks the constructor of an entry class with ``config`` bound to the
symbol ``mc``, follows ``super().__init__``, inheritance and imports across
files, methods on ``self``, lambdas given to ``make_layers`` and
``ModuleList`` comprehensions, and records each module it sees constructed
as an IR node (:mod:`astgen.ir`). Nothing is imported or executed: values
are :mod:`astgen.expr` expressions or the value classes of
:mod:`astgen.values` and :mod:`astgen.trace.objects`.

Conditions on config values or parallel sizes become guards; conditions on
anything the rules do not describe (environment switches, server args) take
sglang's default path (treated as off) and leave a note.

The package keeps the interpreter's parts apart, each a mixin of
:class:`Tracer` in a module of its own:

- ``tracer``: the entry point (``trace_entry``), diagnostics, the state;
- ``frame``: a frame and its state (what the branches of an ``if`` start from, how their ends merge);
- ``statements``: blocks, ``if``/``match`` under guards, loops, assignments, the IR builder;
- ``expressions``: literals, attributes, operators, containers; values as guards;
- ``calls``: functions, methods, rules, constructors;
- ``names``: locals, globals, imports across files;
- ``builtins``: the Python and torch callables it evaluates;
- ``config``: the config model (how a read of ``mc`` resolves);
- ``classes``: the class model (MROs, lookups, construction);
- ``objects`` and ``common``: the tracer's own values and helpers.
"""

import difflib

from astgen.rules import Rules, RulesError
from astgen.trace.builtins import builtin_names
from astgen.trace.config import config_class
from astgen.trace.tracer import Tracer


def check_rules(rules: Rules) -> None:
    """Refuse rules that name a builtin the tracer does not implement
    (``builtin:X`` in [functions], the [builtins] of a source family's
    rules): a typo there is an error, not a value silently left unknown."""
    known = builtin_names()
    named = [(f"rules/parallel.toml [functions] {f.name}", f.target) for f in rules.functions.values()
             if f.kind == "builtin"]
    for flavour, doc in sorted(rules.flavours.items()):
        named += [(f"rules/{flavour}.toml [builtins] {k}", v) for k, v in doc.get("builtins", {}).items()]
        named += [(f"rules/{flavour}.toml [functions] {k}", str(spec.get("value", ""))[len("builtin:"):])
                  for k, spec in doc.get("functions", {}).items()
                  if str(spec.get("value", "")).startswith("builtin:")]
    for where, name in named:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            raise RulesError(f"{where}: no tracer builtin {name!r}" + (f" (did you mean {close[0]!r}?)" if close
                             else f"; the builtins: {', '.join(sorted(known))}"))

__all__ = ["Tracer", "config_class"]
