"""Fixtures the test files share: sglang's source trees (fetched once per
session with pip download) and the pipeline's result on one of their model
files with its emitted module loaded (computed once per session, whichever
test file asks first)."""

import pytest

from astgen.frontend.source import fetch_version


@pytest.fixture(scope="session")
def sglang_tree():
    """sglang source trees by version, fetched once with pip download."""
    cache = {}

    def get(version: str):
        if version not in cache:
            cache[version] = fetch_version(version)
        return cache[version]

    return get


@pytest.fixture(scope="session")
def corpus_result(sglang_tree):
    """(FileResult, the emitted module or None) of model file ``stem`` of
    sglang ``version`` (only ``entry`` when given), analyzed once."""
    from tests.helpers import analyzed

    def get(stem: str, version: str = "0.5.23", entry: str | None = None):
        return analyzed(sglang_tree(version), stem, entry)

    return get
