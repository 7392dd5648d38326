"""A real Prometheus Alertmanager delivers to the service, and the right incident results.

Runs the Debian package's binary (`prometheus-alertmanager`, installed by `.ci/run`) on a
free loopback port with its own storage, clustering off, a webhook receiver pointing at
the service with a bearer token, and a 1-second group_wait / group_interval. Alerts go in
through Alertmanager's own API (`POST /api/v2/alerts`). In CI (CI=true) the test must run:
a missing binary fails it. Elsewhere it is skipped, saying why, when the binary is absent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from aiohttp import web

from incident.clock import SystemClock
from incident.config import ApiToken, Settings
from incident.domain.access import AccessRole
from incident.testing import RecordingEffects
from incident.web.app import create_app
from tests.served_process import free_port
from tests.serving import builder

BINARY = "prometheus-alertmanager"
TOKEN = "alertmanager-token-0123456789"
WAIT = 15.0  # seconds for a delivery (group_wait is 1 s)
T = TypeVar("T")


def alertmanager_binary() -> str:
    found = shutil.which(BINARY) or shutil.which("alertmanager")
    if found:
        return found
    why = (
        f"{BINARY} is not installed (apt-get install prometheus-alertmanager; .ci/run does "
        "this in CI)"
    )
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI must run the real Alertmanager test: {why}")
    print(f"skipping: {why}")
    pytest.skip(why)


@dataclasses.dataclass
class Service:
    url: str
    vendor: RecordingEffects


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[Service]:
    """The app on a real loopback port, the real clock and scheduler, recording vendors."""
    clock = SystemClock()
    vendor = RecordingEffects(clock=clock)
    port = free_port()
    configured = dataclasses.replace(
        settings,
        api_tokens=(ApiToken(token=TOKEN, role=AccessRole.RESPONDER, name="alertmanager"),),
        base_url=f"http://127.0.0.1:{port}",
    )

    runner = web.AppRunner(create_app(configured, build=builder(clock, vendor)))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield Service(f"http://127.0.0.1:{port}", vendor)
    finally:
        await runner.cleanup()


@pytest.fixture
async def alertmanager(service: Service, tmp_path: Path) -> AsyncIterator[str]:
    binary = alertmanager_binary()
    port = free_port()
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        f"""
route:
  receiver: incident
  group_by: [alertname, service]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: incident
    webhook_configs:
      - url: {service.url}/webhooks/alertmanager
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: {TOKEN}
"""
    )
    log = tmp_path / "alertmanager.log"
    with log.open("w") as output:
        process = await asyncio.create_subprocess_exec(
            binary,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",  # no clustering: no gossip port, no peers
            "--log.level=info",
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as http:

            async def ready() -> bool:
                if process.returncode is not None:
                    raise AssertionError(f"alertmanager exited:\n{log.read_text()[-3000:]}")
                try:
                    return (await http.get(f"{url}/-/ready")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(ready, within=10, what="alertmanager ready")
        yield url
    finally:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout=10)
        except TimeoutError:
            process.kill()
            await process.wait()
        print(f"alertmanager log:\n{log.read_text()[-3000:]}")


async def eventually(
    check: Callable[[], Awaitable[T | bool | None]], *, within: float = WAIT, what: str
) -> T:
    """Poll `check` until it returns something truthy (bounded)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        result = await check()
        if result:
            return result  # type: ignore[return-value]
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {within:.0f} s waiting for {what}")


def alert(instance: str, *, ends: datetime | None = None) -> dict[str, Any]:
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "labels": {
            "alertname": "CheckoutDown",
            "service": "checkout",
            "severity": "critical",
            "tier": "1",
            "instance": instance,
        },
        "annotations": {"summary": "checkout is not answering"},
        "startsAt": (now - timedelta(minutes=1)).isoformat(),
        "generatorURL": "http://prometheus.example.com/graph?g0.expr=up%3D%3D0",
    }
    if ends is not None:
        body["endsAt"] = ends.isoformat()
    return body


async def test_alertmanager_delivers_and_the_right_incident_results(
    service: Service, alertmanager: str
) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(timeout=5) as http:

        async def incidents() -> list[dict[str, Any]]:
            response = await http.get(f"{service.url}/api/v1/incidents", headers=headers)
            assert response.status_code == 200, response.text
            found: list[dict[str, Any]] = response.json()["incidents"]
            return found

        async def timeline(incident_id: int) -> list[dict[str, Any]]:
            response = await http.get(
                f"{service.url}/api/v1/incidents/{incident_id}", headers=headers
            )
            assert response.status_code == 200, response.text
            entries: list[dict[str, Any]] = response.json()["timeline"]
            return entries

        posted = await http.post(f"{alertmanager}/api/v2/alerts", json=[alert("web-1:8080")])
        assert posted.status_code == 200, posted.text

        found = await eventually(incidents, what="the incident from Alertmanager's delivery")
        assert len(found) == 1
        incident = found[0]
        # critical on a tier-1 service: P1 by the default routing rules
        assert incident["severity"] == "P1"
        assert incident["service"] == "checkout"
        assert incident["title"] == "CheckoutDown on checkout: checkout is not answering"
        assert incident["declared_by"] == "alertmanager"
        page = f"inc-{incident['id']}/page-oncall-tier3/1"

        async def paged() -> bool:
            return page in [s.key for s in service.vendor.sends]

        await eventually(paged, what=f"the page {page}")

        # A second alert of the same group joins the same incident.
        posted = await http.post(f"{alertmanager}/api/v2/alerts", json=[alert("web-2:8080")])
        assert posted.status_code == 200, posted.text

        async def joined() -> list[dict[str, Any]]:
            return [
                e
                for e in await timeline(incident["id"])
                if e["kind"] == "alert_firing" and "web-2:8080" in e["text"]
            ]

        entry = (await eventually(joined, what="the second alert on the timeline"))[0]
        assert entry["text"].startswith("1 alert firing (alertmanager): CheckoutDown")
        assert [i["id"] for i in await incidents()] == [incident["id"]]

        # Both resolve: recorded, and a P1 stays open for a person to resolve.
        ended = datetime.now(UTC)
        posted = await http.post(
            f"{alertmanager}/api/v2/alerts",
            json=[alert("web-1:8080", ends=ended), alert("web-2:8080", ends=ended)],
        )
        assert posted.status_code == 200, posted.text

        async def all_resolved() -> bool:
            return any(e["kind"] == "alerts_all_resolved" for e in await timeline(incident["id"]))

        await eventually(all_resolved, what="the group's resolution on the timeline")
        (still,) = await incidents()
        assert still["status"] == "investigating"
        pages = [s for s in service.vendor.sends if s.key == page]
        assert len(pages) == 1
