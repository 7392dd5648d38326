"""One support case: its facts, the commands that change them and what each change records.

Pure: no I/O and no clock. Every command takes the instant `at` from its caller, appends
what it did to `case.events` (timeline entries, in words people read) and raises
`IllegalTransition` with a reason a person can act on when the case cannot make the change.

Who may ask for a change (an agent, a tier lead, a manager, the CIO ...) is the use cases'
business (`incident.services.cases`); what the rules demand of an escalation (its context,
its route) is `case_context` and `case_routing`'s. This module keeps the case consistent:
one current level, escalations in order, receipt confirmed once, the CEO reached only from
the CIO, nothing changed after resolution but reopening.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from incident.domain.case_context import ChecklistItem
from incident.domain.case_routing import (
    HEIGHT,
    SPECIALIST_TEAMS,
    CaseFacts,
    Flag,
    Level,
    Urgency,
)
from incident.domain.errors import IllegalTransition
from incident.domain.lifecycle import Severity
from incident.domain.records import TimelineEntry

# The longest category or component a case takes (its database column's size).
LABEL_LENGTH = 100


class Plan(StrEnum):
    """The customer's support plan: it sets the response clocks."""

    STARTER = "starter"
    PRO = "pro"
    ENTERPRISE = "enterprise"


class CaseStatus(StrEnum):
    OPEN = "open"
    # Waiting for the customer's confirmation that the fix works (its linked incident was
    # resolved): no response clock runs; the customer's or an agent's next word opens it
    # again, a person or the confirmation clock resolves it.
    PENDING = "pending"
    RESOLVED = "resolved"


class Deescalation(StrEnum):
    """Why a case goes back down, and whether the receiving level's clock starts again."""

    RESOLVED_AT_HIGHER_TIER = "resolved_at_higher_tier"
    WAITING_FOR_CUSTOMER = "waiting_for_customer"
    PREMATURE = "premature"
    RECLASSIFIED_LOWER = "reclassified_lower"
    WORKAROUND_GIVEN = "workaround_given"

    @property
    def restarts_clock(self) -> bool:
        """The level taking the case back answers on a fresh clock, except while the case
        waits for the customer: then its clock keeps counting from where it was, so a case
        parked on the customer still shows how long we have had it."""
        return self is not Deescalation.WAITING_FOR_CUSTOMER

    @property
    def words(self) -> str:
        return self.value.replace("_", " ")


@dataclass(frozen=True)
class Escalation:
    """One move of the case up to another level (kept in order; the last is the current)."""

    number: int
    from_level: Level
    to_level: Level
    at: datetime
    by: str
    reason: str  # why escalating, in the escalating person's words
    rule: str  # the routing explanation ("CIO because: legal threat"), or "by hand"
    urgency: Urgency
    recommends_ceo: bool = False
    urgency_note: str | None = None  # why a person upgraded it to cannot-wait
    gate_override: str | None = None  # a manager's reason to escalate without full context
    confirmed_at: datetime | None = None
    confirmed_by: str | None = None


@dataclass(frozen=True)
class Approval:
    """A decision by a named approver (the CIO, the CEO)."""

    level: Level
    by: str
    at: datetime
    approved: bool
    note: str


class NoticeKind(StrEnum):
    UPDATE = "update"  # a customer-facing update of the linked incident
    RESOLVED = "resolved"  # the linked incident was resolved


@dataclass(frozen=True)
class IncidentNotice:
    """One customer-facing word of the incident a case is linked to, for the case's
    customer: numbered per case, each sent once by its own step (`incident_notice.<n>`).
    Only public texts: the update as posted, the incident's public name."""

    number: int
    incident_id: int
    kind: NoticeKind
    at: datetime
    title: str  # the incident's public name
    text: str  # the update's text (empty for a resolution without one)


@dataclass(frozen=True)
class CaseChange:
    """What an update changes; None leaves a field as it is."""

    summary: str | None = None
    priority: Severity | None = None
    plan: Plan | None = None
    contacts: int | None = None
    disputed_amount: Decimal | None = None
    csr: Decimal | None = None
    usdt_amount: Decimal | None = None
    flags: frozenset[Flag] | None = None
    crypto: bool | None = None
    customer_email: str | None = None
    context: dict[str, Any] | None = None  # merged into the case's context
    checklist: frozenset[ChecklistItem] | None = None
    expected_resolution_at: datetime | None = None
    category: str | None = None
    component: str | None = None


@dataclass
class Case:
    """One support case, mirrored from the helpdesk ticket `reference`."""

    reference: str
    customer_id: str
    summary: str
    plan: Plan
    priority: Severity
    opened_at: datetime
    opened_by: str
    id: int | None = None
    status: CaseStatus = CaseStatus.OPEN
    level: Level = Level.TIER_1
    level_entered_at: datetime | None = None  # when the current level got the case
    customer_email: str | None = None
    contacts: int = 1
    disputed_amount: Decimal | None = None  # in EUR
    csr: Decimal | None = None
    usdt_amount: Decimal | None = None
    flags: frozenset[Flag] = frozenset()
    crypto: bool = False
    context: dict[str, Any] = field(default_factory=dict)
    checklist: frozenset[ChecklistItem] = frozenset()
    escalations: list[Escalation] = field(default_factory=list)
    approvals: list[Approval] = field(default_factory=list)
    required_approvals: tuple[Level, ...] = ()
    first_response_at: datetime | None = None
    last_progress_at: datetime | None = None
    last_customer_update_at: datetime | None = None
    expected_resolution_at: datetime | None = None
    deescalated_at: datetime | None = None
    resolved_at: datetime | None = None
    resolution: str | None = None
    changed_at: datetime | None = None
    # What the signature groups by (clustering many customers' reports of one problem).
    category: str = ""
    component: str = ""
    incident_id: int | None = None  # the incident this case is linked to
    linked_at: datetime | None = None
    notices: list[IncidentNotice] = field(default_factory=list)
    pending_since: datetime | None = None  # waiting for the customer's confirmation since
    events: list[TimelineEntry] = field(default_factory=list, repr=False, compare=False)

    # --- queries ---------------------------------------------------------------------------

    @property
    def ref(self) -> str:
        return f"CASE-{self.id}" if self.id is not None else "CASE-new"

    @property
    def is_open(self) -> bool:
        return self.status is CaseStatus.OPEN

    @property
    def current(self) -> Escalation | None:
        """The escalation that brought the case to its current level (None at tier 1, or
        after it came back down to where it started)."""
        if self.escalations and self.escalations[-1].to_level is self.level:
            return self.escalations[-1]
        return None

    @property
    def receipt_confirmed(self) -> bool:
        current = self.current
        return current is None or current.confirmed_at is not None

    @property
    def agent(self) -> str:
        """The original agent: who opened the case, who hears when it comes back down."""
        return self.opened_by

    def facts(self) -> CaseFacts:
        """What routing reads of the case."""
        return CaseFacts(
            opened_at=self.opened_at,
            flags=self.flags,
            contacts=self.contacts,
            resolved=not self.is_open,
            disputed_amount=self.disputed_amount,
            csr=self.csr,
            usdt_amount=self.usdt_amount,
        )

    def approval_by(self, level: Level) -> Approval | None:
        return next((a for a in reversed(self.approvals) if a.level is level), None)

    @property
    def approvals_missing(self) -> tuple[Level, ...]:
        """The required approvals not given yet (a decline counts as given: it is final)."""
        return tuple(level for level in self.required_approvals if self.approval_by(level) is None)

    # --- commands --------------------------------------------------------------------------

    @classmethod
    def open(cls, case: Case) -> Case:
        """`case` as opened: its clocks start at `opened_at` with the level it opens at."""
        case.level_entered_at = case.opened_at
        case.changed_at = case.opened_at
        case._record(
            case.opened_at,
            "case_opened",
            case.opened_by,
            f"Opened at {case.level.value} ({case.priority.value}, {case.plan.value}): "
            f"{case.summary}",
        )
        return case

    def update(self, change: CaseChange, *, at: datetime, by: str) -> list[str]:
        """Apply `change`; returns the names of the fields that changed (none: no entry)."""
        if self.status is not CaseStatus.PENDING:  # correcting facts is not an answer
            self._require_open("update")
        changed: list[str] = []
        for name, value in vars(change).items():
            if value is None or name == "context":
                continue
            if getattr(self, name) != value:
                setattr(self, name, value)
                changed.append(name)
        if change.context:
            merged = {**self.context, **change.context}
            if merged != self.context:
                self.context = merged
                changed.append("context")
        if changed:
            self.changed_at = at
            self._record(at, "case_updated", by, "Updated " + ", ".join(changed), fields=changed)
        return changed

    def record_progress(self, note: str, *, at: datetime, by: str, to_customer: bool) -> None:
        """A person worked the case (a note, or an answer to the customer): the progress
        clock starts again; the first one is the first response. On a case waiting for the
        customer's confirmation, it is open again: they answered, or an agent took it up."""
        self._wake(at, by)
        self._require_open("record progress on")
        self.last_progress_at = at
        if self.first_response_at is None:
            self.first_response_at = at
        if to_customer:
            self.last_customer_update_at = at
        kind = "customer_update" if to_customer else "progress"
        self._record(at, kind, by, note)

    def escalate(self, escalation: Escalation) -> Escalation:
        """Move the case up to `escalation.to_level` (numbered here)."""
        self._require_open("escalate")
        to = escalation.to_level
        if to is self.level:
            raise IllegalTransition(f"{self.ref} is already at {to.value}")
        # The specialist teams stand beside the ladder: any level may bring them in.
        if HEIGHT[to] < HEIGHT[self.level] and to not in SPECIALIST_TEAMS:
            raise IllegalTransition(
                f"{to.value} is below {self.level.value}: to send {self.ref} down, de-escalate it"
            )
        if to is Level.CEO and self.level is not Level.CIO:
            raise IllegalTransition(
                "the CEO is reached only through the CIO: escalate to the CIO, recommending the CEO"
            )
        escalation = replace(escalation, number=len(self.escalations) + 1, from_level=self.level)
        self.escalations.append(escalation)
        self.level = to
        self.level_entered_at = escalation.at
        self.changed_at = escalation.at
        words = f"Escalated {escalation.from_level.value} -> {to.value} ({escalation.rule})"
        self._record(
            escalation.at, "case_escalated", escalation.by, f"{words}: {escalation.reason}"
        )
        return escalation

    def confirm_receipt(self, *, at: datetime, by: str) -> Escalation:
        """The receiving level confirms it has the case (once per escalation)."""
        self._require_open("confirm receipt of")
        current = self.current
        if current is None:
            raise IllegalTransition(
                f"{self.ref} has no escalation to {self.level.value} to confirm"
            )
        if current.confirmed_at is not None:
            raise IllegalTransition(
                f"receipt at {self.level.value} was confirmed by {current.confirmed_by} "
                f"at {current.confirmed_at.isoformat()}"
            )
        confirmed = replace(current, confirmed_at=at, confirmed_by=by)
        self.escalations[-1] = confirmed
        self.changed_at = at
        self._record(at, "receipt_confirmed", by, f"Receipt confirmed at {self.level.value}")
        return confirmed

    def deescalate(self, to: Level, why: Deescalation, note: str, *, at: datetime, by: str) -> None:
        """Send the case back down to a level it came through."""
        self._require_open("de-escalate")
        earlier = [e.from_level for e in self.escalations]
        if to is self.level or to not in earlier:
            came = ", ".join(dict.fromkeys(level.value for level in earlier)) or "none"
            raise IllegalTransition(
                f"{self.ref} can go back only to a level it came through ({came})"
            )
        self.level = to
        self.deescalated_at = at
        if why.restarts_clock:
            self.level_entered_at = at
        self.changed_at = at
        self._record(
            at, "case_deescalated", by, f"De-escalated to {to.value} ({why.words}): {note}"
        )

    def decide(self, approval: Approval) -> None:
        """Record a named approver's decision (the CIO's or the CEO's)."""
        self._require_open("decide on")
        if approval.level not in self.required_approvals:
            needed = ", ".join(level.value for level in self.required_approvals) or "none"
            raise IllegalTransition(
                f"{self.ref} needs no {approval.level.value} decision (it needs: {needed})"
            )
        if self.approval_by(approval.level) is not None:
            raise IllegalTransition(f"the {approval.level.value} has decided on {self.ref} already")
        self.approvals.append(approval)
        self.changed_at = approval.at
        verdict = "approved" if approval.approved else "declined"
        self._record(
            approval.at,
            "decision",
            approval.by,
            f"{approval.level.value} {verdict}: {approval.note}",
        )

    def require_approvals(self, levels: tuple[Level, ...], *, at: datetime) -> None:
        added = tuple(level for level in levels if level not in self.required_approvals)
        if added:
            self.required_approvals += added
            self.changed_at = at

    def resolve(self, resolution: str, *, at: datetime, by: str) -> None:
        self._wake(at, by, quietly=True)
        self._require_open("resolve")
        if self.approvals_missing:
            missing = ", ".join(level.value for level in self.approvals_missing)
            raise IllegalTransition(f"{self.ref} waits for the decision of: {missing}")
        self.status = CaseStatus.RESOLVED
        self.resolved_at = at
        self.resolution = resolution
        self.pending_since = None
        self.changed_at = at
        self._record(at, "case_resolved", by, f"Resolved: {resolution}")

    # --- the linked incident ---------------------------------------------------------------

    def link(self, incident_id: int, *, at: datetime, by: str) -> None:
        """Link the case to an incident: its customer hears what the incident says from now
        on (a case is linked to one incident at a time; linking again moves it)."""
        self._require_open("be linked")
        if self.incident_id == incident_id:
            raise IllegalTransition(f"{self.ref} is linked to INC-{incident_id} already")
        self.incident_id, self.linked_at, self.changed_at = incident_id, at, at
        self._record(at, "case_linked", by, f"Linked to INC-{incident_id}", incident=incident_id)

    def unlink(self, *, at: datetime, by: str) -> None:
        """Stop relaying the incident's words (those not sent yet are not sent)."""
        if self.incident_id is None:
            raise IllegalTransition(f"{self.ref} is not linked to an incident")
        was, self.incident_id, self.linked_at, self.changed_at = self.incident_id, None, None, at
        self._record(at, "case_unlinked", by, f"Unlinked from INC-{was}", incident=was)

    def relay(
        self, kind: NoticeKind, *, incident_id: int, title: str, text: str, at: datetime
    ) -> IncidentNotice:
        """Queue one of the linked incident's customer-facing words for this case's
        customer (its step sends it)."""
        notice = IncidentNotice(len(self.notices) + 1, incident_id, kind, at, title, text)
        self.notices.append(notice)
        return notice

    def await_confirmation(self, *, at: datetime, by: str, why: str) -> None:
        """Wait for the customer to confirm the fix: no response clock runs meanwhile."""
        self._require_open("wait for the customer's confirmation")
        self.status, self.pending_since, self.changed_at = CaseStatus.PENDING, at, at
        self._record(at, "case_pending", by, f"Waiting for the customer's confirmation: {why}")

    # --- helpers ---------------------------------------------------------------------------

    def _wake(self, at: datetime, by: str, *, quietly: bool = False) -> None:
        """A case waiting for the customer's confirmation is open again."""
        if self.status is not CaseStatus.PENDING:
            return
        self.status, self.pending_since, self.changed_at = CaseStatus.OPEN, None, at
        if not quietly:
            self._record(at, "case_reopened", by, "Open again: no longer waiting for the customer")

    def _require_open(self, what: str) -> None:
        if self.status is CaseStatus.PENDING:
            raise IllegalTransition(
                f"{self.ref} is waiting for the customer's confirmation: record their answer "
                f"(or a note) first, which opens it again, then {what}"
            )
        if not self.is_open:
            raise IllegalTransition(f"{self.ref} is resolved: it cannot {what} any more")

    def _record(self, at: datetime, kind: str, by: str, text: str, **data: Any) -> None:
        if at.tzinfo is None:
            raise ValueError("instants must be timezone-aware UTC datetimes")
        self.events.append(TimelineEntry(at=at, kind=kind, actor=by, text=text, data=data))
