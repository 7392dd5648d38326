"""The context gate: the on-chain formats against their published test vectors (EIP-55,
BIP-173, BIP-350, base58check), cleaning a context with every problem named at once, what
each kind of escalation requires, and the tier 1 troubleshooting rule."""

from __future__ import annotations

import json
from collections.abc import Collection
from decimal import Decimal

import pytest
from Crypto.Hash import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from incident.domain.case_context import (
    FIELDS,
    ChecklistItem,
    ContextKind,
    ContextRefused,
    FieldProblem,
    checklist_problems,
    clean_checklist,
    clean_context,
    context_kinds,
    is_bitcoin_address,
    is_bitcoin_txid,
    is_evm_address,
    is_evm_transaction_hash,
    missing_context,
    required_fields,
)
from incident.domain.case_routing import Flag, Level

# --- EVM --------------------------------------------------------------------------------------

# EIP-55's published examples.
EIP55_MIXED = [
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
]
EIP55_ALL_CAPS = [
    "0x52908400098527886E0F7030069857D2E4169EE7",
    "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
]
EIP55_ALL_LOWER = [
    "0xde709f2102306220921060314715629080e2fb77",
    "0x27b1fdb04752bbc536007a920d24acb045561c26",
]


@pytest.mark.parametrize("address", EIP55_MIXED + EIP55_ALL_CAPS + EIP55_ALL_LOWER)
def test_eip55_examples_are_evm_addresses(address: str) -> None:
    assert is_evm_address(address)


@pytest.mark.parametrize("address", EIP55_MIXED)
def test_the_mixed_case_examples_all_lower_case_are_addresses_too(address: str) -> None:
    assert is_evm_address(address.lower())


def flipped(text: str, index: int) -> str:
    return text[:index] + text[index].swapcase() + text[index + 1 :]


@pytest.mark.parametrize(
    ("address", "index"),
    [(a, i) for a in EIP55_MIXED for i in range(2, 42) if a[i].isalpha()],
)
def test_one_letter_of_a_checksummed_address_in_the_wrong_case_fails(
    address: str, index: int
) -> None:
    assert not is_evm_address(flipped(address, index))


@pytest.mark.parametrize(
    "value",
    [
        "",
        "0x",
        "5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",  # no 0x
        "0X5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",  # 0X
        "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beae",  # 39 digits
        "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed0",  # 41 digits
        "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaeg",  # not hex
        " 0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed",
        "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed\n",
        "0x" + "a" * 64,  # a transaction hash
    ],
)
def test_what_is_not_an_evm_address(value: str) -> None:
    assert not is_evm_address(value)


def checksummed_independently(raw: bytes) -> str:
    """EIP-55 by another route than the module's: the digest's bytes, a bit at a time."""
    lower = raw.hex()
    digest = keccak.new(digest_bits=256, data=lower.encode()).digest()
    return "0x" + "".join(
        c.upper() if digest[i // 2] & (0x80 if i % 2 == 0 else 0x08) else c
        for i, c in enumerate(lower)
    )


def test_keccak_is_not_hashlibs_sha3() -> None:
    """Keccak-256 of the empty string, as Ethereum uses it (SHA3-256 pads differently)."""
    digest = keccak.new(digest_bits=256, data=b"").hexdigest()
    assert digest == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=20, max_size=20), st.data())
def test_any_checksummed_address_passes_and_a_flipped_letter_fails(
    raw: bytes, data: st.DataObject
) -> None:
    address = checksummed_independently(raw)
    assert is_evm_address(address)
    letters = [i for i in range(2, 42) if address[i].isalpha()]
    if not letters:
        return
    wrong = flipped(address, data.draw(st.sampled_from(letters)))
    body = wrong[2:]
    # A single case left is no checksum at all, which is accepted; otherwise it must fail.
    assert is_evm_address(wrong) == (body in (body.lower(), body.upper()))


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("0x" + "ab" * 32, True),
        ("0x" + "AB" * 32, True),
        ("0x" + "aB" * 32, True),  # no checksum in transaction hashes
        ("0x88df016429689c079f3b2f6ad39fa052532c56795b733da78a91ebe6a713944b", True),
        ("0x" + "a" * 63, False),
        ("0x" + "a" * 65, False),
        ("0x" + "g" * 64, False),
        ("ab" * 32, False),  # a bitcoin txid
        ("0X" + "ab" * 32, False),
        ("0x" + "ab" * 32 + " ", False),
        ("", False),
    ],
)
def test_evm_transaction_hashes(value: str, valid: bool) -> None:
    assert is_evm_transaction_hash(value) is valid


# --- Bitcoin ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        # The genesis block's coinbase transaction.
        ("4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b", True),
        ("4A5E1E4BAAB89F3A32518A88C31BC87F618F76673E2CC77AB2127B7AFDEDA33B", True),
        ("0x4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b", False),
        ("4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33", False),
        ("4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33bb", False),
        ("4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33z", False),
        ("", False),
    ],
)
def test_bitcoin_txids(value: str, valid: bool) -> None:
    assert is_bitcoin_txid(value) is valid


BASE58_VALID = [
    "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",  # P2PKH (the Bitcoin wiki's example)
    "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",  # P2SH (the same)
    "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa",  # the genesis block's
    "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn",  # testnet P2PKH
    "2MzQwSSnBHWHqSAqtTVQ6v47XtaisrJa1Vc",  # testnet P2SH
]
# BIP-350's valid segwit addresses (which include BIP-173's for version 0).
SEGWIT_VALID = [
    "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4",
    "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7",
    "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y",
    "BC1SW50QGDZ25J",
    "bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs",
    "tb1qqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesrxh6hy",
    "tb1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesf3hn0c",
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
]
# BIP-350's invalid segwit addresses, with its reasons.
SEGWIT_INVALID_BIP350 = [
    ("tc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq5zuyut", "invalid hrp"),
    ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd", "bech32 on v1"),
    ("tb1z0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqglt7rf", "bech32 on v2"),
    ("BC1S0XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ54WELL", "bech32 on v16"),
    ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh", "bech32m on v0"),
    ("tb1q0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq24jc47", "bech32m on v0"),
    ("bc1p38j9r5y49hruaue7wxjce0updqjuyyx0kh56v8s25huc6995vvpql3jow4", "bad checksum char"),
    ("BC130XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ7ZWS8R", "witness version 17"),
    ("bc1pw5dgrnzv", "program of 1 byte"),
    (
        "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v8n0nx0muaewav253zgeav",
        "program of 41 bytes",
    ),
    ("BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P", "v0 program of 16 bytes (BIP-141)"),
    ("tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq47Zagq", "mixed case"),
    ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v07qwwzcrf", "padding > 4 bits"),
    ("tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vpggkg4j", "non-zero padding"),
    ("bc1gmk9yu", "empty data"),
]
# BIP-173's invalid addresses, and its valid v1+ ones, which BIP-350 made invalid (bech32
# where bech32m is now required).
SEGWIT_INVALID_BIP173 = [
    ("tc1qw508d6qejxtdg4y5r3zarvary0c5xw7kg3g4ty", "invalid hrp"),
    ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5", "invalid checksum"),
    ("BC13W508D6QEJXTDG4Y5R3ZARVARY0C5XW7KN40WF2", "invalid witness version"),
    ("bc1rw5uspcuh", "invalid program length"),
    (
        "bc10w508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kw5rljs90",
        "invalid program length",
    ),
    ("tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sL5k7", "mixed case"),
    ("bc1zw508d6qejxtdg4y5r3zarvaryvqyzf3du", "padding > 4 bits"),
    ("tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3pjxtptv", "non-zero padding"),
    (
        "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7k7grplx",
        "v1 in bech32",
    ),
    ("BC1SW50QA3JX3S", "v16 in bech32"),
    ("bc1zw508d6qejxtdg4y5r3zarvaryvg6kdaj", "v2 in bech32"),
]


@pytest.mark.parametrize("address", BASE58_VALID + SEGWIT_VALID)
def test_published_bitcoin_addresses_pass(address: str) -> None:
    assert is_bitcoin_address(address)


@pytest.mark.parametrize(("address", "why"), SEGWIT_INVALID_BIP350 + SEGWIT_INVALID_BIP173)
def test_published_invalid_segwit_addresses_fail(address: str, why: str) -> None:
    assert not is_bitcoin_address(address), why


ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


@pytest.mark.parametrize(
    ("address", "index"),
    [(a, i) for a in BASE58_VALID[:2] for i in range(len(BASE58_VALID[0]))],
)
def test_one_character_changed_in_a_base58_address_fails(address: str, index: int) -> None:
    other = ALPHABET[(ALPHABET.index(address[index]) + 1) % len(ALPHABET)]
    assert not is_bitcoin_address(address[:index] + other + address[index + 1 :])


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("", "empty"),
        ("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2 ", "trailing space"),
        (" 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", "leading space"),
        ("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN", "a character short"),
        ("0BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", "0 is not base58"),
        ("LVg2kJoFNg45Nbpy53h7Fe1wKyeXVRhMH9", "a Litecoin address: version 0x30"),
        ("bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", "regtest is not accepted"),
        ("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "an EVM address"),
        ("bc1" + "q" * 100, "too long"),
    ],
)
def test_what_is_not_a_bitcoin_address(value: str, why: str) -> None:
    assert not is_bitcoin_address(value), why


# --- clean_context ----------------------------------------------------------------------------

TX_EVM = {
    "network": "evm",
    "hash": "0x88df016429689c079f3b2f6ad39fa052532c56795b733da78a91ebe6a713944b",
    "at": "2026-03-02T09:00:00+00:00",
}
TX_BITCOIN = {
    "network": "bitcoin",
    "hash": "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b",
    "at": "2026-03-02T10:30:00+01:00",
}
FULL = {
    "reference": "CASE-1042",
    "customer_id": "C-77",
    "summary": "Withdrawal stuck since Monday.",
    "actions_taken": "Checked the ledger.\nAsked the customer for the hash.",
    "reason": "Needs an on-chain investigation.",
    "amount": "5000.50",
    "currency": "USDT",
    "evidence": ["https://tickets.example.com/1042", "screenshot of the wallet, sent by mail"],
    "customer_plan": "enterprise",
    "account_value": "120000.00",
    "previous_escalations": 1,
    "customer_impact": "Funds unavailable.",
    "troubleshooting": "Replayed the withdrawal: same error.",
    "customer_expectation": "Funds within 24 h.",
    "requested_actions": "Trace the transaction.",
    "transactions": [TX_EVM, TX_BITCOIN],
    "wallet_addresses": [
        {"network": "evm", "address": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"},
        {
            "network": "bitcoin",
            "address": "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
        },
    ],
    "user_attempts": "Retried twice.",
    "expected": "Arrival in the wallet.",
    "actual": "Nothing arrived.",
}


def refusal(raw: object) -> list[tuple[str, str]]:
    with pytest.raises(ContextRefused) as refused:
        clean_context(raw)
    return [(p.field, p.problem) for p in refused.value.problems]


def fields_refused(raw: object) -> list[str]:
    return [field for field, _ in refusal(raw)]


def test_a_full_context_is_clean_as_given_and_json_safe() -> None:
    cleaned = clean_context(FULL)
    assert cleaned == FULL
    assert json.loads(json.dumps(cleaned)) == cleaned


def test_the_table_covers_every_field_of_the_full_context() -> None:
    assert list(FIELDS) == list(FULL)


def test_every_problem_is_named_at_once_by_its_path() -> None:
    problems = refusal(
        {
            "customer_id": "C-1",
            "amount": "-5",
            "transactions": [TX_EVM, {**TX_EVM, "hash": "0x1234"}],
            "evidence": ["a", "b", "c", "bad\x00item"],
        }
    )
    assert [field for field, _ in problems] == ["amount", "evidence[3]", "transactions[1].hash"]


def test_the_refusal_lists_every_problem_one_per_line() -> None:
    with pytest.raises(ContextRefused) as refused:
        clean_context({"amount": 0, "currency": "€", "previous_escalations": -1})
    assert str(refused.value).splitlines() == [
        "amount: must be more than 0",
        "currency: not a currency code; give 3 to 5 letters or digits, like EUR or USDT",
        "previous_escalations: give a number from 0 to 1,000",
    ]


def test_a_field_problem_reads_as_path_then_problem() -> None:
    problem = FieldProblem("transactions[1].hash", "not an EVM transaction hash")
    assert str(problem) == "transactions[1].hash: not an EVM transaction hash"


def test_an_unknown_key_is_refused_naming_it_and_the_known_ones() -> None:
    [(field, problem)] = refusal({"custmer_id": "C-1", "reference": "R-1"})
    assert field == "custmer_id"
    assert "did you mean customer_id?" in problem
    assert all(name in problem for name in FIELDS)


def test_unknown_keys_are_shown_escaped_so_the_listing_stays_one_per_line() -> None:
    [(field, _)] = refusal({"bad\nkey": 1})
    assert field == "'bad\\nkey'"


@pytest.mark.parametrize("raw", [None, [], "context", 3, [("reference", "R")]])
def test_a_context_that_is_not_an_object_is_refused(raw: object) -> None:
    assert fields_refused(raw) == ["context"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("summary", "stuck\x00"),
        ("summary", "stuck \x1b[31m red"),
        ("summary", "\u202egnp.exe"),  # a bidi override
        ("summary", "del\x7f"),
        ("summary", "next\x85line"),  # NEL, a C1 control
        ("reference", "CASE\n1042"),  # one line only
        ("reference", "CASE\u20281042"),
        ("customer_id", "C\t77"),
        ("evidence", ["line\nbreak"]),
        ("transactions", [{**TX_EVM, "hash": TX_EVM["hash"] + "\x00"}]),
    ],
)
def test_control_characters_are_refused_by_the_text_rule(field: str, value: object) -> None:
    [(where, problem)] = refusal({field: value})
    assert where.startswith(field)
    assert "control characters" in problem


def test_line_breaks_and_tabs_are_fine_in_prose() -> None:
    text = "Step 1:\tchecked\nStep 2:\tretried"
    assert clean_context({"actions_taken": text}) == {"actions_taken": text}


def test_text_is_stripped_and_its_limit_is_the_fields() -> None:
    assert clean_context({"summary": "  stuck  "}) == {"summary": "stuck"}
    assert clean_context({"summary": "x" * 2000})["summary"] == "x" * 2000
    [(_, problem)] = refusal({"summary": "x" * 2001})
    assert "2001 characters" in problem
    assert fields_refused({"reference": "x" * 101}) == ["reference"]


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("5000.50", "5000.50"),
        ("5000.5", "5000.50"),
        (5000.5, "5000.50"),
        ("5000.500000", "5000.50"),
        (5000, "5000.00"),
        ("  12 ", "12.00"),
        ("007.5", "7.50"),
        (0.1, "0.10"),
        (1e20, "100000000000000000000.00"),
        ("0.000000000000000001", "0.000000000000000001"),  # one wei
        ("1.123456789012345678", "1.123456789012345678"),
        ("1.1234567890123456780000", "1.123456789012345678"),
        ("1" * 30, "1" * 30 + ".00"),
    ],
)
def test_amounts_are_kept_as_canonical_decimal_strings(given: object, canonical: str) -> None:
    assert clean_context({"amount": given}) == {"amount": canonical}


@pytest.mark.parametrize(
    ("given", "why"),
    [
        (0, "more than 0"),
        ("0.00", "more than 0"),
        ("-5", "a sign"),
        (-5, "negative"),
        ("+5", "a sign"),
        ("1e3", "an exponent"),
        ("1,000", "a separator"),
        ("1_000", "an underscore"),
        ("1 000", "a space"),
        (".5", "no whole part"),
        ("5.", "no fraction after the point"),
        ("NaN", "not a number"),
        ("Infinity", "not a number"),
        (float("nan"), "not a number"),
        (float("inf"), "not a number"),
        (True, "a boolean"),
        ([5], "a list"),
        ("0.0000000000000000001", "19 places"),
        ("1" * 31, "31 digits"),
        ("١٢", "Arabic-Indic digits"),
    ],
)
def test_what_is_not_an_amount(given: object, why: str) -> None:
    assert fields_refused({"amount": given}) == ["amount"], why


@settings(max_examples=300, deadline=None)
@given(
    st.decimals(
        min_value=Decimal("0.000000000000000001"),
        max_value=Decimal("9" * 30),
        places=18,
        allow_nan=False,
        allow_infinity=False,
    )
)
def test_an_amount_keeps_its_value_and_its_canonical_form_is_a_fixed_point(
    amount: Decimal,
) -> None:
    canonical = clean_context({"amount": format(amount, "f")})["amount"]
    assert isinstance(canonical, str)
    assert Decimal(canonical) == amount
    assert clean_context({"amount": canonical}) == {"amount": canonical}


def test_an_account_may_be_worth_nothing_but_not_less() -> None:
    assert clean_context({"account_value": 0}) == {"account_value": "0.00"}
    assert fields_refused({"account_value": "-0.01"}) == ["account_value"]


@pytest.mark.parametrize(
    ("given", "cleaned"),
    [("EUR", "EUR"), ("eur", "EUR"), (" usdt ", "USDT"), ("BTC", "BTC"), ("1INCH", "1INCH")],
)
def test_currencies(given: str, cleaned: str) -> None:
    assert clean_context({"currency": given}) == {"currency": cleaned}


@pytest.mark.parametrize("given", ["EU", "EUROPE", "123", "€", "E-R", "e\ufb00", 978])
def test_what_is_not_a_currency(given: object) -> None:
    assert fields_refused({"currency": given}) == ["currency"]


@pytest.mark.parametrize(
    ("field", "given", "cleaned"),
    [
        ("customer_plan", "Pro", "pro"),
        ("customer_plan", " enterprise ", "enterprise"),
        ("previous_escalations", 0, 0),
        ("previous_escalations", 1000, 1000),
        ("evidence", [], []),
        ("evidence", [" https://example.com/a "], ["https://example.com/a"]),
        ("transactions", [{**TX_EVM, "network": "EVM"}], [TX_EVM]),
        ("transactions", [{**TX_EVM, "at": "2026-03-02T09:00Z"}], [TX_EVM]),
        ("transactions", [{**TX_EVM, "hash": TX_EVM["hash"].upper().replace("X", "x")}], None),
    ],
)
def test_values_are_cleaned(field: str, given: object, cleaned: object) -> None:
    assert clean_context({field: given}) == {field: given if cleaned is None else cleaned}


@pytest.mark.parametrize(
    ("field", "given"),
    [
        ("customer_plan", "gold"),
        ("customer_plan", 3),
        ("previous_escalations", -1),
        ("previous_escalations", 1001),
        ("previous_escalations", "3"),
        ("previous_escalations", True),
        ("previous_escalations", 2.0),
        ("summary", 42),
        ("summary", ["a list"]),
        ("evidence", "https://example.com/a"),
        ("evidence", {"a": 1}),
        ("transactions", TX_EVM),
    ],
)
def test_values_of_the_wrong_type_or_range_are_refused(field: str, given: object) -> None:
    assert fields_refused({field: given}) == [field]


def test_null_and_blank_text_mean_not_known_yet() -> None:
    assert clean_context({"summary": None, "reference": "  ", "amount": "", "evidence": []}) == {
        "evidence": []
    }


@pytest.mark.parametrize(
    ("evidence", "paths"),
    [
        (["https://"], ["evidence[0]"]),
        (["https://example.com/a b"], ["evidence[0]"]),
        (["ok", ""], ["evidence[1]"]),
        (["ok", "   "], ["evidence[1]"]),
        (["x" * 501], ["evidence[0]"]),
        ([1, "ok", None], ["evidence[0]", "evidence[2]"]),
        (["ok"] * 51, ["evidence"]),
    ],
)
def test_evidence_items_are_checked_one_by_one(evidence: list[object], paths: list[str]) -> None:
    assert fields_refused({"evidence": evidence}) == paths


def test_fifty_items_of_evidence_are_fine() -> None:
    assert clean_context({"evidence": ["ok"] * 50}) == {"evidence": ["ok"] * 50}


@pytest.mark.parametrize(
    ("transaction", "paths"),
    [
        ("0x12", ["transactions[0]"]),
        ({**TX_EVM, "hash": TX_BITCOIN["hash"]}, ["transactions[0].hash"]),
        ({**TX_BITCOIN, "hash": TX_EVM["hash"]}, ["transactions[0].hash"]),
        ({**TX_EVM, "network": "solana"}, ["transactions[0].network"]),
        ({**TX_EVM, "hash": ""}, ["transactions[0].hash"]),
        ({**TX_EVM, "at": "2026-03-02T09:00:00"}, ["transactions[0].at"]),  # naive
        ({**TX_EVM, "at": "2026-03-02"}, ["transactions[0].at"]),  # a date
        ({**TX_EVM, "at": "yesterday"}, ["transactions[0].at"]),
        ({**TX_EVM, "at": 1767225600}, ["transactions[0].at"]),
        ({"network": "evm"}, ["transactions[0].hash", "transactions[0].at"]),
        ({**TX_EVM, "memo": "x"}, ["transactions[0].memo"]),
        (
            {"network": "evm", "hash": "0x12", "at": "now", "fee": 1},
            ["transactions[0].fee", "transactions[0].hash", "transactions[0].at"],
        ),
    ],
)
def test_each_transaction_is_checked_by_its_network(transaction: object, paths: list[str]) -> None:
    assert fields_refused({"transactions": [transaction]}) == paths


def test_a_naive_time_is_refused_asking_for_its_offset() -> None:
    [(_, problem)] = refusal({"transactions": [{**TX_EVM, "at": "2026-03-02T09:00:00"}]})
    assert "offset" in problem


def test_transaction_times_keep_their_offset_in_one_form() -> None:
    cleaned = clean_context({"transactions": [{**TX_BITCOIN, "at": "2026-03-02T10:30+01:00"}]})
    assert cleaned == {"transactions": [TX_BITCOIN]}


def test_at_most_a_hundred_transactions() -> None:
    assert clean_context({"transactions": [TX_EVM] * 100}) == {"transactions": [TX_EVM] * 100}
    assert fields_refused({"transactions": [TX_EVM] * 101}) == ["transactions"]


@pytest.mark.parametrize(
    ("wallet", "valid"),
    [
        ({"network": "evm", "address": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"}, True),
        ({"network": "evm", "address": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"}, False),
        ({"network": "evm", "address": "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"}, False),
        ({"network": "bitcoin", "address": "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"}, True),
        ({"network": "bitcoin", "address": "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3"}, False),
        ({"network": "bitcoin", "address": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"}, False),
    ],
)
def test_each_wallet_address_is_checked_by_its_network(wallet: dict[str, str], valid: bool) -> None:
    raw = {"wallet_addresses": [{"network": "evm", "address": EIP55_ALL_LOWER[0]}, wallet]}
    if valid:
        assert clean_context(raw) == raw
    else:
        assert fields_refused(raw) == ["wallet_addresses[1].address"]


# --- What an escalation requires --------------------------------------------------------------

BASE = ["reference", "customer_id", "summary", "actions_taken", "reason"]
REQUIRED = {
    ContextKind.BASE: BASE,
    ContextKind.FINANCIAL: ["amount", "currency"],
    ContextKind.EVIDENCE: ["evidence"],
    ContextKind.TECHNICAL: [
        "customer_plan",
        "account_value",
        "previous_escalations",
        "customer_impact",
        "troubleshooting",
        "customer_expectation",
        "requested_actions",
    ],
    ContextKind.CRYPTO: ["transactions", "wallet_addresses", "user_attempts", "expected", "actual"],
}


@pytest.mark.parametrize(("kind", "names"), REQUIRED.items())
def test_what_each_kind_requires(kind: ContextKind, names: list[str]) -> None:
    assert required_fields({kind}) == names
    assert [p.field for p in missing_context({}, {kind})] == names


def test_kinds_together_require_their_fields_in_table_order() -> None:
    kinds = {ContextKind.CRYPTO, ContextKind.BASE}
    assert required_fields(kinds) == BASE + REQUIRED[ContextKind.CRYPTO]
    assert required_fields(set(ContextKind)) == list(FIELDS)
    assert required_fields(set()) == []


def test_a_full_context_misses_nothing() -> None:
    assert missing_context(clean_context(FULL), set(ContextKind)) == []


@pytest.mark.parametrize("empty", [None, "", "   ", [], {}])
def test_empty_counts_as_missing(empty: object) -> None:
    context = {**FULL, "summary": empty, "evidence": empty}
    missing = missing_context(context, set(ContextKind))
    assert [p.field for p in missing] == ["summary", "evidence"]


def test_a_missing_field_says_what_to_give() -> None:
    assert missing_context({}, {ContextKind.BASE})[1] == FieldProblem(
        "customer_id", "missing: give the customer's id"
    )


def test_only_the_kinds_asked_for_are_required() -> None:
    context = {name: FULL[name] for name in BASE}
    assert missing_context(context, {ContextKind.BASE}) == []
    assert [p.field for p in missing_context(context, {ContextKind.FINANCIAL})] == [
        "amount",
        "currency",
    ]


B, T, C, F, E = (
    ContextKind.BASE,
    ContextKind.TECHNICAL,
    ContextKind.CRYPTO,
    ContextKind.FINANCIAL,
    ContextKind.EVIDENCE,
)


@pytest.mark.parametrize(
    ("flags", "to_level", "financial", "crypto", "kinds"),
    [
        (set(), Level.SUPPORT_MANAGER, False, False, {B}),
        (set(), Level.CIO, False, False, {B}),
        (set(), Level.TIER_2, False, False, {B, T}),
        (set(), Level.TIER_3, False, False, {B, T}),
        (set(), Level.TIER_1, False, False, {B}),
        (set(), Level.SECURITY, False, True, {B, C}),
        (set(), Level.CIO, True, False, {B, F}),
        ({Flag.USDT_WITHDRAWAL}, Level.CIO, False, False, {B, F}),
        ({Flag.LEGAL_THREAT}, Level.CIO, False, False, {B, E}),
        ({Flag.SUSPECTED_FRAUD}, Level.SECURITY, False, False, {B, E}),
        ({Flag.DATA_BREACH}, Level.SECURITY, False, False, {B, E}),
        ({Flag.LEGAL_SERVICE}, Level.CIO, False, False, {B, E}),
        ({Flag.TERMINATION_APPEAL}, Level.CIO, False, False, {B, E}),
        ({Flag.MEDIA_CONTACT}, Level.CIO, False, False, {B}),
        ({Flag.SYSTEM_DOWN}, Level.TIER_3, False, False, {B, T}),
        (
            {Flag.USDT_WITHDRAWAL, Flag.SUSPECTED_FRAUD},
            Level.TIER_2,
            False,
            True,
            {B, T, C, F, E},
        ),
    ],
)
def test_which_kinds_an_escalation_needs(
    flags: Collection[Flag],
    to_level: Level,
    financial: bool,
    crypto: bool,
    kinds: set[ContextKind],
) -> None:
    found = context_kinds(flags, to_level=to_level, financial=financial, crypto=crypto)
    assert found == kinds


# --- The checklist ----------------------------------------------------------------------------


def test_a_checklist_is_read_from_item_names() -> None:
    assert clean_checklist(["troubleshooting_done", " Documented ", "documented"]) == {
        ChecklistItem.TROUBLESHOOTING_DONE,
        ChecklistItem.DOCUMENTED,
    }
    assert clean_checklist([]) == frozenset()
    assert clean_checklist(None) == frozenset()
    assert clean_checklist(list(ChecklistItem)) == set(ChecklistItem)


def test_unknown_checklist_items_are_all_named_with_the_allowed_ones() -> None:
    with pytest.raises(ContextRefused) as refused:
        clean_checklist(["documented", "troubleshot", 3])
    problems = refused.value.problems
    assert [p.field for p in problems] == ["checklist[1]", "checklist[2]"]
    assert all(item.value in problems[0].problem for item in ChecklistItem)


@pytest.mark.parametrize("raw", ["documented", {"documented": True}, 1])
def test_a_checklist_that_is_not_a_list_is_refused(raw: object) -> None:
    with pytest.raises(ContextRefused) as refused:
        clean_checklist(raw)
    assert [p.field for p in refused.value.problems] == ["checklist"]


DONE = {ChecklistItem.TROUBLESHOOTING_DONE}
OTHERS = set(ChecklistItem) - DONE


@pytest.mark.parametrize(
    ("checklist", "from_level", "emergency", "refused"),
    [
        (set(), Level.TIER_1, False, True),
        (OTHERS, Level.TIER_1, False, True),
        (DONE, Level.TIER_1, False, False),
        (set(), Level.TIER_1, True, False),  # an emergency category escalates at once
        (set(), Level.TIER_2, False, False),
        (set(), Level.SUPPORT_MANAGER, False, False),
    ],
)
def test_tier_1_troubleshoots_before_escalating_unless_it_is_an_emergency(
    checklist: set[ChecklistItem], from_level: Level, emergency: bool, refused: bool
) -> None:
    problems = checklist_problems(checklist, from_level=from_level, emergency=emergency)
    assert [p.field for p in problems] == (["checklist.troubleshooting_done"] if refused else [])


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=80),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
PARTS = st.sampled_from(["network", "hash", "at", "address", "memo"])
ONCHAIN = st.dictionaries(
    PARTS,
    st.sampled_from(["evm", "bitcoin", "EVM", TX_EVM["hash"], TX_BITCOIN["hash"], TX_EVM["at"]])
    | JSON,
    max_size=4,
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from([*FIELDS, "colour"]),
        JSON | st.lists(ONCHAIN, max_size=3),
        max_size=6,
    )
)
def test_any_json_object_is_either_cleaned_to_json_or_refused_with_reasons(
    raw: dict[str, object],
) -> None:
    """Doors hand on whatever they were sent: nothing in it may escape as another error."""
    try:
        cleaned = clean_context(raw)
    except ContextRefused as refused:
        assert refused.problems
        assert all(p.field and p.problem for p in refused.problems)
        assert len(str(refused).splitlines()) == len(refused.problems)
    else:
        assert set(cleaned) <= set(raw)
        assert json.loads(json.dumps(cleaned, allow_nan=False)) == cleaned
