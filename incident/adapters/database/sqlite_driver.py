"""Prebuilt statements run straight on the sqlite3 driver: the store's fast path on SQLite.

SQLAlchemy costs about ten times what SQLite itself does for the small statements the
scheduler runs (a row by id: ~100 us against ~9 us here; bench/README.md), and a fired step
runs a dozen of them. On SQLite a transaction's prebuilt statements (statements.py) are
therefore compiled once (per set of parameter names, and per length of their IN lists) and
run on the driver's cursor, converting values in and out with SQLAlchemy's own bind and
result processors, so the stored and returned values are the very ones SQLAlchemy would
give (tests/service/test_sqlite_rows.py checks this).

Only SQLAlchemy's public API is used: `ClauseElement.compile`, the compiler's `binds`,
`SQLCompiler.construct_expanded_state` (2.0+) and its `ExpandedState`, the statement's
`exported_columns`, and the types' `dialect_impl(dialect)` bind and result processors (a
test checks that this module touches nothing private). IN lists longer than 16 items go
through SQLAlchemy, as do PostgreSQL's statements (executors.py).
"""

from __future__ import annotations

import contextlib
import functools
import json
import operator
import sqlite3
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import JSON, Connection, exc
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler

from incident.adapters.database.statements import InsertInto
from incident.adapters.database.tables import UTCDateTime

Processor = Callable[[Any], Any] | None

# IN lists longer than this go through SQLAlchemy: compiling one form per length would
# grow the cache with every length seen (the status page's reads list every incident).
LONGEST_COMPILED_LIST = 16


class SqliteDriver:
    """The statement executor of one SQLite transaction: prebuilt statements on the
    driver's cursor (see executors.py for the interface)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        raw = connection.connection.driver_connection
        assert raw is not None
        self._cursor = raw.cursor()

    def rows(self, statement: Executable, params: Mapping[str, Any]) -> Sequence[Any]:
        """The statement's rows, with attribute access by column name ([] for none)."""
        if _long_lists(params):
            result = self._connection.execute(statement, params)
            return list(result) if result.returns_rows else []
        compiled = _COMPILED.get(self._connection.dialect, statement, params)
        cursor = self._cursor
        with _as_sqlalchemy_errors(compiled.sql, params):
            cursor.execute(compiled.sql, compiled.bind(params))
            fetched = cursor.fetchall()
        if compiled.row_type is None:
            return []
        return [compiled.read(raw) for raw in fetched]

    def run_many(self, statement: Executable, many: Sequence[Mapping[str, Any]]) -> None:
        """Execute a statement once per parameter set (each with the same names)."""
        if not many:
            return
        if any(_long_lists(params) for params in many):
            self._connection.execute(statement, list(many))
            return
        compiled = _COMPILED.get(self._connection.dialect, statement, many[0])
        with _as_sqlalchemy_errors(compiled.sql, many):
            self._cursor.executemany(compiled.sql, [compiled.bind(p) for p in many])

    def insert(self, into: InsertInto, values: Mapping[str, Any]) -> int:
        """Insert one row; its id."""
        driver_insert = _driver_insert(into)
        with _as_sqlalchemy_errors(driver_insert.sql, values):
            self._cursor.execute(driver_insert.sql, driver_insert.row(values))
        rowid: int = self._cursor.lastrowid
        return rowid

    def insert_many(self, into: InsertInto, rows: Sequence[Mapping[str, Any]]) -> None:
        driver_insert = _driver_insert(into)
        with _as_sqlalchemy_errors(driver_insert.sql, rows):
            self._cursor.executemany(driver_insert.sql, [driver_insert.row(r) for r in rows])


@dataclass(frozen=True)
class _Compiled:
    """One statement's SQL for one set of parameter names and IN list lengths, with how to
    bind its parameters and read its rows."""

    sql: str
    names: tuple[str, ...]  # bind names in placeholder order
    listed: Mapping[str, tuple[str, int]]  # an IN list's item's name -> (list's name, index)
    fixed: Mapping[str, Any]  # values bound in the statement itself
    binders: tuple[Processor, ...]
    row_type: Callable[..., Any] | None  # None: no result rows
    readers: tuple[Processor, ...]

    def bind(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        values = []
        for name, binder in zip(self.names, self.binders, strict=True):
            if name in params:
                value = params[name]
            elif name in self.listed:
                listed, index = self.listed[name]
                value = params[listed][index]
            else:
                value = self.fixed[name]
            values.append(value if binder is None else binder(value))
        return tuple(values)

    def read(self, raw: Sequence[Any]) -> Any:
        assert self.row_type is not None
        return self.row_type(
            *(
                value if reader is None else reader(value)
                for value, reader in zip(raw, self.readers, strict=True)
            )
        )


class _CompiledStatements:
    """Every prebuilt statement run so far, compiled: per statement and set of parameter
    names, then per length of the IN lists given as parameters (each renders its own SQL)."""

    def __init__(self) -> None:
        self._templates: dict[tuple[int, tuple[str, ...]], _Template] = {}

    def get(self, dialect: Dialect, statement: Executable, params: Mapping[str, Any]) -> _Compiled:
        keys = tuple(params)
        template = self._templates.get((id(statement), keys))
        if template is None:
            template = _Template(dialect, statement, keys)
            self._templates[(id(statement), keys)] = template
        # Callers pass prebuilt module-level statements; the template holds its statement,
        # so no other statement can ever be given the same id while it is cached.
        assert template.statement is statement, "only prebuilt statements run on the driver"
        return template.for_params(params)


class _Template:
    """One statement compiled for one set of parameter names, and its SQL for each length
    of its IN lists."""

    def __init__(self, dialect: Dialect, statement: Executable, keys: tuple[str, ...]) -> None:
        self.dialect = dialect
        self.statement = statement
        # Every Core statement is a ClauseElement, compiled by the dialect's SQLCompiler;
        # their types do not say so.
        compiled = cast(ClauseElement, statement).compile(dialect=dialect, column_keys=list(keys))
        self.compiled = cast(SQLCompiler, compiled)
        self.lists = tuple(
            name for name, bind in self.compiled.binds.items() if bind.expanding and name in keys
        )
        columns = getattr(statement, "exported_columns", ())
        self.row_type = _row_type(list(columns.keys())) if columns else None
        self.readers = tuple(_reader(dialect, column.type) for column in columns)
        self._by_lengths: dict[tuple[int, ...], _Compiled] = {}

    def for_params(self, params: Mapping[str, Any]) -> _Compiled:
        lengths = tuple(len(params[name]) for name in self.lists)
        found = self._by_lengths.get(lengths)
        if found is None:
            found = self._by_lengths[lengths] = self._build(params)
        return found

    def _build(self, params: Mapping[str, Any]) -> _Compiled:
        state = self.compiled.construct_expanded_state(dict(params))
        names = tuple(state.positiontup or ())
        # Each IN list's items (b_states_1, ...) come from their list, given or fixed.
        origin = {
            expanded: (name, index)
            for name, expanded_names in state.parameter_expansion.items()
            for index, expanded in enumerate(expanded_names)
        }
        listed = {item: source for item, source in origin.items() if source[0] in params}
        fixed = {
            name: state.parameters[name]
            for name in names
            if name not in params and name not in listed
        }
        binders = tuple(
            _binder(self.dialect, self.compiled.binds[origin.get(name, (name, 0))[0]].type)
            for name in names
        )
        return _Compiled(
            sql=state.statement,
            names=names,
            listed=listed,
            fixed=fixed,
            binders=binders,
            row_type=self.row_type,
            readers=self.readers,
        )


_COMPILED = _CompiledStatements()


def _long_lists(params: Mapping[str, Any]) -> bool:
    return any(
        isinstance(value, list | tuple) and len(value) > LONGEST_COMPILED_LIST
        for value in params.values()
    )


def _row_type(fields: list[str]) -> Callable[..., Any]:
    """Rows with attribute access, like SQLAlchemy's, for the columns a statement returns."""
    return namedtuple("Row", fields, rename=True)


def _binder(dialect: Dialect, bind_type: Any) -> Processor:
    if isinstance(bind_type, UTCDateTime):
        return sqlite_instant  # the same text as SQLAlchemy's, without its layers
    processor: Processor = bind_type.dialect_impl(dialect).bind_processor(dialect)
    return processor


def _reader(dialect: Dialect, column_type: Any) -> Processor:
    if isinstance(column_type, UTCDateTime):
        return read_instant  # the same as SQLAlchemy's, without its layers
    processor: Processor = column_type.dialect_impl(dialect).result_processor(dialect, None)
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


class _DriverInsert:
    """An INSERT handed straight to the sqlite3 driver, each value converted as its column's
    SQLAlchemy type would (instants to naive UTC text, JSON to text).

    A declaration inserts an incident, a few timeline entries and a dozen occurrences; bound
    through SQLAlchemy's types they cost about three times as much (bench/README.md).
    """

    def __init__(self, into: InsertInto) -> None:
        self.columns = into.columns
        marks = ", ".join("?" for _ in self.columns)
        self.sql = f"INSERT INTO {into.table.name} ({', '.join(self.columns)}) VALUES ({marks})"
        converters = [_sqlite_converter(into.table.c[name].type) for name in self.columns]
        # Only the columns whose values change on the way in are touched (instants, JSON):
        # a case's intake inserts a dozen rows of a dozen columns, most of them as they are.
        self._converted = tuple((i, c) for i, c in enumerate(converters) if c is not _as_is)
        self._values = operator.itemgetter(*self.columns)

    def row(self, values: Mapping[str, Any]) -> list[Any]:
        taken = self._values(values)
        row = list(taken) if len(self.columns) > 1 else [taken]
        for index, convert in self._converted:
            row[index] = convert(row[index])
        return row


@functools.cache  # InsertInto compares by identity: one per prebuilt insert
def _driver_insert(into: InsertInto) -> _DriverInsert:
    return _DriverInsert(into)


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
