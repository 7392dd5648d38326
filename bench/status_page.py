"""Public status page under a crowd: `/api/v2/summary.json` requests per second from the
service during an incident storm, against a bare aiohttp handler returning a fixed body of
the same size, on the same machine, in one run.

    .venv/bin/python bench/status_page.py [--seconds 10] [--connections 64] [--rounds 2]
        [--open-incidents 2000]

Processes (each its own interpreter):

- the service, started as `incident serve` starts it (same app, same access log), on a
  fresh SQLite file in bench/results/, with components configured and an API token; with
  `--quiet-access-log`, also the same service started with the access logger class of
  incident/web/public/access_log.py (`web.run_app(..., access_log_class=QuietPublicReads)`),
  to measure what that one-line change to `incident serve` buys;
- the bare server: aiohttp with one handler returning the service's own summary.json bytes
  (so the very same size), no middleware, no access log;
- the load generator: `wrk` (Debian package `wrk`) when installed, else this script's own
  aiohttp client in a separate process (which on a small machine measures itself as much
  as the server: the report says which ran);
- the storm: this process, posting a customer update (alternating the component statuses)
  to the open incident every second through the REST API while the service is measured,
  and polling summary.json's ETag to count how many versions the crowd saw.

On a machine with 2+ cores the servers are pinned to CPU 0 and the load generator and
storm to CPU 1, so neither server competes with its load for a core. The servers are
measured one after the other, alternating for `--rounds`. Nothing asks for gzip: both send
the plain body. Besides requests per second (wall clock) the report gives each server's
requests per CPU-second it used (from /proc): on a machine shared with other work, a
server that got less of its core shows fewer requests per second but the same requests
per CPU-second. The report (Markdown) is printed and written to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
TOKEN = "bench-status-page-token-0123456789"
PATH = "/api/v2/summary.json"
TARGET = 0.80  # the service's req/s over the bare handler's
WARM_UP = 2.0  # seconds of load before each measurement, not counted
COMPONENTS = "api:API,web:Website,checkout:Checkout,search:Search,email:Email delivery"


# --- the bare server (run as this script with --bare) --------------------------------------


def serve_bare(port: int, body_file: Path) -> None:
    body = body_file.read_bytes()

    async def summary(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get(PATH, summary)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


# --- the Python load generator (run as this script with --load), if wrk is missing ----------


def python_load(url: str, connections: int, seconds: float, out: Path) -> None:
    async def run() -> dict[str, Any]:
        latencies: list[float] = []
        done = 0
        connector = aiohttp.TCPConnector(limit=connections)
        async with aiohttp.ClientSession(
            connector=connector, auto_decompress=False, headers={"Accept-Encoding": "identity"}
        ) as session:

            async def worker(until: float, record: bool) -> None:
                nonlocal done
                while time.perf_counter() < until:
                    started = time.perf_counter()
                    async with session.get(url) as response:
                        await response.read()
                    if record:
                        latencies.append(time.perf_counter() - started)
                        done += 1

            warm = time.perf_counter() + WARM_UP
            await asyncio.gather(*(worker(warm, False) for _ in range(connections)))
            began = time.perf_counter()
            end = began + seconds
            await asyncio.gather(*(worker(end, True) for _ in range(connections)))
            elapsed = time.perf_counter() - began
        latencies.sort()
        return {
            "rps": done / elapsed,
            "p50_ms": 1000 * latencies[len(latencies) // 2],
            "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
            "requests": done,
        }

    out.write_text(json.dumps(asyncio.run(run())))


# --- measuring ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    cpu_seconds: float = 0.0  # what the server process used meanwhile

    @property
    def per_cpu_second(self) -> float:
        return self.requests / self.cpu_seconds if self.cpu_seconds else 0.0


def cpu_seconds(pid: int) -> float:
    """User + system time of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pinned(cpu: int) -> Any:
    """preexec_fn: run the child on one core (when the machine has more than one)."""
    if (os.cpu_count() or 1) < 2:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _wrk_ms(text: str) -> float:
    value, unit = re.fullmatch(r"([0-9.]+)(us|ms|s)", text.strip()).groups()  # type: ignore[union-attr]
    return float(value) * _UNITS[unit]


def load(url: str, *, server: int, connections: int, seconds: float, workdir: Path) -> Measured:
    """Warm up, then measure, with wrk (or the Python client) on CPU 1; `server` is the
    pid of the server measured, for its CPU time."""
    before = 0.0

    def started() -> None:
        nonlocal before
        before = cpu_seconds(server)

    measured = _load(
        url, connections=connections, seconds=seconds, workdir=workdir, on_start=started
    )
    used = cpu_seconds(server) - before
    return Measured(measured.rps, measured.p50_ms, measured.p99_ms, measured.requests, used)


def _load(url: str, *, connections: int, seconds: float, workdir: Path, on_start: Any) -> Measured:
    wrk = shutil.which("wrk")
    if wrk:
        common = [wrk, "-t1", f"-c{connections}", "--latency", url]
        subprocess.run(
            [*common[:3], f"-d{int(WARM_UP)}s", *common[3:]],
            check=True,
            capture_output=True,
            preexec_fn=_pinned(1),
        )
        on_start()
        out = subprocess.run(
            [*common[:3], f"-d{seconds:g}s", *common[3:]],
            check=True,
            capture_output=True,
            text=True,
            preexec_fn=_pinned(1),
        ).stdout
        rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))  # type: ignore[union-attr]
        p50 = _wrk_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
        p99 = _wrk_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
        total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        if errors:
            raise SystemExit(f"{errors.group(1)} failed responses from {url}:\n{out}")
        return Measured(rps, p50, p99, total)
    result = workdir / f"load-{time.monotonic_ns()}.json"
    on_start()  # includes the Python client's warm-up: its CPU figure is a little low
    subprocess.run(
        [sys.executable, __file__, "--load", url, "--connections", str(connections),
         "--seconds", str(seconds), "--out", str(result)],
        check=True,
        preexec_fn=_pinned(1),
    )  # fmt: skip
    return Measured(**json.loads(result.read_text()))


@contextlib.contextmanager
def process(command: Sequence[str], *, env: dict[str, str], log: Path) -> Iterator[int]:
    with log.open("wb") as out:
        child = subprocess.Popen(
            command,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_pinned(0),  # noqa: PLW1509
        )
        try:
            yield child.pid
        finally:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


async def wait_until_up(url: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as session:
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            if time.monotonic() > deadline:
                raise SystemExit(f"{url} did not come up in {within:.0f} s")
            await asyncio.sleep(0.1)


async def prepare(base: str, open_incidents: int = 0) -> int:
    """An open P1 with components and a few updates, a resolved one, a maintenance window:
    a summary.json of a realistic size; with `open_incidents`, that many more open
    incidents on the page (an alert storm's), each with a component and an update."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(base_url=base, headers=headers) as s:

        async def post(path: str, body: dict[str, Any]) -> Any:
            async with s.post(f"/api/v1{path}", json=body) as r:
                if r.status not in (200, 201):
                    raise SystemExit(f"{path}: {r.status} {await r.text()}")
                return await r.json()

        slow = {"search": "degraded_performance"}
        old = await post("/incidents", {"title": "index", "severity": "P3", "components": slow})
        await post(f"/incidents/{old['incident']['id']}/updates", {"message": "Search is slow."})
        await post(f"/incidents/{old['incident']['id']}/resolve", {"summary": "reindexed"})
        declared = await post(
            "/incidents",
            {
                "title": "storm",
                "severity": "P1",
                "components": {"api": "major_outage", "web": "partial_outage"},
                "public_title": "API and website errors",
            },
        )
        incident_id: int = declared["incident"]["id"]
        for n in range(3):
            await post(
                f"/incidents/{incident_id}/updates",
                {"message": f"Update {n}: we are working on the API errors."},
            )
        now = datetime.now(UTC)
        await post(
            "/maintenances",
            {
                "name": "Database upgrade",
                "message": "The API may be read-only for up to 10 minutes.",
                "scheduled_for": (now + timedelta(days=2)).isoformat(),
                "scheduled_until": (now + timedelta(days=2, hours=2)).isoformat(),
                "components": ["api"],
            },
        )
        names = ["api", "web", "search"]

        async def one_more(n: int) -> None:
            made = await post(
                "/incidents",
                {
                    "title": f"storm {n}",
                    "severity": "P3",
                    "components": {names[n % 3]: "degraded_performance"},
                    "public_title": f"Degraded performance, region {n}",
                },
            )
            await post(
                f"/incidents/{made['incident']['id']}/updates",
                {"message": f"We are looking into slow responses in region {n}."},
            )

        for first in range(0, open_incidents, 50):
            await asyncio.gather(
                *(one_more(n) for n in range(first, min(first + 50, open_incidents)))
            )
        return incident_id


async def storm(base: str, incident_id: int, stop: asyncio.Event) -> tuple[int, int]:
    """One customer update a second until `stop`; (updates posted, summary versions seen)."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    posted, etags = 0, set()
    async with aiohttp.ClientSession(base_url=base, headers=headers) as s:
        while not stop.is_set():
            started = time.monotonic()
            status = "partial_outage" if posted % 2 else "major_outage"
            async with s.post(
                f"/api/v1/incidents/{incident_id}/updates",
                json={"message": f"Storm update {posted}.", "components": {"api": status}},
            ) as r:
                if r.status == 200:
                    posted += 1
            await asyncio.sleep(0.3)  # the rebuild it caused has had time to land
            async with s.get(PATH) as r:
                etags.add(r.headers.get("ETag"))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, 1.0 - (time.monotonic() - started)))
    return posted, len(etags)


async def measure_service(
    base: str, pid: int, incident_id: int, *, connections: int, seconds: float, workdir: Path
) -> tuple[Measured, int, int]:
    stop = asyncio.Event()
    storming = asyncio.create_task(storm(base, incident_id, stop))
    measured = await asyncio.to_thread(
        load, base + PATH, server=pid, connections=connections, seconds=seconds, workdir=workdir
    )
    stop.set()
    posted, versions = await storming
    return measured, posted, versions


# --- the report ---------------------------------------------------------------------------


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _git_state() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True,
            text=True, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "incident"], cwd=PROJECT_ROOT,
            capture_output=True, text=True, check=True,
        ).stdout.splitlines()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (f" + {len(dirty)} changed file(s) in incident/" if dirty else "")


@dataclass(frozen=True)
class Round:
    bare: Measured
    services: list[tuple[str, Measured, int, int]]  # name, measured, storm updates, versions


def _cells(m: Measured) -> str:
    return (
        f"{m.rps:,.0f} | {m.per_cpu_second:,.0f} | {m.p50_ms:.2f} | {m.p99_ms:.2f} | {m.requests:,}"
    )


def report(args: argparse.Namespace, size: int, rounds: list[Round], load_before: str) -> list[str]:
    generator = "wrk (1 thread)" if shutil.which("wrk") else "aiohttp client (Python process)"
    lines = [
        "# Public status page: summary.json under a crowd",
        "",
        f"`{' '.join(sys.argv)}`, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"- CPU: {_cpu_model()}, {os.cpu_count()} logical cores; {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()}, aiohttp "
        f"{_version('aiohttp')}; code {_git_state()}",
        f"- Load average before: {load_before}; after: "
        + " / ".join(f"{x:.2f}" for x in os.getloadavg()),
        f"- Load: {generator}, {args.connections} connections, {args.seconds:g} s per "
        f"measurement after {WARM_UP:g} s of warm-up, keep-alive, no gzip; body "
        f"{size:,} bytes (the service's summary.json; the bare handler returns the same bytes)",
        "- Servers pinned to CPU 0, load generator and storm to CPU 1"
        if (os.cpu_count() or 1) >= 2
        else "- One core: servers, load and storm share it",
        "- Storm: a customer update (changing a component's status) posted every second "
        "while the service is measured; versions = distinct summary.json ETags it saw",
        "",
        "| round | server | req/s | req per CPU-s | p50 ms | p99 ms | requests | storm updates "
        "| versions |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n, r in enumerate(rounds, start=1):
        lines.append(f"| {n} | bare aiohttp handler | {_cells(r.bare)} | | |")
        for name, m, posted, versions in r.services:
            lines.append(f"| {n} | {name} | {_cells(m)} | {posted} | {versions} |")
    bare_rps = statistics.median(r.bare.rps for r in rounds)
    bare_cpu = statistics.median(r.bare.per_cpu_second for r in rounds)
    lines += [
        "",
        "| median over rounds | req/s | ratio to bare | req per CPU-s | ratio to bare | target "
        "(req/s ratio) |",
        "|---|---:|---:|---:|---:|---|",
        f"| bare aiohttp handler | {bare_rps:,.0f} | | {bare_cpu:,.0f} | | |",
    ]
    for k, (name, *_rest) in enumerate(rounds[0].services):
        rps = statistics.median(r.services[k][1].rps for r in rounds)
        cpu = statistics.median(r.services[k][1].per_cpu_second for r in rounds)
        verdict = "met" if rps / bare_rps >= TARGET else "MISSED"
        lines.append(
            f"| {name} | {rps:,.0f} | {rps / bare_rps:.0%} | {cpu:,.0f} | {cpu / bare_cpu:.0%} "
            f"| >= {TARGET:.0%}: **{verdict}** |"
        )
    lines.append("")
    return lines


def serve_quiet(port: int) -> None:
    """`incident serve`, with the access logger that skips successful public reads."""
    from incident import bootstrap
    from incident.config import load_settings
    from incident.logs import configure_logging
    from incident.web.app import create_app, freeze_heap_after_start
    from incident.web.public.access_log import QuietPublicReads

    settings = load_settings()
    bootstrap.check_playbooks(settings)
    configure_logging(settings.log_format)
    app = create_app(settings)
    freeze_heap_after_start(app)
    web.run_app(
        app,
        host="127.0.0.1",
        port=port,
        print=None,
        access_log_class=QuietPublicReads,
    )


async def _service(
    name: str, command: list[str], port: int, args: argparse.Namespace, workdir: Path
) -> tuple[str, Measured, int, int, bytes]:
    """Start a fresh service, give it a page, measure it during the storm, stop it."""
    base = f"http://127.0.0.1:{port}"
    slug = re.sub(r"[^a-z]+", "-", name.lower()).strip("-")
    database = workdir / f"{slug}-{time.monotonic_ns()}.db"
    env = {
        **os.environ,
        "INCIDENT_DATABASE_URL": f"sqlite:///{database}",
        "INCIDENT_API_TOKENS": f"{TOKEN}:commander:bench",
        "INCIDENT_COMPONENTS": COMPONENTS,
        "INCIDENT_STATUS_PAGE_NAME": "Bench Status",
        "INCIDENT_BASE_URL": base,
    }
    with process(command, env=env, log=workdir / f"{slug}.log") as pid:
        await wait_until_up(base + "/healthz")
        incident_id = await prepare(base, args.open_incidents)
        # The playbooks' first steps (and the snapshot) settle: longer with a storm's worth.
        await asyncio.sleep(1.0 + args.open_incidents / 200)
        async with aiohttp.ClientSession() as s, s.get(base + PATH) as r:
            body = await r.read()
        measured, posted, versions = await measure_service(
            base, pid, incident_id, connections=args.connections, seconds=args.seconds,
            workdir=workdir,
        )  # fmt: skip
    return name, measured, posted, versions, body


async def main(args: argparse.Namespace) -> int:
    RESULTS_DIR.mkdir(exist_ok=True)
    workdir = RESULTS_DIR / f"status-page-{os.getpid()}"
    workdir.mkdir()
    load_before = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    if (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {1})  # the storm runs here
    services = [("service (`incident serve`)", "serve")]
    if args.quiet_access_log:
        services.append(("service, quiet access logger", "quiet"))
    rounds: list[Round] = []
    body = b""
    for n in range(args.rounds):
        measured_services = []
        for name, kind in services:
            port = _free_port()
            command = [
                str(Path(sys.executable).with_name("incident")),
                "serve",
                "--port",
                str(port),
            ]
            if kind == "quiet":
                command = [sys.executable, __file__, "--serve-quiet", str(port)]
            print(f"round {n + 1}: {name}, during the storm", file=sys.stderr, flush=True)
            *result, body = await _service(name, command, port, args, workdir)
            measured_services.append(tuple(result))
        body_file = workdir / "summary.json"
        body_file.write_bytes(body)
        bare_port = _free_port()
        bare_command = [
            sys.executable,
            __file__,
            "--bare",
            str(bare_port),
            "--body",
            str(body_file),
        ]
        print(f"round {n + 1}: bare handler", file=sys.stderr, flush=True)
        with process(bare_command, env=dict(os.environ), log=workdir / "bare.log") as pid:
            await wait_until_up(f"http://127.0.0.1:{bare_port}{PATH}")
            bare = await asyncio.to_thread(
                load,
                f"http://127.0.0.1:{bare_port}{PATH}",
                server=pid,
                connections=args.connections,
                seconds=args.seconds,
                workdir=workdir,
            )
        rounds.append(Round(bare=bare, services=measured_services))  # type: ignore[arg-type]
    lines = report(args, len(body), rounds, load_before)
    text = "\n".join(lines)
    print(text)
    out = RESULTS_DIR / f"status-page-{datetime.now(UTC):%Y%m%dT%H%M%S}.md"
    out.write_text(text + "\n")
    print(f"written to {out.relative_to(PROJECT_ROOT)}", file=sys.stderr)
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def cli() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--open-incidents",
        type=int,
        default=0,
        help="this many more open incidents on the page (summary.json lists each)",
    )
    parser.add_argument(
        "--quiet-access-log",
        action="store_true",
        help="also measure the service with access_log.QuietPublicReads as its access logger",
    )
    parser.add_argument("--keep", action="store_true", help="keep bench/results/status-page-<pid>/")
    parser.add_argument("--bare", type=int, help=argparse.SUPPRESS)  # internal: bare server
    parser.add_argument("--body", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--serve-quiet", type=int, help=argparse.SUPPRESS)  # internal
    parser.add_argument("--load", help=argparse.SUPPRESS)  # internal: Python load generator
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        serve_bare(args.bare, args.body)
        return 0
    if args.serve_quiet:
        serve_quiet(args.serve_quiet)
        return 0
    if args.load:
        python_load(args.load, args.connections, args.seconds, args.out)
        return 0
    return asyncio.run(main(args))


if __name__ == "__main__":
    sys.exit(cli())
