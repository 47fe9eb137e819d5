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
