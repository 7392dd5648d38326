"""The page's history as Atom and RSS feeds (feedgen): one entry per incident or maintenance
window, its updates newest first, as Statuspage's /history.atom and /history.rss give them.

The feeds hold the `RECENT` newest items, like incidents.json: a reader polls every few
minutes, and during an alert storm a feed of every incident of 90 days would be hundreds of
kilobytes, made again at every change.

Only `PublicStatus` goes in, so only public facts come out.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from html import escape

from feedgen.feed import FeedGenerator

from incident.services.status_page import PublicIncident, PublicMaintenance, PublicStatus
from incident.web.html import when
from incident.web.public.statuspage_v2 import PAGE_PATH, RECENT, PageInfo

Item = PublicIncident | PublicMaintenance


def feeds(page: PageInfo, status: PublicStatus) -> dict[str, bytes]:
    """Every feed by the path it is served at (below the service's root): Atom and RSS, at
    the page's own address and at the root, where Statuspage has them. Each names its own
    address as `rel=self` (RFC 4287); each item's content is made once for all."""
    items: list[Item] = [*status.incidents, *status.maintenances]
    items.sort(key=lambda item: (item.created_at, item.id), reverse=True)
    del items[RECENT:]
    contents = [_content(item) for item in items]
    root = page.url.removesuffix(PAGE_PATH)
    made: dict[str, bytes] = {}
    for path in (f"{PAGE_PATH}/history", "/history"):
        for kind in ("atom", "rss"):
            feed = _feed(page, status, items, contents, self_url=f"{root}{path}.{kind}")
            text = feed.atom_str(pretty=False) if kind == "atom" else feed.rss_str(pretty=False)
            made[f"{path.lstrip('/')}.{kind}"] = bytes(text)
    return made


def _feed(
    page: PageInfo,
    status: PublicStatus,
    items: list[Item],
    contents: list[str],
    *,
    self_url: str,
) -> FeedGenerator:
    feed = FeedGenerator()
    feed.id(page.url)
    feed.title(f"{page.name} - Incident History")
    feed.description(f"Incidents and maintenance on {page.name}, newest first.")
    feed.language("en")
    # RFC 4287: every entry has an author, its own or its feed's: the page.
    feed.author({"name": page.name, "uri": page.url})
    # RSS takes the channel's <link> from the last link added: the page, not the feed.
    feed.link(href=self_url, rel="self")
    feed.link(href=page.url, rel="alternate")
    # Set explicitly: by default feedgen stamps the build time, and the bytes (so the ETag)
    # would change on every rebuild although nothing public did.
    feed.updated(status.updated_at)
    feed.lastBuildDate(status.updated_at)
    for item, content in zip(items, contents, strict=True):
        entry = feed.add_entry(order="append")
        link = page.link(item.id)
        entry.id(link)
        entry.guid(link, permalink=True)
        entry.title(item.name)
        entry.link(href=link)
        entry.published(item.created_at)
        entry.updated(item.updated_at)
        entry.content(content, type="html")
        entry.author({"name": page.name, "uri": page.url})
    return feed


@lru_cache(maxsize=4 * RECENT)
def _content(item: Item) -> str:
    """The updates as Statuspage's feeds show them: when, status in words, then the text
    (HTML, every piece of text escaped)."""
    parts: list[str] = []
    if isinstance(item, PublicMaintenance):
        parts.append(
            f"<p><strong>Scheduled maintenance</strong> from {when(item.scheduled_for)} "
            f"to {when(item.scheduled_until)}.</p>"
        )
        names = [c.name for c in item.components]
        updates = [(u.at, u.status.value, u.body) for u in item.updates]
    else:
        names = [c.name for c, _ in item.components]
        updates = [(u.at, u.status, u.body) for u in item.updates]
    if names:
        parts.append(f"<p>This affects: {escape(', '.join(names))}.</p>")
    parts += [_update(at, state, body) for at, state, body in updates]
    return "".join(parts)


def _update(at: datetime, state: str, body: str) -> str:
    lines = "<br>".join(escape(line) for line in body.splitlines())
    words = escape(state.replace("_", " ").capitalize())
    return f"<p><small>{when(at)}</small><br><strong>{words}</strong> - {lines}</p>"
