"""Requests that may be sent again verbatim (a signed Slack command): done once.

A signed request stays valid for its signature's window, so the same bytes replayed within
it must not act again. Each one is recorded by a key (its signature) in the database, which
every replica shares; keys older than the window can no longer be replayed and are
forgotten.
"""

from __future__ import annotations

from datetime import timedelta

from incident.services.incidents import Runtime


async def first_sighting(rt: Runtime, key: str, *, valid_for: timedelta) -> bool:
    """Whether this is the first time `key` is seen (False: a replay, to be refused)."""
    now = rt.clock.now()
    # Kept twice as long as a request stays valid: clocks of senders and replicas differ.
    forget_before = now - 2 * valid_for
    return await rt.store.run(
        lambda tx: tx.first_sighting(key[:100], now=now, forget_before=forget_before)
    )
