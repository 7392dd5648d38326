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

Statuspage allows about one request per second per API key, and faults are retried a
bounded number of times before `VendorUnavailable`: the requests, their spacing and the retry
are `statuspage_api.StatuspageApi`'s. The API key never appears in errors or logs.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from incident.adapters.database.vendor_refs import VendorRefs
from incident.adapters.vendors.retries import RetryBudget
from incident.adapters.vendors.statuspage_api import (
    DEFAULT_API_URL,
    METADATA_KEY,
    VENDOR_NAME,
    RemoteIncident,
    RequestSpacing,
    StatuspageApi,
    log,
)
from incident.clock import Clock
from incident.domain.incident import Incident, Severity, Status
from incident.domain.status_page import Catalog

# The adapter's public names; those defined in statuspage_api are imported from here too.
__all__ = [
    "CANCELLED_MODES",
    "DEFAULT_API_URL",
    "METADATA_KEY",
    "VENDOR",
    "VENDOR_NAME",
    "RequestSpacing",
    "StatuspageStatusPage",
    "component_status_for",
    "impact_for",
    "statuspage_status",
]

VENDOR = "statuspage"
BODY_LIMIT = 25_000
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


@dataclass(frozen=True)
class _Wanted:
    """What the incident should show after this publish."""

    status: str
    body: str
    impact: str
    components: Mapping[str, str]

    def shown_by(self, remote: RemoteIncident) -> bool:
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
        self._api = StatuspageApi(
            client=client,
            clock=clock,
            page_id=page_id,
            api_key=api_key,
            base_url=base_url,
            spacing=spacing or RequestSpacing(clock),
            retry=RetryBudget(
                attempts=attempts,
                backoff=backoff,
                backoff_cap=max_backoff,
                retry_after_cap=max_retry_after,
                jitter=False,
            ),
        )
        self._refs = refs
        self._page_id = page_id
        self._components = dict(components or {})
        self._catalog = catalog or Catalog()
        self._cancelled_incidents = cancelled_incidents
        self._lock = _PerIncidentLock()

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
        async with self._lock.held(incident.id):
            await self._api.retrying(
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
        async with self._lock.held(incident.id):
            if await self._refs.find(incident.id, VENDOR, WITHDRAWN_REF) is not None:
                return
            remote_id = await self._refs.find(incident.id, VENDOR, "incident")
            if remote_id is None:
                log.info(
                    "nothing to withdraw from statuspage: never published",
                    extra={"action": "statuspage_withdraw_skipped", "incident_id": incident.id},
                )
                return
            await self._api.retrying(
                "withdrawing",
                incident,
                lambda: self._withdraw_once(incident, remote_id, body[:BODY_LIMIT]),
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
                # Customers read this name: never the internal title (hosts, alerts, customers).
                name = incident.public_name(self._catalog)
                created = await self._api.create(incident, name=name, fields=wanted.fields())
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
            remote = found if found.id == remote_id else await self._api.get(remote_id)
        else:
            remote = await self._api.get(remote_id)
        if wanted.shown_by(remote):
            await self._remember_update(incident.id, update_ref, remote)
            return
        updated = await self._api.update(remote.id, wanted.fields())
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
        remote = await self._api.get_if_there(remote_id)
        if remote is None:
            log.warning(
                "statuspage incident already gone",
                extra={
                    "action": "statuspage_incident_gone",
                    "incident_id": incident.id,
                    "statuspage_incident": remote_id,
                },
            )
        else:
            operational = await self._components_to_restore(remote)
            if self._cancelled_incidents == "withdraw":
                if operational:
                    await self._api.set_components(remote_id, operational)
                await self._api.delete(remote_id)
            else:
                wanted = _Wanted(
                    status="resolved", body=body, impact="none", components=operational
                )
                if not (wanted.shown_by(remote) and remote.impact_override == "none"):
                    await self._api.update(remote.id, wanted.fields())
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

    async def _components_to_restore(self, remote: RemoteIncident) -> dict[str, str]:
        """The components this Statuspage incident shows in an outage that no other
        unresolved incident shows, each to be set operational."""
        down = [c for c, status in remote.components.items() if status in _OUTAGES]
        if not down:
            return {}
        shown_elsewhere = {
            component
            for other in await self._api.unresolved()
            if other.id != remote.id
            for component in other.components
        }
        return {c: "operational" for c in down if c not in shown_elsewhere}

    async def _remember_update(
        self, incident_id: int, update_ref: str, remote: RemoteIncident
    ) -> None:
        posted = remote.latest.id if remote.latest is not None else remote.id
        await self._refs.remember(incident_id, VENDOR, update_ref, posted)

    async def _find_ours(self, incident: Incident, *, resolved: bool) -> RemoteIncident | None:
        """The incident an earlier attempt created for ours, if any (the oldest, if several).

        Unresolved incidents are where it is, unless that attempt created it resolved: then
        it is among the most recent incidents.
        """
        listed = await (self._api.recent() if resolved else self._api.unresolved())
        mine = str(incident.id)
        found = [remote for remote in listed if remote.ours == mine]
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


class _PerIncidentLock:
    """One publish or withdrawal at a time per incident in this process, so two steps
    firing together cannot both create the Statuspage incident, nor a withdrawal miss one
    being created."""

    def __init__(self) -> None:
        self._locks: dict[int, tuple[asyncio.Lock, int]] = {}  # with how many hold or wait

    @asynccontextmanager
    async def held(self, incident_id: int) -> AsyncIterator[None]:
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
