"""How long a failed step waits before it is tried again, and when it is failed for good."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from incident.domain.planning import backoff
from incident.domain.records import Occurrence, OccurrenceState
from incident.services.engine import Failure, SubjectKind
from incident.services.ports import Transaction

# However long a vendor asks us to wait, we come back within the hour.
LONGEST_RETRY_AFTER = 3600.0


@dataclass(frozen=True)
class RetryPolicy:
    """A failed effect is tried again after 30 s, 1, 2, 4, 8 min, then every 10 min: ten
    attempts cover about an hour of vendor outage before the step is marked failed."""

    max_attempts: int = 10
    base: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(minutes=10)

    def failure(
        self, occurrence: Occurrence, message: str, now: datetime, *, retry_after: object = None
    ) -> Failure:
        """What comes after this attempt failed. `retry_after`: the vendor said when to
        come back (seconds): not before then."""
        if occurrence.attempts >= self.max_attempts:
            return Failure(message, occurrence.attempts, self.max_attempts, retry_at=None)
        wait = backoff(occurrence.attempts, base=self.base, cap=self.cap)
        if isinstance(retry_after, int | float) and retry_after > 0:
            wait = max(wait, timedelta(seconds=min(float(retry_after), LONGEST_RETRY_AFTER)))
        return Failure(message, occurrence.attempts, self.max_attempts, retry_at=now + wait)


def record_failure(
    tx: Transaction, kind: SubjectKind, occurrence: Occurrence, failure: Failure, now: datetime
) -> object:
    """In the unit of work that records a failed attempt: the occurrence waits for its
    retry, or is failed for good; then its kind records it (see `SubjectKind`)."""
    if failure.retry_at is None:
        tx.finish_occurrence(
            occurrence.id,
            state=OccurrenceState.FAILED,
            now=now,
            outcome="failed",
            error=failure.message,
        )
    else:
        tx.retry_occurrence(occurrence.id, not_before=failure.retry_at, error=failure.message)
    return kind.record_failure(tx, occurrence, failure, now)
