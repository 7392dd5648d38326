"""What the dashboard's pages show: incidents as the commander sees them, what the person
looking may do to each, and the HTML rendered from them.

What a person may do is asked of the domain's `authorize` (the rule the API and Slack
apply), so a button is shown exactly when pressing it would be allowed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any
from urllib.parse import urlencode

from incident.domain.access import (
    Action,
    Principal,
    assign_action,
    authorize,
    severity_action,
)
from incident.domain.errors import Forbidden, InvalidValue
from incident.domain.incident import (
    OPEN_STATUSES,
    Cancellation,
    Category,
    Incident,
    Role,
    Severity,
    Status,
)
from incident.domain.status_page import Catalog, ComponentStatus
from incident.services.incidents import IncidentView, UpcomingStep
from incident.services.views import Overview
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


# Past incidents, as the history page lists them: newest first, this many a page.
PAST_STATUSES = (Status.RESOLVED, Status.CLOSED, Status.CANCELLED)
HISTORY_PAGE_SIZE = 50
MAX_HISTORY_PAGE = 10_000
MAX_SEARCH = 200
# How the cancel form names its reasons (merging is a form of its own).
CANCEL_REASONS = (
    (Cancellation.FALSE_ALARM, "False alarm: nothing was wrong"),
    (Cancellation.DECLINED, "Declined: real, but not an incident"),
)


def may_declare(principal: Principal) -> bool:
    try:
        authorize(principal, Action.DECLARE)
    except Forbidden:
        return False
    return True


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
    approve_steps: bool
    edit: bool
    cancel: bool
    reopen: bool
    merge: bool
    add_follow_ups: bool
    complete_follow_ups: bool

    @classmethod
    def of(cls, principal: Principal, incident: Incident) -> Permissions:
        def may(action: Action) -> bool:
            return _may(principal, action, incident)

        is_open = incident.is_open
        not_closed = incident.status is not Status.CLOSED
        cancelled = incident.status is Status.CANCELLED
        # Roles of a closed or cancelled incident can no longer change.
        roles_open = not_closed and not cancelled
        command = assign_action(incident, principal.name, Role.COMMANDER, principal.name)
        return cls(
            acknowledge=is_open and incident.acknowledged_at is None and may(Action.ACKNOWLEDGE),
            take_command=roles_open and incident.commander != principal.name and may(command),
            assign_roles=roles_open and may(Action.ASSIGN_ROLE),
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
            # A resolved security incident's resolution notice is held for approval too.
            approve_steps=may(Action.APPROVE_STEPS),
            edit=not cancelled and may(Action.EDIT),
            cancel=is_open and may(Action.CANCEL),
            reopen=incident.status is Status.RESOLVED and may(Action.REOPEN),
            # Commander rights on the incident merged into are checked when it is named.
            merge=is_open and may(Action.MERGE),
            add_follow_ups=not cancelled and may(Action.FOLLOW_UPS),
            complete_follow_ups=may(Action.FOLLOW_UPS),
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
                self.edit,
                self.cancel,
                self.reopen,
                self.merge,
                self.add_follow_ups,
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
    cards: list[Card]  # those on this page
    total: int  # open, on every page
    unacknowledged: int


def overview_groups(principal: Principal, overview: Overview) -> list[SeverityGroup]:
    """Open incidents by severity, P1 first, with their counts; in each, this page's cards
    (the unacknowledged first, then the longest-running: the order the store reads them)."""
    groups = []
    for severity in sorted(Severity, key=lambda s: s.rank):
        total, unacknowledged = overview.counts.get(severity, (0, 0))
        if not total:
            continue
        cards = [
            Card(
                incident=card.incident,
                next_steps=card.upcoming[:NEXT_STEPS_SHOWN],
                can=Permissions.of(principal, card.incident),
            )
            for card in overview.cards
            if card.incident.severity is severity
        ]
        groups.append(
            SeverityGroup(severity, SEVERITY_NAMES[severity], cards, total, unacknowledged)
        )
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


def held_texts(view: IncidentView) -> dict[tuple[str, int], str]:
    """What each held step would say, (step, occurrence) -> text: the playbook put it on
    the timeline (`step_held`) when it held the step."""
    texts: dict[tuple[str, int], str] = {}
    for entry in view.timeline:
        preview = entry.data.get("preview")
        if entry.kind == "step_held" and entry.step_id and isinstance(preview, str):
            texts[(entry.step_id, entry.occurrence or 0)] = preview
    return texts


def held_text(texts: Mapping[tuple[str, int], str], step: UpcomingStep) -> str:
    return texts.get((step.step_id, step.occurrence), "")


@dataclass(frozen=True)
class HistoryQuery:
    """What the history page was asked for: its GET form's fields, checked."""

    search: str = ""
    status: Status | None = None  # one of PAST_STATUSES, or None for all of them
    severity: Severity | None = None
    page: int = 1

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> HistoryQuery:
        """Refused (InvalidValue) only for what the form itself cannot send."""
        search = " ".join(query.get("q", "").split())
        if len(search) > MAX_SEARCH:
            raise InvalidValue("q", f"search for {MAX_SEARCH} characters at most")
        status_text = query.get("status", "").strip()
        status = Status.parse(status_text, where="status") if status_text else None
        if status is not None and status not in PAST_STATUSES:
            raise InvalidValue(
                "status",
                f"{status.value} incidents are on the open incidents page; history lists "
                + ", ".join(s.value for s in PAST_STATUSES),
            )
        severity_text = query.get("severity", "").strip()
        severity = Severity.parse(severity_text) if severity_text else None
        page_text = query.get("page", "1").strip() or "1"
        if not page_text.isdigit() or not 1 <= int(page_text) <= MAX_HISTORY_PAGE:
            raise InvalidValue("page", f"give a page number from 1 to {MAX_HISTORY_PAGE}")
        return cls(search, status, severity, int(page_text))

    @property
    def statuses(self) -> tuple[Status, ...]:
        return (self.status,) if self.status is not None else PAST_STATUSES

    @property
    def offset(self) -> int:
        return (self.page - 1) * HISTORY_PAGE_SIZE

    @property
    def filtered(self) -> bool:
        return bool(self.search or self.status or self.severity)

    def url(self, page: int) -> str:
        """This search's page `page`."""
        fields = {
            "q": self.search,
            "status": self.status.value if self.status else "",
            "severity": self.severity.value if self.severity else "",
            "page": str(page) if page > 1 else "",
        }
        query = urlencode({k: v for k, v in fields.items() if v})
        return "/ui/history" + (f"?{query}" if query else "")


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
        "severities": list(Severity),
        "categories": list(Category),
        "cancel_reasons": CANCEL_REASONS,
        "past_statuses": PAST_STATUSES,
        "held_text": held_text,
        "nav": "",  # which page of the top bar this is
        "invalid": frozenset(),  # fields of a refused form to mark invalid
    }
    session = context.get("session")
    defaults["can_declare"] = session is not None and may_declare(session.principal)
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
