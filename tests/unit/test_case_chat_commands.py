"""The `/incident case ...` parser: each command, its keys in the API's terms, and every
problem it can see without the API's rules (those are the request models', at the door)."""

from __future__ import annotations

import re

import pytest

from incident.domain.case_chat_commands import (
    CASE_COMMANDS,
    ApproveCase,
    CaseCommand,
    CaseHelp,
    CaseNote,
    CaseSent,
    CaseUsage,
    ConfirmReceipt,
    DeclineCase,
    DeescalateCase,
    EscalateCase,
    LinkCase,
    ListCases,
    OpenCase,
    ResolveCase,
    ShowCase,
    UnlinkCase,
    UpdateCase,
    case_help_text,
    parse_case,
)
from incident.domain.chat_commands import Usage, help_text, parse

TX = "0x" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", CaseHelp()),
        ("help", CaseHelp()),
        (
            "open ZD-77 cust-9 PRO Withdrawal &amp; refund priority: p2 "
            "flags: legal_threat, media_contact email: <mailto:sam@example.com|sam@example.com>",
            OpenCase(
                reference="ZD-77",
                customer_id="cust-9",
                plan="pro",
                summary="Withdrawal & refund",
                facts={
                    "priority": "P2",
                    "flags": ["legal_threat", "media_contact"],
                    "customer_email": "sam@example.com",
                },
            ),
        ),
        (
            "open ZD-1 c-1 starter Note: the customer expected: a refund",
            OpenCase(
                reference="ZD-1",
                customer_id="c-1",
                plan="starter",
                summary="Note: the customer expected: a refund",  # context keys stay text
            ),
        ),
        ("show 12", ShowCase(case_id=12)),
        ("show CASE-12", ShowCase(case_id=12)),
        ("view #12", ShowCase(case_id=12)),
        ("list", ListCases()),
        ("list Tier-2", ListCases(level="tier_2")),
        ("note 3 Called them: no answer", CaseNote(case_id=3, note="Called them: no answer")),
        (
            "sent 3 Told them <@U1|bob> is on it",
            CaseSent(case_id=3, note="Told them @bob is on it"),
        ),
        (
            "escalate 12 tier2 customer still blocked",
            EscalateCase(case_id=12, level="tier_2", reason="customer still blocked"),
        ),
        (
            "escalate 12 tier_2 blocked urgent: payroll tonight override: no time",
            EscalateCase(
                case_id=12,
                level="tier_2",
                reason="blocked",
                urgent="payroll tonight",
                override="no time",
            ),
        ),
        ("confirm 4", ConfirmReceipt(case_id=4)),
        (
            "de-escalate 4 tier_1 Waiting_For_Customer asked for logs",
            DeescalateCase(
                case_id=4, level="tier_1", why="waiting_for_customer", note="asked for logs"
            ),
        ),
        ("approve 5 CIO verified", ApproveCase(case_id=5, level="cio", note="verified")),
        ("decline 5 ceo too much", DeclineCase(case_id=5, level="ceo", note="too much")),
        ("resolve 5 Paid out", ResolveCase(case_id=5, resolution="Paid out")),
        ("link CASE-12 INC-7", LinkCase(case_id=12, incident_id=7)),
        ("link #12 inc-7", LinkCase(case_id=12, incident_id=7)),
        ("link 12 to #7", LinkCase(case_id=12, incident_id=7)),
        ("link 12 7", LinkCase(case_id=12, incident_id=7)),
        ("unlink CASE-12", UnlinkCase(case_id=12)),
        (
            "open ZD-1 c-1 pro Late withdrawal category: Withdrawals on chain component: Ethereum",
            OpenCase(
                reference="ZD-1",
                customer_id="c-1",
                plan="pro",
                summary="Late withdrawal",
                facts={"category": "Withdrawals on chain", "component": "Ethereum"},
            ),
        ),
        ("set 3 component: Bitcoin", UpdateCase(case_id=3, changes={"component": "Bitcoin"})),
    ],
)
def test_each_command(text: str, expected: CaseCommand) -> None:
    assert parse_case(text) == expected
    assert parse(f"case {text}") == expected


def test_set_puts_facts_and_context_in_the_apis_terms() -> None:
    parsed = parse_case(
        f"set 3 priority: P1 contacts: 4 crypto: yes usdt: 250.5 checklist: troubleshooting_done "
        f"actions_taken: Checked the ledger; resent it previous_escalations: 2 "
        f"tx: evm {TX} 2026-03-01T10:00Z transactions: bitcoin {'cd' * 32} 2026-03-02T10:00Z "
        f"wallet: evm 0xabc evidence: <https://docs.example.com/a> evidence: screenshot"
    )
    assert parsed == UpdateCase(
        case_id=3,
        changes={
            "priority": "P1",
            "contacts": 4,
            "crypto": True,
            "usdt_amount": "250.5",
            "checklist": ["troubleshooting_done"],
            "context": {
                "actions_taken": "Checked the ledger; resent it",
                "previous_escalations": 2,
                "transactions": [
                    {"network": "evm", "hash": TX, "at": "2026-03-01T10:00Z"},
                    {"network": "bitcoin", "hash": "cd" * 32, "at": "2026-03-02T10:00Z"},
                ],
                "wallet_addresses": [{"network": "evm", "address": "0xabc"}],
                "evidence": ["https://docs.example.com/a", "screenshot"],
            },
        },
    )


def test_values_the_parser_cannot_judge_go_on_as_typed_for_the_apis_rules() -> None:
    parsed = parse_case("set 3 contacts: many crypto: perhaps priority: P9 plan: gold")
    assert parsed == UpdateCase(
        case_id=3,
        changes={"contacts": "many", "crypto": "perhaps", "priority": "P9", "plan": "gold"},
    )


@pytest.mark.parametrize(
    ("text", "problems", "command"),
    [
        ("frobnicate", ["unknown case command 'frobnicate'"], "case"),
        ("open ZD-1 c-1", ["case open needs the plan, a summary"], "case open"),
        ("open ZD-1 c-1 pro", ["case open needs a summary"], "case open"),
        (
            "open ZD-1 c-1 pro Broken priority: P2 now flags:",
            ["priority: takes one word (got 'P2 now')", "flags: needs a value after it"],
            "case open",
        ),
        ("show", ["case show needs the case first: 12, #12 or CASE-12"], "case show"),
        ("show INC-3", ["case show needs the case first: 12, #12 or CASE-12, not 'INC-3'"], None),
        ("show 0", None, "case show"),
        ("show 3 please", ["case show takes nothing after the case (got 'please')"], None),
        ("list cio tier_2", ["case list takes one level at most (got 'cio tier_2')"], None),
        ("set 3", ["case set needs a key: value, like priority: P2"], "case set"),
        ("set 3 hello", ["case set takes key: value pairs; 'hello' is not one"], None),
        (
            "set 3 action_taken: x",
            ["'action_taken' is not a key; did you mean actions_taken:?"],
            None,
        ),
        (
            "set 3 priority: P1 priority: P2 tx: evm 0xab",
            [
                "priority: is given twice",
                "tx: takes network, hash, at, like evm 0xab… 2026-03-01T10:00Z (got 'evm 0xab')",
            ],
            None,
        ),
        ("note 3", ["case note needs what was done, after the case"], None),
        ("sent 3", ["case sent needs what the customer was sent, after the case"], None),
        ("escalate 3", ["case escalate needs the level to go to, then the reason"], None),
        ("escalate 3 tier_2", ["case escalate needs the reason"], None),
        ("escalate 3 tier_2 x urgent:", ["urgent: needs a value after it"], None),
        (
            "deescalate 3 tier_1 premature",
            ["case deescalate needs the level, why, then a note"],
            None,
        ),
        (
            "approve 3 cio",
            ["case approve needs whose decision it is (cio or ceo), then a note"],
            None,
        ),
        ("resolve 3", ["case resolve needs the resolution, after the case"], None),
        ("link 3", ["case link needs the incident after the case: INC-7"], "case link"),
        ("link INC-7", ["case link needs the case first: 12, #12 or CASE-12, not 'INC-7'"], None),
        (
            "link 3 CASE-4",
            ["case link needs the incident after the case: INC-7, not 'CASE-4'"],
            None,
        ),
        (
            "link 3 INC-7 INC-8",
            ["case link needs the incident after the case: INC-7, not 'INC-7 INC-8'"],
            None,
        ),
        ("link 3 INC-0", None, "case link"),
        ("unlink", ["case unlink needs the case first: 12, #12 or CASE-12"], "case unlink"),
        ("unlink 3 INC-7", ["case unlink takes nothing after the case (got 'INC-7')"], None),
    ],
)
def test_what_the_parser_refuses(
    text: str, problems: list[str] | None, command: str | None
) -> None:
    parsed = parse_case(text)
    assert isinstance(parsed, CaseUsage), parsed
    assert isinstance(parsed, Usage)  # the door answers it as any usage problem
    if problems is not None:
        assert list(parsed.problems or (parsed.problem,)) == problems
    if command is not None:
        assert parsed.command == command


def test_several_problems_are_listed_one_a_line_with_the_usage() -> None:
    parsed = parse_case("set 3 priority: P1 priority: P2 crypto: yes no")
    assert isinstance(parsed, CaseUsage)
    assert parsed.text("/incident").splitlines() == [
        "• priority: is given twice",
        "• crypto: takes one word (got 'yes no')",
        "Usage: `/incident case set &lt;case&gt; &lt;key: value&gt; [key: value ...]`",
        "`/incident case help` lists the case commands and keys.",
    ]


def test_a_case_command_names_no_incident() -> None:
    parsed = parse("INC-3 case show 1")
    assert isinstance(parsed, Usage) and parsed.problem == "case takes no incident id"


# Slack reads `<...>` as a link, a mention or a command and `&` as the start of an entity.
_RAW = re.compile(r"[<>]|&(?!amp;|lt;|gt;)")


def test_the_help_lists_every_case_command_escaped_for_slack() -> None:
    text = case_help_text("/incident")
    for name, _, _ in CASE_COMMANDS:
        assert f"`/incident case {name}" in text
    assert "`transactions:`" in text and "`actions_taken:`" in text and "`flags:`" in text
    assert "`category:`" in text and "`component:`" in text
    assert _RAW.search(text) is None, _RAW.findall(text)
    assert "`/incident case &lt;open|show|list|" in help_text("/incident")
    for text in ("frobnicate <b>", "open", "set 3 x", "escalate 3 tier_2 x urgent:"):
        parsed = parse_case(text)
        assert isinstance(parsed, CaseUsage)
        assert _RAW.search(parsed.text()) is None, parsed.text()
