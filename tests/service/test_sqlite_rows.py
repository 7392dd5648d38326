"""On SQLite the store runs its statements straight on the driver (it is cheaper). What it
stores and reads must be byte for byte what SQLAlchemy would have stored and read, or
reads, ordering by instants and older rows would disagree."""

from __future__ import annotations

import ast
import contextlib
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from incident.adapters.database import sqlite_driver
from incident.adapters.database import statements as sql
from incident.adapters.database.databases import open_database
from incident.adapters.database.sqlite_driver import SqliteDriver
from incident.adapters.database.store import SqlTransaction
from incident.adapters.database.tables import (
    AlertGroupRow,
    IncidentRow,
    StepOccurrenceRow,
    TimelineRow,
)
from incident.domain.alerts import AlertGroup, AlertRecord, AlertState
from incident.domain.incident import Category, Incident, Role, Severity
from incident.domain.planning import PlannedOccurrence
from incident.domain.playbook import Action, Anchor, Step
from incident.domain.records import SubjectRef, TimelineEntry
from incident.domain.status_page import ComponentStatus

# Not UTC and with microseconds, so the conversion to naive UTC text is exercised.
AT = datetime(2026, 11, 24, 9, 30, 15, 120034, tzinfo=timezone(timedelta(hours=5, minutes=30)))
ON_THE_SECOND = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)


def _incident() -> Incident:
    incident = Incident.declare(
        title="Checkout «down» on db-7 ✓",
        severity=Severity.P1,
        at=AT,
        by="alertmanager",
        service="checkout",
        impact="cards declined",
        category=Category.SECURITY,
    )
    incident.acknowledge(at=ON_THE_SECOND, by="ana")
    incident.assign(Role.COMMANDER, "ana", at=ON_THE_SECOND, by="ana")
    incident.components = {
        "api": ComponentStatus.MAJOR_OUTAGE,
        "web": ComponentStatus.DEGRADED_PERFORMANCE,
    }
    incident.public_title = "Payments failing"
    return incident


ENTRIES = [
    TimelineEntry(at=AT, kind="declared", actor="alertmanager", text="declared P1"),
    TimelineEntry(
        at=ON_THE_SECOND,
        kind="step_done",
        actor="scheduler",
        text="paged tier 1",
        public=True,
        step_id="page",
        occurrence=2,
        data={"incident": "PD1", "nested": {"n": [1, 2.5, None, True]}, "ü": "ß"},
    ),
]
STEPS = {
    "page": Step(id="page", action=Action.PAGE, anchor=Anchor.DECLARED, offset=timedelta(0)),
    "remind": Step(
        id="remind",
        action=Action.NOTIFY,
        anchor=Anchor.DECLARED,
        offset=timedelta(minutes=30),
        target="support-manager",
    ),
}
PLANNED = [
    PlannedOccurrence("page", 1, AT),
    PlannedOccurrence("remind", 1, ON_THE_SECOND),
    PlannedOccurrence("remind", 2, ON_THE_SECOND + timedelta(minutes=30)),
]


def _alert_group(incident_id: int) -> AlertGroup:
    return AlertGroup(
        source="alertmanager",
        group_key='{}:{alertname="Down ✓"}',
        generation=2,
        incident_id=incident_id,
        alerts={"f1": AlertRecord(AlertState.FIRING, "Down", "2026-11-24T09:30:00+05:30")},
        firing=True,
        created_at=AT,
        updated_at=ON_THE_SECOND,
    )


def _through_the_store(session: Session) -> None:
    tx = SqlTransaction(session)
    incident = _incident()
    incident_id = tx.add_incident(incident, idempotency_key="group-1", fingerprint="f" * 64)
    tx.append_timeline(incident_id, ENTRIES)
    tx.reconcile(SubjectRef.incident(incident_id), PLANNED, STEPS, now=AT, new=True)
    tx.add_alert_group(_alert_group(incident_id))


def _through_sqlalchemy_types(session: Session) -> None:
    incident = _incident()
    values = {
        name: getattr(incident, name)
        for name in IncidentRow.model_fields
        if name not in ("id", "idempotency_key", "idempotency_fingerprint")
    }
    table: Table = IncidentRow.__table__  # type: ignore[attr-defined]
    incident_id = session.execute(
        insert(table).returning(table.c.id),
        {**values, "idempotency_key": "group-1", "idempotency_fingerprint": "f" * 64},
    ).scalar_one()
    session.execute(
        insert(TimelineRow.__table__),  # type: ignore[attr-defined]
        [
            {
                "incident_id": incident_id,
                **{k: getattr(e, k) for k in TimelineEntry.__annotations__},
            }
            for e in ENTRIES
        ],
    )
    session.execute(
        insert(StepOccurrenceRow.__table__),  # type: ignore[attr-defined]
        [
            {
                "subject_kind": "incident",
                "subject_id": incident_id,
                "step_id": p.step_id,
                "occurrence": p.occurrence,
                "action": STEPS[p.step_id].action.value,
                "target": STEPS[p.step_id].target,
                "due_at": p.due_at,
                "run_at": p.due_at,
                "state": "pending",
                "attempts": 0,
            }
            for p in PLANNED
        ],
    )
    group = _alert_group(incident_id)
    session.execute(
        insert(AlertGroupRow.__table__),  # type: ignore[attr-defined]
        {
            "source": group.source,
            "key_hash": group.key_hash,
            "group_key": group.group_key,
            "generation": group.generation,
            "incident_id": incident_id,
            "alerts": {k: v.to_json() for k, v in group.alerts.items()},
            "firing": group.firing,
            "created_at": group.created_at,
            "updated_at": group.updated_at,
        },
    )


def _stored(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every value of every row, with SQLite's own idea of its type."""
    with sqlite3.connect(path) as connection:
        stored = {}
        for table in ("incidents", "timeline", "step_occurrences", "alert_groups"):
            columns = [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]
            pairs = ", ".join(f"{c}, typeof({c})" for c in columns)
            stored[table] = connection.execute(
                f"SELECT {pairs} FROM {table} ORDER BY id"
            ).fetchall()
    return stored


async def test_rows_written_straight_to_sqlite_equal_those_sqlalchemy_writes(
    tmp_path: Path,
) -> None:
    stored = {}
    for name, work in (("direct", _through_the_store), ("typed", _through_sqlalchemy_types)):
        path = tmp_path / f"{name}.db"
        database = open_database(f"sqlite:///{path}")
        try:
            await database.migrate()
            await database.run(work)
        finally:
            await database.dispose()
        stored[name] = _stored(path)

    assert stored["direct"] == stored["typed"]
    assert len(stored["direct"]["step_occurrences"]) == 3
    # And the store reads back what it wrote.
    database = open_database(f"sqlite:///{tmp_path / 'direct.db'}")
    try:

        def read(session: Session) -> tuple[Incident, list[TimelineEntry]]:
            tx = SqlTransaction(session)
            return tx.get_incident(1), tx.timeline(1)

        incident, timeline = await database.run(read)
    finally:
        await database.dispose()
    expected = _incident()
    expected.id = 1
    expected.events.clear()
    incident.events.clear()
    assert incident == expected
    assert timeline == sorted(ENTRIES, key=lambda e: e.at)  # the timeline is in time order


async def test_the_database_thread_opens_a_new_connection_after_its_own_breaks(
    tmp_path: Path,
) -> None:
    database = open_database(f"sqlite:///{tmp_path / 'broken.db'}")
    try:
        await database.migrate()

        def break_the_connection(session: Session) -> None:
            session.connection().invalidate()

        with contextlib.suppress(Exception):  # it may or may not report the broken connection
            await database.run(break_the_connection)

        def count(session: Session) -> int:
            return len(SqlTransaction(session).list_incidents())

        assert await database.run(count) == 0
        await database.run(_through_the_store)
        assert await database.run(count) == 1
    finally:
        await database.dispose()


def _statements_and_params() -> list[tuple[str, Any, dict[str, Any]]]:
    later = ON_THE_SECOND + timedelta(days=1)
    return [
        ("incident", sql.GET_INCIDENT, {"b_id": 1}),
        ("incident by key", sql.INCIDENT_BY_IDEMPOTENCY_KEY, {"b_key": "group-1"}),
        (
            "alert group",
            sql.LATEST_ALERT_GROUP,
            {"b_source": "alertmanager", "b_hash": _alert_group(1).key_hash},
        ),
        ("timeline", sql.TIMELINE_OF, {"b_id": 1}),
        ("occurrences", sql.OCCURRENCES_OF, {"b_kind": "incident", "b_id": 1}),
        (
            "occurrences in",
            sql.OCCURRENCES_OF_IN_STATES,
            {"b_kind": "incident", "b_id": 1, "b_states": ["pending", "x"]},
        ),
        (
            "occurrences in, a long list",  # beyond what is compiled per length
            sql.OCCURRENCES_OF_IN_STATES,
            {
                "b_kind": "incident",
                "b_id": 1,
                "b_states": ["pending", *(f"s{n}" for n in range(20))],
            },
        ),
        ("next run", sql.SQLITE.next_run_at, {}),
        ("next run of", sql.SQLITE.next_run_at_of, {"b_actions": ["page"]}),
        (
            "claim",
            sql.SQLITE.claim,
            {"b_now": later, "b_limit": 2, "b_owner": "me", "b_lease": later},
        ),
        (
            "finish",
            sql.FINISH_OCCURRENCE,
            {
                "b_id": 2,
                "b_now": later,
                "b_error": None,
                "state": "done",
                "finished_at": later,
                "outcome": "sent ✓",
            },
        ),
        ("save incident", sql.UPDATE_INCIDENT, {"b_id": 1, "components": {}, "rca_due_at": AT}),
        (
            "claim of actions",
            sql.SQLITE.claim_actions,
            {
                "b_now": later,
                "b_limit": 5,
                "b_owner": "pages",
                "b_lease": later,
                "b_actions": ["notify", "page"],
            },
        ),
        ("by war room", sql.INCIDENTS_BY_WAR_ROOM, {"b_rooms": ["C1", "#nowhere"]}),
        ("public incidents", sql.PUBLIC_INCIDENTS, {"b_since": AT - timedelta(days=90)}),
        ("public entries", sql.PUBLIC_ENTRIES, {"b_since": AT - timedelta(days=90)}),
        ("session revoked", sql.SESSION_REVOKED, {"b_nonce": "n" * 64}),
        (
            "save alert group",
            sql.UPDATE_ALERT_GROUP,
            {
                "b_source": "alertmanager",
                "b_hash": _alert_group(1).key_hash,
                "b_generation": 2,
                "alerts": {"f2": {"state": "resolved"}},
                "firing": False,
                "updated_at": later,
            },
        ),
        (
            "alert group saved",
            sql.LATEST_ALERT_GROUP,
            {"b_source": "alertmanager", "b_hash": _alert_group(1).key_hash},
        ),
    ]


async def test_statements_run_on_the_driver_answer_and_write_as_sqlalchemy_does(
    tmp_path: Path,
) -> None:
    """Each prebuilt statement the store runs on SQLite, in turn on two copies of one
    database: through sqlite_driver.py on one, through SQLAlchemy on the other."""
    answers: dict[str, list[list[tuple[Any, ...]]]] = {}
    for name in ("direct", "typed"):
        path = tmp_path / f"{name}.db"
        database = open_database(f"sqlite:///{path}")
        try:
            await database.migrate()
            await database.run(_through_the_store)

            def run_all(session: Session, name: str = name) -> list[list[tuple[Any, ...]]]:
                connection = session.connection()
                results = []
                for _, statement, params in _statements_and_params():
                    if name == "direct":
                        rows = SqliteDriver(connection).rows(statement, params)
                    else:
                        result = connection.execute(statement, params)
                        rows = list(result) if result.returns_rows else []
                    results.append([tuple(row) for row in rows])
                return results

            answers[name] = await database.run(run_all)
        finally:
            await database.dispose()
        answers[f"{name} stored"] = [list(rows) for rows in _stored(path).values()]

    labels = [label for label, _, _ in _statements_and_params()]
    assert dict(zip(labels, answers["direct"], strict=True)) == dict(
        zip(labels, answers["typed"], strict=True)
    )
    claimed = answers["direct"][labels.index("claim")]
    assert len(claimed) == 2 and all(row[0] for row in claimed)  # it did claim something
    assert answers["direct stored"] == answers["typed stored"]


def test_the_driver_path_uses_only_public_sqlalchemy_api() -> None:
    """sqlite_driver.py leans on SQLAlchemy's compiler, and `sqlalchemy` has no upper bound
    in pyproject.toml: private attributes (`_result_columns`, `_cached_bind_processor` ...)
    change between releases without notice, so only public ones may be used there. (That
    what they give equals SQLAlchemy's own results is what the tests above check.)"""
    tree = ast.parse(Path(sqlite_driver.__file__).read_text(encoding="utf-8"))
    private = sorted(
        ast.unparse(node)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and not (isinstance(node.value, ast.Name) and node.value.id == "self")
    )
    assert private == [], f"sqlite_driver.py uses private attributes: {private}"
