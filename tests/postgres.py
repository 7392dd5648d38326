"""A real PostgreSQL for the tests: a new database for each test, dropped afterwards.

The server is INCIDENT_TEST_POSTGRES (default postgresql+asyncpg://postgres@127.0.0.1:5432/
postgres: trust auth, user postgres). Without one the tests that need it are skipped, saying
how to enable them; with CI=true they fail instead, since CI must run them.

Migrated databases are copies of a template migrated once per test session (CREATE DATABASE
... TEMPLATE): a copy takes a few milliseconds where migrating takes a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

POSTGRES = os.environ.get(
    "INCIDENT_TEST_POSTGRES", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)

_reachable: bool | None = None
_template: str | None = None


def url_of(name: str) -> str:
    """The URL of database `name` on the test server."""
    return POSTGRES.rsplit("/", 1)[0] + f"/{name}"


async def require_postgres() -> None:
    """Skip the test (fail it in CI) when no PostgreSQL is reachable."""
    global _reachable  # noqa: PLW0603 (asked once per session)
    if _reachable is None:
        engine = create_async_engine(POSTGRES)
        try:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            _reachable = True
        except Exception:
            _reachable = False
        finally:
            await engine.dispose()
    if _reachable:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES}; CI must run these tests")
    pytest.skip(
        f"no PostgreSQL at {POSTGRES}: start one (trust auth, user postgres) or set "
        "INCIDENT_TEST_POSTGRES=postgresql+asyncpg://user@host:port/db to run these tests"
    )


async def _admin(sql: str) -> None:
    admin = create_async_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(sql))
    finally:
        await admin.dispose()


async def _migrated_template() -> str:
    global _template  # noqa: PLW0603 (made once per session)
    if _template is None:
        from incident.adapters.database.databases import open_database

        name = f"incident_template_{uuid.uuid4().hex[:12]}"
        await _admin(f'CREATE DATABASE "{name}"')
        database = open_database(url_of(name))
        try:
            await database.migrate()
        finally:
            await database.dispose()
        _template = name
    return _template


@contextlib.asynccontextmanager
async def postgres_database(*, migrated: bool = False) -> AsyncIterator[str]:
    """A new PostgreSQL database for one test (dropped afterwards): empty, or `migrated` to
    the newest schema."""
    await require_postgres()
    name = f"incident_test_{uuid.uuid4().hex[:12]}"
    template = await _migrated_template() if migrated else None
    await _admin(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    try:
        yield url_of(name)
    finally:
        await _admin(f'DROP DATABASE "{name}" WITH (FORCE)')


def drop_template() -> None:
    """At the end of the session: drop the migrated template, if one was made."""
    global _template
    if _template is None:
        return
    name, _template = _template, None
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
