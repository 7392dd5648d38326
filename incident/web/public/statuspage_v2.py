"""Atlassian Statuspage's public API (v2) documents, made from the public read model.

Same field names, enums, nesting and timestamp form as a page hosted by Statuspage
(`/api/v2/summary.json` and friends), so existing widgets and status aggregators read this
page unchanged. Only `PublicStatus` goes in, so only public facts come out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from incident.domain.status_page import ComponentStatus, MaintenanceStatus
from incident.services.status_page import (
    ComponentView,
    GroupView,
    PublicIncident,
    PublicMaintenance,
    PublicMaintenanceUpdate,
    PublicStatus,
)

Json = dict[str, Any]

# Statuspage's lists of "the most recent" hold this many.
RECENT = 50

# Every document the API serves, by its path under /api/v2/.
DOCUMENTS = (
    "summary.json",
    "status.json",
    "components.json",
    "incidents.json",
    "incidents/unresolved.json",
    "scheduled-maintenances.json",
    "scheduled-maintenances/upcoming.json",
    "scheduled-maintenances/active.json",
)


PAGE_PATH = "/status"  # where the page is, below the service's root


@dataclass(frozen=True)
class PageInfo:
    """The page itself: `url` is where people read it; incident links hang below it."""

    id: str
    name: str
    url: str
    time_zone: str = "Etc/UTC"

    @classmethod
    def of(cls, *, name: str, base_url: str) -> PageInfo:
        url = base_url.rstrip("/") + PAGE_PATH
        return cls(id=page_id(url), name=name, url=url)

    def link(self, item_id: str) -> str:
        """An incident's or a maintenance's own page (Statuspage's `shortlink`)."""
        return f"{self.url}/incidents/{item_id}"


def page_id(url: str) -> str:
    """A Statuspage-like id (12 lower-case letters and digits) that every replica derives
    alike from the page's address, so their documents are byte for byte the same."""
    number = int.from_bytes(hashlib.sha256(url.encode()).digest()[:8], "big")
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
    digits = []
    for _ in range(12):
        number, digit = divmod(number, 36)
        digits.append(alphabet[digit])
    return "".join(digits)


def timestamp(value: datetime | None) -> str | None:
    """Statuspage's form: ISO 8601 in the page's zone (UTC) with milliseconds."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def documents(page: PageInfo, status: PublicStatus) -> dict[str, Json]:
    """Every document, by its path under /api/v2/."""
    return _Writer(page, status).documents()


class _Writer:
    def __init__(self, page: PageInfo, status: PublicStatus) -> None:
        self.page = page
        self.status = status
        self.components = self._components()
        self.by_id = {c["id"]: c for c in self.components}
        # One incident shows in several documents: made once, shared by all of them.
        self._made: dict[str, Json] = {}

    def documents(self) -> dict[str, Json]:
        status = self.status
        page = self._page()
        rollup = {"indicator": status.indicator.value, "description": status.description}
        incidents = [self._incident(i) for i in status.incidents]
        unresolved = [self._incident(i) for i in status.unresolved]
        upcoming = [
            self._maintenance(m)
            for m in sorted(status.upcoming_maintenances, key=lambda m: m.scheduled_for)
        ]
        active = [
            self._maintenance(m)
            for m in sorted(status.active_maintenances, key=lambda m: m.scheduled_for)
        ]
        recent = sorted(status.maintenances, key=lambda m: m.scheduled_for, reverse=True)
        return {
            "summary.json": {
                "page": page,
                "components": self.components,
                "incidents": unresolved,
                "scheduled_maintenances": active + upcoming,
                "status": rollup,
            },
            "status.json": {"page": page, "status": rollup},
            "components.json": {"page": page, "components": self.components},
            "incidents.json": {"page": page, "incidents": incidents[:RECENT]},
            "incidents/unresolved.json": {"page": page, "incidents": unresolved},
            "scheduled-maintenances.json": {
                "page": page,
                "scheduled_maintenances": [self._maintenance(m) for m in recent[:RECENT]],
            },
            "scheduled-maintenances/upcoming.json": {
                "page": page,
                "scheduled_maintenances": upcoming,
            },
            "scheduled-maintenances/active.json": {
                "page": page,
                "scheduled_maintenances": active,
            },
        }

    def _page(self) -> Json:
        return {
            "id": self.page.id,
            "name": self.page.name,
            "url": self.page.url,
            "time_zone": self.page.time_zone,
            "updated_at": timestamp(self.status.updated_at),
        }

    # --- components: groups and their members, flat, in page order -----------------------

    def _components(self) -> list[Json]:
        rows: list[Json] = []
        for row in self.status.layout:
            if isinstance(row, GroupView):
                rows.append(self._group(row, position=len(rows) + 1))
                for member in row.components:
                    rows.append(self._component(member, position=len(rows) + 1))
            else:
                rows.append(self._component(row, position=len(rows) + 1))
        return rows

    def _component(self, view: ComponentView, *, position: int) -> Json:
        since = self.status.uptime_since
        return {
            "id": view.component.id,
            "name": view.component.name,
            "status": view.status.value,
            "created_at": timestamp(since),
            "updated_at": timestamp(view.updated_at or since),
            "position": position,
            "description": view.component.description or None,
            "showcase": True,  # its uptime bars are on the page
            "start_date": None,
            "group_id": view.component.group,
            "page_id": self.page.id,
            "group": False,
            "only_show_if_degraded": False,
        }

    def _group(self, view: GroupView, *, position: int) -> Json:
        since = self.status.uptime_since
        changed = [c.updated_at for c in view.components if c.updated_at is not None]
        return {
            "id": view.group.id,
            "name": view.group.name,
            "status": view.status.value,
            "created_at": timestamp(since),
            "updated_at": timestamp(max(changed, default=since)),
            "position": position,
            "description": view.group.description or None,
            "showcase": False,
            "start_date": None,
            "group_id": None,
            "page_id": self.page.id,
            "group": True,
            "only_show_if_degraded": False,
            "components": [c.component.id for c in view.components],
        }

    # --- incidents and maintenances --------------------------------------------------------

    def _incident(self, incident: PublicIncident) -> Json:
        if incident.id not in self._made:
            self._made[incident.id] = self._make_incident(incident)
        return self._made[incident.id]

    def _make_incident(self, incident: PublicIncident) -> Json:
        return {
            "id": incident.id,
            "name": incident.name,
            "status": incident.status,
            "created_at": timestamp(incident.created_at),
            "updated_at": timestamp(incident.updated_at),
            "monitoring_at": timestamp(incident.monitoring_at),
            "resolved_at": timestamp(incident.resolved_at),
            "impact": incident.impact.value,
            "shortlink": self.page.link(incident.id),
            "started_at": timestamp(incident.started_at),
            "page_id": self.page.id,
            "incident_updates": [
                self._update(
                    update_id=u.id,
                    status=u.status,
                    body=u.body,
                    incident_id=incident.id,
                    at=u.at,
                    affected=[
                        {
                            "code": a.id,
                            "name": a.name,
                            "old_status": a.old_status.value,
                            "new_status": a.new_status.value,
                        }
                        for a in u.affected
                    ],
                )
                for u in incident.updates
            ],
            "components": self._listed(c.id for c, _ in incident.components),
        }

    def _maintenance(self, window: PublicMaintenance) -> Json:
        if window.id not in self._made:
            self._made[window.id] = self._make_maintenance(window)
        return self._made[window.id]

    def _make_maintenance(self, window: PublicMaintenance) -> Json:
        ids = [c.id for c in window.components]
        return {
            "id": window.id,
            "name": window.name,
            "status": window.status.value,
            "created_at": timestamp(window.created_at),
            "updated_at": timestamp(window.updated_at),
            "monitoring_at": None,
            "resolved_at": timestamp(window.resolved_at),
            "impact": "maintenance",
            "shortlink": self.page.link(window.id),
            "started_at": timestamp(window.scheduled_for),
            "page_id": self.page.id,
            "incident_updates": [
                self._update(
                    update_id=u.id,
                    status=u.status.value,
                    body=u.body,
                    incident_id=window.id,
                    at=u.at,
                    affected=self._maintenance_change(u, window),
                )
                for u in window.updates
            ],
            "components": self._listed(ids),
            "scheduled_for": timestamp(window.scheduled_for),
            "scheduled_until": timestamp(window.scheduled_until),
        }

    def _maintenance_change(
        self, update: PublicMaintenanceUpdate, window: PublicMaintenance
    ) -> list[Json]:
        """What starting and ending the window did to its components."""
        change = {
            MaintenanceStatus.IN_PROGRESS: (
                ComponentStatus.OPERATIONAL,
                ComponentStatus.UNDER_MAINTENANCE,
            ),
            MaintenanceStatus.COMPLETED: (
                ComponentStatus.UNDER_MAINTENANCE,
                ComponentStatus.OPERATIONAL,
            ),
        }.get(update.status)
        if change is None:
            return []
        old, new = change
        return [
            {"code": c.id, "name": c.name, "old_status": old.value, "new_status": new.value}
            for c in window.components
        ]

    def _update(
        self,
        *,
        update_id: str,
        status: str,
        body: str,
        incident_id: str,
        at: datetime,
        affected: Sequence[Json],
    ) -> Json:
        when = timestamp(at)
        return {
            "id": update_id,
            "status": status,
            "body": body,
            "incident_id": incident_id,
            "created_at": when,
            "updated_at": when,
            "display_at": when,
            # Statuspage gives null, not an empty list, for an update that changed none.
            "affected_components": list(affected) or None,
            "deliver_notifications": True,
            "custom_tweet": None,
            "tweet_id": None,
        }

    def _listed(self, ids: Iterable[str]) -> list[Json]:
        return [self.by_id[i] for i in ids if i in self.by_id]
