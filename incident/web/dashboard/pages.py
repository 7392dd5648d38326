"""What the dashboard's pages show: incidents as the commander sees them, what the person
looking may do to each, and the HTML rendered from them.

What a person may do is asked of the domain's `authorize` (the rule the API and Slack
apply), so a button is shown exactly when pressing it would be allowed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from incident.domain.access import (
    Action,
    Principal,
    assign_action,
    authorize,
    severity_action,
)
from incident.domain.errors import Forbidden
from incident.domain.incident import OPEN_STATUSES, Incident, Role, Severity, Status
from incident.domain.status_page import Catalog, ComponentStatus
from incident.services.incidents import IncidentView, UpcomingStep
from incident.web.html import STATIC_DIR, duration, environment

SEVERITY_NAMES = {
    Severity.P1: "Critical",
    Severity.P2: "High",
    Severity.P3: "Medium",
    Severity.P4: "Low",
}
# How often an open page asks whether anything changed (dashboard.js).
REFRESH_SECONDS = 5
# The overview shows the next few steps of each incident; its page shows them all.
NEXT_STEPS_SHOWN = 3
SNOOZE_CHOICES = ((15, "15 minutes"), (30, "30 minutes"), (60, "1 hour"), (240, "4 hours"))


def _may(principal: Principal, action: Action, incident: Incident) -> bool:
    try:
        authorize(principal, action, incident)
    except Forbidden:
        return False
    return True


@dataclass(frozen=True)
class Permissions:
    """Which of the dashboard's buttons and forms to show on one incident."""

    acknowledge: bool
    take_command: bool
    assign_roles: bool
    post_update: bool
    add_note: bool
    change_status: bool
    severities: tuple[Severity, ...]  # the severities this person may change it to
    resolve: bool
    complete_rca: bool
    manage_steps: bool

    @classmethod
    def of(cls, principal: Principal, incident: Incident) -> Permissions:
        def may(action: Action) -> bool:
            return _may(principal, action, incident)

        is_open = incident.is_open
        not_closed = incident.status is not Status.CLOSED
        command = assign_action(incident, principal, Role.COMMANDER, principal.name)
        return cls(
            acknowledge=is_open and incident.acknowledged_at is None and may(Action.ACKNOWLEDGE),
            take_command=not_closed and incident.commander != principal.name and may(command),
            assign_roles=not_closed and may(Action.ASSIGN_ROLE),
            post_update=is_open and may(Action.POST_UPDATE),
            add_note=not_closed and may(Action.POST_UPDATE),
            change_status=is_open and may(Action.POST_UPDATE),
            severities=tuple(
                s
                for s in Severity
                if is_open and s != incident.severity and may(severity_action(incident, s))
            ),
            resolve=is_open and may(Action.RESOLVE),
            complete_rca=incident.status is Status.RESOLVED and may(Action.COMPLETE_RCA),
            manage_steps=not_closed and may(Action.MANAGE_STEPS),
        )

    @property
    def any_change(self) -> bool:
        return any(
            (
                self.acknowledge,
                self.take_command,
                self.assign_roles,
                self.post_update,
                self.add_note,
                self.change_status,
                self.severities,
                self.resolve,
                self.complete_rca,
            )
        )


@dataclass(frozen=True)
class Card:
    """An open incident on the overview."""

    incident: Incident
    next_steps: list[UpcomingStep]
    can: Permissions


@dataclass(frozen=True)
class SeverityGroup:
    severity: Severity
    name: str
    cards: list[Card]


def overview_groups(principal: Principal, views: Sequence[IncidentView]) -> list[SeverityGroup]:
    """Open incidents by severity, P1 first; in each, the unacknowledged first, then the
    longest-running."""
    groups = []
    for severity in sorted(Severity, key=lambda s: s.rank):
        cards = [
            Card(
                incident=v.incident,
                next_steps=v.upcoming[:NEXT_STEPS_SHOWN],
                can=Permissions.of(principal, v.incident),
            )
            for v in views
            if v.incident.severity is severity and v.incident.is_open
        ]
        cards.sort(key=lambda c: (c.incident.acknowledged_at is not None, c.incident.declared_at))
        if cards:
            groups.append(SeverityGroup(severity, SEVERITY_NAMES[severity], cards))
    return groups


def fingerprint(*parts: object) -> str:
    """An ETag for what a page shows, apart from the time-dependent text that the page's
    script keeps current itself (ages and countdowns): the same facts, the same tag."""
    digest = hashlib.sha256(repr(parts).encode()).hexdigest()[:32]
    return f'"{digest}"'


def countdown(due_at: datetime, now: datetime) -> str:
    """The text dashboard.js rewrites every second; the same words without script."""
    left = due_at - now
    if left <= timedelta(0):
        return "due now"
    return f"in {duration(left)}"


@dataclass(frozen=True)
class Draft:
    """What someone typed into a form that was refused: shown again, not lost."""

    form: str = ""
    values: Mapping[str, str] = field(default_factory=dict)

    def value(self, form: str, name: str) -> str:
        return self.values.get(name, "") if form == self.form else ""


@cache
def asset_version() -> str:
    """Part of the static files' URLs, so a browser fetches them again after an upgrade."""
    digest = hashlib.sha256()
    for name in ("dashboard.css", "dashboard.js"):
        digest.update((STATIC_DIR / name).read_bytes())
    return digest.hexdigest()[:12]


def render(template: str, **context: Any) -> str:
    defaults: dict[str, Any] = {
        "asset_version": asset_version(),
        "refresh_seconds": REFRESH_SECONDS,
        # Pages that keep themselves current name the URL to re-fetch and its ETag.
        "refresh_url": "",
        "etag": "",
        "severity_names": SEVERITY_NAMES,
        "countdown": countdown,
        "open_statuses": OPEN_STATUSES,
        "component_statuses": list(ComponentStatus),
        "snooze_choices": SNOOZE_CHOICES,
    }
    return environment().get_template(f"dashboard/{template}").render({**defaults, **context})


def component_rows(catalog: Catalog, incident: Incident) -> list[tuple[str, str, str]]:
    """(id, name, current status label or "") for the update form's component choices."""
    return [
        (
            c.id,
            c.name,
            incident.components[c.id].label if c.id in incident.components else "",
        )
        for c in catalog.components
    ]
