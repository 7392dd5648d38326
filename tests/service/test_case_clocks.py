"""Every clock of the procedures, one table row each: a case opened at a Berlin time, what
people do, and which steps must have run by when (the engine in virtual time, on a real
database). The calendars are the shipped ones: 09:00-17:00 Monday to Friday for support,
09:00-18:00 for management, 24/7 for engineering; 2026-03-09 is a Monday."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from incident.clock import FakeClock
from incident.domain.access import AccessRole, Principal
from incident.domain.case import Case, Plan
from incident.domain.case_access import SupportRole, SupportRoles
from incident.domain.case_context import ChecklistItem
from incident.domain.case_routing import Flag, Level, Urgency
from incident.domain.lifecycle import Severity
from incident.services import cases as uc
from incident.services.cases import EscalationRequest, Support
from incident.testing import run_until
from tests.conftest import Build

BERLIN = ZoneInfo("Europe/Berlin")
AGENT = Principal("alice", AccessRole.RESPONDER)
CIO = Principal("dana", AccessRole.RESPONDER)
ROLES = SupportRoles({"alice": SupportRole.AGENT, "dana": SupportRole.CIO})
CONTEXT = {
    "actions_taken": "Checked",
    "customer_plan": "pro",
    "account_value": "100",
    "previous_escalations": 0,
    "customer_impact": "Blocked",
    "troubleshooting": "Tried",
    "customer_expectation": "Soon",
    "requested_actions": "Look",
}

Act = Callable[[Support, int], Awaitable[object]]


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A time in March 2026, Berlin (9 = Monday 9 March)."""
    return datetime(2026, 3, day, hour, minute, tzinfo=BERLIN).astimezone(UTC)


@dataclass(frozen=True)
class Row:
    opened: datetime
    priority: Severity
    plan: Plan = Plan.PRO
    flags: frozenset[Flag] = frozenset()
    # What people do, and when.
    acts: tuple[tuple[datetime, Act], ...] = ()
    until: datetime = field(default_factory=lambda: at(13, 18))
    # (step, when it ran) pairs that must be there; steps that must not have run at all.
    ran: tuple[tuple[str, datetime], ...] = ()
    not_ran: tuple[str, ...] = ()
    level: Level | None = None  # where the case is at the end


def escalate(to: Level, urgency: Urgency | None = None) -> Act:
    async def act(sp: Support, case_id: int) -> object:
        note = "the customer's payroll runs tonight" if urgency else None
        request = EscalationRequest(to, "needs the next level", urgency, note)
        return await uc.escalate_case(sp, case_id, request, by=AGENT)

    return act


async def cio_answers(sp: Support, case_id: int) -> object:
    return await uc.record_progress(sp, case_id, "Decision: refund", to_customer=False, by=CIO)


async def cio_approves(sp: Support, case_id: int) -> object:
    return await uc.decide(sp, case_id, Level.CIO, approved=True, note="verified", by=CIO)


async def answer(sp: Support, case_id: int) -> object:
    return await uc.record_progress(sp, case_id, "Looking into it", to_customer=True, by=AGENT)


ROWS = {
    "P1: engineering within 15 minutes, the support manager at once, hourly updates": Row(
        opened=at(9, 10),
        priority=Severity.P1,
        until=at(9, 14, 1),
        ran=(
            ("p1-notify-manager", at(9, 10)),
            ("p1-to-tier-3", at(9, 10, 15)),
            ("emergency-notice", at(9, 10, 15)),
            # The customer heard of the escalation at 10:15: hourly from there.
            ("customer-escalation-notice", at(9, 10, 15)),
            ("p1-customer-update", at(9, 11, 15)),
            ("p1-customer-update", at(9, 12, 15)),
            ("p1-management-review", at(9, 14)),
        ),
        level=Level.TIER_3,
    ),
    "P2: tier 2 in the hour, tier 3 and reviews at 4 h, the account manager for Enterprise": Row(
        opened=at(9, 10),
        priority=Severity.P2,
        plan=Plan.ENTERPRISE,
        until=at(10, 10, 1),
        ran=(
            ("p2-notify-team-lead", at(9, 10)),
            ("stalled-at-tier-1", at(9, 10, 30)),
            ("p2-expected-resolution", at(9, 11)),
            # The customer heard of the escalation at 10:30: every 2 h from there.
            ("customer-escalation-notice", at(9, 10, 30)),
            ("p2-customer-update", at(9, 12, 30)),
            ("p2-to-tier-3", at(9, 14)),
            ("p2-account-manager", at(9, 14)),
            ("p2-engineering-review", at(9, 14)),
            ("customer-escalation-notice", at(9, 14)),  # to tier 3: every 4 h from there
            ("p2-customer-update-later", at(9, 18)),
            ("p2-management-review", at(10, 10)),
            ("p2-daily-summary", at(10, 10)),
        ),
        level=Level.TIER_3,
    ),
    "P2 for a Pro customer: no account manager": Row(
        opened=at(9, 10),
        priority=Severity.P2,
        until=at(9, 15),
        ran=(("p2-engineering-review", at(9, 14)),),
        not_ran=("p2-account-manager",),
    ),
    "P3: first response within 8 business hours, daily updates on business days": Row(
        opened=at(9, 15),
        priority=Severity.P3,
        until=at(11, 18),
        ran=(
            ("first-response-warning", at(10, 10)),  # 4 h (Pro, tier 1): 75 % is 3 h
            ("first-response-missed", at(10, 11)),
            ("p3-first-response", at(10, 15)),
            ("p3-progress", at(10, 15)),
            ("p3-daily-update", at(10, 15)),
            ("p3-daily-update", at(11, 15)),
        ),
    ),
    "P3 answered in time: the response clocks stop": Row(
        opened=at(9, 15),
        priority=Severity.P3,
        acts=((at(9, 16), answer),),
        until=at(11, 18),
        not_ran=("first-response-warning", "first-response-missed", "p3-first-response"),
    ),
    "P4 on Friday: acknowledged within a business day, answered within three": Row(
        opened=at(13, 11),
        priority=Severity.P4,
        until=at(19, 12),
        ran=(("p4-acknowledge", at(16, 11)), ("p4-answer", at(18, 11))),
    ),
    "a legal threat: the CIO's review mail at once, reminded, then C-level": Row(
        opened=at(9, 10),
        priority=Severity.P3,
        flags=frozenset({Flag.LEGAL_THREAT}),
        until=at(11, 12),
        # 2 business days of 8 h: 12 h (75 %) is Tuesday 14:00, 16 h is Wednesday 10:00.
        ran=(
            ("cio-review-mail", at(9, 10)),
            ("cio-review-reminder", at(10, 14)),
            ("cio-review-overdue", at(11, 10)),
        ),
        level=Level.CIO,
    ),
    "the CIO answers in time: no reminder": Row(
        opened=at(9, 10),
        priority=Severity.P3,
        flags=frozenset({Flag.LEGAL_THREAT}),
        acts=((at(10, 9), cio_answers),),
        until=at(11, 12),
        ran=(("cio-review-mail", at(9, 10)), ("answer-to-agent", at(10, 9))),
        not_ran=("cio-review-reminder", "cio-review-overdue"),
    ),
    "a decision goes back to the agent": Row(
        opened=at(9, 10),
        priority=Severity.P3,
        flags=frozenset({Flag.USDT_WITHDRAWAL}),
        acts=((at(9, 11), cio_approves),),
        until=at(9, 12),
        ran=(("decision-to-agent", at(9, 11)),),
        not_ran=("answer-to-agent",),  # a decision is not an answer at the level
    ),
    "an escalation that can wait reaches tier 2 at its next opening": Row(
        opened=at(13, 17, 30),  # Friday, after hours
        priority=Severity.P3,
        acts=((at(13, 18), escalate(Level.TIER_2)),),
        until=at(16, 9, 1),
        ran=(("escalation-notice", at(16, 9)), ("customer-escalation-notice", at(13, 18))),
        not_ran=("emergency-notice",),
    ),
    "one that cannot wait reaches tier 2 at once, with its emergency contacts": Row(
        opened=at(13, 17, 30),
        priority=Severity.P3,
        acts=((at(13, 18), escalate(Level.TIER_2, Urgency.CANNOT_WAIT)),),
        until=at(13, 18, 1),
        ran=(("emergency-notice", at(13, 18)),),
        not_ran=("escalation-notice",),
    ),
    "unresolved for 72 hours at tier 1: the rule sends it to L2": Row(
        opened=at(9, 10),
        priority=Severity.P4,
        until=at(12, 10, 2),
        ran=(("unresolved-too-long", at(12, 10, 1)),),  # more than 72 h: a minute past
        level=Level.TIER_2,
    ),
}


@pytest.mark.parametrize("name", ROWS)
async def test_the_clock_rule(name: str, build: Build, clock: FakeClock) -> None:
    row = ROWS[name]
    clock.set(row.opened)
    app = await build()
    sp = Support(app.support.rt, app.support.playbook, ROLES)
    draft = Case(
        reference="ZD-1",
        customer_id="c-1",
        summary="Payouts fail",
        plan=row.plan,
        priority=row.priority,
        opened_at=clock.now(),
        opened_by="",
        flags=row.flags,
        usdt_amount=Decimal(1) if Flag.USDT_WITHDRAWAL in row.flags else None,
        context=dict(CONTEXT),
        checklist=frozenset({ChecklistItem.TROUBLESHOOTING_DONE}),
    )
    case_id = (await uc.open_case(sp, draft, by=AGENT)).case.id or 0
    for when, act in row.acts:
        await run_until(app, clock, when)
        await act(sp, case_id)
    await run_until(app, clock, row.until)
    view = await uc.read_case(sp, case_id)
    ran = [(e.step_id, e.at) for e in view.timeline if e.kind == "step_done"]
    for expected in row.ran:
        assert expected in ran, f"{expected} not among {sorted(ran, key=lambda r: r[1])}"
    done = {step for step, _ in ran}
    assert not done & set(row.not_ran), f"ran but should not have: {done & set(row.not_ran)}"
    if row.level is not None:
        assert view.case.level is row.level
