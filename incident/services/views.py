"""Read-only views the API serves beside the use cases: an incident's timeline, filtered,
and the messages the outbox kept. Nothing here changes anything."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from incident.domain.incident import Incident, Severity
from incident.domain.records import TimelineEntry
from incident.services.incidents import Runtime, UpcomingStep, upcoming_steps
from incident.services.ports import KeptMessage, OutboxReader, Transaction


async def incident_timeline(
    rt: Runtime, incident_id: int, *, kinds: Collection[str] = (), public_only: bool = False
) -> list[TimelineEntry]:
    """The incident's timeline in time order: only entries of `kinds` when given, only the
    customer-facing ones with `public_only`. NotFound when there is no such incident."""

    def read(tx: Transaction) -> list[TimelineEntry]:
        tx.get_incident(incident_id)  # NotFound, rather than an empty timeline
        return tx.timeline(incident_id)

    entries = await rt.store.read(read)
    return [
        entry
        for entry in entries
        if (not kinds or entry.kind in kinds) and (entry.public or not public_only)
    ]


async def outbox_messages(
    rt: Runtime, outbox: OutboxReader, *, incident_id: int | None = None, limit: int
) -> tuple[list[KeptMessage], bool]:
    """The newest `limit` messages the outbox kept (one incident's, with `incident_id`),
    oldest first, and whether older ones were left out."""
    if incident_id is not None:
        await rt.store.read(lambda tx: tx.get_incident(incident_id))
    found = list(await outbox.messages(incident_id=incident_id, limit=limit + 1))
    more = len(found) > limit
    return (found[1:] if more else found), more


@dataclass(frozen=True)
class OverviewCard:
    incident: Incident
    upcoming: list[UpcomingStep]


@dataclass(frozen=True)
class Overview:
    """The open incidents as the commander's overview shows them: how many of each
    severity (and how many not acknowledged), and one page of them with their next steps."""

    counts: dict[Severity, tuple[int, int]]
    cards: list[OverviewCard]
    page: int
    per_page: int

    @property
    def total(self) -> int:
        return sum(total for total, _ in self.counts.values())

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


async def change_version(rt: Runtime) -> int:
    """Grows with every change to any incident: an ETag for pages of many incidents, read
    without reading them."""
    return await rt.store.read(lambda tx: tx.change_version())


async def overview(rt: Runtime, *, page: int = 1, per_page: int = 50) -> Overview:
    """One read: the counts, one page of open incidents, and their upcoming steps (however
    many incidents are open, the work is that of one page)."""

    def read(tx: Transaction) -> Overview:
        counts = tx.open_counts()
        incidents = tx.open_incidents_page(limit=per_page, offset=(page - 1) * per_page)
        upcoming = tx.upcoming_of([i.id for i in incidents if i.id is not None])
        cards = [
            OverviewCard(i, upcoming_steps(rt, i, upcoming[i.id]))
            for i in incidents
            if i.id is not None
        ]
        return Overview(counts=counts, cards=cards, page=page, per_page=per_page)

    return await rt.store.read(read)
