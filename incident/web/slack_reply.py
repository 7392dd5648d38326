"""What a slash command answers, and the times in it: shared by `/incident`'s incident
commands (`incident.web.slack`) and its case commands (`incident.web.slack_cases`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from incident.domain.chat_commands import escape

# A user mention we wrote ourselves (the name of a person acting, from Slack).
OUR_MENTION = re.compile(r"(<@[UW][A-Z0-9]{1,30}>)")


@dataclass(frozen=True)
class Reply:
    """What the person sees. `result` labels the metric and the log line."""

    text: str
    result: str = "ok"
    in_channel: bool = False
    incident_id: int | None = None

    def message(self) -> dict[str, str]:
        kind = "in_channel" if self.in_channel else "ephemeral"
        return {"response_type": kind, "text": self.text}


def when(at: datetime, now: datetime) -> str:
    """A time in the reader's own time zone (Slack's date token), and how far off it is."""
    return f"{moment(at)} ({relative(at - now)})"


def moment(at: datetime) -> str:
    """A time in the reader's own time zone (Slack's date token; UTC where it cannot be)."""
    fallback = at.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def relative(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    minutes = abs(seconds) // 60
    if minutes == 0:
        return "due now"
    if minutes < 120:
        span = f"{minutes} min"
    elif minutes < 48 * 60:
        hours, rest = divmod(minutes, 60)
        span = f"{hours} h {rest} min" if rest else f"{hours} h"
    else:
        days, rest = divmod(minutes, 24 * 60)
        span = f"{days} d {rest // 60} h" if rest // 60 else f"{days} d"
    return f"in {span}" if seconds > 0 else f"{span} overdue"


def escaped(text: str) -> str:
    """Text for a Slack message: &, < and > escaped, except in the user mentions we wrote
    ourselves (`<@U123>`, the names of people acting), which stay mentions."""
    parts = OUR_MENTION.split(text)
    return "".join(part if index % 2 else escape(part) for index, part in enumerate(parts))
