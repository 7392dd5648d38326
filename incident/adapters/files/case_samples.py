"""Realistic variables for rendering the case templates (`comms/cases/`) in
`incident playbooks check` and the tests.

The sample is not written out by hand: a case is built with the domain's own commands
(opened, worked, escalated, sent back down, escalated again), seen the way the service sees
it (its response clock, routes, what its next escalation lacks, its planned steps) and
handed to the real `case_template_context`, so it always has the shape the engine gives
the templates.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from incident.adapters.files.support_files import SUPPORT_DIR, load_support
from incident.config import PROJECT_ROOT
from incident.domain.case import (
    Case,
    CaseChange,
    Deescalation,
    Escalation,
    NoticeKind,
    Plan,
)
from incident.domain.case_clocks import NOTICE_STEP, NOTICE_TEMPLATES, SupportPlaybook, plan
from incident.domain.case_context import ChecklistItem, clean_context
from incident.domain.case_ladder import sla
from incident.domain.case_routing import Flag, Level, Urgency, route
from incident.domain.lifecycle import Severity
from incident.services.case_messages import case_template_context, recipient
from incident.services.cases import CaseView, UpcomingCaseStep, gate_problems

PLAYBOOKS_DIR = PROJECT_ROOT / "playbooks"  # the default of Settings.playbooks_dir
BASE_URL = "http://127.0.0.1:8080"
OPENED = datetime(2026, 3, 2, 8, 10, tzinfo=UTC)  # a Monday, 09:10 in Berlin
AGENT = "maria.k"
TIER_2_ENGINEER = "tomas.b"

# Everything the escalation notice carries, as the doors would give it (cleaned by the
# real parser below, so amounts and times are in their stored form).
FULL_CONTEXT: dict[str, Any] = {
    "reference": "ZD-48213",
    "customer_id": "C-20931",
    "summary": "A USDT withdrawal shows as completed, but the customer never received it.",
    "actions_taken": (
        "Checked the withdrawal in the ledger and on the block explorer; asked the customer "
        "for a screen recording of their wallet app."
    ),
    "reason": "The funds went to an address the customer does not recognise.",
    "amount": "12500",
    "currency": "usdt",
    "evidence": [
        "https://helpdesk.example.com/tickets/48213/attachments/wallet-recording.mp4",
        "Withdrawal confirmation e-mail of 28 Feb, attached to the ticket",
    ],
    "customer_plan": "pro",
    "account_value": "48210.75",
    "previous_escalations": 1,
    "customer_impact": "12,500 USDT of the customer's trading capital is unavailable.",
    "troubleshooting": (
        "Ledger: withdrawal W-88412 completed. Block explorer: the transfer is confirmed "
        "(64 confirmations) to the address on file. The address book change of 27 Feb came "
        "from a new device; 2FA passed."
    ),
    "customer_expectation": "A refund of the full amount by Friday.",
    "requested_actions": (
        "Decide on a goodwill refund of the full amount, and whether we report the address "
        "to the issuer for freezing."
    ),
    "transactions": [
        {
            "network": "evm",
            "hash": "0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060",
            "at": "2026-02-28T14:12:09+00:00",
        }
    ],
    "wallet_addresses": [
        {"network": "evm", "address": "0x8ba1f109551bd432803012645ac136ddd64dba72"}
    ],
    "user_attempts": (
        "Checked the wallet on two devices and re-synced it; contacted the wallet's support."
    ),
    "expected": "12,500 USDT arriving in the customer's own wallet.",
    "actual": "The transfer went to an address added to the address book the day before.",
}


def sample_case_context(
    *,
    sparse: bool = False,
    step_id: str = "escalation-notice",
    playbooks_dir: Path = PLAYBOOKS_DIR,
    base_url: str = BASE_URL,
) -> dict[str, Any]:
    """The variables a case template gets, for the step `step_id` of the support playbook
    in `playbooks_dir`, made by the real `case_template_context`.

    Full: a Pro customer's crypto withdrawal (a transaction, a wallet address, a disputed
    amount) escalated to tier 2, sent back down to wait for the customer, then escalated
    to the CIO recommending the CEO, with the CIO's and the CEO's decisions required.
    `sparse`: a tier-1 case opened half an hour ago, with nothing gathered or done yet."""
    playbook = load_support(playbooks_dir / SUPPORT_DIR)
    case, now = _sparse_case() if sparse else _full_case(playbook)
    _link(case, now)
    step = playbook.step_of(case, step_id)
    if step is None:
        known = ", ".join((*(s.id for s in playbook.steps), *SAMPLE_NOTICE_STEPS.values()))
        raise ValueError(f"no step {step_id!r} in the support playbook; the steps are {known}")
    view = _view(playbook, case, now)
    to = recipient(step, case, playbook.ladder)
    return case_template_context(view, playbook.ladder, step=step, to=to, base_url=base_url)


# The sample case is linked to an incident that posted an update and was resolved: the
# notice steps that send them, by the template each uses.
SAMPLE_NOTICE_STEPS = {
    NOTICE_TEMPLATES[NoticeKind.UPDATE]: f"{NOTICE_STEP}1",
    NOTICE_TEMPLATES[NoticeKind.RESOLVED]: f"{NOTICE_STEP}2",
}


def template_steps(playbook: SupportPlaybook) -> dict[str, list[str]]:
    """Each case template, with the ids of the steps that send it (the sample's notices for
    the linked incident's templates)."""
    named: dict[str, list[str]] = {}
    for step in playbook.steps:
        if step.template:
            named.setdefault(step.template, []).append(step.id)
    for template, step_id in SAMPLE_NOTICE_STEPS.items():
        named.setdefault(template, []).append(step_id)
    return named


def _link(case: Case, now: datetime) -> None:
    """Linked to INC-42 a little before `now`, which posted an update and then resolved."""
    case.link(42, at=now - timedelta(minutes=20), by=AGENT)
    title = "Delayed withdrawals on the Ethereum network"
    update = (
        "Withdrawals on the Ethereum network are delayed while a node provider recovers. "
        "Funds are safe; delayed withdrawals will complete automatically."
    )
    case.relay(
        NoticeKind.UPDATE, incident_id=42, title=title, text=update, at=now - timedelta(minutes=15)
    )
    case.relay(
        NoticeKind.RESOLVED,
        incident_id=42,
        title=title,
        text="All delayed withdrawals have completed.",
        at=now - timedelta(minutes=5),
    )


def _sparse_case() -> tuple[Case, datetime]:
    case = Case.open(
        Case(
            id=318,
            reference="ZD-48290",
            customer_id="C-31077",
            summary="Cannot log in to the dashboard",
            plan=Plan.STARTER,
            priority=Severity.P3,
            opened_at=OPENED,
            opened_by=AGENT,
        )
    )
    return case, OPENED + timedelta(minutes=30)


def _full_case(playbook: SupportPlaybook) -> tuple[Case, datetime]:
    at = OPENED
    case = Case.open(
        Case(
            id=317,
            reference=FULL_CONTEXT["reference"],
            customer_id=FULL_CONTEXT["customer_id"],
            summary="USDT withdrawal marked completed but not received",
            plan=Plan.PRO,
            priority=Severity.P2,
            opened_at=at,
            opened_by=AGENT,
            customer_email="li.wei@example.org",
            crypto=True,
        )
    )
    case.record_progress(
        "Ledger shows withdrawal W-88412 completed on 28 Feb; the chain confirms it.",
        at=at + timedelta(minutes=25),
        by=AGENT,
        to_customer=False,
    )
    case.record_progress(
        "Told the customer we are tracing the transfer on chain.",
        at=at + timedelta(minutes=40),
        by=AGENT,
        to_customer=True,
    )
    case.update(
        CaseChange(
            checklist=frozenset(
                {
                    ChecklistItem.TROUBLESHOOTING_DONE,
                    ChecklistItem.DOCUMENTED,
                    ChecklistItem.IMPACT_ASSESSED,
                }
            )
        ),
        at=at + timedelta(minutes=55),
        by=AGENT,
    )
    case.escalate(
        Escalation(
            number=0,
            from_level=Level.TIER_1,
            to_level=Level.TIER_2,
            at=at + timedelta(hours=1),
            by=AGENT,
            reason="Needs an on-chain trace of the receiving address.",
            rule="by hand",
            urgency=Urgency.CAN_WAIT,
        )
    )
    case.confirm_receipt(at=at + timedelta(hours=1, minutes=20), by=TIER_2_ENGINEER)
    case.deescalate(
        Level.TIER_1,
        Deescalation.WAITING_FOR_CUSTOMER,
        "The trace needs the customer's wallet recording; back to tier 1 until it arrives.",
        at=at + timedelta(hours=2),
        by=TIER_2_ENGINEER,
    )
    at += timedelta(days=1, minutes=20)  # Tuesday, 09:30 in Berlin
    case.record_progress(
        "The customer's recording shows an address book entry they say they never added.",
        at=at - timedelta(minutes=10),
        by=AGENT,
        to_customer=False,
    )
    case.update(
        CaseChange(
            contacts=3,
            disputed_amount=Decimal("11480.00"),
            csr=Decimal("184250"),
            usdt_amount=Decimal("12500"),
            flags=frozenset({Flag.USDT_WITHDRAWAL}),
            context=clean_context(FULL_CONTEXT),
            checklist=frozenset(ChecklistItem),
            expected_resolution_at=at + timedelta(days=3),
        ),
        at=at,
        by=AGENT,
    )
    # As the service escalates: the route its facts call for gives the rule, the urgency,
    # the CEO recommendation and the decisions it needs.
    cio = next(r for r in route(case.facts(), playbook.ladder.rules, at) if r.level is Level.CIO)
    case.require_approvals(cio.approvals, at=at)
    case.escalate(
        Escalation(
            number=0,
            from_level=case.level,
            to_level=Level.CIO,
            at=at,
            by=AGENT,
            reason=FULL_CONTEXT["reason"],
            rule=cio.explain(),
            urgency=cio.urgency,
            recommends_ceo=cio.recommends_ceo,
        )
    )
    return case, at + timedelta(days=1, hours=4)  # Wednesday afternoon


def _view(playbook: SupportPlaybook, case: Case, now: datetime) -> CaseView:
    """The case as `incident.services.cases.case_view` shows it, without a store: its
    pending steps are those the clocks plan for it now."""
    ladder = playbook.ladder
    next_level = ladder[case.level].next
    by_id = {s.id: s for s in playbook.steps}
    upcoming = [
        UpcomingCaseStep(
            step_id=o.step_id,
            description=by_id[o.step_id].description,
            action=by_id[o.step_id].action.value,
            target=by_id[o.step_id].target,
            due_at=o.due_at,
            state="pending",
        )
        for o in plan(case, playbook.steps, ladder, {})
        if o.due_at > now
    ]
    return CaseView(
        case=case,
        sla=sla(case, ladder, now),
        routes=route(case.facts(), ladder.rules, now),
        upcoming=upcoming,
        next_level=next_level,
        missing=gate_problems(case, next_level, "") if next_level and case.is_open else [],
        timeline=list(case.events),
    )
