"""Playbook parsing and checking: every error names the file, the step and the field."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from incident.adapters.files.playbook_files import load_playbooks
from incident.config import PROJECT_ROOT
from incident.domain.errors import InvalidPlaybook
from incident.domain.incident import Severity
from incident.domain.playbook import (
    Action,
    PlaybookSet,
    duration_words,
    format_duration,
    parse_duration,
    parse_playbook,
)

PLAYBOOKS = PROJECT_ROOT / "playbooks"


def load_real_playbooks() -> PlaybookSet:
    return load_playbooks(
        PLAYBOOKS, comms_dir=PROJECT_ROOT / "comms", runbooks_dir=PROJECT_ROOT / "runbooks"
    )


def test_the_shipped_playbooks_are_valid_and_cover_every_severity() -> None:
    playbooks = load_real_playbooks()
    assert set(playbooks.playbooks) == set(Severity)


def test_p1_encodes_the_source_timing_rules() -> None:
    p1 = load_real_playbooks().for_severity(Severity.P1)
    by_id = {s.id: s for s in p1.steps}
    assert by_id["page-oncall-tier3"].offset == timedelta(0)
    assert by_id["open-war-room"].offset == timedelta(0)
    assert by_id["status-page-investigating"].offset == timedelta(0)
    assert by_id["customer-notification"].offset <= timedelta(minutes=15)
    assert by_id["customer-update"].every == timedelta(minutes=30)
    assert by_id["notify-executives"].offset <= timedelta(hours=1)
    assert by_id["escalate-vp-clevel"].offset == timedelta(hours=4)
    assert p1.deadline("rca_due") == timedelta(hours=48)
    reminders = [s for s in p1.steps if s.id.startswith("rca.reminder")]
    assert reminders and all(s.offset < timedelta(hours=48) for s in reminders)
    assert by_id["rca.missed"].action is Action.RCA_OVERDUE


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("4h", timedelta(hours=4)),
        ("48h", timedelta(hours=48)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2d", timedelta(days=2)),
        ("0m", timedelta(0)),
        ("90s", timedelta(seconds=90)),
    ],
)
def test_durations_round_trip(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected
    assert parse_duration(format_duration(expected)) == expected


@pytest.mark.parametrize(
    ("span", "words"),
    [
        (timedelta(days=30), "30 days"),
        (timedelta(days=1), "1 day"),
        (timedelta(hours=72), "3 days"),
        (timedelta(hours=6), "6 hours"),
        (timedelta(minutes=90), "90 minutes"),
        (timedelta(seconds=30), "less than a minute"),
    ],
)
def test_a_span_in_words_is_in_its_largest_whole_unit(span: timedelta, words: str) -> None:
    assert duration_words(span) == words


@pytest.mark.parametrize("text", ["", "30", "4 hours", "-5m", "h", "1.5h"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def minimal(**step: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": "page",
        "action": "page",
        "target": "tier3",
        "anchor": "declared",
        "offset": "0m",
    }
    base.update(step)
    return {"severity": "P1", "name": "x", "steps": [base]}


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"offset": "soon"}, "offset", "not a duration"),
        ({"anchor": "lunch"}, "anchor", "Input should be"),
        ({"action": "teleport"}, "action", "Input should be"),
        ({"target": None}, None, "needs a target"),
        ({"every": "5m"}, None, "nothing may repeat forever"),
        ({"colour": "red"}, "colour", "unknown field"),
        ({"id": "Bad Id"}, "id", "should match pattern"),
        ({"anchor": "fixed"}, None, "anchor fixed is for follow-up action items"),
        ({"id": "follow-up-3"}, None, "kept for the reminders of follow-up action items"),
        (
            {"action": "follow_up_reminder", "target": None, "template": "t"},
            None,
            "planned for each follow-up action item by the service",
        ),
        ({"action": "open_war_room", "target": None}, None, "needs a template"),
    ],
)
def test_step_errors_name_file_step_and_field(
    change: dict[str, object], field: str | None, message: str
) -> None:
    with pytest.raises(InvalidPlaybook) as caught:
        parse_playbook(minimal(**change), source="playbooks/p1.yaml")
    problem = caught.value.problems[0]
    assert problem.file == "playbooks/p1.yaml"
    assert problem.step in ("page", "Bad Id", "follow-up-3")
    assert problem.field == field
    assert message in problem.message
    assert "playbooks/p1.yaml" in str(caught.value)


def test_duplicate_step_ids_are_refused() -> None:
    document = minimal()
    document["steps"] = [*document["steps"], *document["steps"]]  # type: ignore[misc]
    with pytest.raises(InvalidPlaybook, match="share this id"):
        parse_playbook(document, source="p.yaml")


def test_deadline_steps_expand_into_reminders_and_missed_action() -> None:
    document = {
        "severity": "P1",
        "name": "x",
        "steps": [
            {
                "id": "rca",
                "anchor": "resolved",
                "deadline": "48h",
                "tracks": "rca_due",
                "until": "rca_completed",
                "remind": {
                    "before": ["24h", "1h"],
                    "action": "rca_reminder",
                    "target": "a",
                    "template": "t",
                },
                "on_missed": {
                    "action": "rca_overdue",
                    "target": "b",
                    "template": "t",
                    "every": "24h",
                },
            }
        ],
    }
    playbook = parse_playbook(document, source="p.yaml")
    assert [(s.id, s.offset) for s in playbook.steps] == [
        ("rca.reminder-24h", timedelta(hours=24)),
        ("rca.reminder-1h", timedelta(hours=47)),
        ("rca.missed", timedelta(hours=48)),
    ]
    assert playbook.deadline("rca_due") == timedelta(hours=48)


def test_a_reminder_outside_the_deadline_is_refused() -> None:
    document = {
        "severity": "P1",
        "name": "x",
        "steps": [
            {
                "id": "rca",
                "anchor": "resolved",
                "deadline": "4h",
                "until": "rca_completed",
                "remind": {
                    "before": ["5h"],
                    "action": "rca_reminder",
                    "target": "a",
                    "template": "t",
                },
                "on_missed": {"action": "rca_overdue", "target": "b", "template": "t"},
            }
        ],
    }
    with pytest.raises(InvalidPlaybook, match="falls outside"):
        parse_playbook(document, source="p.yaml")


def broken_copy(tmp_path: Path, edit: str, replacement: str) -> Path:
    copy = tmp_path / "playbooks"
    shutil.copytree(PLAYBOOKS, copy)
    p1 = copy / "p1.yaml"
    text = p1.read_text()
    assert edit in text
    p1.write_text(text.replace(edit, replacement, 1))
    return copy


def test_a_broken_copy_names_file_line_step_and_field(tmp_path: Path) -> None:
    copy = broken_copy(tmp_path, "    offset: 4h\n", "    offset: four hours\n")
    with pytest.raises(InvalidPlaybook) as caught:
        load_playbooks(copy)
    [problem] = caught.value.problems
    assert problem.file.endswith("p1.yaml")
    assert problem.step == "escalate-vp-clevel"
    assert problem.field == "offset"
    assert problem.line is not None
    assert yaml.safe_load(
        copy.joinpath("p1.yaml").read_text().splitlines()[problem.line - 1].strip().lstrip("- ")
    ) == {"id": "escalate-vp-clevel"}


def test_unknown_audience_template_and_runbook_are_reported(tmp_path: Path) -> None:
    copy = broken_copy(
        tmp_path,
        "    target: vp-clevel\n    template: escalation_notice\n",
        "    target: vp-clevle\n    template: escalation_notise\n",
    )
    with pytest.raises(InvalidPlaybook) as caught:
        load_playbooks(
            copy, comms_dir=PROJECT_ROOT / "comms", runbooks_dir=PROJECT_ROOT / "runbooks"
        )
    fields = {(p.step, p.field) for p in caught.value.problems}
    assert fields == {("escalate-vp-clevel", "target"), ("escalate-vp-clevel", "template")}


def test_a_missing_severity_is_reported(tmp_path: Path) -> None:
    copy = tmp_path / "playbooks"
    shutil.copytree(PLAYBOOKS, copy)
    (copy / "p4.yaml").unlink()
    with pytest.raises(InvalidPlaybook, match="no playbook for P4"):
        load_playbooks(copy)


def test_invalid_yaml_is_reported_with_its_line(tmp_path: Path) -> None:
    copy = broken_copy(tmp_path, "name: Critical incident\n", "name: [unclosed\n")
    with pytest.raises(InvalidPlaybook) as caught:
        load_playbooks(copy)
    assert "not valid YAML" in str(caught.value)
    assert caught.value.problems[0].line is not None
