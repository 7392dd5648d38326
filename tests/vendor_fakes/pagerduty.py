"""A strict local PagerDuty over TLS: Events API v2 (`POST /v2/enqueue`) and the parts of REST
API v2 the adapter uses (`GET /oncalls`, `GET /services/{id}`), on 127.0.0.1, port 0.

Strict: every request is checked against PagerDuty's published OpenAPI documents (copied in
specs/, see pagerduty-SOURCES.md) plus the limits PagerDuty documents in prose; whatever
PagerDuty would refuse gets PagerDuty's 400/401 answer, and is kept in `rejected` so tests can
insist there were none. Unknown query parameters are refused too (PagerDuty ignores them, which
turns a misspelt filter such as `escalation_policy_ids` without `[]` into "everyone"): stricter
than the vendor, on purpose.

Stateful: alerts by dedup_key with every event applied to them, so a test can see that an
incident made exactly one alert, triggered then acknowledged then resolved. A trigger on an
open alert joins it; on a resolved one it opens a new alert, as PagerDuty does.

Scriptable faults: N responses with a status (429 with Retry-After, 500 ...), slow answers
(beyond the client's timeout), dropped connections, malformed bodies, and "down until" an
instant of a (fake) clock. A fault can fire after the event took effect (`took_effect`), the
case where a retry must not double anything.

The `pagerduty` package accepts only https base URLs: the fake serves TLS with a certificate
from a throw-away CA (`trustme`); `client_ssl_context()` trusts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import ssl
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit

import trustme
from aiohttp import web
from jsonschema import Draft4Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from incident.clock import Clock

SPECS = Path(__file__).parent / "specs"
EVENTS_SPEC = "urn:pagerduty:events-v2"
REST_SPEC = "urn:pagerduty:rest-v2"
ENQUEUE_SCHEMA = f"{EVENTS_SPEC}#/paths/~1enqueue/post/requestBody/content/application~1json/schema"
REST_ACCEPT = "application/vnd.pagerduty+json;version=2"

# Documented by PagerDuty in prose (Events API v2 "Send an Alert Event"), not in the schema.
DOCUMENTED_LIMITS: dict[str, Any] = {
    "properties": {
        "routing_key": {"type": "string", "minLength": 32, "maxLength": 32},
        "dedup_key": {"type": "string", "minLength": 1, "maxLength": 255},
        "payload": {
            "properties": {
                "summary": {"type": "string", "minLength": 1, "maxLength": 1024},
                "source": {"type": "string", "minLength": 1},
            }
        },
    }
}


def _formats() -> FormatChecker:
    checker = FormatChecker(formats=())

    @checker.checks("date-time", raises=ValueError)
    def _date_time(value: object) -> bool:
        if not isinstance(value, str):
            return True
        return datetime.fromisoformat(value).tzinfo is not None  # RFC 3339 wants an offset

    @checker.checks("url")
    def _url(value: object) -> bool:
        if not isinstance(value, str):
            return True
        parts = urlsplit(value)
        return parts.scheme in ("http", "https") and bool(parts.netloc)

    return checker


def _registry() -> Registry[Any]:
    events = json.loads((SPECS / "pagerduty-events-v2.openapi.json").read_text())
    rest = json.loads((SPECS / "pagerduty-rest-v2.subset.openapi.json").read_text())
    return Registry().with_resources(
        [
            (EVENTS_SPEC, Resource.from_contents(events, default_specification=DRAFT4)),
            (REST_SPEC, Resource.from_contents(rest, default_specification=DRAFT4)),
        ]
    )


REGISTRY = _registry()
FORMATS = _formats()
REST = REGISTRY.contents(REST_SPEC)


def _validator(schema: dict[str, Any]) -> Draft4Validator:
    return Draft4Validator(schema, registry=REGISTRY, format_checker=FORMATS)


ENQUEUE = _validator({"$ref": ENQUEUE_SCHEMA})
LIMITS = _validator(DOCUMENTED_LIMITS)


def _problems(validator: Draft4Validator, value: Any, where: str) -> list[str]:
    found = []
    for error in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path)):
        path = ".".join(str(p) for p in error.absolute_path)
        found.append(f"{where}{'.' + path if path else ''}: {error.message}")
    return found


# --- state -----------------------------------------------------------------------------------


@dataclass
class Alert:
    """One PagerDuty alert: its dedup_key, where it stands, and every event applied to it."""

    dedup_key: str
    status: str = "triggered"  # triggered, acknowledged, resolved
    events: list[str] = field(default_factory=lambda: ["trigger"])
    statuses: list[str] = field(default_factory=lambda: ["triggered"])
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def is_open(self) -> bool:
        return self.status != "resolved"

    def apply(self, action: str) -> None:
        self.events.append(action)
        if action == "acknowledge" and self.status == "triggered":
            self.status = "acknowledged"
        elif action == "resolve":
            self.status = "resolved"
        self.statuses.append(self.status)


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    email: str


@dataclass(frozen=True)
class Shift:
    """Someone on call now, for an escalation policy at a level (through a schedule or not)."""

    user: Person
    escalation_policy: str
    escalation_level: int = 1
    schedule: str | None = None


@dataclass
class Seen:
    """One request as the fake received it, what was wrong with it, and what it answered."""

    method: str
    path: str
    query: list[tuple[str, str]]
    body: Any
    problems: list[str] = field(default_factory=list)
    status: int | None = None
    fault: str | None = None
    at: float = 0.0  # the event loop's clock when it arrived


FaultKind = Literal["status", "slow", "drop", "malformed"]


@dataclass
class Fault:
    kind: FaultKind
    times: int
    path: str | None = None  # only requests to this path; None: any
    status: int = 500
    retry_after: str | None = None
    seconds: float = 0.0
    took_effect: bool = False  # the request is processed before the fault hits its answer
    body: str = ""


Answer = tuple[int, Any]

EVENT_ERROR = {"status": "invalid event", "message": "Event object is invalid"}


class FakePagerDuty:
    """The fake. `async with FakePagerDuty(...) as pd:` serves at `pd.url`."""

    def __init__(
        self,
        *,
        ca: trustme.CA,
        routing_key: str,
        api_token: str,
        roster: Iterable[Shift] = (),
        services: dict[str, str] | None = None,
    ) -> None:
        self.ca = ca
        self.routing_key = routing_key
        self.api_token = api_token
        self.roster: list[Shift] = list(roster)
        self.services: dict[str, str] = dict(services or {})  # service id -> policy id
        self.alerts: dict[str, list[Alert]] = {}
        self.dropped_events: list[tuple[str, str]] = []  # (action, dedup_key) with no alert
        self.requests: list[Seen] = []
        self.faults: list[Fault] = []
        self.expect_rejections = False  # a test that sends bad requests on purpose sets it
        self._down: tuple[datetime, Clock, int | None] | None = None
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- lifetime ----------------------------------------------------------------------------

    async def start(self) -> FakePagerDuty:
        app = web.Application()
        app.router.add_post("/v2/enqueue", self._enqueue)
        app.router.add_get("/oncalls", self._oncalls)
        app.router.add_get("/services/{id}", self._service)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(server)
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=server)
        await site.start()
        assert self._runner.addresses
        self.port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        self._closing.set()  # slow answers stop waiting
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> FakePagerDuty:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def client_ssl_context(self) -> ssl.SSLContext:
        """What a client needs to trust this fake's certificate."""
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context

    # --- what tests read ---------------------------------------------------------------------

    @property
    def rejected(self) -> list[Seen]:
        """Requests PagerDuty would have refused (whatever the fake answered)."""
        return [s for s in self.requests if s.problems]

    def seen(self, path: str) -> list[Seen]:
        return [s for s in self.requests if s.path == path]

    def all_alerts(self) -> list[Alert]:
        return [a for alerts in self.alerts.values() for a in alerts]

    # --- scripting faults --------------------------------------------------------------------

    def fail(
        self,
        times: int = 1,
        *,
        status: int = 500,
        retry_after: float | str | None = None,
        path: str | None = None,
        took_effect: bool = False,
    ) -> None:
        """The next `times` requests (to `path`) are answered with `status`."""
        header = None if retry_after is None else _header(retry_after)
        self.faults.append(
            Fault("status", times, path, status, retry_after=header, took_effect=took_effect)
        )

    def rate_limit(
        self, times: int = 1, *, retry_after: float | str | None = 1, path: str | None = None
    ) -> None:
        """The next `times` requests get PagerDuty's 429 (with Retry-After unless None)."""
        self.fail(times, status=429, retry_after=retry_after, path=path)

    def slow(
        self, times: int = 1, *, seconds: float, path: str | None = None, took_effect: bool = True
    ) -> None:
        """The next `times` answers come `seconds` late (the event is processed at once)."""
        self.faults.append(Fault("slow", times, path, seconds=seconds, took_effect=took_effect))

    def drop(self, times: int = 1, *, path: str | None = None, took_effect: bool = False) -> None:
        """The next `times` connections are cut without an answer."""
        self.faults.append(Fault("drop", times, path, took_effect=took_effect))

    def malformed(
        self,
        times: int = 1,
        *,
        body: str = "<html><body>502 Bad Gateway</body></html>",
        path: str | None = None,
        took_effect: bool = True,
    ) -> None:
        """The next `times` answers are 2xx with a body that is not PagerDuty's JSON."""
        self.faults.append(Fault("malformed", times, path, took_effect=took_effect, body=body))

    def down_until(self, moment: datetime, *, clock: Clock, status: int | None = 503) -> None:
        """Until `clock` reaches `moment`, answer every request with `status` (None: drop)."""
        self._down = (moment, clock, status)

    # --- the request cycle -------------------------------------------------------------------

    async def _serve(
        self,
        request: web.Request,
        check: Callable[[Seen, web.Request], Answer | None],
        process: Callable[[Seen, web.Request], Answer],
    ) -> web.StreamResponse:
        raw = await request.read()
        seen = Seen(request.method, request.path, list(request.query.items()), raw)
        seen.at = asyncio.get_running_loop().time()
        self.requests.append(seen)
        refusal = check(seen, request)  # records problems even when a fault answers
        if self._down is not None:
            moment, clock, status = self._down
            if clock.now() < moment:
                return await self._fault(
                    seen,
                    request,
                    Fault("drop" if status is None else "status", 1, status=status or 503),
                )
            self._down = None
        fault = self._next_fault(request.path)
        if fault is not None and not fault.took_effect:
            return await self._fault(seen, request, fault)
        answer = refusal or process(seen, request)
        if fault is not None:
            return await self._fault(seen, request, fault, answer)
        return self._answer(seen, answer)

    def _next_fault(self, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and fault.path in (None, path):
                fault.times -= 1
                return fault
        return None

    def _answer(
        self, seen: Seen, answer: Answer, headers: dict[str, str] | None = None
    ) -> web.Response:
        status, body = answer
        seen.status = status
        return web.json_response(body, status=status, headers=headers)

    async def _fault(
        self, seen: Seen, request: web.Request, fault: Fault, answer: Answer | None = None
    ) -> web.StreamResponse:
        seen.fault = fault.kind if fault.kind != "status" else f"status {fault.status}"
        if fault.kind == "drop":
            assert request.transport is not None
            request.transport.abort()
            return web.Response()
        if fault.kind == "malformed":
            seen.status = 202 if request.method == "POST" else 200
            return web.Response(status=seen.status, text=fault.body, content_type="text/html")
        if fault.kind == "slow":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), fault.seconds)
            return self._answer(seen, answer or self._error(request, 500))
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else None
        return self._answer(seen, self._error(request, fault.status), headers)

    def _error(self, request: web.Request, status: int) -> Answer:
        if request.path == "/v2/enqueue":
            if status == 429:
                return status, {
                    "status": "throttle event",
                    "message": "Requests for this service are arriving too quickly. "
                    "Please retry later.",
                }
            return status, {"status": "error", "message": "Internal Server Error"}
        message = "Too Many Requests" if status == 429 else "Internal Server Error"
        return status, {"error": {"message": message, "code": 2001 if status == 429 else 2000}}

    # --- Events API v2 -----------------------------------------------------------------------

    async def _enqueue(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, self._check_event, self._process_event)

    def _check_event(self, seen: Seen, request: web.Request) -> Answer | None:
        if request.content_type != "application/json":
            seen.problems.append(
                f"Content-Type must be application/json, not {request.content_type!r}"
            )
        try:
            event = json.loads(seen.body)
        except ValueError:
            seen.problems.append("body: not JSON")
            return 400, {
                "status": "Unrecognized object",
                "message": "Event object format is unrecognized",
                "errors": ["JSON parse error"],
            }
        seen.body = event
        problems = _problems(ENQUEUE, event, "event") + _problems(LIMITS, event, "event")
        if isinstance(event, dict):
            action = event.get("event_action")
            if action == "trigger" and "payload" not in event:
                problems.append("event: 'payload' is required to trigger")
            if action in ("acknowledge", "resolve") and "dedup_key" not in event:
                problems.append(f"event: 'dedup_key' is required to {action}")
            key = event.get("routing_key")
            if isinstance(key, str) and len(key) == 32 and key != self.routing_key:
                problems.append("event.routing_key: not the key of any integration")
        seen.problems += problems
        if seen.problems:
            return 400, {**EVENT_ERROR, "errors": seen.problems}
        return None

    def _process_event(self, seen: Seen, request: web.Request) -> Answer:
        event = seen.body
        action = event["event_action"]
        dedup_key = event.get("dedup_key") or uuid.uuid4().hex
        alerts = self.alerts.setdefault(dedup_key, [])
        current = alerts[-1] if alerts and alerts[-1].is_open else None
        if action == "trigger":
            if current is None:
                alerts.append(Alert(dedup_key, payload=event["payload"]))
            else:
                current.apply("trigger")
                current.payload = event["payload"]
        elif current is None:
            self.dropped_events.append((action, dedup_key))  # accepted, then dropped
        else:
            current.apply(action)
        return 202, {"status": "success", "message": "Event processed", "dedup_key": dedup_key}

    # --- REST API v2 -------------------------------------------------------------------------

    async def _oncalls(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, self._checker("/oncalls"), self._process_oncalls)

    async def _service(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, self._checker("/services/{id}"), self._process_service)

    def _checker(self, path: str) -> Callable[[Seen, web.Request], Answer | None]:
        def check(seen: Seen, request: web.Request) -> Answer | None:
            auth = request.headers.get("Authorization", "")
            match = re.fullmatch(r"Token token=(\S+)", auth)
            if match is None or match.group(1) != self.api_token:
                seen.problems.append("Authorization: not 'Token token=<a valid API key>'")
                return 401, {"error": {"message": "Unauthorized", "code": 2006}}
            seen.problems += _rest_problems(REST["paths"][path]["get"], request)
            if seen.problems:
                return 400, {
                    "error": {
                        "message": "Invalid Input Provided",
                        "code": 2001,
                        "errors": seen.problems,
                    }
                }
            return None

        return check

    def _process_oncalls(self, seen: Seen, request: web.Request) -> Answer:
        query = request.query
        policies = set(query.getall("escalation_policy_ids[]", []))
        schedules = set(query.getall("schedule_ids[]", []))
        users = set(query.getall("user_ids[]", []))
        expand = "users" in query.getall("include[]", [])
        shifts = [
            s
            for s in self.roster
            if (not policies or s.escalation_policy in policies)
            and (not schedules or s.schedule in schedules)
            and (not users or s.user.id in users)
        ]
        limit = int(query.get("limit", "25"))
        offset = int(query.get("offset", "0"))
        page = shifts[offset : offset + limit]
        return 200, {
            "oncalls": [self._oncall(s, expand=expand) for s in page],
            "limit": limit,
            "offset": offset,
            "more": offset + limit < len(shifts),
            "total": len(shifts) if query.get("total") == "true" else None,
        }

    def _process_service(self, seen: Seen, request: web.Request) -> Answer:
        service_id = request.match_info["id"]
        policy = self.services.get(service_id)
        if policy is None:
            return 404, {"error": {"message": "Not Found", "code": 2100}}
        return 200, {
            "service": {
                "id": service_id,
                "type": "service",
                "summary": service_id,
                "name": service_id,
                "self": f"{self.url}/services/{service_id}",
                "html_url": f"https://example.pagerduty.com/service-directory/{service_id}",
                "status": "active",
                "escalation_policy": self._reference("escalation_policy", policy),
            }
        }

    def _oncall(self, shift: Shift, *, expand: bool) -> dict[str, Any]:
        person = shift.user
        if expand:
            user: dict[str, Any] = {
                "id": person.id,
                "type": "user",
                "summary": person.name,
                "name": person.name,
                "email": person.email,
                "self": f"{self.url}/users/{person.id}",
                "html_url": f"https://example.pagerduty.com/users/{person.id}",
            }
        else:
            user = self._reference("user", person.id, summary=person.name)
        return {
            "user": user,
            "escalation_policy": self._reference("escalation_policy", shift.escalation_policy),
            "schedule": self._reference("schedule", shift.schedule) if shift.schedule else None,
            "escalation_level": shift.escalation_level,
            "start": "2026-03-02T08:00:00Z" if shift.schedule else None,
            "end": "2026-03-03T08:00:00Z" if shift.schedule else None,
        }

    def _reference(self, kind: str, ident: str, *, summary: str | None = None) -> dict[str, str]:
        collection = "escalation_policies" if kind == "escalation_policy" else f"{kind}s"
        return {
            "id": ident,
            "type": f"{kind}_reference",
            "summary": summary or ident,
            "self": f"{self.url}/{collection}/{ident}",
            "html_url": f"https://example.pagerduty.com/{collection}/{ident}",
        }


def _header(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else str(value)


# --- REST parameters, as the published operation declares them ---------------------------------


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = REGISTRY.resolver(REST_SPEC).lookup(REST_SPEC + node["$ref"]).contents
    return node


def _coerce(text: str, schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    if kind == "integer":
        return int(text)
    if kind == "number":
        return float(text)
    if kind == "boolean":
        if text not in ("true", "false"):
            raise ValueError(f"{text!r} is not true or false")
        return text == "true"
    return text


def _rest_problems(operation: dict[str, Any], request: web.Request) -> list[str]:
    """Headers, path and query parameters checked against the operation's parameters."""
    problems: list[str] = []
    if request.headers.get("Accept") != REST_ACCEPT:
        problems.append(f"header Accept: must be {REST_ACCEPT!r} (REST API v2)")
    declared = set()
    for param in (_resolve(p) for p in operation.get("parameters", [])):
        name, where = param["name"], param["in"]
        schema = param.get("schema", {})
        if where == "header":
            values = request.headers.getall(name, [])
        elif where == "path":
            values = [request.match_info[name]] if name in request.match_info else []
        else:
            declared.add(name)
            values = request.query.getall(name, [])
        if not values:
            if param.get("required"):
                problems.append(f"{where} {name}: required")
            continue
        validator = _validator(schema)
        try:
            if schema.get("type") == "array":
                item = schema.get("items", {})
                checks = [(name, [_coerce(v, _resolve(item)) for v in values])]
            elif name.endswith("[]"):
                checks = [(name, _coerce(v, schema)) for v in values]
            elif len(values) > 1:
                problems.append(f"{where} {name}: given {len(values)} times")
                continue
            else:
                checks = [(name, _coerce(values[0], schema))]
        except ValueError as error:
            problems.append(f"{where} {name}: {error}")
            continue
        for label, value in checks:
            problems += _problems(validator, value, f"{where} {label}")
    unknown = sorted(set(request.query) - declared)
    problems += [f"query {name}: not a parameter of this operation" for name in unknown]
    return problems
