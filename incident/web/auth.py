"""Bearer tokens from settings (INCIDENT_API_TOKENS): who is calling, as a Principal."""

from __future__ import annotations

from aiohttp import web

from incident.domain.access import AccessRole, Principal
from incident.web.context import CONTAINER
from incident.web.errors import ApiError

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="incident"'}


def authenticate(request: web.Request, *, at_least: AccessRole) -> Principal:
    """The caller's principal; 401 without a known token, 403 if its role is too low."""
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise ApiError(
            401,
            "unauthorized",
            "send 'Authorization: Bearer <token>' with a token from INCIDENT_API_TOKENS",
            _CHALLENGE,
        )
    token = request.app[CONTAINER].settings.token(presented.strip())
    if token is None:
        raise ApiError(401, "unauthorized", "the bearer token is not one we know", _CHALLENGE)
    if not token.role >= at_least:
        raise ApiError(
            403,
            "forbidden",
            f"this token's role is {token.role.value}; this needs {at_least.value} or higher",
        )
    return token.principal
