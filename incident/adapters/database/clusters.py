"""Clusters of cases and the incidents proposed from them: the part of a transaction
(`SqlTransaction`) that keeps them. A cluster's signature is stored as its parts (text,
category, component, error codes); its members and its one candidate in their own tables."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from incident.adapters.database import statements as sql
from incident.adapters.database.executors import TransactionRows
from incident.domain.case import Plan
from incident.domain.errors import NotFound
from incident.domain.lifecycle import Severity
from incident.domain.patterns import (
    Candidate,
    CandidateStatus,
    Cluster,
    ClusterStatus,
    Member,
)
from incident.domain.signatures import Signature

EVER = datetime.min.replace(tzinfo=UTC)  # "since" that leaves nothing out


class ClusterRows(TransactionRows):
    """Clusters, their members and candidates, in one transaction (see `SqlTransaction`)."""

    def lock_cluster_key(self, key: tuple[str, str]) -> int:
        """Lock the clusters of (category, component) until the transaction ends (made the
        first time); their version, which grows with every change to them."""
        params = {"b_category": key[0], "b_component": key[1]}
        self._connection.execute(
            self._dialect.remember_cluster_key,
            {"category": key[0], "component": key[1], "version": 0},
        )
        return int(self._execute.rows(self._dialect.cluster_key_for_update, params)[0].version)

    def set_cluster_key_version(self, key: tuple[str, str], version: int) -> None:
        self._execute.rows(
            sql.BUMP_CLUSTER_KEY,
            {"b_category": key[0], "b_component": key[1], "b_version": version},
        )

    def clusters_of_key(self, key: tuple[str, str], *, seen_since: datetime) -> list[Cluster]:
        params = {"b_category": key[0], "b_component": key[1], "b_since": seen_since}
        return [_cluster(r) for r in self._execute.rows(sql.CLUSTERS_OF_KEY, params)]

    def add_cluster(self, cluster: Cluster) -> int:
        cluster.id = self._execute.insert(sql.INSERT_CLUSTER, _cluster_values(cluster))
        return cluster.id

    def get_cluster(self, cluster_id: int, *, lock: bool = False) -> Cluster:
        query = self._dialect.cluster_for_update if lock else sql.GET_CLUSTER
        rows = self._execute.rows(query, {"b_id": cluster_id})
        if not rows:
            raise NotFound(f"there is no cluster {cluster_id}")
        return _cluster(rows[0])

    def save_cluster(self, cluster: Cluster) -> None:
        assert cluster.id is not None
        self._execute.rows(sql.UPDATE_CLUSTER, {**_cluster_values(cluster), "b_id": cluster.id})

    def add_cluster_member(self, cluster_id: int, member: Member) -> None:
        self._execute.insert(
            sql.INSERT_CLUSTER_MEMBER,
            {
                "cluster_id": cluster_id,
                "case_id": member.case_id,
                "customer_id": member.customer_id,
                "plan": member.plan.value,
                "at": member.at,
            },
        )

    def cluster_of_case(self, case_id: int) -> int | None:
        rows = self._execute.rows(sql.CLUSTER_OF_CASE, {"b_case": case_id})
        return int(rows[0].cluster_id) if rows else None

    def cluster_members(self, cluster_id: int, *, since: datetime = EVER) -> list[Member]:
        """Its cases in the order they joined (those that joined since `since`)."""
        params = {"b_id": cluster_id, "b_since": since}
        return [
            Member(r.case_id, r.customer_id, Plan(r.plan), r.at)
            for r in self._execute.rows(sql.MEMBERS_OF_CLUSTER, params)
        ]

    def alert_groups_on(self, component: str, *, since: datetime) -> int:
        """Alert groups firing since `since` whose incident is on `component`."""
        if not component:
            return 0
        rows = self._execute.rows(sql.ALERT_GROUPS_ON, {"b_component": component, "b_since": since})
        return int(rows[0][0])

    def add_candidate(self, candidate: Candidate) -> int | None:
        """Store a new candidate; None (nothing stored) when its cluster has one already."""
        if self._execute.rows(sql.CANDIDATE_OF_CLUSTER, {"b_id": candidate.cluster_id}):
            return None
        candidate.id = self._execute.insert(sql.INSERT_CANDIDATE, _candidate_values(candidate))
        return candidate.id

    def get_candidate(self, candidate_id: int, *, lock: bool = False) -> Candidate:
        query = self._dialect.candidate_for_update if lock else sql.GET_CANDIDATE
        rows = self._execute.rows(query, {"b_id": candidate_id})
        if not rows:
            raise NotFound(f"there is no candidate {candidate_id} (CAND-{candidate_id})")
        return _candidate(rows[0])

    def candidate_of_cluster(self, cluster_id: int) -> Candidate | None:
        rows = self._execute.rows(sql.CANDIDATE_OF_CLUSTER, {"b_id": cluster_id})
        return _candidate(rows[0]) if rows else None

    def save_candidate(self, candidate: Candidate) -> None:
        assert candidate.id is not None
        values = {**_candidate_values(candidate), "b_id": candidate.id}
        self._execute.rows(sql.UPDATE_CANDIDATE, values)

    def list_candidates(
        self, *, statuses: tuple[CandidateStatus, ...] = (), limit: int = 100
    ) -> list[Candidate]:
        """Newest first."""
        query = select(sql.candidates).order_by(
            sql.candidates.c.proposed_at.desc(), sql.candidates.c.id.desc()
        )
        if statuses:
            query = query.where(sql.candidates.c.status.in_([s.value for s in statuses]))
        return [_candidate(r) for r in self._connection.execute(query.limit(limit))]


def _cluster_values(cluster: Cluster) -> dict[str, Any]:
    sig = cluster.signature
    return {
        "category": sig.category,
        "component": sig.component,
        "error_codes": list(sig.error_codes),
        "text": sig.text,
        "cases": cluster.cases,
        "words": [[word, count] for word, count in cluster.words],
        "first_seen": cluster.first_seen,
        "last_seen": cluster.last_seen,
        "status": cluster.status.value,
        "new": cluster.new,
        "incident_id": cluster.incident_id,
        "quiet_until": cluster.quiet_until,
    }


def _cluster(row: Any) -> Cluster:
    return Cluster(
        id=row.id,
        signature=Signature(
            text=row.text,
            category=row.category,
            component=row.component,
            error_codes=tuple(row.error_codes),
        ),
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        cases=row.cases,
        words=tuple((str(word), int(count)) for word, count in row.words),
        status=ClusterStatus(row.status),
        new=bool(row.new),
        incident_id=row.incident_id,
        quiet_until=row.quiet_until,
    )


def _candidate_values(c: Candidate) -> dict[str, Any]:
    return {
        "cluster_id": c.cluster_id,
        "proposed_at": c.proposed_at,
        "severity": c.severity.value,
        "reason": c.reason,
        "customers": c.customers,
        "weighted": c.weighted,
        "status": c.status.value,
        "decided_by": c.decided_by,
        "decided_at": c.decided_at,
        "note": c.note,
        "incident_id": c.incident_id,
    }


def _candidate(row: Any) -> Candidate:
    return Candidate(
        id=row.id,
        cluster_id=row.cluster_id,
        proposed_at=row.proposed_at,
        severity=Severity(row.severity),
        reason=row.reason,
        customers=row.customers,
        weighted=float(row.weighted),
        status=CandidateStatus(row.status),
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        note=row.note,
        incident_id=row.incident_id,
    )
