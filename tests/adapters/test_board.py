"""The Board port (a message kept up to date): Slack against the strict local Slack Web API
(one message per key, edited in place with chat.update), and the outbox (one record per key)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
from sqlalchemy import delete

from incident import bootstrap
from incident.adapters.database.tables import VendorRefRow
from incident.adapters.database.vendor_refs import VendorRefs
from incident.adapters.vendors.outbox import BOARD_SUBJECT
from incident.adapters.vendors.slack import SlackChat, slack_client
from incident.clock import FakeClock
from incident.domain.incident import Severity
from incident.domain.records import SubjectRef
from incident.services.incidents import declare_incident
from incident.services.ports import Board, Topic
from tests.adapters.test_slack_chat import ANA, BOT_TOKEN, FAST
from tests.vendor_fakes.slack import FakeSlack

CHANNEL = "account-verification"
DESTINATION = f"chat:#{CHANNEL}"
KEY = "verify-3/board"


@pytest.fixture
async def slack(clock: FakeClock) -> AsyncIterator[FakeSlack]:
    fake = FakeSlack(bot_token=BOT_TOKEN, users=[ANA], clock=clock)
    async with fake:
        fake.add_channel(CHANNEL, members=[fake.bot_user, ANA.id])
        yield fake
    if not fake.expect_rejections:
        assert fake.rejected == [], [(s.method, s.problems) for s in fake.rejected]


@pytest.fixture
async def make(
    slack: FakeSlack, app: bootstrap.Container, clock: FakeClock
) -> AsyncIterator[Callable[[], SlackChat]]:
    async with aiohttp.ClientSession() as session:

        def build() -> SlackChat:
            """A new adapter each time: what a restarted process has (nothing in memory)."""
            client = slack_client(token=BOT_TOKEN, base_url=slack.api_url, session=session)
            return SlackChat(
                client=client, refs=VendorRefs(app.database, clock), clock=clock, retry=FAST
            )

        yield build


def case(clock: FakeClock) -> Topic:
    return Topic(SubjectRef("verification", 3), clock.now(), "VER-3")


async def forget(app: bootstrap.Container, name: str) -> None:
    """What a crash between posting and remembering leaves: no reference of that name."""
    table = VendorRefRow.__table__  # type: ignore[attr-defined]
    await app.database.run(
        lambda session: session.execute(delete(table).where(table.c.name == name))
    )


async def test_the_first_show_posts_and_later_ones_edit_that_message(
    slack: FakeSlack, make: Callable[[], SlackChat], clock: FakeClock
) -> None:
    board: Board = make()
    await board.show(about=case(clock), destination=DESTINATION, text="Status: opened", key=KEY)
    await board.show(about=case(clock), destination=DESTINATION, text="Status: asked", key=KEY)
    await make().show(  # after a restart
        about=case(clock), destination=DESTINATION, text="Status: <proof> received", key=KEY
    )
    [message] = slack.channel_named(CHANNEL).posts()
    assert message["text"] == "Status: &lt;proof&gt; received"  # plain text, escaped
    assert message["metadata"]["event_payload"] == {"key": KEY, "subject": "verification-3"}
    assert len(slack.seen("chat.postMessage")) == 1
    assert [s.args["ts"] for s in slack.seen("chat.update")] == [message["ts"]] * 2


async def test_the_same_text_again_sends_nothing(
    slack: FakeSlack, make: Callable[[], SlackChat], clock: FakeClock
) -> None:
    board = make()
    await board.show(about=case(clock), destination=DESTINATION, text="Status: opened", key=KEY)
    calls = len(slack.requests)
    await board.show(about=case(clock), destination=DESTINATION, text="Status: opened", key=KEY)
    assert len(slack.requests) == calls  # not a call to Slack
    await board.show(about=case(clock), destination=DESTINATION, text="Status: asked", key=KEY)
    # After a restart: only the channel's id is looked up again, the message is not touched.
    await make().show(about=case(clock), destination=DESTINATION, text="Status: asked", key=KEY)
    assert slack.calls()[-1] == "conversations.list"
    assert len(slack.seen("chat.update")) == 1
    # Back to an earlier text is a change too: it is what the message says now that counts.
    await board.show(about=case(clock), destination=DESTINATION, text="Status: opened", key=KEY)
    [message] = slack.channel_named(CHANNEL).posts()
    assert message["text"] == "Status: opened" and len(slack.seen("chat.update")) == 2


async def test_a_crash_between_posting_and_remembering_does_not_post_twice(
    slack: FakeSlack, make: Callable[[], SlackChat], app: bootstrap.Container, clock: FakeClock
) -> None:
    await make().show(about=case(clock), destination=DESTINATION, text="Status: opened", key=KEY)
    await forget(app, f"msg:{KEY}")  # the ts was never written down
    await forget(app, f"shown:{KEY}")
    await make().show(about=case(clock), destination=DESTINATION, text="Status: asked", key=KEY)
    [message] = slack.channel_named(CHANNEL).posts()
    assert message["text"] == "Status: asked"  # found in the history, then edited
    assert len(slack.seen("chat.postMessage")) == 1
    assert len(slack.seen("conversations.history")) == 1


async def test_a_post_that_timed_out_after_slack_took_it_is_not_repeated(
    slack: FakeSlack, make: Callable[[], SlackChat], clock: FakeClock
) -> None:
    slack.drop(method="chat.postMessage", took_effect=True)
    await make().show(about=case(clock), destination=DESTINATION, text="Status: opened", key=KEY)
    [message] = slack.channel_named(CHANNEL).posts()
    assert message["text"] == "Status: opened"
    await make().show(about=case(clock), destination=DESTINATION, text="Status: asked", key=KEY)
    assert slack.channel_named(CHANNEL).posts() == [message]
    assert message["text"] == "Status: asked"


async def test_a_message_deleted_by_someone_is_posted_again_then_kept(
    slack: FakeSlack, make: Callable[[], SlackChat], clock: FakeClock
) -> None:
    channel = slack.channel_named(CHANNEL)
    await make().show(about=case(clock), destination=DESTINATION, text="one", key=KEY)
    [first] = channel.posts()
    slack.delete_message(channel, first["ts"])
    await make().show(about=case(clock), destination=DESTINATION, text="two", key=KEY)
    await make().show(about=case(clock), destination=DESTINATION, text="three", key=KEY)
    [second] = channel.posts()
    assert second["text"] == "three"
    assert second["metadata"]["event_payload"]["key"] == f"{KEY}#2"
    assert [s.error for s in slack.seen("chat.update")] == ["message_not_found", None]


async def test_the_outbox_keeps_one_record_per_key_with_the_latest_text(
    app: bootstrap.Container, clock: FakeClock
) -> None:
    incident, _ = await declare_incident(app.runtime, title="t", severity=Severity.P2, by="d")
    about = Topic.incident(incident)
    board: Board = app.outbox
    for text in ("Status: opened", "Status: asked", "Status: asked"):
        await board.show(about=about, destination=DESTINATION, text=text, key=KEY)
    await board.show(about=case(clock), destination=DESTINATION, text="other", key="other")
    kept = [m for m in await app.outbox.messages() if m.idempotency_key == KEY]
    assert [(m.destination, m.subject, m.body) for m in kept] == [
        (DESTINATION, BOARD_SUBJECT, "Status: asked")
    ]
    [other] = await app.outbox.messages_about(SubjectRef("verification", 3))
    assert other.body == "other"
