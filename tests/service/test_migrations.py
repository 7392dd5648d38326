"""Migrations: from an empty database and from a database made before migrations existed,
on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.ext.asyncio import create_async_engine

from incident.adapters.database import migrate
from incident.adapters.database.databases import open_database
from incident.adapters.database.tables import metadata
from tests.postgres import postgres_database

T = TypeVar("T")


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of each kind: a SQLite file, and a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    async with postgres_database() as url:
        yield url


async def _with_connection(url: str, work: Callable[[Connection], T]) -> T:
    """Run a synchronous `work` on a connection to `url` (asyncpg or SQLite)."""
    if url.startswith("sqlite"):
        engine = create_engine(url)
        try:
            with engine.connect() as connection:
                result = work(connection)
                connection.commit()
                return result
        finally:
            engine.dispose()
    async_engine = create_async_engine(url)
    try:
        async with async_engine.connect() as async_connection:
            result = await async_connection.run_sync(work)
            await async_connection.commit()
            return result
    finally:
        await async_engine.dispose()


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def _migrated(url: str) -> list[str]:
    database = open_database(url)
    try:
        return await database.migrate()
    finally:
        await database.dispose()


async def test_an_empty_database_is_migrated_to_the_models(database_url: str) -> None:
    url = database_url
    assert await _migrated(url) == [f"upgraded empty database -> {migrate.head()}"]
    assert await _migrated(url) == []  # idempotent
    assert await _with_connection(url, migrate.current) == migrate.head()
    assert await _with_connection(url, _differences) == []


# step_occurrences as databases made before migrations had it: an incident's steps.
_OLD_OCCURRENCES = """
CREATE TABLE step_occurrences (
    id {serial} PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    step_id VARCHAR(80) NOT NULL,
    occurrence INTEGER NOT NULL,
    action VARCHAR(40) NOT NULL,
    target VARCHAR,
    due_at {instant} NOT NULL,
    not_before {instant},
    run_at {instant} NOT NULL,
    state VARCHAR(12) NOT NULL,
    attempts INTEGER NOT NULL,
    lease_owner VARCHAR,
    lease_expires_at {instant},
    started_at {instant},
    finished_at {instant},
    outcome TEXT,
    last_error TEXT,
    CONSTRAINT uq_occurrence UNIQUE (incident_id, step_id, occurrence)
)
"""


# outbox and vendor_refs as databases made before migrations had them: an incident's.
_OLD_OUTBOX = """
CREATE TABLE outbox (
    id {serial} PRIMARY KEY,
    idempotency_key VARCHAR(300) NOT NULL,
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    created_at {instant} NOT NULL,
    channel VARCHAR(20) NOT NULL,
    destination VARCHAR NOT NULL,
    subject VARCHAR NOT NULL,
    body TEXT NOT NULL,
    UNIQUE (idempotency_key)
)
"""
_OLD_VENDOR_REFS = """
CREATE TABLE vendor_refs (
    id {serial} PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    vendor VARCHAR(40) NOT NULL,
    name VARCHAR(80) NOT NULL,
    external_id VARCHAR(200) NOT NULL,
    created_at {instant} NOT NULL,
    CONSTRAINT uq_vendor_ref UNIQUE (incident_id, vendor, name)
)
"""


def _add_effects(connection: Connection, *, refs: bool = True) -> None:
    """Incident 1's kept message, and (`refs`) its e-mail's reference."""
    connection.execute(
        text(
            "INSERT INTO outbox (idempotency_key, incident_id, created_at, channel, "
            "destination, subject, body) VALUES ('inc-1/notify/1#email:cfo@example.com', 1, "
            "'2026-01-01 00:05:00', 'email', 'email:cfo@example.com', 'P2', 'We are on it')"
        )
    )
    if refs:
        connection.execute(
            text(
                "INSERT INTO vendor_refs (incident_id, vendor, name, external_id, created_at) "
                "VALUES (1, 'smtp', 'sent-1', '<m1@example.com>', '2026-01-01 00:05:00')"
            )
        )


def _effects(connection: Connection) -> list[tuple[object, ...]]:
    """Every kept message's and vendor reference's subject, by table."""
    rows = connection.execute(
        text(
            "SELECT 'outbox', subject_kind, subject_id, idempotency_key FROM outbox "
            "UNION ALL SELECT 'vendor_refs', subject_kind, subject_id, name FROM vendor_refs "
            "ORDER BY 1, 2, 4"
        )
    )
    return [tuple(row) for row in rows]


def _add_occurrence(connection: Connection, step_id: str, state: str) -> None:
    connection.execute(
        text(
            "INSERT INTO step_occurrences (incident_id, step_id, occurrence, action, due_at, "
            "run_at, state, attempts) VALUES (1, :step, 1, 'post', '2026-01-01 00:10:00', "
            "'2026-01-01 00:10:00', :state, 0)"
        ),
        {"step": step_id, "state": state},
    )


def _occurrences(connection: Connection) -> list[tuple[object, ...]]:
    rows = connection.execute(
        text(
            "SELECT subject_kind, subject_id, step_id, state FROM step_occurrences ORDER BY step_id"
        )
    )
    return [tuple(row) for row in rows]


def _previous_release(connection: Connection, *, vendor_refs: bool = False) -> None:
    """The schema of a database made before migrations: create_all of the tables as they
    were (no vendor_refs unless `vendor_refs`, no alert_groups; incidents without category
    and last_manual_update_at; step occurrences and the outbox by incident), with an
    incident, its steps and its kept message in it."""
    metadata.create_all(connection)
    for table in ("vendor_refs", "alert_groups", "step_occurrences", "outbox"):
        connection.execute(text(f"DROP TABLE {table}"))
    instant = "DATETIME" if connection.dialect.name == "sqlite" else "TIMESTAMP WITH TIME ZONE"
    serial = "INTEGER NOT NULL" if connection.dialect.name == "sqlite" else "SERIAL"
    old_tables = [_OLD_OCCURRENCES, _OLD_OUTBOX, *([_OLD_VENDOR_REFS] if vendor_refs else [])]
    for old_table in old_tables:
        connection.execute(text(old_table.format(instant=instant, serial=serial)))
    connection.execute(text("CREATE INDEX ix_occurrence_claim ON step_occurrences (state, run_at)"))
    connection.execute(
        text("CREATE INDEX ix_occurrence_incident ON step_occurrences (incident_id, state)")
    )
    connection.execute(text("CREATE INDEX ix_outbox_incident_id ON outbox (incident_id)"))
    for column in ("category", "last_manual_update_at"):
        connection.execute(text(f"ALTER TABLE incidents DROP COLUMN {column}"))
    connection.execute(
        text(
            "INSERT INTO incidents (title, severity, status, service, impact, declared_at, "
            "declared_by) VALUES ('Old one', 'P2', 'investigating', 'api', '', "
            "'2026-01-01 00:00:00', 'dana')"
        )
    )
    _add_occurrence(connection, "customer-update", "pending")
    _add_occurrence(connection, "page-primary", "done")
    _add_effects(connection, refs=vendor_refs)


async def test_a_database_from_before_migrations_is_adopted_and_upgraded(
    database_url: str,
) -> None:
    url = database_url
    await _with_connection(url, _previous_release)
    done = await _migrated(url)
    assert "added table vendor_refs" in done and "added table alert_groups" in done
    assert "added column incidents.category" in done
    assert "added column incidents.last_manual_update_at" in done
    assert done[-1] == f"adopted the pre-migration database at {migrate.head()}"
    assert await _with_connection(url, migrate.current) == migrate.head()
    assert await _with_connection(url, _differences) == []
    row = await _with_connection(
        url, lambda c: tuple(c.execute(text("SELECT title, category FROM incidents")).one())
    )
    assert row == ("Old one", "general")  # kept, and given the default
    assert "moved step_occurrences.incident_id to subject_kind, subject_id" in done
    assert await _with_connection(url, _occurrences) == [
        ("incident", 1, "customer-update", "pending"),
        ("incident", 1, "page-primary", "done"),
    ]
    assert "moved outbox.incident_id to subject_kind, subject_id" in done
    assert await _with_connection(url, _effects) == [
        ("outbox", "incident", 1, "inc-1/notify/1#email:cfo@example.com"),
    ]


async def test_an_adopted_database_keeps_its_vendor_references_as_the_incidents(
    database_url: str,
) -> None:
    url = database_url
    await _with_connection(url, lambda c: _previous_release(c, vendor_refs=True))
    done = await _migrated(url)
    assert "moved vendor_refs.incident_id to subject_kind, subject_id" in done
    assert "added table vendor_refs" not in done
    assert await _with_connection(url, _differences) == []
    assert await _with_connection(url, _effects) == [
        ("outbox", "incident", 1, "inc-1/notify/1#email:cfo@example.com"),
        ("vendor_refs", "incident", 1, "sent-1"),
    ]


def _release_0001(connection: Connection) -> None:
    """The previous release's schema (revision 0001) with an incident and its timeline."""
    from alembic import command

    command.upgrade(migrate._config(connection), "0001")
    connection.execute(
        text(
            "INSERT INTO incidents (title, severity, status, service, category, impact, "
            "declared_at, declared_by) VALUES ('Before status pages', 'P1', 'resolved', "
            "'api', 'general', '', '2026-01-01 00:00:00', 'dana')"
        )
    )
    connection.execute(
        text(
            "INSERT INTO timeline (incident_id, at, kind, actor, text, public, data) "
            "VALUES (1, '2026-01-01 00:05:00', 'customer_update', 'dana', 'We are on it', "
            "true, '{}')"
        )
    )


async def test_the_previous_release_is_upgraded_with_its_data(database_url: str) -> None:
    url = database_url
    await _with_connection(url, _release_0001)
    assert await _with_connection(url, migrate.current) == "0001"
    done = await _migrated(url)
    assert done == [f"upgraded 0001 -> {migrate.head()}"]
    assert await _with_connection(url, _differences) == []
    row = await _with_connection(
        url,
        lambda c: tuple(
            c.execute(text("SELECT title, public_title, components FROM incidents")).one()
        ),
    )
    assert row[:2] == ("Before status pages", None)
    assert json.loads(row[2]) == {} if isinstance(row[2], str) else row[2] == {}


def _release_0003(connection: Connection) -> None:
    """The previous release (revision 0003): an incident with steps done and to come."""
    from alembic import command

    command.upgrade(migrate._config(connection), "0003")
    connection.execute(
        text(
            "INSERT INTO incidents (title, severity, status, service, category, impact, "
            "declared_at, declared_by, components) VALUES ('Steps under way', 'P2', "
            "'investigating', 'api', 'general', '', '2026-01-01 00:00:00', 'dana', '{}')"
        )
    )
    _add_occurrence(connection, "customer-update", "pending")
    _add_occurrence(connection, "page-primary", "done")


async def test_the_previous_release_keeps_its_steps_as_the_incidents_subjects(
    database_url: str,
) -> None:
    url = database_url
    await _with_connection(url, _release_0003)
    done = await _migrated(url)
    assert done == [f"upgraded 0003 -> {migrate.head()}"]
    assert await _with_connection(url, _differences) == []
    assert await _with_connection(url, _occurrences) == [
        ("incident", 1, "customer-update", "pending"),
        ("incident", 1, "page-primary", "done"),
    ]

    def another_kind(connection: Connection) -> None:
        # No foreign key to incidents now: a case 99 has steps of its own, and the
        # same step id of incident 1 is another occurrence.
        connection.execute(
            text(
                "INSERT INTO step_occurrences (subject_kind, subject_id, step_id, occurrence, "
                "action, due_at, run_at, state, attempts) VALUES ('case', 99, "
                "'customer-update', 1, 'post', '2026-01-01 00:10:00', '2026-01-01 00:10:00', "
                "'pending', 0)"
            )
        )

    await _with_connection(url, another_kind)

    def back_to_0003(connection: Connection) -> list[tuple[object, ...]]:
        from alembic import command

        command.downgrade(migrate._config(connection), "0003")
        rows = connection.execute(
            text("SELECT incident_id, step_id, state FROM step_occurrences ORDER BY step_id")
        )
        return [tuple(row) for row in rows]

    # Downgrading keeps the incidents' steps (the case's cannot go back).
    assert await _with_connection(url, back_to_0003) == [
        (1, "customer-update", "pending"),
        (1, "page-primary", "done"),
    ]


def _release_0004(connection: Connection) -> None:
    """The previous release (revision 0004): an incident with a kept message and an
    e-mail's reference."""
    from alembic import command

    command.upgrade(migrate._config(connection), "0004")
    connection.execute(
        text(
            "INSERT INTO incidents (title, severity, status, service, category, impact, "
            "declared_at, declared_by, components) VALUES ('Mail sent', 'P2', "
            "'investigating', 'api', 'general', '', '2026-01-01 00:00:00', 'dana', '{}')"
        )
    )
    _add_effects(connection)


def _other_kinds_effects(connection: Connection) -> None:
    # No foreign key to incidents now: case 99 keeps a message and a reference; case 1
    # remembers one of the same vendor and name as incident 1's, apart from it.
    connection.execute(
        text(
            "INSERT INTO outbox (idempotency_key, subject_kind, subject_id, created_at, "
            "channel, destination, subject, body) VALUES ('case-99/notify/1#email:a@example.com', "
            "'case', 99, '2026-01-01 00:06:00', 'email', 'email:a@example.com', 'Case', 'Hi')"
        )
    )
    for case, message_id in ((1, "<c1@example.com>"), (99, "<c99@example.com>")):
        connection.execute(
            text(
                "INSERT INTO vendor_refs (subject_kind, subject_id, vendor, name, external_id, "
                "created_at) VALUES ('case', :case, 'smtp', 'sent-1', :message_id, "
                "'2026-01-01 00:06:00')"
            ),
            {"case": case, "message_id": message_id},
        )


def _back_to_0004(connection: Connection) -> list[tuple[object, ...]]:
    from alembic import command
    from sqlalchemy import inspect

    command.downgrade(migrate._config(connection), "0004")
    inspector = inspect(connection)
    for table in ("outbox", "vendor_refs"):  # incident_id refers to incidents again
        keys = inspector.get_foreign_keys(table)
        assert [(k["constrained_columns"], k["referred_table"]) for k in keys] == [
            (["incident_id"], "incidents")
        ]
    rows = connection.execute(
        text(
            "SELECT 'outbox', incident_id, idempotency_key FROM outbox UNION ALL "
            "SELECT 'vendor_refs', incident_id, external_id FROM vendor_refs ORDER BY 1"
        )
    )
    return [tuple(row) for row in rows]


async def test_the_previous_release_keeps_its_messages_and_references_as_the_incidents(
    database_url: str,
) -> None:
    url = database_url
    await _with_connection(url, _release_0004)
    done = await _migrated(url)
    assert done == [f"upgraded 0004 -> {migrate.head()}"]
    assert await _with_connection(url, _differences) == []
    assert await _with_connection(url, _effects) == [
        ("outbox", "incident", 1, "inc-1/notify/1#email:cfo@example.com"),
        ("vendor_refs", "incident", 1, "sent-1"),
    ]
    await _with_connection(url, _other_kinds_effects)
    assert len(await _with_connection(url, _effects)) == 5
    # Downgrading keeps the incident's message and reference (the case's cannot go back),
    # and upgrading again gives the same schema.
    assert await _with_connection(url, _back_to_0004) == [
        ("outbox", 1, "inc-1/notify/1#email:cfo@example.com"),
        ("vendor_refs", 1, "<m1@example.com>"),
    ]
    assert await _migrated(url) == [f"upgraded 0004 -> {migrate.head()}"]
    assert await _with_connection(url, _differences) == []
