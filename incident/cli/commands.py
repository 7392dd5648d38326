"""`incident ...`: the command line. User mistakes exit non-zero with a readable message."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from incident.cli import api_commands, api_output
from incident.cli.client import ClientError
from incident.domain.case import Plan
from incident.domain.case_routing import Flag, Level
from incident.domain.errors import DomainError
from incident.domain.incident import Category, Severity
from incident.domain.playbook import parse_duration


def _duration(text: str) -> object:
    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port; give a number from 0 to 65535")
    return int(text)


def _severity(text: str) -> Severity:
    try:
        return Severity.parse(text)
    except DomainError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _category(text: str) -> Category:
    try:
        return Category.parse(text)
    except DomainError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _instant(text: str) -> datetime:
    example = "e.g. 2026-03-06T17:50+01:00"
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time, {example}") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no zone: add one, {example}")
    return value


def _level(text: str) -> Level:
    try:
        return Level(text.strip().lower())
    except ValueError:
        levels = ", ".join(level.value for level in Level)
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a level; the levels are {levels}"
        ) from None


def _flag(text: str) -> Flag:
    try:
        return Flag(text.strip().lower())
    except ValueError:
        flags = ", ".join(flag.value for flag in Flag)
        raise argparse.ArgumentTypeError(f"{text!r} is not a flag; the flags are {flags}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="incident", description="Incident response orchestration: timed playbooks."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the service (HTTP and scheduler)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_port, default=8080, help="0-65535 (0: any free port)")
    serve.add_argument(
        "--migrate",
        action="store_true",
        help="upgrade the database schema before serving (SQLite always does; on PostgreSQL "
        "a replica refuses to start on an old schema unless this or `incident db upgrade`)",
    )

    playbooks = commands.add_parser("playbooks", help="work with playbooks")
    playbook_commands = playbooks.add_subparsers(dest="playbooks_command", required=True)
    check = playbook_commands.add_parser("check", help="validate every playbook file")
    check.add_argument(
        "directory",
        nargs="?",
        type=Path,
        help="playbooks directory (default: INCIDENT_PLAYBOOKS_DIR or playbooks/)",
    )

    comms = commands.add_parser("comms", help="work with message templates")
    comms_commands = comms.add_subparsers(dest="comms_command", required=True)
    comms_commands.add_parser("check", help="render every template with sample data")

    _add_simulate(commands)

    database = commands.add_parser("db", help="the database schema")
    database_commands = database.add_subparsers(dest="db_command", required=True)
    database_commands.add_parser(
        "upgrade",
        help="migrate the database to the newest schema (serve does it at start on SQLite; "
        "on PostgreSQL with --migrate)",
    )

    api_commands.add_parsers(commands)  # `outbox` too: through the API, or --local
    return parser


def _add_simulate(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    simulate = commands.add_parser(
        "simulate",
        help="show what a playbook, or a support case's clocks, will do, in virtual time",
        description="Runs the real engine on a throw-away database under a virtual clock. "
        "Every offset counts from the declaration (with --case: the opening).",
    )
    simulate.add_argument(
        "--severity", type=_severity, help="the incident's (required without --case)"
    )
    simulate.add_argument(
        "--category",
        type=_category,
        default=None,
        help="security, legal, regulatory, media, fraud, compliance or general (default)",
    )
    simulate.add_argument("--ack-after", type=_duration, default=None)
    simulate.add_argument(
        "--update-every",
        type=_duration,
        default=None,
        help="the commander posts a customer update this often (0: never)",
    )
    simulate.add_argument(
        "--resolve-after", type=_duration, default=None, help="resolve it (incident or case)"
    )
    simulate.add_argument("--rca-after", type=_duration, default=None)
    simulate.add_argument(
        "--reopen-after", type=_duration, default=None, help="reopen it (once resolved)"
    )
    simulate.add_argument(
        "--cancel-after", type=_duration, default=None, help="cancel it as a false alarm"
    )
    simulate.add_argument(
        "--until", type=_duration, default=None, help="how long to run (default 60h; a case 5d)"
    )
    simulate.add_argument("--json", action="store_true", help="print JSON")
    case = simulate.add_argument_group(
        "support case (--case)",
        "A support case's clocks in its levels' business hours: each line shows its offset "
        "and the wall clock in the calendar's zone.",
    )
    case.add_argument("--case", action="store_true", help="simulate a support case")
    case.add_argument("--plan", choices=[p.value for p in Plan], help="required with --case")
    case.add_argument("--priority", type=_severity, default=None, help="P1-P4 (default P3)")
    case.add_argument(
        "--opened",
        type=_instant,
        default=None,
        metavar="TIME",
        help="ISO 8601 with a zone (default Friday 2026-03-06 17:50 Europe/Berlin)",
    )
    case.add_argument(
        "--flag",
        type=_flag,
        nargs="+",
        action="extend",
        default=None,
        metavar="FLAG",
        help=f"what the agent marked ({', '.join(f.value for f in Flag)})",
    )
    case.add_argument("--crypto", action="store_true", help="a crypto case")
    case.add_argument(
        "--respond-after", type=_duration, default=None, help="the first response (a progress note)"
    )
    case.add_argument(
        "--escalate-after",
        type=_duration,
        default=None,
        help="escalate, with the context and checklist complete (give --escalate-to)",
    )
    case.add_argument(
        "--escalate-to",
        type=_level,
        default=None,
        metavar="LEVEL",
        help=f"the level to escalate to ({', '.join(level.value for level in Level)})",
    )
    case.add_argument(
        "--confirm-after", type=_duration, default=None, help="the receiving level confirms"
    )


def main(argv: Sequence[str] | None = None) -> int:
    try:
        code = _main(argv)
        sys.stdout.flush()  # here, where a closed pipe can still be caught
    except BrokenPipeError:
        # `incident ... | head`: the reader has what it wanted. Whatever is still buffered
        # goes nowhere, so that the flush at exit does not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return code


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in api_commands.COMMANDS and not getattr(args, "local", False):
        return _run_as_client(args)
    # Imported here: the service itself (the database, the engine, the web app) is what a
    # local command runs, and importing it costs a second that a client command, typed
    # at 3 a.m. against a running service, should not pay.
    from incident.cli.local_commands import run_locally

    return run_locally(args)


def _run_as_client(args: argparse.Namespace) -> int:
    """A client of a running service: the server's own settings play no part."""
    try:
        return api_commands.run(args)
    except ClientError as error:
        print(f"incident: {api_output.safe_message(error)}", file=sys.stderr)
        return 1
