"""Three `incident serve` replicas on one PostgreSQL database try to break exactly-once.

Their chat goes to a strict fake Slack that records every message (and answers each
chat.postMessage late, so that a replica is often between sending a step and recording it).
Incidents are declared through all three; their playbooks are compressed to seconds. One
replica is killed with SIGKILL while it holds claims, and started again. In the end every step
occurrence that came due ran, and Slack holds exactly one message for each (an effect re-sent
by the replica that took over is recognised by its idempotency key), and the occurrences the
dead replica held were claimed again by another replica and finished.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from incident.adapters.database.databases import open_database
from incident.config import PROJECT_ROOT
from tests.postgres import postgres_database
from tests.vendor_fakes.slack import FakeSlack

BOT_TOKEN = "xoxb-0000-1111-replicas"
API_TOKEN = "replica-test-token-0123456789"
INCIDENTS = 30
REMINDERS = 8  # per incident, at 1 s, 2 s ... 8 s after its declaration
STEPS = 1 + REMINDERS  # and the war room, at once
LEASE_SECONDS = 2


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def compressed_playbooks(directory: Path) -> Path:
    """Every severity: open the war room at once, then a reminder each second for 8 s."""
    directory.mkdir()
    audiences = (PROJECT_ROOT / "playbooks" / "audiences.yaml").read_text(encoding="utf-8")
    (directory / "audiences.yaml").write_text(audiences, encoding="utf-8")
    for severity in ("P1", "P2", "P3", "P4"):
        steps = [
            "  - id: open-war-room\n    description: Open the war room.\n"
            "    action: open_war_room\n    template: war_room_greeting\n    anchor: declared\n"
            "    offset: 0m\n"
        ] + [
            f"  - id: remind-{i}\n    description: Reminder {i}.\n    action: remind\n"
            f"    template: assign_commander_reminder\n    anchor: declared\n    offset: {i}s\n"
            for i in range(1, REMINDERS + 1)
        ]
        (directory / f"{severity}.yaml").write_text(
            f"severity: {severity}\nname: Compressed {severity}\n"
            "description: The replica test's playbook, in seconds.\nsteps:\n" + "".join(steps),
            encoding="utf-8",
        )
    return directory


class Replica:
    """One `incident serve` process; its output goes to a file (a pipe could fill up)."""

    def __init__(self, name: str, env: dict[str, str], logs: Path) -> None:
        self.name = name
        self.env = env
        self.logs = logs
        self.port = 0
        self.process: asyncio.subprocess.Process | None = None
        self.generation = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.generation += 1
        self.port = free_port()
        log = (self.logs / f"{self.name}-{self.generation}.log").open("w")
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "incident.cli",
                "serve",
                "--migrate",
                "--port",
                str(self.port),
                env=self.env,
                stdout=log,
                stderr=log,
            )
        finally:
            log.close()

    async def ready(self, http: aiohttp.ClientSession) -> None:
        for _ in range(300):  # 30 s
            assert self.process is not None and self.process.returncode is None, self.output()
            try:
                async with http.get(f"{self.url}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise AssertionError(f"{self.name} not ready: {self.output()}")

    def output(self) -> str:
        path = self.logs / f"{self.name}-{self.generation}.log"
        return path.read_text(encoding="utf-8")[-3000:] if path.exists() else ""

    async def stop(self) -> int | None:
        if self.process is None or self.process.returncode is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.process.wait(), 30)
        except TimeoutError:
            self.process.kill()
            return await self.process.wait()

    async def steps_run(self, http: aiohttp.ClientSession) -> float:
        """incident_steps_total, all labels: how many steps this process has run."""
        async with http.get(f"{self.url}/metrics") as response:
            body = await response.text()
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in body.splitlines()
            if line.startswith("incident_steps_total{")
        )


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    async with postgres_database() as url:  # empty: the replicas migrate it, all at once
        yield url


async def query(url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    database = open_database(url)
    try:

        def read(session: Session) -> list[tuple[Any, ...]]:
            return [tuple(row) for row in session.execute(text(sql), params)]

        return await database.run(read)
    finally:
        await database.dispose()


async def test_three_replicas_run_each_step_once_through_a_sigkill(
    database_url: str, tmp_path: Path
) -> None:
    async with FakeSlack(bot_token=BOT_TOKEN) as slack:
        # Each message is taken at once but answered late: a replica spends most of a step
        # between the vendor having done it and recording it, where a kill hurts most.
        slack.slow(times=100_000, seconds=0.15, method="chat.postMessage")
        env = {
            **os.environ,
            "INCIDENT_DATABASE_URL": database_url,
            "INCIDENT_PLAYBOOKS_DIR": str(compressed_playbooks(tmp_path / "playbooks")),
            "INCIDENT_API_TOKENS": f"{API_TOKEN}:commander:dana",
            "INCIDENT_SLACK_BOT_TOKEN": BOT_TOKEN,
            "INCIDENT_SLACK_API_URL": slack.api_url,
            "INCIDENT_SCHEDULER_LEASE": f"{LEASE_SECONDS}s",
            "INCIDENT_LOG_FORMAT": "json",
        }
        replicas = [Replica(f"replica-{n}", env, tmp_path) for n in range(3)]
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            try:
                await asyncio.gather(*(r.start() for r in replicas))
                await asyncio.gather(*(r.ready(http) for r in replicas))
                await run_and_check(database_url, slack, replicas, http)
            finally:
                codes = await asyncio.gather(*(r.stop() for r in replicas))
        assert codes == [0, 0, 0], [r.output() for r in replicas]
        assert slack.rejected == [], [(s.method, s.problems) for s in slack.rejected]


async def run_and_check(
    url: str, slack: FakeSlack, replicas: list[Replica], http: aiohttp.ClientSession
) -> None:
    incidents = await declare_incidents(replicas, http)
    victim, held = await kill_a_replica_holding_claims(url, replicas, http)
    rows = await occurrences_once_run(url)

    # None lost: every occurrence that came due was run to the end.
    assert len(rows) == INCIDENTS * STEPS
    assert Counter(r[3] for r in rows) == {"done": INCIDENTS * STEPS}, Counter(r[3] for r in rows)

    check_each_message_went_out_once(slack, incidents, rows)

    # The dead replica's claims were taken over: claimed again (a second attempt or more)
    # by a live replica, and finished.
    by_id = {r[0]: r for r in rows}
    for occurrence_id, attempts in held.items():
        _, _, _, state, now_attempts = by_id[occurrence_id]
        assert state == "done" and now_attempts > attempts, (occurrence_id, by_id[occurrence_id])

    # The work was shared: the killed replica had claims, and each of the others ran steps.
    survivors = [await r.steps_run(http) for r in replicas if r is not victim]
    assert all(n > 0 for n in survivors), survivors


async def declare_incidents(replicas: list[Replica], http: aiohttp.ClientSession) -> list[int]:
    """Incidents declared through every replica, a few at a time."""

    async def declare(n: int) -> int:
        replica = replicas[n % len(replicas)]
        async with http.post(
            f"{replica.url}/api/v1/incidents",
            json={"title": f"Outage {n}", "severity": f"P{1 + n % 4}"},
            headers={"Authorization": f"Bearer {API_TOKEN}"},
        ) as response:
            assert response.status == 201, await response.text()
            body = await response.json()
            return int(body["incident"]["id"])

    # Spread over about a second, so that their steps come due at many moments.
    incidents = []
    for n in range(INCIDENTS):
        incidents.append(await declare(n))
        await asyncio.sleep(0.02)
    assert len(set(incidents)) == INCIDENTS
    return incidents


async def kill_a_replica_holding_claims(
    url: str, replicas: list[Replica], http: aiohttp.ClientSession
) -> tuple[Replica, dict[int, int]]:
    """Kill a replica with SIGKILL while it holds claims (leases on steps it is running or
    has claimed to run next): the first one seen holding some. A replica can finish its
    claims between the look and the kill; then it is started again and we try once more.
    The killed replica comes back, as a new one; returned with the attempts of the
    occurrences it held, by id."""
    mine = (
        "SELECT id, attempts FROM step_occurrences "
        "WHERE state = 'running' AND lease_owner LIKE :owner"
    )
    held: dict[int, int] = {}
    for _attempt in range(5):
        victim = await replica_holding_claims(url, replicas)
        assert victim is not None and victim.process is not None, "no replica ever held a claim"
        pid = victim.process.pid
        victim.process.kill()
        await victim.process.wait()
        held = dict(await query(url, mine, owner=f"%:{pid}:%"))
        if held:
            break
        await victim.start()  # it finished its claims just before the kill: again
        await victim.ready(http)
    assert held and victim is not None, "the killed replica held no claim when it died"
    await victim.start()  # and it comes back, as a new replica
    await victim.ready(http)
    return victim, held


async def replica_holding_claims(url: str, replicas: list[Replica]) -> Replica | None:
    """The first replica seen holding a claim, looking 1000 times 5 ms apart."""
    running = "SELECT lease_owner FROM step_occurrences WHERE state = 'running'"
    pids = {r.process.pid: r for r in replicas if r.process is not None}
    for _ in range(1000):
        owners = {str(o).split(":")[-2] for (o,) in await query(url, running)}
        victim = next((pids[int(p)] for p in owners if p.isdigit() and int(p) in pids), None)
        if victim is not None:
            return victim
        await asyncio.sleep(0.005)
    return None


async def occurrences_once_run(url: str) -> list[tuple[Any, ...]]:
    """The occurrence rows (id, incident_id, step_id, state, attempts), once none is
    pending or running. Every step of every incident comes due within 8 s of its
    declaration; the dead replica's wait for their lease (2 s) and the others' poll (5 s)
    at most."""
    left = "SELECT count(*) FROM step_occurrences WHERE state IN ('pending', 'running')"
    for _ in range(400):
        if (await query(url, left))[0][0] == 0:
            break
        await asyncio.sleep(0.1)
    return await query(url, "SELECT id, subject_id, step_id, state, attempts FROM step_occurrences")


def check_each_message_went_out_once(
    slack: FakeSlack, incidents: list[int], rows: list[tuple[Any, ...]]
) -> None:
    """Exactly once at the vendor: one war room per incident, and in it one message per
    reminder occurrence, found by the idempotency key each message carries."""
    keys: Counter[str] = Counter()
    for incident_id in incidents:
        rooms = slack.channels_named(f"inc-{incident_id}-")
        assert len(rooms) == 1, [r.name for r in rooms]
        assert len(rooms[0].pinned()) == 1  # its greeting
        for message in rooms[0].posts():
            payload = (message.get("metadata") or {}).get("event_payload") or {}
            if "key" in payload:
                keys[payload["key"]] += 1
    assert keys and max(keys.values()) == 1, [k for k, n in keys.items() if n > 1]
    expected = {
        f"inc-{incident_id}/{step_id}/1"
        for _, incident_id, step_id, _, _ in rows
        if step_id.startswith("remind-")
    } | {f"inc-{incident_id}/war-room/greeting" for incident_id in incidents}
    assert set(keys) == expected
