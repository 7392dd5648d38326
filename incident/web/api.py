"""The REST API under /api/v1: one table of operations drives the routes and the OpenAPI
document, so what the document says is what the server does.

Each operation names the least role that may call it at all; changes to one incident are
then checked against that incident (its commander has commander rights on it).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from incident.domain.access import (
    AccessRole,
    Action,
)
from incident.domain.errors import DomainError, InvalidValue
from incident.domain.incident import Cancellation, Severity, Status
from incident.domain.status_page import MaintenanceStatus
from incident.services import exports, views
from incident.services import incidents as uc
from incident.services import status_page as maintenance
from incident.web import schemas as s
from incident.web.auth import authenticate
from incident.web.candidate_api import CANDIDATE_OPERATIONS
from incident.web.case_api import CASE_OPERATIONS
from incident.web.context import CONTAINER
from incident.web.errors import ApiError, guarded, validation_detail
from incident.web.operations import MAX_ID, Call, Operation

__all__ = ["MAX_ID", "OPERATIONS", "Call", "Operation", "add_routes"]

log = logging.getLogger("incident.web.api")

PREFIX = "/api/v1"
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
TIMELINE_KIND = re.compile(r"^[a-z0-9_]{1,40}$")
OUTBOX_LIMIT = 1000


def _json(model: BaseModel, status: int = 200) -> web.Response:
    return web.json_response(model.model_dump(mode="json"), status=status)


async def _changed(call: Call, status: int = 200) -> web.Response:
    view = await uc.get_incident(call.rt, call.incident_id)
    upcoming = [s.UpcomingStepOut.of(u) for u in view.upcoming]
    return _json(s.IncidentChanged(incident=s.IncidentOut.of(view.incident), upcoming=upcoming))


# --- handlers ------------------------------------------------------------------------------


async def declare(call: Call) -> web.Response:
    body: s.DeclareRequest = call.body
    key = call.request.headers.get("Idempotency-Key")
    if key is not None and not IDEMPOTENCY_KEY.match(key):
        raise ApiError(
            400,
            "bad request",
            "Idempotency-Key must be 1-200 visible ASCII characters without spaces",
        )
    incident, created = await uc.declare_incident(
        call.rt,
        title=body.title,
        severity=body.severity,
        by=call.principal,
        service=body.service,
        impact=body.impact,
        category=body.category,
        components={k: v.value for k, v in body.components.items()},
        public_title=body.public_title,
        # Keys are per caller: two clients choosing the same key must not collide.
        idempotency_key=f"api:{call.principal.name}:{key}" if key else None,
    )
    assert incident.id is not None
    try:
        view = await uc.get_incident(call.rt, incident.id)
    except DomainError:
        raise
    except Exception:  # the declaration is committed: say so, from what was committed
        log.warning(
            "could not read a new incident back; answering from its declaration",
            exc_info=True,
            extra={"action": "declare_read_back_failed", "incident_id": incident.id},
        )
        view = uc.planned_view(call.rt, incident)
    return _json(
        s.Declared(
            incident=s.IncidentOut.of(view.incident),
            upcoming=[s.UpcomingStepOut.of(u) for u in view.upcoming],
            created=created,
        ),
        status=201 if created else 200,
    )


def _filters(request: web.Request, name: str, parse: Callable[[str], Any]) -> list[Any]:
    """The values of a repeatable, comma-joinable query parameter, each parsed; an empty
    one (`?status=`, `a,,b`) is refused, as the document says."""
    values = []
    for raw in request.query.getall(name, []):
        for part in raw.split(","):
            if not part:
                raise InvalidValue(f"query parameter {name}", "give a value, or leave it out")
            values.append(parse(part))
    return values


def _one_of(allowed: Sequence[str], name: str) -> Callable[[str], str]:
    """A parser accepting exactly these values (as the document lists them)."""

    def parse(text: str) -> str:
        if text not in allowed:
            raise InvalidValue(
                f"query parameter {name}", f"{text!r} is not one of {', '.join(allowed)}"
            )
        return text

    return parse


def _listed(allowed: Sequence[str]) -> dict[str, Any]:
    """The schema of a repeatable, comma-joinable query parameter of these values."""
    one = "(" + "|".join(re.escape(v) for v in allowed) + ")"
    return {"type": "array", "items": {"type": "string", "pattern": f"^{one}(,{one})*$"}}


STATUSES = [st.value for st in Status]
SEVERITIES = [sv.value for sv in Severity]


def _one(request: web.Request, name: str) -> str | None:
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise InvalidValue(f"query parameter {name}", "give it once")
    return values[0] if values else None


def _number(request: web.Request, name: str, *, low: int, high: int) -> int | None:
    text = _one(request, name)
    if text is None:
        return None
    if not re.fullmatch(r"[0-9]{1,20}", text) or not low <= int(text) <= high:
        raise InvalidValue(f"query parameter {name}", f"{text!r} is not a number {low}-{high}")
    return int(text)


def _flag(request: web.Request, name: str) -> bool:
    text = _one(request, name)
    if text not in (None, "true", "false"):
        raise InvalidValue(f"query parameter {name}", f"{text!r} is neither true nor false")
    return text == "true"


def _kind(text: str) -> str:
    if not TIMELINE_KIND.match(text):
        raise InvalidValue("query parameter kind", f"{text!r} is not a timeline kind")
    return text


async def list_all(call: Call) -> web.Response:
    statuses = [Status(v) for v in _filters(call.request, "status", _one_of(STATUSES, "status"))]
    severities = [
        Severity(v) for v in _filters(call.request, "severity", _one_of(SEVERITIES, "severity"))
    ]
    found = await uc.list_incidents(call.rt, statuses=statuses, severities=severities)
    return _json(s.IncidentList(incidents=[s.IncidentOut.of(i) for i in found]))


async def show(call: Call) -> web.Response:
    view = await uc.get_incident(call.rt, call.incident_id)
    return _json(s.IncidentDetail.of(view))


async def timeline(call: Call) -> web.Response:
    kinds = _filters(call.request, "kind", _kind)
    public_only = _flag(call.request, "public")
    entries = await views.incident_timeline(
        call.rt, call.incident_id, kinds=kinds, public_only=public_only
    )
    return _json(s.Timeline(timeline=[s.TimelineEntryOut.of(e) for e in entries]))


async def outbox(call: Call) -> web.Response:
    incident_id = _number(call.request, "incident", low=1, high=MAX_ID)
    limit = _number(call.request, "limit", low=1, high=OUTBOX_LIMIT) or 100
    messages, more = await views.outbox_messages(
        call.rt, call.request.app[CONTAINER].outbox, incident_id=incident_id, limit=limit
    )
    return _json(s.OutboxList(messages=[s.OutboxMessageOut.of(m) for m in messages], more=more))


async def whoami(call: Call) -> web.Response:
    return _json(s.Caller.of(call.principal))


async def acknowledge(call: Call) -> web.Response:
    await uc.acknowledge_incident(call.rt, call.incident_id, by=call.principal)
    return await _changed(call)


async def post_update(call: Call) -> web.Response:
    body: s.CustomerUpdateRequest = call.body
    status = Status(body.status) if body.status else None
    await uc.post_customer_update(
        call.rt,
        call.incident_id,
        message=body.message,
        status=status,
        components={k: v.value for k, v in body.components.items()},
        by=call.principal,
    )
    return await _changed(call)


async def change_status(call: Call) -> web.Response:
    body: s.StatusRequest = call.body
    await uc.change_status(call.rt, call.incident_id, Status(body.status), by=call.principal)
    return await _changed(call)


async def set_components(call: Call) -> web.Response:
    body: s.ComponentsRequest = call.body
    await uc.set_components(
        call.rt,
        call.incident_id,
        {k: v.value for k, v in body.components.items()},
        by=call.principal,
    )
    return await _changed(call)


async def set_public_title(call: Call) -> web.Response:
    body: s.PublicTitleRequest = call.body
    await uc.set_public_title(call.rt, call.incident_id, body.public_title, by=call.principal)
    return await _changed(call)


async def schedule_maintenance(call: Call) -> web.Response:
    body: s.MaintenanceRequest = call.body
    window = await maintenance.schedule_maintenance(
        call.rt,
        name=body.name,
        message=body.message,
        scheduled_for=body.scheduled_for,
        scheduled_until=body.scheduled_until,
        components=body.components,
        by=call.principal,
    )
    return _json(s.MaintenanceOut.of(window, call.rt.clock.now()), status=201)


async def list_maintenances(call: Call) -> web.Response:
    windows = await maintenance.list_maintenances(call.rt)
    now = call.rt.clock.now()
    return _json(s.MaintenanceList(maintenances=[s.MaintenanceOut.of(w, now) for w in windows]))


async def show_maintenance(call: Call) -> web.Response:
    window = await maintenance.get_maintenance(call.rt, call.maintenance_id)
    return _json(s.MaintenanceOut.of(window, call.rt.clock.now()))


async def update_maintenance(call: Call) -> web.Response:
    body: s.MaintenanceUpdateRequest = call.body
    window = await maintenance.update_maintenance(
        call.rt,
        call.maintenance_id,
        message=body.message,
        status=MaintenanceStatus(body.status) if body.status else None,
        by=call.principal,
    )
    return _json(s.MaintenanceOut.of(window, call.rt.clock.now()))


async def add_note(call: Call) -> web.Response:
    body: s.NoteRequest = call.body
    await uc.add_internal_note(call.rt, call.incident_id, text=body.text, by=call.principal)
    return await _changed(call)


async def change_severity(call: Call) -> web.Response:
    body: s.SeverityRequest = call.body
    await uc.change_severity(
        call.rt, call.incident_id, body.severity, by=call.principal, reason=body.reason
    )
    return await _changed(call)


async def assign_role(call: Call) -> web.Response:
    body: s.RoleRequest = call.body
    await uc.assign_role(call.rt, call.incident_id, body.role, body.person, by=call.principal)
    return await _changed(call)


async def resolve(call: Call) -> web.Response:
    body: s.ResolveRequest = call.body
    await uc.resolve_incident(call.rt, call.incident_id, summary=body.summary, by=call.principal)
    return await _changed(call)


async def complete_rca(call: Call) -> web.Response:
    body: s.RcaRequest = call.body
    await uc.complete_rca(call.rt, call.incident_id, link=body.link, by=call.principal)
    return await _changed(call)


async def edit(call: Call) -> web.Response:
    body: s.EditRequest = call.body
    if all(v is None for v in (body.title, body.impact, body.service, body.category)):
        raise InvalidValue("body", "give at least one of title, impact, service, category")
    await uc.edit_incident(
        call.rt,
        call.incident_id,
        by=call.principal,
        title=body.title,
        impact=body.impact,
        service=body.service,
        category=body.category,
    )
    return await _changed(call)


async def cancel(call: Call) -> web.Response:
    body: s.CancelRequest = call.body
    await uc.cancel_incident(
        call.rt,
        call.incident_id,
        reason=Cancellation(body.reason),
        note=body.note,
        by=call.principal,
    )
    return await _changed(call)


async def reopen(call: Call) -> web.Response:
    body: s.ReopenRequest = call.body
    await uc.reopen_incident(
        call.rt,
        call.incident_id,
        reason=body.reason,
        status=Status(body.status),
        by=call.principal,
    )
    return await _changed(call)


async def merge(call: Call) -> web.Response:
    body: s.MergeRequest = call.body
    await uc.merge_incident(call.rt, call.incident_id, into=body.into, by=call.principal)
    return await _changed(call)


async def approve_step(call: Call) -> web.Response:
    step = call.request.match_info["step_id"]
    await uc.approve_step(call.rt, call.incident_id, step, by=call.principal)
    return await _changed(call)


async def list_follow_ups(call: Call) -> web.Response:
    view = await uc.get_incident(call.rt, call.incident_id)
    return _json(s.FollowUpList(follow_ups=[s.FollowUpOut.of(f) for f in view.follow_ups]))


async def add_follow_up(call: Call) -> web.Response:
    body: s.FollowUpRequest = call.body
    item = await uc.add_follow_up(
        call.rt,
        call.incident_id,
        title=body.title,
        owner=body.owner,
        due_at=body.due_at,
        by=call.principal,
    )
    return _json(s.FollowUpOut.of(item), status=201)


async def complete_follow_up(call: Call) -> web.Response:
    item = await uc.complete_follow_up(
        call.rt,
        call.incident_id,
        call.follow_up_id,
        by=call.principal,
    )
    return _json(s.FollowUpOut.of(item))


async def timeline_markdown(call: Call) -> web.Response:
    text = await exports.timeline_markdown(
        call.rt, call.request.app[CONTAINER].documents, call.incident_id
    )
    return _markdown(text)


async def postmortem(call: Call) -> web.Response:
    text = await exports.postmortem_draft(
        call.rt, call.request.app[CONTAINER].documents, call.incident_id
    )
    return _markdown(text)


def _markdown(text: str) -> web.Response:
    return web.Response(text=text, content_type="text/markdown", charset="utf-8")


async def skip_step(call: Call) -> web.Response:
    body: s.SkipRequest = call.body
    step = call.request.match_info["step_id"]
    await uc.skip_step(call.rt, call.incident_id, step, reason=body.reason, by=call.principal)
    return await _changed(call)


async def snooze_step(call: Call) -> web.Response:
    body: s.SnoozeRequest = call.body
    await uc.snooze_step(
        call.rt,
        call.incident_id,
        call.request.match_info["step_id"],
        delay=timedelta(minutes=body.minutes),
        reason=body.reason,
        by=call.principal,
    )
    return await _changed(call)


_ONE = PREFIX + "/incidents/{incident_id}"
_WINDOW = PREFIX + "/maintenances/{maintenance_id}"
_STEP = _ONE + "/steps/{step_id}"
# `role` is the least role that may call an operation at all; the per-incident rule
# (`action`: commander rights for resolving, lowering severity ...) is checked by the handler.
_R = AccessRole.RESPONDER

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "POST",
        PREFIX + "/incidents",
        "declareIncident",
        "Declare an incident and start its severity's playbook",
        declare,
        _R,
        body=s.DeclareRequest,
        response=s.Declared,
        status=201,
        idempotency_key=True,
    ),
    Operation(
        "GET",
        PREFIX + "/incidents",
        "listIncidents",
        "List incidents, newest first",
        list_all,
        AccessRole.VIEWER,
        response=s.IncidentList,
        query=(
            (
                "status",
                _listed(STATUSES),
                f"only these statuses, of {', '.join(STATUSES)} (repeat or comma-join)",
            ),
            (
                "severity",
                _listed(SEVERITIES),
                "only these severities, of P1-P4 (repeat or comma-join)",
            ),
        ),
    ),
    Operation(
        "GET",
        _ONE,
        "getIncident",
        "One incident with its timeline and upcoming steps with due times",
        show,
        AccessRole.VIEWER,
        response=s.IncidentDetail,
    ),
    Operation(
        "GET",
        _ONE + "/timeline",
        "getTimeline",
        "The incident's timeline, oldest first, optionally of some kinds or public only",
        timeline,
        AccessRole.VIEWER,
        response=s.Timeline,
        query=(
            (
                "kind",
                {
                    "type": "array",
                    "items": {"type": "string", "pattern": r"^[a-z0-9_]{1,40}(,[a-z0-9_]{1,40})*$"},
                },
                "only entries of these kinds, e.g. customer_update, step_skipped "
                "(repeat or comma-join)",
            ),
            ("public", {"type": "boolean"}, "true: only what customers were shown"),
        ),
    ),
    Operation(
        "POST",
        _ONE + "/acknowledge",
        "acknowledgeIncident",
        "Acknowledge: stops re-paging",
        acknowledge,
        _R,
        body=s.AcknowledgeRequest,
        body_optional=True,
        response=s.IncidentChanged,
    ),
    Operation(
        "POST",
        _ONE + "/updates",
        "postCustomerUpdate",
        "Post a customer-facing update (and optionally a new status)",
        post_update,
        _R,
        body=s.CustomerUpdateRequest,
        response=s.IncidentChanged,
    ),
    Operation(
        "POST",
        _ONE + "/status",
        "changeStatus",
        "Move the incident between investigating, identified and monitoring",
        change_status,
        _R,
        body=s.StatusRequest,
        response=s.IncidentChanged,
    ),
    Operation(
        "PUT",
        _ONE + "/components",
        "setComponents",
        "Set the status of the components the incident affects (public status page)",
        set_components,
        _R,
        body=s.ComponentsRequest,
        response=s.IncidentChanged,
    ),
    Operation(
        "PUT",
        _ONE + "/public-title",
        "setPublicTitle",
        "Set the name customers see on the status page",
        set_public_title,
        _R,
        body=s.PublicTitleRequest,
        response=s.IncidentChanged,
    ),
    Operation(
        "POST",
        _ONE + "/notes",
        "addInternalNote",
        "Add an internal note to the timeline",
        add_note,
        _R,
        body=s.NoteRequest,
        response=s.IncidentChanged,
    ),
    Operation(
        "POST",
        _ONE + "/severity",
        "changeSeverity",
        "Change the severity (lowering it needs the commander); swaps the playbook",
        change_severity,
        _R,
        body=s.SeverityRequest,
        response=s.IncidentChanged,
        action=Action.LOWER_SEVERITY,
    ),
    Operation(
        "POST",
        _ONE + "/roles",
        "assignRole",
        "Assign the incident commander or communications lead",
        assign_role,
        _R,
        body=s.RoleRequest,
        response=s.IncidentChanged,
        action=Action.ASSIGN_ROLE,
    ),
    Operation(
        "POST",
        _ONE + "/resolve",
        "resolveIncident",
        "Resolve: stops the cadence and starts the RCA deadline",
        resolve,
        _R,
        body=s.ResolveRequest,
        response=s.IncidentChanged,
        action=Action.RESOLVE,
    ),
    Operation(
        "POST",
        _ONE + "/rca",
        "completeRca",
        "Mark the RCA done (closes the incident)",
        complete_rca,
        _R,
        body=s.RcaRequest,
        response=s.IncidentChanged,
        action=Action.COMPLETE_RCA,
    ),
    Operation(
        "PATCH",
        _ONE,
        "editIncident",
        "Correct the title, impact, service or category (a new category re-routes it)",
        edit,
        _R,
        body=s.EditRequest,
        response=s.IncidentChanged,
        action=Action.EDIT,
    ),
    Operation(
        "POST",
        _ONE + "/cancel",
        "cancelIncident",
        "Cancel as a false alarm or declined: the playbook stops, pages are resolved, the "
        "status page withdraws it, no RCA is due",
        cancel,
        _R,
        body=s.CancelRequest,
        response=s.IncidentChanged,
        action=Action.CANCEL,
    ),
    Operation(
        "POST",
        _ONE + "/reopen",
        "reopenIncident",
        "Reopen a resolved incident: its cadence resumes; resolving it again runs the "
        "resolution steps again",
        reopen,
        _R,
        body=s.ReopenRequest,
        response=s.IncidentChanged,
        action=Action.REOPEN,
    ),
    Operation(
        "POST",
        _ONE + "/merge",
        "mergeIncident",
        "Merge this duplicate into another incident (commander rights on both): it is "
        "cancelled, its pages resolved; the other takes its components and alert groups",
        merge,
        _R,
        body=s.MergeRequest,
        response=s.IncidentChanged,
        action=Action.MERGE,
    ),
    Operation(
        "GET",
        _ONE + "/follow-ups",
        "listFollowUps",
        "The incident's follow-up action items",
        list_follow_ups,
        AccessRole.VIEWER,
        response=s.FollowUpList,
    ),
    Operation(
        "POST",
        _ONE + "/follow-ups",
        "addFollowUp",
        "Add a follow-up action item: reminded to its owner a day before it is due, then "
        "daily until done",
        add_follow_up,
        _R,
        body=s.FollowUpRequest,
        response=s.FollowUpOut,
        status=201,
        action=Action.FOLLOW_UPS,
    ),
    Operation(
        "POST",
        _ONE + "/follow-ups/{follow_up_id}/done",
        "completeFollowUp",
        "Mark a follow-up action item done: its reminders stop",
        complete_follow_up,
        _R,
        body=s.FollowUpDoneRequest,
        body_optional=True,
        response=s.FollowUpOut,
        action=Action.FOLLOW_UPS,
    ),
    Operation(
        "GET",
        _ONE + "/timeline.md",
        "exportTimeline",
        "The whole timeline as a Markdown document",
        timeline_markdown,
        AccessRole.VIEWER,
        markdown=True,
    ),
    Operation(
        "GET",
        _ONE + "/postmortem",
        "postmortemDraft",
        "A postmortem (RCA) draft in Markdown, pre-filled from the facts, for the commander "
        "to complete",
        postmortem,
        AccessRole.VIEWER,
        markdown=True,
    ),
    Operation(
        "POST",
        _STEP + "/approve",
        "approveStep",
        "Approve a customer-facing text held for approval (it goes out now), or an "
        "upcoming one ahead of time",
        approve_step,
        _R,
        body=s.ApproveRequest,
        body_optional=True,
        response=s.IncidentChanged,
        action=Action.APPROVE_STEPS,
    ),
    Operation(
        "POST",
        _STEP + "/skip",
        "skipStep",
        "Skip the next occurrence of a step, with a reason",
        skip_step,
        _R,
        body=s.SkipRequest,
        response=s.IncidentChanged,
        action=Action.MANAGE_STEPS,
    ),
    Operation(
        "POST",
        _STEP + "/snooze",
        "snoozeStep",
        "Postpone the next occurrence of a step, with a reason",
        snooze_step,
        _R,
        body=s.SnoozeRequest,
        response=s.IncidentChanged,
        action=Action.MANAGE_STEPS,
    ),
    Operation(
        "POST",
        PREFIX + "/maintenances",
        "scheduleMaintenance",
        "Schedule a maintenance window (shown on the public status page)",
        schedule_maintenance,
        _R,
        body=s.MaintenanceRequest,
        response=s.MaintenanceOut,
        status=201,
    ),
    Operation(
        "GET",
        PREFIX + "/maintenances",
        "listMaintenances",
        "Maintenance windows ending in the last 30 days or later, soonest first",
        list_maintenances,
        AccessRole.VIEWER,
        response=s.MaintenanceList,
    ),
    Operation(
        "GET",
        _WINDOW,
        "getMaintenance",
        "One maintenance window with its updates",
        show_maintenance,
        AccessRole.VIEWER,
        response=s.MaintenanceOut,
    ),
    Operation(
        "POST",
        _WINDOW + "/updates",
        "updateMaintenance",
        "Post an update to a maintenance window, optionally moving its status",
        update_maintenance,
        _R,
        body=s.MaintenanceUpdateRequest,
        response=s.MaintenanceOut,
    ),
    Operation(
        "GET",
        PREFIX + "/outbox",
        "listOutbox",
        "The newest messages the outbox kept (rendered pages, chat, e-mails with their "
        "addresses, status page and customer texts), oldest first",
        outbox,
        _R,
        response=s.OutboxList,
        query=(
            (
                "incident",
                {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                "only this incident's",
            ),
            (
                "limit",
                {"type": "integer", "minimum": 1, "maximum": OUTBOX_LIMIT, "default": 100},
                "at most this many, the newest",
            ),
        ),
    ),
    Operation(
        "GET",
        PREFIX + "/me",
        "whoAmI",
        "Who this token acts as: its name (the one on the timeline) and role",
        whoami,
        AccessRole.VIEWER,
        response=s.Caller,
    ),
)


# Support cases' and incident candidates' operations live with their handlers
# (web/case_api.py, web/candidate_api.py); one table serves them all.
OPERATIONS = OPERATIONS + CASE_OPERATIONS + CANDIDATE_OPERATIONS


# --- plumbing ------------------------------------------------------------------------------


async def _body(request: web.Request, op: Operation) -> Any:
    assert op.body is not None
    raw = await request.read()
    if not raw.strip():
        if op.body_optional:
            return op.body()
        raise ApiError(400, "bad request", f"send a JSON object ({op.body.__name__}) as the body")
    if request.content_type != "application/json":
        raise ApiError(
            415,
            "unsupported media type",
            f"the body must be application/json, not {request.content_type!r}",
        )
    try:
        return op.body.model_validate_json(raw)
    except ValidationError as error:
        if any(e["type"] == "json_invalid" for e in error.errors()):
            raise ApiError(400, "malformed JSON", "the body is not valid JSON") from None
        raise ApiError(422, "invalid value", validation_detail(error)) from None


def _route(op: Operation) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        principal = authenticate(request, at_least=op.role)
        body = await _body(request, op) if op.body is not None else None
        unknown = set(request.query) - {name for name, _, _ in op.query}
        if unknown:
            raise InvalidValue(
                "query", f"unknown parameters {sorted(unknown)} for {op.method} {op.path}"
            )
        rt = request.app[CONTAINER].runtime
        return await op.handler(Call(request=request, rt=rt, principal=principal, body=body))

    handle.__name__ = op.operation_id
    return handle


def _aiohttp_path(path: str) -> str:
    # Only digits reach the handler as an incident id; anything else is an unknown route.
    return (
        path.replace("{incident_id}", r"{incident_id:\d{1,20}}")
        .replace("{maintenance_id}", r"{maintenance_id:\d{1,20}}")
        .replace("{follow_up_id}", r"{follow_up_id:\d{1,20}}")
        .replace("{case_id}", r"{case_id:\d{1,20}}")
        .replace("{candidate_id}", r"{candidate_id:\d{1,20}}")
        .replace("{step_id}", r"{step_id:[A-Za-z0-9_.@-]{1,120}}")
    )


def add_routes(app: web.Application) -> None:
    from incident.web.openapi import openapi_document

    # One resource per path, whatever the order of the table: the JSON fallbacks answer a
    # method no route of a path takes with 405, per resource.
    resources: dict[str, web.Resource] = {}
    for op in OPERATIONS:
        path = _aiohttp_path(op.path)
        resource = resources.get(path) or resources.setdefault(path, app.router.add_resource(path))
        resource.add_route(op.method, guarded(_route(op)))

    async def openapi(request: web.Request) -> web.Response:
        settings = request.app[CONTAINER].settings
        return web.json_response(openapi_document(settings.base_url, settings.catalog))

    app.router.add_get(PREFIX + "/openapi.json", guarded(openapi))
