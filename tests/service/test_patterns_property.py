"""Property test: random customers reporting a few problems, people declaring and dismissing
candidates, clock jumps, crashes between an effect and its mark, and restarts never break the
promises of patterns:

1. Every case is compared once: after the engine has run, each case is in exactly one cluster.
2. A cluster holds one problem: its cases all report the same one (the problems differ by
   asset and network, the matcher's hard negatives).
3. One candidate per cluster, posted once: no candidate's post goes out twice.
4. Declared means linked: every case of a declared cluster is linked to its incident (those
   that joined after the declaration too), while that incident is open.

Run with PROPERTY_EXAMPLES=1000 (say) for a longer search.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import text

from incident import bootstrap
from incident.clock import FakeClock
from incident.config import PROJECT_ROOT, Settings
from incident.domain.access import AccessRole, Principal
from incident.domain.case import Case, Plan
from incident.domain.errors import DomainError
from incident.domain.lifecycle import Severity
from incident.domain.patterns import CandidateStatus
from incident.scheduler.retry import RetryPolicy
from incident.services import cases as uc
from incident.testing import RecordingEffects, SimulatedCrash, run_until
from tests.conftest import T0
from tests.service.test_case_property import _checked, _renderer

T = TypeVar("T")
AGENT = Principal("agent", AccessRole.RESPONDER)
IC = Principal("ivy", AccessRole.COMMANDER)
# Three problems, alike but for what they name: a cluster must never mix them.
PROBLEMS = (
    "Bridge transfer of {n} USDC from Ethereum to Arbitrum stuck for {n} hours",
    "Bridge transfer of {n} USDC from Ethereum to Polygon stuck for {n} hours",
    "BTC withdrawal of {n} BTC pending for {n} hours, not confirmed",
)
PROPERTY_SETTINGS = settings(
    max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "60")) // 6,
    stateful_step_count=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class PatternsMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.tmp = Path(tempfile.mkdtemp(prefix="patterns-property-"))
        self.clock = FakeClock(T0)
        self.vendor = RecordingEffects(clock=self.clock)
        self.settings = Settings(
            database_url=f"sqlite:///{self.tmp / 'patterns.db'}",
            playbooks_dir=PROJECT_ROOT / "playbooks",
            comms_dir=PROJECT_ROOT / "comms",
            runbooks_dir=PROJECT_ROOT / "runbooks",
        )
        self.app = self._build()
        self.problem_of: dict[int, int] = {}  # case -> the problem it reports
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

    def _settle(self) -> None:
        """The engine runs what is due (once dying right after an effect, before its mark,
        and a new process finishing it)."""
        if self.crash_next:
            self.crash_next = False
            self.vendor.crash_after_next = 1
            with contextlib.suppress(SimulatedCrash):  # nothing was due: no crash
                self._run(self.app.scheduler.tick(self.clock.now()))
            self.vendor.crash_after_next = 0
            self._run(self.app.close())
            self.app = self._build()
            self._run(self.app.store.run(lambda tx: tx.release_claims()))
        self._run(run_until(self.app, self.clock, self.clock.now()))

    # --- rules ---------------------------------------------------------------------------

    @rule(problem=st.integers(0, 2), customer=st.integers(0, 5), plan=st.sampled_from(Plan))
    def report(self, problem: int, customer: int, plan: Plan) -> None:
        n = len(self.problem_of)
        case = Case(
            reference=f"P-{n}",
            customer_id=f"cust-{customer}",
            summary=PROBLEMS[problem].format(n=n + 2),
            plan=plan,
            priority=Severity.P3,
            opened_at=self.clock.now(),
            opened_by="",
            category="transfers",
            component="wallet",
        )
        view = self._run(uc.open_case(self.app.support, case, by=AGENT))
        assert view.case.id is not None
        self.problem_of[view.case.id] = problem
        self._settle()

    @rule(pick=st.integers(0, 5), dismiss=st.booleans())
    def decide(self, pick: int, dismiss: bool) -> None:
        waiting = self._run(self.app.patterns.candidates(statuses=(CandidateStatus.PROPOSED,)))
        if not waiting:
            return
        candidate_id = waiting[pick % len(waiting)].id or 0
        with contextlib.suppress(DomainError):
            if dismiss:
                self._run(self.app.patterns.dismiss(candidate_id, "Known upstream", by=IC))
            else:
                self._run(self.app.patterns.declare(candidate_id, by=IC))
        self._settle()

    @rule(minutes=st.integers(1, 120))
    def advance(self, minutes: int) -> None:
        self._run(run_until(self.app, self.clock, self.clock.now() + timedelta(minutes=minutes)))

    @rule()
    def crash_on_the_next_effect(self) -> None:
        self.crash_next = True

    # --- the promises ------------------------------------------------------------------------

    def _rows(self, query: str) -> list[tuple[Any, ...]]:
        def read(session: Any) -> list[tuple[Any, ...]]:
            return [tuple(r) for r in session.execute(text(query))]

        return self._run(self.app.database.run(read))

    @invariant()
    def patterns_keep_their_promises(self) -> None:
        if not self.problem_of:
            return
        members = self._rows("SELECT case_id, cluster_id FROM case_cluster_members")
        assert sorted(c for c, _ in members) == sorted(self.problem_of)  # 1: each once
        problems: dict[int, set[int]] = {}
        for case_id, cluster_id in members:
            problems.setdefault(cluster_id, set()).add(self.problem_of[case_id])
        assert all(len(p) == 1 for p in problems.values()), problems  # 2: one problem
        posts = Counter(s.key for s in self.vendor.sends if s.target == "patterns channel")
        assert all(n == 1 for n in posts.values())  # 3: posted once (the recorder dedups)
        per_cluster = self._rows("SELECT count(*) FROM incident_candidates GROUP BY cluster_id")
        assert all(n == 1 for (n,) in per_cluster)  # 3: one candidate per cluster
        declared = self._rows(
            "SELECT m.case_id, c.incident_id FROM case_cluster_members m "
            "JOIN case_clusters c ON c.id = m.cluster_id "
            "JOIN incidents i ON i.id = c.incident_id "
            "WHERE c.status = 'declared' AND i.status NOT IN ('resolved', 'closed', 'cancelled')"
        )
        linked = dict(self._rows("SELECT id, incident_id FROM cases"))
        for case_id, incident_id in declared:  # 4: declared means linked
            assert linked[case_id] == incident_id, (case_id, incident_id, linked[case_id])


@pytest.mark.timeout(300)
def test_patterns_keep_their_promises_under_random_operations() -> None:
    run_state_machine_as_test(PatternsMachine, settings=PROPERTY_SETTINGS)
