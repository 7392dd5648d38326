"""PostgreSQL: units of work through asyncpg, on SQLAlchemy's async engine and its pool.

Each unit runs with `AsyncSession.run_sync`: each statement is a network round trip anyway,
and the event loop stays free while it waits. Concurrent units are concurrent transactions;
replicas share the work through their claims (`FOR UPDATE SKIP LOCKED`), so there is no
queue and no single-scheduler lock here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import Session

from incident.adapters.database.databases import Database

T = TypeVar("T")


class PostgresDatabase(Database):
    """The `Database` on PostgreSQL (`postgresql+asyncpg://...`)."""

    dialect = "postgresql"

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self._engine: AsyncEngine = create_async_engine(url, echo=echo, pool_pre_ping=True)
        # The same pool, its transactions begun READ ONLY (asyncpg's `BEGIN READ ONLY`: no
        # extra round trip); the setting is reset when a connection goes back to the pool.
        self._read_only = self._engine.execution_options(postgresql_readonly=True)

    @property
    def migrates_at_start(self) -> bool:
        return False  # the operator's to move: several releases may share it in a rollout

    async def run(
        self, work: Callable[[Session], T], *, durable: bool = True, urgent: bool = False
    ) -> T:
        def relaxed(session: Session) -> T:
            session.execute(text("SET LOCAL synchronous_commit TO OFF"))
            return work(session)

        # `urgent` has nothing to go ahead of: units do not queue for each other here.
        async with AsyncSession(self._engine, expire_on_commit=False) as session, session.begin():
            return await session.run_sync(work if durable else relaxed)

    async def read(self, work: Callable[[Session], T]) -> T:
        async with (
            AsyncSession(self._read_only, expire_on_commit=False) as session,
            session.begin(),
        ):
            return await session.run_sync(work)

    async def migrate(self) -> list[str]:
        from incident.adapters.database import migrate

        async with self._engine.connect() as connection:
            done = await connection.run_sync(migrate.upgrade)
            await connection.commit()
            return done

    async def schema_revision(self) -> str | None:
        from incident.adapters.database import migrate

        async with self._engine.connect() as connection:
            return await connection.run_sync(migrate.current)

    def hold_single_scheduler(self) -> None:
        return None  # replicas share the work through their claims

    async def dispose(self) -> None:
        await self._engine.dispose()
