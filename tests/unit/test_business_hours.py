"""Business-hours calendars: the interval arithmetic against a brute-force walk, minute by
minute, over random calendars (time zones with daylight saving, holidays), and the cases
people reason about (a Friday evening ticket, a holiday, a DST night)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from incident.domain.business_hours import (
    MINUTES_PER_DAY,
    BusinessCalendar,
    Hours,
    parse_hours,
)
from incident.domain.errors import InvalidValue

MINUTE = timedelta(minutes=1)
BERLIN = ZoneInfo("Europe/Berlin")
NINE_TO_FIVE = dict.fromkeys(range(5), ((9 * 60, 17 * 60),))


def berlin(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


def office(closed: frozenset[date] = frozenset()) -> BusinessCalendar:
    return BusinessCalendar("support-eu", BERLIN, NINE_TO_FIVE, closed)


# --- the cases people reason about ---------------------------------------------------------


def test_a_friday_evening_clock_runs_from_monday_morning() -> None:
    # A Pro tier-1 case opened Friday 17:50 with 9-17 hours: 4 business hours end Monday 13:00.
    assert office().add(berlin(2026, 12, 4, 17, 50), timedelta(hours=4)) == berlin(
        2026, 12, 7, 13, 0
    )


def test_a_clock_started_in_the_hours_carries_over_to_the_next_working_day() -> None:
    assert office().add(berlin(2026, 12, 3, 15, 0), timedelta(hours=4)) == berlin(
        2026, 12, 4, 11, 0
    )
    # Ending exactly at closing time is that day's closing, not the next opening.
    assert office().add(berlin(2026, 12, 3, 15, 0), timedelta(hours=2)) == berlin(
        2026, 12, 3, 17, 0
    )


def test_holidays_are_skipped() -> None:
    christmas = frozenset({date(2026, 12, 24), date(2026, 12, 25)})
    # Wednesday 23 Dec 16:00 + 2 business days (16 hours): 1 h on the 23rd, the 24th and
    # 25th closed, the weekend, 8 h on Monday 28th, 7 h on Tuesday 29th: 16:00.
    assert office(christmas).add(berlin(2026, 12, 23, 16, 0), timedelta(hours=16)) == berlin(
        2026, 12, 29, 16, 0
    )


def test_open_time_between_counts_only_the_hours() -> None:
    calendar = office()
    friday, monday = berlin(2026, 12, 4, 16, 0), berlin(2026, 12, 7, 10, 30)
    assert calendar.open_time_between(friday, monday) == timedelta(hours=2, minutes=30)
    assert calendar.open_time_between(monday, friday) == timedelta(0)


def test_a_daylight_saving_night_inside_the_hours_counts_the_hours_that_pass() -> None:
    # A 24/7 desk in Berlin on the night clocks go back (25 Oct 2026): 24 local hours of
    # that Sunday are 25 real hours.
    desk = BusinessCalendar("night-desk", BERLIN, dict.fromkeys(range(7), ((0, 1440),)))
    sunday = berlin(2026, 10, 25, 0, 0)
    assert desk.open_time_between(sunday, berlin(2026, 10, 26, 0, 0)) == timedelta(hours=25)
    assert desk.add(sunday, timedelta(hours=25)) == berlin(2026, 10, 26, 0, 0)


def test_next_opening() -> None:
    calendar = office()
    assert calendar.next_opening(berlin(2026, 12, 5, 12, 0)) == berlin(2026, 12, 7, 9, 0)
    inside = berlin(2026, 12, 7, 10, 0)
    assert calendar.next_opening(inside) == inside
    assert calendar.is_open(inside) and not calendar.is_open(berlin(2026, 12, 7, 17, 0))


def test_always_open_is_plain_time() -> None:
    clock = BusinessCalendar.always_open()
    start = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)
    assert clock.add(start, timedelta(hours=5)) == start + timedelta(hours=5)
    assert clock.open_time_between(start, start + timedelta(days=2)) == timedelta(days=2)


@pytest.mark.parametrize(
    ("text", "hours"),
    [
        ("09:00-17:00", ((540, 1020),)),
        ("08:00-12:00, 13:00-17:30", ((480, 720), (780, 1050))),
        ("00:00-24:00", ((0, 1440),)),
    ],
)
def test_hours_are_read_from_text(text: str, hours: tuple[Hours, ...]) -> None:
    assert parse_hours(text) == hours


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("9-17", "not a time of day"),
        ("09:00", "is not HH:MM-HH:MM"),
        ("17:00-09:00", "not a span within a day"),
        ("09:00-12:00, 11:00-17:00", "overlaps"),
        ("09:00-24:30", "00:00-24:00"),
        ("09:75-12:00", "00:00-24:00"),
    ],
)
def test_bad_hours_are_refused_saying_why(text: str, says: str) -> None:
    with pytest.raises(InvalidValue, match=says):
        BusinessCalendar("desk", BERLIN, {0: parse_hours(text)})


def test_a_calendar_never_open_is_refused() -> None:
    with pytest.raises(InvalidValue, match="open on no day"):
        BusinessCalendar("closed", BERLIN, {})
    every_day = frozenset(date(2026, 1, 1) + timedelta(days=n) for n in range(4000))
    shut = BusinessCalendar("shut", BERLIN, NINE_TO_FIVE, every_day)
    with pytest.raises(InvalidValue, match="no open time"):
        shut.add(berlin(2026, 1, 1, 9, 0), timedelta(hours=1))


# --- the arithmetic against a walk, minute by minute ---------------------------------------

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Sydney"]
# Around both daylight-saving changes of the northern and southern hemispheres in 2026.
WINDOWS = [date(2026, 3, 24), date(2026, 4, 1), date(2026, 10, 21), date(2026, 10, 31)]


@st.composite
def day_hours(draw: st.DrawFn) -> tuple[Hours, ...]:
    """Up to two spans of a day, on quarter hours."""
    bounds = sorted(draw(st.sets(st.integers(0, 96), min_size=2, max_size=4)))
    if len(bounds) % 2:
        bounds = bounds[:-1]
    return tuple((bounds[i] * 15, bounds[i + 1] * 15) for i in range(0, len(bounds), 2))


@st.composite
def calendars(draw: st.DrawFn) -> BusinessCalendar:
    zone = ZoneInfo(draw(st.sampled_from(ZONES)))
    weekly = {d: draw(day_hours()) for d in range(7) if draw(st.booleans())}
    weekly[draw(st.integers(0, 6))] = ((9 * 60, 17 * 60),)  # open at least one day a week
    window = draw(st.sampled_from(WINDOWS))
    closed = frozenset(
        window + timedelta(days=n) for n in draw(st.sets(st.integers(0, 14), max_size=5))
    )
    return BusinessCalendar("random", zone, weekly, closed)


@st.composite
def instants(draw: st.DrawFn) -> datetime:
    """A minute in one of the windows, in UTC or in a zone of its own (the same instant)."""
    window = draw(st.sampled_from(WINDOWS))
    minute = draw(st.integers(0, 10 * MINUTES_PER_DAY))
    at = datetime.combine(window, datetime.min.time(), tzinfo=UTC) + minute * MINUTE
    return at.astimezone(ZoneInfo(draw(st.sampled_from(ZONES))))


def _walker(calendar: BusinessCalendar) -> Callable[[datetime], bool]:
    """Whether the minute starting at an instant is open, the slow way: the local day's
    spans (and the day before's), each minute looked at on its own."""
    days: dict[date, list[tuple[datetime, datetime]]] = {}

    def is_open(at: datetime) -> bool:
        local_day = at.astimezone(calendar.zone).date()
        for day in (local_day - timedelta(days=1), local_day):
            if day not in days:
                days[day] = calendar.open_intervals(day)
            if any(start <= at < end for start, end in days[day]):
                return True
        return False

    return is_open


@settings(max_examples=150, deadline=None)
@given(calendars(), instants(), st.integers(0, 900))
def test_adding_business_time_matches_a_minute_walk(
    calendar: BusinessCalendar, start: datetime, minutes: int
) -> None:
    is_open = _walker(calendar)
    at, left = start.astimezone(UTC), minutes
    while left > 0:
        if is_open(at):
            left -= 1
        at += MINUTE
    assert calendar.add(start, minutes * MINUTE) == at
    assert calendar.open_time_between(start, at) == minutes * MINUTE


@settings(max_examples=150, deadline=None)
@given(calendars(), instants(), st.integers(0, 4 * MINUTES_PER_DAY))
def test_open_time_between_matches_a_minute_count(
    calendar: BusinessCalendar, start: datetime, minutes: int
) -> None:
    is_open = _walker(calendar)
    utc = start.astimezone(UTC)
    counted = sum(1 for n in range(minutes) if is_open(utc + n * MINUTE))
    end = (utc + minutes * MINUTE).astimezone(start.tzinfo)
    assert calendar.open_time_between(start, end) == counted * MINUTE
    assert calendar.is_open(start) == is_open(start)


@settings(max_examples=150, deadline=None)
@given(calendars(), instants(), st.integers(0, 6 * MINUTES_PER_DAY))
def test_a_clock_of_the_open_time_up_to_an_instant_runs_out_by_then(
    calendar: BusinessCalendar, start: datetime, minutes: int
) -> None:
    """Often lands on a closing time: the clock ends at it, not at the next opening."""
    end = start + minutes * MINUTE
    spent = calendar.open_time_between(start, end)
    ends = calendar.add(start, spent)
    assert ends <= end
    assert calendar.open_time_between(start, ends) == spent
