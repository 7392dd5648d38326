"""Account-ownership verifications through their use cases on a real database: opened only
when the table says proof is needed; proof by transaction hashes and files, checked before
anything is stored; four eyes (never the collector, two managers for a valuable account);
every refusal leaves the stored verification as it was."""

from __future__ import annotations

from collections.abc import Awaitable
from decimal import Decimal

import pytest

from incident.bootstrap import Container
from incident.domain.access import AccessRole, Principal
from incident.domain.case_access import SupportRole, SupportRoles
from incident.domain.errors import DomainError, Forbidden, IllegalTransition, InvalidValue
from incident.domain.verification import Verification, VerificationStatus
from incident.domain.verification_policy import AccountState, Change, FeatureState
from incident.domain.verification_proof import FileProof
from incident.services import verifications as vc
from incident.services.cases import Support
from incident.services.verifications import Verifications

W, NOT_SET, LOST = FeatureState.WORKING, FeatureState.NOT_SET, FeatureState.NOT_WORKING
AGENT = Principal("alice", AccessRole.RESPONDER)
MANAGER = Principal("carol", AccessRole.RESPONDER)
SECOND = Principal("dave", AccessRole.RESPONDER)
ROLES = SupportRoles(
    {"alice": SupportRole.AGENT, "carol": SupportRole.MANAGER, "dave": SupportRole.MANAGER}
)
LOST_2FA = AccountState.of(logged_in=False, password=W, email=W, phone=NOT_SET, two_factor=LOST)
HASHES = ["0x" + "ab" * 32, "0x" + "cd" * 32]
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100


def service(app: Container) -> Verifications:
    support = app.support
    return Verifications(Support(support.rt, support.playbook, ROLES), app.verifications.policy)


async def opened(vs: Verifications, value: str = "500", reference: str = "ZD-1") -> int:
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


async def stored(vs: Verifications, verification_id: int) -> Verification:
    verification = (await vc.read_verification(vs, verification_id)).verification
    verification.events = []
    return verification


async def refused_unchanged(
    vs: Verifications, verification_id: int, attempt: Awaitable[object]
) -> DomainError:
    """Run `attempt`; it must be refused and change nothing."""
    before = await stored(vs, verification_id)
    with pytest.raises(DomainError) as refusal:
        await attempt
    assert await stored(vs, verification_id) == before
    return refusal.value


async def test_the_owners_request_is_approved_by_two_managers_never_by_the_collector(
    app: Container,
) -> None:
    vs = service(app)
    verification_id = await opened(vs, value="25000")
    for tx_hash in HASHES:
        view = await vc.add_transaction_proof(
            vs, verification_id, network="evm", tx_hash=tx_hash, direction="deposit", by=AGENT
        )
    assert view.verification.status is VerificationStatus.NOT_STARTED
    collector = Principal("alice", AccessRole.ADMIN)  # an admin acts as a manager ...
    roles = SupportRoles({"carol": SupportRole.MANAGER, "dave": SupportRole.MANAGER})
    as_admin = Verifications(Support(vs.support.rt, vs.support.playbook, roles), vs.policy)
    refusal = await refused_unchanged(
        as_admin,
        verification_id,
        vc.approve(
            as_admin, verification_id, frozenset({Change.CLEAR_2FA}), reason="ok", by=collector
        ),
    )
    assert isinstance(refusal, Forbidden) and "recorded proof" in str(refusal)  # ... not here
    await refused_unchanged(
        vs,
        verification_id,
        vc.approve(vs, verification_id, frozenset({Change.CLEAR_2FA}), reason="ok", by=AGENT),
    )
    first = await vc.approve(
        vs,
        verification_id,
        frozenset({Change.CLEAR_2FA}),
        reason="Both deposits are theirs",
        by=MANAGER,
    )
    assert first.verification.status is VerificationStatus.AWAITING_SECOND_APPROVAL
    await refused_unchanged(
        vs,
        verification_id,
        vc.approve(vs, verification_id, frozenset({Change.CLEAR_2FA}), reason="again", by=MANAGER),
    )
    done = await vc.approve(
        vs, verification_id, frozenset({Change.CLEAR_2FA}), reason="Agreed", by=SECOND
    )
    assert done.verification.status is VerificationStatus.APPROVED
    instruction = done.verification.instruction()
    assert instruction is not None and instruction.changes == ("clear_2fa",)
    assert instruction.approved_by == ("carol", "dave")
    kinds = [e.kind for e in done.timeline]
    assert kinds[0] == "verification_opened" and kinds[-1] == "verification_decided"


async def test_bad_proof_is_refused_and_changes_nothing(app: Container) -> None:
    vs = service(app)
    verification_id = await opened(vs)
    refusal = await refused_unchanged(
        vs,
        verification_id,
        vc.add_transaction_proof(
            vs, verification_id, network="evm", tx_hash="0x12", direction="deposit", by=AGENT
        ),
    )
    assert isinstance(refusal, InvalidValue)
    too_big = b"\x89PNG\r\n\x1a\n" + b"\x00" * (vs.policy.proof.max_file_bytes + 1)
    for data, declared, name in (
        (too_big, "image/png", "wallet.png"),
        (b"MZ\x90\x00" + b"\x00" * 100, "image/png", "wallet.png"),  # a program, called a PNG
        (PNG, "image/png", "wallet.exe"),
    ):
        await refused_unchanged(
            vs,
            verification_id,
            vc.add_file_proof(
                vs,
                verification_id,
                data=data,
                declared_type=declared,
                name=name,
                kind="wallet_screenshot",
                by=AGENT,
            ),
        )
    view = await vc.add_file_proof(
        vs,
        verification_id,
        data=PNG,
        declared_type="image/png",
        name="wallet.png",
        kind="wallet_screenshot",
        by=AGENT,
    )
    (proof,) = view.verification.proofs
    assert isinstance(proof, FileProof)
    kept = await app.store.read(lambda tx: tx.proof_file(verification_id, proof.sha256))
    assert kept == PNG


async def test_no_verification_when_the_customer_can_serve_themselves(app: Container) -> None:
    vs = service(app)
    forgot_password = AccountState.of(
        logged_in=False, password=LOST, email=W, phone=W, two_factor=W
    )
    with pytest.raises(IllegalTransition, match="no verification needed"):
        await vc.open_verification(
            vs,
            reference="ZD-2",
            customer_id="c",
            account_value=Decimal(0),
            state=forgot_password,
            by=AGENT,
        )
    assert await app.store.read(lambda tx: tx.list_verifications()) == []


def test_personal_data_is_refused_by_name_at_every_door() -> None:
    with pytest.raises(DomainError) as refusal:
        vc.check_request_fields(
            {"reference": "ZD-1", "dateOfBirth": "1980-01-01", "passport_scan": "x"}
        )
    text = str(refusal.value)
    assert "dateOfBirth" in text and "passport_scan" in text and "1980" not in text
