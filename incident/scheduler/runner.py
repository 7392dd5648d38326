"""The scheduler: claims due step occurrences and runs them, exactly once as far as anyone sees.

For each occurrence: claim it (a lease, in the database), check its conditions against the
incident as it is now, perform the effect through a port with the occurrence's idempotency
key, then mark it done and re-plan in one transaction. A crash between the effect and the
mark re-runs the occurrence later with the same key, which the adapters turn into a no-op.

Replicas (PostgreSQL) share the work through their claims: each claim is a lease, renewed
while its owner works on it; a replica that dies loses its leases when they expire, and
another claims those occurrences again. They wake each other through a `PlanSignal` when a
plan changes, and poll as well, in case a signal is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from incident.domain.errors import DomainError
from incident.domain.follow_ups import FollowUp
from incident.domain.incident import Incident, Status
from incident.domain.planning import (
    NO_HISTORY,
    StepHistory,
    backoff,
    comes_back,
    failed_condition,
    next_customer_update_due,
    next_occurrence,
    plan,
    step_deadline,
    stopped_by,
)
from incident.domain.playbook import (
    CUSTOMER_MESSAGES,
    Action,
    Anchor,
    Playbook,
    Step,
    format_duration,
)
from incident.domain.records import Occurrence, TimelineEntry
from incident.services.actions import Outcome, StepRun, message_context, perform
from incident.services.incidents import Runtime, find_step, replan, timeline_entry
from incident.services.ports import Effects, Transaction

log = logging.getLogger("incident.scheduler")


@dataclass(frozen=True)
class StepReport:
    """What happened to one claimed occurrence (for metrics and `incident simulate`)."""

    occurrence: Occurrence
    result: str  # done, retry, failed, skipped, cancelled, lost (to another replica)
    lateness: timedelta
    detail: str = ""


@dataclass
class TickReport:
    steps: list[StepReport] = field(default_factory=list)

    def count(self, result: str) -> int:
        return sum(1 for s in self.steps if s.result == result)


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


class Leases(Protocol):
    """Keeps a scheduler's claims while it works on them."""

    async def renew(
        self, *, owner: str, occurrence_ids: Sequence[int], until: datetime
    ) -> set[int]:
        """Extend `owner`'s leases on these running occurrences to `until`; returns those
        still its own (the others are finished, or expired and claimed by another replica)."""
        ...


# Giving way (see `Scheduler`): the other lane counts as busy for a second after its last
# claim; meanwhile rounds claim at most 8 occurrences and pause 3 times as long as they
# took (the main lane then has about a quarter of the time), a quarter of a second at most
# (a round that waited on a slow vendor is not held up further for it).
GIVE_WAY_WINDOW = 1.0
GIVING_WAY_BATCH = 8
GIVE_WAY_PAUSE = 3.0
GIVE_WAY_MAX_PAUSE = 0.25
# How many of the next steps the war room's greeting lists.
GREETING_STEPS = 6


@dataclass(frozen=True)
class RetryPolicy:
    """A failed effect is tried again after 30 s, 1, 2, 4, 8 min, then every 10 min: ten
    attempts cover about an hour of vendor outage before the step is marked failed."""

    max_attempts: int = 10
    base: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(minutes=10)


class Scheduler:
    def __init__(
        self,
        *,
        runtime: Runtime,
        effects: Effects,
        owner: str,
        lease: timedelta = timedelta(minutes=5),
        batch: int = 100,
        retry: RetryPolicy | None = None,
        base_url: str = "http://127.0.0.1:8080",
        poll_interval: timedelta = timedelta(seconds=30),
        lookahead: timedelta = timedelta(milliseconds=10),
        on_step: Callable[[StepReport], None] | None = None,
        concurrency: int = 16,
        actions: tuple[str, ...] = (),
        urgent: bool = False,
        pipelined: bool = False,
        leases: Leases | None = None,
        signal: PlanSignal | None = None,
        gives_way_to: Scheduler | None = None,
    ) -> None:
        """`actions`: run only steps of these actions (the urgent lane runs pages), all when
        empty; `urgent`: its database work goes ahead of other waiting work.

        `pipelined` (the real-time loop): claims again as soon as a step comes due, without
        waiting for the steps it claimed before to finish. Only for steps that may run
        beside a step of the same incident (pages: idempotent per incident and tier).

        `leases`: renews this scheduler's claims every third of `lease` while `run` goes on,
        so a step that takes long (a vendor retrying) is never claimed by another replica
        while its owner is alive. `signal`: listened to while `run` goes on (one scheduler
        per process listens; `signal.on_signal` wakes them all).

        `gives_way_to` (the main lane gives way to the page lane): while that lane is
        busy (an alert storm), this one claims small batches and pauses after each for
        `GIVE_WAY_PAUSE` times as long as it took, up to `GIVE_WAY_MAX_PAUSE`: pages get
        most of the process, the other steps a bounded share, late but never lost."""
        self.rt = runtime
        self.effects = effects
        self.owner = owner
        self.lease = lease
        self.batch = batch
        self.retry = retry or RetryPolicy()
        self.base_url = base_url
        self.poll_interval = poll_interval
        # How far ahead of a due time the real-time loop claims and checks a step, so the
        # effect itself goes out on time (the claim and checks take a few milliseconds).
        self.lookahead = lookahead
        self.on_step = on_step
        self.actions = actions
        self.urgent = urgent
        self.pipelined = pipelined
        self._wake = asyncio.Event()
        # How many incidents' steps may be in flight at once (vendor calls wait in parallel).
        self._lanes = asyncio.Semaphore(concurrency)
        self.running = False
        self.leases = leases
        self.signal = signal
        # Occurrences claimed by this scheduler and not finished yet: the leases to renew.
        self._held: set[int] = set()
        # Claims of lanes that failed (the database refused a write, say): handed back as
        # soon as the database takes writes again, not when their lease ends.
        self._orphaned: set[int] = set()
        self.gives_way_to = gives_way_to
        # When (clock.monotonic) this lane last claimed anything: how others know it is busy.
        self.last_busy: float | None = None

    def wake(self) -> None:
        """Called when a plan changes: the nearest due time may have moved closer."""
        self._wake.set()

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
        await self._hand_back_orphans()
        for _ in range(10_000):  # a bound, so a playbook bug cannot spin forever
            giving_way = self.giving_way()
            limit = GIVING_WAY_BATCH if giving_way else self.batch
            began = self.rt.clock.monotonic()
            started = await self._start_round(now, on_time, stop, report, limit=limit)
            claimed = set().union(*(ids for ids, _ in started))
            lanes = [task for _, task in started]
            # A lane that fails (the database went away) does not stop the others: each
            # finishes what it started, then the first failure is raised. Its unfinished
            # claims are handed back when their lease ends (or at restart).
            results = await asyncio.gather(*lanes, return_exceptions=True)
            for (ids, _), result in zip(started, results, strict=True):
                if isinstance(result, BaseException):
                    self._orphaned |= ids & self._held
            # What is left was not started (stop): the caller hands it back.
            self._held -= claimed
            for result in results:
                if isinstance(result, BaseException):
                    raise result
            if giving_way and claimed:
                took = self.rt.clock.monotonic() - began
                await self._pause(min(took * GIVE_WAY_PAUSE, GIVE_WAY_MAX_PAUSE), stop)
            if len(claimed) < limit or (stop is not None and stop.is_set()):
                break
        return report

    def busy(self) -> bool:
        """Whether this lane has claimed anything in the last `GIVE_WAY_WINDOW` seconds
        (for the page lane: whether pages are going out, an alert storm perhaps)."""
        return (
            self.last_busy is not None
            and self.rt.clock.monotonic() - self.last_busy < GIVE_WAY_WINDOW
        )

    def giving_way(self) -> bool:
        """Whether the lane this one gives way to is busy."""
        return self.gives_way_to is not None and self.gives_way_to.busy()

    async def _pause(self, seconds: float, stop: asyncio.Event | None) -> None:
        if stop is None:
            await self.rt.clock.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)

    async def _start_round(
        self,
        now: datetime,
        on_time: bool,
        stop: asyncio.Event | None,
        report: TickReport,
        *,
        limit: int | None = None,
    ) -> list[tuple[set[int], asyncio.Task[None]]]:
        """Claim one batch (at most `limit`, else `batch`) and start its lanes: each lane's
        claimed ids and task."""
        batch = await self.rt.store.run(
            lambda tx: self._claim(tx, now, limit or self.batch), durable=False, urgent=self.urgent
        )
        if batch:
            self.last_busy = self.rt.clock.monotonic()
        self._held |= {item.occurrence.id for item in batch}
        # One lane per incident: its steps run in due order, one after the other, each
        # checked against what the previous one changed. Lanes run side by side, so a
        # slow or failing vendor call of one incident does not hold up the others.
        lanes: dict[int, list[Prepared]] = {}
        for item in batch:
            lanes.setdefault(item.occurrence.incident_id, []).append(item)
        return [
            (
                {item.occurrence.id for item in items},
                asyncio.create_task(self._lane(items, now, on_time, stop, report)),
            )
            for items in lanes.values()
        ]

    async def _lane(
        self,
        items: list[Prepared],
        now: datetime,
        on_time: bool,
        stop: asyncio.Event | None,
        report: TickReport,
    ) -> None:
        async with self._lanes:
            checked: Prepared | None = None  # the next step, checked when this one was done
            for position, claimed in enumerate(items):
                if stop is not None and stop.is_set():
                    return
                item = claimed
                if checked is not None:
                    item = checked
                elif item.report is None and (item.run is None or position > 0):
                    # Not checked yet, or an earlier step of this incident has just run and
                    # may have changed the facts it was checked against.
                    item = await self._reprepare(item.occurrence, now)
                checked = None
                fire_at = now
                if item.report is None and on_time:
                    fire_at = await self._until(item.occurrence.due_at)
                if item.report is not None:
                    step_report = item.report
                    if item.approval is not None:
                        await self._ask_approval(item.approval)
                else:
                    following = (
                        items[position + 1].occurrence if position + 1 < len(items) else None
                    )
                    step_report, checked = await self._fire(
                        item, fire_at, following=following, checked_at=now
                    )
                report.steps.append(step_report)
                self._held.discard(claimed.occurrence.id)
                if self.on_step:
                    self.on_step(step_report)

    async def run(self, stop: asyncio.Event) -> None:
        """Tick in real time until `stop` is set: sleep until the next due time or a wake-up.

        Meanwhile its claims' leases are renewed (`leases`) and other replicas' signals are
        listened to (`signal`).
        """
        self.running = True
        companions = []
        if self.leases is not None:
            companions.append(asyncio.create_task(self._keep_leases(stop), name="leases"))
        if self.signal is not None:
            companions.append(asyncio.create_task(self.signal.listen(stop), name="signal"))
        in_flight: set[asyncio.Task[None]] = set()
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    claimed_at = self.rt.clock.now() + self.lookahead
                    if self.pipelined:
                        started = await self._start_pipelined(claimed_at, stop, in_flight)
                        if started >= self.batch or self._wake.is_set():
                            continue  # more is due, or came due while we claimed
                    else:
                        started = len((await self.tick(claimed_at, on_time=True, stop=stop)).steps)
                    next_at = await self.rt.store.run(
                        lambda tx: tx.next_run_at(actions=self.actions), urgent=self.urgent
                    )
                except Exception:  # the database may be briefly unavailable; keep going
                    log.exception("scheduler tick failed", extra={"action": "tick_failed"})
                    next_at = None
                    started = 0
                delay = self.poll_interval.total_seconds()
                # Due when we claimed and yet not claimed: another replica holds its incident
                # (or the row, for the moment) and runs it. Wait for a signal or the poll
                # rather than asking again at once.
                held_elsewhere = next_at is not None and next_at <= claimed_at and not started
                if next_at is not None and not held_elsewhere:
                    until_next = (next_at - self.lookahead - self.rt.clock.now()).total_seconds()
                    delay = max(0.0, min(delay, until_next))
                waiters = {
                    asyncio.ensure_future(self._wake.wait()),
                    asyncio.ensure_future(stop.wait()),
                }
                try:
                    await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for waiter in waiters:
                        waiter.cancel()
        finally:
            # Steps under way finish (a lane starts no new one once `stop` is set).
            await asyncio.gather(*in_flight, return_exceptions=True)
            self.running = False
            for companion in companions:
                companion.cancel()
            await asyncio.gather(*companions, return_exceptions=True)

    async def _start_pipelined(
        self, now: datetime, stop: asyncio.Event, in_flight: set[asyncio.Task[None]]
    ) -> int:
        """Claim one batch and start its lanes without waiting for them: the next claim
        can go as soon as a step comes due. How many occurrences were claimed."""
        await self._hand_back_orphans()
        started = await self._start_round(now, True, stop, TickReport())
        for ids, lane in started:
            in_flight.add(lane)
            lane.add_done_callback(functools.partial(self._lane_over, in_flight, ids))
        return sum(len(ids) for ids, _ in started)

    def _lane_over(
        self, in_flight: set[asyncio.Task[None]], ids: set[int], lane: asyncio.Task[None]
    ) -> None:
        """A pipelined lane ended: its claims are no longer ours to renew (the ones it did
        not start, on a failure or a stop, come back when their lease ends or at restart)."""
        in_flight.discard(lane)
        if not lane.cancelled() and (error := lane.exception()) is not None:
            self._orphaned |= ids & self._held
            log.error("scheduler lane failed", exc_info=error, extra={"action": "tick_failed"})
        self._held -= ids

    async def _hand_back_orphans(self) -> None:
        """Hand back the claims of lanes that failed, now that the database may take writes
        again (if it does not yet, the claim that follows fails too, and we try again)."""
        if not self._orphaned:
            return
        orphans = sorted(self._orphaned)
        await self.rt.store.run(
            lambda tx: tx.release_claims(owner=self.owner, occurrence_ids=orphans),
            durable=False,
            urgent=self.urgent,
        )
        self._orphaned -= set(orphans)
        log.info(
            "claims of a failed lane handed back",
            extra={"action": "claims_handed_back", "occurrences": orphans[:20]},
        )

    async def _keep_leases(self, stop: asyncio.Event) -> None:
        """Renew the leases of what this scheduler holds, every third of a lease, until
        `stop`. A renewal that fails is tried again at the next beat; two more chances
        before the lease ends."""
        beat = self.lease.total_seconds() / 3
        assert self.leases is not None
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=beat)
            held = sorted(self._held)
            if not held or stop.is_set():
                continue
            try:
                kept = await self.leases.renew(
                    owner=self.owner,
                    occurrence_ids=held,
                    until=self.rt.clock.now() + self.lease,
                )
            except Exception as error:  # the database may be briefly unavailable
                log.warning(
                    "could not renew leases",
                    extra={"action": "lease_renewal_failed", "error": f"{error!r}"[:300]},
                )
                continue
            lost = (set(held) & self._held) - kept
            if lost:
                log.warning(
                    "leases lost",
                    extra={"action": "leases_lost", "occurrences": sorted(lost)[:20]},
                )

    async def _until(self, instant: datetime) -> datetime:
        """Wait until the clock reaches `instant` (never return before it); return the time."""
        while (now := self.rt.clock.now()) < instant:
            await self.rt.clock.sleep((instant - now).total_seconds())
        return now

    # --- one occurrence --------------------------------------------------------------------

    async def _reprepare(self, occurrence: Occurrence, now: datetime) -> Prepared:
        def work(tx: Transaction) -> Prepared:
            self._check_lease(tx, occurrence)
            return self._prepare(tx, occurrence, now)

        try:
            return await self.rt.store.run(work, durable=False, urgent=self.urgent)
        except LeaseLost as lost:
            return Prepared(occurrence, report=self._lost(occurrence, now, lost))

    def _check_lease(self, tx: Transaction, occurrence: Occurrence) -> None:
        """Raise LeaseLost unless this scheduler's claim on `occurrence` still stands.

        Leases are renewed while their owner lives, so this only happens to a replica that
        stalled for longer than a lease: another one has claimed the occurrence again (its
        attempt count moved on) or finished it. That one records it; we must not as well.
        """
        current = tx.get_occurrence(occurrence.id)
        if current.state != "running" or current.attempts != occurrence.attempts:
            raise LeaseLost(
                f"claimed again by another replica (state {current.state}, attempt "
                f"{current.attempts}, ours was {occurrence.attempts})"
            )

    def _lost(self, occurrence: Occurrence, now: datetime, lost: LeaseLost) -> StepReport:
        log.warning(
            "lease lost",
            extra={
                "action": "lease_lost",
                "incident_id": occurrence.incident_id,
                "step": occurrence.step_id,
                "error": str(lost),
            },
        )
        return StepReport(occurrence, "lost", now - occurrence.due_at, str(lost))

    def _claim(self, tx: Transaction, now: datetime, limit: int) -> list[Prepared]:
        """Claim up to `limit` occurrences and check each, in one transaction."""
        claimed = tx.claim_due(
            now=now,
            owner=self.owner,
            lease_until=now + self.lease,
            limit=limit,
            actions=self.actions,
        )
        # Only the first occurrence of each incident is checked now: the ones after it
        # must be checked against the facts as they are once it has run.
        seen: set[int] = set()
        batch = []
        for occurrence in claimed:
            if occurrence.incident_id in seen:
                batch.append(Prepared(occurrence))
            else:
                seen.add(occurrence.incident_id)
                batch.append(self._prepare(tx, occurrence, now))
        return batch

    def _prepare(
        self,
        tx: Transaction,
        occurrence: Occurrence,
        now: datetime,
        *,
        incident: Incident | None = None,
    ) -> Prepared:
        """Decide whether a claimed occurrence still runs; if so, gather what it needs.
        `incident`: as this transaction has just read or written it (saves reading it again)."""
        lateness = now - occurrence.due_at
        if incident is None:
            incident = tx.get_incident(occurrence.incident_id)
        playbook = self.rt.playbooks.for_severity(incident.severity)
        step, follow_up = find_step(tx, incident, playbook, occurrence.step_id)
        history = tx.step_history(occurrence.incident_id)
        verdict = _verdict(step, incident, occurrence, history, now)
        if verdict is None and step is not None and occurrence.approved_by is None:
            if self.rt.needs_approval(incident, step):
                return self._hold(
                    tx,
                    occurrence=occurrence,
                    step=step,
                    incident=incident,
                    playbook=playbook,
                    history=history,
                    now=now,
                )
        if verdict is not None:
            state, kind, reason = verdict
            tx.finish_occurrence(occurrence.id, state=state, now=now, outcome=reason)
            tx.append_timeline(
                occurrence.incident_id,
                [
                    TimelineEntry(
                        at=now,
                        kind=kind,
                        actor="playbook",
                        step_id=occurrence.step_id,
                        occurrence=occurrence.occurrence,
                        text=f"{occurrence.step_id}: {reason}",
                    )
                ],
            )
            replan(tx, incident, self.rt.playbooks, now=now, reason=reason)
            return Prepared(occurrence, report=StepReport(occurrence, state, lateness, reason))
        assert step is not None
        context = self._context(
            tx,
            occurrence=occurrence,
            step=step,
            incident=incident,
            playbook=playbook,
            history=history,
            now=now,
            follow_up=follow_up,
        )
        run = StepRun(
            step=step,
            incident=incident,
            key=occurrence.effect_key(repeats=step.keyed_by_due),
            context=context,
            effects=self.effects,
            directory=self.rt.playbooks.directory,
            paged_tiers=tuple(
                dict.fromkeys(
                    s.target for s in playbook.steps if s.action is Action.PAGE and s.target
                )
            ),
        )
        return Prepared(occurrence, run=run)

    def _context(
        self,
        tx: Transaction,
        *,
        occurrence: Occurrence,
        step: Step,
        incident: Incident,
        playbook: Playbook,
        history: Mapping[str, StepHistory],
        now: datetime,
        follow_up: FollowUp | None = None,
    ) -> dict[str, Any]:
        """What this occurrence's template may say, as if it has just run: the next
        customer update and the upcoming steps are those of the plan after it."""
        after = dict(history)
        after[step.id] = StepHistory(
            fired=history.get(step.id, NO_HISTORY).fired + 1,
            last_due=occurrence.due_at,
            last_fired_at=now,
        )
        facts = incident
        if step.action in CUSTOMER_MESSAGES and incident.is_open:
            facts = dataclasses.replace(incident, last_customer_update_at=now)
        upcoming: list[dict[str, Any]] = []
        if step.action in (Action.OPEN_WAR_ROOM, Action.REFRESH_WAR_ROOM):
            steps = {s.id: s for s in playbook.steps}
            for planned in plan(facts, playbook, after)[:GREETING_STEPS]:
                described = steps[planned.step_id]
                upcoming.append(
                    {
                        "step": planned.step_id,
                        "description": described.description,
                        "action": described.action.value,
                        "target": described.target,
                        "due_at": planned.due_at,
                        "needs_approval": self.rt.needs_approval(incident, described),
                    }
                )
        return message_context(
            incident=incident,
            step=step,
            occurrence=occurrence.occurrence,
            now=now,
            timeline=tx.timeline(occurrence.incident_id),
            directory=self.rt.playbooks.directory,
            next_update_due=next_customer_update_due(facts, playbook, after),
            deadline=step_deadline(incident, step),
            base_url=self.base_url,
            catalog=self.rt.catalog,
            upcoming=upcoming,
            follow_up=follow_up,
        )

    def _hold(
        self,
        tx: Transaction,
        *,
        occurrence: Occurrence,
        step: Step,
        incident: Incident,
        playbook: Playbook,
        history: Mapping[str, StepHistory],
        now: datetime,
    ) -> Prepared:
        """Park an automatic customer-facing text until the commander approves it, and
        show the commander what it would say."""
        reason = "waiting for the commander's approval"
        tx.hold_occurrence(occurrence.id, now=now, reason=reason)
        context = self._context(
            tx,
            occurrence=occurrence,
            step=step,
            incident=incident,
            playbook=playbook,
            history=history,
            now=now,
        )
        assert step.template is not None  # customer-facing texts are templated
        preview = self.effects.renderer.render(step.template, context)
        tx.append_timeline(
            occurrence.incident_id,
            [
                TimelineEntry(
                    at=now,
                    kind="step_held",
                    actor="playbook",
                    step_id=step.id,
                    occurrence=occurrence.occurrence,
                    text=f"{step.id}: {reason} ({incident.category.value} incident)",
                    data={"preview": preview},
                )
            ],
        )
        report = StepReport(occurrence, "held", now - occurrence.due_at, reason)
        return Prepared(
            occurrence,
            report=report,
            approval=ApprovalRequest(
                incident=incident, step=step, occurrence=occurrence, preview=preview
            ),
        )

    async def _ask_approval(self, request: ApprovalRequest) -> None:
        """Tell the war room a text waits for approval (best effort: the held step itself
        is durable and shows on every list of upcoming steps)."""
        incident, step = request.incident, request.step
        text = (
            f":raised_hand: {incident.ref} is a {incident.category.value} incident: "
            f"'{step.id}' ({step.description}) waits for the commander's approval before it "
            f"goes to customers. Approve it with `/incident approve {step.id}`, or skip it. "
            f"It would say:\n\n{request.preview}"
        )
        key = f"{request.occurrence.effect_key(repeats=step.keyed_by_due)}/approval"
        with contextlib.suppress(Exception):
            await self.effects.chat.post(incident=incident, text=text, key=key)

    async def _fire(
        self,
        item: Prepared,
        now: datetime,
        *,
        following: Occurrence | None = None,
        checked_at: datetime | None = None,
    ) -> tuple[StepReport, Prepared | None]:
        """Send the effect, then record it; a failure is retried later, never lost.

        `following`: the incident's next claimed occurrence, checked (at `checked_at`) in
        the same transaction that records this one as done, against the facts this one
        has just changed: one unit of work instead of two.
        """
        occurrence, run = item.occurrence, item.run
        assert run is not None
        lateness = now - occurrence.due_at
        try:
            outcome = await perform(run)
        except Exception as error:  # any vendor or template failure: retried, never lost
            try:
                return await self._failed(occurrence, run.step, error, now, lateness), None
            except LeaseLost as lost:
                return self._lost(occurrence, now, lost), None
        try:
            checked = await self._done(
                occurrence,
                run.step,
                outcome,
                now,
                following=following,
                checked_at=checked_at or now,
            )
        except LeaseLost as lost:
            return self._lost(occurrence, now, lost), None
        return StepReport(occurrence, "done", lateness, outcome.summary), checked

    async def _done(
        self,
        occurrence: Occurrence,
        step: Step,
        outcome: Outcome,
        now: datetime,
        *,
        following: Occurrence | None = None,
        checked_at: datetime | None = None,
    ) -> Prepared | None:
        def work(tx: Transaction) -> Prepared | None:
            incident = tx.get_incident(occurrence.incident_id, lock=True)
            as_read = dataclasses.replace(incident, components=dict(incident.components))
            self._check_lease(tx, occurrence)
            entries = [
                TimelineEntry(
                    at=now,
                    kind="step_done",
                    actor="playbook",
                    step_id=step.id,
                    occurrence=occurrence.occurrence,
                    text=f"{step.id}: {outcome.summary}",
                    data={
                        "action": step.action.value,
                        "target": step.target,
                        "message": outcome.message,
                        "lateness_seconds": (now - occurrence.due_at).total_seconds(),
                    },
                )
            ]
            if outcome.war_room is not None:
                incident.open_war_room(
                    channel=outcome.war_room.channel, conference_url=outcome.war_room.conference_url
                )
            if outcome.published is not None:
                entries.append(
                    TimelineEntry(
                        at=now,
                        kind="status_page_update",
                        actor="playbook",
                        step_id=step.id,
                        occurrence=occurrence.occurrence,
                        text=outcome.published,
                        # As the text says it, not as the incident may be by now.
                        data={"status": outcome.published_status or incident.status.value},
                        public=True,
                    )
                )
            if outcome.customer_update is not None and incident.is_open:
                try:
                    events = incident.post_customer_update(
                        message=outcome.customer_update, at=now, by="playbook", automatic=True
                    )
                    entries += [timeline_entry(e) for e in events]
                except DomainError:  # resolved meanwhile: the message went, the state stays
                    pass
            changed = incident != as_read
            if changed:
                tx.save_incident(incident)
            tx.finish_occurrence(occurrence.id, state="done", now=now, outcome=outcome.summary)
            tx.append_timeline(occurrence.incident_id, entries)
            if changed or comes_back(step):
                replan(tx, incident, self.rt.playbooks, now=now, reason=f"{step.id} done")
            # Otherwise the plan is as it was less this occurrence, which is what marking
            # it done leaves: re-planning would read and write nothing (`comes_back`).
            if following is None:
                return None
            return self._prepare(tx, following, checked_at or now, incident=incident)

        prepared = await self.rt.store.run(work, urgent=self.urgent)
        if outcome.public:
            self.rt.public_changed()
        return prepared

    async def _failed(
        self,
        occurrence: Occurrence,
        step: Step,
        error: Exception,
        now: datetime,
        lateness: timedelta,
    ) -> StepReport:
        message = self.rt.redact(f"{type(error).__name__}: {error}")[:500]
        log.warning(
            "step failed",
            extra={
                "action": "step_failed",
                "incident_id": occurrence.incident_id,
                "step": step.id,
                "attempt": occurrence.attempts,
                "error": message,
            },
        )
        final = occurrence.attempts >= self.retry.max_attempts
        retry_after = getattr(error, "retry_after", None)

        def work(tx: Transaction) -> Incident | None:
            self._check_lease(tx, occurrence)
            if final:
                tx.finish_occurrence(
                    occurrence.id, state="failed", now=now, outcome="failed", error=message
                )
                text = f"{step.id} failed after {occurrence.attempts} attempts: {message}"
            else:
                wait = backoff(occurrence.attempts, base=self.retry.base, cap=self.retry.cap)
                if isinstance(retry_after, int | float) and retry_after > 0:
                    # The vendor said when to come back: not before then.
                    wait = max(wait, timedelta(seconds=min(float(retry_after), 3600.0)))
                retry_at = now + wait
                tx.retry_occurrence(occurrence.id, not_before=retry_at, error=message)
                text = (
                    f"{step.id} attempt {occurrence.attempts} of "
                    f"{self.retry.max_attempts} failed ({message}); "
                    f"retrying at {retry_at.isoformat()}"
                )
            tx.append_timeline(
                occurrence.incident_id,
                [
                    TimelineEntry(
                        at=now,
                        kind="step_failed" if final else "step_retry",
                        actor="playbook",
                        step_id=step.id,
                        occurrence=occurrence.occurrence,
                        text=text,
                        data={"error": message, "attempt": occurrence.attempts},
                    )
                ],
            )
            if not final:
                return None
            incident = tx.get_incident(occurrence.incident_id, lock=True)
            replan(tx, incident, self.rt.playbooks, now=now, reason=f"{step.id} failed")
            return incident

        incident = await self.rt.store.run(work, urgent=self.urgent)
        if incident is not None:
            await self._tell_commander(incident, occurrence, step, message)
        return StepReport(occurrence, "failed" if final else "retry", lateness, message)

    async def _tell_commander(
        self, incident: Incident, occurrence: Occurrence, step: Step, message: str
    ) -> None:
        """A step that gave up is the commander's to do by hand: say so in the war room, or
        through the fallback (the outbox) when the chat vendor is what is failing."""
        text = (
            f":warning: {incident.ref}: the playbook step '{step.id}' ({step.description}) "
            f"failed {occurrence.attempts} times and will not be retried: {message}. "
            "Please do it by hand"
            + (f" (runbook: {self.base_url}/runbooks/{step.runbook})" if step.runbook else "")
            + "."
        )
        key = f"{occurrence.effect_key(repeats=step.keyed_by_due)}/gave-up"
        for chat in (self.effects.chat, self.effects.fallback_chat):
            if chat is None:
                continue
            try:
                await chat.post(incident=incident, text=text, key=key)
                return
            except Exception as error:
                log.warning(
                    "could not tell the commander",
                    extra={
                        "action": "tell_commander_failed",
                        "incident_id": incident.id,
                        "step": step.id,
                        "error": f"{type(error).__name__}: {error}"[:300],
                    },
                )


class LeaseLost(Exception):
    """This scheduler's claim on an occurrence has gone to another replica."""


@dataclass(frozen=True)
class Prepared:
    """A claimed occurrence: finished by its fire-time checks (`report`), ready to send
    (`run`), or not checked yet (neither)."""

    occurrence: Occurrence
    run: StepRun | None = None
    report: StepReport | None = None
    approval: ApprovalRequest | None = None  # held: whom to ask, and what it would say


@dataclass(frozen=True)
class ApprovalRequest:
    incident: Incident
    step: Step
    occurrence: Occurrence
    preview: str


def _verdict(
    step: Step | None,
    incident: Incident,
    occurrence: Occurrence,
    history: Mapping[str, StepHistory],
    now: datetime,
) -> tuple[str, str, str] | None:
    """Should this claimed occurrence still run now? None if so, else (state, kind, reason).

    The facts may have changed since it was planned, or while it was claimed: the
    incident resolved, its severity changed, a customer update moved the anchor.
    """
    if step is None:
        return "cancelled", "step_cancelled", f"not in the {incident.severity.value} playbook"
    if incident.status is Status.CANCELLED and step.anchor is not Anchor.CANCELLED:
        return "cancelled", "step_cancelled", "incident cancelled"
    if (event := stopped_by(incident, step)) is not None:
        return "cancelled", "step_cancelled", f"stopped: {event.value}"
    planned = next_occurrence(step, incident, history.get(step.id, NO_HISTORY))
    if planned is None or planned.occurrence != occurrence.occurrence:
        return "cancelled", "step_cancelled", "no longer planned"
    if planned.due_at > now:
        # Cancelled here and planned again, at its new due time, by the re-plan that follows.
        return "cancelled", "step_moved", f"moved to {planned.due_at.isoformat()}"
    if (condition := failed_condition(incident, step)) is not None:
        return "skipped", "step_skipped", f"condition {condition.value} no longer holds"
    if step.stale_after is not None and now - occurrence.due_at > step.stale_after:
        return (
            "skipped",
            "step_skipped",
            (
                f"stale: due {occurrence.due_at.isoformat()}, more than "
                f"{format_duration(step.stale_after)} ago"
            ),
        )
    return None
