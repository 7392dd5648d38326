"""Logins under attack, over real HTTP: a guesser is slowed down (dashboard and API alike),
a logged-out session cannot be replayed from a copied cookie, and a login's `next` cannot
carry anything but a dashboard path."""

# The fixtures come from test_dashboard.py; pytest passes them by name (F811 is a false alarm).
# ruff: noqa: F811

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from incident.clock import FakeClock
from incident.web.context import CONTAINER
from incident.web.throttle import LIMIT, WINDOW
from tests.integration.test_dashboard import (  # noqa: F401 (client, ui_settings: fixtures)
    TOKENS,
    client,
    csrf_of,
    login,
    ui_settings,
)
from tests.serving import steps_caught_up

Client = TestClient[Any, Any]


async def _wrong_login(client: Client) -> Any:
    form = await client.get("/ui/login")
    return await client.post(
        "/ui/login",
        data={"csrf": csrf_of(await form.text()), "token": "guessed-token-0000000000"},
        allow_redirects=False,
    )


async def test_a_guesser_is_refused_for_a_while_even_with_the_right_token(
    client: Client, clock: FakeClock
) -> None:
    for _ in range(LIMIT):
        assert (await _wrong_login(client)).status == 401
    blocked = await _wrong_login(client)
    assert blocked.status == 429
    assert 0 < int(blocked.headers["Retry-After"]) <= WINDOW
    assert "Too many wrong tokens" in await blocked.text()
    # The right token, now, from the same address: still refused.
    form = await client.get("/ui/login")
    right = await client.post(
        "/ui/login",
        data={"csrf": csrf_of(await form.text()), "token": TOKENS["commander"].token},
        allow_redirects=False,
    )
    assert right.status == 429
    # The API shares the count: a bearer token is not tried either.
    api = await client.get(
        "/api/v1/incidents", headers={"Authorization": f"Bearer {TOKENS['viewer'].token}"}
    )
    assert api.status == 429 and "Retry-After" in api.headers
    assert (await api.json())["error"] == "too many failed logins"
    clock.advance(timedelta(seconds=WINDOW + 1))
    await login(client, "commander")  # the window has passed


async def test_wrong_bearer_tokens_count_too(client: Client) -> None:
    for _ in range(LIMIT):
        wrong = await client.get(
            "/api/v1/incidents", headers={"Authorization": "Bearer not-our-token-00000000"}
        )
        assert wrong.status == 401
    right = await client.get(
        "/api/v1/incidents", headers={"Authorization": f"Bearer {TOKENS['viewer'].token}"}
    )
    assert right.status == 429


async def test_a_copied_cookie_is_worthless_after_logout(client: Client) -> None:
    csrf = await login(client, "commander")
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/ui"))["incident_session"]
    copied = {"Cookie": f"incident_session={cookie.value}"}
    assert (await client.get("/ui", headers=copied, allow_redirects=False)).status == 200
    out = await client.post("/ui/logout", data={"csrf": csrf}, allow_redirects=False)
    assert out.status == 303
    client.session.cookie_jar.clear()
    replayed = await client.get("/ui", headers=copied, allow_redirects=False)
    assert replayed.status == 303 and replayed.headers["Location"].startswith("/ui/login")


async def test_next_cannot_end_in_a_line_break(client: Client) -> None:
    form = await client.get("/ui/login?next=/ui%0A")
    html = await form.text()
    assert 'name="next" value=""' in html
    response = await client.post(
        "/ui/login",
        data={"csrf": csrf_of(html), "token": TOKENS["viewer"].token, "next": "/ui\n"},
        allow_redirects=False,
    )
    assert response.status == 303 and response.headers["Location"] == "/ui"


async def test_dashboard_pages_are_compressed_for_browsers_that_take_it(client: Client) -> None:
    await login(client, "viewer")
    page = await client.get("/ui", headers={"Accept-Encoding": "gzip"})
    assert page.status == 200 and page.headers.get("Content-Encoding") == "gzip"
    plain = await client.get("/ui", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    assert await page.text() == await plain.text()


async def test_the_overview_pages_many_incidents_and_checks_freshness_by_version(
    client: Client,
) -> None:
    headers = {"Authorization": f"Bearer {TOKENS['responder'].token}"}
    for n in range(55):
        made = await client.post(
            "/api/v1/incidents",
            json={"title": f"Disk full on db-{n}", "severity": "P3" if n % 5 else "P2"},
            headers=headers,
        )
        assert made.status == 201
    # The steps due at declaration change the page as they run: let them have run.
    await steps_caught_up(client.app[CONTAINER].runtime, range(1, 56))
    await login(client, "viewer")
    page = await client.get("/ui")
    html = await page.text()
    assert html.count('class="incident-card') == 50
    assert "Page 1 of 2 (55 open" in html
    assert "44 open" in html and "11 open" in html  # P3 and P2 counts, over every page
    etag = page.headers["ETag"]
    fresh = await client.get("/ui", headers={"If-None-Match": etag})
    assert fresh.status == 304
    second = await (await client.get("/ui?page=2")).text()
    assert second.count('class="incident-card') == 5
    note = await client.post(
        "/api/v1/incidents/7/notes", json={"text": "still full"}, headers=headers
    )
    assert note.status == 200
    stale = await client.get("/ui", headers={"If-None-Match": etag})
    assert stale.status == 200 and stale.headers["ETag"] != etag
