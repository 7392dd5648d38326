"""The aiohttp application factory: health endpoints and the scheduler's lifetime."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web
from sqlalchemy import text

from incident import bootstrap
from incident.config import Settings

CONTAINER = web.AppKey("container", bootstrap.Container)


def create_app(settings: Settings) -> web.Application:
    app = web.Application(client_max_size=256 * 1024)
    app.cleanup_ctx.append(_container(settings))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/runbooks/{name}", runbook)
    return app


def _container(settings: Settings):  # type: ignore[no-untyped-def]
    async def context(app: web.Application) -> AsyncIterator[None]:
        container = await bootstrap.build(settings)
        if container.database.is_sqlite:
            # One process per SQLite file: whatever a crashed predecessor left running is
            # handed back now. (Replicas on PostgreSQL wait for each other's leases instead.)
            await container.store.run(lambda tx: tx.release_claims())
        app[CONTAINER] = container
        stop = asyncio.Event()
        task = asyncio.create_task(container.scheduler.run(stop), name="scheduler")
        try:
            yield
        finally:
            stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, timeout=30)
            owner = container.scheduler.owner
            await container.store.run(lambda tx: tx.release_claims(owner=owner))
            await container.close()

    return context


async def runbook(request: web.Request) -> web.StreamResponse:
    """The runbooks that messages link to, as Markdown text."""
    name = request.match_info["name"]
    directory = request.app[CONTAINER].settings.runbooks_dir
    path = directory / name
    # Only plain file names of existing Markdown files: nothing outside runbooks/.
    if "/" in name or name.startswith(".") or not name.endswith(".md") or not path.is_file():
        return web.json_response(
            {"error": "not found", "detail": f"there is no runbook {name!r}"}, status=404
        )
    return web.Response(text=path.read_text(encoding="utf-8"), content_type="text/markdown")


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


async def readyz(request: web.Request) -> web.Response:
    container = request.app[CONTAINER]
    problems = []
    try:
        await container.database.run(lambda session: session.execute(text("SELECT 1")))
    except Exception as error:  # readiness reports, it does not raise
        problems.append(f"database unreachable: {type(error).__name__}")
    if not container.scheduler.running:
        problems.append("scheduler not running")
    status = 503 if problems else 200
    return web.json_response({"ready": not problems, "problems": problems}, status=status)
