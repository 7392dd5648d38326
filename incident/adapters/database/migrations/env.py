"""Alembic's environment: always handed a connection by incident.adapters.database.migrate."""

from __future__ import annotations

from alembic import context

from incident.adapters.database.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by copying tables
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
