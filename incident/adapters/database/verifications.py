"""Account-ownership verifications: the part of a transaction (`SqlTransaction`) that keeps
them, their proof files' bytes (by content hash, purged after the decision) and their
timeline. The verification's account state, need, proofs, approvals and decision are
stored with it as JSON; nothing of a file but its hash, type and size is kept there."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from incident.adapters.database import statements as sql
from incident.adapters.database.executors import TransactionRows
from incident.adapters.database.timelines import entries_of, entry_rows
from incident.domain.case_access import SupportRole
from incident.domain.errors import Conflict, NotFound
from incident.domain.records import TimelineEntry
from incident.domain.verification import (
    Decision,
    ManagerApproval,
    Verification,
    VerificationStatus,
)
from incident.domain.verification_policy import (
    AccountState,
    Change,
    Feature,
    FeatureState,
    Need,
    NeedKind,
    SelfServeFlow,
)
from incident.domain.verification_proof import Direction, FileKind, FileProof, Proof, TxProof

_PLAIN = (
    "reference",
    "customer_id",
    "case_id",
    "opened_at",
    "opened_by",
    "two_managers",
    "proof_complete_at",
    "reminders_sent",
    "last_reminder_at",
    "final_notice_at",
    "closed_at",
    "changed_at",
)


class VerificationRows(TransactionRows):
    """Verifications, in one transaction (see `SqlTransaction`)."""

    def add_verification(self, verification: Verification) -> int:
        """Store a new verification; Conflict when its ticket has one already."""
        taken = self._execute.rows(
            sql.VERIFICATION_BY_REFERENCE, {"b_reference": verification.reference}
        )
        if taken:
            raise Conflict(
                f"ticket {verification.reference!r} has a verification already "
                f"(VER-{taken[0].id}): continue that one"
            )
        try:
            verification.id = self._execute.insert(sql.INSERT_VERIFICATION, _values(verification))
        except IntegrityError as error:
            raise Conflict(
                f"ticket {verification.reference!r} has a verification already, opened a "
                "moment ago: continue that one"
            ) from error
        return verification.id

    def get_verification(self, verification_id: int, *, lock: bool = False) -> Verification:
        query = self._dialect.verification_for_update if lock else sql.GET_VERIFICATION
        rows = self._execute.rows(query, {"b_id": verification_id})
        if not rows:
            raise NotFound(f"there is no verification {verification_id} (VER-{verification_id})")
        return _verification(rows[0])

    def save_verification(self, verification: Verification) -> None:
        assert verification.id is not None
        values = {**_values(verification), "b_id": verification.id}
        self._execute.rows(sql.UPDATE_VERIFICATION, values)

    def list_verifications(
        self, *, statuses: Sequence[VerificationStatus] = (), limit: int = 100
    ) -> list[Verification]:
        """The longest-waiting first."""
        query = select(sql.verifications).order_by(
            sql.verifications.c.opened_at, sql.verifications.c.id
        )
        if statuses:
            query = query.where(sql.verifications.c.status.in_([s.value for s in statuses]))
        return [_verification(r) for r in self._connection.execute(query.limit(limit))]

    def store_proof_file(
        self, verification_id: int, proof: FileProof, data: bytes, *, at: datetime
    ) -> None:
        """Keep a proof file's bytes under its content hash (once per verification)."""
        params = {"b_id": verification_id, "b_sha256": proof.sha256}
        if self._execute.rows(sql.VERIFICATION_FILE, params):
            return
        self._execute.insert(
            sql.INSERT_VERIFICATION_FILE,
            {
                "verification_id": verification_id,
                "sha256": proof.sha256,
                "content_type": proof.content_type,
                "size": proof.size,
                "data": data,
                "stored_at": at,
                "purged_at": None,
            },
        )

    def proof_file(self, verification_id: int, sha256: str) -> bytes | None:
        """A proof file's bytes; None once purged (or never stored)."""
        rows = self._execute.rows(
            sql.VERIFICATION_FILE, {"b_id": verification_id, "b_sha256": sha256}
        )
        return bytes(rows[0].data) if rows and rows[0].data is not None else None

    def purge_proof_files(self, verification_id: int, *, now: datetime) -> None:
        """Forget the files' bytes (their hashes, types and sizes stay on the record)."""
        self._execute.rows(sql.PURGE_VERIFICATION_FILES, {"b_id": verification_id, "b_now": now})

    def append_verification_timeline(
        self, verification_id: int, entries: Sequence[TimelineEntry]
    ) -> None:
        self._execute.insert_many(
            sql.INSERT_VERIFICATION_ENTRY, entry_rows("verification_id", verification_id, entries)
        )

    def verification_timeline(self, verification_id: int) -> list[TimelineEntry]:
        return entries_of(
            self._execute.rows(sql.VERIFICATION_TIMELINE_OF, {"b_id": verification_id})
        )


# --- to and from the row ---------------------------------------------------------------------


def _values(v: Verification) -> dict[str, Any]:
    values: dict[str, Any] = {name: getattr(v, name) for name in _PLAIN}
    values.update(
        account_value=str(v.account_value),
        state={
            "logged_in": v.state.logged_in,
            "features": {f.value: s.value for f, s in v.state.features},
        },
        need=_need_json(v.need),
        status=v.status.value,
        proofs=[_proof_json(p) for p in v.proofs],
        collected_by=list(v.collected_by),
        approvals=[_approval_json(a) for a in v.approvals],
        decision=_decision_json(v.decision) if v.decision is not None else None,
    )
    return values


def _verification(row: Any) -> Verification:
    features = row.state["features"]
    return Verification(
        id=row.id,
        account_value=Decimal(row.account_value),
        state=AccountState(
            bool(row.state["logged_in"]),
            tuple((f, FeatureState(features[f.value])) for f in Feature),
        ),
        need=_need(row.need),
        status=VerificationStatus(row.status),
        proofs=[_proof(p) for p in row.proofs],
        collected_by=tuple(row.collected_by),
        approvals=[_approval(a) for a in row.approvals],
        decision=_decision(row.decision) if row.decision is not None else None,
        **{name: getattr(row, name) for name in _PLAIN},
    )


def _changes(values: Sequence[str]) -> frozenset[Change]:
    return frozenset(Change(c) for c in values)


def _sorted(changes: frozenset[Change]) -> list[str]:
    return [c.value for c in Change if c in changes]


def _need_json(need: Need) -> dict[str, Any]:
    return {
        "kind": need.kind.value,
        "rule": need.rule,
        "why": need.why,
        "changes": _sorted(need.changes),
        "flow": need.flow.value if need.flow is not None else None,
        "template": need.template,
    }


def _need(data: dict[str, Any]) -> Need:
    return Need(
        kind=NeedKind(data["kind"]),
        rule=data["rule"],
        why=data["why"],
        changes=_changes(data["changes"]),
        flow=SelfServeFlow(data["flow"]) if data["flow"] is not None else None,
        template=data["template"],
    )


def _proof_json(proof: Proof) -> dict[str, Any]:
    if isinstance(proof, TxProof):
        return {
            "type": "transaction",
            "network": proof.network,
            "hash": proof.hash,
            "direction": proof.direction.value,
        }
    return {
        "type": "file",
        "kind": proof.kind.value,
        "content_type": proof.content_type,
        "size": proof.size,
        "sha256": proof.sha256,
    }


def _proof(data: dict[str, Any]) -> Proof:
    if data["type"] == "transaction":
        return TxProof(data["network"], data["hash"], Direction(data["direction"]))
    return FileProof(
        FileKind(data["kind"]), data["content_type"], int(data["size"]), data["sha256"]
    )


def _approval_json(a: ManagerApproval) -> dict[str, Any]:
    return {
        "by": a.by,
        "role": a.role.value,
        "changes": _sorted(a.changes),
        "reason": a.reason,
        "at": a.at.isoformat(),
    }


def _approval(data: dict[str, Any]) -> ManagerApproval:
    return ManagerApproval(
        by=data["by"],
        role=SupportRole(data["role"]),
        changes=_changes(data["changes"]),
        reason=data["reason"],
        at=datetime.fromisoformat(data["at"]),
    )


def _decision_json(d: Decision) -> dict[str, Any]:
    return {
        "approved": d.approved,
        "changes": _sorted(d.changes),
        "reason": d.reason,
        "by": list(d.by),
        "at": d.at.isoformat(),
    }


def _decision(data: dict[str, Any]) -> Decision:
    return Decision(
        approved=bool(data["approved"]),
        changes=_changes(data["changes"]),
        reason=data["reason"],
        by=tuple(data["by"]),
        at=datetime.fromisoformat(data["at"]),
    )
