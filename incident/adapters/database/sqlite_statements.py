"""Prebuilt SQLAlchemy Core statements run straight on the sqlite3 driver.

SQLAlchemy costs about ten times what SQLite itself does for the small statements the
scheduler runs (a row by id: ~100 us against ~9 us here; bench/README.md), and a fired step
runs a dozen of them. On SQLite the store therefore compiles each statement once (per set
of parameter names) and then runs it on the driver's cursor, converting values in and out
with SQLAlchemy's own bind and result processors, so the stored and returned values are
the very ones SQLAlchemy would give (tests/service/test_sqlite_rows.py checks this).

A statement with IN lists is compiled once for each length of its lists, up to 16 items;
longer lists go through SQLAlchemy. PostgreSQL always runs through SQLAlchemy (asyncpg).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import JSON, Connection, Table, exc
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement, Executable

from incident.adapters.database.tables import UTCDateTime

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # bind names in placeholder order
    sources: Mapping[str, tuple[str, int]]  # expanded name -> (IN list's name, position)
    defaults: Mapping[str, Any]  # values bound in the statement itself
    binders: tuple[Processor, ...]
    row_type: Callable[..., Any] | None  # None: no result rows
    readers: tuple[Processor, ...]


class SqliteStatements:
    """Runs Core statements on a SQLite connection's driver, compiled once each."""

    def __init__(self) -> None:
        # (statement, parameter names) -> its compiled form; per list lengths when it has
        # expanding IN parameters (each length renders its own SQL).
        self._compiled: dict[tuple[int, tuple[str, ...]], _Template] = {}

    def rows(
        self, connection: Connection, statement: Executable, params: Mapping[str, Any]
    ) -> list[Any]:
        """The statement's rows, with attribute access by column name ([] for none)."""
        if _long_lists(params):
            result = connection.execute(statement, params)
            return list(result) if result.returns_rows else []
        compiled = self._compile(connection.dialect, statement, params)
        cursor = _cursor(connection)
        with _as_sqlalchemy_errors(compiled.sql, params):
            cursor.execute(compiled.sql, _bind(compiled, params))
            fetched = cursor.fetchall()
        if compiled.row_type is None:
            return []
        return [_read(compiled, raw) for raw in fetched]

    def run_many(
        self,
        connection: Connection,
        statement: Executable,
        many: Sequence[Mapping[str, Any]],
    ) -> None:
        """Execute a statement once per parameter set (each with the same names)."""
        if not many:
            return
        if any(_long_lists(params) for params in many):
            connection.execute(statement, list(many))
            return
        compiled = self._compile(connection.dialect, statement, many[0])
        with _as_sqlalchemy_errors(compiled.sql, many):
            _cursor(connection).executemany(compiled.sql, [_bind(compiled, p) for p in many])

    def _compile(
        self, dialect: Dialect, statement: Executable, params: Mapping[str, Any]
    ) -> _Compiled:
        keys = tuple(params)
        template = self._compiled.get((id(statement), keys))
        if template is None:
            compiled = cast(ClauseElement, statement).compile(
                dialect=dialect, column_keys=list(keys)
            )
            template = _Template(statement, compiled)
            self._compiled[(id(statement), keys)] = template
        # Callers pass prebuilt module-level statements; the template holds its statement,
        # so no other statement can ever be given the same id while it is cached.
        assert template.statement is statement
        return template.for_params(dialect, params)


class _Template:
    """One compiled statement, and its SQL for each length of its IN lists."""

    def __init__(self, statement: Executable, compiled: Any) -> None:
        self.statement = statement
        self.compiled = compiled
        self.expanding = tuple(n for n, b in compiled.binds.items() if b.expanding)
        self._by_lengths: dict[tuple[int, ...], _Compiled] = {}

    def for_params(self, dialect: Dialect, params: Mapping[str, Any]) -> _Compiled:
        lengths = tuple(len(self._value(name, params)) for name in self.expanding)
        found = self._by_lengths.get(lengths)
        if found is None:
            found = self._by_lengths[lengths] = self._build(dialect, params)
        return found

    def _binder(
        self, dialect: Dialect, name: str, sources: Mapping[str, tuple[str, int]]
    ) -> Processor:
        bind = self.compiled.binds[sources[name][0] if name in sources else name]
        if isinstance(bind.type, UTCDateTime):
            return sqlite_instant  # the same text as SQLAlchemy's, without its layers
        processor: Processor = bind.type._cached_bind_processor(dialect)
        return processor

    def _value(self, name: str, params: Mapping[str, Any]) -> Any:
        return params[name] if name in params else self.compiled.binds[name].effective_value

    def _build(self, dialect: Dialect, params: Mapping[str, Any]) -> _Compiled:
        compiled = self.compiled
        state = compiled.construct_expanded_state(dict(params))
        names = tuple(state.positiontup or ())
        # Each expanded name (b_states_1, ...) read from its list by position.
        sources: dict[str, tuple[str, int]] = {
            expanded: (name, index)
            for name, expanded_names in state.parameter_expansion.items()
            for index, expanded in enumerate(expanded_names)
        }
        columns = getattr(compiled, "_result_columns", None) or []
        row_type: Callable[..., Any] | None = None
        readers: tuple[Processor, ...] = ()
        if columns:
            row_type = _row_type([c[0] for c in columns])
            readers = tuple(_reader(dialect, c[3]) for c in columns)
        return _Compiled(
            sql=state.statement,
            names=names,
            sources=sources,
            defaults={
                name: bind.effective_value
                for name, bind in compiled.binds.items()
                if name not in params
            },
            binders=tuple(self._binder(dialect, name, sources) for name in names),
            row_type=row_type,
            readers=readers,
        )


# IN lists longer than this go through SQLAlchemy: compiling one form per length would
# grow the cache with every length seen (the status page's reads list every incident).
LONGEST_COMPILED_LIST = 16


def _long_lists(params: Mapping[str, Any]) -> bool:
    return any(
        isinstance(value, list | tuple) and len(value) > LONGEST_COMPILED_LIST
        for value in params.values()
    )


def _row_type(fields: list[str]) -> Callable[..., Any]:
    """Rows with attribute access, like SQLAlchemy's, for the columns a statement returns."""
    return namedtuple("Row", fields, rename=True)


def _reader(dialect: Dialect, column_type: Any) -> Processor:
    if isinstance(column_type, UTCDateTime):
        return read_instant
    processor: Processor = column_type._cached_result_processor(dialect, None)
    return processor


@contextlib.contextmanager
def _as_sqlalchemy_errors(
    sql: str, params: Mapping[str, Any] | Sequence[Mapping[str, Any]]
) -> Iterator[None]:
    """The driver's errors as SQLAlchemy raises them (callers catch IntegrityError)."""
    try:
        yield
    except sqlite3.DatabaseError as error:
        raise exc.DBAPIError.instance(sql, params, error, sqlite3.DatabaseError) from error


def _cursor(connection: Connection) -> Any:
    raw = connection.connection.driver_connection
    assert raw is not None
    return raw.cursor()


def _bind(compiled: _Compiled, params: Mapping[str, Any]) -> tuple[Any, ...]:
    values = []
    for name, binder in zip(compiled.names, compiled.binders, strict=True):
        if name in params:
            value = params[name]
        elif name in compiled.sources:
            listed, index = compiled.sources[name]
            value = (params[listed] if listed in params else compiled.defaults[listed])[index]
        else:
            value = compiled.defaults[name]
        values.append(value if binder is None else binder(value))
    return tuple(values)


def _read(compiled: _Compiled, raw: Sequence[Any]) -> Any:
    assert compiled.row_type is not None
    return compiled.row_type(
        *(
            value if reader is None else reader(value)
            for value, reader in zip(raw, compiled.readers, strict=True)
        )
    )


class SqliteInsert:
    """An INSERT handed straight to the sqlite3 driver, each value converted as its column's
    SQLAlchemy type would (instants to naive UTC text, JSON to text).

    A declaration inserts an incident, a few timeline entries and a dozen occurrences; bound
    through SQLAlchemy's types they cost about three times as much (bench/README.md).
    """

    def __init__(self, table: Table, columns: Sequence[str] = ()) -> None:
        self.columns = tuple(columns) or tuple(c.name for c in table.columns if c.name != "id")
        marks = ", ".join("?" for _ in self.columns)
        self.sql = f"INSERT INTO {table.name} ({', '.join(self.columns)}) VALUES ({marks})"
        self._converters = tuple(_sqlite_converter(table.c[name].type) for name in self.columns)

    def row(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        pairs = zip(self.columns, self._converters, strict=True)
        return tuple(convert(values[name]) for name, convert in pairs)

    def one(self, connection: Connection, values: Mapping[str, Any]) -> int:
        """Insert one row; its id."""
        cursor = _cursor(connection)
        with _as_sqlalchemy_errors(self.sql, values):
            cursor.execute(self.sql, self.row(values))
        rowid: int = cursor.lastrowid
        return rowid

    def many(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        with _as_sqlalchemy_errors(self.sql, rows):
            _cursor(connection).executemany(self.sql, [self.row(r) for r in rows])


def _sqlite_converter(column_type: Any) -> Callable[[Any], Any]:
    if isinstance(column_type, UTCDateTime):
        return sqlite_instant
    if isinstance(column_type, JSON):
        return json.dumps
    return _as_is


def _as_is(value: Any) -> Any:
    return value


def read_instant(value: str | None) -> datetime | None:
    """What UTCDateTime reads back from SQLite's text: an aware UTC instant."""
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


def sqlite_instant(value: datetime | None) -> str | None:
    """An instant as UTCDateTime stores it on SQLite (SQLAlchemy's DATETIME text form)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: every *_at must be timezone-aware UTC")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
