"""The REST API's JSON shapes: what requests must look like and what responses are.

One set of pydantic models serves three purposes: validating request bodies, writing
responses, and the OpenAPI document, so the document cannot drift from the server.
Requests are strict (no unknown fields, no type coercion); vendor-style leniency belongs
to the webhooks, not to our own API.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from incident.domain import text as rules
from incident.domain.access import AccessRole, Principal
from incident.domain.follow_ups import FollowUp
from incident.domain.incident import Category, Incident, Role, Severity, Status
from incident.domain.records import TimelineEntry
from incident.domain.status_page import ComponentStatus, Maintenance, MaintenanceStatus
from incident.services.incidents import IncidentView, UpcomingStep
from incident.services.ports import KeptMessage

# Text people write: the domain's one rule for text (incident/domain/text.py), so the API,
# Slack, the webhooks and the dashboard accept the same.
_PRINTABLE = rules.TEXT_PATTERN
_ONE_LINE = rules.LINE_PATTERN
Text = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=5000, pattern=rules.FILLED_TEXT_PATTERN
    ),
]
Short = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=200, pattern=rules.FILLED_LINE_PATTERN
    ),
]
OptionalShort = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=200, pattern=_ONE_LINE)
]
OpenStatus = Literal["investigating", "identified", "monitoring"]
COMPONENT_ID = r"^[a-z0-9][a-z0-9_-]{0,62}$"
ComponentId = Annotated[str, StringConstraints(pattern=COMPONENT_ID)]
ComponentStatuses = Annotated[
    dict[ComponentId, ComponentStatus],
    Field(
        description="Component id (from the page's configuration) -> its status while "
        "this incident lasts. Shown on the public status page.",
        max_length=100,
        # Keys the pattern refuses are refused, not ignored (the OpenAPI document also
        # names the configured components: openapi.py).
        json_schema_extra={"additionalProperties": False},
    ),
]


def _whole_number(value: Any) -> Any:
    """JSON has one kind of number: 30.0 is the integer 30 (as JSON Schema says), 30.5 is
    not an integer at all."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


# An incident named in a body (the one merged into, the one a case is linked to): its
# number, as in the paths (`INC-7` is how people write it; each door reads that form itself).
IncidentId = Annotated[int, Field(ge=1, le=2**53), BeforeValidator(_whole_number)]


class Request(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class DeclareRequest(Request):
    title: Short = Field(description="What is wrong, in a line.")
    severity: Severity
    service: OptionalShort = ""
    impact: Annotated[
        str, StringConstraints(strip_whitespace=True, max_length=5000, pattern=_PRINTABLE)
    ] = Field(default="", description="Who is affected and how.")
    category: Category = Category.GENERAL
    components: ComponentStatuses = {}
    public_title: Short | None = Field(
        default=None,
        description="The name customers see on the status page. The title stays internal; "
        "without a public title the page names the affected components.",
    )


class AcknowledgeRequest(Request):
    pass


class CustomerUpdateRequest(Request):
    message: Text = Field(description="Customer-facing text (status page, customer updates).")
    status: OpenStatus | None = Field(
        default=None, description="Move the incident to this status with the update."
    )
    components: ComponentStatuses = {}


class StatusRequest(Request):
    status: OpenStatus = Field(
        description="Move the incident to this status; no customer update is posted "
        "(post one with a status to do both)."
    )


class ComponentsRequest(Request):
    components: Annotated[ComponentStatuses, Field(min_length=1)]


class PublicTitleRequest(Request):
    public_title: Short = Field(description="The name customers see on the status page.")


class MaintenanceRequest(Request):
    name: Short = Field(description="What customers see, e.g. 'Database upgrade'.")
    message: Text = Field(description="What will happen and what customers will notice.")
    scheduled_for: AwareDatetime
    scheduled_until: AwareDatetime
    components: list[ComponentId] = Field(default=[], max_length=100)


class MaintenanceUpdateRequest(Request):
    message: Text
    status: Literal["in_progress", "verifying", "completed"] | None = Field(
        default=None,
        description="in_progress starts the window now if it has not begun; completed ends it.",
    )


class NoteRequest(Request):
    text: Text = Field(description="Internal note: never shown to customers.")


class SeverityRequest(Request):
    severity: Severity
    reason: Annotated[
        str, StringConstraints(strip_whitespace=True, max_length=1000, pattern=_PRINTABLE)
    ] = ""


class RoleRequest(Request):
    role: Role
    person: Short


class ResolveRequest(Request):
    summary: Text = Field(description="What was wrong and what fixed it.")


class RcaRequest(Request):
    link: Annotated[
        str,
        StringConstraints(
            strip_whitespace=True, min_length=1, max_length=2000, pattern=rules.LINK_PATTERN
        ),
    ] = Field(description="Where the RCA document is: an http:// or https:// link.")


class EditRequest(Request):
    """Only the fields given change; at least one must."""

    title: Short | None = Field(default=None, description="What is wrong, in a line.")
    impact: (
        Annotated[
            str, StringConstraints(strip_whitespace=True, max_length=5000, pattern=_PRINTABLE)
        ]
        | None
    ) = Field(default=None, description="Who is affected and how.")
    service: OptionalShort | None = None
    category: Category | None = Field(
        default=None,
        description="A new category re-routes the incident (security brings the security "
        "team's steps and holds automatic customer texts for approval).",
    )


class CancelRequest(Request):
    reason: Literal["false_alarm", "declined"] = Field(
        description="false_alarm: nothing was wrong; declined: real, but not an incident. "
        "(Duplicates are merged: POST .../merge.)"
    )
    note: Annotated[
        str, StringConstraints(strip_whitespace=True, max_length=5000, pattern=_PRINTABLE)
    ] = Field(default="", description="Why, for the timeline.")


class ReopenRequest(Request):
    reason: Text = Field(description="Why it is reopened, for the timeline.")
    status: OpenStatus = "investigating"


class MergeRequest(Request):
    into: IncidentId = Field(
        description="The incident this one duplicates; it takes over this one's components "
        "and alert groups."
    )


class ApproveRequest(Request):
    pass


class FollowUpRequest(Request):
    title: Short = Field(description="What is to be done, in a line.")
    owner: Short = Field(description="Who owns it: a name, an @handle or an e-mail address.")
    due_at: AwareDatetime = Field(description="When it is due (within a year).")


class FollowUpDoneRequest(Request):
    pass


class SkipRequest(Request):
    reason: Text


class SnoozeRequest(Request):
    reason: Text
    minutes: Annotated[int, Field(ge=1, le=7 * 24 * 60), BeforeValidator(_whole_number)] = Field(
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
    cancelled_at: datetime | None
    cancellation: Literal["false_alarm", "declined", "duplicate"] | None
    cancel_note: str | None
    merged_into: int | None
    reopened_at: datetime | None
    war_room: str | None
    conference_url: str | None
    public_title: str | None
    components: dict[str, ComponentStatus]

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
            cancelled_at=incident.cancelled_at,
            cancellation=incident.cancellation.value if incident.cancellation else None,
            cancel_note=incident.cancel_note,
            merged_into=incident.merged_into,
            reopened_at=incident.reopened_at,
            war_room=incident.war_room,
            conference_url=incident.conference_url,
            public_title=incident.public_title,
            components=dict(incident.components),
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
    state: Literal["pending", "running", "held"] = Field(
        description="held: due, and waiting for the commander's approval (POST .../approve)"
    )
    attempts: int
    last_error: str | None
    needs_approval: bool = Field(
        description="Will wait for the commander's approval when due (approve it ahead)."
    )
    approved_by: str | None

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
            state="held"
            if step.state == "held"
            else ("running" if step.state == "running" else "pending"),
            attempts=step.attempts,
            last_error=step.last_error,
            needs_approval=step.needs_approval,
            approved_by=step.approved_by,
        )


class FollowUpOut(BaseModel):
    id: int
    ref: str
    incident_id: int
    title: str
    owner: str
    due_at: datetime
    created_at: datetime
    created_by: str
    done_at: datetime | None
    done_by: str | None

    @classmethod
    def of(cls, item: FollowUp) -> FollowUpOut:
        assert item.id is not None
        return cls(
            id=item.id,
            ref=item.ref,
            incident_id=item.incident_id,
            title=item.title,
            owner=item.owner,
            due_at=item.due_at,
            created_at=item.created_at,
            created_by=item.created_by,
            done_at=item.done_at,
            done_by=item.done_by,
        )


class FollowUpList(BaseModel):
    follow_ups: list[FollowUpOut]


class IncidentDetail(BaseModel):
    incident: IncidentOut
    upcoming: list[UpcomingStepOut]
    timeline: list[TimelineEntryOut]
    follow_ups: list[FollowUpOut]

    @classmethod
    def of(cls, view: IncidentView) -> IncidentDetail:
        return cls(
            incident=IncidentOut.of(view.incident),
            upcoming=[UpcomingStepOut.of(s) for s in view.upcoming],
            timeline=[TimelineEntryOut.of(e) for e in view.timeline],
            follow_ups=[FollowUpOut.of(f) for f in view.follow_ups],
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


class MaintenanceUpdateOut(BaseModel):
    at: datetime
    status: MaintenanceStatus
    body: str


class MaintenanceOut(BaseModel):
    id: int
    name: str
    status: MaintenanceStatus = Field(description="As of now: it follows the clock.")
    scheduled_for: datetime
    scheduled_until: datetime
    components: list[str]
    created_at: datetime
    created_by: str
    updates: list[MaintenanceUpdateOut]

    @classmethod
    def of(cls, window: Maintenance, now: datetime) -> MaintenanceOut:
        assert window.id is not None
        return cls(
            id=window.id,
            name=window.name,
            status=window.status_at(now),
            scheduled_for=window.scheduled_for,
            scheduled_until=window.scheduled_until,
            components=list(window.components),
            created_at=window.created_at,
            created_by=window.created_by,
            updates=[
                MaintenanceUpdateOut(at=u.at, status=u.status, body=u.body) for u in window.updates
            ],
        )


class MaintenanceList(BaseModel):
    maintenances: list[MaintenanceOut]


class Timeline(BaseModel):
    timeline: list[TimelineEntryOut] = Field(description="Oldest first.")


class OutboxMessageOut(BaseModel):
    idempotency_key: str
    incident_id: int
    created_at: datetime
    channel: str = Field(description="page, chat, email, status_page or customers.")
    destination: str
    subject: str
    body: str

    @classmethod
    def of(cls, message: KeptMessage) -> OutboxMessageOut:
        return cls(
            idempotency_key=message.idempotency_key,
            incident_id=message.incident_id,
            created_at=message.created_at,
            channel=message.channel,
            destination=message.destination,
            subject=message.subject,
            body=message.body,
        )


class OutboxList(BaseModel):
    messages: list[OutboxMessageOut] = Field(description="Oldest first.")
    more: bool = Field(description="Older messages were left out: raise limit to see them.")


class Caller(BaseModel):
    """Who the bearer token acts as: the name on the timeline, and the role."""

    name: str
    role: AccessRole

    @classmethod
    def of(cls, principal: Principal) -> Caller:
        return cls(name=principal.name, role=principal.role)
