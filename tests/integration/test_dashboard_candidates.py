"""The dashboard's incident candidates (/ui/candidates) over real HTTP: three Pro customers
report one stuck bridge transfer, the engine (in the background, as served) proposes an
incident candidate, and people read its evidence and decide it through the forms, with the
session's CSRF token: declare it (the suggested severity preselected) and land on the
incident's page, link its cases to an open incident instead, or dismiss it with a reason.
The forms are shown only to those who may; a refused form shows the page again with the
reason and a 4xx, what was typed kept, nothing changed."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from incident.clock import FakeClock
from incident.config import Settings
from incident.testing import RecordingEffects
from incident.web.dashboard.candidate_pages import DONE
from incident.web.dashboard.routes import _DONE_ELSEWHERE
from tests.integration.test_api_candidates import stuck_case, wait_for_candidate
from tests.integration.test_dashboard import section, text_of
from tests.integration.test_dashboard_cases import ROLES, TOKENS, Client, api, login, page
from tests.integration.test_slack_candidates import the_post
from tests.serving import serving

AGENT = {"Authorization": f"Bearer {TOKENS['agent'].token}"}


@pytest.fixture(name="client")
async def dashboard(
    settings: Settings, clock: FakeClock, vendor: RecordingEffects
) -> AsyncIterator[Client]:
    configured = dataclasses.replace(
        settings, api_tokens=tuple(TOKENS.values()), support_roles=ROLES
    )
    async with serving(configured, clock, vendor) as test_client:
        yield test_client


async def proposed(client: Client) -> tuple[int, list[int]]:
    """Three Pro customers' cases about one stuck transfer, opened through the API; the
    candidate the engine proposes for them."""
    cases = [(await api(client, "POST", "/cases", stuck_case(n)))["case"]["id"] for n in range(3)]
    candidate = await wait_for_candidate(client, AGENT)
    number: int = candidate["id"]
    return number, cases


async def decide(client: Client, number: int, action: str, csrf: str, **fields: Any) -> Any:
    return await client.post(
        f"/ui/candidates/{number}/{action}", data={**fields, "csrf": csrf}, allow_redirects=False
    )


async def candidate_json(client: Client, number: int) -> dict[str, Any]:
    found: dict[str, Any] = await api(client, "GET", f"/candidates/{number}")
    return found


def words(html: str, element_id: str) -> str:
    """The words of one part of the page (by its id), without its own tag."""
    part = section(html, element_id)
    return text_of(part[part.index(">") + 1 :])


def row(html: str, number: int) -> str:
    start = html.index(">", html.index(f'id="candidate-row-{number}"')) + 1
    return text_of(html[start : html.index("</tr>", start)])


async def test_the_list_shows_the_waiting_ones_first_and_the_nav_names_it(
    client: Client,
) -> None:
    await login(client, "viewer")
    empty = await page(client, "/ui/candidates")
    assert '<a href="/ui/candidates" aria-current="page">Incident candidates</a>' in empty
    assert "No candidate is waiting." in text_of(empty)
    number, _ = await proposed(client)

    listed = await page(client, "/ui/candidates")
    waiting = section(listed, "waiting-title")
    assert f'href="/ui/candidates/{number}"' in waiting
    line = row(waiting, number)
    assert line.startswith(f"CAND-{number} P2 High bridge transfer of <amount> usdc from")
    assert "transfers / bridge New 3 (3 cases)" in line and "Waiting for a decision" in line
    assert "None decided yet." in text_of(section(listed, "decided-title"))
    other = await page(client, "/ui/cases")
    assert '<a href="/ui/candidates">Incident candidates</a>' in other


async def test_the_page_shows_the_evidence_and_declaring_leads_to_the_incident(
    client: Client, vendor: RecordingEffects
) -> None:
    number, cases = await proposed(client)
    csrf = await login(client, "agent")
    # The page the patterns channel's post links to.
    link = (await the_post(vendor)).strip().splitlines()[-1].strip()
    assert link == f"http://127.0.0.1:8080/ui/candidates/{number}"
    html = await page(client, link.removeprefix("http://127.0.0.1:8080"))
    summary = text_of(section(html, "candidate-summary"))
    assert "Waiting for a decision New signature" in summary
    assert "bridge transfer of <amount> usdc from ethereum to arbitrum" in summary
    assert "Suggested severity P2 High as it affects multiple users (3 customers)" in summary
    assert "Customers 3 distinct, in 3 cases (3 when proposed, weighted 6.0)" in summary
    assert "Category transfers Component bridge Error codes none" in summary
    assert "New yes: not seen in the 30 days before it" in summary
    assert "First seen 2026-03-02 09:00 UTC" in summary and "Last seen 2026-03-02 09:00" in summary
    table = section(html, "candidate-cases")
    for n, case in enumerate(cases):
        assert f'<a class="ref" href="/ui/cases/{case}">CASE-{case}</a>' in table
        assert f"ZD-{5000 + n} cust-{n} Pro Open none" in text_of(table)
    actions = section(html, "candidate-actions")
    # The suggested severity is the one chosen, until someone picks another.
    assert re.search(r'value="P2" required checked', actions)
    assert len(re.findall(r" checked", actions)) == 1
    assert 'id="join-form"' not in actions  # no open incident to link to
    assert 'id="dismiss-form"' in actions

    response = await decide(client, number, "declare", csrf, severity="P2", title="")
    assert response.status == 303, text_of(await response.text())
    location = response.headers["Location"]
    found = re.fullmatch(r"/ui/incidents/(\d+)\?done=candidate", location)
    assert found, location
    incident = int(found.group(1))
    landed = await page(client, location)
    assert _DONE_ELSEWHERE["candidate"] in text_of(landed)
    for case in cases:
        assert f'href="/ui/cases/{case}"' in section(landed, "linked-cases")
    shown = (await api(client, "GET", f"/incidents/{incident}"))["incident"]
    assert (shown["severity"], shown["declared_by"]) == ("P2", "alice")

    after = await page(client, f"/ui/candidates/{number}")
    decision = words(after, "candidate-decision")
    assert decision.startswith(f"Declared as INC-{incident} by alice ")
    assert 'id="declare-form"' not in after and "It is decided." in text_of(after)
    assert f"INC-{incident}" in text_of(section(after, "candidate-cases"))
    listed = await page(client, "/ui/candidates")
    assert f"Declared INC-{incident}" in row(section(listed, "decided-title"), number)


async def test_a_severity_and_a_title_are_the_declarations_rules_refused_ones_kept(
    client: Client,
) -> None:
    number, _ = await proposed(client)
    csrf = await login(client, "agent")
    refused = await decide(client, number, "declare", csrf, severity="P1", title="two\nlines")
    assert refused.status == 422
    html = await refused.text()
    assert "Not done. Check these fields: title : is blank, or contains line breaks" in text_of(
        html
    )
    assert re.search(
        r'id="declare-title"[^>]*aria-describedby="declare-title-help form-error"', html
    )
    assert 'value="two lines"' in html  # what was typed is kept (on one line)
    assert re.search(r'value="P1" required checked', html)  # the choice kept too
    wrong = await decide(client, number, "declare", csrf, severity="P9")
    assert wrong.status == 422 and "severity" in text_of(await wrong.text())
    assert (await candidate_json(client, number))["candidate"]["status"] == "proposed"
    assert (await api(client, "GET", "/incidents"))["incidents"] == []

    declared = await decide(
        client, number, "declare", csrf, severity="P1", title="Bridge relayer stuck"
    )
    assert declared.status == 303
    (incident,) = (await api(client, "GET", "/incidents"))["incidents"]
    assert (incident["severity"], incident["title"]) == ("P1", "Bridge relayer stuck")


async def test_its_cases_may_join_an_open_incident_instead(client: Client) -> None:
    number, cases = await proposed(client)
    body = await api(client, "POST", "/incidents", {"title": "Relayer down", "severity": "P2"})
    incident = body["incident"]["id"]
    csrf = await login(client, "agent")
    html = await page(client, f"/ui/candidates/{number}")
    join = section(html, "candidate-actions")
    assert f'<option value="{incident}">INC-{incident} P2: Relayer down</option>' in join

    none = await decide(client, number, "join", csrf, incident="")  # the placeholder
    assert none.status == 422 and 'id="join-incident"' in await none.text()
    unknown = await decide(client, number, "join", csrf, incident="soon")
    assert unknown.status == 422
    assert "give the incident's reference or number, like INC-12" in text_of(await unknown.text())
    missing = await decide(client, number, "join", csrf, incident="INC-999")
    assert missing.status == 404 and "there is no incident 999" in text_of(await missing.text())
    assert (await candidate_json(client, number))["candidate"]["status"] == "proposed"

    joined = await decide(client, number, "join", csrf, incident=str(incident))
    assert joined.status == 303
    assert joined.headers["Location"] == f"/ui/incidents/{incident}?done=candidate"
    found = await candidate_json(client, number)
    assert [c["incident"]["id"] for c in found["cases"]] == [incident] * len(cases)


async def test_dismissing_needs_a_reason(client: Client) -> None:
    number, _ = await proposed(client)
    csrf = await login(client, "agent")
    blank = await decide(client, number, "dismiss", csrf, reason="   ")
    assert blank.status == 422
    html = await blank.text()
    assert "reason : is blank; fill it in" in text_of(html)
    assert 'aria-describedby="dismiss-help form-error"' in html
    assert (await candidate_json(client, number))["candidate"]["status"] == "proposed"

    dismissed = await decide(client, number, "dismiss", csrf, reason="Known: the bridge's page")
    assert dismissed.status == 303
    assert dismissed.headers["Location"] == f"/ui/candidates/{number}?done=dismiss"
    after = await page(client, dismissed.headers["Location"])
    assert DONE["dismiss"] in text_of(after)
    decision = words(after, "candidate-decision")
    assert decision.startswith("Dismissed by alice ") and decision.endswith(
        ": Known: the bridge's page"
    )
    again = await decide(client, number, "declare", csrf, severity="P2")
    assert again.status == 409
    assert f"CAND-{number} was dismissed by alice" in text_of(await again.text())
    listed = await page(client, "/ui/candidates")
    assert "Dismissed Known: the bridge's page" in row(section(listed, "decided-title"), number)


async def test_the_forms_are_for_those_who_may_and_need_the_sessions_token(
    client: Client,
) -> None:
    number, _ = await proposed(client)
    csrf = await login(client, "viewer")
    html = await page(client, f"/ui/candidates/{number}")
    assert 'id="declare-form"' not in html and 'id="dismiss-form"' not in html
    assert "your role cannot declare or dismiss it" in text_of(html)
    refused = await decide(client, number, "declare", csrf, severity="P2")
    assert refused.status == 403
    csrf = await login(client, "agent")
    forged = await decide(client, number, "dismiss", "not-the-token", reason="x")
    assert forged.status == 403 and "nothing was changed" in text_of(await forged.text())
    assert (await decide(client, number, "frobnicate", csrf)).status == 404
    assert (await decide(client, 999, "dismiss", csrf, reason="x")).status == 404
    await page(client, "/ui/candidates/999", status=404)
    await page(client, "/ui/candidates/CAND-1", status=404)
    client.session.cookie_jar.clear()
    logged_out = await decide(client, number, "dismiss", csrf, reason="x")
    assert logged_out.status == 401
    assert (await candidate_json(client, number))["candidate"]["status"] == "proposed"
