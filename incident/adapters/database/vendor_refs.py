"""Vendor references: the ids vendors gave to our subjects' things, kept in the database.

Adapters use them to find what they created before (after a retry or a restart) instead of
creating it again. `remember` keeps the first id stored for a (subject, vendor, name). A
subject is an incident unless `kind` says otherwise: the incident adapters (PagerDuty,
Slack, Statuspage) name only the incident's id; the e-mail adapter names any kind (a case's
mail is remembered apart from an incident's of the same number). `replace` keeps the latest
value instead, for what changes (the digest of what a message kept up to date says now).
"""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Executable

from incident.adapters.database import statements as sql
from incident.adapters.database.databases import Database
from incident.clock import Clock
from incident.domain.records import INCIDENT

_KEY = ["subject_kind", "subject_id", "vendor", "name"]
# Built once: compiled once, then taken from SQLAlchemy's cache.
_REPLACE_SQLITE = sqlite_insert(sql.vendor_refs)
_REPLACE_SQLITE = _REPLACE_SQLITE.on_conflict_do_update(
    index_elements=_KEY, set_={"external_id": _REPLACE_SQLITE.excluded.external_id}
)
_REPLACE_POSTGRES = postgres_insert(sql.vendor_refs)
_REPLACE_POSTGRES = _REPLACE_POSTGRES.on_conflict_do_update(
    index_elements=_KEY, set_={"external_id": _REPLACE_POSTGRES.excluded.external_id}
)


class VendorRefs:
    def __init__(self, database: Database, clock: Clock) -> None:
        self._database = database
        self._clock = clock
        self._remember = sql.for_dialect(database.dialect).remember_vendor_ref
        self._replace: Executable = _REPLACE_SQLITE if database.is_sqlite else _REPLACE_POSTGRES

    async def find(
        self, subject_id: int, vendor: str, name: str, *, kind: str = INCIDENT
    ) -> str | None:
        params = {"b_kind": kind, "b_subject": subject_id, "b_vendor": vendor, "b_name": name}

        def read(session: Session) -> str | None:
            value = session.execute(sql.VENDOR_REF, params).scalar_one_or_none()
            return str(value) if value is not None else None

        return await self._database.read(read)

    async def remember(
        self, subject_id: int, vendor: str, name: str, external_id: str, *, kind: str = INCIDENT
    ) -> str:
        """Store the id unless one is already stored; return the stored one."""
        row = {
            "subject_kind": kind,
            "subject_id": subject_id,
            "vendor": vendor,
            "name": name,
            "external_id": external_id,
            "created_at": self._clock.now(),
        }
        await self._database.run(lambda session: session.execute(self._remember, row))
        stored = await self.find(subject_id, vendor, name, kind=kind)
        assert stored is not None
        return stored

    async def replace(
        self, subject_id: int, vendor: str, name: str, external_id: str, *, kind: str = INCIDENT
    ) -> None:
        """Store the id, replacing any stored before."""
        row = {
            "subject_kind": kind,
            "subject_id": subject_id,
            "vendor": vendor,
            "name": name,
            "external_id": external_id,
            "created_at": self._clock.now(),
        }
        await self._database.run(lambda session: session.execute(self._replace, row))
