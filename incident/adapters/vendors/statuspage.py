"""Statuspage: the StatusPage port on an Atlassian Statuspage page (management API v1, httpx).

One of our incidents is one Statuspage incident. Its Statuspage id is kept with `VendorRefs`
(vendor "statuspage", name "incident") so that a retried or re-run step updates it instead
of opening a second one; each update we post is remembered under a digest of its idempotency
key, so re-running a step that already posted does not post it twice.

A cancelled incident (a false alarm, declined, merged into another) is withdrawn as
configured (INCIDENT_CANCELLED_INCIDENTS): its Statuspage incident deleted (`withdraw`), or
resolved with impact `none` and a last word (`no_impact`). Its components go back to
operational unless another open Statuspage incident shows them; the withdrawal is remembered
(name "withdrawn"), and an incident already gone from Statuspage counts as withdrawn.

Every attempt starts by reading what Statuspage already shows, then writes only what is
missing. That makes retries safe even when a write's fate is unknown (a timeout, a dropped
connection, a garbled answer, a crash before we wrote the id down): the next attempt finds
the incident by the marker we put in its metadata, or sees that its newest update is already
ours, and does not write again.

Statuspage allows about one request per second per API key. Requests queue on a shared
`RequestSpacing` rather than fail; a 429 pushes the whole queue back by its Retry-After.
Faults (429, 5xx, timeouts, refused or dropped connections, malformed answers) are retried a
bounded number of times; then `VendorUnavailable` says so in words a person can act on, and
the scheduler's durable retry takes over. The API key never appears in errors or logs.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

import httpx

from incident.adapters.database.vendor_refs import VendorRefs
from incident.adapters.vendors.retries import retry_after_seconds
from incident.clock import Clock
from incident.domain.incident import Incident, Severity, Status
from incident.domain.status_page import Catalog
from incident.services.ports import VendorRejected, VendorUnavailable

log = logging.getLogger(__name__)

VENDOR = "statuspage"
VENDOR_NAME = "Statuspage"
DEFAULT_API_URL = "https://api.statuspage.io/v1"
# Our mark on the incidents we create (Statuspage wants every top-level metadata value to be
# an object). It lets a retry find an incident whose id we never got to write down.
METADATA_KEY = "incident_response"
NAME_LIMIT = 255  # characters, per the API reference
BODY_LIMIT = 25_000
LIST_LIMIT = 100  # the API's largest page size
WITHDRAWN_REF = "withdrawn"  # VendorRefs: the Statuspage incident we withdrew
# What withdrawing a cancelled incident does (INCIDENT_CANCELLED_INCIDENTS).
CANCELLED_MODES = ("withdraw", "no_impact")
# Component statuses an incident sets, which withdrawing it takes back (not maintenance).
_OUTAGES = frozenset({"degraded_performance", "partial_outage", "major_outage"})

_STATUS = {
    Status.INVESTIGATING: "investigating",
    Status.IDENTIFIED: "identified",
    Status.MONITORING: "monitoring",
    Status.RESOLVED: "resolved",
    Status.CLOSED: "resolved",
    Status.CANCELLED: "resolved",  # see `withdraw`, which is what a cancellation does
}
_OVER = (Status.RESOLVED, Status.CLOSED, Status.CANCELLED)
_IMPACT = {Severity.P1: "critical", Severity.P2: "major", Severity.P3: "minor", Severity.P4: "none"}
_OUTAGE = {
    Severity.P1: "major_outage",
    Severity.P2: "partial_outage",
    Severity.P3: "degraded_performance",
}


def statuspage_status(status: Status) -> str:
    """Our status as a Statuspage realtime incident status (closed and cancelled show as
    resolved)."""
    return _STATUS[status]


def impact_for(severity: Severity) -> str:
    """The impact Statuspage shows for an incident of this severity."""
    return _IMPACT[severity]


def component_status_for(severity: Severity, status: Status) -> str | None:
    """What the affected component shows, or None to leave it alone.

    P4 (cosmetic, questions) never marks a component down. Once a fix is in (monitoring)
    the component shows degraded rather than out; resolved, closed and cancelled show
    operational.
    """
    if status in _OVER:
        return "operational"
    if severity is Severity.P4:
        return None
    if status is Status.MONITORING:
        return "degraded_performance"
    return _OUTAGE[severity]


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
class _Update:
    id: str
    status: str
    body: str


@dataclass(frozen=True)
class _Remote:
    """What we need to know of a Statuspage incident (never handed outside this module)."""

    id: str
    status: str
    ours: str | None  # our incident id, from the metadata we set when creating it
    latest: _Update | None
    components: Mapping[str, str] = field(default_factory=dict)
    impact_override: str | None = None


@dataclass(frozen=True)
class _Wanted:
    """What the incident should show after this publish."""

    status: str
    body: str
    impact: str
    components: Mapping[str, str]

    def shown_by(self, remote: _Remote) -> bool:
        """Whether Statuspage already shows this update (posted by an earlier attempt)."""
        latest = remote.latest
        return (
            latest is not None
            and latest.status == self.status
            and latest.body.strip() == self.body.strip()
            and all(remote.components.get(c) == s for c, s in self.components.items())
        )

    def fields(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "status": self.status,
            "body": self.body,
            "impact_override": self.impact,
        }
        if self.components:
            values["components"] = dict(self.components)
            values["component_ids"] = sorted(self.components)
        return values


class _Retry(Exception):
    """One attempt failed in a way worth trying again; `reason` is safe to show."""

    def __init__(
        self, reason: str, *, backoff: bool = True, retry_after: float | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.backoff = backoff  # False: the rate limiter already holds the queue back
        self.retry_after = retry_after  # what a 429 asked for


class _Refused(Exception):
    """Statuspage refused the request (4xx other than 429); the text is safe to show."""


class _Malformed(ValueError):
    pass


class StatuspageStatusPage:
    """Implements the StatusPage port on one Statuspage page.

    `components` maps our component ids (from the page's catalog) and service names to
    Statuspage component ids: an incident that names components sets those; one that names
    none marks its service's component (see `component_status_for`). The incident's name
    there is its public title, never its internal one. The HTTP client is
    the caller's (its timeouts apply to every request); `spacing` should be shared by every
    user of the same API key. `cancelled_incidents`: what `withdraw` does, `withdraw` (delete
    the Statuspage incident) or `no_impact` (resolve it as having had no impact).
    """

    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        refs: VendorRefs,
        clock: Clock,
        page_id: str,
        api_key: str,
        base_url: str = DEFAULT_API_URL,
        components: Mapping[str, str] | None = None,
        catalog: Catalog | None = None,
        spacing: RequestSpacing | None = None,
        cancelled_incidents: Literal["withdraw", "no_impact"] = "withdraw",
        attempts: int = 4,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        max_retry_after: float = 60.0,
    ) -> None:
        if not page_id.strip():
            raise ValueError("Statuspage page id is empty")
        if not api_key.strip():
            raise ValueError("Statuspage API key is empty")
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, not {attempts}")
        if cancelled_incidents not in CANCELLED_MODES:
            raise ValueError(
                f"cancelled_incidents must be withdraw or no_impact, not {cancelled_incidents!r}"
            )
        self._client = client
        self._refs = refs
        self._clock = clock
        self._page_id = page_id
        self._api_key = api_key
        self._page_url = f"{base_url.rstrip('/')}/pages/{quote(page_id, safe='')}"
        self._headers = {"Authorization": f"OAuth {api_key}", "Accept": "application/json"}
        self._components = dict(components or {})
        self._catalog = catalog or Catalog()
        self._spacing = spacing or RequestSpacing(clock)
        self._cancelled_incidents = cancelled_incidents
        self._attempts = attempts
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._max_retry_after = max_retry_after
        self._locks: dict[int, tuple[asyncio.Lock, int]] = {}

    def __repr__(self) -> str:
        return f"StatuspageStatusPage(page_id={self._page_id!r})"

    # --- the port --------------------------------------------------------------------------

    async def publish(self, *, incident: Incident, status: Status, body: str, key: str) -> None:
        """Show the incident on Statuspage with this status and text.

        The first publish opens the Statuspage incident; later ones post an update to it;
        a resolved or closed status resolves it and sets its components operational.
        Publishing twice with one `key` posts once.
        """
        if incident.id is None:
            raise ValueError("publish needs a stored incident (it has no id yet)")
        wanted = _Wanted(
            status=statuspage_status(status),
            body=body[:BODY_LIMIT],
            impact=impact_for(incident.severity),
            components=self._remote_components(incident, status),
        )
        update_ref = "update:" + hashlib.sha256(key.encode()).hexdigest()[:40]
        async with self._exclusive(incident.id):
            await self._retrying(
                "publishing", incident, lambda: self._publish_once(incident, wanted, update_ref)
            )

    async def withdraw(self, *, incident: Incident, body: str, key: str) -> None:
        """Take the cancelled incident off Statuspage, as configured.

        `withdraw`: the Statuspage incident is deleted (its components set back to
        operational first: deleting an incident leaves them as they are). `no_impact`: it is
        resolved with `body` as its last update, impact `none`, components operational. A
        component another unresolved Statuspage incident shows (the one this incident was
        merged into, say) is left to that one.

        Nothing is sent when the incident was never published (no Statuspage id stored), nor
        once it was withdrawn (remembered); a Statuspage incident already gone, deleted by an
        earlier attempt whose answer was lost or by hand, counts as withdrawn.
        """
        if incident.id is None:
            raise ValueError("withdraw needs a stored incident (it has no id yet)")
        async with self._exclusive(incident.id):
            if await self._refs.find(incident.id, VENDOR, WITHDRAWN_REF) is not None:
                return
            remote_id = await self._refs.find(incident.id, VENDOR, "incident")
            if remote_id is None:
                log.info(
                    "nothing to withdraw from statuspage: never published",
                    extra={"action": "statuspage_withdraw_skipped", "incident_id": incident.id},
                )
                return
            await self._retrying(
                "withdrawing",
                incident,
                lambda: self._withdraw_once(incident, remote_id, body[:BODY_LIMIT]),
            )

    async def _retrying(
        self, doing: str, incident: Incident, attempt: Callable[[], Awaitable[None]]
    ) -> None:
        """Run `attempt` (which reads before it writes) until it succeeds, a bounded number
        of times; then VendorUnavailable. A refusal is not retried: VendorRejected."""
        last = _Retry("no attempt made")
        for number in range(1, self._attempts + 1):
            try:
                await attempt()
                return
            except _Refused as refusal:
                raise VendorRejected(
                    VENDOR_NAME, f"{doing} {incident.ref} refused: {refusal}"
                ) from None
            except _Retry as problem:
                last = problem
                log.warning(
                    "statuspage request failed",
                    extra={
                        "action": "statuspage_retry",
                        "incident_id": incident.id,
                        "attempt": number,
                        "reason": problem.reason,
                    },
                )
                if number < self._attempts and problem.backoff:
                    await self._clock.sleep(self._delay(number))
        attempts = f"{self._attempts} attempt{'s' if self._attempts != 1 else ''}"
        raise VendorUnavailable(
            VENDOR_NAME,
            f"{doing} {incident.ref} failed after {attempts}: {last.reason}; "
            "the step will be retried later",
            retry_after=last.retry_after,
        )

    # --- one attempt: read what Statuspage shows, write what is missing --------------------

    async def _publish_once(self, incident: Incident, wanted: _Wanted, update_ref: str) -> None:
        assert incident.id is not None
        if await self._refs.find(incident.id, VENDOR, update_ref) is not None:
            return  # this very update was posted and written down before
        if await self._refs.find(incident.id, VENDOR, WITHDRAWN_REF) is not None:
            # Cancelled and withdrawn: a step that was already running must not bring it back.
            log.warning(
                "statuspage incident withdrawn; not publishing",
                extra={"action": "statuspage_publish_withdrawn", "incident_id": incident.id},
            )
            return
        remote_id = await self._refs.find(incident.id, VENDOR, "incident")
        if remote_id is None:
            found = await self._find_ours(incident, resolved=wanted.status == "resolved")
            if found is None:
                created = await self._create(incident, wanted)
                stored = await self._refs.remember(incident.id, VENDOR, "incident", created.id)
                log.info(
                    "statuspage incident created",
                    extra={
                        "action": "statuspage_incident_created",
                        "incident_id": incident.id,
                        "statuspage_incident": created.id,
                    },
                )
                if stored != created.id:  # another process created one meanwhile
                    log.warning(
                        "statuspage incident created twice",
                        extra={
                            "action": "statuspage_duplicate",
                            "incident_id": incident.id,
                            "statuspage_incident": created.id,
                            "kept": stored,
                        },
                    )
                await self._remember_update(incident.id, update_ref, created)
                return
            remote_id = await self._refs.remember(incident.id, VENDOR, "incident", found.id)
            remote = found if found.id == remote_id else await self._get(remote_id)
        else:
            remote = await self._get(remote_id)
        if wanted.shown_by(remote):
            await self._remember_update(incident.id, update_ref, remote)
            return
        updated = await self._update(remote.id, wanted)
        log.info(
            "statuspage incident updated",
            extra={
                "action": "statuspage_incident_updated",
                "incident_id": incident.id,
                "statuspage_incident": updated.id,
                "status": wanted.status,
            },
        )
        await self._remember_update(incident.id, update_ref, updated)

    async def _withdraw_once(self, incident: Incident, remote_id: str, body: str) -> None:
        assert incident.id is not None
        path = f"/incidents/{quote(remote_id, safe='')}"
        found = await self._call("GET", path, missing_ok=True)
        if found is None:
            log.warning(
                "statuspage incident already gone",
                extra={
                    "action": "statuspage_incident_gone",
                    "incident_id": incident.id,
                    "statuspage_incident": remote_id,
                },
            )
        else:
            remote = self._parse(found)
            operational = await self._components_to_restore(remote)
            if self._cancelled_incidents == "withdraw":
                if operational:
                    payload = {
                        "incident": {
                            "components": operational,
                            "component_ids": sorted(operational),
                        }
                    }
                    await self._call("PATCH", path, json=payload)
                await self._call("DELETE", path, missing_ok=True)
            else:
                wanted = _Wanted(
                    status="resolved", body=body, impact="none", components=operational
                )
                if not (wanted.shown_by(remote) and remote.impact_override == "none"):
                    await self._update(remote.id, wanted)
            log.info(
                "statuspage incident withdrawn",
                extra={
                    "action": "statuspage_incident_withdrawn",
                    "incident_id": incident.id,
                    "statuspage_incident": remote_id,
                    "mode": self._cancelled_incidents,
                },
            )
        await self._refs.remember(incident.id, VENDOR, WITHDRAWN_REF, remote_id)

    async def _components_to_restore(self, remote: _Remote) -> dict[str, str]:
        """The components this Statuspage incident shows in an outage that no other
        unresolved incident shows, each to be set operational."""
        down = [c for c, status in remote.components.items() if status in _OUTAGES]
        if not down:
            return {}
        data = await self._call(
            "GET", "/incidents/unresolved", params={"per_page": LIST_LIMIT, "page": 1}
        )
        if not isinstance(data, list):
            raise _Retry("malformed response (expected a list of incidents)")
        shown_elsewhere = {
            component
            for other in map(self._parse, data)
            if other.id != remote.id
            for component in other.components
        }
        return {c: "operational" for c in down if c not in shown_elsewhere}

    async def _remember_update(self, incident_id: int, update_ref: str, remote: _Remote) -> None:
        posted = remote.latest.id if remote.latest is not None else remote.id
        await self._refs.remember(incident_id, VENDOR, update_ref, posted)

    async def _find_ours(self, incident: Incident, *, resolved: bool) -> _Remote | None:
        """The incident an earlier attempt created for ours, if any (the oldest, if several).

        Unresolved incidents are where it is, unless that attempt created it resolved: then
        it is among the most recent incidents.
        """
        if resolved:
            data = await self._call("GET", "/incidents", params={"limit": LIST_LIMIT, "page": 1})
        else:
            data = await self._call(
                "GET", "/incidents/unresolved", params={"per_page": LIST_LIMIT, "page": 1}
            )
        if not isinstance(data, list):
            raise _Retry("malformed response (expected a list of incidents)")
        mine = str(incident.id)
        found = [remote for remote in map(self._parse, data) if remote.ours == mine]
        return found[-1] if found else None  # Statuspage lists newest first

    def _remote_components(self, incident: Incident, status: Status) -> dict[str, str]:
        """The Statuspage components to set: those the incident names (by our component
        id), else the one mapped to its service, with the status its severity implies."""
        if incident.components:
            over = status in _OVER
            return {
                remote: "operational" if over else shown.value
                for ours, shown in incident.components.items()
                if (remote := self._components.get(ours))
            }
        component = self._components.get(incident.service)
        component_status = component_status_for(incident.severity, status)
        return {component: component_status} if component and component_status else {}

    async def _create(self, incident: Incident, wanted: _Wanted) -> _Remote:
        # Customers read this name: never the internal title (hosts, alerts, customers).
        name = incident.public_name(self._catalog)
        payload = {
            "incident": {
                "name": name[:NAME_LIMIT],
                **wanted.fields(),
                "metadata": {METADATA_KEY: {"incident_id": str(incident.id), "ref": incident.ref}},
            }
        }
        return self._parse(await self._call("POST", "/incidents", json=payload))

    async def _update(self, remote_id: str, wanted: _Wanted) -> _Remote:
        path = f"/incidents/{quote(remote_id, safe='')}"
        return self._parse(await self._call("PATCH", path, json={"incident": wanted.fields()}))

    async def _get(self, remote_id: str) -> _Remote:
        return self._parse(await self._call("GET", f"/incidents/{quote(remote_id, safe='')}"))

    def _parse(self, data: object) -> _Remote:
        try:
            return _parse_incident(data)
        except _Malformed as problem:
            raise _Retry(f"malformed response ({problem})") from None

    # --- one request -----------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, int] | None = None,
        missing_ok: bool = False,
    ) -> Any:
        """Send one request when the rate limit allows; its JSON answer, or `_Retry`.
        `missing_ok`: a 404 answers None (the incident is not there, or no longer)."""
        await self._spacing.wait()
        try:
            response = await self._client.request(
                method, self._page_url + path, json=json, params=params, headers=self._headers
            )
        except httpx.TimeoutException:
            raise _Retry(f"{method} {path} timed out") from None
        except httpx.ConnectError:
            raise _Retry(f"could not connect for {method} {path}") from None
        except httpx.TransportError as error:
            raise _Retry(
                f"connection failed during {method} {path} ({type(error).__name__})"
            ) from None
        status = response.status_code
        if status == 429:
            wait = self._retry_after(response.headers.get("Retry-After"))
            if wait > self._max_retry_after:
                self._spacing.hold(self._max_retry_after)
                raise _Retry(
                    f"rate limited (HTTP 429) for {wait:.0f}s, longer than we wait",
                    retry_after=wait,
                )
            self._spacing.hold(wait)
            raise _Retry(
                f"rate limited (HTTP 429, retry after {wait:g}s)", backoff=False, retry_after=wait
            )
        if status >= 500:
            raise _Retry(f"HTTP {status} for {method} {path}")
        if status == 404 and missing_ok:
            return None
        if status >= 400:
            detail = self._error_detail(response)
            raise _Refused(f"HTTP {status} for {method} {path}: {detail}; {_hint(status)}")
        try:
            return response.json()
        except ValueError:
            raise _Retry(f"malformed response to {method} {path} (not JSON)") from None

    def _retry_after(self, header: str | None) -> float:
        """Seconds to wait from a Retry-After header (seconds or an HTTP date)."""
        seconds = retry_after_seconds(header or None, self._clock.now())
        return seconds if seconds is not None and math.isfinite(seconds) else self._backoff

    def _delay(self, attempt: int) -> float:
        return float(min(self._max_backoff, self._backoff * 2 ** (attempt - 1)))

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

    @asynccontextmanager
    async def _exclusive(self, incident_id: int) -> AsyncIterator[None]:
        """One publish or withdrawal at a time per incident in this process, so two steps
        firing together cannot both create the Statuspage incident, nor a withdrawal miss
        one being created."""
        lock, users = self._locks.get(incident_id, (asyncio.Lock(), 0))
        self._locks[incident_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[incident_id]
            if users <= 1:
                del self._locks[incident_id]
            else:
                self._locks[incident_id] = (lock, users - 1)


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


def _parse_incident(data: object) -> _Remote:
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
    latest: _Update | None = None
    if updates:  # newest first
        first = updates[0]
        if not isinstance(first, dict):
            raise _Malformed("an incident update is not an object")
        latest = _Update(
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
    return _Remote(
        id=_text(data, "id"),
        status=_text(data, "status"),
        ours=str(ours) if ours is not None else None,
        latest=latest,
        components=shown,
        impact_override=override if isinstance(override, str) else None,
    )
