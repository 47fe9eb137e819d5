"""Stage 6, emit (server arguments): each sglang server argument a module's
operators read, ``getattr(sc, "enable_dp_lm_head", False)``, becomes a
local that ``build_operators`` binds once, ``self.switch("enable_dp_lm_head")``:
an LLMSim schedule field of that name, else the module's value
(``SERVER_ARGS``), else the default sglang derives from the others, which
the package's helpers compute (rules/parallel.toml [switches])."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, replace

from astgen import expr as E
from astgen.emit.pysource import LINE_LENGTH, show
from astgen.lower.shapes import ArchShapes, Site
from astgen.rules import SWITCH, Rules


@dataclass(frozen=True)
class Switch:
    field: str  # sglang's name, also the schedule field that overrides it
    value: E.Expr  # a constant, or how sglang derives it from the others
    flag: str  # sglang's launch flag
    given: bool  # set by --server-args


def named_switches(archs: list[ArchShapes], rules: Rules) -> tuple[list[ArchShapes], list[Switch]]:
    """The entries with each server argument they read
    (``getattr(sc, "enable_dp_lm_head", False)``) reading a local that
    build_operators binds once (``self.switch("enable_dp_lm_head")``), and
    those switches: every one the entries, their helpers and the defaults
    sglang derives read."""
    derived = (rules.unbound or rules).derived  # rules text: `switch.X`
    known = set(rules.server_args.args) | set(rules.derived) | set(rules.given)
    # what the package's helpers read by name must be in SERVER_ARGS, declared by this tree or not
    known |= {x.name for a in archs for op in a.operators if op.site is not None for x in op.site.switches}
    known |= {y.name for d in derived.values() for y in E.walk(d) if isinstance(y, E.Attr) and y.obj == E.Name(SWITCH)}
    found: dict[E.Expr, E.Expr] = {}
    switches: dict[str, Switch] = {}
    seen: set[E.Expr] = set()  # operators share most of their subexpressions: each looked at once

    def visit(e: E.Expr) -> None:
        stack = [e]
        while stack:
            x = stack.pop()
            if x in seen or "sc" not in E.free_names(x):
                continue
            seen.add(x)
            stack.extend(x.children())
            if isinstance(x, E.GetAttr) and x.obj == E.Name("sc") and x.name in known and x not in found:
                found[x] = E.Name(x.name)  # bound once: build_operators' preamble
                arg = rules.server_args.args.get(x.name)
                flag = arg.flags[0] if arg is not None else "--" + x.name.replace("_", "-")
                switches[x.name] = Switch(x.name, x.default, flag, x.name in rules.given)
                stack.append(x.default)  # a default sglang derives from other switches
                stack += [rules.switch(y.name) for y in E.walk(derived.get(x.name, E.TRUE))  # ... as the
                          if isinstance(y, E.Attr) and y.obj == E.Name(SWITCH)]  # package computes it

    visit(rules.execution.prefill_chunk)  # every module runs its prefill in chunks
    for a in archs:
        visit(a.kv_cache)
        visit(a.kv_cache_per_gpu)
        for op in a.operators:
            for e in (op.m, op.k, op.n, op.batch, op.layers, op.guard):
                visit(e)
            for e in [e for _, e in op.site.args] + list(op.site.switches) if op.site is not None else ():
                visit(e)
    if not found:
        return archs, []
    # a derived default reads the other switches' locals
    switches = {k: replace(v, value=E.replace_all(v.value, found)) for k, v in switches.items()}

    found[rules.execution.prefill_chunk] = E.Name("chunk")  # the preamble's local

    done: dict[E.Expr, E.Expr] = {}  # operators share most of their expressions: each rewritten once

    def named(e: E.Expr) -> E.Expr:
        if "sc" not in E.free_names(e):  # every key found reads sc
            return e
        if e not in done:
            done[e] = E.replace_all(e, found)
        return done[e]

    def read(e: E.Expr) -> E.Expr:  # in a method of its own, at the parallel sizes of its sc
        return E.replace_all(e, {x: E.Call("self.switch", (E.Const(x.name), x.obj)) for x in found
                               if isinstance(x, E.GetAttr)})

    def site(s: Site | None) -> Site | None:
        return s and replace(s, args=tuple((k, named(v)) for k, v in s.args), guard=named(s.guard),
                             layers=named(s.layers))

    out = []
    for a in archs:
        ops = [replace(op, **{f: named(getattr(op, f)) for f in ("m", "k", "n", "batch", "layers", "guard")},
                       per_layer=(op.per_layer[0], named(op.per_layer[1])) if op.per_layer else None,
                       site=site(op.site))
               for op in a.operators]
        out.append(replace(a, operators=ops, kv_cache=read(a.kv_cache), kv_cache_per_gpu=read(a.kv_cache_per_gpu),
                           names={named(k): v for k, v in a.names.items()},
                           role_rows={named(k): v for k, v in a.role_rows.items()},
                           mla_absorbed=a.mla_absorbed and named(a.mla_absorbed)))
    fixed = [switches[k] for k in sorted(switches) if isinstance(switches[k].value, E.Const)]
    return out, fixed + [switches[k] for k in sorted(switches) if not isinstance(switches[k].value, E.Const)]


def switch_block(switches: list[Switch], rules: Rules) -> str:
    """``SERVER_ARGS``: the value of each server argument the module reads
    (the launch flag in the comment); those sglang derives, named after it."""
    if not switches:
        return ""
    who = rules.display
    lines = ["", "", f"# {who}'s server arguments the code tests (--server-args); a schedule field wins",
             "SERVER_ARGS = {"]
    for s in switches:
        if isinstance(s.value, E.Const):
            derived = s.field in rules.derived and rules.flavour == "sglang"  # another family's are plain defaults
            origin = "" if s.given else f" ({who}'s derived default)" if derived else f" ({who}'s default)" \
                if s.field in rules.server_args.args or s.field in rules.derived else " (not in this tree)"
            line = f"    {show(E.Const(s.field))}: {show(s.value)},  # {s.flag}{origin}"
            if len(line) > LINE_LENGTH:  # the comment above the line, as black would not wrap it
                lines += [f"    # {s.flag}{origin}", f"    {show(E.Const(s.field))}: {show(s.value)},"]
            else:
                lines.append(line)
    lines.append("}")
    derived = [s.flag for s in switches if not isinstance(s.value, E.Const)]
    if derived:
        lines += textwrap.wrap(f"derived by {who} when not given (_astgen.py DERIVED): {', '.join(derived)}",
                               LINE_LENGTH, initial_indent="# ", subsequent_indent="# ",
                               break_on_hyphens=False, break_long_words=False)
    return "\n".join(lines)


def switch_line(s: Switch) -> str:
    return f"{s.field} = self.switch({show(E.Const(s.field))})"


