"""The public pages' snapshot: every body the status page, its JSON API and its feeds serve,
rendered once per public change and served from memory, however large the crowd.

No request reads the database. A rebuild reads the public read model once, renders every
document, and swaps the snapshot in whole. It runs in the background:

- when something public changes here (`invalidate`, hooked to `Runtime.public_changed`):
  at once for the first change, then at most once every `min_interval` (1 s) however many
  arrive, so a storm of updates costs one rebuild a second at most (a few percent of a
  core; visitors' caches keep a body 5 s anyway). A rebuild that took long (an alert storm
  with hundreds of open incidents) is followed by a pause of `spacing` times its duration,
  so rebuilds never take more than about 5 % of the process, whatever the page holds.
  While pages are going out (`storm`: the page lane is busy) they wait `storm_interval`
  (5 s) between them: a rebuild holds the interpreter for tens of milliseconds, which a
  page due meanwhile would wait out, and visitors' caches keep a body 5 s anyway;
- when time alone changes the page (`PublicStatus.stale_at`: midnight UTC moves the uptime
  bars on, a maintenance window starts or ends);
- every `refresh_every` seconds, for changes made by other replicas.

Each body carries a strong ETag (a hash of its bytes, the same on every replica) and a
Last-Modified that moves only when the bytes do; conditional requests are answered 304.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime

from multidict import CIMultiDict

from incident.clock import Clock
from incident.services.incidents import Runtime
from incident.services.status_page import PublicFacts, PublicStatus, read_public_facts
from incident.web.public import feeds, pages, statuspage_v2
from incident.web.public.statuspage_v2 import PageInfo

log = logging.getLogger("incident.web")

# Browsers and CDNs may reuse a body for 5 s, and serve it while they revalidate for 30 s
# more: a crowd's reloads mostly stop at the nearest cache, and what reaches us is a 304.
CACHE_CONTROL = "public, max-age=5, stale-while-revalidate=30"
GZIP_FROM = 1024  # bytes: smaller bodies gain less than the header costs
JSON_TYPE = "application/json; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"
ATOM_TYPE = "application/atom+xml; charset=utf-8"
RSS_TYPE = "application/rss+xml; charset=utf-8"


@dataclass(frozen=True)
class Representation:
    """One encoding of a resource: its bytes and every header a 200 sends with them."""

    body: bytes
    etag: str
    # Built once: a response copies a CIMultiDict faster than it converts a dict.
    headers: CIMultiDict[str]
    not_modified_headers: CIMultiDict[str]


@dataclass(frozen=True)
class Resource:
    """A document as served: as is, and gzipped when it is worth it."""

    plain: Representation
    gzipped: Representation | None
    last_modified: datetime  # a whole second, later for every new version

    def choose(self, accept_encoding: str) -> Representation:
        if self.gzipped is not None and accepts_gzip(accept_encoding):
            return self.gzipped
        return self.plain

    def is_fresh(self, if_none_match: str | None, if_modified_since: str | None) -> bool:
        """The client's copy is current (RFC 9110 section 13: If-None-Match first, with
        weak comparison; If-Modified-Since only without it)."""
        if if_none_match is not None:
            tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
            if "*" in tags:
                return True
            return self.plain.etag in tags or (
                self.gzipped is not None and self.gzipped.etag in tags
            )
        if if_modified_since is not None:
            try:
                since = parsedate_to_datetime(if_modified_since)
            except (TypeError, ValueError):
                return False
            return since.tzinfo is not None and self.last_modified <= since
        return False


def accepts_gzip(accept_encoding: str) -> bool:
    if not accept_encoding:
        return False
    for part in accept_encoding.lower().split(","):
        coding, _, params = part.partition(";")
        if coding.strip() in ("gzip", "*"):
            quality = params.strip().removeprefix("q=").strip()
            return quality not in ("0", "0.0", "0.00", "0.000")
    return False


@dataclass
class Published:
    """Everything the public pages serve, as of one read of the read model."""

    status: PublicStatus
    resources: dict[str, Resource]
    page: PageInfo
    stamp: Callable[[str, bytes, str], Resource]
    # Incident pages are rendered when first asked for, once per snapshot.
    _items: dict[str, Resource | None] = field(default_factory=dict)

    def item(self, item_id: str) -> Resource | None:
        if item_id not in self._items:
            body = pages.item_page(self.page, self.status, item_id)
            self._items[item_id] = (
                None if body is None else self.stamp(f"item/{item_id}", body, HTML_TYPE)
            )
        return self._items[item_id]


def render(page: PageInfo, status: PublicStatus) -> dict[str, tuple[bytes, str]]:
    """Every pre-rendered body, by key, with its content type. Pure."""
    bodies: dict[str, tuple[bytes, str]] = {
        f"api/{name}": (_json(document), JSON_TYPE)
        for name, document in statuspage_v2.documents(page, status).items()
    }
    bodies["index"] = (pages.index(page, status), HTML_TYPE)
    bodies["history"] = (pages.history(page, status), HTML_TYPE)
    bodies["not_found"] = (pages.not_found(page, status), HTML_TYPE)
    for path, body in feeds.feeds(page, status).items():
        bodies[path] = (body, ATOM_TYPE if path.endswith(".atom") else RSS_TYPE)
    return bodies


def _json(document: object) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class PublicSnapshot:
    """The current snapshot and the background task that keeps it current."""

    def __init__(
        self,
        rt: Runtime,
        page: PageInfo,
        *,
        refresh_every: float = 10.0,
        min_interval: float = 1.0,
        spacing: float = 19.0,
        storm: Callable[[], bool] | None = None,
        storm_interval: float = 5.0,
    ) -> None:
        self.rt = rt
        self.page = page
        self.refresh_every = refresh_every
        self.min_interval = min_interval
        self.spacing = spacing
        self.storm = storm
        self.storm_interval = storm_interval
        self.clock: Clock = rt.clock
        self.rebuilds = 0
        self._current: Published | None = None
        self._versions: dict[str, Resource] = {}  # the latest version of every key seen
        self._dirty = asyncio.Event()
        self._stopped = asyncio.Event()
        self._lock = asyncio.Lock()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    @property
    def current(self) -> Published:
        if self._current is None:
            raise RuntimeError("the public snapshot is served before its first build")
        return self._current

    # --- keeping it current ----------------------------------------------------------------

    def invalidate(self) -> None:
        """Something public changed: rebuild soon. Cheap; call it as often as you like
        (from the event loop's thread)."""
        self._dirty.set()

    async def rebuild(self) -> Published:
        """Read the read model once, render everything, swap the snapshot in."""
        async with self._lock:
            facts = await read_public_facts(self.rt)
            # Building the read model, rendering, compressing and hashing are pure CPU: off
            # the event loop, so requests keep flowing meanwhile. (Only rebuilds, one at a
            # time, stamp these keys; requests stamp incident pages, under keys of their own.)
            status, resources = await asyncio.to_thread(self._build, facts, self.clock.now())
            published = Published(
                status=status,
                resources=resources,
                page=self.page,
                stamp=lambda key, body, content_type: self._stamp(
                    key, body, content_type, self.clock.now()
                ),
            )
            self._current = published
            self.rebuilds += 1
            self._forget_gone(status)
            log.debug(
                "public snapshot rebuilt",
                extra={"action": "public_snapshot_rebuilt", "indicator": status.indicator.value},
            )
            return published

    def _build(self, facts: PublicFacts, now: datetime) -> tuple[PublicStatus, dict[str, Resource]]:
        status = facts.build(self.rt.catalog, cancelled=self.rt.cancelled_incidents)
        return status, self._render(status, now)

    def _render(self, status: PublicStatus, now: datetime) -> dict[str, Resource]:
        return {
            key: self._stamp(key, body, content_type, now)
            for key, (body, content_type) in render(self.page, status).items()
        }

    def _stamp(self, key: str, body: bytes, content_type: str, now: datetime) -> Resource:
        previous = self._versions.get(key)
        if previous is not None and previous.plain.body == body:
            return previous
        # Whole seconds (HTTP dates have no fraction), and later than the version before,
        # so two versions never share a Last-Modified and If-Modified-Since stays exact.
        modified = now.replace(microsecond=0)
        if previous is not None and modified <= previous.last_modified:
            modified = previous.last_modified + timedelta(seconds=1)
        resource = _resource(body, content_type, modified)
        self._versions[key] = resource
        return resource

    def _forget_gone(self, status: PublicStatus) -> None:
        """Versions of pages for incidents the page no longer holds (older than 90 days)."""
        held = {f"item/{i.id}" for i in status.incidents}
        held |= {f"item/{m.id}" for m in status.maintenances}
        for key in [k for k in self._versions if k.startswith("item/") and k not in held]:
            del self._versions[key]

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="public-snapshot")

    async def stop(self) -> None:
        self._closing = True
        self._dirty.set()
        self._stopped.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._task, timeout=10)

    async def _run(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), timeout=self.until_due())
            if self._closing:
                return
            self._dirty.clear()
            started = self.clock.monotonic()
            try:
                await self.rebuild()
            except Exception:  # keep serving the last good snapshot; try again soon
                log.warning(
                    "public snapshot rebuild failed; serving the previous one",
                    exc_info=True,
                    extra={"action": "public_snapshot_failed"},
                )
                await self._pause(1.0)
            took = self.clock.monotonic() - started
            await self._pause(max(self.min_interval, took * self.spacing))
            if self.storm is not None and self.storm():
                await self._pause(self.storm_interval - self.clock.monotonic() + started)

    async def _pause(self, seconds: float) -> None:
        """Wait `seconds`, unless the snapshot is stopped meanwhile."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), timeout=seconds)

    def until_due(self) -> float:
        """Seconds to the next rebuild that no change asks for: the periodic refresh, or
        sooner when time alone changes the page (`stale_at`)."""
        wait = self.refresh_every
        if self._current is not None:
            left = (self._current.status.stale_at - self.clock.now()).total_seconds()
            wait = min(wait, left)
        return max(wait, 0.05)


# What a public page may load: its own inline styles and data: images (the favicon), nothing
# else, and no script whatever; it may not be framed by another site.
PUBLIC_PAGE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def _resource(body: bytes, content_type: str, modified: datetime) -> Resource:
    tag = hashlib.blake2b(body, digest_size=16).hexdigest()
    common = {
        "Cache-Control": CACHE_CONTROL,
        "Last-Modified": format_datetime(modified, usegmt=True),
        "X-Content-Type-Options": "nosniff",
    }
    if content_type.startswith("text/html"):
        # The public pages run no script at all; only their own inline styles and images.
        common["Content-Security-Policy"] = PUBLIC_PAGE_POLICY
        common["Referrer-Policy"] = "no-referrer"
    else:
        # Widgets on other sites read the API and the feeds from the browser.
        common["Access-Control-Allow-Origin"] = "*"
    compress = len(body) >= GZIP_FROM
    if compress:
        common["Vary"] = "Accept-Encoding"
    plain = _representation(body, f'"{tag}"', content_type, common)
    gzipped = None
    if compress:
        squeezed = gzip.compress(body, compresslevel=6, mtime=0)
        gzipped = _representation(
            squeezed, f'"{tag}-gz"', content_type, {**common, "Content-Encoding": "gzip"}
        )
    return Resource(plain=plain, gzipped=gzipped, last_modified=modified)


def _representation(
    body: bytes, etag: str, content_type: str, common: Mapping[str, str]
) -> Representation:
    not_modified = {**common, "ETag": etag}
    not_modified.pop("Content-Encoding", None)
    return Representation(
        body=body,
        etag=etag,
        headers=CIMultiDict({**common, "ETag": etag, "Content-Type": content_type}),
        not_modified_headers=CIMultiDict(not_modified),
    )
