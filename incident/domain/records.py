"""What is kept about a subject besides its facts: timeline entries and step occurrences.

A subject is what a playbook runs for: an incident today; support cases, ownership
verifications and subscriber notices later. The engine plans, claims and runs step
occurrences of any subject alike; each kind of subject says what its steps do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

INCIDENT = "incident"  # the subject kind of incidents


@dataclass(frozen=True, order=True)
class SubjectRef:
    """Which subject a step occurrence belongs to: its kind and its id within that kind."""

    kind: str
    id: int

    @property
    def key(self) -> str:
        """How effect keys name it: `inc-7` for incident 7 (the form vendors have seen
        since the first release, so keys stay stable), `<kind>-<id>` for other kinds."""
        return f"inc-{self.id}" if self.kind == INCIDENT else f"{self.kind}-{self.id}"

    @classmethod
    def incident(cls, incident_id: int) -> SubjectRef:
        return cls(INCIDENT, incident_id)


class OccurrenceState(StrEnum):
    """Where a planned step occurrence is in its life."""

    PENDING = "pending"  # planned; claimed when due
    RUNNING = "running"  # claimed under a lease, its effect being sent
    # Due, and waiting for the commander's approval (an automatic customer-facing text of a
    # security incident): never claimed until approved, skipped or no longer planned.
    HELD = "held"
    DONE = "done"
    FAILED = "failed"  # gave up after its retries
    SKIPPED = "skipped"  # its condition no longer held, stale, or skipped by a person
    CANCELLED = "cancelled"  # no longer planned

    @property
    def fired(self) -> bool:
        """Counts as fired for planning: over, and not undone."""
        return self in FIRED_STATES

    @property
    def upcoming(self) -> bool:
        """Still to come: shown in every list of the next steps."""
        return self in UPCOMING_STATES


FIRED_STATES = (OccurrenceState.DONE, OccurrenceState.FAILED, OccurrenceState.SKIPPED)
UPCOMING_STATES = (OccurrenceState.PENDING, OccurrenceState.RUNNING, OccurrenceState.HELD)


class StepResult(StrEnum):
    """What happened to one claimed occurrence (for metrics, logs and `incident simulate`)."""

    DONE = "done"
    RETRY = "retry"  # its effect failed; tried again later
    FAILED = "failed"  # its effect failed for the last time
    SKIPPED = "skipped"  # its fire-time checks skipped it
    CANCELLED = "cancelled"  # its fire-time checks found it no longer planned
    HELD = "held"  # waits for approval
    LOST = "lost"  # another replica took over its claim


@dataclass(frozen=True)
class TimelineEntry:
    """One thing that happened: a state change, an action done, a message sent."""

    at: datetime
    kind: str
    actor: str
    text: str
    public: bool = False
    step_id: str | None = None
    occurrence: int | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Occurrence:
    """One planned occurrence of a step, as stored."""

    id: int
    subject: SubjectRef  # whose step it is
    step_id: str
    occurrence: int
    action: str
    target: str | None
    due_at: datetime
    run_at: datetime
    state: OccurrenceState
    attempts: int
    started_at: datetime | None = None
    finished_at: datetime | None = None
    outcome: str | None = None
    last_error: str | None = None
    approved_by: str | None = None  # who let it go out, when it waited for approval

    def effect_key(self, *, repeats: bool) -> str:
        """The idempotency key every effect of this occurrence is sent with. A re-run (after
        a crash, or a retry) sends the same key, so the vendor sees one effect.

        A step counting from an anchor that happens once is one message per incident,
        wherever the plan moves it: its key is `inc-<id>/<step>/1`. An occurrence that the
        plan moves to a new instant of its anchor (a customer update was posted, the
        incident resolved again) is a new message, so its key also names its due time
        (`repeats`: `Step.keyed_by_due`); otherwise a holding update sent just before a
        crash, before anything recorded it, would swallow the next one.
        """
        key = f"{self.subject.key}/{self.step_id}/{self.occurrence}"
        if not repeats:
            return key
        return f"{key}@{self.due_at.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}"

    def lateness(self, started: datetime) -> timedelta:
        return started - self.due_at


@dataclass(frozen=True)
class PlanChange:
    """What a re-plan did to the pending occurrences of one incident."""

    added: tuple[str, ...] = ()
    moved: tuple[str, ...] = ()
    cancelled: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.moved or self.cancelled)
