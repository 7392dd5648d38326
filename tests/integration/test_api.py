"""The REST API over real HTTP: the app on a loopback port, a real SQLite file, a fake clock
and recording vendors."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate

from incident.clock import FakeClock
from incident.config import ApiToken, Settings
from incident.domain.access import AccessRole
from incident.domain.status_page import Catalog, Component, ComponentGroup
from incident.services import incidents as uc
from incident.testing import RecordingEffects
from incident.web.context import CONTAINER
from tests.serving import serving

TOKENS = {
    "viewer": ApiToken(token="v" * 24, role=AccessRole.VIEWER, name="vera"),
    "responder": ApiToken(token="r" * 24, role=AccessRole.RESPONDER, name="rob"),
    "other": ApiToken(token="o" * 24, role=AccessRole.RESPONDER, name="olga"),
    "commander": ApiToken(token="c" * 24, role=AccessRole.COMMANDER, name="cleo"),
    "admin": ApiToken(token="a" * 24, role=AccessRole.ADMIN, name="ada"),
}


def auth(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[who].token}"}


CATALOG = Catalog.build(
    [
        Component("api", "API", group="core"),
        Component("web", "Website", group="core"),
        Component("email", "Email delivery"),
    ],
    [ComponentGroup("core", "Core services")],
)


@pytest.fixture
def api_settings(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings, api_tokens=tuple(TOKENS.values()), max_body_bytes=4096, catalog=CATALOG
    )


@pytest.fixture
async def client(
    api_settings: Settings, clock: FakeClock, vendor: RecordingEffects
) -> AsyncIterator[TestClient[Any, Any]]:
    async with serving(api_settings, clock, vendor) as test_client:
        yield test_client


async def declare(client: TestClient[Any, Any], who: str = "responder", **body: Any) -> Any:
    payload = {"title": "Checkout API down", "severity": "P1", "service": "checkout", **body}
    response = await client.post("/api/v1/incidents", json=payload, headers=auth(who))
    assert response.status == 201, await response.text()
    return await response.json()


async def until(predicate: Any, within: float = 5.0) -> None:
    for _ in range(int(within / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def count_incidents(client: TestClient[Any, Any]) -> int:
    response = await client.get("/api/v1/incidents", headers=auth("viewer"))
    return len((await response.json())["incidents"])


# --- declare, show, list -------------------------------------------------------------------


async def test_declare_starts_the_playbook_and_show_lists_upcoming_steps_with_due_times(
    client: TestClient[Any, Any], vendor: RecordingEffects, clock: FakeClock
) -> None:
    declared = await declare(client, impact="Payments fail for EU customers")
    incident = declared["incident"]
    assert declared["created"] is True
    assert incident["severity"] == "P1" and incident["status"] == "investigating"
    assert incident["declared_by"] == "rob"
    # The page is due at once: the running scheduler sends it.
    await until(lambda: any(s.port == "pager" for s in vendor.sends))
    page = next(s for s in vendor.sends if s.port == "pager")
    assert page.incident_id == incident["id"]

    response = await client.get(f"/api/v1/incidents/{incident['id']}", headers=auth("viewer"))
    assert response.status == 200
    detail = await response.json()
    upcoming = {step["step_id"]: step for step in detail["upcoming"]}
    assert "exec-escalation" in upcoming or any("exec" in s for s in upcoming)
    for step in detail["upcoming"]:
        assert step["due_at"].endswith(("Z", "+00:00"))
        assert step["state"] in ("pending", "running")
    # Customer updates every 30 minutes for a P1 are among the upcoming steps.
    dues = sorted(step["due_at"] for step in detail["upcoming"])
    assert dues == sorted(dues) and len(dues) >= 3
    kinds = [entry["kind"] for entry in detail["timeline"]]
    assert kinds[0] == "declared"


async def test_idempotency_key_returns_the_same_incident_and_pages_once(
    client: TestClient[Any, Any], vendor: RecordingEffects
) -> None:
    headers = {**auth("responder"), "Idempotency-Key": "alert-123"}
    body = {"title": "DB down", "severity": "P2"}
    first = await client.post("/api/v1/incidents", json=body, headers=headers)
    second = await client.post("/api/v1/incidents", json=body, headers=headers)
    assert (first.status, second.status) == (201, 200)
    one, two = await first.json(), await second.json()
    assert one["incident"]["id"] == two["incident"]["id"]
    assert (one["created"], two["created"]) == (True, False)
    await until(lambda: any(s.port == "pager" for s in vendor.sends))
    await asyncio.sleep(0.2)
    assert len([s for s in vendor.sends if s.port == "pager"]) == 1
    assert await count_incidents(client) == 1
    # Another caller's identical key is its own declaration.
    other = await client.post(
        "/api/v1/incidents", json=body, headers={**auth("other"), "Idempotency-Key": "alert-123"}
    )
    assert other.status == 201
    bad = await client.post(
        "/api/v1/incidents", json=body, headers={**auth("other"), "Idempotency-Key": "a b"}
    )
    assert bad.status == 400 and "Idempotency-Key" in (await bad.json())["detail"]


async def test_list_filters_by_status_and_severity(client: TestClient[Any, Any]) -> None:
    p1 = (await declare(client, severity="P1"))["incident"]
    p3 = (await declare(client, severity="P3", title="Slow search"))["incident"]
    await client.post(
        f"/api/v1/incidents/{p3['id']}/resolve",
        json={"summary": "cache warmed"},
        headers=auth("commander"),
    )

    async def ids(query: str) -> list[int]:
        response = await client.get(f"/api/v1/incidents{query}", headers=auth("viewer"))
        assert response.status == 200, await response.text()
        return [i["id"] for i in (await response.json())["incidents"]]

    assert await ids("") == [p3["id"], p1["id"]]
    assert await ids("?severity=P1") == [p1["id"]]
    assert await ids("?status=resolved") == [p3["id"]]
    assert await ids("?status=investigating,resolved&severity=P1&severity=P3") == [
        p3["id"],
        p1["id"],
    ]
    bad = await client.get("/api/v1/incidents?severity=P9", headers=auth("viewer"))
    assert bad.status == 422 and "P9" in (await bad.json())["detail"]
    unknown = await client.get("/api/v1/incidents?colour=red", headers=auth("viewer"))
    assert unknown.status == 422


# --- the lifecycle through the API ---------------------------------------------------------


async def test_every_change_through_the_api(client: TestClient[Any, Any], clock: FakeClock) -> None:
    incident = (await declare(client))["incident"]
    base = f"/api/v1/incidents/{incident['id']}"

    async def post(path: str, body: Any = None, who: str = "commander") -> Any:
        response = await client.post(base + path, json=body, headers=auth(who))
        assert response.status == 200, (path, await response.text())
        return await response.json()

    acked = await client.post(base + "/acknowledge", headers=auth("responder"))
    assert acked.status == 200
    assert (await acked.json())["incident"]["acknowledged_by"] == "rob"
    again = await client.post(base + "/acknowledge", headers=auth("responder"))
    assert again.status == 409 and "already acknowledged" in (await again.json())["detail"]

    updated = await post("/updates", {"message": "We found the cause", "status": "identified"})
    assert updated["incident"]["status"] == "identified"
    assert updated["incident"]["last_customer_update_at"] is not None
    await post("/notes", {"text": "rolled back deploy 42"}, who="responder")
    roles = await post("/roles", {"role": "commander", "person": "rob"})
    assert roles["incident"]["commander"] == "rob"

    pending = {s["step_id"]: s for s in roles["upcoming"]}
    step = "escalate-vp-clevel"  # the 4-hour executive escalation of a P1
    assert step in pending
    snoozed = await post(f"/steps/{step}/snooze", {"reason": "vendor call", "minutes": 15})
    moved = next(s for s in snoozed["upcoming"] if s["step_id"] == step)
    assert moved["runs_at"] > pending[step]["runs_at"]
    skipped = await post(f"/steps/{step}/skip", {"reason": "done by hand"})
    detail = await (await client.get(base, headers=auth("viewer"))).json()
    assert any(e["kind"] == "step_skipped" for e in detail["timeline"])
    assert skipped["incident"]["id"] == incident["id"]
    missing = await client.post(
        base + "/steps/no-such-step/skip", json={"reason": "x"}, headers=auth("commander")
    )
    assert missing.status == 404 and "upcoming steps" in (await missing.json())["detail"]

    resolved = await post("/resolve", {"summary": "Rolled back the bad deploy"}, who="responder")
    assert resolved["incident"]["status"] == "resolved"
    assert resolved["incident"]["rca_due_at"] is not None
    # The cadence stopped; the RCA deadline's reminders are planned.
    after = {s["step_id"] for s in resolved["upcoming"]}
    assert "customer-update" not in after and "escalate-vp-clevel" not in after
    assert any(step.startswith("rca") for step in after), after
    closed = await post("/rca", {"link": "https://wiki.example.com/rca/1"})
    assert closed["incident"]["status"] == "closed"
    late = await client.post(base + "/resolve", json={"summary": "x"}, headers=auth("admin"))
    assert late.status == 409


async def test_roles_too_low_are_refused_with_the_reason(client: TestClient[Any, Any]) -> None:
    incident = (await declare(client, severity="P2"))["incident"]
    base = f"/api/v1/incidents/{incident['id']}"
    assert (await client.get(base)).status == 401
    wrong = await client.get(base, headers={"Authorization": "Bearer " + "x" * 24})
    assert wrong.status == 401 and wrong.headers["WWW-Authenticate"].startswith("Bearer")
    viewer = await client.post(
        "/api/v1/incidents", json={"title": "x", "severity": "P1"}, headers=auth("viewer")
    )
    assert viewer.status == 403 and "viewer" in (await viewer.json())["detail"]

    resolve = await client.post(
        base + "/resolve", json={"summary": "fixed"}, headers=auth("responder")
    )
    assert resolve.status == 403
    detail = (await resolve.json())["detail"]
    assert "rob" in detail and "commander" in detail
    lower = await client.post(base + "/severity", json={"severity": "P3"}, headers=auth("other"))
    assert lower.status == 403
    raise_ = await client.post(base + "/severity", json={"severity": "P1"}, headers=auth("other"))
    assert raise_.status == 200 and (await raise_.json())["incident"]["severity"] == "P1"
    # Nothing changed by the refusals.
    detail_after = await (await client.get(base, headers=auth("viewer"))).json()
    assert detail_after["incident"]["status"] == "investigating"
    # The incident's own commander has commander rights on it, whatever the token's role.
    await client.post(
        base + "/roles", json={"role": "commander", "person": "rob"}, headers=auth("admin")
    )
    ok = await client.post(base + "/resolve", json={"summary": "fixed"}, headers=auth("responder"))
    assert ok.status == 200


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "status", "error"),
    [
        (b'{"title": "x", "severity": ', "application/json", 400, "malformed JSON"),
        (b"", "application/json", 400, "bad request"),
        (b'{"title": "x", "severity": "P9"}', "application/json", 422, "invalid value"),
        (b'{"title": 5, "severity": "P1"}', "application/json", 422, "invalid value"),
        (b'{"title": "x", "severity": "P1", "extra": 1}', "application/json", 422, "invalid value"),
        (b'{"title": "   ", "severity": "P1"}', "application/json", 422, "invalid value"),
        (b"[1, 2]", "application/json", 422, "invalid value"),
        (b'{"title": "x", "severity": "P1"}', "text/plain", 415, "unsupported media type"),
        (b'{"title": "' + b"x" * 5000 + b'", "severity": "P1"}', "application/json", 413, None),
    ],
)
async def test_bad_declarations_get_a_json_4xx_and_store_nothing(
    client: TestClient[Any, Any], body: bytes, content_type: str, status: int, error: str | None
) -> None:
    response = await client.post(
        "/api/v1/incidents",
        data=body,
        headers={**auth("responder"), "Content-Type": content_type},
    )
    assert response.status == status, await response.text()
    payload = await response.json()
    assert set(payload) == {"error", "detail"} and payload["detail"]
    if error:
        assert payload["error"] == error
    assert "Traceback" not in str(payload)
    assert await count_incidents(client) == 0


async def test_validation_errors_name_the_field(client: TestClient[Any, Any]) -> None:
    response = await client.post(
        "/api/v1/incidents", json={"severity": "P1"}, headers=auth("responder")
    )
    assert response.status == 422
    assert (await response.json())["detail"] == [{"field": "title", "problem": "Field required"}]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/v1/incidents/999", 404),
        ("GET", "/api/v1/incidents/abc", 404),
        ("GET", "/api/v1/incidents/99999999999999999999", 404),
        ("GET", "/api/v1/nothing-here", 404),
        ("DELETE", "/api/v1/incidents", 405),
        ("POST", "/api/v1/incidents/1/steps/..%2F/skip", 404),
        ("POST", "/api/v1/incidents/-1/steps/%05%0A/snooze", 404),  # a line break, too
        ("PUT", "/healthz", 405),
        ("GET", "/nothing-here", 404),
        ("POST", "/", 405),  # the root only redirects (GET) to the status page
    ],
)
async def test_unknown_things_are_json_errors(
    client: TestClient[Any, Any], method: str, path: str, status: int
) -> None:
    response = await client.request(method, path, headers=auth("admin"))
    assert response.status == status
    assert set(await response.json()) == {"error", "detail"}


# --- the document and the metrics ----------------------------------------------------------


async def test_openapi_document_is_valid_and_matches_the_routes(
    client: TestClient[Any, Any],
) -> None:
    response = await client.get("/api/v1/openapi.json")
    assert response.status == 200
    document = await response.json()
    validate(document)
    documented = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    served = set()
    for resource in client.app.router.resources():
        info = resource.get_info()
        path = info.get("path") or info.get("formatter", "")
        if not path.startswith("/api/v1/") or path == "/api/v1/openapi.json":
            continue
        for route in resource:
            # HEAD comes with GET; "*" is the fallback that refuses other methods (405).
            if route.method not in ("HEAD", "*"):
                served.add((route.method, path))
    assert documented == served
    declare_op = document["paths"]["/api/v1/incidents"]["post"]
    schema_ref = declare_op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    declare_schema = document["components"]["schemas"][schema_ref.rsplit("/", 1)[1]]
    assert declare_schema["additionalProperties"] is False
    assert set(declare_schema["required"]) == {"title", "severity"}


async def test_metrics_count_steps_lateness_and_open_incidents(
    client: TestClient[Any, Any], vendor: RecordingEffects, clock: FakeClock
) -> None:
    await declare(client, severity="P2")
    await until(lambda: any(s.port == "pager" for s in vendor.sends))
    clock.advance(timedelta(seconds=1))
    # The page is sent before its step is marked done and reported: wait for the report.
    text = ""
    for _ in range(50):
        response = await client.get("/metrics")
        assert response.status == 200
        text = await response.text()
        if 'incident_steps_total{action="page"' in text:
            break
        await asyncio.sleep(0.05)
    assert 'incident_open_incidents{severity="P2"} 1.0' in text
    assert 'incident_open_incidents{severity="P1"} 0.0' in text
    assert 'incident_steps_total{action="page",outcome="done"} 1.0' in text
    assert 'incident_step_lateness_seconds_count{action="page"} 1.0' in text


async def test_a_responder_may_take_command_only_while_nobody_has_it(
    client: TestClient[Any, Any],
) -> None:
    incident = (await declare(client, severity="P2"))["incident"]
    roles = f"/api/v1/incidents/{incident['id']}/roles"
    for_someone_else = await client.post(
        roles, json={"role": "commander", "person": "rob"}, headers=auth("other")
    )
    assert for_someone_else.status == 403
    taken = await client.post(
        roles, json={"role": "commander", "person": "olga"}, headers=auth("other")
    )
    assert taken.status == 200 and (await taken.json())["incident"]["commander"] == "olga"
    grab = await client.post(
        roles, json={"role": "commander", "person": "rob"}, headers=auth("responder")
    )
    assert grab.status == 403 and "assign roles" in (await grab.json())["detail"]
    handover = await client.post(
        roles, json={"role": "commander", "person": "rob"}, headers=auth("other")
    )
    assert handover.status == 200  # olga commands it now, so she may hand it over


# --- what the public status page shows: components, public title, maintenance ------------


async def test_components_and_public_title_are_set_with_the_declaration_and_later(
    client: TestClient[Any, Any],
) -> None:
    declared = await declare(
        client,
        title="db-7.internal replica lag for cust-4821",
        components={"api": "partial_outage"},
        public_title="Slow API responses",
    )
    incident = declared["incident"]
    assert incident["components"] == {"api": "partial_outage"}
    assert incident["public_title"] == "Slow API responses"
    one = f"/api/v1/incidents/{incident['id']}"

    changed = await client.put(
        one + "/components",
        json={"components": {"api": "major_outage", "web": "degraded_performance"}},
        headers=auth("responder"),
    )
    assert changed.status == 200, await changed.text()
    assert (await changed.json())["incident"]["components"] == {
        "api": "major_outage",
        "web": "degraded_performance",
    }
    update = await client.post(
        one + "/updates",
        json={
            "message": "Recovering",
            "status": "monitoring",
            "components": {"api": "operational"},
        },
        headers=auth("responder"),
    )
    assert update.status == 200, await update.text()
    body = await update.json()
    assert body["incident"]["components"]["api"] == "operational"
    assert body["incident"]["status"] == "monitoring"
    renamed = await client.put(
        one + "/public-title", json={"public_title": "API outage"}, headers=auth("responder")
    )
    assert (await renamed.json())["incident"]["public_title"] == "API outage"

    detail = await (await client.get(one, headers=auth("viewer"))).json()
    public = [e["kind"] for e in detail["timeline"] if e["public"]]
    assert public.count("components_changed") == 3 and "customer_update" in public
    assert "public_title_changed" in [e["kind"] for e in detail["timeline"]]


async def test_unknown_components_and_statuses_are_refused_and_change_nothing(
    client: TestClient[Any, Any],
) -> None:
    before = await count_incidents(client)
    unknown = await client.post(
        "/api/v1/incidents",
        json={"title": "x", "severity": "P2", "components": {"billing": "major_outage"}},
        headers=auth("responder"),
    )
    assert unknown.status == 422
    problem = await unknown.json()
    assert "billing" in str(problem["detail"]) and "api, web, email" in str(problem["detail"])
    bad_status = await client.post(
        "/api/v1/incidents",
        json={"title": "x", "severity": "P2", "components": {"api": "on_fire"}},
        headers=auth("responder"),
    )
    assert bad_status.status == 422
    assert await count_incidents(client) == before

    incident = (await declare(client))["incident"]
    one = f"/api/v1/incidents/{incident['id']}"
    empty = await client.put(
        one + "/components", json={"components": {}}, headers=auth("responder")
    )
    assert empty.status == 422
    viewer = await client.put(
        one + "/components", json={"components": {"api": "major_outage"}}, headers=auth("viewer")
    )
    assert viewer.status == 403
    detail = await (await client.get(one, headers=auth("viewer"))).json()
    assert detail["incident"]["components"] == {}


async def test_maintenance_windows_are_scheduled_updated_and_follow_the_clock(
    client: TestClient[Any, Any], clock: FakeClock
) -> None:
    start = clock.now() + timedelta(hours=2)
    created = await client.post(
        "/api/v1/maintenances",
        json={
            "name": "Database upgrade",
            "message": "The API may be read-only for up to 10 minutes.",
            "scheduled_for": start.isoformat(),
            "scheduled_until": (start + timedelta(hours=1)).isoformat(),
            "components": ["api"],
        },
        headers=auth("responder"),
    )
    assert created.status == 201, await created.text()
    window = await created.json()
    assert window["status"] == "scheduled" and window["components"] == ["api"]
    one = f"/api/v1/maintenances/{window['id']}"

    clock.advance(timedelta(hours=2, minutes=5))
    shown = await (await client.get(one, headers=auth("viewer"))).json()
    assert shown["status"] == "in_progress"
    verifying = await client.post(
        one + "/updates",
        json={"message": "Upgrade done; checking.", "status": "verifying"},
        headers=auth("responder"),
    )
    assert verifying.status == 200, await verifying.text()
    assert (await verifying.json())["status"] == "verifying"
    done = await client.post(
        one + "/updates",
        json={"message": "All done.", "status": "completed"},
        headers=auth("responder"),
    )
    after = await done.json()
    assert after["status"] == "completed"
    assert [u["status"] for u in after["updates"]] == ["scheduled", "verifying", "completed"]
    late = await client.post(
        one + "/updates", json={"message": "One more thing"}, headers=auth("responder")
    )
    assert late.status == 409 and "completed" in (await late.json())["detail"]
    listed = await (await client.get("/api/v1/maintenances", headers=auth("viewer"))).json()
    assert [m["id"] for m in listed["maintenances"]] == [window["id"]]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"scheduled_until": "2026-01-01T00:00:00Z"}, "scheduled_until"),
        ({"scheduled_for": "2030-01-01T00:00:00"}, "scheduled_for"),
        ({"components": ["billing"]}, "components"),
        ({"name": " "}, "name"),
    ],
)
async def test_bad_maintenance_windows_are_refused_and_store_nothing(
    client: TestClient[Any, Any], clock: FakeClock, change: dict[str, Any], field: str
) -> None:
    start = clock.now() + timedelta(days=1)
    body = {
        "name": "Network work",
        "message": "Brief interruptions.",
        "scheduled_for": start.isoformat(),
        "scheduled_until": (start + timedelta(hours=1)).isoformat(),
        **change,
    }
    response = await client.post("/api/v1/maintenances", json=body, headers=auth("responder"))
    assert response.status == 422, await response.text()
    assert field in str((await response.json())["detail"])
    listed = await (await client.get("/api/v1/maintenances", headers=auth("viewer"))).json()
    assert listed["maintenances"] == []
    missing = await client.get("/api/v1/maintenances/99", headers=auth("viewer"))
    assert missing.status == 404


# --- status alone, the timeline, the outbox, who am I ---------------------------------------


async def test_status_changes_alone_without_a_customer_update(
    client: TestClient[Any, Any],
) -> None:
    incident = (await declare(client, severity="P2"))["incident"]
    status = f"/api/v1/incidents/{incident['id']}/status"

    async def send(body: Any, who: str | None = "responder", path: str = status) -> Any:
        headers = auth(who) if who else {}
        return await client.post(path, json=body, headers=headers)

    moved = await send({"status": "identified"})
    assert moved.status == 200, await moved.text()
    changed = (await moved.json())["incident"]
    assert changed["status"] == "identified" and changed["last_customer_update_at"] is None
    again = await send({"status": "identified"})
    assert again.status == 409 and "already identified" in (await again.json())["detail"]
    for body in ({"status": "resolved"}, {"status": "IDENTIFIED"}, {}, {"status": "x", "a": 1}):
        assert (await send(body)).status == 422, body
    assert (await send({"status": "monitoring"}, who="viewer")).status == 403
    assert (await send({"status": "monitoring"}, who=None)).status == 401
    missing = await send({"status": "monitoring"}, path="/api/v1/incidents/999/status")
    assert missing.status == 404
    shown = await client.get(f"/api/v1/incidents/{incident['id']}", headers=auth("viewer"))
    detail = await shown.json()
    assert detail["incident"]["status"] == "identified"
    kinds = [e["kind"] for e in detail["timeline"]]
    assert kinds.count("status_changed") == 1 and "customer_update" not in kinds


async def test_timeline_of_some_kinds_or_public_only(client: TestClient[Any, Any]) -> None:
    incident = (await declare(client, components={"api": "major_outage"}))["incident"]
    one = f"/api/v1/incidents/{incident['id']}"
    await client.post(one + "/notes", json={"text": "line 1\nline 2"}, headers=auth("responder"))
    await client.post(one + "/updates", json={"message": "On it"}, headers=auth("responder"))

    async def kinds(query: str = "", who: str = "viewer") -> list[str]:
        response = await client.get(one + "/timeline" + query, headers=auth(who))
        assert response.status == 200, await response.text()
        return [e["kind"] for e in (await response.json())["timeline"]]

    everything = await kinds()
    assert everything[0] == "declared" and {"internal_note", "customer_update"} <= set(everything)
    assert await kinds("?kind=internal_note") == ["internal_note"]
    both = ["internal_note", "customer_update"]
    assert await kinds("?kind=internal_note,customer_update") == both
    assert await kinds("?kind=internal_note&kind=customer_update") == both
    assert await kinds("?kind=no_such_kind") == []
    public = await kinds("?public=true")
    assert public and set(public) <= {"components_changed", "customer_update", "status_page_update"}
    assert {"internal_note", "customer_update"} <= set(await kinds("?public=false"))
    assert await kinds("?public=true&kind=internal_note") == []
    response = await client.get(one + "/timeline?kind=internal_note", headers=auth("viewer"))
    [note] = (await response.json())["timeline"]
    assert note["text"] == "line 1\nline 2" and note["actor"] == "rob" and note["public"] is False

    for query in ("?public=yes", "?public=true&public=false", "?kind=Bad", "?kind=a;b", "?x=1"):
        bad = await client.get(one + "/timeline" + query, headers=auth("viewer"))
        assert bad.status == 422, query
        assert set(await bad.json()) == {"error", "detail"}
    assert (await client.get(one + "/timeline")).status == 401
    missing = await client.get("/api/v1/incidents/999/timeline", headers=auth("viewer"))
    assert missing.status == 404


async def test_outbox_lists_the_newest_kept_messages_to_responders(
    client: TestClient[Any, Any],
) -> None:
    first = (await declare(client))["incident"]["id"]
    second = (await declare(client, title="Search slow", severity="P3"))["incident"]["id"]
    container = client.app[CONTAINER]
    for number, text in ((first, "one"), (second, "other"), (first, "two"), (first, "three")):
        incident = (await uc.get_incident(container.runtime, number)).incident
        await container.outbox.post(incident=incident, text=text, key=f"test/{text}")

    async def outbox(query: str = "", who: str = "responder") -> Any:
        response = await client.get("/api/v1/outbox" + query, headers=auth(who))
        assert response.status == 200, await response.text()
        return await response.json()

    kept = await outbox(f"?incident={first}")
    assert [m["body"] for m in kept["messages"]] == ["one", "two", "three"]
    assert kept["more"] is False
    message = kept["messages"][0]
    assert message["channel"] == "chat" and message["destination"].startswith("chat:#inc-")
    assert message["idempotency_key"] == "test/one" and message["incident_id"] == first
    newest = await outbox(f"?incident={first}&limit=2")
    assert [m["body"] for m in newest["messages"]] == ["two", "three"] and newest["more"]
    assert [m["body"] for m in (await outbox())["messages"]] == ["one", "other", "two", "three"]

    viewer = await client.get("/api/v1/outbox", headers=auth("viewer"))
    assert viewer.status == 403 and "responder" in (await viewer.json())["detail"]
    assert (await client.get("/api/v1/outbox")).status == 401
    missing = await client.get("/api/v1/outbox?incident=999", headers=auth("responder"))
    assert missing.status == 404
    for query in ("?limit=0", "?limit=1001", "?limit=x", "?limit=1&limit=2", "?incident=-1"):
        bad = await client.get("/api/v1/outbox" + query, headers=auth("responder"))
        assert bad.status == 422, query


async def test_me_is_who_the_token_acts_as(client: TestClient[Any, Any]) -> None:
    for who in ("viewer", "commander"):
        response = await client.get("/api/v1/me", headers=auth(who))
        assert response.status == 200
        token = TOKENS[who]
        assert await response.json() == {"name": token.name, "role": token.role.value}
    assert (await client.get("/api/v1/me")).status == 401
