"""`/incident case ...` typed in chat: support cases, as typed commands or a usage problem.

Pure: no I/O, no clock, like `chat_commands` (whose `parse` hands `case ...` here). The
parser reads words and puts them in the API's terms (`priority: p2` -> `{"priority":
"P2"}`, `flags: legal_threat,media_contact` -> a list); whether a value is allowed is not
decided here. The Slack door builds the API's own request model from the command, so a bad
level, amount or e-mail address is refused by the one rule, whichever door it came through.
The parser refuses only what it cannot read: a missing case number or reason, a key given
twice, several words where one is wanted.

The grammar: `case <command> <case> ...`, positional words first, then free text; some
commands take `key: value` pairs, each key at the start of a word and its value running to
the next key (as `followup <title> owner: due:`). `case open` takes the case's facts as
keys after the summary (one word each, `priority: P2 flags: legal_threat,media_contact`, but
`category:` and `component:`, which are text); `case set` takes facts and the escalation
context (`actions_taken: Checked the ledger`, `transactions: evm 0xab… 2026-03-01T10:00Z`,
repeated for several). `case link <case> <INC-n>` names the incident after the case.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from difflib import get_close_matches
from functools import partial
from typing import Any, ClassVar

from incident.domain.case import Deescalation, Plan
from incident.domain.case_context import FIELDS
from incident.domain.case_routing import Level
from incident.domain.chat_commands import Usage, escape, plain_text

# A case named as people write it: 12, #12 or CASE-12 (any case).
_CASE_REF = re.compile(r"(?:case-|#)?(\d{1,15})", re.IGNORECASE)
# An incident, where a command names one after the case: INC-7, #7 or 7 (any case).
_INCIDENT_REF = re.compile(r"(?:inc-|#)?(\d{1,15})", re.IGNORECASE)
# A word, or one of Slack's tokens whole (as chat_commands reads words).
_WORD = re.compile(r"\s*(<[^<>]*>|\S+)\s*(.*)", re.DOTALL)
# Something that looks like a key: a word ending in a colon, at the start of a word.
_KEY = re.compile(r"(?:^|(?<=\s))([A-Za-z_]{2,40}):")
# Slack's e-mail link: <mailto:sam@example.com|sam@example.com>.
_MAILTO = re.compile(r"<mailto:([^|<>\s]+)(?:\|[^<>]*)?>", re.IGNORECASE)
_LIST_SEPARATORS = re.compile(r"[\s,]+")
_YES = frozenset({"yes", "y", "true", "on"})
_NO = frozenset({"no", "n", "false", "off"})


# --- the commands --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class OnCase:
    """A `case ...` command; `name` labels its metric, its log line and its usage."""

    name: ClassVar[str] = "case"


@dataclass(frozen=True, kw_only=True)
class CaseHelp(OnCase):
    name: ClassVar[str] = "case help"


@dataclass(frozen=True, kw_only=True)
class OpenCase(OnCase):
    """`facts`: the other fields of the API's OpenCaseRequest, in its terms."""

    name: ClassVar[str] = "case open"
    reference: str
    customer_id: str
    plan: str
    summary: str
    facts: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ListCases(OnCase):
    name: ClassVar[str] = "case list"
    level: str | None = None


@dataclass(frozen=True, kw_only=True)
class OneCase(OnCase):
    case_id: int


@dataclass(frozen=True, kw_only=True)
class ShowCase(OneCase):
    name: ClassVar[str] = "case show"


@dataclass(frozen=True, kw_only=True)
class UpdateCase(OneCase):
    """`changes`: the fields of the API's UpdateCaseRequest, in its terms."""

    name: ClassVar[str] = "case set"
    changes: Mapping[str, object]


@dataclass(frozen=True, kw_only=True)
class RecordProgress(OneCase):
    """Work on the case, or (`to_customer`) an answer the customer was sent."""

    to_customer: ClassVar[bool] = False
    note: str


@dataclass(frozen=True, kw_only=True)
class CaseNote(RecordProgress):
    name: ClassVar[str] = "case note"


@dataclass(frozen=True, kw_only=True)
class CaseSent(RecordProgress):
    name: ClassVar[str] = "case sent"
    to_customer: ClassVar[bool] = True


@dataclass(frozen=True, kw_only=True)
class EscalateCase(OneCase):
    name: ClassVar[str] = "case escalate"
    level: str
    reason: str
    urgent: str | None = None  # why it cannot wait: the urgency becomes cannot_wait
    override: str | None = None  # a manager's reason to escalate with context missing


@dataclass(frozen=True, kw_only=True)
class ConfirmReceipt(OneCase):
    name: ClassVar[str] = "case confirm"


@dataclass(frozen=True, kw_only=True)
class DeescalateCase(OneCase):
    name: ClassVar[str] = "case deescalate"
    level: str
    why: str
    note: str


@dataclass(frozen=True, kw_only=True)
class DecideCase(OneCase):
    """The CIO's or the CEO's decision (`level`: cio or ceo)."""

    approved: ClassVar[bool] = True
    level: str
    note: str


@dataclass(frozen=True, kw_only=True)
class ApproveCase(DecideCase):
    name: ClassVar[str] = "case approve"


@dataclass(frozen=True, kw_only=True)
class DeclineCase(DecideCase):
    name: ClassVar[str] = "case decline"
    approved: ClassVar[bool] = False


@dataclass(frozen=True, kw_only=True)
class ResolveCase(OneCase):
    name: ClassVar[str] = "case resolve"
    resolution: str


@dataclass(frozen=True, kw_only=True)
class LinkCase(OneCase):
    name: ClassVar[str] = "case link"
    incident_id: int


@dataclass(frozen=True, kw_only=True)
class UnlinkCase(OneCase):
    name: ClassVar[str] = "case unlink"


CaseCommand = (
    CaseHelp
    | OpenCase
    | ListCases
    | ShowCase
    | UpdateCase
    | CaseNote
    | CaseSent
    | EscalateCase
    | ConfirmReceipt
    | DeescalateCase
    | ApproveCase
    | DeclineCase
    | ResolveCase
    | LinkCase
    | UnlinkCase
)


# --- help and usage ------------------------------------------------------------------------

_LEVELS = "|".join(level.value for level in Level)
_WHYS = "|".join(why.value for why in Deescalation)
_PLANS = "|".join(plan.value for plan in Plan)

# (name, arguments, what it does), in the order the help shows them; plain text here.
CASE_COMMANDS: tuple[tuple[str, str, str], ...] = (
    (
        "open",
        f"<ticket> <customer-id> <{_PLANS}> <summary> [priority: P1-P4] [flags: a,b] [key: value]",
        "open a case for a helpdesk ticket (P3 unless priority: says); the rules route it at "
        "once: flags: legal_threat sends it to the CIO",
    ),
    ("show", "<case>", "its level, response clock, why it is there, what escalating needs, next"),
    (
        "list",
        "[level]",
        "the open cases (and those waiting for the customer's confirmation), longest open "
        "first: the queue of one level, or all",
    ),
    ("set", "<case> <key: value> [key: value ...]", "correct its facts or add escalation context"),
    ("note", "<case> <text>", "record work on the case (internal)"),
    ("sent", "<case> <text>", "record an answer the customer was sent"),
    (
        "escalate",
        "<case> <level> <reason> [urgent: <why it cannot wait>] [override: <why>]",
        "escalate to a level; the CEO only from the CIO (asking for the CEO goes to the CIO); "
        "override: (managers) escalates with context missing",
    ),
    ("confirm", "<case>", "confirm the case's new level has it"),
    ("deescalate", f"<case> <level> <{_WHYS}> <note>", "send it back to a level it came through"),
    ("approve", "<case> <cio|ceo> <note>", "approve, as the CIO or as the CEO"),
    ("decline", "<case> <cio|ceo> <note>", "decline, as the CIO or as the CEO"),
    ("resolve", "<case> <resolution>", "resolve it, once the decisions it needs are made"),
    (
        "link",
        "<case> <INC-n>",
        "link it to an open incident: its customer hears the incident's updates and its "
        "resolution, each once",
    ),
    ("unlink", "<case>", "unlink it from its incident: nothing more of it reaches the customer"),
    ("help", "", "this help"),
)
_ARGUMENTS = {name: arguments for name, arguments, _ in CASE_COMMANDS}
_ALIASES = {
    "new": "open",
    "view": "show",
    "queue": "list",
    "update": "set",
    "reply": "sent",
    "de-escalate": "deescalate",
    "ack": "confirm",
    "?": "help",
}


def case_usage_line(name: str, slash: str = "/incident") -> str:
    arguments = _ARGUMENTS[name]
    return f"`{slash} case {name}{' ' + escape(arguments) if arguments else ''}`"


def case_help_text(slash: str = "/incident") -> str:
    lines = [f"*{slash} case* works support cases from chat (a case: 12, #12 or CASE-12):"]
    lines += [
        f"• {case_usage_line(name, slash)}: {escape(what)}" for name, _, what in CASE_COMMANDS
    ]
    lines += [
        "Keys: a key starts a word and ends with a colon; its value runs to the next key.",
        "• facts (open, after the summary, and set): "
        + ", ".join(f"`{key}:` {escape(words)}" for key, words in _FACT_HELP)
        + "; set also takes `plan:` and `summary:`",
        "• escalation context (set): "
        + ", ".join(f"`{key}:`" for key in _CONTEXT_KEYS if key not in _LISTS)
        + f"; `transactions:` {escape('<evm|bitcoin> <hash> <time with zone>')} and "
        f"`wallet_addresses:` {escape('<evm|bitcoin> <address>')} (or `tx:`, `wallet:`) and "
        "`evidence:` take one item each: repeat the key for several (the list is replaced).",
        f"Levels: {escape(_LEVELS.replace('|', ', '))}.",
    ]
    return "\n".join(lines)


@dataclass(frozen=True)
class CaseUsage(Usage):
    """What was wrong with a `case ...` command: every problem found (Slack text, what it
    quotes escaped), and the usage of the case command meant (`command` None: the case
    command was not recognised, so all of them)."""

    problems: tuple[str, ...] = ()
    subcommand: str | None = None

    def text(self, slash: str = "/incident") -> str:
        found = self.problems or (self.problem,)
        said = f"{found[0]}." if len(found) == 1 else "\n".join(f"• {p}" for p in found)
        if self.subcommand is None:
            return f"{said}\n{case_help_text(slash)}"
        return (
            f"{said}\nUsage: {case_usage_line(self.subcommand, slash)}"
            f"\n`{slash} case help` lists the case commands and keys."
        )


def _usage(name: str, *problems: str) -> CaseUsage:
    return CaseUsage(problems[0], f"case {name}", problems=problems, subcommand=name)


# --- keys ----------------------------------------------------------------------------------


class _Unreadable(Exception):
    """A key's value that cannot be read at all (several words where one is wanted ...)."""


Reader = Callable[[str], object]


def _one(value: str) -> str:
    words = plain_text(value).split()
    if len(words) != 1:
        raise _Unreadable(f"takes one word (got {_quote(value)})")
    return words[0]


def _upper(value: str) -> str:
    return _one(value).upper()


def _lower(value: str) -> str:
    return _one(value).lower()


def _count(value: str) -> object:
    word = _one(value)
    return int(word) if word.isascii() and word.isdigit() and len(word) <= 9 else word


def _yes_no(value: str) -> object:
    word = _one(value).lower()
    return True if word in _YES else False if word in _NO else word


def _names(value: str) -> list[str]:
    return [word.lower() for word in _LIST_SEPARATORS.split(plain_text(value)) if word]


def _email(value: str) -> str:
    mailto = _MAILTO.fullmatch(value.strip())
    if mailto is not None:
        return mailto.group(1).replace("&amp;", "&")
    return _one(value)


def _parts(*names: str, example: str) -> Reader:
    def read(value: str) -> dict[str, str]:
        words = plain_text(value).split()
        if len(words) != len(names):
            raise _Unreadable(f"takes {', '.join(names)}, like {example} (got {_quote(value)})")
        return dict(zip(names, words, strict=True))

    return read


@dataclass(frozen=True)
class _Key:
    """A key's field in the API's request (`context.x`: the escalation context's field x),
    how its value is read, and whether it is repeated for a list (an item a key)."""

    field: str
    read: Reader = plain_text
    repeat: bool = False


_TRANSACTION = _parts("network", "hash", "at", example="evm 0xab… 2026-03-01T10:00Z")
_WALLET = _parts("network", "address", example="evm 0x5aAe…")
# The facts of a case, as `case open` (after the summary) and `case set` take them.
_FACT_KEYS: dict[str, _Key] = {
    "priority": _Key("priority", _upper),
    "email": _Key("customer_email", _email),
    "contacts": _Key("contacts", _count),
    "flags": _Key("flags", _names),
    "crypto": _Key("crypto", _yes_no),
    "disputed": _Key("disputed_amount", _one),
    "csr": _Key("csr", _one),
    "usdt": _Key("usdt_amount", _one),
    "checklist": _Key("checklist", _names),
    "category": _Key("category"),
    "component": _Key("component"),
}
_FACT_HELP = (
    ("priority", "P1-P4"),
    ("email", "<address>"),
    ("contacts", "<times they wrote>"),
    ("flags", "<legal_threat,media_contact,...> (the whole set)"),
    ("crypto", "yes|no"),
    ("disputed", "<EUR>"),
    ("csr", "<amount>"),
    ("usdt", "<amount>"),
    ("checklist", "<troubleshooting_done,documented,...> (the whole list)"),
    ("category", "<what it is about, like Withdrawals>"),
    ("component", "<the part of the product, like Ethereum>"),
)
# The escalation context a person gives (the case's own facts and the reason for escalating
# come from elsewhere): prose runs to the next key; lists take an item a key.
_FROM_ELSEWHERE = frozenset({"reference", "customer_id", "summary", "reason"})
_LISTS = {
    "evidence": _Key("context.evidence", repeat=True),
    "transactions": _Key("context.transactions", _TRANSACTION, repeat=True),
    "wallet_addresses": _Key("context.wallet_addresses", _WALLET, repeat=True),
}
_WORDS = {
    "amount": _one,
    "currency": _one,
    "customer_plan": _one,
    "account_value": _one,
    "previous_escalations": _count,
}
_CONTEXT_KEYS: dict[str, _Key] = {
    name: _LISTS.get(name) or _Key(f"context.{name}", _WORDS.get(name, plain_text))
    for name in FIELDS
    if name not in _FROM_ELSEWHERE
}
_SET_KEYS: dict[str, _Key] = {
    **_FACT_KEYS,
    "plan": _Key("plan", _lower),
    "summary": _Key("summary"),
    **_CONTEXT_KEYS,
    "tx": _LISTS["transactions"],
    "wallet": _LISTS["wallet_addresses"],
}
_ESCALATE_KEYS: dict[str, _Key] = {"urgent": _Key("urgent"), "override": _Key("override")}


@dataclass
class _Keyed:
    """What a text with keys holds: the text before the first key, the keys' values put
    together as a request body, and every problem."""

    lead: str = ""
    body: dict[str, Any] = field(default_factory=dict)
    given: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

    def put(self, written: str, key: _Key, value: str) -> None:
        if not plain_text(value):
            self.problems.append(f"{written}: needs a value after it")
            return
        if key.field in self.given and not key.repeat:
            self.problems.append(f"{written}: is given twice")
            return
        self.given.add(key.field)
        try:
            read = key.read(value)
        except _Unreadable as error:
            self.problems.append(f"{written}: {error}")
            return
        where, _, name = key.field.rpartition(".")
        target: dict[str, Any] = self.body.setdefault(where, {}) if where else self.body
        if key.repeat:
            target.setdefault(name, []).append(read)
        else:
            target[name] = read


def _keyed(text: str, keys: Mapping[str, _Key]) -> _Keyed:
    """`text` read as `lead key: value key: value ...`. A word with a colon that is not a
    key stays text, unless it is so close to a key that it is surely a slip of one."""
    parts = _KEY.split(text)
    found = _Keyed()
    pieces = [parts[0]]  # the current value (or the lead), with any colon words put back
    current: tuple[str, _Key] | None = None
    for written, value in zip(parts[1::2], parts[2::2], strict=True):
        key = keys.get(written.lower())
        if key is None:
            close = get_close_matches(written.lower(), keys, n=1, cutoff=0.85)
            if close:
                found.problems.append(f"{_quote(written)} is not a key; did you mean {close[0]}:?")
            pieces.append(f"{written}:{value}")
            continue
        _finish(found, current, "".join(pieces))
        current, pieces = (written.lower(), key), [value]
    _finish(found, current, "".join(pieces))
    return found


def _finish(found: _Keyed, current: tuple[str, _Key] | None, value: str) -> None:
    if current is None:
        found.lead = value
    else:
        found.put(*current, value)


# --- parsing -------------------------------------------------------------------------------


def parse_case(text: str) -> CaseCommand | CaseUsage:
    """The `case` command in the text after `/incident case`; never raises."""
    word, rest = _split(text)
    if word is None:
        return CaseHelp()
    name = _ALIASES.get(word.lower(), word.lower())
    parser = _PARSERS.get(name)
    if parser is None:
        return CaseUsage(f"unknown case command {_quote(word)}", "case")
    return parser(rest)


def _help(rest: str) -> CaseHelp:
    return CaseHelp()


def _open(rest: str) -> OpenCase | CaseUsage:
    words: list[str] = []
    for _ in range(3):
        word, rest = _split(rest)
        if word is None:
            break
        words.append(plain_text(word))
    keyed = _keyed(rest, _FACT_KEYS)
    summary = plain_text(keyed.lead)
    if len(words) < 3 or not summary:
        missing = ("the ticket", "the customer's id", "the plan", "a summary")[len(words) :]
        return _usage("open", f"case open needs {', '.join(missing)}", *keyed.problems)
    if keyed.problems:
        return _usage("open", *keyed.problems)
    reference, customer_id, plan = words
    return OpenCase(
        reference=reference,
        customer_id=customer_id,
        plan=plan.lower(),
        summary=summary,
        facts=keyed.body,
    )


def _list(rest: str) -> ListCases | CaseUsage:
    words = plain_text(rest).split()
    if len(words) > 1:
        return _usage("list", f"case list takes one level at most (got {_quote(rest)})")
    return ListCases(level=_named(words[0]) if words else None)


def _case_then(name: str, rest: str) -> tuple[int, str] | CaseUsage:
    """The case number first, and the rest."""
    word, rest = _split(rest)
    match = _CASE_REF.fullmatch(word) if word is not None else None
    if match is None or int(match.group(1)) < 1:
        shown = f", not {_quote(word)}" if word is not None else ""
        return _usage(name, f"case {name} needs the case first: 12, #12 or CASE-12{shown}")
    return int(match.group(1)), rest


def _only_case(name: str, rest: str) -> int | CaseUsage:
    found = _case_then(name, rest)
    if isinstance(found, CaseUsage):
        return found
    case_id, extra = found
    if extra.strip():
        return _usage(name, f"case {name} takes nothing after the case (got {_quote(extra)})")
    return case_id


def _show(rest: str) -> ShowCase | CaseUsage:
    found = _only_case("show", rest)
    return found if isinstance(found, CaseUsage) else ShowCase(case_id=found)


def _confirm(rest: str) -> ConfirmReceipt | CaseUsage:
    found = _only_case("confirm", rest)
    return found if isinstance(found, CaseUsage) else ConfirmReceipt(case_id=found)


def _set(rest: str) -> UpdateCase | CaseUsage:
    found = _case_then("set", rest)
    if isinstance(found, CaseUsage):
        return found
    case_id, text = found
    keyed = _keyed(text, _SET_KEYS)
    problems = list(keyed.problems)  # a slip of a key is named as one
    if not problems and plain_text(keyed.lead):
        problems.append(f"case set takes key: value pairs; {_quote(keyed.lead)} is not one")
    elif not problems and not keyed.given:
        problems.append("case set needs a key: value, like priority: P2")
    if problems:
        return _usage("set", *problems)
    return UpdateCase(case_id=case_id, changes=keyed.body)


def _progress(name: str, rest: str) -> CaseNote | CaseSent | CaseUsage:
    found = _case_then(name, rest)
    if isinstance(found, CaseUsage):
        return found
    case_id, text = found
    note = plain_text(text)
    if not note:
        what = "what the customer was sent" if name == "sent" else "what was done"
        return _usage(name, f"case {name} needs {what}, after the case")
    kind = CaseSent if name == "sent" else CaseNote
    return kind(case_id=case_id, note=note)


def _escalate(rest: str) -> EscalateCase | CaseUsage:
    found = _case_then("escalate", rest)
    if isinstance(found, CaseUsage):
        return found
    case_id, text = found
    level, text = _split(text)
    keyed = _keyed(text, _ESCALATE_KEYS)
    reason = plain_text(keyed.lead)
    if level is None or not reason:
        need = "the level to go to, then the reason" if level is None else "the reason"
        return _usage("escalate", f"case escalate needs {need}", *keyed.problems)
    if keyed.problems:
        return _usage("escalate", *keyed.problems)
    return EscalateCase(
        case_id=case_id,
        level=_named(level),
        reason=reason,
        urgent=keyed.body.get("urgent"),
        override=keyed.body.get("override"),
    )


def _deescalate(rest: str) -> DeescalateCase | CaseUsage:
    found = _case_then("deescalate", rest)
    if isinstance(found, CaseUsage):
        return found
    case_id, text = found
    level, text = _split(text)
    why, text = _split(text)
    note = plain_text(text)
    if level is None or why is None or not note:
        return _usage("deescalate", "case deescalate needs the level, why, then a note")
    return DeescalateCase(case_id=case_id, level=_named(level), why=_named(why), note=note)


def _decide(name: str, rest: str) -> ApproveCase | DeclineCase | CaseUsage:
    found = _case_then(name, rest)
    if isinstance(found, CaseUsage):
        return found
    case_id, text = found
    level, text = _split(text)
    note = plain_text(text)
    if level is None or not note:
        return _usage(name, f"case {name} needs whose decision it is (cio or ceo), then a note")
    kind = ApproveCase if name == "approve" else DeclineCase
    return kind(case_id=case_id, level=_named(level), note=note)


def _resolve(rest: str) -> ResolveCase | CaseUsage:
    found = _case_then("resolve", rest)
    if isinstance(found, CaseUsage):
        return found
    case_id, text = found
    resolution = plain_text(text)
    if not resolution:
        return _usage("resolve", "case resolve needs the resolution, after the case")
    return ResolveCase(case_id=case_id, resolution=resolution)


def _link(rest: str) -> LinkCase | CaseUsage:
    """`link CASE-12 INC-7` (`to` may stand before the incident)."""
    found = _case_then("link", rest)
    if isinstance(found, CaseUsage):
        return found
    case_id, text = found
    words = plain_text(text).split()
    if words[:1] and words[0].lower() == "to":
        words = words[1:]
    match = _INCIDENT_REF.fullmatch(words[0]) if len(words) == 1 else None
    if match is None or int(match.group(1)) < 1:
        shown = f", not {_quote(text)}" if words else ""
        return _usage("link", f"case link needs the incident after the case: INC-7{shown}")
    return LinkCase(case_id=case_id, incident_id=int(match.group(1)))


def _unlink(rest: str) -> UnlinkCase | CaseUsage:
    found = _only_case("unlink", rest)
    return found if isinstance(found, CaseUsage) else UnlinkCase(case_id=found)


_PARSERS: dict[str, Callable[[str], CaseCommand | CaseUsage]] = {
    "help": _help,
    "open": _open,
    "list": _list,
    "show": _show,
    "set": _set,
    "note": partial(_progress, "note"),
    "sent": partial(_progress, "sent"),
    "escalate": _escalate,
    "confirm": _confirm,
    "deescalate": _deescalate,
    "approve": partial(_decide, "approve"),
    "decline": partial(_decide, "decline"),
    "resolve": _resolve,
    "link": _link,
    "unlink": _unlink,
}


# --- words ---------------------------------------------------------------------------------


def _split(text: str) -> tuple[str | None, str]:
    """The first word and the rest (the rest keeps its own spacing and new lines)."""
    match = _WORD.match(text)
    if match is None:
        return None, ""
    return match.group(1), match.group(2)


def _named(word: str) -> str:
    """A level, or why a case goes back down, as the API names it (`Tier-2` -> `tier_2`);
    whether it is one is the request model's to say."""
    return re.sub(r"^tier(\d)$", r"tier_\1", plain_text(word).lower().replace("-", "_"))


def _quote(text: str, limit: int = 40) -> str:
    """What the person typed, shown back as they read it, escaped for Slack."""
    text = plain_text(text)
    shown = text if len(text) <= limit else text[: limit - 1] + "…"
    return f"'{escape(shown)}'"
