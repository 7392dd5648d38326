"""The lifecycle operations of the REST API over real HTTP: edit, cancel, reopen, merge,
approve, follow-ups and the documents; each refused request is a clear 4xx that changes
nothing."""

# The fixtures come from test_api.py; pytest passes them by name (F811 is a false alarm).
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import re
from typing import Any

from aiohttp.test_utils import TestClient

from incident.clock import FakeClock
from incident.web.context import CONTAINER
from tests.integration.test_api import (  # noqa: F401 (fixtures)
    api_settings,
    auth,
    client,
    declare,
)
from tests.serving import steps_caught_up

Client = TestClient[Any, Any]


async def post(client: Client, path: str, body: Any, who: str = "commander") -> Any:
    response = await client.post(f"/api/v1/incidents{path}", json=body, headers=auth(who))
    return response.status, await response.json()


async def detail(client: Client, incident_id: int) -> Any:
    response = await client.get(f"/api/v1/incidents/{incident_id}", headers=auth("viewer"))
    assert response.status == 200
    return await response.json()


async def test_edit_corrects_the_facts_and_refuses_nothing_to_change(client: Client) -> None:
    incident_id = (await declare(client))["incident"]["id"]
    response = await client.patch(
        f"/api/v1/incidents/{incident_id}",
        json={"title": "Checkout down in the EU", "category": "security"},
        headers=auth("responder"),
    )
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["incident"]["title"] == "Checkout down in the EU"
    assert body["incident"]["category"] == "security"
    for bad, status in (({}, 422), ({"title": " "}, 422), ({"colour": "red"}, 422)):
        refused = await client.patch(
            f"/api/v1/incidents/{incident_id}", json=bad, headers=auth("responder")
        )
        assert refused.status == status, (bad, await refused.text())
        assert set(await refused.json()) == {"error", "detail"}
    same = await client.patch(
        f"/api/v1/incidents/{incident_id}",
        json={"title": "Checkout down in the EU"},
        headers=auth("responder"),
    )
    assert same.status == 409
    viewer = await client.patch(
        f"/api/v1/incidents/{incident_id}", json={"title": "x"}, headers=auth("viewer")
    )
    assert viewer.status == 403
    timeline = (await detail(client, incident_id))["timeline"]
    assert [e["kind"] for e in timeline].count("edited") == 1


async def test_cancel_is_the_commanders_and_only_once(client: Client) -> None:
    incident_id = (await declare(client))["incident"]["id"]
    # The steps due at declaration have run: none is still claimed when it is cancelled.
    await steps_caught_up(client.app[CONTAINER].runtime, [incident_id])
    status, body = await post(client, f"/{incident_id}/cancel", {"reason": "oops"})
    assert status == 422 and "reason" in str(body["detail"])
    status, body = await post(
        client, f"/{incident_id}/cancel", {"reason": "false_alarm"}, who="responder"
    )
    assert status == 403 and "commander" in body["detail"]
    status, body = await post(
        client, f"/{incident_id}/cancel", {"reason": "false_alarm", "note": "test alert"}
    )
    assert status == 200, body
    assert body["incident"]["status"] == "cancelled"
    # All that is left to do is undo its effects.
    assert {u["step_id"] for u in body["upcoming"]} <= {
        "pager-resolve-cancelled",
        "status-page-withdrawn",
        "refresh-war-room-cancelled",
    }
    assert body["incident"]["cancellation"] == "false_alarm"
    assert body["incident"]["cancel_note"] == "test alert"
    status, body = await post(client, f"/{incident_id}/cancel", {"reason": "declined"})
    assert status == 409 and "cancelled" in body["detail"]
    status, _ = await post(client, "/999/cancel", {"reason": "declined"})
    assert status == 404


async def test_reopen_a_resolved_incident(client: Client) -> None:
    incident_id = (await declare(client))["incident"]["id"]
    status, body = await post(client, f"/{incident_id}/reopen", {"reason": "back"})
    assert status == 409 and "only a resolved incident" in body["detail"]
    status, _ = await post(client, f"/{incident_id}/resolve", {"summary": "fixed"})
    assert status == 200
    status, body = await post(
        client, f"/{incident_id}/reopen", {"reason": "errors are back", "status": "identified"}
    )
    assert status == 200, body
    assert body["incident"]["status"] == "identified"
    assert body["incident"]["reopened_at"] is not None
    assert body["incident"]["resolved_at"] is None and body["incident"]["rca_due_at"] is None
    status, body = await post(
        client, f"/{incident_id}/reopen", {"reason": "x", "status": "resolved"}
    )
    assert status == 422


async def test_merge_needs_commander_rights_on_both(client: Client) -> None:
    target = (await declare(client))["incident"]["id"]
    duplicate = (await declare(client, title="Checkout errors again"))["incident"]["id"]
    status, body = await post(client, f"/{duplicate}/merge", {"into": duplicate})
    assert status == 422 and "itself" in body["detail"]
    status, body = await post(client, f"/{duplicate}/merge", {"into": 999})
    assert status == 404
    status, body = await post(client, f"/{duplicate}/merge", {"into": target}, who="responder")
    assert status == 403
    status, body = await post(client, f"/{duplicate}/merge", {"into": target})
    assert status == 200, body
    assert body["incident"]["merged_into"] == target
    assert body["incident"]["cancellation"] == "duplicate"
    kinds = [e["kind"] for e in (await detail(client, target))["timeline"]]
    assert "merged" in kinds


async def test_a_held_security_text_is_approved_by_the_commander(
    client: Client, clock: FakeClock
) -> None:
    incident_id = (await declare(client, category="security"))["incident"]["id"]

    async def held() -> list[str]:
        upcoming = (await detail(client, incident_id))["upcoming"]
        return [u["step_id"] for u in upcoming if u["state"] == "held"]

    for _ in range(250):
        if await held():
            break
        await _pause()
    assert await held() == ["status-page-investigating"]
    step = "/steps/status-page-investigating/approve"
    status, body = await post(client, f"/{incident_id}{step}", None, who="responder")
    assert status == 403
    status, body = await post(client, f"/{incident_id}/steps/no-such-step/approve", None)
    assert status == 404 and "upcoming steps" in body["detail"]
    status, body = await post(client, f"/{incident_id}{step}", None)
    assert status == 200, body
    for _ in range(250):
        if not await held():
            break
        await _pause()
    assert await held() == []
    upcoming = (await detail(client, incident_id))["upcoming"]
    notification = next(u for u in upcoming if u["step_id"] == "customer-notification")
    assert notification["needs_approval"] is True and notification["approved_by"] is None


async def _pause() -> None:
    await asyncio.sleep(0.02)


async def test_follow_ups_and_the_documents(client: Client) -> None:
    incident_id = (await declare(client))["incident"]["id"]
    status, body = await post(
        client,
        f"/{incident_id}/follow-ups",
        {
            "title": "Alert on pool exhaustion",
            "owner": "sam@example.com",
            "due_at": "2026-03-09T09:00:00Z",
        },
        who="responder",
    )
    assert status == 201, body
    assert body["ref"] == f"FU-{body['id']}" and body["done_at"] is None
    status, refused = await post(
        client,
        f"/{incident_id}/follow-ups",
        {"title": "x", "owner": "sam", "due_at": "2026-03-09T09:00:00"},
        who="responder",
    )
    assert status == 422  # no time zone
    status, refused = await post(
        client,
        f"/{incident_id}/follow-ups",
        {"title": "x", "owner": "sam", "due_at": "2020-03-09T09:00:00Z"},
        who="responder",
    )
    assert status == 422 and "future" in str(refused["detail"])
    done = await client.post(
        f"/api/v1/incidents/{incident_id}/follow-ups/{body['id']}/done", headers=auth("responder")
    )
    assert done.status == 200 and (await done.json())["done_by"] == "rob"
    listed = await client.get(f"/api/v1/incidents/{incident_id}/follow-ups", headers=auth("viewer"))
    (item,) = (await listed.json())["follow_ups"]
    assert item["done_at"] is not None
    missing = await client.post(
        f"/api/v1/incidents/{incident_id}/follow-ups/999/done", headers=auth("responder")
    )
    assert missing.status == 404
    for path in ("timeline.md", "postmortem"):
        document = await client.get(
            f"/api/v1/incidents/{incident_id}/{path}", headers=auth("viewer")
        )
        assert document.status == 200
        assert document.content_type == "text/markdown"
        text = await document.text()
        assert text.startswith("# ") and "Checkout API down" in text
        anonymous = await client.get(f"/api/v1/incidents/{incident_id}/{path}")
        assert anonymous.status == 401
    draft = await (
        await client.get(f"/api/v1/incidents/{incident_id}/postmortem", headers=auth("viewer"))
    ).text()
    assert "- [x] FU-" in draft


# --- the document says exactly what the server takes (issue: looser than the server) ------


async def test_list_filters_take_exactly_the_documented_values(client: Client) -> None:
    await declare(client)
    for query, ok in (
        ("status=investigating,cancelled", True),
        ("status=investigating&status=resolved", True),
        ("status=", False),
        ("status=resolved,,closed", False),
        ("status=RESOLVED", False),
        ("severity=p1", False),
        ("severity=P1,P2", True),
    ):
        response = await client.get(f"/api/v1/incidents?{query}", headers=auth("viewer"))
        assert (response.status == 200) is ok, (query, response.status, await response.text())
        if not ok:
            assert response.status == 422
    refused = await client.get("/api/v1/incidents?status=gone", headers=auth("viewer"))
    detail = (await refused.json())["detail"]
    for status in ("investigating", "resolved", "closed", "cancelled"):
        assert status in detail  # every value the filter takes, not only the open ones


async def test_numbers_components_and_links_as_the_document_says(client: Client) -> None:
    incident_id = (await declare(client))["incident"]["id"]
    step = f"/{incident_id}/steps/escalate-vp-clevel/snooze"
    status, _ = await post(client, step, {"reason": "on the call", "minutes": 30.0})
    assert status == 200  # 30.0 is the integer 30, as JSON Schema says
    status, _ = await post(client, step, {"reason": "on the call", "minutes": 30.5})
    assert status == 422
    empty = await client.put(
        f"/api/v1/incidents/{incident_id}/components",
        json={"components": {}},
        headers=auth("commander"),
    )
    assert empty.status == 422
    bad_key = await client.put(
        f"/api/v1/incidents/{incident_id}/components",
        json={"components": {"Not An Id": "major_outage"}},
        headers=auth("commander"),
    )
    assert bad_key.status == 422
    await post(client, f"/{incident_id}/resolve", {"summary": "fixed"})
    for link in ("javascript:alert(1)", "docs/rca", "https://", "ftp://x/y"):
        status, body = await post(client, f"/{incident_id}/rca", {"link": link})
        assert status == 422, link
        assert "http:// or https:// link" in str(body["detail"])
    status, _ = await post(client, f"/{incident_id}/rca", {"link": "https://wiki.example.com/r/1"})
    assert status == 200
    document = await (await client.get("/api/v1/openapi.json")).json()
    schemas = document["components"]["schemas"]
    components = schemas["ComponentsRequest"]["properties"]["components"]
    assert components["additionalProperties"] is False and components["minProperties"] == 1
    assert components["propertyNames"] == {"enum": ["api", "web", "email"]}
    title = schemas["DeclareRequest"]["properties"]["title"]
    # The document refuses what the server refuses: a blank title, a control character.
    assert re.search(title["pattern"], "   ") is None
    assert re.search(title["pattern"], "a\u202eb") is None
    assert re.search(title["pattern"], " Checkout down ") is not None


async def test_an_idempotency_key_reused_for_another_body_is_refused(client: Client) -> None:
    headers = {**auth("responder"), "Idempotency-Key": "deploy-42"}
    body = {"title": "Checkout API down", "severity": "P1"}
    first = await client.post("/api/v1/incidents", json=body, headers=headers)
    assert first.status == 201
    again = await client.post("/api/v1/incidents", json=body, headers=headers)
    assert again.status == 200 and (await again.json())["created"] is False
    other = await client.post("/api/v1/incidents", json={**body, "severity": "P2"}, headers=headers)
    assert other.status == 422
    detail = (await other.json())["detail"]
    assert "another declaration" in detail and "new key" in detail
    listed = await client.get("/api/v1/incidents", headers=auth("viewer"))
    assert len((await listed.json())["incidents"]) == 1  # nothing declared by the refusal
