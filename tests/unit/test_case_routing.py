"""The escalation rules, one table row per rule: where a case goes, automatically or as a
suggestion, whether it can wait for business hours, and why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from incident.domain.case_routing import (
    CaseFacts,
    Flag,
    Level,
    Mode,
    Route,
    RoutingRules,
    Urgency,
    route,
)

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
RULES = RoutingRules()
A = Mode.AUTOMATIC
S = Mode.SUGGESTED
WAIT = Urgency.CAN_WAIT
NOW_ = Urgency.CANNOT_WAIT


def facts(**changes: object) -> CaseFacts:
    base: dict[str, object] = {"opened_at": NOW - timedelta(hours=1)}
    base.update(changes)
    return CaseFacts(**base)  # type: ignore[arg-type]


def routes_of(case: CaseFacts) -> set[tuple[Level, Mode, Urgency]]:
    return {(r.level, r.mode, r.urgency) for r in route(case, RULES, NOW)}


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        (Flag.LEGAL_THREAT, {(Level.CIO, A, NOW_)}),
        (Flag.MEDIA_CONTACT, {(Level.CIO, A, NOW_)}),
        (Flag.LEGAL_SERVICE, {(Level.CIO, A, NOW_)}),
        (Flag.SUSPECTED_FRAUD, {(Level.CIO, A, NOW_), (Level.SECURITY, A, NOW_)}),
        (Flag.DATA_BREACH, {(Level.CIO, A, NOW_), (Level.SECURITY, A, NOW_)}),
        (Flag.REGULATORY_INQUIRY, {(Level.CIO, A, NOW_), (Level.COMPLIANCE, A, NOW_)}),
        (Flag.REGULATORY_ACTION, {(Level.CIO, A, NOW_), (Level.COMPLIANCE, A, NOW_)}),
        # "System down" goes to tech and the CIO.
        (Flag.SYSTEM_DOWN, {(Level.CIO, A, NOW_), (Level.TIER_3, A, NOW_)}),
        (Flag.TERMINATION_APPEAL, {(Level.CIO, A, WAIT)}),
        (Flag.TECHNICAL_COMPLEXITY, {(Level.TIER_2, A, WAIT)}),
        # Customer requested is a suggestion, not automatic.
        (Flag.CUSTOMER_REQUESTED, {(Level.TIER_2, S, WAIT)}),
    ],
)
def test_each_flag_goes_where_the_procedures_say(
    flag: Flag, expected: set[tuple[Level, Mode, Urgency]]
) -> None:
    assert routes_of(facts(flags=frozenset({flag}))) == expected


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, set()),
        # L2: unresolved for more than 72 h, or 3 or more contacts.
        ({"opened_at": NOW - timedelta(hours=72)}, set()),
        ({"opened_at": NOW - timedelta(hours=72, minutes=1)}, {(Level.TIER_2, A, WAIT)}),
        ({"contacts": 2}, set()),
        ({"contacts": 3}, {(Level.TIER_2, A, WAIT)}),
        # CIO: a disputed amount above EUR 5,000.
        ({"disputed_amount": Decimal(5000)}, set()),
        ({"disputed_amount": Decimal("5000.01")}, {(Level.CIO, A, WAIT)}),
        # CEO, through the CIO only: CSR of 300,000 or more, any USDT amount.
        ({"csr": Decimal(299_999)}, set()),
        ({"csr": Decimal(300_000)}, {(Level.CIO, A, WAIT)}),
        ({"usdt_amount": Decimal("0.01")}, {(Level.CIO, A, WAIT)}),
        ({"usdt_amount": Decimal(0)}, set()),
        # A resolved case goes nowhere.
        ({"resolved": True, "flags": frozenset({Flag.LEGAL_THREAT})}, set()),
    ],
)
def test_thresholds_on_both_sides(
    changes: dict[str, object], expected: set[tuple[Level, Mode, Urgency]]
) -> None:
    assert routes_of(facts(**changes)) == expected


def test_the_ceo_is_reached_only_through_the_cio_with_the_approvals_needed() -> None:
    case = facts(
        usdt_amount=Decimal(1200),
        csr=Decimal(450_000),
        flags=frozenset({Flag.MAJOR_POLICY_EXCEPTION, Flag.USDT_WITHDRAWAL}),
    )
    routes = route(case, RULES, NOW)
    assert [r.level for r in routes] == [Level.CIO]
    (cio,) = routes
    assert cio.recommends_ceo
    assert set(cio.approvals) == {Level.CIO, Level.CEO}  # USDT: both approve
    assert "USDT withdrawal" in cio.reason and "CSR 450,000" in cio.reason
    assert cio.explain().startswith("CIO (recommending the CEO) because: ")
    assert all(r.level is not Level.CEO for r in route(case, RULES, NOW))


def test_a_cio_case_is_as_urgent_as_its_most_urgent_reason() -> None:
    case = facts(flags=frozenset({Flag.TERMINATION_APPEAL, Flag.LEGAL_THREAT}))
    (cio,) = route(case, RULES, NOW)
    assert cio.urgency is Urgency.CANNOT_WAIT
    assert cio.reason == "legal threat; termination appeal"
    assert cio.explain() == "CIO because: legal threat; termination appeal"


def test_an_automatic_reason_outranks_a_suggestion_for_the_same_level() -> None:
    case = facts(contacts=4, flags=frozenset({Flag.CUSTOMER_REQUESTED}))
    (l2,) = route(case, RULES, NOW)
    assert l2 == Route(
        Level.TIER_2, Mode.AUTOMATIC, Urgency.CAN_WAIT, "the customer contacted us 4 times"
    )


def test_automatic_and_urgent_routes_come_first() -> None:
    case = facts(flags=frozenset({Flag.CUSTOMER_REQUESTED, Flag.DATA_BREACH}))
    modes = [(r.mode, r.urgency) for r in route(case, RULES, NOW)]
    assert modes == sorted(modes, key=lambda m: (m[0] is not A, m[1] is not NOW_))
    assert modes[-1] == (S, WAIT)


def test_thresholds_are_data() -> None:
    strict = RoutingRules(l2_contacts=2, cio_disputed_amount_over=Decimal(1000))
    case = facts(contacts=2, disputed_amount=Decimal(1500))
    assert {r.level for r in route(case, strict, NOW)} == {Level.TIER_2, Level.CIO}
    assert route(case, RULES, NOW) == []
