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
- ``statements``: blocks, ``if``/``match`` (fork and merge of locals), loops, assignments, the IR builder;
- ``expressions``: literals, attributes, operators, containers; values as guards;
- ``calls``: functions, methods, rules, constructors;
- ``names``: locals, globals, imports across files;
- ``builtins``: the Python and torch callables it evaluates;
- ``config``: the config model (how a read of ``mc`` resolves);
- ``classes``: the class model (MROs, lookups, construction);
- ``objects`` and ``common``: the tracer's own values and helpers.
"""

from astgen.trace.config import config_class
from astgen.trace.tracer import Tracer

__all__ = ["Tracer", "config_class"]
