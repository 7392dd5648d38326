"""Documents made from an incident's facts: the timeline in Markdown, and the postmortem
(RCA) draft the commander completes. Read-only.

The words are templates in comms/ (`timeline.md.j2`, `postmortem.md.j2`), so a team can
shape its RCA document as it likes; this module gathers the facts they may use
(`document_context`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from incident.domain.follow_ups import FollowUp
from incident.domain.incident import Incident
from incident.domain.records import Occurrence, OccurrenceState, TimelineEntry
from incident.services.actions import incident_facts
from incident.services.incidents import Runtime, get_incident
from incident.services.ports import Renderer

TIMELINE = "timeline"
POSTMORTEM = "postmortem"
# A step that ran more than this after its due time is listed as late.
LATE_AFTER = timedelta(minutes=1)


async def timeline_markdown(rt: Runtime, documents: Renderer, incident_id: int) -> str:
    return documents.render(TIMELINE, await _context(rt, incident_id))


async def postmortem_draft(rt: Runtime, documents: Renderer, incident_id: int) -> str:
    return documents.render(POSTMORTEM, await _context(rt, incident_id))


async def _context(rt: Runtime, incident_id: int) -> dict[str, Any]:
    view = await get_incident(rt, incident_id)
    return document_context(
        view.incident,
        timeline=view.timeline,
        history=view.history,
        follow_ups=view.follow_ups,
        now=rt.clock.now(),
    )


def document_context(
    incident: Incident,
    *,
    timeline: Sequence[TimelineEntry],
    history: Sequence[Occurrence],
    follow_ups: Sequence[FollowUp],
    now: datetime,
) -> dict[str, Any]:
    """The facts a document template may use (see `sample_document_context`)."""
    people: dict[str, Counter[str]] = {}
    for entry in timeline:
        if entry.actor != "playbook":
            people.setdefault(entry.actor, Counter())[entry.kind] += 1
    ran = [o for o in history if o.state.fired]
    late = [
        o
        for o in ran
        if o.state is OccurrenceState.DONE
        and o.started_at is not None
        and o.started_at - o.due_at > LATE_AFTER
    ]
    ended = incident.ended_at
    return {
        "incident": {
            **incident_facts(incident, now),
            "public_title": incident.public_title,
            "components": dict(incident.components),
        },
        "durations": {
            "to_acknowledge": _span(incident.declared_at, incident.acknowledged_at),
            "to_resolve": _span(incident.declared_at, incident.resolved_at),
            "open_for": _span(incident.declared_at, ended or now),
        },
        "timeline": [_entry(e) for e in timeline],
        "customer_updates": [_entry(e) for e in timeline if e.kind == "customer_update"],
        "status_page": [_entry(e) for e in timeline if e.kind == "status_page_update"],
        "notes": [_entry(e) for e in timeline if e.kind == "internal_note"],
        "people": [
            {"name": name, "entries": sum(kinds.values()), "kinds": dict(kinds)}
            for name, kinds in sorted(people.items(), key=lambda p: -sum(p[1].values()))
        ],
        "steps": {
            "ran": len([o for o in ran if o.state is OccurrenceState.DONE]),
            "late": [_step(o) for o in late],
            "failed": [_step(o) for o in ran if o.state is OccurrenceState.FAILED],
            "skipped": [_step(o) for o in ran if o.state is OccurrenceState.SKIPPED],
        },
        "follow_ups": [
            {
                "ref": f.ref,
                "title": f.title,
                "owner": f.owner,
                "due_at": f.due_at,
                "done_at": f.done_at,
            }
            for f in follow_ups
        ],
        "now": now,
    }


def _span(start: datetime, end: datetime | None) -> timedelta | None:
    return end - start if end is not None else None


def _entry(entry: TimelineEntry) -> Mapping[str, Any]:
    return {
        "at": entry.at,
        "actor": entry.actor,
        "kind": entry.kind,
        "text": entry.text,
        "public": entry.public,
        "step": entry.step_id,
    }


def _step(o: Occurrence) -> Mapping[str, Any]:
    return {
        "step": o.step_id,
        "occurrence": o.occurrence,
        "due_at": o.due_at,
        "started_at": o.started_at,
        "late_by": o.started_at - o.due_at if o.started_at is not None else None,
        "outcome": o.outcome or "",
        "error": o.last_error or "",
    }
