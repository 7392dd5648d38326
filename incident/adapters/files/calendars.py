"""Business-hours calendars as configured (YAML data), with public holidays from the
maintained `holidays` package.

    support-eu:
      time_zone: Europe/Berlin
      hours: {mon-fri: "09:00-17:00", sat: "10:00-14:00"}
      holidays: {country: DE, subdivision: BE}     # optional
      closed: [2026-12-24, 2026-12-31]              # optional, more closed days
    engineering-on-call: 24/7

Every mistake is an `InvalidValue` naming where it is (`calendars.support-eu.hours`) and
what would be right.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from incident.domain.business_hours import BusinessCalendar, Hours, parse_hours
from incident.domain.errors import InvalidValue

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ALWAYS_OPEN = "24/7"


@dataclass(frozen=True)
class ClosedDays:
    """The days a calendar is closed: a country's (and region's) public holidays, which the
    `holidays` package works out for whichever year is asked, and configured dates."""

    public: holidays.HolidayBase | None
    extra: frozenset[date]

    def __contains__(self, day: object) -> bool:
        if not isinstance(day, date):
            return False
        return day in self.extra or (self.public is not None and day in self.public)


def load_calendar(name: str, spec: object) -> BusinessCalendar:
    where = f"calendars.{name}"
    if spec == ALWAYS_OPEN:
        return BusinessCalendar.always_open(name)
    if not isinstance(spec, Mapping):
        raise InvalidValue(where, f"give {ALWAYS_OPEN!r} or time_zone, hours, holidays, closed")
    unknown = sorted(set(spec) - {"time_zone", "hours", "holidays", "closed"})
    if unknown:
        raise InvalidValue(where, f"unknown keys {', '.join(map(str, unknown))}")
    return BusinessCalendar(
        name,
        _zone(spec.get("time_zone"), f"{where}.time_zone"),
        _weekly(spec.get("hours"), f"{where}.hours"),
        ClosedDays(
            _public_holidays(spec.get("holidays"), f"{where}.holidays"),
            _dates(spec.get("closed", []), f"{where}.closed"),
        ),
    )


def load_calendars(specs: object) -> dict[str, BusinessCalendar]:
    if not isinstance(specs, Mapping):
        raise InvalidValue("calendars", "a mapping of calendar names to calendars")
    return {str(name): load_calendar(str(name), spec) for name, spec in specs.items()}


def _zone(value: object, where: str) -> ZoneInfo:
    if not isinstance(value, str) or not value:
        raise InvalidValue(where, "name the time zone, e.g. Europe/Berlin")
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidValue(where, f"{value!r} is not a time zone (e.g. Europe/Berlin)") from None


def _weekly(value: object, where: str) -> dict[int, tuple[Hours, ...]]:
    if not isinstance(value, Mapping) or not value:
        raise InvalidValue(where, 'give days and hours, e.g. {mon-fri: "09:00-17:00"}')
    weekly: dict[int, tuple[Hours, ...]] = {}
    for days, hours in value.items():
        if not isinstance(hours, str):
            raise InvalidValue(f"{where}.{days}", 'hours as text, e.g. "09:00-17:00"')
        for weekday in _days(str(days), f"{where}.{days}"):
            if weekday in weekly:
                raise InvalidValue(f"{where}.{days}", f"{WEEKDAYS[weekday]} is given twice")
            weekly[weekday] = parse_hours(hours, where=f"{where}.{days}")
    return weekly


def _days(text: str, where: str) -> list[int]:
    """`mon`, `mon-fri` or `sat,sun` as weekday numbers (Monday 0)."""
    found: list[int] = []
    for part in text.lower().replace(" ", "").split(","):
        first, _, last = part.partition("-")
        if first not in WEEKDAYS or (last and last not in WEEKDAYS):
            raise InvalidValue(where, f"{part!r}: days are {', '.join(WEEKDAYS)} or a range")
        start, end = WEEKDAYS.index(first), WEEKDAYS.index(last or first)
        if end < start:
            raise InvalidValue(where, f"{part!r} runs backwards")
        found += range(start, end + 1)
    return found


def _public_holidays(value: object, where: str) -> holidays.HolidayBase | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not isinstance(value.get("country"), str):
        raise InvalidValue(
            where, "give the country (ISO code), e.g. {country: DE, subdivision: BE}"
        )
    subdivision = value.get("subdivision")
    try:
        return holidays.country_holidays(
            value["country"], subdiv=str(subdivision) if subdivision is not None else None
        )
    except NotImplementedError:
        raise InvalidValue(
            where, f"no public holidays known for country {value['country']!r} (an ISO code)"
        ) from None
    except ValueError as error:  # an unknown subdivision of a known country
        raise InvalidValue(where, str(error).split("\n")[0]) from None


def _dates(value: object, where: str) -> frozenset[date]:
    if not isinstance(value, list):
        raise InvalidValue(where, "a list of dates, e.g. [2026-12-24]")
    days = set()
    for item in value:
        if isinstance(item, date):
            days.add(item)
            continue
        try:
            days.add(date.fromisoformat(str(item)))
        except ValueError:
            raise InvalidValue(where, f"{item!r} is not a date (YYYY-MM-DD)") from None
    return frozenset(days)
