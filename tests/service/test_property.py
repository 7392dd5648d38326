"""Property test: random operator actions, clock jumps, ticks, vendor outages and crashes
never break the scheduler's promises (DESIGN.md section 2).

A Hypothesis state machine drives the real service (SQLite file, real scheduler, recording
vendor fakes) through random sequences of use cases, virtual time and restarts, and checks
after every step what the outside world saw (`RecordingEffects.sends` and `.attempts`)
against what the database says (occurrence rows, incident facts, timeline).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Coroutine
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

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
from incident.adapters.templates import JinjaRenderer
from incident.clock import FakeClock
from incident.config import PROJECT_ROOT, Settings
from incident.domain.errors import DomainError
from incident.domain.incident import Incident, Role, Severity
from incident.domain.playbook import Step, StopEvent
from incident.domain.records import Occurrence, TimelineEntry
from incident.scheduler.runner import RetryPolicy
from incident.services.incidents import (
    acknowledge_incident,
    assign_role,
    change_severity,
    complete_rca,
    declare_incident,
    post_customer_update,
    resolve_incident,
)
from incident.services.ports import Transaction
from tests.conftest import T0
from tests.fakes import RecordingEffects, SimulatedCrash

T = TypeVar("T")

RCA_WITHIN = timedelta(hours=48)
RCA_MISSED = "rca.missed"
ACTIVE = ("pending", "running")

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
    max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "60")),
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def split_key(key: str) -> tuple[int, str, int]:
    """`inc-<id>/<step>/<n>` -> (incident id, step id, occurrence)."""
    incident, step_id, occurrence = key.split("/")
    return int(incident.removeprefix("inc-")), step_id, int(occurrence)


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
        self.crashes: Counter[str] = Counter()  # key -> crashes injected right after its send
        self.failures: Counter[str] = Counter()  # key -> scripted VendorDown on its send
        self.incidents: list[int] = []
        self.container: bootstrap.Container | None = None
        self.container = self._run(self._build())

    # --- plumbing ------------------------------------------------------------------------

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def _attempt(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run a use case; a domain refusal (acknowledging twice, ...) is a fine outcome."""
        with contextlib.suppress(DomainError):
            self._run(coroutine)

    async def _build(self) -> bootstrap.Container:
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
        self._run(self.app.scheduler.tick(now))
        # Invariant 5: once the scheduler has ticked, nothing runnable at `now` is left.
        left = self._run(self._runnable(now))
        assert not left, f"after a tick at {now}, still runnable: {left}"

    @rule(wait=st.one_of(st.just(timedelta(0)), DURATIONS), after=st.integers(0, 8))
    def crash_and_restart(self, wait: timedelta, after: int) -> None:
        """Let `wait` pass, then tick; the process dies right after the (after + 1)-th
        effect of the tick took place, before marking it done (or, with fewer effects, at
        the end of the tick). Then a new process starts on the same database."""
        self.clock.advance(wait)
        self.crash_countdown = after
        try:
            self._run(self.app.scheduler.tick(self.clock.now()))
        except SimulatedCrash as crash:
            self.crashes[str(crash.args[0])] += 1
        finally:
            self.vendor.crash_after_next = 0
            self.crash_countdown = None
        self._run(self._restart())

    async def _restart(self) -> None:
        await self.app.close()
        self.container = None
        self.container = await self._build()
        await self.container.store.run(lambda tx: tx.release_claims())

    async def _runnable(self, now: datetime) -> list[str]:
        def read(tx: Transaction) -> list[str]:
            return [
                f"{o.idempotency_key} {o.state} run_at={o.run_at}"
                for incident_id in self.incidents
                for o in tx.occurrences(incident_id, states=ACTIVE)
                if o.run_at <= now
            ]

        return await self.app.store.run(read)

    # --- invariants ----------------------------------------------------------------------

    @invariant()
    def promises_hold(self) -> None:
        self._run(self._check())

    async def _check(self) -> None:
        steps = self.app.runtime.playbooks.steps()
        rows: dict[str, Occurrence] = {}
        incidents: dict[int, Incident] = {}
        stopped_at: dict[int, dict[StopEvent, Any]] = {}

        def read(tx: Transaction) -> None:
            for incident_id in self.incidents:
                incident = tx.get_incident(incident_id)
                incidents[incident_id] = incident
                stopped_at[incident_id] = first_event_times(incident, tx.timeline(incident_id))
                for o in tx.occurrences(incident_id):
                    # The unique (incident, step, occurrence) key: one row, so one 'done'.
                    assert o.idempotency_key not in rows, f"two rows for {o.idempotency_key}"
                    rows[o.idempotency_key] = o

        await self.app.store.run(read)

        self._check_exactly_once(rows, steps)
        for sent in self.vendor.sends:
            incident_id, step_id, _ = split_key(sent.key)
            assert sent.incident_id == incident_id, sent
            row = rows[sent.key]
            # Invariant 2: nothing fires before it is due.
            assert row.due_at <= sent.at, (
                f"{sent.key} ({sent.port}) went out at {sent.at}, but its occurrence is due "
                f"{row.due_at} (state {row.state})"
            )
            # Invariant 3: no step fires after one of its `until` events (a send at the very
            # instant of the event was made by an earlier rule: rules run one at a time).
            step = steps[step_id]
            for stop in step.until:
                happened = stopped_at[incident_id][stop]
                assert happened is None or sent.at <= happened, (
                    f"{sent.key} went out at {sent.at}, after {stop.value} at {happened}"
                )
        for incident_id, incident in incidents.items():
            self._check_incident(
                incident, [o for o in rows.values() if o.incident_id == incident_id], steps
            )

    def _check_exactly_once(self, rows: dict[str, Occurrence], steps: dict[str, Step]) -> None:
        """Invariant 1: every occurrence reaches the world once; retries only after faults."""
        sent_keys = [s.key for s in self.vendor.sends]
        assert len(sent_keys) == len(set(sent_keys)), "a vendor recorded one key twice"
        sent = set(sent_keys)
        for key, attempts in self.vendor.attempts.items():
            row = rows.get(key)
            assert row is not None, f"{key} reached a vendor but has no occurrence row"
            faults = self.crashes[key] + self.failures[key]
            clean = attempts - faults  # attempts that neither crashed nor failed
            assert clean == (1 if row.state == "done" else 0), (
                f"{key}: {attempts} vendor attempts, {self.crashes[key]} crashes, "
                f"{self.failures[key]} scripted failures, row state {row.state}"
            )
            assert (key in sent) == (attempts > self.failures[key]), key
        for key, row in rows.items():
            if row.state == "done":
                assert key in sent, f"{key} is done but no vendor saw it"
        for key in sent:
            _, step_id, occurrence = split_key(key)
            step = steps[step_id]
            # A non-repeating step fires at most once; a capped one at most its cap.
            assert step.repeats or occurrence == 1, f"{key}: a one-off step fired again"
            if step.max_occurrences is not None:
                assert occurrence <= step.max_occurrences, f"{key}: over max_occurrences"

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
            if o.step_id != RCA_MISSED:
                continue
            assert incident.rca_due_at is not None, f"{o.idempotency_key} without an RCA deadline"
            if o.occurrence == 1:
                assert o.due_at == incident.rca_due_at, (o, incident.rca_due_at)
            else:  # later reminders stay on the deadline's 24 h grid
                every = steps[RCA_MISSED].every
                assert every is not None
                assert o.due_at > incident.rca_due_at, o
                assert (o.due_at - incident.rca_due_at) % every == timedelta(0), o
        # Resolution cancels the cadence; closing cancels everything.
        for o in rows:
            if o.state not in ACTIVE:
                continue
            assert incident.rca_link is None, f"{o.idempotency_key} {o.state} on a closed incident"
            if incident.resolved_at is not None:
                assert StopEvent.RESOLVED not in steps[o.step_id].until, (
                    f"{o.idempotency_key} still {o.state} after resolution"
                )


def test_playbook_promises_hold_under_random_operations(monkeypatch: pytest.MonkeyPatch) -> None:
    # Parsing and checking the playbooks (pure-Python YAML) costs ~0.3 s per build, and a
    # build happens per example and per restart. The files do not change during the run,
    # and a PlaybookSet is immutable, so every container may share one.
    monkeypatch.setattr(bootstrap, "check_playbooks", functools.cache(bootstrap.check_playbooks))
    run_state_machine_as_test(PlaybookMachine, settings=PROPERTY_SETTINGS)
