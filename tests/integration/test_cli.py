"""The command line, run as a real process: checks, simulate, and error handling."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from incident.adapters.database import migrate
from incident.adapters.files.support_files import SUPPORT_DIR, load_support
from incident.config import PROJECT_ROOT


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "incident.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def simulate(*args: str) -> list[dict[str, Any]]:
    result = run("simulate", *args, "--json")
    assert result.returncode == 0, result.stderr
    events: list[dict[str, Any]] = json.loads(result.stdout)
    return events


H = 3600


def times(events: list[dict[str, Any]], step: str) -> list[int]:
    """When a step fired, in seconds from the declaration."""
    return [e["at_seconds"] for e in events if e["step"] == step]


def test_playbooks_check_passes_on_the_shipped_playbooks() -> None:
    result = run("playbooks", "check", str(PROJECT_ROOT / "playbooks"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("ok ") == 5
    support = load_support(PROJECT_ROOT / "playbooks" / SUPPORT_DIR)
    calendars = {rung.calendar.name for rung in support.ladder.rungs.values()}
    levels, steps = len(support.ladder.rungs), len(support.steps)
    said = f"{levels} levels, {steps} steps, {len(calendars)} calendars"
    assert f"support: support, {said}" in result.stdout


def test_playbooks_check_fails_on_a_broken_copy_naming_file_step_and_field(
    tmp_path: Path,
) -> None:
    copy = tmp_path / "playbooks"
    shutil.copytree(PROJECT_ROOT / "playbooks", copy)
    p2 = copy / "p2.yaml"
    p2.write_text(p2.read_text().replace("    every: 2h\n", "    every: often\n", 1))
    result = run("playbooks", "check", str(copy))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{p2}:" in result.stderr
    assert "step 'customer-update-reminder'" in result.stderr
    assert "field 'every'" in result.stderr


def test_comms_check_renders_every_template() -> None:
    result = run("comms", "check")
    assert result.returncode == 0, result.stderr
    assert "templates render" in result.stdout


def test_p1_resolved_at_5h() -> None:
    events = simulate("--severity", "P1", "--resolve-after", "5h", "--until", "60h")
    assert {"at_seconds", "step", "action"} <= set(events[0])
    assert times(events, "page-oncall-tier3")[0] == 0
    updates = sorted(times(events, "customer-notification") + times(events, "customer-update"))
    assert updates[0] <= 15 * 60
    assert all(b - a == 30 * 60 for a, b in itertools.pairwise(updates))
    assert 4.5 * H <= updates[-1] < 5 * H  # every 30 min until 5 h, none after
    assert times(events, "escalate-vp-clevel") == [4 * H]
    assert times(events, "resolution-notice") == [5 * H]
    assert times(events, "status-page-resolved") == [5 * H]
    reminders = [e["at_seconds"] for e in events if e["action"] == "rca_reminder"]
    assert reminders and all(5 * H < r < 53 * H for r in reminders)
    assert times(events, "rca.missed") == [53 * H]
    assert [e["action"] for e in events if e["step"] == "rca.missed"] == ["rca_overdue"]
    executives = times(events, "notify-executives")
    assert executives and executives[0] <= 1 * H


def test_p1_resolved_at_3h_has_no_4h_escalation() -> None:
    events = simulate("--severity", "P1", "--resolve-after", "3h", "--until", "60h")
    assert times(events, "escalate-vp-clevel") == []
    assert times(events, "rca.missed") == [51 * H]


def test_p1_acknowledged_and_updated_by_the_commander() -> None:
    events = simulate(
        "--severity",
        "P1",
        "--ack-after",
        "4m",
        "--update-every",
        "20m",
        "--resolve-after",
        "2h",
        "--rca-after",
        "30h",
        "--until",
        "60h",
    )
    assert times(events, "page-oncall-tier3") == [0]
    assert times(events, "repage-oncall-tier3") == []  # acknowledged before the re-page
    assert times(events, "customer-update") == []  # the commander kept customers informed
    assert times(events, "rca.missed") == []  # the RCA was done in time


def test_p2_has_its_own_cadence_and_escalations() -> None:
    events = simulate("--severity", "P2", "--resolve-after", "30h", "--until", "80h")
    updates = sorted(
        times(events, "customer-notification")
        + times(events, "customer-update")
        + times(events, "customer-update-late")
    )
    early = [u for u in updates if u < 4 * H]
    late = [u for u in updates if u >= 4 * H]
    assert all(b - a == 2 * H for a, b in itertools.pairwise(early))
    assert all(b - a == 4 * H for a, b in itertools.pairwise(late))
    assert late and max(updates) < 30 * H
    assert times(events, "escalate-tier3") == [4 * H]
    assert times(events, "notify-account-managers") == [4 * H]
    assert times(events, "management-review") == [24 * H]
    assert times(events, "rca.missed") == [78 * H]
    assert times(events, "escalate-vp-clevel") == []


def test_simulate_refuses_a_bad_duration_without_a_traceback() -> None:
    result = run("simulate", "--severity", "P1", "--until", "soon")
    assert result.returncode == 2
    assert "not a duration" in result.stderr and "Traceback" not in result.stderr
    result = run("simulate", "--severity", "P9")
    assert result.returncode == 2 and "unknown severity" in result.stderr


def test_the_service_refuses_to_start_on_an_invalid_playbook(tmp_path: Path) -> None:
    copy = tmp_path / "playbooks"
    shutil.copytree(PROJECT_ROOT / "playbooks", copy)
    (copy / "p3.yaml").write_text("severity: P3\nname: x\nsteps:\n  - id: a\n    action: dance\n")
    result = run(
        "serve",
        "--port",
        "0",
        env={
            "INCIDENT_PLAYBOOKS_DIR": str(copy),
            "INCIDENT_DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
        },
    )
    assert result.returncode == 2
    assert "p3.yaml" in result.stderr and "step 'a'" in result.stderr
    assert "field 'action'" in result.stderr


def test_a_bad_database_url_is_a_clear_error() -> None:
    result = run("playbooks", "check", env={"INCIDENT_DATABASE_URL": "mysql://nope"})
    assert result.returncode == 2
    assert "INCIDENT_DATABASE_URL" in result.stderr and "Traceback" not in result.stderr


def test_db_upgrade_migrates_once_and_a_missing_database_is_a_readable_error(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    first = run("db", "upgrade", env={"INCIDENT_DATABASE_URL": url})
    assert first.returncode == 0, first.stderr
    assert f"upgraded empty database -> {migrate.head()}" in first.stdout
    again = run("db", "upgrade", env={"INCIDENT_DATABASE_URL": url})
    assert again.returncode == 0 and "upgraded" not in again.stdout
    assert f"is at schema revision {migrate.head()}" in again.stdout
    missing = run(
        "db", "upgrade", env={"INCIDENT_DATABASE_URL": "postgresql+asyncpg://u@127.0.0.1:9/x"}
    )
    assert missing.returncode == 2
    assert "cannot use the database" in missing.stderr and "Traceback" not in missing.stderr
