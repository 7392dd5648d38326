"""The public status page in HTML: the page itself, the incident history and one page per
incident or maintenance window. Server-rendered (templates/public/), no JavaScript, styles
inlined so one request draws the page.

Only `PublicStatus` goes in, so only public facts come out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache, lru_cache
from typing import Any

from markupsafe import Markup, escape

from incident.domain.status_page import (
    DOWNTIME_WEIGHT,
    ComponentStatus,
    DayUptime,
    Indicator,
    MaintenanceStatus,
)
from incident.services.status_page import (
    ComponentView,
    GroupView,
    PublicIncident,
    PublicMaintenance,
    PublicStatus,
)
from incident.web.html import STATIC_DIR, duration, environment
from incident.web.public.statuspage_v2 import PageInfo

PAST_DAYS = 7  # the front page lists the past incidents of this many days, today included
PHONE_DAYS = 30  # a phone's narrow screen shows this many of the 90 uptime bars

Item = PublicIncident | PublicMaintenance


@cache
def _stylesheet() -> Markup:
    # Inlined: a visitor's first view needs one request, however many arrive at once.
    return Markup((STATIC_DIR / "status.css").read_text(encoding="utf-8"))


def index(page: PageInfo, status: PublicStatus) -> bytes:
    today = status.generated_at.date()
    days = [today - timedelta(days=n) for n in range(PAST_DAYS)]
    past: dict[date, list[Item]] = {d: [] for d in days}
    for item in _past(status):
        day = item.created_at.date()
        if day in past:
            past[day].append(item)
    return _render(
        "public/index.html.j2",
        page,
        status,
        past=[(d, past[d]) for d in days],
        upcoming=status.upcoming_maintenances,
        active_maintenances=status.active_maintenances,
    )


def history(page: PageInfo, status: PublicStatus) -> bytes:
    months: dict[tuple[int, int], list[Item]] = {}
    for item in _past(status):
        months.setdefault((item.created_at.year, item.created_at.month), []).append(item)
    return _render(
        "public/history.html.j2",
        page,
        status,
        months=[(date(y, m, 1), items) for (y, m), items in months.items()],
    )


def item_page(page: PageInfo, status: PublicStatus, item_id: str) -> bytes | None:
    """One incident's or maintenance window's page; None for an id the page does not hold."""
    found = next((i for i in status.incidents if i.id == item_id), None) or next(
        (m for m in status.maintenances if m.id == item_id), None
    )
    if found is None:
        return None
    return _render("public/item.html.j2", page, status, item=found)


def not_found(page: PageInfo, status: PublicStatus) -> bytes:
    return _render("public/not_found.html.j2", page, status)


def _past(status: PublicStatus) -> list[Item]:
    """Resolved incidents and completed windows, newest first."""
    items: list[Item] = [*status.resolved]
    items += [m for m in status.maintenances if m.status is MaintenanceStatus.COMPLETED]
    return sorted(items, key=lambda i: (i.created_at, i.id), reverse=True)


def _render(template: str, page: PageInfo, status: PublicStatus, **context: Any) -> bytes:
    html = (
        environment()
        .get_template(template)
        .render(
            page=page,
            status=status,
            fragment=lambda macro, item: fragment(macro, page, item),
            **_helpers(),
            **context,
        )
    )
    return html.encode("utf-8")


def _helpers() -> dict[str, Any]:
    """What every public template may call."""
    return {
        "css": _stylesheet(),
        "bars": bars,
        "percent": percent,
        "words": words,
        "day_words": day_words,
        "long_date": long_date,
        "impact_words": impact_words,
        "is_group": is_group,
        "is_maintenance": is_maintenance,
        "phone_days": PHONE_DAYS,
        "partial_weight": int(DOWNTIME_WEIGHT[ComponentStatus.PARTIAL_OUTAGE] * 100),
    }


# Enough for every incident a storm puts on the front page; each is a kilobyte or two.
FRAGMENTS_KEPT = 4096


@lru_cache(maxsize=FRAGMENTS_KEPT)
def fragment(macro: str, page: PageInfo, item: Item) -> Markup:
    """One incident's (or window's) block on the front page: the macro `macro` of
    macros.html.j2, made once per version of the item and kept. An alert storm puts
    hundreds of incidents on the page, and the page is rebuilt at each change of any of
    them: the others' HTML is taken from here instead of being rendered again."""
    return Markup(getattr(_macros(page), macro)(item))


@lru_cache(maxsize=8)
def _macros(page: PageInfo) -> Any:
    """macros.html.j2 as a module, made once per page (its macros read `page` and the
    helpers): importing it for each block would run the whole file each time."""
    return (
        environment()
        .get_template("public/macros.html.j2")
        .make_module(vars={"page": page, **_helpers()})
    )


def is_group(row: object) -> bool:
    return isinstance(row, GroupView)


def is_maintenance(item: object) -> bool:
    return isinstance(item, PublicMaintenance)


# --- what templates call -------------------------------------------------------------------


def words(status: ComponentStatus | MaintenanceStatus | str) -> str:
    """A status as people say it: `Partial outage`, `In progress`, `Investigating`."""
    return str(status).replace("_", " ").capitalize()


def impact_words(impact: Indicator) -> str:
    return {
        Indicator.NONE: "No impact",
        Indicator.MINOR: "Minor impact",
        Indicator.MAJOR: "Major impact",
        Indicator.CRITICAL: "Critical impact",
        Indicator.MAINTENANCE: "Maintenance",
    }[impact]


def percent(value: float) -> str:
    """Rounded down, so any downtime at all shows as less than 100 %."""
    if value >= 1.0:
        return "100%"
    return f"{math.floor(value * 10000) / 100:.2f}%"


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def day_words(day: DayUptime) -> str:
    """One bar's text: the date, how long each kind of trouble lasted, the day's uptime."""
    label = f"{day.day.day} {_MONTHS[day.day.month - 1]} {day.day.year}"
    troubles = [
        (ComponentStatus.MAJOR_OUTAGE, day.major_seconds),
        (ComponentStatus.PARTIAL_OUTAGE, day.partial_seconds),
        (ComponentStatus.DEGRADED_PERFORMANCE, day.degraded_seconds),
    ]
    said = [f"{words(s).lower()} {duration(timedelta(seconds=t))}" for s, t in troubles if t > 0]
    if not said:
        if day.worst is ComponentStatus.UNDER_MAINTENANCE:
            return f"{label}: maintenance, no downtime"
        return f"{label}: no downtime recorded"
    return f"{label}: {', '.join(said)}; {percent(day.uptime)} uptime"


@dataclass(frozen=True)
class Bars:
    days: Sequence[DayUptime]
    summary: str  # for screen readers: the bars' meaning in one sentence
    troubled: Sequence[DayUptime]  # the days with anything to say, newest first

    @property
    def html(self) -> Markup:
        """The bars themselves, one per day, each titled with its day in words."""
        return _bars_html(tuple(self.days))


@lru_cache(maxsize=256)
def _bars_html(days: tuple[DayUptime, ...]) -> Markup:
    # Made here, not in the template, and kept: 90 bars a component are the page's biggest
    # loop, and during an incident the page is rebuilt at every update while most
    # components' bars stay as they were.
    return Markup(
        "".join(
            f'<span class="d-{d.worst.value}" title="{escape(day_words(d))}"></span>' for d in days
        )
    )


def bars(view: ComponentView) -> Bars:
    days = view.uptime_days
    counts = {
        s: sum(1 for d in days if d.worst is s)
        for s in (
            ComponentStatus.MAJOR_OUTAGE,
            ComponentStatus.PARTIAL_OUTAGE,
            ComponentStatus.DEGRADED_PERFORMANCE,
        )
    }
    told = [
        f"{n} {'day' if n == 1 else 'days'} with {words(s).lower()}" for s, n in counts.items() if n
    ]
    summary = f"{percent(view.uptime)} uptime over the last {len(days)} days"
    summary += ": " + ", ".join(told) + "." if told else ", no incidents."
    troubled = [d for d in reversed(days) if d.worst is not ComponentStatus.OPERATIONAL]
    return Bars(days=days, summary=summary, troubled=troubled)


def long_date(value: date) -> str:
    """`2 March 2026`."""
    return f"{value.day} {value:%B %Y}"
