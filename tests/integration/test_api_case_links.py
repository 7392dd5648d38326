"""Cases linked to incidents over the REST API: linking and unlinking a case, an incident's
cases with how many distinct customers they are of, the case's category and component, and
every refusal a JSON 4xx that changes nothing (no such incident, an incident not open, a
case linked to it already or not linked at all, a viewer)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from incident.clock import FakeClock
from incident.config import ApiToken, Settings
from incident.domain.access import AccessRole
from incident.domain.case_access import parse_support_roles
from incident.testing import RecordingEffects
from tests.integration.test_api_cases import ROLES, TOKENS, case
from tests.serving import serving

IC = ApiToken(token="c" * 24, role=AccessRole.COMMANDER, name="ivy")
HEADERS = {who: {"Authorization": f"Bearer {token.token}"} for who, token in TOKENS.items()}
HEADERS["ic"] = {"Authorization": f"Bearer {IC.token}"}


@pytest.fixture
async def client(
    settings: Settings, clock: FakeClock, vendor: RecordingEffects
) -> AsyncIterator[TestClient[Any, Any]]:
    configured = dataclasses.replace(
        settings,
        api_tokens=(*TOKENS.values(), IC),
        support_roles=parse_support_roles(ROLES),
    )
    async with serving(configured, clock, vendor) as test_client:
        yield test_client


async def call(
    client: TestClient[Any, Any],
    method: str,
    path: str,
    who: str = "agent",
    *,
    status: int = 200,
    **body: Any,
) -> Any:
    """The answer of one request, checked for `status` (every answer is JSON)."""
    response = await client.request(
        method, "/api/v1" + path, json=body if method != "GET" else None, headers=HEADERS[who]
    )
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    return await response.json()


async def declare(client: TestClient[Any, Any], title: str = "Withdrawals delayed") -> int:
    body = await call(client, "POST", "/incidents", "ic", status=201, title=title, severity="P2")
    number: int = body["incident"]["id"]
    return number


async def open_case(client: TestClient[Any, Any], reference: str, customer: str) -> int:
    body = await call(
        client, "POST", "/cases", status=201, **case(reference=reference, customer_id=customer)
    )
    number: int = body["case"]["id"]
    return number


async def test_a_linked_case_names_its_incident_and_the_incident_lists_its_customers(
    client: TestClient[Any, Any],
) -> None:
    incident = await declare(client)
    first = await open_case(client, "ZD-1", "cust-1")
    second = await open_case(client, "ZD-2", "cust-1")  # the same customer wrote twice
    third = await open_case(client, "ZD-3", "cust-2")

    linked = await call(client, "POST", f"/cases/{first}/link", incident=incident)
    assert linked["case"]["incident"] == {"id": incident, "ref": f"INC-{incident}"}
    assert linked["case"]["linked_at"] is not None
    assert linked["timeline"][-1]["text"] == f"Linked to INC-{incident}"
    await call(client, "POST", f"/cases/{second}/link", incident=incident)
    await call(client, "POST", f"/cases/{third}/link", incident=float(incident))  # 7.0 is 7

    listed = await call(client, "GET", f"/incidents/{incident}/cases", "viewer")
    assert [c["id"] for c in listed["cases"]] == [first, second, third]
    assert listed["customers"] == 2
    assert listed["cases"][0] == {
        "id": first,
        "ref": f"CASE-{first}",
        "reference": "ZD-1",
        "customer_id": "cust-1",
        "status": "open",
        "level": "tier_1",
        "linked_at": linked["case"]["linked_at"],
    }

    unlinked = await call(client, "POST", f"/cases/{second}/unlink")
    assert unlinked["case"]["incident"] is None and unlinked["case"]["linked_at"] is None
    listed = await call(client, "GET", f"/incidents/{incident}/cases", "viewer")
    assert [c["id"] for c in listed["cases"]] == [first, third]
    assert listed["customers"] == 2
    other = await declare(client, "Logins failing")
    assert await call(client, "GET", f"/incidents/{other}/cases", "viewer") == {
        "cases": [],
        "customers": 0,
    }


async def test_the_incidents_latest_update_is_queued_for_the_customer_as_a_step(
    client: TestClient[Any, Any],
) -> None:
    incident = await declare(client)
    await call(client, "POST", f"/incidents/{incident}/updates", "ic", message="Funds are safe.")
    number = await open_case(client, "ZD-1", "cust-1")
    linked = await call(client, "POST", f"/cases/{number}/link", incident=incident)
    assert "incident_notice.1" in [step["step_id"] for step in linked["upcoming"]]


async def test_resolving_the_incident_leaves_its_case_pending_and_the_queue_filters_it(
    client: TestClient[Any, Any],
) -> None:
    incident = await declare(client)
    number = await open_case(client, "ZD-1", "cust-1")
    await open_case(client, "ZD-2", "cust-2")
    await call(client, "POST", f"/cases/{number}/link", incident=incident)
    await call(client, "POST", f"/incidents/{incident}/resolve", "ic", summary="Node replaced")

    shown = await call(client, "GET", f"/cases/{number}", "viewer")
    assert shown["case"]["status"] == "pending"  # the shipped playbook waits for the customer
    assert shown["case"]["pending_since"] is not None
    pending = await call(client, "GET", "/cases?status=pending", "viewer")
    assert [item["case"]["id"] for item in pending["cases"]] == [number]
    listed = await call(client, "GET", f"/incidents/{incident}/cases", "viewer")
    assert [c["status"] for c in listed["cases"]] == ["pending"]
    # Linking a resolved incident's case elsewhere waits for the customer's answer first.
    other = await declare(client, "Logins failing")
    refused = await call(client, "POST", f"/cases/{number}/link", status=409, incident=other)
    assert "waiting for the customer's confirmation" in refused["detail"]


async def test_refusals_name_the_problem_and_change_nothing(
    client: TestClient[Any, Any],
) -> None:
    incident = await declare(client)
    number = await open_case(client, "ZD-1", "cust-1")
    path = f"/cases/{number}"

    missing = await call(client, "POST", path + "/link", status=404, incident=999)
    assert missing == {"error": "not found", "detail": "there is no incident 999"}
    no_case = await call(client, "POST", "/cases/999/link", status=404, incident=incident)
    assert "there is no case 999" in no_case["detail"]
    viewer = await call(client, "POST", path + "/link", "viewer", status=403, incident=incident)
    assert "vera" in viewer["detail"] and "may not open, update and work" in viewer["detail"]
    for wrong in ("INC-1", 0, -3, 1.5, True, None):
        refused = await call(client, "POST", path + "/link", status=422, incident=wrong)
        assert refused["error"] == "invalid value"
        assert [p["field"] for p in refused["detail"]] == ["incident"]
    nothing = await call(client, "POST", path + "/unlink", status=409)
    assert nothing["detail"] == f"CASE-{number} is not linked to an incident"
    assert (await call(client, "GET", path, "viewer"))["case"]["incident"] is None

    await call(client, "POST", path + "/link", incident=incident)
    twice = await call(client, "POST", path + "/link", status=409, incident=incident)
    assert twice == {
        "error": "not allowed now",
        "detail": f"CASE-{number} is linked to INC-{incident} already",
    }
    await call(client, "POST", f"/incidents/{incident}/resolve", "ic", summary="Fixed")
    fresh = await open_case(client, "ZD-2", "cust-2")
    closed = await call(client, "POST", f"/cases/{fresh}/link", status=409, incident=incident)
    assert closed["detail"] == f"INC-{incident} is resolved: link cases to an open incident"
    assert (await call(client, "GET", f"/cases/{fresh}", "viewer"))["case"]["incident"] is None
    assert await call(client, "GET", "/incidents/999/cases", "viewer", status=404)


async def test_category_and_component_are_one_trimmed_line_kept_as_typed(
    client: TestClient[Any, Any],
) -> None:
    opened = await call(
        client,
        "POST",
        "/cases",
        status=201,
        **case(category="  Withdrawals ", component="Ethereum"),
    )
    number = opened["case"]["id"]
    assert (opened["case"]["category"], opened["case"]["component"]) == ("Withdrawals", "Ethereum")
    plain = await call(client, "POST", "/cases", status=201, **case(reference="ZD-2"))
    assert (plain["case"]["category"], plain["case"]["component"]) == ("", "")

    changed = await call(client, "PATCH", f"/cases/{number}", category="KYC")
    assert (changed["case"]["category"], changed["case"]["component"]) == ("KYC", "Ethereum")
    assert changed["timeline"][-1]["text"] == "Updated category"
    cleared = await call(client, "PATCH", f"/cases/{number}", component="")
    assert cleared["case"]["component"] == ""

    for body in (
        {"category": "Withdrawals\nand deposits"},
        {"component": "x" * 101},
        {"category": 7},
        {"component": "bidi \u202e"},
    ):
        field = next(iter(body))
        refused = await call(client, "PATCH", f"/cases/{number}", status=422, **body)
        assert [p["field"] for p in refused["detail"]] == [field]
        again = await call(client, "POST", "/cases", status=422, **case(reference="ZD-3", **body))
        assert [p["field"] for p in again["detail"]] == [field]
    shown = await call(client, "GET", f"/cases/{number}", "viewer")
    assert (shown["case"]["category"], shown["case"]["component"]) == ("KYC", "")


async def test_the_document_describes_linking(client: TestClient[Any, Any]) -> None:
    document = await (await client.get("/api/v1/openapi.json")).json()
    paths = document["paths"]
    assert paths["/api/v1/cases/{case_id}/link"]["post"]["operationId"] == "linkCase"
    assert paths["/api/v1/cases/{case_id}/unlink"]["post"]["operationId"] == "unlinkCase"
    listed = paths["/api/v1/incidents/{incident_id}/cases"]["get"]
    assert listed["operationId"] == "listIncidentCases"
    schemas = document["components"]["schemas"]
    incident = schemas["LinkCaseRequest"]["properties"]["incident"]
    assert (incident["type"], incident["minimum"]) == ("integer", 1)
    assert schemas["OpenCaseRequest"]["properties"]["category"]["maxLength"] == 100
    assert "pending" in schemas["CaseStatus"]["enum"]
    statuses = next(p for p in paths["/api/v1/cases"]["get"]["parameters"] if p["name"] == "status")
    assert "pending" in statuses["schema"]["items"]["enum"]
