"""The `/incident` text parser: every command, its incident reference, and each usage problem."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from incident.domain.chat_commands import (
    COMMANDS,
    Acknowledge,
    AddFollowUp,
    Approve,
    AssignCommander,
    Cancel,
    ChangeSeverity,
    Command,
    CompleteFollowUp,
    CompleteRca,
    CustomerUpdate,
    Declare,
    DescribeImpact,
    Help,
    ListFollowUps,
    Merge,
    Note,
    Reopen,
    Resolve,
    Retitle,
    SetCategory,
    SetService,
    SetStatus,
    ShowNext,
    ShowTimeline,
    Usage,
    escape,
    help_text,
    parse,
    plain_text,
    usage_line,
)
from incident.domain.incident import Cancellation, Category, Severity, Status


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
        ("status resolved all good", "status", "use `resolve &lt;summary&gt;`"),
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
        assert f"`/incident {name}{' ' + escape(arguments) if arguments else ''}`" in text
    assert "`/incident ack INC-12` (or `#12`)" in text
    assert "war room" in text
    for name in ("title", "impact", "category", "cancel", "reopen", "merge", "approve"):
        assert f"`/incident {name} " in text
    assert "`/incident followup &lt;title&gt; owner:&lt;who&gt; due:" in text
    assert "`/incident followup done &lt;FU-n&gt;`" in text
    assert "`/incident followups`" in text
    merge = next(line for line in text.splitlines() if "`/incident merge" in line)
    assert "duplicate" in merge  # the incident in the room is the one merged away
    assert "`/incident merge INC-12 INC-7` merges the duplicate INC-12 into INC-7" in text


# Slack reads `<...>` as a link, a mention or a command (`<!channel>` would notify everyone)
# and `&` as the start of an entity: what we send must carry them only as entities.
_RAW = re.compile(r"[<>]|&(?!amp;|lt;|gt;)")


def test_help_and_usage_texts_escape_their_placeholders_for_slack() -> None:
    text = help_text("/incident")
    assert _RAW.search(text) is None, _RAW.findall(text)
    assert "`/incident approve &lt;step&gt;`" in text
    assert "`/incident declare &lt;P1-P4&gt; &lt;title&gt;`" in text
    assert "`/incident ic &lt;@person|me&gt;`" in text
    for name, _, _ in COMMANDS:
        line = usage_line(name)
        assert _RAW.search(line) is None, line
        rendered = Usage("something was wrong", name).text()
        assert _RAW.search(rendered) is None, rendered
    assert _RAW.search(Usage("unknown command 'x'").text()) is None


@pytest.mark.parametrize(
    "text",
    [
        "frobnicate &lt;b&gt; &amp; c",
        "status resolved all good",
        "cancel duplicate",
        "cancel maybe",
        "merge",
        "merge INC-1 soon",
        "category &lt;script&gt;",
        "ic <@U1|bob> <!channel>",
        "followup done &lt;FU-1&gt;",
        "followup x owner:me due:&lt;tomorrow&gt;",
        "followups please &amp; thanks",
        "approve",
        "rca <https://wiki.example.com/x|the doc> extra",
    ],
)
def test_usage_problems_show_what_was_typed_without_slack_markup(text: str) -> None:
    usage = parse(text)
    assert isinstance(usage, Usage)
    rendered = usage.text()
    assert _RAW.search(rendered) is None, rendered


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("title Checkout API down in the EU", Retitle(title="Checkout API down in the EU")),
        ("title INC-4  A &amp; B ", Retitle(incident_id=4, title="A & B")),
        (
            "impact EU customers cannot pay; <@U1|bob> is on it",
            DescribeImpact(impact="EU customers cannot pay; @bob is on it"),
        ),
        ("service payments-api", SetService(service="payments-api")),
        ("category Security", SetCategory(category=Category.SECURITY)),
        ("INC-3 category legal", SetCategory(incident_id=3, category=Category.LEGAL)),
        ("cancel false_alarm", Cancel(reason=Cancellation.FALSE_ALARM)),
        (
            "cancel false alarm the synthetic check misfired",
            Cancel(reason=Cancellation.FALSE_ALARM, note="the synthetic check misfired"),
        ),
        (
            "cancel #5 declined a feature request",
            Cancel(incident_id=5, reason=Cancellation.DECLINED, note="a feature request"),
        ),
        ("reopen errors are back", Reopen(reason="errors are back")),
        ("reopen INC-2 errors are back", Reopen(incident_id=2, reason="errors are back")),
        ("merge INC-7", Merge(into=7)),
        ("merge into #7", Merge(into=7)),
        ("merge INC-12 INC-7", Merge(incident_id=12, into=7)),
        ("merge INC-12 into INC-7", Merge(incident_id=12, into=7)),
        ("INC-12 merge INC-7", Merge(incident_id=12, into=7)),
        ("approve status-page-investigating", Approve(step_id="status-page-investigating")),
        ("approve `customer-notification`", Approve(step_id="customer-notification")),
        ("approve INC-3 status-page", Approve(incident_id=3, step_id="status-page")),
        (
            "followup Alert on pool exhaustion owner:<@U0SAM|sam> due:+7d",
            AddFollowUp(title="Alert on pool exhaustion", owner="@U0SAM", due=timedelta(days=7)),
        ),
        (
            "follow-up INC-4 Add a runbook due:2026-12-10 owner:Dana Smith",
            AddFollowUp(
                incident_id=4,
                title="Add a runbook",
                owner="Dana Smith",
                due=datetime(2026, 12, 10, 23, 59, tzinfo=UTC),
            ),
        ),
        (
            "followup Rotate keys owner:me due:2026-12-10T09:00+02:00",
            AddFollowUp(
                title="Rotate keys", owner=None, due=datetime(2026, 12, 10, 7, 0, tzinfo=UTC)
            ),
        ),
        (
            "followup Rotate keys OWNER:<mailto:sam@example.com|sam@example.com> Due:+1d12h",
            AddFollowUp(
                title="Rotate keys", owner="sam@example.com", due=timedelta(days=1, hours=12)
            ),
        ),
        ("followup done FU-3", CompleteFollowUp(follow_up=3)),
        ("followup done 3", CompleteFollowUp(follow_up=3)),
        ("followup done INC-2 fu-3", CompleteFollowUp(incident_id=2, follow_up=3)),
        ("followup INC-2 done FU-3", CompleteFollowUp(incident_id=2, follow_up=3)),
        ("followups", ListFollowUps()),
        ("#4 follow-ups", ListFollowUps(incident_id=4)),
    ],
)
def test_parses_the_lifecycle_and_follow_up_commands(text: str, expected: Command) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "command", "says"),
    [
        ("title", "title", "needs the new title"),
        ("impact   ", "impact", "needs who is affected"),
        ("service", "service", "needs the name of the service"),
        ("category", "category", "needs one of general, security"),
        ("category nuclear", "category", "unknown category 'nuclear'"),
        ("category security legal", "category", "takes one word"),
        ("cancel", "cancel", "needs a reason: false_alarm"),
        ("cancel oops", "cancel", "false_alarm or declined, not 'oops'"),
        ("cancel duplicate of INC-2", "cancel", "`merge &lt;INC-n&gt;`"),
        ("reopen", "reopen", "needs the reason"),
        ("merge", "merge", "needs the incident this one duplicates"),
        ("INC-12 merge", "merge", "needs the incident this one duplicates"),
        ("merge INC-1 INC-2 INC-3", "merge", "needs the incident this one duplicates"),
        ("merge the other one", "merge", "incident ids like INC-7, not 'the'"),
        ("approve", "approve", "needs the step's id"),
        ("approve a b", "approve", "takes one step id"),
        ("followup", "followup", "needs what is to be done"),
        ("followup owner:sam due:+7d", "followup", "needs what is to be done"),
        ("followup Rotate keys due:+7d", "followup", "needs its owner"),
        ("followup Rotate keys owner:sam", "followup", "needs when it is due"),
        ("followup Rotate keys owner:sam owner:bob due:+1d", "followup", "owner: once"),
        ("followup Rotate keys owner:sam due:soon", "followup", "(got 'soon')"),
        ("followup Rotate keys owner:sam due:+7 days", "followup", "takes one date"),
        ("followup Rotate keys owner:sam due:2026-13-40", "followup", "a date like"),
        ("followup Rotate keys owner:sam due:2026-12-10T09:00", "followup", "no time zone"),
        ("followup done", "followup done", "needs one action item, like FU-3"),
        ("followup done FU-x", "followup done", "(got 'FU-x')"),
        ("followup done FU-1 FU-2", "followup done", "needs one action item"),
        ("followups now", "followups", "takes nothing after it"),
    ],
)
def test_bad_lifecycle_text_gets_the_usage(text: str, command: str, says: str) -> None:
    usage = parse(text)
    assert isinstance(usage, Usage), usage
    assert usage.command == command
    assert says in usage.problem
    assert usage_line(command) in usage.text()


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
