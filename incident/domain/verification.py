"""One account-ownership verification: the proof collected, four eyes, the decision, and
what the decision yields.

Pure: no I/O and no clock; every command takes `at` and `by`, appends a `TimelineEntry` and
raises before changing anything when it cannot be done (`IllegalTransition`: not in this
state; `Forbidden`: not by this person; `InvalidValue`: not this value).

The states:

    awaiting_proof            opened: the customer was asked for proof (the clocks run:
                              reminders, the final notice, then closed_unverified)
    not_started               enough proof arrived: in the review queue of the team in charge
    awaiting_second_approval  a high-value account approved by one manager; a second one,
                              agreeing on the same changes, decides
    approved | refused        decided (final)
    closed_unverified         the customer never gave the proof (final)

Four eyes: only managers (or above) decide; nobody who recorded proof may approve; an
account worth the policy's threshold or more needs two different managers agreeing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from incident.domain.case_access import SupportRole
from incident.domain.errors import Forbidden, IllegalTransition, InvalidValue
from incident.domain.records import TimelineEntry
from incident.domain.text import TextRule
from incident.domain.verification_policy import (
    AccountState,
    Change,
    Need,
    NeedKind,
    ProofRules,
    VerificationPolicy,
    decide,
)
from incident.domain.verification_proof import FileProof, Proof, TxProof

REASON = TextRule("reason", 2000, blank="give the reason for the decision")


class VerificationStatus(StrEnum):
    AWAITING_PROOF = "awaiting_proof"
    NOT_STARTED = "not_started"
    AWAITING_SECOND_APPROVAL = "awaiting_second_approval"
    APPROVED = "approved"
    REFUSED = "refused"
    CLOSED_UNVERIFIED = "closed_unverified"

    @property
    def final(self) -> bool:
        return self in _FINAL


_FINAL = frozenset(
    {
        VerificationStatus.APPROVED,
        VerificationStatus.REFUSED,
        VerificationStatus.CLOSED_UNVERIFIED,
    }
)
_REVIEWABLE = (VerificationStatus.NOT_STARTED, VerificationStatus.AWAITING_SECOND_APPROVAL)


@dataclass(frozen=True)
class ManagerApproval:
    by: str
    role: SupportRole
    changes: frozenset[Change]
    reason: str
    at: datetime


@dataclass(frozen=True)
class Decision:
    approved: bool
    changes: frozenset[Change]  # none when refused
    reason: str  # the deciding manager's
    by: tuple[str, ...]  # every manager who approved, or the one who refused
    at: datetime


@dataclass(frozen=True)
class Instruction:
    """What the account system is told to change: ids and changes only, no personal data
    (the new e-mail or phone is given by the customer in the account system's own flow)."""

    verification_id: int | None
    reference: str
    customer_id: str
    changes: tuple[str, ...]  # Change values, in a stable order
    approved_by: tuple[str, ...]
    approved_at: str  # ISO-8601
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Recommendation(StrEnum):
    WITHDRAWAL_HOLD = "withdrawal_hold"  # no withdrawals for the policy's hold
    NOTIFY_OLD_CONTACTS = "notify_old_contacts"  # tell the old e-mail/phone of the change


def no_proof_advice(*, logged_in: bool, has_balance: bool) -> str:
    """What to tell a customer who cannot prove ownership: access is not restored, so the
    way on depends on whether they can still reach their money."""
    if logged_in and has_balance:
        return (
            "You are still logged in: withdraw your balance to an account of your own, "
            "then open a new account."
        )
    if logged_in:
        return "You are still logged in with nothing to withdraw: open a new account."
    return (
        "Without proof of ownership we cannot restore access: open a new account. Any "
        "funds left in this account cannot be reached and are lost."
    )


@dataclass
class Verification:
    """One verification, mirrored from the helpdesk ticket `reference`."""

    reference: str
    customer_id: str
    account_value: Decimal  # in EUR
    state: AccountState
    need: Need
    opened_at: datetime
    opened_by: str
    two_managers: bool  # the account is of high value (fixed when opened)
    id: int | None = None
    case_id: int | None = None  # the support case it belongs to, if any
    status: VerificationStatus = VerificationStatus.AWAITING_PROOF
    proofs: list[Proof] = field(default_factory=list)
    collected_by: tuple[str, ...] = ()  # everyone who recorded proof: none of them approves
    proof_complete_at: datetime | None = None
    approvals: list[ManagerApproval] = field(default_factory=list)
    decision: Decision | None = None
    reminders_sent: int = 0
    last_reminder_at: datetime | None = None
    final_notice_at: datetime | None = None
    closed_at: datetime | None = None
    changed_at: datetime | None = None  # its latest change: the management message follows it
    events: list[TimelineEntry] = field(default_factory=list, repr=False, compare=False)

    # --- queries ---------------------------------------------------------------------------

    @property
    def ref(self) -> str:
        return f"VER-{self.id}" if self.id is not None else "VER-new"

    def proof_counts(self) -> tuple[int, int]:
        """(all proofs, transaction proofs)."""
        return len(self.proofs), sum(isinstance(p, TxProof) for p in self.proofs)

    def proof_suffices(self, rules: ProofRules) -> bool:
        total, transactions = self.proof_counts()
        return total >= rules.min_proofs and transactions >= rules.min_transactions

    def files_purge_at(self, rules: ProofRules) -> datetime | None:
        """When the files' bytes are purged: the decision (or closing) plus the retention."""
        ended = self.decision.at if self.decision is not None else self.closed_at
        has_files = any(isinstance(p, FileProof) for p in self.proofs)
        return ended + rules.retention if ended is not None and has_files else None

    def instruction(self) -> Instruction | None:
        """For the account system, once approved."""
        decision = self.decision
        if decision is None or not decision.approved:
            return None
        return Instruction(
            verification_id=self.id,
            reference=self.reference,
            customer_id=self.customer_id,
            changes=tuple(c.value for c in Change if c in decision.changes),
            approved_by=decision.by,
            approved_at=decision.at.isoformat(),
            reason=decision.reason,
        )

    def recommendations(self) -> tuple[Recommendation, ...]:
        """A hold on withdrawals after any approved change (an attacker who got through
        would cash out at once); a notice to the old contact details when one is replaced
        (the real owner hears of it even if we were fooled)."""
        decision = self.decision
        if decision is None or not decision.approved:
            return ()
        replaced = {Change.REPLACE_EMAIL, Change.REPLACE_PHONE} & decision.changes
        notice = (Recommendation.NOTIFY_OLD_CONTACTS,) if replaced else ()
        return (Recommendation.WITHDRAWAL_HOLD, *notice)

    # --- commands --------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        policy: VerificationPolicy,
        *,
        reference: str,
        customer_id: str,
        account_value: Decimal,
        state: AccountState,
        at: datetime,
        by: str,
        case_id: int | None = None,
    ) -> Verification:
        """A verification asking the customer for proof. Refused when the table says the
        customer can serve themselves or lost nothing: support then changes nothing."""
        need = decide(policy, state)
        if need.kind is not NeedKind.VERIFY:
            raise IllegalTransition(
                f"no verification needed ({need.kind.value}, rule {need.rule}): {need.why}"
            )
        if account_value < 0:
            raise InvalidValue("account_value", "give the account's value in EUR, 0 or more")
        verification = cls(
            reference=reference,
            customer_id=customer_id,
            account_value=account_value,
            state=state,
            need=need,
            opened_at=at,
            opened_by=by,
            two_managers=policy.needs_two_managers(account_value),
            case_id=case_id,
        )
        changes = ", ".join(c.words for c in Change if c in need.changes)
        verification._record(
            at, "verification_opened", by, f"Proof of ownership asked for: {changes}"
        )
        return verification

    def add_proof(self, proof: Proof, *, rules: ProofRules, at: datetime, by: str) -> None:
        """Record a proof; once the proofs meet the policy's minimum the verification goes
        to the review queue (not_started)."""
        if self.status not in (VerificationStatus.AWAITING_PROOF, VerificationStatus.NOT_STARTED):
            raise IllegalTransition(
                f"{self.ref} is {self.status.value}: proof is taken only before a manager "
                "has approved or decided"
            )
        if any(p.key == proof.key for p in self.proofs):
            raise InvalidValue("proof", "this proof was already recorded")
        self.proofs.append(proof)
        if by not in self.collected_by:
            self.collected_by = (*self.collected_by, by)
        what = (
            f"{proof.direction.value} {proof.network} {proof.hash}"
            if isinstance(proof, TxProof)
            else f"{proof.kind.value} ({proof.content_type}, {proof.size:,} bytes)"
        )
        self._record(at, "proof_added", by, f"Proof recorded: {what}")
        if self.status is VerificationStatus.AWAITING_PROOF and self.proof_suffices(rules):
            self.status = VerificationStatus.NOT_STARTED
            self.proof_complete_at = at
            self._record(at, "proof_complete", by, "Enough proof: waiting for a manager's review")

    def remind(self, *, at: datetime, by: str, final: bool = False) -> None:
        """A reminder (or the final notice) was sent to the customer."""
        self._require(VerificationStatus.AWAITING_PROOF, "remind the customer")
        if final:
            self.final_notice_at = at
            self._record(at, "final_notice", by, "Final notice sent: no proof, no access")
            return
        self.reminders_sent += 1
        self.last_reminder_at = at
        self._record(at, "reminder", by, f"Reminder {self.reminders_sent} sent")

    def approve(
        self,
        changes: frozenset[Change],
        *,
        reason: str,
        by: str,
        role: SupportRole | None,
        at: datetime,
    ) -> Decision | None:
        """A manager's approval: the decision, or None while a second manager is awaited."""
        if self.status not in _REVIEWABLE:
            raise IllegalTransition(f"{self.ref} is {self.status.value}: {_NOT_REVIEWABLE}")
        self._check_approver(by, role)
        why = REASON.check(reason)
        self._check_changes(changes)
        approval = ManagerApproval(by, role or SupportRole.MANAGER, changes, why, at)
        words = ", ".join(c.value for c in Change if c in changes)
        if self.two_managers and not self.approvals:
            self.approvals.append(approval)
            self.status = VerificationStatus.AWAITING_SECOND_APPROVAL
            self._record(at, "first_approval", by, f"Approved {words}; a second manager must")
            return None
        self.approvals.append(approval)
        names = tuple(a.by for a in self.approvals)
        return self._decide(Decision(True, changes, why, names, at), by, f"Approved {words}")

    def refuse(self, *, reason: str, by: str, role: SupportRole | None, at: datetime) -> Decision:
        """A manager refuses: nothing about the account changes."""
        if self.status.final:
            raise IllegalTransition(f"{self.ref} is {self.status.value}: nothing left to decide")
        _require_manager(by, role, "refuse")
        why = REASON.check(reason)
        return self._decide(Decision(False, frozenset(), why, (by,), at), by, "Refused")

    def close_unverified(self, *, at: datetime, by: str) -> None:
        """The customer never gave the proof: closed, access not restored."""
        self._require(VerificationStatus.AWAITING_PROOF, "close as unverified")
        self.status = VerificationStatus.CLOSED_UNVERIFIED
        self.closed_at = at
        self._record(at, "closed_unverified", by, "Closed: no proof of ownership was given")

    # --- helpers ---------------------------------------------------------------------------

    def _check_approver(self, by: str, role: SupportRole | None) -> None:
        _require_manager(by, role, "approve")
        if by in self.collected_by:
            raise Forbidden(
                f"{by} recorded proof for {self.ref} and may not approve it: four eyes, "
                "another manager decides"
            )
        if any(a.by == by for a in self.approvals):
            raise Forbidden(
                f"{by} already approved {self.ref}; the account's value needs a second, "
                "different manager"
            )

    def _check_changes(self, changes: frozenset[Change]) -> None:
        if not changes:
            raise InvalidValue("changes", "approve at least one change, or refuse")
        beyond = changes - self.need.changes
        if beyond:
            asked = ", ".join(c.value for c in Change if c in self.need.changes)
            raise InvalidValue(
                "changes",
                f"{', '.join(sorted(beyond))} was not what the proof was asked for ({asked})",
            )
        if self.approvals and self.approvals[0].changes != changes:
            first = self.approvals[0]
            agreed = ", ".join(c.value for c in Change if c in first.changes)
            raise IllegalTransition(
                f"{first.by} approved {agreed}: approve the same changes, or refuse"
            )

    def _decide(self, decision: Decision, by: str, words: str) -> Decision:
        self.decision = decision
        self.status = (
            VerificationStatus.APPROVED if decision.approved else VerificationStatus.REFUSED
        )
        self._record(decision.at, "verification_decided", by, f"{words}: {decision.reason}")
        return decision

    def _require(self, status: VerificationStatus, action: str) -> None:
        if self.status is not status:
            raise IllegalTransition(
                f"{self.ref} is {self.status.value}: only a verification {status.value} "
                f"may {action}"
            )

    def _record(self, at: datetime, kind: str, by: str, text: str) -> None:
        self.changed_at = at
        self.events.append(TimelineEntry(at=at, kind=kind, actor=by, text=text))


_NOT_REVIEWABLE = "a manager approves only once enough proof has arrived, and before a decision"


def _require_manager(by: str, role: SupportRole | None, action: str) -> None:
    if role is None or role.rank < SupportRole.MANAGER.rank:
        what = role.value if role is not None else "no support role"
        raise Forbidden(f"{by} ({what}) may not {action} a verification; only managers may")
