"""Vendor references survive a rebuild and keep the first id stored."""

from __future__ import annotations

from incident.adapters.database.vendor_refs import VendorRefs
from incident.clock import FakeClock
from incident.domain.incident import Severity
from incident.services import incidents as uc
from tests.conftest import Build


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
