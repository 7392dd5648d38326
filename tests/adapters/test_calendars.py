"""Calendars as configured: public holidays from the `holidays` package, configured closed
days, 24/7; every mistake named with where it is."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import yaml

from incident.adapters.files.calendars import load_calendar, load_calendars
from incident.domain.errors import InvalidValue

BERLIN = ZoneInfo("Europe/Berlin")

CONFIG = yaml.safe_load(
    """
support-eu:
  time_zone: Europe/Berlin
  hours: {mon-fri: "09:00-17:00"}
  holidays: {country: DE, subdivision: BE}
  closed: [2026-12-24, 2026-12-31]
engineering: 24/7
"""
)


def test_public_holidays_and_configured_days_are_closed() -> None:
    calendars = load_calendars(CONFIG)
    eu = calendars["support-eu"]
    # Wednesday 23 Dec 16:00 + 16 business hours: the 24th (configured), the 25th and 26th
    # (public holidays) and the weekend are closed: Monday 28th 8 h, Tuesday 29th 7 h.
    start = datetime(2026, 12, 23, 16, 0, tzinfo=BERLIN)
    assert eu.add(start, timedelta(hours=16)) == datetime(2026, 12, 29, 16, 0, tzinfo=BERLIN)
    # Berlin's own holiday: International Women's Day (8 March 2027 is a Monday).
    assert not eu.is_open(datetime(2027, 3, 8, 10, 0, tzinfo=BERLIN))
    assert eu.is_open(datetime(2027, 3, 9, 10, 0, tzinfo=BERLIN))
    engineering = calendars["engineering"]
    assert engineering.is_always_open
    assert engineering.add(start, timedelta(hours=16)) == start + timedelta(hours=16)


@pytest.mark.parametrize(
    ("spec", "where", "says"),
    [
        ("9-5", "calendars.desk", "give '24/7' or"),
        ({"hours": {"mon": "09:00-17:00"}}, "calendars.desk.time_zone", "name the time zone"),
        (
            {"time_zone": "Mars/Olympus", "hours": {"mon": "09:00-17:00"}},
            "calendars.desk.time_zone",
            "not a time zone",
        ),
        (
            {"time_zone": "UTC", "hours": {"mo-fr": "09:00-17:00"}},
            "calendars.desk.hours.mo-fr",
            "days are",
        ),
        (
            {"time_zone": "UTC", "hours": {"fri-mon": "09:00-17:00"}},
            "calendars.desk.hours.fri-mon",
            "backwards",
        ),
        (
            {"time_zone": "UTC", "hours": {"mon-fri": "09:00-17:00", "fri": "10:00-12:00"}},
            "calendars.desk.hours.fri",
            "fri is given twice",
        ),
        ({"time_zone": "UTC", "hours": {"mon": "9-17"}}, "calendars.desk.hours.mon", "time of day"),
        (
            {"time_zone": "UTC", "hours": {"mon": "09:00-17:00"}, "holidays": {"country": "XX"}},
            "calendars.desk.holidays",
            "no public holidays known for country 'XX'",
        ),
        (
            {"time_zone": "UTC", "hours": {"mon": "09:00-17:00"}, "closed": ["24.12.2026"]},
            "calendars.desk.closed",
            "not a date",
        ),
        (
            {"time_zone": "UTC", "hours": {"mon": "09:00-17:00"}, "colour": "red"},
            "calendars.desk",
            "unknown keys colour",
        ),
    ],
)
def test_mistakes_are_named_where_they_are(spec: object, where: str, says: str) -> None:
    with pytest.raises(InvalidValue, match=says) as refused:
        load_calendar("desk", spec)
    assert refused.value.field == where
