"""The status page's maintenance windows and their updates: the part of a transaction
(`SqlTransaction`) that keeps them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row

from incident.adapters.database import statements as sql
from incident.adapters.database.executors import TransactionRows
from incident.domain.errors import NotFound
from incident.domain.status_page import Maintenance, MaintenanceStatus, MaintenanceUpdate


class MaintenanceRows(TransactionRows):
    """Maintenance windows, in one transaction (see `SqlTransaction`)."""

    def add_maintenance(self, maintenance: Maintenance) -> int:
        maintenance_id = int(
            self._connection.execute(
                sql.INSERT_MAINTENANCE, _maintenance_values(maintenance)
            ).scalar_one()
        )
        maintenance.id = maintenance_id
        self._add_maintenance_updates(maintenance)
        return maintenance_id

    def get_maintenance(self, maintenance_id: int, *, lock: bool = False) -> Maintenance:
        query = self._dialect.maintenance_for_update if lock else sql.GET_MAINTENANCE
        row = self._connection.execute(query, {"b_id": maintenance_id}).one_or_none()
        if row is None:
            raise NotFound(f"there is no maintenance window {maintenance_id}")
        return self._with_updates([row])[0]

    def save_maintenance(self, maintenance: Maintenance) -> None:
        assert maintenance.id is not None
        self._connection.execute(
            sql.UPDATE_MAINTENANCE, {**_maintenance_values(maintenance), "b_id": maintenance.id}
        )
        self._add_maintenance_updates(maintenance)

    def maintenances(self, *, since: datetime) -> list[Maintenance]:
        """Windows that end at or after `since`, soonest first."""
        rows = self._connection.execute(sql.MAINTENANCES_ENDING_SINCE, {"b_since": since})
        return self._with_updates(list(rows))

    def _add_maintenance_updates(self, maintenance: Maintenance) -> None:
        new = [u for u in maintenance.updates if u.id is None]
        if not new:
            return
        self._connection.execute(
            sql.INSERT_MAINTENANCE_UPDATE,
            [
                {
                    "maintenance_id": maintenance.id,
                    "at": u.at,
                    "status": u.status.value,
                    "body": u.body,
                }
                for u in new
            ],
        )

    def _with_updates(self, rows: Sequence[Row[Any]]) -> list[Maintenance]:
        windows = {
            r.id: Maintenance(
                id=r.id,
                name=r.name,
                scheduled_for=r.scheduled_for,
                scheduled_until=r.scheduled_until,
                components=tuple(r.components),
                set_status=MaintenanceStatus(r.set_status) if r.set_status else None,
                created_at=r.created_at,
                created_by=r.created_by,
                updated_at=r.updated_at,
            )
            for r in rows
        }
        if windows:
            updates = self._connection.execute(sql.MAINTENANCE_UPDATES_OF, {"b_ids": list(windows)})
            for u in updates:
                windows[u.maintenance_id].updates.append(
                    MaintenanceUpdate(
                        at=u.at, status=MaintenanceStatus(u.status), body=u.body, id=u.id
                    )
                )
        return list(windows.values())


def _maintenance_values(m: Maintenance) -> dict[str, Any]:
    return {
        "name": m.name,
        "scheduled_for": m.scheduled_for,
        "scheduled_until": m.scheduled_until,
        "components": list(m.components),
        "set_status": m.set_status.value if m.set_status else None,
        "created_at": m.created_at,
        "created_by": m.created_by,
        "updated_at": m.updated_at or m.created_at,
    }
