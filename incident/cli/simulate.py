"""`incident simulate`: the real engine, a throw-away database and a virtual clock.

Declares one incident, plays a script of human actions (acknowledge, customer updates,
resolve, RCA done) and lets the scheduler fire every step as its due time arrives, jumping
the clock from one due time to the next (`incident.testing`'s virtual-time loop, the one the
tests use). A 60-hour playbook runs in well under a second.
"""

from __future__ import annotations

import itertools
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from incident import bootstrap
from incident.clock import FakeClock
from incident.config import Settings
from incident.domain.incident import Cancellation, Category, Severity
from incident.services import incidents as uc
from incident.services.engine import StepReport
from incident.testing import run_before, run_until

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

    def as_json(self) -> dict[str, object]:
        return {
            "at_seconds": int(self.at.total_seconds()),
            "at": _offset(self.at),
            "kind": self.kind,
            "step": self.step,
            "action": self.action,
            "target": self.target,
            "result": self.result,
            "detail": self.detail,
        }


def _offset(delta: timedelta) -> str:
    total = int(delta.total_seconds())
    hours, rest = divmod(total, 3600)
    return f"+{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"


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
    events: list[SimulatedEvent] = []

    def record(report: StepReport) -> None:
        if report.result in ("done", "failed", "held"):
            o = report.occurrence
            events.append(
                SimulatedEvent(
                    at=clock.now() - START,
                    kind="step",
                    step=o.step_id,
                    action=o.action,
                    target=o.target or "",
                    result=report.result,
                    detail=report.detail,
                )
            )

    with tempfile.TemporaryDirectory(prefix="incident-simulate-") as tmp:
        database = Path(tmp) / "simulate.db"
        container = await bootstrap.build(
            settings.with_database(f"sqlite:///{database}"),
            clock=clock,
            on_step=record,
        )
        try:
            incident, _ = await uc.declare_incident(
                container.runtime,
                title=script.title,
                severity=script.severity,
                by="simulation",
                category=script.category,
            )
            assert incident.id is not None
            # A person acting at a step's due time goes first: the loop stops short of
            # each scripted instant, the people at it act, then the steps run.
            for at, group in itertools.groupby(_human_script(script), key=lambda a: a[0]):
                await run_before(container, clock, START + at)
                for _, what in group:
                    offset = clock.now() - START
                    events.append(await _act(container.runtime, incident.id, what, offset))
            await run_until(container, clock, START + script.until)
        finally:
            await container.close()
    return events


async def _act(rt: uc.Runtime, incident_id: int, what: str, at: timedelta) -> SimulatedEvent:
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
    return SimulatedEvent(
        at=at,
        kind="human",
        step="-",
        action=what,
        target="",
        result="done",
        detail=f"{what} (scripted)",
    )


def format_table(events: list[SimulatedEvent]) -> str:
    lines = [f"{'offset':<11} {'step':<34} {'action':<26} {'target':<22} result"]
    for e in events:
        step = e.step if e.kind == "step" else f"({e.action})"
        action = e.action if e.kind == "step" else "human"
        lines.append(f"{_offset(e.at):<11} {step:<34} {action:<26} {e.target:<22} {e.result}")
    return "\n".join(lines)
