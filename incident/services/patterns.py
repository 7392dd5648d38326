"""Patterns across cases: each new case joins the cluster of reports it matches (or starts
one), and a cluster that reaches its trigger proposes an incident candidate, posted to the
patterns channel and shown on the dashboard. A person declares it (an incident declared,
or an open one chosen, and every case of the cluster linked to it) or dismisses it with a
reason, which quiets that signature for a while. Nothing is declared without a person.

Assignment runs as a step of the case (`compare-reports`, action `cluster`), after its
opening, on the engine: intake stays fast, and a case is clustered exactly once even across
crashes (its membership is unique). Two replicas assign the cases of one (category,
component) one after the other: the key's row is locked for the transaction. Each process
keeps an index of each key's clusters in memory (`ClusterIndex`, so a case is compared with
a few clusters, not all open cases); the key's version, bumped with every change, tells a
process its index is stale (another replica changed it, or a transaction rolled back), and
then it is read again from the database: clusters survive a restart by being rebuilt from it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from incident.domain.access import Action, Actor, actor_name, authorized
from incident.domain.case import Case, CaseStatus
from incident.domain.clusters import (
    ClusterEntry,
    ClusterIndex,
    ClusterRules,
    new_cluster,
    similarity,
)
from incident.domain.errors import IllegalTransition
from incident.domain.incident import Incident
from incident.domain.lifecycle import Severity
from incident.domain.patterns import (
    Candidate,
    CandidateStatus,
    Cluster,
    ClusterStatus,
    Member,
    PatternRules,
    suggest,
    weigh,
)
from incident.domain.planning import PlannedOccurrence
from incident.domain.records import SubjectRef
from incident.domain.signatures import Signature, signature
from incident.services import incidents as inc
from incident.services.candidate_steps import CANDIDATE, POST, REMIND, STEPS, Evidence, evidence
from incident.services.case_links import link_within
from incident.services.cases import Support, replan_case
from incident.services.ports import Transaction

log = logging.getLogger("incident.patterns")

LIVE = (ClusterStatus.OPEN, ClusterStatus.PROPOSED, ClusterStatus.DECLARED)


def candidate_ref(candidate_id: int) -> SubjectRef:
    return SubjectRef(CANDIDATE, candidate_id)


def case_signature(case: Case) -> Signature:
    """What a case is compared by: its summary, masked, with its category and component."""
    return signature(case.summary, category=case.category, component=case.component)


@dataclass
class _KeyIndex:
    """One (category, component)'s clusters in memory, as of `version` of its key."""

    version: int
    index: ClusterIndex
    clusters: dict[int, Cluster] = field(default_factory=dict)


@dataclass(frozen=True)
class Assignment:
    cluster: Cluster
    joined: bool  # False: the case started it
    candidate: Candidate | None  # proposed by this assignment
    linked_to: int | None = None  # the incident the case was linked to (a declared cluster)


def _entry(cluster: Cluster) -> ClusterEntry:
    """The cluster as the matcher knows it."""
    assert cluster.id is not None
    return ClusterEntry(
        id=cluster.id,
        signature=cluster.signature,
        first_seen=cluster.first_seen,
        last_seen=cluster.last_seen,
        open=cluster.status in LIVE,
        cases=cluster.cases,
        words=cluster.words,
    )


def _kept(cluster: Cluster, entry: ClusterEntry) -> None:
    """What the matcher made of the cluster's words, kept on it (to be stored)."""
    cluster.last_seen, cluster.cases, cluster.words = entry.last_seen, entry.cases, entry.words


@dataclass
class Patterns:
    """What clustering works with. Built once by bootstrap."""

    support: Support
    rules: PatternRules
    _keys: dict[tuple[str, str], _KeyIndex] = field(default_factory=dict)

    @property
    def _cluster_rules(self) -> ClusterRules:
        rules = self.rules
        return ClusterRules(rules.threshold, rules.join_window, rules.novelty_window)

    # --- assignment ----------------------------------------------------------------------

    def assign(self, tx: Transaction, case: Case, now: datetime) -> Assignment:
        """Put the case in its cluster (once: again, it answers what was done), then see
        whether the cluster reaches its trigger."""
        assert case.id is not None
        known = tx.cluster_of_case(case.id)
        if known is not None:
            return Assignment(tx.get_cluster(known), joined=True, candidate=None)
        sig = case_signature(case)
        key = sig.key()
        version = tx.lock_cluster_key(key)
        held = self._index(tx, key, version, now)
        cluster = self._match(held, sig, now)
        joined = cluster is not None
        if cluster is None:
            started = new_cluster(0, sig, now)
            cluster = Cluster(sig, now, now, new=not held.index.seen_before(sig, now))
            _kept(cluster, started)
            tx.add_cluster(cluster)
            held.index.add(_entry(cluster))
        else:
            assert cluster.id is not None
            _kept(cluster, held.index.join(cluster.id, sig, now))
            tx.save_cluster(cluster)
        assert cluster.id is not None
        held.clusters[cluster.id] = cluster
        tx.add_cluster_member(cluster.id, Member(case.id, case.customer_id, case.plan, now))
        held.version = version + 1
        tx.set_cluster_key_version(key, held.version)
        candidate = (
            self._propose(tx, cluster, now) if cluster.status is ClusterStatus.OPEN else None
        )
        linked = self._link_declared(tx, cluster, case, now)
        return Assignment(cluster, joined, candidate, linked)

    def _index(
        self, tx: Transaction, key: tuple[str, str], version: int, now: datetime
    ) -> _KeyIndex:
        """The key's clusters in memory, read again when another process (or a transaction
        rolled back) changed them since: the version says so."""
        held = self._keys.get(key)
        if held is None or held.version != version:
            since = now - max(self.rules.join_window, self.rules.novelty_window)
            clusters = tx.clusters_of_key(key, seen_since=since)
            held = _KeyIndex(version, ClusterIndex(self._cluster_rules))
            held.index.load(_entry(c) for c in clusters)
            held.clusters = {c.id: c for c in clusters if c.id is not None}
            self._keys[key] = held
        return held

    def _match(self, held: _KeyIndex, sig: Signature, now: datetime) -> Cluster | None:
        """The live cluster the index finds; else a dismissed one still quiet that the
        signature matches (its reports keep joining it, proposing nothing)."""
        found = held.index.match(sig, now)
        if found is not None:
            return held.clusters[found]
        quiet = [(similarity(sig, c.signature), c) for c in held.clusters.values() if c.quiet(now)]
        best = max(quiet, key=lambda pair: pair[0], default=None)
        return best[1] if best is not None and best[0] >= self.rules.threshold else None

    def _propose(self, tx: Transaction, cluster: Cluster, now: datetime) -> Candidate | None:
        assert cluster.id is not None
        since = now - self.rules.trigger_window
        alerts = tx.alert_groups_on(cluster.signature.component, since=since)
        recent = tx.cluster_members(cluster.id, since=since)  # only these count
        weight = weigh(recent, alert_groups=alerts, rules=self.rules, now=now)
        if not weight.reaches(self.rules):
            return None
        severity, reason = suggest(weight, self.rules)
        candidate = Candidate(
            cluster_id=cluster.id,
            proposed_at=now,
            severity=severity,
            reason=reason,
            customers=weight.customers,
            weighted=weight.weighted,
        )
        if tx.add_candidate(candidate) is None:
            return None  # proposed already (by another replica a moment ago)
        cluster.status = ClusterStatus.PROPOSED
        tx.save_cluster(cluster)
        self.plan_candidate(tx, candidate, now)
        return candidate

    def plan_candidate(self, tx: Transaction, candidate: Candidate, now: datetime) -> None:
        """The candidate's steps: posted at once; said again once if still undecided."""
        assert candidate.id is not None
        planned = []
        if candidate.status is CandidateStatus.PROPOSED and self.rules.channel:
            planned.append(PlannedOccurrence(POST, 1, candidate.proposed_at))
            if self.rules.remind_after is not None:
                due = candidate.proposed_at + self.rules.remind_after
                planned.append(PlannedOccurrence(REMIND, 1, due))
        steps = {s.id: s for s in STEPS.values()}
        history = tx.step_history(candidate_ref(candidate.id))
        planned = [p for p in planned if not history.get(p.step_id)]
        tx.reconcile(candidate_ref(candidate.id), planned, steps, now=now)

    def _link_declared(
        self, tx: Transaction, cluster: Cluster, case: Case, now: datetime
    ) -> int | None:
        """A case joining a declared cluster is linked to its incident while it is open."""
        if cluster.status is not ClusterStatus.DECLARED or cluster.incident_id is None:
            return None
        incident = tx.get_incident(cluster.incident_id)
        if not incident.is_open or case.incident_id is not None:
            return None
        link_within(tx, self.support, case, incident, now=now, by=f"CAND cluster {cluster.id}")
        return incident.id

    # --- use cases -------------------------------------------------------------------------

    async def candidates(
        self, *, statuses: tuple[CandidateStatus, ...] = (), limit: int = 100
    ) -> list[Candidate]:
        """Newest first."""
        return await self.support.rt.store.run(
            lambda tx: tx.list_candidates(statuses=statuses, limit=limit)
        )

    async def candidates_with_clusters(
        self, *, statuses: tuple[CandidateStatus, ...] = (), limit: int = 100
    ) -> list[tuple[Candidate, Cluster]]:
        """Newest first, each with its cluster (what it is about), read together."""

        def read(tx: Transaction) -> list[tuple[Candidate, Cluster]]:
            found = tx.list_candidates(statuses=statuses, limit=limit)
            return [(c, tx.get_cluster(c.cluster_id)) for c in found]

        return await self.support.rt.store.read(read)

    async def candidate(self, candidate_id: int) -> Candidate:
        """One candidate as it is now (NotFound if there is none)."""
        return await self.support.rt.store.read(lambda tx: tx.get_candidate(candidate_id))

    async def evidence(self, candidate_id: int) -> Evidence:
        """A candidate with its cluster and cases: what a person decides on."""
        return await self.support.rt.store.run(
            lambda tx: evidence(tx, tx.get_candidate(candidate_id))
        )

    async def declare(
        self,
        candidate_id: int,
        *,
        by: Actor,
        severity: Severity | None = None,
        title: str | None = None,
        incident_id: int | None = None,
    ) -> tuple[Candidate, int]:
        """Declare an incident for the candidate (or choose an open one, `incident_id`) and
        link every case of its cluster to it. Safe to repeat: the declaration is keyed by
        the candidate, so a retry after a failure finds the same incident."""
        rt = self.support.rt
        candidate, cluster = await rt.store.run(lambda tx: _read(tx, candidate_id))
        if candidate.status is CandidateStatus.DISMISSED:
            raise IllegalTransition(
                f"{candidate.ref} was dismissed by {candidate.decided_by}: it cannot be declared"
            )
        if candidate.status is CandidateStatus.DECLARED:
            if incident_id not in (None, candidate.incident_id):
                raise IllegalTransition(
                    f"{candidate.ref} was declared as INC-{candidate.incident_id} already"
                )
            incident_id = candidate.incident_id  # again: its cases are linked once more
        if incident_id is None:
            incident, _ = await inc.declare_incident(
                rt,
                title=title or default_title(cluster),
                severity=severity or candidate.severity,
                by=by,
                service=cluster.signature.component,
                impact=f"{candidate.customers} customers reported it ({candidate.ref})",
                idempotency_key=f"candidate-{candidate_id}",
            )
            assert incident.id is not None
            incident_id = incident.id
        chosen = incident_id
        now = rt.clock.now()

        def work(tx: Transaction) -> Candidate:
            found, group = _decided(tx, candidate_id)
            incident = tx.get_incident(chosen)
            authorized(by, Action.DECLARE, incident)
            if not incident.is_open:
                raise IllegalTransition(
                    f"{incident.ref} is {incident.status.value}: choose an open one"
                )
            if found.status is not CandidateStatus.DECLARED or found.incident_id != chosen:
                found.declared(chosen, at=now, by=actor_name(by))  # refused if decided
                tx.save_candidate(found)
            group.status, group.incident_id = ClusterStatus.DECLARED, chosen
            tx.save_cluster(group)
            self._link_members(tx, group, incident, now, by=actor_name(by))
            self.plan_candidate(tx, found, now)
            return found

        declared = await rt.store.run(work)
        rt.plan_changed()
        log.info("candidate declared", extra={"candidate_id": candidate_id, "incident_id": chosen})
        return declared, chosen

    async def dismiss(self, candidate_id: int, reason: str, *, by: Actor) -> Candidate:
        """Not an incident: its signature stays quiet for the configured time."""
        rt = self.support.rt
        now = rt.clock.now()

        def work(tx: Transaction) -> Candidate:
            authorized(by, Action.DECLARE)
            candidate, group = _decided(tx, candidate_id)
            candidate.dismiss(reason, at=now, by=actor_name(by))
            tx.save_candidate(candidate)
            group.status, group.quiet_until = ClusterStatus.DISMISSED, now + self.rules.quiet_for
            tx.save_cluster(group)
            self.plan_candidate(tx, candidate, now)
            return candidate

        dismissed = await rt.store.run(work)
        rt.plan_changed()
        log.info("candidate dismissed", extra={"candidate_id": candidate_id})
        return dismissed

    def _link_members(
        self, tx: Transaction, cluster: Cluster, incident: Incident, now: datetime, *, by: str
    ) -> None:
        assert cluster.id is not None and incident.id is not None
        # In id order, as an incident's change locks its linked cases: no deadlock.
        for case_id in sorted(m.case_id for m in tx.cluster_members(cluster.id)):
            case = tx.get_case(case_id, lock=True)
            if case.status is CaseStatus.RESOLVED or case.incident_id == incident.id:
                continue
            case.events = []
            link_within(tx, self.support, case, incident, now=now, by=by)
            tx.save_case(case)
            tx.append_case_timeline(case_id, case.events)
            replan_case(tx, self.support.playbook, case, now=now)


def _decided(tx: Transaction, candidate_id: int) -> tuple[Candidate, Cluster]:
    """A candidate and its cluster, locked to be decided on, after the cluster's key: the
    key's assignments wait (a case joining meanwhile is linked by one or the other, never
    missed), and the key's version moves, so every process reads the cluster's new state
    again (a declared cluster links the cases that join it; a dismissed one is quiet)."""
    key = tx.get_cluster(tx.get_candidate(candidate_id).cluster_id).signature.key()
    version = tx.lock_cluster_key(key)
    tx.set_cluster_key_version(key, version + 1)
    candidate = tx.get_candidate(candidate_id, lock=True)
    return candidate, tx.get_cluster(candidate.cluster_id, lock=True)


def _read(tx: Transaction, candidate_id: int) -> tuple[Candidate, Cluster]:
    candidate = tx.get_candidate(candidate_id)
    return candidate, tx.get_cluster(candidate.cluster_id)


def default_title(cluster: Cluster) -> str:
    """The incident's internal title when the person gives none: where and what."""
    sig = cluster.signature
    where = " / ".join(part for part in (sig.category, sig.component) if part)
    text = sig.text if len(sig.text) <= 120 else sig.text[:119] + "…"
    return f"Many customers report: {text}" + (f" ({where})" if where else "")
