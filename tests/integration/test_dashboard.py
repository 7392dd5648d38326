"""The commander's dashboard (/ui) over real HTTP: the app on a loopback port, a real SQLite
file, a fake clock and recording vendors; incidents declared through the REST API."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from html import unescape
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from incident.clock import FakeClock
from incident.config import ApiToken, Settings
from incident.domain.access import AccessRole
from incident.domain.status_page import Catalog, Component
from incident.web.dashboard.routes import CHANGES
from incident.web.dashboard.sessions import SESSION_LIFETIME, SessionKeys
from incident.web.html import when
from tests.conftest import T0
from tests.fakes import RecordingEffects
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
    """Log in as `who`; the CSRF token of the session's forms."""
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
