"""`/incident case ...`: support cases from Slack, by the case use cases
(`incident.services.cases`) and the API's own request models (`incident.web.case_schemas`).

The slash command's door (`incident.web.slack`) has checked the signature and its time,
refused a replay and made the principal before a case command gets here: a Slack user acts
as `<@U123>` (the name the timeline shows), with the access role `slack_roles` gives them.
Their support role is `support_roles`' for that name (`INCIDENT_SUPPORT_ROLES=
"<@U0123ABCD>=cio"`), or else their access role's: anyone in the workspace works cases as
an agent.

What was typed reaches the use cases only through the API's request model, built from the
parsed command as the JSON the API would be sent (`incident.web.case_api`'s converters
then): a value the API refuses is refused here by the same rule. Every problem found
(pydantic's, or the domain's `ContextRefused`) is listed, one a line.

Views and refusals go only to the person who typed the command (ephemeral); a change is
confirmed to the channel, as an incident's are. What people typed is escaped for Slack's
mrkdwn (as `chat_text` does in templates): `&`, `<` and `>` as entities, so that text
cannot ping a channel or become a link; a name that is one user mention stays a mention.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TypeVar, assert_never

from pydantic import BaseModel, ValidationError

from incident.domain.access import Principal
from incident.domain.case import Case, CaseStatus
from incident.domain.case_chat_commands import (
    ApproveCase,
    CaseCommand,
    CaseHelp,
    CaseNote,
    CaseSent,
    ConfirmReceipt,
    DecideCase,
    DeclineCase,
    DeescalateCase,
    EscalateCase,
    LinkCase,
    ListCases,
    OpenCase,
    ResolveCase,
    ShowCase,
    UnlinkCase,
    UpdateCase,
    case_help_text,
    case_usage_line,
)
from incident.domain.case_context import ContextRefused, FieldProblem
from incident.domain.case_ladder import SlaState
from incident.domain.case_routing import Level, Mode, Urgency
from incident.domain.chat_commands import escape
from incident.domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    IllegalTransition,
    InvalidValue,
    NotFound,
)
from incident.services import case_links as links
from incident.services import cases as uc
from incident.services.cases import ROUTING, CaseView, Support
from incident.web import case_schemas as cs
from incident.web.case_api import case_change, escalation_request, new_case
from incident.web.errors import validation_detail
from incident.web.slack_reply import Reply, escaped, moment, when

log = logging.getLogger("incident.web.slack")

# Slack shows about 4,000 characters of a message: lists are cut well before that.
LIST_LIMIT = 20
STEPS_SHOWN = 6
# The queue: the open cases, and those waiting for their customer's confirmation (marked).
QUEUED = (CaseStatus.OPEN, CaseStatus.PENDING)
TIMELINE_SHOWN = 5
# The API's field names as a person typing the command knows them.
_FIELD_WORDS = {
    "reference": "ticket",
    "customer_id": "customer id",
    "to": "level",
    "urgency_note": "urgent:",
    "override": "override:",
    "customer_email": "email:",
    "disputed_amount": "disputed:",
    "usdt_amount": "usdt:",
    "csr": "csr:",
    "contacts": "contacts:",
    "flags": "flags:",
    "checklist": "checklist:",
    "crypto": "crypto:",
    "priority": "priority:",
    "category": "category:",
    "component": "component:",
}
_SLA_WORDS = {
    SlaState.MET: "met",
    SlaState.OK: "running",
    SlaState.WARNING: "*warning*",
    SlaState.BREACHED: "*breached*",
    SlaState.NONE: "none here",
}
M = TypeVar("M", bound=BaseModel)


async def execute(
    support: Support, principal: Principal, command: CaseCommand, *, slash: str
) -> Reply:
    """Run one case command as `principal`; every refusal is a reply, never an exception."""
    try:
        return await _run(support, principal, command, slash)
    except ValidationError as error:
        found = [(p["field"], p["problem"]) for p in validation_detail(error)]
        return _not_accepted(found, command, slash)
    except ContextRefused as error:
        return _context_refused(error.problems, command, slash)
    except InvalidValue as error:
        return _not_accepted([(error.field, error.message)], command, slash)
    except Forbidden as error:
        return Reply(f"Not allowed: {escaped(str(error))}.", "refused")
    except NotFound as error:
        hint = f"`{slash} case list` lists the open cases."
        if isinstance(command, LinkCase):
            hint = f"{_usage(command, slash)} (the incident by its number, as its channel names it)"
        return Reply(f"{escaped(str(error))}. {hint}", "not_found")
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
            f"`{slash} case show` shows whether it took effect; the service logged the error "
            "(action slack_command_failed) for the operator.",
            "error",
        )


async def _run(sp: Support, principal: Principal, command: CaseCommand, slash: str) -> Reply:
    match command:
        case CaseHelp():
            return Reply(case_help_text(slash))
        case ShowCase(case_id=case_id):
            view = await uc.read_case(sp, case_id, by=principal)
            return Reply(_shown(view, sp.rt.clock.now(), slash))
        case ListCases(level=level):
            return Reply(await _queue(sp, level, slash))
        case OpenCase() | UpdateCase():
            return await _facts(sp, principal, command, slash)
        case EscalateCase() | ConfirmReceipt() | DeescalateCase():
            return await _move(sp, principal, command, slash)
        case CaseNote() | CaseSent() | ApproveCase() | DeclineCase() | ResolveCase():
            return await _work(sp, principal, command, slash)
        case LinkCase() | UnlinkCase():
            return await _link(sp, principal, command, slash)
    assert_never(command)


def _request(model: type[M], fields: Mapping[str, object]) -> M:
    """The API's request model, from what was typed, as the JSON the API would be sent
    (the API's models are strict: its rules for JSON are the ones that hold)."""
    given = {name: value for name, value in fields.items() if value is not None}
    return model.model_validate_json(json.dumps(given))


# --- changes -------------------------------------------------------------------------------


async def _facts(
    sp: Support, principal: Principal, command: OpenCase | UpdateCase, slash: str
) -> Reply:
    """Open a case, or change its facts and context, as `POST` and `PATCH /cases` do."""
    match command:
        case OpenCase():
            body = _request(
                cs.OpenCaseRequest,
                {
                    **command.facts,
                    "reference": command.reference,
                    "customer_id": command.customer_id,
                    "plan": command.plan,
                    "summary": command.summary,
                },
            )
            view = await uc.open_case(sp, new_case(body, sp.rt.clock.now()), by=principal)
            return Reply(_opened(view, principal, slash), in_channel=True)
        case UpdateCase(case_id=case_id, changes=changes):
            change = case_change(_request(cs.UpdateCaseRequest, changes))
            before = await uc.read_case(sp, case_id, by=principal)
            view = await uc.update_case(sp, case_id, change, by=principal)
            moved = len(before.case.escalations)
            return Reply(_updated(view, principal, changes, moved, slash), in_channel=True)
    assert_never(command)


async def _move(
    sp: Support,
    principal: Principal,
    command: EscalateCase | ConfirmReceipt | DeescalateCase,
    slash: str,
) -> Reply:
    """Up, receipt, down: as the API's escalate, confirm and deescalate."""
    by = principal.name
    match command:
        case EscalateCase(case_id=case_id):
            request = _request(
                cs.EscalateRequest,
                {
                    "to": command.level,
                    "reason": command.reason,
                    "urgency": "cannot_wait" if command.urgent is not None else None,
                    "urgency_note": command.urgent,
                    "override": command.override,
                },
            )
            view = await uc.escalate_case(sp, case_id, escalation_request(request), by=principal)
            return Reply(_escalated(view, principal, sp.rt.clock.now(), slash), in_channel=True)
        case ConfirmReceipt(case_id=case_id):
            view = await uc.confirm_receipt(sp, case_id, by=principal)
            case = view.case
            return Reply(
                f"Receipt of *{case.ref}* at *{case.level.value}* confirmed by {by}: its "
                "response clock is met.",
                in_channel=True,
            )
        case DeescalateCase(case_id=case_id):
            down = _request(
                cs.DeescalateRequest,
                {"to": command.level, "why": command.why, "note": command.note},
            )
            view = await uc.deescalate_case(sp, case_id, down.to, down.why, down.note, by=principal)
            return Reply(
                f"*{view.case.ref}* sent back to *{view.case.level.value}* by {by} "
                f"({down.why.words}):\n{_quoted(down.note)}",
                in_channel=True,
            )
    assert_never(command)


async def _work(
    sp: Support,
    principal: Principal,
    command: CaseNote | CaseSent | ApproveCase | DeclineCase | ResolveCase,
    slash: str,
) -> Reply:
    """Progress, decisions, resolution: as the API's progress, decisions and resolve."""
    by = principal.name
    match command:
        case CaseNote() | CaseSent():
            note = _request(cs.ProgressRequest, {"note": command.note}).note
            view = await uc.record_progress(
                sp, command.case_id, note, to_customer=command.to_customer, by=principal
            )
            what = "Answer sent to the customer of" if command.to_customer else "Note on"
            return Reply(f"{what} *{view.case.ref}*, by {by}:\n{_quoted(note)}", in_channel=True)
        case ApproveCase() | DeclineCase():
            decision = _request(
                cs.DecisionRequest,
                {"level": command.level, "approved": command.approved, "note": command.note},
            )
            view = await uc.decide(
                sp,
                command.case_id,
                Level(decision.level),
                approved=decision.approved,
                note=decision.note,
                by=principal,
            )
            return Reply(_decided(view, decision, principal, slash), in_channel=True)
        case ResolveCase(case_id=case_id):
            resolution = _request(
                cs.ResolveCaseRequest, {"resolution": command.resolution}
            ).resolution
            view = await uc.resolve_case(sp, case_id, resolution, by=principal)
            return Reply(
                f"*{view.case.ref}* resolved by {by}:\n{_quoted(resolution)}", in_channel=True
            )
    assert_never(command)


async def _link(
    sp: Support, principal: Principal, command: LinkCase | UnlinkCase, slash: str
) -> Reply:
    """Link a case to an incident, or unlink it: as the API's link and unlink."""
    by = principal.name
    match command:
        case LinkCase(case_id=case_id):
            incident = _request(cs.LinkCaseRequest, {"incident": command.incident_id}).incident
            view = await links.link_case(sp, case_id, incident, by=principal)
            ref = f"INC-{incident}"
            lines = [
                f"*{view.case.ref}* linked to *{ref}* by {by}: its customer hears {ref}'s "
                "updates and its resolution, each once."
            ]
            latest = view.case.notices[-1] if view.case.notices else None
            if latest is not None and latest.at == view.case.linked_at:
                lines.append(f"{ref}'s latest update is on its way to the customer.")
            lines.append(f"`{slash} case unlink {case_id}` stops it.")
            return Reply("\n".join(lines), in_channel=True)
        case UnlinkCase(case_id=case_id):
            view = await links.unlink_case(sp, case_id, by=principal)
            was = _unlinked_from(view)
            return Reply(
                f"*{view.case.ref}* unlinked from *{was}* by {by}: nothing more of {was} "
                "reaches its customer.",
                in_channel=True,
            )
    assert_never(command)


def _unlinked_from(view: CaseView) -> str:
    """The incident the case was just unlinked from, as its timeline says."""
    entry = next(e for e in reversed(view.timeline) if e.kind == "case_unlinked")
    return f"INC-{entry.data['incident']}"


# --- what a change says --------------------------------------------------------------------


def _opened(view: CaseView, principal: Principal, slash: str) -> str:
    case = view.case
    lines = [
        f"*{case.ref}* opened by {principal.name} for ticket {_text(case.reference)} "
        f"(customer {_text(case.customer_id)}, {case.plan.value}, {case.priority.value}):",
        _quoted(case.summary),
    ]
    lines += _routed(view, before=0)
    lines += _decisions_waiting(view, slash)
    lines.append(f"`{slash} case show {case.id}` shows it.")
    return "\n".join(lines)


def _updated(
    view: CaseView, principal: Principal, changes: Mapping[str, object], before: int, slash: str
) -> str:
    case = view.case
    given = [name for name in changes if name != "context"]
    context = changes.get("context")
    if isinstance(context, Mapping):
        given.append("context (" + ", ".join(context) + ")")
    lines = [f"*{case.ref}* updated by {principal.name}: {_text(', '.join(given))}."]
    lines += _routed(view, before=before)
    lines += _decisions_waiting(view, slash)
    lines += _next_escalation(view, slash, listed=False)
    return "\n".join(lines)


def _routed(view: CaseView, *, before: int) -> list[str]:
    """What the rules did with the case just now (`before`: its escalations till then)."""
    moved = [e for e in view.case.escalations[before:] if e.by == ROUTING]
    if not moved:
        return [f"It is at *{view.case.level.value}*."]
    return [f"The rules sent it to *{e.to_level.value}*: {_text(e.rule)}." for e in moved]


def _escalated(view: CaseView, principal: Principal, now: datetime, slash: str) -> str:
    case = view.case
    mine = [e for e in case.escalations if e.by == principal.name][-1]  # the one just made
    urgency = "cannot wait" if mine.urgency is Urgency.CANNOT_WAIT else "can wait"
    lines = [
        f"*{case.ref}* escalated {mine.from_level.value} → *{mine.to_level.value}* by "
        f"{principal.name} ({_text(mine.rule)}; {urgency}):",
        _quoted(mine.reason),
    ]
    if view.notice:
        lines.append(_text(view.notice))
    lines += [
        f"{_text(entry.text)} (a manager's override)"
        for entry in view.timeline
        if entry.kind == "gate_overridden" and entry.at == mine.at and entry.actor == mine.by
    ]
    if case.level is not mine.to_level:
        lines.append(f"The rules then sent it on to *{case.level.value}*.")
    if view.sla.due is not None:
        lines.append(
            f"Receipt is due {when(view.sla.due, now)}: "
            f"`{slash} case confirm {case.id}` once {case.level.value} has it."
        )
    return "\n".join(lines)


def _decided(view: CaseView, decision: cs.DecisionRequest, principal: Principal, slash: str) -> str:
    case = view.case
    verdict = "approved" if decision.approved else "declined"
    lines = [
        f"The {decision.level.upper()}'s decision on *{case.ref}*: *{verdict}* by "
        f"{principal.name}:",
        _quoted(decision.note),
    ]
    waiting = case.approvals_missing
    if waiting:
        lines.append("Still waiting for: " + ", ".join(level.value for level in waiting) + ".")
    elif case.is_open:
        lines.append(
            f"Every decision it needs is made: `{slash} case resolve {case.id}` when done."
        )
    return "\n".join(lines)


# --- refusals ------------------------------------------------------------------------------


def _not_accepted(found: Sequence[tuple[str, str]], command: CaseCommand, slash: str) -> Reply:
    lines = ["Not accepted:"]
    lines += [
        f"• {_field_words(field, command)}: {_problem(field, problem)}" for field, problem in found
    ]
    lines.append(_usage(command, slash))
    return Reply("\n".join(lines), "invalid")


def _context_refused(problems: Sequence[FieldProblem], command: CaseCommand, slash: str) -> Reply:
    """The gate's refusal (every field an escalation lacks), or a malformed context."""
    listed = [f"• {_text(p.field)}: {_text(p.problem)}" for p in problems]
    if not isinstance(command, EscalateCase):
        return Reply("\n".join(["Not accepted:", *listed, _usage(command, slash)]), "invalid")
    ref = f"CASE-{command.case_id}"
    return Reply(
        "\n".join(
            [
                f"*{ref}* cannot be escalated to {_text(command.level)} yet; it lacks:",
                *listed,
                f"Give them with `{slash} case set {command.case_id} key: value ...` "
                f"(`{slash} case help` lists the keys) and escalate again. A manager may "
                "escalate without them, adding `override: &lt;why&gt;`.",
            ]
        ),
        "context_missing",
    )


def _usage(command: CaseCommand, slash: str) -> str:
    return f"Usage: {case_usage_line(command.name.removeprefix('case '), slash)}"


def _field_words(field: str, command: CaseCommand) -> str:
    """`flags.1` -> `flags: item 2`: the API's field as the command names it."""
    head, _, rest = field.partition(".")
    words = _FIELD_WORDS.get(head, head.replace("_", " "))
    if head == "level" and isinstance(command, DecideCase):
        words = "whose decision (cio or ceo)"
    if rest.isdigit():
        return _text(f"{words} item {int(rest) + 1}")
    return _text(f"{words} {rest}" if rest else words)


def _problem(field: str, problem: str) -> str:
    if problem.startswith("String should match pattern"):
        if field == "customer_email":
            return "give one plain e-mail address, like sam@example.com"
        return "is not in the form expected"
    if problem == "String should have at least 1 character":
        return "is blank; give it"
    return _text(problem)


# --- views ---------------------------------------------------------------------------------


async def _queue(sp: Support, level: str | None, slash: str) -> str:
    levels = [_level(level)] if level is not None else []
    found = await uc.list_cases(sp, statuses=QUEUED, levels=levels, limit=LIST_LIMIT + 1)
    where = f" at *{levels[0].value}*" if levels else ""
    if not found:
        return f"No case is open{where}. `{slash} case open` opens one."
    now = sp.rt.clock.now()
    lines = [f"Open cases{where}, the longest open first:"]
    for case, sla in found[:LIST_LIMIT]:
        due = f", due {when(sla.due, now)}" if sla.due is not None else ""
        state = f"clock {_SLA_WORDS[sla.state]}{due}"
        if case.status is CaseStatus.PENDING:
            state = "_waiting for the customer's confirmation_"
        lines.append(
            f"• *{case.ref}* {case.level.value} {case.priority.value} ticket "
            f"{_text(case.reference)}: {_text(_cut(case.summary, 80))} ({state})"
        )
    if len(found) > LIST_LIMIT:
        lines.append(f"…and more: `{slash} case list <level>` shows one level's queue.")
    return "\n".join(lines)


def _level(word: str) -> Level:
    try:
        return Level(word)
    except ValueError:
        names = ", ".join(level.value for level in Level)
        raise InvalidValue("level", f"not a level; give one of {names}") from None


def _shown(view: CaseView, now: datetime, slash: str) -> str:
    case = view.case
    lines = [
        f"*{case.ref}* · ticket {_text(case.reference)} · customer {_text(case.customer_id)} "
        f"· {case.plan.value} · {case.priority.value} · {case.status.value}",
        _quoted(case.summary),
        *_about(case),
        *_where(view, now, slash),
        *_routes(view),
        *_decisions(view, slash),
        *_next_escalation(view, slash, listed=True),
        *_steps(view, now),
        *_latest(view),
    ]
    return "\n".join(lines)


def _about(case: Case) -> list[str]:
    """What the case is about, and the incident it is part of."""
    lines = []
    about = " · ".join(f"{name} {_text(value)}" for name, value in _labels(case) if value)
    if about:
        lines.append(about[0].upper() + about[1:])  # the values as typed
    if case.incident_id is not None:
        since = f" since {moment(case.linked_at)}" if case.linked_at else ""
        lines.append(f"Linked to *INC-{case.incident_id}*{since}: its customer hears its updates.")
    return lines


def _labels(case: Case) -> tuple[tuple[str, str], ...]:
    return (("category", case.category), ("component", case.component))


def _where(view: CaseView, now: datetime, slash: str) -> list[str]:
    case = view.case
    if case.status is CaseStatus.PENDING:
        since = f" since {moment(case.pending_since)}" if case.pending_since else ""
        return [
            f"*Waiting for the customer's confirmation*{since}: no response clock runs. "
            f"Their answer (`{slash} case sent {case.id} ...`, or a note) opens it again; "
            f"`{slash} case resolve {case.id} ...` closes it."
        ]
    if not case.is_open:
        resolved = case.resolved_at.strftime("%Y-%m-%d %H:%M UTC") if case.resolved_at else ""
        return [f"Resolved {resolved}: {_text(case.resolution or '')}"]
    since = f" since {moment(case.level_entered_at)}" if case.level_entered_at else ""
    sla = view.sla
    clock = _SLA_WORDS[sla.state]
    if sla.due is not None and sla.state is not SlaState.NONE:
        clock += f", due {when(sla.due, now)}, {round(sla.used * 100)} % used"
    lines = [f"At *{case.level.value}*{since}. Response clock: {clock}."]
    current = case.current
    if current is not None:
        why = f": {_text(current.rule)}"
        if current.by != ROUTING:
            why = (
                f", escalated by {escaped(current.by)} ({_text(current.rule)}): "
                f"{_text(_cut(current.reason, 200))}"
            )
        lines.append(f"Came from {current.from_level.value}{why}")
        if current.confirmed_at is None:
            lines.append(f"Receipt not confirmed yet: `{slash} case confirm {case.id}`.")
    return lines


def _routes(view: CaseView) -> list[str]:
    if not view.routes:
        return ["Routing: no rule calls for another level."]
    lines = ["Routing:"]
    for route in view.routes:
        how = "automatic" if route.mode is Mode.AUTOMATIC else "suggested"
        lines.append(f"• {_text(route.explain())} ({how}, {route.urgency.value.replace('_', ' ')})")
    return lines


def _decisions(view: CaseView, slash: str) -> list[str]:
    case = view.case
    lines = []
    for level in case.required_approvals:
        given = case.approval_by(level)
        if given is not None:
            verdict = "approved" if given.approved else "declined"
            lines.append(
                f"Decision of the {level.value}: {verdict} by {escaped(given.by)}: "
                f"{_text(_cut(given.note, 200))}"
            )
    return lines + _decisions_waiting(view, slash)


def _decisions_waiting(view: CaseView, slash: str) -> list[str]:
    case = view.case
    if not case.approvals_missing or not case.is_open:
        return []
    waiting = ", ".join(level.value for level in case.approvals_missing)
    first = case.approvals_missing[0].value
    return [
        f"Waiting for the decision of: {waiting} "
        f"(`{slash} case approve {case.id} {first} &lt;note&gt;` or decline)."
    ]


def _next_escalation(view: CaseView, slash: str, *, listed: bool) -> list[str]:
    """What escalating to the next level still needs (the reason is the command's)."""
    case, target = view.case, view.next_level  # the level above (the ladder's `up`)
    if target is None or not case.is_open:
        return []
    needs = view.missing  # the reason is the command's, and is not listed
    if not needs:
        return [
            f"Escalating to *{target.value}* needs only a reason: "
            f"`{slash} case escalate {case.id} {target.value} &lt;reason&gt;`."
        ]
    if not listed:
        names = ", ".join(p.field for p in needs)
        return [f"Escalating to *{target.value}* still needs: {_text(names)}."]
    lines = [f"Escalating to *{target.value}* still needs:"]
    lines += [f"• {_text(p.field)}: {_text(p.problem)}" for p in needs]
    return lines


def _steps(view: CaseView, now: datetime) -> list[str]:
    if not view.upcoming:
        return []
    lines = ["Next steps:"]
    for step in sorted(view.upcoming, key=lambda s: s.due_at)[:STEPS_SHOWN]:
        state = f" ({step.state})" if step.state != "pending" else ""
        what = _text(step.description or step.action)
        lines.append(f"• {when(step.due_at, now)} `{step.step_id}`: {what}{state}")
    if len(view.upcoming) > STEPS_SHOWN:
        lines.append(f"…and {len(view.upcoming) - STEPS_SHOWN} more")
    return lines


def _latest(view: CaseView) -> list[str]:
    if not view.timeline:
        return []
    lines = ["Latest:"]
    for entry in view.timeline[-TIMELINE_SHOWN:]:
        lines.append(
            f"• {entry.at:%m-%d %H:%M} UTC {escaped(entry.actor)}: {_text(_cut(entry.text, 300))}"
        )
    return lines


# --- text ----------------------------------------------------------------------------------


def _text(value: str) -> str:
    """What people typed, for a Slack message: nothing in it stays markup."""
    return escape(value)


def _quoted(text: str) -> str:
    """Text as a Slack quote, every line of it."""
    return "\n".join(">" + _text(line) for line in text.splitlines() or [""])


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
