"""What `pip install .` ships: every package, and the schemas."""

from __future__ import annotations

import tomllib

from tests.conftest import REPO


def test_every_package_is_listed_in_pyproject():
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(path.parent.relative_to(REPO).parts)
        for path in (REPO / "gateway").rglob("__init__.py")
        if "__pycache__" not in path.parts
    }
    assert found | {"gateway.schemas"} == listed
    assert len(list((REPO / "schemas").glob("*.xsd"))) == 6
