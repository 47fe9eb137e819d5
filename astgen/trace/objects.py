"""Values only the tracer makes: opaque names, partial calls, make_layers'
result, a dict's methods."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from astgen import expr as E
from astgen.values import (
    DictVal,
    Instance,
    Repeated,
)


@dataclass(eq=False)
class _Opaque:
    """A name imported from outside the traced files that no rule describes."""

    qualname: str
    name: str


@dataclass(eq=False)
class _BecomeLayer:
    inst: Instance
    name: str


@dataclass(eq=False)
class _Partial:
    fn: Any
    args: list
    kwargs: dict


@dataclass(eq=False)
class _Layers:
    """make_layers' result: the layer list, or (list, start, end) when unpacked."""

    modules: Repeated
    n: E.Expr


@dataclass(eq=False)
class _DictMethod:
    d: DictVal
    method: str

    def call(self, args: list) -> Any:
        if self.method == "get" and args and isinstance(args[0], E.Const):
            return self.d.items.get(args[0].value, args[1] if len(args) > 1 else E.NONE)
        if self.method == "update" and args and isinstance(args[0], DictVal):
            self.d.items.update(args[0].items)
        return E.NONE
