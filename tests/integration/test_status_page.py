"""The public status page over real HTTP: the app on a loopback port, a real SQLite file, a
fake clock and recording vendors.

The JSON API is checked field by field against Statuspage's public v2 shapes (the JSON
Schema in tests/fixtures/statuspage_v2/) for a page holding components in a group, an
active incident with several updates, a resolved incident and maintenance windows; then
caching (ETag, Last-Modified, 304), the snapshot following public changes (and only
those), the HTML's content and accessibility basics, and the feeds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import itertools
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from email.utils import format_datetime, parsedate_to_datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from aiohttp.test_utils import TestClient, TestServer
from jsonschema import Draft202012Validator
from sqlalchemy import event
from sqlalchemy.engine import Engine

from incident.clock import FakeClock
from incident.config import ApiToken, Settings
from incident.domain.access import AccessRole
from incident.domain.status_page import Catalog, Component, ComponentGroup
from incident.testing import RecordingEffects
from incident.web.app import create_app
from incident.web.public.access_log import QuietPublicReads, quiet_public_reads
from incident.web.public.routes import SNAPSHOT
from incident.web.public.snapshot import PublicSnapshot
from incident.web.public.statuspage_v2 import DOCUMENTS
from tests.serving import builder, serving

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "statuspage_v2"
SCHEMA = json.loads((FIXTURES / "schema.json").read_text())
BASE_URL = "https://example.com"
PAGE_URL = BASE_URL + "/status"
TOKENS = {
    "responder": ApiToken(token="r" * 24, role=AccessRole.RESPONDER, name="rob"),
    "commander": ApiToken(token="c" * 24, role=AccessRole.COMMANDER, name="cleo"),
}
CATALOG = Catalog.build(
    [
        Component("api", "API", "Public REST API", group="core"),
        Component("web", "Website", group="core"),
        Component("checkout", "Checkout", "Payments and checkout"),
    ],
    [ComponentGroup("core", "Core services")],
)
Client = TestClient[Any, Any]


def auth(who: str = "commander") -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[who].token}"}


def shape(document: str) -> Draft202012Validator:
    """The validator of one Statuspage v2 document (the lists of incidents and of
    maintenances share the shape of their full list)."""
    name = {
        "incidents/unresolved.json": "incidents.json",
        "scheduled-maintenances/upcoming.json": "scheduled-maintenances.json",
        "scheduled-maintenances/active.json": "scheduled-maintenances.json",
    }.get(document, document)
    return Draft202012Validator({"$ref": f"#/$defs/{name}", "$defs": SCHEMA["$defs"]})


@pytest.fixture
def page_settings(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings,
        api_tokens=tuple(TOKENS.values()),
        catalog=CATALOG,
        status_page_name="Acme Status",
        base_url=BASE_URL,
    )


@pytest.fixture
async def client(
    page_settings: Settings, clock: FakeClock, vendor: RecordingEffects
) -> AsyncIterator[Client]:
    async with serving(page_settings, clock, vendor) as test_client:
        snapshot(test_client).min_interval = 0  # no spacing between rebuilds in tests
        snapshot(test_client).spacing = 0
        yield test_client


def snapshot(client: Client) -> PublicSnapshot:
    assert isinstance(client.server, TestServer)
    return client.server.app[SNAPSHOT]


async def call(client: Client, method: str, path: str, body: Any, who: str = "commander") -> Any:
    response = await client.request(method, f"/api/v1{path}", json=body, headers=auth(who))
    assert response.status in (200, 201), await response.text()
    return await response.json()


async def get_json(client: Client, path: str) -> Any:
    response = await client.get(path)
    assert response.status == 200, await response.text()
    assert response.content_type == "application/json"
    return await response.json()


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
    for _ in range(int(within / 0.02)):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def settled(client: Client) -> None:
    """The snapshot has caught up with every change committed so far (rebuilds take
    turns: this one starts after any running now)."""
    await snapshot(client).rebuild()


ACTIVE_UPDATES: list[tuple[str, str | None, dict[str, str] | None]] = [
    ("We are investigating failing API requests.", None, None),
    ("We found the cause and are deploying a fix.", "identified", {"api": "partial_outage"}),
    ("The fix is out; we are watching error rates.", "monitoring", {"api": "degraded_performance"}),
]


async def a_full_page(client: Client, clock: FakeClock) -> dict[str, Any]:
    """Components (one group), a resolved incident, an active one with several updates,
    a maintenance window in progress and one upcoming. Returns what was made."""
    resolved = (
        await call(
            client,
            "POST",
            "/incidents",
            {
                "title": "payments-db primary failover",
                "severity": "P2",
                "components": {"checkout": "major_outage"},
                "public_title": "Checkout payments failing",
            },
        )
    )["incident"]
    await call(
        client,
        "POST",
        f"/incidents/{resolved['id']}/updates",
        {"message": "Card payments fail at checkout. We are on it."},
    )
    clock.advance(timedelta(minutes=45))
    await call(
        client,
        "POST",
        f"/incidents/{resolved['id']}/resolve",
        {"summary": "Failed over payments-db to the replica"},
    )
    clock.advance(timedelta(days=1))
    active = (
        await call(
            client,
            "POST",
            "/incidents",
            {
                "title": "api-gw 5xx",
                "severity": "P1",
                "components": {"api": "major_outage"},
                "public_title": "API errors",
            },
        )
    )["incident"]
    for message, status, components in ACTIVE_UPDATES:
        clock.advance(timedelta(minutes=10))
        body: dict[str, Any] = {"message": message}
        if status:
            body["status"] = status
        if components:
            body["components"] = components
        await call(client, "POST", f"/incidents/{active['id']}/updates", body)
    now = clock.now()
    running = await call(
        client,
        "POST",
        "/maintenances",
        {
            "name": "Website CDN migration",
            "message": "Pages may load slowly for a few minutes.",
            "scheduled_for": (now - timedelta(minutes=5)).isoformat(),
            "scheduled_until": (now + timedelta(hours=1)).isoformat(),
            "components": ["web"],
        },
    )
    upcoming = await call(
        client,
        "POST",
        "/maintenances",
        {
            "name": "Database upgrade",
            "message": "The API will be read-only for up to 10 minutes.",
            "scheduled_for": (now + timedelta(days=2)).isoformat(),
            "scheduled_until": (now + timedelta(days=2, hours=2)).isoformat(),
            "components": ["api", "checkout"],
        },
    )
    await settled(client)
    return {"resolved": resolved, "active": active, "running": running, "upcoming": upcoming}


# --- the JSON API, field by field -----------------------------------------------------------


def test_the_schema_accepts_statuspages_own_example_and_refuses_a_changed_field() -> None:
    example = json.loads((FIXTURES / "summary.example.json").read_text())
    assert not list(shape("summary.json").iter_errors(example))
    example["incidents"][0]["incident_updates"][0]["displayed_at"] = example["incidents"][0][
        "incident_updates"
    ][0].pop("display_at")
    assert list(shape("summary.json").iter_errors(example))


async def test_every_document_has_statuspages_v2_shape(client: Client, clock: FakeClock) -> None:
    made = await a_full_page(client, clock)
    documents = {name: await get_json(client, f"/api/v2/{name}") for name in DOCUMENTS}
    for name, document in documents.items():
        problems = [
            f"{list(e.absolute_path)}: {e.message}" for e in shape(name).iter_errors(document)
        ]
        assert not problems, (name, problems)

        # The same documents below the page's own address, as widgets derive them. (The
        # playbook's steps still run meanwhile: compare two reads of one snapshot.)
        async def alike(name: str = name) -> bool:
            here: object = await get_json(client, f"/api/v2/{name}")
            there: object = await get_json(client, f"/status/api/v2/{name}")
            return here == there

        await eventually(alike)

    summary = documents["summary.json"]
    page = summary["page"]
    assert page["name"] == "Acme Status" and page["url"] == PAGE_URL
    assert page["time_zone"] == "Etc/UTC" and re.fullmatch(r"[0-9a-z]{12}", page["id"])
    assert all(d["page"] == page for d in documents.values())

    # Components: the group, then its members, then the rest, in page order.
    components = summary["components"]
    assert [(c["id"], c["group"], c["group_id"], c["position"]) for c in components] == [
        ("core", True, None, 1),
        ("api", False, "core", 2),
        ("web", False, "core", 3),
        ("checkout", False, None, 4),
    ]
    by_id = {c["id"]: c for c in components}
    assert by_id["core"]["components"] == ["api", "web"]
    assert by_id["api"]["status"] == "degraded_performance"
    assert by_id["web"]["status"] == "under_maintenance"  # the window in progress
    assert by_id["core"]["status"] == "degraded_performance"  # its worst member
    assert by_id["checkout"]["status"] == "operational"  # its incident is resolved
    assert by_id["api"]["description"] == "Public REST API" and by_id["web"]["description"] is None
    assert documents["components.json"]["components"] == components

    # The rollup: the open P1's components are now only degraded.
    assert summary["status"] == {"indicator": "minor", "description": "Minor Service Outage"}
    assert documents["status.json"]["status"] == summary["status"]

    # Unresolved incidents only in the summary; both in incidents.json, newest first.
    (active,) = summary["incidents"]
    assert active["id"] == str(made["active"]["id"]) and active["name"] == "API errors"
    assert active["status"] == "monitoring" and active["impact"] == "critical"
    assert active["resolved_at"] is None and active["monitoring_at"] is not None
    assert active["shortlink"] == f"{PAGE_URL}/incidents/{active['id']}"
    assert [c["id"] for c in active["components"]] == ["api"]
    # Ours, among the playbook's own status page texts, newest first.
    posted = {u[0] for u in ACTIVE_UPDATES}
    bodies = [u["body"] for u in active["incident_updates"] if u["body"] in posted]
    assert bodies == [
        "The fix is out; we are watching error rates.",
        "We found the cause and are deploying a fix.",
        "We are investigating failing API requests.",
    ]
    # (The playbook may have published its own text since, at the same instant.)
    newest = next(u for u in active["incident_updates"] if u["body"] == bodies[0])
    assert newest["status"] == "monitoring" and newest["incident_id"] == active["id"]
    assert newest["affected_components"] == [
        {
            "code": "api",
            "name": "API",
            "old_status": "partial_outage",
            "new_status": "degraded_performance",
        }
    ]
    times = [u["display_at"] for u in active["incident_updates"]]
    assert times == sorted(times, reverse=True)
    assert documents["incidents/unresolved.json"]["incidents"] == [active]

    listed = documents["incidents.json"]["incidents"]
    assert [i["id"] for i in listed] == [active["id"], str(made["resolved"]["id"])]
    resolved = listed[1]
    assert resolved["status"] == "resolved" and resolved["name"] == "Checkout payments failing"
    assert resolved["impact"] == "critical"  # as bad as it got: a major outage
    assert resolved["resolved_at"] is not None
    assert resolved["incident_updates"][0]["status"] == "resolved"
    assert "Card payments fail at checkout. We are on it." in [
        u["body"] for u in resolved["incident_updates"]
    ]

    # Maintenance: the running window, then the upcoming one.
    windows = summary["scheduled_maintenances"]
    assert [(w["name"], w["status"], w["impact"]) for w in windows] == [
        ("Website CDN migration", "in_progress", "maintenance"),
        ("Database upgrade", "scheduled", "maintenance"),
    ]
    assert [c["id"] for c in windows[1]["components"]] == ["api", "checkout"]
    assert windows[1]["scheduled_for"] < windows[1]["scheduled_until"]
    assert windows[1]["incident_updates"][0]["body"] == (
        "The API will be read-only for up to 10 minutes."
    )
    started = windows[0]["incident_updates"][0]
    assert started["status"] == "in_progress"
    assert started["affected_components"] == [
        {
            "code": "web",
            "name": "Website",
            "old_status": "operational",
            "new_status": "under_maintenance",
        }
    ]
    assert documents["scheduled-maintenances/active.json"]["scheduled_maintenances"] == windows[:1]
    assert (
        documents["scheduled-maintenances/upcoming.json"]["scheduled_maintenances"] == windows[1:]
    )
    assert {
        w["id"] for w in documents["scheduled-maintenances.json"]["scheduled_maintenances"]
    } == {w["id"] for w in windows}


async def test_an_empty_page_is_all_operational(client: Client) -> None:
    summary = await get_json(client, "/api/v2/summary.json")
    assert not list(shape("summary.json").iter_errors(summary))
    assert summary["status"] == {"indicator": "none", "description": "All Systems Operational"}
    assert summary["incidents"] == [] and summary["scheduled_maintenances"] == []
    assert {c["status"] for c in summary["components"]} == {"operational"}


# --- caching: ETag, Last-Modified, 304 -------------------------------------------------------


async def test_conditional_requests_are_answered_304(client: Client) -> None:
    first = await client.get("/api/v2/summary.json")
    body = await first.read()
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert re.fullmatch(r'"[0-9a-f]{32}(-gz)?"', etag)  # strong
    assert first.headers["Cache-Control"] == "public, max-age=5, stale-while-revalidate=30"
    assert first.headers["Access-Control-Allow-Origin"] == "*"
    assert parsedate_to_datetime(modified).tzinfo is not None

    for headers in (
        {"If-None-Match": etag},
        {"If-None-Match": f'"other", W/{etag}'},  # weak comparison, lists
        {"If-None-Match": "*"},
        {"If-Modified-Since": modified},
    ):
        again = await client.get("/api/v2/summary.json", headers=headers)
        assert again.status == 304, headers
        assert await again.read() == b""
        assert again.headers["ETag"] == etag
        assert again.headers["Cache-Control"].startswith("public")

    earlier = format_datetime(parsedate_to_datetime(modified) - timedelta(seconds=1), usegmt=True)
    for headers in (
        {"If-None-Match": '"something-else"'},
        {"If-Modified-Since": earlier},
        {"If-Modified-Since": "not a date"},
        # If-None-Match wins over If-Modified-Since when both are sent.
        {"If-None-Match": '"something-else"', "If-Modified-Since": modified},
    ):
        fresh = await client.get("/api/v2/summary.json", headers=headers)
        assert fresh.status == 200, headers
        assert await fresh.read() == body

    head = await client.head("/status")
    assert head.status == 200 and head.headers["ETag"]
    assert "Access-Control-Allow-Origin" not in head.headers  # the API's and feeds' only


async def test_large_bodies_are_gzipped_with_their_own_etag(client: Client) -> None:
    plain = await client.get("/status", headers={"Accept-Encoding": "identity"})
    zipped = await client.get(
        "/status", headers={"Accept-Encoding": "gzip, br"}, auto_decompress=False
    )
    assert "Content-Encoding" not in plain.headers
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert zipped.headers["Vary"] == "Accept-Encoding"
    assert gzip.decompress(await zipped.read()) == await plain.read()
    assert zipped.headers["ETag"] != plain.headers["ETag"]
    refused = await client.get("/status", headers={"Accept-Encoding": "gzip;q=0"})
    assert "Content-Encoding" not in refused.headers
    again = await client.get(
        "/status", headers={"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["ETag"]}
    )
    assert again.status == 304 and "Content-Encoding" not in again.headers


# --- the snapshot follows public changes ---------------------------------------------------


async def test_a_public_change_reaches_the_page_and_a_private_one_changes_nothing(
    client: Client, clock: FakeClock
) -> None:
    incident = (
        await call(
            client,
            "POST",
            "/incidents",
            {
                "title": "cache-3 evictions",
                "severity": "P3",
                "components": {"web": "degraded_performance"},
            },
        )
    )["incident"]
    await settled(client)
    before = await client.get("/api/v2/summary.json")
    etag, modified = before.headers["ETag"], before.headers["Last-Modified"]
    rebuilt = snapshot(client).rebuilds

    # An internal note: a rebuild runs (the use case cannot tell), the bytes stay the same.
    await call(client, "POST", f"/incidents/{incident['id']}/notes", {"text": "cache-3 is full"})
    await settled(client)
    same = await client.get("/api/v2/summary.json", headers={"If-None-Match": etag})
    assert same.status == 304 and snapshot(client).rebuilds > rebuilt
    assert same.headers["Last-Modified"] == modified

    clock.advance(timedelta(minutes=3))
    await call(
        client,
        "POST",
        f"/incidents/{incident['id']}/updates",
        {"message": "Pages load slowly; a fix is on its way."},
    )

    async def changed() -> bool:
        response = await client.get("/api/v2/summary.json", headers={"If-None-Match": etag})
        return response.status == 200

    await eventually(changed)
    summary = await get_json(client, "/api/v2/summary.json")
    assert summary["incidents"][0]["incident_updates"][0]["body"] == (
        "Pages load slowly; a fix is on its way."
    )
    after = await client.get("/api/v2/summary.json")
    assert parsedate_to_datetime(after.headers["Last-Modified"]) > parsedate_to_datetime(modified)
    page = await client.get("/status")
    assert "Pages load slowly; a fix is on its way." in await page.text()


async def test_time_alone_moves_a_window_from_upcoming_to_active(
    client: Client, clock: FakeClock
) -> None:
    now = clock.now()
    await call(
        client,
        "POST",
        "/maintenances",
        {
            "name": "Network work",
            "message": "Brief interruptions are possible.",
            "scheduled_for": (now + timedelta(hours=1)).isoformat(),
            "scheduled_until": (now + timedelta(hours=2)).isoformat(),
            "components": ["checkout"],
        },
    )
    await settled(client)
    upcoming = await get_json(client, "/api/v2/scheduled-maintenances/upcoming.json")
    assert [w["name"] for w in upcoming["scheduled_maintenances"]] == ["Network work"]
    # The next rebuild nobody asks for falls when the window starts, or at the periodic
    # refresh if that comes first.
    assert snapshot(client).current.status.stale_at == now + timedelta(hours=1)
    snapshot(client).refresh_every = 7200
    assert snapshot(client).until_due() == 3600
    clock.advance(timedelta(minutes=45))
    assert snapshot(client).until_due() == 900
    snapshot(client).refresh_every = 600
    assert snapshot(client).until_due() == 600

    # In virtual time the timer's real seconds never pass: let the refresh run often.
    snapshot(client).refresh_every = 0.02
    snapshot(client).invalidate()  # the waiting refresher starts over with that period
    clock.advance(timedelta(minutes=15, seconds=1))

    async def started() -> bool:
        active = await get_json(client, "/api/v2/scheduled-maintenances/active.json")
        return [w["name"] for w in active["scheduled_maintenances"]] == ["Network work"]

    await eventually(started)
    components = await get_json(client, "/api/v2/components.json")
    checkout = next(c for c in components["components"] if c["id"] == "checkout")
    assert checkout["status"] == "under_maintenance"
    status = await get_json(client, "/api/v2/status.json")
    assert status["status"] == {
        "indicator": "maintenance",
        "description": "Service Under Maintenance",
    }


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """Every SQL statement any engine runs while the test does."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    yield seen
    event.remove(Engine, "before_cursor_execute", record)


async def test_reads_never_touch_the_database(client: Client, statements: list[str]) -> None:
    # The periodic refresh (for other replicas' changes) stays out of the way meanwhile.
    snapshot(client).refresh_every = 3600
    await settled(client)
    await asyncio.sleep(0.05)  # the refresher is back to waiting
    statements.clear()
    paths = [f"/api/v2/{d}" for d in DOCUMENTS] + [
        "/status",
        "/status/history",
        "/history.atom",
        "/history.rss",
    ]
    for _ in range(20):
        for path in paths:
            response = await client.get(path)
            assert response.status == 200
    assert statements == []


# --- the HTML page -------------------------------------------------------------------------


class Outline(HTMLParser):
    """Headings, landmarks and text of an HTML page, as a screen reader meets them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.headings: list[tuple[int, str]] = []
        self.text: list[str] = []
        self._heading: int | None = None
        self._buffer: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if re.fullmatch(r"h[1-6]", tag):
            self._heading, self._buffer = int(tag[1]), []

    def handle_endtag(self, tag: str) -> None:
        if self._heading is not None and tag == f"h{self._heading}":
            self.headings.append((self._heading, " ".join("".join(self._buffer).split())))
            self._heading = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._heading is not None:
            self._buffer.append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for t, attrs in self.tags if t == tag]

    @property
    def words(self) -> str:
        return " ".join(" ".join(self.text).split())


async def outline(client: Client, path: str) -> Outline:
    response = await client.get(path)
    assert response.status == 200
    assert response.content_type == "text/html"
    parsed = Outline()
    parsed.feed(await response.text())
    return parsed


async def test_the_page_shows_everything_in_words_and_in_order(
    client: Client, clock: FakeClock
) -> None:
    made = await a_full_page(client, clock)
    page = await outline(client, "/status")
    (html,) = page.all("html")
    assert html["lang"] == "en"
    assert any(m.get("name") == "viewport" for m in page.all("meta"))
    assert page.all("script") == []  # works without JavaScript
    assert all(img.get("alt") for img in page.all("img"))
    # One h1, sections at h2, items below them: no level skipped.
    levels = [level for level, _ in page.headings]
    assert levels.count(1) == 1 and levels[0] == 1
    assert all(b - a <= 1 for a, b in itertools.pairwise(levels))
    titles = [title for _, title in page.headings]
    assert titles[0] == "Acme Status"
    for section in (
        "Active incidents",
        "Maintenance in progress",
        "Components",
        "Scheduled maintenance",
        "Past incidents",
    ):
        assert section in titles, section
    assert titles.index("Active incidents") < titles.index("Components")

    words = page.words
    # The banner, each component's status in words, the rollup of the group.
    assert "Minor Service Outage" in words
    for expected in (
        "API Degraded performance",
        "Website Under maintenance",
        "Checkout Operational",
        "Core services Degraded performance",
    ):
        assert expected in words, expected
    # The active incident's updates, newest first, with their status in words.
    newest = words.index("The fix is out; we are watching error rates.")
    middle = words.index("We found the cause and are deploying a fix.")
    oldest = words.index("We are investigating failing API requests.")
    assert newest < middle < oldest
    assert "Monitoring" in words and "Critical impact" in words
    # Maintenance: in progress and upcoming, with their windows and components.
    assert "Website CDN migration" in words and "Database upgrade" in words
    assert "Affects: API, Checkout" in words
    # The past week: yesterday's resolved incident.
    assert "Checkout payments failing" in words
    # Uptime: bars described in words for screen readers, and how they are counted.
    bars = [d for d in page.all("div") if d.get("role") == "img"]
    assert len(bars) == 3
    checkout = next(b for b in bars if str(b.get("aria-label")).startswith("Checkout:"))
    assert "uptime over the last 90 days: 1 day with major outage" in str(checkout["aria-label"])
    assert "A partial outage" in words and "counts for 30% of its duration" in words
    assert "Degraded performance and scheduled maintenance are shown but do not count" in words
    # Links to each incident's own page, the history and the feeds.
    links = {a.get("href") for a in page.all("a")}
    assert f"{PAGE_URL}/incidents/{made['active']['id']}" in links
    assert {f"{PAGE_URL}/history", f"{PAGE_URL}/history.atom", f"{PAGE_URL}/history.rss"} <= links


async def test_incident_pages_history_and_not_found(client: Client, clock: FakeClock) -> None:
    made = await a_full_page(client, clock)
    incident = await outline(client, f"/status/incidents/{made['active']['id']}")
    assert incident.headings[0] == (1, "API errors")
    assert "We are investigating failing API requests." in incident.words
    window = await outline(client, f"/status/incidents/m{made['upcoming']['id']}")
    assert window.headings[0] == (1, "Database upgrade")
    assert "Scheduled maintenance" in window.words
    history = await outline(client, "/status/history")
    assert "Checkout payments failing" in history.words
    assert [h for h in history.headings if h[0] == 1] == [(1, "Incident history")]
    missing = await client.get("/status/incidents/999")
    assert missing.status == 404 and "no such incident" in await missing.text()


# --- feeds ----------------------------------------------------------------------------------

ATOM = "{http://www.w3.org/2005/Atom}"


async def test_atom_and_rss_feeds_list_incidents_with_their_updates(
    client: Client, clock: FakeClock
) -> None:
    made = await a_full_page(client, clock)
    response = await client.get("/history.atom")
    assert response.content_type == "application/atom+xml"
    atom = ElementTree.fromstring(await response.read())
    assert atom.findtext(f"{ATOM}title") == "Acme Status - Incident History"
    entries = {e.findtext(f"{ATOM}title"): e for e in atom.iter(f"{ATOM}entry")}
    assert set(entries) == {
        "API errors",
        "Checkout payments failing",
        "Website CDN migration",
        "Database upgrade",
    }
    api = entries["API errors"]
    link = f"{PAGE_URL}/incidents/{made['active']['id']}"
    assert api.findtext(f"{ATOM}id") == link
    content = api.findtext(f"{ATOM}content") or ""
    assert content.index("The fix is out") < content.index("We are investigating failing API")
    assert "<strong>Monitoring</strong>" in content

    response = await client.get("/status/history.rss")
    assert response.content_type == "application/rss+xml"
    rss = ElementTree.fromstring(await response.read())
    channel = rss.find("channel")
    assert channel is not None and channel.findtext("link") == PAGE_URL
    items = {i.findtext("title"): i for i in channel.iter("item")}
    assert items["API errors"].findtext("link") == link
    assert "deploying a fix" in (items["API errors"].findtext("description") or "")


async def test_successful_public_reads_leave_no_access_log_line(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    """Whichever access logger the server runs: the filter the page installs drops them."""
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    await two_of_eight_logged(client, caplog)


async def test_the_quiet_access_logger_skips_them_before_formatting(
    page_settings: Settings,
    clock: FakeClock,
    vendor: RecordingEffects,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    server = TestServer(create_app(page_settings, build=builder(clock, vendor)))
    await server.start_server(access_log_class=QuietPublicReads)
    async with TestClient(server) as quiet:
        # Without the filter: the logger class alone keeps the crowd out of the log.
        logging.getLogger("aiohttp.access").removeFilter(quiet_public_reads)
        await two_of_eight_logged(quiet, caplog)


async def two_of_eight_logged(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    for path in ("/api/v2/summary.json", "/status", "/history.atom", "/status/history.rss"):
        assert (await client.get(path)).status == 200
    etag = (await client.get("/api/v2/status.json")).headers["ETag"]
    assert (await client.get("/api/v2/status.json", headers={"If-None-Match": etag})).status == 304
    assert (await client.get("/status/incidents/404")).status == 404
    assert (await client.get("/api/v1/incidents", headers=auth())).status == 200
    logged = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert len(logged) == 2, logged
    assert "GET /status/incidents/404" in logged[0] and "GET /api/v1/incidents" in logged[1]


async def test_api_answers_carry_a_request_id_and_the_crowds_reads_skip_it(client: Client) -> None:
    """Every API answer names its request (the client's own id, or a new one each time),
    so an operator can find it in the logs; the public snapshot's reads, served from
    memory and never failing, skip that work (they are not `guarded`, errors.py)."""
    first = await client.get("/api/v1/incidents", headers=auth())
    second = await client.get("/api/v1/incidents", headers=auth())
    assert first.headers["X-Request-Id"] != second.headers["X-Request-Id"]
    echoed = await client.get("/api/v1/incidents", headers={**auth(), "X-Request-Id": "abc-123"})
    assert echoed.headers["X-Request-Id"] == "abc-123"
    refused = await client.get("/api/v1/incidents/999999", headers=auth())
    assert refused.status == 404 and refused.headers["X-Request-Id"]
    for path in ("/api/v2/summary.json", "/status", "/history.atom"):
        read = await client.get(path)
        assert read.status == 200 and "X-Request-Id" not in read.headers


async def test_while_pages_go_out_the_page_is_rebuilt_at_most_every_storm_interval(
    client: Client,
) -> None:
    # A change every 50 ms for a second. In a storm (the page lane busy) rebuilds wait
    # storm_interval (0.4 s) between them; once it is over they follow the changes again.
    shot = snapshot(client)
    shot.storm_interval = 0.4
    counts = []
    for storm in (True, False):
        shot.storm = lambda storm=storm: storm
        await settled(client)
        before = shot.rebuilds
        for _ in range(20):
            shot.invalidate()
            await asyncio.sleep(0.05)
        counts.append(shot.rebuilds - before)
    during, after = counts
    assert 1 <= during <= 4
    assert after >= 8
