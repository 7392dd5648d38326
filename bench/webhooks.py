"""Alert webhook latency: Alertmanager webhook received -> incident stored -> first page sent.

    .venv/bin/python bench/webhooks.py [--groups 1000] [--rate 100] [--severity P1]

The service runs for real in this process: the aiohttp app from `create_app` on a loopback
TCP port, a SQLite file, the SystemClock and the real scheduler with its default
look-ahead. Its effects port is `incident.testing.RecordingEffects` on that clock: the wall
time of each incident's first page is that of its first `pager` effect. The client
runs in a separate process (its own interpreter and event loop) and posts Alertmanager
version-4 payloads, one distinct alert group each:

1. Paced: `--groups` groups at `--rate` groups/s, open loop (each send goes at its planned
   instant whether or not earlier answers have come back). Latency = page effect time -
   send time, p50 / p99 / max; also the HTTP answer time (incident stored and committed).
2. Throughput: `--groups` groups as fast as `--connections` concurrent connections go;
   groups/s answered, and groups/s until the last page went out.

See bench/README.md for the method and the caveats.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import platform
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from incident import bootstrap
from incident.adapters.files.templates import JinjaRenderer
from incident.clock import SystemClock
from incident.config import PROJECT_ROOT, ApiToken, Settings
from incident.domain.access import AccessRole
from incident.domain.errors import InvalidPlaybook
from incident.testing import RecordingEffects
from incident.testing import Sent as Effect
from incident.web.app import create_app, freeze_heap_after_start
from incident.web.metrics import Metrics

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
TOKEN = "bench-alertmanager-token-0123456789"
WARM_UP = 20  # groups sent (and not counted) before each measurement
LABELS = {
    # The default routing rules: critical on a tier-1 service is P1, critical alone P2.
    "P1": {"severity": "critical", "tier": "1"},
    "P2": {"severity": "critical"},
}


# --- the service side ------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def serving(settings: Settings, recorder: RecordingEffects) -> Any:
    """The service on a free loopback port, on the recorder's clock; yields its base URL."""

    async def build(settings: Settings, metrics: Metrics) -> bootstrap.Container:
        return await bootstrap.build(
            settings,
            clock=recorder.clock,
            effects=recorder.effects(JinjaRenderer(settings.comms_dir)),
            on_step=metrics.step_finished,
        )

    app = create_app(settings, build=build)
    freeze_heap_after_start(app)  # as `incident serve` does
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


# --- the client side (its own process) -------------------------------------------------------


def payload(run: str, index: int, severity: str) -> bytes:
    """An Alertmanager version-4 notification for one new alert group of one alert."""
    labels = {
        "alertname": "BenchAlert",
        "service": f"svc-{index % 50}",
        "instance": f"host-{index}:9100",
        "bench_group": f"{run}-{index}",
        **LABELS[severity],
    }
    alert = {
        "status": "firing",
        "labels": labels,
        "annotations": {"summary": f"bench alert {index}"},
        "startsAt": "2026-11-23T18:00:00.123456789Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example.com/graph",
        "fingerprint": f"{abs(hash((run, index))):016x}"[:16],
    }
    return json.dumps(
        {
            "receiver": "incident",
            "status": "firing",
            "alerts": [alert],
            "groupLabels": {"alertname": "BenchAlert", "bench_group": labels["bench_group"]},
            "commonLabels": labels,
            "commonAnnotations": alert["annotations"],
            "externalURL": "http://alertmanager.example.com:9093",
            "version": "4",
            "groupKey": f'{{}}:{{bench_group="{labels["bench_group"]}"}}',
            "truncatedAlerts": 0,
        }
    ).encode()


@dataclass(frozen=True)
class Sent:
    index: int
    planned: float  # wall time the send was planned for (paced), else the send time
    sent: float  # wall time just before the request went out
    answered: float
    status: int
    incident_id: int | None


async def _client(
    url: str, run: str, groups: int, rate: float | None, connections: int, severity: str
) -> list[Sent]:
    bodies = [payload(run, i, severity) for i in range(groups)]
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=connections)
    results: list[Sent] = []
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(index: int, planned: float) -> None:
            sent = time.time()
            async with session.post(
                f"{url}/webhooks/alertmanager", data=bodies[index], headers=headers
            ) as response:
                answer = await response.json()
                answered = time.time()
            incident = (answer.get("incident") or {}).get("id")
            results.append(Sent(index, planned, sent, answered, response.status, incident))

        if rate is None:
            queue = iter(range(groups))

            async def worker() -> None:
                for index in queue:
                    await one(index, time.time())

            await asyncio.gather(*(worker() for _ in range(connections)))
        else:
            start = time.time() + 0.2
            tasks = []
            loop = asyncio.get_running_loop()
            for index in range(groups):
                planned = start + index / rate
                delay = planned - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(loop.create_task(one(index, planned)))
            await asyncio.gather(*tasks)
    return sorted(results, key=lambda s: s.index)


def client_process(
    conn: Connection,
    url: str,
    run: str,
    groups: int,
    rate: float | None,
    connections: int,
    severity: str,
) -> None:
    conn.send(asyncio.run(_client(url, run, groups, rate, connections, severity)))
    conn.close()


async def in_client_process(
    url: str, run: str, groups: int, *, rate: float | None, connections: int, severity: str
) -> list[Sent]:
    """Run the client in another process and wait for its results without blocking."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(
        target=client_process, args=(sender, url, run, groups, rate, connections, severity)
    )
    process.start()
    sender.close()
    loop = asyncio.get_running_loop()
    try:
        results: list[Sent] = await loop.run_in_executor(None, receiver.recv)
    finally:
        await loop.run_in_executor(None, process.join)
    return results


# --- measurements ----------------------------------------------------------------------------


def quantile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Paced:
    groups: int
    rate: float
    latency_ms: list[float]  # send -> first page effect
    answer_ms: list[float]  # send -> HTTP answer (incident stored, committed)
    stored_to_page_ms: list[float]  # HTTP answer -> first page effect
    send_lag_ms: list[float]  # actual send - planned send (client overload check)
    failed: int  # non-200 answers
    unpaged: int  # incidents with no page within the wait
    war_room_ms: list[float] = field(default_factory=list)  # send -> war room opened (P1)


@dataclass(frozen=True)
class Throughput:
    groups: int
    connections: int
    answered_seconds: float
    paged_seconds: float
    failed: int
    unpaged: int
    war_rooms_seconds: float = float("nan")  # until the last war room opened (P1)

    @property
    def answered_rate(self) -> float:
        return self.groups / self.answered_seconds

    @property
    def paged_rate(self) -> float:
        return self.groups / self.paged_seconds


PAGE_WAIT = 180.0  # seconds to wait for the last page when the scheduler falls behind


async def _wait_for(firsts: Mapping[int, Effect], ids: set[int], within: float = PAGE_WAIT) -> None:
    """Until each incident in `ids` is in `firsts` (a recorder's first effect by incident on
    one port). Polled: a check on every effect would cost a pass over `ids` each time."""
    deadline = time.time() + within
    while time.time() < deadline and not ids <= firsts.keys():  # noqa: ASYNC110
        await asyncio.sleep(0.01)


def _wall_times(firsts: Mapping[int, Effect]) -> dict[int, float]:
    """Incident -> wall time (the recorder runs on the SystemClock) of its first effect."""
    return {incident: effect.at.timestamp() for incident, effect in firsts.items()}


async def _run(
    settings: Settings,
    *,
    name: str,
    groups: int,
    rate: float | None,
    connections: int,
    severity: str,
) -> tuple[list[Sent], list[Sent], dict[int, float], dict[int, float]]:
    """Start a fresh service, warm it up, send; (all sends, 200s, first page per incident,
    war room per incident)."""
    recorder = RecordingEffects(clock=SystemClock())
    # Each incident's first page; and its war room, the main lane's first step of a P1: how
    # late the steps that give way to pages during a storm run.
    first_pages = recorder.first_by_incident("pager")
    war_rooms = recorder.first_by_incident("chat.open")
    async with serving(settings, recorder) as url:
        warm = await in_client_process(
            url, f"warm-{name}", WARM_UP, rate=50, connections=4, severity=severity
        )
        await _wait_for(first_pages, {s.incident_id for s in warm if s.incident_id})
        results = await in_client_process(
            url, name, groups, rate=rate, connections=connections, severity=severity
        )
        ok = [s for s in results if s.status == 200 and s.incident_id is not None]
        answered = {s.incident_id for s in ok if s.incident_id is not None}
        await _wait_for(first_pages, answered)
        pages = _wall_times(first_pages)
        if severity == "P1":
            await _wait_for(war_rooms, answered)
        _progress(
            f"{name}: {len(ok)} answered 200, "
            f"{sum(1 for s in ok if s.incident_id in pages)} paged, "
            f"{recorder.attempts.total()} effects"
        )
        return results, ok, pages, _wall_times(war_rooms)


async def measure_paced(settings: Settings, *, groups: int, rate: float, severity: str) -> Paced:
    # Open loop: enough connections that a slow answer never holds up the next send.
    results, ok, pages, war_rooms = await _run(
        settings,
        name=f"paced-{rate:g}",
        groups=groups,
        rate=rate,
        connections=64,
        severity=severity,
    )
    paged = [(s, pages[s.incident_id]) for s in ok if s.incident_id in pages]
    return Paced(
        groups=groups,
        rate=rate,
        latency_ms=[(page - s.sent) * 1000 for s, page in paged],
        answer_ms=[(s.answered - s.sent) * 1000 for s in ok],
        stored_to_page_ms=[(page - s.answered) * 1000 for s, page in paged],
        send_lag_ms=[(s.sent - s.planned) * 1000 for s in results],
        failed=len(results) - len(ok),
        unpaged=len(ok) - len(paged),
        war_room_ms=[
            (war_rooms[s.incident_id] - s.sent) * 1000
            for s, _ in paged
            if s.incident_id in war_rooms
        ],
    )


async def measure_burst(
    settings: Settings, *, groups: int, connections: int, severity: str
) -> Throughput:
    results, ok, pages, war_rooms = await _run(
        settings,
        name="burst",
        groups=groups,
        rate=None,
        connections=connections,
        severity=severity,
    )
    paged = [pages[s.incident_id] for s in ok if s.incident_id in pages]
    first = min(s.sent for s in results)
    return Throughput(
        groups=groups,
        connections=connections,
        answered_seconds=max(s.answered for s in results) - first,
        paged_seconds=max(paged, default=float("nan")) - first,
        failed=len(results) - len(ok),
        unpaged=len(ok) - len(paged),
        war_rooms_seconds=max(war_rooms.values(), default=float("nan")) - first,
    )


# --- report ----------------------------------------------------------------------------------


def _progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _load() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def _git_state() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "incident", "playbooks"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (f" + {len(dirty)} changed file(s) in incident/ or playbooks/" if dirty else "")


def machine(load_before: str) -> list[str]:
    return [
        "## Machine",
        "",
        f"- CPU: {_cpu_model()}, {os.cpu_count()} logical cores; "
        f"{platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"aiohttp {_version('aiohttp')}, SQLAlchemy {_version('sqlalchemy')}, "
        f"pydantic {_version('pydantic')}",
        f"- Load average (1/5/15 min) before: {load_before}; after: {_load()}",
        f"- Code: {_git_state()}",
        "",
    ]


def _row(name: str, values: Sequence[float]) -> str:
    cells = " | ".join(f"{quantile(values, q):,.1f}" for q in (0.5, 0.9, 0.99))
    return f"| {name} | {cells} | {max(values, default=float('nan')):,.1f} |"


def sweep_table(sweep: list[Paced], severity: str) -> list[str]:
    if not sweep:
        return []
    lines = [
        f"## 3. Latency by rate ({sweep[0].groups:,} groups each, {severity})",
        "",
        "send -> first page effect, milliseconds; HTTP answer p99 for comparison; send -> "
        "war room opened (the main lane, which gives way to pages).",
        "",
        "| groups/s | p50 | p90 | p99 | max | answer p99 | not paged | war room p50 / p99 |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for paced in sweep:
        q = [quantile(paced.latency_ms, x) for x in (0.5, 0.9, 0.99)]
        lines.append(
            f"| {paced.rate:g} | {q[0]:,.1f} | {q[1]:,.1f} | **{q[2]:,.1f}** "
            f"| {max(paced.latency_ms, default=float('nan')):,.1f} "
            f"| {quantile(paced.answer_ms, 0.99):,.1f} | {paced.unpaged} "
            f"| {quantile(paced.war_room_ms, 0.5):,.0f} "
            f"/ {quantile(paced.war_room_ms, 0.99):,.0f} |"
        )
    return [*lines, ""]


def report(paced: Paced, burst: Throughput, args: argparse.Namespace) -> list[str]:
    p99 = quantile(paced.latency_ms, 0.99)
    return [
        f"## 1. Latency at {paced.rate:g} groups/s ({paced.groups:,} distinct alert groups, "
        f"{args.severity})",
        "",
        "Milliseconds. Open loop: each webhook is sent at its planned instant. `send` is the "
        "client's wall time just before the request; the page time is noted inside the "
        "page effect.",
        "",
        "| interval | p50 | p90 | p99 | max |",
        "|---|---:|---:|---:|---:|",
        _row("**send -> first page effect**", paced.latency_ms),
        _row("send -> HTTP answer (incident stored, committed)", paced.answer_ms),
        _row("HTTP answer -> first page effect", paced.stored_to_page_ms),
        _row("client send lag (actual - planned)", paced.send_lag_ms),
        *(
            [_row("send -> war room opened (main lane: gives way to pages)", paced.war_room_ms)]
            if paced.war_room_ms
            else []
        ),
        "",
        f"Non-200 answers: {paced.failed}; incidents not paged within {PAGE_WAIT:.0f} s: "
        f"{paced.unpaged}.",
        "",
        f"Target p99 < 25 ms at 100 groups/s: **{'met' if p99 < 25 else 'MISSED'}** "
        f"({p99:,.1f} ms).",
        "",
        f"## 2. Throughput ({burst.groups:,} groups, {burst.connections} concurrent connections, "
        "as fast as they go)",
        "",
        "| measure | groups/s | seconds |",
        "|---|---:|---:|",
        f"| answered (incident stored, 200) | **{burst.answered_rate:,.0f}** "
        f"| {burst.answered_seconds:.2f} |",
        f"| until the last first page went out | {burst.paged_rate:,.0f} "
        f"| {burst.paged_seconds:.2f} |",
        f"| until the last war room opened | {burst.groups / burst.war_rooms_seconds:,.0f} "
        f"| {burst.war_rooms_seconds:.2f} |",
        "",
        f"Non-200 answers: {burst.failed}; incidents not paged within {PAGE_WAIT:.0f} s: "
        f"{burst.unpaged}.",
        "",
    ]


def snapshot_config(workdir: Path) -> Path:
    """Copy playbooks/, comms/ and runbooks/ once, so one run sees one consistent set."""
    config = workdir / "config"
    for name in ("playbooks", "comms", "runbooks"):
        shutil.copytree(PROJECT_ROOT / name, config / name)
    bootstrap.check_playbooks(_settings(workdir / "unused.db", config))
    return config


def _settings(path: Path, config: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{path}",
        playbooks_dir=config / "playbooks",
        comms_dir=config / "comms",
        runbooks_dir=config / "runbooks",
        api_tokens=(ApiToken(token=TOKEN, role=AccessRole.RESPONDER, name="alertmanager"),),
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", type=int, default=1000, help="alert groups per measurement")
    parser.add_argument("--rate", type=float, default=100.0, help="paced groups per second")
    parser.add_argument(
        "--connections", type=int, default=8, help="concurrent connections for throughput"
    )
    parser.add_argument(
        "--severity", choices=sorted(LABELS), default="P1", help="what the alerts route to"
    )
    parser.add_argument(
        "--sweep",
        default="",
        help="also measure latency at these rates, e.g. 10,25,50 (groups/s)",
    )
    parser.add_argument("--sweep-groups", type=int, default=300, help="groups per sweep rate")
    parser.add_argument("--keep", action="store_true", help="keep the database files")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    workdir = RESULTS_DIR / f"work-webhooks-{os.getpid()}"
    workdir.mkdir()
    load_before = _load()
    started = time.perf_counter()
    command = "python bench/webhooks.py" + (" " + " ".join(argv or sys.argv[1:])).rstrip()
    lines = ["# Alert webhooks: Alertmanager notification -> incident -> first page", ""]
    try:
        try:
            config = snapshot_config(workdir)
        except InvalidPlaybook as error:
            _progress(f"the playbooks do not load, nothing measured:\n{error}")
            return 2
        paced = asyncio.run(
            measure_paced(
                _settings(workdir / "paced.db", config),
                groups=args.groups,
                rate=args.rate,
                severity=args.severity,
            )
        )
        _progress(
            f"paced: p50 {quantile(paced.latency_ms, 0.5):.1f} ms, "
            f"p99 {quantile(paced.latency_ms, 0.99):.1f} ms"
        )
        burst = asyncio.run(
            measure_burst(
                _settings(workdir / "burst.db", config),
                groups=args.groups,
                connections=args.connections,
                severity=args.severity,
            )
        )
        _progress(f"throughput: {burst.answered_rate:,.0f} groups/s answered")
        sweep = []
        for rate in [float(r) for r in args.sweep.split(",") if r.strip()]:
            sweep.append(
                asyncio.run(
                    measure_paced(
                        _settings(workdir / f"sweep-{rate:g}.db", config),
                        groups=args.sweep_groups,
                        rate=rate,
                        severity=args.severity,
                    )
                )
            )
            _progress(f"sweep {rate:g}/s: p99 {quantile(sweep[-1].latency_ms, 0.99):.1f} ms")
        lines += [
            f"Command: `{command}`",
            "",
            *machine(load_before),
            *report(paced, burst, args),
            *sweep_table(sweep, args.severity),
        ]
        lines.append(f"Total run time {time.perf_counter() - started:.0f} s.")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    output = "\n".join(lines) + "\n"
    print(output)
    target = RESULTS_DIR / f"webhooks-{time.strftime('%Y%m%d-%H%M%S')}.md"
    target.write_text(output)
    _progress(f"written to {target.relative_to(PROJECT_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
