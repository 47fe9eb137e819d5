"""Progress of a long run: a rich progress bar on a terminal, one plain line
per file elsewhere (CI logs), nothing when disabled. Always on stderr, so
that a report written to stdout stays clean."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Callable, Iterator

from astgen.scan import FileResult


@contextmanager
def progress_reporter(total: int, enabled: bool = True, stream=None) -> Iterator[Callable[[FileResult], None]]:
    stream = stream or sys.stderr
    if not enabled or total == 0:
        yield lambda result: None
    elif stream.isatty():
        with _rich_bar(total, stream) as tick:
            yield tick
    else:
        yield _plain_lines(total, stream)


@contextmanager
def _rich_bar(total: int, stream) -> Iterator[Callable[[FileResult], None]]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("[bold]scan"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.description}"))
    with Progress(*columns, console=Console(file=stream), transient=True) as bar:
        task = bar.add_task("", total=total)

        def tick(result: FileResult) -> None:
            bar.update(task, advance=1, description=result.display)

        yield tick


def _plain_lines(total: int, stream) -> Callable[[FileResult], None]:
    done = 0
    width = len(str(total))

    def tick(result: FileResult) -> None:
        nonlocal done
        done += 1
        print(f"scan: [{done:>{width}}/{total}] {result.display}: {_outcome(result)}", file=stream, flush=True)

    return tick


def _outcome(result: FileResult) -> str:
    if not result.classes:
        errors = [d for d in result.diagnostics if d.severity == "error"]
        return "no EntryClass" if result.has_no_entry else (errors[0].code if errors else "nothing")
    statuses = [c.status for c in result.classes]
    return ", ".join(f"{s} {statuses.count(s)}" for s in dict.fromkeys(statuses))
