"""Message templates: sandboxed Jinja, strict about undefined variables, loaded from comms/."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, TemplateNotFound
from jinja2.sandbox import SandboxedEnvironment

from incident.domain.incident import Status

SUFFIX = ".txt.j2"


def format_instant(value: datetime | None) -> str:
    if value is None:
        return "not yet"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def chat_text(value: object) -> str:
    """A value people typed, made safe in chat text (Slack mrkdwn): `&`, `<` and `>`
    escaped, so it cannot become a mention, a channel ping or a link."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def format_span(value: timedelta) -> str:
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
    """The `Renderer` port: `render("customer_holding_update", context)`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
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

    def names(self) -> list[str]:
        return sorted(p.name.removesuffix(SUFFIX) for p in self.directory.glob(f"*{SUFFIX}"))

    def exists(self, name: str) -> bool:
        return (self.directory / f"{name}{SUFFIX}").is_file()

    def render(self, template: str, context: Mapping[str, Any]) -> str:
        try:
            return self._env.get_template(f"{template}{SUFFIX}").render(context).strip()
        except TemplateNotFound:
            raise TemplateProblem(
                f"{self.directory / (template + SUFFIX)}: no such template"
            ) from None
        except TemplateError as error:
            raise TemplateProblem(f"{template}{SUFFIX}: {error}") from None


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
