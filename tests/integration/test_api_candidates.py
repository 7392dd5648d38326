"""/api/v1/candidates over real HTTP: three Pro customers report one stuck bridge transfer,
the engine (in the background, as served) proposes an incident candidate, and people list,
read, declare (a new incident, or an open one) and dismiss it through the API. Every
refusal is a JSON 4xx that changes nothing, and the document says what the server takes."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from incident.clock import FakeClock
from incident.config import Settings
from incident.testing import RecordingEffects
from tests.integration.test_api_case_links import HEADERS, IC, call, declare
from tests.integration.test_api_cases import TOKENS
from tests.service.test_patterns import STUCK
from tests.serving import serving

Client = TestClient[Any, Any]
WAIT = 30.0  # seconds the engine may take to compare the cases in the background


@pytest.fixture
async def client(
    settings: Settings, clock: FakeClock, vendor: RecordingEffects
) -> AsyncIterator[Client]:
    configured = dataclasses.replace(settings, api_tokens=(*TOKENS.values(), IC))
    async with serving(configured, clock, vendor) as test_client:
        yield test_client


def stuck_case(n: int, plan: str = "pro") -> dict[str, Any]:
    """One customer's report of the stuck bridge transfer (a case of its own)."""
    return {
        "reference": f"ZD-{5000 + n}",
        "customer_id": f"cust-{n}",
        "summary": STUCK[n % len(STUCK)],
        "plan": plan,
        "category": "transfers",
        "component": "bridge",
    }


async def wait_for_candidate(
    client: Client, headers: dict[str, str], *, within: float = WAIT
) -> dict[str, Any]:
    """The newest candidate once the engine, running in the background, has proposed one
    (it compares each new case with the others as a step of the case)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        response = await client.get("/api/v1/candidates", headers=headers)
        assert response.status == 200, await response.text()
        found: list[dict[str, Any]] = (await response.json())["candidates"]
        if found:
            return found[0]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no incident candidate after {within} s")
        await asyncio.sleep(0.05)


async def propose(client: Client, headers: dict[str, str], customers: int = 3) -> list[int]:
    """Three Pro customers' cases about one stuck transfer (weighted 6, past the trigger
    of 5): the ids of the cases, once their candidate is proposed."""
    ids = []
    for n in range(customers):
        response = await client.post("/api/v1/cases", json=stuck_case(n), headers=headers)
        assert response.status == 201, await response.text()
        ids.append((await response.json())["case"]["id"])
    await wait_for_candidate(client, headers)
    return ids


async def proposed(client: Client) -> tuple[int, list[int]]:
    cases = await propose(client, HEADERS["agent"])
    (candidate,) = (await call(client, "GET", "/candidates", "viewer"))["candidates"]
    number: int = candidate["id"]
    return number, cases


async def test_the_document_names_every_candidate_operation(client: Client) -> None:
    document = await (await client.get("/api/v1/openapi.json")).json()
    paths = document["paths"]
    assert paths["/api/v1/candidates"]["get"]["operationId"] == "listCandidates"
    assert paths["/api/v1/candidates/{candidate_id}"]["get"]["operationId"] == "getCandidate"
    declaring = paths["/api/v1/candidates/{candidate_id}/declare"]["post"]
    assert {"200", "201", "403", "404", "409", "422"} <= set(declaring["responses"])
    assert declaring["requestBody"]["required"] is False
    schemas = document["components"]["schemas"]
    body = schemas["DeclareCandidateRequest"]
    assert body["properties"]["title"]["anyOf"][0]["maxLength"] == 200
    assert body["not"]["required"] == ["incident"]  # incident, or severity and title
    assert schemas["DismissCandidateRequest"]["required"] == ["reason"]
    statuses = paths["/api/v1/candidates"]["get"]["parameters"][0]
    assert statuses["schema"]["items"]["enum"] == ["proposed", "declared", "dismissed"]


async def test_a_proposed_candidate_is_listed_and_shown_with_its_evidence(client: Client) -> None:
    number, cases = await proposed(client)
    listed = (await call(client, "GET", "/candidates?status=proposed", "viewer"))["candidates"]
    assert [c["id"] for c in listed] == [number]
    candidate = listed[0]
    assert candidate["ref"] == f"CAND-{number}" and candidate["status"] == "proposed"
    assert candidate["severity"] == "P2"
    assert candidate["reason"] == "affects multiple users (3 customers)"
    assert (candidate["customers"], candidate["weighted"]) == (3, 6.0)
    assert candidate["incident"] is None and candidate["decided_by"] is None
    assert await call(client, "GET", "/candidates?status=declared", "viewer") == {"candidates": []}

    shown = await call(client, "GET", f"/candidates/{number}", "viewer")
    assert shown["candidate"] == candidate
    assert [c["id"] for c in shown["cases"]] == cases
    assert shown["cases"][0] == {
        "id": cases[0],
        "ref": f"CASE-{cases[0]}",
        "reference": "ZD-5000",
        "customer_id": "cust-0",
        "plan": "pro",
        "status": "open",
        "incident": None,
        "joined_at": shown["cases"][0]["joined_at"],
    }
    assert shown["customers"] == 3
    signature = shown["signature"]
    assert (signature["category"], signature["component"]) == ("transfers", "bridge")
    assert "<tx>" in signature["text"] and "0x5c50" not in signature["text"]  # masked
    assert signature["error_codes"] == [] and shown["new"] is True
    assert shown["first_seen"] <= shown["last_seen"]
    assert shown["page"] == f"http://127.0.0.1:8080/ui/candidates/{number}"


async def test_declaring_links_every_case_and_declaring_again_answers_the_same_incident(
    client: Client,
) -> None:
    number, cases = await proposed(client)
    declared = await call(client, "POST", f"/candidates/{number}/declare", status=201)
    incident = declared["incident"]
    assert declared["created"] is True and incident["ref"] == f"INC-{incident['id']}"
    assert declared["candidate"]["status"] == "declared"
    assert declared["candidate"]["incident"] == incident
    assert declared["candidate"]["decided_by"] == "alice"

    shown = await call(client, "GET", f"/incidents/{incident['id']}", "viewer")
    assert shown["incident"]["severity"] == "P2"  # the suggested one
    assert shown["incident"]["service"] == "bridge"
    assert shown["incident"]["title"].startswith("Many customers report: ")
    linked = await call(client, "GET", f"/incidents/{incident['id']}/cases", "viewer")
    assert [c["id"] for c in linked["cases"]] == cases and linked["customers"] == 3
    evidence = await call(client, "GET", f"/candidates/{number}", "viewer")
    assert {c["incident"]["id"] for c in evidence["cases"]} == {incident["id"]}

    again = await call(client, "POST", f"/candidates/{number}/declare")
    assert again["created"] is False and again["incident"] == incident
    assert len((await call(client, "GET", "/incidents", "viewer"))["incidents"]) == 1
    other = await declare(client, "Something else")
    moved = await call(client, "POST", f"/candidates/{number}/declare", status=409, incident=other)
    assert moved["detail"] == f"CAND-{number} was declared as INC-{incident['id']} already"
    late = await call(
        client, "POST", f"/candidates/{number}/dismiss", status=409, reason="known issue"
    )
    assert late["detail"] == f"CAND-{number} was declared by alice: it cannot dismiss"


async def test_a_declaration_takes_a_severity_and_a_title_by_the_declarations_rules(
    client: Client,
) -> None:
    number, _ = await proposed(client)
    declared = await call(
        client,
        "POST",
        f"/candidates/{number}/declare",
        "ic",
        status=201,
        severity="P1",
        title="  Bridge relayer stuck  ",
    )
    shown = await call(client, "GET", f"/incidents/{declared['incident']['id']}", "viewer")
    assert (shown["incident"]["severity"], shown["incident"]["title"]) == (
        "P1",
        "Bridge relayer stuck",
    )
    assert shown["incident"]["declared_by"] == "ivy"


async def test_its_cases_may_join_an_open_incident_instead(client: Client) -> None:
    number, cases = await proposed(client)
    resolved = await declare(client, "Bridge maintenance")
    await call(client, "POST", f"/incidents/{resolved}/resolve", "ic", summary="Done")
    closed = await call(
        client, "POST", f"/candidates/{number}/declare", status=409, incident=resolved
    )
    assert closed["detail"] == f"INC-{resolved} is resolved: choose an open one"
    assert (await call(client, "GET", f"/candidates/{number}", "viewer"))["candidate"][
        "status"
    ] == "proposed"

    open_one = await declare(client, "Bridge relayer down")
    chosen = await call(client, "POST", f"/candidates/{number}/declare", incident=open_one)
    assert chosen["created"] is False and chosen["incident"]["id"] == open_one
    linked = await call(client, "GET", f"/incidents/{open_one}/cases", "viewer")
    assert [c["id"] for c in linked["cases"]] == cases
    assert len((await call(client, "GET", "/incidents", "viewer"))["incidents"]) == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "   "}, "title"),
        ({"title": "two\nlines"}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"severity": "P5"}, "severity"),
        ({"severity": "p1"}, "severity"),
        ({"incident": "INC-1"}, "incident"),
        ({"incident": 0}, "incident"),
        ({"colour": "red"}, "colour"),
        ({"incident": 1, "title": "Bridge down"}, "(body)"),
        ({"incident": 1, "severity": "P1"}, "(body)"),
    ],
)
async def test_a_malformed_declaration_is_refused_naming_the_field_and_changes_nothing(
    client: Client, body: dict[str, Any], field: str
) -> None:
    number, _ = await proposed(client)
    refused = await call(client, "POST", f"/candidates/{number}/declare", status=422, **body)
    assert refused["error"] == "invalid value"
    assert [p["field"] for p in refused["detail"]] == [field]
    if field == "(body)":
        assert "not both" in refused["detail"][0]["problem"]
    shown = await call(client, "GET", f"/candidates/{number}", "viewer")
    assert shown["candidate"]["status"] == "proposed"
    assert {c["incident"] for c in shown["cases"]} == {None}
    assert (await call(client, "GET", "/incidents", "viewer"))["incidents"] == []


async def test_refusals_are_json_and_change_nothing(client: Client) -> None:
    number, _ = await proposed(client)
    path = f"/candidates/{number}"
    viewer = await call(client, "POST", path + "/declare", "viewer", status=403)
    assert viewer["error"] == "forbidden"
    await call(client, "POST", path + "/dismiss", "viewer", status=403, reason="known")
    missing = await call(client, "POST", "/candidates/999/declare", status=404)
    assert missing == {"error": "not found", "detail": "there is no candidate 999 (CAND-999)"}
    assert (await call(client, "GET", "/candidates/999", "viewer", status=404))["detail"]
    await call(client, "GET", "/candidates/0", "viewer", status=404)
    await call(client, "GET", "/candidates/CAND-1", "viewer", status=404)  # no such route
    no_incident = await call(client, "POST", path + "/declare", status=404, incident=999)
    assert no_incident["detail"] == "there is no incident 999"
    for query in ("status=open", "status=", "limit=0", "limit=501", "limit=x", "colour=red"):
        refused = await call(client, "GET", f"/candidates?{query}", "viewer", status=422)
        assert refused["error"] == "invalid value", query
    blank = await call(client, "POST", path + "/dismiss", status=422, reason="  ")
    assert [p["field"] for p in blank["detail"]] == ["reason"]
    response = await client.post(f"/api/v1{path}/dismiss", headers=HEADERS["agent"])
    assert response.status == 400  # the reason is required: no body is not a dismissal
    shown = await call(client, "GET", path, "viewer")
    assert shown["candidate"]["status"] == "proposed" and shown["candidate"]["note"] is None
    assert (await call(client, "GET", "/incidents", "viewer"))["incidents"] == []


async def test_a_dismissed_candidate_says_why_and_cannot_be_declared(client: Client) -> None:
    number, cases = await proposed(client)
    path = f"/candidates/{number}"
    dismissed = await call(
        client, "POST", path + "/dismiss", "ic", reason="Known: the bridge's status page has it"
    )
    candidate = dismissed["candidate"]
    assert candidate["status"] == "dismissed" and candidate["decided_by"] == "ivy"
    assert candidate["note"] == "Known: the bridge's status page has it"
    assert candidate["decided_at"] is not None
    refused = await call(client, "POST", path + "/declare", status=409)
    assert refused["detail"] == f"CAND-{number} was dismissed by ivy: it cannot be declared"
    again = await call(client, "POST", path + "/dismiss", status=409, reason="again")
    assert "it cannot dismiss" in again["detail"]
    listed = await call(client, "GET", "/candidates?status=dismissed&status=declared", "viewer")
    assert [c["id"] for c in listed["candidates"]] == [number]
    assert await call(client, "GET", "/candidates?status=proposed", "viewer") == {"candidates": []}
    shown = await call(client, "GET", path, "viewer")
    assert [c["id"] for c in shown["cases"]] == cases
    assert (await call(client, "GET", "/incidents", "viewer"))["incidents"] == []
