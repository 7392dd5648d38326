"""A strict local Atlassian Statuspage (management API v1): an aiohttp app on 127.0.0.1.

It accepts only what Statuspage accepts, by its published OpenAPI document (the parts we use
are copied in specs/statuspage-manage-v1.subset.json): the `Authorization: OAuth <key>`
header (or the documented `api_key` query parameter), the page id, and request bodies
validated with `jsonschema` against the spec's own request schemas, read as their
descriptions say:

- `incident.name` at most 255 characters and not blank, `incident.body` at most 25000;
- `incident.components` is a map of component id to one of the spec's component statuses
  (the spec shows it with one sample id as its only property), and those ids must be
  components of the page, as must `component_ids`;
- every top-level value of `incident.metadata` must be an object;
- realtime statuses only, unless `scheduled_for` is given;
- deliberately stricter than the real API: unknown fields inside `incident` are refused
  (the real API may silently ignore them, which would hide a typo in the adapter).

It answers in Statuspage's shapes (each answer is checked against the spec's `Incident`
and `Component` schemas; a mismatch is kept in `problems`), keeps state (incidents with
their update history, component statuses; a deleted incident is gone, 404 from then on,
kept in `deleted` for tests, and its components keep the statuses they had), enforces the
rate limit (one request per `min_interval` per key: 429 with Retry-After in whole seconds),
and scripts faults: 429s, 5xx, slow answers, dropped connections, malformed bodies, and
being down for a while. The rate limit and "down" read time from a `Clock`, so a test can
run them in virtual time.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import json
import math
import re
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import jsonschema  # type: ignore[import-untyped,unused-ignore]
from aiohttp import web

from incident.clock import Clock, SystemClock

SPEC_FILE = Path(__file__).parent / "specs" / "statuspage-manage-v1.subset.json"
REALTIME = ("investigating", "identified", "monitoring", "resolved")
UNRESOLVED_EXCLUDES = ("resolved", "completed", "postmortem")
_OUTAGE_IMPACT = {
    "major_outage": "critical",
    "partial_outage": "major",
    "degraded_performance": "minor",
}
_IMPACT_ORDER = ("none", "maintenance", "minor", "major", "critical")


@functools.cache
def spec() -> dict[str, Any]:
    """The copied spec, with the vendor's `"type": "Object"` typo on Incident.metadata fixed."""
    document: dict[str, Any] = json.loads(SPEC_FILE.read_text(encoding="utf-8"))
    metadata = document["components"]["schemas"]["Incident"]["properties"]["metadata"]
    if metadata.get("type") == "Object":
        metadata["type"] = "object"
    return document


def _schema(name: str) -> dict[str, Any]:
    """A schema of the spec, self-contained (its $refs resolve inside the document)."""
    schemas = spec()["components"]["schemas"]
    return {**copy.deepcopy(schemas[name]), "components": {"schemas": schemas}}


@functools.cache
def request_validator(name: str) -> jsonschema.Draft7Validator:
    """The validator for a request body: the spec's schema, tightened as its text says."""
    schema = _schema(name)
    schema["required"] = ["incident"]
    incident = schema["properties"]["incident"]
    fields = incident["properties"]
    incident["additionalProperties"] = False
    fields["name"]["maxLength"] = 255
    fields["body"]["maxLength"] = 25_000
    sample = next(iter(fields["components"]["properties"].values()))
    fields["components"] = {
        "type": "object",
        "description": fields["components"]["description"],
        "additionalProperties": {"type": "string", "enum": sample["enum"]},
    }
    fields["metadata"] = {**fields["metadata"], "additionalProperties": {"type": "object"}}
    return jsonschema.Draft7Validator(schema)


@functools.cache
def response_validator(name: str) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(_schema(name))


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Fault:
    """One scripted misbehaviour, for the next `times` requests (of `method`, if given).

    `process`: Statuspage does the work first, then misbehaves (the client cannot tell
    whether its write happened).
    """

    kind: str  # "status" | "slow" | "drop" | "malformed"
    times: int = 1
    status: int = 500
    retry_after: str | None = None
    delay: float = 0.0
    process: bool = False
    method: str | None = None
    body: str = '{"id": "truncated'


@dataclass
class Seen:
    """A request as the fake received it (kept on arrival), and what it answered (0: not
    yet, or never, as for a dropped connection)."""

    method: str
    path: str
    at: float  # the clock's monotonic seconds
    body: Any = None
    status: int = 0
    reason: str = ""


@dataclass
class FakeComponent:
    id: str
    name: str
    status: str = "operational"
    position: int = 1
    created_at: datetime = field(default_factory=lambda: datetime(2025, 1, 1, tzinfo=UTC))
    updated_at: datetime = field(default_factory=lambda: datetime(2025, 1, 1, tzinfo=UTC))


@dataclass
class FakeUpdate:
    id: str
    status: str
    body: str
    created_at: datetime
    affected_components: list[dict[str, str]]


@dataclass
class FakeIncident:
    id: str
    name: str
    status: str
    created_at: datetime
    updated_at: datetime
    impact_override: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    component_ids: list[str] = field(default_factory=list)
    updates: list[FakeUpdate] = field(default_factory=list)  # oldest first
    monitoring_at: datetime | None = None
    resolved_at: datetime | None = None

    @property
    def statuses(self) -> list[str]:
        return [u.status for u in self.updates]

    @property
    def bodies(self) -> list[str]:
        return [u.body for u in self.updates]


class _Refusal(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class StatuspageFake:
    """The fake Statuspage. `async with StatuspageFake(...) as fake:` then `fake.url` is the
    API base URL (ending in /v1) to hand to the adapter."""

    def __init__(
        self,
        *,
        page_id: str = "pg1fake0test",
        api_key: str = "sp-fake-key-5f0c1e2a9b7d4c3e",
        components: Mapping[str, str] | None = None,
        clock: Clock | None = None,
        min_interval: float = 1.0,
    ) -> None:
        self.page_id = page_id
        self.api_key = api_key
        self.clock: Clock = clock or SystemClock()
        self.min_interval = min_interval
        self.components: dict[str, FakeComponent] = {
            cid: FakeComponent(id=cid, name=name, position=n)
            for n, (cid, name) in enumerate((components or {}).items(), start=1)
        }
        self.incidents: dict[str, FakeIncident] = {}
        self.deleted: dict[str, FakeIncident] = {}  # incidents removed by DELETE
        self.requests: list[Seen] = []
        self.rate_limited = 0  # 429s the rate limit answered (scripted ones not counted)
        self.invalid: list[Seen] = []  # refused as Statuspage would: auth, page, body
        self.problems: list[str] = []  # the fake's own answers that broke the spec
        self._faults: list[Fault] = []
        self._down_until: float | None = None
        self._last_accepted: float | None = None
        self._counter = 0
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port = 0

    # --- lifetime --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if not self._port:
            raise RuntimeError("the fake Statuspage is not started")
        return f"http://127.0.0.1:{self._port}/v1"

    async def start(self) -> str:
        app = web.Application(middlewares=[self._middleware])
        page = "/v1/pages/{page_id}"
        app.router.add_post(page + "/incidents", self._create)
        app.router.add_get(page + "/incidents", self._list)
        app.router.add_get(page + "/incidents/unresolved", self._unresolved)
        app.router.add_get(page + "/incidents/{incident_id}", self._get)
        app.router.add_patch(page + "/incidents/{incident_id}", self._patch)
        app.router.add_delete(page + "/incidents/{incident_id}", self._delete)
        app.router.add_get(page + "/components", self._list_components)
        app.router.add_get(page + "/components/{component_id}", self._get_component)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self.url

    async def close(self) -> None:
        self._closing.set()  # slow answers end now
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> StatuspageFake:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- scripting faults ------------------------------------------------------------------

    def script(self, fault: Fault) -> None:
        self._faults.append(fault)

    def rate_limit_next(
        self, times: int = 1, *, retry_after: str | None = "1", method: str | None = None
    ) -> None:
        self.script(Fault("status", times, status=429, retry_after=retry_after, method=method))

    def fail_next(
        self, times: int = 1, *, status: int = 500, method: str | None = None, process: bool = False
    ) -> None:
        self.script(Fault("status", times, status=status, method=method, process=process))

    def slow_next(
        self, times: int = 1, *, delay: float, method: str | None = None, process: bool = True
    ) -> None:
        """Answer only after `delay` real seconds (beyond a client's timeout, say)."""
        self.script(Fault("slow", times, delay=delay, method=method, process=process))

    def drop_next(
        self, times: int = 1, *, method: str | None = None, process: bool = False
    ) -> None:
        """Close the connection without answering."""
        self.script(Fault("drop", times, method=method, process=process))

    def malformed_next(
        self,
        times: int = 1,
        *,
        method: str | None = None,
        process: bool = True,
        body: str = '{"id": "truncated',
    ) -> None:
        """Answer 200 with `body`: by default JSON cut short; or JSON of the wrong shape."""
        self.script(Fault("malformed", times, method=method, process=process, body=body))

    def down_for(self, seconds: float) -> None:
        """Answer 503 to everything for `seconds` of the fake's clock."""
        self._down_until = self.clock.monotonic() + seconds

    def down_until(self, at: datetime) -> None:
        """Answer 503 to everything until the fake's clock reads `at`."""
        self.down_for((at - self.clock.now()).total_seconds())

    # --- observing -------------------------------------------------------------------------

    def only_incident(self) -> FakeIncident:
        assert len(self.incidents) == 1, f"expected one incident, found {len(self.incidents)}"
        return next(iter(self.incidents.values()))

    def writes(self) -> list[Seen]:
        return [r for r in self.requests if r.method in ("POST", "PATCH", "PUT", "DELETE")]

    # --- the middleware: faults, auth, rate limit, errors ----------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        body: Any = None
        if request.can_read_body:
            text = await request.text()
            try:
                body = json.loads(text)
            except ValueError:
                body = text
        now = self.clock.monotonic()
        seen = Seen(request.method, request.path, now, body)
        self.requests.append(seen)
        fault = None
        if self._down_until is not None and now < self._down_until:
            response: web.StreamResponse = self._error(503, "Service Unavailable")
        elif (fault := self._take_fault(request.method)) is not None and not fault.process:
            response = await self._misbehave(fault, request, None)
        else:
            response = await self._serve(request, handler)
            if fault is not None:
                response = await self._misbehave(fault, request, response)
        if fault is None or fault.kind != "drop":
            seen.status = response.status
            if response.status >= 400:
                seen.reason = getattr(response, "text", "") or ""
        if response.status in (400, 401, 404, 422):
            self.invalid.append(seen)
        return response

    async def _serve(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            self._authenticate(request)
            self._rate_limit()
            page_id = request.match_info.get("page_id")
            if page_id is not None and page_id != self.page_id:
                raise _Refusal(404, "The requested resource could not be found.")
            return await handler(request)
        except _Refusal as refusal:
            response = self._error(refusal.status, refusal.message)
            if refusal.status == 429:
                response.headers["Retry-After"] = str(self._retry_after())
            return response
        except web.HTTPNotFound:
            return self._error(404, "The requested resource could not be found.")
        except web.HTTPMethodNotAllowed:
            return self._error(405, "Method Not Allowed")

    def _authenticate(self, request: web.Request) -> None:
        header = request.headers.get("Authorization")
        if header is not None:
            match = re.fullmatch(r"OAuth ([A-Za-z0-9_\-]+)", header)
            if match is None or match.group(1) != self.api_key:
                raise _Refusal(401, "Could not authenticate")
        elif request.query.get("api_key") != self.api_key:
            raise _Refusal(401, "Could not authenticate")

    def _rate_limit(self) -> None:
        now = self.clock.monotonic()
        # A microsecond of slack: the resolution of the clock (FakeClock rounds to it).
        if self._last_accepted is not None and now + 1e-6 < self._last_accepted + self.min_interval:
            self.rate_limited += 1
            raise _Refusal(429, "Rate limit exceeded")
        self._last_accepted = now

    def _retry_after(self) -> int:
        assert self._last_accepted is not None
        wait = self._last_accepted + self.min_interval - self.clock.monotonic()
        return max(1, math.ceil(wait))

    def _take_fault(self, method: str) -> Fault | None:
        for fault in self._faults:
            if fault.method is None or fault.method == method:
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    async def _misbehave(
        self, fault: Fault, request: web.Request, response: web.StreamResponse | None
    ) -> web.StreamResponse:
        if fault.kind == "status":
            error = self._error(fault.status, "Scripted failure")
            if fault.retry_after is not None:
                error.headers["Retry-After"] = fault.retry_after
            return error
        if fault.kind == "slow":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), fault.delay)
            return response or self._error(504, "Gateway Timeout")
        if fault.kind == "drop":
            assert request.transport is not None
            request.transport.close()
            return self._error(599, "dropped")  # never reaches the client
        return web.Response(status=200, text=fault.body, content_type="application/json")

    @staticmethod
    def _error(status: int, message: str) -> web.Response:
        return web.json_response({"message": message}, status=status)

    # --- incidents -------------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.StreamResponse:
        fields = await self._incident_fields(request, "postPagesPageIdIncidents")
        if not str(fields.get("name", "")).strip():
            raise _Refusal(422, "Name can't be blank")
        now = self.clock.now()
        self._counter += 1
        incident = FakeIncident(
            id=f"inc{self._counter:09d}",
            name=fields["name"],
            status=fields.get("status", "investigating"),
            created_at=now,
            updated_at=now,
            metadata=fields.get("metadata", {}),
        )
        self.incidents[incident.id] = incident
        self._apply(incident, fields, now, new=True)
        return self._answer(incident, status=201)

    async def _patch(self, request: web.Request) -> web.StreamResponse:
        incident = self._incident(request)
        fields = await self._incident_fields(request, "patchPagesPageIdIncidents")
        if "name" in fields and not str(fields["name"]).strip():
            raise _Refusal(422, "Name can't be blank")
        now = self.clock.now()
        if "name" in fields:
            incident.name = fields["name"]
        if "metadata" in fields:
            incident.metadata = fields["metadata"]
        self._apply(incident, fields, now, new=False)
        return self._answer(incident)

    async def _get(self, request: web.Request) -> web.StreamResponse:
        return self._answer(self._incident(request))

    async def _delete(self, request: web.Request) -> web.StreamResponse:
        """Gone for good (404 from now on), answered with the incident as it was. Its
        components keep their statuses: they are the page's, not the incident's."""
        incident = self._incident(request)
        if request.body_exists and (await request.read()).strip():
            raise _Refusal(400, "DELETE takes no body")
        answer = self._answer(incident)
        self.deleted[incident.id] = self.incidents.pop(incident.id)
        return answer

    async def _list(self, request: web.Request) -> web.StreamResponse:
        limit = self._int_query(request, "limit", 100, top=100)
        page = self._int_query(request, "page", 1)
        q = request.query.get("q", "").lower()
        found = [
            i
            for i in reversed(self.incidents.values())
            if not q
            or q in i.name.lower()
            or q == i.status
            or any(q in u.body.lower() for u in i.updates)
        ]
        return self._answer_list(found[(page - 1) * limit : page * limit])

    async def _unresolved(self, request: web.Request) -> web.StreamResponse:
        per_page = self._int_query(request, "per_page", 100, top=100)
        page = self._int_query(request, "page", 1)
        found = [
            i for i in reversed(self.incidents.values()) if i.status not in UNRESOLVED_EXCLUDES
        ]
        return self._answer_list(found[(page - 1) * per_page : page * per_page])

    def _incident(self, request: web.Request) -> FakeIncident:
        incident = self.incidents.get(request.match_info["incident_id"])
        if incident is None:
            raise _Refusal(404, "The requested resource could not be found.")
        return incident

    async def _incident_fields(self, request: web.Request, schema: str) -> dict[str, Any]:
        if request.content_type != "application/json":
            raise _Refusal(400, f"expected a JSON body, not {request.content_type or 'none'}")
        try:
            body = json.loads(await request.text())
        except ValueError:
            raise _Refusal(400, "the body is not valid JSON") from None
        errors = sorted(request_validator(schema).iter_errors(body), key=lambda e: e.path)
        if errors:
            where = "/".join(map(str, errors[0].absolute_path)) or "body"
            raise _Refusal(
                400 if errors[0].validator == "required" else 422, f"{where}: {errors[0].message}"
            )
        fields: dict[str, Any] = body["incident"]
        status = fields.get("status")
        if status is not None and status not in REALTIME and "scheduled_for" not in fields:
            raise _Refusal(422, f"status {status!r} is for scheduled maintenance only")
        unknown = sorted(
            (set(fields.get("components", {})) | set(fields.get("component_ids", [])))
            - set(self.components)
        )
        if unknown:
            raise _Refusal(422, f"unknown component ids: {', '.join(unknown)}")
        if fields.get("backfilled") and (fields.get("components") or fields.get("component_ids")):
            raise _Refusal(422, "a backfilled incident cannot have components")
        return fields

    def _apply(
        self, incident: FakeIncident, fields: Mapping[str, Any], now: datetime, *, new: bool
    ) -> None:
        """Change the incident as Statuspage does: a status or body makes a new update."""
        if "impact_override" in fields:
            incident.impact_override = fields["impact_override"]
        for cid in [*fields.get("component_ids", []), *fields.get("components", {})]:
            if cid not in incident.component_ids:
                incident.component_ids.append(cid)
        affected = []
        for cid, status in fields.get("components", {}).items():
            component = self.components[cid]
            if status and status != component.status:
                affected.append(
                    {
                        "code": cid,
                        "name": component.name,
                        "old_status": component.status,
                        "new_status": status,
                    }
                )
                component.status = status
                component.updated_at = now
        status = fields.get("status", incident.status)
        if new or "status" in fields or "body" in fields:
            self._counter += 1
            incident.updates.append(
                FakeUpdate(
                    id=f"upd{self._counter:09d}",
                    status=status,
                    body=fields.get("body", ""),
                    created_at=now,
                    affected_components=affected,
                )
            )
        if status == "monitoring" and incident.status != "monitoring":
            incident.monitoring_at = now
        if status == "resolved" and incident.resolved_at is None:
            incident.resolved_at = now
        incident.status = status
        incident.updated_at = now

    # --- components ------------------------------------------------------------------------

    async def _list_components(self, request: web.Request) -> web.StreamResponse:
        return web.json_response([self._component_json(c) for c in self.components.values()])

    async def _get_component(self, request: web.Request) -> web.StreamResponse:
        component = self.components.get(request.match_info["component_id"])
        if component is None:
            raise _Refusal(404, "The requested resource could not be found.")
        return web.json_response(self._component_json(component))

    # --- answers ---------------------------------------------------------------------------

    def _impact(self, incident: FakeIncident) -> str:
        if incident.impact_override:
            return incident.impact_override
        worst = "none"
        for cid in incident.component_ids:
            impact = _OUTAGE_IMPACT.get(self.components[cid].status, "none")
            worst = max(worst, impact, key=_IMPACT_ORDER.index)
        return worst

    def _component_json(self, component: FakeComponent) -> dict[str, Any]:
        data = {
            "id": component.id,
            "page_id": self.page_id,
            "group_id": None,
            "created_at": _stamp(component.created_at),
            "updated_at": _stamp(component.updated_at),
            "group": False,
            "name": component.name,
            "description": None,
            "position": component.position,
            "status": component.status,
            "showcase": True,
            "only_show_if_degraded": False,
            "automation_email": f"component+{component.id}@notifications.statuspage.io",
            "start_date": "2025-01-01",
        }
        return self._checked("Component", data)

    def _incident_json(self, incident: FakeIncident) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": incident.id,
            "components": [
                self._component_json(self.components[c]) for c in incident.component_ids
            ],
            "created_at": _stamp(incident.created_at),
            "impact": self._impact(incident),
            "impact_override": incident.impact_override,
            "incident_updates": [
                {
                    "id": u.id,
                    "incident_id": incident.id,
                    "affected_components": u.affected_components,
                    "body": u.body,
                    "created_at": _stamp(u.created_at),
                    "custom_tweet": None,
                    "deliver_notifications": True,
                    "display_at": _stamp(u.created_at),
                    "status": u.status,
                    "tweet_id": None,
                    "twitter_updated_at": None,
                    "updated_at": _stamp(u.created_at),
                    "wants_twitter_update": False,
                }
                for u in reversed(incident.updates)  # newest first, as Statuspage lists them
            ],
            "incident_impacts": [],
            "metadata": incident.metadata,
            "monitoring_at": _stamp(incident.monitoring_at) if incident.monitoring_at else None,
            "name": incident.name,
            "page_id": self.page_id,
            "postmortem_body": None,
            "postmortem_ignored": False,
            "resolved_at": _stamp(incident.resolved_at) if incident.resolved_at else None,
            "shortlink": f"https://stspg.io/{incident.id}",
            "status": incident.status,
            "updated_at": _stamp(incident.updated_at),
            "reminder_intervals": None,
        }
        return self._checked("Incident", data)

    def _checked(self, schema: str, data: dict[str, Any]) -> dict[str, Any]:
        # Statuspage answers null for unset fields; the spec's schemas do not say nullable,
        # so nulls are left out of the check (and kept in the answer, as the real API does).
        present = {k: v for k, v in data.items() if v is not None}
        if schema == "Incident":
            present["incident_updates"] = [
                {k: v for k, v in u.items() if v is not None} for u in data["incident_updates"]
            ]
            present["components"] = [
                {k: v for k, v in c.items() if v is not None} for c in data["components"]
            ]
        for error in response_validator(schema).iter_errors(present):
            self.problems.append(f"{schema} answer: {error.message}")
        return data

    def _answer(self, incident: FakeIncident, *, status: int = 200) -> web.Response:
        return web.json_response(self._incident_json(incident), status=status)

    def _answer_list(self, incidents: list[FakeIncident]) -> web.Response:
        return web.json_response([self._incident_json(i) for i in incidents])

    @staticmethod
    def _int_query(request: web.Request, name: str, default: int, top: int | None = None) -> int:
        raw = request.query.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise _Refusal(400, f"{name} must be an integer") from None
        if value < 1:
            raise _Refusal(400, f"{name} must be 1 or more")
        return min(value, top) if top else value
