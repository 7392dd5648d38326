"""Signatures: what is masked, what stays, and that reports of one problem read the same
while different problems do not."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from incident.domain.signatures import PLACEHOLDERS, Signature, mask, signature

TX = "5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060"
TX2 = "a1075db55d416d3ca199f55b6084e2115b9345e16c5cf302fc80e9d5fbf5d48d"
ADDR = "0xde0b295669a9fd93d5f28d9ec85e40f4cb697bae"
ADDR2 = "0x742d35Cc6634C0532925a3b844Bc454e4438f44e"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        # Hashes and addresses.
        (f"tx 0x{TX} stuck", "tx <tx> stuck"),
        (f"txid {TX2} not confirmed", "txid <tx> not confirmed"),
        (f"sent to {ADDR}", "sent to <addr>"),
        (f"sent to {ADDR2}.", "sent to <addr>."),
        ("wallet 0x12ab…9f3c shows 0", "wallet <addr> shows <num>"),
        ("to bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq today", "to <addr> today"),
        ("to 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "to <addr>"),
        ("to 3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy?", "to <addr>?"),
        ("USDT to TQn9Y2khEsLJW1ChVWFMSMeRDow5KcbLSE", "usdt to <addr>"),
        (f"hash 0x{TX}{TX[:8]}", "hash <hex>"),
        ("git sha 9fceb02d0ae598e95dc970b74767f19372d61af8", "git sha <hex>"),
        # E-mails and links.
        ("mail me: Jane.Doe+kyc@Example.co.uk", "mail me: <email>"),
        ("from support@www.example.com", "from <email>"),
        ("see https://etherscan.io/tx/0xabc?x=1.", "see <url>."),
        ("(www.example.com/help)", "(<url>)"),
        ("https://user:pw@host.example/a", "<url>"),
        # Network, ids.
        ("from 192.168.1.10 and 10.0.0.1:8080", "from <ip> and <ip>"),
        ("node fe80::1 and 2001:db8:85a3:0:0:8a2e:370:7334", "node <ip> and <ip>"),
        ("request 123e4567-e89b-12d3-a456-426614174000", "request <uuid>"),
        ("Ticket ZD-1234 again", "ticket <id> again"),
        ("see #48213", "see <id>"),
        ("Order 998877", "order <id>"),
        ("order no. 998877", "order <id>"),
        ("Order: #998877", "order <id>"),
        ("Bestellung Nr. 556677 fehlt", "bestellung <id> fehlt"),
        ("pedido nº 445566", "pedido <id>"),
        ("user abc123def blocked", "user <id> blocked"),
        # Dates and times.
        ("since 2026-03-01", "since <date>"),
        ("at 2026-03-01T10:05:33Z", "at <date> <time>"),
        ("am 01.03.2026 um 10.05 Uhr", "am <date> um <time> uhr"),
        ("on 01/03/2026 at 10:05", "on <date> at <time>"),
        ("on 1 March 2026", "on <date>"),
        ("on March 3rd, 2026", "on <date>"),
        ("le 1er mars 2026 à 10h05", "le <date> à <time>"),
        ("el 1 de marzo de 2026", "el <date>"),
        ("am 3. März", "am <date>"),
        ("since 10:05:33 UTC", "since <time> utc"),
        ("around 3pm", "around <time>"),
        ("in March nothing", "in march nothing"),
        # Amounts.
        ("EUR 5,000.00 missing", "<amount> eur missing"),
        ("5.000,00 € fehlen", "<amount> eur fehlen"),
        ("$120 charged twice", "<amount> usd charged twice"),
        ("0.5 BTC withdrawal", "<amount> btc withdrawal"),
        ("250 USDT deposit", "<amount> usdt deposit"),
        ("100 euros", "<amount> eur"),
        ("5 000,00 € bloqués", "<amount> eur bloqués"),
        # Numbers.
        ("tried 3 times in 24h", "tried <num> times in <num>h"),
        ("my 2fa on ipv6", "my 2fa on ipv6"),
        ("app v2.3.14 crashes", "app v<num> crashes"),
        ("call +49 170 1234567", "call +<num> <num> <num>"),
        ("90% done", "<num>% done"),
        # Normalization.
        ("  Withdrawal\t\tFAILED\n\nagain  ", "withdrawal failed again"),
        ("Straße", "strasse"),
        ("\uff25\uff32\uff32\uff2f\uff32\u3000\uff11\uff10\uff14\uff12", "error <err>"),
        ("zero\u200bwidth\u202eflip\x07bell", "zerowidthflip bell"),
        ("line\u2028break", "line break"),
        ("", ""),
    ],
)
def test_mask(text: str, masked: str) -> None:
    assert mask(text) == masked


@pytest.mark.parametrize(
    ("text", "masked", "codes"),
    [
        ("Withdrawal failed: error E1042", "withdrawal failed: error <err>", ("E1042",)),
        ("ERR-1042 on payout", "<err> on payout", ("ERR-1042",)),
        ("err1042", "<err>", ("ERR1042",)),
        ("net::ERR_CONNECTION_REFUSED", "net::<err>", ("ERR_CONNECTION_REFUSED",)),
        ("API says INSUFFICIENT_FUNDS", "api says <err>", ("INSUFFICIENT_FUNDS",)),
        ("got ECONNREFUSED", "got <err>", ("ECONNREFUSED",)),
        ("java NullPointerException", "java <err>", ("NullPointerException",)),
        ("code 0x80070005 on install", "code <err> on install", ("0x80070005",)),
        ("HTTP 502 Bad Gateway", "http <err> bad gateway", ("HTTP 502",)),
        ("got a 503 service unavailable", "got a <err> service unavailable", ("HTTP 503",)),
        ("status code: 429", "status code: <err>", ("HTTP 429",)),
        ("error 500 again", "error <err> again", ("HTTP 500",)),
        ("Fehlercode 1042", "fehlercode <err>", ("1042",)),
        ("código de error 3301", "código de error <err>", ("3301",)),
        ("code d'erreur 7700", "code d'erreur <err>", ("7700",)),
        ("E1043 then E1042 then E1042", "<err> then <err> then <err>", ("E1042", "E1043")),
        ("HTTP 200 fine", "http <num> fine", ()),
        ("no code here", "no code here", ()),
    ],
)
def test_error_codes(text: str, masked: str, codes: tuple[str, ...]) -> None:
    found = signature(text)
    assert (found.text, found.error_codes) == (masked, codes)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (
            f"Hi, my withdrawal of 0.5 BTC (tx {TX}) is stuck since 2026-03-01. Ticket ZD-1234",
            f"Hi, my withdrawal of 1.25 BTC (tx {TX2}) is stuck since 2026-03-04. Ticket ZD-88",
        ),
        (
            "Withdrawal EUR 5,000.00 failed, contact jane@example.com, order 998877",
            "withdrawal eur 120.50 failed, contact BOB.SMITH@mail.de, Order #112233",
        ),
        (
            f"Deposit to {ADDR} not credited after 2 hours",
            f"deposit to {ADDR2} not credited after 5 hours",
        ),
        (
            "Auszahlung von 5.000,00 € hängt seit 1. März 2026",
            "Auszahlung von 250,00 € hängt seit 14. März 2026",
        ),
        (
            "Retiro de 250 USDT a TQn9Y2khEsLJW1ChVWFMSMeRDow5KcbLSE no llega",
            "retiro de 1.000 USDT a TLa2f6VPqDgRE67v1736s7bJ8Ray5wYjU7 no llega",
        ),
        (
            "Login fails with E1042 from 192.168.1.10 at 10:05",
            "login fails with E1042 from 10.20.30.40 at 23:59:01",
        ),
        (
            "Paiement de 50 € refusé le 01/03/2026, dossier 445566",
            "paiement de 12,99 € refusé le 02/03/2026, dossier 778899",
        ),
        (
            "card payment declined, see https://status.example.com/i/42",
            "Card payment  declined, see https://status.example.com/i/77",
        ),
        ("KYC upload stuck, case #4821", "kyc upload stuck, case #99"),
        ("Straße login broken", "STRASSE login broken"),
    ],
)
def test_same_problem_same_signature(one: str, other: str) -> None:
    assert signature(one, category="Withdrawal ") == signature(other, category="withdrawal")


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Withdrawal fails with E1042", "Withdrawal fails with E1043"),
        ("Deposit of 100 EUR not credited", "Withdrawal of 100 EUR not credited"),
        ("0.5 BTC withdrawal stuck", "0.5 ETH withdrawal stuck"),
        ("login gives HTTP 502", "login gives HTTP 401"),
        ("order 998877 not delivered", "order 998877 charged twice"),
        ("2fa code rejected at 10:05", "password rejected at 10:05"),
        ("Fehlercode 1042 beim Login", "Fehlercode 2042 beim Login"),
    ],
)
def test_different_problems_differ(one: str, other: str) -> None:
    assert signature(one) != signature(other)


def test_codes_are_kept_out_of_the_text() -> None:
    """Different codes: the texts are the same, the codes tell them apart."""
    one, other = signature("error E1042 on payout"), signature("error E1043 on payout")
    assert one.text == other.text == "error <err> on payout"
    assert (one.error_codes, other.error_codes) == (("E1042",), ("E1043",))


def test_category_and_component_are_normalized_into_the_key() -> None:
    found = signature("x", category="  Withdrawal ", component="Payments\tAPI")
    assert found.key() == ("withdrawal", "payments api")
    assert signature("x").key() == ("", "")
    assert isinstance(found, Signature)


# --- Properties -----------------------------------------------------------------------------

_HEX = "0123456789abcdefABCDEF"
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
words = st.text(alphabet="abcdefghijklmnopqrstuvwxyzäöüßéñ", min_size=1, max_size=12)
hashes = st.text(alphabet=_HEX, min_size=64, max_size=64)
evm_txs = hashes.map(lambda h: "0x" + h)
evm_addresses = st.text(alphabet=_HEX, min_size=40, max_size=40).map(lambda h: "0x" + h)
btc_addresses = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from("13"),
    st.text(alphabet=_B58, min_size=25, max_size=33),
).filter(lambda a: any(c.isalpha() for c in a))
emails = st.builds(
    lambda user, host, tld: f"{user}@{host}.{tld}",
    st.from_regex(r"[a-zA-Z0-9][a-zA-Z0-9._+-]{0,15}", fullmatch=True),
    st.from_regex(r"[a-z0-9]{1,12}", fullmatch=True),
    st.sampled_from(["com", "de", "co.uk", "io", "es"]),
)


def _amounts(*currencies: str) -> st.SearchStrategy[str]:
    return st.builds(
        lambda value, currency, before: f"{currency} {value}" if before else f"{value} {currency}",
        st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False),
        st.sampled_from(currencies),
        st.booleans(),
    )


amounts = _amounts("EUR", "€", "$", "BTC", "USDT", "usd")
numbers = st.integers(min_value=0, max_value=10**12).map(str)
placeholders = st.sampled_from(sorted(PLACEHOLDERS))
secrets = st.one_of(hashes, evm_txs, evm_addresses, btc_addresses, emails)
pieces = st.one_of(words, secrets, amounts, numbers, placeholders)
separators = st.sampled_from([" ", ", ", ". ", " - ", "\n", ": ", " (", ") ", "\t"])
texts = st.lists(st.tuples(pieces, separators), max_size=12).map(
    lambda parts: "".join(piece + sep for piece, sep in parts)
)


def _placeholders_intact(masked: str) -> bool:
    tags = re.findall(r"<[^<>\s]*>", masked)
    return all(tag in PLACEHOLDERS for tag in tags) and masked.count("<") == len(tags)


@settings(max_examples=400, deadline=None)
@given(texts)
def test_mask_is_idempotent_and_leaves_no_secret(text: str) -> None:
    masked = mask(text)
    assert mask(masked) == masked
    assert _placeholders_intact(masked)
    assert "@" not in masked
    assert not re.search(r"[0-9a-f]{64}", masked)
    assert not re.search(r"0x[0-9a-f]{40}", masked)
    assert not re.search(r"\d{3}", masked)


kinds = st.sampled_from(
    [hashes, evm_txs, evm_addresses, btc_addresses, emails, _amounts("EUR", "€", "eur")]
)


@settings(max_examples=300, deadline=None)
@given(words, kinds.flatmap(lambda kind: st.tuples(kind, kind)))
def test_two_customers_secrets_of_one_kind_give_one_text(
    word: str, secrets_: tuple[str, str]
) -> None:
    """Two customers, the same sentence, different hashes (addresses, e-mails, amounts in
    one currency): one text."""
    one, other = secrets_
    assert mask(f"{word} sent to {one} failed") == mask(f"{word} sent to {other} failed")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_mask_never_raises_and_is_idempotent_on_any_text(text: str) -> None:
    masked = mask(text)
    assert mask(masked) == masked
    assert masked == " ".join(masked.split())
