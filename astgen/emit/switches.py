"""Stage 6, emit (server arguments): each sglang server argument a module's
operators read, ``getattr(sc, "enable_dp_lm_head", False)``, becomes a
local that ``build_operators`` binds once from a module constant
(``ENABLE_DP_LM_HEAD``), an LLMSim schedule field of that name winning."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, replace

from astgen import expr as E
from astgen.emit.pysource import LINE_LENGTH, show
from astgen.lower.shapes import ArchShapes, Site
from astgen.rules import Rules


@dataclass(frozen=True)
class Switch:
    field: str  # sglang's name, also the schedule field that overrides it
    constant: str  # the module's name for its value
    value: E.Expr
    flag: str  # sglang's launch flag
    given: bool  # set by --server-args


def named_switches(archs: list[ArchShapes], rules: Rules) -> tuple[list[ArchShapes], list[Switch], E.Expr]:
    """The entries with each server argument they read
    (``getattr(sc, "enable_dp_lm_head", False)``) reading a local that
    build_operators binds once from a module constant (``ENABLE_DP_LM_HEAD``),
    those switches, and the prefill chunk as that preamble computes it."""
    known = set(rules.server_args.args) | set(rules.derived) | set(rules.given)
    found: dict[E.Expr, E.Expr] = {}
    switches: dict[str, Switch] = {}

    def visit(e: E.Expr) -> None:
        for x in E.walk(e):
            if isinstance(x, E.GetAttr) and x.obj == E.Name("sc") and x.name in known and x not in found:
                found[x] = E.Name(x.name)  # bound once: build_operators' preamble
                arg = rules.server_args.args.get(x.name)
                flag = arg.flags[0] if arg is not None else "--" + x.name.replace("_", "-")
                switches[x.name] = Switch(x.name, x.name.upper(), x.default, flag, x.name in rules.given)
                visit(x.default)  # a default sglang derives from other switches

    visit(rules.execution.prefill_chunk)  # every module runs its prefill in chunks
    for a in archs:
        for op in a.operators:
            for e in (op.m, op.k, op.n, op.batch, op.layers, op.guard, a.kv_cache, a.kv_cache_per_gpu):
                visit(e)
            for _, e in op.site.args if op.site is not None else ():
                visit(e)
    chunk_value = E.replace_all(rules.execution.prefill_chunk, found)
    if not found:
        return archs, [], chunk_value
    # a derived default reads the other switches' locals
    switches = {k: replace(v, value=E.replace_all(v.value, found)) for k, v in switches.items()}

    found[rules.execution.prefill_chunk] = E.Name("chunk")  # the preamble's local

    def named(e: E.Expr) -> E.Expr:
        return E.replace_all(e, found)

    def read(e: E.Expr) -> E.Expr:  # in a method of its own: getattr(sc, NAME, CONSTANT)
        return E.replace_all(e, {x: E.GetAttr(x.obj, x.name, E.Name(x.name.upper())) for x in found
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
                           names={named(k): v for k, v in a.names.items()}))
    fixed = [switches[k] for k in sorted(switches) if isinstance(switches[k].value, E.Const)]
    return out, fixed + [switches[k] for k in sorted(switches) if not isinstance(switches[k].value, E.Const)], \
        chunk_value


def switch_block(switches: list[Switch], rules: Rules) -> str:
    if not switches:
        return ""
    who = rules.display
    lines = ["", "", "", f"# {who}'s server arguments the code tests (astgen gen --server-args), each read as",
             "# getattr(sc, NAME, CONSTANT): an LLMSim schedule field of that name wins"]
    for s in switches:
        if isinstance(s.value, E.Const):
            derived = s.field in rules.derived and rules.flavour == "sglang"  # another family's are plain defaults
            origin = "" if s.given else f" ({who}'s derived default)" if derived else f" ({who}'s default)"
            line = f"{s.constant} = {show(s.value)}  # {s.flag}{origin}"
            if len(line) > LINE_LENGTH:  # the comment above the line, as black would not wrap it
                lines += [f"# {s.flag}{origin}", f"{s.constant} = {show(s.value)}"]
            else:
                lines.append(line)
    derived = [s.flag for s in switches if not isinstance(s.value, E.Const)]
    if derived:
        lines += textwrap.wrap(f"derived by sglang when not given (rules/parallel.toml [switches]): "
                               f"{', '.join(derived)}", LINE_LENGTH - 2, initial_indent="# ", subsequent_indent="# ",
                               break_on_hyphens=False, break_long_words=False)
    return "\n".join(lines)


def switch_line(s: Switch) -> str:
    default = s.constant if isinstance(s.value, E.Const) else show(s.value)
    return f"{s.field} = getattr(sc, {show(E.Const(s.field))}, {default})"


