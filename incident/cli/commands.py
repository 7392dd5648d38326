"""`incident ...`: the command line. User mistakes exit non-zero with a readable message."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from incident.cli import api_commands, api_output
from incident.cli.client import ClientError
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

    simulate = commands.add_parser(
        "simulate",
        help="show what a playbook will do, in virtual time",
        description="Runs the real engine on a throw-away database under a virtual clock. "
        "Every offset counts from the declaration.",
    )
    simulate.add_argument("--severity", type=_severity, required=True)
    simulate.add_argument(
        "--category",
        type=_category,
        default=Category.GENERAL,
        help="security, legal, regulatory, media, fraud, compliance or general",
    )
    simulate.add_argument("--ack-after", type=_duration, default=None)
    simulate.add_argument(
        "--update-every",
        type=_duration,
        default=None,
        help="the commander posts a customer update this often (0: never)",
    )
    simulate.add_argument("--resolve-after", type=_duration, default=None)
    simulate.add_argument("--rca-after", type=_duration, default=None)
    simulate.add_argument(
        "--reopen-after", type=_duration, default=None, help="reopen it (once resolved)"
    )
    simulate.add_argument(
        "--cancel-after", type=_duration, default=None, help="cancel it as a false alarm"
    )
    simulate.add_argument("--until", type=_duration, default=parse_duration("60h"))
    simulate.add_argument("--json", action="store_true", help="print a JSON array")

    database = commands.add_parser("db", help="the database schema")
    database_commands = database.add_subparsers(dest="db_command", required=True)
    database_commands.add_parser(
        "upgrade",
        help="migrate the database to the newest schema (serve does it at start on SQLite; "
        "on PostgreSQL with --migrate)",
    )

    api_commands.add_parsers(commands)  # `outbox` too: through the API, or --local
    return parser


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
