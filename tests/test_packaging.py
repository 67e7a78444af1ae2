"""What `pip install .` ships: every package, and the schemas."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest

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


@pytest.mark.parametrize("bench", sorted(p.name for p in (REPO / "bench").glob("*.py")))
def test_every_benchmark_runs_from_the_installation_without_test_tools(bench):
    """The README's install has no pytest nor hypothesis: a benchmark must not need them."""
    program = (
        "import runpy, sys; sys.modules['pytest'] = sys.modules['hypothesis'] = None;"
        f" sys.argv = ['{bench}', '--help']; runpy.run_path({str(REPO / 'bench' / bench)!r}, run_name='__main__')"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout
