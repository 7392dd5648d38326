"""Bearer tokens from settings (INCIDENT_API_TOKENS): who is calling, as a Principal."""

from __future__ import annotations

import math

from aiohttp import web

from incident.domain.access import AccessRole, Principal
from incident.web.context import CONTAINER, FAILED_LOGINS
from incident.web.errors import ApiError

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="incident"'}


def authenticate(request: web.Request, *, at_least: AccessRole) -> Principal:
    """The caller's principal; 401 without a known token, 403 if its role is too low, 429
    while the client has made too many failed logins (throttle.py)."""
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise ApiError(
            401,
            "unauthorized",
            "send 'Authorization: Bearer <token>' with a token from INCIDENT_API_TOKENS",
            _CHALLENGE,
        )
    refuse_while_throttled(request)
    token = request.app[CONTAINER].settings.token(presented.strip())
    if token is None:
        request.app[FAILED_LOGINS].failed(client_of(request))
        raise ApiError(401, "unauthorized", "the bearer token is not one we know", _CHALLENGE)
    if not token.role >= at_least:
        raise ApiError(
            403,
            "forbidden",
            f"this token's role is {token.role.value}; this needs {at_least.value} or higher",
        )
    return token.principal


def client_of(request: web.Request) -> str:
    """Who is trying: the connection's address."""
    return request.remote or "unknown"


def refuse_while_throttled(request: web.Request) -> None:
    """429 with Retry-After while this client has made too many failed logins."""
    wait = request.app[FAILED_LOGINS].blocked_for(client_of(request))
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        raise ApiError(
            429,
            "too many failed logins",
            f"too many wrong tokens from this address; try again in {seconds} s",
            {"Retry-After": str(seconds)},
        )
