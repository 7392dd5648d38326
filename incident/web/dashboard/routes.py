"""The commander's dashboard under /ui: login with an API token, the open incidents, the
declare form, past incidents (searched and paged by the database), one incident's page, its
forms, each calling the use case the API calls after the same authorization (the new ones
also check their fields with the API's request models), and its Markdown documents.

Every change is a POST of an HTML form carrying the session's CSRF token, answered with a
redirect back to the page (post/redirect/get), so the dashboard works without script.
A refused change (not allowed, not possible now, bad input) shows the page again with
the reason and a 4xx status; what was typed stays in the form; nothing is stored.
"""

from __future__ import annotations

import logging
import math
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar
from urllib.parse import quote

from aiohttp import web

from incident.config import Settings
from incident.domain.access import Action, Principal, authorize
from incident.domain.errors import DomainError, Forbidden, InvalidValue, NotFound
from incident.domain.incident import Cancellation, Role, Status
from incident.services import case_links as links
from incident.services import exports, sessions, views
from incident.services import incidents as uc
from incident.services.incidents import Runtime
from incident.services.ports import Renderer
from incident.web import schemas as s
from incident.web.auth import client_of
from incident.web.context import CONTAINER, FAILED_LOGINS
from incident.web.dashboard import pages
from incident.web.dashboard.case_pages import linked_case_words
from incident.web.dashboard.forms import LINK, REASON, SHORT, Form, FormInvalid, checked
from incident.web.dashboard.sessions import (
    COOKIE_PATH,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    SESSION_LIFETIME,
    Session,
    SessionKeys,
)
from incident.web.errors import domain_status, guarded
from incident.web.html import STATIC_DIR

log = logging.getLogger("incident.web.dashboard")

SESSIONS = web.AppKey("dashboard_sessions", SessionKeys)
# Sent by dashboard.js when it refreshes a page: answer 401, not a redirect to the login.
REFRESH_HEADER = "X-Dashboard-Refresh"
MAX_ID = 2**53
# The overview shows this many open incidents a page (with every severity's count).
OVERVIEW_PAGE = 50
MAX_PAGE = 10_000
_NEXT = re.compile(r"^/ui(/[A-Za-z0-9_/-]*)?$")  # where a login may send you: our pages only
# The declare form's own key: submitting it twice (a double click, a reload) declares once.
_DECLARE_KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_STATIC = {"dashboard.css", "dashboard.js"}
_PAGE_HEADERS = {
    # Pages name incidents and carry CSRF tokens: never kept by caches or shown in frames.
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def add_routes(app: web.Application, settings: Settings) -> None:
    app[SESSIONS] = SessionKeys(settings)
    app.router.add_get("/ui", guarded(overview))
    app.router.add_get("/ui/", guarded(to_overview))
    app.router.add_get("/ui/login", guarded(login_form))
    app.router.add_post("/ui/login", guarded(login))
    app.router.add_post("/ui/logout", guarded(logout))
    app.router.add_get("/ui/static/{name}", guarded(static))
    app.router.add_get("/ui/declare", guarded(declare_form))
    app.router.add_post("/ui/declare", guarded(declare))
    app.router.add_get("/ui/history", guarded(history))
    app.router.add_get("/ui/incidents/{incident_id}", guarded(incident_page))
    # Before the forms' route, which would otherwise take these paths (and refuse a GET).
    app.router.add_get("/ui/incidents/{incident_id}/timeline.md", guarded(timeline_document))
    app.router.add_get("/ui/incidents/{incident_id}/postmortem.md", guarded(postmortem_document))
    app.router.add_post("/ui/incidents/{incident_id}/{action}", guarded(act))
    # Support cases and incident candidates have modules of their own, which build on this
    # one's responses.
    from incident.web.dashboard.candidate_routes import add_candidate_routes
    from incident.web.dashboard.case_routes import add_case_routes

    add_case_routes(app)
    add_candidate_routes(app)


# --- responses -----------------------------------------------------------------------------


def _page(template: str, *, status: int = 200, etag: str = "", **context: object) -> web.Response:
    """An HTML page; `etag` (what it shows, see pages.fingerprint) goes in the page for its
    script, and in the header when the page is the plain one (not a refused form's)."""
    headers = dict(_PAGE_HEADERS)
    if etag and status == 200:
        headers["ETag"] = etag
    response = web.Response(
        text=pages.render(template, etag=etag, **context),
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers=headers,
    )
    # Pages of many incidents are large and compress well: gzip when the browser takes it.
    # (A compression attack needs the victim's browser to fetch pages that reflect the
    # attacker's text beside the CSRF token; the session cookie is SameSite=Strict, so no
    # other site's request carries it.)
    response.enable_compression()
    return response


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


def _problem(
    request: web.Request,
    status: int,
    title: str,
    message: str,
    session: Session | None,
    *,
    login_next: str = "/ui",
) -> web.Response:
    """A page saying why nothing was done; without a session, a way back in that returns
    to `login_next`."""
    return _page(
        "error.html",
        status=status,
        title=title,
        message=message,
        session=session,
        now=_rt(request).clock.now(),
        login_next=login_next,
    )


def _rt(request: web.Request) -> Runtime:
    return request.app[CONTAINER].runtime


async def _session(request: web.Request) -> Session | None:
    """The request's session: signed, unexpired, its token still configured, and not
    ended by a logout (on any replica)."""
    session = request.app[SESSIONS].read(
        request.cookies.get(SESSION_COOKIE), now=_rt(request).clock.now()
    )
    if session is None or await sessions.session_ended(_rt(request), session.nonce):
        return None
    return session


def _to_login(request: web.Request) -> web.Response:
    if request.headers.get(REFRESH_HEADER):
        return web.Response(status=401, text="log in again", headers={"Cache-Control": "no-store"})
    return _redirect(f"/ui/login?next={quote(request.path, safe='/')}")


def path_id(request: web.Request, name: str) -> int | None:
    """The id in the path's `name` part (an incident's, a case's, a candidate's), or None
    when it is not one: not all digits, or beyond any id the database holds."""
    text = request.match_info[name]
    if not text.isdigit() or not 1 <= int(text) <= MAX_ID:
        return None
    return int(text)


def _incident_id(request: web.Request) -> int | None:
    return path_id(request, "incident_id")


def _not_modified(request: web.Request, etag: str) -> web.Response | None:
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers={"ETag": etag, "Cache-Control": "no-store"})
    return None


async def to_overview(request: web.Request) -> web.Response:
    return _redirect("/ui")


# --- login ---------------------------------------------------------------------------------


def _login_page(
    request: web.Request, *, status: int = 200, error: str = "", notice: str = ""
) -> web.Response:
    nonce = SessionKeys.login_nonce()
    next_path = request.query.get("next", "")
    response = _page(
        "login.html",
        status=status,
        error=error,
        notice=notice,
        csrf=nonce,
        next_path=next_path if _NEXT.fullmatch(next_path) else "",
        no_tokens=not request.app[CONTAINER].settings.api_tokens,
        session=None,
        now=_rt(request).clock.now(),
    )
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        path="/ui/login",
        max_age=3600,
        httponly=True,
        samesite="Strict",
        secure=request.app[SESSIONS].secure,
    )
    return response


async def login_form(request: web.Request) -> web.Response:
    if await _session(request) is not None:
        return _redirect("/ui")
    notice = "You are logged out." if "logged_out" in request.query else ""
    return _login_page(request, notice=notice)


async def login(request: web.Request) -> web.Response:
    form = Form(await request.post())
    keys = request.app[SESSIONS]
    presented_nonce = form.get("csrf")
    if not SessionKeys.csrf_matches(request.cookies.get(LOGIN_COOKIE, ""), presented_nonce):
        return _login_page(
            request,
            status=403,
            error="The login form had expired or came from another site. Enter your token again.",
        )
    presented = form.get("token").strip()
    if not presented:
        return _login_page(request, status=422, error="Enter your API token.")
    failed_logins = request.app[FAILED_LOGINS]
    wait = failed_logins.blocked_for(client_of(request))
    if wait > 0:
        response = _login_page(
            request,
            status=429,
            error=f"Too many wrong tokens from this address. Try again in {math.ceil(wait)} s.",
        )
        response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return response
    token = request.app[CONTAINER].settings.token(presented)
    if token is None:
        failed_logins.failed(client_of(request))
        log.info("dashboard login refused", extra={"action": "dashboard_login_refused"})
        return _login_page(
            request,
            status=401,
            error="That token is not one this service knows. Check it against "
            "INCIDENT_API_TOKENS, or ask whoever runs the service for one.",
        )
    cookie, session = keys.issue(token, now=_rt(request).clock.now())
    next_path = form.get("next")
    response = _redirect(next_path if _NEXT.fullmatch(next_path) else "/ui")
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        path=COOKIE_PATH,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        httponly=True,
        samesite="Strict",
        secure=keys.secure,
    )
    response.del_cookie(LOGIN_COOKIE, path="/ui/login")
    log.info(
        "dashboard login",
        extra={
            "action": "dashboard_login",
            "by": session.principal.name,
            "role": session.principal.role.value,
        },
    )
    return response


async def logout(request: web.Request) -> web.Response:
    session = await _session(request)
    if session is None:
        return _redirect("/ui/login?logged_out=1")
    form = Form(await request.post())
    if not SessionKeys.csrf_matches(session.csrf, form.get("csrf")):
        return _problem(request, 403, "Not logged out", _CSRF_REFUSED, session)
    # Ended here for every replica, not only in this browser: a copied cookie is refused.
    await sessions.end_session(_rt(request), session.nonce, expires_at=session.expires_at)
    response = _redirect("/ui/login?logged_out=1")
    response.del_cookie(SESSION_COOKIE, path=COOKIE_PATH)
    log.info("dashboard logout", extra={"action": "dashboard_logout", "by": session.principal.name})
    return response


# --- pages ---------------------------------------------------------------------------------


async def static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in _STATIC:
        raise web.HTTPNotFound(text=f"there is no dashboard file {name!r}")
    return web.FileResponse(
        STATIC_DIR / name,
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


def _done_message(request: web.Request) -> str:
    name = request.query.get("done", "")
    form = CHANGES.get(name)
    return form.done if form is not None else _DONE_ELSEWHERE.get(name, "")


_DONE_ELSEWHERE = {
    "declare": "Incident declared; its playbook has started.",
    "candidate": "Decided from an incident candidate: every case of it is linked to this "
    "incident, so each customer hears its updates and its resolution.",
}


async def overview(request: web.Request) -> web.Response:
    session = await _session(request)
    if session is None:
        return _to_login(request)
    rt = _rt(request)
    authorize(session.principal, Action.VIEW)
    number = request.query.get("page", "1")
    page = int(number) if number.isdigit() and 1 <= int(number) <= MAX_PAGE else 1
    # Versioned, not fingerprinted from the rows: the refresh check reads one number,
    # however many incidents are open.
    version = await views.change_version(rt)
    etag = pages.fingerprint("overview", session.principal, session.nonce, version, page)
    unchanged = _not_modified(request, etag)
    if unchanged is not None:
        return unchanged
    overview = await views.overview(rt, page=page, per_page=OVERVIEW_PAGE)
    done = _done_message(request)
    ref = request.query.get("incident", "")
    return _page(
        "overview.html",
        nav="open",
        etag=etag,
        session=session,
        now=rt.clock.now(),
        refresh_url="/ui" if page == 1 else f"/ui?page={page}",
        groups=pages.overview_groups(session.principal, overview),
        overview=overview,
        done=f"INC-{ref}: {done}" if done and ref.isdigit() else done,
    )


async def incident_page(request: web.Request) -> web.Response:
    session = await _session(request)
    if session is None:
        return _to_login(request)
    incident_id = _incident_id(request)
    if incident_id is None:
        return _problem(request, 404, "Not found", _no_such(request), session)
    return await _show(request, session, incident_id, done=_done_message(request))


async def _show(
    request: web.Request,
    session: Session,
    incident_id: int,
    *,
    status: int = 200,
    error: str = "",
    done: str = "",
    draft: pages.Draft | None = None,
    invalid: frozenset[str] = frozenset(),
) -> web.Response:
    rt = _rt(request)
    try:
        view = await uc.get_incident(rt, incident_id)
        cases = await links.linked_cases(request.app[CONTAINER].support, incident_id)
    except NotFound:
        return _problem(request, 404, "Not found", _no_such(request), session)
    etag = pages.fingerprint("incident", session.principal, session.nonce, view, cases)
    if status == 200:
        unchanged = _not_modified(request, etag)
        if unchanged is not None:
            return unchanged
    return _page(
        "incident.html",
        status=status,
        etag=etag,
        refresh_url=f"/ui/incidents/{incident_id}",
        session=session,
        now=rt.clock.now(),
        view=view,
        incident=view.incident,
        can=pages.Permissions.of(session.principal, view.incident),
        components=pages.component_rows(rt.catalog, view.incident),
        held_texts=pages.held_texts(view),
        linked=cases,
        case_words=linked_case_words(request.app[CONTAINER].support.playbook.ladder),
        error=error,
        invalid=invalid,
        done=done,
        draft=draft or pages.Draft(),
    )


def _no_such(request: web.Request) -> str:
    return f"There is no incident {request.match_info.get('incident_id', '')!r}."


def _invalid_fields(error: DomainError) -> frozenset[str]:
    """The fields to mark invalid on the form shown again."""
    if isinstance(error, FormInvalid):
        return frozenset(error.fields)
    if isinstance(error, InvalidValue):
        return frozenset({error.field})
    return frozenset()


# --- declaring -----------------------------------------------------------------------------

_DECLARE_FIELDS = ("title", "severity", "service", "impact", "category", "public_title")


def _declare_page(
    request: web.Request,
    session: Session,
    *,
    status: int = 200,
    error: str = "",
    invalid: frozenset[str] = frozenset(),
    draft: pages.Draft | None = None,
) -> web.Response:
    rt = _rt(request)
    return _page(
        "declare.html",
        nav="declare",
        status=status,
        session=session,
        now=rt.clock.now(),
        components=[(c.id, c.name) for c in rt.catalog.components],
        error=error,
        invalid=invalid,
        draft=draft or pages.Draft(),
        key=secrets.token_urlsafe(16),
    )


async def declare_form(request: web.Request) -> web.Response:
    session = await _session(request)
    if session is None:
        return _to_login(request)
    try:
        authorize(session.principal, Action.DECLARE)
    except Forbidden as error:
        return _problem(request, 403, "Not allowed", str(error), session)
    return _declare_page(request, session)


def _declaration(form: Form) -> dict[str, object]:
    """The form as the body of the API's declare request (fields left empty left out, so
    the API's defaults apply, as when a client leaves them out)."""
    data: dict[str, object] = {
        name: form.get(name) for name in _DECLARE_FIELDS if form.get(name).strip()
    }
    data.setdefault("title", form.get("title"))  # blank: refused, and said so
    data["components"] = form.components()
    return data


async def declare(request: web.Request) -> web.Response:
    """Declare from the dashboard: the API's request model checks the form, the API's use
    case declares it, then to the new incident's page."""
    session = await _session(request)
    if session is None:
        return _problem(
            request,
            401,
            "Logged out",
            "Your session has ended, so nothing was declared. Log in and try again.",
            None,
            login_next="/ui/declare",
        )
    form = Form(await request.post())
    if not SessionKeys.csrf_matches(session.csrf, form.get("csrf")):
        return _problem(request, 403, "Not declared", _CSRF_REFUSED, session)
    who = session.principal
    key = form.get("key")
    try:
        authorize(who, Action.DECLARE)
        body = checked(s.DeclareRequest, _declaration(form))
        incident, _ = await uc.declare_incident(
            _rt(request),
            title=body.title,
            severity=body.severity,
            by=who,
            service=body.service,
            impact=body.impact,
            category=body.category,
            components={k: v.value for k, v in body.components.items()},
            public_title=body.public_title,
            idempotency_key=f"ui:{who.name}:{key}" if _DECLARE_KEY.match(key) else None,
        )
    except Forbidden as error:
        return _problem(request, 403, "Not declared", str(error), session)
    except DomainError as error:
        status, _ = domain_status(error)
        message = str(error)
        if isinstance(error, InvalidValue) and error.field == "Idempotency-Key":
            # This form declared an incident already, with other details (sent again
            # from a page restored by the browser): the page shown now has a new key.
            message = (
                "This form was already used to declare an incident with other details. "
                "Check the details below and declare again."
            )
        kept = {name: form.get(name) for name in _DECLARE_FIELDS}
        kept.update({f"component.{k}": v for k, v in form.components().items()})
        return _declare_page(
            request,
            session,
            status=status,
            error=message,
            invalid=_invalid_fields(error),
            draft=pages.Draft("declare", kept),
        )
    return _redirect(f"/ui/incidents/{incident.id}?done=declare")


# --- past incidents ------------------------------------------------------------------------


async def history(request: web.Request) -> web.Response:
    """Resolved, closed and cancelled incidents, newest first, a page at a time; searched
    and filtered by the database (a GET form, so it works without script and can be
    bookmarked)."""
    session = await _session(request)
    if session is None:
        return _to_login(request)
    rt = _rt(request)
    authorize(session.principal, Action.VIEW)
    status, error = 200, ""
    try:
        query = pages.HistoryQuery.parse(request.query)
    except InvalidValue as refused:
        status, error, query = 422, str(refused), pages.HistoryQuery()
    found = []
    if not error:
        found = await uc.list_incidents(
            rt,
            statuses=query.statuses,
            severities=(query.severity,) if query.severity else (),
            search=query.search,
            limit=pages.HISTORY_PAGE_SIZE + 1,  # one more: is there a next page?
            offset=query.offset,
        )
    return _page(
        "history.html",
        nav="history",
        status=status,
        session=session,
        now=rt.clock.now(),
        query=query,
        typed=request.query.get("q", "")[: pages.MAX_SEARCH * 2] if error else query.search,
        incidents=found[: pages.HISTORY_PAGE_SIZE],
        more=len(found) > pages.HISTORY_PAGE_SIZE,
        first=query.offset + 1,
        error=error,
    )


# --- documents -----------------------------------------------------------------------------

Document = Callable[[Runtime, Renderer, int], Awaitable[str]]


async def timeline_document(request: web.Request) -> web.Response:
    return await _document(request, exports.timeline_markdown, "timeline")


async def postmortem_document(request: web.Request) -> web.Response:
    return await _document(request, exports.postmortem_draft, "postmortem")


async def _document(request: web.Request, make: Document, name: str) -> web.Response:
    """The API's Markdown documents for a browser: read with the dashboard's session."""
    session = await _session(request)
    incident_id = _incident_id(request)
    if session is None:
        back = f"/ui/incidents/{incident_id}" if incident_id else "/ui"
        return _redirect(f"/ui/login?next={quote(back, safe='/')}")
    if incident_id is None:
        return _problem(request, 404, "Not found", _no_such(request), session)
    rt = _rt(request)
    try:
        text = await make(rt, request.app[CONTAINER].documents, incident_id)
    except NotFound:
        return _problem(request, 404, "Not found", _no_such(request), session)
    return web.Response(
        text=text,
        content_type="text/markdown",
        charset="utf-8",
        headers={
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": f'inline; filename="INC-{incident_id}-{name}.md"',
        },
    )


# --- changes -------------------------------------------------------------------------------

Change = Callable[[Runtime, Principal, int, Form], Awaitable[object]]


async def _acknowledge(rt: Runtime, who: Principal, incident_id: int, form: Form) -> object:
    return await uc.acknowledge_incident(rt, incident_id, by=who)


async def _update(rt: Runtime, who: Principal, incident_id: int, form: Form) -> object:
    return await uc.post_customer_update(
        rt,
        incident_id,
        message=form.text("message"),
        status=form.optional_status(),
        components=form.components() or None,
        by=who,
    )


async def _note(rt: Runtime, who: Principal, incident_id: int, form: Form) -> object:
    return await uc.add_internal_note(rt, incident_id, text=form.text("text"), by=who)


async def _status(rt: Runtime, who: Principal, incident_id: int, form: Form) -> object:
    return await uc.change_status(rt, incident_id, form.status(), by=who)


async def _severity(rt: Runtime, who: Principal, incident_id: int, form: Form) -> object:
    severity = form.severity()
    return await uc.change_severity(
        rt, incident_id, severity, by=who, reason=form.text("reason", max_length=REASON)
    )


async def _resolve(rt: Runtime, who: Principal, incident_id: int, form: Form) -> object:
    return await uc.resolve_incident(rt, incident_id, summary=form.text("summary"), by=who)


async def _take_command(rt: Runtime, who: Principal, incident_id: int, form: Form) -> object:
    return await uc.assign_role(rt, incident_id, Role.COMMANDER, who.name, by=who)


async def _assign_role(rt: Runtime, who: Principal, incident_id: int, form: Form) -> object:
    role = Role.parse(form.get("role"))
    person = form.text("person", max_length=SHORT)
    return await uc.assign_role(rt, incident_id, role, person, by=who)


async def _public_title(rt: Runtime, who: Principal, incident_id: int, form: Form) -> object:
    title = form.text("public_title", max_length=SHORT)
    return await uc.set_public_title(rt, incident_id, title, by=who)


async def _rca(rt: Runtime, who: Principal, incident_id: int, form: Form) -> object:
    link = form.text("link", max_length=LINK)
    if any(c.isspace() for c in link):
        raise InvalidValue("link", "a link has no spaces; paste the RCA document's address")
    return await uc.complete_rca(rt, incident_id, link=link, by=who)


async def _skip(rt: Runtime, who: Principal, incident_id: int, form: Form) -> object:
    return await uc.skip_step(
        rt,
        incident_id,
        form.text("step", max_length=SHORT),
        reason=form.text("reason", max_length=REASON),
        by=who,
    )


async def _snooze(rt: Runtime, who: Principal, incident_id: int, form: Form) -> object:
    return await uc.snooze_step(
        rt,
        incident_id,
        form.text("step", max_length=SHORT),
        delay=form.minutes(),
        reason=form.text("reason", max_length=REASON),
        by=who,
    )


async def _edit(rt: Runtime, who: Principal, incident_id: int, form: Form) -> object:
    fields = ("title", "impact", "service", "category")
    body = checked(s.EditRequest, {name: form.get(name) for name in fields if form.has(name)})
    if all(getattr(body, name) is None for name in fields):
        raise InvalidValue("title", "give at least one of title, impact, service, category")
    return await uc.edit_incident(
        rt,
        incident_id,
        by=who,
        title=body.title,
        impact=body.impact,
        service=body.service,
        category=body.category,
    )


def _present(form: Form, *names: str) -> dict[str, object]:
    """The fields filled in (one left empty is left out, so the API's default applies or
    its absence is named)."""
    return {name: form.get(name) for name in names if form.get(name).strip()}


async def _cancel(rt: Runtime, who: Principal, incident_id: int, form: Form) -> object:
    body = checked(s.CancelRequest, {**_present(form, "reason"), "note": form.get("note")})
    if form.get("confirm") != "yes":
        raise InvalidValue(
            "confirm",
            "tick the box to confirm that cancelling stops the playbook",
        )
    return await uc.cancel_incident(
        rt, incident_id, reason=Cancellation(body.reason), note=body.note, by=who
    )


async def _reopen(rt: Runtime, who: Principal, incident_id: int, form: Form) -> object:
    body = checked(s.ReopenRequest, {"reason": form.get("reason"), **_present(form, "status")})
    return await uc.reopen_incident(
        rt, incident_id, reason=body.reason, status=Status(body.status), by=who
    )


async def _merge(rt: Runtime, who: Principal, incident_id: int, form: Form) -> object:
    body = checked(s.MergeRequest, {"into": form.incident_ref("into")})
    return await uc.merge_incident(rt, incident_id, into=body.into, by=who)


async def _approve(rt: Runtime, who: Principal, incident_id: int, form: Form) -> object:
    step = form.text("step", max_length=SHORT)
    return await uc.approve_step(rt, incident_id, step, by=who)


async def _add_follow_up(rt: Runtime, who: Principal, incident_id: int, form: Form) -> object:
    due_at = form.utc_time("due_at")
    body = checked(
        s.FollowUpRequest,
        {
            "title": form.get("title"),
            "owner": form.get("owner"),
            **({"due_at": due_at} if due_at else {}),
        },
    )
    return await uc.add_follow_up(
        rt, incident_id, title=body.title, owner=body.owner, due_at=body.due_at, by=who
    )


async def _complete_follow_up(rt: Runtime, who: Principal, incident_id: int, form: Form) -> object:
    return await uc.complete_follow_up(rt, incident_id, form.number("follow_up"), by=who)


@dataclass(frozen=True)
class _Form:
    change: Change
    done: str  # what the page says after it (`?done=<form>`; only these words are shown)
    # Fields whose refused input is shown again (never the CSRF token).
    kept: tuple[str, ...] = ()


CHANGES: dict[str, _Form] = {
    "acknowledge": _Form(_acknowledge, "Acknowledged: re-paging has stopped."),
    "update": _Form(_update, "Customer update posted.", ("message", "status")),
    "note": _Form(_note, "Internal note added.", ("text",)),
    "status": _Form(_status, "Status changed."),
    "severity": _Form(
        _severity, "Severity changed; the playbook follows it.", ("severity", "reason")
    ),
    "resolve": _Form(
        _resolve, "Resolved. The resolution notice goes out with the playbook.", ("summary",)
    ),
    "command": _Form(_take_command, "You are now the incident commander."),
    "role": _Form(_assign_role, "Role assigned.", ("role", "person")),
    "public-title": _Form(_public_title, "The name customers see has changed.", ("public_title",)),
    "rca": _Form(_rca, "RCA recorded; the incident is closed.", ("link",)),
    "skip-step": _Form(_skip, "Step skipped.", ("step", "reason")),
    "snooze-step": _Form(_snooze, "Step snoozed.", ("step", "reason", "minutes")),
    "edit": _Form(_edit, "Incident details saved.", ("title", "impact", "service", "category")),
    "cancel": _Form(
        _cancel,
        "Cancelled. The playbook has stopped; its pages are resolved and the status page follows.",
        ("reason", "note"),
    ),
    "reopen": _Form(
        _reopen, "Reopened: the customer update cadence resumes.", ("reason", "status")
    ),
    "merge": _Form(
        _merge,
        "Merged as a duplicate: this incident is cancelled; work goes on in the other.",
        ("into",),
    ),
    "approve-step": _Form(_approve, "Approved: the text goes out (or will when it is due)."),
    "follow-up": _Form(
        _add_follow_up,
        "Follow-up added; its owner is reminded until it is done.",
        ("title", "owner", "due_at"),
    ),
    "follow-up-done": _Form(_complete_follow_up, "Follow-up done; its reminders stop."),
}

_CSRF_REFUSED = (
    "This form has expired or came from another site, so nothing was changed. Reload the "
    "page and try again."
)


S = TypeVar("S")


@dataclass(frozen=True)
class Posted(Generic[S]):
    """A form posted to one subject's page, checked: who sent it, which form, what it holds."""

    session: Session
    name: str  # the form's name (the path's `action`)
    spec: S
    form: Form


async def posted(
    request: web.Request, subject_id: int | None, specs: Mapping[str, S], *, page: str, done: str
) -> Posted[S] | web.Response:
    """Check a form posted to one subject's page before anything is done: a live session
    (else a page to log in again that comes back to `page`), a form of `specs` for an
    existing id (else 404) and the session's CSRF token (else 403). `done`: what did not
    happen, in words ("changed"). Every subject's forms (incidents, cases, candidates)."""
    session = await _session(request)
    if session is None:
        return _problem(
            request,
            401,
            "Logged out",
            f"Your session has ended, so nothing was {done}. Log in and try again.",
            None,
            login_next=page,
        )
    name = request.match_info["action"]
    spec = specs.get(name)
    if spec is None or subject_id is None:
        return _problem(request, 404, "Not found", "There is no such form.", session)
    form = Form(await request.post())
    if not SessionKeys.csrf_matches(session.csrf, form.get("csrf")):
        return _problem(request, 403, f"Not {done}", _CSRF_REFUSED, session)
    return Posted(session, name, spec, form)


async def act(request: web.Request) -> web.Response:
    """Any change to one incident: check the session and the form's CSRF token, make the
    change, then back to the page (or the page again with the reason it was refused)."""
    incident_id = _incident_id(request)
    page = f"/ui/incidents/{incident_id}" if incident_id else "/ui"
    checked_post = await posted(request, incident_id, CHANGES, page=page, done="changed")
    if isinstance(checked_post, web.Response):
        return checked_post
    session, name, form_spec, form = (
        checked_post.session,
        checked_post.name,
        checked_post.spec,
        checked_post.form,
    )
    assert incident_id is not None
    try:
        await form_spec.change(_rt(request), session.principal, incident_id, form)
    except DomainError as error:
        status, _ = domain_status(error)
        draft = pages.Draft(name, {k: form.get(k) for k in form_spec.kept})
        return await _show(
            request,
            session,
            incident_id,
            status=status,
            error=str(error),
            draft=draft,
            invalid=_invalid_fields(error),
        )
    if form.get("return_to") == "overview":
        return _redirect(f"/ui?done={name}&incident={incident_id}")
    return _redirect(f"/ui/incidents/{incident_id}?done={name}")
