"""Access logs without the crowd: a successful read of the public status page (200 or 304)
leaves no access log line; refusals, errors and every other route are logged as before.

Thousands of visitors a second would otherwise write thousands of lines a second: in
bench/status_page.py formatting and writing them cost more than serving the page, and they
tell an operator nothing. Two ways in, the cheaper first:

- `QuietPublicReads`, an aiohttp access logger class, skips those reads (answered as
  `PublicRead`) before anything is formatted:
  `web.run_app(app, access_log_class=QuietPublicReads)`;
- `quiet_public_reads`, a logging filter on the `aiohttp.access` logger, drops their lines
  after aiohttp formatted them, whichever access logger class the server runs. The public
  page installs it while it runs (incident/web/public/routes.py).
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.web_log import AccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

PUBLIC_PATHS = ("/status", "/api/v2/", "/history.")
_REQUEST_LINES = tuple(f"{m} {p}" for m in ("GET", "HEAD") for p in PUBLIC_PATHS)
_QUIET_STATUSES = (200, 304)


class PublicRead(web.Response):
    """A successful read of the public pages (200 or 304), as their routes answer it."""


class QuietPublicReads(AccessLogger):
    """aiohttp's access logger, silent for successful public reads."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        if type(response) is PublicRead:  # one check per request: the crowd's come here
            return
        super().log(request, response, time)


def quiet_public_reads(record: logging.LogRecord) -> bool:
    """A filter for the `aiohttp.access` logger: False (drop) for a successful public read."""
    line = getattr(record, "first_request_line", "")
    if not isinstance(line, str) or not line.startswith(_REQUEST_LINES):
        return True
    return getattr(record, "response_status", 0) not in _QUIET_STATUSES
