"""What an incident step's message may say: the context its template is rendered with."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from incident.domain.follow_ups import FollowUp
from incident.domain.incident import Incident
from incident.domain.planning import (
    NO_HISTORY,
    StepHistory,
    next_customer_update_due,
    plan,
    step_deadline,
)
from incident.domain.playbook import CUSTOMER_MESSAGES, Action, Playbook, Step
from incident.domain.records import Occurrence
from incident.services.actions import message_context
from incident.services.incidents import Runtime
from incident.services.ports import Transaction

# How many of the next steps the war room's greeting lists.
GREETING_STEPS = 6


def step_context(
    tx: Transaction,
    rt: Runtime,
    occurrence: Occurrence,
    *,
    step: Step,
    incident: Incident,
    playbook: Playbook,
    history: Mapping[str, StepHistory],
    now: datetime,
    follow_up: FollowUp | None,
    base_url: str,
) -> dict[str, Any]:
    """What this occurrence's template may say, as if it has just run: the next
    customer update and the upcoming steps are those of the plan after it."""
    after = dict(history)
    after[step.id] = StepHistory(
        fired=history.get(step.id, NO_HISTORY).fired + 1,
        last_due=occurrence.due_at,
        last_fired_at=now,
    )
    facts = incident
    if step.action in CUSTOMER_MESSAGES and incident.is_open:
        facts = dataclasses.replace(incident, last_customer_update_at=now)
    return message_context(
        incident=incident,
        step=step,
        occurrence=occurrence.occurrence,
        now=now,
        timeline=tx.timeline(occurrence.subject.id),
        directory=rt.playbooks.directory,
        next_update_due=next_customer_update_due(facts, playbook, after),
        deadline=step_deadline(incident, step),
        base_url=base_url,
        catalog=rt.catalog,
        upcoming=_upcoming(
            rt, step=step, incident=incident, facts=facts, playbook=playbook, after=after
        ),
        follow_up=follow_up,
    )


def _upcoming(
    rt: Runtime,
    *,
    step: Step,
    incident: Incident,
    facts: Incident,
    playbook: Playbook,
    after: Mapping[str, StepHistory],
) -> list[dict[str, Any]]:
    """The next steps, for the war room's greeting (only its steps list them)."""
    if step.action not in (Action.OPEN_WAR_ROOM, Action.REFRESH_WAR_ROOM):
        return []
    steps = {s.id: s for s in playbook.steps}
    upcoming = []
    for planned in plan(facts, playbook, after)[:GREETING_STEPS]:
        described = steps[planned.step_id]
        upcoming.append(
            {
                "step": planned.step_id,
                "description": described.description,
                "action": described.action.value,
                "target": described.target,
                "due_at": planned.due_at,
                "needs_approval": rt.needs_approval(incident, described),
            }
        )
    return upcoming
