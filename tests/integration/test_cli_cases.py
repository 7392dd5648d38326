"""`incident case ...` as real processes against a real `incident serve` with support roles:
opening and showing a case, the rules routing it (a legal threat straight to the CIO), the
context gate naming every missing field, a CEO request becoming a CIO one, decisions by the
named approver, resolution waiting for them, the queue, and `--json`."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.test_cli_api import cli as run_cli
from tests.integration.test_cli_commands import RAW_CONTROLS
from tests.served_process import incident_serve

# Several CLI processes per test, about a second each on a busy machine.
pytestmark = pytest.mark.timeout(300)

AGENT = "case-agent-alice-token-01"
MANAGER = "case-manager-carol-token1"
CIO = "case-cio-dana-token-01234"
CEO = "case-ceo-erik-token-01234"
NAMES = {AGENT: "alice", MANAGER: "carol", CIO: "dana", CEO: "erik"}
TOKENS = ",".join(f"{token}:responder:{name}" for token, name in NAMES.items())
ROLES = "alice=agent,carol=manager,dana=cio,erik=ceo"
# What a technical escalation needs beyond the case's own facts (and the reason).
TECHNICAL = {
    "actions_taken": "Reset the session; checked the logs.",
    "customer_plan": "pro",
    "account_value": "12000",
    "previous_escalations": 0,
    "customer_impact": "Cannot withdraw.",
    "troubleshooting": "Retried the payout: same error.",
    "customer_expectation": "Funds today.",
    "requested_actions": "Check the payout service.",
}
EVM_HASH = "0x" + "ab" * 32
EVM_ADDRESS = "0x" + "12" * 20


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    database = tmp_path_factory.mktemp("cli-cases") / "served.db"
    env = {"INCIDENT_API_TOKENS": TOKENS, "INCIDENT_SUPPORT_ROLES": ROLES}
    with incident_serve(database, env) as served:
        yield served


def cli(url: str, *args: str, token: str = AGENT) -> subprocess.CompletedProcess[str]:
    result = run_cli("case", *args, url=url, token=token)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def ok(url: str, *args: str, token: str = AGENT) -> str:
    result = cli(url, *args, token=token)
    assert result.returncode == 0, (args, result.stderr)
    assert not RAW_CONTROLS.search(result.stdout)
    return result.stdout


def as_json(url: str, *args: str, token: str = AGENT) -> Any:
    return json.loads(ok(url, *args, "--json", token=token))


def refused(url: str, *args: str, token: str = AGENT, code: int = 1) -> str:
    result = cli(url, *args, token=token)
    assert result.returncode == code, (args, result.stdout, result.stderr)
    assert result.stdout == ""
    return result.stderr


def opened(url: str, *args: str) -> int:
    return int(as_json(url, "open", *args)["case"]["id"])


def context_file(tmp_path: Path, context: dict[str, Any]) -> str:
    path = tmp_path / "context.json"
    path.write_text(json.dumps(context))
    return str(path)


def test_open_a_case_and_show_it(url: str) -> None:
    out = ok(
        url, "open", "ZD-1001", "cust-42", "Customer cannot log in", "--plan", "Pro",
        "--priority", "p2", "--email", "customer@example.org", "--contacts", "2",
        "--context", "customer_impact=Cannot log in", "previous_escalations:=0",
        "--checklist", "documented",
    )  # fmt: skip
    first = out.splitlines()[0]
    assert first.startswith("opened: CASE-") and first.endswith(
        " P2 open at tier_1: Customer cannot log in"
    )
    ref = first.split()[1]
    number = ref.removeprefix("CASE-")
    assert "still needed" in out and "actions_taken" in out

    shown = ok(url, "show", ref)
    assert ok(url, "show", number).splitlines()[0] == shown.splitlines()[0]
    lines = shown.splitlines()
    assert lines[0] == f"{ref} P2 open at tier_1: Customer cannot log in"
    for row in (
        "  ticket         ZD-1001",
        "  customer       cust-42 <customer@example.org>",
        "  plan           pro",
        "  contacts       2",
        "escalating to tier_2 still needs:",
        "  actions_taken: missing: give the actions taken so far",
        "  troubleshooting: missing: give the troubleshooting performed, with its results",
        "  checklist.troubleshooting_done: troubleshoot first and tick it: tier 1 escalates "
        "before troubleshooting only in an emergency",
        "checklist: documented",
        "context:",
        "upcoming steps:",
        "timeline:",
    ):
        assert row in lines, (row, shown)
    assert any(line.startswith("  SLA            ok, due ") for line in lines)
    assert any("previous_escalations" in line and line.endswith(" 0") for line in lines)
    assert "Opened at tier_1 (P2, pro): Customer cannot log in" in shown.split("timeline:")[1]

    # --json prints the API's own answer.
    api = httpx.get(f"{url}/api/v1/cases/{number}", headers={"Authorization": f"Bearer {AGENT}"})
    assert as_json(url, "show", ref) == api.json()


def test_a_legal_threat_opens_at_the_cio_and_the_queue_shows_it(url: str) -> None:
    out = ok(url, "open", "ZD-2001", "cust-7", "Lawyer letter", "--plan", "starter",
             "--flag", "legal-threat")  # fmt: skip
    ref = out.split()[1]
    assert out.startswith(f"opened: {ref} P3 open at cio: Lawyer letter")
    assert "  routing        CIO because: legal threat (automatic, cannot wait)" in out

    shown = ok(url, "show", ref)
    routing = shown.split("routing:\n")[1].splitlines()
    assert routing[0] == "  CIO because: legal threat (automatic, cannot wait)"
    assert "tier_1 -> cio by routing, cannot wait: legal threat" in shown
    assert "receipt not confirmed" in shown

    queue = ok(url, "list", "--level", "cio").splitlines()
    [line] = [line for line in queue if line.startswith(f"{ref} ")]
    assert line.split()[1:4] == ["ZD-2001", "P3", "cio"]
    assert " ok " in line and " due " in line and line.endswith("%  Lawyer letter")
    assert ref not in ok(url, "list", "--level", "tier_1", "--level", "tier_2")
    assert ref in ok(url, "list", "--status", "open", "--level", "CIO")
    assert ref not in ok(url, "list", "--status", "resolved")
    listed = as_json(url, "list", "--level", "cio")["cases"]
    assert {item["case"]["ref"] for item in listed} >= {ref}
    assert all(item["case"]["level"] == "cio" for item in listed)


def test_a_crypto_escalation_names_every_missing_field_on_its_own_line(
    url: str, tmp_path: Path
) -> None:
    number = opened(
        url, "ZD-3001", "cust-9", "Withdrawal stuck", "--plan", "pro", "--crypto",
        "--context-file", context_file(tmp_path, TECHNICAL), "--checklist", "troubleshooting_done",
    )  # fmt: skip
    stderr = refused(url, "escalate", f"CASE-{number}", "tier_2", "stuck for two days")
    lines = stderr.splitlines()
    assert lines[0] == (
        f"incident: POST /cases/{number}/escalate refused (422) context missing or malformed:"
    )
    for field in ("transactions", "wallet_addresses", "user_attempts", "expected", "actual"):
        assert sum(line.startswith(f"  {field}: missing: give ") for line in lines) == 1, field
    assert "actions_taken" not in stderr  # given in the file
    assert "--override" in lines[-1]
    assert as_json(url, "show", str(number))["case"]["level"] == "tier_1"  # nothing written

    malformed = refused(
        url, "update", str(number),
        "--context", 'transactions:=[{"network": "evm", "hash": "0x12", "at": "2026-03-02T09:00"}]',
    )  # fmt: skip
    assert "  transactions[0].hash: not an EVM transaction hash (0x and 64 hex digits)" in (
        malformed.splitlines()
    )
    assert "  transactions[0].at: has no UTC offset; add one, like +00:00 or Z" in malformed

    transaction = {"network": "evm", "hash": EVM_HASH, "at": "2026-03-02T09:00:00Z"}
    wallet = {"network": "evm", "address": EVM_ADDRESS}
    ok(
        url, "update", str(number), "--context",
        f"transactions:={json.dumps([transaction])}", f"wallet_addresses:={json.dumps([wallet])}",
        "user_attempts=Retried twice", "expected=Funds arrive", "actual=Nothing arrived",
    )  # fmt: skip
    escalated = ok(url, "escalate", str(number), "tier_2", "stuck for two days")
    assert escalated.startswith(f"escalated: CASE-{number} P3 open at tier_2: Withdrawal stuck")


def test_a_manager_may_override_the_gate_an_agent_may_not(url: str) -> None:
    number = str(opened(url, "ZD-3002", "cust-10", "Odd error", "--plan", "pro"))
    gate = refused(url, "escalate", number, "tier_2", "odd", "--override", "on the phone")
    assert "refused (403)" in gate and "overriding the gate" in gate
    result = as_json(url, "escalate", number, "tier_2", "odd", "--override", "on the phone",
                     token=MANAGER)  # fmt: skip
    assert result["case"]["level"] == "tier_2"
    assert any(e["kind"] == "gate_overridden" for e in result["timeline"])


def test_an_agents_ceo_request_goes_to_the_cio_with_the_notice(url: str) -> None:
    number = str(
        opened(
            url, "ZD-4001", "cust-1", "Strategic customer threatens to leave", "--plan",
            "enterprise", "--context", "actions_taken=Called them twice",
            "--checklist", "troubleshooting_done",
        )
    )  # fmt: skip
    out = ok(url, "escalate", number, "ceo", "strategic customer")
    lines = out.splitlines()
    assert lines[0].startswith(f"escalated: CASE-{number} P3 open at cio: ")
    assert lines[1].startswith("notice: The CEO is reached only through the CIO")
    case = as_json(url, "show", number)["case"]
    assert case["level"] == "cio" and case["escalations"][-1]["recommends_ceo"]
    assert "(recommending the CEO)" in ok(url, "show", number)

    again = refused(url, "escalate", number, "ceo", "please")
    assert "refused (403)" in again and "only the CIO may" in again
    by_cio = as_json(url, "escalate", number, "ceo", "the CIO takes it on", token=CIO)
    assert (by_cio["case"]["level"], by_cio["notice"]) == ("ceo", None)


def test_decisions_by_the_named_approver_and_resolution_waits_for_them(url: str) -> None:
    ref = as_json(
        url, "open", "ZD-5001", "cust-5", "USDT payout", "--plan", "pro",
        "--flag", "usdt_withdrawal", "--usdt-amount", "2500",
    )["case"]["ref"]  # fmt: skip
    assert "  needed from cio, ceo; still waiting for cio, ceo" in ok(url, "show", ref)

    early = refused(url, "resolve", ref, "paid out")
    assert "refused (409)" in early and "waits for the decision of: cio, ceo" in early
    agent = refused(url, "approve", ref, "cio", "looks fine")
    assert "refused (403)" in agent and "alice (agent) may not decide as the CIO" in agent
    assert "only the CEO may" in refused(url, "approve", ref, "ceo", "ok", token=CIO)

    approved = ok(url, "approve", ref, "CIO", "verified the wallet", token=CIO)
    assert approved.startswith(f"approved as the CIO: {ref} ")
    assert "  waiting for    the decision of ceo" in approved
    declined = ok(url, "approve", ref, "ceo", "not this time", "--decline", token=CEO)
    assert declined.startswith(f"declined as the CEO: {ref} ")
    shown = ok(url, "show", ref)
    assert "  cio approved by dana " in shown and "  ceo declined by erik " in shown

    resolved = ok(url, "resolve", ref, "Payout refused; customer told")
    assert resolved.startswith(f"resolved: {ref} P3 resolved at cio: USDT payout")
    [line] = [line for line in ok(url, "list", "--status", "resolved").splitlines() if ref in line]
    assert line.endswith("  [resolved] USDT payout")  # a case not open is marked
    assert "  resolved " in ok(url, "show", ref)


def test_note_confirm_update_and_deescalate(url: str, tmp_path: Path) -> None:
    number = str(
        opened(
            url, "ZD-6001", "cust-6", "Export fails", "--plan", "pro",
            "--context-file", context_file(tmp_path, TECHNICAL),
            "--checklist", "troubleshooting_done",
        )
    )  # fmt: skip
    answered = ok(url, "note", number, "Asked for the export id", "--to-customer")
    assert answered.startswith(f"answer to the customer recorded: CASE-{number}")
    assert "  SLA            met, " in answered
    assert ok(url, "note", number, "Looked at the logs").startswith("note added: ")

    updated = as_json(
        url, "update", number, "--priority", "P2", "--expected-resolution", "+2d",
        "--flag", "customer_requested", "--no-crypto",
    )  # fmt: skip
    assert updated["case"]["priority"] == "P2" and updated["case"]["flags"] == [
        "customer_requested"
    ]
    assert updated["case"]["expected_resolution_at"] is not None
    nothing = refused(url, "update", number)
    assert "refused (422)" in nothing and "give at least one field to change" in nothing

    ok(url, "escalate", number, "tier_2", "needs L2")
    assert ok(url, "confirm", number).startswith(f"receipt confirmed: CASE-{number}")
    assert "received by alice" in ok(url, "show", number)
    down = ok(url, "deescalate", number, "tier-1", "workaround-given", "Use CSV for now")
    assert down.startswith(f"de-escalated (workaround given): CASE-{number} P2 open at tier_1")


def test_mistakes_are_readable_and_exit_non_zero(url: str, tmp_path: Path) -> None:
    assert "is not a case id (e.g. 12 or CASE-12)" in refused(url, "show", "INC-3", code=2)
    assert "refused (404)" in refused(url, "show", "CASE-999999")
    bad_level = refused(url, "escalate", "1", "boss", "x", code=2)
    assert "invalid choice: 'boss' (choose from 'tier_1', 'tier_2'" in bad_level
    bad_flag = refused(url, "open", "ZD-9", "c", "s", "--plan", "pro", "--flag", "angry", code=2)
    assert "'legal_threat'" in bad_flag
    both = refused(url, "open", "ZD-9", "c", "s", "--plan", "pro", "--context", "a=b",
                   "--context-file", context_file(tmp_path, {}), code=2)  # fmt: skip
    assert "not allowed with argument" in both
    missing = refused(url, "open", "ZD-9", "c", "s", "--plan", "pro",
                      "--context-file", str(tmp_path / "none.json"), code=2)  # fmt: skip
    assert "cannot read " in missing
    amount = refused(url, "open", "ZD-9", "c", "s", "--plan", "pro", "--disputed-amount", "lots")
    assert "refused (422)" in amount and "  disputed_amount: " in amount
    twice = refused(url, "open", "ZD-9", "c", "s", "--plan", "pro",
                    "--context", "expected=a", "expected=b")  # fmt: skip
    assert "--context expected is given twice" in twice


def declared(url: str, title: str) -> int:
    response = httpx.post(
        f"{url}/api/v1/incidents",
        json={"title": title, "severity": "P2"},
        headers={"Authorization": f"Bearer {AGENT}"},
    )
    assert response.status_code == 201, response.text
    number: int = response.json()["incident"]["id"]
    return number


def test_link_a_case_list_the_incidents_cases_and_unlink_it(url: str) -> None:
    incident = declared(url, "Ethereum withdrawals delayed")
    first = opened(url, "ZD-7001", "cust-71", "Withdrawal late", "--plan", "pro",
                   "--category", " Withdrawals ", "--component", "Ethereum")  # fmt: skip
    second = opened(url, "ZD-7002", "cust-72", "Withdrawal late too", "--plan", "starter")
    third = opened(url, "ZD-7003", "cust-71", "Still late", "--plan", "pro")

    linked = ok(url, "link", f"CASE-{first}", f"INC-{incident}")
    assert linked.startswith(f"linked to INC-{incident}: CASE-{first} P3 open at tier_1: ")
    ok(url, "link", str(second), str(incident))
    ok(url, "link", str(third), f"inc-{incident}")
    shown = ok(url, "show", str(first)).splitlines()
    assert "  category       Withdrawals" in shown and "  component      Ethereum" in shown
    assert any(line.startswith(f"  incident       INC-{incident} (linked ") for line in shown)

    listing = ok(url, "list", "--incident", f"INC-{incident}").splitlines()
    assert [line.split()[:5] for line in listing[:-1]] == [
        [f"CASE-{first}", "ZD-7001", "cust-71", "open", "tier_1"],
        [f"CASE-{second}", "ZD-7002", "cust-72", "open", "tier_1"],
        [f"CASE-{third}", "ZD-7003", "cust-71", "open", "tier_1"],
    ]
    assert listing[-1] == "2 distinct customers affected"
    assert as_json(url, "list", "--incident", str(incident))["customers"] == 2

    unlinked = ok(url, "unlink", f"CASE-{second}")
    assert unlinked.startswith(f"unlinked: CASE-{second} ")
    assert f"CASE-{second}" not in ok(url, "list", "--incident", str(incident))
    assert "  incident " not in ok(url, "show", str(second))

    updated = as_json(url, "update", str(first), "--category", "KYC", "--component", "")
    assert (updated["case"]["category"], updated["case"]["component"]) == ("KYC", "")
    other = declared(url, "Nothing linked")
    assert ok(url, "list", "--incident", str(other)) == "no cases are linked to this incident\n"


def test_link_mistakes_are_readable_and_change_nothing(url: str) -> None:
    incident = declared(url, "Logins failing")
    number = str(opened(url, "ZD-7101", "cust-81", "Cannot log in", "--plan", "pro"))

    assert "refused (404)" in refused(url, "link", number, "999999")
    assert "there is no incident 999999" in refused(url, "link", number, "999999")
    bad = refused(url, "link", number, "CASE-3", code=2)
    assert "'CASE-3' is not an incident id (e.g. 42 or INC-42)" in bad
    not_linked = refused(url, "unlink", number)
    assert "refused (409)" in not_linked and f"CASE-{number} is not linked" in not_linked
    ok(url, "link", number, str(incident))
    twice = refused(url, "link", number, str(incident))
    assert f"CASE-{number} is linked to INC-{incident} already" in twice
    both = refused(url, "list", "--incident", str(incident), "--status", "open")
    assert "leave out --status and --level" in both
    long = refused(url, "update", number, "--category", "x" * 101)
    assert "refused (422)" in long and "  category: " in long
    assert as_json(url, "show", number)["case"]["category"] == ""
