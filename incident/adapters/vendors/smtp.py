"""E-mail: `email:` destinations, sent through an SMTP server (aiosmtplib), for incidents'
notices (the Notifier port) and for messages about any other kind of subject (Messenger: a
support case's, ...). `notify` is `send` about the incident.

One message per destination address, never one message to all of an audience's addresses:
each address is sent, remembered and retried on its own (a retry after a partial failure
sends only the addresses still missing), and no recipient sees who else was told.

Each message carries `Subject: [<Company>] [INC-12 P1] <title>`, `From`, `To`, `Date`,
`Auto-Submitted: auto-generated` (RFC 3834: no vacation replies to us) and a `Message-ID`
derived from the step's idempotency key, the address and the subject (`message_id_for`),
so a message sent again after a crash carries the same Message-ID as the first one, and mail
clients that notice show it once.

Idempotency: before sending, the adapter looks the (key, address) up in `VendorRefs` under
the message's subject (its kind and id; vendor "smtp", name: the sha256 hex of key and
address); after the server accepted the message it stores the Message-ID there. A repeat of
a step that went out sends nothing. SMTP has no idempotency key of its own: a crash between
the server's "250 OK" and that write sends the message once more (with the same Message-ID).

Failures: refused or dropped connections, timeouts and 4xx answers are retried within the
call (`RetryBudget`), then raised as `VendorUnavailable` for the scheduler's durable retry;
5xx answers (recipient, sender, message refused), failed authentication and an untrusted
TLS certificate are `VendorRejected`. Error texts and logs never hold the password.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, parseaddr
from functools import partial

import aiosmtplib

from incident.adapters.database.vendor_refs import VendorRefs
from incident.adapters.vendors.retries import Failure, RetryBudget, VendorRetry, Wording
from incident.clock import Clock
from incident.domain.incident import Incident
from incident.domain.records import INCIDENT
from incident.services.ports import (
    Topic,
    VendorError,
    VendorRejected,
    each_said,
    failed_together,
)

log = logging.getLogger(__name__)

VENDOR = "smtp"
VENDOR_NAME = "SMTP"
PREFIX = "email:"


def sent_ref_name(key: str, address: str) -> str:
    """The VendorRefs name that records (key, address) as sent: 64 hex characters."""
    return hashlib.sha256(f"{key}\n{address}".encode()).hexdigest()


def message_id_for(about: Topic, key: str, address: str, *, domain: str) -> str:
    """The Message-ID of the mail for (step key, address) about a subject: the same on
    every re-send.

    The instant the subject began (an incident's declaration) is part of it, so another
    installation (staging, a rebuilt database) reusing subject numbers never mints a
    Message-ID already seen by a recipient, whose mail client could then hide the new
    message as a duplicate. Another kind's subject names itself too (`case-3`), so a case
    and an incident of one number and instant never share one; an incident's is what it
    has always been (a mail re-sent after an upgrade keeps its Message-ID).
    """
    parts = [key, address, about.began_at.astimezone(UTC).isoformat()]
    if about.subject.kind != INCIDENT:
        parts.append(about.subject.key)
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()
    return f"<{digest[:32]}@{domain}>"


class _Failed(Exception):
    """One attempt failed; `reason` is safe to show (no credentials)."""

    def __init__(self, reason: str, *, retryable: bool, whole_server: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        # The server or our account fails, not this one address: the others would fail too.
        self.whole_server = whole_server


@dataclass(frozen=True)
class _Mail:
    destination: str
    address: str
    ref_name: str
    message: EmailMessage


class SmtpNotifier:
    """Implements Notifier and Messenger for `email:address` destinations through one SMTP
    server.

    It is handed its settings (host, port, TLS mode, credentials, sender, company name),
    the clock and VendorRefs by bootstrap; it reads no environment. Each `send` opens one
    connection for the addresses it has to send (and reconnects when one is lost) and
    closes it before returning. `tls_context`: the trust for the server's certificate
    (default: the system's).
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        refs: VendorRefs,
        clock: Clock,
        company: str = "Service",
        implicit_tls: bool = False,
        require_starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        tls_context: ssl.SSLContext | None = None,
        timeout: float = 10.0,
        retry: RetryBudget | None = None,
        local_hostname: str | None = None,
    ) -> None:
        """`timeout` bounds each network step (connect, each command); `local_hostname`:
        the name we give in EHLO (default: this machine's fully qualified name)."""
        _, address = parseaddr(sender)
        if "@" not in address:
            raise ValueError("the sender must be an e-mail address, like ops@example.com")
        if implicit_tls and require_starttls:
            raise ValueError("implicit TLS and STARTTLS exclude each other")
        self._host = host
        self._port = port
        self._where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self._sender = sender
        self._envelope_from = address
        self._domain = address.rpartition("@")[2]
        self._refs = refs
        self._clock = clock
        self._company = company
        self._implicit_tls = implicit_tls
        self._require_starttls = require_starttls
        self._username = username
        self._password = password
        self._tls_context = tls_context
        self._timeout = timeout
        self._retry = retry or RetryBudget()
        self._local_hostname = local_hostname
        self._secrets = _secret_forms(username, password)

    def __repr__(self) -> str:
        return f"SmtpNotifier(host={self._host!r}, port={self._port})"

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
        """`send` about the incident."""
        await self.send(
            about=Topic.incident(incident),
            audience=audience,
            destinations=destinations,
            subject=subject,
            body=body,
            key=key,
        )

    async def send(
        self,
        *,
        about: Topic,
        audience: str,
        destinations: Sequence[str],
        subject: str,
        body: str,
        key: str,
    ) -> None:
        """Send one message to each `email:` destination, once per `key` and address about
        this subject.

        Every address is tried (unless the server itself fails, which would fail them all);
        the failures are raised together: `VendorUnavailable` if any may pass later.
        """
        others = [d for d in destinations if not d.startswith(PREFIX)]
        if others:
            raise ValueError(
                f"SmtpNotifier delivers email: destinations only; route {', '.join(others)} "
                "to another notifier"
            )
        failures: list[tuple[str, VendorError]] = []
        pending: list[_Mail] = []
        for destination in dict.fromkeys(destinations):  # each address once, in order
            address = destination.removeprefix(PREFIX).strip()
            if not _is_address(address):
                failures.append((destination, VendorRejected(VENDOR_NAME, "not an e-mail address")))
                continue
            name = sent_ref_name(key, address)
            kind = about.subject.kind
            if await self._refs.find(about.subject.id, VENDOR, name, kind=kind) is not None:
                continue  # sent by an earlier run of this step
            message = self._message(about, address, subject=subject, body=body, key=key)
            pending.append(_Mail(destination, address, name, message))
        if pending:
            failures += await self._send_all(about, pending, key=key)
        if failures:
            reason = f"notify {audience} through {self._where}: {each_said(failures)}"
            raise failed_together(VENDOR_NAME, reason, [e for _, e in failures])

    # --- internals ---------------------------------------------------------------------------

    async def _send_all(
        self, about: Topic, mails: Sequence[_Mail], *, key: str
    ) -> list[tuple[str, VendorError]]:
        # The vendors' logs name incidents by id; another kind's subject by its key.
        incident_id = about.subject.id if about.subject.kind == INCIDENT else None
        failures: list[tuple[str, VendorError]] = []
        connection = _Connection(self._client)
        try:
            for index, mail in enumerate(mails):
                try:
                    await self._retrying(
                        f"mail to {mail.address}",
                        partial(connection.send, mail, self._envelope_from),
                        incident_id=incident_id,
                    )
                except _GaveUp as gave_up:
                    failures.append((mail.destination, gave_up.error))
                    if gave_up.whole_server:
                        failures += [
                            (m.destination, type(gave_up.error)(VENDOR_NAME, "not tried"))
                            for m in mails[index + 1 :]
                        ]
                        break
                    continue
                message_id = str(mail.message["Message-ID"])
                await self._refs.remember(
                    about.subject.id, VENDOR, mail.ref_name, message_id, kind=about.subject.kind
                )
                log.info(
                    "e-mail sent",
                    extra={
                        "action": "smtp_sent",
                        "incident_id": incident_id,
                        "subject": about.subject.key,
                        "to": mail.address,
                        "message_id": message_id,
                        "key": key,
                    },
                )
        finally:
            await connection.close()
        return failures

    def _client(self) -> aiosmtplib.SMTP:
        return aiosmtplib.SMTP(
            hostname=self._host,
            port=self._port,
            username=self._username,
            password=self._password,
            use_tls=self._implicit_tls,
            # None: STARTTLS when the server offers it; True: refuse a server without it.
            start_tls=False if self._implicit_tls else (True if self._require_starttls else None),
            tls_context=self._tls_context,
            timeout=self._timeout,
            local_hostname=self._local_hostname,
        )

    def _message(
        self, about: Topic, address: str, *, subject: str, body: str, key: str
    ) -> EmailMessage:
        message = EmailMessage(policy=SMTP_POLICY)
        # Incidents' subjects carry the company's tag (they reach customers' contacts too);
        # another kind's subject is its playbook's, tag and all: a CIO review mail starts
        # with "[CIO Review]", as the procedures say the CIO's mail filters expect.
        tagged = f"[{self._company}] {subject}" if about.subject.kind == INCIDENT else subject
        message["Subject"] = " ".join(tagged.split())
        message["From"] = self._sender
        message["To"] = address
        message["Date"] = format_datetime(self._clock.now())
        message["Message-ID"] = message_id_for(about, key, address, domain=self._domain)
        message["Auto-Submitted"] = "auto-generated"
        # Exchange and Outlook honour this instead of RFC 3834: no out-of-office replies.
        message["X-Auto-Response-Suppress"] = "All"
        # Incidents' mail is incident response's; another kind's, the company's (a support
        # case is the support desk's).
        team = "incident response " if about.subject.kind == INCIDENT else ""
        signature = f"-- \n{self._company} {team}(sent automatically)"
        # Quoted-printable: the body arrives intact through servers without 8BITMIME.
        message.set_content(
            f"{body.rstrip()}\n\n{signature}\n", charset="utf-8", cte="quoted-printable"
        )
        return message

    async def _retrying(
        self, operation: str, attempt: Callable[[], Awaitable[None]], *, incident_id: int | None
    ) -> None:
        """Run `attempt` through the vendors' one bounded retry loop (`VendorRetry`); when it
        gives up, `_GaveUp` carries the VendorError (its reason without `operation`, which
        the caller's text names already; the logs name it) and whether the whole server
        failed, so the mails after it are not tried."""
        failed: list[_Failed] = []

        def failure_of(error: Exception) -> Failure:
            failed.append(_classify(error, self._secrets))
            return Failure(failed[-1].reason, retryable=failed[-1].retryable)

        retry = VendorRetry(
            vendor=VENDOR_NAME,
            budget=self._retry,
            clock=self._clock,
            failure_of=failure_of,
            log=log,
            retry_action="smtp_retry",
            gave_up_action="smtp_gave_up",
            wording=_SmtpWording(),
        )
        try:
            await retry.run(operation, attempt, incident_id=incident_id)
        except VendorError as error:
            raise _GaveUp(error, whole_server=failed[-1].whole_server) from None


class _SmtpWording(Wording):
    """The words SMTP's errors have always had: the caller's text names the mail."""

    def refused(self, operation: str, failure: Failure) -> str:
        return failure.reason

    def gave_up(
        self, vendor: str, operation: str, tries: int, failure: Failure, *, at_once: bool
    ) -> str:
        return f"failed after {tries} attempt(s): {failure.reason}"


class _GaveUp(Exception):
    def __init__(self, error: VendorError, *, whole_server: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.whole_server = whole_server


class _Connection:
    """One SMTP session, opened on first use and again after the server dropped it."""

    def __init__(self, factory: Callable[[], aiosmtplib.SMTP]) -> None:
        self._factory = factory
        self._smtp: aiosmtplib.SMTP | None = None

    async def send(self, mail: _Mail, envelope_from: str) -> None:
        if self._smtp is None or not self._smtp.is_connected:
            smtp = self._factory()
            await smtp.connect()  # closes itself when it fails
            self._smtp = smtp
        try:
            await self._smtp.send_message(
                mail.message, sender=envelope_from, recipients=[mail.address]
            )
        except BaseException:
            # After a failure start afresh: a refused recipient left the session reset,
            # anything else may have left it out of step.
            self._smtp.close()
            raise

    async def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None or not smtp.is_connected:
            return
        try:
            await smtp.quit()
        except (aiosmtplib.SMTPException, OSError):
            pass  # the messages are sent; a rude goodbye changes nothing
        finally:
            smtp.close()


def _classify(error: Exception, secrets: Sequence[str]) -> _Failed:
    """What one failed attempt means; the reason is scrubbed of credentials."""
    # In this order: aiosmtplib's errors subclass one another and OSError/TimeoutError.
    for classify in (_classify_answer, _classify_connection, _classify_missing_feature):
        failure = classify(error, secrets)
        if failure is not None:
            return failure
    raise error


def _classify_answer(error: Exception, secrets: Sequence[str]) -> _Failed | None:
    """A failure the server answered with a reply code, or None."""
    if isinstance(error, aiosmtplib.SMTPAuthenticationError):
        return _Failed(
            f"the server refused our login ({_reply(error, secrets)}); check the user and "
            "password in INCIDENT_SMTP_URL",
            retryable=_transient(error.code),
            whole_server=True,
        )
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        first = error.recipients[0]
        return _Failed(
            f"recipient refused ({_reply(first, secrets)})",
            retryable=_transient(first.code),
            whole_server=first.code == 421,
        )
    if isinstance(error, aiosmtplib.SMTPResponseException):
        what, whole = _what_was_refused(error)
        return _Failed(
            f"{what} ({_reply(error, secrets)})",
            retryable=_transient(error.code),
            whole_server=whole,
        )
    return None


def _what_was_refused(error: aiosmtplib.SMTPResponseException) -> tuple[str, bool]:
    """What the server's answer refused, and whether it refuses the whole server's work."""
    if isinstance(error, aiosmtplib.SMTPSenderRefused):
        return f"sender {error.sender} refused", True
    if isinstance(error, aiosmtplib.SMTPDataError):
        return "message refused", error.code == 421
    if isinstance(error, aiosmtplib.SMTPConnectResponseError | aiosmtplib.SMTPHeloError):
        return "the server is not ready", True
    return "the server answered", error.code == 421


def _classify_connection(error: Exception, secrets: Sequence[str]) -> _Failed | None:
    """A failure of the connection itself (no reply to scrub), or None."""
    if isinstance(error, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return _Failed("timed out", retryable=True, whole_server=True)
    certificate = _untrusted_certificate(error)
    if certificate is not None:
        return _Failed(
            f"the server's TLS certificate is not trusted ({certificate.verify_message})",
            retryable=False,
            whole_server=True,
        )
    if isinstance(error, aiosmtplib.SMTPConnectError):
        return _Failed("could not connect", retryable=True, whole_server=True)
    if isinstance(error, aiosmtplib.SMTPServerDisconnected):
        return _Failed("the server closed the connection", retryable=True, whole_server=True)
    if isinstance(error, ssl.SSLError | OSError):
        return _Failed(
            f"connection failed ({type(error).__name__})", retryable=True, whole_server=True
        )
    return None


def _untrusted_certificate(error: Exception) -> ssl.SSLCertVerificationError | None:
    """The certificate failure `error` is or wraps (aiosmtplib wraps it), or None."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return error
    if isinstance(error.__cause__, ssl.SSLCertVerificationError):
        return error.__cause__
    return None


def _classify_missing_feature(error: Exception, secrets: Sequence[str]) -> _Failed | None:
    """Something we need that the server does not offer, or None."""
    if not isinstance(error, aiosmtplib.SMTPException):
        return None
    if "STARTTLS" in error.message:
        reason = (
            "the server does not offer STARTTLS, which a user in INCIDENT_SMTP_URL or its "
            "?starttls=required demands (use smtps:// if it speaks TLS from the start)"
        )
    elif "AUTH" in error.message:
        reason = "the server does not offer a login (AUTH); drop the user from the URL"
    else:
        reason = _scrub(error.message, secrets)
    # A non-ASCII address the server cannot take (no SMTPUTF8) is that address's problem.
    return _Failed(reason, retryable=False, whole_server="SMTPUTF8" not in error.message)


def _reply(error: aiosmtplib.SMTPResponseException, secrets: Sequence[str]) -> str:
    text = " ".join(error.message.split())[:300]
    return f"{error.code} {_scrub(text, secrets)}".strip()


def _transient(code: int) -> bool:
    return 400 <= code < 500


def _scrub(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    return text


def _secret_forms(username: str | None, password: str | None) -> tuple[str, ...]:
    """The password as a server could echo it: plain, with the user, and base64 (AUTH)."""
    if not password:
        return ()
    user = username or ""
    plain = (f"{user}:{password}", password)
    encoded = (
        base64.b64encode(f"\0{user}\0{password}".encode()).decode(),
        base64.b64encode(password.encode()).decode(),
    )
    return tuple(s for s in (*plain, *encoded) if s)


def _is_address(address: str) -> bool:
    """A plain `local@domain` address (no display name, no line breaks)."""
    if not address.isprintable() or " " in address:
        return False
    try:
        parsed = Address(addr_spec=address)
    except (ValueError, IndexError):
        return False
    return bool(parsed.username and parsed.domain) and parsed.addr_spec == address
