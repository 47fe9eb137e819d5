"""What a plain `pip install .` ships (the pre-commit hook installs astgen
that way, not editable): every package of astgen's source."""

from __future__ import annotations

import tomllib

from tests.helpers import REPO


def test_every_subpackage_of_astgen_is_in_the_wheel():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {"astgen." + ".".join(p.parent.relative_to(REPO / "astgen").parts)
             for p in (REPO / "astgen").rglob("__init__.py")}
    found = {name.rstrip(".") for name in found}
    assert found <= listed, f"not shipped by `pip install .`: {sorted(found - listed)}"
    assert config["package-dir"] == {"astgen.rules_data": "rules"}
