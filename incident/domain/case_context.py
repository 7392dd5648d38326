"""The context gate: what a support case must carry before it may escalate, and whether what
it carries is well formed.

An escalation that reaches the next level without the facts that level needs comes straight
back, and each round trip costs the customer a day. So an escalation missing any required
field is refused, naming every missing or malformed field at once (not the first one only,
which would make the agent fix them one refusal at a time).

`FIELDS` is the one table of context fields: each field's name, the kinds of escalation it
is required for (`ContextKind`), what it is in words people read, and the parser that checks
and cleans it. The case page's checklist (`required_fields`), the refusals
(`missing_context`, `clean_context`) and the doors that take context all read this table,
so a field is added, renamed or tightened in one place.

Context comes in JSON-like (an API body, a Slack form, the dashboard) and is stored as JSON:
`clean_context` returns only JSON-safe values, amounts as canonical decimal strings
("5000.50") so that no amount is ever rounded through a float. A case may be opened with
partial context: `clean_context` checks what is given, `missing_context` says what an
escalation still lacks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from difflib import get_close_matches
from enum import StrEnum
from types import MappingProxyType

import base58
from Crypto.Hash import keccak

from incident.domain.case_routing import Flag, Level
from incident.domain.errors import DomainError, InvalidValue
from incident.domain.text import TextRule, shorten, web_link


class ContextKind(StrEnum):
    """What kind of escalation a field is required for."""

    BASE = "base"  # every escalation
    TECHNICAL = "technical"  # technical escalations (to tier_2 / tier_3)
    CRYPTO = "crypto"  # crypto cases
    FINANCIAL = "financial"  # cases with a disputed amount / money
    EVIDENCE = "evidence"  # cases where evidence applies (fraud, breach, legal ...)


@dataclass(frozen=True)
class FieldProblem:
    """One thing wrong with a case's context, located by a path people can follow."""

    field: str  # "customer_id", "transactions[1].hash", "checklist.troubleshooting_done"
    problem: str  # what is wrong and what to do: "missing: give the customer's id"

    def __str__(self) -> str:
        return f"{self.field}: {self.problem}"


class ContextRefused(DomainError):
    """An escalation or a context refused; `problems` holds every problem found, and str()
    lists them all, one per line."""

    problems: tuple[FieldProblem, ...]

    def __init__(self, problems: Iterable[FieldProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


# A parser checks one value given at `where` (its path) and returns it cleaned. It raises
# InvalidValue for a single problem, or ContextRefused when a list or an object inside the
# value has several.
Parser = Callable[[object, str], object]


@dataclass(frozen=True)
class ContextField:
    """One row of the table: the kinds the field is required for, what it is in words (it
    completes "give ..."), and its parser."""

    kinds: frozenset[ContextKind]
    description: str
    parse: Parser


# --- Formats of on-chain identifiers -------------------------------------------------------

_EVM_HASH = re.compile(r"0x[0-9a-fA-F]{64}")
_EVM_ADDRESS = re.compile(r"0x([0-9a-fA-F]{40})")
_BITCOIN_TXID = re.compile(r"[0-9a-fA-F]{64}")
_BASE58 = re.compile(r"[1-9A-HJ-NP-Za-km-z]{25,35}")
# Version bytes of base58check addresses: P2PKH and P2SH, mainnet then testnet.
_BASE58_VERSIONS = frozenset({0x00, 0x05, 0x6F, 0xC4})
_SEGWIT_HRPS = ("bc", "tb")  # mainnet, testnet


def is_evm_transaction_hash(value: str) -> bool:
    """0x and 64 hex digits, in either case (transaction hashes carry no checksum)."""
    return _EVM_HASH.fullmatch(value) is not None


def is_evm_address(value: str) -> bool:
    """0x and 40 hex digits. Mixed case is an EIP-55 checksum and must be right, since a
    wrong one means a mistyped address; all-lower or all-upper carries no checksum."""
    match = _EVM_ADDRESS.fullmatch(value)
    if match is None:
        return False
    body = match[1]
    return body in (body.lower(), body.upper()) or body == eip55_checksummed(body)


def eip55_checksummed(hex40: str) -> str:
    """The 40 hex digits of an address with EIP-55's letter case: a letter is upper case
    where the same nibble of keccak-256 of the lower-case hex is 8 or more. Keccak, not
    hashlib's SHA3-256, which pads differently and gives other digests."""
    lower = hex40.lower()
    digest = keccak.new(digest_bits=256, data=lower.encode("ascii")).hexdigest()
    return "".join(c.upper() if int(d, 16) >= 8 else c for c, d in zip(lower, digest, strict=False))


def is_bitcoin_txid(value: str) -> bool:
    """Exactly 64 hex digits, with no 0x (the form block explorers show)."""
    return _BITCOIN_TXID.fullmatch(value) is not None


def is_bitcoin_address(value: str) -> bool:
    """A base58check P2PKH or P2SH address (mainnet or testnet), or a native segwit one:
    bech32 for witness version 0, bech32m for versions 1 to 16, on bc or tb."""
    return len(value) <= 90 and (_is_base58_address(value) or _is_segwit_address(value))


def _is_base58_address(value: str) -> bool:
    # The alphabet is checked first: base58's decoder would drop trailing whitespace.
    if _BASE58.fullmatch(value) is None:
        return False
    try:
        payload = base58.b58decode_check(value)
    except ValueError:
        return False
    return len(payload) == 21 and payload[0] in _BASE58_VERSIONS


# Segwit addresses, after the reference decoder of BIP-350 (which amends BIP-173): the
# checksum is a BCH code over 5-bit groups; its residue is 1 for bech32 (BIP-173) and
# 0x2bc830a3 for bech32m (BIP-350). The PyPI `bech32` package predates bech32m.
_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
_BECH32 = 1
_BECH32M = 0x2BC830A3


def _polymod(values: Iterable[int]) -> int:
    check = 1
    for value in values:
        top = check >> 25
        check = (check & 0x1FFFFFF) << 5 ^ value
        for i, generator in enumerate(_GENERATOR):
            if top >> i & 1:
                check ^= generator
    return check


def _hrp_expanded(hrp: str) -> list[int]:
    """The human-readable part as the checksum covers it: high bits, a zero, low bits."""
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _bech32_decoded(text: str) -> tuple[str, list[int], int] | None:
    """(human-readable part, data without the checksum, checksum residue), or None when
    the string is not bech32 of either kind. Mixed case is refused (BIP-173)."""
    if any(not 33 <= ord(c) <= 126 for c in text) or text not in (text.lower(), text.upper()):
        return None
    text = text.lower()
    separator = text.rfind("1")
    if separator < 1 or separator + 7 > len(text) or len(text) > 90:
        return None
    hrp, rest = text[:separator], text[separator + 1 :]
    if any(c not in _CHARSET for c in rest):
        return None
    data = [_CHARSET.index(c) for c in rest]
    residue = _polymod(_hrp_expanded(hrp) + data)
    if residue not in (_BECH32, _BECH32M):
        return None
    return hrp, data[:-6], residue


def _as_bytes(groups: Sequence[int]) -> list[int] | None:
    """5-bit groups regrouped as bytes; None when the padding left over is 5 bits or more,
    or not all zeros (BIP-173's rule for decoding)."""
    acc = bits = 0
    out = []
    for group in groups:
        acc = (acc << 5 | group) & 0xFFF
        bits += 5
        if bits >= 8:
            bits -= 8
            out.append(acc >> bits & 0xFF)
    if bits >= 5 or acc << (8 - bits) & 0xFF:
        return None
    return out


def _is_segwit_address(value: str) -> bool:
    decoded = _bech32_decoded(value)
    if decoded is None:
        return False
    hrp, data, residue = decoded
    if hrp not in _SEGWIT_HRPS or not data or data[0] > 16:
        return False
    version, program = data[0], _as_bytes(data[1:])
    # Programs of 2 to 40 bytes (BIP-141), exactly 20 or 32 for version 0; bech32 for
    # version 0 and bech32m for every later version (BIP-350).
    if program is None or not 2 <= len(program) <= 40:
        return False
    if version == 0 and len(program) not in (20, 32):
        return False
    return residue == (_BECH32 if version == 0 else _BECH32M)


@dataclass(frozen=True)
class _Network:
    """The checks of one network's identifiers: part name -> (check, what to say when it
    fails)."""

    checks: Mapping[str, tuple[Callable[[str], bool], str]]


NETWORKS: Mapping[str, _Network] = MappingProxyType(
    {
        "evm": _Network(
            {
                "hash": (
                    is_evm_transaction_hash,
                    "not an EVM transaction hash (0x and 64 hex digits)",
                ),
                "address": (
                    is_evm_address,
                    "not an EVM address (0x and 40 hex digits; in mixed case the EIP-55 "
                    "checksum must be right, so copy it rather than type it)",
                ),
            }
        ),
        "bitcoin": _Network(
            {
                "hash": (
                    is_bitcoin_txid,
                    "not a Bitcoin transaction id (64 hex digits, no 0x)",
                ),
                "address": (
                    is_bitcoin_address,
                    "not a Bitcoin address (base58 with a valid checksum, or bech32 "
                    "starting bc1 or tb1)",
                ),
            }
        ),
    }
)


# --- Parsers -------------------------------------------------------------------------------


def _kind_of(value: object) -> str:
    """What a JSON value is, in words, for "give text, not a number"."""
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float | Decimal):
        return "a number"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return "null" if value is None else type(value).__name__


def _string(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise InvalidValue(where, f"give text, not {_kind_of(value)}")
    return value


def _text(rule: TextRule) -> Parser:
    """Text checked by the project's one rule for text (`TextRule`)."""

    def parse(value: object, where: str) -> str:
        return rule.check(_string(value, where), where=where)

    return parse


def _choice(what: str, allowed: Sequence[str]) -> Parser:
    """One of a few lower-case words; case is forgiven, since it carries nothing."""

    def parse(value: object, where: str) -> str:
        word = _string(value, where).strip()
        if word.isascii() and word.lower() in allowed:
            return word.lower()
        raise InvalidValue(where, f"not a {what}; give one of {', '.join(allowed)}")

    return parse


_PLAIN_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_MOST_PLACES = 18  # enough for crypto amounts (wei are 18 places of ether)
_MOST_DIGITS = 30  # before the point


def _decimal_given(value: object, where: str) -> Decimal:
    """A JSON number or a plain decimal string ("5000.50") as a Decimal. Strings with
    exponents, signs, separators or underscores are refused: people type amounts, and
    "1,000" or "1e3" is more likely a slip than meant."""
    if isinstance(value, str):
        text = value.strip()
        if len(text) <= 64 and _PLAIN_DECIMAL.fullmatch(text):
            return Decimal(text)
    elif isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    elif isinstance(value, float) and Decimal(value).is_finite():
        return Decimal(repr(value))  # the float's shortest text: 0.1, not 0.1000000000000000055
    elif isinstance(value, Decimal) and value.is_finite():
        return value
    raise InvalidValue(where, "not a decimal number; give one like 5000.50")


def _canonical(amount: Decimal) -> str:
    """Plain notation, no trailing zeros beyond two places: 5000.5 and "5000.500" both give
    "5000.50", so equal amounts are equal strings."""
    whole, _, fraction = format(amount.copy_abs(), "f").partition(".")
    return f"{whole}.{fraction.rstrip('0').ljust(2, '0')}"


def _decimal(*, positive: bool) -> Parser:
    """A decimal kept as its canonical string (JSON-safe, never rounded through a float)."""

    def parse(value: object, where: str) -> str:
        amount = _decimal_given(value, where)
        if amount < 0 or (positive and amount == 0):
            raise InvalidValue(where, f"must be {'more than 0' if positive else '0 or more'}")
        if amount != 0 and amount.adjusted() >= _MOST_DIGITS:
            raise InvalidValue(where, f"too large; at most {_MOST_DIGITS} digits before the point")
        canonical = _canonical(amount)
        if len(canonical.partition(".")[2]) > _MOST_PLACES:
            raise InvalidValue(where, f"give at most {_MOST_PLACES} decimal places")
        return canonical

    return parse


_CURRENCY = re.compile(r"(?=[0-9]*[A-Z])[A-Z0-9]{3,5}")


def _currency(value: object, where: str) -> str:
    """An ISO 4217 code (EUR) or a crypto ticker (USDT, BTC), upper-cased: "eur" can only
    mean EUR, so it is taken rather than refused."""
    code = _string(value, where).strip()
    if code.isascii() and _CURRENCY.fullmatch(code.upper()):
        return code.upper()
    raise InvalidValue(
        where, "not a currency code; give 3 to 5 letters or digits, like EUR or USDT"
    )


def _count(most: int) -> Parser:
    def parse(value: object, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidValue(where, f"give a whole number, not {_kind_of(value)}")
        if not 0 <= value <= most:
            raise InvalidValue(where, f"give a number from 0 to {most:,}")
        return value

    return parse


def _timestamp(value: object, where: str) -> str:
    """An ISO-8601 time with its offset, kept in one form (Python's isoformat). A time
    without an offset is refused: the customer, the agent and the chain are rarely in one
    zone, so a bare time is ambiguous by hours."""
    text = _string(value, where).strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidValue(
            where, "not an ISO-8601 time; give one like 2026-03-02T09:00:00+00:00"
        ) from None
    if moment.utcoffset() is None:
        raise InvalidValue(where, "has no UTC offset; add one, like +00:00 or Z")
    return moment.isoformat()


_EVIDENCE_ITEM = TextRule(
    "evidence", 500, one_line=True, blank="an empty item; describe the evidence or remove it"
)


def _evidence_item(value: object, where: str) -> str:
    """An http(s) link (checked as a link, since it is shown as one) or a short line
    describing evidence held elsewhere."""
    text = _string(value, where).strip()
    if text.lower().startswith(("http://", "https://")):
        return web_link(text, where=where)
    return _EVIDENCE_ITEM.check(text, where=where)


def _attempt(parse: Parser, value: object, where: str) -> tuple[object, list[FieldProblem]]:
    """`parse(value, where)` with its problems as a list, so that the caller goes on."""
    try:
        return parse(value, where), []
    except ContextRefused as refused:
        return None, list(refused.problems)
    except InvalidValue as invalid:
        return None, [FieldProblem(invalid.field, invalid.message)]


def _list_of(parse_item: Parser, *, what: str, most: int) -> Parser:
    """A list whose every item is checked, each problem named by its index."""

    def parse(value: object, where: str) -> list[object]:
        if not isinstance(value, list):
            raise InvalidValue(where, f"give a list of {what}, not {_kind_of(value)}")
        if len(value) > most:
            raise InvalidValue(where, f"{len(value)} items; give at most {most}")
        cleaned, problems = [], []
        for index, item in enumerate(value):
            one, found = _attempt(parse_item, item, f"{where}[{index}]")
            cleaned.append(one)
            problems += found
        if problems:
            raise ContextRefused(problems)
        return cleaned

    return parse


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


def _shown(key: object) -> str:
    """A key as it can be shown in a problem's path: odd ones quoted (and escaped, so a
    line break in a key cannot break the one-problem-a-line listing)."""
    if isinstance(key, str) and _PLAIN_KEY.fullmatch(key):
        return key
    return shorten(repr(key), 64)


def _onchain(parts: Mapping[str, Parser], *, what: str) -> Parser:
    """An object of exactly these parts, each required, the network first: the identifiers
    after it are checked by that network's format."""
    names = ", ".join(parts)

    def parse(value: object, where: str) -> dict[str, object]:
        if not isinstance(value, Mapping):
            raise InvalidValue(where, f"give {what} as an object with {names}")
        problems = [
            FieldProblem(f"{where}.{_shown(k)}", f"unknown part; give only {names}")
            for k in value
            if k not in parts
        ]
        cleaned: dict[str, object] = {}
        for name, part in parts.items():
            path = f"{where}.{name}"
            if name not in value:
                problems.append(FieldProblem(path, f"missing: give the {name}"))
                continue
            one, found = _attempt(part, value[name], path)
            problems += found
            if not found:
                cleaned[name] = one
                problems += _network_problems(cleaned, name, path)
        if problems:
            raise ContextRefused(problems)
        return cleaned

    return parse


def _network_problems(cleaned: Mapping[str, object], part: str, path: str) -> list[FieldProblem]:
    """The part just cleaned, checked by the format of the network named before it."""
    network = NETWORKS.get(str(cleaned.get("network")))
    if network is None or part not in network.checks:  # a wrong network is named already
        return []
    valid, words = network.checks[part]
    return [] if valid(str(cleaned[part])) else [FieldProblem(path, words)]


_NETWORK = _choice("network", tuple(NETWORKS))
_TRANSACTION = _onchain(
    {
        "network": _NETWORK,
        "hash": _text(TextRule("hash", 100, one_line=True, blank="give the transaction hash")),
        "at": _timestamp,
    },
    what="a transaction",
)
_WALLET = _onchain(
    {
        "network": _NETWORK,
        "address": _text(TextRule("address", 100, one_line=True, blank="give the address")),
    },
    what="a wallet address",
)


def _line(name: str, limit: int) -> Parser:
    return _text(TextRule(name, limit, one_line=True, required=False))


def _prose(name: str, limit: int) -> Parser:
    return _text(TextRule(name, limit, required=False))


def _field(kind: ContextKind, description: str, parse: Parser) -> ContextField:
    return ContextField(frozenset({kind}), description, parse)


_BASE, _TECH, _CRYPTO = ContextKind.BASE, ContextKind.TECHNICAL, ContextKind.CRYPTO
_MONEY, _EVIDENCE = ContextKind.FINANCIAL, ContextKind.EVIDENCE

# The one table. Technical fields are those of the procedures' internal escalation notice.
FIELDS: Mapping[str, ContextField] = MappingProxyType(
    {
        "reference": _field(_BASE, "the ticket or case reference", _line("reference", 100)),
        "customer_id": _field(_BASE, "the customer's id", _line("customer_id", 100)),
        "summary": _field(_BASE, "a summary of the issue", _prose("summary", 2000)),
        "actions_taken": _field(_BASE, "the actions taken so far", _prose("actions_taken", 4000)),
        "reason": _field(_BASE, "the reason for escalating", _prose("reason", 2000)),
        "amount": _field(_MONEY, "the amount in question", _decimal(positive=True)),
        "currency": _field(_MONEY, "the amount's currency (EUR, USD, USDT ...)", _currency),
        "evidence": _field(
            _EVIDENCE,
            "the evidence: links or short descriptions",
            _list_of(_evidence_item, what="links or descriptions", most=50),
        ),
        "customer_plan": _field(
            _TECH,
            "the customer's plan (starter, pro or enterprise)",
            _choice("plan", ("starter", "pro", "enterprise")),
        ),
        "account_value": _field(_TECH, "the account's value", _decimal(positive=False)),
        "previous_escalations": _field(_TECH, "the number of previous escalations", _count(1000)),
        "customer_impact": _field(
            _TECH, "the impact on the customer", _prose("customer_impact", 2000)
        ),
        "troubleshooting": _field(
            _TECH,
            "the troubleshooting performed, with its results",
            _prose("troubleshooting", 4000),
        ),
        "customer_expectation": _field(
            _TECH, "what the customer expects", _prose("customer_expectation", 2000)
        ),
        "requested_actions": _field(
            _TECH, "the actions asked of the next level", _prose("requested_actions", 2000)
        ),
        "transactions": _field(
            _CRYPTO,
            "the transactions (network, hash and time of each)",
            _list_of(_TRANSACTION, what="transactions", most=100),
        ),
        "wallet_addresses": _field(
            _CRYPTO,
            "the wallet addresses (network and address of each)",
            _list_of(_WALLET, what="wallet addresses", most=100),
        ),
        "user_attempts": _field(_CRYPTO, "what the user tried", _prose("user_attempts", 4000)),
        "expected": _field(_CRYPTO, "what was expected to happen", _prose("expected", 2000)),
        "actual": _field(_CRYPTO, "what actually happened", _prose("actual", 2000)),
    }
)


# --- The gate ------------------------------------------------------------------------------


def _not_given(value: object) -> bool:
    """Null, blank text or an empty list or object: nothing known yet."""
    if isinstance(value, str):
        return not value.strip()
    return value is None or (isinstance(value, list | tuple | Mapping) and not value)


def _unknown(key: object) -> FieldProblem:
    close = get_close_matches(key, FIELDS, n=1) if isinstance(key, str) else []
    hint = f" (did you mean {close[0]}?)" if close else ""
    return FieldProblem(
        _shown(key), f"not a context field{hint}; the fields are {', '.join(FIELDS)}"
    )


def clean_context(raw: object) -> dict[str, object]:
    """A context as any door gives it (a JSON object), checked and cleaned by the table.

    Every problem is found, not just the first: unknown keys, and each given value that
    its field's parser refuses (type and format). Null and blank text mean "not known yet"
    and are left out, since a case may be opened with partial context (`missing_context`
    says what an escalation still needs); an empty list is kept as it is. What is returned
    is JSON-safe (str, int, list, dict): text stripped, amounts as canonical decimal
    strings ("5000.50"), times in one ISO-8601 form. Raises ContextRefused."""
    if not isinstance(raw, Mapping):
        raise ContextRefused(
            [FieldProblem("context", 'give an object of fields, like {"customer_id": "C-1042"}')]
        )
    problems = [_unknown(key) for key in raw if key not in FIELDS]
    cleaned: dict[str, object] = {}
    for name, field in FIELDS.items():
        value = raw.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        one, found = _attempt(field.parse, value, name)
        problems += found
        if not found:
            cleaned[name] = one
    if problems:
        raise ContextRefused(problems)
    return cleaned


def required_fields(kinds: Collection[ContextKind]) -> list[str]:
    """The fields an escalation of these kinds needs, in table order (the case page's
    checklist)."""
    wanted = set(kinds)
    return [name for name, field in FIELDS.items() if field.kinds & wanted]


def missing_context(
    context: Mapping[str, object], kinds: Collection[ContextKind]
) -> list[FieldProblem]:
    """Every field required for these kinds that a cleaned context lacks or holds empty,
    in table order, each saying what to give."""
    return [
        FieldProblem(name, f"missing: give {FIELDS[name].description}")
        for name in required_fields(kinds)
        if _not_given(context.get(name))
    ]


_EVIDENCE_FLAGS = frozenset(
    {
        Flag.LEGAL_THREAT,
        Flag.SUSPECTED_FRAUD,
        Flag.DATA_BREACH,
        Flag.LEGAL_SERVICE,
        Flag.TERMINATION_APPEAL,
    }
)


def context_kinds(
    flags: Collection[Flag], *, to_level: Level, financial: bool, crypto: bool
) -> frozenset[ContextKind]:
    """The kinds of context an escalation to `to_level` needs: the base always; the
    technical notice for the technical tiers; on-chain facts for crypto cases; the amount
    for money (a USDT withdrawal is money); evidence where fraud, a breach or the law is
    involved."""
    kinds = {ContextKind.BASE}
    if to_level in (Level.TIER_2, Level.TIER_3):
        kinds.add(ContextKind.TECHNICAL)
    if crypto:
        kinds.add(ContextKind.CRYPTO)
    if financial or Flag.USDT_WITHDRAWAL in flags:
        kinds.add(ContextKind.FINANCIAL)
    if _EVIDENCE_FLAGS & set(flags):
        kinds.add(ContextKind.EVIDENCE)
    return frozenset(kinds)


# --- The escalation checklist --------------------------------------------------------------


class ChecklistItem(StrEnum):
    """What the agent ticks before escalating."""

    TROUBLESHOOTING_DONE = "troubleshooting_done"
    DOCUMENTED = "documented"
    IMPACT_ASSESSED = "impact_assessed"
    SLA_DEADLINE_NOTED = "sla_deadline_noted"
    WORKAROUNDS_TRIED = "workarounds_tried"
    KNOWLEDGE_BASE_CHECKED = "knowledge_base_checked"


_CHECKLIST_NAMES = ", ".join(ChecklistItem)


def _checklist_item(value: object, where: str) -> ChecklistItem:
    try:
        return ChecklistItem(_string(value, where).strip().lower())
    except ValueError:
        raise InvalidValue(where, f"not a checklist item; give one of {_CHECKLIST_NAMES}") from None


def clean_checklist(raw: object) -> frozenset[ChecklistItem]:
    """The ticked items, from a list of their names (null is none ticked). Every unknown
    name is refused, as checklist[i], with the names allowed. Raises ContextRefused."""
    if raw is None:
        return frozenset()
    if not isinstance(raw, list):
        raise ContextRefused(
            [FieldProblem("checklist", f"give a list of item names from {_CHECKLIST_NAMES}")]
        )
    items: set[ChecklistItem] = set()
    problems: list[FieldProblem] = []
    for index, value in enumerate(raw):
        item, found = _attempt(_checklist_item, value, f"checklist[{index}]")
        problems += found
        if isinstance(item, ChecklistItem):
            items.add(item)
    if problems:
        raise ContextRefused(problems)
    return frozenset(items)


def checklist_problems(
    checklist: Collection[ChecklistItem], *, from_level: Level, emergency: bool
) -> list[FieldProblem]:
    """Tier 1 troubleshoots before escalating, so the next level does not start from
    nothing; an emergency category escalates at once, troubleshooting or not."""
    done = ChecklistItem.TROUBLESHOOTING_DONE in checklist
    if from_level is not Level.TIER_1 or emergency or done:
        return []
    return [
        FieldProblem(
            "checklist.troubleshooting_done",
            "troubleshoot first and tick it: tier 1 escalates before troubleshooting "
            "only in an emergency",
        )
    ]
