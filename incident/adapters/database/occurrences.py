"""Step occurrences of every kind of subject, and the engine's queue of them: the part of
the store the engine needs (`incident.services.engine`), knowing nothing of incidents."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from incident.adapters.database import statements as sql
from incident.adapters.database.executors import TransactionRows
from incident.domain.errors import NotFound
from incident.domain.planning import PlannedOccurrence, StepHistory
from incident.domain.records import (
    FIRED_STATES,
    Occurrence,
    OccurrenceState,
    PlanChange,
    SubjectRef,
)
from incident.services.ports import StepShape


def to_occurrence(row: Any) -> Occurrence:
    assert row.id is not None
    return Occurrence(
        id=row.id,
        subject=SubjectRef(row.subject_kind, row.subject_id),
        step_id=row.step_id,
        occurrence=row.occurrence,
        action=row.action,
        target=row.target,
        due_at=row.due_at,
        run_at=row.run_at,
        state=OccurrenceState(row.state),
        attempts=row.attempts,
        started_at=row.started_at,
        finished_at=row.finished_at,
        outcome=row.outcome,
        last_error=row.last_error,
        approved_by=row.approved_by,
    )


# Not run yet, and cancelled when no longer planned.
_WAITING = (OccurrenceState.PENDING, OccurrenceState.HELD)


class OccurrenceRows(TransactionRows):
    """Step occurrences, in one transaction (see `SqlTransaction`)."""

    # --- occurrences -----------------------------------------------------------------------

    def _occurrence_rows(
        self, subject: SubjectRef, states: Sequence[OccurrenceState] = ()
    ) -> Sequence[Any]:
        params: dict[str, Any] = {"b_kind": subject.kind, "b_id": subject.id}
        if states:
            params["b_states"] = [state.value for state in states]
            return self._execute.rows(sql.OCCURRENCES_OF_IN_STATES, params)
        return self._execute.rows(sql.OCCURRENCES_OF, params)

    def step_history(self, subject: SubjectRef) -> dict[str, StepHistory]:
        history: dict[str, StepHistory] = {}
        fired = self._occurrence_rows(subject, FIRED_STATES)
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
        subject: SubjectRef,
        planned: Sequence[PlannedOccurrence],
        steps: Mapping[str, StepShape],
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
                subject,
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
                        "subject_kind": subject.kind,
                        "subject_id": subject.id,
                        "step_id": item.step_id,
                        "occurrence": item.occurrence,
                        "action": str(step.action),
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
            self._execute.run_many(sql.UPDATE_OCCURRENCE, updates)
        if inserts:
            self._execute.insert_many(sql.INSERT_OCCURRENCE, inserts)
        return PlanChange(tuple(added), tuple(moved), tuple(cancelled))

    def occurrences(
        self, subject: SubjectRef, *, states: Sequence[OccurrenceState] = ()
    ) -> list[Occurrence]:
        return [to_occurrence(r) for r in self._occurrence_rows(subject, states)]

    def get_occurrence(self, occurrence_id: int) -> Occurrence:
        rows = self._execute.rows(sql.GET_OCCURRENCE, {"b_id": occurrence_id})
        if not rows:
            raise NotFound(f"there is no step occurrence {occurrence_id}")
        return to_occurrence(rows[0])

    def finish_occurrence(
        self,
        occurrence_id: int,
        *,
        state: str,
        now: datetime,
        outcome: str,
        error: str | None = None,
    ) -> None:
        self._execute.rows(
            sql.FINISH_OCCURRENCE,
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
        self._execute.rows(
            sql.UPDATE_OCCURRENCE,
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
        self._execute.rows(sql.UPDATE_OCCURRENCE, values)

    def retry_occurrence(self, occurrence_id: int, *, not_before: datetime, error: str) -> None:
        self._execute.rows(
            sql.UPDATE_OCCURRENCE,
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
        self._execute.rows(
            sql.UPDATE_OCCURRENCE,
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
            claim = self._dialect.claim_actions
            params["b_actions"] = list(actions)
        else:
            claim = self._dialect.claim
        rows = self._execute.rows(claim, params)
        return sorted((to_occurrence(r) for r in rows), key=lambda o: (o.due_at, o.id))

    def release_claims(
        self, *, owner: str | None = None, occurrence_ids: Sequence[int] | None = None
    ) -> int:
        occurrences = sql.occurrences
        query = sql.RELEASE_CLAIMS
        if owner is not None:
            query = query.where(occurrences.c.lease_owner == owner)
        if occurrence_ids is not None:
            query = query.where(occurrences.c.id.in_(list(occurrence_ids)))
        return int(getattr(self._connection.execute(query), "rowcount", 0))

    def next_run_at(self, *, actions: Sequence[str] = ()) -> datetime | None:
        if actions:
            rows = self._execute.rows(self._dialect.next_run_at_of, {"b_actions": list(actions)})
        else:
            rows = self._execute.rows(self._dialect.next_run_at, {})
        earliest: datetime | None = rows[0][0]
        return earliest
