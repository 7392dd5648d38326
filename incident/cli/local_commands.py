"""The commands that run the service itself, in this process: serve, playbooks, comms,
simulate, outbox --local, db. (`incident.cli.commands` imports this only for them: a
client command does not pay for importing the service.)"""

from __future__ import annotations

import argparse
import asyncio
import errno
import itertools
import json
import logging
import os
import socket
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy.exc import DBAPIError

from incident import bootstrap
from incident.adapters.files.playbook_files import load_playbooks
from incident.adapters.files.support_files import SUPPORT_DIR, load_support, support_directory
from incident.adapters.files.templates import (
    DOCUMENT_SUFFIX,
    JinjaRenderer,
    TemplateProblem,
    sample_context,
    sample_document_context,
)
from incident.cli import api_output
from incident.config import PROJECT_ROOT, Settings, load_settings, unknown_variables
from incident.domain.case import Plan
from incident.domain.errors import DomainError, InvalidPlaybook, PlaybookProblem
from incident.domain.incident import Category, Severity, Status
from incident.services.case_messages import TEMPLATE_DIR as CASE_TEMPLATE_DIR

if TYPE_CHECKING:
    from incident.cli.simulate_case import CaseScript


class UsageError(Exception):
    """A mistake in the command line; printed without a traceback."""


def run_locally(args: argparse.Namespace) -> int:
    """Run a command in this process on the settings from the environment; its mistakes
    and an unreachable database become a message and exit code 2."""
    try:
        settings = load_settings()
        command = _LOCAL_COMMANDS.get(args.command)
        if command is not None:
            return command(settings, args)
    except InvalidPlaybook as error:
        print(f"incident: invalid playbooks:\n{error}", file=sys.stderr)
        return 2
    except (DomainError, UsageError, TemplateProblem) as error:
        print(f"incident: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        raise  # the reader of our output left: see main
    except (OSError, DBAPIError) as error:
        # The database (or a port) is not there: say which and why, no traceback.
        reason = getattr(error, "orig", None) or error
        print(
            f"incident: cannot use the database {_safe_url(settings)}: "
            f"{type(reason).__name__}: {reason}. Check INCIDENT_DATABASE_URL and that the "
            "server is running.",
            file=sys.stderr,
        )
        return 2
    return 0  # pragma: no cover - argparse requires a command


def _serve_command(settings: Settings, args: argparse.Namespace) -> int:
    if args.migrate:
        asyncio.run(_db_upgrade(settings))
    return _serve(settings, args.host, args.port)


def _playbooks_command(settings: Settings, args: argparse.Namespace) -> int:
    return _check_playbooks(settings, args.directory)


def _comms_command(settings: Settings, args: argparse.Namespace) -> int:
    return _check_comms(settings)


def _simulate_command(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_simulate(settings, args))


def _outbox_command(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_outbox(settings, args))


def _db_command(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_db_upgrade(settings))


# The commands run in this process, by their word on the command line.
_LOCAL_COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "serve": _serve_command,
    "playbooks": _playbooks_command,
    "comms": _comms_command,
    "simulate": _simulate_command,
    "outbox": _outbox_command,
    "db": _db_command,
}


def _check_playbooks(settings: Settings, directory: Path | None) -> int:
    """The incident playbooks and the support playbook (`support/`): every problem of
    both in one InvalidPlaybook, or an ok line for each."""
    directory = directory or settings.playbooks_dir
    problems: list[PlaybookProblem] = []
    playbooks = _checked(
        lambda: load_playbooks(
            directory, comms_dir=settings.comms_dir, runbooks_dir=settings.runbooks_dir
        ),
        problems,
    )
    support_dir, shipped = support_directory(directory, shipped=PROJECT_ROOT / "playbooks")
    support = _checked(lambda: load_support(support_dir, comms_dir=settings.comms_dir), problems)
    if playbooks is None or support is None:
        raise InvalidPlaybook(problems)
    for severity, playbook in sorted(playbooks.playbooks.items()):
        print(
            f"ok  {playbook.source}: {severity.value} {playbook.name}, {len(playbook.steps)} steps"
        )
    calendars = {rung.calendar.name for rung in support.ladder.rungs.values()}
    print(
        f"ok  {support_dir}: support, {len(support.ladder.rungs)} levels, "
        f"{len(support.steps)} steps, {len(calendars)} calendars"
        + (f" (shipped: {directory} has no {SUPPORT_DIR}/)" if shipped else "")
    )
    return 0


T = TypeVar("T")


def _checked(load: Callable[[], T], problems: list[PlaybookProblem]) -> T | None:
    """`load()`, or None with its problems added to `problems`."""
    try:
        return load()
    except InvalidPlaybook as error:
        problems.extend(error.problems)
        return None


def _check_comms(settings: Settings) -> int:
    renderer = JinjaRenderer(settings.comms_dir)
    names = renderer.names()
    if not names:
        raise UsageError(f"no templates found in {settings.comms_dir}")
    documents = JinjaRenderer(settings.comms_dir, suffix=DOCUMENT_SUFFIX)
    case_names = JinjaRenderer(settings.comms_dir / CASE_TEMPLATE_DIR).names()
    problems = [
        *_document_problems(documents),
        *_message_problems(renderer, names),
        *_case_problems(settings, renderer, case_names),
    ]
    if problems:
        print("incident: templates that do not render:\n" + "\n".join(problems), file=sys.stderr)
        return 2
    print(
        f"ok  {len(names)} templates render for every status, {len(documents.names())} "
        f"documents and {len(case_names)} case templates, with full and sparse data"
    )
    return 0


def _document_problems(documents: JinjaRenderer) -> list[str]:
    return [
        f"{error} ({_data(sparse)})"
        for name in documents.names()
        for sparse in (False, True)
        if (error := _render_problem(documents, name, sample_document_context(sparse=sparse)))
    ]


def _message_problems(renderer: JinjaRenderer, names: list[str]) -> list[str]:
    return [
        f"{error} (status {status.value}, {_data(sparse)})"
        for name in names
        for status in Status
        for sparse in (False, True)
        if (error := _render_problem(renderer, name, sample_context(status=status, sparse=sparse)))
    ]


def _case_problems(settings: Settings, renderer: JinjaRenderer, names: list[str]) -> list[str]:
    """Each case template rendered for every step of the support playbook that names it
    (one that none names: as the escalation notice would), with the sample case."""
    from incident.adapters.files.case_samples import sample_case_context, template_steps

    directory, _ = support_directory(settings.playbooks_dir, shipped=PROJECT_ROOT / "playbooks")
    steps_of = template_steps(load_support(directory))
    problems: list[str] = []
    for name in names:
        naming = steps_of.get(name) or ["escalation-notice"]
        for step_id, sparse in itertools.product(naming, (False, True)):
            context = sample_case_context(
                sparse=sparse, step_id=step_id, playbooks_dir=settings.playbooks_dir
            )
            error = _render_problem(renderer, f"{CASE_TEMPLATE_DIR}/{name}", context)
            if error:
                problems.append(f"{error} (step {step_id!r}, {_data(sparse)})")
    return problems


def _data(sparse: bool) -> str:
    return "sparse data" if sparse else "full data"


def _render_problem(renderer: JinjaRenderer, name: str, context: dict[str, object]) -> str:
    """What is wrong when `name` renders `context`, or "" when it renders cleanly."""
    try:
        text = renderer.render(name, context)
    except TemplateProblem as error:
        return str(error)
    return f"{name}: prints 'None'; guard it with if" if "None" in text else ""


# The options of one kind of simulation that the other does not take.
_INCIDENT_ONLY = (
    "severity",
    "category",
    "ack_after",
    "update_every",
    "rca_after",
    "reopen_after",
    "cancel_after",
)
_CASE_ONLY = (
    "plan",
    "priority",
    "opened",
    "flag",
    "crypto",
    "respond_after",
    "escalate_after",
    "escalate_to",
    "confirm_after",
)


def _given(args: argparse.Namespace, names: tuple[str, ...]) -> list[str]:
    return [f"--{n.replace('_', '-')}" for n in names if getattr(args, n) not in (None, False)]


async def _simulate(settings: Settings, args: argparse.Namespace) -> int:
    if args.case:
        return await _simulate_case(settings, args)
    from incident.cli.simulate import Script, format_table, simulate

    if wrong := _given(args, _CASE_ONLY):
        raise UsageError(f"{', '.join(wrong)}: only for a support case (--case)")
    if args.severity is None:
        raise UsageError("give --severity (or --case --plan PLAN to simulate a support case)")
    update_every = args.update_every if args.update_every else None
    script = Script(
        severity=args.severity,
        until=args.until if args.until is not None else timedelta(hours=60),
        ack_after=args.ack_after,
        update_every=update_every,
        resolve_after=args.resolve_after,
        rca_after=args.rca_after,
        reopen_after=args.reopen_after,
        cancel_after=args.cancel_after,
        category=args.category or Category.GENERAL,
    )
    logging.getLogger("incident").setLevel(logging.ERROR)
    events = await simulate(script, settings)
    if args.json:
        print(json.dumps([e.as_json() for e in events if e.kind == "step"], indent=2))
    else:
        print(format_table(events))
    return 0


async def _simulate_case(settings: Settings, args: argparse.Namespace) -> int:
    from incident.cli.simulate_case import format_case, simulate_case

    script = _case_script(args)
    logging.getLogger("incident").setLevel(logging.ERROR)
    simulation = await simulate_case(script, settings)
    print(json.dumps(simulation.as_json(), indent=2) if args.json else format_case(simulation))
    return 0


def _case_script(args: argparse.Namespace) -> CaseScript:
    from incident.cli.simulate_case import DEFAULT_OPENED, DEFAULT_UNTIL, CaseScript

    if wrong := _given(args, _INCIDENT_ONLY):
        raise UsageError(f"{', '.join(wrong)}: only for an incident (without --case)")
    if args.plan is None:
        raise UsageError(f"--case needs --plan ({', '.join(p.value for p in Plan)})")
    if (args.escalate_after is None) != (args.escalate_to is None):
        raise UsageError("give --escalate-after and --escalate-to together")
    return CaseScript(
        plan=Plan(args.plan),
        priority=args.priority or Severity.P3,
        opened=args.opened or DEFAULT_OPENED,
        until=args.until if args.until is not None else DEFAULT_UNTIL,
        flags=frozenset(args.flag or ()),
        crypto=args.crypto,
        respond_after=args.respond_after,
        escalate_after=args.escalate_after,
        escalate_to=args.escalate_to,
        confirm_after=args.confirm_after,
        resolve_after=args.resolve_after,
    )


async def _db_upgrade(settings: Settings) -> int:
    from incident.adapters.database.databases import open_database
    from incident.adapters.database.migrate import head

    database = open_database(settings.database_url)
    try:
        done = await database.migrate()
    finally:
        await database.dispose()
    for line in done:
        print(f"incident: {line}")
    print(f"ok  {_safe_url(settings)} is at schema revision {head()}")
    return 0


async def _outbox(settings: Settings, args: argparse.Namespace) -> int:
    """`incident outbox --local`: the database read directly, shown as the API shows it."""
    from incident.services.views import outbox_messages
    from incident.web.schemas import OutboxList, OutboxMessageOut

    container = await bootstrap.build(settings)
    try:
        messages, more = await outbox_messages(
            container.runtime, container.outbox, incident_id=args.incident, limit=args.limit or 100
        )
    finally:
        await container.close()
    result = OutboxList(messages=[OutboxMessageOut.of(m) for m in messages], more=more)
    as_json = result.model_dump(mode="json")
    print(json.dumps(as_json, indent=2) if args.json else api_output.outbox(as_json))
    return 0


def _serve(settings: Settings, host: str, port: int) -> int:
    from aiohttp import web

    from incident.logs import configure_logging
    from incident.redaction import Redactor
    from incident.web.app import create_app, freeze_heap_after_start
    from incident.web.public.access_log import QuietPublicReads

    playbooks = bootstrap.check_playbooks(settings)  # refuse to start on an invalid one
    for warning in unknown_variables(os.environ):
        print(f"incident: warning: {warning}", file=sys.stderr, flush=True)
    _check_port(host, port)
    configure_logging(settings.log_format, redact=Redactor(settings.secrets()))
    print(f"incident: serving on http://{host}:{port} with {_safe_url(settings)}", flush=True)
    for line in integrations(settings):
        print(f"incident:   {line}", flush=True)
    app = create_app(settings, playbooks=playbooks)
    freeze_heap_after_start(app)
    web.run_app(
        app,
        host=host,
        port=port,
        print=None,
        # A crowd reading the status page would otherwise write a log line per read.
        access_log_class=QuietPublicReads,
    )
    return 0


class PortUnavailable(UsageError):
    """The address to listen on cannot be had."""


def _check_port(host: str, port: int) -> None:
    """Refuse at once, and say why, when the address cannot be listened on (in use, not
    ours, no such host): not as a database error, not with a traceback."""

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise PortUnavailable(
            f"cannot listen on {host}:{port}: {error.strerror or error}"
        ) from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            reason = error.strerror or str(error)
            hint = (
                "; another process listens there: stop it, or choose --port"
                if (error.errno == errno.EADDRINUSE)
                else ""
            )
            raise PortUnavailable(f"cannot listen on {host}:{port}: {reason}{hint}") from None


def _safe_url(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.database_url).render_as_string(hide_password=True)


def integrations(settings: Settings) -> list[str]:
    """What is live, said plainly, so an operator sees at start what will really happen."""
    roles = sorted({t.role.value for t in settings.api_tokens})
    pager = (
        f"pager: PagerDuty ({settings.pagerduty_events_url}; on-call lookup "
        + ("on" if settings.pagerduty_api_token else "off: set INCIDENT_PAGERDUTY_API_TOKEN")
        + ")"
        if settings.pagerduty_routing_key
        else "pager: outbox (set INCIDENT_PAGERDUTY_ROUTING_KEY for PagerDuty)"
    )
    return [
        pager,
        (
            f"status page: Statuspage ({settings.statuspage_api_url}, page "
            f"{settings.statuspage_page_id}, {len(settings.statuspage_components)} component(s))"
            if settings.statuspage_api_key
            else "status page: outbox (set INCIDENT_STATUSPAGE_API_KEY and _PAGE_ID for "
            "Atlassian Statuspage)"
        ),
        (
            f"chat: Slack war rooms and chat: notifications ({settings.slack_api_url})"
            if settings.slack_bot_token
            else "chat: outbox (set INCIDENT_SLACK_BOT_TOKEN for Slack war rooms)"
        ),
        (
            f"e-mail: audiences' email: destinations through SMTP ({settings.smtp.address}, "
            f"{settings.smtp.security}, from {settings.smtp_from})"
            if settings.smtp is not None
            else "e-mail: outbox (set INCIDENT_SMTP_URL and INCIDENT_SMTP_FROM to send it)"
        ),
        "customer messages: outbox (kept in the database; see `incident outbox`)",
        (
            "messages kept up to date (verification cases' board): Slack, one message per "
            "case edited in place"
            if settings.slack_bot_token
            else "messages kept up to date (verification cases' board): outbox, one record "
            "per message (set INCIDENT_SLACK_BOT_TOKEN for Slack)"
        ),
        (
            "account instructions: outbox tasks, and a signed webhook to "
            f"{bootstrap.accounts_url(settings)}"
            if settings.account_webhook_url
            else "account instructions: outbox tasks only (set INCIDENT_ACCOUNT_WEBHOOK_URL "
            "and INCIDENT_ACCOUNT_WEBHOOK_SECRET for an account system's webhook)"
        ),
        f"REST API and alert webhooks: {len(settings.api_tokens)} token(s)"
        + (f" ({', '.join(roles)})" if roles else "; set INCIDENT_API_TOKENS to allow calls"),
        "Slack slash commands: "
        + (
            "signature checked with INCIDENT_SLACK_SIGNING_SECRET"
            if settings.slack_signing_secret
            else "off (set INCIDENT_SLACK_SIGNING_SECRET)"
        ),
        f"alert routing: {len(settings.alert_routing.routes)} rule(s), default "
        f"{settings.alert_routing.default.severity.value}, alerts may resolve "
        + (", ".join(sorted(s.value for s in settings.alert_routing.auto_resolve)) or "nothing"),
    ]
