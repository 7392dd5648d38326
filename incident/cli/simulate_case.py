"""`incident simulate --case`: a support case's clocks, in virtual time.

Opens one case with the real use cases on a throw-away database, plays a script of people
(a first response, an escalation with its context complete, the receiving level confirming,
the resolution) and lets the engine fire the case's steps as they fall due, jumping the
virtual clock from one due time to the next (`incident.cli.simulate`'s `play`, the loop the
incident simulation uses). Business hours are real: each line shows its offset from the
opening and the wall clock in the calendar's zone, so a case opened on Friday evening shows
its clocks waiting for Monday.

Nothing leaves the process: every message goes to a recorder (`incident.testing`), which
also says who each step told.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from incident import bootstrap
from incident.adapters.files.case_samples import FULL_CONTEXT
from incident.adapters.files.templates import JinjaRenderer
from incident.cli.simulate import (
    SimulatedEvent,
    StepRecorder,
    format_offset,
    format_table,
    local_time,
    play,
    throwaway_service,
)
from incident.clock import FakeClock
from incident.config import Settings
from incident.domain.case import Case, CaseChange, Plan
from incident.domain.case_clocks import SupportPlaybook
from incident.domain.case_context import ChecklistItem, clean_context
from incident.domain.case_ladder import SlaState
from incident.domain.case_routing import Flag, Level
from incident.domain.errors import DomainError
from incident.domain.lifecycle import Severity
from incident.services import cases as uc
from incident.services.engine import StepReport
from incident.testing import RecordingEffects, Sent

BERLIN = ZoneInfo("Europe/Berlin")
# A Friday 10 minutes before the support desk closes: the default run shows business hours
# at work (tier 1's clock waits for Monday 09:00).
DEFAULT_OPENED = datetime(2026, 3, 6, 17, 50, tzinfo=BERLIN)
DEFAULT_UNTIL = timedelta(days=5)
AGENT = "agent"  # who opens, works and escalates the simulated case
RECEIVER = "receiving-level"  # who confirms receipt of an escalation


@dataclass(frozen=True)
class CaseScript:
    """The case and what people do with it; every offset counts from the opening."""

    plan: Plan
    priority: Severity = Severity.P3
    opened: datetime = DEFAULT_OPENED
    until: timedelta = DEFAULT_UNTIL
    flags: frozenset[Flag] = frozenset()
    crypto: bool = False
    respond_after: timedelta | None = None  # the first response (to the customer)
    escalate_after: timedelta | None = None
    escalate_to: Level | None = None
    confirm_after: timedelta | None = None  # the receiving level confirms receipt
    resolve_after: timedelta | None = None

    def actions(self) -> list[tuple[timedelta, str]]:
        """The people's actions in time order (those after `until` left out)."""
        scripted = [
            (self.respond_after, "respond"),
            (self.escalate_after if self.escalate_to is not None else None, "escalate"),
            (self.confirm_after, "confirm"),
            (self.resolve_after, "resolve"),
        ]
        kept = [(at, what) for at, what in scripted if at is not None and at <= self.until]
        return sorted(kept, key=lambda a: a[0])


@dataclass(frozen=True)
class Moment:
    """An instant of the simulation, as its lines show it."""

    at: datetime  # in the shown zone
    start: datetime

    def as_json(self) -> dict[str, object]:
        return {
            "time": self.at.isoformat(),
            "local": local_time(self.at),
            "at_seconds": int((self.at - self.start).total_seconds()),
        }

    def words(self) -> str:
        return f"{local_time(self.at)} ({format_offset(self.at - self.start)})"


@dataclass(frozen=True)
class CaseSimulation:
    """What a simulated case went through."""

    script: CaseScript
    opened: Moment
    first_level: Level
    response_due: Moment | None  # when the level it opened at must answer
    events: list[SimulatedEvent]
    ended: Moment
    level: Level  # where it ended
    status: str
    sla: SlaState
    sla_due: Moment | None

    def as_json(self) -> dict[str, object]:
        s = self.script
        return {
            "case": {
                "plan": s.plan.value,
                "priority": s.priority.value,
                "flags": sorted(f.value for f in s.flags),
                "crypto": s.crypto,
                "opened": self.opened.as_json(),
                "level": self.first_level.value,
                "response_due": self.response_due.as_json() if self.response_due else None,
            },
            "events": [e.as_json() for e in self.events],
            "end": {
                **self.ended.as_json(),
                "level": self.level.value,
                "status": self.status,
                "sla": self.sla.value,
                "sla_due": self.sla_due.as_json() if self.sla_due else None,
            },
        }


def format_case(simulation: CaseSimulation) -> str:
    s = simulation.script
    flags = f", flags {', '.join(sorted(s.flags))}" if s.flags else ""
    due, end, sla_due = simulation.response_due, simulation.ended, simulation.sla_due
    first = simulation.first_level.value
    lines = [
        f"case: {s.plan.value} {s.priority.value}{flags}{', crypto' if s.crypto else ''}, "
        f"opened {local_time(simulation.opened.at)} at {first}",
        f"response due ({first}): "
        + (due.words() if due else "none (no response time at this level)"),
        "",
        format_table(simulation.events, local=True),
        "",
        f"at the end, {end.words()}: {simulation.status} at {simulation.level.value}, "
        f"SLA {simulation.sla.value}" + (f" (due {local_time(sla_due.at)})" if sla_due else ""),
    ]
    return "\n".join(lines)


async def simulate_case(script: CaseScript, settings: Settings) -> CaseSimulation:
    playbook = bootstrap.check_support(settings)
    zone = display_zone(playbook, script.opened)
    start = script.opened.astimezone(UTC)  # the service keeps its instants in UTC
    clock = FakeClock(start)
    recording = RecordingEffects(clock)
    recorder = StepRecorder(clock, start, zone=zone, told=_told_by(recording.sends))
    async with throwaway_service(
        settings,
        clock,
        recorder,
        support_playbook=playbook,
        effects=recording.effects(JinjaRenderer(settings.comms_dir)),
    ) as container:
        people = _People(container.support, recorder)
        opened = await people.open(script)
        await play(container, clock, start, script.actions(), people.act, until=script.until)
        end = await uc.read_case(container.support, people.case_id)
    shown = _Shown(start, zone)
    return CaseSimulation(
        script=script,
        opened=shown(start),
        first_level=opened.case.level,
        response_due=shown.maybe(opened.sla.due),
        events=recorder.events,
        ended=shown(clock.now()),
        level=end.case.level,
        status=end.case.status.value,
        sla=end.sla.state,
        sla_due=shown.maybe(end.sla.due),
    )


def display_zone(playbook: SupportPlaybook, opened: datetime) -> tzinfo:
    """The zone of the calendar a case opens under (tier 1's); for an always-open one,
    the zone the opening was given in."""
    calendar = playbook.ladder[Level.TIER_1].calendar
    if calendar.is_always_open and opened.tzinfo is not None:
        return opened.tzinfo
    return calendar.zone


@dataclass(frozen=True)
class _Shown:
    start: datetime
    zone: tzinfo

    def __call__(self, at: datetime) -> Moment:
        return Moment(at.astimezone(self.zone), self.start)

    def maybe(self, at: datetime | None) -> Moment | None:
        return self(at) if at is not None else None


def _told_by(sends: Sequence[Sent]) -> Callable[[StepReport], str]:
    """Who a fired step reached: the audiences of the messages sent with its occurrence's
    effect key (an escalation sends none: the level it moved the case to)."""

    def told(report: StepReport) -> str:
        o = report.occurrence
        key = f"{o.subject.key}/{o.step_id}/{o.occurrence}"
        audiences = [
            s.target for s in sends if s.key == key or s.key.startswith((f"{key}@", f"{key}#"))
        ]
        return ", ".join(dict.fromkeys(audiences)) or o.target or ""

    return told


class _People:
    """The people of the script: they open the case and act on it through the use cases.
    A refused action (resolving while a decision is awaited) is a line, not the end."""

    def __init__(self, support: uc.Support, recorder: StepRecorder) -> None:
        self.sp = support
        self.recorder = recorder
        self.case_id = 0
        self.escalate_to: Level | None = None

    async def open(self, script: CaseScript) -> uc.CaseView:
        draft = Case(
            reference="SIM-1",
            customer_id="C-SIM",
            summary="Simulated support case",
            plan=script.plan,
            priority=script.priority,
            opened_at=self.sp.rt.clock.now(),  # open_case's own: now
            opened_by=AGENT,
            flags=script.flags,
            crypto=script.crypto,
        )
        view = await uc.open_case(self.sp, draft, by=AGENT)
        assert view.case.id is not None
        self.case_id = view.case.id
        self.escalate_to = script.escalate_to
        return view

    async def act(self, what: str) -> None:
        try:
            target, detail = await self._do(what)
        except DomainError as error:
            self.recorder.human(what, result="refused", detail=str(error))
            return
        self.recorder.human(what, target=target, detail=detail)

    async def _do(self, what: str) -> tuple[str, str]:
        """Do `what`; who it was for, and what it did."""
        sp, case_id = self.sp, self.case_id
        match what:
            case "respond":
                note = "First response: we are looking into it (simulated)."
                await uc.record_progress(sp, case_id, note, to_customer=True, by=AGENT)
                return "customer", "first response / progress note to the customer"
            case "escalate":
                return await self._escalate()
            case "confirm":
                view = await uc.confirm_receipt(sp, case_id, by=RECEIVER)
                return view.case.level.value, f"receipt confirmed at {view.case.level.value}"
            case _:
                await uc.resolve_case(sp, case_id, "Resolved by the simulation.", by=AGENT)
                return "", "resolved"

    async def _escalate(self) -> tuple[str, str]:
        """The agent completes the context and the checklist (so the gate passes), then
        escalates."""
        assert self.escalate_to is not None
        complete = CaseChange(
            context=clean_context(FULL_CONTEXT), checklist=frozenset(ChecklistItem)
        )
        await uc.update_case(self.sp, self.case_id, complete, by=AGENT)
        request = uc.EscalationRequest(self.escalate_to, "Simulated escalation.")
        view = await uc.escalate_case(self.sp, self.case_id, request, by=AGENT)
        level = view.case.level.value
        return level, view.notice or f"escalated to {level} (context and checklist complete)"
