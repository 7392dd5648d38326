"""The store on SQLAlchemy: incidents, timeline and durable step occurrences.

Time is always a bound parameter (`now`), never the database's clock.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Row, Table, Text, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from incident.adapters.database.databases import Database
from incident.adapters.database.sqlite_statements import SqliteInsert, SqliteStatements
from incident.adapters.database.tables import (
    AlertGroupRow,
    FollowUpRow,
    IncidentRow,
    MaintenanceRow,
    MaintenanceUpdateRow,
    OccurrenceState,
    ProbeRow,
    RevokedSessionRow,
    SeenRequestRow,
    StepOccurrenceRow,
    TimelineRow,
    UTCDateTime,
)
from incident.domain.alerts import AlertGroup, AlertRecord
from incident.domain.errors import Conflict, NotFound
from incident.domain.follow_ups import FollowUp
from incident.domain.incident import Cancellation, Category, Incident, Severity, Status
from incident.domain.planning import PlannedOccurrence, StepHistory
from incident.domain.playbook import Step
from incident.domain.records import Occurrence, PlanChange, TimelineEntry
from incident.domain.status_page import (
    ComponentStatus,
    Maintenance,
    MaintenanceStatus,
    MaintenanceUpdate,
)

T = TypeVar("T")

_INCIDENT_FIELDS = tuple(f.name for f in dataclasses.fields(Incident) if f.name != "events")


def _to_incident(row: Any) -> Incident:
    values: dict[str, Any] = {name: getattr(row, name) for name in _INCIDENT_FIELDS}
    values["severity"] = Severity(row.severity)
    values["status"] = Status(row.status)
    values["category"] = Category(row.category)
    values["cancellation"] = Cancellation(row.cancellation) if row.cancellation else None
    values["components"] = {k: ComponentStatus(v) for k, v in (row.components or {}).items()}
    return Incident(**values)


def _to_occurrence(row: Any) -> Occurrence:
    assert row.id is not None
    return Occurrence(
        id=row.id,
        incident_id=row.incident_id,
        step_id=row.step_id,
        occurrence=row.occurrence,
        action=row.action,
        target=row.target,
        due_at=row.due_at,
        run_at=row.run_at,
        state=row.state,
        attempts=row.attempts,
        started_at=row.started_at,
        finished_at=row.finished_at,
        outcome=row.outcome,
        last_error=row.last_error,
        approved_by=row.approved_by,
    )


def _to_follow_up(row: Any) -> FollowUp:
    return FollowUp(
        id=row.id,
        incident_id=row.incident_id,
        title=row.title,
        owner=row.owner,
        due_at=row.due_at,
        created_at=row.created_at,
        created_by=row.created_by,
        done_at=row.done_at,
        done_by=row.done_by,
    )


def _to_entry(row: Any) -> TimelineEntry:
    return TimelineEntry(
        at=row.at,
        kind=row.kind,
        actor=row.actor,
        text=row.text,
        public=row.public,
        step_id=row.step_id,
        occurrence=row.occurrence,
        data=dict(row.data),
    )


# Statements are built once: building and cache-keying a statement costs more than running
# it on SQLite, and a fired step runs about ten of them. Reads return plain rows, not ORM
# objects, for the same reason (see bench/README.md).
_I: Table = IncidentRow.__table__  # type: ignore[attr-defined]
_O: Table = StepOccurrenceRow.__table__  # type: ignore[attr-defined]
_T: Table = TimelineRow.__table__  # type: ignore[attr-defined]
_AT = UTCDateTime()

_INSERT_INCIDENT = insert(_I).returning(_I.c.id)
_GET_INCIDENT = select(_I).where(_I.c.id == bindparam("b_id"))
_GET_INCIDENT_FOR_UPDATE = _GET_INCIDENT.with_for_update()
_INCIDENT_BY_KEY = select(_I).where(_I.c.idempotency_key == bindparam("b_key"))
_INCIDENT_BY_WAR_ROOM = (
    select(_I)
    .where(_I.c.war_room.in_(bindparam("b_rooms", expanding=True)))
    .order_by(_I.c.id.desc())
)
_UPDATE_INCIDENT = update(_I).where(_I.c.id == bindparam("b_id"))
_INSERT_TIMELINE = insert(_T)
_TIMELINE = select(_T).where(_T.c.incident_id == bindparam("b_id")).order_by(_T.c.at, _T.c.id)
_OCCURRENCES = (
    select(_O).where(_O.c.incident_id == bindparam("b_id")).order_by(_O.c.run_at, _O.c.id)
)
_OCCURRENCES_IN = _OCCURRENCES.where(_O.c.state.in_(bindparam("b_states", expanding=True)))
_OCCURRENCE = select(_O).where(_O.c.id == bindparam("b_id"))
_INSERT_OCCURRENCE = insert(_O)
_UPDATE_OCCURRENCE = update(_O).where(_O.c.id == bindparam("b_id"))
_FINISH_OCCURRENCE = _UPDATE_OCCURRENCE.values(
    started_at=func.coalesce(_O.c.started_at, bindparam("b_now", type_=_AT)),
    last_error=func.coalesce(bindparam("b_error", type_=Text()), _O.c.last_error),
    lease_owner=None,
    lease_expires_at=None,
)


# Searching incidents: a title contains the text (LIKE, its wildcards escaped), or the text
# names the incident (INC-12, inc 12, 12).
_LIKE_ESCAPE = "\\"
_REF = re.compile(r"(?:inc[-\s]?)?0*([0-9]{1,16})", re.IGNORECASE)
_MAX_ID = 2**53


def _like_escaped(text: str) -> str:
    """`text` matched literally by LIKE ... ESCAPE '\\': its % and _ are not wildcards."""
    return (
        text.replace(_LIKE_ESCAPE, _LIKE_ESCAPE * 2)
        .replace("%", _LIKE_ESCAPE + "%")
        .replace("_", _LIKE_ESCAPE + "_")
    )


# SQLite: statements compiled once, run on the driver (see sqlite_statements.py).
_SQLITE = SqliteStatements()
_SQLITE_INSERT_INCIDENT = SqliteInsert(_I)
_SQLITE_INSERT_TIMELINE = SqliteInsert(_T)
# The columns a new occurrence sets; the rest start NULL.
_SQLITE_INSERT_OCCURRENCE = SqliteInsert(
    _O,
    (
        "incident_id",
        "step_id",
        "occurrence",
        "action",
        "target",
        "due_at",
        "run_at",
        "state",
        "attempts",
    ),
)


def _claim(*, skip_locked: bool, by_action: bool = False) -> Any:
    # A running occurrence's run_at is its lease expiry, so the rows whose owner died holding
    # them come due again, and are claimed like pending ones.
    lease = bindparam("b_lease", type_=_AT)
    values = {
        "state": OccurrenceState.RUNNING,
        "lease_owner": bindparam("b_owner"),
        "lease_expires_at": lease,
        "run_at": lease,
        "started_at": bindparam("b_now", type_=_AT),
        "attempts": _O.c.attempts + 1,
    }
    if skip_locked:  # PostgreSQL: replicas claim side by side
        return (
            update(_O)
            .where(_O.c.id.in_(_claimable_on_postgres(by_action=by_action)))
            .values(**values)
            .returning(*_O.c)
        )
    candidates = (
        select(_O.c.id)
        .where(_O.c.state.in_(_ACTIVE), _O.c.run_at <= bindparam("b_now", type_=_AT))
        .order_by(_O.c.run_at, _O.c.id)
        .limit(bindparam("b_limit"))
    )
    if by_action:
        candidates = candidates.where(_O.c.action.in_(bindparam("b_actions", expanding=True)))
    return (
        update(_O)
        .where(_O.c.id.in_(candidates.scalar_subquery()))
        .values(**values)
        .returning(*_O.c)
    )


# pg_try_advisory_xact_lock(CLAIM_LOCK, incident id): one claim at a time per incident.
CLAIM_LOCK = 0x636C616D  # "clam"


def _claimable_on_postgres(*, by_action: bool) -> Any:
    """The ids a PostgreSQL claim takes: the oldest runnable ones, at most b_limit.

    - `FOR UPDATE SKIP LOCKED`: replicas claiming at the same moment take different rows,
      and none waits for another.
    - One ordered range of the (state, run_at) index per state, pending and running (an
      expired lease), merged: `state IN (...)` would make PostgreSQL sort every runnable row
      before taking the first ones, which grows with the backlog; this stays flat.
    - One replica at a time per incident (main lane): a row is skipped while another owner
      holds a live lease on a row of the same incident, and the claim takes the incident's
      advisory lock (for its transaction; only for the few rows it has locked, so other
      replicas claiming meanwhile still find the rest) so two replicas claiming at once
      cannot both take rows of it. An incident's steps then run in due order, each checked
      against what the one before changed, as on one process. The urgent lane
      (`by_action`, pages) is not held back by another replica's slow step: its steps are
      pages, which are idempotent per incident and tier.
    """
    from sqlalchemy import exists, union_all

    now = bindparam("b_now", type_=_AT)
    branches = []
    for state in (OccurrenceState.RUNNING, OccurrenceState.PENDING):
        row = _O.alias(f"due_{state}")
        query = select(row.c.id, row.c.run_at, row.c.incident_id).where(
            row.c.state == state, row.c.run_at <= now
        )
        if by_action:
            query = query.where(row.c.action.in_(bindparam("b_actions", expanding=True)))
        else:
            busy = _O.alias(f"busy_{state}")
            query = query.where(
                ~exists().where(
                    busy.c.incident_id == row.c.incident_id,
                    busy.c.state == OccurrenceState.RUNNING,
                    busy.c.lease_owner != bindparam("b_owner"),
                    busy.c.run_at > now,
                ),
            )
        query = (
            query.order_by(row.c.run_at, row.c.id)
            .limit(bindparam("b_limit"))
            .with_for_update(skip_locked=True, of=row)
        )
        branches.append(query.cte(f"claim_{state}"))
    running, pending = branches
    merged = union_all(select(running), select(pending)).subquery("runnable")
    chosen = select(merged.c.id).order_by(merged.c.run_at, merged.c.id).limit(bindparam("b_limit"))
    if not by_action:
        chosen = chosen.where(func.pg_try_advisory_xact_lock(CLAIM_LOCK, merged.c.incident_id))
    return chosen.scalar_subquery()


_ACTIVE = (OccurrenceState.PENDING, OccurrenceState.RUNNING)
# Not run yet, and cancelled when no longer planned.
_WAITING = (OccurrenceState.PENDING, OccurrenceState.HELD)
_CLAIM = _claim(skip_locked=False)
_CLAIM_FOR_UPDATE = _claim(skip_locked=True)
_CLAIM_ACTIONS = _claim(skip_locked=False, by_action=True)
_CLAIM_ACTIONS_FOR_UPDATE = _claim(skip_locked=True, by_action=True)
_RELEASE = (
    update(_O)
    .where(_O.c.state == OccurrenceState.RUNNING)
    .values(
        state=OccurrenceState.PENDING,
        lease_owner=None,
        lease_expires_at=None,
        run_at=func.coalesce(_O.c.not_before, _O.c.due_at),
    )
)
_NEXT_RUN_AT = select(func.min(_O.c.run_at, type_=_AT)).where(_O.c.state.in_(_ACTIVE))
_NEXT_RUN_AT_OF = _NEXT_RUN_AT.where(_O.c.action.in_(bindparam("b_actions", expanding=True)))


class SqlTransaction:
    """The `Transaction` port on one SQLAlchemy session (one database transaction)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        # Core statements go straight to the connection: the ORM layer adds nothing here
        # but time (see bench/README.md).
        self._db = session.connection()
        self._postgres = self._db.dialect.name == "postgresql"

    def _rows(self, statement: Any, params: Mapping[str, Any] | None = None) -> Sequence[Any]:
        """Run a prebuilt statement; its rows (none for a write without RETURNING)."""
        if self._postgres:
            result = self._db.execute(statement, params or {})
            return list(result) if result.returns_rows else []
        return _SQLITE.rows(self._db, statement, params or {})

    def _run_many(self, statement: Any, many: Sequence[Mapping[str, Any]]) -> None:
        """Run a prebuilt write once per parameter set."""
        if self._postgres:
            self._db.execute(statement, list(many))
        else:
            _SQLITE.run_many(self._db, statement, many)

    # --- incidents -------------------------------------------------------------------------

    def add_incident(
        self, incident: Incident, *, idempotency_key: str | None, fingerprint: str | None = None
    ) -> int:
        values = {name: getattr(incident, name) for name in _INCIDENT_FIELDS if name != "id"}
        values["idempotency_key"] = idempotency_key
        values["idempotency_fingerprint"] = fingerprint
        if idempotency_key is None:
            incident_id = self._insert_incident(values)
        else:
            try:  # a savepoint, so a taken key is reported instead of spoiling the transaction
                with self.session.begin_nested():
                    incident_id = self._insert_incident(values)
            except IntegrityError as error:
                raise Conflict(f"idempotency key {idempotency_key!r} is already taken") from error
        incident.id = incident_id
        return incident_id

    def _insert_incident(self, values: dict[str, Any]) -> int:
        if self._postgres:
            return int(self._db.execute(_INSERT_INCIDENT, values).scalar_one())
        return _SQLITE_INSERT_INCIDENT.one(self._db, values)

    def get_incident(self, incident_id: int, *, lock: bool = False) -> Incident:
        query = _GET_INCIDENT_FOR_UPDATE if lock and self._postgres else _GET_INCIDENT
        rows = self._rows(query, {"b_id": incident_id})
        if not rows:
            raise NotFound(f"there is no incident {incident_id}")
        return _to_incident(rows[0])

    def find_incident_by_key(self, idempotency_key: str) -> tuple[Incident, str | None] | None:
        rows = self._rows(_INCIDENT_BY_KEY, {"b_key": idempotency_key})
        return (_to_incident(rows[0]), rows[0].idempotency_fingerprint) if rows else None

    def find_incident_by_war_room(self, rooms: Sequence[str]) -> Incident | None:
        rooms = [r for r in rooms if r]
        if not rooms:
            return None
        rows = self._rows(_INCIDENT_BY_WAR_ROOM, {"b_rooms": rooms})
        return _to_incident(rows[0]) if rows else None

    def save_incident(self, incident: Incident) -> None:
        assert incident.id is not None
        values = {name: getattr(incident, name) for name in _INCIDENT_FIELDS if name != "id"}
        self._rows(_UPDATE_INCIDENT, {**values, "b_id": incident.id})

    def list_incidents(
        self,
        *,
        statuses: Sequence[Status] = (),
        severities: Sequence[Severity] = (),
        search: str = "",
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Incident]:
        query = select(_I).order_by(_I.c.id.desc())
        if statuses:
            query = query.where(_I.c.status.in_([s.value for s in statuses]))
        if severities:
            query = query.where(_I.c.severity.in_([s.value for s in severities]))
        search = search.strip()
        if search:
            # ILIKE on PostgreSQL, lower() LIKE lower() on SQLite: case-insensitive (on
            # SQLite for ASCII letters only), with the person's % and _ taken literally.
            found: Any = _I.c.title.ilike(f"%{_like_escaped(search)}%", escape=_LIKE_ESCAPE)
            ref = _REF.fullmatch(search)
            if ref is not None and int(ref.group(1)) <= _MAX_ID:
                found = found | (_I.c.id == int(ref.group(1)))
            query = query.where(found)
        if limit is not None:
            query = query.limit(limit)
        if offset:
            query = query.offset(offset)
        return [_to_incident(r) for r in self._db.execute(query)]

    # --- the commander's overview ------------------------------------------------------------

    def open_counts(self) -> dict[Severity, tuple[int, int]]:
        counts = {
            Severity(row.severity): (int(row.total), int(row.unacknowledged))
            for row in self._db.execute(_OPEN_COUNTS)
        }
        return counts

    def open_incidents_page(self, *, limit: int, offset: int) -> list[Incident]:
        rows = self._db.execute(_OPEN_PAGE, {"b_limit": limit, "b_offset": offset})
        return [_to_incident(r) for r in rows]

    def upcoming_of(self, incident_ids: Sequence[int]) -> dict[int, list[Occurrence]]:
        found: dict[int, list[Occurrence]] = {i: [] for i in incident_ids}
        if incident_ids:
            for row in self._db.execute(_UPCOMING_OF, {"b_ids": list(incident_ids)}):
                found[row.incident_id].append(_to_occurrence(row))
        return found

    def change_version(self) -> int:
        value = self._db.execute(_CHANGE_VERSION).scalar_one_or_none()
        return int(value or 0)

    # --- timeline --------------------------------------------------------------------------

    def append_timeline(self, incident_id: int, entries: Sequence[TimelineEntry]) -> None:
        if not entries:
            return
        rows = [
            {
                "incident_id": incident_id,
                "at": e.at,
                "kind": e.kind,
                "actor": e.actor,
                "text": e.text,
                "public": e.public,
                "step_id": e.step_id,
                "occurrence": e.occurrence,
                "data": e.data,
            }
            for e in entries
        ]
        if self._postgres:
            self._db.execute(_INSERT_TIMELINE, rows)
        else:
            _SQLITE_INSERT_TIMELINE.many(self._db, rows)

    def timeline(self, incident_id: int) -> list[TimelineEntry]:
        return [_to_entry(r) for r in self._rows(_TIMELINE, {"b_id": incident_id})]

    # --- what the public status page reads --------------------------------------------------

    def public_incidents(self, *, since: datetime) -> list[tuple[Incident, list[TimelineEntry]]]:
        incidents = [_to_incident(r) for r in self._rows(_PUBLIC_INCIDENTS, {"b_since": since})]
        if not incidents:
            return []
        entries: dict[int, list[TimelineEntry]] = {i.id: [] for i in incidents if i.id}
        # Selected by the same condition, not by a list of ids: an alert storm puts
        # hundreds of incidents on the page, too many for a statement to list.
        for row in self._rows(_PUBLIC_ENTRIES, {"b_since": since}):
            if row.incident_id in entries:
                entries[row.incident_id].append(_to_entry(row))
        return [(i, entries[i.id]) for i in incidents if i.id]

    def add_maintenance(self, maintenance: Maintenance) -> int:
        maintenance_id = int(
            self._db.execute(_INSERT_MAINTENANCE, _maintenance_values(maintenance)).scalar_one()
        )
        maintenance.id = maintenance_id
        self._add_maintenance_updates(maintenance)
        return maintenance_id

    def get_maintenance(self, maintenance_id: int, *, lock: bool = False) -> Maintenance:
        query = _GET_MAINTENANCE.with_for_update() if lock and self._postgres else _GET_MAINTENANCE
        row = self._db.execute(query, {"b_id": maintenance_id}).one_or_none()
        if row is None:
            raise NotFound(f"there is no maintenance window {maintenance_id}")
        return self._with_updates([row])[0]

    def save_maintenance(self, maintenance: Maintenance) -> None:
        assert maintenance.id is not None
        self._db.execute(
            _UPDATE_MAINTENANCE, {**_maintenance_values(maintenance), "b_id": maintenance.id}
        )
        self._add_maintenance_updates(maintenance)

    def maintenances(self, *, since: datetime) -> list[Maintenance]:
        """Windows that end at or after `since`, soonest first."""
        return self._with_updates(list(self._db.execute(_MAINTENANCES, {"b_since": since})))

    def _add_maintenance_updates(self, maintenance: Maintenance) -> None:
        new = [u for u in maintenance.updates if u.id is None]
        if not new:
            return
        self._db.execute(
            _INSERT_MAINTENANCE_UPDATE,
            [
                {
                    "maintenance_id": maintenance.id,
                    "at": u.at,
                    "status": u.status.value,
                    "body": u.body,
                }
                for u in new
            ],
        )

    def _with_updates(self, rows: Sequence[Row[Any]]) -> list[Maintenance]:
        windows = {
            r.id: Maintenance(
                id=r.id,
                name=r.name,
                scheduled_for=r.scheduled_for,
                scheduled_until=r.scheduled_until,
                components=tuple(r.components),
                set_status=MaintenanceStatus(r.set_status) if r.set_status else None,
                created_at=r.created_at,
                created_by=r.created_by,
                updated_at=r.updated_at,
            )
            for r in rows
        }
        if windows:
            for u in self._db.execute(_MAINTENANCE_UPDATES, {"b_ids": list(windows)}):
                windows[u.maintenance_id].updates.append(
                    MaintenanceUpdate(
                        at=u.at, status=MaintenanceStatus(u.status), body=u.body, id=u.id
                    )
                )
        return list(windows.values())

    # --- occurrences -----------------------------------------------------------------------

    def _occurrence_rows(self, incident_id: int, states: Sequence[str] = ()) -> Sequence[Any]:
        if states:
            return self._rows(_OCCURRENCES_IN, {"b_id": incident_id, "b_states": list(states)})
        return self._rows(_OCCURRENCES, {"b_id": incident_id})

    def step_history(self, incident_id: int) -> dict[str, StepHistory]:
        history: dict[str, StepHistory] = {}
        fired = self._occurrence_rows(incident_id, OccurrenceState.FIRED)
        for row in sorted(fired, key=lambda r: (r.step_id, r.occurrence)):
            previous = history.get(row.step_id, StepHistory())
            history[row.step_id] = StepHistory(
                fired=previous.fired + 1,
                last_due=row.due_at,
                last_fired_at=row.started_at or row.finished_at or row.due_at,
            )
        return history

    def reconcile(
        self,
        incident_id: int,
        planned: Sequence[PlannedOccurrence],
        steps: Mapping[str, Step],
        *,
        now: datetime,
        new: bool = False,
    ) -> PlanChange:
        wanted = {(p.step_id, p.occurrence): p for p in planned}
        # Running rows are included so a plan made while one runs leaves it alone.
        # A new incident (added in this transaction) cannot have rows yet: skip the read.
        rows = (
            []
            if new
            else self._occurrence_rows(
                incident_id,
                (
                    OccurrenceState.PENDING,
                    OccurrenceState.HELD,
                    OccurrenceState.CANCELLED,
                    OccurrenceState.RUNNING,
                ),
            )
        )
        existing = {(r.step_id, r.occurrence): r for r in rows}
        added, moved, cancelled = [], [], []
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for key, row in existing.items():
            if row.state in _WAITING and key not in wanted:
                updates.append(
                    {
                        "b_id": row.id,
                        "state": OccurrenceState.CANCELLED,
                        "finished_at": now,
                        "outcome": "cancelled",
                        "due_at": row.due_at,
                        "run_at": row.run_at,
                        "not_before": row.not_before,
                        "attempts": row.attempts,
                        "last_error": row.last_error,
                    }
                )
                cancelled.append(row.step_id)
        for key, item in wanted.items():
            found = existing.get(key)
            if found is None:
                step = steps[item.step_id]
                inserts.append(
                    {
                        "incident_id": incident_id,
                        "step_id": item.step_id,
                        "occurrence": item.occurrence,
                        "action": step.action.value,
                        "target": step.target,
                        "due_at": item.due_at,
                        "run_at": item.due_at,
                        "state": OccurrenceState.PENDING,
                        "attempts": 0,
                    }
                )
                added.append(item.step_id)
                continue
            if found.state == OccurrenceState.RUNNING:
                continue
            change = {
                "b_id": found.id,
                "state": found.state,
                "finished_at": found.finished_at,
                "outcome": found.outcome,
                "not_before": found.not_before,
                "attempts": found.attempts,
                "last_error": found.last_error,
            }
            if found.state == OccurrenceState.CANCELLED:
                change.update(
                    state=OccurrenceState.PENDING,
                    finished_at=None,
                    outcome=None,
                    not_before=None,
                    attempts=0,
                    last_error=None,
                )
                added.append(item.step_id)
            elif found.due_at != item.due_at:
                # A held occurrence moved (a person posted an update, say) is due anew: it
                # is checked again, and held again if it still needs approval, then.
                if found.state == OccurrenceState.HELD:
                    change["state"] = OccurrenceState.PENDING
                moved.append(item.step_id)
            else:
                continue
            not_before = change["not_before"]
            change["due_at"] = item.due_at
            change["run_at"] = max(item.due_at, not_before) if not_before else item.due_at
            updates.append(change)
        # Inserting a (step, occurrence) that exists in another state would break the unique
        # key: the planner never asks for one, and if it did we want the error, not a repeat.
        if updates:
            self._run_many(_UPDATE_OCCURRENCE, updates)
        if inserts and self._postgres:
            self._db.execute(_INSERT_OCCURRENCE, inserts)
        elif inserts:
            _SQLITE_INSERT_OCCURRENCE.many(self._db, inserts)
        return PlanChange(tuple(added), tuple(moved), tuple(cancelled))

    def occurrences(self, incident_id: int, *, states: Sequence[str] = ()) -> list[Occurrence]:
        return [_to_occurrence(r) for r in self._occurrence_rows(incident_id, states)]

    def get_occurrence(self, occurrence_id: int) -> Occurrence:
        rows = self._rows(_OCCURRENCE, {"b_id": occurrence_id})
        if not rows:
            raise NotFound(f"there is no step occurrence {occurrence_id}")
        return _to_occurrence(rows[0])

    def finish_occurrence(
        self,
        occurrence_id: int,
        *,
        state: str,
        now: datetime,
        outcome: str,
        error: str | None = None,
    ) -> None:
        self._rows(
            _FINISH_OCCURRENCE,
            {
                "b_id": occurrence_id,
                "b_now": now,
                "b_error": error,
                "state": state,
                "finished_at": now,
                "outcome": outcome,
            },
        )

    def hold_occurrence(self, occurrence_id: int, *, now: datetime, reason: str) -> None:
        self._rows(
            _UPDATE_OCCURRENCE,
            {
                "b_id": occurrence_id,
                "state": OccurrenceState.HELD,
                "lease_owner": None,
                "lease_expires_at": None,
                "outcome": reason,
            },
        )

    def approve_occurrence(self, occurrence_id: int, *, by: str, now: datetime) -> None:
        current = self.get_occurrence(occurrence_id)
        values: dict[str, Any] = {"b_id": occurrence_id, "approved_by": by, "approved_at": now}
        if current.state == OccurrenceState.HELD:
            values.update(state=OccurrenceState.PENDING, run_at=now, outcome=None)
        self._rows(_UPDATE_OCCURRENCE, values)

    def retry_occurrence(self, occurrence_id: int, *, not_before: datetime, error: str) -> None:
        self._rows(
            _UPDATE_OCCURRENCE,
            {
                "b_id": occurrence_id,
                "state": OccurrenceState.PENDING,
                "not_before": not_before,
                "run_at": not_before,
                "lease_owner": None,
                "lease_expires_at": None,
                "last_error": error,
            },
        )

    def snooze_occurrence(self, occurrence_id: int, *, until: datetime) -> None:
        due = self.get_occurrence(occurrence_id).due_at
        # A held occurrence snoozed is asked about again when the snooze ends.
        self._rows(
            _UPDATE_OCCURRENCE,
            {
                "b_id": occurrence_id,
                "not_before": until,
                "run_at": max(until, due),
                "state": OccurrenceState.PENDING,
            },
        )

    # --- the scheduler's queue ---------------------------------------------------------------

    def claim_due(
        self,
        *,
        now: datetime,
        owner: str,
        lease_until: datetime,
        limit: int,
        actions: Sequence[str] = (),
    ) -> list[Occurrence]:
        params: dict[str, Any] = {
            "b_now": now,
            "b_limit": limit,
            "b_owner": owner,
            "b_lease": lease_until,
        }
        if actions:
            claim = _CLAIM_ACTIONS_FOR_UPDATE if self._postgres else _CLAIM_ACTIONS
            params["b_actions"] = list(actions)
        else:
            claim = _CLAIM_FOR_UPDATE if self._postgres else _CLAIM
        rows = self._rows(claim, params)
        return sorted((_to_occurrence(r) for r in rows), key=lambda o: (o.due_at, o.id))

    def release_claims(
        self, *, owner: str | None = None, occurrence_ids: Sequence[int] | None = None
    ) -> int:
        query = _RELEASE.where(_O.c.lease_owner == owner) if owner is not None else _RELEASE
        if occurrence_ids is not None:
            query = query.where(_O.c.id.in_(list(occurrence_ids)))
        return int(getattr(self._db.execute(query), "rowcount", 0))

    def next_run_at(self, *, actions: Sequence[str] = ()) -> datetime | None:
        if self._postgres:
            # The earliest of each state's first index entry: min() over `state IN (...)`
            # would read every active row on PostgreSQL.
            firsts = []
            for state in _ACTIVE:
                first = select(func.min(_O.c.run_at)).where(_O.c.state == state)
                if actions:
                    first = first.where(_O.c.action.in_(list(actions)))
                firsts.append(first.scalar_subquery())
            earliest: datetime | None = self._db.execute(
                select(func.least(*firsts, type_=_AT))
            ).scalar_one_or_none()
            return earliest
        if actions:
            value: datetime | None = self._rows(_NEXT_RUN_AT_OF, {"b_actions": list(actions)})[0][0]
            return value
        value = self._rows(_NEXT_RUN_AT)[0][0]
        return value

    # --- follow-up action items ---------------------------------------------------------------

    def add_follow_up(self, item: FollowUp) -> int:
        values = _follow_up_values(item)
        item.id = int(self._db.execute(_INSERT_FOLLOW_UP, values).scalar_one())
        return item.id

    def get_follow_up(self, incident_id: int, follow_up_id: int) -> FollowUp:
        rows = self._rows(_GET_FOLLOW_UP, {"b_id": follow_up_id})
        if not rows or rows[0].incident_id != incident_id:
            raise NotFound(f"INC-{incident_id} has no follow-up FU-{follow_up_id}")
        return _to_follow_up(rows[0])

    def save_follow_up(self, item: FollowUp) -> None:
        assert item.id is not None
        self._rows(_UPDATE_FOLLOW_UP, {**_follow_up_values(item), "b_id": item.id})

    def follow_ups(self, incident_id: int) -> list[FollowUp]:
        return [_to_follow_up(r) for r in self._rows(_FOLLOW_UPS, {"b_id": incident_id})]

    def first_sighting(self, key: str, *, now: datetime, forget_before: datetime) -> bool:
        self._db.execute(delete(_S).where(_S.c.at < forget_before))
        insert_new = (
            postgres_insert(_S) if self._postgres else sqlite_insert(_S)
        ).on_conflict_do_nothing(index_elements=["key"])
        return bool(self._db.execute(insert_new.values(key=key, at=now)).rowcount)

    def revoke_session(self, nonce: str, *, expires_at: datetime, now: datetime) -> None:
        self._db.execute(delete(_RS).where(_RS.c.expires_at <= now))
        insert_new = (
            postgres_insert(_RS) if self._postgres else sqlite_insert(_RS)
        ).on_conflict_do_nothing(index_elements=["nonce"])
        self._db.execute(insert_new.values(nonce=nonce, expires_at=expires_at))

    def session_revoked(self, nonce: str) -> bool:
        return bool(self._rows(_SESSION_REVOKED, {"b_nonce": nonce}))

    def probe_write(self, *, name: str, now: datetime) -> None:
        updated = self._db.execute(update(_P).where(_P.c.name == name).values(at=now)).rowcount
        if not updated:
            self._db.execute(insert(_P).values(name=name, at=now))

    def move_alert_groups(self, from_incident: int, to_incident: int) -> int:
        result = self._db.execute(
            update(_G).where(_G.c.incident_id == from_incident).values(incident_id=to_incident)
        )
        return int(getattr(result, "rowcount", 0))

    # --- alert groups ------------------------------------------------------------------------

    def find_alert_group(
        self, source: str, key_hash: str, *, lock: bool = False
    ) -> tuple[AlertGroup, Incident] | None:
        query = _LATEST_ALERT_GROUP_FOR_UPDATE if lock and self._postgres else _LATEST_ALERT_GROUP
        rows = self._rows(query, {"b_source": source, "b_hash": key_hash})
        if not rows:
            return None
        row = rows[0]
        group = AlertGroup(
            source=source,
            group_key=row.g_group_key,
            generation=row.g_generation,
            incident_id=row.id,
            alerts={k: AlertRecord.from_json(v) for k, v in row.g_alerts.items()},
            firing=row.g_firing,
            created_at=row.g_created_at,
            updated_at=row.g_updated_at,
        )
        return group, _to_incident(row)

    def add_alert_group(self, group: AlertGroup) -> None:
        values = {
            "source": group.source,
            "key_hash": group.key_hash,
            "group_key": group.group_key,
            "generation": group.generation,
            "created_at": group.created_at,
            **_alert_group_state(group),
        }
        # No savepoint: a lost race ends the whole unit of work (it is retried), so the
        # spoiled transaction is rolled back anyway.
        try:
            if self._postgres:
                self._db.execute(_INSERT_ALERT_GROUP, values)
            else:
                _SQLITE_INSERT_ALERT_GROUP.one(self._db, values)
        except IntegrityError as error:
            raise Conflict(
                f"alert group {group.source}:{group.key_hash[:12]} generation "
                f"{group.generation} was stored by another delivery"
            ) from error

    def save_alert_group(self, group: AlertGroup) -> None:
        self._rows(
            _UPDATE_ALERT_GROUP,
            {
                "b_source": group.source,
                "b_hash": group.key_hash,
                "b_generation": group.generation,
                **_alert_group_state(group),
            },
        )


# Alert group statements, built once like the ones above.
_G: Table = AlertGroupRow.__table__  # type: ignore[attr-defined]
# The group's latest generation joined to its incident: one statement, and on PostgreSQL
# one lock for both rows.
_LATEST_ALERT_GROUP = (
    select(
        _I,
        _G.c.group_key.label("g_group_key"),
        _G.c.generation.label("g_generation"),
        _G.c.alerts.label("g_alerts"),
        _G.c.firing.label("g_firing"),
        _G.c.created_at.label("g_created_at"),
        _G.c.updated_at.label("g_updated_at"),
    )
    .join(_I, _I.c.id == _G.c.incident_id)
    .where(_G.c.source == bindparam("b_source"), _G.c.key_hash == bindparam("b_hash"))
    .order_by(_G.c.generation.desc())
    .limit(1)
)
_LATEST_ALERT_GROUP_FOR_UPDATE = _LATEST_ALERT_GROUP.with_for_update()
_INSERT_ALERT_GROUP = insert(_G)
_SQLITE_INSERT_ALERT_GROUP = SqliteInsert(_G)
_UPDATE_ALERT_GROUP = update(_G).where(
    _G.c.source == bindparam("b_source"),
    _G.c.key_hash == bindparam("b_hash"),
    _G.c.generation == bindparam("b_generation"),
)


# The status page's statements. On the page: incidents with anything public, open or
# resolved (or cancelled) in the last 90 days.
_ON_THE_PAGE = (
    (_I.c.cancelled_at.is_(None) & _I.c.resolved_at.is_(None))
    | (_I.c.resolved_at >= bindparam("b_since", type_=_AT))
    | (_I.c.cancelled_at >= bindparam("b_since", type_=_AT))
)
_PUBLIC_INCIDENTS = (
    select(_I)
    .where(_I.c.id.in_(select(_T.c.incident_id).where(_T.c.public.is_(True))), _ON_THE_PAGE)
    .order_by(_I.c.declared_at.desc(), _I.c.id.desc())
)
_PUBLIC_ENTRIES = (
    select(_T)
    .where(_T.c.public.is_(True), _T.c.incident_id.in_(select(_I.c.id).where(_ON_THE_PAGE)))
    .order_by(_T.c.at, _T.c.id)
)
_M: Table = MaintenanceRow.__table__  # type: ignore[attr-defined]
_MU: Table = MaintenanceUpdateRow.__table__  # type: ignore[attr-defined]
_INSERT_MAINTENANCE = insert(_M).returning(_M.c.id)
_GET_MAINTENANCE = select(_M).where(_M.c.id == bindparam("b_id"))
_UPDATE_MAINTENANCE = update(_M).where(_M.c.id == bindparam("b_id"))
_MAINTENANCES = (
    select(_M)
    .where(_M.c.scheduled_until >= bindparam("b_since", type_=_AT))
    .order_by(_M.c.scheduled_for, _M.c.id)
)
_INSERT_MAINTENANCE_UPDATE = insert(_MU)
_MAINTENANCE_UPDATES = (
    select(_MU)
    .where(_MU.c.maintenance_id.in_(bindparam("b_ids", expanding=True)))
    .order_by(_MU.c.at, _MU.c.id)
)


# The overview: open incidents counted by severity, and one page of them, P1 first, the
# unacknowledged first, then the longest-running; the steps they have coming, in one read.
_OPEN = _I.c.status.in_(["investigating", "identified", "monitoring"])
_OPEN_COUNTS = (
    select(
        _I.c.severity,
        func.count().label("total"),
        func.count().filter(_I.c.acknowledged_at.is_(None)).label("unacknowledged"),
    )
    .where(_OPEN)
    .group_by(_I.c.severity)
)
_OPEN_PAGE = (
    select(_I)
    .where(_OPEN)
    .order_by(_I.c.severity, _I.c.acknowledged_at.is_not(None), _I.c.declared_at, _I.c.id)
    .limit(bindparam("b_limit"))
    .offset(bindparam("b_offset"))
)
_UPCOMING_OF = (
    select(_O)
    .where(
        _O.c.incident_id.in_(bindparam("b_ids", expanding=True)),
        _O.c.state.in_(["pending", "running", "held"]),
    )
    .order_by(_O.c.incident_id, _O.c.run_at, _O.c.id)
)
# Every change an incident's page or the overview shows writes a timeline entry (a state
# change, a step done, moved, held or retried): the newest entry's id versions them all.
_CHANGE_VERSION = select(func.max(_T.c.id))
_F: Table = FollowUpRow.__table__  # type: ignore[attr-defined]
_P: Table = ProbeRow.__table__  # type: ignore[attr-defined]
_S: Table = SeenRequestRow.__table__  # type: ignore[attr-defined]
_RS: Table = RevokedSessionRow.__table__  # type: ignore[attr-defined]
_SESSION_REVOKED = select(_RS.c.nonce).where(_RS.c.nonce == bindparam("b_nonce"))
_INSERT_FOLLOW_UP = insert(_F).returning(_F.c.id)
_GET_FOLLOW_UP = select(_F).where(_F.c.id == bindparam("b_id"))
_UPDATE_FOLLOW_UP = update(_F).where(_F.c.id == bindparam("b_id"))
_FOLLOW_UPS = select(_F).where(_F.c.incident_id == bindparam("b_id")).order_by(_F.c.id)


def _follow_up_values(item: FollowUp) -> dict[str, Any]:
    return {
        "incident_id": item.incident_id,
        "title": item.title,
        "owner": item.owner,
        "due_at": item.due_at,
        "created_at": item.created_at,
        "created_by": item.created_by,
        "done_at": item.done_at,
        "done_by": item.done_by,
    }


def _maintenance_values(m: Maintenance) -> dict[str, Any]:
    return {
        "name": m.name,
        "scheduled_for": m.scheduled_for,
        "scheduled_until": m.scheduled_until,
        "components": list(m.components),
        "set_status": m.set_status.value if m.set_status else None,
        "created_at": m.created_at,
        "created_by": m.created_by,
        "updated_at": m.updated_at or m.created_at,
    }


def _alert_group_state(group: AlertGroup) -> dict[str, Any]:
    """The columns that change as notifications come in."""
    return {
        "incident_id": group.incident_id,
        "alerts": {k: v.to_json() for k, v in group.alerts.items()},
        "firing": group.firing,
        "updated_at": group.updated_at,
    }


class SqlStore:
    """The `Store` port: each unit of work gets a `SqlTransaction` and one transaction."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def run(
        self, work: Callable[[SqlTransaction], T], *, durable: bool = True, urgent: bool = False
    ) -> T:
        return await self.database.run(
            lambda session: work(SqlTransaction(session)), durable=durable, urgent=urgent
        )


def explain_claim(session: Session, *, now: datetime, analyze: bool = False) -> str:
    """PostgreSQL's plan for the claim the main lane runs at `now`: `EXPLAIN`, or with
    `analyze` `EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF)`, whose claim is then rolled back.
    For the tests and benchmarks that check it stays an index scan however long the
    backlog."""
    connection = session.connection()
    compiled = _CLAIM_FOR_UPDATE.compile(dialect=connection.dialect)
    values = {
        **compiled.params,
        "b_now": now,
        "b_limit": 100,
        "b_owner": "explain",
        "b_lease": now + timedelta(minutes=1),
    }
    assert compiled.positiontup is not None
    args = tuple(values[name] for name in compiled.positiontup)
    explain = "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " if analyze else "EXPLAIN "
    plan = "\n".join(row[0] for row in connection.exec_driver_sql(explain + str(compiled), args))
    if analyze:
        session.rollback()  # ANALYZE ran the claim
    return plan
