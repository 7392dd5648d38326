"""The JSON shapes of /api/v1/cases: requests (strict: no unknown fields, no coercion) and
responses; the same models make the OpenAPI document.

A case's escalation context (`context`) is a JSON object here; what its fields may hold is
the domain's one rule (`incident.domain.case_context.clean_context`), which every door
applies, so an EVM hash is checked the same from the API, the CLI and Slack.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

from incident.domain import text as rules
from incident.domain.case import LABEL_LENGTH, Case, CaseStatus, Deescalation, Plan
from incident.domain.case_context import FIELDS, ChecklistItem
from incident.domain.case_ladder import SlaState
from incident.domain.case_routing import Flag, Level, Mode, Urgency
from incident.domain.lifecycle import Severity
from incident.services.case_links import LinkedCase, LinkedCases
from incident.services.cases import CaseView, UpcomingCaseStep
from incident.web.schemas import IncidentId, Request, Text, TimelineEntryOut

Reference = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=100, pattern=rules.FILLED_LINE_PATTERN
    ),
]
Summary = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=2000, pattern=rules.FILLED_TEXT_PATTERN
    ),
]
# What a case is about, for grouping many customers' reports of one problem: one line,
# trimmed, kept as typed ("KYC", "SEPA payouts": people read it as they wrote it). Not
# casefolded here: grouping compares labels casefolded and whitespace-collapsed itself
# (`incident.domain.signatures`), so "Withdrawals" and "withdrawals " group together
# without the case losing how it was written. Empty: not classified (an update clears it).
Label = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=LABEL_LENGTH, pattern=rules.LINE_PATTERN),
    Field(
        description=f"One line of plain text, at most {LABEL_LENGTH} characters; empty for none."
    ),
]
_ADDRESS = r"^[^@\s<>,;:\"]+@[^@\s<>,;:\"]+\.[^@\s<>,;:\"]+$"  # one plain address
Email = Annotated[str, StringConstraints(strip_whitespace=True, max_length=320, pattern=_ADDRESS)]
Amount = Annotated[
    Decimal,
    Field(
        ge=0,
        le=Decimal("1e30"),
        max_digits=48,
        decimal_places=18,
        description='A decimal amount: a JSON number or a string like "5000.50".',
    ),
]
Flags = Annotated[list[Flag], Field(max_length=len(Flag))]
Checklist = Annotated[list[ChecklistItem], Field(max_length=len(ChecklistItem))]
# The shape of each context field in the document: its JSON type (null: not known yet).
# The formats within (hashes, addresses, checksums, lengths) are the domain's one rule,
# `clean_context`, which names every problem; the document says no more than the server
# refuses (the fuzz test sends what it calls invalid and expects a refusal).
_NULLABLE_TEXT: dict[str, Any] = {"type": ["string", "null"]}
_AMOUNT: dict[str, Any] = {"type": ["string", "number", "null"]}
_PARTS: dict[str, dict[str, Any]] = {
    "transactions": {
        "network": {"type": "string"},
        "hash": {"type": "string"},
        "at": {"type": "string"},
    },
    "wallet_addresses": {"network": {"type": "string"}, "address": {"type": "string"}},
}
_SHAPES: dict[str, dict[str, Any]] = {
    "amount": _AMOUNT,
    "account_value": _AMOUNT,
    "previous_escalations": {"type": ["integer", "null"]},
    "evidence": {"type": ["array", "null"], "items": {"type": "string"}},
    **{
        name: {
            "type": ["array", "null"],
            "items": {
                "type": "object",
                "properties": parts,
                "required": sorted(parts),
                "additionalProperties": False,
            },
        }
        for name, parts in _PARTS.items()
    },
}
CONTEXT_SCHEMA: dict[str, Any] = {
    "properties": {name: _SHAPES.get(name, _NULLABLE_TEXT) for name in FIELDS},
    "additionalProperties": False,
}
Context = Annotated[
    dict[str, Any],
    Field(
        description="Escalation context, each field checked by its format (EVM and Bitcoin "
        "hashes and addresses, EIP-55 checksums, amounts, times with their offset); every "
        "problem is named. Which fields an escalation needs depends on where it goes and "
        "on the case (GET /cases/{id} lists what the next level still needs).",
        max_length=40,
        json_schema_extra=CONTEXT_SCHEMA,
    ),
]


class OpenCaseRequest(Request):
    reference: Reference = Field(description="The helpdesk ticket (one case per ticket).")
    customer_id: Reference
    summary: Summary = Field(description="The issue, in the customer's terms.")
    plan: Plan
    priority: Severity = Severity.P3
    customer_email: Email | None = None
    contacts: int = Field(default=1, ge=1, le=10_000, description="Times the customer wrote.")
    disputed_amount: Amount | None = Field(default=None, description="In EUR.")
    csr: Amount | None = None
    usdt_amount: Amount | None = None
    flags: Flags = []
    crypto: bool = False
    context: Context = {}
    checklist: Checklist = []
    category: Label = Field(default="", description="What the issue is about (withdrawals).")
    component: Label = Field(default="", description="The part of the product (Ethereum).")


class UpdateCaseRequest(Request):
    summary: Summary | None = None
    plan: Plan | None = None
    priority: Severity | None = None
    customer_email: Email | None = None
    contacts: int | None = Field(default=None, ge=1, le=10_000)
    disputed_amount: Amount | None = None
    csr: Amount | None = None
    usdt_amount: Amount | None = None
    flags: Flags | None = Field(default=None, description="The whole set of flags.")
    crypto: bool | None = None
    context: Context | None = Field(default=None, description="Merged into the context.")
    checklist: Checklist | None = Field(default=None, description="The whole checklist.")
    expected_resolution_at: AwareDatetime | None = None
    category: Label | None = Field(default=None, description="Empty clears it.")
    component: Label | None = Field(default=None, description="Empty clears it.")


class ProgressRequest(Request):
    note: Text
    to_customer: bool = Field(
        default=False, description="The note is an answer the customer was sent."
    )


class EscalateRequest(Request):
    to: Level = Field(description="ceo from below the CIO becomes a CIO escalation.")
    reason: Summary = Field(description="Why escalating.")
    urgency: Urgency | None = Field(
        default=None, description="cannot_wait upgrades a can-wait route (give urgency_note)."
    )
    urgency_note: Summary | None = None
    override: Summary | None = Field(
        default=None,
        description="A manager's reason to escalate with context missing (on the timeline).",
    )


class DeescalateRequest(Request):
    to: Level
    why: Deescalation
    note: Summary


class DecisionRequest(Request):
    level: Literal["cio", "ceo"] = Field(description="Whose decision this is.")
    approved: bool
    note: Summary


class ResolveCaseRequest(Request):
    resolution: Summary


class ConfirmRequest(Request):
    pass


class LinkCaseRequest(Request):
    incident: IncidentId = Field(
        description="The open incident the case is part of, by its number (7 for INC-7), as "
        "in the API's paths. Its customer hears its latest customer update at once, then "
        "each later one and its resolution; a case linked elsewhere moves to this one."
    )


class UnlinkCaseRequest(Request):
    pass


class EscalationOut(BaseModel):
    number: int
    from_level: Level
    to_level: Level
    at: datetime
    by: str
    reason: str
    rule: str
    urgency: Urgency
    recommends_ceo: bool
    urgency_note: str | None
    gate_override: str | None
    confirmed_at: datetime | None
    confirmed_by: str | None


class ApprovalOut(BaseModel):
    level: Level
    by: str
    at: datetime
    approved: bool
    note: str


class LinkedIncidentOut(BaseModel):
    id: int
    ref: str = Field(description="INC-7")

    @classmethod
    def of(cls, incident_id: int | None) -> LinkedIncidentOut | None:
        return None if incident_id is None else cls(id=incident_id, ref=f"INC-{incident_id}")


class CaseOut(BaseModel):
    id: int
    ref: str
    reference: str
    customer_id: str
    customer_email: str | None
    summary: str
    plan: Plan
    priority: Severity
    status: CaseStatus
    level: Level
    level_entered_at: datetime | None
    opened_at: datetime
    opened_by: str
    contacts: int
    disputed_amount: str | None
    csr: str | None
    usdt_amount: str | None
    flags: list[Flag]
    crypto: bool
    context: dict[str, Any]
    checklist: list[ChecklistItem]
    escalations: list[EscalationOut]
    approvals: list[ApprovalOut]
    required_approvals: list[Level]
    approvals_missing: list[Level]
    first_response_at: datetime | None
    last_progress_at: datetime | None
    last_customer_update_at: datetime | None
    expected_resolution_at: datetime | None
    resolved_at: datetime | None
    resolution: str | None
    category: str
    component: str
    incident: LinkedIncidentOut | None = Field(description="The incident it is linked to.")
    linked_at: datetime | None
    pending_since: datetime | None = Field(
        description="Waiting for the customer's confirmation since (status pending)."
    )

    @classmethod
    def of(cls, case: Case) -> CaseOut:
        assert case.id is not None
        return cls(
            id=case.id,
            ref=case.ref,
            reference=case.reference,
            customer_id=case.customer_id,
            customer_email=case.customer_email,
            summary=case.summary,
            plan=case.plan,
            priority=case.priority,
            status=case.status,
            level=case.level,
            level_entered_at=case.level_entered_at,
            opened_at=case.opened_at,
            opened_by=case.opened_by,
            contacts=case.contacts,
            disputed_amount=_text(case.disputed_amount),
            csr=_text(case.csr),
            usdt_amount=_text(case.usdt_amount),
            flags=sorted(case.flags),
            crypto=case.crypto,
            context=dict(case.context),
            checklist=sorted(case.checklist),
            escalations=[EscalationOut(**vars(e)) for e in case.escalations],
            approvals=[ApprovalOut(**vars(a)) for a in case.approvals],
            required_approvals=list(case.required_approvals),
            approvals_missing=list(case.approvals_missing),
            first_response_at=case.first_response_at,
            last_progress_at=case.last_progress_at,
            last_customer_update_at=case.last_customer_update_at,
            expected_resolution_at=case.expected_resolution_at,
            resolved_at=case.resolved_at,
            resolution=case.resolution,
            category=case.category,
            component=case.component,
            incident=LinkedIncidentOut.of(case.incident_id),
            linked_at=case.linked_at,
            pending_since=case.pending_since,
        )


def _text(value: Decimal | None) -> str | None:
    return str(value) if value is not None else None


class SlaOut(BaseModel):
    state: SlaState = Field(description="met, ok, warning (75 % gone), breached, none")
    due: datetime | None = Field(description="When the current level must have answered.")
    used_percent: int


class RouteOut(BaseModel):
    level: Level
    mode: Mode
    urgency: Urgency
    explanation: str = Field(description="e.g. CIO because: legal threat")
    recommends_ceo: bool
    approvals: list[Level]


class UpcomingCaseStepOut(BaseModel):
    step_id: str
    description: str
    action: str
    target: str | None
    due_at: datetime
    state: Literal["pending", "running", "held"]

    @classmethod
    def of(cls, step: UpcomingCaseStep) -> UpcomingCaseStepOut:
        return cls(**vars(step))


class FieldProblemOut(BaseModel):
    field: str
    problem: str


class CaseDetail(BaseModel):
    case: CaseOut
    sla: SlaOut
    routes: list[RouteOut]
    upcoming: list[UpcomingCaseStepOut]
    next_level: Level | None = Field(description="Where the case would go next.")
    missing: list[FieldProblemOut] = Field(
        description="What escalating to the next level still needs."
    )
    timeline: list[TimelineEntryOut]
    notice: str | None = Field(
        default=None, description="Something the request did differently (a CEO request)."
    )

    @classmethod
    def of(cls, view: CaseView) -> CaseDetail:
        return cls(
            case=CaseOut.of(view.case),
            sla=SlaOut(
                state=view.sla.state, due=view.sla.due, used_percent=round(view.sla.used * 100)
            ),
            routes=[
                RouteOut(
                    level=r.level,
                    mode=r.mode,
                    urgency=r.urgency,
                    explanation=r.explain(),
                    recommends_ceo=r.recommends_ceo,
                    approvals=list(r.approvals),
                )
                for r in view.routes
            ],
            upcoming=[UpcomingCaseStepOut.of(u) for u in view.upcoming],
            next_level=view.next_level,
            missing=[FieldProblemOut(field=p.field, problem=p.problem) for p in view.missing],
            timeline=[TimelineEntryOut.of(e) for e in view.timeline],
            notice=view.notice,
        )


class CaseSummaryOut(BaseModel):
    case: CaseOut
    sla: SlaOut


class CaseList(BaseModel):
    cases: list[CaseSummaryOut]


class LinkedCaseOut(BaseModel):
    id: int
    ref: str
    reference: str = Field(description="The helpdesk ticket.")
    customer_id: str
    status: CaseStatus
    level: Level
    linked_at: datetime | None

    @classmethod
    def of(cls, case: LinkedCase) -> LinkedCaseOut:
        return cls(
            id=case.id,
            ref=case.ref,
            reference=case.reference,
            customer_id=case.customer_id,
            status=CaseStatus(case.status),
            level=Level(case.level),
            linked_at=case.linked_at,
        )


class LinkedCaseList(BaseModel):
    cases: list[LinkedCaseOut]
    customers: int = Field(description="How many distinct customers the linked cases are of.")

    @classmethod
    def of(cls, linked: LinkedCases) -> LinkedCaseList:
        return cls(cases=[LinkedCaseOut.of(c) for c in linked.cases], customers=linked.customers)
