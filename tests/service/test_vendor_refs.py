"""Vendor references survive a rebuild, keep the first id stored and belong to one subject,
on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest

from incident.adapters.database.vendor_refs import VendorRefs
from incident.clock import FakeClock
from incident.config import Settings
from incident.domain.incident import Severity
from incident.services import incidents as uc
from tests.conftest import Build


@pytest.fixture
def settings(settings_on_both: Settings) -> Settings:
    return settings_on_both


async def test_first_id_wins_and_survives_a_restart(build: Build, clock: FakeClock) -> None:
    app = await build()
    incident, _ = await uc.declare_incident(app.runtime, title="x", severity=Severity.P3, by="dana")
    assert incident.id is not None
    refs = VendorRefs(app.database, clock)
    assert await refs.find(incident.id, "statuspage", "incident") is None
    assert await refs.remember(incident.id, "statuspage", "incident", "sp-1") == "sp-1"
    # A retry that created a second one learns the first and can clean up after itself.
    assert await refs.remember(incident.id, "statuspage", "incident", "sp-2") == "sp-1"
    restarted = await build()
    again = VendorRefs(restarted.database, clock)
    assert await again.find(incident.id, "statuspage", "incident") == "sp-1"
    assert await again.find(incident.id, "slack", "channel") is None


async def test_an_incident_and_a_case_of_one_number_keep_their_own_references(
    build: Build, clock: FakeClock
) -> None:
    app = await build()
    refs = VendorRefs(app.database, clock)
    for title in ("one", "two", "three"):
        incident, _ = await uc.declare_incident(
            app.runtime, title=title, severity=Severity.P3, by="dana"
        )
    assert incident.id == 3
    assert await refs.remember(3, "smtp", "sent", "<incident@example.com>") == (
        "<incident@example.com>"
    )
    assert await refs.find(3, "smtp", "sent", kind="case") is None  # not the incident's
    assert await refs.remember(3, "smtp", "sent", "<case@example.com>", kind="case") == (
        "<case@example.com>"
    )
    assert await refs.find(3, "smtp", "sent") == "<incident@example.com>"
    assert await refs.find(3, "smtp", "sent", kind="case") == "<case@example.com>"
