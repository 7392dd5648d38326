"""Message templates: sandboxed Jinja, strict about undefined variables, loaded from comms/."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, TemplateNotFound
from jinja2.sandbox import SandboxedEnvironment

from incident.domain.incident import Status

SUFFIX = ".txt.j2"  # messages
DOCUMENT_SUFFIX = ".md.j2"  # documents (the timeline, the postmortem draft)
_USER_MENTION = re.compile(r"^<@[UW][A-Z0-9]{2,20}>$")
_MARKDOWN_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]<>|#"})


def format_instant(value: datetime | None) -> str:
    if value is None:
        return "not yet"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def chat_text(value: object) -> str:
    """A value people typed, made safe in chat text (Slack mrkdwn): `&`, `<` and `>`
    escaped, so it cannot become a channel ping or a link. A value that is exactly one
    user mention (a commander named from Slack: `<@U123>`) stays one."""
    text = str(value)
    if _USER_MENTION.match(text):
        return text
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def markdown_text(value: object) -> str:
    """A value people typed, as literal text in Markdown: its `*`, `_`, `|`, `<` ... are
    escaped, so it cannot become emphasis, a link, HTML or a table cell of its own."""
    return str(value).translate(_MARKDOWN_SPECIAL)


def format_span(value: timedelta | None) -> str:
    if value is None:
        return "not yet"
    minutes = int(value.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


class TemplateProblem(Exception):
    """A template is missing or cannot render; the message names the template and the cause."""


class JinjaRenderer:
    """The `Renderer` port: `render("customer_holding_update", context)`. Messages are
    `<name>.txt.j2`; with `suffix=DOCUMENT_SUFFIX`, documents `<name>.md.j2`."""

    def __init__(self, directory: Path, *, suffix: str = SUFFIX) -> None:
        self.directory = directory
        self.suffix = suffix
        self._env = SandboxedEnvironment(
            loader=FileSystemLoader(directory),
            undefined=StrictUndefined,
            autoescape=False,
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.filters["when"] = format_instant
        self._env.filters["span"] = format_span
        self._env.filters["chat"] = chat_text
        self._env.filters["md"] = markdown_text

    def names(self) -> list[str]:
        found = self.directory.glob(f"*{self.suffix}")
        return sorted(p.name.removesuffix(self.suffix) for p in found)

    def exists(self, name: str) -> bool:
        return (self.directory / f"{name}{self.suffix}").is_file()

    def render(self, template: str, context: Mapping[str, Any]) -> str:
        name = f"{template}{self.suffix}"
        try:
            return self._env.get_template(name).render(context).strip()
        except TemplateNotFound:
            raise TemplateProblem(f"{self.directory / name}: no such template") from None
        except TemplateError as error:
            raise TemplateProblem(f"{name}: {error}") from None


def sample_context(
    *, status: Status = Status.INVESTIGATING, sparse: bool = False
) -> dict[str, Any]:
    """Realistic data for rendering every template in `incident comms check` and tests.

    `sparse` leaves out everything that may be missing early in an incident (no
    commander, no war room, no updates or notes yet), which templates must also handle.
    """
    context = _full_sample(status)
    if sparse:
        context["incident"].update(
            commander=None,
            comms_lead=None,
            acknowledged_at=None,
            acknowledged_by=None,
            war_room=None,
            conference_url=None,
            impact="",
            service="",
            cancel_note=None,
            merged_into=None,
            reopened_at=None,
            resolution_summary=None,
        )
        context["public"] = {"title": "Service disruption", "affected": "", "components": []}
        context.update(
            updates=[],
            update=None,
            notes=[],
            audience=None,
            deadline=None,
            next_update_due=None,
            upcoming=[],
            follow_up=None,
        )
        context["links"].update(runbook=None, conference=None, merged_into=None)
    return context


def _full_sample(status: Status) -> dict[str, Any]:
    declared = datetime(2026, 3, 14, 9, 2, tzinfo=UTC)
    resolved = status in (Status.RESOLVED, Status.CLOSED)
    cancelled = status is Status.CANCELLED
    now = declared + (timedelta(hours=5) if resolved else timedelta(hours=4, minutes=1))
    return {
        "incident": {
            "id": 42,
            "ref": "INC-42",
            "title": "Checkout API returning errors",
            "severity": "P1",
            "status": status.value,
            "service": "checkout-api",
            "category": "general",
            "impact": "Most customers cannot complete a purchase; card payments fail.",
            "declared_at": declared,
            "declared_by": "alertmanager",
            "acknowledged_at": declared + timedelta(minutes=3),
            "acknowledged_by": "dana",
            "commander": "dana",
            "comms_lead": "lee",
            "resolved_at": declared + timedelta(hours=5) if resolved else None,
            "resolution_summary": (
                "A bad configuration push exhausted the payment gateway's connection pool; "
                "rolled back and pool limits raised."
                if resolved
                else None
            ),
            "rca_due_at": declared + timedelta(hours=53) if resolved else None,
            "rca_link": "https://docs.example.com/rca/inc-42" if status is Status.CLOSED else None,
            "cancelled_at": declared + timedelta(minutes=20) if cancelled else None,
            "cancellation": "a duplicate" if cancelled else None,
            "cancel_note": "duplicate of INC-41" if cancelled else None,
            "merged_into": "INC-41" if cancelled else None,
            "reopened_at": declared + timedelta(hours=2) if not resolved else None,
            "war_room": "inc-42-checkout-api-returning-errors",
            "conference_url": "https://meet.example.com/inc-42",
            "age": now - declared,
        },
        "step": {
            "id": "escalate-vp-clevel",
            "action": "escalate",
            "target": "vp-clevel",
            "description": "Still unresolved after 4 hours; escalate to VP / C-level.",
            "runbook": "http://127.0.0.1:8080/runbooks/escalation.md",
        },
        "public": {
            "title": "Outage affecting Checkout",
            "affected": "Checkout",
            "components": ["Checkout"],
        },
        "occurrence": 1,
        "now": now,
        "audience": {"name": "vp-clevel", "description": "VP and C-level escalation"},
        "update": {
            "at": declared + timedelta(minutes=40),
            "status": "identified",
            "message": "We have found the cause and are rolling back a configuration change.",
        },
        "updates": [
            {
                "at": declared + timedelta(minutes=40),
                "status": "identified",
                "message": "We have found the cause and are rolling back a configuration change.",
            },
            {
                "at": declared + timedelta(minutes=10),
                "status": "investigating",
                "message": "Some customers cannot check out. We are investigating.",
            },
        ],
        "notes": [
            {
                "at": declared + timedelta(minutes=35),
                "actor": "sam",
                "text": "Rolled back deploy 1432; error rate unchanged.",
            },
            {
                "at": declared + timedelta(minutes=20),
                "actor": "dana",
                "text": "Restarted checkout pods; no effect.",
            },
        ],
        "next_update_due": now + timedelta(minutes=30),
        "deadline": declared + timedelta(hours=53) if resolved else None,
        "upcoming": [
            {
                "step": "customer-update",
                "description": "Customers hear from us every 30 minutes.",
                "action": "customer_holding_update",
                "target": None,
                "due_at": now + timedelta(minutes=30),
                "needs_approval": False,
            },
            {
                "step": "escalate-vp-clevel",
                "description": "Still unresolved after 4 hours; escalate to VP / C-level.",
                "action": "escalate",
                "target": "vp-clevel",
                "due_at": declared + timedelta(hours=4),
                "needs_approval": False,
            },
        ],
        "follow_up": {
            "ref": "FU-7",
            "title": "Add a connection-pool alert to the payment gateway",
            "owner": "sam@example.com",
            "due_at": now + timedelta(days=6),
            "overdue": False,
            "destinations": ["chat:war-room", "email:sam@example.com"],
        },
        "links": {
            "incident": "http://127.0.0.1:8080/ui/incidents/42",
            "status_page": "http://127.0.0.1:8080/status",
            "runbook": "http://127.0.0.1:8080/runbooks/escalation.md",
            "conference": "https://meet.example.com/inc-42",
            "merged_into": "http://127.0.0.1:8080/ui/incidents/41" if cancelled else None,
        },
    }


def sample_document_context(*, sparse: bool = False) -> dict[str, Any]:
    """Realistic facts for rendering every document template (`incident comms check`);
    `sparse`: an incident declared a minute ago, with nothing recorded yet."""
    from incident.domain.follow_ups import FollowUp
    from incident.domain.incident import Incident, Severity
    from incident.domain.records import Occurrence, OccurrenceState, SubjectRef, TimelineEntry
    from incident.services.exports import document_context

    declared = datetime(2026, 3, 14, 9, 2, tzinfo=UTC)
    incident = Incident(
        id=42,
        title="Checkout API returning errors | 502 *everywhere*",
        severity=Severity.P1,
        declared_at=declared,
        declared_by="alertmanager",
    )
    if sparse:
        return document_context(
            incident, timeline=[], history=[], follow_ups=[], now=declared + timedelta(minutes=1)
        )
    minutes = [3, 12, 40, 95]
    incident.acknowledged_at, incident.acknowledged_by = declared + timedelta(minutes=3), "dana"
    incident.commander, incident.service = "dana", "checkout-api"
    incident.impact = "Most customers could not pay.\nCard payments failed."
    incident.status = Status.RESOLVED
    incident.resolved_at = declared + timedelta(minutes=95)
    incident.resolution_summary = "Rolled back the configuration push; pool limits raised."
    incident.rca_due_at = incident.resolved_at + timedelta(hours=48)
    timeline = [
        TimelineEntry(at=declared, kind="declared", actor="alertmanager", text="P1 declared"),
        TimelineEntry(
            at=declared + timedelta(minutes=minutes[0]),
            kind="acknowledged",
            actor="dana",
            text="acknowledged by dana",
        ),
        TimelineEntry(
            at=declared + timedelta(minutes=minutes[1]),
            kind="internal_note",
            actor="sam",
            text="Restarted pods;\nno effect.",
        ),
        TimelineEntry(
            at=declared + timedelta(minutes=minutes[2]),
            kind="customer_update",
            actor="dana",
            text="We found the cause and are rolling back.",
            public=True,
        ),
        TimelineEntry(
            at=declared + timedelta(minutes=minutes[3]),
            kind="resolved",
            actor="dana",
            text="Rolled back.",
        ),
    ]
    ran = Occurrence(
        id=1,
        subject=SubjectRef.incident(42),
        step_id="customer-notification",
        occurrence=1,
        action="customer_notification",
        target=None,
        due_at=declared + timedelta(minutes=10),
        run_at=declared + timedelta(minutes=10),
        state=OccurrenceState.DONE,
        attempts=1,
        started_at=declared + timedelta(minutes=14),
    )
    failed = Occurrence(
        id=2,
        subject=SubjectRef.incident(42),
        step_id="status-page-investigating",
        occurrence=1,
        action="status_page",
        target=None,
        due_at=declared,
        run_at=declared,
        state=OccurrenceState.FAILED,
        attempts=10,
        started_at=declared,
        last_error="Statuspage: 503 Service Unavailable",
    )
    item = FollowUp(
        id=7,
        incident_id=42,
        title="Alert on pool exhaustion",
        owner="sam@example.com",
        due_at=declared + timedelta(days=7),
        created_at=declared + timedelta(days=1),
        created_by="dana",
    )
    return document_context(
        incident,
        timeline=timeline,
        history=[ran, failed],
        follow_ups=[item],
        now=declared + timedelta(days=1),
    )
