"""What account-ownership verification needs, as data: the decision table, the proof rules
and the clocks (`playbooks/support/verification.yaml`, read by
`incident.adapters.files.verification_files`).

Pure. A customer who lost access says what still works: whether they are logged in (or can
log in) and, for each of password, e-mail, phone and 2FA, whether it works, is not set or
no longer works. The table, ordered rules with wildcards, turns that into a `Need`: the
customer can help themselves (a reset flow, or their settings), ownership must be verified
for some changes (clear 2FA, replace the e-mail, replace the phone), or nothing was lost.
The first rule that matches decides; the loader proves every one of the 2 x 3^4 cells has a
rule (`missing_cells`), so `decide` always answers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from enum import StrEnum
from itertools import product

from incident.domain.case_ladder import Span


class Feature(StrEnum):
    """A way into the account."""

    PASSWORD = "password"
    EMAIL = "email"
    PHONE = "phone"
    TWO_FACTOR = "two_factor"


class FeatureState(StrEnum):
    WORKING = "working"
    NOT_SET = "not_set"  # never configured
    NOT_WORKING = "not_working"  # lost, forgotten, no longer reachable


class Change(StrEnum):
    """What the account system changes once ownership is proven."""

    CLEAR_2FA = "clear_2fa"
    REPLACE_EMAIL = "replace_email"  # clear the e-mail (if any) and set the new one
    REPLACE_PHONE = "replace_phone"  # clear the phone (if any) and set the new one

    @property
    def words(self) -> str:
        return _CHANGE_WORDS[self]


_CHANGE_WORDS = {
    Change.CLEAR_2FA: "clear two-factor authentication",
    Change.REPLACE_EMAIL: "clear the e-mail address and set a new one",
    Change.REPLACE_PHONE: "clear the phone number and set a new one",
}


class NeedKind(StrEnum):
    SELF_SERVE = "self_serve"  # the customer can do it: send them to the flow
    VERIFY = "verify"  # ownership must be proven before support changes the account
    NOTHING_TO_DO = "nothing_to_do"  # nothing is lost


class SelfServeFlow(StrEnum):
    PASSWORD_RESET_EMAIL = "password_reset_email"
    PASSWORD_RESET_PHONE = "password_reset_phone"
    SETTINGS = "settings"  # change it in the account's settings, confirmed by 2FA


@dataclass(frozen=True)
class AccountState:
    """What the customer says still works. `features` holds all four features."""

    logged_in: bool
    features: tuple[tuple[Feature, FeatureState], ...]

    @classmethod
    def of(
        cls,
        *,
        logged_in: bool,
        password: FeatureState,
        email: FeatureState,
        phone: FeatureState,
        two_factor: FeatureState,
    ) -> AccountState:
        states = (password, email, phone, two_factor)
        return cls(logged_in, tuple(zip(Feature, states, strict=True)))

    def state(self, feature: Feature) -> FeatureState:
        return dict(self.features)[feature]

    def words(self) -> str:
        """`not logged in; password not_working, email working, ...` (for timelines)."""
        parts = ", ".join(f"{f.value} {s.value}" for f, s in self.features)
        return f"{'logged in' if self.logged_in else 'not logged in'}; {parts}"


def all_account_states() -> Iterator[AccountState]:
    """Every cell of the table: 2 x 3^4 = 162 states."""
    for logged_in in (True, False):
        for states in product(FeatureState, repeat=len(Feature)):
            yield AccountState(logged_in, tuple(zip(Feature, states, strict=True)))


@dataclass(frozen=True)
class Need:
    """What the table decided for one account state."""

    kind: NeedKind
    rule: str  # the id of the rule that decided
    why: str  # the rule's reason, in words support reads
    changes: frozenset[Change] = frozenset()  # VERIFY: what the proof is for
    flow: SelfServeFlow | None = None  # SELF_SERVE: where to send the customer
    template: str | None = None  # the message to the customer (comms/verification/<name>)


@dataclass(frozen=True)
class DecisionRule:
    """One row: matches when every condition holds (None: any value)."""

    id: str
    need: Need
    logged_in: bool | None = None
    conditions: tuple[tuple[Feature, frozenset[FeatureState]], ...] = ()

    def matches(self, state: AccountState) -> bool:
        if self.logged_in is not None and self.logged_in != state.logged_in:
            return False
        return all(state.state(feature) in allowed for feature, allowed in self.conditions)


@dataclass(frozen=True)
class ProofRules:
    """What counts as proof of ownership, and how long files are kept."""

    content_types: frozenset[str] = frozenset({"image/png", "image/jpeg", "application/pdf"})
    max_file_bytes: int = 5 * 1024 * 1024
    # At least this many proofs, of which at least this many transaction hashes: a hash is
    # checked against the account's own ledger, a screenshot only by eye.
    min_proofs: int = 2
    min_transactions: int = 1
    retention: timedelta = timedelta(days=30)  # files are purged this long after the decision


_REMINDERS = (Span(timedelta(hours=48)), Span(timedelta(days=5)))
_FINAL_NOTICE = Span(timedelta(days=7))
_CLOSE = Span(timedelta(days=10))


@dataclass(frozen=True)
class VerificationClocks:
    """When the customer is reminded, warned and the case closed, each counted from the
    request for proof."""

    reminders: tuple[Span, ...] = _REMINDERS
    final_notice_after: Span = _FINAL_NOTICE
    close_after: Span = _CLOSE


@dataclass(frozen=True)
class VerificationPolicy:
    rules: tuple[DecisionRule, ...]
    proof: ProofRules = ProofRules()
    clocks: VerificationClocks = VerificationClocks()
    # Accounts worth this much (EUR) or more need two managers to approve.
    high_value_eur: Decimal = Decimal(10000)
    # Recommended with every approved change: no withdrawal for this long after it.
    withdrawal_hold: timedelta = timedelta(hours=72)
    # Where each verification's one message is kept up to date (`chat:#account-recovery`);
    # None: only the outbox keeps it.
    channel: str | None = None

    def needs_two_managers(self, account_value: Decimal) -> bool:
        return account_value >= self.high_value_eur


class TableIncomplete(ValueError):
    """No rule matches some account state."""


def decide(policy: VerificationPolicy, state: AccountState) -> Need:
    """The need of the first rule matching `state`. The loader has proven the table
    complete; a table built by hand that is not raises TableIncomplete naming the cell."""
    for rule in policy.rules:
        if rule.matches(state):
            return rule.need
    raise TableIncomplete(f"no rule matches: {state.words()}")


def missing_cells(rules: Sequence[DecisionRule]) -> list[AccountState]:
    """The account states no rule matches (empty: the table is complete)."""
    return [s for s in all_account_states() if not any(r.matches(s) for r in rules)]
