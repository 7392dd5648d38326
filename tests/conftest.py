"""Shared fixtures: a real SQLite file per test (or a PostgreSQL database, for the tests
that run on both), a fake clock, recording effect ports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from incident import bootstrap
from incident.adapters.files.templates import JinjaRenderer
from incident.clock import FakeClock
from incident.config import PROJECT_ROOT, Settings
from incident.scheduler.retry import RetryPolicy
from incident.testing import RecordingEffects
from tests.postgres import drop_template, postgres_database

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'incident.db'}",
        playbooks_dir=PROJECT_ROOT / "playbooks",
        comms_dir=PROJECT_ROOT / "comms",
        runbooks_dir=PROJECT_ROOT / "runbooks",
    )


@pytest.fixture(params=["sqlite", "postgresql"])
async def settings_on_both(
    request: pytest.FixtureRequest, settings: Settings
) -> AsyncIterator[Settings]:
    """The settings, once on SQLite and once on a new, migrated PostgreSQL database. A test
    module runs on both by overriding `settings` with this."""
    if request.param == "sqlite":
        yield settings
        return
    async with postgres_database(migrated=True) as url:
        yield settings.with_database(url)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    drop_template()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def vendor(clock: FakeClock) -> RecordingEffects:
    return RecordingEffects(clock=clock)


Build = Callable[[], Awaitable[bootstrap.Container]]


@pytest.fixture
async def build(
    settings: Settings, clock: FakeClock, vendor: RecordingEffects
) -> AsyncIterator[Build]:
    """Build (or, after a simulated crash, rebuild) the service on the same database."""
    containers: list[bootstrap.Container] = []

    async def make() -> bootstrap.Container:
        container = await bootstrap.build(
            settings,
            clock=clock,
            effects=vendor.effects(JinjaRenderer(settings.comms_dir)),
            retry=RetryPolicy(max_attempts=3),
        )
        containers.append(container)
        return container

    yield make
    for container in containers:
        await container.close()


@pytest.fixture
async def app(build: Build) -> bootstrap.Container:
    return await build()
