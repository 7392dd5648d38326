"""Vendor references: the ids vendors gave to our incidents' things, kept in the database.

Adapters use them to find what they created before (after a retry or a restart) instead of
creating it again. `remember` keeps the first id stored for a (incident, vendor, name).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from incident.adapters.database import statements as sql
from incident.adapters.database.databases import Database
from incident.clock import Clock


class VendorRefs:
    def __init__(self, database: Database, clock: Clock) -> None:
        self._database = database
        self._clock = clock
        self._remember = sql.for_dialect(database.dialect).remember_vendor_ref

    async def find(self, incident_id: int, vendor: str, name: str) -> str | None:
        params = {"b_incident": incident_id, "b_vendor": vendor, "b_name": name}

        def read(session: Session) -> str | None:
            value = session.execute(sql.VENDOR_REF, params).scalar_one_or_none()
            return str(value) if value is not None else None

        return await self._database.read(read)

    async def remember(self, incident_id: int, vendor: str, name: str, external_id: str) -> str:
        """Store the id unless one is already stored; return the stored one."""
        row = {
            "incident_id": incident_id,
            "vendor": vendor,
            "name": name,
            "external_id": external_id,
            "created_at": self._clock.now(),
        }
        await self._database.run(lambda session: session.execute(self._remember, row))
        stored = await self.find(incident_id, vendor, name)
        assert stored is not None
        return stored
