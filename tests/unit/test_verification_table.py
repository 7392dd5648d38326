"""The shipped decision table of account-ownership verification, cell by cell, against the
policy written here in plain words (independently of the YAML); and the loader's
refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from incident.adapters.files.verification_files import SHIPPED, load_verification
from incident.domain.errors import PlaybookProblem
from incident.domain.verification_policy import (
    AccountState,
    Change,
    DecisionRule,
    Feature,
    FeatureState,
    Need,
    NeedKind,
    SelfServeFlow,
    TableIncomplete,
    VerificationPolicy,
    all_account_states,
    decide,
)

W, N, X = FeatureState.WORKING, FeatureState.NOT_SET, FeatureState.NOT_WORKING
SHIPPED_DIR = SHIPPED.parent


def expected(state: AccountState) -> tuple[NeedKind, frozenset[Change], SelfServeFlow | None]:
    """The policy in words.

    - Nothing lost: nothing to do.
    - A lost 2FA is cleared only after proof.
    - A lost e-mail or phone is changed in settings when the customer is logged in with
      working 2FA (2FA confirms it); otherwise it is replaced after proof.
    - A forgotten password, not logged in, with neither e-mail nor phone working: a new
      e-mail is set after proof, to receive the reset.
    - Otherwise the customer serves themselves: settings for a contact; a forgotten
      password is reset by e-mail, else by phone, else changed in settings."""
    password, email, phone, two_factor = (state.state(f) for f in Feature)
    if X not in (password, email, phone, two_factor):
        return NeedKind.NOTHING_TO_DO, frozenset(), None
    confirmed_by_2fa = state.logged_in and two_factor is W
    changes = set()
    if two_factor is X:
        changes.add(Change.CLEAR_2FA)
    if email is X and not confirmed_by_2fa:
        changes.add(Change.REPLACE_EMAIL)
    if phone is X and not confirmed_by_2fa:
        changes.add(Change.REPLACE_PHONE)
    if not state.logged_in and password is X and W not in (email, phone):
        changes.add(Change.REPLACE_EMAIL)
    if changes:
        return NeedKind.VERIFY, frozenset(changes), None
    if X in (email, phone):
        return NeedKind.SELF_SERVE, frozenset(), SelfServeFlow.SETTINGS
    if email is W:
        return NeedKind.SELF_SERVE, frozenset(), SelfServeFlow.PASSWORD_RESET_EMAIL
    if phone is W:
        return NeedKind.SELF_SERVE, frozenset(), SelfServeFlow.PASSWORD_RESET_PHONE
    return NeedKind.SELF_SERVE, frozenset(), SelfServeFlow.SETTINGS


def shipped_policy() -> VerificationPolicy:
    problems: list[PlaybookProblem] = []
    policy = load_verification(SHIPPED_DIR, problems)
    assert problems == []
    return policy


POLICY = shipped_policy()
CELLS = list(all_account_states())


def test_there_are_162_cells() -> None:
    assert len(CELLS) == len(set(CELLS)) == 162


@pytest.mark.parametrize("state", CELLS, ids=lambda s: s.words())
def test_each_cell_decides_as_the_policy_says(state: AccountState) -> None:
    need = decide(POLICY, state)
    assert (need.kind, need.changes, need.flow) == expected(state)
    assert need.why
    if need.kind is NeedKind.NOTHING_TO_DO:
        assert need.template is None
    else:
        assert need.template


def test_every_rule_decides_some_cell() -> None:
    used = {decide(POLICY, state).rule for state in CELLS}
    assert used == {rule.id for rule in POLICY.rules}


def test_a_hand_built_incomplete_table_names_the_cell() -> None:
    only = DecisionRule("only-logged-in", Need(NeedKind.NOTHING_TO_DO, "x", "y"), logged_in=True)
    state = AccountState.of(logged_in=False, password=W, email=W, phone=W, two_factor=W)
    with pytest.raises(TableIncomplete, match="not logged in"):
        decide(VerificationPolicy(rules=(only,)), state)


# --- the loader ----------------------------------------------------------------------------


def load_text(tmp_path: Path, text: str) -> tuple[VerificationPolicy, list[PlaybookProblem]]:
    (tmp_path / "verification.yaml").write_text(text)
    problems: list[PlaybookProblem] = []
    return load_verification(tmp_path, problems, shipped=tmp_path / "absent.yaml"), problems


def only_problem(tmp_path: Path, text: str) -> PlaybookProblem:
    policy, problems = load_text(tmp_path, text)
    assert len(problems) == 1 and policy.rules == ()
    assert problems[0].file.endswith("verification.yaml")
    return problems[0]


CATCH_ALL = "  - {id: rest, why: all, nothing_to_do: {}}\n"


def test_a_directory_without_the_file_gets_the_shipped_policy(tmp_path: Path) -> None:
    problems: list[PlaybookProblem] = []
    policy = load_verification(tmp_path, problems)
    assert problems == [] and policy == POLICY


def test_a_minimal_table_with_a_catch_all_loads_with_defaults(tmp_path: Path) -> None:
    policy, problems = load_text(tmp_path, "rules:\n" + CATCH_ALL)
    assert problems == []
    assert policy.proof.min_proofs == 2 and policy.clocks.reminders


def test_an_incomplete_table_is_refused_naming_a_missing_cell(tmp_path: Path) -> None:
    problem = only_problem(
        tmp_path,
        "rules:\n  - {id: in, why: x, logged_in: yes, nothing_to_do: {}}\n",
    )
    assert problem.field == "rules"
    assert "81 account states have no rule" in problem.message
    assert "not logged in; password working" in problem.message


def test_an_unknown_state_name_is_refused(tmp_path: Path) -> None:
    problem = only_problem(
        tmp_path,
        "rules:\n  - {id: a, why: x, email: [working, broken], nothing_to_do: {}}\n" + CATCH_ALL,
    )
    assert problem.field == "rules[a].email"
    assert "'broken'" in problem.message and "not_working" in problem.message


def test_an_unknown_feature_or_change_is_refused(tmp_path: Path) -> None:
    feature = only_problem(tmp_path, "rules:\n  - {id: a, why: x, pin: any, nothing_to_do: {}}\n")
    assert feature.field == "rules[a].pin"
    change = only_problem(
        tmp_path,
        "rules:\n  - {id: a, why: x, verify: {changes: [clear_pin], template: t}}\n",
    )
    assert change.field == "rules[a].verify.changes" and "clear_2fa" in change.message


def test_a_rule_needs_one_outcome_and_a_reason(tmp_path: Path) -> None:
    two = only_problem(
        tmp_path,
        "rules:\n  - {id: a, why: x, nothing_to_do: {}, self_serve: {flow: settings}}\n",
    )
    assert "exactly one outcome" in two.message
    why = only_problem(tmp_path, "rules:\n  - {id: a, nothing_to_do: {}}\n")
    assert why.field == "rules[a].why"


def test_a_bad_logged_in_value_is_refused(tmp_path: Path) -> None:
    problem = only_problem(
        tmp_path, "rules:\n  - {id: a, why: x, logged_in: maybe, nothing_to_do: {}}\n"
    )
    assert problem.field == "rules[a].logged_in"


@pytest.mark.parametrize(
    ("clocks", "field"),
    [
        ("{reminders: [48 hours]}", "clocks.reminders[0]"),
        ("{close_after: soon}", "clocks.close_after"),
        ("{reminders: [5d, 48h]}", "clocks"),
        ("{final_notice_after: 12d, close_after: 10d}", "clocks"),
    ],
)
def test_bad_spans_are_refused(tmp_path: Path, clocks: str, field: str) -> None:
    problem = only_problem(tmp_path, f"rules:\n{CATCH_ALL}clocks: {clocks}\n")
    assert problem.field == field


def test_business_spans_are_taken(tmp_path: Path) -> None:
    policy, problems = load_text(
        tmp_path, f"rules:\n{CATCH_ALL}clocks: {{reminders: [2 business days]}}\n"
    )
    assert problems == [] and policy.clocks.reminders[0].business


@pytest.mark.parametrize(
    ("proof", "field"),
    [
        ("{max_file_size: huge}", "proof.max_file_size"),
        ("{min_proofs: 1, min_transactions: 2}", "proof.min_proofs"),
        ("{retention: forever}", "proof.retention"),
        ("{content_types: image/png}", "proof.content_types"),
        ("{colour: red}", "proof.colour"),
    ],
)
def test_bad_proof_rules_are_refused(tmp_path: Path, proof: str, field: str) -> None:
    assert only_problem(tmp_path, f"rules:\n{CATCH_ALL}proof: {proof}\n").field == field


def test_invalid_yaml_is_reported(tmp_path: Path) -> None:
    assert "not valid YAML" in only_problem(tmp_path, "rules: [\n").message
