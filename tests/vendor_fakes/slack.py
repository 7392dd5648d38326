"""A strict local Slack Web API: the methods the Slack chat adapter uses, on 127.0.0.1, port 0.

Strict: each request is checked against Slack's own method reference (copied in
specs/slack-methods/, see slack-SOURCES.md): the method's required arguments, their types
(form values read as Slack reads them: booleans `true`/`false`/`1`/`0`, numbers), `maxLength`
and `enum`; plus what Slack documents in prose (channel name rules, topic and text lengths,
bookmark links, message metadata). Authentication as Slack takes it: `Authorization: Bearer
xoxb-...`, or a `token` POST parameter; never in the query string (refused for apps made since
2021) and never inside a JSON body. Arguments come from the query string, a form body, or a
JSON body for the methods whose reference says `json_input_supported`. Unknown arguments are
refused, which Slack does not do (it ignores them): stricter on purpose, so a misspelt
argument fails here instead of being silently dropped. Whatever Slack would refuse is
answered as Slack answers (HTTP 200 `{"ok": false, "error": ...}`) and kept in `rejected`, so
tests can insist there were none.

Stateful: channels (creator, members, topic, bookmarks, messages with metadata and their
edits, pinned messages, the system messages Slack adds for topic changes and joins), direct
messages, and users by e-mail, so a second create of the same thing is visible. Tests set the
scene as people would: a message posted by someone else (`add_message`), a message deleted by
hand (`delete_message`, which unpins it, as Slack does).

Scriptable faults per method: N answers with a status (429 with Retry-After, 500 ...), N
`ok: false` errors (`fatal_error` ...), slow answers (beyond the client's timeout), dropped
connections, malformed bodies, and "down until" an instant of a (fake) clock. A fault can fire
after the request took effect (`took_effect`), the case where a retry must not double anything.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from aiohttp import web

from incident.clock import Clock, SystemClock

SPECS = Path(__file__).parent / "specs" / "slack-methods"
METHODS = (
    "auth.test",
    "bookmarks.add",
    "bookmarks.list",
    "chat.postMessage",
    "chat.update",
    "conversations.create",
    "conversations.history",
    "conversations.info",
    "conversations.invite",
    "conversations.list",
    "conversations.open",
    "conversations.setTopic",
    "pins.add",
    "pins.list",
    "users.lookupByEmail",
)

# Documented by Slack in prose, not in the method reference.
CHANNEL_NAME = re.compile(r"^[a-z0-9_-]+$")  # lowercase letters, digits, hyphens, underscores
CHANNEL_NAME_LIMIT = 80
TOPIC_LIMIT = 250
TEXT_LIMIT = 40_000  # chat.postMessage, chat.update: `msg_too_long` beyond it
MESSAGE_TS = re.compile(r"^\d{10}\.\d{6}$")  # what a message's ts looks like
INVITE_LIMIT = 100  # conversations.invite: "Up to 100 users may be listed"
BOOKMARK_TYPES = ("link",)
EMOJI = re.compile(r"^:[a-z0-9_+'-]+:$")
# Arguments that are "JSON-based ... presented as a URL-encoded string" in a form, and plain
# JSON values in a JSON body.
JSON_STRING_ARGS = frozenset({"attachments", "blocks", "metadata"})
AUTH_ERRORS = frozenset({"not_authed", "invalid_auth"})


@functools.cache
def method_spec(method: str) -> dict[str, Any]:
    spec: dict[str, Any] = json.loads((SPECS / f"{method}.json").read_text())
    return spec


# --- state -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class User:
    id: str
    name: str
    email: str
    real_name: str = ""
    is_bot: bool = False


@dataclass
class Channel:
    id: str
    name: str
    creator: str
    created: int
    is_private: bool = False
    is_archived: bool = False
    is_im: bool = False
    user: str | None = None  # the other party of a direct message
    members: list[str] = field(default_factory=list)
    topic: str = ""
    topic_creator: str = ""
    topic_last_set: int = 0
    purpose: str = ""
    bookmarks: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)  # oldest first
    pins: list[dict[str, Any]] = field(default_factory=list)  # {ts, created, created_by}

    def posts(self) -> list[dict[str, Any]]:
        """Messages people or apps posted (not the channel's own join and topic notices)."""
        return [m for m in self.messages if "subtype" not in m or m["subtype"] == "bot_message"]

    def message(self, ts: str) -> dict[str, Any] | None:
        return next((m for m in self.messages if m["ts"] == ts), None)

    def pinned(self) -> list[dict[str, Any]]:
        """The pinned messages, in the order they were pinned."""
        return [m for pin in self.pins if (m := self.message(pin["ts"])) is not None]


@dataclass
class Seen:
    """One request as the fake received it, what was wrong with it, and what it answered."""

    method: str
    verb: str
    query: list[tuple[str, str]]
    content_type: str
    args: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    status: int | None = None
    error: str | None = None  # the `error` of an `ok: false` answer
    fault: str | None = None
    at: float = 0.0  # the event loop's clock when it arrived


FaultKind = Literal["status", "error", "slow", "drop", "malformed"]


@dataclass
class Fault:
    kind: FaultKind
    times: int
    method: str | None = None  # only requests to this method; None: any
    status: int = 500
    retry_after: str | None = None
    error: str = "fatal_error"
    seconds: float = 0.0
    took_effect: bool = False  # the request is processed before the fault hits its answer
    body: str = ""
    content_type: str = "text/html"


Answer = dict[str, Any]


class _Refused(Exception):
    """A request Slack refuses: answered `{"ok": false, "error": ...}`."""

    def __init__(self, error: str, *, messages: Iterable[str] = (), problem: bool = True) -> None:
        super().__init__(error)
        self.error = error
        self.messages = list(messages)
        self.problem = problem  # a malformed request (vs. a legitimate refusal like name_taken)


class FakeSlack:
    """The fake. `async with FakeSlack(...) as slack:` serves at `slack.api_url`."""

    def __init__(
        self,
        *,
        bot_token: str,
        users: Iterable[User] = (),
        clock: Clock | None = None,
        bot_user: str = "UB0T00001",
        team_id: str = "T0INC0001",
    ) -> None:
        self.bot_token = bot_token
        self.bot_user = bot_user
        self.bot_id = "B0INC0001"
        self.team_id = team_id
        self.clock: Clock = clock or SystemClock()
        self.users: dict[str, User] = {u.id: u for u in users}
        self.users[bot_user] = User(bot_user, "incident-bot", "", "Incident bot", is_bot=True)
        self.channels: dict[str, Channel] = {}
        self.requests: list[Seen] = []
        self.faults: list[Fault] = []
        self.expect_rejections = False  # a test that sends bad requests on purpose sets it
        self._ids = 0
        self._last_ts = 0.0
        self._down: tuple[datetime, Clock, int | None] | None = None
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- lifetime ----------------------------------------------------------------------------

    async def start(self) -> FakeSlack:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        assert self._runner.addresses
        self.port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        self._closing.set()  # slow answers stop waiting
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> FakeSlack:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    # --- setting the scene -------------------------------------------------------------------

    def add_channel(
        self,
        name: str,
        *,
        creator: str | None = None,
        members: Iterable[str] = (),
        is_private: bool = False,
        is_archived: bool = False,
        created: datetime | None = None,
    ) -> Channel:
        """A channel that exists before the test (someone else's unless `creator` is the bot)."""
        channel = Channel(
            id=self._new_id("G" if is_private else "C"),
            name=name,
            creator=creator or "U0SOMEONE",
            created=int((created or self.clock.now()).timestamp()),
            is_private=is_private,
            is_archived=is_archived,
            members=list(members),
        )
        self.channels[channel.id] = channel
        return channel

    def add_message(self, channel: Channel, text: str, *, user: str) -> dict[str, Any]:
        """A message someone posted in `channel` (not the bot: the bot cannot edit it)."""
        message = {"type": "message", "text": text, "user": user, "ts": self._new_ts()}
        channel.messages.append(message)
        return message

    def delete_message(self, channel: Channel, ts: str) -> None:
        """Someone deleted a message by hand; Slack takes its pin away with it."""
        assert channel.message(ts) is not None, f"no message {ts} in #{channel.name}"
        channel.messages = [m for m in channel.messages if m["ts"] != ts]
        channel.pins = [p for p in channel.pins if p["ts"] != ts]

    # --- what tests read ---------------------------------------------------------------------

    @property
    def rejected(self) -> list[Seen]:
        """Requests Slack would have refused as malformed (whatever the fake answered)."""
        return [s for s in self.requests if s.problems]

    def seen(self, method: str) -> list[Seen]:
        return [s for s in self.requests if s.method == method]

    def calls(self) -> list[str]:
        return [s.method for s in self.requests]

    def channel_named(self, name: str) -> Channel:
        [channel] = [c for c in self.channels.values() if c.name == name and not c.is_im]
        return channel

    def channels_named(self, prefix: str) -> list[Channel]:
        return [c for c in self.channels.values() if c.name.startswith(prefix)]

    def created_by_bot(self) -> list[Channel]:
        return [c for c in self.channels.values() if c.creator == self.bot_user and not c.is_im]

    def direct_messages(self, user: str) -> list[dict[str, Any]]:
        return [m for c in self.channels.values() if c.is_im and c.user == user for m in c.posts()]

    # --- scripting faults --------------------------------------------------------------------

    def fail(
        self,
        times: int = 1,
        *,
        status: int = 500,
        retry_after: float | str | None = None,
        method: str | None = None,
        took_effect: bool = False,
    ) -> None:
        """The next `times` requests (to `method`) are answered with HTTP `status`."""
        header = None if retry_after is None else _header(retry_after)
        self.faults.append(
            Fault("status", times, method, status, retry_after=header, took_effect=took_effect)
        )

    def rate_limit(
        self, times: int = 1, *, retry_after: float | str | None = 1, method: str | None = None
    ) -> None:
        """The next `times` requests get Slack's 429 `ratelimited` (with Retry-After)."""
        self.fail(times, status=429, retry_after=retry_after, method=method)

    def error(
        self, times: int = 1, *, error: str = "fatal_error", method: str | None = None
    ) -> None:
        """The next `times` requests are answered HTTP 200 `{"ok": false, "error": error}`."""
        self.faults.append(Fault("error", times, method, error=error))

    def slow(
        self,
        times: int = 1,
        *,
        seconds: float,
        method: str | None = None,
        took_effect: bool = True,
    ) -> None:
        """The next `times` answers come `seconds` late (the request is processed at once)."""
        self.faults.append(Fault("slow", times, method, seconds=seconds, took_effect=took_effect))

    def drop(self, times: int = 1, *, method: str | None = None, took_effect: bool = False) -> None:
        """The next `times` connections are cut without an answer."""
        self.faults.append(Fault("drop", times, method, took_effect=took_effect))

    def malformed(
        self,
        times: int = 1,
        *,
        body: str = "<html><body>502 Bad Gateway</body></html>",
        content_type: str = "text/html",
        method: str | None = None,
        took_effect: bool = True,
    ) -> None:
        """The next `times` answers are HTTP 200 with a body that is not Slack's JSON."""
        self.faults.append(
            Fault(
                "malformed",
                times,
                method,
                took_effect=took_effect,
                body=body,
                content_type=content_type,
            )
        )

    def down_until(self, moment: datetime, *, clock: Clock, status: int | None = 503) -> None:
        """Until `clock` reaches `moment`, answer every request with `status` (None: drop)."""
        self._down = (moment, clock, status)

    # --- the request cycle -------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        seen = Seen(
            method,
            request.method,
            list(request.query.items()),
            request.content_type if request.body_exists else "",
        )
        seen.at = asyncio.get_running_loop().time()
        self.requests.append(seen)
        try:
            seen.args = await self._read(method, request, seen)
            refusal: _Refused | None = None
        except _Refused as refused:
            refusal = refused
        if self._down is not None:
            moment, clock, status = self._down
            if clock.now() < moment:
                down = Fault("drop" if status is None else "status", 1, status=status or 503)
                return await self._fault(seen, request, down)
            self._down = None
        fault = self._next_fault(method)
        if fault is not None and not fault.took_effect:
            return await self._fault(seen, request, fault)
        if refusal is None:
            try:
                answer = self._process(method, seen.args)
            except _Refused as refused:
                refusal = refused
        if refusal is not None:
            if refusal.problem:
                seen.problems.append(f"{refusal.error}: {'; '.join(refusal.messages)}".rstrip(": "))
            answer = {"ok": False, "error": refusal.error}
            if refusal.messages:
                answer["response_metadata"] = {
                    "messages": [f"[ERROR] {m}" for m in refusal.messages]
                }
        if fault is not None:
            return await self._fault(seen, request, fault, answer)
        return self._answer(seen, answer)

    def _next_fault(self, method: str) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and fault.method in (None, method):
                fault.times -= 1
                return fault
        return None

    def _answer(
        self,
        seen: Seen,
        answer: Answer,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        seen.status = status
        if answer.get("ok") is False:
            seen.error = str(answer.get("error"))
        return web.json_response(answer, status=status, headers=headers)

    async def _fault(
        self, seen: Seen, request: web.Request, fault: Fault, answer: Answer | None = None
    ) -> web.StreamResponse:
        seen.fault = fault.kind if fault.kind != "status" else f"status {fault.status}"
        if fault.kind == "drop":
            assert request.transport is not None
            request.transport.abort()
            return web.Response()
        if fault.kind == "malformed":
            seen.status = 200
            return web.Response(
                status=200, body=fault.body.encode(), content_type=fault.content_type
            )
        if fault.kind == "slow":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), fault.seconds)
            return self._answer(seen, answer or {"ok": False, "error": "fatal_error"})
        if fault.kind == "error":
            return self._answer(seen, {"ok": False, "error": fault.error})
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else None
        if fault.status == 429:
            return self._answer(
                seen, {"ok": False, "error": "ratelimited"}, status=429, headers=headers
            )
        return self._answer(
            seen, {"ok": False, "error": "internal_error"}, status=fault.status, headers=headers
        )

    # --- reading a request as Slack does -----------------------------------------------------

    async def _read(self, method: str, request: web.Request, seen: Seen) -> dict[str, Any]:
        if method not in METHODS:
            raise _Refused("unknown_method", messages=[f"{method} is not served by this fake"])
        if request.method not in ("GET", "POST"):
            raise _Refused("invalid_post_type", messages=[f"HTTP {request.method}"])
        spec = method_spec(method)
        args = _query_arguments(request)
        token_in_body: str | None = None
        json_body = False
        raw = await request.read()
        if raw:
            if request.method != "POST":
                raise _Refused("invalid_post_type", messages=["a body with GET"])
            content_type = request.content_type
            if content_type == "application/json":
                _add_json_arguments(method, spec, raw, args)
                json_body = True
            elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
                token_in_body = await _add_form_arguments(request, args)
            else:
                raise _Refused("invalid_form_data", messages=[f"Content-Type {content_type!r}"])
        self._authenticate(request, token_in_body)
        messages = _argument_problems(spec, args, json_body=json_body)
        if messages:
            raise _Refused("invalid_arguments", messages=messages)
        return args

    def _authenticate(self, request: web.Request, token_in_body: str | None) -> None:
        header = request.headers.get("Authorization")
        if header is not None:
            match = re.fullmatch(r"Bearer (\S+)", header)
            token = match.group(1) if match else None
            if token is None:
                raise _Refused("invalid_auth", messages=["Authorization: not 'Bearer <token>'"])
        else:
            token = token_in_body
        if token is None:
            raise _Refused("not_authed", messages=["no token"])
        if not token.startswith("xoxb-") or token != self.bot_token:
            raise _Refused("invalid_auth", messages=["not the app's bot token"])

    # --- the methods -------------------------------------------------------------------------

    def _process(self, method: str, args: dict[str, Any]) -> Answer:
        handler = getattr(self, "_" + method.replace(".", "_"))
        answer: Answer = handler(args)
        return {"ok": True, **answer}

    def _auth_test(self, args: dict[str, Any]) -> Answer:
        return {
            "url": "https://incident-test.slack.com/",
            "team": "Incident test",
            "user": "incident-bot",
            "team_id": self.team_id,
            "user_id": self.bot_user,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _conversations_create(self, args: dict[str, Any]) -> Answer:
        name = str(args["name"])
        if not name:
            raise _Refused("invalid_name_required")
        if len(name) > CHANNEL_NAME_LIMIT:
            raise _Refused("invalid_name_maxlength")
        if not CHANNEL_NAME.match(name):
            raise _Refused("invalid_name_specials")
        if not re.search(r"[a-z0-9]", name):
            raise _Refused("invalid_name_punctuation")
        if any(c.name == name and not c.is_im for c in self.channels.values()):
            raise _Refused("name_taken", problem=False)
        private = _flag(args.get("is_private"))
        channel = Channel(
            id=self._new_id("G" if private else "C"),
            name=name,
            creator=self.bot_user,
            created=int(self.clock.now().timestamp()),
            is_private=private,
            members=[self.bot_user],
        )
        self.channels[channel.id] = channel
        return {"channel": self._conversation(channel)}

    def _conversations_list(self, args: dict[str, Any]) -> Answer:
        types = str(args.get("types", "public_channel")).split(",")
        if any(t not in ("public_channel", "private_channel", "mpim", "im") for t in types):
            raise _Refused("invalid_types")
        limit = int(float(args.get("limit", 100)))
        if not 0 < limit < 1000:
            raise _Refused("invalid_limit")
        start = _decode_cursor(args.get("cursor"))
        visible = [
            c
            for c in self.channels.values()
            if (
                (c.is_im and "im" in types)
                or (not c.is_im and not c.is_private and "public_channel" in types)
                or (
                    not c.is_im
                    and c.is_private
                    and "private_channel" in types
                    and self.bot_user in c.members
                )
            )
            and not (_flag(args.get("exclude_archived")) and c.is_archived)
        ]
        page = visible[start : start + limit]
        more = start + limit < len(visible)
        return {
            "channels": [self._conversation(c) for c in page],
            "response_metadata": {"next_cursor": _encode_cursor(start + limit) if more else ""},
        }

    def _conversations_info(self, args: dict[str, Any]) -> Answer:
        channel = self._visible(args["channel"])
        return {"channel": self._conversation(channel)}

    def _conversations_setTopic(self, args: dict[str, Any]) -> Answer:  # noqa: N802
        channel = self._writable(args["channel"])
        topic = str(args["topic"])
        if len(topic) > TOPIC_LIMIT:
            raise _Refused("too_long")
        channel.topic = topic
        channel.topic_creator = self.bot_user
        channel.topic_last_set = int(self.clock.now().timestamp())
        self._system_message(
            channel, "channel_topic", f"set the channel topic: {topic}", topic=topic
        )
        return {"channel": self._conversation(channel)}

    def _conversations_invite(self, args: dict[str, Any]) -> Answer:
        channel = self._writable(args["channel"])
        users = [u for u in str(args["users"]).split(",") if u]
        if not users:
            raise _Refused("no_user")
        if len(users) > INVITE_LIMIT:
            raise _Refused("invalid_arguments", messages=[f"more than {INVITE_LIMIT} users"])
        errors = []
        for user in users:
            if user == self.bot_user:
                errors.append({"user": user, "ok": False, "error": "cant_invite_self"})
            elif user not in self.users:
                errors.append({"user": user, "ok": False, "error": "user_not_found"})
            elif user in channel.members:
                errors.append({"user": user, "ok": False, "error": "already_in_channel"})
        if errors and not _flag(args.get("force")):
            # Slack names the first failure, and lists them all when several users were given.
            raise _Refused(str(errors[0]["error"]), problem=False)
        failed = {e["user"] for e in errors}
        for user in users:
            if user not in failed:
                channel.members.append(user)
                self._system_message(channel, "channel_join", f"<@{user}> has joined", user=user)
        return {"channel": self._conversation(channel)}

    def _conversations_history(self, args: dict[str, Any]) -> Answer:
        channel = self._visible(args["channel"])
        if self.bot_user not in channel.members:
            raise _Refused("not_in_channel")
        oldest = _timestamp(args.get("oldest", "0"), "invalid_ts_oldest")
        latest = _timestamp(args.get("latest"), "invalid_ts_latest") if "latest" in args else None
        inclusive = _flag(args.get("inclusive"))
        limit = int(float(args.get("limit", 100)))
        if not 0 < limit <= 999:
            raise _Refused("invalid_limit")
        with_metadata = _flag(args.get("include_all_metadata"))

        def within(message: dict[str, Any]) -> bool:
            ts = float(message["ts"])
            after = ts >= oldest if inclusive else ts > oldest
            before = latest is None or (ts <= latest if inclusive else ts < latest)
            return after and before

        newest_first = [m for m in reversed(channel.messages) if within(m)]
        start = _decode_cursor(args.get("cursor"))
        page = newest_first[start : start + limit]
        more = start + limit < len(newest_first)
        messages = []
        for message in page:
            shown = {k: v for k, v in message.items() if k != "metadata"}
            if "metadata" in message:
                # Without include_all_metadata Slack names the event but leaves out its payload.
                metadata = message["metadata"]
                shown["metadata"] = (
                    metadata if with_metadata else {"event_type": metadata["event_type"]}
                )
            messages.append(shown)
        answer: Answer = {
            "messages": messages,
            "has_more": more,
            "pin_count": len(channel.pins),
            "channel_actions_ts": None,
            "channel_actions_count": 0,
        }
        if more:
            answer["response_metadata"] = {"next_cursor": _encode_cursor(start + limit)}
        return answer

    def _conversations_open(self, args: dict[str, Any]) -> Answer:
        users = [u for u in str(args.get("users") or "").split(",") if u]
        if not users:
            raise _Refused("users_list_not_supplied")
        if len(users) > 1:
            raise _Refused("invalid_arguments", messages=["the fake opens 1:1 DMs only"])
        [user] = users
        if user not in self.users or user == self.bot_user:
            raise _Refused("user_not_found", problem=False)
        for channel in self.channels.values():
            if channel.is_im and channel.user == user:
                return {"no_op": True, "already_open": True, "channel": {"id": channel.id}}
        im = Channel(
            id=self._new_id("D"),
            name="",
            creator=self.bot_user,
            created=int(self.clock.now().timestamp()),
            is_im=True,
            user=user,
            members=[self.bot_user, user],
        )
        self.channels[im.id] = im
        return {"channel": {"id": im.id}}

    def _users_lookupByEmail(self, args: dict[str, Any]) -> Answer:  # noqa: N802
        email = str(args["email"]).lower()
        for user in self.users.values():
            if user.email and user.email.lower() == email:
                return {
                    "user": {
                        "id": user.id,
                        "team_id": self.team_id,
                        "name": user.name,
                        "deleted": False,
                        "real_name": user.real_name or user.name,
                        "profile": {
                            "real_name": user.real_name or user.name,
                            "display_name": user.name,
                            "email": user.email,
                        },
                        "is_bot": user.is_bot,
                    }
                }
        raise _Refused("users_not_found", problem=False)

    def _bookmarks_add(self, args: dict[str, Any]) -> Answer:
        if "channel_id" not in args:
            raise _Refused("invalid_arguments", messages=["channel_id is required"])
        channel = self._writable(args["channel_id"])
        kind = str(args["type"])
        if kind not in BOOKMARK_TYPES:
            raise _Refused("invalid_bookmark_type")
        link = args.get("link")
        if not isinstance(link, str) or not re.match(r"^https?://\S+$", link):
            raise _Refused("invalid_link")
        emoji = args.get("emoji")
        if emoji is not None and not EMOJI.match(str(emoji)):
            raise _Refused("invalid_emoji")
        now = int(self.clock.now().timestamp())
        bookmark = {
            "id": self._new_id("Bk"),
            "channel_id": channel.id,
            "title": str(args["title"]),
            "link": link,
            "emoji": emoji,
            "icon_url": None,
            "type": kind,
            "entity_id": None,
            "date_created": now,
            "date_updated": 0,
            "rank": chr(ord("a") + len(channel.bookmarks) % 26),
            "last_updated_by_user_id": self.bot_user,
            "last_updated_by_team_id": self.team_id,
            "shortcut_id": None,
            "app_id": None,
        }
        channel.bookmarks.append(bookmark)
        return {"bookmark": bookmark}

    def _bookmarks_list(self, args: dict[str, Any]) -> Answer:
        channel = self._visible(args["channel_id"])
        return {"bookmarks": list(channel.bookmarks)}

    def _chat_postMessage(self, args: dict[str, Any]) -> Answer:  # noqa: N802
        channel = self._writable(self._resolve_name(str(args["channel"])))
        text = args.get("text")
        if not text and not args.get("blocks") and not args.get("attachments"):
            raise _Refused("no_text")
        if isinstance(text, str) and len(text) > TEXT_LIMIT:
            raise _Refused("msg_too_long")
        message: dict[str, Any] = {
            "type": "message",
            "subtype": "bot_message",
            "text": text or "",
            "user": self.bot_user,
            "bot_id": self.bot_id,
            "ts": self._new_ts(),
        }
        if "metadata" in args:
            message["metadata"] = _metadata(args["metadata"])
        channel.messages.append(message)
        return {"channel": channel.id, "ts": message["ts"], "message": message}

    def _chat_update(self, args: dict[str, Any]) -> Answer:
        channel = self._visible(args["channel"])
        if channel.is_archived:
            raise _Refused("is_inactive", problem=False)
        ts = str(args["ts"])
        if not MESSAGE_TS.match(ts):
            raise _Refused("message_not_found", messages=[f"ts {ts!r} is not a message ts"])
        message = channel.message(ts)
        if message is None:
            raise _Refused("message_not_found", problem=False)
        if message.get("user") != self.bot_user or message.get("subtype") not in (
            None,
            "bot_message",
        ):
            raise _Refused("cant_update_message", problem=False)
        text = args.get("text")
        if not text and not args.get("blocks") and not args.get("attachments"):
            raise _Refused("no_text")
        if isinstance(text, str) and len(text) > TEXT_LIMIT:
            raise _Refused("msg_too_long")
        if parse := args.get("parse"):
            # Documented values only: `none` and `full` (and the default, `client`).
            if parse not in ("none", "full", "client"):
                raise _Refused("invalid_arguments", messages=[f"parse: {parse!r}"])
        # Fields left out keep their values (metadata, blocks, attachments); text is replaced.
        message["text"] = text or ""
        message["edited"] = {"user": self.bot_user, "ts": self._new_ts()}
        shown = {k: v for k, v in message.items() if k != "metadata"}
        return {"channel": channel.id, "ts": ts, "text": message["text"], "message": shown}

    def _pins_add(self, args: dict[str, Any]) -> Answer:
        channel = self._visible(args["channel"])
        if self.bot_user not in channel.members:
            raise _Refused("not_in_channel", problem=False)
        if "timestamp" not in args:
            raise _Refused("no_item_specified", messages=["timestamp is required to pin a message"])
        ts = str(args["timestamp"])
        if not MESSAGE_TS.match(ts):
            raise _Refused("bad_timestamp", messages=[f"timestamp {ts!r}"])
        if channel.message(ts) is None:
            raise _Refused("message_not_found", problem=False)
        if any(pin["ts"] == ts for pin in channel.pins):
            raise _Refused("already_pinned", problem=False)
        channel.pins.append(
            {"ts": ts, "created": int(self.clock.now().timestamp()), "created_by": self.bot_user}
        )
        return {}

    def _pins_list(self, args: dict[str, Any]) -> Answer:
        channel = self._visible(args["channel"])
        items = []
        for pin in reversed(channel.pins):  # the latest pin first
            message = channel.message(pin["ts"])
            assert message is not None  # deleting a message takes its pin away
            shown = {k: v for k, v in message.items() if k != "metadata"}
            items.append(
                {
                    "type": "message",
                    "channel": channel.id,
                    "created": pin["created"],
                    "created_by": pin["created_by"],
                    "message": {
                        **shown,
                        "pinned_to": [channel.id],
                        "permalink": f"https://incident-test.slack.com/archives/{channel.id}/"
                        f"p{pin['ts'].replace('.', '')}",
                    },
                }
            )
        return {"items": items}

    # --- helpers -----------------------------------------------------------------------------

    def _resolve_name(self, channel: str) -> str:
        """chat.postMessage takes a channel id, or a channel's name (with or without #)."""
        if channel in self.channels:
            return channel
        name = channel.removeprefix("#")
        for candidate in self.channels.values():
            if candidate.name == name and not candidate.is_im:
                return candidate.id
        return channel

    def _visible(self, channel_id: Any) -> Channel:
        channel = self.channels.get(str(channel_id))
        if channel is None or (
            (channel.is_private or channel.is_im) and self.bot_user not in channel.members
        ):
            raise _Refused("channel_not_found")
        return channel

    def _writable(self, channel_id: Any) -> Channel:
        channel = self._visible(channel_id)
        if channel.is_archived:
            raise _Refused("is_archived")
        if self.bot_user not in channel.members:
            raise _Refused("not_in_channel")
        return channel

    def _system_message(self, channel: Channel, subtype: str, text: str, **extra: Any) -> None:
        channel.messages.append(
            {
                "type": "message",
                "subtype": subtype,
                "user": extra.pop("user", self.bot_user),
                "text": text,
                "ts": self._new_ts(),
                **extra,
            }
        )

    def _conversation(self, channel: Channel) -> dict[str, Any]:
        if channel.is_im:
            return {
                "id": channel.id,
                "created": channel.created,
                "is_im": True,
                "is_org_shared": False,
                "user": channel.user,
                "is_user_deleted": False,
                "priority": 0,
            }
        return {
            "id": channel.id,
            "name": channel.name,
            "is_channel": not channel.is_private,
            "is_group": channel.is_private,
            "is_im": False,
            "is_mpim": False,
            "is_private": channel.is_private,
            "created": channel.created,
            "creator": channel.creator,
            "is_archived": channel.is_archived,
            "is_general": False,
            "unlinked": 0,
            "name_normalized": channel.name,
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
            "pending_shared": [],
            "is_pending_ext_shared": False,
            "is_member": self.bot_user in channel.members,
            "topic": {
                "value": channel.topic,
                "creator": channel.topic_creator,
                "last_set": channel.topic_last_set,
            },
            "purpose": {"value": channel.purpose, "creator": "", "last_set": 0},
            "previous_names": [],
            "num_members": len(channel.members),
        }

    def _new_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}0{self._ids:08X}"

    def _new_ts(self) -> str:
        """Slack's message timestamps: unique per channel, increasing, six decimals."""
        now = round(self.clock.now().timestamp(), 6)
        self._last_ts = max(now, round(self._last_ts + 0.000001, 6))
        return f"{self._last_ts:.6f}"


# --- arguments, as the method reference declares them ------------------------------------------


def _query_arguments(request: web.Request) -> dict[str, Any]:
    args: dict[str, Any] = {}
    for name, value in request.query.items():
        _add_argument(args, name, value)
    if "token" in args:
        raise _Refused(
            "invalid_auth",
            messages=["token in the query string: send it in the Authorization header"],
        )
    return args


def _add_json_arguments(
    method: str, spec: Mapping[str, Any], raw: bytes, args: dict[str, Any]
) -> None:
    if not spec.get("json_input_supported"):
        raise _Refused(
            "invalid_arguments",
            messages=[f"{method} does not take a JSON body; send a form"],
        )
    try:
        body = json.loads(raw)
    except ValueError:
        raise _Refused("invalid_json") from None
    if not isinstance(body, dict):
        raise _Refused("json_not_object")
    if "token" in body:
        raise _Refused(
            "invalid_auth",
            messages=["a JSON body cannot carry the token: use the header"],
        )
    for name, value in body.items():
        _add_argument(args, name, value)


async def _add_form_arguments(request: web.Request, args: dict[str, Any]) -> str | None:
    """Adds the form's fields to `args`, but for a token: that is returned (or None)."""
    token: str | None = None
    form = await request.post()
    for name, field_value in form.items():
        if not isinstance(field_value, str):
            raise _Refused("invalid_form_data", messages=[f"{name}: a file"])
        if name == "token":
            token = field_value
            continue
        _add_argument(args, name, field_value)
    return token


def _add_argument(args: dict[str, Any], name: str, value: Any) -> None:
    if name in args:
        raise _Refused("invalid_arguments", messages=[f"{name} given twice"])
    args[name] = value


def _argument_problems(
    spec: Mapping[str, Any], args: Mapping[str, Any], *, json_body: bool
) -> list[str]:
    schema = spec["args"]
    properties: Mapping[str, Any] = schema.get("properties", {})
    problems = [
        f"missing required field: {name}"
        for name in schema.get("required", [])
        if name != "token" and name not in args
    ]
    for name, value in args.items():
        declared = properties.get(name)
        if declared is None or name == "token":
            problems.append(f"unknown argument: {name}")  # Slack ignores it; we do not
            continue
        problems += _value_problems(name, value, declared, json_body=json_body)
    return problems


def _types(declared: Mapping[str, Any]) -> set[str]:
    if "type" in declared:
        return {str(declared["type"])}
    return {str(t["type"]) for t in declared.get("anyOf", []) if "type" in t}


def _value_problems(
    name: str, value: Any, declared: Mapping[str, Any], *, json_body: bool
) -> list[str]:
    types = _types(declared)
    if json_body and name in JSON_STRING_ARGS and isinstance(value, dict | list):
        value = json.dumps(value)  # a JSON body carries these as JSON values
    if value is None:
        return [] if "null" in types else [f"{name}: null"]
    ok = False
    if "string" in types and isinstance(value, str):
        ok = True
    if "boolean" in types and (
        isinstance(value, bool) or (isinstance(value, str) and value in ("true", "false", "1", "0"))
    ):
        ok = True
    if types & {"number", "integer"}:
        if isinstance(value, int | float) and not isinstance(value, bool):
            ok = True
        elif isinstance(value, str):
            with contextlib.suppress(ValueError):
                number = float(value)
                ok = "number" in types or number.is_integer()
    if not ok:
        return [f"{name}: expected {' or '.join(sorted(types))}, got {value!r}"[:200]]
    problems = []
    limit = declared.get("maxLength")
    if isinstance(limit, int) and isinstance(value, str) and len(value) > limit:
        problems.append(f"{name}: longer than {limit} characters")
    if "enum" in declared and value not in declared["enum"]:
        problems.append(f"{name}: not one of {declared['enum']}")
    return problems


def _flag(value: Any) -> bool:
    return value is True or value in ("true", "1")


def _timestamp(value: Any, error: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise _Refused(error) from None


def _metadata(value: Any) -> dict[str, Any]:
    """Message metadata: `{event_type, event_payload}`, a JSON string in a form."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise _Refused("invalid_metadata_format") from None
    if not isinstance(value, dict):
        raise _Refused("invalid_metadata_format")
    event_type, payload = value.get("event_type"), value.get("event_payload")
    if not isinstance(event_type, str) or not event_type or not isinstance(payload, dict):
        raise _Refused(
            "invalid_metadata_schema", messages=["metadata needs event_type and event_payload"]
        )
    return {"event_type": event_type, "event_payload": payload}


def _encode_cursor(offset: int) -> str:
    return base64.b64encode(f"offset:{offset}".encode()).decode()


def _decode_cursor(cursor: Any) -> int:
    if cursor in (None, ""):
        return 0
    try:
        text = base64.b64decode(str(cursor), validate=True).decode()
        return int(text.removeprefix("offset:"))
    except ValueError:
        raise _Refused("invalid_cursor") from None


def _header(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else str(value)
