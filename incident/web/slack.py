"""`POST /slack/commands`: the `/incident` slash command, signed by Slack, answered in 3 s.

Every request is verified (Slack's v0 signature over the raw body, a 5-minute window, by
slack_sdk's verifier reading our clock) before its body is parsed; without a signing secret
the endpoint is off (503). The command then runs with a budget: if it finishes in time the
reply carries its result; if not, the reply says it is under way, and the result goes to the
request's `response_url` once the command has finished.

Replies are Slack messages: changes to an incident go to the whole channel (`in_channel`);
help, usage, lists and refusals only to the person who typed the command (`ephemeral`).
`/incident case ...` (support cases) passes the same checks and is run by `slack_cases`;
`/incident candidate ...` (incident candidates) by `slack_candidates`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import assert_never
from urllib.parse import parse_qs

import httpx
from aiohttp import web
from slack_sdk import signature

from incident.bootstrap import Container
from incident.clock import Clock
from incident.domain.access import (
    AccessRole,
    Principal,
)
from incident.domain.candidate_chat_commands import CandidateCommand, OnCandidate
from incident.domain.case_chat_commands import CaseCommand, OnCase
from incident.domain.chat_commands import (
    Acknowledge,
    AddFollowUp,
    Approve,
    AssignCommander,
    Cancel,
    ChangeSeverity,
    Command,
    CompleteFollowUp,
    CompleteRca,
    CustomerUpdate,
    Declare,
    DescribeImpact,
    Help,
    IncidentCommand,
    ListFollowUps,
    Merge,
    Note,
    Reopen,
    Resolve,
    Retitle,
    SetCategory,
    SetService,
    SetStatus,
    ShowNext,
    ShowTimeline,
    Usage,
    help_text,
    parse,
    usage_line,
)
from incident.domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    IllegalTransition,
    InvalidValue,
    NotFound,
)
from incident.domain.follow_ups import FollowUp
from incident.domain.incident import OPEN_STATUSES, Incident, Role, Status
from incident.domain.records import TimelineEntry
from incident.services import incidents as uc
from incident.services import replays
from incident.services.incidents import IncidentView, Runtime
from incident.web import slack_candidates, slack_cases
from incident.web.background import run_in_background
from incident.web.context import BACKGROUND, CONTAINER, METRICS
from incident.web.errors import ApiError, guarded, json_error
from incident.web.slack_reply import OUR_MENTION, Reply, escaped
from incident.web.slack_reply import when as _when

log = logging.getLogger("incident.web.slack")

PATH = "/slack/commands"
# Slack gives up after 3 s, network included: answer within 2 s and finish the rest later.
REPLY_BUDGET = 2.0
MAX_SKEW = timedelta(minutes=5)
# How long the result of slow work may take to reach Slack's response_url.
RESPONSE_URL_TIMEOUT = 10.0
# Slack shows about 4,000 characters of a message; lists are cut well before that.
LIST_LIMIT = 20

SLACK_HTTP = web.AppKey("slack_http", httpx.AsyncClient)

_TIMESTAMP = re.compile(r"\d{1,12}")
_USER_ID = re.compile(r"[UW][A-Z0-9]{1,30}")
# A Slack user kept as a follow-up's owner (`@U123`: its reminders reach them directly).
_SLACK_HANDLE = re.compile(r"@([UW][A-Z0-9]{1,30})")
# The API's field names, as a person typing the command knows them.
_FIELD_WORDS = {"due_at": "due", "text": "note", "into": "the incident to merge into"}
_TRIGGER_ID = re.compile(r"[\w.\-]{1,150}")


def add_routes(app: web.Application) -> None:
    app.cleanup_ctx.append(_http_client)
    app.router.add_post(PATH, guarded(slash_command))


async def _http_client(app: web.Application) -> AsyncIterator[None]:
    """The client that takes late results to Slack, for the application's lifetime."""
    async with httpx.AsyncClient(timeout=RESPONSE_URL_TIMEOUT, follow_redirects=False) as client:
        app[SLACK_HTTP] = client
        yield
        # Late results still on their way need the client: let them finish first (briefly).
        background: set[asyncio.Task[None]] = app[BACKGROUND]
        if pending := set(background):
            await asyncio.wait(pending, timeout=RESPONSE_URL_TIMEOUT)


# --- the request ---------------------------------------------------------------------------


class _SlackClock(signature.Clock):
    """slack_sdk's verifier reads the time through this: our clock, not time.time()."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def now(self) -> float:
        return self._clock.now().timestamp()


def signature_problem(
    secret: str, clock: Clock, body: bytes, headers: Mapping[str, str]
) -> str | None:
    """Why the request is not Slack's, or None when its signature is good and recent."""
    timestamp = headers.get("X-Slack-Request-Timestamp")
    presented = headers.get("X-Slack-Signature")
    if not timestamp or not presented:
        return (
            "the request is not signed: Slack's X-Slack-Request-Timestamp and "
            "X-Slack-Signature headers are missing"
        )
    if not _TIMESTAMP.fullmatch(timestamp):
        return "X-Slack-Request-Timestamp must be Unix time in whole seconds"
    verifier = signature.SignatureVerifier(secret, clock=_SlackClock(clock))
    try:
        valid = verifier.is_valid(body=body, timestamp=timestamp, signature=presented)
    except UnicodeDecodeError:  # Slack's bodies are UTF-8; this one cannot be Slack's
        valid = False
    if valid:
        return None
    skew = clock.now().timestamp() - int(timestamp)
    if abs(skew) > MAX_SKEW.total_seconds():
        return (
            f"the request was signed {abs(int(skew))} s {'ago' if skew > 0 else 'ahead'}, "
            "more than the 5 minutes allowed: a replay, or a clock that is off (check NTP "
            "on this server)"
        )
    return (
        "the signature does not match: INCIDENT_SLACK_SIGNING_SECRET must be the Signing "
        "Secret from the Slack app's Basic Information page"
    )


@dataclass(frozen=True)
class SlashRequest:
    """The fields of Slack's slash-command form that we use."""

    command: str
    text: str
    user_id: str
    channel_id: str
    channel_name: str
    response_url: str | None
    trigger_id: str | None  # unique per invocation: a replayed request carries the same one

    @property
    def rooms(self) -> list[str]:
        return [room for room in (self.channel_id, self.channel_name) if room]


def read_form(content_type: str, body: bytes) -> SlashRequest:
    """The slash command's form fields (ApiError 400 when the body is not one)."""
    if content_type != "application/x-www-form-urlencoded":
        raise ApiError(
            400,
            "bad request",
            "a slash command is sent as application/x-www-form-urlencoded, not "
            f"{content_type}: check the Request URL is this service's /slack/commands",
        )
    try:
        fields = parse_qs(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=True,
            errors="strict",
            max_num_fields=64,
        )
    except ValueError as error:  # includes UnicodeDecodeError
        raise ApiError(400, "bad request", f"the form body cannot be read: {error}") from None

    def one(name: str, *, required: bool = False) -> str:
        values = fields.get(name, [])
        if len(values) > 1:
            raise ApiError(400, "bad request", f"form field {name!r} appears more than once")
        if required and not values:
            raise ApiError(
                400, "bad request", f"form field {name!r} is missing; Slack always sends it"
            )
        return values[0] if values else ""

    user_id = one("user_id", required=True)
    if not _USER_ID.fullmatch(user_id):
        raise ApiError(
            400, "bad request", "form field 'user_id' must be a Slack user id like U0123ABCD"
        )
    response_url = one("response_url") or None
    if response_url is not None and not response_url.startswith(("https://", "http://")):
        raise ApiError(400, "bad request", "form field 'response_url' must be an http(s) URL")
    return SlashRequest(
        command=one("command", required=True) or "/incident",
        text=one("text"),
        user_id=user_id,
        channel_id=one("channel_id"),
        channel_name=one("channel_name"),
        response_url=response_url,
        trigger_id=trigger_id if _TRIGGER_ID.fullmatch(trigger_id := one("trigger_id")) else None,
    )


# --- the handler ---------------------------------------------------------------------------


async def slash_command(request: web.Request) -> web.Response:
    app = request.app
    container = app[CONTAINER]
    settings = container.settings
    if not settings.slack_signing_secret:
        _count(app, "none", "not_configured")
        return json_error(
            503,
            "slack commands are off",
            "set INCIDENT_SLACK_SIGNING_SECRET to the Signing Secret from the Slack app's "
            "Basic Information page and restart the service; unsigned requests are never "
            "accepted",
        )
    body = await request.read()
    problem = signature_problem(
        settings.slack_signing_secret, container.runtime.clock, body, request.headers
    )
    if problem is not None:
        _count(app, "none", "bad_signature")
        log.warning(
            "slack request refused", extra={"action": "slack_bad_signature", "problem": problem}
        )
        return json_error(401, "unauthorized", problem)
    try:
        slash = read_form(request.content_type, body)
    except ApiError:
        _count(app, "none", "bad_request")
        raise

    parsed = parse(slash.text)
    if isinstance(parsed, Usage):
        return _respond(
            app, slash, parsed.command or "unknown", Reply(parsed.text(slash.command), "usage")
        )
    # The same invocation sent again (the same signed bytes, while the signature is valid):
    # a replay, done once. A declaration answers with the incident it made (its own
    # idempotency key); every other command is refused here.
    invocation = slash.trigger_id or request.headers.get("X-Slack-Signature", "")
    if parsed.name != "declare" and not await replays.first_sighting(
        container.runtime, f"slack:{invocation}", valid_for=MAX_SKEW
    ):
        return _respond(
            app,
            slash,
            parsed.name,
            Reply(
                "This exact request was already received, and done once; it is not done "
                "again. Type the command anew to repeat it.",
                "replayed",
            ),
        )
    principal = Principal(
        name=f"<@{slash.user_id}>",
        role=settings.slack_roles.get(slash.user_id, AccessRole.RESPONDER),
    )
    work = asyncio.create_task(_command(container, principal, parsed, slash))
    done, _ = await asyncio.wait({work}, timeout=REPLY_BUDGET)
    if work in done:
        return _respond(app, slash, parsed.name, work.result())
    run_in_background(app, _reply_later(app, work, slash, parsed.name))
    log.info(
        "slack command continues after the reply",
        extra={"action": "slack_command_deferred", "command": parsed.name},
    )
    later = "the result will appear here" if slash.response_url else "check the timeline"
    return web.json_response(
        Reply(
            f"Working on `{slash.command} {parsed.name}`: it is taking a moment; {later} "
            "when it is done."
        ).message()
    )


async def _command(
    container: Container,
    principal: Principal,
    parsed: Command | CaseCommand | CandidateCommand,
    slash: SlashRequest,
) -> Reply:
    """The command run by its door: a support case's, an incident candidate's, an
    incident's."""
    if isinstance(parsed, OnCase):
        return await slack_cases.execute(container.support, principal, parsed, slash=slash.command)
    if isinstance(parsed, OnCandidate):
        return await slack_candidates.execute(
            container.patterns,
            principal,
            parsed,
            slash=slash.command,
            base_url=container.settings.base_url,
        )
    return await execute(
        container.runtime,
        principal,
        parsed,
        rooms=slash.rooms,
        slash=slash.command,
        request_key=f"slack:{slash.trigger_id}" if slash.trigger_id else None,
    )


def _respond(app: web.Application, slash: SlashRequest, name: str, reply: Reply) -> web.Response:
    _count(app, name, reply.result)
    _log(slash, name, reply)
    return web.json_response(reply.message())


async def _reply_later(
    app: web.Application, work: asyncio.Task[Reply], slash: SlashRequest, name: str
) -> None:
    reply = await work
    _count(app, name, reply.result)
    _log(slash, name, reply)
    if slash.response_url is None:
        log.warning(
            "slow slack command had no response_url: its result was not shown",
            extra={"action": "slack_reply_undeliverable", "command": name},
        )
        return
    try:
        response = await app[SLACK_HTTP].post(slash.response_url, json=reply.message())
    except httpx.HTTPError as error:
        log.warning(
            "could not deliver a slack command's result to its response_url",
            extra={"action": "slack_reply_failed", "command": name, "error": repr(error)},
        )
        return
    if response.status_code >= 300:
        log.warning(
            "slack refused a command's result at its response_url",
            extra={
                "action": "slack_reply_failed",
                "command": name,
                "status": response.status_code,
                "body": response.text[:200],
            },
        )


def _count(app: web.Application, command: str, result: str) -> None:
    app[METRICS].slack_commands.labels(command, result).inc()


def _log(slash: SlashRequest, name: str, reply: Reply) -> None:
    log.info(
        "slack command",
        extra={
            "action": "slack_command",
            "command": name,
            "result": reply.result,
            "incident_id": reply.incident_id,
            "user": slash.user_id,
            "channel": slash.channel_id,
        },
    )


# --- running a command ---------------------------------------------------------------------


class _NoIncidentHere(Exception):
    """The command names no incident and the channel is no incident's war room."""


async def execute(
    rt: Runtime,
    principal: Principal,
    command: Command,
    *,
    rooms: Sequence[str],
    slash: str,
    request_key: str | None = None,
) -> Reply:
    """Run one command as `principal`; every refusal becomes a reply, never an exception.

    `request_key` identifies the invocation: a declaration made twice with the same key (a
    replayed request) returns the first incident instead of declaring another.
    """
    try:
        return await _execute(
            rt, principal, command, rooms=rooms, slash=slash, request_key=request_key
        )
    except _NoIncidentHere as error:
        return Reply(str(error), "no_incident")
    except Forbidden as error:
        return Reply(f"Not allowed: {escaped(str(error))}.", "refused")
    except InvalidValue as error:
        field = _FIELD_WORDS.get(error.field, error.field.replace("_", " "))
        return Reply(
            f"{escaped(error.message)} ({field}).\nUsage: {usage_line(command.name, slash)}",
            "invalid",
        )
    except NotFound as error:
        return Reply(f"{escaped(str(error))}: check the incident id.", "not_found")
    except (IllegalTransition, Conflict) as error:
        return Reply(f"Not now: {escaped(str(error))}.", "not_allowed_now")
    except DomainError as error:
        return Reply(escaped(str(error)), "failed")
    except Exception:
        log.exception(
            "slack command failed",
            extra={"action": "slack_command_failed", "command": command.name},
        )
        return Reply(
            f"Something went wrong on our side running `{slash} {command.name}`. "
            f"`{slash} timeline` shows whether it took effect; the service logged the error "
            "(action slack_command_failed) for the operator.",
            "error",
        )


async def _execute(
    rt: Runtime,
    principal: Principal,
    command: Command,
    *,
    rooms: Sequence[str],
    slash: str,
    request_key: str | None,
) -> Reply:
    match command:
        case Help():
            return Reply(help_text(slash))
        case Declare(severity=severity, title=title):
            incident, created = await uc.declare_incident(
                rt,
                title=title,
                severity=severity,
                by=principal,
                commander=principal.name,
                idempotency_key=request_key,
            )
            assert incident.id is not None
            if not created:
                return Reply(
                    f"This request was already handled: it declared *{incident.ref}*.",
                    "duplicate",
                    incident_id=incident.id,
                )
            view = await uc.get_incident(rt, incident.id)
            return Reply(
                f"*{incident.ref}* declared by {principal.name}: *{severity.value}* "
                f"{escaped(title)}\nIncident commander: {principal.name}\n"
                f"The {severity.value} playbook has started. Next:\n"
                f"{_steps(view, rt.clock.now(), limit=5)}\n"
                f"`{slash} next {incident.ref}` shows every upcoming step; `{slash} help` "
                "lists the commands.",
                in_channel=True,
                incident_id=incident.id,
            )
        case _:
            incident_id = await _target(rt, command, rooms, slash)
            # What to type next about this incident: the war room's needs no id.
            here = "" if command.incident_id is None else f"INC-{incident_id} "
            reply = await _on_incident(rt, principal, command, incident_id, slash=slash, here=here)
            return replace(reply, incident_id=incident_id)


async def _target(rt: Runtime, command: IncidentCommand, rooms: Sequence[str], slash: str) -> int:
    if command.incident_id is not None:
        return command.incident_id
    incident = await uc.find_by_war_room(rt, rooms)
    if incident is not None and incident.id is not None:
        return incident.id
    open_now = await uc.list_incidents(rt, statuses=OPEN_STATUSES)
    listed = "".join(f"\n• *{i.ref}* {i.severity.value} {escaped(i.title)}" for i in open_now[:10])
    open_list = f"\nOpen incidents:{listed}" if listed else "\nNo incident is open."
    example = (
        f"`{slash} merge INC-12 INC-{command.into}` (INC-12 being the duplicate)"
        if isinstance(command, Merge)
        else f"`{slash} {command.name} INC-12` (or `#12`)"
    )
    raise _NoIncidentHere(
        f"This channel is not an incident's war room. Type the command in the war room, or "
        f"name the incident: {example}.{open_list}"
    )


async def _on_incident(
    rt: Runtime,
    principal: Principal,
    command: IncidentCommand,
    incident_id: int,
    *,
    slash: str,
    here: str,
) -> Reply:
    """Run a command on one incident. `here`: what names the incident in a command typed
    where this one was (empty in its war room, `INC-12 ` elsewhere), for the hints."""
    by = principal.name
    match command:
        case Acknowledge():
            incident = await uc.acknowledge_incident(rt, incident_id, by=principal)
            return Reply(f"*{incident.ref}* acknowledged by {by}.", in_channel=True)
        case ChangeSeverity(severity=severity, reason=reason):
            before = await uc.read_incident(rt, incident_id)
            incident = await uc.change_severity(
                rt, incident_id, severity, by=principal, reason=reason
            )
            why = f": {escaped(reason)}" if reason else ""
            return Reply(
                f"*{incident.ref}* is now *{severity.value}* (was {before.severity.value}), "
                f"changed by {by}{why}. The {severity.value} playbook now applies.",
                in_channel=True,
            )
        case AssignCommander(person=person):
            who = person or by
            incident = await uc.assign_role(rt, incident_id, Role.COMMANDER, who, by=principal)
            return Reply(
                f"{who} is now the incident commander of *{incident.ref}* (assigned by {by}).",
                in_channel=True,
            )
        case Resolve(summary=summary):
            incident = await uc.resolve_incident(rt, incident_id, summary=summary, by=principal)
            due = (
                f"\nThe RCA is due {_when(incident.rca_due_at, rt.clock.now())}."
                if incident.rca_due_at is not None
                else ""
            )
            return Reply(
                f"*{incident.ref}* resolved by {by}:\n>{escaped(summary)}{due}", in_channel=True
            )
        case CompleteRca(link=link):
            incident = await uc.complete_rca(rt, incident_id, link=link, by=principal)
            return Reply(
                f"RCA for *{incident.ref}* recorded by {by}: {escaped(link)}\n"
                f"*{incident.ref}* is {incident.status.value}.",
                in_channel=True,
            )
        case SetStatus() | CustomerUpdate() | Note():
            return await _say(rt, principal, command, incident_id)
        case Retitle() | DescribeImpact() | SetService() | SetCategory():
            return await _edit(rt, principal, command, incident_id, slash=slash, here=here)
        case Cancel() | Reopen() | Merge() | Approve():
            return await _lifecycle(rt, principal, command, incident_id, slash=slash, here=here)
        case AddFollowUp() | CompleteFollowUp() | ListFollowUps():
            return await _follow_up(rt, principal, command, incident_id, slash=slash, here=here)
        case ShowNext() | ShowTimeline():
            return await _show(rt, principal, command, incident_id, slash=slash, here=here)
    assert_never(command)


async def _say(
    rt: Runtime,
    principal: Principal,
    command: SetStatus | CustomerUpdate | Note,
    incident_id: int,
) -> Reply:
    """A customer-facing update (with a new status, or not) or an internal note."""
    by = principal.name
    match command:
        case SetStatus(status=status, message=message):
            incident = await uc.post_customer_update(
                rt, incident_id, message=message, status=status, by=principal
            )
            return Reply(
                f"*{incident.ref}* is now *{incident.status.value}*. Customer update by {by}:"
                f"\n>{escaped(message)}",
                in_channel=True,
            )
        case CustomerUpdate(message=message):
            incident = await uc.post_customer_update(rt, incident_id, message=message, by=principal)
            return Reply(
                f"Customer update on *{incident.ref}* by {by}:\n>{escaped(message)}",
                in_channel=True,
            )
        case Note(text=text):
            incident = await uc.add_internal_note(rt, incident_id, text=text, by=principal)
            return Reply(
                f"Internal note on *{incident.ref}* by {by}:\n>{escaped(text)}", in_channel=True
            )
    assert_never(command)


async def _show(
    rt: Runtime,
    principal: Principal,
    command: ShowNext | ShowTimeline,
    incident_id: int,
    *,
    slash: str,
    here: str,
) -> Reply:
    """What is planned next, or what has happened: only for the person who asked."""
    view = await uc.get_incident(rt, incident_id)
    match command:
        case ShowNext():
            incident = view.incident
            steps = _steps(
                view, rt.clock.now(), limit=LIST_LIMIT, approve=f"{slash} approve {here}"
            )
            return Reply(
                f"Upcoming steps of *{incident.ref}* ({incident.severity.value}, "
                f"{_state(incident)}):\n{steps}"
            )
        case ShowTimeline():
            return Reply(_timeline(view, approve=f"{slash} approve {here}"))
    assert_never(command)


async def _edit(
    rt: Runtime,
    principal: Principal,
    command: Retitle | DescribeImpact | SetService | SetCategory,
    incident_id: int,
    *,
    slash: str,
    here: str,
) -> Reply:
    """Correct one fact of the incident, as `PATCH /incidents/{id}` does."""
    by = principal.name
    before = await uc.read_incident(rt, incident_id)
    match command:
        case Retitle(title=title):
            incident = await uc.edit_incident(rt, incident_id, by=principal, title=title)
            return Reply(
                f"*{incident.ref}* retitled by {by}: {escaped(incident.title)}\n"
                f"(was: {escaped(before.title)})",
                in_channel=True,
            )
        case DescribeImpact(impact=impact):
            incident = await uc.edit_incident(rt, incident_id, by=principal, impact=impact)
            return Reply(
                f"Impact of *{incident.ref}*, as {by} describes it:\n>{escaped(incident.impact)}",
                in_channel=True,
            )
        case SetService(service=service):
            incident = await uc.edit_incident(rt, incident_id, by=principal, service=service)
            was = escaped(before.service) if before.service else "none named"
            return Reply(
                f"*{incident.ref}* is about the service *{escaped(incident.service)}* "
                f"(was: {was}), changed by {by}.",
                in_channel=True,
            )
        case SetCategory(category=category):
            incident = await uc.edit_incident(rt, incident_id, by=principal, category=category)
            held = (
                " Its automatic customer texts now wait for the commander's approval: "
                f"{_typed(slash, 'approve', here, '&lt;step&gt;')}."
                if category in rt.approval_categories
                else ""
            )
            return Reply(
                f"*{incident.ref}* is now a *{category.value}* incident (was "
                f"{before.category.value}), changed by {by}. Its steps are planned again: "
                f"{_typed(slash, 'next', here)} shows them.{held}",
                in_channel=True,
            )
    assert_never(command)


async def _lifecycle(
    rt: Runtime,
    principal: Principal,
    command: Cancel | Reopen | Merge | Approve,
    incident_id: int,
    *,
    slash: str,
    here: str,
) -> Reply:
    """Cancel, reopen, merge, approve: as the API's operations of the same names."""
    by = principal.name
    match command:
        case Cancel(reason=reason, note=note):
            incident = await uc.cancel_incident(
                rt, incident_id, reason=reason, note=note, by=principal
            )
            why = f":\n>{escaped(note)}" if note else "."
            return Reply(
                f"*{incident.ref}* cancelled by {by} as {reason.words}{why}\n"
                "Its playbook stops: its pages are resolved and the status page is updated. "
                "No RCA is due.",
                in_channel=True,
            )
        case Reopen(reason=reason):
            incident = await uc.reopen_incident(rt, incident_id, reason=reason, by=principal)
            return Reply(
                f"*{incident.ref}* reopened by {by}, now {incident.status.value}:\n"
                f">{escaped(reason)}\nIts update cadence resumes; resolve it again once it is "
                "fixed.",
                in_channel=True,
            )
        case Merge(into=into):
            target = await uc.merge_incident(rt, incident_id, into=into, by=principal)
            return Reply(
                f"*INC-{incident_id}* merged by {by} into *{target.ref}* as a duplicate: it is "
                f"cancelled (its pages resolved, off the status page) and {target.ref} takes "
                f"over its components and alert groups. Carry on in {target.ref}: "
                f"{_typed(slash, 'next', f'{target.ref} ')}.",
                in_channel=True,
            )
        case Approve(step_id=step_id):
            planned = await uc.get_incident(rt, incident_id)
            step = next((u for u in planned.upcoming if u.step_id == step_id), None)
            try:
                incident = await uc.approve_step(rt, incident_id, step_id, by=principal)
            except NotFound as error:
                return Reply(
                    f"{escaped(str(error))}.\n{_typed(slash, 'next', here)} shows the upcoming "
                    "steps and which wait for approval.",
                    "not_found",
                )
            what = (
                f" ({escaped(step.description)})" if step is not None and step.description else ""
            )
            when = (
                "it goes out now"
                if step is not None and step.state == "held"
                else "it goes out when it is due"
            )
            return Reply(
                f"`{step_id}`{what} of *{incident.ref}* approved by {by}: {when}.",
                in_channel=True,
            )
    assert_never(command)


async def _follow_up(
    rt: Runtime,
    principal: Principal,
    command: AddFollowUp | CompleteFollowUp | ListFollowUps,
    incident_id: int,
    *,
    slash: str,
    here: str,
) -> Reply:
    """The incident's follow-up action items, as the API's `.../follow-ups` operations."""
    by = principal.name
    match command:
        case AddFollowUp(title=title, owner=owner, due=due):
            now = rt.clock.now()
            item = await uc.add_follow_up(
                rt,
                incident_id,
                title=title,
                owner=owner or _handle(principal),
                due_at=now + due if isinstance(due, timedelta) else due,
                by=principal,
            )
            return Reply(
                f"Follow-up *{item.ref}* of *INC-{incident_id}* added by {by}: "
                f"{escaped(item.title)}\nOwner: {_person(item.owner)}, due "
                f"{_when(item.due_at, now)}. Reminders come a day before it is due, then daily "
                f"until {_typed(slash, 'followup done', here, item.ref)}.",
                in_channel=True,
            )
        case CompleteFollowUp(follow_up=number):
            try:
                item = await uc.complete_follow_up(rt, incident_id, number, by=principal)
            except NotFound as error:
                return Reply(
                    f"{escaped(str(error))}. {_typed(slash, 'followups', here)} lists them.",
                    "not_found",
                )
            return Reply(
                f"Follow-up *{item.ref}* of *INC-{incident_id}* marked done by {by}: "
                f"{escaped(item.title)}. Its reminders stop.",
                in_channel=True,
            )
        case ListFollowUps():
            view = await uc.get_incident(rt, incident_id)
            return Reply(_follow_ups(view, rt.clock.now(), slash=slash, here=here))
    assert_never(command)


# --- rendering -----------------------------------------------------------------------------


def _typed(slash: str, name: str, here: str, arguments: str = "") -> str:
    """A command to type, as code: `here` names the incident (empty in its war room)."""
    return "`" + f"{slash} {name} {here}{arguments}".strip() + "`"


def _handle(principal: Principal) -> str:
    """Whoever typed the command, as a follow-up's owner: `@U123`, whom reminders reach."""
    mention = OUR_MENTION.fullmatch(principal.name)
    return "@" + principal.name[2:-1] if mention is not None else principal.name


def _person(owner: str) -> str:
    """An owner for a Slack message: a Slack user (`@U123`) mentioned, anyone else named."""
    handle = _SLACK_HANDLE.fullmatch(owner)
    return f"<@{handle.group(1)}>" if handle is not None else escaped(owner)


def _state(incident: Incident) -> str:
    """The status, and for a cancelled incident why."""
    if incident.status is not Status.CANCELLED:
        return incident.status.value
    if incident.merged_into is not None:
        return f"cancelled, merged into INC-{incident.merged_into}"
    why = incident.cancellation.words if incident.cancellation is not None else ""
    return f"cancelled as {why}" if why else "cancelled"


def _steps(view: IncidentView, now: datetime, *, limit: int, approve: str | None = None) -> str:
    """The upcoming steps, those held for approval first; `approve`: the command that
    approves one (its step id follows), for the hints."""
    if not view.upcoming:
        return "No steps are planned: the playbook has nothing left to do."
    lines = []
    for step in sorted(view.upcoming, key=lambda u: u.state != "held")[:limit]:
        notes = []
        how = f": `{approve}{step.step_id}`" if approve else ""
        if step.state == "held":
            notes.append(f"waiting for approval{how}")
        elif step.state == "running":
            notes.append("running")
        elif step.last_error:
            error = escaped(step.last_error[:120])
            notes.append(f"retry {_when(step.run_at, now)} after: {error}")
        elif step.run_at > step.due_at:
            notes.append(f"snoozed until {_when(step.run_at, now)}")
        if step.state != "held" and step.needs_approval:
            ahead = f"; approve ahead{how}" if approve else ""
            notes.append(f"needs the commander's approval when due{ahead}")
        if step.approved_by:
            notes.append(f"approved by {escaped(step.approved_by)}")
        extra = f" ({'; '.join(notes)})" if notes else ""
        what = escaped(step.description or step.action)
        lines.append(f"• {_when(step.due_at, now)} `{step.step_id}`: {what}{extra}")
    if len(view.upcoming) > limit:
        lines.append(f"…and {len(view.upcoming) - limit} more")
    return "\n".join(lines)


def _follow_ups(view: IncidentView, now: datetime, *, slash: str, here: str) -> str:
    incident = view.incident
    if not view.follow_ups:
        return (
            f"*{incident.ref}* has no follow-up action items yet. Add one: "
            f"{usage_line('followup', slash)}"
        )
    items = sorted(view.follow_ups, key=lambda f: (f.done_at is not None, f.due_at))
    lines = [f"Follow-up action items of *{incident.ref}*:"]
    for item in items[:LIST_LIMIT]:
        if item.done_at is not None:
            done_by = escaped(item.done_by or "someone")
            lines.append(
                f"• ~{item.ref}~ {escaped(item.title)} (owner {_person(item.owner)}): done by "
                f"{done_by}, {item.done_at:%Y-%m-%d}"
            )
        else:
            lines.append(
                f"• *{item.ref}* {escaped(item.title)}: owner {_person(item.owner)}, due "
                f"{_when(item.due_at, now)}"
            )
    if len(items) > LIST_LIMIT:
        lines.append(f"…and {len(items) - LIST_LIMIT} more")
    if any(item.done_at is None for item in items):
        lines.append(f"Mark one done: {_typed(slash, 'followup done', here, 'FU-n')}")
    return "\n".join(lines)


def _timeline(view: IncidentView, *, approve: str | None = None) -> str:
    incident, entries = view.incident, view.timeline
    shown = entries[-LIST_LIMIT:]
    head = f"Timeline of *{incident.ref}* ({incident.severity.value}, {_state(incident)})"
    if len(entries) > len(shown):
        head += f", the latest {len(shown)} of {len(entries)} entries"
    lines = [head + ":"]
    for entry in shown:
        public = " (public)" if entry.public else ""
        lines.append(
            f"• {entry.at:%m-%d %H:%M} UTC {escaped(entry.actor)}: "
            f"{_entry_text(entry, view, approve)}{public}"
        )
    return "\n".join(lines)


def _entry_text(entry: TimelineEntry, view: IncidentView, approve: str | None) -> str:
    """One timeline entry in words; the kinds whose stored text is for machines as much as
    for people are put in words from their data."""
    match entry.kind:
        case "edited":
            changes = entry.data.get("changes")
            if isinstance(changes, list) and changes:
                return "edited: " + "; ".join(_edit_words(change) for change in changes)
        case "step_held":
            still_held = any(
                u.step_id == entry.step_id and u.state == "held" for u in view.upcoming
            )
            if still_held and approve and entry.step_id:
                return f"{escaped(entry.text[:300])}; approve it: `{approve}{entry.step_id}`"
        case "follow_up_added":
            number = entry.data.get("follow_up")
            item = next((f for f in view.follow_ups if f.id == number), None)
            if item is not None:
                return _follow_up_words(item)
    return escaped(entry.text[:300])


def _edit_words(change: object) -> str:
    if not isinstance(change, dict):
        return escaped(str(change))
    field, old, new = (str(change.get(key) or "") for key in ("field", "old", "new"))
    if field == "impact":
        return f"impact: {escaped(new[:200])}" if new else "impact cleared"
    return f"{escaped(field)} {escaped(old) or 'none'} → {escaped(new) or 'none'}"


def _follow_up_words(item: FollowUp) -> str:
    return (
        f"follow-up {item.ref} added: {escaped(item.title)} (owner {_person(item.owner)}, due "
        f"{item.due_at:%Y-%m-%d %H:%M} UTC)"
    )
