"""Every diagnostic astgen reports, as data (pyflakes' ``messages.py``).

A :class:`Message` is one kind of diagnostic: its code, its severity and the
templates of its text and hint. A diagnostic (:class:`astgen.ir.Diagnostic`)
holds a message, a location and its arguments by name; the text is rendered
from them only where it is shown (``render``, the reports), never parsed back.

Templates are ``str.format`` text. An argument that is a tuple prints as its
items joined by ", "; the format spec ``verb`` prints "is" or "are" after how
many items a tuple holds, ``depends`` "depends" or "depend".
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Message:
    code: str  # what the reports group by: "unknown-layer", "unresolved", "assumed" ...
    severity: str  # "error" (unusable input), "incomplete" (missing rule/trace), "note"
    text: str
    hint: str = ""
    subject: str = ""  # the construct not understood, as a template (default: the code)

    def render(self, template: str, args: dict[str, Any]) -> str:
        return _FORMATTER.format(template, **args)


class _Formatter(string.Formatter):
    def format_field(self, value: Any, spec: str) -> str:
        if spec == "verb":
            return "is" if len(value) == 1 else "are"
        if spec == "depends":
            return "depends" if len(value) == 1 else "depend"
        if isinstance(value, tuple):
            return ", ".join(str(v) for v in value)
        return super().format_field(value, spec)


_FORMATTER = _Formatter()

_ADD_HELPER = "add the helper to rules/parallel.toml, or teach the tracer the construct"
_ADD_FUNCTION = "add the function or object to rules/parallel.toml, or teach the tracer the construct"

# -- the input ------------------------------------------------------------------
SYNTAX = Message("syntax", "error", "{error}", subject="syntax error")
NO_ENTRY = Message("no-entry", "error", "no EntryClass in this file")
NO_ENTRY_NAMED = Message("no-entry", "error", "no EntryClass named {arch} in this file")
NO_CLASS = Message("no-class", "error", "EntryClass names {cls}, which is neither defined in this file nor "
                   "imported from a model file")
CRASH = Message("crash", "error", "astgen crashed on this file: {error}: {detail}{where}",
                "please report it with the file", "crash ({error})")

# -- the tracer (stage 3) -----------------------------------------------------
ENTRY_CONFIG = Message("entry-config", "incomplete", "the entry's config factory {factory} is not in this tree",
                       subject="entry config")
TOWER = Message("tower", "note", "multimodal tower {path} ({cls}) is not analyzed")
TOWER_WITH_UNKNOWN = Message("tower", "note", "multimodal tower {path} ({cls}) is not analyzed; it holds "
                             "unknown classes {unknown}")
UNKNOWN_LAYER = Message("unknown-layer", "incomplete", "unknown layer class {cls} (attribute {attr})",
                        "add a rule for {cls} to rules/layers.toml, or list it under [ignored]", "{cls}")
CONFIG_ATTR = Message("config-attr", "note", "{cls}.{attr} is computed from {whys}: read as the raw config key "
                      "{raw}", subject="{cls}.{attr}")
TRACER_ERROR = Message("tracer-error", "incomplete", "could not interpret statement ({error}: {detail})",
                       "statement skipped", "statement {statement} ({error})")
ASSUMED_BUILT = Message("assumed", "incomplete", "whether {built} {built:verb} built depends on {calls} (given "
                        "the config), which astgen cannot evaluate", _ADD_HELPER, "{first}")
ASSUMED_SUB_CONFIG = Message("assumed", "note", "{cls}.{attr}: read as {built} built from the checkpoint's {key}; a "
                             "checkpoint without {key} gets {built}()'s defaults", subject="{cls}.{attr}")
ASSUMED_CONDITION = Message("assumed", "note", "condition on {whys} taken as its default (off)")
ASSUMED_KWARGS = Message("assumed", "note", "keyword arguments **{callee} not resolved: the callee's defaults "
                         "are taken", "trace the function ([trace] functions in rules/layers.toml)", "{construct}")
SYMBOLIC_LOOP = Message("loop", "note", "loop over a symbolic range skipped")
SYMBOLIC_LOOP_MODULES = Message("loop", "incomplete", "modules of self.{built} built in a loop over a symbolic "
                                "range: how many is not known", "teach the tracer the construct",
                                "modules built in a symbolic loop")
UNRESOLVED_ITEMS = Message("unresolved", "incomplete", "the items of {attr} are not resolved ({why})",
                           "teach the tracer the construct", "{why}")
DEEP_CONSTRUCTION = Message("too-deep", "incomplete", "construction of {cls} nested too deeply")
DEEP_CALLS = Message("too-deep", "incomplete", "call nesting too deep")

# -- forward and lower (stages 4, 5) ------------------------------------------
MLA_FIELDS = Message("unresolved", "incomplete", "{cls}: the absorbed MLA operator {op} reads {missing}, which "
                     "the constructor does not set", "name the attention's fields in rules/execution.toml [mla]",
                     "{cls}.{first}")
UNRESOLVED_OPERATOR = Message("unresolved", "incomplete", "operator {op}: {fields} {fields:depends} on an "
                              "unresolved value ({why})", _ADD_FUNCTION, "{why}")
MISSING_KEY = Message("missing-key", "error", "the config has no key {key}, which {what} reads", subject="{key}")
UNEVALUATED = Message("unevaluated", "error", "cannot evaluate {expr} for {what} ({error})", subject="evaluation")

# -- the scan (stage 7) --------------------------------------------------------
NO_OPERATORS = Message("no-operators", "incomplete", "{entry} builds no layer that rules/ knows in its "
                       "constructor", "its modules may be created outside __init__, or its __init__ was not found",
                       "no operators")
FINDING = Message("finding", "note", "{cls}: {message} (when {when}; {cite})", subject="{cls}")
MTP_NOT_ADDED = Message("mtp", "note", "MTP draft {entry} not added: {why}")
EMIT_FAILED = Message("emit", "incomplete", "{error}", subject="emit")
