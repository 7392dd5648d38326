"""`incident simulate`: the real engine, a throw-away database and a virtual clock.

Declares one incident, plays a script of human actions (acknowledge, customer updates,
resolve, RCA done) and lets the scheduler fire every step as its due time arrives, jumping
the clock from one due time to the next (`incident.testing`'s virtual-time loop, the one the
tests use). A 60-hour playbook runs in well under a second.

What any simulation shares is here too (`incident.cli.simulate_case` simulates a support
case with it): the event a line shows, the throw-away service, the recorder of the steps
that fired, and `play`, the script of people acting between the engine's steps.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, TypeVar

from incident import bootstrap
from incident.adapters.files.templates import JinjaRenderer
from incident.clock import FakeClock
from incident.config import Settings
from incident.domain.incident import Cancellation, Category, Severity
from incident.services import incidents as uc
from incident.services.engine import StepReport
from incident.testing import RecordingEffects, run_before, run_until

START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Script:
    severity: Severity
    until: timedelta
    ack_after: timedelta | None = None
    update_every: timedelta | None = None
    resolve_after: timedelta | None = None
    rca_after: timedelta | None = None
    reopen_after: timedelta | None = None  # after the resolution: a resolved incident only
    cancel_after: timedelta | None = None  # called off as a false alarm
    category: Category = Category.GENERAL
    title: str = "Simulated incident"


@dataclass(frozen=True)
class SimulatedEvent:
    """One line of the simulation: a step that fired, or a scripted human action."""

    at: timedelta
    kind: str  # "step" or "human"
    step: str
    action: str
    target: str
    result: str
    detail: str
    # The instant as a wall clock in the zone the simulation shows (a case: its calendar's);
    # None: offsets only (an incident).
    wall: datetime | None = None

    def as_json(self) -> dict[str, object]:
        shown: dict[str, object] = {
            "at_seconds": int(self.at.total_seconds()),
            "at": format_offset(self.at),
        }
        if self.wall is not None:
            shown.update(time=self.wall.isoformat(), local=local_time(self.wall))
        return shown | {
            "kind": self.kind,
            "step": self.step,
            "action": self.action,
            "target": self.target,
            "result": self.result,
            "detail": self.detail,
        }


def format_offset(delta: timedelta) -> str:
    total = int(delta.total_seconds())
    hours, rest = divmod(total, 3600)
    return f"+{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"


def local_time(wall: datetime) -> str:
    """`Mon 2026-03-09 12:00 CET`: an instant as people in its zone read it."""
    return wall.strftime("%a %Y-%m-%d %H:%M %Z")


# --- what every simulation shares ------------------------------------------------------------

# The results of a step that did something worth a line (stopped and moved ones did not).
SHOWN_RESULTS = ("done", "failed", "held")


@dataclass
class StepRecorder:
    """The engine's `on_step`: a line for each step that fired, at the virtual clock's time.
    `zone`: also show it as a wall clock there; `told`: who a fired step reached (default:
    the step's own target)."""

    clock: FakeClock
    start: datetime
    zone: tzinfo | None = None
    told: Callable[[StepReport], str] | None = None
    events: list[SimulatedEvent] = field(default_factory=list)

    def __call__(self, report: StepReport) -> None:
        if report.result not in SHOWN_RESULTS:
            return
        o = report.occurrence
        target = self.told(report) if self.told is not None else o.target or ""
        self.events.append(
            SimulatedEvent(
                at=self.clock.now() - self.start,
                kind="step",
                step=o.step_id,
                action=o.action,
                target=target,
                result=report.result,
                detail=report.detail,
                wall=self.wall(),
            )
        )

    def wall(self) -> datetime | None:
        return self.clock.now().astimezone(self.zone) if self.zone is not None else None

    def human(
        self, action: str, *, result: str = "done", detail: str = "", target: str = ""
    ) -> None:
        """A line for a scripted person's action, now."""
        self.events.append(
            SimulatedEvent(
                at=self.clock.now() - self.start,
                kind="human",
                step="-",
                action=action,
                target=target,
                result=result,
                detail=detail or f"{action} (scripted)",
                wall=self.wall(),
            )
        )


@asynccontextmanager
async def throwaway_service(
    settings: Settings, clock: FakeClock, on_step: Callable[[StepReport], None], **build: Any
) -> AsyncIterator[bootstrap.Container]:
    """The real service on a database that is deleted afterwards (`build`: more of
    `bootstrap.build`'s arguments). Nothing leaves the process: its effects go to a
    recorder unless `build` names others, whatever vendors the settings configure (a
    simulation must never page anybody)."""
    build.setdefault("effects", RecordingEffects(clock).effects(JinjaRenderer(settings.comms_dir)))
    with tempfile.TemporaryDirectory(prefix="incident-simulate-") as tmp:
        database = Path(tmp) / "simulate.db"
        container = await bootstrap.build(
            settings.with_database(f"sqlite:///{database}"), clock=clock, on_step=on_step, **build
        )
        try:
            yield container
        finally:
            await container.close()


A = TypeVar("A")


async def play(
    container: bootstrap.Container,
    clock: FakeClock,
    start: datetime,
    script: Sequence[tuple[timedelta, A]],
    act: Callable[[A], Awaitable[None]],
    *,
    until: timedelta,
) -> None:
    """Run the engine in virtual time from `start` to `start + until`, `act`ing out each
    scripted action (sorted by offset) at its offset. A person acting at a step's due time
    goes first: the loop stops short of each scripted instant, the people at it act, then
    the steps run."""
    for at, group in itertools.groupby(script, key=lambda a: a[0]):
        await run_before(container, clock, start + at)
        for _, what in group:
            await act(what)
    await run_until(container, clock, start + until)


def _human_script(script: Script) -> list[tuple[timedelta, str]]:
    actions: list[tuple[timedelta, str]] = []
    if script.ack_after is not None:
        actions.append((script.ack_after, "acknowledge"))
    end = script.resolve_after if script.resolve_after is not None else script.until
    if script.update_every:
        at = script.update_every
        while at < end and at <= script.until:
            actions.append((at, "update"))
            at += script.update_every
    if script.resolve_after is not None:
        actions.append((script.resolve_after, "resolve"))
    if script.rca_after is not None:
        actions.append((script.rca_after, "rca"))
    if script.reopen_after is not None:
        actions.append((script.reopen_after, "reopen"))
    if script.cancel_after is not None:
        actions.append((script.cancel_after, "cancel"))
    return sorted((a for a in actions if a[0] <= script.until), key=lambda a: a[0])


async def simulate(script: Script, settings: Settings) -> list[SimulatedEvent]:
    clock = FakeClock(START)
    recorder = StepRecorder(clock, START)
    async with throwaway_service(settings, clock, recorder) as container:
        incident, _ = await uc.declare_incident(
            container.runtime,
            title=script.title,
            severity=script.severity,
            by="simulation",
            category=script.category,
        )
        assert incident.id is not None
        incident_id = incident.id

        async def act(what: str) -> None:
            await _act(container.runtime, incident_id, what)
            recorder.human(what)

        await play(container, clock, START, _human_script(script), act, until=script.until)
    return recorder.events


async def _act(rt: uc.Runtime, incident_id: int, what: str) -> None:
    match what:
        case "acknowledge":
            await uc.acknowledge_incident(rt, incident_id, by="on-call")
        case "update":
            await uc.post_customer_update(
                rt, incident_id, by="commander", message="We are still working on it."
            )
        case "resolve":
            await uc.resolve_incident(
                rt, incident_id, by="commander", summary="Fixed by the simulation."
            )
        case "rca":
            await uc.complete_rca(
                rt, incident_id, by="commander", link="https://wiki.example.com/rca/simulated"
            )
        case "reopen":
            await uc.reopen_incident(rt, incident_id, by="commander", reason="It came back.")
        case "cancel":
            await uc.cancel_incident(
                rt, incident_id, by="commander", reason=Cancellation.FALSE_ALARM, note="simulated"
            )


def format_table(events: Sequence[SimulatedEvent], *, local: bool = False) -> str:
    """A line per event; `local`: with its wall-clock time (each event's `wall`)."""
    when = f"{'local time':<25} " if local else ""
    lines = [f"{'offset':<11} {when}{'step':<34} {'action':<26} {'target':<22} result"]
    for e in events:
        step = e.step if e.kind == "step" else f"({e.action})"
        action = e.action if e.kind == "step" else "human"
        wall = f"{local_time(e.wall) if e.wall else '':<25} " if local else ""
        # What went wrong is worth its words: a failed step, an action that was refused.
        result = e.result if e.result == "done" else f"{e.result}: {e.detail}"
        lines.append(
            f"{format_offset(e.at):<11} {wall}{step:<34} {action:<26} {e.target:<22} {result}"
        )
    return "\n".join(lines)
