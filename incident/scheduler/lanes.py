"""Lanes: how the engine shares a process between kinds of step, and why pages go first.

A lane is one scheduler's share of the due steps, described by data (`Lane`). The service
runs two:

- **pages**: pages only. Its database work goes ahead of other waiting work (`urgent`), so
  a storm of other steps never holds a page back; it is pipelined, so a page coming due is
  claimed while the ones before it are still being sent. Pages may run beside another step
  of the same incident: they are idempotent per incident and tier.
- **main**: every step (pages too: claims keep each step to one lane). While the pages lane
  is busy (an alert storm) it gives way: small batches, each followed by a pause three times
  as long as it took, so pages get most of the process and the other steps a bounded share,
  late but never lost.

This module is the one owner of that policy. Others ask it (`GiveWay.storm`: the public
status page waits longer between rebuilds while pages go out), they do not re-derive it.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from incident.clock import Clock
from incident.domain.playbook import Action


@dataclass(frozen=True)
class Lane:
    """One scheduler's share of the due steps."""

    name: str
    actions: tuple[str, ...] = ()  # only steps of these actions; every step when empty
    urgent: bool = False  # its database work goes ahead of other waiting work
    # Claims again as soon as a step comes due, without waiting for the steps it claimed
    # before to finish (only for steps that may run beside another of the same subject).
    pipelined: bool = False
    gives_way_to: str | None = None  # while that lane is busy, claim little and pause


PAGES = Lane("pages", actions=(Action.PAGE.value,), urgent=True, pipelined=True)
MAIN = Lane("main", gives_way_to=PAGES.name)
LANES = (PAGES, MAIN)

# A lane counts as busy for a second after its last claim; meanwhile a lane giving way
# claims at most 8 occurrences a round and pauses 3 times as long as the round took (so it
# has about a quarter of the time), a quarter of a second at most (a round that waited on a
# slow vendor is not held up further for it).
GIVE_WAY_WINDOW = 1.0
GIVING_WAY_BATCH = 8
GIVE_WAY_PAUSE = 3.0
GIVE_WAY_MAX_PAUSE = 0.25


class GiveWay:
    """When each lane last claimed something, and what that means for the others."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._last_claim: dict[str, float] = {}  # lane -> clock.monotonic()

    def claimed(self, lane: Lane) -> None:
        self._last_claim[lane.name] = self.clock.monotonic()

    def busy(self, name: str) -> bool:
        """Whether lane `name` has claimed anything in the last `GIVE_WAY_WINDOW` seconds."""
        last = self._last_claim.get(name)
        return last is not None and self.clock.monotonic() - last < GIVE_WAY_WINDOW

    def giving_way(self, lane: Lane) -> bool:
        return lane.gives_way_to is not None and self.busy(lane.gives_way_to)

    def batch(self, lane: Lane, batch: int) -> int:
        """How many occurrences `lane` claims in its next round."""
        return GIVING_WAY_BATCH if self.giving_way(lane) else batch

    def pause_after(self, lane: Lane, round_began: float) -> float:
        """Seconds `lane` pauses after a round that claimed something (0: none)."""
        if not self.giving_way(lane):
            return 0.0
        took = self.clock.monotonic() - round_began
        return min(took * GIVE_WAY_PAUSE, GIVE_WAY_MAX_PAUSE)

    async def pause(self, seconds: float, stop: asyncio.Event | None) -> None:
        """Pause a lane giving way (cut short by `stop`)."""
        if stop is None:
            await self.clock.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)

    def storm(self) -> bool:
        """Whether pages are going out now (an alert storm, perhaps)."""
        return self.busy(PAGES.name)
