"""Normalized signatures of support cases and alert groups: the text with everything that
differs between customers masked, so reports of the same problem read the same.

Pure. Later work clusters many customers' escalations into one incident candidate by
comparing signatures (rapidfuzz on `Signature.text`, grouped by `Signature.key()`), so
masking quality decides everything: a hash, an amount or a ticket number left in the text
makes two reports of one problem look different, and masking a word that names the
problem makes two problems look alike.

What `mask` does, in order:

1. NFKC (full-width digits, ligatures, "…" become plain), format characters (zero-width
   spaces, bidi marks, soft hyphens) dropped, other control characters made spaces.
2. On the text as written (case matters for Base58 and for UPPER_SNAKE error codes):
   URLs, e-mails, UUIDs, transaction hashes, addresses, then error codes, then other hex.
3. Casefolded, then: IP addresses, dates, times, amounts, ticket and order ids, ids of
   letters and digits, numbers; last, any run of 32+ hex digits or 3+ digits left inside
   a word.
4. Whitespace collapsed to single spaces; word order is kept.

Placeholders: `<url> <email> <uuid> <tx> <addr> <hex> <err> <ip> <date> <time> <amount>
<id> <num>`. None holds a digit or an `@`, so masking masked text changes nothing
(`mask(mask(x)) == mask(x)`).

Choices:

- **Error codes are taken out of the text** (`<err>`) and kept, normalized, in
  `Signature.error_codes`. Fuzzy scores are the wrong tool for codes: "E1042" and "E1043"
  differ by one character (a 99% match) yet are different problems, while two reports of
  one problem carry the same code. So the text says *where* a code stood ("withdrawal
  fails with <err>") and the comparer compares the codes exactly: same text and different
  codes are different problems. Codes found: `E1042`/`ERR-1042` (E, ERR or ERROR and
  digits), UPPER_SNAKE names (`ERR_TIMEOUT`, `INSUFFICIENT_FUNDS`), POSIX names
  (`ECONNREFUSED`), exception names (`TimeoutError`), Windows codes (`0x80070005`, 0x and
  exactly 8 hex digits), HTTP statuses 4xx/5xx after http/status/error words or before
  their reason phrase (`HTTP 502`), and the digits after error/code words in English,
  German, Spanish and French (`error code 1042` gives `1042`).
- **Amounts keep their currency**: "EUR 5,000.00", "5.000,00 €" and "€120" are all
  `<amount> eur`, "0.5 BTC" is `<amount> btc`. The asset is part of the problem (BTC
  withdrawals stuck is not USDT withdrawals stuck); the figure is not.
- **Keyworded ids keep their keyword**, spelled one way: "order #998877", "order no.
  998877" and "Order: 998877" are all `order <id>`.
- Words are never masked, even inside product names; digits glued to short words stay
  ("2fa", "ipv6", "mp3") because they name things, but runs of 3+ digits never survive.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

PLACEHOLDERS = frozenset(
    {
        "<url>",
        "<email>",
        "<uuid>",
        "<tx>",
        "<addr>",
        "<hex>",
        "<err>",
        "<ip>",
        "<date>",
        "<time>",
        "<amount>",
        "<id>",
        "<num>",
    }
)

Replacement = str | Callable[[re.Match[str]], str]


@dataclass(frozen=True)
class Signature:
    """A case's or alert group's text, normalized and masked, with what groups it."""

    text: str
    category: str = ""
    component: str = ""
    error_codes: tuple[str, ...] = ()

    def key(self) -> tuple[str, str]:
        """What candidates are grouped by: only signatures with the same key are compared."""
        return (self.category, self.component)


# --- Stage 1: on the text as written --------------------------------------------------------

# A URL first: it holds everything else (e-mails in its user part or query, hashes in an
# explorer link, ids, dates) and is one thing; masking its parts would leave a URL that
# still differs per customer. Trailing punctuation is the sentence's, not the URL's.
_URL_END = r"[^\s<>\"'.,;:!?)\]}]"
_URL = re.compile(rf"(?:https?|ftp)://[^\s<>\"']*{_URL_END}", re.IGNORECASE)
# E-mails before `www.` links: an e-mail's domain (a@www.example.com) is not a link, and
# before ids and numbers, which would eat a local part like "jane.doe1985".
_EMAIL = re.compile(r"[\w.+%-]+@(?:[\w-]+\.)+[a-z]{2,}(?!\w)", re.IGNORECASE)
_WWW = re.compile(rf"(?<![\w@.])www\.[^\s<>\"']*{_URL_END}", re.IGNORECASE)
# UUIDs before hex, dates and ticket ids: their groups alone look like all three.
_UUID = re.compile(
    r"(?<![0-9a-z-])[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?![0-9a-z-])",
    re.IGNORECASE,
)
# Exact lengths between hex boundaries, longest first: the first 40 digits of a hash are
# never an address, and a 64-digit hash is never a number.
_HEX_EDGE_L = r"(?<![0-9a-z])"
_HEX_EDGE_R = r"(?![0-9a-z])"
_EVM_TX = re.compile(rf"{_HEX_EDGE_L}0x[0-9a-f]{{64}}{_HEX_EDGE_R}", re.IGNORECASE)
_EVM_ADDR = re.compile(rf"{_HEX_EDGE_L}0x[0-9a-f]{{40}}{_HEX_EDGE_R}", re.IGNORECASE)
# Shortened the way wallets and explorers show them: 0x12ab…9f3c.
_EVM_SHORT = re.compile(r"(?<![0-9a-z])0x[0-9a-f]{3,8}\.{2,3}[0-9a-f]{3,8}(?![0-9a-z])", re.I)
_BARE_TX = re.compile(rf"{_HEX_EDGE_L}[0-9a-f]{{64}}{_HEX_EDGE_R}", re.IGNORECASE)
_LONG_HEX = re.compile(rf"{_HEX_EDGE_L}(?:0x)?[0-9a-f]{{32,}}{_HEX_EDGE_R}", re.IGNORECASE)
# Bitcoin (and Tron, for USDT-TRC20) addresses before ids and numbers, which would take
# them as ids. Base58 is case-sensitive (no 0, O, I, l), so this runs before casefolding;
# a letter is required so that a long number starting with 1 or 3 stays a number.
_B58 = "1-9A-HJ-NP-Za-km-z"
_BASE58_ADDR = re.compile(
    rf"(?<!\w)(?=[{_B58}]*[A-Za-z])(?:[13][{_B58}]{{25,34}}|T[{_B58}]{{33}})(?!\w)"
)
_BECH32_ADDR = re.compile(r"(?<!\w)(?:bc1|tb1|ltc1)[02-9ac-hj-np-z]{11,87}(?!\w)", re.I)
_GENERIC_HEX = re.compile(r"(?<![0-9a-z])0x[0-9a-f]+(?![0-9a-z])", re.IGNORECASE)

_BEFORE_CODES: tuple[tuple[re.Pattern[str], Replacement], ...] = (
    (_URL, "<url>"),
    (_EMAIL, "<email>"),
    (_WWW, "<url>"),
    (_UUID, "<uuid>"),
    (_EVM_TX, "<tx>"),
    (_EVM_ADDR, "<addr>"),
    (_EVM_SHORT, "<addr>"),
    (_BARE_TX, "<tx>"),
    (_BECH32_ADDR, "<addr>"),
    (_BASE58_ADDR, "<addr>"),
)
# After the codes, so that 0x80070005 is a code and not just hex.
_AFTER_CODES: tuple[tuple[re.Pattern[str], Replacement], ...] = (
    (_LONG_HEX, "<hex>"),
    (_GENERIC_HEX, "<hex>"),
)


# --- Error codes (after the long tokens, so a code is never a piece of a hash) ------------


@dataclass(frozen=True)
class _CodeRule:
    """A way error codes are written: the code it names, and what stays in the text."""

    pattern: re.Pattern[str]
    code: Callable[[re.Match[str]], str]
    text: str  # a `Match.expand` template


def _upper(match: re.Match[str]) -> str:
    return match.group("code").upper()


def _hex_code(match: re.Match[str]) -> str:
    return "0x" + match.group("code")[2:].upper()


def _http(match: re.Match[str]) -> str:
    return "HTTP " + match.group("code")


def _numbered(match: re.Match[str]) -> str:
    """After an error word, a 4xx/5xx number is almost always the HTTP status."""
    code = match.group("code")
    return "HTTP " + code if re.fullmatch(r"[45]\d\d", code) else code


_NUM_END = r"(?!\w|[.,:/-]\d)"
_HTTP_WORDS = r"https?(?:/[\d.]+)?|status(?:\s?code)?"
_ERROR_WORDS = (
    r"error\s?code|error|err|errno|code\s+d'erreur|code|fehlercode|fehler|erreur"
    r"|c[oó]digo\s+de\s+error|c[oó]digo"
)
_REASONS = (
    r"bad\s+gateway|service\s+unavailable|gateway\s+time-?out|internal\s+server\s+error"
    r"|not\s+found|forbidden|unauthori[sz]ed|too\s+many\s+requests|bad\s+request"
)
_POSIX = (
    r"E(?:CONNREFUSED|CONNRESET|CONNABORTED|TIMEDOUT|HOSTUNREACH|NETUNREACH|NOTFOUND"
    r"|ADDRINUSE|PIPE|ACCES|PERM|NOENT)"
)
_CODE_RULES = (
    _CodeRule(
        re.compile(rf"(?<![\w-])(?P<code>(?:error|err|e)[-_]?\d{{2,6}}){_NUM_END}", re.I),
        _upper,
        "<err>",
    ),
    _CodeRule(
        re.compile(r"(?<![\w-])(?P<code>(?:error|err)_\w+|[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)(?!\w)"),
        _upper,
        "<err>",
    ),
    _CodeRule(re.compile(rf"(?<!\w)(?P<code>{_POSIX})(?!\w)"), _upper, "<err>"),
    _CodeRule(
        re.compile(r"(?<!\w)(?P<code>[A-Z][A-Za-z0-9]*(?:Exception|Error))(?!\w)"),
        lambda match: match.group("code"),
        "<err>",
    ),
    _CodeRule(
        re.compile(r"(?<![0-9a-z])(?P<code>0x[0-9a-f]{8})(?![0-9a-z])", re.IGNORECASE),
        _hex_code,
        "<err>",
    ),
    _CodeRule(
        re.compile(
            rf"(?<!\w)(?P<lead>(?:{_HTTP_WORDS})\s*[:=]?\s*)(?P<code>[45]\d\d){_NUM_END}", re.I
        ),
        _http,
        r"\g<lead><err>",
    ),
    _CodeRule(
        re.compile(
            rf"(?<!\w)(?P<lead>(?:{_ERROR_WORDS})\s*[:#=]?\s*)(?P<code>\d{{3,6}}){_NUM_END}", re.I
        ),
        _numbered,
        r"\g<lead><err>",
    ),
    _CodeRule(
        re.compile(rf"(?<!\w)(?P<code>[45]\d\d)(?P<rest>\s+(?:{_REASONS}))(?!\w)", re.I),
        _http,
        r"<err>\g<rest>",
    ),
)


def _take_codes(text: str, found: list[str]) -> str:
    """`text` with its error codes made `<err>`, each code appended to `found`."""
    for rule in _CODE_RULES:

        def replace(match: re.Match[str], rule: _CodeRule = rule) -> str:
            found.append(rule.code(match))
            return match.expand(rule.text)

        text = rule.pattern.sub(replace, text)
    return text


# --- Stage 2: casefolded -----------------------------------------------------------------

# IP addresses before dates (1.3.20.26 is not a date), times (fe80::10:5 is no time) and
# numbers.
_OCTET = r"(?:25[0-5]|2[0-4]\d|1?\d?\d)"
_IPV4 = re.compile(rf"(?<![\w.])(?:{_OCTET}\.){{3}}{_OCTET}(?::\d{{1,5}})?(?!\w|\.\d)")
_H4 = "[0-9a-f]{1,4}"
_IPV6 = re.compile(
    rf"(?<![\w:])(?:(?:{_H4}:){{7}}{_H4}|(?:{_H4}:){{1,7}}:(?:{_H4}(?::{_H4}){{0,6}})?"
    rf"|::{_H4}(?::{_H4}){{0,6}})(?![\w:])"
)
# Dates before times (the T10:05 of an ISO timestamp) and before amounts and numbers.
_MONTHS = sorted(
    {
        *[
            "january",
            "jan",
            "february",
            "feb",
            "march",
            "mar",
            "april",
            "apr",
            "may",
            "june",
            "jun",
            "july",
            "jul",
            "august",
            "aug",
        ],
        *["september", "sept", "sep", "october", "oct", "november", "nov", "december", "dec"],
        *[
            "januar",
            "jänner",
            "februar",
            "märz",
            "maerz",
            "mai",
            "juni",
            "juli",
            "oktober",
            "dezember",
        ],
        *[
            "enero",
            "febrero",
            "marzo",
            "abril",
            "mayo",
            "junio",
            "julio",
            "agosto",
            "septiembre",
            "setiembre",
        ],
        *["octubre", "noviembre", "diciembre"],
        *[
            "janvier",
            "février",
            "fevrier",
            "mars",
            "avril",
            "juin",
            "juillet",
            "août",
            "aout",
            "septembre",
        ],
        *["octobre", "novembre", "décembre", "decembre"],
    },
    key=lambda month: (-len(month), month),
)
_MONTH = rf"(?:{'|'.join(_MONTHS)})(?!\w)\.?"
_DAY = r"(?:[12]\d|3[01]|0?[1-9])"
_ORDINAL = r"(?:st|nd|rd|th|er|º)?"
_TIMESTAMP = re.compile(
    r"(?<![\w./:-])\d{4}-\d{2}-\d{2}[t ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?"
    r"(?:z|[+-]\d{2}:?\d{2})?(?!\w)"
)
_NUMERIC_DATE = re.compile(
    r"(?<![\w./:-])(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{4}"
    r"|\d{1,2}/\d{1,2}/\d{2}|\d{2}\.\d{2}\.\d{2})(?!\w|[./:-]\d)"
)
_DAY_MONTH = re.compile(
    rf"(?<!\w){_DAY}{_ORDINAL}\.?\s*(?:of\s+|de\s+)?{_MONTH}(?:,?\s*(?:de\s+)?\d{{4}}(?!\w))?"
)
_MONTH_DAY = re.compile(rf"(?<!\w){_MONTH}\s*{_DAY}{_ORDINAL}(?!\w)(?:,?\s*\d{{4}}(?!\w))?")
_MONTH_YEAR = re.compile(rf"(?<!\w){_MONTH}\s*\d{{4}}(?!\w)")
# Times before numbers; a zone written as a word ("UTC") stays a word.
_TIME = re.compile(
    r"(?<![\w:.])(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:[.,]\d+)?)?"
    r"(?:z|[+-]\d{2}:?\d{2})?(?:\s?(?:am|pm|a\.m\.|p\.m\.))?(?![\w:]|\.\d)"
)
_TIME_WORDY = re.compile(
    r"(?<!\w)(?:(?:[01]?\d|2[0-3])h[0-5]\d|(?:1[0-2]|0?[1-9])\s?(?:am|pm)"
    r"|(?:[01]?\d|2[0-3])\.[0-5]\d(?=\s?uhr(?!\w)))(?!\w)"
)
# Amounts before ids and numbers: a currency says the number is money.
_CURRENCIES = {
    "€": "eur",
    "$": "usd",
    "£": "gbp",
    "¥": "jpy",
    "₿": "btc",
    "euro": "eur",
    "euros": "eur",
    "dollar": "usd",
    "dollars": "usd",
    "dólar": "usd",
    "dólares": "usd",
    "sats": "btc",
    "satoshi": "btc",
    "satoshis": "btc",
}
_CODES = [
    "eur",
    "usd",
    "gbp",
    "chf",
    "jpy",
    "cad",
    "aud",
    "pln",
    "sek",
    "nok",
    "dkk",
    "czk",
    "huf",
    "brl",
    "mxn",
    "btc",
    "eth",
    "usdt",
    "usdc",
    "dai",
    "busd",
    "xrp",
    "ltc",
    "bnb",
    "ada",
    "doge",
    "trx",
    "matic",
    "avax",
    "eurc",
]
_CURRENCY = "|".join(
    re.escape(name) for name in sorted({*_CURRENCIES, *_CODES}, key=lambda n: (-len(n), n))
)
_FIGURE = r"(?:\d{1,3}(?:[,.' ]\d{3})+(?:[.,]\d+)?|\d+(?:[.,]\d+)?)"
_AMOUNT_BEFORE = re.compile(rf"(?<!\w)(?P<cur>{_CURRENCY})\s?{_FIGURE}(?!\w|[.,]\d)")
_AMOUNT_AFTER = re.compile(rf"(?<![\w.,]){_FIGURE}\s?(?P<cur>{_CURRENCY})(?!\w)")


def _amount(match: re.Match[str]) -> str:
    currency = match.group("cur")
    return "<amount> " + _CURRENCIES.get(currency, currency)


# Ids: after a keyword (kept, spelled one way), after #, PREFIX-1234, or 6+ letters and
# digits mixed. Before numbers, which would take their digits.
_ID_WORDS = (
    "order|ticket|case|request|ref|reference|invoice|account|customer|user id|uid|id"
    "|bestellung|auftrag|anfrage|konto|kunde|kundennummer|pedido|orden|solicitud|caso"
    "|cuenta|cliente|commande|demande|dossier|référence|compte|client"
)
_KEYWORD_ID = re.compile(
    rf"(?<!\w)(?P<word>{_ID_WORDS})[\s:#]*(?:(?:no|nr|n[º°]|number|nummer|número|numéro)\.?[\s:#]*)?"
    rf"(?:[a-z]{{1,5}}-)?\d{{3,}}{_NUM_END}"
)
_HASH_ID = re.compile(rf"(?<![\w&])#\d{{2,}}{_NUM_END}")
_PREFIX_ID = re.compile(rf"(?<![\w-])[a-z]{{2,10}}-\d{{2,}}{_NUM_END}")
_MIXED_ID = re.compile(r"(?<!\w)(?=[a-z0-9]*[a-z])(?=[a-z0-9]*\d)[a-z0-9]{6,}(?!\w)")
# Units and ordinals glued to a number stay ("24h", "3rd"), so "24h" and "48h" match.
_UNITS = r"st|nd|rd|th|er|e|h|hrs?|min|mins|s|sec|secs|d|x|k|m|ms|kb|mb|gb|%"
_VERSION = re.compile(r"(?<!\w)v\d+(?:\.\d+)+(?!\w)")
_NUMBER = re.compile(rf"(?<![\w.,])\d+(?:[.,]\d+)*(?=(?:{_UNITS})?(?!\w))")
# Last, whatever is left glued to letters: no hash or long number survives.
_HEX_LEFT = re.compile(r"[0-9a-f]{32,}")
_DIGITS_LEFT = re.compile(r"\d{3,}")

_CASEFOLDED: tuple[tuple[re.Pattern[str], Replacement], ...] = (
    (_IPV4, "<ip>"),
    (_IPV6, "<ip>"),
    (_TIMESTAMP, "<date> <time>"),
    (_NUMERIC_DATE, "<date>"),
    (_DAY_MONTH, "<date>"),
    (_MONTH_DAY, "<date>"),
    (_MONTH_YEAR, "<date>"),
    (_TIME, "<time>"),
    (_TIME_WORDY, "<time>"),
    (_AMOUNT_BEFORE, _amount),
    (_AMOUNT_AFTER, _amount),
    (_KEYWORD_ID, r"\g<word> <id>"),
    (_HASH_ID, "<id>"),
    (_PREFIX_ID, "<id>"),
    (_MIXED_ID, "<id>"),
    (_VERSION, "v<num>"),
    (_NUMBER, "<num>"),
    (_HEX_LEFT, "<hex>"),
    (_DIGITS_LEFT, "<num>"),
)


def _apply(text: str, rules: tuple[tuple[re.Pattern[str], Replacement], ...]) -> str:
    for pattern, replacement in rules:
        text = pattern.sub(replacement, text)
    return text


def _visible(text: str) -> str:
    """NFKC, format characters dropped (a zero-width space must not split a hash), other
    control, separator and unassigned characters made spaces."""
    text = unicodedata.normalize("NFKC", text)
    if text.isprintable():
        return text
    kept: list[str] = []
    for char in text:
        kind = unicodedata.category(char)
        if kind == "Cf":
            continue
        kept.append(" " if kind[0] == "C" or kind in ("Zl", "Zp") else char)
    return "".join(kept)


def _masked(text: str) -> tuple[str, tuple[str, ...]]:
    found: list[str] = []
    text = _apply(_visible(text), _BEFORE_CODES)
    text = _apply(_take_codes(text, found), _AFTER_CODES)
    text = _apply(text.casefold(), _CASEFOLDED)
    return " ".join(text.split()), tuple(sorted(set(found)))


def mask(text: str) -> str:
    """`text` normalized, with every customer-specific token a placeholder (see above)."""
    return _masked(text)[0]


def _label(value: str) -> str:
    """A category or component as given: NFKC, casefolded, whitespace collapsed."""
    return " ".join(_visible(value).casefold().split())


def signature(text: str, *, category: str = "", component: str = "") -> Signature:
    """The signature of a case's or alert group's text."""
    masked, codes = _masked(text)
    return Signature(
        text=masked,
        category=_label(category),
        component=_label(component),
        error_codes=codes,
    )
