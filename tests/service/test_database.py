"""SQLite group commit: units of work that arrive together share one commit, and one that
fails is rolled back alone."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from incident.adapters.database import Database


@pytest.fixture
async def database(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'group.db'}")
    await db.run(lambda s: s.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, n INT)")))
    return db


async def test_concurrent_units_commit_together_and_a_failing_one_alone_rolls_back(
    database: Database, tmp_path: Path
) -> None:
    def insert(n: int):  # type: ignore[no-untyped-def]
        def work(session: Session) -> int:
            session.execute(text("INSERT INTO notes (n) VALUES (:n)"), {"n": n})
            if n == 13:
                raise ValueError("unlucky")
            return n

        return work

    results = await asyncio.gather(
        *(database.run(insert(n), durable=n % 2 == 0) for n in range(30)),
        return_exceptions=True,
    )
    try:
        assert [r for r in results if isinstance(r, BaseException)] == [results[13]]
        assert isinstance(results[13], ValueError)
        assert [r for r in results if not isinstance(r, BaseException)] == [
            n for n in range(30) if n != 13
        ]
        stored = await database.run(
            lambda s: [row[0] for row in s.execute(text("SELECT n FROM notes ORDER BY n"))]
        )
        assert stored == [n for n in range(30) if n != 13]
    finally:
        await database.dispose()
    # Reopened, the file holds the same: everything acknowledged was committed.
    reopened = Database(f"sqlite:///{tmp_path / 'group.db'}")
    try:
        count = await reopened.run(lambda s: s.execute(text("SELECT count(*) FROM notes")).one())
        assert count[0] == 29
    finally:
        await reopened.dispose()


async def test_a_unit_sees_what_an_earlier_unit_of_the_same_commit_wrote(
    database: Database,
) -> None:
    write = database.run(lambda s: s.execute(text("INSERT INTO notes (n) VALUES (7)")))
    read = database.run(lambda s: s.execute(text("SELECT count(*) FROM notes")).one()[0])
    try:
        _, seen = await asyncio.gather(write, read)
        assert seen == 1
    finally:
        await database.dispose()
