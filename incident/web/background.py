"""Work that goes on after the response has gone (Slack's 3-second rule), tracked so that
shutdown waits for it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from aiohttp import web

from incident.web.context import BACKGROUND

log = logging.getLogger("incident.web")


def run_in_background(app: web.Application, work: Awaitable[None]) -> None:
    """Run `work` after the response has gone; shutdown waits for it (up to 10 s)."""

    async def guarded() -> None:
        try:
            await work
        except Exception:
            log.exception("background work failed", extra={"action": "background_failed"})

    task = asyncio.create_task(guarded())
    app[BACKGROUND].add(task)
    task.add_done_callback(app[BACKGROUND].discard)
