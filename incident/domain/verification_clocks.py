"""A verification's steps and when each is due: pure, like a case's clocks (the same facts
always give the same plan, and each step fires once for each instant its anchor takes).

    ask                   the customer is asked for proof (at once)
    reminder.<n>          reminded, at each of the policy's reminder spans, while no proof
                          suffices yet
    final-notice          the final notice: no proof, no access, and why
    close-unverified      closed as unverified
    board                 the management channel's one message brought up to date, after
                          each change (the same message edited: `Board.show`)
    instruct              approved: the account system is told what to change (a task in the
                          outbox, and the signed webhook when one is configured)
    outcome               decided or closed: the customer is told
    purge-files           the proof files' bytes forgotten, the retention after the end

The clock spans count from the opening in the calendar given (the first support tier's).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from incident.domain.business_hours import BusinessCalendar
from incident.domain.planning import NO_HISTORY, PlannedOccurrence, StepHistory, Stop, Verdict
from incident.domain.verification import Verification, VerificationStatus
from incident.domain.verification_policy import VerificationPolicy

ASK, FINAL, CLOSE, BOARD = "ask", "final-notice", "close-unverified", "board"
INSTRUCT, OUTCOME, PURGE = "instruct", "outcome", "purge-files"
REMINDER = "reminder."
BOARD_TARGET = "management"


@dataclass(frozen=True)
class VerificationStep:
    """One step of a verification (a `StepShape`: what is stored with each occurrence)."""

    id: str
    description: str
    action: str
    target: str | None

    @property
    def repeats(self) -> bool:
        return self.id == BOARD


_FIXED = {
    ASK: VerificationStep(ASK, "The customer is asked for proof of ownership.", "tell", "customer"),
    FINAL: VerificationStep(
        FINAL, "The final notice: without proof, access cannot be restored.", "tell", "customer"
    ),
    CLOSE: VerificationStep(CLOSE, "No proof came: closed as unverified.", "close", None),
    BOARD: VerificationStep(
        BOARD, "The management channel's message is brought up to date.", "board", BOARD_TARGET
    ),
    INSTRUCT: VerificationStep(
        INSTRUCT, "The account system is told what to change.", "instruct", "account system"
    ),
    OUTCOME: VerificationStep(OUTCOME, "The customer is told the outcome.", "tell", "customer"),
    PURGE: VerificationStep(PURGE, "The proof files are purged.", "purge", None),
}


def step(step_id: str) -> VerificationStep | None:
    """A verification step by id (`reminder.2` included)."""
    if step_id.startswith(REMINDER) and step_id[len(REMINDER) :].isdecimal():
        n = int(step_id[len(REMINDER) :])
        return VerificationStep(
            step_id, f"Reminder {n}: the customer is asked again.", "tell", "customer"
        )
    return _FIXED.get(step_id)


def plan(
    v: Verification,
    policy: VerificationPolicy,
    calendar: BusinessCalendar,
    history: Mapping[str, StepHistory],
) -> list[PlannedOccurrence]:
    """Every occurrence that should be pending for this verification, in due order."""
    wanted: list[tuple[str, datetime | None]] = [(ASK, v.opened_at)]
    if v.status is VerificationStatus.AWAITING_PROOF:
        clocks = policy.clocks
        wanted += [
            (f"{REMINDER}{n}", span.end(v.opened_at, calendar))
            for n, span in enumerate(clocks.reminders, start=1)
        ]
        wanted.append((FINAL, clocks.final_notice_after.end(v.opened_at, calendar)))
        wanted.append((CLOSE, clocks.close_after.end(v.opened_at, calendar)))
    if v.status.final:
        ended = v.decision.at if v.decision is not None else v.closed_at
        wanted.append((OUTCOME, ended))
        if v.status is VerificationStatus.APPROVED:
            wanted.append((INSTRUCT, ended))
        wanted.append((PURGE, v.files_purge_at(policy.proof)))
    planned = [
        PlannedOccurrence(step_id, 1, due)
        for step_id, due in wanted
        if due is not None and not history.get(step_id, NO_HISTORY).fired
    ]
    board = _board(v, history.get(BOARD, NO_HISTORY))
    planned += [board] if board is not None else []
    return sorted(planned, key=lambda p: p.due_at)


def _board(v: Verification, history: StepHistory) -> PlannedOccurrence | None:
    """Once for each change: the latest one since the message was last brought up to date."""
    if v.changed_at is None:
        return None
    if history.last_due is not None and history.last_due >= v.changed_at:
        return None
    return PlannedOccurrence(BOARD, history.fired + 1, v.changed_at)


def verdict(
    step_id: str,
    occurrence_number: int,
    v: Verification,
    *,
    policy: VerificationPolicy,
    calendar: BusinessCalendar,
    history: Mapping[str, StepHistory],
    now: datetime,
) -> Verdict | None:
    """Should a claimed occurrence still run at `now`? None if so."""
    if step(step_id) is None:
        return Verdict(Stop.NOT_IN_PLAYBOOK, "not a step of verifications")
    planned = next((p for p in plan(v, policy, calendar, history) if p.step_id == step_id), None)
    if planned is None or planned.occurrence != occurrence_number:
        return Verdict(Stop.NO_LONGER_PLANNED, f"no longer planned ({v.status.value})")
    if planned.due_at > now:
        return Verdict(Stop.MOVED, f"moved to {planned.due_at.isoformat()}")
    return None
