"""The service over real HTTP on a loopback port, wired with a fake clock and recording
vendors: what the integration tests talk to."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from incident import bootstrap
from incident.adapters.files.templates import JinjaRenderer
from incident.clock import Clock, FakeClock
from incident.config import Settings
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
