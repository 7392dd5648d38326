"""Where a support case must go, and why: the escalation rules as a pure function.

`route(facts, rules, now)` reads what is known of a case and returns every route its facts
call for, each with the rule that calls for it ("CIO because: legal threat"). Routes are
either **automatic** (the rule sends the case) or **suggestions** (a person decides: a
customer asking for a senior engineer is a suggestion, not a route). Each route also says
whether it can wait for the receiving level's next business day or cannot (the emergency
protocol: page and direct contact).

The CEO is never a route of its own: a case that calls for the CEO (a customer of strategic
value, any USDT amount, a major policy exception) goes to the CIO, recommending the CEO;
the CIO routes it on. The thresholds are data (`RoutingRules`), read from the playbooks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum


class Level(StrEnum):
    """Who a case can reach: the technical tiers, the management path, the executives and
    the specialist teams."""

    TIER_1 = "tier_1"  # general support
    TIER_2 = "tier_2"  # technical: L2 senior support, its own queue
    TIER_3 = "tier_3"  # engineering, on call 24/7
    SUPPORT_MANAGER = "support_manager"
    DIRECTOR_CS = "director_customer_success"
    VP_CS = "vp_customer_success"
    C_LEVEL = "c_level"
    CIO = "cio"
    CEO = "ceo"  # only through the CIO
    SECURITY = "security"
    COMPLIANCE = "compliance"


# How high each level stands: a case moves up to a higher one by the rules, never down
# (de-escalation is a person's decision). The specialist teams stand beside tier 3.
HEIGHT = {
    Level.TIER_1: 0,
    Level.TIER_2: 1,
    Level.TIER_3: 2,
    Level.SECURITY: 2,
    Level.COMPLIANCE: 2,
    Level.SUPPORT_MANAGER: 3,
    Level.DIRECTOR_CS: 4,
    Level.VP_CS: 5,
    Level.C_LEVEL: 6,
    Level.CIO: 7,
    Level.CEO: 8,
}
SPECIALIST_TEAMS = frozenset({Level.SECURITY, Level.COMPLIANCE})


class Flag(StrEnum):
    """What an agent (or an integration) has marked on a case."""

    LEGAL_THREAT = "legal_threat"
    REGULATORY_INQUIRY = "regulatory_inquiry"
    MEDIA_CONTACT = "media_contact"
    SUSPECTED_FRAUD = "suspected_fraud"
    DATA_BREACH = "data_breach"
    LEGAL_SERVICE = "legal_service"  # papers served
    REGULATORY_ACTION = "regulatory_action"
    SYSTEM_DOWN = "system_down"
    TERMINATION_APPEAL = "termination_appeal"
    USDT_WITHDRAWAL = "usdt_withdrawal"
    TECHNICAL_COMPLEXITY = "technical_complexity"
    CUSTOMER_REQUESTED = "customer_requested"  # asked for escalation: a suggestion only
    MAJOR_POLICY_EXCEPTION = "major_policy_exception"


class Mode(StrEnum):
    AUTOMATIC = "automatic"  # the rule sends the case
    SUGGESTED = "suggested"  # shown to the agent; a person decides


class Urgency(StrEnum):
    CAN_WAIT = "can_wait"  # queued to the receiving level's next business day
    CANNOT_WAIT = "cannot_wait"  # emergency protocol: page and direct contact, any hour


@dataclass(frozen=True)
class CaseFacts:
    """What routing reads of a case."""

    opened_at: datetime
    flags: frozenset[Flag] = frozenset()
    contacts: int = 1  # times the customer has contacted us about it
    resolved: bool = False
    disputed_amount: Decimal | None = None  # in EUR (converted where it was not)
    csr: Decimal | None = None  # the procedures' customer value figure
    usdt_amount: Decimal | None = None


@dataclass(frozen=True)
class RoutingRules:
    """The thresholds of the rules (the playbooks' `routing:` section)."""

    l2_unresolved_after: timedelta = timedelta(hours=72)
    l2_contacts: int = 3
    cio_disputed_amount_over: Decimal = Decimal(5000)  # EUR
    ceo_csr_from: Decimal = Decimal(300_000)


@dataclass(frozen=True)
class Route:
    level: Level
    mode: Mode
    urgency: Urgency
    reason: str  # the rule, in words people read: "legal threat"
    recommends_ceo: bool = False  # a CIO route asking the CIO to take it to the CEO
    # Decisions this route needs, by level: a USDT amount needs the CEO's and the CIO's.
    approvals: tuple[Level, ...] = field(default=())

    def explain(self) -> str:
        """`CIO because: legal threat` (the case page's routing explanation)."""
        target = f"{_LEVEL_WORDS[self.level]}" + (
            " (recommending the CEO)" if self.recommends_ceo else ""
        )
        return f"{target} because: {self.reason}"


_LEVEL_WORDS = {
    Level.TIER_1: "tier 1",
    Level.TIER_2: "tier 2 (L2 senior support)",
    Level.TIER_3: "tier 3 (engineering)",
    Level.SUPPORT_MANAGER: "the support manager",
    Level.DIRECTOR_CS: "the director of customer success",
    Level.VP_CS: "the VP of customer success",
    Level.C_LEVEL: "C-level",
    Level.CIO: "CIO",
    Level.CEO: "CEO",
    Level.SECURITY: "the security team",
    Level.COMPLIANCE: "the compliance team",
}

# Flags that take a case to the CIO at once, whatever the hour.
CIO_AT_ONCE = {
    Flag.LEGAL_THREAT: "legal threat",
    Flag.REGULATORY_INQUIRY: "regulatory inquiry",
    Flag.MEDIA_CONTACT: "media contact",
    Flag.SUSPECTED_FRAUD: "suspected fraud",
    Flag.DATA_BREACH: "data breach",
    Flag.LEGAL_SERVICE: "legal service",
    Flag.REGULATORY_ACTION: "regulatory action",
    Flag.SYSTEM_DOWN: "system down",
}
# Specialist teams that hear of these too.
SPECIALISTS = {
    Flag.DATA_BREACH: Level.SECURITY,
    Flag.SUSPECTED_FRAUD: Level.SECURITY,
    Flag.REGULATORY_INQUIRY: Level.COMPLIANCE,
    Flag.REGULATORY_ACTION: Level.COMPLIANCE,
}

Rule = Callable[[CaseFacts, RoutingRules, datetime], list[Route]]


def route(facts: CaseFacts, rules: RoutingRules, now: datetime) -> list[Route]:
    """Every route the case's facts call for, automatic ones first, each level once (the
    most urgent of its reasons kept, with every reason named)."""
    if facts.resolved:
        return []
    found = [r for rule in RULES for r in rule(facts, rules, now)]
    return _merged(found)


def _executive(facts: CaseFacts, rules: RoutingRules, now: datetime) -> list[Route]:
    routes = [
        Route(Level.CIO, Mode.AUTOMATIC, Urgency.CANNOT_WAIT, words)
        for flag, words in CIO_AT_ONCE.items()
        if flag in facts.flags
    ]
    if Flag.SYSTEM_DOWN in facts.flags:
        routes.append(Route(Level.TIER_3, Mode.AUTOMATIC, Urgency.CANNOT_WAIT, "system down"))
    routes += [
        Route(team, Mode.AUTOMATIC, Urgency.CANNOT_WAIT, CIO_AT_ONCE[flag])
        for flag, team in SPECIALISTS.items()
        if flag in facts.flags
    ]
    amount = facts.disputed_amount
    if amount is not None and amount > rules.cio_disputed_amount_over:
        routes.append(
            Route(
                Level.CIO,
                Mode.AUTOMATIC,
                Urgency.CAN_WAIT,
                f"disputed amount EUR {amount:,} over EUR {rules.cio_disputed_amount_over:,}",
            )
        )
    if Flag.TERMINATION_APPEAL in facts.flags:
        routes.append(Route(Level.CIO, Mode.AUTOMATIC, Urgency.CAN_WAIT, "termination appeal"))
    if Flag.USDT_WITHDRAWAL in facts.flags:
        routes.append(Route(Level.CIO, Mode.AUTOMATIC, Urgency.CAN_WAIT, "USDT withdrawal"))
    return routes


def _ceo_through_the_cio(facts: CaseFacts, rules: RoutingRules, now: datetime) -> list[Route]:
    reasons: list[tuple[str, tuple[Level, ...]]] = []
    if facts.csr is not None and facts.csr >= rules.ceo_csr_from:
        reasons.append((f"CSR {facts.csr:,} of at least {rules.ceo_csr_from:,}", (Level.CEO,)))
    if facts.usdt_amount is not None and facts.usdt_amount > 0:
        reasons.append((f"USDT amount {facts.usdt_amount:,}", (Level.CIO, Level.CEO)))
    if Flag.MAJOR_POLICY_EXCEPTION in facts.flags:
        reasons.append(("major policy exception", (Level.CEO,)))
    return [
        Route(Level.CIO, Mode.AUTOMATIC, Urgency.CAN_WAIT, words, True, approvals)
        for words, approvals in reasons
    ]


def _senior_support(facts: CaseFacts, rules: RoutingRules, now: datetime) -> list[Route]:
    routes = []
    if now - facts.opened_at > rules.l2_unresolved_after:
        hours = int(rules.l2_unresolved_after.total_seconds() // 3600)
        routes.append(
            Route(Level.TIER_2, Mode.AUTOMATIC, Urgency.CAN_WAIT, f"unresolved for over {hours} h")
        )
    if facts.contacts >= rules.l2_contacts:
        routes.append(
            Route(
                Level.TIER_2,
                Mode.AUTOMATIC,
                Urgency.CAN_WAIT,
                f"the customer contacted us {facts.contacts} times",
            )
        )
    if Flag.TECHNICAL_COMPLEXITY in facts.flags:
        routes.append(Route(Level.TIER_2, Mode.AUTOMATIC, Urgency.CAN_WAIT, "technical complexity"))
    if Flag.CUSTOMER_REQUESTED in facts.flags:
        routes.append(
            Route(Level.TIER_2, Mode.SUGGESTED, Urgency.CAN_WAIT, "the customer asked for it")
        )
    return routes


RULES: tuple[Rule, ...] = (_executive, _ceo_through_the_cio, _senior_support)


def _merged(routes: list[Route]) -> list[Route]:
    """One route per level: automatic over suggested, cannot-wait over can-wait; every reason
    kept, a CEO recommendation and the approvals it needs kept too."""
    by_level: dict[Level, list[Route]] = {}
    for one in routes:
        by_level.setdefault(one.level, []).append(one)
    merged = []
    for level, found in by_level.items():
        automatic = [r for r in found if r.mode is Mode.AUTOMATIC]
        kept = automatic or found
        urgency = (
            Urgency.CANNOT_WAIT
            if any(r.urgency is Urgency.CANNOT_WAIT for r in kept)
            else Urgency.CAN_WAIT
        )
        approvals = tuple(dict.fromkeys(a for r in kept for a in r.approvals))
        merged.append(
            Route(
                level,
                kept[0].mode,
                urgency,
                "; ".join(dict.fromkeys(r.reason for r in kept)),
                any(r.recommends_ceo for r in kept),
                approvals,
            )
        )
    return sorted(
        merged, key=lambda r: (r.mode is not Mode.AUTOMATIC, r.urgency is not Urgency.CANNOT_WAIT)
    )
