"""The scheduler's leases on SQL: a replica renews its claims while it works on them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from incident.adapters.database.databases import Database
from incident.adapters.database.statements import RENEW_LEASES


class SqlLeases:
    """The scheduler's `Leases` port on the database."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def renew(
        self, *, owner: str, occurrence_ids: Sequence[int], until: datetime
    ) -> set[int]:
        ids = list(occurrence_ids)
        if not ids:
            return set()

        def work(session: Session) -> set[int]:
            rows = session.connection().execute(
                RENEW_LEASES, {"b_ids": ids, "b_owner": owner, "b_until": until}
            )
            return {int(row[0]) for row in rows}

        # Not durable: a renewal lost in a power cut is a lease that ends sooner, nothing more.
        return await self.database.run(work, durable=False, urgent=True)
