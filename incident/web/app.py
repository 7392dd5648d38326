"""The aiohttp application: guarded routes (errors.py) and the lifetime of the engine behind them.

One process serves HTTP and runs the scheduler. Shutdown (SIGTERM / SIGINT, via aiohttp's
runner): the server stops taking requests, the scheduler finishes the step it is running
and starts no other, claimed steps that did not start are handed back, then the database
is closed.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from incident import bootstrap
from incident.config import Settings
from incident.domain.incident import OPEN_STATUSES
from incident.domain.playbook import PlaybookSet
from incident.web import api, dashboard, slack, webhooks
from incident.web.context import BACKGROUND, CONTAINER, FAILED_LOGINS, METRICS
from incident.web.errors import add_json_fallbacks, guarded, json_error
from incident.web.html import STATIC_DIR
from incident.web.metrics import Metrics
from incident.web.public import routes as public_page
from incident.web.throttle import FailedLogins

log = logging.getLogger("incident.web")

Builder = Callable[[Settings, Metrics], Awaitable[bootstrap.Container]]


def _default_builder(playbooks: PlaybookSet | None) -> Builder:
    async def build(settings: Settings, metrics: Metrics) -> bootstrap.Container:
        return await bootstrap.build(settings, playbooks=playbooks, on_step=metrics.step_finished)

    return build


def create_app(
    settings: Settings, *, build: Builder | None = None, playbooks: PlaybookSet | None = None
) -> web.Application:
    """`build`: how to wire the engine (tests pass a fake clock and recording vendors);
    `playbooks`: already checked (`incident serve` checks them before it listens)."""
    # No middleware: each route is guarded instead (errors.py `guarded`).
    app = web.Application(client_max_size=settings.max_body_bytes)
    metrics = Metrics()
    app[METRICS] = metrics
    app.cleanup_ctx.append(_engine(settings, build or _default_builder(playbooks)))
    app.router.add_get("/healthz", guarded(healthz))
    app.router.add_get("/readyz", guarded(readyz))
    app.router.add_get("/metrics", guarded(metrics_endpoint))
    app.router.add_get("/runbooks/{name}", guarded(runbook))
    app.router.add_get("/", guarded(home))
    app.router.add_get("/favicon.ico", guarded(favicon))
    api.add_routes(app)
    webhooks.add_routes(app)
    slack.add_routes(app)
    # The public status page; its snapshot starts after the engine, which it reads through.
    public_page.add_routes(app)
    dashboard.add_routes(app, settings)
    add_json_fallbacks(app)
    return app


def freeze_heap_after_start(app: web.Application) -> None:
    """For the long-running server (`incident serve`): once the engine has started, collect
    and freeze what start-up made (modules, templates, compiled statements, the engine).
    Full collections then walk only what was made since. A full collection of the whole
    heap stops every thread for 60-100 ms here, which a page due at that moment waits out
    (bench/README.md). Not for tests, which start many apps in one process: frozen
    objects are never collected."""

    async def freeze(app: web.Application) -> None:
        gc.collect()
        gc.freeze()

    app.on_startup.append(freeze)  # after the engine's start (cleanup_ctx runs first)


def _engine(settings: Settings, build: Builder):  # type: ignore[no-untyped-def]
    async def context(app: web.Application) -> AsyncIterator[None]:
        container = await build(settings, app[METRICS])
        async with bootstrap.running(container):
            app[CONTAINER] = container
            app[FAILED_LOGINS] = FailedLogins(container.runtime.clock.monotonic)
            background: set[asyncio.Task[None]] = set()
            app[BACKGROUND] = background
            try:
                yield
            finally:
                if background:
                    # Slow work started after a quick reply (Slack): let it finish, briefly.
                    await asyncio.wait(background, timeout=10)

    return context


# A runbook's name: a plain Markdown file name, short enough for any file system.
RUNBOOK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,96}\.md")


async def runbook(request: web.Request) -> web.StreamResponse:
    """The runbooks that messages link to, as Markdown text. Only Markdown files of the
    runbooks folder itself: no other name, and no link leading out of it."""
    name = request.match_info["name"]
    directory = request.app[CONTAINER].settings.runbooks_dir.resolve()
    missing = json_error(404, "not found", f"there is no runbook {name[:100]!r}")
    if not RUNBOOK_NAME.fullmatch(name):
        return missing
    try:
        path = (directory / name).resolve(strict=True)
        if path.parent != directory or not path.is_file():
            return missing
        body = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return missing
    return web.Response(text=body, content_type="text/markdown", charset="utf-8")


async def home(request: web.Request) -> web.Response:
    """The service's root is its public status page (people type the bare address)."""
    raise web.HTTPFound(location="/status")


@functools.cache
def _favicon() -> bytes:
    return (STATIC_DIR / "favicon.svg").read_bytes()


async def favicon(request: web.Request) -> web.Response:
    return web.Response(
        body=_favicon(),
        content_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=86400"},
    )


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


async def readyz(request: web.Request) -> web.Response:
    problems = await request.app[CONTAINER].readiness()
    status = 503 if problems else 200
    return web.json_response({"ready": not problems, "problems": problems}, status=status)


async def metrics_endpoint(request: web.Request) -> web.Response:
    container, metrics = request.app[CONTAINER], request.app[METRICS]
    open_incidents = await container.store.read(
        lambda tx: tx.list_incidents(statuses=OPEN_STATUSES)
    )
    metrics.set_open_incidents(open_incidents)
    return web.Response(body=metrics.exposition(), headers={"Content-Type": metrics.content_type})
