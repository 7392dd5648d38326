"""Cases linked to incidents on the dashboard, over real HTTP: a case's page links it to an
incident (as people write it, INC-12) and unlinks it, with the session's CSRF token, the
forms shown only to those who may; the incident's page lists its linked cases and how many
distinct customers they are of; a case waiting for its customer's confirmation says so in
words and stays in the queue, marked; a case's category and component on its forms."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from incident.clock import FakeClock
from incident.config import Settings
from incident.testing import RecordingEffects
from tests.integration.test_dashboard import section, text_of
from tests.integration.test_dashboard_cases import (
    ROLES,
    TOKENS,
    Client,
    api,
    case_detail,
    login,
    open_by_api,
    open_fields,
    page,
    post,
    queue_row,
    submitted,
)
from tests.serving import serving


@pytest.fixture(name="client")
async def dashboard(
    settings: Settings, clock: FakeClock, vendor: RecordingEffects
) -> AsyncIterator[Client]:
    """The service with test_dashboard_cases' people and support roles."""
    configured = dataclasses.replace(
        settings, api_tokens=tuple(TOKENS.values()), support_roles=ROLES
    )
    async with serving(configured, clock, vendor) as test_client:
        yield test_client


async def declare(client: Client, title: str = "Withdrawals delayed") -> int:
    """An incident declared by the agent, who takes command of it (and so may resolve it)."""
    body = await api(client, "POST", "/incidents", {"title": title, "severity": "P2"})
    number: int = body["incident"]["id"]
    await api(
        client, "POST", f"/incidents/{number}/roles", {"role": "commander", "person": "alice"}
    )
    return number


def linked_row(html: str, case_id: int) -> str:
    start = html.index(">", html.index(f'id="linked-case-{case_id}"')) + 1
    return text_of(html[start : html.index("</tr>", start)])


async def test_a_case_is_linked_from_its_page_and_the_incident_lists_its_customers(
    client: Client,
) -> None:
    incident = await declare(client)
    first = (await open_by_api(client, "ZD-1"))["case"]["id"]
    second = (await open_by_api(client, "ZD-2"))["case"]["id"]  # the same customer
    third = (await open_by_api(client, "ZD-3", customer_id="cust-7"))["case"]["id"]
    csrf = await login(client, "agent")

    empty = await page(client, f"/ui/incidents/{incident}")
    assert f"No support case is linked to INC-{incident}." in text_of(
        section(empty, "linked-cases")
    )
    before = await page(client, f"/ui/cases/{first}")
    assert "Incident none linked" in text_of(section(before, "case-summary"))
    assert 'id="unlink-form"' not in before

    html = await submitted(client, first, "link", csrf, incident=f"INC-{incident}")
    assert f'<a href="/ui/incidents/{incident}">INC-{incident}</a>' in section(html, "case-summary")
    assert f"Unlink from INC-{incident}" in text_of(section(html, "case-actions"))
    assert "Move to another incident" in text_of(section(html, "case-actions"))
    await submitted(client, second, "link", csrf, incident=f"#{incident}")
    await submitted(client, third, "link", csrf, incident=str(incident))

    listed = await page(client, f"/ui/incidents/{incident}")
    cases = section(listed, "linked-cases")
    assert "2 distinct customers affected" in text_of(cases)
    assert linked_row(cases, first) == f"CASE-{first} ZD-1 cust-42 Open Tier 1 (general support)"
    assert linked_row(cases, third).startswith(f"CASE-{third} ZD-3 cust-7 Open ")
    assert f'href="/ui/cases/{second}"' in cases

    html = await submitted(client, second, "unlink", csrf)
    assert "Incident none linked" in text_of(section(html, "case-summary"))
    assert (await case_detail(client, second))["case"]["incident"] is None
    cases = section(await page(client, f"/ui/incidents/{incident}"), "linked-cases")
    assert f'id="linked-case-{second}"' not in cases
    assert "2 distinct customers affected" in text_of(cases)


async def test_a_refused_link_names_the_problem_keeps_the_input_and_changes_nothing(
    client: Client,
) -> None:
    incident = await declare(client)
    number = (await open_by_api(client, "ZD-1"))["case"]["id"]
    csrf = await login(client, "agent")

    unreadable = await post(client, number, "link", csrf, incident="soon")
    assert unreadable.status == 422
    html = await unreadable.text()
    assert "give the incident's reference or number, like INC-12" in text_of(html)
    assert 'value="soon" aria-invalid="true"' in html
    missing = await post(client, number, "link", csrf, incident="INC-999")
    assert missing.status == 404
    assert "there is no incident 999" in text_of(await missing.text())
    forged = await post(client, number, "link", "forged", incident=str(incident))
    assert forged.status == 403
    nothing = await post(client, number, "unlink", csrf)
    assert nothing.status == 409
    assert f"CASE-{number} is not linked to an incident" in text_of(await nothing.text())
    assert (await case_detail(client, number))["case"]["incident"] is None

    await login(client, "viewer")
    shown = await page(client, f"/ui/cases/{number}")
    assert 'id="case-link"' not in shown  # a viewer may not link: no form
    refused = await post(client, number, "link", csrf, incident=str(incident))
    assert refused.status == 403
    assert (await case_detail(client, number))["case"]["incident"] is None


async def test_a_case_waiting_for_its_customer_says_so_and_stays_in_the_queue_marked(
    client: Client,
) -> None:
    incident = await declare(client)
    waiting = (await open_by_api(client, "ZD-1"))["case"]["id"]
    other = (await open_by_api(client, "ZD-2"))["case"]["id"]
    await api(client, "POST", f"/cases/{waiting}/link", {"incident": incident})
    await api(client, "POST", f"/incidents/{incident}/resolve", {"summary": "Node replaced"})
    assert (await case_detail(client, waiting))["case"]["status"] == "pending"
    await login(client, "agent")

    html = await page(client, f"/ui/cases/{waiting}")
    summary = text_of(section(html, "case-summary"))
    assert "Summary P3 Medium Waiting for the customer's confirmation Tier 1" in summary
    assert "Waiting for the customer's confirmation since " in summary
    assert "The case is resolved" not in summary
    actions = section(html, "case-actions")
    # Worked, corrected, resolved or unlinked while it waits; not linked elsewhere.
    for form in ("note-form", "update-form", "unlink-form"):
        assert f'id="{form}"' in actions, form
    assert 'id="link-form"' not in actions and 'id="escalate-form"' not in actions

    queue = await page(client, "/ui/cases")
    assert "Waiting for the customer's confirmation" in text_of(queue_row(queue, waiting))
    assert "Waiting for the customer" not in text_of(queue_row(queue, other))
    assert "1 open, 1 waiting for the customer" in text_of(queue)
    listed = section(await page(client, f"/ui/incidents/{incident}"), "linked-cases")
    assert "Waiting for the customer's confirmation" in linked_row(listed, waiting)

    # The customer's answer opens it again.
    html = await submitted(client, waiting, "note", await login(client, "agent"), note="Works")
    assert "Waiting for the customer" not in text_of(section(html, "case-summary"))


async def test_category_and_component_are_on_the_open_and_edit_forms(client: Client) -> None:
    csrf = await login(client, "agent")
    form = await page(client, "/ui/cases/new")
    assert 'name="category" maxlength="100"' in form
    fields = open_fields(category=" Withdrawals ", component="Ethereum")
    response = await client.post(
        "/ui/cases/new", data={**fields, "csrf": csrf}, allow_redirects=False
    )
    assert response.status == 303, text_of(await response.text())
    found = re.fullmatch(r"/ui/cases/(\d+)\?done=open", response.headers["Location"])
    assert found
    number = int(found.group(1))
    html = await page(client, f"/ui/cases/{number}")
    summary = text_of(section(html, "case-summary"))
    assert "Category Withdrawals" in summary and "Component Ethereum" in summary
    assert 'id="update-category" name="category" maxlength="100"' in html

    update = _update_fields(html, category="KYC", component="")
    await submitted(client, number, "update", csrf, **update)
    case = (await case_detail(client, number))["case"]
    assert (case["category"], case["component"]) == ("KYC", "")

    refused = await post(client, number, "update", csrf, **_update_fields(html, category="x\ny"))
    assert refused.status == 422
    refused_html = await refused.text()
    assert "category" in text_of(refused_html)
    invalid = re.search(r'<input id="update-category"[^>]*>', refused_html)
    assert invalid and 'aria-invalid="true"' in invalid.group(0)
    assert 'aria-describedby="update-labels-help form-error"' in invalid.group(0)
    assert (await case_detail(client, number))["case"]["category"] == "KYC"
    long = await client.post(
        "/ui/cases/new",
        data={**open_fields(reference="ZD-78", component="x" * 101), "csrf": csrf},
        allow_redirects=False,
    )
    assert long.status == 422
    assert "component : String should have at most 100 characters" in text_of(await long.text())


def _update_fields(html: str, **changes: Any) -> dict[str, Any]:
    """The update form as it opens (its summary, plan and priority), with `changes`."""
    summary = re.search(r'<textarea id="update-summary"[^>]*>([^<]*)</textarea>', html)
    assert summary
    return {"summary": summary.group(1), "plan": "enterprise", "priority": "P2", **changes}
