"""Cases as stored, on SQLite and PostgreSQL: one case per ticket even when a ticket is
opened several times at once (a retried webhook, two agents), and a case reads back as it
was written."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from incident.clock import FakeClock
from incident.config import Settings
from incident.domain.case import Case, Plan
from incident.domain.case_routing import Flag
from incident.domain.errors import Conflict
from incident.domain.lifecycle import Severity
from incident.services import cases as uc
from tests.conftest import Build


@pytest.fixture
def settings(settings_on_both: Settings) -> Settings:
    return settings_on_both


def ticket(clock: FakeClock, reference: str = "ZD-9") -> Case:
    return Case(
        reference=reference,
        customer_id="c-9",
        summary="Withdrawal stuck",
        plan=Plan.ENTERPRISE,
        priority=Severity.P2,
        opened_at=clock.now(),
        opened_by="",
        flags=frozenset({Flag.USDT_WITHDRAWAL}),
        usdt_amount=Decimal("1234.500000000000000001"),
        context={"customer_plan": "enterprise", "previous_escalations": 2},
    )


async def test_a_ticket_opened_five_times_at_once_is_one_case(
    build: Build, clock: FakeClock
) -> None:
    app = await build()
    results = await asyncio.gather(
        *(uc.open_case(app.support, ticket(clock), by="agent") for _ in range(5)),
        return_exceptions=True,
    )
    opened = [r for r in results if isinstance(r, uc.CaseView)]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(opened) == 1 and len(refused) == 4, results
    assert all("ZD-9" in str(r) for r in refused)
    listed = await uc.list_cases(app.support)
    assert [case.reference for case, _ in listed] == ["ZD-9"]


async def test_a_case_reads_back_as_it_was_written(build: Build, clock: FakeClock) -> None:
    app = await build()
    opened = await uc.open_case(app.support, ticket(clock), by="agent")
    read = await uc.read_case(app.support, opened.case.id or 0)
    assert read.case == opened.case  # amounts exact, escalations, approvals, context
    assert read.case.usdt_amount == Decimal("1234.500000000000000001")
