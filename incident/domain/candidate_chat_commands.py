"""`/incident candidate ...` typed in chat: incident candidates (many customers' reports of
one problem, proposed as an incident), as typed commands or a usage problem.

Pure: no I/O, no clock, like `chat_commands` (whose `parse` hands `candidate ...` here).
The parser reads words; whether a value is allowed (a severity, a title, a reason, a
status) is the API's request model's to say, which the Slack door builds from the command,
so a value is refused by the one rule whichever door it came through. The parser refuses
only what it cannot read: a missing candidate or reason, words where none are wanted.

The grammar, a candidate named as the patterns channel names it (CAND-7, #7 or 7):

    candidate list [proposed|declared|dismissed|all]   the waiting ones unless told
    candidate show <candidate>
    candidate declare <candidate> [P1-P4] [title]      a new incident (the suggested
                                                       severity and its own title unless
                                                       given)
    candidate declare <candidate> <INC-n>              link its cases to that open incident
    candidate dismiss <candidate> <reason>
    candidate help
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from incident.domain.chat_commands import Usage, escape, plain_text

# A candidate named as people write it: 7, #7 or CAND-7 (any case).
_CANDIDATE_REF = re.compile(r"(?:cand-|#)?(\d{1,15})", re.IGNORECASE)
# An incident after the candidate: INC-7 or #7 (a bare number would be a title's word).
_INCIDENT_REF = re.compile(r"(?:inc-|#)(\d{1,15})", re.IGNORECASE)
# What reads as a severity (P1 ... P4; the request model says which exist): P and a digit.
_SEVERITY = re.compile(r"p\d{1,3}", re.IGNORECASE)
_WORD = re.compile(r"\s*(<[^<>]*>|\S+)\s*(.*)", re.DOTALL)
ALL = "all"


# --- the commands --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class OnCandidate:
    """A `candidate ...` command; `name` labels its metric, its log line and its usage."""

    name: ClassVar[str] = "candidate"


@dataclass(frozen=True, kw_only=True)
class CandidateHelp(OnCandidate):
    name: ClassVar[str] = "candidate help"


@dataclass(frozen=True, kw_only=True)
class ListCandidates(OnCandidate):
    """`status`: one status as typed (lower case), `all`, or None: the waiting ones."""

    name: ClassVar[str] = "candidate list"
    status: str | None = None


@dataclass(frozen=True, kw_only=True)
class ShowCandidate(OnCandidate):
    name: ClassVar[str] = "candidate show"
    candidate_id: int


@dataclass(frozen=True, kw_only=True)
class DeclareCandidate(OnCandidate):
    """A new incident (`severity` as typed, upper case, and `title`, each None when not
    given), or the open incident `incident_id` for its cases."""

    name: ClassVar[str] = "candidate declare"
    candidate_id: int
    severity: str | None = None
    title: str | None = None
    incident_id: int | None = None


@dataclass(frozen=True, kw_only=True)
class DismissCandidate(OnCandidate):
    name: ClassVar[str] = "candidate dismiss"
    candidate_id: int
    reason: str


CandidateCommand = (
    CandidateHelp | ListCandidates | ShowCandidate | DeclareCandidate | DismissCandidate
)


# --- help and usage ------------------------------------------------------------------------

# (name, arguments, what it does), in the order the help shows them; plain text here.
CANDIDATE_COMMANDS: tuple[tuple[str, str, str], ...] = (
    (
        "list",
        "[proposed|declared|dismissed|all]",
        "the incident candidates, newest first: those waiting for a decision unless told",
    ),
    (
        "show",
        "<candidate>",
        "its evidence: the cases and customers, the signature, the severity suggested and why",
    ),
    (
        "declare",
        "<candidate> [P1-P4] [title]",
        "declare the incident (the suggested severity unless given) and link every case to "
        "it, so each customer hears its updates",
    ),
    ("declare", "<candidate> <INC-n>", "link every case to that open incident instead"),
    (
        "dismiss",
        "<candidate> <reason>",
        "not an incident: its signature stays quiet for a while",
    ),
    ("help", "", "this help"),
)
_ALIASES = {"view": "show", "decline": "dismiss", "?": "help"}


def candidate_usage_lines(name: str, slash: str = "/incident") -> list[str]:
    """The usage of one candidate command (declare has two forms)."""
    return [
        f"`{slash} candidate {name}{' ' + escape(arguments) if arguments else ''}`"
        for command, arguments, _ in CANDIDATE_COMMANDS
        if command == name
    ]


def candidate_help_text(slash: str = "/incident") -> str:
    lines = [
        f"*{slash} candidate* decides on incident candidates: many customers' reports of one "
        "problem, proposed as an incident (a candidate: CAND-7, #7 or 7):"
    ]
    for name, arguments, what in CANDIDATE_COMMANDS:
        usage = f"`{slash} candidate {name}{' ' + escape(arguments) if arguments else ''}`"
        lines.append(f"• {usage}: {escape(what)}")
    return "\n".join(lines)


@dataclass(frozen=True)
class CandidateUsage(Usage):
    """What was wrong with a `candidate ...` command (Slack text, what it quotes escaped),
    and the usage of the candidate command meant (`subcommand` None: not recognised, so
    all of them)."""

    subcommand: str | None = None

    def text(self, slash: str = "/incident") -> str:
        if self.subcommand is None:
            return f"{self.problem}.\n{candidate_help_text(slash)}"
        usage = " or ".join(candidate_usage_lines(self.subcommand, slash))
        return (
            f"{self.problem}.\nUsage: {usage}\n`{slash} candidate help` lists the candidate "
            "commands."
        )


def _usage(name: str, problem: str) -> CandidateUsage:
    return CandidateUsage(problem, f"candidate {name}", subcommand=name)


# --- parsing -------------------------------------------------------------------------------


def parse_candidate(text: str) -> CandidateCommand | CandidateUsage:
    """The `candidate` command in the text after `/incident candidate`; never raises."""
    word, rest = _split(text)
    if word is None:
        return CandidateHelp()
    name = _ALIASES.get(word.lower(), word.lower())
    parser = _PARSERS.get(name)
    if parser is None:
        return CandidateUsage(f"unknown candidate command {_quote(word)}", "candidate")
    return parser(rest)


def _help(rest: str) -> CandidateHelp:
    return CandidateHelp()


def _list(rest: str) -> ListCandidates | CandidateUsage:
    words = plain_text(rest).lower().split()
    if len(words) > 1:
        return _usage("list", f"candidate list takes one status at most (got {_quote(rest)})")
    return ListCandidates(status=words[0] if words else None)


def _candidate_then(name: str, rest: str) -> tuple[int, str] | CandidateUsage:
    """The candidate first, and the rest."""
    word, rest = _split(rest)
    match = _CANDIDATE_REF.fullmatch(plain_text(word)) if word is not None else None
    if match is None or int(match.group(1)) < 1:
        shown = f", not {_quote(word)}" if word is not None else ""
        return _usage(name, f"candidate {name} needs the candidate first: CAND-7 or 7{shown}")
    return int(match.group(1)), rest


def _show(rest: str) -> ShowCandidate | CandidateUsage:
    found = _candidate_then("show", rest)
    if isinstance(found, CandidateUsage):
        return found
    candidate_id, extra = found
    if extra.strip():
        return _usage("show", f"candidate show takes nothing after the candidate ({_quote(extra)})")
    return ShowCandidate(candidate_id=candidate_id)


def _declare(rest: str) -> DeclareCandidate | CandidateUsage:
    found = _candidate_then("declare", rest)
    if isinstance(found, CandidateUsage):
        return found
    candidate_id, text = found
    first, after = _split(text)
    if first is None:
        return DeclareCandidate(candidate_id=candidate_id)
    incident = _INCIDENT_REF.fullmatch(plain_text(first))
    if incident is not None:
        if after.strip():
            return _usage(
                "declare",
                "candidate declare takes an open incident alone (INC-7), or a severity and a "
                f"title for a new one; not both (got {_quote(after)} after it)",
            )
        return DeclareCandidate(candidate_id=candidate_id, incident_id=int(incident.group(1)))
    severity = None
    if _SEVERITY.fullmatch(plain_text(first)):
        severity, text = plain_text(first).upper(), after
    title = plain_text(text)
    return DeclareCandidate(candidate_id=candidate_id, severity=severity, title=title or None)


def _dismiss(rest: str) -> DismissCandidate | CandidateUsage:
    found = _candidate_then("dismiss", rest)
    if isinstance(found, CandidateUsage):
        return found
    candidate_id, text = found
    reason = plain_text(text)
    if not reason:
        return _usage(
            "dismiss", "candidate dismiss needs a reason after the candidate: why it is not one"
        )
    return DismissCandidate(candidate_id=candidate_id, reason=reason)


_PARSERS: dict[str, Callable[[str], CandidateCommand | CandidateUsage]] = {
    "help": _help,
    "list": _list,
    "show": _show,
    "declare": _declare,
    "dismiss": _dismiss,
}


# --- words ---------------------------------------------------------------------------------


def _split(text: str) -> tuple[str | None, str]:
    """The first word and the rest (the rest keeps its own spacing and new lines)."""
    match = _WORD.match(text)
    if match is None:
        return None, ""
    return match.group(1), match.group(2)


def _quote(text: str, limit: int = 40) -> str:
    """What the person typed, shown back as they read it, escaped for Slack."""
    text = plain_text(text)
    shown = text if len(text) <= limit else text[: limit - 1] + "…"
    return f"'{escape(shown)}'"
