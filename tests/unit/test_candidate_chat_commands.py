"""The `/incident candidate ...` parser: each command and form, and every problem it can see
without the API's rules (those are the request models', at the door)."""

from __future__ import annotations

import re

import pytest

from incident.domain.candidate_chat_commands import (
    CANDIDATE_COMMANDS,
    CandidateCommand,
    CandidateHelp,
    CandidateUsage,
    DeclareCandidate,
    DismissCandidate,
    ListCandidates,
    ShowCandidate,
    candidate_help_text,
    parse_candidate,
)
from incident.domain.chat_commands import Usage, help_text, parse


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", CandidateHelp()),
        ("help", CandidateHelp()),
        ("list", ListCandidates()),
        ("list Dismissed", ListCandidates(status="dismissed")),
        ("list all", ListCandidates(status="all")),
        ("list someday", ListCandidates(status="someday")),  # the door's rule says no
        ("show CAND-7", ShowCandidate(candidate_id=7)),
        ("show cand-7", ShowCandidate(candidate_id=7)),
        ("view #7", ShowCandidate(candidate_id=7)),
        ("show 7", ShowCandidate(candidate_id=7)),
        ("declare CAND-7", DeclareCandidate(candidate_id=7)),
        ("declare CAND-7 p1", DeclareCandidate(candidate_id=7, severity="P1")),
        (
            "declare CAND-7 P2 Bridge relayer stuck &amp; <@U1|bob> on it",
            DeclareCandidate(
                candidate_id=7, severity="P2", title="Bridge relayer stuck & @bob on it"
            ),
        ),
        (
            "declare 7 Bridge relayer stuck",
            DeclareCandidate(candidate_id=7, title="Bridge relayer stuck"),
        ),
        # A severity that does not exist is the request model's to refuse, naming it.
        ("declare 7 P9 Bridge", DeclareCandidate(candidate_id=7, severity="P9", title="Bridge")),
        ("declare 7 INC-3", DeclareCandidate(candidate_id=7, incident_id=3)),
        ("declare 7 #3", DeclareCandidate(candidate_id=7, incident_id=3)),
        (
            "declare 7 3 customers cannot bridge",
            DeclareCandidate(candidate_id=7, title="3 customers cannot bridge"),
        ),
        (
            "dismiss CAND-7 Known: the bridge's status page\nhas it",
            DismissCandidate(candidate_id=7, reason="Known: the bridge's status page\nhas it"),
        ),
        ("decline 7 not ours", DismissCandidate(candidate_id=7, reason="not ours")),
    ],
)
def test_each_command(text: str, expected: CandidateCommand) -> None:
    assert parse_candidate(text) == expected
    assert parse(f"candidate {text}") == expected


@pytest.mark.parametrize(
    ("text", "problem", "command"),
    [
        ("frobnicate", "unknown candidate command 'frobnicate'", "candidate"),
        ("show", "candidate show needs the candidate first: CAND-7 or 7", "candidate show"),
        (
            "show CASE-3",
            "candidate show needs the candidate first: CAND-7 or 7, not 'CASE-3'",
            "candidate show",
        ),
        ("show 0", None, "candidate show"),
        ("show 7 now", "candidate show takes nothing after the candidate ('now')", None),
        ("list proposed declared", None, "candidate list"),
        ("declare", "candidate declare needs the candidate first: CAND-7 or 7", None),
        ("declare INC-3", None, "candidate declare"),
        (
            "declare 7 INC-3 Bridge down",
            "candidate declare takes an open incident alone (INC-7), or a severity and a "
            "title for a new one; not both (got 'Bridge down' after it)",
            "candidate declare",
        ),
        (
            "dismiss 7",
            "candidate dismiss needs a reason after the candidate: why it is not one",
            "candidate dismiss",
        ),
        ("dismiss 7    ", None, "candidate dismiss"),
    ],
)
def test_what_the_parser_refuses(text: str, problem: str | None, command: str | None) -> None:
    parsed = parse_candidate(text)
    assert isinstance(parsed, CandidateUsage), parsed
    assert isinstance(parsed, Usage)  # the door answers it as any usage problem
    if problem is not None:
        assert parsed.problem == problem
    if command is not None:
        assert parsed.command == command


def test_a_usage_names_the_commands_forms() -> None:
    parsed = parse_candidate("declare")
    assert isinstance(parsed, CandidateUsage)
    assert parsed.text("/incident").splitlines() == [
        "candidate declare needs the candidate first: CAND-7 or 7.",
        "Usage: `/incident candidate declare &lt;candidate&gt; [P1-P4] [title]` or "
        "`/incident candidate declare &lt;candidate&gt; &lt;INC-n&gt;`",
        "`/incident candidate help` lists the candidate commands.",
    ]


def test_a_candidate_command_names_no_incident() -> None:
    parsed = parse("INC-3 candidate show 1")
    assert isinstance(parsed, Usage) and parsed.problem == "candidate takes no incident id"


# Slack reads `<...>` as a link, a mention or a command and `&` as the start of an entity.
_RAW = re.compile(r"[<>]|&(?!amp;|lt;|gt;)")


def test_the_help_lists_every_candidate_command_escaped_for_slack() -> None:
    text = candidate_help_text("/incident")
    for name, _, _ in CANDIDATE_COMMANDS:
        assert f"`/incident candidate {name}" in text
    # What the patterns channel's post tells people to type, the help shows.
    assert "`/incident candidate declare &lt;candidate&gt; [P1-P4] [title]`" in text
    assert "`/incident candidate dismiss &lt;candidate&gt; &lt;reason&gt;`" in text
    assert _RAW.search(text) is None, _RAW.findall(text)
    assert "`/incident candidate &lt;list|show|declare|dismiss&gt; ...`" in help_text("/incident")
    for typed in ("frobnicate <b>", "show", "declare 7 INC-3 <b>x</b>", "dismiss 7"):
        parsed = parse_candidate(typed)
        assert isinstance(parsed, CandidateUsage)
        assert _RAW.search(parsed.text()) is None, parsed.text()
