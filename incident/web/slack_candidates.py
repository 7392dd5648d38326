"""`/incident candidate ...`: incident candidates from Slack, by the patterns' use cases
(`incident.services.patterns`) and the API's own request models
(`incident.web.candidate_schemas`).

The slash command's door (`incident.web.slack`) has checked the signature and its time and
refused a replay before a candidate command gets here; a Slack user acts as `<@U123>` with
the access role `slack_roles` gives them (declaring and dismissing need a responder's).

What was typed reaches the use cases only through the API's request model, built as the
JSON the API would be sent: a severity, a title or a reason the API refuses is refused here
by the same rule, every problem listed. The words of a candidate are the patterns channel's
post's (`candidate_context`), so a person reads the same evidence in the post, here and on
the dashboard.

Views and refusals go only to the person who typed the command (ephemeral); a decision is
told to the channel, naming the incident. What people typed is escaped for Slack's mrkdwn.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar, assert_never

from pydantic import BaseModel, ValidationError

from incident.domain.access import Principal
from incident.domain.candidate_chat_commands import (
    ALL,
    CandidateCommand,
    CandidateHelp,
    DeclareCandidate,
    DismissCandidate,
    ListCandidates,
    ShowCandidate,
    candidate_help_text,
    candidate_usage_lines,
)
from incident.domain.chat_commands import escape
from incident.domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    IllegalTransition,
    InvalidValue,
    NotFound,
)
from incident.domain.patterns import Candidate, CandidateStatus
from incident.domain.playbook import duration_words
from incident.services import incidents as inc
from incident.services.candidate_steps import candidate_context
from incident.services.patterns import Patterns
from incident.web import candidate_schemas as ks
from incident.web.candidate_api import statuses
from incident.web.errors import validation_detail
from incident.web.slack_reply import Reply, escaped, moment, when

log = logging.getLogger("incident.web.slack")

# Slack shows about 4,000 characters of a message: lists are cut well before that.
LIST_LIMIT = 20
CASES_SHOWN = 15
M = TypeVar("M", bound=BaseModel)


async def execute(
    patterns: Patterns,
    principal: Principal,
    command: CandidateCommand,
    *,
    slash: str,
    base_url: str,
) -> Reply:
    """Run one candidate command as `principal`; every refusal is a reply, never an
    exception."""
    try:
        return await _run(patterns, principal, command, slash, base_url)
    except ValidationError as error:
        found = [(p["field"], p["problem"]) for p in validation_detail(error)]
        return _not_accepted(found, command, slash)
    except InvalidValue as error:
        return _not_accepted([(error.field, error.message)], command, slash)
    except Forbidden as error:
        return Reply(f"Not allowed: {escaped(str(error))}.", "refused")
    except NotFound as error:
        return Reply(
            f"{escaped(str(error))}. `{slash} candidate list all` lists the candidates.",
            "not_found",
        )
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
            f"`{slash} candidate show` shows whether it took effect; the service logged the "
            "error (action slack_command_failed) for the operator.",
            "error",
        )


async def _run(
    patterns: Patterns,
    principal: Principal,
    command: CandidateCommand,
    slash: str,
    base_url: str,
) -> Reply:
    match command:
        case CandidateHelp():
            return Reply(candidate_help_text(slash))
        case ListCandidates(status=status):
            return Reply(await _listed(patterns, status, slash))
        case ShowCandidate(candidate_id=candidate_id):
            found = await patterns.evidence(candidate_id)
            context = candidate_context(found, base_url=base_url)
            now = patterns.support.rt.clock.now()
            novelty = duration_words(patterns.rules.novelty_window)
            return Reply(_shown(context, found.candidate, now, slash, novelty=novelty))
        case DeclareCandidate():
            return await _declare(patterns, principal, command, slash)
        case DismissCandidate(candidate_id=candidate_id):
            reason = _request(ks.DismissCandidateRequest, {"reason": command.reason}).reason
            dismissed = await patterns.dismiss(candidate_id, reason, by=principal)
            quiet = duration_words(patterns.rules.quiet_for)
            return Reply(
                f"*{dismissed.ref}* dismissed by {principal.name}: not an incident.\n"
                f"{_quoted(reason)}\nIts signature stays quiet for {quiet}: new reports join it "
                "without proposing it again.",
                in_channel=True,
            )
    assert_never(command)


def _request(model: type[M], fields: Mapping[str, object]) -> M:
    """The API's request model, from what was typed, as the JSON the API would be sent."""
    given = {name: value for name, value in fields.items() if value is not None}
    return model.model_validate_json(json.dumps(given))


async def _declare(
    patterns: Patterns, principal: Principal, command: DeclareCandidate, slash: str
) -> Reply:
    body = _request(
        ks.DeclareCandidateRequest,
        {"severity": command.severity, "title": command.title, "incident": command.incident_id},
    )
    candidate, incident_id = await patterns.declare(
        command.candidate_id,
        by=principal,
        severity=body.severity,
        title=body.title,
        incident_id=body.incident,
    )
    incident = await inc.read_incident(patterns.support.rt, incident_id)
    found = await patterns.evidence(command.candidate_id)
    linked = sum(1 for case in found.cases if case["incident"] == incident_id)
    customers = len({c["customer_id"] for c in found.cases if c["incident"] == incident_id})
    how = "linked to the open incident" if body.incident is not None else "declared as"
    return Reply(
        f"*{candidate.ref}* {how} *{incident.ref}* by {principal.name}: "
        f"*{incident.severity.value}* {_text(incident.title)}\n"
        f"{linked} cases of {customers} customers are linked to it: each customer hears its "
        f"updates and its resolution.\n`{slash} next {incident.ref}` shows its next steps.",
        in_channel=True,
        incident_id=incident_id,
    )


# --- views ---------------------------------------------------------------------------------


async def _listed(patterns: Patterns, status: str | None, slash: str) -> str:
    wanted: tuple[CandidateStatus, ...] = (CandidateStatus.PROPOSED,)
    if status == ALL:
        wanted = ()
    elif status is not None:
        wanted = tuple(statuses([status], where="status"))
    found = await patterns.candidates(statuses=wanted, limit=LIST_LIMIT + 1)
    label = "incident candidates" if status == ALL else f"{wanted[0].value} incident candidates"
    if not found:
        hint = "" if status == ALL else f" `{slash} candidate list all` lists every one."
        return f"No {label}.{hint}"
    now = patterns.support.rt.clock.now()
    lines = [f"{label[0].upper()}{label[1:]}, newest first:"]
    lines += [_line(candidate, now) for candidate in found[:LIST_LIMIT]]
    if len(found) > LIST_LIMIT:
        lines.append(f"…and more: the dashboard lists them all, `{slash} candidate show <n>`.")
    return "\n".join(lines)


def _line(candidate: Candidate, now: datetime) -> str:
    return (
        f"• *{candidate.ref}* {candidate.status.value}: suggested {candidate.severity.value}, "
        f"{candidate.customers} customers, proposed {when(candidate.proposed_at, now)}"
        f"{_decided(candidate)}"
    )


def _decided(candidate: Candidate) -> str:
    if candidate.status is CandidateStatus.DECLARED and candidate.incident_id is not None:
        return f" → *INC-{candidate.incident_id}*"
    if candidate.status is CandidateStatus.DISMISSED:
        return f" ({_text(_cut(candidate.note or '', 80))})"
    return ""


def _shown(
    context: Mapping[str, Any], candidate: Candidate, now: datetime, slash: str, *, novelty: str
) -> str:
    """The evidence, in the words of the patterns channel's post."""
    c, sig = context["candidate"], context["signature"]
    where = " / ".join(part for part in (sig["category"], sig["component"]) if part)
    lines = [
        f"*{c['ref']}* · {c['status']} · {c['customers']} customers (weighted {c['weighted']}) "
        f"· proposed {when(c['proposed_at'], now)}",
        f"Signature: {_text(sig['text'])}",
    ]
    if where:
        lines.append(f"Where: {_text(where)}")
    if sig["error_codes"]:
        lines.append(f"Error codes: {_text(', '.join(sig['error_codes']))}")
    if sig["new"]:
        lines.append(f"*New*: this signature was not seen in the {novelty} before it.")
    lines += [
        f"Suggested severity: *{c['severity']}*, as it {_text(c['reason'])}",
        f"First seen {moment(context['first_seen'])}; last seen {moment(context['last_seen'])}",
        *_cases(context["cases"]),
        *_decision(candidate, slash),
        f"<{context['links']['candidate']}|The candidate on the dashboard>",
    ]
    return "\n".join(lines)


def _cases(cases: Sequence[Mapping[str, Any]]) -> list[str]:
    customers = len({case["customer_id"] for case in cases})
    lines = [f"Cases ({len(cases)}, of {customers} distinct customers):"]
    for case in cases[:CASES_SHOWN]:
        linked = f", linked to INC-{case['incident']}" if case["incident"] else ""
        lines.append(
            f"• *{case['ref']}* ticket {_text(case['reference'])}, customer "
            f"{_text(case['customer_id'])}, {case['plan']}, {case['status']}{linked}"
        )
    if len(cases) > CASES_SHOWN:
        lines.append(f"…and {len(cases) - CASES_SHOWN} more")
    return lines


def _decision(candidate: Candidate, slash: str) -> list[str]:
    by = f" by {escaped(candidate.decided_by)}" if candidate.decided_by else ""
    at = f" {moment(candidate.decided_at)}" if candidate.decided_at else ""
    match candidate.status:
        case CandidateStatus.PROPOSED:
            return [
                f"Declare it: `{slash} candidate declare {candidate.ref}` (or with a severity "
                f"and a title; `{slash} candidate declare {candidate.ref} INC-n` links the "
                f"cases to an open incident). Dismiss it: "
                f"`{slash} candidate dismiss {candidate.ref} &lt;reason&gt;`."
            ]
        case CandidateStatus.DECLARED:
            return [f"Declared as *INC-{candidate.incident_id}*{by}{at}."]
        case CandidateStatus.DISMISSED:
            return [f"Dismissed{by}{at}:", _quoted(candidate.note or "")]
    assert_never(candidate.status)


# --- refusals ------------------------------------------------------------------------------

_FIELD_WORDS = {"(body)": "what was given", "reason": "reason", "status": "status"}


def _not_accepted(found: Sequence[tuple[str, str]], command: CandidateCommand, slash: str) -> Reply:
    lines = ["Not accepted:"]
    lines += [
        f"• {_text(_FIELD_WORDS.get(field, field))}: {_problem(problem)}"
        for field, problem in found
    ]
    name = command.name.removeprefix("candidate ")
    lines.append("Usage: " + " or ".join(candidate_usage_lines(name, slash)))
    return Reply("\n".join(lines), "invalid")


def _problem(problem: str) -> str:
    if problem == "String should have at least 1 character":
        return "is blank; give it"
    return _text(problem)


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
