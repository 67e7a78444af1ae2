"""A real axis process per test, on 127.0.0.1 with a port the OS chose (tests/axis/running.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.axis.running import RunningAxis, start_axis, write_config


@pytest.fixture
def axis_factory(tmp_path: Path) -> Iterator:
    started: list[RunningAxis] = []

    def factory(*, extra_server: str = "", folder: Path | None = None) -> RunningAxis:
        where = folder or tmp_path
        config_path = where / "axis.toml" if folder else write_config(where, extra_server=extra_server)
        running = start_axis(where, config_path)
        started.append(running)
        return running

    yield factory
    for running in started:
        running.service.stop()


@pytest.fixture
def axis(axis_factory) -> RunningAxis:
    return axis_factory()
