"""Dashboard sessions: a signed cookie naming which API token logged in, and CSRF tokens.

The cookie is signed with a key derived from the configured API tokens, so every replica
started with the same configuration accepts it and nothing is kept in memory or in the
database. It names the token by a keyed fingerprint (never the token itself) and is checked
against the configuration on every request: removing a token from INCIDENT_API_TOKENS ends
its sessions, and a changed role applies at once. Changing any token changes the key, which
logs everyone out. A session lasts SESSION_LIFETIME from login; logging out ends it for
every replica (its nonce is kept, until it would have expired, in the database:
services/sessions.py), so a copied cookie is worth nothing after logout.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from incident.config import ApiToken, Settings
from incident.domain.access import Principal

SESSION_COOKIE = "incident_session"
LOGIN_COOKIE = "incident_login"
COOKIE_PATH = "/ui"
# A long night's shift: a commander should not be logged out in the middle of an incident.
SESSION_LIFETIME = timedelta(hours=12)

_KEY_CONTEXT = b"incident dashboard sessions v1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class Session:
    """Someone logged in: who they act as, until when, and the CSRF token of their forms."""

    token: ApiToken
    nonce: str
    expires_at: datetime
    csrf: str

    @property
    def principal(self) -> Principal:
        return self.token.principal


class SessionKeys:
    """Issues and checks session cookies and CSRF tokens for one configuration."""

    def __init__(self, settings: Settings) -> None:
        self._tokens = settings.api_tokens
        material = b"\0".join(sorted(t.token.encode() for t in self._tokens))
        self._key = hmac.new(_KEY_CONTEXT, material, hashlib.sha256).digest()
        self.secure = settings.base_url.startswith("https://")

    def _sign(self, purpose: str, value: str) -> str:
        return _b64(hmac.new(self._key, f"{purpose}\0{value}".encode(), hashlib.sha256).digest())

    def _fingerprint(self, token: ApiToken) -> str:
        return self._sign("token", token.token)[:22]

    def issue(self, token: ApiToken, *, now: datetime) -> tuple[str, Session]:
        """A new session for `token`: the cookie value and what it stands for."""
        nonce = secrets.token_urlsafe(16)
        expires_at = now + SESSION_LIFETIME
        payload = f"{self._fingerprint(token)}.{nonce}.{int(expires_at.timestamp())}"
        cookie = f"{payload}.{self._sign('session', payload)}"
        return cookie, self._session(token, nonce, expires_at)

    def read(self, cookie: str | None, *, now: datetime) -> Session | None:
        """The session a cookie stands for; None if it is missing, forged, expired or its
        token is no longer configured."""
        if not cookie or cookie.count(".") != 3:
            return None
        fingerprint, nonce, expires, signature = cookie.split(".")
        payload = f"{fingerprint}.{nonce}.{expires}"
        if not hmac.compare_digest(signature, self._sign("session", payload)):
            return None
        if not expires.isdigit():
            return None
        expires_at = datetime.fromtimestamp(int(expires), UTC)
        if expires_at <= now:
            return None
        found = None
        for candidate in self._tokens:
            # Every token is compared, each in constant time, as the API does.
            if hmac.compare_digest(self._fingerprint(candidate), fingerprint):
                found = candidate
        return None if found is None else self._session(found, nonce, expires_at)

    def _session(self, token: ApiToken, nonce: str, expires_at: datetime) -> Session:
        return Session(
            token=token, nonce=nonce, expires_at=expires_at, csrf=self._sign("csrf", nonce)
        )

    @staticmethod
    def csrf_matches(expected: str, presented: str) -> bool:
        return bool(presented) and hmac.compare_digest(expected.encode(), presented.encode())

    @staticmethod
    def login_nonce() -> str:
        """For the login form's double-submit check (the cookie and the field must match):
        another site cannot log a browser in with a token of its choosing."""
        return secrets.token_urlsafe(16)
