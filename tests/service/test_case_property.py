"""Property test: random people acting on support cases, random clock jumps and the engine
running in between never break the support half's promises.

A Hypothesis state machine drives the real service (SQLite file, the real engine, recording
vendors) through random sequences of the case use cases, by people of every support role,
and checks after every step:

1. The CEO is reached only through the CIO: every escalation to the CEO came from the CIO,
   asked for by the CIO.
2. Nobody escalates without the context the next level needs: every escalation a person
   made either found nothing missing or carries a manager's (or an executive's) override.
3. A refusal changes nothing: the case as stored is what it was before the refused request.
4. Decisions by the named approver only, and a case needing decisions is never resolved
   before every one of them is given.
5. Nobody forgets a clock: after the engine has run to now, no step of an open case is
   left due; and a response clock that ran out has told someone (the first response
   missed, or the unconfirmed receipt reminded), once.
6. The stored plan is the plan of the facts: a case's pending steps are exactly what
   planning its facts now gives; a resolved case has none.
7. Nothing goes out twice: one message per step occurrence.

Run with PROPERTY_EXAMPLES=1000 (say) for a longer search.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Coroutine
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from incident import bootstrap
from incident.adapters.files.templates import JinjaRenderer
from incident.clock import FakeClock
from incident.config import PROJECT_ROOT, Settings
from incident.domain.access import AccessRole, Principal
from incident.domain.case import Case, CaseChange, Deescalation, Escalation, Plan
from incident.domain.case_access import SupportRole, SupportRoles
from incident.domain.case_clocks import SupportPlaybook, plan
from incident.domain.case_context import ChecklistItem
from incident.domain.case_routing import Flag, Level, Urgency
from incident.domain.errors import DomainError
from incident.domain.lifecycle import Severity
from incident.domain.playbook import PlaybookSet
from incident.scheduler.retry import RetryPolicy
from incident.services import cases as uc
from incident.services.cases import EscalationRequest, Support, case_ref
from incident.testing import RecordingEffects, run_until
from tests.conftest import T0

T = TypeVar("T")

PEOPLE = {role: Principal(f"{role.value}-person", AccessRole.RESPONDER) for role in SupportRole}
ROLES = SupportRoles({p.name: role for role, p in PEOPLE.items()})
OVERRIDERS = {PEOPLE[r].name for r in (SupportRole.MANAGER, SupportRole.CIO, SupportRole.CEO)}
CONTEXT = {
    "actions_taken": "Checked",
    "customer_plan": "pro",
    "account_value": "100",
    "previous_escalations": 0,
    "customer_impact": "Blocked",
    "troubleshooting": "Tried",
    "customer_expectation": "Soon",
    "requested_actions": "Look",
}
FLAGS = st.frozensets(
    st.sampled_from(
        [Flag.LEGAL_THREAT, Flag.USDT_WITHDRAWAL, Flag.TECHNICAL_COMPLEXITY, Flag.MEDIA_CONTACT]
    ),
    max_size=2,
)
WHO = st.sampled_from(list(PEOPLE.values()))
PICK = st.integers(0, 2)
DURATIONS = st.one_of(st.integers(1, 90), st.integers(90, 16 * 60)).map(
    lambda minutes: timedelta(minutes=minutes)
)
MISSED_STEPS = {"first-response-missed": Level.TIER_1, "receipt-reminder": None}

PROPERTY_SETTINGS = settings(
    max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "60")),
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@functools.cache
def _checked() -> tuple[PlaybookSet, SupportPlaybook]:
    settings_ = Settings(playbooks_dir=PROJECT_ROOT / "playbooks", comms_dir=PROJECT_ROOT / "comms")
    return bootstrap.check_playbooks(settings_), bootstrap.check_support(settings_)


@functools.cache
def _renderer() -> JinjaRenderer:
    """One renderer for every example: it compiles each template once."""
    return JinjaRenderer(PROJECT_ROOT / "comms")


class CaseMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.tmp = Path(tempfile.mkdtemp(prefix="case-property-"))
        self.clock = FakeClock(T0)
        self.vendor = RecordingEffects(clock=self.clock)
        self.cases: list[int] = []
        settings_ = Settings(
            database_url=f"sqlite:///{self.tmp / 'cases.db'}",
            playbooks_dir=PROJECT_ROOT / "playbooks",
            comms_dir=PROJECT_ROOT / "comms",
            runbooks_dir=PROJECT_ROOT / "runbooks",
            support_roles=ROLES,
        )
        self.app = self._run(
            bootstrap.build(
                settings_,
                # Checking the playbooks is most of a build: examples build hundreds of times.
                playbooks=_checked()[0],
                support_playbook=_checked()[1],
                clock=self.clock,
                effects=self.vendor.effects(_renderer()),
                retry=RetryPolicy(max_attempts=3),
            )
        )
        self.sp: Support = self.app.support

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def teardown(self) -> None:
        try:
            self._run(self.app.close())
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
        finally:
            self.loop.close()
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _case(self, pick: int) -> int:
        return self.cases[pick % len(self.cases)]

    def _stored(self, case_id: int) -> Case:
        case = self._run(self.sp.rt.store.read(lambda tx: tx.get_case(case_id)))
        case.events = []
        return case

    def _attempt(self, case_id: int, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run a use case; a refusal must leave the case as it was (promise 3)."""
        before = self._stored(case_id)
        try:
            self._run(coroutine)
        except DomainError:
            assert self._stored(case_id) == before, "a refused request changed the case"

    # --- rules ---------------------------------------------------------------------------

    @initialize(flags=FLAGS, priority=st.sampled_from(Severity), plan_=st.sampled_from(Plan))
    def open_first(self, flags: frozenset[Flag], priority: Severity, plan_: Plan) -> None:
        self.open(flags, priority, plan_, context=True)

    @precondition(lambda self: len(self.cases) < 3)
    @rule(
        flags=FLAGS,
        priority=st.sampled_from(Severity),
        plan_=st.sampled_from(Plan),
        context=st.booleans(),
    )
    def open(self, flags: frozenset[Flag], priority: Severity, plan_: Plan, context: bool) -> None:
        case = Case(
            reference=f"T-{len(self.cases)}",
            customer_id="c",
            summary="s",
            plan=plan_,
            priority=priority,
            opened_at=self.clock.now(),
            opened_by="",
            flags=flags,
            usdt_amount=Decimal(5) if Flag.USDT_WITHDRAWAL in flags else None,
            context=dict(CONTEXT) if context else {},
        )
        view = self._run(uc.open_case(self.sp, case, by=PEOPLE[SupportRole.AGENT]))
        assert view.case.id is not None
        self.cases.append(view.case.id)

    @rule(pick=PICK, who=WHO, to=st.sampled_from(Level), override=st.booleans())
    def escalate(self, pick: int, who: Principal, to: Level, override: bool) -> None:
        request = EscalationRequest(to, "reason", override="urgent" if override else None)
        case_id = self._case(pick)
        self._attempt(case_id, uc.escalate_case(self.sp, case_id, request, by=who))

    @rule(pick=PICK, who=WHO)
    def confirm(self, pick: int, who: Principal) -> None:
        case_id = self._case(pick)
        self._attempt(case_id, uc.confirm_receipt(self.sp, case_id, by=who))

    @rule(pick=PICK, who=WHO, to=st.sampled_from(Level), why=st.sampled_from(Deescalation))
    def deescalate(self, pick: int, who: Principal, to: Level, why: Deescalation) -> None:
        case_id = self._case(pick)
        self._attempt(case_id, uc.deescalate_case(self.sp, case_id, to, why, "n", by=who))

    @rule(pick=PICK, who=WHO, to_customer=st.booleans())
    def progress(self, pick: int, who: Principal, to_customer: bool) -> None:
        case_id = self._case(pick)
        self._attempt(
            case_id, uc.record_progress(self.sp, case_id, "n", to_customer=to_customer, by=who)
        )

    @rule(pick=PICK, who=WHO, contacts=st.integers(1, 5), checklist=st.booleans())
    def update(self, pick: int, who: Principal, contacts: int, checklist: bool) -> None:
        change = CaseChange(
            contacts=contacts,
            checklist=frozenset({ChecklistItem.TROUBLESHOOTING_DONE}) if checklist else None,
        )
        case_id = self._case(pick)
        self._attempt(case_id, uc.update_case(self.sp, case_id, change, by=who))

    @rule(pick=PICK, who=WHO, level=st.sampled_from([Level.CIO, Level.CEO]), ok=st.booleans())
    def decide(self, pick: int, who: Principal, level: Level, ok: bool) -> None:
        case_id = self._case(pick)
        self._attempt(case_id, uc.decide(self.sp, case_id, level, approved=ok, note="n", by=who))

    @rule(pick=PICK, who=WHO)
    def resolve(self, pick: int, who: Principal) -> None:
        case_id = self._case(pick)
        self._attempt(case_id, uc.resolve_case(self.sp, case_id, "done", by=who))

    @rule(delta=DURATIONS)
    def advance(self, delta: timedelta) -> None:
        self._run(run_until(self.app, self.clock, self.clock.now() + delta))

    # --- the promises --------------------------------------------------------------------

    @invariant()
    def promises_hold(self) -> None:
        self._run(run_until(self.app, self.clock, self.clock.now()))
        for case_id in self.cases:
            view = self._run(uc.read_case(self.sp, case_id))
            case = view.case
            self._escalations_keep_the_rules(case)
            self._decisions_keep_the_rules(case)
            self._the_plan_is_the_facts_plan(case, view.upcoming)
            self._no_clock_is_forgotten(view)
        self._nothing_went_twice()

    def _escalations_keep_the_rules(self, case: Case) -> None:
        for e in case.escalations:
            if e.to_level is Level.CEO:
                assert e.from_level is Level.CIO, f"{case.ref}: the CEO reached from {e.from_level}"
                assert e.by in (PEOPLE[SupportRole.CIO].name, "routing", "clock"), e.by
            if e.by not in ("routing", "clock") and e.gate_override is not None:
                assert e.by in OVERRIDERS, f"{e.by} overrode the gate"

    def _decisions_keep_the_rules(self, case: Case) -> None:
        for approval in case.approvals:
            role = SupportRole.CIO if approval.level is Level.CIO else SupportRole.CEO
            assert approval.by == PEOPLE[role].name, f"{approval.by} decided as {approval.level}"
        if not case.is_open:
            assert not case.approvals_missing, f"{case.ref} resolved without its decisions"

    def _the_plan_is_the_facts_plan(self, case: Case, upcoming: list[uc.UpcomingCaseStep]) -> None:
        assert case.id is not None
        subject = case_ref(case.id)
        history = self._run(self.sp.rt.store.read(lambda tx: tx.step_history(subject)))
        expected = plan(case, self.sp.playbook.steps, self.sp.playbook.ladder, history)
        assert sorted((p.step_id, p.due_at) for p in expected) == sorted(
            (u.step_id, u.due_at) for u in upcoming
        ), f"{case.ref}: stored plan differs from the facts' plan"
        now = self.clock.now()
        late = [u.step_id for u in upcoming if u.due_at <= now and u.state != "held"]
        assert not late, f"{case.ref}: steps left due after the engine ran: {late}"
        if not case.is_open:
            assert not upcoming, f"{case.ref} is resolved but still has steps"

    def _no_clock_is_forgotten(self, view: uc.CaseView) -> None:
        if view.sla.state.value != "breached":
            return
        case = view.case
        step = "first-response-missed" if case.current is None else "receipt-reminder"
        since = case.level_entered_at
        told = [
            e
            for e in view.timeline
            if e.kind == "step_done" and e.step_id == step and since is not None and e.at >= since
        ]
        assert told, f"{case.ref}: its {case.level.value} clock ran out and nobody was told"

    def _nothing_went_twice(self) -> None:
        slots = Counter(s.key.split("@")[0] for s in self.vendor.sends if s.port == "messenger")
        twice = [key for key, n in slots.items() if n > 1 and "#" not in key]
        assert not twice, f"sent twice: {twice}"


@pytest.mark.timeout(300)
def test_support_promises_hold_under_random_operations() -> None:
    run_state_machine_as_test(CaseMachine, settings=PROPERTY_SETTINGS)


def test_the_machine_checks_something() -> None:
    """The invariant really reads the cases: a case forced into a state the rules forbid
    (the CEO reached from tier 1) is caught."""
    machine = CaseMachine()
    try:
        machine.open_first(frozenset(), Severity.P3, Plan.PRO)
        case = machine._stored(machine.cases[0])
        forged = dataclasses.replace(
            case,
            escalations=[*case.escalations],
        )
        forged.level = Level.CEO
        forged.escalations.append(
            Escalation(
                1,
                Level.TIER_1,
                Level.CEO,
                machine.clock.now(),
                "x",
                "r",
                "by hand",
                Urgency.CAN_WAIT,
            )
        )
        machine._run(machine.sp.rt.store.run(lambda tx: tx.save_case(forged)))
        with pytest.raises(AssertionError, match="the CEO reached from"):
            machine.promises_hold()
    finally:
        machine.teardown()
