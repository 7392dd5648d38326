"""Every prebuilt SQL statement of the store, leases and vendor references, named, in one place.

Statements are built once, at import: building and cache-keying a statement costs more
than running it on SQLite, and a fired step runs about ten of them (bench/README.md).
Parameters that would collide with a column name in `.values(...)` are named `b_...`.

Most statements are the same on both databases. Those whose SQL differs (claims, row locks,
the next due time, inserts that skip duplicates) are in one `DialectStatements` per
database, `SQLITE` and `POSTGRES`, which a transaction picks once (`for_dialect`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Table,
    Text,
    bindparam,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import Executable

from incident.adapters.database.tables import (
    AlertGroupRow,
    CandidateRow,
    CaseRow,
    CaseTimelineRow,
    ClusterKeyRow,
    ClusterMemberRow,
    ClusterRow,
    FollowUpRow,
    IncidentRow,
    MaintenanceRow,
    MaintenanceUpdateRow,
    ProbeRow,
    RevokedSessionRow,
    SeenRequestRow,
    StepOccurrenceRow,
    TimelineRow,
    UTCDateTime,
    VendorRefRow,
    VerificationFileRow,
    VerificationRow,
    VerificationTimelineRow,
)
from incident.domain.case import CaseStatus
from incident.domain.records import UPCOMING_STATES, OccurrenceState

# --- the tables ------------------------------------------------------------------------------
# SQLModel declares `__table__` only at run time.
incidents: Table = IncidentRow.__table__  # type: ignore[attr-defined]
occurrences: Table = StepOccurrenceRow.__table__  # type: ignore[attr-defined]
timeline: Table = TimelineRow.__table__  # type: ignore[attr-defined]
alert_groups: Table = AlertGroupRow.__table__  # type: ignore[attr-defined]
follow_ups: Table = FollowUpRow.__table__  # type: ignore[attr-defined]
maintenances: Table = MaintenanceRow.__table__  # type: ignore[attr-defined]
maintenance_updates: Table = MaintenanceUpdateRow.__table__  # type: ignore[attr-defined]
probes: Table = ProbeRow.__table__  # type: ignore[attr-defined]
seen_requests: Table = SeenRequestRow.__table__  # type: ignore[attr-defined]
revoked_sessions: Table = RevokedSessionRow.__table__  # type: ignore[attr-defined]
vendor_refs: Table = VendorRefRow.__table__  # type: ignore[attr-defined]

INSTANT = UTCDateTime()  # the type of a bound instant that no column gives its type to


@dataclass(frozen=True, eq=False)  # compared (and cached) by identity, like statements
class InsertInto:
    """An INSERT of whole rows into `table` (`columns`: the ones rows give; by default all
    but the id). On SQLite it goes straight to the driver (sqlite_driver.py), elsewhere
    through SQLAlchemy as `statement`, or `returning_id` when the new id is wanted."""

    table: Table
    columns: tuple[str, ...] = ()
    statement: Any = field(init=False)
    returning_id: Any = field(init=False)

    def __post_init__(self) -> None:
        if not self.columns:
            names = tuple(c.name for c in self.table.columns if c.name != "id")
            object.__setattr__(self, "columns", names)
        object.__setattr__(self, "statement", insert(self.table))
        object.__setattr__(self, "returning_id", insert(self.table).returning(self.table.c.id))


# --- incidents -------------------------------------------------------------------------------

INSERT_INCIDENT = InsertInto(incidents)
GET_INCIDENT = select(incidents).where(incidents.c.id == bindparam("b_id"))
INCIDENT_BY_IDEMPOTENCY_KEY = select(incidents).where(
    incidents.c.idempotency_key == bindparam("b_key")
)
INCIDENTS_BY_WAR_ROOM = (
    select(incidents)
    .where(incidents.c.war_room.in_(bindparam("b_rooms", expanding=True)))
    .order_by(incidents.c.id.desc())
)
UPDATE_INCIDENT = update(incidents).where(incidents.c.id == bindparam("b_id"))
# Filtered, searched and paged for each call (store.py `list_incidents`).
INCIDENTS_NEWEST_FIRST = select(incidents).order_by(incidents.c.id.desc())

# --- the commander's overview ----------------------------------------------------------------
# Open incidents counted by severity, and one page of them, P1 first, the unacknowledged
# first, then the longest-running; the steps they have coming, in one read.

_OPEN = incidents.c.status.in_(["investigating", "identified", "monitoring"])
OPEN_COUNTS = (
    select(
        incidents.c.severity,
        func.count().label("total"),
        func.count().filter(incidents.c.acknowledged_at.is_(None)).label("unacknowledged"),
    )
    .where(_OPEN)
    .group_by(incidents.c.severity)
)
OPEN_INCIDENTS_PAGE = (
    select(incidents)
    .where(_OPEN)
    .order_by(
        incidents.c.severity,
        incidents.c.acknowledged_at.is_not(None),
        incidents.c.declared_at,
        incidents.c.id,
    )
    .limit(bindparam("b_limit"))
    .offset(bindparam("b_offset"))
)
UPCOMING_OF = (
    select(occurrences)
    .where(
        occurrences.c.subject_kind == bindparam("b_kind"),
        occurrences.c.subject_id.in_(bindparam("b_ids", expanding=True)),
        occurrences.c.state.in_([state.value for state in UPCOMING_STATES]),
    )
    .order_by(occurrences.c.subject_id, occurrences.c.run_at, occurrences.c.id)
)
# Every change an incident's page or the overview shows writes a timeline entry (a state
# change, a step done, moved, held or retried): the newest entry's id versions them all.
CHANGE_VERSION = select(func.max(timeline.c.id))

# --- timeline --------------------------------------------------------------------------------

INSERT_TIMELINE = InsertInto(timeline)
TIMELINE_OF = (
    select(timeline)
    .where(timeline.c.incident_id == bindparam("b_id"))
    .order_by(timeline.c.at, timeline.c.id)
)

# --- what the public status page reads -------------------------------------------------------
# On the page: incidents with anything public, open or resolved (or cancelled) in the last
# 90 days.

_ON_THE_PAGE = (
    (incidents.c.cancelled_at.is_(None) & incidents.c.resolved_at.is_(None))
    | (incidents.c.resolved_at >= bindparam("b_since", type_=INSTANT))
    | (incidents.c.cancelled_at >= bindparam("b_since", type_=INSTANT))
)
PUBLIC_INCIDENTS = (
    select(incidents)
    .where(
        incidents.c.id.in_(select(timeline.c.incident_id).where(timeline.c.public.is_(True))),
        _ON_THE_PAGE,
    )
    .order_by(incidents.c.declared_at.desc(), incidents.c.id.desc())
)
# Selected by the same condition, not by a list of ids: an alert storm puts hundreds of
# incidents on the page, too many for a statement to list.
PUBLIC_ENTRIES = (
    select(timeline)
    .where(
        timeline.c.public.is_(True),
        timeline.c.incident_id.in_(select(incidents.c.id).where(_ON_THE_PAGE)),
    )
    .order_by(timeline.c.at, timeline.c.id)
)

# --- support cases ---------------------------------------------------------------------------

cases: Table = CaseRow.__table__  # type: ignore[attr-defined]
case_timeline: Table = CaseTimelineRow.__table__  # type: ignore[attr-defined]

INSERT_CASE = InsertInto(cases)
GET_CASE = select(cases).where(cases.c.id == bindparam("b_id"))
CASE_BY_REFERENCE = select(cases).where(cases.c.reference == bindparam("b_reference"))
CASE_ID_BY_REFERENCE = select(cases.c.id).where(cases.c.reference == bindparam("b_reference"))
UPDATE_CASE = update(cases).where(cases.c.id == bindparam("b_id"))
LINKED_CASES = (
    select(cases).where(cases.c.incident_id == bindparam("b_incident")).order_by(cases.c.id)
)
INSERT_CASE_ENTRY = InsertInto(case_timeline)
CASE_TIMELINE_OF = (
    select(case_timeline)
    .where(case_timeline.c.case_id == bindparam("b_id"))
    .order_by(case_timeline.c.at, case_timeline.c.id)
)
OPEN_CASE_COUNTS = (
    select(cases.c.level, func.count())
    .where(cases.c.status == CaseStatus.OPEN.value)
    .group_by(cases.c.level)
)


# --- maintenance windows ---------------------------------------------------------------------

INSERT_MAINTENANCE = insert(maintenances).returning(maintenances.c.id)
GET_MAINTENANCE = select(maintenances).where(maintenances.c.id == bindparam("b_id"))
UPDATE_MAINTENANCE = update(maintenances).where(maintenances.c.id == bindparam("b_id"))
MAINTENANCES_ENDING_SINCE = (
    select(maintenances)
    .where(maintenances.c.scheduled_until >= bindparam("b_since", type_=INSTANT))
    .order_by(maintenances.c.scheduled_for, maintenances.c.id)
)
INSERT_MAINTENANCE_UPDATE = insert(maintenance_updates)
MAINTENANCE_UPDATES_OF = (
    select(maintenance_updates)
    .where(maintenance_updates.c.maintenance_id.in_(bindparam("b_ids", expanding=True)))
    .order_by(maintenance_updates.c.at, maintenance_updates.c.id)
)

# --- step occurrences ------------------------------------------------------------------------

# A running occurrence's run_at is its lease expiry, so the rows whose owner died holding
# them come due again, and are claimed like pending ones.
ACTIVE_STATES = (OccurrenceState.PENDING, OccurrenceState.RUNNING)

# The columns a new occurrence sets; the rest start NULL.
INSERT_OCCURRENCE = InsertInto(
    occurrences,
    (
        "subject_kind",
        "subject_id",
        "step_id",
        "occurrence",
        "action",
        "target",
        "due_at",
        "run_at",
        "state",
        "attempts",
    ),
)
OCCURRENCES_OF = (
    select(occurrences)
    .where(
        occurrences.c.subject_kind == bindparam("b_kind"),
        occurrences.c.subject_id == bindparam("b_id"),
    )
    .order_by(occurrences.c.run_at, occurrences.c.id)
)
OCCURRENCES_OF_IN_STATES = OCCURRENCES_OF.where(
    occurrences.c.state.in_(bindparam("b_states", expanding=True))
)
GET_OCCURRENCE = select(occurrences).where(occurrences.c.id == bindparam("b_id"))
UPDATE_OCCURRENCE = update(occurrences).where(occurrences.c.id == bindparam("b_id"))
FINISH_OCCURRENCE = UPDATE_OCCURRENCE.values(
    started_at=func.coalesce(occurrences.c.started_at, bindparam("b_now", type_=INSTANT)),
    last_error=func.coalesce(bindparam("b_error", type_=Text()), occurrences.c.last_error),
    lease_owner=None,
    lease_expires_at=None,
)
# Narrowed to an owner or to some rows for each call (store.py `release_claims`).
RELEASE_CLAIMS = (
    update(occurrences)
    .where(occurrences.c.state == OccurrenceState.RUNNING)
    .values(
        state=OccurrenceState.PENDING,
        lease_owner=None,
        lease_expires_at=None,
        run_at=func.coalesce(occurrences.c.not_before, occurrences.c.due_at),
    )
)
# A running occurrence's run_at is its lease expiry (that is how an expired one comes due
# again): both move together. Only rows still running under this owner are renewed.
RENEW_LEASES = (
    update(occurrences)
    .where(
        occurrences.c.id.in_(bindparam("b_ids", expanding=True)),
        occurrences.c.state == OccurrenceState.RUNNING,
        occurrences.c.lease_owner == bindparam("b_owner"),
    )
    .values(
        lease_expires_at=bindparam("b_until", type_=INSTANT),
        run_at=bindparam("b_until", type_=INSTANT),
    )
    .returning(occurrences.c.id)
)

# --- alert groups ----------------------------------------------------------------------------

INSERT_ALERT_GROUP = InsertInto(alert_groups)
# The group's latest generation joined to its incident: one statement, and on PostgreSQL
# one lock for both rows.
LATEST_ALERT_GROUP = (
    select(
        incidents,
        alert_groups.c.group_key.label("g_group_key"),
        alert_groups.c.generation.label("g_generation"),
        alert_groups.c.alerts.label("g_alerts"),
        alert_groups.c.firing.label("g_firing"),
        alert_groups.c.created_at.label("g_created_at"),
        alert_groups.c.updated_at.label("g_updated_at"),
    )
    .join(incidents, incidents.c.id == alert_groups.c.incident_id)
    .where(
        alert_groups.c.source == bindparam("b_source"),
        alert_groups.c.key_hash == bindparam("b_hash"),
    )
    .order_by(alert_groups.c.generation.desc())
    .limit(1)
)
UPDATE_ALERT_GROUP = update(alert_groups).where(
    alert_groups.c.source == bindparam("b_source"),
    alert_groups.c.key_hash == bindparam("b_hash"),
    alert_groups.c.generation == bindparam("b_generation"),
)
MOVE_ALERT_GROUPS = (
    update(alert_groups)
    .where(alert_groups.c.incident_id == bindparam("b_from"))
    .values(incident_id=bindparam("b_to"))
)

# --- follow-up action items ------------------------------------------------------------------

INSERT_FOLLOW_UP = insert(follow_ups).returning(follow_ups.c.id)
GET_FOLLOW_UP = select(follow_ups).where(follow_ups.c.id == bindparam("b_id"))
UPDATE_FOLLOW_UP = update(follow_ups).where(follow_ups.c.id == bindparam("b_id"))
FOLLOW_UPS_OF = (
    select(follow_ups)
    .where(follow_ups.c.incident_id == bindparam("b_id"))
    .order_by(follow_ups.c.id)
)

# --- replayed requests, ended sessions, readiness probes -------------------------------------

FORGET_SEEN_REQUESTS = delete(seen_requests).where(
    seen_requests.c.at < bindparam("b_before", type_=INSTANT)
)
FORGET_EXPIRED_SESSIONS = delete(revoked_sessions).where(
    revoked_sessions.c.expires_at <= bindparam("b_now", type_=INSTANT)
)
SESSION_REVOKED = select(revoked_sessions.c.nonce).where(
    revoked_sessions.c.nonce == bindparam("b_nonce")
)
UPDATE_PROBE = update(probes).where(probes.c.name == bindparam("b_name"))
INSERT_PROBE = insert(probes)

# --- vendor references -----------------------------------------------------------------------

VENDOR_REF = select(vendor_refs.c.external_id).where(
    vendor_refs.c.subject_kind == bindparam("b_kind"),
    vendor_refs.c.subject_id == bindparam("b_subject"),
    vendor_refs.c.vendor == bindparam("b_vendor"),
    vendor_refs.c.name == bindparam("b_name"),
)


# --- clusters of cases and the incidents proposed from them ----------------------------------

cluster_keys: Table = ClusterKeyRow.__table__  # type: ignore[attr-defined]
clusters: Table = ClusterRow.__table__  # type: ignore[attr-defined]
cluster_members: Table = ClusterMemberRow.__table__  # type: ignore[attr-defined]
candidates: Table = CandidateRow.__table__  # type: ignore[attr-defined]

_CLUSTER_KEY = ["category", "component"]
_THIS_KEY = (cluster_keys.c.category == bindparam("b_category")) & (
    cluster_keys.c.component == bindparam("b_component")
)
CLUSTER_KEY_VERSION = select(cluster_keys.c.version).where(_THIS_KEY)
BUMP_CLUSTER_KEY = update(cluster_keys).where(_THIS_KEY).values(version=bindparam("b_version"))
CLUSTERS_OF_KEY = (
    select(clusters)
    .where(
        clusters.c.category == bindparam("b_category"),
        clusters.c.component == bindparam("b_component"),
        clusters.c.last_seen >= bindparam("b_since", type_=INSTANT),
    )
    .order_by(clusters.c.id)
)
INSERT_CLUSTER = InsertInto(clusters)
GET_CLUSTER = select(clusters).where(clusters.c.id == bindparam("b_id"))
UPDATE_CLUSTER = update(clusters).where(clusters.c.id == bindparam("b_id"))
INSERT_CLUSTER_MEMBER = InsertInto(cluster_members)
CLUSTER_OF_CASE = select(cluster_members.c.cluster_id).where(
    cluster_members.c.case_id == bindparam("b_case")
)
MEMBERS_OF_CLUSTER = (
    select(cluster_members)
    .where(
        cluster_members.c.cluster_id == bindparam("b_id"),
        cluster_members.c.at >= bindparam("b_since", type_=INSTANT),
    )
    .order_by(cluster_members.c.at, cluster_members.c.id)
)
INSERT_CANDIDATE = InsertInto(candidates)
GET_CANDIDATE = select(candidates).where(candidates.c.id == bindparam("b_id"))
CANDIDATE_OF_CLUSTER = select(candidates).where(candidates.c.cluster_id == bindparam("b_id"))
UPDATE_CANDIDATE = update(candidates).where(candidates.c.id == bindparam("b_id"))
# Alert groups firing on a component (their incident's service) since an instant.
ALERT_GROUPS_ON = (
    select(func.count())
    .select_from(alert_groups.join(incidents, alert_groups.c.incident_id == incidents.c.id))
    .where(
        func.lower(incidents.c.service) == bindparam("b_component"),
        alert_groups.c.firing.is_(True),
        alert_groups.c.updated_at >= bindparam("b_since", type_=INSTANT),
    )
)


# --- account-ownership verifications ----------------------------------------------------------

verifications: Table = VerificationRow.__table__  # type: ignore[attr-defined]
verification_files: Table = VerificationFileRow.__table__  # type: ignore[attr-defined]
verification_timeline: Table = VerificationTimelineRow.__table__  # type: ignore[attr-defined]

INSERT_VERIFICATION = InsertInto(verifications)
GET_VERIFICATION = select(verifications).where(verifications.c.id == bindparam("b_id"))
VERIFICATION_BY_REFERENCE = select(verifications).where(
    verifications.c.reference == bindparam("b_reference")
)
UPDATE_VERIFICATION = update(verifications).where(verifications.c.id == bindparam("b_id"))
INSERT_VERIFICATION_FILE = InsertInto(verification_files)
_THIS_FILE = (verification_files.c.verification_id == bindparam("b_id")) & (
    verification_files.c.sha256 == bindparam("b_sha256")
)
VERIFICATION_FILE = select(verification_files).where(_THIS_FILE)
PURGE_VERIFICATION_FILES = (
    update(verification_files)
    .where(
        verification_files.c.verification_id == bindparam("b_id"),
        verification_files.c.purged_at.is_(None),
    )
    .values(data=None, purged_at=bindparam("b_now", type_=INSTANT))
)
INSERT_VERIFICATION_ENTRY = InsertInto(verification_timeline)
VERIFICATION_TIMELINE_OF = (
    select(verification_timeline)
    .where(verification_timeline.c.verification_id == bindparam("b_id"))
    .order_by(verification_timeline.c.at, verification_timeline.c.id)
)


# --- what differs by database ----------------------------------------------------------------


@dataclass(frozen=True)
class DialectStatements:
    """The statements whose SQL differs by database, for one database."""

    # Claim up to b_limit runnable occurrences, oldest run_at first, for b_owner until
    # b_lease (`claim_actions`: only of the actions b_actions). Returns the claimed rows.
    claim: Executable
    claim_actions: Executable
    # A row by id, locked until the transaction ends where rows can be locked (SQLite locks
    # the whole database for its one writer: the plain read).
    incident_for_update: Executable
    latest_alert_group_for_update: Executable
    maintenance_for_update: Executable
    case_for_update: Executable
    linked_cases_for_update: Executable
    # The earliest run_at of an active occurrence (`next_run_at_of`: of b_actions).
    next_run_at: Executable
    next_run_at_of: Executable
    # Inserts that do nothing when the row's key is there already.
    remember_seen_request: Executable
    revoke_session: Executable
    remember_vendor_ref: Executable
    remember_cluster_key: Executable
    # Locked where rows can be (the plain read on SQLite, whose one writer locks it all).
    cluster_key_for_update: Executable
    candidate_for_update: Executable
    cluster_for_update: Executable
    verification_for_update: Executable


def _claim_update(ids: Any) -> Any:
    """Claim the occurrences of `ids` (a scalar subquery): running under b_owner until
    b_lease, their lease expiry doubling as their run_at."""
    lease = bindparam("b_lease", type_=INSTANT)
    return (
        update(occurrences)
        .where(occurrences.c.id.in_(ids))
        .values(
            state=OccurrenceState.RUNNING,
            lease_owner=bindparam("b_owner"),
            lease_expires_at=lease,
            run_at=lease,
            started_at=bindparam("b_now", type_=INSTANT),
            attempts=occurrences.c.attempts + 1,
        )
        .returning(*occurrences.c)
    )


def _claimable_on_sqlite(*, by_action: bool) -> Any:
    """The ids a SQLite claim takes: the oldest runnable ones, at most b_limit. One
    writer at a time, so nothing to skip and nobody to wait for."""
    candidates = (
        select(occurrences.c.id)
        .where(
            occurrences.c.state.in_(ACTIVE_STATES),
            occurrences.c.run_at <= bindparam("b_now", type_=INSTANT),
        )
        .order_by(occurrences.c.run_at, occurrences.c.id)
        .limit(bindparam("b_limit"))
    )
    if by_action:
        candidates = candidates.where(
            occurrences.c.action.in_(bindparam("b_actions", expanding=True))
        )
    return candidates.scalar_subquery()


# pg_try_advisory_xact_lock(key): one claim at a time per subject. The key is a 64-bit
# hash of "<kind>:<id>", seeded with CLAIM_LOCK so it is not another lock's key.
CLAIM_LOCK = 0x636C616D  # "clam"


def _subject_lock_key(rows: Any) -> Any:
    subject = rows.c.subject_kind + literal(":") + cast(rows.c.subject_id, Text)
    return func.hashtextextended(subject, CLAIM_LOCK)


def _claimable_on_postgres(*, by_action: bool) -> Any:
    """The ids a PostgreSQL claim takes: the oldest runnable ones, at most b_limit.

    - `FOR UPDATE SKIP LOCKED`: replicas claiming at the same moment take different rows,
      and none waits for another.
    - One ordered range of the (state, run_at) index per state, pending and running (an
      expired lease), merged: `state IN (...)` would make PostgreSQL sort every runnable row
      before taking the first ones, which grows with the backlog; this stays flat.
    - One replica at a time per subject (main lane): a row is skipped while another owner
      holds a live lease on a row of the same subject, and the claim takes the subject's
      advisory lock (for its transaction; only for the few rows it has locked, so other
      replicas claiming meanwhile still find the rest) so two replicas claiming at once
      cannot both take rows of it. A subject's steps then run in due order, each checked
      against what the one before changed, as on one process. The urgent lane
      (`by_action`, pages) is not held back by another replica's slow step: its steps are
      pages, which are idempotent per incident and tier.
    """
    now = bindparam("b_now", type_=INSTANT)
    branches = []
    for state in (OccurrenceState.RUNNING, OccurrenceState.PENDING):
        row = occurrences.alias(f"due_{state}")
        query = select(row.c.id, row.c.run_at, row.c.subject_kind, row.c.subject_id).where(
            row.c.state == state, row.c.run_at <= now
        )
        if by_action:
            query = query.where(row.c.action.in_(bindparam("b_actions", expanding=True)))
        else:
            busy = occurrences.alias(f"busy_{state}")
            query = query.where(
                ~exists().where(
                    busy.c.subject_kind == row.c.subject_kind,
                    busy.c.subject_id == row.c.subject_id,
                    busy.c.state == OccurrenceState.RUNNING,
                    busy.c.lease_owner != bindparam("b_owner"),
                    busy.c.run_at > now,
                ),
            )
        query = (
            query.order_by(row.c.run_at, row.c.id)
            .limit(bindparam("b_limit"))
            .with_for_update(skip_locked=True, of=row)
        )
        branches.append(query.cte(f"claim_{state}"))
    running, pending = branches
    merged = union_all(select(running), select(pending)).subquery("runnable")
    chosen = select(merged.c.id).order_by(merged.c.run_at, merged.c.id).limit(bindparam("b_limit"))
    if not by_action:
        chosen = chosen.where(func.pg_try_advisory_xact_lock(_subject_lock_key(merged)))
    return chosen.scalar_subquery()


def _next_run_at_on_postgres(*, by_action: bool) -> Any:
    """The earliest of each active state's first index entry: min() over `state IN (...)`
    would read every active row on PostgreSQL."""
    firsts = []
    for state in ACTIVE_STATES:
        first = select(func.min(occurrences.c.run_at)).where(occurrences.c.state == state)
        if by_action:
            first = first.where(occurrences.c.action.in_(bindparam("b_actions", expanding=True)))
        firsts.append(first.scalar_subquery())
    return select(func.least(*firsts, type_=INSTANT))


_NEXT_RUN_AT = select(func.min(occurrences.c.run_at, type_=INSTANT)).where(
    occurrences.c.state.in_(ACTIVE_STATES)
)
_SEEN_REQUEST_KEY = ["key"]
_REVOKED_SESSION_KEY = ["nonce"]
_VENDOR_REF_KEY = ["subject_kind", "subject_id", "vendor", "name"]

SQLITE = DialectStatements(
    claim=_claim_update(_claimable_on_sqlite(by_action=False)),
    claim_actions=_claim_update(_claimable_on_sqlite(by_action=True)),
    incident_for_update=GET_INCIDENT,
    latest_alert_group_for_update=LATEST_ALERT_GROUP,
    maintenance_for_update=GET_MAINTENANCE,
    # SQLite locks the whole database for a writer: FOR UPDATE means nothing there.
    case_for_update=GET_CASE,
    linked_cases_for_update=LINKED_CASES,
    next_run_at=_NEXT_RUN_AT,
    next_run_at_of=_NEXT_RUN_AT.where(
        occurrences.c.action.in_(bindparam("b_actions", expanding=True))
    ),
    remember_seen_request=sqlite.insert(seen_requests).on_conflict_do_nothing(
        index_elements=_SEEN_REQUEST_KEY
    ),
    revoke_session=sqlite.insert(revoked_sessions).on_conflict_do_nothing(
        index_elements=_REVOKED_SESSION_KEY
    ),
    remember_vendor_ref=sqlite.insert(vendor_refs).on_conflict_do_nothing(
        index_elements=_VENDOR_REF_KEY
    ),
    remember_cluster_key=sqlite.insert(cluster_keys).on_conflict_do_nothing(
        index_elements=_CLUSTER_KEY
    ),
    cluster_key_for_update=CLUSTER_KEY_VERSION,
    candidate_for_update=GET_CANDIDATE,
    cluster_for_update=GET_CLUSTER,
    verification_for_update=GET_VERIFICATION,
)

POSTGRES = DialectStatements(
    claim=_claim_update(_claimable_on_postgres(by_action=False)),
    claim_actions=_claim_update(_claimable_on_postgres(by_action=True)),
    incident_for_update=GET_INCIDENT.with_for_update(),
    latest_alert_group_for_update=LATEST_ALERT_GROUP.with_for_update(),
    maintenance_for_update=GET_MAINTENANCE.with_for_update(),
    case_for_update=GET_CASE.with_for_update(),
    linked_cases_for_update=LINKED_CASES.with_for_update(),
    next_run_at=_next_run_at_on_postgres(by_action=False),
    next_run_at_of=_next_run_at_on_postgres(by_action=True),
    remember_seen_request=postgresql.insert(seen_requests).on_conflict_do_nothing(
        index_elements=_SEEN_REQUEST_KEY
    ),
    revoke_session=postgresql.insert(revoked_sessions).on_conflict_do_nothing(
        index_elements=_REVOKED_SESSION_KEY
    ),
    remember_vendor_ref=postgresql.insert(vendor_refs).on_conflict_do_nothing(
        index_elements=_VENDOR_REF_KEY
    ),
    remember_cluster_key=postgresql.insert(cluster_keys).on_conflict_do_nothing(
        index_elements=_CLUSTER_KEY
    ),
    cluster_key_for_update=CLUSTER_KEY_VERSION.with_for_update(),
    candidate_for_update=GET_CANDIDATE.with_for_update(),
    cluster_for_update=GET_CLUSTER.with_for_update(),
    verification_for_update=GET_VERIFICATION.with_for_update(),
)

_BY_DIALECT = {"sqlite": SQLITE, "postgresql": POSTGRES}


def for_dialect(name: str) -> DialectStatements:
    """The statements of the database SQLAlchemy calls `name` ("sqlite", "postgresql")."""
    return _BY_DIALECT[name]
