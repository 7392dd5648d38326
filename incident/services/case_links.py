"""Cases linked to incidents: many customers' cases, one incident. While a case is linked,
each customer-facing word of the incident (every update posted for customers, the holding
updates too, and its resolution) is queued for the case's customer as a step of the case
(`incident_notice.<n>`), in the same transaction as the incident's change: sent once per
case and word by the engine, across crashes and replicas, like any other step.

When the incident resolves, each linked case becomes what the support playbook says
(`on_incident_resolved`: resolved with it, or waiting for the customer's confirmation); a
case still waiting for a CIO or CEO decision stays open and says why. A duplicate merged into
another incident hands its cases over; an incident called off (a false alarm) unlinks them.
Unlinking stops the words not sent yet.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from incident.domain.access import Actor, actor_name
from incident.domain.case import Case, CaseStatus, NoticeKind
from incident.domain.case_access import CaseRight
from incident.domain.errors import IllegalTransition
from incident.domain.incident import (
    CustomerUpdatePosted,
    Incident,
    IncidentCancelled,
    IncidentReopened,
    IncidentResolved,
)
from incident.domain.records import TimelineEntry
from incident.domain.status_page import Catalog
from incident.services.cases import CaseView, Support, change_case, replan_case
from incident.services.ports import Transaction

log = logging.getLogger("incident.cases")

# The cases that still hear from their incident: not those resolved.
LISTENING = (CaseStatus.OPEN, CaseStatus.PENDING)


@dataclass(frozen=True)
class LinkedCase:
    """A linked case as the incident's page lists it."""

    id: int
    ref: str
    reference: str
    customer_id: str
    status: str
    level: str
    linked_at: datetime | None


@dataclass(frozen=True)
class LinkedCases:
    cases: list[LinkedCase]

    @property
    def customers(self) -> int:
        """How many distinct customers the incident affects, by their cases."""
        return len({c.customer_id for c in self.cases})


# --- use cases -------------------------------------------------------------------------------


async def link_case(sp: Support, case_id: int, incident_id: int, *, by: Actor) -> CaseView:
    """Link a case to an open incident; its customer gets the incident's latest update at
    once (they hear where things stand), then every later one."""

    def link(tx: Transaction, case: Case, now: datetime) -> None:
        link_within(tx, sp, case, tx.get_incident(incident_id), now=now, by=actor_name(by))

    return await change_case(sp, case_id, "case linked", link, by=by, right=CaseRight.WORK)


def link_within(
    tx: Transaction, sp: Support, case: Case, incident: Incident, *, now: datetime, by: str
) -> None:
    """Link `case` (read under lock by the caller, who saves it) to an open incident, in
    the caller's transaction; the incident's latest update is queued for its customer."""
    assert incident.id is not None
    if not incident.is_open:
        raise IllegalTransition(
            f"{incident.ref} is {incident.status.value}: link cases to an open incident"
        )
    case.link(incident.id, at=now, by=by)
    latest = _latest_update(tx, incident.id)
    if latest is not None:
        _relay(case, incident, NoticeKind.UPDATE, latest, catalog=sp.rt.catalog, now=now)


async def unlink_case(sp: Support, case_id: int, *, by: Actor) -> CaseView:
    """Unlink a case: nothing more of the incident reaches its customer."""

    def unlink(tx: Transaction, case: Case, now: datetime) -> None:
        case.unlink(at=now, by=actor_name(by))

    return await change_case(sp, case_id, "case unlinked", unlink, by=by, right=CaseRight.WORK)


async def linked_cases(sp: Support, incident_id: int) -> LinkedCases:
    """The cases linked to an incident (the incident's page: how many customers)."""

    def read(tx: Transaction) -> LinkedCases:
        tx.get_incident(incident_id)  # NotFound for an incident that does not exist
        return LinkedCases([_listed(c) for c in tx.cases_linked_to(incident_id)])

    return await sp.rt.store.run(read)


# --- what an incident's change does to its cases ---------------------------------------------


class CaseRelay:
    """The `IncidentFollower` that keeps linked cases in step with their incident."""

    def __init__(self, support: Support) -> None:
        self.sp = support

    def incident_changed(
        self, tx: Transaction, incident: Incident, events: Sequence[object], now: datetime
    ) -> None:
        said = [e for e in events if isinstance(e, CustomerUpdatePosted)]
        resolved = any(isinstance(e, IncidentResolved) for e in events)
        cancelled = any(isinstance(e, IncidentCancelled) for e in events)
        reopened = any(isinstance(e, IncidentReopened) for e in events)
        if not (said or resolved or cancelled or reopened):
            return
        assert incident.id is not None
        for case in tx.cases_linked_to(incident.id, statuses=LISTENING, lock=True):
            case.events = []
            for update in said:
                _relay(
                    case,
                    incident,
                    NoticeKind.UPDATE,
                    update.message,
                    catalog=self.sp.rt.catalog,
                    now=now,
                )
            if reopened:
                _reopened(case, incident, now)
            if resolved:
                self._resolved(case, incident, now)
            if cancelled:
                _called_off(case, incident, now)
            assert case.id is not None
            tx.save_case(case)
            tx.append_case_timeline(case.id, case.events)
            replan_case(tx, self.sp.playbook, case, now=now)

    def _resolved(self, case: Case, incident: Incident, now: datetime) -> None:
        _relay(case, incident, NoticeKind.RESOLVED, "", catalog=self.sp.rt.catalog, now=now)
        if case.status is not CaseStatus.OPEN:
            return
        who = incident.ref
        if case.approvals_missing:
            waits = ", ".join(level.value for level in case.approvals_missing)
            case.events.append(
                TimelineEntry(
                    at=now,
                    kind="note",
                    actor=who,
                    text=f"{who} is resolved; the case stays open for the decision of: {waits}",
                )
            )
        elif self.sp.playbook.on_incident_resolved is CaseStatus.PENDING:
            case.await_confirmation(at=now, by=who, why=f"{who} is resolved")
        else:
            case.resolve(f"resolved with {who}", at=now, by=who)


def _relay(
    case: Case,
    incident: Incident,
    kind: NoticeKind,
    text: str,
    *,
    catalog: Catalog,
    now: datetime,
) -> None:
    assert incident.id is not None
    notice = case.relay(
        kind, incident_id=incident.id, title=incident.public_name(catalog), text=text, at=now
    )
    what = "resolution" if kind is NoticeKind.RESOLVED else "update"
    case.events.append(
        TimelineEntry(
            at=now,
            kind="incident_notice",
            actor=incident.ref,
            text=f"{incident.ref}'s {what} queued for the customer (notice {notice.number})",
            data={"incident": incident.id, "notice": notice.number, "kind": kind.value},
        )
    )


def _reopened(case: Case, incident: Incident, now: datetime) -> None:
    """The fix did not hold: a case waiting for the customer's confirmation is open again."""
    if case.status is CaseStatus.PENDING:
        case.record_progress(
            f"{incident.ref} was reopened", at=now, by=incident.ref, to_customer=False
        )


def _called_off(case: Case, incident: Incident, now: datetime) -> None:
    """A duplicate hands its cases to the incident it was merged into; a false alarm lets
    them go."""
    if incident.merged_into is not None:
        case.link(incident.merged_into, at=now, by=incident.ref)
    else:
        case.unlink(at=now, by=incident.ref)


def _latest_update(tx: Transaction, incident_id: int) -> str | None:
    """The incident's latest customer-facing update, as posted."""
    said = [e for e in tx.timeline(incident_id) if e.kind == "customer_update"]
    return said[-1].text if said else None


def _listed(case: Case) -> LinkedCase:
    assert case.id is not None
    return LinkedCase(
        id=case.id,
        ref=case.ref,
        reference=case.reference,
        customer_id=case.customer_id,
        status=case.status.value,
        level=case.level.value,
        linked_at=case.linked_at,
    )
