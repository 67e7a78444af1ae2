"""GroupCommit: steps submitted together are committed together, each in its own savepoint."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from gateway.sqlite import GroupCommit, connect, transaction


def _rows(path) -> list[str]:
    reader = sqlite3.connect(path)
    try:
        return sorted(row[0] for row in reader.execute("SELECT name FROM t"))
    finally:
        reader.close()


def test_steps_of_one_turn_share_a_commit_and_a_failing_one_is_taken_back_alone(tmp_path):
    path = tmp_path / "db.sqlite3"
    db = connect(path)
    db.execute("CREATE TABLE t (name TEXT UNIQUE)")
    group = GroupCommit(db)

    def insert(name: str) -> str:
        with transaction(db):  # what a store method does: here a savepoint of the batch
            db.execute("INSERT INTO t (name) VALUES (?)", (name,))
            if name == "bad":
                raise ValueError("refused")
        return name

    async def main() -> list:
        return await asyncio.gather(
            group.run(lambda: insert("a")),
            group.run(lambda: insert("bad")),
            group.run(lambda: insert("b")),
            return_exceptions=True,
        )

    first, failed, last = asyncio.run(main())
    assert (first, last) == ("a", "b")
    assert isinstance(failed, ValueError)
    assert (group.batches, group.steps) == (1, 3)
    assert _rows(path) == ["a", "b"]  # durable, and seen by another connection
    assert not db.in_transaction


def test_a_commit_that_fails_fails_every_step_of_its_batch(tmp_path):
    path = tmp_path / "db.sqlite3"
    db = connect(path)
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
    db.execute("CREATE TABLE child (parent INTEGER REFERENCES t(id) DEFERRABLE INITIALLY DEFERRED)")
    group = GroupCommit(db)

    def orphan() -> None:  # a deferred foreign key is checked at COMMIT, which then fails
        with transaction(db):
            db.execute("INSERT INTO child (parent) VALUES (42)")

    def fine() -> str:
        with transaction(db):
            db.execute("INSERT INTO t (name) VALUES ('kept?')")
        return "done"

    async def main() -> list:
        return await asyncio.gather(group.run(fine), group.run(orphan), return_exceptions=True)

    results = asyncio.run(main())
    assert all(isinstance(r, sqlite3.IntegrityError) for r in results), results
    assert _rows(path) == []
    assert not db.in_transaction


@pytest.mark.parametrize("steps", [1, 5])
def test_run_returns_only_once_the_step_is_committed(tmp_path, steps):
    path = tmp_path / "db.sqlite3"
    db = connect(path)
    db.execute("CREATE TABLE t (name TEXT)")
    group = GroupCommit(db)
    seen = []

    async def one(n: int) -> None:
        await group.run(lambda: db.execute("INSERT INTO t (name) VALUES (?)", (str(n),)))
        seen.append(_rows(path).count(str(n)))  # another connection sees it already

    async def main() -> None:
        await asyncio.gather(*(one(n) for n in range(steps)))

    asyncio.run(main())
    assert seen == [1] * steps


def test_a_batch_that_cannot_begin_fails_its_callers_rather_than_leaving_them_waiting(tmp_path):
    path = tmp_path / "db.sqlite3"
    db = connect(path)
    db.execute("CREATE TABLE t (name TEXT)")
    db.execute("PRAGMA busy_timeout = 100")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another program holds the write lock
    group = GroupCommit(db)

    async def main() -> list:
        return await asyncio.wait_for(
            asyncio.gather(group.run(lambda: db.execute("INSERT INTO t VALUES ('x')")), return_exceptions=True), 10
        )

    try:
        (result,) = asyncio.run(main())
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert isinstance(result, sqlite3.OperationalError) and "locked" in str(result)
    assert not db.in_transaction
