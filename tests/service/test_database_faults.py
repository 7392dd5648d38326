"""The engine when its database stops working for a while (SQLite itself interrupting every
statement, as with a full disk), then works again. SQLite only: the fault is SQLite's own;
what the engine does about it is the same code on PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from typing import Any

import pytest

from incident.bootstrap import Container
from incident.clock import FakeClock
from incident.domain.incident import Severity
from incident.services import incidents as uc
from incident.testing import RecordingEffects
from tests.service.test_engine import declare, sends_of

M = timedelta(minutes=1)


# --- a database that stops taking writes, then takes them again -------------------------


async def _database_fault(app: Container) -> threading.Event:
    """While the returned event is set, every statement on the engine's own SQLite
    connections (the writer's and the reader's) is interrupted by SQLite itself (a progress
    handler): the database is unusable, as with a full disk, until the event is cleared."""
    failing = threading.Event()

    def install(session: Any) -> None:
        driver = session.connection().connection.driver_connection
        driver.set_progress_handler(lambda: 1 if failing.is_set() else 0, 1)

    await app.database.run(install)
    await app.database.read(install)
    return failing


async def test_a_step_whose_unit_failed_runs_as_soon_as_writes_work_again(
    app: Container, clock: FakeClock, vendor: RecordingEffects
) -> None:
    incident_id = await declare(app, Severity.P1)
    sending = asyncio.Event()
    release = asyncio.Event()

    def hold(key: str) -> asyncio.Event | None:
        if "/page-oncall-tier3/" in key and not sending.is_set():
            sending.set()
            return release
        return None

    vendor.hold_when = hold
    tick = asyncio.create_task(app.scheduler.tick(clock.now()))
    await asyncio.wait_for(sending.wait(), 5)
    failing = await _database_fault(app)
    failing.set()  # the page went out; recording it will fail
    release.set()
    with pytest.raises(Exception, match="interrupted"):
        await tick
    failing.clear()
    clock.advance(timedelta(seconds=1))  # far less than a lease
    await app.scheduler.tick(clock.now())
    view = await uc.get_incident(app.runtime, incident_id)
    (page,) = [o for o in view.history if o.step_id == "page-oncall-tier3"]
    assert page.state == "done"
    assert sends_of(vendor, "page-oncall-tier3") == [0 * M]  # the retry was the same page
