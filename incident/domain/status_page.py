"""What the public status page shows: components and their status, the page's overall
indicator, scheduled maintenance and 90-day uptime.

Pure: no I/O and no clock. The vocabulary is Atlassian Statuspage's (component statuses,
indicators, incident impact, maintenance statuses), so the public JSON API can use it as is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from itertools import pairwise

from incident.domain import text as rules
from incident.domain.errors import IllegalTransition, InvalidValue


class ComponentStatus(StrEnum):
    OPERATIONAL = "operational"
    UNDER_MAINTENANCE = "under_maintenance"
    DEGRADED_PERFORMANCE = "degraded_performance"
    PARTIAL_OUTAGE = "partial_outage"
    MAJOR_OUTAGE = "major_outage"

    @property
    def rank(self) -> int:
        """How bad it is for a visitor: higher is worse."""
        return _STATUS_RANK[self]

    @property
    def label(self) -> str:
        """In words, for people (the page never relies on colour alone)."""
        return self.value.replace("_", " ").capitalize()

    @property
    def downtime_weight(self) -> float:
        """The share of a second in this status that counts as downtime for uptime bars."""
        return DOWNTIME_WEIGHT.get(self, 0.0)

    @classmethod
    def parse(cls, text: str, *, where: str = "status") -> ComponentStatus:
        try:
            return cls(text.strip().lower())
        except ValueError:
            raise InvalidValue(
                where,
                f"unknown component status {text!r}; use one of " + ", ".join(s.value for s in cls),
            ) from None


_STATUS_RANK = {
    ComponentStatus.OPERATIONAL: 0,
    ComponentStatus.UNDER_MAINTENANCE: 1,
    ComponentStatus.DEGRADED_PERFORMANCE: 2,
    ComponentStatus.PARTIAL_OUTAGE: 3,
    ComponentStatus.MAJOR_OUTAGE: 4,
}

# As Statuspage counts it: a major outage is downtime, a partial outage counts for 30% of
# its duration, degraded performance and maintenance do not count against uptime.
DOWNTIME_WEIGHT = {ComponentStatus.MAJOR_OUTAGE: 1.0, ComponentStatus.PARTIAL_OUTAGE: 0.3}


class Indicator(StrEnum):
    """The page's overall state (Statuspage's `status.indicator`), and an incident's impact
    (which uses the same words but never `maintenance`)."""

    NONE = "none"
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"
    MAINTENANCE = "maintenance"

    @property
    def rank(self) -> int:
        return _INDICATOR_RANK[self]


_INDICATOR_RANK = {
    Indicator.NONE: 0,
    Indicator.MAINTENANCE: 1,
    Indicator.MINOR: 2,
    Indicator.MAJOR: 3,
    Indicator.CRITICAL: 4,
}

# The words Statuspage shows for each indicator.
DESCRIPTIONS = {
    Indicator.NONE: "All Systems Operational",
    Indicator.MAINTENANCE: "Service Under Maintenance",
    Indicator.MINOR: "Minor Service Outage",
    Indicator.MAJOR: "Partial System Outage",
    Indicator.CRITICAL: "Major System Outage",
}

_STATUS_INDICATOR = {
    ComponentStatus.OPERATIONAL: Indicator.NONE,
    ComponentStatus.UNDER_MAINTENANCE: Indicator.MAINTENANCE,
    ComponentStatus.DEGRADED_PERFORMANCE: Indicator.MINOR,
    ComponentStatus.PARTIAL_OUTAGE: Indicator.MAJOR,
    ComponentStatus.MAJOR_OUTAGE: Indicator.CRITICAL,
}

# An incident that names no components shows the impact its severity implies.
_SEVERITY_IMPACT = {
    "P1": Indicator.CRITICAL,
    "P2": Indicator.MAJOR,
    "P3": Indicator.MINOR,
    "P4": Indicator.NONE,
}


def indicator_of(status: ComponentStatus) -> Indicator:
    return _STATUS_INDICATOR[status]


def incident_impact(severity: str, components: Mapping[str, ComponentStatus]) -> Indicator:
    """An incident's public impact: from the worst status it gives a component, or from
    its severity when it names none."""
    worst = worst_status(components.values())
    if worst is None:
        return _SEVERITY_IMPACT.get(severity, Indicator.NONE)
    impact = indicator_of(worst)
    return Indicator.NONE if impact is Indicator.MAINTENANCE else impact


def worst_status(statuses: Iterable[ComponentStatus]) -> ComponentStatus | None:
    return max(statuses, key=lambda s: s.rank, default=None)


def overall(
    component_statuses: Iterable[ComponentStatus], impacts: Iterable[Indicator] = ()
) -> tuple[Indicator, str]:
    """The page's indicator and its description: the worst of its components' statuses and
    of its unresolved incidents' impacts."""
    candidates = [indicator_of(s) for s in component_statuses] + list(impacts)
    worst = max(candidates, key=lambda i: i.rank, default=Indicator.NONE)
    return worst, DESCRIPTIONS[worst]


# --- the component catalog (from configuration) ------------------------------------------------

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@dataclass(frozen=True)
class ComponentGroup:
    id: str
    name: str
    description: str = ""


@dataclass(frozen=True)
class Component:
    id: str
    name: str
    description: str = ""
    group: str | None = None  # a ComponentGroup id


@dataclass(frozen=True)
class Catalog:
    """The components the page lists, in page order, and their groups."""

    components: tuple[Component, ...] = ()
    groups: tuple[ComponentGroup, ...] = ()
    _by_id: Mapping[str, Component] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {c.id: c for c in self.components})

    @classmethod
    def build(
        cls, components: Sequence[Component], groups: Sequence[ComponentGroup] = ()
    ) -> Catalog:
        """Check ids (unique, lower-case slugs) and group references."""
        seen: set[str] = set()
        group_ids = set()
        for group in groups:
            _check_id(group.id, f"component group {group.name!r}")
            if not group.name.strip():
                raise InvalidValue("component_groups", f"group {group.id!r} needs a name")
            if group.id in seen:
                raise InvalidValue("components", f"id {group.id!r} is used twice")
            seen.add(group.id)
            group_ids.add(group.id)
        for component in components:
            _check_id(component.id, f"component {component.name!r}")
            if not component.name.strip():
                raise InvalidValue("components", f"component {component.id!r} needs a name")
            if component.id in seen:
                raise InvalidValue("components", f"id {component.id!r} is used twice")
            seen.add(component.id)
            if component.group is not None and component.group not in group_ids:
                raise InvalidValue(
                    "components",
                    f"component {component.id!r} names group {component.group!r}, which is "
                    "not defined; define it under component_groups",
                )
        return cls(tuple(components), tuple(groups))

    def get(self, component_id: str) -> Component | None:
        return self._by_id.get(component_id)

    def in_group(self, group_id: str) -> list[Component]:
        return [c for c in self.components if c.group == group_id]

    def check_statuses(
        self, values: Mapping[str, str], *, where: str = "components"
    ) -> dict[str, ComponentStatus]:
        """Parse `{component id: status}` from a request, naming what is wrong."""
        parsed: dict[str, ComponentStatus] = {}
        for component_id, status in values.items():
            self.require(component_id, where=where)
            parsed[component_id] = ComponentStatus.parse(status, where=f"{where}.{component_id}")
        return parsed

    def require(self, component_id: str, *, where: str = "components") -> Component:
        component = self.get(component_id)
        if component is None:
            known = ", ".join(c.id for c in self.components) or "none are configured"
            raise InvalidValue(
                where, f"unknown component {component_id!r}; the page's components: {known}"
            )
        return component


def _check_id(value: str, what: str) -> None:
    if not _ID.match(value):
        raise InvalidValue(
            "components",
            f"{what} has id {value!r}; use 1-63 lower-case letters, digits, '-' or '_'",
        )


def component_names(catalog: Catalog, ids: Iterable[str]) -> list[str]:
    return [c.name for i in ids if (c := catalog.get(i)) is not None]


def public_title(catalog: Catalog, severity: str, components: Mapping[str, ComponentStatus]) -> str:
    """The name customers see when the commander gave none: never the internal title,
    which may carry host names, alert labels or customer names."""
    affected = {k: v for k, v in components.items() if v is not ComponentStatus.OPERATIONAL}
    worst = worst_status(affected.values()) or worst_status(components.values())
    names = component_names(catalog, affected or components)
    if worst is None or not names:
        return "Service disruption" if severity in ("P1", "P2") else "Degraded service"
    what = {
        ComponentStatus.MAJOR_OUTAGE: "Outage",
        ComponentStatus.PARTIAL_OUTAGE: "Partial outage",
        ComponentStatus.DEGRADED_PERFORMANCE: "Degraded performance",
        ComponentStatus.UNDER_MAINTENANCE: "Maintenance",
        ComponentStatus.OPERATIONAL: "Service disruption",
    }[worst]
    return f"{what} affecting {in_words(names)}"


def in_words(names: Sequence[str]) -> str:
    """`API`, `API and Website`, `API, Website and Checkout`."""
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


# --- scheduled maintenance ---------------------------------------------------------------------


WINDOW_NAME = rules.TextRule(
    "name", 200, one_line=True, blank="a maintenance window needs a name customers understand"
)
WINDOW_MESSAGE = rules.TextRule(
    "message", 5000, blank="say what will happen and what customers will notice"
)
WINDOW_UPDATE = rules.TextRule("message", 5000, blank="an update needs a message")


class MaintenanceStatus(StrEnum):
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    VERIFYING = "verifying"
    COMPLETED = "completed"

    @classmethod
    def parse(cls, text: str, *, where: str = "status") -> MaintenanceStatus:
        try:
            return cls(text.strip().lower())
        except ValueError:
            raise InvalidValue(
                where,
                f"unknown maintenance status {text!r}; use one of "
                + ", ".join(s.value for s in cls),
            ) from None


@dataclass(frozen=True)
class MaintenanceUpdate:
    at: datetime
    status: MaintenanceStatus
    body: str
    id: int | None = None


MAX_MAINTENANCE = timedelta(days=7)


@dataclass
class Maintenance:
    """A scheduled maintenance window. Its status follows the clock (scheduled, then in
    progress from `scheduled_for`, then completed at `scheduled_until`) unless someone set
    it (verifying, or completed early)."""

    name: str
    scheduled_for: datetime
    scheduled_until: datetime
    components: tuple[str, ...]
    created_at: datetime
    created_by: str
    id: int | None = None
    set_status: MaintenanceStatus | None = None  # what a person set, overriding the clock
    updated_at: datetime | None = None
    updates: list[MaintenanceUpdate] = field(default_factory=list)

    @classmethod
    def schedule(
        cls,
        *,
        name: str,
        message: str,
        scheduled_for: datetime,
        scheduled_until: datetime,
        components: Sequence[str],
        catalog: Catalog,
        at: datetime,
        by: str,
    ) -> Maintenance:
        name = WINDOW_NAME.check(name)
        message = WINDOW_MESSAGE.check(message)
        for instant, where in (
            (scheduled_for, "scheduled_for"),
            (scheduled_until, "scheduled_until"),
        ):
            if instant.tzinfo is None:
                raise InvalidValue(where, "give a time zone (e.g. 2026-11-24T02:00:00Z)")
        if scheduled_until <= scheduled_for:
            raise InvalidValue("scheduled_until", "the window must end after it starts")
        if scheduled_until - scheduled_for > MAX_MAINTENANCE:
            raise InvalidValue("scheduled_until", "a maintenance window lasts at most 7 days")
        if scheduled_until <= at:
            raise InvalidValue(
                "scheduled_until", "the window is already over; schedule a future one"
            )
        ids = list(dict.fromkeys(c.strip() for c in components))
        for i, component_id in enumerate(ids):
            catalog.require(component_id, where=f"components[{i}]")
        window = cls(
            name=name,
            scheduled_for=scheduled_for,
            scheduled_until=scheduled_until,
            components=tuple(ids),
            created_at=at,
            created_by=by,
            updated_at=at,
        )
        window.updates.append(MaintenanceUpdate(at=at, status=window.status_at(at), body=message))
        return window

    def status_at(self, now: datetime) -> MaintenanceStatus:
        if self.set_status is MaintenanceStatus.COMPLETED:
            return MaintenanceStatus.COMPLETED
        if now >= self.scheduled_until:
            return MaintenanceStatus.COMPLETED
        if now < self.scheduled_for:
            return MaintenanceStatus.SCHEDULED
        return self.set_status or MaintenanceStatus.IN_PROGRESS

    def is_active(self, now: datetime) -> bool:
        return self.status_at(now) in (MaintenanceStatus.IN_PROGRESS, MaintenanceStatus.VERIFYING)

    def post_update(
        self, *, message: str, at: datetime, status: MaintenanceStatus | None = None
    ) -> MaintenanceUpdate:
        current = self.status_at(at)
        if current is MaintenanceStatus.COMPLETED:
            raise IllegalTransition(f"maintenance {self.id} is completed; schedule a new one")
        message = WINDOW_UPDATE.check(message)
        if status is not None:
            if status is MaintenanceStatus.SCHEDULED and current is not MaintenanceStatus.SCHEDULED:
                raise IllegalTransition("the window has started; it cannot go back to scheduled")
            if status is MaintenanceStatus.VERIFYING and current is MaintenanceStatus.SCHEDULED:
                raise IllegalTransition("the window has not started; nothing to verify yet")
            if status is MaintenanceStatus.IN_PROGRESS and current is MaintenanceStatus.SCHEDULED:
                # Started early: the window begins now.
                self.scheduled_for = at
            if status in (MaintenanceStatus.VERIFYING, MaintenanceStatus.COMPLETED):
                self.set_status = status
            if status is MaintenanceStatus.IN_PROGRESS:
                self.set_status = None
        self.updated_at = at
        update = MaintenanceUpdate(at=at, status=self.status_at(at), body=message)
        self.updates.append(update)
        return update


# --- uptime -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusSpan:
    """A component in one status from `start` until `end` (None: still so)."""

    component: str
    status: ComponentStatus
    start: datetime
    end: datetime | None


@dataclass(frozen=True)
class DayUptime:
    day: date
    uptime: float  # 0..1
    worst: ComponentStatus  # the worst status seen that day (operational when none)
    downtime_seconds: float  # weighted
    major_seconds: float
    partial_seconds: float
    degraded_seconds: float


def spans_from_changes(
    changes: Sequence[tuple[datetime, Mapping[str, ComponentStatus]]], ended_at: datetime | None
) -> list[StatusSpan]:
    """One incident's component spans, from its changes in time order; everything it
    named ends when it is resolved (`ended_at`)."""
    spans: list[StatusSpan] = []
    open_since: dict[str, tuple[ComponentStatus, datetime]] = {}
    for at, statuses in sorted(changes, key=lambda c: c[0]):
        if ended_at is not None and at >= ended_at:
            break
        for component, status in statuses.items():
            previous = open_since.pop(component, None)
            if previous is not None and previous[1] < at:
                spans.append(StatusSpan(component, previous[0], previous[1], at))
            open_since[component] = (status, at)
    for component, (status, since) in open_since.items():
        if ended_at is None or since < ended_at:
            spans.append(StatusSpan(component, status, since, ended_at))
    return [s for s in spans if s.status is not ComponentStatus.OPERATIONAL]


def daily_uptime(
    spans: Iterable[StatusSpan], *, today: date, days: int = 90, now: datetime
) -> list[DayUptime]:
    """Uptime per UTC day for the last `days` days up to `today`, oldest first.

    Overlapping spans (two incidents on one component) count once, at the worse status.
    Today counts only up to `now`.
    """
    first = today - timedelta(days=days - 1)
    window_start = datetime.combine(first, time(), UTC)
    clipped: list[tuple[datetime, datetime, ComponentStatus]] = []
    for span in spans:
        start = max(span.start, window_start)
        end = min(span.end or now, now)
        if end > start:
            clipped.append((start, end, span.status))
    result: list[DayUptime] = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        day_start = datetime.combine(day, time(), UTC)
        day_end = min(day_start + timedelta(days=1), max(now, day_start))
        pieces = [
            (max(s, day_start), min(e, day_end), st)
            for s, e, st in clipped
            if s < day_end and e > day_start
        ]
        if not pieces:  # most days: nothing happened (and the page rebuilds often)
            result.append(DayUptime(day, 1.0, ComponentStatus.OPERATIONAL, 0.0, 0.0, 0.0, 0.0))
            continue
        seconds = {s: 0.0 for s in ComponentStatus}
        # Sweep the day's boundaries; each slice counts at its worst status.
        cuts = sorted({day_start, day_end, *(p[0] for p in pieces), *(p[1] for p in pieces)})
        worst = ComponentStatus.OPERATIONAL
        for a, b in pairwise(cuts):
            live = [st for s, e, st in pieces if s <= a and e >= b]
            if not live:
                continue
            status = max(live, key=lambda st: st.rank)
            seconds[status] += (b - a).total_seconds()
            if status.rank > worst.rank:
                worst = status
        length = (day_end - day_start).total_seconds()
        downtime = sum(seconds[s] * s.downtime_weight for s in ComponentStatus)
        result.append(
            DayUptime(
                day=day,
                uptime=1.0 if length <= 0 else max(0.0, 1.0 - downtime / length),
                worst=worst,
                downtime_seconds=downtime,
                major_seconds=seconds[ComponentStatus.MAJOR_OUTAGE],
                partial_seconds=seconds[ComponentStatus.PARTIAL_OUTAGE],
                degraded_seconds=seconds[ComponentStatus.DEGRADED_PERFORMANCE],
            )
        )
    return result


def overall_uptime(days: Sequence[DayUptime], *, now: datetime) -> float:
    """The uptime over the whole period, weighted by each day's counted length."""
    total = 0.0
    down = 0.0
    for d in days:
        start = datetime.combine(d.day, time(), UTC)
        length = max(0.0, min((now - start).total_seconds(), 86400.0))
        total += length
        down += d.downtime_seconds
    return 1.0 if total <= 0 else max(0.0, 1.0 - down / total)
