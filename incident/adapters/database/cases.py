"""Support cases and their timeline: the part of a transaction (`SqlTransaction`) that
keeps them. A case's escalations and approvals are stored with it, as JSON."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from incident.adapters.database import statements as sql
from incident.adapters.database.executors import TransactionRows
from incident.adapters.database.timelines import entries_of, entry_rows
from incident.domain.case import (
    Approval,
    Case,
    CaseStatus,
    Escalation,
    IncidentNotice,
    NoticeKind,
    Plan,
)
from incident.domain.case_context import ChecklistItem
from incident.domain.case_routing import Flag, Level, Urgency
from incident.domain.errors import Conflict, NotFound
from incident.domain.lifecycle import Severity
from incident.domain.records import TimelineEntry

_PLAIN = (
    "reference",
    "customer_id",
    "customer_email",
    "summary",
    "opened_by",
    "contacts",
    "crypto",
    "context",
    "resolution",
    "level_entered_at",
    "opened_at",
    "first_response_at",
    "last_progress_at",
    "last_customer_update_at",
    "expected_resolution_at",
    "deescalated_at",
    "resolved_at",
    "changed_at",
    "category",
    "component",
    "incident_id",
    "linked_at",
    "pending_since",
)
_AMOUNTS = ("disputed_amount", "csr", "usdt_amount")


class CaseRows(TransactionRows):
    """Support cases, in one transaction (see `SqlTransaction`)."""

    def add_case(self, case: Case) -> int:
        """Store a new case; Conflict when its ticket reference has a case already.

        Looked for first (an index lookup), so the answer can name the case; no savepoint
        (intake's hot path: one costs a sixth of it): should another transaction store the
        same ticket meanwhile (PostgreSQL), the unique index refuses this one and the
        Conflict ends the transaction, which the caller rolls back."""
        taken = self._execute.rows(sql.CASE_ID_BY_REFERENCE, {"b_reference": case.reference})
        if taken:
            raise Conflict(
                f"ticket {case.reference!r} has a case already (CASE-{taken[0].id}): "
                "update that one"
            )
        try:
            case_id = self._execute.insert(sql.INSERT_CASE, _case_values(case))
        except IntegrityError as error:
            raise Conflict(
                f"ticket {case.reference!r} has a case already, opened a moment ago: "
                "update that one"
            ) from error
        case.id = case_id
        return case_id

    def get_case(self, case_id: int, *, lock: bool = False) -> Case:
        query = self._dialect.case_for_update if lock else sql.GET_CASE
        rows = self._execute.rows(query, {"b_id": case_id})
        if not rows:
            raise NotFound(f"there is no case {case_id} (CASE-{case_id})")
        return _to_case(rows[0])

    def find_case(self, reference: str) -> Case | None:
        rows = self._execute.rows(sql.CASE_BY_REFERENCE, {"b_reference": reference})
        return _to_case(rows[0]) if rows else None

    def save_case(self, case: Case) -> None:
        assert case.id is not None
        self._execute.rows(sql.UPDATE_CASE, {**_case_values(case), "b_id": case.id})

    def list_cases(
        self,
        *,
        statuses: Sequence[CaseStatus] = (),
        levels: Sequence[Level] = (),
        customer_id: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Case]:
        """Oldest first for open queues (the longest-waiting at the top), by id."""
        query = select(sql.cases).order_by(sql.cases.c.opened_at, sql.cases.c.id)
        if statuses:
            query = query.where(sql.cases.c.status.in_([s.value for s in statuses]))
        if levels:
            query = query.where(sql.cases.c.level.in_([level.value for level in levels]))
        if customer_id is not None:
            query = query.where(sql.cases.c.customer_id == customer_id)
        query = query.limit(limit).offset(offset)
        return [_to_case(r) for r in self._connection.execute(query)]

    def open_case_counts(self) -> dict[Level, int]:
        return {Level(level): int(n) for level, n in self._execute.rows(sql.OPEN_CASE_COUNTS, {})}

    def cases_linked_to(
        self, incident_id: int, *, statuses: Sequence[CaseStatus] = (), lock: bool = False
    ) -> list[Case]:
        query = self._dialect.linked_cases_for_update if lock else sql.LINKED_CASES
        rows = self._execute.rows(query, {"b_incident": incident_id})
        wanted = {s.value for s in statuses}
        return [_to_case(r) for r in rows if not wanted or r.status in wanted]

    def append_case_timeline(self, case_id: int, entries: Sequence[TimelineEntry]) -> None:
        self._execute.insert_many(sql.INSERT_CASE_ENTRY, entry_rows("case_id", case_id, entries))

    def case_timeline(self, case_id: int) -> list[TimelineEntry]:
        return entries_of(self._execute.rows(sql.CASE_TIMELINE_OF, {"b_id": case_id}))


def _case_values(case: Case) -> dict[str, Any]:
    values: dict[str, Any] = {name: getattr(case, name) for name in _PLAIN}
    for name in _AMOUNTS:
        amount = getattr(case, name)
        values[name] = str(amount) if amount is not None else None
    values.update(
        plan=case.plan.value,
        priority=case.priority.value,
        status=case.status.value,
        level=case.level.value,
        flags=sorted(f.value for f in case.flags),
        checklist=sorted(c.value for c in case.checklist),
        escalations=[_escalation_json(e) for e in case.escalations],
        approvals=[_approval_json(a) for a in case.approvals],
        required_approvals=[level.value for level in case.required_approvals],
        notices=[_notice_json(n) for n in case.notices],
    )
    return values


def _to_case(row: Any) -> Case:
    def amount(name: str) -> Decimal | None:
        value = getattr(row, name)
        return Decimal(value) if value is not None else None

    return Case(
        id=row.id,
        plan=Plan(row.plan),
        priority=Severity(row.priority),
        status=CaseStatus(row.status),
        level=Level(row.level),
        flags=frozenset(Flag(f) for f in row.flags),
        checklist=frozenset(ChecklistItem(c) for c in row.checklist),
        escalations=[_escalation(e) for e in row.escalations],
        approvals=[_approval(a) for a in row.approvals],
        required_approvals=tuple(Level(level) for level in row.required_approvals),
        notices=[_notice(n) for n in row.notices],
        disputed_amount=amount("disputed_amount"),
        csr=amount("csr"),
        usdt_amount=amount("usdt_amount"),
        **{name: getattr(row, name) for name in _PLAIN},
    )


def _instant(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_instant(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _escalation_json(e: Escalation) -> dict[str, Any]:
    return {
        "number": e.number,
        "from_level": e.from_level.value,
        "to_level": e.to_level.value,
        "at": e.at.isoformat(),
        "by": e.by,
        "reason": e.reason,
        "rule": e.rule,
        "urgency": e.urgency.value,
        "recommends_ceo": e.recommends_ceo,
        "urgency_note": e.urgency_note,
        "gate_override": e.gate_override,
        "confirmed_at": _instant(e.confirmed_at),
        "confirmed_by": e.confirmed_by,
    }


def _escalation(data: dict[str, Any]) -> Escalation:
    return Escalation(
        number=int(data["number"]),
        from_level=Level(data["from_level"]),
        to_level=Level(data["to_level"]),
        at=datetime.fromisoformat(data["at"]),
        by=data["by"],
        reason=data["reason"],
        rule=data["rule"],
        urgency=Urgency(data["urgency"]),
        recommends_ceo=bool(data["recommends_ceo"]),
        urgency_note=data["urgency_note"],
        gate_override=data["gate_override"],
        confirmed_at=_parse_instant(data["confirmed_at"]),
        confirmed_by=data["confirmed_by"],
    )


def _approval_json(a: Approval) -> dict[str, Any]:
    return {
        "level": a.level.value,
        "by": a.by,
        "at": a.at.isoformat(),
        "approved": a.approved,
        "note": a.note,
    }


def _approval(data: dict[str, Any]) -> Approval:
    return Approval(
        level=Level(data["level"]),
        by=data["by"],
        at=datetime.fromisoformat(data["at"]),
        approved=bool(data["approved"]),
        note=data["note"],
    )


def _notice_json(n: IncidentNotice) -> dict[str, Any]:
    return {
        "number": n.number,
        "incident_id": n.incident_id,
        "kind": n.kind.value,
        "at": n.at.isoformat(),
        "title": n.title,
        "text": n.text,
    }


def _notice(data: dict[str, Any]) -> IncidentNotice:
    return IncidentNotice(
        number=int(data["number"]),
        incident_id=int(data["incident_id"]),
        kind=NoticeKind(data["kind"]),
        at=datetime.fromisoformat(data["at"]),
        title=data["title"],
        text=data["text"],
    )
