"""Statuspage's management API v1 as `StatuspageStatusPage` uses it: one page's incidents,
one request at a time, each answer read into what we need of it, and the bounded retry.

Statuspage allows about one request per second per API key. Requests queue on a shared
`RequestSpacing` rather than fail; a 429 pushes the whole queue back by its Retry-After.
Faults (429, 5xx, timeouts, refused or dropped connections, malformed answers) raise
`TryAgain` and are retried a bounded number of times (`StatuspageApi.retrying`); then
`VendorUnavailable` says so in words a person can act on, and the scheduler's durable retry
takes over. A refusal (4xx other than 429) raises `Refused`, then `VendorRejected`. The API
key never appears in errors or logs.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from incident.adapters.vendors.retries import (
    Failure,
    RetryBudget,
    VendorRetry,
    Wording,
    retry_after_seconds,
)
from incident.clock import Clock
from incident.domain.incident import Incident

# The adapter's one logger, whichever of its modules logs.
log = logging.getLogger("incident.adapters.vendors.statuspage")

VENDOR_NAME = "Statuspage"
DEFAULT_API_URL = "https://api.statuspage.io/v1"
# Our mark on the incidents we create (Statuspage wants every top-level metadata value to be
# an object). It lets a retry find an incident whose id we never got to write down.
METADATA_KEY = "incident_response"
NAME_LIMIT = 255  # characters, per the API reference
LIST_LIMIT = 100  # the API's largest page size


class RequestSpacing:
    """Queues requests that share one API key so they start at least `interval` seconds
    apart, in arrival order. Make one per API key and hand it to every adapter using that
    key: the vendor counts requests per key, not per adapter.

    `hold(seconds)` pushes every queued request back, for a 429's Retry-After.
    Time is read and slept through the `Clock`, so tests can run it in virtual time.
    """

    def __init__(self, clock: Clock, *, interval: float = 1.0) -> None:
        if interval < 0:
            raise ValueError(f"interval must be zero or more seconds, not {interval}")
        self._clock = clock
        self._interval = interval
        self._next = -math.inf
        self._lock = asyncio.Lock()

    @property
    def interval(self) -> float:
        return self._interval

    async def wait(self) -> None:
        """Return when it is this caller's turn to send one request."""
        async with self._lock:
            # A loop, not one sleep: `hold` may move the next slot while we sleep.
            while (delay := self._next - self._clock.monotonic()) > 0:
                # At least a microsecond: a virtual clock rounds to it, and must move on.
                await self._clock.sleep(max(delay, 1e-6))
            self._next = self._clock.monotonic() + self._interval

    def hold(self, seconds: float) -> None:
        """No request may start for `seconds` from now."""
        self._next = max(self._next, self._clock.monotonic() + max(seconds, 0.0))


@dataclass(frozen=True)
class RemoteUpdate:
    id: str
    status: str
    body: str


@dataclass(frozen=True)
class RemoteIncident:
    """What we need to know of a Statuspage incident (never handed outside the adapter)."""

    id: str
    status: str
    ours: str | None  # our incident id, from the metadata we set when creating it
    latest: RemoteUpdate | None
    components: Mapping[str, str] = field(default_factory=dict)
    impact_override: str | None = None


class TryAgain(Exception):
    """One attempt failed in a way worth trying again; `reason` is safe to show."""

    def __init__(
        self, reason: str, *, backoff: bool = True, retry_after: float | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.backoff = backoff  # False: the rate limiter already holds the queue back
        self.retry_after = retry_after  # what a 429 asked for


class Refused(Exception):
    """Statuspage refused the request (4xx other than 429); the text is safe to show."""


class _Malformed(ValueError):
    pass


def _failure_of(error: Exception) -> Failure | None:
    """What a failed attempt means to the retry loop."""
    if isinstance(error, Refused):
        return Failure(str(error), retryable=False)
    if not isinstance(error, TryAgain):
        return None
    # A 429 has already held the shared queue back (`RequestSpacing.hold`) for its
    # Retry-After, up to the budget's cap: the loop waits nothing more (0), or, for one
    # asking longer than the cap, backs off and tries again (None).
    wait = None if error.backoff else 0.0
    return Failure(error.reason, retryable=True, retry_after=error.retry_after, wait=wait)


class _StatuspageWording(Wording):
    """Statuspage's errors name the incident (the operation is "publishing INC-12") and
    say that the step will come back."""

    def refused(self, operation: str, failure: Failure) -> str:
        return f"{operation} refused: {failure.reason}"

    def gave_up(
        self, vendor: str, operation: str, tries: int, failure: Failure, *, at_once: bool
    ) -> str:
        attempts = f"{tries} attempt{'s' if tries != 1 else ''}"
        return (
            f"{operation} failed after {attempts}: {failure.reason}; the step will be retried later"
        )


class StatuspageApi:
    """One Statuspage page's incidents: each method but `retrying` is one request.

    The HTTP client is the caller's (its timeouts apply to every request); `spacing` should
    be shared by every user of the same API key.
    """

    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        clock: Clock,
        page_id: str,
        api_key: str,
        base_url: str,
        spacing: RequestSpacing,
        retry: RetryBudget,
    ) -> None:
        """`retry`: its `retry_after_cap` is also the longest a 429 holds the queue back."""
        self._client = client
        self._clock = clock
        self._api_key = api_key
        self._page_url = f"{base_url.rstrip('/')}/pages/{quote(page_id, safe='')}"
        self._headers = {"Authorization": f"OAuth {api_key}", "Accept": "application/json"}
        self._spacing = spacing
        self._retry = retry
        self._retrying = VendorRetry(
            vendor=VENDOR_NAME,
            budget=retry,
            clock=clock,
            failure_of=_failure_of,
            log=log,
            retry_action="statuspage_retry",
            # Statuspage has always logged its last failed attempt as a retry too; the
            # name stays, for whatever counts these lines.
            gave_up_action="statuspage_retry",
            wording=_StatuspageWording(),
        )

    # --- incidents -------------------------------------------------------------------------

    async def get(self, remote_id: str) -> RemoteIncident:
        return self._parse(await self.call("GET", _incident_path(remote_id)))

    async def get_if_there(self, remote_id: str) -> RemoteIncident | None:
        """The incident, or None when Statuspage no longer has it (404)."""
        found = await self.call("GET", _incident_path(remote_id), missing_ok=True)
        return None if found is None else self._parse(found)

    async def unresolved(self) -> list[RemoteIncident]:
        return self._parse_list(
            await self.call(
                "GET", "/incidents/unresolved", params={"per_page": LIST_LIMIT, "page": 1}
            )
        )

    async def recent(self) -> list[RemoteIncident]:
        """The most recent incidents, resolved ones included, newest first."""
        return self._parse_list(
            await self.call("GET", "/incidents", params={"limit": LIST_LIMIT, "page": 1})
        )

    async def create(
        self, incident: Incident, *, name: str, fields: Mapping[str, Any]
    ) -> RemoteIncident:
        """A new Statuspage incident called `name`, marked as `incident`'s in its metadata."""
        payload = {
            "incident": {
                "name": name[:NAME_LIMIT],
                **fields,
                "metadata": {METADATA_KEY: {"incident_id": str(incident.id), "ref": incident.ref}},
            }
        }
        return self._parse(await self.call("POST", "/incidents", json=payload))

    async def update(self, remote_id: str, fields: Mapping[str, Any]) -> RemoteIncident:
        path = _incident_path(remote_id)
        return self._parse(await self.call("PATCH", path, json={"incident": dict(fields)}))

    async def set_components(self, remote_id: str, statuses: Mapping[str, str]) -> None:
        payload = {"incident": {"components": statuses, "component_ids": sorted(statuses)}}
        await self.call("PATCH", _incident_path(remote_id), json=payload)

    async def delete(self, remote_id: str) -> None:
        """Delete the incident; one already gone counts as deleted."""
        await self.call("DELETE", _incident_path(remote_id), missing_ok=True)

    def _parse(self, data: object) -> RemoteIncident:
        try:
            return _parse_incident(data)
        except _Malformed as problem:
            raise TryAgain(f"malformed response ({problem})") from None

    def _parse_list(self, data: object) -> list[RemoteIncident]:
        if not isinstance(data, list):
            raise TryAgain("malformed response (expected a list of incidents)")
        return [self._parse(entry) for entry in data]

    # --- the bounded retry -----------------------------------------------------------------

    async def retrying(
        self, doing: str, incident: Incident, attempt: Callable[[], Awaitable[None]]
    ) -> None:
        """Run `attempt` (which reads before it writes) until it succeeds, a bounded number
        of times; then VendorUnavailable. A refusal is not retried: VendorRejected."""
        await self._retrying.run(f"{doing} {incident.ref}", attempt, incident_id=incident.id)

    # --- one request -----------------------------------------------------------------------

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, int] | None = None,
        missing_ok: bool = False,
    ) -> Any:
        """Send one request when the rate limit allows; its JSON answer, or `TryAgain`.
        `missing_ok`: a 404 answers None (the incident is not there, or no longer)."""
        await self._spacing.wait()
        try:
            response = await self._client.request(
                method, self._page_url + path, json=json, params=params, headers=self._headers
            )
        except httpx.TimeoutException:
            raise TryAgain(f"{method} {path} timed out") from None
        except httpx.ConnectError:
            raise TryAgain(f"could not connect for {method} {path}") from None
        except httpx.TransportError as error:
            raise TryAgain(
                f"connection failed during {method} {path} ({type(error).__name__})"
            ) from None
        status = response.status_code
        if status == 429:
            wait = self._retry_after(response.headers.get("Retry-After"))
            if wait > self._retry.retry_after_cap:
                self._spacing.hold(self._retry.retry_after_cap)
                raise TryAgain(
                    f"rate limited (HTTP 429) for {wait:.0f}s, longer than we wait",
                    retry_after=wait,
                )
            self._spacing.hold(wait)
            raise TryAgain(
                f"rate limited (HTTP 429, retry after {wait:g}s)", backoff=False, retry_after=wait
            )
        if status >= 500:
            raise TryAgain(f"HTTP {status} for {method} {path}")
        if status == 404 and missing_ok:
            return None
        if status >= 400:
            detail = self._error_detail(response)
            raise Refused(f"HTTP {status} for {method} {path}: {detail}; {_hint(status)}")
        try:
            return response.json()
        except ValueError:
            raise TryAgain(f"malformed response to {method} {path} (not JSON)") from None

    def _retry_after(self, header: str | None) -> float:
        """Seconds to wait from a Retry-After header (seconds or an HTTP date)."""
        seconds = retry_after_seconds(header or None, self._clock.now())
        return seconds if seconds is not None and math.isfinite(seconds) else self._retry.backoff

    def _error_detail(self, response: httpx.Response) -> str:
        try:
            data = response.json()
        except ValueError:
            data = None
        detail = ""
        if isinstance(data, dict):
            value = data.get("message") or data.get("error") or ""
            detail = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        detail = (detail or response.reason_phrase or "no detail").replace(self._api_key, "***")
        return detail[:300]


def _incident_path(remote_id: str) -> str:
    return f"/incidents/{quote(remote_id, safe='')}"


def _hint(status: int) -> str:
    if status in (401, 403):
        return "check the Statuspage API key (INCIDENT_STATUSPAGE_API_KEY)"
    if status == 404:
        return (
            "check the Statuspage page id (INCIDENT_STATUSPAGE_PAGE_ID), and that the "
            "Statuspage incident was not deleted by hand"
        )
    return "check the Statuspage component ids configured for our services"


def _text(data: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    value = data.get(name)
    if isinstance(value, str) and (value or not required):
        return value
    if value is None and not required:
        return ""
    raise _Malformed(f"incident field {name!r} is {type(value).__name__}, not text")


def _parse_incident(data: object) -> RemoteIncident:
    """Read the fields we use from a Statuspage Incident; `_Malformed` if they are not there."""
    if not isinstance(data, dict):
        raise _Malformed(f"expected an incident object, got {type(data).__name__}")
    updates = data.get("incident_updates") or []
    components = data.get("components") or []
    metadata = data.get("metadata") or {}
    if not isinstance(updates, list) or not isinstance(components, list):
        raise _Malformed("incident_updates and components must be lists")
    if not isinstance(metadata, dict):
        raise _Malformed("metadata must be an object")
    latest: RemoteUpdate | None = None
    if updates:  # newest first
        first = updates[0]
        if not isinstance(first, dict):
            raise _Malformed("an incident update is not an object")
        latest = RemoteUpdate(
            id=_text(first, "id"),
            status=_text(first, "status"),
            body=_text(first, "body", required=False),
        )
    shown: dict[str, str] = {}
    for component in components:
        if not isinstance(component, dict):
            raise _Malformed("a component is not an object")
        shown[_text(component, "id")] = _text(component, "status", required=False)
    mark = metadata.get(METADATA_KEY)
    ours = mark.get("incident_id") if isinstance(mark, dict) else None
    override = data.get("impact_override")
    return RemoteIncident(
        id=_text(data, "id"),
        status=_text(data, "status"),
        ours=str(ours) if ours is not None else None,
        latest=latest,
        components=shown,
        impact_override=override if isinstance(override, str) else None,
    )
