"""A database made by a newer release is refused, never marked older (found in review: an
upgrade rolled back opened the newer database as its own, set its version back, and wrote
rows without the newer release's rules; the next upgrade then ran its migration again)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.axis.schema import SCHEMA_VERSION as AXIS_VERSION
from gateway.axis.store import AxisStore
from gateway.errors import StoreError
from gateway.store import GatewayStore
from gateway.store.schema import SCHEMA_VERSION as GATEWAY_VERSION


def set_version(path: Path, version: int) -> None:
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {version}")


def version_of(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("PRAGMA user_version").fetchone()[0]


@pytest.mark.parametrize(
    ("open_store", "name", "ours"),
    [(GatewayStore, "gateway.sqlite3", GATEWAY_VERSION), (AxisStore, "axis.sqlite3", AXIS_VERSION)],
    ids=["gateway", "axis"],
)
def test_a_database_of_a_newer_release_is_refused_and_left_as_it_is(tmp_path: Path, open_store, name, ours):
    open_store(tmp_path).close()
    path = next(tmp_path.rglob(name))
    assert version_of(path) == ours
    set_version(path, ours + 1)
    with pytest.raises(
        StoreError, match=f"newer edxml-gateway \\(schema version {ours + 1}; this one knows {ours}\\)"
    ) as refused:
        open_store(tmp_path)
    assert str(path) in str(refused.value)  # where: the database's file
    assert version_of(path) == ours + 1
