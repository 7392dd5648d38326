"""What an API operation is: its route, who may call it, its body and answer (the table in
web/api.py), and one authenticated call of it. Apart, so each part of the API (incidents,
cases) can define its operations beside its handlers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from incident.domain.access import AccessRole, Action, Principal
from incident.services.incidents import Runtime
from incident.web import schemas as s
from incident.web.errors import ApiError

MAX_ID = 2**53  # ids beyond this cannot exist (and would overflow SQLite's integers)


@dataclass(frozen=True)
class Call:
    """One authenticated API request, its path parameters and its validated body."""

    request: web.Request
    rt: Runtime
    principal: Principal
    body: Any

    @property
    def incident_id(self) -> int:
        return self._id("incident_id", "incident")

    @property
    def maintenance_id(self) -> int:
        return self._id("maintenance_id", "maintenance window")

    @property
    def follow_up_id(self) -> int:
        return self._id("follow_up_id", "follow-up")

    @property
    def case_id(self) -> int:
        return self._id("case_id", "case")

    @property
    def candidate_id(self) -> int:
        return self._id("candidate_id", "incident candidate")

    def _id(self, name: str, what: str) -> int:
        text = self.request.match_info[name]
        value = int(text)
        if not 1 <= value <= MAX_ID:
            raise ApiError(404, "not found", f"there is no {what} {text}")
        return value


Handler = Callable[[Call], Awaitable[web.Response]]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    summary: str
    handler: Handler
    role: AccessRole
    body: type[s.Request] | None = None
    body_optional: bool = False
    response: type[BaseModel] | None = None
    status: int = 200
    # (name, allowed values or the parameter's JSON schema, description)
    query: tuple[tuple[str, list[str] | dict[str, Any], str], ...] = ()
    idempotency_key: bool = False
    also_ok: str = ""  # a 200 besides `status` (201), and what it means
    action: Action | None = None  # the per-incident rule, for the document
    markdown: bool = False  # answers text/markdown (a document), not JSON
