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

    @property
    def idempotency_key(self) -> str:
        """The key every effect of this occurrence is sent with: a re-run sends the same key,
        so the vendor sees one effect.

        The due time is part of it. An occurrence that is moved (a customer update was
        posted) is a different message, and must not be taken for a repeat of one that went
        out just before a crash, when nothing had recorded it yet.
        """
        due = self.due_at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        return f"inc-{self.incident_id}/{self.step_id}/{self.occurrence}@{due}"

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
