"""Progress of a long run: a rich progress bar on a terminal, one plain line
per file elsewhere (CI logs), nothing when disabled. Always on stderr, so
that a report written to stdout stays clean."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from astgen.scan import FileResult

Describe = Callable[[Any], tuple[str, str]]  # an item done -> (its name, its outcome)


@contextmanager
def progress_reporter(total: int, enabled: bool = True, stream=None, verb: str = "scan",
                      describe: Describe | None = None) -> Iterator[Callable[[Any], None]]:
    """``tick(item)`` once per item done; items are FileResults unless
    ``describe`` says how to name another kind."""
    stream = stream or sys.stderr
    describe = describe or _describe_file
    if not enabled or total == 0:
        yield lambda item: None
    elif stream.isatty():
        with _rich_bar(total, stream, verb, describe) as tick:
            yield tick
    else:
        yield _plain_lines(total, stream, verb, describe)


@contextmanager
def _rich_bar(total: int, stream, verb: str, describe: Describe) -> Iterator[Callable[[Any], None]]:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = (TextColumn(f"[bold]{verb}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.description}"))
    with Progress(*columns, console=Console(file=stream), transient=True) as bar:
        task = bar.add_task("", total=total)

        def tick(item: Any) -> None:
            bar.update(task, advance=1, description=describe(item)[0])

        yield tick


def _plain_lines(total: int, stream, verb: str, describe: Describe) -> Callable[[Any], None]:
    done = 0
    width = len(str(total))

    def tick(item: Any) -> None:
        nonlocal done
        done += 1
        name, outcome = describe(item)
        print(f"{verb}: [{done:>{width}}/{total}] {name}: {outcome}", file=stream, flush=True)

    return tick


def _describe_file(result: FileResult) -> tuple[str, str]:
    return result.display, _outcome(result)


def _outcome(result: FileResult) -> str:
    if not result.classes:
        errors = [d for d in result.diagnostics if d.severity == "error"]
        return "no EntryClass" if result.has_no_entry else (errors[0].code if errors else "nothing")
    statuses = [c.status for c in result.classes]
    return ", ".join(f"{s} {statuses.count(s)}" for s in dict.fromkeys(statuses))
