"""Slack as the Chat: war rooms (channel, topic, members, bookmarks) and the playbook's messages,
through `slack_sdk`'s async Web API client.

Idempotency, since Slack has no idempotency key:

- The war room is a channel with a deterministic name (`inc-42-checkout-api-down`). Its id is
  stored (VendorRefs `slack`/`channel`) as soon as it exists and used for every later call. A
  retry that finds the name taken (`name_taken`) looks the channel up and adopts it only if
  this app created it (`creator` is our bot user, from `auth.test`) since the incident was
  declared; a channel of that name made by anyone else, archived, or older than the incident
  is left alone and the next name is tried (`-2`, `-3` ... `-10`).
- Topic, members and bookmarks are made to match: the topic is set only when it differs,
  `already_in_channel` counts as done, bookmarks are listed before any is added.
- A message is remembered (VendorRefs `msg:<key>` -> its `ts`) right after it is posted, and
  carries its key in its metadata (`event_type` `incident_step`). Before the first attempt an
  intent (`try:<key>`, with the time) is stored; when an intent is found, or an attempt
  failed in a way that may have posted (timeout, dropped connection, 5xx, malformed answer),
  the channel's history since the intent is searched for the key before posting again. So a
  crash between posting and remembering, or a post that timed out after Slack took it, never
  posts twice.
- The war room's greeting (what the incident is, who runs it, links, next steps) is one
  message, posted once, pinned, and edited in place (`chat.update`) by every refresh. Each
  generation of it is delivered as above with a key of its own (`inc-<id>/war-room/greeting`,
  then `...#2`, `...#3` for one posted again because someone deleted the last), and
  remembered (VendorRefs `greeting`, `greeting#2` ...) only once it is pinned (`already_pinned`
  counts as done): so a remembered greeting is a pinned one, and a retry after a crash or a
  failed pin finds the message it posted instead of posting another.
- Messages about another kind of subject (`send`: a support case's) are delivered the same
  way, their refs kept under that subject (VendorRefs `kind`) and their metadata naming it
  (`subject: case-3`), so case 3's message is never taken for incident 3's of the same key.

Faults: each Web API call is one attempt bounded by `timeout`, and transient failures are
retried a bounded number of times with waits through the Clock, then raise
`VendorUnavailable`; a refusal raises `VendorRejected`. Neither, nor any log line, carries
the bot token (see `slack_api`).

The parts, each a small class `SlackChat` holds: `slack_api.SlackApi` (one call and the
bounded retry), `slack_directory.SlackDirectory` (our bot user, people, channels by name),
`slack_war_room.SlackWarRooms` (the channel, its topic, members and bookmarks),
`slack_messages.SlackMessages` (a message once per key), `slack_messages.SlackGreeting`
(the pinned greeting) and `slack_board.SlackBoard` (messages kept up to date, the Board
port). `SlackChat` is the Chat port (and Notifier and Messenger for
`chat:`) on them.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial

from slack_sdk.web.async_client import AsyncWebClient

from incident.adapters.database.vendor_refs import VendorRefs
from incident.adapters.vendors.retries import RetryBudget
from incident.adapters.vendors.slack_api import (
    API_URL,
    VENDOR,
    VENDOR_NAME,
    SlackApi,
    log,
    slack_client,
)
from incident.adapters.vendors.slack_board import SlackBoard
from incident.adapters.vendors.slack_directory import SlackDirectory
from incident.adapters.vendors.slack_messages import (
    EVENT_TYPE,
    TEXT_LIMIT,
    SlackGreeting,
    SlackMessages,
    greeting_key,
    logged_id,
)
from incident.adapters.vendors.slack_war_room import (
    SlackWarRooms,
    channel_name,
    stored_id,
    war_room_topic,
)
from incident.clock import Clock
from incident.domain.chat_commands import escape
from incident.domain.incident import Incident
from incident.domain.records import INCIDENT, SubjectRef
from incident.services.ports import (
    Topic,
    VendorError,
    VendorRejected,
    WarRoom,
    each_said,
    failed_together,
)

# The adapter's public names; those defined in its other modules are imported from here too.
__all__ = [
    "API_URL",
    "EVENT_TYPE",
    "TEXT_LIMIT",
    "VENDOR",
    "VENDOR_NAME",
    "SlackChat",
    "SlackWarRoom",
    "channel_name",
    "greeting_key",
    "slack_client",
    "war_room_topic",
]

CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
PREFIX = "chat:"
WAR_ROOM = "war-room"  # `chat:war-room`: the incident's war room


@dataclass(frozen=True)
class SlackWarRoom(WarRoom):
    """The war room as Slack has it: `channel` is its name, `channel_id` Slack's id."""

    channel_id: str = ""
    members: tuple[str, ...] = ()  # the people asked for who are in the channel now
    not_found: tuple[str, ...] = ()  # people asked for who have no Slack account we can find


class SlackChat:
    """Implements Chat (and Notifier, Messenger and Board for `chat:` destinations) with
    Slack's Web API.

    It is handed its client (see `slack_client`; whoever made it closes its session) and
    switches off the client's own retrying: this adapter's bounded retry replaces it.
    """

    def __init__(
        self,
        *,
        client: AsyncWebClient,
        refs: VendorRefs,
        clock: Clock,
        retry: RetryBudget | None = None,
        timeout: float = 10.0,
        conference_url_template: str | None = None,
        status_page_url: str | None = None,
        runbook_url: str | None = None,
    ) -> None:
        """`timeout`: seconds one Web API call may take; `conference_url_template`: the war
        room's conference link (`{id}`, `{ref}`, `{channel}`); `status_page_url`,
        `runbook_url`: bookmarked in every war room (a step may name its own runbook)."""
        api = SlackApi(client=client, clock=clock, retry=retry or RetryBudget(), timeout=timeout)
        self._directory = SlackDirectory(api)
        self._rooms = SlackWarRooms(api=api, directory=self._directory, refs=refs)
        self._messages = SlackMessages(api=api, refs=refs, clock=clock)
        self._greeting = SlackGreeting(api=api, messages=self._messages, refs=refs)
        self._board = SlackBoard(messages=self._messages, refs=refs)
        self._conference_url_template = conference_url_template
        self._status_page_url = status_page_url
        self._runbook_url = runbook_url

    # --- Chat --------------------------------------------------------------------------------

    async def open_war_room(
        self,
        *,
        incident: Incident,
        key: str,
        greeting: str,
        people: Sequence[str] = (),
        runbook_url: str | None = None,
    ) -> SlackWarRoom:
        """Open (or, when retried, find and complete) the incident's war room: the channel,
        its topic, the commander and `people` invited (e-mail addresses, Slack user ids or
        `<@U...>` mentions), bookmarks for the conference, the status page and the runbook,
        and `greeting` (Slack mrkdwn, sent as it is) posted once and pinned. A retry leaves
        a greeting already pinned as it is: `refresh_war_room` edits it."""
        incident_id = stored_id(incident)
        room = await self._rooms.ensure_room(incident)
        await self._rooms.ensure_topic(room, incident, incident_id=incident_id)
        wanted = [incident.commander, *people] if incident.commander else list(people)
        members, not_found = await self._rooms.invite(room.id, wanted, incident_id=incident_id)
        conference = self._conference(incident, room.name)
        links = [
            ("Conference", conference, ":telephone_receiver:"),
            ("Status page", self._status_page_url, ":traffic_light:"),
            ("Runbook", runbook_url or self._runbook_url, ":books:"),
        ]
        await self._rooms.ensure_bookmarks(
            room, [(t, u, e) for t, u, e in links if u], incident_id=incident_id
        )
        await self._greeting.greet(room.id, greeting, incident_id=incident_id, edit=False)
        log.info(
            "war room open in Slack",
            extra={
                "action": "slack_war_room_opened",
                "incident_id": incident_id,
                "channel": room.id,
                "key": key,
                "not_found": len(not_found),
            },
        )
        return SlackWarRoom(
            channel=room.name,
            conference_url=conference,
            channel_id=room.id,
            members=tuple(members),
            not_found=tuple(not_found),
        )

    async def post(self, *, incident: Incident, text: str, key: str) -> None:
        """Post to the war room (opened first if it is not yet). Once per `key`."""
        incident_id = stored_id(incident)
        channel = await self._rooms.room_id(incident)
        await self._messages.deliver(
            subject=SubjectRef.incident(incident_id),
            channel=channel,
            text=text,
            key=key,
            where="the war room",
        )

    async def refresh_war_room(self, *, incident: Incident, key: str, greeting: str) -> None:
        """The Chat port's refresh: topic, then the commander invited (both no-ops when
        already so), then the pinned greeting edited to `greeting`: posted and pinned instead
        when the room has none (opened before greetings) or someone deleted it. Nothing when
        there is no war room."""
        await self.update_topic(incident=incident, key=key)
        if incident.commander:
            await self.invite(incident=incident, people=[incident.commander], key=key)
        incident_id = stored_id(incident)
        channel = await self._rooms.stored(incident_id)
        if channel is not None:
            await self._greeting.greet(channel, greeting, incident_id=incident_id, edit=True)

    async def update_topic(self, *, incident: Incident, key: str) -> None:
        """Make the war room's topic show the incident's severity, status and commander (no
        call that changes anything when it already does; nothing when there is no room)."""
        incident_id = stored_id(incident)
        channel = await self._rooms.stored(incident_id)
        if channel is None:
            return
        room = await self._rooms.info(channel, incident_id=incident_id)
        await self._rooms.ensure_topic(room, incident, incident_id=incident_id)

    async def invite(
        self, *, incident: Incident, people: Sequence[str], key: str
    ) -> tuple[list[str], list[str]]:
        """Invite people to the war room, if there is one: (in the room now, not found)."""
        incident_id = stored_id(incident)
        channel = await self._rooms.stored(incident_id)
        if channel is None:
            return [], []
        return await self._rooms.invite(channel, people, incident_id=incident_id)

    # --- Board ---------------------------------------------------------------------------------

    async def show(self, *, about: Topic, destination: str, text: str, key: str) -> None:
        """Keep the one message of `key` about `about` at `destination` (a `chat:`
        destination, as `send` takes) saying `text` (plain text, escaped whole for mrkdwn as
        `send` escapes): posted once, then edited in place (see `slack_board`)."""
        if not destination.startswith(PREFIX):
            raise ValueError(f"SlackChat keeps chat: messages only, not {destination}")
        target = destination.removeprefix(PREFIX)
        channel = (
            await self._open_war_room_of(about)
            if target == WAR_ROOM
            else await self._destination(about.subject, target)
        )
        await self._board.show(
            subject=about.subject, channel=channel, text=escape(text), key=key, where=destination
        )

    # --- Notifier and Messenger (chat destinations) -------------------------------------------

    async def notify(
        self,
        *,
        incident: Incident,
        audience: str,
        destinations: Sequence[str],
        subject: str,
        body: str,
        key: str,
    ) -> None:
        """Post to each `chat:` destination once per `key`: `chat:#channel` (a channel the
        app is in), `chat:@U123` or `chat:@person@example.com` (a direct message), a channel
        id, or `chat:war-room` (opened first if it is not yet). `subject` and `body` are
        Slack mrkdwn (the templates made people's words safe), sent as they are. Every
        destination is tried; the failures are raised together."""
        await self._post_each(
            about=SubjectRef.incident(stored_id(incident)),
            audience=audience,
            destinations=destinations,
            text=f"*{subject}*\n{body}",
            key=key,
            war_room=partial(self._rooms.room_id, incident),
        )

    async def send(
        self,
        *,
        about: Topic,
        audience: str,
        destinations: Sequence[str],
        subject: str,
        body: str,
        key: str,
    ) -> None:
        """Post a message about any subject (a support case ...) to each `chat:` destination
        once per `key` and subject, as `notify` does. `subject` and `body` are plain text
        (people's words in them), escaped whole for mrkdwn: nothing in them pings or links.
        `chat:war-room` is an incident's room: refused for another kind of subject, and for
        an incident whose room is not open (`notify`, which has the incident, opens it)."""
        await self._post_each(
            about=about.subject,
            audience=audience,
            destinations=destinations,
            text=f"*{escape(subject)}*\n{escape(body)}",
            key=key,
            war_room=partial(self._open_war_room_of, about),
        )

    async def _post_each(
        self,
        *,
        about: SubjectRef,
        audience: str,
        destinations: Sequence[str],
        text: str,
        key: str,
        war_room: Callable[[], Awaitable[str]],
    ) -> None:
        """Deliver `text` to each `chat:` destination once per `key` about `about`
        (`war_room`: the channel id `chat:war-room` posts to). Every destination is tried;
        the failures are raised together: `VendorUnavailable` if any may pass later."""
        others = [d for d in destinations if not d.startswith(PREFIX)]
        if others:
            raise ValueError(
                f"SlackChat delivers chat: destinations only; route {', '.join(others)} "
                "to another notifier"
            )
        failures: list[tuple[str, VendorError]] = []
        for destination in destinations:
            target = destination.removeprefix(PREFIX)
            try:
                channel = (
                    await war_room()
                    if target == WAR_ROOM
                    else await self._destination(about, target)
                )
                await self._messages.deliver(
                    subject=about,
                    channel=channel,
                    text=text,
                    key=f"{key}#{destination}",
                    where=destination,
                )
            except VendorError as error:
                failures.append((destination, error))
        if failures:
            reason = f"notify {audience}: {each_said(failures)}"
            raise failed_together(VENDOR_NAME, reason, [e for _, e in failures])

    async def _open_war_room_of(self, about: Topic) -> str:
        """The channel id of the war room `chat:war-room` names in a message about `about`:
        an incident's that is open; refused otherwise."""
        if about.subject.kind != INCIDENT:
            raise VendorRejected(
                VENDOR_NAME,
                f"{about.label} is not an incident and has no war room: name a channel "
                "(chat:#name) or a person (chat:@person)",
            )
        channel = await self._rooms.stored(about.subject.id)
        if channel is None:
            raise VendorRejected(VENDOR_NAME, f"{about.label} has no war room open yet")
        return channel

    async def _destination(self, about: SubjectRef, target: str) -> str:
        """The channel id a `chat:` destination (without its prefix), but the war room,
        posts to."""
        incident_id = logged_id(about)
        if target.startswith("#"):
            return await self._directory.channel_named(target[1:], incident_id=incident_id)
        if CHANNEL_ID.match(target):
            return target
        person = target.removeprefix("@")
        user = await self._directory.user_id(person, incident_id=incident_id)
        if user is None:
            raise VendorRejected(
                VENDOR_NAME, f"no Slack user for {person!r} (name a user id or an e-mail address)"
            )
        return await self._directory.direct_message(user, incident_id=incident_id)

    def _conference(self, incident: Incident, channel: str) -> str | None:
        if not self._conference_url_template:
            return None
        return self._conference_url_template.format(
            id=incident.id, ref=incident.ref, channel=channel
        )
