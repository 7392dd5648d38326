"""The REST API of incident candidates, /api/v1/candidates: incidents proposed when many
customers report one problem (`incident.services.patterns`). Operations in the API's one
table (`incident.web.api.OPERATIONS`), so the routes and the OpenAPI document agree.

Anyone with a token may look; declaring and dismissing need the right to declare an
incident (responder or more), the use cases' rule, checked again there.
"""

from __future__ import annotations

import re

from aiohttp import web

from incident.domain.access import AccessRole
from incident.domain.errors import InvalidValue
from incident.domain.patterns import CandidateStatus
from incident.services.patterns import Patterns
from incident.web import candidate_schemas as ks
from incident.web.case_schemas import LinkedIncidentOut
from incident.web.context import CONTAINER
from incident.web.operations import Call, Operation

CANDIDATES = "/api/v1/candidates"
ONE_CANDIDATE = CANDIDATES + "/{candidate_id}"
LIST_LIMIT = 500
STATUSES = [status.value for status in CandidateStatus]
_NUMBER = re.compile(r"[0-9]{1,6}")


def _patterns(call: Call) -> Patterns:
    return call.request.app[CONTAINER].patterns


def candidate_page(base_url: str, candidate_id: int) -> str:
    """The candidate's page on the dashboard, as the patterns channel's post names it."""
    return f"{base_url}/ui/candidates/{candidate_id}"


def statuses(values: list[str], *, where: str = "query parameter status") -> list[CandidateStatus]:
    """Candidate statuses as every door names them (proposed, declared, dismissed)."""
    found = []
    for value in values:
        try:
            found.append(CandidateStatus(value))
        except ValueError:
            raise InvalidValue(
                where, f"{value[:40]!r} is not a status; give {', '.join(STATUSES)}"
            ) from None
    return found


def _limit(call: Call) -> int:
    values = call.request.query.getall("limit", [])
    if not values:
        return 100
    text = values[0]
    if len(values) > 1 or not _NUMBER.fullmatch(text) or not 1 <= int(text) <= LIST_LIMIT:
        raise InvalidValue("query parameter limit", f"give one number from 1 to {LIST_LIMIT}")
    return int(text)


# --- handlers ----------------------------------------------------------------------------------


async def list_candidates(call: Call) -> web.Response:
    wanted = tuple(statuses(call.request.query.getall("status", [])))
    found = await _patterns(call).candidates(statuses=wanted, limit=_limit(call))
    body = ks.CandidateList(candidates=[ks.CandidateOut.of(c) for c in found])
    return web.json_response(body.model_dump(mode="json"))


async def show_candidate(call: Call) -> web.Response:
    found = await _patterns(call).evidence(call.candidate_id)
    page = candidate_page(call.request.app[CONTAINER].settings.base_url, call.candidate_id)
    return web.json_response(ks.CandidateDetail.of(found, page=page).model_dump(mode="json"))


async def declare(call: Call) -> web.Response:
    body: ks.DeclareCandidateRequest = call.body
    patterns = _patterns(call)
    before = await patterns.candidate(call.candidate_id)
    candidate, incident_id = await patterns.declare(
        call.candidate_id,
        by=call.principal,
        severity=body.severity,
        title=body.title,
        incident_id=body.incident,
    )
    # A new incident was declared by this request: it asked for none of its own, and the
    # candidate was still waiting. (Declaring again answers the same incident, 200.)
    created = body.incident is None and before.status is CandidateStatus.PROPOSED
    answer = ks.CandidateDeclared(
        candidate=ks.CandidateOut.of(candidate),
        incident=LinkedIncidentOut(id=incident_id, ref=f"INC-{incident_id}"),
        created=created,
    )
    return web.json_response(answer.model_dump(mode="json"), status=201 if created else 200)


async def dismiss(call: Call) -> web.Response:
    body: ks.DismissCandidateRequest = call.body
    candidate = await _patterns(call).dismiss(call.candidate_id, body.reason, by=call.principal)
    answer = ks.CandidateDismissed(candidate=ks.CandidateOut.of(candidate))
    return web.json_response(answer.model_dump(mode="json"))


CANDIDATE_OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "GET",
        CANDIDATES,
        "listCandidates",
        "Incident candidates, newest first: proposed when many customers report one "
        "problem, then declared or dismissed by a person.",
        list_candidates,
        AccessRole.VIEWER,
        response=ks.CandidateList,
        query=(
            ("status", STATUSES, "Only candidates in these statuses (repeat for several)."),
            ("limit", {"type": "integer", "minimum": 1, "maximum": LIST_LIMIT}, "At most."),
        ),
    ),
    Operation(
        "GET",
        ONE_CANDIDATE,
        "getCandidate",
        "A candidate with its evidence: every case of its cluster and how many distinct "
        "customers they are of, the signature (category, component, error codes), whether "
        "it is new, when it was first and last seen, the severity suggested and why, and "
        "the decision.",
        show_candidate,
        AccessRole.VIEWER,
        response=ks.CandidateDetail,
    ),
    Operation(
        "POST",
        ONE_CANDIDATE + "/declare",
        "declareCandidate",
        "Declare an incident for the candidate (its severity and title may be given) or "
        "use an open one (incident), and link every case of its cluster to it, so each "
        "customer hears its updates. Repeating it answers the same incident (200). 409 "
        "when it was dismissed, or declared as another incident; 404 when there is no "
        "such candidate or incident.",
        declare,
        AccessRole.RESPONDER,
        body=ks.DeclareCandidateRequest,
        body_optional=True,
        response=ks.CandidateDeclared,
        status=201,
        also_ok="An open incident was chosen, or the candidate was declared already.",
    ),
    Operation(
        "POST",
        ONE_CANDIDATE + "/dismiss",
        "dismissCandidate",
        "Not an incident: dismiss the candidate with a reason (409 when it was decided "
        "already). Its signature stays quiet for a while: new reports join it without "
        "proposing it again.",
        dismiss,
        AccessRole.RESPONDER,
        body=ks.DismissCandidateRequest,
        response=ks.CandidateDismissed,
    ),
)
