"""Configured secrets never reach what people read, even when a vendor echoes them back:
an endpoint that answers every call with the bot token in Slack's `error` field, driven
through bootstrap's own wiring; the step's stored error, its timeline and every log line
are checked."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from incident import bootstrap
from incident.clock import FakeClock
from incident.config import ApiToken, Settings
from incident.domain.access import AccessRole
from incident.domain.incident import Severity
from incident.redaction import REDACTED, RedactingFilter, Redactor
from incident.scheduler.retry import RetryPolicy
from incident.services import incidents as uc
from tests.conftest import T0

BOT_TOKEN = "xoxb-1111-2222-echoedtoken"
API_TOKEN = ApiToken(token="api-token-0123456789-secret", role=AccessRole.ADMIN, name="ada")


@pytest.fixture
async def echoing_slack() -> AsyncIterator[str]:
    """Answers every Web API call with `ok: false` and the caller's token in `error`."""

    async def answer(request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        return web.json_response(
            {
                "ok": False,
                "error": f"invalid_auth for {token}",
                "response_metadata": {"messages": [f"[ERROR] token {token} was refused"]},
            }
        )

    app = web.Application()
    app.router.add_route("*", "/api/{method}", answer)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield str(server.make_url("/api/"))
    finally:
        await server.close()


async def test_an_echoed_token_is_redacted_everywhere(
    tmp_path: Path, echoing_slack: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'secrets.db'}",
        slack_bot_token=BOT_TOKEN,
        slack_api_url=echoing_slack,
        api_tokens=(API_TOKEN,),
    )
    caplog.handler.addFilter(RedactingFilter(Redactor(settings.secrets())))
    caplog.set_level(logging.DEBUG)
    clock = FakeClock(T0)
    app = await bootstrap.build(settings, clock=clock, retry=RetryPolicy(max_attempts=1))
    try:
        incident, _ = await uc.declare_incident(
            app.runtime, title="Checkout down", severity=Severity.P1, by="dana"
        )
        assert incident.id is not None
        await app.scheduler.tick(clock.now())
        view = await uc.get_incident(app.runtime, incident.id)
    finally:
        await app.close()
    (war_room,) = [o for o in view.history if o.step_id == "open-war-room"]
    assert war_room.state == "failed" and war_room.last_error is not None
    assert "invalid_auth for [redacted]" in war_room.last_error
    stored = [
        war_room.last_error,
        *(e.text for e in view.timeline),
        *(str(e.data) for e in view.timeline),
    ]
    assert not [text for text in stored if BOT_TOKEN in text]
    logged = caplog.text
    assert BOT_TOKEN not in logged and REDACTED in logged


def test_the_redactor_takes_every_configured_secret_and_only_those() -> None:
    from incident.config import SmtpServer

    settings = Settings(
        database_url="postgresql+asyncpg://app:db-P4ssw0rd@db/incidents",
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret="signing-secret-value",
        statuspage_api_key="statuspage-key-123",
        pagerduty_routing_key="R0ut1ngK3yR0ut1ngK3yR0ut1ngK3y32",
        pagerduty_api_token="pd-api-token-456",
        api_tokens=(API_TOKEN,),
        smtp=SmtpServer(host="mail", port=25, username="mailer", password="smtp-P4ss"),
    )
    redact = Redactor(settings.secrets())
    text = " ".join(
        [
            BOT_TOKEN,
            "signing-secret-value",
            "statuspage-key-123",
            "R0ut1ngK3yR0ut1ngK3yR0ut1ngK3y32",
            "pd-api-token-456",
            API_TOKEN.token,
            "smtp-P4ss",
            "db-P4ssw0rd",
            "checkout",
        ]
    )
    assert redact(text) == " ".join([REDACTED] * 8 + ["checkout"])
    assert Redactor(["abc"])("abc") == "abc"  # too short to be a secret worth a word's loss
