"""Every API command of the CLI as a real process against a real `incident serve`: what it
prints, what it changes (read back with `show --json`), its mistakes, `--json`, the
Markdown documents (printed, or written with --output), a reader that leaves early
(`| head`), and server data that tries to drive the terminal."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.test_cli_api import COMMANDER, RESPONDER, VIEWER, running_server
from tests.integration.test_cli_api import cli as run_cli

# Each test runs a dozen or more CLI processes, each starting Python and importing the
# client (about a second each, several on a busy machine): more than the suite's 60 s
# per-test guard against hangs allows, with no hang.
pytestmark = pytest.mark.timeout(300)

# What a terminal would obey: ESC, CSI (C1), bidi overrides and isolates.
RAW_CONTROLS = re.compile("[\x1b\x80-\x9f\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class Served:
    url: str
    database: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    database = tmp_path_factory.mktemp("cli-commands") / "served.db"
    with running_server(database, {"INCIDENT_COMPONENTS": "api:API,web:Website"}) as url:
        yield Served(url, database)


def cli(
    served: Served, *args: str, token: str | None = RESPONDER, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    result = run_cli(*args, url=served.url, token=token, **kwargs)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def ok(served: Served, *args: str, token: str = RESPONDER) -> str:
    result = cli(served, *args, token=token)
    assert result.returncode == 0, (args, result.stderr)
    assert not RAW_CONTROLS.search(result.stdout)
    return result.stdout


def as_json(served: Served, *args: str, token: str = RESPONDER) -> Any:
    return json.loads(ok(served, *args, "--json", token=token))


def refused(served: Served, *args: str, token: str | None = RESPONDER, code: int = 1) -> str:
    result = cli(served, *args, token=token)
    assert result.returncode == code, (args, result.stdout, result.stderr)
    return result.stderr


def eventually(check: Callable[[], Any], within: float = 20.0) -> Any:
    """`check()` once it is true: the scheduler sends a step's effects just after a change."""
    deadline = time.monotonic() + within
    while not (result := check()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)
    return result


def declare(served: Served, *args: str) -> int:
    result = as_json(served, "declare", *args)
    return int(result["incident"]["id"])


def shown(served: Served, number: int) -> Any:
    return as_json(served, "show", str(number))


# --- severity, status, roles -----------------------------------------------------------------


def test_severity_status_roles_and_ic_me(served: Served) -> None:
    number = declare(
        served,
        "p2",
        "Checkout API down",
        "--components",
        "api=major_outage",
        "--public-title",
        "API outage",
    )
    incident = shown(served, number)["incident"]
    assert incident["severity"] == "P2"
    assert incident["components"] == {"api": "major_outage"}
    assert incident["public_title"] == "API outage"

    raised = ok(served, "severity", str(number), "p1", "--reason", "EU down too")
    assert raised.startswith(f"severity changed: INC-{number} P1 ")
    assert shown(served, number)["incident"]["severity"] == "P1"
    assert f"INC-{number}" in ok(served, "list", "--severity", "p1", "--severity", "P2")
    assert f"INC-{number}" not in ok(served, "list", "--severity", "p4")

    assert ok(served, "status", str(number), "Identified").startswith("now identified: INC-")
    after = shown(served, number)
    assert after["incident"]["status"] == "identified"
    assert after["incident"]["last_customer_update_at"] is None  # no update without MESSAGE
    with_message = ok(served, "status", f"INC-{number}", "monitoring", "Fix deployed")
    assert with_message.startswith("monitoring, customer update posted:")
    timeline = as_json(served, "timeline", str(number), "--kind", "customer_update")["timeline"]
    assert [e["text"] for e in timeline] == ["Fix deployed"]
    again = refused(served, "status", str(number), "monitoring")
    assert "refused (409)" in again and "already monitoring" in again
    assert "invalid choice" in refused(served, "status", str(number), "fixed", code=2)

    assert ok(served, "whoami") == "rob (responder)\n"
    assert as_json(served, "whoami", token=VIEWER)["role"] == "viewer"
    taken = ok(served, "ic", str(number), "me")
    assert taken.startswith(f"commander is rob: INC-{number}")
    assert shown(served, number)["incident"]["commander"] == "rob"
    lead = as_json(served, "role", str(number), "comms-lead", "me", token=COMMANDER)
    assert lead["incident"]["comms_lead"] == "cleo"
    handed = ok(served, "role", str(number), "commander", "cleo")  # rob commands it now
    assert handed.startswith("commander is cleo:")
    grab = refused(served, "ic", str(number), "me")  # and now he does not
    assert "refused (403)" in grab and "assign roles" in grab
    assert "refused (403)" in refused(served, "ic", str(number), "me", token=VIEWER)
    lowered = refused(served, "severity", str(number), "P3")
    assert "refused (403)" in lowered and "lower the severity" in lowered


def test_components_public_title_resolve_and_rca(served: Served) -> None:
    number = declare(served, "P3", "Slow search")
    changed = ok(served, "components", str(number), "api=degraded_performance", "web=Operational")
    assert changed.startswith("components set:")
    assert shown(served, number)["incident"]["components"] == {
        "api": "degraded_performance",
        "web": "operational",
    }
    bad_status = refused(served, "components", str(number), "api=on_fire", code=2)
    assert "'on_fire' (for api) is not a component status" in bad_status
    assert "not COMPONENT=STATUS" in refused(served, "components", "1", "api:down", code=2)
    unknown = refused(served, "components", str(number), "billing=major_outage")
    assert "refused (422)" in unknown and "billing" in unknown
    viewer = refused(served, "components", str(number), "api=operational", token=VIEWER)
    assert "refused (403)" in viewer

    renamed = as_json(served, "public-title", str(number), "Search is slow")
    assert renamed["incident"]["public_title"] == "Search is slow"
    update = as_json(
        served, "update", str(number), "Recovering", "--status", "MONITORING",
        "--components", "api=operational",
    )  # fmt: skip
    assert update["incident"]["status"] == "monitoring"
    assert update["incident"]["components"]["api"] == "operational"

    early = refused(served, "rca", str(number), "https://wiki/rca/1", token=COMMANDER)
    assert "refused (409)" in early  # not resolved yet
    ok(served, "resolve", str(number), "Cache warmed", token=COMMANDER)
    assert "refused (403)" in refused(served, "rca", str(number), "https://wiki/rca/1")
    closed = ok(served, "rca", str(number), "https://wiki.example.com/rca/1", token=COMMANDER)
    assert closed.startswith(f"RCA recorded: INC-{number} P3 closed")
    assert shown(served, number)["incident"]["rca_link"] == "https://wiki.example.com/rca/1"


# --- playbook steps ------------------------------------------------------------------------


def test_snooze_and_skip_a_step(served: Served) -> None:
    number = declare(served, "P1", "Payments down")
    step = "escalate-vp-clevel"  # the 4-hour executive escalation of a P1

    def runs_at() -> list[str]:
        return [s["runs_at"] for s in shown(served, number)["upcoming"] if s["step_id"] == step]

    [before] = runs_at()
    refusal = refused(served, "snooze", str(number), step, "--for", "30m", "--reason", "x")
    assert "refused (403)" in refusal and "skip or snooze" in refusal  # a responder
    snoozed = ok(
        served, "snooze", str(number), step, "--for", "30m", "--reason", "vendor call",
        token=COMMANDER,
    )  # fmt: skip
    assert snoozed.startswith(f"snoozed {step} by 30 min: INC-{number}")
    [later] = runs_at()
    delay = datetime.fromisoformat(later) - datetime.fromisoformat(before)
    assert delay == timedelta(minutes=30)
    ok(served, "snooze", str(number), step, "--minutes", "15", "--reason", "x", token=COMMANDER)
    assert datetime.fromisoformat(runs_at()[0]) - datetime.fromisoformat(later) == timedelta(
        minutes=15
    )
    for bad in (["--for", "90s"], ["--for", "8d"], ["--minutes", "0"], ["--for", "soon"]):
        args = ("snooze", str(number), step, *bad, "--reason", "x")
        assert "argument --" in refused(served, *args, token=COMMANDER, code=2)
    both = ("snooze", str(number), step, "--for", "1h", "--minutes", "3", "--reason", "x")
    assert "not allowed with" in refused(served, *both, token=COMMANDER, code=2)

    skipped = ok(served, "skip", str(number), step, "--reason", "told them", token=COMMANDER)
    assert skipped.startswith(f"skipped {step}: INC-{number}")
    assert step not in skipped.split("next steps:")[1]
    assert runs_at() == []
    entries = as_json(served, "timeline", str(number), "--kind", "step_skipped")["timeline"]
    assert [e["text"] for e in entries] == [f"skipped {step}: told them"]
    text = ok(served, "timeline", str(number), "--kind", "step_snoozed", "--kind", "step_skipped")
    assert text.count("step_snoozed") == 2 and text.count("step_skipped") == 1

    unknown = refused(served, "skip", str(number), "no-such-step", "--reason", "x", token=COMMANDER)
    assert "refused (404)" in unknown and "upcoming steps" in unknown
    for bad_step in ("a b", "..", "x/../y"):
        assert "is not a step id" in refused(
            served, "skip", str(number), bad_step, "--reason", "x", token=COMMANDER, code=2
        )
    assert "required: --reason" in refused(served, "skip", str(number), step, code=2)


# --- maintenance windows -------------------------------------------------------------------


def test_maintenance_schedule_list_show_update(served: Served) -> None:
    start = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    scheduled = as_json(
        served, "maintenance", "schedule", "Database upgrade", "Read-only\nfor 10 minutes",
        "--from", start.isoformat().replace("+00:00", "Z"), "--for", "1h",
        "--components", "api", "web",
    )  # fmt: skip
    window = scheduled["id"]
    assert scheduled["status"] == "scheduled" and scheduled["components"] == ["api", "web"]
    assert datetime.fromisoformat(scheduled["scheduled_until"]) == start + timedelta(hours=1)

    listed = ok(served, "maintenance", "list", token=VIEWER)
    assert re.search(rf"^{window} +scheduled .*Database upgrade \[api, web\]$", listed, re.M)
    text = ok(served, "maintenance", "show", str(window), token=VIEWER)
    assert text.startswith(f"maintenance {window} scheduled: Database upgrade")
    # The message's second line is indented under its first.
    first, second = (line for line in text.splitlines() if "Read-only" in line or "10 min" in line)
    assert second.strip() == "for 10 minutes"
    assert len(second) - len(second.lstrip()) == first.index("Read-only")

    relative = as_json(
        served, "maintenance", "schedule", "Network work", "Brief blips",
        "--start", "+1h", "--until", (start + timedelta(hours=3)).isoformat(),
    )  # fmt: skip
    begins = datetime.fromisoformat(relative["scheduled_for"]) - datetime.now(UTC)
    assert timedelta(minutes=55) < begins <= timedelta(hours=1)

    moved = ok(
        served, "maintenance", "update", str(window), "Starting early", "--status", "in_progress"
    )
    assert moved.startswith(f"maintenance {window} in_progress: Database upgrade")
    shown_json = as_json(served, "maintenance", "show", str(window))
    assert [u["status"] for u in shown_json["updates"]] == ["scheduled", "in_progress"]

    schedule = ("maintenance", "schedule", "x", "y", "--for", "1h", "--from")
    assert "has no time zone" in refused(served, *schedule, "2030-01-01T00:00", code=2)
    assert "is not a time" in refused(served, *schedule, "tomorrow", code=2)
    assert "is not a time" in refused(served, *schedule, "+soon", code=2)
    backwards = ("maintenance", "schedule", "x", "y", "--from", "+2h", "--until", "+1h")
    assert "must end after it starts" in refused(served, *backwards)
    viewer = refused(served, *schedule, "+1h", token=VIEWER)
    assert "refused (403)" in viewer
    unknown = refused(served, "maintenance", "schedule", "x", "y", "--from", "+1h", "--for",
                      "1h", "--components", "billing")  # fmt: skip
    assert "refused (422)" in unknown and "billing" in unknown
    assert "refused (404)" in refused(served, "maintenance", "show", "999")
    assert "invalid choice" in refused(
        served, "maintenance", "update", str(window), "x", "--status", "done", code=2
    )


# --- the timeline and what the terminal is given -------------------------------------------


def _insert_entry(database: Path, number: int, text: str) -> None:
    """A timeline entry written behind the API's back (an alert's text, an old version's
    data): the CLI must show whatever the server sends."""
    with closing(sqlite3.connect(database)) as db, db:
        db.execute(
            "INSERT INTO timeline (incident_id, at, kind, actor, text, public, data) "
            "SELECT incident_id, at, 'alert_repeated', 'alertmanager', ?, 0, '{}' "
            "FROM timeline WHERE incident_id = ? LIMIT 1",
            (text, number),
        )
        db.execute(
            "UPDATE incidents SET title = ? WHERE id = ?",
            ("DB \x1b[2Jdown \u202eevil\u202c \x9b31m", number),
        )


def test_timeline_is_typed_multi_line_safe_and_never_drives_the_terminal(
    served: Served,
) -> None:
    number = declare(served, "P3", "Queue backlog")
    ok(served, "note", str(number), "first line\nsecond line\r\n\tthird line")
    hostile = "C1 \x9b31mred\x9b0m and \u202egnp.exe\u202c \u2066x\u2069"
    # The API refuses controls in what people write; older data or another way in may not.
    assert "refused (422)" in refused(served, "note", str(number), hostile)
    _insert_entry(served.database, number, hostile)
    ok(served, "update", str(number), "Customers: we are on it")
    _insert_entry(served.database, number, "alert \x1b]0;pwned\x07 \x1b[31mred\x1b[0m\nnext")

    text = ok(served, "timeline", str(number))
    lines = text.splitlines()
    assert lines[0].split()[2] == "declared"
    # One block per entry: each starts with its time; further lines are indented to its text.
    note = next(i for i, line in enumerate(lines) if "first line" in line)
    column = lines[note].index("first line")
    assert lines[note].split()[2:4] == ["internal_note", "rob"]
    assert lines[note + 1] == " " * column + "second line"
    assert lines[note + 2] == " " * column + " third line"
    assert re.match(r"^  \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ  ", lines[note + 3])
    public = next(line for line in lines if "Customers: we are on it" in line)
    assert public.split()[2:4] == ["customer_update", "public"]
    # Controls are shown, not obeyed.
    assert "C1 \\x9b31mred\\x9b0m and \\u202egnp.exe\\u202c \\u2066x\\u2069" in text
    assert "alert \\x1b]0;pwned\\x07 \\x1b[31mred\\x1b[0m" in text
    for command in (["show", str(number)], ["list"], ["timeline", str(number), "--public"]):
        output = ok(served, *command)  # `ok` checks no raw control is printed
        if command[0] != "timeline":
            assert "DB \\x1b[2Jdown \\u202eevil\\u202c \\x9b31m" in output
    assert "Customers: we are on it" in ok(served, "timeline", str(number), "--public")
    assert "internal_note" not in ok(served, "timeline", str(number), "--public")
    # --json: JSON escapes them itself.
    entries = as_json(served, "timeline", str(number), "--kind", "alert_repeated")["timeline"]
    assert [e["text"][:16] for e in entries] == [hostile[:16], "alert \x1b]0;pwned\x07"]
    assert ok(served, "timeline", str(number), "--kind", "rca_completed") == (
        "(no timeline entries match)\n"
    )
    assert "is not an incident id" in refused(served, "timeline", "INC-x", code=2)
    assert "refused (404)" in refused(served, "timeline", "99999")
    assert "refused (422)" in refused(served, "timeline", str(number), "--kind", "Bad Kind")


# --- the outbox ----------------------------------------------------------------------------


def test_outbox_through_the_api_and_from_the_database(served: Served) -> None:
    number = declare(served, "P2", "Login fails")
    ok(served, "update", str(number), "We are looking into it")

    def sent_to_customers() -> list[Any]:
        found = as_json(served, "outbox", "--incident", str(number))["messages"]
        return found if "customers" in {m["channel"] for m in found} else []

    messages = eventually(sent_to_customers)
    assert {m["incident_id"] for m in messages} == {number}
    assert messages == sorted(messages, key=lambda m: m["created_at"])
    text = ok(served, "outbox", "--incident", f"INC-{number}")
    assert f"INC-{number}  customers   customers" in text
    assert "    We are looking into it" in text

    newest = as_json(served, "outbox", "--incident", str(number), "--limit", "1")
    assert len(newest["messages"]) == 1 and newest["more"] is True
    assert newest["messages"][0]["created_at"] >= messages[-1]["created_at"]
    assert "older messages left out" in ok(served, "outbox", "--limit", "1")

    viewer = refused(served, "outbox", token=VIEWER)
    assert "refused (403)" in viewer and "responder" in viewer
    assert "refused (404)" in refused(served, "outbox", "--incident", "99999")
    assert "not a number from 1 to 1000" in refused(served, "outbox", "--limit", "0", code=2)

    # --local reads the same database without a server or a token, and says the same.
    def local(*args: str) -> str:
        database = {"INCIDENT_DATABASE_URL": f"sqlite:///{served.database}"}
        result = cli(served, "outbox", "--local", "--incident", str(number), *args,
                     token=None, env=database)  # fmt: skip
        assert result.returncode == 0, result.stderr
        return result.stdout

    kept = json.loads(local("--json"))["messages"]
    through_api = as_json(served, "outbox", "--incident", str(number))["messages"]
    assert kept and through_api[: len(kept)] == kept  # (the outbox may have grown since)
    assert eventually(lambda: local() == ok(served, "outbox", "--incident", str(number)))
    assert "no API token" in refused(served, "outbox", token=None)  # the API one needs it


# --- editing and the lifecycle: edit, cancel, reopen, merge --------------------------------


def test_edit_corrects_the_facts_and_says_so_on_the_timeline(served: Served) -> None:
    number = declare(served, "P3", "Cart erors", "--service", "cart")
    edited = ok(
        served, "edit", f"INC-{number}", "--title", "Cart errors in the EU",
        "--category", "Security",
    )  # fmt: skip
    assert edited.startswith(f"edited (title, category): INC-{number} P3 investigating: Cart ")
    detail = shown(served, number)
    assert detail["incident"]["title"] == "Cart errors in the EU"
    assert detail["incident"]["category"] == "security"
    [entry] = [e for e in detail["timeline"] if e["kind"] == "edited"]
    assert entry["actor"] == "rob"
    assert entry["text"] == (
        "edited: title 'Cart erors' -> 'Cart errors in the EU'; category 'general' -> 'security'"
    )
    assert "  category      security" in ok(served, "show", str(number))
    answer = as_json(served, "edit", str(number), "--impact", "EU shoppers cannot pay")
    assert answer["incident"]["impact"] == "EU shoppers cannot pay"

    assert "say what to change: --title" in refused(served, "edit", str(number))
    same = refused(served, "edit", str(number), "--service", "cart")
    assert "refused (409)" in same and "nothing to change" in same
    assert "invalid choice" in refused(served, "edit", str(number), "--category", "x", code=2)
    assert "refused (403)" in refused(served, "edit", str(number), "--title", "x", token=VIEWER)


def test_cancel_as_a_false_alarm_then_not_again(served: Served) -> None:
    number = declare(served, "P3", "Disk alarm on db-3")
    refusal = refused(served, "cancel", str(number), "false_alarm")
    assert "refused (403)" in refusal and "cancel" in refusal  # a responder
    cancelled = ok(
        served, "cancel", f"INC-{number}", "false-alarm", "the probe flapped", token=COMMANDER
    )
    assert cancelled.startswith(f"cancelled (false alarm): INC-{number} P3 cancelled:")
    incident = shown(served, number)["incident"]
    assert incident["status"] == "cancelled"
    assert (incident["cancellation"], incident["cancel_note"]) == (
        "false_alarm",
        "the probe flapped",
    )
    assert incident["cancelled_at"] is not None
    line = next(
        line for line in ok(served, "show", str(number)).splitlines() if "cancelled  " in line
    )
    assert line.endswith("ago) as a false alarm: the probe flapped") or line.endswith(
        "(now) as a false alarm: the probe flapped"
    )

    again = refused(served, "cancel", str(number), "declined", token=COMMANDER)
    assert "refused (409)" in again and f"cannot cancel INC-{number}: it is cancelled" in again
    assert "invalid choice" in refused(served, "cancel", str(number), "duplicate", code=2)

    declined = declare(served, "P4", "Customer asks for a report")
    answer = as_json(served, "cancel", str(declined), "declined", token=COMMANDER)
    assert answer["incident"]["cancellation"] == "declined"
    assert answer["incident"]["cancel_note"] is None


def test_reopen_a_resolved_incident(served: Served) -> None:
    number = declare(served, "P3", "Webhooks delayed")
    early = refused(served, "reopen", str(number), "again", token=COMMANDER)
    assert "refused (409)" in early and "only a resolved incident can be reopened" in early
    ok(served, "resolve", str(number), "Queue drained", token=COMMANDER)
    assert "refused (403)" in refused(served, "reopen", str(number), "again")  # a responder
    reopened = ok(
        served, "reopen", str(number), "Delays are back", "--status", "identified",
        token=COMMANDER,
    )  # fmt: skip
    assert reopened.startswith(f"reopened: INC-{number} P3 identified:")
    detail = shown(served, number)
    assert detail["incident"]["status"] == "identified"
    assert detail["incident"]["reopened_at"] is not None
    assert detail["incident"]["resolved_at"] is None
    assert [e["text"] for e in detail["timeline"] if e["kind"] == "reopened"] == [
        "reopened (identified): Delays are back"
    ]
    assert "  reopened      " in ok(served, "show", str(number))
    ok(served, "resolve", str(number), "Drained for good", token=COMMANDER)
    answer = as_json(served, "reopen", str(number), "Third time", token=COMMANDER)
    assert answer["incident"]["status"] == "investigating"  # the server's default


def test_merge_a_duplicate_into_another_incident(served: Served) -> None:
    target = declare(served, "P2", "Checkout errors", "--components", "api=partial_outage")
    duplicate = declare(served, "P3", "Payments failing", "--components", "web=major_outage")
    itself = refused(served, "merge", str(duplicate), "--into", str(duplicate), token=COMMANDER)
    assert "refused (422)" in itself and "cannot be merged into itself" in itself
    assert "refused (403)" in refused(served, "merge", str(duplicate), "--into", str(target))
    assert "required: --into" in refused(served, "merge", str(duplicate), code=2)

    merged = ok(served, "merge", f"INC-{duplicate}", "--into", f"INC-{target}", token=COMMANDER)
    assert merged.startswith(f"merged into INC-{target}: INC-{duplicate} P3 cancelled:")
    incident = shown(served, duplicate)["incident"]
    assert (incident["status"], incident["cancellation"]) == ("cancelled", "duplicate")
    assert incident["merged_into"] == target
    assert f") merged into INC-{target}" in ok(served, "show", str(duplicate))
    taken_over = shown(served, target)
    assert taken_over["incident"]["components"] == {
        "api": "partial_outage",
        "web": "major_outage",
    }
    assert [e["kind"] for e in taken_over["timeline"] if e["kind"] == "merged"] == ["merged"]
    other = declare(served, "P4", "Another duplicate")
    answer = as_json(served, "merge", str(other), "--into", str(target), token=COMMANDER)
    assert answer["incident"]["merged_into"] == target


# --- approvals and follow-ups --------------------------------------------------------------


def test_approve_a_customer_text_held_for_approval(served: Served) -> None:
    number = declare(served, "P1", "Tokens leaked", "--category", "security")
    step = "status-page-investigating"  # due at once, and held: a security incident

    def held() -> Any:
        detail = shown(served, number)
        return any(s["step_id"] == step and s["state"] == "held" for s in detail["upcoming"])

    eventually(held, within=15)
    text = ok(served, "show", str(number))
    waiting = next(line for line in text.splitlines() if f" {step} " in line)
    assert waiting.startswith("  held (due ")
    assert waiting.endswith(f"waiting for approval: incident approve {number} {step}")
    assert re.search(r" customer-notification +customer_notification \(needs approval\)$",
                     text, re.M)  # fmt: skip

    refusal = refused(served, "approve", str(number), step)  # a responder
    assert "refused (403)" in refusal and "approve" in refusal
    approved = ok(served, "approve", f"INC-{number}", step, token=COMMANDER)
    assert approved.startswith(f"approved {step}: INC-{number} P1 investigating:")
    entries = as_json(served, "timeline", str(number), "--kind", "step_approved")["timeline"]
    assert [(e["actor"], e["text"]) for e in entries] == [
        ("cleo", f"approved {step}: it goes out now")
    ]

    def sent() -> bool:
        detail = shown(served, number)
        return step not in {s["step_id"] for s in detail["upcoming"]} and any(
            e["kind"] == "step_done" and e["step_id"] == step for e in detail["timeline"]
        )

    eventually(sent, within=15)
    # An upcoming one, ahead of time: it will not wait when due.
    ahead = as_json(served, "approve", str(number), "customer-notification", token=COMMANDER)
    [notification] = [s for s in ahead["upcoming"] if s["step_id"] == "customer-notification"]
    assert (notification["approved_by"], notification["needs_approval"]) == ("cleo", False)
    unknown = refused(served, "approve", str(number), "no-such-step", token=COMMANDER)
    assert "refused (404)" in unknown


def test_follow_ups_added_listed_and_done(served: Served) -> None:
    number = declare(served, "P2", "Search index corrupt")
    added = ok(served, "follow-up", "add", str(number), "Add a canary", "--owner", "@alice",
               "--due", "+7d")  # fmt: skip
    first = re.search(r"^  (FU-\d+) +due ", added, re.M)
    assert added.startswith(f"added: INC-{number}\n") and first, added
    assert added.rstrip().endswith("Add a canary (owner @alice)")
    due = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0, second=0)
    second = as_json(
        served, "follow-up", "add", f"INC-{number}", "Rotate the keys", "--owner",
        "ops@example.com", "--due", due.isoformat().replace("+00:00", "Z"),
    )  # fmt: skip
    assert datetime.fromisoformat(second["due_at"]) == due
    assert second["ref"] == f"FU-{second['id']}" and second["done_at"] is None

    listed = ok(served, "follow-up", "list", str(number), token=VIEWER).splitlines()
    assert [line.split()[0] for line in listed] == [first[1], second["ref"]]
    section = ok(served, "show", str(number)).split("follow-ups:\n")[1].split("timeline:")[0]
    assert "Rotate the keys (owner ops@example.com)" in section

    done = ok(served, "follow-up", "done", str(number), first[1].lower())
    assert done.startswith(f"done: INC-{number}\n  {first[1]} ")
    assert " by rob " in done
    items = {i["ref"]: i for i in shown(served, number)["follow_ups"]}
    assert items[first[1]]["done_by"] == "rob" and items[second["ref"]]["done_at"] is None
    by_number = as_json(served, "follow-up", "done", str(number), str(second["id"]))
    assert by_number["done_by"] == "rob"
    assert as_json(served, "follow-up", "list", str(number))["follow_ups"][1]["done_at"]

    again = refused(served, "follow-up", "done", str(number), first[1])
    assert "refused (409)" in again and "already done" in again
    unknown = refused(served, "follow-up", "done", str(number), "FU-99999")
    assert "refused (404)" in unknown and "FU-99999" in unknown
    assert "is not a follow-up" in refused(served, "follow-up", "done", "1", "FU-x", code=2)
    viewer = refused(served, "follow-up", "add", str(number), "x", "--owner", "a", "--due",
                     "+1d", token=VIEWER)  # fmt: skip
    assert "refused (403)" in viewer
    past = refused(served, "follow-up", "add", str(number), "x", "--owner", "a", "--due",
                   "2020-01-01T00:00Z")  # fmt: skip
    assert "refused (422)" in past and "in the future" in past
    assert "has no time zone" in refused(
        served, "follow-up", "add", str(number), "x", "--owner", "a", "--due",
        "2030-01-01T00:00", code=2,
    )  # fmt: skip


# --- documents: the timeline in Markdown, the postmortem draft -----------------------------


def test_export_and_postmortem_print_or_write_markdown(served: Served, tmp_path: Path) -> None:
    number = declare(served, "P3", "Slow invoices")
    ok(served, "note", str(number), "first line\n\tsecond line")
    ok(served, "resolve", str(number), "Added an index", token=COMMANDER)

    exported = ok(served, "export", f"INC-{number}", token=VIEWER)
    assert exported.startswith(f"# INC-{number} [P3] Slow invoices\n")
    timeline = exported.split("## Timeline")[1]
    assert "`declared`: P3 declared: Slow invoices" in timeline
    assert "first line\n  \tsecond line" in timeline  # lines and tabs kept
    assert "`resolved`" in timeline
    entries = as_json(served, "export", str(number))["timeline"]
    assert entries[0]["kind"] == "declared"

    draft = ok(served, "postmortem", str(number), token=VIEWER)
    assert draft.startswith(f"# Postmortem: INC-{number} Slow invoices\n")
    assert "Added an index" in draft
    assert "P3 declared: Slow invoices" in draft.split("## What happened when")[1]
    assert "unrecognized arguments: --json" in refused(
        served, "postmortem", str(number), "--json", code=2
    )

    target = tmp_path / "timeline.md"
    wrote = ok(served, "export", str(number), "--output", str(target))
    assert re.fullmatch(rf"wrote {re.escape(str(target))} \(\d+ lines\)\n", wrote)
    assert target.read_text().startswith(f"# INC-{number} [P3] Slow invoices\n")
    assert "## Timeline" in target.read_text()
    as_file = tmp_path / "timeline.json"
    ok(served, "export", str(number), "--json", "-o", str(as_file))
    assert json.loads(as_file.read_text())["timeline"][0]["kind"] == "declared"
    rca = tmp_path / "rca.md"
    assert ok(served, "postmortem", str(number), "-o", str(rca)).startswith(f"wrote {rca} (")
    assert rca.read_text().startswith(f"# Postmortem: INC-{number} Slow invoices\n")
    missing = tmp_path / "no" / "such" / "dir.md"
    assert f"cannot write {missing}" in refused(served, "export", str(number), "-o", str(missing))

    # What the server sends is shown, not obeyed (`ok` checks no raw control is printed).
    _insert_entry(served.database, number, "alert \x1b]0;pwned\x07 \x1b[31mred")
    for command in ("export", "postmortem"):
        shown_text = ok(served, command, str(number))
        assert "DB \\x1b\\[2Jdown \\u202eevil" in shown_text  # (`[`: escaped Markdown)
    assert re.search(r"alert \\x1b\\?\]0;pwned\\x07", ok(served, "export", str(number)))
    assert "refused (404)" in refused(served, "export", "99999")
    assert "refused (401)" in refused(served, "postmortem", str(number), token="wrong-token-0123")


# --- --json, pipes -------------------------------------------------------------------------


def test_every_command_answers_json(served: Served) -> None:
    number = str(declare(served, "p4", "Typo on the pricing page"))
    commands: list[tuple[str, ...]] = [
        ("list", "--severity", "p4"),
        ("show", number),
        ("timeline", number),
        ("ack", number),
        ("update", number, "Fixing it"),
        ("status", number, "identified"),
        ("note", number, "n"),
        ("severity", number, "P3"),
        ("ic", number, "me"),
        ("role", number, "comms_lead", "rob"),
        ("components", number, "web=degraded_performance"),
        ("public-title", number, "Pricing page"),
        ("edit", number, "--service", "web"),
        ("follow-up", "add", number, "Fix the linter", "--owner", "rob", "--due", "+2d"),
        ("follow-up", "list", number),
        ("export", number),
        ("maintenance", "list"),
        ("outbox", "--incident", number),
        ("whoami",),
        ("resolve", number, "Fixed the typo"),
        ("rca", number, "https://wiki.example.com/rca/typo"),
    ]
    for command in commands:
        answer = as_json(served, *command)
        assert isinstance(answer, dict) and answer, command
    assert as_json(served, "show", number)["incident"]["status"] == "closed"


def test_a_reader_that_leaves_early_ends_the_command_quietly(served: Served) -> None:
    number = str(declare(served, "P3", "Long timeline"))
    for index in range(30):  # a timeline far larger than a pipe's buffer
        response = httpx.post(
            f"{served.url}/api/v1/incidents/{number}/notes",
            json={"text": f"note {index} " + "x" * 4900},
            headers={"Authorization": f"Bearer {RESPONDER}"},
        )
        assert response.status_code == 200, response.text
    for command in (["timeline", number], ["show", number], ["list"], ["outbox", "--json"]):
        read, write = os.pipe()
        os.close(read)  # the reader is gone before the first write
        try:
            result = cli(served, *command, stdout=write)
        finally:
            os.close(write)
        assert (result.returncode, result.stderr) == (0, ""), command

    env = {
        **os.environ,
        "INCIDENT_URL": served.url,
        "INCIDENT_TOKEN": RESPONDER,
    }
    pipeline = subprocess.run(
        ["sh", "-c", f'"{sys.executable}" -m incident.cli timeline {number} | head -1'],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert pipeline.returncode == 0
    assert pipeline.stderr == ""  # no traceback, no "Exception ignored"
    assert pipeline.stdout.split()[2] == "declared"
