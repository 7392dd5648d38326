"""Hypothesis against the alert webhooks of a real `incident serve`.

Generated and mutated bodies, valid and not: no response is a 5xx, every refusal is a 4xx
with `{"error", "detail"}` and leaves the database as it was, and every well-formed payload
is accepted. `WEBHOOK_FUZZ_EXAMPLES` (default 60) sets the examples per test.
"""

from __future__ import annotations

import copy
import json
import os
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from incident.domain import text as rules
from tests.served_process import incident_serve

TOKEN = "fuzz-alertmanager-token-0123"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "alerts"
EXAMPLES = int(os.environ.get("WEBHOOK_FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)


@dataclass(frozen=True)
class Served:
    url: str
    database: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    database = tmp_path_factory.mktemp("webhook-fuzz") / "fuzz.db"
    settings = {
        "INCIDENT_API_TOKENS": f"{TOKEN}:responder:alertmanager",
        "INCIDENT_BASE_URL": "http://127.0.0.1:{port}",
        "INCIDENT_MAX_BODY_BYTES": "65536",
    }
    with incident_serve(database, settings) as url:
        yield Served(url, database)


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10) as client:
        yield client


def snapshot(database: Path) -> tuple[Any, ...]:
    """What only webhooks write: incidents, alert groups, alert timeline entries. (The
    scheduler keeps running steps of earlier incidents meanwhile; it writes none of these.)"""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        return (
            db.execute("SELECT count(*), max(id) FROM incidents").fetchone(),
            db.execute(
                "SELECT count(*), group_concat(id || ':' || updated_at || ':' || alerts, '|') "
                "FROM alert_groups"
            ).fetchone(),
            db.execute(
                "SELECT count(*) FROM timeline WHERE kind LIKE 'alert%' OR kind = 'declared'"
            ).fetchone(),
        )


def send(served: Served, http: httpx.Client, path: str, **request: Any) -> httpx.Response:
    before = snapshot(served.database)
    response = http.post(served.url + path, **request)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error", "detail"}, body
        assert body["error"] and body["detail"]
        assert snapshot(served.database) == before, "a refused request changed the database"
    else:
        stored_within_the_apis_limits(served.database)
    return response


LINE = re.compile(rules.LINE_PATTERN)
TEXT = re.compile(rules.TEXT_PATTERN)


def stored_within_the_apis_limits(database: Path) -> None:
    """What an accepted alert stored keeps the rules a person's input must keep: the
    incident's fields as the API would accept them, and alert timeline entries clean and
    bounded (a huge label is shortened, never stored whole)."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        for title, service, impact in db.execute("SELECT title, service, impact FROM incidents"):
            assert LINE.match(title) and 0 < len(title) <= rules.TITLE.max_length, title
            assert LINE.match(service) and len(service) <= rules.SERVICE.max_length, service
            assert TEXT.match(impact) and len(impact) <= rules.IMPACT.max_length, impact
        for (text,) in db.execute(
            "SELECT text FROM timeline WHERE kind LIKE 'alert%' OR kind = 'declared'"
        ):
            assert TEXT.match(text) and len(text) <= 5000, text[:200]


# --- strategies ----------------------------------------------------------------------------

text = st.text(max_size=30)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=12,
)
labels = st.dictionaries(st.text(min_size=1, max_size=15), st.text(max_size=40), max_size=6)
status = st.sampled_from(["firing", "resolved"])


@st.composite
def alert(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {
        "status": draw(status),
        "labels": draw(labels),
        "annotations": draw(labels),
        "startsAt": draw(st.sampled_from(["2026-03-02T09:00:00.123456789Z", "", "garbage"])),
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": draw(text),
        "fingerprint": draw(st.text(max_size=16)),
    }
    for key in draw(st.lists(st.sampled_from(sorted(body)), max_size=3)):
        if key not in ("status", "labels"):
            body.pop(key, None)  # optional fields may be missing
    body.update(draw(st.dictionaries(st.sampled_from(["values", "x-extra"]), json_values)))
    return body


@st.composite
def payload(draw: st.DrawFn, version: str) -> dict[str, Any]:
    alerts = draw(st.lists(alert(), min_size=1, max_size=5))
    body: dict[str, Any] = {
        "version": version,
        "groupKey": draw(st.text(min_size=1, max_size=60)),
        "status": draw(status),
        "receiver": draw(text),
        "alerts": alerts,
        "groupLabels": draw(labels),
        "commonLabels": draw(labels),
        "commonAnnotations": draw(labels),
        "externalURL": draw(text),
        "truncatedAlerts": draw(st.integers(min_value=0, max_value=10**6)),
    }
    if version == "1" and draw(st.booleans()):
        del body["groupKey"]
    body.update(
        draw(st.dictionaries(st.sampled_from(["routeLabels", "orgId2", "zz"]), json_values))
    )
    return body


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths(child, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    """A valid fixture with one to three of its values replaced or removed."""
    name = draw(st.sampled_from(["alertmanager-firing", "alertmanager-resolved"]))
    body: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    body["groupKey"] = draw(st.text(min_size=1, max_size=20))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        where = draw(st.sampled_from(paths(body)))
        parent: Any = body
        for part in where[:-1]:
            parent = parent[part]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[where[-1]]
        else:
            parent[where[-1]] = draw(json_values)
        if not paths(body):
            break
    return body


# --- tests ---------------------------------------------------------------------------------


@FUZZ
@given(body=payload("4"))
def test_well_formed_alertmanager_payloads_are_accepted(
    served: Served, http: httpx.Client, body: dict[str, Any]
) -> None:
    response = send(served, http, "/webhooks/alertmanager", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["result"] in ("created", "updated", "resolved", "recorded", "ignored")
    if any(a["status"] == "firing" for a in body["alerts"]) or body["status"] == "firing":
        assert answer["incident"] is not None


@FUZZ
@given(body=payload("1"))
def test_well_formed_grafana_payloads_are_accepted(
    served: Served, http: httpx.Client, body: dict[str, Any]
) -> None:
    response = send(served, http, "/webhooks/grafana", json=body)
    assert response.status_code == 200, response.text


@FUZZ
@given(body=mutated())
def test_mutated_payloads_never_fail_and_refusals_store_nothing(
    served: Served, http: httpx.Client, body: dict[str, Any]
) -> None:
    send(served, http, "/webhooks/alertmanager", json=body)


@FUZZ
@given(body=json_values, path=st.sampled_from(["/webhooks/alertmanager", "/webhooks/grafana"]))
def test_arbitrary_json_is_refused_cleanly(
    served: Served, http: httpx.Client, body: Any, path: str
) -> None:
    response = send(served, http, path, json=body)
    assert response.status_code in (400, 422), response.text


@FUZZ
@given(
    data=st.binary(max_size=200),
    content_type=st.sampled_from(
        ["application/json", "text/plain", "", "application/x-www-form-urlencoded"]
    ),
)
def test_arbitrary_bytes_are_refused_cleanly(
    served: Served, http: httpx.Client, data: bytes, content_type: str
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = send(served, http, "/webhooks/alertmanager", content=data, headers=headers)
    assert 400 <= response.status_code < 500


def test_hostile_labels_are_cleaned_and_shortened_not_stored_raw(
    served: Served, http: httpx.Client
) -> None:
    body = json.loads((FIXTURES / "alertmanager-firing.json").read_text())
    body["groupKey"] = "hostile-labels"
    hostile = "Disk\x00full\x1b[31m\u0085 on\u202e db-7\nnow "
    body["commonLabels"]["alertname"] = hostile + "x" * 30_000  # (the body limit is 64 KB)
    body["commonLabels"]["service"] = "check\u2066out\r\n"
    for alert in body["alerts"]:
        alert["labels"]["alertname"] = hostile + "y" * 6_000
        alert["labels"]["service"] = "check\u2066out\r\n"
        alert["annotations"]["summary"] = "\u009b" + "z" * 3_000
    answer = send(served, http, "/webhooks/alertmanager", json=body).json()
    assert answer["result"] == "created"
    with sqlite3.connect(f"file:{served.database}?mode=ro", uri=True) as db:
        title, service = db.execute(
            "SELECT title, service FROM incidents WHERE id = ?", (answer["incident"]["id"],)
        ).fetchone()
        entries = [
            text
            for (text,) in db.execute(
                "SELECT text FROM timeline WHERE incident_id = ?", (answer["incident"]["id"],)
            )
        ]
    assert title.startswith("Disk full [31m on db-7 now xxx") and title.endswith(rules.MARKER)
    assert len(title) == rules.TITLE.max_length
    assert service == "check out"
    assert all(len(text) <= 5000 for text in entries)


def test_the_fixture_itself_is_accepted(served: Served, http: httpx.Client) -> None:
    body = json.loads((FIXTURES / "alertmanager-firing.json").read_text())
    body["groupKey"] = "fixture-check"
    first = send(served, http, "/webhooks/alertmanager", json=body).json()
    second = send(served, http, "/webhooks/alertmanager", json=copy.deepcopy(body)).json()
    assert (first["result"], second["result"]) == ("created", "updated")
