"""Hypothesis against `/incident` of a real `incident serve`, signed as Slack signs.

Whatever text people type after a command, with any characters in any amount: no answer is
a 5xx, and what was accepted is stored within the API's own limits (the same rule for
every field, whichever door it came through: incident/domain/text.py). `SLACK_FUZZ_EXAMPLES`
(default 60) sets the examples.
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


def test_the_first_incident_exists(served: Served) -> None:
    answer = command(served, "declare P2 Checkout slow")
    assert answer.status_code == 200, answer.text


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


def command_count(served: Served) -> int:
    with sqlite3.connect(f"file:{served.database}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT count(*) FROM incidents").fetchone()[0])
