"""One process's engine: a scheduler and its real-time loop for each lane, the kinds of
subject they run steps for, and how a changed plan wakes them (here and on other replicas)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import timedelta

from incident.clock import Clock
from incident.scheduler.claims import Leases
from incident.scheduler.lanes import LANES, MAIN, PAGES, GiveWay, Lane
from incident.scheduler.loop import Loop, PlanSignal
from incident.scheduler.runner import Scheduler, Tuning
from incident.services.engine import StepReport, SubjectKinds
from incident.services.ports import Store


class Engine:
    def __init__(
        self,
        *,
        kinds: SubjectKinds,
        store: Store,
        clock: Clock,
        tuning: Tuning,
        signal: PlanSignal,
        lanes: Sequence[Lane] = LANES,
        leases: Leases | None = None,
        poll_interval: timedelta = timedelta(seconds=30),
        redact: Callable[[str], str] = str,
        on_step: Callable[[StepReport], None] | None = None,
    ) -> None:
        self.kinds = kinds
        self.signal = signal
        self.give_way = GiveWay(clock)
        self.schedulers = {
            lane.name: Scheduler(
                lane=lane,
                kinds=kinds,
                store=store,
                clock=clock,
                tuning=tuning,
                give_way=self.give_way,
                redact=redact,
                on_step=on_step,
            )
            for lane in lanes
        }
        # One loop listens to the other replicas (the main lane's); a signal wakes them all.
        self.loops = {
            lane.name: Loop(
                self.schedulers[lane.name],
                poll_interval=poll_interval,
                leases=leases,
                signal=signal if lane.name == MAIN.name else None,
            )
            for lane in lanes
        }
        signal.on_signal = self.wake

    @property
    def main(self) -> Scheduler:
        """The scheduler that runs every step (pages too, unless the pages lane got there)."""
        return self.schedulers[MAIN.name]

    @property
    def pages(self) -> Scheduler:
        return self.schedulers[PAGES.name]

    @property
    def owner(self) -> str:
        return self.main.owner

    @property
    def running(self) -> bool:
        return all(loop.running for loop in self.loops.values())

    def wake(self) -> None:
        """This process's loops look again for the nearest due step."""
        for loop in self.loops.values():
            loop.wake()

    def plan_changed(self) -> None:
        """After a commit that changed a plan: wake the loops here and on other replicas."""
        self.wake()
        self.signal.announce()

    def storm(self) -> bool:
        """Whether pages are going out now (see `incident.scheduler.lanes`)."""
        return self.give_way.storm()

    async def run(self, stop: asyncio.Event) -> None:
        """Every lane's loop, until `stop`."""
        await asyncio.gather(
            *(
                asyncio.create_task(loop.run(stop), name=f"lane-{name}")
                for name, loop in self.loops.items()
            )
        )
