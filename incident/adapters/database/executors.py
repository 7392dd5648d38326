"""How a transaction runs its prebuilt statements, chosen once per transaction by database.

SQLite's go straight to the sqlite3 driver (sqlite_driver.py: a tenth of SQLAlchemy's cost
per statement); PostgreSQL's through SQLAlchemy, since each is a network round trip anyway.
Statements built for one call (a search with its filters) always go through SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import Connection
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

from incident.adapters.database import statements
from incident.adapters.database.sqlite_driver import SqliteDriver
from incident.adapters.database.statements import InsertInto


class StatementExecutor(Protocol):
    """Runs prebuilt statements (statements.py) in one transaction."""

    def rows(self, statement: Executable, params: Mapping[str, Any]) -> Sequence[Any]:
        """The statement's rows, with attribute access by column name ([] for a write
        without RETURNING)."""
        ...

    def run_many(self, statement: Executable, many: Sequence[Mapping[str, Any]]) -> None:
        """Execute a write once per parameter set (each with the same names)."""
        ...

    def insert(self, into: InsertInto, values: Mapping[str, Any]) -> int:
        """Insert one row; its id."""
        ...

    def insert_many(self, into: InsertInto, rows: Sequence[Mapping[str, Any]]) -> None: ...


class SqlAlchemyExecutor:
    """Prebuilt statements through SQLAlchemy's Connection (PostgreSQL)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def rows(self, statement: Executable, params: Mapping[str, Any]) -> Sequence[Any]:
        result = self._connection.execute(statement, params)
        return list(result) if result.returns_rows else []

    def run_many(self, statement: Executable, many: Sequence[Mapping[str, Any]]) -> None:
        if many:
            self._connection.execute(statement, list(many))

    def insert(self, into: InsertInto, values: Mapping[str, Any]) -> int:
        return int(self._connection.execute(into.returning_id, values).scalar_one())

    def insert_many(self, into: InsertInto, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            self._connection.execute(into.statement, list(rows))


def executor_for(connection: Connection) -> StatementExecutor:
    """The executor for a transaction on `connection`, by its database."""
    if connection.dialect.name == "sqlite":
        return SqliteDriver(connection)
    return SqlAlchemyExecutor(connection)


class TransactionRows:
    """What every part of a `SqlTransaction` works with, chosen once as it begins.

    Prebuilt statements run through `self._execute`, the executor for this transaction's
    database (on SQLite: the driver itself); the statements that differ by database come
    from `self._dialect`. Statements built for one call go through the session's
    connection. Core statements, not the ORM: it adds nothing here but time (see
    bench/README.md).
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self._connection = session.connection()
        self._execute = executor_for(self._connection)
        self._dialect = statements.for_dialect(self._connection.dialect.name)
