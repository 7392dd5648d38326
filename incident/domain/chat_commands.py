"""`/incident ...` typed in chat: the text parsed into a typed command, or a usage problem.

Pure: no I/O, no clock. The help text lives here, next to the parser, so the two cannot
drift apart. Free text (titles, messages, summaries) leaves as plain text: Slack's markup
(`<@U123|bob>`, `<https://x|label>`, `&amp;`) is turned into what a reader would see, so
what goes to customers and the status page carries no chat syntax.

Which incident: commands other than `declare` and `help` act on the incident whose war room
they are typed in, unless they name one, right after the command (`ack INC-12`, `ack #12`)
or right before it (`INC-12 ack`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from incident.domain.incident import OPEN_STATUSES, Severity, Status

# An incident reference: INC-12 or #12 (any case).
_REF = re.compile(r"(?:inc-|#)(\d{1,15})", re.IGNORECASE)
# Slack's escaped user mention: <@U123> or <@U123|bob> (W... for Enterprise Grid users).
_MENTION = re.compile(r"<@([UW][A-Z0-9]{1,30})(?:\|[^>]*)?>")
# Any of Slack's angle-bracket tokens: mentions, channels, links, special mentions, dates.
_TOKEN = re.compile(r"<([^<>]*)>")
_LINK = re.compile(r"https?://\S+", re.IGNORECASE)
# A word, or one of Slack's tokens whole (a label in it may hold spaces: <https://x|the RCA>).
_WORD = re.compile(r"\s*(<[^<>]*>|\S+)\s*(.*)", re.DOTALL)


# --- the commands --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Help:
    name: ClassVar[str] = "help"


@dataclass(frozen=True, kw_only=True)
class Declare:
    name: ClassVar[str] = "declare"
    severity: Severity
    title: str


@dataclass(frozen=True, kw_only=True)
class OnIncident:
    """A command about one incident; `incident_id` None: the war room's incident."""

    name: ClassVar[str] = ""
    incident_id: int | None = None


@dataclass(frozen=True, kw_only=True)
class Acknowledge(OnIncident):
    name: ClassVar[str] = "ack"


@dataclass(frozen=True, kw_only=True)
class SetStatus(OnIncident):
    """Move the status and tell customers why, in one customer-facing update."""

    name: ClassVar[str] = "status"
    status: Status
    message: str


@dataclass(frozen=True, kw_only=True)
class CustomerUpdate(OnIncident):
    name: ClassVar[str] = "update"
    message: str


@dataclass(frozen=True, kw_only=True)
class Note(OnIncident):
    name: ClassVar[str] = "note"
    text: str


@dataclass(frozen=True, kw_only=True)
class ChangeSeverity(OnIncident):
    name: ClassVar[str] = "severity"
    severity: Severity
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class AssignCommander(OnIncident):
    """`person` is a Slack mention, `<@U123>`; None means whoever typed the command."""

    name: ClassVar[str] = "ic"
    person: str | None


@dataclass(frozen=True, kw_only=True)
class Resolve(OnIncident):
    name: ClassVar[str] = "resolve"
    summary: str


@dataclass(frozen=True, kw_only=True)
class CompleteRca(OnIncident):
    name: ClassVar[str] = "rca"
    link: str


@dataclass(frozen=True, kw_only=True)
class ShowNext(OnIncident):
    name: ClassVar[str] = "next"


@dataclass(frozen=True, kw_only=True)
class ShowTimeline(OnIncident):
    name: ClassVar[str] = "timeline"


IncidentCommand = (
    Acknowledge
    | SetStatus
    | CustomerUpdate
    | Note
    | ChangeSeverity
    | AssignCommander
    | Resolve
    | CompleteRca
    | ShowNext
    | ShowTimeline
)
Command = Help | Declare | IncidentCommand


# --- help and usage ------------------------------------------------------------------------

# (name, arguments, what it does), in the order the help shows them.
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("declare", "<P1-P4> <title>", "declare an incident; you become its commander"),
    ("ack", "", "acknowledge it: someone is on it"),
    (
        "status",
        "<investigating|identified|monitoring> <message>",
        "change the status and tell customers (customer-facing)",
    ),
    ("update", "<message>", "post a customer-facing update"),
    ("note", "<message>", "add an internal note to the timeline"),
    (
        "severity",
        "<P1-P4> [reason]",
        "change the severity; lowering it is for the commander or an admin",
    ),
    ("ic", "<@person|me>", "make someone the incident commander (pick them from the list)"),
    ("resolve", "<summary>", "resolve it (commander or admin); the RCA clock starts"),
    ("rca", "<link>", "mark the root-cause analysis done, with its link (commander or admin)"),
    ("next", "", "the upcoming playbook steps and when each is due"),
    ("timeline", "", "what has happened so far"),
    ("help", "", "this help"),
)
_ARGUMENTS = {name: arguments for name, arguments, _ in COMMANDS}
_ALIASES = {"acknowledge": "ack", "sev": "severity", "commander": "ic", "?": "help"}


def usage_line(name: str, slash: str = "/incident") -> str:
    arguments = _ARGUMENTS[name]
    return f"`{slash} {name}{' ' + arguments if arguments else ''}`"


def help_text(slash: str = "/incident") -> str:
    lines = [f"*{slash}* runs an incident from chat:"]
    lines += [f"• {usage_line(name, slash)}: {what}" for name, _, what in COMMANDS]
    lines.append(
        "Commands other than `declare` and `help` act on the incident whose war room you "
        f"type them in. Anywhere else, name the incident after the command: `{slash} ack "
        "INC-12` (or `#12`)."
    )
    return "\n".join(lines)


@dataclass(frozen=True)
class Usage:
    """What was wrong with the text, and the usage of the command it was meant to be
    (`command` None: the command itself was not recognised, so all of them)."""

    problem: str
    command: str | None = None

    def text(self, slash: str = "/incident") -> str:
        if self.command is None:
            return f"{self.problem}.\n{help_text(slash)}"
        return (
            f"{self.problem}.\nUsage: {usage_line(self.command, slash)}"
            f"\n`{slash} help` lists every command."
        )


# --- parsing -------------------------------------------------------------------------------


def parse(text: str) -> Command | Usage:
    """The command in the text after `/incident`; never raises."""
    word, rest = _split(text)
    if word is None:
        return Help()
    incident_id = _incident_ref(word)
    if incident_id is not None:
        word, rest = _split(rest)
        if word is None:
            return Usage(
                f"say what to do with INC-{incident_id}, for example `INC-{incident_id} ack`"
            )
    name = word.lower()
    name = _ALIASES.get(name, name)
    if name not in _ARGUMENTS:
        return Usage(f"unknown command {_quote(word)}")
    if name in ("help", "declare"):
        if incident_id is not None:
            return Usage(f"{name} takes no incident id", name)
        return Help() if name == "help" else _declare(rest)
    if incident_id is None:
        first, after = _split(rest)
        if first is not None and (incident_id := _incident_ref(first)) is not None:
            rest = after
    return _on_incident(name, incident_id, rest)


def _declare(rest: str) -> Declare | Usage:
    word, title = _split(rest)
    if word is not None and _incident_ref(word) is not None:
        return Usage("declare takes no incident id", "declare")
    severity = _severity(word)
    if severity is None:
        return Usage(
            "declare needs a severity first: P1, P2, P3 or P4"
            + (f", not {_quote(word)}" if word else ""),
            "declare",
        )
    title = plain_text(title)
    if not title:
        return Usage("declare needs a title that says what is wrong", "declare")
    return Declare(severity=severity, title=title)


def _on_incident(name: str, incident_id: int | None, rest: str) -> Command | Usage:
    match name:
        case "ack" | "next" | "timeline":
            if rest.strip():
                hint = "; to add a message, use `note`" if name == "ack" else ""
                return Usage(f"{name} takes nothing after it (got {_quote(rest)}){hint}", name)
            kinds: dict[str, type[Acknowledge | ShowNext | ShowTimeline]] = {
                "ack": Acknowledge,
                "next": ShowNext,
                "timeline": ShowTimeline,
            }
            return kinds[name](incident_id=incident_id)
        case "status":
            word, message = _split(rest)
            status = _status(word)
            if status is None:
                if word is not None and word.lower() == Status.RESOLVED.value:
                    return Usage("to resolve, use `resolve <summary>`", "status")
                shown = f", not {_quote(word)}" if word else ""
                return Usage(
                    f"status needs investigating, identified or monitoring{shown}", "status"
                )
            message = plain_text(message)
            if not message:
                return Usage("status needs a message for customers after the status", "status")
            return SetStatus(incident_id=incident_id, status=status, message=message)
        case "update" | "note" | "resolve":
            message = plain_text(rest)
            if not message:
                what = {"update": "a message for customers", "note": "the note's text"}
                return Usage(f"{name} needs {what.get(name, 'a summary of what fixed it')}", name)
            if name == "update":
                return CustomerUpdate(incident_id=incident_id, message=message)
            if name == "note":
                return Note(incident_id=incident_id, text=message)
            return Resolve(incident_id=incident_id, summary=message)
        case "severity":
            word, reason = _split(rest)
            severity = _severity(word)
            if severity is None:
                shown = f", not {_quote(word)}" if word else ""
                return Usage(f"severity needs P1, P2, P3 or P4{shown}", "severity")
            return ChangeSeverity(
                incident_id=incident_id, severity=severity, reason=plain_text(reason)
            )
        case "ic":
            return _assign(incident_id, rest)
        case "rca":
            return _rca(incident_id, rest)
    raise AssertionError(f"no parser for {name!r}")  # pragma: no cover - COMMANDS lists all


def _assign(incident_id: int | None, rest: str) -> AssignCommander | Usage:
    word, extra = _split(rest)
    if word is None:
        return Usage("ic needs the person: pick them from Slack's list as you type @", "ic")
    if extra.strip():
        return Usage(f"ic takes one person (got {_quote(rest)})", "ic")
    if word.lower() == "me":
        return AssignCommander(incident_id=incident_id, person=None)
    mention = _MENTION.fullmatch(word)
    if mention is not None:
        return AssignCommander(incident_id=incident_id, person=f"<@{mention.group(1)}>")
    if word.startswith("@"):
        # Slack sent the name as typed, not the user: names are neither unique nor stable,
        # and rights go with user ids, so we do not guess who was meant.
        return Usage(
            f"{_quote(word)} reached us as plain text, not as a Slack user, so we cannot tell "
            "who it is. Pick the person from the list Slack offers as you type @ (or use "
            "`ic me`). If that list does not appear, a Slack admin must turn on 'Escape "
            "channels, users, and links' for this command in the app's settings",
            "ic",
        )
    return Usage(f"ic needs a person mentioned with @, not {_quote(word)}", "ic")


def _rca(incident_id: int | None, rest: str) -> CompleteRca | Usage:
    word, extra = _split(rest)
    if word is None:
        return Usage("rca needs the link to the RCA document", "rca")
    if extra.strip():
        return Usage(f"rca takes one link (got {_quote(rest)})", "rca")
    link = word
    token = _TOKEN.fullmatch(word)
    if token is not None:
        link = token.group(1).split("|", 1)[0]
    link = _unescape(link)
    if not _LINK.fullmatch(link):
        return Usage(
            f"rca needs a link starting with https:// (got {_quote(word)}), for example "
            "https://wiki.example.com/rca/inc-12",
            "rca",
        )
    return CompleteRca(incident_id=incident_id, link=link)


# --- words and text ------------------------------------------------------------------------


def _split(text: str) -> tuple[str | None, str]:
    """The first word and the rest (the rest keeps its own spacing and new lines)."""
    match = _WORD.match(text)
    if match is None:
        return None, ""
    return match.group(1), match.group(2)


def _incident_ref(word: str) -> int | None:
    match = _REF.fullmatch(word)
    if match is None:
        return None
    value = int(match.group(1))
    return value if value >= 1 else None


def _severity(word: str | None) -> Severity | None:
    if word is None:
        return None
    try:
        return Severity(word.upper())
    except ValueError:
        return None


def _status(word: str | None) -> Status | None:
    if word is None:
        return None
    try:
        status = Status(word.lower())
    except ValueError:
        return None
    return status if status in OPEN_STATUSES else None


def _quote(text: str, limit: int = 40) -> str:
    text = text.strip()
    shown = text if len(text) <= limit else text[: limit - 1] + "…"
    return f"'{shown}'"


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def plain_text(text: str) -> str:
    """Slack's markup as a reader sees it: `<@U1|bob>` -> `@bob`, `<#C1|ops>` -> `#ops`,
    `<https://x|docs>` -> `docs (https://x)`, `<!here>` -> `@here`, entities decoded."""

    def readable(match: re.Match[str]) -> str:
        inside, _, label = match.group(1).partition("|")
        if inside.startswith("@"):
            return f"@{label or inside[1:]}"
        if inside.startswith("#"):
            return f"#{label or inside[1:]}"
        if inside.startswith("!"):
            if label:
                return label if label.startswith("@") or inside.startswith("!date") else f"@{label}"
            return f"@{inside[1:].split('^', 1)[0]}"
        return f"{label} ({inside})" if label and label != inside else inside

    return _unescape(_TOKEN.sub(readable, text)).strip()
