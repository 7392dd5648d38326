"""What a case's step says, to whom: destinations from the ladder, the subject line (with
the receiving level's prefix: `[CIO Review] ...`), and the body rendered from the step's
template in `comms/cases/` with the variables every case template may use
(`case_template_context`; `sample_case_context` in adapters/files/case_samples.py is the same
shape, for `incident playbooks check` and the tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from incident.domain.case import Case, Escalation
from incident.domain.case_clocks import (
    AGENT,
    CURRENT_LEVEL,
    CUSTOMER,
    LEAD,
    NEXT,
    NEXT_LEAD,
    CaseAction,
    CaseStep,
    notice_of,
)
from incident.domain.case_ladder import Ladder
from incident.domain.case_routing import Level, Urgency
from incident.services.cases import CaseView
from incident.services.ports import Renderer

TEMPLATE_DIR = "cases"  # comms/cases/<template>.txt.j2
PROGRESS_KINDS = ("progress", "customer_update")


@dataclass(frozen=True)
class CaseMessage:
    audience: str
    destinations: tuple[str, ...]
    subject: str
    body: str


@dataclass(frozen=True)
class Recipient:
    audience: str
    destinations: tuple[str, ...]
    level: Level | None = None  # when the recipient is a level of the ladder


def recipient(step: CaseStep, case: Case, ladder: Ladder) -> Recipient:
    """Who `step.target` names for this case, and where they are reached."""
    target = step.target or CURRENT_LEVEL
    rung = ladder[case.level]
    current = case.current
    urgency = current.urgency if current is not None else Urgency.CAN_WAIT
    if target == CURRENT_LEVEL:
        return Recipient(case.level.value, ladder.destinations(case.level, urgency), case.level)
    if target == LEAD:
        return Recipient(f"{case.level.value} lead", rung.lead)
    if target in (NEXT, NEXT_LEAD):
        following = rung.next
        if following is None:  # the top of its ladder: its own lead answers for it
            return Recipient(f"{case.level.value} lead", rung.lead)
        next_rung = ladder[following]
        if target == NEXT:
            return Recipient(following.value, next_rung.contacts, following)
        return Recipient(f"{following.value} lead", next_rung.lead)
    if target == AGENT:
        return Recipient("agent", (_person(case.agent),))
    if target == CUSTOMER:
        where = (
            f"email:{case.customer_email}"
            if case.customer_email
            else f"customer:{case.customer_id}"
        )
        return Recipient("customer", (where,))
    if target in ladder.audiences:
        return Recipient(target, ladder.audiences[target])
    level = Level(target)
    return Recipient(level.value, ladder.destinations(level, Urgency.CAN_WAIT), level)


def _person(name: str) -> str:
    """A person named on the timeline: an e-mail address, or a chat handle."""
    return f"email:{name}" if "@" in name else f"chat:@{name}"


def message_for(
    step: CaseStep, view: CaseView, ladder: Ladder, renderer: Renderer, *, base_url: str
) -> CaseMessage:
    """The one message a notify or customer_update step sends: to its one recipient."""
    case = view.case
    to = recipient(step, case, ladder)
    assert step.template is not None  # checked when the playbook loads
    context = case_template_context(view, ladder, step=step, to=to, base_url=base_url)
    body = renderer.render(f"{TEMPLATE_DIR}/{step.template}", context)
    return CaseMessage(to.audience, to.destinations, _subject(step, case, ladder, to), body)


def _subject(step: CaseStep, case: Case, ladder: Ladder, to: Recipient) -> str:
    brief = " ".join(case.summary.split())
    brief = brief if len(brief) <= 80 else brief[:79] + "…"
    if step.action is CaseAction.CUSTOMER_UPDATE:
        # The summary is the agent's words (amounts, internal terms): customers see the
        # reference of their own ticket only.
        return f"Update on your request {case.reference}"
    prefix = ladder[to.level].subject_prefix if to.level is not None else ""
    what = step.description.rstrip(".")
    lead = f"{prefix} " if prefix else ""
    return f"{lead}{case.ref} {case.reference} [{case.priority.value}] {brief}: {what}"


def case_template_context(
    view: CaseView, ladder: Ladder, *, step: CaseStep, to: Recipient, base_url: str
) -> dict[str, Any]:
    """The variables every template in comms/cases/ may use."""
    case = view.case
    rung = ladder[case.level]
    notes = [e for e in view.timeline if e.kind in PROGRESS_KINDS][-5:]
    deescalations = [e for e in view.timeline if e.kind == "case_deescalated"]
    return {
        "case": _case(case, ladder),
        "escalation": _escalation(case.current, ladder) if case.current else None,
        "deescalation": (
            {
                "at": deescalations[-1].at,
                "by": deescalations[-1].actor,
                "text": deescalations[-1].text,
            }
            if deescalations
            else None
        ),
        "level": {"name": case.level.value, "title": rung.title, "method": rung.method.value},
        "recipient": {
            "audience": to.audience,
            "title": ladder[to.level].title if to.level is not None else to.audience,
        },
        "sla": {
            "state": view.sla.state.value,
            "due": view.sla.due,
            "used_percent": round(view.sla.used * 100),
        },
        "routes": [r.explain() for r in view.routes],
        "missing": [str(p) for p in view.missing],
        "approvals": {
            "required": [level.value for level in case.required_approvals],
            "missing": [level.value for level in case.approvals_missing],
            "given": [
                {
                    "level": a.level.value,
                    "by": a.by,
                    "at": a.at,
                    "approved": a.approved,
                    "note": a.note,
                }
                for a in case.approvals
            ],
        },
        "notes": [
            {"at": e.at, "actor": e.actor, "kind": e.kind, "text": e.text} for e in reversed(notes)
        ],
        "upcoming": [{"description": u.description, "due_at": u.due_at} for u in view.upcoming[:5]],
        "step": {"id": step.id, "description": step.description},
        "notice": _notice(case, step),
        "links": {"case": f"{base_url}/cases/{case.id}"},
    }


def _notice(case: Case, step: CaseStep) -> dict[str, Any] | None:
    """The linked incident's word a notice step sends (None for the playbook's steps)."""
    notice = notice_of(case, step.id)
    if notice is None:
        return None
    return {
        "number": notice.number,
        "kind": notice.kind.value,
        "incident": f"INC-{notice.incident_id}",
        "at": notice.at,
        "title": notice.title,
        "text": notice.text,
    }


def _case(case: Case, ladder: Ladder) -> dict[str, Any]:
    return {
        "ref": case.ref,
        "id": case.id,
        "reference": case.reference,
        "customer_id": case.customer_id,
        "customer_email": case.customer_email,
        "summary": case.summary,
        "plan": case.plan.value,
        "priority": case.priority.value,
        "status": case.status.value,
        "level": case.level.value,
        "level_title": ladder[case.level].title,
        "opened_at": case.opened_at,
        "opened_by": case.opened_by,
        "contacts": case.contacts,
        "disputed_amount": _amount(case.disputed_amount),
        "csr": _amount(case.csr),
        "usdt_amount": _amount(case.usdt_amount),
        "flags": sorted(f.value.replace("_", " ") for f in case.flags),
        "crypto": case.crypto,
        "context": dict(case.context),
        "checklist": sorted(c.value.replace("_", " ") for c in case.checklist),
        "expected_resolution_at": case.expected_resolution_at,
        "first_response_at": case.first_response_at,
        "resolved_at": case.resolved_at,
        "resolution": case.resolution,
        "category": case.category,
        "component": case.component,
        "incident": f"INC-{case.incident_id}" if case.incident_id is not None else None,
        "pending_since": case.pending_since,
    }


def _escalation(e: Escalation, ladder: Ladder) -> dict[str, Any]:
    return {
        "number": e.number,
        "from_level": e.from_level.value,
        "from_title": ladder[e.from_level].title,
        "to_level": e.to_level.value,
        "to_title": ladder[e.to_level].title,
        "at": e.at,
        "by": e.by,
        "reason": e.reason,
        "rule": e.rule,
        "urgency": e.urgency.value.replace("_", " "),
        "recommends_ceo": e.recommends_ceo,
        "urgency_note": e.urgency_note,
        "gate_override": e.gate_override,
        "confirmed_at": e.confirmed_at,
        "confirmed_by": e.confirmed_by,
    }


def _amount(value: object) -> str | None:
    return f"{value:,}" if value is not None else None
