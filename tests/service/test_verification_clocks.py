"""Verifications on the clock, end to end in virtual time through the real engine: an
attacker's request without proof is reminded, warned and closed as unverified; an owner's
request with valid proof is approved by a second manager, the account system gets one
instruction (exactly once across a crash between sending it and marking it), the customer
hears the outcome, the management channel's one message was edited in place, never
re-posted, and the proof files are purged after the retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from incident.bootstrap import Container
from incident.clock import FakeClock
from incident.domain.access import AccessRole, Principal
from incident.domain.case_access import SupportRole, SupportRoles
from incident.domain.verification import VerificationStatus
from incident.domain.verification_policy import AccountState, Change, FeatureState
from incident.domain.verification_proof import FileProof
from incident.services import verifications as vc
from incident.services.cases import Support
from incident.services.verifications import Verifications, verification_ref
from incident.testing import RecordingEffects, SimulatedCrash, run_until
from tests.conftest import Build

W, NOT_SET, LOST = FeatureState.WORKING, FeatureState.NOT_SET, FeatureState.NOT_WORKING
AGENT = Principal("alice", AccessRole.RESPONDER)
MANAGER = Principal("carol", AccessRole.RESPONDER)
SECOND = Principal("dave", AccessRole.RESPONDER)
ROLES = SupportRoles(
    {"alice": SupportRole.AGENT, "carol": SupportRole.MANAGER, "dave": SupportRole.MANAGER}
)
START = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
LOST_2FA = AccountState.of(logged_in=False, password=W, email=W, phone=NOT_SET, two_factor=LOST)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100


def service(app: Container) -> Verifications:
    support = app.support
    return Verifications(Support(support.rt, support.playbook, ROLES), app.verifications.policy)


def to_customer(vendor: RecordingEffects, verification_id: int) -> list[str]:
    subject = verification_ref(verification_id)
    return [s.body for s in vendor.sends if s.subject == subject and s.target == "customer"]


async def open_one(vs: Verifications, reference: str, value: str) -> int:
    view = await vc.open_verification(
        vs,
        reference=reference,
        customer_id="cust-1",
        account_value=Decimal(value),
        state=LOST_2FA,
        by=AGENT,
    )
    assert view.verification.id is not None
    return view.verification.id


async def test_an_attackers_request_without_proof_closes_unverified_after_the_reminders(
    build: Build, clock: FakeClock, vendor: RecordingEffects
) -> None:
    clock.set(START)
    app = await build()
    vs = service(app)
    verification_id = await open_one(vs, "ZD-66", "100")
    await run_until(app, clock, START + timedelta(days=10, minutes=1))
    said = [" ".join(body.split()) for body in to_customer(vendor, verification_id)]
    assert len(said) == 5, said
    asked, first, second, final, closed = said
    assert "never ask for identity documents" in asked
    assert "still waiting for proof" in first and "still waiting for proof" in second
    assert "cannot do it" in final and "funds left in this account cannot be reached" in final
    assert "is closed" in closed
    view = await vc.read_verification(vs, verification_id)
    assert view.verification.status is VerificationStatus.CLOSED_UNVERIFIED
    assert view.verification.reminders_sent == 2 and view.verification.final_notice_at
    times = [s.at - START for s in vendor.sends if s.target == "customer"]
    assert times == [
        timedelta(0),
        timedelta(hours=48),
        timedelta(days=5),
        timedelta(days=7),
        timedelta(days=10),
    ]
    key = f"verification/{verification_id}/board"
    assert vendor.board_posts[key] == 1 and vendor.board_edits[key] >= 3
    assert "closed unverified" in vendor.shown[key][-1]
    assert vendor.instructions == {}


async def test_an_owners_request_is_approved_by_a_second_manager_and_instructed_once(
    build: Build, clock: FakeClock, vendor: RecordingEffects
) -> None:
    clock.set(START)
    app = await build()
    vs = service(app)
    verification_id = await open_one(vs, "ZD-77", "50000")
    await run_until(app, clock, START + timedelta(hours=1))
    await vc.add_transaction_proof(
        vs, verification_id, network="evm", tx_hash="0x" + "ab" * 32, direction="deposit", by=AGENT
    )
    view = await vc.add_file_proof(
        vs,
        verification_id,
        data=PNG,
        declared_type="image/png",
        name="w.png",
        kind="wallet_screenshot",
        by=AGENT,
    )
    assert view.verification.status is VerificationStatus.NOT_STARTED
    await run_until(app, clock, START + timedelta(hours=2))
    await vc.approve(
        vs, verification_id, frozenset({Change.CLEAR_2FA}), reason="Deposit is theirs", by=MANAGER
    )
    await run_until(app, clock, START + timedelta(hours=3))
    assert vendor.instructions == {}  # one manager is not enough for this account
    # The process dies right after the account system took the instruction, before its mark.
    vendor.crash_when = lambda key: key.endswith("/instruct/1")
    await vc.approve(vs, verification_id, frozenset({Change.CLEAR_2FA}), reason="Agreed", by=SECOND)
    with pytest.raises(SimulatedCrash):
        await app.scheduler.tick(clock.now())
    vendor.crash_when = None
    await app.close()
    app = await build()
    await app.store.run(lambda tx: tx.release_claims())
    await run_until(app, clock, clock.now() + timedelta(minutes=1))

    (key,) = vendor.instructions
    assert vendor.attempts[key] == 2  # sent again after the crash, under the same key
    instruction = vendor.instructions[key]
    assert instruction["changes"] == ["clear_2fa"] and instruction["approved_by"] == [
        "carol",
        "dave",
    ]
    assert instruction["recommendations"] == ["withdrawal_hold"]
    assert "0x" + "ab" * 32 not in str(instruction)  # no proof content
    outcome = " ".join(to_customer(vendor, verification_id)[-1].split())
    assert "access is being restored" in outcome and "withdrawals are paused" in outcome
    board = f"verification/{verification_id}/board"
    assert vendor.board_posts[board] == 1 and vendor.board_edits[board] >= 3
    assert "Approved by: carol, dave" in vendor.shown[board][-1]

    # The screenshot's bytes are purged after the retention; its record stays.
    sha = next(p.sha256 for p in view.verification.proofs if isinstance(p, FileProof))
    assert await app.store.read(lambda tx: tx.proof_file(verification_id, sha)) == PNG
    await run_until(app, clock, clock.now() + vs.policy.proof.retention + timedelta(minutes=1))
    assert await app.store.read(lambda tx: tx.proof_file(verification_id, sha)) is None
