"""Schema migrations with Alembic, for SQLite and PostgreSQL alike.

`upgrade(connection)` brings a database to the newest revision. A database made before
migrations existed (tables, no `alembic_version`) is adopted: what it lacks of the current
schema is added (tables, columns with their defaults, indexes), then it is stamped with
the newest revision. Every revision after the baseline must therefore be additions only
or say how to adopt: a revision module's `adopt(operations)`, run first, makes what it
changed (not added) for an adopted database (0004_subjects and 0005_subject_effects move
incident_id to the subject).
"""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.operations import Operations
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Connection, inspect, text
from sqlmodel import SQLModel

from incident.adapters.database.tables import metadata

BASELINE = "0001"
# pg_advisory_xact_lock's key for "migrating this database" (any constant; ours spells
# "incident").
MIGRATION_LOCK = 0x696E636964656E74


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", "incident.adapters.database:migrations")
    if connection is not None:  # env.py runs the migrations on it
        config.attributes["connection"] = connection
    return config


def head() -> str:
    script = ScriptDirectory.from_config(_config())
    revision = script.get_current_head()
    assert revision is not None
    return revision


def known(revision: str) -> bool:
    """Whether this release has the migration `revision` (a newer release's it has not)."""
    script = ScriptDirectory.from_config(_config())
    return any(r.revision == revision for r in script.walk_revisions())


def current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection) -> list[str]:
    """Upgrade to the newest revision; returns what was done, for the log.

    The caller commits. On PostgreSQL, a concurrent upgrade of the same database waits
    here until that commit (the advisory lock is the transaction's).
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    done = []
    tables = set(inspect(connection).get_table_names())
    if tables and "alembic_version" not in tables:
        # Adopted by additions up to the current models, so it is at head, not at the
        # baseline: replaying later revisions would add what it now has.
        done += _adopt(connection)
        command.stamp(_config(connection), "head")
        done.append(f"adopted the pre-migration database at {head()}")
    before = current(connection)
    command.upgrade(_config(connection), "head")
    after = current(connection)
    if before != after:
        done.append(f"upgraded {before or 'empty database'} -> {after}")
    return done


def _adopt(connection: Connection) -> list[str]:
    """Add what a pre-migrations database lacks. Only additions: nothing it holds is
    changed or dropped."""
    context = MigrationContext.configure(connection, opts={"compare_type": False})
    operations = Operations(context)
    done = []
    script = ScriptDirectory.from_config(_config())
    for revision in reversed(list(script.walk_revisions())):  # oldest first
        adopt = getattr(revision.module, "adopt", None)
        if adopt is not None:
            done += adopt(operations)
    for difference in compare_metadata(context, metadata):
        kind = difference[0] if isinstance(difference, tuple) else None
        if kind == "add_table":
            table = difference[1]
            table.create(connection)
            done.append(f"added table {table.name}")
        elif kind == "add_column":
            _, schema, table_name, column = difference
            default = _scalar_default(table_name, column)
            # The rows already there get the model's default (a NOT NULL column needs one).
            column = Column(
                column.name,
                column.type,
                nullable=column.nullable,
                server_default=default if not column.nullable else None,
            )
            with operations.batch_alter_table(table_name, schema=schema) as batch:
                batch.add_column(column)
            done.append(f"added column {table_name}.{column.name}")
        elif kind == "add_index":
            index = difference[1]
            index.create(connection)
            done.append(f"added index {index.name}")
    return done


def _scalar_default(table_name: str, column: Any) -> str | None:
    """The model's default for a column, as SQL text, for the rows already there."""
    default = getattr(column.default, "arg", None)
    if default is None:
        for model in SQLModel.__subclasses__():
            if getattr(model, "__tablename__", None) == table_name:
                field = model.model_fields.get(column.name)
                default = field.default if field is not None else None
    if isinstance(default, bool):
        return "1" if default else "0"
    if isinstance(default, int | float | str):
        return str(default)
    return None
