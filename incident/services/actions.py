"""What each playbook action does, through the ports. One function per action."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from incident.domain.audiences import Directory
from incident.domain.follow_ups import FollowUp
from incident.domain.incident import Incident
from incident.domain.playbook import Action, Step
from incident.domain.records import TimelineEntry
from incident.domain.status_page import Catalog, component_names, in_words
from incident.services.ports import Effects, WarRoom


@dataclass(frozen=True)
class Outcome:
    """What an action did, for the timeline, and what it changes on the incident."""

    summary: str
    message: str = ""
    public: bool = False
    war_room: WarRoom | None = None
    customer_update: str | None = None  # text to record as a customer-facing update
    published: str | None = None  # text the status page now shows (a public timeline entry)
    published_status: str | None = None  # the status that text was written for


@dataclass(frozen=True)
class StepRun:
    """Everything one action needs: the step, the incident, and the rendering context."""

    step: Step
    incident: Incident
    key: str
    context: Mapping[str, Any]
    effects: Effects
    directory: Directory
    paged_tiers: tuple[str, ...] = ()  # the on-call tiers the incident's playbook pages

    def render(self) -> str:
        assert self.step.template is not None  # the playbook model requires one
        return self.effects.renderer.render(self.step.template, self.context)

    @property
    def subject(self) -> str:
        """For people inside the company: reference, severity and title."""
        incident = self.incident
        return f"[{incident.ref} {incident.severity.value}] {incident.title}"

    @property
    def customer_subject(self) -> str:
        """For customers: the name they know it by (never the internal title, reference
        or severity label)."""
        return f"Service incident: {self.context['public']['title']}"


async def _page(run: StepRun) -> Outcome:
    assert run.step.target is not None
    summary = f"{run.subject} ({run.incident.status.value})"
    await run.effects.pager.page(
        incident=run.incident, tier=run.step.target, summary=summary, key=run.key
    )
    return Outcome(summary=f"paged on-call {run.step.target}", message=summary)


async def _pager_acknowledge(run: StepRun) -> Outcome:
    await run.effects.pager.acknowledge(incident=run.incident, key=run.key)
    return Outcome(summary="pages acknowledged at the pager")


async def _pager_resolve(run: StepRun) -> Outcome:
    await run.effects.pager.resolve(incident=run.incident, key=run.key)
    return Outcome(summary="pages resolved at the pager")


async def _refresh_war_room(run: StepRun) -> Outcome:
    greeting = run.render()
    await run.effects.chat.refresh_war_room(incident=run.incident, key=run.key, greeting=greeting)
    incident = run.incident
    return Outcome(
        summary=f"war room greeting and topic: {incident.severity.value}, "
        f"{incident.status.value}, commander {incident.commander or 'none yet'}",
        message=greeting,
    )


async def _open_war_room(run: StepRun) -> Outcome:
    people: list[str] = []
    for tier in run.paged_tiers:
        people += [p.email for p in await run.effects.pager.on_call(tier=tier) if p.email]
    greeting = run.render()
    room = await run.effects.chat.open_war_room(
        incident=run.incident, key=run.key, greeting=greeting, people=list(dict.fromkeys(people))
    )
    summary = f"war room #{room.channel} open, greeting pinned"
    if people:
        summary += f", on-call invited: {', '.join(dict.fromkeys(people))}"
    if room.conference_url:
        summary += f", conference {room.conference_url}"
    return Outcome(summary=summary, message=greeting, war_room=room)


async def _status_page(run: StepRun) -> Outcome:
    body = run.render()
    await run.effects.status_page.publish(
        incident=run.incident, status=run.incident.status, body=body, key=run.key
    )
    return Outcome(
        summary=f"status page set to {run.incident.status.value}",
        message=body,
        public=True,
        published=body,
        published_status=run.incident.status.value,
    )


async def _status_page_withdraw(run: StepRun) -> Outcome:
    body = run.render()
    await run.effects.status_page.withdraw(incident=run.incident, body=body, key=run.key)
    # The last word, should the page keep the incident (as resolved, with no impact).
    return Outcome(
        summary="status page entry withdrawn",
        message=body,
        public=True,
        published=body,
        published_status="resolved",
    )


async def _follow_up_reminder(run: StepRun) -> Outcome:
    """Remind a follow-up's owner, in the war room and directly where the owner is an
    address or a chat handle."""
    follow_up = run.context.get("follow_up")
    assert follow_up is not None  # the scheduler gives every follow-up step its item
    body = run.render()
    await run.effects.notifier.notify(
        incident=run.incident,
        audience="follow-up-owner",
        destinations=follow_up["destinations"],
        subject=f"[{run.incident.ref} follow-up {follow_up['ref']}] {follow_up['title']}",
        body=body,
        key=run.key,
    )
    return Outcome(summary=f"reminded {follow_up['owner']} of {follow_up['ref']}", message=body)


async def _customer_message(run: StepRun) -> Outcome:
    body = run.render()
    await run.effects.customers.update_customers(
        incident=run.incident, subject=run.customer_subject, body=body, key=run.key
    )
    holding = run.step.action is Action.CUSTOMER_HOLDING_UPDATE
    return Outcome(
        summary="holding update sent to customers" if holding else "customers notified",
        message=body,
        public=True,
        customer_update=body if run.incident.is_open else None,
    )


async def _publish_update(run: StepRun) -> Outcome:
    """An update a person posted goes to customers and to the status page."""
    body = run.render()
    incident = run.incident
    await run.effects.customers.update_customers(
        incident=incident, subject=run.customer_subject, body=body, key=f"{run.key}/customers"
    )
    await run.effects.status_page.publish(
        incident=incident, status=incident.status, body=body, key=f"{run.key}/status_page"
    )
    return Outcome(
        summary="update sent to customers and the status page", message=body, public=True
    )


async def _war_room_post(run: StepRun) -> Outcome:
    body = run.render()
    await run.effects.chat.post(incident=run.incident, text=body, key=run.key)
    return Outcome(
        summary=f"posted {run.step.action.value.replace('_', ' ')} in the war room", message=body
    )


async def _notify(run: StepRun) -> Outcome:
    assert run.step.target is not None
    audience = run.directory.audiences[run.step.target]  # checked when playbooks load
    body = run.render()
    await run.effects.notifier.notify(
        incident=run.incident,
        audience=run.step.target,
        destinations=audience.destinations,
        subject=run.subject,
        body=body,
        key=run.key,
    )
    verb = "escalated to" if run.step.action is Action.ESCALATE else "notified"
    return Outcome(summary=f"{verb} {run.step.target}", message=body)


HANDLERS: Mapping[Action, Callable[[StepRun], Awaitable[Outcome]]] = {
    Action.PAGE: _page,
    Action.OPEN_WAR_ROOM: _open_war_room,
    Action.STATUS_PAGE: _status_page,
    Action.CUSTOMER_NOTIFICATION: _customer_message,
    Action.CUSTOMER_HOLDING_UPDATE: _customer_message,
    Action.CUSTOMER_UPDATE_REMINDER: _war_room_post,
    Action.REMIND: _war_room_post,
    Action.SCHEDULE_REVIEW: _war_room_post,
    Action.PUBLISH_UPDATE: _publish_update,
    Action.NOTIFY: _notify,
    Action.ESCALATE: _notify,
    Action.RCA_REMINDER: _notify,
    Action.RCA_OVERDUE: _notify,
    Action.PAGER_ACKNOWLEDGE: _pager_acknowledge,
    Action.PAGER_RESOLVE: _pager_resolve,
    Action.REFRESH_WAR_ROOM: _refresh_war_room,
    Action.STATUS_PAGE_WITHDRAW: _status_page_withdraw,
    Action.FOLLOW_UP_REMINDER: _follow_up_reminder,
}


async def perform(run: StepRun) -> Outcome:
    return await HANDLERS[run.step.action](run)


def message_context(
    *,
    incident: Incident,
    step: Step,
    occurrence: int,
    now: datetime,
    timeline: Sequence[TimelineEntry],
    directory: Directory,
    next_update_due: datetime | None,
    deadline: datetime | None,
    base_url: str,
    catalog: Catalog | None = None,
    upcoming: Sequence[Mapping[str, Any]] = (),
    follow_up: FollowUp | None = None,
) -> dict[str, Any]:
    """The variables every template in comms/ may use (see `sample_context`).

    Customer-facing templates use only `public`, `update(s)`, `next_update_due` and the
    status: the incident's title, service and impact are internal (they may carry host
    names, alert text or customer names).

    `upcoming`: what the playbook does next once this occurrence has run ({step,
    description, action, target, due_at}), for the war room's greeting. `next_update_due`
    is left out (None) when it is not after `now`: a late message must not promise an
    update by a time already past."""
    audience = directory.audiences.get(step.target or "")
    catalog = catalog or Catalog()
    names = component_names(catalog, incident.components)
    return {
        "public": {
            "title": incident.public_name(catalog),
            "affected": in_words(names),
            "components": names,
        },
        "incident": incident_facts(incident, now),
        "step": {
            "id": step.id,
            "action": step.action.value,
            "target": step.target,
            "description": step.description,
            "runbook": _runbook(step, base_url),
        },
        "occurrence": occurrence,
        "now": now,
        "audience": (
            {"name": step.target, "description": audience.description} if audience else None
        ),
        "update": next(
            (
                {"at": e.at, "status": e.data.get("status", ""), "message": e.text}
                for e in reversed(timeline)
                if e.kind == "customer_update" and not e.data.get("automatic")
            ),
            None,
        ),
        "updates": [
            {"at": e.at, "status": e.data.get("status", ""), "message": e.text}
            for e in reversed(timeline)
            if e.kind == "customer_update"
        ],
        "notes": [
            {"at": e.at, "actor": e.actor, "text": e.text}
            for e in reversed(timeline)
            if e.kind == "internal_note"
        ],
        "next_update_due": next_update_due if next_update_due and next_update_due > now else None,
        "deadline": deadline,
        "upcoming": list(upcoming),
        "follow_up": (
            {
                "ref": follow_up.ref,
                "title": follow_up.title,
                "owner": follow_up.owner,
                "due_at": follow_up.due_at,
                "overdue": now >= follow_up.due_at,
                "destinations": follow_up.destinations(),
            }
            if follow_up is not None
            else None
        ),
        "links": {
            "incident": f"{base_url}/ui/incidents/{incident.id}",
            "status_page": f"{base_url}/status",
            "runbook": _runbook(step, base_url),
            "conference": incident.conference_url,
            "merged_into": (
                f"{base_url}/ui/incidents/{incident.merged_into}" if incident.merged_into else None
            ),
        },
    }


def _runbook(step: Step, base_url: str) -> str | None:
    """A link people can open: the service serves runbooks/ at /runbooks/."""
    return f"{base_url}/runbooks/{step.runbook}" if step.runbook else None


def incident_facts(incident: Incident, now: datetime) -> dict[str, Any]:
    """The incident's own fields as templates and exports see them: one owner, so a
    message and the postmortem draft never disagree on what a field is called."""
    return {
        "id": incident.id,
        "ref": incident.ref,
        "title": incident.title,
        "severity": incident.severity.value,
        "status": incident.status.value,
        "service": incident.service,
        "category": incident.category.value,
        "impact": incident.impact,
        "declared_at": incident.declared_at,
        "declared_by": incident.declared_by,
        "acknowledged_at": incident.acknowledged_at,
        "acknowledged_by": incident.acknowledged_by,
        "commander": incident.commander,
        "comms_lead": incident.comms_lead,
        "resolved_at": incident.resolved_at,
        "resolution_summary": incident.resolution_summary,
        "rca_due_at": incident.rca_due_at,
        "rca_link": incident.rca_link,
        "cancelled_at": incident.cancelled_at,
        "cancellation": incident.cancellation.words if incident.cancellation else None,
        "cancel_note": incident.cancel_note,
        "merged_into": f"INC-{incident.merged_into}" if incident.merged_into else None,
        "reopened_at": incident.reopened_at,
        "war_room": incident.war_room,
        "conference_url": incident.conference_url,
        "age": (incident.ended_at or now) - incident.declared_at,
    }
