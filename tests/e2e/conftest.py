"""The province fixture: a small province on loopback (tests/e2e/province.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.province import Province, build_province


@pytest.fixture
def province(tmp_path: Path) -> Iterator[Province]:
    built = build_province(tmp_path)
    yield built
    built.stop_all()
