"""The public status page's read model, and the use cases for scheduled maintenance.

`read_public_facts` reads everything the page shows in one transaction, and
`PublicFacts.build` (`build_public_status`) makes of it a model that holds only
public facts: component statuses, customer-facing updates and status-page texts, public
incident names, maintenance windows. Nothing internal (the incident's title, notes,
responders, alert data) is in the model, so nothing rendered from it can leak it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from incident.domain.access import Action, Actor, actor_name, authorized
from incident.domain.incident import Incident, Status
from incident.domain.records import TimelineEntry
from incident.domain.status_page import (
    Catalog,
    Component,
    ComponentGroup,
    ComponentStatus,
    DayUptime,
    Indicator,
    Maintenance,
    MaintenanceStatus,
    StatusSpan,
    daily_uptime,
    incident_impact,
    overall,
    overall_uptime,
    public_title,
    spans_from_changes,
    worst_status,
)
from incident.services.incidents import Runtime
from incident.services.ports import Transaction

log = logging.getLogger("incident.services")

UPTIME_DAYS = 90
# Kinds of public timeline entries that are updates customers read (the others, such as
# component changes, show as the components' statuses).
UPDATE_KINDS = ("customer_update", "status_page_update")
RESOLVED_TEXT = "This incident has been resolved."
NO_IMPACT_TEXT = "This incident has been closed: there was no impact after all."


@dataclass(frozen=True)
class AffectedComponent:
    id: str
    name: str
    old_status: ComponentStatus
    new_status: ComponentStatus


@dataclass(frozen=True)
class PublicUpdate:
    id: str
    at: datetime
    status: str  # investigating, identified, monitoring, resolved
    body: str
    affected: tuple[AffectedComponent, ...] = ()


@dataclass(frozen=True)
class PublicIncident:
    id: str
    name: str
    status: str
    impact: Indicator  # the worst it got: a past incident keeps the impact it had
    current_impact: Indicator  # as its components are now: what the page's banner counts
    created_at: datetime
    updated_at: datetime
    started_at: datetime
    monitoring_at: datetime | None
    resolved_at: datetime | None
    updates: tuple[PublicUpdate, ...]  # newest first
    components: tuple[tuple[Component, ComponentStatus], ...]

    @property
    def is_resolved(self) -> bool:
        return self.status == "resolved"


@dataclass(frozen=True)
class ComponentView:
    component: Component
    status: ComponentStatus
    updated_at: datetime | None
    uptime_days: tuple[DayUptime, ...]  # oldest first
    uptime: float  # over the whole period, 0..1


@dataclass(frozen=True)
class GroupView:
    group: ComponentGroup
    status: ComponentStatus
    components: tuple[ComponentView, ...]


@dataclass(frozen=True)
class PublicMaintenanceUpdate:
    id: str
    at: datetime
    status: MaintenanceStatus
    body: str


@dataclass(frozen=True)
class PublicMaintenance:
    id: str
    name: str
    status: MaintenanceStatus
    scheduled_for: datetime
    scheduled_until: datetime
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    resolved_at: datetime | None
    updates: tuple[PublicMaintenanceUpdate, ...]  # newest first
    components: tuple[Component, ...]

    @property
    def is_active(self) -> bool:
        return self.status in (MaintenanceStatus.IN_PROGRESS, MaintenanceStatus.VERIFYING)


@dataclass(frozen=True)
class PublicStatus:
    """Everything the public page, JSON API and feeds show, as of `generated_at`."""

    generated_at: datetime
    indicator: Indicator
    description: str
    components: tuple[ComponentView, ...]  # page order, groups' members included
    groups: tuple[GroupView, ...]
    incidents: tuple[PublicIncident, ...]  # newest first, open and past (UPTIME_DAYS)
    maintenances: tuple[PublicMaintenance, ...]  # soonest first
    updated_at: datetime  # the latest public change
    stale_at: datetime  # when time alone changes what the page shows

    @property
    def unresolved(self) -> list[PublicIncident]:
        return [i for i in self.incidents if not i.is_resolved]

    @property
    def resolved(self) -> list[PublicIncident]:
        return [i for i in self.incidents if i.is_resolved]

    @property
    def upcoming_maintenances(self) -> list[PublicMaintenance]:
        return [m for m in self.maintenances if m.status is MaintenanceStatus.SCHEDULED]

    @property
    def active_maintenances(self) -> list[PublicMaintenance]:
        return [m for m in self.maintenances if m.is_active]

    @property
    def ungrouped(self) -> list[ComponentView]:
        return [c for c in self.components if c.component.group is None]

    @property
    def layout(self) -> list[ComponentView | GroupView]:
        """The page's rows in order: each group where its first member stands, with its
        members inside it; groups without members are left out."""
        groups = {g.group.id: g for g in self.groups}
        rows: list[ComponentView | GroupView] = []
        for view in self.components:
            group_id = view.component.group
            if group_id is None:
                rows.append(view)
            elif group_id in groups:
                rows.append(groups.pop(group_id))
        return rows

    @property
    def uptime_since(self) -> datetime:
        """The first instant the uptime bars cover."""
        first = self.generated_at.date() - timedelta(days=UPTIME_DAYS - 1)
        return datetime.combine(first, time(), UTC)


@dataclass(frozen=True)
class PublicFacts:
    """What the page is made from, as read in one transaction at `now`."""

    incidents: Sequence[tuple[Incident, Sequence[TimelineEntry]]]
    maintenances: Sequence[Maintenance]
    now: datetime

    def build(self, catalog: Catalog, *, cancelled: str = "withdraw") -> PublicStatus:
        """The read model (pure CPU: the caller may run it off the event loop).
        `cancelled`: how cancelled incidents show (see `build_public_status`)."""
        return build_public_status(
            catalog, self.incidents, self.maintenances, now=self.now, cancelled=cancelled
        )


async def read_public_facts(rt: Runtime) -> PublicFacts:
    now = rt.clock.now()
    since = datetime.combine(now.date() - timedelta(days=UPTIME_DAYS - 1), time(), UTC)

    def read(
        tx: Transaction,
    ) -> tuple[list[tuple[Incident, list[TimelineEntry]]], list[Maintenance]]:
        return tx.public_incidents(since=since), tx.maintenances(since=since)

    incidents, maintenances = await rt.store.read(read)
    return PublicFacts(incidents, maintenances, now)


def build_public_status(
    catalog: Catalog,
    incidents: Sequence[tuple[Incident, Sequence[TimelineEntry]]],
    maintenances: Sequence[Maintenance],
    *,
    now: datetime,
    cancelled: str = "withdraw",
) -> PublicStatus:
    """What the page shows. A cancelled incident (a false alarm, declined, merged) is
    `withdraw`n: not shown at all, its components' statuses and downtime forgotten; or,
    with `no_impact`, shown resolved with no impact and no downtime."""
    if cancelled == "withdraw":
        incidents = [(i, e) for i, e in incidents if i.status is not Status.CANCELLED]
    public_incidents = [_public_incident(catalog, i, e) for i, e in incidents]
    windows = [_public_maintenance(catalog, m, now) for m in maintenances]
    impact = _ComponentImpact.of(catalog, incidents, maintenances, now)
    views = _component_views(catalog, impact, now)
    open_impacts = [i.current_impact for i in public_incidents if not i.is_resolved]
    indicator, description = overall((v.status for v in views.values()), open_impacts)
    moments = [i.updated_at for i in public_incidents] + [m.updated_at for m in windows]
    return PublicStatus(
        generated_at=now,
        indicator=indicator,
        description=description,
        components=tuple(views.values()),
        groups=_group_views(catalog, views),
        incidents=tuple(public_incidents),
        maintenances=tuple(windows),
        updated_at=max(moments, default=now.replace(hour=0, minute=0, second=0, microsecond=0)),
        stale_at=_stale_at(maintenances, now),
    )


@dataclass(frozen=True)
class _ComponentImpact:
    """What the incidents and maintenance windows did to each component of the catalog."""

    # The statuses open incidents and active windows give it now (the worst one shows).
    current: dict[str, list[ComponentStatus]]
    # When an incident last changed it.
    changed_at: dict[str, datetime]
    # Its time spent other than operational, for the uptime bars.
    spans: dict[str, list[StatusSpan]]

    @classmethod
    def of(
        cls,
        catalog: Catalog,
        incidents: Sequence[tuple[Incident, Sequence[TimelineEntry]]],
        maintenances: Sequence[Maintenance],
        now: datetime,
    ) -> _ComponentImpact:
        impact = cls(
            current={c.id: [] for c in catalog.components},
            changed_at={},
            spans={c.id: [] for c in catalog.components},
        )
        for incident, entries in incidents:
            # A cancelled one has no impact: it counts for no component's status or downtime.
            if incident.status is not Status.CANCELLED:
                impact._add_incident(incident, entries)
        for window in maintenances:
            if window.is_active(now):
                for component in window.components:
                    impact._add_current(component, ComponentStatus.UNDER_MAINTENANCE)
        return impact

    def _add_incident(self, incident: Incident, entries: Sequence[TimelineEntry]) -> None:
        changes = [
            (e.at, {k: ComponentStatus(v) for k, v in e.data.get("components", {}).items()})
            for e in entries
            if e.kind == "components_changed"
        ]
        for at, statuses in changes:
            for component in statuses:
                self._note_change(component, at)
        if incident.is_open:
            for component, status in incident.components.items():
                self._add_current(component, status)
        elif incident.resolved_at is not None:
            for component in incident.components:
                self._note_change(component, incident.resolved_at)
        ended = None if incident.is_open else incident.resolved_at
        for span in spans_from_changes(changes, ended):
            if span.component in self.spans:
                self.spans[span.component].append(span)

    def _note_change(self, component: str, at: datetime) -> None:
        self.changed_at[component] = max(at, self.changed_at.get(component, at))

    def _add_current(self, component: str, status: ComponentStatus) -> None:
        if component in self.current:
            self.current[component].append(status)


def _component_views(
    catalog: Catalog, impact: _ComponentImpact, now: datetime
) -> dict[str, ComponentView]:
    views: dict[str, ComponentView] = {}
    for component in catalog.components:
        days = daily_uptime(impact.spans[component.id], today=now.date(), days=UPTIME_DAYS, now=now)
        views[component.id] = ComponentView(
            component=component,
            status=worst_status(impact.current[component.id]) or ComponentStatus.OPERATIONAL,
            updated_at=impact.changed_at.get(component.id),
            uptime_days=tuple(days),
            uptime=overall_uptime(days, now=now),
        )
    return views


def _group_views(catalog: Catalog, views: dict[str, ComponentView]) -> tuple[GroupView, ...]:
    return tuple(
        GroupView(
            group=group,
            status=worst_status(views[c.id].status for c in catalog.in_group(group.id))
            or ComponentStatus.OPERATIONAL,
            components=tuple(views[c.id] for c in catalog.in_group(group.id)),
        )
        for group in catalog.groups
    )


def _stale_at(maintenances: Sequence[Maintenance], now: datetime) -> datetime:
    """Uptime bars move on at midnight UTC; windows start and end on their own."""
    moments = [datetime.combine(now.date() + timedelta(days=1), time(), UTC)]
    for window in maintenances:
        moments += [t for t in (window.scheduled_for, window.scheduled_until) if t > now]
    return min(moments)


def _public_incident(
    catalog: Catalog, incident: Incident, entries: Sequence[TimelineEntry]
) -> PublicIncident:
    assert incident.id is not None
    resolved = not incident.is_open
    updates: list[PublicUpdate] = []
    previous: dict[str, ComponentStatus] = {}
    # The worst status each component reached: the incident's name and impact keep it
    # after the components recover, as a past incident should.
    peak: dict[str, ComponentStatus] = dict(incident.components)
    pending: list[AffectedComponent] = []
    for n, entry in enumerate(entries):
        if entry.kind == "components_changed":
            for component_id, value in entry.data.get("components", {}).items():
                component = catalog.get(component_id)
                new = ComponentStatus(value)
                old = previous.get(component_id, ComponentStatus.OPERATIONAL)
                previous[component_id] = new
                if new.rank > peak.get(component_id, ComponentStatus.OPERATIONAL).rank:
                    peak[component_id] = new
                if component is not None:
                    pending.append(AffectedComponent(component.id, component.name, old, new))
        elif entry.kind in UPDATE_KINDS:
            status = str(entry.data.get("status", incident.status.value))
            if status == Status.CLOSED.value:
                status = Status.RESOLVED.value
            updates.append(
                PublicUpdate(
                    id=f"{incident.id}-{n + 1}",
                    at=entry.at,
                    status=status,
                    body=entry.text,
                    affected=tuple(pending),
                )
            )
            pending = []
    if resolved and incident.ended_at is not None:
        if not any(u.status == "resolved" for u in updates):
            # Resolved without a public word: the page still says so, in plain words.
            updates.append(
                PublicUpdate(
                    id=f"{incident.id}-resolved",
                    at=incident.ended_at,
                    status="resolved",
                    body=NO_IMPACT_TEXT if incident.cancelled_at else RESOLVED_TEXT,
                    affected=tuple(pending),
                )
            )
    # Newest first; of two at the same instant, the one recorded later.
    updates = sorted(reversed(updates), key=lambda u: u.at, reverse=True)
    monitoring = [u.at for u in updates if u.status == "monitoring"]
    components = tuple(
        (c, status)
        for component_id, status in incident.components.items()
        if (c := catalog.get(component_id)) is not None
    )
    ended = incident.ended_at
    moments = [u.at for u in updates] + ([ended] if ended else [])
    first_public = min((e.at for e in entries), default=incident.declared_at)
    no_impact = incident.status is Status.CANCELLED
    return PublicIncident(
        id=str(incident.id),
        name=incident.public_title or public_title(catalog, incident.severity.value, peak),
        status="resolved" if resolved else incident.status.value,
        impact=Indicator.NONE if no_impact else incident_impact(incident.severity.value, peak),
        current_impact=(
            Indicator.NONE
            if no_impact
            else incident_impact(incident.severity.value, incident.components)
        ),
        created_at=first_public,
        updated_at=max(moments, default=first_public),
        started_at=incident.declared_at,
        monitoring_at=min(monitoring) if monitoring else None,
        resolved_at=ended if resolved else None,
        updates=tuple(updates),
        components=components,
    )


def _public_maintenance(catalog: Catalog, window: Maintenance, now: datetime) -> PublicMaintenance:
    assert window.id is not None
    status = window.status_at(now)
    updates = [
        PublicMaintenanceUpdate(
            id=f"m{window.id}-{u.id or n}", at=u.at, status=u.status, body=u.body
        )
        for n, u in enumerate(window.updates)
    ]
    said = {u.status for u in updates}
    ended_by_hand = min(
        (u.at for u in updates if u.status is MaintenanceStatus.COMPLETED), default=None
    )
    ended_at = ended_by_hand
    if ended_at is None and status is MaintenanceStatus.COMPLETED:
        ended_at = min(window.scheduled_until, now)
    # A window the clock started (and perhaps ended) says so in words, as Statuspage's
    # automatic transitions do; one completed before it began never started.
    started = window.scheduled_for <= now and (ended_at is None or window.scheduled_for < ended_at)
    if started and MaintenanceStatus.IN_PROGRESS not in said:
        updates.append(
            PublicMaintenanceUpdate(
                id=f"m{window.id}-started",
                at=window.scheduled_for,
                status=MaintenanceStatus.IN_PROGRESS,
                body="Scheduled maintenance is currently in progress. We will provide updates "
                "as necessary.",
            )
        )
    if ended_at is not None and ended_by_hand is None:
        updates.append(
            PublicMaintenanceUpdate(
                id=f"m{window.id}-completed",
                at=ended_at,
                status=MaintenanceStatus.COMPLETED,
                body="The scheduled maintenance has been completed.",
            )
        )
    # Newest first; of two at the same instant, the one recorded later.
    updates = sorted(reversed(updates), key=lambda u: u.at, reverse=True)
    return PublicMaintenance(
        id=f"m{window.id}",
        name=window.name,
        status=status,
        scheduled_for=window.scheduled_for,
        scheduled_until=window.scheduled_until,
        created_at=window.created_at,
        updated_at=max(u.at for u in updates) if updates else window.created_at,
        started_at=window.scheduled_for if started else None,
        resolved_at=ended_at,
        updates=tuple(updates),
        components=tuple(c for i in window.components if (c := catalog.get(i)) is not None),
    )


# --- scheduled maintenance: use cases -------------------------------------------------------


async def schedule_maintenance(
    rt: Runtime,
    *,
    name: str,
    message: str,
    scheduled_for: datetime,
    scheduled_until: datetime,
    components: Sequence[str],
    by: Actor,
) -> Maintenance:
    authorized(by, Action.MAINTENANCE)
    by = actor_name(by)
    now = rt.clock.now()
    window = Maintenance.schedule(
        name=name,
        message=message,
        scheduled_for=scheduled_for,
        scheduled_until=scheduled_until,
        components=components,
        catalog=rt.catalog,
        at=now,
        by=by,
    )

    def work(tx: Transaction) -> Maintenance:
        tx.add_maintenance(window)
        return window

    await rt.store.run(work)
    rt.public_changed()
    log.info("maintenance scheduled", extra={"action": "maintenance_scheduled", "by": by})
    return window


async def update_maintenance(
    rt: Runtime,
    maintenance_id: int,
    *,
    message: str,
    status: MaintenanceStatus | None,
    by: Actor,
) -> Maintenance:
    authorized(by, Action.MAINTENANCE)
    by = actor_name(by)
    now = rt.clock.now()

    def work(tx: Transaction) -> Maintenance:
        window = tx.get_maintenance(maintenance_id, lock=True)
        window.post_update(message=message, at=now, status=status)
        tx.save_maintenance(window)
        return window

    window = await rt.store.run(work)
    rt.public_changed()
    log.info(
        "maintenance updated",
        extra={"action": "maintenance_updated", "maintenance_id": maintenance_id, "by": by},
    )
    return window


async def list_maintenances(rt: Runtime, *, include_past_days: int = 30) -> list[Maintenance]:
    since = rt.clock.now() - timedelta(days=include_past_days)
    return await rt.store.read(lambda tx: tx.maintenances(since=since))


async def get_maintenance(rt: Runtime, maintenance_id: int) -> Maintenance:
    return await rt.store.read(lambda tx: tx.get_maintenance(maintenance_id))
