"""Use cases of support cases: open, update, work, escalate, confirm receipt, de-escalate,
decide, resolve; and what a case looks like with its clocks.

Each change is one unit of work: the case is read under lock, the person's right checked
on it as it is then, the change made, the rules applied (a case whose facts call for a
higher level goes there at once: a legal threat reaches the CIO), the timeline written and
the case's steps re-planned. Nothing is half-written: a refusal changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from incident.domain.access import Actor, actor_name
from incident.domain.case import Approval, Case, CaseChange, CaseStatus, Deescalation, Escalation
from incident.domain.case_access import APPROVER, CaseRight, SupportRoles
from incident.domain.case_clocks import SupportPlaybook, plan
from incident.domain.case_context import (
    ContextRefused,
    FieldProblem,
    checklist_problems,
    context_kinds,
    missing_context,
)
from incident.domain.case_ladder import Sla, sla
from incident.domain.case_routing import (
    HEIGHT,
    SPECIALIST_TEAMS,
    Flag,
    Level,
    Mode,
    Route,
    Urgency,
    route,
)
from incident.domain.errors import IllegalTransition, InvalidValue
from incident.domain.planning import PlannedOccurrence
from incident.domain.records import (
    UPCOMING_STATES,
    Occurrence,
    OccurrenceState,
    SubjectRef,
    TimelineEntry,
)
from incident.services.incidents import Runtime
from incident.services.ports import Transaction

log = logging.getLogger("incident.cases")

CASE = "case"  # the subject kind of support cases
ROUTING = "routing"  # who the timeline names when the rules move a case
# Flags that make a case an emergency category: tier 1 may escalate before troubleshooting.
EMERGENCY_FLAGS = frozenset(
    {
        Flag.LEGAL_THREAT,
        Flag.REGULATORY_INQUIRY,
        Flag.MEDIA_CONTACT,
        Flag.SUSPECTED_FRAUD,
        Flag.DATA_BREACH,
        Flag.LEGAL_SERVICE,
        Flag.REGULATORY_ACTION,
        Flag.SYSTEM_DOWN,
    }
)


def case_ref(case_id: int) -> SubjectRef:
    return SubjectRef(CASE, case_id)


@dataclass(frozen=True)
class Support:
    """What the case use cases work with. Built once by bootstrap."""

    rt: Runtime  # the store, the clock, and who hears that a plan changed
    playbook: SupportPlaybook
    roles: SupportRoles = field(default_factory=SupportRoles)


@dataclass(frozen=True)
class EscalationRequest:
    """A person asking to move a case up."""

    to: Level
    reason: str
    urgency: Urgency | None = None  # None: as the rule says (can wait when no rule)
    urgency_note: str | None = None  # why it cannot wait, when a person upgrades it
    override: str | None = None  # a manager's reason to escalate without the full context


@dataclass(frozen=True)
class UpcomingCaseStep:
    step_id: str
    description: str
    action: str
    target: str | None
    due_at: datetime
    state: str


@dataclass(frozen=True)
class CaseView:
    """A case as every surface shows it."""

    case: Case
    sla: Sla
    routes: list[Route]
    upcoming: list[UpcomingCaseStep]
    # What escalating to the next level would still need (the case page's checklist).
    next_level: Level | None
    missing: list[FieldProblem]
    timeline: list[TimelineEntry]
    notice: str | None = None  # what a surface must tell the person (a converted request)


# --- use cases -------------------------------------------------------------------------------


async def open_case(sp: Support, case: Case, *, by: Actor) -> CaseView:
    """Open `case` (its facts already checked by the door's parser) and route it."""
    now = sp.rt.clock.now()
    case = replace(case, opened_at=now, opened_by=actor_name(by), events=[])

    def work(tx: Transaction) -> CaseView:
        sp.roles.check(by, CaseRight.WORK)
        Case.open(case)
        apply_rules(sp, case, now)  # routed before it is stored: one write
        tx.add_case(case)
        return _commit(sp, tx, case, now, new=True)

    opened = await sp.rt.store.run(work, urgent=True)
    return _done(sp, opened, "case opened")


async def update_case(sp: Support, case_id: int, change: CaseChange, *, by: Actor) -> CaseView:
    def mutate(tx: Transaction, case: Case, now: datetime) -> None:
        case.update(change, at=now, by=actor_name(by))

    return await change_case(sp, case_id, "case updated", mutate, by=by, right=CaseRight.WORK)


async def record_progress(
    sp: Support, case_id: int, note: str, *, to_customer: bool, by: Actor
) -> CaseView:
    """A note on the work done, or (`to_customer`) an answer the customer was sent."""

    def mutate(tx: Transaction, case: Case, now: datetime) -> None:
        case.record_progress(note, at=now, by=actor_name(by), to_customer=to_customer)

    return await change_case(sp, case_id, "progress recorded", mutate, by=by, right=CaseRight.WORK)


async def escalate_case(
    sp: Support, case_id: int, request: EscalationRequest, *, by: Actor
) -> CaseView:
    """Move a case up, by the rules: with the context the receiving level needs (or a
    manager's override), the CEO only from the CIO (an agent's CEO request becomes a CIO
    escalation recommending the CEO), the urgency the rule gives (a person may upgrade it,
    with a reason)."""
    notice: list[str] = []

    def mutate(tx: Transaction, case: Case, now: datetime) -> None:
        wanted = request
        if wanted.to is Level.CEO and case.level is not Level.CIO:
            wanted = replace(wanted, to=Level.CIO)
            notice.append(
                "The CEO is reached only through the CIO: escalated to the CIO, "
                "recommending the CEO; the CIO decides whether it goes on."
            )
        elif wanted.to is Level.CEO:
            sp.roles.check(by, CaseRight.ROUTE_TO_CEO)
        if wanted.to is case.level:
            raise IllegalTransition(f"{case.ref} is already at {case.level.value}")
        problems = gate_problems(case, wanted.to, wanted.reason)
        if problems and wanted.override is None:
            raise ContextRefused(tuple(problems))
        if problems:
            sp.roles.check(by, CaseRight.OVERRIDE_GATE)
        if not problems:
            wanted = replace(wanted, override=None)  # nothing was overridden
        case.escalate(_escalation(sp, case, wanted, now, by=actor_name(by), ceo=bool(notice)))
        if problems:
            missing = ", ".join(p.field for p in problems)
            case.events.append(
                TimelineEntry(
                    at=now,
                    kind="gate_overridden",
                    actor=actor_name(by),
                    text=f"Escalated without {missing}: {wanted.override}",
                    data={"missing": [p.field for p in problems]},
                )
            )

    view = await change_case(sp, case_id, "case escalated", mutate, by=by, right=CaseRight.ESCALATE)
    return replace(view, notice=notice[0] if notice else None)


async def confirm_receipt(sp: Support, case_id: int, *, by: Actor) -> CaseView:
    def mutate(tx: Transaction, case: Case, now: datetime) -> None:
        case.confirm_receipt(at=now, by=actor_name(by))

    return await change_case(sp, case_id, "receipt confirmed", mutate, by=by, right=CaseRight.WORK)


async def deescalate_case(
    sp: Support, case_id: int, to: Level, why: Deescalation, note: str, *, by: Actor
) -> CaseView:
    def mutate(tx: Transaction, case: Case, now: datetime) -> None:
        case.deescalate(to, why, note, at=now, by=actor_name(by))

    return await change_case(
        sp, case_id, "case de-escalated", mutate, by=by, right=CaseRight.ESCALATE
    )


async def decide(
    sp: Support, case_id: int, level: Level, *, approved: bool, note: str, by: Actor
) -> CaseView:
    """The CIO's or the CEO's decision, by that named approver."""
    right = APPROVER.get(level)
    if right is None:
        raise InvalidValue("level", "decisions are the CIO's (cio) or the CEO's (ceo)")

    def mutate(tx: Transaction, case: Case, now: datetime) -> None:
        case.decide(Approval(level, actor_name(by), now, approved, note))

    return await change_case(sp, case_id, "decision recorded", mutate, by=by, right=right)


async def resolve_case(sp: Support, case_id: int, resolution: str, *, by: Actor) -> CaseView:
    def mutate(tx: Transaction, case: Case, now: datetime) -> None:
        case.resolve(resolution, at=now, by=actor_name(by))

    return await change_case(sp, case_id, "case resolved", mutate, by=by, right=CaseRight.WORK)


async def read_case(sp: Support, case_id: int, *, by: Actor = ROUTING) -> CaseView:
    sp.roles.check(by, CaseRight.VIEW)
    now = sp.rt.clock.now()

    def read(tx: Transaction) -> CaseView:
        case = tx.get_case(case_id)
        return case_view(sp, tx, case, now)

    return await sp.rt.store.read(read)


async def list_cases(
    sp: Support,
    *,
    statuses: Sequence[CaseStatus] = (),
    levels: Sequence[Level] = (),
    limit: int = 100,
    offset: int = 0,
) -> list[tuple[Case, Sla]]:
    """Cases with their response clocks, the longest-waiting first."""
    now = sp.rt.clock.now()

    def read(tx: Transaction) -> list[Case]:
        return tx.list_cases(statuses=statuses, levels=levels, limit=limit, offset=offset)

    cases = await sp.rt.store.read(read)
    return [(case, sla(case, sp.playbook.ladder, now)) for case in cases]


# --- the rules ---------------------------------------------------------------------------------


def gate_problems(case: Case, to: Level, reason: str) -> list[FieldProblem]:
    """Everything an escalation of `case` to `to` lacks: its context and, from tier 1, the
    troubleshooting a non-emergency case needs first."""
    financial = case.disputed_amount is not None or case.usdt_amount is not None
    kinds = context_kinds(case.flags, to_level=to, financial=financial, crypto=case.crypto)
    problems = missing_context(escalation_context(case, reason), kinds)
    emergency = bool(case.flags & EMERGENCY_FLAGS)
    return problems + checklist_problems(case.checklist, from_level=case.level, emergency=emergency)


def escalation_context(case: Case, reason: str) -> dict[str, Any]:
    """The context an escalation carries: the case's own facts and its gathered context."""
    context: dict[str, Any] = dict(case.context)
    context.update(reference=case.reference, customer_id=case.customer_id, summary=case.summary)
    if reason.strip():
        context["reason"] = reason.strip()
    return context


def _escalation(
    sp: Support, case: Case, request: EscalationRequest, now: datetime, *, by: str, ceo: bool
) -> Escalation:
    routes = {r.level: r for r in route(case.facts(), sp.playbook.ladder.rules, now)}
    ruled = routes.get(request.to)
    urgency = ruled.urgency if ruled is not None else Urgency.CAN_WAIT
    if request.urgency is Urgency.CANNOT_WAIT and urgency is Urgency.CAN_WAIT:
        if not (request.urgency_note or "").strip():
            raise InvalidValue("urgency_note", "say why it cannot wait for business hours")
        urgency = Urgency.CANNOT_WAIT
    if ruled is not None:
        case.require_approvals(ruled.approvals, at=now)
    return Escalation(
        number=0,
        from_level=case.level,
        to_level=request.to,
        at=now,
        by=by,
        reason=request.reason.strip(),
        rule=ruled.explain() if ruled is not None else "by hand",
        urgency=urgency,
        recommends_ceo=ceo or (ruled is not None and ruled.recommends_ceo),
        urgency_note=request.urgency_note if urgency is Urgency.CANNOT_WAIT else None,
        gate_override=request.override,
    )


def apply_rules(sp: Support, case: Case, now: datetime) -> None:
    """Move the case up to where its facts send it, if that is higher than where it is,
    and ask for the approvals the rules want. The rules act whatever context is missing
    (a legal threat cannot wait for a form); the notice names what is missing."""
    if not case.is_open:
        return
    routes = route(case.facts(), sp.playbook.ladder.rules, now)
    for found in routes:
        if found.mode is Mode.AUTOMATIC:
            case.require_approvals(found.approvals, at=now)
    owner = _highest_automatic(routes)
    if owner is None or HEIGHT[owner.level] <= HEIGHT[case.level]:
        return
    if any(e.rule == owner.explain() for e in case.escalations):
        # It went there for this very reason before and a person brought it back down:
        # the rule has been heard; only a new reason moves it up again by itself.
        return
    case.escalate(
        Escalation(
            number=0,
            from_level=case.level,
            to_level=owner.level,
            at=now,
            by=ROUTING,
            reason=owner.reason,
            rule=owner.explain(),
            urgency=owner.urgency,
            recommends_ceo=owner.recommends_ceo,
        )
    )


def _highest_automatic(routes: Sequence[Route]) -> Route | None:
    owners = [r for r in routes if r.mode is Mode.AUTOMATIC and r.level not in SPECIALIST_TEAMS]
    return max(owners, key=lambda r: HEIGHT[r.level], default=None)


# --- units of work ---------------------------------------------------------------------------


async def change_case(
    sp: Support,
    case_id: int,
    reason: str,
    mutate: Callable[[Transaction, Case, datetime], None],
    *,
    by: Actor,
    right: CaseRight,
) -> CaseView:
    """One change to a case as a unit of work: read under lock, `by`'s right checked,
    `mutate` applied, the rules applied, the case, its timeline and its plan written."""
    now = sp.rt.clock.now()

    def work(tx: Transaction) -> CaseView:
        case = tx.get_case(case_id, lock=True)
        sp.roles.check(by, right)
        mutate(tx, case, now)
        apply_rules(sp, case, now)
        return _commit(sp, tx, case, now)

    view = await sp.rt.store.run(work)
    return _done(sp, view, reason)


def _commit(
    sp: Support, tx: Transaction, case: Case, now: datetime, *, new: bool = False
) -> CaseView:
    """Write the changed case, its timeline and its plan; the view of it as written (read
    in the same transaction: no second round trip for the answer)."""
    assert case.id is not None
    if not new:
        tx.save_case(case)
    tx.append_case_timeline(case.id, case.events)
    planned = replan_case(tx, sp.playbook, case, now=now, new=new)
    if not new:
        return case_view(sp, tx, case, now)
    # A new case's upcoming steps are what was just planned, its timeline what was just
    # written: the view is made from them rather than read back (intake's hot path; a test
    # holds it equal to the view read back).
    upcoming = [_planned(sp.playbook, case, p) for p in planned]
    return _view(sp, case, now, upcoming=upcoming, timeline=list(case.events))


def _done(sp: Support, view: CaseView, reason: str) -> CaseView:
    sp.rt.plan_changed()
    log.info(reason, extra={"action": reason.replace(" ", "_"), "case_id": view.case.id})
    return view


def replan_case(
    tx: Transaction, playbook: SupportPlaybook, case: Case, *, now: datetime, new: bool = False
) -> list[PlannedOccurrence]:
    """Bring the case's pending steps in line with its facts; what is planned now."""
    assert case.id is not None
    subject = case_ref(case.id)
    history = {} if new else tx.step_history(subject)
    steps = playbook.case_steps(case)
    planned = plan(case, steps, playbook.ladder, history)
    tx.reconcile(subject, planned, {s.id: s for s in steps}, now=now, new=new)
    return planned


def case_view(sp: Support, tx: Transaction, case: Case, now: datetime) -> CaseView:
    """The case as every surface shows it, its steps and timeline read in `tx`."""
    assert case.id is not None
    upcoming = tx.occurrences(case_ref(case.id), states=UPCOMING_STATES)
    return _view(
        sp,
        case,
        now,
        upcoming=[_upcoming(sp.playbook, case, o) for o in upcoming],
        timeline=tx.case_timeline(case.id),
    )


def _view(
    sp: Support,
    case: Case,
    now: datetime,
    *,
    upcoming: list[UpcomingCaseStep],
    timeline: list[TimelineEntry],
) -> CaseView:
    ladder = sp.playbook.ladder
    next_level = ladder.escalates_to(case.level)
    missing = (
        # The reason comes with the escalation itself: not something the case lacks.
        [p for p in gate_problems(case, next_level, "") if p.field != "reason"]
        if next_level and case.is_open
        else []
    )
    return CaseView(
        case=case,
        sla=sla(case, ladder, now),
        routes=route(case.facts(), ladder.rules, now),
        upcoming=upcoming,
        next_level=next_level,
        missing=missing,
        timeline=timeline,
    )


def _planned(playbook: SupportPlaybook, case: Case, planned: PlannedOccurrence) -> UpcomingCaseStep:
    step = playbook.step_of(case, planned.step_id)
    assert step is not None  # planned from the playbook's own steps
    return UpcomingCaseStep(
        step_id=step.id,
        description=step.description,
        action=step.action.value,
        target=step.target,
        due_at=planned.due_at,
        state=OccurrenceState.PENDING.value,
    )


def _upcoming(playbook: SupportPlaybook, case: Case, occurrence: Occurrence) -> UpcomingCaseStep:
    step = playbook.step_of(case, occurrence.step_id)
    return UpcomingCaseStep(
        step_id=occurrence.step_id,
        description=step.description if step is not None else occurrence.step_id,
        action=occurrence.action,
        target=occurrence.target,
        due_at=occurrence.due_at,
        state=occurrence.state.value,
    )
