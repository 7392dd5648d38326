"""The scheduler's leases on SQL: a replica renews its claims while it works on them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, update
from sqlalchemy.orm import Session

from incident.adapters.database.databases import Database
from incident.adapters.database.tables import OccurrenceState, StepOccurrenceRow, UTCDateTime

_O: Table = StepOccurrenceRow.__table__  # type: ignore[attr-defined]
_AT = UTCDateTime()

# A running occurrence's run_at is its lease expiry (that is how an expired one comes due
# again): both move together. Only rows still running under this owner are renewed.
_RENEW: Any = (
    update(_O)
    .where(
        _O.c.id.in_(bindparam("b_ids", expanding=True)),
        _O.c.state == OccurrenceState.RUNNING,
        _O.c.lease_owner == bindparam("b_owner"),
    )
    .values(
        lease_expires_at=bindparam("b_until", type_=_AT), run_at=bindparam("b_until", type_=_AT)
    )
    .returning(_O.c.id)
)


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
                _RENEW, {"b_ids": ids, "b_owner": owner, "b_until": until}
            )
            return {int(row[0]) for row in rows}

        # Not durable: a renewal lost in a power cut is a lease that ends sooner, nothing more.
        return await self.database.run(work, durable=False, urgent=True)
