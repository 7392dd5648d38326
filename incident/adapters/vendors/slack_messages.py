"""Messages in Slack, each posted once per key, and the war room's pinned greeting.

As `slack.py` describes: a message is remembered (VendorRefs `msg:<key>` -> its `ts`) right
after it is posted and carries its key in its metadata; an intent (`try:<key>`) stored before
the first attempt, or an attempt that may have posted, makes the next one search the
channel's history for the key before posting again. Both are the message's subject's: its
refs are kept under its kind and id, and its metadata names it (`incident: 3` for an
incident, as always; `subject: case-3` for another kind), so a case's message and an
incident's of one number and key are never taken for each other. The greeting is one
message per generation, delivered so, and remembered (`greeting`, `greeting#2` ...) once
pinned.
"""

from __future__ import annotations

import hashlib
import uuid
from functools import partial
from typing import Any

from incident.adapters.database.vendor_refs import VendorRefs
from incident.adapters.vendors.slack_api import (
    CLOCK_SKEW,
    VENDOR,
    VENDOR_NAME,
    CallFailed,
    SlackApi,
    log,
    next_cursor,
)
from incident.clock import Clock
from incident.domain.records import INCIDENT, SubjectRef
from incident.services.ports import VendorRejected

EVENT_TYPE = "incident_step"  # the metadata event our messages carry, with their key
TEXT_LIMIT = 40_000  # what Slack documents of message text
GREETING_REF = "greeting"  # VendorRefs: the pinned greeting's ts (`greeting#2` ... its successors)
GREETING_GENERATIONS = 100  # greetings a room may have (each deleted by hand but the last)
GREETING_REPOSTS = 3  # greetings deleted while we post them, within one call, before giving up
HISTORY_PAGE = 200  # messages per page of conversations.history
HISTORY_PAGES = 10
REF_NAME_LIMIT = 80  # VendorRefRow.name


class SlackMessages:
    """Posts messages, each once per key about its subject."""

    def __init__(self, *, api: SlackApi, refs: VendorRefs, clock: Clock) -> None:
        self._api = api
        self._refs = refs
        self._clock = clock

    async def deliver(
        self, *, subject: SubjectRef, channel: str, text: str, key: str, where: str
    ) -> tuple[str, bool]:
        """Post `text` to `channel` once per `key` about `subject`: the message's ts, and
        whether this call posted it (False: an earlier attempt did, perhaps with another
        text)."""
        incident_id = logged_id(subject)
        done_name = ref_name("msg", key)
        done = await self._refs.find(subject.id, VENDOR, done_name, kind=subject.kind)
        if done is not None:
            return done, False
        started = self._clock.now().timestamp()
        intent = f"{started:.6f}/{uuid.uuid4().hex}"
        stored = await self._refs.remember(
            subject.id, VENDOR, ref_name("try", key), intent, kind=subject.kind
        )
        # An intent stored before ours: an earlier run may have posted and then died.
        maybe_posted = stored != intent
        since = _intent_time(stored, default=started) - CLOCK_SKEW
        text = fit(text)
        posted = True

        async def attempt() -> str:
            nonlocal maybe_posted, posted
            if maybe_posted:
                found = await self._find_posted(channel, key, subject, since=since)
                if found is not None:
                    posted = False
                    return found
            try:
                data = await self._api.call(
                    "chat.postMessage",
                    partial(
                        self._api.client.chat_postMessage,
                        channel=channel,
                        text=text,
                        metadata={
                            "event_type": EVENT_TYPE,
                            "event_payload": {"key": key, **_names(subject)},
                        },
                        unfurl_links=False,
                    ),
                )
            except CallFailed as failure:
                maybe_posted = maybe_posted or failure.ambiguous
                raise
            ts = data.get("ts")
            if not isinstance(ts, str) or not ts:
                raise CallFailed("malformed response (message without ts)", retryable=True)
            return ts

        ts = await self._api.retrying(f"post to {where}", attempt, incident_id=incident_id)
        await self._refs.remember(subject.id, VENDOR, done_name, ts, kind=subject.kind)
        log.info(
            "posted to Slack" if posted else "found our earlier post in Slack",
            extra={
                "action": "slack_posted" if posted else "slack_post_found",
                "incident_id": incident_id,
                "subject": subject.key,
                "channel": channel,
                "key": key,
            },
        )
        return ts, posted

    async def edit(
        self, channel: str, ts: str, text: str, *, operation: str, incident_id: int | None
    ) -> bool:
        """Edit our message `ts` to say `text`; False if it is gone (deleted by someone).
        Editing to the text it has already is harmless: a retried edit changes nothing."""
        data = await self._api.call_retrying(
            operation,
            "chat.update",
            partial(
                self._api.client.chat_update,
                channel=channel,
                ts=ts,
                text=fit(text),
                # chat.update's default is `client`, not chat.postMessage's `none`: without
                # it an edit would be formatted otherwise than the message it replaces.
                parse="none",
            ),
            accept=("message_not_found",),
            incident_id=incident_id,
        )
        return data.get("ok") is True

    async def _find_posted(
        self, channel: str, key: str, subject: SubjectRef, *, since: float
    ) -> str | None:
        """The ts of the message carrying `key` about `subject` posted since `since`, if
        there is one."""
        cursor: str | None = None
        for _ in range(HISTORY_PAGES):
            data = await self._api.call(
                "conversations.history",
                partial(
                    self._api.client.conversations_history,
                    channel=channel,
                    oldest=f"{max(since, 0.0):.6f}",
                    limit=HISTORY_PAGE,
                    include_all_metadata=True,
                    cursor=cursor,
                ),
            )
            messages = data.get("messages")
            if not isinstance(messages, list):
                raise CallFailed("malformed response (history)", retryable=True)
            for message in messages:
                if _carries(message, key, subject):
                    return str(message["ts"])
            cursor = next_cursor(data)
            if not data.get("has_more") or not cursor:
                return None
        return None


class SlackGreeting:
    """The war room's greeting: one message, posted once, pinned, edited in place."""

    def __init__(self, *, api: SlackApi, messages: SlackMessages, refs: VendorRefs) -> None:
        self._api = api
        self._messages = messages
        self._refs = refs

    async def greet(self, channel: str, text: str, *, incident_id: int, edit: bool) -> str:
        """Make sure the war room has its pinned greeting; `edit`: saying `text`. Its ts.

        A greeting is remembered only once pinned; one that is not remembered yet (a first
        attempt, or one that failed or crashed after posting) is delivered once per
        generation, so a retry finds the message it posted. A greeting deleted by someone is
        followed by the next generation.
        """
        generation, ts = await self._current(incident_id)
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
            ts, posted = await self._messages.deliver(
                subject=SubjectRef.incident(incident_id),
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

    async def _current(self, incident_id: int) -> tuple[int, str | None]:
        """(generation, ts) of the latest greeting remembered; (0, None) if none is."""
        generation, ts = 0, None
        while generation < GREETING_GENERATIONS:
            found = await self._refs.find(incident_id, VENDOR, _greeting_ref(generation + 1))
            if found is None:
                break
            generation, ts = generation + 1, found
        return generation, ts

    async def _edit(self, channel: str, ts: str, text: str, *, incident_id: int) -> bool:
        return await self._messages.edit(
            channel, ts, text, operation="greeting edit", incident_id=incident_id
        )

    async def _pin(self, channel: str, ts: str, *, incident_id: int) -> bool:
        """Pin our message `ts` (already pinned is done); False if it is gone."""
        data = await self._api.call_retrying(
            "greeting pin",
            "pins.add",
            partial(self._api.client.pins_add, channel=channel, timestamp=ts),
            accept=("already_pinned", "message_not_found"),
            incident_id=incident_id,
        )
        return data.get("error") != "message_not_found"


def greeting_key(incident_id: int, generation: int = 1) -> str:
    """The delivery key of a war room's greeting (of its `generation`-th message)."""
    key = f"inc-{incident_id}/war-room/greeting"
    return key if generation == 1 else f"{key}#{generation}"


def fit(text: str) -> str:
    """Text cut to what Slack shows of a message."""
    return text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 1] + "…"


def logged_id(subject: SubjectRef) -> int | None:
    """What the logs' `incident_id` says of a subject: its id if it is an incident's."""
    return subject.id if subject.kind == INCIDENT else None


def _names(subject: SubjectRef) -> dict[str, int | str]:
    """How a message's metadata names its subject: an incident by its id (as it always
    has), another kind by its key (`case-3`)."""
    return {"incident": subject.id} if subject.kind == INCIDENT else {"subject": subject.key}


def _greeting_ref(generation: int) -> str:
    return GREETING_REF if generation == 1 else f"{GREETING_REF}#{generation}"


def _carries(message: Any, key: str, subject: SubjectRef) -> bool:
    if not isinstance(message, dict) or not isinstance(message.get("ts"), str):
        return False
    metadata = message.get("metadata")
    if not isinstance(metadata, dict) or metadata.get("event_type") != EVENT_TYPE:
        return False
    payload = metadata.get("event_payload")
    if not isinstance(payload, dict) or payload.get("key") != key:
        return False
    names = _names(subject)
    return all(payload.get(field) == names.get(field) for field in ("incident", "subject"))


def ref_name(prefix: str, key: str) -> str:
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
