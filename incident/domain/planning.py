"""Planning maths: when is the next occurrence of each step due?

Pure functions of the incident's facts, the playbook and what has already fired. They never
read a clock: re-planning the same facts always gives the same plan, which is what makes
re-planning on every state change safe.

Rules
- A step whose anchor has happened is planned until one of its own `until` events has
  happened. Recording the RCA (closing) stops nothing by itself: what resolving planned
  still runs. Cancelling an incident (a false alarm, declined, merged) is the one
  exception: then only the steps anchored on `cancelled` run.
- A non-repeating step fires once for each instant its anchor takes: once per incident
  for `declared`, again for `resolved` when a reopened incident is resolved again.
- Occurrence numbers count firings of a step (1, 2, ...); the next occurrence is always
  `fired + 1`, so a pending occurrence keeps its number when its due time moves.
- The first occurrence since the step's anchor is due at `anchor + offset`. A repeating
  step's later occurrences follow on a fixed grid (`previous due + every`), so lateness
  never accumulates. If the anchor moves past the grid (a customer update was posted),
  the grid restarts from the new anchor.
- Missed repeats are coalesced: when an occurrence fired late, the next one is the first
  grid point after the instant it actually fired, never a burst of catch-up sends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from incident.domain.incident import Incident, Status
from incident.domain.playbook import (
    Action,
    Anchor,
    Condition,
    Playbook,
    Step,
    StopEvent,
    format_duration,
)
from incident.domain.records import Occurrence, OccurrenceState


@dataclass(frozen=True)
class StepHistory:
    """What has already happened to one step of one incident."""

    fired: int = 0  # occurrences that ran, failed for good or were skipped
    last_due: datetime | None = None  # due time of the latest of those
    last_fired_at: datetime | None = None  # when the latest of those actually ran


NO_HISTORY = StepHistory()


@dataclass(frozen=True)
class PlannedOccurrence:
    step_id: str
    occurrence: int
    due_at: datetime


def anchor_time(incident: Incident, anchor: Anchor, step: Step | None = None) -> datetime | None:
    """When `anchor` happened for this incident (None while it has not); `step` carries
    the instant of an `Anchor.FIXED` step."""
    match anchor:
        case Anchor.DECLARED:
            return incident.declared_at
        case Anchor.ACKNOWLEDGED:
            return incident.acknowledged_at
        case Anchor.SEVERITY_CHANGED:
            return incident.severity_changed_at
        case Anchor.LAST_CUSTOMER_UPDATE:
            # A reopened incident's cadence starts again from its reopening.
            last = incident.last_customer_update_at or incident.declared_at
            return max(last, incident.reopened_at) if incident.reopened_at else last
        case Anchor.MANUAL_CUSTOMER_UPDATE:
            return incident.last_manual_update_at
        case Anchor.RESOLVED:
            return incident.resolved_at
        case Anchor.CHANGED:
            return incident.changed_at
        case Anchor.REOPENED:
            return incident.reopened_at
        case Anchor.RCA_COMPLETED:
            return incident.closed_at if incident.rca_link else None
        case Anchor.CANCELLED:
            return incident.cancelled_at
        case Anchor.FIXED:
            return step.at if step is not None else None


def has_happened(incident: Incident, event: StopEvent) -> bool:
    match event:
        case StopEvent.ACKNOWLEDGED:
            return incident.acknowledged_at is not None
        case StopEvent.COMMANDER_ASSIGNED:
            return incident.commander is not None
        case StopEvent.CUSTOMER_UPDATE_POSTED:
            return incident.last_customer_update_at is not None
        case StopEvent.RESOLVED:
            return incident.resolved_at is not None
        case StopEvent.RCA_COMPLETED:
            return incident.rca_link is not None


def condition_holds(incident: Incident, condition: Condition) -> bool:
    match condition:
        case Condition.UNACKNOWLEDGED:
            return incident.acknowledged_at is None
        case Condition.UNRESOLVED:
            return incident.resolved_at is None
        case Condition.NO_COMMANDER:
            return incident.commander is None


def stopped_by(incident: Incident, step: Step) -> StopEvent | None:
    """The `until` event that has ended this step, if any."""
    return next((event for event in step.until if has_happened(incident, event)), None)


def failed_condition(incident: Incident, step: Step) -> Condition | None:
    return next((c for c in step.when if not condition_holds(incident, c)), None)


def next_occurrence(
    step: Step, incident: Incident, history: StepHistory = NO_HISTORY
) -> PlannedOccurrence | None:
    """The one occurrence of `step` that should be pending now, or None."""
    if incident.status is Status.CANCELLED and step.anchor is not Anchor.CANCELLED:
        return None
    if stopped_by(incident, step) is not None:
        return None
    if step.categories and incident.category not in step.categories:
        return None
    anchor = anchor_time(incident, step.anchor, step)
    if anchor is None:
        return None
    if step.max_occurrences is not None and history.fired >= step.max_occurrences:
        return None
    due = anchor + step.offset
    if step.every is None:
        # Once for each instant the anchor takes: an occurrence due at or after it (every
        # due time is at or after its anchor) has already fired for this one.
        if history.last_due is not None and history.last_due >= anchor:
            return None
    elif history.last_due is not None and history.last_due >= due:
        due = history.last_due + step.every
        fired_at = history.last_fired_at or history.last_due
        if due <= fired_at:
            due += step.every * ((fired_at - due) // step.every + 1)
    due = max(due, incident.declared_at + step.window_start)
    if step.window_end is not None and due >= incident.declared_at + step.window_end:
        return None
    return PlannedOccurrence(step_id=step.id, occurrence=history.fired + 1, due_at=due)


def comes_back(step: Step) -> bool:
    """Whether `step` can be due again, with the incident's facts unchanged, once an
    occurrence of it has run: a repeat, or a step run each time a person posts.

    Any other step is due again only when its anchor takes a new instant, which is a
    change of the incident's facts; until then it has no next occurrence (`next_occurrence`),
    and no other step's plan reads its history. So when one of its occurrences is done and
    the incident's facts have not changed, the plan is the one before, less that occurrence.
    """
    return step.repeats or step.per_anchor


def plan(
    incident: Incident,
    playbook: Playbook,
    history: Mapping[str, StepHistory],
    extra: Sequence[Step] = (),
) -> list[PlannedOccurrence]:
    """Every occurrence that should be pending for this incident, in due order; steps due
    at the same instant keep the playbook's order (so a page listed first goes first).
    `extra`: steps of this incident's own beyond its playbook (its follow-up items)."""
    planned = [
        occurrence
        for step in (*playbook.steps, *extra)
        if (occurrence := next_occurrence(step, incident, history.get(step.id, NO_HISTORY)))
    ]
    return sorted(planned, key=lambda o: o.due_at)  # stable: playbook order breaks ties


def tracked_deadline(incident: Incident, playbook: Playbook, name: str) -> datetime | None:
    """The instant of a tracked deadline (e.g. `rca_due`), once its anchor has happened."""
    for step in playbook.steps:
        if step.tracks == name:
            anchor = anchor_time(incident, step.anchor, step)
            return anchor + step.offset if anchor is not None else None
    return None


def next_customer_update_due(
    incident: Incident, playbook: Playbook, history: Mapping[str, StepHistory]
) -> datetime | None:
    """When customers will next hear from us automatically, if nobody posts before then."""
    holding = {s.id for s in playbook.steps if s.action is Action.CUSTOMER_HOLDING_UPDATE}
    dues = [p.due_at for p in plan(incident, playbook, history) if p.step_id in holding]
    return min(dues, default=None)


def step_deadline(incident: Incident, step: Step) -> datetime | None:
    """For a deadline's reminder or missed step: the deadline itself."""
    if step.deadline is None:
        return None
    anchor = anchor_time(incident, step.anchor, step)
    return anchor + step.deadline if anchor is not None else None


def backoff(attempt: int, *, base: timedelta, cap: timedelta) -> timedelta:
    """Delay before retry number `attempt` (1-based): doubling from `base`, capped."""
    delay: timedelta = base * (2 ** max(0, attempt - 1))
    return min(cap, delay)


class Stop(StrEnum):
    """Why a claimed occurrence does not run after all: its fire-time checks."""

    NOT_IN_PLAYBOOK = "not_in_playbook"  # the severity changed to one without it
    INCIDENT_CANCELLED = "incident_cancelled"
    STOPPED = "stopped"  # one of its own `until` events happened
    NO_LONGER_PLANNED = "no_longer_planned"
    MOVED = "moved"  # its anchor moved: planned again at its new due time
    CONDITION_FAILED = "condition_failed"
    STALE = "stale"  # too late to be worth sending (`stale_after`)

    @property
    def state(self) -> OccurrenceState:
        """The state it ends in: skipped when it was still planned, else cancelled."""
        if self in (Stop.CONDITION_FAILED, Stop.STALE):
            return OccurrenceState.SKIPPED
        return OccurrenceState.CANCELLED

    @property
    def timeline_kind(self) -> str:
        if self is Stop.MOVED:
            return "step_moved"
        return "step_skipped" if self.state is OccurrenceState.SKIPPED else "step_cancelled"


@dataclass(frozen=True)
class Verdict:
    """A claimed occurrence that does not run: why, in words for the timeline."""

    stop: Stop
    reason: str


def verdict(
    step: Step | None,
    incident: Incident,
    occurrence: Occurrence,
    history: Mapping[str, StepHistory],
    now: datetime,
) -> Verdict | None:
    """Should this claimed occurrence still run at `now`? None if so.

    The facts may have changed since it was planned, or while it was claimed: the
    incident resolved, its severity changed, a customer update moved the anchor.
    `step`: the occurrence's step as the incident's playbook has it now (None: gone).
    """
    if step is None:
        return Verdict(Stop.NOT_IN_PLAYBOOK, f"not in the {incident.severity.value} playbook")
    if incident.status is Status.CANCELLED and step.anchor is not Anchor.CANCELLED:
        return Verdict(Stop.INCIDENT_CANCELLED, "incident cancelled")
    if (event := stopped_by(incident, step)) is not None:
        return Verdict(Stop.STOPPED, f"stopped: {event.value}")
    planned = next_occurrence(step, incident, history.get(step.id, NO_HISTORY))
    if planned is None or planned.occurrence != occurrence.occurrence:
        return Verdict(Stop.NO_LONGER_PLANNED, "no longer planned")
    if planned.due_at > now:
        # Cancelled here and planned again, at its new due time, by the re-plan that follows.
        return Verdict(Stop.MOVED, f"moved to {planned.due_at.isoformat()}")
    if (condition := failed_condition(incident, step)) is not None:
        return Verdict(Stop.CONDITION_FAILED, f"condition {condition.value} no longer holds")
    if step.stale_after is not None and now - occurrence.due_at > step.stale_after:
        return Verdict(
            Stop.STALE,
            f"stale: due {occurrence.due_at.isoformat()}, more than "
            f"{format_duration(step.stale_after)} ago",
        )
    return None
