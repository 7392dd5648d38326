"""What a cluster is worth: distinct customers weighted by plan within the trigger window,
alert groups on the component, the trigger's both sides, the severity suggested, and the
candidate's one decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from incident.domain.case import Plan
from incident.domain.errors import IllegalTransition, InvalidValue
from incident.domain.lifecycle import Severity
from incident.domain.patterns import (
    Candidate,
    CandidateStatus,
    Member,
    PatternRules,
    suggest,
    weigh,
)

NOW = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)
RULES = PatternRules()  # 5 weighted customers within 6 h; starter 1, pro 2, enterprise 5


def member(
    n: int, plan: Plan, *, ago: timedelta = timedelta(minutes=5), customer: str = ""
) -> Member:
    return Member(n, customer or f"cust-{n}", plan, NOW - ago)


@pytest.mark.parametrize(
    ("plans", "customers", "weighted", "reaches"),
    [
        ([Plan.STARTER] * 4, 4, 4.0, False),  # one short of the trigger
        ([Plan.STARTER] * 5, 5, 5.0, True),  # exactly the trigger
        ([Plan.PRO, Plan.PRO], 2, 4.0, False),
        ([Plan.PRO, Plan.PRO, Plan.STARTER], 3, 5.0, True),
        ([Plan.ENTERPRISE], 1, 5.0, False),  # one whale alone is an escalation, not a pattern
        ([Plan.ENTERPRISE, Plan.STARTER], 2, 6.0, True),
    ],
)
def test_customers_are_weighted_by_plan_and_the_trigger_has_two_sides(
    plans: list[Plan], customers: int, weighted: float, reaches: bool
) -> None:
    weight = weigh(
        [member(n, p) for n, p in enumerate(plans)], alert_groups=0, rules=RULES, now=NOW
    )
    assert (weight.customers, weight.weighted, weight.reaches(RULES)) == (
        customers,
        weighted,
        reaches,
    )


def test_a_customer_counts_once_at_their_best_plan_and_only_within_the_window() -> None:
    members = [
        member(1, Plan.STARTER, customer="acme"),
        member(2, Plan.ENTERPRISE, customer="acme"),  # the same customer, a second case
        member(3, Plan.PRO, customer="globex"),
        member(4, Plan.ENTERPRISE, ago=timedelta(hours=6, minutes=1)),  # outside the window
        member(5, Plan.PRO, ago=timedelta(hours=6)),  # on its edge: in
    ]
    weight = weigh(members, alert_groups=0, rules=RULES, now=NOW)
    assert (weight.customers, weight.weighted, weight.enterprise) == (3, 9.0, 1)


def test_alert_groups_on_the_component_count_too() -> None:
    two = [member(1, Plan.STARTER), member(2, Plan.STARTER)]
    assert not weigh(two, alert_groups=0, rules=RULES, now=NOW).reaches(RULES)
    with_alert = weigh(two, alert_groups=1, rules=RULES, now=NOW)
    assert with_alert.weighted == 5.0 and with_alert.reaches(RULES)


def test_multiple_enterprise_customers_suggest_p1_else_p2() -> None:
    one = weigh(
        [member(1, Plan.ENTERPRISE), member(2, Plan.PRO)], alert_groups=0, rules=RULES, now=NOW
    )
    two = weigh(
        [member(1, Plan.ENTERPRISE), member(2, Plan.ENTERPRISE)],
        alert_groups=0,
        rules=RULES,
        now=NOW,
    )
    assert suggest(one, RULES) == (Severity.P2, "affects multiple users (2 customers)")
    assert suggest(two, RULES) == (Severity.P1, "affects multiple enterprise customers (2)")


def candidate() -> Candidate:
    return Candidate(1, NOW, Severity.P2, "affects multiple users", 3, 6.0, id=7)


def test_a_candidate_is_decided_once() -> None:
    declared = candidate()
    declared.declared(12, at=NOW, by="ivy")
    assert (declared.status, declared.incident_id, declared.decided_by) == (
        CandidateStatus.DECLARED,
        12,
        "ivy",
    )
    with pytest.raises(IllegalTransition, match="CAND-7 was declared by ivy"):
        declared.dismiss("not ours", at=NOW, by="bob")
    dismissed = candidate()
    with pytest.raises(InvalidValue):
        dismissed.dismiss("  ", at=NOW, by="bob")
    assert dismissed.status is CandidateStatus.PROPOSED  # a refusal changes nothing
    dismissed.dismiss("  Known issue upstream  ", at=NOW, by="bob")
    assert dismissed.note == "Known issue upstream"
    with pytest.raises(IllegalTransition, match="dismissed by bob"):
        dismissed.declared(3, at=NOW, by="ivy")
