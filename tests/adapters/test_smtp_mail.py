"""The e-mail adapter against a real SMTP server (aiosmtpd on 127.0.0.1, a port of its own).

The server records every message it accepts and can be told to answer an SMTP command with
a given reply, to drop the connection or to stop answering; with a throw-away certificate
authority (trustme) it speaks STARTTLS or implicit TLS and checks logins.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import logging
import re
import socket
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, timedelta
from typing import Any

import pytest
import trustme
from sqlalchemy import delete, select

from incident import bootstrap
from incident.adapters.database.tables import VendorRefRow
from incident.adapters.database.vendor_refs import VendorRefs
from incident.adapters.vendors.retries import RetryBudget
from incident.adapters.vendors.smtp import SmtpNotifier, message_id_for, sent_ref_name
from incident.adapters.vendors.split_notifier import SplitNotifier
from incident.cli.local_commands import integrations
from incident.clock import FakeClock
from incident.config import Settings, load_settings, parse_smtp_url
from incident.domain.incident import Incident, Severity
from incident.domain.records import SubjectRef
from incident.services.incidents import declare_incident
from incident.services.ports import Topic, VendorRejected, VendorUnavailable
from tests.vendor_fakes.smtp import (
    DROP,
    HANG,
    PASSWORD,
    USER,
    Recorder,
    Serve,
    Server,
    smtp_servers,
)

SENDER = "Incident Desk <incidents@example.com>"
FAST = RetryBudget(attempts=3, backoff=0.01, backoff_cap=0.05)
TITLE = "Paiement refusé à la caisse"
BODY = "Les paiements échouent depuis 09:02 (€, ü, 日本).\nNext update in 30 minutes."
_REFS = VendorRefRow.__table__  # type: ignore[attr-defined]


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def serve(ca: trustme.CA) -> Iterator[Serve]:
    with smtp_servers(ca) as start:
        yield start


@pytest.fixture
def server(serve: Serve) -> Server:
    return serve()


MakeNotifier = Callable[..., SmtpNotifier]


@pytest.fixture
def make(app: bootstrap.Container, clock: FakeClock) -> MakeNotifier:
    def build(server: Server, **options: Any) -> SmtpNotifier:
        settings: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": server.port,
            "sender": SENDER,
            "company": "Acme Payments",
            "tls_context": server.client_tls,
            "timeout": 2.0,
            "retry": FAST,
            "local_hostname": "incident.test",
        }
        settings.update(options)
        return SmtpNotifier(refs=VendorRefs(app.database, clock), clock=clock, **settings)

    return build


async def declare(app: bootstrap.Container, title: str = TITLE) -> Incident:
    incident, _ = await declare_incident(app.runtime, title=title, severity=Severity.P1, by="dana")
    return incident


async def notify(
    notifier: Any, incident: Incident, *addresses: str, key: str = "inc-1/notify-execs/0"
) -> None:
    await notifier.notify(
        incident=incident,
        audience="executives",
        destinations=[a if ":" in a else f"email:{a}" for a in addresses],
        subject=f"[{incident.ref} {incident.severity.value}] {incident.title}",
        body=BODY,
        key=key,
    )


def case_3(clock: FakeClock) -> Topic:
    """Support case 3, opened now."""
    return Topic(SubjectRef("case", 3), clock.now(), "CASE-3")


async def send(messenger: Any, about: Topic, *addresses: str, key: str) -> None:
    await messenger.send(
        about=about,
        audience="customer",
        destinations=[a if ":" in a else f"email:{a}" for a in addresses],
        subject=f"[{about.label}] {TITLE}",
        body=BODY,
        key=key,
    )


async def forget_sent(app: bootstrap.Container) -> None:
    """What a crash between the server's 250 and remembering it leaves: no reference."""
    statement = delete(_REFS).where(_REFS.c.vendor == "smtp")
    await app.database.run(lambda session: session.execute(statement))


async def stored_refs(app: bootstrap.Container) -> dict[str, str]:
    statement = select(_REFS.c.name, _REFS.c.external_id).where(_REFS.c.vendor == "smtp")
    rows = await app.database.run(lambda session: list(session.execute(statement)))
    return {name: external_id for name, external_id in rows}


async def sent_about(app: bootstrap.Container) -> list[tuple[str, int, str]]:
    """Each e-mail remembered as sent: its subject's kind and id, and its Message-ID."""
    statement = (
        select(_REFS.c.subject_kind, _REFS.c.subject_id, _REFS.c.external_id)
        .where(_REFS.c.vendor == "smtp")
        .order_by(_REFS.c.id)
    )
    rows = await app.database.run(lambda session: list(session.execute(statement)))
    return [(kind, subject_id, external_id) for kind, subject_id, external_id in rows]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- what a message looks like -----------------------------------------------------------------


async def test_a_notice_reaches_the_server_one_message_per_address_with_its_headers(
    server: Server, make: MakeNotifier, app: bootstrap.Container, clock: FakeClock
) -> None:
    incident = await declare(app)
    await notify(make(server), incident, "exec-team@example.com", "cfo@example.com")
    received = server.recorder.received
    assert [(r.mail_from, r.rcpt_tos) for r in received] == [
        ("incidents@example.com", ["exec-team@example.com"]),
        ("incidents@example.com", ["cfo@example.com"]),
    ]
    message = received[0].message
    assert message["Subject"] == f"[Acme Payments] [{incident.ref} P1] {TITLE}"
    assert message["From"] == SENDER
    assert message["To"] == "exec-team@example.com"
    assert message["Date"].datetime == clock.now()
    assert message["Auto-Submitted"] == "auto-generated"
    assert re.fullmatch(r"<[0-9a-f]{32}@example\.com>", message["Message-ID"])
    assert received[1].message["Message-ID"] != message["Message-ID"]  # one per address
    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"
    text = message.get_content().replace("\r\n", "\n")
    assert BODY in text
    assert text.rstrip().endswith("Acme Payments incident response (sent automatically)")
    # What was sent is remembered, under the step key and address, with its Message-ID.
    refs = await stored_refs(app)
    assert (
        refs[sent_ref_name("inc-1/notify-execs/0", "cfo@example.com")]
        == (received[1].message["Message-ID"])
    )


async def test_a_repeat_with_the_same_key_sends_nothing_and_a_new_key_sends_again(
    server: Server, make: MakeNotifier, app: bootstrap.Container
) -> None:
    incident = await declare(app)
    notifier = make(server)
    await notify(notifier, incident, "exec-team@example.com")
    await notify(notifier, incident, "exec-team@example.com")
    await notify(make(server), incident, "exec-team@example.com")  # another process, too
    assert len(server.recorder.received) == 1
    await notify(notifier, incident, "exec-team@example.com", key="inc-1/notify-execs/1")
    assert len(server.recorder.received) == 2


async def test_a_resend_after_a_crash_carries_the_same_message_id(
    server: Server, make: MakeNotifier, app: bootstrap.Container, clock: FakeClock
) -> None:
    incident = await declare(app)
    await notify(make(server), incident, "exec-team@example.com")
    await forget_sent(app)
    clock.advance(timedelta(minutes=1))
    await notify(make(server), incident, "exec-team@example.com")
    first, second = (r.message for r in server.recorder.received)
    assert first["Message-ID"] == second["Message-ID"]
    assert first["Date"] != second["Date"]  # sent again, later: the same message to a reader


async def test_an_incidents_message_id_is_what_earlier_releases_sent(
    app: bootstrap.Container,
) -> None:
    incident = await declare(app)
    declared = incident.declared_at.astimezone(UTC).isoformat()
    key, address = "inc-1/notify-execs/0", "cfo@example.com"
    digest = hashlib.sha256(f"{key}\n{address}\n{declared}".encode()).hexdigest()
    topic = Topic.incident(incident)
    assert message_id_for(topic, key, address, domain="example.com") == (
        f"<{digest[:32]}@example.com>"
    )


# --- any kind of subject -----------------------------------------------------------------------


async def test_a_message_about_a_case_goes_once_per_key_and_address_apart_from_an_incidents(
    server: Server, make: MakeNotifier, app: bootstrap.Container, clock: FakeClock
) -> None:
    case = case_3(clock)
    for _ in range(2):  # a retried step, in another process the second time
        await send(make(server), case, "customer@example.com", "agent@example.com", key="3/ack")
    received = server.recorder.received
    assert [r.rcpt_tos for r in received] == [["customer@example.com"], ["agent@example.com"]]
    # Another kind's subject is its own, tag and all ("[CIO Review] ..."): no company tag.
    assert received[0].message["Subject"] == f"[CASE-3] {TITLE}"
    text = received[0].message.get_content().replace("\r\n", "\n")
    assert text.rstrip().endswith("\nAcme Payments (sent automatically)")  # not incident response
    # Incident 3, begun at the same instant, under the same key text: a message of its own.
    incident_3 = Topic(SubjectRef.incident(3), case.began_at, "INC-3")
    await send(make(server), incident_3, "customer@example.com", key="3/ack")
    await send(make(server), incident_3, "customer@example.com", key="3/ack")
    assert [r.rcpt_tos for r in received[2:]] == [["customer@example.com"]]
    case_mail, incident_mail = received[0].message, received[2].message
    assert case_mail["Message-ID"] != incident_mail["Message-ID"]
    assert await sent_about(app) == [
        ("case", 3, case_mail["Message-ID"]),
        ("case", 3, received[1].message["Message-ID"]),
        ("incident", 3, incident_mail["Message-ID"]),
    ]


class IncidentsOnly:
    """A notifier for incidents' notices alone (no `send`), as any adapter may be: what it
    would have posted."""

    def __init__(self) -> None:
        self.posted: list[Sequence[str]] = []

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
        self.posted.append(destinations)


async def test_split_sends_a_cases_mail_by_smtp_and_keeps_what_no_route_sends_about_it(
    server: Server, make: MakeNotifier, app: bootstrap.Container, clock: FakeClock
) -> None:
    case, chat = case_3(clock), IncidentsOnly()
    split = SplitNotifier({"email": make(server), "chat": chat}, default=app.outbox)
    destinations = ("customer@example.com", "chat:#support", "chat:war-room")
    await send(split, case, *destinations, key="case-3/ack/1")
    assert [r.rcpt_tos for r in server.recorder.received] == [["customer@example.com"]]
    assert chat.posted == []  # it takes incidents' chat only: the outbox keeps the case's
    kept = await app.outbox.messages_about(case.subject)
    assert [m.destination for m in kept] == ["chat:#support", "chat:war-room"]
    # With the SMTP server down, the rest is kept all the same, and the failure raised.
    down = make(Server(recorder=Recorder(), port=closed_port()))
    split = SplitNotifier({"email": down, "chat": chat}, default=app.outbox)
    with pytest.raises(VendorUnavailable, match="could not connect"):
        await send(split, case, *destinations, key="case-3/ack/2")
    assert len(await app.outbox.messages_about(case.subject)) == 4


# --- failures ----------------------------------------------------------------------------------


async def test_a_partial_failure_then_a_retry_sends_only_the_missing_address(
    server: Server, make: MakeNotifier, app: bootstrap.Container
) -> None:
    incident = await declare(app)
    notifier = make(server)
    server.recorder.fail(
        "RCPT", "451 4.3.0 mailbox busy", times=FAST.attempts, address="cfo@example.com"
    )
    with pytest.raises(VendorUnavailable) as caught:
        await notify(notifier, incident, "exec-team@example.com", "cfo@example.com")
    assert "email:cfo@example.com" in str(caught.value) and "451" in str(caught.value)
    assert "exec-team" not in str(caught.value)
    assert [r.rcpt_tos for r in server.recorder.received] == [["exec-team@example.com"]]
    # The scheduler runs the step again, with the same key: only the missing one goes.
    await notify(notifier, incident, "exec-team@example.com", "cfo@example.com")
    assert [r.rcpt_tos for r in server.recorder.received] == [
        ["exec-team@example.com"],
        ["cfo@example.com"],
    ]


async def test_a_transient_answer_is_retried_within_the_call(
    server: Server, make: MakeNotifier, app: bootstrap.Container
) -> None:
    incident = await declare(app)
    server.recorder.fail("DATA", "451 4.7.1 greylisted, come back later")
    await notify(make(server), incident, "exec-team@example.com")
    assert server.recorder.answered == [("DATA", "451 4.7.1 greylisted, come back later")]
    assert len(server.recorder.received) == 1


@pytest.mark.parametrize(
    ("command", "reply"),
    [
        ("RCPT", "450 4.2.1 mailbox unavailable"),
        ("DATA", "452 4.3.1 insufficient storage"),
        ("MAIL", "421 4.3.2 service shutting down"),
        ("DATA", DROP),
    ],
)
async def test_4xx_answers_and_lost_connections_are_unavailable_after_the_retries(
    server: Server, make: MakeNotifier, app: bootstrap.Container, command: str, reply: str
) -> None:
    incident = await declare(app)
    server.recorder.fail(command, reply, times=10)
    with pytest.raises(VendorUnavailable) as caught:
        await notify(make(server), incident, "exec-team@example.com")
    assert str(caught.value).startswith(
        f"SMTP: notify executives through 127.0.0.1:{server.port}: email:exec-team@example.com: "
    )
    assert f"after {FAST.attempts} attempt(s)" in str(caught.value)
    assert len(server.recorder.answered) == FAST.attempts
    assert server.recorder.received == []
    assert await stored_refs(app) == {}


@pytest.mark.parametrize(
    ("command", "reply", "words"),
    [
        ("RCPT", "550 5.1.1 no such user here", "recipient refused (550 5.1.1 no such user"),
        ("DATA", "554 5.6.0 message content refused", "message refused (554"),
        ("MAIL", "553 5.7.1 sender not allowed", "sender incidents@example.com refused (553"),
    ],
)
async def test_5xx_answers_are_rejected_at_once(
    server: Server,
    make: MakeNotifier,
    app: bootstrap.Container,
    command: str,
    reply: str,
    words: str,
) -> None:
    incident = await declare(app)
    server.recorder.fail(command, reply, times=10)
    with pytest.raises(VendorRejected) as caught:
        await notify(make(server), incident, "exec-team@example.com")
    assert words in str(caught.value)
    assert len(server.recorder.answered) == 1  # not tried again: it would not help
    assert server.recorder.received == []


async def test_one_refused_address_does_not_stop_the_others(
    server: Server, make: MakeNotifier, app: bootstrap.Container
) -> None:
    incident = await declare(app)
    server.recorder.fail("RCPT", "550 5.1.1 unknown", times=10, address="gone@example.com")
    with pytest.raises(VendorRejected) as caught:
        await notify(
            make(server), incident, "gone@example.com", "not an address", "cfo@example.com"
        )
    assert "email:gone@example.com: recipient refused (550 5.1.1 unknown)" in str(caught.value)
    assert "email:not an address: not an e-mail address" in str(caught.value)
    assert [r.rcpt_tos for r in server.recorder.received] == [["cfo@example.com"]]


async def test_a_refused_connection_is_unavailable_and_spares_the_other_addresses(
    make: MakeNotifier, app: bootstrap.Container
) -> None:
    incident = await declare(app)
    notifier = make(Server(recorder=Recorder(), port=closed_port()))
    with pytest.raises(VendorUnavailable) as caught:
        await notify(notifier, incident, "exec-team@example.com", "cfo@example.com")
    text = str(caught.value)
    assert "email:exec-team@example.com: failed after 3 attempt(s): could not connect" in text
    assert "email:cfo@example.com: not tried" in text  # the server is down for everyone


async def test_a_server_that_stops_answering_times_out(
    server: Server, make: MakeNotifier, app: bootstrap.Container
) -> None:
    incident = await declare(app)
    server.recorder.fail("DATA", HANG, times=10)
    notifier = make(server, timeout=0.2, retry=RetryBudget(attempts=2, backoff=0.01))
    with pytest.raises(VendorUnavailable, match="timed out"):
        await notify(notifier, incident, "exec-team@example.com")


# --- TLS and logins ----------------------------------------------------------------------------


async def test_a_login_over_starttls_sends(
    serve: Serve, make: MakeNotifier, app: bootstrap.Container
) -> None:
    server = serve(tls="starttls", auth=True)
    incident = await declare(app)
    notifier = make(server, username=USER, password=PASSWORD, require_starttls=True)
    await notify(notifier, incident, "exec-team@example.com")
    assert [login for _, login in server.recorder.logins] == [USER]
    assert len(server.recorder.received) == 1


async def test_a_refused_login_is_rejected_and_never_shows_the_password(
    serve: Serve, make: MakeNotifier, app: bootstrap.Container, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = serve(tls="starttls", auth=True)
    incident = await declare(app)
    wrong = "Wr0ng-Pa55word!"
    notifier = make(server, username=USER, password=wrong, require_starttls=True)
    with pytest.raises(VendorRejected) as caught:
        await notify(notifier, incident, "exec-team@example.com", "cfo@example.com")
    text = str(caught.value)
    assert "refused our login (535 5.7.8" in text and "INCIDENT_SMTP_URL" in text
    assert "email:cfo@example.com: not tried" in text
    # Our logs, not the server's own (which here logs what it was sent).
    ours = [r for r in caplog.records if r.name.startswith("incident")]
    logged = " ".join(str(record.__dict__) for record in ours)
    for secret in (
        wrong,
        f"{USER}:{wrong}",
        base64.b64encode(wrong.encode()).decode(),
        base64.b64encode(f"\0{USER}\0{wrong}".encode()).decode(),
    ):
        assert secret not in text and secret not in logged and secret not in repr(notifier)
    assert server.recorder.received == []


async def test_implicit_tls_sends(
    serve: Serve, make: MakeNotifier, app: bootstrap.Container
) -> None:
    server = serve(tls="implicit")
    incident = await declare(app)
    await notify(make(server, implicit_tls=True), incident, "exec-team@example.com")
    assert len(server.recorder.received) == 1


async def test_an_untrusted_certificate_is_rejected(
    serve: Serve, make: MakeNotifier, app: bootstrap.Container
) -> None:
    server = serve(tls="starttls")
    incident = await declare(app)
    with pytest.raises(VendorRejected, match="TLS certificate is not trusted"):
        await notify(make(server, tls_context=None), incident, "exec-team@example.com")


async def test_required_starttls_refuses_a_server_without_it(
    server: Server, make: MakeNotifier, app: bootstrap.Container
) -> None:
    incident = await declare(app)
    with pytest.raises(VendorRejected, match="the server does not offer STARTTLS"):
        await notify(make(server, require_starttls=True), incident, "exec-team@example.com")
    assert server.recorder.received == []


# --- wiring ------------------------------------------------------------------------------------


async def test_bootstrap_with_smtp_sends_email_destinations_there_and_chat_to_the_outbox(
    server: Server, settings: Settings, clock: FakeClock
) -> None:
    configured = dataclasses.replace(
        settings,
        smtp=parse_smtp_url(f"smtp://127.0.0.1:{server.port}", where="test"),
        smtp_from=SENDER,
        company_name="Acme Payments",
    )
    app = await bootstrap.build(configured, clock=clock)
    try:
        assert app.live["email"] == f"SMTP (127.0.0.1:{server.port})"
        assert app.live["chat"] == "outbox"
        incident = await declare(app)
        await notify(app.effects.notifier, incident, "exec-team@example.com", "chat:#execs")
        await notify(app.effects.notifier, incident, "exec-team@example.com", "chat:#execs")
        kept = await app.outbox.messages(incident_id=incident.id)
    finally:
        await app.close()
    assert [r.rcpt_tos for r in server.recorder.received] == [["exec-team@example.com"]]
    assert server.recorder.received[0].message["Subject"].startswith("[Acme Payments] [INC-")
    notices = [(m.channel, m.destination) for m in kept if m.subject.endswith(TITLE)]
    assert notices == [("chat", "chat:#execs")]


async def test_an_smtp_outage_does_not_hold_back_what_the_outbox_keeps(
    make: MakeNotifier, app: bootstrap.Container
) -> None:
    incident = await declare(app)
    down = make(Server(recorder=Recorder(), port=closed_port()))
    split = SplitNotifier({"email": down}, default=app.outbox)
    with pytest.raises(VendorUnavailable, match="could not connect"):
        await notify(split, incident, "exec-team@example.com", "chat:#execs", "pager:x")
    kept = await app.outbox.messages(incident_id=incident.id)
    destinations = [m.destination for m in kept if m.subject.endswith(TITLE)]
    assert destinations == ["chat:#execs", "pager:x"]


def test_serve_says_where_email_goes_and_never_the_password() -> None:
    mail = {
        "INCIDENT_SMTP_URL": f"smtp://{USER.replace('@', '%40')}:{PASSWORD}@mail.example.com:587",
        "INCIDENT_SMTP_FROM": SENDER,
    }
    lines = integrations(load_settings(mail))
    assert (
        "e-mail: audiences' email: destinations through SMTP (mail.example.com:587, STARTTLS, "
        f"from {SENDER})"
    ) in lines
    assert PASSWORD not in " ".join(lines)
    assert any(line.startswith("e-mail: outbox") for line in integrations(load_settings({})))
