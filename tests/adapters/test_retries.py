"""The vendors' one retry loop (`VendorRetry`) on its own: scripted attempts, a FakeClock, so
every wait is virtual and the clock shows how long the loop waited."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from datetime import timedelta

import pytest

from incident.adapters.vendors.retries import Failure, RetryBudget, VendorRetry, Wording
from incident.clock import FakeClock
from incident.services.ports import VendorRejected, VendorUnavailable

LOG = "tests.adapters.retries"
BUDGET = RetryBudget(attempts=3, backoff=1.0, backoff_cap=16.0, retry_after_cap=30.0, jitter=False)


class Hiccup(Exception):
    """The vendor failing as a scripted attempt says."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.reason)
        self.failure = failure


def failure_of(error: Exception) -> Failure | None:
    return error.failure if isinstance(error, Hiccup) else None


def retrying(
    clock: FakeClock, budget: RetryBudget = BUDGET, wording: Wording | None = None
) -> VendorRetry:
    return VendorRetry(
        vendor="Acme",
        budget=budget,
        clock=clock,
        failure_of=failure_of,
        log=logging.getLogger(LOG),
        retry_action="acme_retry",
        gave_up_action="acme_gave_up",
        wording=wording,
    )


class Script:
    """An attempt that fails as told, one failure per call, then answers "done"."""

    def __init__(self, *failures: Failure | Exception) -> None:
        self.failures = list(failures)
        self.calls = 0

    def __call__(self) -> Awaitable[str]:
        self.calls += 1
        return self._once()

    async def _once(self) -> str:
        if not self.failures:
            return "done"
        failure = self.failures.pop(0)
        raise failure if isinstance(failure, Exception) else Hiccup(failure)


def logged(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    fields = ("action", "incident_id", "operation", "attempt", "reason", "wait_seconds")
    return [
        {name: getattr(r, name) for name in fields if hasattr(r, name)}
        for r in caplog.records
        if r.name == LOG
    ]


def waited(clock: FakeClock, since: float) -> float:
    return clock.monotonic() - since


SERVER_ERROR = Failure("server error (HTTP 503)", retryable=True)


async def test_a_refusal_is_not_retried(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOG)
    attempt = Script(Failure("refused (HTTP 400)", retryable=False))
    start = clock.monotonic()
    with pytest.raises(VendorRejected) as raised:
        await retrying(clock).run("post to #inc-12", attempt, incident_id=12)
    assert str(raised.value) == "Acme: post to #inc-12: refused (HTTP 400)"
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert attempt.calls == 1
    assert waited(clock, start) == 0
    assert logged(caplog) == []


async def test_a_transient_failure_is_retried_up_to_the_budget(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOG)
    attempt = Script(*[SERVER_ERROR] * 5)
    start = clock.monotonic()
    with pytest.raises(VendorUnavailable) as raised:
        await retrying(clock).run("trigger", attempt, incident_id=7)
    assert str(raised.value) == "Acme: trigger failed after 3 attempt(s): server error (HTTP 503)"
    assert raised.value.retry_after is None
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert attempt.calls == BUDGET.attempts
    assert waited(clock, start) == pytest.approx(1.0 + 2.0)  # doubling, no wait after the last
    common = {"incident_id": 7, "operation": "trigger", "reason": "server error (HTTP 503)"}
    assert logged(caplog) == [
        {"action": "acme_retry", **common, "attempt": 1, "wait_seconds": 1.0},
        {"action": "acme_retry", **common, "attempt": 2, "wait_seconds": 2.0},
        {"action": "acme_gave_up", **common, "attempt": 3},
    ]


async def test_a_transient_failure_within_the_budget_then_success(clock: FakeClock) -> None:
    attempt = Script(SERVER_ERROR, SERVER_ERROR)
    start = clock.monotonic()
    assert await retrying(clock).run("trigger", attempt, incident_id=None) == "done"
    assert attempt.calls == 3
    assert waited(clock, start) == pytest.approx(1.0 + 2.0)


async def test_the_backoff_doubles_up_to_its_cap_with_jitter(clock: FakeClock) -> None:
    budget = RetryBudget(attempts=6, backoff=1.0, backoff_cap=4.0)
    start = clock.monotonic()
    with pytest.raises(VendorUnavailable):
        await retrying(clock, budget).run("trigger", Script(*[SERVER_ERROR] * 6), incident_id=1)
    # Each wait is half to all of 1, 2, 4, 4, 4 s.
    assert (1 + 2 + 4 + 4 + 4) / 2 <= waited(clock, start) <= 1 + 2 + 4 + 4 + 4
    for attempt, ceiling in enumerate([1.0, 2.0, 4.0, 4.0, 4.0], start=1):
        assert ceiling / 2 <= (budget.wait(attempt, None) or 0) <= ceiling


async def test_a_retry_after_within_the_cap_is_waited_exactly(clock: FakeClock) -> None:
    limited = Failure("rate limited (HTTP 429)", retryable=True, retry_after=7.0, wait=7.0)
    start = clock.monotonic()
    assert await retrying(clock).run("trigger", Script(limited), incident_id=1) == "done"
    assert waited(clock, start) == pytest.approx(7.0)


async def test_a_retry_after_beyond_the_cap_gives_up_at_once(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOG)
    limited = Failure("rate limited (HTTP 429)", retryable=True, retry_after=120.0, wait=120.0)
    attempt = Script(limited, limited)
    start = clock.monotonic()
    with pytest.raises(VendorUnavailable) as raised:
        await retrying(clock).run("trigger", attempt, incident_id=1)
    assert raised.value.retry_after == 120.0  # for the scheduler's durable retry
    assert str(raised.value) == (
        "Acme: trigger failed after 1 attempt(s): rate limited (HTTP 429); Acme asks to wait 120 s"
    )
    assert attempt.calls == 1
    assert waited(clock, start) == 0
    assert [entry["action"] for entry in logged(caplog)] == ["acme_gave_up"]


async def test_a_failure_already_held_back_is_retried_without_a_wait(clock: FakeClock) -> None:
    # The adapter's own request queue holds the next request back: the loop adds nothing,
    # but still counts the attempt and hands the vendor's Retry-After on at the end.
    held = Failure("rate limited (HTTP 429)", retryable=True, retry_after=5.0, wait=0.0)
    attempt = Script(held, held, held)
    start = clock.monotonic()
    with pytest.raises(VendorUnavailable) as raised:
        await retrying(clock).run("publishing", attempt, incident_id=1)
    assert raised.value.retry_after == 5.0
    assert attempt.calls == BUDGET.attempts
    assert waited(clock, start) == 0


async def test_an_exception_that_is_not_the_vendors_propagates_untouched(
    clock: FakeClock,
) -> None:
    bug = KeyError("ours")
    attempt = Script(bug)
    with pytest.raises(KeyError) as raised:
        await retrying(clock).run("trigger", attempt, incident_id=1)
    assert raised.value is bug
    assert attempt.calls == 1


async def test_a_vendor_keeps_its_own_words(clock: FakeClock) -> None:
    class Terse(Wording):
        def refused(self, operation: str, failure: Failure) -> str:
            return f"{operation} refused: {failure.reason}"

        def gave_up(
            self, vendor: str, operation: str, tries: int, failure: Failure, *, at_once: bool
        ) -> str:
            return f"{operation} gave up after {tries}: {failure.reason}"

    loop = retrying(clock, wording=Terse())
    with pytest.raises(VendorRejected, match=r"^Acme: publishing INC-3 refused: HTTP 422$"):
        await loop.run(
            "publishing INC-3", Script(Failure("HTTP 422", retryable=False)), incident_id=3
        )
    with pytest.raises(VendorUnavailable, match=r"^Acme: publishing INC-3 gave up after 3: x$"):
        await loop.run(
            "publishing INC-3", Script(*[Failure("x", retryable=True)] * 3), incident_id=3
        )


def test_a_budget_without_attempts_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RetryBudget(attempts=0)


async def test_waits_go_through_the_injected_clock(clock: FakeClock) -> None:
    # Virtual time only: a 16 s backoff takes no real time and shows on the clock.
    before = clock.now()
    budget = RetryBudget(attempts=2, backoff=16.0, jitter=False)
    answer = await retrying(clock, budget).run("trigger", Script(SERVER_ERROR), incident_id=1)
    assert answer == "done"
    assert clock.now() - before == timedelta(seconds=16)
