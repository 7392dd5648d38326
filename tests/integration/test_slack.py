"""The `/incident` slash command over real HTTP: requests signed as Slack signs them, the app on
a loopback port, a real SQLite file, a fake clock, recording vendors, and a fake of Slack's
response_url endpoint that receives the results of slow commands."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import itertools
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from incident.clock import FakeClock
from incident.config import Settings
from incident.domain.access import AccessRole
from incident.domain.incident import Cancellation, Category, Severity, Status
from incident.services import incidents as uc
from incident.services.incidents import Runtime
from incident.testing import RecordingEffects
from incident.web.context import CONTAINER
from tests.serving import serving

SECRET = "e7c1d0a94f3b5a8e2d6c0f1b9a7e3d5c"
LEAD, RESPONDER, OTHER, ADMIN, VIEWER = "U0LEAD", "U0RESP", "U0OTHER", "U0ADMIN", "U0VIEW"
ROLES = {ADMIN: AccessRole.ADMIN, VIEWER: AccessRole.VIEWER}

# Slack's documented signing example (docs.slack.dev, "Verifying requests from Slack").
VECTOR_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
VECTOR_TIMESTAMP = 1531420618
VECTOR_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow"
    b"&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner"
    b"&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands"
    b"%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
VECTOR_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """Slack's v0 signature, computed here independently of the code under test."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


# --- a fake of Slack's response_url endpoint -----------------------------------------------


class ResponseUrlFake:
    """Takes messages posted to a response_url, as strictly as Slack does: JSON only, with
    text and a response_type of in_channel or ephemeral."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        app = web.Application()
        app.router.add_post("/commands/{team}/{command}/{token}", self.receive)
        self.server = TestServer(app, host="127.0.0.1", port=0)

    async def receive(self, request: web.Request) -> web.Response:
        if request.content_type != "application/json":
            return web.Response(status=400, text="invalid_payload")
        message = await request.json()
        if not isinstance(message, dict) or not message.get("text"):
            return web.Response(status=400, text="no_text")
        if message.get("response_type", "ephemeral") not in ("ephemeral", "in_channel"):
            return web.Response(status=400, text="invalid_response_type")
        self.messages.append(message)
        return web.Response(text="ok")

    @property
    def url(self) -> str:
        return str(self.server.make_url("/commands/T0TEAM/1234567890/s3cr3tT0k3n"))


# --- a Slack workspace sending signed slash commands -----------------------------------------


@dataclasses.dataclass
class Reply:
    status: int
    body: dict[str, Any]

    @property
    def text(self) -> str:
        text = self.body.get("text")
        assert isinstance(text, str), self.body
        return text

    @property
    def public(self) -> bool:
        return self.body.get("response_type") == "in_channel"


@dataclasses.dataclass
class Slack:
    client: TestClient[Any, Any]
    clock: FakeClock
    response_url: str
    secret: str = SECRET
    invocations: itertools.count[int] = dataclasses.field(default_factory=itertools.count)

    @property
    def rt(self) -> Runtime:
        server = self.client.server
        assert isinstance(server, TestServer)
        return server.app[CONTAINER].runtime

    def form(
        self, text: str, *, user: str = RESPONDER, channel: str = "general", **extra: str
    ) -> bytes:
        fields = {
            "token": "legacy-verification-token",
            "team_id": "T0TEAM",
            "team_domain": "example",
            "channel_id": "C0" + hashlib.sha1(channel.encode()).hexdigest()[:8].upper(),
            "channel_name": channel,
            "user_id": user,
            "user_name": user.lower(),
            "command": "/incident",
            "text": text,
            "api_app_id": "A0APP",
            "is_enterprise_install": "false",
            "response_url": self.response_url,
            "trigger_id": f"13345224609.{next(self.invocations)}.8088930838d88f008e0",
            **extra,
        }
        return urlencode(fields).encode()

    async def post(
        self,
        body: bytes,
        *,
        timestamp: int | str | None = None,
        secret: str | None = None,
        signed: bool = True,
        content_type: str = "application/x-www-form-urlencoded",
        headers: dict[str, str] | None = None,
    ) -> Reply:
        stamp = int(self.clock.now().timestamp()) if timestamp is None else timestamp
        sent = {"Content-Type": content_type}
        if signed:
            sent["X-Slack-Request-Timestamp"] = str(stamp)
            sent["X-Slack-Signature"] = sign(secret or self.secret, stamp, body)
        sent.update(headers or {})
        response = await self.client.post("/slack/commands", data=body, headers=sent)
        return Reply(response.status, await response.json())

    async def command(self, text: str, **form: str) -> Reply:
        reply = await self.post(self.form(text, **form))
        assert reply.status == 200, reply.body
        return reply

    async def declare(self, text: str = "P1 Checkout API down", user: str = LEAD) -> int:
        reply = await self.command(f"declare {text}", user=user)
        assert reply.public, reply.text
        found = [i for i in await uc.list_incidents(self.rt) if i.declared_by == f"<@{user}>"]
        assert found, reply.text
        incident_id = max(i.id or 0 for i in found)
        assert f"INC-{incident_id}" in reply.text
        return incident_id

    async def war_room(self, incident_id: int) -> str:
        """The war room's channel, once the playbook's first steps have opened it."""

        async def opened() -> bool:
            return (await uc.get_incident(self.rt, incident_id)).incident.war_room is not None

        await eventually(opened)
        room = (await uc.get_incident(self.rt, incident_id)).incident.war_room
        assert room is not None
        return room


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    for _ in range(int(within / 0.02)):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


@pytest.fixture
def slack_settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, slack_signing_secret=SECRET, slack_roles=ROLES)


@pytest.fixture
async def receiver() -> AsyncIterator[ResponseUrlFake]:
    fake = ResponseUrlFake()
    await fake.server.start_server()
    try:
        yield fake
    finally:
        await fake.server.close()


@pytest.fixture
async def slack(
    slack_settings: Settings, clock: FakeClock, vendor: RecordingEffects, receiver: ResponseUrlFake
) -> AsyncIterator[Slack]:
    async with serving(slack_settings, clock, vendor) as client:
        yield Slack(client=client, clock=clock, response_url=receiver.url)


def database_path(settings: Settings) -> str:
    return settings.database_url.removeprefix("sqlite:///")


def row_counts(settings: Settings) -> dict[str, int]:
    with sqlite3.connect(database_path(settings)) as db:
        return {
            table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("incidents", "timeline", "step_occurrences")
        }


async def settled(slack: Slack, vendor: RecordingEffects, incident_id: int) -> None:
    """Wait until the steps due at declaration have run (nothing else is due for minutes)."""
    await slack.war_room(incident_id)

    async def quiet() -> bool:
        view = await uc.get_incident(slack.rt, incident_id)
        return all(step.due_at > slack.clock.now() for step in view.upcoming)

    await eventually(quiet)
    await asyncio.sleep(0.1)


# --- signing -------------------------------------------------------------------------------


def test_our_test_signer_reproduces_slacks_documented_example() -> None:
    assert sign(VECTOR_SECRET, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE


async def test_slacks_documented_request_is_accepted_then_refused_once_stale(
    settings: Settings,
) -> None:
    clock = FakeClock(datetime.fromtimestamp(VECTOR_TIMESTAMP, UTC))
    configured = dataclasses.replace(settings, slack_signing_secret=VECTOR_SECRET)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": str(VECTOR_TIMESTAMP),
        "X-Slack-Signature": VECTOR_SIGNATURE,
    }
    async with serving(configured, clock, RecordingEffects(clock=clock)) as client:
        response = await client.post("/slack/commands", data=VECTOR_BODY, headers=headers)
        assert response.status == 200
        reply = await response.json()
        # The example types the command with no text: that is a request for help.
        assert reply["response_type"] == "ephemeral"
        assert "`/webhook-collect declare &lt;P1-P4&gt; &lt;title&gt;`" in reply["text"]

        clock.advance(timedelta(minutes=5))  # exactly 300 s old: still inside the window
        response = await client.post("/slack/commands", data=VECTOR_BODY, headers=headers)
        assert response.status == 200

        clock.advance(timedelta(seconds=1))  # 301 s: a replay
        response = await client.post("/slack/commands", data=VECTOR_BODY, headers=headers)
        assert response.status == 401
        refusal = await response.json()
        assert refusal["error"] == "unauthorized"
        assert "301 s ago" in refusal["detail"] and "5 minutes" in refusal["detail"]


async def test_forged_stale_and_unsigned_commands_are_refused_and_change_nothing(
    slack: Slack, slack_settings: Settings, vendor: RecordingEffects, receiver: ResponseUrlFake
) -> None:
    incident_id = await slack.declare()
    room = await slack.war_room(incident_id)
    await settled(slack, vendor, incident_id)
    before = row_counts(slack_settings)
    sends = len(vendor.sends)
    now = int(slack.clock.now().timestamp())
    resolve = slack.form("resolve forged fix", user=ADMIN, channel=room)
    declare = slack.form("declare P1 Forged incident", user=ADMIN)
    other_body = slack.form("note harmless", user=ADMIN, channel=room)

    attempts: dict[str, tuple[bytes, dict[str, Any]]] = {
        "wrong secret": (resolve, {"secret": "not-the-signing-secret"}),
        "forged declare": (declare, {"secret": "not-the-signing-secret"}),
        "signed another body": (
            resolve,
            {
                "signed": False,
                "headers": {
                    "X-Slack-Request-Timestamp": str(now),
                    "X-Slack-Signature": sign(SECRET, now, other_body),
                },
            },
        ),
        "stale": (resolve, {"timestamp": now - 301}),
        "from the future": (declare, {"timestamp": now + 301}),
        "unsigned": (resolve, {"signed": False}),
        "no timestamp": (
            declare,
            {"signed": False, "headers": {"X-Slack-Signature": sign(SECRET, now, declare)}},
        ),
        "timestamp not a number": (declare, {"timestamp": "12e9"}),
        "another scheme": (
            declare,
            {
                "signed": False,
                "headers": {
                    "X-Slack-Request-Timestamp": str(now),
                    "X-Slack-Signature": "v1=" + sign(SECRET, now, declare)[3:],
                },
            },
        ),
    }
    details = {}
    for name, (body, options) in attempts.items():
        reply = await slack.post(body, **options)
        assert reply.status == 401, (name, reply.body)
        assert reply.body["error"] == "unauthorized", name
        details[name] = reply.body["detail"]
    assert "does not match" in details["wrong secret"]
    assert "INCIDENT_SLACK_SIGNING_SECRET" in details["wrong secret"]
    assert "301 s ago" in details["stale"] and "301 s ahead" in details["from the future"]
    assert "not signed" in details["unsigned"] and "not signed" in details["no timestamp"]
    assert "Unix time" in details["timestamp not a number"]

    await asyncio.sleep(0.1)
    assert row_counts(slack_settings) == before
    assert len(vendor.sends) == sends
    view = await uc.get_incident(slack.rt, incident_id)
    assert view.incident.status is Status.INVESTIGATING
    assert receiver.messages == []

    # A correctly signed request a moment later does work: the refusals were the signatures.
    ok = await slack.command("note still investigating", channel=room)
    assert ok.public and row_counts(slack_settings)["timeline"] == before["timeline"] + 1

    metrics = await (await slack.client.get("/metrics")).text()
    assert 'incident_slack_commands_total{command="none",result="bad_signature"} 9.0' in metrics


async def test_a_replayed_declaration_declares_nothing_more(
    slack: Slack, slack_settings: Settings
) -> None:
    body = slack.form("declare P1 Checkout API down", user=LEAD)
    first = await slack.post(body)
    assert first.status == 200 and first.public and "*INC-1* declared" in first.text
    # Within the 5-minute window the signature is still good; the trigger_id gives it away.
    slack.clock.advance(timedelta(seconds=30))
    replay = await slack.post(body)
    assert replay.status == 200 and not replay.public
    assert replay.text == "This request was already handled: it declared *INC-1*."
    assert row_counts(slack_settings)["incidents"] == 1


async def test_without_a_signing_secret_the_endpoint_is_off(
    settings: Settings, clock: FakeClock, vendor: RecordingEffects, receiver: ResponseUrlFake
) -> None:
    async with serving(settings, clock, vendor) as client:
        off = Slack(client=client, clock=clock, response_url=receiver.url)
        for signed in (True, False):
            reply = await off.post(off.form("declare P1 Unsigned"), signed=signed)
            assert reply.status == 503
            assert reply.body["error"] == "slack commands are off"
            assert "INCIDENT_SLACK_SIGNING_SECRET" in reply.body["detail"]
            assert "never" in reply.body["detail"]
        assert await uc.list_incidents(off.rt) == []


async def test_a_signed_body_that_is_not_a_slash_command_form_is_a_400(
    slack: Slack, slack_settings: Settings
) -> None:
    json_body = b'{"text": "declare P1 x", "user_id": "U0LEAD"}'
    not_form = await slack.post(json_body, content_type="application/json")
    assert not_form.status == 400
    assert "application/x-www-form-urlencoded" in not_form.body["detail"]

    broken = await slack.post(b"text=declare+P1+x&&user_id=U0LEAD&command=%2Fincident")
    assert broken.status == 400 and "cannot be read" in broken.body["detail"]

    no_user = await slack.post(b"text=declare+P1+x&command=%2Fincident")
    assert no_user.status == 400 and "'user_id' is missing" in no_user.body["detail"]

    twice = await slack.post(b"text=declare+P1+x&text=ack&user_id=U0LEAD&command=%2Fincident")
    assert twice.status == 400 and "'text' appears more than once" in twice.body["detail"]

    bad_utf8 = await slack.post(b"text=%FF%FE&user_id=U0LEAD&command=%2Fincident")
    assert bad_utf8.status == 400

    assert row_counts(slack_settings)["incidents"] == 0


# --- declare, and the commands in the war room ---------------------------------------------


@pytest.mark.parametrize(("severity", "tier"), [("P1", "tier3"), ("P2", "tier2")])
async def test_declare_starts_the_playbook_of_its_severity_and_names_the_commander(
    slack: Slack, vendor: RecordingEffects, receiver: ResponseUrlFake, severity: str, tier: str
) -> None:
    reply = await slack.command(f"declare {severity} Checkout API down", user=LEAD)
    assert reply.public
    assert f"*INC-1* declared by <@{LEAD}>: *{severity}* Checkout API down" in reply.text
    assert f"Incident commander: <@{LEAD}>" in reply.text
    assert f"The {severity} playbook has started" in reply.text

    view = await uc.get_incident(slack.rt, 1)
    assert view.incident.severity is Severity(severity)
    assert view.incident.commander == f"<@{LEAD}>"
    assert view.incident.declared_by == f"<@{LEAD}>"

    async def paged() -> bool:
        return any(s.port == "pager" and s.incident_id == 1 for s in vendor.sends)

    await eventually(paged)
    page = next(s for s in vendor.sends if s.port == "pager")
    assert page.target == tier
    assert receiver.messages == []  # a quick command is answered in the reply itself


async def test_war_room_commands_act_on_the_war_rooms_incident(
    slack: Slack, vendor: RecordingEffects
) -> None:
    other = await slack.declare("P2 Search is slow")
    incident_id = await slack.declare("P1 Checkout API down")
    room = await slack.war_room(incident_id)
    ref = f"INC-{incident_id}"

    ack = await slack.command("ack", channel=room)
    assert ack.public and ack.text == f"*{ref}* acknowledged by <@{RESPONDER}>."

    status = await slack.command(
        "status identified Bad deploy of the payment service", channel=room
    )
    assert status.public
    assert f"*{ref}* is now *identified*" in status.text
    assert "Bad deploy of the payment service" in status.text

    update = await slack.command("update Rolling back; next update in 30 minutes", channel=room)
    assert update.public and "Customer update" in update.text

    note = await slack.command("note rollback started by <@U0OTHER|olga> & co", channel=room)
    assert note.public and "rollback started by @olga &amp; co" in note.text

    view = await uc.get_incident(slack.rt, incident_id)
    assert view.incident.status is Status.IDENTIFIED
    assert view.incident.acknowledged_by == f"<@{RESPONDER}>"
    entries = [(e.kind, e.text, e.public) for e in view.timeline]
    assert ("customer_update", "Bad deploy of the payment service", True) in entries
    assert ("customer_update", "Rolling back; next update in 30 minutes", True) in entries
    assert ("internal_note", "rollback started by @olga & co", False) in entries
    assert next(e for e in view.timeline if e.kind == "acknowledged").actor == f"<@{RESPONDER}>"
    # The other incident was not touched.
    untouched = await uc.get_incident(slack.rt, other)
    assert untouched.incident.acknowledged_at is None
    assert [e.kind for e in untouched.timeline if e.actor == f"<@{RESPONDER}>"] == []


async def test_severity_ic_resolve_and_rca_by_the_commander(slack: Slack) -> None:
    incident_id = await slack.declare("P1 Checkout API down", user=LEAD)
    room = await slack.war_room(incident_id)
    ref = f"INC-{incident_id}"

    lower = await slack.command("severity P2 only EU customers affected", user=LEAD, channel=room)
    assert lower.public
    assert f"*{ref}* is now *P2* (was P1), changed by <@{LEAD}>: only EU" in lower.text

    handover = await slack.command(f"ic <@{OTHER}|olga>", user=LEAD, channel=room)
    assert handover.public
    assert f"<@{OTHER}> is now the incident commander of *{ref}*" in handover.text
    assert (await uc.get_incident(slack.rt, incident_id)).incident.commander == f"<@{OTHER}>"

    # The old commander is a plain responder again; the new one runs the incident.
    refused = await slack.command("resolve fixed", user=LEAD, channel=room)
    assert not refused.public and "Not allowed" in refused.text
    resolved = await slack.command("resolve Rolled back the bad deploy", user=OTHER, channel=room)
    assert resolved.public
    assert f"*{ref}* resolved by <@{OTHER}>" in resolved.text
    assert "The RCA is due" in resolved.text and "(in 2 d)" in resolved.text

    rca = await slack.command(
        "rca <https://wiki.example.com/rca/checkout>", user=OTHER, channel=room
    )
    assert rca.public and f"*{ref}* is closed" in rca.text
    incident = (await uc.get_incident(slack.rt, incident_id)).incident
    assert incident.status is Status.CLOSED
    assert incident.rca_link == "https://wiki.example.com/rca/checkout"
    assert incident.severity is Severity.P2


async def test_next_lists_upcoming_steps_with_due_times(
    slack: Slack, vendor: RecordingEffects
) -> None:
    incident_id = await slack.declare("P1 Checkout API down")
    await settled(slack, vendor, incident_id)
    reply = await slack.command(f"next INC-{incident_id}")
    assert not reply.public
    assert reply.text.startswith(f"Upcoming steps of *INC-{incident_id}* (P1, investigating):")
    view = await uc.get_incident(slack.rt, incident_id)
    lines = reply.text.splitlines()[1:]
    assert len(lines) >= 5
    for step, line in zip(view.upcoming, lines, strict=False):
        if line.startswith("…"):
            break
        assert f"`{step.step_id}`" in line
        assert step.due_at.strftime("%Y-%m-%d %H:%M UTC") in line
        assert f"<!date^{int(step.due_at.timestamp())}^" in line
    executives = next(line for line in lines if "`notify-executives`" in line)
    assert "2026-03-02 09:30 UTC" in executives and "(in 30 min)" in executives
    vp = next(line for line in lines if "`escalate-vp-clevel`" in line)
    assert "2026-03-02 13:00 UTC" in vp and "(in 4 h)" in vp


async def test_timeline_shows_what_happened(slack: Slack) -> None:
    incident_id = await slack.declare("P1 Checkout API down", user=LEAD)
    room = await slack.war_room(incident_id)
    # Slack escapes what a person types: "<tried>" arrives as "&lt;tried&gt;".
    await slack.command("note &lt;tried&gt; a restart", channel=room)
    reply = await slack.command("timeline", channel=room)
    assert not reply.public
    assert reply.text.startswith(f"Timeline of *INC-{incident_id}* (P1, investigating)")
    assert f"03-02 09:00 UTC <@{LEAD}>: P1 declared: Checkout API down" in reply.text
    assert f"<@{LEAD}>: commander: <@{LEAD}>" in reply.text
    assert f"<@{RESPONDER}>: &lt;tried&gt; a restart" in reply.text
    view = await uc.get_incident(slack.rt, incident_id)
    notes = [e.text for e in view.timeline if e.kind == "internal_note"]
    assert notes == ["<tried> a restart"]


# --- who may do what -----------------------------------------------------------------------


async def test_a_responder_who_is_not_the_commander_cannot_resolve_or_downgrade(
    slack: Slack,
) -> None:
    incident_id = await slack.declare("P1 Checkout API down", user=LEAD)
    room = await slack.war_room(incident_id)
    ref = f"INC-{incident_id}"

    resolve = await slack.command("resolve looks fine to me", user=RESPONDER, channel=room)
    assert not resolve.public
    assert resolve.text == (
        f"Not allowed: <@{RESPONDER}> (responder) may not resolve on {ref}; only the "
        "incident's commander, commanders and admins may."
    )
    lower = await slack.command(f"severity {ref} P3", user=RESPONDER)
    assert not lower.public and "may not lower the severity" in lower.text
    rca = await slack.command(f"rca {ref} https://wiki.example.com/x", user=RESPONDER)
    assert not rca.public and "may not mark the RCA done" in rca.text

    incident = (await uc.get_incident(slack.rt, incident_id)).incident
    assert incident.status is Status.INVESTIGATING and incident.severity is Severity.P1

    # Making it worse is everyone's job.
    p2 = await slack.declare("P2 Search is slow", user=LEAD)
    raised = await slack.command(f"severity INC-{p2} P1 all regions now", user=RESPONDER)
    assert raised.public and "is now *P1* (was P2)" in raised.text


async def test_the_commander_and_an_admin_may_resolve_and_downgrade(slack: Slack) -> None:
    first = await slack.declare("P1 Checkout API down", user=LEAD)
    second = await slack.declare("P1 Login fails", user=LEAD)

    by_commander = await slack.command(f"severity INC-{first} P3 one customer", user=LEAD)
    assert by_commander.public and "is now *P3* (was P1)" in by_commander.text
    resolved = await slack.command(f"resolve INC-{first} restarted the pods", user=LEAD)
    assert resolved.public and "resolved by <@U0LEAD>" in resolved.text

    by_admin = await slack.command(f"#{second} severity P4", user=ADMIN)
    assert by_admin.public and "is now *P4* (was P1)" in by_admin.text
    takeover = await slack.command(f"ic #{second} me", user=ADMIN)
    assert takeover.public and f"<@{ADMIN}> is now the incident commander" in takeover.text
    admin_resolve = await slack.command(f"resolve #{second} cert renewed", user=ADMIN)
    assert admin_resolve.public and "resolved by <@U0ADMIN>" in admin_resolve.text

    statuses = {i.id: (i.status, i.severity) for i in await uc.list_incidents(slack.rt)}
    assert statuses == {
        first: (Status.RESOLVED, Severity.P3),
        second: (Status.RESOLVED, Severity.P4),
    }


async def test_a_viewer_cannot_declare(slack: Slack, slack_settings: Settings) -> None:
    reply = await slack.command("declare P1 Not mine to call", user=VIEWER)
    assert not reply.public
    assert "Not allowed" in reply.text and "may not declare incidents" in reply.text
    assert row_counts(slack_settings)["incidents"] == 0


# --- usage and friendly refusals -----------------------------------------------------------


async def test_unknown_commands_and_bad_arguments_get_the_usage(
    slack: Slack, slack_settings: Settings
) -> None:
    unknown = await slack.command("frobnicate the database")
    assert not unknown.public
    assert unknown.text.startswith("unknown command 'frobnicate'.")
    assert "`/incident declare &lt;P1-P4&gt; &lt;title&gt;`" in unknown.text
    assert "`/incident ack INC-12` (or `#12`)" in unknown.text

    bad = await slack.command("declare P9 Checkout down")
    assert not bad.public
    assert "declare needs a severity first: P1, P2, P3 or P4, not 'P9'" in bad.text
    assert "Usage: `/incident declare &lt;P1-P4&gt; &lt;title&gt;`" in bad.text

    mention = await slack.command("ic INC-1 @bob")
    assert not mention.public and "reached us as plain text" in mention.text

    helped = await slack.command("help")
    assert not helped.public and "`/incident timeline`" in helped.text

    assert row_counts(slack_settings)["incidents"] == 0
    metrics = await (await slack.client.get("/metrics")).text()
    assert 'incident_slack_commands_total{command="unknown",result="usage"} 1.0' in metrics
    assert 'incident_slack_commands_total{command="declare",result="usage"} 1.0' in metrics
    assert 'incident_slack_commands_total{command="help",result="ok"} 1.0' in metrics


async def test_outside_a_war_room_a_command_needs_an_incident_id(slack: Slack) -> None:
    incident_id = await slack.declare("P1 Checkout API down")
    reply = await slack.command("ack", channel="random")
    assert not reply.public
    assert "not an incident's war room" in reply.text
    assert "`/incident ack INC-12` (or `#12`)" in reply.text
    assert f"*INC-{incident_id}* P1 Checkout API down" in reply.text
    assert (await uc.get_incident(slack.rt, incident_id)).incident.acknowledged_at is None


async def test_domain_refusals_are_friendly_replies(slack: Slack) -> None:
    incident_id = await slack.declare("P1 Checkout API down", user=LEAD)
    ref = f"INC-{incident_id}"
    await slack.command(f"ack {ref}", user=RESPONDER)
    again = await slack.command(f"ack {ref}", user=OTHER)
    assert again.status == 200 and not again.public
    assert again.text == f"Not now: {ref} was already acknowledged by <@{RESPONDER}>."

    missing = await slack.command("ack INC-999")
    assert not missing.public and missing.text.startswith("there is no incident 999")

    same = await slack.command(f"severity {ref} P1", user=LEAD)
    assert same.text == f"Not now: {ref} is already P1."

    long_title = await slack.command("declare P3 " + "x" * 250)
    assert not long_title.public
    assert "keep it under 200 (title)" in long_title.text
    assert "Usage: `/incident declare &lt;P1-P4&gt; &lt;title&gt;`" in long_title.text

    metrics = await (await slack.client.get("/metrics")).text()
    assert 'incident_slack_commands_total{command="ack",result="not_allowed_now"} 1.0' in metrics
    assert 'incident_slack_commands_total{command="declare",result="ok"} 1.0' in metrics


# --- correcting the facts, calling it off, reopening, merging --------------------------------


async def test_title_impact_service_and_category_correct_the_facts(slack: Slack) -> None:
    incident_id = await slack.declare("P2 Checkout slow", user=LEAD)
    room = await slack.war_room(incident_id)
    ref = f"INC-{incident_id}"

    title = await slack.command("title Checkout &amp; payments slow in the EU", channel=room)
    assert title.public
    assert f"*{ref}* retitled by <@{RESPONDER}>: Checkout &amp; payments slow in the EU" in (
        title.text
    )
    assert "(was: Checkout slow)" in title.text
    impact = await slack.command("impact EU card payments fail\nabout 5% of orders", channel=room)
    assert impact.public and ">EU card payments fail" in impact.text
    service = await slack.command(f"service {ref} payments-api", user=OTHER)
    assert service.public
    assert "service *payments-api* (was: none named)" in service.text
    category = await slack.command("category Security", channel=room)
    assert category.public
    assert f"*{ref}* is now a *security* incident (was general)" in category.text
    assert "`/incident approve &lt;step&gt;`" in category.text  # security texts are held

    incident = (await uc.get_incident(slack.rt, incident_id)).incident
    assert incident.title == "Checkout & payments slow in the EU"
    assert incident.impact == "EU card payments fail\nabout 5% of orders"
    assert incident.service == "payments-api"
    assert incident.category is Category.SECURITY

    timeline = await slack.command("timeline", channel=room)
    assert "edited: title Checkout slow → Checkout &amp; payments slow in the EU" in (timeline.text)
    assert "edited: category general → security" in timeline.text
    assert "edited: impact: EU card payments fail" in timeline.text


async def test_edits_keep_the_apis_limits_and_rules(slack: Slack, slack_settings: Settings) -> None:
    incident_id = await slack.declare("P2 Checkout slow", user=LEAD)
    room = await slack.war_room(incident_id)
    await asyncio.sleep(0.1)
    before = row_counts(slack_settings)["timeline"]

    long_title = await slack.command("title " + "x" * 201, channel=room)
    assert not long_title.public
    assert "title is 201 characters; keep it under 200 (title)." in long_title.text
    assert "Usage: `/incident title &lt;title&gt;`" in long_title.text
    two_lines = await slack.command("title Checkout\nslow", channel=room)
    assert not two_lines.public and "line breaks" in two_lines.text and "(title)" in two_lines.text
    long_impact = await slack.command("impact " + "y" * 5001, channel=room)
    assert not long_impact.public and "keep it under 5000 (impact)" in long_impact.text
    control = await slack.command("service pay\x07ments", channel=room)
    assert not control.public and "control characters" in control.text
    unknown = await slack.command("category nuclear", channel=room)
    assert not unknown.public and "unknown category 'nuclear'" in unknown.text
    empty = await slack.command("title   ", channel=room)
    assert not empty.public and "title needs the new title" in empty.text
    same = await slack.command("title Checkout slow", channel=room)
    assert not same.public and same.text.startswith("Not now: nothing to change on")
    viewer = await slack.command(f"title INC-{incident_id} Mine now", user=VIEWER)
    assert not viewer.public
    assert viewer.text == (
        f"Not allowed: <@{VIEWER}> (viewer) may not edit the title, impact, service or "
        f"category on INC-{incident_id}; only responders, commanders and admins may."
    )

    incident = (await uc.get_incident(slack.rt, incident_id)).incident
    assert (incident.title, incident.impact, incident.service) == ("Checkout slow", "", "")
    assert row_counts(slack_settings)["timeline"] == before


async def test_cancel_is_the_commanders_once_with_a_reason(slack: Slack) -> None:
    incident_id = await slack.declare("P1 Checkout API down", user=LEAD)
    room = await slack.war_room(incident_id)
    ref = f"INC-{incident_id}"

    responder = await slack.command("cancel false_alarm", user=RESPONDER, channel=room)
    assert not responder.public
    assert "may not cancel an incident (false alarm, declined)" in responder.text
    oops = await slack.command("cancel oops", user=LEAD, channel=room)
    assert not oops.public and "false_alarm or declined, not 'oops'" in oops.text
    duplicate = await slack.command("cancel duplicate", user=LEAD, channel=room)
    assert not duplicate.public and "`merge &lt;INC-n&gt;`" in duplicate.text
    long_note = await slack.command("cancel declined " + "z" * 5001, user=LEAD, channel=room)
    assert not long_note.public and "(note)" in long_note.text
    assert (await uc.get_incident(slack.rt, incident_id)).incident.status is Status.INVESTIGATING

    cancelled = await slack.command(
        "cancel false alarm the synthetic check misfired", user=LEAD, channel=room
    )
    assert cancelled.public
    assert f"*{ref}* cancelled by <@{LEAD}> as a false alarm:" in cancelled.text
    assert ">the synthetic check misfired" in cancelled.text
    incident = (await uc.get_incident(slack.rt, incident_id)).incident
    assert incident.status is Status.CANCELLED
    assert incident.cancellation is Cancellation.FALSE_ALARM
    assert incident.cancel_note == "the synthetic check misfired"

    twice = await slack.command("cancel declined", user=LEAD, channel=room)
    assert not twice.public
    assert twice.text == f"Not now: cannot cancel {ref}: it is cancelled."
    timeline = await slack.command("timeline", channel=room)
    assert f"Timeline of *{ref}* (P1, cancelled as a false alarm)" in timeline.text
    assert "cancelled as a false alarm: the synthetic check misfired" in timeline.text


async def test_reopen_a_resolved_incident_by_its_commander(slack: Slack) -> None:
    incident_id = await slack.declare("P1 Checkout API down", user=LEAD)
    room = await slack.war_room(incident_id)
    ref = f"INC-{incident_id}"

    early = await slack.command("reopen errors again", user=LEAD, channel=room)
    assert not early.public
    assert (
        early.text == f"Not now: {ref} is investigating; only a resolved incident can be reopened."
    )
    assert (await slack.command("resolve rolled back", user=LEAD, channel=room)).public
    responder = await slack.command("reopen errors again", user=RESPONDER, channel=room)
    assert not responder.public and "may not reopen a resolved incident" in responder.text
    empty = await slack.command("reopen", user=LEAD, channel=room)
    assert not empty.public and "reopen needs the reason it is reopened" in empty.text

    reopened = await slack.command(
        "reopen errors are back after the rollback", user=LEAD, channel=room
    )
    assert reopened.public
    assert f"*{ref}* reopened by <@{LEAD}>, now investigating:" in reopened.text
    incident = (await uc.get_incident(slack.rt, incident_id)).incident
    assert incident.status is Status.INVESTIGATING
    assert incident.reopened_at is not None and incident.resolved_at is None
    timeline = await slack.command("timeline", channel=room)
    assert "reopened (investigating): errors are back after the rollback" in timeline.text


async def test_merge_a_duplicate_needs_commander_rights_on_both(slack: Slack) -> None:
    target = await slack.declare("P1 Checkout API down", user=LEAD)
    duplicate = await slack.declare("P2 Checkout errors", user=LEAD)
    other = await slack.declare("P2 Checkout errors again", user=OTHER)
    room = await slack.war_room(duplicate)

    responder = await slack.command(f"merge INC-{target}", user=RESPONDER, channel=room)
    assert not responder.public and "may not merge incidents" in responder.text
    # OTHER commands `other` but not `target`.
    half = await slack.command(f"merge INC-{other} into INC-{target}", user=OTHER)
    assert not half.public
    assert f"may not merge incidents on INC-{target}" in half.text
    itself = await slack.command(f"merge INC-{duplicate}", user=LEAD, channel=room)
    assert not itself.public and "cannot be merged into itself" in itself.text
    assert "Usage: `/incident merge &lt;INC-n&gt;`" in itself.text
    missing = await slack.command("merge INC-999", user=LEAD, channel=room)
    assert not missing.public and missing.text.startswith("there is no incident 999")
    nowhere = await slack.command(f"merge INC-{target}", user=LEAD, channel="random")
    assert not nowhere.public
    assert f"`/incident merge INC-12 INC-{target}` (INC-12 being the duplicate)" in nowhere.text

    merged = await slack.command(f"merge INC-{target}", user=LEAD, channel=room)
    assert merged.public
    assert f"*INC-{duplicate}* merged by <@{LEAD}> into *INC-{target}* as a duplicate" in (
        merged.text
    )
    dup = (await uc.get_incident(slack.rt, duplicate)).incident
    assert dup.status is Status.CANCELLED and dup.merged_into == target
    assert dup.cancellation is Cancellation.DUPLICATE
    kept = await uc.get_incident(slack.rt, target)
    assert kept.incident.status is Status.INVESTIGATING
    assert [e.text for e in kept.timeline if e.kind == "merged"] == [
        f"INC-{duplicate} merged into this incident as a duplicate: Checkout errors"
    ]
    again = await slack.command(f"merge INC-{target}", user=LEAD, channel=room)
    assert not again.public and again.text.startswith("Not now:")
    timeline = await slack.command(f"timeline INC-{duplicate}")
    assert f"(P2, cancelled, merged into INC-{target})" in timeline.text
    untouched = (await uc.get_incident(slack.rt, other)).incident
    assert untouched.status is Status.INVESTIGATING


# --- approvals and follow-ups ---------------------------------------------------------------


async def test_a_held_security_text_is_shown_and_approved_by_the_commander(
    slack: Slack, vendor: RecordingEffects
) -> None:
    incident, _ = await uc.declare_incident(
        slack.rt,
        title="Customer data exposed",
        severity=Severity.P1,
        by=f"<@{LEAD}>",
        commander=f"<@{LEAD}>",
        category=Category.SECURITY,
    )
    assert incident.id is not None
    incident_id, ref = incident.id, incident.ref
    room = await slack.war_room(incident_id)
    step = "status-page-investigating"

    async def held() -> bool:
        view = await uc.get_incident(slack.rt, incident_id)
        return any(u.step_id == step and u.state == "held" for u in view.upcoming)

    await eventually(held)
    shown = await slack.command("next", channel=room)
    assert not shown.public
    lines = shown.text.splitlines()
    assert f"`{step}`" in lines[1]  # what waits for someone comes first
    assert f"waiting for approval: `/incident approve {step}`" in lines[1]
    notification = next(line for line in lines if "`customer-notification`" in line)
    assert "needs the commander's approval when due; approve ahead: " in notification
    assert "`/incident approve customer-notification`" in notification
    elsewhere = await slack.command(f"next {ref}")
    assert f"waiting for approval: `/incident approve {ref} {step}`" in elsewhere.text
    waiting = await slack.command("timeline", channel=room)
    assert f"; approve it: `/incident approve {step}`" in waiting.text

    responder = await slack.command(f"approve {step}", user=RESPONDER, channel=room)
    assert not responder.public
    assert "may not approve customer-facing texts held for approval" in responder.text
    unknown = await slack.command("approve no-such-step", user=LEAD, channel=room)
    assert not unknown.public
    assert unknown.text.startswith("step 'no-such-step' has no upcoming occurrence")
    assert "`/incident next` shows the upcoming steps" in unknown.text
    assert await held()

    approved = await slack.command(f"approve `{step}`", user=LEAD, channel=room)
    assert approved.public
    assert f"`{step}`" in approved.text and f"of *{ref}* approved by <@{LEAD}>" in approved.text
    assert approved.text.endswith("it goes out now.")

    async def released() -> bool:
        return not await held() and any(
            s.port == "status_page" and s.incident_id == incident_id for s in vendor.sends
        )

    await eventually(released)
    ahead = await slack.command(f"approve {ref} customer-notification", user=LEAD)
    assert ahead.public and ahead.text.endswith("it goes out when it is due.")
    twice = await slack.command(f"approve {ref} customer-notification", user=LEAD)
    assert not twice.public
    assert twice.text == (f"Not now: customer-notification was already approved by <@{LEAD}>.")
    later = await slack.command("next", channel=room)
    notification = next(
        line for line in later.text.splitlines() if "`customer-notification`" in line
    )
    assert f"approved by <@{LEAD}>" in notification and "needs" not in notification

    timeline = await slack.command("timeline", channel=room)
    assert f"{step}: waiting for the commander's approval (security incident)" in timeline.text
    assert "approve it:" not in timeline.text  # no longer held: nothing to do
    assert f"<@{LEAD}>: approved {step}: it goes out now" in timeline.text


async def test_follow_ups_are_added_listed_and_done(slack: Slack) -> None:
    incident_id = await slack.declare("P1 Checkout API down", user=LEAD)
    room = await slack.war_room(incident_id)
    ref = f"INC-{incident_id}"
    now = slack.clock.now()

    empty = await slack.command("followups", channel=room)
    assert not empty.public and f"*{ref}* has no follow-up action items yet" in empty.text

    first = await slack.command(
        "followup Alert on pool exhaustion owner:<@U0OTHER|olga> due:+7d", channel=room
    )
    assert first.public, first.text
    assert f"Follow-up *FU-1* of *{ref}* added by <@{RESPONDER}>: Alert on pool" in first.text
    assert "Owner: <@U0OTHER>, due " in first.text and "(in 7 d)" in first.text
    assert "until `/incident followup done FU-1`" in first.text
    second = await slack.command(
        f"followup {ref} Write the runbook owner:me due:2026-12-10", user=LEAD
    )
    assert second.public and f"`/incident followup done {ref} FU-2`" in second.text

    items = {f.ref: f for f in (await uc.get_incident(slack.rt, incident_id)).follow_ups}
    assert items["FU-1"].owner == "@U0OTHER"  # a Slack user: its reminders reach them
    assert items["FU-1"].due_at == now + timedelta(days=7)
    assert items["FU-1"].created_by == f"<@{RESPONDER}>"
    assert items["FU-2"].owner == f"@{LEAD}"
    assert items["FU-2"].due_at == datetime(2026, 12, 10, 23, 59, tzinfo=UTC)

    listed = await slack.command(f"followups {ref}", user=VIEWER)
    assert not listed.public
    assert "*FU-1* Alert on pool exhaustion: owner <@U0OTHER>, due " in listed.text
    assert f"*FU-2* Write the runbook: owner <@{LEAD}>, due " in listed.text

    past = await slack.command("followup Too late owner:sam due:2020-01-01", channel=room)
    assert not past.public and "the due date must be in the future (due)" in past.text
    far = await slack.command("followup Too far owner:sam due:+400d", channel=room)
    assert not far.public and "within a year (due)" in far.text
    no_owner = await slack.command("followup Nobody's due:+2d", channel=room)
    assert not no_owner.public and "needs its owner" in no_owner.text
    long_title = await slack.command(f"followup {'t' * 201} owner:sam due:+2d", channel=room)
    assert not long_title.public and "keep it under 200 (title)" in long_title.text
    viewer = await slack.command(f"followup {ref} Mine owner:me due:+2d", user=VIEWER)
    assert not viewer.public and "may not add and complete follow-up action items" in viewer.text
    missing = await slack.command("followup done FU-9", channel=room)
    assert not missing.public
    assert missing.text == f"{ref} has no follow-up FU-9. `/incident followups` lists them."
    assert len((await uc.get_incident(slack.rt, incident_id)).follow_ups) == 2

    done = await slack.command("followup done FU-1", user=OTHER, channel=room)
    assert done.public
    assert f"Follow-up *FU-1* of *{ref}* marked done by <@{OTHER}>" in done.text
    again = await slack.command("followup done fu-1", user=OTHER, channel=room)
    assert not again.public and again.text == f"Not now: FU-1 was already done (<@{OTHER}>)."
    items = {f.ref: f for f in (await uc.get_incident(slack.rt, incident_id)).follow_ups}
    assert items["FU-1"].done_by == f"<@{OTHER}>" and items["FU-2"].done_at is None

    listed = await slack.command("followups", channel=room)
    lines = listed.text.splitlines()
    assert "*FU-2*" in lines[1] and "~FU-1~ Alert on pool exhaustion" in lines[2]
    assert f"done by <@{OTHER}>" in lines[2]
    timeline = await slack.command("timeline", channel=room)
    assert (
        "follow-up FU-1 added: Alert on pool exhaustion (owner <@U0OTHER>, due "
        f"{now + timedelta(days=7):%Y-%m-%d %H:%M} UTC)"
    ) in timeline.text
    assert "follow-up FU-1 done: Alert on pool exhaustion" in timeline.text


# Slack reads `<...>` as a link or a mention, and `&` as the start of an entity.
_RAW = re.compile(r"[<>]|&(?!amp;|lt;|gt;)")


async def test_help_lists_the_new_commands_escaped_for_slack(slack: Slack) -> None:
    helped = await slack.command("help")
    assert not helped.public
    assert _RAW.search(helped.text) is None, _RAW.findall(helped.text)
    for usage in (
        "`/incident title &lt;title&gt;`",
        "`/incident impact &lt;text&gt;`",
        "`/incident category &lt;general|security|",
        "`/incident cancel &lt;false_alarm|declined&gt; [note]`",
        "`/incident reopen &lt;reason&gt;`",
        "`/incident merge &lt;INC-n&gt;`",
        "`/incident approve &lt;step&gt;`",
        "`/incident followup &lt;title&gt; owner:&lt;who&gt; due:&lt;YYYY-MM-DD|+7d&gt;`",
        "`/incident followup done &lt;FU-n&gt;`",
        "`/incident followups`",
    ):
        assert usage in helped.text
    bad = await slack.command("approve")
    assert not bad.public and "Usage: `/incident approve &lt;step&gt;`" in bad.text
    assert _RAW.search(bad.text) is None


async def test_unsigned_lifecycle_commands_are_refused_and_change_nothing(
    slack: Slack, slack_settings: Settings, vendor: RecordingEffects
) -> None:
    target = await slack.declare("P1 Checkout API down", user=LEAD)
    incident_id = await slack.declare("P2 Checkout errors", user=LEAD)
    room = await slack.war_room(incident_id)
    await settled(slack, vendor, target)
    await settled(slack, vendor, incident_id)
    before = row_counts(slack_settings)
    for text in (
        "cancel false_alarm",
        f"merge INC-{target}",
        "title Forged",
        "category security",
        "followup Forged owner:me due:+2d",
        "approve customer-notification",
    ):
        body = slack.form(text, user=ADMIN, channel=room)
        unsigned = await slack.post(body, signed=False)
        forged = await slack.post(body, secret="not-the-signing-secret")
        assert unsigned.status == forged.status == 401, text
    await asyncio.sleep(0.1)
    assert row_counts(slack_settings) == before
    view = await uc.get_incident(slack.rt, incident_id)
    assert view.incident.status is Status.INVESTIGATING and view.follow_ups == []
    assert view.incident.title == "Checkout errors"


# --- slow work: reply at once, finish later ------------------------------------------------


async def test_a_slow_command_is_answered_in_time_and_its_result_follows_at_the_response_url(
    slack: Slack, slack_settings: Settings, receiver: ResponseUrlFake, vendor: RecordingEffects
) -> None:
    # Really slow, without touching our code: another connection holds SQLite's write lock.
    blocker = sqlite3.connect(database_path(slack_settings), isolation_level=None, timeout=5)
    blocker.execute("BEGIN IMMEDIATE")
    locked_at = time.monotonic()
    try:
        started = time.monotonic()
        reply = await slack.command("declare P1 Payments are failing", user=LEAD)
        elapsed = time.monotonic() - started
        assert elapsed < 3.0, f"Slack gives up after 3 s; the reply took {elapsed:.2f} s"
        assert not reply.public
        assert reply.text.startswith("Working on `/incident declare`")
        assert "the result will appear here" in reply.text
        assert receiver.messages == []
        await asyncio.sleep(max(0.0, 3.5 - (time.monotonic() - locked_at)))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()

    async def delivered() -> bool:
        return bool(receiver.messages)

    await eventually(delivered)
    [message] = receiver.messages
    assert message["response_type"] == "in_channel"
    assert f"*INC-1* declared by <@{LEAD}>: *P1* Payments are failing" in message["text"]
    incidents = await uc.list_incidents(slack.rt)
    assert [(i.id, i.title) for i in incidents] == [(1, "Payments are failing")]

    async def paged() -> bool:
        return any(s.port == "pager" for s in vendor.sends)

    await eventually(paged)
    metrics = await (await slack.client.get("/metrics")).text()
    assert 'incident_slack_commands_total{command="declare",result="ok"} 1.0' in metrics


async def test_every_replayed_command_is_done_once(slack: Slack) -> None:
    """The same signed bytes sent again within the signature's window: an update is not
    published twice, a note not added twice."""
    incident_id = await slack.declare()
    ref = f"INC-{incident_id}"
    for text in (f"update {ref} We found the cause.", f"note {ref} Rolled back deploy 42"):
        body = slack.form(text, user=LEAD)
        stamp = int(slack.clock.now().timestamp())
        first = await slack.post(body, timestamp=stamp)
        assert first.status == 200 and "already received" not in first.text, first.text
        slack.clock.advance(timedelta(seconds=20))
        replay = await slack.post(body, timestamp=stamp)  # the very same signed request
        assert replay.status == 200 and not replay.public
        assert replay.text.startswith("This exact request was already received, and done once")
    view = await uc.get_incident(slack.rt, incident_id)
    assert [e.kind for e in view.timeline].count("customer_update") == 1
    assert [e.kind for e in view.timeline].count("internal_note") == 1
    metrics = await (await slack.client.get("/metrics")).text()
    assert 'result="replayed"} 1.0' in metrics  # per command: update once, note once
