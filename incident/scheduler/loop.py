"""The real-time loop: a scheduler ticking until told to stop, sleeping until the next due
time or until a plan changes.

Replicas (PostgreSQL) share the work through their claims. They wake each other through a
`PlanSignal` when a plan changes, and poll as well, in case a signal is lost.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from incident.scheduler.claims import Leases
from incident.scheduler.runner import Scheduler
from incident.services.engine import TickReport

log = logging.getLogger("incident.scheduler")


class PlanSignal(Protocol):
    """How replicas tell each other that a plan changed (a nearer step may be due).

    `announce` is called after a commit that changed a plan, and must not block; `listen`
    runs while the scheduler does, calling `on_signal` when another replica announced (and
    whenever it may have missed some), until `stop` is set. Signals may be lost: the
    schedulers poll as well.
    """

    on_signal: Callable[[], None]

    def announce(self) -> None: ...

    async def listen(self, stop: asyncio.Event) -> None: ...


class Loop:
    """Runs one scheduler in real time."""

    def __init__(
        self,
        scheduler: Scheduler,
        *,
        poll_interval: timedelta = timedelta(seconds=30),
        lookahead: timedelta = timedelta(milliseconds=10),
        leases: Leases | None = None,
        signal: PlanSignal | None = None,
    ) -> None:
        """`leases`: renews the scheduler's claims every third of a lease while `run` goes
        on. `signal`: listened to while `run` goes on (one loop per process listens; its
        `on_signal` wakes them all).

        `lookahead`: how far ahead of a due time a step is claimed and checked, so the
        effect itself goes out on time (the claim and checks take a few milliseconds)."""
        self.scheduler = scheduler
        self.poll_interval = poll_interval
        self.lookahead = lookahead
        self.leases = leases
        self.signal = signal
        self.running = False
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Called when a plan changes: the nearest due time may have moved closer."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Tick in real time until `stop` is set: sleep until the next due time or a wake-up."""
        self.running = True
        companions = []
        if self.leases is not None:
            keep = self.scheduler.claims.keep(self.leases, stop)
            companions.append(asyncio.create_task(keep, name="leases"))
        if self.signal is not None:
            companions.append(asyncio.create_task(self.signal.listen(stop), name="signal"))
        in_flight: set[asyncio.Task[None]] = set()
        try:
            while not stop.is_set():
                self._wake.clear()
                delay = await self._round(stop, in_flight)
                if delay is None:
                    continue  # more is due, or came due while we claimed
                await self._sleep(delay, stop)
        finally:
            # Steps under way finish (a subject's task starts no new one once `stop` is set).
            await asyncio.gather(*in_flight, return_exceptions=True)
            self.running = False
            for companion in companions:
                companion.cancel()
            await asyncio.gather(*companions, return_exceptions=True)

    async def _round(self, stop: asyncio.Event, in_flight: set[asyncio.Task[None]]) -> float | None:
        """Run what is due; how long to sleep then (None: go again at once)."""
        scheduler = self.scheduler
        claimed_at = scheduler.clock.now() + self.lookahead
        try:
            if scheduler.lane.pipelined:
                started = await self._start_pipelined(claimed_at, stop, in_flight)
                if started >= scheduler.batch or self._wake.is_set():
                    return None
            else:
                report = await scheduler.tick(claimed_at, on_time=True, stop=stop)
                started = len(report.steps)
            actions = scheduler.lane.actions
            next_at: datetime | None = await scheduler.store.run(
                lambda tx: tx.next_run_at(actions=actions), urgent=scheduler.lane.urgent
            )
        except Exception:  # the database may be briefly unavailable; keep going
            log.exception("scheduler tick failed", extra={"action": "tick_failed"})
            return self.poll_interval.total_seconds()
        delay = self.poll_interval.total_seconds()
        # Due when we claimed and yet not claimed: another replica holds its subject (or the
        # row, for the moment) and runs it. Wait for a signal or the poll rather than asking
        # again at once.
        held_elsewhere = next_at is not None and next_at <= claimed_at and not started
        if next_at is not None and not held_elsewhere:
            until_next = (next_at - self.lookahead - scheduler.clock.now()).total_seconds()
            delay = max(0.0, min(delay, until_next))
        return delay

    async def _sleep(self, delay: float, stop: asyncio.Event) -> None:
        waiters = {asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())}
        try:
            await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _start_pipelined(
        self, now: datetime, stop: asyncio.Event, in_flight: set[asyncio.Task[None]]
    ) -> int:
        """Claim one batch and start its subjects' tasks without waiting for them: the next
        claim can go as soon as a step comes due. How many occurrences were claimed."""
        claims = self.scheduler.claims
        await claims.hand_back_orphans()
        started = await self.scheduler.start_round(now, True, stop, TickReport())
        for ids, task in started:
            in_flight.add(task)
            task.add_done_callback(functools.partial(self._task_over, in_flight, ids))
        return sum(len(ids) for ids, _ in started)

    def _task_over(
        self, in_flight: set[asyncio.Task[None]], ids: set[int], task: asyncio.Task[None]
    ) -> None:
        """A pipelined subject's task ended: its claims are no longer ours to renew (the
        ones it did not start, on a failure or a stop, are handed back)."""
        in_flight.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            self.scheduler.claims.failed(ids)
            log.error("scheduler lane failed", exc_info=error, extra={"action": "tick_failed"})
        self.scheduler.claims.finished(ids)
