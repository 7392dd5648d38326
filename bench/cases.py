"""Support-case intake: open a case = route it, plan its clocks, store it, and read it back
with its context gate checked for the next level.

    .venv/bin/python bench/cases.py [--cases 3000] [--rate 100] [--http-cases 1000]

1. In process, on a SQLite file (the store as `bootstrap.build` wires it: WAL,
   synchronous=FULL, group commit), `incident.services.cases.open_case` one case after the
   other, then with 32 in flight: cases/s. Intake is the door's parsing (the context
   checked field by field), routing, the gate, planning the clocks, storing, and the answer
   with the view. The mix: 70 % plain tier-1 cases (P2-P4, with context), 10 % legal threats
   (straight to the CIO), 10 % USDT withdrawals (CIO recommending the CEO, two approvals),
   10 % crypto cases with transactions and addresses to validate. Target: >= 1,000 cases/s,
   with the engine stopped (intake alone); then again with the engine running the steps
   the openings make due (their notices rendered and sent to the recorder) beside it.
2. Over HTTP: the service on a loopback port (`create_app`), a client in its own process
   posting POST /api/v1/cases at `--rate` cases/s, open loop (each at its planned instant).
   Latency = answer time - send time: p50 / p99 / max. Target: p99 < 25 ms at 100 cases/s.

The effects port is `incident.testing.RecordingEffects` (the steps the openings make due
run as they would, into the recorder), so the engine's work competes with intake as it
would in service. Results go to stdout as Markdown and to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import shutil
import socket
import sqlite3
import statistics
import sys
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from webhooks import quantile  # the same percentiles as the webhook benchmark's

from incident import bootstrap
from incident.adapters.files.templates import JinjaRenderer
from incident.clock import SystemClock
from incident.config import PROJECT_ROOT, ApiToken, Settings
from incident.domain.access import AccessRole
from incident.domain.case_access import parse_support_roles
from incident.services import cases as uc
from incident.testing import RecordingEffects
from incident.web.app import create_app, freeze_heap_after_start
from incident.web.case_api import new_case
from incident.web.case_schemas import OpenCaseRequest
from incident.web.metrics import Metrics

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
TOKEN = "bench-agent-token-0123456789abcdef"
TECHNICAL = {
    "actions_taken": "Checked the logs and the account",
    "customer_plan": "pro",
    "account_value": "12000",
    "previous_escalations": 1,
    "customer_impact": "Cannot withdraw",
    "troubleshooting": "Retried the payout: failed again",
    "customer_expectation": "Funds within a day",
    "requested_actions": "Trace the payout",
}
CRYPTO = {
    "transactions": [
        {"network": "evm", "hash": "0x" + "ab" * 32, "at": "2026-03-01T10:00:00Z"},
        {"network": "bitcoin", "hash": "cd" * 32, "at": "2026-03-01T10:05:00Z"},
    ],
    "wallet_addresses": [
        {"network": "evm", "address": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"},
        {"network": "bitcoin", "address": "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"},
    ],
    "user_attempts": "Retried twice",
    "expected": "0.5 BTC",
    "actual": "nothing arrived",
}


def case_body(run: str, index: int) -> dict[str, Any]:
    """One case of the mix: plain, legal threat, USDT withdrawal or crypto, by index."""
    body: dict[str, Any] = {
        "reference": f"{run}-{index}",
        "customer_id": f"cust-{index % 500}",
        "summary": f"Bench case {index}: the customer cannot withdraw",
        "plan": ("starter", "pro", "enterprise")[index % 3],
        "priority": ("P2", "P3", "P4")[index % 3],
        "context": dict(TECHNICAL),
        "checklist": ["troubleshooting_done", "documented"],
    }
    kind = index % 10
    if kind == 7:
        body["flags"] = ["legal_threat"]
    elif kind == 8:
        body.update(flags=["usdt_withdrawal"], usdt_amount="2500")
    elif kind == 9:
        body.update(crypto=True, context={**TECHNICAL, **CRYPTO})
    return body


def settings_for(path: Path, config: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{path}",
        playbooks_dir=config / "playbooks",
        comms_dir=config / "comms",
        runbooks_dir=config / "runbooks",
        api_tokens=(ApiToken(token=TOKEN, role=AccessRole.RESPONDER, name="agent"),),
        support_roles=parse_support_roles("agent=agent"),
    )


# --- 1. in process -------------------------------------------------------------------------


async def intake(settings: Settings, cases: int, *, in_flight: int, engine: bool) -> float:
    """Cases opened per second, `in_flight` at a time (`engine`: with the engine running
    the steps they make due beside them)."""
    recorder = RecordingEffects(clock=SystemClock())
    app = await bootstrap.build(
        settings, clock=recorder.clock, effects=recorder.effects(JinjaRenderer(settings.comms_dir))
    )
    run = f"in{in_flight}"
    bodies = [json.dumps(case_body(run, i)) for i in range(cases + 50)]
    stop = asyncio.Event()
    running = asyncio.create_task(app.engine.run(stop)) if engine else None
    try:
        for body in bodies[:50]:  # warm-up, not counted
            await one(app, body)
        queue = iter(bodies[50:])

        async def worker() -> None:
            for body in queue:
                await one(app, body)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        return cases / (time.perf_counter() - started)
    finally:
        stop.set()
        if running is not None:
            await running
        await app.close()


async def one(app: bootstrap.Container, body: str) -> None:
    """One intake, as the API's handler does it: the body checked, the case opened."""
    request = OpenCaseRequest.model_validate_json(body)
    await uc.open_case(app.support, new_case(request, app.support.rt.clock.now()), by="agent")


# --- 2. over HTTP ----------------------------------------------------------------------------


async def _client(url: str, run: str, cases: int, rate: float) -> list[tuple[float, int]]:
    bodies = [json.dumps(case_body(run, i)).encode() for i in range(cases)]
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    results: list[tuple[float, int]] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as session:

        async def one(index: int) -> None:
            sent = time.perf_counter()
            async with session.post(
                f"{url}/api/v1/cases", data=bodies[index], headers=headers
            ) as r:
                await r.read()
                results.append(((time.perf_counter() - sent) * 1000, r.status))

        start = time.perf_counter() + 0.2
        tasks = []
        for index in range(cases):
            delay = start + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.get_running_loop().create_task(one(index)))
        await asyncio.gather(*tasks)
    return results


def _client_process(conn: Connection, url: str, run: str, cases: int, rate: float) -> None:
    conn.send(asyncio.run(_client(url, run, cases, rate)))
    conn.close()


async def paced(settings: Settings, cases: int, rate: float) -> list[tuple[float, int]]:
    recorder = RecordingEffects(clock=SystemClock())

    async def build(settings: Settings, metrics: Metrics) -> bootstrap.Container:
        return await bootstrap.build(
            settings,
            clock=recorder.clock,
            effects=recorder.effects(JinjaRenderer(settings.comms_dir)),
            on_step=metrics.step_finished,
        )

    app = create_app(settings, build=build)
    freeze_heap_after_start(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        context = multiprocessing.get_context("spawn")
        receiver, sender = context.Pipe(duplex=False)
        url = f"http://127.0.0.1:{port}"
        for run, count in (("warm", 50), ("http", cases)):
            process = context.Process(target=_client_process, args=(sender, url, run, count, rate))
            process.start()
            loop = asyncio.get_running_loop()
            results: list[tuple[float, int]] = await loop.run_in_executor(None, receiver.recv)
            await loop.run_in_executor(None, process.join)
        return results
    finally:
        await runner.cleanup()


# --- the report ------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=3000, help="cases per intake measurement")
    parser.add_argument("--http-cases", type=int, default=1000, help="cases sent over HTTP")
    parser.add_argument("--rate", type=float, default=100.0, help="paced cases per second")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each intake (median)")
    args = parser.parse_args(argv)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    workdir = RESULTS_DIR / f"work-cases-{os.getpid()}"
    config = workdir / "config"
    for name in ("playbooks", "comms", "runbooks"):
        shutil.copytree(PROJECT_ROOT / name, config / name)
    try:
        rates: dict[str, list[float]] = {}
        # Each measurement on a database of its own, its rounds interleaved with the others'
        # (this machine's speed drifts by a tenth or more from one minute to the next).
        runs = (("one", 1, False), ("many", 32, False), ("engine", 32, True))
        for round_ in range(args.rounds):
            for name, in_flight, engine in runs:
                settings = settings_for(workdir / f"{name}-{round_}.db", config)
                rate = asyncio.run(intake(settings, args.cases, in_flight=in_flight, engine=engine))
                rates.setdefault(name, []).append(rate)
                print(f"intake, {name}, round {round_ + 1}: {rate:,.0f}/s", file=sys.stderr)
        one, many, beside = (statistics.median(rates[n]) for n in ("one", "many", "engine"))
        spread = ", ".join(f"{r:,.0f}" for r in rates["many"])
        latencies = asyncio.run(
            paced(settings_for(workdir / "http.db", config), args.http_cases, args.rate)
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    ms = [m for m, _ in latencies]
    failed = sum(1 for _, status in latencies if status != 201)
    lines = [
        "# Support-case intake",
        "",
        f"- {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}",
        f"- Command: `python bench/cases.py {' '.join(argv or sys.argv[1:])}`".rstrip(),
        "",
        "| measurement | result | target |",
        "|---|---|---|",
        f"| intake on SQLite, one at a time ({args.cases} cases, median) | {one:,.0f} cases/s | |",
        f"| intake on SQLite, 32 in flight ({args.cases} cases, median of {spread}) "
        f"| {many:,.0f} cases/s "
        f"| >= 1,000 cases/s: {'met' if max(one, many) >= 1000 else 'missed'} |",
        f"| the same, the engine sending their due steps beside it | {beside:,.0f} cases/s | |",
        f"| HTTP at {args.rate:g} cases/s ({len(ms)} cases, {failed} not 201): p50 / p99 / max "
        f"| {quantile(ms, 0.5):.1f} / {quantile(ms, 0.99):.1f} / {max(ms):.1f} ms "
        f"| p99 < 25 ms: {'met' if quantile(ms, 0.99) < 25 else 'missed'} |",
    ]
    report = "\n".join(lines)
    print(report)
    (RESULTS_DIR / f"cases-{time.strftime('%Y%m%d-%H%M%S')}.md").write_text(report + "\n")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
