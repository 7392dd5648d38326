"""Shipped test doubles and the virtual-time loop, shared by the tests, the benchmarks and
`incident simulate`: a recorder of every effect port, and the engine run in virtual time.

Nothing here imports pytest: the recorder is an ordinary implementation of the ports (like
the outbox, minus the database), and the loop drives the same `Scheduler.tick` the
real-time loop calls.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from incident.bootstrap import Container
from incident.clock import Clock, FakeClock
from incident.domain.incident import Incident, Status, war_room_name
from incident.domain.records import INCIDENT, SubjectRef
from incident.services.ports import Effects, OnCall, Renderer, Topic, WarRoom


class SimulatedCrash(BaseException):
    """Raised by a fake after its effect is done: the process 'dies' before marking it done.

    A BaseException, so the scheduler's failure handling (which catches Exception) does
    not see it, exactly as it would not see a power cut.
    """


class VendorDown(Exception):
    """A scripted vendor failure."""


@dataclass(frozen=True)
class Sent:
    """One effect as the outside world saw it: the first send of its idempotency key."""

    at: datetime  # on the recorder's clock (the SystemClock in the benches: wall time)
    port: str  # pager, pager.acknowledge, pager.resolve, chat.open, chat.post, chat.refresh,
    # notifier, messenger, status_page, status_page.withdraw, customers, board (its first
    # post), accounts
    key: str
    subject: SubjectRef  # what it was about: an incident, or another kind's subject
    target: str
    body: str

    @property
    def incident_id(self) -> int | None:
        """The incident it was about (None: another kind's subject, sent by `send`)."""
        return self.subject.id if self.subject.kind == INCIDENT else None


@dataclass
class RecordingEffects:
    """Every effect port in one recorder (Messenger, Board and AccountSystem too), with
    scriptable faults.

    Like a real vendor, it honours idempotency keys: a second send with a key already seen
    is counted in `attempts` (so tests see retries) but produces no second effect in
    `sends`. Each effect is stamped with `clock.now()`: virtual time under a `FakeClock`,
    wall time under the `SystemClock` (how the benchmarks time their effects).
    """

    clock: Clock
    sends: list[Sent] = field(default_factory=list)
    attempts: Counter[str] = field(default_factory=Counter)
    fail_next: int = 0  # this many upcoming sends raise VendorDown
    crash_after_next: int = 0  # this many upcoming sends "crash" after taking effect
    fail_when: Callable[[str], bool] | None = None  # key -> fail?
    crash_when: Callable[[str], bool] | None = None  # key -> "crash" after taking effect?
    # key -> an event the send waits for first: a vendor call that hangs until released.
    hold_when: Callable[[str], asyncio.Event | None] | None = None
    takes: float = 0.0  # seconds on `clock` each call takes (virtual time: it moves it)
    rota: dict[str, list[OnCall]] = field(default_factory=dict)  # tier -> who is on call
    greetings: dict[int, str] = field(default_factory=dict)  # incident -> its greeting now
    # Board: key -> every text its message said, in order (a call with the text it says
    # already adds nothing), and how many times each key's message was posted and edited:
    # "edited in place, not re-posted" is `board_posts[key] == 1`.
    shown: dict[str, list[str]] = field(default_factory=dict)
    board_posts: Counter[str] = field(default_factory=Counter)
    board_edits: Counter[str] = field(default_factory=Counter)
    # AccountSystem: key -> the instruction handed over (once per key, as the receiver keeps it).
    instructions: dict[str, Mapping[str, object]] = field(default_factory=dict)
    # Indexes of `sends`, kept as they grow, so a benchmark's thousands of sends stay cheap.
    _by_key: dict[str, Sent] = field(default_factory=dict, init=False, repr=False)
    _firsts: dict[str, dict[int, Sent]] = field(default_factory=dict, init=False, repr=False)
    _sent_one: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)

    def effects(self, renderer: Renderer) -> Effects:
        return Effects(
            pager=self,
            chat=self,
            notifier=self,
            status_page=self,
            customers=self,
            renderer=renderer,
            board=self,
            accounts=self,
        )

    def keys(self) -> list[str]:
        """The idempotency keys that took effect, in the order they did."""
        return [s.key for s in self.sends]

    def sent(self, key: str) -> Sent | None:
        """The effect of `key`, if it took effect."""
        return self._by_key.get(key)

    def first_by_incident(self, port: str) -> Mapping[int, Sent]:
        """Each incident's first effect on `port` (`pager`: its first page), as a live view:
        it grows as effects are sent, so a caller may take it once and watch it."""
        return self._firsts.setdefault(port, {})

    async def wait_until(self, done: Callable[[], bool]) -> None:
        """Return once `done()` holds, checking it after each effect: no polling, so a
        benchmark's waiting adds nothing to the event loop it measures. Bound it with
        `asyncio.timeout`."""
        while not done():
            self._sent_one.clear()
            await self._sent_one.wait()

    async def _hold(self, key: str) -> None:
        if self.takes:
            await self.clock.sleep(self.takes)
        gate = self.hold_when(key) if self.hold_when is not None else None
        if gate is not None:
            await gate.wait()

    def _send(
        self, port: str, key: str, about: Incident | SubjectRef, target: str, body: str
    ) -> None:
        self._may_fail(port, key)
        self._take_effect(port, key, about, target, body)
        self._may_crash(key)

    def _may_fail(self, port: str, key: str) -> None:
        """Count the attempt; raise VendorDown if scripted to fail before taking effect."""
        self.attempts[key] += 1
        if self.fail_next > 0:
            self.fail_next -= 1
            raise VendorDown(f"{port} unavailable (scripted)")
        if self.fail_when is not None and self.fail_when(key):
            raise VendorDown(f"{port} unavailable for {key} (scripted)")

    def _take_effect(
        self, port: str, key: str, about: Incident | SubjectRef, target: str, body: str
    ) -> None:
        """Record the first effect of `key` (later ones of the same key change nothing)."""
        if isinstance(about, Incident):
            assert about.id is not None
            about = SubjectRef.incident(about.id)
        if key not in self._by_key:
            sent = Sent(self.clock.now(), port, key, about, target, body)
            self.sends.append(sent)
            self._by_key[key] = sent
            if sent.incident_id is not None:
                self._firsts.setdefault(port, {}).setdefault(sent.incident_id, sent)
            self._sent_one.set()

    def _may_crash(self, key: str) -> None:
        """Raise SimulatedCrash if scripted to 'die' after taking effect."""
        if self.crash_after_next > 0:
            self.crash_after_next -= 1
            raise SimulatedCrash(key)
        if self.crash_when is not None and self.crash_when(key):
            raise SimulatedCrash(key)

    async def page(self, *, incident: Incident, tier: str, summary: str, key: str) -> str:
        await self._hold(key)
        self._send("pager", key, incident, tier, summary)
        return key

    async def acknowledge(self, *, incident: Incident, key: str) -> None:
        await self._hold(key)
        self._send("pager.acknowledge", key, incident, "pages", "")

    async def resolve(self, *, incident: Incident, key: str) -> None:
        await self._hold(key)
        self._send("pager.resolve", key, incident, "pages", "")

    async def on_call(self, *, tier: str) -> list[OnCall]:
        return list(self.rota.get(tier, ()))

    async def open_war_room(
        self, *, incident: Incident, key: str, greeting: str, people: Sequence[str] = ()
    ) -> WarRoom:
        await self._hold(key)
        self._send("chat.open", key, incident, "war-room", greeting)
        assert incident.id is not None
        self.greetings[incident.id] = greeting
        return WarRoom(channel=war_room_name(incident), conference_url=None)

    async def post(self, *, incident: Incident, text: str, key: str) -> None:
        await self._hold(key)
        self._send("chat.post", key, incident, "war-room", text)

    async def refresh_war_room(self, *, incident: Incident, key: str, greeting: str) -> None:
        await self._hold(key)
        # The topic as the target (what the room's topic says); the greeting as the body.
        topic = f"{incident.severity.value} {incident.status.value} {incident.commander}"
        self._send("chat.refresh", key, incident, topic, greeting)
        assert incident.id is not None
        if incident.war_room is not None:
            self.greetings[incident.id] = greeting  # edited in place

    async def notify(
        self,
        *,
        incident: Incident,
        audience: str,
        destinations: Sequence[str],
        subject: str,
        body: str,
        key: str,
    ) -> None:
        await self._hold(key)
        self._send("notifier", key, incident, audience, body)

    async def send(
        self,
        *,
        about: Topic,
        audience: str,
        destinations: Sequence[str],
        subject: str,
        body: str,
        key: str,
    ) -> None:
        await self._hold(key)
        self._send("messenger", key, about.subject, audience, body)

    async def publish(self, *, incident: Incident, status: Status, body: str, key: str) -> None:
        await self._hold(key)
        self._send("status_page", key, incident, status.value, body)

    async def withdraw(self, *, incident: Incident, body: str, key: str) -> None:
        await self._hold(key)
        self._send("status_page.withdraw", key, incident, "withdrawn", body)

    async def update_customers(
        self, *, incident: Incident, subject: str, body: str, key: str
    ) -> None:
        await self._hold(key)
        self._send("customers", key, incident, "customers", body)

    async def show(self, *, about: Topic, destination: str, text: str, key: str) -> None:
        """The message of `key`: posted the first time (a `board` send), then edited in
        place, each new text appended to `shown[key]`; the same text again changes nothing."""
        await self._hold(key)
        self._may_fail("board", key)
        versions = self.shown.setdefault(key, [])
        if not versions:
            self.board_posts[key] += 1
            versions.append(text)
            self._take_effect("board", key, about.subject, destination, text)
        elif versions[-1] != text:
            self.board_edits[key] += 1
            versions.append(text)
            self._sent_one.set()
        self._may_crash(key)

    async def instruct(self, *, about: Topic, instruction: Mapping[str, object], key: str) -> None:
        await self._hold(key)
        self._may_fail("accounts", key)
        self.instructions.setdefault(key, dict(instruction))
        body = json.dumps(instruction, sort_keys=True, default=str)
        self._take_effect("accounts", key, about.subject, "account system", body)
        self._may_crash(key)


# --- the virtual-time loop ---------------------------------------------------------------------

# Ticks at one instant without the clock moving, after which the loop is stuck (a step
# that stays due but is never run) rather than working through a burst of steps.
_TICKS_AT_ONE_INSTANT = 100


async def run_until(container: Container, clock: FakeClock, until: datetime) -> None:
    """Run every step due up to and including `until`, each at its due time: the clock
    jumps from one due time to the next, as the real loop would sleep, and ends at `until`.

    Only `container.scheduler` is ticked: it runs every action, pages included. Ticking
    the page lane as well would make the main lane give way to it, pausing on the clock,
    which in virtual time moves the clock past due times.
    """
    await _run(container, clock, until, inclusive=True)


async def run_before(container: Container, clock: FakeClock, until: datetime) -> None:
    """Run every step due before `until`, then set the clock to `until` without running
    what is due then: a scripted person acting at `until` goes first, as `incident
    simulate` shows (an acknowledgement at the re-page's due time stops the re-page)."""
    await _run(container, clock, until, inclusive=False)


async def _run(container: Container, clock: FakeClock, until: datetime, *, inclusive: bool) -> None:
    ticks_here = 0
    while True:
        before = clock.now()
        await container.scheduler.tick(before)
        next_at = await container.store.run(lambda tx: tx.next_run_at())
        if next_at is None or next_at > until or (next_at == until and not inclusive):
            break
        clock.set(max(clock.now(), next_at))
        ticks_here = ticks_here + 1 if clock.now() == before else 0
        if ticks_here >= _TICKS_AT_ONE_INSTANT:
            raise RuntimeError(
                f"the virtual-time loop is stuck at {before.isoformat()}: a step due at "
                f"{next_at.isoformat()} stays due after {ticks_here} ticks"
            )
    clock.set(max(clock.now(), until))
    if inclusive:
        await container.scheduler.tick(clock.now())
