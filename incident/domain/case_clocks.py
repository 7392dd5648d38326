"""A case's clocks: the timed steps of the support playbook and when each is next due.

Steps are data (`playbooks/support/clocks.yaml`): "tier 1 must answer a Pro customer within
4 business hours; at 75 % its lead hears of it; unconfirmed at the response time, the lead
is reminded; at twice it, the next level is told". Each step counts from an anchor of the
case (opened, the current level got it, the last progress, the last customer update,
resolved) by a delay: a fixed span, or a share of the current level's response time, in
real time or in the level's business hours. A step runs until one of its own `until`
events happens, only while the case is at one of its `levels` (and of its priorities and
plans), and once for each instant its anchor takes (a repeating one on a grid from there).

Besides the playbook's steps, a case linked to an incident has one step per customer-facing
word of that incident (`incident_notice.<n>`, from `case.notices`): due when the incident
said it, sent once, and only while the case is still linked to that incident.

Pure, like incident planning (`incident.domain.planning`, whose `StepHistory` and
`PlannedOccurrence` these share): the same facts always give the same plan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cached_property

from incident.domain.case import Case, CaseStatus, IncidentNotice, NoticeKind, Plan
from incident.domain.case_ladder import Ladder, Span
from incident.domain.case_routing import Level, Urgency
from incident.domain.lifecycle import Severity
from incident.domain.patterns import PatternRules
from incident.domain.planning import NO_HISTORY, PlannedOccurrence, StepHistory, Stop, Verdict
from incident.domain.verification_policy import VerificationPolicy


class CaseAnchor(StrEnum):
    OPENED = "opened"
    LEVEL_ENTERED = "level_entered"  # the current level got the case
    LAST_PROGRESS = "last_progress"  # the latest progress, or the level getting the case
    LAST_CUSTOMER_UPDATE = "last_customer_update"  # or the opening
    ESCALATED = "escalated"  # the escalation that brought it to the current level
    DEESCALATED = "deescalated"  # the latest time it came back down
    ANSWERED = "answered"  # the current level's latest progress (none yet: not happened)
    DECIDED = "decided"  # the latest decision (the CIO's or the CEO's)
    PENDING = "pending"  # waiting for the customer's confirmation since (only while it waits)
    RESOLVED = "resolved"


class CaseStop(StrEnum):
    CONFIRMED = "confirmed"  # the current level confirmed receipt (or nobody had to)
    RESPONDED = "responded"  # the current level recorded progress since it got the case
    FIRST_RESPONSE = "first_response"
    RESOLVED = "resolved"
    DECIDED = "decided"  # every required approval is given
    EXPECTED_RESOLUTION_SET = "expected_resolution_set"


class CaseAction(StrEnum):
    NOTIFY = "notify"  # a message to `target`
    ESCALATE = "escalate"  # the case moves up to `target`, whose contacts are told
    CUSTOMER_UPDATE = "customer_update"  # a holding message to the customer
    ROUTE = "route"  # apply the routing rules now (a threshold of time has passed)
    RESOLVE = "resolve"  # resolve a case still waiting for the customer's confirmation
    CLUSTER = "cluster"  # compare the case with other customers' reports (patterns)


# What a step may name as its target, besides a level of the ladder.
CURRENT_LEVEL = "level"  # the current level's contacts
LEAD = "lead"  # the current level's lead
NEXT = "next"  # the level after the current one (the ladder's `next`)
NEXT_LEAD = "next_lead"
AGENT = "agent"  # the agent who opened the case
CUSTOMER = "customer"
TARGET_WORDS = (CURRENT_LEVEL, LEAD, NEXT, NEXT_LEAD, AGENT, CUSTOMER)


@dataclass(frozen=True)
class Delay:
    """How long after its anchor a step is due: a fixed `span`, or `share` of the current
    level's response time (0.75: at 75 % of it; 2: at twice it)."""

    span: Span | None = None
    share: float | None = None

    def after(self, case: Case, ladder: Ladder, start: datetime) -> datetime | None:
        """When it runs out for this case (None: the level has no response time)."""
        if self.span is not None:
            return ladder.due(case, self.span, start)
        response = ladder[case.level].response_time(case)
        if response is None or self.share is None:
            return None
        day = ladder[case.level].calendar.day_length if response.business else timedelta(days=1)
        whole = response.length + response.business_days * day
        return ladder.due(case, Span(whole * self.share, 0, response.business), start)


@dataclass(frozen=True)
class CaseStep:
    id: str
    description: str
    action: CaseAction
    anchor: CaseAnchor
    after: Delay
    target: str | None = None
    template: str | None = None
    every: Span | None = None
    until: tuple[CaseStop, ...] = ()
    levels: tuple[Level, ...] = ()  # only while the case is at one of these (none: any)
    priorities: tuple[Severity, ...] = ()
    plans: tuple[Plan, ...] = ()
    urgencies: tuple[Urgency, ...] = ()  # only after an escalation of this urgency
    # Only between these times after the case opened (real time): "then every 4 h".
    window_from: timedelta = timedelta(0)
    window_to: timedelta | None = None

    @property
    def repeats(self) -> bool:
        return self.every is not None


def anchor_time(case: Case, anchor: CaseAnchor) -> datetime | None:
    match anchor:
        case CaseAnchor.OPENED:
            return case.opened_at
        case CaseAnchor.LEVEL_ENTERED:
            return case.level_entered_at
        case CaseAnchor.LAST_PROGRESS:
            moments = [m for m in (case.level_entered_at, case.last_progress_at) if m]
            return max(moments, default=None)
        case CaseAnchor.LAST_CUSTOMER_UPDATE:
            return case.last_customer_update_at or case.opened_at
        case CaseAnchor.ESCALATED:
            current = case.current
            return current.at if current is not None else None
        case CaseAnchor.DEESCALATED:
            return case.deescalated_at
        case CaseAnchor.ANSWERED:
            entered, progress = case.level_entered_at, case.last_progress_at
            answered = progress is not None and (entered is None or progress >= entered)
            return progress if answered else None
        case CaseAnchor.DECIDED:
            return case.approvals[-1].at if case.approvals else None
        case CaseAnchor.PENDING:
            return case.pending_since
        case CaseAnchor.RESOLVED:
            return case.resolved_at


def has_happened(case: Case, event: CaseStop) -> bool:
    match event:
        case CaseStop.CONFIRMED:
            return case.receipt_confirmed
        case CaseStop.RESPONDED:
            entered, progress = case.level_entered_at, case.last_progress_at
            return progress is not None and (entered is None or progress >= entered)
        case CaseStop.FIRST_RESPONSE:
            return case.first_response_at is not None
        case CaseStop.RESOLVED:
            return not case.is_open
        case CaseStop.DECIDED:
            return not case.approvals_missing
        case CaseStop.EXPECTED_RESOLUTION_SET:
            return case.expected_resolution_at is not None


def applies(step: CaseStep, case: Case) -> bool:
    """Whether the step is part of this case's plan at all, as it stands."""
    if step.anchor is CaseAnchor.PENDING:
        if case.pending_since is None:
            return False
    elif step.anchor is not CaseAnchor.RESOLVED and not case.is_open:
        return False
    return (
        (not step.levels or case.level in step.levels)
        and (not step.priorities or case.priority in step.priorities)
        and (not step.plans or case.plan in step.plans)
        and (
            not step.urgencies
            or (case.current is not None and case.current.urgency in step.urgencies)
        )
    )


def stopped_by(case: Case, step: CaseStep) -> CaseStop | None:
    return next((event for event in step.until if has_happened(case, event)), None)


def next_occurrence(
    step: CaseStep, case: Case, ladder: Ladder, history: StepHistory = NO_HISTORY
) -> PlannedOccurrence | None:
    """The one occurrence of `step` that should be pending now, or None."""
    if (notice := notice_of(case, step.id)) is not None:
        return _notice_occurrence(step, case, notice, history)
    if not applies(step, case) or stopped_by(case, step) is not None:
        return None
    anchor = anchor_time(case, step.anchor)
    if anchor is None:
        return None
    due = step.after.after(case, ladder, anchor)
    if due is None:
        return None
    if step.every is None:
        if history.last_due is not None and history.last_due >= due:
            return None  # fired for this instant of its anchor already
    elif history.last_due is not None and history.last_due >= due:
        due = ladder.due(case, step.every, history.last_due)
        fired_at = history.last_fired_at or history.last_due
        if due <= fired_at:
            # Fired late: the next one counts from when it fired, never a burst of catch-ups.
            due = ladder.due(case, step.every, fired_at)
    due = max(due, case.opened_at + step.window_from)
    if step.window_to is not None and due >= case.opened_at + step.window_to:
        return None
    return PlannedOccurrence(step_id=step.id, occurrence=history.fired + 1, due_at=due)


# --- the linked incident's words, one step each --------------------------------------------

NOTICE_STEP = "incident_notice."
NOTICE_TEMPLATES = {
    NoticeKind.UPDATE: "case_incident_update",
    NoticeKind.RESOLVED: "case_incident_resolved",
}


def notice_step(notice: IncidentNotice) -> CaseStep:
    """The step that sends one of the linked incident's words to the case's customer."""
    what = "is resolved" if notice.kind is NoticeKind.RESOLVED else "has an update"
    return CaseStep(
        id=f"{NOTICE_STEP}{notice.number}",
        description=f"The customer hears that the incident INC-{notice.incident_id} {what}.",
        action=CaseAction.CUSTOMER_UPDATE,
        anchor=CaseAnchor.OPENED,  # unused: a notice is due when the incident said it
        after=Delay(span=Span()),
        target=CUSTOMER,
        template=NOTICE_TEMPLATES[notice.kind],
    )


def notice_of(case: Case, step_id: str) -> IncidentNotice | None:
    """The notice a step id names (`incident_notice.3`), if the case has it."""
    if not step_id.startswith(NOTICE_STEP):
        return None
    number = step_id[len(NOTICE_STEP) :]
    if not number.isdecimal() or not 1 <= int(number) <= len(case.notices):
        return None
    return case.notices[int(number) - 1]


def _notice_occurrence(
    step: CaseStep, case: Case, notice: IncidentNotice, history: StepHistory
) -> PlannedOccurrence | None:
    """Once, when the incident said it; never once the case was unlinked from it."""
    if history.fired or case.incident_id != notice.incident_id:
        return None
    return PlannedOccurrence(step_id=step.id, occurrence=1, due_at=notice.at)


def plan(
    case: Case, steps: Sequence[CaseStep], ladder: Ladder, history: Mapping[str, StepHistory]
) -> list[PlannedOccurrence]:
    """Every occurrence that should be pending for this case, in due order (ties keep the
    playbook's order)."""
    planned = [
        occurrence
        for step in steps
        if (occurrence := next_occurrence(step, case, ladder, history.get(step.id, NO_HISTORY)))
    ]
    return sorted(planned, key=lambda o: o.due_at)


def verdict(
    step: CaseStep | None,
    case: Case,
    *,
    ladder: Ladder,
    occurrence_number: int,
    history: Mapping[str, StepHistory],
    now: datetime,
) -> Verdict | None:
    """Should a claimed occurrence still run at `now`? None if so."""
    if step is None:
        return Verdict(Stop.NOT_IN_PLAYBOOK, "not in the support playbook")
    if (event := stopped_by(case, step)) is not None:
        return Verdict(Stop.STOPPED, f"stopped: {event.value}")
    planned = next_occurrence(step, case, ladder, history.get(step.id, NO_HISTORY))
    if planned is None or planned.occurrence != occurrence_number:
        return Verdict(Stop.NO_LONGER_PLANNED, "no longer planned")
    if planned.due_at > now:
        return Verdict(Stop.MOVED, f"moved to {planned.due_at.isoformat()}")
    return None


@dataclass(frozen=True)
class SupportPlaybook:
    """The support half's data: the ladder (levels, calendars, thresholds) and the clocks."""

    ladder: Ladder
    steps: tuple[CaseStep, ...]
    # What a linked case becomes when its incident resolves: resolved with it, or pending
    # (waiting for the customer's confirmation that the fix works for them).
    on_incident_resolved: CaseStatus = CaseStatus.RESOLVED
    # When many customers' cases make an incident candidate (patterns.yaml).
    patterns: PatternRules = field(default_factory=PatternRules)
    # Account-ownership verifications (verification.yaml); None: not loaded (tests that
    # build a playbook by hand).
    verification: VerificationPolicy | None = None

    def step(self, step_id: str) -> CaseStep | None:
        return self._by_id.get(step_id)

    def step_of(self, case: Case, step_id: str) -> CaseStep | None:
        """A step of this case: the playbook's, or one of its linked incident's notices."""
        notice = notice_of(case, step_id)
        return notice_step(notice) if notice is not None else self.step(step_id)

    def case_steps(self, case: Case) -> tuple[CaseStep, ...]:
        """What planning this case looks at: `steps_for(case)` and the steps of the notices
        of the incident it is linked to."""
        steps = self.steps_for(case)
        if case.incident_id is None:
            return steps
        linked = (n for n in case.notices if n.incident_id == case.incident_id)
        return (*steps, *(notice_step(n) for n in linked))

    def steps_for(self, case: Case) -> tuple[CaseStep, ...]:
        """The steps a case at its level, of its priority and plan can have: all that its
        planning needs to look at (planning them gives the plan all the steps give; a
        property test compares the two on every case it makes)."""
        key = (case.level, case.priority, case.plan)
        found = self._narrowed.get(key)
        if found is None:
            found = self._narrowed[key] = tuple(
                s
                for s in self.steps
                if (not s.levels or case.level in s.levels)
                and (not s.priorities or case.priority in s.priorities)
                and (not s.plans or case.plan in s.plans)
            )
        return found

    @cached_property
    def _by_id(self) -> dict[str, CaseStep]:
        return {s.id: s for s in self.steps}

    @cached_property
    def _narrowed(self) -> dict[tuple[Level, Severity, Plan], tuple[CaseStep, ...]]:
        return {}
