"""`/incident case ...` over real HTTP, signed as Slack signs: support cases opened, shown,
escalated and decided from Slack, by the case use cases and the API's own request models
(a value the API refuses is refused here by the same rule, every problem named), with the
support roles of the Slack users' names, behind the same signature and replay checks as
the incident commands."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from incident.clock import FakeClock
from incident.config import Settings
from incident.domain.access import AccessRole
from incident.domain.case import CaseStatus
from incident.domain.case_access import parse_support_roles
from incident.domain.case_routing import Level
from incident.services import cases as uc
from incident.services.cases import Support
from incident.testing import RecordingEffects
from incident.web.context import CONTAINER
from tests.integration.test_slack import (
    LEAD,
    RESPONDER,
    SECRET,
    ResponseUrlFake,
    Slack,
    database_path,
    receiver,  # noqa: F401 (a fixture)
    sign,
)
from tests.serving import serving

AGENT = RESPONDER  # anyone in the workspace works cases as an agent
MANAGER, CIO, CEO, VIEWER = "U0MGR", "U0CIO", "U0CEO", "U0VIEW"
# Support roles go by the name people act under: a Slack user's is their mention.
SUPPORT_ROLES = f"<@{MANAGER}>=manager, <@{CIO}>=cio, <@{CEO}>=ceo"
TX = "0x" + "ab" * 32
ADDRESS = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"  # EIP-55's own example
# Slack would read these as markup: what we send may carry them only as entities, but for
# the tokens we write ourselves (user mentions, dates) and the quotes' `>` at a line's start.
_RAW = re.compile(r"[<>]|&(?!amp;|lt;|gt;)")
_OURS = re.compile(r"<@[UW][A-Z0-9]+>|<!date\^\d+\^[^<>|]*\|[^<>]*>|^>", re.MULTILINE)


def raw_markup(text: str) -> list[str]:
    return _RAW.findall(_OURS.sub("", text))


# The technical context an escalation to tier 2 needs, as `case set` takes it.
TECHNICAL = (
    "actions_taken: Checked the ledger customer_plan: pro account_value: 1200 "
    "previous_escalations: 0 customer_impact: Funds not received troubleshooting: Resent "
    "the webhook, no change customer_expectation: Funds today requested_actions: Trace it "
    "checklist: troubleshooting_done"
)


@pytest.fixture
def case_settings(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings,
        slack_signing_secret=SECRET,
        slack_roles={VIEWER: AccessRole.VIEWER},
        support_roles=parse_support_roles(SUPPORT_ROLES),
    )


@pytest.fixture
async def slack(
    case_settings: Settings,
    clock: FakeClock,
    vendor: RecordingEffects,
    receiver: ResponseUrlFake,  # noqa: F811 (the fixture imported above)
) -> AsyncIterator[Slack]:
    async with serving(case_settings, clock, vendor) as client:
        yield Slack(client=client, clock=clock, response_url=receiver.url)


def support(slack: Slack) -> Support:
    server = slack.client.server
    assert isinstance(server, TestServer)
    return server.app[CONTAINER].support


def case_rows(settings: Settings) -> dict[str, int]:
    """The cases and what people did to them (not what the engine's clock did meanwhile:
    it compares each new case with the others in the background)."""
    with sqlite3.connect(database_path(settings)) as db:
        return {
            "cases": db.execute("SELECT count(*) FROM cases").fetchone()[0],
            "case_timeline": db.execute(
                "SELECT count(*) FROM case_timeline WHERE actor != 'clock'"
            ).fetchone()[0],
        }


async def open_case(slack: Slack, text: str, user: str = AGENT) -> int:
    reply = await slack.command(f"case open {text}", user=user)
    assert reply.public, reply.text
    found = re.search(r"\*CASE-(\d+)\* opened by", reply.text)
    assert found, reply.text
    return int(found.group(1))


# --- open, show, list ----------------------------------------------------------------------


async def test_a_case_opened_from_slack_is_shown_with_its_clock_needs_and_steps(
    slack: Slack,
) -> None:
    opened = await slack.command(
        "case open ZD-77 cust-9 pro Withdrawal not received priority: p2", user=AGENT
    )
    assert opened.public
    assert opened.text.startswith(
        f"*CASE-1* opened by <@{AGENT}> for ticket ZD-77 (customer cust-9, pro, P2):\n"
        ">Withdrawal not received"
    )
    assert "It is at *tier_1*." in opened.text
    case = (await uc.read_case(support(slack), 1)).case
    assert (case.reference, case.priority.value, case.opened_by) == ("ZD-77", "P2", f"<@{AGENT}>")

    shown = await slack.command("case show CASE-1", user=VIEWER)
    assert not shown.public
    text = shown.text
    assert text.startswith("*CASE-1* · ticket ZD-77 · customer cust-9 · pro · P2 · open")
    assert "At *tier_1* since <!date^" in text and "Response clock: running, due <!date^" in text
    # What escalating still needs: every field, each with what to give, one a line.
    assert "Escalating to *tier_2* still needs:" in text
    for field in ("actions_taken", "customer_impact", "checklist.troubleshooting_done"):
        assert re.search(rf"^• {re.escape(field)}: ", text, re.MULTILINE), field
    assert "• reason:" not in text  # the reason is the escalate command's
    assert "Next steps:" in text and "Latest:" in text
    assert f"<@{AGENT}>: Opened at tier_1 (P2, pro): Withdrawal not received" in text

    listed = await slack.command("case list tier_1", user=VIEWER)
    assert not listed.public
    assert "• *CASE-1* tier_1 P2 ticket ZD-77: Withdrawal not received" in listed.text
    empty = await slack.command("case list cio")
    assert empty.text.startswith("No case is open at *cio*.")
    wrong = await slack.command("case list attic")
    assert not wrong.public and "• level: not a level; give one of tier_1" in wrong.text


async def test_a_legal_threat_flagged_from_slack_goes_to_the_cio_and_says_why(
    slack: Slack,
) -> None:
    case_id = await open_case(
        slack, "ZD-80 cust-3 enterprise Says they will sue flags: legal_threat,media_contact"
    )
    view = await uc.read_case(support(slack), case_id)
    assert view.case.level is Level.CIO
    assert {f.value for f in view.case.flags} == {"legal_threat", "media_contact"}

    shown = await slack.command(f"case show {case_id}")
    assert "At *cio*" in shown.text
    assert "CIO because: legal threat" in shown.text
    assert "• CIO because: legal threat; media contact (automatic, cannot wait)" in shown.text
    assert "Came from tier_1: CIO because: legal threat; media contact\n" in shown.text
    assert f"Receipt not confirmed yet: `/incident case confirm {case_id}`." in shown.text

    confirmed = await slack.command(f"case confirm {case_id}", user=CIO)
    assert confirmed.public
    assert confirmed.text == (
        f"Receipt of *CASE-{case_id}* at *cio* confirmed by <@{CIO}>: its response clock is met."
    )


async def test_user_text_is_escaped_for_slack(slack: Slack) -> None:
    case_id = await open_case(slack, "ZD-81 c&amp;1 pro Refund &lt;now&gt; &amp; <!channel> please")
    assert (await uc.read_case(support(slack), case_id)).case.summary == (
        "Refund <now> & @channel please"
    )
    for reply in (
        await slack.command(f"case show {case_id}"),
        await slack.command(f"case note {case_id} <!here> &lt;b&gt;bold&lt;/b&gt;"),
        await slack.command("case list"),
    ):
        assert raw_markup(reply.text) == [], reply.text
        assert "<!channel>" not in reply.text and "<!here>" not in reply.text
    shown = await slack.command(f"case show {case_id}")
    assert ">Refund &lt;now&gt; &amp; @channel please" in shown.text
    assert "customer c&amp;1" in shown.text


# --- escalation: the gate, the CEO through the CIO -----------------------------------------


async def test_a_crypto_escalation_without_context_lists_every_missing_field(
    slack: Slack, case_settings: Settings
) -> None:
    case_id = await open_case(slack, "ZD-90 cust-4 pro USDC withdrawal missing crypto: yes")
    sp = support(slack)
    case = (await uc.read_case(sp, case_id)).case
    expected = [p.field for p in uc.gate_problems(case, Level.TIER_2, "funds missing")]
    assert {"transactions", "wallet_addresses", "user_attempts", "expected", "actual"} <= set(
        expected
    )
    before = case_rows(case_settings)

    refused = await slack.command(f"case escalate {case_id} tier_2 funds missing")
    assert not refused.public
    lines = refused.text.splitlines()
    assert lines[0] == f"*CASE-{case_id}* cannot be escalated to tier_2 yet; it lacks:"
    # Every missing field, one a line, in the domain's order: the same list as the API's.
    assert [line.split(":")[0].removeprefix("• ") for line in lines[1:-1]] == expected
    assert "• transactions: missing: give the transactions (network, hash and time of each)" in (
        lines
    )
    assert f"`/incident case set {case_id} key: value ...`" in lines[-1]
    assert "override: &lt;why&gt;" in lines[-1]
    assert (await uc.read_case(sp, case_id)).case.level is Level.TIER_1
    assert case_rows(case_settings) == before  # a refusal changes nothing

    # A malformed hash is named where it is; then the context given in chat lets it go.
    bad = await slack.command(f"case set {case_id} tx: evm 0x1234 2026-03-01T10:00:00Z")
    assert not bad.public and "• transactions[0].hash: not an EVM transaction hash" in bad.text
    updated = await slack.command(
        f"case set {case_id} {TECHNICAL} tx: evm {TX} 2026-03-01T10:00:00Z "
        f"wallet: evm {ADDRESS} user_attempts: Retried twice expected: 1000 USDC "
        "actual: nothing arrived"
    )
    assert updated.public, updated.text
    assert f"*CASE-{case_id}* updated by <@{AGENT}>:" in updated.text
    assert "Escalating to *tier_2* needs only a reason" in updated.text
    went = await slack.command(f"case escalate {case_id} tier-2 funds missing")
    assert went.public, went.text
    assert f"*CASE-{case_id}* escalated tier_1 → *tier_2* by <@{AGENT}>" in went.text
    assert "Receipt is due <!date^" in went.text
    assert (await uc.read_case(sp, case_id)).case.level is Level.TIER_2
    shown = await slack.command(f"case show {case_id}")
    assert f"Came from tier_1, escalated by <@{AGENT}> (by hand): funds missing" in shown.text


async def test_an_agents_ceo_request_shows_the_notice_and_goes_to_the_cio(slack: Slack) -> None:
    case_id = await open_case(slack, "ZD-91 cust-5 enterprise Key account wants the CEO")
    await slack.command(f"case set {case_id} {TECHNICAL}")
    reply = await slack.command(f"case escalate {case_id} ceo key account at risk", user=AGENT)
    assert reply.public, reply.text
    assert f"escalated tier_1 → *cio* by <@{AGENT}>" in reply.text
    assert (
        "The CEO is reached only through the CIO: escalated to the CIO, recommending the CEO; "
        "the CIO decides whether it goes on." in reply.text
    )
    view = await uc.read_case(support(slack), case_id)
    assert view.case.level is Level.CIO
    assert view.case.escalations[-1].recommends_ceo

    # Only the CIO routes it on to the CEO: a manager is refused, readably.
    manager = await slack.command(f"case escalate {case_id} ceo on", user=MANAGER)
    assert not manager.public
    assert manager.text == (
        f"Not allowed: <@{MANAGER}> (manager) may not route a case to the CEO; only the CIO may."
    )
    cio = await slack.command(f"case escalate {case_id} ceo strategic customer", user=CIO)
    assert cio.public and "→ *ceo*" in cio.text
    assert (await uc.read_case(support(slack), case_id)).case.level is Level.CEO


async def test_a_manager_overrides_the_gate_and_an_urgent_note_makes_it_cannot_wait(
    slack: Slack,
) -> None:
    case_id = await open_case(slack, "ZD-92 cust-6 pro Payroll export fails")
    agent = await slack.command(f"case escalate {case_id} tier_2 blocked override: no time")
    assert not agent.public and agent.text.startswith(f"Not allowed: <@{AGENT}> (agent)")
    urgent = await slack.command(
        f"case escalate {case_id} tier_2 payroll blocked urgent: payroll runs tonight "
        "override: customer on the phone, context follows",
        user=MANAGER,
    )
    assert urgent.public, urgent.text
    assert "cannot wait" in urgent.text
    assert (
        "Escalated without actions_taken, customer_plan, account_value, previous_escalations, "
        "customer_impact, troubleshooting, customer_expectation, requested_actions, "
        "checklist.troubleshooting_done: customer on the phone, context follows "
        "(a manager's override)" in urgent.text
    )
    current = (await uc.read_case(support(slack), case_id)).case.current
    assert current is not None and current.urgency.value == "cannot_wait"
    assert current.urgency_note == "payroll runs tonight"

    back = await slack.command(
        f"case deescalate {case_id} tier_1 waiting_for_customer asked for the export file"
    )
    assert back.public
    assert f"*CASE-{case_id}* sent back to *tier_1* by <@{AGENT}> (waiting for customer):" in (
        back.text
    )


# --- decisions, progress, resolution -------------------------------------------------------


async def test_a_decision_by_someone_not_the_approver_is_refused_readably(slack: Slack) -> None:
    case_id = await open_case(
        slack, "ZD-93 cust-7 pro USDT withdrawal flags: usdt_withdrawal usdt: 250.5"
    )
    shown = await slack.command(f"case show {case_id}")
    assert "Waiting for the decision of: cio, ceo" in shown.text

    for user, text in (
        (AGENT, f"case approve {case_id} cio verified"),
        (CEO, f"case approve {case_id} cio verified"),
        (CIO, f"case decline {case_id} ceo no"),
    ):
        refused = await slack.command(text, user=user)
        assert not refused.public
        assert refused.text.startswith(f"Not allowed: <@{user}> ("), refused.text
        assert "may not decide as the" in refused.text
    assert (await uc.read_case(support(slack), case_id)).case.approvals == []

    early = await slack.command(f"case resolve {case_id} paid out")
    assert not early.public
    assert early.text == f"Not now: CASE-{case_id} waits for the decision of: cio, ceo."

    cio = await slack.command(f"case approve {case_id} CIO verified on chain", user=CIO)
    assert cio.public
    assert cio.text.startswith(f"The CIO's decision on *CASE-{case_id}*: *approved* by <@{CIO}>")
    assert "Still waiting for: ceo." in cio.text
    ceo = await slack.command(f"case approve {case_id} ceo fine", user=CEO)
    assert "Every decision it needs is made" in ceo.text

    note = await slack.command(f"case note {case_id} Checked the chain")
    sent = await slack.command(f"case sent {case_id} Told them it is on its way")
    assert note.public and note.text.startswith(f"Note on *CASE-{case_id}*, by <@{AGENT}>:")
    assert sent.text.startswith(f"Answer sent to the customer of *CASE-{case_id}*")
    resolved = await slack.command(f"case resolve {case_id} Paid out")
    assert resolved.public and resolved.text.startswith(f"*CASE-{case_id}* resolved by")
    case = (await uc.read_case(support(slack), case_id)).case
    assert case.status is CaseStatus.RESOLVED
    assert case.last_customer_update_at is not None and case.first_response_at is not None


# --- refusals ------------------------------------------------------------------------------


async def test_bad_values_are_refused_by_the_apis_own_rules_every_problem_named(
    slack: Slack, case_settings: Settings
) -> None:
    bad = await slack.command(
        "case open ZD-94 cust-8 gold Broken priority: P9 flags: lawsuit,legal_threat "
        "email: not-an-address disputed: lots"
    )
    assert not bad.public
    lines = bad.text.splitlines()
    assert lines[0] == "Not accepted:"
    assert "• plan: Input should be 'starter', 'pro' or 'enterprise'" in lines
    assert "• priority:: Input should be 'P1', 'P2', 'P3' or 'P4'" in lines
    assert any(line.startswith("• flags: item 1: Input should be 'legal_threat'") for line in lines)
    assert "• email:: give one plain e-mail address, like sam@example.com" in lines
    assert "• disputed:: Input should be a valid decimal" in lines
    assert lines[-1].startswith("Usage: `/incident case open &lt;ticket&gt;")
    assert case_rows(case_settings)["cases"] == 0

    case_id = await open_case(slack, "ZD-95 cust-8 pro Fine")
    wrong = await slack.command(f"case escalate {case_id} tier9 because")
    assert "• level: Input should be 'tier_1', 'tier_2'" in wrong.text
    decide = await slack.command(f"case approve {case_id} cto ok", user=CIO)
    assert "• whose decision (cio or ceo): Input should be 'cio' or 'ceo'" in decide.text
    why = await slack.command(f"case deescalate {case_id} tier_1 bored note")
    assert "• why: Input should be 'resolved_at_higher_tier'" in why.text
    slip = await slack.command(f"case set {case_id} action_taken: checked")
    assert "'action_taken' is not a key; did you mean actions_taken:?" in slip.text
    usage = await slack.command("case escalate")
    assert usage.text.startswith("case escalate needs the case first: 12, #12 or CASE-12.")
    missing = await slack.command("case show 999")
    assert missing.text.startswith("there is no case 999 (CASE-999).")
    twice = await slack.command("case open ZD-95 cust-8 pro Again")
    assert not twice.public and twice.text.startswith("Not now: ticket 'ZD-95' has a case")
    for reply in (bad, wrong, decide, why, slip, usage, missing, twice):
        assert raw_markup(reply.text) == [], reply.text
    viewer = await slack.command("case open ZD-96 cust-8 pro Mine", user=VIEWER)
    assert viewer.text.startswith(f"Not allowed: <@{VIEWER}> (viewer, no support role)")
    assert case_rows(case_settings)["cases"] == 1

    metrics = await (await slack.client.get("/metrics")).text()
    assert 'incident_slack_commands_total{command="case open",result="invalid"} 1.0' in metrics
    assert 'incident_slack_commands_total{command="case escalate",result="usage"} 1.0' in metrics


async def test_case_commands_are_refused_unsigned_stale_or_forged_as_incident_commands_are(
    slack: Slack,
    case_settings: Settings,
    receiver: ResponseUrlFake,  # noqa: F811
) -> None:
    case_id = await open_case(slack, "ZD-97 cust-9 pro Withdrawal not received")
    await asyncio.sleep(0.1)
    before = case_rows(case_settings)
    now = int(slack.clock.now().timestamp())

    def refusals(text: str) -> list[tuple[bytes, dict[str, Any]]]:
        body = slack.form(text, user=CIO)
        other = slack.form("case list")
        return [
            (body, {"secret": "not-the-signing-secret"}),
            (body, {"timestamp": now - 301}),
            (body, {"timestamp": now + 301}),
            (body, {"signed": False}),
            (
                body,
                {
                    "signed": False,
                    "headers": {
                        "X-Slack-Request-Timestamp": str(now),
                        "X-Slack-Signature": sign(SECRET, now, other),
                    },
                },
            ),
        ]

    async def answers(text: str) -> list[tuple[int, dict[str, Any]]]:
        found = []
        for body, options in refusals(text):
            reply = await slack.post(body, **options)
            found.append((reply.status, reply.body))
        return found

    incident = await answers("note INC-1 harmless")
    for text in (
        f"case escalate {case_id} cio forged",
        f"case approve {case_id} cio forged",
        "case open ZD-98 cust-1 pro Forged",
        f"case resolve {case_id} forged",
    ):
        assert await answers(text) == incident, text
    assert {status for status, _ in incident} == {401}
    assert "301 s ago" in incident[1][1]["detail"] and "301 s ahead" in incident[2][1]["detail"]
    await asyncio.sleep(0.1)
    assert case_rows(case_settings) == before
    assert (await uc.read_case(support(slack), case_id)).case.level is Level.TIER_1
    assert receiver.messages == []


async def test_a_replayed_case_command_is_done_once(slack: Slack) -> None:
    case_id = await open_case(slack, "ZD-99 cust-9 pro Withdrawal not received")
    body = slack.form(f"case note {case_id} Called the customer")
    stamp = int(slack.clock.now().timestamp())
    first = await slack.post(body, timestamp=stamp)
    assert first.status == 200 and first.public
    slack.clock.advance(timedelta(seconds=20))
    replay = await slack.post(body, timestamp=stamp)
    assert replay.status == 200 and not replay.public
    assert replay.text.startswith("This exact request was already received, and done once")
    view = await uc.read_case(support(slack), case_id)
    assert [e.kind for e in view.timeline].count("progress") == 1


async def test_help_lists_the_case_commands_escaped_for_slack(slack: Slack) -> None:
    general = await slack.command("help")
    assert "`/incident case &lt;open|show|list|" in general.text
    helped = await slack.command("case help")
    assert not helped.public
    for usage in (
        "`/incident case open &lt;ticket&gt; &lt;customer-id&gt; &lt;starter|pro|enterprise&gt;",
        "`/incident case escalate &lt;case&gt; &lt;level&gt; &lt;reason&gt; [urgent: ",
        "`/incident case approve &lt;case&gt; &lt;cio|ceo&gt; &lt;note&gt;`",
        "`/incident case sent &lt;case&gt; &lt;text&gt;`",
        "`flags:` &lt;legal_threat,media_contact,...&gt;",
        "`transactions:` &lt;evm|bitcoin&gt; &lt;hash&gt;",
    ):
        assert usage in helped.text, usage
    assert raw_markup(helped.text) == []
    unknown = await slack.command("case frobnicate 3")
    assert unknown.text.startswith("unknown case command 'frobnicate'.\n*/incident case*")


# --- links to incidents ----------------------------------------------------------------------


async def test_a_case_linked_from_slack_hears_its_incident_until_unlinked(
    slack: Slack, case_settings: Settings
) -> None:
    incident = await slack.declare("P2 Ethereum withdrawals delayed")
    updated = await slack.command(f"INC-{incident} update Funds are safe.", user=LEAD)
    assert updated.public, updated.text
    case_id = await open_case(
        slack, "ZD-95 cust-7 pro Withdrawal late category: Withdrawals component: Ethereum"
    )
    sp = support(slack)
    case = (await uc.read_case(sp, case_id)).case
    assert (case.category, case.component) == ("Withdrawals", "Ethereum")

    linked = await slack.command(f"case link CASE-{case_id} INC-{incident}")
    assert linked.public, linked.text
    assert linked.text.splitlines() == [
        f"*CASE-{case_id}* linked to *INC-{incident}* by <@{AGENT}>: its customer hears "
        f"INC-{incident}'s updates and its resolution, each once.",
        f"INC-{incident}'s latest update is on its way to the customer.",
        f"`/incident case unlink {case_id}` stops it.",
    ]
    assert (await uc.read_case(sp, case_id)).case.incident_id == incident
    shown = await slack.command(f"case show {case_id}", user=VIEWER)
    assert "Category Withdrawals · component Ethereum" in shown.text
    assert f"Linked to *INC-{incident}* since <!date^" in shown.text

    unlinked = await slack.command(f"case unlink {case_id}")
    assert unlinked.public
    assert unlinked.text == (
        f"*CASE-{case_id}* unlinked from *INC-{incident}* by <@{AGENT}>: nothing more of "
        f"INC-{incident} reaches its customer."
    )
    assert (await uc.read_case(sp, case_id)).case.incident_id is None


async def test_a_resolved_incident_leaves_its_case_waiting_and_the_queue_says_so(
    slack: Slack,
) -> None:
    incident = await slack.declare("P2 Logins failing")
    case_id = await open_case(slack, "ZD-96 cust-8 pro Cannot log in")
    await slack.command(f"case link {case_id} {incident}")
    resolved = await slack.command(f"INC-{incident} resolve Session store restarted", user=LEAD)
    assert resolved.public, resolved.text
    assert (await uc.read_case(support(slack), case_id)).case.status is CaseStatus.PENDING

    shown = await slack.command(f"case show {case_id}")
    assert "*Waiting for the customer's confirmation* since <!date^" in shown.text
    assert "Resolved" not in shown.text
    listed = await slack.command("case list")
    assert (
        f"• *CASE-{case_id}* tier_1 P3 ticket ZD-96: Cannot log in "
        "(_waiting for the customer's confirmation_)" in listed.text
    )


async def test_link_refusals_are_ephemeral_readable_and_change_nothing(
    slack: Slack, case_settings: Settings
) -> None:
    incident = await slack.declare("P3 Slow exports")
    case_id = await open_case(slack, "ZD-97 cust-9 pro Export slow")
    before = case_rows(case_settings)

    missing = await slack.command(f"case link {case_id} INC-999")
    assert not missing.public
    assert missing.text.startswith("there is no incident 999. Usage: `/incident case link ")
    nothing = await slack.command(f"case unlink {case_id}")
    assert not nothing.public
    assert nothing.text == f"Not now: CASE-{case_id} is not linked to an incident."
    viewer = await slack.command(f"case link {case_id} INC-{incident}", user=VIEWER)
    assert not viewer.public and viewer.text.startswith("Not allowed: ")
    unreadable = await slack.command(f"case link {case_id} soon")
    assert not unreadable.public
    assert "case link needs the incident after the case: INC-7, not 'soon'" in unreadable.text
    long = await slack.command(f"case set {case_id} category: {'x' * 101}")
    assert not long.public and "• category:: String should have at most 100" in long.text
    assert case_rows(case_settings) == before

    await slack.command(f"case link {case_id} INC-{incident}")
    twice = await slack.command(f"case link {case_id} #{incident}")
    assert twice.text == f"Not now: CASE-{case_id} is linked to INC-{incident} already."
