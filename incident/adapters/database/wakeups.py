"""Replicas wake each other's schedulers when a plan changes: PostgreSQL LISTEN / NOTIFY.

Each replica listens on a connection of its own (not one of the pool's), reconnecting with
backoff when it drops, and wakes its schedulers after every (re)connection, in case it missed
a signal meanwhile. Announcing is a NOTIFY sent on that connection once the change is
committed; announcements made while one is being sent become one more. A lost signal costs
latency, never a step: the schedulers poll as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

log = logging.getLogger("incident.wakeups")

CHANNEL = "incident_plan"


def _nothing() -> None:
    return None


class LocalSignal:
    """One process (SQLite): its schedulers are woken in-process; nobody else to tell."""

    def __init__(self) -> None:
        self.on_signal = _nothing

    def announce(self) -> None:
        return None

    async def listen(self, stop: asyncio.Event) -> None:
        await stop.wait()


class PostgresSignal:
    """The `PlanSignal` port on PostgreSQL's LISTEN / NOTIFY.

    `replica` is this process's name, sent as the payload so that a replica ignores its own
    signals (its schedulers were woken in-process already).
    """

    def __init__(
        self,
        url: str,
        *,
        replica: str,
        channel: str = CHANNEL,
        keepalive: float = 15.0,
        backoff: float = 0.5,
        backoff_cap: float = 30.0,
    ) -> None:
        self._dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.replica = replica
        self.channel = channel
        self.keepalive = keepalive
        self.backoff = backoff
        self.backoff_cap = backoff_cap
        self.on_signal = _nothing
        self.listening = asyncio.Event()  # set while a connection listens
        # Counters, for tests and logs.
        self.sent = 0
        self.heard = 0
        self.connections = 0
        self._connection: Any = None
        self._use = asyncio.Lock()  # one statement at a time on the connection
        self._pending = False
        self._sender: asyncio.Task[None] | None = None

    def announce(self) -> None:
        """Tell the other replicas, soon, without waiting: called after a commit."""
        if self._connection is None:
            return  # not listening either: the others will poll
        self._pending = True
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(self._send())

    async def _send(self) -> None:
        while self._pending:
            self._pending = False
            connection = self._connection
            if connection is None:
                return
            try:
                async with self._use:
                    await connection.execute(
                        "SELECT pg_notify($1, $2)", self.channel, self.replica, timeout=5
                    )
            except Exception as error:  # the connection broke: `listen` reconnects
                log.warning(
                    "could not signal the other replicas",
                    extra={"action": "signal_send_failed", "error": f"{error!r}"[:300]},
                )
                return
            self.sent += 1

    async def listen(self, stop: asyncio.Event) -> None:
        """Listen until `stop` is set, reconnecting (with backoff) whenever the connection
        is lost or cannot be made."""
        delay = self.backoff
        while not stop.is_set():
            try:
                connection = await asyncpg.connect(
                    self._dsn,
                    timeout=10,
                    server_settings={"application_name": f"incident-signal {self.replica}"[:63]},
                )
            except Exception as error:
                log.warning(
                    "cannot listen for other replicas' plan changes; polling meanwhile",
                    extra={
                        "action": "signal_connect_failed",
                        "error": f"{error!r}"[:300],
                        "retry_in": delay,
                    },
                )
                await _wait(stop, delay)
                delay = min(delay * 2, self.backoff_cap)
                continue
            try:
                if await self._listen_on(connection, stop):
                    delay = self.backoff  # it was healthy for a while
            except Exception as error:
                log.warning(
                    "lost the connection that listens for other replicas; reconnecting",
                    extra={"action": "signal_lost", "error": f"{error!r}"[:300]},
                )
            finally:
                self._connection = None
                self.listening.clear()
                await _close(connection)
            if not stop.is_set():
                await _wait(stop, delay)
                delay = min(delay * 2, self.backoff_cap)

    async def _listen_on(self, connection: Any, stop: asyncio.Event) -> bool:
        """Listen on `connection` until `stop` or until it is lost; returns whether it
        answered a keepalive (to reset the backoff)."""
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _connection: lost.set())
        await connection.add_listener(self.channel, self._heard)
        self._connection = connection
        self.connections += 1
        self.listening.set()
        log.info("listening for other replicas", extra={"action": "signal_listening"})
        self.on_signal()  # signals sent while we were not listening are lost: look now
        healthy = False
        while not stop.is_set() and not lost.is_set():
            await _wait(stop, self.keepalive, lost)
            if stop.is_set() or lost.is_set():
                break
            # A connection that died silently (no FIN) is only noticed by using it.
            async with self._use:
                await connection.fetchval("SELECT 1", timeout=5)
            healthy = True
        return healthy

    def _heard(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload == self.replica:
            return
        self.heard += 1
        self.on_signal()


async def _wait(stop: asyncio.Event, seconds: float, other: asyncio.Event | None = None) -> None:
    """Until `stop` (or `other`) is set, `seconds` at most."""
    waiters = [asyncio.ensure_future(stop.wait())]
    if other is not None:
        waiters.append(asyncio.ensure_future(other.wait()))
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def _close(connection: Any) -> None:
    try:
        await asyncio.wait_for(connection.close(), timeout=5)
    except Exception:
        with contextlib.suppress(Exception):
            connection.terminate()
