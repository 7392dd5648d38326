"""An update, the resolution and the RCA sent back to back, fifty times in a row, over the
REST API and over Slack, while the real scheduler runs: every resolution step runs exactly
once each time (recording the RCA used to cancel what resolving had planned)."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from incident.clock import FakeClock
from incident.config import ApiToken, Settings
from incident.domain.access import AccessRole
from incident.services import incidents as uc
from incident.services.incidents import Runtime
from incident.testing import RecordingEffects
from incident.web.context import CONTAINER
from tests.integration.test_slack import (
    LEAD,
    SECRET,
    ResponseUrlFake,
    Slack,
    receiver,  # noqa: F401 (a fixture)
)
from tests.serving import serving, steps_caught_up

RUNS = 50
COMMANDER = ApiToken(token="c" * 24, role=AccessRole.COMMANDER, name="cleo")
# What resolving a P1 plans, and so what must reach the world once per resolution.
RESOLUTION_STEPS = {
    "status-page-resolved": "status_page",
    "resolution-notice": "customers",
    "notify-executives-resolved": "notifier",
    "notify-management-resolved": "notifier",
    "notify-support-manager-resolved": "notifier",
    "pager-resolve": "pager.resolve",
    "refresh-war-room": "chat.refresh",
    "notify-executives-rca": "notifier",
}


def effects_of(vendor: RecordingEffects, incident_id: int) -> Counter[str]:
    """How many times each step of the incident reached the world."""
    return Counter(
        s.key.split("/")[1]
        for s in vendor.sends
        if s.incident_id == incident_id and not s.key.endswith(("/approval", "/gave-up"))
    )


def check_each_resolution_ran_once(vendor: RecordingEffects, incident_ids: list[int]) -> None:
    for incident_id in incident_ids:
        ran = effects_of(vendor, incident_id)
        for step in RESOLUTION_STEPS:
            if step == "refresh-war-room":
                continue  # refreshed for each change: checked below
            assert ran[step] == 1, f"INC-{incident_id}: {step} ran {ran[step]} times: {ran}"
        # The greeting is refreshed at least once after the resolution and the RCA, and its
        # last version says the incident is closed (when the room opened before resolving
        # stopped it: resolved at once, a P1 needs no war room any more).
        assert ran["refresh-war-room"] >= 1, f"INC-{incident_id}: {ran}"
        if ran["open-war-room"]:
            assert "RCA:" in vendor.greetings[incident_id]


async def test_fifty_times_over_rest(
    settings: Settings, clock: FakeClock, vendor: RecordingEffects
) -> None:
    api_settings = dataclasses.replace(settings, api_tokens=(COMMANDER,))
    headers = {"Authorization": f"Bearer {COMMANDER.token}"}
    async with serving(api_settings, clock, vendor) as client:
        ids = []
        for run in range(RUNS):
            ids.append(await _back_to_back_over_rest(client, headers, run))
        rt = _runtime(client)
        await steps_caught_up(rt, ids, within=60)
        check_each_resolution_ran_once(vendor, ids)
        for incident_id in ids:
            view = await uc.get_incident(rt, incident_id)
            cancelled = [e.text for e in view.timeline if e.kind == "steps_cancelled"]
            assert not any(s in t for t in cancelled for s in RESOLUTION_STEPS), cancelled


async def _back_to_back_over_rest(
    client: TestClient[Any, Any], headers: dict[str, str], run: int
) -> int:
    response = await client.post(
        "/api/v1/incidents",
        json={"title": f"Checkout down {run}", "severity": "P1"},
        headers=headers,
    )
    assert response.status == 201, await response.text()
    incident_id = int((await response.json())["incident"]["id"])
    one = f"/api/v1/incidents/{incident_id}"
    for path, body in (
        ("/updates", {"message": "We found the cause."}),
        ("/resolve", {"summary": "Rolled back deploy 42."}),
        ("/rca", {"link": f"https://docs.example.com/rca/{incident_id}"}),
    ):
        answer = await client.post(one + path, json=body, headers=headers)
        assert answer.status == 200, await answer.text()
    return incident_id


def _runtime(client: TestClient[Any, Any]) -> Runtime:
    server = client.server
    assert isinstance(server, TestServer)
    return server.app[CONTAINER].runtime


@pytest.fixture
async def slack_client(
    settings: Settings,
    clock: FakeClock,
    vendor: RecordingEffects,
    receiver: ResponseUrlFake,  # noqa: F811 (the fixture imported above)
) -> AsyncIterator[Slack]:
    slack_settings = dataclasses.replace(settings, slack_signing_secret=SECRET)
    async with serving(slack_settings, clock, vendor) as client:
        yield Slack(client=client, clock=clock, response_url=receiver.url)


async def test_fifty_times_over_slack(slack_client: Slack, vendor: RecordingEffects) -> None:
    slack = slack_client
    ids = []
    for run in range(RUNS):
        incident_id = await slack.declare(f"P1 Checkout down {run}", user=LEAD)
        ref = f"INC-{incident_id}"
        for text in (
            f"update {ref} We found the cause.",
            f"resolve {ref} Rolled back deploy 42.",
            f"rca {ref} https://docs.example.com/rca/{incident_id}",
        ):
            reply = await slack.command(text, user=LEAD)
            assert "refused" not in reply.text.lower() and "cannot" not in reply.text, reply.text
        ids.append(incident_id)
    await steps_caught_up(slack.rt, ids, within=60)
    check_each_resolution_ran_once(vendor, ids)
