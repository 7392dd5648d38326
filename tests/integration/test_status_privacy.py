"""Only public information is public.

Two incidents full of internal data, one born from an Alertmanager notification (its
labels and annotations name a host, a customer and an address), one declared by hand with
an internal title, service and impact; internal notes with secrets; a commander and a comms
lead; the playbooks' steps run, the status page step's included; resolved with internal
summaries. Then every public endpoint (the page, each incident's page, the history, every
JSON document, both feeds) is read: none of the internal strings appears anywhere, and the
customer-facing updates do.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from incident.clock import FakeClock
from incident.config import ApiToken, Settings
from incident.domain.access import AccessRole
from incident.domain.status_page import Catalog, Component, ComponentGroup
from incident.testing import RecordingEffects
from incident.web.context import CONTAINER
from incident.web.public.routes import SNAPSHOT
from incident.web.public.statuspage_v2 import DOCUMENTS
from tests.serving import serving

ALERTS = Path(__file__).resolve().parent.parent / "fixtures" / "alerts"
TOKENS = {
    "alertmanager": ApiToken(token="m" * 24, role=AccessRole.RESPONDER, name="alertmanager"),
    "responder": ApiToken(token="r" * 24, role=AccessRole.RESPONDER, name="rob.oncall"),
    "commander": ApiToken(token="c" * 24, role=AccessRole.COMMANDER, name="cleo.ic"),
}
CATALOG = Catalog.build(
    [Component("api", "API", group="core"), Component("checkout", "Checkout")],
    [ComponentGroup("core", "Core services")],
)

# Nothing here may ever reach a public page.
INTERNAL = [
    "db-7.internal",
    "10.20.30.40",
    "cust-48213",
    "Globex",
    "dana@example.com",
    "Dana Whitfield",
    "ivan.comms@example.com",
    "rob.oncall",
    "cleo.ic",
    "alertmanager",
    "hunter2-secret",
    "pgbouncer",
    "PaymentsDbReplicationLag",
    "runbooks.example.com",
    "prometheus.example.com",
    "replication slot",
    "rolled back deploy 4417",
    "INCIDENT_API_TOKENS",
    "m" * 24,
    "c" * 24,
]
# What customers are told: it must be there.
CUSTOMER_FACING = [
    "Some card payments fail at checkout. We are working on it.",
    "Card payments work again for all customers.",
]


@pytest.fixture
async def client(
    settings: Settings, clock: FakeClock, vendor: RecordingEffects
) -> AsyncIterator[TestClient[Any, Any]]:
    configured = dataclasses.replace(
        settings,
        api_tokens=tuple(TOKENS.values()),
        catalog=CATALOG,
        status_page_name="Acme Status",
        base_url="https://status.acme.test",
        max_body_bytes=64 * 1024,
    )

    async with serving(configured, clock, vendor) as test_client:
        assert isinstance(test_client.server, TestServer)
        test_client.server.app[SNAPSHOT].min_interval = 0
        test_client.server.app[SNAPSHOT].spacing = 0
        yield test_client


async def call(
    client: TestClient[Any, Any], path: str, body: Any, who: str = "commander", method: str = "POST"
) -> Any:
    response = await client.request(
        method, path, json=body, headers={"Authorization": f"Bearer {TOKENS[who].token}"}
    )
    assert response.status in (200, 201), await response.text()
    return await response.json()


async def until(predicate: Callable[[], bool], within: float = 10.0) -> None:
    for _ in range(int(within / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


def alert_with_internal_data() -> dict[str, Any]:
    notification: dict[str, Any] = copy.deepcopy(
        json.loads((ALERTS / "alertmanager-firing.json").read_text())
    )
    labels = {
        "alertname": "PaymentsDbReplicationLag",
        "instance": "db-7.internal:5432",
        "job": "pgbouncer",
        "service": "checkout",
        "severity": "critical",
        "tier": "1",
        "customer": "cust-48213",
        "owner": "dana@example.com",
    }
    annotations = {
        "summary": "replication slot on db-7.internal lagging 900s for cust-48213 (Globex)",
        "description": "Primary 10.20.30.40 behind; page Dana Whitfield <dana@example.com>.",
        "runbook_url": "https://runbooks.example.com/payments-db",
    }
    for alert in notification["alerts"]:
        alert["labels"] = {**labels, "instance": alert["labels"]["instance"] + "-db-7.internal"}
        alert["annotations"] = annotations
    notification["commonLabels"] = labels
    notification["groupLabels"] = {"alertname": labels["alertname"], "service": "checkout"}
    notification["commonAnnotations"] = annotations
    notification["groupKey"] = '{}:{alertname="PaymentsDbReplicationLag"}'
    return notification


async def test_nothing_internal_reaches_any_public_endpoint(
    client: TestClient[Any, Any], clock: FakeClock, vendor: RecordingEffects
) -> None:
    assert isinstance(client.server, TestServer)
    app = client.server.app
    container = app[CONTAINER]

    async def later(minutes: int) -> None:
        """Let time pass, and the playbooks' steps due by then run."""
        clock.advance(timedelta(minutes=minutes))
        done = len(vendor.sends)
        container.runtime.plan_changed()
        await until(lambda: len(vendor.sends) > done)
        await asyncio.sleep(0.2)  # whatever else came due with them

    # 1. An alert full of internal labels opens an incident.
    born = await call(client, "/webhooks/alertmanager", alert_with_internal_data(), "alertmanager")
    alerted = born["incident"]["id"] if "incident" in born else born["incidents"][0]["id"]
    # 2. One declared by hand: internal title, service and impact.
    declared = (
        await call(
            client,
            "/api/v1/incidents",
            {
                "title": "db-7.internal down: cust-48213 (Globex) cannot pay, ask dana@example.com",
                "severity": "P1",
                "service": "pgbouncer on db-7.internal",
                "impact": "cust-48213 and 10.20.30.40 affected; Dana Whitfield on it",
                "components": {"checkout": "major_outage"},
            },
            "responder",
        )
    )["incident"]["id"]
    for incident_id in (alerted, declared):
        await call(
            client,
            f"/api/v1/incidents/{incident_id}/roles",
            {"role": "commander", "person": "dana@example.com"},
        )
        await call(
            client,
            f"/api/v1/incidents/{incident_id}/roles",
            {"role": "comms_lead", "person": "ivan.comms@example.com"},
        )
        await call(
            client,
            f"/api/v1/incidents/{incident_id}/notes",
            {"text": "root password hunter2-secret on db-7.internal; Globex escalated"},
            "responder",
        )
    await call(
        client,
        f"/api/v1/incidents/{alerted}/components",
        {"components": {"api": "partial_outage"}},
        method="PUT",
    )
    await until(lambda: any(s.port == "status_page" for s in vendor.sends))
    await later(10)  # customer notification
    await call(
        client,
        f"/api/v1/incidents/{declared}/updates",
        {"message": CUSTOMER_FACING[0], "status": "identified"},
    )
    await later(35)  # holding updates, reminders
    await call(
        client,
        f"/api/v1/incidents/{declared}/updates",
        {
            "message": CUSTOMER_FACING[1],
            "status": "monitoring",
            "components": {"checkout": "operational"},
        },
    )
    await later(60)  # executives are told: internal, never public
    for incident_id in (alerted, declared):
        await call(
            client,
            f"/api/v1/incidents/{incident_id}/resolve",
            {"summary": "rolled back deploy 4417 on db-7.internal; cust-48213 credited"},
        )
    await later(1)  # the resolution steps: status page, customers, executives
    published = [s for s in vendor.sends if s.port == "status_page"]
    assert len(published) >= 4  # investigating and resolved, for each incident
    await app[SNAPSHOT].rebuild()

    # Every public endpoint, whole.
    paths = [f"/api/v2/{d}" for d in DOCUMENTS] + [f"/status/api/v2/{d}" for d in DOCUMENTS]
    paths += ["/status", "/status/history", "/history.atom", "/history.rss"]
    paths += ["/status/history.atom", "/status/history.rss"]
    paths += [f"/status/incidents/{i}" for i in (alerted, declared)]
    bodies: dict[str, str] = {}
    for path in paths:
        response = await client.get(path)
        assert response.status == 200, path
        bodies[path] = await response.text()

    for path, body in bodies.items():
        leaked = [s for s in INTERNAL if s.lower() in body.lower()]
        assert not leaked, f"{path} shows {leaked}"
    # ... while what customers were told is there: on the page, in the API, in the feeds.
    for path in ("/status", "/api/v2/incidents.json", "/history.atom", "/history.rss"):
        for text in CUSTOMER_FACING:
            assert text in bodies[path].replace("&#39;", "'"), (path, text)
    incidents = json.loads(bodies["/api/v2/incidents.json"])["incidents"]
    assert {i["id"] for i in incidents} == {str(alerted), str(declared)}
    # Names customers see: made from the components, never the internal titles.
    assert {i["name"] for i in incidents} == {
        "Partial outage affecting API",
        "Outage affecting Checkout",
    }
    assert all(i["status"] == "resolved" for i in incidents)
