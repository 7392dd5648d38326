"""What the dashboard's support-case pages show: the queues by level with their response
clocks, one case with what its level may do with it, and the choices of its forms.

Who may do what is asked of the support roles' own rule (`SupportRoles.check`, the rule the
use cases apply), so a form is shown exactly when sending it would be allowed by role; the
use case still decides on the case as it is when the form arrives.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from incident.domain.access import Principal
from incident.domain.case import LABEL_LENGTH, Approval, Case, CaseStatus, Deescalation, Plan
from incident.domain.case_access import APPROVER, CaseRight, SupportRoles
from incident.domain.case_context import FIELDS, ChecklistItem, FieldProblem
from incident.domain.case_ladder import Ladder, Sla, SlaState
from incident.domain.case_routing import HEIGHT, SPECIALIST_TEAMS, Flag, Level, Mode, Route
from incident.domain.lifecycle import Severity
from incident.services.cases import CaseView
from incident.web.html import duration

# How each clock state reads, and its colour class (dashboard.css: .sla-<state>).
SLA_LABELS = {
    SlaState.BREACHED: "Breached",
    SlaState.WARNING: "Warning",
    SlaState.OK: "OK",
    SlaState.MET: "Met",
    SlaState.NONE: "No clock",
}
# The most urgent first: breached, then running out, then running; answered ones last.
_URGENCY_RANK = {
    SlaState.BREACHED: 0,
    SlaState.WARNING: 1,
    SlaState.OK: 2,
    SlaState.NONE: 3,
    SlaState.MET: 4,
}
# The context field the escalation form's reason fills.
REASON_FIELD = "reason"
# A case's status in words (a pending case waits for its customer's confirmation).
STATUS_WORDS = {
    CaseStatus.OPEN: "Open",
    CaseStatus.PENDING: "Waiting for the customer's confirmation",
    CaseStatus.RESOLVED: "Resolved",
}


def words(value: str) -> str:
    """`legal_threat` -> `legal threat`."""
    return value.replace("_", " ")


@dataclass(frozen=True)
class Clock:
    """A case's response clock as the pages show it: its state in words and colour, and
    the time left (or since it ran out) as text the page's script keeps current."""

    state: SlaState
    due: datetime | None
    used_percent: int
    text: str  # "in 3h 05m", "2h 05m" (ago, when breached), "" (met, none)

    @classmethod
    def of(cls, sla: Sla, now: datetime) -> Clock:
        due = sla.due
        if sla.state is SlaState.BREACHED and due is not None:
            text = duration(now - due)
        elif sla.state in (SlaState.OK, SlaState.WARNING) and due is not None:
            left = due - now
            text = f"in {duration(left)}" if left > timedelta(0) else "due now"
        else:
            text = ""
        return cls(sla.state, due, round(sla.used * 100), text)

    @property
    def label(self) -> str:
        return SLA_LABELS[self.state]

    @property
    def css(self) -> str:
        return f"sla-{self.state.value}"

    @property
    def running(self) -> bool:
        return self.state in (SlaState.OK, SlaState.WARNING) and self.due is not None

    @property
    def breached(self) -> bool:
        return self.state is SlaState.BREACHED and self.due is not None


@dataclass(frozen=True)
class Row:
    """One case in its level's queue."""

    case: Case
    clock: Clock

    @property
    def urgency(self) -> tuple[int, bool, float, int, int]:
        due = self.clock.due
        return (
            _URGENCY_RANK[self.clock.state],
            due is None,
            due.timestamp() if due is not None else 0.0,
            self.case.priority.rank,
            self.case.id or 0,
        )


@dataclass(frozen=True)
class Queue:
    level: Level
    title: str
    rows: list[Row]

    @property
    def breached(self) -> int:
        return sum(1 for row in self.rows if row.clock.state is SlaState.BREACHED)

    @property
    def warning(self) -> int:
        return sum(1 for row in self.rows if row.clock.state is SlaState.WARNING)

    @property
    def pending(self) -> int:
        """Cases waiting for their customer's confirmation (listed, marked, not counted
        as open)."""
        return sum(1 for row in self.rows if row.case.status is CaseStatus.PENDING)

    @property
    def open(self) -> int:
        return len(self.rows) - self.pending


def queues(found: Iterable[tuple[Case, Sla]], ladder: Ladder, now: datetime) -> list[Queue]:
    """Open cases by level (the ladder's order; only levels with cases), each queue the
    most urgent first: breached (the longest overdue first), then running out, then by
    when they are due."""
    by_level: dict[Level, list[Row]] = {}
    for case, sla in found:
        by_level.setdefault(case.level, []).append(Row(case, Clock.of(sla, now)))
    return [
        Queue(level, ladder[level].title, sorted(by_level[level], key=lambda row: row.urgency))
        for level in Level
        if level in by_level
    ]


def queue_fingerprint(found: Sequence[tuple[Case, Sla]]) -> tuple[object, ...]:
    """What the queue shows apart from the running time: a new state changes it."""
    return tuple((c.id, c.changed_at, c.level, c.status, s.state, s.due) for c, s in found)


def case_fingerprint(view: CaseView) -> tuple[object, ...]:
    """What the case page shows apart from the running time (the clock's share used)."""
    return (
        repr(view.case),
        view.sla.state,
        view.sla.due,
        view.routes,
        view.upcoming,
        view.missing,
        len(view.timeline),
    )


def may(roles: SupportRoles, principal: Principal, right: CaseRight) -> bool:
    return roles.may(principal, right)


@dataclass(frozen=True)
class CasePermissions:
    """Which of the case page's forms to show. A case waiting for its customer's
    confirmation may be worked (a note or the customer's answer opens it again), corrected
    and resolved; escalations, receipts, decisions and links wait until it is open."""

    work: bool
    confirm: bool
    escalate: bool
    override: bool
    deescalate: bool
    decide: tuple[Level, ...]  # the decisions missing that this person gives
    link: bool = False
    unlink: bool = False

    @classmethod
    def of(cls, roles: SupportRoles, principal: Principal, case: Case) -> CasePermissions:
        is_open = case.is_open
        may_work = may(roles, principal, CaseRight.WORK)
        escalate = is_open and may(roles, principal, CaseRight.ESCALATE)
        return cls(
            work=may_work and case.status is not CaseStatus.RESOLVED,
            confirm=is_open and may_work and not case.receipt_confirmed,
            escalate=escalate,
            override=escalate and may(roles, principal, CaseRight.OVERRIDE_GATE),
            deescalate=escalate and bool(deescalation_levels(case)),
            decide=tuple(
                level
                for level in case.approvals_missing
                if is_open and may(roles, principal, APPROVER[level])
            ),
            link=is_open and may_work,
            # Unlinking stops what was not sent yet, whatever the case's status.
            unlink=may_work and case.incident_id is not None,
        )

    @property
    def any_change(self) -> bool:
        return self.work or self.escalate or bool(self.decide) or self.link or self.unlink


def escalation_levels(case: Case) -> list[Level]:
    """Where a person may send the case up: every higher level and the specialist teams
    (the CEO listed too: from below the CIO it becomes a CIO escalation, said so)."""
    here = HEIGHT[case.level]
    return [
        level
        for level in Level
        if level is not case.level and (HEIGHT[level] > here or level in SPECIALIST_TEAMS)
    ]


def deescalation_levels(case: Case) -> list[Level]:
    """The levels the case came through (the domain's rule: it goes back only there)."""
    came = dict.fromkeys(e.from_level for e in case.escalations)
    return [level for level in came if level is not case.level]


@dataclass(frozen=True)
class Decision:
    level: Level
    approval: Approval | None  # None: still waited for


def decisions(case: Case) -> list[Decision]:
    return [Decision(level, case.approval_by(level)) for level in case.required_approvals]


def missing_context(view: CaseView) -> list[FieldProblem]:
    """What the next level still needs, but the reason: the escalation form gives that (the
    view names it while the case's context has none, so it would never read complete)."""
    return [p for p in view.missing if p.field != REASON_FIELD]


def routes_by_mode(routes: Sequence[Route]) -> tuple[list[Route], list[Route]]:
    """(automatic, suggested): the rule sends the case, or a person decides."""
    automatic = [r for r in routes if r.mode is Mode.AUTOMATIC]
    return automatic, [r for r in routes if r.mode is Mode.SUGGESTED]


def context_rows(context: Mapping[str, object]) -> list[tuple[str, str]]:
    """The gathered context in the table's order, lists and objects as compact JSON."""
    ordered = [name for name in FIELDS if name in context]
    ordered += sorted(name for name in context if name not in FIELDS)
    return [(name, _shown(context[name])) for name in ordered]


def _shown(value: object) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def context_json(context: Mapping[str, object]) -> str:
    """The update form's context field as it opens: the case's context, to edit."""
    if not context:
        return ""
    return json.dumps(dict(context), ensure_ascii=False, indent=2, sort_keys=True)


def level_titles(ladder: Ladder) -> dict[Level, str]:
    return {level: ladder[level].title for level in Level if level in ladder.rungs}


def linked_case_words(ladder: Ladder) -> dict[str, str]:
    """The incident page's words for its linked cases' statuses and levels (as the cases
    list them: `pending`, `tier_1`)."""
    titles = {level.value: title for level, title in level_titles(ladder).items()}
    return {**{status.value: words for status, words in STATUS_WORDS.items()}, **titles}


# Choices of the forms, in the words people read.
FLAG_CHOICES = [(flag, words(flag.value).capitalize()) for flag in Flag]
CHECKLIST_CHOICES = [
    (ChecklistItem.TROUBLESHOOTING_DONE, "Troubleshooting done"),
    (ChecklistItem.DOCUMENTED, "Documented"),
    (ChecklistItem.IMPACT_ASSESSED, "Impact assessed"),
    (ChecklistItem.SLA_DEADLINE_NOTED, "SLA deadline noted"),
    (ChecklistItem.WORKAROUNDS_TRIED, "Workarounds tried"),
    (ChecklistItem.KNOWLEDGE_BASE_CHECKED, "Knowledge base checked"),
]
DEESCALATION_CHOICES = [(why, why.words.capitalize()) for why in Deescalation]
PLANS = list(Plan)
PRIORITIES = list(Severity)


def case_context(ladder: Ladder) -> dict[str, object]:
    """What every case template may use."""
    return {
        "sla_labels": SLA_LABELS,
        "level_titles": level_titles(ladder),
        "flag_choices": FLAG_CHOICES,
        "checklist_choices": CHECKLIST_CHOICES,
        "deescalation_choices": DEESCALATION_CHOICES,
        "plans": PLANS,
        "priorities": PRIORITIES,
        "words": words,
        "context_field_names": list(FIELDS),
        "status_words": STATUS_WORDS,
        "label_length": LABEL_LENGTH,
    }
