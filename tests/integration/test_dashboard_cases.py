"""The dashboard's support-case pages (/ui/cases) over real HTTP: the app on a loopback port,
a real SQLite file, a fake clock and recording vendors; people with support roles log in
with their tokens and work cases through the forms, as in test_dashboard.py."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from incident.clock import FakeClock
from incident.config import ApiToken, Settings
from incident.domain.access import AccessRole
from incident.domain.case_access import SupportRole, SupportRoles
from incident.testing import RecordingEffects
from incident.web.dashboard.case_routes import CHANGES, NOTICE_COOKIE
from tests.conftest import T0
from tests.integration.test_dashboard import assert_valid_page, csrf_of, section, text_of
from tests.serving import serving

# T0 is Monday 2026-03-02 09:00 UTC: 10:00 in Berlin, an hour into tier 1's business day.
TOKENS = {
    "viewer": ApiToken(token="v" * 24, role=AccessRole.VIEWER, name="vera"),
    "agent": ApiToken(token="a" * 24, role=AccessRole.RESPONDER, name="alice"),
    "manager": ApiToken(token="m" * 24, role=AccessRole.RESPONDER, name="carol"),
    "cio": ApiToken(token="d" * 24, role=AccessRole.RESPONDER, name="dana"),
    "ceo": ApiToken(token="e" * 24, role=AccessRole.RESPONDER, name="erik"),
}
ROLES = SupportRoles(
    {"carol": SupportRole.MANAGER, "dana": SupportRole.CIO, "erik": SupportRole.CEO}
)
FULL_CONTEXT = {
    "actions_taken": "Reset the session; checked the logs.",
    "customer_plan": "pro",
    "account_value": "12000",
    "previous_escalations": 0,
    "customer_impact": "Cannot log in.",
    "troubleshooting": "Cleared caches: no change.",
    "customer_expectation": "Access today.",
    "requested_actions": "Look at the auth service.",
}
# What tier 2 needs of a case opened with none of its context (the base fields the case
# itself carries, and the reason the escalation form gives, are not among them).
TIER_2_NEEDS = [*FULL_CONTEXT, "checklist.troubleshooting_done"]

Client = TestClient[Any, Any]


@pytest.fixture
async def client(
    settings: Settings, clock: FakeClock, vendor: RecordingEffects
) -> AsyncIterator[Client]:
    configured = dataclasses.replace(
        settings, api_tokens=tuple(TOKENS.values()), support_roles=ROLES
    )
    async with serving(configured, clock, vendor) as test_client:
        yield test_client


async def api(client: Client, method: str, path: str, body: Any = None) -> Any:
    response = await client.request(
        method,
        f"/api/v1{path}",
        json=body,
        headers={"Authorization": f"Bearer {TOKENS['agent'].token}"},
    )
    assert response.status < 300, (method, path, await response.text())
    return await response.json()


async def open_by_api(client: Client, reference: str, **fields: Any) -> dict[str, Any]:
    body = {
        "reference": reference,
        "customer_id": "cust-42",
        "summary": f"Customer cannot log in ({reference})",
        "plan": "pro",
        "priority": "P3",
        **fields,
    }
    created: dict[str, Any] = await api(client, "POST", "/cases", body)
    return created


async def case_detail(client: Client, case_id: int) -> dict[str, Any]:
    detail: dict[str, Any] = await api(client, "GET", f"/cases/{case_id}")
    return detail


def by_people(timeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What people did (not the engine's clock, which compares each new case with the
    others in the background, whenever it gets to it)."""
    return [entry for entry in timeline if entry["actor"] != "clock"]


async def login(client: Client, who: str) -> str:
    """Log in as `who` (anyone before is forgotten); the session's CSRF token."""
    client.session.cookie_jar.clear()
    form = await client.get("/ui/login")
    response = await client.post(
        "/ui/login",
        data={"csrf": csrf_of(await form.text()), "token": TOKENS[who].token, "next": ""},
        allow_redirects=False,
    )
    assert response.status == 303, await response.text()
    return csrf_of(await (await client.get("/ui/cases")).text())


async def page(client: Client, path: str, status: int = 200) -> str:
    response = await client.get(path)
    assert response.status == status, (path, await response.text())
    html = await response.text()
    assert_valid_page(html)
    return html


async def post(client: Client, case_id: int, action: str, csrf: str, **fields: Any) -> Any:
    return await client.post(
        f"/ui/cases/{case_id}/{action}", data={**fields, "csrf": csrf}, allow_redirects=False
    )


async def submitted(client: Client, case_id: int, action: str, csrf: str, **fields: Any) -> str:
    """Post a form that must succeed; the page it leads back to."""
    response = await post(client, case_id, action, csrf, **fields)
    assert response.status == 303, (action, text_of(await response.text()))
    assert response.headers["Location"] == f"/ui/cases/{case_id}?done={action}"
    html = await page(client, response.headers["Location"])
    assert CHANGES[action].done in text_of(html)
    return html


def queue_row(html: str, case_id: int) -> str:
    start = html.index(f'id="case-row-{case_id}"')
    return html[start : html.index("</tr>", start)]


# --- the queues --------------------------------------------------------------------------------


async def test_the_queue_shows_each_level_with_its_clocks_the_most_urgent_first(
    client: Client, clock: FakeClock
) -> None:
    # Tier 1 answers a Pro customer within 4 business hours (09:00-17:00 Berlin).
    breached = (await open_by_api(client, "ZD-1"))["case"]  # due 14:00 Berlin, 13:00 UTC
    clock.advance(timedelta(hours=1))
    warned = (await open_by_api(client, "ZD-2"))["case"]  # due 14:00 UTC
    clock.set(T0 + timedelta(hours=4, minutes=5))  # 13:05 UTC: 3h05m of ZD-2's 4h gone
    fresh = (await open_by_api(client, "ZD-3"))["case"]
    answered = (await open_by_api(client, "ZD-4"))["case"]
    await api(client, "POST", f"/cases/{answered['id']}/progress", {"note": "Asked for logs"})
    legal = (await open_by_api(client, "ZD-5", flags=["legal_threat"]))["case"]
    await login(client, "agent")

    overview = await page(client, "/ui")
    assert '<a href="/ui/cases">Support cases</a>' in overview  # in the main navigation
    html = await page(client, "/ui/cases")
    assert 'aria-current="page">Support cases</a>' in html
    words = text_of(html)
    # A queue per level that has cases, each with its count; none for empty levels.
    assert "Tier 1 (general support): 4 open, 1 breached" in words
    assert "The CIO: 1 open" in words
    assert "Tier 2 (L2 senior support)" not in words
    assert html.index('id="queue-tier_1"') < html.index('id="queue-cio"')
    # In tier 1, the most urgent first: breached, running out, running, answered.
    order = [breached, warned, fresh, answered]
    positions = [html.index(f'id="case-row-{case["id"]}"') for case in order]
    assert positions == sorted(positions)
    # Each row: ref, ticket, priority, plan, summary, and the clock as words and colour.
    row = text_of(queue_row(html, breached["id"]))
    assert f"CASE-{breached['id']}" in row and "ZD-1" in row and "P3" in row and "Pro" in row
    assert "Customer cannot log in (ZD-1)" in row
    assert "Breached 5m ago" in row
    assert '<span class="sla sla-breached">Breached</span>' in queue_row(html, breached["id"])
    assert 'datetime="2026-03-02T13:00:00Z" data-age' in queue_row(html, breached["id"])
    warning = queue_row(html, warned["id"])
    assert '<span class="sla sla-warning">Warning</span>' in warning
    assert "Warning due in 55m" in text_of(warning)
    assert 'datetime="2026-03-02T14:00:00Z" data-countdown' in warning
    assert '<span class="sla sla-ok">OK</span>' in queue_row(html, fresh["id"])
    assert '<span class="sla sla-met">Met</span>' in queue_row(html, answered["id"])
    assert f'href="/ui/cases/{legal["id"]}"' in html


async def test_the_queue_changes_colour_as_the_clock_runs(client: Client, clock: FakeClock) -> None:
    case = (await open_by_api(client, "ZD-1"))["case"]
    await login(client, "viewer")  # anyone logged in may look
    first = await client.get("/ui/cases")
    assert "sla sla-ok" in queue_row(await first.text(), case["id"])
    etag = first.headers["ETag"]
    assert (await client.get("/ui/cases", headers={"If-None-Match": etag})).status == 304
    clock.advance(timedelta(hours=3))  # 75 % of 4 business hours
    later = await client.get("/ui/cases", headers={"If-None-Match": etag})
    assert later.status == 200
    assert "sla sla-warning" in queue_row(await later.text(), case["id"])
    clock.advance(timedelta(hours=1))
    html = await page(client, "/ui/cases")
    assert "sla sla-breached" in queue_row(html, case["id"])
    assert "Open a case" not in text_of(html)  # a viewer opens none


# --- one case ----------------------------------------------------------------------------------


def open_fields(**fields: Any) -> dict[str, Any]:
    return {
        "reference": "ZD-77",
        "customer_id": "cust-7",
        "summary": "Threatens to sue over a blocked payout",
        "plan": "enterprise",
        "priority": "P2",
        "customer_email": "customer@example.org",
        "contacts": "2",
        **fields,
    }


async def test_a_legal_threat_opened_from_the_form_is_at_the_cio_and_says_why(
    client: Client,
) -> None:
    csrf = await login(client, "agent")
    form = await page(client, "/ui/cases/new")
    assert 'action="/ui/cases/new"' in form and 'value="legal_threat"' in form
    fields = open_fields(flags=["legal_threat", "customer_requested"], disputed_amount="120.50")
    response = await client.post(
        "/ui/cases/new", data={**fields, "csrf": csrf}, allow_redirects=False
    )
    assert response.status == 303, text_of(await response.text())
    location = response.headers["Location"]
    opened = re.fullmatch(r"/ui/cases/(\d+)\?done=open", location)
    assert opened, location
    case_id = int(opened.group(1))
    html = await page(client, location)
    words = text_of(html)
    assert "Case opened; the rules have routed it." in words
    summary = text_of(section(html, "case-summary"))
    assert "Level The CIO cio" in summary and "Customer cust-7" in summary
    assert "Disputed amount EUR 120.50" in summary and "Flags customer requested, legal threat" in (
        summary
    )
    assert "CIO because: legal threat" in summary  # how it got here
    assert "Cannot wait" in summary and "Receipt not confirmed yet." in summary
    # Automatic routes and suggestions, clearly apart.
    routing = section(html, "case-routing")
    automatic = text_of(routing[: routing.index("Suggested")])
    suggested = text_of(routing[routing.index("Suggested") :])
    assert "Automatic the rules send the case" in automatic
    assert "CIO because: legal threat Cannot wait Here now" in automatic
    assert "a person decides" in suggested
    assert "tier 2 (L2 senior support) because: the customer asked for it" in suggested
    assert "legal threat" not in suggested
    detail = await case_detail(client, case_id)
    assert detail["case"]["level"] == "cio" and detail["case"]["opened_by"] == "alice"
    assert detail["case"]["contacts"] == 2 and detail["case"]["priority"] == "P2"


async def test_the_case_page_shows_the_clock_checklists_steps_and_timeline(
    client: Client, clock: FakeClock
) -> None:
    case = (await open_by_api(client, "ZD-1", crypto=True, checklist=["documented"]))["case"]
    clock.advance(timedelta(hours=3, minutes=30))
    await login(client, "agent")
    html = await page(client, f"/ui/cases/{case['id']}")
    summary = section(html, "case-summary")
    assert '<span class="sla sla-warning">Warning</span>' in summary
    assert "due in 30m (due 2026-03-02 13:00 UTC)" in text_of(summary)
    context = text_of(section(html, "case-context"))
    assert "Context for Tier 2 (L2 senior support)" in context
    for name in [*TIER_2_NEEDS, "transactions", "wallet_addresses", "user_attempts"]:
        assert re.search(rf"{re.escape(name)} : (missing|troubleshoot first)", context), name
    assert "Documented (done)" in context and "Troubleshooting done not done" in context
    steps = text_of(section(html, "case-steps"))
    assert "The first-response time ran out; the lead must act." in steps
    assert "first-response-missed in 30m 2026-03-02 13:00 UTC" in steps
    timeline = text_of(section(html, "case-timeline"))
    assert "case opened" in timeline and "Opened at tier_1 (P3, pro)" in timeline


# --- escalating --------------------------------------------------------------------------------


async def test_an_escalation_missing_context_is_refused_listing_every_field(
    client: Client,
) -> None:
    case = (await open_by_api(client, "ZD-1"))["case"]
    before = await case_detail(client, case["id"])
    csrf = await login(client, "agent")
    html = await page(client, f"/ui/cases/{case['id']}")
    assert 'id="escalate-override"' not in html  # an agent does not override the gate
    response = await post(client, case["id"], "escalate", csrf, to="tier_2", reason="stuck")
    assert response.status == 422
    html = await response.text()
    assert_valid_page(html)
    alert = html[
        html.index('id="form-error"') : html.index("</div>", html.index('id="form-error"'))
    ]
    listed = re.findall(r"<li><code>([^<]+)</code>: ([^<]+)</li>", alert)
    assert [field for field, _ in listed] == TIER_2_NEEDS
    assert (
        "customer_plan",
        "missing: give the customer&#39;s plan (starter, pro or enterprise)",
    ) in (listed)
    # What was typed is there to send again.
    assert 'id="fold-escalate" open' in html
    assert ">stuck</textarea>" in html and '<option value="tier_2" selected>' in html
    after = await case_detail(client, case["id"])
    assert after["case"] == before["case"]
    assert by_people(after["timeline"]) == by_people(before["timeline"])


async def test_a_manager_overrides_the_context_gate(client: Client) -> None:
    case = (await open_by_api(client, "ZD-1"))["case"]
    csrf = await login(client, "agent")
    refused = await post(
        client, case["id"], "escalate", csrf, to="tier_2", reason="stuck", override="on the phone"
    )
    assert refused.status == 403
    assert "alice (agent) may not escalate without the full context" in text_of(
        await refused.text()
    )
    csrf = await login(client, "manager")
    form = await page(client, f"/ui/cases/{case['id']}")
    assert 'id="escalate-override" name="override"' in form
    html = await submitted(
        client,
        case["id"],
        "escalate",
        csrf,
        to="tier_2",
        reason="stuck",
        override="customer is on the phone",
    )
    summary = text_of(section(html, "case-summary"))
    assert "Level Tier 2 (L2 senior support)" in summary
    assert "Context overridden customer is on the phone" in summary
    timeline = text_of(section(html, "case-timeline"))
    assert "Escalated without actions_taken, customer_plan" in timeline
    assert "customer is on the phone" in timeline
    detail = await case_detail(client, case["id"])
    assert detail["case"]["level"] == "tier_2"
    assert detail["case"]["escalations"][-1]["gate_override"] == "customer is on the phone"


async def test_an_agents_ceo_request_goes_to_the_cio_and_says_so(client: Client) -> None:
    case = (await open_by_api(client, "ZD-1"))["case"]
    csrf = await login(client, "agent")
    # The context and the checklist through the details form (the context as JSON).
    html = await page(client, f"/ui/cases/{case['id']}")
    assert "Troubleshooting done not done" in text_of(section(html, "case-context"))
    html = await submitted(
        client,
        case["id"],
        "update",
        csrf,
        summary="Customer cannot log in",
        plan="pro",
        priority="P3",
        contacts="1",
        checklist=["troubleshooting_done", "documented"],
        context=json.dumps(FULL_CONTEXT),
    )
    context = text_of(section(html, "case-context"))
    assert "Complete The case carries everything Tier 2 (L2 senior support) needs" in context
    assert "Troubleshooting done (done)" in context and "customer_plan pro" in context
    response = await post(
        client, case["id"], "escalate", csrf, to="ceo", reason="strategic customer may leave"
    )
    assert response.status == 303, text_of(await response.text())
    assert NOTICE_COOKIE in response.cookies
    html = await page(client, response.headers["Location"])
    words = text_of(html)
    assert "Escalated: the receiving level is told" in words
    assert (
        "Note: The CEO is reached only through the CIO: escalated to the CIO, recommending "
        "the CEO; the CIO decides whether it goes on." in words
    )
    assert "Level The CIO" in text_of(section(html, "case-summary"))
    assert "Recommending the CEO" in text_of(section(html, "case-summary"))
    # Said once: the page shown again has no notice.
    again = await page(client, f"/ui/cases/{case['id']}")
    assert "The CEO is reached only through the CIO" not in text_of(again)
    # A notice is never taken from a cookie the server did not sign for this session.
    client.session.cookie_jar.update_cookies({NOTICE_COOKIE: "SGFja2Vk.0000"})
    forged = await page(client, f"/ui/cases/{case['id']}")
    assert "Hacked" not in forged and 'id="case-notice"' not in forged


# --- the other forms ---------------------------------------------------------------------------


async def test_a_usdt_case_is_decided_by_the_cio_and_the_ceo_then_resolved(client: Client) -> None:
    case = (
        await open_by_api(
            client, "ZD-9", flags=["usdt_withdrawal"], usdt_amount="2500", crypto=True
        )
    )["case"]
    csrf = await login(client, "agent")
    html = await page(client, f"/ui/cases/{case['id']}")
    decisions = text_of(section(html, "case-decisions"))
    assert "The CIO: waiting for the decision" in decisions
    assert "The CEO: waiting for the decision" in decisions
    assert 'id="fold-decide"' not in html  # an agent decides nothing
    refused = await post(client, case["id"], "resolve", csrf, resolution="paid out")
    assert refused.status == 409
    assert "waits for the decision of: cio, ceo" in text_of(await refused.text())
    assert ">paid out</textarea>" in await refused.text()

    csrf = await login(client, "cio")
    html = await page(client, f"/ui/cases/{case['id']}")
    decide = html[
        html.index('id="fold-decide"') : html.index("</details>", html.index('id="fold-decide"'))
    ]
    assert '<option value="cio">The CIO</option>' in decide
    assert '<option value="ceo">' not in decide  # the CEO's decision is the CEO's
    await submitted(client, case["id"], "confirm", csrf)
    blank = await post(client, case["id"], "decide", csrf, level="cio", note="")
    assert blank.status == 422
    words = text_of(await blank.text())
    assert "approved : choose or fill in a value" in words and "note : is blank" in words
    await submitted(client, case["id"], "decide", csrf, level="cio", verdict="approve", note="ok")

    csrf = await login(client, "ceo")
    html = await submitted(
        client, case["id"], "decide", csrf, level="ceo", verdict="decline", note="not now"
    )
    decisions = text_of(section(html, "case-decisions"))
    assert "The CIO: Approved by dana" in decisions and "The CEO: Declined by erik" in decisions
    html = await submitted(client, case["id"], "resolve", csrf, resolution="declined, told")
    assert "Resolution: declined, told" in text_of(section(html, "case-summary"))
    assert '<span class="sla sla-none">No clock</span>' in html
    assert "it is resolved" in text_of(section(html, "case-actions"))


async def test_notes_receipt_and_deescalation(client: Client) -> None:
    case = (
        await open_by_api(client, "ZD-1", context=FULL_CONTEXT, checklist=["troubleshooting_done"])
    )["case"]
    csrf = await login(client, "agent")
    html = await submitted(
        client, case["id"], "note", csrf, note="Asked for logs", to_customer="yes"
    )
    timeline = text_of(section(html, "case-timeline"))
    assert "customer update" in timeline and "Asked for logs" in timeline
    await submitted(client, case["id"], "escalate", csrf, to="tier_2", reason="needs L2")
    html = await submitted(client, case["id"], "confirm", csrf)
    summary = section(html, "case-summary")
    assert "Receipt confirmed 2026-03-02 09:00 UTC by alice" in text_of(summary)
    assert 'id="confirm-receipt"' not in html
    assert '<span class="sla sla-met">Met</span>' in summary
    html = await submitted(
        client,
        case["id"],
        "deescalate",
        csrf,
        to="tier_1",
        why="workaround_given",
        note="Workaround sent",
    )
    assert "Level Tier 1 (general support)" in text_of(section(html, "case-summary"))
    assert "De-escalated to tier_1 (workaround given): Workaround sent" in text_of(
        section(html, "case-timeline")
    )


async def test_a_refused_form_keeps_what_was_typed_and_changes_nothing(client: Client) -> None:
    case = (await open_by_api(client, "ZD-1"))["case"]
    before = await case_detail(client, case["id"])
    csrf = await login(client, "agent")
    bad_hash = {"transactions": [{"network": "evm", "hash": "0x12", "at": "2026-03-02T09:00:00Z"}]}
    fields = {
        "summary": "Customer cannot log in",
        "plan": "pro",
        "priority": "P3",
        "contacts": "3",
        "flags": ["legal_threat"],
        "context": json.dumps(bad_hash),
    }
    response = await post(client, case["id"], "update", csrf, **fields)
    assert response.status == 422
    html = await response.text()
    assert_valid_page(html)
    assert "transactions[0].hash : not an EVM transaction hash" in text_of(html)
    assert 'id="update-context"' in html and 'aria-invalid="true"' in html
    assert "&#34;0x12&#34;" in html  # the JSON as typed
    assert 'value="legal_threat" checked' in html and 'value="3"' in html
    for context, problem in (
        ("{not json", "context: is not JSON (Expecting property name"),
        ("[1, 2]", "context : Input should be an object"),
    ):
        refused = await post(client, case["id"], "update", csrf, **{**fields, "context": context})
        assert refused.status == 422
        assert problem in text_of(await refused.text())
    contacts = await post(client, case["id"], "update", csrf, **{**fields, "contacts": "many"})
    assert contacts.status == 422
    assert "contacts : Input should be a valid integer" in text_of(await contacts.text())
    after = await case_detail(client, case["id"])
    assert after["case"] == before["case"]
    assert by_people(after["timeline"]) == by_people(before["timeline"])


async def test_opening_refuses_bad_input_and_a_second_case_for_a_ticket(client: Client) -> None:
    csrf = await login(client, "agent")
    refused = await client.post(
        "/ui/cases/new",
        data={**open_fields(summary=" ", plan="", contacts="0"), "csrf": csrf},
        allow_redirects=False,
    )
    assert refused.status == 422
    html = await refused.text()
    assert_valid_page(html)
    words = text_of(html)
    assert "summary : is blank" in words and "plan : choose or fill in a value" in words
    assert "contacts : Input should be greater than or equal to 1" in words
    assert 'value="ZD-77"' in html  # kept
    await open_by_api(client, "ZD-77")
    again = await client.post(
        "/ui/cases/new", data={**open_fields(), "csrf": csrf}, allow_redirects=False
    )
    assert again.status == 409
    assert "ticket 'ZD-77' has a case already" in text_of(await again.text())
    assert len((await api(client, "GET", "/cases"))["cases"]) == 1


async def test_who_may_do_what_and_the_forms_need_the_session(client: Client) -> None:
    case = (await open_by_api(client, "ZD-1"))["case"]
    csrf = await login(client, "viewer")
    html = await page(client, f"/ui/cases/{case['id']}")
    assert "your support role cannot change it" in text_of(html)
    assert 'action="/ui/cases/' not in section(html, "case-actions")
    assert (await client.get("/ui/cases/new")).status == 403
    refused = await post(client, case["id"], "note", csrf, note="x")
    assert refused.status == 403
    assert "vera (viewer, no support role) may not" in text_of(await refused.text())
    forged = await post(client, case["id"], "note", "forged", note="x")
    assert forged.status == 403
    assert "nothing was changed" in text_of(await forged.text())
    assert (await client.get("/ui/cases/999")).status == 404
    assert (await client.get("/ui/cases/nope")).status == 404
    assert (await post(client, case["id"], "nope", csrf)).status == 404
    client.session.cookie_jar.clear()
    out = await client.get(f"/ui/cases/{case['id']}", allow_redirects=False)
    assert out.headers["Location"] == f"/ui/login?next=/ui/cases/{case['id']}"
    assert (await post(client, case["id"], "note", csrf, note="x")).status == 401
    assert (await case_detail(client, case["id"]))["case"]["last_progress_at"] is None
