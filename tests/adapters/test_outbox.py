"""The built-in outbox keeps messages about any kind of subject, each with its subject, on
SQLite and on PostgreSQL: the incidents' views show incidents' messages only."""

from __future__ import annotations

import pytest

from incident import bootstrap
from incident.clock import FakeClock
from incident.config import Settings
from incident.domain.incident import Incident, Severity, war_room_name
from incident.domain.records import SubjectRef
from incident.services.incidents import declare_incident
from incident.services.ports import Topic


@pytest.fixture
def settings(settings_on_both: Settings) -> Settings:
    return settings_on_both


async def incident_3(app: bootstrap.Container) -> Incident:
    for title in ("one", "two", "three"):
        incident, _ = await declare_incident(
            app.runtime, title=title, severity=Severity.P2, by="dana"
        )
    assert incident.id == 3
    return incident


async def test_a_message_about_a_case_is_kept_as_the_cases_not_among_an_incidents_of_its_number(
    app: bootstrap.Container, clock: FakeClock
) -> None:
    outbox, incident = app.outbox, await incident_3(app)
    case = Topic(SubjectRef("case", 3), clock.now(), "CASE-3")
    destinations = ["email:someone@example.com", "chat:war-room"]
    await outbox.notify(
        incident=incident,
        audience="executives",
        destinations=destinations,
        subject="INC-3 P2",
        body="Checkout is down.",
        key="inc-3/notify/1",
    )
    for _ in range(2):  # a retried step: kept once
        await outbox.send(
            about=case,
            audience="customer",
            destinations=destinations,
            subject="CASE-3",
            body="We are on it.",
            key="case-3/acknowledge/1",
        )
    about_case = await outbox.messages_about(case.subject)
    assert [(m.subject_kind, m.subject_id, m.channel, m.destination) for m in about_case] == [
        ("case", 3, "email", "email:someone@example.com"),
        ("case", 3, "chat", "chat:war-room"),  # as named: only incidents have war rooms
    ]
    assert [m.body for m in about_case] == ["We are on it."] * 2
    incidents = await outbox.messages(incident_id=3)
    assert [(m.incident_id, m.destination) for m in incidents] == [
        (3, "email:someone@example.com"),
        (3, f"chat:#{war_room_name(incident)}"),
    ]
    assert await outbox.messages() == incidents  # every incident's: none of the case's
    assert await outbox.messages_about(SubjectRef.incident(3)) == incidents
    assert await outbox.messages_about(case.subject, limit=1) == about_case[-1:]
    with pytest.raises(ValueError, match="a message about a case has no incident"):
        _ = about_case[0].incident_id
