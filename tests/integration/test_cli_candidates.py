"""`incident candidate ...` as real processes against a real `incident serve`: three Pro
customers report one stuck bridge transfer (opened through the API), the served engine
proposes an incident candidate, and the CLI lists, shows, declares (a new incident, or an
open one) and dismisses it. Mistakes exit non-zero with a readable message and change
nothing; `--json` prints the API's own answer."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.test_api_candidates import stuck_case
from tests.integration.test_cli_api import cli as run_cli
from tests.integration.test_cli_commands import RAW_CONTROLS
from tests.served_process import incident_serve

# Several CLI processes per test, about a second each on a busy machine.
pytestmark = pytest.mark.timeout(300)

AGENT = "candidate-agent-alice-token"
VIEWER = "candidate-viewer-vera-token"
TOKENS = f"{AGENT}:responder:alice,{VIEWER}:viewer:vera"
WAIT = 30.0  # seconds the served engine may take to compare the cases


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    database = tmp_path_factory.mktemp("cli-candidates") / "served.db"
    with incident_serve(database, {"INCIDENT_API_TOKENS": TOKENS}) as served:
        yield served


def api(url: str, method: str, path: str, body: Any = None) -> Any:
    response = httpx.request(
        method, f"{url}/api/v1{path}", json=body, headers={"Authorization": f"Bearer {AGENT}"}
    )
    assert response.is_success, response.text
    return response.json()


def propose(url: str, component: str) -> tuple[int, list[int]]:
    """Three Pro customers' cases about one stuck transfer, on `component` (a cluster of its
    own): the candidate the served engine proposes for them, and the cases."""
    cases = []
    for n in range(3):
        body = {**stuck_case(n), "component": component, "reference": f"ZD-{component}-{n}"}
        cases.append(api(url, "POST", "/cases", body)["case"]["id"])
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        for candidate in api(url, "GET", "/candidates?status=proposed")["candidates"]:
            shown = api(url, "GET", f"/candidates/{candidate['id']}")
            if shown["signature"]["component"] == component:
                return candidate["id"], cases
        time.sleep(0.1)
    raise AssertionError(f"no candidate for {component} after {WAIT} s")


def cli(url: str, *args: str, token: str = AGENT) -> subprocess.CompletedProcess[str]:
    result = run_cli("candidate", *args, url=url, token=token)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def ok(url: str, *args: str, token: str = AGENT) -> str:
    result = cli(url, *args, token=token)
    assert result.returncode == 0, (args, result.stderr)
    assert not RAW_CONTROLS.search(result.stdout)
    return result.stdout


def refused(url: str, *args: str, token: str = AGENT, code: int = 1) -> str:
    result = cli(url, *args, token=token)
    assert result.returncode == code, (args, result.stdout, result.stderr)
    assert result.stdout == ""
    return result.stderr


def test_list_show_and_declare_a_candidate(url: str) -> None:
    number, cases = propose(url, "bridge-a")
    ref = f"CAND-{number}"
    [line] = [line for line in ok(url, "list").splitlines() if line.startswith(f"{ref} ")]
    assert line.split()[1:5] == ["proposed", "P2", "3", "customers"]
    assert ref in ok(url, "list", "--status", "Proposed")
    assert ref not in ok(url, "list", "--status", "declared", "--status", "dismissed")

    shown = ok(url, "show", ref)
    assert ok(url, "show", str(number)).splitlines()[0] == shown.splitlines()[0]
    lines = shown.splitlines()
    assert lines[0] == f"{ref} proposed: suggested P2, 3 customers (weighted 6.0)"
    for row in (
        "  where          transfers / bridge-a",
        "  new            not seen in the novelty window before",
        "  suggested      P2: affects multiple users (3 customers)",
        "  customers      3 distinct in 3 cases",
        "  decision       waiting for a decision",
        f"  page           http://127.0.0.1:8080/ui/candidates/{number}",
        "cases:",
    ):
        assert row in lines, (row, shown)
    assert any(
        line.startswith("  signature      bridge transfer of <amount> usdc") for line in lines
    )
    for n, case in enumerate(cases):
        [row] = [line for line in lines if line.startswith(f"  CASE-{case} ")]
        assert row.split() == [f"CASE-{case}", f"ZD-bridge-a-{n}", f"cust-{n}", "pro", "open"]
    assert json.loads(ok(url, "show", ref, "--json")) == api(url, "GET", f"/candidates/{number}")

    declared = ok(url, "declare", ref, "--severity", "p1", "--title", "Bridge relayer stuck")
    incident = api(url, "GET", "/incidents")["incidents"][0]
    assert declared.splitlines()[0] == (
        f"{ref} declared as INC-{incident['id']}: each of its cases is linked to "
        f"INC-{incident['id']}, so its customer hears the incident's updates"
    )
    assert (incident["severity"], incident["title"]) == ("P1", "Bridge relayer stuck")
    linked = api(url, "GET", f"/incidents/{incident['id']}/cases")
    assert [c["id"] for c in linked["cases"]] == cases
    assert f"  decision       declared as INC-{incident['id']} by alice " in ok(url, "show", ref)
    again = ok(url, "declare", str(number))
    assert again.startswith(f"{ref} linked to INC-{incident['id']}: ")
    assert len(api(url, "GET", "/incidents")["incidents"]) == 1


def test_its_cases_may_join_an_open_incident(url: str) -> None:
    number, cases = propose(url, "bridge-b")
    incident = api(url, "POST", "/incidents", {"title": "Relayer down", "severity": "P2"})
    open_one = incident["incident"]["id"]
    out = ok(url, "declare", f"cand-{number}", "--incident", f"INC-{open_one}")
    assert out.startswith(f"CAND-{number} linked to INC-{open_one}: ")
    linked = api(url, "GET", f"/incidents/{open_one}/cases")
    assert [c["id"] for c in linked["cases"]] == cases


def test_dismissing_needs_a_reason_and_mistakes_change_nothing(url: str) -> None:
    number, _ = propose(url, "bridge-c")
    ref = f"CAND-{number}"
    assert "the following arguments are required: --reason" in refused(url, "dismiss", ref, code=2)
    blank = refused(url, "dismiss", ref, "--reason", "  ")
    assert f"POST /candidates/{number}/dismiss refused (422) invalid value:" in blank
    assert "  reason: String should have at least 1 character" in blank
    both = refused(url, "declare", ref, "--incident", "INC-1", "--title", "Bridge down")
    assert "refused (422)" in both and "  (body): give either incident" in both
    severity = refused(url, "declare", ref, "--severity", "P9")
    assert "refused (422)" in severity and "  severity: " in severity
    title = refused(url, "declare", ref, "--title", "x" * 201)
    assert "  title: String should have at most 200 characters" in title
    assert "is not an incident candidate (e.g. CAND-7 or 7)" in refused(
        url, "show", "CASE-3", code=2
    )
    assert "invalid choice: 'open'" in refused(url, "list", "--status", "open", code=2)
    missing = refused(url, "show", "CAND-999999")
    assert "refused (404)" in missing and "there is no candidate 999999" in missing
    viewer = refused(url, "declare", ref, token=VIEWER)
    assert "refused (403)" in viewer
    unknown = refused(url, "declare", ref, "--incident", "999999")
    assert "refused (404)" in unknown and "there is no incident 999999" in unknown
    shown = api(url, "GET", f"/candidates/{number}")
    assert shown["candidate"]["status"] == "proposed"
    assert {case["incident"] for case in shown["cases"]} == {None}

    dismissed = ok(url, "dismiss", ref, "--reason", "Known: the bridge's status page has it")
    assert dismissed.startswith(f"{ref} dismissed by alice ")
    assert dismissed.rstrip().endswith(": Known: the bridge's status page has it")
    late = refused(url, "declare", ref)
    assert "refused (409)" in late and f"{ref} was dismissed by alice" in late
    assert ref in ok(url, "list", "--status", "dismissed")
