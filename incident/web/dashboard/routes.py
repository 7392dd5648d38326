"""The commander's dashboard under /ui: login with an API token, the open incidents, one
incident's page, and its forms, each calling the use case the API calls after the same
authorization.

Every change is a POST of an HTML form carrying the session's CSRF token, answered with a
redirect back to the page (post/redirect/get), so the dashboard works without script.
A refused change (not allowed, not possible now, bad input) shows the page again with
the reason and a 4xx status; what was typed stays in the form; nothing is stored.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote

from aiohttp import web

from incident.config import Settings
from incident.domain.access import Action, Principal, assign_action, authorize, severity_action
from incident.domain.errors import DomainError, InvalidValue, NotFound
from incident.domain.incident import OPEN_STATUSES, Role
from incident.services import incidents as uc
from incident.services.incidents import Runtime
from incident.web.context import CONTAINER
from incident.web.dashboard import pages
from incident.web.dashboard.forms import LINK, REASON, SHORT, Form
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
_NEXT = re.compile(r"^/ui(/[A-Za-z0-9_/-]*)?$")  # where a login may send you: our pages only
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
    app.router.add_get("/ui/incidents/{incident_id}", guarded(incident_page))
    app.router.add_post("/ui/incidents/{incident_id}/{action}", guarded(act))


# --- responses -----------------------------------------------------------------------------


def _page(template: str, *, status: int = 200, etag: str = "", **context: object) -> web.Response:
    """An HTML page; `etag` (what it shows, see pages.fingerprint) goes in the page for its
    script, and in the header when the page is the plain one (not a refused form's)."""
    headers = dict(_PAGE_HEADERS)
    if etag and status == 200:
        headers["ETag"] = etag
    return web.Response(
        text=pages.render(template, etag=etag, **context),
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers=headers,
    )


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


def _session(request: web.Request) -> Session | None:
    return request.app[SESSIONS].read(
        request.cookies.get(SESSION_COOKIE), now=_rt(request).clock.now()
    )


def _to_login(request: web.Request) -> web.Response:
    if request.headers.get(REFRESH_HEADER):
        return web.Response(status=401, text="log in again", headers={"Cache-Control": "no-store"})
    return _redirect(f"/ui/login?next={quote(request.path, safe='/')}")


def _incident_id(request: web.Request) -> int | None:
    text = request.match_info["incident_id"]
    if not text.isdigit() or not 1 <= int(text) <= MAX_ID:
        return None
    return int(text)


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
        next_path=next_path if _NEXT.match(next_path) else "",
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
    if _session(request) is not None:
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
    token = request.app[CONTAINER].settings.token(presented)
    if token is None:
        log.info("dashboard login refused", extra={"action": "dashboard_login_refused"})
        return _login_page(
            request,
            status=401,
            error="That token is not one this service knows. Check it against "
            "INCIDENT_API_TOKENS, or ask whoever runs the service for one.",
        )
    cookie, session = keys.issue(token, now=_rt(request).clock.now())
    next_path = form.get("next")
    response = _redirect(next_path if _NEXT.match(next_path) else "/ui")
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
    session = _session(request)
    if session is None:
        return _redirect("/ui/login?logged_out=1")
    form = Form(await request.post())
    if not SessionKeys.csrf_matches(session.csrf, form.get("csrf")):
        return _problem(request, 403, "Not logged out", _CSRF_REFUSED, session)
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
    form = CHANGES.get(request.query.get("done", ""))
    return form.done if form is not None else ""


async def overview(request: web.Request) -> web.Response:
    session = _session(request)
    if session is None:
        return _to_login(request)
    rt = _rt(request)
    authorize(session.principal, Action.VIEW)
    views = []
    for incident in await uc.list_incidents(rt, statuses=OPEN_STATUSES):
        assert incident.id is not None
        views.append(await uc.get_incident(rt, incident.id))
    etag = pages.fingerprint("overview", session.principal, session.nonce, views)
    unchanged = _not_modified(request, etag)
    if unchanged is not None:
        return unchanged
    done = _done_message(request)
    ref = request.query.get("incident", "")
    return _page(
        "overview.html",
        etag=etag,
        session=session,
        now=rt.clock.now(),
        refresh_url="/ui",
        groups=pages.overview_groups(session.principal, views),
        done=f"INC-{ref}: {done}" if done and ref.isdigit() else done,
    )


async def incident_page(request: web.Request) -> web.Response:
    session = _session(request)
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
) -> web.Response:
    rt = _rt(request)
    try:
        await uc.authorize_on(rt, session.principal, incident_id, Action.VIEW)
        view = await uc.get_incident(rt, incident_id)
    except NotFound:
        return _problem(request, 404, "Not found", _no_such(request), session)
    etag = pages.fingerprint("incident", session.principal, session.nonce, view)
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
        error=error,
        done=done,
        draft=draft or pages.Draft(),
    )


def _no_such(request: web.Request) -> str:
    return f"There is no incident {request.match_info.get('incident_id', '')!r}."


# --- changes -------------------------------------------------------------------------------

Change = Callable[[Runtime, Principal, int, Form], Awaitable[object]]


async def _acknowledge(rt: Runtime, who: Principal, incident_id: int, form: Form) -> object:
    await uc.authorize_on(rt, who, incident_id, Action.ACKNOWLEDGE)
    return await uc.acknowledge_incident(rt, incident_id, by=who.name)


async def _update(rt: Runtime, who: Principal, incident_id: int, form: Form) -> object:
    await uc.authorize_on(rt, who, incident_id, Action.POST_UPDATE)
    return await uc.post_customer_update(
        rt,
        incident_id,
        message=form.text("message"),
        status=form.optional_status(),
        components=form.components() or None,
        by=who.name,
    )


async def _note(rt: Runtime, who: Principal, incident_id: int, form: Form) -> object:
    await uc.authorize_on(rt, who, incident_id, Action.POST_UPDATE)
    return await uc.add_internal_note(rt, incident_id, text=form.text("text"), by=who.name)


async def _status(rt: Runtime, who: Principal, incident_id: int, form: Form) -> object:
    await uc.authorize_on(rt, who, incident_id, Action.POST_UPDATE)
    return await uc.change_status(rt, incident_id, form.status(), by=who.name)


async def _severity(rt: Runtime, who: Principal, incident_id: int, form: Form) -> object:
    severity = form.severity()
    await uc.authorize_on(rt, who, incident_id, lambda i: severity_action(i, severity))
    return await uc.change_severity(
        rt, incident_id, severity, by=who.name, reason=form.text("reason", max_length=REASON)
    )


async def _resolve(rt: Runtime, who: Principal, incident_id: int, form: Form) -> object:
    await uc.authorize_on(rt, who, incident_id, Action.RESOLVE)
    return await uc.resolve_incident(rt, incident_id, summary=form.text("summary"), by=who.name)


async def _take_command(rt: Runtime, who: Principal, incident_id: int, form: Form) -> object:
    await uc.authorize_on(
        rt, who, incident_id, lambda i: assign_action(i, who, Role.COMMANDER, who.name)
    )
    return await uc.assign_role(rt, incident_id, Role.COMMANDER, who.name, by=who.name)


async def _assign_role(rt: Runtime, who: Principal, incident_id: int, form: Form) -> object:
    role = Role.parse(form.get("role"))
    person = form.text("person", max_length=SHORT)
    await uc.authorize_on(rt, who, incident_id, lambda i: assign_action(i, who, role, person))
    return await uc.assign_role(rt, incident_id, role, person, by=who.name)


async def _public_title(rt: Runtime, who: Principal, incident_id: int, form: Form) -> object:
    await uc.authorize_on(rt, who, incident_id, Action.POST_UPDATE)
    title = form.text("public_title", max_length=SHORT)
    return await uc.set_public_title(rt, incident_id, title, by=who.name)


async def _rca(rt: Runtime, who: Principal, incident_id: int, form: Form) -> object:
    await uc.authorize_on(rt, who, incident_id, Action.COMPLETE_RCA)
    link = form.text("link", max_length=LINK)
    if any(c.isspace() for c in link):
        raise InvalidValue("link", "a link has no spaces; paste the RCA document's address")
    return await uc.complete_rca(rt, incident_id, link=link, by=who.name)


async def _skip(rt: Runtime, who: Principal, incident_id: int, form: Form) -> object:
    await uc.authorize_on(rt, who, incident_id, Action.MANAGE_STEPS)
    return await uc.skip_step(
        rt,
        incident_id,
        form.text("step", max_length=SHORT),
        reason=form.text("reason", max_length=REASON),
        by=who.name,
    )


async def _snooze(rt: Runtime, who: Principal, incident_id: int, form: Form) -> object:
    await uc.authorize_on(rt, who, incident_id, Action.MANAGE_STEPS)
    return await uc.snooze_step(
        rt,
        incident_id,
        form.text("step", max_length=SHORT),
        delay=form.minutes(),
        reason=form.text("reason", max_length=REASON),
        by=who.name,
    )


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
}

_CSRF_REFUSED = (
    "This form has expired or came from another site, so nothing was changed. Reload the "
    "page and try again."
)


async def act(request: web.Request) -> web.Response:
    """Any change to one incident: check the session and the form's CSRF token, make the
    change, then back to the page (or the page again with the reason it was refused)."""
    session = _session(request)
    incident_id = _incident_id(request)
    if session is None:
        return _problem(
            request,
            401,
            "Logged out",
            "Your session has ended, so nothing was changed. Log in and try again.",
            None,
            login_next=f"/ui/incidents/{incident_id}" if incident_id else "/ui",
        )
    name = request.match_info["action"]
    form_spec = CHANGES.get(name)
    if form_spec is None or incident_id is None:
        return _problem(request, 404, "Not found", "There is no such form.", session)
    form = Form(await request.post())
    if not SessionKeys.csrf_matches(session.csrf, form.get("csrf")):
        return _problem(request, 403, "Not changed", _CSRF_REFUSED, session)
    try:
        await form_spec.change(_rt(request), session.principal, incident_id, form)
    except DomainError as error:
        status, _ = domain_status(error)
        draft = pages.Draft(name, {k: form.get(k) for k in form_spec.kept})
        return await _show(
            request, session, incident_id, status=status, error=str(error), draft=draft
        )
    if form.get("return_to") == "overview":
        return _redirect(f"/ui?done={name}&incident={incident_id}")
    return _redirect(f"/ui/incidents/{incident_id}?done={name}")
