"""Support cases through their use cases and the real engine, on a real database, in
virtual time: whole cases across nights, weekends and a holiday; the rules that route them
(a legal threat reaches the CIO at once, the CEO only through the CIO, a USDT withdrawal
needs both decisions); the context gate; receipt, de-escalation and the clocks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from incident.bootstrap import Container
from incident.clock import FakeClock
from incident.domain.access import AccessRole, Principal
from incident.domain.case import Case, CaseChange, Deescalation, Plan
from incident.domain.case_access import SupportRole, SupportRoles
from incident.domain.case_context import ChecklistItem, ContextRefused
from incident.domain.case_ladder import SlaState
from incident.domain.case_routing import Flag, Level, Urgency
from incident.domain.errors import Forbidden, IllegalTransition
from incident.domain.lifecycle import Severity
from incident.services import cases as uc
from incident.services.cases import CaseView, EscalationRequest, Support
from incident.testing import RecordingEffects, run_until
from tests.conftest import Build

BERLIN = ZoneInfo("Europe/Berlin")
AGENT = Principal("alice", AccessRole.RESPONDER)
LEAD = Principal("bob", AccessRole.RESPONDER)
MANAGER = Principal("carol", AccessRole.RESPONDER)
CIO = Principal("dana", AccessRole.RESPONDER)
CEO = Principal("erik", AccessRole.RESPONDER)
ROLES = SupportRoles(
    {
        "alice": SupportRole.AGENT,
        "bob": SupportRole.TIER_LEAD,
        "carol": SupportRole.MANAGER,
        "dana": SupportRole.CIO,
        "erik": SupportRole.CEO,
    }
)
FULL_CONTEXT = {
    "actions_taken": "Reset the session; checked the logs.",
    "customer_plan": "pro",
    "account_value": "12000",
    "previous_escalations": 0,
    "customer_impact": "Cannot log in.",
    "troubleshooting": "Cleared caches: no change.",
    "customer_expectation": "Access today.",
    "requested_actions": "Look at the auth service.",
}


def berlin(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN).astimezone(UTC)


def support(app: Container) -> Support:
    return Support(app.support.rt, app.support.playbook, ROLES)


def draft(clock: FakeClock, **changes: object) -> Case:
    fields: dict[str, object] = {
        "reference": "ZD-1001",
        "customer_id": "cust-42",
        "summary": "Customer cannot log in",
        "plan": Plan.PRO,
        "priority": Severity.P3,
        "opened_at": clock.now(),
        "opened_by": "",
        "customer_email": "customer@example.org",
    }
    fields.update(changes)
    return Case(**fields)  # type: ignore[arg-type]


def ready(clock: FakeClock, **changes: object) -> Case:
    """A case with every technical field and the whole checklist: ready to go up a tier."""
    return draft(clock, context=dict(FULL_CONTEXT), checklist=frozenset(ChecklistItem), **changes)


def due(view: CaseView, step_id: str) -> datetime:
    found = [u.due_at for u in view.upcoming if u.step_id == step_id]
    assert found, f"{step_id} is not upcoming: {[u.step_id for u in view.upcoming]}"
    return found[0]


def sent_to(vendor: RecordingEffects, audience: str) -> list[str]:
    return [s.body for s in vendor.sends if s.port == "messenger" and s.target == audience]


async def test_a_pro_case_opened_friday_1750_is_due_monday_at_1300(
    build: Build, clock: FakeClock, vendor: RecordingEffects
) -> None:
    clock.set(berlin(2026, 3, 6, 17, 50))  # a Friday, after the 09:00-17:00 hours
    app = await build()
    sp = support(app)
    view = await uc.open_case(sp, draft(clock), by=AGENT)
    assert view.case.level is Level.TIER_1
    # 4 business hours from Monday 09:00: warned at 75 % (12:00), missed at 13:00.
    assert view.sla.due == berlin(2026, 3, 9, 13, 0)
    assert due(view, "first-response-warning") == berlin(2026, 3, 9, 12, 0)
    assert due(view, "first-response-missed") == berlin(2026, 3, 9, 13, 0)
    assert view.sla.state is SlaState.OK
    await run_until(app, clock, berlin(2026, 3, 9, 11, 59))
    assert sent_to(vendor, "tier_1 lead") == []  # nothing over the weekend
    await run_until(app, clock, berlin(2026, 3, 9, 13, 0))
    warned, missed = sent_to(vendor, "tier_1 lead")
    assert "75" in warned
    assert view.case.ref in missed
    assert (await uc.read_case(sp, view.case.id or 0)).sla.state is SlaState.BREACHED


async def test_a_case_answered_in_time_stops_its_response_clock(
    build: Build, clock: FakeClock, vendor: RecordingEffects
) -> None:
    clock.set(berlin(2026, 3, 9, 10, 0))
    app = await build()
    sp = support(app)
    view = await uc.open_case(sp, draft(clock), by=AGENT)
    clock.advance(timedelta(hours=1))
    view = await uc.record_progress(
        sp, view.case.id or 0, "Asked for logs", to_customer=True, by=AGENT
    )
    assert view.sla.state is SlaState.MET
    assert "first-response-missed" not in {u.step_id for u in view.upcoming}
    await run_until(app, clock, berlin(2026, 3, 9, 18, 0))
    assert sent_to(vendor, "tier_1 lead") == []


async def test_christmas_is_closed_time(build: Build, clock: FakeClock) -> None:
    clock.set(berlin(2026, 12, 23, 16, 0))  # one open hour left before the holidays
    app = await build()
    view = await uc.open_case(support(app), draft(clock), by=AGENT)
    # 24 Dec (configured), 25 and 26 Dec (public holidays), the weekend: back Monday 28th.
    assert view.sla.due == berlin(2026, 12, 28, 12, 0)


async def test_a_legal_threat_reaches_the_cio_at_once_with_the_cio_review_mail(
    build: Build, clock: FakeClock, vendor: RecordingEffects
) -> None:
    clock.set(berlin(2026, 3, 7, 3, 0))  # Saturday night: it cannot wait
    app = await build()
    view = await uc.open_case(
        support(app), draft(clock, flags=frozenset({Flag.LEGAL_THREAT})), by=AGENT
    )
    assert view.case.level is Level.CIO
    escalation = view.case.escalations[-1]
    assert escalation.rule == "CIO because: legal threat"
    assert escalation.urgency is Urgency.CANNOT_WAIT
    await run_until(app, clock, clock.now())
    (mail,) = sent_to(vendor, "cio")
    assert "ZD-1001" in mail and "legal threat" in mail


async def test_a_usdt_withdrawal_needs_both_the_cio_and_the_ceo(
    build: Build, clock: FakeClock
) -> None:
    clock.set(berlin(2026, 3, 9, 10, 0))
    app = await build()
    sp = support(app)
    view = await uc.open_case(
        sp,
        draft(
            clock,
            flags=frozenset({Flag.USDT_WITHDRAWAL}),
            usdt_amount=Decimal("2500"),
            crypto=True,
        ),
        by=AGENT,
    )
    case_id = view.case.id or 0
    assert view.case.level is Level.CIO
    assert view.case.escalations[-1].recommends_ceo
    assert view.case.required_approvals == (Level.CIO, Level.CEO)
    with pytest.raises(IllegalTransition, match="decision of: cio, ceo"):
        await uc.resolve_case(sp, case_id, "paid out", by=AGENT)
    with pytest.raises(Forbidden, match="only the CEO may"):
        await uc.decide(sp, case_id, Level.CEO, approved=True, note="ok", by=CIO)
    await uc.decide(sp, case_id, Level.CIO, approved=True, note="verified", by=CIO)
    with pytest.raises(IllegalTransition, match="decision of: ceo"):
        await uc.resolve_case(sp, case_id, "paid out", by=AGENT)
    await uc.decide(sp, case_id, Level.CEO, approved=True, note="approved", by=CEO)
    view = await uc.resolve_case(sp, case_id, "paid out", by=AGENT)
    assert not view.case.is_open
    assert view.upcoming == []


async def test_an_agent_asking_for_the_ceo_gets_the_cio_recommending_the_ceo(
    build: Build, clock: FakeClock
) -> None:
    clock.set(berlin(2026, 3, 9, 10, 0))
    app = await build()
    sp = support(app)
    view = await uc.open_case(sp, ready(clock), by=AGENT)
    case_id = view.case.id or 0
    view = await uc.escalate_case(
        sp, case_id, EscalationRequest(Level.CEO, "strategic customer threatens to leave"), by=AGENT
    )
    assert view.case.level is Level.CIO
    assert view.case.escalations[-1].recommends_ceo
    assert view.notice is not None and "only through the CIO" in view.notice
    request = EscalationRequest(Level.CEO, "the CIO takes it on")
    with pytest.raises(Forbidden, match="only the CIO may"):
        await uc.escalate_case(sp, case_id, request, by=MANAGER)
    view = await uc.escalate_case(sp, case_id, request, by=CIO)
    assert view.case.level is Level.CEO


async def test_a_crypto_escalation_without_a_transaction_hash_is_refused_naming_it(
    build: Build, clock: FakeClock
) -> None:
    clock.set(berlin(2026, 3, 9, 10, 0))
    app = await build()
    sp = support(app)
    view = await uc.open_case(
        sp,
        ready(clock, crypto=True),
        by=AGENT,
    )
    case_id = view.case.id or 0
    with pytest.raises(ContextRefused) as refused:
        await uc.escalate_case(sp, case_id, EscalationRequest(Level.TIER_2, "stuck"), by=AGENT)
    fields = {p.field for p in refused.value.problems}
    assert {"transactions", "wallet_addresses", "user_attempts", "expected", "actual"} <= fields
    after = await uc.read_case(sp, case_id)
    assert after.case.level is Level.TIER_1 and after.case.escalations == []  # nothing written
    # A manager may override the gate, with a reason on the timeline; an agent may not.
    override = EscalationRequest(Level.TIER_2, "stuck", override="customer is on the phone")
    with pytest.raises(Forbidden, match="overriding the gate"):
        await uc.escalate_case(sp, case_id, override, by=AGENT)
    view = await uc.escalate_case(sp, case_id, override, by=MANAGER)
    assert view.case.level is Level.TIER_2
    assert any(e.kind == "gate_overridden" for e in view.timeline)


async def test_tier_1_cannot_escalate_before_troubleshooting_unless_it_is_an_emergency(
    build: Build, clock: FakeClock
) -> None:
    clock.set(berlin(2026, 3, 9, 10, 0))
    app = await build()
    sp = support(app)
    view = await uc.open_case(sp, draft(clock, context=dict(FULL_CONTEXT)), by=AGENT)
    with pytest.raises(ContextRefused, match="troubleshooting_done"):
        await uc.escalate_case(
            sp, view.case.id or 0, EscalationRequest(Level.TIER_2, "stuck"), by=AGENT
        )
    await uc.update_case(
        sp,
        view.case.id or 0,
        CaseChange(checklist=frozenset({ChecklistItem.TROUBLESHOOTING_DONE})),
        by=AGENT,
    )
    view = await uc.escalate_case(
        sp, view.case.id or 0, EscalationRequest(Level.TIER_2, "stuck"), by=AGENT
    )
    assert view.case.level is Level.TIER_2


async def test_an_unconfirmed_escalation_reminds_the_lead_then_tells_the_next_level(
    build: Build, clock: FakeClock, vendor: RecordingEffects
) -> None:
    clock.set(berlin(2026, 3, 9, 10, 0))  # Monday
    app = await build()
    sp = support(app)
    view = await uc.open_case(sp, ready(clock, plan=Plan.ENTERPRISE), by=AGENT)
    view = await uc.escalate_case(
        sp, view.case.id or 0, EscalationRequest(Level.TIER_2, "needs L2"), by=AGENT
    )
    # Tier 2 answers an Enterprise case within 1 business hour.
    assert due(view, "receipt-reminder") == berlin(2026, 3, 9, 11, 0)
    assert due(view, "receipt-missed") == berlin(2026, 3, 9, 12, 0)
    await run_until(app, clock, berlin(2026, 3, 9, 12, 0))
    assert len(sent_to(vendor, "tier_2 lead")) == 1
    assert len(sent_to(vendor, "tier_3")) == 1


async def test_confirming_receipt_stops_the_receipt_clock(
    build: Build, clock: FakeClock, vendor: RecordingEffects
) -> None:
    clock.set(berlin(2026, 3, 9, 10, 0))
    app = await build()
    sp = support(app)
    view = await uc.open_case(sp, ready(clock), by=AGENT)
    case_id = view.case.id or 0
    await uc.escalate_case(sp, case_id, EscalationRequest(Level.TIER_2, "needs L2"), by=AGENT)
    view = await uc.confirm_receipt(sp, case_id, by=LEAD)
    assert view.sla.state is SlaState.MET
    assert not {"receipt-reminder", "receipt-missed"} & {u.step_id for u in view.upcoming}
    with pytest.raises(IllegalTransition, match="confirmed by bob"):
        await uc.confirm_receipt(sp, case_id, by=LEAD)
    await run_until(app, clock, berlin(2026, 3, 10, 10, 0))
    ran = {e.step_id for e in (await uc.read_case(sp, case_id)).timeline if e.kind == "step_done"}
    assert not ran & {"receipt-warning", "receipt-reminder", "receipt-missed"}
    assert "p3-first-response" in ran  # nobody answered the customer: that clock still ran


async def test_deescalating_tells_the_agent_and_the_customer_and_restarts_the_clock(
    build: Build, clock: FakeClock, vendor: RecordingEffects
) -> None:
    clock.set(berlin(2026, 3, 9, 10, 0))
    app = await build()
    sp = support(app)
    view = await uc.open_case(sp, ready(clock), by=AGENT)
    case_id = view.case.id or 0
    await uc.escalate_case(sp, case_id, EscalationRequest(Level.TIER_2, "needs L2"), by=AGENT)
    clock.set(berlin(2026, 3, 9, 14, 0))
    view = await uc.deescalate_case(
        sp, case_id, Level.TIER_1, Deescalation.WORKAROUND_GIVEN, "use the web login", by=LEAD
    )
    assert view.case.level is Level.TIER_1
    assert view.case.level_entered_at == berlin(2026, 3, 9, 14, 0)
    await run_until(app, clock, clock.now())
    (told,) = sent_to(vendor, "agent")
    assert "use the web login" in told
    customer = sent_to(vendor, "customer")
    assert customer and "web login" not in customer[-1]  # internal words stay inside
    with pytest.raises(IllegalTransition, match="came through"):
        await uc.deescalate_case(
            sp, case_id, Level.CIO, Deescalation.PREMATURE, "nonsense", by=LEAD
        )


async def test_a_p2_case_reaches_tier_2_within_an_hour_by_the_clock(
    build: Build, clock: FakeClock, vendor: RecordingEffects
) -> None:
    clock.set(berlin(2026, 3, 9, 10, 0))
    app = await build()
    sp = support(app)
    view = await uc.open_case(sp, draft(clock, priority=Severity.P2), by=AGENT)
    await run_until(app, clock, berlin(2026, 3, 9, 11, 0))
    view = await uc.read_case(sp, view.case.id or 0)
    assert view.case.level is Level.TIER_2
    assert view.case.escalations[-1].by == "clock"
    assert sent_to(vendor, "tier_2")  # the escalation notice, in business hours


async def test_bad_input_changes_nothing(build: Build, clock: FakeClock) -> None:
    clock.set(berlin(2026, 3, 9, 10, 0))
    app = await build()
    sp = support(app)
    view = await uc.open_case(sp, draft(clock), by=AGENT)
    viewer = Principal("victor", AccessRole.VIEWER)
    with pytest.raises(Forbidden):
        await uc.update_case(sp, view.case.id or 0, CaseChange(contacts=5), by=viewer)
    with pytest.raises(IllegalTransition):
        await uc.escalate_case(
            sp, view.case.id or 0, EscalationRequest(Level.TIER_1, "same level"), by=MANAGER
        )
    after = await uc.read_case(sp, view.case.id or 0)
    assert after.case.contacts == 1 and after.timeline == view.timeline


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"priority": Severity.P1},
        {"priority": Severity.P2, "plan": Plan.ENTERPRISE},
        {"flags": frozenset({Flag.LEGAL_THREAT, Flag.DATA_BREACH})},
        {"flags": frozenset({Flag.USDT_WITHDRAWAL}), "usdt_amount": Decimal(10)},
        {"priority": Severity.P4, "plan": Plan.STARTER, "contacts": 4},
    ],
)
async def test_a_new_cases_view_is_the_view_read_back(
    build: Build, clock: FakeClock, changes: dict[str, object]
) -> None:
    """Intake answers from what it planned and wrote, not from a read: the same view."""
    clock.set(berlin(2026, 3, 6, 16, 30))
    app = await build()
    sp = support(app)
    opened = await uc.open_case(sp, draft(clock, **changes), by=AGENT)
    read = await uc.read_case(sp, opened.case.id or 0)
    assert opened.upcoming == read.upcoming
    assert opened.timeline == read.timeline
    assert (opened.sla, opened.routes, opened.missing) == (read.sla, read.routes, read.missing)


async def test_a_case_brought_back_down_stays_down_until_a_new_reason_comes(
    build: Build, clock: FakeClock
) -> None:
    clock.set(berlin(2026, 3, 9, 10, 0))
    app = await build()
    sp = support(app)
    view = await uc.open_case(
        sp, draft(clock, flags=frozenset({Flag.TECHNICAL_COMPLEXITY})), by=AGENT
    )
    case_id = view.case.id or 0
    assert view.case.level is Level.TIER_2  # the rule sent it
    view = await uc.deescalate_case(
        sp, case_id, Level.TIER_1, Deescalation.PREMATURE, "tier 1 can do this", by=LEAD
    )
    assert view.case.level is Level.TIER_1
    view = await uc.update_case(sp, case_id, CaseChange(summary="still the same"), by=AGENT)
    assert view.case.level is Level.TIER_1  # the same reason does not bounce it back up
    view = await uc.update_case(sp, case_id, CaseChange(contacts=3), by=AGENT)
    assert view.case.level is Level.TIER_2  # a new reason does
    assert "contacted us 3 times" in view.case.escalations[-1].rule


async def test_escalating_goes_up_only_and_an_unused_override_is_not_recorded(
    build: Build, clock: FakeClock
) -> None:
    clock.set(berlin(2026, 3, 9, 10, 0))
    app = await build()
    sp = support(app)
    view = await uc.open_case(sp, ready(clock), by=AGENT)
    case_id = view.case.id or 0
    request = EscalationRequest(Level.TIER_3, "engineering", override="not needed")
    view = await uc.escalate_case(sp, case_id, request, by=MANAGER)
    assert view.case.escalations[-1].gate_override is None  # nothing was missing
    with pytest.raises(IllegalTransition, match="de-escalate it"):
        await uc.escalate_case(sp, case_id, EscalationRequest(Level.TIER_2, "down"), by=AGENT)
    view = await uc.escalate_case(
        sp, case_id, EscalationRequest(Level.SUPPORT_MANAGER, "needs a manager"), by=AGENT
    )
    # The specialist teams stand beside the ladder: the manager may still bring them in.
    view = await uc.escalate_case(
        sp, case_id, EscalationRequest(Level.SECURITY, "account takeover signs"), by=MANAGER
    )
    assert view.case.level is Level.SECURITY
