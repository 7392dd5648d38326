"""The REST API's JSON shapes: what requests must look like and what responses are.

One set of pydantic models serves three purposes: validating request bodies, writing
responses, and the OpenAPI document, so the document cannot drift from the server.
Requests are strict (no unknown fields, no type coercion); vendor-style leniency belongs
to the webhooks, not to our own API.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from incident.domain.incident import Category, Incident, Role, Severity, Status
from incident.domain.records import TimelineEntry
from incident.services.incidents import IncidentView, UpcomingStep

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)]
Short = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
OptionalShort = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
OpenStatus = Literal["investigating", "identified", "monitoring"]


class Request(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class DeclareRequest(Request):
    title: Short = Field(description="What is wrong, in a line.")
    severity: Severity
    service: OptionalShort = ""
    impact: Annotated[str, StringConstraints(strip_whitespace=True, max_length=5000)] = Field(
        default="", description="Who is affected and how."
    )
    category: Category = Category.GENERAL


class AcknowledgeRequest(Request):
    pass


class CustomerUpdateRequest(Request):
    message: Text = Field(description="Customer-facing text (status page, customer updates).")
    status: OpenStatus | None = Field(
        default=None, description="Move the incident to this status with the update."
    )


class NoteRequest(Request):
    text: Text = Field(description="Internal note: never shown to customers.")


class SeverityRequest(Request):
    severity: Severity
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)] = ""


class RoleRequest(Request):
    role: Role
    person: Short


class ResolveRequest(Request):
    summary: Text = Field(description="What was wrong and what fixed it.")


class RcaRequest(Request):
    link: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=2000, pattern=r"^\S+$"),
    ] = Field(description="Where the RCA document is.")


class SkipRequest(Request):
    reason: Text


class SnoozeRequest(Request):
    reason: Text
    minutes: Annotated[int, Field(ge=1, le=7 * 24 * 60)] = Field(
        description="Postpone the step by this many minutes (from its due time, or from now "
        "when already due)."
    )


# --- responses -----------------------------------------------------------------------------


class Error(BaseModel):
    error: str
    detail: Any = Field(description="A sentence, or a list of {field, problem}.")


class IncidentOut(BaseModel):
    id: int
    ref: str
    title: str
    severity: Severity
    status: Status
    category: Category
    service: str
    impact: str
    declared_at: datetime
    declared_by: str
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    commander: str | None
    comms_lead: str | None
    last_customer_update_at: datetime | None
    resolved_at: datetime | None
    resolution_summary: str | None
    rca_due_at: datetime | None
    rca_link: str | None
    closed_at: datetime | None
    war_room: str | None
    conference_url: str | None

    @classmethod
    def of(cls, incident: Incident) -> IncidentOut:
        assert incident.id is not None
        return cls(
            id=incident.id,
            ref=incident.ref,
            title=incident.title,
            severity=incident.severity,
            status=incident.status,
            category=incident.category,
            service=incident.service,
            impact=incident.impact,
            declared_at=incident.declared_at,
            declared_by=incident.declared_by,
            acknowledged_at=incident.acknowledged_at,
            acknowledged_by=incident.acknowledged_by,
            commander=incident.commander,
            comms_lead=incident.comms_lead,
            last_customer_update_at=incident.last_customer_update_at,
            resolved_at=incident.resolved_at,
            resolution_summary=incident.resolution_summary,
            rca_due_at=incident.rca_due_at,
            rca_link=incident.rca_link,
            closed_at=incident.closed_at,
            war_room=incident.war_room,
            conference_url=incident.conference_url,
        )


class TimelineEntryOut(BaseModel):
    at: datetime
    kind: str
    actor: str
    text: str
    public: bool
    step_id: str | None
    occurrence: int | None

    @classmethod
    def of(cls, entry: TimelineEntry) -> TimelineEntryOut:
        return cls(
            at=entry.at,
            kind=entry.kind,
            actor=entry.actor,
            text=entry.text,
            public=entry.public,
            step_id=entry.step_id,
            occurrence=entry.occurrence,
        )


class UpcomingStepOut(BaseModel):
    step_id: str
    occurrence: int
    action: str
    target: str | None
    description: str
    due_at: datetime = Field(description="When the playbook says the step is due.")
    runs_at: datetime = Field(description="When it will run (later if snoozed or retrying).")
    state: Literal["pending", "running"]
    attempts: int
    last_error: str | None

    @classmethod
    def of(cls, step: UpcomingStep) -> UpcomingStepOut:
        return cls(
            step_id=step.step_id,
            occurrence=step.occurrence,
            action=step.action,
            target=step.target,
            description=step.description,
            due_at=step.due_at,
            runs_at=step.run_at,
            state="running" if step.state == "running" else "pending",
            attempts=step.attempts,
            last_error=step.last_error,
        )


class IncidentDetail(BaseModel):
    incident: IncidentOut
    upcoming: list[UpcomingStepOut]
    timeline: list[TimelineEntryOut]

    @classmethod
    def of(cls, view: IncidentView) -> IncidentDetail:
        return cls(
            incident=IncidentOut.of(view.incident),
            upcoming=[UpcomingStepOut.of(s) for s in view.upcoming],
            timeline=[TimelineEntryOut.of(e) for e in view.timeline],
        )


class IncidentList(BaseModel):
    incidents: list[IncidentOut]


class IncidentChanged(BaseModel):
    """The incident after a change, and what its playbook will do next."""

    incident: IncidentOut
    upcoming: list[UpcomingStepOut]


class Declared(IncidentChanged):
    created: bool = Field(
        description="False when an earlier request with the same "
        "Idempotency-Key already declared it."
    )
