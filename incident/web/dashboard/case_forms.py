"""The support-case forms of the dashboard as the bodies of the API's requests, checked by
the API's own request models (`incident.web.case_schemas`): a form accepts exactly what the
API accepts, every refused field named. The domain input is then built as the API builds
it (`new_case`, `case_change`), so a case's context is checked by the domain's one rule.

The update form takes the escalation context as a JSON object in a text area (the API's
`context`, merged into the case's): its fields hold lists of objects (transactions, wallet
addresses, evidence) that plain fields would not carry.
"""

from __future__ import annotations

import json

from incident.domain.errors import InvalidValue
from incident.web import case_schemas as cs
from incident.web.dashboard.forms import Form, checked

YES = "yes"  # what a ticked checkbox of these forms sends
# The whole number fields are given as numbers (the models take no text for them).
_MOST_DIGITS = 9
_AMOUNTS = ("disputed_amount", "csr", "usdt_amount")
_LABELS = ("category", "component")


def present(form: Form, *names: str) -> dict[str, object]:
    """The fields filled in; one left empty is left out (the API's default applies, or the
    case keeps what it has)."""
    return {name: form.get(name).strip() for name in names if form.get(name).strip()}


def _whole(form: Form, name: str) -> dict[str, object]:
    """A whole number as JSON takes it; anything else as typed, refused by the model."""
    text = form.get(name).strip()
    if not text:
        return {}
    value: object = int(text) if text.isdigit() and len(text) <= _MOST_DIGITS else text
    return {name: value}


def opening(form: Form) -> cs.OpenCaseRequest:
    data: dict[str, object] = {name: form.get(name) for name in ("reference", "customer_id")}
    data["summary"] = form.get("summary")
    data.update(present(form, "plan", "priority", "customer_email", *_AMOUNTS, *_LABELS))
    data.update(_whole(form, "contacts"))
    data["flags"] = form.every("flags")
    data["crypto"] = form.get("crypto") == YES
    return checked(cs.OpenCaseRequest, data)


def changing(form: Form) -> cs.UpdateCaseRequest:
    """The update form: the flags, the checklist and the crypto box are the whole set as
    ticked; a field left empty keeps the case's value."""
    data: dict[str, object] = {"summary": form.get("summary")} if form.has("summary") else {}
    data.update(present(form, "plan", "priority", "customer_email", *_AMOUNTS))
    data.update(_whole(form, "contacts"))
    data["flags"] = form.every("flags")
    data["checklist"] = form.every("checklist")
    data["crypto"] = form.get("crypto") == YES
    # Sent as they are when the form has them: emptied, they clear the case's.
    data.update({name: form.get(name) for name in _LABELS if form.has(name)})
    expected = form.utc_time("expected_resolution_at")
    if expected:
        data["expected_resolution_at"] = expected
    context = form.get("context").strip()
    if context:
        data["context"] = _json(context)
    return checked(cs.UpdateCaseRequest, data)


def _json(text: str) -> object:
    """The context text area's JSON (that it is an object, and what its fields hold, is the
    model's and the domain's to check)."""
    try:
        value: object = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidValue(
            "context",
            f"is not JSON ({error.msg} at line {error.lineno}, column {error.colno}); "
            'give an object like {"customer_plan": "pro", "previous_escalations": 0}',
        ) from None
    return value


def progress(form: Form) -> cs.ProgressRequest:
    return checked(
        cs.ProgressRequest,
        {"note": form.get("note"), "to_customer": form.get("to_customer") == YES},
    )


def escalation(form: Form) -> cs.EscalateRequest:
    data = {"reason": form.get("reason"), **present(form, "to", "urgency_note", "override")}
    if form.get("cannot_wait") == YES:
        data["urgency"] = "cannot_wait"
    return checked(cs.EscalateRequest, data)


def deescalation(form: Form) -> cs.DeescalateRequest:
    return checked(cs.DeescalateRequest, {"note": form.get("note"), **present(form, "to", "why")})


_VERDICTS = {"approve": True, "decline": False}


def decision(form: Form) -> cs.DecisionRequest:
    data: dict[str, object] = {"note": form.get("note"), **present(form, "level")}
    verdict = form.get("verdict")
    if verdict in _VERDICTS:
        data["approved"] = _VERDICTS[verdict]
    return checked(cs.DecisionRequest, data)


def resolution(form: Form) -> cs.ResolveCaseRequest:
    return checked(cs.ResolveCaseRequest, {"resolution": form.get("resolution")})


def linking(form: Form) -> cs.LinkCaseRequest:
    """The incident as people write it (INC-12, #12, 12), as the API takes it (its
    number), checked by the API's model."""
    return checked(cs.LinkCaseRequest, {"incident": form.incident_ref("incident")})
