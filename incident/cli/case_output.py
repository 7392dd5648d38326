"""What people read of support cases: the API's JSON as lines for a terminal.

The same rule as api_output.py: everything the server sends is data, never terminal
control (escaped by `safe_line` and `block`), and multi-line text stays one block.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from incident.cli.api_output import at, block, safe_line, timeline_entries, when

_LABEL = 14  # the width of the labels of `show`
_INDENT = " " * (_LABEL + 3)


def headline(case: Mapping[str, Any]) -> str:
    """`CASE-3 P2 open at cio: Withdrawal stuck`."""
    return (
        f"{safe_line(case['ref'])} {safe_line(case['priority'])} {safe_line(case['status'])} "
        f"at {safe_line(case['level'])}: {safe_line(case['summary'])}"
    )


def sla(clock: Mapping[str, Any]) -> str:
    """`warning, due 2030-05-01 12:00:00Z (in 1h), 80% used`; `none` where no clock runs
    (a level without a response time, a resolved case), whatever due time it was given."""
    text = safe_line(clock["state"])
    if text == "none":
        return "none (no response clock)"
    if clock.get("due"):
        text += f", due {when(clock['due'])}"
    return f"{text}, {safe_line(clock['used_percent'])}% used"


def problems(detail: object) -> list[str]:
    """A refusal's `[{field, problem}]`, one line each; [] when the detail is not such a
    list."""
    if not isinstance(detail, list) or not detail:
        return []
    if not all(isinstance(item, Mapping) and "field" in item for item in detail):
        return []
    return [f"  {safe_line(i['field'])}: {safe_line(i.get('problem', '?'))}" for i in detail]


def gate_hint(case_id: int) -> str:
    return (
        f"fill them in with `incident case update {case_id} --context KEY=TEXT ... "
        "[--checklist ITEM ...]` (KEY:=JSON for numbers and lists), or a manager escalates "
        "anyway with --override REASON"
    )


# --- changes -------------------------------------------------------------------------------


def changed(result: Mapping[str, Any], verb: str) -> str:
    """What a change did: the case, the server's notice, its clock, where the rules send it,
    what escalating still needs and its next steps."""
    case = result["case"]
    lines = [f"{verb}: {headline(case)}"]
    if result.get("notice"):
        lines.append(f"notice: {block(result['notice'], indent='        ')}")
    lines.append(f"  {'SLA':<{_LABEL}} {sla(result['sla'])}")
    lines += [f"  {'routing':<{_LABEL}} {route(r)}" for r in result["routes"]]
    lines += _decisions_waiting(case)
    if result.get("missing"):
        fields = ", ".join(safe_line(p["field"]) for p in result["missing"])
        lines.append(f"  {'still needed':<{_LABEL}} {fields} (to escalate to {_next(result)})")
    return "\n".join([*lines, "next steps:", *upcoming(result["upcoming"])])


def route(one: Mapping[str, Any]) -> str:
    """`CIO because: legal threat (automatic, cannot wait)`."""
    how = f"{safe_line(one['mode'])}, {safe_line(one['urgency']).replace('_', ' ')}"
    return f"{safe_line(one['explanation'])} ({how})"


def _next(result: Mapping[str, Any]) -> str:
    return safe_line(result.get("next_level") or "the next level")


def _decisions_waiting(case: Mapping[str, Any]) -> list[str]:
    if not case["approvals_missing"]:
        return []
    waiting = ", ".join(safe_line(level) for level in case["approvals_missing"])
    return [f"  {'waiting for':<{_LABEL}} the decision of {waiting}"]


def upcoming(steps: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per upcoming step: when it is due, its id and what it does."""
    if not steps:
        return ["  (no upcoming steps)"]
    return [_step_line(step) for step in steps]


def _step_line(step: Mapping[str, Any]) -> str:
    state = step.get("state", "pending")
    time = "sending now" if state == "running" else when(step["due_at"])
    if state == "held":
        time = f"held (due {time})"
    return f"  {time:<40} {safe_line(step['step_id']):<28} {safe_line(step['description'])}"


# --- the queue -----------------------------------------------------------------------------


def listing(result: Mapping[str, Any]) -> str:
    """The queue: ref, ticket, priority, level, the clock (state, due, % used), summary."""
    cases = result["cases"]
    if not cases:
        return "no cases"
    return "\n".join(_queue_line(item["case"], item["sla"]) for item in cases)


def _queue_line(case: Mapping[str, Any], clock: Mapping[str, Any]) -> str:
    state = safe_line(clock["state"])
    due, used = "-", "-"
    if state != "none":
        due = f"due {when(clock['due'])}" if clock.get("due") else "-"
        used = f"{safe_line(clock['used_percent'])}%"
    return (
        f"{safe_line(case['ref']):<9} {safe_line(case['reference']):<14} "
        f"{safe_line(case['priority'])}  {safe_line(case['level']):<25} "
        f"{state:<8} {due:<40} {used:>4}  {_marked(case)}{safe_line(case['summary'])}"
    )


def _marked(case: Mapping[str, Any]) -> str:
    """What sets a case that is not open apart in a queue: `[pending] `, `[resolved] `."""
    status = safe_line(case["status"])
    return "" if status == "open" else f"[{status}] "


def linked(result: Mapping[str, Any]) -> str:
    """An incident's linked cases: ref, ticket, customer, status, level; then how many
    distinct customers they are of."""
    cases = result["cases"]
    if not cases:
        return "no cases are linked to this incident"
    lines = [
        f"{safe_line(c['ref']):<9} {safe_line(c['reference']):<14} "
        f"{safe_line(c['customer_id']):<20} {safe_line(c['status']):<9} {safe_line(c['level'])}"
        for c in cases
    ]
    customers = int(result["customers"])
    lines.append(f"{customers} distinct customer{'' if customers == 1 else 's'} affected")
    return "\n".join(lines)


# --- one case ------------------------------------------------------------------------------


def show(result: Mapping[str, Any]) -> str:
    case = result["case"]
    lines = [headline(case), *_facts(case)]
    lines.append(_row("SLA", sla(result["sla"])))
    lines += ["routing:", *_routes(result["routes"])]
    if case["escalations"]:
        lines += ["escalations:", *(_escalation(e) for e in case["escalations"])]
    if case["required_approvals"] or case["approvals"]:
        lines += ["decisions:", *_decisions(case)]
    lines += _missing(result)
    lines += _context(case)
    lines += ["upcoming steps:", *upcoming(result["upcoming"])]
    lines += ["timeline:", *timeline_entries(result["timeline"])]
    return "\n".join(lines)


def _row(label: str, text: str) -> str:
    return f"  {label:<{_LABEL}} {text}"


def _facts(case: Mapping[str, Any]) -> list[str]:
    customer = safe_line(case["customer_id"])
    if case.get("customer_email"):
        customer += f" <{safe_line(case['customer_email'])}>"
    rows = [
        _row("ticket", safe_line(case["reference"])),
        _row("customer", customer),
        _row("plan", safe_line(case["plan"])),
        _row("opened", f"{when(case['opened_at'])} by {safe_line(case['opened_by'])}"),
        _row("contacts", safe_line(case["contacts"])),
    ]
    for label in ("category", "component"):
        if case.get(label):
            rows.append(_row(label, safe_line(case[label])))
    rows += _link(case)
    if case["flags"]:
        rows.append(_row("flags", ", ".join(safe_line(f) for f in case["flags"])))
    if case["crypto"]:
        rows.append(_row("crypto", "yes"))
    for label, key in (("disputed", "disputed_amount"), ("CSR", "csr"), ("USDT", "usdt_amount")):
        if case.get(key) is not None:
            rows.append(_row(label, safe_line(case[key]) + (" EUR" if label == "disputed" else "")))
    rows += _times(case)
    return rows


def _link(case: Mapping[str, Any]) -> list[str]:
    """The linked incident, and a case waiting for its customer's confirmation."""
    rows = []
    incident = case.get("incident")
    if incident:
        rows.append(
            _row("incident", f"{safe_line(incident['ref'])} (linked {when(case['linked_at'])})")
        )
    if case.get("pending_since"):
        since = when(case["pending_since"])
        rows.append(_row("pending", f"waiting for the customer's confirmation since {since}"))
    return rows


def _times(case: Mapping[str, Any]) -> list[str]:
    rows = [
        _row(label, when(case[key]))
        for label, key in (
            ("at level since", "level_entered_at"),
            ("first response", "first_response_at"),
            ("last progress", "last_progress_at"),
            ("customer told", "last_customer_update_at"),
            ("expected by", "expected_resolution_at"),
        )
        if case.get(key)
    ]
    if case.get("resolved_at"):
        resolution = block(case.get("resolution") or "", indent=_INDENT)
        rows.append(_row("resolved", f"{when(case['resolved_at'])}: {resolution}"))
    return rows


def _routes(routes: Sequence[Mapping[str, Any]]) -> list[str]:
    if not routes:
        return ["  (no rule calls for another level)"]
    return [f"  {route(r)}" for r in routes]


def _escalation(one: Mapping[str, Any]) -> str:
    """`#1 2030-... tier_1 -> cio by routing, cannot wait: legal threat (rule); receipt ...`."""
    text = (
        f"  #{safe_line(one['number'])} {at(one['at'])}  {safe_line(one['from_level'])} -> "
        f"{safe_line(one['to_level'])} by {safe_line(one['by'])}, "
        f"{safe_line(one['urgency']).replace('_', ' ')}: {safe_line(one['reason'])} "
        f"[{safe_line(one['rule'])}]"
    )
    if one.get("recommends_ceo"):
        text += " (recommending the CEO)"
    if one.get("gate_override"):
        text += f" (gate overridden: {safe_line(one['gate_override'])})"
    if one.get("confirmed_at"):
        return text + f"; received by {safe_line(one['confirmed_by'])} {at(one['confirmed_at'])}"
    return text + "; receipt not confirmed"


def _decisions(case: Mapping[str, Any]) -> list[str]:
    lines = []
    if case["required_approvals"]:
        needed = ", ".join(safe_line(level) for level in case["required_approvals"])
        missing = ", ".join(safe_line(level) for level in case["approvals_missing"]) or "none"
        lines.append(f"  needed from {needed}; still waiting for {missing}")
    for one in case["approvals"]:
        verdict = "approved" if one["approved"] else "declined"
        lines.append(
            f"  {safe_line(one['level'])} {verdict} by {safe_line(one['by'])} {at(one['at'])}: "
            + block(one["note"], indent="    ")
        )
    return lines


def _missing(result: Mapping[str, Any]) -> list[str]:
    """The context checklist: what escalating to the next level still needs."""
    if not result.get("next_level"):
        return []
    if not result["missing"]:
        return [f"escalating to {_next(result)}: nothing missing"]
    return [f"escalating to {_next(result)} still needs:", *problems(result["missing"])]


def _context(case: Mapping[str, Any]) -> list[str]:
    lines = []
    if case["checklist"]:
        lines.append("checklist: " + ", ".join(safe_line(item) for item in case["checklist"]))
    if case["context"]:
        width = max(len(safe_line(key)) for key in case["context"])
        lines.append("context:")
        lines += [
            f"  {safe_line(key):<{width}} {_value(value, indent=' ' * (width + 3))}"
            for key, value in case["context"].items()
        ]
    return lines


def _value(value: object, *, indent: str) -> str:
    """Text as a block; numbers, lists and objects (transactions, addresses) as compact
    JSON, which escapes every control character."""
    if isinstance(value, str):
        return block(value, indent=indent)
    return json.dumps(value, separators=(", ", ": "))
