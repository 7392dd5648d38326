"""The database seam: where units of work run, one interface for SQLite and PostgreSQL.

A unit of work is a plain synchronous function of a Session, run in one transaction, so a
whole transaction costs one hand-off between the event loop and the database however many
statements it runs. `open_database(url)` picks the implementation:

- `SqliteDatabase` (sqlite.py): one writer thread with group commit and an urgent queue,
  and a reader thread whose transactions never wait for a writer, not even another
  process's;
- `PostgresDatabase` (postgres.py): asyncpg through SQLAlchemy's async engine and its pool.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from incident.domain.errors import Conflict

T = TypeVar("T")

SQLITE_PREFIXES = ("sqlite://", "sqlite+pysqlite://", "sqlite+aiosqlite://")
POSTGRES_PREFIXES = ("postgresql+asyncpg://",)


class SchemaMismatch(Conflict):
    """The database's schema is not this release's (PostgreSQL, not migrated at start):
    the message says what to run."""


class Database(ABC):
    """Where units of work run.

    `await database.run(work)` runs `work` in a transaction that may write: committed if
    it returns, rolled back if it raises. `await database.read(work)` runs work that only
    reads: in a read-only transaction that waits for no writer (and fails if it writes).
    """

    dialect: str  # SQLAlchemy's name for it: "sqlite" or "postgresql"

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    @abstractmethod
    def migrates_at_start(self) -> bool:
        """Whether `ensure_schema` migrates by default (see there)."""

    @abstractmethod
    async def run(
        self, work: Callable[[Session], T], *, durable: bool = True, urgent: bool = False
    ) -> T:
        """Run `work` in one transaction: committed when it returns, rolled back if it raises.

        `durable=False` lets the commit return before it reaches the disk. Only for work
        whose loss in a power cut is harmless: a claim (the step then runs again, with the
        same idempotency key). The next durable commit makes it durable too.

        `urgent`: ahead of other waiting units, where units wait for each other (SQLite's
        writer thread): a declaration, a page.
        """

    @abstractmethod
    async def read(self, work: Callable[[Session], T]) -> T:
        """Run `work`, which only reads, in a read-only transaction: it sees what was
        committed before it began, a write in it fails, and it does not wait for writers
        (on SQLite, not even for another process holding the file's write lock)."""

    @abstractmethod
    async def migrate(self) -> list[str]:
        """Bring the schema to the newest migration (idempotent); returns what was done."""

    @abstractmethod
    async def schema_revision(self) -> str | None:
        """The schema revision the database is at (None: never migrated)."""

    @abstractmethod
    def hold_single_scheduler(self) -> None:
        """Make sure this process is the only scheduler where that is needed (SQLite: the
        file's lock, Conflict naming the holder if another has it); released by
        `dispose`. Nothing to do where replicas share the work through their claims."""

    @abstractmethod
    async def dispose(self) -> None:
        """Close every connection (and give up the scheduler lock). Safe to call twice."""

    async def create_schema(self) -> None:
        """Create or upgrade the schema: the migrations (kept for its callers' name)."""
        await self.migrate()

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
            migrate = self.migrates_at_start
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


def open_database(url: str, *, echo: bool = False) -> Database:
    """The database at `url`: SQLite (`sqlite:///path/to/file.db`) or PostgreSQL
    (`postgresql+asyncpg://...`). Nothing connects until the first unit of work."""
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        from incident.adapters.database.sqlite import SqliteDatabase

        return SqliteDatabase(url, echo=echo)
    if backend == "postgresql":
        from incident.adapters.database.postgres import PostgresDatabase

        return PostgresDatabase(url, echo=echo)
    supported = ", ".join(f"{prefix}..." for prefix in (*SQLITE_PREFIXES, *POSTGRES_PREFIXES))
    raise ValueError(f"{backend!r} databases are not supported; use one of {supported}")
