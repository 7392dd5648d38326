"""Ports: what the use cases need from the outside world, in domain words."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar, runtime_checkable

from incident.domain.alerts import AlertGroup
from incident.domain.case import Case, CaseStatus
from incident.domain.case_routing import Level
from incident.domain.follow_ups import FollowUp
from incident.domain.incident import Incident, Severity, Status
from incident.domain.patterns import Candidate, CandidateStatus, Cluster, Member
from incident.domain.planning import PlannedOccurrence, StepHistory
from incident.domain.records import (
    Occurrence,
    OccurrenceState,
    PlanChange,
    SubjectRef,
    TimelineEntry,
)
from incident.domain.status_page import Maintenance
from incident.domain.verification import Verification, VerificationStatus
from incident.domain.verification_proof import FileProof


@dataclass(frozen=True)
class WarRoom:
    channel: str
    conference_url: str | None = None


# --- what a vendor call can end in ----------------------------------------------------------


class VendorError(Exception):
    """A vendor call that did not take effect. The text names the vendor, the operation and
    the reason; it never contains a credential (routing key or API token)."""

    def __init__(self, vendor: str, reason: str) -> None:
        super().__init__(f"{vendor}: {reason}")
        self.vendor = vendor
        self.reason = reason


class VendorUnavailable(VendorError):
    """The vendor could not be reached or kept failing (429, 5xx, timeouts, refused or
    dropped connections, malformed answers) within this call's bounded retries. Transient:
    retry later. `retry_after`: seconds the vendor asked us to wait, when it said so."""

    def __init__(self, vendor: str, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(vendor, reason)
        self.retry_after = retry_after


class VendorRejected(VendorError):
    """The vendor refused the request itself (bad credentials, an invalid event, an unknown
    id): sending it again will not help until the configuration or the request is fixed."""


def failed_together(vendor: str, reason: str, failures: Sequence[VendorError]) -> VendorError:
    """Several failures of one call (a destination each) as one error saying them all:
    unavailable if any may pass later (waiting for the longest Retry-After any asked),
    else rejected. Every adapter that tries each destination raises through this."""
    unavailable = [e for e in failures if isinstance(e, VendorUnavailable)]
    if unavailable:
        waits = [e.retry_after for e in unavailable if e.retry_after is not None]
        return VendorUnavailable(vendor, reason, retry_after=max(waits, default=None))
    return VendorRejected(vendor, reason)


def each_said(failures: Sequence[tuple[str, VendorError]]) -> str:
    """`email:a@b: refused; email:c@d: timed out`: which destination failed, and why."""
    return "; ".join(f"{destination}: {error.reason}" for destination, error in failures)


@dataclass(frozen=True)
class OnCall:
    """Someone on call right now: whom the war room names and invites."""

    name: str
    email: str
    escalation_level: int  # 1 is the first to be paged


class Pager(Protocol):
    async def page(self, *, incident: Incident, tier: str, summary: str, key: str) -> str:
        """Page the on-call of `tier`. Sending twice with one `key` pages once."""
        ...

    async def acknowledge(self, *, incident: Incident, key: str) -> None:
        """Mark every page of the incident acknowledged (re-paging stops at the vendor too).
        Nothing is sent when the incident never paged."""
        ...

    async def resolve(self, *, incident: Incident, key: str) -> None:
        """Resolve every page of the incident. Nothing is sent when it never paged."""
        ...

    async def on_call(self, *, tier: str) -> Sequence[OnCall]:
        """Who is on call for `tier` now (none when the pager cannot tell)."""
        ...


class Chat(Protocol):
    async def open_war_room(
        self, *, incident: Incident, key: str, greeting: str, people: Sequence[str] = ()
    ) -> WarRoom:
        """Open (or find, when retried) the incident's war room, with its commander and
        `people` (e-mail addresses of the on-call responders) invited, and `greeting`
        posted once and pinned: the one message that says what the incident is, who runs
        it, where to find things and what happens next."""
        ...

    async def post(self, *, incident: Incident, text: str, key: str) -> None:
        """Post to the incident's war room."""
        ...

    async def refresh_war_room(self, *, incident: Incident, key: str, greeting: str) -> None:
        """Bring the war room up to date with the incident: its greeting edited in place to
        `greeting` (never posted again), its topic (severity, status, commander) and the
        commander invited. Nothing when there is no war room."""
        ...


class Notifier(Protocol):
    """Audiences' notices about an incident (`Messenger` is the same for any subject)."""

    async def notify(
        self,
        *,
        incident: Incident,
        audience: str,
        destinations: Sequence[str],
        subject: str,
        body: str,
        key: str,
    ) -> None: ...


@dataclass(frozen=True)
class Topic:
    """What a message is about, for the adapters that keep, thread or de-duplicate messages:
    its subject, and the instant it began (part of stable Message-IDs)."""

    subject: SubjectRef
    began_at: datetime
    label: str  # how people name it: "INC-7", "CASE-12"

    @classmethod
    def incident(cls, incident: Incident) -> Topic:
        """A stored incident's: INC-7, declared at its declaration."""
        if incident.id is None:
            raise ValueError("the incident must be stored (have an id) before it is notified")
        return cls(SubjectRef.incident(incident.id), incident.declared_at, incident.ref)


@runtime_checkable
class Messenger(Protocol):
    """Messages about any kind of subject (an incident, a support case ...), by the same
    adapters as incidents' notices: the outbox, e-mail."""

    async def send(
        self,
        *,
        about: Topic,
        audience: str,
        destinations: Sequence[str],
        subject: str,
        body: str,
        key: str,
    ) -> None:
        """Send one message to each destination once per `key` (email:addr, chat:#channel, ...)."""
        ...


class Board(Protocol):
    """A message kept up to date: one per `key`, edited in place as its subject changes (a
    verification case's status, the proof asked for and received ...), never posted again."""

    async def show(self, *, about: Topic, destination: str, text: str, key: str) -> None:
        """Make the message of `key` at `destination` (`chat:#channel`) say `text`: posted
        by the first call for `key`, edited in place by every later one (nothing sent when
        it says `text` already, as far as the adapter knows). A retry after a crash anywhere
        in a call leaves one message, not two."""
        ...


class AccountSystem(Protocol):
    """Whoever changes customers' accounts: told what to change (an account-ownership
    decision's instruction), as a task people see and, when configured, a signed webhook."""

    async def instruct(self, *, about: Topic, instruction: Mapping[str, object], key: str) -> None:
        """Hand over `instruction` (JSON-able) about `about` once per `key`: a retried call
        delivers it again under the same key, which the receiver recognises."""
        ...


class StatusPage(Protocol):
    async def publish(self, *, incident: Incident, status: Status, body: str, key: str) -> None:
        """Show the incident on the public status page with this status and text."""
        ...

    async def withdraw(self, *, incident: Incident, body: str, key: str) -> None:
        """The incident was cancelled (a false alarm ...): take it off the status page, or
        mark it resolved with no impact and `body` as its last word, as configured.
        Nothing when it was never published."""
        ...


class CustomerComms(Protocol):
    """Updates to an incident's customers. Not `send`: the outbox serves this port and
    Messenger both."""

    async def update_customers(
        self, *, incident: Incident, subject: str, body: str, key: str
    ) -> None: ...


class Renderer(Protocol):
    def render(self, template: str, context: Mapping[str, Any]) -> str: ...


@dataclass(frozen=True)
class Effects:
    """Every port a step may act through."""

    pager: Pager
    chat: Chat
    notifier: Notifier
    status_page: StatusPage
    customers: CustomerComms
    renderer: Renderer
    board: Board  # messages kept up to date (a verification case's, in a management channel)
    accounts: AccountSystem  # instructions for whoever changes customers' accounts
    # Where the commander hears that a step gave up when `chat` itself is what fails.
    fallback_chat: Chat | None = None


class StepShape(Protocol):
    """What is stored of a step with each of its occurrences (a playbook's `Step`)."""

    @property
    def action(self) -> str: ...
    @property
    def target(self) -> str | None: ...


class Transaction(Protocol):
    """What a unit of work can do. Synchronous: a whole unit of work runs in one go, in one
    database transaction, off the event loop (see adapters/database/databases.py)."""

    def add_incident(
        self, incident: Incident, *, idempotency_key: str | None, fingerprint: str | None = None
    ) -> int:
        """Store a new incident; with a key, also `fingerprint`: what was declared with it."""
        ...

    def get_incident(self, incident_id: int, *, lock: bool = False) -> Incident: ...
    def find_incident_by_key(self, idempotency_key: str) -> tuple[Incident, str | None] | None:
        """The incident declared with this key, and the fingerprint it was declared with."""
        ...

    def find_incident_by_war_room(self, rooms: Sequence[str]) -> Incident | None:
        """The incident whose war room is one of `rooms` (channel ids or names)."""
        ...

    def save_incident(self, incident: Incident) -> None: ...
    def list_incidents(
        self,
        *,
        statuses: Sequence[Status] = (),
        severities: Sequence[Severity] = (),
        search: str = "",
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Incident]:
        """Newest first. `search`: only those whose title contains it (case-insensitive,
        `%` and `_` literal) or that it names (`INC-12`, `12`); `limit` and `offset` page
        through them, all decided by the database."""
        ...

    def open_counts(self) -> dict[Severity, tuple[int, int]]:
        """Open incidents by severity: (how many, how many not acknowledged)."""
        ...

    def open_incidents_page(self, *, limit: int, offset: int) -> list[Incident]:
        """Open incidents, P1 first, the unacknowledged first, then the longest-running."""
        ...

    def upcoming_of(self, incident_ids: Sequence[int]) -> dict[int, list[Occurrence]]:
        """The pending, running and held occurrences of these incidents, soonest first."""
        ...

    def change_version(self) -> int:
        """Grows with every change to any incident (its newest timeline entry)."""
        ...

    def append_timeline(self, incident_id: int, entries: Sequence[TimelineEntry]) -> None: ...
    def timeline(self, incident_id: int) -> list[TimelineEntry]: ...
    def public_incidents(self, *, since: datetime) -> list[tuple[Incident, list[TimelineEntry]]]:
        """Incidents with any public entry, open or resolved since `since`, newest first,
        each with its public entries in time order."""
        ...

    def add_maintenance(self, maintenance: Maintenance) -> int: ...
    def get_maintenance(self, maintenance_id: int, *, lock: bool = False) -> Maintenance: ...
    def save_maintenance(self, maintenance: Maintenance) -> None:
        """Save its fields and any updates not stored yet."""
        ...

    def maintenances(self, *, since: datetime) -> list[Maintenance]:
        """Windows ending at or after `since`, soonest first, with their updates."""
        ...

    # Support cases (incident.domain.case) and their timeline.
    def add_case(self, case: Case) -> int:
        """Store a new case; Conflict when its ticket reference has a case already."""
        ...

    def get_case(self, case_id: int, *, lock: bool = False) -> Case: ...
    def find_case(self, reference: str) -> Case | None: ...
    def save_case(self, case: Case) -> None: ...
    def list_cases(
        self,
        *,
        statuses: Sequence[CaseStatus] = (),
        levels: Sequence[Level] = (),
        customer_id: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Case]:
        """The longest-open first."""
        ...

    def open_case_counts(self) -> dict[Level, int]: ...
    def cases_linked_to(
        self, incident_id: int, *, statuses: Sequence[CaseStatus] = (), lock: bool = False
    ) -> list[Case]:
        """The cases linked to an incident (of these statuses), by id; `lock`: for update."""
        ...

    def append_case_timeline(self, case_id: int, entries: Sequence[TimelineEntry]) -> None: ...
    def case_timeline(self, case_id: int) -> list[TimelineEntry]: ...

    # Clusters of cases (incident.domain.patterns) and the incidents proposed from them.
    def lock_cluster_key(self, key: tuple[str, str]) -> int:
        """Lock the clusters of (category, component) for this transaction; their version."""
        ...

    def set_cluster_key_version(self, key: tuple[str, str], version: int) -> None: ...
    def clusters_of_key(self, key: tuple[str, str], *, seen_since: datetime) -> list[Cluster]: ...
    def add_cluster(self, cluster: Cluster) -> int: ...
    def get_cluster(self, cluster_id: int, *, lock: bool = False) -> Cluster: ...
    def save_cluster(self, cluster: Cluster) -> None: ...
    def add_cluster_member(self, cluster_id: int, member: Member) -> None: ...
    def cluster_of_case(self, case_id: int) -> int | None: ...
    def cluster_members(self, cluster_id: int, *, since: datetime = ...) -> list[Member]:
        """Its cases in the order they joined (those that joined since `since`)."""
        ...

    def alert_groups_on(self, component: str, *, since: datetime) -> int:
        """Alert groups firing since `since` whose incident is on `component`."""
        ...

    def add_candidate(self, candidate: Candidate) -> int | None:
        """Store a new candidate; None (nothing stored) when its cluster has one already."""
        ...

    def get_candidate(self, candidate_id: int, *, lock: bool = False) -> Candidate: ...
    def candidate_of_cluster(self, cluster_id: int) -> Candidate | None: ...
    def save_candidate(self, candidate: Candidate) -> None: ...
    def list_candidates(
        self, *, statuses: tuple[CandidateStatus, ...] = (), limit: int = 100
    ) -> list[Candidate]:
        """Newest first."""
        ...

    # Account-ownership verifications (incident.domain.verification) and their proof files.
    def add_verification(self, verification: Verification) -> int:
        """Store a new verification; Conflict when its ticket has one already."""
        ...

    def get_verification(self, verification_id: int, *, lock: bool = False) -> Verification: ...
    def save_verification(self, verification: Verification) -> None: ...
    def list_verifications(
        self, *, statuses: Sequence[VerificationStatus] = (), limit: int = 100
    ) -> list[Verification]:
        """The longest-waiting first."""
        ...

    def store_proof_file(
        self, verification_id: int, proof: FileProof, data: bytes, *, at: datetime
    ) -> None:
        """Keep a proof file's bytes under its content hash (once per verification)."""
        ...

    def proof_file(self, verification_id: int, sha256: str) -> bytes | None:
        """A proof file's bytes; None once purged (or never stored)."""
        ...

    def purge_proof_files(self, verification_id: int, *, now: datetime) -> None: ...
    def append_verification_timeline(
        self, verification_id: int, entries: Sequence[TimelineEntry]
    ) -> None: ...
    def verification_timeline(self, verification_id: int) -> list[TimelineEntry]: ...

    # Step occurrences, of any kind of subject (`SubjectRef`: incident 7, case 12, ...).
    def step_history(self, subject: SubjectRef) -> dict[str, StepHistory]: ...
    def reconcile(
        self,
        subject: SubjectRef,
        planned: Sequence[PlannedOccurrence],
        steps: Mapping[str, StepShape],
        *,
        now: datetime,
        new: bool = False,
    ) -> PlanChange:
        """Make the subject's pending occurrences match `planned` (`steps`: each planned
        step's action and target, by step id); `new`: the subject has none yet."""
        ...

    def occurrences(
        self, subject: SubjectRef, *, states: Sequence[OccurrenceState] = ()
    ) -> list[Occurrence]: ...
    def get_occurrence(self, occurrence_id: int) -> Occurrence: ...
    def finish_occurrence(
        self,
        occurrence_id: int,
        *,
        state: str,
        now: datetime,
        outcome: str,
        error: str | None = None,
    ) -> None: ...
    def retry_occurrence(self, occurrence_id: int, *, not_before: datetime, error: str) -> None: ...
    def hold_occurrence(self, occurrence_id: int, *, now: datetime, reason: str) -> None:
        """Park a claimed occurrence until a person approves it (`approve_occurrence`)."""
        ...

    def approve_occurrence(self, occurrence_id: int, *, by: str, now: datetime) -> None:
        """Let an occurrence go out: a held one runs now, a pending one when due."""
        ...

    def add_follow_up(self, item: FollowUp) -> int: ...
    def get_follow_up(self, incident_id: int, follow_up_id: int) -> FollowUp: ...
    def save_follow_up(self, item: FollowUp) -> None: ...
    def follow_ups(self, incident_id: int) -> list[FollowUp]: ...
    def first_sighting(self, key: str, *, now: datetime, forget_before: datetime) -> bool:
        """Whether `key` (a signed request) is seen for the first time; keys seen before
        `forget_before` are forgotten."""
        ...

    def revoke_session(self, nonce: str, *, expires_at: datetime, now: datetime) -> None:
        """Refuse a dashboard session from now until `expires_at` (forgetting the ones
        revoked earlier that have expired by `now`)."""
        ...

    def session_revoked(self, nonce: str) -> bool: ...

    def probe_write(self, *, name: str, now: datetime) -> None:
        """Write one small row: whether the database takes writes at all."""
        ...

    def move_alert_groups(self, from_incident: int, to_incident: int) -> int:
        """Alert groups of one incident now belong to another (a merged duplicate's)."""
        ...

    def snooze_occurrence(self, occurrence_id: int, *, until: datetime) -> None: ...

    def claim_due(
        self,
        *,
        now: datetime,
        owner: str,
        lease_until: datetime,
        limit: int,
        actions: Sequence[str] = (),
    ) -> list[Occurrence]:
        """Claim up to `limit` runnable occurrences, oldest `run_at` first, for `owner`
        (only of these `actions`, when given)."""
        ...

    def release_claims(
        self, *, owner: str | None = None, occurrence_ids: Sequence[int] | None = None
    ) -> int:
        """Hand running occurrences back (all of them, or one owner's, or these of one
        owner's) to be run again."""
        ...

    def next_run_at(self, *, actions: Sequence[str] = ()) -> datetime | None: ...

    def find_alert_group(
        self, source: str, key_hash: str, *, lock: bool = False
    ) -> tuple[AlertGroup, Incident] | None:
        """The latest generation of an alert group and its incident, if any (`lock`: both
        for update)."""
        ...

    def add_alert_group(self, group: AlertGroup) -> None:
        """Store a new generation; Conflict if another delivery stored it first (the caller's
        transaction is then spoiled: let the Conflict end it)."""
        ...

    def save_alert_group(self, group: AlertGroup) -> None: ...


T = TypeVar("T")


class IncidentFollower(Protocol):
    """Told, inside the unit of work that changed an incident, what happened to it (the
    cases linked to it hear its customer-facing words there, in the same transaction)."""

    def incident_changed(
        self, tx: Transaction, incident: Incident, events: Sequence[object], now: datetime
    ) -> None: ...


class Store(Protocol):
    """Durable state. Time is always passed in (`now`), never read from the database."""

    async def run(
        self, work: Callable[[Transaction], T], *, durable: bool = True, urgent: bool = False
    ) -> T:
        """Run `work` as one transaction: committed if it returns, rolled back if it raises.

        `durable=False`: the commit may be lost in a power cut (not in a crash); only for
        work that is harmless to redo, such as claiming occurrences. `urgent`: ahead of
        other waiting work (declarations, pages), where the store queues work.
        """
        ...

    async def read(self, work: Callable[[Transaction], T]) -> T:
        """Run `work`, which only reads, as one read-only transaction: it sees what was
        committed before it began, and waits for no writer (not for another process
        holding SQLite's write lock either, as GET requests must not). A write in it fails.
        """
        ...


class KeptMessage(Protocol):
    """An effect the outbox kept about an incident: the rendered message and where it was
    addressed."""

    @property
    def idempotency_key(self) -> str: ...
    @property
    def incident_id(self) -> int: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def channel(self) -> str: ...
    @property
    def destination(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def body(self) -> str: ...


class OutboxReader(Protocol):
    async def messages(
        self, *, incident_id: int | None = None, limit: int | None = None
    ) -> Sequence[KeptMessage]:
        """The kept messages about incidents (one incident's, with `incident_id`), oldest
        first (`limit`: only the newest this many)."""
        ...
