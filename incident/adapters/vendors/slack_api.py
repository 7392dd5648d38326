"""Slack's Web API as `SlackChat` uses it: one call, what its answer means, and the bounded
retry around it; and the channel as we read it from an answer.

Faults: the client's own retry handlers are switched off (they sleep on the event loop's
clock, not ours, and retry 429 at the vendor's pace without a bound we choose). Each Web API
call is one attempt bounded by `timeout`; 429 (honouring Retry-After up to a cap), 5xx,
timeouts, refused or dropped connections, malformed answers and Slack's transient errors are
retried a bounded number of times with waits through the Clock, then raise
`VendorUnavailable`; a refusal (`ok: false` with a permanent error) raises `VendorRejected`.
Neither, nor any log line, carries the bot token.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from incident.adapters.vendors.retries import (
    Failure,
    RetryBudget,
    VendorRetry,
    retry_after_seconds,
)
from incident.clock import Clock

# The adapter's one logger, whichever of its modules logs.
log = logging.getLogger("incident.adapters.slack")

VENDOR = "slack"
VENDOR_NAME = "Slack"
API_URL = "https://slack.com/api/"
CLOCK_SKEW = 300.0  # seconds of disagreement between our clock and Slack's we allow for

# Slack errors that say "not now" rather than "no".
TRANSIENT_ERRORS = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"}
)
AUTH_ERRORS = frozenset(
    {
        "not_authed",
        "invalid_auth",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "no_permission",
        "missing_scope",
        "not_allowed_token_type",
    }
)

T = TypeVar("T")


def slack_client(
    *,
    token: str,
    base_url: str = API_URL,
    session: aiohttp.ClientSession | None = None,
    timeout: int = 30,
) -> AsyncWebClient:
    """An async Web API client for `SlackChat` (bot token `xoxb-...`).

    `session`: a long-lived aiohttp session its owner closes (without one, the client opens a
    session per call); `timeout`: the client's own bound per call (SlackChat bounds each
    attempt itself too). Its retry handlers are off: SlackChat retries.
    """
    return AsyncWebClient(
        token=token, base_url=base_url, session=session, timeout=timeout, retry_handlers=[]
    )


class CallFailed(Exception):
    """One attempt failed; handled by `SlackApi.retrying`."""

    def __init__(
        self,
        reason: str,
        *,
        retryable: bool,
        retry_after: str | None = None,
        ambiguous: bool = True,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after  # the raw header value, if Slack sent one
        # Slack may have acted on the request (a timeout, a dropped connection, a 5xx); False
        # when its answer says it did not (429, a refusal).
        self.ambiguous = ambiguous


@dataclass(frozen=True)
class Room:
    """A channel as an answer describes it."""

    id: str
    name: str
    creator: str
    created: float
    topic: str
    archived: bool


def parse_room(value: Any) -> Room:
    if not isinstance(value, dict):
        raise CallFailed("malformed response (no channel)", retryable=True)
    ident, name, topic = value.get("id"), value.get("name"), value.get("topic")
    if not isinstance(ident, str) or not isinstance(name, str):
        raise CallFailed("malformed response (channel without id or name)", retryable=True)
    created = value.get("created")
    return Room(
        id=ident,
        name=name,
        creator=str(value.get("creator") or ""),
        created=float(created) if isinstance(created, int | float) else 0.0,
        topic=str(topic.get("value") or "") if isinstance(topic, dict) else "",
        archived=value.get("is_archived") is True,
    )


def next_cursor(data: Mapping[str, Any]) -> str | None:
    """The cursor of a paged answer's next page; None on its last."""
    meta = data.get("response_metadata")
    cursor = meta.get("next_cursor") if isinstance(meta, dict) else None
    return cursor if isinstance(cursor, str) and cursor else None


class SlackApi:
    """Calls Slack's Web API through `client`, whose own retrying it switches off."""

    def __init__(
        self, *, client: AsyncWebClient, clock: Clock, retry: RetryBudget, timeout: float
    ) -> None:
        self.client = client
        client.retry_handlers = []
        self._clock = clock
        self._retrying = VendorRetry(
            vendor=VENDOR_NAME,
            budget=retry,
            clock=clock,
            failure_of=self._failure_of,
            log=log,
            retry_action="slack_retry",
            gave_up_action="slack_gave_up",
        )
        self._timeout = timeout
        self._secret = client.token or ""

    async def call(
        self,
        method: str,
        send: Callable[[], Awaitable[AsyncSlackResponse]],
        *,
        accept: Collection[str] = (),
    ) -> dict[str, Any]:
        """One attempt of one Web API call: its answer (`ok`, or an error in `accept`)."""
        try:
            async with asyncio.timeout(self._timeout):
                response = await send()
        except SlackApiError as error:
            return self._refused(method, error, accept)
        except TimeoutError:
            raise CallFailed(f"{method} timed out", retryable=True) from None
        except aiohttp.ClientConnectorError:
            raise CallFailed(f"{method}: could not connect", retryable=True) from None
        except (aiohttp.ClientError, OSError) as error:
            raise CallFailed(
                f"{method}: connection failed ({type(error).__name__})", retryable=True
            ) from None
        except (ValueError, AttributeError):
            # slack_sdk trips over some bodies that are not JSON (a text/plain page).
            raise CallFailed(f"{method}: malformed response", retryable=True) from None
        data = response.data
        if not isinstance(data, dict) or data.get("ok") is not True:
            raise CallFailed(f"{method}: malformed response", retryable=True)
        return data

    async def call_retrying(
        self,
        operation: str,
        method: str,
        send: Callable[[], Awaitable[AsyncSlackResponse]],
        *,
        accept: Collection[str] = (),
        incident_id: int | None,
    ) -> dict[str, Any]:
        """`call`, retried as `retrying` does: for a call that is safe to repeat as it is."""
        return await self.retrying(
            operation, partial(self.call, method, send, accept=accept), incident_id=incident_id
        )

    async def retrying(
        self, operation: str, attempt: Callable[[], Awaitable[T]], *, incident_id: int | None
    ) -> T:
        """Run `attempt` until it succeeds, retrying transient failures a bounded number of
        times with waits through the Clock."""
        return await self._retrying.run(operation, attempt, incident_id=incident_id)

    def _failure_of(self, error: Exception) -> Failure | None:
        """What a failed attempt means to the retry loop; Slack's Retry-After is waited for,
        and handed on to the scheduler when too long."""
        if not isinstance(error, CallFailed):
            return None
        asked = retry_after_seconds(error.retry_after, self._clock.now())
        return Failure(error.reason, retryable=error.retryable, retry_after=asked, wait=asked)

    def _refused(
        self, method: str, error: SlackApiError, accept: Collection[str]
    ) -> dict[str, Any]:
        response = error.response
        if not isinstance(response, AsyncSlackResponse):  # the body was not JSON
            raise CallFailed(f"{method}: malformed response", retryable=True)
        status = response.status_code
        data = response.data
        retry_after = response.headers.get("Retry-After") if response.headers else None
        if status == 429:
            raise CallFailed(
                f"{method}: rate limited (HTTP 429)",
                retryable=True,
                retry_after=retry_after,
                ambiguous=False,
            )
        if status >= 500:
            raise CallFailed(
                f"{method}: server error (HTTP {status})", retryable=True, retry_after=retry_after
            )
        if status != 200:
            raise CallFailed(f"{method}: refused (HTTP {status})", retryable=False, ambiguous=False)
        code = data.get("error") if isinstance(data, dict) else None
        if not isinstance(data, dict) or not isinstance(code, str):
            raise CallFailed(f"{method}: malformed response", retryable=True)
        if code in accept:
            return data
        # Slack's error is a short code; an endpoint that echoes the request there must not
        # carry our token into errors, logs or the timeline.
        code = self._redacted(code[:200])
        if code in TRANSIENT_ERRORS:
            raise CallFailed(
                f"{method}: {code}",
                retryable=True,
                retry_after=retry_after,
                ambiguous=code != "ratelimited",
            )
        hint = (
            " (check INCIDENT_SLACK_BOT_TOKEN and the app's scopes)" if code in AUTH_ERRORS else ""
        )
        raise CallFailed(
            f"{method} refused: {code}{hint}{self._detail(data)}", retryable=False, ambiguous=False
        )

    def _detail(self, data: Mapping[str, Any]) -> str:
        """Slack's own words about a refusal (`response_metadata.messages`), short and clean."""
        meta = data.get("response_metadata")
        messages = meta.get("messages") if isinstance(meta, dict) else None
        if not isinstance(messages, list) or not messages:
            return ""
        return f" ({self._redacted('; '.join(str(m) for m in messages)[:300])})"

    def _redacted(self, text: str) -> str:
        return text.replace(self._secret, "[redacted]") if self._secret else text
