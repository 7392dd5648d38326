"""Property test: random linking, unlinking, updates, resolutions, reopenings, clock jumps,
crashes and restarts never break the promise of linked cases:

    every customer-facing word an incident says (a person's update, the playbook's holding
    update, its resolution) while a case is linked to it reaches that case's customer
    exactly once, in order, and nothing else of any incident does.

The engine runs after each operation (a word is sent before the next thing happens), so the
words a case must have heard are those said while it was linked: the model keeps each case's
link, and reads what each incident said from the incident's own timeline (the holding updates
come from its playbook on the clock). Also: linking a case to an incident that has spoken
sends it the incident's latest word at once; a resolution leaves the linked cases waiting for
their customers' confirmation, and a reopening opens them again.

Run with PROPERTY_EXAMPLES=1000 (say) for a longer search.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from incident import bootstrap
from incident.clock import FakeClock
from incident.config import PROJECT_ROOT, Settings
from incident.domain.access import AccessRole, Principal
from incident.domain.case import Case, CaseStatus, Plan
from incident.domain.errors import DomainError
from incident.domain.lifecycle import Severity
from incident.scheduler.retry import RetryPolicy
from incident.services import case_links as links
from incident.services import cases as uc
from incident.services import incidents as inc
from incident.services.cases import case_ref
from incident.testing import RecordingEffects, SimulatedCrash, run_until
from tests.conftest import T0
from tests.service.test_case_property import _checked, _renderer

T = TypeVar("T")
AGENT = Principal("agent", AccessRole.RESPONDER)
IC = Principal("ivy", AccessRole.COMMANDER)
PICK = st.integers(0, 5)
WORDS = st.sampled_from(["Investigating.", "Cause found.", "Fix rolling out.", "Monitoring."])

PROPERTY_SETTINGS = settings(
    max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "60")) // 2,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class LinkMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.tmp = Path(tempfile.mkdtemp(prefix="link-property-"))
        self.clock = FakeClock(T0)
        self.vendor = RecordingEffects(clock=self.clock)
        self.settings = Settings(
            database_url=f"sqlite:///{self.tmp / 'links.db'}",
            playbooks_dir=PROJECT_ROOT / "playbooks",
            comms_dir=PROJECT_ROOT / "comms",
            runbooks_dir=PROJECT_ROOT / "runbooks",
        )
        self.app = self._build()
        self.cases: list[int] = []
        self.incidents: list[int] = []
        self.linked: dict[int, int | None] = {}  # case -> its incident
        self.heard: dict[int, list[str]] = {}  # case -> the words it must have heard
        self.said: dict[int, int] = {}  # incident -> its timeline entries already relayed
        self.crash_next = False

    def _build(self) -> bootstrap.Container:
        return self._run(
            bootstrap.build(
                self.settings,
                playbooks=_checked()[0],
                support_playbook=_checked()[1],
                clock=self.clock,
                effects=self.vendor.effects(_renderer()),
                retry=RetryPolicy(max_attempts=5),
            )
        )

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def teardown(self) -> None:
        try:
            self._run(self.app.close())
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
        finally:
            self.loop.close()
            shutil.rmtree(self.tmp, ignore_errors=True)

    # --- what the incidents said, from their timelines -----------------------------------

    def _words(self, incident_id: int) -> list[str]:
        """Everything the incident said to customers, in order: its updates (a person's
        or the playbook's) and, as `resolved`, each resolution."""
        timeline = self._run(self.app.store.read(lambda tx: tx.timeline(incident_id)))
        return [
            e.text if e.kind == "customer_update" else "resolved"
            for e in timeline
            if e.kind in ("customer_update", "resolved")
        ]

    def _catch_up(self) -> None:
        """What each incident said since last time goes to the cases linked to it now."""
        for incident_id in self.incidents:
            words = self._words(incident_id)
            for word in words[self.said[incident_id] :]:
                for case_id, linked in self.linked.items():
                    if linked == incident_id:
                        self.heard[case_id].append(word)
            self.said[incident_id] = len(words)

    def _settle(self) -> None:
        """The engine runs what is due now (once crashing right after a notice went out,
        then a new process on the same database finishing it)."""
        if self.crash_next:
            self.crash_next = False
            crashed: list[str] = []

            def once(key: str) -> bool:
                if "incident_notice." in key and not crashed:
                    crashed.append(key)
                    return True
                return False

            self.vendor.crash_when = once
            with contextlib.suppress(SimulatedCrash):  # no notice was due: no crash
                self._run(self.app.scheduler.tick(self.clock.now()))
            self.vendor.crash_when = None
            self._run(self.app.close())
            self.app = self._build()
            self._run(self.app.store.run(lambda tx: tx.release_claims()))
        self._run(run_until(self.app, self.clock, self.clock.now()))

    # --- rules ---------------------------------------------------------------------------

    @initialize()
    def start(self) -> None:
        for n in range(2):
            incident, _ = self._run(
                inc.declare_incident(
                    self.app.runtime, title=f"Outage {n}", severity=Severity.P2, by=IC
                )
            )
            assert incident.id is not None
            self.incidents.append(incident.id)
            self.said[incident.id] = 0
        for n in range(3):
            case = Case(
                reference=f"L-{n}",
                customer_id=f"c{n}",
                summary="Transfers stuck",
                plan=Plan.PRO,
                priority=Severity.P3,
                opened_at=self.clock.now(),
                opened_by="",
            )
            view = self._run(uc.open_case(self.app.support, case, by=AGENT))
            assert view.case.id is not None
            self.cases.append(view.case.id)
            self.linked[view.case.id], self.heard[view.case.id] = None, []
        self._settle()

    def _incident(self, pick: int) -> int:
        return self.incidents[pick % len(self.incidents)]

    def _case(self, pick: int) -> int:
        return self.cases[pick % len(self.cases)]

    def _open(self, incident_id: int) -> bool:
        incident = self._run(inc.read_incident(self.app.runtime, incident_id))
        return incident.is_open

    @rule(case=PICK, incident=PICK)
    def link(self, case: int, incident: int) -> None:
        case_id, incident_id = self._case(case), self._incident(incident)
        try:
            self._run(links.link_case(self.app.support, case_id, incident_id, by=AGENT))
        except DomainError:
            status = self._run(uc.read_case(self.app.support, case_id)).case.status
            assert (
                not self._open(incident_id)
                or self.linked[case_id] == incident_id
                or status is CaseStatus.PENDING  # their answer first, then another link
            )
            return
        self.linked[case_id] = incident_id
        latest = self._words(incident_id)
        updates = [w for w in latest if w != "resolved"]
        if updates:
            self.heard[case_id].append(updates[-1])  # where things stand, at once
        self._settle()
        self._catch_up()

    @rule(case=PICK)
    def unlink(self, case: int) -> None:
        case_id = self._case(case)
        try:
            self._run(links.unlink_case(self.app.support, case_id, by=AGENT))
        except DomainError:
            assert self.linked[case_id] is None
            return
        self.linked[case_id] = None

    @rule(incident=PICK, word=WORDS)
    def post_update(self, incident: int, word: str) -> None:
        incident_id = self._incident(incident)
        try:
            self._run(inc.post_customer_update(self.app.runtime, incident_id, message=word, by=IC))
        except DomainError:
            assert not self._open(incident_id)
            return
        self._catch_up()
        self._settle()

    @rule(incident=PICK)
    def resolve(self, incident: int) -> None:
        incident_id = self._incident(incident)
        try:
            self._run(inc.resolve_incident(self.app.runtime, incident_id, summary="Fixed", by=IC))
        except DomainError:
            assert not self._open(incident_id)
            return
        self._catch_up()
        self._settle()
        for case_id, linked in self.linked.items():
            if linked == incident_id:
                case = self._run(uc.read_case(self.app.support, case_id)).case
                assert case.status is CaseStatus.PENDING, "a linked case waits for its customer"

    @rule(incident=PICK)
    def reopen(self, incident: int) -> None:
        incident_id = self._incident(incident)
        try:
            self._run(inc.reopen_incident(self.app.runtime, incident_id, reason="Back", by=IC))
        except DomainError:
            assert self._open(incident_id)
            return
        for case_id, linked in self.linked.items():
            if linked == incident_id:
                case = self._run(uc.read_case(self.app.support, case_id)).case
                assert case.status is CaseStatus.OPEN, "the fix did not hold: open again"
        self._settle()

    @rule(minutes=st.integers(1, 180))
    def advance(self, minutes: int) -> None:
        """Time passes: the playbooks' holding updates are said and relayed."""
        self._run(run_until(self.app, self.clock, self.clock.now() + timedelta(minutes=minutes)))
        self._catch_up()
        self._settle()

    @rule()
    def crash_on_the_next_notice(self) -> None:
        self.crash_next = True

    # --- the promise ---------------------------------------------------------------------

    @invariant()
    def each_linked_customer_heard_each_word_once(self) -> None:
        for case_id in self.cases:
            subject = case_ref(case_id)
            bodies = [
                " ".join(s.body.split())
                for s in self.vendor.sends
                if s.subject == subject and "incident_notice." in s.key
            ]
            expected = self.heard[case_id]
            assert len(bodies) == len(expected), (case_id, expected, bodies)
            for word, body in zip(expected, bodies, strict=True):
                said = "has been resolved" if word == "resolved" else " ".join(word.split())
                assert said in body, (word, body)


def test_linked_customers_hear_each_word_once_under_random_operations() -> None:
    run_state_machine_as_test(LinkMachine, settings=PROPERTY_SETTINGS)
