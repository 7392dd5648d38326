"""The CLI commands that work through a running service's REST API.

One command per API operation (`incident declare | list | show | timeline | ack | update |
status | note | severity | role | ic | components | public-title | edit | cancel | reopen |
merge | approve | skip | snooze | resolve | rca | follow-up ... | export | postmortem |
maintenance ... | outbox | whoami`; support cases' `incident case ...` are in
case_commands.py, incident candidates' `incident candidate ...` in candidate_commands.py).
The server and token come from --url / --token or INCIDENT_URL / INCIDENT_TOKEN. Output is
for people by default (api_output.py) and JSON with --json (the API's own response); the
Markdown documents (export, postmortem) are printed as they are, controls escaped, or
written with --output. The arguments are in api_parsers.py.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from incident.cli import api_output as out
from incident.cli import api_parsers, candidate_commands, case_commands, case_parsers
from incident.cli.client import ApiClient, ClientError

Outcome = tuple[Any, Callable[[Any], str]]  # the API's response, and how people read it


def _declare(client: ApiClient, args: argparse.Namespace) -> Outcome:
    result = client.declare(
        title=args.title,
        severity=args.severity,
        service=args.service,
        impact=args.impact,
        category=args.category,
        components=dict(args.components),
        public_title=args.public_title,
        idempotency_key=args.idempotency_key,
    )
    return result, lambda r: out.changed(r, "declared" if r["created"] else "already declared")


def _list(client: ApiClient, args: argparse.Namespace) -> Outcome:
    return client.list(statuses=args.status, severities=args.severity), out.listing


def _show(client: ApiClient, args: argparse.Namespace) -> Outcome:
    return client.show(args.id), out.show


def _timeline(client: ApiClient, args: argparse.Namespace) -> Outcome:
    result = client.timeline(args.id, kinds=args.kind, public=args.public)
    return result, lambda r: out.timeline(r, filtered=bool(args.kind or args.public))


def _ack(client: ApiClient, args: argparse.Namespace) -> Outcome:
    return client.acknowledge(args.id), _said("acknowledged")


def _update(client: ApiClient, args: argparse.Namespace) -> Outcome:
    result = client.update(
        args.id, message=args.message, status=args.status, components=dict(args.components)
    )
    return result, _said("customer update posted")


def _status(client: ApiClient, args: argparse.Namespace) -> Outcome:
    if args.message is not None:
        result = client.update(args.id, message=args.message, status=args.status)
        return result, _said(f"{args.status}, customer update posted")
    return client.change_status(args.id, status=args.status), _said(f"now {args.status}")


def _note(client: ApiClient, args: argparse.Namespace) -> Outcome:
    return client.note(args.id, text=args.text), _said("note added")


def _severity(client: ApiClient, args: argparse.Namespace) -> Outcome:
    result = client.severity(args.id, severity=args.severity, reason=args.reason)
    return result, _said("severity changed")


def _person(client: ApiClient, person: str) -> str:
    """`me` is whoever the token acts as: the server says who that is (GET /me), so the
    name on the incident is the one on the timeline."""
    return str(client.whoami()["name"]) if person == "me" else person


def _role(client: ApiClient, args: argparse.Namespace) -> Outcome:
    person = _person(client, args.person)
    result = client.assign_role(args.id, role=args.role, person=person)
    return result, _said(f"{args.role.replace('_', ' ')} is {out.safe_line(person)}")


def _ic(client: ApiClient, args: argparse.Namespace) -> Outcome:
    person = _person(client, args.person)
    result = client.assign_role(args.id, role="commander", person=person)
    return result, _said(f"commander is {out.safe_line(person)}")


def _components(client: ApiClient, args: argparse.Namespace) -> Outcome:
    return client.components(args.id, dict(args.components)), _said("components set")


def _public_title(client: ApiClient, args: argparse.Namespace) -> Outcome:
    result = client.public_title(args.id, public_title=args.public_title)
    return result, _said("public title set")


def _skip(client: ApiClient, args: argparse.Namespace) -> Outcome:
    result = client.skip(args.id, args.step, reason=args.reason)
    return result, _said(f"skipped {args.step}")


def _snooze(client: ApiClient, args: argparse.Namespace) -> Outcome:
    result = client.snooze(args.id, args.step, minutes=args.minutes, reason=args.reason)
    return result, _said(f"snoozed {args.step} by {args.minutes} min")


def _resolve(client: ApiClient, args: argparse.Namespace) -> Outcome:
    return client.resolve(args.id, summary=args.summary), _said("resolved")


def _rca(client: ApiClient, args: argparse.Namespace) -> Outcome:
    return client.rca(args.id, link=args.link), _said("RCA recorded")


def _edit(client: ApiClient, args: argparse.Namespace) -> Outcome:
    fields = {
        "title": args.title,
        "impact": args.impact,
        "service": args.service,
        "category": args.category,
    }
    if all(value is None for value in fields.values()):
        raise ClientError("say what to change: --title, --impact, --service or --category")
    changed = ", ".join(name for name, value in fields.items() if value is not None)
    return client.edit(args.id, **fields), _said(f"edited ({changed})")


def _cancel(client: ApiClient, args: argparse.Namespace) -> Outcome:
    result = client.cancel(args.id, reason=args.reason, note=args.note)
    return result, _said(f"cancelled ({args.reason.replace('_', ' ')})")


def _reopen(client: ApiClient, args: argparse.Namespace) -> Outcome:
    return client.reopen(args.id, reason=args.reason, status=args.status), _said("reopened")


def _merge(client: ApiClient, args: argparse.Namespace) -> Outcome:
    return client.merge(args.id, into=args.into), _said(f"merged into INC-{args.into}")


def _approve(client: ApiClient, args: argparse.Namespace) -> Outcome:
    return client.approve(args.id, args.step), _said(f"approved {args.step}")


def _follow_up(client: ApiClient, args: argparse.Namespace) -> Outcome:
    match args.follow_up_command:
        case "add":
            result = client.add_follow_up(
                args.id, title=args.title, owner=args.owner, due_at=args.due.isoformat()
            )
            return result, lambda r: out.follow_up(r, "added")
        case "list":
            return client.follow_ups(args.id), out.follow_ups
        case "done":
            result = client.complete_follow_up(args.id, args.follow_up)
            return result, lambda r: out.follow_up(r, "done")
    raise AssertionError(args.follow_up_command)  # pragma: no cover


def _export(client: ApiClient, args: argparse.Namespace) -> Outcome:
    if args.json:
        return client.timeline(args.id, kinds=(), public=False), out.timeline
    return client.timeline_markdown(args.id), out.document


def _postmortem(client: ApiClient, args: argparse.Namespace) -> Outcome:
    return client.postmortem(args.id), out.document


def _maintenance(client: ApiClient, args: argparse.Namespace) -> Outcome:
    match args.maintenance_command:
        case "schedule":
            until = args.until or args.start + args.length
            if until <= args.start:
                raise ClientError("the window must end after it starts (--until, --for)")
            result = client.schedule_maintenance(
                name=args.name,
                message=args.message,
                scheduled_for=args.start.isoformat(),
                scheduled_until=until.isoformat(),
                components=args.components,
            )
            return result, out.maintenance
        case "list":
            return client.maintenances(), out.maintenances
        case "show":
            return client.maintenance(args.id), out.maintenance
        case "update":
            result = client.update_maintenance(args.id, message=args.message, status=args.status)
            return result, out.maintenance
    raise AssertionError(args.maintenance_command)  # pragma: no cover


def _outbox(client: ApiClient, args: argparse.Namespace) -> Outcome:
    return client.outbox(incident_id=args.incident, limit=args.limit), out.outbox


def _whoami(client: ApiClient, args: argparse.Namespace) -> Outcome:
    return client.whoami(), out.caller


def _said(verb: str) -> Callable[[Any], str]:
    return lambda result: out.changed(result, verb)


_RUN: dict[str, Callable[[ApiClient, argparse.Namespace], Outcome]] = {
    "declare": _declare,
    "list": _list,
    "show": _show,
    "timeline": _timeline,
    "ack": _ack,
    "update": _update,
    "status": _status,
    "note": _note,
    "severity": _severity,
    "role": _role,
    "ic": _ic,
    "components": _components,
    "public-title": _public_title,
    "edit": _edit,
    "cancel": _cancel,
    "reopen": _reopen,
    "merge": _merge,
    "approve": _approve,
    "skip": _skip,
    "snooze": _snooze,
    "resolve": _resolve,
    "rca": _rca,
    "follow-up": _follow_up,
    "export": _export,
    "postmortem": _postmortem,
    "maintenance": _maintenance,
    "outbox": _outbox,
    "whoami": _whoami,
    "case": case_commands.run,
    "candidate": candidate_commands.run,
}
COMMANDS = tuple(_RUN)


def add_parsers(commands: Any) -> None:
    """Add the API commands to the CLI's subparsers."""
    common = api_parsers.add_parsers(commands)
    case_parsers.add_parsers(commands, common)
    candidate_commands.add_parsers(commands, common)
    missing = set(COMMANDS) - set(commands.choices)
    assert not missing, f"API commands without a parser: {sorted(missing)}"


def run(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    url = args.url or env.get("INCIDENT_URL") or api_parsers.DEFAULT_URL
    token = args.token or env.get("INCIDENT_TOKEN")
    if not token:
        raise ClientError("no API token: pass --token or set INCIDENT_TOKEN")
    if not url.startswith(("http://", "https://")):
        raise ClientError(f"--url {url!r} must start with http:// or https://")
    with httpx.Client(timeout=10) as http:
        client = ApiClient(url, token, http=http)
        result, show = _RUN[args.command](client, args)
    # JSON escapes every control character and everything beyond ASCII: safe as it is.
    text = json.dumps(result, indent=2) if getattr(args, "json", False) else show(result)
    output: Path | None = getattr(args, "output", None)
    if output is None:
        print(text)
        return 0
    try:
        output.write_text(text + "\n", encoding="utf-8")
    except OSError as error:
        raise ClientError(f"cannot write {output}: {error.strerror or error}") from None
    print(f"wrote {out.safe_line(output)} ({len(text.splitlines())} lines)")
    return 0
