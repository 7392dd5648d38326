"""Replicas on PostgreSQL: step occurrences run per second with 1, 2 and 3 `incident serve`
processes, and the claim's latency as the backlog of pending occurrences grows.

    .venv/bin/python bench/replicas.py [--incidents 300] [--backlogs 10000,100000,1000000]
        [--replicas 1,2,3] [--postgres postgresql+asyncpg://postgres@127.0.0.1:5432/postgres]

1. Throughput. For each replica count, a fresh database holds a backlog: `--incidents`
   incidents declared one minute ago through the real use case (in this process, nothing
   running), each with a compressed playbook of 9 steps (open the war room, 8 reminders),
   all due. Then N `incident serve --migrate` processes start together (effects in the
   outbox, in the same database) and drain it. Steps/s = steps finished after the last
   replica became ready / (last finish - that moment), from the rows' own finished_at; the
   share of each replica comes from its /metrics.
2. Claim latency. For each backlog size, a fresh database with 10,000 incidents and that many
   pending occurrences, all due (the worst case: the claim must take the 100 oldest without
   reading the rest). The claim is `SqlTransaction.claim_due` as the scheduler calls it
   (batch of 100), timed 30 times; the previous release's claim (`state IN ('pending',
   'running') ... ORDER BY run_at`) is timed too, rolled back. EXPLAIN ANALYZE of the claim
   at the largest backlog is printed.

The report is Markdown on stdout; progress on stderr. Databases are dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from incident import bootstrap
from incident.adapters.database.databases import Database, open_database
from incident.adapters.database.store import SqlStore, SqlTransaction
from incident.adapters.database.store import explain_claim as sql_explain_claim
from incident.clock import FakeClock
from incident.config import PROJECT_ROOT, Settings
from incident.domain.incident import Severity
from incident.services import incidents as uc

REMINDERS = 8
STEPS = 1 + REMINDERS


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def playbooks(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
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
            f"severity: {severity}\nname: Bench {severity}\ndescription: Compressed.\nsteps:\n"
            + "".join(steps),
            encoding="utf-8",
        )
    return directory


class Server:
    def __init__(self, admin: str) -> None:
        self.admin = admin
        self.made: list[str] = []

    async def run(self, sql: str) -> None:
        engine = create_async_engine(self.admin, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                await connection.execute(text(sql))
        finally:
            await engine.dispose()

    async def new_database(self, migrated: bool = True) -> str:
        name = f"incident_bench_{uuid.uuid4().hex[:10]}"
        await self.run(f'CREATE DATABASE "{name}"')
        self.made.append(name)
        url = self.admin.rsplit("/", 1)[0] + f"/{name}"
        if migrated:
            database = open_database(url)
            try:
                await database.migrate()
            finally:
                await database.dispose()
        return url

    async def drop_all(self) -> None:
        for name in self.made:
            await self.run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def query(url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    database = open_database(url)
    try:
        return await database.run(
            lambda s: [tuple(r) for r in s.execute(text(sql), params)], durable=False
        )
    finally:
        await database.dispose()


# --- 1. throughput -------------------------------------------------------------------------


async def backlog_of_incidents(url: str, directory: Path, incidents: int) -> None:
    settings = Settings(database_url=url, playbooks_dir=directory)
    clock = FakeClock(datetime.now(UTC) - timedelta(minutes=1))
    app = await bootstrap.build(settings, clock=clock)
    try:
        severities = list(Severity)
        for n in range(incidents):
            await uc.declare_incident(
                app.runtime, title=f"Bench {n}", severity=severities[n % 4], by="bench"
            )
    finally:
        await app.close()


async def throughput(server: Server, replicas: int, incidents: int, work: Path) -> dict[str, Any]:
    url = await server.new_database()
    directory = playbooks(work / "playbooks")
    say(f"throughput, {replicas} replica(s): declaring {incidents} incidents")
    await backlog_of_incidents(url, directory, incidents)
    total = (await query(url, "SELECT count(*) FROM step_occurrences"))[0][0]
    env = {
        **os.environ,
        "INCIDENT_DATABASE_URL": url,
        "INCIDENT_PLAYBOOKS_DIR": str(directory),
        "INCIDENT_LOG_FORMAT": "json",
    }
    ports = [free_port() for _ in range(replicas)]
    logs = [(work / f"replica-{replicas}-{i}.log").open("w") for i in range(replicas)]
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "incident.cli",
            "serve",
            "--port",
            str(port),
            env=env,
            stdout=log,
            stderr=log,
        )
        for port, log in zip(ports, logs, strict=True)
    ]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        for port in ports:
            for _ in range(600):
                try:
                    async with http.get(f"http://127.0.0.1:{port}/readyz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        all_ready = datetime.now(UTC)
        left = "SELECT count(*) FROM step_occurrences WHERE state IN ('pending', 'running')"
        for _ in range(6000):
            if (await query(url, left))[0][0] == 0:
                break
            await asyncio.sleep(0.1)
        shares = []
        for port in ports:
            async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                body = await response.text()
            shares.append(
                int(
                    sum(
                        float(line.rsplit(" ", 1)[1])
                        for line in body.splitlines()
                        if line.startswith("incident_steps_total{")
                    )
                )
            )
    for process in processes:
        process.terminate()
    for process in processes:
        await process.wait()
    for log in logs:
        log.close()
    after, last = (
        await query(
            url,
            "SELECT count(*), max(finished_at) FROM step_occurrences "
            "WHERE state = 'done' AND finished_at >= :ready",
            ready=all_ready,
        )
    )[0]
    first, last_all = (
        await query(url, "SELECT min(started_at), max(finished_at) FROM step_occurrences")
    )[0]
    done = (await query(url, "SELECT count(*) FROM step_occurrences WHERE state = 'done'"))[0][0]
    window = (last - all_ready).total_seconds() if last else float("nan")
    return {
        "replicas": replicas,
        "steps": total,
        "done": done,
        "after_ready": after,
        "rate": after / window if window > 0 else float("nan"),
        "overall": done / (last_all - first).total_seconds(),
        "shares": shares,
    }


# --- 2. claim latency ----------------------------------------------------------------------

PREVIOUS_CLAIM = """
UPDATE step_occurrences SET state = 'running', lease_owner = 'bench', lease_expires_at = :lease,
  run_at = :lease, started_at = :now, attempts = attempts + 1
WHERE id IN (SELECT id FROM step_occurrences WHERE state IN ('pending', 'running')
  AND run_at <= :now ORDER BY run_at, id LIMIT 100 FOR UPDATE SKIP LOCKED)
RETURNING id
"""


async def claim_latency(server: Server, backlog: int) -> dict[str, Any]:
    url = await server.new_database()
    say(f"claim latency: loading {backlog} pending occurrences")
    base = datetime(2026, 1, 1, tzinfo=UTC)

    def load(session: Session) -> None:
        session.execute(
            text(
                "INSERT INTO incidents (title, severity, status, service, category, impact, "
                "declared_at, declared_by) SELECT 'bench', 'P3', 'investigating', 'api', "
                "'general', '', :base, 'bench' FROM generate_series(1, 10000)"
            ),
            {"base": base},
        )
        session.execute(
            text(
                "INSERT INTO step_occurrences (subject_kind, subject_id, step_id, occurrence, "
                "action, due_at, run_at, state, attempts) SELECT 'incident', 1 + g % 10000, "
                "'bulk-' || (g / 10000), "
                "1, 'notify', CAST(:base AS timestamptz) + g * interval '1 second', "
                "CAST(:base AS timestamptz) + g * interval '1 second', 'pending', 0 "
                "FROM generate_series(1, :n) g"
            ),
            {"base": base, "n": backlog},
        )

    database = open_database(url)
    try:
        started = time.perf_counter()
        await database.run(load)
        await database.run(lambda s: s.execute(text("ANALYZE step_occurrences")))
        say(f"  loaded in {time.perf_counter() - started:.1f} s")
        store = SqlStore(database)
        now = base + timedelta(days=400)  # everything is due
        ours = []
        # Thirty claims of 100, or as many as the backlog holds (each claim's steps are
        # finished before the next, so a backlog of 1000 gives ten full claims).
        rounds = max(1, min(30, backlog // 100))
        for n in range(rounds):

            def claim(tx: SqlTransaction, n: int = n) -> int:
                return len(
                    tx.claim_due(
                        now=now, owner=f"bench-{n}", lease_until=now + timedelta(minutes=1),
                        limit=100,
                    )
                )  # fmt: skip

            began = time.perf_counter()
            claimed = await store.run(claim, durable=False)
            ours.append((time.perf_counter() - began) * 1000)
            assert claimed == min(100, backlog - 100 * n), (claimed, backlog, n)
            # The claimed steps run and finish before the next claim (not timed), as the
            # scheduler's do: running rows stay a few hundred at most, however long the
            # backlog.
            await database.run(
                lambda s: s.execute(
                    text("UPDATE step_occurrences SET state = 'done' WHERE state = 'running'")
                )
            )
        previous = []
        for _ in range(5):

            def old(session: Session) -> None:
                session.execute(
                    text(PREVIOUS_CLAIM), {"now": now, "lease": now + timedelta(minutes=1)}
                )
                session.rollback()

            began = time.perf_counter()
            await database.run(old)
            previous.append((time.perf_counter() - began) * 1000)
        plan = await explain_claim(database, now)
    finally:
        await database.dispose()
    return {
        "backlog": backlog,
        "p50": statistics.median(ours),
        "p95": sorted(ours)[int(len(ours) * 0.95) - 1],
        "previous_p50": statistics.median(previous),
        "plan": plan,
    }


async def explain_claim(database: Database, now: datetime) -> str:
    return await database.run(lambda session: sql_explain_claim(session, now=now, analyze=True))


# --- the report ----------------------------------------------------------------------------


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--incidents", type=int, default=300)
    parser.add_argument("--replicas", default="1,2,3")
    parser.add_argument("--backlogs", default="10000,100000,1000000")
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "INCIDENT_TEST_POSTGRES", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    server = Server(args.postgres)
    lines = [
        "# Replicas on PostgreSQL",
        "",
        f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
    ]
    try:
        with tempfile.TemporaryDirectory() as work:
            results = [
                await throughput(server, int(n), args.incidents, Path(work) / f"r{n}")
                for n in args.replicas.split(",")
            ]
        lines += [
            f"## Steps run per second ({args.incidents} incidents x {STEPS} steps, all due)",
            "",
            "| replicas | steps | steps/s (all replicas up) | steps/s (whole run) | "
            "steps per replica |",
            "|---:|---:|---:|---:|---|",
        ]
        for r in results:
            lines.append(
                f"| {r['replicas']} | {r['done']}/{r['steps']} | {r['rate']:.0f} | "
                f"{r['overall']:.0f} | {' / '.join(str(s) for s in r['shares'])} |"
            )
        latencies = [await claim_latency(server, int(n)) for n in args.backlogs.split(",")]
        lines += [
            "",
            "## Claim latency (batch of 100, every pending occurrence due)",
            "",
            "| pending | claim p50 ms | claim p95 ms | previous claim p50 ms |",
            "|---:|---:|---:|---:|",
        ]
        for r in latencies:
            lines.append(
                f"| {r['backlog']:,} | {r['p50']:.2f} | {r['p95']:.2f} | {r['previous_p50']:.1f} |"
            )
        lines += [
            "",
            f"## EXPLAIN ANALYZE of the claim, {latencies[-1]['backlog']:,} pending",
            "",
            "```",
            latencies[-1]["plan"],
            "```",
        ]
    finally:
        await server.drop_all()
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
