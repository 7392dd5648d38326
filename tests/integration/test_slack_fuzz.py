"""Hypothesis against `/incident` of a real `incident serve`, signed as Slack signs.

Whatever text people type after a command, with any characters in any amount: no answer is
a 5xx, and what was accepted is stored within the API's own limits (the same rule for
every field, whichever door it came through: incident/domain/text.py). The support case
commands (`/incident case ...`) too: no 5xx, and no traceback in the server's log (checked
as it stops). `SLACK_FUZZ_EXAMPLES` (default 60) sets the examples of each.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from incident.domain import text as rules
from tests.served_process import incident_serve

SECRET = "5f0c2b1e9d8a7c6b5a4f3e2d1c0b9a8f"
EXAMPLES = int(os.environ.get("SLACK_FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
)
LINE = re.compile(rules.LINE_PATTERN)
TEXT = re.compile(rules.TEXT_PATTERN)
INVOCATIONS = count()


@dataclass(frozen=True)
class Served:
    url: str
    database: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    database = tmp_path_factory.mktemp("slack-fuzz") / "fuzz.db"
    settings = {
        "INCIDENT_SLACK_SIGNING_SECRET": SECRET,
        "INCIDENT_SLACK_ROLES": "U0FUZZADMIN:admin",
    }
    with incident_serve(database, settings) as url:
        yield Served(url, database)


def command(served: Served, text: str) -> httpx.Response:
    body = urlencode(
        {
            "team_id": "T0FUZZ",
            "user_id": "U0FUZZADMIN",
            "user_name": "fuzz",
            "channel_id": "C0FUZZ",
            "channel_name": "general",
            "command": "/incident",
            "text": text,
            "trigger_id": f"1.{next(INVOCATIONS)}.abc",
        }
    ).encode()
    stamp = str(int(time.time()))
    signature = hmac.new(SECRET.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256)
    return httpx.post(
        f"{served.url}/slack/commands",
        content=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": "v0=" + signature.hexdigest(),
        },
        timeout=10,
    )


def stored_within_the_apis_limits(database: Path) -> None:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        for title, service, impact, public_title in db.execute(
            "SELECT title, service, impact, public_title FROM incidents"
        ):
            assert LINE.match(title) and 0 < len(title) <= rules.TITLE.max_length, title
            assert LINE.match(service) and len(service) <= rules.SERVICE.max_length
            assert TEXT.match(impact) and len(impact) <= rules.IMPACT.max_length
            assert public_title is None or LINE.match(public_title)
        for kind, text in db.execute("SELECT kind, text FROM timeline WHERE actor != 'playbook'"):
            assert TEXT.match(text), (kind, text[:100])
            if kind in ("customer_update", "internal_note"):
                assert len(text) <= rules.MESSAGE.max_length, (kind, len(text))
        for reference, customer_id, summary in db.execute(
            "SELECT reference, customer_id, summary FROM cases"
        ):
            assert LINE.match(reference) and 0 < len(reference) <= 100, reference
            assert LINE.match(customer_id) and 0 < len(customer_id) <= 100, customer_id
            assert TEXT.match(summary) and 0 < len(summary.strip()) <= 2000, summary[:100]
        for kind, text in db.execute("SELECT kind, text FROM case_timeline"):
            assert TEXT.match(text), (kind, text[:100])


# Text people might type: any characters (controls, bidi overrides, Slack's own markup),
# short or far too long.
typed = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=4990, max_size=5200),
    st.sampled_from(["<!channel> now", "a\x1b[31mb", "x\u202ey", "line\nbreak", "\u0085"]),
)
commands = st.sampled_from(
    [
        "declare P2 {}",
        "update INC-1 {}",
        "note INC-1 {}",
        "status INC-1 identified {}",
        "severity INC-1 P1 {}",
        "title INC-1 {}",
        "impact INC-1 {}",
        "service INC-1 {}",
        "ic INC-1 {}",
        "followup INC-1 {} owner:sam due:+7d",
    ]
)


# The case commands, on case 1 (opened first) and around it.
case_commands = st.sampled_from(
    [
        "case {}",
        "case open {}",
        "case open ZD-2 cust-1 pro {}",
        "case open ZD-3 {} enterprise Withdrawal stuck",
        "case open ZD-4 cust-1 pro Stuck priority: {} flags: legal_threat",
        "case show {}",
        "case list {}",
        "case set 1 {}",
        "case set 1 actions_taken: {}",
        "case set 1 flags: {}",
        "case set 1 tx: evm {} 2026-03-01T10:00Z",
        "case set 1 email: {} contacts: 2",
        "case note 1 {}",
        "case sent 1 {}",
        "case escalate 1 {}",
        "case escalate 1 tier_2 {}",
        "case escalate 1 tier_3 stuck override: {}",
        "case escalate 1 ceo stuck urgent: {}",
        "case confirm {}",
        "case deescalate 1 tier_1 premature {}",
        "case deescalate 1 {}",
        "case approve 1 cio {}",
        "case decline 1 {}",
        "case resolve 5 {}",
    ]
)


def test_the_first_incident_exists(served: Served) -> None:
    answer = command(served, "declare P2 Checkout slow")
    assert answer.status_code == 200, answer.text


def test_the_first_case_exists(served: Served) -> None:
    answer = command(served, "case open ZD-1 cust-1 pro Withdrawal not received crypto: yes")
    assert answer.status_code == 200, answer.text
    assert "*CASE-1* opened" in answer.json()["text"]


@FUZZ
@given(template=commands, text=typed)
def test_what_slack_accepts_is_stored_within_the_apis_limits(
    served: Served, template: str, text: str
) -> None:
    if not (served.database.exists() and command_count(served) > 0):
        command(served, "declare P2 Checkout slow")
    answer = command(served, template.format(text))
    assert answer.status_code == 200, answer.text
    assert set(answer.json()) >= {"text"}
    stored_within_the_apis_limits(served.database)


@FUZZ
@given(template=case_commands, text=typed)
def test_case_commands_never_fail_and_store_within_the_apis_limits(
    served: Served, template: str, text: str
) -> None:
    answer = command(served, template.format(text))
    assert answer.status_code == 200, answer.text
    reply = answer.json()
    assert reply["response_type"] in ("ephemeral", "in_channel") and reply["text"]
    assert "Something went wrong" not in reply["text"], reply["text"]
    stored_within_the_apis_limits(served.database)


def command_count(served: Served) -> int:
    with sqlite3.connect(f"file:{served.database}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT count(*) FROM incidents").fetchone()[0])
