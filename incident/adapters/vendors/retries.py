"""How a vendor adapter retries one call before handing the failure to the scheduler:
the budget, the backoff with jitter, reading a vendor's Retry-After, and the loop itself.

Every vendor call runs through a `VendorRetry`. The adapter only says what a failed attempt
means (`Failure`: refused, or worth another try, and how long the vendor asked us to wait);
the loop waits through the Clock, logs each retry and the give-up under the vendor's own
`action` names, and ends in `VendorRejected` or `VendorUnavailable`, in the words that
vendor's errors have always used (`Wording`).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from incident.clock import Clock
from incident.services.ports import VendorRejected, VendorUnavailable

T = TypeVar("T")


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
    # False: always all of the doubled wait. Statuspage's requests already queue one at a
    # time per API key (RequestSpacing), and its adapter has always waited the full backoff.
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryBudget.attempts must be at least 1")

    def wait(self, attempt: int, asked: float | None) -> float | None:
        """Seconds to wait before the next attempt; None: the vendor asks for longer than
        one call may wait, so give up now and let the scheduler come back later."""
        if asked is not None:
            return asked if asked <= self.retry_after_cap else None
        ceiling = min(self.backoff * 2.0 ** (attempt - 1), self.backoff_cap)
        if not self.jitter:
            return ceiling
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


@dataclass(frozen=True)
class Failure:
    """What one failed attempt means to the loop; `reason` is safe to show and to log."""

    reason: str
    retryable: bool  # False: the vendor refused; the same request would be refused again
    # Seconds the vendor asked us to wait (a 429's Retry-After), if it said: handed on with
    # VendorUnavailable, so that the scheduler's durable retry does not come back sooner.
    retry_after: float | None = None
    # Seconds to wait before the next attempt, when the vendor decides (its Retry-After; 0
    # when the adapter's own request queue already holds it back that long); longer than
    # the budget's `retry_after_cap` gives up at once. None: the budget's backoff.
    wait: float | None = None


class Wording:
    """How a vendor's errors put a refusal and a give-up into words. People read them on the
    incident's timeline, so each adapter keeps the words it has always used: these are
    PagerDuty's and Slack's; another vendor's adapter overrides them."""

    def refused(self, operation: str, failure: Failure) -> str:
        return f"{operation}: {failure.reason}"

    def gave_up(
        self, vendor: str, operation: str, tries: int, failure: Failure, *, at_once: bool
    ) -> str:
        """`at_once`: before the budget ran out, because the vendor asked for a longer wait."""
        text = f"{operation} failed after {tries} attempt(s): {failure.reason}"
        if at_once:
            text += f"; {vendor} asks to wait {failure.wait:.0f} s"
        return text


class VendorRetry:
    """One vendor's bounded retry: runs an attempt until it succeeds or the budget runs out.

    A refusal is not retried: `VendorRejected`. Another failure waits, through the Clock, for
    the vendor's Retry-After or the budget's backoff, then tries again; after the last
    attempt, or at once when the vendor asks for longer than the budget waits,
    `VendorUnavailable` carries the last reason (and the Retry-After) to the scheduler's
    durable retry. Neither chains the vendor's exception (`from None`): a client's error may
    hold the request, credentials included.
    """

    def __init__(
        self,
        *,
        vendor: str,
        budget: RetryBudget,
        clock: Clock,
        failure_of: Callable[[Exception], Failure | None],
        log: logging.Logger,
        retry_action: str,
        gave_up_action: str,
        wording: Wording | None = None,
    ) -> None:
        """`vendor`: the name errors and logs give it; `failure_of`: what an exception raised
        by an attempt means, None for one that is not the vendor's (it propagates as it is);
        `retry_action`, `gave_up_action`: the log lines' stable `action` names."""
        self._vendor = vendor
        self._budget = budget
        self._clock = clock
        self._failure_of = failure_of
        self._log = log
        self._retry_action = retry_action
        self._gave_up_action = gave_up_action
        self._wording = wording or Wording()

    async def run(
        self, operation: str, attempt: Callable[[], Awaitable[T]], *, incident_id: int | None
    ) -> T:
        """`attempt`'s result, once one succeeds. `operation` names the call in errors and
        logs; `incident_id` (None: no incident's call) goes into the logs."""
        tries = 0
        while True:
            tries += 1
            try:
                return await attempt()
            except Exception as error:
                failure = self._failure_of(error)
                if failure is None:
                    raise  # not the vendor failing (a bug of ours): retrying will not help
                wait = self._wait_or_give_up(operation, tries, failure, incident_id)
            if wait > 0:  # 0: the adapter's own queue already holds the next request back
                await self._clock.sleep(wait)

    def _wait_or_give_up(
        self, operation: str, tries: int, failure: Failure, incident_id: int | None
    ) -> float:
        """Seconds to wait before attempt `tries + 1`; or the error the call ends with."""
        if not failure.retryable:
            raise VendorRejected(self._vendor, self._wording.refused(operation, failure)) from None
        wait = self._budget.wait(tries, failure.wait)
        if wait is None or tries >= self._budget.attempts:
            self._log.warning(
                "%s call gave up",
                self._vendor,
                extra={
                    "action": self._gave_up_action,
                    "incident_id": incident_id,
                    "operation": operation,
                    "attempt": tries,
                    "reason": failure.reason,
                },
            )
            reason = self._wording.gave_up(
                self._vendor, operation, tries, failure, at_once=wait is None
            )
            raise VendorUnavailable(self._vendor, reason, retry_after=failure.retry_after) from None
        self._log.warning(
            "%s call failed; retrying",
            self._vendor,
            extra={
                "action": self._retry_action,
                "incident_id": incident_id,
                "operation": operation,
                "attempt": tries,
                "reason": failure.reason,
                "wait_seconds": round(wait, 3),
            },
        )
        return wait
