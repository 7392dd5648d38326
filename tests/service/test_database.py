"""Units of work: on SQLite, those that arrive together share one commit (group commit); on
either database, one that fails is rolled back alone and the others are kept."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from incident.adapters.database import Database
from tests.postgres import postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'group.db'}"
        return
    async with postgres_database() as postgres:
        yield postgres


@pytest.fixture
async def database(url: str) -> Database:
    db = Database(url)
    key = "INTEGER PRIMARY KEY" if db.is_sqlite else "SERIAL PRIMARY KEY"
    await db.run(lambda s: s.execute(text(f"CREATE TABLE notes (id {key}, n INT)")))
    return db


async def test_concurrent_units_commit_together_and_a_failing_one_alone_rolls_back(
    database: Database, url: str
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
    # Reopened, the database holds the same: everything acknowledged was committed.
    reopened = Database(url)
    try:
        count = await reopened.run(lambda s: s.execute(text("SELECT count(*) FROM notes")).one())
        assert count[0] == 29
    finally:
        await reopened.dispose()


@pytest.fixture
async def sqlite_database(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'group.db'}")
    await db.run(lambda s: s.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, n INT)")))
    return db


async def test_a_unit_sees_what_an_earlier_unit_of_the_same_commit_wrote(
    sqlite_database: Database,
) -> None:
    # SQLite only: its units queue for one thread, in order. (On PostgreSQL concurrent
    # units are concurrent transactions, each seeing what was committed when it began.)
    database = sqlite_database
    write = database.run(lambda s: s.execute(text("INSERT INTO notes (n) VALUES (7)")))
    read = database.run(lambda s: s.execute(text("SELECT count(*) FROM notes")).one()[0])
    try:
        _, seen = await asyncio.gather(write, read)
        assert seen == 1
    finally:
        await database.dispose()
