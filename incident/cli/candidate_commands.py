"""`incident candidate list | show | declare | dismiss`: incidents proposed when many
customers report one problem, through a running service's REST API (/api/v1/candidates).

Run by `api_commands` like every API command (--url, --token, --json; output for people by
default, in candidate_output.py). A candidate is named as the patterns channel names it,
`CAND-7`, or by its number. What the server checks of a value (a title, a severity, a
reason, an incident given with a title) is left to it, the one rule for every door: the
CLI sends what was typed and prints the server's answer, every problem on its own line.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from typing import Any

from incident.cli import candidate_output as out
from incident.cli.api_parsers import incident_id, severity
from incident.cli.case_output import problems
from incident.cli.client import ApiClient, ClientError
from incident.domain.patterns import CandidateStatus

Outcome = tuple[Any, Callable[[Any], str]]  # the API's response, and how people read it
STATUSES = tuple(status.value for status in CandidateStatus)


def candidate_id(text: str) -> int:
    """`CAND-7` (as the patterns channel and the dashboard name it), `7` or `#7`."""
    digits = text.strip().upper().removeprefix("CAND-").removeprefix("#")
    if not re.fullmatch(r"[0-9]{1,16}", digits) or not 1 <= int(digits) <= 2**53:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an incident candidate (e.g. CAND-7 or 7)"
        )
    return int(digits)


def _status(text: str) -> str:
    return text.strip().lower()


def add_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add `incident candidate ACTION ...`; `common` holds the options every API command
    shares (--url, --token, --json)."""
    group = commands.add_parser(
        "candidate",
        help="incident candidates: many customers' reports of one problem, to declare or dismiss",
        description="Incident candidates through the API: proposed when many customers report "
        "one problem, declared (every case linked to the incident) or dismissed by a person.",
    )
    actions = group.add_subparsers(dest="candidate_command", required=True, metavar="ACTION")

    def add(name: str, help: str, description: str | None = None) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = actions.add_parser(
            name, parents=[common], help=help, description=description or help
        )
        if name != "list":
            parser.add_argument("id", type=candidate_id, help="the candidate: CAND-7 or 7")
        return parser

    listing = add("list", "incident candidates, newest first")
    listing.add_argument(
        "--status",
        action="append",
        type=_status,
        choices=STATUSES,
        default=[],
        help="only these (repeatable): " + ", ".join(STATUSES),
    )
    add("show", "one candidate with its evidence: its cases, customers, signature, suggestion")
    declare = add(
        "declare",
        "declare an incident for a candidate (or use an open one): every case is linked to it",
        description="Declare an incident for the candidate, at the suggested severity unless "
        "--severity says otherwise, and link every case of it, so each customer hears the "
        "incident's updates. With --incident, link them to that open incident instead "
        "(then give neither --severity nor --title).",
    )
    declare.add_argument("--severity", type=severity, help="P1 to P4 (default: the suggested)")
    declare.add_argument("--title", help="the incident's internal title, in a line")
    declare.add_argument(
        "--incident", type=incident_id, metavar="INCIDENT", help="an open incident: 42 or INC-42"
    )
    dismiss = add(
        "dismiss",
        "dismiss a candidate with a reason: its signature stays quiet for a while",
    )
    dismiss.add_argument("--reason", required=True, help="why it is not an incident")


def run(api: ApiClient, args: argparse.Namespace) -> Outcome:
    try:
        return _RUN[args.candidate_command](api, args)
    except ClientError as error:
        listed = problems(error.detail)
        if not listed:
            raise
        raise ClientError(
            "\n".join([f"{error.request} refused ({error.status}) {error.error}:", *listed])
        ) from None


def _list(api: ApiClient, args: argparse.Namespace) -> Outcome:
    params = {"status": list(args.status)} if args.status else {}
    return api.request("GET", "/candidates", params=params), out.listing


def _show(api: ApiClient, args: argparse.Namespace) -> Outcome:
    return api.request("GET", f"/candidates/{args.id}"), out.show


def _declare(api: ApiClient, args: argparse.Namespace) -> Outcome:
    given = {"severity": args.severity, "title": args.title, "incident": args.incident}
    body = {name: value for name, value in given.items() if value is not None}
    return api.request("POST", f"/candidates/{args.id}/declare", json=body), out.declared


def _dismiss(api: ApiClient, args: argparse.Namespace) -> Outcome:
    body = {"reason": args.reason}
    return api.request("POST", f"/candidates/{args.id}/dismiss", json=body), out.dismissed


_RUN: dict[str, Callable[[ApiClient, argparse.Namespace], Outcome]] = {
    "list": _list,
    "show": _show,
    "declare": _declare,
    "dismiss": _dismiss,
}
