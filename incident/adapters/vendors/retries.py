"""How a vendor adapter retries one call before handing the failure to the scheduler:
the budget, the backoff with jitter, and reading a vendor's Retry-After."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class RetryBudget:
    """How hard one call tries before it hands the failure to the scheduler's durable retry.

    Worst case for one call with the defaults and a 10 s client timeout: 4 attempts of 10 s
    plus 3 waits of at most 30 s, about 130 s. The scheduler renews its lease while a step
    runs (every third of INCIDENT_SCHEDULER_LEASE), so a long call does not lose it.
    """

    attempts: int = 4  # per call, the first one included
    backoff: float = 1.0  # first wait after a 5xx, a network failure or a malformed answer
    backoff_cap: float = 16.0  # the wait doubles up to this (with jitter: half to all of it)
    retry_after_cap: float = 30.0  # the longest Retry-After waited for; longer gives up now

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryBudget.attempts must be at least 1")

    def wait(self, attempt: int, asked: float | None) -> float | None:
        """Seconds to wait before the next attempt; None: the vendor asks for longer than
        one call may wait, so give up now and let the scheduler come back later."""
        if asked is not None:
            return asked if asked <= self.retry_after_cap else None
        ceiling = min(self.backoff * 2.0 ** (attempt - 1), self.backoff_cap)
        return ceiling / 2 + random.random() * ceiling / 2  # jitter: replicas spread out


def retry_after_seconds(header: str | None, now: datetime) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date); None if absent or unreadable."""
    if header is None:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        return None
    return max(0.0, (moment - now).total_seconds())
