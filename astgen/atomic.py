"""Writing files all at once or not at all (outputs, cache entries, configs),
and values kept on disk by their inputs' digest (kept_on_disk)."""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Callable, TypeVar

T = TypeVar("T")


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write all of ``data`` or nothing: a temp file in the same directory,
    then an atomic rename (readers never see half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if isinstance(data, str):
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(data)
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def kept_on_disk(path: Path, make: Callable[[], T], load: Callable[[bytes], T],
                 dump: Callable[[T], str | bytes]) -> T:
    """The value kept at ``path`` (a name its inputs' digest gives), else
    ``make()``'s, kept there. An entry that cannot be read is made again; a
    cache that cannot be written is no cache, not an error."""
    try:
        return load(Path(path).read_bytes())
    except (OSError, ValueError, KeyError, TypeError, EOFError, AttributeError, ImportError,
            pickle.UnpicklingError):
        pass
    value = make()
    try:
        write_atomic(path, dump(value))
    except OSError:
        pass
    return value
