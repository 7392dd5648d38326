"""A legal threat reaches the CIO at once: the case opens through the REST API and the
`[CIO Review]` mail arrives at a real local SMTP server (aiosmtpd), once, carrying the
ticket reference, the summary, the reason and the recommendation."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import trustme
from aiohttp.test_utils import TestClient, TestServer

from incident import bootstrap
from incident.clock import FakeClock
from incident.config import ApiToken, Settings, parse_smtp_url
from incident.domain.access import AccessRole
from incident.domain.case_access import parse_support_roles
from incident.web.app import create_app
from incident.web.metrics import Metrics
from tests.conftest import T0
from tests.vendor_fakes.smtp import Recorder, smtp_servers

AGENT = ApiToken(token="r" * 24, role=AccessRole.RESPONDER, name="alice")


async def mail_to(recorder: Recorder, address: str, *, within: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not recorder.to(address):
        assert asyncio.get_running_loop().time() < deadline, "no mail arrived"
        await asyncio.sleep(0.05)


async def test_a_legal_threat_sends_the_cio_review_mail(settings: Settings, tmp_path: Path) -> None:
    clock = FakeClock(T0)
    with smtp_servers(trustme.CA()) as serve:
        server = serve()
        configured = dataclasses.replace(
            settings,
            api_tokens=(AGENT,),
            support_roles=parse_support_roles("alice=agent"),
            smtp=parse_smtp_url(f"smtp://127.0.0.1:{server.port}", where="smtp_url"),
            smtp_from="Support Desk <support@example.com>",
        )

        async def build(settings: Settings, metrics: Metrics) -> bootstrap.Container:
            return await bootstrap.build(settings, clock=clock, on_step=metrics.step_finished)

        app = create_app(configured, build=build)
        async with TestClient(TestServer(app)) as client:
            response = await client.post(
                "/api/v1/cases",
                json={
                    "reference": "ZD-4411",
                    "customer_id": "cust-1",
                    "summary": "Customer's lawyer threatens to sue over a frozen account",
                    "plan": "enterprise",
                    "flags": ["legal_threat"],
                },
                headers={"Authorization": f"Bearer {AGENT.token}"},
            )
            assert response.status == 201, await response.text()
            assert (await response.json())["case"]["level"] == "cio"
            await mail_to(server.recorder, "cio@example.com")
            await asyncio.sleep(0.3)  # a second mail, were one to come, would be here by now
        (mail,) = server.recorder.to("cio@example.com")
    assert mail["Subject"].startswith("[CIO Review] CASE-1 ZD-4411")
    body = mail.get_content()
    for words in ("ZD-4411", "frozen account", "legal threat", "Recommendation"):
        assert words in body, words
