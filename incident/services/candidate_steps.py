"""Incident candidates as a subject of the engine: the post to the patterns channel that
proposes one, and the one reminder when nobody has decided yet. Each is sent once under its
idempotency key (`candidate/<id>/post/1`), so a crash between the post and its mark, or two
replicas, never post twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from incident.domain.errors import NotFound
from incident.domain.patterns import Candidate, CandidateStatus, Cluster, Member, PatternRules
from incident.domain.planning import Stop, Verdict
from incident.domain.records import Occurrence, StepResult
from incident.services.engine import Failure, Prepared, Ready, Sent, StepReport
from incident.services.ports import Messenger, Renderer, Topic, Transaction

log = logging.getLogger("incident.scheduler")

CANDIDATE = "candidate"  # the subject kind of incident candidates
POST, REMIND = "post", "remind"
AUDIENCE = "patterns channel"
TEMPLATE = "patterns/candidate"  # comms/patterns/candidate.txt.j2


@dataclass(frozen=True)
class CandidateStep:
    """One of a candidate's two steps (a `StepShape`: what is stored with each occurrence)."""

    id: str
    description: str
    action: str
    target: str | None = AUDIENCE


STEPS = {
    POST: CandidateStep(POST, "The candidate is posted to the patterns channel.", "post"),
    REMIND: CandidateStep(
        REMIND, "Nobody has decided yet: the patterns channel hears of it again.", "remind"
    ),
}


@dataclass(frozen=True)
class Evidence:
    """What a person needs to decide on a candidate."""

    candidate: Candidate
    cluster: Cluster
    members: list[Member]
    cases: list[dict[str, Any]]  # each member case: ref, reference, customer, plan, status

    @property
    def first_seen(self) -> datetime:
        return self.cluster.first_seen

    @property
    def last_seen(self) -> datetime:
        return self.cluster.last_seen


def evidence(tx: Transaction, candidate: Candidate) -> Evidence:
    cluster = tx.get_cluster(candidate.cluster_id)
    members = tx.cluster_members(candidate.cluster_id)
    cases = []
    for member in members:
        try:
            case = tx.get_case(member.case_id)
        except NotFound:  # pragma: no cover - members reference cases by foreign key
            continue
        cases.append(
            {
                "id": case.id,
                "ref": case.ref,
                "reference": case.reference,
                "customer_id": case.customer_id,
                "plan": case.plan.value,
                "status": case.status.value,
                "incident": case.incident_id,
                "at": member.at,
            }
        )
    return Evidence(candidate, cluster, members, cases)


@dataclass(frozen=True)
class CandidateSent:
    summary: str


@dataclass(frozen=True)
class CandidatePost:
    occurrence: Occurrence
    topic: Topic
    destinations: tuple[str, ...]
    subject: str
    body: str
    key: str
    messenger: Messenger

    async def perform(self) -> CandidateSent:
        await self.messenger.send(
            about=self.topic,
            audience=AUDIENCE,
            destinations=self.destinations,
            subject=self.subject,
            body=self.body,
            key=self.key,
        )
        return CandidateSent(f"told the {AUDIENCE}")


class CandidateSteps:
    """The `SubjectKind` of incident candidates."""

    name = CANDIDATE

    def __init__(
        self, rules: PatternRules, messenger: Messenger, renderer: Renderer, *, base_url: str
    ) -> None:
        self.rules = rules
        self.messenger = messenger
        self.renderer = renderer
        self.base_url = base_url

    def prepare(
        self, tx: Transaction, occurrence: Occurrence, now: datetime, *, facts: object = None
    ) -> Prepared:
        candidate = tx.get_candidate(occurrence.subject.id)
        stopped = self._verdict(occurrence, candidate)
        if stopped is not None:
            tx.finish_occurrence(
                occurrence.id, state=stopped.stop.state, now=now, outcome=stopped.reason
            )
            result = StepResult(stopped.stop.state.value)
            report = StepReport(occurrence, result, now - occurrence.due_at, stopped.reason)
            return Prepared(occurrence, report=report)
        found = evidence(tx, candidate)
        reminder = occurrence.step_id == REMIND
        body = self.renderer.render(
            TEMPLATE, candidate_context(found, base_url=self.base_url, reminder=reminder)
        )
        what = (
            f"incident candidate {candidate.ref}: {candidate.customers} customers, "
            f"suggested {candidate.severity.value}"
        )
        subject = f"Still undecided: {what}" if reminder else what[0].upper() + what[1:]
        post = CandidatePost(
            occurrence=occurrence,
            topic=Topic(occurrence.subject, candidate.proposed_at, candidate.ref),
            destinations=self.rules.channel,
            subject=subject,
            body=body,
            key=occurrence.effect_key(repeats=False),
            messenger=self.messenger,
        )
        return Prepared(occurrence, ready=post)

    @staticmethod
    def _verdict(occurrence: Occurrence, candidate: Candidate) -> Verdict | None:
        if occurrence.step_id not in STEPS:
            return Verdict(Stop.NOT_IN_PLAYBOOK, "not a step of candidates")
        if candidate.status is not CandidateStatus.PROPOSED:
            return Verdict(Stop.STOPPED, f"stopped: {candidate.status.value}")
        return None

    def record_done(self, tx: Transaction, ready: Ready, sent: Sent, now: datetime) -> object:
        return None

    def record_failure(
        self, tx: Transaction, occurrence: Occurrence, failure: Failure, now: datetime
    ) -> object:
        return None

    def committed(self, sent: Sent) -> None:
        return None

    async def gave_up(self, ready: Ready, failure: Failure, facts: object) -> None:
        """Nothing to tell: the candidate stays on the dashboard, where it is decided."""
        log.warning(
            "candidate post gave up",
            extra={"candidate_id": ready.occurrence.subject.id, "error": failure.message},
        )


def candidate_context(found: Evidence, *, base_url: str, reminder: bool = False) -> dict[str, Any]:
    """The variables of comms/patterns/candidate.txt.j2 (and the dashboard's evidence)."""
    c, cluster = found.candidate, found.cluster
    sig = cluster.signature
    return {
        "candidate": {
            "ref": c.ref,
            "id": c.id,
            "severity": c.severity.value,
            "reason": c.reason,
            "customers": c.customers,
            "weighted": round(c.weighted, 1),
            "proposed_at": c.proposed_at,
            "status": c.status.value,
        },
        "signature": {
            "text": sig.text,
            "category": sig.category,
            "component": sig.component,
            "error_codes": list(sig.error_codes),
            "new": cluster.new,
        },
        "first_seen": cluster.first_seen,
        "last_seen": cluster.last_seen,
        "cases": found.cases,
        "reminder": reminder,
        "links": {"candidate": f"{base_url}/ui/candidates/{c.id}"},
    }
