"""Property test: random operator actions, clock jumps, ticks, vendor outages and crashes
never break the scheduler's promises (DESIGN.md section 2).

A Hypothesis state machine drives the real service (SQLite file, real scheduler, recording
vendor fakes) through random sequences of use cases, virtual time and restarts, and checks
after every step what the outside world saw (`RecordingEffects.sends` and `.attempts`)
against what the database says (occurrence rows, incident facts, timeline):

1. Exactly once: an occurrence is tried again only after a fault (a crash right after its
   effect went out, a vendor failure); a one-off step reaches the world once per incident.
2. Nothing goes out before it is due; and an occurrence of a repeating step recorded as
   done was sent at or after its due time, not swallowed as a "repeat" of an earlier send.
3. No step goes out after one of its `until` events (resolution, acknowledgement, ...);
   nothing goes out for a cancelled incident but the steps anchored on its cancellation;
   no follow-up reminder goes out once its item is done.
4. The RCA deadline is 48 h after resolution for P1 and P2 (none for P3 and P4), and the
   `rca.missed` step is due exactly then.
5. After a tick, nothing runnable at that instant is left pending or running.
6. The commander hears that a step gave up only once it failed for good.
7. A step whose anchor happened runs unless its own `until` event stops it: after a tick,
   every step of the incident's playbook (and its follow-ups) whose anchor has happened
   and whose due time has come has an occurrence for that instant of its anchor that was
   not cancelled (it ran, failed, was skipped by its own condition, or waits: retrying,
   or held for approval). Closing (the RCA) stops nothing by itself; cancelling the
   incident stops everything but its cancellation's steps.
8. An automatic customer-facing text of a security incident goes out only once approved.

Run with PROPERTY_EXAMPLES=1000 (say) for a longer search.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from unittest import mock

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from incident import bootstrap
from incident.adapters.files.templates import JinjaRenderer
from incident.clock import FakeClock
from incident.config import PROJECT_ROOT, Settings
from incident.domain.errors import DomainError
from incident.domain.follow_ups import FollowUp, follow_up_steps
from incident.domain.incident import Cancellation, Category, Incident, Role, Severity, Status
from incident.domain.playbook import (
    AUTOMATIC_CUSTOMER_TEXTS,
    Anchor,
    PlaybookSet,
    Step,
    StopEvent,
)
from incident.domain.records import Occurrence, OccurrenceState, SubjectRef, TimelineEntry
from incident.scheduler.retry import RetryPolicy
from incident.services.incidents import (
    acknowledge_incident,
    add_follow_up,
    approve_step,
    assign_role,
    cancel_incident,
    change_severity,
    complete_follow_up,
    complete_rca,
    declare_incident,
    edit_incident,
    merge_incident,
    post_customer_update,
    reopen_incident,
    resolve_incident,
)
from incident.services.ports import Transaction
from incident.testing import RecordingEffects, Sent, SimulatedCrash
from tests.conftest import T0

T = TypeVar("T")

RCA_WITHIN = timedelta(hours=48)
RCA_MISSED = "rca.missed"
ACTIVE = (OccurrenceState.PENDING, OccurrenceState.RUNNING)

# Biased to small jumps: cadence steps are minutes apart, deadlines hours or days.
DURATIONS = st.one_of(
    st.integers(1, 15),
    st.integers(16, 6 * 60),
    st.integers(6 * 60, 30 * 60),
).map(lambda minutes: timedelta(minutes=minutes))
# Few incidents, so each one lives long enough to reach its cadence and deadlines.
MAX_INCIDENTS = 3
# An index into the incidents declared so far (taken modulo their number).
PICK = st.integers(0, MAX_INCIDENTS - 1)

PROPERTY_SETTINGS = settings(
    max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "100")),
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# The suffix of the message telling the commander a step failed for good, and of the one
# asking the commander to approve a held customer-facing text: not effects of the step.
GAVE_UP = "/gave-up"
APPROVAL = "/approval"
ASIDES = (GAVE_UP, APPROVAL)


_check_playbooks = bootstrap.check_playbooks


@functools.cache
def _checked_playbooks_in(playbooks: Path, comms: Path, runbooks: Path) -> PlaybookSet:
    return _check_playbooks(
        Settings(playbooks_dir=playbooks, comms_dir=comms, runbooks_dir=runbooks)
    )


def _checked_playbooks(settings: Settings) -> PlaybookSet:
    """`bootstrap.check_playbooks`, once per directory: a PlaybookSet is immutable."""
    return _checked_playbooks_in(settings.playbooks_dir, settings.comms_dir, settings.runbooks_dir)


def row_key(o: Occurrence, steps: Mapping[str, Step]) -> str:
    """The key the scheduler sends this occurrence's effects with, as the row is now."""
    step = steps.get(o.step_id)
    return o.effect_key(repeats=step is not None and step.keyed_by_due)


@dataclass(frozen=True)
class EffectKey:
    """An effect's idempotency key, `inc-<id>/<step>/<n>[@<due>][/<part>]`, taken apart.

    `<due>` (on repeating steps: the occurrence's due time when it was sent) makes a moved
    occurrence a new send; a one-off step has one key per incident. An action with several
    effects (customers and the status page, say) sends each with the occurrence's key plus
    a `/<part>`.
    """

    incident_id: int
    step_id: str
    occurrence: int
    due_at: datetime | None
    occurrence_key: str  # the key of the occurrence as it was when this effect went out

    @property
    def slot(self) -> tuple[int, str, int]:
        """The (incident, step, occurrence) row this effect belongs to."""
        return self.incident_id, self.step_id, self.occurrence

    @classmethod
    def parse(cls, key: str) -> EffectKey:
        incident, step_id, numbered = key.split("/")[:3]
        number, _, due = numbered.partition("@")
        return cls(
            incident_id=int(incident.removeprefix("inc-")),
            step_id=step_id,
            occurrence=int(number),
            due_at=datetime.strptime(due, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) if due else None,
            occurrence_key=f"{incident}/{step_id}/{numbered}",
        )


def first_event_times(incident: Incident, timeline: list[TimelineEntry]) -> dict[StopEvent, Any]:
    """When each `until` event first happened (None while it has not)."""

    def first(kind: str, **data: object) -> datetime | None:
        return next(
            (
                e.at
                for e in timeline
                if e.kind == kind and all(e.data.get(k) == v for k, v in data.items())
            ),
            None,
        )

    return {
        StopEvent.ACKNOWLEDGED: incident.acknowledged_at,
        StopEvent.RESOLVED: incident.resolved_at,
        StopEvent.RCA_COMPLETED: incident.closed_at if incident.rca_link else None,
        StopEvent.CUSTOMER_UPDATE_POSTED: first("customer_update"),
        StopEvent.COMMANDER_ASSIGNED: first("role_assigned", role=Role.COMMANDER.value),
    }


@dataclass
class Observed:
    """What the database says, read in one transaction: what the sends are checked against."""

    steps: dict[str, Step]  # the playbooks' steps and the follow-up items' reminders
    rows: dict[tuple[int, str, int], Occurrence] = field(default_factory=dict)
    incidents: dict[int, Incident] = field(default_factory=dict)
    stopped_at: dict[int, dict[StopEvent, Any]] = field(default_factory=dict)
    items: dict[str, FollowUp] = field(default_factory=dict)  # follow-up step id -> its item


class PlaybookMachine(RuleBasedStateMachine):
    """One service, one SQLite file, one fake clock and one recording vendor per example."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.tmp = Path(tempfile.mkdtemp(prefix="incident-property-"))
        self.settings = Settings(
            database_url=f"sqlite:///{self.tmp / 'incident.db'}",
            playbooks_dir=PROJECT_ROOT / "playbooks",
            comms_dir=PROJECT_ROOT / "comms",
            runbooks_dir=PROJECT_ROOT / "runbooks",
        )
        self.clock = FakeClock(T0)
        self.vendor = RecordingEffects(clock=self.clock)
        self.vendor.fail_when = self._vendor_hook
        self.failures_left = 0  # scripted VendorDown for this many upcoming sends
        self.crash_countdown: int | None = None  # crash after this many more sends go out
        self.crash_step: str | None = None  # or crash after the first send of this step
        self.crashes: Counter[str] = Counter()  # key -> crashes injected right after its send
        self.failures: Counter[str] = Counter()  # key -> scripted VendorDown on its send
        self.due_when_sent: dict[str, datetime] = {}  # effect key -> its due time then
        self.incidents: list[int] = []
        self.follow_ups: list[tuple[int, int]] = []  # (incident, follow-up)
        self.security_at: dict[int, datetime] = {}  # when an incident became a security one
        self.container: bootstrap.Container | None = None
        try:
            self.container = self._run(self._build())
        except BaseException:
            self.teardown()
            raise

    # --- plumbing ------------------------------------------------------------------------

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def _attempt(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run a use case; a domain refusal (acknowledging twice, ...) is a fine outcome."""
        with contextlib.suppress(DomainError):
            self._run(coroutine)

    async def _build(self) -> bootstrap.Container:
        # Checking the playbooks against comms/ and runbooks/ is most of a build's cost, and
        # examples build (and crash and rebuild) hundreds of times: check them once.
        with mock.patch.object(bootstrap, "check_playbooks", _checked_playbooks):
            return await bootstrap.build(
                self.settings,
                clock=self.clock,
                effects=self.vendor.effects(JinjaRenderer(PROJECT_ROOT / "comms")),
                retry=RetryPolicy(max_attempts=3),
            )

    @property
    def app(self) -> bootstrap.Container:
        assert self.container is not None
        return self.container

    def _target(self, pick: int) -> int:
        return self.incidents[pick % len(self.incidents)]

    def _vendor_hook(self, key: str) -> bool:
        """Called by the fake on every send before it takes effect: fail it, or arm a crash.

        `crash_after_next` makes the fake crash right after the send takes effect; arming it
        here lets a crash hit the n-th send of a tick, not only the most overdue one.
        """
        if self.failures_left > 0:
            self.failures_left -= 1
            self.failures[key] += 1
            return True
        if self.crash_step is not None and EffectKey.parse(key).step_id == self.crash_step:
            self.vendor.crash_after_next = 1
            self.crash_step = None
        if self.crash_countdown is not None:
            if self.crash_countdown == 0:
                self.vendor.crash_after_next = 1
                self.crash_countdown = None
            else:
                self.crash_countdown -= 1
        return False

    def teardown(self) -> None:
        try:
            if self.container is not None:
                self._run(self.container.close())
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
        finally:
            self.loop.close()
            shutil.rmtree(self.tmp, ignore_errors=True)

    # --- rules ---------------------------------------------------------------------------

    @initialize(severity=st.sampled_from(Severity))
    def declare_first(self, severity: Severity) -> None:
        self.declare(severity)

    @precondition(lambda self: len(self.incidents) < MAX_INCIDENTS)
    @rule(severity=st.sampled_from(Severity))
    def declare(self, severity: Severity) -> None:
        incident, created = self._run(
            declare_incident(
                self.app.runtime,
                title=f"checkout down {len(self.incidents) + 1}",
                severity=severity,
                by="alice",
            )
        )
        assert created and incident.id is not None
        self.incidents.append(incident.id)

    @precondition(lambda self: self.incidents)
    @rule(pick=PICK)
    def acknowledge(self, pick: int) -> None:
        self._attempt(acknowledge_incident(self.app.runtime, self._target(pick), by="bob"))

    @precondition(lambda self: self.incidents)
    @rule(pick=PICK)
    def assign_commander(self, pick: int) -> None:
        self._attempt(
            assign_role(self.app.runtime, self._target(pick), Role.COMMANDER, "carol", by="bob")
        )

    @precondition(lambda self: self.incidents)
    @rule(pick=PICK)
    def post_update(self, pick: int) -> None:
        self._attempt(
            post_customer_update(
                self.app.runtime, self._target(pick), message="still on it", by="dana"
            )
        )

    @precondition(lambda self: self.incidents)
    @rule(pick=PICK, severity=st.sampled_from(Severity))
    def change_severity(self, pick: int, severity: Severity) -> None:
        self._attempt(
            change_severity(self.app.runtime, self._target(pick), severity, by="bob", reason="x")
        )

    @precondition(lambda self: self.incidents)
    @rule(pick=PICK)
    def resolve(self, pick: int) -> None:
        self._attempt(
            resolve_incident(self.app.runtime, self._target(pick), summary="rolled back", by="bob")
        )

    @precondition(lambda self: self.incidents)
    @rule(pick=PICK)
    def complete_rca(self, pick: int) -> None:
        self._attempt(
            complete_rca(self.app.runtime, self._target(pick), link="https://rca/1", by="bob")
        )

    @precondition(lambda self: self.incidents)
    @rule(pick=PICK, reason=st.sampled_from([Cancellation.FALSE_ALARM, Cancellation.DECLINED]))
    def cancel(self, pick: int, reason: Cancellation) -> None:
        self._attempt(
            cancel_incident(self.app.runtime, self._target(pick), reason=reason, by="bob")
        )

    @precondition(lambda self: len(self.incidents) > 1)
    @rule(pick=PICK, other=PICK)
    def merge(self, pick: int, other: int) -> None:
        duplicate, into = self._target(pick), self._target(other)
        if duplicate != into:
            self._attempt(merge_incident(self.app.runtime, duplicate, into=into, by="bob"))

    @precondition(lambda self: self.incidents)
    @rule(pick=PICK)
    def reopen(self, pick: int) -> None:
        self._attempt(
            reopen_incident(self.app.runtime, self._target(pick), reason="it is back", by="bob")
        )

    @precondition(lambda self: self.incidents)
    @rule(pick=PICK)
    def make_security(self, pick: int) -> None:
        """The incident turns out to be a security one: its customer texts wait for approval."""
        incident_id = self._target(pick)
        try:
            self._run(
                edit_incident(self.app.runtime, incident_id, by="bob", category=Category.SECURITY)
            )
        except DomainError:
            return
        self.security_at.setdefault(incident_id, self.clock.now())

    @precondition(lambda self: self.security_at)
    @rule(pick=PICK)
    def approve_held(self, pick: int) -> None:
        incident_id = self._target(pick)
        held = self._run(
            self.app.store.run(
                lambda tx: tx.occurrences(
                    SubjectRef.incident(incident_id), states=(OccurrenceState.HELD,)
                )
            )
        )
        if held:
            self._attempt(approve_step(self.app.runtime, incident_id, held[0].step_id, by="carol"))

    @precondition(lambda self: self.incidents)
    @rule(pick=PICK, days=st.integers(1, 4))
    def add_follow_up(self, pick: int, days: int) -> None:
        incident_id = self._target(pick)
        try:
            item = self._run(
                add_follow_up(
                    self.app.runtime,
                    incident_id,
                    title="Alert on pool exhaustion",
                    owner="sam@example.com",
                    due_at=self.clock.now() + timedelta(days=days),
                    by="carol",
                )
            )
        except DomainError:
            return
        assert item.id is not None
        self.follow_ups.append((incident_id, item.id))

    @precondition(lambda self: self.follow_ups)
    @rule(pick=st.integers(0, 7))
    def complete_follow_up(self, pick: int) -> None:
        incident_id, item_id = self.follow_ups[pick % len(self.follow_ups)]
        self._attempt(complete_follow_up(self.app.runtime, incident_id, item_id, by="sam"))

    @rule(delta=DURATIONS, then_tick=st.booleans())
    def advance(self, delta: timedelta, then_tick: bool) -> None:
        """Let time pass, maybe ticking at once. (Hypothesis switches rules off at random
        per example, "swarm testing"; this way time passing still usually comes with ticks.)
        """
        self.clock.advance(delta)
        if then_tick:
            self.tick(outage=0)

    @rule(outage=st.one_of(st.just(0), st.integers(1, 3)))
    def tick(self, outage: int) -> None:
        """Run what is due; with an outage, the first `outage` sends fail (VendorDown) and
        are retried with back-off."""
        self.failures_left = outage
        now = self.clock.now()
        try:
            self._run(self.app.scheduler.tick(now))
        finally:
            self.failures_left = 0
        # Invariant 5: once the scheduler has ticked, nothing runnable at `now` is left.
        left = self._run(self._runnable(now))
        assert not left, f"after a tick at {now}, still runnable: {left}"
        # Invariant 7: and every step whose anchor has happened and whose time has come ran.
        self._run(self._check_anchored_steps_ran(now))

    @rule(wait=st.one_of(st.just(timedelta(0)), DURATIONS), after=st.integers(0, 8))
    def crash_and_restart(self, wait: timedelta, after: int) -> None:
        """Let `wait` pass, then tick; the process dies right after the (after + 1)-th
        effect of the tick took place, before marking it done (or, with fewer effects, at
        the end of the tick). Then a new process starts on the same database."""
        self.crash_countdown = after
        self._crash_during_tick(wait)

    def crash_on_step(self, step_id: str, wait: timedelta) -> str:
        """For replayed sequences: crash right after the first effect of `step_id`."""
        self.crash_step = step_id
        crashed = self._crash_during_tick(wait)
        assert crashed is not None, f"no {step_id} was due: has the playbook changed?"
        return crashed

    def _crash_during_tick(self, wait: timedelta) -> str | None:
        self.clock.advance(wait)
        crashed = None
        try:
            self._run(self.app.scheduler.tick(self.clock.now()))
        except SimulatedCrash as crash:
            crashed = str(crash.args[0])
            self.crashes[crashed] += 1
        finally:
            self.vendor.crash_after_next = 0
            self.crash_countdown = None
            self.crash_step = None
        self._run(self._restart())
        return crashed

    def assert_sent(self, step_id: str, *, at: datetime, port: str = "customers") -> None:
        """For replayed sequences: `step_id` sent something through `port` at `at`."""
        times = [
            s.at
            for s in self.vendor.sends
            if EffectKey.parse(s.key).step_id == step_id and s.port == port
        ]
        assert at in times, f"no {step_id} to {port} at {at}; only at {times}"

    async def _restart(self) -> None:
        await self.app.close()
        self.container = None
        self.container = await self._build()
        await self.container.store.run(lambda tx: tx.release_claims())

    async def _runnable(self, now: datetime) -> list[str]:
        def read(tx: Transaction) -> list[str]:
            return [
                f"{o.step_id}/{o.occurrence} of incident {o.subject.id}: {o.state}, "
                f"run_at {o.run_at}"
                for incident_id in self.incidents
                for o in tx.occurrences(SubjectRef.incident(incident_id), states=ACTIVE)
                if o.run_at <= now
            ]

        return await self.app.store.run(read)

    # --- invariants ----------------------------------------------------------------------

    @invariant()
    def promises_hold(self) -> None:
        self._run(self._check())

    async def _check(self) -> None:
        observed = await self._observe()
        self._check_exactly_once(observed.rows, observed.steps)
        for sent in self.vendor.sends:
            self._check_sent(sent, observed)
        for incident_id, incident in observed.incidents.items():
            rows = [o for o in observed.rows.values() if o.subject.id == incident_id]
            self._check_incident(incident, rows, observed.steps)

    async def _observe(self) -> Observed:
        observed = Observed(steps=self.app.runtime.playbooks.steps())

        def read(tx: Transaction) -> None:
            for incident_id in self.incidents:
                incident = tx.get_incident(incident_id)
                observed.incidents[incident_id] = incident
                observed.stopped_at[incident_id] = first_event_times(
                    incident, tx.timeline(incident_id)
                )
                for item in tx.follow_ups(incident_id):
                    assert item.id is not None
                    for step in follow_up_steps(
                        FollowUp(**{**item.__dict__, "done_at": None, "done_by": None})
                    ):
                        observed.steps[step.id] = step
                        observed.items[step.id] = item
                for o in tx.occurrences(SubjectRef.incident(incident_id)):
                    # The unique (incident, step, occurrence) key: one row, so one 'done'.
                    slot = (o.subject.id, o.step_id, o.occurrence)
                    assert slot not in observed.rows, f"two rows for {slot}"
                    observed.rows[slot] = o

        await self.app.store.run(read)
        return observed

    def _check_sent(self, sent: Sent, observed: Observed) -> None:
        """The promises about one effect the outside world saw."""
        key = EffectKey.parse(sent.key)
        rows = observed.rows
        if sent.key.endswith(GAVE_UP):
            # Invariant 6: the commander hears of a step only once it failed for good.
            assert rows[key.slot].state == "failed", (sent.key, rows[key.slot])
            return
        if sent.key.endswith(APPROVAL):
            # Asked to approve only a text of an incident that was a security one then.
            became = self.security_at.get(key.incident_id)
            assert became is not None and became <= sent.at, sent.key
            return
        step = observed.steps[key.step_id]
        incident = observed.incidents[key.incident_id]
        # Invariant 3: a cancelled incident sends only its cancellation's steps; a
        # follow-up is reminded of only while it is not done.
        if incident.cancelled_at is not None and sent.at > incident.cancelled_at:
            assert step.anchor is Anchor.CANCELLED, (
                f"{sent.key} went out at {sent.at}, after the incident was cancelled at "
                f"{incident.cancelled_at}"
            )
        item = observed.items.get(key.step_id)
        if item is not None and item.done_at is not None:
            assert sent.at <= item.done_at, f"{sent.key} went out after {item.ref} was done"
        # Invariant 8: a security incident's automatic customer texts wait for approval.
        became = self.security_at.get(key.incident_id)
        if step.action in AUTOMATIC_CUSTOMER_TEXTS and became is not None and sent.at > became:
            assert rows[key.slot].approved_by is not None, (
                f"{sent.key} went to customers at {sent.at} without approval (a security "
                f"incident since {became})"
            )
        assert sent.incident_id == key.incident_id, sent
        self._check_not_early(sent, key, rows[key.slot], observed.steps)
        # Invariant 3: no step fires after one of its `until` events (a send at the very
        # instant of the event was made by an earlier rule: rules run one at a time).
        for stop in observed.steps[key.step_id].until:
            happened = observed.stopped_at[key.incident_id][stop]
            assert happened is None or sent.at <= happened, (
                f"{sent.key} went out at {sent.at}, after {stop.value} at {happened}"
            )

    def _check_not_early(
        self, sent: Sent, key: EffectKey, row: Occurrence, steps: dict[str, Step]
    ) -> None:
        """Invariant 2: nothing fires before it is due, as it was due when it went out. A
        repeating step's key names that due time; a one-off step's does not, so it is taken
        from the row right after the rule that sent it (a later re-plan may move an
        occurrence whose effect went out just before a crash)."""
        if sent.key not in self.due_when_sent:
            self.due_when_sent[sent.key] = key.due_at or row.due_at
            if key.due_at is not None and row_key(row, steps) == key.occurrence_key:
                assert key.due_at == row.due_at, (sent.key, row)
        due = self.due_when_sent[sent.key]
        assert due <= sent.at, (
            f"{sent.key} ({sent.port}) went out at {sent.at}, but it was due {due} "
            f"(row now: due {row.due_at}, state {row.state})"
        )

    def _check_exactly_once(
        self, rows: dict[tuple[int, str, int], Occurrence], steps: dict[str, Step]
    ) -> None:
        """Invariant 1: every occurrence reaches the world once; it is tried again only
        after a fault (a crash right after a send, or a vendor failure)."""
        sent_keys = [s.key for s in self.vendor.sends]
        assert len(sent_keys) == len(set(sent_keys)), "a vendor recorded one key twice"
        sent = {key for key in sent_keys if not key.endswith(ASIDES)}
        by_occurrence = self._attempted_by_occurrence(rows, sent)
        self._check_runs_were_faults(by_occurrence, rows, steps)
        self._check_done_rows_went_out(by_occurrence, rows, steps)
        self._check_one_offs_went_out_once(sent, steps)

    def _attempted_by_occurrence(
        self, rows: dict[tuple[int, str, int], Occurrence], sent: set[str]
    ) -> dict[str, list[str]]:
        """The effect keys a vendor was asked to send, by the occurrence key they were sent
        under."""
        by_occurrence: dict[str, list[str]] = {}
        for key, attempts in self.vendor.attempts.items():
            if key.endswith(ASIDES):
                continue  # not an effect of the step: telling the commander about it
            parsed = EffectKey.parse(key)
            assert parsed.slot in rows, f"{key} reached a vendor but has no occurrence row"
            by_occurrence.setdefault(parsed.occurrence_key, []).append(key)
            # A send that went out is recorded once; one that only failed, not at all.
            assert (key in sent) == (attempts > self.failures[key]), key
        return by_occurrence

    def _check_runs_were_faults(
        self,
        by_occurrence: dict[str, list[str]],
        rows: dict[tuple[int, str, int], Occurrence],
        steps: dict[str, Step],
    ) -> None:
        for okey, keys in by_occurrence.items():
            row = rows[EffectKey.parse(okey).slot]
            # Every run of an occurrence starts with its first effect, so its runs are the
            # most attempts of any of its keys. Each run but a final, successful one must
            # have ended in a fault on one of its effects. The successful one is the row's
            # 'done', under the row's current key: a key the row has moved away from (after
            # a crash, a re-plan gave it a new due time) never completes.
            runs = max(self.vendor.attempts[k] for k in keys)
            faults = sum(self.crashes[k] + self.failures[k] for k in keys)
            completed = row.state == "done" and row_key(row, steps) == okey
            assert runs == faults + int(completed), (
                f"{okey} ran {runs} times with {faults} faults (row now "
                f"{row_key(row, steps)}, {row.state}): "
                + ", ".join(
                    f"{k}: {self.vendor.attempts[k]} attempts, {self.crashes[k]} crashes, "
                    f"{self.failures[k]} failures"
                    for k in keys
                )
            )

    def _check_done_rows_went_out(
        self,
        by_occurrence: dict[str, list[str]],
        rows: dict[tuple[int, str, int], Occurrence],
        steps: dict[str, Step],
    ) -> None:
        first_sent: dict[str, datetime] = {}
        for s in self.vendor.sends:
            if s.key.endswith(ASIDES):
                continue
            okey = EffectKey.parse(s.key).occurrence_key
            first_sent[okey] = min(s.at, first_sent.get(okey, s.at))
        for row in rows.values():
            if row.state != "done":
                continue
            okey = row_key(row, steps)
            assert okey in by_occurrence, f"{okey} is done but no vendor saw it"
            step = steps[row.step_id]
            if step.keyed_by_due:
                # Each occurrence of a repeating step is its own message: the one recorded
                # as done went out at or after its due time, not as an earlier send (just
                # before a crash) that the vendor then took the re-run for a repeat of.
                first = first_sent[okey]
                assert row.due_at <= first, (
                    f"{okey} is done (due {row.due_at}), but the vendor took it for a repeat "
                    f"of what it sent at {first}"
                )

    def _check_one_offs_went_out_once(self, sent: set[str], steps: dict[str, Step]) -> None:
        # What the world saw, per (incident, step, occurrence): a step counting from an anchor
        # that happens once (the declaration ...), at most once.
        seen: dict[tuple[int, str, int], set[str]] = {}
        for key in sent:
            parsed = EffectKey.parse(key)
            seen.setdefault(parsed.slot, set()).add(parsed.occurrence_key)
        for slot, okeys in seen.items():
            step = steps[slot[1]]
            if not step.keyed_by_due:
                assert slot[2] == 1, f"{okeys}: a one-off step fired again"
                assert len(okeys) == 1, f"the one-off step {slot} reached the world twice: {okeys}"
            if step.max_occurrences is not None:
                assert slot[2] <= step.max_occurrences, f"{okeys}: over max_occurrences"

    def _check_incident(
        self, incident: Incident, rows: list[Occurrence], steps: dict[str, Step]
    ) -> None:
        # Invariant 4: the RCA deadline is 48 h after resolution for P1 and P2, none otherwise.
        if incident.resolved_at is None:
            assert incident.rca_due_at is None, incident
        elif incident.severity in (Severity.P1, Severity.P2):
            assert incident.rca_due_at == incident.resolved_at + RCA_WITHIN, incident
        else:
            assert incident.rca_due_at is None, incident
        for o in rows:
            if o.step_id != RCA_MISSED or o.state == "cancelled":
                continue
            if incident.resolved_at is None or o.due_at < incident.resolved_at:
                continue  # (an RCA deadline of an earlier resolution, before a reopening)
            assert incident.rca_due_at is not None, f"{row_key(o, steps)} without an RCA deadline"
            if o.occurrence == 1:
                assert o.due_at == incident.rca_due_at, (o, incident.rca_due_at)
            else:  # later reminders stay on the deadline's 24 h grid
                every = steps[RCA_MISSED].every
                assert every is not None
                assert o.due_at > incident.rca_due_at, o
                assert (o.due_at - incident.rca_due_at) % every == timedelta(0), o
        # Resolution cancels the cadence, the RCA what waits for it, cancellation all but
        # its own steps.
        for o in rows:
            if o.state not in (*ACTIVE, "held"):
                continue
            step = steps[o.step_id]
            if incident.rca_link is not None:
                assert StopEvent.RCA_COMPLETED not in step.until, (
                    f"{row_key(o, steps)} still {o.state} after the RCA"
                )
            if incident.resolved_at is not None:
                assert StopEvent.RESOLVED not in step.until, (
                    f"{row_key(o, steps)} still {o.state} after resolution"
                )
            if incident.status is Status.CANCELLED:
                assert step.anchor is Anchor.CANCELLED, (
                    f"{row_key(o, steps)} still {o.state} on a cancelled incident"
                )

    async def _check_anchored_steps_ran(self, now: datetime) -> None:
        """Invariant 7, after a tick at `now`: every step of each incident whose anchor has
        happened and whose due time has come has an occurrence for that instant of its
        anchor that was not cancelled, unless one of its own `until` events happened (or
        the incident was cancelled and the step is not one of its cancellation's)."""
        playbooks = self.app.runtime.playbooks

        def read(tx: Transaction) -> list[str]:
            missing = []
            for incident_id in self.incidents:
                incident = tx.get_incident(incident_id)
                rows = tx.occurrences(SubjectRef.incident(incident_id))
                own = [s for item in tx.follow_ups(incident_id) for s in follow_up_steps(item)]
                for step in (*playbooks.for_severity(incident.severity).steps, *own):
                    due = _due_for_anchor(incident, step)
                    if due is None or due[1] > now:
                        continue
                    anchor, _ = due
                    if any(_happened(incident, stop) for stop in step.until):
                        continue
                    if incident.status is Status.CANCELLED and step.anchor is not Anchor.CANCELLED:
                        continue
                    if step.max_occurrences is not None and step.every is not None:
                        continue  # bounded repeats: the cadence invariants cover them
                    ran = [
                        o
                        for o in rows
                        if o.step_id == step.id and o.due_at >= anchor and o.state != "cancelled"
                    ]
                    if not ran:
                        states = [
                            (o.occurrence, o.due_at, o.state) for o in rows if o.step_id == step.id
                        ]
                        missing.append(
                            f"INC-{incident_id} {incident.status.value}: {step.id} (anchor "
                            f"{step.anchor.value} at {anchor}, due {due[1]}) has no live "
                            f"occurrence: {states}"
                        )
            return missing

        missing = await self.app.store.run(read)
        assert not missing, "\n".join(missing)


def _anchor_at(incident: Incident, step: Step) -> datetime | None:
    """When the step's anchor last happened, read off the incident's facts (written out
    here rather than taken from the planner, which is what is under test)."""
    last_update = incident.last_customer_update_at or incident.declared_at
    if incident.reopened_at is not None:
        last_update = max(last_update, incident.reopened_at)
    return {
        Anchor.DECLARED: incident.declared_at,
        Anchor.ACKNOWLEDGED: incident.acknowledged_at,
        Anchor.SEVERITY_CHANGED: incident.severity_changed_at,
        Anchor.LAST_CUSTOMER_UPDATE: last_update,
        Anchor.MANUAL_CUSTOMER_UPDATE: incident.last_manual_update_at,
        Anchor.RESOLVED: incident.resolved_at,
        Anchor.CHANGED: incident.changed_at,
        Anchor.REOPENED: incident.reopened_at,
        Anchor.RCA_COMPLETED: incident.closed_at if incident.rca_link else None,
        Anchor.CANCELLED: incident.cancelled_at,
        Anchor.FIXED: step.at,
    }[step.anchor]


def _due_for_anchor(incident: Incident, step: Step) -> tuple[datetime, datetime] | None:
    """(anchor instant, first due time for it) of a step that applies to this incident."""
    if step.categories and incident.category not in step.categories:
        return None
    anchor = _anchor_at(incident, step)
    if anchor is None:
        return None
    due = max(anchor + step.offset, incident.declared_at + step.window_start)
    if step.window_end is not None and due >= incident.declared_at + step.window_end:
        return None
    return anchor, due


def _happened(incident: Incident, stop: StopEvent) -> bool:
    return {
        StopEvent.ACKNOWLEDGED: incident.acknowledged_at is not None,
        StopEvent.COMMANDER_ASSIGNED: incident.commander is not None,
        StopEvent.CUSTOMER_UPDATE_POSTED: incident.last_customer_update_at is not None,
        StopEvent.RESOLVED: incident.resolved_at is not None,
        StopEvent.RCA_COMPLETED: incident.rca_link is not None,
    }[stop]


# A hundred random runs of 40 operations each take 45 s alone on 2 cores, more beside the
# rest of the suite: beyond the 60 s guard against hangs, with no hang.
@pytest.mark.timeout(300)
def test_playbook_promises_hold_under_random_operations() -> None:
    run_state_machine_as_test(PlaybookMachine, settings=PROPERTY_SETTINGS)


# --- sequences found before, replayed on every run -------------------------------------------
# Each drives the machine through a fixed sequence, checking every invariant after each step
# (the state machine search may take many examples to land on these again).

Replay = list[Callable[[PlaybookMachine], object]]

KNOWN_SEQUENCES: dict[str, Replay] = {
    # A person posted an update, resolved and recorded the RCA back to back, before the
    # scheduler ran: what resolving planned (the resolution notice, the status page, the
    # pager resolve, the executives' notice, the review) must still run; closing stops
    # only what waits for the RCA.
    "update, resolve and RCA back to back": [
        lambda m: m.declare_first(severity=Severity.P1),
        lambda m: m.advance(delta=timedelta(minutes=3), then_tick=True),
        lambda m: m.post_update(pick=0),
        lambda m: m.resolve(pick=0),
        lambda m: m.complete_rca(pick=0),
        lambda m: m.tick(outage=0),
        lambda m: m.assert_sent("resolution-notice", at=T0 + timedelta(minutes=3)),
        lambda m: m.assert_sent(
            "pager-resolve", at=T0 + timedelta(minutes=3), port="pager.resolve"
        ),
    ],
    # A false alarm, cancelled after its page went out: the page is resolved, the status
    # page withdrawn, and nothing else of the playbook runs, even once it is due.
    "cancelled after the page": [
        lambda m: m.declare_first(severity=Severity.P1),
        lambda m: m.tick(outage=0),
        lambda m: m.cancel(pick=0, reason=Cancellation.FALSE_ALARM),
        lambda m: m.advance(delta=timedelta(hours=5), then_tick=True),
        lambda m: m.assert_sent(
            "pager-resolve-cancelled", at=T0 + timedelta(hours=5), port="pager.resolve"
        ),
    ],
    # Resolved, reopened, resolved again: customers hear of each resolution once.
    "resolved, reopened and resolved again": [
        lambda m: m.declare_first(severity=Severity.P2),
        lambda m: m.resolve(pick=0),
        lambda m: m.advance(delta=timedelta(minutes=10), then_tick=True),
        lambda m: m.reopen(pick=0),
        lambda m: m.advance(delta=timedelta(minutes=50), then_tick=True),
        lambda m: m.resolve(pick=0),
        lambda m: m.advance(delta=timedelta(minutes=1), then_tick=True),
        lambda m: m.assert_sent("resolution-notice", at=T0 + timedelta(minutes=10)),
        lambda m: m.assert_sent("resolution-notice", at=T0 + timedelta(minutes=61)),
    ],
    # A security incident: its customer texts wait until approved, then go out.
    "security texts wait for approval": [
        lambda m: m.declare_first(severity=Severity.P1),
        lambda m: m.make_security(pick=0),
        lambda m: m.advance(delta=timedelta(minutes=11), then_tick=True),
        lambda m: m.approve_held(pick=0),
        lambda m: m.tick(outage=0),
        lambda m: m.assert_sent(
            "status-page-investigating", at=T0 + timedelta(minutes=11), port="status_page"
        ),
    ],
    # The holding update went out, the process died before recording it, and a person then
    # posted an update, moving the next holding update 30 minutes on. That one must go out
    # too: it is not a repeat of the first, whatever the vendor's idempotency key says.
    "moved holding update after a crash": [
        lambda m: m.declare_first(severity=Severity.P1),
        lambda m: m.acknowledge(pick=0),
        lambda m: m.post_update(pick=0),
        lambda m: m.advance(delta=timedelta(minutes=26), then_tick=True),
        lambda m: m.crash_on_step("customer-update", wait=timedelta(minutes=4)),
        lambda m: m.post_update(pick=0),
        lambda m: m.advance(delta=timedelta(minutes=30), then_tick=True),
        lambda m: m.assert_sent("customer-update", at=T0 + timedelta(minutes=60)),
    ],
    # A person's update went out to customers, the process died before recording it, and a
    # person posted another update a minute later. The second update must be published too.
    "second manual update after a crash while publishing the first": [
        lambda m: m.declare_first(severity=Severity.P1),
        lambda m: m.post_update(pick=0),
        lambda m: m.crash_on_step("publish-update", wait=timedelta(0)),
        lambda m: m.advance(delta=timedelta(minutes=1), then_tick=False),
        lambda m: m.post_update(pick=0),
        lambda m: m.tick(outage=0),
        lambda m: m.assert_sent("publish-update", at=T0 + timedelta(minutes=1)),
    ],
    # The P2 customer notification went out, the process died before recording it, and the
    # incident became P1, whose playbook has the notification at 10 minutes instead of 30.
    # It is a one-off step: customers must not be told twice because of the crash.
    "one-off notification moved by a severity change after a crash": [
        lambda m: m.declare_first(severity=Severity.P2),
        lambda m: m.acknowledge(pick=0),
        lambda m: m.crash_on_step("customer-notification", wait=timedelta(minutes=30)),
        lambda m: m.change_severity(pick=0, severity=Severity.P1),
        lambda m: m.tick(outage=0),
    ],
}


@pytest.mark.parametrize("name", sorted(KNOWN_SEQUENCES))
def test_known_sequence(name: str) -> None:
    machine = PlaybookMachine()
    try:
        machine.promises_hold()
        for step in KNOWN_SEQUENCES[name]:
            step(machine)
            machine.promises_hold()
    finally:
        machine.teardown()
