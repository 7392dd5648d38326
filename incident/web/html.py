"""Server-rendered HTML: one Jinja2 environment for the public status page and the
commander's dashboard, with autoescaping on (unlike comms/, which renders plain text).

Templates live in incident/web/templates/ (public/ and dashboard/), static files in
incident/web/static/, both shipped inside the package.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

WEB_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"


def when(value: datetime | None) -> str:
    """`2026-11-23 14:05 UTC`: one unambiguous form everywhere on the pages."""
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def iso(value: datetime | None) -> str:
    """For `<time datetime=...>` and scripts: to the second, as HTML's time element takes
    it (a fraction of more than three digits is not a valid date and time)."""
    if value is None:
        return ""
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def duration(value: timedelta) -> str:
    """`3h 05m`, `12m`, `45s`, `2d 4h`."""
    seconds = int(abs(value.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html", "xml", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        # Templates ship with the code: no file-system check on every render.
        auto_reload=False,
    )
    env.filters["when"] = when
    env.filters["iso"] = iso
    env.filters["duration"] = duration
    return env
