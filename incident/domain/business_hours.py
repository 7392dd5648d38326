"""Business-hours calendars and durations in business time: the clocks of support levels.

A level answers within "4 business hours" or "2 business days" of its own calendar: a time
zone, weekly opening hours and the days it is closed (public holidays and configured
dates). `BusinessCalendar.add` says when such a clock runs out; `open_time_between` how much
of it has run. Both walk the calendar's open intervals, a day at a time, in UTC: the local
wall-clock hours of each day are turned into instants once, so a daylight-saving change
inside the hours counts the hours that really pass.

Pure: the closed days are any container of dates (the `holidays` package's calendars are
one, filled in as years are asked for; see `incident.adapters.files.calendars`).
"""

from __future__ import annotations

from collections.abc import Container, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

from incident.domain.errors import InvalidValue

MINUTES_PER_DAY = 24 * 60
# How many days' open intervals a calendar keeps worked out (about 27 years' worth).
_DAYS_KEPT = 10_000
# How far ahead a clock may look for open time before the calendar is taken to be shut for
# good (a configuration mistake): ten years.
LONGEST_SEARCH_DAYS = 3660

# An interval of a day, in minutes from local midnight: [start, end), 0 <= start < end <= 1440.
Hours = tuple[int, int]


def _no_days() -> frozenset[date]:
    return frozenset()


@dataclass(frozen=True)
class BusinessCalendar:
    """When a level works. `weekly[0]` is Monday's hours ... `weekly[6]` Sunday's."""

    name: str
    zone: ZoneInfo
    weekly: Mapping[int, Sequence[Hours]]
    closed: Container[date] = field(default_factory=_no_days)

    def __post_init__(self) -> None:
        for weekday, hours in self.weekly.items():
            if weekday not in range(7):
                raise InvalidValue("hours", f"{self.name}: weekday {weekday} is not 0-6")
            _check_hours(self.name, hours)
        if not any(self.weekly.get(weekday) for weekday in range(7)):
            raise InvalidValue("hours", f"{self.name}: open on no day of the week")

    @classmethod
    def always_open(cls, name: str = "24/7") -> BusinessCalendar:
        return cls(name, ZoneInfo("UTC"), dict.fromkeys(range(7), ((0, MINUTES_PER_DAY),)))

    @cached_property
    def is_always_open(self) -> bool:
        every_minute = [(0, MINUTES_PER_DAY)]
        return all(list(self.weekly.get(d, ())) == every_minute for d in range(7)) and (
            isinstance(self.closed, frozenset) and not self.closed
        )

    @cached_property
    def day_length(self) -> timedelta:
        """One business day of this calendar: the open time of its longest weekday (8 h for
        09:00-17:00), so "2 business days" from Monday 10:00 ends Wednesday 10:00."""
        return timedelta(
            minutes=max(sum(end - start for start, end in self.weekly.get(d, ())) for d in range(7))
        )

    def open_intervals(self, day: date) -> list[tuple[datetime, datetime]]:
        """The open intervals of a local `day`, as UTC instants; none when it is closed.

        Worked out once per day and kept: every clock of every case walks the same few
        days, and turning local hours into instants is most of what a clock costs."""
        return list(self._intervals_of(day))

    def _intervals_of(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        known = self._days.get(day)
        if known is None:
            if len(self._days) >= _DAYS_KEPT:
                self._days.clear()
            known = self._days[day] = self._work_out(day)
        return known

    def _work_out(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        if day in self.closed:
            return ()
        return tuple(
            (self._instant(day, start), self._instant(day, end))
            for start, end in self.weekly.get(day.weekday(), ())
        )

    @cached_property
    def _days(self) -> dict[date, tuple[tuple[datetime, datetime], ...]]:
        return {}

    def is_open(self, at: datetime) -> bool:
        # A day's spans end by its next midnight: only the local day of `at` can hold it.
        local_day = at.astimezone(self.zone).date()
        return any(start <= at < end for start, end in self._intervals_of(local_day))

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The instant at which `duration` of open time has passed since `start` (`start`
        itself for no time at all). A clock started while closed begins at the opening."""
        if duration <= timedelta(0):
            return start
        # In UTC: an aware datetime plus a timedelta moves its wall clock, not time.
        start = start.astimezone(UTC)
        if self.is_always_open:
            return start + duration
        remaining = duration
        for opens, closes in self._intervals_from(start):
            length = closes - opens
            if remaining <= length:
                return opens + remaining
            remaining -= length
        raise self._never_open(start)

    def open_time_between(self, start: datetime, end: datetime) -> timedelta:
        """How much of [start, end) is open time (none when end is not after start)."""
        if end <= start:
            return timedelta(0)
        # In UTC: two datetimes of one time zone subtract as wall clocks, not time.
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        if self.is_always_open:
            return end - start
        total = timedelta(0)
        for opens, closes in self._intervals_from(start):
            if opens >= end:
                break
            total += min(closes, end) - opens
        return total

    def next_opening(self, at: datetime) -> datetime:
        """`at` if open then, else when the calendar next opens."""
        for opens, _ in self._intervals_from(at.astimezone(UTC)):
            return opens
        raise self._never_open(at)

    def _intervals_from(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The open intervals after `start`, in order, the first one cut to begin at it."""
        day = start.astimezone(self.zone).date()
        for _ in range(LONGEST_SEARCH_DAYS):
            for opens, closes in self._intervals_of(day):
                if closes > start:
                    yield max(opens, start), closes
            day += timedelta(days=1)

    def _instant(self, day: date, minute: int) -> datetime:
        """`minute` minutes past local midnight of `day` (1440: the next midnight), in UTC."""
        local = datetime.combine(day, time()) + timedelta(minutes=minute)
        return local.replace(tzinfo=self.zone).astimezone(UTC)

    def _never_open(self, start: datetime) -> InvalidValue:
        return InvalidValue(
            "calendar",
            f"{self.name} has no open time in the {LONGEST_SEARCH_DAYS} days after "
            f"{start.isoformat()}; check its hours and closed days",
        )


def _check_hours(name: str, hours: Sequence[Hours]) -> None:
    previous_end = -1
    for start, end in hours:
        if not 0 <= start < end <= MINUTES_PER_DAY:
            raise InvalidValue(
                "hours", f"{name}: {_clock(start)}-{_clock(end)} is not a span within a day"
            )
        if start < previous_end:
            raise InvalidValue("hours", f"{name}: {_clock(start)} overlaps the hours before")
        previous_end = end


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def parse_hours(text: str, *, where: str = "hours") -> tuple[Hours, ...]:
    """`09:00-17:00` or `08:00-12:00, 13:00-17:00` (`24:00` ends a day) as minute spans."""
    spans = []
    for part in text.split(","):
        bounds = part.strip().split("-")
        if len(bounds) != 2:
            raise InvalidValue(where, f"{part.strip()!r} is not HH:MM-HH:MM")
        spans.append((_minute(bounds[0], where), _minute(bounds[1], where)))
    return tuple(spans)


def _minute(text: str, where: str) -> int:
    hour, _, minute = text.strip().partition(":")
    if not (hour.isdigit() and minute.isdigit() and len(minute) == 2):
        raise InvalidValue(where, f"{text.strip()!r} is not a time of day (HH:MM)")
    value = int(hour) * 60 + int(minute)
    if int(minute) > 59 or value > MINUTES_PER_DAY:
        raise InvalidValue(where, f"{text.strip()!r} is not a time of day (00:00-24:00)")
    return value
