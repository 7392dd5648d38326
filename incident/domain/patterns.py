"""Patterns across cases: when enough customers report the same problem, propose an incident.

Pure. Which cluster a case joins is `clusters.ClusterIndex`'s business (signatures compared);
this module says what a cluster is worth once it has members: how many customers it reaches,
weighted by plan (one enterprise customer counts for several starter ones), plus the alert
groups firing on its component; whether that reaches the trigger; which severity to suggest
("multiple enterprise customers affected" suggests P1, "affects multiple users" P2, in the
procedures' words); and the
life of the candidate a person then declares or dismisses. Nothing is declared without a
person: a candidate is only ever proposed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from incident.domain import text
from incident.domain.case import Plan
from incident.domain.errors import IllegalTransition
from incident.domain.lifecycle import Severity
from incident.domain.signatures import Signature


@dataclass(frozen=True)
class PatternRules:
    """`playbooks/support/patterns.yaml`: when cases join, and when a cluster is proposed."""

    threshold: float = 25.0  # signature similarity (0-100) for a case to join a cluster
    join_window: timedelta = timedelta(hours=72)  # joins while its latest case is this recent
    novelty_window: timedelta = timedelta(days=30)  # not seen in this long: a new signature
    trigger_customers: float = 5.0  # weighted distinct customers within `trigger_window`
    trigger_window: timedelta = timedelta(hours=6)
    plan_weights: Mapping[Plan, float] = field(
        default_factory=lambda: {Plan.STARTER: 1.0, Plan.PRO: 2.0, Plan.ENTERPRISE: 5.0}
    )
    alert_group_weight: float = 3.0  # an alert group firing on the component counts this much
    p1_enterprise_customers: int = 2  # this many enterprise customers suggest P1
    quiet_for: timedelta = timedelta(days=7)  # a dismissed signature proposes nothing this long
    channel: tuple[str, ...] = ()  # where candidates are posted ("chat:#support-patterns")
    remind_after: timedelta | None = timedelta(minutes=30)  # undecided: said again, once

    def weight(self, plan: Plan) -> float:
        return self.plan_weights.get(plan, 1.0)


@dataclass(frozen=True)
class Member:
    """One case in a cluster, as the trigger counts it."""

    case_id: int
    customer_id: str
    plan: Plan
    at: datetime  # when the case joined (its opening)


class ClusterStatus(StrEnum):
    OPEN = "open"  # gathering cases
    PROPOSED = "proposed"  # its candidate waits for a person
    DECLARED = "declared"  # an incident was declared (or chosen) for it; new cases link to it
    DISMISSED = "dismissed"  # a person said no: quiet until `quiet_until`


@dataclass
class Cluster:
    """Cases of many customers with one problem: what they share and when they came.

    `cases` and `words` are what the matcher keeps of its cases' words
    (`clusters.ClusterEntry`: the consensus it is compared by), stored so that a restart
    rebuilds the same index."""

    signature: Signature  # the first case's (its key and error codes are every case's)
    first_seen: datetime
    last_seen: datetime
    id: int | None = None
    cases: int = 1
    words: tuple[tuple[str, int], ...] = ()
    status: ClusterStatus = ClusterStatus.OPEN
    new: bool = False  # its signature was not seen in the novelty window before it
    incident_id: int | None = None
    quiet_until: datetime | None = None

    def quiet(self, at: datetime) -> bool:
        """Dismissed, and still quiet: its reports join it and propose nothing."""
        return (
            self.status is ClusterStatus.DISMISSED
            and self.quiet_until is not None
            and at < self.quiet_until
        )


@dataclass(frozen=True)
class Weight:
    """What a cluster reaches, in words people check."""

    customers: int  # distinct customers within the trigger window
    weighted: float  # those weighted by plan, plus the alert groups
    enterprise: int  # distinct enterprise customers within the window
    alert_groups: int

    def reaches(self, rules: PatternRules) -> bool:
        # Two customers at least: one whale alone is an escalation, not a pattern.
        return self.customers >= 2 and self.weighted >= rules.trigger_customers


def weigh(
    members: Iterable[Member], *, alert_groups: int, rules: PatternRules, now: datetime
) -> Weight:
    """Distinct customers of the members within the trigger window, each counted once at
    the weight of their best plan, plus the alert groups on the component."""
    since = now - rules.trigger_window
    plans: dict[str, Plan] = {}
    for member in members:
        if member.at < since:
            continue
        known = plans.get(member.customer_id)
        if known is None or rules.weight(member.plan) > rules.weight(known):
            plans[member.customer_id] = member.plan
    weighted = sum(rules.weight(p) for p in plans.values()) + alert_groups * (
        rules.alert_group_weight
    )
    enterprise = sum(1 for p in plans.values() if p is Plan.ENTERPRISE)
    return Weight(len(plans), weighted, enterprise, alert_groups)


def suggest(weight: Weight, rules: PatternRules) -> tuple[Severity, str]:
    """The severity to suggest, with the procedures' words for why."""
    if weight.enterprise >= rules.p1_enterprise_customers:
        return Severity.P1, f"affects multiple enterprise customers ({weight.enterprise})"
    return Severity.P2, f"affects multiple users ({weight.customers} customers)"


class CandidateStatus(StrEnum):
    PROPOSED = "proposed"
    DECLARED = "declared"
    DISMISSED = "dismissed"


@dataclass
class Candidate:
    """An incident proposed from a cluster; a person declares or dismisses it."""

    cluster_id: int
    proposed_at: datetime
    severity: Severity
    reason: str  # why that severity
    customers: int
    weighted: float
    id: int | None = None
    status: CandidateStatus = CandidateStatus.PROPOSED
    decided_by: str | None = None
    decided_at: datetime | None = None
    note: str | None = None  # the dismissal's reason
    incident_id: int | None = None

    @property
    def ref(self) -> str:
        return f"CAND-{self.id}" if self.id is not None else "CAND-new"

    def declared(self, incident_id: int, *, at: datetime, by: str) -> None:
        """An incident stands for it now (declared for it, or an open one chosen)."""
        self._require_proposed("declare")
        self.status, self.incident_id = CandidateStatus.DECLARED, incident_id
        self.decided_by, self.decided_at = by, at

    def dismiss(self, reason: str, *, at: datetime, by: str) -> None:
        self._require_proposed("dismiss")
        self.status, self.note = CandidateStatus.DISMISSED, text.REASON.check(reason)
        self.decided_by, self.decided_at = by, at

    def _require_proposed(self, what: str) -> None:
        if self.status is not CandidateStatus.PROPOSED:
            by = f" by {self.decided_by}" if self.decided_by else ""
            raise IllegalTransition(f"{self.ref} was {self.status.value}{by}: it cannot {what}")
