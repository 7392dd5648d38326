"""What the CLI prints of server data: never a control a terminal would obey; what `show`
and the change summaries say of an incident, its steps and its follow-ups."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from incident.cli.api_output import (
    block,
    changed,
    document,
    follow_up,
    follow_ups,
    safe_line,
    safe_message,
    show,
    timeline_entries,
)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain text, ünïcödé, 日本語", "plain text, ünïcödé, 日本語"),
        ("\x1b[2J\x1b[31mred", "\\x1b[2J\\x1b[31mred"),  # ESC: clear screen, colour
        ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),  # OSC: window title, BEL
        ("\x9b31m \x85 \x9d", "\\x9b31m \\x85 \\x9d"),  # C1: CSI, NEL, OSC
        ("a\u202eevil\u202cb", "a\\u202eevil\\u202cb"),  # bidi override
        ("\u2066x\u2069 \u200f \u061c", "\\u2066x\\u2069 \\u200f \\u061c"),  # isolates, marks
        ("one\ntwo\r\u2028", "one\\x0atwo\\x0d\\u2028"),  # one line stays one line
        ("tab\there \x00 \x7f", "tab here \\x00 \\x7f"),
    ],
)
def test_safe_line_escapes_what_a_terminal_would_obey(text: str, shown: str) -> None:
    assert safe_line(text) == shown


def test_a_block_keeps_its_lines_indented_and_safe() -> None:
    assert block("one\r\ntwo\rthree\n\x1b[1mfour", indent="   ") == (
        "one\n   two\n   three\n   \\x1b[1mfour"
    )
    assert safe_message("refused: \x1b[31m\nnext") == "refused: \\x1b[31m\nnext"


def test_a_timeline_entry_is_one_block_under_its_text_column() -> None:
    entry = {
        "at": "2030-01-01T10:00:00.5Z",
        "kind": "internal_note",
        "actor": "rob",
        "text": "first\nsecond",
        "public": False,
    }
    [lines] = timeline_entries([entry])
    first, second = lines.split("\n")
    assert first.startswith("  2030-01-01 10:00:00Z  internal_note ")
    assert first.endswith(" rob          first")
    assert second == " " * first.index("first") + "second"
    [public] = timeline_entries([{**entry, "public": True, "text": "x"}])
    assert public.split()[2:5] == ["internal_note", "public", "rob"]


# --- show and the change summaries ---------------------------------------------------------


def _iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat()


def _incident(**fields: Any) -> dict[str, Any]:
    incident: dict[str, Any] = {
        "id": 42,
        "ref": "INC-42",
        "title": "Checkout down",
        "severity": "P1",
        "status": "investigating",
        "category": "general",
        "service": "",
        "impact": "",
        "declared_at": _iso(-timedelta(hours=3)),
        "acknowledged_at": None,
        "resolved_at": None,
        "rca_due_at": None,
        "rca_link": None,
        "closed_at": None,
        "cancelled_at": None,
        "cancellation": None,
        "cancel_note": None,
        "merged_into": None,
        "reopened_at": None,
        "commander": None,
        "comms_lead": None,
        "war_room": None,
        "public_title": None,
        "components": {},
    }
    return {**incident, **fields}


def _step(step_id: str, **fields: Any) -> dict[str, Any]:
    step: dict[str, Any] = {
        "step_id": step_id,
        "action": "status_page",
        "due_at": _iso(timedelta(minutes=10)),
        "runs_at": _iso(timedelta(minutes=10)),
        "state": "pending",
        "attempts": 0,
        "last_error": None,
        "needs_approval": False,
        "approved_by": None,
    }
    return {**step, **fields}


def _detail(incident: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"incident": incident, "upcoming": [], "timeline": [], "follow_ups": [], **fields}


def _line(text: str, label: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(f"  {label} "))


def test_a_closed_incident_shows_its_rca_link_not_the_deadline() -> None:
    resolved = _incident(
        status="resolved",
        resolved_at=_iso(-timedelta(hours=1)),
        rca_due_at=_iso(timedelta(hours=47)),
    )
    assert "(in 47h)" in _line(show(_detail(resolved)), "RCA due")
    closed = {
        **resolved,
        "status": "closed",
        "closed_at": _iso(-timedelta(minutes=5)),
        "rca_link": "https://wiki.example.com/rca/42",
    }
    text = show(_detail(closed))
    assert "RCA due" not in text
    assert _line(text, "RCA").split() == ["RCA", "https://wiki.example.com/rca/42"]
    assert _line(text, "closed").endswith("(5m ago)")


def test_a_cancelled_incident_says_when_and_why() -> None:
    false_alarm = _incident(
        status="cancelled",
        cancelled_at=_iso(-timedelta(hours=1)),
        cancellation="false_alarm",
        cancel_note="the probe was \x1b[31mwrong",
    )
    line = _line(show(_detail(false_alarm)), "cancelled")
    assert re.fullmatch(
        r"  cancelled     \S+ \S+Z \(1h ago\) as a false alarm: the probe was \\x1b\[31mwrong",
        line,
    )
    declined = {**false_alarm, "cancellation": "declined", "cancel_note": None}
    assert _line(show(_detail(declined)), "cancelled").endswith(") as declined (not an incident)")
    merged = {
        **false_alarm,
        "cancellation": "duplicate",
        "cancel_note": "duplicate of INC-7",
        "merged_into": 7,
    }
    assert _line(show(_detail(merged)), "cancelled").endswith(") merged into INC-7")


def test_a_reopened_incident_says_when() -> None:
    reopened = _incident(reopened_at=_iso(-timedelta(minutes=20)), category="security")
    text = show(_detail(reopened))
    assert _line(text, "reopened").endswith("(20m ago)")
    assert _line(text, "category").split() == ["category", "security"]
    assert "category" not in show(_detail(_incident()))  # general goes without saying


def test_upcoming_steps_say_what_they_wait_for() -> None:
    started = _iso(-timedelta(minutes=3))
    steps = [
        _step("status-page-investigating", state="running", runs_at=started, due_at=started),
        _step("customer-notification", state="held", due_at=_iso(-timedelta(minutes=2))),
        _step("customer-update", action="customer_holding_update", needs_approval=True),
        _step("status-page-update", approved_by="cleo"),
        _step("page-oncall", action="page", attempts=1, last_error="timeout"),
    ]
    lines = changed({"incident": _incident(), "upcoming": steps}, "approved x").splitlines()
    assert lines[:2] == ["approved x: INC-42 P1 investigating: Checkout down", "next steps:"]
    running, held, needs, approved, failing = lines[2:]
    assert running.split()[:3] == ["sending", "now", "status-page-investigating"]
    assert "ago" not in running  # its runs_at is when sending began, not a due time
    assert held.startswith("  held (due 2m ago) ")
    assert held.endswith(
        "status_page  waiting for approval: incident approve 42 customer-notification"
    )
    assert needs.endswith("customer_holding_update (needs approval)")
    assert approved.endswith("status_page (approved by cleo)")
    assert failing.endswith("page (attempt 2: timeout)")
    assert "(needs approval)" not in held
    shown = show(_detail(_incident(), upcoming=steps))
    assert held in shown.split("upcoming steps:")[1].split("timeline:")[0]


def test_follow_ups_in_show_and_their_own_listing() -> None:
    open_item = {
        "ref": "FU-3",
        "incident_id": 42,
        "title": "Add a canary",
        "owner": "@alice",
        "due_at": _iso(timedelta(days=7)),
        "done_at": None,
        "done_by": None,
    }
    done_item = {
        **open_item,
        "ref": "FU-4",
        "title": "Rotate \u202ekeys",
        "done_at": "2030-01-02T09:00:00Z",
        "done_by": "rob",
    }
    text = show(_detail(_incident(), follow_ups=[open_item, done_item]))
    section = text.split("follow-ups:\n")[1].split("\ntimeline:")[0].splitlines()
    assert section[0].startswith("  FU-3    due ")
    assert section[0].endswith(" Add a canary (owner @alice)") and "(in 168h)" in section[0]
    assert section[1].startswith("  FU-4    done 2030-01-02 09:00:00Z by rob ")
    assert section[1].endswith(" Rotate \\u202ekeys (owner @alice)")
    assert "follow-ups:" not in show(_detail(_incident()))
    assert follow_ups({"follow_ups": [open_item]}) == section[0]
    assert follow_ups({"follow_ups": []}) == "no follow-ups"
    assert follow_up(done_item, "done").splitlines() == ["done: INC-42", section[1]]


def test_a_document_keeps_its_lines_and_tabs_and_escapes_the_rest() -> None:
    markdown = "# INC-1 \x1b[2Jtitle\r\n\n| a\t| b |\nover\rwrite \u202eevil\x9b\n\n"
    assert document(markdown) == (
        "# INC-1 \\x1b[2Jtitle\n\n| a\t| b |\nover\\x0dwrite \\u202eevil\\x9b"
    )
