"""SQLite's virtual-machine steps for a piece of work: what a lookup reads, counted instead of
timed, so that a test can say it does not grow with the rows kept."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def counted_steps(db: sqlite3.Connection, work: Callable[[], T]) -> tuple[int, T]:
    """(steps, what ``work`` returned): a progress handler called at every step counts them."""
    counted = 0

    def count() -> int:
        nonlocal counted
        counted += 1
        return 0  # go on

    db.set_progress_handler(count, 1)
    try:
        result = work()
    finally:
        db.set_progress_handler(None, 1)
    return counted, result
