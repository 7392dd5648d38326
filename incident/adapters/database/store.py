"""The store on SQLAlchemy: incidents, timeline and durable step occurrences.

Each unit of work gets a `SqlTransaction`: the `Transaction` port on one database
transaction. The statements are statements.py's; how they run (on SQLite's driver, or
through SQLAlchemy) and those that differ by database are chosen once, as the transaction
begins. Time is always a bound parameter (`now`), never the database's clock.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from incident.adapters.database import statements as sql
from incident.adapters.database.cases import CaseRows
from incident.adapters.database.clusters import ClusterRows
from incident.adapters.database.databases import Database
from incident.adapters.database.maintenances import MaintenanceRows
from incident.adapters.database.occurrences import OccurrenceRows, to_occurrence
from incident.adapters.database.verifications import VerificationRows
from incident.domain.alerts import AlertGroup, AlertRecord
from incident.domain.errors import Conflict, NotFound
from incident.domain.follow_ups import FollowUp
from incident.domain.incident import Cancellation, Category, Incident, Severity, Status
from incident.domain.records import (
    INCIDENT,
    Occurrence,
    TimelineEntry,
)
from incident.domain.status_page import (
    ComponentStatus,
)

T = TypeVar("T")

_INCIDENT_FIELDS = tuple(f.name for f in dataclasses.fields(Incident) if f.name != "events")


def _to_incident(row: Any) -> Incident:
    values: dict[str, Any] = {name: getattr(row, name) for name in _INCIDENT_FIELDS}
    values["severity"] = Severity(row.severity)
    values["status"] = Status(row.status)
    values["category"] = Category(row.category)
    values["cancellation"] = Cancellation(row.cancellation) if row.cancellation else None
    values["components"] = {k: ComponentStatus(v) for k, v in (row.components or {}).items()}
    return Incident(**values)


def _to_follow_up(row: Any) -> FollowUp:
    return FollowUp(
        id=row.id,
        incident_id=row.incident_id,
        title=row.title,
        owner=row.owner,
        due_at=row.due_at,
        created_at=row.created_at,
        created_by=row.created_by,
        done_at=row.done_at,
        done_by=row.done_by,
    )


def _to_entry(row: Any) -> TimelineEntry:
    return TimelineEntry(
        at=row.at,
        kind=row.kind,
        actor=row.actor,
        text=row.text,
        public=row.public,
        step_id=row.step_id,
        occurrence=row.occurrence,
        data=dict(row.data),
    )


# Searching incidents: a title contains the text (LIKE, its wildcards escaped), or the text
# names the incident (INC-12, inc 12, 12).
_LIKE_ESCAPE = "\\"
_REF = re.compile(r"(?:inc[-\s]?)?0*([0-9]{1,16})", re.IGNORECASE)
_MAX_ID = 2**53


def _like_escaped(text: str) -> str:
    """`text` matched literally by LIKE ... ESCAPE '\\': its % and _ are not wildcards."""
    return (
        text.replace(_LIKE_ESCAPE, _LIKE_ESCAPE * 2)
        .replace("%", _LIKE_ESCAPE + "%")
        .replace("_", _LIKE_ESCAPE + "_")
    )


class SqlTransaction(OccurrenceRows, MaintenanceRows, CaseRows, ClusterRows, VerificationRows):
    """The `Transaction` port on one SQLAlchemy session (one database transaction): the
    step occurrences (`OccurrenceRows`), the status page's maintenance windows
    (`MaintenanceRows`), support cases (`CaseRows`), their clusters and the incidents
    proposed from them (`ClusterRows`), account-ownership verifications
    (`VerificationRows`), and incidents, their timeline,
    follow-ups, alert groups and the small housekeeping tables here.
    """

    # --- incidents -------------------------------------------------------------------------

    def add_incident(
        self, incident: Incident, *, idempotency_key: str | None, fingerprint: str | None = None
    ) -> int:
        values = {name: getattr(incident, name) for name in _INCIDENT_FIELDS if name != "id"}
        values["idempotency_key"] = idempotency_key
        values["idempotency_fingerprint"] = fingerprint
        if idempotency_key is None:
            incident_id = self._execute.insert(sql.INSERT_INCIDENT, values)
        else:
            try:  # a savepoint, so a taken key is reported instead of spoiling the transaction
                with self.session.begin_nested():
                    incident_id = self._execute.insert(sql.INSERT_INCIDENT, values)
            except IntegrityError as error:
                raise Conflict(f"idempotency key {idempotency_key!r} is already taken") from error
        incident.id = incident_id
        return incident_id

    def get_incident(self, incident_id: int, *, lock: bool = False) -> Incident:
        query = self._dialect.incident_for_update if lock else sql.GET_INCIDENT
        rows = self._execute.rows(query, {"b_id": incident_id})
        if not rows:
            raise NotFound(f"there is no incident {incident_id}")
        return _to_incident(rows[0])

    def find_incident_by_key(self, idempotency_key: str) -> tuple[Incident, str | None] | None:
        rows = self._execute.rows(sql.INCIDENT_BY_IDEMPOTENCY_KEY, {"b_key": idempotency_key})
        return (_to_incident(rows[0]), rows[0].idempotency_fingerprint) if rows else None

    def find_incident_by_war_room(self, rooms: Sequence[str]) -> Incident | None:
        rooms = [r for r in rooms if r]
        if not rooms:
            return None
        rows = self._execute.rows(sql.INCIDENTS_BY_WAR_ROOM, {"b_rooms": rooms})
        return _to_incident(rows[0]) if rows else None

    def save_incident(self, incident: Incident) -> None:
        assert incident.id is not None
        values = {name: getattr(incident, name) for name in _INCIDENT_FIELDS if name != "id"}
        self._execute.rows(sql.UPDATE_INCIDENT, {**values, "b_id": incident.id})

    def list_incidents(
        self,
        *,
        statuses: Sequence[Status] = (),
        severities: Sequence[Severity] = (),
        search: str = "",
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Incident]:
        incidents = sql.incidents
        query = sql.INCIDENTS_NEWEST_FIRST
        if statuses:
            query = query.where(incidents.c.status.in_([s.value for s in statuses]))
        if severities:
            query = query.where(incidents.c.severity.in_([s.value for s in severities]))
        search = search.strip()
        if search:
            # ILIKE on PostgreSQL, lower() LIKE lower() on SQLite: case-insensitive (on
            # SQLite for ASCII letters only), with the person's % and _ taken literally.
            found: Any = incidents.c.title.ilike(f"%{_like_escaped(search)}%", escape=_LIKE_ESCAPE)
            ref = _REF.fullmatch(search)
            if ref is not None and int(ref.group(1)) <= _MAX_ID:
                found = found | (incidents.c.id == int(ref.group(1)))
            query = query.where(found)
        if limit is not None:
            query = query.limit(limit)
        if offset:
            query = query.offset(offset)
        return [_to_incident(r) for r in self._connection.execute(query)]

    # --- the commander's overview ------------------------------------------------------------

    def open_counts(self) -> dict[Severity, tuple[int, int]]:
        counts = {
            Severity(row.severity): (int(row.total), int(row.unacknowledged))
            for row in self._connection.execute(sql.OPEN_COUNTS)
        }
        return counts

    def open_incidents_page(self, *, limit: int, offset: int) -> list[Incident]:
        rows = self._connection.execute(
            sql.OPEN_INCIDENTS_PAGE, {"b_limit": limit, "b_offset": offset}
        )
        return [_to_incident(r) for r in rows]

    def upcoming_of(self, incident_ids: Sequence[int]) -> dict[int, list[Occurrence]]:
        found: dict[int, list[Occurrence]] = {i: [] for i in incident_ids}
        if incident_ids:
            params = {"b_kind": INCIDENT, "b_ids": list(incident_ids)}
            for row in self._connection.execute(sql.UPCOMING_OF, params):
                found[row.subject_id].append(to_occurrence(row))
        return found

    def change_version(self) -> int:
        value = self._connection.execute(sql.CHANGE_VERSION).scalar_one_or_none()
        return int(value or 0)

    # --- timeline --------------------------------------------------------------------------

    def append_timeline(self, incident_id: int, entries: Sequence[TimelineEntry]) -> None:
        if not entries:
            return
        rows = [
            {
                "incident_id": incident_id,
                "at": e.at,
                "kind": e.kind,
                "actor": e.actor,
                "text": e.text,
                "public": e.public,
                "step_id": e.step_id,
                "occurrence": e.occurrence,
                "data": e.data,
            }
            for e in entries
        ]
        self._execute.insert_many(sql.INSERT_TIMELINE, rows)

    def timeline(self, incident_id: int) -> list[TimelineEntry]:
        return [_to_entry(r) for r in self._execute.rows(sql.TIMELINE_OF, {"b_id": incident_id})]

    # --- what the public status page reads --------------------------------------------------

    def public_incidents(self, *, since: datetime) -> list[tuple[Incident, list[TimelineEntry]]]:
        incidents = [
            _to_incident(r) for r in self._execute.rows(sql.PUBLIC_INCIDENTS, {"b_since": since})
        ]
        if not incidents:
            return []
        entries: dict[int, list[TimelineEntry]] = {i.id: [] for i in incidents if i.id}
        for row in self._execute.rows(sql.PUBLIC_ENTRIES, {"b_since": since}):
            if row.incident_id in entries:
                entries[row.incident_id].append(_to_entry(row))
        return [(i, entries[i.id]) for i in incidents if i.id]

    # --- follow-up action items ---------------------------------------------------------------

    def add_follow_up(self, item: FollowUp) -> int:
        values = _follow_up_values(item)
        item.id = int(self._connection.execute(sql.INSERT_FOLLOW_UP, values).scalar_one())
        return item.id

    def get_follow_up(self, incident_id: int, follow_up_id: int) -> FollowUp:
        rows = self._execute.rows(sql.GET_FOLLOW_UP, {"b_id": follow_up_id})
        if not rows or rows[0].incident_id != incident_id:
            raise NotFound(f"INC-{incident_id} has no follow-up FU-{follow_up_id}")
        return _to_follow_up(rows[0])

    def save_follow_up(self, item: FollowUp) -> None:
        assert item.id is not None
        self._execute.rows(sql.UPDATE_FOLLOW_UP, {**_follow_up_values(item), "b_id": item.id})

    def follow_ups(self, incident_id: int) -> list[FollowUp]:
        rows = self._execute.rows(sql.FOLLOW_UPS_OF, {"b_id": incident_id})
        return [_to_follow_up(r) for r in rows]

    def first_sighting(self, key: str, *, now: datetime, forget_before: datetime) -> bool:
        run = self._connection.execute
        run(sql.FORGET_SEEN_REQUESTS, {"b_before": forget_before})
        return bool(run(self._dialect.remember_seen_request, {"key": key, "at": now}).rowcount)

    def revoke_session(self, nonce: str, *, expires_at: datetime, now: datetime) -> None:
        run = self._connection.execute
        run(sql.FORGET_EXPIRED_SESSIONS, {"b_now": now})
        run(self._dialect.revoke_session, {"nonce": nonce, "expires_at": expires_at})

    def session_revoked(self, nonce: str) -> bool:
        return bool(self._execute.rows(sql.SESSION_REVOKED, {"b_nonce": nonce}))

    def probe_write(self, *, name: str, now: datetime) -> None:
        run = self._connection.execute
        if not run(sql.UPDATE_PROBE, {"b_name": name, "at": now}).rowcount:
            run(sql.INSERT_PROBE, {"name": name, "at": now})

    def move_alert_groups(self, from_incident: int, to_incident: int) -> int:
        moved = self._connection.execute(
            sql.MOVE_ALERT_GROUPS, {"b_from": from_incident, "b_to": to_incident}
        )
        return int(getattr(moved, "rowcount", 0))

    # --- alert groups ------------------------------------------------------------------------

    def find_alert_group(
        self, source: str, key_hash: str, *, lock: bool = False
    ) -> tuple[AlertGroup, Incident] | None:
        query = self._dialect.latest_alert_group_for_update if lock else sql.LATEST_ALERT_GROUP
        rows = self._execute.rows(query, {"b_source": source, "b_hash": key_hash})
        if not rows:
            return None
        row = rows[0]
        group = AlertGroup(
            source=source,
            group_key=row.g_group_key,
            generation=row.g_generation,
            incident_id=row.id,
            alerts={k: AlertRecord.from_json(v) for k, v in row.g_alerts.items()},
            firing=row.g_firing,
            created_at=row.g_created_at,
            updated_at=row.g_updated_at,
        )
        return group, _to_incident(row)

    def add_alert_group(self, group: AlertGroup) -> None:
        values = {
            "source": group.source,
            "key_hash": group.key_hash,
            "group_key": group.group_key,
            "generation": group.generation,
            "created_at": group.created_at,
            **_alert_group_state(group),
        }
        # No savepoint: a lost race ends the whole unit of work (it is retried), so the
        # spoiled transaction is rolled back anyway.
        try:
            self._execute.insert(sql.INSERT_ALERT_GROUP, values)
        except IntegrityError as error:
            raise Conflict(
                f"alert group {group.source}:{group.key_hash[:12]} generation "
                f"{group.generation} was stored by another delivery"
            ) from error

    def save_alert_group(self, group: AlertGroup) -> None:
        self._execute.rows(
            sql.UPDATE_ALERT_GROUP,
            {
                "b_source": group.source,
                "b_hash": group.key_hash,
                "b_generation": group.generation,
                **_alert_group_state(group),
            },
        )


def _follow_up_values(item: FollowUp) -> dict[str, Any]:
    return {
        "incident_id": item.incident_id,
        "title": item.title,
        "owner": item.owner,
        "due_at": item.due_at,
        "created_at": item.created_at,
        "created_by": item.created_by,
        "done_at": item.done_at,
        "done_by": item.done_by,
    }


def _alert_group_state(group: AlertGroup) -> dict[str, Any]:
    """The columns that change as notifications come in."""
    return {
        "incident_id": group.incident_id,
        "alerts": {k: v.to_json() for k, v in group.alerts.items()},
        "firing": group.firing,
        "updated_at": group.updated_at,
    }


class SqlStore:
    """The `Store` port: each unit of work gets a `SqlTransaction` and one transaction,
    one that may write (`run`) or one that only reads (`read`)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def run(
        self, work: Callable[[SqlTransaction], T], *, durable: bool = True, urgent: bool = False
    ) -> T:
        return await self.database.run(
            lambda session: work(SqlTransaction(session)), durable=durable, urgent=urgent
        )

    async def read(self, work: Callable[[SqlTransaction], T]) -> T:
        return await self.database.read(lambda session: work(SqlTransaction(session)))


def explain_claim(session: Session, *, now: datetime, analyze: bool = False) -> str:
    """PostgreSQL's plan for the claim the main lane runs at `now`: `EXPLAIN`, or with
    `analyze` `EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF)`, whose claim is then rolled back.
    For the tests and benchmarks that check it stays an index scan however long the
    backlog."""
    connection = session.connection()
    # Every Core statement is a ClauseElement, compiled by an SQLCompiler; the types do not say.
    claim = cast(ClauseElement, sql.POSTGRES.claim)
    compiled = cast(SQLCompiler, claim.compile(dialect=connection.dialect))
    values = {
        **compiled.params,
        "b_now": now,
        "b_limit": 100,
        "b_owner": "explain",
        "b_lease": now + timedelta(minutes=1),
    }
    assert compiled.positiontup is not None
    args = tuple(values[name] for name in compiled.positiontup)
    explain = "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " if analyze else "EXPLAIN "
    plan = "\n".join(row[0] for row in connection.exec_driver_sql(explain + str(compiled), args))
    if analyze:
        session.rollback()  # ANALYZE ran the claim
    return plan
