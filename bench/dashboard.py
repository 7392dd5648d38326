"""The commander's dashboard with thousands of open incidents: how long the overview takes,
and its 5-second refresh check (a conditional GET answered 304), through a real
`incident serve`.

    .venv/bin/python bench/dashboard.py [--open 5000] [--requests 200]

The incidents are declared through the use case on a SQLite file in bench/results/, and
the steps due at once (pages, war rooms, notices) are run, so the service starts on a
storm's state rather than on a backlog; then `incident serve` runs on that file. A viewer
logs in through the login form; the overview (`/ui`, gzip as a browser asks for it) and the
refresh check (`If-None-Match` with the page's ETag) are each timed `--requests` times,
one after the other, from this process. Targets (issue "Hardening"): overview p99 < 100 ms,
refresh check < 10 ms. The report (Markdown) is printed and written to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
sys.path.insert(0, str(PROJECT_ROOT))

from incident import bootstrap  # noqa: E402
from incident.clock import FakeClock  # noqa: E402
from incident.config import Settings  # noqa: E402
from incident.domain.incident import Severity  # noqa: E402
from incident.services import incidents as uc  # noqa: E402

TOKEN = "bench-viewer-token-0123456789"
SEVERITIES = [Severity.P1, Severity.P2, Severity.P3, Severity.P3, Severity.P4]


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def fill(database: Path, count: int) -> None:
    """`count` open incidents, declared now, with what is due at once already run."""
    clock = FakeClock(datetime.now(UTC))
    settings = Settings(
        database_url=f"sqlite:///{database}",
        playbooks_dir=PROJECT_ROOT / "playbooks",
        comms_dir=PROJECT_ROOT / "comms",
        runbooks_dir=PROJECT_ROOT / "runbooks",
    )
    app = await bootstrap.build(settings, clock=clock)
    try:
        started = time.perf_counter()
        for n in range(count):
            await uc.declare_incident(
                app.runtime,
                title=f"Disk full on db-{n}",
                severity=SEVERITIES[n % len(SEVERITIES)],
                by="bench",
                service=f"service-{n % 40}",
            )
        say(f"declared {count} incidents in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        await app.scheduler.tick(clock.now())
        say(f"ran the steps due at once in {time.perf_counter() - started:.1f} s")
    finally:
        await app.close()


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def log_in(session: aiohttp.ClientSession, base: str) -> None:
    async with session.get(f"{base}/ui/login") as form:
        html = await form.text()
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no login form"
    async with session.post(
        f"{base}/ui/login",
        data={"csrf": found.group(1), "token": TOKEN, "next": ""},
        allow_redirects=False,
    ) as answer:
        assert answer.status == 303, await answer.text()


async def timed(
    session: aiohttp.ClientSession, url: str, count: int, headers: dict[str, str]
) -> tuple[list[float], int, int]:
    """Milliseconds of each request, the last status and body size."""
    took, status, size = [], 0, 0
    for _ in range(count):
        began = time.perf_counter()
        async with session.get(url, headers=headers) as answer:
            body = await answer.read()
            status, size = answer.status, len(body)
        took.append((time.perf_counter() - began) * 1000)
    return took, status, size


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def measure(database: Path, requests: int) -> list[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "INCIDENT_DATABASE_URL": f"sqlite:///{database}",
        "INCIDENT_API_TOKENS": f"{TOKEN}:viewer:bench",
        "INCIDENT_LOG_FORMAT": "json",
    }
    log = (database.parent / "serve.log").open("w")
    server = subprocess.Popen(  # noqa: ASYNC220 (started once, before anything is timed)
        [str(Path(sys.executable).with_name("incident")), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        # (An IP address's cookies are refused by default: the session cookie needs them.)
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as session:
            for _ in range(300):
                try:
                    async with session.get(f"{base}/readyz") as ready:
                        if ready.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            await log_in(session, base)
            gzip = {"Accept-Encoding": "gzip"}
            await timed(session, f"{base}/ui", 5, gzip)  # warm-up
            overview, status, _ = await timed(session, f"{base}/ui", requests, gzip)
            assert status == 200, status
            async with session.get(f"{base}/ui", headers=gzip) as page:
                etag = page.headers["ETag"]
                raw = len(await page.read())
            check, status, _ = await timed(
                session, f"{base}/ui", requests, {**gzip, "If-None-Match": etag}
            )
            assert status == 304, status
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        log.close()
    return [
        f"| overview `GET /ui` (200, {raw:,} bytes, gzip) | {statistics.median(overview):.1f} "
        f"| {p(overview, 0.95):.1f} | {p(overview, 0.99):.1f} | < 100 ms "
        f"| {'met' if p(overview, 0.99) < 100 else 'missed'} |",
        f"| refresh check (304) | {statistics.median(check):.2f} | {p(check, 0.95):.2f} "
        f"| {p(check, 0.99):.2f} | < 10 ms | {'met' if p(check, 0.99) < 10 else 'missed'} |",
    ]


async def main(args: argparse.Namespace) -> int:
    RESULTS_DIR.mkdir(exist_ok=True)
    work = RESULTS_DIR / f"dashboard-{os.getpid()}"
    work.mkdir()
    database = work / "dashboard.db"
    try:
        await fill(database, args.open)
        rows = await measure(database, args.requests)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    lines = [
        "# The commander's dashboard with many open incidents",
        "",
        f"`{' '.join(sys.argv)}`, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{os.cpu_count()} cores; {args.open} open incidents on SQLite; {args.requests} "
        "requests each, one after the other, from one client",
        "",
        "| request | p50 ms | p95 ms | p99 ms | target (p99) | |",
        "|---|---:|---:|---:|---|---|",
        *rows,
    ]
    text = "\n".join(lines)
    print(text)
    out = RESULTS_DIR / f"dashboard-{datetime.now(UTC):%Y%m%dT%H%M%S}.md"
    out.write_text(text + "\n")
    say(f"written to {out.relative_to(PROJECT_ROOT)}")
    return 0


def cli() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--open", type=int, default=5000, help="open incidents")
    parser.add_argument("--requests", type=int, default=200, help="timed requests of each")
    parser.add_argument("--keep", action="store_true", help="keep bench/results/dashboard-<pid>/")
    return asyncio.run(main(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(cli())
