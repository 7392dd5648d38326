"""Who and where in Slack: our bot user, a person's user id, a channel by name, a person's
direct message channel. Answers are kept for the adapter's life: each lookup is a call that
Slack rate-limits, and the same people and channels come up again and again."""

from __future__ import annotations

import re
from functools import partial

from incident.adapters.vendors.slack_api import (
    VENDOR_NAME,
    CallFailed,
    Room,
    SlackApi,
    next_cursor,
    parse_room,
)
from incident.services.ports import VendorRejected

LIST_PAGE = 200  # channels per page of conversations.list
LIST_PAGES = 50  # a workspace of 10,000 public channels at most is searched for a name

USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
MENTION = re.compile(r"^<@([UW][A-Z0-9]{2,})(?:\|[^>]*)?>$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class SlackDirectory:
    """Looks our bot user, people and channels up in Slack, each once. `incident_id`: the
    incident whose call it is, for the logs (None: another kind of subject's)."""

    def __init__(self, api: SlackApi) -> None:
        self._api = api
        self._bot: str | None = None
        self._users: dict[str, str | None] = {}  # e-mail -> user id (None: no such user)
        self._named: dict[str, str] = {}  # channel name -> id
        self._ims: dict[str, str] = {}  # user id -> direct message channel id

    async def bot_user(self, incident_id: int | None) -> str:
        """Our own user id (`auth.test`): what `creator` says of a channel we made."""
        if self._bot is None:

            async def attempt() -> str:
                data = await self._api.call("auth.test", self._api.client.auth_test)
                user = data.get("user_id")
                if not isinstance(user, str) or not user:
                    raise CallFailed("auth.test: malformed response", retryable=True)
                return user

            self._bot = await self._api.retrying("auth.test", attempt, incident_id=incident_id)
        return self._bot

    async def user_id(self, person: str, *, incident_id: int | None) -> str | None:
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
                data = await self._api.call(
                    "users.lookupByEmail",
                    partial(self._api.client.users_lookupByEmail, email=email),
                    accept=("users_not_found",),
                )
                if data.get("ok") is not True:
                    return None  # no such user
                user = data.get("user")
                found = user.get("id") if isinstance(user, dict) else None
                if not isinstance(found, str):
                    raise CallFailed("users.lookupByEmail: malformed response", retryable=True)
                return found

            self._users[email] = await self._api.retrying(
                "user lookup", attempt, incident_id=incident_id
            )
        return self._users[email]

    async def find_channel(self, name: str, *, types: str) -> Room | None:
        """One attempt: the channel called `name` among those of `types` the app can see."""
        cursor: str | None = None
        for _ in range(LIST_PAGES):
            data = await self._api.call(
                "conversations.list",
                partial(
                    self._api.client.conversations_list,
                    types=types,
                    exclude_archived=True,
                    limit=LIST_PAGE,
                    cursor=cursor,
                ),
            )
            channels = data.get("channels")
            if not isinstance(channels, list):
                raise CallFailed("malformed response (channel list)", retryable=True)
            for entry in channels:
                if isinstance(entry, dict) and entry.get("name") == name:
                    return parse_room(entry)
            cursor = next_cursor(data)
            if not cursor:
                return None
        return None

    async def channel_named(self, name: str, *, incident_id: int | None) -> str:
        """The id of the public or private channel `#name`; refused when the app cannot see
        one."""
        if name not in self._named:
            room = await self._api.retrying(
                f"lookup of #{name}",
                partial(self.find_channel, name, types="public_channel,private_channel"),
                incident_id=incident_id,
            )
            if room is None:
                raise VendorRejected(
                    VENDOR_NAME,
                    f"no channel #{name} that the app can see: create it, or invite the app",
                )
            self._named[name] = room.id
        return self._named[name]

    async def direct_message(self, user: str, *, incident_id: int | None) -> str:
        """The id of the direct message channel between the app and `user`."""
        if user not in self._ims:

            async def attempt() -> str:
                data = await self._api.call(
                    "conversations.open", partial(self._api.client.conversations_open, users=user)
                )
                channel = data.get("channel")
                if not isinstance(channel, dict) or not isinstance(channel.get("id"), str):
                    raise CallFailed("conversations.open: malformed response", retryable=True)
                return str(channel["id"])

            self._ims[user] = await self._api.retrying(
                "direct message", attempt, incident_id=incident_id
            )
        return self._ims[user]
