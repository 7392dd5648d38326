"""A real SMTP server for the tests: aiosmtpd on 127.0.0.1, a port of its own, recording
every message it accepts; it can be told to answer an SMTP command with a given reply, to
drop the connection or to stop answering, and with a throw-away certificate authority
(trustme) it speaks STARTTLS or implicit TLS and checks logins."""

from __future__ import annotations

import asyncio
import email
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

USER = "mailer@example.com"
PASSWORD = "Tr0ub4dor&3-s3cret"
DROP = "drop"  # a scripted fault: close the connection instead of answering
HANG = "hang"  # a scripted fault: never answer


# --- the server --------------------------------------------------------------------------------


@dataclass
class Fault:
    command: str  # MAIL, RCPT or DATA
    reply: str  # an SMTP reply like "451 4.3.0 try later", or DROP or HANG
    times: int  # how many commands it answers, then it is spent
    address: str | None = None  # RCPT or DATA: only for this recipient


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class Recorder:
    """aiosmtpd handler: accepts mail, records it, and plays scripted faults first."""

    received: list[Received] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    answered: list[tuple[str, str]] = field(default_factory=list)  # (command, fault reply)
    logins: list[tuple[str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, command: str, reply: str, *, times: int = 1, address: str | None = None) -> None:
        with self._lock:
            self.faults.append(Fault(command, reply, times, address))

    def to(self, address: str) -> list[EmailMessage]:
        return [r.message for r in self.received if address in r.rcpt_tos]

    async def _fault(self, server: SMTP, command: str, addresses: list[str]) -> str | None:
        with self._lock:
            for fault in self.faults:
                if fault.command == command and fault.times > 0:
                    if fault.address is None or fault.address in addresses:
                        fault.times -= 1
                        self.answered.append((command, fault.reply))
                        break
            else:
                return None
        if fault.reply == DROP:
            assert server.transport is not None
            server.transport.close()
            return "421 4.4.2 connection dropped"  # never reaches the client
        if fault.reply == HANG:
            await asyncio.sleep(30)  # cancelled when the server stops
        return fault.reply

    async def handle_MAIL(  # noqa: N802 (aiosmtpd's hook names)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = await self._fault(server, "MAIL", [])
        if reply is not None:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook names)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = await self._fault(server, "RCPT", [address])
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook names)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        reply = await self._fault(server, "DATA", list(envelope.rcpt_tos))
        if reply is not None:
            return reply
        raw = envelope.original_content or b""
        parsed = email.message_from_bytes(raw, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        with self._lock:
            self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), parsed))
        return "250 2.0.0 Message accepted for delivery"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        login, password = data.login.decode(), data.password.decode()
        self.logins.append((mechanism, login))
        if (login, password) == (USER, PASSWORD):
            return AuthResult(success=True)
        # A careless server that repeats what it was given: the adapter must not pass it on.
        return AuthResult(
            success=False,
            handled=False,
            message=f"535 5.7.8 Authentication failed for {login}:{password}",
        )


class _Controller(Controller):
    """aiosmtpd's own server thread, on a port the system picks (port 0)."""

    def _trigger_server(self) -> None:
        # loop.create_server made it: an asyncio.Server, which has the listening sockets.
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        # aiosmtpd is typed but for this hook, which it leaves unannotated.
        super()._trigger_server()  # type: ignore[no-untyped-call]


@dataclass
class Server:
    recorder: Recorder
    port: int
    client_tls: ssl.SSLContext | None = None


Serve = Callable[..., Server]


@contextmanager
def smtp_servers(ca: trustme.CA) -> Iterator[Serve]:
    """Start SMTP servers: plain, STARTTLS (`tls="starttls"`, logins checked with `auth`) or
    implicit TLS (`tls="implicit"`); each is stopped on leaving."""
    controllers: list[Controller] = []

    def start(*, tls: str | None = None, auth: bool = False) -> Server:
        recorder = Recorder()
        options: dict[str, Any] = {}
        client_tls = None
        if tls is not None:
            server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ca.issue_cert("127.0.0.1").configure_cert(server_tls)
            client_tls = ssl.create_default_context()
            ca.configure_trust(client_tls)
            if tls == "starttls":
                options.update(tls_context=server_tls, require_starttls=True)
            else:
                options.update(ssl_context=server_tls)
        if auth:
            options.update(authenticator=recorder.authenticate, auth_required=True)
        controller = _Controller(
            recorder,
            hostname="127.0.0.1",
            port=0,
            server_hostname="smtp.test",
            ready_timeout=5.0,
            **options,
        )
        controller.start()
        controllers.append(controller)
        return Server(recorder=recorder, port=controller.port, client_tls=client_tls)

    try:
        yield start
    finally:
        for controller in controllers:
            controller.stop()
