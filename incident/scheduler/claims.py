"""A scheduler's claims: which occurrences it holds, their leases kept while it works on
them, and the claims of a failed unit of work handed back at once.

Each claim is a lease in the database. Leases are renewed every third of a lease while
their owner lives, so a step that takes long (a vendor retrying) is never claimed by
another replica while its owner is alive; a replica that dies loses its leases when they
expire, and another claims those occurrences again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from incident.clock import Clock
from incident.domain.records import Occurrence, OccurrenceState, StepResult
from incident.services.engine import StepReport
from incident.services.ports import Store, Transaction

log = logging.getLogger("incident.scheduler")


class Leases(Protocol):
    """Keeps a scheduler's claims while it works on them."""

    async def renew(
        self, *, owner: str, occurrence_ids: Sequence[int], until: datetime
    ) -> set[int]:
        """Extend `owner`'s leases on these running occurrences to `until`; returns those
        still its own (the others are finished, or expired and claimed by another replica)."""
        ...


class LeaseLost(Exception):
    """This scheduler's claim on an occurrence has gone to another replica."""


class Claims:
    """The occurrences one scheduler has claimed and not finished yet."""

    def __init__(
        self, *, owner: str, lease: timedelta, store: Store, clock: Clock, urgent: bool
    ) -> None:
        self.owner = owner
        self.lease = lease
        self.store = store
        self.clock = clock
        self.urgent = urgent
        self.held: set[int] = set()  # the leases to renew
        # Claims of units that failed (the database refused a write, say): handed back as
        # soon as the database takes writes again, not when their lease ends.
        self.orphaned: set[int] = set()

    @staticmethod
    def check(tx: Transaction, occurrence: Occurrence) -> None:
        """Raise LeaseLost unless our claim on `occurrence` still stands.

        Leases are renewed while their owner lives, so this only happens to a replica that
        stalled for longer than a lease: another one has claimed the occurrence again (its
        attempt count moved on) or finished it. That one records it; we must not as well.
        """
        current = tx.get_occurrence(occurrence.id)
        if current.state != OccurrenceState.RUNNING or current.attempts != occurrence.attempts:
            raise LeaseLost(
                f"claimed again by another replica (state {current.state}, attempt "
                f"{current.attempts}, ours was {occurrence.attempts})"
            )

    @staticmethod
    def lost(occurrence: Occurrence, now: datetime, lost: LeaseLost) -> StepReport:
        log.warning(
            "lease lost",
            extra={
                "action": "lease_lost",
                "subject": occurrence.subject.key,
                "step": occurrence.step_id,
                "error": str(lost),
            },
        )
        return StepReport(occurrence, StepResult.LOST, now - occurrence.due_at, str(lost))

    def took(self, ids: set[int]) -> None:
        self.held |= ids

    def finished(self, ids: set[int]) -> None:
        self.held -= ids

    def failed(self, ids: set[int]) -> None:
        """A unit of work on these failed: those not finished are handed back soon."""
        self.orphaned |= ids & self.held

    async def hand_back_orphans(self) -> None:
        """Hand back the claims of units that failed, now that the database may take
        writes again (if it does not yet, the claim that follows fails too, and we try
        again)."""
        if not self.orphaned:
            return
        orphans = sorted(self.orphaned)
        await self.store.run(
            lambda tx: tx.release_claims(owner=self.owner, occurrence_ids=orphans),
            durable=False,
            urgent=self.urgent,
        )
        self.orphaned -= set(orphans)
        log.info(
            "claims of a failed lane handed back",
            extra={"action": "claims_handed_back", "occurrences": orphans[:20]},
        )

    async def keep(self, leases: Leases, stop: asyncio.Event) -> None:
        """Renew the leases of what is held, every third of a lease, until `stop`. A
        renewal that fails is tried again at the next beat; two more chances before the
        lease ends."""
        beat = self.lease.total_seconds() / 3
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=beat)
            held = sorted(self.held)
            if not held or stop.is_set():
                continue
            try:
                kept = await leases.renew(
                    owner=self.owner, occurrence_ids=held, until=self.clock.now() + self.lease
                )
            except Exception as error:  # the database may be briefly unavailable
                log.warning(
                    "could not renew leases",
                    extra={"action": "lease_renewal_failed", "error": f"{error!r}"[:300]},
                )
                continue
            lost = (set(held) & self.held) - kept
            if lost:
                log.warning(
                    "leases lost", extra={"action": "leases_lost", "occurrences": sorted(lost)[:20]}
                )
