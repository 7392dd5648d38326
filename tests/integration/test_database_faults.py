"""The service over real HTTP when things go wrong: its database fails (SQLite refusing
writes, or interrupting every statement, as with a full disk), and requests for files that
are not there to be served."""

from __future__ import annotations

import dataclasses
import shutil
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from incident.bootstrap import Container
from incident.clock import FakeClock
from incident.config import PROJECT_ROOT, ApiToken, Settings
from incident.domain.access import AccessRole
from incident.testing import RecordingEffects
from incident.web.context import CONTAINER
from tests.serving import serving

TOKEN = ApiToken(token="r" * 24, role=AccessRole.RESPONDER, name="rob")
HEADERS = {"Authorization": f"Bearer {TOKEN.token}"}
Client = TestClient[Any, Any]


@pytest.fixture
async def client(
    settings: Settings, clock: FakeClock, vendor: RecordingEffects
) -> AsyncIterator[Client]:
    configured = dataclasses.replace(settings, api_tokens=(TOKEN,))
    async with serving(configured, clock, vendor) as test_client:
        yield test_client


def container(client: Client) -> Container:
    server = client.server
    assert isinstance(server, TestServer)
    return server.app[CONTAINER]


async def database_fault(app: Container) -> threading.Event:
    """While set, SQLite interrupts every statement on the engine's own connections (the
    writer's and the reader's)."""
    failing = threading.Event()

    def install(session: Any) -> None:
        driver = session.connection().connection.driver_connection
        driver.set_progress_handler(lambda: 1 if failing.is_set() else 0, 1)

    await app.database.run(install)
    await app.database.read(install)
    return failing


async def writes_refused(app: Container, *, refused: bool) -> None:
    """SQLite refuses every write on the engine's own connection (an authorizer denying
    inserts, updates and deletes) while reads still work, as on a full disk."""
    writes = (sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE)

    def deny_writes(action: int, *_: object) -> int:
        return sqlite3.SQLITE_DENY if action in writes else sqlite3.SQLITE_OK

    def install(session: Any) -> None:
        driver = session.connection().connection.driver_connection
        driver.set_authorizer(deny_writes if refused else None)

    await app.database.run(install)


async def test_readiness_fails_while_the_database_takes_no_writes(client: Client) -> None:
    ready = await client.get("/readyz")
    assert ready.status == 200 and (await ready.json())["ready"] is True
    await writes_refused(container(client), refused=True)
    try:
        # Reads still work: the incident list answers, yet nothing can be recorded.
        listed = await client.get("/api/v1/incidents", headers=HEADERS)
        assert listed.status == 200
        down = await client.get("/readyz")
        assert down.status == 503
        assert (await down.json())["problems"] == ["database does not take writes: DatabaseError"]
    finally:
        await writes_refused(container(client), refused=False)
    again = await client.get("/readyz")
    assert again.status == 200


async def test_a_committed_declaration_is_answered_even_if_reading_it_back_fails(
    client: Client,
) -> None:
    app = container(client)
    failing = await database_fault(app)

    def committed_then_failing() -> None:
        # Called right after the declaration's commit: from now on, reads fail too.
        failing.set()

    app.runtime.plan_changed.subscribe(committed_then_failing)
    try:
        response = await client.post(
            "/api/v1/incidents", json={"title": "Checkout down", "severity": "P1"}, headers=HEADERS
        )
    finally:
        failing.clear()
        app.runtime.plan_changed.unsubscribe(committed_then_failing)
    assert response.status == 201, await response.text()
    body = await response.json()
    assert body["created"] is True and body["incident"]["ref"] == "INC-1"
    assert "page-oncall-tier3" in {u["step_id"] for u in body["upcoming"]}
    stored = await client.get("/api/v1/incidents/1", headers=HEADERS)
    assert stored.status == 200  # it was committed, once
    listed = await (await client.get("/api/v1/incidents", headers=HEADERS)).json()
    assert len(listed["incidents"]) == 1


# --- runbooks: only the folder's own Markdown files -------------------------------------


async def test_runbooks_are_only_the_folders_own_markdown_files(
    settings: Settings, clock: FakeClock, vendor: RecordingEffects, tmp_path: Path
) -> None:
    runbooks = tmp_path / "runbooks"
    shutil.copytree(PROJECT_ROOT / "runbooks", runbooks)  # the playbooks link to them
    (runbooks / "paging.md").write_text("# Paging\n", encoding="utf-8")
    secret = tmp_path / "secret.md"
    secret.write_text("password=hunter2\n", encoding="utf-8")
    (runbooks / "escape.md").symlink_to(secret)
    (runbooks / "sub").mkdir()
    (runbooks / "sub" / "inner.md").write_text("# inner\n", encoding="utf-8")
    configured = dataclasses.replace(settings, runbooks_dir=runbooks)
    async with serving(configured, clock, vendor) as client:
        ok = await client.get("/runbooks/paging.md")
        assert ok.status == 200 and ok.content_type == "text/markdown"
        assert await ok.text() == "# Paging\n"
        for name in (
            "escape.md",  # a link out of the folder
            "x" * 256 + ".md",  # longer than a file name may be
            "sub%2Finner.md",
            "..%2Fsecret.md",
            ".hidden.md",
            "paging.txt",
            "nope.md",
        ):
            response = await client.get(f"/runbooks/{name}")
            assert response.status == 404, name
            body = await response.json()
            assert body["error"] == "not found" and "hunter2" not in str(body)
