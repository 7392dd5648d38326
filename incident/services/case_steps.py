"""Support cases as a subject of the engine: how a case's claimed step is checked, what it
sends, and what it changes once sent (an escalation by the clock moves the case up).

The engine (`incident.scheduler`) calls these inside its units of work; it knows nothing of
cases (see `incident.services.engine`).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime

from incident.domain.case import Case, CaseStatus, Escalation
from incident.domain.case_clocks import CaseAction, CaseStep, verdict
from incident.domain.case_routing import Level, Urgency
from incident.domain.records import Occurrence, StepResult, TimelineEntry
from incident.services.case_messages import CaseMessage, message_for
from incident.services.cases import (
    CASE,
    Support,
    apply_rules,
    case_ref,
    case_view,
    replan_case,
)
from incident.services.engine import Failure, Prepared, Ready, Sent, StepReport
from incident.services.patterns import Assignment, Patterns
from incident.services.ports import Messenger, Renderer, Topic, Transaction

log = logging.getLogger("incident.scheduler")
CLOCK = "clock"  # who the timeline names when a case's clock acts
# Steps that change the case and send nothing themselves.
MOVES_ONLY = (CaseAction.ESCALATE, CaseAction.ROUTE, CaseAction.RESOLVE, CaseAction.CLUSTER)


def topic(case: Case) -> Topic:
    assert case.id is not None
    return Topic(case_ref(case.id), case.opened_at, case.ref)


@dataclass(frozen=True)
class CaseSent:
    summary: str
    body: str | None = None  # the message, when the step sent one


@dataclass(frozen=True)
class CaseStepRun:
    """A case's claimed step, checked, its message rendered: ready to send."""

    occurrence: Occurrence
    step: CaseStep
    case: Case
    message: CaseMessage | None  # none for a step that only moves the case
    key: str
    messenger: Messenger

    async def perform(self) -> CaseSent:
        if self.step.action is CaseAction.ESCALATE:
            return CaseSent(f"escalated to {self.step.target}")
        if self.step.action is CaseAction.ROUTE:
            return CaseSent("routing rules applied")
        if self.step.action is CaseAction.RESOLVE:
            return CaseSent("resolved: the customer did not answer")
        if self.step.action is CaseAction.CLUSTER:
            return CaseSent("compared with other customers' reports")
        message = self.message
        assert message is not None  # notify and customer_update steps are templated
        await self.messenger.send(
            about=topic(self.case),
            audience=message.audience,
            destinations=message.destinations,
            subject=message.subject,
            body=message.body,
            key=self.key,
        )
        return CaseSent(f"told {message.audience}", message.body)


class CaseSteps:
    """The `SubjectKind` of support cases."""

    name = CASE

    def __init__(
        self,
        support: Support,
        messenger: Messenger,
        renderer: Renderer,
        *,
        base_url: str,
        patterns: Patterns | None = None,
    ) -> None:
        self.sp = support
        self.messenger = messenger
        self.renderer = renderer
        self.base_url = base_url
        self.patterns = patterns  # None: cases are not compared

    def prepare(
        self, tx: Transaction, occurrence: Occurrence, now: datetime, *, facts: object = None
    ) -> Prepared:
        case = facts if isinstance(facts, Case) else tx.get_case(occurrence.subject.id)
        playbook = self.sp.playbook
        step = playbook.step_of(case, occurrence.step_id)
        history = tx.step_history(occurrence.subject)
        stopped = verdict(
            step,
            case,
            ladder=playbook.ladder,
            occurrence_number=occurrence.occurrence,
            history=history,
            now=now,
        )
        if stopped is not None:
            tx.finish_occurrence(
                occurrence.id, state=stopped.stop.state, now=now, outcome=stopped.reason
            )
            self._note(tx, case, occurrence, stopped.stop.timeline_kind, stopped.reason, now=now)
            replan_case(tx, playbook, case, now=now)
            result = StepResult(stopped.stop.state.value)
            report = StepReport(occurrence, result, now - occurrence.due_at, stopped.reason)
            return Prepared(occurrence, report=report)
        assert step is not None
        # An escalation by the clock only moves the case: the receiving level hears of it
        # from the notice steps its move plans (queued to its hours unless it cannot wait).
        message = (
            None
            if step.action in MOVES_ONLY
            else message_for(
                step,
                case_view(self.sp, tx, case, now),
                self.sp.playbook.ladder,
                self.renderer,
                base_url=self.base_url,
            )
        )
        run = CaseStepRun(
            occurrence=occurrence,
            step=step,
            case=case,
            message=message,
            key=occurrence.effect_key(repeats=step.repeats),
            messenger=self.messenger,
        )
        return Prepared(occurrence, ready=run)

    def record_done(self, tx: Transaction, ready: Ready, sent: Sent, now: datetime) -> object:
        assert isinstance(ready, CaseStepRun) and isinstance(sent, CaseSent)
        occurrence, step = ready.occurrence, ready.step
        case = tx.get_case(occurrence.subject.id, lock=True)
        case.events = []
        self._note(tx, case, occurrence, "step_done", sent.summary, now=now, body=sent.body)
        if step.action is CaseAction.ESCALATE and case.is_open:
            target = Level(step.target or "")
            if target is not case.level:
                case.escalate(_clock_escalation(case, step, target, now))
        elif step.action is CaseAction.CUSTOMER_UPDATE and case.is_open:
            case.last_customer_update_at = now
        elif step.action is CaseAction.ROUTE:
            apply_rules(self.sp, case, now)
        elif step.action is CaseAction.RESOLVE:
            _resolve_unanswered(case, step, now)
        elif step.action is CaseAction.CLUSTER and self.patterns is not None:
            _said_of(self.patterns.assign(tx, case, now), case, now)
        tx.save_case(case)
        tx.append_case_timeline(occurrence.subject.id, case.events)
        replan_case(tx, self.sp.playbook, case, now=now)
        return case

    def record_failure(
        self, tx: Transaction, occurrence: Occurrence, failure: Failure, now: datetime
    ) -> object:
        case = tx.get_case(occurrence.subject.id, lock=failure.final)
        if failure.final:
            text = f"failed after {failure.attempt} attempts: {failure.message}"
        else:
            assert failure.retry_at is not None
            text = (
                f"attempt {failure.attempt} of {failure.max_attempts} failed "
                f"({failure.message}); retrying at {failure.retry_at.isoformat()}"
            )
        kind = "step_failed" if failure.final else "step_retry"
        self._note(tx, case, occurrence, kind, text, now=now)
        if failure.final:
            replan_case(tx, self.sp.playbook, case, now=now)
        return case

    def committed(self, sent: Sent) -> None:
        return None

    async def gave_up(self, ready: Ready, failure: Failure, facts: object) -> None:
        """A step that gave up is the level's lead's to do by hand: say so (best effort)."""
        assert isinstance(ready, CaseStepRun)
        case = facts if isinstance(facts, Case) else ready.case
        rung = self.sp.playbook.ladder[case.level]
        text = (
            f"{case.ref} ({case.reference}): the step '{ready.step.id}' "
            f"({ready.step.description}) failed {failure.attempt} times and will not be "
            f"retried: {failure.message}. Please do it by hand: {self.base_url}/cases/{case.id}"
        )
        with contextlib.suppress(Exception):
            await self.messenger.send(
                about=topic(case),
                audience="lead",
                destinations=rung.lead,
                subject=f"{case.ref}: a step failed and needs doing by hand",
                body=text,
                key=f"{ready.key}/gave-up",
            )

    @staticmethod
    def _note(
        tx: Transaction,
        case: Case,
        occurrence: Occurrence,
        kind: str,
        text: str,
        *,
        now: datetime,
        body: str | None = None,
    ) -> None:
        assert case.id is not None
        entry = TimelineEntry(
            at=now,
            kind=kind,
            actor=CLOCK,
            step_id=occurrence.step_id,
            occurrence=occurrence.occurrence,
            text=f"{occurrence.step_id}: {text}",
            data={"messages": [body]} if body is not None else {},
        )
        tx.append_case_timeline(case.id, [entry])


def _said_of(assigned: Assignment, case: Case, now: datetime) -> None:
    """What clustering did, on the case's timeline."""
    cluster = assigned.cluster
    how = "joined" if assigned.joined else "started"
    text = f"Compared with other customers' reports: {how} cluster {cluster.id}"
    if assigned.candidate is not None:
        text += f"; it reached its trigger: incident candidate {assigned.candidate.ref} proposed"
    if assigned.linked_to is not None:
        text += f"; linked to INC-{assigned.linked_to}, declared for the cluster"
    data: dict[str, object] = {"cluster": cluster.id}
    if assigned.candidate is not None:
        data["candidate"] = assigned.candidate.id
    case.events.append(TimelineEntry(at=now, kind="clustered", actor=CLOCK, text=text, data=data))


def _resolve_unanswered(case: Case, step: CaseStep, now: datetime) -> None:
    """The customer never answered whether the fix works: resolved, as the fix stands
    (unless a decision is still missing, which a person must give first)."""
    if case.status is not CaseStatus.PENDING or case.approvals_missing:
        return
    case.resolve(f"no answer from the customer ({step.description})", at=now, by=CLOCK)


def _clock_escalation(case: Case, step: CaseStep, target: Level, now: datetime) -> Escalation:
    return Escalation(
        number=0,
        from_level=case.level,
        to_level=target,
        at=now,
        by=CLOCK,
        reason=step.description,
        rule=f"the clock: {step.id}",
        # The clocks escalate critical cases only: those cannot wait for business hours.
        urgency=Urgency.CANNOT_WAIT if case.priority.rank <= 2 else Urgency.CAN_WAIT,
    )
