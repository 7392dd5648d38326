"""Units of work: on SQLite, those that arrive together share one commit (group commit); on
either database, one that fails is rolled back alone and the others are kept. Units that
only read run read-only, and on SQLite wait for no writer, not even another process's."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from incident.adapters.database.databases import Database, open_database
from incident.bootstrap import READINESS_WRITE_WAIT, Container
from incident.config import Settings
from incident.domain.incident import Severity
from incident.services import incidents as uc
from incident.services import views
from incident.services.status_page import read_public_facts
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
    db = open_database(url)
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
    reopened = open_database(url)
    try:
        count = await reopened.run(lambda s: s.execute(text("SELECT count(*) FROM notes")).one())
        assert count[0] == 29
    finally:
        await reopened.dispose()


@pytest.fixture
async def sqlite_database(tmp_path: Path) -> Database:
    db = open_database(f"sqlite:///{tmp_path / 'group.db'}")
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


async def test_an_urgent_unit_cuts_a_batch_short_and_every_unit_is_kept(
    sqlite_database: Database,
) -> None:
    # SQLite: a declaration or a page claim arriving while a batch of ordinary units runs
    # waits for the unit under way, not for the whole batch.
    database = sqlite_database
    ran: list[str] = []
    second_started = threading.Event()

    def ordinary(n: int):  # type: ignore[no-untyped-def]
        def work(session: Session) -> int:
            if n == 1:
                second_started.set()
            session.execute(text("INSERT INTO notes (n) VALUES (:n)"), {"n": n})
            time.sleep(0.05)  # a long unit, so the urgent one arrives during it
            ran.append(f"unit {n}")
            return n

        return work

    def urgent(session: Session) -> int:
        session.execute(text("INSERT INTO notes (n) VALUES (100)"))
        ran.append("urgent")
        return 100

    try:
        batch = [asyncio.create_task(database.run(ordinary(n))) for n in range(6)]
        assert await asyncio.to_thread(second_started.wait, 10)
        assert await database.run(urgent, urgent=True) == 100
        assert await asyncio.gather(*batch) == list(range(6))
        # Unit 1 shared a batch with at least units 2-5 (unit 0 may have gone alone): the
        # urgent unit ran right after it, and the rest of the batch after that.
        assert ran.index("urgent") == ran.index("unit 1") + 1
        assert ran[ran.index("urgent") + 1 :] == [f"unit {n}" for n in range(2, 6)]
        stored = await database.run(
            lambda s: sorted(row[0] for row in s.execute(text("SELECT n FROM notes")))
        )
        assert stored == [0, 1, 2, 3, 4, 5, 100]
    finally:
        await database.dispose()


class _Base(DeclarativeBase):
    pass


class _Note(_Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    n: Mapped[int | None]


async def test_a_unit_whose_orm_flush_fails_never_leaves_another_unit_told_it_was_kept(
    sqlite_database: Database,
) -> None:
    # A failed ORM flush makes the Session roll back the whole transaction of the batch,
    # not only its unit's savepoint: whatever happens, no unit is told it was committed
    # when it was not.
    database = sqlite_database

    def insert(n: int):  # type: ignore[no-untyped-def]
        def work(session: Session) -> int:
            session.execute(text("INSERT INTO notes (id, n) VALUES (:n, :n)"), {"n": n})
            return n

        return work

    def clash(session: Session) -> int:
        session.add(_Note(id=1, n=99))  # id 1 is the first unit's
        session.flush()
        return 99

    try:
        results = await asyncio.gather(
            database.run(insert(1)),
            database.run(clash),
            database.run(insert(3)),
            return_exceptions=True,
        )
        assert isinstance(results[1], IntegrityError)
        told_kept = {r for r in results if isinstance(r, int)}
        stored = await database.run(
            lambda s: {row[0] for row in s.execute(text("SELECT n FROM notes"))}
        )
        assert told_kept == stored
    finally:
        await database.dispose()


async def test_a_unit_that_only_reads_cannot_write(database: Database) -> None:
    def write(session: Session) -> None:
        session.execute(text("INSERT INTO notes (n) VALUES (1)"))

    def count(session: Session) -> int:
        return int(session.execute(text("SELECT count(*) FROM notes")).scalar_one())

    try:
        with pytest.raises(DBAPIError, match=r"readonly database|read-only transaction"):
            await database.read(write)
        assert await database.read(count) == 0
        # Its connection (units run one after another here share one) is not left read-only.
        await database.run(write)
        assert await database.read(count) == 1
    finally:
        await database.dispose()


async def test_a_read_waits_for_no_writer_even_another_process_holding_the_write_lock(
    sqlite_database: Database, tmp_path: Path
) -> None:
    # Another process (a CLI command, say) takes the file's write lock and keeps it. Units
    # that may write wait for it (up to the 30 s busy timeout), but reads do not: they see
    # the last commit, at once.
    database = sqlite_database

    def count(session: Session) -> int:
        return int(session.execute(text("SELECT count(*) FROM notes")).scalar_one())

    await database.run(lambda s: s.execute(text("INSERT INTO notes (n) VALUES (1)")))
    other = sqlite3.connect(tmp_path / "group.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO notes (n) VALUES (2)")  # not committed: not seen
        write = asyncio.create_task(
            database.run(lambda s: s.execute(text("INSERT INTO notes (n) VALUES (3)")))
        )
        assert await asyncio.wait_for(database.read(count), 1) == 1
        await asyncio.sleep(0.2)
        assert not write.done()  # the lock is really held: the writer waits for it
        other.execute("COMMIT")
        await asyncio.wait_for(write, 10)
        assert await asyncio.wait_for(database.read(count), 1) == 3
    finally:
        other.close()
        await database.dispose()


async def test_what_get_requests_read_answers_while_another_process_holds_the_write_lock(
    app: Container, settings: Settings
) -> None:
    # The reads behind the API's, the dashboard's and the status page's GETs answer at once;
    # readiness, which must write, says in bounded time that the database takes no writes.
    incident, _ = await uc.declare_incident(
        app.runtime, title="Checkout API down", severity=Severity.P1, by="dana"
    )
    assert incident.id is not None
    other = sqlite3.connect(settings.database_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        reads = asyncio.gather(
            uc.get_incident(app.runtime, incident.id),
            uc.list_incidents(app.runtime),
            views.overview(app.runtime),
            views.incident_timeline(app.runtime, incident.id),
            read_public_facts(app.runtime),
        )
        view, listed, overview, timeline, _ = await asyncio.wait_for(reads, 1)
        assert view.incident.title == "Checkout API down" and view.upcoming
        assert [i.id for i in listed] == [incident.id]
        assert overview.total == 1 and timeline
        problems = await asyncio.wait_for(app.readiness(), READINESS_WRITE_WAIT + 1)
        assert "database does not take writes: TimeoutError" in problems
    finally:
        other.close()  # its transaction ends: the probe write goes through
    assert "database does not take writes: TimeoutError" not in await app.readiness()
