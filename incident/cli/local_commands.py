"""The commands that run the service itself, in this process: serve, playbooks, comms,
simulate, outbox --local, db. (`incident.cli.commands` imports this only for them: a
client command does not pay for importing the service.)"""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import logging
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.exc import DBAPIError

from incident import bootstrap
from incident.adapters.files.playbook_files import load_playbooks
from incident.adapters.files.templates import (
    DOCUMENT_SUFFIX,
    JinjaRenderer,
    TemplateProblem,
    sample_context,
    sample_document_context,
)
from incident.cli import api_output
from incident.config import Settings, load_settings, unknown_variables
from incident.domain.errors import DomainError, InvalidPlaybook
from incident.domain.incident import Status


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
    directory = directory or settings.playbooks_dir
    playbooks = load_playbooks(
        directory, comms_dir=settings.comms_dir, runbooks_dir=settings.runbooks_dir
    )
    for severity, playbook in sorted(playbooks.playbooks.items()):
        print(
            f"ok  {playbook.source}: {severity.value} {playbook.name}, {len(playbook.steps)} steps"
        )
    return 0


def _check_comms(settings: Settings) -> int:
    renderer = JinjaRenderer(settings.comms_dir)
    names = renderer.names()
    if not names:
        raise UsageError(f"no templates found in {settings.comms_dir}")
    documents = JinjaRenderer(settings.comms_dir, suffix=DOCUMENT_SUFFIX)
    problems = [
        f"{error} ({'sparse' if sparse else 'full'} data)"
        for name in documents.names()
        for sparse in (False, True)
        if (error := _render_problem(documents, name, sample_document_context(sparse=sparse)))
    ]
    for name in names:
        for status in Status:
            for sparse in (False, True):
                try:
                    text = renderer.render(name, sample_context(status=status, sparse=sparse))
                except TemplateProblem as error:
                    problems.append(f"{error} (status {status.value})")
                    continue
                if "None" in text:
                    problems.append(
                        f"{name}: prints 'None' (status {status.value}, "
                        f"{'sparse' if sparse else 'full'} data); guard it with if"
                    )
    if problems:
        print("incident: templates that do not render:\n" + "\n".join(problems), file=sys.stderr)
        return 2
    print(
        f"ok  {len(names)} templates render for every status, and {len(documents.names())} "
        "documents, with full and sparse data"
    )
    return 0


def _render_problem(renderer: JinjaRenderer, name: str, context: dict[str, object]) -> str:
    """What is wrong when `name` renders `context`, or "" when it renders cleanly."""
    try:
        text = renderer.render(name, context)
    except TemplateProblem as error:
        return str(error)
    return f"{name}: prints 'None'; guard it with if" if "None" in text else ""


async def _simulate(settings: Settings, args: argparse.Namespace) -> int:
    from incident.cli.simulate import Script, format_table, simulate

    update_every = args.update_every if args.update_every else None
    script = Script(
        severity=args.severity,
        until=args.until,
        ack_after=args.ack_after,
        update_every=update_every,
        resolve_after=args.resolve_after,
        rca_after=args.rca_after,
        reopen_after=args.reopen_after,
        cancel_after=args.cancel_after,
        category=args.category,
    )
    logging.getLogger("incident").setLevel(logging.ERROR)
    events = await simulate(script, settings)
    if args.json:
        print(json.dumps([e.as_json() for e in events if e.kind == "step"], indent=2))
    else:
        print(format_table(events))
    return 0


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
