"""The CLI commands that work through a running service's REST API.

`incident declare | list | show | ack | update | note | resolve`. The server and token come
from --url / --token or INCIDENT_URL / INCIDENT_TOKEN. Output is for people by default and
JSON with --json (the API's own response).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import httpx

from incident.client import ApiClient, ClientError
from incident.clock import SystemClock
from incident.domain.playbook import format_duration

DEFAULT_URL = "http://127.0.0.1:8080"
COMMANDS = ("declare", "list", "show", "ack", "update", "note", "resolve")


def add_parsers(commands: Any) -> None:
    """Add the API commands to the CLI's subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help=f"the service (default: INCIDENT_URL or {DEFAULT_URL})")
    common.add_argument("--token", help="API token (default: INCIDENT_TOKEN)")
    common.add_argument("--json", action="store_true", help="print the API's JSON response")

    declare = commands.add_parser("declare", parents=[common], help="declare an incident")
    declare.add_argument("severity", help="P1, P2, P3 or P4")
    declare.add_argument("title", help="what is wrong, in a line (quote it)")
    declare.add_argument("--service", default="")
    declare.add_argument("--impact", default="", help="who is affected and how")
    declare.add_argument("--category", default="general")
    declare.add_argument(
        "--idempotency-key", help="repeat the command with the same key to declare once"
    )

    listing = commands.add_parser("list", parents=[common], help="list incidents")
    listing.add_argument("--status", action="append", default=[], help="filter (repeatable)")
    listing.add_argument("--severity", action="append", default=[], help="filter (repeatable)")

    show = commands.add_parser(
        "show", parents=[common], help="one incident: upcoming steps and timeline"
    )
    show.add_argument("id", type=_incident_id)

    ack = commands.add_parser("ack", parents=[common], help="acknowledge an incident")
    ack.add_argument("id", type=_incident_id)

    update = commands.add_parser("update", parents=[common], help="post a customer update")
    update.add_argument("id", type=_incident_id)
    update.add_argument("message")
    update.add_argument("--status", help="investigating, identified or monitoring")

    note = commands.add_parser("note", parents=[common], help="add an internal note")
    note.add_argument("id", type=_incident_id)
    note.add_argument("text")

    resolve = commands.add_parser("resolve", parents=[common], help="resolve an incident")
    resolve.add_argument("id", type=_incident_id)
    resolve.add_argument("summary", help="what was wrong and what fixed it")


def _incident_id(text: str) -> int:
    digits = text.removeprefix("INC-").removeprefix("inc-").removeprefix("#")
    if not digits.isdigit() or not 1 <= int(digits) <= 2**53:
        raise argparse.ArgumentTypeError(f"{text!r} is not an incident id (e.g. 42 or INC-42)")
    return int(digits)


def run(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    url = args.url or env.get("INCIDENT_URL") or DEFAULT_URL
    token = args.token or env.get("INCIDENT_TOKEN")
    if not token:
        raise ClientError("no API token: pass --token or set INCIDENT_TOKEN")
    if not url.startswith(("http://", "https://")):
        raise ClientError(f"--url {url!r} must start with http:// or https://")
    with httpx.Client(timeout=10) as http:
        client = ApiClient(url, token, http=http)
        result, show = _call(client, args)
    print(json.dumps(result, indent=2) if args.json else show(result))
    return 0


def _call(client: ApiClient, args: argparse.Namespace) -> tuple[Any, Callable[[Any], str]]:
    match args.command:
        case "declare":
            result = client.declare(
                title=args.title,
                severity=args.severity,
                service=args.service,
                impact=args.impact,
                category=args.category,
                idempotency_key=args.idempotency_key,
            )
            return result, lambda r: _changed(r, "declared" if r["created"] else "already declared")
        case "list":
            return client.list(statuses=args.status, severities=args.severity), _list
        case "show":
            return client.show(args.id), _show
        case "ack":
            return client.acknowledge(args.id), lambda r: _changed(r, "acknowledged")
        case "update":
            result = client.update(args.id, message=args.message, status=args.status)
            return result, lambda r: _changed(r, "customer update posted")
        case "note":
            return client.note(args.id, text=args.text), lambda r: _changed(r, "note added")
        case "resolve":
            result = client.resolve(args.id, summary=args.summary)
            return result, lambda r: _changed(r, "resolved")
    raise AssertionError(args.command)  # pragma: no cover


# --- what people read ----------------------------------------------------------------------


def _when(text: str | None) -> str:
    if not text:
        return "-"
    at = datetime.fromisoformat(text)
    seconds = int((at - SystemClock().now()).total_seconds())
    if abs(seconds) >= 60:
        seconds = round(seconds / 60) * 60  # minutes are precise enough to read
    if seconds == 0:
        relative = "now"
    elif seconds > 0:
        relative = f"in {format_duration(timedelta(seconds=seconds))}"
    else:
        relative = f"{format_duration(timedelta(seconds=-seconds))} ago"
    return f"{at.strftime('%Y-%m-%d %H:%M:%S')}Z ({relative})"


def _headline(incident: Mapping[str, Any]) -> str:
    return f"{incident['ref']} {incident['severity']} {incident['status']}: {incident['title']}" + (
        f" [{incident['service']}]" if incident["service"] else ""
    )


def _upcoming(steps: list[Mapping[str, Any]]) -> list[str]:
    if not steps:
        return ["  (no upcoming steps)"]
    return [
        f"  {_when(step['runs_at']):<40} {step['step_id']:<28} {step['action']}"
        + (f" (attempt {step['attempts'] + 1}: {step['last_error']})" if step["last_error"] else "")
        for step in steps
    ]


def _changed(result: Mapping[str, Any], verb: str) -> str:
    lines = [f"{verb}: {_headline(result['incident'])}", "next steps:"]
    return "\n".join(lines + _upcoming(result["upcoming"]))


def _list(result: Mapping[str, Any]) -> str:
    incidents = result["incidents"]
    if not incidents:
        return "no incidents"
    return "\n".join(
        f"{i['ref']:<9} {i['severity']}  {i['status']:<13} "
        f"{_when(i['declared_at']):<40} {i['title']}"
        for i in incidents
    )


def _show(result: Mapping[str, Any]) -> str:
    incident = result["incident"]
    lines = [_headline(incident)]
    for label, key in (
        ("declared", "declared_at"),
        ("acknowledged", "acknowledged_at"),
        ("resolved", "resolved_at"),
        ("RCA due", "rca_due_at"),
    ):
        if incident[key]:
            lines.append(f"  {label:<13} {_when(incident[key])}")
    for label, key in (("commander", "commander"), ("war room", "war_room")):
        if incident[key]:
            lines.append(f"  {label:<13} {incident[key]}")
    lines += ["upcoming steps:", *_upcoming(result["upcoming"]), "timeline:"]
    lines += [
        f"  {entry['at'][:19]}Z  {entry['actor']:<12} {entry['text']}"
        for entry in result["timeline"]
    ]
    return "\n".join(lines)
