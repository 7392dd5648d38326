"""The Slack chat adapter against a strict local Slack Web API (real HTTP over loopback)."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import logging
import socket
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import delete

from incident import bootstrap
from incident.adapters.database.tables import VendorRefRow
from incident.adapters.database.vendor_refs import VendorRefs
from incident.adapters.vendors.retries import RetryBudget
from incident.adapters.vendors.slack import (
    TEXT_LIMIT,
    SlackChat,
    channel_name,
    slack_client,
    war_room_topic,
)
from incident.adapters.vendors.split_notifier import SplitNotifier
from incident.clock import Clock, FakeClock, SystemClock
from incident.domain.incident import Incident, Severity, Status
from incident.domain.records import SubjectRef
from incident.services.incidents import declare_incident
from incident.services.ports import Chat, Messenger, Topic, VendorRejected, VendorUnavailable
from tests.vendor_fakes.slack import Channel, FakeSlack, User

BOT_TOKEN = "xoxb-1111111111-2222222222-S3cr3tB0tT0kenS3cr3t"
FAST = RetryBudget(attempts=3, backoff=0.01, backoff_cap=0.05, retry_after_cap=30.0)
CONFERENCE = "https://meet.example.com/{channel}"
STATUS_PAGE = "https://status.example.com"
RUNBOOK = "https://incidents.example.com/runbooks/war-room.md"
GREETING = (
    "*INC-1 P1: Checkout API down* (investigating)\n"
    "Commander: <@U0DANA001>. Next: customer update due at 09:32 UTC."
)

DANA = User("U0DANA001", "dana", "dana@example.com", "Dana Commander")
ANA = User("U0ANA0001", "ana", "ana@example.com", "Ana Primary")
BO = User("U0BO00001", "bo", "bo@example.com", "Bo Secondary")


@pytest.fixture
async def slack(clock: FakeClock) -> AsyncIterator[FakeSlack]:
    fake = FakeSlack(bot_token=BOT_TOKEN, users=[DANA, ANA, BO], clock=clock)
    async with fake:
        fake.add_channel("support-managers", members=[fake.bot_user, ANA.id])
        yield fake
    # Every request the adapter sent must be one Slack accepts; tests that send bad ones on
    # purpose say so.
    if not fake.expect_rejections:
        assert fake.rejected == [], [(s.method, s.problems) for s in fake.rejected]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


MakeChat = Callable[..., SlackChat]


@pytest.fixture
def make(
    slack: FakeSlack, http: aiohttp.ClientSession, app: bootstrap.Container, clock: FakeClock
) -> MakeChat:
    def build(
        *,
        timeout: float = 1.0,
        retry: RetryBudget = FAST,
        token: str = BOT_TOKEN,
        url: str | None = None,
        use_clock: Clock | None = None,
    ) -> SlackChat:
        client = slack_client(token=token, base_url=url or slack.api_url, session=http)
        return SlackChat(
            client=client,
            refs=VendorRefs(app.database, clock),
            clock=use_clock or clock,
            retry=retry,
            timeout=timeout,
            conference_url_template=CONFERENCE,
            status_page_url=STATUS_PAGE,
            runbook_url=RUNBOOK,
        )

    return build


async def declare(
    app: bootstrap.Container,
    title: str = "Checkout API down",
    *,
    severity: Severity = Severity.P1,
    commander: str | None = "dana@example.com",
) -> Incident:
    incident, _ = await declare_incident(
        app.runtime,
        title=title,
        severity=severity,
        by="dana",
        service="checkout",
        commander=commander,
    )
    return incident


async def forget(app: bootstrap.Container, incident: Incident, name: str) -> None:
    """What a crash between the vendor call and remembering it leaves: no reference."""
    table = VendorRefRow.__table__  # type: ignore[attr-defined]
    statement = delete(table).where(table.c.subject_id == incident.id, table.c.name == name)
    await app.database.run(lambda session: session.execute(statement))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def metadata_keys(messages: list[dict[str, Any]]) -> list[str]:
    return [m["metadata"]["event_payload"]["key"] for m in messages]


def step_posts(channel: Channel) -> list[dict[str, Any]]:
    """What the bot posted to a channel but the war room's greeting."""
    return [m for m in channel.posts() if "/war-room/greeting" not in metadata_keys([m])[0]]


def greetings(channel: Channel) -> list[dict[str, Any]]:
    return [m for m in channel.posts() if "/war-room/greeting" in metadata_keys([m])[0]]


PEOPLE = ["dana@example.com", "ANA@example.com", f"<@{BO.id}>"]


# --- the war room ------------------------------------------------------------------------------


async def test_a_war_room_is_one_channel_with_topic_members_and_bookmarks(
    slack: FakeSlack, make: MakeChat, app: bootstrap.Container
) -> None:
    incident = await declare(app)
    chat = make()
    port: Chat = chat  # it is the Chat port
    assert port is chat
    room = await chat.open_war_room(incident=incident, key="k", greeting=GREETING, people=PEOPLE)

    channel = slack.channel_named(f"inc-{incident.id}-checkout-api-down")
    assert slack.created_by_bot() == [channel]
    assert room.channel == channel.name and room.channel_id == channel.id
    assert room.conference_url == f"https://meet.example.com/{channel.name}"
    assert channel.topic == f"INC-{incident.id} P1 | investigating | IC: dana@example.com | " + (
        "Checkout API down"
    )
    assert set(channel.members) == {slack.bot_user, DANA.id, ANA.id, BO.id}
    assert room.members == tuple(PEOPLE) and room.not_found == ()
    assert [(b["title"], b["link"]) for b in channel.bookmarks] == [
        ("Conference", room.conference_url),
        ("Status page", STATUS_PAGE),
        ("Runbook", RUNBOOK),
    ]
    stored = await VendorRefs(app.database, FakeClock()).find(incident.id or 0, "slack", "channel")
    assert stored == channel.id
    # Users found by e-mail, case folded; the mention needed no lookup.
    assert [dict(s.query)["email"] for s in slack.seen("users.lookupByEmail")] == [
        "dana@example.com",
        "ana@example.com",
    ]


async def test_a_retried_war_room_changes_nothing(
    slack: FakeSlack, make: MakeChat, app: bootstrap.Container
) -> None:
    incident = await declare(app)
    await make().open_war_room(incident=incident, key="k", greeting=GREETING, people=PEOPLE)
    first = slack.channel_named(f"inc-{incident.id}-checkout-api-down")
    messages = list(first.messages)
    for chat in (make(), make()):  # the same step again, and after a restart
        room = await chat.open_war_room(
            incident=incident, key="k", greeting=GREETING, people=PEOPLE
        )
        assert room.channel_id == first.id
    assert slack.created_by_bot() == [first]
    assert len(first.bookmarks) == 3
    assert first.messages == messages  # no second topic notice, no second join
    assert len(slack.seen("conversations.create")) == 1
    assert len(slack.seen("conversations.setTopic")) == 1
    assert len(slack.seen("bookmarks.add")) == 3


async def test_a_crash_after_creating_the_channel_adopts_it(
    slack: FakeSlack, make: MakeChat, app: bootstrap.Container
) -> None:
    incident = await declare(app)
    await make().open_war_room(incident=incident, key="k", greeting=GREETING)
    channel = slack.channel_named(f"inc-{incident.id}-checkout-api-down")
    await forget(app, incident, "channel")

    room = await make().open_war_room(incident=incident, key="k", greeting=GREETING, people=PEOPLE)
    assert room.channel_id == channel.id
    assert slack.created_by_bot() == [channel]
    assert [s.error for s in slack.seen("conversations.create")] == [None, "name_taken"]
    assert len(channel.bookmarks) == 3 and len(slack.seen("conversations.setTopic")) == 1


async def test_a_create_that_timed_out_after_slack_made_the_channel_is_not_repeated(
    slack: FakeSlack, make: MakeChat, app: bootstrap.Container
) -> None:
    slack.slow(1, seconds=1.0, method="conversations.create", took_effect=True)
    slack.drop(1, method="bookmarks.add", took_effect=True)
    incident = await declare(app)
    room = await make(timeout=0.2).open_war_room(incident=incident, key="k", greeting=GREETING)
    [channel] = slack.created_by_bot()
    assert room.channel_id == channel.id
    assert [s.fault or s.error for s in slack.seen("conversations.create")] == [
        "slow",
        "name_taken",
    ]
    assert [b["title"] for b in channel.bookmarks] == ["Conference", "Status page", "Runbook"]


async def test_a_name_taken_by_someone_else_is_not_reused(
    slack: FakeSlack, make: MakeChat, app: bootstrap.Container, clock: FakeClock
) -> None:
    incident = await declare(app)
    name = f"inc-{incident.id}-checkout-api-down"
    theirs = slack.add_channel(name, creator="U0SOMEONE", members=["U0SOMEONE"])
    # Ours, but archived, or made before this incident (an old deployment's database).
    slack.add_channel(f"{name}-2", creator=slack.bot_user, is_archived=True)
    slack.add_channel(f"{name}-3", creator=slack.bot_user, created=clock.now() - timedelta(days=30))

    room = await make().open_war_room(incident=incident, key="k", greeting=GREETING, people=PEOPLE)
    assert room.channel == f"{name}-4"
    assert theirs.members == ["U0SOMEONE"] and theirs.topic == "" and theirs.bookmarks == []
    again = await make().open_war_room(incident=incident, key="k", greeting=GREETING)
    assert again.channel_id == room.channel_id


async def test_people_without_a_slack_account_are_reported_not_fatal(
    slack: FakeSlack, make: MakeChat, app: bootstrap.Container
) -> None:
    incident = await declare(app, commander="Dana Smith")
    room = await make().open_war_room(
        incident=incident,
        key="k",
        greeting=GREETING,
        people=["nobody@example.com", "Dana Smith", "ana@example.com", "U0GHOST01"],
    )
    assert room.members == ("ana@example.com",)
    assert room.not_found == ("Dana Smith", "nobody@example.com", "U0GHOST01")  # IC first
    channel = slack.channel_named(room.channel)
    assert set(channel.members) == {slack.bot_user, ANA.id}


async def test_the_commander_is_invited_without_being_named(
    slack: FakeSlack, make: MakeChat, app: bootstrap.Container
) -> None:
    incident = await declare(app, commander=f"<@{DANA.id}|dana>")  # as /incident declare sets it
    room = await make().open_war_room(
        incident=incident, key="k", greeting=GREETING
    )  # the port's call
    assert room.members == (f"<@{DANA.id}|dana>",)
    assert set(slack.channel_named(room.channel).members) == {slack.bot_user, DANA.id}
    assert slack.seen("users.lookupByEmail") == []


async def test_the_topic_follows_severity_status_and_commander(
    slack: FakeSlack, make: MakeChat, app: bootstrap.Container
) -> None:
    incident = await declare(app)
    chat = make()
    await chat.update_topic(incident=incident, key="t0")  # no war room yet: nothing
    assert slack.requests == []

    room = await chat.open_war_room(incident=incident, key="k", greeting=GREETING)
    changed = dataclasses.replace(
        incident, severity=Severity.P2, status=Status.IDENTIFIED, commander="<@U0ANA0001>"
    )
    await chat.update_topic(incident=changed, key="t1")
    await make().update_topic(incident=changed, key="t1")  # already so: no change
    channel = slack.channel_named(room.channel)
    assert channel.topic == war_room_topic(changed)
    assert "P2 | identified | IC: <@U0ANA0001>" in channel.topic
    assert len(slack.seen("conversations.setTopic")) == 2


async def test_invite_adds_people_to_an_open_war_room(
    slack: FakeSlack, make: MakeChat, app: bootstrap.Container
) -> None:
    incident = await declare(app)
    chat = make()
    assert await chat.invite(incident=incident, people=["bo@example.com"], key="i0") == ([], [])
    room = await chat.open_war_room(
        incident=incident, key="k", greeting=GREETING, people=["dana@example.com"]
    )
    members, missing = await chat.invite(
        incident=incident, people=["bo@example.com", "dana@example.com", "x@example.com"], key="i"
    )
    assert members == ["bo@example.com", "dana@example.com"] and missing == ["x@example.com"]
    assert set(slack.channel_named(room.channel).members) == {slack.bot_user, DANA.id, BO.id}
    assert [s.error for s in slack.seen("conversations.invite")] == [
        None,
        None,
        "already_in_channel",
    ]


async def test_a_title_slack_would_refuse_still_makes_a_valid_name(
    slack: FakeSlack, make: MakeChat, app: bootstrap.Container
) -> None:
    incident = await declare(app, "Café — Zahlungsdienst ÜBERLASTET!! " + "x" * 150)
    room = await make().open_war_room(incident=incident, key="k", greeting=GREETING)
    assert room.channel == channel_name(incident)
    assert room.channel.startswith(f"inc-{incident.id}-cafe-zahlungsdienst-uberlastet-x")
    assert len(room.channel) <= 77


# --- the greeting: posted once, pinned, edited in place ----------------------------------------


async def stored_greeting(app: bootstrap.Container, incident: Incident, name: str) -> str | None:
    return await VendorRefs(app.database, FakeClock()).find(incident.id or 0, "slack", name)


async def test_opening_posts_one_greeting_and_pins_it(
    slack: FakeSlack, make: MakeChat, app: bootstrap.Container
) -> None:
    incident = await declare(app)
    room = await make().open_war_room(incident=incident, key="k", greeting=GREETING)
    channel = slack.channel_named(room.channel)
    [greeting] = channel.posts()
    assert greeting["text"] == GREETING  # mrkdwn, sent as it is: no escaping added
    assert metadata_keys([greeting]) == [f"inc-{incident.id}/war-room/greeting"]
    assert channel.pinned() == [greeting]
    assert await stored_greeting(app, incident, "greeting") == greeting["ts"]
    [pin] = slack.seen("pins.add")
    assert pin.args == {"channel": channel.id, "timestamp": greeting["ts"]}


async def test_a_retried_open_posts_no_second_greeting(
    slack: FakeSlack, make: MakeChat, app: bootstrap.Container
) -> None:
    incident = await declare(app)
    await make().open_war_room(incident=incident, key="k", greeting=GREETING)
    for chat in (make(), make()):  # the same step again, and after a restart
        await chat.open_war_room(incident=incident, key="k", greeting=GREETING)
    [channel] = slack.created_by_bot()
    assert len(channel.posts()) == 1 and len(channel.pinned()) == 1
    assert len(slack.seen("chat.postMessage")) == 1
    assert len(slack.seen("pins.add")) == 1  # a remembered greeting is a pinned one

    # A crash between posting the greeting and remembering it: nothing of it was written down
    # but the intent. The retry finds the message in the channel's history and pins it.
    [greeting] = channel.posts()
    await forget(app, incident, f"msg:inc-{incident.id}/war-room/greeting")
    await forget(app, incident, "greeting")
    await make().open_war_room(incident=incident, key="k", greeting=GREETING + " (again)")
    assert channel.posts() == [greeting] and channel.pinned() == [greeting]
    assert greeting["text"] == GREETING  # opening leaves the greeting as it was posted
    assert len(slack.seen("chat.postMessage")) == 1
    assert len(slack.seen("conversations.history")) == 1
    assert [s.error for s in slack.seen("pins.add")] == [None, "already_pinned"]
    assert await stored_greeting(app, incident, "greeting") == greeting["ts"]


async def test_a_greeting_post_that_timed_out_after_slack_took_it_is_not_repeated(
    slack: FakeSlack, make: MakeChat, app: bootstrap.Container
) -> None:
    incident = await declare(app)
    slack.slow(1, seconds=1.0, method="chat.postMessage", took_effect=True)
    room = await make(timeout=0.2).open_war_room(incident=incident, key="k", greeting=GREETING)
    channel = slack.channel_named(room.channel)
    assert len(channel.posts()) == 1 and channel.pinned() == channel.posts()
    assert len(slack.seen("chat.postMessage")) == 1


async def test_refresh_edits_the_greeting_in_place(
    slack: FakeSlack, make: MakeChat, app: bootstrap.Container
) -> None:
    incident = await declare(app)
    chat = make()
    room = await chat.open_war_room(incident=incident, key="k", greeting=GREETING)
    channel = slack.channel_named(room.channel)
    [greeting] = channel.posts()
    changed = dataclasses.replace(incident, status=Status.IDENTIFIED, commander="bo@example.com")
    text = "*INC-1 P1: Checkout API down* (identified)\nCommander: <@U0BO00001>."
    await chat.refresh_war_room(incident=changed, key="r1", greeting=text)
    await make().refresh_war_room(incident=changed, key="r1", greeting=text)  # retried
    assert channel.posts() == [greeting]  # the same message ...
    assert greeting["text"] == text  # ... saying the new text
    assert "edited" in greeting and greeting["metadata"]["event_type"] == "incident_step"
    assert channel.pinned() == [greeting]
    assert channel.topic == war_room_topic(changed) and BO.id in channel.members
    assert len(slack.seen("chat.postMessage")) == 1
    assert [s.args["ts"] for s in slack.seen("chat.update")] == [greeting["ts"]] * 2
    # Formatted as chat.postMessage formats it, not with chat.update's own default.
    assert {s.args["parse"] for s in slack.seen("chat.update")} == {"none"}
    assert len(slack.seen("pins.add")) == 1

    await chat.refresh_war_room(incident=changed, key="r2", greeting="x" * 50_000)
    assert len(greeting["text"]) == TEXT_LIMIT  # cut to what Slack keeps


async def test_refresh_without_a_war_room_sends_nothing(
    slack: FakeSlack, make: MakeChat, app: bootstrap.Container
) -> None:
    incident = await declare(app)
    await make().refresh_war_room(incident=incident, key="r", greeting=GREETING)
    assert slack.requests == []


async def test_refresh_after_the_greeting_was_deleted_posts_and_pins_a_new_one(
    slack: FakeSlack, make: MakeChat, app: bootstrap.Container
) -> None:
    incident = await declare(app)
    room = await make().open_war_room(incident=incident, key="k", greeting=GREETING)
    channel = slack.channel_named(room.channel)
    [first] = channel.posts()
    slack.delete_message(channel, first["ts"])  # by someone, by hand
    assert channel.pinned() == []

    await make().refresh_war_room(incident=incident, key="r1", greeting="Second words")
    [second] = greetings(channel)
    assert second["text"] == "Second words" and channel.pinned() == [second]
    assert metadata_keys([second]) == [f"inc-{incident.id}/war-room/greeting#2"]
    assert [s.error for s in slack.seen("chat.update")] == ["message_not_found"]
    assert await stored_greeting(app, incident, "greeting#2") == second["ts"]

    # A crash after posting the replacement, before remembering it; then a newer text.
    await forget(app, incident, f"msg:inc-{incident.id}/war-room/greeting#2")
    await forget(app, incident, "greeting#2")
    await make().refresh_war_room(incident=incident, key="r2", greeting="Third words")
    assert greetings(channel) == [second] and channel.pinned() == [second]
    assert second["text"] == "Third words"  # found in the history, then brought up to date
    assert len(slack.seen("chat.postMessage")) == 2

    await make().refresh_war_room(incident=incident, key="r3", greeting="Fourth words")
    assert greetings(channel) == [second] and second["text"] == "Fourth words"
    assert slack.seen("chat.update")[-1].args["ts"] == second["ts"]
    assert len(slack.seen("chat.postMessage")) == 2


async def test_a_room_opened_before_greetings_gets_one_on_refresh(
    slack: FakeSlack, make: MakeChat, app: bootstrap.Container
) -> None:
    incident = await declare(app)
    chat = make()
    await chat.post(incident=incident, text="hello", key="inc-1/remind/1")  # opens a bare room
    [channel] = slack.created_by_bot()
    assert greetings(channel) == [] and channel.pinned() == []
    await chat.refresh_war_room(incident=incident, key="r1", greeting=GREETING)
    await chat.refresh_war_room(incident=incident, key="r2", greeting="Updated")
    [greeting] = greetings(channel)
    assert greeting["text"] == "Updated" and channel.pinned() == [greeting]
    assert len(slack.seen("pins.add")) == 1
    assert [s.args["ts"] for s in slack.seen("chat.update")] == [greeting["ts"]]


async def test_a_failed_pin_is_retried_and_never_posts_a_second_greeting(
    slack: FakeSlack, make: MakeChat, app: bootstrap.Container, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    incident = await declare(app)
    slack.fail(2, status=500, method="pins.add")
    room = await make().open_war_room(incident=incident, key="k", greeting=GREETING)
    channel = slack.channel_named(room.channel)
    assert [s.status for s in slack.seen("pins.add")] == [500, 500, 200]
    assert len(channel.posts()) == 1 and channel.pinned() == channel.posts()

    # Beyond the bound: the step fails, nothing is remembered; the scheduler's retry pins the
    # greeting it posted then.
    other = await declare(app, "Search degraded")
    slack.fail(10, status=503, method="pins.add")
    with pytest.raises(VendorUnavailable, match=r"greeting pin failed after 3 attempt\(s\)") as e:
        await make().open_war_room(incident=other, key="k", greeting=GREETING)
    assert await stored_greeting(app, other, "greeting") is None
    slack.faults.clear()
    room = await make().open_war_room(incident=other, key="k", greeting=GREETING)
    channel = slack.channel_named(room.channel)
    assert len(channel.posts()) == 1 and channel.pinned() == channel.posts()
    assert len(slack.seen("chat.postMessage")) == 2  # one greeting per room
    assert BOT_TOKEN not in str(e.value) and "S3cr3t" not in caplog.text


async def test_greeting_failures_never_carry_the_token(
    slack: FakeSlack, make: MakeChat, app: bootstrap.Container, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    incident = await declare(app)
    chat = make()
    await chat.open_war_room(incident=incident, key="k", greeting=GREETING)
    errors: list[str] = []
    slack.error(1, error="cant_update_message", method="chat.update")
    with pytest.raises(VendorRejected, match=r"chat\.update refused: cant_update_message") as e1:
        await chat.refresh_war_room(incident=incident, key="r1", greeting="new")
    errors.append(str(e1.value))
    slack.error(1, error="invalid_auth", method="chat.update")
    with pytest.raises(VendorRejected, match="INCIDENT_SLACK_BOT_TOKEN") as e2:
        await chat.refresh_war_room(incident=incident, key="r2", greeting="new")
    errors.append(str(e2.value))
    slack.fail(10, status=502, method="chat.update")
    with pytest.raises(VendorUnavailable, match="greeting edit failed") as e3:
        await chat.refresh_war_room(incident=incident, key="r3", greeting="new")
    errors.append(str(e3.value))
    for text in [*errors, caplog.text, repr(chat)]:
        assert BOT_TOKEN not in text and "S3cr3t" not in text


async def test_the_fake_edits_and_pins_as_slack_does(
    slack: FakeSlack, http: aiohttp.ClientSession
) -> None:
    slack.expect_rejections = True
    auth = {"Authorization": f"Bearer {BOT_TOKEN}"}
    general = slack.add_channel("general", members=[slack.bot_user, DANA.id])
    elsewhere = slack.add_channel("elsewhere", members=[DANA.id])

    async def call(
        method: str, *, params: dict[str, str] | None = None, body: Any = None, get: bool = False
    ) -> dict[str, Any]:
        verb = "GET" if get else "POST"
        async with http.request(
            verb, slack.api_url + method, headers=auth, params=params, json=body
        ) as response:
            assert response.status == 200
            answer: dict[str, Any] = await response.json()
            return answer

    meta = {"event_type": "incident_step", "event_payload": {"key": "k"}}
    posted = await call(
        "chat.postMessage", body={"channel": general.id, "text": "a", "metadata": meta}
    )
    ts = posted["ts"]
    theirs = slack.add_message(general, "mine, not the bot's", user=DANA.id)
    g = general.id
    refused: list[tuple[str, dict[str, Any], str]] = [
        ("chat.update", {"body": {"channel": g, "text": "b"}}, "invalid_arguments"),  # no ts
        (
            "chat.update",
            {"body": {"channel": g, "ts": "yesterday", "text": "b"}},
            "message_not_found",
        ),
        ("chat.update", {"body": {"channel": g, "ts": ts}}, "no_text"),
        ("chat.update", {"body": {"channel": g, "ts": ts, "text": "x" * 40_001}}, "msg_too_long"),
        (
            "chat.update",
            {"body": {"channel": g, "ts": ts, "text": "b", "parse": "html"}},
            "invalid_arguments",
        ),
        (
            "chat.update",
            {"body": {"channel": g, "ts": ts, "text": "b", "metadata": meta}},
            "invalid_arguments",
        ),
        (
            "chat.update",
            {"body": {"channel": "C0NOPE", "ts": ts, "text": "b"}},
            "channel_not_found",
        ),
        ("pins.add", {"params": {"channel": g}}, "no_item_specified"),
        ("pins.add", {"params": {"channel": g, "timestamp": "12.3"}}, "bad_timestamp"),
        ("pins.add", {"params": {"channel": "C0NOPE", "timestamp": ts}}, "channel_not_found"),
        ("pins.add", {"params": {"timestamp": ts}}, "invalid_arguments"),  # no channel
        ("pins.list", {"params": {}, "get": True}, "invalid_arguments"),
    ]
    for method, arguments, error in refused:
        answer = await call(method, **arguments)
        assert answer["ok"] is False and answer["error"] == error, (method, error, answer)
    assert len(slack.rejected) == len(refused)
    unchanged = general.message(ts)
    assert unchanged is not None and unchanged["text"] == "a"

    # Refusals Slack gives to good requests: not the bot's message, not found, already pinned.
    assert (await call("chat.update", body={"channel": g, "ts": theirs["ts"], "text": "b"}))[
        "error"
    ] == "cant_update_message"
    gone = {"channel": g, "ts": "1000000000.000001", "text": "b"}
    assert (await call("chat.update", body=gone))["error"] == "message_not_found"
    edited = await call("chat.update", body={"channel": g, "ts": ts, "text": "b", "parse": "none"})
    assert edited["ok"] and (edited["ts"], edited["text"]) == (ts, "b")
    message = general.message(ts)
    assert message is not None and message["text"] == "b" and message["metadata"] == meta
    assert (await call("pins.add", params={"channel": g, "timestamp": ts}))["ok"] is True
    assert (await call("pins.add", params={"channel": g, "timestamp": ts}))["error"] == (
        "already_pinned"
    )
    outside = {"channel": elsewhere.id, "timestamp": ts}
    assert (await call("pins.add", params=outside))["error"] == "not_in_channel"
    missing = {"channel": g, "timestamp": "1000000000.000001"}
    assert (await call("pins.add", params=missing))["error"] == "message_not_found"
    listed = await call("pins.list", params={"channel": g}, get=True)
    [item] = listed["items"]
    assert (item["type"], item["channel"], item["created_by"]) == ("message", g, slack.bot_user)
    assert (item["message"]["ts"], item["message"]["text"]) == (ts, "b")
    history = await call("conversations.history", params={"channel": g})
    assert history["pin_count"] == 1

    slack.delete_message(general, ts)
    assert (await call("pins.list", params={"channel": g}, get=True))["items"] == []
    assert (await call("chat.update", body={"channel": g, "ts": ts, "text": "c"}))["error"] == (
        "message_not_found"
    )
    assert len(slack.rejected) == len(refused)


# --- messages ----------------------------------------------------------------------------------


async def test_posts_go_to_the_war_room_once_per_key(
    slack: FakeSlack, make: MakeChat, app: bootstrap.Container
) -> None:
    incident = await declare(app)
    chat = make()
    await chat.post(incident=incident, text="first", key="inc-1/remind/1")  # opens the room
    await chat.post(incident=incident, text="first", key="inc-1/remind/1")
    await make().post(incident=incident, text="first", key="inc-1/remind/1")
    await chat.post(incident=incident, text="second", key="inc-1/remind/2")
    [channel] = slack.created_by_bot()
    posts = channel.posts()
    assert [m["text"] for m in posts] == ["first", "second"]
    assert metadata_keys(posts) == ["inc-1/remind/1", "inc-1/remind/2"]
    assert posts[0]["metadata"]["event_type"] == "incident_step"
    # Nothing was ever in doubt: history was never searched.
    assert slack.seen("conversations.history") == []


async def test_a_crash_between_posting_and_remembering_does_not_post_twice(
    slack: FakeSlack, make: MakeChat, app: bootstrap.Container
) -> None:
    incident = await declare(app)
    key = "inc-1/customer_update_reminder/3"
    await make().post(incident=incident, text="Time for an update", key=key)
    await forget(app, incident, f"msg:{key}")  # posted, then the process died

    await make().post(incident=incident, text="Time for an update", key=key)
    [channel] = slack.created_by_bot()
    assert [m["text"] for m in channel.posts()] == ["Time for an update"]
    assert len(slack.seen("chat.postMessage")) == 1
    [search] = slack.seen("conversations.history")
    assert search.args["include_all_metadata"] == "1"


async def test_a_post_that_timed_out_after_slack_took_it_is_not_repeated(
    slack: FakeSlack, make: MakeChat, app: bootstrap.Container
) -> None:
    incident = await declare(app)
    chat = make(timeout=0.2)
    await chat.open_war_room(incident=incident, key="k", greeting=GREETING)
    slack.slow(1, seconds=1.0, method="chat.postMessage", took_effect=True)
    await chat.post(incident=incident, text="hello", key="k1")
    slack.drop(1, method="chat.postMessage", took_effect=True)
    await chat.post(incident=incident, text="again", key="k2")
    slack.malformed(1, method="chat.postMessage", took_effect=True)
    await chat.post(incident=incident, text="third", key="k3")
    [channel] = slack.created_by_bot()
    assert [m["text"] for m in step_posts(channel)] == ["hello", "again", "third"]
    assert len(slack.seen("chat.postMessage")) == 4  # and the greeting
    assert len(slack.seen("conversations.history")) == 3


async def test_a_long_message_is_cut_to_what_slack_takes(
    slack: FakeSlack, make: MakeChat, app: bootstrap.Container
) -> None:
    incident = await declare(app)
    await make().post(incident=incident, text="x" * 50_000, key="k")
    [message] = slack.created_by_bot()[0].posts()
    assert len(message["text"]) == TEXT_LIMIT


# --- audiences ----------------------------------------------------------------------------------


async def test_notify_posts_to_each_chat_destination_once(
    slack: FakeSlack, make: MakeChat, app: bootstrap.Container
) -> None:
    incident = await declare(app)
    destinations = [
        "chat:#support-managers",
        "chat:@dana@example.com",
        f"chat:@{ANA.id}",
        "chat:war-room",
    ]
    for chat in (make(), make()):
        await chat.notify(
            incident=incident,
            audience="management",
            destinations=destinations,
            subject="[INC-1 P1] Checkout API down",
            body="Investigating.",
            key="inc-1/notify-management/1",
        )
    managers = slack.channel_named("support-managers")
    assert [m["text"] for m in managers.posts()] == [
        "*[INC-1 P1] Checkout API down*\nInvestigating."
    ]
    assert metadata_keys(managers.posts()) == ["inc-1/notify-management/1#chat:#support-managers"]
    assert len(slack.direct_messages(DANA.id)) == 1
    assert len(slack.direct_messages(ANA.id)) == 1
    [war_room] = slack.created_by_bot()
    assert len(war_room.posts()) == 1
    assert len(slack.seen("chat.postMessage")) == 4


async def test_notify_delivers_what_it_can_and_reports_the_rest(
    slack: FakeSlack, make: MakeChat, app: bootstrap.Container
) -> None:
    incident = await declare(app)
    chat = make()
    with pytest.raises(ValueError, match=r"email:cio@example\.com"):
        await chat.notify(
            incident=incident,
            audience="cio",
            destinations=["chat:#support-managers", "email:cio@example.com"],
            subject="s",
            body="b",
            key="k",
        )
    assert slack.requests == []  # refused before anything was sent

    arguments: dict[str, Any] = {
        "incident": incident,
        "audience": "execs",
        "destinations": ["chat:#exec-escalations", "chat:#support-managers", "chat:@nobody"],
        "subject": "s",
        "body": "b",
        "key": "k2",
    }
    with pytest.raises(VendorRejected) as raised:
        await chat.notify(**arguments)
    assert "#exec-escalations" in str(raised.value) and "nobody" in str(raised.value)
    assert len(slack.channel_named("support-managers").posts()) == 1

    slack.add_channel("exec-escalations", members=[slack.bot_user])
    arguments["destinations"] = arguments["destinations"][:2]
    await make().notify(**arguments)  # the retried step: only what was missing
    assert len(slack.channel_named("support-managers").posts()) == 1
    assert len(slack.channel_named("exec-escalations").posts()) == 1


# --- messages about other subjects (a support case's) -----------------------------------------


def case_topic(clock: FakeClock, case_id: int = 3) -> Topic:
    """Support case `case_id`, opened now."""
    return Topic(SubjectRef("case", case_id), clock.now(), f"CASE-{case_id}")


async def send(
    messenger: Messenger,
    about: Topic,
    *destinations: str,
    key: str,
    subject: str = "[CASE-3] Escalated to L2",
    body: str = "The customer's checkout fails.",
) -> None:
    await messenger.send(
        about=about,
        audience="l2",
        destinations=destinations,
        subject=subject,
        body=body,
        key=key,
    )


def payloads(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m["metadata"]["event_payload"] for m in messages]


async def test_send_posts_a_cases_message_once_per_destination(
    slack: FakeSlack, make: MakeChat, app: bootstrap.Container, clock: FakeClock
) -> None:
    case = case_topic(clock)
    destinations = ("chat:#support-managers", "chat:@ana@example.com")
    chat = make()
    messenger: Messenger = chat  # it is a Messenger
    assert messenger is chat
    await send(chat, case, *destinations, key="case-3/escalate/1")
    await send(chat, case, *destinations, key="case-3/escalate/1")  # the step retried
    await send(make(), case, *destinations, key="case-3/escalate/1")  # after a restart
    [message] = slack.channel_named("support-managers").posts()
    assert message["text"] == "*[CASE-3] Escalated to L2*\nThe customer's checkout fails."
    assert payloads([message]) == [
        {"key": "case-3/escalate/1#chat:#support-managers", "subject": "case-3"}
    ]
    [direct] = slack.direct_messages(ANA.id)
    assert direct["text"] == message["text"]
    assert len(slack.seen("chat.postMessage")) == 2
    assert slack.created_by_bot() == []  # a case has no war room
    # Remembered as the case's, not incident 3's.
    refs = VendorRefs(app.database, clock)
    name = "msg:case-3/escalate/1#chat:#support-managers"
    assert await refs.find(3, "slack", name, kind="case") == message["ts"]
    assert await refs.find(3, "slack", name) is None

    # A crash between posting and remembering: the history names the case's message.
    table = VendorRefRow.__table__  # type: ignore[attr-defined]
    await app.database.run(
        lambda session: session.execute(delete(table).where(table.c.name == name))
    )
    await send(make(), case, *destinations, key="case-3/escalate/1")
    assert len(slack.channel_named("support-managers").posts()) == 1
    assert len(slack.seen("chat.postMessage")) == 2
    assert len(slack.seen("conversations.history")) == 1


async def test_send_escapes_what_people_typed(
    slack: FakeSlack, make: MakeChat, clock: FakeClock
) -> None:
    await send(
        make(),
        case_topic(clock),
        "chat:#support-managers",
        f"chat:@{BO.id}",
        key="case-3/note/1",
        subject="[CASE-3] Tom & Jerry <@U0DANA001>",
        body="Customer wrote: <!channel> look at <https://evil.example|this> & <@U0ANA0001>",
    )
    [message] = slack.channel_named("support-managers").posts()
    assert message["text"] == (
        "*[CASE-3] Tom &amp; Jerry &lt;@U0DANA001&gt;*\n"
        "Customer wrote: &lt;!channel&gt; look at &lt;https://evil.example|this&gt; "
        "&amp; &lt;@U0ANA0001&gt;"
    )
    # A body that is one mention, which the templates' `chat_text` would leave a mention.
    await send(make(), case_topic(clock), "chat:#support-managers", key="k", body="<@U0ANA0001>")
    assert (
        slack.channel_named("support-managers").posts()[-1]["text"].endswith("\n&lt;@U0ANA0001&gt;")
    )
    assert all("<" not in m["text"] for m in slack.direct_messages(BO.id))


async def test_send_refuses_a_war_room_for_a_case_and_still_posts_the_rest(
    slack: FakeSlack, make: MakeChat, clock: FakeClock
) -> None:
    case = case_topic(clock)
    destinations = ("chat:#support-managers", "chat:war-room", "chat:@bo@example.com")
    with pytest.raises(VendorRejected) as raised:
        await send(make(), case, *destinations, key="case-3/escalate/1")
    assert "chat:war-room" in str(raised.value) and "CASE-3" in str(raised.value)
    assert "support-managers" not in str(raised.value) and "bo@" not in str(raised.value)
    assert len(slack.channel_named("support-managers").posts()) == 1
    assert len(slack.direct_messages(BO.id)) == 1
    assert slack.seen("conversations.create") == [] and slack.created_by_bot() == []

    with pytest.raises(VendorRejected, match="chat:war-room"):  # the step retried
        await send(make(), case, *destinations, key="case-3/escalate/1")
    assert len(slack.seen("chat.postMessage")) == 2

    with pytest.raises(ValueError, match=r"email:cio@example\.com"):
        await send(make(), case, "chat:#support-managers", "email:cio@example.com", key="k2")


async def test_an_incidents_and_a_cases_messages_of_one_number_and_key_are_apart(
    slack: FakeSlack, make: MakeChat, app: bootstrap.Container, clock: FakeClock
) -> None:
    incident = await declare(app)
    assert incident.id is not None
    case = case_topic(clock, incident.id)  # case 1 and incident 1
    chat = make()
    await chat.notify(
        incident=incident,
        audience="l2",
        destinations=["chat:#support-managers"],
        subject="Incident",
        body="words",
        key="step/1",
    )
    # The case's first attempt may have posted (a 500): its retry searches the history, where
    # the incident's message carries the same key, and must not take it for the case's.
    slack.fail(1, status=500, method="chat.postMessage")
    await send(chat, case, "chat:#support-managers", key="step/1", subject="Case", body="words")
    await send(make(), case, "chat:#support-managers", key="step/1", subject="Case", body="w")
    await chat.notify(
        incident=incident,
        audience="l2",
        destinations=["chat:#support-managers"],
        subject="Incident",
        body="words",
        key="step/1",
    )
    posts = slack.channel_named("support-managers").posts()
    assert [m["text"] for m in posts] == ["*Incident*\nwords", "*Case*\nwords"]
    key = "step/1#chat:#support-managers"
    assert payloads(posts) == [
        {"key": key, "incident": incident.id},  # as incidents' messages always were
        {"key": key, "subject": f"case-{incident.id}"},
    ]
    assert len(slack.seen("conversations.history")) == 1
    refs = VendorRefs(app.database, clock)
    assert await refs.find(incident.id, "slack", f"msg:{key}") == posts[0]["ts"]
    assert await refs.find(incident.id, "slack", f"msg:{key}", kind="case") == posts[1]["ts"]


async def test_split_sends_a_cases_chat_to_slack_and_keeps_the_rest_in_the_outbox(
    slack: FakeSlack, make: MakeChat, app: bootstrap.Container, clock: FakeClock
) -> None:
    case = case_topic(clock)
    outbox = app.outbox
    split = SplitNotifier({"chat": make()}, default=outbox)
    destinations = ("chat:#support-managers", "email:cio@example.com", "chat:@ana@example.com")
    await send(split, case, *destinations, key="case-3/escalate/1")
    await send(split, case, *destinations, key="case-3/escalate/1")  # retried
    assert len(slack.channel_named("support-managers").posts()) == 1
    assert len(slack.direct_messages(ANA.id)) == 1
    kept = await outbox.messages_about(case.subject)
    assert [m.destination for m in kept] == ["email:cio@example.com"]

    # Slack refuses a case's war room; the outbox keeps its part all the same.
    with pytest.raises(VendorRejected, match="chat:war-room"):
        await send(split, case, "chat:war-room", "email:cio@example.com", key="case-3/x/1")
    kept = await outbox.messages_about(case.subject)
    assert [m.destination for m in kept] == ["email:cio@example.com"] * 2
    assert slack.created_by_bot() == []


# --- faults ------------------------------------------------------------------------------------


async def test_429_waits_as_long_as_retry_after_says(
    slack: FakeSlack, make: MakeChat, app: bootstrap.Container, clock: FakeClock
) -> None:
    incident = await declare(app)
    chat = make()
    await chat.open_war_room(incident=incident, key="k", greeting=GREETING)
    slack.rate_limit(2, retry_after=7, method="chat.postMessage")
    before = clock.now()
    await chat.post(incident=incident, text="hello", key="k1")
    assert clock.now() - before == timedelta(seconds=14)  # waited (virtually) as asked
    assert [s.status for s in slack.seen("chat.postMessage")][1:] == [429, 429, 200]
    assert slack.seen("conversations.history") == []  # a 429 is a clear "not taken"
    assert len(step_posts(slack.created_by_bot()[0])) == 1


async def test_429_in_real_time(slack: FakeSlack, make: MakeChat, app: bootstrap.Container) -> None:
    incident = await declare(app)
    slack.rate_limit(1, retry_after=1, method="auth.test")
    await make(use_clock=SystemClock()).open_war_room(incident=incident, key="k", greeting=GREETING)
    first, second = slack.seen("auth.test")
    assert first.status == 429 and second.status == 200
    assert second.at - first.at >= 1.0


async def test_a_retry_after_beyond_the_cap_gives_up_at_once(
    slack: FakeSlack, make: MakeChat, app: bootstrap.Container
) -> None:
    incident = await declare(app)
    slack.rate_limit(1, retry_after=120)
    with pytest.raises(VendorUnavailable) as raised:
        await make().post(incident=incident, text="t", key="k")
    assert raised.value.retry_after == 120
    assert "429" in str(raised.value) and "wait 120 s" in str(raised.value)
    assert len(slack.requests) == 1


async def test_a_500_burst_within_the_bound_still_posts_once(
    slack: FakeSlack, make: MakeChat, app: bootstrap.Container
) -> None:
    incident = await declare(app)
    chat = make()
    await chat.open_war_room(incident=incident, key="k", greeting=GREETING)
    slack.fail(2, status=500, method="chat.postMessage")
    await chat.post(incident=incident, text="t", key="k1")
    assert [s.status for s in slack.seen("chat.postMessage")][1:] == [500, 500, 200]
    assert len(step_posts(slack.created_by_bot()[0])) == 1
    slack.error(2, error="fatal_error", method="conversations.invite")  # Slack's "not now"
    await chat.invite(incident=incident, people=["bo@example.com"], key="i")
    assert [s.error for s in slack.seen("conversations.invite")][-3:] == [
        "fatal_error",
        "fatal_error",
        None,
    ]


async def test_beyond_the_bound_a_domain_error_without_the_token(
    slack: FakeSlack,
    make: MakeChat,
    app: bootstrap.Container,
    caplog: pytest.LogCaptureFixture,
) -> None:
    incident = await declare(app)
    caplog.set_level(logging.DEBUG)
    slack.fail(10, status=503)
    with pytest.raises(VendorUnavailable) as raised:
        await make().open_war_room(incident=incident, key="k", greeting=GREETING)
    assert str(raised.value) == (
        "Slack: auth.test failed after 3 attempt(s): auth.test: server error (HTTP 503)"
    )
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert len(slack.requests) == FAST.attempts
    assert BOT_TOKEN not in caplog.text and "S3cr3t" not in caplog.text
    actions = [getattr(r, "action", None) for r in caplog.records if hasattr(r, "action")]
    assert actions == ["slack_retry", "slack_retry", "slack_gave_up"]


async def test_a_slack_slower_than_the_timeout_is_unavailable(
    slack: FakeSlack, make: MakeChat, app: bootstrap.Container
) -> None:
    incident = await declare(app)
    chat = make(timeout=0.15, retry=RetryBudget(attempts=2, backoff=0.01))
    await chat.open_war_room(incident=incident, key="k", greeting=GREETING)
    slack.slow(5, seconds=2.0, took_effect=False)
    with pytest.raises(VendorUnavailable, match="timed out"):
        await chat.post(incident=incident, text="t", key="k1")
    assert step_posts(slack.created_by_bot()[0]) == []


async def test_a_refused_connection_is_unavailable(
    make: MakeChat, app: bootstrap.Container
) -> None:
    incident = await declare(app)
    chat = make(url=f"http://127.0.0.1:{closed_port()}/api/")
    with pytest.raises(VendorUnavailable, match="could not connect") as raised:
        await chat.open_war_room(incident=incident, key="k", greeting=GREETING)
    assert BOT_TOKEN not in str(raised.value)


async def test_a_malformed_answer_is_retried_then_reported(
    slack: FakeSlack, make: MakeChat, app: bootstrap.Container
) -> None:
    incident = await declare(app)
    chat = make()
    slack.malformed(1, method="conversations.create")  # took effect, answered HTML
    await chat.open_war_room(incident=incident, key="k", greeting=GREETING)
    assert len(slack.created_by_bot()) == 1

    slack.malformed(3, body="{not json", content_type="application/json", method="auth.test")
    with pytest.raises(VendorUnavailable, match="malformed response"):
        await make().open_war_room(incident=incident, key="k", greeting=GREETING)
    assert [s.fault for s in slack.seen("auth.test")][-3:] == ["malformed"] * 3

    await forget(app, incident, "channel")
    slack.malformed(
        3, body='{"ok": true}', content_type="application/json", method="conversations.create"
    )
    with pytest.raises(VendorUnavailable, match=r"malformed response \(no channel\)"):
        await make().open_war_room(incident=incident, key="k", greeting=GREETING)
    room = await make().open_war_room(
        incident=incident, key="k", greeting=GREETING
    )  # Slack is well again
    assert slack.created_by_bot() == [slack.channel_named(room.channel)]


async def test_a_wrong_token_is_refused_once_without_echoing_it(
    slack: FakeSlack,
    make: MakeChat,
    app: bootstrap.Container,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    slack.expect_rejections = True
    wrong = "xoxb-9999999999-8888888888-Wr0ngWr0ngWr0ng"
    incident = await declare(app)
    with pytest.raises(VendorRejected, match=r"invalid_auth.*INCIDENT_SLACK_BOT_TOKEN") as raised:
        await make(token=wrong).post(incident=incident, text="t", key="k")
    assert wrong not in str(raised.value) and "Wr0ng" not in caplog.text
    assert len(slack.requests) == 1  # a refusal is not retried


async def test_a_slack_down_for_ten_minutes_of_virtual_time(
    slack: FakeSlack, make: MakeChat, app: bootstrap.Container, clock: FakeClock
) -> None:
    incident = await declare(app)
    chat = make(retry=RetryBudget(attempts=3, backoff=1.0))
    await chat.open_war_room(incident=incident, key="k", greeting=GREETING)
    start = clock.now()
    slack.down_until(start + timedelta(minutes=10), clock=clock)
    with pytest.raises(VendorUnavailable, match="HTTP 503"):
        await chat.post(incident=incident, text="t", key="k1")
    assert clock.now() - start < timedelta(seconds=10)  # waits were virtual, and short
    clock.advance(timedelta(minutes=10))
    await chat.post(incident=incident, text="t", key="k1")
    assert len(step_posts(slack.created_by_bot()[0])) == 1


async def test_a_slow_slack_does_not_block_the_event_loop(
    slack: FakeSlack, make: MakeChat, app: bootstrap.Container
) -> None:
    first = await declare(app)
    second = await declare(app, "Search degraded")
    chat = make(timeout=2.0, use_clock=SystemClock())
    slack.slow(1, seconds=0.4, method="conversations.create")
    slack.rate_limit(1, retry_after=1, method="chat.postMessage")
    loop = asyncio.get_running_loop()
    ticks: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            ticks.append(loop.time())
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    await asyncio.gather(
        chat.open_war_room(incident=first, key="k", greeting=GREETING),
        chat.post(incident=second, text="t", key="k2"),
    )
    done.set()
    await task
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert ticks[-1] - ticks[0] >= 1.0
    assert max(gaps) < 0.2
    assert len(slack.created_by_bot()) == 2


# --- the fake is as strict as Slack ------------------------------------------------------------


async def test_the_fake_refuses_what_slack_refuses(
    slack: FakeSlack, http: aiohttp.ClientSession
) -> None:
    slack.expect_rejections = True
    url = slack.api_url
    auth = {"Authorization": f"Bearer {BOT_TOKEN}"}
    general = slack.add_channel("general", members=[slack.bot_user])

    async def call(
        method: str,
        *,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
        body: Any = None,
    ) -> dict[str, Any]:
        async with http.post(
            url + method,
            headers=auth if headers is None else headers,
            params=params,
            data=data,
            json=body,
        ) as response:
            assert response.status == 200
            answer: dict[str, Any] = await response.json()
            return answer

    g = general.id
    link = {"channel_id": g, "type": "link"}
    meta_bad = {"channel": g, "text": "t", "metadata": {"event_type": "x"}}
    refused: list[tuple[str, dict[str, Any], str]] = [
        ("auth.test", {"headers": {}}, "not_authed"),
        ("auth.test", {"headers": {}, "params": {"token": BOT_TOKEN}}, "invalid_auth"),
        ("auth.test", {"headers": {"Authorization": "Bearer xoxp-user"}}, "invalid_auth"),
        ("auth.test", {"headers": {"Authorization": BOT_TOKEN}}, "invalid_auth"),
        ("conversations.create", {"params": {}}, "invalid_arguments"),
        ("conversations.create", {"params": {"name": "Inc-1-Upper"}}, "invalid_name_specials"),
        ("conversations.create", {"params": {"name": "inc 1"}}, "invalid_name_specials"),
        ("conversations.create", {"params": {"name": "x" * 81}}, "invalid_name_maxlength"),
        ("conversations.create", {"params": {"name": "--"}}, "invalid_name_punctuation"),
        ("conversations.create", {"params": {"name": "ok", "privat": "1"}}, "invalid_arguments"),
        (
            "conversations.create",
            {"params": {"name": "ok", "is_private": "y"}},
            "invalid_arguments",
        ),
        ("users.lookupByEmail", {"body": {"email": "ana@example.com"}}, "invalid_arguments"),
        ("conversations.setTopic", {"body": {"channel": g, "topic": "t" * 251}}, "too_long"),
        (
            "conversations.setTopic",
            {"body": {"channel": "C0NO", "topic": "t"}},
            "channel_not_found",
        ),
        ("chat.postMessage", {"body": {"channel": g}}, "no_text"),
        ("chat.postMessage", {"body": {"channel": g, "text": "x" * 40_001}}, "msg_too_long"),
        (
            "chat.postMessage",
            {"body": {"channel": g, "text": "t", "token": BOT_TOKEN}},
            "invalid_auth",
        ),
        ("chat.postMessage", {"body": meta_bad}, "invalid_metadata_schema"),
        (
            "chat.postMessage",
            {"data": {"channel": g, "text": "t", "metadata": "{nope"}},
            "invalid_metadata_format",
        ),
        ("bookmarks.add", {"params": {**link, "title": "t", "link": "ftp://x"}}, "invalid_link"),
        (
            "bookmarks.add",
            {"params": {**link, "title": "t" * 257, "link": "https://x"}},
            "invalid_arguments",
        ),
        ("conversations.history", {"params": {"channel": g, "limit": "many"}}, "invalid_arguments"),
        ("conversations.list", {"params": {"limit": "1000"}}, "invalid_limit"),
        ("conversations.list", {"params": {"cursor": "%%%"}}, "invalid_cursor"),
        ("conversations.kick", {"params": {"channel": g}}, "unknown_method"),
    ]
    for method, arguments, error in refused:
        answer = await call(method, **arguments)
        assert answer["ok"] is False and answer["error"] == error, (method, error, answer)
    assert len(slack.rejected) == len(refused)

    # And what it accepts, in each form Slack takes: query, form with the token, JSON.
    accepted: list[tuple[str, dict[str, Any]]] = [
        ("conversations.create", {"params": {"name": "inc-9_ok", "is_private": "0"}}),
        ("auth.test", {"headers": {}, "data": {"token": BOT_TOKEN}}),
        (
            "chat.postMessage",
            {
                "body": {
                    "channel": "#general",
                    "text": "t",
                    "metadata": {"event_type": "incident_step", "event_payload": {"key": "k"}},
                }
            },
        ),
        (
            "chat.postMessage",
            {
                "data": {
                    "channel": g,
                    "text": "t",
                    "metadata": json.dumps({"event_type": "e", "event_payload": {}}),
                }
            },
        ),
    ]
    for method, arguments in accepted:
        answer = await call(method, **arguments)
        assert answer["ok"] is True, (method, answer)
    assert len(slack.rejected) == len(refused)
    assert slack.channel_named("inc-9_ok").creator == slack.bot_user
    assert len(general.posts()) == 2

    # History leaves the payload out unless asked for all metadata.
    plain = await call("conversations.history", params={"channel": general.id})
    full = await call(
        "conversations.history", params={"channel": general.id, "include_all_metadata": "true"}
    )
    assert plain["messages"][1]["metadata"] == {"event_type": "incident_step"}
    assert full["messages"][1]["metadata"]["event_payload"] == {"key": "k"}
