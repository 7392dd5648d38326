"""The CLI's argument types: what they accept, and what they say about the rest."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import pytest

from incident.cli import api_parsers as p
from incident.cli.commands import build_parser


def refusal(parse: object, text: str) -> str:
    assert callable(parse)
    with pytest.raises(argparse.ArgumentTypeError) as error:
        parse(text)
    return str(error.value)


def test_severities_in_any_case_are_sent_as_the_api_spells_them() -> None:
    assert [p.severity(t) for t in ("p1", " P2 ", "p4")] == ["P1", "P2", "P4"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2030-05-01T22:00:00Z", datetime(2030, 5, 1, 22, tzinfo=UTC)),
        ("2030-05-01T22:00+02:00", datetime(2030, 5, 1, 20, tzinfo=UTC)),
    ],
)
def test_times_need_a_zone(text: str, expected: datetime) -> None:
    assert p.instant(text) == expected


def test_relative_times_count_from_now() -> None:
    before = datetime.now(UTC)
    moment = p.instant("+2h")
    assert before + timedelta(hours=2) <= moment <= datetime.now(UTC) + timedelta(hours=2)
    assert p.instant("now") >= before


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("2030-05-01T22:00", "has no time zone; add one, e.g. 2030-05-01T22:00Z"),
        ("tomorrow", "is not a time"),
        ("+soon", "is not a time"),
        ("", "is not a time"),
    ],
)
def test_bad_times_say_what_to_write(text: str, says: str) -> None:
    assert says in refusal(p.instant, text)


def test_component_statuses() -> None:
    assert p.component_status("api=Major-Outage") == ("api", "major_outage")
    assert "not COMPONENT=STATUS" in refusal(p.component_status, "api:down")
    assert "not COMPONENT=STATUS" in refusal(p.component_status, "API=operational")
    assert "is not a component status" in refusal(p.component_status, "api=on_fire")


def test_snoozes_are_whole_minutes_up_to_a_week() -> None:
    assert p.snooze_minutes("1h30m") == 90
    assert p.minutes("15") == 15
    assert p.snooze_minutes("7d") == 7 * 24 * 60
    for text in ("90s", "0m", "8d"):
        assert "whole minutes" in refusal(p.snooze_minutes, text)
    assert "not a number of minutes" in refusal(p.minutes, "-5")


def test_ids() -> None:
    assert p.incident_id("INC-42") == p.incident_id("42") == 42
    for text in ("INC-x", "0", "²", "1" * 20):
        assert "not an incident id" in refusal(p.incident_id, text)
    assert p.step_id("escalate-vp-clevel") == "escalate-vp-clevel"
    for text in ("..", "a b", "a/b", ""):
        assert "not a step id" in refusal(p.step_id, text)


def test_follow_up_refs_and_due_dates() -> None:
    assert p.follow_up_id("FU-3") == p.follow_up_id("fu-3") == p.follow_up_id("3") == 3
    for text in ("FU-", "FU-x", "0", "INC-3", "1" * 20):
        assert "is not a follow-up (e.g. FU-3 or 3)" in refusal(p.follow_up_id, text)
    before = datetime.now(UTC)
    assert before + timedelta(days=7) <= p.instant("+7d") <= datetime.now(UTC) + timedelta(days=7)
    assert p.instant("2026-12-10T12:00Z") == datetime(2026, 12, 10, 12, tzinfo=UTC)


def test_the_new_commands_parse_their_arguments() -> None:
    parse = build_parser().parse_args
    cancel = parse(["cancel", "INC-4", "False-Alarm", "probe flapped"])
    assert (cancel.id, cancel.reason, cancel.note) == (4, "false_alarm", "probe flapped")
    assert parse(["cancel", "4", "declined"]).note == ""
    assert parse(["merge", "8", "--into", "INC-7"]).into == 7
    assert parse(["edit", "8", "--category", "Security"]).category == "security"
    assert parse(["reopen", "8", "back", "--status", "Identified"]).status == "identified"
    done = parse(["follow-up", "done", "8", "FU-3", "--json"])
    assert (done.follow_up_command, done.id, done.follow_up, done.json) == ("done", 8, 3, True)
    export = parse(["export", "8", "--output", "t.md", "--json"])
    assert (str(export.output), export.json) == ("t.md", True)
    assert not hasattr(parse(["postmortem", "8"]), "json")  # a Markdown document only
