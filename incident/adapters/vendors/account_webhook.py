"""The account system as a signed webhook (the AccountSystem port), through `httpx`.

What goes out: one POST of JSON to INCIDENT_ACCOUNT_WEBHOOK_URL,

    {"key": "<key>", "about": {"kind": "case", "id": 3, "label": "CASE-3"},
     "instruction": {...}}

with the headers

    Content-Type: application/json
    Idempotency-Key: <key>
    X-Incident-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>

The signature. `t` is when this attempt was signed (each retry signs anew, so a retry late
in the budget is not refused as stale); `<body>` is the exact bytes sent (UTF-8). A receiver
verifies it so:

1. read `t` and `v1` from the header (refuse the request when either is missing);
2. refuse it when `t` is more than 5 minutes from its own clock (the replay window; a
   replayed request older than that is refused even though its signature is good);
3. compute HMAC-SHA256 with the shared secret over `f"{t}.".encode() + raw_body` and compare
   it with `v1` in constant time (`hmac.compare_digest`); refuse on a mismatch;
4. carry out the instruction once per `Idempotency-Key`: a replay within the window, or our
   own retry of a send whose answer was lost, carries the same key, and must be answered
   with success without doing it again.

Delivery: at least once per call, recognisable by its key (the receiver de-duplicates). A
429 (its Retry-After), a 5xx, a timeout or a dropped connection is retried within the
shared `RetryBudget`, then `VendorUnavailable` hands it to the scheduler's durable retry,
which calls again with the same key. Any other answer but 2xx (a 4xx, a redirect, which is
not followed) is `VendorRejected`, naming the status. The secret is only ever the HMAC's
key: no error, log line or timeline entry carries it, nor the URL's query or credentials.

The outbox task: every instruction is also kept in the outbox (`record`, before the
webhook is tried) as the task people see with `incident outbox`: what was asked of the
account system, whether the webhook worked or not. A demanding operator wants both: the
webhook to act, the task to audit it and to act by hand if the webhook keeps failing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from urllib.parse import urlsplit

import httpx

from incident.adapters.vendors.retries import Failure, RetryBudget, VendorRetry, retry_after_seconds
from incident.clock import Clock
from incident.domain.records import INCIDENT
from incident.services.ports import AccountSystem, Topic

log = logging.getLogger("incident.adapters.vendors.account_webhook")

VENDOR_NAME = "account system"
SIGNATURE_HEADER = "X-Incident-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAY_WINDOW_SECONDS = 300  # what receivers are told to accept (see above)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The `X-Incident-Signature` value for `body` signed at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def shown_url(url: str) -> str:
    """The URL as logs, errors and `incident serve` show it: scheme, host, port and path
    (no credentials, no query: either may hold a token)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class _Answered(Exception):
    """One attempt's answer that is not a success; `failure` says what it means."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.reason)
        self.failure = failure


def _failure_of(error: Exception) -> Failure | None:
    if isinstance(error, _Answered):
        return error.failure
    if isinstance(error, httpx.TimeoutException):
        return Failure("timed out", retryable=True)
    if isinstance(error, httpx.TransportError):
        # The type only: an httpx error's text may hold the request (and its URL).
        return Failure(f"connection failed ({type(error).__name__})", retryable=True)
    return None


class AccountWebhook:
    """Implements AccountSystem: the instruction kept as an outbox task (`record`), then
    POSTed, signed, to the account system's webhook. The HTTP client is the caller's (its
    timeouts bound each attempt; whoever made it closes it)."""

    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        url: str,
        secret: str,
        clock: Clock,
        record: AccountSystem | None = None,
        retry: RetryBudget | None = None,
        allow_http: bool = False,
    ) -> None:
        if not url.startswith("https://") and not (allow_http and url.startswith("http://")):
            raise ValueError(
                f"the account webhook must be https:// (not {shown_url(url)}) unless plain "
                "http is allowed explicitly (INCIDENT_ACCOUNT_WEBHOOK_ALLOW_HTTP)"
            )
        if not secret:
            raise ValueError("the account webhook needs a signing secret")
        self._client = client
        self._url = url
        self._secret = secret
        self._clock = clock
        self._record = record
        self._retrying = VendorRetry(
            vendor=VENDOR_NAME,
            budget=retry or RetryBudget(),
            clock=clock,
            failure_of=_failure_of,
            log=log,
            retry_action="account_webhook_retry",
            gave_up_action="account_webhook_gave_up",
        )

    async def instruct(self, *, about: Topic, instruction: Mapping[str, object], key: str) -> None:
        """Keep the task, then deliver the instruction (see the module's docstring)."""
        if self._record is not None:
            await self._record.instruct(about=about, instruction=instruction, key=key)
        body = json.dumps(
            {
                "key": key,
                "about": {
                    "kind": about.subject.kind,
                    "id": about.subject.id,
                    "label": about.label,
                },
                "instruction": instruction,
            },
            sort_keys=True,
            separators=(",", ":"),
            default=str,
        ).encode()
        incident_id = about.subject.id if about.subject.kind == INCIDENT else None

        async def attempt() -> None:
            await self._post(body, key)

        await self._retrying.run(f"instruct about {about.label}", attempt, incident_id=incident_id)
        log.info(
            "account instruction delivered",
            extra={
                "action": "account_webhook_sent",
                "incident_id": incident_id,
                "subject": about.subject.key,
                "key": key,
                "url": shown_url(self._url),
            },
        )

    async def _post(self, body: bytes, key: str) -> None:
        timestamp = int(self._clock.now().timestamp())
        response = await self._client.post(
            self._url,
            content=body,
            headers={
                "Content-Type": "application/json",
                IDEMPOTENCY_HEADER: key,
                SIGNATURE_HEADER: sign(self._secret, timestamp, body),
            },
            follow_redirects=False,  # a redirect would re-send the signed instruction elsewhere
        )
        status = response.status_code
        if 200 <= status < 300:
            return
        if status == 429:
            asked = retry_after_seconds(response.headers.get("Retry-After"), self._clock.now())
            raise _Answered(
                Failure("HTTP 429 (rate limited)", retryable=True, retry_after=asked, wait=asked)
            )
        if status >= 500:
            raise _Answered(Failure(f"HTTP {status}", retryable=True))
        hint = " (a redirect: set the final URL)" if 300 <= status < 400 else ""
        raise _Answered(Failure(f"refused with HTTP {status}{hint}", retryable=False))
