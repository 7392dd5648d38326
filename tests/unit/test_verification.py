"""Account-ownership verification: proofs, the personal-data rule, four eyes, the states,
and that every refusal leaves the verification as it was."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from incident.domain.case_access import SupportRole
from incident.domain.case_context import ContextRefused
from incident.domain.errors import DomainError, Forbidden, IllegalTransition, InvalidValue
from incident.domain.verification import (
    Recommendation,
    Verification,
    VerificationStatus,
    no_proof_advice,
)
from incident.domain.verification_policy import (
    AccountState,
    Change,
    DecisionRule,
    FeatureState,
    Need,
    NeedKind,
    ProofRules,
    VerificationPolicy,
)
from incident.domain.verification_proof import (
    PERSONAL_DATA_RULE,
    FileKind,
    check_file,
    is_personal_data_field,
    refuse_personal_data,
    tx_proof,
)

W, N, X = FeatureState.WORKING, FeatureState.NOT_SET, FeatureState.NOT_WORKING
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
EVM_HASH = "0x" + "ab" * 32
BTC_TXID = "cd" * 32
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 100
PDF = b"%PDF-1.7\n" + b"\x00" * 100
RULES = ProofRules()
MANAGER, AGENT = SupportRole.MANAGER, SupportRole.AGENT

# A small table of its own: every lost thing needs proof of everything.
EVERYTHING = frozenset(Change)
POLICY = VerificationPolicy(
    rules=(
        DecisionRule(
            "all",
            Need(NeedKind.VERIFY, "all", "test", changes=EVERYTHING, template="ask"),
        ),
    ),
    high_value_eur=Decimal(10000),
)
LOST = AccountState.of(logged_in=False, password=W, email=X, phone=X, two_factor=X)


def opened(value: str = "500") -> Verification:
    return Verification.open(
        POLICY,
        reference="HD-1",
        customer_id="C-1",
        account_value=Decimal(value),
        state=LOST,
        at=T0,
        by="alice",
    )


def with_proof(value: str = "500", by: str = "alice") -> Verification:
    verification = opened(value)
    verification.add_proof(tx_proof("evm", EVM_HASH, "deposit"), rules=RULES, at=T0, by=by)
    verification.add_proof(tx_proof("bitcoin", BTC_TXID, "withdrawal"), rules=RULES, at=T0, by=by)
    return verification


def status(verification: Verification) -> VerificationStatus:
    """The status, read through a call: mypy would otherwise keep an earlier assert's
    narrowing across the commands that change it."""
    return verification.status


def unchanged_by(verification: Verification, error: type[DomainError], action: object) -> str:
    """Run `action` expecting `error`; the verification (and its timeline) is untouched."""
    before = copy.deepcopy(verification)
    events = list(verification.events)
    with pytest.raises(error) as raised:
        action()  # type: ignore[operator]
    assert verification == before and verification.events == events
    return str(raised.value)


# --- transaction proofs --------------------------------------------------------------------


def test_valid_hashes_are_taken_in_lower_case() -> None:
    proof = tx_proof("EVM", "  0x" + "AB" * 32 + " ", "Deposit")
    assert (proof.network, proof.hash, proof.direction.value) == ("evm", EVM_HASH, "deposit")
    assert tx_proof("bitcoin", BTC_TXID, "withdrawal").hash == BTC_TXID


@pytest.mark.parametrize(
    ("network", "value", "field"),
    [
        ("evm", "0x" + "ab" * 31, "hash"),  # too short
        ("evm", "ab" * 32, "hash"),  # no 0x
        ("evm", "0x" + "zz" * 32, "hash"),  # not hex
        ("bitcoin", "0x" + "cd" * 32, "hash"),  # an EVM hash on Bitcoin
        ("bitcoin", "cd" * 31, "hash"),
        ("solana", BTC_TXID, "network"),
    ],
)
def test_malformed_hashes_are_refused(network: str, value: str, field: str) -> None:
    with pytest.raises(InvalidValue) as raised:
        tx_proof(network, value, "deposit")
    assert raised.value.field == field


def test_a_direction_is_deposit_or_withdrawal() -> None:
    with pytest.raises(InvalidValue, match="deposit or withdrawal"):
        tx_proof("evm", EVM_HASH, "transfer")


# --- file proofs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "name", "kind"),
    [
        (PNG, "wallet.png", "image/png"),
        (JPEG, "x.JPG", "image/jpeg"),
        (PDF, "s.pdf", "application/pdf"),
    ],
)
def test_accepted_files_are_kept_by_their_hash(data: bytes, name: str, kind: str) -> None:
    proof = check_file(RULES, data, declared_type=kind, name=name, kind="bank_statement")
    assert (proof.content_type, proof.size, proof.kind) == (
        kind,
        len(data),
        FileKind.BANK_STATEMENT,
    )
    assert len(proof.sha256) == 64


def test_the_type_is_sniffed_not_declared() -> None:
    proof = check_file(
        RULES, PNG, declared_type="application/octet-stream", name="shot", kind="wallet_screenshot"
    )
    assert proof.content_type == "image/png"


@pytest.mark.parametrize(
    ("data", "declared", "name", "field", "words"),
    [
        (PNG, "image/png", "wallet.exe", "name", "ends .exe but the file is image/png"),
        (b"MZ\x90\x00" + b"\x00" * 50, "image/png", "wallet.png", "file", "x-msdownload"),
        (b"hello, world", "image/png", "wallet.png", "file", "cannot recognise"),
        (b"GIF89a" + b"\x00" * 10, "image/gif", "a.gif", "file", "image/gif file"),
        (PDF, "image/png", "wallet.png", "content_type", "says image/png but the file is"),
        (b"", "image/png", "a.png", "file", "empty"),
    ],
)
def test_wrong_files_are_refused(
    data: bytes, declared: str, name: str, field: str, words: str
) -> None:
    with pytest.raises(InvalidValue) as raised:
        check_file(RULES, data, declared_type=declared, name=name, kind="wallet_screenshot")
    assert raised.value.field == field and words in raised.value.message


def test_an_oversized_file_is_refused() -> None:
    small = ProofRules(max_file_bytes=100)
    with pytest.raises(InvalidValue, match="the most accepted is 100"):
        check_file(small, PNG, declared_type="image/png", name="a.png", kind="wallet_screenshot")


def test_a_file_kind_is_a_screenshot_or_a_statement() -> None:
    with pytest.raises(InvalidValue, match="wallet_screenshot, bank_statement"):
        check_file(RULES, PNG, declared_type="image/png", name="a.png", kind="selfie")


# --- personal data -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "dateOfBirth",
        "date_of_birth",
        "DOB",
        "dob",
        "birth-date",
        "passport_scan",
        "PassportNumber",
        "id_number",
        "IDNumber",
        "national_id",
        "selfie",
        "selfieWithId",
        "SSN",
        "social_security_number",
        "drivers_license",
        "identity-document",
        "id_card_photo",
    ],
)
def test_personal_data_fields_are_refused_in_any_spelling(name: str) -> None:
    assert is_personal_data_field(name)
    with pytest.raises(ContextRefused) as raised:
        refuse_personal_data({"customer_id": "C-1", name: "x"})
    assert [p.field for p in raised.value.problems] == [name]
    assert "never ask for identity documents" in str(raised.value)
    assert "transaction hashes or screenshots" in PERSONAL_DATA_RULE


@pytest.mark.parametrize(
    "name", ["customer_id", "hash", "network", "direction", "reference", "kind", "adobe", "video"]
)
def test_ordinary_fields_pass(name: str) -> None:
    assert not is_personal_data_field(name)


def test_every_personal_data_field_is_named_at_any_depth() -> None:
    fields = {"proofs": [{"hash": EVM_HASH}, {"passport": "x"}], "extra": {"dob": "1990"}}
    with pytest.raises(ContextRefused) as raised:
        refuse_personal_data(fields)
    assert [p.field for p in raised.value.problems] == ["proofs[1].passport", "extra.dob"]


# --- states --------------------------------------------------------------------------------


def test_opening_needs_the_table_to_ask_for_proof() -> None:
    self_serve = VerificationPolicy(
        rules=(DecisionRule("r", Need(NeedKind.SELF_SERVE, "r", "use the reset", template="t")),)
    )
    with pytest.raises(IllegalTransition, match="use the reset"):
        Verification.open(
            self_serve,
            reference="HD-1",
            customer_id="C-1",
            account_value=Decimal(0),
            state=LOST,
            at=T0,
            by="alice",
        )


def test_enough_proof_moves_it_to_the_review_queue() -> None:
    verification = opened()
    assert status(verification) is VerificationStatus.AWAITING_PROOF
    verification.add_proof(tx_proof("evm", EVM_HASH, "deposit"), rules=RULES, at=T0, by="alice")
    assert status(verification) is VerificationStatus.AWAITING_PROOF
    shot = check_file(RULES, PNG, declared_type="image/png", name="a.png", kind="wallet_screenshot")
    verification.add_proof(shot, rules=RULES, at=T0, by="alice")
    assert status(verification) is VerificationStatus.NOT_STARTED
    assert verification.proof_complete_at == T0 and verification.collected_by == ("alice",)
    kinds = [e.kind for e in verification.events]
    assert kinds == ["verification_opened", "proof_added", "proof_added", "proof_complete"]


def test_screenshots_alone_do_not_suffice() -> None:
    verification = opened()
    for data, name in ((PNG, "a.png"), (PDF, "b.pdf")):
        proof = check_file(RULES, data, declared_type="", name=name, kind="bank_statement")
        verification.add_proof(proof, rules=RULES, at=T0, by="alice")
    assert status(verification) is VerificationStatus.AWAITING_PROOF


def test_the_same_proof_twice_is_refused() -> None:
    verification = with_proof()
    proof = tx_proof("evm", EVM_HASH, "withdrawal")
    add = lambda: verification.add_proof(proof, rules=RULES, at=T0, by="bob")  # noqa: E731
    assert "already recorded" in unchanged_by(verification, InvalidValue, add)


def test_reminders_then_close_unverified() -> None:
    verification = opened()
    verification.remind(at=T0 + timedelta(hours=48), by="clock")
    verification.remind(at=T0 + timedelta(days=5), by="clock")
    verification.remind(at=T0 + timedelta(days=7), by="clock", final=True)
    verification.close_unverified(at=T0 + timedelta(days=10), by="clock")
    assert verification.reminders_sent == 2 and verification.final_notice_at is not None
    assert status(verification) is VerificationStatus.CLOSED_UNVERIFIED
    assert verification.instruction() is None


def test_close_unverified_only_from_awaiting_proof() -> None:
    verification = with_proof()
    close = lambda: verification.close_unverified(at=T0, by="clock")  # noqa: E731
    assert "awaiting_proof" in unchanged_by(verification, IllegalTransition, close)


def test_no_proof_after_a_decision() -> None:
    verification = with_proof()
    verification.refuse(reason="hashes are not this account's", by="carol", role=MANAGER, at=T0)
    add = lambda: verification.add_proof(  # noqa: E731
        tx_proof("evm", "0x" + "ee" * 32, "deposit"), rules=RULES, at=T0, by="alice"
    )
    unchanged_by(verification, IllegalTransition, add)


# --- four eyes -----------------------------------------------------------------------------


def approve(
    verification: Verification,
    by: str,
    role: SupportRole | None = MANAGER,
    changes: frozenset[Change] = EVERYTHING,
) -> object:
    return lambda: verification.approve(changes, reason="hashes match", by=by, role=role, at=T0)


def test_approval_before_enough_proof_is_refused() -> None:
    verification = opened()
    unchanged_by(verification, IllegalTransition, approve(verification, "carol"))


def test_the_collector_may_not_approve() -> None:
    verification = with_proof(by="carol")
    assert "four eyes" in unchanged_by(verification, Forbidden, approve(verification, "carol"))


@pytest.mark.parametrize("role", [SupportRole.AGENT, SupportRole.TIER_LEAD, None])
def test_only_managers_approve(role: SupportRole | None) -> None:
    verification = with_proof()
    message = unchanged_by(verification, Forbidden, approve(verification, "bob", role))
    assert "only managers may" in message


def test_a_manager_approves_and_the_instruction_follows() -> None:
    verification = with_proof()
    decision = verification.approve(
        frozenset({Change.CLEAR_2FA}), reason="hashes match", by="carol", role=MANAGER, at=T0
    )
    assert decision is not None and verification.status is VerificationStatus.APPROVED
    instruction = verification.instruction()
    assert instruction is not None
    assert instruction.as_dict() == {
        "verification_id": None,
        "reference": "HD-1",
        "customer_id": "C-1",
        "changes": ("clear_2fa",),
        "approved_by": ("carol",),
        "approved_at": T0.isoformat(),
        "reason": "hashes match",
    }
    assert verification.recommendations() == (Recommendation.WITHDRAWAL_HOLD,)
    assert verification.files_purge_at(RULES) is None  # no files to purge


def test_replacing_a_contact_recommends_a_notice_to_the_old_one() -> None:
    verification = with_proof()
    verification.approve(EVERYTHING, reason="ok", by="carol", role=SupportRole.CIO, at=T0)
    assert Recommendation.NOTIFY_OLD_CONTACTS in verification.recommendations()


def test_changes_not_asked_for_or_none_are_refused() -> None:
    policy = VerificationPolicy(
        rules=(
            DecisionRule(
                "2fa",
                Need(
                    NeedKind.VERIFY, "2fa", "x", changes=frozenset({Change.CLEAR_2FA}), template="t"
                ),
            ),
        )
    )
    verification = Verification.open(
        policy, reference="R", customer_id="C", account_value=Decimal(1), state=LOST, at=T0, by="a"
    )
    verification.add_proof(tx_proof("evm", EVM_HASH, "deposit"), rules=RULES, at=T0, by="a")
    verification.add_proof(tx_proof("bitcoin", BTC_TXID, "deposit"), rules=RULES, at=T0, by="a")
    message = unchanged_by(verification, InvalidValue, approve(verification, "carol"))
    assert "not what the proof was asked for" in message
    unchanged_by(verification, InvalidValue, approve(verification, "carol", changes=frozenset()))


def test_a_blank_reason_is_refused() -> None:
    verification = with_proof()
    action = lambda: verification.approve(  # noqa: E731
        EVERYTHING, reason="  ", by="carol", role=MANAGER, at=T0
    )
    unchanged_by(verification, InvalidValue, action)


def test_high_value_needs_two_different_managers() -> None:
    verification = with_proof("25000")
    assert verification.two_managers
    assert verification.approve(EVERYTHING, reason="a", by="carol", role=MANAGER, at=T0) is None
    assert status(verification) is VerificationStatus.AWAITING_SECOND_APPROVAL
    assert "second, different manager" in unchanged_by(
        verification, Forbidden, approve(verification, "carol")
    )
    decision = verification.approve(EVERYTHING, reason="b", by="dana", role=MANAGER, at=T0)
    assert decision is not None and decision.by == ("carol", "dana")
    assert status(verification) is VerificationStatus.APPROVED


def test_high_value_managers_must_agree_on_the_changes() -> None:
    verification = with_proof("25000")
    verification.approve(EVERYTHING, reason="a", by="carol", role=MANAGER, at=T0)
    only_2fa = approve(verification, "dana", changes=frozenset({Change.CLEAR_2FA}))
    assert "approve the same changes, or refuse" in unchanged_by(
        verification, IllegalTransition, only_2fa
    )
    verification.refuse(reason="we disagree", by="dana", role=MANAGER, at=T0)
    assert status(verification) is VerificationStatus.REFUSED
    assert verification.instruction() is None and verification.recommendations() == ()


def test_refusing_needs_a_manager_and_an_open_verification() -> None:
    verification = with_proof()
    refuse = lambda: verification.refuse(reason="no", by="bob", role=AGENT, at=T0)  # noqa: E731
    unchanged_by(verification, Forbidden, refuse)
    verification.refuse(reason="no", by="carol", role=MANAGER, at=T0)
    again = lambda: verification.refuse(reason="no", by="carol", role=MANAGER, at=T0)  # noqa: E731
    unchanged_by(verification, IllegalTransition, again)


def test_files_are_purged_after_the_decision_plus_the_retention() -> None:
    verification = opened()
    verification.add_proof(tx_proof("evm", EVM_HASH, "deposit"), rules=RULES, at=T0, by="alice")
    shot = check_file(RULES, PNG, declared_type="image/png", name="a.png", kind="wallet_screenshot")
    verification.add_proof(shot, rules=RULES, at=T0, by="alice")
    decided = T0 + timedelta(days=1)
    verification.refuse(reason="not theirs", by="carol", role=MANAGER, at=decided)
    assert verification.files_purge_at(RULES) == decided + timedelta(days=30)


@pytest.mark.parametrize(
    ("logged_in", "balance", "words"),
    [
        (True, True, "withdraw your balance"),
        (True, False, "open a new account"),
        (False, True, "are lost"),
        (False, False, "are lost"),
    ],
)
def test_advice_when_no_proof_is_possible(logged_in: bool, balance: bool, words: str) -> None:
    assert words in no_proof_advice(logged_in=logged_in, has_balance=balance)
