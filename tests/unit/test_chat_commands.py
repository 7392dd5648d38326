"""The `/incident` text parser: every command, its incident reference, and each usage problem."""

from __future__ import annotations

import pytest

from incident.domain.chat_commands import (
    COMMANDS,
    Acknowledge,
    AssignCommander,
    ChangeSeverity,
    Command,
    CompleteRca,
    CustomerUpdate,
    Declare,
    Help,
    Note,
    Resolve,
    SetStatus,
    ShowNext,
    ShowTimeline,
    Usage,
    help_text,
    parse,
    plain_text,
)
from incident.domain.incident import Severity, Status


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Help()),
        ("   ", Help()),
        ("help", Help()),
        ("HELP me please", Help()),
        ("?", Help()),
        ("declare P1 Checkout API down", Declare(severity=Severity.P1, title="Checkout API down")),
        ("declare p3   slow  search ", Declare(severity=Severity.P3, title="slow  search")),
        ("Declare P2 A &amp; B &lt;3", Declare(severity=Severity.P2, title="A & B <3")),
        ("ack", Acknowledge()),
        ("acknowledge", Acknowledge()),
        ("ack INC-12", Acknowledge(incident_id=12)),
        ("ack inc-12", Acknowledge(incident_id=12)),
        ("ack #7", Acknowledge(incident_id=7)),
        ("INC-12 ack", Acknowledge(incident_id=12)),
        ("#3 next", ShowNext(incident_id=3)),
        (
            "status identified Bad deploy found, rolling back",
            SetStatus(status=Status.IDENTIFIED, message="Bad deploy found, rolling back"),
        ),
        (
            "status INC-4 MONITORING fix is out",
            SetStatus(incident_id=4, status=Status.MONITORING, message="fix is out"),
        ),
        ("update We are still on it", CustomerUpdate(message="We are still on it")),
        (
            "update #2 #1 priority for us",
            CustomerUpdate(incident_id=2, message="#1 priority for us"),
        ),
        ("note tried a restart\nno change", Note(text="tried a restart\nno change")),
        (
            "note ask <@U123|bob> about <#C9|db-team>",
            Note(text="ask @bob about #db-team"),
        ),
        ("severity P1", ChangeSeverity(severity=Severity.P1)),
        (
            "sev INC-9 p3 only one customer",
            ChangeSeverity(incident_id=9, severity=Severity.P3, reason="only one customer"),
        ),
        ("ic <@U123ABC|bob>", AssignCommander(person="<@U123ABC>")),
        ("ic INC-5 <@W42>", AssignCommander(incident_id=5, person="<@W42>")),
        ("ic me", AssignCommander(person=None)),
        ("resolve Rolled back the deploy", Resolve(summary="Rolled back the deploy")),
        (
            "rca <https://wiki.example.com/rca/12>",
            CompleteRca(link="https://wiki.example.com/rca/12"),
        ),
        (
            "rca #12 <https://wiki.example.com/rca?id=12&amp;v=2|the RCA>",
            CompleteRca(incident_id=12, link="https://wiki.example.com/rca?id=12&v=2"),
        ),
        ("rca https://docs.example.com/x", CompleteRca(link="https://docs.example.com/x")),
        ("next", ShowNext()),
        ("timeline INC-1", ShowTimeline(incident_id=1)),
    ],
)
def test_parses_each_command(text: str, expected: Command) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "command", "says"),
    [
        ("frobnicate", None, "unknown command 'frobnicate'"),
        ("INC-12", None, "say what to do with INC-12"),
        ("declare", "declare", "needs a severity first"),
        ("declare P7 Checkout down", "declare", "not 'P7'"),
        ("declare P1", "declare", "needs a title"),
        ("declare P1    ", "declare", "needs a title"),
        ("declare INC-3 P1 x", "declare", "takes no incident id"),
        ("INC-3 declare P1 x", "declare", "takes no incident id"),
        ("ack now please", "ack", "use `note`"),
        ("next steps", "next", "takes nothing after it"),
        ("status", "status", "investigating, identified or monitoring"),
        ("status fixed all good", "status", "not 'fixed'"),
        ("status resolved all good", "status", "use `resolve <summary>`"),
        ("status identified", "status", "needs a message"),
        ("update", "update", "needs a message for customers"),
        ("note   ", "note", "needs the note's text"),
        ("resolve", "resolve", "needs a summary"),
        ("severity", "severity", "needs P1, P2, P3 or P4"),
        ("severity high", "severity", "not 'high'"),
        ("ic", "ic", "needs the person"),
        ("ic bob", "ic", "mentioned with @"),
        ("ic <@U1> <@U2>", "ic", "takes one person"),
        ("rca", "rca", "needs the link"),
        ("rca see the doc", "rca", "takes one link"),
        ("rca doc-42", "rca", "starting with https://"),
    ],
)
def test_bad_text_gets_the_usage_of_the_command_meant(
    text: str, command: str | None, says: str
) -> None:
    usage = parse(text)
    assert isinstance(usage, Usage)
    assert usage.command == command
    assert says in usage.problem
    rendered = usage.text("/inc")
    assert says in rendered
    if command is None:
        assert rendered.endswith(help_text("/inc"))
    else:
        assert f"`/inc {command}" in rendered and "`/inc help`" in rendered


def test_an_unescaped_at_name_is_refused_with_what_to_do() -> None:
    usage = parse("ic @bob")
    assert isinstance(usage, Usage) and usage.command == "ic"
    assert "'@bob'" in usage.problem and "plain text" in usage.problem
    assert "Escape channels, users, and links" in usage.problem


def test_help_lists_every_command_and_how_to_name_an_incident() -> None:
    text = help_text("/incident")
    for name, arguments, _ in COMMANDS:
        assert f"`/incident {name}{' ' + arguments if arguments else ''}`" in text
    assert "`/incident ack INC-12` (or `#12`)" in text
    assert "war room" in text


@pytest.mark.parametrize(
    ("slack", "plain"),
    [
        ("plain words", "plain words"),
        ("<@U1|bob> and <@U2>", "@bob and @U2"),
        ("see <#C123|ops>", "see #ops"),
        ("<!here> heads up", "@here heads up"),
        ("<!subteam^S1|@db-oncall> please", "@db-oncall please"),
        ("<https://status.example.com>", "https://status.example.com"),
        ("<https://status.example.com|status page>", "status page (https://status.example.com)"),
        ("<!date^1700000000^{date}|Nov 14>", "Nov 14"),
        ("a &lt;b&gt; &amp;amp;", "a <b> &amp;"),
        ("  spaced  ", "spaced"),
    ],
)
def test_plain_text_reads_as_a_person_sees_it(slack: str, plain: str) -> None:
    assert plain_text(slack) == plain
