"""The JSON shapes of /api/v1/candidates: incidents proposed from many customers' cases.

Requests are strict like every request of the API (`schemas.Request`). A declaration takes
the incident declaration's own rules for its title and severity (`schemas.Short`,
`Severity`), so a title the API's declare refuses is refused here, from every door (the
CLI sends it here, Slack and the dashboard build this model from what was typed).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from incident.domain.case import CaseStatus, Plan
from incident.domain.lifecycle import Severity
from incident.domain.patterns import Candidate, CandidateStatus
from incident.services.candidate_steps import Evidence
from incident.web.case_schemas import LinkedIncidentOut
from incident.web.schemas import IncidentId, Request, Short, Text

# A declaration either declares a new incident (its severity and title may be given) or
# uses an open one (`incident`): both at once is refused, by the model and the document.
_NEW_INCIDENT = ("severity", "title")
ONE_OR_THE_OTHER = (
    "give either incident (an open incident to link the cases to) or severity and title "
    "(for a new incident), not both"
)


class DeclareCandidateRequest(Request):
    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        json_schema_extra={
            "not": {
                "required": ["incident"],
                "anyOf": [{"required": [name]} for name in _NEW_INCIDENT],
            }
        },
    )

    severity: Severity | None = Field(
        default=None, description="The new incident's severity; the suggested one if left out."
    )
    title: Short | None = Field(
        default=None,
        description="The new incident's internal title, in a line; if left out, what the "
        "customers report and where.",
    )
    incident: IncidentId | None = Field(
        default=None,
        description="Instead of declaring one: the open incident this is part of, by its "
        "number (7 for INC-7). Every case of the candidate is linked to it.",
    )

    @model_validator(mode="after")
    def _one_or_the_other(self) -> Self:
        # Given at all (even null), as the document's `required` counts it.
        if "incident" in self.model_fields_set and self.model_fields_set & set(_NEW_INCIDENT):
            raise PydanticCustomError("one_or_the_other", ONE_OR_THE_OTHER)
        return self


class DismissCandidateRequest(Request):
    reason: Text = Field(
        description="Why it is not an incident. Its signature then stays quiet for a while: "
        "new reports join it without proposing it again."
    )


class CandidateOut(BaseModel):
    id: int
    ref: str = Field(description="CAND-7")
    status: CandidateStatus
    proposed_at: datetime
    severity: Severity = Field(description="The severity suggested.")
    reason: str = Field(description="Why that severity, e.g. affects multiple users (3 customers).")
    customers: int = Field(
        description="Distinct customers within the trigger window when it was proposed."
    )
    weighted: float = Field(
        description="Those customers weighted by plan, plus the alert groups on the component."
    )
    decided_by: str | None
    decided_at: datetime | None
    note: str | None = Field(description="Why it was dismissed.")
    incident: LinkedIncidentOut | None = Field(
        description="The incident declared for it, or the open one chosen."
    )

    @classmethod
    def of(cls, candidate: Candidate) -> CandidateOut:
        assert candidate.id is not None
        return cls(
            id=candidate.id,
            ref=candidate.ref,
            status=candidate.status,
            proposed_at=candidate.proposed_at,
            severity=candidate.severity,
            reason=candidate.reason,
            customers=candidate.customers,
            weighted=round(candidate.weighted, 1),
            decided_by=candidate.decided_by,
            decided_at=candidate.decided_at,
            note=candidate.note,
            incident=LinkedIncidentOut.of(candidate.incident_id),
        )


class CandidateList(BaseModel):
    candidates: list[CandidateOut] = Field(description="Newest first.")


class SignatureOut(BaseModel):
    text: str = Field(description="What the customers report, amounts, hashes and ids masked.")
    category: str
    component: str
    error_codes: list[str]


class EvidenceCaseOut(BaseModel):
    id: int
    ref: str
    reference: str = Field(description="The helpdesk ticket.")
    customer_id: str
    plan: Plan
    status: CaseStatus
    incident: LinkedIncidentOut | None = Field(description="The incident it is linked to.")
    joined_at: datetime = Field(description="When it joined the cluster.")

    @classmethod
    def of(cls, case: dict[str, Any]) -> EvidenceCaseOut:
        return cls(
            id=case["id"],
            ref=case["ref"],
            reference=case["reference"],
            customer_id=case["customer_id"],
            plan=Plan(case["plan"]),
            status=CaseStatus(case["status"]),
            incident=LinkedIncidentOut.of(case["incident"]),
            joined_at=case["at"],
        )


class CandidateDetail(BaseModel):
    candidate: CandidateOut
    signature: SignatureOut
    new: bool = Field(description="The signature was not seen in the novelty window before.")
    first_seen: datetime
    last_seen: datetime
    cases: list[EvidenceCaseOut] = Field(description="Every case of its cluster, as they came.")
    customers: int = Field(description="How many distinct customers those cases are of.")
    page: str = Field(description="The candidate's page on the dashboard.")

    @classmethod
    def of(cls, found: Evidence, *, page: str) -> CandidateDetail:
        sig = found.cluster.signature
        cases = [EvidenceCaseOut.of(case) for case in found.cases]
        return cls(
            candidate=CandidateOut.of(found.candidate),
            signature=SignatureOut(
                text=sig.text,
                category=sig.category,
                component=sig.component,
                error_codes=list(sig.error_codes),
            ),
            new=found.cluster.new,
            first_seen=found.first_seen,
            last_seen=found.last_seen,
            cases=cases,
            customers=distinct_customers(found),
            page=page,
        )


def distinct_customers(found: Evidence) -> int:
    """How many customers the candidate's cases are of now (its `customers` counted those
    within the trigger window when it was proposed)."""
    return len({case["customer_id"] for case in found.cases})


class CandidateDeclared(BaseModel):
    candidate: CandidateOut
    incident: LinkedIncidentOut = Field(description="The incident its cases are linked to.")
    created: bool = Field(
        description="True when this request declared the incident; false when an open one "
        "was chosen or the candidate was declared already."
    )


class CandidateDismissed(BaseModel):
    candidate: CandidateOut
