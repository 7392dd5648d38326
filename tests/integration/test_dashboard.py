"""The commander's dashboard (/ui) over real HTTP: the app on a loopback port, a real SQLite
file, a fake clock and recording vendors; incidents declared through the REST API."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from html import unescape
from html.parser import HTMLParser
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import event
from sqlalchemy.engine import Engine

from incident.clock import FakeClock
from incident.config import ApiToken, Settings
from incident.domain.access import AccessRole
from incident.domain.incident import Cancellation, Severity
from incident.domain.status_page import Catalog, Component
from incident.services import incidents as uc
from incident.testing import RecordingEffects
from incident.web.context import CONTAINER
from incident.web.dashboard.routes import CHANGES
from incident.web.dashboard.sessions import SESSION_LIFETIME, SessionKeys
from incident.web.html import when
from tests.conftest import T0
from tests.serving import serving

TOKENS = {
    "viewer": ApiToken(token="v" * 24, role=AccessRole.VIEWER, name="vera"),
    "responder": ApiToken(token="r" * 24, role=AccessRole.RESPONDER, name="rob"),
    "commander": ApiToken(token="c" * 24, role=AccessRole.COMMANDER, name="cleo"),
}
CATALOG = Catalog.build([Component("api", "API"), Component("web", "Website")])

Client = TestClient[Any, Any]


@pytest.fixture
def ui_settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, api_tokens=tuple(TOKENS.values()), catalog=CATALOG)


async def _client(
    settings: Settings, clock: FakeClock, vendor: RecordingEffects
) -> AsyncIterator[Client]:
    async with serving(settings, clock, vendor) as test_client:
        yield test_client


@pytest.fixture
async def client(
    ui_settings: Settings, clock: FakeClock, vendor: RecordingEffects
) -> AsyncIterator[Client]:
    async for test_client in _client(ui_settings, clock, vendor):
        yield test_client


async def declare(client: Client, **body: Any) -> dict[str, Any]:
    payload = {"title": "Checkout API down", "severity": "P1", "service": "checkout", **body}
    response = await client.post(
        "/api/v1/incidents",
        json=payload,
        headers={"Authorization": f"Bearer {TOKENS['responder'].token}"},
    )
    assert response.status == 201, await response.text()
    incident: dict[str, Any] = (await response.json())["incident"]
    await settled(client, incident["id"])
    return incident


async def settled(client: Client, incident_id: int) -> None:
    """Until the scheduler has run the steps due at declaration (pages, war room ...): a
    test that something changed nothing must not see them land in between."""
    for _ in range(250):
        state = await detail(client, incident_id)
        if all(s["runs_at"] > state["incident"]["declared_at"] for s in state["upcoming"]):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"steps due at declaration still pending: {state['upcoming']}")


async def detail(client: Client, incident_id: int) -> dict[str, Any]:
    response = await client.get(
        f"/api/v1/incidents/{incident_id}",
        headers={"Authorization": f"Bearer {TOKENS['viewer'].token}"},
    )
    body: dict[str, Any] = await response.json()
    return body


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


async def login(client: Client, who: str) -> str:
    """Log in as `who` (anyone logged in before is forgotten); the CSRF token of the
    session's forms."""
    client.session.cookie_jar.clear()
    form = await client.get("/ui/login")
    assert form.status == 200
    response = await client.post(
        "/ui/login",
        data={"csrf": csrf_of(await form.text()), "token": TOKENS[who].token, "next": ""},
        allow_redirects=False,
    )
    assert response.status == 303, await response.text()
    assert response.headers["Location"] == "/ui"
    page = await client.get("/ui")
    assert page.status == 200
    return csrf_of(await page.text())


async def post_form(
    client: Client, incident_id: int, action: str, csrf: str | None, **fields: str
) -> Any:
    data = dict(fields)
    if csrf is not None:
        data["csrf"] = csrf
    return await client.post(
        f"/ui/incidents/{incident_id}/{action}", data=data, allow_redirects=False
    )


def text_of(html: str) -> str:
    """The page's words, without tags or runs of spaces."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def section(html: str, section_id: str) -> str:
    start = html.index(f'id="{section_id}"')
    end = html.find("</section>", start)
    end = html.find("</aside>", start) if end == -1 or section_id == "actions" else end
    return html[start:end]


# --- login and sessions --------------------------------------------------------------------


async def test_pages_redirect_to_the_login_until_logged_in(client: Client) -> None:
    for path in ("/ui", "/ui/incidents/7"):
        response = await client.get(path, allow_redirects=False)
        assert response.status == 303
        assert response.headers["Location"] == f"/ui/login?next={path}"
    # The page's own refresh is told plainly, so its script can say the session ended.
    refresh = await client.get("/ui", headers={"X-Dashboard-Refresh": "1"})
    assert refresh.status == 401
    page = await client.get("/ui/login")
    html = await page.text()
    assert '<label for="token">API token</label>' in html
    assert 'id="token" name="token" type="password"' in html


async def test_login_with_a_token_opens_the_dashboard_and_sets_a_strict_cookie(
    client: Client,
) -> None:
    form = await client.get("/ui/login?next=/ui/incidents/1")
    html = await form.text()
    assert 'name="next" value="/ui/incidents/1"' in html
    response = await client.post(
        "/ui/login",
        data={"csrf": csrf_of(html), "token": TOKENS["commander"].token, "next": "/ui/incidents/1"},
        allow_redirects=False,
    )
    assert response.status == 303
    assert response.headers["Location"] == "/ui/incidents/1"
    cookie = response.headers.getall("Set-Cookie")
    session = next(c for c in cookie if c.startswith("incident_session="))
    assert "HttpOnly" in session and "SameSite=Strict" in session and "Path=/ui" in session
    assert "Secure" not in session  # base_url is http:// here
    assert TOKENS["commander"].token not in session
    page = await client.get("/ui")
    assert page.status == 200
    assert "cleo" in text_of(await page.text())


async def test_a_login_may_only_send_you_to_a_dashboard_page(client: Client) -> None:
    form = await client.get("/ui/login?next=https://evil.example/ui")
    html = await form.text()
    assert 'name="next" value=""' in html
    response = await client.post(
        "/ui/login",
        data={"csrf": csrf_of(html), "token": TOKENS["viewer"].token, "next": "//evil.example"},
        allow_redirects=False,
    )
    assert response.headers["Location"] == "/ui"


async def test_a_wrong_token_is_refused_with_a_clear_message(client: Client) -> None:
    form = await client.get("/ui/login")
    response = await client.post(
        "/ui/login",
        data={"csrf": csrf_of(await form.text()), "token": "not-a-token-at-all-0000"},
        allow_redirects=False,
    )
    assert response.status == 401
    html = await response.text()
    assert "That token is not one this service knows" in text_of(html)
    assert 'role="alert"' in html
    assert not any(c.startswith("incident_session=") for c in response.headers.getall("Set-Cookie"))
    assert (await client.get("/ui", allow_redirects=False)).status == 303
    empty = await client.post(
        "/ui/login", data={"csrf": csrf_of(html), "token": "  "}, allow_redirects=False
    )
    assert empty.status == 422
    assert "Enter your API token" in await empty.text()


async def test_the_login_form_needs_its_own_cookie(client: Client) -> None:
    """Another site cannot post a login form (with a token of its choosing) for a browser."""
    response = await client.post(
        "/ui/login",
        data={"csrf": "made-up", "token": TOKENS["commander"].token},
        allow_redirects=False,
    )
    assert response.status == 403
    assert "expired or came from another site" in text_of(await response.text())
    assert (await client.get("/ui", allow_redirects=False)).status == 303


async def test_logout_ends_the_session(client: Client) -> None:
    csrf = await login(client, "commander")
    refused = await client.post("/ui/logout", data={"csrf": "wrong"}, allow_redirects=False)
    assert refused.status == 403
    assert (await client.get("/ui")).status == 200
    response = await client.post("/ui/logout", data={"csrf": csrf}, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/ui/login?logged_out=1"
    assert (await client.get("/ui", allow_redirects=False)).status == 303
    assert "You are logged out" in await (await client.get("/ui/login?logged_out=1")).text()


async def test_a_session_lasts_twelve_hours(client: Client, clock: FakeClock) -> None:
    await login(client, "responder")
    clock.advance(SESSION_LIFETIME - timedelta(seconds=1))
    assert (await client.get("/ui", allow_redirects=False)).status == 200
    clock.advance(timedelta(seconds=1))
    response = await client.get("/ui", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"].startswith("/ui/login")


def test_session_cookies_are_signed_for_one_configuration(ui_settings: Settings) -> None:
    keys = SessionKeys(ui_settings)
    cookie, session = keys.issue(TOKENS["responder"], now=T0)
    assert keys.read(cookie, now=T0) == session
    assert SessionKeys(ui_settings).read(cookie, now=T0) == session  # another replica
    fingerprint, nonce, expires, signature = cookie.split(".")
    later = str(int(expires) + 3600)
    assert keys.read(".".join([fingerprint, nonce, later, signature]), now=T0) is None
    assert keys.read(cookie[:-2] + "xx", now=T0) is None
    assert keys.read("", now=T0) is None and keys.read("a.b", now=T0) is None
    other = dataclasses.replace(ui_settings, api_tokens=(TOKENS["responder"],))
    assert SessionKeys(other).read(cookie, now=T0) is None  # tokens changed: logged out
    https = dataclasses.replace(ui_settings, base_url="https://incident.example.com")
    assert SessionKeys(https).secure and not keys.secure


# --- the overview --------------------------------------------------------------------------


async def test_the_overview_lists_open_incidents_by_severity_with_countdowns(
    client: Client, clock: FakeClock
) -> None:
    low = await declare(client, title="Search is slow", severity="P3")
    high = await declare(client, title="Checkout API down", severity="P1")
    clock.advance(timedelta(minutes=2))
    await login(client, "responder")
    html = await (await client.get("/ui")).text()
    # P1 first, whatever the order of declaration.
    assert html.index('id="group-p1"') < html.index('id="group-p3"')
    assert html.index("Checkout API down") < html.index("Search is slow")
    words = text_of(html)
    assert f"INC-{high['id']}" in words and f"INC-{low['id']}" in words
    assert "Investigating" in words and "Not acknowledged" in words
    assert "Commander none" in words
    assert f'datetime="{high["declared_at"].replace("+00:00", "Z")}" data-age' in html
    assert ">2m</time>" in html  # the age, two minutes after declaration
    # The next steps of each incident, each with its due time and the time left.
    upcoming = (await detail(client, high["id"]))["upcoming"]
    pending = [s for s in upcoming if s["state"] == "pending"]
    assert pending
    first = pending[0]
    due = first["runs_at"].replace("+00:00", "Z")
    countdown = re.search(
        rf'<time class="countdown" datetime="{re.escape(due)}"[^>]*>([^<]+)<', html
    )
    assert countdown, f"no countdown for {due}"
    assert countdown.group(1) == "due now" or countdown.group(1).startswith("in ")
    # The P1 re-pages 5 minutes after declaration while unacknowledged: 3 minutes from now.
    assert '<time class="countdown" datetime="2026-03-02T09:05:00Z"' in html
    assert re.search(r'datetime="2026-03-02T09:05:00Z" data-countdown[^>]*>in 3m</time>', html)


async def test_an_empty_overview_says_so(client: Client) -> None:
    await login(client, "viewer")
    assert "No open incidents" in text_of(await (await client.get("/ui")).text())


async def test_acknowledging_from_the_overview_returns_to_it(client: Client) -> None:
    incident = await declare(client)
    csrf = await login(client, "responder")
    response = await post_form(client, incident["id"], "acknowledge", csrf, return_to="overview")
    assert response.status == 303
    assert response.headers["Location"] == f"/ui?done=acknowledge&incident={incident['id']}"
    page = text_of(await (await client.get(response.headers["Location"])).text())
    assert f"INC-{incident['id']}: Acknowledged" in page
    assert "Not acknowledged" not in page
    assert (await detail(client, incident["id"]))["incident"]["acknowledged_by"] == "rob"


# --- one incident --------------------------------------------------------------------------


async def test_the_incident_page_shows_details_steps_and_timeline_newest_first(
    client: Client,
) -> None:
    incident = await declare(client, impact="EU customers cannot pay")
    csrf = await login(client, "commander")
    await post_form(client, incident["id"], "note", csrf, text="first note")
    await post_form(client, incident["id"], "note", csrf, text="second note")
    page = await client.get(f"/ui/incidents/{incident['id']}")
    assert page.status == 200
    html = await page.text()
    words = text_of(html)
    assert "Checkout API down" in words and "EU customers cannot pay" in words
    timeline = section(html, "timeline")
    assert timeline.index("second note") < timeline.index("first note")
    assert timeline.index("first note") < timeline.index("P1 declared")
    steps = section(html, "steps")
    for step in (await detail(client, incident["id"]))["upcoming"]:
        if step["state"] == "pending":
            assert f'datetime="{step["runs_at"].replace("+00:00", "Z")}"' in steps
    # Every input has a label.
    for field_id in re.findall(r'<(?:input|textarea|select) id="([^"]+)"', html):
        assert f'<label for="{field_id}">' in html, field_id


async def test_an_unknown_incident_is_a_readable_404(client: Client) -> None:
    await login(client, "viewer")
    for path in ("/ui/incidents/999", "/ui/incidents/abc", "/ui/incidents/0"):
        response = await client.get(path)
        assert response.status == 404
        assert response.content_type == "text/html"
        assert "There is no incident" in text_of(await response.text())


async def test_text_from_people_is_escaped(client: Client) -> None:
    incident = await declare(client, title="<script>alert(1)</script> down")
    await login(client, "viewer")
    html = await (await client.get(f"/ui/incidents/{incident['id']}")).text()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; down" in html


async def test_pages_are_not_cached_nor_framed(client: Client) -> None:
    await login(client, "viewer")
    response = await client.get("/ui")
    assert response.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


async def test_static_files_are_served_under_ui(client: Client) -> None:
    script = await client.get("/ui/static/dashboard.js")
    assert script.status == 200
    assert "javascript" in script.content_type
    assert "data-countdown" in await script.text()
    style = await client.get("/ui/static/dashboard.css")
    assert style.status == 200 and style.content_type == "text/css"
    assert (await client.get("/ui/static/status.css")).status == 404


# --- who may do what -----------------------------------------------------------------------


async def test_a_viewer_sees_the_incident_without_buttons_and_is_refused(
    client: Client,
) -> None:
    incident = await declare(client)
    csrf = await login(client, "viewer")
    page = await client.get(f"/ui/incidents/{incident['id']}")
    html = await page.text()
    assert page.status == 200 and "Checkout API down" in html
    assert "/acknowledge" not in html and "<textarea" not in html
    assert 'action="/ui/incidents' not in html
    assert "cannot change it" in text_of(html)
    assert "/acknowledge" not in await (await client.get("/ui")).text()
    before = await detail(client, incident["id"])
    refused = await post_form(client, incident["id"], "acknowledge", csrf)
    assert refused.status == 403
    assert refused.content_type == "text/html"
    words = text_of(await refused.text())
    assert (
        f"vera (viewer) may not acknowledge on INC-{incident['id']}; only responders, "
        "commanders and admins may" in words
    )
    update = await post_form(client, incident["id"], "update", csrf, message="all good")
    assert update.status == 403
    after = await detail(client, incident["id"])
    assert after["incident"] == before["incident"]
    assert after["timeline"] == before["timeline"]


async def test_a_responder_sees_only_the_forms_it_may_use(client: Client) -> None:
    incident = await declare(client, severity="P2")
    csrf = await login(client, "responder")
    actions = section(await (await client.get(f"/ui/incidents/{incident['id']}")).text(), "actions")
    assert "/acknowledge" in actions and "/update" in actions and "/note" in actions
    assert "/resolve" not in actions and "/role" not in actions
    # Raising the severity is anyone's job, lowering it the commander's.
    assert '<option value="P1"' in actions and '<option value="P3"' not in actions
    assert "skip-step" not in actions
    refused = await post_form(client, incident["id"], "resolve", csrf, summary="fixed")
    assert refused.status == 403
    assert "only the incident's commander" in text_of(await refused.text())
    # Taking command of an incident nobody commands gives the commander's rights on it.
    taken = await post_form(client, incident["id"], "command", csrf)
    assert taken.status == 303
    page = await (await client.get(f"/ui/incidents/{incident['id']}")).text()
    assert "/resolve" in page and "skip-step" in page and '<option value="P3"' in page


async def test_every_form_needs_the_sessions_csrf_token(client: Client) -> None:
    incident = await declare(client)
    await login(client, "commander")
    before = await detail(client, incident["id"])
    fields = {"message": "x", "text": "x", "status": "identified", "severity": "P2"}
    for action in CHANGES:
        for csrf in (None, "forged-token"):
            response = await post_form(client, incident["id"], action, csrf, **fields)
            assert response.status == 403, action
            assert "nothing was changed" in text_of(await response.text())
    after = await detail(client, incident["id"])
    assert after["incident"] == before["incident"] and after["timeline"] == before["timeline"]


async def test_a_post_without_a_session_changes_nothing(client: Client) -> None:
    incident = await declare(client)
    response = await post_form(client, incident["id"], "acknowledge", "anything")
    assert response.status == 401
    # The way back in returns to the incident's page, not to the form's address.
    assert f'href="/ui/login?next=/ui/incidents/{incident["id"]}"' in await response.text()
    assert (await detail(client, incident["id"]))["incident"]["acknowledged_at"] is None


# --- each change ---------------------------------------------------------------------------


async def test_each_form_changes_the_incident_and_shows_on_the_timeline(
    client: Client,
) -> None:
    incident = await declare(client)
    incident_id = incident["id"]
    csrf = await login(client, "commander")

    async def submit(action: str, **fields: str) -> str:
        response = await post_form(client, incident_id, action, csrf, **fields)
        assert response.status == 303, (action, await response.text())
        location = response.headers["Location"]
        assert location == f"/ui/incidents/{incident_id}?done={action}"
        page = await client.get(location)
        assert page.status == 200
        html = await page.text()
        assert CHANGES[action].done in text_of(html)
        return html

    html = await submit("acknowledge")
    assert "acknowledged by cleo" in text_of(section(html, "timeline"))
    html = await submit(
        "update", message="We are on it", status="identified", **{"component.api": "major_outage"}
    )
    timeline = text_of(section(html, "timeline"))
    assert "We are on it" in timeline and "status investigating -> identified" in timeline
    assert "components: api major_outage" in timeline
    assert "Major outage" in text_of(section(html, "summary"))
    html = await submit("note", text="Rolled back deploy 41")
    assert "Rolled back deploy 41" in text_of(section(html, "timeline"))
    html = await submit("status", status="monitoring")
    assert "status identified -> monitoring" in text_of(section(html, "timeline"))
    html = await submit("severity", severity="P2", reason="only EU affected")
    assert "severity P1 -> P2: only EU affected" in text_of(section(html, "timeline"))
    html = await submit("command")
    assert "commander: cleo" in text_of(section(html, "timeline"))
    html = await submit("role", role="comms_lead", person="dana")
    assert "comms_lead: dana" in text_of(section(html, "timeline"))
    html = await submit("public-title", public_title="Payments delayed")
    assert "public title: Payments delayed" in text_of(section(html, "timeline"))

    state = await detail(client, incident_id)
    pending = [s for s in state["upcoming"] if s["state"] == "pending"]
    skipped, snoozed = pending[0], pending[1]
    html = await submit("skip-step", step=skipped["step_id"], reason="done by hand")
    assert f"skipped {skipped['step_id']}: done by hand" in text_of(section(html, "timeline"))
    html = await submit("snooze-step", step=snoozed["step_id"], minutes="30", reason="waiting")
    assert f"snoozed {snoozed['step_id']} until" in text_of(section(html, "timeline"))
    moved = next(
        s
        for s in (await detail(client, incident_id))["upcoming"]
        if (s["step_id"], s["occurrence"]) == (snoozed["step_id"], snoozed["occurrence"])
    )
    assert moved["runs_at"] > snoozed["runs_at"]

    html = await submit("resolve", summary="Rolled back; payments flow again")
    assert "Rolled back; payments flow again" in text_of(section(html, "timeline"))
    assert "Resolved" in text_of(section(html, "summary"))
    html = await submit("rca", link="https://wiki.example.com/rca/1")
    assert "RCA done: https://wiki.example.com/rca/1" in text_of(section(html, "timeline"))
    # The RCA is a link people can open (only http(s) links are accepted).
    assert '<a href="https://wiki.example.com/rca/1"' in section(html, "summary")

    final = (await detail(client, incident_id))["incident"]
    assert final["status"] == "closed"
    assert final["severity"] == "P2"
    assert final["commander"] == "cleo" and final["comms_lead"] == "dana"
    assert final["acknowledged_by"] == "cleo"
    assert final["public_title"] == "Payments delayed"


async def test_bad_input_shows_the_reason_keeps_the_text_and_changes_nothing(
    client: Client,
) -> None:
    incident = await declare(client)
    incident_id = incident["id"]
    csrf = await login(client, "commander")
    before = await detail(client, incident_id)
    cases: list[tuple[str, dict[str, str], int, str]] = [
        ("update", {"message": "   "}, 422, "message: a customer update needs a message"),
        ("update", {"message": "Fixing", "status": "sleeping"}, 422, "unknown status 'sleeping'"),
        (
            "update",
            {"message": "Kept text", "component.nope": "major_outage"},
            422,
            "unknown component 'nope'",
        ),
        (
            "update",
            {"message": "Kept", "component.api": "on_fire"},
            422,
            "unknown component status",
        ),
        ("status", {"status": "bogus"}, 422, "unknown status 'bogus'"),
        ("status", {}, 422, "status: choose the new status"),
        ("severity", {"reason": "worse"}, 422, "severity: choose the new severity"),
        ("status", {"status": "resolved"}, 409, "use resolve to set 'resolved'"),
        ("status", {"status": "investigating"}, 409, "is already investigating"),
        ("note", {"text": ""}, 422, "a note needs some text"),
        ("severity", {"severity": "P9"}, 422, "unknown severity 'P9'"),
        ("resolve", {"summary": ""}, 422, "say in a sentence what was wrong"),
        ("role", {"role": "boss", "person": "x"}, 422, "unknown role 'boss'"),
        ("skip-step", {"step": "no-such-step", "reason": "x"}, 404, "has no upcoming occurrence"),
        (
            "snooze-step",
            {"step": "x", "minutes": "soon", "reason": "x"},
            422,
            "whole number of minutes",
        ),
        ("rca", {"link": "https://x"}, 409, "resolve it before marking the RCA done"),
        ("update", {"message": "x" * 5001}, 422, "keep it to 5000 at most"),
    ]
    for action, fields, status, reason in cases:
        response = await post_form(client, incident_id, action, csrf, **fields)
        assert response.status == status, (action, fields, await response.text())
        assert response.content_type == "text/html"
        html = await response.text()
        assert reason in text_of(html), (action, reason)
        assert 'role="alert"' in html
    # What was typed into a refused form is there to fix, not to type again.
    response = await post_form(
        client,
        incident_id,
        "update",
        csrf,
        message="Kept text",
        **{"component.nope": "major_outage"},
    )
    assert ">Kept text</textarea>" in await response.text()
    after = await detail(client, incident_id)
    assert after["incident"] == before["incident"]
    assert after["timeline"] == before["timeline"]


async def test_an_unknown_form_is_a_readable_404(client: Client) -> None:
    incident = await declare(client)
    csrf = await login(client, "commander")
    response = await post_form(client, incident["id"], "delete-everything", csrf)
    assert response.status == 404
    assert "There is no such form" in text_of(await response.text())


# --- keeping the page current --------------------------------------------------------------


async def test_an_unchanged_page_answers_304_and_a_change_a_new_page(client: Client) -> None:
    incident = await declare(client)
    csrf = await login(client, "responder")
    for path in ("/ui", f"/ui/incidents/{incident['id']}"):
        first = await client.get(path)
        etag = first.headers["ETag"]
        assert f'data-etag="{etag.replace(chr(34), "&#34;")}"' in await first.text()
        again = await client.get(path, headers={"If-None-Match": etag})
        assert again.status == 304
    etags = {}
    for path in ("/ui", f"/ui/incidents/{incident['id']}"):
        etags[path] = (await client.get(path)).headers["ETag"]
    await post_form(client, incident["id"], "acknowledge", csrf)
    for path, etag in etags.items():
        changed = await client.get(path, headers={"If-None-Match": etag})
        assert changed.status == 200
        assert changed.headers["ETag"] != etag


async def test_the_link_in_messages_opens_the_incident_page(client: Client) -> None:
    incident = await declare(client)
    await login(client, "viewer")
    base = "http://127.0.0.1:8080"  # settings.base_url in these tests
    link = f"{base}/ui/incidents/{incident['id']}"
    response = await client.get(link.removeprefix(base))
    assert response.status == 200
    assert when(T0) in text_of(await response.text())


# --- pages stay valid and accessible -------------------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


class PageCheck(HTMLParser):
    """What a page must be for browsers and screen readers: every element closed in order,
    ids unique and every reference to one resolved, every field labelled, one h1 and no
    heading level skipped, no form inside a form, and a CSRF token in every POST form."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.stack: list[str] = []
        self.ids: list[str] = []
        self.references: list[tuple[str, str]] = []  # (attribute, id)
        self.labelled: set[str] = set()
        self.fields: list[tuple[str, dict[str, str | None]]] = []
        self.headings: list[int] = []
        self.forms: list[dict[str, str | None]] = []
        self.csrf_in_form: list[bool] = []
        self.lang = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "html":
            self.lang = attributes.get("lang") or ""
        self._note_ids(tag, attributes)
        if tag in ("input", "select", "textarea"):
            self._note_field(tag, attributes)
        if re.fullmatch(r"h[1-6]", tag):
            self.headings.append(int(tag[1]))
        if tag == "form":
            self._open_form(attributes)
        if tag not in VOID:
            self.stack.append(tag)

    def _note_ids(self, tag: str, attributes: dict[str, str | None]) -> None:
        """The id an element has, and the ids it refers to."""
        if attributes.get("id"):
            self.ids.append(str(attributes["id"]))
        for name in ("aria-describedby", "aria-labelledby"):
            for ref in str(attributes.get(name) or "").split():
                self.references.append((name, ref))
        if tag == "label" and attributes.get("for"):
            self.labelled.add(str(attributes["for"]))
            self.references.append(("for", str(attributes["for"])))

    def _note_field(self, tag: str, attributes: dict[str, str | None]) -> None:
        kind = attributes.get("type") or ""
        if kind not in ("hidden", "submit", "button"):
            self.fields.append((tag, attributes))
        if self.csrf_in_form and attributes.get("name") == "csrf":
            self.csrf_in_form[-1] = True

    def _open_form(self, attributes: dict[str, str | None]) -> None:
        if "form" in self.stack:
            self.problems.append("a form inside a form")
        self.forms.append(attributes)
        self.csrf_in_form.append(False)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            self.problems.append(f"</{tag}> closes a void element")
            return
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes <{self.stack[-1] if self.stack else ''}>")
            if tag in self.stack:
                while self.stack and self.stack.pop() != tag:
                    pass
            return
        self.stack.pop()
        if tag == "form":
            form = self.forms[-1]
            if (form.get("method") or "get").lower() == "post" and not self.csrf_in_form[-1]:
                self.problems.append(f"the form posting to {form.get('action')} has no CSRF token")
            self.csrf_in_form.pop()

    def verdict(self) -> list[str]:
        problems = list(self.problems)
        if self.stack:
            problems.append(f"never closed: {self.stack}")
        if self.lang != "en":
            problems.append("<html> has no lang")
        duplicated = {i for i in self.ids if self.ids.count(i) > 1}
        if duplicated:
            problems.append(f"ids used twice: {sorted(duplicated)}")
        for attribute, ref in self.references:
            if ref not in self.ids:
                problems.append(f"{attribute} names a missing id {ref!r}")
        for tag, attributes in self.fields:
            field_id = attributes.get("id")
            if not attributes.get("aria-label") and (not field_id or field_id not in self.labelled):
                problems.append(f"<{tag} name={attributes.get('name')!r}> has no label")
        if self.headings.count(1) != 1:
            problems.append(f"{self.headings.count(1)} h1 headings")
        for before, after in itertools.pairwise(self.headings):
            if after > before + 1:
                problems.append(f"an h{after} follows an h{before}")
        return problems


def assert_valid_page(html: str) -> None:
    check = PageCheck()
    check.feed(html)
    check.close()
    assert check.verdict() == [], check.verdict()


async def api(
    client: Client, method: str, path: str, body: Any = None, who: str = "commander"
) -> Any:
    response = await client.request(
        method,
        f"/api/v1{path}",
        json=body,
        headers={"Authorization": f"Bearer {TOKENS[who].token}"},
    )
    assert response.status < 300, (method, path, await response.text())
    return await response.json()


async def valid_page(client: Client, path: str, status: int = 200) -> str:
    response = await client.get(path)
    assert response.status == status, (path, await response.text())
    html = await response.text()
    assert_valid_page(html)
    return html


async def test_every_dashboard_page_is_valid_and_labelled(client: Client) -> None:
    held = await declare(client, title="Leaked keys", category="security")
    await held_step(client, held["id"])
    resolved = await declare(client, title="Search slow", severity="P3")
    await api(client, "POST", f"/incidents/{resolved['id']}/resolve", {"summary": "fixed"})
    cancelled = await declare(client, title="Disk alarm", severity="P4")
    await api(client, "POST", f"/incidents/{cancelled['id']}/cancel", {"reason": "false_alarm"})
    merged = await declare(client, title="Leaked keys again")
    await api(client, "POST", f"/incidents/{merged['id']}/merge", {"into": held["id"]})
    await api(
        client,
        "POST",
        f"/incidents/{resolved['id']}/follow-ups",
        {"title": "Add an index", "owner": "sam", "due_at": "2026-03-09T09:00:00Z"},
    )
    await login(client, "commander")
    for path in (
        "/ui",
        "/ui/declare",
        "/ui/history",
        "/ui/history?q=keys&status=cancelled&severity=P1",
        "/ui/history?q=no-such-thing",
        *(f"/ui/incidents/{i['id']}" for i in (held, resolved, cancelled, merged)),
    ):
        await valid_page(client, path)
    await valid_page(client, "/ui/history?status=investigating", 422)
    refused = await client.post("/ui/declare", data={"csrf": await page_csrf(client), "title": ""})
    assert refused.status == 422
    assert_valid_page(await refused.text())
    refused = await post_form(client, held["id"], "cancel", await page_csrf(client), reason="x")
    assert refused.status == 422
    assert_valid_page(await refused.text())
    await login(client, "viewer")
    for path in ("/ui", "/ui/history", f"/ui/incidents/{held['id']}"):
        await valid_page(client, path)


async def page_csrf(client: Client) -> str:
    return csrf_of(await (await client.get("/ui")).text())


async def held_step(client: Client, incident_id: int) -> dict[str, Any]:
    """The held step of a security incident, once the scheduler has held it."""
    for _ in range(250):
        upcoming = (await detail(client, incident_id))["upcoming"]
        held: list[dict[str, Any]] = [u for u in upcoming if u["state"] == "held"]
        if held:
            return held[0]
        await asyncio.sleep(0.02)
    raise AssertionError(f"no step held: {upcoming}")


# --- declaring from the dashboard ----------------------------------------------------------


def declare_fields(**fields: str) -> dict[str, str]:
    return {
        "title": "Payments failing in the EU",
        "severity": "P2",
        "service": "payments",
        "impact": "Card payments fail for some EU customers",
        "category": "general",
        "component.api": "partial_outage",
        "public_title": "Payments failing for some customers",
        "key": "a-declare-form-key-0001",
        **fields,
    }


async def incidents_now(client: Client) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = (await api(client, "GET", "/incidents", who="viewer"))[
        "incidents"
    ]
    return listed


async def test_declaring_from_the_form_opens_the_new_incidents_page(client: Client) -> None:
    csrf = await login(client, "responder")
    overview = await (await client.get("/ui")).text()
    assert 'href="/ui/declare"' in overview
    form = await valid_page(client, "/ui/declare")
    assert 'action="/ui/declare"' in form and 'name="csrf"' in form
    assert 'id="declare-component-api" name="component.api"' in form  # the configured catalog
    assert 'value="security"' in form and 'value="P1"' in form
    key = re.search(r'name="key" value="([^"]+)"', form)
    assert key is not None
    fields = declare_fields(key=key.group(1))
    response = await client.post(
        "/ui/declare", data={**fields, "csrf": csrf}, allow_redirects=False
    )
    assert response.status == 303, await response.text()
    (incident,) = await incidents_now(client)
    assert response.headers["Location"] == f"/ui/incidents/{incident['id']}?done=declare"
    page = text_of(await (await client.get(response.headers["Location"])).text())
    assert "Incident declared; its playbook has started." in page
    assert incident["title"] == "Payments failing in the EU" and incident["severity"] == "P2"
    assert incident["service"] == "payments"
    assert incident["impact"] == "Card payments fail for some EU customers"
    assert incident["components"] == {"api": "partial_outage"}
    assert incident["public_title"] == "Payments failing for some customers"
    assert incident["declared_by"] == "rob"
    # The same form sent twice (a double click, a reload) declares once.
    again = await client.post("/ui/declare", data={**fields, "csrf": csrf}, allow_redirects=False)
    assert again.headers["Location"] == response.headers["Location"]
    assert len(await incidents_now(client)) == 1
    # Sent again with other details (a form the browser restored), it declares nothing.
    changed = await client.post(
        "/ui/declare", data={**fields, "title": "Other", "csrf": csrf}, allow_redirects=False
    )
    assert changed.status == 422
    words = text_of(await changed.text())
    assert "This form was already used to declare an incident with other details" in words
    assert len(await incidents_now(client)) == 1
    # Optional fields left empty take the API's defaults; a security category re-routes.
    minimal = {"title": "Keys leaked", "severity": "p1", "category": "security", "csrf": csrf}
    refused = await client.post("/ui/declare", data=minimal, allow_redirects=False)
    assert refused.status == 422  # severities are written as the API takes them: P1
    minimal["severity"] = "P1"
    response = await client.post("/ui/declare", data=minimal, allow_redirects=False)
    assert response.status == 303
    newest = (await incidents_now(client))[0]
    assert newest["category"] == "security" and newest["service"] == ""
    assert newest["public_title"] is None and newest["components"] == {}


async def test_a_viewer_has_no_declare_form_and_is_refused(client: Client) -> None:
    csrf = await login(client, "viewer")
    assert "/ui/declare" not in await (await client.get("/ui")).text()
    page = await client.get("/ui/declare")
    assert page.status == 403
    assert "vera (viewer) may not declare incidents" in text_of(await page.text())
    assert 'action="/ui/declare"' not in await page.text()
    refused = await client.post(
        "/ui/declare", data={**declare_fields(), "csrf": csrf}, allow_redirects=False
    )
    assert refused.status == 403
    assert "only responders, commanders and admins may" in text_of(await refused.text())
    assert await incidents_now(client) == []


async def test_a_refused_declaration_says_why_keeps_the_text_and_declares_nothing(
    client: Client,
) -> None:
    csrf = await login(client, "responder")
    cases: list[tuple[dict[str, str], str]] = [
        ({"title": "  "}, "title: is blank; fill it in"),
        ({"title": "x" * 201}, "title: String should have at most 200 characters"),
        ({"title": "Broken\u202eterminal"}, "title: is blank, or contains line breaks"),
        ({"severity": ""}, "severity: choose or fill in a value"),
        ({"severity": "P9"}, "severity: Input should be 'P1', 'P2', 'P3' or 'P4'"),
        ({"category": "gossip"}, "category: Input should be"),
        ({"component.api": "on_fire"}, "components.api: Input should be 'operational'"),
        ({"component.nope": "major_outage"}, "unknown component 'nope'"),
        ({"public_title": "a\nb"}, "public_title: is blank, or contains line breaks"),
        ({"impact": "x" * 5001}, "impact: String should have at most 5000 characters"),
    ]
    for change, reason in cases:
        fields = {**declare_fields(), **change, "csrf": csrf}
        response = await client.post("/ui/declare", data=fields, allow_redirects=False)
        assert response.status == 422, (change, await response.text())
        html = await response.text()
        assert reason in text_of(html), (change, text_of(html))
        assert 'role="alert"' in html, change
        # The field at fault is marked (a component the page does not list has no field).
        assert ('aria-invalid="true"' in html) == ("component.nope" not in change), change
        # What was typed is there to fix.
        assert 'value="Card payments fail' not in html  # a textarea keeps it as its text
        assert ">Card payments fail for some EU customers</textarea>" in html or "impact" in change
    # Several problems at once are all named.
    both = await client.post(
        "/ui/declare",
        data={**declare_fields(), "title": "", "severity": "P0", "csrf": csrf},
        allow_redirects=False,
    )
    words = text_of(await both.text())
    assert "title: is blank" in words and "severity: Input should be" in words
    assert await incidents_now(client) == []


async def test_the_declare_form_needs_the_sessions_csrf_token(client: Client) -> None:
    await login(client, "commander")
    for csrf in (None, "forged-token"):
        data = declare_fields()
        if csrf is not None:
            data["csrf"] = csrf
        response = await client.post("/ui/declare", data=data, allow_redirects=False)
        assert response.status == 403
        assert "nothing was changed" in text_of(await response.text())
    await client.post("/ui/logout", data={"csrf": await page_csrf(client)})
    response = await client.post("/ui/declare", data=declare_fields(), allow_redirects=False)
    assert response.status == 401
    assert await incidents_now(client) == []


# --- editing, cancelling, reopening, merging, approving, follow-ups ------------------------


async def submitted(client: Client, incident_id: int, action: str, csrf: str, **fields: str) -> str:
    """Post a form that must succeed; the page it leads back to."""
    response = await post_form(client, incident_id, action, csrf, **fields)
    assert response.status == 303, (action, await response.text())
    location = response.headers["Location"]
    assert location == f"/ui/incidents/{incident_id}?done={action}"
    html = await valid_page(client, location)
    assert CHANGES[action].done in text_of(html)
    return html


async def test_editing_the_details_re_routes_and_goes_on_the_timeline(client: Client) -> None:
    incident = await declare(client)
    csrf = await login(client, "responder")  # correcting the facts is anyone's job
    actions = section(await valid_page(client, f"/ui/incidents/{incident['id']}"), "actions")
    assert 'id="edit-title" name="title" maxlength="200" required value="Checkout API down"' in (
        actions
    )
    html = await submitted(
        client,
        incident["id"],
        "edit",
        csrf,
        title="Checkout down in the EU",
        impact="EU card payments fail",
        service="checkout-eu",
        category="security",
    )
    timeline = text_of(section(html, "timeline"))
    assert "edited: title 'Checkout API down' -> 'Checkout down in the EU'" in timeline
    assert "category 'general' -> 'security'" in timeline
    summary = text_of(section(html, "summary"))
    assert "Category security" in summary and "EU card payments fail" in summary
    after = (await detail(client, incident["id"]))["incident"]
    assert (after["title"], after["service"], after["category"]) == (
        "Checkout down in the EU",
        "checkout-eu",
        "security",
    )
    # The security category holds automatic customer texts: the steps say so ahead.
    assert "Needs approval" in text_of(section(html, "steps"))


async def test_cancelling_asks_for_confirmation_then_stops_the_playbook(client: Client) -> None:
    incident = await declare(client)
    incident_id = incident["id"]
    csrf = await login(client, "commander")
    page = await valid_page(client, f"/ui/incidents/{incident_id}")
    warning = text_of(section(page, "actions"))
    assert "This stops the playbook." in warning and "merge it instead" in warning
    before = await detail(client, incident_id)
    unconfirmed = await post_form(
        client, incident_id, "cancel", csrf, reason="false_alarm", note="test alert"
    )
    assert unconfirmed.status == 422
    html = await unconfirmed.text()
    assert "confirm: tick the box to confirm that cancelling stops the playbook" in text_of(html)
    assert ">test alert</textarea>" in html and 'value="false_alarm" required checked' in html
    assert (await detail(client, incident_id))["incident"] == before["incident"]

    html = await submitted(
        client, incident_id, "cancel", csrf, reason="false_alarm", note="test alert", confirm="yes"
    )
    summary = text_of(section(html, "summary"))
    assert "Cancelled on 2026-03-02 09:00 UTC as a false alarm: test alert." in summary
    assert "Its playbook has stopped" in summary
    assert "cancelled as a false alarm: test alert" in text_of(section(html, "timeline"))
    # Nothing is left to do but undo its effects, and nothing to change but notes.
    actions = section(html, "actions")
    for gone in ("/cancel", "/update", "/resolve", "/merge", "/edit", "/follow-up"):
        assert gone not in actions, gone
    state = await detail(client, incident_id)
    assert state["incident"]["status"] == "cancelled"
    assert state["incident"]["cancellation"] == "false_alarm"
    assert {u["step_id"] for u in state["upcoming"]} <= {
        "pager-resolve-cancelled",
        "status-page-withdrawn",
        "refresh-war-room-cancelled",
    }
    # The overview lists open incidents only; history lists this one.
    assert "Checkout API down" not in text_of(await (await client.get("/ui")).text())
    history = text_of(await valid_page(client, "/ui/history"))
    assert f"INC-{incident_id} Checkout API down" in history and "a false alarm" in history


async def test_reopening_a_resolved_incident(client: Client) -> None:
    incident = await declare(client)
    incident_id = incident["id"]
    csrf = await login(client, "commander")
    assert "/reopen" not in section(
        await valid_page(client, f"/ui/incidents/{incident_id}"), "actions"
    )
    await submitted(client, incident_id, "resolve", csrf, summary="Rolled back")
    html = await valid_page(client, f"/ui/incidents/{incident_id}")
    assert 'action="/ui/incidents/' + str(incident_id) + '/reopen"' in section(html, "actions")
    assert 'href="/ui/history">Past incidents</a>' in html  # the way back from a past one
    html = await submitted(
        client, incident_id, "reopen", csrf, reason="errors are back", status="identified"
    )
    assert "Reopened on 2026-03-02 09:00 UTC" in text_of(section(html, "summary"))
    assert "reopened (identified): errors are back" in text_of(section(html, "timeline"))
    state = (await detail(client, incident_id))["incident"]
    assert state["status"] == "identified" and state["resolved_at"] is None


async def test_merging_a_duplicate_links_both_incidents(client: Client) -> None:
    target = await declare(client)
    duplicate = await declare(client, title="Checkout errors again")
    csrf = await login(client, "commander")
    html = await submitted(client, duplicate["id"], "merge", csrf, into=f"inc-{target['id']}")
    banner = section(html, "summary")
    assert f'<a href="/ui/incidents/{target["id"]}">INC-{target["id"]}</a>' in banner
    assert f"Merged into INC-{target['id']} as a duplicate" in text_of(banner)
    other = await valid_page(client, f"/ui/incidents/{target['id']}")
    assert (
        f"INC-{duplicate['id']} merged into this incident as a duplicate: Checkout errors again"
        in text_of(section(other, "timeline"))
    )
    state = (await detail(client, duplicate["id"]))["incident"]
    assert state["merged_into"] == target["id"] and state["cancellation"] == "duplicate"
    history = await valid_page(client, "/ui/history?status=cancelled")
    assert f'into <a href="/ui/incidents/{target["id"]}">INC-{target["id"]}</a>' in history


async def test_merging_needs_commander_rights_on_both(client: Client) -> None:
    target = await declare(client)
    duplicate = await declare(client, title="Checkout errors again")
    csrf = await login(client, "responder")
    # Commanding the duplicate gives commander rights on it, not on the other one.
    await post_form(client, duplicate["id"], "command", csrf)
    actions = section(await valid_page(client, f"/ui/incidents/{duplicate['id']}"), "actions")
    assert "/merge" in actions
    before = await detail(client, target["id"])
    refused = await post_form(client, duplicate["id"], "merge", csrf, into=str(target["id"]))
    assert refused.status == 403
    assert f"rob (responder) may not merge incidents on INC-{target['id']}" in text_of(
        await refused.text()
    )
    assert (await detail(client, duplicate["id"]))["incident"]["status"] == "investigating"
    assert (await detail(client, target["id"]))["timeline"] == before["timeline"]


async def test_a_held_text_is_shown_and_approved_from_its_step(client: Client) -> None:
    incident = await declare(client, title="Leaked keys", category="security")
    incident_id = incident["id"]
    step = await held_step(client, incident_id)
    csrf = await login(client, "responder")
    html = await valid_page(client, f"/ui/incidents/{incident_id}")
    steps = section(html, "steps")
    assert "Held for approval" in text_of(steps) and "It would say" in text_of(steps)
    assert "/approve-step" not in steps  # the commander's call
    held = next(
        e for e in (await detail(client, incident_id))["timeline"] if e["kind"] == "step_held"
    )
    assert held["step_id"] == step["step_id"]
    refused = await post_form(client, incident_id, "approve-step", csrf, step=step["step_id"])
    assert refused.status == 403
    csrf = await login(client, "commander")
    html = await valid_page(client, f"/ui/incidents/{incident_id}")
    steps = section(html, "steps")
    assert "Approve and send" in steps and "Approve ahead" in steps
    assert "The held text" in section(html, "timeline")
    html = await submitted(client, incident_id, "approve-step", csrf, step=step["step_id"])
    assert f"approved {step['step_id']}: it goes out now" in text_of(section(html, "timeline"))
    # An upcoming customer text approved ahead goes out when due, without being held.
    ahead = next(
        u
        for u in (await detail(client, incident_id))["upcoming"]
        if u["needs_approval"] and u["state"] == "pending"
    )
    html = await submitted(client, incident_id, "approve-step", csrf, step=ahead["step_id"])
    assert "Approved by cleo" in text_of(section(html, "steps"))
    assert f"approved {ahead['step_id']} in advance" in text_of(section(html, "timeline"))


async def test_follow_ups_are_listed_added_and_marked_done(client: Client) -> None:
    incident = await declare(client)
    incident_id = incident["id"]
    csrf = await login(client, "responder")
    html = await valid_page(client, f"/ui/incidents/{incident_id}")
    assert "No follow-up action items yet." in text_of(section(html, "follow-ups"))
    html = await submitted(
        client,
        incident_id,
        "follow-up",
        csrf,
        title="Alert on pool exhaustion",
        owner="sam@example.com",
        due_at="2026-03-09T09:00",  # a datetime-local field: UTC, as the page says
    )
    listed = text_of(section(html, "follow-ups"))
    assert "Alert on pool exhaustion" in listed
    assert "Owner sam@example.com · due 2026-03-09 09:00 UTC" in listed
    (item,) = (await detail(client, incident_id))["follow_ups"]
    assert item["due_at"] == "2026-03-09T09:00:00Z"
    # Its reminders are steps of the plan, listed with the others.
    assert f"follow-up-{item['id']}.reminder" in section(html, "steps")
    html = await submitted(client, incident_id, "follow-up-done", csrf, follow_up=str(item["id"]))
    assert f"{item['ref']} Alert on pool exhaustion" in text_of(section(html, "follow-ups"))
    assert "done 2026-03-02 09:00 UTC by rob" in text_of(section(html, "follow-ups"))
    assert "/follow-up-done" not in section(html, "follow-ups")
    (item,) = (await detail(client, incident_id))["follow_ups"]
    assert item["done_by"] == "rob"


async def test_the_markdown_documents_are_served_to_the_session(client: Client) -> None:
    incident = await declare(client)
    incident_id = incident["id"]
    for name in ("timeline.md", "postmortem.md"):
        anonymous = await client.get(f"/ui/incidents/{incident_id}/{name}", allow_redirects=False)
        assert anonymous.status == 303
        assert anonymous.headers["Location"] == f"/ui/login?next=/ui/incidents/{incident_id}"
    await login(client, "viewer")
    page = await valid_page(client, f"/ui/incidents/{incident_id}")
    assert f'href="/ui/incidents/{incident_id}/timeline.md"' in page
    assert f'href="/ui/incidents/{incident_id}/postmortem.md"' in page
    for name, api_path in (("timeline.md", "timeline.md"), ("postmortem.md", "postmortem")):
        response = await client.get(f"/ui/incidents/{incident_id}/{name}")
        assert response.status == 200
        assert response.content_type == "text/markdown" and response.charset == "utf-8"
        assert response.headers["Cache-Control"] == "no-store"
        assert f'filename="INC-{incident_id}-' in response.headers["Content-Disposition"]
        text = await response.text()
        assert text.startswith("# ") and "Checkout API down" in text
        from_api = await client.get(
            f"/api/v1/incidents/{incident_id}/{api_path}",
            headers={"Authorization": f"Bearer {TOKENS['viewer'].token}"},
        )
        assert text == await from_api.text()  # the API's own document
    missing = await client.get("/ui/incidents/999/timeline.md")
    assert missing.status == 404 and "There is no incident" in text_of(await missing.text())


# Valid fields for each new form; a viewer posting them is refused all the same.
NEW_FORMS: dict[str, dict[str, str]] = {
    "edit": {"title": "Renamed", "impact": "", "service": "", "category": "general"},
    "cancel": {"reason": "false_alarm", "note": "", "confirm": "yes"},
    "reopen": {"reason": "back", "status": "investigating"},
    "merge": {"into": "1"},
    "approve-step": {"step": "status-page-investigating"},
    "follow-up": {"title": "Fix it", "owner": "sam", "due_at": "2026-03-09T09:00"},
    "follow-up-done": {"follow_up": "1"},
}


async def test_a_viewer_sees_none_of_the_new_forms_and_is_refused(client: Client) -> None:
    target = await declare(client)
    incident = await declare(client, title="Leaked keys", category="security")
    await held_step(client, incident["id"])
    await api(
        client,
        "POST",
        f"/incidents/{incident['id']}/follow-ups",
        {"title": "Rotate keys", "owner": "sam", "due_at": "2026-03-09T09:00:00Z"},
    )
    csrf = await login(client, "viewer")
    html = await valid_page(client, f"/ui/incidents/{incident['id']}")
    assert 'action="/ui/incidents' not in html
    assert "Rotate keys" in text_of(section(html, "follow-ups"))  # read, not changed
    assert "Held for approval" in text_of(section(html, "steps"))
    before = await detail(client, incident["id"])
    for action, fields in NEW_FORMS.items():
        posted = {"into": str(target["id"])} if action == "merge" else fields
        response = await post_form(client, incident["id"], action, csrf, **posted)
        assert response.status == 403, action
        assert "vera (viewer) may not" in text_of(await response.text()), action
    after = await detail(client, incident["id"])
    assert after == before


async def test_the_new_forms_refuse_bad_input_with_the_reason_and_change_nothing(
    client: Client,
) -> None:
    incident = await declare(client)
    incident_id = incident["id"]
    csrf = await login(client, "commander")
    await api(
        client,
        "POST",
        f"/incidents/{incident_id}/follow-ups",
        {"title": "Add an index", "owner": "sam", "due_at": "2026-03-09T09:00:00Z"},
    )
    before = await detail(client, incident_id)
    same = {"title": "Checkout API down", "impact": "", "service": "checkout"}
    cases: list[tuple[str, dict[str, str], int, str]] = [
        ("edit", {**same, "title": " "}, 422, "title: is blank; fill it in"),
        ("edit", {**same, "category": "gossip"}, 422, "category: Input should be"),
        ("edit", {**same, "service": "a\tb"}, 422, "service: contains line breaks"),
        ("edit", same, 409, "nothing to change on"),
        ("edit", {}, 422, "give at least one of title, impact, service, category"),
        ("cancel", {"reason": "bored", "confirm": "yes"}, 422, "reason: Input should be"),
        ("cancel", {"confirm": "yes"}, 422, "reason: choose or fill in a value"),
        ("cancel", {"reason": "duplicate", "confirm": "yes"}, 422, "reason: Input should be"),
        ("cancel", {"reason": "declined"}, 422, "tick the box to confirm"),
        ("reopen", {"reason": "back"}, 409, "only a resolved incident can be reopened"),
        ("reopen", {"reason": " "}, 422, "reason: is blank"),
        ("reopen", {"reason": "x", "status": "resolved"}, 422, "status: Input should be"),
        ("merge", {"into": "yesterday's"}, 422, "give the incident's reference or number"),
        ("merge", {"into": ""}, 422, "give the incident's reference or number"),
        ("merge", {"into": f"INC-{incident_id}"}, 422, "cannot be merged into itself"),
        ("merge", {"into": "INC-999"}, 404, "there is no incident 999"),
        ("approve-step", {"step": "no-such-step"}, 404, "has no upcoming occurrence"),
        ("follow-up", {"title": "", "owner": "sam", "due_at": "2026-03-09T09:00"}, 422, "title:"),
        ("follow-up", {"title": "x", "owner": "", "due_at": "2026-03-09T09:00"}, 422, "owner:"),
        ("follow-up", {"title": "x", "owner": "sam"}, 422, "due_at: choose or fill in a value"),
        ("follow-up", {"title": "x", "owner": "sam", "due_at": "soon"}, 422, "due_at:"),
        (
            "follow-up",
            {"title": "x", "owner": "sam", "due_at": "2020-03-09T09:00"},
            422,
            "the due date must be in the future",
        ),
        ("follow-up-done", {"follow_up": "first"}, 422, "is not a number"),
        ("follow-up-done", {"follow_up": "999"}, 404, f"INC-{incident_id} has no follow-up FU-999"),
    ]
    for action, fields, status, reason in cases:
        response = await post_form(client, incident_id, action, csrf, **fields)
        assert response.status == status, (action, fields, await response.text())
        html = await response.text()
        assert reason in text_of(html), (action, fields, text_of(html))
        assert 'role="alert"' in html
        assert_valid_page(html)
    after = await detail(client, incident_id)
    assert after["incident"] == before["incident"]
    assert after["timeline"] == before["timeline"]
    assert after["follow_ups"] == before["follow_ups"]
    # What was typed into a refused form stays to be fixed.
    response = await post_form(
        client, incident_id, "follow-up", csrf, title="Kept title", owner="sam", due_at="soon"
    )
    html = await response.text()
    assert 'value="Kept title"' in html and 'id="fold-follow-up" open' in html


# --- past incidents ------------------------------------------------------------------------


@pytest.fixture
async def client_on_both(
    settings_on_both: Settings, clock: FakeClock, vendor: RecordingEffects
) -> AsyncIterator[Client]:
    """The dashboard on SQLite, then on PostgreSQL: the history's search is the database's."""
    settings = dataclasses.replace(
        settings_on_both, api_tokens=tuple(TOKENS.values()), catalog=CATALOG
    )
    async for test_client in _client(settings, clock, vendor):
        yield test_client


def rows_of(html: str) -> list[str]:
    """The references listed on a history page, in order."""
    return re.findall(r'<td><a class="ref" href="/ui/incidents/\d+">(INC-\d+)</a></td>', html)


async def test_history_lists_past_incidents_newest_first_with_search_filters_and_pages(
    client_on_both: Client, clock: FakeClock
) -> None:
    client = client_on_both
    rt = client.app[CONTAINER].runtime
    past: list[int] = []
    for n in range(54):
        title = {0: "Checkout 50% slower", 1: "Checkout 500 errors", 2: "db_pool exhausted"}.get(
            n, f"Outage {n}"
        )
        incident, _ = await uc.declare_incident(
            rt, title=title, severity=Severity.P1 if n % 3 == 0 else Severity.P3, by="dana"
        )
        assert incident.id is not None
        if n % 2:
            await uc.resolve_incident(rt, incident.id, summary="fixed", by="dana")
        else:
            await uc.cancel_incident(rt, incident.id, reason=Cancellation.FALSE_ALARM, by="dana")
        past.append(incident.id)
    await uc.declare_incident(rt, title="Checkout still failing", severity=Severity.P2, by="dana")
    await login(client, "viewer")
    refs = [f"INC-{i}" for i in reversed(past)]

    html = await valid_page(client, "/ui/history")
    assert rows_of(html) == refs[:50]  # newest first, 50 a page
    assert "Checkout still failing" not in html  # open ones are on the overview
    assert "Showing 1\N{EN DASH}50" in text_of(html)
    assert 'href="/ui/history?page=2" rel="next">Older</a>' in html
    html = await valid_page(client, "/ui/history?page=2")
    assert rows_of(html) == refs[50:]
    assert 'href="/ui/history" rel="prev">Newer</a>' in html and "Older" not in html
    assert "There is no page 3" in text_of(await valid_page(client, "/ui/history?page=3"))

    async def found(query: str) -> list[str]:
        return rows_of(await valid_page(client, f"/ui/history?{query}"))

    first, second, third = (f"INC-{i}" for i in past[:3])
    assert await found("q=checkout") == [second, first]  # any case
    assert await found("q=50%25") == [first]  # % is a character, not a wildcard
    assert await found("q=db_pool") == [third] and await found("q=_") == [third]
    assert await found(f"q={first.lower()}") == [first]  # a reference
    assert await found("q=checkout&status=cancelled") == [first]
    assert await found("q=checkout&severity=P3") == [second]
    assert await found("q=nothing+like+it") == []
    cancelled = await found("status=cancelled&severity=P1")
    assert cancelled == [f"INC-{i}" for i in reversed(past) if past.index(i) % 6 == 0]
    # The search is kept in the form and in the pages' links.
    html = await valid_page(client, "/ui/history?q=outage&status=resolved")
    assert 'id="history-q" name="q" type="search" maxlength="200" value="outage"' in html
    assert '<option value="resolved" selected>' in html
    paged = await valid_page(client, "/ui/history?q=Outage")
    assert len(rows_of(paged)) == 50
    assert 'href="/ui/history?q=Outage&amp;page=2" rel="next"' in paged
    assert await found("q=Outage&page=2") == [f"INC-{past[3]}"]  # the 51st outage


async def test_history_refuses_what_its_form_cannot_send(client: Client) -> None:
    await login(client, "viewer")
    for query, reason in (
        ("status=investigating", "investigating incidents are on the open incidents page"),
        ("status=sleeping", "unknown status 'sleeping'"),
        ("severity=P9", "unknown severity 'P9'"),
        ("page=0", "give a page number from 1 to 10000"),
        ("page=two", "give a page number"),
        ("q=" + "x" * 201, "search for 200 characters at most"),
    ):
        html = await valid_page(client, f"/ui/history?{query}", 422)
        assert reason in text_of(html), query
        assert 'role="alert"' in html


async def test_history_needs_a_session(client: Client) -> None:
    response = await client.get("/ui/history?q=x", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/ui/login?next=/ui/history"


async def test_the_overview_reads_only_open_incidents(client: Client) -> None:
    """However long the history, the overview's one listing asks the database for open
    incidents only (past ones are the history page's, a page at a time)."""
    for title in ("Over one", "Over two"):
        incident = await declare(client, title=title, severity="P4")
        await api(client, "POST", f"/incidents/{incident['id']}/cancel", {"reason": "declined"})
    await declare(client, title="Still open", severity="P4")
    await login(client, "viewer")
    listings: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if "FROM incidents ORDER BY" in " ".join(statement.split()) or (
            "FROM incidents WHERE incidents.status IN" in " ".join(statement.split())
        ):
            listings.append((statement, parameters))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        html = await (await client.get("/ui")).text()
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    assert "Still open" in html and "Over one" not in html
    # Two reads of incidents: the counts by severity and one page; both of open ones only.
    assert len(listings) == 2, listings
    for statement, parameters in listings:
        assert "incidents.status IN" in statement
        values = set(parameters.values() if isinstance(parameters, dict) else parameters)
        assert {"investigating", "identified", "monitoring"} <= values
        assert not values & {"resolved", "closed", "cancelled"}
