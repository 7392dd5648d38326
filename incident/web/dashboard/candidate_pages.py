"""What the dashboard's incident candidate pages show: each candidate with what it is about,
and one candidate's evidence in the words of the patterns channel's post
(`candidate_context`), so a person reads the same evidence in chat and here.

Who may decide is asked of the domain's `authorize` (declaring an incident: the rule the
use cases apply), so the forms are shown exactly when sending them would be allowed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from incident.domain.access import Principal
from incident.domain.case import CaseStatus, Plan
from incident.domain.lifecycle import Severity
from incident.domain.patterns import Candidate, CandidateStatus, Cluster, PatternRules
from incident.domain.playbook import duration_words
from incident.services.candidate_steps import Evidence, candidate_context
from incident.web.dashboard.pages import may_declare

STATUS_WORDS = {
    CandidateStatus.PROPOSED: "Waiting for a decision",
    CandidateStatus.DECLARED: "Declared",
    CandidateStatus.DISMISSED: "Dismissed",
}
# Each status's pill (dashboard.css): waiting stands out, decided ones recede.
STATUS_PILLS = {
    CandidateStatus.PROPOSED: "pill-held",
    CandidateStatus.DECLARED: "status-resolved",
    CandidateStatus.DISMISSED: "status-cancelled",
}
# What the candidate's page says after a form (`?done=<form>`; only these words are shown).
DONE = {"dismiss": "Dismissed: its signature stays quiet; new reports join it silently."}


def may_decide(principal: Principal, candidate: Candidate) -> bool:
    """Declaring or dismissing: for those who may declare an incident, while it waits."""
    return candidate.status is CandidateStatus.PROPOSED and may_declare(principal)


def where(cluster: Cluster) -> str:
    """`transfers / bridge`: the category and the component the cases share."""
    sig = cluster.signature
    return " / ".join(part for part in (sig.category, sig.component) if part)


@dataclass(frozen=True)
class Row:
    """One candidate in the list: the candidate and what its reports say."""

    candidate: Candidate
    signature: str
    where: str
    cases: int
    new: bool

    @classmethod
    def of(cls, candidate: Candidate, cluster: Cluster) -> Row:
        return cls(candidate, cluster.signature.text, where(cluster), cluster.cases, cluster.new)


def list_fingerprint(found: Sequence[tuple[Candidate, Cluster]]) -> tuple[object, ...]:
    return tuple(
        (c.id, c.status, c.decided_at, c.incident_id, k.cases, k.last_seen) for c, k in found
    )


@dataclass(frozen=True)
class EvidenceCase:
    """One case of the candidate, as its table shows it."""

    id: int
    ref: str
    reference: str
    customer_id: str
    plan: Plan
    status: CaseStatus
    incident_id: int | None
    joined_at: datetime

    @classmethod
    def of(cls, case: Mapping[str, Any]) -> EvidenceCase:
        return cls(
            id=case["id"],
            ref=case["ref"],
            reference=case["reference"],
            customer_id=case["customer_id"],
            plan=Plan(case["plan"]),
            status=CaseStatus(case["status"]),
            incident_id=case["incident"],
            joined_at=case["at"],
        )


@dataclass(frozen=True)
class CandidateView:
    """A candidate's page: the post's variables (`post`), its cases, and the rules' spans
    in words."""

    candidate: Candidate
    post: Mapping[str, Any]  # candidate_context: candidate, signature, first/last seen
    cases: list[EvidenceCase]
    customers: int  # distinct customers of its cases now
    where: str
    severity: Severity
    novelty: str  # "30 days": how long unseen makes a signature new
    quiet_for: str  # "7 days": how long a dismissed signature stays quiet

    @classmethod
    def of(cls, found: Evidence, rules: PatternRules) -> CandidateView:
        cases = [EvidenceCase.of(case) for case in found.cases]
        return cls(
            candidate=found.candidate,
            post=candidate_context(found, base_url=""),
            cases=cases,
            customers=len({case.customer_id for case in cases}),
            where=where(found.cluster),
            severity=found.candidate.severity,
            novelty=duration_words(rules.novelty_window),
            quiet_for=duration_words(rules.quiet_for),
        )


def evidence_fingerprint(found: Evidence) -> tuple[object, ...]:
    """What the candidate's page shows: a decision, or a case joining, changes it."""
    return (
        repr(found.candidate),
        found.cluster.status,
        found.cluster.last_seen,
        tuple((c["id"], c["status"], c["incident"]) for c in found.cases),
    )
