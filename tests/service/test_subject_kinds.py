"""A new kind of subject rides the same engine by registering itself, not by editing the
scheduler: a toy "reminder" with a two-step playbook, run in virtual time through the real
engine on a real database (SQLite and PostgreSQL), crashing between an effect and its mark.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest

from incident.clock import FakeClock
from incident.config import Settings
from incident.domain.planning import PlannedOccurrence
from incident.domain.records import Occurrence, OccurrenceState, SubjectRef
from incident.services.engine import Failure, Prepared, Ready, Sent
from incident.services.ports import Transaction
from incident.testing import SimulatedCrash, run_until
from tests.conftest import T0, Build

M = timedelta(minutes=1)
REMINDER = "reminder"


@pytest.fixture
def settings(settings_on_both: Settings) -> Settings:
    return settings_on_both


@dataclass(frozen=True)
class ReminderStep:
    """A step of the toy playbook, in the shape the store keeps of a step."""

    id: str
    after: timedelta
    action: str = "remind"
    target: str | None = None


PLAYBOOK = (ReminderStep("first-nudge", 1 * M), ReminderStep("second-nudge", 5 * M))


@dataclass
class Outbox:
    """The toy's outside world: idempotent by key, as every vendor adapter is. It can die
    right after an effect, before the engine marks the step done."""

    sent: list[tuple[datetime, str]] = field(default_factory=list)
    attempts: Counter[str] = field(default_factory=Counter)
    crash_after_next: bool = False

    def send(self, at: datetime, key: str) -> None:
        self.attempts[key] += 1
        if self.attempts[key] == 1:
            self.sent.append((at, key))
        if self.crash_after_next:
            self.crash_after_next = False
            raise SimulatedCrash(key)


@dataclass(frozen=True)
class Reminded:
    summary: str


@dataclass(frozen=True)
class Nudge:
    occurrence: Occurrence
    outbox: Outbox
    clock: FakeClock

    async def perform(self) -> Sent:
        key = self.occurrence.effect_key(repeats=False)
        self.outbox.send(self.clock.now(), key)
        return Reminded(f"reminded ({key})")


@dataclass
class Reminders:
    """The toy subject kind: everything the engine asks of a kind, and nothing more."""

    outbox: Outbox
    clock: FakeClock
    recorded: list[str] = field(default_factory=list)
    name: str = REMINDER

    def plan(self, tx: Transaction, subject: SubjectRef, start: datetime) -> None:
        planned = [PlannedOccurrence(s.id, 1, start + s.after) for s in PLAYBOOK]
        tx.reconcile(subject, planned, {s.id: s for s in PLAYBOOK}, now=start, new=True)

    def prepare(
        self, tx: Transaction, occurrence: Occurrence, now: datetime, *, facts: object = None
    ) -> Prepared:
        return Prepared(occurrence, ready=Nudge(occurrence, self.outbox, self.clock))

    def record_done(self, tx: Transaction, ready: Ready, sent: Sent, now: datetime) -> object:
        self.recorded.append(ready.occurrence.step_id)
        return None

    def record_failure(
        self, tx: Transaction, occurrence: Occurrence, failure: Failure, now: datetime
    ) -> object:
        return None

    def committed(self, sent: Sent) -> None:
        pass

    async def gave_up(self, ready: Ready, failure: Failure, facts: object) -> None:
        pass


async def test_a_registered_kind_runs_each_step_once_through_a_crash(
    build: Build, clock: FakeClock
) -> None:
    outbox = Outbox()
    app = await build()
    reminders = Reminders(outbox, clock)
    app.engine.kinds.register(reminders)
    subject = SubjectRef(REMINDER, 7)
    await app.store.run(lambda tx: reminders.plan(tx, subject, T0))

    outbox.crash_after_next = True  # dies after the first nudge went out, before its mark
    with pytest.raises(SimulatedCrash):
        await run_until(app, clock, T0 + 10 * M)
    assert [key for _, key in outbox.sent] == ["reminder-7/first-nudge/1"]
    assert reminders.recorded == []
    await app.close()

    # A new process on the same database: the crashed claim's lease runs out, the step is
    # claimed again and sent again under the same key, which the outside world ignores.
    restarted = await build()
    reminders = Reminders(outbox, clock)
    restarted.engine.kinds.register(reminders)
    await run_until(restarted, clock, T0 + 30 * M)

    assert [key for _, key in outbox.sent] == [
        "reminder-7/first-nudge/1",
        "reminder-7/second-nudge/1",
    ]
    assert outbox.attempts == {"reminder-7/first-nudge/1": 2, "reminder-7/second-nudge/1": 1}
    assert reminders.recorded == ["first-nudge", "second-nudge"]  # each recorded once
    rows = await restarted.store.run(lambda tx: tx.occurrences(subject))
    assert [(r.subject, r.step_id, r.state) for r in rows] == [
        (subject, "first-nudge", OccurrenceState.DONE),
        (subject, "second-nudge", OccurrenceState.DONE),
    ]
    assert [r.attempts for r in rows] == [2, 1]


async def test_a_step_of_an_unregistered_kind_is_refused_loudly(
    build: Build, clock: FakeClock
) -> None:
    app = await build()
    reminders = Reminders(Outbox(), clock)
    await app.store.run(lambda tx: reminders.plan(tx, SubjectRef(REMINDER, 8), T0))
    with pytest.raises(LookupError, match="no subject kind 'reminder' is registered"):
        await app.scheduler.tick(T0 + 1 * M)
