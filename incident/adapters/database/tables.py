"""SQLModel tables: incidents, their timeline, planned step occurrences, the outbox and
vendor references (the last three of any kind of subject)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Index,
    LargeBinary,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel

from incident.domain.records import OccurrenceState


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on every database.

    SQLite has no time zones, so instants are stored there as naive UTC text, which also
    keeps their text order equal to their time order for range queries.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: every *_at must be timezone-aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _at(*, nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class IncidentRow(SQLModel, table=True):
    __tablename__ = "incidents"

    id: int | None = Field(default=None, primary_key=True)
    title: str
    severity: str = Field(max_length=2, index=True)
    status: str = Field(max_length=16, index=True)
    service: str = ""
    category: str = Field(default="general", max_length=20)
    impact: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    declared_at: datetime = _at(nullable=False)
    declared_by: str
    acknowledged_at: datetime | None = _at()
    acknowledged_by: str | None = None
    commander: str | None = None
    comms_lead: str | None = None
    severity_changed_at: datetime | None = _at()
    last_customer_update_at: datetime | None = _at()
    last_manual_update_at: datetime | None = _at()
    resolved_at: datetime | None = _at()
    resolution_summary: str | None = Field(default=None, sa_column=Column(Text))
    rca_due_at: datetime | None = _at()
    rca_link: str | None = None
    closed_at: datetime | None = _at()
    cancelled_at: datetime | None = _at()
    cancellation: str | None = Field(default=None, max_length=20)
    cancel_note: str | None = Field(default=None, sa_column=Column(Text))
    merged_into: int | None = None
    reopened_at: datetime | None = _at()
    changed_at: datetime | None = _at()
    war_room: str | None = Field(default=None, index=True)
    conference_url: str | None = None
    # Set by callers that may retry a declaration (API Idempotency-Key, alert group keys).
    idempotency_key: str | None = Field(default=None, unique=True, max_length=200)
    # What was declared with that key (a hash): the same key with another body is refused.
    idempotency_fingerprint: str | None = Field(default=None, max_length=64)
    # What the public status page shows: the name customers see, and the status of each
    # component the incident affects ({component id: status}).
    public_title: str | None = Field(default=None, max_length=200)
    components: dict[str, str] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}")
    )


class TimelineRow(SQLModel, table=True):
    __tablename__ = "timeline"
    __table_args__ = (
        Index("ix_timeline_incident_at", "incident_id", "at", "id"),
        # The status page's read: the few public entries among many internal ones.
        Index("ix_timeline_public", "public", "incident_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id")
    at: datetime = _at(nullable=False)
    kind: str = Field(max_length=40)
    actor: str
    text: str = Field(sa_column=Column(Text, nullable=False))
    public: bool = False  # customer-facing (shown on the status page) or internal
    step_id: str | None = None
    occurrence: int | None = None
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class StepOccurrenceRow(SQLModel, table=True):
    """One planned occurrence of one step: the durable timer."""

    __tablename__ = "step_occurrences"
    __table_args__ = (
        UniqueConstraint(
            "subject_kind", "subject_id", "step_id", "occurrence", name="uq_subject_occurrence"
        ),
        # The claim query walks this index: pending rows in run_at order.
        Index("ix_occurrence_claim", "state", "run_at"),
        # The urgent lane's claim: pages due, without walking every other due step.
        Index("ix_occurrence_claim_action", "state", "action", "run_at"),
        # One subject's occurrences in a given state (re-planning, skip, snooze, views).
        Index("ix_occurrence_subject", "subject_kind", "subject_id", "state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # Whose step it is: a subject kind ("incident", ...) and the subject's id in its own
    # table. No foreign key: the engine serves every kind, each with a table of its own.
    subject_kind: str = Field(max_length=20)
    subject_id: int
    step_id: str = Field(max_length=80)
    occurrence: int
    action: str = Field(max_length=40)
    target: str | None = None
    due_at: datetime = _at(nullable=False)  # when the playbook says it is due
    not_before: datetime | None = _at()  # snoozed, or backing off after a failure
    run_at: datetime = _at(nullable=False)  # max(due_at, not_before): when it may run
    state: str = Field(default=OccurrenceState.PENDING.value, max_length=12)
    attempts: int = 0
    lease_owner: str | None = None
    lease_expires_at: datetime | None = _at()
    started_at: datetime | None = _at()
    finished_at: datetime | None = _at()
    outcome: str | None = Field(default=None, sa_column=Column(Text))
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    approved_by: str | None = None  # who let a held occurrence go out
    approved_at: datetime | None = _at()


class FollowUpRow(SQLModel, table=True):
    """A follow-up action item of an incident's review, reminded until done."""

    __tablename__ = "follow_ups"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    title: str = Field(max_length=200)
    owner: str = Field(max_length=200)
    due_at: datetime = _at(nullable=False)
    created_at: datetime = _at(nullable=False)
    created_by: str
    done_at: datetime | None = _at()
    done_by: str | None = None


class SeenRequestRow(SQLModel, table=True):
    """A signed request already taken (a Slack command, by its signature): the same signed
    bytes sent again within their validity window are a replay, and run nothing."""

    __tablename__ = "seen_requests"

    key: str = Field(primary_key=True, max_length=100)
    at: datetime = _at(nullable=False, index=True)


class RevokedSessionRow(SQLModel, table=True):
    """A dashboard session logged out before its time: refused until it would have expired
    (a copied cookie is worth nothing after logout). Shared by every replica."""

    __tablename__ = "revoked_sessions"

    nonce: str = Field(primary_key=True, max_length=64)
    expires_at: datetime = _at(nullable=False, index=True)


class ProbeRow(SQLModel, table=True):
    """Written by the readiness check: the database takes writes (a full disk, a read-only
    mount or a lost lock all show here, not only on the next real write)."""

    __tablename__ = "probes"

    name: str = Field(primary_key=True, max_length=80)
    at: datetime = _at(nullable=False)


class OutboxRow(SQLModel, table=True):
    """An effect kept by the built-in outbox adapter: what would have been sent, rendered."""

    __tablename__ = "outbox"
    # One subject's messages (an incident's outbox view, a case's).
    __table_args__ = (Index("ix_outbox_subject", "subject_kind", "subject_id"),)

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(unique=True, max_length=300)
    # Whose message it is: a subject kind ("incident", "case", ...) and the subject's id in
    # its own table. No foreign key: every kind's messages are kept here.
    subject_kind: str = Field(max_length=20)
    subject_id: int
    created_at: datetime = _at(nullable=False)
    channel: str = Field(max_length=20)  # page, chat, email, status_page, customers
    destination: str
    subject: str = ""
    body: str = Field(sa_column=Column(Text, nullable=False))


class AlertGroupRow(SQLModel, table=True):
    """One alert group's incident: generation N of a group key is the Nth incident it caused.

    Unique on (source, key hash, generation): two deliveries of the same new group cannot
    both declare, whichever process takes them.
    """

    __tablename__ = "alert_groups"
    __table_args__ = (UniqueConstraint("source", "key_hash", "generation", name="uq_alert_group"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=20)  # alertmanager, grafana
    key_hash: str = Field(max_length=64)  # sha256 of group_key, hex
    group_key: str = Field(sa_column=Column(Text, nullable=False))
    generation: int
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    # fingerprint -> {"state", "name", "since"}: each alert as last reported
    alerts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    firing: bool
    created_at: datetime = _at(nullable=False)
    updated_at: datetime = _at(nullable=False)


class VendorRefRow(SQLModel, table=True):
    """What a vendor calls one of our things (a Statuspage incident id, a Slack channel id,
    the Message-ID of a mail sent).

    Written once the vendor has created it, so a retried step updates instead of creating.
    """

    __tablename__ = "vendor_refs"
    __table_args__ = (
        UniqueConstraint(
            "subject_kind", "subject_id", "vendor", "name", name="uq_subject_vendor_ref"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    # Whose thing it is: a subject kind and id, as in the outbox (no foreign key).
    subject_kind: str = Field(max_length=20)
    subject_id: int
    vendor: str = Field(max_length=40)  # statuspage, slack, pagerduty
    name: str = Field(max_length=80)  # what it is, e.g. "incident", "channel"
    external_id: str = Field(max_length=200)
    created_at: datetime = _at(nullable=False)


class MaintenanceRow(SQLModel, table=True):
    """A scheduled maintenance window shown on the public status page."""

    __tablename__ = "maintenances"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    scheduled_for: datetime = _at(nullable=False, index=True)
    scheduled_until: datetime = _at(nullable=False, index=True)
    components: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    set_status: str | None = Field(default=None, max_length=20)
    created_at: datetime = _at(nullable=False)
    created_by: str
    updated_at: datetime = _at(nullable=False)


class MaintenanceUpdateRow(SQLModel, table=True):
    __tablename__ = "maintenance_updates"
    __table_args__ = (Index("ix_maintenance_updates_window", "maintenance_id", "at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    maintenance_id: int = Field(foreign_key="maintenances.id")
    at: datetime = _at(nullable=False)
    status: str = Field(max_length=20)
    body: str = Field(sa_column=Column(Text, nullable=False))


class CaseRow(SQLModel, table=True):
    """A support case (incident.domain.case.Case); its history lives in JSON columns
    (escalations, approvals) and in `case_timeline`."""

    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_queue", "status", "level"),
        Index("ix_cases_incident_id", "incident_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # One case per helpdesk ticket.
    reference: str = Field(max_length=100, unique=True)
    customer_id: str = Field(max_length=100, index=True)
    customer_email: str | None = Field(default=None, max_length=320)
    summary: str = Field(sa_column=Column(Text, nullable=False))
    plan: str = Field(max_length=20)
    priority: str = Field(max_length=2)
    status: str = Field(max_length=16)
    level: str = Field(max_length=40)
    level_entered_at: datetime | None = _at()
    opened_at: datetime = _at(nullable=False)
    opened_by: str
    contacts: int = 1
    # Amounts as decimal text: exact on every database.
    disputed_amount: str | None = Field(default=None, max_length=40)
    csr: str | None = Field(default=None, max_length=40)
    usdt_amount: str | None = Field(default=None, max_length=40)
    crypto: bool = False
    flags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    context: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    checklist: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    escalations: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    approvals: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    required_approvals: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    first_response_at: datetime | None = _at()
    last_progress_at: datetime | None = _at()
    last_customer_update_at: datetime | None = _at()
    expected_resolution_at: datetime | None = _at()
    deescalated_at: datetime | None = _at()
    resolved_at: datetime | None = _at()
    resolution: str | None = Field(default=None, sa_column=Column(Text))
    changed_at: datetime | None = _at()
    # What the case's signature groups by.
    category: str = Field(default="", max_length=100, sa_column_kwargs={"server_default": ""})
    component: str = Field(default="", max_length=100, sa_column_kwargs={"server_default": ""})
    # The incident it is linked to (no foreign key: an incident is never deleted, and the
    # link is checked by the use case), and that incident's words for its customer.
    incident_id: int | None = None
    linked_at: datetime | None = _at()
    notices: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    pending_since: datetime | None = _at()


class CaseTimelineRow(SQLModel, table=True):
    __tablename__ = "case_timeline"
    __table_args__ = (Index("ix_case_timeline_case_at", "case_id", "at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id")
    at: datetime = _at(nullable=False)
    kind: str = Field(max_length=40)
    actor: str
    text: str = Field(sa_column=Column(Text, nullable=False))
    step_id: str | None = None
    occurrence: int | None = None
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class ClusterKeyRow(SQLModel, table=True):
    """One (category, component) whose clusters are compared: locked while a case is
    assigned, so two replicas assign its cases one after the other; `version` grows with
    every assignment, so a process knows when its in-memory index of them is stale."""

    __tablename__ = "cluster_keys"

    category: str = Field(max_length=100, primary_key=True)
    component: str = Field(max_length=100, primary_key=True)
    version: int = 0


class ClusterRow(SQLModel, table=True):
    """Cases of many customers with one problem (incident.domain.patterns.Cluster)."""

    __tablename__ = "case_clusters"
    __table_args__ = (Index("ix_case_clusters_key_seen", "category", "component", "last_seen"),)

    id: int | None = Field(default=None, primary_key=True)
    category: str = Field(max_length=100)
    component: str = Field(max_length=100)
    error_codes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    text: str = Field(sa_column=Column(Text, nullable=False))  # the first case's signature
    # What the matcher keeps of its cases' words (incident.domain.clusters.ClusterEntry).
    cases: int = 1
    words: list[list[Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    first_seen: datetime = _at(nullable=False)
    last_seen: datetime = _at(nullable=False)
    status: str = Field(max_length=16)
    new: bool = False
    incident_id: int | None = None
    quiet_until: datetime | None = _at()


class ClusterMemberRow(SQLModel, table=True):
    """A case in a cluster: at most one cluster per case (the unique case_id)."""

    __tablename__ = "case_cluster_members"
    __table_args__ = (Index("ix_case_cluster_members_cluster", "cluster_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    cluster_id: int = Field(foreign_key="case_clusters.id")
    case_id: int = Field(foreign_key="cases.id", unique=True)
    customer_id: str = Field(max_length=100)
    plan: str = Field(max_length=20)
    at: datetime = _at(nullable=False)


class CandidateRow(SQLModel, table=True):
    """An incident proposed from a cluster: one per cluster (the unique cluster_id), so two
    replicas never propose the same one twice."""

    __tablename__ = "incident_candidates"
    __table_args__ = (Index("ix_incident_candidates_status", "status", "proposed_at"),)

    id: int | None = Field(default=None, primary_key=True)
    cluster_id: int = Field(foreign_key="case_clusters.id", unique=True)
    proposed_at: datetime = _at(nullable=False)
    severity: str = Field(max_length=2)
    reason: str = Field(max_length=200)
    customers: int
    weighted: float
    status: str = Field(max_length=16)
    decided_by: str | None = None
    decided_at: datetime | None = _at()
    note: str | None = Field(default=None, sa_column=Column(Text))
    incident_id: int | None = None


class VerificationRow(SQLModel, table=True):
    """An account-ownership verification (incident.domain.verification.Verification); its
    proofs, approvals and decision as JSON, the files' bytes in `verification_files`."""

    __tablename__ = "verifications"
    __table_args__ = (Index("ix_verifications_queue", "status", "opened_at"),)

    id: int | None = Field(default=None, primary_key=True)
    reference: str = Field(max_length=100, unique=True)  # one per helpdesk ticket
    customer_id: str = Field(max_length=100, index=True)
    case_id: int | None = None
    account_value: str = Field(max_length=40)  # decimal text: exact on every database
    state: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    need: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    opened_at: datetime = _at(nullable=False)
    opened_by: str
    two_managers: bool = False
    status: str = Field(max_length=32)
    proofs: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    collected_by: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    proof_complete_at: datetime | None = _at()
    approvals: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    decision: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    reminders_sent: int = 0
    last_reminder_at: datetime | None = _at()
    final_notice_at: datetime | None = _at()
    closed_at: datetime | None = _at()
    changed_at: datetime | None = _at()


class VerificationFileRow(SQLModel, table=True):
    """A proof file's bytes, by content hash; `data` emptied when purged (the hash, type and
    size stay with the proof for the record)."""

    __tablename__ = "verification_files"
    __table_args__ = (UniqueConstraint("verification_id", "sha256", name="uq_verification_file"),)

    id: int | None = Field(default=None, primary_key=True)
    verification_id: int = Field(foreign_key="verifications.id")
    sha256: str = Field(max_length=64)
    content_type: str = Field(max_length=100)
    size: int
    data: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    stored_at: datetime = _at(nullable=False)
    purged_at: datetime | None = _at()


class VerificationTimelineRow(SQLModel, table=True):
    __tablename__ = "verification_timeline"
    __table_args__ = (Index("ix_verification_timeline_at", "verification_id", "at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    verification_id: int = Field(foreign_key="verifications.id")
    at: datetime = _at(nullable=False)
    kind: str = Field(max_length=40)
    actor: str
    text: str = Field(sa_column=Column(Text, nullable=False))
    step_id: str | None = None
    occurrence: int | None = None
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


# Every table above: what migrations compare the database with.
metadata = SQLModel.metadata
