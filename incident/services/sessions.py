"""Dashboard sessions ended before their time (logout): refused by every replica until they
would have expired. The sessions themselves are signed cookies (web/dashboard/sessions.py);
only their ending needs the database."""

from __future__ import annotations

from datetime import datetime

from incident.services.incidents import Runtime


async def end_session(rt: Runtime, nonce: str, *, expires_at: datetime) -> None:
    now = rt.clock.now()
    await rt.store.run(lambda tx: tx.revoke_session(nonce, expires_at=expires_at, now=now))


async def session_ended(rt: Runtime, nonce: str) -> bool:
    return await rt.store.read(lambda tx: tx.session_revoked(nonce))
