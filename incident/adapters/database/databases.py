"""The database: runs each unit of work, a plain function of a Session, in one transaction.

Units of work are synchronous functions, so a whole transaction costs one hand-off between
the event loop and the database, however many statements it runs:

- SQLite runs them on one dedicated thread with SQLAlchemy's built-in driver. (Through an
  async driver every statement is a thread hand-off of its own: about 0.6 ms each here, and
  a fired step runs a dozen statements; see bench/README.md.) One thread also means one
  writer, which is what SQLite wants.
- PostgreSQL runs them through asyncpg with `AsyncSession.run_sync`: each statement is a
  network round trip anyway, and the event loop stays free while it waits.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

from sqlalchemy import Connection, Engine, event, text
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import Session

from incident.adapters.database import tables  # noqa: F401  (registers the tables on the metadata)
from incident.domain.errors import Conflict

T = TypeVar("T")

SQLITE_PREFIXES = ("sqlite://", "sqlite+pysqlite://", "sqlite+aiosqlite://")
POSTGRES_PREFIXES = ("postgresql+asyncpg://",)


class SchemaMismatch(Conflict):
    """The database's schema is not this release's (PostgreSQL, not migrated at start):
    the message says what to run."""


class Database:
    """Where units of work run. `await db.run(work)` commits if `work` returns normally."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        self._sync: Engine | None = None
        self._async: AsyncEngine | None = None
        self._thread: ThreadPoolExecutor | None = None
        # SQLite: units of work waiting for the thread, taken together by `_drain`.
        self._queue: list[_Unit] = []
        self._urgent: list[_Unit] = []
        self._queue_lock = threading.Lock()
        # SQLite: the database thread's connection, kept between drains (checking one out
        # of the pool and back costs a tenth of a declaration).
        self._connection: Connection | None = None
        self._lock_file: IO[str] | None = None
        if self.dialect == "sqlite":
            parsed = parsed.set(drivername="sqlite+pysqlite")
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            self._sync = create_sync_engine(
                parsed, echo=echo, connect_args={"check_same_thread": False, "timeout": 30}
            )
            _sqlite_pragmas(self._sync)
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        else:
            self._async = create_async_engine(url, echo=echo, pool_pre_ping=True)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    async def run(
        self, work: Callable[[Session], T], *, durable: bool = True, urgent: bool = False
    ) -> T:
        """Run `work` in one transaction: committed when it returns, rolled back if it raises.

        `durable=False` lets the commit return before it reaches the disk. Only for work
        whose loss in a power cut is harmless: a claim (the step then runs again, with the
        same idempotency key). The next durable commit makes it durable too.

        `urgent` (SQLite): goes ahead of the queue of units waiting for the database thread
        (a declaration, a page): under load, they wait for at most one short commit.
        """
        if self._sync is not None:
            if self._thread is None:
                raise RuntimeError("the database has been disposed")
            loop = asyncio.get_running_loop()
            unit = _Unit(work=work, durable=durable, loop=loop, future=loop.create_future())
            with self._queue_lock:
                (self._urgent if urgent else self._queue).append(unit)
            self._thread.submit(self._drain)
            result: T = await unit.future
            return result
        assert self._async is not None

        def relaxed(session: Session) -> T:
            session.execute(text("SET LOCAL synchronous_commit TO OFF"))
            return work(session)

        async with AsyncSession(self._async, expire_on_commit=False) as session, session.begin():
            return await session.run_sync(work if durable else relaxed)

    def _drain(self) -> None:
        """On the SQLite thread: run every unit of work waiting now in one transaction.

        Group commit: each unit runs in a savepoint of its own (one that fails is rolled back
        alone and gets its error), and the transaction commits once for all of them, so
        concurrent units share one fsync instead of paying one each. Synchronous=FULL when
        any of them is durable. Each unit's result is handed back only after the commit.

        Urgent units go first and commit among themselves; an urgent unit that arrives while
        a batch of others runs cuts it short after the unit under way, so it waits for at
        most one unit and a commit.
        """
        with self._queue_lock:
            # Urgent units commit among themselves: one that rode along with the queue's
            # units would wait for all of their work before its own commit returned.
            urgent = bool(self._urgent)
            waiting = self._urgent if urgent else self._queue
            units = waiting[:MAX_UNITS_PER_COMMIT]
            del waiting[:MAX_UNITS_PER_COMMIT]
        if not units:
            return  # an earlier drain took them
        assert self._sync is not None
        outcomes: list[tuple[bool, Any]] = []
        durable = any(unit.durable for unit in units)
        try:
            connection = self._thread_connection()
            raw = connection.connection.driver_connection
            assert raw is not None
            if not durable:
                raw.execute("PRAGMA synchronous=NORMAL")
            try:
                if len(units) == 1:
                    # Alone: its own transaction, no savepoint to pay for.
                    outcomes.append(_run_alone(connection, units[0].work))
                else:
                    with connection.begin() as root:
                        for position, unit in enumerate(units):
                            if position and not urgent and self._urgent:
                                # An urgent unit arrived: commit what is done and let it go
                                # next; the rest of this batch goes back to the queue's head
                                # (each unit submitted a drain, so one is still due for it).
                                with self._queue_lock:
                                    self._queue[:0] = units[position:]
                                units = units[:position]
                                break
                            outcomes.append(_run_in_savepoint(connection, raw, unit.work))
                            if not root.is_active:
                                # Rolled back whole (an ORM flush that failed does that, in
                                # the Session's "rollback_only" mode): the units before this
                                # one are lost with it, so nobody's work is kept.
                                raise outcomes[-1][1]
            finally:
                if not durable:
                    raw.execute("PRAGMA synchronous=FULL")
        except BaseException as error:  # the commit itself failed: nobody's work is kept
            outcomes = [(False, error)] * len(units)
            self._drop_thread_connection()  # whatever state it is in, start afresh
        for unit, (ok, value) in zip(units, outcomes, strict=True):
            unit.loop.call_soon_threadsafe(_settle, unit.future, ok, value)

    def _thread_connection(self) -> Connection:
        """On the SQLite thread: its connection, opened on first use or after a failure."""
        assert self._sync is not None
        if self._connection is None or self._connection.closed or self._connection.invalidated:
            self._drop_thread_connection()
            self._connection = self._sync.connect()
        return self._connection

    def _drop_thread_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception:  # a broken connection is dropped either way
                connection.invalidate()

    def _close_on_thread(self) -> None:
        self._drop_thread_connection()
        assert self._sync is not None
        self._sync.dispose()

    def hold_single_scheduler(self) -> None:
        """SQLite: take the file's scheduler lock, so a second `incident serve` on the same
        file is refused (Conflict, naming the holder) instead of firing steps twice.
        Released when this process exits or `dispose` runs. Nothing to do on PostgreSQL,
        where replicas share the work through their claims."""
        if self._sync is None or self._lock_file is not None:
            return
        database = self._sync.url.database
        if not database or database == ":memory:":
            return
        path = Path(database).with_name(Path(database).name + ".lock")
        handle = path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise Conflict(
                f"{database} is already served by {holder}: SQLite allows one scheduler per "
                "file. Stop that one, or run replicas on PostgreSQL "
                "(INCIDENT_DATABASE_URL=postgresql+asyncpg://...)."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        self._lock_file = handle

    async def migrate(self) -> list[str]:
        """Bring the schema to the newest migration (idempotent); returns what was done."""
        from incident.adapters.database import migrate

        if self._sync is not None:
            thread = self._thread
            assert thread is not None

            def upgrade() -> list[str]:
                assert self._sync is not None
                with self._sync.connect() as connection:
                    done = migrate.upgrade(connection)
                    connection.commit()
                    return done

            return await asyncio.get_running_loop().run_in_executor(thread, upgrade)
        assert self._async is not None
        async with self._async.connect() as connection:
            done = await connection.run_sync(migrate.upgrade)
            await connection.commit()
            return done

    async def create_schema(self) -> None:
        """Create or upgrade the schema: the migrations (kept for its callers' name)."""
        await self.migrate()

    async def schema_revision(self) -> str | None:
        """The schema revision the database is at (None: never migrated)."""
        from incident.adapters.database import migrate

        if self._sync is not None:
            assert self._thread is not None

            def read() -> str | None:
                assert self._sync is not None
                with self._sync.connect() as connection:
                    return migrate.current(connection)

            return await asyncio.get_running_loop().run_in_executor(self._thread, read)
        assert self._async is not None
        async with self._async.connect() as connection:
            return await connection.run_sync(migrate.current)

    async def ensure_schema(self, *, migrate: bool | None = None) -> list[str]:
        """At start: migrate, or check that someone has. Returns what was migrated.

        `migrate` None: SQLite migrates (one command sets up and runs the service), while
        PostgreSQL only checks, since replicas of several releases may share it during a
        rollout and its schema is the operator's to move (`incident db upgrade`, or
        `incident serve --migrate`). A PostgreSQL database that is behind is refused
        (SchemaMismatch), naming the command that fixes it; so is one
        that a newer release has migrated.
        """
        from incident.adapters.database.migrate import head, known

        if migrate is None:
            migrate = self.is_sqlite
        if migrate:
            return await self.migrate()
        current, wanted = await self.schema_revision(), head()
        if current is not None and current != wanted and not known(current):
            raise SchemaMismatch(
                f"the database is at schema revision {current}, newer than this release's "
                f"{wanted}: a newer release has migrated it; run that release here too"
            )
        if current != wanted:
            raise SchemaMismatch(
                f"the database is at schema revision {current or 'none (empty)'}, and this "
                f"release needs {wanted}: run `incident db upgrade` with the same "
                "INCIDENT_DATABASE_URL (or start one replica with `incident serve --migrate`), "
                "then start the service again"
            )
        return []

    async def dispose(self) -> None:
        """Close every connection (and give up the scheduler lock). Safe to call twice."""
        if self._lock_file is not None:
            self._lock_file.close()  # closing the file releases the lock
            self._lock_file = None
        if self._sync is not None and self._thread is not None:
            thread, self._thread = self._thread, None
            await asyncio.get_running_loop().run_in_executor(thread, self._close_on_thread)
            thread.shutdown(wait=True)
        if self._async is not None:
            await self._async.dispose()


# Enough to share an fsync among what a busy moment brings, few enough that an urgent unit
# arriving meanwhile waits for one short commit (each unit takes 1-3 ms here).
MAX_UNITS_PER_COMMIT = 8


@dataclass
class _Unit:
    work: Callable[[Session], Any]
    durable: bool
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]


def _run_alone(connection: Connection, work: Callable[[Session], Any]) -> tuple[bool, Any]:
    """One unit as the whole transaction: committed if it returns, rolled back if it
    raises (a failed commit raises, for the caller to hand to the unit)."""
    transaction = connection.begin()
    try:
        result = _run_work(connection, work)
    except BaseException as error:
        transaction.rollback()
        return False, error
    transaction.commit()
    return True, result


def _run_in_savepoint(
    connection: Connection, raw: Any, work: Callable[[Session], Any]
) -> tuple[bool, Any]:
    """One unit in a savepoint of the shared transaction: released if it returns, rolled
    back (alone) if it raises.

    The savepoint is the driver's own: SQLAlchemy's (`begin_nested`) compiles its
    statements again for each one, a tenth of a millisecond a unit, a fifth of the
    database thread's time in an alert storm."""
    raw.execute("SAVEPOINT unit")
    try:
        result = _run_work(connection, work)
    except BaseException as error:
        if raw.in_transaction:
            raw.execute("ROLLBACK TO unit")
            raw.execute("RELEASE unit")
        return False, error
    raw.execute("RELEASE unit")
    return True, result


def _run_work(connection: Connection, work: Callable[[Session], Any]) -> Any:
    """Run `work` in the transaction the caller has begun on `connection`: the Session
    only runs statements in it ("rollback_only": it never commits or opens one)."""
    with Session(
        bind=connection, expire_on_commit=False, join_transaction_mode="rollback_only"
    ) as session:
        result = work(session)
        session.flush()
    return result


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():  # its caller was cancelled; the work is committed all the same
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Our own transaction control (below) instead of the driver's implicit one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed step occurrence survives a power cut, not only a crash.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        # Another process (a CLI command, a second service refused at start) may use the
        # same file: take the write lock up front so it waits instead of failing mid-way.
        # (On the driver: through SQLAlchemy the statement costs five times as much.)
        connection.connection.driver_connection.execute("BEGIN IMMEDIATE")
