"""/api/v1/cases over real HTTP: what the document says is what the server does, bad input
is a 4xx with a JSON body naming every problem and changes nothing, and the rules hold
through the API (the gate, the CEO only through the CIO, decisions by their approver)."""

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
from incident.domain.case_context import FIELDS
from incident.testing import RecordingEffects
from tests.serving import serving

TOKENS = {
    "viewer": ApiToken(token="v" * 24, role=AccessRole.VIEWER, name="vera"),
    "agent": ApiToken(token="r" * 24, role=AccessRole.RESPONDER, name="alice"),
    "manager": ApiToken(token="m" * 24, role=AccessRole.RESPONDER, name="carol"),
    "cio": ApiToken(token="i" * 24, role=AccessRole.RESPONDER, name="dana"),
    "ceo": ApiToken(token="e" * 24, role=AccessRole.RESPONDER, name="erik"),
}
ROLES = "alice=agent, carol=manager, dana=cio, erik=ceo"
TX = "0x" + "ab" * 32
ADDRESS = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"  # EIP-55's own example
TECHNICAL = {
    "actions_taken": "Checked the ledger",
    "customer_plan": "pro",
    "account_value": "1200",
    "previous_escalations": 0,
    "customer_impact": "Funds not received",
    "troubleshooting": "Resent the webhook: no change",
    "customer_expectation": "Funds today",
    "requested_actions": "Trace the transaction",
}


def auth(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[who].token}"}


@pytest.fixture
async def client(
    settings: Settings, clock: FakeClock, vendor: RecordingEffects
) -> AsyncIterator[TestClient[Any, Any]]:
    configured = dataclasses.replace(
        settings,
        api_tokens=tuple(TOKENS.values()),
        support_roles=parse_support_roles(ROLES),
    )
    async with serving(configured, clock, vendor) as test_client:
        yield test_client


def case(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "reference": "ZD-77",
        "customer_id": "cust-9",
        "summary": "Withdrawal not received",
        "plan": "pro",
        "priority": "P3",
        "checklist": ["troubleshooting_done"],
    }
    body.update(changes)
    return body


async def open_case(client: TestClient[Any, Any], **changes: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/cases", json=case(**changes), headers=auth("agent"))
    assert response.status == 201, await response.text()
    result: dict[str, Any] = await response.json()
    return result


async def count(client: TestClient[Any, Any]) -> int:
    response = await client.get("/api/v1/cases", headers=auth("viewer"))
    return len((await response.json())["cases"])


async def test_the_document_names_every_case_operation(client: TestClient[Any, Any]) -> None:
    document = await (await client.get("/api/v1/openapi.json")).json()
    assert {"/api/v1/cases", "/api/v1/cases/{case_id}", "/api/v1/cases/{case_id}/escalate"} <= set(
        document["paths"]
    )
    assert "context" in document["components"]["schemas"]["OpenCaseRequest"]["properties"]


async def test_a_legal_threat_opens_at_the_cio_with_its_rule(client: TestClient[Any, Any]) -> None:
    detail = await open_case(client, flags=["legal_threat"])
    assert detail["case"]["level"] == "cio"
    assert detail["case"]["escalations"][0]["rule"] == "CIO because: legal threat"
    assert [r["explanation"] for r in detail["routes"]] == ["CIO because: legal threat"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"plan": "gold"}, "plan"),
        ({"reference": "   "}, "reference"),
        ({"contacts": 0}, "contacts"),
        ({"flags": ["lawsuit"]}, "flags.0"),
        ({"disputed_amount": -5}, "disputed_amount"),
        ({"customer_email": "not an address"}, "customer_email"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_a_malformed_case_is_refused_naming_the_field_and_nothing_is_stored(
    client: TestClient[Any, Any], changes: dict[str, Any], field: str
) -> None:
    response = await client.post("/api/v1/cases", json=case(**changes), headers=auth("agent"))
    assert response.status == 422
    body = await response.json()
    assert field in [p["field"] for p in body["detail"]]
    assert await count(client) == 0


async def test_a_malformed_context_names_every_problem(client: TestClient[Any, Any]) -> None:
    context = {
        "transactions": [{"network": "evm", "hash": "0x1234", "at": "2026-03-01T10:00:00Z"}],
        "wallet_addresses": [{"network": "evm", "address": ADDRESS.lower().replace("a", "A", 1)}],
        "shoe_size": 44,
    }
    response = await client.post(
        "/api/v1/cases", json=case(crypto=True, context=context), headers=auth("agent")
    )
    assert response.status == 422
    body = await response.json()
    assert body["error"] == "context missing or malformed"
    fields = {p["field"] for p in body["detail"]}
    assert {"transactions[0].hash", "wallet_addresses[0].address", "shoe_size"} <= fields
    assert await count(client) == 0


async def test_a_crypto_escalation_without_a_hash_is_refused_naming_it(
    client: TestClient[Any, Any],
) -> None:
    detail = await open_case(client, crypto=True, context=TECHNICAL)
    url = f"/api/v1/cases/{detail['case']['id']}/escalate"
    response = await client.post(
        url, json={"to": "tier_2", "reason": "funds missing"}, headers=auth("agent")
    )
    assert response.status == 422
    missing = {p["field"] for p in (await response.json())["detail"]}
    assert "transactions" in missing
    shown = await (await client.get(url.removesuffix("/escalate"), headers=auth("viewer"))).json()
    assert shown["case"]["level"] == "tier_1" and shown["case"]["escalations"] == []
    # With the context given, it goes.
    context = {
        "transactions": [{"network": "evm", "hash": TX, "at": "2026-03-01T10:00:00Z"}],
        "wallet_addresses": [{"network": "evm", "address": ADDRESS}],
        "user_attempts": "Retried twice",
        "expected": "1000 USDC",
        "actual": "nothing",
    }
    patch = await client.patch(
        url.removesuffix("/escalate"), json={"context": context}, headers=auth("agent")
    )
    assert patch.status == 200, await patch.text()
    response = await client.post(
        url, json={"to": "tier_2", "reason": "funds missing"}, headers=auth("agent")
    )
    assert response.status == 200, await response.text()
    assert (await response.json())["case"]["level"] == "tier_2"


async def test_an_agents_ceo_request_becomes_a_cio_one_and_only_the_cio_goes_on(
    client: TestClient[Any, Any],
) -> None:
    detail = await open_case(client, context=TECHNICAL)
    url = f"/api/v1/cases/{detail['case']['id']}"
    response = await client.post(
        url + "/escalate", json={"to": "ceo", "reason": "key account"}, headers=auth("agent")
    )
    body = await response.json()
    assert response.status == 200 and body["case"]["level"] == "cio"
    assert "only through the CIO" in body["notice"]
    refused = await client.post(
        url + "/escalate", json={"to": "ceo", "reason": "on"}, headers=auth("manager")
    )
    assert refused.status == 403
    assert "only the CIO may" in (await refused.json())["detail"]
    went = await client.post(
        url + "/escalate", json={"to": "ceo", "reason": "on"}, headers=auth("cio")
    )
    assert (await went.json())["case"]["level"] == "ceo"


async def test_a_usdt_withdrawal_needs_both_decisions_by_their_approvers(
    client: TestClient[Any, Any],
) -> None:
    detail = await open_case(client, flags=["usdt_withdrawal"], usdt_amount="250.5")
    url = f"/api/v1/cases/{detail['case']['id']}"
    assert detail["case"]["approvals_missing"] == ["cio", "ceo"]
    early = await client.post(url + "/resolve", json={"resolution": "paid"}, headers=auth("agent"))
    assert early.status == 409
    wrong = await client.post(
        url + "/decisions",
        json={"level": "ceo", "approved": True, "note": "fine"},
        headers=auth("cio"),
    )
    assert wrong.status == 403
    for who in ("cio", "ceo"):
        response = await client.post(
            url + "/decisions",
            json={"level": who, "approved": True, "note": "verified"},
            headers=auth(who),
        )
        assert response.status == 200, await response.text()
    done = await client.post(url + "/resolve", json={"resolution": "paid"}, headers=auth("agent"))
    assert (await done.json())["case"]["status"] == "resolved"


async def test_refusals_are_json_and_change_nothing(client: TestClient[Any, Any]) -> None:
    await open_case(client)
    again = await client.post("/api/v1/cases", json=case(), headers=auth("agent"))
    assert again.status == 409 and "ZD-77" in (await again.json())["detail"]
    viewer = await client.post(
        "/api/v1/cases", json=case(reference="ZD-78"), headers=auth("viewer")
    )
    assert viewer.status == 403
    missing = await client.get("/api/v1/cases/999", headers=auth("viewer"))
    assert missing.status == 404 and (await missing.json())["error"] == "not found"
    empty = await client.patch("/api/v1/cases/1", json={}, headers=auth("agent"))
    assert empty.status == 422
    assert await count(client) == 1


async def test_a_queue_lists_a_levels_open_cases_with_their_clocks(
    client: TestClient[Any, Any],
) -> None:
    await open_case(client)
    await open_case(client, reference="ZD-78", flags=["media_contact"])
    response = await client.get("/api/v1/cases?level=cio&status=open", headers=auth("viewer"))
    (only,) = (await response.json())["cases"]
    assert only["case"]["reference"] == "ZD-78"
    assert only["sla"]["state"] in {"ok", "warning", "breached", "met", "none"}
    bad = await client.get("/api/v1/cases?level=attic", headers=auth("viewer"))
    assert bad.status == 422


async def test_the_document_describes_every_context_field_and_no_other(
    client: TestClient[Any, Any],
) -> None:
    document = await (await client.get("/api/v1/openapi.json")).json()
    context = document["components"]["schemas"]["OpenCaseRequest"]["properties"]["context"]
    assert list(context["properties"]) == list(FIELDS)  # the domain's table, in its order
    assert context["additionalProperties"] is False
    # What the document calls invalid, the server refuses: a field it does not name.
    response = await client.post(
        "/api/v1/cases", json=case(context={"colour": "red"}), headers=auth("agent")
    )
    assert response.status == 422
