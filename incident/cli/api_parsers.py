"""The command lines of the API commands: their arguments, checked before anything is sent.

A value the server would refuse for its form (a time without a zone, `api:down` for
`api=major_outage`, `90s` for whole minutes) is refused here, naming the argument and what
to write instead. Severities and statuses are accepted in any case and sent as the API
spells them; the API itself stays strict.
"""

from __future__ import annotations

import argparse
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from incident.clock import SystemClock
from incident.domain.incident import Category
from incident.domain.playbook import parse_duration

DEFAULT_URL = "http://127.0.0.1:8080"
OPEN_STATUSES = ("investigating", "identified", "monitoring")
ROLES = ("commander", "comms_lead")
COMPONENT_STATUSES = (
    "operational",
    "under_maintenance",
    "degraded_performance",
    "partial_outage",
    "major_outage",
)
MAINTENANCE_STATUSES = ("in_progress", "verifying", "completed")
CATEGORIES = tuple(c.value for c in Category)
CANCELLATIONS = ("false_alarm", "declined")  # a duplicate is merged: `incident merge`
MAX_SNOOZE = timedelta(days=7)
_STEP = re.compile(r"^[A-Za-z0-9_.@-]{1,120}$")
_COMPONENT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


# --- argument types ------------------------------------------------------------------------


def incident_id(text: str) -> int:
    digits = text.removeprefix("INC-").removeprefix("inc-").removeprefix("#")
    if not re.fullmatch(r"[0-9]{1,16}", digits) or not 1 <= int(digits) <= 2**53:
        raise argparse.ArgumentTypeError(f"{text!r} is not an incident id (e.g. 42 or INC-42)")
    return int(digits)


def maintenance_id(text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,16}", text) or not 1 <= int(text) <= 2**53:
        raise argparse.ArgumentTypeError(f"{text!r} is not a maintenance window id (e.g. 3)")
    return int(text)


def follow_up_id(text: str) -> int:
    """`FU-3` (as `incident show` and the reminders name it) or `3`."""
    digits = text.strip().upper().removeprefix("FU-")
    if not re.fullmatch(r"[0-9]{1,16}", digits) or not 1 <= int(digits) <= 2**53:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a follow-up (e.g. FU-3 or 3); `incident follow-up list ID` lists them"
        )
    return int(digits)


def severity(text: str) -> str:
    """`p1` is P1. Anything else goes as written, for the server to say what it accepts."""
    return text.strip().upper()


def _lower(text: str) -> str:
    return text.strip().lower().replace("-", "_")


def step_id(text: str) -> str:
    if not _STEP.match(text) or set(text) == {"."}:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a step id; `incident show ID` lists the upcoming steps' ids"
        )
    return text


def component_status(text: str) -> tuple[str, str]:
    """`api=major_outage`."""
    component, equals, status = text.partition("=")
    component, status = component.strip(), _lower(status)
    if not equals or not _COMPONENT.match(component):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not COMPONENT=STATUS (e.g. api=major_outage)"
        )
    if status not in COMPONENT_STATUSES:
        raise argparse.ArgumentTypeError(
            f"{status!r} (for {component}) is not a component status; use one of "
            + ", ".join(COMPONENT_STATUSES)
        )
    return component, status


def component(text: str) -> str:
    if not _COMPONENT.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a component id (e.g. api)")
    return text


def instant(text: str) -> datetime:
    """An ISO 8601 time with its zone (`2030-05-01T22:00:00Z`, `...+02:00`), `now`, or a
    time from now (`+2h`, `+1d12h`)."""
    value = text.strip()
    if value == "now":
        return SystemClock().now()
    if value.startswith("+"):
        try:
            return SystemClock().now() + parse_duration(value[1:])
        except ValueError:
            pass  # said below, with the other forms
    else:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if moment.tzinfo is None:
                raise argparse.ArgumentTypeError(
                    f"{text!r} has no time zone; add one, e.g. {value}Z or {value}+02:00"
                )
            return moment
    raise argparse.ArgumentTypeError(
        f"{text!r} is not a time; write an ISO 8601 time with its zone "
        "(2030-05-01T22:00:00Z, 2030-05-01T22:00+02:00), now, or +2h, +1d"
    )


def duration(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def snooze_minutes(text: str) -> int:
    """`--for 30m`, `--for 2h`: whole minutes, at least one, at most a week."""
    delta = duration(text)
    if delta.total_seconds() % 60 or not timedelta(minutes=1) <= delta <= MAX_SNOOZE:
        raise argparse.ArgumentTypeError(
            f"{text!r}: snooze by whole minutes, from 1m to {MAX_SNOOZE.days}d"
        )
    return int(delta.total_seconds() // 60)


def minutes(text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,6}", text.strip()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of minutes")
    return snooze_minutes(f"{int(text)}m")


def limit(text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,4}", text.strip()) or not 1 <= int(text) <= 1000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number from 1 to 1000")
    return int(text)


# --- the parsers ---------------------------------------------------------------------------


class _Parsers:
    """Adds commands that share --url, --token and --json."""

    def __init__(self, commands: Any) -> None:
        self.commands = commands
        # For the commands whose answer is a document (Markdown), not JSON: no --json.
        self.server = argparse.ArgumentParser(add_help=False)
        self.common = argparse.ArgumentParser(add_help=False)
        for parent in (self.server, self.common):
            parent.add_argument(
                "--url", help=f"the service (default: INCIDENT_URL or {DEFAULT_URL})"
            )
            parent.add_argument("--token", help="API token (default: INCIDENT_TOKEN)")
        self.common.add_argument(
            "--json", action="store_true", help="print the API's JSON response"
        )

    def command(
        self, name: str, help: str, description: str | None = None, *, json: bool = True
    ) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = self.commands.add_parser(
            name,
            parents=[self.common if json else self.server],
            help=help,
            description=description or help,
        )
        return parser

    def on_incident(
        self, name: str, help: str, description: str | None = None, *, json: bool = True
    ) -> argparse.ArgumentParser:
        parser = self.command(name, help, description, json=json)
        parser.add_argument("id", type=incident_id, help="the incident: 42 or INC-42")
        return parser


def add_parsers(commands: Any) -> argparse.ArgumentParser:
    """Add the API commands to the CLI's subparsers. Returns the parent parser of the
    options they share (--url, --token, --json), for the command groups of other
    resources (`incident case ...`)."""
    parsers = _Parsers(commands)
    _add_incidents(parsers)
    _add_changes(parsers)
    _add_lifecycle(parsers)
    _add_steps(parsers)
    _add_follow_ups(parsers)
    _add_documents(parsers)
    _add_maintenance(parsers)
    outbox = parsers.command(
        "outbox",
        "the effects the outbox kept (through the API; --local: from the database)",
        description="The messages the outbox kept (pages, chat, e-mails, status page and "
        "customer texts), oldest first, through the API (a responder's token). With "
        "--local, read them from the database (INCIDENT_DATABASE_URL) directly instead: "
        "for when no server runs.",
    )
    outbox.add_argument("--incident", type=incident_id, default=None)
    outbox.add_argument("--limit", type=limit, default=None, help="the newest N (default 100)")
    outbox.add_argument(
        "--local",
        action="store_true",
        help="read the database directly, without a server (no token needed)",
    )
    parsers.command("whoami", "the name and role your token acts as")
    return parsers.common


def _add_incidents(parsers: _Parsers) -> None:
    declare = parsers.command("declare", "declare an incident")
    declare.add_argument("severity", type=severity, help="P1, P2, P3 or P4 (any case)")
    declare.add_argument("title", help="what is wrong, in a line (quote it)")
    declare.add_argument("--service", default="")
    declare.add_argument("--impact", default="", help="who is affected and how")
    declare.add_argument("--category", default="general")
    declare.add_argument(
        "--components",
        nargs="+",
        type=component_status,
        default=[],
        metavar="COMPONENT=STATUS",
        help="what the status page shows, e.g. api=major_outage web=degraded_performance",
    )
    declare.add_argument("--public-title", help="the name customers see on the status page")
    declare.add_argument(
        "--idempotency-key", help="repeat the command with the same key to declare once"
    )

    listing = parsers.command("list", "list incidents")
    listing.add_argument(
        "--status", action="append", type=_lower, default=[], help="filter (repeatable)"
    )
    listing.add_argument(
        "--severity", action="append", type=severity, default=[], help="filter (repeatable)"
    )

    parsers.on_incident("show", "one incident: upcoming steps and timeline")

    timeline = parsers.on_incident(
        "timeline",
        "an incident's timeline",
        description="An incident's timeline, oldest first: time, kind, public (what "
        "customers were shown) or not, who, and the text.",
    )
    timeline.add_argument(
        "--kind",
        action="append",
        default=[],
        help="only entries of this kind, e.g. customer_update, step_skipped (repeatable)",
    )
    timeline.add_argument("--public", action="store_true", help="only what customers were shown")


def _add_changes(parsers: _Parsers) -> None:
    parsers.on_incident("ack", "acknowledge an incident")

    update = parsers.on_incident("update", "post a customer update")
    update.add_argument("message")
    update.add_argument("--status", type=_lower, choices=OPEN_STATUSES)
    update.add_argument(
        "--components", nargs="+", type=component_status, default=[], metavar="COMPONENT=STATUS"
    )

    status = parsers.on_incident(
        "status",
        "change an incident's status",
        description="Move the incident to a status. With MESSAGE, the change is posted to "
        "customers as an update (as `incident update ID MESSAGE --status STATUS`).",
    )
    status.add_argument("status", type=_lower, choices=OPEN_STATUSES)
    status.add_argument("message", nargs="?", help="a customer update to post with it")

    note = parsers.on_incident("note", "add an internal note")
    note.add_argument("text")

    change = parsers.on_incident(
        "severity",
        "change an incident's severity",
        description="Raise or lower the severity (lowering needs commander rights); "
        "the new severity's playbook takes over.",
    )
    change.add_argument("severity", type=severity, help="P1, P2, P3 or P4 (any case)")
    change.add_argument("--reason", default="")

    role = parsers.on_incident("role", "assign the commander or communications lead")
    role.add_argument("role", type=_lower, choices=ROLES)
    role.add_argument("person", help="who; `me` is you (the name your token acts as)")

    ic = parsers.on_incident(
        "ic",
        "make someone (or you) the incident commander",
        description="Make PERSON the incident commander; `me` is the name your token acts "
        "as. A responder may take command of an incident that has no commander.",
    )
    ic.add_argument("person", help="who, or `me`")

    components = parsers.on_incident("components", "set what the status page shows for components")
    components.add_argument(
        "components", nargs="+", type=component_status, metavar="COMPONENT=STATUS"
    )

    public_title = parsers.on_incident("public-title", "set the name customers see")
    public_title.add_argument("public_title", metavar="TEXT")

    resolve = parsers.on_incident("resolve", "resolve an incident")
    resolve.add_argument("summary", help="what was wrong and what fixed it")

    rca = parsers.on_incident("rca", "record the RCA (closes a resolved incident)")
    rca.add_argument("link", help="where the RCA document is")


def _add_lifecycle(parsers: _Parsers) -> None:
    edit = parsers.on_incident(
        "edit",
        "correct an incident's title, impact, service or category",
        description="Correct the incident's facts; only the options given change (at least "
        "one). A new category re-routes the incident: security brings the security team's "
        "steps and holds automatic customer texts for the commander's approval.",
    )
    edit.add_argument("--title", help="what is wrong, in a line")
    edit.add_argument("--impact", help="who is affected and how")
    edit.add_argument("--service")
    edit.add_argument("--category", type=_lower, choices=CATEGORIES)

    cancel = parsers.on_incident(
        "cancel",
        "cancel an incident: a false alarm, or declined (real, but not an incident)",
        description="Call the incident off: its playbook stops, its pages are resolved, the "
        "status page withdraws it and no RCA is due. A duplicate is merged instead "
        "(`incident merge ID --into OTHER`).",
    )
    cancel.add_argument(
        "reason",
        type=_lower,
        choices=CANCELLATIONS,
        metavar="false_alarm|declined",
        help="false_alarm (or false-alarm): nothing was wrong; declined: real, but not an incident",
    )
    cancel.add_argument("note", nargs="?", default="", help="why, for the timeline")

    reopen = parsers.on_incident(
        "reopen",
        "reopen a resolved incident",
        description="Back to work on a resolved incident: its cadence resumes from now and "
        "the RCA deadline is off until it is resolved again.",
    )
    reopen.add_argument("reason", help="why it is reopened, for the timeline")
    reopen.add_argument(
        "--status", type=_lower, choices=OPEN_STATUSES, help="(default: investigating)"
    )

    merge = parsers.on_incident(
        "merge",
        "merge a duplicate into another incident",
        description="Merge incident ID, a duplicate, into OTHER (commander rights on both): "
        "ID is cancelled and its pages resolved; OTHER takes over its components and alert "
        "groups.",
    )
    merge.add_argument(
        "--into", type=incident_id, required=True, metavar="OTHER", help="42 or INC-42"
    )


def _add_steps(parsers: _Parsers) -> None:
    approve = parsers.on_incident(
        "approve",
        "approve a customer-facing text held for approval (or one coming up)",
        description="A security incident's automatic customer texts wait for the "
        "commander's approval: a held one goes out now; an upcoming one goes out when due.",
    )
    approve.add_argument("step", type=step_id, help="a step id from `incident show ID`")

    skip = parsers.on_incident("skip", "skip the next occurrence of a playbook step")
    skip.add_argument("step", type=step_id, help="a step id from `incident show ID`")
    skip.add_argument("--reason", required=True)

    snooze = parsers.on_incident("snooze", "postpone the next occurrence of a playbook step")
    snooze.add_argument("step", type=step_id, help="a step id from `incident show ID`")
    by = snooze.add_mutually_exclusive_group(required=True)
    by.add_argument("--minutes", type=minutes, dest="minutes")
    by.add_argument(
        "--for", type=snooze_minutes, dest="minutes", metavar="DURATION", help="e.g. 30m, 2h"
    )
    snooze.add_argument("--reason", required=True)


def _add_follow_ups(parsers: _Parsers) -> None:
    common = parsers.common
    items = parsers.commands.add_parser(
        "follow-up", help="an incident's follow-up action items (reminded until done)"
    )
    actions = items.add_subparsers(dest="follow_up_command", required=True, metavar="ACTION")
    add = actions.add_parser(
        "add",
        parents=[common],
        help="add an action item",
        description="Add a follow-up action item; its owner is reminded a day before it is "
        "due, then daily until it is done. DUE: ISO 8601 with a zone (2030-05-01T12:00Z) or "
        "from now (+7d, +36h).",
    )
    add.add_argument("id", type=incident_id, help="the incident: 42 or INC-42")
    add.add_argument("title", help="what is to be done, in a line")
    add.add_argument("--owner", required=True, help="a name, an @handle or an e-mail address")
    add.add_argument("--due", type=instant, required=True, metavar="DUE")
    listing = actions.add_parser("list", parents=[common], help="the incident's action items")
    listing.add_argument("id", type=incident_id, help="the incident: 42 or INC-42")
    done = actions.add_parser("done", parents=[common], help="mark an action item done")
    done.add_argument("id", type=incident_id, help="the incident: 42 or INC-42")
    done.add_argument("follow_up", type=follow_up_id, metavar="FU", help="FU-3 or 3")


def _add_documents(parsers: _Parsers) -> None:
    export = parsers.on_incident(
        "export",
        "the whole timeline as a Markdown document (--json: as JSON)",
    )
    export.add_argument("--output", "-o", type=Path, metavar="FILE", help="write it to FILE")
    postmortem = parsers.on_incident(
        "postmortem",
        "a postmortem (RCA) draft in Markdown, pre-filled from the incident's facts",
        json=False,
    )
    postmortem.add_argument("--output", "-o", type=Path, metavar="FILE", help="write it to FILE")


def _add_maintenance(parsers: _Parsers) -> None:
    common = parsers.common
    windows = parsers.commands.add_parser("maintenance", help="scheduled maintenance windows")
    actions = windows.add_subparsers(dest="maintenance_command", required=True, metavar="ACTION")
    times = (
        "Times: ISO 8601 with a zone (2030-05-01T22:00:00Z, 2030-05-01T22:00+02:00), now, "
        "or from now (+2h, +1d)."
    )
    schedule = actions.add_parser(
        "schedule",
        parents=[common],
        help="schedule a window (shown on the status page)",
        description="Schedule a maintenance window. " + times,
    )
    schedule.add_argument("name", help="what customers see, e.g. 'Database upgrade'")
    schedule.add_argument("message", help="what will happen and what customers will notice")
    schedule.add_argument("--start", "--from", type=instant, required=True, metavar="TIME")
    end = schedule.add_mutually_exclusive_group(required=True)
    end.add_argument("--until", type=instant, metavar="TIME")
    end.add_argument("--for", type=duration, dest="length", metavar="DURATION", help="e.g. 2h")
    schedule.add_argument(
        "--components", nargs="+", type=component, default=[], metavar="COMPONENT"
    )
    actions.add_parser("list", parents=[common], help="windows ending in the last 30 days or later")
    show = actions.add_parser("show", parents=[common], help="one window with its updates")
    show.add_argument("id", type=maintenance_id)
    update = actions.add_parser(
        "update", parents=[common], help="post an update, optionally moving its status"
    )
    update.add_argument("id", type=maintenance_id)
    update.add_argument("message")
    update.add_argument(
        "--status",
        type=_lower,
        choices=MAINTENANCE_STATUSES,
        help="in_progress starts it now if it has not begun; completed ends it",
    )
