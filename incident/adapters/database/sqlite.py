"""SQLite: units of work on dedicated threads, with SQLAlchemy's built-in driver.

Through an async driver every statement is a thread hand-off of its own (about 0.6 ms each
here, and a fired step runs a dozen statements; see bench/README.md), so each unit of work
runs whole on a thread:

- Units that may write go to the writer thread: one writer, which is what SQLite wants.
  Those waiting together share one transaction and one fsync (group commit), urgent ones
  ahead of the rest. Each begins with `BEGIN IMMEDIATE`: another process using the file (a
  CLI command) makes it wait for the write lock up front instead of failing mid-way.
- Units that only read go to the reader thread, on a connection of its own that cannot
  write (`PRAGMA query_only`), in deferred transactions: in WAL mode a reader sees the last
  commit and waits for no writer, so a write lock held by another process (up to its 30 s
  busy timeout) does not hold up GET requests.

The file is served by one scheduler at a time (`hold_single_scheduler`).
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

from sqlalchemy import Connection, Engine, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session

from incident.adapters.database import tables  # noqa: F401  (registers the tables on the metadata)
from incident.adapters.database.databases import Database
from incident.domain.errors import Conflict

T = TypeVar("T")

# Enough to share an fsync among what a busy moment brings, few enough that an urgent unit
# arriving meanwhile waits for one short commit (each unit takes 1-3 ms here).
MAX_UNITS_PER_COMMIT = 8
# How long a writer waits for another process's write lock before it fails.
BUSY_TIMEOUT_MS = 30_000


class SqliteDatabase(Database):
    """The `Database` on a SQLite file (`sqlite:///path/to/file.db`).

    An in-memory database (`sqlite://`) has a single connection: its reads queue on the
    writer thread with the writes (no other process can lock it).
    """

    dialect = "sqlite"

    def __init__(self, url: str, *, echo: bool = False) -> None:
        parsed = make_url(url).set(drivername="sqlite+pysqlite")
        self.path: Path | None = None
        if parsed.database and parsed.database != ":memory:":
            self.path = Path(parsed.database)
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = _ConnectionThread(_engine(parsed, echo=echo, writes=True), "sqlite")
        self._reader: _ConnectionThread | None = None
        if self.path is not None:
            self._reader = _ConnectionThread(
                _engine(parsed, echo=echo, writes=False), "sqlite-reader"
            )
        # Units of work waiting for the writer thread, taken together by `_drain`.
        self._queue: list[_Unit] = []
        self._urgent: list[_Unit] = []
        self._queue_lock = threading.Lock()
        self._lock_file: IO[str] | None = None
        self._disposed = False

    @property
    def migrates_at_start(self) -> bool:
        return True  # one command sets up and runs the service

    async def run(
        self, work: Callable[[Session], T], *, durable: bool = True, urgent: bool = False
    ) -> T:
        if self._disposed:
            raise RuntimeError("the database has been disposed")
        loop = asyncio.get_running_loop()
        unit = _Unit(work=work, durable=durable, loop=loop, future=loop.create_future())
        with self._queue_lock:
            (self._urgent if urgent else self._queue).append(unit)
        self._writer.submit(self._drain)
        result: T = await unit.future
        return result

    async def read(self, work: Callable[[Session], T]) -> T:
        if self._disposed:
            raise RuntimeError("the database has been disposed")
        if self._reader is None:  # in memory: the writer's connection is the only one
            return await self.run(work, durable=False)
        reader = self._reader
        return await reader.call(lambda: _read_alone(reader.connection(), work))

    def _drain(self) -> None:
        """On the writer thread: run every unit of work waiting now in one transaction.

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
        outcomes: list[tuple[bool, Any]] = []
        durable = any(unit.durable for unit in units)
        try:
            connection = self._writer.connection()
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
            self._writer.drop_connection()  # whatever state it is in, start afresh
        for unit, (ok, value) in zip(units, outcomes, strict=True):
            unit.loop.call_soon_threadsafe(_settle, unit.future, ok, value)

    def hold_single_scheduler(self) -> None:
        """Take the file's scheduler lock, so a second `incident serve` on the same file is
        refused (Conflict, naming the holder) instead of firing steps twice. Released when
        this process exits or `dispose` runs."""
        if self.path is None or self._lock_file is not None:
            return
        lock = self.path.with_name(self.path.name + ".lock")
        handle = lock.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise Conflict(
                f"{self.path} is already served by {holder}: SQLite allows one scheduler per "
                "file. Stop that one, or run replicas on PostgreSQL "
                "(INCIDENT_DATABASE_URL=postgresql+asyncpg://...)."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        self._lock_file = handle

    async def migrate(self) -> list[str]:
        from incident.adapters.database import migrate

        def upgrade() -> list[str]:
            # A connection of its own: Alembic runs its own transactions on it.
            with self._writer.engine.connect() as connection:
                done = migrate.upgrade(connection)
                connection.commit()
                return done

        return await self._writer.call(upgrade)

    async def schema_revision(self) -> str | None:
        from incident.adapters.database import migrate

        thread = self._reader or self._writer

        def current() -> str | None:
            # A connection of its own, closed (its read ended) when done.
            with thread.engine.connect() as connection:
                return migrate.current(connection)

        return await thread.call(current)

    async def dispose(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # closing the file releases the lock
            self._lock_file = None
        if self._disposed:
            return
        self._disposed = True
        for thread in (self._writer, self._reader):
            if thread is not None:
                await thread.close()


class _ConnectionThread:
    """A thread and the connection it keeps between units of work (checking one out of
    the pool and back for each costs a tenth of a declaration). Only its thread uses it."""

    def __init__(self, engine: Engine, name: str) -> None:
        self.engine = engine
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._connection: Connection | None = None

    def submit(self, job: Callable[[], None]) -> None:
        self._executor.submit(job)

    async def call(self, job: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, job)

    def connection(self) -> Connection:
        """On the thread: its connection, opened on first use or after a failure."""
        current = self._connection
        if current is None or current.closed or current.invalidated:
            self.drop_connection()
            current = self._connection = self.engine.connect()
        return current

    def drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception:  # a broken connection is dropped either way
                connection.invalidate()

    async def close(self) -> None:
        def close_here() -> None:
            self.drop_connection()
            self.engine.dispose()

        await self.call(close_here)
        self._executor.shutdown(wait=True)


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


def _read_alone(connection: Connection, work: Callable[[Session], T]) -> T:
    """On the reader thread: `work` in a deferred transaction, ended by a rollback (it
    cannot have written anything: the connection is query_only)."""
    transaction = connection.begin()
    try:
        return _run_work(connection, work)
    finally:
        transaction.rollback()


def _run_work(connection: Connection, work: Callable[[Session], T]) -> T:
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


def _engine(url: URL, *, echo: bool, writes: bool) -> Engine:
    """An engine on the file: the writer's (its transactions take the write lock as they
    begin) or the reader's (deferred transactions on a connection that cannot write)."""
    engine = create_sync_engine(
        url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30}
    )

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Our own transaction control (below) instead of the driver's implicit one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")  # readers and the writer do not block
        # FULL: a committed step occurrence survives a power cut, not only a crash.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        if not writes:
            cursor.execute("PRAGMA query_only=ON")  # a read unit that writes fails loudly
        cursor.close()

    # Each transaction begins on the driver: through SQLAlchemy the statement costs five
    # times as much.
    begin = "BEGIN IMMEDIATE" if writes else "BEGIN DEFERRED"

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.connection.driver_connection.execute(begin)

    return engine
