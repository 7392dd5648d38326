"""The AccountSystem port: the signed webhook against a strict local receiver (real HTTP over
loopback), and the outbox task kept with it or in its place."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import httpx
import pytest

from incident import bootstrap
from incident.adapters.vendors.account_webhook import AccountWebhook, sign
from incident.adapters.vendors.outbox import account_task_key
from incident.adapters.vendors.retries import RetryBudget
from incident.clock import FakeClock
from incident.config import Settings
from incident.domain.records import SubjectRef
from incident.services.ports import AccountSystem, Topic, VendorRejected, VendorUnavailable
from tests.vendor_fakes.account_system import FakeAccountSystem

SECRET = "whsec-0123456789abcdef0123456789abcdef-S3cr3t"
FAST = RetryBudget(attempts=4, backoff=0.01, backoff_cap=0.05, retry_after_cap=30.0)
INSTRUCTION = {"action": "transfer_ownership", "account": "acct-42", "to": "new@example.com"}
KEY = "verify-3/decision/instruct"

MakeWebhook = Callable[..., AccountWebhook]


@pytest.fixture
async def receiver(clock: FakeClock) -> AsyncIterator[FakeAccountSystem]:
    async with FakeAccountSystem(secret=SECRET, clock=clock) as fake:
        yield fake


@pytest.fixture
async def make(
    receiver: FakeAccountSystem, app: bootstrap.Container, clock: FakeClock
) -> AsyncIterator[MakeWebhook]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(0.3)) as http:

        def build(*, secret: str = SECRET, url: str | None = None) -> AccountWebhook:
            return AccountWebhook(
                client=http,
                url=url or receiver.url,
                secret=secret,
                clock=clock,
                record=app.outbox,
                retry=FAST,
                allow_http=True,  # the local receiver has no TLS
            )

        yield build


def case(clock: FakeClock) -> Topic:
    return Topic(SubjectRef("verification", 3), clock.now(), "VER-3")


async def instruct(accounts: AccountSystem, clock: FakeClock, key: str = KEY) -> None:
    await accounts.instruct(about=case(clock), instruction=INSTRUCTION, key=key)


async def test_a_signed_instruction_is_verified_and_kept_once_per_key(
    receiver: FakeAccountSystem, make: MakeWebhook, clock: FakeClock, app: bootstrap.Container
) -> None:
    await instruct(make(), clock)
    await instruct(make(), clock)  # the step retried: the same key, recognised
    assert receiver.instructions[KEY] == {
        "key": KEY,
        "about": {"kind": "verification", "id": 3, "label": "VER-3"},
        "instruction": INSTRUCTION,
    }
    assert receiver.duplicates[KEY] == 1
    [first, _] = receiver.requests
    assert first.status == 200 and first.headers["Idempotency-Key"] == KEY
    timestamp = int(clock.now().timestamp())
    assert first.headers["X-Incident-Signature"] == sign(SECRET, timestamp, first.body)
    # And the task people see, once.
    [task] = await app.outbox.messages_about(SubjectRef("verification", 3))
    assert task.idempotency_key == account_task_key(KEY) and task.channel == "account"
    assert json.loads(task.body) == INSTRUCTION


async def test_the_receiver_refuses_bad_missing_and_stale_signatures(
    receiver: FakeAccountSystem, make: MakeWebhook, clock: FakeClock
) -> None:
    with pytest.raises(VendorRejected, match="HTTP 401"):
        await instruct(make(secret="not-the-shared-secret-at-all-000000000"), clock)
    async with httpx.AsyncClient() as http:
        unsigned = await http.post(
            receiver.url, json={"key": "k"}, headers={"Idempotency-Key": "k"}
        )
        assert unsigned.status_code == 401
        body = b'{"key":"k"}'
        stale = int((clock.now() - timedelta(minutes=6)).timestamp())
        replayed = await http.post(
            receiver.url,
            content=body,
            headers={
                "Content-Type": "application/json",
                "Idempotency-Key": "k",
                "X-Incident-Signature": sign(SECRET, stale, body),
            },
        )
        assert replayed.status_code == 401
    assert receiver.instructions == {}


async def test_429_500_and_a_timeout_are_retried_then_it_is_delivered_once(
    receiver: FakeAccountSystem, make: MakeWebhook, clock: FakeClock
) -> None:
    receiver.rate_limit(retry_after="7")
    receiver.fail()
    receiver.hang(seconds=1.0)
    before = clock.now()
    await instruct(make(), clock)
    assert [r.status for r in receiver.requests][:2] == [429, 500]
    assert receiver.requests[-1].status == 200 and len(receiver.requests) == 4
    assert clock.now() - before >= timedelta(seconds=7)  # as long as Retry-After said
    assert list(receiver.instructions) == [KEY] and receiver.duplicates[KEY] == 0


async def test_an_answer_lost_after_it_took_effect_is_sent_again_and_recognised(
    receiver: FakeAccountSystem, make: MakeWebhook, clock: FakeClock
) -> None:
    receiver.drop_after_taking_effect()
    await instruct(make(), clock)
    assert list(receiver.instructions) == [KEY] and receiver.duplicates[KEY] == 1


async def test_beyond_the_budget_it_is_unavailable_for_the_scheduler_to_retry(
    receiver: FakeAccountSystem, make: MakeWebhook, clock: FakeClock
) -> None:
    receiver.fail(times=4)
    with pytest.raises(VendorUnavailable, match="HTTP 500"):
        await instruct(make(), clock)
    assert len(receiver.requests) == 4
    await instruct(make(), clock)  # the scheduler's retry, the same key
    assert list(receiver.instructions) == [KEY]


async def test_a_400_is_not_retried_and_the_error_never_shows_the_secret(
    receiver: FakeAccountSystem,
    make: MakeWebhook,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(VendorRejected) as refused:
        # A body the receiver refuses: an Idempotency-Key not naming the body's key.
        await make().instruct(about=case(clock), instruction=INSTRUCTION, key="")
    assert "HTTP 400" in str(refused.value) and len(receiver.requests) == 1
    receiver.fail(times=4)
    with pytest.raises(VendorUnavailable) as unavailable:
        await instruct(make(), clock, key="other")
    said = str(refused.value) + str(unavailable.value)
    logged = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    for text in (said, logged):
        assert SECRET not in text
    assert "account_webhook_retry" in logged


async def test_plain_http_is_refused_unless_allowed(clock: FakeClock) -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(ValueError, match="https://") as refused:
            AccountWebhook(
                client=http, url="http://accounts.example.com/x", secret=SECRET, clock=clock
            )
        assert SECRET not in str(refused.value)
        AccountWebhook(
            client=http, url="http://127.0.0.1:9/x", secret=SECRET, clock=clock, allow_http=True
        )


async def test_without_a_webhook_the_instruction_is_an_outbox_task(
    settings: Settings, clock: FakeClock
) -> None:
    app = await bootstrap.build(settings, clock=clock)
    try:
        assert app.effects.accounts is app.outbox
        assert app.live["accounts"] == "outbox (tasks)"
        await instruct(app.effects.accounts, clock)
        await instruct(app.effects.accounts, clock)  # retried: still one task
        [task] = await app.outbox.messages_about(SubjectRef("verification", 3))
        assert task.subject == "account instruction about VER-3"
        assert json.loads(task.body) == INSTRUCTION
    finally:
        await app.close()


async def test_with_a_webhook_bootstrap_sends_it_and_keeps_the_task(
    receiver: FakeAccountSystem, settings: Settings, clock: FakeClock
) -> None:
    configured = Settings(
        **{
            **settings.__dict__,
            "account_webhook_url": receiver.url + "?token=hidden",
            "account_webhook_secret": SECRET,
            "account_webhook_allow_http": True,
        }
    )
    app = await bootstrap.build(configured, clock=clock)
    try:
        assert app.live["accounts"] == f"outbox (tasks) and signed webhook ({receiver.url})"
        await instruct(app.effects.accounts, clock)
        assert list(receiver.instructions) == [KEY]
        assert len(await app.outbox.messages_about(SubjectRef("verification", 3))) == 1
    finally:
        await app.close()
