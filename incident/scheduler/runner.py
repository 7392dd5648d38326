"""The scheduler: claims due step occurrences and runs them, exactly once as far as anyone sees.

For each occurrence: claim it (a lease, in the database), let its subject's kind check it,
perform the effect under the occurrence's idempotency key, then mark it done and let the
kind record it and re-plan, in one transaction. A crash between the effect and the mark
re-runs the occurrence with the same key, which the adapters turn into a no-op. It knows
nothing of incidents (`incident.services.engine.SubjectKind`). Its parts: `lanes` (and the
give-way policy), `claims` (and their leases), `retry`, and the real-time `loop`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from incident.clock import Clock
from incident.domain.records import Occurrence, OccurrenceState, StepResult, SubjectRef
from incident.scheduler.claims import Claims, LeaseLost
from incident.scheduler.lanes import MAIN, GiveWay, Lane
from incident.scheduler.retry import RetryPolicy, record_failure
from incident.services.engine import (
    Failure,
    Prepared,
    StepReport,
    SubjectKind,
    SubjectKinds,
    TickReport,
)
from incident.services.ports import Store, Transaction

log = logging.getLogger("incident.scheduler")

# A bound on the rounds of one tick, so a playbook bug cannot spin forever.
MAX_ROUNDS = 10_000


@dataclass(frozen=True)
class Tuning:
    """How a scheduler claims and runs: the same for every lane of a process."""

    owner: str  # who holds the claims (host, process, a random part)
    lease: timedelta = timedelta(minutes=5)
    batch: int = 100  # occurrences claimed in one round
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # How many subjects' steps may be in flight at once (vendor calls wait in parallel).
    concurrency: int = 16


class Scheduler:
    """One lane's scheduler (see `incident.scheduler.lanes`)."""

    def __init__(
        self,
        *,
        lane: Lane = MAIN,
        kinds: SubjectKinds,
        store: Store,
        clock: Clock,
        tuning: Tuning,
        give_way: GiveWay | None = None,
        redact: Callable[[str], str] = str,
        on_step: Callable[[StepReport], None] | None = None,
    ) -> None:
        self.lane = lane
        self.kinds = kinds
        self.store = store
        self.clock = clock
        self.owner = tuning.owner
        self.batch = tuning.batch
        self.retry = tuning.retry
        self.give_way = give_way or GiveWay(clock)
        self.redact = redact
        self.on_step = on_step
        self.claims = Claims(
            owner=tuning.owner, lease=tuning.lease, store=store, clock=clock, urgent=lane.urgent
        )
        self._concurrency = asyncio.Semaphore(tuning.concurrency)

    async def tick(
        self, now: datetime, *, on_time: bool = False, stop: asyncio.Event | None = None
    ) -> TickReport:
        """Run every occurrence runnable at `now`, in due order, until none is left.

        `on_time` (the real-time loop): `now` is a little ahead of the clock, so the claim
        and the checks are done before the due time; each effect then waits for its due
        time on the clock before it is sent.

        `stop`: once set, no further step starts; the ones claimed and not started are left
        to the caller to hand back (release_claims).
        """
        report = TickReport()
        await self.claims.hand_back_orphans()
        for _ in range(MAX_ROUNDS):
            limit = self.give_way.batch(self.lane, self.batch)
            began = self.clock.monotonic()
            started = await self.start_round(now, on_time, stop, report, limit=limit)
            claimed = set().union(*(ids for ids, _ in started))
            # A subject's task that fails (the database went away) does not stop the
            # others: each finishes what it started, then the first failure is raised.
            # Its unfinished claims are handed back at the next round.
            results = await asyncio.gather(*(task for _, task in started), return_exceptions=True)
            for (ids, _), result in zip(started, results, strict=True):
                if isinstance(result, BaseException):
                    self.claims.failed(ids)
            # What is left was not started (stop): the caller hands it back.
            self.claims.finished(claimed)
            for result in results:
                if isinstance(result, BaseException):
                    raise result
            if claimed and (pause := self.give_way.pause_after(self.lane, began)) > 0:
                await self.give_way.pause(pause, stop)
            if len(claimed) < limit or (stop is not None and stop.is_set()):
                break
        return report

    async def start_round(
        self,
        now: datetime,
        on_time: bool,
        stop: asyncio.Event | None,
        report: TickReport,
        *,
        limit: int | None = None,
    ) -> list[tuple[set[int], asyncio.Task[None]]]:
        """Claim one batch (at most `limit`, else `batch`) and start one task per subject:
        each task's claimed ids, and the task."""
        batch = await self.store.run(
            lambda tx: self._claim(tx, now, limit or self.batch),
            durable=False,
            urgent=self.lane.urgent,
        )
        if batch:
            self.give_way.claimed(self.lane)
        self.claims.took({item.occurrence.id for item in batch})
        # One task per subject: its steps run in due order, one after the other, each
        # checked against what the previous one changed. Tasks run side by side, so a slow
        # or failing vendor call of one subject does not hold up the others.
        by_subject: dict[SubjectRef, list[Prepared]] = {}
        for item in batch:
            by_subject.setdefault(item.occurrence.subject, []).append(item)
        return [
            (
                {item.occurrence.id for item in items},
                asyncio.create_task(self._run_subject(items, now, on_time, stop, report)),
            )
            for items in by_subject.values()
        ]

    def _claim(self, tx: Transaction, now: datetime, limit: int) -> list[Prepared]:
        """Claim up to `limit` occurrences and check each, in one transaction."""
        claimed = tx.claim_due(
            now=now,
            owner=self.owner,
            lease_until=now + self.claims.lease,
            limit=limit,
            actions=self.lane.actions,
        )
        # Only the first occurrence of each subject is checked now: the ones after it
        # must be checked against the facts as they are once it has run.
        seen: set[SubjectRef] = set()
        batch = []
        for occurrence in claimed:
            if occurrence.subject in seen:
                batch.append(Prepared(occurrence))
            else:
                seen.add(occurrence.subject)
                batch.append(self._kind(occurrence).prepare(tx, occurrence, now))
        return batch

    def _kind(self, occurrence: Occurrence) -> SubjectKind:
        return self.kinds[occurrence.subject.kind]

    async def _run_subject(
        self,
        items: list[Prepared],
        now: datetime,
        on_time: bool,
        stop: asyncio.Event | None,
        report: TickReport,
    ) -> None:
        async with self._concurrency:
            checked: Prepared | None = None  # the next step, checked when this one was done
            for position, claimed in enumerate(items):
                if stop is not None and stop.is_set():
                    return
                item = checked or claimed
                if checked is None and item.report is None and (item.ready is None or position):
                    # Not checked yet, or an earlier step of this subject has just run and
                    # may have changed the facts it was checked against.
                    item = await self._recheck(item.occurrence, now)
                following = items[position + 1].occurrence if position + 1 < len(items) else None
                step_report, checked = await self._settle(item, now, on_time, following)
                report.steps.append(step_report)
                self.claims.finished({claimed.occurrence.id})
                if self.on_step:
                    self.on_step(step_report)

    async def _settle(
        self, item: Prepared, now: datetime, on_time: bool, following: Occurrence | None
    ) -> tuple[StepReport, Prepared | None]:
        """Finish one checked occurrence: tell what its checks decided, or send it."""
        if item.report is not None:
            if item.notice is not None:
                await item.notice()
            return item.report, None
        fire_at = await self._until(item.occurrence.due_at) if on_time else now
        return await self._fire(item, fire_at, following=following, checked_at=now)

    async def _until(self, instant: datetime) -> datetime:
        """Wait until the clock reaches `instant` (never return before it); return the time."""
        while (now := self.clock.now()) < instant:
            await self.clock.sleep((instant - now).total_seconds())
        return now

    async def _recheck(self, occurrence: Occurrence, now: datetime) -> Prepared:
        def work(tx: Transaction) -> Prepared:
            self.claims.check(tx, occurrence)
            return self._kind(occurrence).prepare(tx, occurrence, now)

        try:
            return await self.store.run(work, durable=False, urgent=self.lane.urgent)
        except LeaseLost as lost:
            return Prepared(occurrence, report=self.claims.lost(occurrence, now, lost))

    async def _fire(
        self,
        item: Prepared,
        now: datetime,
        *,
        following: Occurrence | None = None,
        checked_at: datetime | None = None,
    ) -> tuple[StepReport, Prepared | None]:
        """Send the effect, then record it; a failure is retried later, never lost.

        `following`: the subject's next claimed occurrence, checked (at `checked_at`) in
        the same transaction that records this one as done, against the facts this one
        has just changed: one unit of work instead of two.
        """
        occurrence, ready = item.occurrence, item.ready
        assert ready is not None
        kind = self._kind(occurrence)
        try:
            sent = await ready.perform()
        except Exception as error:  # any vendor or template failure: retried, never lost
            message = self.redact(f"{type(error).__name__}: {error}")[:500]
            failure = self.retry.failure(
                occurrence, message, now, retry_after=getattr(error, "retry_after", None)
            )
            try:
                facts = await self._record_failure(kind, occurrence, failure, now)
            except LeaseLost as lost:
                return self.claims.lost(occurrence, now, lost), None
            if failure.final:
                await kind.gave_up(ready, failure, facts)
            result = StepResult.FAILED if failure.final else StepResult.RETRY
            return StepReport(occurrence, result, now - occurrence.due_at, message), None

        def work(tx: Transaction) -> Prepared | None:
            self.claims.check(tx, occurrence)
            tx.finish_occurrence(
                occurrence.id, state=OccurrenceState.DONE, now=now, outcome=sent.summary
            )
            facts = kind.record_done(tx, ready, sent, now)
            if following is None:
                return None
            return kind.prepare(tx, following, checked_at or now, facts=facts)

        try:
            checked = await self.store.run(work, urgent=self.lane.urgent)
        except LeaseLost as lost:
            return self.claims.lost(occurrence, now, lost), None
        kind.committed(sent)
        report = StepReport(occurrence, StepResult.DONE, now - occurrence.due_at, sent.summary)
        return report, checked

    async def _record_failure(
        self, kind: SubjectKind, occurrence: Occurrence, failure: Failure, now: datetime
    ) -> object:
        log.warning(
            "step failed",
            extra={
                "action": "step_failed",
                "subject": occurrence.subject.key,
                "step": occurrence.step_id,
                "attempt": occurrence.attempts,
                "error": failure.message,
            },
        )

        def work(tx: Transaction) -> object:
            self.claims.check(tx, occurrence)
            return record_failure(tx, kind, occurrence, failure, now)

        return await self.store.run(work, urgent=self.lane.urgent)
