"""The store on SQLAlchemy: incidents, timeline and durable step occurrences.

Time is always a bound parameter (`now`), never the database's clock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import func, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlmodel import col, select

from incident.adapters.database import Database
from incident.adapters.tables import (
    IncidentRow,
    OccurrenceState,
    StepOccurrenceRow,
    TimelineRow,
    UTCDateTime,
)
from incident.domain.errors import Conflict, NotFound
from incident.domain.incident import Category, Incident, Severity, Status
from incident.domain.planning import PlannedOccurrence, StepHistory
from incident.domain.playbook import Step
from incident.domain.records import Occurrence, PlanChange, TimelineEntry

T = TypeVar("T")

_INCIDENT_FIELDS = tuple(f.name for f in dataclasses.fields(Incident) if f.name != "events")


def _to_incident(row: IncidentRow) -> Incident:
    values: dict[str, Any] = {name: getattr(row, name) for name in _INCIDENT_FIELDS}
    values["severity"] = Severity(row.severity)
    values["status"] = Status(row.status)
    values["category"] = Category(row.category)
    return Incident(**values)


def _to_occurrence(row: StepOccurrenceRow) -> Occurrence:
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
    )


def _to_entry(row: TimelineRow) -> TimelineEntry:
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


class SqlTransaction:
    """One unit of work; commits when its `async with` block ends without an error."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._postgres = session.get_bind().dialect.name == "postgresql"

    # --- incidents -------------------------------------------------------------------------

    def add_incident(self, incident: Incident, *, idempotency_key: str | None) -> int:
        values = {name: getattr(incident, name) for name in _INCIDENT_FIELDS if name != "id"}
        row = IncidentRow(**values, idempotency_key=idempotency_key)
        self.session.add(row)
        try:
            self.session.flush()
        except IntegrityError as error:
            raise Conflict(f"idempotency key {idempotency_key!r} is already taken") from error
        assert row.id is not None
        incident.id = row.id
        return row.id

    def _row(self, incident_id: int, *, lock: bool) -> IncidentRow:
        query = select(IncidentRow).where(col(IncidentRow.id) == incident_id)
        if lock and self._postgres:
            query = query.with_for_update()
        row = (self.session.execute(query)).scalar_one_or_none()
        if row is None:
            raise NotFound(f"there is no incident {incident_id}")
        return row

    def get_incident(self, incident_id: int, *, lock: bool = False) -> Incident:
        return _to_incident(self._row(incident_id, lock=lock))

    def find_incident_by_key(self, idempotency_key: str) -> Incident | None:
        query = select(IncidentRow).where(col(IncidentRow.idempotency_key) == idempotency_key)
        row = (self.session.execute(query)).scalar_one_or_none()
        return _to_incident(row) if row else None

    def save_incident(self, incident: Incident) -> None:
        assert incident.id is not None
        row = self._row(incident.id, lock=False)
        for name in _INCIDENT_FIELDS:
            setattr(row, name, getattr(incident, name))

    def list_incidents(
        self, *, statuses: Sequence[Status] = (), severities: Sequence[Severity] = ()
    ) -> list[Incident]:
        query = select(IncidentRow).order_by(col(IncidentRow.id).desc())
        if statuses:
            query = query.where(col(IncidentRow.status).in_([s.value for s in statuses]))
        if severities:
            query = query.where(col(IncidentRow.severity).in_([s.value for s in severities]))
        return [_to_incident(r) for r in (self.session.execute(query)).scalars()]

    # --- timeline --------------------------------------------------------------------------

    def append_timeline(self, incident_id: int, entries: Sequence[TimelineEntry]) -> None:
        if not entries:
            return
        self.session.execute(
            insert(TimelineRow),
            [
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
            ],
        )

    def timeline(self, incident_id: int) -> list[TimelineEntry]:
        query = (
            select(TimelineRow)
            .where(col(TimelineRow.incident_id) == incident_id)
            .order_by(col(TimelineRow.at), col(TimelineRow.id))
        )
        return [_to_entry(r) for r in (self.session.execute(query)).scalars()]

    # --- occurrences -----------------------------------------------------------------------

    def _occurrence_rows(
        self, incident_id: int, states: Sequence[str] = ()
    ) -> list[StepOccurrenceRow]:
        query = select(StepOccurrenceRow).where(col(StepOccurrenceRow.incident_id) == incident_id)
        if states:
            query = query.where(col(StepOccurrenceRow.state).in_(states))
        query = query.order_by(col(StepOccurrenceRow.run_at), col(StepOccurrenceRow.id))
        return list((self.session.execute(query)).scalars())

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
    ) -> PlanChange:
        wanted = {(p.step_id, p.occurrence): p for p in planned}
        # Running rows are included so a plan made while one runs leaves it alone.
        rows = self._occurrence_rows(
            incident_id,
            (OccurrenceState.PENDING, OccurrenceState.CANCELLED, OccurrenceState.RUNNING),
        )
        existing = {(r.step_id, r.occurrence): r for r in rows}
        added, moved, cancelled = [], [], []
        new_rows: list[dict[str, Any]] = []
        for key, row in existing.items():
            if row.state == OccurrenceState.PENDING and key not in wanted:
                row.state, row.finished_at, row.outcome = (
                    OccurrenceState.CANCELLED,
                    now,
                    "cancelled",
                )
                cancelled.append(row.step_id)
        for key, item in wanted.items():
            row_or_none = existing.get(key)
            if row_or_none is None:
                step = steps[item.step_id]
                new_rows.append(
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
            row = row_or_none
            if row.state == OccurrenceState.RUNNING:
                continue
            if row.state == OccurrenceState.CANCELLED:
                row.state, row.finished_at, row.outcome = OccurrenceState.PENDING, None, None
                row.not_before, row.attempts, row.last_error = None, 0, None
                added.append(item.step_id)
            elif row.due_at != item.due_at:
                moved.append(item.step_id)
            else:
                continue
            row.due_at = item.due_at
            row.run_at = max(item.due_at, row.not_before) if row.not_before else item.due_at
        # Inserting a (step, occurrence) that exists in another state would break the unique
        # key: the planner never asks for one, and if it did we want the error, not a repeat.
        if new_rows:
            self.session.execute(insert(StepOccurrenceRow), new_rows)
        self.session.flush()
        return PlanChange(tuple(added), tuple(moved), tuple(cancelled))

    def occurrences(self, incident_id: int, *, states: Sequence[str] = ()) -> list[Occurrence]:
        return [_to_occurrence(r) for r in self._occurrence_rows(incident_id, states)]

    def _occurrence_row(self, occurrence_id: int) -> StepOccurrenceRow:
        row = self.session.get(StepOccurrenceRow, occurrence_id)
        if row is None:
            raise NotFound(f"there is no step occurrence {occurrence_id}")
        return row

    def get_occurrence(self, occurrence_id: int) -> Occurrence:
        return _to_occurrence(self._occurrence_row(occurrence_id))

    def finish_occurrence(
        self,
        occurrence_id: int,
        *,
        state: str,
        now: datetime,
        outcome: str,
        error: str | None = None,
    ) -> None:
        row = self._occurrence_row(occurrence_id)
        row.state, row.finished_at, row.outcome = state, now, outcome
        row.lease_owner = row.lease_expires_at = None
        if row.started_at is None:
            row.started_at = now
        if error is not None:
            row.last_error = error

    def retry_occurrence(self, occurrence_id: int, *, not_before: datetime, error: str) -> None:
        row = self._occurrence_row(occurrence_id)
        row.state, row.not_before, row.run_at = OccurrenceState.PENDING, not_before, not_before
        row.lease_owner = row.lease_expires_at = None
        row.last_error = error

    def snooze_occurrence(self, occurrence_id: int, *, until: datetime) -> None:
        row = self._occurrence_row(occurrence_id)
        row.not_before, row.run_at = until, max(until, row.due_at)

    # --- the scheduler's queue ---------------------------------------------------------------

    def claim_due(
        self, *, now: datetime, owner: str, lease_until: datetime, limit: int
    ) -> list[Occurrence]:
        # A running occurrence's run_at is its lease expiry, so one index range finds both
        # runnable pending rows and rows whose owner died holding them.
        candidates = (
            select(StepOccurrenceRow.id)
            .where(
                col(StepOccurrenceRow.state).in_(
                    (OccurrenceState.PENDING, OccurrenceState.RUNNING)
                ),
                col(StepOccurrenceRow.run_at) <= now,
            )
            .order_by(col(StepOccurrenceRow.run_at), col(StepOccurrenceRow.id))
            .limit(limit)
        )
        if self._postgres:
            candidates = candidates.with_for_update(skip_locked=True)
        claim = (
            update(StepOccurrenceRow)
            .where(col(StepOccurrenceRow.id).in_(candidates.scalar_subquery()))
            .values(
                state=OccurrenceState.RUNNING,
                lease_owner=owner,
                lease_expires_at=lease_until,
                run_at=lease_until,
                started_at=now,
                attempts=col(StepOccurrenceRow.attempts) + 1,
            )
            .returning(StepOccurrenceRow)
            .execution_options(synchronize_session=False)
        )
        rows = list(self.session.execute(claim).scalars())
        return sorted((_to_occurrence(r) for r in rows), key=lambda o: (o.due_at, o.id))

    def release_claims(self, *, owner: str | None = None) -> int:
        query = (
            update(StepOccurrenceRow)
            .where(col(StepOccurrenceRow.state) == OccurrenceState.RUNNING)
            .values(
                state=OccurrenceState.PENDING,
                lease_owner=None,
                lease_expires_at=None,
                run_at=func.coalesce(StepOccurrenceRow.not_before, col(StepOccurrenceRow.due_at)),
            )
            .execution_options(synchronize_session=False)
        )
        if owner is not None:
            query = query.where(col(StepOccurrenceRow.lease_owner) == owner)
        return int(getattr(self.session.execute(query), "rowcount", 0))

    def next_run_at(self) -> datetime | None:
        query = select(func.min(StepOccurrenceRow.run_at, type_=UTCDateTime())).where(
            col(StepOccurrenceRow.state).in_((OccurrenceState.PENDING, OccurrenceState.RUNNING))
        )
        value: datetime | None = self.session.execute(query).scalar_one_or_none()
        return value


class SqlStore:
    """The `Store` port: each unit of work gets a `SqlTransaction` and one transaction."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def run(self, work: Callable[[SqlTransaction], T]) -> T:
        return await self.database.run(lambda session: work(SqlTransaction(session)))
