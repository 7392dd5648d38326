"""The incident lifecycle: legal transitions succeed, illegal ones are refused with a reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from incident.domain.errors import IllegalTransition, InvalidValue
from incident.domain.incident import (
    Cancellation,
    Category,
    CustomerUpdatePosted,
    DuplicateMerged,
    Incident,
    IncidentCancelled,
    Role,
    Severity,
    Status,
    StatusChanged,
    war_room_name,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def declared(severity: Severity = Severity.P1) -> Incident:
    incident = Incident.declare(title="Checkout API down", severity=severity, at=T0, by="dana")
    incident.id = 7
    return incident


def test_lifecycle_from_declaration_to_closure() -> None:
    incident = declared()
    incident.acknowledge(at=T0 + timedelta(minutes=3), by="sam")
    incident.assign(Role.COMMANDER, "dana", at=T0, by="dana")
    events = incident.post_customer_update(
        message="Investigating", status=Status.IDENTIFIED, at=T0 + timedelta(minutes=20), by="dana"
    )
    assert [type(e) for e in events] == [StatusChanged, CustomerUpdatePosted]
    assert incident.last_customer_update_at == T0 + timedelta(minutes=20)
    incident.resolve(
        summary="Rolled back", at=T0 + timedelta(hours=5), by="dana", rca_within=timedelta(hours=48)
    )
    assert incident.rca_due_at == T0 + timedelta(hours=53)
    incident.complete_rca(link="https://wiki/rca/7", at=T0 + timedelta(hours=30), by="dana")
    assert incident.status is Status.CLOSED
    assert incident.commander == "dana"


@pytest.mark.parametrize(
    ("prepare", "attempt", "reason"),
    [
        ("closed", lambda i: i.resolve(summary="x", at=T0, by="a"), "closed incident cannot"),
        ("resolved", lambda i: i.resolve(summary="x", at=T0, by="a"), "already resolved"),
        ("resolved", lambda i: i.acknowledge(at=T0, by="a"), "it is resolved"),
        ("open", lambda i: i.complete_rca(link="l", at=T0, by="a"), "resolve it before"),
        ("acked", lambda i: i.acknowledge(at=T0, by="b"), "already acknowledged"),
        ("open", lambda i: i.change_status(Status.RESOLVED, at=T0, by="a"), "use resolve"),
        ("open", lambda i: i.change_severity(Severity.P1, at=T0, by="a"), "already P1"),
        ("closed", lambda i: i.add_note(text="x", at=T0, by="a"), "closed"),
    ],
)
def test_illegal_transitions_are_refused_with_a_reason(
    prepare: str, attempt: object, reason: str
) -> None:
    incident = declared()
    if prepare == "acked":
        incident.acknowledge(at=T0, by="a")
    if prepare in ("resolved", "closed"):
        incident.resolve(summary="x", at=T0, by="a")
    if prepare == "closed":
        incident.complete_rca(link="https://wiki.example.com/rca/1", at=T0, by="a")
    before = (incident.status, incident.acknowledged_by, incident.severity)
    with pytest.raises(IllegalTransition, match=reason):
        attempt(incident)  # type: ignore[operator]
    assert (incident.status, incident.acknowledged_by, incident.severity) == before


@pytest.mark.parametrize("text", ["P5", "critical", "", "p0"])
def test_unknown_severity_is_refused(text: str) -> None:
    with pytest.raises(InvalidValue, match="unknown severity"):
        Severity.parse(text)


def test_severity_parse_accepts_lower_case() -> None:
    assert Severity.parse(" p2 ") is Severity.P2


@pytest.mark.parametrize(("title", "message"), [("  ", "needs a title"), ("x" * 201, "under 200")])
def test_bad_titles_are_refused(title: str, message: str) -> None:
    with pytest.raises(InvalidValue, match=message):
        Incident.declare(title=title, severity=Severity.P1, at=T0, by="a")


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Incident.declare(title="x", severity=Severity.P1, at=datetime(2026, 1, 1), by="a")  # noqa: DTZ001


def test_war_room_names_are_deterministic_and_channel_safe() -> None:
    incident = declared()
    assert war_room_name(incident) == "inc-7-checkout-api-down"
    incident.title = "Ünïcode!! and  $pecial -- chars " * 3
    name = war_room_name(incident)
    assert name == war_room_name(incident)
    assert len(name) <= 80 and not name.endswith("-")


def test_components_change_only_what_differs_and_only_while_open() -> None:
    from incident.domain.incident import ComponentsChanged
    from incident.domain.status_page import ComponentStatus

    incident = declared()
    first = incident.set_components(
        {"api": ComponentStatus.MAJOR_OUTAGE, "web": ComponentStatus.DEGRADED_PERFORMANCE},
        at=T0,
        by="dana",
    )
    assert isinstance(first, ComponentsChanged) and len(first.changes) == 2
    again = incident.set_components(
        {"api": ComponentStatus.MAJOR_OUTAGE, "web": ComponentStatus.OPERATIONAL},
        at=T0 + timedelta(minutes=5),
        by="dana",
    )
    assert again is not None and again.changes == (("web", ComponentStatus.OPERATIONAL),)
    assert incident.set_components({"api": ComponentStatus.MAJOR_OUTAGE}, at=T0, by="x") is None
    assert incident.components == {
        "api": ComponentStatus.MAJOR_OUTAGE,
        "web": ComponentStatus.OPERATIONAL,
    }
    incident.resolve(summary="Fixed", at=T0 + timedelta(hours=1), by="dana")
    with pytest.raises(IllegalTransition, match="resolved"):
        incident.set_components({"api": ComponentStatus.OPERATIONAL}, at=T0, by="dana")


def test_public_title_is_checked_and_kept_apart_from_the_title() -> None:
    incident = declared()
    incident.set_public_title("  Checkout problems  ", at=T0, by="dana")
    assert incident.public_title == "Checkout problems"
    assert incident.title == "Checkout API down"
    with pytest.raises(InvalidValue, match="public_title"):
        incident.set_public_title("   ", at=T0, by="dana")
    with pytest.raises(InvalidValue, match="under 200"):
        incident.set_public_title("x" * 201, at=T0, by="dana")


def test_customer_facing_text_with_control_characters_is_refused() -> None:
    incident = declared()
    with pytest.raises(InvalidValue, match="control characters"):
        incident.post_customer_update(message="bad\x00byte", at=T0, by="dana")
    with pytest.raises(InvalidValue, match="line breaks"):
        incident.set_public_title("two\nlines", at=T0, by="dana")
    assert incident.last_customer_update_at is None and incident.public_title is None
    events = incident.post_customer_update(message="Line one\n\tLine two", at=T0, by="dana")
    assert isinstance(events[-1], CustomerUpdatePosted)
    assert events[-1].message == "Line one\n\tLine two"


# --- the rest of the lifecycle: edit, cancel, merge, reopen ---------------------------------

M = timedelta(minutes=1)


def test_editing_changes_only_what_differs_and_says_from_what() -> None:
    incident = declared()
    event = incident.edit(at=T0 + M, by="sam", title="Checkout down", impact="EU card payments")
    assert event.changes == (
        ("title", "Checkout API down", "Checkout down"),
        ("impact", "", "EU card payments"),
    )
    assert incident.changed_at == T0 + M
    edited = incident.edit(
        at=T0 + 2 * M, by="sam", category=Category.SECURITY, title="Checkout down"
    )
    assert edited.changes == (("category", "general", "security"),)
    with pytest.raises(IllegalTransition, match="nothing to change"):
        incident.edit(at=T0 + 3 * M, by="sam", title="Checkout down")
    with pytest.raises(InvalidValue, match="title"):
        incident.edit(at=T0 + 3 * M, by="sam", title="x" * 201)
    with pytest.raises(InvalidValue, match="service"):
        incident.edit(at=T0 + 3 * M, by="sam", service="a\nb")


def test_cancelling_is_final_and_needs_an_open_incident() -> None:
    incident = declared()
    event = incident.cancel(Cancellation.FALSE_ALARM, at=T0 + M, by="dana", note="test alert")
    assert incident.status is Status.CANCELLED and incident.ended_at == T0 + M
    assert event.reason is Cancellation.FALSE_ALARM and incident.cancel_note == "test alert"
    for change in (
        lambda: incident.resolve(summary="x", at=T0 + 2 * M, by="dana"),
        lambda: incident.assign(Role.COMMANDER, "dana", at=T0 + 2 * M, by="dana"),
        lambda: incident.cancel(Cancellation.DECLINED, at=T0 + 2 * M, by="dana"),
        lambda: incident.acknowledge(at=T0 + 2 * M, by="dana"),
        lambda: incident.edit(at=T0 + 2 * M, by="dana", title="y"),
        lambda: incident.reopen(reason="x", at=T0 + 2 * M, by="dana"),
        lambda: incident.set_public_title("y", at=T0 + 2 * M, by="dana"),
    ):
        with pytest.raises(IllegalTransition):
            change()
    incident.add_note(text="noted after the fact", at=T0 + 3 * M, by="dana")  # still fine
    resolved = declared()
    resolved.resolve(summary="fixed", at=T0 + M, by="dana")
    with pytest.raises(IllegalTransition, match="cannot cancel"):
        resolved.cancel(Cancellation.FALSE_ALARM, at=T0 + 2 * M, by="dana")
    with pytest.raises(InvalidValue, match="merge"):
        declared().cancel(Cancellation.DUPLICATE, at=T0 + M, by="dana")


def test_merging_cancels_the_duplicate_and_the_other_takes_its_components() -> None:
    from incident.domain.status_page import ComponentStatus

    target, duplicate = declared(), declared(Severity.P2)
    duplicate.id = 8
    duplicate.components = {"api": ComponentStatus.MAJOR_OUTAGE}
    target.components = {"web": ComponentStatus.DEGRADED_PERFORMANCE}
    cancelled, merged = duplicate.merge_into(target, at=T0 + M, by="dana")
    assert duplicate.status is Status.CANCELLED and duplicate.merged_into == 7
    assert duplicate.cancellation is Cancellation.DUPLICATE
    assert target.components == {
        "web": ComponentStatus.DEGRADED_PERFORMANCE,
        "api": ComponentStatus.MAJOR_OUTAGE,
    }
    assert isinstance(merged, DuplicateMerged) and merged.components == ("api",)
    assert isinstance(cancelled, IncidentCancelled) and cancelled.merged_into == 7
    assert merged.duplicate_ref == "INC-8"
    with pytest.raises(InvalidValue, match="itself"):
        target.merge_into(target, at=T0 + M, by="dana")
    closed = declared()
    closed.id = 9
    closed.resolve(summary="x", at=T0, by="dana")
    closed.complete_rca(link="https://r", at=T0, by="dana")
    with pytest.raises(IllegalTransition, match="open or resolved"):
        declared().merge_into(closed, at=T0 + M, by="dana")


def test_reopening_clears_the_resolution_and_restarts_from_now() -> None:
    incident = declared()
    incident.resolve(summary="fixed", at=T0 + M, by="dana", rca_within=timedelta(hours=48))
    event = incident.reopen(
        reason="errors again", at=T0 + 2 * M, by="dana", status=Status.IDENTIFIED
    )
    assert event.status is Status.IDENTIFIED and incident.is_open
    assert incident.resolved_at is None and incident.rca_due_at is None
    assert incident.reopened_at == incident.changed_at == T0 + 2 * M
    with pytest.raises(IllegalTransition, match="only a resolved incident"):
        incident.reopen(reason="again", at=T0 + 3 * M, by="dana")
    incident.resolve(summary="fixed", at=T0 + 3 * M, by="dana")
    with pytest.raises(InvalidValue, match="reopen to"):
        incident.reopen(reason="x", at=T0 + 4 * M, by="dana", status=Status.RESOLVED)


def test_cancellation_reasons_parse_as_people_write_them() -> None:
    assert Cancellation.parse("false-alarm") is Cancellation.FALSE_ALARM
    assert Cancellation.parse(" Declined ") is Cancellation.DECLINED
    with pytest.raises(InvalidValue, match="false_alarm or declined"):
        Cancellation.parse("oops")


def test_a_commander_named_at_declaration_is_no_change_to_refresh() -> None:
    incident = Incident.declare(
        title="Checkout API down", severity=Severity.P1, at=T0, by="dana", commander="dana"
    )
    assert incident.commander == "dana" and incident.changed_at is None
