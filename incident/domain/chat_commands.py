"""`/incident ...` typed in chat: the text parsed into a typed command, or a usage problem.

Pure: no I/O, no clock. The help text lives here, next to the parser, so the two cannot
drift apart. Free text (titles, messages, summaries) leaves as plain text: Slack's markup
(`<@U123|bob>`, `<https://x|label>`, `&amp;`) is turned into what a reader would see, so
what goes to customers and the status page carries no chat syntax.

Which incident: commands other than `declare` and `help` act on the incident whose war room
they are typed in, unless they name one, right after the command (`ack INC-12`, `ack #12`)
or right before it (`INC-12 ack`). `merge` names the incident it merges into (`merge INC-7`:
the war room's incident is the duplicate; elsewhere `merge INC-12 INC-7`).

What we write back is Slack mrkdwn: `&`, `<` and `>` of our own text are escaped
(`&lt;step&gt;`), or Slack would read a placeholder as a link or a mention.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import partial
from typing import TYPE_CHECKING, ClassVar

from incident.domain.errors import InvalidValue
from incident.domain.incident import OPEN_STATUSES, Cancellation, Category, Severity, Status
from incident.domain.playbook import parse_duration

if TYPE_CHECKING:  # the case and candidate commands' modules use this one's helpers
    from incident.domain.candidate_chat_commands import CandidateCommand
    from incident.domain.case_chat_commands import CaseCommand

# An incident reference: INC-12 or #12 (any case).
_REF = re.compile(r"(?:inc-|#)(\d{1,15})", re.IGNORECASE)
# Slack's escaped user mention: <@U123> or <@U123|bob> (W... for Enterprise Grid users).
_MENTION = re.compile(r"<@([UW][A-Z0-9]{1,30})(?:\|[^>]*)?>")
# Any of Slack's angle-bracket tokens: mentions, channels, links, special mentions, dates.
_TOKEN = re.compile(r"<([^<>]*)>")
_LINK = re.compile(r"https?://\S+", re.IGNORECASE)
# A word, or one of Slack's tokens whole (a label in it may hold spaces: <https://x|the RCA>).
_WORD = re.compile(r"\s*(<[^<>]*>|\S+)\s*(.*)", re.DOTALL)
# A follow-up action item: FU-3 or 3.
_FOLLOW_UP = re.compile(r"(?:fu-)?(\d{1,15})", re.IGNORECASE)
# The keys of `followup <title> owner:<who> due:<when>`, each at the start of a word.
_FOLLOW_UP_KEY = re.compile(r"(?:^|(?<=\s))(owner|due):", re.IGNORECASE)
# Slack's e-mail link: <mailto:sam@example.com|sam@example.com>.
_MAILTO = re.compile(r"<mailto:([^|<>\s]+)(?:\|[^<>]*)?>", re.IGNORECASE)
# A date alone is due at the end of that day, UTC.
END_OF_DAY = time(23, 59, tzinfo=UTC)


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


@dataclass(frozen=True, kw_only=True)
class Retitle(OnIncident):
    name: ClassVar[str] = "title"
    title: str


@dataclass(frozen=True, kw_only=True)
class DescribeImpact(OnIncident):
    name: ClassVar[str] = "impact"
    impact: str


@dataclass(frozen=True, kw_only=True)
class SetService(OnIncident):
    name: ClassVar[str] = "service"
    service: str


@dataclass(frozen=True, kw_only=True)
class SetCategory(OnIncident):
    name: ClassVar[str] = "category"
    category: Category


@dataclass(frozen=True, kw_only=True)
class Cancel(OnIncident):
    name: ClassVar[str] = "cancel"
    reason: Cancellation
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class Reopen(OnIncident):
    name: ClassVar[str] = "reopen"
    reason: str


@dataclass(frozen=True, kw_only=True)
class Merge(OnIncident):
    """The incident acted on (the war room's, or `incident_id`) is the duplicate."""

    name: ClassVar[str] = "merge"
    into: int


@dataclass(frozen=True, kw_only=True)
class Approve(OnIncident):
    name: ClassVar[str] = "approve"
    step_id: str


@dataclass(frozen=True, kw_only=True)
class AddFollowUp(OnIncident):
    """`owner` None means whoever typed the command; `due` is an instant, or a time from
    now (the parser has no clock)."""

    name: ClassVar[str] = "followup"
    title: str
    owner: str | None
    due: datetime | timedelta


@dataclass(frozen=True, kw_only=True)
class CompleteFollowUp(OnIncident):
    name: ClassVar[str] = "followup done"
    follow_up: int


@dataclass(frozen=True, kw_only=True)
class ListFollowUps(OnIncident):
    name: ClassVar[str] = "followups"


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
    | Retitle
    | DescribeImpact
    | SetService
    | SetCategory
    | Cancel
    | Reopen
    | Merge
    | Approve
    | AddFollowUp
    | CompleteFollowUp
    | ListFollowUps
)
Command = Help | Declare | IncidentCommand


# --- help and usage ------------------------------------------------------------------------

# (name, arguments, what it does), in the order the help shows them. Arguments are written
# plainly here; the help escapes them for Slack.
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
    ("title", "<title>", "correct the title (one line)"),
    ("impact", "<text>", "say who is affected and how"),
    ("service", "<name>", "correct the service affected"),
    (
        "category",
        "<" + "|".join(c.value for c in Category) + ">",
        "re-route it: security brings the security team and holds customer texts for approval",
    ),
    ("resolve", "<summary>", "resolve it (commander or admin); the RCA clock starts"),
    ("rca", "<link>", "mark the root-cause analysis done, with its link (commander or admin)"),
    ("reopen", "<reason>", "reopen a resolved incident (commander)"),
    (
        "cancel",
        "<false_alarm|declined> [note]",
        "call it off: a false alarm, or real but not an incident (commander)",
    ),
    (
        "merge",
        "<INC-n>",
        "this incident is a duplicate of INC-n: merge it into that one (commander of both)",
    ),
    ("approve", "<step>", "let a customer text held for approval go out (commander)"),
    ("next", "", "the upcoming playbook steps and when each is due"),
    ("timeline", "", "what has happened so far"),
    (
        "followup",
        "<title> owner:<who> due:<YYYY-MM-DD|+7d>",
        "add an action item; its owner (@person, me or an e-mail) is reminded until it is done",
    ),
    ("followup done", "<FU-n>", "mark an action item done"),
    ("followups", "", "the action items and who owns them"),
    (
        "case",
        "<open|show|list|set|note|sent|escalate|confirm|deescalate|approve|decline|resolve|"
        "link|unlink> ...",
        "support cases: open, escalate, decide and resolve them, link them to incidents; "
        "`case help` lists how",
    ),
    (
        "candidate",
        "<list|show|declare|dismiss> ...",
        "incident candidates (many customers report one problem): declare or dismiss them; "
        "`candidate help` lists how",
    ),
    ("help", "", "this help"),
)
_ARGUMENTS = {name: arguments for name, arguments, _ in COMMANDS}
_ALIASES = {
    "acknowledge": "ack",
    "sev": "severity",
    "commander": "ic",
    "?": "help",
    "follow-up": "followup",
    "follow-ups": "followups",
}


def escape(text: str) -> str:
    """Our own text for a Slack message: `&`, `<` and `>` as Slack's entities, so that
    `<step>` reads as written instead of as a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def usage_line(name: str, slash: str = "/incident") -> str:
    arguments = _ARGUMENTS[name]
    return f"`{slash} {name}{' ' + escape(arguments) if arguments else ''}`"


def help_text(slash: str = "/incident") -> str:
    lines = [f"*{slash}* runs an incident from chat:"]
    lines += [f"• {usage_line(name, slash)}: {escape(what)}" for name, _, what in COMMANDS]
    lines.append(
        "Commands other than `declare` and `help` act on the incident whose war room you "
        f"type them in. Anywhere else, name the incident after the command: `{slash} ack "
        f"INC-12` (or `#12`); `{slash} merge INC-12 INC-7` merges the duplicate INC-12 into "
        "INC-7."
    )
    return "\n".join(lines)


@dataclass(frozen=True)
class Usage:
    """What was wrong with the text, and the usage of the command it was meant to be
    (`command` None: the command itself was not recognised, so all of them). `problem` is
    Slack text: what it quotes of the command is escaped."""

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


def parse(text: str) -> Command | CaseCommand | CandidateCommand | Usage:
    """The command in the text after `/incident`; never raises. `case ...` is a support
    case's command (`case_chat_commands`), `candidate ...` an incident candidate's
    (`candidate_chat_commands`)."""
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
    if name in ("help", "declare", "case", "candidate"):
        if incident_id is not None:
            return Usage(f"{name} takes no incident id", name)
        if name == "case":
            return _case(rest)
        if name == "candidate":
            return _candidate(rest)
        return Help() if name == "help" else _declare(rest)
    if name == "merge":  # its incident ids are read together: which one is the duplicate
        return _merge(incident_id, rest)
    if incident_id is None:
        first, after = _split(rest)
        if first is not None and (incident_id := _incident_ref(first)) is not None:
            rest = after
    return _on_incident(name, incident_id, rest)


def _case(rest: str) -> CaseCommand | Usage:
    from incident.domain.case_chat_commands import parse_case  # it imports this module

    return parse_case(rest)


def _candidate(rest: str) -> CandidateCommand | Usage:
    from incident.domain.candidate_chat_commands import parse_candidate  # it imports this one

    return parse_candidate(rest)


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
    parser = _INCIDENT_PARSERS.get(name)
    if parser is None:  # pragma: no cover - COMMANDS lists all
        raise AssertionError(f"no parser for {name!r}")
    return parser(incident_id, rest)


def _without_arguments(
    kind: type[Acknowledge | ShowNext | ShowTimeline | ListFollowUps],
    incident_id: int | None,
    rest: str,
) -> IncidentCommand | Usage:
    if rest.strip():
        return Usage(
            f"{kind.name} takes nothing after it (got {_quote(rest)}){_instead(kind.name)}",
            kind.name,
        )
    return kind(incident_id=incident_id)


def _instead(name: str) -> str:
    """The command meant when text follows one that takes none, as a hint."""
    if name == "ack":
        return "; to add a message, use `note`"
    if name == "followups":
        return f"; to add one, use {_code('followup <title> owner:<who> due:<date>')}"
    return ""


def _set_status(incident_id: int | None, rest: str) -> SetStatus | Usage:
    word, message = _split(rest)
    status = _status(word)
    if status is None:
        if word is not None and word.lower() == Status.RESOLVED.value:
            return Usage(f"to resolve, use {_code('resolve <summary>')}", "status")
        shown = f", not {_quote(word)}" if word else ""
        return Usage(f"status needs investigating, identified or monitoring{shown}", "status")
    message = plain_text(message)
    if not message:
        return Usage("status needs a message for customers after the status", "status")
    return SetStatus(incident_id=incident_id, status=status, message=message)


def _change_severity(incident_id: int | None, rest: str) -> ChangeSeverity | Usage:
    word, reason = _split(rest)
    severity = _severity(word)
    if severity is None:
        shown = f", not {_quote(word)}" if word else ""
        return Usage(f"severity needs P1, P2, P3 or P4{shown}", "severity")
    return ChangeSeverity(incident_id=incident_id, severity=severity, reason=plain_text(reason))


_NEEDS = {
    "update": "a message for customers",
    "note": "the note's text",
    "resolve": "a summary of what fixed it",
    "title": "the new title, in a line",
    "impact": "who is affected and how",
    "service": "the name of the service affected",
    "reopen": "the reason it is reopened",
}


def _free_text(name: str, incident_id: int | None, rest: str) -> IncidentCommand | Usage:
    """The commands whose argument is text; its limits are the domain's (as for the API)."""
    text = plain_text(rest)
    if not text:
        return Usage(f"{name} needs {_NEEDS[name]}", name)
    match name:
        case "update":
            return CustomerUpdate(incident_id=incident_id, message=text)
        case "note":
            return Note(incident_id=incident_id, text=text)
        case "resolve":
            return Resolve(incident_id=incident_id, summary=text)
        case "title":
            return Retitle(incident_id=incident_id, title=text)
        case "impact":
            return DescribeImpact(incident_id=incident_id, impact=text)
        case "service":
            return SetService(incident_id=incident_id, service=text)
    return Reopen(incident_id=incident_id, reason=text)


def _category(incident_id: int | None, rest: str) -> SetCategory | Usage:
    word, extra = _split(rest)
    names = ", ".join(c.value for c in Category)
    if word is None:
        return Usage(f"category needs one of {names}", "category")
    if extra.strip():
        return Usage(f"category takes one word (got {_quote(rest)})", "category")
    try:
        category = Category.parse(word)
    except InvalidValue:
        return Usage(f"unknown category {_quote(word)}; use one of {names}", "category")
    return SetCategory(incident_id=incident_id, category=category)


def _cancel(incident_id: int | None, rest: str) -> Cancel | Usage:
    word, note = _split(rest)
    if word is None:
        return Usage(
            "cancel needs a reason: false_alarm (nothing was wrong) or declined (real, but "
            "not an incident)",
            "cancel",
        )
    second, after = _split(note)
    if word.lower() == "false" and second is not None and second.lower() == "alarm":
        word, note = "false_alarm", after  # `cancel false alarm`, as people say it
    try:
        reason = Cancellation.parse(word)
    except InvalidValue:
        return Usage(f"cancel needs false_alarm or declined, not {_quote(word)}", "cancel")
    if reason is Cancellation.DUPLICATE:
        return Usage(
            f"a duplicate is merged into the incident it duplicates: {_code('merge <INC-n>')}",
            "cancel",
        )
    return Cancel(incident_id=incident_id, reason=reason, note=plain_text(note))


def _merge(incident_id: int | None, rest: str) -> Merge | Usage:
    """`merge INC-7` (the war room's incident is the duplicate), `merge INC-12 INC-7`,
    `INC-12 merge INC-7`; `into` may stand before the last."""
    words = rest.split()
    if len(words) >= 2 and words[-2].lower() == "into":
        del words[-2]
    refs = [_incident_ref(word) for word in words]
    wrong = next((word for word, ref in zip(words, refs, strict=True) if ref is None), None)
    if wrong is not None:
        return Usage(f"merge takes incident ids like INC-7, not {_quote(wrong)}", "merge")
    ids = [ref for ref in refs if ref is not None]
    if incident_id is not None:
        ids.insert(0, incident_id)
    if not ids or len(ids) > 2 or (len(ids) == 1 and incident_id is not None):
        return Usage(
            "merge needs the incident this one duplicates: in the duplicate's war room "
            f"{_code('merge INC-7')}, elsewhere {_code('merge INC-12 INC-7')} (INC-12 is the "
            "duplicate)",
            "merge",
        )
    if len(ids) == 1:
        return Merge(into=ids[0])
    return Merge(incident_id=ids[0], into=ids[1])


def _approve(incident_id: int | None, rest: str) -> Approve | Usage:
    word, extra = _split(rest)
    if word is None:
        return Usage(
            f"approve needs the step's id: {_code('next')} shows the steps waiting for approval",
            "approve",
        )
    if extra.strip():
        return Usage(f"approve takes one step id (got {_quote(rest)})", "approve")
    # Copied from a message that showed it as code, the id may keep its backticks.
    step_id = plain_text(word).strip("`")
    if not step_id:
        return Usage("approve needs the step's id", "approve")
    return Approve(incident_id=incident_id, step_id=step_id)


def _follow_up(incident_id: int | None, rest: str) -> AddFollowUp | CompleteFollowUp | Usage:
    word, after = _split(rest)
    if word is not None and word.lower() == "done":
        return _follow_up_done(incident_id, after)
    parts = _FOLLOW_UP_KEY.split(rest)
    title = plain_text(parts[0])
    values: dict[str, str] = {}
    for written, value in zip(parts[1::2], parts[2::2], strict=True):
        key = written.lower()
        if key in values:
            return Usage(f"followup takes {key}: once", "followup")
        values[key] = value.strip()
    if not title:
        return Usage("followup needs what is to be done first, then owner: and due:", "followup")
    if not values.get("owner"):
        return Usage(
            "followup needs its owner: owner:@person (or owner:me, a name or an e-mail)",
            "followup",
        )
    due_text = values.get("due", "")
    due_word, extra = _split(due_text)
    if due_word is None:
        return Usage("followup needs when it is due: due:2026-12-10 or due:+7d", "followup")
    if extra.strip():
        return Usage(
            f"due: takes one date (got {_quote(due_text)}); put the title before owner: and due:",
            "followup",
        )
    due = _due(due_word)
    if isinstance(due, Usage):
        return due
    return AddFollowUp(incident_id=incident_id, title=title, owner=_owner(values["owner"]), due=due)


def _follow_up_done(incident_id: int | None, rest: str) -> CompleteFollowUp | Usage:
    words = rest.split()
    if incident_id is None and len(words) == 2 and _incident_ref(words[0]) is not None:
        incident_id = _incident_ref(words.pop(0))  # `followup done INC-12 FU-3`
    match = _FOLLOW_UP.fullmatch(words[0]) if len(words) == 1 else None
    if match is None or int(match.group(1)) < 1:
        shown = f" (got {_quote(rest)})" if rest.strip() else ""
        return Usage(
            f"followup done needs one action item, like FU-3{shown}; {_code('followups')} "
            "lists them",
            "followup done",
        )
    return CompleteFollowUp(incident_id=incident_id, follow_up=int(match.group(1)))


def _owner(text: str) -> str | None:
    """A Slack user as `@U123` (its reminders then reach them directly), an e-mail address,
    or a name; None for `me`."""
    text = text.strip()
    if text.lower() == "me":
        return None
    mention = _MENTION.fullmatch(text)
    if mention is not None:
        return f"@{mention.group(1)}"
    mailto = _MAILTO.fullmatch(text)
    if mailto is not None:
        return _unescape(mailto.group(1))
    return plain_text(text)


def _due(word: str) -> datetime | timedelta | Usage:
    """`+7d`, `+36h`, `+1d12h` (from now), `2026-12-10` (the end of that day, UTC), or a
    time with its zone (`2026-12-10T09:00Z`). Whether it is in the future and within a year
    is the domain's to say."""
    problem = (
        f"due: needs a date like 2026-12-10, a time with its zone like 2026-12-10T09:00Z, or "
        f"a time from now like +7d (got {_quote(word)})"
    )
    if word.startswith("+"):
        try:
            return parse_duration(word[1:])
        except ValueError:
            return Usage(problem, "followup")
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", word):
            return datetime.combine(datetime.fromisoformat(word).date(), END_OF_DAY)
        moment = datetime.fromisoformat(word)
    except ValueError:
        return Usage(problem, "followup")
    if moment.tzinfo is None:
        return Usage(
            f"due: {_quote(word)} has no time zone; add one (Z for UTC), or give a date alone",
            "followup",
        )
    return moment.astimezone(UTC)


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


# The parser of each command on one incident, by its name (after aliases).
_INCIDENT_PARSERS: dict[str, Callable[[int | None, str], Command | Usage]] = {
    "ack": partial(_without_arguments, Acknowledge),
    "next": partial(_without_arguments, ShowNext),
    "timeline": partial(_without_arguments, ShowTimeline),
    "followups": partial(_without_arguments, ListFollowUps),
    "status": _set_status,
    **{name: partial(_free_text, name) for name in _NEEDS},
    "category": _category,
    "cancel": _cancel,
    "approve": _approve,
    "followup": _follow_up,
    "severity": _change_severity,
    "ic": _assign,
    "rca": _rca,
}


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
    """What the person typed, shown back as they read it (a mention as `@bob`, not a ping),
    escaped for Slack."""
    text = plain_text(text)
    shown = text if len(text) <= limit else text[: limit - 1] + "…"
    return f"'{escape(shown)}'"


def _code(text: str) -> str:
    """A command in a problem's text, as code, escaped for Slack."""
    return f"`{escape(text)}`"


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
