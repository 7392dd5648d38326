"""Vendor references: the ids vendors gave to our incidents' things, kept in the database.

Adapters use them to find what they created before (after a retry or a restart) instead of
creating it again. `remember` keeps the first id stored for a (incident, vendor, name).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from incident.adapters.database.databases import Database
from incident.adapters.database.tables import VendorRefRow
from incident.clock import Clock

_T = VendorRefRow.__table__  # type: ignore[attr-defined]


class VendorRefs:
    def __init__(self, database: Database, clock: Clock) -> None:
        self._database = database
        self._clock = clock

    async def find(self, incident_id: int, vendor: str, name: str) -> str | None:
        statement = select(_T.c.external_id).where(
            _T.c.incident_id == incident_id, _T.c.vendor == vendor, _T.c.name == name
        )

        def read(session: Session) -> str | None:
            value = session.execute(statement).scalar_one_or_none()
            return str(value) if value is not None else None

        return await self._database.run(read)

    async def remember(self, incident_id: int, vendor: str, name: str, external_id: str) -> str:
        """Store the id unless one is already stored; return the stored one."""
        insert = sqlite_insert if self._database.is_sqlite else postgres_insert
        statement = (
            insert(_T)
            .values(
                incident_id=incident_id,
                vendor=vendor,
                name=name,
                external_id=external_id,
                created_at=self._clock.now(),
            )
            .on_conflict_do_nothing(index_elements=["incident_id", "vendor", "name"])
        )
        await self._database.run(lambda session: session.execute(statement))
        stored = await self.find(incident_id, vendor, name)
        assert stored is not None
        return stored
