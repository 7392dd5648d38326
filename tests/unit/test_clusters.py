"""Clusters: joining, windows, novelty, the index's bookkeeping, the index against the plain
path, and clustering quality on the labelled corpus (tests/corpus.py)."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from incident.domain.clusters import (
    WORD_MEMORY,
    ClusterEntry,
    ClusterIndex,
    ClusterRules,
    comparable,
    compare,
    match_plain,
    new_cluster,
    seen_before_plain,
    similarity,
)
from incident.domain.signatures import Signature, signature
from tests.corpus import PROBLEMS, generate, pairwise

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
RULES = ClusterRules()
TX = "5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060"


def sig(text: str, category: str = "withdrawals", component: str = "crypto") -> Signature:
    return signature(text, category=category, component=component)


BTC_STUCK = sig(f"My BTC withdrawal is stuck in pending since 10:05. Txid {TX}")
BTC_STUCK_AGAIN = sig("Hi team, BTC withdrawal stuck in pending for 5 hours, amount 0.5 BTC")


# --- The similarity --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (BTC_STUCK, BTC_STUCK_AGAIN),
        (sig("Withdrawl of BTC stuk in pendng"), BTC_STUCK),  # typos
        (sig("Bridge transfer to Arbitrum stuck"), sig("bridge transfer to arbitrrum stuck")),
        (sig("BTC and ETH withdrawals stuck in pending"), BTC_STUCK),  # naming more: fine
        (sig("2FA code by e-mail not arriving"), sig("2FA email code not arriving")),
    ],
)
def test_reports_of_one_problem_are_similar(one: Signature, other: Signature) -> None:
    assert similarity(one, other) >= RULES.threshold


@pytest.mark.parametrize(
    ("one", "other"),
    [
        # One asset, network or channel each: any text score finds these alike.
        (BTC_STUCK, sig("My USDT withdrawal is stuck in pending since 10:05")),
        (sig("USDT on TRC20 stuck in pending"), sig("USDT on ERC20 stuck in pending")),
        (sig("Bridge transfer to Polygon stuck"), sig("bridge transfer to arbitrrum stuck")),
        (sig("2FA SMS code not arriving"), sig("2FA email code not arriving")),
        # Error codes: compared exactly, and a code against none.
        (sig("Card declined with error E1042"), sig("Card declined with error E1043")),
        (sig("Card declined with error E1042"), sig("Card declined")),
        # Another key.
        (BTC_STUCK, sig(BTC_STUCK.text, component="fiat")),
        # No content word in common.
        (sig("Hi team, thanks"), sig("Hello support, regards")),
        (BTC_STUCK, sig("How do I change the phone number on my account?")),
        # A word in common, not the problem.
        (
            sig("Can I translate the demo account into Italian?"),
            sig("Is there a way to translate the loyalty tier for my bank?"),
        ),
    ],
)
def test_different_problems_are_not(one: Signature, other: Signature) -> None:
    assert similarity(one, other) < RULES.threshold


def test_compare_below_the_cutoff_is_zero() -> None:
    one, other = comparable(BTC_STUCK), comparable(BTC_STUCK_AGAIN)
    score = compare(one, other)
    assert 0 < score < 100
    assert compare(one, other, cutoff=score) == score
    assert compare(one, other, cutoff=score + 0.01) == 0.0


_VOCABULARY = (
    "btc usdt withdrawal withdrawl stuck stuk pending deposit card declined sms email "
    "arbitrum polygon bridge transfer hi thanks maria e1042 e1043 0.5 <tx>"
)
_WORDS = st.lists(
    st.sampled_from(_VOCABULARY.split()),
    max_size=8,
).map(" ".join)


@given(_WORDS, _WORDS, st.sampled_from(["crypto", "fiat"]))
def test_similarity_is_symmetric_and_keyed(one: str, other: str, component: str) -> None:
    a, b = sig(one), sig(other, component=component)
    assert similarity(a, b) == similarity(b, a)
    assert 0 <= similarity(a, b) <= 100
    if component != "crypto" or a.error_codes != b.error_codes:
        assert similarity(a, b) == 0


# --- Joining, windows, novelty ---------------------------------------------------------------


def test_a_case_joins_the_cluster_of_its_problem() -> None:
    index = ClusterIndex(RULES)
    first = index.assign(BTC_STUCK, T0, 1)
    second = index.assign(BTC_STUCK_AGAIN, T0 + HOUR, 2)
    assert (first.joined, first.new_signature) == (False, True)
    assert (second.joined, second.new_signature, second.entry.id) == (True, False, 1)
    assert index.get(1) == second.entry
    assert (second.entry.cases, second.entry.first_seen, second.entry.last_seen) == (
        2,
        T0,
        T0 + HOUR,
    )
    assert len(index) == 1


def test_outside_the_join_window_a_case_starts_a_cluster_but_is_not_new() -> None:
    index = ClusterIndex(RULES)
    index.assign(BTC_STUCK, T0, 1)
    later = index.assign(BTC_STUCK_AGAIN, T0 + RULES.join_window + HOUR, 2)
    assert (later.joined, later.entry.id, later.new_signature) == (False, 2, False)


def test_the_join_window_slides_with_the_last_case() -> None:
    index = ClusterIndex(RULES)
    index.assign(BTC_STUCK, T0, 1)
    step = RULES.join_window - HOUR
    for n in range(1, 5):  # each case within the window of the one before
        assert index.assign(BTC_STUCK_AGAIN, T0 + n * step, 10 + n).entry.id == 1
    assert index.get(1).last_seen == T0 + 4 * step
    assert index.get(1).last_seen - index.get(1).first_seen > 3 * RULES.join_window


def test_touch_slides_the_window_and_never_goes_back() -> None:
    index = ClusterIndex(RULES)
    index.assign(BTC_STUCK, T0, 1)
    at = T0 + RULES.join_window + DAY
    assert index.match(BTC_STUCK_AGAIN, at) is None
    assert index.touch(1, at - HOUR).last_seen == at - HOUR
    assert index.touch(1, T0).last_seen == at - HOUR
    assert index.match(BTC_STUCK_AGAIN, at) == 1


def test_a_closed_cluster_takes_no_case_but_still_counts_for_novelty() -> None:
    index = ClusterIndex(RULES)
    index.assign(BTC_STUCK, T0, 1)
    assert index.close(1).open is False
    assert index.match(BTC_STUCK_AGAIN, T0 + HOUR) is None
    assert index.seen_before(BTC_STUCK_AGAIN, T0 + HOUR)
    assignment = index.assign(BTC_STUCK_AGAIN, T0 + HOUR, 2)
    assert (assignment.joined, assignment.new_signature) == (False, False)


def test_a_signature_not_seen_for_the_novelty_window_is_new_again() -> None:
    index = ClusterIndex(RULES)
    index.assign(BTC_STUCK, T0, 1)
    assert index.seen_before(BTC_STUCK_AGAIN, T0 + RULES.novelty_window)
    assert not index.seen_before(BTC_STUCK_AGAIN, T0 + RULES.novelty_window + HOUR)
    assert index.assign(BTC_STUCK_AGAIN, T0 + 31 * DAY, 2).new_signature


@pytest.mark.parametrize(
    "other",
    [
        sig("My USDT withdrawal is stuck in pending since 10:05"),
        sig(BTC_STUCK_AGAIN.text, component="fiat"),
        sig("BTC withdrawal stuck in pending, error E1042"),
    ],
)
def test_another_asset_key_or_code_never_joins(other: Signature) -> None:
    index = ClusterIndex(RULES)
    index.assign(BTC_STUCK, T0, 1)
    assert index.match(other, T0 + HOUR) is None
    assert not index.seen_before(other, T0 + HOUR)


def test_the_most_similar_cluster_wins_and_ties_go_to_the_oldest() -> None:
    index = ClusterIndex(RULES)
    index.add(new_cluster(7, BTC_STUCK, T0))
    index.add(new_cluster(3, BTC_STUCK, T0))
    index.add(new_cluster(5, sig("BTC withdrawal stuck, nothing arrived"), T0))
    assert index.match(BTC_STUCK, T0 + HOUR) == 3
    assert match_plain(index, BTC_STUCK, T0 + HOUR, RULES) == 3
    assert index.match(sig("BTC withdrawal stuck, nothing arrived yet"), T0 + HOUR) == 5


def test_the_consensus_drops_the_first_reports_noise() -> None:
    noisy = sig("Hi, BTC withdrawl stuck pending, Screenshot attached. Thanks Maria")
    index = ClusterIndex(RULES)
    index.assign(noisy, T0, 1)
    assert "maria" in index.get(1).representative.words
    for n, text in enumerate(
        [
            "BTC withdrawal stuck in pending, txid missing",
            "cust reports BTC withdrawal stuck in pending",
            "BTC withdrawal of 0.3 BTC stuck in pending",
        ]
    ):
        assert index.assign(sig(text), T0 + n * HOUR, 10 + n).entry.id == 1
    entry = index.get(1)
    assert entry.cases == 4
    assert entry.consensus == ("btc", "pending", "stuck", "withdrawal")
    assert index.match(sig("btc withdrawal stuck pending"), T0 + 5 * HOUR) == 1


def test_a_cluster_remembers_a_bounded_number_of_words() -> None:
    index = ClusterIndex(RULES)
    index.assign(BTC_STUCK, T0, 0)
    for n in range(200):
        name = "".join(chr(ord("a") + int(d)) for d in f"{n:03d}")
        index.assign(sig(f"BTC withdrawal stuck in pending, regards {name}x"), T0, 1 + n)
    entry = index.get(0)
    assert entry.cases == 201
    assert len(entry.words) <= WORD_MEMORY
    assert entry.consensus == ("btc", "pending", "stuck", "withdrawal")


# --- The index's bookkeeping -----------------------------------------------------------------


def test_prune_forgets_what_no_rule_looks_at() -> None:
    index = ClusterIndex(RULES)
    index.assign(BTC_STUCK, T0, 1)
    index.assign(sig("Card declined with error E1042"), T0 + 10 * DAY, 2)
    assert index.prune(T0 + RULES.memory) == []
    assert index.prune(T0 + RULES.memory + HOUR) == [1]
    assert (len(index), 1 in index, 2 in index) == (1, False, True)
    assert not index.seen_before(BTC_STUCK_AGAIN, T0 + 20 * DAY)


def test_remove_and_add_again() -> None:
    index = ClusterIndex(RULES)
    entry = index.assign(BTC_STUCK, T0, 1).entry
    index.remove(1)
    assert index.match(BTC_STUCK_AGAIN, T0) is None
    assert len(index) == 0
    index.add(entry)
    index.add(entry)  # the same id again replaces it
    assert index.match(BTC_STUCK_AGAIN, T0) == 1
    assert len(index) == 1
    with pytest.raises(ValueError, match="exists"):
        index.assign(BTC_STUCK, T0, 1)


def test_reload_replaces_one_keys_clusters() -> None:
    card = sig("Card declined with error E1042", "cards", "payments")
    index = ClusterIndex(RULES)
    index.assign(BTC_STUCK, T0, 1)
    index.assign(card, T0, 2)
    stored = ClusterEntry(9, BTC_STUCK_AGAIN, T0 - DAY, T0)
    index.reload(BTC_STUCK.key(), [stored])
    assert sorted(entry.id for entry in index) == [2, 9]
    assert index.match(BTC_STUCK, T0) == 9
    assert index.match(card, T0) == 2
    with pytest.raises(ValueError, match="not of"):
        index.reload(BTC_STUCK.key(), [new_cluster(3, card, T0)])
    assert sorted(entry.id for entry in index) == [2, 9]


def test_rules_are_checked() -> None:
    with pytest.raises(ValueError, match="threshold"):
        ClusterRules(threshold=0)
    with pytest.raises(ValueError, match="windows"):
        ClusterRules(join_window=timedelta(0))
    assert ClusterRules(join_window=40 * DAY).memory == 40 * DAY


# --- The index against the plain path --------------------------------------------------------

_KEYS = st.sampled_from([("withdrawals", "crypto"), ("cards", "payments")])
_TEXTS = st.lists(
    st.sampled_from(_VOCABULARY.split()),
    min_size=1,
    max_size=6,
).map(" ".join)
_CASES = st.lists(
    st.tuples(_TEXTS, _KEYS, st.integers(0, 24 * 40), st.sampled_from(["assign", "close"])),
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(_CASES, st.floats(10, 60))
def test_the_index_answers_as_the_plain_path(
    cases: list[tuple[str, tuple[str, str], int, str]], threshold: float
) -> None:
    rules = ClusterRules(threshold=threshold, join_window=timedelta(hours=50))
    index = ClusterIndex(rules)
    for n, (text, key, hours, action) in enumerate(sorted(cases, key=lambda case: case[2])):
        at, case = T0 + hours * HOUR, sig(text, *key)
        assert index.match(case, at) == match_plain(index, case, at, rules)
        assert index.seen_before(case, at) == seen_before_plain(index, case, at, rules)
        assignment = index.assign(case, at, n)
        if action == "close":
            index.close(assignment.entry.id)
        if n % 7 == 6:
            index.prune(at)


# --- The labelled corpus ---------------------------------------------------------------------


def test_the_corpus_is_deterministic_and_as_described() -> None:
    corpus = generate(5, 3000)
    assert corpus == generate(5, 3000)
    assert corpus != generate(6, 3000)
    assert [e.at for e in corpus] == sorted(e.at for e in corpus)
    labels = Counter(e.label for e in corpus)
    one_offs = [label for label in labels if label.startswith("one-off")]
    assert len(one_offs) == 300 and all(labels[label] == 1 for label in one_offs)
    assert len(labels) - len(one_offs) == len(PROBLEMS) >= 30
    shared_keys = Counter((p.category, p.component) for p in PROBLEMS)
    assert sum(n for n in shared_keys.values() if n > 1) >= 20  # hard negatives share keys
    assert {p.language for p in PROBLEMS} == {"en", "de", "es", "fr"}
    # Masking leaves no hash, address, amount or id in the signatures.
    for escalation in corpus:
        masked = signature(escalation.text).text
        assert not re.search(r"\d{3}|0x[0-9a-f]{6}", masked), (escalation.text, masked)


def cluster_ids(seed: int, rules: ClusterRules) -> tuple[list[int], list[str], ClusterIndex]:
    """The corpus of `seed` run through an index in time order: each case's cluster."""
    index = ClusterIndex(rules)
    ids, labels = [], []
    for n, escalation in enumerate(generate(seed)):
        case = signature(
            escalation.text, category=escalation.category, component=escalation.component
        )
        assert index.match(case, escalation.at) == match_plain(index, case, escalation.at, rules)
        ids.append(index.assign(case, escalation.at, n).entry.id)
        labels.append(escalation.label)
    return ids, labels, index


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_clustering_the_corpus_reaches_the_target_with_a_margin(seed: int) -> None:
    """Pairwise precision and recall (`tests.corpus.pairwise`; the target is 0.9, asserted
    with a margin), the index agreeing with the plain path on every case on the way."""
    ids, labels, index = cluster_ids(seed, RULES)
    precision, recall = pairwise(ids, labels)
    print(f"seed {seed}: {len(ids)} cases, {len(index)} clusters, {precision=:.3f} {recall=:.3f}")
    assert precision >= 0.93
    assert recall >= 0.93
