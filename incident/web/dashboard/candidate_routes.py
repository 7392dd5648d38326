"""The dashboard's incident candidates under /ui/candidates: the candidates (the ones waiting
for a decision first, then those decided), and one candidate with its evidence and the
forms that decide it: declare an incident (the suggested severity preselected, a title if
wanted), link its cases to an open incident instead, or dismiss it with a reason.

Each form is checked by the API's own request model (`candidate_schemas`, through
`forms.checked`) and calls the use case the API calls (`incident.services.patterns`), so a
title or a reason is judged by the one rule whatever the door. The same patterns as the
other pages: post/redirect/get with the session's CSRF token, no script needed, the forms
shown only to those who may declare (the domain's `authorize`, the use cases' rule); a
refused form shows the page again with the reason and a 4xx, what was typed kept, nothing
changed. A declaration leads to the incident's page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from incident.domain.access import Principal
from incident.domain.errors import DomainError, NotFound
from incident.domain.incident import OPEN_STATUSES
from incident.domain.patterns import CandidateStatus
from incident.services import incidents as uc
from incident.services.patterns import Patterns
from incident.web import candidate_schemas as ks
from incident.web.context import CONTAINER
from incident.web.dashboard import candidate_pages as kp
from incident.web.dashboard import pages
from incident.web.dashboard.forms import Form, FormInvalid, checked
from incident.web.dashboard.routes import (
    _invalid_fields,
    _not_modified,
    _page,
    _problem,
    _redirect,
    _session,
    _to_login,
    path_id,
    posted,
)
from incident.web.dashboard.sessions import Session
from incident.web.errors import domain_status, guarded

CANDIDATES = "/ui/candidates"
WAITING_LIMIT = 200  # candidates waiting for a decision the page lists, at most
DECIDED_LIMIT = 50  # and the latest decided ones
OPEN_INCIDENTS_LIMIT = 100  # the open incidents offered to link a candidate's cases to


def add_candidate_routes(app: web.Application) -> None:
    app.router.add_get(CANDIDATES, guarded(candidates))
    app.router.add_get(CANDIDATES + "/{candidate_id}", guarded(candidate_page))
    app.router.add_post(CANDIDATES + "/{candidate_id}/{action}", guarded(act))


def _patterns(request: web.Request) -> Patterns:
    return request.app[CONTAINER].patterns


def _candidate_id(request: web.Request) -> int | None:
    return path_id(request, "candidate_id")


def _no_such(request: web.Request) -> str:
    return f"There is no incident candidate {request.match_info.get('candidate_id', '')!r}."


# --- the list --------------------------------------------------------------------------------


async def candidates(request: web.Request) -> web.Response:
    """The candidates waiting for a decision, newest first; then the latest decided."""
    session = await _session(request)
    if session is None:
        return _to_login(request)
    patterns = _patterns(request)
    waiting = await patterns.candidates_with_clusters(
        statuses=(CandidateStatus.PROPOSED,), limit=WAITING_LIMIT
    )
    decided = await patterns.candidates_with_clusters(
        statuses=(CandidateStatus.DECLARED, CandidateStatus.DISMISSED), limit=DECIDED_LIMIT
    )
    etag = pages.fingerprint(
        "candidates", session.principal, session.nonce, kp.list_fingerprint([*waiting, *decided])
    )
    unchanged = _not_modified(request, etag)
    if unchanged is not None:
        return unchanged
    return _page(
        "candidates.html",
        nav="candidates",
        etag=etag,
        refresh_url=CANDIDATES,
        session=session,
        now=patterns.support.rt.clock.now(),
        waiting=[kp.Row.of(c, cluster) for c, cluster in waiting],
        decided=[kp.Row.of(c, cluster) for c, cluster in decided],
        more_waiting=len(waiting) >= WAITING_LIMIT,
        status_words=kp.STATUS_WORDS,
        status_pills=kp.STATUS_PILLS,
    )


# --- one candidate ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """Why a form was refused, as the page shows it again."""

    status: int
    error: str
    problems: tuple[tuple[str, str], ...] = ()
    invalid: frozenset[str] = frozenset()
    draft: pages.Draft | None = None


async def candidate_page(request: web.Request) -> web.Response:
    session = await _session(request)
    if session is None:
        return _to_login(request)
    candidate_id = _candidate_id(request)
    if candidate_id is None:
        return _problem(request, 404, "Not found", _no_such(request), session)
    done = kp.DONE.get(request.query.get("done", ""), "")
    return await _show(request, session, candidate_id, done=done)


async def _show(
    request: web.Request,
    session: Session,
    candidate_id: int,
    *,
    refusal: Refusal | None = None,
    done: str = "",
) -> web.Response:
    patterns = _patterns(request)
    try:
        found = await patterns.evidence(candidate_id)
    except NotFound:
        return _problem(request, 404, "Not found", _no_such(request), session)
    may_decide = kp.may_decide(session.principal, found.candidate)
    open_incidents = (
        await uc.list_incidents(patterns.support.rt, statuses=OPEN_STATUSES) if may_decide else []
    )
    etag = pages.fingerprint(
        "candidate",
        session.principal,
        session.nonce,
        kp.evidence_fingerprint(found),
        tuple((i.id, i.title, i.severity) for i in open_incidents),
    )
    status = refusal.status if refusal is not None else 200
    if status == 200:
        unchanged = _not_modified(request, etag)
        if unchanged is not None:
            return unchanged
    refused = refusal or Refusal(200, "")
    return _page(
        "candidate.html",
        nav="candidates",
        status=status,
        etag=etag,
        refresh_url=f"{CANDIDATES}/{candidate_id}",
        session=session,
        now=patterns.support.rt.clock.now(),
        view=kp.CandidateView.of(found, patterns.rules),
        may_decide=may_decide,
        open_incidents=open_incidents[:OPEN_INCIDENTS_LIMIT],
        status_words=kp.STATUS_WORDS,
        status_pills=kp.STATUS_PILLS,
        done=done,
        error=refused.error,
        problems=refused.problems,
        invalid=refused.invalid,
        draft=refused.draft or pages.Draft(),
    )


# --- deciding --------------------------------------------------------------------------------

Decision = Callable[[Patterns, Principal, int, Form], Awaitable[str]]  # -> where to go next


async def _declare(patterns: Patterns, who: Principal, candidate_id: int, form: Form) -> str:
    """A new incident: the severity chosen (the suggested one preselected), the title if
    one was typed (empty: the candidate's own)."""
    fields = {name: form.get(name).strip() for name in ("severity", "title")}
    body = checked(ks.DeclareCandidateRequest, {k: v for k, v in fields.items() if v})
    _, incident_id = await patterns.declare(
        candidate_id, by=who, severity=body.severity, title=body.title
    )
    return f"/ui/incidents/{incident_id}?done=candidate"


async def _join(patterns: Patterns, who: Principal, candidate_id: int, form: Form) -> str:
    """Its cases linked to an open incident instead (INC-12 as people write it)."""
    body = checked(ks.DeclareCandidateRequest, {"incident": form.incident_ref("incident")})
    _, incident_id = await patterns.declare(candidate_id, by=who, incident_id=body.incident)
    return f"/ui/incidents/{incident_id}?done=candidate"


async def _dismiss(patterns: Patterns, who: Principal, candidate_id: int, form: Form) -> str:
    body = checked(ks.DismissCandidateRequest, {"reason": form.get("reason")})
    await patterns.dismiss(candidate_id, body.reason, by=who)
    return f"{CANDIDATES}/{candidate_id}?done=dismiss"


@dataclass(frozen=True)
class _Form:
    decide: Decision
    kept: tuple[str, ...]  # fields whose refused input is shown again


FORMS: dict[str, _Form] = {
    "declare": _Form(_declare, ("severity", "title")),
    "join": _Form(_join, ("incident",)),
    "dismiss": _Form(_dismiss, ("reason",)),
}


def refusal(error: DomainError, form_name: str, form: Form) -> Refusal:
    """The page's words for a refused form: every field the model refused, listed."""
    status, _ = domain_status(error)
    problems = tuple(error.problems) if isinstance(error, FormInvalid) else ()
    message = "Check these fields:" if problems else str(error)
    draft = pages.Draft(form_name, {name: form.get(name) for name in FORMS[form_name].kept})
    return Refusal(status, message, problems, _invalid_fields(error), draft)


async def act(request: web.Request) -> web.Response:
    """Declare, link or dismiss: check the session and the form's CSRF token, decide, then
    to the incident's page (or the candidate's, dismissed), or the candidate's page again
    with the reason it was refused."""
    candidate_id = _candidate_id(request)
    page = f"{CANDIDATES}/{candidate_id}" if candidate_id else CANDIDATES
    checked_post = await posted(request, candidate_id, FORMS, page=page, done="decided")
    if isinstance(checked_post, web.Response):
        return checked_post
    session, name, spec, form = (
        checked_post.session,
        checked_post.name,
        checked_post.spec,
        checked_post.form,
    )
    assert candidate_id is not None
    try:
        location = await spec.decide(_patterns(request), session.principal, candidate_id, form)
    except DomainError as error:
        # Shown on the candidate's page (no such candidate: the page says so, 404).
        return await _show(request, session, candidate_id, refusal=refusal(error, name, form))
    return _redirect(location)
