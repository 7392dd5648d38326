"""The CLI's words for incident candidates: a candidate named as people write it, and
what the server sends shown as data, never as terminal control."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from incident.cli import candidate_output as out
from incident.cli.candidate_commands import candidate_id


@pytest.mark.parametrize(
    ("text", "number"), [("CAND-7", 7), ("cand-7", 7), (" 7 ", 7), ("#12", 12)]
)
def test_a_candidate_is_named_as_the_patterns_channel_names_it(text: str, number: int) -> None:
    assert candidate_id(text) == number


@pytest.mark.parametrize("text", ["CASE-7", "INC-7", "0", "", "CAND-", "7.5", "9" * 17])
def test_anything_else_is_not_a_candidate(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="is not an incident candidate"):
        candidate_id(text)


def detail(**changes: Any) -> dict[str, Any]:
    candidate = {
        "id": 3,
        "ref": "CAND-3",
        "status": "dismissed",
        "proposed_at": "2026-03-02T09:00:00+00:00",
        "severity": "P2",
        "reason": "affects multiple users (3 customers)",
        "customers": 3,
        "weighted": 6.0,
        "decided_by": "alice",
        "decided_at": "2026-03-02T09:30:00+00:00",
        "note": "Known\x1b[2J issue\nsecond line",
        "incident": None,
    }
    body = {
        "candidate": candidate,
        "signature": {
            "text": "bridge \x1b]0;pwned\x07 stuck",
            "category": "transfers",
            "component": "bridge\u202e",
            "error_codes": ["E1042"],
        },
        "new": False,
        "first_seen": "2026-03-02T09:00:00+00:00",
        "last_seen": "2026-03-02T09:10:00+00:00",
        "cases": [
            {
                "id": 1,
                "ref": "CASE-1",
                "reference": "ZD-1",
                "customer_id": "cust\x1b-1",
                "plan": "pro",
                "status": "open",
                "incident": {"id": 4, "ref": "INC-4"},
                "joined_at": "2026-03-02T09:00:00+00:00",
            }
        ],
        "customers": 1,
        "page": "http://127.0.0.1:8080/ui/candidates/3",
    }
    body.update(changes)
    return body


def test_what_the_server_sends_is_shown_escaped() -> None:
    shown = out.show(detail())
    assert "\x1b" not in shown and "\u202e" not in shown and "\x07" not in shown
    assert "bridge \\x1b]0;pwned\\x07 stuck" in shown
    assert "  where          transfers / bridge\\u202e" in shown
    assert "  error codes    E1042" in shown
    assert "  new " not in shown  # only a new signature says so
    # The dismissal's reason: one block, its second line indented under the first.
    assert "Known\\x1b[2J issue\n                 second line" in shown
    assert "  CASE-1    ZD-1           cust\\x1b-1" in shown and shown.endswith("open -> INC-4")


def test_the_list_says_where_each_went() -> None:
    declared = {
        **detail()["candidate"],
        "status": "declared",
        "incident": {"id": 4, "ref": "INC-4"},
    }
    listing = out.listing({"candidates": [declared]})
    assert listing.startswith(
        "CAND-3    declared  P2    3 customers  proposed 2026-03-02 09:00:00Z"
    )
    assert listing.endswith(" -> INC-4")
    assert out.listing({"candidates": []}) == "no incident candidates"
