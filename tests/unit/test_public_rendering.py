"""The public pages as rendered from the read model: what the front page and the feeds
hold when an alert storm puts many incidents on the page. Pure: no database, no server."""

from __future__ import annotations

from xml.etree import ElementTree

from incident.services.status_page import PublicStatus, build_public_status
from incident.web.public import feeds, pages
from incident.web.public.statuspage_v2 import RECENT, PageInfo
from tests.unit.test_status_page_domain import CATALOG, HOUR, T0, incident_with, public_entries

PAGE = PageInfo.of(name="Acme Status", base_url="https://status.example.com")
ATOM = "{http://www.w3.org/2005/Atom}"
MINUTE = HOUR / 60


def storm(count: int, *, update: int | None = None) -> PublicStatus:
    """`count` open incidents declared a minute apart, each with one customer update (and
    incident `update` with a second one)."""
    shown = []
    for n in range(1, count + 1):
        incident = incident_with(n, at=T0 + n * MINUTE)
        incident.post_customer_update(message=f"Looking into {n}.", at=T0 + n * MINUTE, by="dana")
        if n == update:
            incident.post_customer_update(message=f"Found {n}.", at=T0 + 2 * HOUR, by="dana")
        shown.append((incident, public_entries(incident)))
    return build_public_status(CATALOG, shown, [], now=T0 + 3 * HOUR)


def test_the_feeds_hold_the_newest_items_like_incidents_json() -> None:
    status = storm(RECENT + 10)
    made = feeds.feeds(PAGE, status)
    atom, rss = made["status/history.atom"], made["status/history.rss"]
    entries = [e.findtext(f"{ATOM}id") for e in ElementTree.fromstring(atom).iter(f"{ATOM}entry")]
    newest = [PAGE.link(str(n)) for n in range(RECENT + 10, 10, -1)]
    assert entries == newest
    items = [i.findtext("guid") for i in ElementTree.fromstring(rss).iter("item")]
    assert items == newest


def test_the_front_page_shows_every_active_incident_and_each_one_as_it_is_now() -> None:
    before = pages.index(PAGE, storm(RECENT + 10)).decode()
    assert all(f"Looking into {n}." in before for n in range(1, RECENT + 11))
    # Incident 7 gets a second update: its block on the page is made again (newest update
    # first), and every other incident is still there, once.
    after = pages.index(PAGE, storm(RECENT + 10, update=7)).decode()
    assert "Found 7." in after and "Found 7." not in before
    assert after.index("Found 7.") < after.index("Looking into 7.")
    for page in (before, after):
        assert page.count('<article class="notice b-') == RECENT + 10
        assert all(page.count(f"Looking into {n}.<") == 1 for n in range(1, RECENT + 11))


def test_each_feed_names_the_address_it_is_served_at_and_every_entry_an_author() -> None:
    made = feeds.feeds(PAGE, storm(3))
    assert sorted(made) == [
        "history.atom",
        "history.rss",
        "status/history.atom",
        "status/history.rss",
    ]
    root = PAGE.url.removesuffix("/status")
    for path in ("history.atom", "status/history.atom"):
        feed = ElementTree.fromstring(made[path])
        links = feed.findall(f"{ATOM}link")
        selves = [link.get("href") for link in links if link.get("rel") == "self"]
        assert selves == [f"{root}/{path}"]
        # RFC 4287 4.1.1: an entry without an author of its own needs the feed's.
        assert feed.find(f"{ATOM}author/{ATOM}name") is not None
        for entry in feed.iter(f"{ATOM}entry"):
            assert entry.findtext(f"{ATOM}author/{ATOM}name"), entry.findtext(f"{ATOM}id")
