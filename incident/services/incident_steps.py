"""Incidents as a subject of the engine: how an incident's claimed step is checked,
prepared, recorded when sent and when it failed.

The engine (`incident.scheduler`) calls these inside its units of work; it knows nothing of
incidents itself (see `incident.services.engine`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from incident.domain.errors import DomainError
from incident.domain.incident import Incident
from incident.domain.planning import (
    comes_back,
    verdict,
)
from incident.domain.playbook import Action, Step
from incident.domain.records import (
    INCIDENT,
    Occurrence,
    StepResult,
    TimelineEntry,
)
from incident.services.actions import Outcome, StepRun, perform
from incident.services.engine import Failure, Prepared, Ready, Sent, StepReport
from incident.services.incidents import Runtime, find_step, replan, timeline_entry
from incident.services.ports import Effects, Transaction
from incident.services.step_context import step_context

log = logging.getLogger("incident.scheduler")


@dataclass(frozen=True)
class IncidentStep:
    """An incident's claimed step, checked and ready to send."""

    occurrence: Occurrence
    run: StepRun

    async def perform(self) -> Outcome:
        return await perform(self.run)


class IncidentSteps:
    """The `SubjectKind` of incidents."""

    name = INCIDENT

    def __init__(self, runtime: Runtime, effects: Effects, *, base_url: str) -> None:
        self.rt = runtime
        self.effects = effects
        self.base_url = base_url

    # --- before sending ----------------------------------------------------------------------

    def prepare(
        self, tx: Transaction, occurrence: Occurrence, now: datetime, *, facts: object = None
    ) -> Prepared:
        incident = facts if isinstance(facts, Incident) else tx.get_incident(occurrence.subject.id)
        playbook = self.rt.playbooks.for_severity(incident.severity)
        step, follow_up = find_step(tx, incident, playbook, occurrence.step_id)
        history = tx.step_history(occurrence.subject)
        stopped = verdict(step, incident, occurrence, history, now)
        if stopped is not None:
            tx.finish_occurrence(
                occurrence.id, state=stopped.stop.state, now=now, outcome=stopped.reason
            )
            tx.append_timeline(
                occurrence.subject.id,
                [
                    TimelineEntry(
                        at=now,
                        kind=stopped.stop.timeline_kind,
                        actor="playbook",
                        step_id=occurrence.step_id,
                        occurrence=occurrence.occurrence,
                        text=f"{occurrence.step_id}: {stopped.reason}",
                    )
                ],
            )
            replan(tx, incident, self.rt.playbooks, now=now, reason=stopped.reason)
            result = StepResult(stopped.stop.state.value)
            report = StepReport(occurrence, result, now - occurrence.due_at, stopped.reason)
            return Prepared(occurrence, report=report)
        assert step is not None
        context = step_context(
            tx,
            self.rt,
            occurrence,
            step=step,
            incident=incident,
            playbook=playbook,
            history=history,
            now=now,
            follow_up=follow_up,
            base_url=self.base_url,
        )
        if occurrence.approved_by is None and self.rt.needs_approval(incident, step):
            return self._hold(
                tx, occurrence, step=step, incident=incident, context=context, now=now
            )
        run = StepRun(
            step=step,
            incident=incident,
            key=occurrence.effect_key(repeats=step.keyed_by_due),
            context=context,
            effects=self.effects,
            directory=self.rt.playbooks.directory,
            paged_tiers=tuple(
                dict.fromkeys(
                    s.target for s in playbook.steps if s.action is Action.PAGE and s.target
                )
            ),
        )
        return Prepared(occurrence, ready=IncidentStep(occurrence, run))

    def _hold(
        self,
        tx: Transaction,
        occurrence: Occurrence,
        *,
        step: Step,
        incident: Incident,
        context: Mapping[str, Any],
        now: datetime,
    ) -> Prepared:
        """Park an automatic customer-facing text until the commander approves it, and
        show the commander what it would say."""
        reason = "waiting for the commander's approval"
        tx.hold_occurrence(occurrence.id, now=now, reason=reason)
        assert step.template is not None  # customer-facing texts are templated
        preview = self.effects.renderer.render(step.template, context)
        tx.append_timeline(
            occurrence.subject.id,
            [
                TimelineEntry(
                    at=now,
                    kind="step_held",
                    actor="playbook",
                    step_id=step.id,
                    occurrence=occurrence.occurrence,
                    text=f"{step.id}: {reason} ({incident.category.value} incident)",
                    data={"preview": preview},
                )
            ],
        )
        report = StepReport(occurrence, StepResult.HELD, now - occurrence.due_at, reason)

        async def ask() -> None:
            await self._ask_approval(incident, step, occurrence, preview)

        return Prepared(occurrence, report=report, notice=ask)

    async def _ask_approval(
        self, incident: Incident, step: Step, occurrence: Occurrence, preview: str
    ) -> None:
        """Tell the war room a text waits for approval (best effort: the held step itself
        is durable and shows on every list of upcoming steps)."""
        text = (
            f":raised_hand: {incident.ref} is a {incident.category.value} incident: "
            f"'{step.id}' ({step.description}) waits for the commander's approval before it "
            f"goes to customers. Approve it with `/incident approve {step.id}`, or skip it. "
            f"It would say:\n\n{preview}"
        )
        key = f"{occurrence.effect_key(repeats=step.keyed_by_due)}/approval"
        with contextlib.suppress(Exception):
            await self.effects.chat.post(incident=incident, text=text, key=key)

    # --- after sending -----------------------------------------------------------------------

    def record_done(self, tx: Transaction, ready: Ready, sent: Sent, now: datetime) -> object:
        assert isinstance(ready, IncidentStep) and isinstance(sent, Outcome)
        occurrence, step = ready.occurrence, ready.run.step
        incident = tx.get_incident(occurrence.subject.id, lock=True)
        as_read = dataclasses.replace(incident, components=dict(incident.components))
        entries = [
            TimelineEntry(
                at=now,
                kind="step_done",
                actor="playbook",
                step_id=step.id,
                occurrence=occurrence.occurrence,
                text=f"{step.id}: {sent.summary}",
                data={
                    "action": step.action.value,
                    "target": step.target,
                    "message": sent.message,
                    "lateness_seconds": (now - occurrence.due_at).total_seconds(),
                },
            )
        ]
        incident.events = []
        entries += self._apply(incident, occurrence, step, sent, now)
        changed = incident != as_read
        if changed:
            tx.save_incident(incident)
        tx.append_timeline(occurrence.subject.id, entries)
        self.rt.tell_followers(tx, incident, incident.events, now)
        if changed or comes_back(step):
            replan(tx, incident, self.rt.playbooks, now=now, reason=f"{step.id} done")
        # Otherwise the plan is as it was less this occurrence, which is what marking it
        # done leaves: re-planning would read and write nothing (`comes_back`).
        return incident

    @staticmethod
    def _apply(
        incident: Incident, occurrence: Occurrence, step: Step, sent: Outcome, now: datetime
    ) -> list[TimelineEntry]:
        """What the sent step changes on the incident; the timeline entries that say so."""
        entries = []
        if sent.war_room is not None:
            incident.open_war_room(
                channel=sent.war_room.channel, conference_url=sent.war_room.conference_url
            )
        if sent.published is not None:
            entries.append(
                TimelineEntry(
                    at=now,
                    kind="status_page_update",
                    actor="playbook",
                    step_id=step.id,
                    occurrence=occurrence.occurrence,
                    text=sent.published,
                    # As the text says it, not as the incident may be by now.
                    data={"status": sent.published_status or incident.status.value},
                    public=True,
                )
            )
        if sent.customer_update is not None and incident.is_open:
            try:
                events = incident.post_customer_update(
                    message=sent.customer_update, at=now, by="playbook", automatic=True
                )
                entries += [timeline_entry(e) for e in events]
            except DomainError:  # resolved meanwhile: the message went, the state stays
                pass
        return entries

    def committed(self, sent: Sent) -> None:
        if isinstance(sent, Outcome) and sent.public:
            self.rt.public_changed()

    def record_failure(
        self, tx: Transaction, occurrence: Occurrence, failure: Failure, now: datetime
    ) -> object:
        if failure.final:
            text = (
                f"{occurrence.step_id} failed after {failure.attempt} attempts: {failure.message}"
            )
        else:
            assert failure.retry_at is not None
            text = (
                f"{occurrence.step_id} attempt {failure.attempt} of {failure.max_attempts} "
                f"failed ({failure.message}); retrying at {failure.retry_at.isoformat()}"
            )
        tx.append_timeline(
            occurrence.subject.id,
            [
                TimelineEntry(
                    at=now,
                    kind="step_failed" if failure.final else "step_retry",
                    actor="playbook",
                    step_id=occurrence.step_id,
                    occurrence=occurrence.occurrence,
                    text=text,
                    data={"error": failure.message, "attempt": failure.attempt},
                )
            ],
        )
        if not failure.final:
            return None
        incident = tx.get_incident(occurrence.subject.id, lock=True)
        replan(tx, incident, self.rt.playbooks, now=now, reason=f"{occurrence.step_id} failed")
        return incident

    async def gave_up(self, ready: Ready, failure: Failure, facts: object) -> None:
        """A step that gave up is the commander's to do by hand: say so in the war room, or
        through the fallback (the outbox) when the chat vendor is what is failing."""
        assert isinstance(ready, IncidentStep)
        occurrence, step = ready.occurrence, ready.run.step
        incident = facts if isinstance(facts, Incident) else ready.run.incident
        text = (
            f":warning: {incident.ref}: the playbook step '{step.id}' ({step.description}) "
            f"failed {failure.attempt} times and will not be retried: {failure.message}. "
            "Please do it by hand"
            + (f" (runbook: {self.base_url}/runbooks/{step.runbook})" if step.runbook else "")
            + "."
        )
        key = f"{occurrence.effect_key(repeats=step.keyed_by_due)}/gave-up"
        for chat in (self.effects.chat, self.effects.fallback_chat):
            if chat is None:
                continue
            try:
                await chat.post(incident=incident, text=text, key=key)
                return
            except Exception as error:
                log.warning(
                    "could not tell the commander",
                    extra={
                        "action": "tell_commander_failed",
                        "incident_id": incident.id,
                        "step": step.id,
                        "error": f"{type(error).__name__}: {error}"[:300],
                    },
                )
