"""The one place that reads wall-clock time; everything else receives `now` as an argument."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """A source of the current instant (timezone-aware UTC)."""

    def now(self) -> datetime: ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards, for measuring durations."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class FakeClock:
    """A clock that only moves when told to: virtual time for tests and `incident simulate`."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        if self._now.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware start instant")

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._now.timestamp()

    def set(self, instant: datetime) -> None:
        if instant < self._now:
            raise ValueError(f"time cannot go backwards: {instant} < {self._now}")
        self._now = instant

    def advance(self, delta: timedelta) -> datetime:
        self.set(self._now + delta)
        return self._now

    async def sleep(self, seconds: float) -> None:
        # Sleeping in virtual time moves the clock and yields once to the loop.
        self.advance(timedelta(seconds=seconds))
        await asyncio.sleep(0)
