"""Recording fakes of the effect ports: what the outside world would have seen.

Like a real vendor, they honour idempotency keys: a second send with a key already seen
is counted (so tests can see retries) but produces no second effect.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from incident.adapters.files.templates import JinjaRenderer
from incident.clock import Clock
from incident.domain.incident import Incident, Status, war_room_name
from incident.services.ports import Effects, OnCall, WarRoom


class SimulatedCrash(BaseException):
    """Raised by a fake after its effect is done: the process 'dies' before marking it done.

    A BaseException, so the scheduler's failure handling (which catches Exception) does
    not see it, exactly as it would not see a power cut.
    """


class VendorDown(Exception):
    """A scripted vendor failure."""


@dataclass(frozen=True)
class Sent:
    at: datetime
    port: str
    key: str
    incident_id: int
    target: str
    body: str


@dataclass
class RecordingEffects:
    """All five effect ports in one recorder, with scriptable faults."""

    clock: Clock
    sends: list[Sent] = field(default_factory=list)
    attempts: Counter[str] = field(default_factory=Counter)
    fail_next: int = 0  # this many upcoming sends raise VendorDown
    crash_after_next: int = 0  # this many upcoming sends "crash" after taking effect
    fail_when: Callable[[str], bool] | None = None  # key -> fail?
    # key -> an event the send waits for first: a vendor call that hangs until released.
    hold_when: Callable[[str], asyncio.Event | None] | None = None
    takes: float = 0.0  # seconds on `clock` each call takes (virtual time: it moves it)
    rota: dict[str, list[OnCall]] = field(default_factory=dict)  # tier -> who is on call
    greetings: dict[int, str] = field(default_factory=dict)  # incident -> its greeting now

    def effects(self, renderer: JinjaRenderer) -> Effects:
        return Effects(
            pager=self,
            chat=self,
            notifier=self,
            status_page=self,
            customers=self,
            renderer=renderer,
        )

    @property
    def delivered(self) -> list[Sent]:
        return self.sends

    def keys(self) -> list[str]:
        return [s.key for s in self.sends]

    async def _hold(self, key: str) -> None:
        if self.takes:
            await self.clock.sleep(self.takes)
        gate = self.hold_when(key) if self.hold_when is not None else None
        if gate is not None:
            await gate.wait()

    def _send(self, port: str, key: str, incident: Incident, target: str, body: str) -> None:
        self.attempts[key] += 1
        if self.fail_next > 0:
            self.fail_next -= 1
            raise VendorDown(f"{port} unavailable (scripted)")
        if self.fail_when is not None and self.fail_when(key):
            raise VendorDown(f"{port} unavailable for {key} (scripted)")
        assert incident.id is not None
        if key not in {s.key for s in self.sends}:
            self.sends.append(Sent(self.clock.now(), port, key, incident.id, target, body))
        if self.crash_after_next > 0:
            self.crash_after_next -= 1
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

    async def publish(self, *, incident: Incident, status: Status, body: str, key: str) -> None:
        await self._hold(key)
        self._send("status_page", key, incident, status.value, body)

    async def withdraw(self, *, incident: Incident, body: str, key: str) -> None:
        await self._hold(key)
        self._send("status_page.withdraw", key, incident, "withdrawn", body)

    async def send(self, *, incident: Incident, subject: str, body: str, key: str) -> None:
        await self._hold(key)
        self._send("customers", key, incident, "customers", body)
