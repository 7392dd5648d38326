"""What people read of incident candidates: the API's JSON as lines for a terminal.

The same rule as api_output.py: everything the server sends is data, never terminal
control (escaped by `safe_line` and `block`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from incident.cli.api_output import block, safe_line, when

_LABEL = 14  # the width of the labels of `show`
_INDENT = " " * (_LABEL + 3)


def headline(candidate: Mapping[str, Any]) -> str:
    """`CAND-3 proposed: suggested P2, 3 customers (weighted 6.0)`."""
    return (
        f"{safe_line(candidate['ref'])} {safe_line(candidate['status'])}: suggested "
        f"{safe_line(candidate['severity'])}, {safe_line(candidate['customers'])} customers "
        f"(weighted {safe_line(candidate['weighted'])})"
    )


def decision(candidate: Mapping[str, Any]) -> str:
    """How it was decided, by whom and when; `waiting for a decision` while proposed."""
    status = candidate["status"]
    if status == "proposed":
        return "waiting for a decision"
    by = f" by {safe_line(candidate['decided_by'])}" if candidate.get("decided_by") else ""
    moment = f" {when(candidate['decided_at'])}" if candidate.get("decided_at") else ""
    if status == "declared" and candidate.get("incident"):
        return f"declared as {safe_line(candidate['incident']['ref'])}{by}{moment}"
    reason = candidate.get("note") or ""
    return f"{safe_line(status)}{by}{moment}: {block(reason, indent=_INDENT)}"


# --- the list ------------------------------------------------------------------------------


def listing(result: Mapping[str, Any]) -> str:
    candidates: Sequence[Mapping[str, Any]] = result["candidates"]
    if not candidates:
        return "no incident candidates"
    return "\n".join(_line(c) for c in candidates)


def _line(candidate: Mapping[str, Any]) -> str:
    decided = ""
    if candidate["status"] == "declared" and candidate.get("incident"):
        decided = f" -> {safe_line(candidate['incident']['ref'])}"
    return (
        f"{safe_line(candidate['ref']):<9} {safe_line(candidate['status']):<10}"
        f"{safe_line(candidate['severity'])}  {safe_line(candidate['customers']):>3} customers  "
        f"proposed {when(candidate['proposed_at'])}{decided}"
    )


# --- one candidate -------------------------------------------------------------------------


def show(result: Mapping[str, Any]) -> str:
    candidate, signature = result["candidate"], result["signature"]
    customers = int(result["customers"])
    where = " / ".join(safe_line(part) for part in (signature["category"], signature["component"]))
    rows = [
        headline(candidate),
        _row("signature", block(signature["text"], indent=_INDENT)),
        _row("where", where if where.strip(" /") else "-"),
    ]
    if signature["error_codes"]:
        rows.append(_row("error codes", ", ".join(safe_line(c) for c in signature["error_codes"])))
    if result["new"]:
        rows.append(_row("new", "not seen in the novelty window before"))
    rows += [
        _row("suggested", f"{safe_line(candidate['severity'])}: {safe_line(candidate['reason'])}"),
        _row("customers", f"{customers} distinct in {len(result['cases'])} cases"),
        _row("first seen", when(result["first_seen"])),
        _row("last seen", when(result["last_seen"])),
        _row("decision", decision(candidate)),
        _row("page", safe_line(result["page"])),
        "cases:",
        *(_case(case) for case in result["cases"]),
    ]
    return "\n".join(rows)


def _row(label: str, text: str) -> str:
    return f"  {label:<{_LABEL}} {text}"


def _case(case: Mapping[str, Any]) -> str:
    linked = f" -> {safe_line(case['incident']['ref'])}" if case.get("incident") else ""
    return (
        f"  {safe_line(case['ref']):<9} {safe_line(case['reference']):<14} "
        f"{safe_line(case['customer_id']):<20} {safe_line(case['plan']):<11}"
        f"{safe_line(case['status'])}{linked}"
    )


# --- changes -------------------------------------------------------------------------------


def declared(result: Mapping[str, Any]) -> str:
    candidate, incident = result["candidate"], result["incident"]
    ref = safe_line(incident["ref"])
    how = "declared as" if result["created"] else "linked to"
    return (
        f"{safe_line(candidate['ref'])} {how} {ref}: each of its cases is linked to {ref}, "
        "so its customer hears the incident's updates\n"
        f"  `incident show {safe_line(incident['id'])}` shows the incident"
    )


def dismissed(result: Mapping[str, Any]) -> str:
    candidate = result["candidate"]
    return f"{safe_line(candidate['ref'])} {decision(candidate)}"
