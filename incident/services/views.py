"""Read-only views the API serves beside the use cases: an incident's timeline, filtered,
and the messages the outbox kept. Nothing here changes anything."""

from __future__ import annotations

from collections.abc import Collection

from incident.domain.records import TimelineEntry
from incident.services.incidents import Runtime
from incident.services.ports import KeptMessage, OutboxReader, Transaction


async def incident_timeline(
    rt: Runtime, incident_id: int, *, kinds: Collection[str] = (), public_only: bool = False
) -> list[TimelineEntry]:
    """The incident's timeline in time order: only entries of `kinds` when given, only the
    customer-facing ones with `public_only`. NotFound when there is no such incident."""

    def read(tx: Transaction) -> list[TimelineEntry]:
        tx.get_incident(incident_id)  # NotFound, rather than an empty timeline
        return tx.timeline(incident_id)

    entries = await rt.store.run(read, durable=False)
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
        await rt.store.run(lambda tx: tx.get_incident(incident_id), durable=False)
    found = list(await outbox.messages(incident_id=incident_id, limit=limit + 1))
    more = len(found) > limit
    return (found[1:] if more else found), more
