"""Database engines: SQLite (the embedded default) and PostgreSQL, set up for our access pattern."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlmodel import SQLModel

from incident.adapters import tables  # noqa: F401  (registers the tables on the metadata)


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """An async engine for `url`; SQLite files get WAL, a busy timeout and write-first locking."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})
        _sqlite_write_first(engine)
        return engine
    return create_async_engine(url, echo=echo, pool_pre_ping=True)


def _sqlite_write_first(engine: AsyncEngine) -> None:
    # Every transaction here may write, and SQLite refuses (rather than waits) when a
    # reader tries to become a writer while another writer is active. BEGIN IMMEDIATE
    # takes the write lock up front so transactions queue on the busy timeout instead.
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


async def create_schema(engine: AsyncEngine) -> None:
    """Create any missing tables (idempotent)."""
    async with engine.begin() as connection:
        await connection.run_sync(SQLModel.metadata.create_all)
