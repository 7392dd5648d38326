"""The command line for support cases, run as a real process: `simulate --case` (the case's
clocks in business hours), and the checks of the support playbook and the case templates."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from incident.cli.commands import main
from incident.config import PROJECT_ROOT
from incident.domain.case_routing import Level
from tests.integration.test_cli import run

H = 3600
FRIDAY_1750 = "Fri 2026-03-06 17:50 CET"


def simulate_case(*args: str) -> dict[str, Any]:
    result = run("simulate", "--case", *args, "--json")
    assert result.returncode == 0, result.stderr
    simulation: dict[str, Any] = json.loads(result.stdout)
    return simulation


def fired(simulation: dict[str, Any], step: str) -> list[str]:
    """When a step fired, as the local wall clock shows it."""
    return [e["local"] for e in simulation["events"] if e["step"] == step]


def test_a_pro_p3_case_opened_on_friday_evening_waits_for_monday() -> None:
    simulation = simulate_case("--plan", "pro")
    case = simulation["case"]
    assert case["opened"]["local"] == FRIDAY_1750 and case["priority"] == "P3"
    # 4 business hours of tier 1 (Mon-Fri 09:00-17:00 Berlin): due Monday 13:00, 75 % at 12:00.
    assert case["response_due"]["local"] == "Mon 2026-03-09 13:00 CET"
    assert fired(simulation, "first-response-warning") == ["Mon 2026-03-09 12:00 CET"]
    assert fired(simulation, "first-response-missed") == ["Mon 2026-03-09 13:00 CET"]
    warning = next(e for e in simulation["events"] if e["step"] == "first-response-warning")
    assert warning["at_seconds"] == 66 * H + 10 * 60 and warning["at"] == "+66:10:00"
    assert warning["target"] == "tier_1 lead" and warning["result"] == "done"
    assert warning["time"] == "2026-03-09T12:00:00+01:00"
    # Nothing at all over the weekend.
    days = {e["local"][:3] for e in simulation["events"]}
    assert days and days.isdisjoint({"Sat", "Sun"})
    # Unresolved for more than 72 h (a minute past Monday 17:50): the rule sends it to L2,
    # whose own clock (4 business hours from Monday 17:51) runs out on Tuesday.
    assert fired(simulation, "unresolved-too-long") == ["Mon 2026-03-09 17:51 CET"]
    assert simulation["end"]["level"] == "tier_2" and simulation["end"]["sla"] == "breached"
    assert simulation["end"]["at_seconds"] == 5 * 24 * H


def test_a_first_response_half_an_hour_in_stops_the_response_clock() -> None:
    # Until Monday 17:50: before the 72-hour rule would move it on.
    simulation = simulate_case("--plan", "pro", "--respond-after", "30m", "--until", "3d")
    respond = [e for e in simulation["events"] if e["kind"] == "human"]
    assert [(e["action"], e["local"], e["result"]) for e in respond] == [
        ("respond", "Fri 2026-03-06 18:20 CET", "done")
    ]
    assert fired(simulation, "first-response-warning") == []
    assert fired(simulation, "first-response-missed") == []
    assert fired(simulation, "p3-first-response") == []
    assert simulation["end"]["level"] == "tier_1" and simulation["end"]["sla"] == "met"


def test_a_legal_threat_reaches_the_cio_at_once() -> None:
    simulation = simulate_case("--plan", "pro", "--flag", "legal_threat")
    assert simulation["case"]["level"] == "cio"
    mail = [e for e in simulation["events"] if e["step"] == "cio-review-mail"]
    assert [(e["at_seconds"], e["local"], e["target"]) for e in mail] == [(0, FRIDAY_1750, "cio")]
    assert fired(simulation, "first-response-warning") == []  # tier 1's clock: not its case


def test_an_escalation_on_friday_evening_is_noticed_at_the_next_opening() -> None:
    simulation = simulate_case(
        "--plan", "pro", "--escalate-after", "20m", "--escalate-to", "tier_2", "--until", "4d"
    )
    escalate = next(e for e in simulation["events"] if e["action"] == "escalate")
    assert (escalate["result"], escalate["target"]) == ("done", "tier_2")  # the gate passed
    assert fired(simulation, "escalation-notice") == ["Mon 2026-03-09 09:00 CET"]
    assert fired(simulation, "receipt-reminder") == ["Mon 2026-03-09 13:00 CET"]
    assert simulation["end"]["level"] == "tier_2"


def test_the_table_shows_offsets_wall_clock_and_the_clocks_state() -> None:
    result = run("simulate", "--case", "--plan", "pro", "--resolve-after", "3d")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"case: pro P3, opened {FRIDAY_1750} at tier_1"
    assert lines[1] == "response due (tier_1): Mon 2026-03-09 13:00 CET (+67:10:00)"
    warning = next(line for line in lines if "first-response-warning" in line)
    assert warning.split()[:5] == ["+66:10:00", "Mon", "2026-03-09", "12:00", "CET"]
    assert "tier_1 lead" in warning and warning.endswith("done")
    assert any("(resolve)" in line and "Mon 2026-03-09 17:50 CET" in line for line in lines)
    assert lines[-1].startswith("at the end, Wed 2026-03-11 17:50 CET (+120:00:00): resolved")


def test_a_bad_level_exits_non_zero_listing_the_levels() -> None:
    result = run(
        "simulate", "--case", "--plan", "pro", "--escalate-after", "1h", "--escalate-to", "cfo"
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "argument --escalate-to: 'cfo' is not a level; the levels are tier_1, tier_2" in (
        result.stderr
    )
    assert all(level in result.stderr for level in Level)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--case"], "--case needs --plan (starter, pro, enterprise)"),
        (["--case", "--plan", "pro", "--severity", "P1"], "--severity: only for an incident"),
        (["--case", "--plan", "pro", "--escalate-to", "tier_2"], "give --escalate-after and"),
        (["--severity", "P1", "--plan", "pro"], "--plan: only for a support case (--case)"),
        (["--case", "--plan", "pro", "--opened", "2026-03-06T17:50"], "has no zone"),
        (["--case", "--plan", "pro", "--flag", "angry"], "'angry' is not a flag"),
        (["--case", "--plan", "gold"], "invalid choice: 'gold'"),
        (["--until", "1h"], "give --severity (or --case --plan PLAN"),
    ],
)
def test_case_mistakes_are_readable_errors(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = main(["simulate", *args])
    except SystemExit as exit_:  # argparse's own refusal
        code = int(exit_.code or 0)
    assert code == 2
    assert message in capsys.readouterr().err


# --- the checks ------------------------------------------------------------------------------


def test_playbooks_check_names_each_problem_of_the_support_playbook(tmp_path: Path) -> None:
    copy = tmp_path / "playbooks"
    shutil.copytree(PROJECT_ROOT / "playbooks", copy)
    clocks = copy / "support" / "clocks.yaml"
    text = clocks.read_text()
    for old, new in [
        ("    target: agent\n", "    target: the_janitor\n"),  # deescalation-notice
        ("template: case_receipt_reminder\n", "template: case_nowhere\n"),  # receipt-reminder
        ("    after: 2 business hours\n", "    after: 4 bizness hours\n"),  # stalled-at-tier-2
    ]:
        assert old in text
        text = text.replace(old, new, 1)
    clocks.write_text(text)
    result = run("playbooks", "check", str(copy))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    problems = result.stderr.splitlines()[1:]
    assert len(problems) == 3, result.stderr
    assert all(line.startswith(f"{clocks}: step '") for line in problems)
    assert "step 'deescalation-notice': field 'target': 'the_janitor' is not a level" in (
        result.stderr
    )
    assert "step 'receipt-reminder': field 'template': no template cases/case_nowhere.txt.j2" in (
        result.stderr
    )
    assert "step 'stalled-at-tier-2': field 'after': '4 bizness hours'" in result.stderr


def test_comms_check_renders_the_case_templates_too(tmp_path: Path) -> None:
    ok = run("comms", "check")
    assert ok.returncode == 0, ok.stderr
    shipped = len(list((PROJECT_ROOT / "comms" / "cases").glob("*.txt.j2")))
    assert f"and {shipped} case templates, with full and sparse data" in ok.stdout
    comms = tmp_path / "comms"
    shutil.copytree(PROJECT_ROOT / "comms", comms)
    stalled = comms / "cases" / "case_stalled.txt.j2"
    stalled.write_text(stalled.read_text() + "\n{{ case.no_such_field.deeper }}\n")
    review = comms / "cases" / "cio_review.txt.j2"
    review.write_text(review.read_text() + "\nResolved: {{ case.resolved_at }}\n")
    result = run("comms", "check", env={"INCIDENT_COMMS_DIR": str(comms)})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    problems = result.stderr.splitlines()[1:]
    assert problems, result.stderr
    stalled_problems = [p for p in problems if "case_stalled" in p]
    # Each step that names it (a template no step names: as the escalation notice).
    assert {p.rsplit("(", 1)[1] for p in stalled_problems} == {
        f"step '{step}', {data} data)"
        for step in ("stalled-at-tier-2", "p3-progress")
        for data in ("full", "sparse")
    }
    assert "cases/cio_review: prints 'None'" in result.stderr
    assert all("case_stalled" in p or "cio_review" in p for p in problems)
