"""Every error leaves as JSON `{"error": ..., "detail": ...}`; none leaves as a traceback.

Domain refusals map to 4xx by kind. aiohttp's own HTTP errors (404, 405, 413 ...) get the
same body. Anything else is a bug: it is logged with its traceback and answered with a
plain 500 that names the request id, so an operator can find it in the logs.
"""

from __future__ import annotations

import functools
import itertools
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import hdrs, web
from pydantic import ValidationError

from incident.domain import text as rules
from incident.domain.case_context import ContextRefused
from incident.domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    IllegalTransition,
    InvalidPlaybook,
    InvalidValue,
    NotFound,
)
from incident.web.context import CONTAINER

log = logging.getLogger("incident.web")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

REQUEST_ID = web.RequestKey("request_id", str)


class ApiError(Exception):
    """A refusal decided in the web layer (authentication, content type, body shape)."""

    def __init__(
        self, status: int, error: str, detail: Any, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(str(detail))
        self.status, self.error, self.detail = status, error, detail
        self.headers = headers or {}


def json_error(
    status: int, error: str, detail: Any, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response({"error": error, "detail": detail}, status=status, headers=headers)


def domain_status(error: DomainError) -> tuple[int, str]:
    match error:
        case InvalidValue() | InvalidPlaybook():
            return 422, "invalid value"
        case NotFound():
            return 404, "not found"
        case Forbidden():
            return 403, "forbidden"
        case IllegalTransition():
            return 409, "not allowed now"
        case Conflict():
            return 409, "conflict"
    return 400, "bad request"


def validation_detail(error: ValidationError) -> list[dict[str, str]]:
    """Pydantic's errors as [{"field": "a.b", "problem": "..."}], without input echoes."""
    return [
        {
            "field": ".".join(str(part) for part in item["loc"]) or "(body)",
            "problem": _problem(item["type"], item["msg"], item.get("ctx") or {}),
        }
        for item in error.errors(include_url=False, include_input=False)
    ]


# The domain's text patterns, and what to say for each instead of the regular expression.
_PATTERN_PROBLEMS = {
    rules.LINK_PATTERN: "give an http:// or https:// link, like https://docs.example.com/rca/42",
    rules.FILLED_LINE_PATTERN: "is blank, or contains line breaks or control characters; "
    "give plain text on one line",
    rules.LINE_PATTERN: "contains line breaks or control characters; use plain text on one line",
    rules.FILLED_TEXT_PATTERN: "is blank, or contains control characters; give plain text "
    "(tabs and new lines are fine)",
    rules.TEXT_PATTERN: "contains control characters; use plain text (tabs and new lines are fine)",
}


def _problem(kind: str, message: str, context: dict[str, Any]) -> str:
    if kind == "string_pattern_mismatch":
        return _PATTERN_PROBLEMS.get(str(context.get("pattern", "")), message)
    return message


# Request ids: a random per-process prefix and a counter. Unique across replicas and
# restarts like a uuid4, at a fraction of its cost on every request.
_PROCESS_PREFIX = uuid.uuid4().hex[:8]
_request_numbers = itertools.count(1)


def _next_request_id() -> str:
    return f"{_PROCESS_PREFIX}{next(_request_numbers):08x}"


H = TypeVar("H", bound=Handler)


def guarded(handler: H) -> H:
    """`handler` answering every error as JSON, with a request id (see above).

    Every route is registered guarded but the public snapshot's reads, which answer from
    memory and cannot fail on any input: a guard per route, not a middleware, because
    aiohttp wraps every request of an app that has any middleware at all in two more
    coroutines, the crowd's reads too (bench/README.md)."""

    @functools.wraps(handler)
    async def guard(request: web.Request) -> web.StreamResponse:
        request_id = request.headers.get("X-Request-Id", "")[:64] or _next_request_id()
        request[REQUEST_ID] = request_id
        try:
            response = await handler(request)
        except ApiError as error:
            response = json_error(error.status, error.error, error.detail, error.headers)
        except ContextRefused as error:
            problems = [{"field": p.field, "problem": p.problem} for p in error.problems]
            response = json_error(422, "context missing or malformed", problems)
        except DomainError as error:
            status, kind = domain_status(error)
            response = json_error(status, kind, str(error))
        except ValidationError as error:
            response = json_error(422, "invalid value", validation_detail(error))
        except web.HTTPException as error:
            if error.status < 400:
                raise
            detail = error.text if error.text and error.text != error.reason else error.reason
            if error.status == 413:
                limit = request.app[CONTAINER].settings.max_body_bytes
                detail = f"the body is larger than the limit of {limit} bytes"
            headers = {k: v for k, v in error.headers.items() if k.lower() == "allow"}
            response = json_error(error.status, error.reason.lower(), detail, headers)
        except Exception:
            log.exception(
                "unhandled error",
                extra={"request_id": request_id, "method": request.method, "path": request.path},
            )
            response = json_error(
                500, "internal error", f"something went wrong on our side; request id {request_id}"
            )
        response.headers.setdefault("X-Request-Id", request_id)
        return response

    return guard  # type: ignore[return-value]


def add_json_fallbacks(app: web.Application) -> None:
    """What no route takes is answered as JSON too: a known path with another method
    405 (with Allow), any other path 404. Call once every route is added."""
    for resource in list(app.router.resources()):
        methods = sorted({route.method for route in resource})
        if isinstance(resource, web.Resource) and hdrs.METH_ANY not in methods:
            resource.add_route(hdrs.METH_ANY, guarded(_not_allowed(methods)))
    # [\s\S], not ".": a path may hold an encoded line break.
    app.router.add_route(hdrs.METH_ANY, r"/{path:[\s\S]*}", guarded(_not_found))


def _not_allowed(allowed: list[str]) -> Handler:
    async def refuse(request: web.Request) -> web.StreamResponse:
        raise web.HTTPMethodNotAllowed(request.method, allowed)

    return refuse


async def _not_found(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotFound()
