"""Alert webhooks over real HTTP: the app on a loopback port, a real SQLite file, a fake
clock and recording vendors. Payloads are the fixtures in tests/fixtures/alerts/."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from incident.adapters.database.store import SqlTransaction
from incident.adapters.database.tables import AlertGroupRow, IncidentRow, TimelineRow
from incident.clock import FakeClock
from incident.config import ApiToken, Settings
from incident.domain.access import AccessRole
from incident.testing import RecordingEffects
from incident.web.context import CONTAINER
from tests.serving import serving

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "alerts"
AM = "/webhooks/alertmanager"
GRAFANA = "/webhooks/grafana"
TOKENS = {
    "alertmanager": ApiToken(token="m" * 24, role=AccessRole.RESPONDER, name="alertmanager"),
    "grafana": ApiToken(token="g" * 24, role=AccessRole.RESPONDER, name="grafana"),
    "viewer": ApiToken(token="v" * 24, role=AccessRole.VIEWER, name="vera"),
}


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return loaded


def auth(who: str = "alertmanager") -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[who].token}"}


@pytest.fixture
async def client(
    settings: Settings, clock: FakeClock, vendor: RecordingEffects
) -> AsyncIterator[TestClient[Any, Any]]:
    configured = dataclasses.replace(
        settings, api_tokens=tuple(TOKENS.values()), max_body_bytes=16 * 1024
    )

    async with serving(configured, clock, vendor) as test_client:
        yield test_client


async def post(
    client: TestClient[Any, Any], path: str, body: Any, who: str = "alertmanager"
) -> tuple[int, Any]:
    response = await client.post(path, json=body, headers=auth(who))
    return response.status, await response.json()


async def stored(client: TestClient[Any, Any]) -> tuple[int, int, int]:
    """(incidents, alert groups, timeline entries) in the database."""
    assert isinstance(client.server, TestServer)
    container = client.server.app[CONTAINER]

    def counts(tx: SqlTransaction) -> tuple[int, int, int]:
        def rows(table: Any) -> int:
            return int(tx.session.scalar(select(func.count()).select_from(table)) or 0)

        return rows(IncidentRow), rows(AlertGroupRow), rows(TimelineRow)

    return await container.store.run(counts)


async def until(predicate: Any, within: float = 5.0) -> None:
    for _ in range(int(within / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def show(client: TestClient[Any, Any], incident_id: int) -> Any:
    response = await client.get(f"/api/v1/incidents/{incident_id}", headers=auth("viewer"))
    assert response.status == 200
    return await response.json()


# --- Alertmanager --------------------------------------------------------------------------


async def test_alertmanager_group_declares_pages_and_then_updates_the_same_incident(
    client: TestClient[Any, Any], vendor: RecordingEffects, clock: FakeClock
) -> None:
    status, body = await post(client, AM, fixture("alertmanager-firing"))
    assert status == 200, body
    assert body["result"] == "created" and body["created"] is True
    incident = body["incident"]
    # critical without a tier label: the default rules make it P2
    assert (incident["severity"], incident["service"]) == ("P2", "checkout")
    assert incident["title"] == (
        "HighErrorRate on checkout: checkout-api 5xx ratio above 5% for 10m"
    )
    assert body["alerts"] == {
        "received": 2,
        "joined": 2,
        "firing_again": 0,
        "resolved": 0,
        "unchanged": 0,
    }
    assert body["recorded"] == ["declared", "alert_routed", "alert_firing"]
    assert body["group"] == {"source": "alertmanager", "generation": 1, "firing": True}
    await until(
        lambda: f"inc-{incident['id']}/page-oncall-tier2/1" in [s.key for s in vendor.sends]
    )

    detail = await show(client, incident["id"])
    assert detail["incident"]["declared_by"] == "alertmanager"
    assert any(s["step_id"] == "repage-oncall-tier2" for s in detail["upcoming"])

    # Alertmanager repeats the group: same incident, on its timeline
    status, again = await post(client, AM, fixture("alertmanager-firing"))
    assert status == 200 and again["result"] == "updated" and again["created"] is False
    assert again["incident"]["id"] == incident["id"]
    assert again["recorded"] == ["alert_repeated"]

    # one alert joins the group
    joined = fixture("alertmanager-firing")
    extra = copy.deepcopy(joined["alerts"][0])
    extra["labels"]["instance"] = "checkout-api-7d9f8b6c5-n4kd2:8080"
    extra["fingerprint"] = "0c1d2e3f40516273"
    joined["alerts"].append(extra)
    status, body = await post(client, AM, joined)
    assert status == 200 and body["alerts"]["joined"] == 1
    assert body["incident"]["id"] == incident["id"]

    # the group resolves: a P2 stays open for a person to resolve
    status, resolved = await post(client, AM, fixture("alertmanager-resolved"))
    assert status == 200, resolved
    assert resolved["result"] == "updated"
    assert resolved["recorded"] == ["alert_resolved", "alerts_all_resolved"]
    assert resolved["incident"]["status"] == "investigating"
    assert (await stored(client))[:2] == (1, 1)
    kinds = [e["kind"] for e in (await show(client, incident["id"]))["timeline"]]
    assert kinds.count("alert_firing") == 2 and "alert_resolved" in kinds


async def test_the_group_key_is_the_group(client: TestClient[Any, Any]) -> None:
    first = fixture("alertmanager-firing")
    other = fixture("alertmanager-firing")
    other["groupKey"] = '{}:{alertname="HighErrorRate", service="search"}'
    _, one = await post(client, AM, first)
    _, two = await post(client, AM, other)
    assert one["incident"]["id"] != two["incident"]["id"]
    assert (await stored(client))[:2] == (2, 2)


async def test_concurrent_deliveries_of_a_new_group_declare_once(
    client: TestClient[Any, Any],
) -> None:
    payload = fixture("alertmanager-firing")
    answers = await asyncio.gather(*(post(client, AM, payload) for _ in range(10)))
    assert {status for status, _ in answers} == {200}
    assert sorted(body["result"] for _, body in answers) == ["created"] + ["updated"] * 9
    assert len({body["incident"]["id"] for _, body in answers}) == 1
    assert (await stored(client))[:2] == (1, 1)


# --- Grafana -------------------------------------------------------------------------------


async def test_grafana_group_declares_and_its_resolution_resolves_a_p3(
    client: TestClient[Any, Any], clock: FakeClock
) -> None:
    status, body = await post(client, GRAFANA, fixture("grafana-firing"), who="grafana")
    assert status == 200, body
    incident = body["incident"]
    assert (incident["severity"], incident["service"]) == ("P3", "reports")
    assert incident["title"] == "DiskAlmostFull on reports: reports-db-1 data volume is 91% full"
    assert body["group"]["source"] == "grafana"

    resolved = fixture("grafana-firing")
    resolved["status"] = "resolved"
    resolved["alerts"][0]["status"] = "resolved"
    status, body = await post(client, GRAFANA, resolved, who="grafana")
    assert status == 200, body
    assert body["result"] == "resolved"
    assert body["incident"]["status"] == "resolved"
    detail = await show(client, incident["id"])
    assert "alert_routing.auto_resolve allows for P3" in detail["incident"]["resolution_summary"]
    kinds = [e["kind"] for e in detail["timeline"]]
    assert kinds.index("alert_resolved") < kinds.index("resolved")


async def test_grafana_without_a_group_key_groups_by_fingerprints(
    client: TestClient[Any, Any],
) -> None:
    payload = fixture("grafana-firing")
    del payload["groupKey"]
    _, one = await post(client, GRAFANA, payload, who="grafana")
    _, two = await post(client, GRAFANA, payload, who="grafana")
    assert one["result"] == "created" and two["result"] == "updated"
    assert one["incident"]["id"] == two["incident"]["id"]
    # an alert without a fingerprint gets one from its labels: still the same group
    payload["alerts"][0]["fingerprint"] = ""
    _, three = await post(client, GRAFANA, payload, who="grafana")
    assert three["result"] == "created"  # a different set of fingerprints is another group
    _, four = await post(client, GRAFANA, payload, who="grafana")
    assert four["incident"]["id"] == three["incident"]["id"]


# --- refusals ------------------------------------------------------------------------------


def _set(payload: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    *parents, last = path.split(".")
    target: Any = payload
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if value is _DELETE:
        del target[last]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return payload


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "field", "says"),
    [
        ("version", "3", "version", "whose version is '4'"),
        ("version", 4, "version", "whose version is '4'"),
        ("version", _DELETE, "version", "whose version is '4'"),
        ("groupKey", _DELETE, "groupKey", "Field required"),
        ("groupKey", "", "groupKey", "at least 1 character"),
        ("status", "pending", "status", "'firing' or 'resolved'"),
        ("alerts", [], "alerts", "at least 1 item"),
        ("alerts", "none", "alerts", "valid array"),
        ("alerts.0.labels.severity", 2, "alerts.0.labels.severity", "valid string"),
        ("alerts.0.labels", ["a"], "alerts.0.labels", "an object"),
        ("alerts.0.status", _DELETE, "alerts.0.status", "Field required"),
        ("alerts.0.annotations.summary", None, "alerts.0.annotations.summary", "valid string"),
        ("commonLabels", {"a": {"b": "c"}}, "commonLabels.a", "valid string"),
        ("truncatedAlerts", -1, "truncatedAlerts", "greater than or equal to 0"),
        ("truncatedAlerts", "0", "truncatedAlerts", "valid integer"),
    ],
)
async def test_invalid_alertmanager_payloads_are_422_and_store_nothing(
    client: TestClient[Any, Any], path: str, value: Any, field: str, says: str
) -> None:
    status, body = await post(client, AM, _set(fixture("alertmanager-firing"), path, value))
    assert status == 422, body
    assert body["error"] == "invalid value"
    problems = {p["field"]: p["problem"] for p in body["detail"]}
    assert field in problems, problems
    assert says in problems[field]
    assert await stored(client) == (0, 0, 0)


async def test_each_endpoint_takes_only_its_own_vendor_version(
    client: TestClient[Any, Any],
) -> None:
    status, body = await post(client, AM, fixture("grafana-firing"))
    assert status == 422
    assert "Alertmanager's webhook payload" in body["detail"][0]["problem"]
    status, body = await post(client, GRAFANA, fixture("alertmanager-firing"), who="grafana")
    assert status == 422
    assert "Grafana's webhook payload, whose version is '1'" in body["detail"][0]["problem"]
    assert await stored(client) == (0, 0, 0)


@pytest.mark.parametrize(
    ("data", "content_type", "status", "error"),
    [
        (b'{"version": "4", "alerts": [', "application/json", 400, "malformed JSON"),
        (b"", "application/json", 400, "bad request"),
        (b"   ", "application/json", 400, "bad request"),
        (b"\xff\xfe", "application/json", 400, "malformed JSON"),
        (b'{"version": "4", "groupKey": "\\ud800"}', "application/json", 400, "malformed JSON"),
        (b"[1, 2]", "application/json", 422, "invalid value"),
        (b"null", "application/json", 422, "invalid value"),
        (b"version=4", "application/x-www-form-urlencoded", 415, "unsupported media type"),
        (b'{"version": "4"}', "text/plain", 415, "unsupported media type"),
    ],
)
async def test_bodies_that_are_not_a_payload_are_refused(
    client: TestClient[Any, Any], data: bytes, content_type: str, status: int, error: str
) -> None:
    response = await client.post(AM, data=data, headers={**auth(), "Content-Type": content_type})
    assert response.status == status
    body = await response.json()
    assert body["error"] == error and body["detail"]
    assert await stored(client) == (0, 0, 0)


async def test_a_body_over_the_limit_is_413(client: TestClient[Any, Any]) -> None:
    payload = fixture("alertmanager-firing")
    payload["commonAnnotations"]["description"] = "x" * 20_000
    status, body = await post(client, AM, payload)
    assert status == 413 and "16384 bytes" in body["detail"]
    assert await stored(client) == (0, 0, 0)


async def test_tokens_are_required_and_viewers_may_not_declare(
    client: TestClient[Any, Any],
) -> None:
    payload = fixture("alertmanager-firing")
    anonymous = await client.post(AM, json=payload)
    assert anonymous.status == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in (await anonymous.json())["detail"]
    wrong = await client.post(AM, json=payload, headers={"Authorization": "Bearer " + "x" * 24})
    assert wrong.status == 401
    status, body = await post(client, GRAFANA, fixture("grafana-firing"), who="viewer")
    assert status == 403 and "responder or higher" in body["detail"]
    assert await stored(client) == (0, 0, 0)
    other = await client.get(AM, headers=auth())
    assert other.status == 405 and (await other.json())["error"]


async def test_metrics_count_notifications_by_source_and_result(
    client: TestClient[Any, Any],
) -> None:
    await post(client, AM, fixture("alertmanager-firing"))
    await post(client, AM, fixture("alertmanager-firing"))
    await post(client, AM, {"version": "4"})
    await client.post(AM, json=fixture("alertmanager-firing"))  # no token
    await post(client, GRAFANA, fixture("grafana-firing"), who="grafana")
    text = await (await client.get("/metrics")).text()
    for line in (
        'incident_alert_notifications_total{result="created",source="alertmanager"} 1.0',
        'incident_alert_notifications_total{result="updated",source="alertmanager"} 1.0',
        'incident_alert_notifications_total{result="rejected",source="alertmanager"} 2.0',
        'incident_alert_notifications_total{result="created",source="grafana"} 1.0',
    ):
        assert line in text, line
