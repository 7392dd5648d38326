"""The service over real HTTP on a loopback port, wired with a fake clock and recording
vendors: what the integration tests talk to."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from incident import bootstrap
from incident.adapters.files.templates import JinjaRenderer
from incident.clock import Clock, FakeClock
from incident.config import Settings
from incident.domain.records import OccurrenceState
from incident.services.incidents import Runtime
from incident.testing import RecordingEffects
from incident.web.app import Builder, create_app
from incident.web.metrics import Metrics


def builder(clock: Clock, vendor: RecordingEffects) -> Builder:
    """How `create_app` wires the engine for a test: this clock (fake, or the system's for
    a test against a real outside program), these vendors."""

    async def build(settings: Settings, metrics: Metrics) -> bootstrap.Container:
        return await bootstrap.build(
            settings,
            clock=clock,
            effects=vendor.effects(JinjaRenderer(settings.comms_dir)),
            on_step=metrics.step_finished,
        )

    return build


@asynccontextmanager
async def serving(
    settings: Settings, clock: FakeClock, vendor: RecordingEffects
) -> AsyncIterator[TestClient[Any, Any]]:
    app = create_app(settings, build=builder(clock, vendor))
    async with TestClient(TestServer(app)) as client:
        yield client


async def steps_caught_up(
    rt: Runtime, incident_ids: Sequence[int], *, within: float = 30.0
) -> None:
    """Wait until no step of these incidents is running or due now: the engine has run
    what came due, so a view taken next does not change under the test. (A running
    occurrence's run_at is its lease's end: running is never caught up.)"""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        now = rt.clock.now()
        upcoming = await rt.store.read(lambda tx: tx.upcoming_of(list(incident_ids)))
        left = [
            f"INC-{o.subject.id} {o.step_id}"
            for steps in upcoming.values()
            for o in steps
            if o.state is OccurrenceState.RUNNING
            or (o.state is OccurrenceState.PENDING and o.run_at <= now)
        ]
        if not left:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"steps still running or due after {within} s: {left}")
        await asyncio.sleep(0.05)
