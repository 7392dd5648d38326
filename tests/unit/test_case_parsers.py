"""`incident case ...` arguments: ids, context pairs and files, and choices that are the
domain's enums (so they cannot drift from what the server takes)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from incident.cli import case_parsers as p
from incident.cli.api_parsers import instant
from incident.cli.commands import build_parser
from incident.domain.case import CaseStatus, Deescalation, Plan
from incident.domain.case_context import ChecklistItem
from incident.domain.case_routing import Flag, Level


def refusal(parse: object, text: str) -> str:
    assert callable(parse)
    with pytest.raises(argparse.ArgumentTypeError) as error:
        parse(text)
    return str(error.value)


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["case", *argv])


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        parse(*argv)
    assert exit_.value.code == 2
    return capsys.readouterr().err


def test_case_ids_as_case_12_or_12() -> None:
    assert p.case_id("CASE-12") == p.case_id("case-12") == p.case_id("12") == 12
    assert p.case_id("#12") == p.case_id(" 12 ") == 12
    for text in ("CASE-", "CASE-x", "INC-12", "0", "-3", "²", "1" * 20, ""):
        assert "is not a case id (e.g. 12 or CASE-12)" in refusal(p.case_id, text)
    assert parse("show", "CASE-12").id == parse("show", "12").id == 12


def test_context_pairs_are_text_or_json() -> None:
    assert p.context_pair("customer_impact=Cannot log in") == ("customer_impact", "Cannot log in")
    assert p.context_pair("summary=a=b") == ("summary", "a=b")  # the first = splits
    assert p.context_pair("account_value=") == ("account_value", "")
    assert p.context_pair("previous_escalations:=2") == ("previous_escalations", 2)
    transactions = '[{"network": "evm", "hash": "0x1", "at": "2026-03-02T09:00:00Z"}]'
    assert p.context_pair(f"transactions:={transactions}") == (
        "transactions",
        json.loads(transactions),
    )
    # Whether the key is a field, and the value right for it, is the server's to say.
    assert p.context_pair("no_such_field=x") == ("no_such_field", "x")
    for text in ("customer_impact", "=x", ":=1", " =x"):
        assert "is not KEY=TEXT or KEY:=JSON" in refusal(p.context_pair, text)
    for text in ("n:=[1,", "n:=NaN", "n:=text"):
        assert "n:= takes JSON" in refusal(p.context_pair, text)


def test_context_options_collect_pairs_and_files(tmp_path: Path) -> None:
    opened = parse(
        "open", "ZD-1", "cust-1", "Cannot log in", "--plan", "Pro",
        "--context", "expected=funds", "previous_escalations:=0", "--context", "actual=none",
    )  # fmt: skip
    assert opened.context == [
        ("expected", "funds"),
        ("previous_escalations", 0),
        ("actual", "none"),
    ]
    assert (opened.plan, opened.context_file) == ("pro", None)
    path = tmp_path / "context.json"
    path.write_text('{"customer_plan": "pro"}')
    assert parse("update", "3", "--context-file", str(path)).context_file == {
        "customer_plan": "pro"
    }
    path.write_text("{nope")
    assert f"{path} is not JSON" in refusal(p.context_file, str(path))
    assert "cannot read" in refusal(p.context_file, str(tmp_path / "missing.json"))


def test_context_and_a_context_file_exclude_each_other(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "context.json"
    path.write_text("{}")
    error = usage_error(
        capsys, "update", "3", "--context", "expected=x", "--context-file", str(path)
    )
    assert "not allowed with argument --context" in error


def test_a_bad_level_lists_the_choices(capsys: pytest.CaptureFixture[str]) -> None:
    error = usage_error(capsys, "escalate", "CASE-3", "boss", "why")
    choices = ", ".join(f"'{level.value}'" for level in Level)
    assert f"argument LEVEL: invalid choice: 'boss' (choose from {choices})" in error
    assert "invalid choice: 'angry'" in usage_error(
        capsys, "open", "ZD-1", "c", "s", "--plan", "pro", "--flag", "angry"
    )
    assert "invalid choice: 'lost'" in usage_error(
        capsys, "deescalate", "3", "tier_1", "lost", "note"
    )
    assert "invalid choice: 'cfo'" in usage_error(capsys, "approve", "3", "cfo", "ok")


def test_the_choices_are_the_domains_enums() -> None:
    assert tuple(Level) == p.LEVELS
    assert tuple(Flag) == p.FLAGS
    assert tuple(ChecklistItem) == p.CHECKLIST
    assert tuple(Plan) == p.PLANS
    assert tuple(CaseStatus) == p.STATUSES
    assert tuple(Deescalation) == p.DEESCALATIONS
    assert p.APPROVERS == (Level.CIO, Level.CEO)


def test_choices_in_any_case_and_with_dashes_are_sent_as_the_api_spells_them() -> None:
    opened = parse(
        "open", "ZD-1", "cust-1", "Lawyer letter", "--plan", "STARTER", "--priority", "p1",
        "--flag", "Legal-Threat", "usdt_withdrawal", "--checklist", "troubleshooting-done",
        "--crypto", "--contacts", "3", "--disputed-amount", "5000.50",
    )  # fmt: skip
    assert opened.flags == ["legal_threat", "usdt_withdrawal"]
    assert (opened.plan, opened.priority, opened.checklist) == (
        "starter",
        "P1",
        ["troubleshooting_done"],
    )
    assert (opened.crypto, opened.contacts, opened.disputed_amount) == (True, 3, "5000.50")
    escalated = parse("escalate", "3", "Tier-2", "stuck", "--cannot-wait", "customer down")
    assert (escalated.level, escalated.cannot_wait, escalated.override) == (
        "tier_2",
        "customer down",
        None,
    )
    down = parse("deescalate", "3", "tier_1", "Waiting-For-Customer", "asked for logs")
    assert down.why == "waiting_for_customer"
    assert parse("approve", "3", "CEO", "ok", "--decline").decline
    listed = parse("list", "--status", "Open", "--level", "cio", "--level", "vp-customer-success")
    assert (listed.status, listed.level) == (["open"], ["cio", "vp_customer_success"])


def test_update_sends_only_what_is_given() -> None:
    nothing = parse("update", "3")
    given = ("flags", "checklist", "crypto", "context", "priority", "summary", "plan")
    assert all(getattr(nothing, name) is None for name in given)
    cleared = parse("update", "3", "--flag", "--checklist", "--no-crypto")
    assert (cleared.flags, cleared.checklist, cleared.crypto) == ([], [], False)
    assert parse("update", "3", "--expected-resolution", "2030-05-01T17:00Z").expected_resolution
    assert "has no time zone" in refusal(instant, "2030-05-01T17:00")
    assert "is not a whole number" in refusal(p.count, "two")
