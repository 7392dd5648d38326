"""The command lines of `incident case ...`: support cases through /api/v1/cases.

The choices (levels, flags, checklist items, plans, statuses, de-escalation reasons, who
decides) are the domain's own enums, so the CLI offers exactly what the server takes; they
are accepted in any case, with `-` for `_`. What the server checks of a value (a context
field's format, an amount, an e-mail address, a count's range) is left to it: the CLI sends
what was typed and prints the server's answer, every problem it names on its own line.

Context is given as `--context KEY=TEXT` (text as typed) or `--context KEY:=JSON` (a number,
a list or an object, for the fields that hold one: `previous_escalations:=2`,
`transactions:='[{"network": "evm", "hash": "0x...", "at": "2026-03-02T09:00:00Z"}]'`),
or all at once from a JSON file (`--context-file`).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from incident.cli.api_parsers import incident_id, instant, severity
from incident.domain.case import CaseStatus, Deescalation, Plan
from incident.domain.case_access import APPROVER
from incident.domain.case_context import FIELDS, ChecklistItem
from incident.domain.case_routing import Flag, Level
from incident.domain.lifecycle import Severity

LEVELS = tuple(level.value for level in Level)
FLAGS = tuple(flag.value for flag in Flag)
CHECKLIST = tuple(item.value for item in ChecklistItem)
PLANS = tuple(plan.value for plan in Plan)
PRIORITIES = tuple(priority.value for priority in Severity)
STATUSES = tuple(status.value for status in CaseStatus)
DEESCALATIONS = tuple(why.value for why in Deescalation)
APPROVERS = tuple(level.value for level in APPROVER)
CONTEXT_HELP = (
    "KEY=TEXT, or KEY:=JSON for a number, a list or an object (repeatable); the keys: "
    + ", ".join(FIELDS)
)


# --- argument types ------------------------------------------------------------------------


def case_id(text: str) -> int:
    """`CASE-12` (as the case is named everywhere), `12` or `#12`."""
    digits = text.strip().upper().removeprefix("CASE-").removeprefix("#")
    if not re.fullmatch(r"[0-9]{1,16}", digits) or not 1 <= int(digits) <= 2**53:
        raise argparse.ArgumentTypeError(f"{text!r} is not a case id (e.g. 12 or CASE-12)")
    return int(digits)


def word(text: str) -> str:
    """A choice as the API spells it: `Legal-Threat` is legal_threat."""
    return text.strip().lower().replace("-", "_")


def count(text: str) -> int:
    """A whole number; its range is the server's to say."""
    if not re.fullmatch(r"-?[0-9]{1,9}", text.strip()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    return int(text)


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def _json(text: str) -> object:
    """JSON as the API reads it: NaN and Infinity are Python's, not JSON's."""
    return json.loads(text, parse_constant=_no_constant)


def context_pair(text: str) -> tuple[str, object]:
    """`customer_impact=Cannot log in` (text as typed) or `previous_escalations:=2` (JSON).
    Whether KEY is a context field, and its value right for it, is the server's to say."""
    key, equals, value = text.partition("=")
    as_json = key.endswith(":")
    key = key.removesuffix(":").strip()
    if not equals or not key:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not KEY=TEXT or KEY:=JSON "
            "(e.g. customer_impact='Cannot log in' or previous_escalations:=2)"
        )
    if not as_json:
        return key, value
    try:
        return key, _json(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"{key}:= takes JSON ({error}); for text write {key}=TEXT"
        ) from None


def context_file(text: str) -> object:
    """The JSON in a file (`-`: standard input): the whole context, as the API takes it."""
    try:
        raw = sys.stdin.read() if text == "-" else Path(text).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or error
        raise argparse.ArgumentTypeError(f"cannot read {text}: {reason}") from None
    try:
        return _json(raw)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text} is not JSON: {error}") from None


# --- the parsers ---------------------------------------------------------------------------


class _Actions:
    """Adds the actions of `incident case`, each with --url, --token and --json."""

    def __init__(self, actions: Any, common: argparse.ArgumentParser) -> None:
        self.actions = actions
        self.common = common

    def add(self, name: str, help: str, description: str | None = None) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = self.actions.add_parser(
            name, parents=[self.common], help=help, description=description or help
        )
        return parser

    def on_case(
        self, name: str, help: str, description: str | None = None
    ) -> argparse.ArgumentParser:
        parser = self.add(name, help, description)
        parser.add_argument("id", type=case_id, help="the case: 12 or CASE-12")
        return parser


def add_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add `incident case ACTION ...` to the CLI's subparsers; `common` holds the options
    every API command shares."""
    group = commands.add_parser(
        "case",
        help="support cases: open, work, escalate, decide, resolve",
        description="Support cases through the API. Who may do what is the server's rule, "
        "on your token's support role (INCIDENT_SUPPORT_ROLES).",
    )
    actions = _Actions(
        group.add_subparsers(dest="case_command", required=True, metavar="ACTION"), common
    )
    _add_open_and_update(actions)
    _add_reading(actions)
    _add_moves(actions)
    _add_closing(actions)
    _add_links(actions)


def _add_open_and_update(actions: _Actions) -> None:
    opening = actions.add(
        "open",
        "open a case for a helpdesk ticket (the rules route it at once)",
        description="Open a case for the ticket REFERENCE. The rules route it at once: a "
        "legal threat goes straight to the CIO.",
    )
    opening.add_argument("reference", help="the helpdesk ticket, e.g. ZD-1001")
    opening.add_argument("customer_id", metavar="CUSTOMER_ID")
    opening.add_argument("summary", help="the issue, in the customer's terms (quote it)")
    opening.add_argument("--plan", type=word, choices=PLANS, required=True)
    _add_facts(opening, update=False)

    update = actions.on_case(
        "update",
        "change a case's facts (only the options given change)",
        description="Change a case's facts; the rules route it again. --flag and --checklist "
        "give the whole set (given alone, they clear it); --context is merged into the "
        "context the case has.",
    )
    update.add_argument("--summary")
    update.add_argument("--plan", type=word, choices=PLANS)
    _add_facts(update, update=True)
    update.add_argument(
        "--expected-resolution",
        type=instant,
        metavar="TIME",
        help="ISO 8601 with a zone (2030-05-01T17:00Z), now, or from now (+2d)",
    )


def _add_facts(parser: argparse.ArgumentParser, *, update: bool) -> None:
    """The facts `open` and `update` share. On `update` none has a default: what is not
    given is not sent, and stays as it is."""
    parser.add_argument("--priority", type=severity, choices=PRIORITIES, help="P1 to P4")
    parser.add_argument("--email", dest="customer_email", metavar="ADDR")
    parser.add_argument("--contacts", type=count, metavar="N", help="times the customer wrote")
    parser.add_argument("--disputed-amount", metavar="EUR", help="e.g. 5000.50")
    parser.add_argument("--csr", metavar="N", help="the customer's CSR value")
    parser.add_argument("--usdt-amount", metavar="N")
    many = "*" if update else "+"
    parser.add_argument(
        "--flag",
        dest="flags",
        nargs=many,
        action="extend",
        type=word,
        choices=FLAGS,
        metavar="FLAG",
        help="repeatable: " + ", ".join(FLAGS),
    )
    if update:
        parser.add_argument("--crypto", action=argparse.BooleanOptionalAction)
    else:
        parser.add_argument("--crypto", action="store_true", help="a crypto case")
    given = parser.add_mutually_exclusive_group()
    given.add_argument("--context-file", type=context_file, metavar="FILE.json")
    given.add_argument(
        "--context", nargs="+", action="extend", type=context_pair, metavar="KEY=VALUE",
        help=CONTEXT_HELP,
    )  # fmt: skip
    for name, example in (("category", "Withdrawals"), ("component", "Ethereum")):
        parser.add_argument(
            f"--{name}",
            metavar="TEXT",
            help=f"what the case is about, for grouping reports (e.g. {example}); one line"
            + ("; '' clears it" if update else ""),
        )
    parser.add_argument(
        "--checklist",
        nargs=many,
        action="extend",
        type=word,
        choices=CHECKLIST,
        metavar="ITEM",
        help="ticked items: " + ", ".join(CHECKLIST),
    )


def _add_reading(actions: _Actions) -> None:
    listing = actions.add(
        "list",
        "the queue: cases with their response clocks, the longest-waiting first",
    )
    listing.add_argument(
        "--status", action="append", type=word, choices=STATUSES, default=[], help="repeatable"
    )
    listing.add_argument(
        "--incident",
        type=incident_id,
        metavar="INCIDENT",
        help="instead: the cases linked to this incident (42 or INC-42), resolved ones too, "
        "and how many distinct customers they are of",
    )
    listing.add_argument(
        "--level",
        action="append",
        type=word,
        choices=LEVELS,
        default=[],
        metavar="LEVEL",
        help="a level's queue (repeatable): " + ", ".join(LEVELS),
    )
    actions.on_case(
        "show",
        "one case: facts, clock, routing, what escalating still needs, steps, timeline",
    )


def _add_moves(actions: _Actions) -> None:
    note = actions.on_case("note", "record progress on a case (or an answer to the customer)")
    note.add_argument("text")
    note.add_argument(
        "--to-customer", action="store_true", help="TEXT is an answer the customer was sent"
    )

    escalate = actions.on_case(
        "escalate",
        "escalate a case to LEVEL",
        description="Escalate the case. Refused, naming every missing context field, unless "
        "a manager overrides (--override). The CEO is reached only from the CIO: an earlier "
        "request for the CEO goes to the CIO, recommending the CEO.",
    )
    escalate.add_argument("level", type=word, choices=LEVELS, metavar="LEVEL", help=_levels())
    escalate.add_argument("reason", help="why escalating")
    escalate.add_argument(
        "--cannot-wait",
        metavar="NOTE",
        help="it cannot wait for business hours (the emergency protocol), and why",
    )
    escalate.add_argument(
        "--override", metavar="REASON", help="a manager escalating with context missing, and why"
    )

    actions.on_case("confirm", "confirm that your level has the case (receipt)")

    down = actions.on_case("deescalate", "send a case back down to LEVEL, with a reason")
    down.add_argument("level", type=word, choices=LEVELS, metavar="LEVEL", help=_levels())
    down.add_argument(
        "why", type=word, choices=DEESCALATIONS, metavar="WHY", help=", ".join(DEESCALATIONS)
    )
    down.add_argument("note", help="what the receiving level and the customer are told")


def _add_closing(actions: _Actions) -> None:
    approve = actions.on_case(
        "approve",
        "record the CIO's or the CEO's decision (by that named approver)",
    )
    approve.add_argument("level", type=word, choices=APPROVERS, help="whose decision")
    approve.add_argument("note", help="the decision, for the timeline")
    approve.add_argument("--decline", action="store_true", help="a refusal, not an approval")

    resolve = actions.on_case(
        "resolve", "resolve a case (refused while a required decision is missing)"
    )
    resolve.add_argument("resolution", help="what was done")


def _levels() -> str:
    return ", ".join(LEVELS)


def _add_links(actions: _Actions) -> None:
    link = actions.on_case(
        "link",
        "link a case to an open incident: its customer hears the incident's updates",
        description="Link the case to an open incident: its customer gets the incident's "
        "latest customer update at once, then each later one and its resolution, each once. "
        "A case linked elsewhere moves to this incident.",
    )
    link.add_argument("incident", type=incident_id, metavar="INCIDENT", help="42 or INC-42")
    actions.on_case(
        "unlink",
        "unlink a case from its incident: nothing more of it reaches the customer",
    )
