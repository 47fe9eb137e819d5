"""The tracer's frames, and what a branch of an ``if`` changes in one.

A :class:`Frame` is one function being interpreted: its module, its locals,
``self`` (whose attributes ``__init__`` sets) and the guard under which the
statements now executed run. Its :class:`FrameState` is what a branch can
change: the locals and the attributes of ``self``.

The invariant of an ``if`` (pytype's frame state, ``merge_into``): each
branch starts from the state before the ``if`` and runs under the guard
and'ed with its test; where both branches fall through, the state after
the ``if`` is the two ends merged under the test (one phi per name that
differs); the guard after the ``if`` is the guard before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from astgen import expr as E
from astgen.frontend.parse import ClassInfo, ParsedModule
from astgen.values import Instance, merge_dicts


@dataclass
class Frame:
    module: ParsedModule
    locals: dict[str, Any]
    self_inst: Instance | None
    owner: ClassInfo | None
    guard: E.Expr = E.TRUE
    line: int = 0

    def state(self) -> "FrameState":
        """A copy of what a branch may change."""
        attrs = dict(self.self_inst.attrs) if self.self_inst is not None else None
        return FrameState(dict(self.locals), attrs)


@dataclass(frozen=True)
class FrameState:
    """The locals and the attributes of ``self`` at one point of a function."""

    locals: dict[str, Any]
    attrs: dict[str, Any] | None  # None: the frame has no self

    def restore(self, frame: Frame) -> None:
        """Make this the frame's state (its dicts are updated in place: values
        elsewhere hold the same ``self``)."""
        frame.locals.clear()
        frame.locals.update(self.locals)
        if frame.self_inst is not None and self.attrs is not None:
            frame.self_inst.attrs.clear()
            frame.self_inst.attrs.update(self.attrs)

    def merge(self, test: E.Expr, other: "FrameState") -> "FrameState":
        """The state after an ``if`` whose true branch ended in this state
        and whose false branch ended in ``other``."""
        attrs = merge_dicts(test, self.attrs, other.attrs) if self.attrs is not None and other.attrs is not None \
            else None
        return FrameState(merge_dicts(test, self.locals, other.locals), attrs)
