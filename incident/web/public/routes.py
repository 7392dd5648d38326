"""Routes of the public status page (no login): every answer comes from the snapshot in
memory, never from the database.

- `/status` the page, `/status/history` the past 90 days, `/status/incidents/{id}` one
  incident or maintenance window;
- `/api/v2/*.json` Statuspage's public API; `/history.atom`, `/history.rss` the feeds.

The API and the feeds are also served under `/status/`, so a client that derives them
from the page's address (`page.url` + `/api/v2/summary.json`, as Statuspage's widgets
do) finds them there.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from incident.web.context import CONTAINER
from incident.web.errors import guarded
from incident.web.public.access_log import PublicRead, quiet_public_reads
from incident.web.public.snapshot import PublicSnapshot, Resource
from incident.web.public.statuspage_v2 import DOCUMENTS, PageInfo

SNAPSHOT = web.AppKey("public_snapshot", PublicSnapshot)

Handler = Callable[[web.Request], Awaitable[web.Response]]


class _Live:
    """The app's snapshot, for handlers to reach without a lookup per request."""

    snapshot: PublicSnapshot


def add_routes(app: web.Application) -> None:
    """Call after the engine's cleanup context is added: the snapshot reads through it."""
    live = _Live()
    app.cleanup_ctx.append(lambda app: _snapshot_lifetime(app, live))
    for prefix in ("", "/status"):
        for name in DOCUMENTS:
            resource = app.router.add_resource(f"{prefix}/api/v2/{name}")
            resource.add_route("GET", _serve(live, f"api/{name}"))
            resource.add_route("OPTIONS", _preflight)
        # Each feed names the address it is served at (rel=self): one body per address.
        for feed in ("history.atom", "history.rss"):
            path = f"{prefix}/{feed}"
            resource = app.router.add_resource(path)
            resource.add_route("GET", _serve(live, path.lstrip("/")))
            resource.add_route("OPTIONS", _preflight)
    app.router.add_get("/status", _serve(live, "index"))
    app.router.add_get("/status/", _serve(live, "index"))
    app.router.add_get("/status/history", _serve(live, "history"))
    # Rendered on first read, so it can fail like any page: guarded.
    app.router.add_get("/status/incidents/{item_id}", guarded(_item(live)))


async def _snapshot_lifetime(app: web.Application, live: _Live) -> AsyncIterator[None]:
    container = app[CONTAINER]
    settings = container.settings
    runtime = container.runtime
    page = PageInfo.of(name=settings.status_page_name, base_url=settings.base_url)
    snapshot = PublicSnapshot(runtime, page, storm=container.engine.storm)
    await snapshot.rebuild()  # the first visitor finds a page
    app[SNAPSHOT] = live.snapshot = snapshot
    runtime.public_changed.subscribe(snapshot.invalidate)
    snapshot.start()
    # A crowd's reads leave no access log line each (see access_log.py).
    access_log = logging.getLogger("aiohttp.access")
    access_log.addFilter(quiet_public_reads)
    try:
        yield
    finally:
        access_log.removeFilter(quiet_public_reads)
        runtime.public_changed.unsubscribe(snapshot.invalidate)
        await snapshot.stop()


def _serve(live: _Live, key: str) -> Handler:
    # As little as possible per request: the crowd's reads all come through here. The key
    # is one every snapshot renders, so nothing here can fail: not guarded (errors.py).
    async def handler(request: web.Request) -> web.Response:
        return respond(request, live.snapshot.current.resources[key])

    return handler


# Browsers ask before a cross-site read that sends If-None-Match (not a "simple" header):
# the public documents may be read from anywhere, with the conditional headers.
_PREFLIGHT = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
    "Access-Control-Allow-Headers": "If-None-Match, If-Modified-Since",
    "Access-Control-Max-Age": "86400",
}


async def _preflight(request: web.Request) -> web.Response:
    return PublicRead(status=204, headers=_PREFLIGHT)


def _item(live: _Live) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        published = live.snapshot.current
        resource = published.item(request.match_info["item_id"])
        if resource is None:
            missing = published.resources["not_found"].plain
            return web.Response(status=404, body=missing.body, headers=missing.headers)
        return respond(request, resource)

    return handler


def respond(request: web.Request, resource: Resource) -> web.Response:
    """200 with the body, or 304 when the client's copy is current."""
    headers = request.headers
    chosen = resource.choose(headers.get("Accept-Encoding", ""))
    if_none_match = headers.get("If-None-Match")
    if_modified_since = headers.get("If-Modified-Since")
    if (if_none_match or if_modified_since) and resource.is_fresh(if_none_match, if_modified_since):
        return PublicRead(status=304, headers=chosen.not_modified_headers)
    return PublicRead(body=chosen.body, headers=chosen.headers)
