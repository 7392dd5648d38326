"""Use cases of account-ownership verifications: open one from what the customer says still
works (the policy's table decides whether proof is needed at all), record proof (transaction
hashes, or files kept by their content hash), and decide with four eyes.

Each is one unit of work: the verification read under lock, the person's support role
checked, the change made by the aggregate (which refuses before changing anything), the
verification and its timeline written. What the clock does (reminders, the final notice,
closing unverified) and what a decision sets off (the account system's instruction, the
customer's outcome, the management channel's message) are the engine's steps: see
`VERIFICATION` and the issue's remaining parts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from incident.domain.access import Actor, Principal, actor_name
from incident.domain.business_hours import BusinessCalendar
from incident.domain.case_access import CaseRight, SupportRole
from incident.domain.case_routing import Level
from incident.domain.records import SubjectRef, TimelineEntry
from incident.domain.verification import Verification
from incident.domain.verification_clocks import plan, step
from incident.domain.verification_policy import AccountState, Change, VerificationPolicy
from incident.domain.verification_proof import (
    Proof,
    check_file,
    refuse_personal_data,
    tx_proof,
)
from incident.services.cases import Support
from incident.services.ports import Transaction

log = logging.getLogger("incident.verifications")

VERIFICATION = "verification"  # the subject kind of verifications


def verification_ref(verification_id: int) -> SubjectRef:
    return SubjectRef(VERIFICATION, verification_id)


@dataclass(frozen=True)
class Verifications:
    """What the verification use cases work with. Built once by bootstrap."""

    support: Support  # the store, the clock, people's support roles
    policy: VerificationPolicy


@dataclass(frozen=True)
class VerificationView:
    verification: Verification
    timeline: list[TimelineEntry]


# --- use cases -------------------------------------------------------------------------------


async def open_verification(
    vs: Verifications,
    *,
    reference: str,
    customer_id: str,
    account_value: Decimal,
    state: AccountState,
    by: Actor,
    case_id: int | None = None,
) -> VerificationView:
    """Ask the customer for proof; refused (nothing stored) when the table says they can
    serve themselves or lost nothing."""
    now = vs.support.rt.clock.now()

    def work(tx: Transaction) -> VerificationView:
        vs.support.roles.check(by, CaseRight.WORK)
        if case_id is not None:
            tx.get_case(case_id)  # NotFound for a case that does not exist
        verification = Verification.open(
            vs.policy,
            reference=reference,
            customer_id=customer_id,
            account_value=account_value,
            state=state,
            at=now,
            by=actor_name(by),
            case_id=case_id,
        )
        verification_id = tx.add_verification(verification)
        tx.append_verification_timeline(verification_id, verification.events)
        replan_verification(vs, tx, verification, now=now, new=True)
        return VerificationView(verification, list(verification.events))

    view = await vs.support.rt.store.run(work)
    vs.support.rt.plan_changed()
    log.info("verification opened", extra={"verification_id": view.verification.id})
    return view


async def add_transaction_proof(
    vs: Verifications,
    verification_id: int,
    *,
    network: str,
    tx_hash: str,
    direction: str,
    by: Actor,
) -> VerificationView:
    """A deposit to or withdrawal from the account, by its transaction hash (checked by
    the network's format before anything is stored)."""
    proof = tx_proof(network, tx_hash, direction)
    return await _add_proof(vs, verification_id, proof, by=by)


async def add_file_proof(
    vs: Verifications,
    verification_id: int,
    *,
    data: bytes,
    declared_type: str,
    name: str,
    kind: str,
    by: Actor,
) -> VerificationView:
    """A screenshot from the customer's wallet or a bank statement showing the account's
    movements: within the size limit, of an accepted type (sniffed from the bytes), kept by
    its content hash until the decision plus the retention."""
    proof = check_file(vs.policy.proof, data, declared_type=declared_type, name=name, kind=kind)

    def keep(tx: Transaction, verification: Verification, now: datetime) -> None:
        assert verification.id is not None
        tx.store_proof_file(verification.id, proof, data, at=now)

    return await _add_proof(vs, verification_id, proof, by=by, also=keep)


async def approve(
    vs: Verifications,
    verification_id: int,
    changes: frozenset[Change],
    *,
    reason: str,
    by: Actor,
) -> VerificationView:
    """A manager's approval (never by anyone who recorded proof; two managers for an
    account of high value)."""

    def decide(verification: Verification, now: datetime) -> None:
        verification.approve(changes, reason=reason, by=actor_name(by), role=_role(vs, by), at=now)

    return await _change(vs, verification_id, "verification approved", decide)


async def refuse(
    vs: Verifications, verification_id: int, *, reason: str, by: Actor
) -> VerificationView:
    """A manager refuses: nothing about the account changes."""

    def decide(verification: Verification, now: datetime) -> None:
        verification.refuse(reason=reason, by=actor_name(by), role=_role(vs, by), at=now)

    return await _change(vs, verification_id, "verification refused", decide)


async def read_verification(vs: Verifications, verification_id: int) -> VerificationView:
    def read(tx: Transaction) -> VerificationView:
        verification = tx.get_verification(verification_id)
        return VerificationView(verification, tx.verification_timeline(verification_id))

    return await vs.support.rt.store.read(read)


def check_request_fields(fields: Mapping[str, object]) -> None:
    """The one rule every door applies to what it was sent: never personal data (identity
    documents, dates of birth, ID numbers, selfies), named field by field."""
    refuse_personal_data(fields)


# --- the plan --------------------------------------------------------------------------------


def support_calendar(vs: Verifications) -> BusinessCalendar:
    """The calendar business spans of verifications count in: the first support tier's."""
    return vs.support.playbook.ladder[Level.TIER_1].calendar


def replan_verification(
    vs: Verifications, tx: Transaction, v: Verification, *, now: datetime, new: bool = False
) -> None:
    """Bring the verification's pending steps in line with its facts."""
    assert v.id is not None
    subject = verification_ref(v.id)
    history = {} if new else tx.step_history(subject)
    planned = plan(v, vs.policy, support_calendar(vs), history)
    shapes = {p.step_id: shape for p in planned if (shape := step(p.step_id)) is not None}
    tx.reconcile(subject, planned, shapes, now=now, new=new)


# --- helpers ---------------------------------------------------------------------------------


def _role(vs: Verifications, by: Actor) -> SupportRole | None:
    """The support role `by` acts in; the service itself (a bare name) acts as a manager
    only when named so by its callers, never implicitly."""
    return vs.support.roles.of(by) if isinstance(by, Principal) else None


async def _add_proof(
    vs: Verifications,
    verification_id: int,
    proof: Proof,
    *,
    by: Actor,
    also: Callable[[Transaction, Verification, datetime], None] | None = None,
) -> VerificationView:
    def add(verification: Verification, now: datetime) -> None:
        verification.add_proof(proof, rules=vs.policy.proof, at=now, by=actor_name(by))

    return await _change(
        vs, verification_id, "proof recorded", add, by_right=(by, CaseRight.WORK), also=also
    )


async def _change(
    vs: Verifications,
    verification_id: int,
    reason: str,
    mutate: Callable[[Verification, datetime], None],
    *,
    by_right: tuple[Actor, CaseRight] | None = None,
    also: Callable[[Transaction, Verification, datetime], None] | None = None,
) -> VerificationView:
    now = vs.support.rt.clock.now()

    def work(tx: Transaction) -> VerificationView:
        verification = tx.get_verification(verification_id, lock=True)
        if by_right is not None:
            vs.support.roles.check(*by_right)
        verification.events = []
        mutate(verification, now)
        if also is not None:
            also(tx, verification, now)
        tx.save_verification(verification)
        tx.append_verification_timeline(verification_id, verification.events)
        replan_verification(vs, tx, verification, now=now)
        return VerificationView(verification, tx.verification_timeline(verification_id))

    view = await vs.support.rt.store.run(work)
    vs.support.rt.plan_changed()
    log.info(reason, extra={"verification_id": verification_id})
    return view
