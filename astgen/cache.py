"""On-disk cache of per-file analysis results, shared by ``gen``, ``scan``
and ``check``.

A result is stored under the sha256 of the model file's content plus a salt
(astgen version, rules digest, sglang version, emit options), together with
the content hash of every file the analysis read (the model files it
imports and inherits from). It is used only if all of those still hash the
same, so an edit to ``qwen2.py`` invalidates ``qwen3.py``'s entry.

Why results and not parse trees: a result is a few kilobytes, a tree
megabytes, and unpickling Python's tree of a file costs more than parsing
it again (sglang 0.5.23's 20 largest model files: 1.17 s to unpickle 7.3 MB
of pickled trees, 0.48 s to parse the 1.9 M characters). Writes are atomic (temp file, then rename), so two processes
sharing the cache never see half a file; an unreadable entry is a miss.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path
from typing import Any

from astgen.atomic import write_atomic

FORMAT = 1


def code_digest(package: Path | None = None) -> str:
    """sha256 of astgen's own source, its subpackages' included: a result
    made by other code is stale, even under the same version number (a
    development checkout)."""
    root = Path(package or Path(__file__).resolve().parent)
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


class ResultCache:
    def __init__(self, directory: Path, salt: str) -> None:
        self.directory = Path(directory)
        self.salt = f"{FORMAT}\0{salt}"
        self._hashes: dict[tuple[str, int, int], str] = {}
        self.hits = self.misses = 0

    # -- hashing ------------------------------------------------------
    def file_hash(self, path: Path) -> str | None:
        """sha256 of the file's bytes, memoized by (path, size, mtime)."""
        try:
            st = path.stat()
        except OSError:
            return None
        memo = (str(path), st.st_size, st.st_mtime_ns)
        if memo not in self._hashes:
            try:
                self._hashes[memo] = hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError:
                return None
        return self._hashes[memo]

    def _slot(self, path: Path) -> Path | None:
        digest = self.file_hash(path)
        if digest is None:
            return None
        key = hashlib.sha256(f"{self.salt}\0{path.name}\0{digest}".encode()).hexdigest()
        return self.directory / key[:2] / f"{key}.pickle"

    # -- reading and writing -------------------------------------------
    def get(self, path: Path) -> Any | None:
        slot = self._slot(path)
        record = _read(slot) if slot is not None else None
        if record is None or not self._fresh(record["deps"]):
            self.misses += 1
            return None
        self.hits += 1
        result = record["result"]
        result.path = path
        return result

    def put(self, path: Path, result: Any) -> None:
        slot = self._slot(path)
        deps = [(str(p), self.file_hash(Path(p))) for p in result.files_read]
        if slot is None or any(h is None for _, h in deps):
            return
        try:
            write_atomic(slot, pickle.dumps({"deps": deps, "result": result}, protocol=pickle.HIGHEST_PROTOCOL))
        except OSError:
            pass  # a read-only or full cache directory only costs speed

    def _fresh(self, deps: list[tuple[str, str]]) -> bool:
        return all(self.file_hash(Path(p)) == h for p, h in deps)


def _read(slot: Path) -> dict | None:
    try:
        with open(slot, "rb") as fh:
            record = pickle.load(fh)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, ValueError):
        return None
    return record if isinstance(record, dict) and "deps" in record and "result" in record else None
