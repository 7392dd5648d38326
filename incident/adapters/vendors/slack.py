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

Faults: the client's own retry handlers are switched off (they sleep on the event loop's
clock, not ours, and retry 429 at the vendor's pace without a bound we choose). Each Web API
call is one attempt bounded by `timeout`; 429 (honouring Retry-After up to a cap), 5xx,
timeouts, refused or dropped connections, malformed answers and Slack's transient errors are
retried a bounded number of times with waits through the Clock, then raise
`VendorUnavailable`; a refusal (`ok: false` with a permanent error) raises `VendorRejected`.
Neither, nor any log line, carries the bot token.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import unicodedata
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from incident.adapters.database.vendor_refs import VendorRefs
from incident.adapters.vendors.retries import RetryBudget, retry_after_seconds
from incident.clock import Clock
from incident.domain.incident import Incident, war_room_name
from incident.services.ports import VendorError, VendorRejected, VendorUnavailable, WarRoom

log = logging.getLogger("incident.adapters.slack")

VENDOR = "slack"
VENDOR_NAME = "Slack"
API_URL = "https://slack.com/api/"
EVENT_TYPE = "incident_step"  # the metadata event our messages carry, with their key

# Limits Slack documents: channel names, topics, message text.
NAME_LIMIT = 80
TOPIC_LIMIT = 250
TEXT_LIMIT = 40_000
NAME_SUFFIXES = range(2, 11)  # a name taken by someone else: try -2 ... -10
GREETING_REF = "greeting"  # VendorRefs: the pinned greeting's ts (`greeting#2` ... its successors)
GREETING_GENERATIONS = 100  # greetings a room may have (each deleted by hand but the last)
GREETING_REPOSTS = 3  # greetings deleted while we post them, within one call, before giving up
LIST_PAGE = 200  # channels per page of conversations.list
LIST_PAGES = 50  # a workspace of 10,000 public channels at most is searched for a name
HISTORY_PAGE = 200  # messages per page of conversations.history
HISTORY_PAGES = 10
CLOCK_SKEW = 300.0  # seconds of disagreement between our clock and Slack's we allow for
REF_NAME_LIMIT = 80  # VendorRefRow.name

# Slack errors that say "not now" rather than "no".
TRANSIENT_ERRORS = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"}
)
AUTH_ERRORS = frozenset(
    {
        "not_authed",
        "invalid_auth",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "no_permission",
        "missing_scope",
        "not_allowed_token_type",
    }
)
USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
MENTION = re.compile(r"^<@([UW][A-Z0-9]{2,})(?:\|[^>]*)?>$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

T = TypeVar("T")


def slack_client(
    *,
    token: str,
    base_url: str = API_URL,
    session: aiohttp.ClientSession | None = None,
    timeout: int = 30,
) -> AsyncWebClient:
    """An async Web API client for `SlackChat` (bot token `xoxb-...`).

    `session`: a long-lived aiohttp session its owner closes (without one, the client opens a
    session per call); `timeout`: the client's own bound per call (SlackChat bounds each
    attempt itself too). Its retry handlers are off: SlackChat retries.
    """
    return AsyncWebClient(
        token=token, base_url=base_url, session=session, timeout=timeout, retry_handlers=[]
    )


@dataclass(frozen=True)
class SlackWarRoom(WarRoom):
    """The war room as Slack has it: `channel` is its name, `channel_id` Slack's id."""

    channel_id: str = ""
    members: tuple[str, ...] = ()  # the people asked for who are in the channel now
    not_found: tuple[str, ...] = ()  # people asked for who have no Slack account we can find


@dataclass(frozen=True)
class _Room:
    id: str
    name: str
    creator: str
    created: float
    topic: str
    archived: bool


class _Failed(Exception):
    """One attempt failed; handled by the retry loop."""

    def __init__(
        self,
        reason: str,
        *,
        retryable: bool,
        retry_after: str | None = None,
        ambiguous: bool = True,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after  # the raw header value, if Slack sent one
        # Slack may have acted on the request (a timeout, a dropped connection, a 5xx); False
        # when its answer says it did not (429, a refusal).
        self.ambiguous = ambiguous


class SlackChat:
    """Implements Chat (and Notifier for `chat:` destinations) with Slack's Web API.

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
        self._client = client
        client.retry_handlers = []
        self._refs = refs
        self._clock = clock
        self._retry = retry or RetryBudget()
        self._timeout = timeout
        self._conference_url_template = conference_url_template
        self._status_page_url = status_page_url
        self._runbook_url = runbook_url
        self._secret = client.token or ""
        self._bot: str | None = None
        self._users: dict[str, str | None] = {}  # e-mail -> user id (None: no such user)
        self._named: dict[str, str] = {}  # channel name -> id
        self._ims: dict[str, str] = {}  # user id -> direct message channel id

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
        incident_id = _id(incident)
        room = await self._ensure_room(incident)
        await self._ensure_topic(room, incident, incident_id=incident_id)
        wanted = [incident.commander, *people] if incident.commander else list(people)
        members, not_found = await self._invite(room, wanted, incident_id=incident_id)
        conference = self._conference(incident, room.name)
        links = [
            ("Conference", conference, ":telephone_receiver:"),
            ("Status page", self._status_page_url, ":traffic_light:"),
            ("Runbook", runbook_url or self._runbook_url, ":books:"),
        ]
        await self._ensure_bookmarks(
            room, [(t, u, e) for t, u, e in links if u], incident_id=incident_id
        )
        await self._greet(room.id, greeting, incident_id=incident_id, edit=False)
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
        incident_id = _id(incident)
        channel = await self._room_id(incident)
        await self._deliver(
            incident_id=incident_id, channel=channel, text=text, key=key, where="the war room"
        )

    async def refresh_war_room(self, *, incident: Incident, key: str, greeting: str) -> None:
        """The Chat port's refresh: topic, then the commander invited (both no-ops when
        already so), then the pinned greeting edited to `greeting`: posted and pinned instead
        when the room has none (opened before greetings) or someone deleted it. Nothing when
        there is no war room."""
        await self.update_topic(incident=incident, key=key)
        if incident.commander:
            await self.invite(incident=incident, people=[incident.commander], key=key)
        incident_id = _id(incident)
        channel = await self._refs.find(incident_id, VENDOR, "channel")
        if channel is not None:
            await self._greet(channel, greeting, incident_id=incident_id, edit=True)

    async def update_topic(self, *, incident: Incident, key: str) -> None:
        """Make the war room's topic show the incident's severity, status and commander (no
        call that changes anything when it already does; nothing when there is no room)."""
        incident_id = _id(incident)
        channel = await self._refs.find(incident_id, VENDOR, "channel")
        if channel is None:
            return
        room = await self._info(channel, incident_id=incident_id)
        await self._ensure_topic(room, incident, incident_id=incident_id)

    async def invite(
        self, *, incident: Incident, people: Sequence[str], key: str
    ) -> tuple[list[str], list[str]]:
        """Invite people to the war room, if there is one: (in the room now, not found)."""
        incident_id = _id(incident)
        channel = await self._refs.find(incident_id, VENDOR, "channel")
        if channel is None:
            return [], []
        room = _Room(channel, "", "", 0.0, "", archived=False)
        return await self._invite(room, people, incident_id=incident_id)

    # --- Notifier (chat destinations) ----------------------------------------------------------

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
        app is in), `chat:@U123` or `chat:@person@example.com` (a direct message), or
        `chat:war-room`. Every destination is tried; the failures are raised together."""
        incident_id = _id(incident)
        others = [d for d in destinations if not d.startswith("chat:")]
        if others:
            raise ValueError(
                f"SlackChat delivers chat: destinations only; route {', '.join(others)} "
                "to another notifier"
            )
        text = f"*{subject}*\n{body}"
        failures: list[tuple[str, VendorError]] = []
        for destination in destinations:
            try:
                channel = await self._destination(incident, destination.removeprefix("chat:"))
                await self._deliver(
                    incident_id=incident_id,
                    channel=channel,
                    text=text,
                    key=f"{key}#{destination}",
                    where=destination,
                )
            except VendorError as error:
                failures.append((destination, error))
        if failures:
            reason = f"notify {audience}: " + "; ".join(f"{d}: {e.reason}" for d, e in failures)
            unavailable = [e for _, e in failures if isinstance(e, VendorUnavailable)]
            if unavailable:
                waits = [e.retry_after for e in unavailable if e.retry_after is not None]
                raise VendorUnavailable(
                    VENDOR_NAME, reason, retry_after=max(waits) if waits else None
                )
            raise VendorRejected(VENDOR_NAME, reason)

    # --- the war room --------------------------------------------------------------------------

    async def _room_id(self, incident: Incident) -> str:
        stored = await self._refs.find(_id(incident), VENDOR, "channel")
        return stored if stored is not None else (await self._ensure_room(incident)).id

    async def _ensure_room(self, incident: Incident) -> _Room:
        incident_id = _id(incident)
        stored = await self._refs.find(incident_id, VENDOR, "channel")
        if stored is not None:
            return await self._info(stored, incident_id=incident_id)
        bot = await self._bot_user(incident_id)
        base = channel_name(incident)
        for name in [base, *(_suffixed(base, n) for n in NAME_SUFFIXES)]:
            room = await self._retrying(
                f"creation of #{name}",
                partial(self._create_or_adopt, name, incident, bot),
                incident_id=incident_id,
            )
            if room is None:
                log.warning(
                    "channel name taken by someone else",
                    extra={
                        "action": "slack_channel_name_taken",
                        "incident_id": incident_id,
                        "channel_name": name,
                    },
                )
                continue
            stored = await self._refs.remember(incident_id, VENDOR, "channel", room.id)
            if stored != room.id:  # another run stored its room first: that one is the room
                return await self._info(stored, incident_id=incident_id)
            return room
        raise VendorRejected(
            VENDOR_NAME,
            f"no free channel name for {incident.ref}: #{base} and its -2 ... -10 variants "
            "are taken by channels this app did not create for it",
        )

    async def _create_or_adopt(self, name: str, incident: Incident, bot: str) -> _Room | None:
        """One attempt: create the channel, or find the one of that name we made before."""
        data = await self._api(
            "conversations.create",
            partial(self._client.conversations_create, name=name),
            accept=("name_taken",),
        )
        if data.get("ok") is True:
            return _room(data.get("channel"))
        existing = await self._find_channel(name, types="public_channel")
        if (
            existing is not None
            and existing.creator == bot
            and not existing.archived
            and existing.created + CLOCK_SKEW >= incident.declared_at.timestamp()
        ):
            return existing
        return None

    async def _find_channel(self, name: str, *, types: str) -> _Room | None:
        cursor: str | None = None
        for _ in range(LIST_PAGES):
            data = await self._api(
                "conversations.list",
                partial(
                    self._client.conversations_list,
                    types=types,
                    exclude_archived=True,
                    limit=LIST_PAGE,
                    cursor=cursor,
                ),
            )
            channels = data.get("channels")
            if not isinstance(channels, list):
                raise _Failed("malformed response (channel list)", retryable=True)
            for entry in channels:
                if isinstance(entry, dict) and entry.get("name") == name:
                    return _room(entry)
            cursor = _next_cursor(data)
            if not cursor:
                return None
        return None

    async def _info(self, channel: str, *, incident_id: int) -> _Room:
        async def attempt() -> _Room:
            data = await self._api(
                "conversations.info", partial(self._client.conversations_info, channel=channel)
            )
            return _room(data.get("channel"))

        return await self._retrying("war room lookup", attempt, incident_id=incident_id)

    async def _ensure_topic(self, room: _Room, incident: Incident, *, incident_id: int) -> None:
        topic = war_room_topic(incident)
        if room.topic == topic:
            return
        await self._retrying(
            "topic update",
            partial(
                self._api,
                "conversations.setTopic",
                partial(self._client.conversations_setTopic, channel=room.id, topic=topic),
            ),
            incident_id=incident_id,
        )

    async def _invite(
        self, room: _Room, people: Sequence[str], *, incident_id: int
    ) -> tuple[list[str], list[str]]:
        bot = await self._bot_user(incident_id)
        members: list[str] = []
        not_found: list[str] = []
        for person in dict.fromkeys(p.strip() for p in people if p.strip()):
            user = await self._user_id(person, incident_id=incident_id)
            if user is None:
                not_found.append(person)
                continue
            if user != bot:
                data = await self._retrying(
                    "invitation",
                    partial(
                        self._api,
                        "conversations.invite",
                        partial(self._client.conversations_invite, channel=room.id, users=user),
                        accept=("already_in_channel", "cant_invite_self", "user_not_found"),
                    ),
                    incident_id=incident_id,
                )
                if data.get("error") == "user_not_found":
                    not_found.append(person)
                    continue
            members.append(person)
        if not_found:
            log.warning(
                "people not found in Slack",
                extra={
                    "action": "slack_people_not_found",
                    "incident_id": incident_id,
                    "count": len(not_found),
                },
            )
        return members, not_found

    async def _ensure_bookmarks(
        self, room: _Room, wanted: Sequence[tuple[str, str, str]], *, incident_id: int
    ) -> None:
        if not wanted:
            return

        async def attempt() -> None:
            # Listed again on every attempt: an add that timed out may have taken effect.
            data = await self._api(
                "bookmarks.list", partial(self._client.bookmarks_list, channel_id=room.id)
            )
            present = data.get("bookmarks")
            if not isinstance(present, list):
                raise _Failed("malformed response (bookmark list)", retryable=True)
            links = {b.get("link") for b in present if isinstance(b, dict)}
            for title, link, emoji in wanted:
                if link in links:
                    continue
                await self._api(
                    "bookmarks.add",
                    partial(
                        self._client.bookmarks_add,
                        channel_id=room.id,
                        title=title,
                        type="link",
                        link=link,
                        emoji=emoji,
                    ),
                )
                links.add(link)

        await self._retrying("bookmarks", attempt, incident_id=incident_id)

    # --- messages ------------------------------------------------------------------------------

    async def _deliver(
        self, *, incident_id: int, channel: str, text: str, key: str, where: str
    ) -> tuple[str, bool]:
        """Post `text` to `channel` once per `key`: the message's ts, and whether this call
        posted it (False: an earlier attempt did, perhaps with another text)."""
        done_name = _ref_name("msg", key)
        done = await self._refs.find(incident_id, VENDOR, done_name)
        if done is not None:
            return done, False
        started = self._clock.now().timestamp()
        intent = f"{started:.6f}/{uuid.uuid4().hex}"
        stored = await self._refs.remember(incident_id, VENDOR, _ref_name("try", key), intent)
        # An intent stored before ours: an earlier run may have posted and then died.
        maybe_posted = stored != intent
        since = _intent_time(stored, default=started) - CLOCK_SKEW
        text = _fit(text)
        posted = True

        async def attempt() -> str:
            nonlocal maybe_posted, posted
            if maybe_posted:
                found = await self._find_posted(channel, key, since=since)
                if found is not None:
                    posted = False
                    return found
            try:
                data = await self._api(
                    "chat.postMessage",
                    partial(
                        self._client.chat_postMessage,
                        channel=channel,
                        text=text,
                        metadata={
                            "event_type": EVENT_TYPE,
                            "event_payload": {"key": key, "incident": incident_id},
                        },
                        unfurl_links=False,
                    ),
                )
            except _Failed as failure:
                maybe_posted = maybe_posted or failure.ambiguous
                raise
            ts = data.get("ts")
            if not isinstance(ts, str) or not ts:
                raise _Failed("malformed response (message without ts)", retryable=True)
            return ts

        ts = await self._retrying(f"post to {where}", attempt, incident_id=incident_id)
        await self._refs.remember(incident_id, VENDOR, done_name, ts)
        log.info(
            "posted to Slack" if posted else "found our earlier post in Slack",
            extra={
                "action": "slack_posted" if posted else "slack_post_found",
                "incident_id": incident_id,
                "channel": channel,
                "key": key,
            },
        )
        return ts, posted

    async def _find_posted(self, channel: str, key: str, *, since: float) -> str | None:
        """The ts of the message carrying `key` posted since `since`, if there is one."""
        cursor: str | None = None
        for _ in range(HISTORY_PAGES):
            data = await self._api(
                "conversations.history",
                partial(
                    self._client.conversations_history,
                    channel=channel,
                    oldest=f"{max(since, 0.0):.6f}",
                    limit=HISTORY_PAGE,
                    include_all_metadata=True,
                    cursor=cursor,
                ),
            )
            messages = data.get("messages")
            if not isinstance(messages, list):
                raise _Failed("malformed response (history)", retryable=True)
            for message in messages:
                if _carries(message, key):
                    return str(message["ts"])
            cursor = _next_cursor(data)
            if not data.get("has_more") or not cursor:
                return None
        return None

    async def _destination(self, incident: Incident, target: str) -> str:
        """The channel id a `chat:` destination (without its prefix) posts to."""
        incident_id = _id(incident)
        if target == "war-room":
            return await self._room_id(incident)
        if target.startswith("#"):
            return await self._channel_named(target[1:], incident_id=incident_id)
        if CHANNEL_ID.match(target):
            return target
        person = target.removeprefix("@")
        user = await self._user_id(person, incident_id=incident_id)
        if user is None:
            raise VendorRejected(
                VENDOR_NAME, f"no Slack user for {person!r} (name a user id or an e-mail address)"
            )
        if user not in self._ims:

            async def attempt() -> str:
                data = await self._api(
                    "conversations.open", partial(self._client.conversations_open, users=user)
                )
                channel = data.get("channel")
                if not isinstance(channel, dict) or not isinstance(channel.get("id"), str):
                    raise _Failed("conversations.open: malformed response", retryable=True)
                return str(channel["id"])

            self._ims[user] = await self._retrying(
                "direct message", attempt, incident_id=incident_id
            )
        return self._ims[user]

    async def _channel_named(self, name: str, *, incident_id: int) -> str:
        if name not in self._named:
            room = await self._retrying(
                f"lookup of #{name}",
                partial(self._find_channel, name, types="public_channel,private_channel"),
                incident_id=incident_id,
            )
            if room is None:
                raise VendorRejected(
                    VENDOR_NAME,
                    f"no channel #{name} that the app can see: create it, or invite the app",
                )
            self._named[name] = room.id
        return self._named[name]

    # --- the greeting --------------------------------------------------------------------------

    async def _greet(self, channel: str, text: str, *, incident_id: int, edit: bool) -> str:
        """Make sure the war room has its pinned greeting; `edit`: saying `text`. Its ts.

        A greeting is remembered only once pinned; one that is not remembered yet (a first
        attempt, or one that failed or crashed after posting) is delivered once per
        generation, so a retry finds the message it posted. A greeting deleted by someone is
        followed by the next generation.
        """
        generation, ts = await self._current_greeting(incident_id)
        if ts is not None:
            if not edit or await self._edit(channel, ts, text, incident_id=incident_id):
                return ts
            log.warning(
                "war room greeting deleted in Slack; posting it again",
                extra={"action": "slack_greeting_gone", "incident_id": incident_id, "ts": ts},
            )
        for _ in range(GREETING_REPOSTS):
            generation += 1
            if generation > GREETING_GENERATIONS:
                break
            ts, posted = await self._deliver(
                incident_id=incident_id,
                channel=channel,
                text=text,
                key=greeting_key(incident_id, generation),
                where="the war room (greeting)",
            )
            # Posted by an earlier attempt: it may say what the greeting said then.
            if (
                not posted
                and edit
                and not await self._edit(channel, ts, text, incident_id=incident_id)
            ):
                continue  # and it has been deleted since
            if not await self._pin(channel, ts, incident_id=incident_id):
                continue  # deleted before we could pin it
            await self._refs.remember(incident_id, VENDOR, _greeting_ref(generation), ts)
            log.info(
                "war room greeting pinned",
                extra={
                    "action": "slack_greeting_pinned",
                    "incident_id": incident_id,
                    "channel": channel,
                    "generation": generation,
                },
            )
            return ts
        raise VendorRejected(
            VENDOR_NAME,
            f"the war room's greeting was deleted as soon as it was posted, {generation} times "
            "in all; leave the pinned greeting in the channel (edit it there if it must change)",
        )

    async def _current_greeting(self, incident_id: int) -> tuple[int, str | None]:
        """(generation, ts) of the latest greeting remembered; (0, None) if none is."""
        generation, ts = 0, None
        while generation < GREETING_GENERATIONS:
            found = await self._refs.find(incident_id, VENDOR, _greeting_ref(generation + 1))
            if found is None:
                break
            generation, ts = generation + 1, found
        return generation, ts

    async def _edit(self, channel: str, ts: str, text: str, *, incident_id: int) -> bool:
        """Edit our message `ts` to say `text`; False if it is gone (deleted by someone)."""
        data = await self._retrying(
            "greeting edit",
            partial(
                self._api,
                "chat.update",
                partial(
                    self._client.chat_update,
                    channel=channel,
                    ts=ts,
                    text=_fit(text),
                    # chat.update's default is `client`, not chat.postMessage's `none`: without
                    # it an edit would be formatted otherwise than the message it replaces.
                    parse="none",
                ),
                accept=("message_not_found",),
            ),
            incident_id=incident_id,
        )
        return data.get("ok") is True

    async def _pin(self, channel: str, ts: str, *, incident_id: int) -> bool:
        """Pin our message `ts` (already pinned is done); False if it is gone."""
        data = await self._retrying(
            "greeting pin",
            partial(
                self._api,
                "pins.add",
                partial(self._client.pins_add, channel=channel, timestamp=ts),
                accept=("already_pinned", "message_not_found"),
            ),
            incident_id=incident_id,
        )
        return data.get("error") != "message_not_found"

    # --- people --------------------------------------------------------------------------------

    async def _bot_user(self, incident_id: int | None) -> str:
        if self._bot is None:

            async def attempt() -> str:
                data = await self._api("auth.test", self._client.auth_test)
                user = data.get("user_id")
                if not isinstance(user, str) or not user:
                    raise _Failed("auth.test: malformed response", retryable=True)
                return user

            self._bot = await self._retrying("auth.test", attempt, incident_id=incident_id)
        return self._bot

    async def _user_id(self, person: str, *, incident_id: int) -> str | None:
        """A Slack user id for an e-mail address, a user id or a `<@U...>` mention."""
        mention = MENTION.match(person)
        if mention:
            return mention.group(1)
        if USER_ID.match(person):
            return person
        if not EMAIL.match(person):
            return None
        email = person.lower()
        if email not in self._users:

            async def attempt() -> str | None:
                data = await self._api(
                    "users.lookupByEmail",
                    partial(self._client.users_lookupByEmail, email=email),
                    accept=("users_not_found",),
                )
                if data.get("ok") is not True:
                    return None  # no such user
                user = data.get("user")
                found = user.get("id") if isinstance(user, dict) else None
                if not isinstance(found, str):
                    raise _Failed("users.lookupByEmail: malformed response", retryable=True)
                return found

            self._users[email] = await self._retrying(
                "user lookup", attempt, incident_id=incident_id
            )
        return self._users[email]

    # --- one call, and the bounded retry ---------------------------------------------------------

    async def _api(
        self,
        method: str,
        send: Callable[[], Awaitable[AsyncSlackResponse]],
        *,
        accept: Collection[str] = (),
    ) -> dict[str, Any]:
        """One attempt of one Web API call: its answer (`ok`, or an error in `accept`)."""
        try:
            async with asyncio.timeout(self._timeout):
                response = await send()
        except SlackApiError as error:
            return self._refused(method, error, accept)
        except TimeoutError:
            raise _Failed(f"{method} timed out", retryable=True) from None
        except aiohttp.ClientConnectorError:
            raise _Failed(f"{method}: could not connect", retryable=True) from None
        except (aiohttp.ClientError, OSError) as error:
            raise _Failed(
                f"{method}: connection failed ({type(error).__name__})", retryable=True
            ) from None
        except (ValueError, AttributeError):
            # slack_sdk trips over some bodies that are not JSON (a text/plain page).
            raise _Failed(f"{method}: malformed response", retryable=True) from None
        data = response.data
        if not isinstance(data, dict) or data.get("ok") is not True:
            raise _Failed(f"{method}: malformed response", retryable=True)
        return data

    def _refused(
        self, method: str, error: SlackApiError, accept: Collection[str]
    ) -> dict[str, Any]:
        response = error.response
        if not isinstance(response, AsyncSlackResponse):  # the body was not JSON
            raise _Failed(f"{method}: malformed response", retryable=True)
        status = response.status_code
        data = response.data
        retry_after = response.headers.get("Retry-After") if response.headers else None
        if status == 429:
            raise _Failed(
                f"{method}: rate limited (HTTP 429)",
                retryable=True,
                retry_after=retry_after,
                ambiguous=False,
            )
        if status >= 500:
            raise _Failed(
                f"{method}: server error (HTTP {status})", retryable=True, retry_after=retry_after
            )
        if status != 200:
            raise _Failed(f"{method}: refused (HTTP {status})", retryable=False, ambiguous=False)
        code = data.get("error") if isinstance(data, dict) else None
        if not isinstance(data, dict) or not isinstance(code, str):
            raise _Failed(f"{method}: malformed response", retryable=True)
        if code in accept:
            return data
        # Slack's error is a short code; an endpoint that echoes the request there must not
        # carry our token into errors, logs or the timeline.
        code = self._redacted(code[:200])
        if code in TRANSIENT_ERRORS:
            raise _Failed(
                f"{method}: {code}",
                retryable=True,
                retry_after=retry_after,
                ambiguous=code != "ratelimited",
            )
        hint = (
            " (check INCIDENT_SLACK_BOT_TOKEN and the app's scopes)" if code in AUTH_ERRORS else ""
        )
        raise _Failed(
            f"{method} refused: {code}{hint}{self._detail(data)}", retryable=False, ambiguous=False
        )

    def _detail(self, data: Mapping[str, Any]) -> str:
        """Slack's own words about a refusal (`response_metadata.messages`), short and clean."""
        meta = data.get("response_metadata")
        messages = meta.get("messages") if isinstance(meta, dict) else None
        if not isinstance(messages, list) or not messages:
            return ""
        return f" ({self._redacted('; '.join(str(m) for m in messages)[:300])})"

    def _redacted(self, text: str) -> str:
        return text.replace(self._secret, "[redacted]") if self._secret else text

    async def _retrying(
        self, operation: str, attempt: Callable[[], Awaitable[T]], *, incident_id: int | None
    ) -> T:
        """Run `attempt` until it succeeds, retrying transient failures a bounded number of
        times with waits through the Clock."""
        budget = self._retry
        tries = 0
        while True:
            tries += 1
            try:
                return await attempt()
            except _Failed as failure:
                if not failure.retryable:
                    raise VendorRejected(VENDOR_NAME, f"{operation}: {failure.reason}") from None
                asked = retry_after_seconds(failure.retry_after, self._clock.now())
                wait = self._retry.wait(tries, asked)
                if wait is None or tries >= budget.attempts:
                    reason = f"{operation} failed after {tries} attempt(s): {failure.reason}"
                    if wait is None:
                        reason += f"; Slack asks to wait {asked:.0f} s"
                    log.warning(
                        "Slack call gave up",
                        extra={
                            "action": "slack_gave_up",
                            "incident_id": incident_id,
                            "operation": operation,
                            "attempt": tries,
                            "reason": failure.reason,
                        },
                    )
                    raise VendorUnavailable(VENDOR_NAME, reason, retry_after=asked) from None
                log.warning(
                    "Slack call failed; retrying",
                    extra={
                        "action": "slack_retry",
                        "incident_id": incident_id,
                        "operation": operation,
                        "attempt": tries,
                        "reason": failure.reason,
                        "wait_seconds": round(wait, 3),
                    },
                )
                await self._clock.sleep(wait)

    def _conference(self, incident: Incident, channel: str) -> str | None:
        if not self._conference_url_template:
            return None
        return self._conference_url_template.format(
            id=incident.id, ref=incident.ref, channel=channel
        )


# --- pure helpers --------------------------------------------------------------------------------


def channel_name(incident: Incident) -> str:
    """The war room's Slack channel name: the domain's `war_room_name`, made of what Slack
    allows (lowercase ASCII letters, digits, `-`, `_`), short enough for a `-10` suffix."""
    folded = unicodedata.normalize("NFKD", war_room_name(incident))
    ascii_only = folded.encode("ascii", "ignore").decode().lower()
    name = re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9_-]", "-", ascii_only)).strip("-")
    name = name[: NAME_LIMIT - 3].rstrip("-")
    return name or f"inc-{_id(incident)}"


def war_room_topic(incident: Incident) -> str:
    """`INC-42 P1 | investigating | IC: dana | Checkout API down`, at most 250 characters."""
    commander = incident.commander or "unassigned"
    topic = (
        f"{incident.ref} {incident.severity.value} | {incident.status.value} | "
        f"IC: {commander} | {incident.title}"
    )
    return topic if len(topic) <= TOPIC_LIMIT else topic[: TOPIC_LIMIT - 1] + "…"


def greeting_key(incident_id: int, generation: int = 1) -> str:
    """The delivery key of a war room's greeting (of its `generation`-th message)."""
    key = f"inc-{incident_id}/war-room/greeting"
    return key if generation == 1 else f"{key}#{generation}"


def _greeting_ref(generation: int) -> str:
    return GREETING_REF if generation == 1 else f"{GREETING_REF}#{generation}"


def _fit(text: str) -> str:
    """Text cut to what Slack shows of a message."""
    return text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 1] + "…"


def _suffixed(base: str, n: int) -> str:
    return f"{base}-{n}"


def _room(value: Any) -> _Room:
    if not isinstance(value, dict):
        raise _Failed("malformed response (no channel)", retryable=True)
    ident, name, topic = value.get("id"), value.get("name"), value.get("topic")
    if not isinstance(ident, str) or not isinstance(name, str):
        raise _Failed("malformed response (channel without id or name)", retryable=True)
    created = value.get("created")
    return _Room(
        id=ident,
        name=name,
        creator=str(value.get("creator") or ""),
        created=float(created) if isinstance(created, int | float) else 0.0,
        topic=str(topic.get("value") or "") if isinstance(topic, dict) else "",
        archived=value.get("is_archived") is True,
    )


def _next_cursor(data: Mapping[str, Any]) -> str | None:
    meta = data.get("response_metadata")
    cursor = meta.get("next_cursor") if isinstance(meta, dict) else None
    return cursor if isinstance(cursor, str) and cursor else None


def _carries(message: Any, key: str) -> bool:
    if not isinstance(message, dict) or not isinstance(message.get("ts"), str):
        return False
    metadata = message.get("metadata")
    if not isinstance(metadata, dict) or metadata.get("event_type") != EVENT_TYPE:
        return False
    payload = metadata.get("event_payload")
    return isinstance(payload, dict) and payload.get("key") == key


def _ref_name(prefix: str, key: str) -> str:
    """A VendorRefs name for a key; long keys are hashed to fit the column."""
    name = f"{prefix}:{key}"
    if len(name) <= REF_NAME_LIMIT:
        return name
    return f"{prefix}#{hashlib.sha256(key.encode()).hexdigest()[:48]}"


def _intent_time(stored: str, *, default: float) -> float:
    try:
        return float(stored.split("/", 1)[0])
    except ValueError:
        return default


def _id(incident: Incident) -> int:
    if incident.id is None:
        raise ValueError("the incident must be stored (have an id) before it has a war room")
    return incident.id
