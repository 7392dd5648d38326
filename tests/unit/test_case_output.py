"""What `incident case ...` prints of the server's JSON: routing explanations, the context
checklist, refusals one field a line, and never a control a terminal would obey."""

from __future__ import annotations

import re
from typing import Any

from incident.cli.case_output import changed, listing, problems, show

RAW_CONTROLS = re.compile("[\x1b\x80-\x9f\u202a-\u202e\u2066-\u2069]")
HOSTILE = "x\x1b[2J\u202eevil\u202c\x9b31m"


def detail(**changes: Any) -> dict[str, Any]:
    case = {
        "id": 3,
        "ref": "CASE-3",
        "reference": "ZD-1",
        "customer_id": "cust-1",
        "customer_email": None,
        "summary": "Lawyer letter",
        "plan": "pro",
        "priority": "P2",
        "status": "open",
        "level": "cio",
        "level_entered_at": "2030-01-01T10:00:00Z",
        "opened_at": "2030-01-01T10:00:00Z",
        "opened_by": "alice",
        "contacts": 1,
        "disputed_amount": None,
        "csr": None,
        "usdt_amount": "2500",
        "flags": ["legal_threat"],
        "crypto": False,
        "context": {"actions_taken": "Called", "previous_escalations": 0},
        "checklist": ["documented"],
        "escalations": [],
        "approvals": [],
        "required_approvals": ["cio", "ceo"],
        "approvals_missing": ["ceo"],
        "first_response_at": None,
        "last_progress_at": None,
        "last_customer_update_at": None,
        "expected_resolution_at": None,
        "resolved_at": None,
        "resolution": None,
    }
    result: dict[str, Any] = {
        "case": case,
        "sla": {"state": "warning", "due": "2030-01-01T14:00:00Z", "used_percent": 80},
        "routes": [
            {
                "level": "cio",
                "mode": "automatic",
                "urgency": "cannot_wait",
                "explanation": "CIO because: legal threat",
                "recommends_ceo": False,
                "approvals": [],
            }
        ],
        "upcoming": [],
        "next_level": "c_level",
        "missing": [
            {"field": "reason", "problem": "missing: give the reason for escalating"},
            {"field": "evidence", "problem": "missing: give the evidence"},
        ],
        "timeline": [],
        "notice": None,
    }
    for name, value in changes.items():
        (case if name in case else result)[name] = value
    return result


def test_show_explains_the_routing_and_what_escalating_still_needs() -> None:
    lines = show(detail()).splitlines()
    assert lines[0] == "CASE-3 P2 open at cio: Lawyer letter"
    at = lines.index("routing:")
    assert lines[at + 1] == "  CIO because: legal threat (automatic, cannot wait)"
    at = lines.index("escalating to c_level still needs:")
    assert lines[at + 1 : at + 3] == [
        "  reason: missing: give the reason for escalating",
        "  evidence: missing: give the evidence",
    ]
    assert "  needed from cio, ceo; still waiting for ceo" in lines
    assert "  previous_escalations 0" in lines
    assert "escalating to c_level: nothing missing" in show(detail(missing=[]))
    assert "  SLA            warning, due 2030-01-01 14:00:00Z (" in show(detail())


def test_a_change_prints_the_servers_notice() -> None:
    text = changed(detail(notice="The CEO is reached only through the CIO."), "escalated")
    assert text.splitlines()[:2] == [
        "escalated: CASE-3 P2 open at cio: Lawyer letter",
        "notice: The CEO is reached only through the CIO.",
    ]
    assert "notice" not in changed(detail(), "escalated")


def test_refusals_name_one_field_a_line() -> None:
    assert problems(
        [{"field": "transactions", "problem": "missing"}, {"field": "a", "problem": "b"}]
    ) == [
        "  transactions: missing",
        "  a: b",
    ]
    assert problems("not a list") == problems([]) == problems(["x"]) == []


def test_server_text_never_drives_the_terminal() -> None:
    hostile = detail(
        summary=HOSTILE,
        customer_id=HOSTILE,
        flags=[HOSTILE],
        context={HOSTILE: HOSTILE, "evidence": [HOSTILE]},
        missing=[{"field": HOSTILE, "problem": HOSTILE}],
        notice=HOSTILE,
        routes=[
            {"level": "cio", "mode": "automatic", "urgency": "can_wait", "explanation": HOSTILE}
        ],
    )
    for text in (show(hostile), changed(hostile, "opened"), *problems(hostile["missing"])):
        assert not RAW_CONTROLS.search(text), text
        assert "x\\x1b[2J\\u202eevil\\u202c\\x9b31m" in text
    queue = listing({"cases": [{"case": hostile["case"], "sla": hostile["sla"]}]})
    assert not RAW_CONTROLS.search(queue)
    assert listing({"cases": []}) == "no cases"
