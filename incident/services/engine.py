"""What the engine asks of each kind of subject, and what it reports of each step.

The engine (`incident.scheduler`) claims due step occurrences, keeps their leases, sends
each effect once under its idempotency key, retries what fails and records the result,
for any subject: incidents today; support cases, ownership verifications and subscriber
notices later. It knows nothing of what a subject is. A `SubjectKind`, registered under
the name its occurrences are stored with, decides whether a claimed step still runs,
prepares what it sends, and records what it did (its timeline, its facts, its re-plan).
Adding a kind is registering one (`SubjectKinds.register`), not editing the scheduler.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from incident.domain.records import Occurrence, StepResult
from incident.services.ports import Transaction


@dataclass(frozen=True)
class StepReport:
    """What happened to one claimed occurrence (for metrics and `incident simulate`)."""

    occurrence: Occurrence
    result: StepResult
    lateness: timedelta
    detail: str = ""


@dataclass
class TickReport:
    steps: list[StepReport] = field(default_factory=list)

    def count(self, result: str) -> int:
        return sum(1 for s in self.steps if s.result == result)


class Sent(Protocol):
    """What sending a step's effect did, as far as the engine cares."""

    @property
    def summary(self) -> str: ...


class Ready(Protocol):
    """A claimed occurrence that passed its fire-time checks: the effect to send."""

    @property
    def occurrence(self) -> Occurrence: ...

    async def perform(self) -> Sent:
        """Send the effect under the occurrence's idempotency key (a re-run after a crash
        sends the same key, which the adapters turn into a no-op)."""
        ...


@dataclass(frozen=True)
class Prepared:
    """A claimed occurrence after its checks: ready to send (`ready`), finished by them
    (`report`), or not checked yet (neither: it follows another step of its subject and
    is checked once that one has run)."""

    occurrence: Occurrence
    ready: Ready | None = None
    report: StepReport | None = None
    # Told after the checks were committed, best effort (asking for an approval).
    notice: Callable[[], Awaitable[None]] | None = None


@dataclass(frozen=True)
class Failure:
    """An effect that raised: what it said (secrets redacted) and what comes next."""

    message: str
    attempt: int
    max_attempts: int
    retry_at: datetime | None  # None: the last attempt; the step is failed for good

    @property
    def final(self) -> bool:
        return self.retry_at is None


class SubjectKind(Protocol):
    """What one kind of subject supplies to the engine. Each method that takes `tx` runs
    inside the engine's unit of work, after it has checked its claim still stands."""

    @property
    def name(self) -> str:
        """The kind as stored with its occurrences (`incident`)."""
        ...

    def prepare(
        self, tx: Transaction, occurrence: Occurrence, now: datetime, *, facts: object = None
    ) -> Prepared:
        """Decide whether a claimed occurrence still runs at `now`; if not, record why (and
        re-plan); if so, gather what its effect needs. `facts`: the subject as this
        transaction has just written it (saves reading it again), or None."""
        ...

    def record_done(self, tx: Transaction, ready: Ready, sent: Sent, now: datetime) -> object:
        """Record what a sent step did (the occurrence is already marked done): its
        timeline, what it changed on the subject, the re-plan. Returns the subject's facts
        as written, for checking its next claimed step in the same transaction."""
        ...

    def record_failure(
        self, tx: Transaction, occurrence: Occurrence, failure: Failure, now: datetime
    ) -> object:
        """Record a failed attempt (the occurrence is already set to retry or failed): its
        timeline, and a re-plan when it was the last. Returns the subject's facts as read
        then (for `gave_up`)."""
        ...

    def committed(self, sent: Sent) -> None:
        """Told once what a sent step did has been committed (the status page's caches)."""
        ...

    async def gave_up(self, ready: Ready, failure: Failure, facts: object) -> None:
        """A step failed for good: tell the people who must now do it by hand (best effort)."""
        ...


class SubjectKinds:
    """The kinds of subject the engine runs steps for, by name."""

    def __init__(self, *kinds: SubjectKind) -> None:
        self._kinds: dict[str, SubjectKind] = {}
        for kind in kinds:
            self.register(kind)

    def register(self, kind: SubjectKind) -> None:
        if kind.name in self._kinds:
            raise ValueError(f"a subject kind named {kind.name!r} is already registered")
        self._kinds[kind.name] = kind

    def __getitem__(self, name: str) -> SubjectKind:
        try:
            return self._kinds[name]
        except KeyError:
            raise LookupError(f"no subject kind {name!r} is registered") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._kinds)
