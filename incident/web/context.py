"""Keys of what the application holds, shared by every handler module."""

from __future__ import annotations

import asyncio

from aiohttp import web

from incident import bootstrap
from incident.web.metrics import Metrics
from incident.web.throttle import FailedLogins

CONTAINER = web.AppKey("container", bootstrap.Container)
METRICS = web.AppKey("metrics", Metrics)
BACKGROUND = web.AppKey("background", set[asyncio.Task[None]])
FAILED_LOGINS = web.AppKey("failed_logins", FailedLogins)
