"""The REST API of support cases, /api/v1/cases: operations in the API's one table
(`incident.web.api.OPERATIONS`), so the routes and the OpenAPI document agree.

Linking a case to an incident (`/cases/{id}/link`, `/unlink`) and an incident's cases
(`/incidents/{id}/cases`) are here too: they are the case use cases'.

Anyone with a token may call them; what each person may do is the use cases' rule, on
their support role (`incident.domain.case_access`): the CIO alone routes to the CEO,
managers alone override the context gate, approvals by the named approver.
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from incident.domain.access import AccessRole
from incident.domain.case import Case, CaseChange, CaseStatus
from incident.domain.case_context import clean_checklist, clean_context
from incident.domain.case_routing import Level
from incident.domain.errors import InvalidValue
from incident.services import case_links as links
from incident.services import cases as uc
from incident.services.cases import CaseView, EscalationRequest, Support
from incident.web import case_schemas as cs
from incident.web.context import CONTAINER
from incident.web.operations import Call, Operation

CASES = "/api/v1/cases"
ONE_CASE = CASES + "/{case_id}"
INCIDENT_CASES = "/api/v1/incidents/{incident_id}/cases"
LIST_LIMIT = 500
MAX_OFFSET = 1_000_000  # beyond any queue; and within the databases' integers


def _support(call: Call) -> Support:
    return call.request.app[CONTAINER].support


def _detail(view: CaseView, status: int = 200) -> web.Response:
    return web.json_response(cs.CaseDetail.of(view).model_dump(mode="json"), status=status)


def new_case(body: cs.OpenCaseRequest, now: datetime) -> Case:
    """The case a request opens (its context and checklist by the domain's one rule); the
    use case stamps who opened it and when."""
    return Case(
        reference=body.reference,
        customer_id=body.customer_id,
        summary=body.summary,
        plan=body.plan,
        priority=body.priority,
        opened_at=now,
        opened_by="",
        customer_email=body.customer_email,
        contacts=body.contacts,
        disputed_amount=body.disputed_amount,
        csr=body.csr,
        usdt_amount=body.usdt_amount,
        flags=frozenset(body.flags),
        crypto=body.crypto,
        context=clean_context(body.context),
        checklist=clean_checklist([c.value for c in body.checklist]),
        category=body.category,
        component=body.component,
    )


def case_change(body: cs.UpdateCaseRequest) -> CaseChange:
    fields = body.model_dump(exclude_unset=True)
    if not fields:
        raise InvalidValue("(body)", "give at least one field to change")
    if body.context is not None:
        fields["context"] = clean_context(body.context)
    if body.checklist is not None:
        fields["checklist"] = clean_checklist([c.value for c in body.checklist])
    if body.flags is not None:
        fields["flags"] = frozenset(body.flags)
    for name in ("plan", "priority"):
        if fields.get(name) is None:
            fields.pop(name, None)
    return CaseChange(**{k: v for k, v in fields.items() if v is not None})


def escalation_request(body: cs.EscalateRequest) -> EscalationRequest:
    """The use case's request from the API's (and the dashboard's, and Slack's) body."""
    return EscalationRequest(
        to=body.to,
        reason=body.reason,
        urgency=body.urgency,
        urgency_note=body.urgency_note,
        override=body.override,
    )


# --- handlers ----------------------------------------------------------------------------------


async def open_case(call: Call) -> web.Response:
    support = _support(call)
    case = new_case(call.body, support.rt.clock.now())
    view = await uc.open_case(support, case, by=call.principal)
    return _detail(view, 201)


async def list_cases(call: Call) -> web.Response:
    query = call.request.query
    try:
        statuses = [CaseStatus(v) for v in query.getall("status", [])]
        levels = [Level(v) for v in query.getall("level", [])]
        limit = int(query.get("limit", "100"))
        offset = int(query.get("offset", "0"))
    except ValueError as error:
        raise InvalidValue("query", f"{error}; see the OpenAPI document") from None
    if not 1 <= limit <= LIST_LIMIT or not 0 <= offset <= MAX_OFFSET:
        raise InvalidValue("query", f"limit is 1-{LIST_LIMIT}, offset 0-{MAX_OFFSET:,}")
    found = await uc.list_cases(
        _support(call), statuses=statuses, levels=levels, limit=limit, offset=offset
    )
    body = cs.CaseList(
        cases=[
            cs.CaseSummaryOut(
                case=cs.CaseOut.of(case),
                sla=cs.SlaOut(state=sla.state, due=sla.due, used_percent=round(sla.used * 100)),
            )
            for case, sla in found
        ]
    )
    return web.json_response(body.model_dump(mode="json"))


async def show_case(call: Call) -> web.Response:
    return _detail(await uc.read_case(_support(call), call.case_id, by=call.principal))


async def update_case(call: Call) -> web.Response:
    change = case_change(call.body)
    return _detail(await uc.update_case(_support(call), call.case_id, change, by=call.principal))


async def record_progress(call: Call) -> web.Response:
    body: cs.ProgressRequest = call.body
    view = await uc.record_progress(
        _support(call), call.case_id, body.note, to_customer=body.to_customer, by=call.principal
    )
    return _detail(view)


async def escalate(call: Call) -> web.Response:
    request = escalation_request(call.body)
    return _detail(await uc.escalate_case(_support(call), call.case_id, request, by=call.principal))


async def confirm(call: Call) -> web.Response:
    return _detail(await uc.confirm_receipt(_support(call), call.case_id, by=call.principal))


async def deescalate(call: Call) -> web.Response:
    body: cs.DeescalateRequest = call.body
    view = await uc.deescalate_case(
        _support(call), call.case_id, body.to, body.why, body.note, by=call.principal
    )
    return _detail(view)


async def decide(call: Call) -> web.Response:
    body: cs.DecisionRequest = call.body
    view = await uc.decide(
        _support(call),
        call.case_id,
        Level(body.level),
        approved=body.approved,
        note=body.note,
        by=call.principal,
    )
    return _detail(view)


async def resolve(call: Call) -> web.Response:
    body: cs.ResolveCaseRequest = call.body
    view = await uc.resolve_case(_support(call), call.case_id, body.resolution, by=call.principal)
    return _detail(view)


async def link(call: Call) -> web.Response:
    body: cs.LinkCaseRequest = call.body
    view = await links.link_case(_support(call), call.case_id, body.incident, by=call.principal)
    return _detail(view)


async def unlink(call: Call) -> web.Response:
    return _detail(await links.unlink_case(_support(call), call.case_id, by=call.principal))


async def incident_cases(call: Call) -> web.Response:
    linked = await links.linked_cases(_support(call), call.incident_id)
    return web.json_response(cs.LinkedCaseList.of(linked).model_dump(mode="json"))


_LEVELS = [level.value for level in Level]

CASE_OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "POST",
        CASES,
        "openCase",
        "Open a support case for a helpdesk ticket; the rules route it at once.",
        open_case,
        AccessRole.VIEWER,
        body=cs.OpenCaseRequest,
        response=cs.CaseDetail,
        status=201,
    ),
    Operation(
        "GET",
        CASES,
        "listCases",
        "Cases, the longest-open first, with their response clocks (a queue per level).",
        list_cases,
        AccessRole.VIEWER,
        response=cs.CaseList,
        query=(
            ("status", [s.value for s in CaseStatus], "Only cases in these statuses."),
            ("level", _LEVELS, "Only cases at these levels (a level's queue)."),
            ("limit", {"type": "integer", "minimum": 1, "maximum": LIST_LIMIT}, "At most."),
            ("offset", {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET}, "Skip this many."),
        ),
    ),
    Operation(
        "GET",
        ONE_CASE,
        "getCase",
        "A case with its clocks, routes, missing context, upcoming steps and timeline.",
        show_case,
        AccessRole.VIEWER,
        response=cs.CaseDetail,
    ),
    Operation(
        "PATCH",
        ONE_CASE,
        "updateCase",
        "Change a case's facts (contacts, amounts, flags, priority, plan, context ...).",
        update_case,
        AccessRole.VIEWER,
        body=cs.UpdateCaseRequest,
        response=cs.CaseDetail,
    ),
    Operation(
        "POST",
        ONE_CASE + "/progress",
        "recordCaseProgress",
        "Record work on the case (or an answer sent to the customer).",
        record_progress,
        AccessRole.VIEWER,
        body=cs.ProgressRequest,
        response=cs.CaseDetail,
    ),
    Operation(
        "POST",
        ONE_CASE + "/escalate",
        "escalateCase",
        "Escalate: refused with every missing context field named, unless a manager "
        "overrides; the CEO only from the CIO.",
        escalate,
        AccessRole.VIEWER,
        body=cs.EscalateRequest,
        response=cs.CaseDetail,
    ),
    Operation(
        "POST",
        ONE_CASE + "/confirm",
        "confirmCaseReceipt",
        "The receiving level confirms it has the case.",
        confirm,
        AccessRole.VIEWER,
        body=cs.ConfirmRequest,
        body_optional=True,
        response=cs.CaseDetail,
    ),
    Operation(
        "POST",
        ONE_CASE + "/deescalate",
        "deescalateCase",
        "Send the case back down, with a reason; the agent and the customer are told.",
        deescalate,
        AccessRole.VIEWER,
        body=cs.DeescalateRequest,
        response=cs.CaseDetail,
    ),
    Operation(
        "POST",
        ONE_CASE + "/decisions",
        "decideCase",
        "The CIO's or the CEO's decision, by that named approver.",
        decide,
        AccessRole.VIEWER,
        body=cs.DecisionRequest,
        response=cs.CaseDetail,
    ),
    Operation(
        "POST",
        ONE_CASE + "/resolve",
        "resolveCase",
        "Resolve the case (refused while a required decision is missing).",
        resolve,
        AccessRole.VIEWER,
        body=cs.ResolveCaseRequest,
        response=cs.CaseDetail,
    ),
    Operation(
        "POST",
        ONE_CASE + "/link",
        "linkCase",
        "Link the case to an open incident (404 if there is none, 409 if it is not open or "
        "the case is linked to it already): its customer hears the incident's updates and "
        "its resolution, each once, as steps of the case.",
        link,
        AccessRole.VIEWER,
        body=cs.LinkCaseRequest,
        response=cs.CaseDetail,
    ),
    Operation(
        "POST",
        ONE_CASE + "/unlink",
        "unlinkCase",
        "Unlink the case from its incident: what the customer was not sent yet is not sent "
        "(409 if it is not linked).",
        unlink,
        AccessRole.VIEWER,
        body=cs.UnlinkCaseRequest,
        body_optional=True,
        response=cs.CaseDetail,
    ),
    Operation(
        "GET",
        INCIDENT_CASES,
        "listIncidentCases",
        "The support cases linked to an incident (resolved ones too), and how many distinct "
        "customers they are of.",
        incident_cases,
        AccessRole.VIEWER,
        response=cs.LinkedCaseList,
    ),
)
