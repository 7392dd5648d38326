"""Verifications as stored, on SQLite and PostgreSQL: one per ticket; a verification reads
back as it was written (account state, need, proofs, approvals, decision); proof files are
kept by content hash once and purged to nothing but their record; the timeline in order."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from incident.adapters.files.verification_files import load_verification
from incident.clock import FakeClock
from incident.config import Settings
from incident.domain.case_access import SupportRole
from incident.domain.errors import Conflict, NotFound
from incident.domain.verification import Verification, VerificationStatus
from incident.domain.verification_policy import AccountState, Change, FeatureState
from incident.domain.verification_proof import check_file, tx_proof
from incident.services.ports import Transaction
from tests.conftest import Build

W, NOT_SET, LOST = FeatureState.WORKING, FeatureState.NOT_SET, FeatureState.NOT_WORKING
POLICY = load_verification(Path("/nonexistent"), [])  # the shipped policy
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200
HASH = "0x" + "ab" * 32


@pytest.fixture
def settings(settings_on_both: Settings) -> Settings:
    return settings_on_both


def opened(clock: FakeClock, reference: str = "ZD-700", value: str = "25000.10") -> Verification:
    state = AccountState.of(logged_in=False, password=W, email=W, phone=NOT_SET, two_factor=LOST)
    return Verification.open(
        POLICY,
        reference=reference,
        customer_id="cust-7",
        account_value=Decimal(value),
        state=state,
        at=clock.now(),
        by="alice",
    )


async def test_a_verification_reads_back_as_written_through_its_whole_life(
    build: Build, clock: FakeClock
) -> None:
    app = await build()
    verification = opened(clock)
    assert verification.two_managers and verification.need.changes == {Change.CLEAR_2FA}
    screenshot = check_file(
        POLICY.proof, PNG, declared_type="image/png", name="wallet.png", kind="wallet_screenshot"
    )

    def write(tx: Transaction) -> int:
        verification_id = tx.add_verification(verification)
        at = clock.now() + timedelta(hours=1)
        verification.add_proof(
            tx_proof("evm", HASH, "deposit"), rules=POLICY.proof, at=at, by="alice"
        )
        verification.add_proof(screenshot, rules=POLICY.proof, at=at, by="alice")
        tx.store_proof_file(verification_id, screenshot, PNG, at=at)
        tx.store_proof_file(verification_id, screenshot, PNG, at=at)  # once by its hash
        verification.approve(
            frozenset({Change.CLEAR_2FA}),
            reason="Hashes match",
            by="carol",
            role=SupportRole.MANAGER,
            at=at,
        )
        verification.approve(
            frozenset({Change.CLEAR_2FA}),
            reason="Agreed",
            by="dave",
            role=SupportRole.MANAGER,
            at=at,
        )
        tx.save_verification(verification)
        tx.append_verification_timeline(verification_id, verification.events)
        return verification_id

    verification_id = await app.store.run(write)
    stored = await app.store.read(lambda tx: tx.get_verification(verification_id))
    assert stored == verification
    assert stored.status is VerificationStatus.APPROVED and stored.account_value == Decimal(
        "25000.10"
    )
    assert stored.instruction() == verification.instruction()
    data = await app.store.read(lambda tx: tx.proof_file(verification_id, screenshot.sha256))
    assert data == PNG and hashlib.sha256(data).hexdigest() == screenshot.sha256
    timeline = await app.store.read(lambda tx: tx.verification_timeline(verification_id))
    assert [e.kind for e in timeline] == [e.kind for e in verification.events]

    await app.store.run(lambda tx: tx.purge_proof_files(verification_id, now=clock.now()))
    assert (
        await app.store.read(lambda tx: tx.proof_file(verification_id, screenshot.sha256)) is None
    )
    again = await app.store.read(lambda tx: tx.get_verification(verification_id))
    assert again.proofs == verification.proofs  # the record of the proof stays
    listed = await app.store.read(
        lambda tx: tx.list_verifications(statuses=[VerificationStatus.APPROVED])
    )
    assert [v.id for v in listed] == [verification_id]


async def test_one_verification_per_ticket_and_a_missing_one_is_named(
    build: Build, clock: FakeClock
) -> None:
    app = await build()
    await app.store.run(lambda tx: tx.add_verification(opened(clock)))
    with pytest.raises(Conflict, match="ZD-700"):
        await app.store.run(lambda tx: tx.add_verification(opened(clock)))
    with pytest.raises(NotFound, match="VER-99"):
        await app.store.read(lambda tx: tx.get_verification(99))
