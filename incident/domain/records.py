"""What is kept about an incident besides its facts: timeline entries and step occurrences."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any


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
    incident_id: int
    step_id: str
    occurrence: int
    action: str
    target: str | None
    due_at: datetime
    run_at: datetime
    state: str
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
        key = f"inc-{self.incident_id}/{self.step_id}/{self.occurrence}"
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
