"""The public status page's domain and read model: statuses and indicators, the component
catalog (and its configuration), maintenance windows over time, uptime arithmetic, and
what `build_public_status` makes of incidents and windows. Pure: no database, no clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from incident.config import load_settings
from incident.domain.errors import IllegalTransition, InvalidValue
from incident.domain.incident import Incident, Severity, Status
from incident.domain.records import TimelineEntry
from incident.domain.status_page import (
    DESCRIPTIONS,
    Catalog,
    Component,
    ComponentGroup,
    ComponentStatus,
    Indicator,
    Maintenance,
    MaintenanceStatus,
    StatusSpan,
    daily_uptime,
    in_words,
    incident_impact,
    overall,
    overall_uptime,
    public_title,
    spans_from_changes,
)
from incident.services.incidents import timeline_entry
from incident.services.status_page import UPTIME_DAYS, build_public_status

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)

OPERATIONAL = ComponentStatus.OPERATIONAL
MAINTENANCE = ComponentStatus.UNDER_MAINTENANCE
DEGRADED = ComponentStatus.DEGRADED_PERFORMANCE
PARTIAL = ComponentStatus.PARTIAL_OUTAGE
MAJOR = ComponentStatus.MAJOR_OUTAGE

CATALOG = Catalog.build(
    [
        Component("api", "API", "The REST API", group="core"),
        Component("web", "Website", group="core"),
        Component("checkout", "Checkout"),
    ],
    [ComponentGroup("core", "Core services")],
)


# --- statuses, indicators and words --------------------------------------------------------


def test_component_status_parses_loosely_and_refuses_unknown_words_naming_the_choices() -> None:
    assert ComponentStatus.parse(" Partial_Outage ") is PARTIAL
    with pytest.raises(InvalidValue) as refused:
        ComponentStatus.parse("down", where="components.api")
    assert refused.value.field == "components.api"
    assert "major_outage" in refused.value.message and "'down'" in refused.value.message


@pytest.mark.parametrize(
    ("status", "label", "weight"),
    [
        (OPERATIONAL, "Operational", 0.0),
        (MAINTENANCE, "Under maintenance", 0.0),
        (DEGRADED, "Degraded performance", 0.0),
        (PARTIAL, "Partial outage", 0.3),
        (MAJOR, "Major outage", 1.0),
    ],
)
def test_every_status_has_words_and_a_downtime_weight(
    status: ComponentStatus, label: str, weight: float
) -> None:
    assert status.label == label
    assert status.downtime_weight == weight


@pytest.mark.parametrize(
    ("statuses", "impacts", "indicator", "description"),
    [
        ([], [], Indicator.NONE, "All Systems Operational"),
        ([OPERATIONAL, OPERATIONAL], [], Indicator.NONE, "All Systems Operational"),
        ([MAINTENANCE], [], Indicator.MAINTENANCE, "Service Under Maintenance"),
        ([DEGRADED, MAINTENANCE], [], Indicator.MINOR, "Minor Service Outage"),
        ([PARTIAL, DEGRADED], [], Indicator.MAJOR, "Partial System Outage"),
        ([MAJOR, PARTIAL], [], Indicator.CRITICAL, "Major System Outage"),
        # An unresolved incident that names no component still shows on the banner.
        ([OPERATIONAL], [Indicator.MAJOR], Indicator.MAJOR, "Partial System Outage"),
        ([MAJOR], [Indicator.MINOR], Indicator.CRITICAL, "Major System Outage"),
    ],
)
def test_the_page_indicator_is_the_worst_of_components_and_open_incidents(
    statuses: list[ComponentStatus],
    impacts: list[Indicator],
    indicator: Indicator,
    description: str,
) -> None:
    assert overall(statuses, impacts) == (indicator, description)
    assert DESCRIPTIONS[indicator] == description


@pytest.mark.parametrize(
    ("severity", "components", "impact"),
    [
        ("P1", {}, Indicator.CRITICAL),
        ("P2", {}, Indicator.MAJOR),
        ("P3", {}, Indicator.MINOR),
        ("P4", {}, Indicator.NONE),
        # Named components decide, whatever the severity.
        ("P1", {"api": DEGRADED}, Indicator.MINOR),
        ("P4", {"api": MAJOR, "web": DEGRADED}, Indicator.CRITICAL),
        ("P2", {"api": PARTIAL}, Indicator.MAJOR),
        # Maintenance is not an incident impact.
        ("P2", {"api": MAINTENANCE}, Indicator.NONE),
        ("P1", {"api": OPERATIONAL}, Indicator.NONE),
    ],
)
def test_incident_impact(
    severity: str, components: dict[str, ComponentStatus], impact: Indicator
) -> None:
    assert incident_impact(severity, components) is impact


@pytest.mark.parametrize(
    ("severity", "components", "title"),
    [
        ("P1", {}, "Service disruption"),
        ("P3", {}, "Degraded service"),
        ("P1", {"api": MAJOR}, "Outage affecting API"),
        ("P2", {"api": PARTIAL, "web": OPERATIONAL}, "Partial outage affecting API"),
        (
            "P3",
            {"web": DEGRADED, "api": DEGRADED},
            "Degraded performance affecting Website and API",
        ),
        ("P2", {"api": OPERATIONAL}, "Service disruption affecting API"),
        ("P2", {"unknown": MAJOR}, "Service disruption"),
    ],
)
def test_public_title_names_components_never_the_internal_title(
    severity: str, components: dict[str, ComponentStatus], title: str
) -> None:
    assert public_title(CATALOG, severity, components) == title


@pytest.mark.parametrize(
    ("names", "words"),
    [([], ""), (["API"], "API"), (["API", "Web"], "API and Web"), (["A", "B", "C"], "A, B and C")],
)
def test_in_words(names: list[str], words: str) -> None:
    assert in_words(names) == words


# --- the catalog ---------------------------------------------------------------------------


def test_catalog_keeps_page_order_groups_and_lookups() -> None:
    assert [c.id for c in CATALOG.components] == ["api", "web", "checkout"]
    assert [c.id for c in CATALOG.in_group("core")] == ["api", "web"]
    assert CATALOG.require("web").name == "Website"
    assert CATALOG.check_statuses({"api": "major_outage"}) == {"api": MAJOR}


@pytest.mark.parametrize(
    ("components", "groups", "complaint"),
    [
        ([Component("API", "API")], [], "lower-case"),
        ([Component("api", "API"), Component("api", "Again")], [], "used twice"),
        ([Component("api", "  ")], [], "needs a name"),
        ([Component("api", "API", group="core")], [], "not defined"),
        ([Component("core", "API")], [ComponentGroup("core", "Core")], "used twice"),
        ([], [ComponentGroup("core", " ")], "needs a name"),
    ],
)
def test_catalog_refuses_bad_definitions(
    components: list[Component], groups: list[ComponentGroup], complaint: str
) -> None:
    with pytest.raises(InvalidValue) as refused:
        Catalog.build(components, groups)
    assert complaint in refused.value.message


def test_check_statuses_names_the_unknown_component_and_the_known_ones() -> None:
    with pytest.raises(InvalidValue) as refused:
        CATALOG.check_statuses({"db": "major_outage"})
    assert "'db'" in refused.value.message and "api, web, checkout" in refused.value.message
    with pytest.raises(InvalidValue) as refused:
        CATALOG.check_statuses({"api": "broken"})
    assert refused.value.field == "components.api"
    with pytest.raises(InvalidValue) as refused:
        Catalog().require("api")
    assert "none are configured" in refused.value.message


def test_components_from_the_environment() -> None:
    settings = load_settings(
        {"INCIDENT_COMPONENTS": "api:API, web:Website", "INCIDENT_STATUS_PAGE_NAME": "Acme"}
    )
    assert [(c.id, c.name, c.group) for c in settings.catalog.components] == [
        ("api", "API", None),
        ("web", "Website", None),
    ]
    assert settings.status_page_name == "Acme"
    assert load_settings({}).catalog.components == ()
    assert load_settings({}).status_page_name == "Service Status"


def test_components_and_groups_from_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "incident.yaml"
    config.write_text(
        "components:\n"
        "  - {id: api, name: API, description: Our REST API, group: core}\n"
        "  - {id: web, name: Website, group: core}\n"
        "  - {id: checkout, name: Checkout}\n"
        "component_groups:\n"
        "  - {id: core, name: Core services}\n"
    )
    catalog = load_settings({"INCIDENT_CONFIG_FILE": str(config)}).catalog
    assert [(c.id, c.group) for c in catalog.components] == [
        ("api", "core"),
        ("web", "core"),
        ("checkout", None),
    ]
    assert catalog.require("api").description == "Our REST API"
    assert [g.name for g in catalog.groups] == ["Core services"]
    config.write_text("components: [api:API, 'web:Web site']\n")
    catalog = load_settings({"INCIDENT_CONFIG_FILE": str(config)}).catalog
    assert [(c.id, c.name) for c in catalog.components] == [("api", "API"), ("web", "Web site")]


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("components:\n  - {id: api}\n", "needs an id and a name"),
        ("components:\n  - {id: api, name: API, colour: red}\n", "unknown keys"),
        ("components:\n  - {id: api, name: API, group: nope}\n", "not defined"),
        ("components: 12\n", "a list of components"),
    ],
)
def test_bad_component_configuration_names_the_file(
    tmp_path: Path, text: str, complaint: str
) -> None:
    config = tmp_path / "incident.yaml"
    config.write_text(text)
    with pytest.raises(InvalidValue) as refused:
        load_settings({"INCIDENT_CONFIG_FILE": str(config)})
    assert str(config) in refused.value.field
    assert complaint in refused.value.message


# --- maintenance windows -------------------------------------------------------------------


def window(
    start: datetime = T0 + DAY, length: timedelta = 2 * HOUR, at: datetime = T0
) -> Maintenance:
    return Maintenance.schedule(
        name="Database upgrade",
        message="The API will be read-only for up to 20 minutes.",
        scheduled_for=start,
        scheduled_until=start + length,
        components=["api", " api", "web"],
        catalog=CATALOG,
        at=at,
        by="dana",
    )


def test_a_scheduled_window_follows_the_clock() -> None:
    w = window()
    assert w.components == ("api", "web")  # repeats dropped
    assert [(u.status, u.body[:12]) for u in w.updates] == [
        (MaintenanceStatus.SCHEDULED, "The API will")
    ]
    start, end = w.scheduled_for, w.scheduled_until
    for instant, status, active in [
        (T0, MaintenanceStatus.SCHEDULED, False),
        (start - timedelta(seconds=1), MaintenanceStatus.SCHEDULED, False),
        (start, MaintenanceStatus.IN_PROGRESS, True),
        (end - timedelta(seconds=1), MaintenanceStatus.IN_PROGRESS, True),
        (end, MaintenanceStatus.COMPLETED, False),
    ]:
        assert (w.status_at(instant), w.is_active(instant)) == (status, active), instant


def test_a_window_scheduled_while_it_runs_starts_in_progress() -> None:
    w = window(start=T0 - HOUR, at=T0)
    assert w.updates[0].status is MaintenanceStatus.IN_PROGRESS


@pytest.mark.parametrize(
    ("changes", "field", "complaint"),
    [
        ({"name": " "}, "name", "needs a name"),
        ({"name": "x" * 201}, "name", "under 200"),
        ({"message": ""}, "message", "customers will notice"),
        ({"scheduled_for": datetime(2026, 3, 3, 2, 0)}, "scheduled_for", "time zone"),  # noqa: DTZ001
        ({"scheduled_until": T0 + DAY}, "scheduled_until", "end after it starts"),
        ({"scheduled_until": T0 + 9 * DAY}, "scheduled_until", "at most 7 days"),
        (
            {"scheduled_for": T0 - 3 * HOUR, "scheduled_until": T0 - HOUR},
            "scheduled_until",
            "already over",
        ),
        ({"components": ["db"]}, "components[0]", "unknown component"),
    ],
)
def test_scheduling_refuses_what_customers_could_not_use(
    changes: dict[str, object], field: str, complaint: str
) -> None:
    arguments: dict[str, object] = {
        "name": "Database upgrade",
        "message": "Read-only for 20 minutes.",
        "scheduled_for": T0 + DAY,
        "scheduled_until": T0 + DAY + HOUR,
        "components": ["api"],
        "catalog": CATALOG,
        "at": T0,
        "by": "dana",
        **changes,
    }
    with pytest.raises(InvalidValue) as refused:
        Maintenance.schedule(**arguments)  # type: ignore[arg-type]
    assert refused.value.field == field
    assert complaint in refused.value.message


def test_starting_early_moves_the_window_and_verifying_then_completing_ends_it() -> None:
    w = window()
    early = T0 + 2 * HOUR
    w.post_update(message="Starting now.", at=early, status=MaintenanceStatus.IN_PROGRESS)
    assert w.scheduled_for == early
    assert w.status_at(early) is MaintenanceStatus.IN_PROGRESS
    w.post_update(message="Checking.", at=early + HOUR, status=MaintenanceStatus.VERIFYING)
    assert w.status_at(early + HOUR) is MaintenanceStatus.VERIFYING
    assert w.is_active(early + HOUR)
    w.post_update(
        message="Back to work.", at=early + 2 * HOUR, status=MaintenanceStatus.IN_PROGRESS
    )
    assert w.status_at(early + 2 * HOUR) is MaintenanceStatus.IN_PROGRESS
    w.post_update(message="Done.", at=early + 3 * HOUR, status=MaintenanceStatus.COMPLETED)
    assert w.status_at(early + 3 * HOUR) is MaintenanceStatus.COMPLETED
    assert not w.is_active(early + 3 * HOUR)
    assert [u.status for u in w.updates] == [
        MaintenanceStatus.SCHEDULED,
        MaintenanceStatus.IN_PROGRESS,
        MaintenanceStatus.VERIFYING,
        MaintenanceStatus.IN_PROGRESS,
        MaintenanceStatus.COMPLETED,
    ]
    with pytest.raises(IllegalTransition, match="completed"):
        w.post_update(message="One more thing.", at=early + 4 * HOUR)


@pytest.mark.parametrize(
    ("at", "status", "complaint"),
    [
        (T0, MaintenanceStatus.VERIFYING, "not started"),
        (T0 + DAY + HOUR, MaintenanceStatus.SCHEDULED, "cannot go back"),
    ],
)
def test_updates_that_make_no_sense_are_refused(
    at: datetime, status: MaintenanceStatus, complaint: str
) -> None:
    w = window()
    with pytest.raises(IllegalTransition, match=complaint):
        w.post_update(message="Hmm.", at=at, status=status)
    with pytest.raises(InvalidValue):
        w.post_update(message="  ", at=at)


def test_a_window_ends_by_the_clock_even_while_verifying() -> None:
    w = window()
    during = w.scheduled_for + HOUR
    w.post_update(message="Checking.", at=during, status=MaintenanceStatus.VERIFYING)
    assert w.status_at(w.scheduled_until) is MaintenanceStatus.COMPLETED


# --- uptime --------------------------------------------------------------------------------


def test_spans_follow_changes_and_end_at_resolution() -> None:
    changes = [
        (T0 + HOUR, {"api": PARTIAL}),  # out of order on purpose: they are sorted
        (T0, {"api": MAJOR, "web": DEGRADED}),
        (T0 + 2 * HOUR, {"web": OPERATIONAL}),
        (T0 + 5 * HOUR, {"api": MAJOR}),  # after resolution: ignored
    ]
    spans = spans_from_changes(changes, ended_at=T0 + 3 * HOUR)
    assert sorted(spans, key=lambda s: (s.component, s.start)) == [
        StatusSpan("api", MAJOR, T0, T0 + HOUR),
        StatusSpan("api", PARTIAL, T0 + HOUR, T0 + 3 * HOUR),
        StatusSpan("web", DEGRADED, T0, T0 + 2 * HOUR),
    ]
    # Unresolved: the last status lasts until further notice.
    assert StatusSpan("api", MAJOR, T0 + 5 * HOUR, None) in spans_from_changes(changes, None)


def day_of(spans: list[StatusSpan], day: date, now: datetime) -> tuple[float, ComponentStatus]:
    days = daily_uptime(spans, today=now.date(), now=now)
    found = next(d for d in days if d.day == day)
    return found.uptime, found.worst


NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)  # midday: today counts 12 hours so far
YESTERDAY = datetime(2026, 3, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    ("spans", "uptime", "worst"),
    [
        ([], 1.0, OPERATIONAL),
        # A major outage of an hour is an hour of downtime.
        ([StatusSpan("api", MAJOR, YESTERDAY, YESTERDAY + HOUR)], 1 - 1 / 24, MAJOR),
        # A partial outage counts for 30% of its duration.
        ([StatusSpan("api", PARTIAL, YESTERDAY, YESTERDAY + HOUR)], 1 - 0.3 / 24, PARTIAL),
        # Degraded performance and maintenance show, but are not downtime.
        ([StatusSpan("api", DEGRADED, YESTERDAY, YESTERDAY + 5 * HOUR)], 1.0, DEGRADED),
        ([StatusSpan("api", MAINTENANCE, YESTERDAY, YESTERDAY + 5 * HOUR)], 1.0, MAINTENANCE),
        # Two incidents on one component at once count once, at the worse status.
        (
            [
                StatusSpan("api", PARTIAL, YESTERDAY, YESTERDAY + 2 * HOUR),
                StatusSpan("api", MAJOR, YESTERDAY + HOUR, YESTERDAY + 3 * HOUR),
            ],
            1 - (0.3 * 1 + 1.0 * 2) / 24,
            MAJOR,
        ),
        # A span crossing midnight counts on each day for its part: 3 hours yesterday.
        ([StatusSpan("api", MAJOR, YESTERDAY - HOUR, YESTERDAY + 3 * HOUR)], 1 - 3 / 24, MAJOR),
    ],
)
def test_daily_uptime_weighs_partial_outages_less_than_major_ones(
    spans: list[StatusSpan], uptime: float, worst: ComponentStatus
) -> None:
    got_uptime, got_worst = day_of(spans, YESTERDAY.date(), NOW)
    assert got_uptime == pytest.approx(uptime)
    assert got_worst is worst


def test_today_counts_only_up_to_now_and_an_open_span_lasts_until_now() -> None:
    spans = [StatusSpan("api", MAJOR, NOW - 3 * HOUR, None)]
    uptime, worst = day_of(spans, NOW.date(), NOW)
    assert uptime == pytest.approx(1 - 3 / 12)
    assert worst is MAJOR


def test_ninety_days_oldest_first_and_older_spans_are_ignored() -> None:
    old = StatusSpan("api", MAJOR, NOW - 200 * DAY, NOW - 100 * DAY)
    days = daily_uptime([old], today=NOW.date(), now=NOW)
    assert len(days) == UPTIME_DAYS == 90
    assert days[0].day == NOW.date() - 89 * DAY and days[-1].day == NOW.date()
    assert all(d.uptime == 1.0 for d in days)


def test_overall_uptime_weighs_days_by_their_counted_length() -> None:
    spans = [
        StatusSpan("api", MAJOR, YESTERDAY, YESTERDAY + 2 * HOUR),
        StatusSpan("api", PARTIAL, NOW - HOUR, NOW),
    ]
    days = daily_uptime(spans, today=NOW.date(), now=NOW)
    counted = 89 * 86400 + 12 * 3600
    expected = 1 - (2 * 3600 + 0.3 * 3600) / counted
    assert overall_uptime(days, now=NOW) == pytest.approx(expected)
    assert overall_uptime(daily_uptime([], today=NOW.date(), now=NOW), now=NOW) == 1.0


# --- the read model: build_public_status ---------------------------------------------------


def incident_with(
    incident_id: int,
    *,
    at: datetime,
    severity: Severity = Severity.P2,
    components: dict[str, ComponentStatus] | None = None,
    title: str = "db-7.internal is on fire",
) -> Incident:
    incident = Incident.declare(title=title, severity=severity, at=at, by="dana")
    incident.id = incident_id
    if components:
        incident.set_components(components, at=at, by="dana")
    return incident


def public_entries(incident: Incident) -> list[TimelineEntry]:
    return [e for e in (timeline_entry(ev) for ev in incident.events) if e.public]


def test_current_statuses_come_from_open_incidents_and_active_windows() -> None:
    now = T0 + 2 * HOUR
    open_one = incident_with(1, at=T0, components={"api": PARTIAL})
    open_one.post_customer_update(message="We are looking into errors.", at=T0, by="dana")
    resolved = incident_with(2, at=T0 - DAY, components={"checkout": MAJOR})
    resolved.post_customer_update(message="Checkout fails.", at=T0 - DAY, by="dana")
    resolved.resolve(summary="Rolled back deploy 42 on db-7", at=T0 - DAY + HOUR, by="dana")
    w = window(start=T0 + HOUR, at=T0)
    w.id = 7
    status = build_public_status(
        CATALOG,
        [(open_one, public_entries(open_one)), (resolved, public_entries(resolved))],
        [w],
        now=now,
    )
    by_id = {c.component.id: c for c in status.components}
    assert by_id["api"].status is PARTIAL  # partial beats maintenance
    assert by_id["web"].status is MAINTENANCE
    assert by_id["checkout"].status is OPERATIONAL  # its incident is resolved
    assert (status.indicator, status.description) == (Indicator.MAJOR, "Partial System Outage")
    (core,) = status.groups
    assert core.status is PARTIAL and [c.component.id for c in core.components] == ["api", "web"]
    assert [c.component.id for c in status.ungrouped] == ["checkout"]
    assert [i.id for i in status.unresolved] == ["1"] and [i.id for i in status.resolved] == ["2"]
    assert [m.id for m in status.active_maintenances] == ["m7"]
    # The resolved outage shows in checkout's bar for yesterday, and in its uptime.
    yesterday = by_id["checkout"].uptime_days[-2]
    assert yesterday.worst is MAJOR and yesterday.major_seconds == 3600
    assert by_id["checkout"].uptime < 1.0 and by_id["web"].uptime == 1.0
    # Time alone changes the page when the window ends (before midnight).
    assert status.stale_at == w.scheduled_until
    assert len(by_id["api"].uptime_days) == UPTIME_DAYS


def test_incidents_show_public_updates_newest_first_with_affected_components() -> None:
    incident = incident_with(3, at=T0, components={"api": MAJOR})
    incident.post_customer_update(message="We are investigating.", at=T0, by="dana")
    incident.set_components({"api": DEGRADED}, at=T0 + HOUR, by="dana")
    incident.post_customer_update(
        message="A fix is rolling out.", at=T0 + HOUR, by="dana", status=Status.MONITORING
    )
    incident.set_components({"api": OPERATIONAL}, at=T0 + 2 * HOUR, by="dana")
    incident.resolve(summary="db-7 replaced", at=T0 + 2 * HOUR, by="dana")
    (shown,) = build_public_status(
        CATALOG, [(incident, public_entries(incident))], [], now=T0 + 3 * HOUR
    ).incidents
    assert [(u.status, u.body) for u in shown.updates] == [
        ("resolved", "This incident has been resolved."),  # no public word: said plainly
        ("monitoring", "A fix is rolling out."),
        ("investigating", "We are investigating."),
    ]
    assert [(a.id, a.old_status, a.new_status) for a in shown.updates[1].affected] == [
        ("api", MAJOR, DEGRADED)
    ]
    assert [(a.id, a.old_status, a.new_status) for a in shown.updates[2].affected] == [
        ("api", OPERATIONAL, MAJOR)
    ]
    # Recovered, it keeps the name and impact it had at its worst; it no longer counts.
    assert shown.name == "Outage affecting API"
    assert shown.impact is Indicator.CRITICAL and shown.current_impact is Indicator.NONE
    assert shown.monitoring_at == T0 + HOUR and shown.resolved_at == T0 + 2 * HOUR
    assert shown.created_at == T0 and shown.updated_at == T0 + 2 * HOUR
    assert "db-7" not in repr(shown)


def test_a_public_title_wins_and_updates_at_one_instant_show_the_later_first() -> None:
    incident = incident_with(4, at=T0, severity=Severity.P1)
    incident.set_public_title("Login problems", at=T0, by="dana")
    incident.post_customer_update(message="first", at=T0, by="dana")
    incident.post_customer_update(message="second", at=T0, by="dana")
    (shown,) = build_public_status(
        CATALOG, [(incident, public_entries(incident))], [], now=T0
    ).incidents
    assert shown.name == "Login problems"
    assert [u.body for u in shown.updates] == ["second", "first"]
    # No components named: the severity sets the impact, and the banner counts it.
    status = build_public_status(CATALOG, [(incident, public_entries(incident))], [], now=T0)
    assert status.indicator is Indicator.CRITICAL


def test_maintenance_windows_say_when_they_started_and_ended() -> None:
    w = window(start=T0 + HOUR, at=T0)
    w.id = 1
    before = build_public_status(CATALOG, [], [w], now=T0).maintenances[0]
    assert before.status is MaintenanceStatus.SCHEDULED and before.started_at is None
    assert [u.status for u in before.updates] == [MaintenanceStatus.SCHEDULED]

    after = build_public_status(CATALOG, [], [w], now=w.scheduled_until + HOUR).maintenances[0]
    assert after.status is MaintenanceStatus.COMPLETED
    assert [u.status for u in after.updates] == [
        MaintenanceStatus.COMPLETED,
        MaintenanceStatus.IN_PROGRESS,
        MaintenanceStatus.SCHEDULED,
    ]
    assert after.started_at == w.scheduled_for and after.resolved_at == w.scheduled_until

    cancelled = window(start=T0 + DAY, at=T0)
    cancelled.id = 2
    cancelled.post_update(message="Not needed.", at=T0 + HOUR, status=MaintenanceStatus.COMPLETED)
    shown = build_public_status(CATALOG, [], [cancelled], now=T0 + 2 * DAY).maintenances[0]
    assert shown.started_at is None and shown.resolved_at == T0 + HOUR
    assert [u.status for u in shown.updates] == [
        MaintenanceStatus.COMPLETED,
        MaintenanceStatus.SCHEDULED,
    ]


def test_with_nothing_public_the_page_is_all_operational_until_midnight() -> None:
    status = build_public_status(CATALOG, [], [], now=T0)
    assert status.indicator is Indicator.NONE
    assert status.description == "All Systems Operational"
    assert status.stale_at == datetime(2026, 3, 3, tzinfo=UTC)
    assert all(c.uptime == 1.0 for c in status.components)
