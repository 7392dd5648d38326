"""The verification templates (comms/verification/): each one the policy or the steps name
renders for verifications in every state, with lines short enough to read; customer messages
carry no proof content and no internal names; the board carries no proof content either."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from incident.adapters.files.support_files import SUPPORT_DIR, load_support
from incident.adapters.files.templates import JinjaRenderer
from incident.adapters.files.verification_files import verification_templates
from incident.config import PROJECT_ROOT
from incident.domain.case_access import SupportRole
from incident.domain.verification import Verification
from incident.domain.verification_policy import AccountState, Change, FeatureState
from incident.domain.verification_proof import tx_proof
from incident.services.verification_steps import verification_context

COMMS = PROJECT_ROOT / "comms"
PLAYBOOK = load_support(PROJECT_ROOT / "playbooks" / SUPPORT_DIR, comms_dir=COMMS)
POLICY = PLAYBOOK.verification
assert POLICY is not None
RENDERER = JinjaRenderer(COMMS)
AT = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
HASH = "0x" + "ab" * 32
W, LOST = FeatureState.WORKING, FeatureState.NOT_WORKING


def verification(stage: str) -> Verification:
    assert POLICY is not None
    state = AccountState.of(
        logged_in=stage != "closed", password=W, email=W, phone=W, two_factor=LOST
    )
    v = Verification.open(
        POLICY,
        reference="ZD-5",
        customer_id="cust-5",
        account_value=Decimal(100),
        state=state,
        at=AT,
        by="alice",
    )
    v.id = 5
    if stage in ("approved", "refused"):
        later = AT + timedelta(hours=1)
        v.add_proof(tx_proof("evm", HASH, "deposit"), rules=POLICY.proof, at=later, by="alice")
        v.add_proof(
            tx_proof("evm", "0x" + "cd" * 32, "withdrawal"),
            rules=POLICY.proof,
            at=later,
            by="alice",
        )
        if stage == "approved":
            v.approve(
                frozenset({Change.CLEAR_2FA}),
                reason="Both ours",
                by="carol",
                role=SupportRole.MANAGER,
                at=later,
            )
        else:
            v.refuse(
                reason="Hashes belong to another account",
                by="carol",
                role=SupportRole.MANAGER,
                at=later,
            )
    if stage == "closed":
        v.close_unverified(at=AT + timedelta(days=10), by="clock")
    return v


TEMPLATES = [
    t.removeprefix("verification/").removesuffix(".txt.j2") for t in verification_templates(POLICY)
]


def test_every_template_is_named_and_there() -> None:
    on_disk = sorted(
        p.name.removesuffix(".txt.j2") for p in (COMMS / "verification").glob("*.txt.j2")
    )
    assert on_disk == sorted(TEMPLATES)


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("stage", ["awaiting", "approved", "refused", "closed"])
def test_each_renders_in_each_state_without_proof_content(template: str, stage: str) -> None:
    assert POLICY is not None
    text = RENDERER.render(
        f"verification/{template}",
        verification_context(verification(stage), POLICY, base_url="https://x"),
    )
    assert text.strip() and "{{" not in text and "None" not in text
    assert all(len(line) <= 100 for line in text.splitlines())
    assert HASH not in text and "Hashes belong" not in text  # neither the proof nor the reason
    if template != "board":
        assert "carol" not in text and "cust-5" not in text  # customers see no internal names
