"""`/incident candidate ...` over real HTTP, signed as Slack signs: three Pro customers'
cases about one stuck bridge transfer are opened from Slack, the engine (in the background,
as served) proposes an incident candidate, and people list, read, declare and dismiss it
from Slack. The API's request models judge what was typed (a severity, a title, a reason),
refusals go only to the person who typed them and change nothing, a decision is told to
the channel naming the incident, and everything people typed is escaped."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer

from incident.clock import FakeClock
from incident.config import Settings
from incident.domain.candidate_chat_commands import DeclareCandidate, DismissCandidate
from incident.domain.chat_commands import parse
from incident.domain.patterns import CandidateStatus
from incident.services import incidents as inc
from incident.services.patterns import Patterns
from incident.testing import RecordingEffects
from incident.web.context import CONTAINER
from tests.integration.test_slack import (
    LEAD,
    ResponseUrlFake,
    Slack,
    receiver,  # noqa: F401 (a fixture)
)
from tests.integration.test_slack_cases import (
    AGENT,
    VIEWER,
    case_settings,  # noqa: F401 (a fixture)
    open_case,
    raw_markup,
)
from tests.service.test_patterns import STUCK, posts
from tests.serving import serving

WAIT = 30.0  # seconds the engine may take to compare the cases in the background


@pytest.fixture
async def slack(
    case_settings: Settings,  # noqa: F811 (the fixture imported above)
    clock: FakeClock,
    vendor: RecordingEffects,
    receiver: ResponseUrlFake,  # noqa: F811 (the fixture imported above)
) -> AsyncIterator[Slack]:
    async with serving(case_settings, clock, vendor) as client:
        yield Slack(client=client, clock=clock, response_url=receiver.url)


def patterns(slack: Slack) -> Patterns:
    server = slack.client.server
    assert isinstance(server, TestServer)
    return server.app[CONTAINER].patterns


async def proposed(slack: Slack) -> tuple[int, list[int]]:
    """Three Pro customers' cases, opened from Slack; the candidate the engine proposes."""
    cases = [
        await open_case(
            slack, f"ZD-{6000 + n} cust-{n} pro {STUCK[n]} category: transfers component: bridge"
        )
        for n in range(3)
    ]
    deadline = asyncio.get_running_loop().time() + WAIT
    while not (found := await patterns(slack).candidates()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no incident candidate after {WAIT} s")
        await asyncio.sleep(0.05)
    assert found[0].id is not None
    return found[0].id, cases


async def test_a_candidate_is_listed_and_shown_with_its_evidence_to_the_one_who_asked(
    slack: Slack,
) -> None:
    empty = await slack.command("candidate list")
    assert not empty.public
    assert empty.text == (
        "No proposed incident candidates. `/incident candidate list all` lists every one."
    )
    number, cases = await proposed(slack)
    listed = await slack.command("candidate list", user=VIEWER)
    assert not listed.public
    lines = listed.text.splitlines()
    assert lines[0] == "Proposed incident candidates, newest first:"
    assert lines[1].startswith(
        f"• *CAND-{number}* proposed: suggested P2, 3 customers, proposed <!date^"
    )
    assert (await slack.command("candidate list declared")).text.startswith(
        "No declared incident candidates."
    )

    shown = await slack.command(f"candidate show CAND-{number}", user=VIEWER)
    assert not shown.public
    text = shown.text
    assert text.startswith(f"*CAND-{number}* · proposed · 3 customers (weighted 6.0) · proposed")
    for line in (
        "Signature: bridge transfer of &lt;amount&gt; usdc from ethereum to arbitrum stuck for "
        "&lt;num&gt; hours, tx &lt;tx&gt;",
        "Where: transfers / bridge",
        "*New*: this signature was not seen in the 30 days before it.",
        "Suggested severity: *P2*, as it affects multiple users (3 customers)",
        "Cases (3, of 3 distinct customers):",
        f"• *CASE-{cases[0]}* ticket ZD-6000, customer cust-0, pro, open",
        f"<http://127.0.0.1:8080/ui/candidates/{number}|The candidate on the dashboard>",
    ):
        assert line in text.splitlines(), (line, text)
    # What to type next, as the patterns channel's post says it.
    assert f"`/incident candidate declare CAND-{number}`" in text
    assert f"`/incident candidate dismiss CAND-{number} &lt;reason&gt;`" in text
    page = f"<http://127.0.0.1:8080/ui/candidates/{number}|The candidate on the dashboard>"
    assert raw_markup(text.replace(page, "")) == [], raw_markup(text)  # but the link we wrote

    missing = await slack.command("candidate show CAND-999")
    assert not missing.public
    assert missing.text == (
        "there is no candidate 999 (CAND-999). `/incident candidate list all` lists the candidates."
    )
    wrong = await slack.command("candidate list someday")
    assert not wrong.public
    assert "• status: 'someday' is not a status; give proposed, declared, dismissed" in wrong.text


async def test_declaring_from_slack_tells_the_channel_and_links_every_case(
    slack: Slack,
) -> None:
    number, cases = await proposed(slack)
    declared = await slack.command(
        f"candidate declare CAND-{number} p1 Bridge relayer &lt;stuck&gt;", user=LEAD
    )
    assert declared.public, declared.text
    (incident,) = await inc.list_incidents(slack.rt)
    assert incident.id is not None
    assert (incident.severity.value, incident.title) == ("P1", "Bridge relayer <stuck>")
    assert declared.text.splitlines() == [
        f"*CAND-{number}* declared as *INC-{incident.id}* by <@{LEAD}>: *P1* Bridge relayer "
        "&lt;stuck&gt;",
        "3 cases of 3 customers are linked to it: each customer hears its updates and its "
        "resolution.",
        f"`/incident next INC-{incident.id}` shows its next steps.",
    ]
    found = await patterns(slack).evidence(number)
    assert [c["id"] for c in found.cases] == cases
    assert {c["incident"] for c in found.cases} == {incident.id}
    shown = await slack.command(f"candidate show {number}")
    assert f"Declared as *INC-{incident.id}* by <@{LEAD}> <!date^" in shown.text

    again = await slack.command(f"candidate declare #{number}")
    assert again.public and f"declared as *INC-{incident.id}*" in again.text
    assert len(await inc.list_incidents(slack.rt)) == 1
    late = await slack.command(f"candidate dismiss {number} known issue")
    assert not late.public
    assert late.text == f"Not now: CAND-{number} was declared by <@{LEAD}>: it cannot dismiss."


async def test_its_cases_may_join_an_open_incident_from_slack(slack: Slack) -> None:
    number, _ = await proposed(slack)
    incident_id = await slack.declare("P2 Bridge relayer down")
    joined = await slack.command(f"candidate declare CAND-{number} INC-{incident_id}")
    assert joined.public, joined.text
    assert joined.text.startswith(
        f"*CAND-{number}* linked to the open incident *INC-{incident_id}* by <@"
    )
    assert "3 cases of 3 customers are linked to it" in joined.text
    found = await patterns(slack).evidence(number)
    assert {c["incident"] for c in found.cases} == {incident_id}


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("declare {n} P9 Bridge down", "• severity: Input should be 'P1', 'P2', 'P3' or 'P4'"),
        ("declare {n} P2 " + "x" * 201, "• title: String should have at most 200 characters"),
        ("declare {n} INC-999", "there is no incident 999."),
        ("dismiss {n} known \u202e issue", "• reason: is blank, or contains control characters"),
    ],
)
async def test_what_the_api_refuses_slack_refuses_to_the_one_who_typed_it(
    slack: Slack, typed: str, said: str | None
) -> None:
    number, _ = await proposed(slack)
    refused = await slack.command("candidate " + typed.format(n=number))
    assert not refused.public, refused.text
    if said is not None:
        assert said in refused.text, refused.text
    assert raw_markup(refused.text) == [], refused.text
    candidate = await patterns(slack).candidate(number)
    assert candidate.status is CandidateStatus.PROPOSED
    assert await inc.list_incidents(slack.rt) == []


async def test_a_viewer_may_look_but_not_decide(slack: Slack) -> None:
    number, _ = await proposed(slack)
    for typed in (f"declare {number}", f"dismiss {number} not ours"):
        refused = await slack.command(f"candidate {typed}", user=VIEWER)
        assert not refused.public
        assert refused.text.startswith("Not allowed: "), refused.text
    assert (await patterns(slack).candidate(number)).status is CandidateStatus.PROPOSED


async def test_dismissing_from_slack_says_why_and_quiets_the_signature(slack: Slack) -> None:
    number, _ = await proposed(slack)
    usage = await slack.command(f"candidate dismiss CAND-{number}")
    assert not usage.public and usage.text.startswith("candidate dismiss needs a reason")
    dismissed = await slack.command(
        f"candidate dismiss CAND-{number} Known: <https://status.example.com|the bridge's page> "
        "&amp; <!channel>",
        user=AGENT,
    )
    assert dismissed.public, dismissed.text
    assert dismissed.text.splitlines() == [
        f"*CAND-{number}* dismissed by <@{AGENT}>: not an incident.",
        ">Known: the bridge's page (https://status.example.com) &amp; @channel",
        "Its signature stays quiet for 7 days: new reports join it without proposing it again.",
    ]
    candidate = await patterns(slack).candidate(number)
    assert candidate.status is CandidateStatus.DISMISSED
    assert candidate.note == "Known: the bridge's page (https://status.example.com) & @channel"
    refused = await slack.command(f"candidate declare {number}")
    assert not refused.public
    assert refused.text == (
        f"Not now: CAND-{number} was dismissed by <@{AGENT}>: it cannot be declared."
    )
    listed = await slack.command("candidate list dismissed")
    assert re.search(rf"• \*CAND-{number}\* dismissed: .*\(Known: the bridge", listed.text)
    assert raw_markup(listed.text) == []


async def the_post(vendor: RecordingEffects) -> str:
    """The patterns channel's post of the candidate, once the engine has sent it."""
    deadline = asyncio.get_running_loop().time() + WAIT
    while not posts(vendor):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"nothing posted to the patterns channel after {WAIT} s")
        await asyncio.sleep(0.05)
    (post,) = posts(vendor)
    return post


async def test_the_commands_the_patterns_channels_post_names_are_these(
    slack: Slack, vendor: RecordingEffects
) -> None:
    number, _ = await proposed(slack)
    post = await the_post(vendor)
    typed = [line.strip() for line in post.splitlines() if line.strip().startswith("/incident ")]
    assert typed == [
        f"/incident candidate declare CAND-{number}",
        f"/incident candidate dismiss CAND-{number} <reason>",
    ]
    assert parse(typed[0].removeprefix("/incident ")) == DeclareCandidate(candidate_id=number)
    said = typed[1].removeprefix("/incident ").replace("<reason>", "not ours")
    assert parse(said) == DismissCandidate(candidate_id=number, reason="not ours")
    declared = await slack.command(typed[0].removeprefix("/incident "), user=LEAD)
    assert declared.public and declared.text.startswith(f"*CAND-{number}* declared as *INC-")
