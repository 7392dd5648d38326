"""The escalation ladder: who each level is, how it is reached, when it works and how fast
it must answer. Data (`playbooks/support/ladder.yaml`), read by
`incident.adapters.files.support_files`; this module only says what the data means.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from incident.domain.business_hours import BusinessCalendar
from incident.domain.case import Case
from incident.domain.case_routing import HEIGHT, Level, RoutingRules, Urgency
from incident.domain.lifecycle import Severity


class Method(StrEnum):
    """How a level takes a case."""

    QUEUE = "queue"  # its own queue (and chat channel)
    EMAIL = "email"  # an e-mail with the level's subject prefix ("[CIO Review] ...")
    DIRECT = "direct"  # direct contact (a call, a direct message), plus the e-mail


# A response time is keyed by the customer's plan, or by how critical the case is (tier 3).
CRITICAL = "critical"  # a P1 or P2 case
NORMAL = "normal"  # a P3 or P4 case
ANY = "any"


def clock_key(case: Case) -> tuple[str, ...]:
    """The keys a response time may be given under for this case, most specific first."""
    critical = CRITICAL if case.priority in (Severity.P1, Severity.P2) else NORMAL
    return (case.plan.value, critical, ANY)


@dataclass(frozen=True)
class Span:
    """A length of time: real time, or open time of the level's calendar (`business`)."""

    length: timedelta = timedelta(0)
    business_days: int = 0  # whole business days of the calendar, on top of `length`
    business: bool = False

    def end(self, start: datetime, calendar: BusinessCalendar) -> datetime:
        """When this span, started at `start`, runs out."""
        if not self.business:
            return start + self.length + self.business_days * timedelta(days=1)
        whole = self.length + self.business_days * calendar.day_length
        # "At once, in business hours": queued to the level's next opening.
        return calendar.add(start, whole) if whole else calendar.next_opening(start)

    def words(self) -> str:
        hours = self.length.total_seconds() / 3600
        parts = [f"{self.business_days} business day{'s' if self.business_days != 1 else ''}"]
        parts = parts if self.business_days else []
        if self.length or not parts:
            amount = f"{hours:g} h" if hours >= 1 else f"{int(hours * 60)} min"
            parts.append(amount + (" of business time" if self.business else ""))
        return " and ".join(parts)


@dataclass(frozen=True)
class Rung:
    """One level of the ladder."""

    level: Level
    title: str  # "Tier 2 (L2 senior support)"
    method: Method
    calendar: BusinessCalendar
    contacts: tuple[str, ...]  # destinations: chat:#l2-support, email:cio@example.com
    lead: tuple[str, ...]  # who is reminded when the level has not confirmed receipt
    emergency: tuple[str, ...] = ()  # added for a cannot-wait escalation (pager, direct)
    next: Level | None = None  # who is told when the level does not confirm in time
    # Where an escalation from here usually goes, when not `next` (the CIO's is the CEO,
    # while C-level hears when the CIO does not answer).
    up: Level | None = None
    subject_prefix: str = ""  # "[CIO Review]"
    # First response, by plan (starter/pro/enterprise) or criticality (critical/normal).
    response: Mapping[str, Span] = field(default_factory=dict)

    def response_time(self, case: Case) -> Span | None:
        for key in clock_key(case):
            if key in self.response:
                return self.response[key]
        return None


@dataclass(frozen=True)
class Ladder:
    """Every level, and the routing thresholds that send cases up it."""

    rungs: Mapping[Level, Rung]
    rules: RoutingRules = field(default_factory=RoutingRules)
    # Other people steps may tell, by name (the account manager, the engineering review).
    audiences: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __getitem__(self, level: Level) -> Rung:
        return self.rungs[level]

    def due(self, case: Case, span: Span, start: datetime) -> datetime:
        """When `span`, counted in the case's current level's calendar, runs out."""
        return span.end(start, self.rungs[case.level].calendar)

    def escalates_to(self, level: Level) -> Level | None:
        """The level above this one an escalation usually goes to (None: the top)."""
        rung = self.rungs[level]
        if rung.up is not None:
            return rung.up
        if rung.next is not None and HEIGHT[rung.next] > HEIGHT[level]:
            return rung.next
        return None

    def response_due(self, case: Case) -> datetime | None:
        """When the current level must have answered (None: it has no response time)."""
        span = self.rungs[case.level].response_time(case)
        if span is None or case.level_entered_at is None:
            return None
        return self.due(case, span, case.level_entered_at)

    def destinations(self, level: Level, urgency: Urgency) -> tuple[str, ...]:
        rung = self.rungs[level]
        extra = rung.emergency if urgency is Urgency.CANNOT_WAIT else ()
        return tuple(dict.fromkeys((*rung.contacts, *extra)))


class SlaState(StrEnum):
    """Where the current level's response clock stands (the dashboard's colours)."""

    MET = "met"  # answered (tier 1) or receipt confirmed (escalated levels)
    OK = "ok"
    WARNING = "warning"  # 75 % of it gone: amber
    BREACHED = "breached"  # red
    NONE = "none"  # no response time here, or the case is resolved


WARNING_SHARE = 0.75


@dataclass(frozen=True)
class Sla:
    state: SlaState
    due: datetime | None = None
    used: float = 0.0  # the share of the response time gone (1.0: all of it)


def sla(case: Case, ladder: Ladder, now: datetime) -> Sla:
    """The current level's response clock at `now`: counted in its calendar's open time."""
    due = ladder.response_due(case)
    if due is None or not case.is_open or case.level_entered_at is None:
        return Sla(SlaState.NONE, due)
    answered = (
        case.first_response_at is not None if case.current is None else case.receipt_confirmed
    )
    if answered:
        return Sla(SlaState.MET, due)
    rung = ladder[case.level]
    span = rung.response_time(case)
    assert span is not None  # it has a due time
    entered = case.level_entered_at

    def elapsed(until: datetime) -> timedelta:
        return rung.calendar.open_time_between(entered, until) if span.business else until - entered

    total, gone = elapsed(due), elapsed(now)
    used = gone / total if total else 1.0
    if now >= due:
        return Sla(SlaState.BREACHED, due, used)
    return Sla(SlaState.WARNING if used >= WARNING_SHARE else SlaState.OK, due, used)
