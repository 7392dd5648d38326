"""The war room as a Slack channel: found or created under its deterministic name, its topic,
its members and its bookmarks made to match what the incident needs.

Each part is idempotent as `slack.py` describes: the channel's id is stored (VendorRefs
`slack`/`channel`) as soon as it exists, a channel of our name is adopted only if this app
made it since the incident was declared, the topic is set only when it differs,
`already_in_channel` counts as done and bookmarks are listed before any is added.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import partial

from incident.adapters.database.vendor_refs import VendorRefs
from incident.adapters.vendors.slack_api import (
    CLOCK_SKEW,
    VENDOR,
    VENDOR_NAME,
    CallFailed,
    Room,
    SlackApi,
    log,
    parse_room,
)
from incident.adapters.vendors.slack_directory import SlackDirectory
from incident.domain.incident import Incident, war_room_name
from incident.services.ports import VendorRejected

# Limits Slack documents: channel names, topics.
NAME_LIMIT = 80
TOPIC_LIMIT = 250
NAME_SUFFIXES = range(2, 11)  # a name taken by someone else: try -2 ... -10


class SlackWarRooms:
    """Opens an incident's war room channel and keeps its topic, members and bookmarks."""

    def __init__(self, *, api: SlackApi, directory: SlackDirectory, refs: VendorRefs) -> None:
        self._api = api
        self._directory = directory
        self._refs = refs

    async def stored(self, incident_id: int) -> str | None:
        """The war room's channel id, if it has been opened."""
        return await self._refs.find(incident_id, VENDOR, "channel")

    async def room_id(self, incident: Incident) -> str:
        """The war room's channel id, the room opened first if it is not yet."""
        stored = await self.stored(stored_id(incident))
        return stored if stored is not None else (await self.ensure_room(incident)).id

    async def ensure_room(self, incident: Incident) -> Room:
        incident_id = stored_id(incident)
        stored = await self.stored(incident_id)
        if stored is not None:
            return await self.info(stored, incident_id=incident_id)
        bot = await self._directory.bot_user(incident_id)
        base = channel_name(incident)
        for name in [base, *(_suffixed(base, n) for n in NAME_SUFFIXES)]:
            room = await self._api.retrying(
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
                return await self.info(stored, incident_id=incident_id)
            return room
        raise VendorRejected(
            VENDOR_NAME,
            f"no free channel name for {incident.ref}: #{base} and its -2 ... -10 variants "
            "are taken by channels this app did not create for it",
        )

    async def _create_or_adopt(self, name: str, incident: Incident, bot: str) -> Room | None:
        """One attempt: create the channel, or find the one of that name we made before."""
        data = await self._api.call(
            "conversations.create",
            partial(self._api.client.conversations_create, name=name),
            accept=("name_taken",),
        )
        if data.get("ok") is True:
            return parse_room(data.get("channel"))
        existing = await self._directory.find_channel(name, types="public_channel")
        if (
            existing is not None
            and existing.creator == bot
            and not existing.archived
            and existing.created + CLOCK_SKEW >= incident.declared_at.timestamp()
        ):
            return existing
        return None

    async def info(self, channel: str, *, incident_id: int) -> Room:
        async def attempt() -> Room:
            data = await self._api.call(
                "conversations.info",
                partial(self._api.client.conversations_info, channel=channel),
            )
            return parse_room(data.get("channel"))

        return await self._api.retrying("war room lookup", attempt, incident_id=incident_id)

    async def ensure_topic(self, room: Room, incident: Incident, *, incident_id: int) -> None:
        topic = war_room_topic(incident)
        if room.topic == topic:
            return
        await self._api.call_retrying(
            "topic update",
            "conversations.setTopic",
            partial(self._api.client.conversations_setTopic, channel=room.id, topic=topic),
            incident_id=incident_id,
        )

    async def invite(
        self, channel: str, people: Sequence[str], *, incident_id: int
    ) -> tuple[list[str], list[str]]:
        """Invite `people` to `channel`: (in the room now, not found)."""
        bot = await self._directory.bot_user(incident_id)
        members: list[str] = []
        not_found: list[str] = []
        for person in dict.fromkeys(p.strip() for p in people if p.strip()):
            user = await self._directory.user_id(person, incident_id=incident_id)
            if user is None:
                not_found.append(person)
                continue
            if user != bot:
                data = await self._api.call_retrying(
                    "invitation",
                    "conversations.invite",
                    partial(self._api.client.conversations_invite, channel=channel, users=user),
                    accept=("already_in_channel", "cant_invite_self", "user_not_found"),
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

    async def ensure_bookmarks(
        self, room: Room, wanted: Sequence[tuple[str, str, str]], *, incident_id: int
    ) -> None:
        """Bookmark each (title, link, emoji) whose link the channel does not have yet."""
        if not wanted:
            return

        async def attempt() -> None:
            # Listed again on every attempt: an add that timed out may have taken effect.
            data = await self._api.call(
                "bookmarks.list", partial(self._api.client.bookmarks_list, channel_id=room.id)
            )
            present = data.get("bookmarks")
            if not isinstance(present, list):
                raise CallFailed("malformed response (bookmark list)", retryable=True)
            links = {b.get("link") for b in present if isinstance(b, dict)}
            for title, link, emoji in wanted:
                if link in links:
                    continue
                await self._api.call(
                    "bookmarks.add",
                    partial(
                        self._api.client.bookmarks_add,
                        channel_id=room.id,
                        title=title,
                        type="link",
                        link=link,
                        emoji=emoji,
                    ),
                )
                links.add(link)

        await self._api.retrying("bookmarks", attempt, incident_id=incident_id)


def channel_name(incident: Incident) -> str:
    """The war room's Slack channel name: the domain's `war_room_name`, made of what Slack
    allows (lowercase ASCII letters, digits, `-`, `_`), short enough for a `-10` suffix."""
    folded = unicodedata.normalize("NFKD", war_room_name(incident))
    ascii_only = folded.encode("ascii", "ignore").decode().lower()
    name = re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9_-]", "-", ascii_only)).strip("-")
    name = name[: NAME_LIMIT - 3].rstrip("-")
    return name or f"inc-{stored_id(incident)}"


def war_room_topic(incident: Incident) -> str:
    """`INC-42 P1 | investigating | IC: dana | Checkout API down`, at most 250 characters."""
    commander = incident.commander or "unassigned"
    topic = (
        f"{incident.ref} {incident.severity.value} | {incident.status.value} | "
        f"IC: {commander} | {incident.title}"
    )
    return topic if len(topic) <= TOPIC_LIMIT else topic[: TOPIC_LIMIT - 1] + "…"


def stored_id(incident: Incident) -> int:
    """The incident's id: a war room (and what is posted there) is keyed by it."""
    if incident.id is None:
        raise ValueError("the incident must be stored (have an id) before it has a war room")
    return incident.id


def _suffixed(base: str, n: int) -> str:
    return f"{base}-{n}"
