"""The dashboard's support-case pages under /ui/cases: the queues by level, one case with
its forms, and the form that opens a case. Each form calls the use case the API calls
(`incident.services.cases`), its fields checked by the API's request models and turned into
domain input as the API does it (`case_forms`); who may do what is the use cases' rule.

The same patterns as the incident pages (routes.py): post/redirect/get with the session's
CSRF token, no script needed, and a refused change shows the page again with the reason
(every missing context field of a refused escalation listed) and a 4xx, what was typed
kept, nothing changed. What a change's view has to tell the person (`CaseView.notice`: a
CEO request turned into a CIO escalation) crosses the redirect in a short-lived cookie
signed for the session, so the page shows the use case's own words and no text ever
comes from the URL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from incident.domain.access import Principal
from incident.domain.case import CaseStatus
from incident.domain.case_access import CaseRight
from incident.domain.case_context import ContextRefused
from incident.domain.case_routing import Level
from incident.domain.errors import DomainError, Forbidden, NotFound
from incident.services import case_links as links
from incident.services import cases as uc
from incident.services.cases import CaseView, Support
from incident.web.case_api import case_change, escalation_request, new_case
from incident.web.context import CONTAINER
from incident.web.dashboard import case_forms as cf
from incident.web.dashboard import case_pages as cp
from incident.web.dashboard import pages
from incident.web.dashboard.forms import Form, FormInvalid
from incident.web.dashboard.routes import (
    _CSRF_REFUSED,
    SESSIONS,
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
from incident.web.dashboard.sessions import Session, SessionKeys
from incident.web.errors import domain_status, guarded

CASES = "/ui/cases"
NEW_CASE = CASES + "/new"
# Open cases the queue page reads (the longest-open first), at most; those waiting for
# their customer's confirmation are listed too, marked.
QUEUE_LIMIT = 500
QUEUED = (CaseStatus.OPEN, CaseStatus.PENDING)
NOTICE_COOKIE = "incident_case_notice"
NOTICE_SECONDS = 300
_NOTICE_MOST = 1000  # characters shown of a notice


def add_case_routes(app: web.Application) -> None:
    app.router.add_get(CASES, guarded(queue))
    # Before the case's own route, which would otherwise take this path.
    app.router.add_get(NEW_CASE, guarded(new_case_form))
    app.router.add_post(NEW_CASE, guarded(open_case))
    app.router.add_get(CASES + "/{case_id}", guarded(case_page))
    app.router.add_post(CASES + "/{case_id}/{action}", guarded(act))


def _support(request: web.Request) -> Support:
    return request.app[CONTAINER].support


def _case_id(request: web.Request) -> int | None:
    return path_id(request, "case_id")


def _no_such(request: web.Request) -> str:
    return f"There is no case {request.match_info.get('case_id', '')!r}."


def _done(request: web.Request) -> str:
    name = request.query.get("done", "")
    form = CHANGES.get(name)
    return form.done if form is not None else _DONE_ELSEWHERE.get(name, "")


_DONE_ELSEWHERE = {"open": "Case opened; the rules have routed it."}


# --- the queues ------------------------------------------------------------------------------


async def queue(request: web.Request) -> web.Response:
    """Open cases by level, the most urgent first in each, with their response clocks."""
    session = await _session(request)
    if session is None:
        return _to_login(request)
    sp = _support(request)
    found = await uc.list_cases(sp, statuses=QUEUED, limit=QUEUE_LIMIT)
    etag = pages.fingerprint("cases", session.principal, session.nonce, cp.queue_fingerprint(found))
    unchanged = _not_modified(request, etag)
    if unchanged is not None:
        return unchanged
    now = sp.rt.clock.now()
    return _page(
        "cases.html",
        nav="cases",
        etag=etag,
        refresh_url=CASES,
        session=session,
        now=now,
        queues=cp.queues(found, sp.playbook.ladder, now),
        total=len(found),
        more=len(found) >= QUEUE_LIMIT,
        can_open=cp.may(sp.roles, session.principal, CaseRight.WORK),
        sla_labels=cp.SLA_LABELS,
        status_words=cp.STATUS_WORDS,
    )


# --- one case --------------------------------------------------------------------------------


async def case_page(request: web.Request) -> web.Response:
    session = await _session(request)
    if session is None:
        return _to_login(request)
    case_id = _case_id(request)
    if case_id is None:
        return _problem(request, 404, "Not found", _no_such(request), session)
    notice = _take_notice(request, session, case_id)
    response = await _show(request, session, case_id, done=_done(request), notice=notice)
    if NOTICE_COOKIE in request.cookies:
        response.del_cookie(NOTICE_COOKIE, path=_notice_path(case_id))
    return response


@dataclass(frozen=True)
class Refusal:
    """Why a form was refused, as the page shows it again."""

    status: int
    error: str
    problems: tuple[tuple[str, str], ...] = ()  # (field, problem), each listed
    invalid: frozenset[str] = frozenset()
    draft: pages.Draft | None = None


async def _show(
    request: web.Request,
    session: Session,
    case_id: int,
    *,
    refusal: Refusal | None = None,
    done: str = "",
    notice: str = "",
) -> web.Response:
    sp = _support(request)
    try:
        view = await uc.read_case(sp, case_id, by=session.principal)
    except NotFound:
        return _problem(request, 404, "Not found", _no_such(request), session)
    etag = pages.fingerprint("case", session.principal, session.nonce, cp.case_fingerprint(view))
    status = refusal.status if refusal is not None else 200
    if status == 200 and not notice:
        unchanged = _not_modified(request, etag)
        if unchanged is not None:
            return unchanged
    now = sp.rt.clock.now()
    refused = refusal or Refusal(200, "")
    automatic, suggested = cp.routes_by_mode(view.routes)
    return _page(
        "case.html",
        nav="cases",
        status=status,
        etag=etag,
        refresh_url=f"{CASES}/{case_id}",
        session=session,
        now=now,
        view=view,
        case=view.case,
        clock=cp.Clock.of(view.sla, now),
        automatic=automatic,
        suggested=suggested,
        decisions=cp.decisions(view.case),
        missing=cp.missing_context(view),
        context_rows=cp.context_rows(view.case.context),
        context_json=cp.context_json(view.case.context),
        escalation_levels=cp.escalation_levels(view.case),
        deescalation_levels=cp.deescalation_levels(view.case),
        can=cp.CasePermissions.of(sp.roles, session.principal, view.case),
        done=done,
        notice=notice,
        error=refused.error,
        problems=refused.problems,
        invalid=refused.invalid,
        draft=refused.draft or pages.Draft(),
        **cp.case_context(sp.playbook.ladder),
    )


# --- changes ---------------------------------------------------------------------------------

Change = Callable[[Support, Principal, int, Form], Awaitable[CaseView]]


async def _note(sp: Support, who: Principal, case_id: int, form: Form) -> CaseView:
    body = cf.progress(form)
    return await uc.record_progress(sp, case_id, body.note, to_customer=body.to_customer, by=who)


async def _confirm(sp: Support, who: Principal, case_id: int, form: Form) -> CaseView:
    return await uc.confirm_receipt(sp, case_id, by=who)


async def _escalate(sp: Support, who: Principal, case_id: int, form: Form) -> CaseView:
    request = escalation_request(cf.escalation(form))
    return await uc.escalate_case(sp, case_id, request, by=who)


async def _deescalate(sp: Support, who: Principal, case_id: int, form: Form) -> CaseView:
    body = cf.deescalation(form)
    return await uc.deescalate_case(sp, case_id, body.to, body.why, body.note, by=who)


async def _decide(sp: Support, who: Principal, case_id: int, form: Form) -> CaseView:
    body = cf.decision(form)
    level = Level(body.level)
    return await uc.decide(sp, case_id, level, approved=body.approved, note=body.note, by=who)


async def _resolve(sp: Support, who: Principal, case_id: int, form: Form) -> CaseView:
    body = cf.resolution(form)
    return await uc.resolve_case(sp, case_id, body.resolution, by=who)


async def _update(sp: Support, who: Principal, case_id: int, form: Form) -> CaseView:
    change = case_change(cf.changing(form))
    return await uc.update_case(sp, case_id, change, by=who)


async def _link(sp: Support, who: Principal, case_id: int, form: Form) -> CaseView:
    return await links.link_case(sp, case_id, cf.linking(form).incident, by=who)


async def _unlink(sp: Support, who: Principal, case_id: int, form: Form) -> CaseView:
    return await links.unlink_case(sp, case_id, by=who)


@dataclass(frozen=True)
class _Form:
    change: Change
    done: str  # what the page says after it (`?done=<form>`; only these words are shown)
    kept: tuple[str, ...] = ()  # fields whose refused input is shown again


_UPDATE_FIELDS = (
    "summary",
    "plan",
    "priority",
    "customer_email",
    "contacts",
    "disputed_amount",
    "csr",
    "usdt_amount",
    "flags",
    "crypto",
    "checklist",
    "expected_resolution_at",
    "category",
    "component",
    "context",
)
_MANY = frozenset({"flags", "checklist"})  # checkboxes of one name: kept space-separated

CHANGES: dict[str, _Form] = {
    "note": _Form(_note, "Recorded on the case.", ("note", "to_customer")),
    "confirm": _Form(_confirm, "Receipt confirmed: this level's response clock is met."),
    "escalate": _Form(
        _escalate,
        "Escalated: the receiving level is told, as its urgency says.",
        ("to", "reason", "cannot_wait", "urgency_note", "override"),
    ),
    "deescalate": _Form(
        _deescalate,
        "De-escalated: the agent and the customer are told who has the case now.",
        ("to", "why", "note"),
    ),
    "decide": _Form(_decide, "Decision recorded.", ("level", "verdict", "note")),
    "resolve": _Form(_resolve, "Resolved: the case's clocks have stopped.", ("resolution",)),
    "update": _Form(_update, "Case details saved.", _UPDATE_FIELDS),
    "link": _Form(
        _link,
        "Linked: the customer hears the incident's updates and its resolution, each once.",
        ("incident",),
    ),
    "unlink": _Form(_unlink, "Unlinked: nothing more of the incident reaches the customer."),
}


def _kept(form: Form, names: tuple[str, ...]) -> dict[str, str]:
    return {name: " ".join(form.every(name)) if name in _MANY else form.get(name) for name in names}


def refusal(error: DomainError, form_name: str, kept: dict[str, str]) -> Refusal:
    """The page's words for a refused form: a refused context or form lists every field."""
    draft = pages.Draft(form_name, kept)
    if isinstance(error, ContextRefused):
        problems = tuple((p.field, p.problem) for p in error.problems)
        # An update's context is the form's text area; an escalation's is the case's.
        invalid = frozenset({"context"}) if form_name == "update" else frozenset()
        words = (
            "The context is refused: each problem is listed below."
            if form_name == "update"
            else "The receiving level needs more than the case has. Fill in each of these "
            "(in the case's details), then escalate again; a manager may override it, "
            "with a reason:"
        )
        return Refusal(422, words, problems, invalid, draft)
    status, _ = domain_status(error)
    problems = tuple(error.problems) if isinstance(error, FormInvalid) else ()
    message = "Check these fields:" if problems else str(error)
    return Refusal(status, message, problems, _invalid_fields(error), draft)


async def act(request: web.Request) -> web.Response:
    """Any change to one case: check the session and the form's CSRF token, make the
    change, then back to the case (or the case again with the reason it was refused)."""
    case_id = _case_id(request)
    page = f"{CASES}/{case_id}" if case_id else CASES
    checked_post = await posted(request, case_id, CHANGES, page=page, done="changed")
    if isinstance(checked_post, web.Response):
        return checked_post
    session, name, spec, form = (
        checked_post.session,
        checked_post.name,
        checked_post.spec,
        checked_post.form,
    )
    assert case_id is not None
    try:
        view = await spec.change(_support(request), session.principal, case_id, form)
    except DomainError as error:
        refused = refusal(error, name, _kept(form, spec.kept))
        return await _show(request, session, case_id, refusal=refused)
    response = _redirect(f"{CASES}/{case_id}?done={name}")
    if view.notice:
        _give_notice(request, response, session, case_id, view.notice)
    return response


# --- the notice of a change, across its redirect ---------------------------------------------


def _notice_path(case_id: int) -> str:
    return f"{CASES}/{case_id}"


def _notice_signature(session: Session, case_id: int, value: str) -> str:
    """Signed with the session's CSRF token (a secret of the server and that session), so
    no other site or session can make a page show words of its choosing."""
    message = f"case notice\0{case_id}\0{value}".encode()
    return hmac.new(session.csrf.encode(), message, hashlib.sha256).hexdigest()[:32]


def _give_notice(
    request: web.Request, response: web.Response, session: Session, case_id: int, notice: str
) -> None:
    value = base64.urlsafe_b64encode(notice[:_NOTICE_MOST].encode()).decode().rstrip("=")
    response.set_cookie(
        NOTICE_COOKIE,
        f"{value}.{_notice_signature(session, case_id, value)}",
        path=_notice_path(case_id),
        max_age=NOTICE_SECONDS,
        httponly=True,
        samesite="Strict",
        secure=request.app[SESSIONS].secure,
    )


def _take_notice(request: web.Request, session: Session, case_id: int) -> str:
    value, _, signature = request.cookies.get(NOTICE_COOKIE, "").partition(".")
    expected = _notice_signature(session, case_id, value)
    if not value or not hmac.compare_digest(signature.encode(), expected.encode()):
        return ""
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return ""


# --- opening a case --------------------------------------------------------------------------

_OPEN_FIELDS = (
    "reference",
    "customer_id",
    "summary",
    "plan",
    "priority",
    "customer_email",
    "contacts",
    "disputed_amount",
    "csr",
    "usdt_amount",
    "flags",
    "crypto",
    "category",
    "component",
)


def _new_case_page(
    request: web.Request, session: Session, refusal: Refusal | None = None
) -> web.Response:
    sp = _support(request)
    refused = refusal or Refusal(200, "")
    return _page(
        "case_new.html",
        nav="cases",
        status=refused.status,
        etag="",  # a form to fill in: not refreshed
        session=session,
        now=sp.rt.clock.now(),
        error=refused.error,
        problems=refused.problems,
        invalid=refused.invalid,
        draft=refused.draft or pages.Draft(),
        **cp.case_context(sp.playbook.ladder),
    )


async def new_case_form(request: web.Request) -> web.Response:
    session = await _session(request)
    if session is None:
        return _to_login(request)
    try:
        _support(request).roles.check(session.principal, CaseRight.WORK)
    except Forbidden as error:
        return _problem(request, 403, "Not allowed", str(error), session)
    return _new_case_page(request, session)


async def open_case(request: web.Request) -> web.Response:
    """Open a case from the form: the API's request model checks it, the API's use case
    opens and routes it, then to the new case's page."""
    session = await _session(request)
    if session is None:
        return _problem(
            request,
            401,
            "Logged out",
            "Your session has ended, so nothing was opened. Log in and try again.",
            None,
            login_next=NEW_CASE,
        )
    form = Form(await request.post())
    if not SessionKeys.csrf_matches(session.csrf, form.get("csrf")):
        return _problem(request, 403, "Not opened", _CSRF_REFUSED, session)
    sp = _support(request)
    try:
        case = new_case(cf.opening(form), sp.rt.clock.now())
        view = await uc.open_case(sp, case, by=session.principal)
    except Forbidden as error:
        return _problem(request, 403, "Not opened", str(error), session)
    except DomainError as error:
        return _new_case_page(request, session, refusal(error, "open", _kept(form, _OPEN_FIELDS)))
    return _redirect(f"{CASES}/{view.case.id}?done=open")
